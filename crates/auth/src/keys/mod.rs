//! Signing and verification keys, each named by a `kid` derived from the key itself so
//! every instance with the same key agrees on it, and the [`KeyRing`] that contains them.
//!
//! Each key is bound to one algorithm, and a token is verified only with the key its
//! `kid` names and only when its `alg` header is that key's algorithm. So `alg: none`,
//! and an HS256 token made with a public key as the secret, never verify.
//!
//! - HS256: the `kid` is the first 16 bytes of HMAC-SHA256(secret, "finetune kid"),
//!   base64url, so it reveals nothing of the secret.
//! - EdDSA (Ed25519) and ES256 (ECDSA P-256): the `kid` is the RFC 7638 JWK thumbprint
//!   of the public key (SHA-256, base64url), which any JOSE library can recompute.

mod jwk;
pub mod pem;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use finetune_core::Secret;
use hmac::{Hmac, Mac};
use jwt_simple::JWTError;
use jwt_simple::prelude::{
    ECDSAP256KeyPairLike, ECDSAP256PublicKeyLike, ES256KeyPair, ES256PublicKey, Ed25519KeyPair,
    Ed25519PublicKey, EdDSAKeyPairLike, EdDSAPublicKeyLike, HS256Key, JWTClaims, MACLike, NoCustomClaims,
    VerificationOptions,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::Sha256;

use crate::compact::CompactToken;
use crate::error::{AuthError, TokenRejection};

/// The minimum HMAC key length in bytes accepted by the ring.
pub const MIN_HMAC_KEY_BYTES: usize = 16;

/// A JWS signing algorithm supported by the ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// HMAC-SHA256 with a shared secret.
    Hs256,
    /// Ed25519 signatures.
    EdDsa,
    /// ECDSA on P-256 with SHA-256.
    Es256,
}

impl Algorithm {
    /// Returns the JWS `alg` name: `HS256`, `EdDSA` or `ES256`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hs256 => "HS256",
            Self::EdDsa => "EdDSA",
            Self::Es256 => "ES256",
        }
    }

    /// Parses a JWS `alg` name; the match is exact, as in the JWS header.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "HS256" => Some(Self::Hs256),
            "EdDSA" => Some(Self::EdDsa),
            "ES256" => Some(Self::Es256),
            _ => None,
        }
    }

    /// Returns true for HS256, whose key must stay secret and is never published.
    pub fn is_symmetric(self) -> bool {
        self == Self::Hs256
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone)]
enum PrivateMaterial {
    Hmac(HS256Key, Hmac<Sha256>),
    Ed25519(Ed25519KeyPair),
    // jwt-simple's ES256 key pair is not `Clone`.
    Es256(Arc<ES256KeyPair>),
}

#[derive(Clone)]
enum PublicMaterial {
    // Keyed once, so each verification starts from the keyed state.
    Hmac(Hmac<Sha256>),
    Ed25519(Ed25519PublicKey),
    Es256(ES256PublicKey),
}

/// The key that signs new tokens: an HS256 secret or an Ed25519 or P-256 private key.
#[derive(Clone)]
pub struct SigningKey {
    kid: String,
    material: PrivateMaterial,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm())
            .field("key", &"[redacted]")
            .finish()
    }
}

impl SigningKey {
    /// Builds an HS256 key from secret bytes (at least [`MIN_HMAC_KEY_BYTES`]).
    pub fn hs256(secret: &[u8]) -> Result<Self, AuthError> {
        let kid = hmac_kid(secret)?;
        let key = HS256Key::from_bytes(secret).with_key_id(&kid);
        let verifier = keyed_hmac(secret)?;
        Ok(Self { kid, material: PrivateMaterial::Hmac(key, verifier) })
    }

    /// Generates a new random EdDSA or ES256 key. HS256 keys come from `SECRET_KEY`
    /// instead, so asking for one is an error.
    pub fn generate(algorithm: Algorithm) -> Result<Self, AuthError> {
        match algorithm {
            Algorithm::Hs256 => Err(AuthError::InvalidKey(
                "HS256 keys are secrets chosen by the operator, not generated key files".into(),
            )),
            Algorithm::EdDsa => Ok(Self::from_ed25519(Ed25519KeyPair::generate())),
            Algorithm::Es256 => Ok(Self::from_es256(ES256KeyPair::generate())),
        }
    }

    /// Reads a PKCS#8 PEM private key (`-----BEGIN PRIVATE KEY-----`), Ed25519 or
    /// P-256; the algorithm follows from the key.
    pub fn from_pem(pem: &str) -> Result<Self, AuthError> {
        if let Ok(pair) = Ed25519KeyPair::from_pem(pem) {
            return Ok(Self::from_ed25519(pair));
        }
        if let Ok(pair) = ES256KeyPair::from_pem(pem) {
            return Ok(Self::from_es256(pair));
        }
        Err(AuthError::InvalidKey(
            "expected a PKCS#8 PEM private key (BEGIN PRIVATE KEY) for Ed25519 or P-256".into(),
        ))
    }

    fn from_ed25519(pair: Ed25519KeyPair) -> Self {
        let kid = pair.jwk_thumbprint();
        let pair = pair.with_key_id(&kid);
        Self { kid, material: PrivateMaterial::Ed25519(pair) }
    }

    fn from_es256(pair: ES256KeyPair) -> Self {
        let kid = pair.jwk_thumbprint();
        let pair = pair.with_key_id(&kid);
        Self { kid, material: PrivateMaterial::Es256(Arc::new(pair)) }
    }

    /// Returns the key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Returns the algorithm.
    pub fn algorithm(&self) -> Algorithm {
        match self.material {
            PrivateMaterial::Hmac(..) => Algorithm::Hs256,
            PrivateMaterial::Ed25519(_) => Algorithm::EdDsa,
            PrivateMaterial::Es256(_) => Algorithm::Es256,
        }
    }

    /// Encodes the private key as PKCS#8 PEM. HS256 secrets have no PEM form.
    pub fn to_pem(&self) -> Result<Secret, AuthError> {
        match &self.material {
            PrivateMaterial::Hmac(..) => Err(AuthError::InvalidKey("an HS256 secret has no PEM form".into())),
            PrivateMaterial::Ed25519(pair) => Ok(Secret::new(pair.to_pem())),
            PrivateMaterial::Es256(pair) => {
                pair.to_pem().map(Secret::new).map_err(|error| AuthError::InvalidKey(error.to_string()))
            }
        }
    }

    /// Returns the key that verifies this key's signatures.
    pub fn verifying_key(&self) -> VerifyingKey {
        let material = match &self.material {
            PrivateMaterial::Hmac(_, verifier) => PublicMaterial::Hmac(verifier.clone()),
            PrivateMaterial::Ed25519(pair) => PublicMaterial::Ed25519(pair.public_key()),
            PrivateMaterial::Es256(pair) => PublicMaterial::Es256(pair.public_key()),
        };
        VerifyingKey { kid: self.kid.clone(), material, not_after: None }
    }

    /// Signs `claims` into a compact JWS whose header carries `alg` and this `kid`.
    pub(crate) fn sign<C: Serialize + DeserializeOwned>(
        &self,
        claims: JWTClaims<C>,
    ) -> Result<String, AuthError> {
        let signed = match &self.material {
            PrivateMaterial::Hmac(key, _) => key.authenticate(claims),
            PrivateMaterial::Ed25519(pair) => pair.sign(claims),
            PrivateMaterial::Es256(pair) => pair.sign(claims),
        };
        signed.map_err(|error| AuthError::Signing(error.to_string()))
    }
}

/// A key that verifies tokens: an HS256 secret, or an Ed25519 or P-256 public key.
#[derive(Clone)]
pub struct VerifyingKey {
    kid: String,
    material: PublicMaterial,
    not_after: Option<DateTime<Utc>>,
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm())
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl VerifyingKey {
    /// Builds an HS256 verification key from secret bytes.
    pub fn hs256(secret: &[u8]) -> Result<Self, AuthError> {
        Ok(SigningKey::hs256(secret)?.verifying_key())
    }

    /// Reads a PEM public key (`-----BEGIN PUBLIC KEY-----`), Ed25519 or P-256.
    pub fn from_public_pem(pem: &str) -> Result<Self, AuthError> {
        // ed25519-compact reads the key bytes of a private key PEM too; a private key
        // in a public key file is an operator mistake worth reporting.
        if !pem.trim_start().starts_with("-----BEGIN PUBLIC KEY-----") {
            return Err(AuthError::InvalidKey(
                "expected a PEM public key (BEGIN PUBLIC KEY) for Ed25519 or P-256".into(),
            ));
        }
        if let Ok(key) = Ed25519PublicKey::from_pem(pem) {
            let kid = key.jwk_thumbprint();
            return Ok(Self::new(kid.clone(), PublicMaterial::Ed25519(key.with_key_id(&kid))));
        }
        if let Ok(key) = ES256PublicKey::from_pem(pem) {
            let kid = key.jwk_thumbprint();
            return Ok(Self::new(kid.clone(), PublicMaterial::Es256(key.with_key_id(&kid))));
        }
        Err(AuthError::InvalidKey("expected a PEM public key (BEGIN PUBLIC KEY) for Ed25519 or P-256".into()))
    }

    fn new(kid: String, material: PublicMaterial) -> Self {
        Self { kid, material, not_after: None }
    }

    /// Sets the last moment at which this key verifies tokens; after it the ring treats
    /// the key as retired.
    pub fn with_not_after(mut self, not_after: DateTime<Utc>) -> Self {
        self.not_after = Some(not_after);
        self
    }

    /// Returns the key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Returns the algorithm.
    pub fn algorithm(&self) -> Algorithm {
        match self.material {
            PublicMaterial::Hmac(_) => Algorithm::Hs256,
            PublicMaterial::Ed25519(_) => Algorithm::EdDsa,
            PublicMaterial::Es256(_) => Algorithm::Es256,
        }
    }

    /// Returns the last moment at which this key verifies tokens, if it is limited.
    pub fn not_after(&self) -> Option<DateTime<Utc>> {
        self.not_after
    }

    /// Returns true when the key no longer verifies at `now`.
    pub fn is_retired_at(&self, now: DateTime<Utc>) -> bool {
        self.not_after.is_some_and(|not_after| now > not_after)
    }

    /// Encodes the public key as PEM; `None` for HS256, whose key is secret.
    pub fn to_public_pem(&self) -> Option<String> {
        match &self.material {
            PublicMaterial::Hmac(_) => None,
            PublicMaterial::Ed25519(key) => Some(key.to_pem()),
            PublicMaterial::Es256(key) => key.to_pem().ok(),
        }
    }

    /// Verifies the signature of `token`, already split into `compact`. HS256 is
    /// checked here in constant time; EdDSA and ES256 go to jwt-simple, which also
    /// checks the registered claims with the `options` it gets from `options`.
    pub(crate) fn verify_signature(
        &self,
        token: &str,
        compact: &CompactToken<'_>,
        options: impl FnOnce() -> VerificationOptions,
    ) -> Result<(), TokenRejection> {
        let verified = match &self.material {
            PublicMaterial::Hmac(keyed) => {
                let signing_input = compact.signing_input()?;
                let mut buffer = [0u8; 64];
                let signature = compact.signature(&mut buffer)?;
                let mut mac = keyed.clone();
                mac.update(signing_input);
                // `verify_slice` compares in constant time and rejects other lengths.
                return mac.verify_slice(signature).map_err(|_| TokenRejection::BadSignatureOrClaims);
            }
            PublicMaterial::Ed25519(key) => key.verify_token::<NoCustomClaims>(token, Some(options())),
            PublicMaterial::Es256(key) => key.verify_token::<NoCustomClaims>(token, Some(options())),
        };
        verified.map(drop).map_err(|error| rejection_of(&error))
    }
}

/// Maps a jwt-simple verification error to the reason logged for it.
fn rejection_of(error: &jwt_simple::Error) -> TokenRejection {
    match error.downcast_ref::<JWTError>() {
        Some(JWTError::TokenHasExpired) => TokenRejection::Expired,
        Some(JWTError::TokenNotValidYet | JWTError::ClockDrift) => TokenRejection::NotYetValid,
        Some(JWTError::RequiredIssuerMismatch | JWTError::RequiredIssuerMissing) => {
            TokenRejection::WrongIssuer
        }
        Some(JWTError::RequiredAudienceMismatch | JWTError::RequiredAudienceMissing) => {
            TokenRejection::WrongAudience
        }
        Some(JWTError::AlgorithmMismatch) => TokenRejection::WrongAlgorithm,
        _ => TokenRejection::BadSignatureOrClaims,
    }
}

/// HMAC-SHA256 keyed with `secret`, ready to be cloned for each verification.
fn keyed_hmac(secret: &[u8]) -> Result<Hmac<Sha256>, AuthError> {
    Hmac::<Sha256>::new_from_slice(secret).map_err(|error| AuthError::InvalidKey(error.to_string()))
}

/// `kid` = the first 16 bytes of HMAC-SHA256(secret, "finetune kid"), base64url.
fn hmac_kid(secret: &[u8]) -> Result<String, AuthError> {
    if secret.len() < MIN_HMAC_KEY_BYTES {
        return Err(AuthError::InvalidKey(format!(
            "an HS256 secret must be at least {MIN_HMAC_KEY_BYTES} bytes, got {}",
            secret.len()
        )));
    }
    let mut mac = keyed_hmac(secret)?;
    mac.update(b"finetune kid");
    let digest = mac.finalize().into_bytes();
    Ok(URL_SAFE_NO_PAD.encode(&digest[..16]))
}

/// The role of a key in a ring, as `finetune keys list` prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRole {
    /// Signs new tokens and verifies them.
    Signing,
    /// Only verifies tokens signed before a rotation.
    VerifyOnly,
}

impl KeyRole {
    /// Returns `signing` or `verify-only`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Signing => "signing",
            Self::VerifyOnly => "verify-only",
        }
    }
}

/// At most one key that signs, and every key that verifies, looked up by `kid`.
///
/// The signing key also verifies. A service that only verifies tokens builds a ring
/// without a signing key, from public keys or a JWKS document.
#[derive(Clone, Debug)]
pub struct KeyRing {
    signing: Option<SigningKey>,
    verifying: BTreeMap<String, VerifyingKey>,
}

impl KeyRing {
    /// Builds a ring in which `signing` signs and verifies and each of `fallbacks` only
    /// verifies. A fallback with the signing key's `kid` is ignored, and of two
    /// fallbacks with one `kid` the first is kept.
    pub fn new(signing: SigningKey, fallbacks: impl IntoIterator<Item = VerifyingKey>) -> Self {
        let mut verifying = BTreeMap::new();
        verifying.insert(signing.kid.clone(), signing.verifying_key());
        for key in fallbacks {
            verifying.entry(key.kid.clone()).or_insert(key);
        }
        Self { signing: Some(signing), verifying }
    }

    /// Builds a ring that verifies with `keys` and cannot sign.
    pub fn verify_only(keys: impl IntoIterator<Item = VerifyingKey>) -> Result<Self, AuthError> {
        let mut verifying = BTreeMap::new();
        for key in keys {
            verifying.entry(key.kid.clone()).or_insert(key);
        }
        if verifying.is_empty() {
            return Err(AuthError::InvalidKey("a key ring needs at least one verification key".into()));
        }
        Ok(Self { signing: None, verifying })
    }

    /// Builds an HS256 ring: `current` signs and verifies, each of `fallbacks` only
    /// verifies (tokens signed before a rotation stay valid until they expire).
    pub fn hs256(current: &[u8], fallbacks: &[&[u8]]) -> Result<Self, AuthError> {
        let signing = SigningKey::hs256(current)?;
        let fallbacks =
            fallbacks.iter().map(|secret| VerifyingKey::hs256(secret)).collect::<Result<Vec<_>, _>>()?;
        Ok(Self::new(signing, fallbacks))
    }

    /// Builds a verify-only ring from a JWKS document (`{"keys": [...]}`) such as
    /// `GET /.well-known/jwks.json` returns. Ed25519 and P-256 keys are used; keys of
    /// other types, symmetric ones included, are skipped. A key whose `kid` differs
    /// from its RFC 7638 thumbprint is an error.
    pub fn from_jwks(document: &str) -> Result<Self, AuthError> {
        Self::verify_only(jwk::parse_key_set(document)?)
    }

    /// Returns the signing key, if the ring has one.
    pub fn signing_key(&self) -> Option<&SigningKey> {
        self.signing.as_ref()
    }

    /// Returns the verification key with this `kid`.
    pub fn verifying_key(&self, kid: &str) -> Option<&VerifyingKey> {
        self.verifying.get(kid)
    }

    /// Returns every verification key with its role, the signing key first.
    pub fn keys(&self) -> Vec<(&VerifyingKey, KeyRole)> {
        let signing_kid = self.signing.as_ref().map(SigningKey::kid);
        let mut keys: Vec<(&VerifyingKey, KeyRole)> = Vec::with_capacity(self.verifying.len());
        if let Some(key) = signing_kid.and_then(|kid| self.verifying.get(kid)) {
            keys.push((key, KeyRole::Signing));
        }
        let others = self.verifying.values().filter(|key| Some(key.kid.as_str()) != signing_kid);
        keys.extend(others.map(|key| (key, KeyRole::VerifyOnly)));
        keys
    }

    /// Returns the `kid`s of every verification key, the signing key first.
    pub fn kids(&self) -> Vec<&str> {
        self.keys().into_iter().map(|(key, _)| key.kid()).collect()
    }

    /// Returns the JWKS document of the public keys that still verify at `now`, the
    /// signing key first. HS256 keys are secret and never appear, so a ring of HS256
    /// keys alone yields `{"keys": []}`.
    pub fn jwks(&self, now: DateTime<Utc>) -> serde_json::Value {
        let keys: Vec<serde_json::Value> = self
            .keys()
            .into_iter()
            .filter(|(key, _)| !key.is_retired_at(now))
            .filter_map(|(key, _)| jwk::public_jwk(key))
            .collect();
        serde_json::json!({ "keys": keys })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn hmac_kid_is_stable_and_per_key() {
        let a = SigningKey::hs256(SECRET).map(|k| k.kid).ok();
        let b = SigningKey::hs256(SECRET).map(|k| k.kid).ok();
        let c = SigningKey::hs256(b"another-secret-another-secret-xx").map(|k| k.kid).ok();
        assert!(a.is_some());
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn hmac_short_secret_rejected() {
        assert!(SigningKey::hs256(b"short").is_err());
    }

    #[test]
    fn signing_key_debug_redacts_secret() {
        let key = SigningKey::hs256(SECRET).ok();
        assert!(!format!("{key:?}").contains("0123456789"));
    }

    #[test]
    fn generated_key_pem_round_trip_keeps_kid() {
        for algorithm in [Algorithm::EdDsa, Algorithm::Es256] {
            let key = SigningKey::generate(algorithm).unwrap_or_else(|e| unreachable!("{e}"));
            let pem = key.to_pem().unwrap_or_else(|e| unreachable!("{e}"));
            let reread = SigningKey::from_pem(pem.expose()).unwrap_or_else(|e| unreachable!("{e}"));
            assert_eq!(reread.kid(), key.kid(), "{algorithm}");
            assert_eq!(reread.algorithm(), algorithm);
        }
    }

    #[test]
    fn public_pem_kid_matches_private_kid() {
        for algorithm in [Algorithm::EdDsa, Algorithm::Es256] {
            let key = SigningKey::generate(algorithm).unwrap_or_else(|e| unreachable!("{e}"));
            let public_pem = key.verifying_key().to_public_pem().unwrap_or_default();
            let public = VerifyingKey::from_public_pem(&public_pem).unwrap_or_else(|e| unreachable!("{e}"));
            assert_eq!(public.kid(), key.kid(), "{algorithm}");
            assert_eq!(public.algorithm(), algorithm);
        }
    }

    #[test]
    fn generate_hs256_rejected() {
        assert!(SigningKey::generate(Algorithm::Hs256).is_err());
    }

    #[test]
    fn private_pem_not_accepted_as_public_key() {
        let key = SigningKey::generate(Algorithm::EdDsa).unwrap_or_else(|e| unreachable!("{e}"));
        let pem = key.to_pem().unwrap_or_else(|e| unreachable!("{e}"));
        assert!(VerifyingKey::from_public_pem(pem.expose()).is_err());
    }

    #[test]
    fn ring_lists_signing_key_first() {
        let ring = KeyRing::hs256(SECRET, &[b"fallback-secret-fallback-secret!", SECRET])
            .unwrap_or_else(|e| unreachable!("{e}"));
        let keys = ring.keys();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0].1, KeyRole::Signing);
        assert_eq!(Some(keys[0].0.kid()), ring.signing_key().map(SigningKey::kid));
        assert_eq!(keys[1].1, KeyRole::VerifyOnly);
    }

    #[test]
    fn jwks_empty_for_hs256_ring() {
        let ring = KeyRing::hs256(SECRET, &[]).unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(ring.jwks(Utc::now()), serde_json::json!({"keys": []}));
    }

    #[test]
    fn jwks_skips_retired_keys() {
        let now = Utc::now();
        let current = SigningKey::generate(Algorithm::EdDsa).unwrap_or_else(|e| unreachable!("{e}"));
        let old = SigningKey::generate(Algorithm::Es256).unwrap_or_else(|e| unreachable!("{e}"));
        let old_public = old.verifying_key().with_not_after(now - chrono::Duration::seconds(1));
        let ring = KeyRing::new(current.clone(), [old_public]);
        let kids: Vec<String> = ring.jwks(now)["keys"]
            .as_array()
            .map(|keys| keys.iter().filter_map(|k| k["kid"].as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
        assert_eq!(kids, vec![current.kid().to_owned()]);
    }

    #[test]
    fn verify_only_ring_needs_a_key() {
        assert!(KeyRing::verify_only([]).is_err());
    }
}
