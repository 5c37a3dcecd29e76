//! Passwords, signing keys, access tokens and refresh tokens of the Finetune security
//! backend.
//!
//! Other services embed this crate to verify access tokens: with
//! `default-features = false` it builds without diesel, argon2 and actix-web and offers
//! [`keys::KeyRing`] and [`tokens::AccessTokens`]. The default features add argon2id
//! password hashing (`passwords`) and refresh-token storage with rotation and reuse
//! detection on the shared database (`database`).
//!
//! This crate depends on `finetune-core` only and reads no settings itself; the caller
//! passes `SECRET_KEY`, `SECRET_KEY_FALLBACKS`, `JWT_ISSUER`, `JWT_AUDIENCE`,
//! `ACCESS_TOKEN_LIFETIME` and `REFRESH_TOKEN_LIFETIME` in.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod error;
pub mod keys;
pub mod tokens;

#[cfg(feature = "passwords")]
pub mod password;
#[cfg(feature = "database")]
pub mod refresh;

pub use error::{AuthError, TokenRejection};
pub use keys::KeyRing;
pub use tokens::{AccessClaims, AccessTokens, IssuedAccessToken};

/// The clock skew tolerated when checking `exp`, `nbf` and `iat`.
pub const LEEWAY: std::time::Duration = std::time::Duration::from_secs(30);
