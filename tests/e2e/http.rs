//! HTTP requests to a test server, responses and contract assertions.

use serde_json::{Value, json};

use crate::cookies::{CookieJar, SetCookie};
use crate::harness::{ADMIN_PASSWORD, ADMIN_USERNAME, TestServer};

/// The `User-Agent` of every request, so audit entries can be checked against it.
pub const USER_AGENT: &str = "finetune-e2e";

/// A request under construction; `send` performs it.
pub struct Request<'a> {
    server: &'a TestServer,
    agent: &'a ureq::Agent,
    method: &'static str,
    path: String,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
}

impl TestServer {
    pub fn get(&self, path: &str) -> Request<'_> {
        self.request("GET", path)
    }

    pub fn post(&self, path: &str) -> Request<'_> {
        self.request("POST", path)
    }

    pub fn request(&self, method: &'static str, path: &str) -> Request<'_> {
        Request {
            server: self,
            agent: &self.agent,
            method,
            path: path.to_owned(),
            headers: Vec::new(),
            body: None,
        }
    }

    /// Logs in through `/api/auth/login/` and returns the response.
    pub fn login(&self, username: &str, password: &str) -> Response {
        self.post("/api/auth/login/").json(&json!({"username": username, "password": password})).send()
    }

    /// Logs in and returns the cookies of the new session, and panics unless the login succeeds.
    pub fn login_session(&self, username: &str, password: &str) -> CookieJar {
        let response = self.login(username, password);
        assert_eq!(response.status, 200, "login of {username} failed: {}", response.body);
        CookieJar::from_response(&response)
    }

    /// Logs the admin in and returns the cookies of the new session.
    pub fn admin_session(&self) -> CookieJar {
        self.login_session(ADMIN_USERNAME, ADMIN_PASSWORD)
    }

    /// Obtains an access and refresh token pair through `/api/auth/token/`.
    pub fn obtain_token_pair(&self, username: &str, password: &str) -> TokenPair {
        let response =
            self.post("/api/auth/token/").json(&json!({"username": username, "password": password})).send();
        assert_eq!(response.status, 200, "token obtain for {username} failed: {}", response.body);
        TokenPair::from_response(&response)
    }

    /// Refreshes a session with its cookies and the matching `X-CSRFToken`.
    pub fn refresh_session(&self, jar: &CookieJar) -> Response {
        self.post("/api/auth/refresh/").cookies(jar).csrf(jar).send()
    }

    /// Refreshes a token through `/api/auth/token/refresh/`.
    pub fn refresh_token(&self, refresh: &str) -> Response {
        self.post("/api/auth/token/refresh/").json(&json!({"refresh": refresh})).send()
    }
}

impl<'a> Request<'a> {
    /// Sends the request through `agent` instead of the server's shared client.
    pub fn via(mut self, agent: &'a ureq::Agent) -> Self {
        self.agent = agent;
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn json(self, body: &Value) -> Self {
        self.body("application/json", body.to_string().into_bytes())
    }

    pub fn body(mut self, content_type: &str, body: Vec<u8>) -> Self {
        self.body = Some(body);
        self.header("Content-Type", content_type)
    }

    pub fn bearer(self, token: &str) -> Self {
        self.header("Authorization", &format!("Bearer {token}"))
    }

    /// Sends every cookie of `jar` in one `Cookie` header.
    pub fn cookies(self, jar: &CookieJar) -> Self {
        match jar.header_value() {
            Some(value) => self.header("Cookie", &value),
            None => self,
        }
    }

    /// Sends `X-CSRFToken` equal to the `csrftoken` cookie of `jar`.
    pub fn csrf(self, jar: &CookieJar) -> Self {
        let token = jar.get("csrftoken").expect("the cookie jar has no csrftoken").to_owned();
        self.header("X-CSRFToken", &token)
    }

    pub fn request_id(self, id: &str) -> Self {
        self.header("X-Request-ID", id)
    }

    pub fn send(self) -> Response {
        let url = format!("{}{}", self.server.base_url, self.path);
        let mut builder = ureq::http::Request::builder().method(self.method).uri(&url);
        for (name, value) in &self.headers {
            builder = builder.header(name, value);
        }
        let result = match self.body {
            Some(body) => builder.body(body).map(|request| self.agent.run(request)),
            None => builder.body(()).map(|request| self.agent.run(request)),
        };
        let description = format!("{} {}", self.method, self.path);
        let mut response = result
            .unwrap_or_else(|error| panic!("building {description} failed: {error}"))
            .unwrap_or_else(|error| panic!("{description} failed: {error}"));

        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| {
                (name.as_str().to_owned(), String::from_utf8_lossy(value.as_bytes()).into_owned())
            })
            .collect();
        let body = response
            .body_mut()
            .read_to_string()
            .unwrap_or_else(|error| panic!("reading the body of {description} failed: {error}"));
        Response { status, headers, body }
    }
}

/// A received response with its body read as text.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    /// Header names in lower case, in the order received.
    headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    /// Returns the first value of header `name`, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(key, _)| *key == name).map(|(_, value)| value.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|error| {
            panic!("the body is not JSON ({error}), status {}: {:?}", self.status, self.body)
        })
    }

    pub fn set_cookies(&self) -> Vec<SetCookie> {
        self.headers
            .iter()
            .filter(|(name, _)| name == "set-cookie")
            .map(|(_, value)| SetCookie::parse(value))
            .collect()
    }

    /// Returns the only `Set-Cookie` for `name`, and panics when there is none or more than one.
    pub fn set_cookie(&self, name: &str) -> SetCookie {
        let mut matching: Vec<SetCookie> =
            self.set_cookies().into_iter().filter(|cookie| cookie.name == name).collect();
        assert_eq!(
            matching.len(),
            1,
            "expected one Set-Cookie for {name}, got {:?}; body: {}",
            self.set_cookies(),
            self.body
        );
        matching.remove(0)
    }
}

/// Asserts an error response of the contract: `status`, a JSON body with a `detail` sentence and `code`.
#[track_caller]
pub fn assert_error(response: &Response, status: u16, code: &str) {
    assert_eq!(response.status, status, "expected status {status} ({code}), body: {}", response.body);
    let content_type = response.header("Content-Type").unwrap_or_default();
    assert!(
        content_type.starts_with("application/json"),
        "expected a JSON error, got Content-Type {content_type:?}; body: {}",
        response.body
    );
    let body = response.json();
    assert_eq!(body["code"], code, "unexpected error code; body: {}", response.body);
    let detail = body["detail"].as_str().unwrap_or_default();
    assert!(!detail.is_empty(), "the error has no detail sentence; body: {}", response.body);
}

/// Asserts that a response carries a non-empty `X-Request-ID`.
#[track_caller]
pub fn assert_request_id(response: &Response) {
    let id = response.header("X-Request-ID").unwrap_or_default();
    assert!(!id.is_empty(), "X-Request-ID is missing, status {}; body: {}", response.status, response.body);
}

/// Returns a new random request id.
pub fn new_request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The `{"access", "refresh"}` body of the token endpoints.
#[derive(Clone, Debug)]
pub struct TokenPair {
    pub access: String,
    pub refresh: String,
}

impl TokenPair {
    /// Reads a token pair, asserting that the body has exactly these two string fields.
    #[track_caller]
    pub fn from_response(response: &Response) -> TokenPair {
        let body = response.json();
        let mut keys: Vec<&str> =
            body.as_object().map(|object| object.keys().map(String::as_str).collect()).unwrap_or_default();
        keys.sort_unstable();
        assert_eq!(
            keys,
            ["access", "refresh"],
            "expected exactly access and refresh; body: {}",
            response.body
        );
        let access = body["access"].as_str().unwrap_or_default().to_owned();
        let refresh = body["refresh"].as_str().unwrap_or_default().to_owned();
        assert!(!access.is_empty(), "access is not a non-empty string; body: {}", response.body);
        assert!(!refresh.is_empty(), "refresh is not a non-empty string; body: {}", response.body);
        TokenPair { access, refresh }
    }
}
