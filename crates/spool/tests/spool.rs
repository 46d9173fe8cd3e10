//! Behaviour of the spool through its public API: round trips, grouping, caps, ordering,
//! concurrency, restart recovery, corruption, the size limit and path safety.

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier, Mutex};

use dicom_deid_spool::{EntryId, Spool, SpoolConfig, SpoolError};

const BIG: u64 = 1 << 30;

fn open(dir: &Path) -> Spool {
    Spool::open(dir, SpoolConfig { max_bytes: BIG }).unwrap()
}

fn files_under(dir: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for item in std::fs::read_dir(&d).unwrap() {
            let item = item.unwrap();
            let path = item.path();
            if item.file_type().unwrap().is_dir() {
                stack.push(path.clone());
            }
            out.insert(path.strip_prefix(dir).unwrap().to_owned());
        }
    }
    out
}

fn entry_path(root: &Path, destination: &str, id: EntryId) -> PathBuf {
    root.join("queue")
        .join(destination)
        .join(format!("{id}.entry"))
}

/// The segment files of `destination`'s queue, oldest first.
fn segments(root: &Path, destination: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(root.join("queue").join(destination))
        .unwrap()
        .map(|i| i.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    out.sort();
    out
}

/// Whether the bytes of `data` are in one of `destination`'s segments.
fn in_a_segment(root: &Path, destination: &str, data: &[u8]) -> bool {
    segments(root, destination).iter().any(|p| {
        std::fs::read(p)
            .unwrap()
            .windows(data.len())
            .any(|w| w == data)
    })
}

#[test]
fn put_lease_data_ack_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let spool = open(dir.path());
    let id = spool.put("dest", "g1", b"{\"n\":1}", b"hello").unwrap();
    assert!(in_a_segment(dir.path(), "dest", b"hello"));
    assert!(
        !entry_path(dir.path(), "dest", id).exists(),
        "no file per entry"
    );
    assert_eq!(spool.depth().entries, 1);

    let leases = spool.lease("dest", 10, BIG).unwrap();
    assert_eq!(leases.len(), 1);
    let lease = leases.into_iter().next().unwrap();
    assert_eq!(lease.id(), id);
    assert_eq!(lease.group(), "g1");
    assert_eq!(lease.destination(), "dest");
    assert_eq!(lease.meta(), b"{\"n\":1}");
    assert_eq!(lease.data_len(), 5);
    assert_eq!(lease.attempts(), 0);
    assert_eq!(lease.data().unwrap(), b"hello");
    assert_eq!(spool.depth().leased, 1);

    lease.ack().unwrap();
    let stats = spool.depth();
    assert_eq!((stats.entries, stats.bytes, stats.leased), (0, 0, 0));
    assert!(spool.lease("dest", 10, BIG).unwrap().is_empty());
    // The ack is durable: after a restart the entry is not queued again, and its emptied
    // segment is deleted.
    drop(spool);
    let spool = open(dir.path());
    assert_eq!(spool.depth().entries, 0);
    assert!(segments(dir.path(), "dest").is_empty());
}

#[test]
fn lease_of_unknown_destination_is_empty() {
    let dir = tempfile::tempdir().unwrap();
    let spool = open(dir.path());
    spool.put("a", "g", b"", b"x").unwrap();
    assert!(spool.lease("b", 10, BIG).unwrap().is_empty());
    assert!(spool.lease("a", 0, BIG).unwrap().is_empty());
}

#[test]
fn destinations_are_separate_queues() {
    let dir = tempfile::tempdir().unwrap();
    let spool = open(dir.path());
    let a = spool.put("a", "g", b"", b"for a").unwrap();
    let b = spool.put("b", "g", b"", b"for b").unwrap();
    let stats = spool.depth();
    assert_eq!(stats.destinations["a"].entries, 1);
    assert_eq!(stats.destinations["b"].entries, 1);
    let la = spool.lease("a", 10, BIG).unwrap();
    let lb = spool.lease("b", 10, BIG).unwrap();
    assert_eq!(la.iter().map(|l| l.id()).collect::<Vec<_>>(), [a]);
    assert_eq!(lb.iter().map(|l| l.id()).collect::<Vec<_>>(), [b]);
    assert_eq!(lb[0].data().unwrap(), b"for b");
}

#[test]
fn ids_increase_and_sort_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let spool = open(dir.path());
    let ids: Vec<EntryId> = (0..100)
        .map(|_| spool.put("d", "g", b"", b"x").unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
    let names: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    assert_eq!(ids[0].to_string().parse::<EntryId>().unwrap(), ids[0]);
}

#[test]
fn one_group_per_lease_oldest_group_first() {
    let dir = tempfile::tempdir().unwrap();
    let spool = open(dir.path());
    // Interleaved groups: A is oldest, then B, then C.
    let a1 = spool.put("d", "A", b"", b"a1").unwrap();
    let b1 = spool.put("d", "B", b"", b"b1").unwrap();
    let a2 = spool.put("d", "A", b"", b"a2").unwrap();
    let c1 = spool.put("d", "C", b"", b"c1").unwrap();
    let b2 = spool.put("d", "B", b"", b"b2").unwrap();
    let a3 = spool.put("d", "A", b"", b"a3").unwrap();

    let first = spool.lease("d", 10, BIG).unwrap();
    assert_eq!(
        first.iter().map(|l| l.id()).collect::<Vec<_>>(),
        [a1, a2, a3]
    );
    assert!(first.iter().all(|l| l.group() == "A"));
    let second = spool.lease("d", 10, BIG).unwrap();
    assert_eq!(second.iter().map(|l| l.id()).collect::<Vec<_>>(), [b1, b2]);
    let third = spool.lease("d", 10, BIG).unwrap();
    assert_eq!(third.iter().map(|l| l.id()).collect::<Vec<_>>(), [c1]);
    assert!(spool.lease("d", 10, BIG).unwrap().is_empty());
    assert_eq!(spool.depth().leased, 6);
}

#[test]
fn count_and_byte_caps() {
    let dir = tempfile::tempdir().unwrap();
    let spool = open(dir.path());
    let ids: Vec<EntryId> = (0..5)
        .map(|_| spool.put("d", "g", b"meta", &[7u8; 100]).unwrap())
        .collect();

    let by_count = spool.lease("d", 2, BIG).unwrap();
    assert_eq!(
        by_count.iter().map(|l| l.id()).collect::<Vec<_>>(),
        ids[..2]
    );
    // 250 bytes of data: two entries of 100 fit, the third would not.
    let by_bytes = spool.lease("d", 10, 250).unwrap();
    assert_eq!(
        by_bytes.iter().map(|l| l.id()).collect::<Vec<_>>(),
        ids[2..4]
    );
    // A single entry larger than the byte cap is still handed out, alone.
    let oversized = spool.lease("d", 10, 10).unwrap();
    assert_eq!(
        oversized.iter().map(|l| l.id()).collect::<Vec<_>>(),
        ids[4..]
    );
}

#[test]
fn leased_entries_are_skipped_and_later_group_members_follow() {
    let dir = tempfile::tempdir().unwrap();
    let spool = open(dir.path());
    let a1 = spool.put("d", "A", b"", b"1").unwrap();
    let held = spool.lease("d", 10, BIG).unwrap();
    assert_eq!(held[0].id(), a1);
    // A new member of a group that is out: handed out in its own lease, never a1 again.
    let a2 = spool.put("d", "A", b"", b"2").unwrap();
    let next = spool.lease("d", 10, BIG).unwrap();
    assert_eq!(next.iter().map(|l| l.id()).collect::<Vec<_>>(), [a2]);
    assert!(spool.lease("d", 10, BIG).unwrap().is_empty());
}

#[test]
fn drop_releases_and_entry_stays_queued() {
    let dir = tempfile::tempdir().unwrap();
    let spool = open(dir.path());
    let id = spool.put("d", "g", b"m", b"data").unwrap();
    {
        let leases = spool.lease("d", 10, BIG).unwrap();
        assert_eq!(leases.len(), 1);
        assert!(spool.lease("d", 10, BIG).unwrap().is_empty());
    }
    assert_eq!(spool.depth().leased, 0);
    let again = spool.lease("d", 10, BIG).unwrap();
    assert_eq!(again[0].id(), id);
    assert_eq!(again[0].attempts(), 0, "a drop is not an attempt");
    assert!(in_a_segment(dir.path(), "d", b"data"));
}

#[test]
fn retry_later_releases_and_counts_attempts() {
    let dir = tempfile::tempdir().unwrap();
    let spool = open(dir.path());
    let id = spool.put("d", "g", b"", b"data").unwrap();
    for expected in 0..3 {
        let lease = spool.lease("d", 1, BIG).unwrap().pop().unwrap();
        assert_eq!(lease.id(), id);
        assert_eq!(lease.attempts(), expected);
        lease.retry_later();
    }
    assert_eq!(spool.depth().entries, 1);
    assert_eq!(spool.depth().leased, 0);
}

#[test]
fn dead_letter_moves_entry_with_reason() {
    let dir = tempfile::tempdir().unwrap();
    let spool = open(dir.path());
    let id = spool.put("d", "g", b"", b"refused").unwrap();
    let lease = spool.lease("d", 1, BIG).unwrap().pop().unwrap();
    lease
        .dead_letter("destination answered 400\nsecond line")
        .unwrap();

    let dead = dir.path().join("dead").join("d");
    let dead_entry = std::fs::read(dead.join(format!("{id}.entry"))).unwrap();
    assert!(dead_entry.ends_with(b"refused"));
    assert_eq!(
        std::fs::read_to_string(dead.join(format!("{id}.reason"))).unwrap(),
        "destination answered 400 second line\n"
    );
    let stats = spool.depth();
    assert_eq!((stats.entries, stats.dead_entries), (0, 1));
    assert_eq!(stats.dead_bytes, dead_entry.len() as u64);
    assert!(spool.lease("d", 10, BIG).unwrap().is_empty());
}

#[test]
fn concurrent_leasers_never_share_an_entry() {
    const ENTRIES: usize = 400;
    const THREADS: usize = 8;
    let dir = tempfile::tempdir().unwrap();
    let spool = open(dir.path());
    let mut all = HashSet::new();
    for i in 0..ENTRIES {
        // Many small groups so that leases are many and contended.
        let group = format!("g{}", i % 37);
        all.insert(spool.put("d", &group, b"", &i.to_le_bytes()).unwrap());
    }

    let seen = Arc::new(Mutex::new(Vec::new()));
    let barrier = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let spool = spool.clone();
            let seen = seen.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                let mut held = Vec::new();
                loop {
                    let leases = spool.lease("d", 3, BIG).unwrap();
                    if leases.is_empty() {
                        break;
                    }
                    seen.lock().unwrap().extend(leases.iter().map(|l| l.id()));
                    // Keep half of them leased (held) so the others must skip them; ack the rest.
                    for (n, lease) in leases.into_iter().enumerate() {
                        if (n + t) % 2 == 0 {
                            held.push(lease);
                        } else {
                            lease.ack().unwrap();
                        }
                    }
                }
                held
            })
        })
        .collect();
    let held: Vec<_> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();

    let seen = seen.lock().unwrap();
    let unique: HashSet<_> = seen.iter().copied().collect();
    assert_eq!(seen.len(), unique.len(), "an entry was leased twice");
    assert_eq!(unique, all);
    assert_eq!(spool.depth().leased, held.len() as u64);
    drop(held);
    assert_eq!(spool.depth().leased, 0);
}

#[test]
fn concurrent_puts_are_all_stored() {
    let dir = tempfile::tempdir().unwrap();
    let spool = open(dir.path());
    let handles: Vec<_> = (0..8u32)
        .map(|t| {
            let spool = spool.clone();
            std::thread::spawn(move || {
                (0..50u32)
                    .map(|i| {
                        let data = format!("{t}-{i}");
                        (spool.put("d", "g", b"", data.as_bytes()).unwrap(), data)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut expected: Vec<(EntryId, String)> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    expected.sort();
    let ids: HashSet<_> = expected.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids.len(), 400, "ids are unique");

    let leases = spool.lease("d", 1000, BIG).unwrap();
    let got: Vec<(EntryId, String)> = leases
        .iter()
        .map(|l| (l.id(), String::from_utf8(l.data().unwrap()).unwrap()))
        .collect();
    assert_eq!(got, expected, "all stored, handed out oldest first");
    assert_eq!(spool.depth().writing_bytes, 0);
}

#[test]
fn restart_recovers_queue_cleans_tmp_and_keeps_dead_aside() {
    let dir = tempfile::tempdir().unwrap();
    let mut expected = Vec::new();
    let dead_id;
    let bytes_before;
    {
        let spool = open(dir.path());
        for i in 0..50u32 {
            let meta = format!("{{\"i\":{i}}}");
            let data = vec![i as u8; 10 + i as usize];
            let group = format!("study{}", i % 4);
            expected.push((
                spool.put("d", &group, meta.as_bytes(), &data).unwrap(),
                group,
                meta,
                data,
            ));
        }
        dead_id = spool.put("d", "doomed", b"", b"x").unwrap();
        // Lease group after group (holding them) until the doomed one comes out.
        let mut held = Vec::new();
        let doomed = loop {
            let mut leases = spool.lease("d", 100, BIG).unwrap();
            if let Some(pos) = leases.iter().position(|l| l.id() == dead_id) {
                break leases.remove(pos);
            }
            assert!(!leases.is_empty(), "doomed entry never leased");
            held.extend(leases);
        };
        doomed.dead_letter("refused").unwrap();
        assert_eq!(held.len(), 50);
        // Release all but a few: those stay leased at "crash" time and must come back.
        held.truncate(5);
        bytes_before = spool.depth().bytes;
        // A write that never completed.
        std::fs::write(
            dir.path().join("tmp").join("00000000000000000001.entry"),
            b"half",
        )
        .unwrap();
    }

    let spool = open(dir.path());
    assert!(
        files_under(&dir.path().join("tmp")).is_empty(),
        "tmp was not cleaned"
    );
    let stats = spool.depth();
    assert_eq!(stats.entries, 50);
    assert_eq!(stats.bytes, bytes_before);
    assert_eq!(stats.dead_entries, 1);
    assert_eq!(stats.leased, 0);

    let mut got = Vec::new();
    loop {
        let leases = spool.lease("d", 100, BIG).unwrap();
        if leases.is_empty() {
            break;
        }
        for l in leases {
            assert_ne!(l.id(), dead_id, "dead entry was re-queued");
            got.push((
                l.id(),
                l.group().to_owned(),
                String::from_utf8(l.meta().to_vec()).unwrap(),
                l.data().unwrap(),
            ));
            l.ack().unwrap();
        }
    }
    got.sort();
    assert_eq!(got, expected);

    // New ids stay above everything that was on disk, so age order holds across restarts.
    let newer = spool.put("d", "g", b"", b"n").unwrap();
    assert!(newer > dead_id);
}

#[test]
fn corrupt_data_is_reported_by_id_and_can_be_dead_lettered() {
    let dir = tempfile::tempdir().unwrap();
    let spool = open(dir.path());
    let id = spool
        .put("d", "g", b"meta", b"some instance bytes")
        .unwrap();
    // The entry is the last record of its segment: flip a bit of its data.
    let path = segments(dir.path(), "d").pop().unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 3;
    bytes[last] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();

    let lease = spool.lease("d", 1, BIG).unwrap().pop().unwrap();
    let err = lease.data().unwrap_err();
    assert!(matches!(err, SpoolError::Corrupt { id: got, .. } if got == id));
    assert!(err.to_string().contains(&id.to_string()));
    assert!(!err.to_string().contains("instance"), "error shows content");
    lease.dead_letter("corrupt in spool").unwrap();
    assert_eq!(spool.depth().dead_entries, 1);
    assert_eq!(spool.depth().entries, 0);
    assert!(dir
        .path()
        .join("dead/d")
        .join(format!("{id}.entry"))
        .is_file());
}

#[test]
fn corrupt_header_of_an_entry_file_found_at_open_is_moved_to_dead() {
    // Entry files (one per entry) are what earlier versions wrote; `open` still indexes them.
    // Make two from the records of a segment (a record is the id, then an entry file's bytes).
    let dir = tempfile::tempdir().unwrap();
    let (good, bad);
    {
        let spool = open(dir.path());
        good = spool.put("d", "g", b"meta", b"fine").unwrap();
        bad = spool.put("d", "g", b"meta", b"damaged").unwrap();
    }
    let seg = segments(dir.path(), "d").pop().unwrap();
    let bytes = std::fs::read(&seg).unwrap();
    let second = bytes
        .windows(8)
        .position(|w| w == bad.as_u64().to_le_bytes())
        .unwrap();
    std::fs::write(entry_path(dir.path(), "d", good), &bytes[8..second]).unwrap();
    let mut damaged = bytes[second + 8..].to_vec();
    damaged[20] ^= 0xff; // inside the header
    std::fs::write(entry_path(dir.path(), "d", bad), &damaged).unwrap();
    std::fs::remove_file(&seg).unwrap();

    let spool = open(dir.path());
    let stats = spool.depth();
    assert_eq!((stats.entries, stats.dead_entries), (1, 1));
    let leases = spool.lease("d", 10, BIG).unwrap();
    assert_eq!(leases.iter().map(|l| l.id()).collect::<Vec<_>>(), [good]);
    assert_eq!(leases[0].data().unwrap(), b"fine");
    let reason =
        std::fs::read_to_string(dir.path().join("dead/d").join(format!("{bad}.reason"))).unwrap();
    assert!(reason.starts_with("corrupt at open"), "{reason}");
    // An entry file is acked by deleting it.
    leases.into_iter().next().unwrap().ack().unwrap();
    assert!(!entry_path(dir.path(), "d", good).exists());
}

#[test]
fn a_torn_last_record_is_cut_at_open_and_the_records_before_it_stay() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b);
    {
        let spool = open(dir.path());
        a = spool.put("d", "g", b"meta", b"first instance").unwrap();
        b = spool.put("d", "g", b"meta", b"second instance").unwrap();
    }
    // A crash in the middle of appending a third record (never acknowledged): half a header.
    let seg = segments(dir.path(), "d").pop().unwrap();
    let whole = std::fs::read(&seg).unwrap();
    let mut torn = whole.clone();
    torn.extend_from_slice(&u64::MAX.to_le_bytes());
    torn.extend_from_slice(b"DDSPOOL1\x40\x00");
    std::fs::write(&seg, &torn).unwrap();

    let spool = open(dir.path());
    assert_eq!(std::fs::read(&seg).unwrap(), whole, "the torn tail is cut");
    let leases = spool.lease("d", 10, BIG).unwrap();
    assert_eq!(leases.iter().map(|l| l.id()).collect::<Vec<_>>(), [a, b]);
    assert_eq!(leases[1].data().unwrap(), b"second instance");
    // New entries go to a new segment; the old one goes once both are acked.
    let c = spool.put("d", "g", b"", b"third").unwrap();
    assert_eq!(segments(dir.path(), "d").len(), 2);
    for l in leases {
        l.ack().unwrap();
    }
    assert_eq!(segments(dir.path(), "d").len(), 1);
    assert_eq!(spool.lease("d", 10, BIG).unwrap()[0].id(), c);
}

#[test]
fn full_is_enforced_and_ack_makes_room() {
    let dir = tempfile::tempdir().unwrap();
    let probe = {
        let d = tempfile::tempdir().unwrap();
        let s = open(d.path());
        s.put("d", "g", b"", &[0u8; 1000]).unwrap();
        s.depth().bytes
    };
    // Room for exactly three entries.
    let spool = Spool::open(
        dir.path(),
        SpoolConfig {
            max_bytes: probe * 3,
        },
    )
    .unwrap();
    for _ in 0..3 {
        spool.put("d", "g", b"", &[0u8; 1000]).unwrap();
    }
    let err = spool.put("d", "g", b"", &[0u8; 1000]).unwrap_err();
    assert!(
        matches!(err, SpoolError::Full { needed, used, max_bytes } if needed == probe && used == probe * 3 && max_bytes == probe * 3),
        "{err:?}"
    );
    assert_eq!(spool.depth().entries, 3, "a refused put stores nothing");
    assert!(files_under(&dir.path().join("tmp")).is_empty());

    // Dead-lettering frees room too; then acking.
    let mut leases = spool.lease("d", 3, BIG).unwrap();
    leases.pop().unwrap().dead_letter("x").unwrap();
    spool.put("d", "g", b"", &[0u8; 1000]).unwrap();
    assert!(matches!(
        spool.put("d", "g", b"", &[0u8; 1000]),
        Err(SpoolError::Full { .. })
    ));
    leases.pop().unwrap().ack().unwrap();
    spool.put("d", "g", b"", &[0u8; 1000]).unwrap();

    // The limit counts whole entry files (header included): one data byte does not fit in 10.
    let tiny_dir = tempfile::tempdir().unwrap();
    let tiny = Spool::open(tiny_dir.path(), SpoolConfig { max_bytes: 10 }).unwrap();
    assert!(matches!(
        tiny.put("d", "g", b"", b"x"),
        Err(SpoolError::Full { .. })
    ));
}

#[test]
fn hostile_names_are_refused_and_nothing_escapes_root() {
    let outer = tempfile::tempdir().unwrap();
    let root = outer.path().join("spool");
    let spool = open(&root);
    let before_outer = files_under(outer.path());
    let before_root = files_under(&root);
    let long = "a".repeat(129);
    let hostile = [
        "",
        ".",
        "..",
        "../x",
        "../../etc",
        "/etc/passwd",
        "a/b",
        "a\\b",
        "a\0b",
        ".hidden",
        "x\n",
        "C:evil",
        "\u{2215}slash",
        long.as_str(),
    ];
    for name in hostile {
        assert!(
            matches!(
                spool.put(name, "g", b"", b"x"),
                Err(SpoolError::BadName {
                    what: "destination",
                    ..
                })
            ),
            "destination {name:?} accepted"
        );
        assert!(
            matches!(
                spool.put("d", name, b"", b"x"),
                Err(SpoolError::BadName { what: "group", .. })
            ),
            "group {name:?} accepted"
        );
        assert!(matches!(
            spool.lease(name, 1, BIG),
            Err(SpoolError::BadName { .. })
        ));
    }
    assert_eq!(files_under(outer.path()), before_outer);
    assert_eq!(files_under(&root), before_root);
    assert_eq!(spool.depth().entries, 0);

    // The error names what and why, not the name itself.
    let msg = spool
        .put("../../secret-name", "g", b"", b"x")
        .unwrap_err()
        .to_string();
    assert!(!msg.contains("secret-name"), "{msg}");
}

#[test]
fn meta_too_large_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let spool = open(dir.path());
    let meta = vec![b'x'; dicom_deid_spool::MAX_META_LEN + 1];
    assert!(matches!(
        spool.put("d", "g", &meta, b"x"),
        Err(SpoolError::MetaTooLarge { .. })
    ));
    let meta = vec![b'x'; dicom_deid_spool::MAX_META_LEN];
    let id = spool.put("d", "g", &meta, b"x").unwrap();
    let lease = spool.lease("d", 1, BIG).unwrap().pop().unwrap();
    assert_eq!(lease.id(), id);
    assert_eq!(lease.meta(), meta);
}

#[test]
fn unexpected_files_in_queue_are_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    {
        let spool = open(dir.path());
        spool.put("d", "g", b"", b"x").unwrap();
    }
    std::fs::write(dir.path().join("queue/d/notes.txt"), b"operator file").unwrap();
    std::fs::write(dir.path().join("queue/stray-file"), b"x").unwrap();
    let spool = open(dir.path());
    assert_eq!(spool.depth().entries, 1);
    assert!(dir.path().join("queue/d/notes.txt").is_file());
    assert!(dir.path().join("queue/stray-file").is_file());
}

#[test]
fn probe_checks_writability_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let spool = open(dir.path());
    let before = files_under(dir.path());
    spool.probe().unwrap();
    assert_eq!(files_under(dir.path()), before);

    // A spool whose tmp directory has vanished cannot take writes, and says so.
    std::fs::remove_dir(dir.path().join("tmp")).unwrap();
    let err = spool.probe().unwrap_err();
    assert!(matches!(err, SpoolError::Io { .. }), "{err:?}");
    // A destination whose queue folder cannot be made refuses the put.
    std::fs::write(dir.path().join("queue").join("d"), b"in the way").unwrap();
    assert!(matches!(
        spool.put("d", "g", b"", b"x"),
        Err(SpoolError::Io { .. })
    ));
    assert_eq!(
        spool.depth().writing_bytes,
        0,
        "failed put released its reservation"
    );
    assert_eq!(spool.depth().entries, 0);
}

#[test]
fn failed_ack_keeps_the_entry_queued() {
    let dir = tempfile::tempdir().unwrap();
    let spool = open(dir.path());
    let id = spool.put("d", "g", b"", b"x").unwrap();
    let lease = spool.lease("d", 1, BIG).unwrap().pop().unwrap();
    // Make the ack fail: the segment's `.settled` file cannot be opened (a directory holds
    // its name).
    let seg = segments(dir.path(), "d").pop().unwrap();
    std::fs::create_dir(seg.with_extension("settled")).unwrap();
    let err = lease.ack().unwrap_err();
    assert!(err.to_string().contains(&id.to_string()), "{err}");
    let stats = spool.depth();
    assert_eq!(
        (stats.entries, stats.leased),
        (1, 0),
        "entry stays, released"
    );
}

#[test]
fn entry_removed_behind_the_spools_back_can_be_settled() {
    let dir = tempfile::tempdir().unwrap();
    let spool = open(dir.path());
    spool.put("d", "g", b"", b"a").unwrap();
    spool.put("d", "g", b"", b"b").unwrap();
    for seg in segments(dir.path(), "d") {
        std::fs::remove_file(seg).unwrap();
    }
    let mut leases = spool.lease("d", 2, BIG).unwrap();
    let lb = leases.pop().unwrap();
    let la = leases.pop().unwrap();
    assert!(matches!(la.data(), Err(SpoolError::Io { .. })));
    // Ack of a vanished entry succeeds; dead-lettering one fails but drops it from the queue.
    la.ack().unwrap();
    assert!(lb.dead_letter("gone").is_err());
    assert_eq!(spool.depth().entries, 0);
    assert_eq!(spool.depth().dead_entries, 0, "nothing reached dead/");
    assert!(spool.lease("d", 2, BIG).unwrap().is_empty());
}

#[test]
fn a_root_is_opened_once_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let spool = open(dir.path());
    let id = spool.put("d", "g", b"", b"x").unwrap();
    let err = Spool::open(dir.path(), SpoolConfig { max_bytes: BIG }).unwrap_err();
    assert!(matches!(err, SpoolError::Locked { .. }), "{err:?}");
    // The refused open touched nothing: the entry is still there and still leasable.
    assert_eq!(spool.lease("d", 1, BIG).unwrap()[0].id(), id);
    drop(spool);
    let again = open(dir.path());
    assert_eq!(again.depth().entries, 1);
}

#[test]
fn put_with_runs_its_work_after_the_write_and_only_for_a_written_entry() {
    let dir = tempfile::tempdir().unwrap();
    let spool = open(dir.path());
    let mut seen = None;
    let id = spool
        .put_with("d", "g", b"meta", b"payload", |id| {
            // The entry's bytes are in its segment already when the work runs.
            assert!(in_a_segment(dir.path(), "d", b"payload"));
            seen = Some(id);
        })
        .unwrap();
    assert_eq!(seen, Some(id), "called once, with the id put returns");
    let lease = spool.lease("d", 10, BIG).unwrap().pop().unwrap();
    assert_eq!(lease.id(), id);

    // Refused before anything is written: the work does not run.
    let tiny_dir = tempfile::tempdir().unwrap();
    let tiny = Spool::open(tiny_dir.path(), SpoolConfig { max_bytes: 10 }).unwrap();
    let mut called = false;
    let refused = tiny.put_with("d", "g", b"", b"x", |_| called = true);
    assert!(matches!(refused, Err(SpoolError::Full { .. })));
    assert!(!called);
    assert!(spool
        .put_with("../d", "g", b"", b"x", |_| called = true)
        .is_err());
    assert!(!called);
}
