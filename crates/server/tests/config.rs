//! Configuration: refused with file, key and reason; the embedded default.

mod common;

use dicom_deid_server::config::{DestinationConfig, RawConfig, DEFAULT_LISTEN};

fn refused(text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gateway.toml");
    std::fs::write(&file, text).unwrap();
    let err = RawConfig::from_file(&file)
        .and_then(|raw| raw.validate(Some(&file)))
        .expect_err("refused");
    let text = err.to_string();
    assert!(text.contains(&file.display().to_string()), "{text}");
    text
}

#[test]
fn unknown_keys_are_refused_with_file_and_key() {
    let text = refused("lisen = \"127.0.0.1:1\"\n");
    assert!(text.contains("lisen"), "{text}");
    let text = refused("[limits]\nmax_instance = 3\n");
    assert!(text.contains("max_instance"), "{text}");
    let text = refused(
        "[[destinations]]\nname = \"x\"\nkind = \"stow\"\nurl = \"http://h/\"\ntoken = \"s3cret\"\n",
    );
    assert!(text.contains("token") && !text.contains("s3cret"), "{text}");
}

#[test]
fn invalid_values_are_refused_with_file_key_and_reason() {
    let text = refused("listen = \"0.0.0.0:8104\"\n");
    assert!(
        text.contains(": listen: ") && text.contains("loopback"),
        "{text}"
    );
    let text = refused("listen = \"nowhere\"\n");
    assert!(text.contains(": listen: "), "{text}");
    let text = refused("[limits]\nmax_instance_bytes = 0\n");
    assert!(
        text.contains(": limits.max_instance_bytes: must be at least 1"),
        "{text}"
    );
    let text = refused("[limits]\nmax_instance_bytes = 1000\nmax_in_flight_bytes = 1500\n");
    assert!(text.contains(": limits.max_in_flight_bytes: "), "{text}");
    let text = refused("[limits]\nmax_working_bytes = 0\n");
    assert!(
        text.contains(": limits.max_working_bytes: must be at least 1"),
        "{text}"
    );
    let text = refused(
        "[[routes]]\nname = \"r\"\npath = \"projects\"\ndestinations = [\"nope\"]\n\
         [[destinations]]\nname = \"d\"\nkind = \"ftp\"\n",
    );
    assert!(text.contains(": routes[0].path: "), "{text}");
    assert!(
        text.contains(": routes[0].destinations[0]: no destination is named \"nope\""),
        "{text}"
    );
    assert!(text.contains(": destinations[0].kind: "), "{text}");
    let text = refused(
        "[[routes]]\nname = \"r\"\ndestinations = [\"d\"]\n\
         [[destinations]]\nname = \"d\"\nkind = \"stow\"\nurl = \"http://user:pw@h/\"\n",
    );
    assert!(
        text.contains(": destinations[0].url: ") && !text.contains("pw@"),
        "{text}"
    );
    let text = refused("[[routes]]\nname = \"../x\"\ndestinations = []\n");
    assert!(
        text.contains(": routes[0].name: ") && text.contains(": routes[0].destinations: "),
        "{text}"
    );
}

/// A config with one folder destination `d` and `extra` lines in its table.
fn folder(extra: &str) -> String {
    format!("[[destinations]]\nname = \"d\"\nkind = \"folder\"\ndir = \"out\"\n{extra}")
}

/// The destination of a valid config `text` with one destination.
fn read_destination(text: String) -> DestinationConfig {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gw.toml");
    std::fs::write(&file, text).unwrap();
    let mut config = RawConfig::from_file(&file)
        .unwrap()
        .validate(Some(&file))
        .unwrap();
    config.destinations.remove(0)
}

#[test]
fn a_destinations_batch_wait_is_read_defaulted_and_bounded() {
    let read = |text: String| read_destination(text).batch_wait;
    assert_eq!(read(folder("")), dicom_deid_forward::DEFAULT_BATCH_WAIT);
    assert_eq!(
        read(folder("batch_wait_ms = 0\n")),
        std::time::Duration::ZERO
    );
    assert_eq!(
        read(folder("batch_wait_ms = 250\n")),
        std::time::Duration::from_millis(250)
    );
    let text = refused(&folder("batch_wait_ms = 10001\n"));
    assert!(
        text.contains(": destinations[0].batch_wait_ms: must be at most 10000"),
        "{text}"
    );
}

#[test]
fn a_destinations_hold_is_read_defaulted_and_bounded() {
    use dicom_deid_forward::Hold;
    use std::time::Duration;
    let read = |text: String| read_destination(text).hold;
    assert_eq!(read(folder("")), Hold::default());
    assert_eq!(
        read(folder(
            "hold_quiet_ms = 500\nhold_max_ms = 60000\nhold_max_bytes = 1048576\n"
        )),
        Hold {
            quiet: Duration::from_millis(500),
            max: Duration::from_secs(60),
            max_bytes: 1 << 20,
        }
    );
    assert_eq!(read(folder("hold_quiet_ms = 0\n")).quiet, Duration::ZERO);
    let text = refused(&folder(
        "hold_quiet_ms = 10001\nhold_max_ms = 600001\nhold_max_bytes = 0\n",
    ));
    for expected in [
        ": destinations[0].hold_quiet_ms: must be at most 10000",
        ": destinations[0].hold_max_ms: must be at most 600000",
        ": destinations[0].hold_max_bytes: must be at least 1",
    ] {
        assert!(text.contains(expected), "{expected} in {text}");
    }
}

#[test]
fn a_stow_destination_reads_its_token_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), "t0ken\n").unwrap();
    let file = dir.path().join("gw.toml");
    std::fs::write(
        &file,
            "data_dir = \"data\"\n[[routes]]\nname = \"r\"\ndestinations = [\"pacs\"]\n\
             [[destinations]]\nname = \"pacs\"\nkind = \"stow\"\nurl = \"http://127.0.0.1:9/dicom-web/\"\ntoken_file = \"token\"\n",
    )
    .unwrap();
    let config = RawConfig::from_file(&file)
        .unwrap()
        .validate(Some(&file))
        .unwrap();
    assert_eq!(config.data_dir, dir.path().join("data"));
    config.build().unwrap();

    // A missing token file is named with its key.
    std::fs::remove_file(dir.path().join("token")).unwrap();
    let config = RawConfig::from_file(&file)
        .unwrap()
        .validate(Some(&file))
        .unwrap();
    let err = config.build().err().expect("refused").to_string();
    assert!(err.contains("destinations[0].token_file"), "{err}");
}

#[test]
fn the_default_config_creates_a_private_key_in_the_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let raw = common::raw_config(&data);
    let config = raw.validate(None).unwrap();
    assert_eq!(config.listen.to_string(), DEFAULT_LISTEN);
    assert_eq!(config.key_file, data.join("key"));
    assert_eq!(config.routes.len(), 1);
    assert_eq!(config.routes[0].path, "");
    assert_eq!(config.destinations[0].name, "local");
    let gw = config.build().unwrap();
    let key = data.join("key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let first = std::fs::read(&key).unwrap();
    assert!(
        data.join("out").is_dir()
            && data.join("spool").is_dir()
            && data.join("audit.jsonl").is_file()
    );
    drop(gw); // releases the spool lock
              // The second start keeps the key.
    raw.validate(None).unwrap().build().unwrap();
    assert_eq!(std::fs::read(&key).unwrap(), first);
}

#[test]
fn a_configured_key_file_is_never_invented() {
    let dir = tempfile::tempdir().unwrap();
    let raw = RawConfig {
        data_dir: Some(dir.path().join("data")),
        key_file: Some(dir.path().join("missing-key")),
        ..RawConfig::default()
    };
    let err = raw
        .validate(None)
        .unwrap()
        .build()
        .err()
        .expect("refused")
        .to_string();
    assert!(
        err.contains("key_file") && err.contains("missing-key"),
        "{err}"
    );
}

#[test]
fn the_readme_config_example_is_valid() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let start = readme
        .find("```toml\nlisten")
        .expect("the README has a config example")
        + 8;
    let end = start + readme[start..].find("```").unwrap();
    let raw = RawConfig::from_toml(&readme[start..end], "README.md").unwrap();
    let config = raw
        .validate(Some(std::path::Path::new("/etc/dicom-deid/gateway.toml")))
        .unwrap();
    assert_eq!(config.routes[0].path, "/projects/a");
    assert_eq!(config.destinations.len(), 2);
}
