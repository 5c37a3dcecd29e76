//! Permission checks against the current grants, with `access.denied` audited.

use finetune_activity::{Action, NewEntry, Outcome, record};
use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use finetune_core::db::{DbConnection, write_transaction};
use finetune_core::{RequestContext, UserId};
use finetune_rbac::{Permission, roles, users};

use crate::blocking::with_connection;
use crate::error::ApiError;
use crate::extract::Authenticated;
use crate::state::AppState;

/// The user behind an authorised request.
#[derive(Debug, Clone)]
pub struct Actor {
    /// The user id.
    pub id: i64,
    /// The username now.
    pub username: String,
    /// True when the actor has the `system_admin` role.
    pub is_system_admin: bool,
    /// Every permission the actor has now.
    pub permissions: BTreeSet<Permission>,
}

/// A condition that a request must meet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement {
    /// One permission.
    Permission(Permission),
    /// The `system_admin` role itself, for granting or revoking it.
    SystemAdmin,
}

impl Requirement {
    fn describe(self) -> &'static str {
        match self {
            Self::Permission(permission) => permission.as_str(),
            Self::SystemAdmin => "system_admin",
        }
    }
}

/// Checks that the caller is an active user meeting every requirement, reading the
/// grants as they are now. A deleted or inactive user is 401 `token_not_valid`; a
/// missing permission is 403 `permission_denied` and an `access.denied` entry.
pub async fn authorize(
    state: &AppState,
    context: &RequestContext,
    auth: &Authenticated,
    requirements: &[Requirement],
) -> Result<Actor, ApiError> {
    let user_id = auth.claims.user_id;
    let requirements = requirements.to_vec();
    let context = context.clone();
    let now = state.clock.now();
    with_connection(state, move |connection| {
        let Some(user) = users::find(connection, user_id)?.filter(|user| user.is_active) else {
            return Err(ApiError::token_not_valid());
        };
        let is_system_admin = roles::is_system_admin(connection, user_id)?;
        let permissions = match is_system_admin {
            true => Permission::ALL.into_iter().collect(),
            false => roles::granted_permissions(connection, user_id)?,
        };
        let missing = requirements.iter().copied().find(|requirement| match requirement {
            Requirement::SystemAdmin => !is_system_admin,
            Requirement::Permission(permission) => !permissions.contains(permission),
        });
        let Some(missing) = missing else {
            return Ok(Actor { id: user.id, username: user.username, is_system_admin, permissions });
        };
        deny(connection, user.id, &user.username, missing.describe(), &context, now)
    })
    .await
}

/// Records `access.denied` in its own transaction and returns 403 `permission_denied`.
fn deny<T>(
    connection: &mut DbConnection,
    actor_id: i64,
    actor_username: &str,
    required: &str,
    context: &RequestContext,
    now: DateTime<Utc>,
) -> Result<T, ApiError> {
    let entry = NewEntry::new(Action::AccessDenied, Outcome::Denied)
        .actor(Some(actor_id), Some(actor_username))
        .detail("required", required)
        .detail("method", context.method.clone())
        .detail("path", context.path.clone());
    write_transaction(connection, |connection| record(connection, &entry, context, now))?;
    tracing::info!(required, user_id = actor_id, "permission denied");
    Err(ApiError::new(
        actix_web::http::StatusCode::FORBIDDEN,
        "permission_denied",
        "You do not have permission to perform this action.",
    ))
}

/// The permissions an actor must already have to act on a user or a role.
#[derive(Debug, Clone)]
pub enum Ceiling {
    /// Every permission of this user: no actor may change, deactivate or strip the roles
    /// of a user who has more permissions than the actor, so `users.manage` cannot take over an
    /// administrator's account.
    User(UserId),
    /// Every permission of this role: no actor may grant, create, change or delete a
    /// role that carries more than the actor has.
    Role(String),
    /// These permissions, for a role about to be created or changed.
    Permissions(Vec<Permission>),
}

/// Checks that `actor` has every permission that `ceiling` names, reading the grants
/// now; otherwise records `access.denied` and returns 403. Unknown users and roles pass,
/// so the caller's own lookup returns 404 or 400 for them.
pub async fn ensure_ceiling(
    state: &AppState,
    context: &RequestContext,
    actor: &Actor,
    ceiling: Ceiling,
) -> Result<(), ApiError> {
    if actor.is_system_admin {
        return Ok(());
    }
    let actor = actor.clone();
    let context = context.clone();
    let now = state.clock.now();
    with_connection(state, move |connection| {
        let needed: BTreeSet<Permission> = match &ceiling {
            Ceiling::User(user_id) => roles::permissions_of_user(connection, *user_id)?,
            Ceiling::Role(name) => match roles::permissions_of_role(connection, name) {
                Ok(permissions) => permissions,
                Err(finetune_rbac::RbacError::RoleNotFound(_)) => BTreeSet::new(),
                Err(other) => return Err(other.into()),
            },
            Ceiling::Permissions(permissions) => permissions.iter().copied().collect(),
        };
        let Some(missing) = needed.difference(&actor.permissions).next() else {
            return Ok(());
        };
        deny(connection, actor.id, &actor.username, missing.as_str(), &context, now)
    })
    .await
}
