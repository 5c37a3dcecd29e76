//! The authentication use cases. Each opens its own transaction and writes the audit
//! entry of the operation inside it.

use std::sync::Arc;

use actix_web::http::StatusCode;
use chrono::{DateTime, Utc};
use finetune_activity::{Action, NewEntry, Outcome, record};
use finetune_auth::refresh::{self, IssuedRefreshToken, RevokeReason, Rotation};
use finetune_auth::{AuthError, IssuedAccessToken, TokenRejection};
use finetune_core::db::{DbConnection, write_transaction};
use finetune_core::user::{UserView, validate_new_password};
use finetune_core::{RequestContext, UserId};
use finetune_rbac::users;

use crate::blocking::{hashing, with_connection};
use crate::error::ApiError;
use crate::one_statement::{self, OneStatementRotation, SessionStart};
use crate::state::AppState;

/// A signed-in session: the user and a fresh token pair.
#[derive(Debug)]
pub struct Session {
    /// The user, with current roles.
    pub user: UserView,
    /// The new access token.
    pub access: IssuedAccessToken,
    /// The new refresh token.
    pub refresh: IssuedRefreshToken,
}

fn audit(
    connection: &mut DbConnection,
    entry: NewEntry,
    context: &RequestContext,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    record(connection, &entry, context, now).map_err(ApiError::from)
}

fn issue_access(
    state: &AppState,
    user: &UserView,
    now: DateTime<Utc>,
) -> Result<IssuedAccessToken, ApiError> {
    Ok(state.tokens.issue(user.id, &user.roles, now)?)
}

/// The cause of a failed login, for the log and the audit entry; the client never sees it.
#[derive(Debug, Clone, Copy)]
enum LoginFailure {
    UnknownUser,
    WrongPassword,
    Inactive,
}

impl LoginFailure {
    fn as_str(self) -> &'static str {
        match self {
            Self::UnknownUser => "unknown_user",
            Self::WrongPassword => "wrong_password",
            Self::Inactive => "inactive_user",
        }
    }
}

/// Checks a username and password and starts a session (a new refresh family).
///
/// Every failure returns the same `invalid_credentials` after the same argon2 work;
/// the precise cause goes to the log and the audit entry.
pub async fn login(
    state: &AppState,
    context: &RequestContext,
    username: String,
    password: String,
) -> Result<Session, ApiError> {
    // Read before the user is, so a change to the user after that keeps this login's
    // view out of the cache.
    let generation = state.user_cache.generation();
    let lookup = username.clone();
    let found = with_connection(state, move |connection| {
        // No stored username contains NUL, and PostgreSQL rejects it in a query.
        if lookup.contains('\0') {
            return Ok(None);
        }
        Ok(users::find_by_username(connection, &lookup)?)
    })
    .await?;

    let passwords = state.passwords.clone();
    let candidate = found.clone();
    let failure = hashing(state, move || {
        let failure = match &candidate {
            None => {
                passwords.verify_dummy(&password);
                Some(LoginFailure::UnknownUser)
            }
            Some(user) => {
                let matches = passwords.verify(&password, &user.password_hash);
                match (matches, user.is_active) {
                    (false, _) => Some(LoginFailure::WrongPassword),
                    (true, false) => Some(LoginFailure::Inactive),
                    (true, true) => None,
                }
            }
        };
        Ok(failure)
    })
    .await?;

    let now = state.clock.now();
    let lifetime = state.refresh_lifetime;
    let context = context.clone();
    let cache = Arc::clone(&state.user_cache);
    let outcome = with_connection(state, move |connection| {
        let success_entry = |user: &users::User| {
            NewEntry::new(Action::Login, Outcome::Success)
                .actor(Some(user.id), Some(&user.username))
                .target("user", user.id)
        };
        let mut failure = failure;
        if let (None, Some(user)) = (failure, &found) {
            let entry = success_entry(user);
            // The statement returns the view too, so nothing can fail after its commit.
            match one_statement::start_session(connection, user, &entry, now, lifetime, &context)? {
                SessionStart::Started(refresh, view) => {
                    cache.insert(view.clone(), generation);
                    return Ok(Ok((view, refresh)));
                }
                SessionStart::Inactive => failure = Some(LoginFailure::Inactive),
                SessionStart::NotPostgresql => {}
            }
        }

        write_transaction(connection, |connection| {
            // The user may have been deactivated or deleted since the lookup; the write
            // lock of this transaction orders this read after such a change.
            let failure = match (failure, &found) {
                (None, Some(user)) => match users::find(connection, user.user_id())? {
                    Some(current) if current.is_active => None,
                    Some(_) => Some(LoginFailure::Inactive),
                    None => Some(LoginFailure::UnknownUser),
                },
                (failure, _) => failure,
            };
            match (failure, &found) {
                (None, Some(user)) => {
                    let refresh = refresh::issue(connection, user.user_id(), None, now, lifetime)?;
                    audit(connection, success_entry(user), &context, now)?;
                    Ok(Ok((users::view(connection, user)?, refresh)))
                }
                (failure, user) => {
                    let reason = failure.unwrap_or(LoginFailure::UnknownUser);
                    let entry = NewEntry::new(Action::Login, Outcome::Failure)
                        .actor(user.as_ref().map(|u| u.id), Some(&username))
                        .detail("reason", reason.as_str());
                    audit(connection, entry, &context, now)?;
                    Ok(Err(reason))
                }
            }
        })
    })
    .await?;

    match outcome {
        Ok((user, refresh)) => {
            let access = issue_access(state, &user, now)?;
            Ok(Session { user, access, refresh })
        }
        Err(reason) => {
            tracing::info!(reason = reason.as_str(), "login failed");
            Err(ApiError::invalid_credentials())
        }
    }
}

/// The result of a rotation inside its transaction.
enum RefreshOutcome {
    Rotated(UserView, IssuedRefreshToken),
    Reused,
    Rejected(TokenRejection),
}

/// Revokes `family_id` of a user found inactive during a rotation and records the
/// failed `auth.refresh`.
fn reject_inactive(
    connection: &mut DbConnection,
    user_id: UserId,
    family_id: &str,
    context: &RequestContext,
    now: DateTime<Utc>,
) -> Result<RefreshOutcome, ApiError> {
    refresh::revoke_family(connection, family_id, now, RevokeReason::Deactivated)?;
    let entry = NewEntry::new(Action::Refresh, Outcome::Failure)
        .actor(Some(user_id.0), None)
        .detail("reason", TokenRejection::InactiveUser.as_str());
    audit(connection, entry, context, now)?;
    Ok(RefreshOutcome::Rejected(TokenRejection::InactiveUser))
}

/// Rotates a refresh token: a new pair in the same family, or `token_reused` (the
/// family is revoked and that revocation is committed), or `token_not_valid`. On
/// PostgreSQL the common case is one statement ([`crate::one_statement`]); the rest runs in
/// a transaction.
pub async fn refresh(
    state: &AppState,
    context: &RequestContext,
    presented: String,
) -> Result<Session, ApiError> {
    let now = state.clock.now();
    let lifetime = state.refresh_lifetime;
    let context = context.clone();
    let cache = Arc::clone(&state.user_cache);
    let generation = cache.generation();
    let outcome = with_connection(state, move |connection| {
        match one_statement::rotate(connection, &presented, now, lifetime, &context)? {
            // The statement returns the view too, so nothing can fail after its commit.
            OneStatementRotation::Rotated { user, successor } => {
                cache.insert(user.clone(), generation);
                return Ok(RefreshOutcome::Rotated(user, successor));
            }
            OneStatementRotation::InactiveOwner { user_id, family_id } => {
                return write_transaction(connection, |connection| {
                    reject_inactive(connection, user_id, &family_id, &context, now)
                });
            }
            OneStatementRotation::NotClaimed => {}
        }

        write_transaction(connection, |connection| {
            match refresh::rotate(connection, &presented, now, lifetime) {
                Ok(Rotation::Rotated { user_id, successor }) => {
                    // The cache contains active users only, and a change to a user clears it.
                    let user = match cache.get(user_id) {
                        Some(view) => Some(view),
                        None => users::active_view(connection, user_id)?,
                    };
                    let Some(user) = user else {
                        return reject_inactive(connection, user_id, &successor.family_id, &context, now);
                    };
                    let entry = NewEntry::new(Action::Refresh, Outcome::Success)
                        .actor(Some(user.id.0), Some(&user.username));
                    audit(connection, entry, &context, now)?;
                    cache.insert(user.clone(), generation);
                    Ok(RefreshOutcome::Rotated(user, successor))
                }
                Ok(Rotation::Reused { user_id, family_id }) => {
                    let username = users::find(connection, user_id)?.map(|user| user.username);
                    let entry = NewEntry::new(Action::TokenReuse, Outcome::Failure)
                        .actor(Some(user_id.0), username.as_deref())
                        .detail("family_id", family_id);
                    audit(connection, entry, &context, now)?;
                    Ok(RefreshOutcome::Reused)
                }
                Err(AuthError::TokenNotValid(reason)) => {
                    let entry =
                        NewEntry::new(Action::Refresh, Outcome::Failure).detail("reason", reason.as_str());
                    audit(connection, entry, &context, now)?;
                    Ok(RefreshOutcome::Rejected(reason))
                }
                Err(other) => Err(ApiError::from(other)),
            }
        })
    })
    .await?;

    match outcome {
        RefreshOutcome::Rotated(user, refresh) => {
            let access = issue_access(state, &user, now)?;
            Ok(Session { user, access, refresh })
        }
        RefreshOutcome::Reused => {
            tracing::warn!("refresh token reused; family revoked");
            Err(ApiError::token_reused())
        }
        RefreshOutcome::Rejected(reason) => Err(AuthError::TokenNotValid(reason).into()),
    }
}

/// Ends a session: revokes the family of `presented` when given. Records `auth.logout`
/// when a session was found or the caller is known.
pub async fn logout(
    state: &AppState,
    context: &RequestContext,
    presented: Option<String>,
    caller: Option<UserId>,
) -> Result<(), ApiError> {
    let now = state.clock.now();
    let context = context.clone();
    with_connection(state, move |connection| {
        write_transaction(connection, |connection| {
            let revoked = match &presented {
                Some(token) => refresh::revoke_presented(connection, token, now, RevokeReason::Logout)?,
                None => None,
            };
            let actor = revoked.as_ref().map(|(user_id, _)| *user_id).or(caller);
            let Some(actor) = actor else {
                return Ok(());
            };
            let username = users::find(connection, actor)?.map(|user| user.username);
            let entry = NewEntry::new(Action::Logout, Outcome::Success)
                .actor(Some(actor.0), username.as_deref())
                .detail("session_revoked", revoked.is_some());
            audit(connection, entry, &context, now)
        })
    })
    .await
}

/// Blacklists a refresh token through the token API: its family is revoked. A used
/// token is reuse; an unknown, revoked or expired one is `token_not_valid`.
pub async fn blacklist(
    state: &AppState,
    context: &RequestContext,
    presented: String,
) -> Result<(), ApiError> {
    let now = state.clock.now();
    let context = context.clone();
    with_connection(state, move |connection| {
        let result = write_transaction(connection, |connection| {
            let (user_id, family_id, usable) = match refresh::inspect(connection, &presented, now) {
                Ok(found) => found,
                Err(AuthError::TokenNotValid(reason)) => {
                    let entry = NewEntry::new(Action::Logout, Outcome::Failure)
                        .detail("via", "token_blacklist")
                        .detail("reason", reason.as_str());
                    audit(connection, entry, &context, now)?;
                    return Ok(Err(AuthError::TokenNotValid(reason)));
                }
                Err(other) => return Err(ApiError::from(other)),
            };
            let username = users::find(connection, user_id)?.map(|user| user.username);
            match usable {
                Ok(()) => {
                    refresh::revoke_family(connection, &family_id, now, RevokeReason::Blacklist)?;
                    let entry = NewEntry::new(Action::Logout, Outcome::Success)
                        .actor(Some(user_id.0), username.as_deref())
                        .detail("via", "token_blacklist");
                    audit(connection, entry, &context, now)?;
                    Ok(Ok(()))
                }
                Err(AuthError::TokenReused) => {
                    refresh::revoke_family(connection, &family_id, now, RevokeReason::Reuse)?;
                    let entry = NewEntry::new(Action::TokenReuse, Outcome::Failure)
                        .actor(Some(user_id.0), username.as_deref())
                        .detail("family_id", family_id);
                    audit(connection, entry, &context, now)?;
                    Ok(Err(AuthError::TokenReused))
                }
                Err(other) => {
                    let reason = match &other {
                        AuthError::TokenNotValid(reason) => reason.as_str(),
                        _ => "not_valid",
                    };
                    let entry = NewEntry::new(Action::Logout, Outcome::Failure)
                        .actor(Some(user_id.0), username.as_deref())
                        .detail("via", "token_blacklist")
                        .detail("reason", reason);
                    audit(connection, entry, &context, now)?;
                    Ok(Err(other))
                }
            }
        })?;
        result.map_err(ApiError::from)
    })
    .await
}

/// Revokes every refresh token of `user_id`.
pub async fn logout_all(state: &AppState, context: &RequestContext, user_id: UserId) -> Result<(), ApiError> {
    let now = state.clock.now();
    let context = context.clone();
    with_connection(state, move |connection| {
        write_transaction(connection, |connection| {
            let user = active_user(connection, user_id)?;
            let revoked = refresh::revoke_all_for_user(connection, user_id, now, RevokeReason::LogoutAll)?;
            let entry = NewEntry::new(Action::LogoutAll, Outcome::Success)
                .actor(Some(user.id), Some(&user.username))
                .detail("revoked_tokens", revoked);
            audit(connection, entry, &context, now)
        })
    })
    .await
}

fn active_user(connection: &mut DbConnection, user_id: UserId) -> Result<users::User, ApiError> {
    match users::find(connection, user_id)? {
        Some(user) if user.is_active => Ok(user),
        _ => Err(AuthError::TokenNotValid(TokenRejection::InactiveUser).into()),
    }
}

/// Returns the current view of an active user, from the cache when it has one; a
/// deleted or inactive user is `token_not_valid`.
pub async fn current_user(state: &AppState, user_id: UserId) -> Result<UserView, ApiError> {
    if let Some(view) = state.user_cache.get(user_id) {
        return Ok(view);
    }
    let generation = state.user_cache.generation();
    let view = with_connection(state, move |connection| match users::active_view(connection, user_id)? {
        Some(view) => Ok(view),
        None => Err(AuthError::TokenNotValid(TokenRejection::InactiveUser).into()),
    })
    .await?;
    state.user_cache.insert(view.clone(), generation);
    Ok(view)
}

/// Changes the caller's password. Every refresh family of the user is revoked; when
/// `start_session` is true (a cookie session), a new session is returned.
pub async fn change_password(
    state: &AppState,
    context: &RequestContext,
    user_id: UserId,
    current_password: String,
    new_password: String,
    start_session: bool,
) -> Result<Option<Session>, ApiError> {
    let user = with_connection(state, move |connection| active_user(connection, user_id)).await?;
    validate_new_password(&new_password, &user.username, "new_password").map_err(ApiError::from)?;

    let passwords = state.passwords.clone();
    let stored_hash = user.password_hash.clone();
    let matches = hashing(state, move || Ok(passwords.verify(&current_password, &stored_hash))).await?;
    let now = state.clock.now();
    if !matches {
        let context = context.clone();
        let (id, username) = (user.id, user.username.clone());
        with_connection(state, move |connection| {
            let entry = NewEntry::new(Action::PasswordChange, Outcome::Failure)
                .actor(Some(id), Some(&username))
                .target("user", id)
                .detail("reason", "wrong_current_password");
            audit(connection, entry, &context, now)
        })
        .await?;
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_password",
            "The current password is not correct.",
        ));
    }

    let passwords = state.passwords.clone();
    let new_hash = hashing(state, move || Ok(passwords.hash(&new_password)?)).await?;

    let lifetime = state.refresh_lifetime;
    let context = context.clone();
    let (view, refresh) = with_connection(state, move |connection| {
        write_transaction(connection, |connection| {
            users::set_password_hash(connection, user.user_id(), &new_hash, now)?;
            let revoked =
                refresh::revoke_all_for_user(connection, user.user_id(), now, RevokeReason::PasswordChange)?;
            let entry = NewEntry::new(Action::PasswordChange, Outcome::Success)
                .actor(Some(user.id), Some(&user.username))
                .target("user", user.id)
                .detail("revoked_tokens", revoked);
            audit(connection, entry, &context, now)?;
            let refresh = match start_session {
                true => Some(refresh::issue(connection, user.user_id(), None, now, lifetime)?),
                false => None,
            };
            Ok((users::view(connection, &user)?, refresh))
        })
    })
    .await?;

    let Some(refresh) = refresh else {
        return Ok(None);
    };
    let access = issue_access(state, &view, now)?;
    Ok(Some(Session { user: view, access, refresh }))
}
