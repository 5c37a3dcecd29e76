//! Refresh tokens: opaque 256-bit random strings stored only as SHA-256 hashes.
//!
//! Each token belongs to a family that starts at login. Rotation marks the presented
//! token used with one conditional write and issues a successor in the same family;
//! presenting a used token again is reuse, which revokes the whole family. Every
//! function takes the connection of a transaction the caller opened, so the audit
//! entry of the operation lands in the same transaction.

use std::fmt;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use finetune_core::db::DbConnection;
use finetune_core::db::schema::refresh_tokens;
use finetune_core::{Secret, UserId};
use sha2::{Digest, Sha256};

use crate::error::{AuthError, TokenRejection};

/// The maximum refresh-token length accepted, in bytes. Issued tokens are 43 bytes.
pub const MAX_REFRESH_TOKEN_BYTES: usize = 256;

/// The reason a family or a token was revoked, stored in `revoked_reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevokeReason {
    /// The user logged out of this session.
    Logout,
    /// The user logged out of every session.
    LogoutAll,
    /// The token was blacklisted through the token API.
    Blacklist,
    /// A used token was presented again.
    Reuse,
    /// The password changed.
    PasswordChange,
    /// The user was deactivated.
    Deactivated,
}

impl RevokeReason {
    /// Returns the stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Logout => "logout",
            Self::LogoutAll => "logout_all",
            Self::Blacklist => "blacklist",
            Self::Reuse => "reuse",
            Self::PasswordChange => "password_change",
            Self::Deactivated => "deactivated",
        }
    }
}

/// A newly issued refresh token.
#[derive(Clone)]
pub struct IssuedRefreshToken {
    /// The token to hand to the client; only its hash is stored.
    pub token: Secret,
    /// The family it belongs to.
    pub family_id: String,
    /// When it expires.
    pub expires_at: DateTime<Utc>,
}

impl fmt::Debug for IssuedRefreshToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedRefreshToken")
            .field("family_id", &self.family_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// The result of presenting a refresh token for rotation.
#[derive(Debug)]
pub enum Rotation {
    /// The token was valid; it is now used and `successor` replaces it.
    Rotated {
        /// The token owner.
        user_id: UserId,
        /// The successor, in the same family.
        successor: IssuedRefreshToken,
    },
    /// The token had been used already: the family is now revoked. The caller commits
    /// (so the revocation and its audit entry persist) and returns `token_reused`.
    Reused {
        /// The token owner.
        user_id: UserId,
        /// The revoked family.
        family_id: String,
    },
}

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = refresh_tokens)]
struct StoredToken {
    user_id: i64,
    family_id: String,
    expires_at: NaiveDateTime,
    used_at: Option<NaiveDateTime>,
    revoked_at: Option<NaiveDateTime>,
    revoked_reason: Option<String>,
}

impl StoredToken {
    /// Revoked by logout, logout-all, a password change, a deactivation or the
    /// blacklist: such a token is "not valid" even if it was used before. A family
    /// revoked for reuse keeps returning "reused".
    fn revoked_for_other_than_reuse(&self) -> bool {
        self.revoked_at.is_some() && self.revoked_reason.as_deref() != Some(RevokeReason::Reuse.as_str())
    }
}

#[derive(Insertable)]
#[diesel(table_name = refresh_tokens)]
struct NewToken<'a> {
    user_id: i64,
    family_id: &'a str,
    token_hash: &'a str,
    issued_at: NaiveDateTime,
    expires_at: NaiveDateTime,
}

/// Returns the stored form of a token: SHA-256, hex. A fast hash suffices because the
/// token has 256 random bits.
pub fn hash_token(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn random_url_safe(bytes: usize) -> Result<String, AuthError> {
    let mut buffer = vec![0u8; bytes];
    crate::tokens::getrandom_fill(&mut buffer)?;
    Ok(URL_SAFE_NO_PAD.encode(buffer))
}

/// `now + lifetime`, in whole seconds like JWT times.
fn expiry(now: DateTime<Utc>, lifetime: Duration) -> DateTime<Utc> {
    let seconds = i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX / 2);
    DateTime::from_timestamp(now.timestamp().saturating_add(seconds), 0).unwrap_or(now)
}

/// Issues a refresh token for `user_id`: in `family_id` when given (a rotation), else
/// in a new family (a login).
pub fn issue(
    connection: &mut DbConnection,
    user_id: UserId,
    family_id: Option<&str>,
    now: DateTime<Utc>,
    lifetime: Duration,
) -> Result<IssuedRefreshToken, AuthError> {
    let family_id = match family_id {
        Some(family) => family.to_owned(),
        None => new_family_id()?,
    };
    let (token, token_hash) = new_token()?;
    let expires_at = expiry(now, lifetime);
    insert(connection, user_id, &family_id, &token_hash, now, expires_at)?;
    Ok(IssuedRefreshToken { token, family_id, expires_at })
}

/// Generates a token and its stored hash.
fn new_token() -> Result<(Secret, String), AuthError> {
    let token = random_url_safe(32)?;
    let token_hash = hash_token(&token);
    Ok((Secret::new(token), token_hash))
}

/// A refresh token generated before the statement that stores it.
pub struct PreparedToken {
    /// The token to hand to the client.
    pub token: Secret,
    /// Its stored form, [`hash_token`] of `token`.
    pub token_hash: String,
    /// When it expires.
    pub expires_at: DateTime<Utc>,
}

impl fmt::Debug for PreparedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PreparedToken").field("expires_at", &self.expires_at).finish_non_exhaustive()
    }
}

/// Generates a token that expires `lifetime` after `now`, for a statement that stores
/// it as a successor itself.
pub fn prepare(now: DateTime<Utc>, lifetime: Duration) -> Result<PreparedToken, AuthError> {
    let (token, token_hash) = new_token()?;
    Ok(PreparedToken { token, token_hash, expires_at: expiry(now, lifetime) })
}

/// Generates the id of a new refresh family.
pub fn new_family_id() -> Result<String, AuthError> {
    random_url_safe(16)
}

/// Returns true when `presented` has a length a refresh token can have.
pub fn has_valid_length(presented: &str) -> bool {
    !presented.is_empty() && presented.len() <= MAX_REFRESH_TOKEN_BYTES
}

fn insert(
    connection: &mut DbConnection,
    user_id: UserId,
    family_id: &str,
    token_hash: &str,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<(), AuthError> {
    diesel::insert_into(refresh_tokens::table)
        .values(NewToken {
            user_id: user_id.0,
            family_id,
            token_hash,
            issued_at: now.naive_utc(),
            expires_at: expires_at.naive_utc(),
        })
        .execute(connection)?;
    Ok(())
}

fn find(connection: &mut DbConnection, presented: &str) -> Result<StoredToken, AuthError> {
    if !has_valid_length(presented) {
        return Err(AuthError::TokenNotValid(TokenRejection::Malformed));
    }
    refresh_tokens::table
        .filter(refresh_tokens::token_hash.eq(hash_token(presented)))
        .select(StoredToken::as_select())
        .first(connection)
        .optional()?
        .ok_or(AuthError::TokenNotValid(TokenRejection::Unknown))
}

/// The maximum number of revoking statements in one revocation; see
/// [`revoke_until_none_left`].
const MAX_REVOKE_ROUNDS: usize = 100;

/// Runs `revoke`, one `UPDATE` of live tokens, until it revokes none, and returns the
/// total. On PostgreSQL an `UPDATE` that waits for a concurrent rotation's row lock then
/// revokes the claimed token, but it misses the successor that the rotation stored,
/// because that row is not in the statement's snapshot. The next round, with a new
/// snapshot, revokes it.
fn revoke_until_none_left(
    connection: &mut DbConnection,
    mut revoke: impl FnMut(&mut DbConnection) -> QueryResult<usize>,
) -> Result<usize, AuthError> {
    let mut total = 0;
    for _ in 0..MAX_REVOKE_ROUNDS {
        let revoked = revoke(connection)?;
        if revoked == 0 {
            return Ok(total);
        }
        total += revoked;
    }
    // Each round follows a rotation that committed meanwhile; this many in a row means
    // something keeps rotating the family, and the caller's error rolls back.
    Err(AuthError::Core(finetune_core::CoreError::Database(format!(
        "tokens were still being issued after {MAX_REVOKE_ROUNDS} revocations"
    ))))
}

/// Revokes every live token of a family, including successors that concurrent
/// rotations store meanwhile; returns how many were revoked.
pub fn revoke_family(
    connection: &mut DbConnection,
    family_id: &str,
    now: DateTime<Utc>,
    reason: RevokeReason,
) -> Result<usize, AuthError> {
    revoke_until_none_left(connection, |connection| {
        diesel::update(
            refresh_tokens::table
                .filter(refresh_tokens::family_id.eq(family_id))
                .filter(refresh_tokens::revoked_at.is_null()),
        )
        .set((
            refresh_tokens::revoked_at.eq(now.naive_utc()),
            refresh_tokens::revoked_reason.eq(reason.as_str()),
        ))
        .execute(connection)
    })
}

/// Revokes every live token of a user, including successors that concurrent rotations
/// store meanwhile; returns how many were revoked.
pub fn revoke_all_for_user(
    connection: &mut DbConnection,
    user_id: UserId,
    now: DateTime<Utc>,
    reason: RevokeReason,
) -> Result<usize, AuthError> {
    revoke_until_none_left(connection, |connection| {
        diesel::update(
            refresh_tokens::table
                .filter(refresh_tokens::user_id.eq(user_id.0))
                .filter(refresh_tokens::revoked_at.is_null()),
        )
        .set((
            refresh_tokens::revoked_at.eq(now.naive_utc()),
            refresh_tokens::revoked_reason.eq(reason.as_str()),
        ))
        .execute(connection)
    })
}

/// Rotates a presented refresh token at `now`.
///
/// Errors with `TokenNotValid` when the token is unknown, expired, or revoked by
/// logout, a password change or deactivation. A token already used, or used concurrently by another request that won the conditional
/// write, returns [`Rotation::Reused`] after revoking its family.
pub fn rotate(
    connection: &mut DbConnection,
    presented: &str,
    now: DateTime<Utc>,
    lifetime: Duration,
) -> Result<Rotation, AuthError> {
    if !has_valid_length(presented) {
        return Err(AuthError::TokenNotValid(TokenRejection::Malformed));
    }

    // The common case: the conditional write decides the winner among concurrent
    // rotations, because only one request can move `used_at` from NULL.
    let prepared = prepare(now, lifetime)?;
    let expires_at = prepared.expires_at;
    if let Some(claimed) = claim(connection, &hash_token(presented), &prepared.token_hash, now, expires_at)? {
        let user_id = UserId(claimed.user_id);
        let successor =
            IssuedRefreshToken { token: prepared.token, family_id: claimed.family_id, expires_at };
        return Ok(Rotation::Rotated { user_id, successor });
    }

    // The token was not usable: find out why.
    let stored = find(connection, presented)?;
    let user_id = UserId(stored.user_id);
    if stored.revoked_for_other_than_reuse() {
        return Err(AuthError::TokenNotValid(TokenRejection::Revoked));
    }
    if stored.used_at.is_some() {
        revoke_family(connection, &stored.family_id, now, RevokeReason::Reuse)?;
        return Ok(Rotation::Reused { user_id, family_id: stored.family_id });
    }
    if stored.expires_at <= now.naive_utc() {
        return Err(AuthError::TokenNotValid(TokenRejection::Expired));
    }
    // Left: a token of a family revoked for reuse that was never used itself.
    Err(AuthError::TokenNotValid(TokenRejection::Revoked))
}

/// The row that [`claim`] marked used.
#[derive(QueryableByName)]
struct Claimed {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    user_id: i64,
    #[diesel(sql_type = diesel::sql_types::Text)]
    family_id: String,
}

/// Marks the token with this hash used when it is usable (not used, not revoked, not
/// expired), stores its successor `successor_hash` in the same family, and returns the
/// owner and family; `None` when the token is not usable. The server's PostgreSQL path
/// does the same in one statement (`finetune-http`'s `one_statement.rs`).
fn claim(
    connection: &mut DbConnection,
    token_hash: &str,
    successor_hash: &str,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<Option<Claimed>, AuthError> {
    use diesel::sql_types::{Text, Timestamp};

    // diesel's DSL has no RETURNING for both backends at once, so this is plain SQL;
    // SQLite numbers its parameters like PostgreSQL does when written `?1`.
    let sql = match connection {
        DbConnection::Postgresql(_) => {
            "UPDATE refresh_tokens SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL \
             AND revoked_at IS NULL AND expires_at > $1 RETURNING user_id, family_id"
        }
        DbConnection::Sqlite(_) => {
            "UPDATE refresh_tokens SET used_at = ?1 WHERE token_hash = ?2 AND used_at IS NULL \
             AND revoked_at IS NULL AND expires_at > ?1 RETURNING user_id, family_id"
        }
    };
    let claimed = diesel::sql_query(sql)
        .bind::<Timestamp, _>(now.naive_utc())
        .bind::<Text, _>(token_hash)
        .get_results::<Claimed>(connection)?
        .into_iter()
        .next();
    if let Some(row) = &claimed {
        insert(connection, UserId(row.user_id), &row.family_id, successor_hash, now, expires_at)?;
    }
    Ok(claimed)
}

/// Revokes the family of a presented token (logout, blacklist); returns the owner and
/// the family, or `None` when the token is unknown.
pub fn revoke_presented(
    connection: &mut DbConnection,
    presented: &str,
    now: DateTime<Utc>,
    reason: RevokeReason,
) -> Result<Option<(UserId, String)>, AuthError> {
    let stored = match find(connection, presented) {
        Ok(stored) => stored,
        Err(AuthError::TokenNotValid(_)) => return Ok(None),
        Err(other) => return Err(other),
    };
    revoke_family(connection, &stored.family_id, now, reason)?;
    Ok(Some((UserId(stored.user_id), stored.family_id)))
}

/// Looks up a presented token without changing it; returns the owner, the family and
/// whether it is still usable (not used, not revoked, not expired).
pub fn inspect(
    connection: &mut DbConnection,
    presented: &str,
    now: DateTime<Utc>,
) -> Result<(UserId, String, Result<(), AuthError>), AuthError> {
    let stored = find(connection, presented)?;
    let state = if stored.revoked_for_other_than_reuse() {
        Err(AuthError::TokenNotValid(TokenRejection::Revoked))
    } else if stored.used_at.is_some() {
        Err(AuthError::TokenReused)
    } else if stored.revoked_at.is_some() {
        Err(AuthError::TokenNotValid(TokenRejection::Revoked))
    } else if stored.expires_at <= now.naive_utc() {
        Err(AuthError::TokenNotValid(TokenRejection::Expired))
    } else {
        Ok(())
    };
    Ok((UserId(stored.user_id), stored.family_id, state))
}

/// Deletes tokens that expired more than `leeway` before `now`; returns how many.
pub fn flush_expired(
    connection: &mut DbConnection,
    now: DateTime<Utc>,
    leeway: Duration,
) -> Result<usize, AuthError> {
    let cutoff =
        expiry(now, Duration::ZERO) - chrono::Duration::seconds(i64::try_from(leeway.as_secs()).unwrap_or(0));
    let deleted =
        diesel::delete(refresh_tokens::table.filter(refresh_tokens::expires_at.lt(cutoff.naive_utc())))
            .execute(connection)?;
    Ok(deleted)
}
