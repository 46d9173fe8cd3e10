//! Fetching the pinned wheel from a Python package index (feature `download`).
//!
//! The index's "simple" page for the project (PEP 503 HTML, which every index and mirror
//! serves) lists the wheel's URL; the wheel is then fetched and its size bounded. The caller
//! checks the SHA-256, so a mirror or a proxy cannot substitute another file.
//!
//! TLS trusts the Mozilla roots built into rustls plus the system's CA bundle
//! (`$SSL_CERT_FILE`, or the usual Debian/Red Hat/BSD paths), so a site with an
//! intercepting proxy whose CA is installed system-wide works as well.

use std::io::Read;
use std::time::Duration;

use reqwest::blocking::Client;
use reqwest::Url;

use crate::install::{WHEEL_FILE, WHEEL_PROJECT};

const MAX_INDEX_PAGE: u64 = 8 << 20;
const MAX_WHEEL: u64 = 64 << 20;

/// The wheel's bytes, or why they could not be fetched.
pub(crate) fn fetch_wheel(index: &str) -> Result<Vec<u8>, String> {
    let client = client()?;
    let base = if index.ends_with('/') {
        index.to_string()
    } else {
        format!("{index}/")
    };
    let page_url = Url::parse(&base)
        .and_then(|b| b.join(&format!("{WHEEL_PROJECT}/")))
        .map_err(|e| format!("bad index URL: {e}"))?;
    let page = get(&client, page_url.clone(), MAX_INDEX_PAGE)?;
    let page = String::from_utf8_lossy(&page);
    let href = wheel_href(&page)
        .ok_or_else(|| format!("the index page of {WHEEL_PROJECT} does not list {WHEEL_FILE}"))?;
    let wheel_url = page_url
        .join(&href)
        .map_err(|e| format!("bad wheel link on the index page: {e}"))?;
    get(&client, wheel_url, MAX_WHEEL)
}

fn client() -> Result<Client, String> {
    let mut builder = Client::builder()
        .connect_timeout(Duration::from_secs(30))
        .timeout(Duration::from_secs(600))
        .user_agent(concat!("dicom-deid/", env!("CARGO_PKG_VERSION")));
    for cert in system_roots() {
        builder = builder.add_root_certificate(cert);
    }
    builder
        .build()
        .map_err(|e| format!("cannot set up the HTTP client: {e}"))
}

/// Certificates of the system CA bundle, if one is found (none is not an error: the
/// built-in roots remain).
fn system_roots() -> Vec<reqwest::Certificate> {
    let candidates = std::env::var_os("SSL_CERT_FILE")
        .map(std::path::PathBuf::from)
        .into_iter()
        .chain(
            [
                "/etc/ssl/certs/ca-certificates.crt",
                "/etc/pki/tls/certs/ca-bundle.crt",
                "/etc/ssl/cert.pem",
            ]
            .map(std::path::PathBuf::from),
        );
    for path in candidates {
        if let Ok(pem) = std::fs::read(&path) {
            if let Ok(certs) = reqwest::Certificate::from_pem_bundle(&pem) {
                if !certs.is_empty() {
                    return certs;
                }
            }
        }
    }
    Vec::new()
}

fn get(client: &Client, url: Url, max: u64) -> Result<Vec<u8>, String> {
    let shown = format!(
        "{}://{}{}",
        url.scheme(),
        url.host_str().unwrap_or(""),
        url.path()
    );
    let response = client
        .get(url)
        .header(reqwest::header::ACCEPT, "text/html, */*")
        .send()
        .map_err(|e| format!("{shown}: {}", error_chain(&e)))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("{shown}: HTTP {status}"));
    }
    let mut body = Vec::new();
    response
        .take(max + 1)
        .read_to_end(&mut body)
        .map_err(|e| format!("{shown}: {e}"))?;
    if body.len() as u64 > max {
        return Err(format!("{shown}: larger than {max} bytes"));
    }
    Ok(body)
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// The `href` of the link to the pinned wheel on a PEP 503 page, fragment removed.
fn wheel_href(page: &str) -> Option<String> {
    let mut rest = page;
    while let Some(at) = rest.find("href=") {
        rest = &rest[at + 5..];
        let quote = rest.chars().next()?;
        if quote != '"' && quote != '\'' {
            continue;
        }
        let end = rest[1..].find(quote)?;
        let href = rest[1..1 + end].replace("&amp;", "&");
        rest = &rest[1 + end..];
        let path = href.split('#').next().unwrap_or("");
        let file = path.split('?').next().unwrap_or("").rsplit('/').next();
        if file == Some(WHEEL_FILE) {
            return Some(path.to_string());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wheel_link_is_found_among_others() {
        let page = r#"<html><body>
<a href="https://files.example/packages/aa/rapidocr_onnxruntime-1.4.3-py3-none-any.whl#sha256=00">x</a>
<a href='../../packages/bb/rapidocr_onnxruntime-1.4.4-py3-none-any.whl#sha256=971d' data-requires-python="&lt;3.13">y</a>
</body></html>"#;
        assert_eq!(
            wheel_href(page).as_deref(),
            Some("../../packages/bb/rapidocr_onnxruntime-1.4.4-py3-none-any.whl")
        );
        assert_eq!(wheel_href("<a href=\"other-1.0.whl\">"), None);
        assert_eq!(wheel_href("href="), None);
    }
}
