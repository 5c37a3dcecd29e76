//! `/api/auth/login/` and `/api/auth/me/`: credentials, the session body and its cookies.

use serde_json::{Value, json};

use crate::cookies::{CookieJar, SetCookie};
use crate::harness::{ADMIN_EMAIL, ADMIN_PASSWORD, ADMIN_USERNAME, Backend, TestServer, backend_tests};
use crate::http::{Response, assert_error};

/// Default access token lifetime (`ACCESS_TOKEN_LIFETIME=5m`), in seconds.
pub const ACCESS_LIFETIME_SECONDS: i64 = 300;
/// Default refresh token lifetime (`REFRESH_TOKEN_LIFETIME=1d`), in seconds.
pub const REFRESH_LIFETIME_SECONDS: i64 = 86_400;

backend_tests!(login_failures_share_one_body, login_returns_user_and_cookies, me_accepts_cookie_and_bearer,);

fn login_failures_share_one_body(backend: Backend) {
    let server = TestServer::start(backend);

    let wrong_password = server.login(ADMIN_USERNAME, "not the admin password");
    let unknown_user = server.login("nobody-by-this-name", "not the admin password");

    assert_error(&wrong_password, 401, "invalid_credentials");
    assert_error(&unknown_user, 401, "invalid_credentials");
    assert_eq!(
        wrong_password.body, unknown_user.body,
        "a wrong password and an unknown user must give the same body"
    );
    assert!(
        wrong_password.set_cookies().iter().all(SetCookie::is_removal),
        "a failed login set a session cookie: {:?}",
        wrong_password.set_cookies()
    );
    // NOTE: the inactive-user case needs the admin user endpoints, which come later.
}

fn login_returns_user_and_cookies(backend: Backend) {
    let server = TestServer::start(backend);

    let response = server.login(ADMIN_USERNAME, ADMIN_PASSWORD);

    assert_eq!(response.status, 200, "login failed: {}", response.body);
    let body = response.json();
    assert_session_body(&response, &body);
    assert_user(&body["user"], ADMIN_USERNAME, Some(ADMIN_EMAIL), &response.body);

    let access = response.set_cookie("access_token");
    let refresh = response.set_cookie("refresh_token");
    let csrf = response.set_cookie("csrftoken");
    assert!(!body.to_string().contains(&access.value), "the access token is in the body: {}", response.body);
    assert!(
        !body.to_string().contains(&refresh.value),
        "the refresh token is in the body: {}",
        response.body
    );
    assert_token_cookies(&response);
    assert!(!csrf.value.is_empty(), "csrftoken is empty: {csrf:?}");
    assert!(!csrf.has_flag("HttpOnly"), "csrftoken must be readable by the client: {csrf:?}");
    assert_eq!(csrf.same_site(), Some("Strict"), "csrftoken SameSite: {csrf:?}");
    assert_eq!(csrf.path(), Some("/"), "csrftoken Path: {csrf:?}");
    assert!(!csrf.has_flag("Secure"), "csrftoken is Secure in development: {csrf:?}");

    let second = server.admin_session();
    assert_ne!(second.get("csrftoken"), Some(csrf.value.as_str()), "each login must issue a new csrftoken");
}

fn me_accepts_cookie_and_bearer(backend: Backend) {
    let server = TestServer::start(backend);
    let login = server.login(ADMIN_USERNAME, ADMIN_PASSWORD);
    assert_eq!(login.status, 200, "login failed: {}", login.body);
    let jar = CookieJar::from_response(&login);
    let access = jar.get("access_token").expect("login set no access_token").to_owned();

    let with_cookie = server.get("/api/auth/me/").cookies(&jar).send();
    assert_eq!(with_cookie.status, 200, "GET /me with the access cookie: {}", with_cookie.body);
    assert_eq!(with_cookie.json(), login.json()["user"], "GET /me must return the USER of the login");

    let without = server.get("/api/auth/me/").send();
    assert_error(&without, 401, "not_authenticated");

    let refresh_cookie_only = server.get("/api/auth/me/").cookies(&jar.without("access_token")).send();
    assert_error(&refresh_cookie_only, 401, "not_authenticated");

    let with_bearer = server.get("/api/auth/me/").bearer(&access).send();
    assert_eq!(with_bearer.status, 200, "GET /me with Bearer: {}", with_bearer.body);
    assert_eq!(with_bearer.json(), login.json()["user"], "GET /me with Bearer must return the same USER");

    // Bearer wins over the cookie, so an invalid Bearer fails even beside a valid cookie.
    let invalid_bearer = server.get("/api/auth/me/").cookies(&jar).bearer("not-a-jwt").send();
    assert_error(&invalid_bearer, 401, "token_not_valid");
}

/// Asserts the body of a login or cookie refresh: exactly `user` and the two expiry times.
#[track_caller]
pub fn assert_session_body(response: &Response, body: &Value) {
    let mut keys: Vec<&str> =
        body.as_object().map(|object| object.keys().map(String::as_str).collect()).unwrap_or_default();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["access_expires_at", "refresh_expires_at", "user"],
        "unexpected session body fields; body: {}",
        response.body
    );

    let access_expires_at = parse_timestamp(&body["access_expires_at"], &response.body);
    let refresh_expires_at = parse_timestamp(&body["refresh_expires_at"], &response.body);
    let gap = (refresh_expires_at - access_expires_at).num_seconds();
    let expected_gap = REFRESH_LIFETIME_SECONDS - ACCESS_LIFETIME_SECONDS;
    // Both times come from one request, so only rounding separates them from the lifetimes.
    assert!(
        (gap - expected_gap).abs() <= 2,
        "refresh_expires_at - access_expires_at is {gap} s, expected {expected_gap} s; body: {}",
        response.body
    );

    let access = response.set_cookie("access_token");
    let claims = crate::jwt::decode(&access.value).claims;
    let exp = claims["exp"].as_i64().unwrap_or_default();
    assert!(
        (exp - access_expires_at.timestamp()).abs() <= 1,
        "access_expires_at differs from the token's exp {exp}; body: {}",
        response.body
    );
}

fn parse_timestamp(value: &Value, body: &str) -> chrono::DateTime<chrono::FixedOffset> {
    let text = value.as_str().unwrap_or_default();
    chrono::DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|error| panic!("{value} is not an RFC 3339 timestamp ({error}); body: {body}"))
}

/// Asserts a USER object: exactly `id`, `username`, `email`, `roles`, `is_active`.
#[track_caller]
pub fn assert_user(user: &Value, username: &str, email: Option<&str>, body: &str) {
    let mut keys: Vec<&str> =
        user.as_object().map(|object| object.keys().map(String::as_str).collect()).unwrap_or_default();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["email", "id", "is_active", "roles", "username"],
        "unexpected USER fields; body: {body}"
    );
    assert!(user["id"].is_i64(), "USER id is not an integer; body: {body}");
    assert_eq!(user["username"], username, "USER username; body: {body}");
    assert_eq!(user["email"], json!(email), "USER email; body: {body}");
    assert_eq!(user["is_active"], true, "USER is_active; body: {body}");
    let roles = user["roles"].as_array().cloned().unwrap_or_default();
    assert!(roles.contains(&json!("system_admin")), "USER roles lack system_admin; body: {body}");
}

/// Asserts the attributes of the `access_token` and `refresh_token` cookies of a development server.
#[track_caller]
pub fn assert_token_cookies(response: &Response) {
    let access = response.set_cookie("access_token");
    assert!(!access.value.is_empty(), "access_token is empty: {access:?}");
    assert!(access.has_flag("HttpOnly"), "access_token must be HttpOnly: {access:?}");
    assert_eq!(access.same_site(), Some("Lax"), "access_token SameSite: {access:?}");
    assert_eq!(access.path(), Some("/"), "access_token Path: {access:?}");
    assert_eq!(access.max_age(), Some(ACCESS_LIFETIME_SECONDS), "access_token Max-Age: {access:?}");
    assert!(!access.has_flag("Secure"), "access_token is Secure in development: {access:?}");

    let refresh = response.set_cookie("refresh_token");
    assert!(!refresh.value.is_empty(), "refresh_token is empty: {refresh:?}");
    assert!(refresh.has_flag("HttpOnly"), "refresh_token must be HttpOnly: {refresh:?}");
    assert_eq!(refresh.same_site(), Some("Strict"), "refresh_token SameSite: {refresh:?}");
    assert_eq!(refresh.path(), Some("/api/auth/"), "refresh_token Path: {refresh:?}");
    assert_eq!(refresh.max_age(), Some(REFRESH_LIFETIME_SECONDS), "refresh_token Max-Age: {refresh:?}");
    assert!(!refresh.has_flag("Secure"), "refresh_token is Secure in development: {refresh:?}");
}

/// Asserts that `response` removes `name` with a cookie that repeats its path and flags.
#[track_caller]
pub fn assert_cookie_removed(response: &Response, name: &str) {
    let cookie = response.set_cookie(name);
    let (path, same_site, http_only) = match name {
        "access_token" => ("/", "Lax", true),
        "refresh_token" => ("/api/auth/", "Strict", true),
        _ => ("/", "Strict", false),
    };
    assert!(cookie.is_removal(), "{name} is not removed (Max-Age=0 or a past Expires): {cookie:?}");
    assert_eq!(cookie.path(), Some(path), "the removal of {name} must repeat its Path: {cookie:?}");
    assert_eq!(cookie.same_site(), Some(same_site), "the removal of {name} must repeat SameSite: {cookie:?}");
    assert_eq!(
        cookie.has_flag("HttpOnly"),
        http_only,
        "the removal of {name} must repeat HttpOnly: {cookie:?}"
    );
}
