//! Test servers: one `finetune` process on its own database per test.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::db::{Db, TestDatabase};

/// The signing secret of every test server (48 bytes). Tests forge tokens with it.
pub const SECRET_KEY: &[u8] = b"e2e-test-secret-0123456789abcdef0123456789abcdef";
pub const ADMIN_USERNAME: &str = "admin";
pub const ADMIN_EMAIL: &str = "admin@example.com";
pub const ADMIN_PASSWORD: &str = "correct horse battery staple";

/// Maximum time for `migrate`, `createsuperuser` and the `listening on` line of `serve`.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Number of server output lines kept to explain a failed start.
const OUTPUT_LINES_KEPT: usize = 200;

/// The database backend a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Generates `<test>::sqlite` and `<test>::postgres` for each `fn <test>(Backend)`.
///
/// The PostgreSQL variant returns early, so it passes, when `TEST_POSTGRES_URL` is unset,
/// unless `FINETUNE_REQUIRE_POSTGRES=1`.
macro_rules! backend_tests {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[test]
                fn sqlite() {
                    super::$name($crate::harness::Backend::Sqlite);
                }

                #[test]
                fn postgres() {
                    if $crate::db::postgres_admin_url().is_none() {
                        eprintln!("skipped: set TEST_POSTGRES_URL to run the PostgreSQL variant");
                        return;
                    }
                    super::$name($crate::harness::Backend::Postgres);
                }
            }
        )+
    };
}
pub(crate) use backend_tests;

/// Recent output lines of a child process, for failure messages.
#[derive(Clone, Default)]
struct OutputLog(Arc<Mutex<Vec<String>>>);

impl OutputLog {
    fn push(&self, line: String) {
        let mut lines = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if lines.len() == OUTPUT_LINES_KEPT {
            lines.remove(0);
        }
        lines.push(line);
    }

    fn text(&self) -> String {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).join("\n")
    }

    /// Reads `source` line by line into the log until it closes, on a new thread.
    fn drain(
        &self,
        source: impl Read + Send + 'static,
        prefix: &'static str,
        lines: Option<mpsc::Sender<String>>,
    ) {
        let log = self.clone();
        thread::spawn(move || {
            for line in BufReader::new(source).lines() {
                let Ok(line) = line else { break };
                if let Some(sender) = &lines {
                    // The receiver is dropped once the server has started, but the pipe must still be drained.
                    let _ = sender.send(line.clone());
                }
                log.push(format!("{prefix}{line}"));
            }
        });
    }
}

/// A running `finetune serve` with its own database. Dropping it stops the process and
/// removes the database.
pub struct TestServer {
    pub base_url: String,
    pub(crate) agent: ureq::Agent,
    child: Child,
    // Fields drop in this order after `Drop::drop` has killed the child, so the database
    // outlives the process.
    database: TestDatabase,
    _work_dir: TempDir,
}

impl TestServer {
    /// Creates a database, runs `migrate` and `createsuperuser` for the admin, then starts `serve`.
    pub fn start(backend: Backend) -> TestServer {
        let work_dir = tempfile::tempdir().expect("creating a temporary folder failed");
        let database = TestDatabase::create(backend, &work_dir);
        let database_url = database.url();
        let command = |arguments: &[&str]| server_command(arguments, &database_url, &work_dir);

        run_to_completion(command(&["migrate"]), None);
        create_superuser_with(command(&[]), ADMIN_USERNAME, ADMIN_EMAIL, ADMIN_PASSWORD);

        let (child, address) = spawn_serve(command(&["serve"]));

        let agent = new_agent();

        TestServer { base_url: format!("http://{address}"), agent, child, database, _work_dir: work_dir }
    }

    /// Opens a new connection to this server's database.
    pub fn database(&self) -> Db {
        self.database.connect()
    }
}

/// Starts `serve` and waits for its `listening on ADDR` line; its output is drained in
/// the background so the pipes never fill.
fn spawn_serve(mut serve: Command) -> (Child, SocketAddr) {
    serve.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = serve.spawn().expect("starting `finetune serve` failed");
    let output = OutputLog::default();
    let (sender, receiver) = mpsc::channel();
    output.drain(child.stdout.take().expect("stdout is piped"), "", Some(sender));
    output.drain(child.stderr.take().expect("stderr is piped"), "stderr: ", None);

    match wait_for_listening_line(&receiver) {
        Ok(address) => (child, address),
        Err(reason) => {
            let _ = child.kill();
            let status = child.wait();
            panic!(
                "`finetune serve` did not start: {reason}; exit status {status:?}; output:\n{}",
                output.text()
            );
        }
    }
}

/// Another `finetune serve` process on the same database as a [`TestServer`].
pub struct Instance {
    pub base_url: String,
    child: Child,
    _work_dir: TempDir,
}

impl TestServer {
    /// Starts a second server process on this server's database.
    pub fn start_instance(&self) -> Instance {
        let work_dir = tempfile::tempdir().expect("creating a temporary folder failed");
        let (child, address) = spawn_serve(server_command(&["serve"], &self.database.url(), &work_dir));
        Instance { base_url: format!("http://{address}"), child, _work_dir: work_dir }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Builds an HTTP client that returns 4xx and 5xx responses as values and follows no redirects.
pub fn new_agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .user_agent(crate::http::USER_AGENT)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

fn server_command(arguments: &[&str], database_url: &str, work_dir: &TempDir) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_finetune"));
    command
        .args(arguments)
        // A clean environment and folder, so no outside setting or `finetune.toml` applies.
        .env_clear()
        .current_dir(work_dir.path())
        .env("BIND", "127.0.0.1:0")
        .env("DATABASE_URL", database_url)
        .env("SECRET_KEY", std::str::from_utf8(SECRET_KEY).expect("SECRET_KEY is ASCII"))
        .env("ENVIRONMENT", "development")
        .env("LOGIN_THROTTLE_RATE", "1000/sec")
        // Tests run in parallel and PostgreSQL's default `max_connections` is 100, so each
        // server keeps a small pool.
        .env("DATABASE_POOL_SIZE", "4")
        .env("RUST_LOG", "warn");
    for name in ["PATH", "LLVM_PROFILE_FILE"] {
        if let Some(value) = std::env::var_os(name) {
            command.env(name, value);
        }
    }
    command
}

/// Runs `finetune createsuperuser` with the password on stdin. `base` is a `finetune`
/// command that already has the server environment.
fn create_superuser_with(mut base: Command, username: &str, email: &str, password: &str) {
    base.args(["createsuperuser", "--username", username, "--email", email]);
    run_to_completion(base, Some(&format!("{password}\n")));
}

impl TestServer {
    /// Creates another `system_admin` through `finetune createsuperuser` on this database.
    pub fn create_superuser(&self, username: &str, email: &str, password: &str) {
        let work_dir = tempfile::tempdir().expect("creating a temporary folder failed");
        let command = server_command(&[], &self.database.url(), &work_dir);
        create_superuser_with(command, username, email, password);
    }
}

/// Runs a command to its end within `START_TIMEOUT` and panics unless it exits with 0.
fn run_to_completion(mut command: Command, stdin: Option<&str>) {
    let description = format!("{command:?}");
    command
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap_or_else(|error| panic!("starting {description} failed: {error}"));

    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin is piped");
        pipe.write_all(input.as_bytes())
            .unwrap_or_else(|error| panic!("writing to the stdin of {description} failed: {error}"));
    }
    let output = OutputLog::default();
    output.drain(child.stdout.take().expect("stdout is piped"), "", None);
    output.drain(child.stderr.take().expect("stderr is piped"), "stderr: ", None);

    let status = wait_with_deadline(&mut child, START_TIMEOUT);
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("{description} timed out after {START_TIMEOUT:?}; output:\n{}", output.text());
    };
    assert!(status.success(), "{description} failed with {status}; output:\n{}", output.text());
}

fn wait_with_deadline(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) => thread::sleep(Duration::from_millis(20)),
            Err(error) => panic!("waiting for a child process failed: {error}"),
        }
    }
    None
}

/// Waits for the line `listening on ADDR` and returns ADDR.
fn wait_for_listening_line(lines: &mpsc::Receiver<String>) -> Result<SocketAddr, String> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(remaining) {
            Ok(line) => {
                let Some(address) = line.trim().strip_prefix("listening on ") else {
                    continue;
                };
                return address
                    .parse()
                    .map_err(|error| format!("the address in {line:?} is invalid: {error}"));
            }
            Err(RecvTimeoutError::Timeout) => {
                return Err(format!("no `listening on ADDR` line within {START_TIMEOUT:?}"));
            }
            Err(RecvTimeoutError::Disconnected) => {
                return Err("stdout closed before a `listening on ADDR` line".to_owned());
            }
        }
    }
}
