//! The `finetune` binary: reads settings, parses the command line, and composes the
//! crates of the Finetune security backend into a server or a one-off command.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod check;
mod cli;
mod commands;
mod keys;
mod logging;
mod logs;
mod secrets;
mod seed;
mod serve;
mod tls;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command, KeysCommand, LogsCommand};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode, commands::CommandError> {
    let settings = finetune_core::settings::Settings::load()?;
    logging::init(settings.log_format);

    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve::serve(settings).map(|()| ExitCode::SUCCESS),
        Command::Migrate => commands::migrate(&settings).map(|()| ExitCode::SUCCESS),
        Command::Createsuperuser { username, email } => {
            commands::create_superuser(&settings, &username, email.as_deref()).map(|()| ExitCode::SUCCESS)
        }
        Command::Flushexpiredtokens => commands::flush_expired_tokens(&settings).map(|()| ExitCode::SUCCESS),
        Command::Logs(LogsCommand::Export { from, to, actor, action, outcome, format, output }) => {
            let filters = logs::ExportFilters { from, to, actor, action, outcome };
            logs::export(&settings, &filters, &format, output.as_deref()).map(|()| ExitCode::SUCCESS)
        }
        Command::Seed { users, audit_entries } => {
            seed::seed(&settings, users, audit_entries).map(|()| ExitCode::SUCCESS)
        }
        Command::Check { deploy } => check::check(&settings, deploy),
        Command::Keys { command: KeysCommand::List } => {
            let mut settings = settings;
            secrets::ensure_secret_key(&mut settings)?;
            keys::list(&settings).map(|()| ExitCode::SUCCESS)
        }
        Command::Keys { command: KeysCommand::Rotate } => keys::rotate(&settings).map(|()| ExitCode::SUCCESS),
    }
}
