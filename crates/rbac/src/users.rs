//! Users: lookup by canonical username, creation, password and state changes.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use finetune_core::UserId;
use finetune_core::db::DbConnection;
use finetune_core::db::schema::users;
use finetune_core::user::{UserView, canonical_username};

use crate::RbacError;
use crate::roles::role_names;

/// A stored user.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct User {
    /// The id.
    pub id: i64,
    /// The username as given, NFKC-normalized.
    pub username: String,
    /// The email address, if any.
    pub email: Option<String>,
    /// The argon2id PHC string.
    pub password_hash: String,
    /// False once deactivated.
    pub is_active: bool,
    /// When the user was created.
    pub created_at: NaiveDateTime,
}

impl User {
    /// Returns the typed id.
    pub fn user_id(&self) -> UserId {
        UserId(self.id)
    }
}

/// A user to create. `username` must already be normalized and validated.
#[derive(Debug, Clone)]
pub struct NewUser<'a> {
    /// The normalized username.
    pub username: &'a str,
    /// The email address, if any.
    pub email: Option<&'a str>,
    /// The argon2id PHC string.
    pub password_hash: &'a str,
}

/// Finds a user by username, compared in canonical form (NFKC, case-folded).
pub fn find_by_username(connection: &mut DbConnection, username: &str) -> Result<Option<User>, RbacError> {
    let user = users::table
        .filter(users::username_canonical.eq(canonical_username(username)))
        .select(User::as_select())
        .first(connection)
        .optional()?;
    Ok(user)
}

/// Finds a user by id.
pub fn find(connection: &mut DbConnection, user_id: UserId) -> Result<Option<User>, RbacError> {
    let user = users::table.find(user_id.0).select(User::as_select()).first(connection).optional()?;
    Ok(user)
}

/// Returns the number of users.
pub fn count(connection: &mut DbConnection) -> Result<i64, RbacError> {
    Ok(users::table.count().get_result(connection)?)
}

/// Creates a user; errors with [`RbacError::UsernameTaken`] when the canonical username
/// exists.
pub fn create(
    connection: &mut DbConnection,
    new_user: &NewUser<'_>,
    now: DateTime<Utc>,
) -> Result<User, RbacError> {
    let canonical = canonical_username(new_user.username);
    if let Some(_existing) = find_by_username(connection, new_user.username)? {
        return Err(RbacError::UsernameTaken);
    }
    let inserted = diesel::insert_into(users::table)
        .values((
            users::username.eq(new_user.username),
            users::username_canonical.eq(&canonical),
            users::email.eq(new_user.email),
            users::password_hash.eq(new_user.password_hash),
            users::is_active.eq(true),
            users::created_at.eq(now.naive_utc()),
            users::updated_at.eq(now.naive_utc()),
        ))
        .execute(connection);
    match inserted {
        Ok(_) => {}
        Err(diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _)) => {
            return Err(RbacError::UsernameTaken);
        }
        Err(other) => return Err(other.into()),
    }
    find_by_username(connection, new_user.username)?
        .ok_or(RbacError::Core(finetune_core::CoreError::NotFound("user")))
}

/// Replaces the password hash of `user_id`.
pub fn set_password_hash(
    connection: &mut DbConnection,
    user_id: UserId,
    password_hash: &str,
    now: DateTime<Utc>,
) -> Result<(), RbacError> {
    diesel::update(users::table.find(user_id.0))
        .set((users::password_hash.eq(password_hash), users::updated_at.eq(now.naive_utc())))
        .execute(connection)?;
    Ok(())
}

/// Returns the API view of `user` with its current roles.
pub fn view(connection: &mut DbConnection, user: &User) -> Result<UserView, RbacError> {
    Ok(UserView {
        id: user.user_id(),
        username: user.username.clone(),
        email: user.email.clone(),
        roles: role_names(connection, user.user_id())?,
        is_active: user.is_active,
    })
}

/// Filters of the user list.
#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    /// Usernames containing this text, compared in canonical form.
    pub username: Option<String>,
    /// Users holding this role.
    pub role: Option<String>,
    /// Active or inactive users.
    pub is_active: Option<bool>,
}

/// Escapes `%`, `_` and `\` for a LIKE pattern with `\` as the escape character.
fn like_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// Lists users by ascending id after `after_id`, at most `limit` of them.
pub fn list(
    connection: &mut DbConnection,
    filter: &UserFilter,
    after_id: Option<i64>,
    limit: i64,
) -> Result<Vec<User>, RbacError> {
    use finetune_core::db::schema::{roles, user_roles};

    let mut query = users::table.select(User::as_select()).into_boxed();
    if let Some(after_id) = after_id {
        query = query.filter(users::id.gt(after_id));
    }
    if let Some(username) = &filter.username {
        let pattern = format!("%{}%", like_escape(&canonical_username(username)));
        query = query.filter(users::username_canonical.like(pattern).escape('\\'));
    }
    if let Some(is_active) = filter.is_active {
        query = query.filter(users::is_active.eq(is_active));
    }
    if let Some(role) = &filter.role {
        let holders = user_roles::table
            .inner_join(roles::table)
            .filter(roles::name.eq(role.clone()))
            .select(user_roles::user_id);
        query = query.filter(users::id.eq_any(holders));
    }
    Ok(query.order(users::id.asc()).limit(limit).load(connection)?)
}

/// Returns the API views of many users, loading their roles in one query.
pub fn views(connection: &mut DbConnection, list: &[User]) -> Result<Vec<UserView>, RbacError> {
    let ids: Vec<i64> = list.iter().map(|user| user.id).collect();
    let mut roles = crate::roles::role_names_of(connection, &ids)?;
    Ok(list
        .iter()
        .map(|user| UserView {
            id: user.user_id(),
            username: user.username.clone(),
            email: user.email.clone(),
            roles: roles.remove(&user.id).unwrap_or_default(),
            is_active: user.is_active,
        })
        .collect())
}

/// Sets the email (`Some(None)` clears it).
pub fn set_email(
    connection: &mut DbConnection,
    user_id: UserId,
    email: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), RbacError> {
    diesel::update(users::table.find(user_id.0))
        .set((users::email.eq(email), users::updated_at.eq(now.naive_utc())))
        .execute(connection)?;
    Ok(())
}

/// Activates or deactivates a user. Deactivating the last active `system_admin` is
/// [`RbacError::LastSystemAdmin`].
pub fn set_active(
    connection: &mut DbConnection,
    user_id: UserId,
    is_active: bool,
    now: DateTime<Utc>,
) -> Result<(), RbacError> {
    if !is_active {
        crate::roles::lock_system_admins(connection)?;
        let was_active = find(connection, user_id)?.is_some_and(|user| user.is_active);
        if was_active
            && crate::roles::is_system_admin(connection, user_id)?
            && crate::roles::active_system_admins(connection)? <= 1
        {
            return Err(RbacError::LastSystemAdmin);
        }
    }
    diesel::update(users::table.find(user_id.0))
        .set((users::is_active.eq(is_active), users::updated_at.eq(now.naive_utc())))
        .execute(connection)?;
    Ok(())
}

/// The counter bumped by every change to what a user's view shows (roles, email,
/// active state).
const USER_STATE_COUNTER: &str = "user_state";

/// Bumps the user-state counter; call it inside the transaction of the change, so
/// instances that cache user views see the new value once the change commits.
pub fn bump_user_state_version(connection: &mut DbConnection) -> Result<(), RbacError> {
    use finetune_core::db::schema::change_counters;
    diesel::update(change_counters::table.find(USER_STATE_COUNTER))
        .set(change_counters::value.eq(change_counters::value + 1))
        .execute(connection)?;
    Ok(())
}

/// Returns the user-state counter.
pub fn user_state_version(connection: &mut DbConnection) -> Result<i64, RbacError> {
    use finetune_core::db::schema::change_counters;
    Ok(change_counters::table
        .find(USER_STATE_COUNTER)
        .select(change_counters::value)
        .first::<i64>(connection)
        .optional()?
        .unwrap_or(0))
}

/// Returns the view of `user_id` when the user exists and is active, reading the user
/// and its roles in one query.
pub fn active_view(connection: &mut DbConnection, user_id: UserId) -> Result<Option<UserView>, RbacError> {
    use finetune_core::db::schema::{roles, user_roles};

    let rows: Vec<(User, Option<String>)> = users::table
        .left_join(user_roles::table.on(user_roles::user_id.eq(users::id)))
        .left_join(roles::table.on(roles::id.eq(user_roles::role_id)))
        .filter(users::id.eq(user_id.0))
        .filter(users::is_active.eq(true))
        .select((User::as_select(), roles::name.nullable()))
        .order(roles::name.asc())
        .load(connection)?;
    let Some((user, _)) = rows.first() else {
        return Ok(None);
    };
    Ok(Some(UserView {
        id: user.user_id(),
        username: user.username.clone(),
        email: user.email.clone(),
        roles: rows.iter().filter_map(|(_, role)| role.clone()).collect(),
        is_active: user.is_active,
    }))
}
