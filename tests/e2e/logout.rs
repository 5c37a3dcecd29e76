//! `/api/auth/logout/` and `/api/auth/logout-all/`.

use crate::harness::{Backend, TestServer, backend_tests};
use crate::http::assert_error;
use crate::login::assert_cookie_removed;

const OTHER_PASSWORD: &str = "operator passphrase";

backend_tests!(
    logout_clears_cookies_and_revokes,
    logout_requires_csrf_header,
    logout_without_cookies_succeeds,
    logout_all_revokes_every_session,
);

fn logout_clears_cookies_and_revokes(backend: Backend) {
    let server = TestServer::start(backend);
    let jar = server.admin_session();

    let response = server.post("/api/auth/logout/").cookies(&jar).csrf(&jar).send();

    assert_eq!(response.status, 204, "logout failed: {}", response.body);
    assert_eq!(response.body, "", "a 204 has no body");
    assert_cookie_removed(&response, "access_token");
    assert_cookie_removed(&response, "refresh_token");
    assert_cookie_removed(&response, "csrftoken");

    let refresh = server.refresh_session(&jar);
    assert_error(&refresh, 401, "token_not_valid");
}

fn logout_requires_csrf_header(backend: Backend) {
    let server = TestServer::start(backend);
    let jar = server.admin_session();

    let missing = server.post("/api/auth/logout/").cookies(&jar).send();
    assert_error(&missing, 403, "csrf_failed");

    let wrong =
        server.post("/api/auth/logout/").cookies(&jar).header("X-CSRFToken", "not-the-csrf-token").send();
    assert_error(&wrong, 403, "csrf_failed");

    // The rejected logouts did not revoke the session.
    let refresh = server.refresh_session(&jar);
    assert_eq!(refresh.status, 200, "refresh after a rejected logout: {}", refresh.body);
}

fn logout_without_cookies_succeeds(backend: Backend) {
    let server = TestServer::start(backend);

    let response = server.post("/api/auth/logout/").send();

    assert_eq!(response.status, 204, "logout without cookies: {}", response.body);
    assert_eq!(response.body, "", "a 204 has no body");
}

fn logout_all_revokes_every_session(backend: Backend) {
    let server = TestServer::start(backend);
    let first = server.admin_session();
    let second = server.admin_session();
    server.create_superuser("operator", "operator@example.com", OTHER_PASSWORD);
    let other_user = server.login_session("operator", OTHER_PASSWORD);

    let unauthenticated = server.post("/api/auth/logout-all/").send();
    assert_error(&unauthenticated, 401, "not_authenticated");

    let without_csrf = server.post("/api/auth/logout-all/").cookies(&first).send();
    assert_error(&without_csrf, 403, "csrf_failed");

    let response = server.post("/api/auth/logout-all/").cookies(&first).csrf(&first).send();
    assert_eq!(response.status, 204, "logout-all failed: {}", response.body);
    assert_eq!(response.body, "", "a 204 has no body");

    let first_refresh = server.refresh_session(&first);
    assert_error(&first_refresh, 401, "token_not_valid");
    let second_refresh = server.refresh_session(&second);
    assert_error(&second_refresh, 401, "token_not_valid");
    let other_user_refresh = server.refresh_session(&other_user);
    assert_eq!(
        other_user_refresh.status, 200,
        "logout-all revoked another user's session: {}",
        other_user_refresh.body
    );
}
