//! Refresh tokens on a real database: issue, rotation, reuse detection, revocation and
//! the expiry flush.
//!
//! Every case runs on SQLite (a file in a temporary folder) and on PostgreSQL when
//! `TEST_POSTGRES_URL` is an admin URL such as
//! `postgres://postgres@127.0.0.1:5432/postgres`. Each PostgreSQL case creates its own
//! database and drops it at the end. Without the URL the PostgreSQL cases pass without
//! running, unless `FINETUNE_REQUIRE_POSTGRES=1`, which makes them fail.
#![cfg(feature = "database")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "test code fails by panicking")]

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use finetune_auth::refresh::{self, IssuedRefreshToken, RevokeReason, Rotation};
use finetune_auth::{AuthError, LEEWAY, TokenRejection};
use finetune_core::UserId;
use finetune_core::db::schema::{refresh_tokens, users};
use finetune_core::db::{self, DbConnection, write_transaction};
use tempfile::TempDir;

/// The refresh-token lifetime of most cases.
const LIFETIME: Duration = Duration::from_secs(86_400);
/// The number of threads that rotate one token at the same time.
const CONCURRENT_ROTATIONS: usize = 16;

#[derive(Debug, Clone, Copy)]
enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh, migrated database for one test. A PostgreSQL database is dropped when this
/// value is dropped, and a SQLite file is deleted with its temporary folder.
struct TestDatabase {
    url: String,
    postgres: Option<PostgresDatabase>,
    _folder: Option<TempDir>,
}

struct PostgresDatabase {
    admin_url: String,
    name: String,
}

impl TestDatabase {
    /// Creates and migrates a database. Returns `None` when PostgreSQL is not configured.
    fn create(backend: Backend) -> Option<Self> {
        let database = match backend {
            Backend::Sqlite => {
                let folder = tempfile::tempdir().expect("creating a temporary folder failed");
                let url = format!("sqlite://{}", folder.path().join("refresh.sqlite3").display());
                TestDatabase { url, postgres: None, _folder: Some(folder) }
            }
            Backend::Postgres => {
                let admin_url = postgres_admin_url()?;
                let name = format!("finetune_test_{}_{}", std::process::id(), random_hex(8));
                let mut admin = PgConnection::establish(&admin_url)
                    .unwrap_or_else(|error| panic!("connecting to TEST_POSTGRES_URL failed: {error}"));
                diesel::sql_query(format!("CREATE DATABASE \"{name}\""))
                    .execute(&mut admin)
                    .unwrap_or_else(|error| panic!("creating database {name} failed: {error}"));
                let url = with_database_name(&admin_url, &name);
                TestDatabase { url, postgres: Some(PostgresDatabase { admin_url, name }), _folder: None }
            }
        };

        let mut connection = database.connect();
        db::run_migrations(&mut connection).expect("running the migrations failed");
        Some(database)
    }

    fn connect(&self) -> DbConnection {
        db::establish(&self.url)
            .unwrap_or_else(|error| panic!("connecting to the test database failed: {error}"))
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some(postgres) = &self.postgres else {
            return;
        };
        let statement = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", postgres.name);
        let result = PgConnection::establish(&postgres.admin_url)
            .map_err(|error| error.to_string())
            .and_then(|mut admin| {
                diesel::sql_query(statement).execute(&mut admin).map_err(|error| error.to_string())
            });
        if let Err(error) = result {
            // Panicking here would abort a test that is already unwinding.
            eprintln!("dropping test database {} failed: {error}", postgres.name);
        }
    }
}

/// Returns `TEST_POSTGRES_URL`, or `None` to skip the PostgreSQL case. Panics when the
/// URL is missing and `FINETUNE_REQUIRE_POSTGRES=1`.
fn postgres_admin_url() -> Option<String> {
    if let Ok(url) = std::env::var("TEST_POSTGRES_URL")
        && !url.is_empty()
    {
        return Some(url);
    }
    let required = std::env::var("FINETUNE_REQUIRE_POSTGRES").is_ok_and(|value| value == "1");
    assert!(
        !required,
        "FINETUNE_REQUIRE_POSTGRES=1 but TEST_POSTGRES_URL is not set; \
         set it to an admin URL such as postgres://postgres@127.0.0.1:5432/postgres"
    );
    eprintln!("skipped: TEST_POSTGRES_URL is not set");
    None
}

/// Replaces the database name in a `postgres://` URL, keeping any query string.
fn with_database_name(url: &str, database: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(base, query)| (base, Some(query)));
    let authority_start = base.find("://").map_or(0, |index| index + 3);
    let path_start = base[authority_start..].find('/').map_or(base.len(), |index| authority_start + index);
    match query {
        Some(query) => format!("{}/{database}?{query}", &base[..path_start]),
        None => format!("{}/{database}", &base[..path_start]),
    }
}

fn random_hex(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    getrandom::fill(&mut buffer).expect("the random source failed");
    buffer.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Returns the time every case starts at: 2030-01-01T00:00:00Z.
fn start() -> DateTime<Utc> {
    DateTime::from_timestamp(1_893_456_000, 0).expect("the start time is in range")
}

fn seconds_after_start(seconds: i64) -> DateTime<Utc> {
    start() + chrono::Duration::seconds(seconds)
}

/// Inserts an active user directly and returns its id.
fn insert_user(connection: &mut DbConnection, username: &str) -> UserId {
    let now = start().naive_utc();
    diesel::insert_into(users::table)
        .values((
            users::username.eq(username),
            users::username_canonical.eq(username.to_lowercase()),
            users::email.eq(None::<String>),
            users::password_hash.eq("not-a-password-hash"),
            users::is_active.eq(true),
            users::created_at.eq(now),
            users::updated_at.eq(now),
        ))
        .execute(connection)
        .unwrap_or_else(|error| panic!("inserting user {username} failed: {error}"));
    let id = users::table
        .filter(users::username_canonical.eq(username.to_lowercase()))
        .select(users::id)
        .first::<i64>(connection)
        .unwrap_or_else(|error| panic!("reading the id of user {username} failed: {error}"));
    UserId(id)
}

fn issue(connection: &mut DbConnection, user: UserId, now: DateTime<Utc>) -> IssuedRefreshToken {
    refresh::issue(connection, user, None, now, LIFETIME).expect("issuing a refresh token failed")
}

/// The stored row of a token, found by its hash.
#[derive(Debug, Queryable)]
struct StoredToken {
    family_id: String,
    expires_at: NaiveDateTime,
    used_at: Option<NaiveDateTime>,
    revoked_at: Option<NaiveDateTime>,
    revoked_reason: Option<String>,
}

fn stored(connection: &mut DbConnection, token: &IssuedRefreshToken) -> StoredToken {
    refresh_tokens::table
        .filter(refresh_tokens::token_hash.eq(refresh::hash_token(token.token.expose())))
        .select((
            refresh_tokens::family_id,
            refresh_tokens::expires_at,
            refresh_tokens::used_at,
            refresh_tokens::revoked_at,
            refresh_tokens::revoked_reason,
        ))
        .first(connection)
        .expect("reading the stored token failed")
}

fn family_rows(connection: &mut DbConnection, family_id: &str) -> Vec<StoredToken> {
    refresh_tokens::table
        .filter(refresh_tokens::family_id.eq(family_id))
        .order(refresh_tokens::id)
        .select((
            refresh_tokens::family_id,
            refresh_tokens::expires_at,
            refresh_tokens::used_at,
            refresh_tokens::revoked_at,
            refresh_tokens::revoked_reason,
        ))
        .load(connection)
        .expect("reading the family failed")
}

fn count_tokens(connection: &mut DbConnection) -> i64 {
    refresh_tokens::table.count().get_result(connection).expect("counting refresh tokens failed")
}

fn rotate(
    connection: &mut DbConnection,
    token: &IssuedRefreshToken,
    now: DateTime<Utc>,
) -> Result<Rotation, AuthError> {
    refresh::rotate(connection, token.token.expose(), now, LIFETIME)
}

/// Rotates `token` and returns the successor, failing the test on any other outcome.
fn rotate_to_successor(
    connection: &mut DbConnection,
    token: &IssuedRefreshToken,
    now: DateTime<Utc>,
) -> IssuedRefreshToken {
    match rotate(connection, token, now) {
        Ok(Rotation::Rotated { successor, .. }) => successor,
        other => panic!("expected Rotation::Rotated, got {other:?}"),
    }
}

fn issue_stores_hash_and_expiry(backend: Backend) {
    let Some(database) = TestDatabase::create(backend) else {
        return;
    };
    let mut connection = database.connect();
    let user = insert_user(&mut connection, "ada");

    let issued = issue(&mut connection, user, start());

    let row = stored(&mut connection, &issued);
    let rows_holding_plain_token: i64 = refresh_tokens::table
        .filter(refresh_tokens::token_hash.eq(issued.token.expose()))
        .count()
        .get_result(&mut connection)
        .expect("counting rows failed");
    assert_eq!(rows_holding_plain_token, 0, "the token itself must not be stored");
    assert_eq!(issued.token.expose().len(), 43, "32 random bytes in unpadded base64url are 43 characters");
    assert_eq!(issued.expires_at, start() + chrono::Duration::days(1));
    assert_eq!(row.expires_at, issued.expires_at.naive_utc());
    assert_eq!(row.family_id, issued.family_id);
    assert!(row.used_at.is_none());
    assert!(row.revoked_at.is_none());
}

fn rotate_issues_successor_in_family(backend: Backend) {
    let Some(database) = TestDatabase::create(backend) else {
        return;
    };
    let mut connection = database.connect();
    let user = insert_user(&mut connection, "ada");
    let first = issue(&mut connection, user, start());
    let later = seconds_after_start(60);

    let rotation = rotate(&mut connection, &first, later).expect("rotating a fresh token failed");

    let Rotation::Rotated { user_id, successor } = rotation else {
        panic!("expected Rotation::Rotated, got {rotation:?}");
    };
    assert_eq!(user_id, user);
    assert_eq!(successor.family_id, first.family_id);
    assert_ne!(successor.token.expose(), first.token.expose());
    assert_eq!(successor.expires_at, later + chrono::Duration::days(1));
    assert_eq!(stored(&mut connection, &first).used_at, Some(later.naive_utc()));
    assert_eq!(stored(&mut connection, &successor).family_id, first.family_id);
    assert!(stored(&mut connection, &successor).used_at.is_none());
}

fn rotate_used_token_revokes_family(backend: Backend) {
    let Some(database) = TestDatabase::create(backend) else {
        return;
    };
    let mut connection = database.connect();
    let user = insert_user(&mut connection, "ada");
    let first = issue(&mut connection, user, start());
    let successor = rotate_to_successor(&mut connection, &first, seconds_after_start(60));
    let replay = seconds_after_start(120);

    let rotation = rotate(&mut connection, &first, replay).expect("replaying a used token failed");

    let Rotation::Reused { user_id, family_id } = rotation else {
        panic!("expected Rotation::Reused, got {rotation:?}");
    };
    assert_eq!(user_id, user);
    assert_eq!(family_id, first.family_id);
    let successor_row = stored(&mut connection, &successor);
    assert_eq!(successor_row.revoked_at, Some(replay.naive_utc()));
    assert_eq!(successor_row.revoked_reason.as_deref(), Some(RevokeReason::Reuse.as_str()));
    assert!(matches!(
        rotate(&mut connection, &successor, replay),
        Err(AuthError::TokenNotValid(TokenRejection::Revoked))
    ));
}

fn rotate_revoked_token_not_valid(backend: Backend) {
    let Some(database) = TestDatabase::create(backend) else {
        return;
    };
    let mut connection = database.connect();
    let user = insert_user(&mut connection, "ada");
    let issued = issue(&mut connection, user, start());
    let revoked =
        refresh::revoke_presented(&mut connection, issued.token.expose(), start(), RevokeReason::Logout)
            .expect("revoking the token failed");
    assert_eq!(revoked, Some((user, issued.family_id.clone())));

    let result = rotate(&mut connection, &issued, seconds_after_start(60));

    assert!(
        matches!(result, Err(AuthError::TokenNotValid(TokenRejection::Revoked))),
        "expected TokenNotValid(Revoked), got {result:?}"
    );
    let row = stored(&mut connection, &issued);
    assert!(row.used_at.is_none(), "a rejected rotation must not mark the token used");
    assert_eq!(row.revoked_reason.as_deref(), Some(RevokeReason::Logout.as_str()));
}

fn rotate_expired_token_not_valid(backend: Backend) {
    let Some(database) = TestDatabase::create(backend) else {
        return;
    };
    let mut connection = database.connect();
    let user = insert_user(&mut connection, "ada");
    let lifetime = Duration::from_secs(60);
    let just_valid = refresh::issue(&mut connection, user, None, start(), lifetime).expect("issue failed");
    let expired = refresh::issue(&mut connection, user, None, start(), lifetime).expect("issue failed");

    let before_expiry =
        refresh::rotate(&mut connection, just_valid.token.expose(), seconds_after_start(59), lifetime);
    let at_expiry =
        refresh::rotate(&mut connection, expired.token.expose(), seconds_after_start(60), lifetime);

    assert!(
        matches!(before_expiry, Ok(Rotation::Rotated { .. })),
        "one second before expiry: expected Rotation::Rotated, got {before_expiry:?}"
    );
    assert!(
        matches!(at_expiry, Err(AuthError::TokenNotValid(TokenRejection::Expired))),
        "at expiry: expected TokenNotValid(Expired), got {at_expiry:?}"
    );
    assert!(stored(&mut connection, &expired).used_at.is_none());
}

fn rotate_unknown_token_not_valid(backend: Backend) {
    let Some(database) = TestDatabase::create(backend) else {
        return;
    };
    let mut connection = database.connect();
    let oversized = "a".repeat(refresh::MAX_REFRESH_TOKEN_BYTES + 1);

    let unknown = refresh::rotate(&mut connection, "never-issued", start(), LIFETIME);
    let empty = refresh::rotate(&mut connection, "", start(), LIFETIME);
    let too_long = refresh::rotate(&mut connection, &oversized, start(), LIFETIME);

    assert!(matches!(unknown, Err(AuthError::TokenNotValid(TokenRejection::Unknown))), "{unknown:?}");
    assert!(matches!(empty, Err(AuthError::TokenNotValid(TokenRejection::Malformed))), "{empty:?}");
    assert!(matches!(too_long, Err(AuthError::TokenNotValid(TokenRejection::Malformed))), "{too_long:?}");
}

fn rotate_concurrently_elects_one_winner(backend: Backend) {
    let Some(database) = TestDatabase::create(backend) else {
        return;
    };
    let pool = db::build_pool(&database.url, CONCURRENT_ROTATIONS as u32).expect("building the pool failed");
    let (user, issued) = {
        let mut connection = pool.get().expect("checking out a connection failed");
        let user = insert_user(&mut connection, "ada");
        (user, issue(&mut connection, user, start()))
    };
    // Open every connection the pool allows before the race, so the threads do not
    // queue behind connection set-up. `build_pool` caps SQLite pools at 8, so on SQLite
    // half of the threads wait for a connection that another thread returns.
    let warm: Vec<_> = (0..pool.max_size()).map(|_| pool.get().expect("warming the pool failed")).collect();
    drop(warm);

    let barrier = Arc::new(Barrier::new(CONCURRENT_ROTATIONS));
    let now = seconds_after_start(60);
    let handles: Vec<_> = (0..CONCURRENT_ROTATIONS)
        .map(|_| {
            let pool = pool.clone();
            let barrier = Arc::clone(&barrier);
            let token = issued.token.expose().to_owned();
            thread::spawn(move || {
                barrier.wait();
                let mut connection = pool.get().map_err(|error| format!("pool: {error}"))?;
                write_transaction(&mut connection, |connection| {
                    refresh::rotate(connection, &token, now, LIFETIME)
                })
                .map_err(|error| error.to_string())
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|handle| handle.join()).collect();

    assert!(results.iter().all(Result::is_ok), "a rotating thread panicked: {results:?}");
    let results: Vec<_> = results.into_iter().flatten().collect();
    let rotated: Vec<_> =
        results.iter().filter(|result| matches!(result, Ok(Rotation::Rotated { .. }))).collect();
    let reused = results.iter().filter(|result| matches!(result, Ok(Rotation::Reused { .. }))).count();
    let failed: Vec<_> = results.iter().filter_map(|result| result.as_ref().err()).collect();
    assert_eq!(rotated.len(), 1, "exactly one rotation must win: {results:?}");
    assert_eq!(1 + reused + failed.len(), CONCURRENT_ROTATIONS);
    if !failed.is_empty() {
        eprintln!("{} of {CONCURRENT_ROTATIONS} rotations failed with errors: {failed:?}", failed.len());
    }

    let mut connection = pool.get().expect("checking out a connection failed");
    let family = family_rows(&mut connection, &issued.family_id);
    assert_eq!(family.len(), 2, "the family must hold the original and exactly one successor");
    assert!(family.iter().all(|row| row.revoked_at.is_some()), "the family must end revoked: {family:?}");
    assert!(matches!(&rotated[0], Ok(Rotation::Rotated { user_id, .. }) if *user_id == user));
}

fn revoke_all_for_user_spares_others(backend: Backend) {
    let Some(database) = TestDatabase::create(backend) else {
        return;
    };
    let mut connection = database.connect();
    let ada = insert_user(&mut connection, "ada");
    let grace = insert_user(&mut connection, "grace");
    let laptop = issue(&mut connection, ada, start());
    let phone_first = issue(&mut connection, ada, start());
    let phone = rotate_to_successor(&mut connection, &phone_first, seconds_after_start(30));
    let other_user = issue(&mut connection, grace, start());
    let now = seconds_after_start(60);

    let revoked = refresh::revoke_all_for_user(&mut connection, ada, now, RevokeReason::LogoutAll)
        .expect("revoking the user's tokens failed");

    assert_eq!(revoked, 3, "two families of ada hold three tokens");
    for token in [&laptop, &phone_first, &phone] {
        let row = stored(&mut connection, token);
        assert_eq!(row.revoked_at, Some(now.naive_utc()));
        assert_eq!(row.revoked_reason.as_deref(), Some(RevokeReason::LogoutAll.as_str()));
    }
    assert!(matches!(
        rotate(&mut connection, &laptop, now),
        Err(AuthError::TokenNotValid(TokenRejection::Revoked))
    ));
    assert!(stored(&mut connection, &other_user).revoked_at.is_none());
    assert!(matches!(rotate(&mut connection, &other_user, now), Ok(Rotation::Rotated { .. })));
    let again = refresh::revoke_all_for_user(&mut connection, ada, now, RevokeReason::LogoutAll)
        .expect("revoking the user's tokens again failed");
    assert_eq!(again, 0, "tokens revoked before are not counted again");
}

fn flush_expired_keeps_leeway(backend: Backend) {
    let Some(database) = TestDatabase::create(backend) else {
        return;
    };
    let mut connection = database.connect();
    let user = insert_user(&mut connection, "ada");
    let short_lived =
        refresh::issue(&mut connection, user, None, start(), Duration::from_secs(60)).expect("issue failed");
    let long_lived = issue(&mut connection, user, start());
    let leeway = i64::try_from(LEEWAY.as_secs()).expect("the leeway fits in i64");

    let at_leeway_end = refresh::flush_expired(&mut connection, seconds_after_start(60 + leeway), LEEWAY)
        .expect("flushing failed");
    let past_leeway = refresh::flush_expired(&mut connection, seconds_after_start(60 + leeway + 1), LEEWAY)
        .expect("flushing failed");

    assert_eq!(at_leeway_end, 0, "a token expired exactly the leeway ago is kept");
    assert_eq!(past_leeway, 1, "a token expired longer than the leeway ago is deleted");
    assert_eq!(count_tokens(&mut connection), 1);
    assert!(matches!(
        rotate(&mut connection, &short_lived, seconds_after_start(120)),
        Err(AuthError::TokenNotValid(TokenRejection::Unknown))
    ));
    assert!(stored(&mut connection, &long_lived).revoked_at.is_none());
}

/// Declares each case once per backend: `sqlite::CASE` and `postgres::CASE`.
macro_rules! on_both_backends {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[test]
                fn $case() {
                    super::$case(super::Backend::Sqlite);
                }
            )*
        }

        mod postgres {
            $(
                #[test]
                fn $case() {
                    super::$case(super::Backend::Postgres);
                }
            )*
        }
    };
}

on_both_backends!(
    issue_stores_hash_and_expiry,
    rotate_issues_successor_in_family,
    rotate_used_token_revokes_family,
    rotate_revoked_token_not_valid,
    rotate_expired_token_not_valid,
    rotate_unknown_token_not_valid,
    rotate_concurrently_elects_one_winner,
    revoke_all_for_user_spares_others,
    flush_expired_keeps_leeway,
);
