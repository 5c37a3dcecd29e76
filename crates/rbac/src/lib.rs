//! Users, roles, permissions and grants of the Finetune security backend, and the
//! permission checks that read the current grants on every call.
//!
//! This crate depends on `finetune-core` only; it reads no settings. Every function
//! takes a connection, so the caller decides the transaction.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod permissions;
pub mod roles;
pub mod users;

pub use permissions::Permission;
pub use users::{NewUser, User};

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum RbacError {
    /// Another user already has this username (compared case-insensitively).
    #[error("username already taken")]
    UsernameTaken,
    /// No role with this name.
    #[error("role {0:?} not found")]
    RoleNotFound(String),
    /// A database or validation error.
    #[error(transparent)]
    Core(#[from] finetune_core::CoreError),
}

impl From<diesel::result::Error> for RbacError {
    fn from(error: diesel::result::Error) -> Self {
        Self::Core(error.into())
    }
}
