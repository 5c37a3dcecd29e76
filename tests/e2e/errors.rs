//! Contract error responses, optional trailing slashes, `X-Request-ID` and the health endpoints.

use serde_json::json;

use crate::harness::{ADMIN_PASSWORD, ADMIN_USERNAME, Backend, TestServer, backend_tests};
use crate::http::{Response, assert_error, assert_request_id, new_request_id};

backend_tests!(
    errors_follow_contract,
    login_validation_names_fields,
    trailing_slash_is_optional,
    operations_endpoints_respond,
    request_id_is_echoed,
);

fn errors_follow_contract(backend: Backend) {
    let server = TestServer::start(backend);

    let malformed = server
        .post("/api/auth/login/")
        .body("application/json", br#"{"username": "admin", "password": "#.to_vec())
        .send();
    assert_error(&malformed, 400, "parse_error");
    assert_request_id(&malformed);

    let plain_text =
        server.post("/api/auth/login/").body("text/plain", b"username=admin&password=secret".to_vec()).send();
    assert_error(&plain_text, 415, "unsupported_media_type");
    assert_request_id(&plain_text);

    let unknown_path = server.get("/api/no-such-endpoint/").send();
    assert_error(&unknown_path, 404, "not_found");
    assert_request_id(&unknown_path);

    let wrong_method = server.get("/api/auth/login/").send();
    assert_error(&wrong_method, 405, "method_not_allowed");
    assert_request_id(&wrong_method);

    let unauthenticated = server.get("/api/auth/me/").send();
    assert_error(&unauthenticated, 401, "not_authenticated");
    assert_request_id(&unauthenticated);
}

fn login_validation_names_fields(backend: Backend) {
    let server = TestServer::start(backend);

    let response = server.post("/api/auth/login/").json(&json!({"username": ADMIN_USERNAME})).send();

    assert_error(&response, 400, "invalid");
    let body = response.json();
    let messages = body["fields"]["password"].as_array().cloned().unwrap_or_default();
    assert!(!messages.is_empty(), "fields.password has no messages; body: {}", response.body);
}

/// Sends a request to a path without its trailing slash and follows one 308 to the slashed path.
fn send_following_308(server: &TestServer, path: &str, send: impl Fn(&str) -> Response) -> Response {
    let first = send(path);
    if first.status != 308 {
        return first;
    }
    let location = first.header("Location").unwrap_or_default();
    let target = location.strip_prefix(server.base_url.as_str()).unwrap_or(location);
    assert_eq!(target, format!("{path}/"), "the 308 must point to the slashed path; body: {}", first.body);
    send(target)
}

fn trailing_slash_is_optional(backend: Backend) {
    let server = TestServer::start(backend);

    let login = send_following_308(&server, "/api/auth/login", |path| {
        server.post(path).json(&json!({"username": ADMIN_USERNAME, "password": ADMIN_PASSWORD})).send()
    });
    assert_eq!(login.status, 200, "POST /api/auth/login without the slash: {}", login.body);

    let jar = crate::cookies::CookieJar::from_response(&login);
    let me = send_following_308(&server, "/api/auth/me", |path| server.get(path).cookies(&jar).send());
    assert_eq!(me.status, 200, "GET /api/auth/me without the slash: {}", me.body);
    assert_eq!(me.json()["username"], ADMIN_USERNAME, "GET /api/auth/me without the slash: {}", me.body);

    // A path parameter and a query string survive the added slash.
    let user_id = me.json()["id"].clone();
    let user_path = format!("/api/admin/users/{user_id}");
    let user = send_following_308(&server, &user_path, |path| server.get(path).cookies(&jar).send());
    assert_eq!(user.status, 200, "GET {user_path}: {}", user.body);
    assert_eq!(user.json()["id"], user_id, "GET {user_path}: {}", user.body);

    let logs = send_following_308(&server, "/api/logs?action=auth.login&limit=1", |path| {
        server.get(path).cookies(&jar).send()
    });
    assert_eq!(logs.status, 200, "GET /api/logs?action=auth.login: {}", logs.body);
    let results = logs.json()["results"].as_array().cloned().unwrap_or_default();
    assert_eq!(results.len(), 1, "limit=1 applies: {}", logs.body);
    assert_eq!(results[0]["action"], "auth.login", "the action filter applies: {}", logs.body);
}

fn operations_endpoints_respond(backend: Backend) {
    let server = TestServer::start(backend);

    let health = server.get("/healthz").send();
    assert_eq!(health.status, 200, "/healthz: {}", health.body);
    assert_request_id(&health);

    let ready = server.get("/readyz").send();
    assert_eq!(ready.status, 200, "/readyz: {}", ready.body);
    assert_request_id(&ready);

    let jwks = server.get("/.well-known/jwks.json").send();
    assert_eq!(jwks.status, 200, "/.well-known/jwks.json: {}", jwks.body);
    assert_eq!(jwks.json(), json!({"keys": []}), "HS256 publishes no keys: {}", jwks.body);
}

fn request_id_is_echoed(backend: Backend) {
    let server = TestServer::start(backend);
    let id = new_request_id();

    let echoed = server.get("/healthz").request_id(&id).send();
    assert_eq!(echoed.header("X-Request-ID"), Some(id.as_str()), "a sane X-Request-ID is echoed");

    let first = server.get("/api/no-such-endpoint/").send();
    let second = server.get("/api/no-such-endpoint/").send();
    assert_request_id(&first);
    assert_request_id(&second);
    assert_ne!(
        first.header("X-Request-ID"),
        second.header("X-Request-ID"),
        "requests without X-Request-ID get distinct new ids"
    );
}
