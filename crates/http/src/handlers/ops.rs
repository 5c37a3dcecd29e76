//! Health, readiness, the JWKS document and the contract's 404 and 405 responses.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use diesel::connection::SimpleConnection;

use crate::blocking::with_connection;
use crate::error::ApiError;
use crate::state::AppState;

/// `GET /healthz`: 200 while the process runs.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

/// `GET /readyz`: 200 when the database responds, else 503.
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    with_connection(&state, |connection| connection.batch_execute("SELECT 1").map_err(ApiError::unavailable))
        .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"status": "ok"})))
}

/// `GET /.well-known/jwks.json`: the public keys that verify access tokens, the
/// signing key first. HS256 keys are secret, so the set is empty with HS256 alone.
pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    let document = state.tokens.key_ring().jwks(state.clock.now());
    HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "public, max-age=60")).json(document)
}

/// Any unknown path.
pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::not_found())
}

/// A known path with a method it does not serve.
pub async fn method_not_allowed(request: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::method_not_allowed(request.method().as_str()))
}
