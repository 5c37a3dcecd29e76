//! `GET /api/auth/me/` responds from a cache of user views: a change is visible on the
//! instance that made it at once, and on another instance after the cache's poll
//! interval (250 ms; the tests wait a full second).

use std::thread;
use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{ADMIN_PASSWORD, Backend, Instance, TestServer, backend_tests};
use crate::http::assert_error;

const USER_PASSWORD: &str = "a-long-user-password";

/// The maximum time a change may take to reach another instance.
const PROPAGATION: Duration = Duration::from_secs(1);

fn me_on(instance: &Instance, agent: &ureq::Agent, token: &str) -> (u16, Value) {
    let mut response = agent
        .get(format!("{}/api/auth/me/", instance.base_url))
        .header("Authorization", &format!("Bearer {token}"))
        .call()
        .expect("GET /api/auth/me/ on the second instance failed");
    let status = response.status().as_u16();
    let body = response.body_mut().read_json::<Value>().unwrap_or(Value::Null);
    (status, body)
}

/// Creates `username` holding `role`, and returns its id.
fn user_with_role(server: &TestServer, admin: &str, username: &str, role: &str) -> i64 {
    let role_created = server.post("/api/admin/roles/").bearer(admin).json(&json!({"name": role})).send();
    assert_eq!(role_created.status, 201, "{}", role_created.body);
    let created = server
        .post("/api/admin/users/")
        .bearer(admin)
        .json(&json!({"username": username, "password": USER_PASSWORD, "roles": [role]}))
        .send();
    assert_eq!(created.status, 201, "{}", created.body);
    created.json()["id"].as_i64().expect("the new user has an id")
}

fn me_reflects_change_on_same_instance(backend: Backend) {
    let server = TestServer::start(backend);
    let admin = server.obtain_token_pair("admin", ADMIN_PASSWORD).access;
    let user_id = user_with_role(&server, &admin, "cached", "clerk");
    let token = server.obtain_token_pair("cached", USER_PASSWORD).access;

    let before = server.get("/api/auth/me/").bearer(&token).send();
    assert_eq!(before.json()["roles"], json!(["clerk"]), "{}", before.body);

    let revoked =
        server.request("DELETE", &format!("/api/admin/users/{user_id}/roles/clerk/")).bearer(&admin).send();
    assert_eq!(revoked.status, 204, "{}", revoked.body);
    let after = server.get("/api/auth/me/").bearer(&token).send();
    assert_eq!(after.json()["roles"], json!([]), "the revoke is visible at once: {}", after.body);

    let deactivated = server
        .request("PATCH", &format!("/api/admin/users/{user_id}/"))
        .bearer(&admin)
        .json(&json!({"is_active": false}))
        .send();
    assert_eq!(deactivated.status, 200, "{}", deactivated.body);
    assert_error(&server.get("/api/auth/me/").bearer(&token).send(), 401, "token_not_valid");
}

fn me_reflects_change_on_other_instance(backend: Backend) {
    let server = TestServer::start(backend);
    let other = server.start_instance();
    let agent = crate::harness::new_agent();
    let admin = server.obtain_token_pair("admin", ADMIN_PASSWORD).access;
    let user_id = user_with_role(&server, &admin, "roaming", "clerk");
    let token = server.obtain_token_pair("roaming", USER_PASSWORD).access;

    let (status, before) = me_on(&other, &agent, &token);
    assert_eq!(status, 200, "{before}");
    assert_eq!(before["roles"], json!(["clerk"]), "the other instance caches this view: {before}");

    let revoked =
        server.request("DELETE", &format!("/api/admin/users/{user_id}/roles/clerk/")).bearer(&admin).send();
    assert_eq!(revoked.status, 204, "{}", revoked.body);
    thread::sleep(PROPAGATION);
    let (_, after) = me_on(&other, &agent, &token);
    assert_eq!(after["roles"], json!([]), "the revoke reaches the other instance: {after}");

    let deactivated = server
        .request("PATCH", &format!("/api/admin/users/{user_id}/"))
        .bearer(&admin)
        .json(&json!({"is_active": false}))
        .send();
    assert_eq!(deactivated.status, 200, "{}", deactivated.body);
    thread::sleep(PROPAGATION);
    let (status, body) = me_on(&other, &agent, &token);
    assert_eq!(status, 401, "the deactivation reaches the other instance: {body}");
}

backend_tests!(me_reflects_change_on_same_instance, me_reflects_change_on_other_instance);
