//! JSON Web Keys (RFC 7517): the public keys of a ring as a JWKS document, and a
//! verify-only ring read back from one.

use jwt_simple::prelude::{ES256PublicKey, Ed25519PublicKey};
use serde::Deserialize;

use super::{PublicMaterial, VerifyingKey};
use crate::error::AuthError;

/// The largest JWKS document read, in bytes.
const MAX_JWKS_BYTES: usize = 64 * 1024;

/// Returns the public JWK of `key` with `kid`, `alg` and `use: sig`; `None` for HS256.
pub(super) fn public_jwk(key: &VerifyingKey) -> Option<serde_json::Value> {
    let text = match &key.material {
        PublicMaterial::Hmac(_) => return None,
        PublicMaterial::Ed25519(public) => public.to_jwk(),
        PublicMaterial::Es256(public) => public.to_jwk(),
    };
    serde_json::from_str(&text).ok()
}

#[derive(Deserialize)]
struct KeySet {
    keys: Vec<serde_json::Value>,
}

/// Reads the Ed25519 and P-256 keys of a JWKS document; other key types are skipped.
pub(super) fn parse_key_set(document: &str) -> Result<Vec<VerifyingKey>, AuthError> {
    if document.len() > MAX_JWKS_BYTES {
        return Err(AuthError::InvalidKey(format!("a JWKS document over {MAX_JWKS_BYTES} bytes")));
    }
    let set: KeySet = serde_json::from_str(document)
        .map_err(|error| AuthError::InvalidKey(format!("invalid JWKS document: {error}")))?;

    let mut keys = Vec::with_capacity(set.keys.len());
    for jwk in &set.keys {
        let kty = jwk.get("kty").and_then(serde_json::Value::as_str);
        let crv = jwk.get("crv").and_then(serde_json::Value::as_str);
        let text = jwk.to_string();
        let (thumbprint, material) = match (kty, crv) {
            (Some("OKP"), Some("Ed25519")) => {
                let public = Ed25519PublicKey::from_jwk(&text).map_err(invalid_jwk)?;
                let thumbprint = public.jwk_thumbprint();
                (thumbprint.clone(), PublicMaterial::Ed25519(public.with_key_id(&thumbprint)))
            }
            (Some("EC"), Some("P-256")) => {
                let public = ES256PublicKey::from_jwk(&text).map_err(invalid_jwk)?;
                let thumbprint = public.jwk_thumbprint();
                (thumbprint.clone(), PublicMaterial::Es256(public.with_key_id(&thumbprint)))
            }
            // Symmetric (`oct`), RSA and other curves: never used by this ring.
            _ => continue,
        };
        if let Some(kid) = jwk.get("kid").and_then(serde_json::Value::as_str)
            && kid != thumbprint
        {
            return Err(AuthError::InvalidKey(format!(
                "JWK kid {kid:?} is not the key's RFC 7638 thumbprint {thumbprint:?}"
            )));
        }
        keys.push(VerifyingKey::new(thumbprint, material));
    }
    Ok(keys)
}

fn invalid_jwk(error: jwt_simple::Error) -> AuthError {
    AuthError::InvalidKey(format!("invalid JWK: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{Algorithm, KeyRing, SigningKey};

    /// The Ed25519 public key of RFC 8037, appendix A.2, and its RFC 7638 thumbprint
    /// from appendix A.3.
    const RFC8037_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
    const RFC8037_THUMBPRINT: &str = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k";

    #[test]
    fn eddsa_kid_matches_rfc8037_thumbprint() {
        let document = format!(r#"{{"keys":[{{"kty":"OKP","crv":"Ed25519","x":"{RFC8037_X}"}}]}}"#);
        let ring = KeyRing::from_jwks(&document).unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(ring.kids(), vec![RFC8037_THUMBPRINT]);
    }

    #[test]
    fn jwks_round_trip_keeps_kids() {
        let eddsa = SigningKey::generate(Algorithm::EdDsa).unwrap_or_else(|e| unreachable!("{e}"));
        let es256 = SigningKey::generate(Algorithm::Es256).unwrap_or_else(|e| unreachable!("{e}"));
        let ring = KeyRing::new(eddsa.clone(), [es256.verifying_key()]);
        let document = ring.jwks(chrono::Utc::now()).to_string();
        let reread = KeyRing::from_jwks(&document).unwrap_or_else(|e| unreachable!("{e}"));
        let mut expected = vec![eddsa.kid(), es256.kid()];
        expected.sort_unstable();
        let mut kids = reread.kids();
        kids.sort_unstable();
        assert_eq!(kids, expected);
        assert!(reread.signing_key().is_none());
    }

    #[test]
    fn jwks_symmetric_key_skipped() {
        let document = r#"{"keys":[{"kty":"oct","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0","alg":"HS256"}]}"#;
        assert!(parse_key_set(document).is_ok_and(|keys| keys.is_empty()));
        assert!(KeyRing::from_jwks(document).is_err());
    }

    #[test]
    fn jwks_kid_not_thumbprint_rejected() {
        let document = format!(
            r#"{{"keys":[{{"kty":"OKP","crv":"Ed25519","x":"{RFC8037_X}","kid":"../../etc/passwd"}}]}}"#
        );
        assert!(KeyRing::from_jwks(&document).is_err());
    }

    #[test]
    fn jwks_private_member_rejected() {
        let document = format!(
            r#"{{"keys":[{{"kty":"OKP","crv":"Ed25519","x":"{RFC8037_X}","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"}}]}}"#
        );
        assert!(KeyRing::from_jwks(&document).is_err());
    }
}
