//! `/api/auth/password/`: password validation and the sessions a change revokes.

use serde_json::json;

use crate::cookies::CookieJar;
use crate::harness::{ADMIN_PASSWORD, ADMIN_USERNAME, Backend, TestServer, backend_tests};
use crate::http::assert_error;
use crate::login::assert_token_cookies;

const NEW_PASSWORD: &str = "a brand new passphrase";

backend_tests!(
    password_change_rejects_wrong_current,
    password_change_rejects_short_new,
    password_change_revokes_other_sessions,
);

fn change_password(server: &TestServer, jar: &CookieJar, current: &str, new: &str) -> crate::http::Response {
    server
        .post("/api/auth/password/")
        .cookies(jar)
        .csrf(jar)
        .json(&json!({"current_password": current, "new_password": new}))
        .send()
}

fn password_change_rejects_wrong_current(backend: Backend) {
    let server = TestServer::start(backend);
    let jar = server.admin_session();

    let response = change_password(&server, &jar, "not the admin password", NEW_PASSWORD);

    assert_error(&response, 400, "invalid_password");
    let old_password_login = server.login(ADMIN_USERNAME, ADMIN_PASSWORD);
    assert_eq!(old_password_login.status, 200, "the password changed anyway: {}", old_password_login.body);
}

fn password_change_rejects_short_new(backend: Backend) {
    let server = TestServer::start(backend);
    let jar = server.admin_session();

    // Passwords need at least 12 bytes, and this one has 11.
    let response = change_password(&server, &jar, ADMIN_PASSWORD, "short-pass1");

    assert_error(&response, 400, "invalid");
    let body = response.json();
    let messages = body["fields"]["new_password"].as_array().cloned().unwrap_or_default();
    assert!(!messages.is_empty(), "fields.new_password has no messages; body: {}", response.body);
    assert!(
        messages.iter().all(|message| message.as_str().is_some_and(|text| !text.is_empty())),
        "fields.new_password holds non-empty strings; body: {}",
        response.body
    );
}

fn password_change_revokes_other_sessions(backend: Backend) {
    let server = TestServer::start(backend);
    let session = server.admin_session();
    let other_session = server.admin_session();

    let without_csrf = server
        .post("/api/auth/password/")
        .cookies(&session)
        .json(&json!({"current_password": ADMIN_PASSWORD, "new_password": NEW_PASSWORD}))
        .send();
    assert_error(&without_csrf, 403, "csrf_failed");

    let response = change_password(&server, &session, ADMIN_PASSWORD, NEW_PASSWORD);

    assert_eq!(response.status, 204, "password change failed: {}", response.body);
    assert_token_cookies(&response);
    let mut renewed = session.clone();
    renewed.update(&response);

    let old_refresh = server.refresh_session(&session);
    assert_error(&old_refresh, 401, "token_not_valid");
    let other_refresh = server.refresh_session(&other_session);
    assert_error(&other_refresh, 401, "token_not_valid");

    let me = server.get("/api/auth/me/").cookies(&renewed).send();
    assert_eq!(me.status, 200, "GET /me with the renewed cookies: {}", me.body);
    let renewed_refresh = server.refresh_session(&renewed);
    assert_eq!(renewed_refresh.status, 200, "refresh with the renewed cookies: {}", renewed_refresh.body);

    let old_password_login = server.login(ADMIN_USERNAME, ADMIN_PASSWORD);
    assert_error(&old_password_login, 401, "invalid_credentials");
    let new_password_login = server.login(ADMIN_USERNAME, NEW_PASSWORD);
    assert_eq!(new_password_login.status, 200, "login with the new password: {}", new_password_login.body);
}
