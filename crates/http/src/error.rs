//! The mapping of every error to a status and a `{"detail", "code"}` body.

use std::fmt;

use actix_cors::CorsError;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use finetune_auth::AuthError;
use finetune_core::CoreError;
use finetune_core::error::FieldErrors;
use finetune_rbac::RbacError;
use serde::Serialize;

/// An error as the client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The stable machine-readable code.
    pub code: &'static str,
    /// A plain sentence for people.
    pub detail: String,
    /// Validation messages by field, for `invalid`.
    pub fields: Option<FieldErrors>,
    /// `Retry-After` in seconds, for `throttled`.
    pub retry_after: Option<u64>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    detail: &'a str,
    code: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    fields: Option<&'a FieldErrors>,
}

impl ApiError {
    /// Creates an error with a status, a code and a detail sentence.
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self { status, code, detail: detail.into(), fields: None, retry_after: None }
    }

    /// 400 `invalid` with field messages.
    pub fn invalid(fields: FieldErrors) -> Self {
        Self { fields: Some(fields), ..Self::new(StatusCode::BAD_REQUEST, "invalid", "Invalid input.") }
    }

    /// 400 `invalid` with one message on one field.
    pub fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        let mut fields = FieldErrors::new();
        fields.insert(field.to_owned(), vec![message.into()]);
        Self::invalid(fields)
    }

    /// 401 `not_authenticated`.
    pub fn not_authenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "not_authenticated",
            "Authentication credentials were not provided.",
        )
    }

    /// 401 `invalid_credentials`; the same body whatever the cause.
    pub fn invalid_credentials() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "No active account found with the given credentials.",
        )
    }

    /// 401 `token_not_valid`.
    pub fn token_not_valid() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "token_not_valid", "Token is invalid or expired.")
    }

    /// 401 `token_reused`.
    pub fn token_reused() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "token_reused",
            "Refresh token was already used; every token of its session is now revoked.",
        )
    }

    /// 403 `csrf_failed`.
    pub fn csrf_failed() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "csrf_failed",
            "CSRF check failed: send the csrftoken cookie value in the X-CSRFToken header.",
        )
    }

    /// 404 `not_found`.
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "Not found.")
    }

    /// 405 `method_not_allowed`.
    pub fn method_not_allowed(method: &str) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("Method \"{method}\" not allowed."),
        )
    }

    /// 500 `server_error`; `cause` goes to the log, never to the client.
    pub fn internal(cause: impl fmt::Display) -> Self {
        tracing::error!(%cause, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "A server error occurred.")
    }

    /// 503 `service_unavailable`; `cause` goes to the log.
    pub fn unavailable(cause: impl fmt::Display) -> Self {
        tracing::error!(%cause, "database unavailable");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "service_unavailable",
            "The service is temporarily unavailable; try again shortly.",
        )
    }

    /// 413 `payload_too_large` with a detail naming the limit.
    pub fn payload_too_large(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", detail)
    }

    /// 415 `unsupported_media_type`.
    pub fn unsupported_media_type() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Unsupported media type; send the body as application/json.",
        )
    }

    /// Maps an error that actix-web or a middleware raised to the contract's error: an
    /// [`ApiError`] stays as it is, a rejected CORS preflight becomes 403 or 400 with its
    /// reason, and anything else is mapped by its status alone.
    pub fn from_framework(error: &actix_web::Error) -> Self {
        if let Some(api_error) = error.as_error::<ApiError>() {
            return api_error.clone();
        }
        if let Some(cors_error) = error.as_error::<CorsError>() {
            return Self::from_cors(cors_error);
        }
        Self::from_status(error.as_response_error().status_code())
    }

    fn from_cors(error: &CorsError) -> Self {
        let forbidden = |detail: &str| Self::new(StatusCode::FORBIDDEN, "permission_denied", detail);
        match error {
            CorsError::OriginNotAllowed => {
                forbidden("CORS preflight rejected: this origin is not in CORS_ALLOWED_ORIGINS.")
            }
            CorsError::MethodNotAllowed => forbidden("CORS preflight rejected: the method is not allowed."),
            CorsError::HeadersNotAllowed => forbidden(
                "CORS preflight rejected: only the X-CSRFToken, Content-Type, Authorization and X-Request-ID request headers are allowed.",
            ),
            other => {
                Self::new(StatusCode::BAD_REQUEST, "parse_error", format!("Malformed CORS request: {other}."))
            }
        }
    }

    /// The contract's error for a status that arose outside the handlers (actix-web's
    /// own errors), with a generic detail.
    pub fn from_status(status: StatusCode) -> Self {
        match status.as_u16() {
            400 => Self::new(status, "parse_error", "Malformed request."),
            401 => Self::not_authenticated(),
            403 => {
                Self::new(status, "permission_denied", "You do not have permission to perform this action.")
            }
            404 => Self::not_found(),
            405 => Self::new(status, "method_not_allowed", "Method not allowed."),
            408 => Self::new(status, "request_timeout", "The request took too long to arrive."),
            413 => Self::new(status, "payload_too_large", "Request body is too large."),
            415 => {
                Self::new(status, "unsupported_media_type", "Unsupported media type; send application/json.")
            }
            429 => Self::new(status, "throttled", "Request was throttled."),
            431 => Self::new(status, "payload_too_large", "Request headers are too large."),
            503 => Self::new(status, "service_unavailable", "The service is temporarily unavailable."),
            _ if status.is_client_error() => Self::new(status, "invalid", "Invalid request."),
            _ => Self::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "A server error occurred."),
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.code, self.detail)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let body = ErrorBody { detail: &self.detail, code: self.code, fields: self.fields.as_ref() };
        let mut response = HttpResponse::build(self.status);
        if let Some(seconds) = self.retry_after {
            response.insert_header((header::RETRY_AFTER, seconds.to_string()));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"api\"")));
        }
        response.json(body)
    }
}

impl From<CoreError> for ApiError {
    fn from(error: CoreError) -> Self {
        match error {
            CoreError::NotFound(_) => Self::not_found(),
            CoreError::Conflict(message) => {
                tracing::info!(%message, "conflict");
                Self::new(StatusCode::CONFLICT, "conflict", "The request conflicts with the current state.")
            }
            CoreError::Invalid(fields) => Self::invalid(fields),
            CoreError::Unavailable(cause) => Self::unavailable(cause),
            other => Self::internal(other),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::TokenNotValid(reason) => {
                tracing::info!(reason = reason.as_str(), "token rejected");
                Self::token_not_valid()
            }
            AuthError::TokenReused => Self::token_reused(),
            AuthError::Core(core) => core.into(),
            other => Self::internal(other),
        }
    }
}

impl From<RbacError> for ApiError {
    fn from(error: RbacError) -> Self {
        match error {
            RbacError::UsernameTaken => {
                Self::new(StatusCode::CONFLICT, "username_taken", "A user with that username already exists.")
            }
            RbacError::RoleNotFound(_) | RbacError::UserNotFound(_) => Self::not_found(),
            RbacError::RoleExists(name) => {
                Self::new(StatusCode::CONFLICT, "conflict", format!("A role named {name:?} already exists."))
            }
            RbacError::BuiltinRole(name) => Self::new(
                StatusCode::CONFLICT,
                "conflict",
                format!("The built-in role {name:?} cannot be changed or deleted."),
            ),
            RbacError::LastSystemAdmin => Self::new(
                StatusCode::CONFLICT,
                "last_system_admin",
                "The last active system_admin cannot be deactivated or lose the role.",
            ),
            RbacError::Core(core) => core.into(),
        }
    }
}

impl From<diesel::result::Error> for ApiError {
    fn from(error: diesel::result::Error) -> Self {
        CoreError::from(error).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use finetune_auth::TokenRejection;

    #[test]
    fn domain_errors_map_to_contract_codes() {
        let cases: Vec<(ApiError, u16, &str)> = vec![
            (AuthError::TokenNotValid(TokenRejection::Expired).into(), 401, "token_not_valid"),
            (AuthError::TokenReused.into(), 401, "token_reused"),
            (RbacError::UsernameTaken.into(), 409, "username_taken"),
            (RbacError::LastSystemAdmin.into(), 409, "last_system_admin"),
            (RbacError::BuiltinRole("system_admin".into()).into(), 409, "conflict"),
            (RbacError::UserNotFound(9).into(), 404, "not_found"),
            (CoreError::Unavailable("pool timed out".into()).into(), 503, "service_unavailable"),
            (CoreError::Database("syntax error".into()).into(), 500, "server_error"),
            (CoreError::invalid("username", "blank").into(), 400, "invalid"),
            (CoreError::NotFound("user").into(), 404, "not_found"),
        ];
        for (error, status, code) in cases {
            assert_eq!(error.status.as_u16(), status, "{error}");
            assert_eq!(error.code, code, "{error}");
        }
    }

    #[test]
    fn cors_rejection_maps_to_permission_denied() {
        let error = ApiError::from_framework(&CorsError::OriginNotAllowed.into());
        assert_eq!(error.status, StatusCode::FORBIDDEN, "{error}");
        assert_eq!(error.code, "permission_denied", "{error}");
    }

    #[test]
    fn framework_error_keeps_api_error() {
        let error = ApiError::from_framework(&ApiError::csrf_failed().into());
        assert_eq!(error.code, "csrf_failed", "{error}");
    }

    #[test]
    fn server_error_body_hides_cause() {
        let error = ApiError::internal("password authentication failed for user postgres");
        assert!(!error.detail.contains("postgres"));
    }
}
