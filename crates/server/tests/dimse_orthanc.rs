//! Orthanc as a DICOM modality: a source Orthanc (started on 127.0.0.1 by the test) has the
//! gateway's C-STORE SCP in its `DicomModalities` and sends a study with
//! `POST /modalities/{name}/store`; the gateway de-identifies each instance and forwards it by
//! STOW-RS to a second Orthanc. Checked: Orthanc's store job ends in Success with no failed
//! instance, the destination holds every instance of the study under one new Study Instance
//! UID, with new patient name and ID, and neither those files nor the audit carry an original
//! value. And DCMTK `storescu` sends corpus files (compressed ones with their `-x…` option)
//! over several associations at once through the gateway into Orthanc: every instance
//! answered Success is delivered (or dead-lettered only for a file Orthanc itself cannot
//! parse), and what Orthanc holds is de-identified. Without Orthanc, DCMTK or the corpus the
//! tests skip loudly, except under `CI=true`.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{instance, text_of, InProcess, FORBIDDEN, STUDY};
use dicom_deid_dimse::testing::{
    corpus_groups, dcmtk, describe, proposal, run_tool, scu_args, store_responses,
};
use dicom_deid_testpeers::Orthanc;

/// How many instances the study has.
const COUNT: usize = 5;
/// The source Orthanc's AE title (the calling AE title the gateway lets in).
const SOURCE_AET: &str = "ORTHANC_SRC";

/// Runs blocking Orthanc calls off the runtime's workers (the gateway needs them meanwhile).
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

/// A gateway (`run()` in this process) with `[dimse]` letting in `peer` on `dimse_port` and
/// one STOW destination, `destination`.
struct Gateway(InProcess);

impl Gateway {
    async fn start(destination: &Orthanc, peer: &str) -> Gateway {
        let url = destination.dicomweb_url();
        let text = |dimse_port: u16| {
            format!(
                "listen = \"127.0.0.1:0\"\ndata_dir = \"data\"\n\n\
                 [[routes]]\nname = \"default\"\npath = \"\"\nprofile = \"basic\"\ndestinations = [\"orthanc\"]\n\n\
                 [[destinations]]\nname = \"orthanc\"\nkind = \"stow\"\nurl = \"{url}\"\n\n\
                 [dimse]\nlisten = \"127.0.0.1:{dimse_port}\"\nae_title = \"DEID\"\nmax_associations = 16\n\n\
                 [[dimse.peers]]\nae_title = \"{peer}\"\nroute = \"default\"\naddresses = [\"127.0.0.1\"]\n"
            )
        };
        Gateway(InProcess::start(tempfile::tempdir().unwrap(), text).await)
    }

    fn dimse_port(&self) -> u16 {
        self.0.dimse_port
    }

    fn audit(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.0.dir.path().join("data/audit.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    async fn stop(self) -> tempfile::TempDir {
        self.0.stop().await
    }
}

fn count(lines: &[serde_json::Value], event: &str) -> usize {
    lines.iter().filter(|v| v["event"] == event).count()
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
    let gw = Gateway::start(&destination, SOURCE_AET).await;
    let dimse_port = gw.dimse_port();

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
    let dir = gw.stop().await;
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

/// A corpus file Orthanc refuses for good (its DCMTK cannot parse it; see
/// crates/cli/tests/gateway_orthanc.rs), so the gateway dead-letters it.
const KNOWN_UNDELIVERABLE: &str = "dcm4che/Tag-0040-A170-VR-CS.dcm";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storescu_sends_the_corpus_through_the_gateway_into_orthanc_deidentified() {
    let Some(storescu) = dcmtk("storescu") else {
        return;
    };
    let Some(groups) = corpus_groups(3) else {
        return;
    };
    if !Orthanc::available() {
        return;
    }
    let destination = Arc::new(Orthanc::start().expect("Orthanc is available"));
    let gw = Gateway::start(&destination, "MODALITY").await;
    let dimse_port = gw.dimse_port();

    // One storescu per transfer syntax, all at once; -nh: go on after a refusal.
    let mut runs = Vec::new();
    for (ts, files) in &groups {
        let args = scu_args(
            dimse_port,
            "MODALITY",
            "DEID",
            &[proposal(ts), "-nh"],
            files,
        );
        let tool = storescu.clone();
        runs.push((
            files.len(),
            tokio::spawn(async move { run_tool(&tool, &args).await }),
        ));
    }
    let mut stored = Vec::new();
    for (n, handle) in runs {
        let r = handle.await.unwrap();
        let responses = store_responses(&r.log);
        assert_eq!(responses.len(), n, "one response per file:\n{}", r.log);
        assert!(!r.log.contains("Abort"), "{}", r.log);
        stored.extend(
            responses
                .into_iter()
                .filter(|(_, v)| v == "Success")
                .map(|(f, _)| f),
        );
    }
    assert!(
        stored.len() >= 20,
        "most corpus files are stored: {}",
        stored.len()
    );

    // Every instance answered Success is settled: delivered to Orthanc, or dead-lettered
    // because Orthanc refused it for good.
    let deadline = Instant::now() + Duration::from_secs(180);
    while count(&gw.audit(), "delivered") + count(&gw.audit(), "dead_lettered") < stored.len()
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let lines = gw.audit();
    let undeliverable = stored
        .iter()
        .filter(|f| f.ends_with(KNOWN_UNDELIVERABLE))
        .count();
    assert_eq!(count(&lines, "queued"), stored.len());
    assert_eq!(
        count(&lines, "delivered") + count(&lines, "dead_lettered"),
        stored.len(),
        "destination Orthanc log:\n{}",
        destination.log()
    );
    assert!(
        count(&lines, "dead_lettered") <= undeliverable,
        "dead-lettered: {:#?}",
        lines
            .iter()
            .filter(|v| v["event"] == "dead_lettered")
            .collect::<Vec<_>>()
    );
    assert!(lines
        .iter()
        .filter(|v| v["event"] == "queued")
        .all(|v| v["calling_ae"] == "MODALITY"));

    // What Orthanc holds is de-identified: PatientIdentityRemoved YES, and no distinctive
    // original patient name or SOP Instance UID. The corpus holds some instances in several
    // syntaxes (one de-identified SOP Instance UID each), so Orthanc may hold fewer.
    let dst = destination.clone();
    let held = blocking(move || dst.instances().len()).await;
    assert!(held >= 1 && held <= stored.len(), "{held}");
    eprintln!(
        "corpus over DIMSE: {} files sent, {} stored, {} delivered, {} dead-lettered; Orthanc \
         holds {held}",
        groups.values().map(Vec::len).sum::<usize>(),
        stored.len(),
        count(&lines, "delivered"),
        count(&lines, "dead_lettered"),
    );
    let export = tempfile::tempdir().unwrap();
    let files = destination.export_instances(export.path());
    let mut originals = Vec::new();
    for f in &stored {
        let bytes = std::fs::read(f).unwrap();
        let (_, _, sop) = describe(&bytes).unwrap();
        if !sop.is_empty() {
            originals.push(sop);
        }
        let distinctive = |n: &String| {
            n.len() >= 6 && n.chars().collect::<std::collections::BTreeSet<_>>().len() >= 4
        };
        if let Some(name) = text_of(&bytes, 0x0010_0010).filter(distinctive) {
            originals.push(name);
        }
    }
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        assert_eq!(
            text_of(&bytes, 0x0012_0062).as_deref(),
            Some("YES"),
            "{}",
            f.display()
        );
        for o in &originals {
            assert!(
                !bytes.windows(o.len()).any(|w| w == o.as_bytes()),
                "{} carries an original value",
                f.display()
            );
        }
    }
    gw.stop().await;
}
