//! Roles and grants.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use finetune_core::UserId;
use finetune_core::db::DbConnection;
use finetune_core::db::schema::{role_permissions, roles, user_roles};
use finetune_core::user::SYSTEM_ADMIN_ROLE;

use crate::RbacError;
use crate::permissions::Permission;

/// Returns the names of the roles `user_id` holds, sorted.
pub fn role_names(connection: &mut DbConnection, user_id: UserId) -> Result<Vec<String>, RbacError> {
    let names = user_roles::table
        .inner_join(roles::table)
        .filter(user_roles::user_id.eq(user_id.0))
        .select(roles::name)
        .order(roles::name.asc())
        .load::<String>(connection)?;
    Ok(names)
}

/// Grants the role `role_name` to `user_id`; granting a role the user holds is a no-op.
/// Returns true when a grant was added.
pub fn grant(
    connection: &mut DbConnection,
    user_id: UserId,
    role_name: &str,
    now: DateTime<Utc>,
) -> Result<bool, RbacError> {
    let role_id = roles::table
        .filter(roles::name.eq(role_name))
        .select(roles::id)
        .first::<i64>(connection)
        .optional()?
        .ok_or_else(|| RbacError::RoleNotFound(role_name.to_owned()))?;
    let exists = user_roles::table
        .filter(user_roles::user_id.eq(user_id.0))
        .filter(user_roles::role_id.eq(role_id))
        .count()
        .get_result::<i64>(connection)?;
    if exists > 0 {
        return Ok(false);
    }
    diesel::insert_into(user_roles::table)
        .values((
            user_roles::user_id.eq(user_id.0),
            user_roles::role_id.eq(role_id),
            user_roles::granted_at.eq(now.naive_utc()),
        ))
        .execute(connection)?;
    Ok(true)
}

/// Returns true when `user_id` holds `permission` through any role it holds now.
/// `system_admin` holds every permission.
pub fn has_permission(
    connection: &mut DbConnection,
    user_id: UserId,
    permission: Permission,
) -> Result<bool, RbacError> {
    let holders = user_roles::table
        .inner_join(roles::table)
        .left_join(role_permissions::table.on(role_permissions::role_id.eq(roles::id)))
        .filter(user_roles::user_id.eq(user_id.0))
        .filter(roles::name.eq(SYSTEM_ADMIN_ROLE).or(role_permissions::permission.eq(permission.as_str())))
        .count()
        .get_result::<i64>(connection)?;
    Ok(holders > 0)
}
