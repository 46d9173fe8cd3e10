//! `dicom-deid serve` as a user runs it: starts from a config, says where it listens, serves a
//! STOW request, delivers to its folder, stops cleanly on SIGTERM, and prints nothing original.

use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use dicom_deid_wire::testing::minimal_file;

mod common;
use common::{dcm_files, listening_addr};

const PHI: [&str; 3] = ["Doe^Jane", "PID-0001", "1.2.3.4.5"];

fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dicom-deid"));
    cmd.env_remove("DICOM_DEID_KEY_FILE")
        .env("RUST_LOG", "debug");
    cmd
}

#[test]
fn serve_answers_delivers_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gateway.toml");
    std::fs::write(&config, "listen = \"127.0.0.1:0\"\ndata_dir = \"data\"\n").unwrap();
    let mut child = bin()
        .args(["serve", "--config"])
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut printed = String::new();
    let addr = listening_addr(&mut stdout, &mut printed);

    // POST /studies/{uid} with one application/dicom body (HTTP/1.1 by hand).
    let body = minimal_file();
    let mut stream = TcpStream::connect(&addr).unwrap();
    write!(
        stream,
        "POST /studies/1.2.3.4.5 HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/dicom\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(&body).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("00081199"), "{answer}");

    let out = dir.path().join("data/out");
    let mut files = Vec::new();
    for _ in 0..600 {
        files = dcm_files(&out);
        if !files.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(files.len(), 1);

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    stdout.read_to_string(&mut printed).unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(exit.code(), Some(0), "{printed}\n{stderr}");
    assert!(printed.contains("data directory"), "{printed}");
    assert!(
        printed.contains(&format!("key {}", dir.path().join("data/key").display())),
        "{printed}"
    );
    assert!(printed.contains("stopped"), "{printed}");
    for v in PHI {
        assert!(
            !printed.contains(v) && !stderr.contains(v),
            "{v} printed:\n{printed}\n{stderr}"
        );
    }
    // The key is never printed.
    let key = std::fs::read_to_string(dir.path().join("data/key")).unwrap();
    assert!(!printed.contains(key.trim()) && !stderr.contains(key.trim()));
}

#[test]
fn serve_refuses_a_bad_config_with_file_key_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gateway.toml");
    std::fs::write(
        &config,
        "listen = \"127.0.0.1:0\"\n[limits]\nmax_workers = 0\n",
    )
    .unwrap();
    let out = bin()
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{}: limits.max_workers: must be at least 1",
            config.display()
        )),
        "{stderr}"
    );
}
