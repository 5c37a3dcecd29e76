//! Races between a login or a rotation and a concurrent change to the same user or family.

use std::thread;
use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel::sql_query;
use diesel::sql_types::BigInt;
use serde_json::json;

use crate::db::Db;
use crate::harness::{ADMIN_PASSWORD, ADMIN_USERNAME, Backend, TestServer, backend_tests};
use crate::http::{TokenPair, assert_error};

backend_tests!(
    reuse_during_rotation_revokes_successor,
    login_after_deactivation_is_rejected,
    login_after_deletion_is_rejected
);

/// Maximum wait for a request to block on a lock that the test holds.
const BLOCK_TIMEOUT: Duration = Duration::from_secs(10);

/// The row of the `pg_stat_activity` count in [`wait_for_lock_wait`].
#[derive(QueryableByName)]
struct Waiting {
    #[diesel(sql_type = BigInt)]
    count: i64,
}

/// Waits until a server session waits on a lock in SQL that starts with `prefix`.
/// SQLite has no such view, so there it sleeps 1.5 s, which is longer than a test login
/// takes to reach its write.
fn wait_for_lock_wait(database: &mut Db, prefix: &str) {
    let Db::Postgres(connection) = database else {
        thread::sleep(Duration::from_millis(1500));
        return;
    };
    let started = Instant::now();
    loop {
        let waiting = sql_query(format!(
            "SELECT count(*) AS count FROM pg_stat_activity \
             WHERE wait_event_type = 'Lock' AND query LIKE '{prefix}%'"
        ))
        .get_result::<Waiting>(connection)
        .unwrap_or_else(|error| panic!("reading pg_stat_activity failed: {error}"));
        if waiting.count > 0 {
            return;
        }
        assert!(
            started.elapsed() < BLOCK_TIMEOUT,
            "no session waited on a lock in SQL starting with {prefix}"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// Reuse of an old token while its successor is being rotated must revoke the whole
/// family, including the successor that the rotation stores. The rotation is held open
/// by a trigger that sleeps before its `auth.refresh` audit row, so the reuse's
/// revocation starts before the rotation commits. SQLite serializes writers, so only
/// PostgreSQL can interleave them.
fn reuse_during_rotation_revokes_successor(backend: Backend) {
    let server = TestServer::start(backend);
    let first = server.obtain_token_pair(ADMIN_USERNAME, ADMIN_PASSWORD);
    let rotated = server.refresh_token(&first.refresh);
    assert_eq!(rotated.status, 200, "first rotation: {}", rotated.body);
    let second = TokenPair::from_response(&rotated);
    if backend == Backend::Sqlite {
        return;
    }

    let mut database = server.database();
    database.execute(
        "CREATE FUNCTION races_slow_refresh() RETURNS trigger AS $$ BEGIN \
         IF NEW.action = 'auth.refresh' AND NEW.outcome = 'success' THEN PERFORM pg_sleep(2); END IF; \
         RETURN NEW; END; $$ LANGUAGE plpgsql",
    );
    database.execute(
        "CREATE TRIGGER races_slow_refresh BEFORE INSERT ON audit_log \
         FOR EACH ROW EXECUTE FUNCTION races_slow_refresh()",
    );

    let (rotation, reuse) = thread::scope(|scope| {
        let rotation = scope.spawn(|| server.refresh_token(&second.refresh));
        thread::sleep(Duration::from_millis(500));
        let reuse = server.refresh_token(&first.refresh);
        (rotation.join().unwrap_or_else(|_| panic!("the rotation thread panicked")), reuse)
    });
    database.execute("DROP TRIGGER races_slow_refresh ON audit_log");

    assert_eq!(rotation.status, 200, "rotation of the current token: {}", rotation.body);
    assert_error(&reuse, 401, "token_reused");
    let third = TokenPair::from_response(&rotation);
    let after_reuse = server.refresh_token(&third.refresh);
    assert_error(&after_reuse, 401, "token_not_valid");
}

/// A login whose password check passed before the user's deactivation committed must
/// fail when the session would be stored after it.
fn login_after_deactivation_is_rejected(backend: Backend) {
    login_after_change(backend, "UPDATE users SET is_active = false WHERE username = 'admin'");
}

/// A login whose user was deleted after the lookup must fail as invalid credentials, not
/// as a server error.
fn login_after_deletion_is_rejected(backend: Backend) {
    login_after_change(backend, "DELETE FROM users WHERE username = 'admin'");
}

/// Logs the admin in while a transaction holds the admin's row (PostgreSQL) or the write
/// lock (SQLite), so the session write waits. Then applies `change` to the admin,
/// commits it, and expects the login to fail with 401 and store no session.
fn login_after_change(backend: Backend, change: &str) {
    let server = TestServer::start(backend);
    let mut blocker = server.database();
    match backend {
        Backend::Postgres => {
            blocker.execute("BEGIN");
            blocker.execute("SELECT id FROM users WHERE username = 'admin' FOR UPDATE");
        }
        Backend::Sqlite => blocker.execute("BEGIN IMMEDIATE"),
    }

    let login = thread::scope(|scope| {
        let login = scope.spawn(|| {
            server
                .post("/api/auth/token/")
                .json(&json!({"username": ADMIN_USERNAME, "password": ADMIN_PASSWORD}))
                .send()
        });
        let mut observer = server.database();
        wait_for_lock_wait(&mut observer, "WITH active AS");
        blocker.execute(change);
        blocker.execute("UPDATE change_counters SET value = value + 1 WHERE name = 'user_state'");
        blocker.execute("COMMIT");
        login.join().unwrap_or_else(|_| panic!("the login thread panicked"))
    });

    assert_error(&login, 401, "invalid_credentials");
    let mut database = server.database();
    let sessions = database.count("SELECT count(*) AS count FROM refresh_tokens");
    assert_eq!(sessions, 0, "a rejected login stored a refresh token");
}
