//! Audit entries of the authentication endpoints, read from the database.

use std::thread;
use std::time::Duration;

use serde_json::{Value, json};

use crate::cookies::CookieJar;
use crate::db::AuditEntry;
use crate::harness::{ADMIN_PASSWORD, ADMIN_USERNAME, Backend, TestServer, backend_tests};
use crate::http::{Response, USER_AGENT, new_request_id};

backend_tests!(audit_records_each_auth_operation, audit_bounds_attempted_username);

/// Returns the audit entries of one request, waiting up to 5 s for the first in case the
/// server writes them after it responds.
fn entries_for_request(server: &TestServer, request_id: &str) -> Vec<AuditEntry> {
    let mut database = server.database();
    for _ in 0..50 {
        let entries = database.audit_entries_for_request(request_id);
        if !entries.is_empty() {
            return entries;
        }
        thread::sleep(Duration::from_millis(100));
    }
    Vec::new()
}

/// Asserts that the request `request_id` wrote exactly one entry with these values and returns it.
#[track_caller]
fn assert_single_entry(
    server: &TestServer,
    request_id: &str,
    response: &Response,
    action: &str,
    outcome: &str,
    actor_id: Option<i64>,
) -> AuditEntry {
    assert_eq!(
        response.header("X-Request-ID"),
        Some(request_id),
        "{action}: the response must echo X-Request-ID; body: {}",
        response.body
    );

    let mut entries = entries_for_request(server, request_id);
    assert_eq!(entries.len(), 1, "{action}: expected one audit entry for the request, got {entries:?}");
    let entry = entries.remove(0);

    assert_eq!(entry.action, action, "action of {entry:?}");
    assert_eq!(entry.outcome, outcome, "{action}: outcome of {entry:?}");
    assert_eq!(entry.actor_id, actor_id, "{action}: actor_id of {entry:?}");
    assert_eq!(entry.ip.as_deref(), Some("127.0.0.1"), "{action}: ip of {entry:?}");
    assert_eq!(entry.user_agent.as_deref(), Some(USER_AGENT), "{action}: user_agent of {entry:?}");
    assert_eq!(entry.request_id.as_deref(), Some(request_id), "{action}: request_id of {entry:?}");

    let details: Value = serde_json::from_str(&entry.details)
        .unwrap_or_else(|error| panic!("{action}: details is not JSON ({error}): {entry:?}"));
    assert!(details.is_object(), "{action}: details is not a JSON object: {entry:?}");
    entry
}

fn login_with_id(server: &TestServer, request_id: &str, username: &str, password: &str) -> Response {
    server
        .post("/api/auth/login/")
        .request_id(request_id)
        .json(&json!({"username": username, "password": password}))
        .send()
}

fn audit_records_each_auth_operation(backend: Backend) {
    let server = TestServer::start(backend);

    let id = new_request_id();
    let failed_login = login_with_id(&server, &id, "ghost-user", "not any password");
    assert_eq!(failed_login.status, 401, "login of an unknown user: {}", failed_login.body);
    let entry = assert_single_entry(&server, &id, &failed_login, "auth.login", "failure", None);
    let username_recorded =
        entry.actor_username.as_deref() == Some("ghost-user") || entry.details.contains("ghost-user");
    assert!(username_recorded, "a failed login records the attempted username: {entry:?}");

    let id = new_request_id();
    let login = login_with_id(&server, &id, ADMIN_USERNAME, ADMIN_PASSWORD);
    assert_eq!(login.status, 200, "login: {}", login.body);
    let admin_id = login.json()["user"]["id"].as_i64().expect("USER id is an integer");
    let entry = assert_single_entry(&server, &id, &login, "auth.login", "success", Some(admin_id));
    assert_eq!(entry.actor_username.as_deref(), Some(ADMIN_USERNAME), "actor_username of {entry:?}");
    let original = CookieJar::from_response(&login);

    let id = new_request_id();
    let refresh = server.post("/api/auth/refresh/").cookies(&original).csrf(&original).request_id(&id).send();
    assert_eq!(refresh.status, 200, "refresh: {}", refresh.body);
    assert_single_entry(&server, &id, &refresh, "auth.refresh", "success", Some(admin_id));

    let id = new_request_id();
    let reuse = server.post("/api/auth/refresh/").cookies(&original).csrf(&original).request_id(&id).send();
    assert_eq!(reuse.status, 401, "reuse of a rotated refresh token: {}", reuse.body);
    assert_single_entry(&server, &id, &reuse, "auth.token_reuse", "failure", Some(admin_id));

    let session = server.admin_session();
    let id = new_request_id();
    let logout = server.post("/api/auth/logout/").cookies(&session).csrf(&session).request_id(&id).send();
    assert_eq!(logout.status, 204, "logout: {}", logout.body);
    assert_single_entry(&server, &id, &logout, "auth.logout", "success", Some(admin_id));

    let session = server.admin_session();
    let id = new_request_id();
    let wrong_current = server
        .post("/api/auth/password/")
        .cookies(&session)
        .csrf(&session)
        .request_id(&id)
        .json(
            &json!({"current_password": "not the admin password", "new_password": "a brand new passphrase"}),
        )
        .send();
    assert_eq!(
        wrong_current.status, 400,
        "password change with a wrong current password: {}",
        wrong_current.body
    );
    assert_single_entry(&server, &id, &wrong_current, "auth.password_change", "failure", Some(admin_id));

    let id = new_request_id();
    let change = server
        .post("/api/auth/password/")
        .cookies(&session)
        .csrf(&session)
        .request_id(&id)
        .json(&json!({"current_password": ADMIN_PASSWORD, "new_password": "a brand new passphrase"}))
        .send();
    assert_eq!(change.status, 204, "password change: {}", change.body);
    assert_single_entry(&server, &id, &change, "auth.password_change", "success", Some(admin_id));

    let session = server.login_session(ADMIN_USERNAME, "a brand new passphrase");
    let id = new_request_id();
    let logout_all =
        server.post("/api/auth/logout-all/").cookies(&session).csrf(&session).request_id(&id).send();
    assert_eq!(logout_all.status, 204, "logout-all: {}", logout_all.body);
    assert_single_entry(&server, &id, &logout_all, "auth.logout_all", "success", Some(admin_id));
}

fn audit_bounds_attempted_username(backend: Backend) {
    let server = TestServer::start(backend);
    let long_username = "u".repeat(10_000);

    let id = new_request_id();
    let response = login_with_id(&server, &id, &long_username, "not any password");

    // Usernames have at most 150 characters, so either failure of the login contract fits.
    assert!(
        matches!(response.status, 400 | 401),
        "login with a 10,000-character username: status {}, body: {}",
        response.status,
        response.body
    );
    assert!(!response.body.contains(&long_username), "the response repeats the whole username");
    for entry in server.database().audit_entries() {
        let stored_whole = entry.actor_username.as_deref().is_some_and(|name| name.contains(&long_username))
            || entry.details.contains(&long_username);
        assert!(!stored_whole, "an audit entry stores the whole 10,000-character username: id {}", entry.id);
    }
}
