//! `finetune serve`: checks the settings, migrates, creates the development admin on an
//! empty database, and serves HTTP, or HTTPS when `TLS_CERT_FILE` and `TLS_KEY_FILE`
//! are set.

use std::io::Write;
use std::sync::Arc;

use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use base64::Engine;
use chrono::Utc;
use finetune_auth::AccessTokens;
use finetune_auth::password::Passwords;
use finetune_core::db::{DbConnection, run_migrations, with_startup_lock};
use finetune_core::settings::Settings;
use finetune_core::{CoreError, SystemClock};
use finetune_http::cors::CorsPolicy;
use finetune_http::edge::edge;
use finetune_http::handlers::ops;
use finetune_http::hash_pool::HashPool;
use finetune_http::throttle::LoginThrottle;
use finetune_http::user_cache::UserCache;
use finetune_http::{AppState, Routes};
use finetune_rbac::users;

use crate::commands::{CommandError, create_admin, pool};
use crate::keys::key_ring;
use crate::secrets::ensure_secret_key;
use crate::tls;

/// The username of the development first-start admin.
const BOOTSTRAP_ADMIN: &str = "admin";

/// Lists what keeps these settings from starting a server: unsafe settings in
/// production, and anything this build cannot honour in either environment. Each entry
/// is a sentence naming the setting and the fix.
pub fn startup_problems(settings: &Settings) -> Vec<String> {
    let mut problems = Vec::new();
    if settings.is_production() {
        problems.extend(settings.production_problems());
    }
    if let Err(error) = tls::server_config(settings) {
        problems.push(error.to_string());
    }
    // Key files must load before start-up; the HS256 key may still come from the
    // development key file, which serve fills in later.
    if settings.jwt_algorithm != finetune_core::settings::JwtAlgorithm::Hs256
        && let Err(error) = crate::keys::key_ring(settings, Utc::now())
    {
        problems.push(error.to_string());
    }
    if let Err(error) = CorsPolicy::new(settings.cors_allow_all_origins, &settings.cors_allowed_origins) {
        problems.push(format!("CORS_ALLOWED_ORIGINS: {error}."));
    }
    problems
}

/// Rejects settings this build cannot honour, and unsafe ones in production.
fn check_settings(settings: &Settings) -> Result<(), CommandError> {
    let problems = startup_problems(settings);
    if problems.is_empty() {
        return Ok(());
    }
    let environment = if settings.is_production() { "production" } else { "development" };
    Err(CommandError::Message(format!(
        "refusing to start in {environment}:\n  - {}",
        problems.join("\n  - ")
    )))
}

/// Creates the `admin` user with a random password on an empty development database
/// and prints the password once. The check and the insert run under the start-up lock,
/// so two instances starting together create one admin.
fn bootstrap_admin(
    connection: &mut DbConnection,
    settings: &Settings,
    passwords: &Passwords,
) -> Result<(), CommandError> {
    if settings.is_production() || users::count(connection)? > 0 {
        return Ok(());
    }

    let mut bytes = [0u8; 18];
    getrandom::fill(&mut bytes)
        .map_err(|error| CommandError::Message(format!("random source failed: {error}")))?;
    let password = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let password_hash = passwords.hash(&password)?;

    let created = with_startup_lock(connection, |connection| {
        if users::count(connection).map_err(|error| CoreError::Database(error.to_string()))? > 0 {
            return Ok(false);
        }
        create_admin(connection, BOOTSTRAP_ADMIN, None, &password_hash)
            .map(|_| true)
            .map_err(|error| CoreError::Database(error.to_string()))
    })?;
    if created {
        println!("created system_admin \"{BOOTSTRAP_ADMIN}\" with password: {password}");
    }
    Ok(())
}

/// Starts the user cache and the thread that clears it on changes made elsewhere.
fn watched_user_cache(pool: &finetune_core::db::DbPool) -> Result<Arc<UserCache>, CommandError> {
    let cache = Arc::new(UserCache::default());
    cache
        .watch(pool.clone())
        .map_err(|error| CommandError::Message(format!("cannot start the user-cache thread: {error}")))?;
    Ok(cache)
}

/// Runs the server until it is stopped.
pub fn serve(mut settings: Settings) -> Result<(), CommandError> {
    check_settings(&settings)?;
    ensure_secret_key(&mut settings)?;

    let ring = key_ring(&settings, Utc::now())?;
    if let Some(signing) = ring.signing_key() {
        tracing::info!(kid = signing.kid(), algorithm = %signing.algorithm(), "signing key loaded");
    }
    let passwords = Passwords::new()?;
    let pool = pool(&settings)?;
    {
        let mut connection = pool.get().map_err(CoreError::from)?;
        let applied = run_migrations(&mut connection)?;
        if applied > 0 {
            tracing::info!(applied, "applied migrations");
        }
        bootstrap_admin(&mut connection, &settings, &passwords)?;
    }

    let tokens =
        AccessTokens::new(ring, &settings.jwt_issuer, &settings.jwt_audience, settings.access_token_lifetime);
    let cors = CorsPolicy::new(settings.cors_allow_all_origins, &settings.cors_allowed_origins)
        .map_err(|error| CommandError::Message(format!("CORS_ALLOWED_ORIGINS: {error}")))?;
    let login_throttle = LoginThrottle::new(settings.login_throttle_rate)
        .map_err(|error| CommandError::Message(format!("LOGIN_THROTTLE_RATE: {}", error.detail)))?;
    let routes = Routes { cors, login_throttle };
    let tls = tls::server_config(&settings)?;

    let state =
        AppState {
            user_cache: watched_user_cache(&pool)?,
            pool,
            tokens: Arc::new(tokens),
            passwords: Arc::new(passwords),
            hash_pool: Arc::new(HashPool::new(AppState::default_hash_concurrency()).map_err(|error| {
                CommandError::Message(format!("cannot start the hashing threads: {error}"))
            })?),
            clock: Arc::new(SystemClock),
            refresh_lifetime: settings.refresh_token_lifetime,
            secure_cookies: settings.is_production(),
            production: settings.is_production(),
            trusted_proxies: settings.trusted_proxies.clone(),
        };

    actix_web::rt::System::new()
        .block_on(run_http(state, routes, tls, &settings.bind))
        .map_err(|error| CommandError::Message(format!("BIND {}: {error}", settings.bind)))
}

/// Serves until stopped. `routes` is built here, once, and cloned into every worker, so
/// all workers share one login throttle store.
async fn run_http(
    state: AppState,
    routes: Routes,
    tls: Option<rustls::ServerConfig>,
    bind: &str,
) -> std::io::Result<()> {
    let data = web::Data::new(state);
    let server = HttpServer::new(move || {
        let routes = routes.clone();
        App::new()
            .app_data(data.clone())
            .wrap(from_fn(edge))
            .configure(move |config| routes.configure(config))
            .default_service(web::to(ops::not_found))
    });
    let server = match tls {
        Some(config) => {
            tracing::info!("serving HTTPS");
            server.bind_rustls_0_23(bind, config)?
        }
        None => server.bind(bind)?,
    };

    for address in server.addrs() {
        println!("listening on {address}");
    }
    std::io::stdout().flush()?;
    server.run().await
}
