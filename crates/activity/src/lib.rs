//! The append-only audit log of the Finetune security backend.
//!
//! [`record`] writes one entry on the caller's connection, inside the transaction of the
//! operation it records, so either both exist afterwards or neither does. The database
//! rejects UPDATE and DELETE on the table with triggers.
//!
//! [`query`] lists entries newest first with keyset pagination; [`export`] writes the
//! whole filtered log as CSV or JSON lines, oldest first, in chunks so memory stays flat.
//!
//! This crate depends on `finetune-core` only and reads no settings.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod copy;
pub mod export;
pub mod query;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use finetune_core::RequestContext;
use finetune_core::db::DbConnection;
use finetune_core::db::schema::audit_log;
use finetune_core::user::MAX_USERNAME_CHARS;

/// An audited operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// A login attempt, through cookies or the token API.
    Login,
    /// A refresh-token rotation.
    Refresh,
    /// A used refresh token presented again.
    TokenReuse,
    /// A logout or a blacklisted refresh token.
    Logout,
    /// A logout of every session.
    LogoutAll,
    /// A password change by the user.
    PasswordChange,
    /// A user created (by an admin or the command line).
    UserCreate,
    /// A user's email, password or active state changed.
    UserUpdate,
    /// A user deactivated.
    UserDeactivate,
    /// A role granted to a user.
    RoleGrant,
    /// A role revoked from a user.
    RoleRevoke,
    /// A role created.
    RoleCreate,
    /// A role's description or permissions changed.
    RoleUpdate,
    /// A role deleted.
    RoleDelete,
    /// A signing key rotated.
    KeysRotate,
    /// An audit-log export started.
    LogsExport,
    /// An audit-log export ended (row count, or the failure).
    LogsExportCompleted,
    /// A request refused for lack of permission.
    AccessDenied,
}

impl Action {
    /// Returns the stored name, such as `auth.login`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Login => "auth.login",
            Self::Refresh => "auth.refresh",
            Self::TokenReuse => "auth.token_reuse",
            Self::Logout => "auth.logout",
            Self::LogoutAll => "auth.logout_all",
            Self::PasswordChange => "auth.password_change",
            Self::UserCreate => "user.create",
            Self::UserUpdate => "user.update",
            Self::UserDeactivate => "user.deactivate",
            Self::RoleGrant => "role.grant",
            Self::RoleRevoke => "role.revoke",
            Self::RoleCreate => "role.create",
            Self::RoleUpdate => "role.update",
            Self::RoleDelete => "role.delete",
            Self::KeysRotate => "keys.rotate",
            Self::LogsExport => "logs.export",
            Self::LogsExportCompleted => "logs.export_completed",
            Self::AccessDenied => "access.denied",
        }
    }
}

/// The result of an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It did what was asked.
    Success,
    /// It failed (wrong password, bad token).
    Failure,
    /// It was refused for lack of permission.
    Denied,
}

impl Outcome {
    /// Parses a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Success, Self::Failure, Self::Denied].into_iter().find(|outcome| outcome.as_str() == name)
    }

    /// Returns the stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
            Self::Denied => "denied",
        }
    }
}

/// An entry to record.
#[derive(Debug, Clone)]
pub struct NewEntry {
    /// The operation.
    pub action: Action,
    /// The result.
    pub outcome: Outcome,
    /// The user who acted, when known.
    pub actor_id: Option<i64>,
    /// The actor's username at the time (for a failed login, the attempted one).
    pub actor_username: Option<String>,
    /// The kind of object acted on, such as `user`.
    pub target_type: Option<&'static str>,
    /// The id of the object acted on.
    pub target_id: Option<String>,
    /// Further facts as a JSON object; never a password or a token.
    pub details: serde_json::Value,
}

impl NewEntry {
    /// Creates an entry with no actor, target or details.
    pub fn new(action: Action, outcome: Outcome) -> Self {
        Self {
            action,
            outcome,
            actor_id: None,
            actor_username: None,
            target_type: None,
            target_id: None,
            details: serde_json::Value::Object(serde_json::Map::new()),
        }
    }

    /// Sets the actor; the username is cut to the maximum username length and NUL
    /// characters become U+FFFD.
    pub fn actor(mut self, actor_id: Option<i64>, username: Option<&str>) -> Self {
        self.actor_id = actor_id;
        // PostgreSQL text cannot hold NUL; an attempted username may contain anything.
        self.actor_username = username.map(|name| {
            name.chars().take(MAX_USERNAME_CHARS).map(|c| if c == '\0' { '\u{fffd}' } else { c }).collect()
        });
        self
    }

    /// Sets the target.
    pub fn target(mut self, target_type: &'static str, target_id: impl ToString) -> Self {
        self.target_type = Some(target_type);
        self.target_id = Some(target_id.to_string());
        self
    }

    /// Adds one detail.
    pub fn detail(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        if let serde_json::Value::Object(map) = &mut self.details {
            map.insert(key.to_owned(), value.into());
        }
        self
    }
}

/// Returns the request columns of an audit row: the client IP, the user agent and the
/// request id, each `None` when unknown or empty.
pub fn request_columns(context: &RequestContext) -> (Option<String>, Option<&str>, Option<&str>) {
    let request_id = Some(context.request_id.as_str()).filter(|id| !id.is_empty());
    (context.client_ip.map(|ip| ip.to_string()), context.user_agent.as_deref(), request_id)
}

/// Writes `entry` with the request's IP, user agent and request id.
///
/// NOTE: the PostgreSQL login and rotation statements in `finetune-http`
/// (`one_statement.rs`) insert audit rows with their own SQL, so a new column must be
/// added there too.
pub fn record(
    connection: &mut DbConnection,
    entry: &NewEntry,
    context: &RequestContext,
    now: DateTime<Utc>,
) -> QueryResult<()> {
    let (ip, user_agent, request_id) = request_columns(context);
    diesel::insert_into(audit_log::table)
        .values((
            audit_log::occurred_at.eq(now.naive_utc()),
            audit_log::actor_id.eq(entry.actor_id),
            audit_log::actor_username.eq(entry.actor_username.as_deref()),
            audit_log::action.eq(entry.action.as_str()),
            audit_log::outcome.eq(entry.outcome.as_str()),
            audit_log::target_type.eq(entry.target_type),
            audit_log::target_id.eq(entry.target_id.as_deref()),
            audit_log::ip.eq(ip),
            audit_log::user_agent.eq(user_agent),
            audit_log::request_id.eq(request_id),
            audit_log::details.eq(entry.details.to_string()),
        ))
        .execute(connection)?;
    Ok(())
}
