//! `/api/auth/refresh/`: the CSRF check, rotation and reuse detection of cookie sessions.

use crate::harness::{Backend, TestServer, backend_tests};
use crate::http::assert_error;
use crate::login::{assert_cookie_removed, assert_session_body, assert_token_cookies};

backend_tests!(
    refresh_requires_csrf_header,
    refresh_rotates_cookies,
    refresh_reuse_revokes_family,
    failed_refresh_keeps_token_usable,
    failed_login_stores_nothing
);

fn refresh_requires_csrf_header(backend: Backend) {
    let server = TestServer::start(backend);
    let jar = server.admin_session();

    let missing = server.post("/api/auth/refresh/").cookies(&jar).send();
    assert_error(&missing, 403, "csrf_failed");

    let wrong =
        server.post("/api/auth/refresh/").cookies(&jar).header("X-CSRFToken", "not-the-csrf-token").send();
    assert_error(&wrong, 403, "csrf_failed");

    let other_session = server.admin_session();
    let foreign = server.post("/api/auth/refresh/").cookies(&jar).csrf(&other_session).send();
    assert_error(&foreign, 403, "csrf_failed");

    // The rejected attempts did not use up the refresh token.
    let matching = server.refresh_session(&jar);
    assert_eq!(matching.status, 200, "refresh with the matching X-CSRFToken: {}", matching.body);
}

fn refresh_rotates_cookies(backend: Backend) {
    let server = TestServer::start(backend);
    let jar = server.admin_session();

    let response = server.refresh_session(&jar);

    assert_eq!(response.status, 200, "refresh failed: {}", response.body);
    assert_session_body(&response, &response.json());
    assert_token_cookies(&response);
    let new_access = response.set_cookie("access_token").value;
    let new_refresh = response.set_cookie("refresh_token").value;
    assert_ne!(Some(new_access.as_str()), jar.get("access_token"), "refresh kept the old access token");
    assert_ne!(Some(new_refresh.as_str()), jar.get("refresh_token"), "refresh kept the old refresh token");

    let mut rotated = jar.clone();
    rotated.update(&response);
    let me = server.get("/api/auth/me/").cookies(&rotated).send();
    assert_eq!(me.status, 200, "GET /me with the new access cookie: {}", me.body);

    let next = server.refresh_session(&rotated);
    assert_eq!(next.status, 200, "refresh with the successor token: {}", next.body);
}

fn refresh_reuse_revokes_family(backend: Backend) {
    let server = TestServer::start(backend);
    let login = server.login(crate::harness::ADMIN_USERNAME, crate::harness::ADMIN_PASSWORD);
    assert_eq!(login.status, 200, "login failed: {}", login.body);
    let user_id = login.json()["user"]["id"].as_i64().expect("USER id is an integer");
    let original = crate::cookies::CookieJar::from_response(&login);

    let rotation = server.refresh_session(&original);
    assert_eq!(rotation.status, 200, "first refresh failed: {}", rotation.body);
    let mut successor = original.clone();
    successor.update(&rotation);

    let reuse = server.refresh_session(&original);
    assert_error(&reuse, 401, "token_reused");
    assert_cookie_removed(&reuse, "access_token");
    assert_cookie_removed(&reuse, "refresh_token");

    let after_reuse = server.refresh_session(&successor);
    assert_error(&after_reuse, 401, "token_not_valid");

    let rows = server.database().refresh_tokens_of_user(user_id);
    assert_eq!(rows.len(), 2, "expected the login token and its successor: {rows:?}");
    assert_eq!(rows[0].family_id, rows[1].family_id, "a successor stays in its family: {rows:?}");
    assert_eq!(rows[0].used, 1, "the rotated token is marked used: {rows:?}");
    for row in &rows {
        assert_eq!(row.revoked, 1, "reuse must revoke every token of the family: {rows:?}");
    }
}

/// A refresh that fails with a server error after the token is found must leave the
/// token usable: the client retries it, and the retry must not count as reuse. The
/// failure is forced by hiding `user_roles`, which only the read of the user's view
/// touches, and the user cache is cleared first so that read happens.
fn failed_refresh_keeps_token_usable(backend: Backend) {
    let server = TestServer::start(backend);
    let pair = server.obtain_token_pair(crate::harness::ADMIN_USERNAME, crate::harness::ADMIN_PASSWORD);
    let mut database = server.database();
    database.execute("UPDATE change_counters SET value = value + 1 WHERE name = 'user_state'");
    std::thread::sleep(std::time::Duration::from_secs(1));

    database.execute("ALTER TABLE user_roles RENAME TO user_roles_hidden");
    let failed_id = crate::http::new_request_id();
    let failed = server
        .post("/api/auth/token/refresh/")
        .json(&serde_json::json!({"refresh": pair.refresh}))
        .request_id(&failed_id)
        .send();
    database.execute("ALTER TABLE user_roles_hidden RENAME TO user_roles");
    assert_eq!(failed.status, 500, "refresh with user_roles hidden: {}", failed.body);

    let entries = database.audit_entries_for_request(&failed_id);
    assert!(
        entries.iter().all(|entry| entry.outcome != "success"),
        "a refresh answered with 500 is audited as a success: {entries:?}"
    );

    let retry =
        server.post("/api/auth/token/refresh/").json(&serde_json::json!({"refresh": pair.refresh})).send();
    assert_eq!(retry.status, 200, "retry of the same refresh token after the failure: {}", retry.body);
}

/// A login that fails with a server error must leave no session and no `auth.login`
/// success behind. The failure is forced as above, by hiding `user_roles`.
fn failed_login_stores_nothing(backend: Backend) {
    let server = TestServer::start(backend);
    let pair = server.obtain_token_pair(crate::harness::ADMIN_USERNAME, crate::harness::ADMIN_PASSWORD);
    let me = server.get("/api/auth/me/").bearer(&pair.access).send();
    assert_eq!(me.status, 200, "{}", me.body);
    let admin_id = me.json()["id"].as_i64().unwrap_or_default();
    let mut database = server.database();
    let tokens_before = database.refresh_tokens_of_user(admin_id).len();
    assert_eq!(tokens_before, 1, "the first login stored one refresh token");

    database.execute("ALTER TABLE user_roles RENAME TO user_roles_hidden");
    let failed_id = crate::http::new_request_id();
    let failed = server
        .post("/api/auth/token/")
        .json(&serde_json::json!({
            "username": crate::harness::ADMIN_USERNAME,
            "password": crate::harness::ADMIN_PASSWORD,
        }))
        .request_id(&failed_id)
        .send();
    database.execute("ALTER TABLE user_roles_hidden RENAME TO user_roles");
    assert_eq!(failed.status, 500, "login with user_roles hidden: {}", failed.body);

    let entries = database.audit_entries_for_request(&failed_id);
    assert!(
        entries.iter().all(|entry| entry.outcome != "success"),
        "a login answered with 500 is audited as a success: {entries:?}"
    );
    let tokens = database.refresh_tokens_of_user(admin_id);
    assert_eq!(tokens.len(), tokens_before, "a login answered with 500 stored a refresh token: {tokens:?}");
}
