//! Sign-in and refresh-token rotation on PostgreSQL, each in one statement.
//!
//! A login stores the new refresh token and appends `auth.login`, and the common
//! rotation (a usable token of an active user) marks the token used, stores its
//! successor and appends `auth.refresh`, each in one `WITH` statement. That is one round
//! trip and one commit instead of a transaction of four or five statements, whose round
//! trips a profile showed to be most of the cost of a rotation on PostgreSQL
//! (docs/BENCHMARKS.md). A rotation in any other case leaves the database as it was, or
//! with the token used and no successor when the owner is inactive, and
//! [`crate::flows::refresh`] handles it in a transaction. SQLite has no data-modifying
//! `WITH`, so it keeps the transactions.
//!
//! The audit columns are those that `finetune_activity::record` writes; a new column of
//! `audit_log` must be added here too.

use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{BoxedSqlQuery, SqlQuery};
use diesel::sql_types::{BigInt, Bool, Nullable, Text, Timestamp};
use finetune_activity::{Action, NewEntry, Outcome, request_columns};
use finetune_auth::refresh::{self, IssuedRefreshToken};
use finetune_core::db::DbConnection;
use finetune_core::{RequestContext, UserId};

use crate::error::ApiError;

/// The audit columns after `occurred_at`, `actor_id` and `actor_username`, in the order
/// [`bind_entry`] binds them.
const ENTRY_COLUMNS: &str = "action, outcome, target_type, target_id, ip, user_agent, request_id, details";

/// Binds the columns of [`ENTRY_COLUMNS`] for `entry`, made during the request of `context`.
fn bind_entry<'f>(
    query: BoxedSqlQuery<'f, Pg, SqlQuery>,
    entry: &NewEntry,
    context: &RequestContext,
) -> BoxedSqlQuery<'f, Pg, SqlQuery> {
    let (ip, user_agent, request_id) = request_columns(context);
    query
        .bind::<Text, _>(entry.action.as_str())
        .bind::<Text, _>(entry.outcome.as_str())
        .bind::<Nullable<Text>, _>(entry.target_type)
        .bind::<Nullable<Text>, _>(entry.target_id.clone())
        .bind::<Nullable<Text>, _>(ip)
        .bind::<Nullable<Text>, _>(user_agent.map(str::to_owned))
        .bind::<Nullable<Text>, _>(request_id.map(str::to_owned))
        .bind::<Text, _>(entry.details.to_string())
}

/// Stores the first token of a new refresh family for `user_id` and appends `entry`
/// (the `auth.login` success), in one statement. Returns `None` when the connection is
/// not PostgreSQL, so the caller uses a transaction.
pub fn start_session(
    connection: &mut DbConnection,
    user_id: UserId,
    entry: &NewEntry,
    now: DateTime<Utc>,
    lifetime: std::time::Duration,
    context: &RequestContext,
) -> Result<Option<IssuedRefreshToken>, ApiError> {
    let DbConnection::Postgresql(connection) = connection else {
        return Ok(None);
    };
    let token = refresh::prepare(now, lifetime)?;
    let family_id = refresh::new_family_id()?;
    let sql = format!(
        "WITH token AS (INSERT INTO refresh_tokens (user_id, family_id, token_hash, issued_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5)) \
         INSERT INTO audit_log (occurred_at, actor_id, actor_username, {ENTRY_COLUMNS}) \
         VALUES ($4, $1, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
    );
    let query = diesel::sql_query(sql)
        .into_boxed::<Pg>()
        .bind::<BigInt, _>(user_id.0)
        .bind::<Text, _>(family_id.clone())
        .bind::<Text, _>(token.token_hash)
        .bind::<Timestamp, _>(now.naive_utc())
        .bind::<Timestamp, _>(token.expires_at.naive_utc())
        .bind::<Nullable<Text>, _>(entry.actor_username.clone());
    bind_entry(query, entry, context).execute(connection)?;
    Ok(Some(IssuedRefreshToken { token: token.token, family_id, expires_at: token.expires_at }))
}

/// The rotation. `$1` is the time of the rotation, `$2` the presented token's hash, `$3`
/// and `$4` the successor's hash and expiry, and `$5` to `$12` the [`ENTRY_COLUMNS`].
const ROTATE: &str = "\
WITH claimed AS (
    UPDATE refresh_tokens SET used_at = $1
    WHERE token_hash = $2 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > $1
    RETURNING user_id, family_id
), owner AS (
    SELECT claimed.user_id, claimed.family_id, users.username,
        coalesce(users.is_active, false) AS is_active
    FROM claimed LEFT JOIN users ON users.id = claimed.user_id
), successor AS (
    INSERT INTO refresh_tokens (user_id, family_id, token_hash, issued_at, expires_at)
    SELECT user_id, family_id, $3, $1, $4 FROM owner WHERE is_active
), entry AS (
    INSERT INTO audit_log (occurred_at, actor_id, actor_username,
        action, outcome, target_type, target_id, ip, user_agent, request_id, details)
    SELECT $1, user_id, username, $5, $6, $7, $8, $9, $10, $11, $12 FROM owner WHERE is_active
)
SELECT user_id, family_id, is_active FROM owner";

#[derive(QueryableByName)]
struct Owner {
    #[diesel(sql_type = BigInt)]
    user_id: i64,
    #[diesel(sql_type = Text)]
    family_id: String,
    #[diesel(sql_type = Bool)]
    is_active: bool,
}

/// The result of the one-statement rotation.
#[derive(Debug)]
pub enum OneStatementRotation {
    /// The token was usable and its owner active: the successor and the audit entry are
    /// stored and committed.
    Rotated {
        /// The owner.
        user_id: UserId,
        /// The successor, in the same family.
        successor: IssuedRefreshToken,
    },
    /// The token was usable but its owner is inactive or gone: the token is now used,
    /// no successor was stored and nothing was audited yet.
    InactiveOwner {
        /// The owner.
        user_id: UserId,
        /// The token's family, which the caller revokes.
        family_id: String,
    },
    /// The token was not usable, or the connection is not PostgreSQL: nothing changed.
    NotClaimed,
}

/// Rotates `presented` in one statement when the connection is PostgreSQL and outside a
/// transaction, so the statement commits by itself.
pub fn rotate(
    connection: &mut DbConnection,
    presented: &str,
    now: DateTime<Utc>,
    lifetime: std::time::Duration,
    context: &RequestContext,
) -> Result<OneStatementRotation, ApiError> {
    let DbConnection::Postgresql(connection) = connection else {
        return Ok(OneStatementRotation::NotClaimed);
    };
    if !refresh::has_valid_length(presented) {
        return Ok(OneStatementRotation::NotClaimed);
    }
    let successor = refresh::prepare(now, lifetime)?;
    let query = diesel::sql_query(ROTATE)
        .into_boxed::<Pg>()
        .bind::<Timestamp, _>(now.naive_utc())
        .bind::<Text, _>(refresh::hash_token(presented))
        .bind::<Text, _>(successor.token_hash.clone())
        .bind::<Timestamp, _>(successor.expires_at.naive_utc());
    let entry = NewEntry::new(Action::Refresh, Outcome::Success);
    let owners = bind_entry(query, &entry, context).get_results::<Owner>(connection)?;

    let Some(owner) = owners.into_iter().next() else {
        return Ok(OneStatementRotation::NotClaimed);
    };
    let user_id = UserId(owner.user_id);
    if !owner.is_active {
        return Ok(OneStatementRotation::InactiveOwner { user_id, family_id: owner.family_id });
    }
    let successor = IssuedRefreshToken {
        token: successor.token,
        family_id: owner.family_id,
        expires_at: successor.expires_at,
    };
    Ok(OneStatementRotation::Rotated { user_id, successor })
}
