//! The routing table. Every API path answers with and without its trailing slash.

use actix_web::body::BoxBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::{Resource, web};

use actix_web::middleware::from_fn;

use crate::edge::errors_to_responses;
use crate::extract::json_config;
use crate::handlers::{admin_roles, admin_users, auth, logs, ops, token_api};

/// A resource answering `path` (which ends with `/`) and the same path without the
/// slash; other methods get 405 in the contract's shape.
fn api_resource(
    path: &'static str,
) -> Resource<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<BoxBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    web::resource([path, path.trim_end_matches('/')])
        .default_service(web::to(ops::method_not_allowed))
        .wrap(from_fn(errors_to_responses))
}

fn plain_resource(
    path: &'static str,
) -> Resource<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<BoxBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    web::resource(path).default_service(web::to(ops::method_not_allowed)).wrap(from_fn(errors_to_responses))
}

/// Registers every route and the JSON configuration. The caller adds the
/// [`crate::AppState`] as `web::Data`, wraps [`crate::edge::edge`] outermost and sets
/// [`ops::not_found`] as the default service.
pub fn configure(config: &mut web::ServiceConfig) {
    config
        .app_data(json_config())
        .service(plain_resource("/healthz").route(web::get().to(ops::healthz)))
        .service(plain_resource("/readyz").route(web::get().to(ops::readyz)))
        .service(plain_resource("/.well-known/jwks.json").route(web::get().to(ops::jwks)))
        .service(api_resource("/api/auth/login/").route(web::post().to(auth::login)))
        .service(api_resource("/api/auth/refresh/").route(web::post().to(auth::refresh)))
        .service(api_resource("/api/auth/logout/").route(web::post().to(auth::logout)))
        .service(api_resource("/api/auth/logout-all/").route(web::post().to(auth::logout_all)))
        .service(api_resource("/api/auth/me/").route(web::get().to(auth::me)))
        .service(api_resource("/api/auth/password/").route(web::post().to(auth::change_password)))
        .service(api_resource("/api/auth/token/").route(web::post().to(token_api::obtain)))
        .service(api_resource("/api/auth/token/refresh/").route(web::post().to(token_api::refresh)))
        .service(api_resource("/api/auth/token/verify/").route(web::post().to(token_api::verify)))
        .service(api_resource("/api/auth/token/blacklist/").route(web::post().to(token_api::blacklist)))
        .service(
            api_resource("/api/admin/users/")
                .route(web::get().to(admin_users::list))
                .route(web::post().to(admin_users::create)),
        )
        .service(
            api_resource("/api/admin/users/{id}/")
                .route(web::get().to(admin_users::read))
                .route(web::patch().to(admin_users::update)),
        )
        .service(api_resource("/api/admin/users/{id}/roles/").route(web::post().to(admin_users::grant)))
        .service(
            api_resource("/api/admin/users/{id}/roles/{role}/").route(web::delete().to(admin_users::revoke)),
        )
        .service(
            api_resource("/api/admin/roles/")
                .route(web::get().to(admin_roles::list))
                .route(web::post().to(admin_roles::create)),
        )
        .service(
            api_resource("/api/admin/roles/{name}/")
                .route(web::get().to(admin_roles::read))
                .route(web::patch().to(admin_roles::update))
                .route(web::delete().to(admin_roles::delete)),
        )
        .service(api_resource("/api/logs/").route(web::get().to(logs::list)))
        .service(api_resource("/api/logs/export/").route(web::get().to(logs::export)));
}
