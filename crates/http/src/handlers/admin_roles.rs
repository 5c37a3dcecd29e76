//! `/api/admin/roles/`: list, create, read, update and delete roles.

use actix_web::{HttpResponse, web};
use finetune_activity::{Action, NewEntry, Outcome, record};
use finetune_core::db::write_transaction;
use finetune_rbac::roles::{self, MAX_DESCRIPTION_CHARS, parse_permissions};
use finetune_rbac::{Permission, RbacError};
use serde::Deserialize;

use crate::authorize::{Actor, Ceiling, Requirement, authorize, ensure_ceiling};
use crate::blocking::with_connection;
use crate::error::ApiError;
use crate::extract::{Authenticated, Context, required};
use crate::state::AppState;

const ROLES_MANAGE: Requirement = Requirement::Permission(Permission::RolesManage);

fn check_description(description: &str) -> Result<(), ApiError> {
    if description.contains('\0') {
        return Err(ApiError::invalid_field(
            "description",
            "The description must not contain NUL characters.",
        ));
    }
    if description.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(ApiError::invalid_field(
            "description",
            format!("Ensure this field has no more than {MAX_DESCRIPTION_CHARS} characters."),
        ));
    }
    Ok(())
}

fn entry(action: Action, actor: &Actor, name: &str) -> NewEntry {
    NewEntry::new(action, Outcome::Success).actor(Some(actor.id), Some(&actor.username)).target("role", name)
}

/// `GET /api/admin/roles/`.
pub async fn list(
    state: web::Data<AppState>,
    context: Context,
    auth: Authenticated,
) -> Result<HttpResponse, ApiError> {
    authorize(&state, &context.0, &auth, &[ROLES_MANAGE]).await?;

    let roles = with_connection(&state, |connection| Ok(roles::list(connection)?)).await?;

    Ok(HttpResponse::Ok().json(serde_json::json!({"results": roles, "next": null})))
}

/// The body of a role creation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    name: Option<String>,
    #[serde(default)]
    description: String,
    #[serde(default)]
    permissions: Vec<String>,
}

/// `POST /api/admin/roles/`: 201 ROLE.
pub async fn create(
    state: web::Data<AppState>,
    context: Context,
    auth: Authenticated,
    body: web::Json<CreateBody>,
) -> Result<HttpResponse, ApiError> {
    let actor = authorize(&state, &context.0, &auth, &[ROLES_MANAGE]).await?;
    let body = body.into_inner();
    let name = required(body.name, "name")?;
    roles::validate_role_name(&name)?;
    check_description(&body.description)?;
    let permissions = parse_permissions(&body.permissions)?;
    ensure_ceiling(&state, &context.0, &actor, Ceiling::Permissions(permissions.clone())).await?;

    let now = state.clock.now();
    let context = context.0.clone();
    let role = with_connection(&state, move |connection| {
        write_transaction(connection, |connection| {
            let role = roles::create(connection, &name, &body.description, &permissions, now)?;
            let created =
                entry(Action::RoleCreate, &actor, &name).detail("permissions", role.permissions.clone());
            record(connection, &created, &context, now)?;
            Ok(role)
        })
    })
    .await?;

    Ok(HttpResponse::Created().json(role))
}

/// `GET /api/admin/roles/{name}/`.
pub async fn read(
    state: web::Data<AppState>,
    context: Context,
    auth: Authenticated,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    authorize(&state, &context.0, &auth, &[ROLES_MANAGE]).await?;
    let name = path.into_inner();

    let role = with_connection(&state, move |connection| Ok(roles::get(connection, &name)?)).await?;

    Ok(HttpResponse::Ok().json(role))
}

/// The body of a role update; absent fields stay unchanged.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateBody {
    description: Option<String>,
    permissions: Option<Vec<String>>,
}

/// `PATCH /api/admin/roles/{name}/`. The built-in role cannot be changed (409).
pub async fn update(
    state: web::Data<AppState>,
    context: Context,
    auth: Authenticated,
    path: web::Path<String>,
    body: web::Json<UpdateBody>,
) -> Result<HttpResponse, ApiError> {
    let actor = authorize(&state, &context.0, &auth, &[ROLES_MANAGE]).await?;
    let name = path.into_inner();
    let body = body.into_inner();
    if let Some(description) = &body.description {
        check_description(description)?;
    }
    let permissions = body.permissions.as_deref().map(parse_permissions).transpose()?;
    ensure_ceiling(&state, &context.0, &actor, Ceiling::Role(name.clone())).await?;
    if let Some(permissions) = &permissions {
        ensure_ceiling(&state, &context.0, &actor, Ceiling::Permissions(permissions.clone())).await?;
    }

    let now = state.clock.now();
    let context = context.0.clone();
    let role = with_connection(&state, move |connection| {
        write_transaction(connection, |connection| {
            let role = roles::update(connection, &name, body.description.as_deref(), permissions.as_deref())?;
            let updated =
                entry(Action::RoleUpdate, &actor, &name).detail("permissions", role.permissions.clone());
            record(connection, &updated, &context, now)?;
            Ok(role)
        })
    })
    .await?;

    Ok(HttpResponse::Ok().json(role))
}

/// `DELETE /api/admin/roles/{name}/`: 204; grants of the role go with it. The built-in
/// role cannot be deleted (409).
pub async fn delete(
    state: web::Data<AppState>,
    context: Context,
    auth: Authenticated,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let actor = authorize(&state, &context.0, &auth, &[ROLES_MANAGE]).await?;
    let name = path.into_inner();
    ensure_ceiling(&state, &context.0, &actor, Ceiling::Role(name.clone())).await?;

    let now = state.clock.now();
    let context = context.0.clone();
    with_connection(&state, move |connection| {
        write_transaction(connection, |connection| {
            finetune_rbac::users::bump_user_state_version(connection)?;
            match roles::delete(connection, &name) {
                Err(RbacError::RoleNotFound(_)) => return Err(ApiError::not_found()),
                other => other?,
            }
            record(connection, &entry(Action::RoleDelete, &actor, &name), &context, now)?;
            Ok(())
        })
    })
    .await?;
    state.user_cache.clear();

    Ok(HttpResponse::NoContent().finish())
}
