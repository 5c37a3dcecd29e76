//! Cross-origin resource sharing, built on actix-cors from `CORS_ALLOW_ALL_ORIGINS` and
//! `CORS_ALLOWED_ORIGINS`.
//!
//! A listed origin matches only when scheme, host and port are all equal; it is echoed
//! in `Access-Control-Allow-Origin` with credentials allowed and `Vary: Origin`. Any
//! other origin, `null` included, gets no `Access-Control-Allow-Origin`, so the browser
//! keeps the response from the page. Requests still reach the handler: a cross-origin
//! request without a grant is the browser's to block, and the CSRF check and the
//! JSON-only rule keep unsafe requests away from cookie-authenticated handlers.
//!
//! `CORS_ALLOW_ALL_ORIGINS` is the development default, and production refuses to start
//! with it. It echoes every origin except `null` with credentials, as django-cors-headers
//! does with `CORS_ALLOW_ALL_ORIGINS` and `CORS_ALLOW_CREDENTIALS`.

use actix_cors::Cors;
use actix_web::http::{Method, header};

use crate::edge::REQUEST_ID_HEADER;

/// The request headers a cross-origin client may send.
const ALLOWED_HEADERS: [&str; 4] = ["x-csrftoken", "content-type", "authorization", REQUEST_ID_HEADER];
/// How long a browser may cache a preflight response, in seconds.
const PREFLIGHT_MAX_AGE_SECS: usize = 3600;

/// An origin that is not `scheme://host[:port]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not an origin; expected scheme://host or scheme://host:port with http or https and no path"
)]
pub struct InvalidOrigin(pub String);

/// Normalises an origin as browsers send it in the `Origin` header: scheme and host in
/// lower case, the default port (80 for http, 443 for https) left out.
pub fn normalize_origin(origin: &str) -> Result<String, InvalidOrigin> {
    let invalid = || InvalidOrigin(origin.to_owned());
    let lower = origin.trim().to_ascii_lowercase();
    let (scheme, authority) = lower.split_once("://").ok_or_else(invalid)?;
    let default_port = match scheme {
        "http" => "80",
        "https" => "443",
        _ => return Err(invalid()),
    };
    let forbidden = |c: char| matches!(c, '/' | '?' | '#' | '@' | '\\') || c.is_whitespace();
    if authority.is_empty() || authority.contains(forbidden) {
        return Err(invalid());
    }
    let (host, port) = match authority.rsplit_once(':') {
        // An IPv6 host such as `[::1]` contains colons; a port follows the `]`.
        Some((host, port)) if !port.contains(']') => (host, Some(port)),
        _ => (authority, None),
    };
    if host.is_empty() {
        return Err(invalid());
    }
    match port {
        None => Ok(format!("{scheme}://{host}")),
        Some(port) if port.parse::<u16>().is_err() => Err(invalid()),
        Some(port) if port == default_port => Ok(format!("{scheme}://{host}")),
        Some(port) => Ok(format!("{scheme}://{host}:{port}")),
    }
}

/// The CORS settings; [`CorsPolicy::middleware`] builds the actix-cors middleware of one
/// resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorsPolicy {
    allow_all: bool,
    allowed_origins: Vec<String>,
}

impl CorsPolicy {
    /// Creates the policy from `CORS_ALLOW_ALL_ORIGINS` and `CORS_ALLOWED_ORIGINS`; each
    /// listed origin is normalised with [`normalize_origin`].
    pub fn new(allow_all: bool, allowed_origins: &[String]) -> Result<Self, InvalidOrigin> {
        let allowed_origins =
            allowed_origins.iter().map(|origin| normalize_origin(origin)).collect::<Result<_, _>>()?;
        Ok(Self { allow_all, allowed_origins })
    }

    /// Builds the middleware. actix-cors responds to preflights itself, so they never
    /// reach the handler or the login throttle inside it.
    pub fn middleware(&self) -> Cors {
        let mut cors = Cors::default()
            .allowed_methods([Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE])
            .allowed_headers(ALLOWED_HEADERS)
            .expose_headers([REQUEST_ID_HEADER])
            .supports_credentials()
            .max_age(PREFLIGHT_MAX_AGE_SECS);
        for origin in &self.allowed_origins {
            cors = cors.allowed_origin(origin);
        }
        if self.allow_all {
            cors = cors.allowed_origin_fn(|origin, _head| origin.as_bytes() != b"null");
        }
        cors
    }
}

/// Removes `Access-Control-Allow-Credentials` and `Access-Control-Expose-Headers` from a
/// response that grants no origin. actix-cors adds both to every response; without
/// `Access-Control-Allow-Origin` they grant nothing, and removing them leaves a rejected
/// origin's response with no CORS header but `Vary`.
pub fn drop_credentials_without_grant(headers: &mut header::HeaderMap) {
    if !headers.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN) {
        headers.remove(header::ACCESS_CONTROL_ALLOW_CREDENTIALS);
        headers.remove(header::ACCESS_CONTROL_EXPOSE_HEADERS);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_origin_lowers_and_drops_default_port() {
        assert_eq!(
            normalize_origin("HTTPS://App.Example.com:443").ok(),
            Some("https://app.example.com".into())
        );
        assert_eq!(normalize_origin("http://localhost:3000").ok(), Some("http://localhost:3000".into()));
        assert_eq!(normalize_origin("http://[::1]:8080").ok(), Some("http://[::1]:8080".into()));
        assert_eq!(normalize_origin("http://[::1]").ok(), Some("http://[::1]".into()));
    }

    #[test]
    fn normalize_origin_rejects_non_origins() {
        for value in [
            "null",
            "*",
            "app.example.com",
            "https://app.example.com/",
            "https://app.example.com/path",
            "ftp://app.example.com",
            "https://user@app.example.com",
            "https://app.example.com:99999",
            "https://",
        ] {
            assert!(normalize_origin(value).is_err(), "accepted {value:?}");
        }
    }
}
