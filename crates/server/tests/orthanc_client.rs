//! A real STOW-RS sender: Orthanc (with its DICOMweb plugin, started by the test on 127.0.0.1)
//! is given the gateway as a DICOMweb server and pushes a study through
//! `/dicom-web/servers/{name}/stow`, chunked and not chunked. Orthanc fails such a job unless
//! every instance it sent is listed in ReferencedSOPSequence, so its success is the check.
//! Without `/usr/sbin/Orthanc` the test skips loudly, except under `CI=true`.

mod common;

use std::time::Duration;

use common::*;
use dicom_deid_testpeers::Orthanc;
use dicom_deid_wire::testing::dcm_files;

/// Orthanc with the gateway at `gateway` declared as two DICOMweb servers: `gw-chunked`
/// (Orthanc's default, chunked transfers) and `gw-plain` (Content-Length).
fn start_orthanc(gateway: &str) -> Option<Orthanc> {
    Orthanc::builder()
        .dicomweb_server(
            "gw-chunked",
            serde_json::json!({"Url": format!("{gateway}/")}),
        )
        .dicomweb_server(
            "gw-plain",
            serde_json::json!({"Url": format!("{gateway}/"), "ChunkedTransfers": false}),
        )
        .start()
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
    let Some(orthanc) = start_orthanc(&format!("http://{addr}")) else {
        return;
    };
    let http = reqwest::Client::new();

    // Three instances of one study into Orthanc.
    let mut study = String::new();
    for i in 1..=3 {
        let res = http
            .post(format!("{}/instances", orthanc.url()))
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
                orthanc.url()
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
