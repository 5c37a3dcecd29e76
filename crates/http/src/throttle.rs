//! The login throttle: one token bucket per client IP, shared by the login and
//! token-obtain endpoints and by every worker thread.
//!
//! The bucket has room for the burst of `LOGIN_THROTTLE_RATE` and refills evenly over its
//! period. Only `POST` is counted, so CORS preflights and other methods pass. The
//! middleware runs before the handler, so an attempt is counted before its password is
//! checked.
//!
//! The key is the client IP that the edge middleware resolved through
//! `TRUSTED_PROXIES`, never a forwarding header read directly, so a client that is not
//! a trusted proxy can neither dodge the limit nor spend someone else's bucket.

use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;

use actix_governor::governor::NotUntil;
use actix_governor::governor::clock::{Clock, DefaultClock, QuantaInstant};
use actix_governor::governor::middleware::NoOpMiddleware;
use actix_governor::{Governor, GovernorConfig, GovernorConfigBuilder, KeyExtractor};
use actix_web::dev::ServiceRequest;
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpMessage, HttpResponse, HttpResponseBuilder, ResponseError};
use finetune_core::RequestContext;
use finetune_core::settings::Rate;

use crate::error::ApiError;

/// The rate-limit key: the client IP resolved by the edge middleware. IPv6 clients are
/// keyed by their /64 network, because one subscriber usually gets a whole /64 and
/// could otherwise take a fresh bucket with every address.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientIpKey;

/// Returns the bucket key of `ip`: IPv4 as is, IPv6 cut to its /64 prefix.
fn bucket_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & (u128::MAX << 64);
            IpAddr::V6(Ipv6Addr::from(prefix))
        }
    }
}

impl KeyExtractor for ClientIpKey {
    type Key = IpAddr;
    type KeyExtractionError = ApiError;

    fn extract(&self, request: &ServiceRequest) -> Result<IpAddr, ApiError> {
        let resolved = request.extensions().get::<RequestContext>().and_then(|context| context.client_ip);
        // The edge middleware always sets the context; without it, the TCP peer is the
        // only address that a client cannot forge.
        let ip = resolved.or_else(|| request.peer_addr().map(|addr| addr.ip()));
        let Some(ip) = ip else {
            return Err(ApiError::internal("login throttle: the request has no client address"));
        };
        Ok(bucket_key(ip))
    }

    fn exceed_rate_limit_response(
        &self,
        negative: &NotUntil<QuantaInstant>,
        _response: HttpResponseBuilder,
    ) -> HttpResponse {
        let wait = negative.wait_time_from(DefaultClock::default().now());
        throttled(wait).error_response()
    }
}

/// 429 `throttled`, with `Retry-After` rounded up to whole seconds (at least 1), so a
/// client that waits that long finds a token in the bucket.
pub fn throttled(wait: Duration) -> ApiError {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let seconds = seconds.max(1);
    tracing::info!(retry_after = seconds, "login throttled");
    ApiError {
        retry_after: Some(seconds),
        ..ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "throttled",
            format!("Request was throttled. Expected available in {seconds} seconds."),
        )
    }
}

/// The shared login bucket store. Build it once, before `HttpServer::new`, and clone it
/// into each worker's app. Clones share one store, so the limit applies across workers.
#[derive(Debug, Clone)]
pub struct LoginThrottle {
    config: GovernorConfig<ClientIpKey, NoOpMiddleware>,
}

impl LoginThrottle {
    /// Creates the store for `rate`: a burst of `rate.burst` requests, then one more
    /// every `rate.period / rate.burst`.
    pub fn new(rate: Rate) -> Result<Self, ApiError> {
        let refill = rate.period / rate.burst.max(1);
        let config = GovernorConfigBuilder::default()
            .period(refill)
            .burst_size(rate.burst)
            .methods(vec![Method::POST])
            .key_extractor(ClientIpKey)
            .finish();
        let Some(config) = config else {
            return Err(ApiError::internal(format!(
                "LOGIN_THROTTLE_RATE gives an empty bucket: burst {} over {:?}",
                rate.burst, rate.period
            )));
        };
        Ok(Self { config })
    }

    /// Builds the middleware for one resource. Every instance counts in the same store.
    pub fn middleware(&self) -> Governor<ClientIpKey, NoOpMiddleware> {
        Governor::new(&self.config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_key_keeps_ipv4() {
        let ip = IpAddr::from([198, 51, 100, 7]);
        assert_eq!(bucket_key(ip), ip);
    }

    #[test]
    fn bucket_key_cuts_ipv6_to_64() {
        let ip: IpAddr = "2001:db8:1:2:aaaa:bbbb:cccc:dddd".parse().unwrap_or(IpAddr::from([0; 16]));
        let expected: IpAddr = "2001:db8:1:2::".parse().unwrap_or(IpAddr::from([1; 16]));
        assert_eq!(bucket_key(ip), expected);
    }

    #[test]
    fn throttled_rounds_retry_after_up() {
        assert_eq!(throttled(Duration::from_millis(11_200)).retry_after, Some(12));
        assert_eq!(throttled(Duration::from_secs(12)).retry_after, Some(12));
        assert_eq!(throttled(Duration::ZERO).retry_after, Some(1));
    }

    #[test]
    fn throttled_response_has_contract_shape() {
        let response = throttled(Duration::from_secs(3)).error_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        let retry_after = response.headers().get("retry-after").and_then(|v| v.to_str().ok());
        assert_eq!(retry_after, Some("3"));
    }

    #[test]
    fn login_throttle_accepts_one_per_day() {
        let rate = Rate { burst: 1, period: Duration::from_secs(86_400) };
        assert!(LoginThrottle::new(rate).is_ok());
    }
}
