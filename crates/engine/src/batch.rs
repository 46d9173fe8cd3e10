//! Batch de-identification of a file or a folder tree: what `dicom-deid batch` runs.
//!
//! [`run`] walks the input lazily (one directory handle per level, never a list of
//! every path): a pool of worker threads takes turns pulling the next regular
//! file from the walk, and each mirrors the relative path of every written instance
//! under the output. Memory is bounded by the number of workers times the size of
//! the largest file, whatever the number of files.
//!
//! Each worker reads one whole file into a buffer it reuses, runs it through
//! [`Engine::process_into`] (or
//! [`Engine::plan`] in a dry run) and writes the result to a temporary file in the
//! destination folder that is then renamed over the destination, so an output
//! path either does not exist or holds a complete, verified instance. Outputs
//! are not fsynced: a batch run that crashes is simply run again.
//!
//! A run keeps going past bad files. Every file ends as one [`Event`] — written,
//! rejected by the engine, skipped (not DICOM, not a regular file, a symlink loop)
//! or an I/O error — which the caller receives through its `progress` callback on
//! the calling thread, together with the running totals. Events and errors name
//! paths and tags, never element values.
//!
//! What it does not do: print anything (the CLI does), or decide which profile
//! applies (the [`Engine`] carries it).
//!
//! ```no_run
//! # use dicom_deid_engine::{Engine, Key, Profile};
//! # use dicom_deid_engine::batch::{run, BatchOptions};
//! # use std::path::Path;
//! # let engine = Engine::new(Profile::load("basic").unwrap(), Key::generate().unwrap());
//! let summary = run(&engine, Path::new("in"), Path::new("out"), &BatchOptions::default(), &|p| {
//!     if let Some(line) = p.event.problem_line() {
//!         eprintln!("{line}");
//!     }
//! })
//! .unwrap();
//! eprintln!("{summary}");
//! std::process::exit(summary.exit_code().into());
//! ```

use std::fmt;
use std::fs;
use std::io::{self, Read, Write};
use std::num::NonZeroUsize;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Sender};
use snafu::{ResultExt, Snafu};
use walkdir::WalkDir;

use crate::{Engine, Rejection, Report};

/// How a batch run behaves.
#[derive(Debug, Clone)]
pub struct BatchOptions {
    /// Worker threads; `None` uses [`std::thread::available_parallelism`].
    pub jobs: Option<NonZeroUsize>,
    /// Plan only: run the pipeline without writing anything and report the changes.
    pub dry_run: bool,
    /// Files larger than this are rejected without being read (each worker holds
    /// one whole file in memory).
    pub max_file_bytes: u64,
}

impl Default for BatchOptions {
    fn default() -> Self {
        BatchOptions {
            jobs: None,
            dry_run: false,
            max_file_bytes: 2 << 30,
        }
    }
}

/// Why a batch could not start. Per-file problems are never a `BatchError`:
/// they are [`Event`]s and the run goes on.
#[derive(Debug, Snafu)]
pub enum BatchError {
    /// The input does not exist or cannot be read.
    #[snafu(display("cannot read the input {}: {source}", path.display()))]
    Input {
        /// The input as given.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The output would be written inside the input tree (or over the input file).
    #[snafu(display(
        "the output {} is inside the input {}; choose an output outside the input",
        output.display(),
        input.display()
    ))]
    OutputInsideInput {
        /// The input as given.
        input: PathBuf,
        /// The output as given.
        output: PathBuf,
    },
    /// The input is a folder but the output is an existing file.
    #[snafu(display("the input is a folder but the output {} is a file", path.display()))]
    OutputNotDir {
        /// The output as given.
        path: PathBuf,
    },
    /// The output folder cannot be created.
    #[snafu(display("cannot create the output folder {}: {source}", path.display()))]
    CreateOutput {
        /// The folder.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// A worker thread could not be started.
    #[snafu(display("cannot start worker threads: {source}"))]
    Spawn {
        /// The I/O error.
        source: io::Error,
    },
}

/// Why a file was skipped rather than processed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// The engine does not recognise the content as DICOM.
    NotDicom,
    /// A symbolic link that leads back to one of its own ancestors.
    SymlinkLoop,
    /// A FIFO, socket or device: never read, it could block the run.
    NotRegularFile,
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SkipReason::NotDicom => "not DICOM",
            SkipReason::SymlinkLoop => "symbolic link loop",
            SkipReason::NotRegularFile => "not a regular file",
        })
    }
}

/// What happened to one file.
#[derive(Debug)]
pub enum Outcome {
    /// De-identified, verified and written to `output`.
    Written {
        /// Where the instance was written.
        output: PathBuf,
        /// Size of the input file.
        bytes_in: u64,
        /// Size of the written instance.
        bytes_out: u64,
        /// What the engine changed.
        report: Report,
    },
    /// Dry run: the instance would be written; nothing was.
    Planned {
        /// Where the instance would be written.
        output: PathBuf,
        /// Size of the input file.
        bytes_in: u64,
        /// What the engine would change.
        report: Report,
    },
    /// The engine refused the instance (fail closed); nothing was written.
    Rejected {
        /// Size of the input file.
        bytes_in: u64,
        /// Why; its `Display` names tags, never values.
        rejection: Rejection,
    },
    /// Not processed, by design.
    Skipped(SkipReason),
    /// An I/O problem reading the input or writing the output.
    Error(String),
}

/// One finished file.
#[derive(Debug)]
pub struct Event {
    /// The input file (the input path joined with its relative path).
    pub path: PathBuf,
    /// What happened.
    pub outcome: Outcome,
}

impl Event {
    /// `path: reason` for a file that was not written (or planned); `None` otherwise.
    pub fn problem_line(&self) -> Option<String> {
        let path = self.path.display();
        match &self.outcome {
            Outcome::Written { .. } | Outcome::Planned { .. } => None,
            Outcome::Rejected { rejection, .. } => Some(format!("{path}: rejected: {rejection}")),
            Outcome::Skipped(reason) => Some(format!("{path}: skipped: {reason}")),
            Outcome::Error(message) => Some(format!("{path}: error: {message}")),
        }
    }
}

/// What the progress callback receives after each file: the event and the totals so far.
#[derive(Debug)]
pub struct Progress {
    /// The file that just finished.
    pub event: Event,
    /// Running totals, including this file.
    pub totals: Summary,
}

/// Totals of a batch run.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Summary {
    /// Files seen (every event: written, rejected, skipped, errors).
    pub files: u64,
    /// Instances written (in a dry run: that would be written).
    pub written: u64,
    /// Instances the engine rejected.
    pub rejected: u64,
    /// Files skipped (not DICOM, not regular files, symlink loops).
    pub skipped: u64,
    /// I/O errors.
    pub errors: u64,
    /// Bytes read from files that reached the engine.
    pub bytes_in: u64,
    /// Bytes written.
    pub bytes_out: u64,
    /// Wall-clock time since the run started.
    pub elapsed: Duration,
    /// Whether this was a dry run.
    pub dry_run: bool,
}

impl Summary {
    /// Input megabytes (10^6 bytes) per second of wall-clock time.
    pub fn mb_per_s(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.bytes_in as f64 / 1e6 / secs
        } else {
            0.0
        }
    }

    /// The process exit code: 0 all written, 1 some rejected or skipped, 2 any error.
    pub fn exit_code(&self) -> u8 {
        if self.errors > 0 {
            2
        } else if self.rejected > 0 || self.skipped > 0 {
            1
        } else {
            0
        }
    }

    fn account(&mut self, outcome: &Outcome) {
        self.files += 1;
        match outcome {
            Outcome::Written {
                bytes_in,
                bytes_out,
                ..
            } => {
                self.written += 1;
                self.bytes_in += bytes_in;
                self.bytes_out += bytes_out;
            }
            Outcome::Planned { bytes_in, .. } => {
                self.written += 1;
                self.bytes_in += bytes_in;
            }
            Outcome::Rejected { bytes_in, .. } => {
                self.rejected += 1;
                self.bytes_in += bytes_in;
            }
            Outcome::Skipped(_) => self.skipped += 1,
            Outcome::Error(_) => self.errors += 1,
        }
    }
}

impl fmt::Display for Summary {
    /// `N files: W written, R rejected, S skipped, E errors; X MB in Y s (Z MB/s)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = if self.dry_run {
            "to write (dry run)"
        } else {
            "written"
        };
        write!(
            f,
            "{} files: {} {verb}, {} rejected, {} skipped, {} errors; {:.1} MB in {:.2} s ({:.1} MB/s)",
            self.files,
            self.written,
            self.rejected,
            self.skipped,
            self.errors,
            self.bytes_in as f64 / 1e6,
            self.elapsed.as_secs_f64(),
            self.mb_per_s()
        )
    }
}

/// De-identifies `input` (a file or a folder tree) into `output`, mirroring relative paths.
///
/// A file input goes to `output` itself, or into it when `output` is an existing
/// folder. `progress` is called on the calling thread once per file. Only problems
/// that prevent the run from starting are errors; the [`Summary`] counts the rest.
pub fn run(
    engine: &Engine,
    input: &Path,
    output: &Path,
    opts: &BatchOptions,
    progress: &dyn Fn(&Progress),
) -> Result<Summary, BatchError> {
    run_with(engine, input, output, opts, progress)
}

/// The two engine calls a batch needs; a seam so the walking, threading and
/// writing can be tested without a real engine.
trait Pipeline: Sync {
    fn process_into(&self, input: &[u8], out: &mut Vec<u8>) -> Result<Report, Rejection>;
    fn plan(&self, input: &[u8]) -> Result<Report, Rejection>;
}

impl Pipeline for Engine {
    fn process_into(&self, input: &[u8], out: &mut Vec<u8>) -> Result<Report, Rejection> {
        Engine::process_into(self, input, out)
    }
    fn plan(&self, input: &[u8]) -> Result<Report, Rejection> {
        Engine::plan(self, input)
    }
}

/// One file to do: where it is and where its output goes.
struct Job {
    src: PathBuf,
    dest: PathBuf,
}

fn run_with<P: Pipeline>(
    engine: &P,
    input: &Path,
    output: &Path,
    opts: &BatchOptions,
    progress: &dyn Fn(&Progress),
) -> Result<Summary, BatchError> {
    let start = Instant::now();
    let meta = fs::metadata(input).context(InputSnafu { path: input })?;
    let input_dir = meta.is_dir();
    let input_real = resolve(input).context(InputSnafu { path: input })?;
    let output_real = resolve(output).context(CreateOutputSnafu { path: output })?;

    // Where a single file goes: the output itself, or into it when it is a folder.
    let single_dest = if input_dir {
        None
    } else if output.is_dir() {
        Some(output.join(input.file_name().unwrap_or(input.as_os_str())))
    } else {
        Some(output.to_path_buf())
    };
    let inside = match &single_dest {
        None => output_real.starts_with(&input_real),
        Some(dest) => resolve(dest).map(|d| d == input_real).unwrap_or(false),
    };
    if inside {
        return OutputInsideInputSnafu { input, output }.fail();
    }
    if input_dir {
        if output.exists() && !output.is_dir() {
            return OutputNotDirSnafu { path: output }.fail();
        }
        if !opts.dry_run {
            fs::create_dir_all(output).context(CreateOutputSnafu { path: output })?;
        }
    }

    let jobs = opts
        .jobs
        .or_else(|| std::thread::available_parallelism().ok())
        .map_or(1, NonZeroUsize::get);
    tracing::info!(
        message = "Batch started.",
        input = %input.display(),
        output = %output.display(),
        jobs,
        dry_run = opts.dry_run
    );

    // The workers take turns pulling the next file from the walk (the lock is held
    // for one directory step), so no walker thread and no job queue: a spare
    // thread waiting on a queue spins, and on two cores that time comes out of the
    // workers' (strace showed it costing more kernel time than the file I/O on
    // small files). Events go to this thread through a bounded channel.
    let walker = Mutex::new(Walker::new(input, output, single_dest));
    let (event_tx, event_rx) = bounded::<Event>(1024);
    let temp_counter = AtomicU64::new(0);
    let mut totals = Summary {
        dry_run: opts.dry_run,
        ..Summary::default()
    };

    std::thread::scope(|scope| -> Result<(), BatchError> {
        for i in 0..jobs {
            let event_tx = event_tx.clone();
            let (temp_counter, walker) = (&temp_counter, &walker);
            std::thread::Builder::new()
                .name(format!("batch-{i}"))
                .spawn_scoped(scope, move || {
                    worker(engine, opts, temp_counter, walker, event_tx)
                })
                .context(SpawnSnafu)?;
        }
        drop(event_tx);
        for event in event_rx {
            totals.account(&event.outcome);
            totals.elapsed = start.elapsed();
            progress(&Progress { event, totals });
        }
        Ok(())
    })?;

    totals.elapsed = start.elapsed();
    tracing::info!(
        message = "Batch finished.",
        files = totals.files,
        written = totals.written,
        rejected = totals.rejected,
        skipped = totals.skipped,
        errors = totals.errors
    );
    Ok(totals)
}

/// The walk of the input: regular files become jobs; anything else, and
/// problems met while walking, become events.
struct Walker {
    input: PathBuf,
    output: PathBuf,
    single: Option<Job>,
    tree: Option<walkdir::IntoIter>,
}

impl Walker {
    fn new(input: &Path, output: &Path, single_dest: Option<PathBuf>) -> Walker {
        let (single, tree) = match single_dest {
            Some(dest) => (
                Some(Job {
                    src: input.to_path_buf(),
                    dest,
                }),
                None,
            ),
            None => (
                None,
                Some(WalkDir::new(input).follow_links(true).into_iter()),
            ),
        };
        Walker {
            input: input.to_path_buf(),
            output: output.to_path_buf(),
            single,
            tree,
        }
    }
}

impl Iterator for Walker {
    type Item = Result<Job, Event>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(job) = self.single.take() {
            return Some(Ok(job));
        }
        loop {
            let entry = self.tree.as_mut()?.next()?;
            return Some(match entry {
                Ok(entry) if entry.file_type().is_dir() => continue,
                Ok(entry) if entry.file_type().is_file() => {
                    let rel = entry
                        .path()
                        .strip_prefix(&self.input)
                        .unwrap_or(entry.path());
                    let dest = self.output.join(rel);
                    Ok(Job {
                        src: entry.into_path(),
                        dest,
                    })
                }
                Ok(entry) => Err(Event {
                    path: entry.into_path(),
                    outcome: Outcome::Skipped(SkipReason::NotRegularFile),
                }),
                Err(err) => {
                    let path = err.path().unwrap_or(&self.input).to_path_buf();
                    let outcome = if err.loop_ancestor().is_some() {
                        Outcome::Skipped(SkipReason::SymlinkLoop)
                    } else {
                        match err.io_error() {
                            Some(io) => Outcome::Error(io.to_string()),
                            None => Outcome::Error(err.to_string()),
                        }
                    };
                    Err(Event { path, outcome })
                }
            });
        }
    }
}

fn worker<P: Pipeline>(
    engine: &P,
    opts: &BatchOptions,
    temp_counter: &AtomicU64,
    walker: &Mutex<Walker>,
    events: Sender<Event>,
) {
    // Buffers live as long as the worker: no fresh allocation (and, for large
    // files, no fresh mapping and page faults) per file.
    let mut buffers = Buffers::default();
    loop {
        // A poisoned lock only means another worker panicked mid-step; the walk
        // itself is still consistent.
        let next = walker.lock().unwrap_or_else(|e| e.into_inner()).next();
        let job = match next {
            None => return,
            Some(Ok(job)) => job,
            Some(Err(event)) => {
                if events.send(event).is_err() {
                    return;
                }
                continue;
            }
        };
        let outcome = handle(engine, opts, temp_counter, &job, &mut buffers);
        match &outcome {
            Outcome::Written { .. } => {
                tracing::debug!(message = "Instance written.", path = %job.src.display())
            }
            Outcome::Planned { .. } => {
                tracing::debug!(message = "Instance planned.", path = %job.src.display())
            }
            _ => {}
        }
        if events
            .send(Event {
                path: job.src,
                outcome,
            })
            .is_err()
        {
            return;
        }
    }
}

/// A worker's reusable input and output buffers.
#[derive(Default)]
struct Buffers {
    input: Vec<u8>,
    output: Vec<u8>,
}

fn handle<P: Pipeline>(
    engine: &P,
    opts: &BatchOptions,
    temp_counter: &AtomicU64,
    job: &Job,
    buffers: &mut Buffers,
) -> Outcome {
    let meta = match fs::metadata(&job.src) {
        Ok(meta) => meta,
        Err(e) => return Outcome::Error(format!("cannot read: {e}")),
    };
    if !meta.is_file() {
        return Outcome::Skipped(SkipReason::NotRegularFile);
    }
    if meta.len() > opts.max_file_bytes {
        return Outcome::Rejected {
            bytes_in: 0,
            rejection: Rejection::Unsupported {
                reason: format!(
                    "file of {} bytes is larger than the batch limit of {} bytes",
                    meta.len(),
                    opts.max_file_bytes
                ),
            },
        };
    }
    let Buffers {
        input: bytes,
        output,
    } = buffers;
    bytes.clear();
    bytes.reserve(meta.len() as usize);
    if let Err(e) = fs::File::open(&job.src).and_then(|mut f| f.read_to_end(bytes)) {
        return Outcome::Error(format!("cannot read: {e}"));
    }
    let bytes_in = bytes.len() as u64;

    // A panic in the pipeline costs this file, not the run. The CLI's panic hook
    // prints only the location, so no value can leak through the message.
    let result = catch_unwind(AssertUnwindSafe(|| {
        if opts.dry_run {
            engine.plan(bytes).map(|report| (false, report))
        } else {
            engine
                .process_into(bytes, output)
                .map(|report| (true, report))
        }
    }));
    let (out, report) = match result {
        Err(_) => {
            return Outcome::Error(
                "internal error in the de-identification pipeline (a bug; please report it)".into(),
            )
        }
        Ok(Err(rejection)) if rejection.is_not_dicom() => {
            return Outcome::Skipped(SkipReason::NotDicom)
        }
        Ok(Err(rejection)) => {
            return Outcome::Rejected {
                bytes_in,
                rejection,
            }
        }
        Ok(Ok(done)) => done,
    };
    if !out {
        return Outcome::Planned {
            output: job.dest.clone(),
            bytes_in,
            report,
        };
    }
    match write_atomic(&job.dest, output, temp_counter) {
        Ok(()) => Outcome::Written {
            output: job.dest.clone(),
            bytes_in,
            bytes_out: output.len() as u64,
            report,
        },
        Err(e) => Outcome::Error(format!("cannot write {}: {e}", job.dest.display())),
    }
}

/// This process's id, asked of the kernel once.
fn pid() -> u32 {
    static PID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *PID.get_or_init(std::process::id)
}

/// Writes `bytes` to a temporary file beside `dest`, then renames it over `dest`.
fn write_atomic(dest: &Path, bytes: &[u8], temp_counter: &AtomicU64) -> io::Result<()> {
    let dir = match dest.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    // Files of one folder usually arrive together: each worker remembers the
    // last folder it made, saving a mkdir and a stat per file.
    thread_local! {
        static LAST_DIR: std::cell::RefCell<Option<PathBuf>> = const { std::cell::RefCell::new(None) };
    }
    if !LAST_DIR.with(|last| last.borrow().as_deref() == Some(dir)) {
        fs::create_dir_all(dir)?;
        LAST_DIR.with(|last| *last.borrow_mut() = Some(dir.to_path_buf()));
    }
    let n = temp_counter.fetch_add(1, Ordering::Relaxed);
    let temp = dir.join(format!(".dicom-deid-{}-{n}.tmp", pid()));
    let open = || {
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)
    };
    let file = match open() {
        // The remembered folder was removed meanwhile: make it again, once.
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::create_dir_all(dir)?;
            open()
        }
        other => other,
    };
    let written = file
        .and_then(|mut file| file.write_all(bytes))
        .and_then(|()| fs::rename(&temp, dest));
    if written.is_err() {
        let _ = fs::remove_file(&temp);
    }
    written
}

/// An absolute path with symbolic links resolved as far as the path exists, and
/// `.`/`..` resolved lexically beyond that (the output may not exist yet).
fn resolve(path: &Path) -> io::Result<PathBuf> {
    let absolute = std::path::absolute(path)?;
    let mut existing = absolute.as_path();
    let mut rest = Vec::new();
    while !existing.exists() {
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                existing = parent;
            }
            _ => break,
        }
    }
    let mut resolved = fs::canonicalize(existing).unwrap_or_else(|_| existing.to_path_buf());
    for name in rest.into_iter().rev() {
        for component in Path::new(&name).components() {
            match component {
                Component::ParentDir => {
                    resolved.pop();
                }
                Component::CurDir => {}
                other => resolved.push(other),
            }
        }
    }
    Ok(resolved)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    /// Files starting with `DICM` are "DICOM" (output: `OUT` + the rest), `BAD` is
    /// unreadable, `BOOM` panics, anything else is not DICOM.
    struct Fake;

    fn report() -> Report {
        Report {
            changes: Vec::new(),
            transfer_syntax_in: "1.2.840.10008.1.2.1".into(),
            transfer_syntax_out: "1.2.840.10008.1.2.1".into(),
            sop_class_uid: "1.2.840.10008.5.1.4.1.1.2".into(),
            new_study_uid: "2.25.1".into(),
            new_series_uid: "2.25.2".into(),
            new_sop_instance_uid: "2.25.3".into(),
            pixel: Default::default(),
        }
    }

    impl Pipeline for Fake {
        fn process_into(&self, input: &[u8], out: &mut Vec<u8>) -> Result<Report, Rejection> {
            let report = self.plan(input)?;
            out.clear();
            out.extend_from_slice(b"OUT");
            out.extend_from_slice(&input[4..]);
            Ok(report)
        }
        fn plan(&self, input: &[u8]) -> Result<Report, Rejection> {
            if input.starts_with(b"DICM") {
                Ok(report())
            } else if input.starts_with(b"BAD") {
                Err(Rejection::Unreadable {
                    reason: "truncated at (0010,0010)".into(),
                })
            } else if input.starts_with(b"BOOM") {
                panic!("fake pipeline bug")
            } else {
                Err(Rejection::NotDicom)
            }
        }
    }

    fn tree(files: &[(&str, &[u8])]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (rel, content) in files {
            let path = dir.path().join(rel);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, content).unwrap();
        }
        dir
    }

    fn run_fake(
        input: &Path,
        output: &Path,
        opts: &BatchOptions,
    ) -> (Result<Summary, BatchError>, Vec<String>) {
        let lines = RefCell::new(Vec::new());
        let result = run_with(&Fake, input, output, opts, &|p: &Progress| {
            if let Some(line) = p.event.problem_line() {
                lines.borrow_mut().push(line);
            }
        });
        let mut lines = lines.into_inner();
        lines.sort();
        (result, lines)
    }

    fn files_under(dir: &Path) -> Vec<String> {
        let mut found: Vec<String> = WalkDir::new(dir)
            .into_iter()
            .map(|e| e.unwrap())
            .filter(|e| e.file_type().is_file())
            .map(|e| {
                e.path()
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        found.sort();
        found
    }

    #[test]
    fn a_tree_is_mirrored_and_bad_files_are_reported() {
        let input = tree(&[
            ("a.dcm", b"DICMa"),
            ("sub/deeper/b", b"DICMbb"),
            ("sub/notes.txt", b"hello"),
            ("sub/broken.dcm", b"BAD"),
        ]);
        let out = tempfile::tempdir().unwrap();
        let output = out.path().join("result");
        let opts = BatchOptions {
            jobs: NonZeroUsize::new(3),
            ..BatchOptions::default()
        };
        let (summary, lines) = run_fake(input.path(), &output, &opts);
        let summary = summary.unwrap();
        assert_eq!(
            (
                summary.files,
                summary.written,
                summary.rejected,
                summary.skipped,
                summary.errors
            ),
            (4, 2, 1, 1, 0)
        );
        assert_eq!(summary.exit_code(), 1);
        assert_eq!(files_under(&output), ["a.dcm", "sub/deeper/b"]);
        assert_eq!(fs::read(output.join("sub/deeper/b")).unwrap(), b"OUTbb");
        let p = input.path().display();
        assert_eq!(
            lines,
            [
                format!(
                    "{p}/sub/broken.dcm: rejected: {}",
                    Rejection::Unreadable {
                        reason: "truncated at (0010,0010)".into()
                    }
                ),
                format!("{p}/sub/notes.txt: skipped: not DICOM"),
            ]
        );
        assert_eq!(summary.bytes_out, 5 + 4);
        assert!(
            summary
                .to_string()
                .starts_with("4 files: 2 written, 1 rejected, 1 skipped, 0 errors; "),
            "{summary}"
        );
    }

    #[test]
    fn all_written_is_exit_0_and_errors_are_exit_2() {
        let input = tree(&[("a", b"DICMa"), ("b", b"DICMb")]);
        let out = tempfile::tempdir().unwrap();
        let (summary, lines) = run_fake(input.path(), out.path(), &BatchOptions::default());
        assert_eq!(summary.unwrap().exit_code(), 0);
        assert!(lines.is_empty());

        let input = tree(&[("a", b"DICMa"), ("b", b"BOOM")]);
        let out = tempfile::tempdir().unwrap();
        let (summary, lines) = run_fake(input.path(), out.path(), &BatchOptions::default());
        let summary = summary.unwrap();
        assert_eq!(
            (summary.written, summary.errors, summary.exit_code()),
            (1, 1, 2)
        );
        assert!(lines[0].contains("/b: error: internal error"), "{lines:?}");
    }

    #[test]
    fn dry_run_writes_nothing_not_even_the_output_folder() {
        let input = tree(&[("a", b"DICMa"), ("x/y", b"nope")]);
        let out = tempfile::tempdir().unwrap();
        let output = out.path().join("never");
        let planned = RefCell::new(0);
        let opts = BatchOptions {
            dry_run: true,
            ..BatchOptions::default()
        };
        let summary = run_with(&Fake, input.path(), &output, &opts, &|p: &Progress| {
            if let Outcome::Planned { output, .. } = &p.event.outcome {
                assert!(output.ends_with("never/a"));
                *planned.borrow_mut() += 1;
            }
        })
        .unwrap();
        assert_eq!(*planned.borrow(), 1);
        assert_eq!(
            (summary.written, summary.skipped, summary.bytes_out),
            (1, 1, 0)
        );
        assert!(!output.exists());
        assert!(summary.to_string().contains("1 to write (dry run)"));
    }

    #[test]
    fn a_single_file_goes_to_a_file_or_into_a_folder() {
        let input = tree(&[("one.dcm", b"DICM1")]);
        let file = input.path().join("one.dcm");
        let out = tempfile::tempdir().unwrap();

        let (summary, _) = run_fake(
            &file,
            &out.path().join("renamed.dcm"),
            &BatchOptions::default(),
        );
        assert_eq!(summary.unwrap().written, 1);
        assert_eq!(fs::read(out.path().join("renamed.dcm")).unwrap(), b"OUT1");

        let (summary, _) = run_fake(&file, out.path(), &BatchOptions::default());
        assert_eq!(summary.unwrap().written, 1);
        assert_eq!(files_under(out.path()), ["one.dcm", "renamed.dcm"]);
    }

    #[test]
    fn output_inside_the_input_is_refused() {
        let input = tree(&[("a", b"DICMa")]);
        for output in [
            input.path().join("out"),
            input.path().to_path_buf(),
            input.path().join("x/../y"),
        ] {
            let (result, _) = run_fake(input.path(), &output, &BatchOptions::default());
            assert!(
                matches!(result, Err(BatchError::OutputInsideInput { .. })),
                "{}",
                output.display()
            );
        }
        // A single file may not be written over itself.
        let file = input.path().join("a");
        let (result, _) = run_fake(&file, &file, &BatchOptions::default());
        assert!(matches!(result, Err(BatchError::OutputInsideInput { .. })));
        let (result, _) = run_fake(&file, input.path(), &BatchOptions::default());
        assert!(matches!(result, Err(BatchError::OutputInsideInput { .. })));
        assert_eq!(fs::read(&file).unwrap(), b"DICMa");
    }

    #[test]
    fn missing_input_and_file_output_for_a_folder_are_errors() {
        let out = tempfile::tempdir().unwrap();
        let (result, _) = run_fake(
            &out.path().join("nope"),
            &out.path().join("o"),
            &BatchOptions::default(),
        );
        assert!(matches!(result, Err(BatchError::Input { .. })));
        let input = tree(&[("a", b"DICMa")]);
        fs::write(out.path().join("file"), b"x").unwrap();
        let (result, _) = run_fake(
            input.path(),
            &out.path().join("file"),
            &BatchOptions::default(),
        );
        assert!(matches!(result, Err(BatchError::OutputNotDir { .. })));
    }

    #[test]
    fn oversized_files_are_rejected_unread() {
        let input = tree(&[("big", b"DICM0123456789")]);
        let out = tempfile::tempdir().unwrap();
        let opts = BatchOptions {
            max_file_bytes: 8,
            ..BatchOptions::default()
        };
        let (summary, lines) = run_fake(input.path(), out.path(), &opts);
        assert_eq!(summary.unwrap().rejected, 1);
        assert!(
            lines[0].contains("larger than the batch limit"),
            "{lines:?}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn symlink_loops_are_skipped_and_linked_files_followed() {
        let input = tree(&[("d/a", b"DICMa")]);
        std::os::unix::fs::symlink(input.path().join("d"), input.path().join("d/loop")).unwrap();
        std::os::unix::fs::symlink(input.path().join("d/a"), input.path().join("link")).unwrap();
        let out = tempfile::tempdir().unwrap();
        let (summary, lines) = run_fake(input.path(), out.path(), &BatchOptions::default());
        let summary = summary.unwrap();
        assert_eq!((summary.written, summary.skipped), (2, 1));
        assert!(
            lines[0].ends_with("d/loop: skipped: symbolic link loop"),
            "{lines:?}"
        );
        assert_eq!(files_under(out.path()), ["d/a", "link"]);
    }

    #[test]
    fn no_temporary_files_are_left_behind_when_a_write_fails() {
        let input = tree(&[("a", b"DICMa")]);
        let out = tempfile::tempdir().unwrap();
        // The destination is an existing folder: the rename fails.
        fs::create_dir_all(out.path().join("a/occupied")).unwrap();
        let (summary, lines) = run_fake(input.path(), out.path(), &BatchOptions::default());
        assert_eq!(summary.unwrap().errors, 1);
        assert!(lines[0].contains(": error: cannot write"), "{lines:?}");
        assert!(fs::read_dir(out.path()).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".tmp")));
    }

    #[test]
    fn many_files_with_one_worker_do_not_deadlock() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..300 {
            let content: &[u8] = if i % 3 == 0 { b"text" } else { b"DICMx" };
            fs::write(dir.path().join(format!("f{i}")), content).unwrap();
        }
        let out = tempfile::tempdir().unwrap();
        let opts = BatchOptions {
            jobs: NonZeroUsize::new(1),
            ..BatchOptions::default()
        };
        let (summary, lines) = run_fake(dir.path(), out.path(), &opts);
        let summary = summary.unwrap();
        assert_eq!(
            (summary.files, summary.written, summary.skipped),
            (300, 200, 100)
        );
        assert_eq!(lines.len(), 100);
    }
}
