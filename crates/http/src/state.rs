//! The shared state of every request handler.

use std::sync::Arc;
use std::time::Duration;

use finetune_auth::AccessTokens;
use finetune_auth::password::Passwords;
use finetune_core::Clock;
use finetune_core::db::DbPool;
use finetune_core::settings::TrustedProxies;
pub use tokio::sync::Semaphore;

/// Everything a handler needs; cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The database pool.
    pub pool: DbPool,
    /// Access-token issuer and verifier.
    pub tokens: Arc<AccessTokens>,
    /// Password hasher.
    pub passwords: Arc<Passwords>,
    /// Bounds concurrent argon2 computations: each takes about 19 MiB and one core.
    pub hash_permits: Arc<Semaphore>,
    /// The source of the current time.
    pub clock: Arc<dyn Clock>,
    /// Refresh-token lifetime.
    pub refresh_lifetime: Duration,
    /// True when cookies must carry `Secure` (production).
    pub secure_cookies: bool,
    /// True in production; adds `Strict-Transport-Security`.
    pub production: bool,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: TrustedProxies,
}

impl AppState {
    /// The default number of concurrent password hashes: one per core.
    pub fn default_hash_concurrency() -> usize {
        std::thread::available_parallelism().map_or(1, usize::from)
    }
}
