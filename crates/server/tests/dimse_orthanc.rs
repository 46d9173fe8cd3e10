//! Orthanc as a DICOM modality: a source Orthanc (started on 127.0.0.1 by the test) has the
//! gateway's C-STORE SCP in its `DicomModalities` and sends a study with
//! `POST /modalities/{name}/store`; the gateway de-identifies each instance and forwards it by
//! STOW-RS to a second Orthanc. Checked: Orthanc's store job ends in Success with no failed
//! instance, the destination holds every instance of the study under one new Study Instance
//! UID, with new patient name and ID, and neither those files nor the audit carry an original
//! value. Without Orthanc the test skips loudly, except under `CI=true`.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{instance, FORBIDDEN, STUDY};
use dicom_deid_server::config::RawConfig;
use dicom_deid_testpeers::{free_port, Orthanc};

/// How many instances the study has.
const COUNT: usize = 5;
/// The source Orthanc's AE title (the calling AE title the gateway lets in).
const SOURCE_AET: &str = "ORTHANC_SRC";

/// The trimmed text of a top-level element of a Part 10 file.
fn text_of(bytes: &[u8], tag: u32) -> Option<String> {
    let limits = dicom_deid_wire::Limits::default();
    let raw = dicom_deid_wire::read_file(bytes, &limits).ok()?;
    let ds = dicom_deid_wire::parse_dataset(raw.body, raw.syntax, &limits).ok()?;
    ds.str(tag).map(str::to_string)
}

/// Runs blocking Orthanc calls off the runtime's workers (the gateway needs them meanwhile).
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orthanc_sends_a_study_with_modalities_store_and_it_arrives_deidentified() {
    if !Orthanc::available() {
        return;
    }
    let Some(destination) = Orthanc::start() else {
        return;
    };
    let destination = Arc::new(destination);

    // The gateway: DIMSE from the source's AE title, STOW to the destination.
    let dir = tempfile::tempdir().unwrap();
    let dimse_port = free_port();
    let path = dir.path().join("gateway.toml");
    let text = format!(
        "listen = \"127.0.0.1:0\"\ndata_dir = \"data\"\n\n\
         [[routes]]\nname = \"default\"\npath = \"\"\nprofile = \"basic\"\ndestinations = [\"orthanc\"]\n\n\
         [[destinations]]\nname = \"orthanc\"\nkind = \"stow\"\nurl = \"{}\"\n\n\
         [dimse]\nlisten = \"127.0.0.1:{dimse_port}\"\nae_title = \"DEID\"\n\n\
         [[dimse.peers]]\nae_title = \"{SOURCE_AET}\"\nroute = \"default\"\naddresses = [\"127.0.0.1\"]\n",
        destination.dicomweb_url()
    );
    std::fs::write(&path, &text).unwrap();
    let raw = RawConfig::from_toml(&text, &path.display().to_string()).unwrap();
    let gateway = raw.validate(Some(&path)).unwrap().build().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(dicom_deid_server::run(listener, gateway, async move {
        let _ = stopped.await;
    }));

    // The source, with the gateway as modality "deid", holding one study.
    let source = Orthanc::builder()
        .dicom_aet(SOURCE_AET)
        .dicom_modality("deid", "DEID", "127.0.0.1", dimse_port)
        .start()
        .expect("Orthanc is available");
    let mut study = String::new();
    for i in 1..=COUNT {
        let r = source.post("/instances", "application/dicom", &instance(i));
        assert!(r.is_success(), "upload {i}: {} {}", r.status, r.text());
        study = r.json()["ParentStudy"].as_str().unwrap().to_string();
    }
    assert_eq!(source.instances().len(), COUNT);
    let source = Arc::new(source);

    // Orthanc sends the study as a job; the job must end in Success.
    let src = source.clone();
    let job = blocking(move || {
        let body = serde_json::json!({"Resources": [study], "Asynchronous": true}).to_string();
        let r = src.post(
            "/modalities/deid/store",
            "application/json",
            body.as_bytes(),
        );
        assert!(r.is_success(), "store: {} {}", r.status, r.text());
        let id = r.json()["ID"].as_str().expect("a job id").to_string();
        // Waiting for Orthanc's job to end, not a timing assertion.
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let job = src.get_json(&format!("/jobs/{id}"));
            match job["State"].as_str() {
                Some("Success") | Some("Failure") => return job,
                _ if Instant::now() > deadline => return job,
                _ => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    })
    .await;
    assert_eq!(
        job["State"],
        "Success",
        "Orthanc's store job: {job:#}\nsource Orthanc log:\n{}",
        source.log()
    );
    assert_eq!(job["Content"]["FailedInstancesCount"], 0, "{job:#}");
    assert_eq!(job["Content"]["InstancesCount"], COUNT, "{job:#}");
    assert_eq!(job["Content"]["RemoteAet"], "DEID", "{job:#}");

    // Every instance arrives in the destination, de-identified, in one new study.
    let dst = destination.clone();
    let arrived = blocking(move || dst.wait_for_instances(COUNT, Duration::from_secs(120))).await;
    assert_eq!(
        arrived,
        COUNT,
        "destination Orthanc log:\n{}",
        destination.log()
    );
    let export = tempfile::tempdir().unwrap();
    let files = destination.export_instances(export.path());
    assert_eq!(files.len(), COUNT);
    let mut studies = std::collections::BTreeSet::new();
    let mut sops = std::collections::BTreeSet::new();
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        for original in FORBIDDEN {
            assert!(
                !bytes
                    .windows(original.len())
                    .any(|w| w == original.as_bytes()),
                "{} carries an original value",
                f.display()
            );
        }
        let name = text_of(&bytes, 0x0010_0010).unwrap_or_default();
        let id = text_of(&bytes, 0x0010_0020).unwrap_or_default();
        assert!(name != "Doe^Jane" && id != "PID-0001");
        assert_eq!(text_of(&bytes, 0x0012_0062).as_deref(), Some("YES"));
        studies.insert(text_of(&bytes, 0x0020_000D).expect("a study UID"));
        sops.insert(text_of(&bytes, 0x0008_0018).expect("a SOP Instance UID"));
    }
    assert_eq!(studies.len(), 1, "one study: {studies:?}");
    assert!(!studies.contains(STUDY));
    assert_eq!(sops.len(), COUNT);

    // The audit: each instance queued and delivered, from the source's AE title.
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
    let audit_path = dir.path().join("data/audit.jsonl");
    let audit = std::fs::read_to_string(&audit_path).unwrap();
    let events = |event: &str| {
        audit
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|v| v["event"] == event)
            .collect::<Vec<_>>()
    };
    let queued = events("queued");
    assert_eq!(queued.len(), COUNT);
    assert!(
        queued.iter().all(|v| v["calling_ae"] == SOURCE_AET),
        "{audit}"
    );
    assert_eq!(events("delivered").len(), COUNT);
    dicom_deid_audit::testing::assert_file_has_no(&audit_path, FORBIDDEN);
}
