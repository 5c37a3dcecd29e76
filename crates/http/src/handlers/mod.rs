//! Request handlers, one module per area.

pub mod admin_roles;
pub mod admin_users;
pub mod auth;
pub mod logs;
pub mod ops;
pub mod token_api;
