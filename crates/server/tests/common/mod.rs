//! Shared helpers of the server tests.
#![allow(dead_code)]

use std::path::Path;

use axum::body::Body;
use axum::http::{Request, Response};
use dicom_deid_server::config::RawConfig;
use dicom_deid_server::Gateway;
use dicom_deid_wire::testing::{dataset, text};
use dicom_deid_wire::{write_file, Element, FileMetaOut, Syntax, Vr};
use http_body_util::BodyExt;

/// The original values no log, audit line or stored file may carry.
pub const FORBIDDEN: &[&str] = &["Doe^Jane", "PID-0001", "1.2.3.4.5"];
/// The original study UID of every test instance.
pub const STUDY: &str = "1.2.3.4.5";

/// Test instance `i`: Doe^Jane, PID-0001, study 1.2.3.4.5, SOP 1.2.3.4.5.6.7.{i}.
pub fn instance(i: usize) -> Vec<u8> {
    let ds = dataset(vec![
        text(0x0008_0016, Vr::UI, "1.2.840.10008.5.1.4.1.1.2"),
        text(0x0008_0018, Vr::UI, &format!("1.2.3.4.5.6.7.{i}")),
        text(0x0008_0060, Vr::CS, "CT"),
        text(0x0010_0010, Vr::PN, "Doe^Jane"),
        text(0x0010_0020, Vr::LO, "PID-0001"),
        text(0x0020_000D, Vr::UI, STUDY),
        text(0x0020_000E, Vr::UI, "1.2.3.4.5.6"),
        Element::new(0x0028_0010, Vr::US, 2u16.to_le_bytes().to_vec()),
        Element::new(0x0028_0011, Vr::US, 2u16.to_le_bytes().to_vec()),
        Element::new(0x7FE0_0010, Vr::OW, vec![1u8, 0, 2, 0, 3, 0, 4, 0]),
    ]);
    let meta = FileMetaOut::for_dataset(&ds, "1.2.840.10008.1.2.1", "1.2.3", "TEST");
    let mut out = Vec::new();
    write_file(&mut out, &meta, &ds, Syntax::EXPLICIT_LE).unwrap();
    out
}

/// A config with its data in `dir`.
pub fn raw_config(dir: &Path) -> RawConfig {
    RawConfig {
        data_dir: Some(dir.to_path_buf()),
        ..RawConfig::default()
    }
}

/// A gateway built from `raw`.
pub fn gateway(raw: &RawConfig) -> Gateway {
    raw.validate(None).unwrap().build().unwrap()
}

/// A multipart/related STOW request to `path`.
pub fn stow_request(path: &str, parts: &[(&str, &[u8])]) -> Request<Body> {
    let boundary = "xX-test-boundary-Xx";
    let body = dicom_deid_dicomweb::encode_parts(boundary, parts);
    Request::post(path)
        .header(
            "content-type",
            format!("multipart/related; type=\"application/dicom\"; boundary={boundary}"),
        )
        .header("accept", "application/dicom+json")
        .body(Body::from(body))
        .unwrap()
}

/// The body of a response, as bytes.
pub async fn body_bytes(res: Response<Body>) -> Vec<u8> {
    res.into_body().collect().await.unwrap().to_bytes().to_vec()
}

/// The body of a STOW response as DICOM JSON.
pub async fn body_json(res: Response<Body>) -> serde_json::Value {
    serde_json::from_slice(&body_bytes(res).await).unwrap()
}

/// The items of sequence `tag` (e.g. "00081199") in a DICOM JSON response.
pub fn items<'a>(json: &'a serde_json::Value, tag: &str) -> Vec<&'a serde_json::Value> {
    json[tag]["Value"]
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default()
}

/// FailureReason of each FailedSOPSequence item.
pub fn failure_reasons(json: &serde_json::Value) -> Vec<u64> {
    items(json, "00081198")
        .iter()
        .map(|i| i["00081197"]["Value"][0].as_u64().unwrap())
        .collect()
}

/// A gateway run in this process (`dicom_deid_server::run`) from a config with a `[dimse]`
/// section listening on `dimse_port`; its config file and data live in `dir`.
pub struct InProcess {
    /// The config file's folder (`data_dir = "data"` puts the data under it).
    pub dir: tempfile::TempDir,
    /// The HTTP listener.
    pub http: std::net::SocketAddr,
    /// The C-STORE SCP's port.
    pub dimse_port: u16,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl InProcess {
    /// Starts the gateway from the config `text(port)` gives for a free DIMSE port (written to
    /// `dir/gateway.toml`) and returns once it answers on its HTTP listener. The gateway binds
    /// its C-STORE SCP before it serves HTTP, so an answer means the port is its own: when
    /// another test took the port between [`free_port`] and the bind, the gateway stops at
    /// once and this tries again with another port.
    pub async fn start(dir: tempfile::TempDir, text: impl Fn(u16) -> String) -> InProcess {
        for _ in 0..5 {
            let dimse_port = dicom_deid_testpeers::free_port();
            let text = text(dimse_port);
            let path = dir.path().join("gateway.toml");
            std::fs::write(&path, &text).unwrap();
            let raw = RawConfig::from_toml(&text, &path.display().to_string()).unwrap();
            let gateway = raw.validate(Some(&path)).unwrap().build().unwrap();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let http = listener.local_addr().unwrap();
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let task = tokio::spawn(dicom_deid_server::run(listener, gateway, async move {
                let _ = stopped.await;
            }));
            for _ in 0..100 {
                if answers(http).await || task.is_finished() {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            if task.is_finished() {
                let ended = task.await.unwrap();
                eprintln!(
                    "gateway did not start on DIMSE port {dimse_port} ({ended:?}); trying another"
                );
                continue;
            }
            return InProcess {
                dir,
                http,
                dimse_port,
                stop,
                task,
            };
        }
        panic!("the gateway did not start on any of five free ports");
    }

    /// Stops it (graceful shutdown) and hands back its folder.
    pub async fn stop(self) -> tempfile::TempDir {
        let _ = self.stop.send(());
        self.task.await.unwrap().unwrap();
        self.dir
    }
}

/// Whether an HTTP server at `addr` answers `GET /healthz` (with any status).
async fn answers(addr: std::net::SocketAddr) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else {
        return false;
    };
    let request = b"GET /healthz HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n";
    if s.write_all(request).await.is_err() {
        return false;
    }
    let mut head = [0u8; 5];
    matches!(
        tokio::time::timeout(std::time::Duration::from_secs(5), s.read_exact(&mut head)).await,
        Ok(Ok(_))
    ) && &head == b"HTTP/"
}

/// The trimmed text of a top-level element of a Part 10 file (`None` when deflated).
pub fn text_of(bytes: &[u8], tag: u32) -> Option<String> {
    let limits = dicom_deid_wire::Limits::default();
    let raw = dicom_deid_wire::read_file(bytes, &limits).ok()?;
    if raw.syntax.deflated {
        return None;
    }
    let ds = dicom_deid_wire::parse_dataset(raw.body, raw.syntax, &limits).ok()?;
    ds.str(tag).map(str::to_string)
}

/// A `/metrics` counter of a running gateway.
pub async fn counter(http: std::net::SocketAddr, name: &str) -> u64 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(http).await.unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).await.unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("{name} in /metrics"))
        .trim()
        .parse()
        .unwrap()
}
