//! The outermost middleware: it sees every response, errors from inner layers included.
//!
//! It resolves the request id and the client IP into a [`RequestContext`], opens the
//! request's tracing span, turns any error that is not yet in the contract's shape into
//! one, and adds `X-Request-ID` and the security headers. It answers a request whose
//! headers exceed [`MAX_HEADER_BYTES`] with 413 before routing.
//!
//! Responses that actix-http writes before any middleware runs (a request line or
//! header block it cannot parse, or one over its own 128 KiB buffer) carry none of this.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse, Url};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::uri::{PathAndQuery, Uri};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, ResponseError, web};
use finetune_core::RequestContext;
use tracing::Instrument;

use crate::cors::drop_credentials_without_grant;
use crate::error::ApiError;
use crate::state::AppState;

/// The request-id header.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
const MAX_REQUEST_ID_CHARS: usize = 128;
/// The largest header block accepted: names and values of all request headers, in bytes.
/// Two token cookies and a bearer token take about 2 KiB.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Same-origin scripts only; no plugins; no framing.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; object-src 'none'; \
     frame-ancestors 'none'; base-uri 'self'; form-action 'self'";

/// Returns the client's request id when it is sane (1 to 128 characters of
/// `A-Z a-z 0-9 - _ . :`), else a new UUID.
fn request_id(request: &ServiceRequest) -> String {
    let sent = request.headers().get(REQUEST_ID_HEADER).and_then(|v| v.to_str().ok());
    match sent {
        Some(id)
            if !id.is_empty()
                && id.len() <= MAX_REQUEST_ID_CHARS
                && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':')) =>
        {
            id.to_owned()
        }
        _ => uuid::Uuid::new_v4().to_string(),
    }
}

/// Returns 400 when the path or the query string contains an encoded NUL (`%00`), which
/// no id, name or filter may contain and PostgreSQL cannot store.
fn check_no_nul(request: &ServiceRequest) -> Result<(), ApiError> {
    let uri = request.uri();
    let encoded = uri.path_and_query().map_or("", |value| value.as_str());
    if encoded.to_ascii_lowercase().contains("%00") {
        return Err(ApiError::invalid_field(
            "non_field_errors",
            "The URL must not contain NUL characters (%00).",
        ));
    }
    Ok(())
}

/// Returns 413 when the request headers together exceed [`MAX_HEADER_BYTES`].
fn check_header_size(request: &ServiceRequest) -> Result<(), ApiError> {
    let total: usize =
        request.headers().iter().map(|(name, value)| name.as_str().len() + value.as_bytes().len()).sum();
    if total > MAX_HEADER_BYTES {
        return Err(ApiError::payload_too_large(format!(
            "Request headers are larger than {MAX_HEADER_BYTES} bytes."
        )));
    }
    Ok(())
}

fn client_ip(request: &ServiceRequest, state: Option<&AppState>) -> IpAddr {
    let peer = request.peer_addr().map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |addr| addr.ip());
    let Some(state) = state else {
        return peer;
    };
    let forwarded = request.headers().get_all("x-forwarded-for").filter_map(|v| v.to_str().ok());
    state.trusted_proxies.client_ip(peer, forwarded.collect::<Vec<_>>().into_iter())
}

/// Routes an API path without its trailing slash as the path with it, so each API
/// resource has one static pattern. A resource with two patterns is matched by a regex
/// set, which cost about a tenth of the CPU time of `/api/auth/me/` in a profile
/// (docs/BENCHMARKS.md). The request context keeps the path as the client sent it.
fn add_api_trailing_slash(request: &mut ServiceRequest) {
    let path = request.path();
    if !path.starts_with("/api/") || path.ends_with('/') {
        return;
    }
    let target = match request.query_string() {
        "" => format!("{path}/"),
        query => format!("{path}/?{query}"),
    };
    let mut parts = request.head().uri.clone().into_parts();
    let Ok(path_and_query) = PathAndQuery::from_maybe_shared(target) else {
        return;
    };
    parts.path_and_query = Some(path_and_query);
    let Ok(uri) = Uri::from_parts(parts) else {
        return;
    };
    request.match_info_mut().set(Url::new(uri.clone()));
    request.head_mut().uri = uri;
}

/// Handles every request first and every response last; wrap it outermost with
/// `actix_web::middleware::from_fn`.
pub async fn edge(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let started = Instant::now();
    let state = request.app_data::<web::Data<AppState>>().map(|data| data.get_ref().clone());
    let context = RequestContext {
        request_id: request_id(&request),
        client_ip: Some(client_ip(&request, state.as_ref())),
        user_agent: request
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|agent| agent.chars().take(RequestContext::MAX_USER_AGENT_CHARS).collect()),
        method: request.method().to_string(),
        path: request.path().chars().take(RequestContext::MAX_PATH_CHARS).collect(),
    };
    request.extensions_mut().insert(context.clone());

    let span = tracing::info_span!(
        "request",
        request_id = %context.request_id,
        method = %request.method(),
        path = %request.path(),
        client_ip = ?context.client_ip,
    );
    let is_api = request.path().starts_with("/api/");

    let mut request = request;
    add_api_trailing_slash(&mut request);
    let result = match check_header_size(&request).and_then(|()| check_no_nul(&request)) {
        Ok(()) => next.call(request).instrument(span.clone()).await.map(ServiceResponse::map_into_boxed_body),
        Err(error) => Ok(request.into_response(error.error_response())),
    };
    // NOTE: an error from an App-level middleware arrives here as `Err` and leaves
    // without these headers, because the request cannot be cloned before routing.
    // Middleware therefore wraps resources, inside `errors_to_responses`.
    let mut response = contract_shaped(result?);

    let production = state.as_ref().is_some_and(|s| s.production);
    add_headers(response.headers_mut(), &context.request_id, is_api, production);

    let _entered = span.enter();
    tracing::info!(
        status = response.status().as_u16(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "request finished"
    );
    Ok(response)
}

/// Turns an `Err` from the middleware and handlers of a resource into a
/// response in the contract's shape, so [`edge`] can add its headers. It must wrap the
/// resource outermost; the request can be cloned there because routing is done.
pub async fn errors_to_responses(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let http_request = request.request().clone();
    match next.call(request).await {
        Ok(response) => Ok(response.map_into_boxed_body()),
        Err(error) => {
            let api_error = ApiError::from_framework(&error);
            Ok(ServiceResponse::new(http_request, api_error.error_response()))
        }
    }
}

/// Replaces the body of an error response that actix-web or a middleware produced
/// itself (not an [`ApiError`]) with the contract's body for that error.
fn contract_shaped(response: ServiceResponse<BoxBody>) -> ServiceResponse<BoxBody> {
    let foreign_error =
        response.response().error().is_some_and(|error| error.as_error::<ApiError>().is_none());
    if !foreign_error {
        return response;
    }
    let api_error = match response.response().error() {
        Some(error) => {
            tracing::debug!(%error, "framework error mapped to the contract");
            ApiError::from_framework(error)
        }
        None => ApiError::from_status(response.status()),
    };
    // Headers that a middleware added to its error response (CORS `Vary`, say) stay.
    let (request, original) = response.into_parts();
    let mut replacement = api_error.error_response();
    let own: Vec<HeaderName> = replacement.headers().keys().cloned().collect();
    for (name, value) in original.headers() {
        if !own.contains(name) {
            replacement.headers_mut().append(name.clone(), value.clone());
        }
    }
    ServiceResponse::new(request, replacement)
}

fn add_headers(
    headers: &mut actix_web::http::header::HeaderMap,
    request_id: &str,
    is_api: bool,
    production: bool,
) {
    drop_credentials_without_grant(headers);
    if let Ok(value) = HeaderValue::from_str(request_id) {
        headers.insert(HeaderName::from_static(REQUEST_ID_HEADER), value);
    }
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    if is_api {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if production {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
}
