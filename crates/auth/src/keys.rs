//! Signing and verification keys, each named by a `kid` derived from the key itself so
//! every instance with the same key agrees on it.

use std::collections::HashMap;
use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use jwt_simple::prelude::HS256Key;
use sha2::Sha256;

use crate::error::AuthError;

/// The minimum HMAC key length in bytes accepted by the ring.
pub const MIN_HMAC_KEY_BYTES: usize = 16;

/// One HS256 key with its `kid`.
#[derive(Clone)]
pub struct HmacKey {
    kid: String,
    key: HS256Key,
}

impl fmt::Debug for HmacKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HmacKey").field("kid", &self.kid).field("key", &"[redacted]").finish()
    }
}

impl HmacKey {
    /// Builds a key from secret bytes; its `kid` is derived from them one way, so the
    /// `kid` reveals nothing of the secret.
    pub fn new(secret: &[u8]) -> Result<Self, AuthError> {
        if secret.len() < MIN_HMAC_KEY_BYTES {
            return Err(AuthError::InvalidKey(format!(
                "an HS256 secret must be at least {MIN_HMAC_KEY_BYTES} bytes, got {}",
                secret.len()
            )));
        }
        let kid = derive_hmac_kid(secret)?;
        let key = HS256Key::from_bytes(secret).with_key_id(&kid);
        Ok(Self { kid, key })
    }

    /// Returns the key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Returns the jwt-simple key.
    pub fn key(&self) -> &HS256Key {
        &self.key
    }
}

/// `kid` = the first 16 bytes of HMAC-SHA256(secret, "finetune kid"), base64url.
fn derive_hmac_kid(secret: &[u8]) -> Result<String, AuthError> {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret).map_err(|error| AuthError::InvalidKey(error.to_string()))?;
    mac.update(b"finetune kid");
    let digest = mac.finalize().into_bytes();
    Ok(URL_SAFE_NO_PAD.encode(&digest[..16]))
}

/// One key that signs, and every key that verifies, looked up by `kid`.
#[derive(Clone, Debug)]
pub struct KeyRing {
    signing: HmacKey,
    verifying: HashMap<String, HmacKey>,
}

impl KeyRing {
    /// Builds an HS256 ring: `current` signs and verifies, each of `fallbacks` only
    /// verifies (tokens signed before a rotation stay valid until they expire).
    pub fn hs256(current: &[u8], fallbacks: &[&[u8]]) -> Result<Self, AuthError> {
        let signing = HmacKey::new(current)?;
        let mut verifying = HashMap::new();
        verifying.insert(signing.kid.clone(), signing.clone());
        for fallback in fallbacks {
            let key = HmacKey::new(fallback)?;
            verifying.entry(key.kid.clone()).or_insert(key);
        }
        Ok(Self { signing, verifying })
    }

    /// Returns the signing key.
    pub fn signing_key(&self) -> &HmacKey {
        &self.signing
    }

    /// Returns the verification key with this `kid`.
    pub fn verifying_key(&self, kid: &str) -> Option<&HmacKey> {
        self.verifying.get(kid)
    }

    /// Returns the `kid`s of every verification key, the signing key first.
    pub fn kids(&self) -> Vec<&str> {
        let mut kids: Vec<&str> =
            self.verifying.keys().map(String::as_str).filter(|k| *k != self.signing.kid).collect();
        kids.sort_unstable();
        kids.insert(0, &self.signing.kid);
        kids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kid_is_stable_and_per_key() {
        let a = HmacKey::new(b"0123456789abcdef0123456789abcdef").map(|k| k.kid).ok();
        let b = HmacKey::new(b"0123456789abcdef0123456789abcdef").map(|k| k.kid).ok();
        let c = HmacKey::new(b"another-secret-another-secret-xx").map(|k| k.kid).ok();
        assert!(a.is_some());
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn short_secret_rejected() {
        assert!(HmacKey::new(b"short").is_err());
    }

    #[test]
    fn debug_redacts_key() {
        let key = HmacKey::new(b"0123456789abcdef0123456789abcdef").ok();
        assert!(!format!("{key:?}").contains("0123456789"));
    }
}
