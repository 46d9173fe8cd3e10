//! The folder sink, end to end: spool → forwarder → files + audit.

mod common;

use std::time::Duration;

use common::{meta, Env};
use dicom_deid_forward::{Destination, RetryPolicy, Sink};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivers_every_instance_of_two_studies_to_the_folder() {
    let env = Env::new();
    let out = env.path().join("out");
    let mut expected = Vec::new();
    for (study, n) in [("2.25.100", 7), ("2.25.200", 5)] {
        for i in 0..n {
            let sop = format!("{study}.{i}");
            let data = format!("DICM bytes of {sop}").repeat(i + 1).into_bytes();
            let id = env.put("local", &meta(study, &sop), &data);
            expected.push((id, study, sop, data));
        }
    }
    let mut local = Destination::new("local", Sink::Folder { dir: out.clone() });
    local.batch_max_count = 3; // several batches per study
    let running = env.start(vec![local]);
    running.notifier.notify("local");
    env.drained("local").await;
    running.stop().await;

    for (_, study, sop, data) in &expected {
        let path = out.join(study).join(format!("{sop}.dcm"));
        assert_eq!(&std::fs::read(&path).unwrap(), data, "{}", path.display());
    }
    let files: usize = std::fs::read_dir(&out)
        .unwrap()
        .map(|d| std::fs::read_dir(d.unwrap().path()).unwrap().count())
        .sum();
    assert_eq!(files, 12, "no stray (temporary) files");
    let depth = env.spool.depth();
    assert_eq!((depth.entries, depth.dead_entries), (0, 0));

    let delivered = env.audit_events("delivered");
    assert_eq!(delivered.len(), 12);
    assert_eq!(env.verify_audit(), 12);
    for (id, study, sop, _) in &expected {
        let line = delivered
            .iter()
            .find(|l| l["instance"] == id.to_string())
            .unwrap_or_else(|| panic!("no delivered line for {id}"));
        assert_eq!(line["destination"], "local");
        assert_eq!(line["route"], "research");
        assert_eq!(line["profile"], "basic");
        assert_eq!(line["profile_version"], "3");
        assert_eq!(line["key_id"], "key-2026");
        assert_eq!(line["new_uids"]["study_uid"], *study);
        assert_eq!(line["new_uids"]["sop_uid"], **sop);
        assert_eq!(line["original"]["sop_uid"], format!("h-sop-{sop}"));
        assert!(line["timings_ms"]["queue_to_delivery"].is_number());
        assert!(
            line.get("destination_status").is_none(),
            "a folder has no status"
        );
    }
    let get = |f: fn(&dicom_deid_forward::Metrics) -> &std::sync::atomic::AtomicU64| env.metric(f);
    assert_eq!(get(|m| &m.delivered), 12);
    assert_eq!(get(|m| &m.latency_count), 12);
    assert_eq!(get(|m| &m.dead_lettered), 0);
    let bytes: u64 = expected.iter().map(|e| e.3.len() as u64).sum();
    assert_eq!(get(|m| &m.delivered_bytes), bytes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_entry_is_dead_lettered_and_the_rest_delivered() {
    let env = Env::new();
    let out = env.path().join("out");
    let ids: Vec<_> = (0..4)
        .map(|i| {
            env.put(
                "local",
                &meta("2.25.5", &format!("2.25.5.{i}")),
                b"good data",
            )
        })
        .collect();
    // Damage the data (not the header) of the second entry: its checksum no longer matches.
    // The four share a segment, one record after the other (each record starts with its id),
    // so the second entry's data ends where the third record begins.
    let queue = env.path().join("spool/queue/local");
    let path = std::fs::read_dir(&queue)
        .unwrap()
        .map(|i| i.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "seg"))
        .unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    let third = bytes
        .windows(8)
        .position(|w| w == ids[2].as_u64().to_le_bytes())
        .unwrap();
    bytes[third - 1] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();
    // And one whose meta is not a SpoolMeta, one whose UIDs would escape the folder.
    let bad_meta = env
        .spool
        .put("local", "2.25.6", b"{\"not\":\"meta\"}", b"x")
        .unwrap();
    let mut escaping = meta("2.25.7", "2.25.7.1");
    escaping.study_uid = "..".into();
    let json = serde_json::to_vec(&escaping).unwrap();
    let bad_uid = env.spool.put("local", "2.25.7", &json, b"x").unwrap();

    let running = env.start(vec![Destination::new(
        "local",
        Sink::Folder { dir: out.clone() },
    )]);
    running.notifier.notify("local");
    env.drained("local").await;
    running.stop().await;

    assert_eq!(
        env.dead_reason("local", ids[1]),
        "corrupt spool entry: data checksum mismatch"
    );
    assert_eq!(env.dead_reason("local", bad_meta), "spool meta unreadable");
    assert_eq!(
        env.dead_reason("local", bad_uid),
        "invalid UID in spool meta"
    );
    for i in [0, 2, 3] {
        assert!(out.join(format!("2.25.5/2.25.5.{i}.dcm")).exists());
    }
    assert!(!out.join("2.25.5/2.25.5.1.dcm").exists());
    assert_eq!(
        std::fs::read_dir(env.path()).unwrap().count(),
        3,
        "spool, audit, out: nothing escaped"
    );
    assert_eq!(env.audit_events("delivered").len(), 3);
    let dead = env.audit_events("dead_lettered");
    assert_eq!(dead.len(), 3);
    assert!(dead
        .iter()
        .all(|l| l["destination"] == "local" && l["reason"].is_string()));
    assert_eq!(env.verify_audit(), 6);
    assert_eq!(env.spool.depth().dead_entries, 3);
}

#[tokio::test(start_paused = true)]
async fn an_unwritable_folder_is_retried_with_backoff_until_the_budget_is_spent() {
    let env = Env::new();
    // A file where the study folder would go: every write fails.
    let out = env.path().join("out");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("2.25.8"), b"in the way").unwrap();
    let id = env.put("local", &meta("2.25.8", "2.25.8.1"), b"x");
    let mut local = Destination::new("local", Sink::Folder { dir: out.clone() });
    local.retry = RetryPolicy {
        initial: Duration::from_secs(10),
        max: Duration::from_secs(40),
        max_attempts: 4,
    };
    let start = tokio::time::Instant::now();
    let running = env.start(vec![local]);
    env.drained("local").await;
    let took = start.elapsed();
    running.stop().await;

    let reason = env.dead_reason("local", id);
    assert!(
        reason.starts_with("retry budget exhausted after 4 attempts (last: folder write failed"),
        "{reason}"
    );
    assert_eq!(env.metric(|m| &m.retries), 3);
    assert_eq!(env.metric(|m| &m.dead_lettered), 1);
    // Three backoffs of at most 10 + 20 + 40 s (full jitter may make them short), plus polling.
    assert!(took <= Duration::from_secs(70 + 4), "{took:?}");
    let dead = env.audit_events("dead_lettered");
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["new_uids"]["sop_uid"], "2.25.8.1");
}

#[tokio::test(start_paused = true)]
async fn a_notification_wakes_the_loop_before_its_next_poll() {
    let env = Env::new();
    let out = env.path().join("out");
    let running = env.start(vec![Destination::new(
        "local",
        Sink::Folder { dir: out.clone() },
    )]);
    // Let the loop find the spool empty and go to sleep until its next poll.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let start = tokio::time::Instant::now();
    env.put("local", &meta("2.25.9", "2.25.9.1"), b"x");
    running.notifier.notify("local");
    running.notifier.notify("nobody"); // unknown names are ignored
    env.drained("local").await;
    assert!(
        start.elapsed() < dicom_deid_forward::POLL_INTERVAL / 2,
        "{:?}",
        start.elapsed()
    );
    // Without a notification, the next poll finds it.
    env.put("local", &meta("2.25.9", "2.25.9.2"), b"y");
    env.drained("local").await;
    running.stop().await;
    assert!(out.join("2.25.9/2.25.9.2.dcm").exists());
    assert_eq!(env.audit_events("delivered").len(), 2);
}
