//! Test databases: creation and removal per test, and direct reads for checks the HTTP API
//! does not expose.

use std::path::PathBuf;
use std::sync::Once;

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text};
use diesel::{PgConnection, SqliteConnection, sql_query};
use tempfile::TempDir;

use crate::harness::Backend;

/// Returns the PostgreSQL admin URL from `TEST_POSTGRES_URL`.
///
/// Panics when it is unset and `FINETUNE_REQUIRE_POSTGRES=1`, so CI cannot skip PostgreSQL.
pub fn postgres_admin_url() -> Option<String> {
    match std::env::var("TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            let required = std::env::var("FINETUNE_REQUIRE_POSTGRES").is_ok_and(|value| value == "1");
            assert!(
                !required,
                "FINETUNE_REQUIRE_POSTGRES=1 but TEST_POSTGRES_URL is not set; \
                 set it to an admin URL such as postgres://postgres@127.0.0.1:5432/postgres"
            );
            None
        }
    }
}

/// A database created for one test and removed when it is dropped.
pub(crate) enum TestDatabase {
    Sqlite { path: PathBuf },
    Postgres { admin_url: String, name: String },
}

impl TestDatabase {
    pub(crate) fn create(backend: Backend, work_dir: &TempDir) -> Self {
        match backend {
            Backend::Sqlite => TestDatabase::Sqlite { path: work_dir.path().join("db.sqlite3") },
            Backend::Postgres => {
                let admin_url = postgres_admin_url().expect("TEST_POSTGRES_URL is not set");
                let mut admin = connect_postgres(&admin_url);
                drop_leftover_databases_once(&mut admin);

                let name = format!("finetune_test_{}_{}", std::process::id(), uuid::Uuid::new_v4().simple());
                sql_query(format!("CREATE DATABASE {}", quote_identifier(&name)))
                    .execute(&mut admin)
                    .unwrap_or_else(|error| panic!("creating database {name} failed: {error}"));
                TestDatabase::Postgres { admin_url, name }
            }
        }
    }

    pub(crate) fn url(&self) -> String {
        match self {
            TestDatabase::Sqlite { path } => format!("sqlite://{}", path.display()),
            TestDatabase::Postgres { admin_url, name } => replace_database_name(admin_url, name),
        }
    }

    pub(crate) fn connect(&self) -> Db {
        match self {
            TestDatabase::Sqlite { path } => {
                let path = path.to_str().expect("the temporary folder path is not UTF-8");
                let mut connection = SqliteConnection::establish(path)
                    .unwrap_or_else(|error| panic!("opening {path} failed: {error}"));
                // The server writes to the same file, so wait for its locks instead of failing.
                sql_query("PRAGMA busy_timeout = 10000")
                    .execute(&mut connection)
                    .expect("setting busy_timeout failed");
                Db::Sqlite(connection)
            }
            TestDatabase::Postgres { .. } => Db::Postgres(connect_postgres(&self.url())),
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let TestDatabase::Postgres { admin_url, name } = self else {
            return;
        };
        let statement = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote_identifier(name));
        let result =
            PgConnection::establish(admin_url).map_err(|error| error.to_string()).and_then(|mut admin| {
                sql_query(statement).execute(&mut admin).map_err(|error| error.to_string())
            });
        if let Err(error) = result {
            // A panic here would abort a test that is already unwinding, so only report it.
            // The next run drops the leftover database.
            eprintln!("dropping test database {name} failed: {error}");
        }
    }
}

fn connect_postgres(url: &str) -> PgConnection {
    PgConnection::establish(url).unwrap_or_else(|error| panic!("connecting to {url} failed: {error}"))
}

/// Drops the `finetune_test_%` databases that earlier runs left behind, once per process.
///
/// Names carry the creating process id (`finetune_test_<pid>_<uuid>`); a database is a
/// leftover when no process with that id runs any more, so test processes running at the
/// same time keep theirs. NOTE: a reused process id hides a leftover until that process ends.
fn drop_leftover_databases_once(admin: &mut PgConnection) {
    static DROPPED: Once = Once::new();
    DROPPED.call_once(|| {
        #[derive(QueryableByName)]
        struct DatabaseName {
            #[diesel(sql_type = Text)]
            datname: String,
        }

        let leftovers = sql_query("SELECT datname FROM pg_database WHERE datname LIKE 'finetune\\_test\\_%'")
            .load::<DatabaseName>(admin)
            .unwrap_or_else(|error| panic!("listing leftover test databases failed: {error}"));
        for database in leftovers.into_iter().filter(|database| is_leftover(&database.datname)) {
            let statement =
                format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote_identifier(&database.datname));
            if let Err(error) = sql_query(statement).execute(admin) {
                eprintln!("dropping leftover test database {} failed: {error}", database.datname);
            }
        }
    });
}

/// Returns true when the process that created test database `name` no longer runs.
fn is_leftover(name: &str) -> bool {
    let owner = name.strip_prefix("finetune_test_").and_then(|rest| rest.split_once('_')).map(|(pid, _)| pid);
    match owner.and_then(|pid| pid.parse::<u32>().ok()) {
        Some(pid) => !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        None => true,
    }
}

fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Replaces the database path of a `postgres://` URL and keeps its query string.
fn replace_database_name(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |index| index + 3);
    let path_start = base[authority_start..].find('/').map_or(base.len(), |index| authority_start + index);
    let mut replaced = format!("{}/{database}", &base[..path_start]);
    if let Some(query) = query {
        replaced.push('?');
        replaced.push_str(query);
    }
    replaced
}

/// A connection to either backend.
pub enum Db {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
}

/// Runs the same query code on whichever connection `Db` holds.
macro_rules! on_connection {
    ($db:expr, $connection:ident => $body:expr) => {
        match $db {
            Db::Sqlite($connection) => $body,
            Db::Postgres($connection) => $body,
        }
    };
}

/// One row of `audit_log`, without `occurred_at`.
#[derive(Debug, QueryableByName)]
pub struct AuditEntry {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub actor_id: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    pub actor_username: Option<String>,
    #[diesel(sql_type = Text)]
    pub action: String,
    #[diesel(sql_type = Text)]
    pub outcome: String,
    #[diesel(sql_type = Nullable<Text>)]
    #[allow(dead_code, reason = "shown in failure messages through Debug")]
    pub target_type: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    #[allow(dead_code, reason = "shown in failure messages through Debug")]
    pub target_id: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub ip: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub user_agent: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub request_id: Option<String>,
    #[diesel(sql_type = Text)]
    pub details: String,
}

/// One row of `refresh_tokens`, with its time columns reduced to whether they are set.
#[derive(Debug, QueryableByName)]
pub struct RefreshTokenRow {
    #[diesel(sql_type = Text)]
    pub family_id: String,
    #[diesel(sql_type = BigInt)]
    pub used: i64,
    #[diesel(sql_type = BigInt)]
    pub revoked: i64,
    #[diesel(sql_type = Nullable<Text>)]
    #[allow(dead_code, reason = "shown in failure messages through Debug")]
    pub revoked_reason: Option<String>,
}

/// The row of [`Db::count`].
#[derive(QueryableByName)]
struct CountRow {
    #[diesel(sql_type = BigInt)]
    count: i64,
}

const AUDIT_COLUMNS: &str = "id, actor_id, actor_username, action, outcome, target_type, target_id, \
                             ip, user_agent, request_id, details";

impl Db {
    /// Returns the bind placeholder for parameter `index` (1-based) in this backend's SQL.
    fn placeholder(&self, index: usize) -> String {
        match self {
            Db::Sqlite(_) => "?".to_owned(),
            Db::Postgres(_) => format!("${index}"),
        }
    }

    /// Returns the audit entries written for the request with this `X-Request-ID`, oldest first.
    pub fn audit_entries_for_request(&mut self, request_id: &str) -> Vec<AuditEntry> {
        let sql = format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE request_id = {} ORDER BY id",
            self.placeholder(1)
        );
        let query = sql_query(sql).bind::<Text, _>(request_id);
        let result = on_connection!(self, connection => query.load::<AuditEntry>(connection));
        result.unwrap_or_else(|error| panic!("reading audit_log failed: {error}"))
    }

    /// Returns every audit entry, oldest first.
    pub fn audit_entries(&mut self) -> Vec<AuditEntry> {
        let query = sql_query(format!("SELECT {AUDIT_COLUMNS} FROM audit_log ORDER BY id"));
        let result = on_connection!(self, connection => query.load::<AuditEntry>(connection));
        result.unwrap_or_else(|error| panic!("reading audit_log failed: {error}"))
    }

    /// Runs `sql`, a query whose one row has a `count` column, and returns the count.
    pub fn count(&mut self, sql: &str) -> i64 {
        let query = sql_query(sql);
        let result = on_connection!(self, connection => query.get_result::<CountRow>(connection));
        result.unwrap_or_else(|error| panic!("{sql} failed: {error}")).count
    }

    /// Runs one SQL statement without parameters, such as a change the API would not make.
    pub fn execute(&mut self, sql: &str) {
        let query = sql_query(sql);
        let result = on_connection!(self, connection => query.execute(connection));
        result.unwrap_or_else(|error| panic!("{sql} failed: {error}"));
    }

    /// Returns the refresh tokens of one user, oldest first.
    pub fn refresh_tokens_of_user(&mut self, user_id: i64) -> Vec<RefreshTokenRow> {
        let sql = format!(
            "SELECT family_id, \
                    CAST(CASE WHEN used_at IS NULL THEN 0 ELSE 1 END AS BIGINT) AS used, \
                    CAST(CASE WHEN revoked_at IS NULL THEN 0 ELSE 1 END AS BIGINT) AS revoked, \
                    revoked_reason \
             FROM refresh_tokens WHERE user_id = {} ORDER BY id",
            self.placeholder(1)
        );
        let query = sql_query(sql).bind::<BigInt, _>(user_id);
        let result = on_connection!(self, connection => query.load::<RefreshTokenRow>(connection));
        result.unwrap_or_else(|error| panic!("reading refresh_tokens failed: {error}"))
    }
}

#[test]
fn replace_database_name_keeps_credentials_and_query() {
    assert_eq!(
        replace_database_name("postgres://postgres@127.0.0.1:5432/postgres", "x"),
        "postgres://postgres@127.0.0.1:5432/x"
    );
    assert_eq!(
        replace_database_name("postgres://u:p@db:5432/admin?sslmode=disable", "x"),
        "postgres://u:p@db:5432/x?sslmode=disable"
    );
    assert_eq!(replace_database_name("postgres://db", "x"), "postgres://db/x");
}
