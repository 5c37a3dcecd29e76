//! The token API for services: obtain, refresh, verify and blacklist.

use serde_json::json;

use crate::harness::{ADMIN_PASSWORD, ADMIN_USERNAME, Backend, TestServer, backend_tests};
use crate::http::{TokenPair, assert_error};
use crate::login::ACCESS_LIFETIME_SECONDS;

backend_tests!(
    token_obtain_returns_pair,
    token_obtain_rejects_wrong_password,
    access_token_has_contract_claims,
    token_refresh_rotates_and_detects_reuse,
    token_verify_accepts_only_access_tokens,
    token_blacklist_revokes_refresh,
);

fn token_obtain_returns_pair(backend: Backend) {
    let server = TestServer::start(backend);

    // Token obtain needs no CSRF token, even with a session cookie present.
    let jar = server.admin_session();
    let response = server
        .post("/api/auth/token/")
        .cookies(&jar)
        .json(&json!({"username": ADMIN_USERNAME, "password": ADMIN_PASSWORD}))
        .send();

    assert_eq!(response.status, 200, "token obtain failed: {}", response.body);
    let pair = TokenPair::from_response(&response);
    let me = server.get("/api/auth/me/").bearer(&pair.access).send();
    assert_eq!(me.status, 200, "GET /me with the obtained access token: {}", me.body);
    assert_eq!(me.json()["username"], ADMIN_USERNAME, "GET /me returned another user: {}", me.body);
}

fn token_obtain_rejects_wrong_password(backend: Backend) {
    let server = TestServer::start(backend);

    let wrong_password = server
        .post("/api/auth/token/")
        .json(&json!({"username": ADMIN_USERNAME, "password": "not the admin password"}))
        .send();
    let unknown_user = server
        .post("/api/auth/token/")
        .json(&json!({"username": "nobody-by-this-name", "password": "not the admin password"}))
        .send();

    assert_error(&wrong_password, 401, "invalid_credentials");
    assert_error(&unknown_user, 401, "invalid_credentials");
    assert_eq!(wrong_password.body, unknown_user.body, "token obtain failures must share one body");
}

fn access_token_has_contract_claims(backend: Backend) {
    let server = TestServer::start(backend);
    let login = server.login(ADMIN_USERNAME, ADMIN_PASSWORD);
    assert_eq!(login.status, 200, "login failed: {}", login.body);
    let user_id = login.json()["user"]["id"].as_i64().expect("USER id is an integer");
    let pair = server.obtain_token_pair(ADMIN_USERNAME, ADMIN_PASSWORD);

    let token = crate::jwt::decode(&pair.access);
    let claims = &token.claims;

    assert_eq!(token.header["alg"], "HS256", "header: {:?}", token.header);
    let kid = token.header.get("kid").and_then(|kid| kid.as_str()).unwrap_or_default();
    assert!(!kid.is_empty(), "the header has no kid: {:?}", token.header);
    assert_eq!(claims["sub"], user_id.to_string(), "sub is the user id as a string: {claims:?}");
    assert_eq!(claims["token_type"], "access", "token_type: {claims:?}");
    assert_eq!(claims["iss"], "finetune", "iss: {claims:?}");
    let audience_matches = claims["aud"] == "finetune-erp"
        || claims["aud"].as_array().is_some_and(|audiences| audiences.contains(&json!("finetune-erp")));
    assert!(audience_matches, "aud is not finetune-erp: {claims:?}");
    let jti = claims.get("jti").and_then(|jti| jti.as_str()).unwrap_or_default();
    assert!(!jti.is_empty(), "jti is missing: {claims:?}");
    let roles = claims["roles"].as_array().cloned().unwrap_or_default();
    assert!(roles.contains(&json!("system_admin")), "roles lack system_admin: {claims:?}");
    let iat = claims["iat"].as_i64().expect("iat is an integer");
    let exp = claims["exp"].as_i64().expect("exp is an integer");
    assert_eq!(exp - iat, ACCESS_LIFETIME_SECONDS, "the access lifetime is exp - iat: {claims:?}");

    let refresh_is_jwt = pair.refresh.split('.').count() == 3;
    assert!(!refresh_is_jwt, "the refresh token must be opaque, not a JWT: {}", pair.refresh);
    // At least 256 random bits take 43 base64url characters.
    assert!(pair.refresh.len() >= 43, "the refresh token is shorter than 256 bits: {}", pair.refresh);
    let url_safe =
        pair.refresh.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~'));
    assert!(url_safe, "the refresh token is not URL-safe: {}", pair.refresh);
}

fn token_refresh_rotates_and_detects_reuse(backend: Backend) {
    let server = TestServer::start(backend);
    let original = server.obtain_token_pair(ADMIN_USERNAME, ADMIN_PASSWORD);

    let rotation = server.refresh_token(&original.refresh);
    assert_eq!(rotation.status, 200, "token refresh failed: {}", rotation.body);
    let successor = TokenPair::from_response(&rotation);
    assert_ne!(successor.refresh, original.refresh, "refresh must return a new refresh token");
    let me = server.get("/api/auth/me/").bearer(&successor.access).send();
    assert_eq!(me.status, 200, "GET /me with the refreshed access token: {}", me.body);

    let reuse = server.refresh_token(&original.refresh);
    assert_error(&reuse, 401, "token_reused");

    let after_reuse = server.refresh_token(&successor.refresh);
    assert_error(&after_reuse, 401, "token_not_valid");

    let unknown = server.refresh_token("an-unknown-refresh-token-an-unknown-refresh-token");
    assert_error(&unknown, 401, "token_not_valid");
}

fn token_verify_accepts_only_access_tokens(backend: Backend) {
    let server = TestServer::start(backend);
    let pair = server.obtain_token_pair(ADMIN_USERNAME, ADMIN_PASSWORD);
    let verify = |token: &str| server.post("/api/auth/token/verify/").json(&json!({"token": token})).send();

    let access = verify(&pair.access);
    assert_eq!(access.status, 200, "verify of a valid access token: {}", access.body);
    assert_eq!(access.json(), json!({}), "verify returns an empty object: {}", access.body);

    assert_error(&verify(&pair.refresh), 401, "token_not_valid");
    assert_error(&verify("not-a-jwt"), 401, "token_not_valid");
}

fn token_blacklist_revokes_refresh(backend: Backend) {
    let server = TestServer::start(backend);
    let pair = server.obtain_token_pair(ADMIN_USERNAME, ADMIN_PASSWORD);

    let response = server.post("/api/auth/token/blacklist/").json(&json!({"refresh": pair.refresh})).send();

    assert_eq!(response.status, 200, "blacklist failed: {}", response.body);
    assert_eq!(response.json(), json!({}), "blacklist returns an empty object: {}", response.body);
    let refresh = server.refresh_token(&pair.refresh);
    assert_error(&refresh, 401, "token_not_valid");

    let unknown = server
        .post("/api/auth/token/blacklist/")
        .json(&json!({"refresh": "an-unknown-refresh-token-an-unknown-refresh-token"}))
        .send();
    assert_error(&unknown, 401, "token_not_valid");
}
