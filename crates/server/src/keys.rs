//! The signing key ring built from the settings, and `finetune keys list` and
//! `finetune keys rotate`.
//!
//! Settings read here: `JWT_ALGORITHM`, `SECRET_KEY`, `SECRET_KEY_FALLBACKS`,
//! `JWT_PRIVATE_KEY_FILE`, `JWT_PUBLIC_KEY_FALLBACK_FILES` and `ACCESS_TOKEN_LIFETIME`.
//!
//! Key file layout for EdDSA and ES256: `JWT_PRIVATE_KEY_FILE` contains the PKCS#8 PEM
//! private key that signs. `keys rotate` replaces it with a new key and appends the
//! previous public key, with a `Retired-At` line, to the first file of
//! `JWT_PUBLIC_KEY_FALLBACK_FILES`. A retired key verifies for `ACCESS_TOKEN_LIFETIME`
//! plus the leeway after its `Retired-At`, so every token it signed can run out; then
//! it drops out of the ring, and the next rotation deletes it from the file.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use finetune_activity::{Action, NewEntry, Outcome, record};
use finetune_auth::LEEWAY;
use finetune_auth::keys::pem::{PublicKeyEntry, format_public_key, parse_public_keys};
use finetune_auth::keys::{Algorithm, KeyRing, SigningKey, VerifyingKey};
use finetune_core::RequestContext;
use finetune_core::db::{run_migrations, write_transaction};
use finetune_core::settings::{JwtAlgorithm, Settings};

use crate::commands::{CommandError, connect};

fn algorithm_of(settings: &Settings) -> Algorithm {
    match settings.jwt_algorithm {
        JwtAlgorithm::Hs256 => Algorithm::Hs256,
        JwtAlgorithm::EdDsa => Algorithm::EdDsa,
        JwtAlgorithm::Es256 => Algorithm::Es256,
    }
}

/// Returns how long a retired key keeps verifying after its `Retired-At`: the lifetime
/// of the last token it can have signed, plus the clock leeway.
fn retirement_window(settings: &Settings) -> Duration {
    let seconds = settings.access_token_lifetime.as_secs().saturating_add(LEEWAY.as_secs());
    Duration::seconds(i64::try_from(seconds).unwrap_or(i64::MAX / 1000))
}

/// Builds the ring for `settings` at `now`.
///
/// With HS256, `SECRET_KEY` signs; with EdDSA or ES256, `JWT_PRIVATE_KEY_FILE` does.
/// In both cases every key of `SECRET_KEY_FALLBACKS` and `JWT_PUBLIC_KEY_FALLBACK_FILES`
/// verifies, so switching algorithms works like any other rotation. A retired public
/// key whose window has passed at `now` is left out.
pub fn key_ring(settings: &Settings, now: DateTime<Utc>) -> Result<KeyRing, CommandError> {
    let signing = signing_key(settings)?;

    let mut fallbacks = Vec::new();
    for (index, secret) in settings.secret_key_fallbacks.iter().enumerate() {
        let key = VerifyingKey::hs256(secret.expose().as_bytes()).map_err(|error| {
            CommandError::Message(format!("SECRET_KEY_FALLBACKS entry {}: {error}", index + 1))
        })?;
        fallbacks.push(key);
    }
    let window = retirement_window(settings);
    for path in &settings.jwt_public_key_fallback_files {
        for entry in read_public_key_file(path)? {
            let key = match entry.retired_at {
                Some(retired_at) => entry.key.with_not_after(retired_at + window),
                None => entry.key,
            };
            if key.is_retired_at(now) {
                tracing::info!(kid = key.kid(), file = %path.display(), "retired key past its window left out");
                continue;
            }
            fallbacks.push(key);
        }
    }

    Ok(KeyRing::new(signing, fallbacks))
}

fn signing_key(settings: &Settings) -> Result<SigningKey, CommandError> {
    let algorithm = algorithm_of(settings);
    if algorithm == Algorithm::Hs256 {
        let Some(secret) = settings.secret_key.as_ref() else {
            return Err(CommandError::Message("SECRET_KEY is not set".into()));
        };
        return SigningKey::hs256(secret.expose().as_bytes())
            .map_err(|error| CommandError::Message(format!("SECRET_KEY: {error}")));
    }

    let Some(path) = settings.jwt_private_key_file.as_ref() else {
        return Err(CommandError::Message(format!(
            "JWT_PRIVATE_KEY_FILE is not set: JWT_ALGORITHM={algorithm} signs with a PEM private key file; set it to a path and run `finetune keys rotate` to create the key"
        )));
    };
    let key = read_private_key_file(path)?;
    if key.algorithm() != algorithm {
        return Err(CommandError::Message(format!(
            "JWT_PRIVATE_KEY_FILE {} contains an {} key but JWT_ALGORITHM is {algorithm}",
            path.display(),
            key.algorithm()
        )));
    }
    Ok(key)
}

fn read_private_key_file(path: &Path) -> Result<SigningKey, CommandError> {
    let pem = fs::read_to_string(path).map_err(|error| {
        CommandError::Message(format!(
            "JWT_PRIVATE_KEY_FILE {}: {error}; run `finetune keys rotate` to create the key",
            path.display()
        ))
    })?;
    SigningKey::from_pem(&pem)
        .map_err(|error| CommandError::Message(format!("JWT_PRIVATE_KEY_FILE {}: {error}", path.display())))
}

/// Reads a public key file. A missing or empty file contains no keys yet.
fn read_public_key_file(path: &Path) -> Result<Vec<PublicKeyEntry>, CommandError> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            tracing::info!(file = %path.display(), "public key fallback file does not exist yet");
            return Ok(Vec::new());
        }
        Err(error) => {
            return Err(CommandError::Message(format!(
                "JWT_PUBLIC_KEY_FALLBACK_FILES {}: {error}",
                path.display()
            )));
        }
    };
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    parse_public_keys(&text).map_err(|error| {
        CommandError::Message(format!("JWT_PUBLIC_KEY_FALLBACK_FILES {}: {error}", path.display()))
    })
}

/// `finetune keys list`: one line per key that verifies tokens now.
pub fn list(settings: &Settings) -> Result<(), CommandError> {
    let ring = key_ring(settings, Utc::now())?;
    println!("{:<44}  {:<9}  {:<11}  VERIFIES UNTIL", "KID", "ALGORITHM", "ROLE");
    for (key, role) in ring.keys() {
        let until = key
            .not_after()
            .map_or_else(|| "-".to_owned(), |time| time.to_rfc3339_opts(SecondsFormat::Secs, true));
        println!("{:<44}  {:<9}  {:<11}  {until}", key.kid(), key.algorithm().as_str(), role.as_str());
    }
    Ok(())
}

/// `finetune keys rotate`: generates a new signing key in `JWT_PRIVATE_KEY_FILE`, moves
/// the previous public key to the first `JWT_PUBLIC_KEY_FALLBACK_FILES` file (deleting
/// keys there whose window has passed), and records `keys.rotate`.
pub fn rotate(settings: &Settings) -> Result<(), CommandError> {
    let algorithm = algorithm_of(settings);
    if algorithm == Algorithm::Hs256 {
        return Err(CommandError::Message(
            "keys rotate manages EdDSA and ES256 key files, and JWT_ALGORITHM is HS256: rotate an HS256 key by moving the old SECRET_KEY into SECRET_KEY_FALLBACKS and setting a new SECRET_KEY (see docs/AUTHENTICATION.md)".into(),
        ));
    }
    let Some(private_path) = settings.jwt_private_key_file.as_deref() else {
        return Err(CommandError::Message(format!(
            "JWT_PRIVATE_KEY_FILE is not set: set it to the path of the {algorithm} private key file to create or rotate"
        )));
    };
    let now = Utc::now();

    let previous = if private_path.exists() { Some(read_private_key_file(private_path)?) } else { None };
    let retired_file = match (&previous, settings.jwt_public_key_fallback_files.first()) {
        (None, _) => None,
        (Some(_), Some(path)) => Some(path.as_path()),
        (Some(_), None) => {
            return Err(CommandError::Message(
                "JWT_PUBLIC_KEY_FALLBACK_FILES is not set: name a file that will hold retired public keys (for example keys/retired.pem beside the private key) on every instance, then run keys rotate again".into(),
            ));
        }
    };
    let next = SigningKey::generate(algorithm)?;
    let next_pem = next.to_pem()?;
    create_parent_directory(private_path)?;

    let mut dropped = Vec::new();
    if let (Some(previous), Some(path)) = (&previous, retired_file) {
        dropped = write_retired_key(path, previous.verifying_key(), now, retirement_window(settings))?;
    }

    let mut entry = NewEntry::new(Action::KeysRotate, Outcome::Success)
        .target("signing_key", next.kid())
        .detail("algorithm", algorithm.as_str())
        .detail("kid", next.kid())
        .detail("previous_kid", previous.as_ref().map(|key| key.kid().to_owned()))
        .detail("dropped_kids", dropped.clone())
        .detail("via", "command_line");
    if let Some(path) = retired_file {
        entry = entry.detail("retired_key_file", path.display().to_string());
    }
    let mut connection = connect(settings)?;
    run_migrations(&mut connection)?;
    // The audit entry commits only when the new key is in place. Should the commit
    // itself fail after the rename, the error message below tells the operator to check.
    write_transaction(&mut connection, |connection| {
        record(connection, &entry, &RequestContext::command_line(), now)?;
        write_atomically(private_path, next_pem.expose().as_bytes(), true)?;
        Ok::<(), CommandError>(())
    })
    .map_err(|error| {
        CommandError::Message(format!(
            "{error}; check whether {} contains the new key with `finetune keys list`",
            private_path.display()
        ))
    })?;

    match (previous, retired_file) {
        (Some(previous), Some(path)) => {
            let until = (now + retirement_window(settings)).to_rfc3339_opts(SecondsFormat::Secs, true);
            println!(
                "rotated the {algorithm} signing key in {}: kid {} signs now; the previous kid {} moved to {} and verifies until {until}",
                private_path.display(),
                next.kid(),
                previous.kid(),
                path.display()
            );
        }
        _ => {
            println!("created the {algorithm} signing key {} with kid {}", private_path.display(), next.kid())
        }
    }
    for kid in &dropped {
        println!("deleted the expired retired key {kid}");
    }
    println!("restart every instance now so that all of them sign with the new key");
    Ok(())
}

/// Appends `key` with `Retired-At: now` to the public key file at `path`, deleting the
/// entries whose window has passed. Returns the `kid`s of the deleted entries.
fn write_retired_key(
    path: &Path,
    key: VerifyingKey,
    now: DateTime<Utc>,
    window: Duration,
) -> Result<Vec<String>, CommandError> {
    create_parent_directory(path)?;
    let mut kept = Vec::new();
    let mut dropped = Vec::new();
    for entry in read_public_key_file(path)? {
        let expired = entry.retired_at.is_some_and(|retired_at| retired_at + window < now);
        if expired {
            dropped.push(entry.key.kid().to_owned());
        } else if entry.key.kid() != key.kid() {
            kept.push(entry);
        }
    }
    kept.push(PublicKeyEntry { key, retired_at: Some(now) });

    let mut text = String::new();
    for entry in &kept {
        text.push_str(&format_public_key(entry)?);
    }
    write_atomically(path, text.as_bytes(), false)?;
    Ok(dropped)
}

/// Creates the folder of a key file when it does not exist yet; on Unix only its owner
/// may read it.
fn create_parent_directory(path: &Path) -> Result<(), CommandError> {
    let Some(directory) = path.parent().filter(|parent| !parent.as_os_str().is_empty()) else {
        return Ok(());
    };
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(directory)
        .map_err(|error| CommandError::Message(format!("cannot create {}: {error}", directory.display())))
}

/// Writes `contents` to a new file beside `path` and renames it over `path`, so readers
/// see the old file or the new one and never a partial one. Private files get mode 0600.
fn write_atomically(path: &Path, contents: &[u8], private: bool) -> Result<(), CommandError> {
    let failed =
        |error: std::io::Error| CommandError::Message(format!("cannot write {}: {error}", path.display()));
    let directory = path.parent().filter(|parent| !parent.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let file_name = path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
    let temporary: PathBuf = directory.join(format!(".{file_name}.{}.tmp", std::process::id()));

    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if private { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = private;

    let written = options.open(&temporary).and_then(|mut file| {
        file.write_all(contents)?;
        file.sync_all()
    });
    if let Err(error) = written.and_then(|()| fs::rename(&temporary, path)) {
        let _ = fs::remove_file(&temporary);
        return Err(failed(error));
    }
    Ok(())
}
