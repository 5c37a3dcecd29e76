//! Runs blocking work (diesel, argon2) on the blocking thread pool, keeping the
//! request's tracing span.

use actix_web::web;
use finetune_core::db::DbConnection;

use crate::error::ApiError;
use crate::state::AppState;

/// Runs `work` off the actix worker threads.
pub async fn blocking<T, F>(work: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, ApiError> + Send + 'static,
{
    let span = tracing::Span::current();
    web::block(move || span.in_scope(work))
        .await
        .map_err(|error| ApiError::internal(format!("blocking task failed: {error}")))?
}

/// Checks a connection out of the pool and runs `work` with it, off the worker threads.
/// A pool that cannot hand out a connection in time is 503.
pub async fn with_connection<T, F>(state: &AppState, work: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&mut DbConnection) -> Result<T, ApiError> + Send + 'static,
{
    let pool = state.pool.clone();
    blocking(move || {
        let mut connection = pool.get().map_err(finetune_core::CoreError::from)?;
        work(&mut connection)
    })
    .await
}

/// Runs argon2 work on the low-priority hashing threads.
pub async fn hashing<T, F>(state: &AppState, work: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, ApiError> + Send + 'static,
{
    state.hash_pool.run(work).await?
}
