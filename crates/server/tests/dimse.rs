//! The gateway's DIMSE ingest against DCMTK: `storescu` sends corpus files (compressed ones
//! with the matching proposal option) over several associations at once into `run()` with a
//! `[dimse]` section; every instance storescu saw answered Success is de-identified in the
//! folder destination, audited with the calling AE title, and nothing original is in the
//! output or the audit. Over DICOM TLS (certificates made by rcgen at test time), only clients
//! that complete the handshake — with a certificate from the configured CA when one is
//! required — get to associate. DCMTK or the corpus missing: a loud skip (a failure under
//! CI=true).

mod common;
mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{counter, text_of, InProcess};
use dicom_deid_dimse::testing::{
    corpus_groups, dcmtk, describe, proposal, run_tool, scu_args, store_responses,
};
use dicom_deid_server::config::RawConfig;
use dicom_deid_wire::testing::dcm_files;

async fn start(extra: &str) -> InProcess {
    InProcess::start(tempfile::tempdir().unwrap(), |dimse_port| {
        format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = \"data\"\n\n[dimse]\nlisten = \"127.0.0.1:{dimse_port}\"\n\
             max_associations = 16\n{extra}\n[[dimse.peers]]\nae_title = \"MODALITY\"\nroute = \"default\"\n"
        )
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storescu_to_the_gateway_is_deidentified_spooled_audited_and_delivered() {
    let (Some(storescu), Some(echoscu)) = (dcmtk("storescu"), dcmtk("echoscu")) else {
        return;
    };
    let Some(groups) = corpus_groups(3) else {
        return;
    };
    let gw = start("").await;
    let port = gw.dimse_port;

    let echo = run_tool(&echoscu, &scu_args(port, "MODALITY", "DEID", &[], &[])).await;
    assert!(echo.ok, "{}", echo.log);
    let stranger = run_tool(&echoscu, &scu_args(port, "STRANGER", "DEID", &[], &[])).await;
    assert!(!stranger.ok);
    assert!(stranger.log.contains("Calling AE Title Not Recognized"));

    // One storescu per transfer syntax, all at once; -nh: go on after a refusal.
    let mut runs = Vec::new();
    for (ts, files) in &groups {
        let args = scu_args(port, "MODALITY", "DEID", &[proposal(ts), "-nh"], files);
        let tool = storescu.clone();
        runs.push((
            files.clone(),
            tokio::spawn(async move { run_tool(&tool, &args).await }),
        ));
    }
    let mut verdicts: BTreeMap<PathBuf, String> = BTreeMap::new();
    for (files, handle) in runs {
        let r = handle.await.unwrap();
        let responses = store_responses(&r.log);
        assert_eq!(
            responses.len(),
            files.len(),
            "one response per file:\n{}",
            r.log
        );
        assert!(
            !r.log.contains("Abort"),
            "no association was aborted:\n{}",
            r.log
        );
        verdicts.extend(responses);
    }
    let stored: Vec<&PathBuf> = verdicts
        .iter()
        .filter(|(_, v)| *v == "Success")
        .map(|(f, _)| f)
        .collect();
    let refused = verdicts.len() - stored.len();
    assert!(
        stored.len() >= 20,
        "most of the corpus files are stored: {verdicts:#?}"
    );
    for (f, v) in &verdicts {
        assert!(
            v == "Success" || v.starts_with("Error") || v.starts_with("Failure"),
            "{}: {v}",
            f.display()
        );
    }

    // Every stored instance reaches the folder destination: one audit `delivered` line each
    // (an instance without a Study Instance UID is refused at ingest, never acknowledged and
    // dead-lettered). The corpus holds the same instance in several syntaxes, so the files in
    // the folder may be fewer.
    let audit_path = gw.dir.path().join("data/audit.jsonl");
    let count = |event: &str| {
        std::fs::read_to_string(&audit_path)
            .unwrap_or_default()
            .matches(&format!("\"event\":\"{event}\""))
            .count()
    };
    for _ in 0..600 {
        if count("delivered") + count("dead_lettered") >= stored.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(count("delivered"), stored.len());
    assert_eq!(
        count("dead_lettered"),
        0,
        "{}",
        std::fs::read_to_string(&audit_path).unwrap()
    );
    let delivered = dcm_files(&gw.dir.path().join("data/out"));
    assert!(!delivered.is_empty() && delivered.len() <= stored.len());
    let mut originals = Vec::new();
    for f in &stored {
        let bytes = std::fs::read(f).unwrap();
        let (_, _, instance) = describe(&bytes).unwrap();
        if !instance.is_empty() {
            originals.push(instance);
        }
        // Names long and varied enough not to occur in pixel bytes by chance ("BBBBBBB" does).
        let distinctive = |n: &String| {
            n.len() >= 6 && n.chars().collect::<std::collections::BTreeSet<_>>().len() >= 4
        };
        if let Some(name) = text_of(&bytes, 0x0010_0010).filter(distinctive) {
            originals.push(name);
        }
    }
    let contains =
        |hay: &[u8], needle: &str| hay.windows(needle.len()).any(|w| w == needle.as_bytes());
    for f in &delivered {
        let bytes = std::fs::read(f).unwrap();
        if let Some(removed) = text_of(&bytes, 0x0012_0062) {
            assert_eq!(removed, "YES", "{}", f.display());
        }
        for o in &originals {
            assert!(
                !contains(&bytes, o),
                "{} carries an original value",
                f.display()
            );
        }
    }

    // The SCP's counters in /metrics.
    let metrics = {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(gw.http).await.unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).await.unwrap();
        text
    };
    let value = |name: &str| -> u64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} in /metrics"))
            .trim()
            .parse()
            .unwrap()
    };
    assert_eq!(
        value("dicom_deid_dimse_associations_accepted_total"),
        groups.len() as u64 + 1
    );
    assert_eq!(value("dicom_deid_dimse_associations_rejected_total"), 1);
    assert_eq!(value("dicom_deid_dimse_echoes_total"), 1);
    assert_eq!(
        value("dicom_deid_dimse_stores_succeeded_total"),
        stored.len() as u64
    );
    assert_eq!(
        value("dicom_deid_dimse_stores_refused_total"),
        refused as u64
    );
    // Every association's receive memory was given back; the budget defaults to the in-flight
    // bytes (384 MiB).
    assert_eq!(value("dicom_deid_dimse_receiving_bytes"), 0);
    assert_eq!(value("dicom_deid_dimse_receiving_max_bytes"), 384 << 20);

    // Audit: queued per stored instance, rejected per refusal, all with the calling AE title;
    // no original value.
    let dir = gw.stop().await;
    let audit = std::fs::read_to_string(dir.path().join("data/audit.jsonl")).unwrap();
    let mut queued = 0;
    let mut rejected = 0;
    for line in audit.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let from_dimse = v["calling_ae"] == "MODALITY";
        match v["event"].as_str().unwrap() {
            "queued" => {
                assert!(from_dimse, "{line}");
                queued += 1;
            }
            "rejected" => {
                assert!(from_dimse, "{line}");
                assert!(v["reason"].as_str().is_some_and(|r| !r.is_empty()));
                rejected += 1;
            }
            "received" => assert!(from_dimse, "{line}"),
            _ => {}
        }
        for o in &originals {
            assert!(
                !line.contains(o.as_str()),
                "the audit carries an original value"
            );
        }
    }
    assert_eq!(queued, stored.len());
    assert_eq!(rejected, refused);
}

#[test]
fn the_readme_dimse_example_is_valid() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let start = readme
        .find("```toml\n[dimse]")
        .expect("the README has a [dimse] example")
        + 8;
    let end = start + readme[start..].find("```").unwrap();
    let raw = RawConfig::from_toml(&readme[start..end], "README.md").unwrap();
    let config = raw
        .validate(Some(Path::new("/etc/dicom-deid/gateway.toml")))
        .unwrap();
    let dimse = config.dimse.expect("[dimse] is on");
    assert_eq!(dimse.scp.ae_title, "DEID");
    let tls = dimse.tls.expect("the example turns TLS on");
    assert_eq!(tls.cert_file, Path::new("/etc/dicom-deid/dimse.pem"));
    assert!(tls.client_ca_file.is_some());
    assert_eq!(dimse.scp.peers[0].ae_title, "PACS");
    assert_eq!(
        dimse.scp.peers[0].addresses,
        ["10.1.2.3".parse::<std::net::IpAddr>().unwrap()]
    );
}

/// `echoscu`/`storescu` arguments for TLS: `+tls KEY CERT` (or `+tla`, no client certificate)
/// and `+cf CA` to verify the gateway.
fn tls_args<'a>(client: Option<&'a (PathBuf, PathBuf)>, ca: &'a Path) -> Vec<&'a str> {
    let mut a = match client {
        Some((cert, key)) => vec!["+tls", key.to_str().unwrap(), cert.to_str().unwrap()],
        None => vec!["+tla"],
    };
    a.extend(["+cf", ca.to_str().unwrap()]);
    a
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_dicom_tls_only_clients_with_a_certificate_from_the_configured_ca_get_in() {
    let (Some(storescu), Some(echoscu)) = (dcmtk("storescu"), dcmtk("echoscu")) else {
        return;
    };
    let Some(groups) = corpus_groups(4) else {
        return;
    };
    let pki_dir = tempfile::tempdir().unwrap();
    let pki = support::Pki::new(pki_dir.path());
    let client = pki.client_cert("modality");
    let rogue_dir = tempfile::tempdir().unwrap();
    let rogue_ca = support::Pki::new(rogue_dir.path());
    let rogue = rogue_ca.client_cert("rogue");
    let gw = start(&format!(
        "tls_cert_file = {:?}\ntls_key_file = {:?}\ntls_client_ca_file = {:?}\n",
        pki.cert, pki.key, pki.ca
    ))
    .await;
    let port = gw.dimse_port;
    let echo = |extra: Vec<&str>| scu_args(port, "MODALITY", "DEID", &extra, &[]);

    let good = run_tool(&echoscu, &echo(tls_args(Some(&client), &pki.ca))).await;
    assert!(
        good.ok,
        "a client certificate from the CA gets in:\n{}",
        good.log
    );
    let plain = run_tool(&echoscu, &echo(vec![])).await;
    assert!(!plain.ok, "a plain DICOM client is refused:\n{}", plain.log);
    let other_ca = run_tool(&echoscu, &echo(tls_args(Some(&rogue), &pki.ca))).await;
    assert!(
        !other_ca.ok,
        "a certificate from another CA is refused:\n{}",
        other_ca.log
    );
    let no_cert = run_tool(&echoscu, &echo(tls_args(None, &pki.ca))).await;
    assert!(
        !no_cert.ok,
        "no client certificate is refused:\n{}",
        no_cert.log
    );
    for refused in [&plain, &other_ca, &no_cert] {
        assert!(
            refused.log.contains("Association Request Failed"),
            "never associated:\n{}",
            refused.log
        );
    }
    // TLS does not replace the AE title check.
    let stranger = run_tool(
        &echoscu,
        &scu_args(
            port,
            "STRANGER",
            "DEID",
            &tls_args(Some(&client), &pki.ca),
            &[],
        ),
    )
    .await;
    assert!(
        stranger.log.contains("Calling AE Title Not Recognized"),
        "{}",
        stranger.log
    );

    // storescu over TLS: every file answered, the successes delivered de-identified.
    let files = groups["1.2.840.10008.1.2.1"].clone();
    let mut extra = tls_args(Some(&client), &pki.ca);
    extra.extend(["-xe", "-nh"]);
    let sent = run_tool(
        &storescu,
        &scu_args(port, "MODALITY", "DEID", &extra, &files),
    )
    .await;
    let responses = store_responses(&sent.log);
    assert_eq!(responses.len(), files.len(), "{}", sent.log);
    let stored = responses.iter().filter(|(_, v)| v == "Success").count();
    assert!(stored >= 1, "{}", sent.log);
    assert!(!sent.log.contains("Abort"), "{}", sent.log);
    let audit_path = gw.dir.path().join("data/audit.jsonl");
    let delivered = || {
        std::fs::read_to_string(&audit_path)
            .unwrap_or_default()
            .matches("\"event\":\"delivered\"")
            .count()
    };
    for _ in 0..300 {
        if delivered() >= stored {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(delivered(), stored);
    for f in dcm_files(&gw.dir.path().join("data/out")) {
        let bytes = std::fs::read(f).unwrap();
        assert_eq!(text_of(&bytes, 0x0012_0062).as_deref(), Some("YES"));
    }

    assert_eq!(
        counter(gw.http, "dicom_deid_dimse_associations_accepted_total").await,
        2
    );
    assert_eq!(
        counter(gw.http, "dicom_deid_dimse_associations_rejected_total").await,
        4
    );
    gw.stop().await;

    // Without tls_client_ca_file, a client without a certificate gets in; plain still not.
    let gw = start(&format!(
        "tls_cert_file = {:?}\ntls_key_file = {:?}\n",
        pki.cert, pki.key
    ))
    .await;
    let echo = |extra: Vec<&str>| scu_args(gw.dimse_port, "MODALITY", "DEID", &extra, &[]);
    let anonymous = run_tool(&echoscu, &echo(tls_args(None, &pki.ca))).await;
    assert!(anonymous.ok, "{}", anonymous.log);
    let plain = run_tool(&echoscu, &echo(vec![])).await;
    assert!(!plain.ok, "{}", plain.log);
    gw.stop().await;
}
