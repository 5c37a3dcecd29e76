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

use std::marker::PhantomData;

use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::query_dsl::RunQueryDslSupport;
use diesel::serialize::ToSql;
use diesel::sql_types::{Array, BigInt, Bool, HasSqlType, Nullable, Text, Timestamp, Untyped};
use finetune_activity::{Action, NewEntry, Outcome, request_columns};
use finetune_auth::refresh::{self, IssuedRefreshToken};
use finetune_core::db::DbConnection;
use finetune_core::user::UserView;
use finetune_core::{RequestContext, UserId};
use finetune_rbac::users::User;

use crate::error::ApiError;

/// SQL with named parameters (`{name}`) that diesel's statement cache prepares once per
/// connection, so PostgreSQL parses and plans it once. `diesel::sql_query` prepares
/// its SQL again on every call; parsing and planning took 38 % of PostgreSQL's CPU time
/// in a profile of chained rotations. Each `{name}` becomes a `$n` parameter.
struct PreparedSql<'f> {
    template: &'static str,
    binds: Vec<(&'static str, Box<dyn QueryFragment<Pg> + Send + 'f>)>,
}

/// One named value of a [`PreparedSql`].
struct Bind<ST, T> {
    value: T,
    sql_type: PhantomData<ST>,
}

impl<ST, T> QueryFragment<Pg> for Bind<ST, T>
where
    Pg: HasSqlType<ST>,
    T: ToSql<ST, Pg>,
{
    fn walk_ast<'b>(&'b self, mut pass: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        pass.push_bind_param::<ST, T>(&self.value)
    }
}

impl<'f> PreparedSql<'f> {
    fn new(template: &'static str) -> Self {
        Self { template, binds: Vec::new() }
    }

    /// Sets the value of `{name}`, which must not have one yet.
    fn bind<ST, T>(mut self, name: &'static str, value: T) -> Self
    where
        Pg: HasSqlType<ST>,
        T: ToSql<ST, Pg> + Send + 'f,
        ST: Send + 'f,
    {
        debug_assert!(self.binds.iter().all(|(bound, _)| *bound != name), "{{{name}}} is bound twice");
        self.binds.push((name, Box::new(Bind { value, sql_type: PhantomData::<ST> })));
        self
    }
}

impl QueryFragment<Pg> for PreparedSql<'_> {
    fn walk_ast<'b>(&'b self, mut pass: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        let invalid = |message: String| diesel::result::Error::QueryBuilderError(message.into());
        let mut rest = self.template;
        while let Some(open) = rest.find('{') {
            pass.push_sql(&rest[..open]);
            let close = rest[open..]
                .find('}')
                .map(|offset| open + offset)
                .ok_or_else(|| invalid(format!("unclosed parameter in: {}", &rest[open..])))?;
            let name = &rest[open + 1..close];
            let (_, bind) = self
                .binds
                .iter()
                .find(|(bound, _)| *bound == name)
                .ok_or_else(|| invalid(format!("no value bound for {{{name}}}")))?;
            bind.walk_ast(pass.reborrow())?;
            rest = &rest[close + 1..];
        }
        pass.push_sql(rest);
        Ok(())
    }
}

// Without a static query id, the statement cache keys the statement by its SQL text and
// bind types.
impl QueryId for PreparedSql<'_> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for PreparedSql<'_> {
    type SqlType = Untyped;
}

impl RunQueryDslSupport for PreparedSql<'_> {}

/// Binds the audit columns after `occurred_at`, `actor_id` and `actor_username` for
/// `entry`, made during the request of `context`: `{action}`, `{outcome}`,
/// `{target_type}`, `{target_id}`, `{ip}`, `{user_agent}`, `{request_id}` and `{details}`.
fn bind_entry<'f>(query: PreparedSql<'f>, entry: &NewEntry, context: &RequestContext) -> PreparedSql<'f> {
    let (ip, user_agent, request_id) = request_columns(context);
    query
        .bind::<Text, _>("action", entry.action.as_str())
        .bind::<Text, _>("outcome", entry.outcome.as_str())
        .bind::<Nullable<Text>, _>("target_type", entry.target_type)
        .bind::<Nullable<Text>, _>("target_id", entry.target_id.clone())
        .bind::<Nullable<Text>, _>("ip", ip)
        .bind::<Nullable<Text>, _>("user_agent", user_agent.map(str::to_owned))
        .bind::<Nullable<Text>, _>("request_id", request_id.map(str::to_owned))
        .bind::<Text, _>("details", entry.details.to_string())
}

/// The login, with the parameters of [`bind_entry`]. `active` reads the user again
/// with `FOR SHARE`: it waits for a deactivation or deletion in progress and then reads
/// its result, and a later one waits for this statement. A user deactivated or deleted
/// since the lookup before the password check returns no row and nothing is stored. The
/// statement returns the user's view, roles sorted as
/// `finetune_rbac::roles::role_names` sorts them, so nothing is left to read after the
/// commit.
const START_SESSION: &str = "\
WITH active AS (
    SELECT id, username, email FROM users WHERE id = {user_id} AND is_active FOR SHARE
), token AS (
    INSERT INTO refresh_tokens (user_id, family_id, token_hash, issued_at, expires_at)
    SELECT id, {family_id}, {token_hash}, {now}, {expires_at} FROM active
), entry AS (
    INSERT INTO audit_log (occurred_at, actor_id, actor_username,
        action, outcome, target_type, target_id, ip, user_agent, request_id, details)
    SELECT {now}, id, username, {action}, {outcome}, {target_type}, {target_id},
        {ip}, {user_agent}, {request_id}, {details}
    FROM active
)
SELECT username, email, ARRAY(
    SELECT roles.name FROM user_roles JOIN roles ON roles.id = user_roles.role_id
    WHERE user_roles.user_id = active.id ORDER BY roles.name
) AS roles
FROM active";

/// The row [`START_SESSION`] returns.
#[derive(QueryableByName)]
struct SessionUser {
    #[diesel(sql_type = Text)]
    username: String,
    #[diesel(sql_type = Nullable<Text>)]
    email: Option<String>,
    #[diesel(sql_type = Array<Text>)]
    roles: Vec<String>,
}

/// The result of [`start_session`].
#[derive(Debug)]
pub enum SessionStart {
    /// The session's first refresh token and the user's view; both are committed with
    /// the `auth.login` entry.
    Started(IssuedRefreshToken, UserView),
    /// The user was deactivated or deleted since the lookup: nothing was stored.
    Inactive,
    /// The connection is not PostgreSQL: nothing was done, so the caller uses a
    /// transaction.
    NotPostgresql,
}

/// Stores the first token of a new refresh family for `user` and appends `entry` (the
/// `auth.login` success), in one statement, when `user` is still active.
pub fn start_session(
    connection: &mut DbConnection,
    user: &User,
    entry: &NewEntry,
    now: DateTime<Utc>,
    lifetime: std::time::Duration,
    context: &RequestContext,
) -> Result<SessionStart, ApiError> {
    let DbConnection::Postgresql(connection) = connection else {
        return Ok(SessionStart::NotPostgresql);
    };
    let token = refresh::prepare(now, lifetime)?;
    let family_id = refresh::new_family_id()?;
    let query = PreparedSql::new(START_SESSION)
        .bind::<BigInt, _>("user_id", user.id)
        .bind::<Text, _>("family_id", family_id.clone())
        .bind::<Text, _>("token_hash", token.token_hash)
        .bind::<Timestamp, _>("now", now.naive_utc())
        .bind::<Timestamp, _>("expires_at", token.expires_at.naive_utc());
    let rows = bind_entry(query, entry, context).get_results::<SessionUser>(connection)?;
    let Some(row) = rows.into_iter().next() else {
        return Ok(SessionStart::Inactive);
    };
    let view = UserView {
        id: user.user_id(),
        username: row.username,
        email: row.email,
        roles: row.roles,
        is_active: true,
    };
    let refresh = IssuedRefreshToken { token: token.token, family_id, expires_at: token.expires_at };
    Ok(SessionStart::Started(refresh, view))
}

/// The rotation, with the parameters of [`bind_entry`]. It returns the owner's view, so
/// nothing is left to read after the commit.
const ROTATE: &str = "\
WITH claimed AS (
    UPDATE refresh_tokens SET used_at = {now}
    WHERE token_hash = {token_hash} AND used_at IS NULL AND revoked_at IS NULL
        AND expires_at > {now}
    RETURNING user_id, family_id
), owner AS (
    SELECT claimed.user_id, claimed.family_id, users.username, users.email,
        coalesce(users.is_active, false) AS is_active
    FROM claimed LEFT JOIN users ON users.id = claimed.user_id
), successor AS (
    INSERT INTO refresh_tokens (user_id, family_id, token_hash, issued_at, expires_at)
    SELECT user_id, family_id, {successor_hash}, {now}, {successor_expires_at}
    FROM owner WHERE is_active
), entry AS (
    INSERT INTO audit_log (occurred_at, actor_id, actor_username,
        action, outcome, target_type, target_id, ip, user_agent, request_id, details)
    SELECT {now}, user_id, username, {action}, {outcome}, {target_type}, {target_id},
        {ip}, {user_agent}, {request_id}, {details}
    FROM owner WHERE is_active
)
SELECT user_id, family_id, username, email, is_active, ARRAY(
    SELECT roles.name FROM user_roles JOIN roles ON roles.id = user_roles.role_id
    WHERE user_roles.user_id = owner.user_id ORDER BY roles.name
) AS roles
FROM owner";

/// The row the statement returns when it claimed the token.
#[derive(QueryableByName)]
struct Owner {
    #[diesel(sql_type = BigInt)]
    user_id: i64,
    #[diesel(sql_type = Text)]
    family_id: String,
    #[diesel(sql_type = Nullable<Text>)]
    username: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    email: Option<String>,
    #[diesel(sql_type = Bool)]
    is_active: bool,
    #[diesel(sql_type = Array<Text>)]
    roles: Vec<String>,
}

/// The result of the one-statement rotation.
#[derive(Debug)]
pub enum OneStatementRotation {
    /// The token was usable and its owner active: the successor and the audit entry are
    /// stored and committed.
    Rotated {
        /// The owner's current view.
        user: UserView,
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
    let query = PreparedSql::new(ROTATE)
        .bind::<Timestamp, _>("now", now.naive_utc())
        .bind::<Text, _>("token_hash", refresh::hash_token(presented))
        .bind::<Text, _>("successor_hash", successor.token_hash.clone())
        .bind::<Timestamp, _>("successor_expires_at", successor.expires_at.naive_utc());
    let entry = NewEntry::new(Action::Refresh, Outcome::Success);
    let owners = bind_entry(query, &entry, context).get_results::<Owner>(connection)?;

    let Some(owner) = owners.into_iter().next() else {
        return Ok(OneStatementRotation::NotClaimed);
    };
    let user_id = UserId(owner.user_id);
    let Some(username) = owner.username.filter(|_| owner.is_active) else {
        return Ok(OneStatementRotation::InactiveOwner { user_id, family_id: owner.family_id });
    };
    let user = UserView { id: user_id, username, email: owner.email, roles: owner.roles, is_active: true };
    let successor = IssuedRefreshToken {
        token: successor.token,
        family_id: owner.family_id,
        expires_at: successor.expires_at,
    };
    Ok(OneStatementRotation::Rotated { user, successor })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_parameters_become_numbered() {
        let query = PreparedSql::new("SELECT {a}, {b}, {a}")
            .bind::<BigInt, _>("a", 7_i64)
            .bind::<Text, _>("b", "x".to_owned());
        let sql = diesel::debug_query::<Pg, _>(&query).to_string();
        assert!(sql.starts_with("SELECT $1, $2, $3 -- binds: [7, \"x\", 7]"), "{sql}");
    }

    #[test]
    fn template_without_value_fails() {
        let query = PreparedSql::new("SELECT {a}, {missing}").bind::<BigInt, _>("a", 7_i64);
        let built = QueryFragment::<Pg>::to_sql(&query, &mut diesel::pg::PgQueryBuilder::default(), &Pg);
        assert!(built.is_err(), "a template with an unbound name must not build");
    }

    #[test]
    fn template_unclosed_brace_fails() {
        let query = PreparedSql::new("SELECT {a} || '{").bind::<BigInt, _>("a", 7_i64);
        let built = QueryFragment::<Pg>::to_sql(&query, &mut diesel::pg::PgQueryBuilder::default(), &Pg);
        assert!(built.is_err(), "an unclosed brace must not build");
    }

    #[test]
    fn template_lone_close_brace_is_text() {
        let query = PreparedSql::new("SELECT '}', {a}").bind::<BigInt, _>("a", 7_i64);
        let sql = diesel::debug_query::<Pg, _>(&query).to_string();
        assert!(sql.starts_with("SELECT '}', $1 -- binds: [7]"), "{sql}");
    }

    #[test]
    fn template_value_with_braces_stays_bound() {
        let query =
            PreparedSql::new("SELECT {a}").bind::<Text, _>("a", "{a}'; DROP TABLE users; --".to_owned());
        let sql = diesel::debug_query::<Pg, _>(&query).to_string();
        assert!(sql.starts_with("SELECT $1 -- binds: "), "{sql}");
    }
}
