//! `finetune serve`: checks the settings, migrates, creates the development admin on an
//! empty database, and serves HTTP.

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
use finetune_http::AppState;
use finetune_http::edge::edge;
use finetune_http::handlers::ops;
use finetune_http::state::Semaphore;
use finetune_rbac::users;

use crate::commands::{CommandError, create_admin, pool};
use crate::keys::key_ring;
use crate::secrets::ensure_secret_key;

/// The username of the development first-start admin.
const BOOTSTRAP_ADMIN: &str = "admin";

/// Rejects settings this build cannot honour, and unsafe ones in production.
fn check_settings(settings: &Settings) -> Result<(), CommandError> {
    if settings.is_production() {
        let problems = settings.production_problems();
        if !problems.is_empty() {
            return Err(CommandError::Message(format!(
                "refusing to start in production:\n  - {}",
                problems.join("\n  - ")
            )));
        }
    }
    if settings.serves_tls() {
        // TODO: rustls listener; until then terminate TLS at a proxy named in TRUSTED_PROXIES.
        return Err(CommandError::Message(
            "TLS_CERT_FILE/TLS_KEY_FILE: HTTPS is not built into this version yet; terminate TLS at a reverse proxy and list it in TRUSTED_PROXIES".into(),
        ));
    }
    Ok(())
}

/// Creates the `admin` user with a random password on an empty development database
/// and prints the password once.
fn bootstrap_admin(
    connection: &mut DbConnection,
    settings: &Settings,
    passwords: &Passwords,
) -> Result<(), CommandError> {
    if settings.is_production() {
        return Ok(());
    }
    let created = with_startup_lock(connection, |connection| {
        if users::count(connection).map_err(|error| CoreError::Database(error.to_string()))? > 0 {
            return Ok(None);
        }
        Ok(Some(()))
    })?;
    if created.is_none() {
        return Ok(());
    }

    let mut bytes = [0u8; 18];
    getrandom::fill(&mut bytes)
        .map_err(|error| CommandError::Message(format!("random source failed: {error}")))?;
    let password = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let password_hash = passwords.hash(&password)?;
    match create_admin(connection, BOOTSTRAP_ADMIN, None, &password_hash) {
        // Another instance created it between the check and the insert.
        Err(CommandError::Rbac(finetune_rbac::RbacError::UsernameTaken)) => return Ok(()),
        other => other?,
    };
    println!("created system_admin \"{BOOTSTRAP_ADMIN}\" with password: {password}");
    Ok(())
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
    let state = AppState {
        pool,
        tokens: Arc::new(tokens),
        passwords: Arc::new(passwords),
        hash_permits: Arc::new(Semaphore::new(AppState::default_hash_concurrency())),
        clock: Arc::new(SystemClock),
        refresh_lifetime: settings.refresh_token_lifetime,
        secure_cookies: settings.is_production(),
        production: settings.is_production(),
        trusted_proxies: settings.trusted_proxies.clone(),
    };

    actix_web::rt::System::new()
        .block_on(run_http(state, &settings.bind))
        .map_err(|error| CommandError::Message(format!("BIND {}: {error}", settings.bind)))
}

async fn run_http(state: AppState, bind: &str) -> std::io::Result<()> {
    let data = web::Data::new(state);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .wrap(from_fn(edge))
            .configure(finetune_http::configure)
            .default_service(web::to(ops::not_found))
    })
    .bind(bind)?;

    for address in server.addrs() {
        println!("listening on {address}");
    }
    std::io::stdout().flush()?;
    server.run().await
}
