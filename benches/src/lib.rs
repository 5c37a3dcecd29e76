//! Shared set-up for the criterion benchmarks: databases with the schema applied and a
//! user to own refresh tokens. Benchmarks print numbers; nothing here asserts a time.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::Utc;
use diesel::RunQueryDsl;
use diesel::connection::SimpleConnection;
use finetune_core::db::{DbPool, build_pool, establish, run_migrations};

/// A database for one benchmark, removed when dropped.
pub struct BenchDatabase {
    /// The connection pool.
    pub pool: DbPool,
    admin_url: Option<String>,
    name: String,
    _dir: Option<tempfile::TempDir>,
}

/// Errors while setting a benchmark up, as text for the console.
pub type SetupError = String;

impl BenchDatabase {
    /// Creates a SQLite file in a temporary folder.
    pub fn sqlite() -> Result<Self, SetupError> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let url = format!("sqlite://{}", dir.path().join("bench.sqlite3").display());
        Self::prepare(&url, None, String::new(), Some(dir))
    }

    /// Creates a PostgreSQL database on the server of `BENCH_POSTGRES_URL` (an admin
    /// URL); `None` when the variable is unset.
    pub fn postgres() -> Result<Option<Self>, SetupError> {
        let Ok(admin_url) = std::env::var("BENCH_POSTGRES_URL") else {
            return Ok(None);
        };
        let name = format!("finetune_bench_{}", uuid::Uuid::new_v4().simple());
        let mut admin = establish(&admin_url).map_err(|e| e.to_string())?;
        admin.batch_execute(&format!("CREATE DATABASE {name}")).map_err(|e| e.to_string())?;
        let base = admin_url.rsplit_once('/').map_or(admin_url.as_str(), |(base, _)| base);
        let url = format!("{base}/{name}");
        Self::prepare(&url, Some(admin_url.clone()), name, None).map(Some)
    }

    fn prepare(
        url: &str,
        admin_url: Option<String>,
        name: String,
        dir: Option<tempfile::TempDir>,
    ) -> Result<Self, SetupError> {
        let pool = build_pool(url, 4).map_err(|e| e.to_string())?;
        let mut connection = pool.get().map_err(|e| e.to_string())?;
        run_migrations(&mut connection).map_err(|e| e.to_string())?;
        diesel::sql_query(
            "INSERT INTO users (username, username_canonical, password_hash, is_active, created_at, updated_at) \
             VALUES ('bench', 'bench', 'x', TRUE, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
        )
        .execute(&mut connection)
        .map_err(|e| e.to_string())?;
        drop(connection);
        Ok(Self { pool, admin_url, name, _dir: dir })
    }
}

impl Drop for BenchDatabase {
    fn drop(&mut self) {
        let Some(admin_url) = &self.admin_url else {
            return;
        };
        if let Ok(mut admin) = establish(admin_url) {
            let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
        }
    }
}

/// Returns the current time, for benchmarks that need one.
pub fn now() -> chrono::DateTime<Utc> {
    Utc::now()
}
