//! The three cookies of a browser session and the CSRF check.

use std::time::Duration;

use actix_web::HttpRequest;
use actix_web::cookie::{Cookie, SameSite, time};
use base64::Engine;
use subtle::ConstantTimeEq;

use crate::error::ApiError;

/// The access-token cookie.
pub const ACCESS_COOKIE: &str = "access_token";
/// The refresh-token cookie.
pub const REFRESH_COOKIE: &str = "refresh_token";
/// The CSRF cookie, readable by the client's scripts.
pub const CSRF_COOKIE: &str = "csrftoken";
/// The header that must repeat the CSRF cookie on unsafe cookie-authenticated requests.
pub const CSRF_HEADER: &str = "X-CSRFToken";
/// The path of the refresh cookie: only the authentication endpoints receive it.
pub const REFRESH_COOKIE_PATH: &str = "/api/auth/";

fn max_age(lifetime: Duration) -> time::Duration {
    time::Duration::seconds(i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX))
}

fn base(
    name: &'static str,
    value: String,
    path: &'static str,
    same_site: SameSite,
    http_only: bool,
    secure: bool,
) -> Cookie<'static> {
    Cookie::build(name, value).path(path).same_site(same_site).http_only(http_only).secure(secure).finish()
}

/// Builds the access-token cookie: HttpOnly, SameSite=Lax, path `/`.
pub fn access_cookie(token: &str, lifetime: Duration, secure: bool) -> Cookie<'static> {
    let mut cookie = base(ACCESS_COOKIE, token.to_owned(), "/", SameSite::Lax, true, secure);
    cookie.set_max_age(max_age(lifetime));
    cookie
}

/// Builds the refresh-token cookie: HttpOnly, SameSite=Strict, path `/api/auth/`.
pub fn refresh_cookie(token: &str, lifetime: Duration, secure: bool) -> Cookie<'static> {
    let mut cookie =
        base(REFRESH_COOKIE, token.to_owned(), REFRESH_COOKIE_PATH, SameSite::Strict, true, secure);
    cookie.set_max_age(max_age(lifetime));
    cookie
}

/// Builds the CSRF cookie: readable by scripts, SameSite=Strict, path `/`, living as long as
/// the refresh token.
pub fn csrf_cookie(token: &str, lifetime: Duration, secure: bool) -> Cookie<'static> {
    let mut cookie = base(CSRF_COOKIE, token.to_owned(), "/", SameSite::Strict, false, secure);
    cookie.set_max_age(max_age(lifetime));
    cookie
}

/// Removal cookies for all three, repeating each cookie's name, path and flags.
pub fn removal_cookies(secure: bool) -> [Cookie<'static>; 3] {
    let mut cookies = [
        base(ACCESS_COOKIE, String::new(), "/", SameSite::Lax, true, secure),
        base(REFRESH_COOKIE, String::new(), REFRESH_COOKIE_PATH, SameSite::Strict, true, secure),
        base(CSRF_COOKIE, String::new(), "/", SameSite::Strict, false, secure),
    ];
    for cookie in &mut cookies {
        cookie.make_removal();
    }
    cookies
}

/// Generates a random CSRF token (256 bits, base64url).
pub fn new_csrf_token() -> Result<String, ApiError> {
    let mut bytes = [0u8; 32];
    getrandom_fill(&mut bytes)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

fn getrandom_fill(bytes: &mut [u8]) -> Result<(), ApiError> {
    getrandom::fill(bytes).map_err(|error| ApiError::internal(format!("random source failed: {error}")))
}

/// Returns the value of cookie `name`, if present and non-empty.
pub fn cookie_value(request: &HttpRequest, name: &str) -> Option<String> {
    request.cookie(name).map(|c| c.value().to_owned()).filter(|v| !v.is_empty())
}

/// Returns true when the request carries an access or refresh cookie.
pub fn has_session_cookie(request: &HttpRequest) -> bool {
    cookie_value(request, ACCESS_COOKIE).is_some() || cookie_value(request, REFRESH_COOKIE).is_some()
}

/// Checks that `X-CSRFToken` equals the `csrftoken` cookie, in constant time, for
/// unsafe methods; safe methods pass.
pub fn check_csrf(request: &HttpRequest) -> Result<(), ApiError> {
    if request.method().is_safe() {
        return Ok(());
    }
    let Some(cookie) = cookie_value(request, CSRF_COOKIE) else {
        return Err(ApiError::csrf_failed());
    };
    let Some(header) = request.headers().get(CSRF_HEADER).map(|v| v.as_bytes()) else {
        return Err(ApiError::csrf_failed());
    };
    if header.is_empty() || !bool::from(header.ct_eq(cookie.as_bytes())) {
        return Err(ApiError::csrf_failed());
    }
    Ok(())
}
