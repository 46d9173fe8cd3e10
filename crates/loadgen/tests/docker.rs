//! The files of `docker/` hold together: both gateway configs pass the validation `dicom-deid
//! serve --config` applies at start, the compose config listens beyond loopback only because it
//! has a token (without it the same file is refused), and every path the Dockerfile and the
//! compose file name exists. (No Docker engine is needed; none runs the image here.)

use std::path::{Path, PathBuf};

use dicom_deid_server::config::{AuthSpec, DestinationKind, RawConfig};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn the_image_default_config_is_valid_and_loopback_only() {
    let path = root().join("docker/gateway.toml");
    let config = RawConfig::from_file(&path)
        .and_then(|raw| raw.validate(Some(&path)))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(config.listen.ip().is_loopback(), "{}", config.listen);
    assert!(config.tokens.is_empty());
    assert_eq!(config.data_dir, Path::new("/var/lib/dicom-deid"));
}

#[test]
fn the_compose_config_is_valid_and_listens_beyond_loopback_only_with_a_token() {
    let path = root().join("docker/compose/gateway.toml");
    let text = read(&path);
    let config = RawConfig::from_toml(&text, "compose/gateway.toml")
        .and_then(|raw| raw.validate(Some(&path)))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.listen.to_string(), "0.0.0.0:8104");
    assert!(!config.tokens.is_empty());
    let orthanc = config
        .destinations
        .iter()
        .find(|d| d.name == "orthanc")
        .expect("an orthanc destination");
    match &orthanc.kind {
        DestinationKind::Stow { url, auth, .. } => {
            assert_eq!(url, "http://orthanc:8042/dicom-web/");
            assert_eq!(
                auth,
                &AuthSpec::Basic {
                    user: "deid".into(),
                    password_file: "/run/secrets/orthanc_password".into()
                }
            );
        }
        other => panic!("not a STOW destination: {other:?}"),
    }
    // The gateway's rule is what makes the token necessary: the same file without it is refused.
    let at = text.find("[[tokens]]").expect("a [[tokens]] entry");
    let end = text[at..].find("\n\n").map_or(text.len(), |n| at + n);
    let untokened = format!("{}{}", &text[..at], &text[end..]);
    let err = RawConfig::from_toml(&untokened, "compose/gateway.toml")
        .and_then(|raw| raw.validate(Some(&path)))
        .expect_err("listening on 0.0.0.0 without tokens must be refused");
    assert!(err.problems.iter().any(|p| p.key == "listen"), "{err}");
}

#[test]
fn the_dockerfile_copies_what_exists_and_runs_the_shipped_config_unprivileged() {
    let dockerfile = read(&root().join("docker/Dockerfile"));
    let lines: Vec<&str> = dockerfile
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .collect();
    assert_eq!(lines.iter().filter(|l| l.starts_with("FROM ")).count(), 2);
    let mut copied = Vec::new();
    for line in lines.iter().filter(|l| l.starts_with("COPY ")) {
        let words: Vec<&str> = line.split_whitespace().skip(1).collect();
        if words[0].starts_with("--from=") {
            continue;
        }
        let (dest, sources) = words.split_last().unwrap();
        for src in sources {
            assert!(root().join(src).exists(), "COPY source {src} is missing");
        }
        copied.push((sources.to_vec(), *dest));
    }
    assert!(copied
        .iter()
        .any(|(s, d)| s == &["docker/gateway.toml"] && *d == "/etc/dicom-deid/gateway.toml"));
    assert!(dockerfile.contains(r#"CMD ["serve", "--config", "/etc/dicom-deid/gateway.toml"]"#));
    let user = lines
        .iter()
        .rfind(|l| l.starts_with("USER "))
        .expect("a USER line");
    assert!(!user.contains("root") && !user.contains(" 0"), "{user}");
    assert!(dockerfile.contains("ca-certificates"));
    // The build context excludes build outputs and local secrets.
    let ignore = read(&root().join("docker/Dockerfile.dockerignore"));
    for entry in ["target", ".git", "bench-out", "docker/.env"] {
        assert!(
            ignore.lines().any(|l| l.trim() == entry),
            "{entry} is not ignored"
        );
    }
}

#[test]
fn the_compose_file_mounts_files_that_exist() {
    let docker = root().join("docker");
    let compose = read(&docker.join("compose.yaml"));
    let mut mounts = 0;
    for line in compose.lines() {
        let Some(spec) = line.trim().strip_prefix("- ./") else {
            continue;
        };
        let spec = spec.split_whitespace().next().unwrap();
        let mut fields = spec.split(':');
        let (src, dest) = (fields.next().unwrap(), fields.next().unwrap());
        assert!(
            docker.join(src).is_file(),
            "mount source docker/{src} is missing"
        );
        if src == "compose/gateway.toml" {
            assert!(
                compose.contains(&format!(r#""--config", "{dest}""#)),
                "the gateway is not started with the mounted config {dest}"
            );
        }
        mounts += 1;
    }
    assert_eq!(mounts, 2, "the gateway config and the Orthanc config");
    assert!(compose.contains("dockerfile: docker/Dockerfile"));
    assert!(compose.contains("context: .."));
    assert!(compose.contains("DICOM_WEB_PLUGIN_ENABLED"));
    // The Orthanc config mounted in enables the DICOMweb plugin at the root the gateway uses.
    let orthanc: serde_json::Value =
        serde_json::from_str(&read(&docker.join("compose/orthanc.json"))).unwrap();
    assert_eq!(orthanc["DicomWeb"]["Enable"], true);
    assert_eq!(orthanc["DicomWeb"]["Root"], "/dicom-web/");
    assert_eq!(orthanc["AuthenticationEnabled"], true);
}
