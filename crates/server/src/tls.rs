//! TLS from PEM files → a rustls server configuration (TLS 1.2 and 1.3, the `ring` provider):
//! for the HTTP listener (`[tls] cert_file, key_file`; ALPN `http/1.1`) and for the DIMSE SCP
//! (`[dimse] tls_cert_file, tls_key_file`, optionally `tls_client_ca_file` to require client
//! certificates from that CA).
//!
//! The certificate file holds the server certificate first, then any intermediates; the key
//! file one private key (PKCS#8, PKCS#1 or SEC1). A key file that others may read is refused.
//! Errors name the file and what is wrong, never the file's content.

use std::path::Path;
use std::sync::Arc;

use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Builds the listener's server configuration from PEM files. The `Err` is a reason to show
/// after `FILE: tls.cert_file:` or `tls.key_file:` — the first string is the key that is wrong.
pub fn server_config(
    cert_file: &Path,
    key_file: &Path,
) -> Result<Arc<ServerConfig>, (&'static str, String)> {
    let keys = Keys {
        cert_file: "tls.cert_file",
        key_file: "tls.key_file",
        client_ca_file: "tls.client_ca_file",
    };
    let mut config = build(cert_file, key_file, None, &keys)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Builds the DIMSE SCP's server configuration (the DICOM TLS profile: TLS 1.2 or 1.3, no
/// ALPN) from PEM files; with `client_ca_file`, every client must present a certificate that
/// chains to one of its certificates. Errors name `dimse.tls_cert_file`, `dimse.tls_key_file`
/// or `dimse.tls_client_ca_file`.
pub fn dimse_server_config(
    cert_file: &Path,
    key_file: &Path,
    client_ca_file: Option<&Path>,
) -> Result<Arc<ServerConfig>, (&'static str, String)> {
    let keys = Keys {
        cert_file: "dimse.tls_cert_file",
        key_file: "dimse.tls_key_file",
        client_ca_file: "dimse.tls_client_ca_file",
    };
    build(cert_file, key_file, client_ca_file, &keys).map(Arc::new)
}

/// The config keys an error names.
struct Keys {
    cert_file: &'static str,
    key_file: &'static str,
    client_ca_file: &'static str,
}

/// Certificates from a PEM file: at least one.
fn read_certs(
    path: &Path,
    key: &'static str,
) -> Result<Vec<CertificateDer<'static>>, (&'static str, String)> {
    let pem =
        std::fs::read(path).map_err(|e| (key, format!("cannot read {}: {e}", path.display())))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| {
            (
                key,
                format!("{} is not a PEM certificate chain", path.display()),
            )
        })?;
    if certs.is_empty() {
        return Err((key, format!("{} holds no PEM certificate", path.display())));
    }
    Ok(certs)
}

fn build(
    cert_file: &Path,
    key_file: &Path,
    client_ca_file: Option<&Path>,
    keys: &Keys,
) -> Result<ServerConfig, (&'static str, String)> {
    let certs = read_certs(cert_file, keys.cert_file)?;
    check_key_mode(key_file).map_err(|reason| (keys.key_file, reason))?;
    let key_pem = std::fs::read(key_file).map_err(|e| {
        (
            keys.key_file,
            format!("cannot read {}: {e}", key_file.display()),
        )
    })?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| {
        (
            keys.key_file,
            format!(
                "{} holds no PEM private key (PKCS#8, PKCS#1 or SEC1)",
                key_file.display()
            ),
        )
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| (keys.cert_file, format!("TLS setup: {e}")))?;
    let builder = match client_ca_file {
        None => builder.with_no_client_auth(),
        Some(ca_file) => {
            let mut roots = RootCertStore::empty();
            for cert in read_certs(ca_file, keys.client_ca_file)? {
                roots.add(cert).map_err(|e| {
                    (
                        keys.client_ca_file,
                        format!(
                            "{} holds an unusable CA certificate: {e}",
                            ca_file.display()
                        ),
                    )
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| {
                    (
                        keys.client_ca_file,
                        format!("cannot verify clients with {}: {e}", ca_file.display()),
                    )
                })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    builder.with_single_cert(certs, key).map_err(|e| {
        (
            keys.key_file,
            format!(
                "the key does not fit the certificate in {}, or is not usable: {e}",
                key_file.display()
            ),
        )
    })
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
