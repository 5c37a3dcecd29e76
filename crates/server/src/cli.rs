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
    /// Show or rotate the keys that sign and verify access tokens.
    Keys {
        /// The key operation.
        #[command(subcommand)]
        command: KeysCommand,
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
