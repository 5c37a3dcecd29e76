//! Helpers for the edge tests: a `finetune serve` process on a SQLite file in its own
//! temporary folder, an HTTP client, and raw requests from a chosen loopback address.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// The admin created before each server starts.
pub const ADMIN: &str = "admin";
/// The admin's password.
pub const ADMIN_PASSWORD: &str = "edge-tests correct horse battery";
/// A production-grade signing key for the test servers (48 characters).
pub const SECRET_KEY: &str = "edge-tests-3f9a1c7e5b2d4806a9c1e3f5b7d9026481ace";
/// A throttle rate that no test reaches unless it tests the throttle.
pub const RELAXED_THROTTLE: &str = "1000/min";

/// The maximum wait for a command to finish or a server to print `listening on`.
const PROCESS_TIMEOUT: Duration = Duration::from_secs(60);
/// The pause between checks on a process that should exit by itself.
const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// The maximum wait for one HTTP exchange.
const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_finetune")
}

/// A temporary folder with a SQLite database URL and the settings of one test.
pub struct Setup {
    dir: TempDir,
    env: BTreeMap<String, String>,
}

impl Setup {
    /// Creates a development setup: SQLite in a new folder, `BIND=127.0.0.1:0`, a relaxed
    /// throttle and the fixed signing key.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("create a temporary folder");
        let database = dir.path().join("edge.sqlite3");
        let mut env = BTreeMap::new();
        env.insert("DATABASE_URL".into(), format!("sqlite://{}", database.display()));
        env.insert("BIND".into(), "127.0.0.1:0".into());
        env.insert("LOGIN_THROTTLE_RATE".into(), RELAXED_THROTTLE.into());
        env.insert("SECRET_KEY".into(), SECRET_KEY.into());
        env.insert("FINETUNE_CONFIG".into(), dir.path().join("absent.toml").display().to_string());
        env.insert("RUST_LOG".into(), "warn".into());
        Self { dir, env }
    }

    /// Creates a production setup that may serve plain HTTP because a proxy at 127.0.0.1 is
    /// declared, and that allows one listed origin.
    pub fn production() -> Self {
        Self::new()
            .set("ENVIRONMENT", "production")
            .set("TRUSTED_PROXIES", "127.0.0.1")
            .set("CORS_ALLOW_ALL_ORIGINS", "false")
            .set("CORS_ALLOWED_ORIGINS", "https://app.example.com")
    }

    /// Sets one setting.
    pub fn set(mut self, name: &str, value: &str) -> Self {
        self.env.insert(name.into(), value.into());
        self
    }

    /// Removes one setting, so its default applies.
    pub fn unset(mut self, name: &str) -> Self {
        self.env.remove(name);
        self
    }

    /// Writes `contents` to `name` in the temporary folder and returns its path.
    pub fn write_file(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents).expect("write a test file");
        path
    }

    /// Builds a `finetune` command with only this setup's settings in its environment.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(binary());
        command.args(args).env_clear().envs(&self.env).current_dir(self.dir.path());
        command
    }

    /// Runs a `finetune` command with `stdin` as input and returns its output, killing
    /// it when it runs past the timeout.
    pub fn run(&self, args: &[&str], stdin: &str) -> Output {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start finetune");
        if let Some(mut input) = child.stdin.take() {
            input.write_all(stdin.as_bytes()).expect("write to finetune's stdin");
        }
        let stdout = drain(child.stdout.take());
        let stderr = drain(child.stderr.take());
        let status = wait_or_kill(&mut child, PROCESS_TIMEOUT);
        Output { status, stdout: join_output(stdout), stderr: join_output(stderr) }
    }

    /// Creates the admin, starts `finetune serve` and waits for its address.
    pub fn start(self) -> Server {
        let created = self.run(&["createsuperuser", "--username", ADMIN], ADMIN_PASSWORD);
        assert!(
            created.status.success(),
            "createsuperuser failed: {}",
            String::from_utf8_lossy(&created.stderr)
        );
        Server::spawn(self)
    }
}

/// Reads a pipe to its end on a new thread.
fn drain(source: Option<impl Read + Send + 'static>) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut source) = source {
            let _ = source.read_to_end(&mut bytes);
        }
        bytes
    })
}

fn join_output(handle: thread::JoinHandle<Vec<u8>>) -> Vec<u8> {
    handle.join().unwrap_or_default()
}

/// Waits for `child` to exit. Past `timeout` it is killed, and the returned status is
/// that of the killed process.
fn wait_or_kill(child: &mut Child, timeout: Duration) -> ExitStatus {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().expect("poll finetune") {
            return status;
        }
        thread::sleep(POLL_INTERVAL);
    }
    let _ = child.kill();
    child.wait().expect("wait for the killed finetune")
}

/// A running `finetune serve`; dropping it kills the process.
pub struct Server {
    child: Child,
    /// The address from the `listening on` line.
    pub addr: SocketAddr,
    stderr: Arc<Mutex<Vec<String>>>,
    /// Keeps the temporary folder until the server is gone.
    _setup: Setup,
}

impl Server {
    fn spawn(setup: Setup) -> Self {
        let mut child = setup
            .command(&["serve"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start finetune serve");

        let stderr = Arc::new(Mutex::new(Vec::new()));
        if let Some(pipe) = child.stderr.take() {
            let lines = Arc::clone(&stderr);
            thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    lines.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(line);
                }
            });
        }
        let (sender, receiver) = mpsc::channel();
        if let Some(pipe) = child.stdout.take() {
            thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    if let Some(addr) = line.strip_prefix("listening on ") {
                        let _ = sender.send(addr.trim().to_owned());
                    }
                }
            });
        }

        let mut server = Self { child, addr: SocketAddr::from(([127, 0, 0, 1], 0)), stderr, _setup: setup };
        match receiver.recv_timeout(PROCESS_TIMEOUT) {
            Ok(addr) => server.addr = addr.parse().expect("parse the listening address"),
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                panic!("finetune serve did not print `listening on`; stderr:\n{}", server.stderr_text())
            }
        }
        server
    }

    /// Returns the server's standard error so far.
    pub fn stderr_text(&self) -> String {
        self.stderr.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).join("\n")
    }

    /// `http://ADDR` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // `Child::kill` signals this child's own PID.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP client that returns every status as a response and follows no redirect.
pub fn client() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(HTTP_TIMEOUT))
        .build()
        .into()
}

/// A response reduced to what the tests look at.
#[derive(Debug)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// Header values by lower-case name, in order.
    pub headers: Vec<(String, String)>,
    /// The body as text.
    pub body: String,
}

impl Reply {
    /// Converts a ureq response.
    pub fn from_response(mut response: ureq::http::Response<ureq::Body>) -> Self {
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| (name.as_str().to_owned(), String::from_utf8_lossy(value.as_bytes()).into()))
            .collect();
        let body = response.body_mut().read_to_string().unwrap_or_default();
        Self { status, headers, body }
    }

    /// Returns the first value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }

    /// Returns every value of header `name` (lower case).
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers.iter().filter(|(key, _)| key == name).map(|(_, value)| value.as_str()).collect()
    }

    /// Parses the body as JSON, or returns `null`.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// Returns the `code` of an error body.
    pub fn code(&self) -> String {
        self.json()["code"].as_str().unwrap_or_default().to_owned()
    }
}

/// Sends a request with `headers` and an optional body (sent as is, with the given
/// headers only).
pub fn send(method: &str, url: &str, headers: &[(&str, &str)], body: Option<&str>) -> Reply {
    send_with(&client(), method, url, headers, body)
}

/// Like [`send`], through `agent`.
pub fn send_with(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Reply {
    let mut request = ureq::http::Request::builder().method(method).uri(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let result = match body {
        Some(body) => agent.run(request.body(body.to_owned()).expect("build a request")),
        None => agent.run(request.body(()).expect("build a request")),
    };
    Reply::from_response(result.unwrap_or_else(|error| panic!("{method} {url} failed: {error}")))
}

/// Builds a login body for `username` and `password`.
pub fn credentials(username: &str, password: &str) -> String {
    serde_json::json!({"username": username, "password": password}).to_string()
}

/// Posts JSON to `url`.
pub fn post_json(url: &str, body: &str, headers: &[(&str, &str)]) -> Reply {
    let mut all = vec![("content-type", "application/json")];
    all.extend_from_slice(headers);
    send("POST", url, &all, Some(body))
}

/// Collects every `Set-Cookie` header by cookie name.
pub fn set_cookies(reply: &Reply) -> BTreeMap<String, String> {
    reply
        .header_all("set-cookie")
        .into_iter()
        .filter_map(|cookie| {
            let name = cookie.split('=').next()?.trim().to_owned();
            Some((name, cookie.to_owned()))
        })
        .collect()
}

/// Builds the `Cookie` header value that sends back each cookie of `reply`.
pub fn cookie_header(reply: &Reply) -> String {
    set_cookies(reply).values().filter_map(|cookie| cookie.split(';').next()).collect::<Vec<_>>().join("; ")
}

/// Sends a raw HTTP/1.1 POST with a JSON body from the local address `source` (any
/// 127.0.0.0/8 address works on Linux loopback) and returns the status code.
pub fn raw_post_from(
    source: IpAddr,
    server: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> u16 {
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("create a socket");
    socket.bind(&SocketAddr::new(source, 0).into()).expect("bind the source address");
    socket.connect_timeout(&server.into(), HTTP_TIMEOUT).expect("connect to the server");
    let mut stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(HTTP_TIMEOUT)).expect("set a read timeout");

    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: {server}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).expect("send the request");

    let mut status_line = String::new();
    BufReader::new(stream).read_line(&mut status_line).expect("read the status line");
    let status = status_line.split_whitespace().nth(1).and_then(|code| code.parse().ok());
    status.unwrap_or_else(|| panic!("no status in {status_line:?}"))
}
