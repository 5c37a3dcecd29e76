//! Extractors: the request context, the authenticated caller, and JSON bodies whose
//! errors follow the contract.

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::error::JsonPayloadError;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use finetune_auth::AccessClaims;
use finetune_auth::actix::bearer_token;
use finetune_core::RequestContext;

use crate::cookies::{ACCESS_COOKIE, check_csrf, cookie_value};
use crate::error::ApiError;
use crate::state::AppState;

/// The largest JSON body accepted, in bytes.
pub const MAX_JSON_BYTES: usize = 64 * 1024;

/// The request's context, set by the edge middleware.
#[derive(Debug, Clone)]
pub struct Context(pub RequestContext);

impl FromRequest for Context {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let context = request.extensions().get::<RequestContext>().cloned().unwrap_or_default();
        ready(Ok(Context(context)))
    }
}

/// The kind of credential the caller presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// `Authorization: Bearer`.
    Bearer,
    /// The `access_token` cookie (CSRF checked for unsafe methods).
    Cookie,
}

/// A caller with a valid access token. Bearer wins over the cookie; a cookie-borne
/// token on an unsafe method needs a matching `X-CSRFToken`.
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// The verified claims.
    pub claims: AccessClaims,
    /// The credential that carried the token.
    pub credential: Credential,
}

impl FromRequest for Authenticated {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authenticate(request))
    }
}

fn authenticate(request: &HttpRequest) -> Result<Authenticated, ApiError> {
    let Some(state) = request.app_data::<web::Data<AppState>>() else {
        return Err(ApiError::internal("application state missing"));
    };
    let now = state.clock.now();

    // Another Authorization scheme is not ours; the cookie is tried next.
    if let Some(token) = bearer_token(request).map_err(|_| ApiError::token_not_valid())? {
        let claims = state.tokens.verify(token, now)?;
        return Ok(Authenticated { claims, credential: Credential::Bearer });
    }

    let Some(token) = cookie_value(request, ACCESS_COOKIE) else {
        return Err(ApiError::not_authenticated());
    };
    let claims = state.tokens.verify(&token, now)?;
    check_csrf(request)?;
    Ok(Authenticated { claims, credential: Credential::Cookie })
}

/// Builds the JSON body configuration: size limit and contract-shaped errors.
pub fn json_config() -> web::JsonConfig {
    web::JsonConfig::default().limit(MAX_JSON_BYTES).error_handler(|error, _request| json_error(error).into())
}

/// Builds the query-string configuration: a query that does not fit the endpoint's parameters
/// (a repeated parameter, say) is 400 `invalid`, not a parse error of a body.
pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|error, _request| {
        ApiError::invalid_field(
            "non_field_errors",
            format!("Invalid query string: {error}. Give each parameter once."),
        )
        .into()
    })
}

fn json_error(error: JsonPayloadError) -> ApiError {
    match error {
        JsonPayloadError::OverflowKnownLength { .. } | JsonPayloadError::Overflow { .. } => {
            ApiError::payload_too_large(format!("Request body is larger than {MAX_JSON_BYTES} bytes."))
        }
        JsonPayloadError::ContentType => ApiError::unsupported_media_type(),
        JsonPayloadError::Deserialize(error) if error.is_data() => {
            ApiError::invalid_field("non_field_errors", format!("Invalid data: {error}"))
        }
        JsonPayloadError::Deserialize(error) => {
            ApiError::new(StatusCode::BAD_REQUEST, "parse_error", format!("JSON parse error: {error}"))
        }
        other => {
            ApiError::new(StatusCode::BAD_REQUEST, "parse_error", format!("Malformed request body: {other}"))
        }
    }
}

/// Returns the value of a required string field, or a 400 `invalid` naming it.
pub fn required(value: Option<String>, field: &str) -> Result<String, ApiError> {
    match value {
        Some(value) if !value.is_empty() => Ok(value),
        Some(_) => Err(ApiError::invalid_field(field, "This field may not be blank.")),
        None => Err(ApiError::invalid_field(field, "This field is required.")),
    }
}
