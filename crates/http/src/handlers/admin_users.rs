//! `/api/admin/users/`: list, create, read and update users; grant and revoke roles.

use actix_web::{HttpResponse, web};
use finetune_activity::{Action, NewEntry, Outcome, record};
use finetune_auth::refresh::{self, RevokeReason};
use finetune_core::UserId;
use finetune_core::db::write_transaction;
use finetune_core::user::{SYSTEM_ADMIN_ROLE, normalize_username, validate_email, validate_new_password};
use finetune_rbac::users::{self, NewUser, UserFilter};
use finetune_rbac::{Permission, RbacError, roles};
use serde::{Deserialize, Deserializer};

use crate::authorize::{Ceiling, Requirement, authorize, ensure_ceiling};
use crate::blocking::{hashing, with_connection};
use crate::error::ApiError;
use crate::extract::{Authenticated, Context, required};
use crate::pagination::{decode_cursor, encode_cursor, parse_bool, parse_limit};
use crate::state::AppState;

const USERS_MANAGE: Requirement = Requirement::Permission(Permission::UsersManage);
const ROLES_MANAGE: Requirement = Requirement::Permission(Permission::RolesManage);

/// The query of the user list.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    username: Option<String>,
    role: Option<String>,
    is_active: Option<String>,
    cursor: Option<String>,
    limit: Option<String>,
}

/// `GET /api/admin/users/`.
pub async fn list(
    state: web::Data<AppState>,
    context: Context,
    auth: Authenticated,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    authorize(&state, &context.0, &auth, &[USERS_MANAGE]).await?;
    let query = query.into_inner();
    let filter = UserFilter {
        username: query.username.filter(|v| !v.is_empty()),
        role: query.role.filter(|v| !v.is_empty()),
        is_active: query
            .is_active
            .filter(|v| !v.is_empty())
            .map(|v| parse_bool("is_active", &v))
            .transpose()?,
    };
    let after_id = query.cursor.filter(|v| !v.is_empty()).map(|c| decode_cursor(&c)).transpose()?;
    let limit = parse_limit(query.limit.as_deref())?;

    let (views, next) = with_connection(&state, move |connection| {
        let page = users::list(connection, &filter, after_id, limit + 1)?;
        let has_more = page.len() as i64 > limit;
        let page = &page[..page.len().min(limit as usize)];
        let next = if has_more { page.last().map(|user| encode_cursor(user.id)) } else { None };
        Ok((users::views(connection, page)?, next))
    })
    .await?;

    Ok(HttpResponse::Ok().json(serde_json::json!({"results": views, "next": next})))
}

/// The body of a user creation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    username: Option<String>,
    password: Option<String>,
    email: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
}

/// `POST /api/admin/users/`: 201 USER. Granting roles here needs `roles.manage` too,
/// and granting `system_admin` needs `system_admin`.
pub async fn create(
    state: web::Data<AppState>,
    context: Context,
    auth: Authenticated,
    body: web::Json<CreateBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let mut requirements = vec![USERS_MANAGE];
    if !body.roles.is_empty() {
        requirements.push(ROLES_MANAGE);
    }
    if body.roles.iter().any(|role| role == SYSTEM_ADMIN_ROLE) {
        requirements.push(Requirement::SystemAdmin);
    }
    let actor = authorize(&state, &context.0, &auth, &requirements).await?;
    let mut role_names = body.roles;
    role_names.sort();
    role_names.dedup();
    for role in &role_names {
        ensure_ceiling(&state, &context.0, &actor, Ceiling::Role(role.clone())).await?;
    }

    let username = normalize_username(&required(body.username, "username")?)?;
    let password = required(body.password, "password")?;
    validate_new_password(&password, &username, "password")?;
    let email = body.email.filter(|email| !email.is_empty());
    if let Some(email) = &email {
        validate_email(email)?;
    }
    let passwords = state.passwords.clone();
    let password_hash = hashing(&state, move || Ok(passwords.hash(&password)?)).await?;

    let now = state.clock.now();
    let context = context.0.clone();
    let view = with_connection(&state, move |connection| {
        write_transaction(connection, |connection| {
            let new_user =
                NewUser { username: &username, email: email.as_deref(), password_hash: &password_hash };
            let user = users::create(connection, &new_user, now)?;
            let created = NewEntry::new(Action::UserCreate, Outcome::Success)
                .actor(Some(actor.id), Some(&actor.username))
                .target("user", user.id)
                .detail("username", user.username.clone());
            record(connection, &created, &context, now)?;
            for role in &role_names {
                match roles::grant(connection, user.user_id(), role, now) {
                    Err(RbacError::RoleNotFound(name)) => {
                        return Err(ApiError::invalid_field("roles", format!("Unknown role {name:?}.")));
                    }
                    other => other?,
                };
                let granted = NewEntry::new(Action::RoleGrant, Outcome::Success)
                    .actor(Some(actor.id), Some(&actor.username))
                    .target("user", user.id)
                    .detail("role", role.clone());
                record(connection, &granted, &context, now)?;
            }
            Ok(users::view(connection, &user)?)
        })
    })
    .await?;

    Ok(HttpResponse::Created().json(view))
}

fn parse_user_id(raw: &str) -> Result<UserId, ApiError> {
    raw.parse::<i64>().map(UserId).map_err(|_| ApiError::not_found())
}

/// `GET /api/admin/users/{id}/`.
pub async fn read(
    state: web::Data<AppState>,
    context: Context,
    auth: Authenticated,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    authorize(&state, &context.0, &auth, &[USERS_MANAGE]).await?;
    let user_id = parse_user_id(&path)?;

    let view = with_connection(&state, move |connection| {
        let user = users::find(connection, user_id)?.ok_or(RbacError::UserNotFound(user_id.0))?;
        Ok(users::view(connection, &user)?)
    })
    .await?;

    Ok(HttpResponse::Ok().json(view))
}

/// Distinguishes an absent field (`None`) from an explicit `null` (`Some(None)`).
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// The body of a user update; absent fields stay unchanged.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateBody {
    #[serde(default, deserialize_with = "present")]
    email: Option<Option<String>>,
    is_active: Option<bool>,
    password: Option<String>,
}

/// `PATCH /api/admin/users/{id}/`: email, active state, password. A new password or a
/// deactivation revokes every refresh token of the user.
pub async fn update(
    state: web::Data<AppState>,
    context: Context,
    auth: Authenticated,
    path: web::Path<String>,
    body: web::Json<UpdateBody>,
) -> Result<HttpResponse, ApiError> {
    let actor = authorize(&state, &context.0, &auth, &[USERS_MANAGE]).await?;
    let user_id = parse_user_id(&path)?;
    ensure_ceiling(&state, &context.0, &actor, Ceiling::User(user_id)).await?;
    let body = body.into_inner();
    let email = body.email.map(|email| email.filter(|e| !e.is_empty()));
    if let Some(Some(email)) = &email {
        validate_email(email)?;
    }

    let user = with_connection(&state, move |connection| {
        Ok(users::find(connection, user_id)?.ok_or(RbacError::UserNotFound(user_id.0))?)
    })
    .await?;
    let password_hash = match body.password {
        Some(password) => {
            validate_new_password(&password, &user.username, "password")?;
            let passwords = state.passwords.clone();
            Some(hashing(&state, move || Ok(passwords.hash(&password)?)).await?)
        }
        None => None,
    };

    let now = state.clock.now();
    let context = context.0.clone();
    let is_active = body.is_active;
    let view = with_connection(&state, move |connection| {
        write_transaction(connection, |connection| {
            users::bump_user_state_version(connection)?;
            let mut changed = Vec::new();
            if let Some(email) = &email {
                users::set_email(connection, user_id, email.as_deref(), now)?;
                changed.push("email");
            }
            if let Some(password_hash) = &password_hash {
                users::set_password_hash(connection, user_id, password_hash, now)?;
                refresh::revoke_all_for_user(connection, user_id, now, RevokeReason::PasswordChange)?;
                changed.push("password");
            }
            let deactivated = is_active == Some(false) && user.is_active;
            if let Some(is_active) = is_active.filter(|active| *active != user.is_active) {
                users::set_active(connection, user_id, is_active, now)?;
                if !is_active {
                    refresh::revoke_all_for_user(connection, user_id, now, RevokeReason::Deactivated)?;
                } else {
                    changed.push("is_active");
                }
            }
            if deactivated {
                let entry = NewEntry::new(Action::UserDeactivate, Outcome::Success)
                    .actor(Some(actor.id), Some(&actor.username))
                    .target("user", user_id);
                record(connection, &entry, &context, now)?;
            }
            if !changed.is_empty() {
                let entry = NewEntry::new(Action::UserUpdate, Outcome::Success)
                    .actor(Some(actor.id), Some(&actor.username))
                    .target("user", user_id)
                    .detail("fields", changed);
                record(connection, &entry, &context, now)?;
            }
            let user = users::find(connection, user_id)?.ok_or(RbacError::UserNotFound(user_id.0))?;
            Ok(users::view(connection, &user)?)
        })
    })
    .await?;
    state.user_cache.clear();

    Ok(HttpResponse::Ok().json(view))
}

/// The body of a grant.
#[derive(Debug, Deserialize)]
pub struct GrantBody {
    role: Option<String>,
}

fn role_requirements(role: &str) -> Vec<Requirement> {
    match role == SYSTEM_ADMIN_ROLE {
        true => vec![ROLES_MANAGE, Requirement::SystemAdmin],
        false => vec![ROLES_MANAGE],
    }
}

/// `POST /api/admin/users/{id}/roles/`: 204.
pub async fn grant(
    state: web::Data<AppState>,
    context: Context,
    auth: Authenticated,
    path: web::Path<String>,
    body: web::Json<GrantBody>,
) -> Result<HttpResponse, ApiError> {
    authorize(&state, &context.0, &auth, &[ROLES_MANAGE]).await?;
    let role = required(body.into_inner().role, "role")?;
    let actor = authorize(&state, &context.0, &auth, &role_requirements(&role)).await?;
    let user_id = parse_user_id(&path)?;
    ensure_ceiling(&state, &context.0, &actor, Ceiling::Role(role.clone())).await?;

    let now = state.clock.now();
    let context = context.0.clone();
    with_connection(&state, move |connection| {
        write_transaction(connection, |connection| {
            users::find(connection, user_id)?.ok_or(RbacError::UserNotFound(user_id.0))?;
            users::bump_user_state_version(connection)?;
            let added = match roles::grant(connection, user_id, &role, now) {
                Err(RbacError::RoleNotFound(name)) => {
                    return Err(ApiError::invalid_field("role", format!("Unknown role {name:?}.")));
                }
                other => other?,
            };
            if added {
                let entry = NewEntry::new(Action::RoleGrant, Outcome::Success)
                    .actor(Some(actor.id), Some(&actor.username))
                    .target("user", user_id)
                    .detail("role", role.clone());
                record(connection, &entry, &context, now)?;
            }
            Ok(())
        })
    })
    .await?;
    state.user_cache.clear();

    Ok(HttpResponse::NoContent().finish())
}

/// `DELETE /api/admin/users/{id}/roles/{role}/`: 204.
pub async fn revoke(
    state: web::Data<AppState>,
    context: Context,
    auth: Authenticated,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (raw_id, role) = path.into_inner();
    let actor = authorize(&state, &context.0, &auth, &role_requirements(&role)).await?;
    let user_id = parse_user_id(&raw_id)?;
    ensure_ceiling(&state, &context.0, &actor, Ceiling::User(user_id)).await?;
    ensure_ceiling(&state, &context.0, &actor, Ceiling::Role(role.clone())).await?;

    let now = state.clock.now();
    let context = context.0.clone();
    with_connection(&state, move |connection| {
        write_transaction(connection, |connection| {
            users::find(connection, user_id)?.ok_or(RbacError::UserNotFound(user_id.0))?;
            users::bump_user_state_version(connection)?;
            if roles::revoke(connection, user_id, &role)? {
                let entry = NewEntry::new(Action::RoleRevoke, Outcome::Success)
                    .actor(Some(actor.id), Some(&actor.username))
                    .target("user", user_id)
                    .detail("role", role.clone());
                record(connection, &entry, &context, now)?;
            }
            Ok(())
        })
    })
    .await?;
    state.user_cache.clear();

    Ok(HttpResponse::NoContent().finish())
}
