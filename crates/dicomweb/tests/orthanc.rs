//! Interop: the STOW-RS client delivering to a real Orthanc with its DICOMweb
//! plugin, started by the test on 127.0.0.1 with a temporary storage folder.
//! Without `/usr/sbin/Orthanc` the test skips loudly, except under `CI=true`.

use std::time::Duration;

use bytes::Bytes;
use dicom_deid_dicomweb::{Auth, ClientConfig, InstanceOutcome, StoreOutcome, StowClient};
use dicom_deid_testpeers::Orthanc;

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
    let Some(orthanc) = Orthanc::start() else {
        return;
    };
    let client = StowClient::new(ClientConfig {
        base_url: orthanc.dicomweb_url(),
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

    let listed = orthanc.get_json("/instances?expand");
    let mut uids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["MainDicomTags"]["SOPInstanceUID"].as_str().unwrap())
        .collect();
    uids.sort();
    assert_eq!(uids, ["1.2.3.4.5.6.1", "1.2.3.4.5.6.2", "1.2.3.4.5.6.3"]);
}
