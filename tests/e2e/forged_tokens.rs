//! Access-token verification against forged, altered and misused tokens.
//!
//! Forged tokens are signed with the server's `SECRET_KEY` as the HS256 key and carry the
//! `kid` of a real access token. A control case shows that the server accepts such a token,
//! so each rejection below comes from the one thing the case changes.

use serde_json::{Value, json};

use crate::harness::{ADMIN_PASSWORD, ADMIN_USERNAME, Backend, SECRET_KEY, TestServer, backend_tests};
use crate::http::Response;
use crate::jwt::{DecodedJwt, decode, sign_hs256, tamper_claims, unix_now, unsigned};

/// A 48-byte key the server does not know.
const WRONG_KEY: &[u8] = b"not-the-server-key-0123456789abcdef0123456789ab";

backend_tests!(forged_token_with_server_key_is_accepted, forged_tokens_are_rejected);

fn check_on_me(server: &TestServer, token: &str) -> Response {
    server.get("/api/auth/me/").bearer(token).send()
}

fn check_on_verify(server: &TestServer, token: &str) -> Response {
    server.post("/api/auth/token/verify/").json(&json!({"token": token})).send()
}

/// Returns the claims of `real` with a fresh `jti`, `iat` now and `exp` one lifetime later.
fn fresh_claims(real: &DecodedJwt) -> serde_json::Map<String, Value> {
    let mut claims = real.claims.clone();
    let now = unix_now();
    claims.insert("jti".to_owned(), json!(uuid::Uuid::new_v4().simple().to_string()));
    claims.insert("iat".to_owned(), json!(now));
    claims.insert("exp".to_owned(), json!(now + 300));
    claims
}

fn forged_token_with_server_key_is_accepted(backend: Backend) {
    let server = TestServer::start(backend);
    let real = decode(&server.obtain_token_pair(ADMIN_USERNAME, ADMIN_PASSWORD).access);

    let forged = sign_hs256(&real.header, &fresh_claims(&real), SECRET_KEY);

    let me = check_on_me(&server, &forged);
    assert_eq!(
        me.status, 200,
        "a token signed with SECRET_KEY as the HS256 key was rejected, so the forged cases \
         in forged_tokens_are_rejected prove nothing; body: {}",
        me.body
    );
    let verify = check_on_verify(&server, &forged);
    assert_eq!(verify.status, 200, "verify of the control token: {}", verify.body);
}

fn forged_tokens_are_rejected(backend: Backend) {
    let server = TestServer::start(backend);
    let pair = server.obtain_token_pair(ADMIN_USERNAME, ADMIN_PASSWORD);
    let real = decode(&pair.access);
    let header = &real.header;
    let now = unix_now();

    let mut expired = fresh_claims(&real);
    expired.insert("iat".to_owned(), json!(now - 7200));
    expired.insert("exp".to_owned(), json!(now - 3600));

    let mut none_header = header.clone();
    none_header.insert("alg".to_owned(), json!("none"));

    let mut without_exp = fresh_claims(&real);
    without_exp.remove("exp");

    let mut refresh_type = fresh_claims(&real);
    refresh_type.insert("token_type".to_owned(), json!("refresh"));

    let mut without_type = fresh_claims(&real);
    without_type.remove("token_type");

    let mut other_issuer = fresh_claims(&real);
    other_issuer.insert("iss".to_owned(), json!("someone-else"));

    let mut other_audience = fresh_claims(&real);
    other_audience.insert("aud".to_owned(), json!("another-service"));

    let cases: Vec<(&str, String)> = vec![
        ("refresh token as access token", pair.refresh.clone()),
        ("tampered claims", tamper_claims(&pair.access)),
        ("expired", sign_hs256(header, &expired, SECRET_KEY)),
        ("alg none", unsigned(&none_header, &fresh_claims(&real))),
        ("missing exp", sign_hs256(header, &without_exp, SECRET_KEY)),
        ("wrong key", sign_hs256(header, &fresh_claims(&real), WRONG_KEY)),
        ("token_type refresh", sign_hs256(header, &refresh_type, SECRET_KEY)),
        ("missing token_type", sign_hs256(header, &without_type, SECRET_KEY)),
        ("other issuer", sign_hs256(header, &other_issuer, SECRET_KEY)),
        ("other audience", sign_hs256(header, &other_audience, SECRET_KEY)),
    ];

    for (case, token) in &cases {
        let me = check_on_me(&server, token);
        assert_eq!(me.status, 401, "{case}: GET /me accepted or mishandled it; body: {}", me.body);
        assert_eq!(me.json()["code"], "token_not_valid", "{case}: GET /me code; body: {}", me.body);

        let verify = check_on_verify(&server, token);
        assert_eq!(
            verify.status, 401,
            "{case}: token/verify accepted or mishandled it; body: {}",
            verify.body
        );
        assert_eq!(
            verify.json()["code"],
            "token_not_valid",
            "{case}: token/verify code; body: {}",
            verify.body
        );
    }
}
