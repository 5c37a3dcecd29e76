//! The routing table. Every API path responds with and without its trailing slash:
//! [`crate::edge::edge`] adds the slash before routing.
//!
//! Middleware wraps each resource rather than the app, because only after routing can
//! [`errors_to_responses`] turn a middleware's error into a response that the edge
//! middleware then gives its headers. From the outside in, a resource passes through
//! `errors_to_responses`, CORS, the JSON-only rule, the login throttle (login and
//! token-obtain only), and then its handlers.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::from_fn;
use actix_web::{Resource, web};

use crate::cors::CorsPolicy;
use crate::edge::errors_to_responses;
use crate::extract::{json_config, query_config};
use crate::handlers::{admin_roles, admin_users, auth, logs, ops, token_api};
use crate::limits::json_bodies_only;
use crate::throttle::LoginThrottle;

/// Builds a resource for `path`, which ends with `/`; other methods get 405 in the
/// contract's shape.
fn api_path(path: &'static str) -> Resource {
    debug_assert!(path.ends_with('/'), "API paths end with a slash: {path}");
    plain_path(path)
}

fn plain_path(path: &'static str) -> Resource {
    web::resource(path).default_service(web::to(ops::method_not_allowed))
}

/// Wraps `resource` in the middleware that every resource has.
fn guarded<T, B>(
    resource: Resource<T>,
    cors: &CorsPolicy,
) -> Resource<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<BoxBody>,
        Error = actix_web::Error,
        InitError = (),
    > + use<T, B>,
>
where
    T: ServiceFactory<
            ServiceRequest,
            Config = (),
            Response = ServiceResponse<B>,
            Error = actix_web::Error,
            InitError = (),
        > + 'static,
    B: MessageBody + 'static,
{
    resource.wrap(from_fn(json_bodies_only)).wrap(cors.middleware()).wrap(from_fn(errors_to_responses))
}

/// The routing table with its per-resource middleware. Build it once before
/// `HttpServer::new` and clone it into each worker, so every worker counts logins in
/// the same throttle store.
#[derive(Debug, Clone)]
pub struct Routes {
    /// The CORS settings.
    pub cors: CorsPolicy,
    /// The bucket store shared by the login and token-obtain endpoints.
    pub login_throttle: LoginThrottle,
}

impl Routes {
    /// Registers every route and the JSON configuration. The caller adds the
    /// [`crate::AppState`] as `web::Data`, wraps [`crate::edge::edge`] outermost and sets
    /// [`ops::not_found`] as the default service.
    pub fn configure(&self, config: &mut web::ServiceConfig) {
        let cors = &self.cors;
        let throttled = |path| api_path(path).wrap(self.login_throttle.middleware());
        config
            .app_data(json_config())
            .app_data(query_config())
            .service(guarded(plain_path("/healthz").route(web::get().to(ops::healthz)), cors))
            .service(guarded(plain_path("/readyz").route(web::get().to(ops::readyz)), cors))
            .service(guarded(plain_path("/.well-known/jwks.json").route(web::get().to(ops::jwks)), cors))
            .service(guarded(throttled("/api/auth/login/").route(web::post().to(auth::login)), cors))
            .service(guarded(api_path("/api/auth/refresh/").route(web::post().to(auth::refresh)), cors))
            .service(guarded(api_path("/api/auth/logout/").route(web::post().to(auth::logout)), cors))
            .service(guarded(api_path("/api/auth/logout-all/").route(web::post().to(auth::logout_all)), cors))
            .service(guarded(api_path("/api/auth/me/").route(web::get().to(auth::me)), cors))
            // A password change checks the current password, so it shares the login
            // bucket: a stolen access token must not become an unthrottled oracle.
            .service(guarded(
                throttled("/api/auth/password/").route(web::post().to(auth::change_password)),
                cors,
            ))
            .service(guarded(throttled("/api/auth/token/").route(web::post().to(token_api::obtain)), cors))
            .service(guarded(
                api_path("/api/auth/token/refresh/").route(web::post().to(token_api::refresh)),
                cors,
            ))
            .service(guarded(
                api_path("/api/auth/token/verify/").route(web::post().to(token_api::verify)),
                cors,
            ))
            .service(guarded(
                api_path("/api/auth/token/blacklist/").route(web::post().to(token_api::blacklist)),
                cors,
            ))
            .service(guarded(
                api_path("/api/admin/users/")
                    .route(web::get().to(admin_users::list))
                    .route(web::post().to(admin_users::create)),
                cors,
            ))
            .service(guarded(
                api_path("/api/admin/users/{id}/")
                    .route(web::get().to(admin_users::read))
                    .route(web::patch().to(admin_users::update)),
                cors,
            ))
            .service(guarded(
                api_path("/api/admin/users/{id}/roles/").route(web::post().to(admin_users::grant)),
                cors,
            ))
            .service(guarded(
                api_path("/api/admin/users/{id}/roles/{role}/").route(web::delete().to(admin_users::revoke)),
                cors,
            ))
            .service(guarded(
                api_path("/api/admin/roles/")
                    .route(web::get().to(admin_roles::list))
                    .route(web::post().to(admin_roles::create)),
                cors,
            ))
            .service(guarded(
                api_path("/api/admin/roles/{name}/")
                    .route(web::get().to(admin_roles::read))
                    .route(web::patch().to(admin_roles::update))
                    .route(web::delete().to(admin_roles::delete)),
                cors,
            ))
            .service(guarded(api_path("/api/logs/").route(web::get().to(logs::list)), cors))
            .service(guarded(api_path("/api/logs/export/").route(web::get().to(logs::export)), cors));
    }
}
