//! DIMSE instances written into the spool while they arrive (`streamed.rs`): DCMTK `storescu`
//! sends the corpus (each file in its own transfer syntax) into the gateway with its default
//! folder destination. Instances whose pixel data passes through are streamed (counted by
//! `dicom_deid_instances_streamed_total`), the others take the whole path, and either way the
//! delivered file is byte for byte what the engine makes of the instance as a whole, with the
//! gateway's key. DCMTK or the corpus missing: a loud skip (a failure under CI=true).

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{counter, InProcess};
use dicom_deid_dimse::testing::{
    corpus_groups, dcmtk, describe, proposal, run_tool, scu_args, store_responses,
};
use dicom_deid_engine::{Engine, Key, Profile};
use dicom_deid_wire::testing::dcm_files;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_and_whole_instances_are_delivered_exactly_as_the_engine_makes_them() {
    let Some(storescu) = dcmtk("storescu") else {
        return;
    };
    let Some(groups) = corpus_groups(6) else {
        return;
    };
    let gw = InProcess::start(tempfile::tempdir().unwrap(), |dimse_port| {
        format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = \"data\"\n\n[dimse]\nlisten = \"127.0.0.1:{dimse_port}\"\n\
             [[dimse.peers]]\nae_title = \"MODALITY\"\nroute = \"default\"\n"
        )
    })
    .await;

    // One transfer syntax after the other, one association each; -nh: go on after a refusal.
    let mut stored = Vec::new();
    for (ts, files) in &groups {
        let args = scu_args(
            gw.dimse_port,
            "MODALITY",
            "DEID",
            &[proposal(ts), "-nh"],
            files,
        );
        let r = run_tool(&storescu, &args).await;
        let responses = store_responses(&r.log);
        assert_eq!(responses.len(), files.len(), "{}", r.log);
        stored.extend(
            responses
                .into_iter()
                .filter(|(_, v)| v == "Success")
                .map(|(f, _)| f),
        );
    }
    assert!(stored.len() >= 20, "most of the corpus is stored");
    let streamed = counter(gw.http, "dicom_deid_instances_streamed_total").await;
    let queued = counter(gw.http, "dicom_deid_instances_queued_total").await;
    assert_eq!(queued, stored.len() as u64);
    println!("{streamed} of {queued} instances streamed");
    assert!(
        streamed >= 10,
        "only {streamed} of {queued} instances were streamed"
    );
    assert!(
        streamed < queued,
        "some instances need the whole path (pixel clean, deflate)"
    );

    let audit_path = gw.dir.path().join("data/audit.jsonl");
    let delivered_lines = || {
        std::fs::read_to_string(&audit_path)
            .unwrap_or_default()
            .matches("\"event\":\"delivered\"")
            .count()
    };
    for _ in 0..600 {
        if delivered_lines() >= stored.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(delivered_lines(), stored.len());

    // What the engine makes of each stored file, whole, with the gateway's key and profile.
    let key = Key::load(&gw.dir.path().join("data/key")).unwrap();
    let engine = Engine::new(Profile::builtin("basic").unwrap(), key);
    let delivered: BTreeSet<Vec<u8>> = dcm_files(&gw.dir.path().join("data/out"))
        .iter()
        .map(|f| std::fs::read(f).unwrap())
        .collect();
    // Compared: the stored files in little endian without compression (storescu sends those
    // as they are; it re-encodes some others) whose SOP Instance UID no other stored file has
    // (the corpus holds some instances in several syntaxes, and the folder keeps one file per
    // UID). Streaming applies to native pixel data only, so every streamed instance is among
    // them.
    let described: Vec<_> = stored
        .iter()
        .map(|f| {
            let bytes = std::fs::read(f).unwrap();
            let (ts, _, uid) = describe(&bytes).unwrap();
            (bytes, ts, uid)
        })
        .collect();
    let mut compared = 0;
    for (f, (input, ts, uid)) in stored.iter().zip(&described) {
        let unique = described.iter().filter(|(_, _, u)| u == uid).count() == 1;
        if !unique || !["1.2.840.10008.1.2", "1.2.840.10008.1.2.1"].contains(&ts.as_str()) {
            continue;
        }
        let Ok(expected) = engine.process(input) else {
            continue;
        };
        assert!(
            delivered.contains(&expected.bytes),
            "{}: the delivered instance differs from the engine's output",
            f.display()
        );
        compared += 1;
    }
    println!("{compared} instances compared");
    assert!(compared >= streamed, "only {compared} instances compared");
    gw.stop().await;
}
