//! The actix-web layer of the Finetune security backend: routes, extractors,
//! middleware, and the one place where errors become `{"detail", "code"}` responses.
//!
//! This crate is the use-case layer: it opens each transaction and calls
//! `finetune-auth`, `finetune-rbac` and `finetune-activity` inside it, so an operation
//! and its audit entry are written together. Blocking work (diesel, argon2) runs off
//! the actix worker threads through [`blocking`].
//!
//! It reads no settings itself; `finetune-server` builds an [`AppState`] from them.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod authorize;
pub mod blocking;
pub mod cookies;
pub mod edge;
pub mod error;
pub mod extract;
pub mod flows;
pub mod handlers;
pub mod hash_pool;
pub mod pagination;
pub mod routes;
pub mod state;

pub use error::ApiError;
pub use routes::configure;
pub use state::AppState;
