//! The STOW-RS sink against a scripted DICOMweb server on 127.0.0.1:0: what each answer does to
//! the spool, the audit and the metrics. Retries run in paused tokio time.

mod common;

use std::time::Duration;

use common::http::{client, data, heartbeat, server, Reply, SOP_CLASS};
use common::{meta, Env};
use dicom_deid_dicomweb::{failure, StowResponse};
use dicom_deid_forward::{Destination, Hold, RetryPolicy, Sink};
use dicom_deid_spool::EntryId;

const MINUTE: Duration = Duration::from_secs(60);

/// Spools instance `i` of `study` (SOP Instance UID `<study>.<i>`) for "pacs".
fn put_instance(env: &Env, study: &str, i: usize) -> (EntryId, String) {
    let sop = format!("{study}.{i}");
    (env.put("pacs", &meta(study, &sop), &data(&sop)), sop)
}

/// Spools `n` instances of `study` for "pacs"; returns (id, sop uid) in order.
fn put_study(env: &Env, study: &str, n: usize) -> Vec<(EntryId, String)> {
    (0..n).map(|i| put_instance(env, study, i)).collect()
}

fn stow(base: &str) -> Destination {
    let mut d = Destination::new(
        "pacs",
        Sink::Stow {
            client: client(base, MINUTE),
        },
    );
    d.retry = RetryPolicy {
        initial: Duration::from_secs(1),
        max: MINUTE,
        max_attempts: 5,
    };
    d
}

#[tokio::test(start_paused = true)]
async fn everything_stored_is_acked_and_audited_once_per_instance() {
    heartbeat();
    let env = Env::new();
    let a = put_study(&env, "2.25.10", 3);
    let b = put_study(&env, "2.25.20", 2);
    let (base, seen) = server(|s, _| Reply::all_stored(s)).await;
    let running = env.start(vec![stow(&base)]);
    running.notifier.notify("pacs");
    env.drained("pacs").await;
    running.stop().await;

    let mut requests: Vec<Vec<String>> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|s| s.uids.clone())
        .collect();
    requests.sort();
    let sops = |v: &[(EntryId, String)]| v.iter().map(|e| e.1.clone()).collect::<Vec<_>>();
    assert_eq!(requests, [sops(&a), sops(&b)], "one request per study");
    assert!(seen
        .lock()
        .unwrap()
        .iter()
        .all(|s| s.path == "/dicom-web/studies"));
    assert_eq!(env.spool.depth().dead_entries, 0);
    let delivered = env.audit_events("delivered");
    assert_eq!(delivered.len(), 5);
    assert!(delivered
        .iter()
        .all(|l| l["destination_status"] == 200 && l["destination"] == "pacs"));
    assert_eq!(env.verify_audit(), 5);
    assert_eq!(env.metric(|m| &m.delivered), 5);
    assert_eq!(env.metric(|m| &m.retries), 0);
}

#[tokio::test(start_paused = true)]
async fn a_202_dead_letters_exactly_the_failed_instance() {
    heartbeat();
    let env = Env::new();
    let ids = put_study(&env, "2.25.30", 3);
    let refused = ids[1].1.clone();
    let (base, seen) = server(move |s, _| {
        let mut r = StowResponse::new();
        for uid in &s.uids {
            if *uid == refused {
                r.failed(SOP_CLASS, uid, failure::DATA_SET_DOES_NOT_MATCH_SOP_CLASS);
            } else {
                r.stored(SOP_CLASS, uid, None);
            }
        }
        assert_eq!(r.status(), 202);
        Reply::stow(&r)
    })
    .await;
    let running = env.start(vec![stow(&base)]);
    running.notifier.notify("pacs");
    env.drained("pacs").await;
    running.stop().await;

    assert_eq!(seen.lock().unwrap().len(), 1, "nothing is sent again");
    assert_eq!(
        env.dead_reason("pacs", ids[1].0),
        "destination refused: FailureReason 0xA900"
    );
    assert_eq!(env.spool.depth().dead_entries, 1);
    let delivered = env.audit_events("delivered");
    let mut instances: Vec<_> = delivered
        .iter()
        .map(|l| l["instance"].as_str().unwrap().to_string())
        .collect();
    instances.sort();
    assert_eq!(instances, [ids[0].0.to_string(), ids[2].0.to_string()]);
    let dead = env.audit_events("dead_lettered");
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["instance"], ids[1].0.to_string());
    assert_eq!(dead[0]["destination_status"], 202);
    assert_eq!(
        dead[0]["reason"],
        "destination refused: FailureReason 0xA900"
    );
    assert_eq!(dead[0]["new_uids"]["sop_uid"], ids[1].1);
    // Delivered and dead-lettered lines carry what ingest recorded in the spool meta, and the
    // destination's answer and timings (issue 4, point 6).
    for line in delivered.iter().chain(&dead) {
        assert_eq!(line["route"], "research", "{line}");
        assert_eq!(line["profile"], "basic", "{line}");
        assert_eq!(line["profile_version"], "3", "{line}");
        assert_eq!(line["key_id"], "key-2026", "{line}");
        assert_eq!(line["original"]["patient_id"], "h-patient", "{line}");
        assert_eq!(line["actions"], serde_json::json!({"remove": 12}), "{line}");
        assert_eq!(line["masked_regions"], 4, "{line}");
        assert_eq!(line["transfer_syntax_in"], "1.2.840.10008.1.2.1", "{line}");
        assert_eq!(line["transfer_syntax_out"], "1.2.840.10008.1.2.1", "{line}");
        assert_eq!(line["destination"], "pacs", "{line}");
        assert!(line["destination_status"].is_u64(), "{line}");
        assert!(line["timings_ms"]["delivery"].is_number(), "{line}");
    }
    assert!(delivered[0]["timings_ms"]["queue_to_delivery"].is_number());
    assert!(dead[0]["timings_ms"]["queue_to_dead_letter"].is_number());
    assert_eq!(env.verify_audit(), 3);
    assert_eq!(
        (
            env.metric(|m| &m.delivered),
            env.metric(|m| &m.dead_lettered)
        ),
        (2, 1)
    );
}

#[tokio::test(start_paused = true)]
async fn a_409_dead_letters_the_named_instance_and_resends_the_unconfirmed_one() {
    heartbeat();
    let env = Env::new();
    let ids = put_study(&env, "2.25.40", 3);
    let (refused, duplicate) = (ids[0].1.clone(), ids[2].1.clone());
    let (base, seen) = server(move |s, n| {
        if n > 0 {
            return Reply::all_stored(s);
        }
        // Names two of three: one refused, one already there; the third is not mentioned.
        let mut r = StowResponse::new();
        r.failed(SOP_CLASS, &refused, failure::CANNOT_UNDERSTAND);
        r.failed(SOP_CLASS, &duplicate, failure::DUPLICATE_SOP_INSTANCE);
        assert_eq!(r.status(), 409);
        Reply::stow(&r)
    })
    .await;
    let running = env.start(vec![stow(&base)]);
    running.notifier.notify("pacs");
    env.drained("pacs").await;
    running.stop().await;

    let requests: Vec<Vec<String>> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|s| s.uids.clone())
        .collect();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests[1],
        [ids[1].1.clone()],
        "only the unconfirmed instance is sent again"
    );
    assert_eq!(
        env.dead_reason("pacs", ids[0].0),
        "destination refused: FailureReason 0xC000"
    );
    let delivered = env.audit_events("delivered");
    assert_eq!(delivered.len(), 2, "the duplicate counts as delivered");
    assert!(delivered
        .iter()
        .any(|l| l["instance"] == ids[2].0.to_string() && l["destination_status"] == 409));
    assert!(delivered
        .iter()
        .any(|l| l["instance"] == ids[1].0.to_string() && l["destination_status"] == 200));
    assert_eq!(env.metric(|m| &m.retries), 1);
    assert_eq!(env.verify_audit(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_503_is_retried_after_retry_after_and_then_delivered() {
    heartbeat();
    let env = Env::new();
    let ids = put_study(&env, "2.25.50", 4);
    let (base, seen) = server(|s, n| match n {
        0 => Reply::Http(503, vec![("Retry-After", "120".into())], Vec::new()),
        1 => Reply::Http(500, vec![], Vec::new()),
        _ => Reply::all_stored(s),
    })
    .await;
    let running = env.start(vec![stow(&base)]);
    running.notifier.notify("pacs");
    env.drained("pacs").await;
    running.stop().await;

    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3);
    assert!(
        seen.iter().all(|s| s.uids.len() == 4),
        "the whole batch each time"
    );
    assert!(
        seen[1].at - seen[0].at >= Duration::from_secs(120),
        "Retry-After is honoured: {:?}",
        seen[1].at - seen[0].at
    );
    // Second failure: full jitter below min(60 s, 1 s · 2^1) = 2 s, plus at most one poll.
    assert!(seen[2].at - seen[1].at <= Duration::from_secs(2) + Duration::from_millis(1100));
    assert_eq!(
        env.metric(|m| &m.retries),
        8,
        "4 instances, 2 failed attempts"
    );
    assert_eq!(env.metric(|m| &m.delivered), 4);
    assert_eq!(env.spool.depth().dead_entries, 0);
    let delivered = env.audit_events("delivered");
    assert_eq!(delivered.len(), 4);
    for (id, _) in &ids {
        assert!(delivered.iter().any(|l| l["instance"] == id.to_string()));
    }
}

#[tokio::test(start_paused = true)]
async fn a_400_dead_letters_the_batch() {
    heartbeat();
    let env = Env::new();
    let ids = put_study(&env, "2.25.60", 3);
    let (base, seen) = server(|_, _| Reply::Http(400, vec![], b"bad".to_vec())).await;
    let running = env.start(vec![stow(&base)]);
    running.notifier.notify("pacs");
    env.drained("pacs").await;
    running.stop().await;

    assert_eq!(seen.lock().unwrap().len(), 1);
    for (id, _) in &ids {
        assert_eq!(
            env.dead_reason("pacs", *id),
            "destination refused the request: HTTP 400"
        );
    }
    let dead = env.audit_events("dead_lettered");
    assert_eq!(dead.len(), 3);
    assert!(dead.iter().all(|l| l["destination_status"] == 400));
    assert_eq!(env.metric(|m| &m.dead_lettered), 3);
    assert_eq!(env.metric(|m| &m.delivered), 0);
}

#[tokio::test(start_paused = true)]
async fn a_destination_that_never_recovers_spends_the_budget_then_dead_letters() {
    heartbeat();
    let env = Env::new();
    let ids = put_study(&env, "2.25.70", 2);
    let (base, seen) = server(|_, _| Reply::Http(503, vec![], Vec::new())).await;
    let mut dest = stow(&base);
    dest.retry.max_attempts = 3;
    let running = env.start(vec![dest]);
    running.notifier.notify("pacs");
    env.drained("pacs").await;
    running.stop().await;

    assert_eq!(seen.lock().unwrap().len(), 3, "max_attempts requests");
    for (id, _) in &ids {
        assert_eq!(
            env.dead_reason("pacs", *id),
            "retry budget exhausted after 3 attempts (last: HTTP 503)"
        );
    }
    let dead = env.audit_events("dead_lettered");
    assert_eq!(dead.len(), 2);
    assert!(dead.iter().all(|l| l["destination_status"] == 503));
    assert_eq!(env.metric(|m| &m.retries), 4);
    assert_eq!(env.metric(|m| &m.dead_lettered), 2);
    assert_eq!(env.verify_audit(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_refused_connection_is_retried_like_any_network_error() {
    heartbeat();
    let env = Env::new();
    let ids = put_study(&env, "2.25.75", 1);
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut dest = stow(&format!("http://127.0.0.1:{port}/dicom-web/"));
    dest.retry.max_attempts = 2;
    let running = env.start(vec![dest]);
    env.drained("pacs").await;
    running.stop().await;
    assert_eq!(
        env.dead_reason("pacs", ids[0].0),
        "retry budget exhausted after 2 attempts (last: network error)"
    );
    let dead = env.audit_events("dead_lettered");
    assert!(dead[0].get("destination_status").is_none());
}

#[tokio::test(start_paused = true)]
async fn shutdown_waits_for_the_batch_in_flight_and_keeps_what_was_not_delivered() {
    heartbeat();
    let env = Env::new();
    let ids = put_study(&env, "2.25.80", 6);
    // The first batch is stored; then the destination hangs.
    let (base, seen) = server(|s, n| {
        if n == 0 {
            Reply::all_stored(s)
        } else {
            Reply::Hang
        }
    })
    .await;
    let mut dest = Destination::new(
        "pacs",
        Sink::Stow {
            client: client(&base, Duration::from_secs(30)),
        },
    );
    dest.batch_max_count = 2;
    dest.concurrency = 1;
    let running = env.start(vec![dest]);
    running.notifier.notify("pacs");
    while seen.lock().unwrap().len() < 2 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // The second batch is in flight: shutdown lets it end (the client's timeout), leases nothing
    // more, and the entries not delivered stay queued, none of them leased.
    running.stop().await;
    assert_eq!(seen.lock().unwrap().len(), 2);
    let depth = env.spool.depth();
    assert_eq!((depth.entries, depth.leased, depth.dead_entries), (4, 0, 0));
    assert_eq!(env.audit_events("delivered").len(), 2);
    assert_eq!(
        env.metric(|m| &m.retries),
        2,
        "the timed-out batch was handed back"
    );

    // "Restart": a new forwarder on the same spool, against a destination that works.
    let (base, seen) = server(|s, _| Reply::all_stored(s)).await;
    let running = env.start(vec![stow(&base)]);
    env.drained("pacs").await;
    running.stop().await;
    let mut resent: Vec<String> = seen
        .lock()
        .unwrap()
        .iter()
        .flat_map(|s| s.uids.clone())
        .collect();
    resent.sort();
    let expected: Vec<String> = ids[2..].iter().map(|e| e.1.clone()).collect();
    assert_eq!(resent, expected);
    assert_eq!(env.audit_events("delivered").len(), 6);
    assert_eq!(env.verify_audit(), 6);
}

#[tokio::test(start_paused = true)]
async fn dropping_the_forwarder_mid_delivery_releases_its_leases() {
    heartbeat();
    let env = Env::new();
    put_study(&env, "2.25.90", 3);
    let (base, seen) = server(|_, _| Reply::Hang).await;
    let mut running = env.start(vec![stow(&base)]);
    running.notifier.notify("pacs");
    while seen.lock().unwrap().is_empty() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(env.spool.depth().leased, 3);
    running.signal();
    // A shutdown bounded more tightly than the client's timeout: give up on the batch.
    let stopped = tokio::time::timeout(Duration::from_secs(5), &mut *running.task()).await;
    assert!(stopped.is_err(), "run waits for the batch in flight");
    running.task().abort();
    let _ = running.task().await;
    while env.spool.depth().leased > 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let depth = env.spool.depth();
    assert_eq!((depth.entries, depth.dead_entries), (3, 0));
    assert!(env.audit_lines().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_destination_refusing_access_keeps_the_queue_without_spending_the_budget() {
    heartbeat();
    let env = Env::new();
    let ids = put_study(&env, "2.25.95", 2);
    let fixed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let is_fixed = fixed.clone();
    let (base, seen) = server(move |s, _| {
        if is_fixed.load(std::sync::atomic::Ordering::SeqCst) {
            Reply::all_stored(s)
        } else {
            Reply::Http(401, vec![], Vec::new())
        }
    })
    .await;
    let mut dest = stow(&base);
    dest.retry.max_attempts = 2;
    let running = env.start(vec![dest]);
    running.notifier.notify("pacs");
    while seen.lock().unwrap().len() < 4 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Refused four times with a budget of two: nothing dead-lettered, nothing counted.
    let depth = env.spool.depth();
    assert_eq!((depth.entries, depth.dead_entries), (2, 0));
    assert_eq!(env.metric(|m| &m.retries), 0);
    assert!(env.audit_lines().is_empty());
    // The backoff grows while the destination keeps refusing (1, 2, 4 s ceilings).
    let at: Vec<_> = seen.lock().unwrap().iter().map(|s| s.at).collect();
    assert!(
        at[3] - at[2] >= Duration::from_secs(4),
        "{:?}",
        at[3] - at[2]
    );

    fixed.store(true, std::sync::atomic::Ordering::SeqCst);
    env.drained("pacs").await;
    running.stop().await;
    let delivered = env.audit_events("delivered");
    assert_eq!(delivered.len(), 2);
    for (id, _) in &ids {
        assert!(delivered.iter().any(|l| l["instance"] == id.to_string()));
    }
}

#[tokio::test(start_paused = true)]
async fn at_most_concurrency_batches_are_in_flight() {
    heartbeat();
    let env = Env::new();
    for study in ["2.25.301", "2.25.302", "2.25.303"] {
        put_study(&env, study, 2);
    }
    let (base, seen) = server(|_, _| Reply::Hang).await;
    let mut dest = stow(&base);
    dest.concurrency = 2;
    let mut running = env.start(vec![dest]);
    running.notifier.notify("pacs");
    while seen.lock().unwrap().len() < 2 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        seen.lock().unwrap().len(),
        2,
        "the third study waits for a slot"
    );
    assert_eq!(env.spool.depth().leased, 4);
    running.task().abort();
    let _ = running.task().await;
}

/// Spools `sops` of study 2.25.30 for "pacs" and notifies the running forwarder.
fn put_and_notify(env: &Env, running: &common::Running, sops: std::ops::Range<usize>) {
    for i in sops {
        put_instance(env, "2.25.30", i);
        running.notifier.notify("pacs");
    }
}

#[tokio::test(start_paused = true)]
async fn instances_arriving_within_the_batch_wait_go_in_one_request() {
    heartbeat();
    let (base, seen) = server(|s, _| Reply::all_stored(s)).await;
    let requests = || -> Vec<usize> { seen.lock().unwrap().iter().map(|s| s.uids.len()).collect() };

    // With a wait of one second, an instance and four more half a second later: one batch.
    let env = Env::new();
    let mut dest = stow(&base);
    dest.batch_wait = Duration::from_secs(1);
    let running = env.start(vec![dest]);
    put_and_notify(&env, &running, 0..1);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(requests().is_empty(), "nothing is sent during the wait");
    put_and_notify(&env, &running, 1..5);
    env.drained("pacs").await;
    running.stop().await;
    assert_eq!(requests(), [5]);
    assert_eq!(env.metric(|m| &m.delivered), 5);

    // Without a wait, the first instance goes alone as soon as it is queued.
    seen.lock().unwrap().clear();
    let env = Env::new();
    let mut dest = stow(&base);
    dest.batch_wait = Duration::ZERO;
    let running = env.start(vec![dest]);
    put_and_notify(&env, &running, 0..1);
    while requests().is_empty() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    put_and_notify(&env, &running, 1..5);
    env.drained("pacs").await;
    running.stop().await;
    assert_eq!(requests(), [1, 4]);
    assert_eq!(env.metric(|m| &m.delivered), 5);
}

#[tokio::test(start_paused = true)]
async fn after_a_full_batch_the_next_is_leased_without_waiting() {
    heartbeat();
    let (base, seen) = server(|s, _| Reply::all_stored(s)).await;
    let env = Env::new();
    put_study(&env, "2.25.40", 7);
    let mut dest = stow(&base);
    dest.batch_max_count = 3;
    dest.concurrency = 1;
    dest.batch_wait = Duration::from_secs(3600);
    let running = env.start(vec![dest]);
    running.notifier.notify("pacs");
    // One wait of an hour before the first lease (the loop was idle); the two full batches
    // that follow it take none, the last one (not full after a full one) goes at once too.
    let start = tokio::time::Instant::now();
    env.drained("pacs").await;
    let waited = start.elapsed();
    running.stop().await;
    let sizes: Vec<usize> = seen.lock().unwrap().iter().map(|s| s.uids.len()).collect();
    assert_eq!(sizes, [3, 3, 1]);
    assert!(
        waited < Duration::from_secs(2 * 3600),
        "one batch wait in all, not one per batch: {waited:?} of virtual time"
    );
}

#[tokio::test(start_paused = true)]
async fn deliveries_give_way_to_arriving_instances_within_bounds() {
    heartbeat();
    let (base, seen) = server(|s, _| Reply::all_stored(s)).await;
    let requests = || seen.lock().unwrap().len();

    // Default hold (200 ms quiet, 10 s at most): 40 instances arriving 50 ms apart (2 s of
    // virtual time) — nothing is leased while they arrive; all go after the gap.
    let env = Env::new();
    let mut dest = stow(&base);
    dest.batch_max_count = 10;
    assert_eq!(dest.hold, Hold::default());
    let running = env.start(vec![dest.clone()]);
    for i in 0..40 {
        put_and_notify(&env, &running, i..i + 1);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(requests(), 0, "a delivery while instance {i} arrived");
    }
    env.drained("pacs").await;
    running.stop().await;
    assert_eq!(requests(), 4);
    assert_eq!(env.metric(|m| &m.delivered), 40);

    // A hold lasts at most `max`: a stream without gaps is delivered while it arrives.
    seen.lock().unwrap().clear();
    let env = Env::new();
    dest.hold.max = Duration::from_secs(1);
    let running = env.start(vec![dest.clone()]);
    let mut first_during = None;
    for i in 0..60 {
        put_and_notify(&env, &running, i..i + 1);
        tokio::time::sleep(Duration::from_millis(50)).await;
        if first_during.is_none() && requests() > 0 {
            first_during = Some(i);
        }
    }
    let first_during = first_during.expect("delivered while arriving, once the hold ended");
    assert!(
        first_during >= 19,
        "delivered before the 1 s hold ended: at instance {first_during}"
    );
    env.drained("pacs").await;
    running.stop().await;
    assert_eq!(env.metric(|m| &m.delivered), 60);

    // No hold once the spool holds `max_bytes`, nor with a quiet time of zero: delivered while
    // arriving from the start.
    let over_the_bound = Hold {
        max_bytes: 1,
        ..Hold::default()
    };
    for hold in [over_the_bound, Hold::NONE] {
        seen.lock().unwrap().clear();
        let env = Env::new();
        dest.hold = hold;
        let running = env.start(vec![dest.clone()]);
        put_and_notify(&env, &running, 0..1);
        for i in 1..10 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            put_and_notify(&env, &running, i..i + 1);
        }
        assert!(
            requests() > 0,
            "nothing delivered while arriving with {hold:?}"
        );
        env.drained("pacs").await;
        running.stop().await;
        assert_eq!(env.metric(|m| &m.delivered), 10);
    }
}
