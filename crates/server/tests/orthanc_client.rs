//! A real STOW-RS sender: Orthanc (with its DICOMweb plugin, started by the test on 127.0.0.1)
//! is given the gateway as a DICOMweb server and pushes a study through
//! `/dicom-web/servers/{name}/stow`, chunked and not chunked. Orthanc fails such a job unless
//! every instance it sent is listed in ReferencedSOPSequence, so its success is the check.
//! Without `/usr/sbin/Orthanc` the test skips loudly, except under `CI=true`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const ORTHANC: &str = "/usr/sbin/Orthanc";
const PLUGIN: &str = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so";

/// Orthanc, killed by its PID when dropped.
struct Orthanc {
    child: Child,
    url: String,
    dir: tempfile::TempDir,
}

impl Drop for Orthanc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start_orthanc(gateway: &str) -> Option<Orthanc> {
    if !Path::new(ORTHANC).exists() || !Path::new(PLUGIN).exists() {
        let msg = format!(
            "{ORTHANC} or {PLUGIN} is missing: `apt-get install -y orthanc orthanc-dicomweb`"
        );
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{msg} (required under CI=true)"
        );
        eprintln!("\n*** SKIPPING the Orthanc STOW client test: {msg} ***\n");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let http_port = free_port();
    let storage = dir.path().join("storage");
    let config = serde_json::json!({
        "Name": "dicom-deid-sender",
        "StorageDirectory": storage,
        "IndexDirectory": storage,
        "HttpPort": http_port,
        "DicomPort": free_port(),
        "DicomAet": "DEIDSENDER",
        "RemoteAccessAllowed": false,
        "AuthenticationEnabled": false,
        "Plugins": [PLUGIN],
        "DicomWeb": {
            "Enable": true,
            "Root": "/dicom-web/",
            "Servers": {
                "gw-chunked": {"Url": format!("{gateway}/")},
                "gw-plain": {"Url": format!("{gateway}/"), "ChunkedTransfers": false},
            },
        },
    });
    let config_path = dir.path().join("orthanc.json");
    std::fs::write(&config_path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
    let log = std::fs::File::create(dir.path().join("orthanc.log")).unwrap();
    let child = Command::new(ORTHANC)
        .arg(&config_path)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("Orthanc starts");
    let orthanc = Orthanc {
        child,
        url: format!("http://127.0.0.1:{http_port}"),
        dir,
    };
    // Waiting for an external process to come up (not a timing assertion).
    let deadline = Instant::now() + Duration::from_secs(60);
    let http = reqwest::Client::new();
    loop {
        if let Ok(r) = http.get(format!("{}/system", orthanc.url)).send().await {
            if r.status().is_success() {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "Orthanc did not come up; log:\n{}",
            orthanc.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Some(orthanc)
}

impl Orthanc {
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("orthanc.log")).unwrap_or_default()
    }
}

fn dcm_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(dcm_files(&p));
        } else if p.extension().is_some_and(|x| x == "dcm") {
            out.push(p);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orthanc_pushes_a_study_into_the_gateway_chunked_and_not() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
        .with_test_writer()
        .try_init();
    let data = tempfile::tempdir().unwrap();
    let gw = gateway(&raw_config(data.path()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(dicom_deid_server::run(listener, gw, async move {
        let _ = stopped.await;
    }));
    let Some(orthanc) = start_orthanc(&format!("http://{addr}")).await else {
        return;
    };
    let http = reqwest::Client::new();

    // Three instances of one study into Orthanc.
    let mut study = String::new();
    for i in 1..=3 {
        let res = http
            .post(format!("{}/instances", orthanc.url))
            .header("content-type", "application/dicom")
            .body(instance(i))
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success(), "upload {i}: {}", res.status());
        let json: serde_json::Value = serde_json::from_slice(&res.bytes().await.unwrap()).unwrap();
        study = json["ParentStudy"].as_str().unwrap().to_string();
    }

    for server_name in ["gw-chunked", "gw-plain"] {
        let res = http
            .post(format!(
                "{}/dicom-web/servers/{server_name}/stow",
                orthanc.url
            ))
            .header("content-type", "application/json")
            .body(serde_json::json!({"Resources": [study]}).to_string())
            .send()
            .await
            .unwrap();
        let status = res.status();
        let body = res.text().await.unwrap_or_default();
        assert!(
            status.is_success(),
            "{server_name}: Orthanc's STOW job failed: {status} {body}\nOrthanc log:\n{}",
            orthanc.log()
        );
    }

    // Both pushes de-identify to the same new UIDs: three files in the folder destination.
    let out = data.path().join("out");
    let mut files = Vec::new();
    for _ in 0..600 {
        files = dcm_files(&out);
        if files.len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(files.len(), 3, "{files:?}");
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
    let audit = std::fs::read_to_string(data.path().join("audit.jsonl")).unwrap();
    assert_eq!(audit.matches("\"event\":\"queued\"").count(), 6);
    dicom_deid_audit::testing::assert_file_has_no(&data.path().join("audit.jsonl"), FORBIDDEN);
}
