//! Input limits that sit in front of the handlers: unsafe requests carry JSON or no
//! body at all, and credentials have bounded lengths.
//!
//! The JSON-only rule is what keeps a cross-site HTML form away from the handlers. A
//! browser sends such a form with a cookie but without a preflight, as
//! `application/x-www-form-urlencoded`, `multipart/form-data` or `text/plain`, and each
//! of them gets 415 here, before authentication, CSRF checks or the body.
//! The request headers and the JSON body have their own limits in [`crate::edge`]
//! and [`crate::extract`].

use actix_web::ResponseError;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use finetune_core::user::{MAX_PASSWORD_BYTES, MAX_USERNAME_CHARS};

use crate::error::ApiError;

/// Returns true for `application/json` and any `application/*+json` media type,
/// parameters such as `charset` ignored.
fn is_json(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    let Some(subtype) = essence.strip_prefix("application/") else {
        return false;
    };
    subtype == "json" || subtype.ends_with("+json")
}

/// Rejects a POST, PUT, PATCH or DELETE whose `Content-Type` is not JSON with 415. A
/// request without `Content-Type` passes, because the handlers that read a body reject
/// it themselves and the others ignore the body.
pub async fn json_bodies_only(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let content_type = request.headers().get(header::CONTENT_TYPE);
    let rejected =
        !request.method().is_safe() && content_type.is_some_and(|value| !value.to_str().is_ok_and(is_json));
    if rejected {
        return Ok(request.into_response(ApiError::unsupported_media_type().error_response()));
    }
    Ok(next.call(request).await?.map_into_boxed_body())
}

/// Checks the length of a username presented at login: no valid username is longer
/// than [`MAX_USERNAME_CHARS`] characters.
pub fn check_login_username(username: &str) -> Result<(), ApiError> {
    if username.chars().count() > MAX_USERNAME_CHARS {
        return Err(ApiError::invalid_field(
            "username",
            format!("Ensure this field has no more than {MAX_USERNAME_CHARS} characters."),
        ));
    }
    Ok(())
}

/// Checks the length of a presented password before any hashing: no valid password is
/// longer than [`MAX_PASSWORD_BYTES`] bytes.
pub fn check_password_length(password: &str, field: &str) -> Result<(), ApiError> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(ApiError::invalid_field(
            field,
            format!("Ensure this field has no more than {MAX_PASSWORD_BYTES} bytes."),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_json_accepts_json_types() {
        for value in ["application/json", "Application/JSON; charset=utf-8", "application/merge-patch+json"] {
            assert!(is_json(value), "rejected {value:?}");
        }
    }

    #[test]
    fn is_json_rejects_form_types() {
        for value in [
            "text/plain",
            "text/plain; charset=UTF-8",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "text/json",
            "",
        ] {
            assert!(!is_json(value), "accepted {value:?}");
        }
    }

    #[test]
    fn password_length_rejects_over_limit() {
        let long = "x".repeat(MAX_PASSWORD_BYTES + 1);
        assert!(check_password_length(&long, "password").is_err());
        assert!(check_password_length(&long[..MAX_PASSWORD_BYTES], "password").is_ok());
    }
}
