//! What the audit log and the logs need to know about the request behind an operation.

use std::net::IpAddr;

/// The origin of a request: its id, the resolved client IP and the user agent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestContext {
    /// The request id sent back in `X-Request-ID`.
    pub request_id: String,
    /// The client IP: the TCP peer, or the forwarded client when the peer is a
    /// trusted proxy. `None` for operations that do not come from a request.
    pub client_ip: Option<IpAddr>,
    /// The `User-Agent` header, cut to [`RequestContext::MAX_USER_AGENT_CHARS`].
    pub user_agent: Option<String>,
    /// The HTTP method, empty outside requests.
    pub method: String,
    /// The request path without the query, cut to [`RequestContext::MAX_PATH_CHARS`].
    pub path: String,
}

impl RequestContext {
    /// The maximum number of user-agent characters kept.
    pub const MAX_USER_AGENT_CHARS: usize = 512;
    /// The maximum number of path characters kept.
    pub const MAX_PATH_CHARS: usize = 512;

    /// Creates the context of an operation started from the command line.
    pub fn command_line() -> Self {
        Self::default()
    }
}
