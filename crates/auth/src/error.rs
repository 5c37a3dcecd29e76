//! Errors of authentication and token handling.

use finetune_core::CoreError;

/// The reason a token was rejected. The client always sees `token_not_valid`; the reason is
/// for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRejection {
    /// Not a compact JWS, or longer than the limit.
    Malformed,
    /// The header names another algorithm than the key its `kid` names, or none.
    WrongAlgorithm,
    /// No `kid`, or a `kid` that no key in the ring has.
    UnknownKey,
    /// The `kid` names a key that was retired and no longer verifies.
    RetiredKey,
    /// The signature check failed, or a claim is not well-formed.
    BadSignatureOrClaims,
    /// `iss` is missing or not the expected issuer.
    WrongIssuer,
    /// `aud` is missing or does not contain the expected audience.
    WrongAudience,
    /// `nbf` or `iat` is in the future (beyond the leeway).
    NotYetValid,
    /// `exp` is in the past (beyond the leeway).
    Expired,
    /// The token has no `exp`.
    MissingExpiry,
    /// `token_type` is not the expected one.
    WrongType,
    /// `sub` or `jti` is missing or not well-formed.
    BadSubject,
    /// A refresh token that is unknown to the database.
    Unknown,
    /// A refresh token revoked by logout, a password change or deactivation.
    Revoked,
    /// The user is gone or inactive.
    InactiveUser,
}

impl TokenRejection {
    /// Returns a stable name for the log.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::WrongAlgorithm => "wrong_algorithm",
            Self::UnknownKey => "unknown_key",
            Self::RetiredKey => "retired_key",
            Self::BadSignatureOrClaims => "bad_signature_or_claims",
            Self::WrongIssuer => "wrong_issuer",
            Self::WrongAudience => "wrong_audience",
            Self::NotYetValid => "not_yet_valid",
            Self::Expired => "expired",
            Self::MissingExpiry => "missing_exp",
            Self::WrongType => "wrong_token_type",
            Self::BadSubject => "bad_subject",
            Self::Unknown => "unknown",
            Self::Revoked => "revoked",
            Self::InactiveUser => "inactive_user",
        }
    }
}

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// A token that is malformed, expired, revoked or of the wrong type.
    #[error("token not valid: {}", .0.as_str())]
    TokenNotValid(TokenRejection),
    /// A refresh token that was already rotated was presented again.
    #[error("refresh token reused")]
    TokenReused,
    /// A key that cannot be used.
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// Signing failed.
    #[error("cannot sign token: {0}")]
    Signing(String),
    /// Hashing a password failed.
    #[error("password hashing failed: {0}")]
    Hashing(String),
    /// A database or validation error.
    #[error(transparent)]
    Core(#[from] CoreError),
}

#[cfg(feature = "database")]
impl From<diesel::result::Error> for AuthError {
    fn from(error: diesel::result::Error) -> Self {
        Self::Core(error.into())
    }
}
