//! TLS on the listener: `[tls] cert_file, key_file` (PEM) → a rustls server configuration
//! (TLS 1.2 and 1.3, the `ring` provider, ALPN `http/1.1`).
//!
//! The certificate file holds the server certificate first, then any intermediates; the key
//! file one private key (PKCS#8, PKCS#1 or SEC1). A key file that others may read is refused.
//! Errors name the file and what is wrong, never the file's content.

use std::path::Path;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Builds the server configuration from PEM files. The `Err` is a reason to show after
/// `FILE: tls.cert_file:` or `tls.key_file:` — the first string is the key that is wrong.
pub fn server_config(
    cert_file: &Path,
    key_file: &Path,
) -> Result<Arc<ServerConfig>, (&'static str, String)> {
    let cert_pem = std::fs::read(cert_file).map_err(|e| {
        (
            "tls.cert_file",
            format!("cannot read {}: {e}", cert_file.display()),
        )
    })?;
    let certs = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| {
            (
                "tls.cert_file",
                format!("{} is not a PEM certificate chain", cert_file.display()),
            )
        })?;
    if certs.is_empty() {
        return Err((
            "tls.cert_file",
            format!("{} holds no PEM certificate", cert_file.display()),
        ));
    }
    check_key_mode(key_file).map_err(|reason| ("tls.key_file", reason))?;
    let key_pem = std::fs::read(key_file).map_err(|e| {
        (
            "tls.key_file",
            format!("cannot read {}: {e}", key_file.display()),
        )
    })?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| {
        (
            "tls.key_file",
            format!(
                "{} holds no PEM private key (PKCS#8, PKCS#1 or SEC1)",
                key_file.display()
            ),
        )
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ("tls.cert_file", format!("TLS setup: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            (
                "tls.key_file",
                format!(
                    "the key does not fit the certificate in {}, or is not usable: {e}",
                    key_file.display()
                ),
            )
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A private key readable by others is refused (group-readable is allowed: Debian's `ssl-cert`
/// group convention).
#[cfg(unix)]
fn check_key_mode(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::metadata(path) {
        Ok(m) if m.permissions().mode() & 0o004 != 0 => Err(format!(
            "{} is readable by everyone; `chmod o-r` it (0600 or 0640)",
            path.display()
        )),
        Ok(_) => Ok(()),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

#[cfg(not(unix))]
fn check_key_mode(_path: &Path) -> Result<(), String> {
    Ok(())
}
