//! Segment files: entries appended to one file per destination at a time instead of a file per
//! entry, made durable by group-committed `fdatasync`s, and settled (acknowledged or
//! dead-lettered) by appending their ids to a `.settled` file beside the segment. See the crate
//! docs for the layout and the recovery argument.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use snafu::ResultExt;

use crate::group::GroupSync;
use crate::{DirSync, EntryId, IoSnafu, SpoolError};

pub(crate) const SEGMENT_EXT: &str = "seg";
pub(crate) const SETTLED_EXT: &str = "settled";
/// A new segment is started once the current one holds this many bytes.
pub(crate) const MAX_SEGMENT_BYTES: u64 = 64 << 20;
/// Bytes before an entry's header in a segment: its id.
pub(crate) const RECORD_PREFIX: u64 = 8;
/// One settled id: the id and its CRC-32.
const SETTLED_RECORD: usize = 12;
/// The current segment's blocks are allocated ahead of its appends by this much at a time.
pub(crate) const PREALLOCATE: u64 = 16 << 20;

/// `<id>.seg` / `<id>.settled` of segment `id` in `dir`.
pub(crate) fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{}.{SEGMENT_EXT}", EntryId(id)))
}

fn settled_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{}.{SETTLED_EXT}", EntryId(id)))
}

/// A file whose appends are made durable by group commit ([`GroupSync`], sticky: after a failed
/// `fdatasync` every later sync of this file fails).
struct Synced {
    path: PathBuf,
    file: File,
    group: GroupSync,
}

impl Synced {
    fn new(path: PathBuf, file: File) -> Synced {
        Synced {
            group: GroupSync::new(path.clone(), true),
            path,
            file,
        }
    }

    fn ticket(&self) -> u64 {
        self.group.ticket()
    }

    fn sync_after(&self, ticket: u64) -> Result<(), SpoolError> {
        self.group.sync_after(ticket, || {
            self.file.sync_data().context(IoSnafu { path: &self.path })
        })
    }
}

/// An append written but not yet known durable.
struct Appended {
    /// (segment id, offset of the record).
    at: (u64, u64),
    segment: Arc<Synced>,
    /// To wait for with the segment's `sync_after`.
    ticket: u64,
}

/// A streamed record under way ([`Appender::reserve`]).
pub(crate) struct Streamed {
    pub seg_id: u64,
    segment: Arc<Synced>,
    /// Offset of the record (its id) in the segment.
    pub offset: u64,
    data_offset: u64,
    data_len: u64,
    written: u64,
    crc: crc32fast::Hasher,
    header_crc: u32,
}

impl Streamed {
    /// Length of the record's data.
    pub(crate) fn data_len(&self) -> u64 {
        self.data_len
    }
}

/// The appends and settlements of one destination's segments.
pub(crate) struct Appender {
    dir: PathBuf,
    state: Mutex<AppendState>,
    /// Set after a failed write or `fdatasync`: later puts fail too (the page cache cannot be
    /// trusted after a failed sync, and recovery relies on appends being durable in order).
    failed: AtomicBool,
}

#[derive(Default)]
struct AppendState {
    /// The segment appended to, and its length. `None` until the first put after `open`:
    /// segments found at `open` are never appended to.
    current: Option<(Arc<Synced>, u64, u64)>,
    /// Unsettled entries per segment id (the current one included).
    live: HashMap<u64, u64>,
    /// Open `.settled` files per segment id.
    settled: HashMap<u64, Arc<Synced>>,
    /// Segments that must not be deleted when they empty (a defect was found at `open`).
    keep: HashSet<u64>,
    /// How far the current segment's blocks are allocated (`u64::MAX`: the filesystem
    /// cannot, appends allocate as they go).
    allocated: u64,
}

impl Appender {
    pub(crate) fn new(dir: PathBuf) -> Appender {
        Appender {
            dir,
            state: Mutex::new(AppendState::default()),
            failed: AtomicBool::new(false),
        }
    }

    /// How many syncs the open `.settled` files have had (tests).
    #[cfg(test)]
    pub(crate) fn settled_syncs(&self) -> u64 {
        let st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        st.settled.values().map(|log| log.group.syncs()).sum()
    }

    /// How far the current segment is allocated (tests).
    #[cfg(test)]
    pub(crate) fn allocated(&self) -> u64 {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .allocated
    }

    /// Records what `open` found: `live` unsettled entries in segment `seg`.
    pub(crate) fn found(&self, seg: u64, live: u64, damaged: bool) {
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        st.live.insert(seg, live);
        if damaged {
            st.keep.insert(seg);
        }
    }

    /// Appends one entry (`id`, then `prefix` and `data`) and returns once it is durable.
    /// Returns where it was written — `(segment id, offset of the record)`, `None` when it was
    /// not — and whether it is known durable. A new segment is named after the id of its first
    /// entry, and `dir_sync` makes its name durable before any of its entries is acknowledged.
    /// `while_syncing` runs once the entry is written, before the wait for its sync.
    pub(crate) fn append(
        &self,
        id: EntryId,
        prefix: &[u8],
        data: &[u8],
        dir_sync: &DirSync,
        while_syncing: impl FnOnce(),
    ) -> (Option<(u64, u64)>, Result<(), SpoolError>) {
        match self.append_unsynced(id, prefix, data, dir_sync) {
            Err(e) => (None, Err(e)),
            Ok(appended) => {
                while_syncing();
                let synced = appended.segment.sync_after(appended.ticket);
                if synced.is_err() {
                    self.failed.store(true, Ordering::SeqCst);
                }
                (Some(appended.at), synced)
            }
        }
    }

    fn append_unsynced(
        &self,
        id: EntryId,
        prefix: &[u8],
        data: &[u8],
        dir_sync: &DirSync,
    ) -> Result<Appended, SpoolError> {
        self.check_sound()?;
        let (offset, seg, ticket) = {
            let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            let record_len = RECORD_PREFIX + prefix.len() as u64 + data.len() as u64;
            let (seg, seg_id, len) = self.room(&mut st, id, record_len, dir_sync)?;
            let mut at = len;
            let written = [&id.0.to_le_bytes()[..], prefix, data]
                .into_iter()
                .try_for_each(|part| {
                    let r = seg.file.write_all_at(part, at);
                    at += part.len() as u64;
                    r
                });
            if let Err(source) = written {
                self.failed.store(true, Ordering::SeqCst);
                return Err(SpoolError::Io {
                    path: seg.path.clone(),
                    source,
                });
            }
            st.current = Some((seg.clone(), seg_id, at));
            *st.live.entry(seg_id).or_insert(0) += 1;
            let ticket = seg.ticket();
            ((seg_id, len), seg, ticket)
        };
        Ok(Appended {
            at: offset,
            segment: seg,
            ticket,
        })
    }

    /// Checks that appends have not failed.
    fn check_sound(&self) -> Result<(), SpoolError> {
        if self.failed.load(Ordering::SeqCst) {
            return Err(SpoolError::Io {
                path: self.dir.clone(),
                source: std::io::Error::other(
                    "an earlier segment write or sync failed; restart the gateway once the disk is sound",
                ),
            });
        }
        Ok(())
    }

    /// Under the state lock: the segment a record of `record_len` bytes goes into — a new one,
    /// named after `id`, when there is none yet or the current one is full — with its blocks
    /// allocated ahead, and the offset the record starts at (the segment's current end).
    fn room(
        &self,
        st: &mut AppendState,
        id: EntryId,
        record_len: u64,
        dir_sync: &DirSync,
    ) -> Result<(Arc<Synced>, u64, u64), SpoolError> {
        let full = st
            .current
            .as_ref()
            .is_none_or(|(_, _, len)| *len >= MAX_SEGMENT_BYTES);
        if full {
            let path = segment_path(&self.dir, id.0);
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&path)
                .context(IoSnafu { path: &path })?;
            dir_sync.sync_changes()?;
            st.allocated = 0;
            st.live.entry(id.0).or_insert(0);
            let sealed = st
                .current
                .replace((Arc::new(Synced::new(path, file)), id.0, 0))
                .map(|(_, seg, _)| seg);
            // A segment whose entries were all settled while it was being appended to is
            // deleted now that nothing more goes into it.
            if let Some(seg) = sealed.filter(|s| st.live.get(s) == Some(&0)) {
                st.live.remove(&seg);
                st.settled.remove(&seg);
                remove_segment(&self.dir, seg, dir_sync)?;
            }
        }
        let (seg, seg_id, len) = st.current.clone().expect("set above");
        // Allocate the segment's blocks ahead of the appends (beyond its end: its length,
        // which `open` reads, stays that of the records written), so that the writeback of
        // an append allocates nothing and its fdatasync has less metadata to write. Where
        // the filesystem cannot, appends allocate as they go.
        let end = len + record_len;
        if end > st.allocated {
            let from = st.allocated;
            // Ahead by PREALLOCATE, but not past where the segment will be sealed.
            let ahead = PREALLOCATE.min(MAX_SEGMENT_BYTES.saturating_sub(from));
            let size = (end - from).max(ahead);
            let flags = rustix::fs::FallocateFlags::KEEP_SIZE;
            st.allocated = match rustix::fs::fallocate(&seg.file, flags, from, size) {
                Ok(()) => from + size,
                Err(_) => u64::MAX,
            };
        }
        Ok((seg, seg_id, len))
    }

    /// Starts a streamed record of entry `id`: writes its id and `prefix` (a streamed header,
    /// [`crate::record::encode_streamed_prefix`]) at the current segment's end and moves that
    /// end past the room for `data_len` bytes of data and the trailer, so that other appends go
    /// on while the data is written with [`Appender::write_streamed`]. The header is written
    /// before any later record, so every later acknowledgement makes it durable and `open` can
    /// step over the room whatever became of the stream. The record counts as live in its
    /// segment (which is therefore never deleted under it) until committed and settled, or
    /// [`Appender::abandon`]ed.
    pub(crate) fn reserve(
        &self,
        id: EntryId,
        prefix: &[u8],
        header_crc: u32,
        data_len: u64,
        dir_sync: &DirSync,
    ) -> Result<Streamed, SpoolError> {
        self.check_sound()?;
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let head_len = RECORD_PREFIX + prefix.len() as u64;
        let record_len = head_len + data_len + crate::record::TRAILER_LEN;
        let (seg, seg_id, len) = self.room(&mut st, id, record_len, dir_sync)?;
        let written = seg
            .file
            .write_all_at(&id.0.to_le_bytes(), len)
            .and_then(|()| seg.file.write_all_at(prefix, len + RECORD_PREFIX));
        if let Err(source) = written {
            self.failed.store(true, Ordering::SeqCst);
            return Err(SpoolError::Io {
                path: seg.path.clone(),
                source,
            });
        }
        st.current = Some((seg.clone(), seg_id, len + record_len));
        *st.live.entry(seg_id).or_insert(0) += 1;
        Ok(Streamed {
            seg_id,
            segment: seg,
            offset: len,
            data_offset: len + head_len,
            data_len,
            written: 0,
            crc: crc32fast::Hasher::new(),
            header_crc,
        })
    }

    /// Writes the next `bytes` of a streamed record's data.
    pub(crate) fn write_streamed(&self, s: &mut Streamed, bytes: &[u8]) -> Result<(), SpoolError> {
        let end = s.written + bytes.len() as u64;
        if end > s.data_len {
            return Err(SpoolError::Io {
                path: s.segment.path.clone(),
                source: std::io::Error::other("more data than the streamed record has room for"),
            });
        }
        if let Err(source) = s
            .segment
            .file
            .write_all_at(bytes, s.data_offset + s.written)
        {
            self.failed.store(true, Ordering::SeqCst);
            return Err(SpoolError::Io {
                path: s.segment.path.clone(),
                source,
            });
        }
        s.crc.update(bytes);
        s.written = end;
        Ok(())
    }

    /// Commits a streamed record whose data is all written: writes its trailer and returns once
    /// the record is durable, as [`Appender::append`] does (`while_syncing` runs before the
    /// wait). The first value says whether the trailer was written (the record then exists on
    /// disk, durable or not, and must be indexed); when it was not, the caller abandons it.
    pub(crate) fn commit_streamed(
        &self,
        s: &Streamed,
        while_syncing: impl FnOnce(),
    ) -> (bool, Result<(), SpoolError>) {
        if s.written != s.data_len {
            let source = std::io::Error::other("a streamed record committed before all its data");
            return (
                false,
                Err(SpoolError::Io {
                    path: s.segment.path.clone(),
                    source,
                }),
            );
        }
        if let Err(e) = self.check_sound() {
            return (false, Err(e));
        }
        let trailer = crate::record::encode_trailer(s.header_crc, s.crc.clone().finalize());
        if let Err(source) = s
            .segment
            .file
            .write_all_at(&trailer, s.data_offset + s.data_len)
        {
            self.failed.store(true, Ordering::SeqCst);
            let path = s.segment.path.clone();
            return (false, Err(SpoolError::Io { path, source }));
        }
        let ticket = s.segment.ticket();
        while_syncing();
        let synced = s.segment.sync_after(ticket);
        if synced.is_err() {
            self.failed.store(true, Ordering::SeqCst);
        }
        (true, synced)
    }

    /// Gives up a streamed record that was not committed: its room stays in the segment,
    /// skipped by `open` (no valid trailer); the segment no longer waits for it.
    pub(crate) fn abandon(&self, s: &Streamed, dir_sync: &DirSync) -> Result<(), SpoolError> {
        self.settled_one(s.seg_id, dir_sync)
    }

    /// Settles entry `id` of segment `seg` (delivered or dead-lettered): durably records it in
    /// the segment's `.settled` file, then deletes the segment once it is sealed and every entry
    /// in it is settled.
    pub(crate) fn settle(
        &self,
        seg: u64,
        id: EntryId,
        dir_sync: &DirSync,
    ) -> Result<(), SpoolError> {
        self.settle_all(&[(seg, id)], dir_sync)
            .pop()
            .expect("one result per entry")
    }

    /// [`Appender::settle`] for several entries at once: every record is written first, then
    /// each `.settled` file written to is synced once (a batch of deliveries costs one
    /// `fdatasync` per segment instead of one per entry). One result per entry, in order; an
    /// entry whose record was not written or whose file's sync failed stays unsettled.
    pub(crate) fn settle_all(
        &self,
        entries: &[(u64, EntryId)],
        dir_sync: &DirSync,
    ) -> Vec<Result<(), SpoolError>> {
        // Write every record; remember the last ticket taken on each segment's file.
        let mut tickets: HashMap<u64, (Arc<Synced>, u64)> = HashMap::new();
        let written: Vec<Result<(), SpoolError>> = entries
            .iter()
            .map(|&(seg, id)| {
                let log = self.settled_log(seg, dir_sync)?;
                let mut record = [0u8; SETTLED_RECORD];
                record[..8].copy_from_slice(&id.0.to_le_bytes());
                record[8..].copy_from_slice(&crc32fast::hash(&id.0.to_le_bytes()).to_le_bytes());
                (&log.file)
                    .write_all(&record)
                    .context(IoSnafu { path: &log.path })?;
                let ticket = log.ticket();
                tickets.insert(seg, (log, ticket));
                Ok(())
            })
            .collect();
        // One sync per file; its outcome is that of every record written to it.
        let synced: HashMap<u64, Result<(), SpoolError>> = tickets
            .into_iter()
            .map(|(seg, (log, ticket))| (seg, log.sync_after(ticket)))
            .collect();
        entries
            .iter()
            .zip(written)
            .map(|(&(seg, _), written)| {
                written?;
                if let Some(Err(e)) = synced.get(&seg) {
                    return Err(SpoolError::Io {
                        path: settled_path(&self.dir, seg),
                        source: std::io::Error::other(e.to_string()),
                    });
                }
                self.settled_one(seg, dir_sync)
            })
            .collect()
    }

    /// The open `.settled` file of segment `seg`, created (and its name made durable) when it
    /// does not exist yet.
    fn settled_log(&self, seg: u64, dir_sync: &DirSync) -> Result<Arc<Synced>, SpoolError> {
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(log) = st.settled.get(&seg) {
            return Ok(log.clone());
        }
        let path = settled_path(&self.dir, seg);
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .open(&path)
            .context(IoSnafu { path: &path })?;
        dir_sync.sync_changes()?;
        let log = Arc::new(Synced::new(path, file));
        st.settled.insert(seg, log.clone());
        Ok(log)
    }

    /// Counts one entry of `seg` as durably settled; deletes the segment if that was its last
    /// live entry and nothing more goes into it.
    fn settled_one(&self, seg: u64, dir_sync: &DirSync) -> Result<(), SpoolError> {
        let delete = {
            let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            let current = st.current.as_ref().map(|(_, id, _)| *id);
            let live = st.live.entry(seg).or_insert(1);
            *live = live.saturating_sub(1);
            let emptied = *live == 0;
            let delete = emptied && current != Some(seg) && !st.keep.contains(&seg);
            if delete {
                st.live.remove(&seg);
                st.settled.remove(&seg);
            }
            delete
        };
        if delete {
            remove_segment(&self.dir, seg, dir_sync)?;
        }
        Ok(())
    }
}

/// Deletes a segment and its `.settled` file, durably. The segment goes first: a crash in
/// between leaves a `.settled` file alone, which `open` removes.
pub(crate) fn remove_segment(dir: &Path, seg: u64, dir_sync: &DirSync) -> Result<(), SpoolError> {
    for path in [segment_path(dir, seg), settled_path(dir, seg)] {
        match fs::remove_file(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            other => other.context(IoSnafu { path: &path })?,
        }
    }
    dir_sync.sync_changes()
}

/// The ids recorded in segment `seg`'s `.settled` file (none when it has none). A torn last
/// record (a crash mid-append, never acknowledged) is ignored.
pub(crate) fn read_settled(dir: &Path, seg: u64) -> Result<HashSet<u64>, SpoolError> {
    let path = settled_path(dir, seg);
    let mut bytes = Vec::new();
    match File::open(&path) {
        Ok(mut f) => {
            f.read_to_end(&mut bytes).context(IoSnafu { path: &path })?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HashSet::new()),
        Err(e) => return Err(e).context(IoSnafu { path: &path }),
    }
    let mut ids = HashSet::new();
    for record in bytes.chunks_exact(SETTLED_RECORD) {
        let id: [u8; 8] = record[..8].try_into().expect("8 bytes");
        let crc = u32::from_le_bytes(record[8..].try_into().expect("4 bytes"));
        if crc32fast::hash(&id) != crc {
            break;
        }
        ids.insert(u64::from_le_bytes(id));
    }
    Ok(ids)
}

/// Whether `name` is a `.settled` file of a segment.
pub(crate) fn is_settled_file(name: &str) -> Option<u64> {
    EntryId::from_file_name(name, SETTLED_EXT).map(|id| id.0)
}

/// An entry found in a segment at `open`.
pub(crate) struct Found {
    pub id: EntryId,
    /// Offset of its record (its id) in the segment.
    pub offset: u64,
    pub header: crate::record::Header,
}

/// What `open` found in one segment.
pub(crate) struct Scanned {
    pub entries: Vec<Found>,
    /// A record whose header is not valid stopped the scan (see [`scan`]).
    pub damaged: bool,
}

/// Reads the record headers of segment `seg` in order. The first invalid one ends the scan: no
/// entry after it was acknowledged (appends complete in order, and a put is acknowledged only
/// after an `fdatasync` that began after its own append, which would have covered the invalid
/// one too). In the `last` segment (the one appended to when the process stopped) the file is
/// cut there, so the next `open` does not report it again; an earlier segment is left as it is
/// and reported `damaged` (kept on disk for inspection). Data checksums are verified when an
/// entry is leased, as for entry files.
pub(crate) fn scan(dir: &Path, seg: u64, last: bool) -> Result<Scanned, SpoolError> {
    let path = segment_path(dir, seg);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .context(IoSnafu { path: &path })?;
    let len = file.metadata().context(IoSnafu { path: &path })?.len();
    let mut entries = Vec::new();
    let mut at = 0u64;
    let mut defect = None;
    while at < len {
        let mut id = [0u8; 8];
        if at + RECORD_PREFIX > len {
            defect = Some("shorter than its header");
            break;
        }
        file.read_exact_at(&mut id, at)
            .context(IoSnafu { path: &path })?;
        match crate::record::read_header_at(&mut file, at + RECORD_PREFIX, len)
            .context(IoSnafu { path: &path })?
        {
            Ok(header) => {
                let next = header.file_len();
                // A streamed record whose trailer is not valid was never acknowledged: its
                // room is skipped (its header, written before any later record, says how far).
                if header.committed {
                    entries.push(Found {
                        id: EntryId(u64::from_le_bytes(id)),
                        offset: at,
                        header,
                    });
                }
                at = next;
            }
            // A stream under way when the process stopped, with nothing after it: the end.
            Err(crate::record::UNFINISHED) => break,
            Err(d) => {
                defect = Some(d);
                break;
            }
        }
    }
    let Some(defect) = defect else {
        return Ok(Scanned {
            entries,
            damaged: false,
        });
    };
    if last {
        tracing::warn!(
            message = "Cut the unfinished tail of the spool's last segment (never acknowledged).",
            path = %path.display(),
            offset = at,
            defect
        );
        file.set_len(at).context(IoSnafu { path: &path })?;
        file.sync_all().context(IoSnafu { path: &path })?;
        return Ok(Scanned {
            entries,
            damaged: false,
        });
    }
    tracing::warn!(
        message = "A spool segment has an invalid record; the entries after it are not indexed and the segment is kept for inspection.",
        path = %path.display(),
        offset = at,
        defect
    );
    Ok(Scanned {
        entries,
        damaged: true,
    })
}

/// The segment ids in `dir`, in order, and the ids of `.settled` files without a segment.
pub(crate) fn list(dir: &Path) -> Result<(Vec<u64>, Vec<u64>), SpoolError> {
    let mut segs = Vec::new();
    let mut settled = Vec::new();
    for item in fs::read_dir(dir).context(IoSnafu { path: dir })? {
        let item = item.context(IoSnafu { path: dir })?;
        let name = item.file_name();
        let name = name.to_str().unwrap_or("");
        if let Some(id) = EntryId::from_file_name(name, SEGMENT_EXT) {
            segs.push(id.0);
        } else if let Some(id) = is_settled_file(name) {
            settled.push(id);
        }
    }
    segs.sort_unstable();
    settled.retain(|id| segs.binary_search(id).is_err());
    Ok((segs, settled))
}

/// Opens segment `seg` for reading: its path, the file and its length.
fn open_segment(dir: &Path, seg: u64) -> Result<(PathBuf, File, u64), SpoolError> {
    let path = segment_path(dir, seg);
    let file = File::open(&path).context(IoSnafu { path: &path })?;
    let len = file.metadata().context(IoSnafu { path: &path })?.len();
    Ok((path, file, len))
}

/// Reads the data of entry `id` at `offset` of segment `seg`, its header checked and its data
/// checksum verified. `Ok(Err(_))` is a corrupt record.
pub(crate) fn read_entry(
    dir: &Path,
    seg: u64,
    offset: u64,
    id: EntryId,
) -> Result<Result<Vec<u8>, &'static str>, SpoolError> {
    let (path, mut file, len) = open_segment(dir, seg)?;
    let mut stored = [0u8; 8];
    if offset + RECORD_PREFIX > len {
        return Ok(Err("record beyond the end of its segment"));
    }
    file.read_exact_at(&mut stored, offset)
        .context(IoSnafu { path: &path })?;
    if u64::from_le_bytes(stored) != id.0 {
        return Ok(Err("record id mismatch"));
    }
    let header = match crate::record::read_header_at(&mut file, offset + RECORD_PREFIX, len)
        .context(IoSnafu { path: &path })?
    {
        Ok(h) => h,
        Err(d) => return Ok(Err(d)),
    };
    crate::record::read_data(&mut file, &header).context(IoSnafu { path: &path })
}

/// The bytes of entry `id` as an entry file would hold them (header and data, unchecked), for
/// the dead-letter folder. `None` when its header is no longer valid.
pub(crate) fn raw_entry(dir: &Path, seg: u64, offset: u64) -> Result<Option<Vec<u8>>, SpoolError> {
    let (path, mut file, len) = open_segment(dir, seg)?;
    let start = offset + RECORD_PREFIX;
    let Ok(header) =
        crate::record::read_header_at(&mut file, start, len).context(IoSnafu { path: &path })?
    else {
        return Ok(None);
    };
    if header.trailer != 0 {
        // A streamed record becomes an entry file like any other: its trailer's data checksum
        // goes into the header (the data copied unchecked, as for a record written whole).
        let (true, Ok(n)) = (header.committed, usize::try_from(header.data_len)) else {
            return Ok(None);
        };
        let mut bytes = crate::record::entry_prefix(
            &header.group,
            &header.meta,
            header.data_len,
            header.data_crc,
        );
        let at = bytes.len();
        bytes.resize(at + n, 0);
        file.read_exact_at(&mut bytes[at..], header.data_offset)
            .context(IoSnafu { path: &path })?;
        return Ok(Some(bytes));
    }
    let Ok(n) = usize::try_from(header.data_offset + header.data_len - start) else {
        return Ok(None);
    };
    let mut bytes = vec![0u8; n];
    file.read_exact_at(&mut bytes, start)
        .context(IoSnafu { path: &path })?;
    Ok(Some(bytes))
}
