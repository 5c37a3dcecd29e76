//! The actix-web layer of the Finetune security backend: routes, extractors,
//! middleware, and the one place where errors become `{"detail", "code"}` responses.
//!
//! This crate is the use-case layer: it opens each transaction and calls
//! `finetune-auth`, `finetune-rbac` and `finetune-activity` inside it, so an operation
//! and its audit entry are written together. Blocking work (diesel, argon2) runs off
//! the actix worker threads through [`blocking`].
//!
//! It reads no settings itself; `finetune-server` builds an [`AppState`], a
//! [`cors::CorsPolicy`] and a [`throttle::LoginThrottle`] from them.
//!
//! Licence note: the login throttle uses actix-governor, which is GPL-3.0-or-later.
//! Only this crate depends on it; `finetune-auth` and `finetune-core`, which other
//! services embed, do not.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod authorize;
pub mod blocking;
pub mod cookies;
pub mod cors;
pub mod edge;
pub mod error;
pub mod extract;
pub mod flows;
pub mod handlers;
pub mod hash_pool;
pub mod limits;
pub mod one_statement;
pub mod pagination;
pub mod routes;
pub mod state;
pub mod throttle;
pub mod user_cache;

pub use error::ApiError;
pub use routes::Routes;
pub use state::AppState;
