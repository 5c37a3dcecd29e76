//! actix-web support for services that verify finetune access tokens (feature `actix`).
//!
//! Register an [`Authenticator`] as `web::Data`, then take a [`Caller`] in a handler to
//! require a valid `Authorization: Bearer` access token, and wrap a scope or resource
//! in [`RequireRole`] to also require a role:
//!
//! ```no_run
//! use actix_web::{App, HttpServer, web};
//! use finetune_auth::actix::{Authenticator, Caller, RequireRole};
//! use finetune_auth::{KeyRing, TokenVerifier};
//!
//! async fn whoami(caller: Caller) -> String {
//!     format!("user {}", caller.claims().user_id.0)
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let ring = KeyRing::from_jwks(r#"{"keys": []}"#)?;
//! let authenticator = web::Data::new(Authenticator::new(TokenVerifier::new(ring, "finetune", "finetune-erp")));
//! let server = HttpServer::new(move || {
//!     App::new()
//!         .app_data(authenticator.clone())
//!         .route("/whoami", web::get().to(whoami))
//!         .service(web::scope("/admin").wrap(RequireRole::new("system_admin")).route("", web::get().to(whoami)))
//! });
//! # Ok(())
//! # }
//! ```
//!
//! Failures return the finetune error shape `{"detail", "code"}`: 401 `not_authenticated`
//! without a bearer token, 401 `token_not_valid` for a bad one, 403 `permission_denied`
//! without the role. Only bearer tokens are read: the `access_token` cookie belongs to
//! the finetune web client, and accepting it here would need a CSRF check. Roles come
//! from the token, so a role revoked on the server still counts until the token expires
//! (at most `ACCESS_TOKEN_LIFETIME`).

use std::fmt;
use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::sync::{Arc, PoisonError, RwLock};

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, ResponseError, web};
use finetune_core::{Clock, SystemClock};

use crate::error::{AuthError, TokenRejection};
use crate::tokens::{AccessClaims, TokenVerifier};

/// The verifier and clock that [`Caller`] and [`RequireRole`] use; register it with
/// `App::app_data(web::Data::new(...))`.
pub struct Authenticator {
    verifier: RwLock<Arc<TokenVerifier>>,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator").field("verifier", &self.verifier()).finish_non_exhaustive()
    }
}

impl Authenticator {
    /// Creates an authenticator that checks tokens against the system clock.
    pub fn new(verifier: TokenVerifier) -> Self {
        Self { verifier: RwLock::new(Arc::new(verifier)), clock: Arc::new(SystemClock) }
    }

    /// Replaces the clock, for tests.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Returns the current verifier.
    pub fn verifier(&self) -> Arc<TokenVerifier> {
        self.verifier.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Replaces the verifier, for example with a key ring built from a freshly fetched
    /// JWKS document after the server rotated its keys.
    pub fn replace_verifier(&self, verifier: TokenVerifier) {
        *self.verifier.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(verifier);
    }

    /// Verifies the bearer token of `request`.
    pub fn authenticate(&self, request: &HttpRequest) -> Result<AccessClaims, Rejection> {
        let Some(token) = bearer_token(request)? else {
            return Err(Rejection::NotAuthenticated);
        };
        self.verifier().verify(token, self.clock.now()).map_err(|error| match error {
            AuthError::TokenNotValid(reason) => Rejection::TokenNotValid(reason),
            _ => Rejection::TokenNotValid(TokenRejection::BadSignatureOrClaims),
        })
    }
}

/// Returns the token of an `Authorization: Bearer` header; `None` when the request has
/// no Authorization header or one with another scheme. A header value that is not
/// visible ASCII is rejected as malformed.
pub fn bearer_token(request: &HttpRequest) -> Result<Option<&str>, Rejection> {
    let Some(value) = request.headers().get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| Rejection::TokenNotValid(TokenRejection::Malformed))?;
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("Bearer") {
        return Ok(None);
    }
    Ok(Some(token.trim()))
}

/// The reason a request was rejected. The response body follows the finetune error
/// shape, and the precise reason goes to the log only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// No bearer token: 401 `not_authenticated`.
    NotAuthenticated,
    /// A token that failed verification: 401 `token_not_valid`.
    TokenNotValid(TokenRejection),
    /// A valid token without the required role: 403 `permission_denied`.
    PermissionDenied {
        /// The role that was required.
        role: String,
    },
    /// No [`Authenticator`] registered as app data: 500 `server_error`.
    NotConfigured,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotAuthenticated => f.write_str("no bearer token"),
            Self::TokenNotValid(reason) => write!(f, "token not valid: {}", reason.as_str()),
            Self::PermissionDenied { role } => write!(f, "role {role:?} required"),
            Self::NotConfigured => f.write_str("no finetune_auth::actix::Authenticator in the app data"),
        }
    }
}

impl ResponseError for Rejection {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::NotAuthenticated | Self::TokenNotValid(_) => StatusCode::UNAUTHORIZED,
            Self::PermissionDenied { .. } => StatusCode::FORBIDDEN,
            Self::NotConfigured => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let (code, detail) = match self {
            Self::NotAuthenticated => ("not_authenticated", "Authentication credentials were not provided."),
            Self::TokenNotValid(reason) => {
                tracing::info!(reason = reason.as_str(), "token rejected");
                ("token_not_valid", "Token is invalid or expired.")
            }
            Self::PermissionDenied { role } => {
                tracing::info!(%role, "caller lacks the required role");
                ("permission_denied", "You do not have permission to perform this action.")
            }
            Self::NotConfigured => {
                tracing::error!("no finetune_auth::actix::Authenticator registered as app data");
                ("server_error", "A server error occurred.")
            }
        };
        let mut response = HttpResponse::build(self.status_code());
        if self.status_code() == StatusCode::UNAUTHORIZED {
            response.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
        }
        response.json(serde_json::json!({ "detail": detail, "code": code }))
    }
}

/// The caller of a request that carried a valid bearer access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller(AccessClaims);

impl Caller {
    /// Returns the verified claims.
    pub fn claims(&self) -> &AccessClaims {
        &self.0
    }

    /// Returns an error unless the token carried `role`.
    pub fn require_role(&self, role: &str) -> Result<(), Rejection> {
        if self.0.has_role(role) {
            Ok(())
        } else {
            Err(Rejection::PermissionDenied { role: role.to_owned() })
        }
    }
}

fn authenticate_request(request: &HttpRequest) -> Result<Caller, Rejection> {
    // `RequireRole` already verified the token of this request.
    if let Some(caller) = request.extensions().get::<Caller>() {
        return Ok(caller.clone());
    }
    let Some(authenticator) = request.app_data::<web::Data<Authenticator>>() else {
        return Err(Rejection::NotConfigured);
    };
    authenticator.authenticate(request).map(Caller)
}

impl FromRequest for Caller {
    type Error = Rejection;
    type Future = Ready<Result<Self, Rejection>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authenticate_request(request))
    }
}

/// Middleware that passes only requests whose valid bearer token carries one role.
/// The handler can then take the [`Caller`] without verifying the token again.
#[derive(Debug, Clone)]
pub struct RequireRole {
    role: Arc<str>,
}

impl RequireRole {
    /// Requires `role`, such as `system_admin`.
    pub fn new(role: impl Into<Arc<str>>) -> Self {
        Self { role: role.into() }
    }
}

impl<S, B> Transform<S, ServiceRequest> for RequireRole
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Transform = RequireRoleMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(RequireRoleMiddleware { service, role: self.role.clone() }))
    }
}

/// The service that [`RequireRole`] wraps around a scope or resource.
#[derive(Debug)]
pub struct RequireRoleMiddleware<S> {
    service: S,
    role: Arc<str>,
}

type BoxedResponse<B> =
    Pin<Box<dyn Future<Output = Result<ServiceResponse<EitherBody<B>>, actix_web::Error>>>>;

impl<S, B> Service<ServiceRequest> for RequireRoleMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Future = BoxedResponse<B>;

    forward_ready!(service);

    fn call(&self, request: ServiceRequest) -> Self::Future {
        let checked = authenticate_request(request.request())
            .and_then(|caller| caller.require_role(&self.role).map(|()| caller));
        match checked {
            Ok(caller) => {
                request.extensions_mut().insert(caller);
                let response = self.service.call(request);
                Box::pin(async move { response.await.map(ServiceResponse::map_into_left_body) })
            }
            Err(rejection) => {
                let response = request.into_response(rejection.error_response()).map_into_right_body();
                Box::pin(async move { Ok(response) })
            }
        }
    }
}
