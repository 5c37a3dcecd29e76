//! Public key files: one or more PEM public keys (`-----BEGIN PUBLIC KEY-----`), each
//! optionally preceded by header lines such as
//!
//! ```text
//! Key-Id: kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k
//! Algorithm: EdDSA
//! Retired-At: 2026-01-31T12:00:00Z
//! -----BEGIN PUBLIC KEY-----
//! MCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=
//! -----END PUBLIC KEY-----
//! ```
//!
//! RFC 7468 permits text before a PEM block, and OpenSSL skips it. `Retired-At`
//! (RFC 3339) is the moment the key stopped signing. The other header lines are for
//! people and are not read back, because the `kid` and the algorithm follow from the key.

use chrono::{DateTime, SecondsFormat, Utc};

use super::VerifyingKey;
use crate::error::AuthError;

/// The header line that records when a key stopped signing.
pub const RETIRED_AT: &str = "Retired-At";

/// One public key of a key file.
#[derive(Debug, Clone)]
pub struct PublicKeyEntry {
    /// The key.
    pub key: VerifyingKey,
    /// When the key stopped signing, from its `Retired-At` line.
    pub retired_at: Option<DateTime<Utc>>,
}

/// Reads every public key of a key file. A private key, a block without its END line,
/// a bad `Retired-At` value or a file without any key is an error.
pub fn parse_public_keys(text: &str) -> Result<Vec<PublicKeyEntry>, AuthError> {
    let mut entries = Vec::new();
    let mut retired_at = None;
    let mut lines = text.lines();

    while let Some(line) = lines.next() {
        let line = line.trim();
        if let Some(value) = header_value(line, RETIRED_AT) {
            retired_at = Some(parse_time(value, entries.len() + 1)?);
            continue;
        }
        let Some(label) = line.strip_prefix("-----BEGIN ").and_then(|rest| rest.strip_suffix("-----")) else {
            continue;
        };
        let number = entries.len() + 1;
        if label != "PUBLIC KEY" {
            return Err(AuthError::InvalidKey(format!(
                "PEM block {number} is a {label}; a public key file must contain only PUBLIC KEY blocks"
            )));
        }

        let end = format!("-----END {label}-----");
        let mut block = format!("{line}\n");
        let mut closed = false;
        for body_line in lines.by_ref() {
            let body_line = body_line.trim();
            block.push_str(body_line);
            block.push('\n');
            if body_line == end {
                closed = true;
                break;
            }
        }
        if !closed {
            return Err(AuthError::InvalidKey(format!("PEM block {number} has no {end} line")));
        }

        let key = VerifyingKey::from_public_pem(&block)
            .map_err(|error| AuthError::InvalidKey(format!("PEM block {number}: {error}")))?;
        entries.push(PublicKeyEntry { key, retired_at: retired_at.take() });
    }

    if entries.is_empty() {
        return Err(AuthError::InvalidKey("no PEM public key (BEGIN PUBLIC KEY) found".into()));
    }
    Ok(entries)
}

/// Formats one entry as `Key-Id`, `Algorithm` and `Retired-At` lines followed by the
/// PEM public key. HS256 keys have no public form, so they are an error.
pub fn format_public_key(entry: &PublicKeyEntry) -> Result<String, AuthError> {
    let key = &entry.key;
    let Some(pem) = key.to_public_pem() else {
        return Err(AuthError::InvalidKey("an HS256 key has no public form".into()));
    };
    let mut text = format!("Key-Id: {}\nAlgorithm: {}\n", key.kid(), key.algorithm());
    if let Some(retired_at) = entry.retired_at {
        text.push_str(&format!("{RETIRED_AT}: {}\n", retired_at.to_rfc3339_opts(SecondsFormat::Secs, true)));
    }
    text.push_str(pem.trim_end());
    text.push('\n');
    Ok(text)
}

fn header_value<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let (key, value) = line.split_once(':')?;
    key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
}

fn parse_time(value: &str, number: usize) -> Result<DateTime<Utc>, AuthError> {
    DateTime::parse_from_rfc3339(value).map(|time| time.with_timezone(&Utc)).map_err(|_| {
        AuthError::InvalidKey(format!(
            "{RETIRED_AT} before PEM block {number} is {value:?}; expected an RFC 3339 time such as 2026-01-31T12:00:00Z"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{Algorithm, SigningKey};

    fn entry(algorithm: Algorithm, retired_at: Option<DateTime<Utc>>) -> PublicKeyEntry {
        let key = SigningKey::generate(algorithm).unwrap_or_else(|e| unreachable!("{e}")).verifying_key();
        PublicKeyEntry { key, retired_at }
    }

    #[test]
    fn key_file_round_trip_keeps_kid_and_retirement() {
        let retired_at = DateTime::from_timestamp(1_800_000_000, 0);
        let entries = [entry(Algorithm::EdDsa, retired_at), entry(Algorithm::Es256, None)];
        let text: String =
            entries.iter().map(|e| format_public_key(e).unwrap_or_else(|e| unreachable!("{e}"))).collect();

        let parsed = parse_public_keys(&text).unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0].key.kid(), entries[0].key.kid());
        assert_eq!(parsed[0].retired_at, retired_at);
        assert_eq!(parsed[1].key.kid(), entries[1].key.kid());
        assert_eq!(parsed[1].retired_at, None);
    }

    #[test]
    fn key_file_private_key_rejected() {
        let key = SigningKey::generate(Algorithm::EdDsa).unwrap_or_else(|e| unreachable!("{e}"));
        let pem = key.to_pem().unwrap_or_else(|e| unreachable!("{e}"));
        let error = parse_public_keys(pem.expose()).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(error.contains("PRIVATE KEY"), "{error}");
    }

    #[test]
    fn key_file_unterminated_block_rejected() {
        let text = format_public_key(&entry(Algorithm::EdDsa, None)).unwrap_or_default();
        let cut: String = text.lines().take(4).map(|line| format!("{line}\n")).collect();
        assert!(parse_public_keys(&cut).is_err());
    }

    #[test]
    fn key_file_bad_retired_at_rejected() {
        let text = format_public_key(&entry(Algorithm::EdDsa, None)).unwrap_or_default();
        assert!(parse_public_keys(&format!("Retired-At: yesterday\n{text}")).is_err());
    }

    #[test]
    fn key_file_without_key_rejected() {
        assert!(parse_public_keys("Retired-At: 2026-01-31T12:00:00Z\n").is_err());
    }
}
