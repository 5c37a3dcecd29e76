//! The database layer: one connection type over PostgreSQL and SQLite, an r2d2 pool,
//! write transactions and the embedded migrations.
//!
//! The URL scheme picks the backend: `postgres://` or `postgresql://` for PostgreSQL,
//! `sqlite://PATH` (or a bare path) for SQLite.

pub mod schema;

use std::time::Duration;

use diesel::Connection;
use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::pg::PgConnection;
use diesel::sqlite::SqliteConnection;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::error::CoreError;

pub use connection::{DbConnection, MultiBackend};

mod connection {
    // The derive generates undocumented public helper types.
    #![allow(missing_docs)]

    use diesel::pg::PgConnection;
    use diesel::sqlite::SqliteConnection;

    /// A connection to either backend.
    #[derive(diesel::MultiConnection)]
    pub enum DbConnection {
        /// PostgreSQL, the production database.
        Postgresql(PgConnection),
        /// SQLite, the embedded default.
        Sqlite(SqliteConnection),
    }
}

/// A pool of [`DbConnection`]s.
pub type DbPool = r2d2::Pool<ConnectionManager>;
/// A connection checked out of the pool.
pub type PooledConnection = r2d2::PooledConnection<ConnectionManager>;

/// How long a SQLite writer waits for the lock before failing.
const SQLITE_BUSY_TIMEOUT_MS: u32 = 10_000;
/// Advisory lock key for migrations and start-up on PostgreSQL ("finetune" in ASCII).
const PG_MIGRATION_LOCK_KEY: i64 = 0x0066_696e_6574_756e;

const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");
const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");

/// The database backend a URL selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// A PostgreSQL URL, passed to libpq unchanged.
    Postgres(String),
    /// A SQLite file path (or `:memory:`).
    Sqlite(String),
}

impl Backend {
    /// Picks the backend from the URL scheme.
    pub fn from_url(url: &str) -> Result<Self, CoreError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self::Postgres(url.to_owned()));
        }
        let path = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).unwrap_or(url);
        if path.is_empty() || path.contains("://") {
            return Err(CoreError::Unavailable(
                "DATABASE_URL must start with postgres://, postgresql:// or sqlite://".into(),
            ));
        }
        Ok(Self::Sqlite(path.to_owned()))
    }
}

/// Opens one connection, reporting the driver's own error.
pub fn establish(url: &str) -> Result<DbConnection, CoreError> {
    match Backend::from_url(url)? {
        Backend::Postgres(url) => PgConnection::establish(&url)
            .map(DbConnection::Postgresql)
            .map_err(|error| CoreError::Unavailable(format!("cannot connect to PostgreSQL: {error}"))),
        Backend::Sqlite(path) => {
            let mut connection = SqliteConnection::establish(&path).map_err(|error| {
                CoreError::Unavailable(format!("cannot open SQLite database {path:?}: {error}"))
            })?;
            configure_sqlite(&mut connection)?;
            Ok(DbConnection::Sqlite(connection))
        }
    }
}

/// WAL so readers never block the writer, a busy timeout so writers wait for the lock
/// instead of failing, and enforced foreign keys.
fn configure_sqlite(connection: &mut SqliteConnection) -> Result<(), CoreError> {
    connection
        .batch_execute(&format!(
            "PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}; PRAGMA journal_mode = WAL; \
             PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;"
        ))
        .map_err(CoreError::from)
}

/// The r2d2 manager; it opens connections with [`establish`].
#[derive(Debug)]
pub struct ConnectionManager {
    url: String,
}

impl r2d2::ManageConnection for ConnectionManager {
    type Connection = DbConnection;
    type Error = CoreError;

    fn connect(&self) -> Result<DbConnection, CoreError> {
        establish(&self.url)
    }

    fn is_valid(&self, connection: &mut DbConnection) -> Result<(), CoreError> {
        connection.batch_execute("SELECT 1").map_err(CoreError::from)
    }

    fn has_broken(&self, connection: &mut DbConnection) -> bool {
        match connection {
            DbConnection::Postgresql(c) => AnsiTransactionManager::is_broken_transaction_manager(c),
            DbConnection::Sqlite(c) => AnsiTransactionManager::is_broken_transaction_manager(c),
        }
    }
}

/// Builds a pool of at most `max_size` connections and opens the first one, so a wrong
/// URL fails here with the driver's message.
pub fn build_pool(url: &str, max_size: u32) -> Result<DbPool, CoreError> {
    let backend = Backend::from_url(url)?;
    // SQLite allows one writer at a time, so a few connections serve it best.
    let max_size = match backend {
        Backend::Sqlite(_) => max_size.min(8),
        Backend::Postgres(_) => max_size,
    };
    establish(url)?;
    r2d2::Pool::builder()
        .max_size(max_size)
        // Two open connections: a streamed export uses one while the request that
        // starts it writes its audit entry with another, so neither waits for a new
        // PostgreSQL session (a TLS handshake and a backend start).
        .min_idle(Some(2.min(max_size)))
        // A check-out test costs a round trip per request; a dead connection surfaces as
        // a query error instead (503) and r2d2 drops it through `has_broken`.
        .test_on_check_out(false)
        .connection_timeout(Duration::from_secs(5))
        .build(ConnectionManager { url: url.to_owned() })
        .map_err(CoreError::from)
}

/// Runs `work` in a write transaction: `BEGIN IMMEDIATE` on SQLite, so the write lock
/// is taken (waiting up to the busy timeout) before the first read, and a plain
/// transaction on PostgreSQL; inside another transaction, a savepoint. Commits when
/// `work` returns `Ok`, rolls back otherwise.
pub fn write_transaction<T, E, F>(connection: &mut DbConnection, work: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    let nested = <DbConnection as Connection>::TransactionManager::transaction_manager_status_mut(connection)
        .transaction_depth()?
        .is_some();
    match connection {
        // Inside a transaction this becomes a savepoint; the outer BEGIN IMMEDIATE
        // already holds the write lock.
        DbConnection::Sqlite(c) if nested => AnsiTransactionManager::begin_transaction(c)?,
        DbConnection::Sqlite(c) => AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")?,
        DbConnection::Postgresql(c) => AnsiTransactionManager::begin_transaction(c)?,
    }
    match work(connection) {
        Ok(value) => {
            if let Err(error) = DbConnection::commit_transaction_for(connection) {
                // A failed commit leaves the transaction open; roll it back so the
                // connection returns to the pool clean.
                let _ = DbConnection::rollback_transaction_for(connection);
                return Err(error.into());
            }
            Ok(value)
        }
        Err(error) => {
            DbConnection::rollback_transaction_for(connection)?;
            Err(error)
        }
    }
}

impl DbConnection {
    fn commit_transaction_for(connection: &mut DbConnection) -> diesel::QueryResult<()> {
        <DbConnection as Connection>::TransactionManager::commit_transaction(connection)
    }

    fn rollback_transaction_for(connection: &mut DbConnection) -> diesel::QueryResult<()> {
        <DbConnection as Connection>::TransactionManager::rollback_transaction(connection)
    }

    /// Returns true on PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        matches!(self, DbConnection::Postgresql(_))
    }
}

/// Applies pending migrations; returns how many ran. On PostgreSQL it holds an advisory
/// lock meanwhile, so instances starting together migrate one after the other.
pub fn run_migrations(connection: &mut DbConnection) -> Result<usize, CoreError> {
    let result = match connection {
        DbConnection::Postgresql(c) => {
            c.batch_execute(&format!("SELECT pg_advisory_lock({PG_MIGRATION_LOCK_KEY})"))?;
            let applied = c.run_pending_migrations(POSTGRES_MIGRATIONS).map(|v| v.len());
            c.batch_execute(&format!("SELECT pg_advisory_unlock({PG_MIGRATION_LOCK_KEY})"))?;
            applied
        }
        DbConnection::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS).map(|v| v.len()),
    };
    result.map_err(|error| CoreError::Database(format!("migration failed: {error}")))
}

/// Runs `work` while holding the start-up advisory lock on PostgreSQL (and in a write
/// transaction on SQLite), so two instances cannot both create the bootstrap admin.
pub fn with_startup_lock<T>(
    connection: &mut DbConnection,
    work: impl FnOnce(&mut DbConnection) -> Result<T, CoreError>,
) -> Result<T, CoreError> {
    if let DbConnection::Postgresql(c) = connection {
        c.batch_execute(&format!("SELECT pg_advisory_lock({PG_MIGRATION_LOCK_KEY})"))?;
        let result = work(connection);
        if let DbConnection::Postgresql(c) = connection {
            c.batch_execute(&format!("SELECT pg_advisory_unlock({PG_MIGRATION_LOCK_KEY})"))?;
        }
        return result;
    }
    write_transaction(connection, work)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_from_url_picks_scheme() {
        assert!(matches!(Backend::from_url("postgres://u@h/db"), Ok(Backend::Postgres(_))));
        assert_eq!(
            Backend::from_url("sqlite://a/b.sqlite3").ok(),
            Some(Backend::Sqlite("a/b.sqlite3".into()))
        );
        assert!(Backend::from_url("mysql://x").is_err());
    }

    #[test]
    fn write_transaction_nests_as_savepoint() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| unreachable!("{e}"));
        let url = format!("sqlite://{}", dir.path().join("db.sqlite3").display());
        let mut connection = establish(&url).unwrap_or_else(|e| unreachable!("{e}"));
        let result: Result<(), CoreError> = write_transaction(&mut connection, |outer| {
            let inner: Result<(), CoreError> =
                write_transaction(outer, |_| Err(CoreError::Conflict("inner fails".into())));
            assert!(inner.is_err());
            outer.batch_execute("SELECT 1").map_err(CoreError::from)
        });
        assert!(result.is_ok(), "{result:?}");
    }

    #[test]
    fn sqlite_migrations_apply_twice() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| unreachable!("{e}"));
        let url = format!("sqlite://{}", dir.path().join("db.sqlite3").display());
        let mut connection = establish(&url).unwrap_or_else(|e| unreachable!("{e}"));
        assert!(run_migrations(&mut connection).is_ok_and(|n| n >= 1));
        assert_eq!(run_migrations(&mut connection).ok(), Some(0));
    }
}
