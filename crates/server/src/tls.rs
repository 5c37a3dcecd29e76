//! HTTPS: the rustls server configuration from `TLS_CERT_FILE` and `TLS_KEY_FILE`.
//!
//! The certificate file contains the PEM certificate chain, leaf first, and the key file
//! contains one PEM private key (PKCS #8, PKCS #1 or SEC1). rustls runs with its ring
//! provider, TLS 1.2 and 1.3, and offers HTTP/1.1 over ALPN. The files are read once, at
//! start-up.

use std::path::Path;
use std::sync::Arc;

use finetune_core::settings::Settings;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::commands::CommandError;

/// Returns the problem when only one of `TLS_CERT_FILE` and `TLS_KEY_FILE` is set.
pub fn half_configured(settings: &Settings) -> Option<String> {
    match (&settings.tls_cert_file, &settings.tls_key_file) {
        (Some(_), None) => Some(
            "TLS_CERT_FILE is set but TLS_KEY_FILE is not: set both to serve HTTPS, or neither to serve plain HTTP."
                .into(),
        ),
        (None, Some(_)) => Some(
            "TLS_KEY_FILE is set but TLS_CERT_FILE is not: set both to serve HTTPS, or neither to serve plain HTTP."
                .into(),
        ),
        _ => None,
    }
}

fn load_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, CommandError> {
    let certificates = CertificateDer::pem_file_iter(path)
        .and_then(|items| items.collect::<Result<Vec<_>, _>>())
        .map_err(|error| {
            CommandError::Message(format!(
                "TLS_CERT_FILE {}: cannot read a PEM certificate chain: {error}",
                path.display()
            ))
        })?;
    if certificates.is_empty() {
        return Err(CommandError::Message(format!(
            "TLS_CERT_FILE {}: no CERTIFICATE block found; the file must hold the PEM chain, leaf first",
            path.display()
        )));
    }
    Ok(certificates)
}

fn load_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, CommandError> {
    PrivateKeyDer::from_pem_file(path).map_err(|error| {
        CommandError::Message(format!(
            "TLS_KEY_FILE {}: cannot read a PEM private key (PKCS #8, PKCS #1 or SEC1): {error}",
            path.display()
        ))
    })
}

/// Builds the rustls configuration, or returns `None` when the settings name no
/// certificate and key. Every error names the setting and the file.
pub fn server_config(settings: &Settings) -> Result<Option<ServerConfig>, CommandError> {
    if let Some(problem) = half_configured(settings) {
        return Err(CommandError::Message(problem));
    }
    let (Some(cert_file), Some(key_file)) = (&settings.tls_cert_file, &settings.tls_key_file) else {
        return Ok(None);
    };
    let certificates = load_certificates(cert_file)?;
    let key = load_private_key(key_file)?;

    // NOTE: rustls 0.23.48 deprecates the ring provider because it has no post-quantum
    // key exchange. The aws-lc-rs provider has one but needs a long C build; switch to it
    // when the build machines can afford that.
    #[expect(deprecated, reason = "ring is the provider this build links")]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| CommandError::Message(format!("TLS: {error}")))?
        .with_no_client_auth()
        .with_single_cert(certificates, key)
        .map_err(|error| {
            CommandError::Message(format!(
                "TLS_CERT_FILE {} and TLS_KEY_FILE {} do not form a usable pair: {error}",
                cert_file.display(),
                key_file.display()
            ))
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(config))
}
