//! The browser endpoints: tokens travel only in HttpOnly cookies.

use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use chrono::{DateTime, Utc};
use finetune_core::user::UserView;
use serde::{Deserialize, Serialize};

use crate::cookies::{
    REFRESH_COOKIE, access_cookie, check_csrf, cookie_value, csrf_cookie, has_session_cookie, new_csrf_token,
    refresh_cookie, removal_cookies,
};
use crate::error::ApiError;
use crate::extract::{Authenticated, Context, Credential, required};
use crate::flows::{self, Session};
use crate::limits::{check_login_username, check_password_length};
use crate::state::AppState;

/// The body of login and token-obtain requests.
#[derive(Debug, Deserialize)]
pub struct Credentials {
    username: Option<String>,
    password: Option<String>,
}

impl Credentials {
    /// Returns the username and password, or 400 `invalid` naming the missing or
    /// overlong ones.
    pub fn into_parts(self) -> Result<(String, String), ApiError> {
        let username = required(self.username, "username")
            .and_then(|username| check_login_username(&username).map(|()| username));
        let password = required(self.password, "password")
            .and_then(|password| check_password_length(&password, "password").map(|()| password));
        match (username, password) {
            (Ok(username), Ok(password)) => Ok((username, password)),
            (username, password) => {
                let mut fields = finetune_core::error::FieldErrors::new();
                for error in [username.err(), password.err()].into_iter().flatten() {
                    fields.extend(error.fields.unwrap_or_default());
                }
                Err(ApiError::invalid(fields))
            }
        }
    }
}

#[derive(Serialize)]
struct SessionBody<'a> {
    user: &'a UserView,
    access_expires_at: DateTime<Utc>,
    refresh_expires_at: DateTime<Utc>,
}

/// Builds the 200 response of login and refresh: the user and expiries in the body, the tokens
/// in cookies. A new CSRF token is set when `csrf_token` is given.
fn session_response(state: &AppState, session: &Session, csrf_token: Option<&str>) -> HttpResponse {
    let mut response = HttpResponse::Ok();
    response.cookie(access_cookie(
        session.access.token.expose(),
        state.tokens.lifetime(),
        state.secure_cookies,
    ));
    response.cookie(refresh_cookie(
        session.refresh.token.expose(),
        state.refresh_lifetime,
        state.secure_cookies,
    ));
    if let Some(csrf_token) = csrf_token {
        response.cookie(csrf_cookie(csrf_token, state.refresh_lifetime, state.secure_cookies));
    }
    response.json(SessionBody {
        user: &session.user,
        access_expires_at: session.access.expires_at,
        refresh_expires_at: session.refresh.expires_at,
    })
}

fn cleared(state: &AppState, mut response: HttpResponse) -> HttpResponse {
    for cookie in removal_cookies(state.secure_cookies) {
        // Adding a cookie to a fresh response cannot fail for well-formed cookies.
        let _ = response.add_cookie(&cookie);
    }
    response
}

/// `POST /api/auth/login/`.
pub async fn login(
    state: web::Data<AppState>,
    context: Context,
    body: web::Json<Credentials>,
) -> Result<HttpResponse, ApiError> {
    let (username, password) = body.into_inner().into_parts()?;

    let session = flows::login(&state, &context.0, username, password).await?;

    let csrf_token = new_csrf_token()?;
    Ok(session_response(&state, &session, Some(&csrf_token)))
}

/// `POST /api/auth/refresh/`: rotates the refresh cookie. Any failure clears the cookies.
pub async fn refresh(
    state: web::Data<AppState>,
    context: Context,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let Some(presented) = cookie_value(&request, REFRESH_COOKIE) else {
        return Err(ApiError::not_authenticated());
    };
    check_csrf(&request)?;

    match flows::refresh(&state, &context.0, presented).await {
        Ok(session) => Ok(session_response(&state, &session, None)),
        Err(error) if error.status.as_u16() == 401 => Ok(cleared(&state, error.error_response())),
        Err(error) => Err(error),
    }
}

/// `POST /api/auth/logout/`: always 204; revokes the session of the refresh cookie.
pub async fn logout(
    state: web::Data<AppState>,
    context: Context,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    if has_session_cookie(&request) {
        check_csrf(&request)?;
    }
    let presented = cookie_value(&request, REFRESH_COOKIE);
    let caller = Authenticated::extract(&request).await.ok().map(|auth| auth.claims.user_id);

    flows::logout(&state, &context.0, presented, caller).await?;

    Ok(cleared(&state, HttpResponse::NoContent().finish()))
}

/// `POST /api/auth/logout-all/`: revokes every refresh token of the caller.
pub async fn logout_all(
    state: web::Data<AppState>,
    context: Context,
    auth: Authenticated,
) -> Result<HttpResponse, ApiError> {
    flows::logout_all(&state, &context.0, auth.claims.user_id).await?;

    Ok(cleared(&state, HttpResponse::NoContent().finish()))
}

/// `GET /api/auth/me/`.
pub async fn me(state: web::Data<AppState>, auth: Authenticated) -> Result<HttpResponse, ApiError> {
    let user = flows::current_user(&state, auth.claims.user_id).await?;
    Ok(HttpResponse::Ok().json(user))
}

/// The body of a password change.
#[derive(Debug, Deserialize)]
pub struct PasswordChange {
    current_password: Option<String>,
    new_password: Option<String>,
}

/// `POST /api/auth/password/`: 204; a cookie session gets a fresh pair.
pub async fn change_password(
    state: web::Data<AppState>,
    context: Context,
    auth: Authenticated,
    body: web::Json<PasswordChange>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let current_password = required(body.current_password, "current_password")?;
    check_password_length(&current_password, "current_password")?;
    let new_password = required(body.new_password, "new_password")?;
    let cookie_session = auth.credential == Credential::Cookie;

    let session = flows::change_password(
        &state,
        &context.0,
        auth.claims.user_id,
        current_password,
        new_password,
        cookie_session,
    )
    .await?;

    let mut response = HttpResponse::NoContent();
    if let Some(session) = session {
        response.cookie(access_cookie(
            session.access.token.expose(),
            state.tokens.lifetime(),
            state.secure_cookies,
        ));
        response.cookie(refresh_cookie(
            session.refresh.token.expose(),
            state.refresh_lifetime,
            state.secure_cookies,
        ));
    }
    Ok(response.finish())
}

use actix_web::FromRequest as _;
