//! The gateway on a real socket: a real HTTP client posts, the forwarder delivers to the folder
//! destination, and nothing original reaches the logs (captured at debug level), the audit or the
//! delivered files.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use dicom_deid_wire::testing::dcm_files;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stow_over_http_is_delivered_to_the_folder_and_logs_stay_clean() {
    let logs = Captured::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            "debug,reqwest=off,hyper_util::client=off",
        ))
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(&raw_config(dir.path()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(dicom_deid_server::run(listener, gw, async move {
        let _ = stopped.await;
    }));

    let client = reqwest::Client::new();
    let boundary = "b-0123456789";
    let (a, b, c) = (instance(1), instance(2), instance(3));
    let body = dicom_deid_dicomweb::encode_parts(
        boundary,
        &[
            ("application/dicom", &a),
            ("application/dicom", b"not dicom"),
            ("application/dicom", &b),
        ],
    );
    let res = client
        .post(format!("http://{addr}/studies"))
        .header(
            "content-type",
            format!("multipart/related; type=\"application/dicom\"; boundary={boundary}"),
        )
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let json: serde_json::Value = serde_json::from_slice(&res.bytes().await.unwrap()).unwrap();
    assert_eq!(items(&json, "00081199").len(), 2);

    // The original study UID in the path must not reach the logs either.
    let res = client
        .post(format!("http://{addr}/studies/{STUDY}"))
        .header("content-type", "application/dicom")
        .body(c)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = client
        .get(format!("http://{addr}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    // The forwarder delivers the three instances to <data>/out/<study>/<sop>.dcm.
    let out = dir.path().join("out");
    let mut files = Vec::new();
    for _ in 0..600 {
        files = dcm_files(&out);
        if files.len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(files.len(), 3, "delivered: {files:?}");
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        assert_eq!(&bytes[128..132], b"DICM");
        for v in FORBIDDEN {
            assert!(!contains(&bytes, v), "{v} in {}", f.display());
        }
        // The path is made of new UIDs only.
        assert!(!f.to_string_lossy().contains(STUDY), "{}", f.display());
    }

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();

    let audit_path = dir.path().join("audit.jsonl");
    let audit = std::fs::read_to_string(&audit_path).unwrap();
    assert_eq!(audit.matches("\"event\":\"queued\"").count(), 3);
    assert_eq!(audit.matches("\"event\":\"delivered\"").count(), 3);
    assert_eq!(audit.matches("\"event\":\"rejected\"").count(), 1);
    dicom_deid_audit::testing::assert_file_has_no(&audit_path, FORBIDDEN);

    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("STOW request answered."), "{logs}");
    for v in FORBIDDEN {
        assert!(!logs.contains(v), "{v} in the logs:\n{logs}");
    }
}
