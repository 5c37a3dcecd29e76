//! The development `SECRET_KEY`: generated once and kept in a file beside the SQLite
//! database, so tokens survive restarts without any set-up.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use finetune_core::Secret;
use finetune_core::db::Backend;
use finetune_core::settings::Settings;

use crate::commands::CommandError;

/// Returns where the development key lives: `<database file>.secret_key` for SQLite,
/// `finetune.secret_key` in the working folder for PostgreSQL.
fn key_path(settings: &Settings) -> Result<PathBuf, CommandError> {
    match Backend::from_url(settings.database_url.expose())? {
        Backend::Sqlite(path) if path != ":memory:" => Ok(PathBuf::from(format!("{path}.secret_key"))),
        _ => Ok(PathBuf::from("finetune.secret_key")),
    }
}

/// Fills in `SECRET_KEY` in development when it is not set. Production settings are
/// left alone; the production checks reject a missing key.
pub fn ensure_secret_key(settings: &mut Settings) -> Result<(), CommandError> {
    if settings.secret_key.is_some() || settings.is_production() {
        return Ok(());
    }
    let path = key_path(settings)?;
    let key = match fs::read_to_string(&path) {
        Ok(existing) if existing.trim().len() >= 32 => existing.trim().to_owned(),
        _ => create_key_file(&path)?,
    };
    settings.secret_key = Some(Secret::new(key));
    Ok(())
}

fn create_key_file(path: &Path) -> Result<String, CommandError> {
    let mut bytes = [0u8; 48];
    getrandom::fill(&mut bytes)
        .map_err(|error| CommandError::Message(format!("random source failed: {error}")))?;
    let key = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);

    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|error| {
        CommandError::Message(format!(
            "cannot write the development SECRET_KEY to {}: {error}",
            path.display()
        ))
    })?;
    file.write_all(key.as_bytes())
        .map_err(|error| CommandError::Message(format!("cannot write {}: {error}", path.display())))?;
    tracing::info!(path = %path.display(), "generated the development SECRET_KEY");
    Ok(key)
}
