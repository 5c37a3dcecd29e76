//! Request handlers, one module per area.

pub mod auth;
pub mod ops;
pub mod token_api;
