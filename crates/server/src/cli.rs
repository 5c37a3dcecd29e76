//! The command line.

use clap::{Parser, Subcommand};

/// The Finetune ERP security backend: authentication, roles and the audit log.
///
/// Settings come from `finetune.toml` and environment variables (DATABASE_URL,
/// SECRET_KEY, BIND, ...); see docs/reference/ENVIRONMENT_KEYS.md.
#[derive(Debug, Parser)]
#[command(name = "finetune", version)]
pub struct Cli {
    /// What to do; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply pending migrations, then serve HTTP; prints `listening on ADDR` once ready.
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Create a user holding the system_admin role. The password is read from standard
    /// input when it is not a terminal, else prompted for twice.
    Createsuperuser {
        /// The username: 1 to 150 letters, digits and @ . + - _.
        #[arg(long)]
        username: String,
        /// The email address.
        #[arg(long)]
        email: Option<String>,
    },
    /// Delete refresh-token rows that expired more than the leeway ago.
    Flushexpiredtokens,
    /// Audit-log commands.
    #[command(subcommand)]
    Logs(LogsCommand),
    /// Fill the database with generated users and audit entries, for benchmarks and
    /// manual tests. Seeded users share one password, read like createsuperuser's.
    Seed {
        /// Number of users to create, named seed-user-N with N counting on from the
        /// highest user id.
        #[arg(long, default_value_t = 0)]
        users: u64,
        /// Number of audit entries to append.
        #[arg(long, default_value_t = 0)]
        audit_entries: u64,
    },
    /// Check the settings and list every problem; exit code 1 when there is one.
    Check {
        /// Check the settings as production would run them (`ENVIRONMENT=production`),
        /// including settings that production accepts but that weaken it.
        #[arg(long)]
        deploy: bool,
    },
    /// Show or rotate the keys that sign and verify access tokens.
    Keys {
        /// The key operation.
        #[command(subcommand)]
        command: KeysCommand,
    },
}

/// `finetune logs ...`.
#[derive(Debug, Subcommand)]
pub enum LogsCommand {
    /// Export the audit log, oldest first, as the HTTP export does.
    Export {
        /// Entries at or after this RFC 3339 time.
        #[arg(long)]
        from: Option<String>,
        /// Entries at or before this RFC 3339 time.
        #[arg(long)]
        to: Option<String>,
        /// A user id (integer) or a username.
        #[arg(long)]
        actor: Option<String>,
        /// An action name, such as auth.login.
        #[arg(long)]
        action: Option<String>,
        /// success, failure or denied.
        #[arg(long)]
        outcome: Option<String>,
        /// csv or jsonl.
        #[arg(long, default_value = "csv")]
        format: String,
        /// The file to write; standard output when omitted.
        #[arg(long)]
        output: Option<std::path::PathBuf>,
    },
}

/// The `keys` subcommands.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Print the kid, algorithm and role (signing or verify-only) of every key that
    /// verifies access tokens now.
    List,
    /// Write a new EdDSA or ES256 private key to JWT_PRIVATE_KEY_FILE and append the
    /// previous public key to the first JWT_PUBLIC_KEY_FALLBACK_FILES file, where it
    /// verifies for ACCESS_TOKEN_LIFETIME plus the leeway. Creates the first key when
    /// the file does not exist. Records keys.rotate in the audit log.
    Rotate,
}
