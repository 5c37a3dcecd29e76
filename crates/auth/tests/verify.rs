//! Verification of access tokens: every rejection case, rotation with retired and
//! previous keys, and agreement on `kid`s between two rings built from the same key.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use finetune_auth::error::{AuthError, TokenRejection};
use finetune_auth::keys::{Algorithm, KeyRing, SigningKey, VerifyingKey};
use finetune_auth::{AccessTokens, LEEWAY, TokenVerifier};
use finetune_core::UserId;
use jwt_simple::prelude::{
    Claims, ECDSAP256KeyPairLike, ES256KeyPair, Ed25519KeyPair, EdDSAKeyPairLike, HS256Key, JWTClaims,
    MACLike, UnixTimeStamp,
};
use serde::{Deserialize, Serialize};

const ISSUER: &str = "finetune";
const AUDIENCE: &str = "finetune-erp";
const LIFETIME: Duration = Duration::from_secs(300);
const SECRET: &[u8] = b"test-secret-test-secret-test-secret-xx";

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default()
}

fn seconds(count: i64) -> chrono::Duration {
    chrono::Duration::seconds(count)
}

fn generate(algorithm: Algorithm) -> SigningKey {
    SigningKey::generate(algorithm).unwrap_or_else(|e| unreachable!("{e}"))
}

fn tokens(ring: KeyRing) -> AccessTokens {
    AccessTokens::new(ring, ISSUER, AUDIENCE, LIFETIME)
}

fn issue(tokens: &AccessTokens, at: DateTime<Utc>) -> String {
    let issued =
        tokens.issue(UserId(7), &["system_admin".into()], at).unwrap_or_else(|e| unreachable!("{e}"));
    issued.token.expose().to_owned()
}

fn rejection(result: Result<impl std::fmt::Debug, AuthError>) -> Option<TokenRejection> {
    match result {
        Err(AuthError::TokenNotValid(reason)) => Some(reason),
        other => {
            eprintln!("expected a token rejection, got {other:?}");
            None
        }
    }
}

/// The custom claims as the server writes them, for hand-made tokens.
#[derive(Serialize, Deserialize)]
struct TestClaims {
    token_type: String,
    roles: Vec<String>,
}

/// Claims like the server's, issued at [`now`], for tests to alter before signing.
fn claims() -> JWTClaims<TestClaims> {
    let custom = TestClaims { token_type: "access".into(), roles: vec![] };
    let mut claims = Claims::with_custom_claims(custom, jwt_simple::prelude::Duration::from_secs(300))
        .with_subject(7)
        .with_issuer(ISSUER)
        .with_audience(AUDIENCE)
        .with_jwt_id("test-token-id");
    let issued_at = now().timestamp() as u64;
    claims.issued_at = Some(UnixTimeStamp::from_secs(issued_at));
    claims.invalid_before = None;
    claims.expires_at = Some(UnixTimeStamp::from_secs(issued_at + 300));
    claims
}

/// Signs `claims` with the HS256 `SECRET` under `kid`.
fn sign_hs256(kid: &str, claims: JWTClaims<TestClaims>) -> String {
    HS256Key::from_bytes(SECRET).with_key_id(kid).authenticate(claims).unwrap_or_default()
}

/// Signs `claims` with an EdDSA or ES256 `key` through jwt-simple directly.
fn sign_with(key: &SigningKey, claims: JWTClaims<TestClaims>) -> String {
    let pem = key.to_pem().unwrap_or_else(|e| unreachable!("{e}"));
    match key.algorithm() {
        Algorithm::EdDsa => Ed25519KeyPair::from_pem(pem.expose())
            .map(|pair| pair.with_key_id(key.kid()))
            .and_then(|pair| pair.sign(claims))
            .unwrap_or_default(),
        Algorithm::Es256 => ES256KeyPair::from_pem(pem.expose())
            .map(|pair| pair.with_key_id(key.kid()))
            .and_then(|pair| pair.sign(claims))
            .unwrap_or_default(),
        Algorithm::Hs256 => unreachable!("HS256 keys are signed with sign_hs256"),
    }
}

fn hs256_kid() -> String {
    SigningKey::hs256(SECRET).map(|key| key.kid().to_owned()).unwrap_or_default()
}

fn hs256_verifier() -> TokenVerifier {
    let ring = KeyRing::hs256(SECRET, &[]).unwrap_or_else(|e| unreachable!("{e}"));
    TokenVerifier::new(ring, ISSUER, AUDIENCE)
}

fn b64(json: &str) -> String {
    URL_SAFE_NO_PAD.encode(json)
}

#[test]
fn asymmetric_tokens_verify_with_claims() {
    for algorithm in [Algorithm::EdDsa, Algorithm::Es256] {
        let key = generate(algorithm);
        let tokens = tokens(KeyRing::new(key.clone(), []));
        let claims = tokens.verify(&issue(&tokens, now()), now()).unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(claims.user_id, UserId(7), "{algorithm}");
        assert_eq!(claims.roles, vec!["system_admin".to_owned()], "{algorithm}");
        assert_eq!(claims.key_id, key.kid(), "{algorithm}");
        assert_eq!(claims.issued_at, Some(now()), "{algorithm}");
    }
}

#[test]
fn verify_only_ring_verifies_but_cannot_issue() {
    let key = generate(Algorithm::EdDsa);
    let issuer = tokens(KeyRing::new(key.clone(), []));
    let token = issue(&issuer, now());

    let public_only = KeyRing::verify_only([key.verifying_key()]).unwrap_or_else(|e| unreachable!("{e}"));
    let verifier = tokens(public_only);
    assert!(verifier.verify(&token, now()).is_ok());
    assert!(matches!(verifier.issue(UserId(1), &[], now()), Err(AuthError::Signing(_))));
}

#[test]
fn retired_key_token_rejected() {
    let old = generate(Algorithm::EdDsa);
    let token = issue(&tokens(KeyRing::new(old.clone(), [])), now());
    let retired = old.verifying_key().with_not_after(now() + seconds(60));
    let rotated = tokens(KeyRing::new(generate(Algorithm::EdDsa), [retired]));

    assert!(rotated.verify(&token, now() + seconds(60)).is_ok());
    assert_eq!(rejection(rotated.verify(&token, now() + seconds(61))), Some(TokenRejection::RetiredKey));
}

#[test]
fn dropped_key_token_rejected() {
    let old = generate(Algorithm::Es256);
    let token = issue(&tokens(KeyRing::new(old, [])), now());
    let rotated = tokens(KeyRing::new(generate(Algorithm::Es256), []));
    assert_eq!(rejection(rotated.verify(&token, now())), Some(TokenRejection::UnknownKey));
}

#[test]
fn previous_key_token_accepted_until_expiry() {
    let previous = generate(Algorithm::EdDsa);
    let token = issue(&tokens(KeyRing::new(previous.clone(), [])), now());
    // What `finetune keys rotate` writes: verify for the lifetime plus the leeway.
    let window = seconds(LIFETIME.as_secs() as i64 + LEEWAY.as_secs() as i64);
    let fallback = previous.verifying_key().with_not_after(now() + window);
    let rotated = tokens(KeyRing::new(generate(Algorithm::EdDsa), [fallback]));

    assert!(rotated.verify(&token, now()).is_ok());
    assert!(rotated.verify(&token, now() + window).is_ok());
    assert!(rotated.verify(&token, now() + window + seconds(1)).is_err());
}

#[test]
fn hs256_fallback_secret_accepted_until_expiry() {
    let old_secret: &[u8] = b"old-secret-old-secret-old-secret-xx";
    let token =
        issue(&tokens(KeyRing::hs256(old_secret, &[]).unwrap_or_else(|e| unreachable!("{e}"))), now());
    let rotated = tokens(KeyRing::hs256(SECRET, &[old_secret]).unwrap_or_else(|e| unreachable!("{e}")));
    let expiry = seconds(LIFETIME.as_secs() as i64 + LEEWAY.as_secs() as i64);

    assert!(rotated.verify(&token, now() + expiry).is_ok());
    assert_eq!(rejection(rotated.verify(&token, now() + expiry + seconds(1))), Some(TokenRejection::Expired));
}

#[test]
fn hs256_removed_fallback_rejected() {
    let old_secret: &[u8] = b"old-secret-old-secret-old-secret-xx";
    let token =
        issue(&tokens(KeyRing::hs256(old_secret, &[]).unwrap_or_else(|e| unreachable!("{e}"))), now());
    let after_removal = tokens(KeyRing::hs256(SECRET, &[]).unwrap_or_else(|e| unreachable!("{e}")));
    assert_eq!(rejection(after_removal.verify(&token, now())), Some(TokenRejection::UnknownKey));
}

#[test]
fn unknown_kid_rejected() {
    let token = sign_hs256("no-such-key", claims());
    assert_eq!(rejection(hs256_verifier().verify(&token, now())), Some(TokenRejection::UnknownKey));
}

#[test]
fn missing_kid_rejected() {
    let token = HS256Key::from_bytes(SECRET).authenticate(claims()).unwrap_or_default();
    assert_eq!(rejection(hs256_verifier().verify(&token, now())), Some(TokenRejection::UnknownKey));
}

#[test]
fn path_and_sql_kids_rejected() {
    let kids = [
        "../../../../etc/passwd",
        "/dev/null",
        "..\\..\\windows\\win.ini",
        "' OR '1'='1",
        "x'; DROP TABLE audit_log; --",
        "\u{0000}",
    ];
    for kid in kids {
        let token = sign_hs256(kid, claims());
        assert_eq!(
            rejection(hs256_verifier().verify(&token, now())),
            Some(TokenRejection::UnknownKey),
            "kid {kid:?}"
        );
    }
}

#[test]
fn alg_none_rejected() {
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims()).unwrap_or_default());
    for alg in ["none", "None", "NONE"] {
        let header = b64(&format!(r#"{{"alg":"{alg}","typ":"JWT","kid":"{}"}}"#, hs256_kid()));
        for token in [format!("{header}.{payload}."), format!("{header}.{payload}")] {
            assert_eq!(
                rejection(hs256_verifier().verify(&token, now())),
                Some(TokenRejection::WrongAlgorithm),
                "alg {alg} in {token}"
            );
        }
    }
}

#[test]
fn hs256_token_keyed_with_public_key_rejected() {
    for algorithm in [Algorithm::EdDsa, Algorithm::Es256] {
        let key = generate(algorithm);
        let verifier = TokenVerifier::new(KeyRing::new(key.clone(), []), ISSUER, AUDIENCE);
        let public_pem = key.verifying_key().to_public_pem().unwrap_or_default();
        let jwks = KeyRing::new(key.clone(), []).jwks(now()).to_string();

        // An attacker who knows the public key tries it as an HMAC secret in every
        // form the server publishes it, under the key's own `kid`.
        for secret in [public_pem.as_bytes(), public_pem.trim_end().as_bytes(), jwks.as_bytes()] {
            let token = HS256Key::from_bytes(secret)
                .with_key_id(key.kid())
                .authenticate(claims())
                .unwrap_or_default();
            assert_eq!(
                rejection(verifier.verify(&token, now())),
                Some(TokenRejection::WrongAlgorithm),
                "{algorithm}"
            );
        }
    }
}

#[test]
fn token_of_other_asymmetric_algorithm_rejected() {
    let eddsa = generate(Algorithm::EdDsa);
    let es256 = generate(Algorithm::Es256);
    let verifier = TokenVerifier::new(KeyRing::new(eddsa.clone(), []), ISSUER, AUDIENCE);
    // Signed by a P-256 key but naming the Ed25519 key's `kid`.
    let pem = es256.to_pem().unwrap_or_else(|e| unreachable!("{e}"));
    let token = ES256KeyPair::from_pem(pem.expose())
        .map(|pair| pair.with_key_id(eddsa.kid()))
        .and_then(|pair| pair.sign(claims()))
        .unwrap_or_default();
    assert_eq!(rejection(verifier.verify(&token, now())), Some(TokenRejection::WrongAlgorithm));
}

#[test]
fn wrong_audience_rejected() {
    let ring = KeyRing::hs256(SECRET, &[]).unwrap_or_else(|e| unreachable!("{e}"));
    let other = AccessTokens::new(ring, ISSUER, "another-app", LIFETIME);
    let token = issue(&other, now());
    assert_eq!(rejection(hs256_verifier().verify(&token, now())), Some(TokenRejection::WrongAudience));
}

#[test]
fn missing_audience_rejected() {
    let mut claims = claims();
    claims.audiences = None;
    let token = sign_hs256(&hs256_kid(), claims);
    assert_eq!(rejection(hs256_verifier().verify(&token, now())), Some(TokenRejection::WrongAudience));
}

#[test]
fn wrong_issuer_rejected() {
    let ring = KeyRing::hs256(SECRET, &[]).unwrap_or_else(|e| unreachable!("{e}"));
    let other = AccessTokens::new(ring, "someone-else", AUDIENCE, LIFETIME);
    let token = issue(&other, now());
    assert_eq!(rejection(hs256_verifier().verify(&token, now())), Some(TokenRejection::WrongIssuer));
}

#[test]
fn missing_exp_rejected() {
    for algorithm in [Algorithm::EdDsa, Algorithm::Es256] {
        let key = generate(algorithm);
        let verifier = TokenVerifier::new(KeyRing::new(key.clone(), []), ISSUER, AUDIENCE);
        let mut claims = claims();
        claims.expires_at = None;
        let token = sign_with(&key, claims);
        assert_eq!(
            rejection(verifier.verify(&token, now())),
            Some(TokenRejection::MissingExpiry),
            "{algorithm}"
        );
    }
    let mut claims = claims();
    claims.expires_at = None;
    let token = sign_hs256(&hs256_kid(), claims);
    assert_eq!(rejection(hs256_verifier().verify(&token, now())), Some(TokenRejection::MissingExpiry));
}

#[test]
fn future_nbf_rejected() {
    let mut claims = claims();
    claims.invalid_before = Some(UnixTimeStamp::from_secs(now().timestamp() as u64 + 120));
    let token = sign_hs256(&hs256_kid(), claims);
    assert_eq!(rejection(hs256_verifier().verify(&token, now())), Some(TokenRejection::NotYetValid));
}

#[test]
fn nbf_within_leeway_accepted() {
    let mut claims = claims();
    claims.invalid_before = Some(UnixTimeStamp::from_secs(now().timestamp() as u64 + 20));
    let token = sign_hs256(&hs256_kid(), claims);
    assert!(hs256_verifier().verify(&token, now()).is_ok());
}

#[test]
fn future_iat_rejected() {
    let mut claims = claims();
    claims.issued_at = Some(UnixTimeStamp::from_secs(now().timestamp() as u64 + 120));
    let token = sign_hs256(&hs256_kid(), claims);
    assert_eq!(rejection(hs256_verifier().verify(&token, now())), Some(TokenRejection::NotYetValid));
}

#[test]
fn expired_token_rejected_after_custom_leeway() {
    let token = sign_hs256(&hs256_kid(), claims());
    let strict = hs256_verifier().with_leeway(Duration::from_secs(0));
    assert!(strict.verify(&token, now() + seconds(300)).is_ok());
    assert_eq!(rejection(strict.verify(&token, now() + seconds(301))), Some(TokenRejection::Expired));
}

#[test]
fn wrong_token_type_rejected() {
    let mut claims = claims();
    claims.custom.token_type = "refresh".into();
    let token = sign_hs256(&hs256_kid(), claims);
    assert_eq!(rejection(hs256_verifier().verify(&token, now())), Some(TokenRejection::WrongType));
}

#[test]
fn tampered_payload_rejected() {
    for algorithm in [Algorithm::EdDsa, Algorithm::Es256] {
        let tokens = tokens(KeyRing::new(generate(algorithm), []));
        let token = issue(&tokens, now());
        let parts: Vec<&str> = token.split('.').collect();
        let forged_payload = b64(&String::from_utf8(URL_SAFE_NO_PAD.decode(parts[1]).unwrap_or_default())
            .unwrap_or_default()
            .replace("\"sub\":\"7\"", "\"sub\":\"1\""));
        let forged = format!("{}.{forged_payload}.{}", parts[0], parts[2]);
        assert_ne!(forged, token);
        assert_eq!(
            rejection(tokens.verify(&forged, now())),
            Some(TokenRejection::BadSignatureOrClaims),
            "{algorithm}"
        );
    }
}

#[test]
fn garbage_tokens_rejected_as_malformed() {
    for token in ["", "abc", "a.b.c", "....", "eyJhbGciOiJIUzI1NiJ9"] {
        assert!(hs256_verifier().verify(token, now()).is_err(), "{token:?}");
    }
}

#[test]
fn rings_from_same_key_agree_on_kid() {
    for algorithm in [Algorithm::EdDsa, Algorithm::Es256] {
        let pem = generate(algorithm).to_pem().unwrap_or_else(|e| unreachable!("{e}"));
        let first = SigningKey::from_pem(pem.expose()).unwrap_or_else(|e| unreachable!("{e}"));
        let second = SigningKey::from_pem(pem.expose()).unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(first.kid(), second.kid(), "{algorithm}");

        let instance_a = tokens(KeyRing::new(first, []));
        let instance_b = tokens(KeyRing::new(second, []));
        assert!(instance_b.verify(&issue(&instance_a, now()), now()).is_ok(), "{algorithm}");
        assert_eq!(instance_a.key_ring().jwks(now()), instance_b.key_ring().jwks(now()), "{algorithm}");
    }
}

#[test]
fn public_key_ring_from_pem_verifies() {
    let key = generate(Algorithm::Es256);
    let token = issue(&tokens(KeyRing::new(key.clone(), [])), now());
    let public = VerifyingKey::from_public_pem(&key.verifying_key().to_public_pem().unwrap_or_default())
        .unwrap_or_else(|e| unreachable!("{e}"));
    let ring = KeyRing::verify_only([public]).unwrap_or_else(|e| unreachable!("{e}"));
    assert!(TokenVerifier::new(ring, ISSUER, AUDIENCE).verify(&token, now()).is_ok());
}
