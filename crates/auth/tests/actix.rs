//! The actix-web extractor and role guard of the `actix` feature.
#![cfg(feature = "actix")]

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::test as actix_test;
use actix_web::{App, HttpResponse, web};
use chrono::{DateTime, Utc};
use finetune_auth::actix::{Authenticator, Caller, RequireRole};
use finetune_auth::keys::{Algorithm, KeyRing, SigningKey};
use finetune_auth::{AccessTokens, TokenVerifier};
use finetune_core::{ManualClock, UserId};

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default()
}

struct Fixture {
    tokens: AccessTokens,
    authenticator: web::Data<Authenticator>,
    clock: ManualClock,
}

fn fixture() -> Fixture {
    let key = SigningKey::generate(Algorithm::EdDsa).unwrap_or_else(|e| unreachable!("{e}"));
    let tokens = AccessTokens::new(
        KeyRing::new(key.clone(), []),
        "finetune",
        "finetune-erp",
        Duration::from_secs(300),
    );
    let public_ring = KeyRing::verify_only([key.verifying_key()]).unwrap_or_else(|e| unreachable!("{e}"));
    let clock = ManualClock::new(now());
    let authenticator = Authenticator::new(TokenVerifier::new(public_ring, "finetune", "finetune-erp"))
        .with_clock(Arc::new(clock.clone()));
    Fixture { tokens, authenticator: web::Data::new(authenticator), clock }
}

fn token(tokens: &AccessTokens, roles: &[&str]) -> String {
    let roles: Vec<String> = roles.iter().map(|role| (*role).to_owned()).collect();
    let issued = tokens.issue(UserId(9), &roles, now()).unwrap_or_else(|e| unreachable!("{e}"));
    issued.token.expose().to_owned()
}

async fn whoami(caller: Caller) -> HttpResponse {
    HttpResponse::Ok().body(caller.claims().user_id.0.to_string())
}

/// Sends `GET path` with an optional bearer token; returns the status and the body.
fn call(fixture: &Fixture, path: &str, bearer: Option<&str>) -> (StatusCode, String) {
    let authenticator = fixture.authenticator.clone();
    actix_web::rt::System::new().block_on(async move {
        let app = actix_test::init_service(
            App::new().app_data(authenticator).route("/whoami", web::get().to(whoami)).service(
                web::resource("/admin").wrap(RequireRole::new("system_admin")).route(web::get().to(whoami)),
            ),
        )
        .await;
        let mut request = actix_test::TestRequest::get().uri(path);
        if let Some(token) = bearer {
            request = request.insert_header(("Authorization", format!("Bearer {token}")));
        }
        let response = actix_test::call_service(&app, request.to_request()).await;
        let status = response.status();
        let body = actix_test::read_body(response).await;
        (status, String::from_utf8_lossy(&body).into_owned())
    })
}

fn code_of(body: &str) -> String {
    let body: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    body["code"].as_str().unwrap_or_default().to_owned()
}

#[test]
fn caller_extractor_accepts_valid_token() {
    let fixture = fixture();
    let (status, body) = call(&fixture, "/whoami", Some(&token(&fixture.tokens, &[])));
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "9");
}

#[test]
fn caller_extractor_without_token_rejected() {
    let fixture = fixture();
    let (status, body) = call(&fixture, "/whoami", None);
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(code_of(&body), "not_authenticated");
}

#[test]
fn caller_extractor_bad_token_rejected() {
    let fixture = fixture();
    let (status, body) = call(&fixture, "/whoami", Some("not.a.token"));
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(code_of(&body), "token_not_valid");
}

#[test]
fn caller_extractor_expired_token_rejected() {
    let fixture = fixture();
    let token = token(&fixture.tokens, &[]);
    fixture.clock.advance(chrono::Duration::seconds(300 + 31));
    let (status, body) = call(&fixture, "/whoami", Some(&token));
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(code_of(&body), "token_not_valid");
}

#[test]
fn require_role_accepts_holder() {
    let fixture = fixture();
    let (status, body) = call(&fixture, "/admin", Some(&token(&fixture.tokens, &["system_admin"])));
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "9");
}

#[test]
fn require_role_without_role_forbidden() {
    let fixture = fixture();
    let (status, body) = call(&fixture, "/admin", Some(&token(&fixture.tokens, &["auditor"])));
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(code_of(&body), "permission_denied");
}

#[test]
fn require_role_without_token_unauthorized() {
    let fixture = fixture();
    let (status, body) = call(&fixture, "/admin", None);
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(code_of(&body), "not_authenticated");
}

#[test]
fn replaced_verifier_takes_effect() {
    let fixture = fixture();
    let token = token(&fixture.tokens, &[]);
    let other = SigningKey::generate(Algorithm::Es256).unwrap_or_else(|e| unreachable!("{e}"));
    let other_ring = KeyRing::verify_only([other.verifying_key()]).unwrap_or_else(|e| unreachable!("{e}"));
    fixture.authenticator.replace_verifier(TokenVerifier::new(other_ring, "finetune", "finetune-erp"));
    let (status, body) = call(&fixture, "/whoami", Some(&token));
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(code_of(&body), "token_not_valid");
}

#[test]
fn missing_authenticator_is_server_error() {
    let (status, body) = actix_web::rt::System::new().block_on(async {
        let app = actix_test::init_service(App::new().route("/whoami", web::get().to(whoami))).await;
        let response =
            actix_test::call_service(&app, actix_test::TestRequest::get().uri("/whoami").to_request()).await;
        let status = response.status();
        (status, String::from_utf8_lossy(&actix_test::read_body(response).await).into_owned())
    });
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(code_of(&body), "server_error");
}
