//! Signing keys end to end: the JWKS document read by an independent JOSE library,
//! `finetune keys rotate` and `keys list`, HS256 rotation with `SECRET_KEY_FALLBACKS`,
//! and two instances agreeing on every `kid`.

use std::fs;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation, decode, decode_header};
use serde_json::Value;

use crate::keys_support::{Deployment, SECRET_A, SECRET_B, audit_details, jwks_kids, kid_of};

/// Verifies `token` with `jsonwebtoken` and the key that `jwks` publishes for its `kid`.
fn verify_with_jsonwebtoken(jwks: &Value, token: &str) -> Result<Value, String> {
    let set: JwkSet = serde_json::from_value(jwks.clone()).map_err(|e| format!("JWKS: {e}"))?;
    let header = decode_header(token).map_err(|e| format!("header: {e}"))?;
    let kid = header.kid.ok_or("no kid in the token header")?;
    let jwk = set.find(&kid).ok_or(format!("kid {kid} is not in the JWKS"))?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("JWK: {e}"))?;

    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&["finetune"]);
    validation.set_audience(&["finetune-erp"]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    decode::<Value>(token, &key, &validation).map(|data| data.claims).map_err(|e| e.to_string())
}

/// Returns the `(kid, algorithm, role)` columns of `finetune keys list`.
fn list_keys(deployment: &Deployment) -> Vec<(String, String, String)> {
    let output = deployment.run(&["keys", "list"], None);
    assert!(output.status.success(), "keys list failed: {}", output.stderr);
    output
        .stdout
        .lines()
        .skip(1)
        .map(|line| {
            let columns: Vec<&str> = line.split_whitespace().collect();
            let column = |index: usize| columns.get(index).copied().unwrap_or_default().to_owned();
            (column(0), column(1), column(2))
        })
        .collect()
}

fn rotate(deployment: &Deployment) {
    let output = deployment.run(&["keys", "rotate"], None);
    assert!(output.status.success(), "keys rotate failed: {}", output.stderr);
}

#[test]
fn jwks_empty_with_hs256() {
    let deployment = Deployment::create();
    let server = deployment.start();
    assert_eq!(server.jwks(), serde_json::json!({"keys": []}));
}

#[test]
fn jwks_verifies_server_token_in_jsonwebtoken() {
    for algorithm in ["EdDSA", "ES256"] {
        let mut deployment = Deployment::create();
        deployment.use_key_files(algorithm);
        // An HS256 fallback must still never be published.
        deployment.set("SECRET_KEY_FALLBACKS", SECRET_B);
        rotate(&deployment);
        let server = deployment.start();

        let token = server.access_token();
        let jwks = server.jwks();
        assert_eq!(jwks_kids(&jwks), vec![kid_of(&token)], "{algorithm}");
        assert_eq!(jwks["keys"][0]["alg"], algorithm);

        let claims = verify_with_jsonwebtoken(&jwks, &token);
        assert_eq!(
            claims.as_ref().map(|c| c["token_type"].clone()),
            Ok(Value::from("access")),
            "{algorithm}"
        );
        assert_eq!(
            claims.map(|c| c["roles"].clone()),
            Ok(serde_json::json!(["system_admin"])),
            "{algorithm}"
        );

        let (status, me) = server.get("/api/auth/me/", Some(&token));
        assert_eq!(status, 200, "{algorithm}: {me}");
    }
}

#[test]
fn keys_rotate_keeps_previous_key_verifying() {
    let mut deployment = Deployment::create();
    deployment.use_key_files("EdDSA");
    rotate(&deployment);
    let first_kid = {
        let listed = list_keys(&deployment);
        assert_eq!(listed.len(), 1, "{listed:?}");
        assert_eq!(listed[0].1, "EdDSA");
        assert_eq!(listed[0].2, "signing");
        listed[0].0.clone()
    };
    let old_token = deployment.start().access_token();
    assert_eq!(kid_of(&old_token), first_kid);

    rotate(&deployment);
    let listed = list_keys(&deployment);
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_eq!(listed[0].2, "signing");
    assert_ne!(listed[0].0, first_kid);
    assert_eq!(listed[1], (first_kid.clone(), "EdDSA".to_owned(), "verify-only".to_owned()));
    let second_kid = listed[0].0.clone();

    let server = deployment.start();
    let (status, body) = server.get("/api/auth/me/", Some(&old_token));
    assert_eq!(status, 200, "previous key token: {body}");
    let new_token = server.access_token();
    assert_eq!(kid_of(&new_token), second_kid);
    assert_eq!(jwks_kids(&server.jwks()), vec![second_kid.clone(), first_kid.clone()]);
    assert!(verify_with_jsonwebtoken(&server.jwks(), &old_token).is_ok());

    let rotations = audit_details(&deployment, "keys.rotate");
    assert_eq!(rotations.len(), 2, "{rotations:?}");
    assert_eq!(rotations[0]["kid"], first_kid.as_str());
    assert_eq!(rotations[0]["previous_kid"], Value::Null);
    assert_eq!(rotations[1]["kid"], second_kid.as_str());
    assert_eq!(rotations[1]["previous_kid"], first_kid.as_str());
    assert_eq!(rotations[1]["algorithm"], "EdDSA");
}

#[test]
fn keys_rotate_retired_key_drops_out() {
    let mut deployment = Deployment::create();
    deployment.use_key_files("ES256");
    rotate(&deployment);
    let old_token = deployment.start().access_token();
    let first_kid = kid_of(&old_token);
    rotate(&deployment);

    // Move the retirement into the past, as if ACCESS_TOKEN_LIFETIME had passed.
    let retired_path = deployment.path("keys/retired.pem");
    let retired = fs::read_to_string(&retired_path).unwrap_or_default();
    let retired_at =
        retired.lines().find(|line| line.starts_with("Retired-At:")).unwrap_or_default().to_owned();
    assert!(!retired_at.is_empty(), "no Retired-At line in {retired}");
    let aged = retired.replace(&retired_at, "Retired-At: 2001-01-01T00:00:00Z");
    assert!(fs::write(&retired_path, aged).is_ok());

    let server = deployment.start();
    let (status, body) = server.get("/api/auth/me/", Some(&old_token));
    assert_eq!(status, 401, "retired key token: {body}");
    assert_eq!(body["code"], "token_not_valid");
    assert!(!jwks_kids(&server.jwks()).contains(&first_kid));
    assert_eq!(list_keys(&deployment).len(), 1);
    drop(server);

    // The next rotation deletes the expired key from the file.
    rotate(&deployment);
    let retired = fs::read_to_string(&retired_path).unwrap_or_default();
    assert!(!retired.contains(&first_kid), "{retired}");
    let rotations = audit_details(&deployment, "keys.rotate");
    assert_eq!(rotations.last().map(|r| r["dropped_kids"].clone()), Some(serde_json::json!([first_kid])));
}

#[test]
fn keys_rotate_with_hs256_rejected() {
    let deployment = Deployment::create();
    let output = deployment.run(&["keys", "rotate"], None);
    assert!(!output.status.success());
    assert!(output.stderr.contains("SECRET_KEY_FALLBACKS"), "{}", output.stderr);
    assert!(audit_details(&deployment, "keys.rotate").is_empty());
}

#[test]
fn keys_rotate_without_fallback_file_rejected() {
    let mut deployment = Deployment::create();
    deployment.use_key_files("EdDSA");
    rotate(&deployment);
    deployment.unset("JWT_PUBLIC_KEY_FALLBACK_FILES");
    let before = fs::read_to_string(deployment.path("keys/signing.pem")).unwrap_or_default();

    let output = deployment.run(&["keys", "rotate"], None);
    assert!(!output.status.success());
    assert!(output.stderr.contains("JWT_PUBLIC_KEY_FALLBACK_FILES"), "{}", output.stderr);
    let after = fs::read_to_string(deployment.path("keys/signing.pem")).unwrap_or_default();
    assert_eq!(before, after, "the signing key changed although the rotation failed");
}

#[test]
fn serve_without_private_key_file_rejected() {
    let mut deployment = Deployment::create();
    deployment.use_key_files("EdDSA");
    let output = deployment.run(&["serve"], None);
    assert!(!output.status.success());
    assert!(output.stderr.contains("JWT_PRIVATE_KEY_FILE"), "{}", output.stderr);
}

#[test]
fn hs256_rotation_with_secret_key_fallbacks() {
    let mut deployment = Deployment::create();
    let old_token = deployment.start().access_token();

    deployment.set("SECRET_KEY", SECRET_B);
    deployment.set("SECRET_KEY_FALLBACKS", SECRET_A);
    let rotated = deployment.start();
    let (status, body) = rotated.get("/api/auth/me/", Some(&old_token));
    assert_eq!(status, 200, "fallback secret token: {body}");
    let new_token = rotated.access_token();
    assert_ne!(kid_of(&new_token), kid_of(&old_token));
    assert_eq!(rotated.jwks(), serde_json::json!({"keys": []}));
    let listed = list_keys(&deployment);
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_eq!(listed[0], (kid_of(&new_token), "HS256".to_owned(), "signing".to_owned()));
    assert_eq!(listed[1], (kid_of(&old_token), "HS256".to_owned(), "verify-only".to_owned()));
    drop(rotated);

    deployment.unset("SECRET_KEY_FALLBACKS");
    let after_removal = deployment.start();
    let (status, body) = after_removal.get("/api/auth/me/", Some(&old_token));
    assert_eq!(status, 401, "removed fallback token: {body}");
    let (status, body) = after_removal.get("/api/auth/me/", Some(&new_token));
    assert_eq!(status, 200, "current secret token: {body}");
}

#[test]
fn two_instances_agree_on_kids() {
    for algorithm in ["HS256", "EdDSA", "ES256"] {
        let mut deployment = Deployment::create();
        if algorithm != "HS256" {
            deployment.use_key_files(algorithm);
            rotate(&deployment);
            rotate(&deployment);
        }
        let first = deployment.start();
        let second = deployment.start();

        assert_eq!(first.jwks(), second.jwks(), "{algorithm}");
        let from_first = first.access_token();
        let from_second = second.access_token();
        assert_eq!(kid_of(&from_first), kid_of(&from_second), "{algorithm}");
        let (status, body) = second.get("/api/auth/me/", Some(&from_first));
        assert_eq!(status, 200, "{algorithm}: {body}");
        let (status, body) = first.get("/api/auth/me/", Some(&from_second));
        assert_eq!(status, 200, "{algorithm}: {body}");
    }
}
