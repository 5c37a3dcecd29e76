//! The shared state of every request handler.

use std::sync::Arc;
use std::time::Duration;

use finetune_auth::AccessTokens;
use finetune_auth::password::Passwords;
use finetune_core::Clock;
use finetune_core::db::DbPool;
use finetune_core::settings::TrustedProxies;

use crate::hash_pool::HashPool;
use crate::user_cache::UserCache;

/// Everything a handler needs; cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The database pool.
    pub pool: DbPool,
    /// Access-token issuer and verifier.
    pub tokens: Arc<AccessTokens>,
    /// Password hasher.
    pub passwords: Arc<Passwords>,
    /// Views of active users for `GET /api/auth/me/`.
    pub user_cache: Arc<UserCache>,
    /// Low-priority threads for argon2; at most one hash per thread at a time.
    pub hash_pool: Arc<HashPool>,
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
    /// The default number of hashing threads: one per core.
    pub fn default_hash_concurrency() -> usize {
        std::thread::available_parallelism().map_or(1, usize::from)
    }
}
