//! The writer: an append-only file that continues its chain across restarts.

use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, OnceLock, PoisonError, Weak};
use std::time::SystemTime;

use snafu::{ResultExt, Snafu};

use crate::line::{check, encode, read_line, sha256_hex, Fault, Read, MAX_LINE, ZERO_HASH};
use crate::{rfc3339_utc, Record};

/// When the log asks the operating system to put its lines on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPolicy {
    /// `fsync` (data) after every line: a record [`AuditLog::append`] returned for survives
    /// a power cut.
    EveryRecord,
    /// Leave it to the operating system (a crash of the process loses nothing, a power cut
    /// may lose the last lines); call [`AuditLog::sync`] at shutdown.
    Never,
}

/// Why the log could not be opened or written. The messages name the file and lines,
/// never a record's content.
#[derive(Debug, Snafu)]
#[snafu(visibility(pub(crate)))]
pub enum AuditError {
    /// Could not open the audit log.
    #[snafu(display("could not open the audit log {}: {source}", path.display()))]
    Open {
        /// The log file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// Could not read the audit log.
    #[snafu(display("could not read line {line} of the audit log {}: {source}", path.display()))]
    Read {
        /// The log file.
        path: PathBuf,
        /// The line being read.
        line: u64,
        /// The cause.
        source: io::Error,
    },
    /// The last line is incomplete: a write was cut short. The operator decides what to do.
    #[snafu(display(
        "the audit log {} ends with an incomplete line {line} (a write was cut short, e.g. by \
         a crash); the chain cannot continue from it. Keep a copy, truncate the file to its \
         first {keep_bytes} bytes (`truncate -s {keep_bytes} FILE`), check it with \
         `dicom-deid audit verify FILE`, and start again",
        path.display()
    ))]
    IncompleteTail {
        /// The log file.
        path: PathBuf,
        /// The incomplete line.
        line: u64,
        /// The length of the complete lines before it.
        keep_bytes: u64,
    },
    /// The last line is not a valid record, so the chain cannot continue from it.
    #[snafu(display(
        "line {line}, the last of the audit log {}, is not a valid audit record ({problem}); \
         the chain cannot continue from it. Check the file with `dicom-deid audit verify FILE`",
        path.display()
    ))]
    BadTail {
        /// The log file.
        path: PathBuf,
        /// The last line.
        line: u64,
        /// What is wrong with it (never its content).
        problem: String,
    },
    /// Could not encode the record.
    #[snafu(display("could not encode audit record {seq}: {source}"))]
    Encode {
        /// The `seq` it would have had.
        seq: u64,
        /// The cause.
        source: serde_json::Error,
    },
    /// A timing is NaN or infinite, which JSON cannot carry.
    #[snafu(display("audit record {seq}: timing {name:?} is not a finite number"))]
    NotFinite {
        /// The `seq` it would have had.
        seq: u64,
        /// The timing's name.
        name: String,
    },
    /// The record is longer than a line may be.
    #[snafu(display("audit record {seq} is {len} bytes long, more than {MAX_LINE}"))]
    TooLong {
        /// The `seq` it would have had.
        seq: u64,
        /// Its length.
        len: usize,
    },
    /// Writing failed; the partial line was removed and the log can be written again.
    #[snafu(display("could not write record {seq} to the audit log {}: {source}", path.display()))]
    Write {
        /// The log file.
        path: PathBuf,
        /// The `seq` it would have had.
        seq: u64,
        /// The cause.
        source: io::Error,
    },
    /// `fsync` failed, or a failed write could not be undone: the file's state is unknown.
    #[snafu(display(
        "could not make the audit log {} durable after record {seq}: {source}; it accepts no \
         more records (restart, and check it with `dicom-deid audit verify FILE`)",
        path.display()
    ))]
    Sync {
        /// The log file.
        path: PathBuf,
        /// The last record written.
        seq: u64,
        /// The cause.
        source: io::Error,
    },
    /// An earlier [`AuditError::Sync`] stopped the log.
    #[snafu(display(
        "the audit log {} accepts no more records after an earlier failure; restart",
        path.display()
    ))]
    Stopped {
        /// The log file.
        path: PathBuf,
    },
}

/// An open, append-only, hash-chained audit log (format in the crate docs). One writer per
/// file: the log does no locking, and two writers would break the chain. `Send`; the
/// server shares it behind a `Mutex`.
#[derive(Debug)]
pub struct AuditLog {
    file: File,
    path: PathBuf,
    sync: SyncPolicy,
    /// `seq` of the next line.
    next_seq: u64,
    /// SHA-256 of the last line: the next line's `prev`.
    prev: String,
    /// `hash` of the last line.
    last_hash: Option<String>,
    /// The file's length, all of it complete lines.
    len: u64,
    /// Set when the file's state is no longer known.
    stopped: bool,
    /// Group commit for [`AuditLog::append_deferred`].
    syncer: Syncer,
}

/// Makes lines written by [`AuditLog::append_deferred`] durable, outside the lock that guards
/// the log: [`Syncer::sync_through`] issues one `fsync` for every line written so far, so the
/// writers that wait at the same moment share it (group commit) instead of each holding the
/// log's lock through its own `fsync`. Cheap to clone; `Send + Sync`.
///
/// ```
/// # use dicom_deid_audit::{AuditLog, Event, Record, SyncPolicy};
/// # let dir = tempfile::tempdir().unwrap();
/// let log = std::sync::Mutex::new(AuditLog::open(&dir.path().join("a.jsonl"), SyncPolicy::EveryRecord).unwrap());
/// let record = Record { event: Event::Received, instance: "req-1.0".into(), ..Record::default() };
/// let (seq, syncer) = {
///     let mut log = log.lock().unwrap();
///     (log.append_deferred(&record).unwrap(), log.syncer())
/// };
/// syncer.sync_through(seq).unwrap(); // durable now; the lock was not held for the fsync
/// ```
#[derive(Debug, Clone)]
pub struct Syncer {
    inner: Arc<SyncState>,
}

#[derive(Debug)]
struct SyncState {
    /// A second handle on the log file.
    file: File,
    path: PathBuf,
    /// `seq` of the last line completely written.
    written: AtomicU64,
    /// `seq` of the last line known durable; its lock is held through each `fsync`.
    durable: Mutex<u64>,
    /// Set when an `fsync` failed: the log accepts no more records.
    stopped: AtomicBool,
    /// `false` under [`SyncPolicy::Never`]: syncing is left to the operating system.
    enabled: bool,
    /// Requests to the background syncer of [`Syncer::start`], started on first use. It holds
    /// only a `Weak` of this state and ends when this sender is dropped with it.
    background: OnceLock<Option<mpsc::Sender<u64>>>,
}

impl Syncer {
    /// Returns once line `seq` (a value returned by [`AuditLog::append_deferred`]) is on disk.
    /// If an `fsync` started after it was written already covered it, this returns at once;
    /// otherwise it syncs the file, covering every line written until then. A failed `fsync`
    /// stops the log ([`AuditError::Sync`], then [`AuditError::Stopped`]). Under
    /// [`SyncPolicy::Never`] it returns at once (syncing is left to the operating system).
    pub fn sync_through(&self, seq: u64) -> Result<(), AuditError> {
        let s = &*self.inner;
        if !s.enabled {
            return Ok(());
        }
        let mut durable = s.durable.lock().unwrap_or_else(PoisonError::into_inner);
        if *durable >= seq {
            return Ok(());
        }
        let path = s.path.as_path();
        if s.stopped.load(Ordering::SeqCst) {
            return StoppedSnafu { path }.fail();
        }
        // Every line up to `upto` was written before this fsync starts, so it covers them.
        let upto = s.written.load(Ordering::SeqCst);
        if let Err(source) = s.file.sync_data() {
            // After a failed fsync the page cache cannot be trusted (fsyncgate).
            s.stopped.store(true, Ordering::SeqCst);
            return Err(source).context(SyncSnafu { path, seq });
        }
        *durable = upto;
        Ok(())
    }

    /// Starts making line `seq` durable in the background and returns at once, so that the
    /// `fsync` runs while the caller waits for something else (the spool's own sync); a later
    /// [`Syncer::sync_through`]`(seq)` then returns as soon as that `fsync` is done (it waits
    /// on the lock the background `fsync` holds), or syncs itself if the background thread
    /// has not got to it yet. Requests that queue up while a sync runs share the next one. A
    /// failure stops the log as in `sync_through`, whose caller sees it. Under
    /// [`SyncPolicy::Never`] this does nothing.
    pub fn start(&self, seq: u64) {
        let s = &*self.inner;
        if !s.enabled {
            return;
        }
        let sender = s.background.get_or_init(|| {
            let (tx, rx) = mpsc::channel::<u64>();
            let state = Arc::downgrade(&self.inner);
            std::thread::Builder::new()
                .name("audit-sync".into())
                .spawn(move || background_syncs(&state, &rx))
                .ok()
                .map(|_| tx)
        });
        // Without a thread (spawn failed) the caller's own sync_through does the work.
        if let Some(tx) = sender {
            let _ = tx.send(seq);
        }
    }

    /// The `seq` of the last line known to be on disk through this syncer.
    pub fn durable_seq(&self) -> u64 {
        *self
            .inner
            .durable
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// The background syncer's loop: one `fsync` through the highest `seq` asked for so far, until
/// the log's state (and with it the only sender) is gone.
fn background_syncs(state: &Weak<SyncState>, requests: &mpsc::Receiver<u64>) {
    while let Ok(mut seq) = requests.recv() {
        while let Ok(later) = requests.try_recv() {
            seq = seq.max(later);
        }
        let Some(inner) = state.upgrade() else {
            return;
        };
        // A failure stops the log; the caller's sync_through reports it.
        let _ = Syncer { inner }.sync_through(seq);
    }
}

impl AuditLog {
    /// Opens the log at `path`, creating it (mode 0600, and under
    /// [`SyncPolicy::EveryRecord`] syncing its folder) if it does not exist.
    ///
    /// An existing file is read once to its end; its last line must be a complete, valid
    /// record, whose `seq` and hash the next record continues from. A file that ends with an
    /// incomplete line (a crash mid-write) or an invalid last line is refused with an error
    /// naming the line: the operator truncates it (see the crate docs) — the log never
    /// repairs itself. `open` checks only the last line; [`verify`](crate::verify) checks
    /// them all.
    pub fn open(path: &Path, sync: SyncPolicy) -> Result<AuditLog, AuditError> {
        let mut options = OpenOptions::new();
        options.read(true).append(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let (file, created) = match options.clone().create_new(true).open(path) {
            Ok(file) => (file, true),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                (options.open(path).context(OpenSnafu { path })?, false)
            }
            Err(e) => return Err(e).context(OpenSnafu { path }),
        };
        if created && sync == SyncPolicy::EveryRecord {
            sync_parent(path).context(OpenSnafu { path })?;
        }
        let syncer = Syncer {
            inner: Arc::new(SyncState {
                file: file.try_clone().context(OpenSnafu { path })?,
                path: path.to_path_buf(),
                written: AtomicU64::new(0),
                durable: Mutex::new(0),
                stopped: AtomicBool::new(false),
                enabled: sync == SyncPolicy::EveryRecord,
                background: OnceLock::new(),
            }),
        };
        let mut log = AuditLog {
            file,
            path: path.to_path_buf(),
            sync,
            next_seq: 1,
            prev: ZERO_HASH.to_string(),
            last_hash: None,
            len: 0,
            stopped: false,
            syncer,
        };
        if !created {
            log.continue_chain()?;
        }
        // Lines already in the file count as written (a sync covers them too).
        log.syncer
            .inner
            .written
            .store(log.last_seq(), Ordering::SeqCst);
        Ok(log)
    }

    /// Reads the existing file to its last line and continues the chain from it.
    fn continue_chain(&mut self) -> Result<(), AuditError> {
        let path = self.path.as_path();
        let mut reader = BufReader::with_capacity(1 << 16, &self.file);
        let mut buf = Vec::new();
        let mut last = Vec::new();
        let mut lines = 0u64;
        let mut len = 0u64;
        let mut last_too_long = false;
        loop {
            let line = lines + 1;
            match read_line(&mut reader, &mut buf, MAX_LINE).context(ReadSnafu { path, line })? {
                Read::Eof => break,
                Read::Complete => {
                    std::mem::swap(&mut last, &mut buf);
                    last_too_long = false;
                    len += last.len() as u64 + 1;
                }
                Read::TooLong {
                    ended: true,
                    len: line_len,
                } => {
                    last_too_long = true;
                    len += line_len + 1;
                }
                Read::Incomplete | Read::TooLong { ended: false, .. } => {
                    return IncompleteTailSnafu {
                        path,
                        line,
                        keep_bytes: len,
                    }
                    .fail();
                }
            }
            lines = line;
        }
        if lines == 0 {
            return Ok(());
        }
        if last_too_long {
            return BadTailSnafu {
                path,
                line: lines,
                problem: format!("longer than {MAX_LINE} bytes"),
            }
            .fail();
        }
        let header = check(&last).map_err(|fault| {
            let problem = match fault {
                Fault::Malformed(reason) => reason,
                Fault::Altered => "altered: its content does not match its hash".to_string(),
            };
            BadTailSnafu {
                path,
                line: lines,
                problem,
            }
            .build()
        })?;
        self.next_seq = header.seq.checked_add(1).ok_or_else(|| {
            BadTailSnafu {
                path,
                line: lines,
                problem: "its seq is the largest possible".to_string(),
            }
            .build()
        })?;
        self.prev = sha256_hex(&last);
        self.last_hash = Some(header.hash);
        self.len = len;
        Ok(())
    }

    /// Appends `record` as the next line and returns its `seq`. The line is written with
    /// one `write` and, under [`SyncPolicy::EveryRecord`], synced before this returns.
    ///
    /// If the write fails, the partial line is cut off again and the log stays usable; if
    /// that or the sync fails, the log stops ([`AuditError::Stopped`] from then on).
    pub fn append(&mut self, record: &Record) -> Result<u64, AuditError> {
        self.write_record(record, self.sync == SyncPolicy::EveryRecord)
    }

    /// Appends `record` as the next line without syncing it, whatever the [`SyncPolicy`], and
    /// returns its `seq`: pass it to [`Syncer::sync_through`] (after releasing whatever lock
    /// guards the log) before telling anyone the record is written. Failures as for
    /// [`AuditLog::append`].
    pub fn append_deferred(&mut self, record: &Record) -> Result<u64, AuditError> {
        self.write_record(record, false)
    }

    /// The group-commit handle of this log (see [`Syncer`]).
    pub fn syncer(&self) -> Syncer {
        self.syncer.clone()
    }

    fn write_record(&mut self, record: &Record, sync: bool) -> Result<u64, AuditError> {
        let path = self.path.as_path();
        if self.stopped || self.syncer.inner.stopped.load(Ordering::SeqCst) {
            return StoppedSnafu { path }.fail();
        }
        let seq = self.next_seq;
        if let Some((name, _)) = record
            .timings_ms
            .iter()
            .flatten()
            .find(|(_, ms)| !ms.is_finite())
        {
            return NotFiniteSnafu { seq, name }.fail();
        }
        let time = rfc3339_utc(SystemTime::now());
        let (mut line, hash) =
            encode(seq, &time, &self.prev, record).context(EncodeSnafu { seq })?;
        if line.len() > MAX_LINE {
            return TooLongSnafu {
                seq,
                len: line.len(),
            }
            .fail();
        }
        let prev = sha256_hex(&line);
        line.push(b'\n');
        if let Err(source) = self.file.write_all(&line) {
            // Take back whatever part of the line reached the file.
            if let Err(undo) = self.file.set_len(self.len) {
                self.stopped = true;
                return Err(undo).context(SyncSnafu { path, seq });
            }
            return Err(source).context(WriteSnafu { path, seq });
        }
        if sync {
            if let Err(source) = self.file.sync_data() {
                // After a failed fsync the page cache cannot be trusted (fsyncgate).
                self.stopped = true;
                return Err(source).context(SyncSnafu { path, seq });
            }
        }
        self.len += line.len() as u64;
        self.next_seq = seq + 1;
        self.prev = prev;
        self.last_hash = Some(hash);
        self.syncer.inner.written.store(seq, Ordering::SeqCst);
        Ok(seq)
    }

    /// Syncs the file to disk (for [`SyncPolicy::Never`], e.g. at shutdown).
    pub fn sync(&mut self) -> Result<(), AuditError> {
        let path = self.path.as_path();
        let seq = self.last_seq();
        let result = self.file.sync_data().context(SyncSnafu { path, seq });
        if result.is_err() {
            self.stopped = true;
        }
        result
    }

    /// The file this log writes.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The `seq` of the last line (0 for an empty log).
    pub fn last_seq(&self) -> u64 {
        self.next_seq - 1
    }

    /// The `hash` of the last line (`None` for an empty log): record it outside the log to
    /// anchor it (see the crate docs).
    pub fn last_hash(&self) -> Option<&str> {
        self.last_hash.as_deref()
    }
}

/// Makes the new file's directory entry durable.
fn sync_parent(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        File::open(parent)?.sync_all()?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_can_move_between_threads() {
        fn is_send<T: Send>() {}
        is_send::<AuditLog>();
        is_send::<AuditError>();
    }

    #[test]
    fn a_new_file_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        AuditLog::open(&path, SyncPolicy::EveryRecord).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    fn record(i: usize) -> Record {
        Record {
            event: crate::Event::Received,
            instance: format!("req-{i}"),
            ..Record::default()
        }
    }

    #[test]
    fn deferred_lines_become_durable_through_the_syncer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let mut log = AuditLog::open(&path, SyncPolicy::EveryRecord).unwrap();
        let syncer = log.syncer();
        assert_eq!(syncer.durable_seq(), 0);
        let first = log.append_deferred(&record(1)).unwrap();
        let second = log.append_deferred(&record(2)).unwrap();
        assert_eq!((first, second), (1, 2));
        assert_eq!(syncer.durable_seq(), 0, "nothing synced yet");
        // One fsync covers every line written before it ...
        syncer.sync_through(first).unwrap();
        assert_eq!(syncer.durable_seq(), 2);
        // ... so asking for the second one is already answered.
        syncer.sync_through(second).unwrap();
        assert_eq!(syncer.durable_seq(), 2);
        drop(log);
        // Reopened, the syncer starts from the lines already there.
        let mut log = AuditLog::open(&path, SyncPolicy::EveryRecord).unwrap();
        let third = log.append_deferred(&record(3)).unwrap();
        assert_eq!(third, 3);
        log.syncer().sync_through(third).unwrap();
        assert_eq!(log.syncer().durable_seq(), 3);
    }

    #[test]
    fn a_started_sync_runs_in_the_background_and_ends_with_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let mut log = AuditLog::open(&path, SyncPolicy::EveryRecord).unwrap();
        let syncer = log.syncer();
        let first = log.append_deferred(&record(1)).unwrap();
        let second = log.append_deferred(&record(2)).unwrap();
        syncer.start(first);
        // Nobody calls sync_through: the background thread makes both lines durable.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let wait_for = |done: &dyn Fn() -> bool, what: &str| {
            while !done() {
                assert!(std::time::Instant::now() < deadline, "{what}");
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        };
        wait_for(
            &|| syncer.durable_seq() >= second,
            "the background sync never ran",
        );
        syncer.sync_through(second).unwrap();
        // The thread holds no strong reference: dropping the log and its syncers frees the
        // state (and the sender, which ends the thread).
        let state = Arc::downgrade(&syncer.inner);
        drop(syncer);
        drop(log);
        // (It may still be leaving its last sync, whose strong reference ends with it.)
        wait_for(
            &|| state.upgrade().is_none(),
            "the background syncer keeps the log alive",
        );

        // Under SyncPolicy::Never there is nothing to start.
        let mut log = AuditLog::open(&dir.path().join("b.jsonl"), SyncPolicy::Never).unwrap();
        let seq = log.append_deferred(&record(1)).unwrap();
        log.syncer().start(seq);
        assert!(log.syncer().inner.background.get().is_none());
    }

    #[test]
    fn concurrent_writers_keep_one_valid_chain() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let log = Arc::new(Mutex::new(
            AuditLog::open(&path, SyncPolicy::EveryRecord).unwrap(),
        ));
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let log = log.clone();
                std::thread::spawn(move || {
                    for i in 0..50 {
                        let (seq, syncer) = {
                            let mut log = log.lock().unwrap();
                            (
                                log.append_deferred(&record(t * 100 + i)).unwrap(),
                                log.syncer(),
                            )
                        };
                        syncer.sync_through(seq).unwrap();
                        assert!(syncer.durable_seq() >= seq);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let summary = crate::verify(BufReader::new(File::open(&path).unwrap())).unwrap();
        assert_eq!(summary.last_seq, 400);
        assert_eq!(log.lock().unwrap().syncer().durable_seq(), 400);
    }
}
