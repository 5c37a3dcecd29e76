//! The edge of the server on the real binary: login throttling, client IPs behind
//! proxies, CORS, security headers, input limits, production cookies, production
//! start-up refusals, `check --deploy` and HTTPS.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use crate::edge_support::{
    ADMIN, ADMIN_PASSWORD, Reply, Server, Setup, cookie_header, credentials, post_json, raw_post_from, send,
    send_with, set_cookies,
};

const LISTED_ORIGIN: &str = "https://app.example.com";
const LISTED_DEV_ORIGIN: &str = "http://localhost:3000";

/// Asserts the headers that the edge middleware adds to every response.
fn assert_security_headers(reply: &Reply, case: &str) {
    let context = format!("{case}: status {} body {}", reply.status, reply.body);
    assert!(reply.header("x-request-id").is_some_and(|id| !id.is_empty()), "X-Request-ID missing; {context}");
    assert!(
        reply.header("content-security-policy").is_some_and(|csp| csp.contains("frame-ancestors 'none'")),
        "Content-Security-Policy missing; {context}"
    );
    assert_eq!(reply.header("x-content-type-options"), Some("nosniff"), "{context}");
    assert_eq!(reply.header("referrer-policy"), Some("same-origin"), "{context}");
    assert_eq!(reply.header("x-frame-options"), Some("DENY"), "{context}");
}

fn assert_no_store(reply: &Reply, case: &str) {
    assert_eq!(
        reply.header("cache-control"),
        Some("no-store"),
        "{case}: status {} body {}",
        reply.status,
        reply.body
    );
}

fn wrong_login() -> String {
    credentials(ADMIN, "not the admin password at all")
}

// ---- login throttle -------------------------------------------------------------

#[test]
fn throttle_sixth_attempt_gets_429() {
    let server = Setup::new().set("LOGIN_THROTTLE_RATE", "5/min").start();
    let login = server.url("/api/auth/login/");

    for attempt in 1..=5 {
        let reply = post_json(&login, &wrong_login(), &[]);
        assert_eq!(reply.status, 401, "attempt {attempt}: {}", reply.body);
    }
    let sixth = post_json(&login, &wrong_login(), &[]);

    assert_eq!(sixth.status, 429, "sixth attempt: {}", sixth.body);
    assert_eq!(sixth.code(), "throttled", "sixth attempt: {}", sixth.body);
    assert!(sixth.json()["detail"].is_string(), "no detail: {}", sixth.body);
    let retry_after = sixth.header("retry-after").and_then(|value| value.parse::<u64>().ok());
    assert!(retry_after.is_some_and(|seconds| (1..=60).contains(&seconds)), "Retry-After {retry_after:?}");
    assert_security_headers(&sixth, "429");
    assert_no_store(&sixth, "429");
}

#[test]
fn throttle_counts_before_password_check() {
    let server = Setup::new().set("LOGIN_THROTTLE_RATE", "2/min").start();
    let login = server.url("/api/auth/login/");

    for attempt in 1..=2 {
        let reply = post_json(&login, &wrong_login(), &[]);
        assert_eq!(reply.status, 401, "attempt {attempt}: {}", reply.body);
    }
    let correct = post_json(&login, &credentials(ADMIN, ADMIN_PASSWORD), &[]);

    assert_eq!(correct.status, 429, "the right password got through: {}", correct.body);
}

#[test]
fn throttle_shares_bucket_between_login_and_token() {
    let server = Setup::new().set("LOGIN_THROTTLE_RATE", "4/min").start();

    for attempt in 1..=2 {
        let reply = post_json(&server.url("/api/auth/login/"), &wrong_login(), &[]);
        assert_eq!(reply.status, 401, "login attempt {attempt}: {}", reply.body);
        let reply = post_json(&server.url("/api/auth/token/"), &wrong_login(), &[]);
        assert_eq!(reply.status, 401, "token attempt {attempt}: {}", reply.body);
    }
    let login = post_json(&server.url("/api/auth/login"), &wrong_login(), &[]);
    let token = post_json(&server.url("/api/auth/token/"), &wrong_login(), &[]);

    assert_eq!(login.status, 429, "login after four attempts: {}", login.body);
    assert_eq!(token.status, 429, "token after four attempts: {}", token.body);
}

#[test]
fn throttle_skips_cors_preflight() {
    let server = Setup::new().set("LOGIN_THROTTLE_RATE", "2/min").start();
    let login = server.url("/api/auth/login/");

    for preflight in 1..=5 {
        let reply = send(
            "OPTIONS",
            &login,
            &[
                ("origin", LISTED_DEV_ORIGIN),
                ("access-control-request-method", "POST"),
                ("access-control-request-headers", "content-type"),
            ],
            None,
        );
        assert_eq!(reply.status, 200, "preflight {preflight}: {}", reply.body);
    }
    let first = post_json(&login, &wrong_login(), &[]);

    assert_eq!(first.status, 401, "the first attempt after preflights: {}", first.body);
}

#[test]
fn throttle_ignores_forged_headers_from_untrusted_peer() {
    let server = Setup::new().set("LOGIN_THROTTLE_RATE", "5/min").start();
    let login = server.url("/api/auth/login/");
    let forgeries: [&[(&str, &str)]; 6] = [
        &[("x-forwarded-for", "198.51.100.1")],
        &[("x-forwarded-for", "198.51.100.2, 198.51.100.3")],
        &[("x-real-ip", "198.51.100.4")],
        &[("forwarded", "for=198.51.100.5;proto=https")],
        &[("x-forwarded-for", "203.0.113.6"), ("x-real-ip", "203.0.113.7"), ("forwarded", "for=203.0.113.8")],
        &[("x-forwarded-for", "192.0.2.9")],
    ];

    for (attempt, headers) in forgeries[..5].iter().enumerate() {
        let reply = post_json(&login, &wrong_login(), headers);
        assert_eq!(reply.status, 401, "attempt {} with {headers:?}: {}", attempt + 1, reply.body);
    }
    let sixth = post_json(&login, &wrong_login(), forgeries[5]);

    assert_eq!(sixth.status, 429, "a forged header opened a new bucket: {}", sixth.body);
}

#[test]
fn throttle_forgery_cannot_lock_out_other_client() {
    // 127.0.0.2 plays the trusted proxy; the test's own 127.0.0.1 is an untrusted peer
    // that names the victim 203.0.113.50 in every forwarding header.
    let proxy = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
    let attacker = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let server = Setup::new().set("LOGIN_THROTTLE_RATE", "5/min").set("TRUSTED_PROXIES", "127.0.0.2").start();
    let forged = [
        ("X-Forwarded-For", "203.0.113.50"),
        ("X-Real-IP", "203.0.113.50"),
        ("Forwarded", "for=203.0.113.50"),
    ];
    let body = wrong_login();

    for attempt in 1..=5 {
        let status = raw_post_from(attacker, server.addr, "/api/auth/login/", &forged, &body);
        assert_eq!(status, 401, "attacker attempt {attempt}");
    }
    let attacker_sixth = raw_post_from(attacker, server.addr, "/api/auth/login/", &forged, &body);
    let victim =
        raw_post_from(proxy, server.addr, "/api/auth/login/", &[("X-Forwarded-For", "203.0.113.50")], &body);

    assert_eq!(attacker_sixth, 429, "the attacker's own bucket was not spent");
    assert_eq!(victim, 401, "the victim behind the proxy was locked out by forged headers");
}

#[test]
fn throttle_behind_proxy_separates_clients() {
    let server = Setup::new().set("LOGIN_THROTTLE_RATE", "5/min").set("TRUSTED_PROXIES", "127.0.0.1").start();
    let login = server.url("/api/auth/login/");
    let first_client = [("x-forwarded-for", "198.51.100.7")];

    for attempt in 1..=5 {
        let reply = post_json(&login, &wrong_login(), &first_client);
        assert_eq!(reply.status, 401, "first client attempt {attempt}: {}", reply.body);
    }
    let first_sixth = post_json(&login, &wrong_login(), &first_client);
    let second_client = post_json(&login, &wrong_login(), &[("x-forwarded-for", "203.0.113.9")]);
    // The client put 203.0.113.9 in front; the proxy appended the real address.
    let prefixed = post_json(&login, &wrong_login(), &[("x-forwarded-for", "203.0.113.9, 198.51.100.7")]);
    let real_ip = post_json(
        &login,
        &wrong_login(),
        &[("x-forwarded-for", "198.51.100.7"), ("x-real-ip", "203.0.113.9")],
    );

    assert_eq!(first_sixth.status, 429, "first client sixth attempt: {}", first_sixth.body);
    assert_eq!(second_client.status, 401, "second client was throttled: {}", second_client.body);
    assert_eq!(prefixed.status, 429, "a forged left-most entry dodged the limit: {}", prefixed.body);
    assert_eq!(real_ip.status, 429, "X-Real-IP dodged the limit: {}", real_ip.body);
}

// ---- CORS -----------------------------------------------------------------------

fn listed_origins_server() -> Server {
    Setup::new()
        .set("CORS_ALLOW_ALL_ORIGINS", "false")
        .set("CORS_ALLOWED_ORIGINS", &format!("{LISTED_ORIGIN}, {LISTED_DEV_ORIGIN}"))
        .start()
}

fn preflight(server: &Server, path: &str, origin: &str) -> Reply {
    send(
        "OPTIONS",
        &server.url(path),
        &[
            ("origin", origin),
            ("access-control-request-method", "POST"),
            ("access-control-request-headers", "content-type, x-csrftoken"),
        ],
        None,
    )
}

#[test]
fn cors_listed_origin_is_echoed_with_credentials() {
    let server = listed_origins_server();

    for origin in [LISTED_ORIGIN, LISTED_DEV_ORIGIN] {
        let reply = send("GET", &server.url("/healthz"), &[("origin", origin)], None);
        assert_eq!(reply.status, 200, "{origin}: {}", reply.body);
        assert_eq!(
            reply.header("access-control-allow-origin"),
            Some(origin),
            "{origin}: {:?}",
            reply.headers
        );
        assert_eq!(
            reply.header("access-control-allow-credentials"),
            Some("true"),
            "{origin}: {:?}",
            reply.headers
        );
        let vary = reply.header_all("vary").join(", ").to_ascii_lowercase();
        assert!(vary.contains("origin"), "{origin}: Vary is {vary:?}");
        let exposed = reply.header("access-control-expose-headers").unwrap_or_default().to_ascii_lowercase();
        assert!(exposed.contains("x-request-id"), "{origin}: exposed {exposed:?}");
    }
}

#[test]
fn cors_listed_origin_preflight_allows_headers() {
    let server = listed_origins_server();

    let reply = preflight(&server, "/api/auth/password/", LISTED_ORIGIN);

    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.header("access-control-allow-origin"), Some(LISTED_ORIGIN), "{:?}", reply.headers);
    assert_eq!(reply.header("access-control-allow-credentials"), Some("true"), "{:?}", reply.headers);
    let allowed = reply.header("access-control-allow-headers").unwrap_or_default().to_ascii_lowercase();
    for name in ["x-csrftoken", "content-type", "authorization", "x-request-id"] {
        assert!(allowed.contains(name), "{name} not allowed: {allowed:?}");
    }
    assert_security_headers(&reply, "preflight");
    assert_no_store(&reply, "preflight");
}

#[test]
fn cors_unlisted_origins_get_no_grant() {
    let server = listed_origins_server();
    let unlisted = [
        "https://app.example.com.evil.test",
        "https://evil-app.example.com",
        "http://app.example.com",
        "https://app.example.com:8443",
        "https://localhost:3000",
        "null",
        "https://evil.test",
    ];

    for origin in unlisted {
        let simple = send("GET", &server.url("/healthz"), &[("origin", origin)], None);
        assert_eq!(simple.status, 200, "{origin}: {}", simple.body);
        assert_eq!(
            simple.header("access-control-allow-origin"),
            None,
            "{origin} was granted: {:?}",
            simple.headers
        );
        assert_eq!(
            simple.header("access-control-allow-credentials"),
            None,
            "{origin} got credentials: {:?}",
            simple.headers
        );

        let rejected = preflight(&server, "/api/auth/login/", origin);
        assert_eq!(rejected.status, 403, "{origin} preflight: {}", rejected.body);
        assert_eq!(rejected.code(), "permission_denied", "{origin} preflight: {}", rejected.body);
        assert_eq!(
            rejected.header("access-control-allow-origin"),
            None,
            "{origin} preflight was granted: {:?}",
            rejected.headers
        );
        assert_security_headers(&rejected, "rejected preflight");
    }
}

#[test]
fn cors_allow_all_echoes_any_origin_but_null() {
    let server = Setup::new().start();

    let other = send("GET", &server.url("/healthz"), &[("origin", "https://anything.test")], None);
    let null = send("GET", &server.url("/healthz"), &[("origin", "null")], None);

    assert_eq!(
        other.header("access-control-allow-origin"),
        Some("https://anything.test"),
        "{:?}",
        other.headers
    );
    assert_eq!(null.header("access-control-allow-origin"), None, "null was granted: {:?}", null.headers);
}

// ---- security headers and input limits ------------------------------------------

#[test]
fn security_headers_on_every_status() {
    let server = Setup::new().start();
    let login = post_json(&server.url("/api/auth/login/"), &credentials(ADMIN, ADMIN_PASSWORD), &[]);
    assert_eq!(login.status, 200, "login: {}", login.body);
    let cookies = cookie_header(&login);
    let oversized_body = format!("{{\"token\": \"{}\"}}", "x".repeat(70 * 1024));

    let cases = [
        ("200 healthz", send("GET", &server.url("/healthz"), &[], None), 200, false),
        ("200 me", send("GET", &server.url("/api/auth/me/"), &[("cookie", &cookies)], None), 200, true),
        ("401", send("GET", &server.url("/api/auth/me/"), &[], None), 401, true),
        ("403", send("POST", &server.url("/api/auth/logout-all/"), &[("cookie", &cookies)], None), 403, true),
        ("404", send("GET", &server.url("/api/no-such-thing/"), &[], None), 404, true),
        ("405", send("DELETE", &server.url("/api/auth/me/"), &[], None), 405, true),
        ("413", post_json(&server.url("/api/auth/token/verify/"), &oversized_body, &[]), 413, true),
    ];

    for (case, reply, status, api) in &cases {
        assert_eq!(reply.status, *status, "{case}: {}", reply.body);
        assert_security_headers(reply, case);
        if *api {
            assert_no_store(reply, case);
        }
    }
}

#[test]
fn oversized_headers_get_413() {
    let server = Setup::new().start();
    let filler = "a".repeat(20 * 1024);

    let reply = send("GET", &server.url("/api/auth/me/"), &[("x-filler", &filler)], None);

    assert_eq!(reply.status, 413, "{}", reply.body);
    assert_eq!(reply.code(), "payload_too_large", "{}", reply.body);
    assert!(reply.json()["detail"].as_str().is_some_and(|d| d.contains("headers")), "{}", reply.body);
    assert_security_headers(&reply, "413 headers");
}

#[test]
fn oversized_body_detail_names_limit() {
    let server = Setup::new().start();
    let body = format!("{{\"token\": \"{}\"}}", "x".repeat(70 * 1024));

    let reply = post_json(&server.url("/api/auth/token/verify/"), &body, &[]);

    assert_eq!(reply.code(), "payload_too_large", "{}", reply.body);
    assert!(reply.json()["detail"].as_str().is_some_and(|d| d.contains("65536")), "{}", reply.body);
}

#[test]
fn login_rejects_overlong_password_and_username() {
    let server = Setup::new().start();
    let login = server.url("/api/auth/login/");

    let password = post_json(&login, &credentials(ADMIN, &"p".repeat(1025)), &[]);
    let username = post_json(&login, &credentials(&"u".repeat(151), ADMIN_PASSWORD), &[]);

    assert_eq!(password.status, 400, "{}", password.body);
    assert!(password.json()["fields"]["password"].is_array(), "{}", password.body);
    assert_eq!(username.status, 400, "{}", username.body);
    assert!(username.json()["fields"]["username"].is_array(), "{}", username.body);
}

#[test]
fn form_post_never_reaches_cookie_handler() {
    let server = Setup::new().start();
    let login = post_json(&server.url("/api/auth/login/"), &credentials(ADMIN, ADMIN_PASSWORD), &[]);
    assert_eq!(login.status, 200, "login: {}", login.body);
    let cookies = cookie_header(&login);
    let csrf = set_cookies(&login)["csrftoken"]
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("csrftoken=")
        .to_owned();

    // Even with a valid CSRF token, which a cross-site form cannot send, the form's
    // media type alone stops the request before logout-all would revoke the session.
    for content_type in ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"]
    {
        let reply = send(
            "POST",
            &server.url("/api/auth/logout-all/"),
            &[("cookie", &cookies), ("x-csrftoken", &csrf), ("content-type", content_type)],
            Some("a=b"),
        );
        assert_eq!(reply.status, 415, "{content_type}: {}", reply.body);
        assert_eq!(reply.code(), "unsupported_media_type", "{content_type}: {}", reply.body);
    }
    let refresh = send(
        "POST",
        &server.url("/api/auth/refresh/"),
        &[("cookie", &cookies), ("x-csrftoken", &csrf)],
        None,
    );

    assert_eq!(refresh.status, 200, "the session was revoked by a form post: {}", refresh.body);
}

// ---- cookies --------------------------------------------------------------------

#[test]
fn production_cookies_are_secure() {
    let server = Setup::production().start();

    let login = post_json(&server.url("/api/auth/login/"), &credentials(ADMIN, ADMIN_PASSWORD), &[]);
    assert_eq!(login.status, 200, "login: {}", login.body);
    let cookies = set_cookies(&login);

    for name in ["access_token", "refresh_token", "csrftoken"] {
        let cookie = cookies.get(name).unwrap_or_else(|| panic!("{name} not set: {cookies:?}"));
        assert!(cookie.contains("; Secure"), "{name} lacks Secure: {cookie}");
    }
    assert!(
        login.header("strict-transport-security").is_some_and(|hsts| hsts.contains("max-age=")),
        "HSTS missing: {:?}",
        login.headers
    );
}

#[test]
fn logout_removal_cookies_repeat_attributes() {
    let server = Setup::production().start();
    let login = post_json(&server.url("/api/auth/login/"), &credentials(ADMIN, ADMIN_PASSWORD), &[]);
    assert_eq!(login.status, 200, "login: {}", login.body);
    let set = set_cookies(&login);
    let csrf = set["csrftoken"].split(';').next().unwrap().trim_start_matches("csrftoken=").to_owned();

    let logout = send(
        "POST",
        &server.url("/api/auth/logout/"),
        &[("cookie", &cookie_header(&login)), ("x-csrftoken", &csrf)],
        None,
    );
    assert_eq!(logout.status, 204, "logout: {}", logout.body);
    let removed = set_cookies(&logout);

    let expected = [
        ("access_token", "Path=/", "SameSite=Lax", true),
        ("refresh_token", "Path=/api/auth/", "SameSite=Strict", true),
        ("csrftoken", "Path=/", "SameSite=Strict", false),
    ];
    for (name, path, same_site, http_only) in expected {
        let cookie = removed.get(name).unwrap_or_else(|| panic!("{name} not removed: {removed:?}"));
        assert!(cookie.contains("Max-Age=0"), "{name} not expired: {cookie}");
        assert!(cookie.contains(path), "{name} path differs: {cookie}");
        assert!(cookie.contains(same_site), "{name} SameSite differs: {cookie}");
        assert!(cookie.contains("; Secure"), "{name} lacks Secure: {cookie}");
        assert_eq!(cookie.contains("HttpOnly"), http_only, "{name} HttpOnly differs: {cookie}");
    }
}

#[test]
fn development_cookies_are_not_secure() {
    let server = Setup::new().start();

    let login = post_json(&server.url("/api/auth/login/"), &credentials(ADMIN, ADMIN_PASSWORD), &[]);

    let cookies = set_cookies(&login);
    assert!(!cookies["access_token"].contains("Secure"), "{cookies:?}");
    assert_eq!(login.header("strict-transport-security"), None, "{:?}", login.headers);
}

// ---- production start-up and check --deploy -------------------------------------

#[test]
fn production_refuses_each_unsafe_setting() {
    let weak_key = "k".repeat(48);
    let cases: Vec<(&str, Setup, &str)> = vec![
        ("missing key", Setup::production().unset("SECRET_KEY"), "SECRET_KEY"),
        ("short key", Setup::production().set("SECRET_KEY", "too-short"), "SECRET_KEY"),
        ("placeholder key", Setup::production().set("SECRET_KEY", &weak_key), "SECRET_KEY"),
        ("short fallback", Setup::production().set("SECRET_KEY_FALLBACKS", "old"), "SECRET_KEY_FALLBACKS"),
        ("all origins", Setup::production().set("CORS_ALLOW_ALL_ORIGINS", "true"), "CORS_ALLOW_ALL_ORIGINS"),
        ("plain HTTP", Setup::production().unset("TRUSTED_PROXIES"), "TRUSTED_PROXIES"),
        ("trust everyone", Setup::production().set("TRUSTED_PROXIES", "0.0.0.0/0"), "TRUSTED_PROXIES"),
        (
            "bad origin",
            Setup::production().set("CORS_ALLOWED_ORIGINS", "https://app.example.com/"),
            "CORS_ALLOWED_ORIGINS",
        ),
        ("cert without key", Setup::production().set("TLS_CERT_FILE", "cert.pem"), "TLS_KEY_FILE"),
        (
            "unreadable cert",
            Setup::production().set("TLS_CERT_FILE", "missing.pem").set("TLS_KEY_FILE", "missing.key"),
            "TLS_CERT_FILE",
        ),
    ];

    for (case, setup, setting) in cases {
        let output = setup.run(&["serve"], "");
        let stderr = String::from_utf8_lossy(&output.stderr);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(!output.status.success(), "{case}: started; stdout {stdout}");
        assert!(!stdout.contains("listening on"), "{case}: listened; stdout {stdout}");
        assert!(stderr.contains(setting), "{case}: stderr does not name {setting}: {stderr}");
    }
}

#[test]
fn check_deploy_lists_unsafe_settings() {
    let setup = Setup::new()
        .unset("SECRET_KEY")
        .set("CORS_ALLOW_ALL_ORIGINS", "true")
        .set("CORS_ALLOWED_ORIGINS", "http://app.example.com")
        .set("ACCESS_TOKEN_LIFETIME", "1d")
        .set("LOGIN_THROTTLE_RATE", "1000/min");

    let output = setup.run(&["check", "--deploy"], "");

    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "exit status; stdout {stdout}");
    for setting in [
        "SECRET_KEY",
        "CORS_ALLOW_ALL_ORIGINS",
        "TRUSTED_PROXIES",
        "CORS_ALLOWED_ORIGINS",
        "ACCESS_TOKEN_LIFETIME",
        "LOGIN_THROTTLE_RATE",
    ] {
        assert!(stdout.contains(setting), "{setting} not listed: {stdout}");
    }
}

#[test]
fn check_deploy_passes_safe_settings() {
    let setup = Setup::production().unset("LOGIN_THROTTLE_RATE");

    let output = setup.run(&["check", "--deploy"], "");

    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "exit status; stdout {stdout}");
    assert!(stdout.contains("no problems found"), "{stdout}");
}

#[test]
fn check_deploy_evaluates_development_as_production() {
    // Development defaults (all origins allowed, no proxy, no key) pass plain `check`.
    let setup = Setup::new().unset("SECRET_KEY");

    let plain = setup.run(&["check"], "");
    let deploy = setup.run(&["check", "--deploy"], "");

    assert_eq!(plain.status.code(), Some(0), "check: {}", String::from_utf8_lossy(&plain.stdout));
    assert_eq!(deploy.status.code(), Some(1), "check --deploy: {}", String::from_utf8_lossy(&deploy.stdout));
}

// ---- HTTPS ----------------------------------------------------------------------

/// Generates a self-signed certificate for 127.0.0.1 and localhost and returns the
/// certificate PEM, the key PEM and the certificate DER.
fn self_signed_certificate() -> (String, String, Vec<u8>) {
    let key = rcgen::KeyPair::generate().expect("generate a key pair");
    let params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .expect("certificate parameters");
    let certificate = params.self_signed(&key).expect("self-sign the certificate");
    (certificate.pem(), key.serialize_pem(), certificate.der().to_vec())
}

fn tls_client(certificate_der: &[u8]) -> ureq::Agent {
    let root = ureq::tls::Certificate::from_der(certificate_der).to_owned();
    let tls = ureq::tls::TlsConfig::builder()
        .provider(ureq::tls::TlsProvider::Rustls)
        .root_certs(ureq::tls::RootCerts::Specific(Arc::new(vec![root])))
        .build();
    ureq::Agent::config_builder().http_status_as_error(false).max_redirects(0).tls_config(tls).build().into()
}

#[test]
fn https_serves_with_self_signed_certificate() {
    let (certificate_pem, key_pem, certificate_der) = self_signed_certificate();
    let setup = Setup::production().unset("TRUSTED_PROXIES");
    let cert_file = setup.write_file("cert.pem", &certificate_pem);
    let key_file = setup.write_file("key.pem", &key_pem);
    let server = setup
        .set("TLS_CERT_FILE", cert_file.to_str().unwrap())
        .set("TLS_KEY_FILE", key_file.to_str().unwrap())
        .start();
    let agent = tls_client(&certificate_der);
    let base = format!("https://{}", server.addr);

    let health = send_with(&agent, "GET", &format!("{base}/healthz"), &[], None);
    let login = send_with(
        &agent,
        "POST",
        &format!("{base}/api/auth/login/"),
        &[("content-type", "application/json")],
        Some(&credentials(ADMIN, ADMIN_PASSWORD)),
    );

    assert_eq!(health.status, 200, "healthz over HTTPS: {}", health.body);
    assert_security_headers(&health, "HTTPS healthz");
    assert!(health.header("strict-transport-security").is_some(), "HSTS missing: {:?}", health.headers);
    assert_eq!(login.status, 200, "login over HTTPS: {}", login.body);
    let cookies = set_cookies(&login);
    assert!(cookies["access_token"].contains("; Secure"), "{cookies:?}");
}

#[test]
fn https_rejects_untrusted_certificate() {
    // A client that does not trust the self-signed certificate must fail the handshake,
    // which shows the listener really speaks TLS with that certificate.
    let (certificate_pem, key_pem, _) = self_signed_certificate();
    let (_, _, other_der) = self_signed_certificate();
    let setup = Setup::new();
    let cert_file = setup.write_file("cert.pem", &certificate_pem);
    let key_file = setup.write_file("key.pem", &key_pem);
    let server = setup
        .set("TLS_CERT_FILE", cert_file.to_str().unwrap())
        .set("TLS_KEY_FILE", key_file.to_str().unwrap())
        .start();

    let result = tls_client(&other_der).get(&format!("https://{}/healthz", server.addr)).call();

    assert!(result.is_err(), "a certificate the client does not trust was accepted");
}
