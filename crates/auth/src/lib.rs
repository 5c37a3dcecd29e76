//! Passwords, signing keys, access tokens and refresh tokens of the Finetune security
//! backend.
//!
//! Other services embed this crate to verify access tokens without a round trip: with
//! `default-features = false` it builds without diesel, argon2 and actix-web and offers
//! a [`KeyRing`] (from an HS256 secret, PEM public keys or the server's JWKS document),
//! the [`TokenVerifier`] and the typed [`AccessClaims`]. The `actix` feature adds an
//! extractor and a role guard for actix-web services. The default features add argon2id
//! password hashing (`passwords`) and refresh-token storage with rotation and reuse
//! detection on the shared database (`database`).
//!
//! ```no_run
//! # fn main() -> Result<(), finetune_auth::AuthError> {
//! use finetune_auth::{KeyRing, TokenVerifier};
//!
//! // The body of GET /.well-known/jwks.json of a finetune server using EdDSA or ES256.
//! let jwks = r#"{"keys": []}"#;
//! let verifier = TokenVerifier::new(KeyRing::from_jwks(jwks)?, "finetune", "finetune-erp");
//! let claims = verifier.verify("eyJ...", chrono::Utc::now())?;
//! println!("user {} with roles {:?}", claims.user_id.0, claims.roles);
//! # Ok(())
//! # }
//! ```
//!
//! This crate depends on `finetune-core` only and reads no settings itself; the caller
//! passes `SECRET_KEY`, `SECRET_KEY_FALLBACKS`, the keys of `JWT_PRIVATE_KEY_FILE` and
//! `JWT_PUBLIC_KEY_FALLBACK_FILES`, `JWT_ISSUER`, `JWT_AUDIENCE`,
//! `ACCESS_TOKEN_LIFETIME` and `REFRESH_TOKEN_LIFETIME` in.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod compact;
pub mod error;
pub mod keys;
pub mod tokens;

#[cfg(feature = "actix")]
pub mod actix;

#[cfg(feature = "passwords")]
pub mod password;
#[cfg(feature = "database")]
pub mod refresh;

pub use error::{AuthError, TokenRejection};
pub use keys::{Algorithm, KeyRing, SigningKey, VerifyingKey};
pub use tokens::{AccessClaims, AccessTokens, IssuedAccessToken, TokenVerifier};

/// The clock skew tolerated when checking `exp`, `nbf` and `iat`.
pub const LEEWAY: std::time::Duration = std::time::Duration::from_secs(30);
