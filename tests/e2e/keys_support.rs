//! A small harness for the signing-key tests: a deployment folder with its SQLite
//! database and settings, `finetune` commands run in it, and servers started on
//! 127.0.0.1 with a free port and killed when dropped.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

/// The password of the `admin` user of every deployment.
pub const ADMIN_PASSWORD: &str = "correct horse battery staple";
/// An HS256 secret of the expected length.
pub const SECRET_A: &str = "first-secret-first-secret-first-secret-0123";
/// Another HS256 secret.
pub const SECRET_B: &str = "second-secret-second-secret-second-secret-45";

/// How long a command or a server start may take before the test fails.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// The output of a finished command.
#[derive(Debug)]
pub struct CommandOutput {
    /// The exit status.
    pub status: ExitStatus,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// A folder with a SQLite database, an `admin` user and the settings every command and
/// server of the deployment gets. Instances started from one deployment share all of it.
pub struct Deployment {
    dir: TempDir,
    settings: BTreeMap<String, String>,
}

impl Deployment {
    /// Creates the folder and the `admin` user, with HS256 and `SECRET_A` as the key.
    pub fn create() -> Self {
        let dir = match tempfile::tempdir() {
            Ok(dir) => dir,
            Err(error) => unreachable!("cannot create a temporary folder: {error}"),
        };
        let mut deployment = Self { dir, settings: BTreeMap::new() };
        let database = deployment.path("finetune.sqlite3");
        deployment.set("DATABASE_URL", &format!("sqlite://{}", database.display()));
        deployment.set("FINETUNE_CONFIG", &deployment.path("absent.toml").display().to_string());
        deployment.set("ENVIRONMENT", "development");
        deployment.set("SECRET_KEY", SECRET_A);
        deployment.set("LOGIN_THROTTLE_RATE", "1000/sec");
        deployment.set("BIND", "127.0.0.1:0");

        let created = deployment.run(&["createsuperuser", "--username", "admin"], Some(ADMIN_PASSWORD));
        assert!(created.status.success(), "createsuperuser failed: {}", created.stderr);
        deployment
    }

    /// Sets a setting for later commands and servers.
    pub fn set(&mut self, name: &str, value: &str) {
        self.settings.insert(name.to_owned(), value.to_owned());
    }

    /// Removes a setting.
    pub fn unset(&mut self, name: &str) {
        self.settings.remove(name);
    }

    /// Sets `JWT_ALGORITHM` and the key files `keys/signing.pem` and `keys/retired.pem`.
    pub fn use_key_files(&mut self, algorithm: &str) {
        self.set("JWT_ALGORITHM", algorithm);
        self.set("JWT_PRIVATE_KEY_FILE", &self.path("keys/signing.pem").display().to_string());
        self.set("JWT_PUBLIC_KEY_FALLBACK_FILES", &self.path("keys/retired.pem").display().to_string());
    }

    /// Returns the path of `name` in the deployment folder.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Returns the path of the SQLite database.
    pub fn database(&self) -> PathBuf {
        self.path("finetune.sqlite3")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_finetune"));
        command.args(args).env_clear().envs(&self.settings).current_dir(self.dir.path());
        command
    }

    /// Runs `finetune ARGS`, writing `stdin` to its standard input, and waits for it.
    pub fn run(&self, args: &[&str], stdin: Option<&str>) -> CommandOutput {
        let mut command = self.command(args);
        command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(error) => unreachable!("cannot start finetune {args:?}: {error}"),
        };
        if let Some(mut input) = child.stdin.take() {
            let _ = input.write_all(stdin.unwrap_or_default().as_bytes());
        }
        let stdout = drain(child.stdout.take());
        let stderr = drain(child.stderr.take());

        let started = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if started.elapsed() < COMMAND_TIMEOUT => thread::sleep(POLL_INTERVAL),
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    unreachable!("finetune {args:?} did not finish within {COMMAND_TIMEOUT:?}");
                }
            }
        };
        CommandOutput {
            status,
            stdout: stdout.join().unwrap_or_default(),
            stderr: stderr.join().unwrap_or_default(),
        }
    }

    /// Starts `finetune serve` and waits for its `listening on ADDR` line.
    pub fn start(&self) -> Server {
        let mut command = self.command(&["serve"]);
        command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(error) => unreachable!("cannot start finetune serve: {error}"),
        };
        let stderr = drain(child.stderr.take());

        let (sender, receiver) = mpsc::channel();
        if let Some(stdout) = child.stdout.take() {
            thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    if let Some(address) = line.strip_prefix("listening on ") {
                        let _ = sender.send(address.trim().to_owned());
                    }
                }
            });
        }
        let mut server = Server { child, address: String::new(), agent: agent() };
        match receiver.recv_timeout(COMMAND_TIMEOUT) {
            Ok(address) => server.address = address,
            Err(_) => {
                let _ = server.child.kill();
                let _ = server.child.wait();
                let stderr = stderr.join().unwrap_or_default();
                unreachable!("finetune serve printed no listening line: {stderr}");
            }
        }
        server
    }
}

/// Reads a child's pipe to the end on a thread, so the child never blocks on it.
fn drain(pipe: Option<impl Read + Send + 'static>) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_string(&mut text);
        }
        text
    })
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

/// A running `finetune serve`, killed by its own PID when dropped.
pub struct Server {
    child: Child,
    address: String,
    agent: ureq::Agent,
}

impl Server {
    /// Returns `http://ADDR/path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// Sends `GET path`, with a bearer token when given; returns the status and the body
    /// as JSON (`null` when the body is not JSON).
    pub fn get(&self, path: &str, bearer: Option<&str>) -> (u16, Value) {
        let mut request = self.agent.get(&self.url(path));
        if let Some(token) = bearer {
            request = request.header("Authorization", &format!("Bearer {token}"));
        }
        match request.call() {
            Ok(mut response) => {
                let status = response.status().as_u16();
                let body = response.body_mut().read_to_string().unwrap_or_default();
                (status, serde_json::from_str(&body).unwrap_or(Value::Null))
            }
            Err(error) => unreachable!("GET {path} failed: {error}"),
        }
    }

    /// Obtains an access token for `admin` through `POST /api/auth/token/`.
    pub fn access_token(&self) -> String {
        let body = serde_json::json!({"username": "admin", "password": ADMIN_PASSWORD});
        let response = self.agent.post(&self.url("/api/auth/token/")).send_json(&body);
        let (status, body) = match response {
            Ok(mut response) => {
                let status = response.status().as_u16();
                (status, response.body_mut().read_json::<Value>().unwrap_or(Value::Null))
            }
            Err(error) => unreachable!("POST /api/auth/token/ failed: {error}"),
        };
        assert_eq!(status, 200, "token request failed: {body}");
        body["access"].as_str().map(str::to_owned).unwrap_or_default()
    }

    /// Returns the `GET /.well-known/jwks.json` document.
    pub fn jwks(&self) -> Value {
        let (status, body) = self.get("/.well-known/jwks.json", None);
        assert_eq!(status, 200, "JWKS request failed: {body}");
        body
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // `Child::kill` signals this child's own PID only.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Returns the `kid` header of a compact JWT.
pub fn kid_of(token: &str) -> String {
    use base64::Engine;
    let header = token.split('.').next().unwrap_or_default();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header).unwrap_or_default();
    let header: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    header["kid"].as_str().map(str::to_owned).unwrap_or_default()
}

/// Returns the `kid`s of a JWKS document in order.
pub fn jwks_kids(jwks: &Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .map(|keys| keys.iter().filter_map(|key| key["kid"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

/// Returns the `details` of every audit entry with `action`, oldest first.
pub fn audit_details(deployment: &Deployment, action: &str) -> Vec<Value> {
    use diesel::prelude::*;
    use diesel::sql_types::Text;

    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        details: String,
    }

    let url = deployment.database().display().to_string();
    let mut connection = match SqliteConnection::establish(&url) {
        Ok(connection) => connection,
        Err(error) => unreachable!("cannot open {url}: {error}"),
    };
    let rows: Vec<Row> = diesel::sql_query("SELECT details FROM audit_log WHERE action = ? ORDER BY id")
        .bind::<Text, _>(action)
        .load(&mut connection)
        .unwrap_or_default();
    rows.iter().map(|row| serde_json::from_str(&row.details).unwrap_or(Value::Null)).collect()
}
