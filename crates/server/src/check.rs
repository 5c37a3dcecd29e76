//! `finetune check [--deploy]`: reports settings that would stop the server from
//! starting, and with `--deploy`, every setting that is unsafe for production.

use std::process::ExitCode;

use finetune_core::settings::Settings;

use crate::commands::CommandError;
use crate::serve::startup_problems;

/// Returns the problem when the TLS private key file can be read by every local user.
#[cfg(unix)]
fn key_file_problem(settings: &Settings) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;

    let path = settings.tls_key_file.as_ref()?;
    let mode = std::fs::metadata(path).ok()?.permissions().mode();
    if mode & 0o004 == 0 {
        return None;
    }
    Some(format!(
        "TLS_KEY_FILE {} can be read by every local user (mode {:o}): run `chmod o-rwx` on it.",
        path.display(),
        mode & 0o777
    ))
}

#[cfg(not(unix))]
fn key_file_problem(_settings: &Settings) -> Option<String> {
    None
}

/// Lists the problems of `settings` as they would run in production: the refusals of
/// `serve`, the warnings of [`Settings::deploy_warnings`], and file permissions.
fn deploy_problems(settings: &Settings) -> Vec<String> {
    let mut problems = startup_problems(settings);
    problems.extend(settings.deploy_warnings());
    problems.extend(key_file_problem(settings));
    problems
}

/// `finetune check`: with `deploy`, the settings are read again with
/// `ENVIRONMENT=production`, so a development machine shows what production would
/// reject. Prints the problems and returns exit code 1 when there are any, else 0.
pub fn check(settings: &Settings, deploy: bool) -> Result<ExitCode, CommandError> {
    let (problems, scope) = if deploy {
        let production = Settings::load_with_overrides(&[("ENVIRONMENT", "production")])?;
        (deploy_problems(&production), "for production")
    } else {
        (startup_problems(settings), "for start-up")
    };

    if problems.is_empty() {
        println!("no problems found: the settings are safe {scope}");
        return Ok(ExitCode::SUCCESS);
    }
    println!("{} problem(s) found {scope}:", problems.len());
    for problem in &problems {
        println!("  - {problem}");
    }
    Ok(ExitCode::FAILURE)
}
