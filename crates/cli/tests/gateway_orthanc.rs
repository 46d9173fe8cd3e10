//! End to end: the real `dicom-deid serve` binary in front of a real Orthanc (with its DICOMweb
//! plugin) on 127.0.0.1, both started by the tests with temporary folders.
//!
//! - the shared corpus, sent by STOW-RS in several requests, arrives in Orthanc de-identified
//!   and grouped by study and series; Orthanc's stored files are re-read with pydicom; the audit
//!   has one `delivered` line per stored instance and every line carries the fields of issue 4
//!   point 6; the debug logs and the audit hold none of the original values;
//! - destination down: uploads are acknowledged while Orthanc is not running, and all arrive
//!   once it starts on the configured port;
//! - crash: the gateway is SIGKILLed while a client streams uploads, restarted on the same data
//!   directory, and every instance answered "stored" ends up in Orthanc.
//!
//! Expected new UIDs are computed here from the documented mapping (`2.25.` + the decimal of the
//! first 128 bits of HMAC-SHA256(key, original UID), DESIGN.md §2.4) with the key the gateway
//! created, so grouping is checked against the originals, not against the gateway's own claims.
//!
//! Without Orthanc, pydicom or the shared corpus these tests skip loudly, except under `CI=true`.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dicom_deid_engine::Key;
use dicom_deid_testpeers::{free_port, http, Orthanc, Python};
use dicom_deid_wire::testing::{dataset, text};
use dicom_deid_wire::{write_file, Element, FileMetaOut, Syntax, Vr};
use serde_json::Value;

/// How long delivery may take before a test gives up (waiting, not a timing assertion).
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(180);

/// A running `dicom-deid serve`, killed when dropped.
struct Gateway {
    child: Child,
    addr: String,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes `dir/gateway.toml` (data in `dir/data`, one route to Orthanc's DICOMweb root on
/// `orthanc_port`) and starts `dicom-deid serve` on it with `RUST_LOG=debug`; `run` names the
/// log files (`dir/{run}.stdout`, `dir/{run}.stderr`).
fn start_gateway(dir: &Path, orthanc_port: u16, run: &str) -> Gateway {
    let config = dir.join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = \"data\"\n\n\
             [[routes]]\nname = \"research\"\npath = \"\"\nprofile = \"basic\"\ndestinations = [\"orthanc\"]\n\n\
             [[destinations]]\nname = \"orthanc\"\nkind = \"stow\"\n\
             url = \"http://127.0.0.1:{orthanc_port}/dicom-web/\"\nbatch_max_count = 20\n"
        ),
    )
    .unwrap();
    let stdout = dir.join(format!("{run}.stdout"));
    let stderr = dir.join(format!("{run}.stderr"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_dicom-deid"))
        .args([
            OsStr::new("serve"),
            OsStr::new("--config"),
            config.as_os_str(),
        ])
        .env_remove("DICOM_DEID_KEY_FILE")
        .env("RUST_LOG", "debug")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout).unwrap())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    // Waiting for the process to come up (not a timing assertion).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let printed = std::fs::read_to_string(&stdout).unwrap_or_default();
        if let Some(addr) = printed
            .lines()
            .find_map(|l| l.strip_prefix("dicom-deid: listening on http://"))
        {
            return Gateway {
                addr: addr.trim().to_string(),
                child,
                stdout,
                stderr,
            };
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "serve exited ({status}):\n{printed}\n{}",
                std::fs::read_to_string(&stderr).unwrap_or_default()
            );
        }
        assert!(Instant::now() < deadline, "serve did not start:\n{printed}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What the gateway answered to one STOW request.
#[derive(Debug)]
struct Answer {
    status: u16,
    /// Original SOP Instance UIDs listed in ReferencedSOPSequence.
    stored: Vec<String>,
    /// Items of FailedSOPSequence.
    failed: usize,
}

impl Gateway {
    /// POSTs `parts` as one STOW-RS request ([`stow`]).
    fn stow(&self, parts: &[&[u8]]) -> std::io::Result<Answer> {
        stow(&self.addr, parts)
    }

    /// SIGTERM, then waits for a clean exit.
    fn stop(mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let exit = self.child.wait().unwrap();
        assert_eq!(exit.code(), Some(0), "{}", self.output());
    }

    /// SIGKILL (what `Child::kill` sends on Unix), then reaps it.
    fn crash(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    fn output(&self) -> String {
        format!(
            "{}\n{}",
            std::fs::read_to_string(&self.stdout).unwrap_or_default(),
            std::fs::read_to_string(&self.stderr).unwrap_or_default()
        )
    }
}

/// POSTs `parts` as one multipart/related STOW-RS request to `http://{addr}/studies`.
fn stow(addr: &str, parts: &[&[u8]]) -> std::io::Result<Answer> {
    let boundary = format!("e2e-{:016x}", rand_u64());
    let mut body = Vec::new();
    for p in parts {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Type: application/dicom\r\n\r\n").as_bytes(),
        );
        body.extend_from_slice(p);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    let content_type =
        format!("multipart/related; type=\"application/dicom\"; boundary={boundary}");
    let r = http::request(
        "POST",
        &format!("http://{addr}/studies"),
        &[
            ("Content-Type", &content_type),
            ("Accept", "application/dicom+json"),
        ],
        &body,
    )?;
    let json: Value = if r.body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&r.body).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{e}: {}", r.text()),
            )
        })?
    };
    let items =
        |tag: &str| -> Vec<Value> { json[tag]["Value"].as_array().cloned().unwrap_or_default() };
    Ok(Answer {
        status: r.status,
        stored: items("00081199")
            .iter()
            .map(|i| i["00081155"]["Value"][0].as_str().unwrap_or("").to_string())
            .collect(),
        failed: items("00081198").len(),
    })
}

/// A few random bits for boundaries (not security relevant).
fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    );
    h.finish()
}

/// The documented pseudonymous UID of `original` under `key` (UIDs under the DICOM root stay).
fn new_uid(key: &Key, original: &str) -> String {
    if original.starts_with("1.2.840.10008.") {
        return original.to_string();
    }
    let mac = key.mac(original.as_bytes());
    format!(
        "2.25.{}",
        u128::from_be_bytes(mac[..16].try_into().unwrap())
    )
}

/// The gateway's key (created on its first start).
fn gateway_key(dir: &Path) -> Key {
    Key::load(&dir.join("data/key")).unwrap()
}

/// The audit lines, parsed.
fn audit(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("data/audit.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("audit line {l}: {e}")))
        .collect()
}

fn events<'a>(lines: &'a [Value], event: &str) -> Vec<&'a Value> {
    lines.iter().filter(|l| l["event"] == event).collect()
}

/// Polls `done` until it holds or [`DELIVERY_TIMEOUT`] passes (waiting, not a timing
/// assertion); returns whether it held.
fn wait_until(mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + DELIVERY_TIMEOUT;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    done()
}

/// New (study, series, SOP) UIDs of every instance Orthanc holds, by SOP Instance UID.
fn orthanc_instances(orthanc: &Orthanc) -> BTreeMap<String, (String, String)> {
    let mut out = BTreeMap::new();
    for study in orthanc.get_json("/studies?expand").as_array().unwrap() {
        let study_uid = study["MainDicomTags"]["StudyInstanceUID"]
            .as_str()
            .unwrap()
            .to_string();
        for series_id in study["Series"].as_array().unwrap() {
            let series = orthanc.get_json(&format!("/series/{}", series_id.as_str().unwrap()));
            let series_uid = series["MainDicomTags"]["SeriesInstanceUID"]
                .as_str()
                .unwrap()
                .to_string();
            for id in series["Instances"].as_array().unwrap() {
                let inst = orthanc.get_json(&format!("/instances/{}", id.as_str().unwrap()));
                let sop = inst["MainDicomTags"]["SOPInstanceUID"]
                    .as_str()
                    .unwrap()
                    .to_string();
                out.insert(sop, (study_uid.clone(), series_uid.clone()));
            }
        }
    }
    out
}

/// A small CT instance of patient `patient` (name and ID carry it) with the given UIDs.
fn instance(patient: &str, study: &str, series: &str, sop: &str) -> Vec<u8> {
    let ds = dataset(vec![
        text(0x0008_0016, Vr::UI, "1.2.840.10008.5.1.4.1.1.2"),
        text(0x0008_0018, Vr::UI, sop),
        text(0x0008_0020, Vr::DA, "20190417"),
        text(0x0008_0060, Vr::CS, "CT"),
        text(0x0008_0080, Vr::LO, "Saint Elsewhere Hospital"),
        text(0x0010_0010, Vr::PN, &format!("Testpatient^{patient}")),
        text(0x0010_0020, Vr::LO, &format!("MRN-{patient}")),
        text(0x0010_0030, Vr::DA, "19610203"),
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

/// A synthetic set: `studies` studies of two series each, `per_series` instances per series.
/// Returns (original study, series, SOP UIDs, bytes) per instance.
fn synthetic(tag: u32, studies: u32, per_series: u32) -> Vec<(String, String, String, Vec<u8>)> {
    let mut out = Vec::new();
    for s in 1..=studies {
        let study = format!("1.2.826.0.1.3680043.99.{tag}.{s}");
        for se in 1..=2 {
            let series = format!("{study}.{se}");
            for i in 1..=per_series {
                let sop = format!("{series}.{i}");
                let bytes = instance(&format!("P{tag}X{s}"), &study, &series, &sop);
                out.push((study.clone(), series.clone(), sop, bytes));
            }
        }
    }
    out
}

/// Checks that Orthanc holds exactly the expected new UIDs of `sent` (original study, series,
/// SOP), grouped as the originals were.
fn assert_grouped(orthanc: &Orthanc, key: &Key, sent: &[(String, String, String)]) {
    let held = orthanc_instances(orthanc);
    let expected: BTreeMap<String, (String, String)> = sent
        .iter()
        .map(|(st, se, sop)| (new_uid(key, sop), (new_uid(key, st), new_uid(key, se))))
        .collect();
    let missing: Vec<&String> = expected.keys().filter(|k| !held.contains_key(*k)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} instances are not in Orthanc",
        missing.len(),
        expected.len()
    );
    for (sop, place) in &expected {
        assert_eq!(
            &held[sop], place,
            "instance {sop} is in the wrong study/series"
        );
    }
    let studies: BTreeSet<&String> = expected.values().map(|(st, _)| st).collect();
    let originals: BTreeSet<&String> = sent.iter().map(|(st, _, _)| st).collect();
    assert_eq!(
        studies.len(),
        originals.len(),
        "one new study per original study"
    );
}

/// An instance as the audit must know it: original study, series and SOP Instance UIDs and
/// Patient ID (empty when it has none).
type Original = (String, String, String, String);

/// Checks the fields of issue 4, point 6 on every audit line: route, profile and version, key
/// id on all; keyed hashes of the original UIDs and patient ID (checked against `originals`,
/// hashed here with the gateway's key) on every line about a readable instance; new UIDs
/// (checked against the documented mapping), action counts, transfer syntaxes in and out,
/// destination and timings on `queued` and `delivered`; the destination's status on
/// `delivered`; a reason on `rejected`; the count of masked pixel regions on `queued`,
/// `delivered` and `dead_lettered` (the same count on every line of one instance).
fn assert_audit_fields(lines: &[Value], key: &Key, originals: &[Original]) {
    let hash = |label: &str, v: &str| -> String {
        key.mac_labeled(label, v.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    // The labels are the gateway's (crates/server/src/originals.rs): one keyed hash per kind.
    let mut by_sop: BTreeMap<String, Vec<&Original>> = BTreeMap::new();
    for o in originals {
        by_sop
            .entry(hash("audit sop instance uid", &o.2))
            .or_default()
            .push(o);
    }
    let ms =
        |line: &Value, stage: &str| line["timings_ms"][stage].as_f64().is_some_and(|v| v >= 0.0);
    for line in lines {
        let event = line["event"].as_str().unwrap();
        assert_eq!(line["route"], "research", "{line}");
        assert_eq!(line["profile"], "basic", "{line}");
        assert!(
            line["profile_version"]
                .as_str()
                .is_some_and(|v| !v.is_empty()),
            "{line}"
        );
        assert_eq!(line["key_id"], key.id(), "{line}");
        if event == "rejected" {
            assert!(
                line["reason"].as_str().is_some_and(|r| !r.is_empty()),
                "{line}"
            );
        }
        let Some(sop_hash) = line["original"]["sop_uid"].as_str() else {
            // Only a part that could not be read at all has no original identifiers.
            assert!(matches!(event, "received" | "rejected"), "{line}");
            continue;
        };
        let candidates = by_sop.get(sop_hash).unwrap_or_else(|| {
            panic!("{line}: original.sop_uid is not the keyed hash of a SOP Instance UID sent")
        });
        // Keyed hash of an original identifier, absent when the instance has none.
        let hashed = |label: &str, v: &str| {
            if v.is_empty() {
                Value::Null
            } else {
                Value::from(hash(label, v))
            }
        };
        let (study, series, sop, patient) = *candidates
            .iter()
            .find(|o| line["original"]["study_uid"] == hashed("audit study uid", &o.0))
            .unwrap_or_else(|| panic!("{line}: original.study_uid does not match"));
        let new = |u: &str| {
            if u.is_empty() {
                String::new()
            } else {
                new_uid(key, u)
            }
        };
        assert_eq!(
            line["original"]["series_uid"],
            hashed("audit series uid", series),
            "{line}"
        );
        assert_eq!(
            line["original"]["patient_id"],
            hashed("audit patient id", patient),
            "{line}"
        );
        if !matches!(event, "queued" | "delivered" | "dead_lettered") {
            continue;
        }
        assert_eq!(line["new_uids"]["study_uid"], new(study), "{line}");
        assert_eq!(line["new_uids"]["series_uid"], new(series), "{line}");
        assert_eq!(line["new_uids"]["sop_uid"], new(sop), "{line}");
        assert!(
            line["actions"]
                .as_object()
                .is_some_and(|a| !a.is_empty() && a.values().all(|n| n.as_u64() > Some(0))),
            "{line}"
        );
        assert!(line["masked_regions"].is_u64(), "{line}");
        for ts in ["transfer_syntax_in", "transfer_syntax_out"] {
            assert!(
                line[ts]
                    .as_str()
                    .is_some_and(|t| t.starts_with("1.2.840.10008.1.2")),
                "{line}"
            );
        }
        assert_eq!(line["destination"], "orthanc", "{line}");
        match event {
            "queued" => assert!(ms(line, "deidentify") && ms(line, "spool"), "{line}"),
            "delivered" => {
                assert!(
                    ms(line, "queue_to_delivery") && ms(line, "delivery"),
                    "{line}"
                );
                assert_eq!(line["destination_status"], 200, "{line}");
            }
            _ => assert!(ms(line, "queue_to_dead_letter"), "{line}"),
        }
    }
}

#[test]
fn destination_down_then_up_every_acknowledged_instance_arrives() {
    if !Orthanc::available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let gw = start_gateway(dir.path(), port, "down");
    let set = synthetic(1, 2, 3);
    let mut sent = Vec::new();
    for chunk in set.chunks(4) {
        let parts: Vec<&[u8]> = chunk.iter().map(|(_, _, _, b)| b.as_slice()).collect();
        let answer = gw.stow(&parts).unwrap();
        assert_eq!(
            (answer.status, answer.stored.len(), answer.failed),
            (200, parts.len(), 0),
            "{answer:?}"
        );
        sent.extend(
            chunk
                .iter()
                .map(|(a, b, c, _)| (a.clone(), b.clone(), c.clone())),
        );
    }
    // Nothing is delivered while the destination is down.
    assert!(events(&audit(dir.path()), "delivered").is_empty());
    assert_eq!(events(&audit(dir.path()), "queued").len(), set.len());

    let Some(orthanc) = Orthanc::builder().http_port(port).start() else {
        return;
    };
    let arrived = wait_until(|| events(&audit(dir.path()), "delivered").len() >= set.len());
    assert!(
        arrived,
        "{} of {} delivered; gateway:\n{}",
        events(&audit(dir.path()), "delivered").len(),
        set.len(),
        gw.output()
    );
    gw.stop();
    let lines = audit(dir.path());
    assert_eq!(events(&lines, "delivered").len(), set.len());
    assert!(events(&lines, "dead_lettered").is_empty());
    assert_eq!(orthanc.instances().len(), set.len());
    let key = gateway_key(dir.path());
    assert_grouped(&orthanc, &key, &sent);
    let originals: Vec<Original> = set
        .iter()
        .map(|(st, se, sop, _)| {
            let patient = format!("MRN-P1X{}", st.rsplit('.').next().unwrap());
            (st.clone(), se.clone(), sop.clone(), patient)
        })
        .collect();
    assert_audit_fields(&lines, &key, &originals);
}

#[test]
fn sigkill_mid_stream_loses_nothing_acknowledged() {
    let Some(orthanc) = Orthanc::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let gw = start_gateway(dir.path(), orthanc.http_port(), "before-crash");
    let set = Arc::new(synthetic(2, 4, 25));
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    // The client says when 20 instances are acknowledged (of 200, in requests of two), and the
    // test kills the gateway at once, so the kill lands in the middle of the stream whatever the
    // machine's speed.
    let (enough_tx, enough_rx) = std::sync::mpsc::channel::<()>();
    let client = {
        let (set, acknowledged) = (set.clone(), acknowledged.clone());
        let gw_addr = gw.addr.clone();
        std::thread::spawn(move || {
            let mut errors = 0;
            for chunk in set.chunks(2) {
                let parts: Vec<&[u8]> = chunk.iter().map(|(_, _, _, b)| b.as_slice()).collect();
                match stow(&gw_addr, &parts) {
                    Ok(answer) => {
                        let mut ack = acknowledged.lock().unwrap();
                        for (st, se, sop, _) in chunk {
                            if answer.stored.contains(sop) {
                                ack.push((st.clone(), se.clone(), sop.clone()));
                            }
                        }
                        if ack.len() >= 20 {
                            let _ = enough_tx.send(());
                        }
                    }
                    // The gateway is gone: nothing of this request was acknowledged.
                    Err(_) => errors += 1,
                }
            }
            errors
        })
    };
    let enough = enough_rx.recv_timeout(DELIVERY_TIMEOUT).is_ok();
    assert!(enough, "uploads were not acknowledged:\n{}", gw.output());
    gw.crash();
    let errors = client.join().unwrap();
    let acked = acknowledged.lock().unwrap().clone();
    assert!(
        acked.len() < set.len() && errors > 0,
        "the kill landed after the stream ended ({} acknowledged, {errors} failed requests)",
        acked.len()
    );

    let gw = start_gateway(dir.path(), orthanc.http_port(), "after-crash");
    let key = gateway_key(dir.path());
    let wanted: BTreeSet<String> = acked.iter().map(|(_, _, sop)| new_uid(&key, sop)).collect();
    let all_there = wait_until(|| {
        let held = orthanc_instances(&orthanc);
        wanted.iter().all(|sop| held.contains_key(sop))
    });
    assert!(
        all_there,
        "not every acknowledged instance arrived:\n{}",
        gw.output()
    );
    gw.stop();
    assert_grouped(&orthanc, &key, &acked);
    // The audit chain survived the kill: it still verifies.
    let verify = Command::new(env!("CARGO_BIN_EXE_dicom-deid"))
        .args([OsStr::new("audit"), OsStr::new("verify")])
        .arg(dir.path().join("data/audit.jsonl"))
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
}

/// Reads each input file named in argv[1] (one path per line) with pydicom and prints, per
/// file, its original study/series/SOP UIDs and Patient ID, the identifying values a
/// de-identified copy must not carry, and the values and words of its other text attributes
/// (`generic`: a word such as "Test" in both the PatientName and the Manufacturer of a test
/// file cannot be told apart, so it is not watched). Files pydicom cannot read are `null`.
const ORIGINALS_PY: &str = r#"
import json, sys
import pydicom

NAMES = ["PatientName", "ReferringPhysicianName", "PerformingPhysicianName",
         "OperatorsName", "NameOfPhysiciansReadingStudy", "RequestingPhysician"]
IDS = ["PatientID", "OtherPatientIDs", "AccessionNumber", "StudyID", "IssuerOfPatientID"]
DATES = ["PatientBirthDate", "StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate"]
PLACES = ["InstitutionName", "InstitutionAddress", "StationName",
          "InstitutionalDepartmentName"]
UIDS = ["StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "FrameOfReferenceUID"]
IDENTIFYING = set(NAMES + IDS + DATES + PLACES + UIDS)
TEXT_VRS = {"AE", "CS", "DS", "IS", "LO", "LT", "PN", "SH", "ST", "UC", "UT"}

def generic(ds):
    """Values and words of the text attributes not listed above (device, protocol, codes...)."""
    out = set()
    for el in ds.iterall():
        if el.VR not in TEXT_VRS or el.keyword in IDENTIFYING:
            continue
        v = el.value
        for x in (v if isinstance(v, pydicom.multival.MultiValue) else [v]):
            s = str(x).strip()
            out.add(s)
            out.update(w for w in s.replace("^", " ").split() if w)
    return out

def values(ds, keyword):
    if keyword not in ds:
        return []
    v = ds.data_element(keyword).value
    vs = list(v) if isinstance(v, pydicom.multival.MultiValue) else [v]
    return [str(x).strip() for x in vs if str(x).strip()]

out = {}
for path in open(sys.argv[1]).read().splitlines():
    try:
        ds = pydicom.dcmread(path, force=True, stop_before_pixels=True)
        if "SOPInstanceUID" not in ds:
            out[path] = None
            continue
        names = []
        for k in NAMES:
            for v in values(ds, k):
                names.append(v)
                names += [c for c in v.replace("^", " ").split() if c]
        out[path] = {
            "study": str(ds.get("StudyInstanceUID", "")).strip(),
            "series": str(ds.get("SeriesInstanceUID", "")).strip(),
            "sop": str(ds.SOPInstanceUID).strip(),
            "patient_id": str(ds.get("PatientID", "")).strip(),
            "by_keyword": {k: values(ds, k) for k in NAMES + IDS if values(ds, k)},
            "generic": sorted(generic(ds)),
            "names": names,
            "ids": [v for k in IDS for v in values(ds, k)],
            "dates": [v for k in DATES for v in values(ds, k)],
            "places": [v for k in PLACES for v in values(ds, k)],
            "uids": [v for k in UIDS for v in values(ds, k)],
        }
    except Exception:
        out[path] = None
print(json.dumps(out))
"#;

/// argv[1]: a JSON object {stored file: {"values", "words", "uids", "by_keyword"}}. Reads each
/// stored file with pydicom (no `force`), checks PatientIdentityRemoved is YES, that no text
/// element (at any depth) equals one of `values` or holds one of `words` as a word, that no
/// attribute named in `by_keyword` kept one of its original values (whatever its length), and
/// that no UID of `uids` occurs in the file's bytes. Prints {"files": N, "problems": ["file: tag:
/// what"]} (tags only, no values).
const STORED_CHECK_PY: &str = r#"
import json, re, sys
import pydicom

TEXT_VRS = {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM",
            "UC", "UI", "UR", "UT"}
plan = json.load(open(sys.argv[1]))
problems = []

def walk(ds, forbidden, words, where, file):
    for el in ds:
        if el.VR == "SQ":
            for item in el.value:
                walk(item, forbidden, words, where, file)
            continue
        if el.VR not in TEXT_VRS:
            continue
        v = el.value
        vs = list(v) if isinstance(v, pydicom.multival.MultiValue) else [v]
        for x in vs:
            s = str(x).strip()
            if s in forbidden:
                problems.append(f"{file}: {el.tag}: equals an original value")
            elif words & set(re.split(r"[\s^=\\,;:/()]+", s)):
                problems.append(f"{file}: {el.tag}: holds an original name or ID as a word")

for file, values in plan.items():
    ds = pydicom.dcmread(file)
    if str(ds.get("PatientIdentityRemoved", "")).strip() != "YES":
        problems.append(f"{file}: (0012,0062): PatientIdentityRemoved is not YES")
    forbidden = set(values["values"])
    words = set(values["words"])
    walk(ds.file_meta, forbidden, words, "meta", file)
    walk(ds, forbidden, words, "data", file)
    for keyword, originals in values["by_keyword"].items():
        if keyword in ds:
            v = ds.data_element(keyword).value
            kept = [str(x).strip() for x in (v if isinstance(v, pydicom.multival.MultiValue) else [v])]
            if set(kept) & set(originals):
                problems.append(f"{file}: {keyword}: kept its original value")
    raw = open(file, "rb").read()
    for uid in values["uids"]:
        if uid.encode() in raw:
            problems.append(f"{file}: an original UID occurs in the file's bytes")
print(json.dumps({"files": len(plan), "problems": problems}))
"#;

/// Corpus files the gateway stores but Orthanc refuses for good (so they are dead-lettered,
/// with the destination's status in the audit), and why.
const KNOWN_UNDELIVERABLE: &[(&str, &str)] = &[(
    "dcm4che/Tag-0040-A170-VR-CS.dcm",
    "implicit VR with (0040,A170) encoded as CS, a sequence in today's dictionary: Orthanc's \
     DCMTK cannot parse it (dcmdump fails on the original too)",
)];

/// The corpus files to send: every file under `root` but the corpus's own documents.
fn corpus_files(root: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, &mut out);
    out.retain(|p| {
        !(p.parent() == Some(root)
            && ["MANIFEST.csv", "README.md", "BURNED_IN.csv"]
                .iter()
                .any(|d| p.file_name() == Some(OsStr::new(d))))
    });
    out
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether `text` holds `value`: as a whole token (tokens split at anything but letters,
/// digits and `.^_-`) for any value, and anywhere for values of 8 or more characters with a
/// character other than hex digits and dots. (Numbers and UIDs are only matched whole: an
/// original UID `2.25.123` is a prefix of many new `2.25.…` UIDs, and a random hash can hold
/// any short run of hex digits.)
fn leaks(text: &str, tokens: &BTreeSet<&str>, value: &str) -> bool {
    tokens.contains(value)
        || (value.len() >= 8
            && !value.bytes().all(|b| b.is_ascii_hexdigit() || b == b'.')
            && text.contains(value))
}

/// The identifying values of the inputs that the logs and audit must not hold, and what was left
/// out (with why).
fn watched_values(originals: &BTreeMap<String, Value>) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut watch = BTreeSet::new();
    let mut excluded = BTreeSet::new();
    for o in originals.values().filter(|o| !o.is_null()) {
        let generic: BTreeSet<String> = strings(&o["generic"]).into_iter().collect();
        for field in ["names", "ids", "dates", "places", "uids"] {
            for v in strings(&o[field]) {
                // Short values (under 4 characters) and short numbers (under 6 digits) are
                // counts, sequence numbers, status codes and timings in any log; values under
                // the DICOM root are well-known UIDs, not identifiers.
                let numeric = v.bytes().all(|b| b.is_ascii_digit());
                // Values the input also has in a kept, non-identifying attribute are not
                // identifying.
                if v.len() < 4
                    || (numeric && v.len() < 6)
                    || v.starts_with("1.2.840.10008.")
                    || generic.contains(&v)
                {
                    excluded.insert(v);
                } else {
                    watch.insert(v);
                }
            }
        }
    }
    (watch, excluded)
}

#[test]
fn corpus_arrives_in_orthanc_deidentified_grouped_and_audited() {
    let Some(corpus) = dicom_deid_wire::testing::shared_corpus() else {
        return;
    };
    let Some(python) = Python::find() else {
        return;
    };
    let Some(orthanc) = Orthanc::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let gw = start_gateway(dir.path(), orthanc.http_port(), "corpus");

    // The originals, read independently (pydicom).
    let files = corpus_files(&corpus);
    let list = dir.path().join("inputs.txt");
    std::fs::write(
        &list,
        files
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join("\n"),
    )
    .unwrap();
    let originals: BTreeMap<String, Value> =
        serde_json::from_value(python.run_json(ORIGINALS_PY, &[list.as_os_str()])).unwrap();

    // Several requests of 24 files each; files come in path order, so most requests hold
    // several studies and most studies span requests.
    let mut stored_paths: Vec<String> = Vec::new();
    let (mut answered_failed, mut requests) = (0, 0);
    for chunk in files.chunks(24) {
        let bodies: Vec<Vec<u8>> = chunk.iter().map(|p| std::fs::read(p).unwrap()).collect();
        let parts: Vec<&[u8]> = bodies.iter().map(Vec::as_slice).collect();
        let answer = gw.stow(&parts).unwrap();
        assert!(
            matches!(answer.status, 200 | 202 | 409),
            "{answer:?}\n{}",
            gw.output()
        );
        assert_eq!(answer.stored.len() + answer.failed, chunk.len());
        requests += 1;
        answered_failed += answer.failed;
        for sop in &answer.stored {
            // Which file of this request carried that original SOP Instance UID.
            let path = chunk
                .iter()
                .map(|p| p.display().to_string())
                .find(|p| originals[p]["sop"].as_str() == Some(sop.as_str()))
                .unwrap_or_else(|| panic!("a stored instance pydicom could not read"));
            stored_paths.push(path);
        }
    }
    let stored = stored_paths.len();
    assert!(requests >= 10 && stored > 300, "{stored} stored");
    // An instance without a Study Instance UID can never be delivered by STOW-RS: it is
    // refused at ingest, never answered "stored" (and then dead-lettered).
    let without_study: Vec<&String> = stored_paths
        .iter()
        .filter(|p| originals[*p]["study"].as_str() == Some(""))
        .collect();
    assert!(
        without_study.is_empty(),
        "stored without a study: {without_study:?}"
    );
    let refused_without_study = files
        .iter()
        .filter(|p| {
            originals.get(&p.display().to_string()).is_some_and(|o| {
                o["study"].as_str() == Some("") && o["sop"].as_str().is_some_and(|s| !s.is_empty())
            })
        })
        .count();
    assert!(
        refused_without_study > 0,
        "the corpus has instances without a study"
    );
    eprintln!(
        "corpus: {} files in {requests} requests: {stored} stored, {answered_failed} refused",
        files.len()
    );

    // Every stored instance is settled once: delivered, or dead-lettered for a reason known
    // from its original (see KNOWN_UNDELIVERABLE).
    let settled =
        |lines: &[Value]| events(lines, "delivered").len() + events(lines, "dead_lettered").len();
    let done = wait_until(|| settled(&audit(dir.path())) >= stored);
    let lines = audit(dir.path());
    assert!(
        done,
        "{} of {stored} delivered, {} dead-lettered",
        events(&lines, "delivered").len(),
        events(&lines, "dead_lettered").len()
    );
    gw.stop();
    let lines = audit(dir.path());
    assert_eq!(settled(&lines), stored);
    assert_eq!(events(&lines, "queued").len(), stored);
    assert_eq!(events(&lines, "received").len(), files.len());
    assert_eq!(events(&lines, "rejected").len(), answered_failed);

    // Which stored files were dead-lettered, and why (found by the keyed hash of their
    // original SOP Instance UID), against what the originals predict.
    let key = gateway_key(dir.path());
    let sop_hash = |sop: &str| -> String {
        key.mac_labeled("audit sop instance uid", sop.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    let mut dead_paths: BTreeMap<String, String> = BTreeMap::new();
    for line in events(&lines, "dead_lettered") {
        let hash = line["original"]["sop_uid"]
            .as_str()
            .unwrap_or_else(|| panic!("{line}"));
        let path = stored_paths
            .iter()
            .find(|p| sop_hash(originals[*p]["sop"].as_str().unwrap()) == hash)
            .unwrap_or_else(|| panic!("a dead-lettered instance nobody stored: {line}"));
        let why = line["reason"].as_str().unwrap_or("").to_string();
        dead_paths.insert(path.clone(), why);
    }
    let rel = |p: &str| {
        p.strip_prefix(&format!("{}/", corpus.display()))
            .unwrap_or(p)
            .to_string()
    };
    let expected_dead: BTreeMap<String, &str> = stored_paths
        .iter()
        .filter_map(|p| {
            KNOWN_UNDELIVERABLE
                .iter()
                .find(|(f, _)| rel(p) == *f)
                .map(|_| (rel(p), "destination refused the request: HTTP 400"))
        })
        .collect();
    let dead_rel: BTreeMap<String, &str> = dead_paths
        .iter()
        .map(|(p, why)| (rel(p), why.as_str()))
        .collect();
    assert_eq!(
        dead_rel, expected_dead,
        "dead-lettered instances and their reasons"
    );
    eprintln!(
        "corpus: {} delivered, {} dead-lettered (refused by Orthanc); {refused_without_study} refused at ingest for want of a Study Instance UID",
        events(&lines, "delivered").len(),
        dead_rel.len(),
    );
    let stored_paths: Vec<String> = stored_paths
        .into_iter()
        .filter(|p| !dead_paths.contains_key(p))
        .collect();
    assert_eq!(stored_paths.len(), events(&lines, "delivered").len());

    let readable: Vec<Original> = originals
        .values()
        .filter(|o| !o.is_null())
        .map(|o| {
            let s = |k: &str| o[k].as_str().unwrap_or("").to_string();
            (s("study"), s("series"), s("sop"), s("patient_id"))
        })
        .collect();
    assert_audit_fields(&lines, &key, &readable);
    // The pixel stage cleaned some corpus instances (burned-in annotation, ultrasound, …):
    // their masked-region count travels from `queued` to `delivered` unchanged.
    // (Keyed by the spool entry: the corpus holds some instances in several syntaxes.)
    let mut masked: BTreeMap<String, u64> = BTreeMap::new();
    for line in events(&lines, "queued") {
        let entry = line["instance"].as_str().unwrap().to_string();
        masked.insert(entry, line["masked_regions"].as_u64().unwrap());
    }
    for line in events(&lines, "delivered") {
        let queued = masked.get(line["instance"].as_str().unwrap()).copied();
        assert_eq!(queued, line["masked_regions"].as_u64(), "{line}");
    }
    assert!(
        masked.values().any(|&n| n > 0),
        "no corpus instance had a masked region"
    );

    // Orthanc holds the expected new UIDs, grouped by original study and series.
    let sent: Vec<(String, String, String)> = stored_paths
        .iter()
        .map(|p| {
            let o = &originals[p];
            let s = |k: &str| o[k].as_str().unwrap().to_string();
            (s("study"), s("series"), s("sop"))
        })
        .collect();
    let distinct_sops: BTreeSet<&String> = sent.iter().map(|(_, _, sop)| sop).collect();
    assert_eq!(
        orthanc.instances().len(),
        distinct_sops.len(),
        "one Orthanc instance per stored instance (instances sharing a SOP Instance UID count once)"
    );
    assert_grouped(&orthanc, &key, &sent);
    let series: BTreeSet<&String> = sent.iter().map(|(_, se, _)| se).collect();
    let held_series: usize = orthanc.get_json("/statistics")["CountSeries"]
        .as_u64()
        .unwrap() as usize;
    assert_eq!(
        held_series,
        series.len(),
        "one new series per original series"
    );

    // Orthanc's stored files, re-read with pydicom, carry none of their originals.
    let export = dir.path().join("orthanc-files");
    std::fs::create_dir_all(&export).unwrap();
    let mut plan = serde_json::Map::new();
    let held = orthanc.get_json("/instances?expand");
    for inst in held.as_array().unwrap() {
        let new_sop = inst["MainDicomTags"]["SOPInstanceUID"].as_str().unwrap();
        let id = inst["ID"].as_str().unwrap();
        let path = export.join(format!("{id}.dcm"));
        std::fs::write(&path, orthanc.instance_file(id)).unwrap();
        let (mut values, mut words, mut uids) = (Vec::new(), Vec::new(), Vec::new());
        let mut by_keyword: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for p in stored_paths
            .iter()
            .filter(|p| new_uid(&key, originals[*p]["sop"].as_str().unwrap()) == new_sop)
        {
            let o = &originals[p];
            let generic: BTreeSet<String> = strings(&o["generic"]).into_iter().collect();
            // Anywhere in the file: names and IDs of 4 characters or more (shorter ones, such as
            // a StudyID "1", are also series and instance numbers), numbers of 6 digits or more,
            // unless the input also has them in a kept, non-identifying attribute.
            for v in strings(&o["names"]).into_iter().chain(strings(&o["ids"])) {
                let numeric = v.bytes().all(|b| b.is_ascii_digit());
                if v.len() >= 4 && !(numeric && v.len() < 6) && !generic.contains(&v) {
                    words.push(v.clone());
                    values.push(v);
                }
            }
            // In their own attribute: every original name and ID, whatever its length.
            if let Some(map) = o["by_keyword"].as_object() {
                for (k, vs) in map {
                    by_keyword.entry(k.clone()).or_default().extend(strings(vs));
                }
            }
            uids.extend(
                strings(&o["uids"])
                    .into_iter()
                    .filter(|u| !u.starts_with("1.2.840.10008.")),
            );
        }
        assert!(!uids.is_empty(), "Orthanc holds an instance nobody sent");
        plan.insert(
            path.display().to_string(),
            serde_json::json!({"values": values, "words": words, "uids": uids, "by_keyword": by_keyword}),
        );
    }
    let plan_path = dir.path().join("plan.json");
    std::fs::write(&plan_path, serde_json::to_vec(&plan).unwrap()).unwrap();
    let report = python.run_json(STORED_CHECK_PY, &[plan_path.as_os_str()]);
    assert_eq!(report["files"].as_u64(), Some(distinct_sops.len() as u64));
    assert_eq!(report["problems"], serde_json::json!([]), "{report}");

    // The debug logs and the audit hold none of the original values.
    let (watch, excluded) = watched_values(&originals);
    eprintln!(
        "logs and audit checked for {} original values; {} left out (shorter than 4 characters, \
         numbers under 6 digits, well-known UIDs, also in a kept attribute of the input)",
        watch.len(),
        excluded.len()
    );
    let logs = gw_output_files(dir.path());
    assert!(logs.contains("DEBUG"), "the run logged at debug level");
    let audit_text = std::fs::read_to_string(dir.path().join("data/audit.jsonl")).unwrap();
    for (name, text) in [("logs", &logs), ("audit", &audit_text)] {
        let tokens: BTreeSet<&str> = text
            .split(|c: char| !(c.is_ascii_alphanumeric() || ".^_-".contains(c)))
            .filter(|t| !t.is_empty())
            .collect();
        let found: Vec<usize> = watch
            .iter()
            .enumerate()
            .filter(|(_, v)| leaks(text, &tokens, v))
            .map(|(i, _)| i)
            .collect();
        assert!(
            found.is_empty(),
            "the {name} hold {} original values (indexes {found:?} of the watched set)",
            found.len()
        );
    }
}

/// Everything the gateway runs in `dir` printed (stdout and stderr of every run).
fn gw_output_files(dir: &Path) -> String {
    let mut out = String::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension()
            .is_some_and(|x| x == "stdout" || x == "stderr")
        {
            out.push_str(&std::fs::read_to_string(&p).unwrap());
        }
    }
    out
}
