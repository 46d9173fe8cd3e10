//! `dicom-deid serve` with `[dimse]`, killed with SIGKILL while DCMTK's `storescu` streams
//! instances into it, then started again on the same data directory: every instance storescu
//! saw answered Success ends up in the folder destination, and the logs and the audit carry no
//! original value. DCMTK missing: a loud skip (a failure under CI=true).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dicom_deid_dimse::testing::dcmtk;
use dicom_deid_testpeers::free_port;
use dicom_deid_wire::testing::{dataset, text};
use dicom_deid_wire::{write_file, Element, FileMetaOut, Syntax, Vr};

mod common;
use common::dcm_files;

const PHI: [&str; 2] = ["Doe^Jane", "PID-0001"];
const STUDY: &str = "1.2.826.0.1.3680043.8.498.4242";
const COUNT: usize = 300;

/// Instance `i`: Doe^Jane, PID-0001, one study, InstanceNumber `i` (kept by the profile, so the
/// output says which input it came from).
fn instance(i: usize) -> Vec<u8> {
    let ds = dataset(vec![
        text(0x0008_0016, Vr::UI, "1.2.840.10008.5.1.4.1.1.2"),
        text(
            0x0008_0018,
            Vr::UI,
            &format!("1.2.826.0.1.3680043.8.498.4242.1.{i}"),
        ),
        text(0x0008_0060, Vr::CS, "CT"),
        text(0x0010_0010, Vr::PN, "Doe^Jane"),
        text(0x0010_0020, Vr::LO, "PID-0001"),
        text(0x0020_000D, Vr::UI, STUDY),
        text(0x0020_000E, Vr::UI, "1.2.826.0.1.3680043.8.498.4242.1"),
        text(0x0020_0013, Vr::IS, &i.to_string()),
        Element::new(0x0028_0002, Vr::US, 1u16.to_le_bytes().to_vec()),
        Element::new(0x0028_0010, Vr::US, 64u16.to_le_bytes().to_vec()),
        Element::new(0x0028_0011, Vr::US, 64u16.to_le_bytes().to_vec()),
        Element::new(0x0028_0100, Vr::US, 16u16.to_le_bytes().to_vec()),
        Element::new(0x7FE0_0010, Vr::OW, vec![7u8; 64 * 64 * 2]),
    ]);
    let meta = FileMetaOut::for_dataset(&ds, "1.2.840.10008.1.2.1", "1.2.3", "TEST");
    let mut out = Vec::new();
    write_file(&mut out, &meta, &ds, Syntax::EXPLICIT_LE).unwrap();
    out
}

/// Starts `serve` and waits until the SCP accepts connections.
fn serve(config: &Path, port: u16, log: &Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_dicom-deid"))
        .env_remove("DICOM_DEID_KEY_FILE")
        .env("RUST_LOG", "debug")
        .args(["serve", "--config"])
        .arg(config)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the SCP never listened"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

fn instance_number(bytes: &[u8]) -> Option<usize> {
    let limits = dicom_deid_wire::Limits::default();
    let raw = dicom_deid_wire::read_file(bytes, &limits).ok()?;
    let ds = dicom_deid_wire::parse_dataset(raw.body, raw.syntax, &limits).ok()?;
    ds.str(0x0020_0013)?.trim().parse().ok()
}

#[test]
fn sigkill_during_a_storescu_stream_loses_no_acknowledged_instance() {
    let Some(storescu) = dcmtk("storescu") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let inputs = dir.path().join("in");
    std::fs::create_dir(&inputs).unwrap();
    let mut files = Vec::new();
    for i in 0..COUNT {
        let f = inputs.join(format!("ct{i:04}.dcm"));
        std::fs::write(&f, instance(i)).unwrap();
        files.push(f);
    }
    let port = free_port();
    let config = dir.path().join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = \"data\"\n\n[dimse]\nlisten = \"127.0.0.1:{port}\"\n\n\
             [[dimse.peers]]\nae_title = \"MODALITY\"\nroute = \"default\"\n"
        ),
    )
    .unwrap();
    let gateway_log = dir.path().join("gateway.log");
    let mut gateway = serve(&config, port, &gateway_log);

    // storescu streams every file over one association; its log says which got Success.
    let scu_log = dir.path().join("storescu.log");
    let mut scu = Command::new(&storescu)
        .env("TCP_NODELAY", "1")
        .args(["-v", "-xe", "-R", "-aet", "MODALITY", "-aec", "DEID"])
        .arg("127.0.0.1")
        .arg(port.to_string())
        .args(&files)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = scu.stdout.take().unwrap();
    let stderr = scu.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    for stream in [
        Box::new(stdout) as Box<dyn std::io::Read + Send>,
        Box::new(stderr),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
    }
    drop(tx);
    let mut lines = Vec::new();
    let mut successes = 0;
    // Kill the gateway once a few dozen instances were acknowledged.
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(60)) {
        if line.contains("Received Store Response (Success)") {
            successes += 1;
        }
        lines.push(line);
        if successes == 40 {
            break;
        }
    }
    gateway.kill().unwrap(); // SIGKILL
    gateway.wait().unwrap();
    assert_eq!(successes, 40, "storescu log:\n{}", lines.join("\n"));
    lines.extend(rx.iter());
    let _ = scu.wait();
    std::fs::write(&scu_log, lines.join("\n")).unwrap();

    // Which instances were acknowledged.
    let mut acknowledged = Vec::new();
    let mut current: Option<usize> = None;
    for line in &lines {
        if let Some(f) = line.strip_prefix("I: Sending file: ") {
            let name = Path::new(f.trim())
                .file_stem()
                .unwrap()
                .to_string_lossy()
                .to_string();
            current = name.trim_start_matches("ct").parse().ok();
        } else if line.contains("Received Store Response (Success)") {
            acknowledged.push(current.take().expect("a file before its response"));
        }
    }
    assert!(acknowledged.len() >= 40 && acknowledged.len() < COUNT);

    // Restart on the same data directory: the spool delivers what was acknowledged.
    let mut gateway = serve(&config, port, &gateway_log);
    let out = dir.path().join("data/out");
    let start = Instant::now();
    let delivered = loop {
        let numbers: std::collections::BTreeSet<usize> = dcm_files(&out)
            .iter()
            .filter_map(|f| instance_number(&std::fs::read(f).ok()?))
            .collect();
        if acknowledged.iter().all(|i| numbers.contains(i)) {
            break numbers;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "acknowledged but not delivered: {:?}",
            acknowledged
                .iter()
                .filter(|i| !numbers.contains(i))
                .collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    gateway.kill().unwrap();
    gateway.wait().unwrap();
    assert!(delivered.len() >= acknowledged.len());
    eprintln!(
        "acknowledged {} of {COUNT}, delivered after restart {}",
        acknowledged.len(),
        delivered.len()
    );

    // Nothing original in the outputs, the gateway's logs or the audit.
    let audit = std::fs::read_to_string(dir.path().join("data/audit.jsonl")).unwrap();
    let logs = std::fs::read_to_string(&gateway_log).unwrap();
    assert!(logs.contains("DIMSE association accepted"), "{logs}");
    for f in dcm_files(&out) {
        let bytes = std::fs::read(&f).unwrap();
        for v in PHI.iter().chain([&STUDY]) {
            assert!(
                !bytes.windows(v.len()).any(|w| w == v.as_bytes()),
                "{} carries {v}",
                f.display()
            );
        }
    }
    for v in PHI
        .iter()
        .chain([&STUDY, &"1.2.826.0.1.3680043.8.498.4242.1."])
    {
        assert!(!audit.contains(v), "the audit carries {v}");
        assert!(!logs.contains(v), "the gateway log carries {v}");
    }
    assert!(audit.contains("\"calling_ae\":\"MODALITY\""));
}
