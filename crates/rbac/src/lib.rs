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
    /// No user with this id.
    #[error("user {0} not found")]
    UserNotFound(i64),
    /// A role with this name exists.
    #[error("role {0:?} already exists")]
    RoleExists(String),
    /// The built-in role cannot be changed or deleted.
    #[error("the built-in role {0:?} cannot be changed or deleted")]
    BuiltinRole(String),
    /// The change would leave no active `system_admin`.
    #[error("the last active system_admin cannot be deactivated or lose the role")]
    LastSystemAdmin,
    /// A database or validation error.
    #[error(transparent)]
    Core(#[from] finetune_core::CoreError),
}

impl From<diesel::result::Error> for RbacError {
    fn from(error: diesel::result::Error) -> Self {
        Self::Core(error.into())
    }
}
