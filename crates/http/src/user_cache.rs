//! A cache of active users' views for `GET /api/auth/me/` and refresh-token rotation.
//!
//! A change made through this instance clears the cache before its response is sent.
//! Every change also bumps a counter row in its transaction; a background thread polls
//! that row every [`POLL_INTERVAL`], so a change made through another instance clears
//! this cache within that interval. A view read from the database while a clear
//! happens is not stored, because the clear moves the generation on.
//!
//! Permission checks do not use this cache: they read the grants on every request.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::thread;
use std::time::Duration;

use finetune_core::UserId;
use finetune_core::db::DbPool;
use finetune_core::user::UserView;
use finetune_rbac::users::user_state_version;

/// How often the counter row is read.
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);
/// Entries kept at most; reaching it clears the cache, which then refills.
pub const MAX_ENTRIES: usize = 100_000;

/// The cached views and the generation that invalidates them.
#[derive(Debug, Default)]
pub struct UserCache {
    views: RwLock<HashMap<UserId, UserView>>,
    generation: AtomicU64,
}

impl UserCache {
    /// Returns the cached view of `user_id`.
    pub fn get(&self, user_id: UserId) -> Option<UserView> {
        self.views.read().unwrap_or_else(PoisonError::into_inner).get(&user_id).cloned()
    }

    /// Returns the current generation; pass it to [`UserCache::insert`] after reading
    /// the database.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Stores `view` unless the cache was cleared since `generation` was read.
    pub fn insert(&self, view: UserView, generation: u64) {
        let mut views = self.views.write().unwrap_or_else(PoisonError::into_inner);
        // Checked under the write lock, which `clear` also takes.
        if self.generation.load(Ordering::Acquire) != generation {
            return;
        }
        if views.len() >= MAX_ENTRIES {
            views.clear();
        }
        views.insert(view.id, view);
    }

    /// Drops every entry and moves the generation on.
    pub fn clear(&self) {
        let mut views = self.views.write().unwrap_or_else(PoisonError::into_inner);
        self.generation.fetch_add(1, Ordering::AcqRel);
        views.clear();
    }

    /// Starts the thread that clears the cache when another instance changes a user.
    /// The thread ends when the cache is dropped.
    pub fn watch(self: &Arc<Self>, pool: DbPool) -> std::io::Result<()> {
        // Read the counter before any request can fill the cache, so a change made
        // between start-up and the first poll is not taken as the starting value.
        let mut seen = pool.get().ok().and_then(|mut connection| user_state_version(&mut connection).ok());
        let cache = Arc::downgrade(self);
        thread::Builder::new().name("user-cache-watch".into()).spawn(move || {
            let mut failures: u64 = 0;
            loop {
                thread::sleep(POLL_INTERVAL);
                let Some(cache) = cache.upgrade() else {
                    return;
                };
                let version = pool.get().map_err(|error| error.to_string()).and_then(|mut connection| {
                    user_state_version(&mut connection).map_err(|e| e.to_string())
                });
                match version {
                    Ok(version) => {
                        failures = 0;
                        // After a failed read the starting value is unknown: clear.
                        if seen != Some(version) {
                            cache.clear();
                        }
                        seen = Some(version);
                    }
                    Err(error) => {
                        // Without the counter, changes elsewhere cannot be seen: clear so
                        // every request reads the database until the counter can be read again.
                        cache.clear();
                        seen = None;
                        failures += 1;
                        if failures == 1 || failures.is_power_of_two() {
                            tracing::warn!(%error, failures, "cannot read the user-state counter");
                        }
                    }
                }
            }
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(id: i64) -> UserView {
        UserView { id: UserId(id), username: format!("u{id}"), email: None, roles: vec![], is_active: true }
    }

    #[test]
    fn insert_after_clear_is_dropped() {
        let cache = UserCache::default();
        let generation = cache.generation();
        cache.clear();
        cache.insert(view(1), generation);
        assert!(cache.get(UserId(1)).is_none());
    }

    #[test]
    fn insert_with_current_generation_is_kept() {
        let cache = UserCache::default();
        cache.insert(view(1), cache.generation());
        assert_eq!(cache.get(UserId(1)).map(|v| v.username), Some("u1".to_string()));
    }
}
