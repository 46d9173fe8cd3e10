//! Durable store-and-forward queue of the dicom-deid gateway.
//!
//! The server writes every de-identified instance here with [`Spool::put`] and answers the sender
//! only after `put` returned `Ok`; forwarder workers take batches out with [`Spool::lease`] and
//! settle each [`Lease`] with [`Lease::ack`] (delivered: delete), [`Lease::dead_letter`] (refused
//! for good: move aside with a reason) or [`Lease::retry_later`]. A lease that is dropped without
//! being settled is released: the entry stays queued. Nothing acknowledged is lost.
//!
//! # What it does not do
//!
//! It knows nothing of DICOM, HTTP or destinations beyond their names: data and meta are opaque
//! bytes. It does not schedule retries, back off or deliver — the forwarder decides when to call
//! `lease` again. It keeps no attempt counts on disk (they restart at 0 after a restart; at worst
//! a delivery is retried a few more times than its budget). It is synchronous `std::fs` code: call
//! it from a blocking pool (`spawn_blocking`). One [`Spool`] owns a root at a time: `open` takes
//! an exclusive `flock` on `root/lock` and a second `open` (in any process) fails with
//! [`SpoolError::Locked`]; clone the `Spool` to share it. It does not encrypt, and does not bound
//! `dead/` (an operator empties it). The meta of every queued entry is kept in memory: keep it
//! small (at most [`MAX_META_LEN`]).
//!
//! # On-disk layout
//!
//! ```text
//! root/
//!   lock                          flock'd by the process that has the spool open
//!   tmp/                          writes in progress; emptied by `open` (never acknowledged)
//!   queue/<destination>/<id>.seg      segments: queued entries appended one after the other
//!   queue/<destination>/<id>.settled  ids of the segment's entries delivered or dead-lettered
//!   queue/<destination>/<id>.entry    an entry in a file of its own (written by earlier
//!                                     versions; still indexed, leased and settled)
//!   dead/<destination>/<id>.entry    dead-lettered entries, with
//!   dead/<destination>/<id>.reason   the reason, one line of UTF-8 text
//! ```
//!
//! `<id>` is an [`EntryId`]: nanoseconds since the Unix epoch, zero-padded to 20 digits, strictly
//! increasing within a process and started above every id already on disk at `open`, so file
//! name order is age order; a segment is named after the id of its first entry. Destination and
//! group names must match `[A-Za-z0-9_-][A-Za-z0-9._-]*`, at most 128 bytes
//! ([`SpoolError::BadName`] otherwise), so they can never name a path outside the root. The
//! group is kept in the entry header, not in the path.
//!
//! An entry (all integers little-endian), in a file of its own or in a segment after its `u64`
//! id:
//!
//! ```text
//! 0   8 bytes  magic "DDSPOOL1"
//! 8   u32      header length H
//! 12  u32      CRC-32 of the header
//! 16  H bytes  header: u64 data length, u32 CRC-32 of the data,
//!                      u16 group length + group (UTF-8), u32 meta length + meta
//! 16+H         data, exactly `data length` bytes (then end of file, for an entry file)
//! ```
//!
//! A streamed entry ([`Spool::begin`]) is a segment record whose data was not known when it
//! started: magic "DDSPOOL2", the same header with 0 as data checksum, the data, then a 16-byte
//! trailer — "DDCOMMIT", the CRC-32 of the data, and a CRC-32 of the header's checksum and the
//! data's (binding the trailer to its record). It exists only once its trailer is valid.
//!
//! A `.settled` file holds 12-byte records: the `u64` id and its CRC-32.
//!
//! `open` reads only headers (and `.settled` files), so a restart costs one small read per
//! entry; the data checksum is verified by [`Lease::data`]. An entry file in `queue/` whose
//! header fails its checks is moved to `dead/` at `open` with the defect as reason; a data
//! checksum mismatch is reported as [`SpoolError::Corrupt`] naming the id, and the caller
//! dead-letters it.
//!
//! # Why an acknowledged put survives kill -9 and power loss
//!
//! `put` appends the entry (its id, header and data) to the destination's current segment and
//! returns `Ok` only after an `fdatasync` of the segment that *started after* the append
//! completed. Appends to a segment are made one at a time, in order, under the destination's
//! lock; the `fdatasync`s are group-committed, so puts arriving while one runs share the next.
//! A new segment is created (and its directory fsynced, so its name is durable) before the first
//! append to it; one is started every 64 MiB and at every `open` (old segments are never
//! appended to again). A crash can leave a torn record at the end of a segment; no acknowledged
//! entry follows it, because appends complete in order and the acknowledgement of any later
//! entry waited for an `fdatasync` that covered the torn one too. So `open` stops reading a
//! segment at its first invalid header: it cuts the tail off the newest segment (the one being
//! appended to when the process stopped), and leaves an older segment untouched and reported
//! (kept for inspection: that would mean damage after the fact). A torn record whose header
//! survived fails its data checksum when leased and is dead-lettered like any corrupt entry.
//!
//! A streamed entry takes its room at the segment's end when it begins: its id and header are
//! written then, under the destination's lock like any append, and later appends go after the
//! room while its data is written into it. So every later acknowledgement waited for an
//! `fdatasync` that covered that header, and `open` steps over the room by the lengths in it
//! whatever became of the data. Its commit writes the trailer and returns `Ok` only after an
//! `fdatasync` that started after that write. At `open`, a streamed record without a valid
//! trailer (a crash before or during the commit, or a stream given up) is skipped and not
//! indexed; one whose room runs past the end of its segment (a crash while it was the last
//! thing in the file) ends the scan like the end of the file.
//!
//! `ack` and `dead_letter` append the id to the segment's `.settled` file and return after its
//! (group-committed) `fdatasync`; `dead_letter` first writes the entry and its reason to
//! `dead/` durably. A crash before that sync brings the entry back: delivery is
//! at-least-once, never at-most-once. A segment whose entries are all settled is deleted with
//! its `.settled` file once nothing more is appended to it. After a failed write or
//! `fdatasync` of a segment, later puts to that destination fail until the spool is reopened:
//! the page cache cannot be trusted after a failed sync (and recovery relies on appends being
//! durable in order). (All this relies on the storage honouring `fsync`, as every durable store
//! does.) The converse does not hold: an `Err` from `put` means "not known to be durable", not
//! "not stored" — if the `fdatasync` fails after the append, the entry stays queued and will be
//! delivered although the sender was told to retry.
//!
//! Why segments and not a file per entry: creating, syncing, renaming and deleting a file per
//! instance (and fsyncing its directory twice) cost more than the writes themselves; see the
//! README's gateway benchmark. The current segment's blocks are allocated up to 16 MiB ahead
//! of its appends (`fallocate` keeping the file's length, where the filesystem can), so that
//! an append's writeback allocates nothing and its `fdatasync` has less metadata to write; the
//! length `open` reads is still the end of the last record written.
//!
//! The global lock guards only the in-memory index; appends to different destinations run in
//! parallel. [`SpoolConfig::max_bytes`] bounds the bytes of queued entries (plus puts in
//! progress); beyond it `put` answers [`SpoolError::Full`] at once. Dead-lettered entries do
//! not count, and neither do settled entries whose segment still holds unsettled ones (a
//! segment is at most 64 MiB plus one entry), nor the blocks allocated ahead in a segment
//! (at most 16 MiB, never past 64 MiB unless one entry needs it).
//!
//! # Example
//!
//! ```
//! use dicom_deid_spool::{Spool, SpoolConfig};
//!
//! # fn main() -> Result<(), dicom_deid_spool::SpoolError> {
//! # let dir = tempfile::tempdir().unwrap();
//! let spool = Spool::open(dir.path(), SpoolConfig { max_bytes: 1 << 30 })?;
//! let id = spool.put("orthanc", "study-7f3a", br#"{"sop":"2.25.1"}"#, b"instance bytes")?;
//! // ... only now tell the sender the instance is stored ...
//!
//! for lease in spool.lease("orthanc", 100, 64 << 20)? {
//!     assert_eq!(lease.id(), id);
//!     let data = lease.data()?; // verifies the checksum
//!     assert_eq!(data, b"instance bytes");
//!     lease.ack()?; // delivered: deleted for good
//! }
//! assert_eq!(spool.depth().entries, 0);
//! # Ok(()) }
//! ```

mod group;
mod record;
mod segment;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use snafu::{ResultExt, Snafu};
use tracing::warn;

pub use record::{MAX_META_LEN, MAX_NAME_LEN};

const ENTRY_EXT: &str = "entry";
const REASON_EXT: &str = "reason";

/// Distinguishes concurrent probe files.
static PROBES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Errors of the spool. Messages name paths and entry ids, never data, meta or reasons.
#[derive(Debug, Snafu)]
#[snafu(visibility(pub(crate)))]
#[non_exhaustive]
pub enum SpoolError {
    /// The spool is full: {needed} more bytes would exceed the limit of {max_bytes} ({used} in use)
    Full {
        /// Bytes the refused entry would have taken on disk.
        needed: u64,
        /// Bytes queued or being written.
        used: u64,
        /// The configured limit.
        max_bytes: u64,
    },
    /// I/O error on {}: {source}
    #[snafu(display("I/O error on {}: {source}", path.display()))]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Spool entry {id} is corrupt: {defect}
    Corrupt {
        /// The corrupt entry.
        id: EntryId,
        /// What is wrong with it (a fixed description, never file content).
        defect: &'static str,
    },
    /// Invalid {what} name: {reason}
    BadName {
        /// "destination" or "group".
        what: &'static str,
        /// Why it was refused.
        reason: &'static str,
    },
    /// The spool at {} is already open in another process (or another `Spool::open`)
    #[snafu(display("The spool at {} is already open in another process (or another Spool::open)", path.display()))]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// Meta blob of {len} bytes exceeds the maximum of {max}
    MetaTooLarge {
        /// Length of the refused blob.
        len: usize,
        /// [`MAX_META_LEN`].
        max: usize,
    },
}

/// Identifier of a spool entry: nanoseconds since the Unix epoch when it was put, made strictly
/// increasing. Displays as 20 zero-padded digits, so lexical order is age order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EntryId(u64);

impl EntryId {
    /// The numeric value.
    pub fn as_u64(self) -> u64 {
        self.0
    }

    fn file_name(self) -> String {
        format!("{self}.{ENTRY_EXT}")
    }

    fn reason_file_name(self) -> String {
        format!("{self}.{REASON_EXT}")
    }

    /// Parses `<20 digits>.<ext>`.
    fn from_file_name(name: &str, ext: &str) -> Option<EntryId> {
        let stem = name.strip_suffix(ext)?.strip_suffix('.')?;
        stem.parse().ok()
    }
}

impl fmt::Display for EntryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:020}", self.0)
    }
}

/// The error of parsing an [`EntryId`] that is not 20 decimal digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseEntryIdError;

impl fmt::Display for ParseEntryIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an entry id is 20 decimal digits")
    }
}

impl std::error::Error for ParseEntryIdError {}

impl FromStr for EntryId {
    type Err = ParseEntryIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ParseEntryIdError);
        }
        s.parse().map(EntryId).map_err(|_| ParseEntryIdError)
    }
}

/// Limits of a spool.
#[derive(Debug, Clone)]
pub struct SpoolConfig {
    /// Bytes of queued entry files (header + meta + data) beyond which `put` answers
    /// [`SpoolError::Full`].
    pub max_bytes: u64,
}

/// Counts of a spool at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpoolStats {
    /// Queued entries (leased ones included).
    pub entries: u64,
    /// Bytes of queued entry files.
    pub bytes: u64,
    /// Queued entries currently leased.
    pub leased: u64,
    /// Bytes reserved by puts in progress.
    pub writing_bytes: u64,
    /// Entries in the dead-letter folder.
    pub dead_entries: u64,
    /// Bytes of dead-lettered entry files.
    pub dead_bytes: u64,
    /// The configured limit.
    pub max_bytes: u64,
    /// Queued entries per destination (only destinations with entries).
    pub destinations: BTreeMap<String, DestinationStats>,
}

/// Counts of one destination's queue.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DestinationStats {
    /// Queued entries (leased ones included).
    pub entries: u64,
    /// Bytes of queued entry files.
    pub bytes: u64,
    /// Entries currently leased.
    pub leased: u64,
}

/// A durable queue rooted at one directory. Cheap to clone; all clones share one index.
#[derive(Clone)]
pub struct Spool {
    inner: Arc<Inner>,
}

impl fmt::Debug for Spool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Spool")
            .field("root", &self.inner.root)
            .field("max_bytes", &self.inner.config.max_bytes)
            .finish_non_exhaustive()
    }
}

struct Inner {
    root: PathBuf,
    queue_dir: PathBuf,
    tmp_dir: PathBuf,
    dead_dir: PathBuf,
    config: SpoolConfig,
    state: Mutex<State>,
    /// One group-commit syncer per `queue/<destination>` directory (see [`DirSync`]).
    queue_syncs: Mutex<HashMap<Arc<str>, Arc<DirSync>>>,
    /// The segment appender of each destination.
    appenders: Mutex<HashMap<Arc<str>, Arc<segment::Appender>>>,
    /// Holds an exclusive `flock` on `root/lock` for the life of the spool (released by the
    /// kernel when the process dies, however it dies).
    _lock: File,
}

#[derive(Default)]
struct State {
    destinations: HashMap<Arc<str>, DestQueue>,
    queued_bytes: u64,
    reserved_bytes: u64,
    dead_entries: u64,
    dead_bytes: u64,
    last_id: u64,
    /// `queue/<destination>` directories known to exist durably.
    queue_dirs: HashSet<Arc<str>>,
    /// `dead/<destination>` directories known to exist durably.
    dead_dirs: HashSet<Arc<str>>,
}

#[derive(Default)]
struct DestQueue {
    entries: BTreeMap<EntryId, Entry>,
    groups: HashMap<Arc<str>, BTreeSet<EntryId>>,
    bytes: u64,
    leased: u64,
}

struct Entry {
    group: Arc<str>,
    meta: Arc<[u8]>,
    data_len: u64,
    file_len: u64,
    attempts: u32,
    leased: bool,
    location: Location,
}

/// Where an entry's bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Location {
    /// Its own `<id>.entry` file (written by earlier versions; still read, acked and
    /// dead-lettered).
    File,
    /// A record of segment `seg`, starting at `offset` (its id, then the entry bytes).
    Segment { seg: u64, offset: u64 },
}

impl Entry {
    /// A queued entry, not leased, as read from its header at `location` (`file_len` bytes on
    /// disk).
    fn from_header(header: record::Header, file_len: u64, location: Location) -> Entry {
        Entry {
            group: header.group.as_str().into(),
            meta: header.meta.into(),
            data_len: header.data_len,
            file_len,
            attempts: 0,
            leased: false,
            location,
        }
    }
}

impl DestQueue {
    fn insert(&mut self, id: EntryId, entry: Entry) {
        self.bytes += entry.file_len;
        self.groups
            .entry(entry.group.clone())
            .or_default()
            .insert(id);
        self.entries.insert(id, entry);
    }

    fn remove(&mut self, id: EntryId) -> Option<Entry> {
        let entry = self.entries.remove(&id)?;
        self.bytes -= entry.file_len;
        if entry.leased {
            self.leased -= 1;
        }
        if let Some(ids) = self.groups.get_mut(&entry.group) {
            ids.remove(&id);
            if ids.is_empty() {
                self.groups.remove(&entry.group);
            }
        }
        Some(entry)
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The index is updated in small steps that leave it consistent; a panic elsewhere while
        // holding the lock does not make it unusable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn entry_path(&self, destination: &str, id: EntryId) -> PathBuf {
        self.queue_dir.join(destination).join(id.file_name())
    }

    /// Reserves `file_len` bytes of the spool's limit for a new entry of `destination` and takes
    /// its id (after making `queue/<destination>` if it is new). The caller hands the bytes back
    /// (`Reservation`) unless the entry is indexed.
    fn take_id(&self, destination: &str, file_len: u64) -> Result<EntryId, SpoolError> {
        let max_bytes = self.config.max_bytes;
        let (id, dir_known) = {
            let mut state = self.lock();
            let used = state.queued_bytes + state.reserved_bytes;
            if used.saturating_add(file_len) > max_bytes {
                return FullSnafu {
                    needed: file_len,
                    used,
                    max_bytes,
                }
                .fail();
            }
            state.reserved_bytes += file_len;
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
                .unwrap_or(0);
            state.last_id = now.max(state.last_id + 1);
            (
                EntryId(state.last_id),
                state.queue_dirs.contains(destination),
            )
        };
        if !dir_known {
            let made = self.ensure_dir(&self.queue_dir, destination);
            if let Err(e) = made {
                self.lock().reserved_bytes -= file_len;
                return Err(e);
            }
            self.lock().queue_dirs.insert(destination.into());
        }
        Ok(id)
    }

    /// Indexes a new entry written at `location`, its `file_len` bytes moving from reserved to
    /// queued.
    #[allow(clippy::too_many_arguments)]
    fn index(
        &self,
        destination: &str,
        id: EntryId,
        group: &str,
        meta: &[u8],
        data_len: u64,
        file_len: u64,
        location: Location,
    ) {
        let mut state = self.lock();
        state.reserved_bytes -= file_len;
        state.queued_bytes += file_len;
        let destination: Arc<str> = match state.destinations.get_key_value(destination) {
            Some((key, _)) => key.clone(),
            None => destination.into(),
        };
        state.destinations.entry(destination).or_default().insert(
            id,
            Entry {
                group: group.into(),
                meta: meta.into(),
                data_len,
                file_len,
                attempts: 0,
                leased: false,
                location,
            },
        );
    }

    /// The group-commit syncer of `queue/<destination>/`.
    fn queue_sync(&self, destination: &str) -> Arc<DirSync> {
        per_destination(&self.queue_syncs, destination, || {
            DirSync::new(self.queue_dir.join(destination))
        })
    }

    /// Indexes the unsettled entries of `destination`'s segments into `queue` (at `open`),
    /// deletes segments with none left and `.settled` files without a segment, and returns the
    /// highest id seen.
    fn index_segments(
        &self,
        destination: &Arc<str>,
        dir: &Path,
        queue: &mut DestQueue,
    ) -> Result<u64, SpoolError> {
        let (segs, orphans) = segment::list(dir)?;
        let queue_sync = self.queue_sync(destination);
        for orphan in orphans {
            segment::remove_segment(dir, orphan, &queue_sync)?;
        }
        let appender = self.appender(destination);
        let mut last_id = segs.last().copied().unwrap_or(0);
        for &seg in &segs {
            let settled = segment::read_settled(dir, seg)?;
            let scanned = segment::scan(dir, seg, Some(&seg) == segs.last())?;
            let mut live = 0;
            for found in scanned.entries {
                last_id = last_id.max(found.id.0);
                if settled.contains(&found.id.0) {
                    continue;
                }
                live += 1;
                let file_len = found.header.file_len() - found.offset;
                let location = Location::Segment {
                    seg,
                    offset: found.offset,
                };
                queue.insert(
                    found.id,
                    Entry::from_header(found.header, file_len, location),
                );
            }
            if live == 0 && !scanned.damaged {
                segment::remove_segment(dir, seg, &queue_sync)?;
            } else {
                appender.found(seg, live, scanned.damaged);
            }
        }
        Ok(last_id)
    }

    /// Writes a dead-lettered segment entry to `dead/<destination>/<id>.entry` (an entry file,
    /// as earlier versions wrote them) with its reason. Returns once both names are durable.
    fn copy_to_dead(
        &self,
        destination: &str,
        id: EntryId,
        entry: &[u8],
        reason: &str,
    ) -> Result<(), SpoolError> {
        let dead_dest = self.dead_reason(destination, id, reason)?;
        let tmp = self.tmp_dir.join(id.file_name());
        let _ = fs::remove_file(&tmp);
        write_durable(&tmp, &[entry])?;
        let to = dead_dest.join(id.file_name());
        fs::rename(&tmp, &to).context(IoSnafu { path: &to })?;
        sync_dir(&dead_dest)
    }

    /// Makes `dead/<destination>/` if needed and writes `<id>.reason` into it (not yet synced
    /// in the folder); returns the folder. The reason goes first: a crash before the entry
    /// follows leaves a stray reason file and the entry still queued, which is harmless; the
    /// other order could leave a dead entry without a reason.
    fn dead_reason(
        &self,
        destination: &str,
        id: EntryId,
        reason: &str,
    ) -> Result<PathBuf, SpoolError> {
        let known = self.lock().dead_dirs.contains(destination);
        if !known {
            self.ensure_dir(&self.dead_dir, destination)?;
            self.lock().dead_dirs.insert(destination.into());
        }
        let dead_dest = self.dead_dir.join(destination);
        let tmp = self.tmp_dir.join(id.reason_file_name());
        let mut line = reason.replace(['\n', '\r'], " ");
        line.push('\n');
        write_durable(&tmp, &[line.as_bytes()])?;
        let reason_path = dead_dest.join(id.reason_file_name());
        fs::rename(&tmp, &reason_path).context(IoSnafu { path: &reason_path })?;
        Ok(dead_dest)
    }

    /// The segment appender of `destination`.
    fn appender(&self, destination: &str) -> Arc<segment::Appender> {
        per_destination(&self.appenders, destination, || {
            segment::Appender::new(self.queue_dir.join(destination))
        })
    }

    /// Creates `dir/name` if needed and makes its directory entry durable.
    fn ensure_dir(&self, parent: &Path, name: &str) -> Result<(), SpoolError> {
        let dir = parent.join(name);
        fs::create_dir_all(&dir).context(IoSnafu { path: &dir })?;
        sync_dir(parent)
    }

    /// Moves a queued entry to `dead/<destination>/` with its reason. Returns once both names are
    /// durable. Does not touch the index.
    fn move_to_dead(&self, destination: &str, id: EntryId, reason: &str) -> Result<(), SpoolError> {
        let dead_dest = self.dead_reason(destination, id, reason)?;
        let from = self.entry_path(destination, id);
        let to = dead_dest.join(id.file_name());
        fs::rename(&from, &to).context(IoSnafu { path: &from })?;
        sync_dir(&dead_dest)?;
        sync_dir(&self.queue_dir.join(destination))
    }
}

impl Spool {
    /// Opens the spool at `root`, creating `root/{queue,tmp,dead}` as needed. Deletes whatever is
    /// in `tmp/` (writes that never completed were never acknowledged), indexes every entry in
    /// `queue/` (restart recovery) and counts `dead/`. An entry whose header is corrupt is moved
    /// to `dead/` with the defect as reason.
    pub fn open(root: &Path, config: SpoolConfig) -> Result<Spool, SpoolError> {
        fs::create_dir_all(root).context(IoSnafu { path: root })?;
        let inner = Inner {
            root: root.to_owned(),
            queue_dir: root.join("queue"),
            tmp_dir: root.join("tmp"),
            dead_dir: root.join("dead"),
            config,
            state: Mutex::new(State::default()),
            queue_syncs: Mutex::new(HashMap::new()),
            appenders: Mutex::new(HashMap::new()),
            _lock: lock_root(root)?,
        };
        for dir in [&inner.queue_dir, &inner.tmp_dir, &inner.dead_dir] {
            fs::create_dir(dir)
                .or_else(|e| match e.kind() {
                    std::io::ErrorKind::AlreadyExists => Ok(()),
                    _ => Err(e),
                })
                .context(IoSnafu { path: dir })?;
        }
        sync_dir(root)?;
        if let Some(parent) = root.parent().filter(|p| !p.as_os_str().is_empty()) {
            // The root itself may just have been created. Best effort: the parent may not be
            // readable by this user, and an existing root needs nothing from it.
            if let Err(e) = sync_dir(parent) {
                warn!(message = "Could not fsync the spool root's parent directory.", error = %e);
            }
        }

        clean_tmp(&inner.tmp_dir)?;
        let mut last_id = 0;
        let mut corrupt = Vec::new();
        {
            let mut state = inner.lock();
            for (destination, dir) in subdirs(&inner.queue_dir)? {
                let mut queue = DestQueue::default();
                for (id, path) in entry_files(&dir, ENTRY_EXT)? {
                    last_id = last_id.max(id.0);
                    let mut file = File::open(&path).context(IoSnafu { path: &path })?;
                    match record::read_header(&mut file).context(IoSnafu { path: &path })? {
                        Ok(header) => {
                            let file_len = header.file_len();
                            queue.insert(id, Entry::from_header(header, file_len, Location::File))
                        }
                        Err(defect) => corrupt.push((destination.clone(), id, defect)),
                    }
                }
                last_id = last_id.max(inner.index_segments(&destination, &dir, &mut queue)?);
                state.queued_bytes += queue.bytes;
                state.queue_dirs.insert(destination.clone());
                state.destinations.insert(destination, queue);
            }
            for (destination, dir) in subdirs(&inner.dead_dir)? {
                for (id, path) in entry_files(&dir, ENTRY_EXT)? {
                    last_id = last_id.max(id.0);
                    let len = fs::metadata(&path).context(IoSnafu { path: &path })?.len();
                    state.dead_entries += 1;
                    state.dead_bytes += len;
                }
                state.dead_dirs.insert(destination);
            }
            state.last_id = last_id;
        }
        for (destination, id, defect) in corrupt {
            warn!(
                message = "Corrupt spool entry moved to the dead-letter folder.",
                spool_id = %id,
                destination = %destination,
                defect
            );
            let len = fs::metadata(inner.entry_path(&destination, id))
                .map(|m| m.len())
                .unwrap_or(0);
            inner.move_to_dead(&destination, id, &format!("corrupt at open: {defect}"))?;
            let mut state = inner.lock();
            state.dead_entries += 1;
            state.dead_bytes += len;
        }
        Ok(Spool {
            inner: Arc::new(inner),
        })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// Checks that the spool can take a durable write right now (for a readiness probe): writes,
    /// fsyncs and deletes a small file in `tmp/`. Does not touch the queue.
    pub fn probe(&self) -> Result<(), SpoolError> {
        let n = PROBES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = self
            .inner
            .tmp_dir
            .join(format!("probe-{}-{n}", std::process::id()));
        let written = write_durable(&path, &[b"probe"]);
        let removed = fs::remove_file(&path).context(IoSnafu { path: &path });
        written.and(removed)
    }

    /// Stores one entry durably and returns its id. Only when this returns `Ok` may the caller
    /// acknowledge: the entry then survives a crash or power loss. `meta` (at most
    /// [`MAX_META_LEN`] bytes) is stored in the same file as `data`, so both exist or neither.
    /// Entries of one `group` are handed out together by [`Spool::lease`].
    ///
    /// Fails with [`SpoolError::Full`] when the entry would take the spool beyond its limit,
    /// and with [`SpoolError::BadName`] when `destination` or `group` is not a safe name.
    pub fn put(
        &self,
        destination: &str,
        group: &str,
        meta: &[u8],
        data: &[u8],
    ) -> Result<EntryId, SpoolError> {
        self.put_with(destination, group, meta, data, |_| {})
    }

    /// [`Spool::put`], calling `while_syncing(id)` once the entry is written and before the
    /// wait for its sync — for work that should overlap that wait (the server starts the sync
    /// of its audit line there). The entry is not durable yet when `while_syncing` runs, and
    /// may never be if the sync then fails: only `Ok` from this call lets the caller
    /// acknowledge. Not called when nothing was written.
    pub fn put_with(
        &self,
        destination: &str,
        group: &str,
        meta: &[u8],
        data: &[u8],
        while_syncing: impl FnOnce(EntryId),
    ) -> Result<EntryId, SpoolError> {
        check_entry(destination, group, meta)?;
        let inner = &*self.inner;
        let file_len = record::file_len(group, meta, data) + segment::RECORD_PREFIX;
        let id = inner.take_id(destination, file_len)?;
        let reservation = Reservation {
            inner,
            bytes: file_len,
        };
        let prefix = record::encode_prefix(group, meta, data);
        let queue_sync = inner.queue_sync(destination);
        let (written, synced) =
            inner
                .appender(destination)
                .append(id, &prefix, data, &queue_sync, || while_syncing(id));
        // Not written: nothing to index. Written but not known durable: the caller must not
        // acknowledge, but the entry is in its segment (at-least-once), so it is indexed.
        let Some((seg, offset)) = written else {
            return synced.map(|()| id);
        };
        std::mem::forget(reservation);
        let location = Location::Segment { seg, offset };
        inner.index(
            destination,
            id,
            group,
            meta,
            data.len() as u64,
            file_len,
            location,
        );
        synced.map(|()| id)
    }

    /// Starts an entry of `data_len` bytes whose data is not all known yet: the data is written
    /// piece by piece as it comes ([`Pending::write`]) and the entry exists only once
    /// [`Pending::commit`] returns `Ok` — durable then, exactly as after [`Spool::put`]. Dropping
    /// the `Pending` without committing it leaves nothing queued (its room in the segment is
    /// skipped, at `open` too). The room for `data_len` bytes is taken now, from the spool's
    /// limit ([`SpoolError::Full`]) and in the destination's current segment, so that other
    /// puts go on meanwhile. For a writer that receives an entry over the network: its data is
    /// on its way to the disk while the rest arrives, and the sync at the end has less to do.
    pub fn begin(
        &self,
        destination: &str,
        group: &str,
        meta: &[u8],
        data_len: u64,
    ) -> Result<Pending, SpoolError> {
        check_entry(destination, group, meta)?;
        let inner = &*self.inner;
        let (prefix, header_crc) = record::encode_streamed_prefix(group, meta, data_len);
        let file_len =
            segment::RECORD_PREFIX + prefix.len() as u64 + data_len + record::TRAILER_LEN;
        let id = inner.take_id(destination, file_len)?;
        let reservation = Reservation {
            inner,
            bytes: file_len,
        };
        let queue_sync = inner.queue_sync(destination);
        let appender = inner.appender(destination);
        let streamed = appender.reserve(id, &prefix, header_crc, data_len, &queue_sync)?;
        std::mem::forget(reservation);
        Ok(Pending {
            inner: self.inner.clone(),
            appender,
            destination: destination.into(),
            group: group.into(),
            meta: meta.into(),
            id,
            file_len,
            streamed: Some(streamed),
        })
    }

    /// Leases up to `max_count` entries and `max_bytes` bytes of data of one group queued for
    /// `destination`: the group of the oldest entry not already leased, its entries oldest first.
    /// The first entry is handed out even when its data alone exceeds `max_bytes`, so a large
    /// entry is never stuck. Returns an empty `Vec` when nothing is ready.
    pub fn lease(
        &self,
        destination: &str,
        max_count: usize,
        max_bytes: u64,
    ) -> Result<Vec<Lease>, SpoolError> {
        check_name("destination", destination)?;
        let mut state = self.inner.lock();
        let Some((dest_key, queue)) = state.destinations.get_key_value(destination) else {
            return Ok(Vec::new());
        };
        let dest_key = dest_key.clone();
        let Some(group) = queue
            .entries
            .values()
            .find(|e| !e.leased)
            .map(|e| e.group.clone())
        else {
            return Ok(Vec::new());
        };
        let queue = state
            .destinations
            .get_mut(destination)
            .expect("looked up above");
        let mut leases = Vec::new();
        let mut bytes = 0u64;
        for id in &queue.groups[&group] {
            if leases.len() >= max_count {
                break;
            }
            let entry = queue
                .entries
                .get_mut(id)
                .expect("group index matches entries");
            if entry.leased {
                continue;
            }
            if !leases.is_empty() && bytes.saturating_add(entry.data_len) > max_bytes {
                break;
            }
            bytes += entry.data_len;
            entry.leased = true;
            leases.push(Lease {
                inner: self.inner.clone(),
                destination: dest_key.clone(),
                id: *id,
                group: group.clone(),
                meta: entry.meta.clone(),
                data_len: entry.data_len,
                attempts: entry.attempts,
                location: entry.location,
                settled: false,
            });
        }
        queue.leased += leases.len() as u64;
        Ok(leases)
    }

    /// Counts of queued, leased and dead entries.
    pub fn depth(&self) -> SpoolStats {
        let state = self.inner.lock();
        let destinations: BTreeMap<String, DestinationStats> = state
            .destinations
            .iter()
            .filter(|(_, q)| !q.entries.is_empty())
            .map(|(name, q)| {
                let stats = DestinationStats {
                    entries: q.entries.len() as u64,
                    bytes: q.bytes,
                    leased: q.leased,
                };
                (name.to_string(), stats)
            })
            .collect();
        SpoolStats {
            entries: destinations.values().map(|d| d.entries).sum(),
            bytes: state.queued_bytes,
            leased: destinations.values().map(|d| d.leased).sum(),
            writing_bytes: state.reserved_bytes,
            dead_entries: state.dead_entries,
            dead_bytes: state.dead_bytes,
            max_bytes: self.inner.config.max_bytes,
            destinations,
        }
    }
}

/// Room reserved by a `put` in progress; released if the put fails.
struct Reservation<'a> {
    inner: &'a Inner,
    bytes: u64,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        self.inner.lock().reserved_bytes -= self.bytes;
    }
}

/// An entry being written piece by piece ([`Spool::begin`]). It becomes queued only when
/// [`Pending::commit`] returns `Ok`; dropped before, it leaves nothing queued.
pub struct Pending {
    inner: Arc<Inner>,
    /// The destination's appender, looked up once (not at every write).
    appender: Arc<segment::Appender>,
    destination: Box<str>,
    group: Box<str>,
    meta: Box<[u8]>,
    id: EntryId,
    file_len: u64,
    /// `None` once committed or given up.
    streamed: Option<segment::Streamed>,
}

impl fmt::Debug for Pending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pending")
            .field("id", &self.id)
            .field("destination", &self.destination)
            .finish_non_exhaustive()
    }
}

impl Pending {
    /// The id the entry will have.
    pub fn id(&self) -> EntryId {
        self.id
    }

    /// Writes the next `bytes` of the data. More than the `data_len` given to
    /// [`Spool::begin`] in all is an error. After an error the entry cannot be committed.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), SpoolError> {
        let Some(streamed) = self.streamed.as_mut() else {
            return Err(self.given_up());
        };
        let written = self.appender.write_streamed(streamed, bytes);
        if written.is_err() {
            self.give_up();
        }
        written
    }

    /// Once every byte of the data is written: makes the entry durable and queues it, calling
    /// `while_syncing(id)` before the wait for its sync, as [`Spool::put_with`] does. Only `Ok`
    /// lets the caller acknowledge; as with `put`, an `Err` after the entry was written leaves
    /// it queued (at-least-once).
    pub fn commit(mut self, while_syncing: impl FnOnce(EntryId)) -> Result<EntryId, SpoolError> {
        let id = self.id;
        let Some(streamed) = self.streamed.as_ref() else {
            return Err(self.given_up());
        };
        let (written, synced) = self
            .appender
            .commit_streamed(streamed, || while_syncing(id));
        if !written {
            self.give_up();
            return synced.map(|()| id);
        }
        let streamed = self.streamed.take().expect("checked above");
        let location = Location::Segment {
            seg: streamed.seg_id,
            offset: streamed.offset,
        };
        self.inner.index(
            &self.destination,
            id,
            &self.group,
            &self.meta,
            streamed.data_len(),
            self.file_len,
            location,
        );
        synced.map(|()| id)
    }

    /// The error of a write or commit after the entry was given up.
    fn given_up(&self) -> SpoolError {
        SpoolError::Io {
            path: self.inner.queue_dir.join(&*self.destination),
            source: std::io::Error::other("the streamed entry was already given up"),
        }
    }

    /// Gives the room back: the record stays uncommitted on disk (skipped at `open`), its bytes
    /// leave the spool's count and its segment no longer waits for it.
    fn give_up(&mut self) {
        let Some(streamed) = self.streamed.take() else {
            return;
        };
        self.inner.lock().reserved_bytes -= self.file_len;
        let queue_sync = self.inner.queue_sync(&self.destination);
        if let Err(e) = self.appender.abandon(&streamed, &queue_sync) {
            warn!(message = "Could not delete an emptied spool segment.", destination = %self.destination, error = %e);
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.give_up();
    }
}

/// One entry handed out by [`Spool::lease`]. No other lease hands it out until this one is
/// settled. Dropping it without [`ack`](Lease::ack) or [`dead_letter`](Lease::dead_letter)
/// releases it: the entry stays queued and is leased again later.
pub struct Lease {
    inner: Arc<Inner>,
    destination: Arc<str>,
    id: EntryId,
    group: Arc<str>,
    meta: Arc<[u8]>,
    data_len: u64,
    attempts: u32,
    location: Location,
    settled: bool,
}

impl fmt::Debug for Lease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lease")
            .field("id", &self.id)
            .field("destination", &self.destination)
            .field("group", &self.group)
            .field("data_len", &self.data_len)
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

impl Lease {
    /// The entry's id.
    pub fn id(&self) -> EntryId {
        self.id
    }

    /// The destination it was queued for.
    pub fn destination(&self) -> &str {
        &self.destination
    }

    /// The group it was put with.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// The meta blob it was put with.
    pub fn meta(&self) -> &[u8] {
        &self.meta
    }

    /// Length of its data in bytes.
    pub fn data_len(&self) -> u64 {
        self.data_len
    }

    /// How many times it was handed back with [`retry_later`](Lease::retry_later) since the
    /// spool was opened (not persisted: starts at 0 after a restart).
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Reads the data from disk and verifies its checksum. A damaged file is
    /// [`SpoolError::Corrupt`] naming the id; dead-letter it.
    pub fn data(&self) -> Result<Vec<u8>, SpoolError> {
        let corrupt = |defect| SpoolError::Corrupt {
            id: self.id,
            defect,
        };
        if let Location::Segment { seg, offset } = self.location {
            let dir = self.inner.queue_dir.join(&*self.destination);
            return segment::read_entry(&dir, seg, offset, self.id)?.map_err(corrupt);
        }
        let path = self.path();
        let mut file = File::open(&path).context(IoSnafu { path: &path })?;
        let header = record::read_header(&mut file)
            .context(IoSnafu { path: &path })?
            .map_err(corrupt)?;
        record::read_data(&mut file, &header)
            .context(IoSnafu { path: &path })?
            .map_err(corrupt)
    }

    /// Delivered: deletes the entry durably. If the file cannot be deleted, the error is returned
    /// and the entry stays queued (released). If only the directory fsync after the delete fails,
    /// the entry is gone from the queue but may reappear after a power loss (at-least-once).
    pub fn ack(mut self) -> Result<(), SpoolError> {
        if let Location::Segment { seg, .. } = self.location {
            let queue_sync = self.inner.queue_sync(&self.destination);
            self.inner
                .appender(&self.destination)
                .settle(seg, self.id, &queue_sync)?;
            self.forget(false);
            return Ok(());
        }
        let path = self.path();
        match fs::remove_file(&path) {
            // Already gone (removed behind the spool's back): what ack wants.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            other => other.context(IoSnafu { path: &path })?,
        }
        // The file is gone from the namespace: forget it whatever the directory fsync says.
        self.forget(false);
        let queue_sync = self.inner.queue_sync(&self.destination);
        queue_sync.sync_changes()
    }

    /// [`Lease::ack`] for a batch: the settled records of all segment entries are written
    /// first and each `.settled` file is synced once, so a delivered batch costs one
    /// `fdatasync` per segment rather than one per entry. One result per lease, in order; a
    /// lease whose ack failed is released (still queued), as with `ack`.
    pub fn ack_all(leases: Vec<Lease>) -> Vec<Result<(), SpoolError>> {
        let mut results: Vec<Option<Result<(), SpoolError>>> =
            (0..leases.len()).map(|_| None).collect();
        // Entry files (written before segments existed) take the one-by-one path; segment
        // entries wait, with their position and segment, for their batch.
        let mut pending: Vec<(usize, u64, Lease)> = Vec::new();
        for (i, lease) in leases.into_iter().enumerate() {
            match lease.location {
                Location::File => results[i] = Some(lease.ack()),
                Location::Segment { seg, .. } => pending.push((i, seg, lease)),
            }
        }
        // A batch per spool and destination.
        while let Some((_, _, first)) = pending.first() {
            let (inner, destination) = (first.inner.clone(), first.destination.clone());
            let (batch, rest): (Vec<_>, Vec<_>) = pending.into_iter().partition(|(_, _, l)| {
                Arc::ptr_eq(&l.inner, &inner) && l.destination == destination
            });
            pending = rest;
            let entries: Vec<(u64, EntryId)> = batch
                .iter()
                .map(|(_, seg, lease)| (*seg, lease.id))
                .collect();
            let queue_sync = inner.queue_sync(&destination);
            let settled = inner
                .appender(&destination)
                .settle_all(&entries, &queue_sync);
            for ((i, _, mut lease), result) in batch.into_iter().zip(settled) {
                if result.is_ok() {
                    lease.forget(false);
                }
                results[i] = Some(result);
            }
        }
        results
            .into_iter()
            .map(|r| r.expect("every lease was settled or failed"))
            .collect()
    }

    /// Refused for good: moves the entry to `dead/<destination>/` beside a file holding `reason`
    /// (one line; the caller keeps PHI out of it). If the entry cannot be moved, the error is
    /// returned and it stays queued (released); if it was moved but a directory fsync failed, it
    /// counts as dead-lettered and the error is still returned.
    pub fn dead_letter(mut self, reason: &str) -> Result<(), SpoolError> {
        if let Location::Segment { seg, offset } = self.location {
            let dir = self.inner.queue_dir.join(&*self.destination);
            let entry = match segment::raw_entry(&dir, seg, offset) {
                Ok(entry) => entry.unwrap_or_default(),
                Err(e) => {
                    // Its segment vanished behind the spool's back: nothing left to deliver.
                    if !segment::segment_path(&dir, seg).exists() {
                        self.forget(false);
                    }
                    return Err(e);
                }
            };
            self.inner
                .copy_to_dead(&self.destination, self.id, &entry, reason)?;
            let queue_sync = self.inner.queue_sync(&self.destination);
            self.inner
                .appender(&self.destination)
                .settle(seg, self.id, &queue_sync)?;
            self.forget(true);
            return Ok(());
        }
        let result = self.inner.move_to_dead(&self.destination, self.id, reason);
        if result.is_ok() || !self.path().exists() {
            let in_dead = self
                .inner
                .dead_dir
                .join(&*self.destination)
                .join(self.id.file_name())
                .exists();
            self.forget(in_dead);
        }
        result
    }

    /// Not delivered this time: releases the lease and counts one more attempt.
    pub fn retry_later(mut self) {
        self.release(true);
    }

    fn path(&self) -> PathBuf {
        self.inner.entry_path(&self.destination, self.id)
    }

    /// Removes the entry from the index after its file left `queue/`.
    fn forget(&mut self, dead: bool) {
        self.settled = true;
        let mut state = self.inner.lock();
        let removed = state
            .destinations
            .get_mut(&*self.destination)
            .and_then(|q| q.remove(self.id));
        if let Some(entry) = removed {
            state.queued_bytes -= entry.file_len;
            if dead {
                // In dead/ it is an entry file: without the id that precedes it in a segment.
                let prefix = match entry.location {
                    Location::Segment { .. } => segment::RECORD_PREFIX,
                    Location::File => 0,
                };
                state.dead_entries += 1;
                state.dead_bytes += entry.file_len - prefix;
            }
        }
    }

    fn release(&mut self, attempted: bool) {
        self.settled = true;
        let mut state = self.inner.lock();
        let Some(queue) = state.destinations.get_mut(&*self.destination) else {
            return;
        };
        if let Some(entry) = queue.entries.get_mut(&self.id) {
            if entry.leased {
                entry.leased = false;
                queue.leased -= 1;
            }
            if attempted {
                entry.attempts = entry.attempts.saturating_add(1);
            }
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if !self.settled {
            self.release(false);
        }
    }
}

/// The names and meta of a new entry, checked.
fn check_entry(destination: &str, group: &str, meta: &[u8]) -> Result<(), SpoolError> {
    check_name("destination", destination)?;
    check_name("group", group)?;
    snafu::ensure!(
        meta.len() <= MAX_META_LEN,
        MetaTooLargeSnafu {
            len: meta.len(),
            max: MAX_META_LEN
        }
    );
    Ok(())
}

/// Accepts `[A-Za-z0-9_-][A-Za-z0-9._-]*` of 1 to [`MAX_NAME_LEN`] bytes: a single path component
/// that is never `.`, `..`, hidden, or anything a filesystem treats specially.
fn check_name(what: &'static str, name: &str) -> Result<(), SpoolError> {
    let reason = if name.is_empty() {
        "empty"
    } else if name.len() > MAX_NAME_LEN {
        "longer than 128 bytes"
    } else if name.starts_with('.') {
        "starts with a dot"
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        "only ASCII letters, digits, '-', '_' and '.' are allowed"
    } else {
        return Ok(());
    };
    BadNameSnafu { what, reason }.fail()
}

/// The value of `destination` in `map`, made by `make` the first time it is asked for.
fn per_destination<T>(
    map: &Mutex<HashMap<Arc<str>, Arc<T>>>,
    destination: &str,
    make: impl FnOnce() -> T,
) -> Arc<T> {
    let mut map = map.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(value) = map.get(destination) {
        return value.clone();
    }
    let value = Arc::new(make());
    map.insert(destination.into(), value.clone());
    value
}

/// Takes the exclusive lock of the spool at `root`, so that two processes never share one.
fn lock_root(root: &Path) -> Result<File, SpoolError> {
    let path = root.join("lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .context(IoSnafu { path: &path })?;
    #[cfg(unix)]
    {
        use rustix::fs::{flock, FlockOperation};
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => return LockedSnafu { path }.fail(),
            Err(e) => return Err(std::io::Error::from(e)).context(IoSnafu { path }),
        }
    }
    Ok(file)
}

/// Creates `path` (which must not exist), writes `parts`, and fsyncs it.
fn write_durable(path: &Path, parts: &[&[u8]]) -> Result<(), SpoolError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .context(IoSnafu { path })?;
    for part in parts {
        file.write_all(part).context(IoSnafu { path })?;
    }
    file.sync_all().context(IoSnafu { path })
}

/// Group commit of one directory's entries ([`group::GroupSync`]): concurrent renames,
/// creations and deletions in the directory share `fsync`s. A caller changes the directory,
/// takes a ticket with [`DirSync::changed`], then calls [`DirSync::sync_after`] with it. A
/// failed fsync is an error for its caller only; the next caller runs a new one.
struct DirSync {
    dir: PathBuf,
    group: group::GroupSync,
    /// The directory, opened once rather than for every fsync; reopened after a failed one.
    handle: Mutex<Option<File>>,
}

impl DirSync {
    fn new(dir: PathBuf) -> DirSync {
        DirSync {
            group: group::GroupSync::new(dir.clone(), false),
            dir,
            handle: Mutex::new(None),
        }
    }

    /// Takes a ticket for a change already made in the directory.
    fn changed(&self) -> u64 {
        self.group.ticket()
    }

    /// Returns once every change already made in the directory is durable.
    fn sync_changes(&self) -> Result<(), SpoolError> {
        self.sync_after(self.changed())
    }

    /// Returns once the change of `ticket` is durable.
    fn sync_after(&self, ticket: u64) -> Result<(), SpoolError> {
        self.group.sync_after(ticket, || {
            let mut handle = self.handle.lock().unwrap_or_else(PoisonError::into_inner);
            if handle.is_none() {
                *handle = Some(File::open(&self.dir).context(IoSnafu { path: &self.dir })?);
            }
            let synced = handle
                .as_ref()
                .expect("opened above")
                .sync_all()
                .context(IoSnafu { path: &self.dir });
            if synced.is_err() {
                *handle = None;
            }
            synced
        })
    }
}

/// Makes the directory entries of `dir` (creations, renames, deletions) durable.
fn sync_dir(dir: &Path) -> Result<(), SpoolError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .context(IoSnafu { path: dir })
}

/// Deletes everything in `tmp/`.
fn clean_tmp(tmp: &Path) -> Result<(), SpoolError> {
    let mut removed = 0usize;
    for item in fs::read_dir(tmp).context(IoSnafu { path: tmp })? {
        let item = item.context(IoSnafu { path: tmp })?;
        let path = item.path();
        let is_dir = item.file_type().map(|t| t.is_dir()).unwrap_or(false);
        let result = if is_dir {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        };
        result.context(IoSnafu { path: &path })?;
        removed += 1;
    }
    if removed > 0 {
        warn!(
            message = "Removed unfinished writes from the spool's tmp directory.",
            count = removed,
            path = %tmp.display()
        );
        sync_dir(tmp)?;
    }
    Ok(())
}

/// The subdirectories of `dir` with valid destination names; anything else is reported and
/// left alone.
fn subdirs(dir: &Path) -> Result<Vec<(Arc<str>, PathBuf)>, SpoolError> {
    let mut out = Vec::new();
    for item in fs::read_dir(dir).context(IoSnafu { path: dir })? {
        let item = item.context(IoSnafu { path: dir })?;
        let path = item.path();
        let is_dir = item.file_type().map(|t| t.is_dir()).unwrap_or(false);
        match item.file_name().to_str() {
            Some(name) if is_dir && check_name("destination", name).is_ok() => {
                out.push((name.into(), path))
            }
            _ => warn!(message = "Ignoring unexpected item in the spool.", path = %path.display()),
        }
    }
    Ok(out)
}

/// The `<id>.<ext>` files of `dir`, ordered by id; other files are reported (except the reason
/// files beside dead entries) and left alone.
fn entry_files(dir: &Path, ext: &str) -> Result<Vec<(EntryId, PathBuf)>, SpoolError> {
    let mut out = Vec::new();
    for item in fs::read_dir(dir).context(IoSnafu { path: dir })? {
        let item = item.context(IoSnafu { path: dir })?;
        let path = item.path();
        let name = item.file_name();
        let name = name.to_str().unwrap_or("");
        match EntryId::from_file_name(name, ext) {
            Some(id) if item.file_type().map(|t| t.is_file()).unwrap_or(false) => {
                out.push((id, path))
            }
            _ if EntryId::from_file_name(name, REASON_EXT).is_some() => {}
            _ if EntryId::from_file_name(name, segment::SEGMENT_EXT).is_some()
                || segment::is_settled_file(name).is_some() => {}
            _ => warn!(message = "Ignoring unexpected item in the spool.", path = %path.display()),
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_of_acks_costs_one_settled_sync_per_segment() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), SpoolConfig { max_bytes: 1 << 30 }).unwrap();
        for i in 0..6u8 {
            spool.put("d", "g", b"", &[i; 100]).unwrap();
        }
        spool.put("e", "g", b"", &[9; 100]).unwrap();
        let mut leases = spool.lease("d", 10, 1 << 30).unwrap();
        leases.extend(spool.lease("e", 10, 1 << 30).unwrap());
        assert_eq!(leases.len(), 7);
        let ids: Vec<EntryId> = leases.iter().map(Lease::id).collect();
        let results = Lease::ack_all(leases);
        assert_eq!(results.len(), 7);
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        assert_eq!(spool.inner.appender("d").settled_syncs(), 1);
        assert_eq!(spool.inner.appender("e").settled_syncs(), 1);
        assert_eq!(spool.depth().entries, 0);
        assert!(spool.lease("d", 10, 1 << 30).unwrap().is_empty());
        // Durably settled: nothing comes back after a reopen.
        drop(spool);
        let spool = Spool::open(dir.path(), SpoolConfig { max_bytes: 1 << 30 }).unwrap();
        assert_eq!(spool.depth().entries, 0, "acked {ids:?} came back");
    }

    #[test]
    fn segments_are_allocated_ahead_of_their_appends_without_growing_their_length() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), SpoolConfig { max_bytes: 1 << 30 }).unwrap();
        let id = spool.put("d", "g", b"m", &[7u8; 1000]).unwrap();
        let allocated = spool.inner.appender("d").allocated();
        if allocated == u64::MAX {
            eprintln!("this filesystem cannot preallocate; appends allocate as they go");
        } else {
            assert_eq!(allocated, segment::PREALLOCATE);
        }
        // The file's length is the end of its one record: `open` reads exactly that.
        let seg = dir.path().join(format!("queue/d/{id}.seg"));
        let len = std::fs::metadata(&seg).unwrap().len();
        assert!(len < 2000, "{len}");
        if allocated != u64::MAX {
            // An entry larger than what is left ahead extends the allocation to cover it.
            spool
                .put("d", "g", b"m", &vec![1u8; segment::PREALLOCATE as usize])
                .unwrap();
            let after = spool.inner.appender("d").allocated();
            assert!(after >= len + segment::PREALLOCATE && after <= segment::MAX_SEGMENT_BYTES);
        }
        drop(spool);
        let spool = Spool::open(dir.path(), SpoolConfig { max_bytes: 1 << 30 }).unwrap();
        let lease = spool.lease("d", 1, 1 << 30).unwrap().pop().unwrap();
        assert_eq!((lease.id(), lease.data().unwrap()), (id, vec![7u8; 1000]));
    }

    #[test]
    fn names() {
        for ok in ["orthanc", "dest-1", "a.b_c", "2.25.1234", "X"] {
            check_name("destination", ok).unwrap();
        }
        let long = "a".repeat(129);
        for bad in [
            "",
            ".",
            "..",
            ".hidden",
            "a/b",
            "/abs",
            "a\\b",
            "a\0b",
            "a b",
            "é",
            long.as_str(),
        ] {
            assert!(
                matches!(
                    check_name("group", bad),
                    Err(SpoolError::BadName { what: "group", .. })
                ),
                "{bad:?} accepted"
            );
        }
        check_name("group", &"a".repeat(128)).unwrap();
    }

    #[test]
    fn entry_id_text() {
        let id = EntryId(42);
        assert_eq!(id.to_string(), "00000000000000000042");
        assert_eq!(id.file_name(), "00000000000000000042.entry");
        assert_eq!(
            EntryId::from_file_name("00000000000000000042.entry", ENTRY_EXT),
            Some(id)
        );
        assert_eq!(EntryId::from_file_name("42.entry", ENTRY_EXT), None);
        assert_eq!(
            EntryId::from_file_name("00000000000000000042.reason", ENTRY_EXT),
            None
        );
        assert_eq!(
            "+0000000000000000042".parse::<EntryId>(),
            Err(ParseEntryIdError)
        );
        assert!(EntryId(1) < EntryId(u64::MAX));
    }

    fn fsyncs(sync: &DirSync) -> u64 {
        sync.group.syncs()
    }

    #[test]
    fn one_directory_fsync_covers_every_change_made_before_it_started() {
        let dir = tempfile::tempdir().unwrap();
        let sync = DirSync::new(dir.path().to_owned());
        let (a, b, c) = (sync.changed(), sync.changed(), sync.changed());
        sync.sync_after(c).unwrap();
        assert_eq!(fsyncs(&sync), 1);
        // Changes made before that fsync began: covered, nothing more to do.
        sync.sync_after(a).unwrap();
        sync.sync_after(b).unwrap();
        assert_eq!(fsyncs(&sync), 1);
        // A change made after it: needs an fsync of its own.
        let d = sync.changed();
        sync.sync_after(d).unwrap();
        assert_eq!(fsyncs(&sync), 2);
    }

    #[test]
    fn concurrent_changes_share_fsyncs_and_each_returns_only_once_covered() {
        let dir = tempfile::tempdir().unwrap();
        let sync = Arc::new(DirSync::new(dir.path().to_owned()));
        let threads = 8;
        let per_thread = 50;
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let sync = sync.clone();
                let dir = dir.path().to_owned();
                std::thread::spawn(move || {
                    for i in 0..per_thread {
                        fs::write(dir.join(format!("{t}-{i}")), b"x").unwrap();
                        let ticket = sync.changed();
                        sync.sync_after(ticket).unwrap();
                        let durable = sync.group.durable();
                        assert!(
                            durable >= ticket,
                            "returned before ticket {ticket} was covered"
                        );
                    }
                })
            })
            .collect();
        for handle in handles {
            handle.join().unwrap();
        }
        let total = threads * per_thread;
        assert_eq!(sync.group.durable(), total);
        assert!(fsyncs(&sync) >= 1 && fsyncs(&sync) <= total);
        eprintln!("{total} changes, {} directory fsyncs", fsyncs(&sync));
    }

    #[test]
    fn a_failed_directory_fsync_is_an_error_and_covers_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let sync = DirSync::new(dir.path().join("gone"));
        let ticket = sync.changed();
        assert!(matches!(
            sync.sync_after(ticket),
            Err(SpoolError::Io { .. })
        ));
        assert_eq!(sync.group.durable(), 0);
        fs::create_dir(dir.path().join("gone")).unwrap();
        sync.sync_after(ticket).unwrap();
        assert_eq!(sync.group.durable(), ticket);
    }

    #[test]
    fn error_messages_name_ids_not_content() {
        let e = SpoolError::Corrupt {
            id: EntryId(7),
            defect: "data checksum mismatch",
        };
        assert_eq!(
            e.to_string(),
            "Spool entry 00000000000000000007 is corrupt: data checksum mismatch"
        );
    }
}
