//! The token API for services and scripts: tokens travel in JSON bodies.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::extract::{Context, required};
use crate::flows;
use crate::handlers::auth::Credentials;
use crate::state::AppState;

#[derive(Serialize)]
struct TokenPair<'a> {
    access: &'a str,
    refresh: &'a str,
}

fn pair_response(session: &flows::Session) -> HttpResponse {
    HttpResponse::Ok()
        .json(TokenPair { access: session.access.token.expose(), refresh: session.refresh.token.expose() })
}

fn empty_object() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({}))
}

/// `POST /api/auth/token/`: `{username, password}` → `{access, refresh}`.
pub async fn obtain(
    state: web::Data<AppState>,
    context: Context,
    body: web::Json<Credentials>,
) -> Result<HttpResponse, ApiError> {
    let (username, password) = body.into_inner().into_parts()?;

    let session = flows::login(&state, &context.0, username, password).await?;

    Ok(pair_response(&session))
}

/// A body holding a refresh token.
#[derive(Debug, Deserialize)]
pub struct RefreshBody {
    refresh: Option<String>,
}

/// `POST /api/auth/token/refresh/`: `{refresh}` → `{access, refresh}`.
pub async fn refresh(
    state: web::Data<AppState>,
    context: Context,
    body: web::Json<RefreshBody>,
) -> Result<HttpResponse, ApiError> {
    let presented = required(body.into_inner().refresh, "refresh")?;

    let session = flows::refresh(&state, &context.0, presented).await?;

    Ok(pair_response(&session))
}

/// A body holding any token.
#[derive(Debug, Deserialize)]
pub struct VerifyBody {
    token: Option<String>,
}

/// `POST /api/auth/token/verify/`: 200 `{}` when the access token is valid.
pub async fn verify(
    state: web::Data<AppState>,
    body: web::Json<VerifyBody>,
) -> Result<HttpResponse, ApiError> {
    let token = required(body.into_inner().token, "token")?;

    state.tokens.verify(&token, state.clock.now())?;

    Ok(empty_object())
}

/// `POST /api/auth/token/blacklist/`: revokes the refresh token's session.
pub async fn blacklist(
    state: web::Data<AppState>,
    context: Context,
    body: web::Json<RefreshBody>,
) -> Result<HttpResponse, ApiError> {
    let presented = required(body.into_inner().refresh, "refresh")?;

    flows::blacklist(&state, &context.0, presented).await?;

    Ok(empty_object())
}
