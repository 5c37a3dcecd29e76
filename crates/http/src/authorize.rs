//! Permission checks against the current grants, with `access.denied` audited.

use finetune_activity::{Action, NewEntry, Outcome, record};
use finetune_core::RequestContext;
use finetune_core::db::write_transaction;
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
    /// True when the actor holds `system_admin`.
    pub is_system_admin: bool,
}

/// What a request needs.
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
        let mut missing = None;
        for requirement in &requirements {
            let met = match requirement {
                Requirement::SystemAdmin => is_system_admin,
                Requirement::Permission(permission) => {
                    is_system_admin || roles::has_permission(connection, user_id, *permission)?
                }
            };
            if !met {
                missing = Some(*requirement);
                break;
            }
        }
        let Some(missing) = missing else {
            return Ok(Actor { id: user.id, username: user.username, is_system_admin });
        };

        let entry = NewEntry::new(Action::AccessDenied, Outcome::Denied)
            .actor(Some(user.id), Some(&user.username))
            .detail("required", missing.describe())
            .detail("method", context.method.clone())
            .detail("path", context.path.clone());
        write_transaction(connection, |connection| record(connection, &entry, &context, now))?;
        tracing::info!(required = missing.describe(), user_id = user.id, "permission denied");
        Err(ApiError::new(
            actix_web::http::StatusCode::FORBIDDEN,
            "permission_denied",
            "You do not have permission to perform this action.",
        ))
    })
    .await
}
