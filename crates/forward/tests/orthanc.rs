//! Interop: the forwarder delivering spooled instances to a real Orthanc with its DICOMweb
//! plugin, started by the test on 127.0.0.1 with a temporary storage folder. Without
//! `/usr/sbin/Orthanc` the test skips loudly, except under `CI=true`.

mod common;

use std::time::Duration;

use common::{meta, Env};
use dicom_deid_dicomweb::{Auth, ClientConfig, StowClient};
use dicom_deid_forward::{Destination, Sink};
use dicom_deid_testpeers::Orthanc;
use dicom_deid_wire::testing::{dataset, text};
use dicom_deid_wire::{write_file, Element, FileMetaOut, Syntax, Vr};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orthanc_receives_every_spooled_instance_grouped_by_study() {
    let Some(orthanc) = Orthanc::start() else {
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
        base_url: orthanc.dicomweb_url(),
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

    let instances = orthanc.get_json("/instances?expand");
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
    let studies = orthanc.get_json("/studies?expand");
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
