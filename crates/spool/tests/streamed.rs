//! Streamed entries (`Spool::begin` → `Pending::write` … → `Pending::commit`): queued only once
//! committed, nothing left behind when given up, and skipped at `open` when a crash caught them
//! half-written — without losing the entries written after them.
//!
//! A crash is simulated by copying the spool's files while a stream is under way: the copy is
//! what a kill -9 at that moment would leave on disk (the page cache is what the copy reads).
//! `tests/crash.rs` kills real writers.

use std::path::Path;

use dicom_deid_spool::{EntryId, Spool, SpoolConfig, SpoolError};

fn open(root: &Path) -> Spool {
    Spool::open(root, SpoolConfig { max_bytes: 1 << 30 }).unwrap()
}

fn data(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect()
}

/// Every queued entry of "dest" as (meta, group, data), acknowledging none.
fn queued(spool: &Spool) -> Vec<(String, String, Vec<u8>)> {
    let leases = spool.lease("dest", 1000, u64::MAX).unwrap();
    leases
        .iter()
        .map(|l| {
            (
                String::from_utf8(l.meta().to_vec()).unwrap(),
                l.group().to_string(),
                l.data().unwrap(),
            )
        })
        .collect()
}

/// Streams `body` whole into a new entry of "dest" (group "g") and commits it.
fn stream(spool: &Spool, meta: &[u8], body: &[u8]) -> EntryId {
    let mut pending = spool.begin("dest", "g", meta, body.len() as u64).unwrap();
    pending.write(body).unwrap();
    pending.commit(|_| {}).unwrap()
}

/// Copies the spool's files (all but its lock) to `to`.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for item in std::fs::read_dir(from).unwrap() {
        let item = item.unwrap();
        let target = to.join(item.file_name());
        if item.file_type().unwrap().is_dir() {
            copy_tree(&item.path(), &target);
        } else if item.file_name() != "lock" {
            std::fs::copy(item.path(), target).unwrap();
        }
    }
}

#[test]
fn a_streamed_entry_is_queued_only_once_committed() {
    let dir = tempfile::tempdir().unwrap();
    let spool = open(dir.path());
    let body = data(1, 100_000);
    let mut pending = spool
        .begin("dest", "study-1", b"a", body.len() as u64)
        .unwrap();
    for piece in body.chunks(16 * 1024) {
        pending.write(piece).unwrap();
        assert_eq!(spool.depth().entries, 0, "queued before its commit");
        assert!(spool.lease("dest", 10, u64::MAX).unwrap().is_empty());
    }
    let id = pending.id();
    assert_eq!(pending.commit(|seen| assert_eq!(seen, id)).unwrap(), id);
    assert_eq!(spool.depth().entries, 1);
    assert_eq!(
        queued(&spool),
        vec![("a".into(), "study-1".into(), body.clone())]
    );
    drop(spool);

    // And after a restart.
    let spool = open(dir.path());
    assert_eq!(queued(&spool), vec![("a".into(), "study-1".into(), body)]);
    for lease in spool.lease("dest", 10, u64::MAX).unwrap() {
        lease.ack().unwrap();
    }
    assert_eq!(spool.depth().entries, 0);
}

#[test]
fn a_stream_given_up_leaves_nothing_and_what_follows_it_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let spool = open(dir.path());
    let mut given_up = spool.begin("dest", "g", b"gone", 50_000).unwrap();
    given_up.write(&data(2, 20_000)).unwrap();
    // Written after the stream's room in the segment.
    spool.put("dest", "g", b"after", &data(3, 30_000)).unwrap();
    assert!(
        spool.depth().writing_bytes > 50_000,
        "the stream's room is not reserved"
    );
    drop(given_up);
    assert_eq!(
        spool.depth().writing_bytes,
        0,
        "the given-up room still counts"
    );
    spool.put("dest", "g", b"later", &data(4, 10)).unwrap();
    assert_eq!(spool.depth().entries, 2);
    drop(spool);

    let spool = open(dir.path());
    let got = queued(&spool);
    let metas: Vec<_> = got.iter().map(|(m, ..)| m.as_str()).collect();
    assert_eq!(metas, ["after", "later"]);
    assert_eq!(got[0].2, data(3, 30_000));
    assert_eq!(spool.depth().dead_entries, 0);
}

#[test]
fn a_stream_cut_by_a_crash_is_skipped_at_open_and_later_entries_survive() {
    let dir = tempfile::tempdir().unwrap();
    let spool = open(dir.path());
    let body = data(5, 200_000);
    spool.put("dest", "g", b"before", &data(6, 1000)).unwrap();
    let mut pending = spool.begin("dest", "g", b"cut", body.len() as u64).unwrap();
    pending.write(&body[..70_000]).unwrap();
    spool.put("dest", "g", b"after", &data(7, 5000)).unwrap();

    // A crash now: the stream half-written, an acknowledged entry after its room.
    let crash1 = tempfile::tempdir().unwrap();
    copy_tree(dir.path(), crash1.path());
    // A crash once every byte is written but before the commit.
    pending.write(&body[70_000..]).unwrap();
    let crash2 = tempfile::tempdir().unwrap();
    copy_tree(dir.path(), crash2.path());

    for crashed in [crash1.path(), crash2.path()] {
        let reopened = open(crashed);
        let metas: Vec<_> = queued(&reopened).into_iter().map(|(m, ..)| m).collect();
        assert_eq!(metas, ["before", "after"]);
        assert_eq!(reopened.depth().dead_entries, 0);
    }

    // The stream itself, committed after all, is there in the original.
    pending.commit(|_| {}).unwrap();
    let metas: Vec<_> = queued(&spool).into_iter().map(|(m, ..)| m).collect();
    assert_eq!(metas, ["before", "cut", "after"]);
}

#[test]
fn a_stream_cut_at_the_end_of_the_segment_is_cut_off_and_puts_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let spool = open(dir.path());
    spool.put("dest", "g", b"first", &data(8, 3000)).unwrap();
    let mut pending = spool.begin("dest", "g", b"cut", 90_000).unwrap();
    pending.write(&data(9, 40_000)).unwrap();
    let crashed = tempfile::tempdir().unwrap();
    copy_tree(dir.path(), crashed.path());
    drop(pending);
    drop(spool);

    let spool = open(crashed.path());
    assert_eq!(spool.depth().entries, 1);
    assert_eq!(spool.depth().dead_entries, 0);
    spool.put("dest", "g", b"next", &data(10, 2000)).unwrap();
    drop(spool);
    let spool = open(crashed.path());
    let metas: Vec<_> = queued(&spool).into_iter().map(|(m, ..)| m).collect();
    assert_eq!(metas, ["first", "next"]);
}

#[test]
fn a_torn_trailer_is_not_an_entry_and_what_follows_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let spool = open(dir.path());
    stream(&spool, b"torn", &data(11, 10_000));
    spool.put("dest", "g", b"after", &data(12, 100)).unwrap();
    drop(spool);

    // Damage the commit trailer, as a crash in the middle of writing it would.
    let queue = dir.path().join("queue").join("dest");
    let seg = std::fs::read_dir(&queue)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "seg"))
        .unwrap();
    let mut bytes = std::fs::read(&seg).unwrap();
    let at = bytes
        .windows(8)
        .position(|w| w == b"DDCOMMIT")
        .expect("the trailer is in the segment");
    bytes[at + 9] ^= 0x5a; // its data checksum
    std::fs::write(&seg, &bytes).unwrap();

    let spool = open(dir.path());
    let metas: Vec<_> = queued(&spool).into_iter().map(|(m, ..)| m).collect();
    assert_eq!(metas, ["after"]);
    assert_eq!(spool.depth().dead_entries, 0);
}

#[test]
fn more_or_less_data_than_announced_is_refused_and_nothing_is_queued() {
    let dir = tempfile::tempdir().unwrap();
    let spool = open(dir.path());

    let mut too_much = spool.begin("dest", "g", b"m", 10).unwrap();
    too_much.write(&[1; 8]).unwrap();
    assert!(too_much.write(&[1; 8]).is_err());
    assert!(too_much.commit(|_| panic!("nothing to sync")).is_err());

    let mut too_little = spool.begin("dest", "g", b"m", 10).unwrap();
    too_little.write(&[1; 4]).unwrap();
    assert!(too_little.commit(|_| panic!("nothing to sync")).is_err());

    assert_eq!(spool.depth().entries, 0);
    assert_eq!(spool.depth().bytes, 0);
    // The destination still takes entries.
    spool.put("dest", "g", b"ok", b"data").unwrap();
    assert_eq!(queued(&spool).len(), 1);
}

#[test]
fn the_room_of_a_stream_counts_against_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), SpoolConfig { max_bytes: 100_000 }).unwrap();
    assert!(matches!(
        spool.begin("dest", "g", b"m", 200_000),
        Err(SpoolError::Full { .. })
    ));
    let pending = spool.begin("dest", "g", b"m", 60_000).unwrap();
    assert!(matches!(
        spool.put("dest", "g", b"m", &[0; 60_000]),
        Err(SpoolError::Full { .. })
    ));
    drop(pending);
    spool.put("dest", "g", b"m", &[0; 60_000]).unwrap();
}

#[test]
fn a_dead_lettered_streamed_entry_becomes_an_entry_file() {
    let dir = tempfile::tempdir().unwrap();
    let spool = open(dir.path());
    let body = data(13, 7000);
    let id = stream(&spool, b"dead", &body);
    let lease = spool.lease("dest", 1, u64::MAX).unwrap().pop().unwrap();
    lease.dead_letter("refused by the destination").unwrap();
    let file = std::fs::read(
        dir.path()
            .join("dead")
            .join("dest")
            .join(format!("{id}.entry")),
    )
    .unwrap();
    assert!(file.starts_with(b"DDSPOOL1"), "not an entry file");
    assert!(file.ends_with(&body));
    drop(spool);
    let spool = open(dir.path());
    assert_eq!(spool.depth().dead_entries, 1);
    assert_eq!(spool.depth().entries, 0);
}
