//! Helpers of the security and operations tests: a test PKI made at test time (rcgen), raw
//! HTTP/1.1 exchanges, a gateway on a real socket.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use dicom_deid_server::Gateway;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

/// A CA and a server certificate for `127.0.0.1` and `localhost`, as PEM files in a folder.
pub struct Pki {
    /// The CA certificate (what clients trust).
    pub ca: PathBuf,
    /// The server certificate.
    pub cert: PathBuf,
    /// The server key (mode 0600).
    pub key: PathBuf,
    dir: PathBuf,
    issuer: Issuer<'static, KeyPair>,
}

impl Pki {
    /// Makes the CA and the server certificate in `dir`.
    pub fn new(dir: &Path) -> Pki {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "dicom-deid test CA");
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "dicom-deid test server");
        let cert = params.signed_by(&key, &issuer).unwrap();
        let pki = Pki {
            ca: dir.join("ca.pem"),
            cert: dir.join("server.pem"),
            key: dir.join("server.key"),
            dir: dir.to_path_buf(),
            issuer,
        };
        std::fs::write(&pki.ca, ca_cert.pem()).unwrap();
        std::fs::write(&pki.cert, cert.pem()).unwrap();
        write_key(&pki.key, &key);
        pki
    }

    /// A client certificate issued by this CA for `name`: (certificate, key) PEM files in the
    /// PKI's folder.
    pub fn client_cert(&self, name: &str) -> (PathBuf, PathBuf) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let (cert_path, key_path) = (
            self.dir.join(format!("{name}.pem")),
            self.dir.join(format!("{name}.key")),
        );
        std::fs::write(&cert_path, cert.pem()).unwrap();
        write_key(&key_path, &key);
        (cert_path, key_path)
    }

    /// An HTTPS client that trusts this CA (and no built-in root matters for 127.0.0.1).
    pub fn client(&self) -> reqwest::Client {
        let ca = reqwest::Certificate::from_pem(&std::fs::read(&self.ca).unwrap()).unwrap();
        reqwest::Client::builder()
            .use_rustls_tls()
            .add_root_certificate(ca)
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap()
    }
}

/// Writes a private key as PEM with mode 0600.
fn write_key(path: &Path, key: &KeyPair) {
    std::fs::write(path, key.serialize_pem()).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}

/// A gateway served on 127.0.0.1:0 by `dicom_deid_server::run`; `stop` ends it.
pub struct Running {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Running {
    /// Serves `gateway` on a fresh loopback port.
    pub async fn start(gateway: Gateway) -> Running {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let handle = tokio::spawn(dicom_deid_server::run(listener, gateway, async move {
            let _ = stopped.await;
        }));
        Running {
            addr,
            stop: Some(stop),
            handle: Some(handle),
        }
    }

    /// Asks it to stop; returns the task to await.
    pub fn begin_stop(&mut self) -> tokio::task::JoinHandle<std::io::Result<()>> {
        let _ = self.stop.take().unwrap().send(());
        self.handle.take().unwrap()
    }

    /// Stops it and waits until it has.
    pub async fn stop(mut self) {
        self.begin_stop().await.unwrap().unwrap();
    }
}

/// Sends `request` as is on a new connection and returns everything the server sent back
/// before closing (or what came within 20 s).
pub fn raw_exchange(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    // The server may answer (and close) before everything is written: ignore write errors.
    let _ = stream.write_all(request);
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// The status code of a raw HTTP/1.1 answer (0 when there was none).
pub fn status_of(answer: &str) -> u16 {
    answer
        .strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// Every file under `dir` (recursively), sorted.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// What the test STOW destination saw of one POST.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The `Authorization` header, if any.
    pub authorization: Option<String>,
    /// Parts in the body (counted by their `Content-Type: application/dicom` lines).
    pub parts: usize,
}

/// A tiny STOW-RS destination on 127.0.0.1 (HTTPS when given a PKI): `OPTIONS` and `POST`
/// `/dicom-web/studies`, answering 401 unless the `Authorization` header is one of `accept`
/// (when `accept` is not empty), else 200 (which the client reads as "all stored").
pub struct StowResponder {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The POSTs it accepted.
    pub seen: std::sync::Arc<std::sync::Mutex<Vec<Seen>>>,
    /// `OPTIONS` requests it answered.
    pub options: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl StowResponder {
    /// Starts it; `accept` lists the `Authorization` values it takes (empty: any).
    pub async fn start(pki: Option<&Pki>, accept: Vec<String>) -> StowResponder {
        use axum::http::{HeaderMap, StatusCode};
        use axum::routing::post;
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let accept = std::sync::Arc::new(accept);
        let allowed = {
            let accept = accept.clone();
            move |headers: &HeaderMap| {
                let value = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                let ok = accept.is_empty() || value.as_ref().is_some_and(|v| accept.contains(v));
                (ok, value)
            }
        };
        let allowed2 = allowed.clone();
        let options = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let options2 = options.clone();
        let seen2 = seen.clone();
        let router = axum::Router::new().route(
            "/dicom-web/studies",
            post(move |headers: HeaderMap, body: axum::body::Bytes| {
                let seen = seen2.clone();
                let allowed = allowed2.clone();
                async move {
                    let (ok, authorization) = allowed(&headers);
                    if !ok {
                        return (StatusCode::UNAUTHORIZED, String::new());
                    }
                    let text = String::from_utf8_lossy(&body).to_ascii_lowercase();
                    let parts = text.matches("content-type: application/dicom").count();
                    seen.lock().unwrap().push(Seen {
                        authorization,
                        parts,
                    });
                    (StatusCode::OK, "{}".to_string())
                }
            })
            .options(move |headers: HeaderMap| {
                let allowed = allowed.clone();
                options2.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                async move {
                    if allowed(&headers).0 {
                        StatusCode::NO_CONTENT
                    } else {
                        StatusCode::UNAUTHORIZED
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let acceptor = pki.map(|p| {
            tokio_rustls::TlsAcceptor::from(
                dicom_deid_server::tls::server_config(&p.cert, &p.key).unwrap(),
            )
        });
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let router = router.clone();
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let service = hyper_util::service::TowerToHyperService::new(router);
                    let builder = hyper::server::conn::http1::Builder::new();
                    match acceptor {
                        None => {
                            let _ = builder
                                .serve_connection(hyper_util::rt::TokioIo::new(tcp), service)
                                .await;
                        }
                        Some(a) => {
                            if let Ok(tls) = a.accept(tcp).await {
                                let _ = builder
                                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                                    .await;
                            }
                        }
                    }
                });
            }
        });
        StowResponder {
            addr,
            seen,
            options,
            task,
        }
    }

    /// Instances received so far.
    pub fn instances(&self) -> usize {
        self.seen.lock().unwrap().iter().map(|s| s.parts).sum()
    }
}

impl Drop for StowResponder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A loopback port nobody listens on (bound, then released).
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Writes `text` to `dir/name` (mode 0600) and returns the path.
pub fn secret_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    path
}

/// Validates and builds the config `text`, written as `dir/gateway.toml`.
pub fn gateway_from(dir: &Path, text: &str) -> Gateway {
    let file = dir.join("gateway.toml");
    std::fs::write(&file, text).unwrap();
    dicom_deid_server::config::RawConfig::from_file(&file)
        .unwrap()
        .validate(Some(&file))
        .unwrap()
        .build()
        .unwrap()
}

/// Polls `f` every 20 ms until it is true (at most `tries` times); returns whether it became true.
pub async fn eventually(tries: u32, mut f: impl FnMut() -> bool) -> bool {
    for _ in 0..tries {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    f()
}
