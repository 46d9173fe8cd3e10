//! Interop: the forwarder delivering spooled instances to a real Orthanc with its DICOMweb
//! plugin, started by the test on 127.0.0.1 with a temporary storage folder. Without
//! `/usr/sbin/Orthanc` the test skips loudly, except under `CI=true`.
//! (The Orthanc start-up follows crates/dicomweb/tests/orthanc.rs.)

mod common;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{meta, Env};
use dicom_deid_dicomweb::{Auth, ClientConfig, StowClient};
use dicom_deid_forward::{Destination, Sink};
use dicom_deid_wire::testing::{dataset, text};
use dicom_deid_wire::{write_file, Element, FileMetaOut, Syntax, Vr};

const ORTHANC: &str = "/usr/sbin/Orthanc";
const PLUGIN: &str = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so";

/// A running Orthanc, killed (by its PID) when dropped.
struct Orthanc {
    child: Child,
    http: String,
    dir: tempfile::TempDir,
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
        eprintln!("\n*** SKIPPING the forwarder's Orthanc interop test: {msg} ***\n");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let (http_port, dicom_port) = (free_port(), free_port());
    let storage = dir.path().join("storage");
    let config = serde_json::json!({
        "Name": "dicom-deid-forward-test",
        "StorageDirectory": storage,
        "IndexDirectory": storage,
        "HttpPort": http_port,
        "DicomPort": dicom_port,
        "DicomAet": "DEIDFWD",
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
        dir,
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
            std::fs::read_to_string(orthanc.dir.path().join("orthanc.log")).unwrap_or_default();
        assert!(
            Instant::now() < deadline,
            "Orthanc did not answer GET /system; its log:\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Some(orthanc)
}

/// A small de-identified-looking CT Part 10 file with the given UIDs.
fn instance(study: &str, series: &str, sop: &str) -> Vec<u8> {
    let ds = dataset(vec![
        text(0x0008_0016, Vr::UI, "1.2.840.10008.5.1.4.1.1.2"),
        text(0x0008_0018, Vr::UI, sop),
        text(0x0008_0060, Vr::CS, "CT"),
        text(0x0010_0020, Vr::LO, "PSEUDO-1"),
        text(0x0020_000D, Vr::UI, study),
        text(0x0020_000E, Vr::UI, series),
        Element::new(0x0028_0010, Vr::US, 2u16.to_le_bytes().to_vec()),
        Element::new(0x0028_0011, Vr::US, 2u16.to_le_bytes().to_vec()),
        Element::new(0x7FE0_0010, Vr::OW, vec![1u8, 0, 2, 0, 3, 0, 4, 0]),
    ]);
    let meta = FileMetaOut::for_dataset(&ds, "1.2.840.10008.1.2.1", "1.2.3", "TEST");
    let mut out = Vec::new();
    write_file(&mut out, &meta, &ds, Syntax::EXPLICIT_LE).unwrap();
    out
}

async fn get_json(url: String) -> serde_json::Value {
    let body = reqwest::get(url).await.unwrap().bytes().await.unwrap();
    serde_json::from_slice(&body).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orthanc_receives_every_spooled_instance_grouped_by_study() {
    let Some(orthanc) = start_orthanc().await else {
        return;
    };
    let env = Env::new();
    let mut sent = Vec::new();
    for (study, n) in [("2.25.1001", 3), ("2.25.1002", 2)] {
        for i in 0..n {
            let m = meta(study, &format!("{study}.{i}"));
            let bytes = instance(&m.study_uid, &m.series_uid, &m.sop_instance_uid);
            env.put("orthanc", &m, &bytes);
            sent.push(m);
        }
    }
    // One instance twice (a redelivery after a crash): it arrives once and counts as delivered.
    let again = &sent[0];
    let bytes = instance(&again.study_uid, &again.series_uid, &again.sop_instance_uid);
    env.put("orthanc", again, &bytes);

    let client = StowClient::new(ClientConfig {
        base_url: format!("{}/dicom-web/", orthanc.http),
        auth: Auth::None,
        ca_pem: None,
        timeout: Duration::from_secs(60),
    })
    .unwrap();
    let running = env.start(vec![Destination::new("orthanc", Sink::Stow { client })]);
    running.notifier.notify("orthanc");
    env.drained("orthanc").await;
    running.stop().await;

    assert_eq!(env.spool.depth().dead_entries, 0);
    assert_eq!(env.audit_events("delivered").len(), 6);
    assert_eq!(env.verify_audit(), 6);

    let instances = get_json(format!("{}/instances?expand", orthanc.http)).await;
    let mut uids: Vec<&str> = instances
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["MainDicomTags"]["SOPInstanceUID"].as_str().unwrap())
        .collect();
    uids.sort();
    let mut expected: Vec<&str> = sent.iter().map(|m| m.sop_instance_uid.as_str()).collect();
    expected.sort();
    assert_eq!(uids, expected);
    let studies = get_json(format!("{}/studies?expand", orthanc.http)).await;
    let mut per_study: Vec<(String, usize)> = studies
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let uid = s["MainDicomTags"]["StudyInstanceUID"]
                .as_str()
                .unwrap()
                .to_string();
            let series = s["Series"].as_array().unwrap().len();
            (uid, series)
        })
        .collect();
    per_study.sort();
    assert_eq!(
        per_study,
        [("2.25.1001".to_string(), 1), ("2.25.1002".to_string(), 1)]
    );
}
