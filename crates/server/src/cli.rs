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
    /// Check the settings and list every problem; exit code 1 when there is one.
    Check {
        /// Check the settings as production would run them (`ENVIRONMENT=production`),
        /// including settings that production accepts but that weaken it.
        #[arg(long)]
        deploy: bool,
    },
}
