//! Domain types, errors, the clock, settings and the database layer shared by every
//! crate of the Finetune security backend.
//!
//! This crate depends on no other workspace crate and knows nothing of HTTP. Its
//! database layer (feature `database`, on by default) and its settings loader
//! (feature `settings`, on by default) are optional, so a service that only verifies
//! tokens through `finetune-auth` builds without diesel or the `config` crate.
//!
//! The settings it reads are listed in [`settings`].
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod clock;
pub mod context;
pub mod error;
pub mod ids;
pub mod secret;
pub mod user;

#[cfg(feature = "database")]
pub mod db;
#[cfg(feature = "settings")]
pub mod settings;

pub use clock::{Clock, ManualClock, SystemClock};
pub use context::RequestContext;
pub use error::CoreError;
pub use ids::{RoleId, UserId};
pub use secret::Secret;
