//! The JWKS document read by an independent JOSE library (`jsonwebtoken`), which must
//! verify tokens issued by this crate with the published keys.

use std::time::Duration;

use chrono::Utc;
use finetune_auth::AccessTokens;
use finetune_auth::keys::{Algorithm, KeyRing, SigningKey};
use finetune_core::UserId;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation, decode, decode_header};

fn generate(algorithm: Algorithm) -> SigningKey {
    SigningKey::generate(algorithm).unwrap_or_else(|e| unreachable!("{e}"))
}

/// Verifies `token` with `jsonwebtoken`, taking the key from `jwks` by the token's `kid`.
fn verify_independently(jwks: &str, token: &str) -> Result<serde_json::Value, String> {
    let set: JwkSet = serde_json::from_str(jwks).map_err(|e| format!("JWKS: {e}"))?;
    let header = decode_header(token).map_err(|e| format!("header: {e}"))?;
    let kid = header.kid.ok_or("no kid in the header")?;
    let jwk = set.find(&kid).ok_or(format!("kid {kid} not in the JWKS"))?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("JWK: {e}"))?;

    let mut validation = Validation::new(header.alg);
    validation.set_audience(&["finetune-erp"]);
    validation.set_issuer(&["finetune"]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    decode::<serde_json::Value>(token, &key, &validation).map(|data| data.claims).map_err(|e| e.to_string())
}

#[test]
fn jwks_verifies_tokens_in_jsonwebtoken() {
    for algorithm in [Algorithm::EdDsa, Algorithm::Es256] {
        let tokens = AccessTokens::new(
            KeyRing::new(generate(algorithm), []),
            "finetune",
            "finetune-erp",
            Duration::from_secs(300),
        );
        let issued =
            tokens.issue(UserId(42), &["auditor".into()], Utc::now()).unwrap_or_else(|e| unreachable!("{e}"));
        let jwks = tokens.key_ring().jwks(Utc::now()).to_string();

        let claims = verify_independently(&jwks, issued.token.expose());
        assert_eq!(claims.as_ref().map(|c| c["sub"].clone()), Ok(serde_json::json!("42")), "{algorithm}");
        assert_eq!(claims.map(|c| c["token_type"].clone()), Ok(serde_json::json!("access")), "{algorithm}");
    }
}

#[test]
fn jwks_previous_key_verifies_in_jsonwebtoken() {
    let previous = generate(Algorithm::Es256);
    let old = AccessTokens::new(
        KeyRing::new(previous.clone(), []),
        "finetune",
        "finetune-erp",
        Duration::from_secs(300),
    );
    let token = old.issue(UserId(1), &[], Utc::now()).unwrap_or_else(|e| unreachable!("{e}"));

    let rotated = KeyRing::new(generate(Algorithm::EdDsa), [previous.verifying_key()]);
    let jwks = rotated.jwks(Utc::now()).to_string();
    assert!(verify_independently(&jwks, token.token.expose()).is_ok());
}

#[test]
fn jwks_document_shape() {
    let key = generate(Algorithm::EdDsa);
    let jwks = KeyRing::new(key.clone(), []).jwks(Utc::now());
    let keys = jwks["keys"].as_array().cloned().unwrap_or_default();
    assert_eq!(keys.len(), 1);
    let jwk = &keys[0];
    assert_eq!(jwk["kty"], "OKP");
    assert_eq!(jwk["crv"], "Ed25519");
    assert_eq!(jwk["alg"], "EdDSA");
    assert_eq!(jwk["use"], "sig");
    assert_eq!(jwk["kid"], key.kid());
    assert!(jwk.get("d").is_none(), "a private member was published: {jwk}");
}

#[test]
fn jwks_never_contains_symmetric_keys() {
    let secret: &[u8] = b"fallback-secret-fallback-secret-xx";
    let ring = KeyRing::new(
        generate(Algorithm::EdDsa),
        [finetune_auth::VerifyingKey::hs256(secret).unwrap_or_else(|e| unreachable!("{e}"))],
    );
    let jwks = ring.jwks(Utc::now());
    assert_eq!(jwks["keys"].as_array().map(Vec::len), Some(1));
    assert!(jwks["keys"][0]["kty"] != "oct");
}
