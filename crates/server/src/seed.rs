//! `finetune seed`: generated users and audit entries, written by the database itself
//! (`generate_series` on PostgreSQL, a recursive CTE on SQLite) in batches, so a
//! million entries take seconds.

use std::time::Instant;

use diesel::RunQueryDsl;
use diesel::sql_types::{BigInt, Text};
use finetune_auth::password::Passwords;
use finetune_core::db::{DbConnection, write_transaction};
use finetune_core::settings::Settings;
use finetune_core::user::validate_new_password;

use crate::commands::{CommandError, connect, read_password};

/// Rows generated per statement.
const BATCH_ROWS: u64 = 250_000;

const SQLITE_USERS: &str = "
    WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < ?)
    INSERT INTO users (username, username_canonical, email, password_hash, is_active, created_at, updated_at)
    SELECT 'seed-user-' || (? + n), 'seed-user-' || (? + n), 'seed-user-' || (? + n) || '@example.com',
           ?, 1, datetime('now'), datetime('now')
    FROM seq";

const POSTGRES_USERS: &str = "
    INSERT INTO users (username, username_canonical, email, password_hash, is_active, created_at, updated_at)
    SELECT 'seed-user-' || ($2 + n), 'seed-user-' || ($2 + n), 'seed-user-' || ($2 + n) || '@example.com',
           $3, TRUE, now() AT TIME ZONE 'UTC', now() AT TIME ZONE 'UTC'
    FROM generate_series(1, $1) AS n";

// Entries end at the current time, one second apart, so ids and times grow together.
// Every seventh actor name starts with `=`, to exercise formula neutralisation.
const SQLITE_AUDIT: &str = "
    WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < ?)
    INSERT INTO audit_log (occurred_at, actor_id, actor_username, action, outcome, target_type, target_id,
                           ip, user_agent, request_id, details)
    SELECT datetime('now', '-' || (? - n) || ' seconds'),
           (n % 1000) + 1,
           CASE WHEN n % 7 = 0 THEN '=seed-' || (n % 1000) ELSE 'seed-user-' || (n % 1000 + 1) END,
           CASE n % 4 WHEN 0 THEN 'auth.login' WHEN 1 THEN 'auth.refresh' WHEN 2 THEN 'auth.logout'
                      ELSE 'user.update' END,
           CASE WHEN n % 10 = 0 THEN 'failure' ELSE 'success' END,
           'user', CAST((n % 1000) + 1 AS TEXT),
           '198.51.100.' || (n % 250), 'seed-agent/1.0, \"quoted\"', 'seed-' || (? + n),
           '{\"seeded\":true,\"n\":' || (? + n) || '}'
    FROM seq";

const POSTGRES_AUDIT: &str = "
    INSERT INTO audit_log (occurred_at, actor_id, actor_username, action, outcome, target_type, target_id,
                           ip, user_agent, request_id, details)
    SELECT (now() AT TIME ZONE 'UTC') - make_interval(secs => ($3 - $2 - n)::double precision),
           (n % 1000) + 1,
           CASE WHEN n % 7 = 0 THEN '=seed-' || (n % 1000) ELSE 'seed-user-' || (n % 1000 + 1) END,
           CASE n % 4 WHEN 0 THEN 'auth.login' WHEN 1 THEN 'auth.refresh' WHEN 2 THEN 'auth.logout'
                      ELSE 'user.update' END,
           CASE WHEN n % 10 = 0 THEN 'failure' ELSE 'success' END,
           'user', ((n % 1000) + 1)::text,
           '198.51.100.' || (n % 250), 'seed-agent/1.0, \"quoted\"', 'seed-' || ($2 + n),
           '{\"seeded\":true,\"n\":' || ($2 + n) || '}'
    FROM generate_series(1, $1) AS n";

fn max_user_id(connection: &mut DbConnection) -> Result<i64, CommandError> {
    use diesel::dsl::max;
    use diesel::prelude::*;
    use finetune_core::db::schema::users;
    Ok(users::table.select(max(users::id)).first::<Option<i64>>(connection)?.unwrap_or(0))
}

fn insert_users(
    connection: &mut DbConnection,
    count: i64,
    offset: i64,
    hash: &str,
) -> Result<usize, CommandError> {
    let inserted = if connection.is_postgres() {
        diesel::sql_query(POSTGRES_USERS)
            .bind::<BigInt, _>(count)
            .bind::<BigInt, _>(offset)
            .bind::<Text, _>(hash)
            .execute(connection)?
    } else {
        diesel::sql_query(SQLITE_USERS)
            .bind::<BigInt, _>(count)
            .bind::<BigInt, _>(offset)
            .bind::<BigInt, _>(offset)
            .bind::<BigInt, _>(offset)
            .bind::<Text, _>(hash)
            .execute(connection)?
    };
    Ok(inserted)
}

fn insert_audit(
    connection: &mut DbConnection,
    count: i64,
    offset: i64,
    total: i64,
) -> Result<usize, CommandError> {
    let inserted = if connection.is_postgres() {
        diesel::sql_query(POSTGRES_AUDIT)
            .bind::<BigInt, _>(count)
            .bind::<BigInt, _>(offset)
            .bind::<BigInt, _>(total)
            .execute(connection)?
    } else {
        diesel::sql_query(SQLITE_AUDIT)
            .bind::<BigInt, _>(count)
            .bind::<BigInt, _>(total - offset)
            .bind::<BigInt, _>(offset)
            .bind::<BigInt, _>(offset)
            .execute(connection)?
    };
    Ok(inserted)
}

/// Seeds `users` users and `audit_entries` audit entries.
pub fn seed(settings: &Settings, users: u64, audit_entries: u64) -> Result<(), CommandError> {
    if settings.is_production() {
        return Err(CommandError::Message(
            "seed writes invented users and audit entries; it does not run with ENVIRONMENT=production"
                .into(),
        ));
    }
    let mut connection = connect(settings)?;
    finetune_core::db::run_migrations(&mut connection)?;
    // Generated rows can be regenerated, so trade durability for speed on this
    // connection: a big page cache and no fsync per commit.
    let tuning = match connection.is_postgres() {
        true => "SET synchronous_commit TO off",
        false => "PRAGMA cache_size = -262144; PRAGMA synchronous = OFF",
    };
    diesel::connection::SimpleConnection::batch_execute(&mut connection, tuning)?;

    if users > 0 {
        let password = read_password()?;
        validate_new_password(&password, "seed-user", "password")?;
        let hash = Passwords::new()?.hash(&password)?;
        let started = Instant::now();
        let mut done = 0u64;
        while done < users {
            let batch = (users - done).min(BATCH_ROWS);
            let offset = max_user_id(&mut connection)?;
            write_transaction(&mut connection, |c| insert_users(c, batch as i64, offset, &hash))?;
            done += batch;
        }
        eprintln!("seeded {users} users in {:.1} s", started.elapsed().as_secs_f64());
    }

    if audit_entries > 0 {
        let started = Instant::now();
        let total = audit_entries as i64;
        let mut done = 0u64;
        while done < audit_entries {
            let batch = (audit_entries - done).min(BATCH_ROWS);
            write_transaction(&mut connection, |c| insert_audit(c, batch as i64, done as i64, total))?;
            done += batch;
        }
        eprintln!("seeded {audit_entries} audit entries in {:.1} s", started.elapsed().as_secs_f64());
    }
    Ok(())
}
