//! Access tokens: short-lived JWTs with `kid`, `sub`, `token_type`, `jti`, `iat`, `exp`,
//! `iss`, `aud` and `roles`.
//!
//! [`TokenVerifier`] checks them with a key ring that may hold public keys only; it is
//! what another service embeds. [`AccessTokens`] adds issuing with the ring's signing key.

use std::collections::HashSet;
use std::fmt;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use finetune_core::{Secret, UserId};
use jwt_simple::prelude::{Claims, UnixTimeStamp, VerificationOptions};
use serde::{Deserialize, Serialize};

use crate::LEEWAY;
use crate::compact::CompactToken;
use crate::error::{AuthError, TokenRejection};
use crate::keys::{Algorithm, KeyRing};

/// The `token_type` claim of access tokens.
pub const ACCESS_TOKEN_TYPE: &str = "access";
/// The maximum token length accepted for verification, in bytes.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// The claims of an access token besides the registered ones.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CustomClaims {
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
}

/// The claims of a verified access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessClaims {
    /// `sub`: the user id.
    pub user_id: UserId,
    /// `jti`.
    pub token_id: String,
    /// `roles` when the token was issued; permission checks read the current grants.
    pub roles: Vec<String>,
    /// `iat`, when the token has one.
    pub issued_at: Option<DateTime<Utc>>,
    /// `exp`.
    pub expires_at: DateTime<Utc>,
    /// The `kid` of the key that signed the token.
    pub key_id: String,
}

impl AccessClaims {
    /// Returns true when the token carried `role` in its `roles` claim.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|held| held == role)
    }
}

/// A freshly signed access token.
#[derive(Clone)]
pub struct IssuedAccessToken {
    /// The compact JWT.
    pub token: Secret,
    /// `exp`.
    pub expires_at: DateTime<Utc>,
}

impl fmt::Debug for IssuedAccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedAccessToken").field("expires_at", &self.expires_at).finish_non_exhaustive()
    }
}

/// Verifies access tokens with one key ring, issuer and audience.
///
/// A token is valid when its `kid` names a key of the ring that is not retired, its
/// `alg` is that key's algorithm, and the signature verifies. Its `iss` and `aud` must
/// match, `exp` must be present, and `exp`, `nbf` and `iat` must hold within the
/// leeway. Last, `token_type` must be `access`, `sub` an integer user id and `jti` not
/// empty.
#[derive(Debug, Clone)]
pub struct TokenVerifier {
    ring: KeyRing,
    issuer: String,
    audience: String,
    leeway: Duration,
}

impl TokenVerifier {
    /// Creates a verifier with the default [`LEEWAY`].
    pub fn new(ring: KeyRing, issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Self { ring, issuer: issuer.into(), audience: audience.into(), leeway: LEEWAY }
    }

    /// Sets the clock skew tolerated when checking `exp`, `nbf` and `iat`.
    pub fn with_leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Returns the key ring.
    pub fn key_ring(&self) -> &KeyRing {
        &self.ring
    }

    /// Returns the expected `iss`.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Returns the expected `aud`.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// Returns the tolerated clock skew.
    pub fn leeway(&self) -> Duration {
        self.leeway
    }

    /// Verifies an access token at `now`; see the type's documentation for the checks.
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<AccessClaims, AuthError> {
        let reject = AuthError::TokenNotValid;
        if token.is_empty() || token.len() > MAX_TOKEN_BYTES {
            return Err(reject(TokenRejection::Malformed));
        }

        let compact = CompactToken::parse(token).map_err(reject)?;
        let Some(key_id) = compact.header.kid.as_deref() else {
            return Err(reject(TokenRejection::UnknownKey));
        };
        let Some(key) = self.ring.verifying_key(key_id) else {
            return Err(reject(TokenRejection::UnknownKey));
        };
        if key.is_retired_at(now) {
            return Err(reject(TokenRejection::RetiredKey));
        }
        // The key decides the algorithm, never the token: this rejects `alg: none` and
        // an HS256 token keyed with a public key.
        if Algorithm::from_name(&compact.header.alg) != Some(key.algorithm()) {
            return Err(reject(TokenRejection::WrongAlgorithm));
        }

        let now_seconds = unix_seconds(now);
        key.verify_signature(token, &compact, || VerificationOptions {
            allowed_issuers: Some(HashSet::from([self.issuer.clone()])),
            allowed_audiences: Some(HashSet::from([self.audience.clone()])),
            time_tolerance: Some(jwt_simple::prelude::Duration::from_secs(self.leeway.as_secs())),
            artificial_time: Some(UnixTimeStamp::from_secs(now_seconds)),
            max_token_length: Some(MAX_TOKEN_BYTES),
            ..VerificationOptions::default()
        })
        .map_err(reject)?;

        let claims = compact.claims().map_err(reject)?;
        claims.check(now_seconds, self.leeway.as_secs(), &self.issuer, &self.audience).map_err(reject)?;
        // A token without `exp` would never expire.
        let Some(expires_at) = claims.exp else {
            return Err(reject(TokenRejection::MissingExpiry));
        };
        if claims.token_type.as_deref() != Some(ACCESS_TOKEN_TYPE) {
            return Err(reject(TokenRejection::WrongType));
        }
        let user_id = claims
            .sub
            .as_deref()
            .and_then(|sub| sub.parse::<i64>().ok())
            .ok_or(reject(TokenRejection::BadSubject))?;
        let token_id = claims.jti.filter(|jti| !jti.is_empty()).ok_or(reject(TokenRejection::BadSubject))?;

        Ok(AccessClaims {
            user_id: UserId(user_id),
            token_id,
            roles: claims.roles,
            issued_at: claims.iat.and_then(timestamp),
            expires_at: timestamp(expires_at).unwrap_or(now),
            key_id: key.kid().to_owned(),
        })
    }
}

/// Issues and verifies access tokens with one key ring, issuer and audience.
#[derive(Debug, Clone)]
pub struct AccessTokens {
    verifier: TokenVerifier,
    lifetime: Duration,
}

impl AccessTokens {
    /// Creates the issuer and verifier. Issuing fails when `ring` has no signing key.
    pub fn new(
        ring: KeyRing,
        issuer: impl Into<String>,
        audience: impl Into<String>,
        lifetime: Duration,
    ) -> Self {
        Self { verifier: TokenVerifier::new(ring, issuer, audience), lifetime }
    }

    /// Returns the key ring.
    pub fn key_ring(&self) -> &KeyRing {
        self.verifier.key_ring()
    }

    /// Returns the verifier, for code that only checks tokens.
    pub fn verifier(&self) -> &TokenVerifier {
        &self.verifier
    }

    /// Returns the access-token lifetime.
    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// Signs an access token for `user_id` with the current `roles`, issued at `now`.
    pub fn issue(
        &self,
        user_id: UserId,
        roles: &[String],
        now: DateTime<Utc>,
    ) -> Result<IssuedAccessToken, AuthError> {
        let Some(signing_key) = self.key_ring().signing_key() else {
            return Err(AuthError::Signing("the key ring has no signing key".into()));
        };
        let issued_at = unix_seconds(now);
        let lifetime = self.lifetime.as_secs();
        let custom = CustomClaims { token_type: Some(ACCESS_TOKEN_TYPE.into()), roles: roles.to_vec() };

        let mut claims =
            Claims::with_custom_claims(custom, jwt_simple::prelude::Duration::from_secs(lifetime))
                .with_subject(user_id)
                .with_issuer(self.verifier.issuer())
                .with_audience(self.verifier.audience())
                .with_jwt_id(random_token_id()?);
        claims.issued_at = Some(UnixTimeStamp::from_secs(issued_at));
        claims.invalid_before = None;
        claims.expires_at = Some(UnixTimeStamp::from_secs(issued_at + lifetime));

        let token = signing_key.sign(claims)?;
        let expires_at = timestamp(issued_at + lifetime).unwrap_or(now);
        Ok(IssuedAccessToken { token: Secret::new(token), expires_at })
    }

    /// Verifies an access token at `now`; see [`TokenVerifier`].
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<AccessClaims, AuthError> {
        self.verifier.verify(token, now)
    }
}

fn timestamp(seconds: u64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(i64::try_from(seconds).ok()?, 0)
}

fn unix_seconds(time: DateTime<Utc>) -> u64 {
    u64::try_from(time.timestamp()).unwrap_or(0)
}

/// Generates a random 128-bit id, base64url.
fn random_token_id() -> Result<String, AuthError> {
    let mut bytes = [0u8; 16];
    getrandom_fill(&mut bytes)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// Fills `bytes` from the operating system's random source.
pub(crate) fn getrandom_fill(bytes: &mut [u8]) -> Result<(), AuthError> {
    getrandom::fill(bytes).map_err(|error| AuthError::Signing(format!("random source failed: {error}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration as ChronoDuration;

    const SECRET: &[u8] = b"test-secret-test-secret-test-secret-xx";

    fn tokens() -> AccessTokens {
        let ring = KeyRing::hs256(SECRET, &[]).unwrap_or_else(|e| unreachable!("{e}"));
        AccessTokens::new(ring, "finetune", "finetune-erp", Duration::from_secs(300))
    }

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default()
    }

    #[test]
    fn issued_token_verifies() {
        let tokens = tokens();
        let issued =
            tokens.issue(UserId(7), &["system_admin".into()], now()).unwrap_or_else(|e| unreachable!("{e}"));
        let claims = tokens.verify(issued.token.expose(), now()).unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(claims.user_id, UserId(7));
        assert_eq!(claims.roles, vec!["system_admin".to_string()]);
    }

    #[test]
    fn expired_token_rejected_after_leeway() {
        let tokens = tokens();
        let issued = tokens.issue(UserId(7), &[], now()).unwrap_or_else(|e| unreachable!("{e}"));
        let within_leeway = now() + ChronoDuration::seconds(300 + 29);
        let past_leeway = now() + ChronoDuration::seconds(300 + 31);
        assert!(tokens.verify(issued.token.expose(), within_leeway).is_ok());
        assert!(matches!(
            tokens.verify(issued.token.expose(), past_leeway),
            Err(AuthError::TokenNotValid(TokenRejection::Expired))
        ));
    }

    #[test]
    fn fallback_key_verifies_old_tokens() {
        let old_ring = KeyRing::hs256(b"old-secret-old-secret-old-secret-xx", &[])
            .unwrap_or_else(|e| unreachable!("{e}"));
        let old = AccessTokens::new(old_ring, "finetune", "finetune-erp", Duration::from_secs(300));
        let issued = old.issue(UserId(1), &[], now()).unwrap_or_else(|e| unreachable!("{e}"));

        let rotated_ring = KeyRing::hs256(SECRET, &[b"old-secret-old-secret-old-secret-xx"])
            .unwrap_or_else(|e| unreachable!("{e}"));
        let rotated = AccessTokens::new(rotated_ring, "finetune", "finetune-erp", Duration::from_secs(300));
        assert!(rotated.verify(issued.token.expose(), now()).is_ok());
        assert!(tokens().verify(issued.token.expose(), now()).is_err());
    }

    #[test]
    fn wrong_audience_rejected() {
        let ring = KeyRing::hs256(SECRET, &[]).unwrap_or_else(|e| unreachable!("{e}"));
        let other = AccessTokens::new(ring, "finetune", "another-app", Duration::from_secs(300));
        let issued = other.issue(UserId(1), &[], now()).unwrap_or_else(|e| unreachable!("{e}"));
        assert!(tokens().verify(issued.token.expose(), now()).is_err());
    }

    /// Signs `header` and `payload` (JSON text) with `SECRET` as HS256, so a test
    /// controls every byte of both.
    fn hand_signed(header: &str, payload: &str) -> String {
        use hmac::{Hmac, Mac};
        let signing_input = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(payload));
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET).unwrap_or_else(|e| unreachable!("{e}"));
        mac.update(signing_input.as_bytes());
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
    }

    /// Verifies `token` as this crate did before it checked HS256 itself: jwt-simple
    /// checks the signature and the registered claims, then the access-token rules
    /// apply. The tests compare [`TokenVerifier::verify`] against it.
    fn jwt_simple_verify(token: &str, now: DateTime<Utc>) -> Result<AccessClaims, TokenRejection> {
        use jwt_simple::prelude::{HS256Key, JWTClaims, MACLike, Token};
        let ring_tokens = tokens();
        let kid = ring_tokens.key_ring().signing_key().map(|key| key.kid().to_owned()).unwrap_or_default();

        let metadata = Token::decode_metadata(token).map_err(|_| TokenRejection::Malformed)?;
        if metadata.key_id() != Some(kid.as_str()) {
            return Err(TokenRejection::UnknownKey);
        }
        if metadata.algorithm() != "HS256" {
            return Err(TokenRejection::WrongAlgorithm);
        }

        let options = VerificationOptions {
            allowed_issuers: Some(HashSet::from(["finetune".to_owned()])),
            allowed_audiences: Some(HashSet::from(["finetune-erp".to_owned()])),
            time_tolerance: Some(jwt_simple::prelude::Duration::from_secs(30)),
            artificial_time: Some(UnixTimeStamp::from_secs(unix_seconds(now))),
            ..VerificationOptions::default()
        };
        let claims: JWTClaims<CustomClaims> = HS256Key::from_bytes(SECRET)
            .verify_token(token, Some(options))
            .map_err(|error| match error.downcast_ref::<jwt_simple::JWTError>() {
                Some(jwt_simple::JWTError::TokenHasExpired) => TokenRejection::Expired,
                Some(jwt_simple::JWTError::TokenNotValidYet | jwt_simple::JWTError::ClockDrift) => {
                    TokenRejection::NotYetValid
                }
                Some(
                    jwt_simple::JWTError::RequiredIssuerMismatch
                    | jwt_simple::JWTError::RequiredIssuerMissing,
                ) => TokenRejection::WrongIssuer,
                Some(
                    jwt_simple::JWTError::RequiredAudienceMismatch
                    | jwt_simple::JWTError::RequiredAudienceMissing,
                ) => TokenRejection::WrongAudience,
                _ => TokenRejection::BadSignatureOrClaims,
            })?;

        let expires_at = claims.expires_at.ok_or(TokenRejection::MissingExpiry)?;
        if claims.custom.token_type.as_deref() != Some(ACCESS_TOKEN_TYPE) {
            return Err(TokenRejection::WrongType);
        }
        let user_id = claims.subject.as_deref().and_then(|sub| sub.parse::<i64>().ok());
        let token_id = claims.jwt_id.filter(|jti| !jti.is_empty());
        let (Some(user_id), Some(token_id)) = (user_id, token_id) else {
            return Err(TokenRejection::BadSubject);
        };
        Ok(AccessClaims {
            user_id: UserId(user_id),
            token_id,
            roles: claims.custom.roles,
            issued_at: claims.issued_at.and_then(|iat| timestamp(iat.as_secs())),
            expires_at: timestamp(expires_at.as_secs()).unwrap_or(now),
            key_id: kid,
        })
    }

    #[test]
    fn hs256_verification_agrees_with_jwt_simple() {
        let tokens = tokens();
        let kid = tokens.key_ring().signing_key().map(|key| key.kid().to_owned()).unwrap_or_default();
        let t = unix_seconds(now());
        let header = format!(r#"{{"alg":"HS256","typ":"JWT","kid":"{kid}"}}"#);
        let claims = |extra: &str| {
            format!(
                r#"{{"iat":{t},"exp":{},"iss":"finetune","aud":"finetune-erp","sub":"7","jti":"j1","token_type":"access","roles":["a"]{extra}}}"#,
                t + 300
            )
        };
        let with = |fields: &str| format!("{{{fields}}}");
        let base = r#""iss":"finetune","aud":"finetune-erp","sub":"7","jti":"j1","token_type":"access""#;
        let payloads = [
            claims(""),
            claims(r#","nbf":0"#),
            with(&format!(r#"{base},"exp":{}"#, t - 29)),
            with(&format!(r#"{base},"exp":{}"#, t - 31)),
            with(base),
            with(&format!(r#"{base},"exp":{},"nbf":{}"#, t + 300, t + 29)),
            with(&format!(r#"{base},"exp":{},"nbf":{}"#, t + 300, t + 31)),
            with(&format!(r#"{base},"exp":{},"iat":{}"#, t + 300, t + 31)),
            with(&format!(r#"{base},"exp":{},"iat":{}"#, t + 300, t + 30)),
            with(&format!(
                r#""aud":"finetune-erp","sub":"7","jti":"j","token_type":"access","exp":{}"#,
                t + 9
            )),
            with(&format!(
                r#""iss":"other","aud":"finetune-erp","sub":"7","jti":"j","token_type":"access","exp":{}"#,
                t + 9
            )),
            with(&format!(r#""iss":"finetune","sub":"7","jti":"j","token_type":"access","exp":{}"#, t + 9)),
            with(&format!(
                r#""iss":"finetune","aud":["x","finetune-erp"],"sub":"7","jti":"j","token_type":"access","exp":{}"#,
                t + 9
            )),
            with(&format!(
                r#""iss":"finetune","aud":["x"],"sub":"7","jti":"j","token_type":"access","exp":{}"#,
                t + 9
            )),
            with(&format!(
                r#""iss":"finetune","aud":"finetune-erp","sub":"x7","jti":"j","token_type":"access","exp":{}"#,
                t + 9
            )),
            with(&format!(
                r#""iss":"finetune","aud":"finetune-erp","sub":"7","jti":"","token_type":"access","exp":{}"#,
                t + 9
            )),
            with(&format!(
                r#""iss":"finetune","aud":"finetune-erp","sub":"7","token_type":"access","exp":{}"#,
                t + 9
            )),
            with(&format!(
                r#""iss":"finetune","aud":"finetune-erp","sub":"7","jti":"j","token_type":"refresh","exp":{}"#,
                t + 9
            )),
            with(&format!(r#""iss":"finetune","aud":"finetune-erp","sub":"7","jti":"j","exp":{}"#, t + 9)),
            with(&format!(r#"{base},"exp":-5"#)),
            with(&format!(r#"{base},"exp":"{}""#, t + 9)),
            with(&format!(r#"{base},"exp":{},"roles":"admin""#, t + 9)),
            "not json".to_owned(),
        ];
        for payload in &payloads {
            let token = hand_signed(&header, payload);
            let ours = tokens.verify(&token, now()).map_err(|error| match error {
                AuthError::TokenNotValid(reason) => reason,
                other => unreachable!("{other}"),
            });
            assert_eq!(ours, jwt_simple_verify(&token, now()), "payload {payload}");
        }

        let good = hand_signed(&header, &claims(""));
        let (signing_input, signature) = good.rsplit_once('.').unwrap_or_default();
        let mut flipped = signature.as_bytes().to_vec();
        flipped[0] = if flipped[0] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(flipped).unwrap_or_default();
        let variants = [
            format!("{signing_input}.{flipped}"),
            format!("{signing_input}."),
            format!("{signing_input}.{signature}.{signature}"),
            format!("{signing_input}.{signature}="),
            signing_input.to_owned(),
            hand_signed(&format!(r#"{{"alg":"HS256","kid":"{kid}"}}"#), &claims("")),
            hand_signed(&format!(r#"{{"alg":"HS256","typ":"at+jwt","kid":"{kid}"}}"#), &claims("")),
            hand_signed(&format!(r#"{{"alg":"HS256","kid":"{kid}","crit":[]}}"#), &claims("")),
            hand_signed(&format!(r#"{{"alg":"HS512","kid":"{kid}"}}"#), &claims("")),
            hand_signed(&format!(r#"{{"alg":"none","kid":"{kid}"}}"#), &claims("")),
            hand_signed(r#"{"alg":"HS256","kid":"another"}"#, &claims("")),
            hand_signed(r#"{"alg":"HS256"}"#, &claims("")),
        ];
        for token in &variants {
            let ours = tokens.verify(token, now()).map_err(|error| match error {
                AuthError::TokenNotValid(reason) => reason,
                other => unreachable!("{other}"),
            });
            let reference = jwt_simple_verify(token, now());
            assert_eq!(ours.is_ok(), reference.is_ok(), "token {token}: {ours:?} against {reference:?}");
        }
    }

    #[test]
    fn unknown_critical_header_and_foreign_type_rejected() {
        let tokens = tokens();
        let kid = tokens.key_ring().signing_key().map(|key| key.kid().to_owned()).unwrap_or_default();
        let t = unix_seconds(now());
        let payload = format!(
            r#"{{"exp":{},"iss":"finetune","aud":"finetune-erp","sub":"7","jti":"j","token_type":"access"}}"#,
            t + 60
        );
        for header in [
            format!(r#"{{"alg":"HS256","kid":"{kid}","crit":["exp"]}}"#),
            format!(r#"{{"alg":"HS256","kid":"{kid}","typ":"JOSE"}}"#),
        ] {
            let token = hand_signed(&header, &payload);
            assert!(tokens.verify(&token, now()).is_err(), "{header}");
            assert!(jwt_simple_verify(&token, now()).is_err(), "{header}");
        }
        let plain = hand_signed(&format!(r#"{{"alg":"HS256","kid":"{kid}"}}"#), &payload);
        assert!(tokens.verify(&plain, now()).is_ok());
    }

    #[test]
    fn oversized_token_rejected() {
        let huge = "a".repeat(MAX_TOKEN_BYTES + 1);
        assert!(matches!(
            tokens().verify(&huge, now()),
            Err(AuthError::TokenNotValid(TokenRejection::Malformed))
        ));
    }
}
