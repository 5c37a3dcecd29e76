//! The admin endpoints: permissions read on every request, the system_admin rules,
//! canonical usernames, and one audit entry per operation.

use serde_json::json;

use crate::harness::{Backend, TestServer, backend_tests};
use crate::http::{assert_error, new_request_id};

const USER_PASSWORD: &str = "a-long-user-password";

/// Every admin and log endpoint, with a body where one is needed.
const PROTECTED: [(&str, &str); 12] = [
    ("GET", "/api/admin/users/"),
    ("POST", "/api/admin/users/"),
    ("GET", "/api/admin/users/1/"),
    ("PATCH", "/api/admin/users/1/"),
    ("POST", "/api/admin/users/1/roles/"),
    ("DELETE", "/api/admin/users/1/roles/system_admin/"),
    ("GET", "/api/admin/roles/"),
    ("POST", "/api/admin/roles/"),
    ("GET", "/api/admin/roles/system_admin/"),
    ("PATCH", "/api/admin/roles/system_admin/"),
    ("GET", "/api/logs/"),
    ("GET", "/api/logs/export/"),
];

fn admin_token(server: &TestServer) -> String {
    server.obtain_token_pair("admin", crate::harness::ADMIN_PASSWORD).access
}

/// Creates a user through the API and returns its id.
fn create_user(server: &TestServer, admin: &str, username: &str) -> i64 {
    let response = server
        .post("/api/admin/users/")
        .bearer(admin)
        .json(&json!({"username": username, "password": USER_PASSWORD}))
        .send();
    assert_eq!(response.status, 201, "creating {username} failed: {}", response.body);
    response.json()["id"].as_i64().expect("the new user has an id")
}

fn create_role(server: &TestServer, admin: &str, name: &str, permissions: &[&str]) {
    let response = server
        .post("/api/admin/roles/")
        .bearer(admin)
        .json(&json!({"name": name, "permissions": permissions}))
        .send();
    assert_eq!(response.status, 201, "creating role {name} failed: {}", response.body);
}

fn grant(server: &TestServer, token: &str, user_id: i64, role: &str) -> crate::http::Response {
    server
        .post(&format!("/api/admin/users/{user_id}/roles/"))
        .bearer(token)
        .json(&json!({"role": role}))
        .send()
}

fn send(server: &TestServer, method: &'static str, path: &str, token: Option<&str>) -> crate::http::Response {
    let mut request = server.request(method, path);
    if let Some(token) = token {
        request = request.bearer(token);
    }
    if matches!(method, "POST" | "PATCH") {
        request = request.json(&json!({}));
    }
    request.send()
}

fn admin_endpoints_require_credentials(backend: Backend) {
    let server = TestServer::start(backend);
    for (method, path) in PROTECTED {
        let response = send(&server, method, path, None);
        assert_eq!(response.status, 401, "{method} {path}: {}", response.body);
        assert_error(&response, 401, "not_authenticated");
    }
}

fn admin_endpoints_deny_without_permission(backend: Backend) {
    let server = TestServer::start(backend);
    let admin = admin_token(&server);
    let user_id = create_user(&server, &admin, "plain");
    let token = server.obtain_token_pair("plain", USER_PASSWORD).access;

    for (method, path) in PROTECTED {
        let response = send(&server, method, path, Some(&token));
        assert_error(&response, 403, "permission_denied");
    }

    let denied: Vec<_> = server
        .database()
        .audit_entries()
        .into_iter()
        .filter(|entry| entry.action == "access.denied")
        .collect();
    assert_eq!(denied.len(), PROTECTED.len(), "one access.denied entry per refused request: {denied:?}");
    assert!(denied.iter().all(|entry| entry.actor_id == Some(user_id)), "{denied:?}");
    assert!(denied.iter().all(|entry| entry.outcome == "denied"), "{denied:?}");
}

fn users_manage_cannot_grant_system_admin(backend: Backend) {
    let server = TestServer::start(backend);
    let admin = admin_token(&server);
    create_role(&server, &admin, "user-admin", &["users.manage", "roles.manage"]);
    let manager_id = create_user(&server, &admin, "manager");
    assert_eq!(grant(&server, &admin, manager_id, "user-admin").status, 204);
    let manager = server.obtain_token_pair("manager", USER_PASSWORD).access;

    let response = grant(&server, &manager, manager_id, "system_admin");
    assert_error(&response, 403, "permission_denied");

    let created = server
        .post("/api/admin/users/")
        .bearer(&manager)
        .json(&json!({"username": "sneaky", "password": USER_PASSWORD, "roles": ["system_admin"]}))
        .send();
    assert_error(&created, 403, "permission_denied");
    let revoke = server.request("DELETE", "/api/admin/users/1/roles/system_admin/").bearer(&manager).send();
    assert_error(&revoke, 403, "permission_denied");

    let other_role = grant(&server, &manager, manager_id, "user-admin");
    assert_eq!(other_role.status, 204, "granting an ordinary role is allowed: {}", other_role.body);
}

fn user_manager_cannot_take_over_admin(backend: Backend) {
    let server = TestServer::start(backend);
    let admin = admin_token(&server);
    create_role(&server, &admin, "user-admin", &["users.manage"]);
    create_role(&server, &admin, "role-admin", &["roles.manage"]);
    let manager_id = create_user(&server, &admin, "manager");
    let role_admin_id = create_user(&server, &admin, "role-manager");
    assert_eq!(grant(&server, &admin, manager_id, "user-admin").status, 204);
    assert_eq!(grant(&server, &admin, role_admin_id, "role-admin").status, 204);
    let manager = server.obtain_token_pair("manager", USER_PASSWORD).access;
    let role_manager = server.obtain_token_pair("role-manager", USER_PASSWORD).access;

    for body in [
        json!({"password": "taken-over-password"}),
        json!({"is_active": false}),
        json!({"email": "x@evil.test"}),
    ] {
        let response = server.request("PATCH", "/api/admin/users/1/").bearer(&manager).json(&body).send();
        assert_error(&response, 403, "permission_denied");
    }
    assert_eq!(
        server.login("admin", crate::harness::ADMIN_PASSWORD).status,
        200,
        "the admin password is unchanged"
    );

    let escalating_role = server
        .post("/api/admin/roles/")
        .bearer(&role_manager)
        .json(&json!({"name": "escalate", "permissions": ["users.manage"]}))
        .send();
    assert_error(&escalating_role, 403, "permission_denied");
    let borrowed_role = grant(&server, &role_manager, role_admin_id, "user-admin");
    assert_error(&borrowed_role, 403, "permission_denied");
    let widened = server
        .request("PATCH", "/api/admin/roles/role-admin/")
        .bearer(&role_manager)
        .json(&json!({"permissions": ["roles.manage", "logs.export"]}))
        .send();
    assert_error(&widened, 403, "permission_denied");

    let own_level = server
        .request("PATCH", &format!("/api/admin/users/{role_admin_id}/"))
        .bearer(&manager)
        .json(&json!({"email": "peer@example.com"}))
        .send();
    assert_error(&own_level, 403, "permission_denied");
    let plain_id = create_user(&server, &admin, "plain-user");
    let allowed = server
        .request("PATCH", &format!("/api/admin/users/{plain_id}/"))
        .bearer(&manager)
        .json(&json!({"email": "plain@example.com"}))
        .send();
    assert_eq!(allowed.status, 200, "a user with fewer permissions can be managed: {}", allowed.body);
}

fn nul_characters_rejected_cleanly(backend: Backend) {
    let server = TestServer::start(backend);
    let admin = admin_token(&server);

    let login = server.login("ad\u{0}min", "wrong-password-123");
    assert_error(&login, 401, "invalid_credentials");
    let attempts = server.database().audit_entries();
    let recorded = attempts.iter().filter(|e| e.action == "auth.login" && e.outcome == "failure").count();
    assert_eq!(recorded, 1, "the attempt is audited: {attempts:?}");

    for path in ["/api/admin/users/?username=%00", "/api/logs/?action=a%00b", "/api/admin/roles/x%00/"] {
        let response = server.get(path).bearer(&admin).send();
        assert_error(&response, 400, "invalid");
    }
    let role = server
        .post("/api/admin/roles/")
        .bearer(&admin)
        .json(&json!({"name": "nul-role", "description": "bad\u{0}text"}))
        .send();
    assert_error(&role, 400, "invalid");
    let granted = grant(&server, &admin, 1, "ghost\u{0}role");
    assert_error(&granted, 400, "invalid");
}

fn grant_and_revoke_apply_to_existing_token(backend: Backend) {
    let server = TestServer::start(backend);
    let admin = admin_token(&server);
    create_role(&server, &admin, "auditor", &["logs.read"]);
    let user_id = create_user(&server, &admin, "auditor-to-be");
    let token = server.obtain_token_pair("auditor-to-be", USER_PASSWORD).access;

    assert_error(&server.get("/api/logs/").bearer(&token).send(), 403, "permission_denied");

    assert_eq!(grant(&server, &admin, user_id, "auditor").status, 204);
    let granted = server.get("/api/logs/").bearer(&token).send();
    assert_eq!(granted.status, 200, "the grant applies to the token issued before it: {}", granted.body);

    let revoked =
        server.request("DELETE", &format!("/api/admin/users/{user_id}/roles/auditor/")).bearer(&admin).send();
    assert_eq!(revoked.status, 204, "{}", revoked.body);
    assert_error(&server.get("/api/logs/").bearer(&token).send(), 403, "permission_denied");
}

fn last_system_admin_protected(backend: Backend) {
    let server = TestServer::start(backend);
    let admin = admin_token(&server);

    let deactivate = server
        .request("PATCH", "/api/admin/users/1/")
        .bearer(&admin)
        .json(&json!({"is_active": false}))
        .send();
    assert_error(&deactivate, 409, "last_system_admin");
    let revoke = server.request("DELETE", "/api/admin/users/1/roles/system_admin/").bearer(&admin).send();
    assert_error(&revoke, 409, "last_system_admin");
    let delete_role = server.request("DELETE", "/api/admin/roles/system_admin/").bearer(&admin).send();
    assert_error(&delete_role, 409, "conflict");

    let second_id = create_user(&server, &admin, "second-admin");
    assert_eq!(grant(&server, &admin, second_id, "system_admin").status, 204);
    let revoke = server.request("DELETE", "/api/admin/users/1/roles/system_admin/").bearer(&admin).send();
    assert_eq!(revoke.status, 204, "with a second admin the role can go: {}", revoke.body);
}

fn username_variants_rejected(backend: Backend) {
    let server = TestServer::start(backend);
    let admin = admin_token(&server);
    create_user(&server, &admin, "alice");

    for variant in ["Alice", "ALICE", "\u{ff41}lice", "ａｌｉｃｅ"] {
        let response = server
            .post("/api/admin/users/")
            .bearer(&admin)
            .json(&json!({"username": variant, "password": USER_PASSWORD}))
            .send();
        assert_error(&response, 409, "username_taken");
    }
    let login = server.login("ALICE", USER_PASSWORD);
    assert_eq!(login.status, 200, "login finds alice whatever the case: {}", login.body);
    assert_eq!(login.json()["user"]["username"], "alice");

    let invalid = server
        .post("/api/admin/users/")
        .bearer(&admin)
        .json(&json!({"username": "bad name/", "password": USER_PASSWORD}))
        .send();
    assert_error(&invalid, 400, "invalid");
    let short = server
        .post("/api/admin/users/")
        .bearer(&admin)
        .json(&json!({"username": "bob", "password": "short"}))
        .send();
    assert_error(&short, 400, "invalid");
    assert!(short.json()["fields"]["password"].is_array(), "{}", short.body);
}

fn deactivation_revokes_sessions(backend: Backend) {
    let server = TestServer::start(backend);
    let admin = admin_token(&server);
    let user_id = create_user(&server, &admin, "leaver");
    let pair = server.obtain_token_pair("leaver", USER_PASSWORD);

    let response = server
        .request("PATCH", &format!("/api/admin/users/{user_id}/"))
        .bearer(&admin)
        .json(&json!({"is_active": false}))
        .send();
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(response.json()["is_active"], false);

    assert_error(&server.refresh_token(&pair.refresh), 401, "token_not_valid");
    assert_error(&server.login("leaver", USER_PASSWORD), 401, "invalid_credentials");
    assert_error(&server.get("/api/auth/me/").bearer(&pair.access).send(), 401, "token_not_valid");
}

/// Checks that a user made inactive in the database without the API, whose refresh
/// token is therefore still usable, cannot rotate it: the family is revoked and the
/// failure audited.
fn inactive_owner_cannot_rotate(backend: Backend) {
    let server = TestServer::start(backend);
    let admin = admin_token(&server);
    let user_id = create_user(&server, &admin, "dormant");
    let pair = server.obtain_token_pair("dormant", USER_PASSWORD);
    server.database().execute(&format!("UPDATE users SET is_active = false WHERE id = {user_id}"));

    let request_id = new_request_id();
    let response = server
        .post("/api/auth/token/refresh/")
        .json(&json!({"refresh": pair.refresh}))
        .request_id(&request_id)
        .send();
    assert_error(&response, 401, "token_not_valid");

    // PostgreSQL stores no successor; SQLite stores one and revokes it in the same
    // transaction.
    let tokens = server.database().refresh_tokens_of_user(user_id);
    assert_eq!(tokens[0].used, 1, "the presented token is used: {tokens:?}");
    assert!(tokens.iter().all(|token| token.revoked == 1), "the family is revoked: {tokens:?}");

    let entries = server.database().audit_entries_for_request(&request_id);
    assert_eq!(entries.len(), 1, "one entry for the request: {entries:?}");
    assert_eq!(entries[0].action, "auth.refresh");
    assert_eq!(entries[0].outcome, "failure");
    assert_eq!(entries[0].actor_id, Some(user_id));
    assert!(entries[0].details.contains("inactive_user"), "{entries:?}");
}

fn admin_operations_audited(backend: Backend) {
    let server = TestServer::start(backend);
    let admin = admin_token(&server);
    let before = server.database().audit_entries().len();

    create_role(&server, &admin, "clerk", &["logs.read"]);
    let user_id = create_user(&server, &admin, "clerk-user");
    assert_eq!(grant(&server, &admin, user_id, "clerk").status, 204);
    let update = server
        .request("PATCH", &format!("/api/admin/users/{user_id}/"))
        .bearer(&admin)
        .json(&json!({"email": "clerk@example.com", "password": "another-long-password"}))
        .send();
    assert_eq!(update.status, 200, "{}", update.body);
    let revoke =
        server.request("DELETE", &format!("/api/admin/users/{user_id}/roles/clerk/")).bearer(&admin).send();
    assert_eq!(revoke.status, 204, "{}", revoke.body);
    let role_update = server
        .request("PATCH", "/api/admin/roles/clerk/")
        .bearer(&admin)
        .json(&json!({"description": "front desk"}))
        .send();
    assert_eq!(role_update.status, 200, "{}", role_update.body);
    let deactivate = server
        .request("PATCH", &format!("/api/admin/users/{user_id}/"))
        .bearer(&admin)
        .json(&json!({"is_active": false}))
        .send();
    assert_eq!(deactivate.status, 200, "{}", deactivate.body);
    assert_eq!(server.request("DELETE", "/api/admin/roles/clerk/").bearer(&admin).send().status, 204);

    let actions: Vec<String> = server.database().audit_entries()[before..]
        .iter()
        .filter(|entry| entry.action != "auth.login")
        .map(|entry| entry.action.clone())
        .collect();
    let expected = [
        "role.create",
        "user.create",
        "role.grant",
        "user.update",
        "role.revoke",
        "role.update",
        "user.deactivate",
        "role.delete",
    ];
    assert_eq!(actions, expected, "one entry per operation, in order");
}

fn failed_operation_leaves_no_audit_entry(backend: Backend) {
    let server = TestServer::start(backend);
    let admin = admin_token(&server);
    create_user(&server, &admin, "taken");
    let before = server.database().audit_entries().len();

    let duplicate = server
        .post("/api/admin/users/")
        .bearer(&admin)
        .json(&json!({"username": "TAKEN", "password": USER_PASSWORD}))
        .send();
    assert_error(&duplicate, 409, "username_taken");

    let after = server.database().audit_entries();
    assert_eq!(after.len(), before, "a failed creation writes no entry: {:?}", &after[before..]);
}

/// Installs a trigger that makes every `user.create` audit insert fail.
fn break_user_create_audit(server: &TestServer) {
    use diesel::connection::SimpleConnection;

    let mut db = server.database();
    let result = match &mut db {
        crate::db::Db::Sqlite(connection) => connection.batch_execute(
            "CREATE TRIGGER test_fail_user_create BEFORE INSERT ON audit_log \
             WHEN NEW.action = 'user.create' BEGIN SELECT RAISE(ABORT, 'audit broken by test'); END;",
        ),
        crate::db::Db::Postgres(connection) => connection.batch_execute(
            "CREATE FUNCTION test_fail_user_create() RETURNS trigger AS $$ BEGIN \
               IF NEW.action = 'user.create' THEN RAISE EXCEPTION 'audit broken by test'; END IF; \
               RETURN NEW; END; $$ LANGUAGE plpgsql; \
             CREATE TRIGGER test_fail_user_create BEFORE INSERT ON audit_log \
               FOR EACH ROW EXECUTE FUNCTION test_fail_user_create();",
        ),
    };
    result.expect("installing the failing trigger failed");
}

fn failed_audit_write_leaves_no_operation(backend: Backend) {
    let server = TestServer::start(backend);
    let admin = admin_token(&server);
    break_user_create_audit(&server);

    let response = server
        .post("/api/admin/users/")
        .bearer(&admin)
        .json(&json!({"username": "ghost", "password": USER_PASSWORD}))
        .send();
    assert_error(&response, 500, "server_error");
    assert!(!response.body.contains("audit broken"), "a 500 body says nothing internal: {}", response.body);

    let lookup = server.get("/api/admin/users/?username=ghost").bearer(&admin).send();
    assert_eq!(lookup.status, 200, "{}", lookup.body);
    assert_eq!(lookup.json()["results"], json!([]), "the user must not exist without its audit entry");
}

fn audit_table_rejects_update_and_delete(backend: Backend) {
    use diesel::connection::SimpleConnection;

    let server = TestServer::start(backend);
    let mut db = server.database();
    let statements = ["UPDATE audit_log SET action = 'tampered'", "DELETE FROM audit_log"];
    for statement in statements {
        let result = match &mut db {
            crate::db::Db::Sqlite(connection) => connection.batch_execute(statement),
            crate::db::Db::Postgres(connection) => connection.batch_execute(statement),
        };
        assert!(result.is_err(), "the database must refuse {statement:?}");
    }
    let entries = db.audit_entries();
    assert!(!entries.is_empty(), "the entries are still there");
    assert!(entries.iter().all(|entry| entry.action != "tampered"), "{entries:?}");
}

backend_tests!(
    admin_endpoints_require_credentials,
    admin_endpoints_deny_without_permission,
    users_manage_cannot_grant_system_admin,
    user_manager_cannot_take_over_admin,
    nul_characters_rejected_cleanly,
    grant_and_revoke_apply_to_existing_token,
    last_system_admin_protected,
    username_variants_rejected,
    deactivation_revokes_sessions,
    inactive_owner_cannot_rotate,
    admin_operations_audited,
    failed_operation_leaves_no_audit_entry,
    failed_audit_write_leaves_no_operation,
    audit_table_rejects_update_and_delete,
);
