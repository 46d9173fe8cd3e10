//! Ingest, in process: `app(state).oneshot(request)`.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use dicom_deid_dicomweb::failure;
use dicom_deid_server::app;
use tower::ServiceExt;

#[tokio::test]
async fn three_good_parts_are_stored_and_listed() {
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(&raw_config(dir.path()));
    let state = gw.state.clone();
    let (a, b, c) = (instance(1), instance(2), instance(3));
    let res = app(gw.state)
        .oneshot(stow_request(
            "/studies",
            &[
                ("application/dicom", &a),
                ("application/dicom", &b),
                ("application/dicom", &c),
            ],
        ))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "application/dicom+json");
    let json = body_json(res).await;
    let referenced = items(&json, "00081199");
    assert_eq!(referenced.len(), 3);
    // The sender's own SOP Instance UIDs come back (never the pseudonyms), without RetrieveURL.
    assert_eq!(referenced[0]["00081155"]["Value"][0], "1.2.3.4.5.6.7.1");
    assert!(referenced[0].get("00081190").is_none());
    assert!(items(&json, "00081198").is_empty());
    let depth = state.spool().depth();
    assert_eq!(depth.entries, 3);
    assert_eq!(depth.destinations["local"].entries, 3);

    // The spool and the audit hold no original value.
    let audit_path = dir.path().join("audit.jsonl");
    dicom_deid_audit::testing::assert_file_has_no(&audit_path, FORBIDDEN);
    let audit = std::fs::read_to_string(&audit_path).unwrap();
    assert_eq!(audit.matches("\"event\":\"received\"").count(), 3);
    assert_eq!(audit.matches("\"event\":\"queued\"").count(), 3);
    for entry in walk(&dir.path().join("spool")) {
        let bytes = std::fs::read(&entry).unwrap();
        for f in FORBIDDEN {
            assert!(
                !bytes.windows(f.len()).any(|w| w == f.as_bytes()),
                "{f} in {}",
                entry.display()
            );
        }
    }
    let summary = dicom_deid_audit::verify(std::io::BufReader::new(
        std::fs::File::open(&audit_path).unwrap(),
    ))
    .unwrap();
    assert_eq!(summary.lines, 6);
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test]
async fn a_non_dicom_part_fails_alone() {
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(&raw_config(dir.path()));
    let state = gw.state.clone();
    let (a, b) = (instance(1), instance(2));
    let res = app(gw.state)
        .oneshot(stow_request(
            "/studies",
            &[
                ("application/dicom", &a),
                ("application/dicom", b"this is not DICOM"),
                ("application/dicom", &b),
            ],
        ))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let json = body_json(res).await;
    assert_eq!(items(&json, "00081199").len(), 2);
    assert_eq!(
        failure_reasons(&json),
        vec![u64::from(failure::CANNOT_UNDERSTAND)]
    );
    // An unreadable part has empty UIDs.
    let failed = &items(&json, "00081198")[0];
    let uid = failed["00081155"]["Value"][0].as_str().unwrap_or("");
    assert!(uid.is_empty(), "{failed}");
    assert_eq!(state.spool().depth().entries, 2);
    let audit = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap();
    assert_eq!(audit.matches("\"event\":\"rejected\"").count(), 1);
    dicom_deid_audit::testing::assert_file_has_no(&dir.path().join("audit.jsonl"), FORBIDDEN);
}

#[tokio::test]
async fn a_part_of_another_media_type_fails_alone() {
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(&raw_config(dir.path()));
    let a = instance(1);
    let res = app(gw.state)
        .oneshot(stow_request(
            "/studies",
            &[("application/dicom", &a), ("text/plain", b"hello")],
        ))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let json = body_json(res).await;
    assert_eq!(
        failure_reasons(&json),
        vec![u64::from(failure::CANNOT_UNDERSTAND)]
    );
}

#[tokio::test]
async fn only_bad_parts_is_409() {
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(&raw_config(dir.path()));
    let res = app(gw.state)
        .oneshot(stow_request(
            "/studies",
            &[("application/dicom", b"garbage")],
        ))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CONFLICT);
}

#[tokio::test]
async fn wrong_content_type_is_415() {
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(&raw_config(dir.path()));
    for ct in [
        Some("application/json"),
        Some("multipart/related; type=\"application/dicom+json\"; boundary=x"),
        None,
    ] {
        let mut req = Request::post("/studies");
        if let Some(ct) = ct {
            req = req.header("content-type", ct);
        }
        let res = app(gw.state.clone())
            .oneshot(req.body(Body::from("{}")).unwrap())
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "{ct:?}");
    }
    assert_eq!(gw.state.spool().depth().entries, 0);
}

#[tokio::test]
async fn malformed_multipart_is_400() {
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(&raw_config(dir.path()));
    let res = app(gw.state.clone())
        .oneshot(
            Request::post("/studies")
                .header(
                    "content-type",
                    "multipart/related; type=\"application/dicom\"; boundary=abc",
                )
                .body(Body::from("no delimiter anywhere in this body"))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);

    // A body cut inside its second part: the first is kept and listed, the answer is 202.
    let a = instance(1);
    let b = instance(2);
    let full = dicom_deid_dicomweb::encode_parts(
        "abc",
        &[("application/dicom", &a), ("application/dicom", &b)],
    );
    let cut = full.slice(..full.len() - 40);
    let res = app(gw.state.clone())
        .oneshot(
            Request::post("/studies")
                .header(
                    "content-type",
                    "multipart/related; type=\"application/dicom\"; boundary=abc",
                )
                .body(Body::from(cut))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    assert_eq!(items(&body_json(res).await, "00081199").len(), 1);
}

#[tokio::test]
async fn missing_boundary_is_400() {
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(&raw_config(dir.path()));
    let res = app(gw.state)
        .oneshot(
            Request::post("/studies")
                .header(
                    "content-type",
                    "multipart/related; type=\"application/dicom\"",
                )
                .body(Body::from("--x\r\n\r\n--x--"))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn an_oversized_part_fails_alone() {
    let dir = tempfile::tempdir().unwrap();
    let mut raw = raw_config(dir.path());
    raw.limits.max_instance_bytes = Some(4096);
    raw.limits.max_in_flight_bytes = Some(1 << 20);
    let gw = gateway(&raw);
    let state = gw.state.clone();
    let big = vec![7u8; 10_000];
    let (a, b) = (instance(1), instance(2));
    let res = app(gw.state)
        .oneshot(stow_request(
            "/studies",
            &[
                ("application/dicom", &a),
                ("application/dicom", &big),
                ("application/dicom", &b),
            ],
        ))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let json = body_json(res).await;
    assert_eq!(items(&json, "00081199").len(), 2);
    assert_eq!(
        failure_reasons(&json),
        vec![u64::from(failure::OUT_OF_RESOURCES)]
    );
    assert_eq!(state.spool().depth().entries, 2);
}

#[tokio::test]
async fn a_single_application_dicom_body_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(&raw_config(dir.path()));
    let state = gw.state.clone();
    let res = app(gw.state.clone())
        .oneshot(
            Request::post("/studies")
                .header("content-type", "application/dicom")
                .body(Body::from(instance(1)))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(items(&body_json(res).await, "00081199").len(), 1);
    assert_eq!(state.spool().depth().entries, 1);
}

#[tokio::test]
async fn a_single_body_over_the_limit_is_413() {
    let dir = tempfile::tempdir().unwrap();
    let mut raw = raw_config(dir.path());
    raw.limits.max_instance_bytes = Some(4096);
    raw.limits.max_in_flight_bytes = Some(1 << 20);
    let gw = gateway(&raw);
    let res = app(gw.state.clone())
        .oneshot(
            Request::post("/studies")
                .header("content-type", "application/dicom")
                .body(Body::from(vec![0u8; 10_000]))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(gw.state.spool().depth().entries, 0);
}

#[tokio::test]
async fn studies_uid_checks_the_original_study() {
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(&raw_config(dir.path()));
    let a = instance(1);
    let res = app(gw.state.clone())
        .oneshot(stow_request(
            &format!("/studies/{STUDY}"),
            &[("application/dicom", &a)],
        ))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = app(gw.state.clone())
        .oneshot(stow_request("/studies/9.9.9", &[("application/dicom", &a)]))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CONFLICT);
    let json = body_json(res).await;
    assert_eq!(
        failure_reasons(&json),
        vec![u64::from(failure::STUDY_INSTANCE_UID_MISMATCH)]
    );
    assert_eq!(gw.state.spool().depth().entries, 1);
    dicom_deid_audit::testing::assert_file_has_no(&dir.path().join("audit.jsonl"), FORBIDDEN);
}

#[tokio::test]
async fn xml_when_the_client_asks_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(&raw_config(dir.path()));
    let a = instance(1);
    let mut req = stow_request("/studies", &[("application/dicom", &a)]);
    req.headers_mut()
        .insert("accept", "application/dicom+xml".parse().unwrap());
    let res = app(gw.state).oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "application/dicom+xml");
    let body = String::from_utf8(body_bytes(res).await).unwrap();
    assert!(body.contains("NativeDicomModel"), "{body}");
}

#[tokio::test]
async fn a_full_spool_is_503_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let mut raw = raw_config(dir.path());
    raw.limits.max_spool_bytes = Some(100);
    let gw = gateway(&raw);
    let a = instance(1);
    let res = app(gw.state)
        .oneshot(stow_request("/studies", &[("application/dicom", &a)]))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(res.headers()["retry-after"], "5");
    let json = body_json(res).await;
    assert_eq!(
        failure_reasons(&json),
        vec![u64::from(failure::OUT_OF_RESOURCES)]
    );
}

#[tokio::test]
async fn routes_have_their_own_paths_and_destinations() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dicom_deid_server::config::RawConfig::from_toml(
        r#"
        [[routes]]
        name = "a"
        path = "/projects/a"
        profile = "research"
        destinations = ["out-a", "both"]
        [[routes]]
        name = "b"
        path = "/projects/b"
        destinations = ["both"]
        [[destinations]]
        name = "out-a"
        kind = "folder"
        dir = "a"
        [[destinations]]
        name = "both"
        kind = "folder"
        dir = "both"
        profile = "basic"
        "#,
        "test.toml",
    )
    .unwrap();
    let raw = dicom_deid_server::config::RawConfig {
        data_dir: Some(dir.path().to_path_buf()),
        ..raw
    };
    let gw = gateway(&raw);
    let a = instance(1);
    let res = app(gw.state.clone())
        .oneshot(stow_request(
            "/projects/a/studies",
            &[("application/dicom", &a)],
        ))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = app(gw.state.clone())
        .oneshot(stow_request(
            "/projects/b/studies",
            &[("application/dicom", &a)],
        ))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = app(gw.state.clone())
        .oneshot(stow_request("/studies", &[("application/dicom", &a)]))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let depth = gw.state.spool().depth();
    assert_eq!(depth.destinations["out-a"].entries, 1);
    assert_eq!(depth.destinations["both"].entries, 2);
}

#[tokio::test]
async fn health_ready_and_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(&raw_config(dir.path()));
    let get = |path: &str| Request::get(path).body(Body::empty()).unwrap();
    let res = app(gw.state.clone())
        .oneshot(get("/healthz"))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = app(gw.state.clone()).oneshot(get("/readyz")).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    let a = instance(1);
    app(gw.state.clone())
        .oneshot(stow_request(
            "/studies",
            &[("application/dicom", &a), ("application/dicom", b"x")],
        ))
        .await
        .unwrap();
    let res = app(gw.state.clone())
        .oneshot(get("/metrics"))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let text = String::from_utf8(body_bytes(res).await).unwrap();
    for line in [
        "dicom_deid_instances_received_total 2",
        "dicom_deid_instances_rejected_total 1",
        "dicom_deid_instances_queued_total 1",
        "dicom_deid_spool_entries 1",
        "dicom_deid_spool_destination_entries{destination=\"local\"} 1",
        "dicom_deid_delivery_latency_seconds_count 0",
        "dicom_deid_delivery_latency_seconds_bucket{le=\"+Inf\"} 0",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
    }

    // Not ready when the spool cannot take a write.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let tmp = dir.path().join("spool/tmp");
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o500)).unwrap();
        let probe_fails = std::fs::write(tmp.join("x"), b"x").is_err(); // root ignores modes
        let res = app(gw.state.clone()).oneshot(get("/readyz")).await.unwrap();
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o700)).unwrap();
        if probe_fails {
            assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        } else {
            let _ = std::fs::remove_file(tmp.join("x"));
        }
    }
}

#[tokio::test]
async fn too_many_requests_is_503_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let mut raw = raw_config(dir.path());
    raw.limits.max_concurrent_requests = Some(1);
    let gw = gateway(&raw);
    // A request whose body never ends holds the only slot.
    let stuck = Request::post("/studies")
        .header(
            "content-type",
            "multipart/related; type=\"application/dicom\"; boundary=abc",
        )
        .body(Body::from_stream(futures_util::stream::pending::<
            Result<bytes::Bytes, std::io::Error>,
        >()))
        .unwrap();
    let first = tokio::spawn(app(gw.state.clone()).oneshot(stuck));
    for _ in 0..1000 {
        if gw
            .state
            .metrics()
            .requests
            .load(std::sync::atomic::Ordering::Relaxed)
            == 1
        {
            break;
        }
        tokio::task::yield_now().await;
    }
    let a = instance(1);
    let res = app(gw.state.clone())
        .oneshot(stow_request("/studies", &[("application/dicom", &a)]))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(res.headers()["retry-after"], "5");
    first.abort();
    let _ = first.await;
    // The slot is free again.
    let res = app(gw.state.clone())
        .oneshot(stow_request("/studies", &[("application/dicom", &a)]))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_parts_are_processed_in_parallel_and_answered_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut raw = raw_config(dir.path());
    raw.limits.max_workers = Some(3);
    let gw = gateway(&raw);
    let files: Vec<Vec<u8>> = (0..20).map(instance).collect();
    let mut parts: Vec<(&str, &[u8])> = files
        .iter()
        .map(|f| ("application/dicom", &f[..]))
        .collect();
    parts[4] = ("application/dicom", b"broken");
    let res = app(gw.state.clone())
        .oneshot(stow_request("/studies", &parts))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let json = body_json(res).await;
    let uids: Vec<String> = items(&json, "00081199")
        .iter()
        .map(|i| i["00081155"]["Value"][0].as_str().unwrap().to_string())
        .collect();
    let expected: Vec<String> = (0..20)
        .filter(|i| *i != 4)
        .map(|i| format!("1.2.3.4.5.6.7.{i}"))
        .collect();
    assert_eq!(uids, expected);
    assert_eq!(
        failure_reasons(&json),
        vec![u64::from(failure::CANNOT_UNDERSTAND)]
    );
    assert_eq!(gw.state.spool().depth().entries, 19);
}

#[tokio::test(start_paused = true)]
async fn a_stalled_body_ends_the_request() {
    let dir = tempfile::tempdir().unwrap();
    let mut raw = raw_config(dir.path());
    raw.limits.body_idle_timeout_secs = Some(30);
    let gw = gateway(&raw);
    let stalled = Request::post("/studies")
        .header(
            "content-type",
            "multipart/related; type=\"application/dicom\"; boundary=abc",
        )
        .body(Body::from_stream(futures_util::stream::pending::<
            Result<bytes::Bytes, std::io::Error>,
        >()))
        .unwrap();
    let res = app(gw.state.clone()).oneshot(stalled).await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn an_instance_without_a_study_uid_is_refused_not_stored() {
    use dicom_deid_wire::testing::{dataset, text};
    use dicom_deid_wire::{write_file, FileMetaOut, Syntax, Vr};
    // A valid instance but for its missing Study Instance UID: STOW-RS could never deliver it,
    // so answering "stored" would promise what the forwarder cannot keep.
    let ds = dataset(vec![
        text(0x0008_0016, Vr::UI, "1.2.840.10008.5.1.4.1.1.7"),
        text(0x0008_0018, Vr::UI, "1.2.3.4.5.6.7.99"),
        text(0x0010_0010, Vr::PN, "Doe^Jane"),
        text(0x0020_000E, Vr::UI, "1.2.3.4.5.6"),
    ]);
    let meta = FileMetaOut::for_dataset(&ds, "1.2.840.10008.1.2.1", "1.2.3", "TEST");
    let mut no_study = Vec::new();
    write_file(&mut no_study, &meta, &ds, Syntax::EXPLICIT_LE).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(&raw_config(dir.path()));
    let good = instance(1);
    let res = app(gw.state.clone())
        .oneshot(stow_request(
            "/studies",
            &[
                ("application/dicom", &no_study),
                ("application/dicom", &good),
            ],
        ))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let json = body_json(res).await;
    assert_eq!(items(&json, "00081199").len(), 1);
    assert_eq!(
        failure_reasons(&json),
        [u64::from(failure::DATA_SET_DOES_NOT_MATCH_SOP_CLASS)]
    );
    assert_eq!(gw.state.spool().depth().entries, 1);
    let audit = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap();
    assert_eq!(audit.matches("\"event\":\"rejected\"").count(), 1);
    assert!(audit.contains("no valid Study Instance UID (0020,000D)"));
    dicom_deid_audit::testing::assert_file_has_no(&dir.path().join("audit.jsonl"), FORBIDDEN);
}

#[tokio::test]
async fn masked_regions_are_counted_in_the_audit() {
    use dicom_deid_wire::testing::{dataset, mono8_pixel_module, text};
    use dicom_deid_wire::{write_file, Element, FileMetaOut, Syntax, Vr};
    let dir = tempfile::tempdir().unwrap();
    // A profile whose region rule blanks one rectangle of every OT image (detection off, so
    // the count is exactly the rule's).
    let profile = dir.path().join("masking.toml");
    std::fs::write(
        &profile,
        r#"
name = "masking"
description = "basic plus one region rule"
version = "1"
options = []
unlisted = "keep"
[pixel]
detection = "never"
padding = 0
[[pixel.region]]
id = "corner"
modality = "OT"
rects = [[0, 0, 2, 2]]
"#,
    )
    .unwrap();
    let raw = dicom_deid_server::config::RawConfig::from_toml(
        &format!(
            r#"
            [[routes]]
            name = "r"
            path = ""
            profile = "{}"
            destinations = ["local"]
            [[destinations]]
            name = "local"
            kind = "folder"
            dir = "out"
            "#,
            profile.display()
        ),
        "test.toml",
    )
    .unwrap();
    let raw = dicom_deid_server::config::RawConfig {
        data_dir: Some(dir.path().to_path_buf()),
        ..raw
    };
    let gw = gateway(&raw);
    let mut elements = vec![
        text(0x0008_0016, Vr::UI, "1.2.840.10008.5.1.4.1.1.7"),
        text(0x0008_0018, Vr::UI, "1.2.3.4.5.6.7.42"),
        text(0x0008_0060, Vr::CS, "OT"),
        text(0x0010_0010, Vr::PN, "Doe^Jane"),
        text(0x0020_000D, Vr::UI, STUDY),
        text(0x0020_000E, Vr::UI, "1.2.3.4.5.6"),
        Element::new(0x7FE0_0010, Vr::OB, vec![200u8; 16]),
    ];
    elements.extend(mono8_pixel_module(4, 4, false));
    let ds = dataset(elements);
    let meta = FileMetaOut::for_dataset(&ds, "1.2.840.10008.1.2.1", "1.2.3", "TEST");
    let mut file = Vec::new();
    write_file(&mut file, &meta, &ds, Syntax::EXPLICIT_LE).unwrap();
    let plain = instance(1);
    let res = app(gw.state.clone())
        .oneshot(stow_request(
            "/studies",
            &[("application/dicom", &file), ("application/dicom", &plain)],
        ))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let audit = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap();
    let queued: Vec<serde_json::Value> = audit
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|l| l["event"] == "queued")
        .collect();
    let mut counts: Vec<u64> = queued
        .iter()
        .map(|l| l["masked_regions"].as_u64().unwrap())
        .collect();
    counts.sort_unstable();
    // The CT instance passed through (0), the OT one had its rule's one rectangle masked.
    assert_eq!(counts, [0, 1]);
}

/// A STOW request whose body arrives through `rx`, with `Content-Length` when `declared`.
fn streamed_request(
    rx: tokio::sync::mpsc::Receiver<Vec<u8>>,
    declared: Option<usize>,
) -> Request<Body> {
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|chunk| (Ok::<_, std::io::Error>(bytes::Bytes::from(chunk)), rx))
    });
    let mut req = Request::post("/studies")
        .header(
            "content-type",
            "multipart/related; type=\"application/dicom\"; boundary=xX-test-boundary-Xx",
        )
        .header("accept", "application/dicom+json");
    if let Some(n) = declared {
        req = req.header("content-length", n);
    }
    req.body(Body::from_stream(stream)).unwrap()
}

/// A multipart body of one part per instance, without the parts' own Content-Length.
fn body_without_part_lengths(instances: &[Vec<u8>]) -> Vec<u8> {
    let mut body = Vec::new();
    for i in instances {
        body.extend_from_slice(b"--xX-test-boundary-Xx\r\nContent-Type: application/dicom\r\n\r\n");
        body.extend_from_slice(i);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"--xX-test-boundary-Xx--\r\n");
    body
}

/// A gateway with data in `dir` and the given instance and in-flight limits.
fn limited(dir: &std::path::Path, instance: u64, in_flight: u64) -> dicom_deid_server::AppState {
    let mut raw = raw_config(dir);
    raw.limits.max_instance_bytes = Some(instance);
    raw.limits.max_in_flight_bytes = Some(in_flight);
    gateway(&raw).state
}

/// The answer of a request run in its own task.
type Answering =
    tokio::task::JoinHandle<Result<axum::http::Response<Body>, std::convert::Infallible>>;

/// Starts a STOW request whose body stops after `body[..cut]`; the sender sends the rest.
fn stalled_upload(
    state: &dicom_deid_server::AppState,
    body: &[u8],
    cut: usize,
    declared: Option<usize>,
) -> (tokio::sync::mpsc::Sender<Vec<u8>>, Answering) {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.try_send(body[..cut].to_vec()).unwrap();
    let request = app(state.clone()).oneshot(streamed_request(rx, declared));
    (tx, tokio::spawn(request))
}

/// Polls `f` until it holds (the test's own deadline ends a hang).
async fn until(mut f: impl FnMut() -> bool) {
    for _ in 0..2000 {
        if f() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    panic!("the condition never held");
}

#[tokio::test]
async fn a_parts_share_of_the_in_flight_bytes_is_taken_before_it_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let state = limited(dir.path(), 64 << 10, 128 << 10);
    assert_eq!(state.in_flight_bytes(), (0, 128 << 10));

    // A chunked request (no Content-Length, nor on its part) stops in the middle of its
    // part: before reading it, the gateway took the share of the largest instance (input
    // and output), which here is the whole budget.
    let body = body_without_part_lengths(&[instance(1)]);
    let (tx, first) = stalled_upload(&state, &body, body.len() / 2, None);
    until(|| state.in_flight_bytes().0 == 128 << 10).await;

    // Meanwhile a second request is not read at all: the budget is taken.
    let second_body = body_without_part_lengths(&[instance(2)]);
    let (tx2, rx2) = tokio::sync::mpsc::channel(4);
    tx2.send(second_body.to_vec()).await.unwrap();
    drop(tx2);
    let second =
        tokio::spawn(app(state.clone()).oneshot(streamed_request(rx2, Some(second_body.len()))));
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(!second.is_finished());
    assert_eq!(state.spool().depth().entries, 0);

    // The first body completes: both are stored, and every share is given back.
    tx.send(body[body.len() / 2..].to_vec()).await.unwrap();
    drop(tx);
    let res = first.await.unwrap().unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = second.await.unwrap().unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(state.spool().depth().entries, 2);
    assert_eq!(state.in_flight_bytes().0, 0);
}

#[tokio::test]
async fn a_declared_length_bounds_the_share_taken_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    let state = limited(dir.path(), 1 << 20, 4 << 20);
    let body = body_without_part_lengths(&[instance(1)]);
    let (tx, first) = stalled_upload(&state, &body, body.len() / 2, Some(body.len()));
    // The part cannot be longer than the body: twice the declared length, not twice the
    // largest instance, is taken while it is read.
    let share = (2 * body.len() as u64).div_ceil(1024) * 1024;
    until(|| state.in_flight_bytes().0 == share).await;
    tx.send(body[body.len() / 2..].to_vec()).await.unwrap();
    drop(tx);
    assert_eq!(first.await.unwrap().unwrap().status(), StatusCode::OK);
    assert_eq!(state.in_flight_bytes().0, 0);
}

#[tokio::test]
async fn a_parts_own_length_bounds_its_share_and_a_longer_body_fails_alone() {
    let dir = tempfile::tempdir().unwrap();
    let state = limited(dir.path(), 1 << 20, 4 << 20);
    // Chunked, but the part says its length (as Orthanc's STOW client does): twice that is
    // taken while the part is read.
    let one = instance(1);
    let body =
        dicom_deid_dicomweb::encode_parts("xX-test-boundary-Xx", &[("application/dicom", &one)]);
    let cut = body.len() - one.len() / 2;
    let (tx, first) = stalled_upload(&state, &body, cut, None);
    let share = (2 * one.len() as u64).div_ceil(1024) * 1024;
    until(|| state.in_flight_bytes().0 == share).await;
    tx.send(body[cut..].to_vec()).await.unwrap();
    drop(tx);
    assert_eq!(first.await.unwrap().unwrap().status(), StatusCode::OK);

    // A part whose body runs past its declared length is refused (it could outgrow its
    // share); the next part is stored.
    let two = instance(2);
    let mut lying = format!(
        "--xX-test-boundary-Xx\r\nContent-Type: application/dicom\r\nContent-Length: {}\r\n\r\n",
        one.len() / 2
    )
    .into_bytes();
    lying.extend_from_slice(&one);
    lying.extend_from_slice(b"\r\n");
    lying.extend_from_slice(&body_without_part_lengths(&[two]));
    one_stored_one_failed(&state, lying, failure::CANNOT_UNDERSTAND).await;
}

#[tokio::test]
async fn a_part_that_fails_while_read_gives_its_share_back_before_the_next_is_taken() {
    let dir = tempfile::tempdir().unwrap();
    let state = limited(dir.path(), 4096, 8192);
    // Chunked, no part lengths: each part's share is the whole budget. The first part runs
    // past the instance limit while it is read; the second must still get its share.
    let body = body_without_part_lengths(&[vec![7u8; 10_000], instance(2)]);
    one_stored_one_failed(&state, body, failure::OUT_OF_RESOURCES).await;
}

/// Sends `body` chunked and checks the answer: one part stored, one failed for `reason`, no
/// share of the in-flight bytes left taken. A request that never ends (a share held while
/// waiting for another) fails the test instead of hanging it.
async fn one_stored_one_failed(state: &dicom_deid_server::AppState, body: Vec<u8>, reason: u16) {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.send(body).await.unwrap();
    drop(tx);
    let res = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        app(state.clone()).oneshot(streamed_request(rx, None)),
    )
    .await
    .expect("the request never ended: a share was held while waiting for another")
    .unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let json = body_json(res).await;
    assert_eq!(items(&json, "00081199").len(), 1);
    assert_eq!(failure_reasons(&json), vec![u64::from(reason)]);
    assert_eq!(state.in_flight_bytes().0, 0);
}
