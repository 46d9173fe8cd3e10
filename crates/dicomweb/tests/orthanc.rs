//! Interop: the STOW-RS client delivering to a real Orthanc with its DICOMweb
//! plugin, started by the test on 127.0.0.1 with a temporary storage folder.
//! Without `/usr/sbin/Orthanc` the test skips loudly, except under `CI=true`.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use dicom_deid_dicomweb::{Auth, ClientConfig, InstanceOutcome, StoreOutcome, StowClient};

const ORTHANC: &str = "/usr/sbin/Orthanc";
const PLUGIN: &str = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so";

/// A running Orthanc, killed (by its PID) when dropped.
struct Orthanc {
    child: Child,
    http: String,
    _dir: tempfile::TempDir,
}

impl Drop for Orthanc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts Orthanc, or says why not (`None`) on a machine without it.
async fn start_orthanc() -> Option<Orthanc> {
    if !Path::new(ORTHANC).exists() || !Path::new(PLUGIN).exists() {
        let msg = format!(
            "{ORTHANC} or {PLUGIN} is missing: `apt-get install -y orthanc orthanc-dicomweb`"
        );
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{msg} (required under CI=true)"
        );
        eprintln!("\n*** SKIPPING the Orthanc interop test: {msg} ***\n");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let (http_port, dicom_port) = (free_port(), free_port());
    let storage = dir.path().join("storage");
    let config = serde_json::json!({
        "Name": "dicom-deid-test",
        "StorageDirectory": storage,
        "IndexDirectory": storage,
        "HttpPort": http_port,
        "DicomPort": dicom_port,
        "DicomAet": "DEIDTEST",
        "RemoteAccessAllowed": false,
        "AuthenticationEnabled": false,
        "Plugins": [PLUGIN],
        "DicomWeb": {"Enable": true, "Root": "/dicom-web/"},
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
        http: format!("http://127.0.0.1:{http_port}"),
        _dir: dir,
    };
    // Waiting for an external process to come up (not a timing assertion).
    let deadline = Instant::now() + Duration::from_secs(60);
    let http = reqwest::Client::new();
    loop {
        if let Ok(r) = http.get(format!("{}/system", orthanc.http)).send().await {
            if r.status().is_success() {
                break;
            }
        }
        let log =
            std::fs::read_to_string(orthanc._dir.path().join("orthanc.log")).unwrap_or_default();
        assert!(
            Instant::now() < deadline,
            "Orthanc did not answer GET /system; its log:\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Some(orthanc)
}

/// `minimal_file()` with its SOP Instance UID (in the data set and the file
/// meta) changed to `1.2.3.4.5.6.<last>`, same length.
fn instance(last: char) -> (String, Bytes) {
    let mut file = dicom_deid_wire::testing::minimal_file();
    let from = b"1.2.3.4.5.6.7\0";
    let mut to = *from;
    to[12] = last as u8;
    let mut hits = 0;
    for i in 0..file.len() - from.len() {
        if &file[i..i + from.len()] == from {
            file[i..i + from.len()].copy_from_slice(&to);
            hits += 1;
        }
    }
    assert_eq!(hits, 2, "the SOP Instance UID in the meta and the data set");
    (format!("1.2.3.4.5.6.{last}"), Bytes::from(file))
}

#[tokio::test]
async fn orthanc_stores_what_the_client_sends() {
    let Some(orthanc) = start_orthanc().await else {
        return;
    };
    let client = StowClient::new(ClientConfig {
        base_url: format!("{}/dicom-web/", orthanc.http),
        auth: Auth::None,
        ca_pem: None,
        timeout: Duration::from_secs(60),
    })
    .unwrap();
    let files: Vec<(String, Bytes)> = ['1', '2', '3'].into_iter().map(instance).collect();
    let batch = |range: std::ops::Range<usize>| -> Vec<(&str, Bytes)> {
        files[range]
            .iter()
            .map(|(u, b)| (u.as_str(), b.clone()))
            .collect()
    };

    // Two instances to /studies, one to /studies/{uid}.
    let out = client.store(None, &batch(0..2)).await.unwrap();
    assert_eq!(
        out,
        StoreOutcome::Answered {
            status: 200,
            instances: vec![InstanceOutcome::Stored { warning: None }; 2]
        }
    );
    let out = client.store(Some("1.2.3.4.5"), &batch(2..3)).await.unwrap();
    assert_eq!(
        out,
        StoreOutcome::Answered {
            status: 200,
            instances: vec![InstanceOutcome::Stored { warning: None }]
        }
    );
    // Sending one again is harmless and still reads as delivered.
    let out = client.store(None, &batch(0..1)).await.unwrap();
    let StoreOutcome::Answered { instances, .. } = &out else {
        panic!("{out:?}")
    };
    assert!(instances[0].is_delivered(), "{out:?}");

    let listed = reqwest::get(format!("{}/instances?expand", orthanc.http))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let listed: Vec<serde_json::Value> = serde_json::from_slice(&listed).unwrap();
    let mut uids: Vec<&str> = listed
        .iter()
        .map(|i| i["MainDicomTags"]["SOPInstanceUID"].as_str().unwrap())
        .collect();
    uids.sort();
    assert_eq!(uids, ["1.2.3.4.5.6.1", "1.2.3.4.5.6.2", "1.2.3.4.5.6.3"]);
}
