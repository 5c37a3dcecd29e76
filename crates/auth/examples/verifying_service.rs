//! A small actix-web service that accepts access tokens issued by a running finetune
//! server, without calling it per request and, with EdDSA or ES256, without its secret.
//!
//! With the server's `JWT_ALGORITHM` set to EdDSA or ES256, the service reads the public
//! keys from `FINETUNE_URL/.well-known/jwks.json` at start and every 60 seconds:
//!
//! ```text
//! FINETUNE_URL=http://127.0.0.1:8000 \
//!   cargo run -p finetune-auth --features actix --example verifying_service
//! ```
//!
//! With HS256 the service needs the server's own secrets, under the same names:
//!
//! ```text
//! JWT_ALGORITHM=HS256 SECRET_KEY=... SECRET_KEY_FALLBACKS=... \
//!   cargo run -p finetune-auth --features actix --example verifying_service
//! ```
//!
//! `JWT_ISSUER` and `JWT_AUDIENCE` default to the server's defaults, and `BIND` to
//! `127.0.0.1:8081`. Then, with a token from `POST /api/auth/token/`:
//!
//! ```text
//! curl -H "Authorization: Bearer $ACCESS" http://127.0.0.1:8081/whoami
//! curl -H "Authorization: Bearer $ACCESS" http://127.0.0.1:8081/admin
//! ```

use std::sync::mpsc;
use std::time::Duration;

use actix_web::{App, HttpResponse, HttpServer, web};
use finetune_auth::actix::{Authenticator, Caller, RequireRole};
use finetune_auth::{KeyRing, TokenVerifier};

/// How often the JWKS document is fetched again, so keys rotated on the server arrive.
const JWKS_REFRESH: Duration = Duration::from_secs(60);

fn setting(name: &str, default: &str) -> String {
    std::env::var(name).ok().filter(|value| !value.trim().is_empty()).unwrap_or_else(|| default.to_owned())
}

fn fetch_jwks(url: &str) -> Result<KeyRing, String> {
    let agent: ureq::Agent =
        ureq::Agent::config_builder().timeout_global(Some(Duration::from_secs(5))).build().into();
    let body = agent
        .get(url)
        .call()
        .and_then(|mut response| response.body_mut().read_to_string())
        .map_err(|error| format!("GET {url} failed: {error}"))?;
    KeyRing::from_jwks(&body).map_err(|error| format!("{url}: {error}"))
}

fn hs256_ring() -> Result<KeyRing, String> {
    let secret = setting("SECRET_KEY", "");
    if secret.is_empty() {
        return Err(
            "SECRET_KEY is not set: with JWT_ALGORITHM=HS256 set it to the server's SECRET_KEY".into()
        );
    }
    let fallbacks = setting("SECRET_KEY_FALLBACKS", "");
    let fallbacks: Vec<&[u8]> =
        fallbacks.split(',').map(str::trim).filter(|key| !key.is_empty()).map(str::as_bytes).collect();
    KeyRing::hs256(secret.as_bytes(), &fallbacks).map_err(|error| format!("SECRET_KEY: {error}"))
}

async fn whoami(caller: Caller) -> HttpResponse {
    let claims = caller.claims();
    HttpResponse::Ok().json(serde_json::json!({
        "user_id": claims.user_id.0,
        "roles": claims.roles,
        "kid": claims.key_id,
        "expires_at": claims.expires_at.to_rfc3339(),
    }))
}

async fn admin(caller: Caller) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "admin": caller.claims().user_id.0 }))
}

fn main() -> Result<(), String> {
    let issuer = setting("JWT_ISSUER", "finetune");
    let audience = setting("JWT_AUDIENCE", "finetune-erp");
    let bind = setting("BIND", "127.0.0.1:8081");
    let jwks_url = format!("{}/.well-known/jwks.json", setting("FINETUNE_URL", "http://127.0.0.1:8000"));
    let use_jwks = setting("JWT_ALGORITHM", "EdDSA") != "HS256";

    let ring = if use_jwks { fetch_jwks(&jwks_url)? } else { hs256_ring()? };
    println!("verifying with kids {:?}", ring.kids());
    let authenticator = web::Data::new(Authenticator::new(TokenVerifier::new(ring, &issuer, &audience)));

    // Refresh the JWKS until the server below stops and drops `stop`.
    let (stop, stopped) = mpsc::channel::<()>();
    let refresher = use_jwks.then(|| {
        let authenticator = authenticator.clone();
        let (issuer, audience, url) = (issuer.clone(), audience.clone(), jwks_url.clone());
        std::thread::spawn(move || {
            while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(JWKS_REFRESH) {
                match fetch_jwks(&url) {
                    Ok(ring) => authenticator.replace_verifier(TokenVerifier::new(ring, &issuer, &audience)),
                    Err(error) => eprintln!("keeping the previous keys: {error}"),
                }
            }
        })
    });

    let served = actix_web::rt::System::new().block_on(async move {
        let server = HttpServer::new(move || {
            App::new().app_data(authenticator.clone()).route("/whoami", web::get().to(whoami)).service(
                web::resource("/admin").wrap(RequireRole::new("system_admin")).route(web::get().to(admin)),
            )
        })
        .workers(2)
        .bind(&bind)
        .map_err(|error| format!("BIND {bind}: {error}"))?;
        for address in server.addrs() {
            println!("listening on {address}");
        }
        server.run().await.map_err(|error| format!("server failed: {error}"))
    });
    drop(stop);
    if let Some(refresher) = refresher {
        let _ = refresher.join();
    }
    served
}
