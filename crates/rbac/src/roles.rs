//! Roles, their permissions, and grants to users.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use finetune_core::UserId;
use finetune_core::db::DbConnection;
use finetune_core::db::schema::{role_permissions, roles, user_roles, users};
use finetune_core::error::CoreError;
use finetune_core::user::SYSTEM_ADMIN_ROLE;
use serde::Serialize;

use crate::RbacError;
use crate::permissions::Permission;

/// The maximum role-name length.
pub const MAX_ROLE_NAME_CHARS: usize = 64;
/// The maximum role-description length.
pub const MAX_DESCRIPTION_CHARS: usize = 1000;

/// A role as the API returns it (`ROLE` in the contract).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoleView {
    /// The unique name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Permission names, sorted. `system_admin` lists every permission.
    pub permissions: Vec<String>,
    /// True for `system_admin`, which cannot be changed or deleted.
    pub builtin: bool,
}

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = roles)]
struct RoleRow {
    id: i64,
    name: String,
    description: String,
    builtin: bool,
}

/// Checks a role name: 1 to 64 characters of lower-case ASCII letters, digits, `_`,
/// `.` and `-`.
pub fn validate_role_name(name: &str) -> Result<(), CoreError> {
    let valid_chars = name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c));
    if name.is_empty() || name.chars().count() > MAX_ROLE_NAME_CHARS || !valid_chars {
        return Err(CoreError::invalid(
            "name",
            format!("Enter 1 to {MAX_ROLE_NAME_CHARS} characters of a-z, 0-9, _ . and -."),
        ));
    }
    Ok(())
}

/// Parses permission names; unknown names are a validation error on `permissions`.
pub fn parse_permissions(names: &[String]) -> Result<Vec<Permission>, CoreError> {
    let mut parsed = Vec::with_capacity(names.len());
    for name in names {
        let Some(permission) = Permission::parse(name) else {
            let known: Vec<&str> = Permission::ALL.iter().map(|p| p.as_str()).collect();
            return Err(CoreError::invalid(
                "permissions",
                format!("Unknown permission {name:?}; expected one of {}.", known.join(", ")),
            ));
        };
        if !parsed.contains(&permission) {
            parsed.push(permission);
        }
    }
    Ok(parsed)
}

fn find_row(connection: &mut DbConnection, name: &str) -> Result<RoleRow, RbacError> {
    roles::table
        .filter(roles::name.eq(name))
        .select(RoleRow::as_select())
        .first(connection)
        .optional()?
        .ok_or_else(|| RbacError::RoleNotFound(name.to_owned()))
}

fn permissions_of(connection: &mut DbConnection, role_id: i64) -> Result<Vec<String>, RbacError> {
    Ok(role_permissions::table
        .filter(role_permissions::role_id.eq(role_id))
        .select(role_permissions::permission)
        .order(role_permissions::permission.asc())
        .load(connection)?)
}

fn to_view(connection: &mut DbConnection, row: RoleRow) -> Result<RoleView, RbacError> {
    let permissions = if row.name == SYSTEM_ADMIN_ROLE {
        let mut all: Vec<String> = Permission::ALL.iter().map(|p| p.as_str().to_owned()).collect();
        all.sort();
        all
    } else {
        permissions_of(connection, row.id)?
    };
    Ok(RoleView { name: row.name, description: row.description, permissions, builtin: row.builtin })
}

/// Returns every role, by name.
pub fn list(connection: &mut DbConnection) -> Result<Vec<RoleView>, RbacError> {
    let rows: Vec<RoleRow> =
        roles::table.select(RoleRow::as_select()).order(roles::name.asc()).load(connection)?;
    rows.into_iter().map(|row| to_view(connection, row)).collect()
}

/// Returns one role.
pub fn get(connection: &mut DbConnection, name: &str) -> Result<RoleView, RbacError> {
    let row = find_row(connection, name)?;
    to_view(connection, row)
}

fn set_permissions(
    connection: &mut DbConnection,
    role_id: i64,
    permissions: &[Permission],
) -> Result<(), RbacError> {
    diesel::delete(role_permissions::table.filter(role_permissions::role_id.eq(role_id)))
        .execute(connection)?;
    for permission in permissions {
        diesel::insert_into(role_permissions::table)
            .values((
                role_permissions::role_id.eq(role_id),
                role_permissions::permission.eq(permission.as_str()),
            ))
            .execute(connection)?;
    }
    Ok(())
}

/// Creates a role. The name must be valid and unused.
pub fn create(
    connection: &mut DbConnection,
    name: &str,
    description: &str,
    permissions: &[Permission],
    now: DateTime<Utc>,
) -> Result<RoleView, RbacError> {
    validate_role_name(name)?;
    if roles::table.filter(roles::name.eq(name)).count().get_result::<i64>(connection)? > 0 {
        return Err(RbacError::RoleExists(name.to_owned()));
    }
    diesel::insert_into(roles::table)
        .values((
            roles::name.eq(name),
            roles::description.eq(description),
            roles::builtin.eq(false),
            roles::created_at.eq(now.naive_utc()),
        ))
        .execute(connection)?;
    let row = find_row(connection, name)?;
    set_permissions(connection, row.id, permissions)?;
    to_view(connection, row)
}

/// Changes a role's description and permissions; `None` leaves a value unchanged.
/// The built-in role cannot be changed.
pub fn update(
    connection: &mut DbConnection,
    name: &str,
    description: Option<&str>,
    permissions: Option<&[Permission]>,
) -> Result<RoleView, RbacError> {
    let row = find_row(connection, name)?;
    if row.builtin {
        return Err(RbacError::BuiltinRole(name.to_owned()));
    }
    if let Some(description) = description {
        diesel::update(roles::table.find(row.id))
            .set(roles::description.eq(description))
            .execute(connection)?;
    }
    if let Some(permissions) = permissions {
        set_permissions(connection, row.id, permissions)?;
    }
    get(connection, name)
}

/// Deletes a role and its grants. The built-in role cannot be deleted.
pub fn delete(connection: &mut DbConnection, name: &str) -> Result<(), RbacError> {
    let row = find_row(connection, name)?;
    if row.builtin {
        return Err(RbacError::BuiltinRole(name.to_owned()));
    }
    diesel::delete(user_roles::table.filter(user_roles::role_id.eq(row.id))).execute(connection)?;
    diesel::delete(role_permissions::table.filter(role_permissions::role_id.eq(row.id)))
        .execute(connection)?;
    diesel::delete(roles::table.find(row.id)).execute(connection)?;
    Ok(())
}

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

/// Returns the role names of many users at once, keyed by user id.
pub fn role_names_of(
    connection: &mut DbConnection,
    user_ids: &[i64],
) -> Result<BTreeMap<i64, Vec<String>>, RbacError> {
    let pairs: Vec<(i64, String)> = user_roles::table
        .inner_join(roles::table)
        .filter(user_roles::user_id.eq_any(user_ids))
        .select((user_roles::user_id, roles::name))
        .order((user_roles::user_id.asc(), roles::name.asc()))
        .load(connection)?;
    let mut map: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    for (user_id, name) in pairs {
        map.entry(user_id).or_default().push(name);
    }
    Ok(map)
}

/// Grants the role `role_name` to `user_id`; granting a role the user has is a no-op.
/// Returns true when a grant was added.
pub fn grant(
    connection: &mut DbConnection,
    user_id: UserId,
    role_name: &str,
    now: DateTime<Utc>,
) -> Result<bool, RbacError> {
    let role = find_row(connection, role_name)?;
    let exists = user_roles::table
        .filter(user_roles::user_id.eq(user_id.0))
        .filter(user_roles::role_id.eq(role.id))
        .count()
        .get_result::<i64>(connection)?;
    if exists > 0 {
        return Ok(false);
    }
    diesel::insert_into(user_roles::table)
        .values((
            user_roles::user_id.eq(user_id.0),
            user_roles::role_id.eq(role.id),
            user_roles::granted_at.eq(now.naive_utc()),
        ))
        .execute(connection)?;
    Ok(true)
}

/// Revokes the role `role_name` from `user_id`. Returns true when a grant was removed.
/// Revoking `system_admin` from the last active holder is [`RbacError::LastSystemAdmin`].
pub fn revoke(connection: &mut DbConnection, user_id: UserId, role_name: &str) -> Result<bool, RbacError> {
    let role = find_row(connection, role_name)?;
    if role.name == SYSTEM_ADMIN_ROLE {
        lock_system_admins(connection)?;
        let holder_is_active = users::table
            .filter(users::id.eq(user_id.0))
            .select(users::is_active)
            .first::<bool>(connection)
            .optional()?
            .unwrap_or(false);
        if holder_is_active && is_system_admin(connection, user_id)? && active_system_admins(connection)? <= 1
        {
            return Err(RbacError::LastSystemAdmin);
        }
    }
    let removed = diesel::delete(
        user_roles::table.filter(user_roles::user_id.eq(user_id.0)).filter(user_roles::role_id.eq(role.id)),
    )
    .execute(connection)?;
    Ok(removed > 0)
}

/// Serialises changes to the set of active system admins on PostgreSQL by locking the
/// `system_admin` row until the transaction ends. SQLite write transactions are
/// serialised already.
pub fn lock_system_admins(connection: &mut DbConnection) -> Result<(), RbacError> {
    if connection.is_postgres() {
        diesel::sql_query("SELECT id FROM roles WHERE name = 'system_admin' FOR UPDATE")
            .execute(connection)?;
    }
    Ok(())
}

/// Returns true when `user_id` has the `system_admin` role.
pub fn is_system_admin(connection: &mut DbConnection, user_id: UserId) -> Result<bool, RbacError> {
    let count = user_roles::table
        .inner_join(roles::table)
        .filter(user_roles::user_id.eq(user_id.0))
        .filter(roles::name.eq(SYSTEM_ADMIN_ROLE))
        .count()
        .get_result::<i64>(connection)?;
    Ok(count > 0)
}

/// Returns the number of active users holding `system_admin`.
pub fn active_system_admins(connection: &mut DbConnection) -> Result<i64, RbacError> {
    Ok(user_roles::table
        .inner_join(roles::table)
        .inner_join(users::table)
        .filter(roles::name.eq(SYSTEM_ADMIN_ROLE))
        .filter(users::is_active.eq(true))
        .count()
        .get_result(connection)?)
}

/// Returns every permission `user_id` has now through its roles. A `system_admin` has
/// them all.
pub fn permissions_of_user(
    connection: &mut DbConnection,
    user_id: UserId,
) -> Result<std::collections::BTreeSet<Permission>, RbacError> {
    if is_system_admin(connection, user_id)? {
        return Ok(Permission::ALL.into_iter().collect());
    }
    granted_permissions(connection, user_id)
}

/// Returns the permissions that the roles of `user_id` carry in `role_permissions`,
/// without the rule that `system_admin` holds every permission.
pub fn granted_permissions(
    connection: &mut DbConnection,
    user_id: UserId,
) -> Result<std::collections::BTreeSet<Permission>, RbacError> {
    let names: Vec<String> = user_roles::table
        .inner_join(role_permissions::table.on(role_permissions::role_id.eq(user_roles::role_id)))
        .filter(user_roles::user_id.eq(user_id.0))
        .select(role_permissions::permission)
        .load(connection)?;
    Ok(names.iter().filter_map(|name| Permission::parse(name)).collect())
}

/// Returns the permissions that role `name` carries; `system_admin` carries them all.
pub fn permissions_of_role(
    connection: &mut DbConnection,
    name: &str,
) -> Result<std::collections::BTreeSet<Permission>, RbacError> {
    let role = get(connection, name)?;
    Ok(role.permissions.iter().filter_map(|name| Permission::parse(name)).collect())
}
