//! `dicom-deid token new` and `dicom-deid serve` with tokens and JSON logs, as a user runs them:
//! the minted token works, a request without it gets 401, every stderr line is a JSON object,
//! and neither the token nor its hash is printed by `serve`.

use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use dicom_deid_wire::testing::minimal_file;

mod common;
use common::listening_addr;

fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dicom-deid"));
    cmd.env_remove("DICOM_DEID_KEY_FILE").env_remove("RUST_LOG");
    cmd
}

/// The token and the `[[tokens]]` lines that `token new` printed.
fn mint(name: &str, routes: &[&str]) -> (String, String) {
    let mut cmd = bin();
    cmd.args(["token", "new", name]);
    for r in routes {
        cmd.args(["--route", r]);
    }
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    let token = text
        .lines()
        .find(|l| l.starts_with("ddt_"))
        .unwrap_or_else(|| panic!("no token line:\n{text}"))
        .to_string();
    let config = text[text.find("[[tokens]]").expect("config lines")..].to_string();
    (token, config)
}

#[test]
fn token_new_prints_a_token_and_the_config_lines_with_its_hash() {
    let (token, config) = mint("site-a", &["default", "b"]);
    assert_eq!(token.len(), 4 + 64);
    let hash = dicom_deid_server::auth::hash_hex(&token);
    assert!(config.contains(&format!("sha256 = \"{hash}\"")), "{config}");
    assert!(config.contains("name = \"site-a\""), "{config}");
    assert!(config.contains("routes = [\"default\", \"b\"]"), "{config}");
    assert!(
        !config.contains(&token),
        "the config lines hold the hash only"
    );
    let (again, _) = mint("site-a", &[]);
    assert_ne!(token, again, "every token is new");

    let out = bin().args(["token", "new", "../bad"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("token name"));
}

fn post(addr: &str, token: Option<&str>) -> String {
    let body = minimal_file();
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        stream,
        "POST /studies HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/dicom\r\n{auth}\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    let _ = stream.write_all(&body);
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
}

fn stop(mut child: Child) -> (String, String, Option<i32>) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    let mut stdout = String::new();
    let mut stderr = String::new();
    // A caller that read the first lines through a BufReader keeps that reader (whatever it
    // buffered beyond them would be lost here) and reads the rest itself.
    if let Some(mut out) = child.stdout.take() {
        out.read_to_string(&mut stdout).unwrap();
    }
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (stdout, stderr, exit.code())
}

#[test]
fn serve_enforces_minted_tokens_and_logs_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let (token, lines) = mint("site-a", &[]);
    let hash = dicom_deid_server::auth::hash_hex(&token);
    let config = dir.path().join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = \"data\"\n[log]\nformat = \"json\"\n{lines}\n"
        ),
    )
    .unwrap();
    let mut child = bin()
        .args(["serve", "--log-level", "debug", "--config"])
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut printed = String::new();
    let addr = listening_addr(&mut stdout, &mut printed);
    // `stdout` keeps what it buffered beyond the listening line (the route and token lines
    // may have come in the same read): the rest is read from it after the stop.

    let anonymous = post(&addr, None);
    assert!(anonymous.starts_with("HTTP/1.1 401"), "{anonymous}");
    assert!(
        anonymous
            .to_ascii_lowercase()
            .contains("www-authenticate: bearer"),
        "{anonymous}"
    );
    let wrong = post(&addr, Some("ddt_0000"));
    assert!(wrong.starts_with("HTTP/1.1 401"), "{wrong}");
    let stored = post(&addr, Some(&token));
    assert!(stored.starts_with("HTTP/1.1 200"), "{stored}");

    let (_, stderr, code) = stop(child);
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    printed.push_str(&rest);
    assert_eq!(code, Some(0), "{printed}\n{stderr}");
    assert!(
        printed.contains("ingest requires a bearer token"),
        "{printed}"
    );

    // Every stderr line is one JSON object with a level and a message; the STOW request was
    // logged under its route and token name.
    let mut messages = Vec::new();
    for line in stderr.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(v["level"].is_string(), "{line}");
        assert!(v["timestamp"].is_string(), "{line}");
        let message = v["message"].as_str().unwrap_or_else(|| panic!("{line}"));
        messages.push(message.to_string());
        if message == "STOW request answered." {
            assert_eq!(v["span"]["token"], "site-a", "{line}");
            assert_eq!(v["span"]["route"], "default", "{line}");
        }
    }
    assert!(
        messages.iter().any(|m| m == "STOW request answered."),
        "{stderr}"
    );
    assert!(
        messages
            .iter()
            .filter(|m| m.starts_with("STOW request refused: no valid token"))
            .count()
            == 2,
        "{stderr}"
    );
    for secret in [&token, &hash] {
        assert!(
            !printed.contains(secret.as_str()) && !stderr.contains(secret.as_str()),
            "a token or its hash was printed"
        );
    }
}
