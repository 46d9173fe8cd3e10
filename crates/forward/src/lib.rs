//! Forwarding of de-identified instances from the spool to their destinations, with an audit
//! record for every instance delivered or dead-lettered (DESIGN.md §1: spool → forwarder →
//! audit; issue 4, points 5 and 6).
//!
//! One loop per [`Destination`] leases a batch — the entries of one group, which ingest makes
//! the new Study Instance UID, so a batch is (part of) one study — from the
//! [`Spool`], delivers it to the destination's [`Sink`] (a local folder, or a DICOMweb server by
//! STOW-RS), and settles every lease on its own:
//!
//! | what became of the instance | audit | spool |
//! | --- | --- | --- |
//! | stored, or already present at the destination | `delivered` | `ack` (deleted) |
//! | refused for good: a FailedSOPSequence item, a 4xx for the whole request, corrupt entry, unreadable meta | `dead_lettered` with a reason made of codes | `dead_letter(reason)` |
//! | not this time: network, timeout, 408/429/5xx, an instance the reply does not confirm, a folder write error | — | `retry_later`, and the destination backs off |
//! | its `max_attempts`-th attempt failed | `dead_lettered`, "retry budget exhausted …" | `dead_letter` |
//! | the destination refused *us* (401, 403, 404, 407: credentials or URL wrong) | — | released without counting an attempt; the destination backs off |
//!
//! The audit line is written *before* the lease is settled, so no entry leaves the queue
//! without its line; a crash in between (or a failed `ack`) brings the entry back, and it is
//! delivered — and audited — again: delivery is at least once, and STOW-RS is idempotent by SOP
//! Instance UID. An entry whose audit line cannot be written is released, not settled. A lease
//! that is dropped (shutdown, a panic, the future dropped) is released too: the entry stays
//! queued. Nothing is acknowledged before the destination said it has it.
//!
//! A misconfigured destination thus never empties the queue into the dead-letter folder: the
//! entries wait (and the spool, when full, makes ingest answer 503) until it is fixed. Every
//! other 4xx refuses the batch for good, as PS3.18 says.
//!
//! Backoff is per destination: after a retryable failure the destination's loop leases nothing
//! until a delay drawn with full jitter from `[0, min(max, initial · 2^(attempt-1))]`, or the
//! destination's `Retry-After` when that is longer, has passed ([`RetryPolicy`]). Attempts are
//! counted by the spool per entry (in memory: they restart at 0 when the gateway restarts). A
//! destination's loop keeps up to `concurrency` batches in flight, wakes when ingest calls
//! [`Notifier::notify`] and otherwise looks at the spool every [`POLL_INTERVAL`]; unless its last
//! batch was full, it then waits [`Destination::batch_wait`] for more entries before leasing.
//! While instances for it keep arriving, it leases nothing, within the bounds of its [`Hold`]:
//! acknowledging a burst comes first, its delivery follows in the gap after it.
//!
//! # What it does not do
//!
//! It serves no HTTP and parses no DICOM: the bytes in the spool are sent as they are, and what
//! it knows of each instance is its [`SpoolMeta`]. It does not decide routes or profiles, and
//! does not write the `received`/`queued` audit lines (ingest does). Its logs and audit lines
//! carry spool ids, destination names, new UIDs, keyed hashes, counts and codes — never an
//! element value or original identifier (there are none in the spool meta to begin with).
//!
//! # Example
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use dicom_deid_audit::{AuditLog, SyncPolicy};
//! use dicom_deid_forward::{Destination, Forwarder, Metrics, Sink, SpoolMeta};
//! use dicom_deid_spool::{Spool, SpoolConfig};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! # let tmp = tempfile::tempdir().unwrap();
//! # let meta = SpoolMeta {
//! #     sop_class_uid: "1.2.840.10008.5.1.4.1.1.7".into(), sop_instance_uid: "2.25.2".into(),
//! #     study_uid: "2.25.1".into(), series_uid: "2.25.3".into(), route: "default".into(),
//! #     profile: "basic".into(), profile_version: "1".into(), key_id: "k1".into(),
//! #     original: Default::default(), transfer_syntax_in: "1.2.840.10008.1.2.1".into(),
//! #     transfer_syntax_out: "1.2.840.10008.1.2.1".into(), actions: Default::default(),
//! #     masked_regions: 0, received_at_ms: 0,
//! # };
//! let spool = Spool::open(&tmp.path().join("spool"), SpoolConfig { max_bytes: 1 << 30 }).unwrap();
//! let audit = Arc::new(Mutex::new(
//!     AuditLog::open(&tmp.path().join("audit.jsonl"), SyncPolicy::EveryRecord).unwrap(),
//! ));
//! let out = tmp.path().join("out");
//! let local = Destination::new("local", Sink::Folder { dir: out.clone() });
//! let forwarder = Forwarder::new(spool.clone(), vec![local], audit, Arc::new(Metrics::default()));
//! let notifier = forwarder.notifier();
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! let running = tokio::spawn(forwarder.run(async move { let _ = stopped.await; }));
//!
//! // Ingest: put (durable), answer the sender, then wake the destination's loop.
//! let meta_json = serde_json::to_vec(&meta).unwrap();
//! spool.put("local", &meta.study_uid, &meta_json, b"DICM...").unwrap();
//! notifier.notify("local");
//!
//! while spool.depth().entries > 0 {
//!     tokio::time::sleep(std::time::Duration::from_millis(10)).await;
//! }
//! stop.send(()).unwrap();
//! running.await.unwrap();
//! assert_eq!(std::fs::read(out.join("2.25.1/2.25.2.dcm")).unwrap(), b"DICM...");
//! # }
//! ```

mod deliver;
mod folder;
mod meta;
mod metrics;
mod retry;

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dicom_deid_audit::AuditLog;
use dicom_deid_dicomweb::StowClient;
use dicom_deid_spool::Spool;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{debug, error, info};

pub use meta::{is_uid, SpoolMeta};
pub use metrics::{Metrics, LATENCY_BUCKETS_MS};
pub use retry::{RetryPolicy, MAX_RETRY_AFTER};

/// How often a destination's loop looks at the spool when nobody notifies it.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// [`Destination::batch_wait`]'s default.
pub const DEFAULT_BATCH_WAIT: Duration = Duration::from_millis(50);

/// How a destination's deliveries give way to ingest ([`Destination::hold`]): while instances
/// for it keep arriving, its loop leases nothing, so that receiving (and acknowledging) a burst
/// has the CPU and the disk to itself and delivery follows in the gap after it — within bounds.
///
/// The loop holds its next lease while all of these are true:
///
/// - an instance was queued for the destination (ingest called [`Notifier::notify`]) less than
///   `quiet` ago — so a gap of `quiet` in the arrivals ends the hold;
/// - the hold began less than `max` ago — so a stream without gaps is held once, for `max`,
///   and then delivered while it arrives (the hold begins again only after a gap);
/// - the spool holds less than `max_bytes`, and less than a quarter of its limit — so a hold
///   never fills the spool and makes ingest refuse instances.
///
/// Batches already in flight are not affected. A `quiet` of zero turns holding off: leases are
/// taken while instances arrive, as soon as [`Destination::batch_wait`] allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hold {
    /// A gap in the arrivals this long ends the hold. Default 200 ms; zero: no hold.
    pub quiet: Duration,
    /// The longest a hold lasts. Default 10 s.
    pub max: Duration,
    /// No hold while the spool holds this many bytes or more (nor a quarter of its limit).
    /// Default 1 GiB.
    pub max_bytes: u64,
}

impl Default for Hold {
    fn default() -> Self {
        Hold {
            quiet: Duration::from_millis(200),
            max: Duration::from_secs(10),
            max_bytes: 1 << 30,
        }
    }
}

impl Hold {
    /// No hold: deliveries are leased while instances arrive.
    pub const NONE: Hold = Hold {
        quiet: Duration::ZERO,
        max: Duration::ZERO,
        max_bytes: 0,
    };
}

/// Where a destination's instances go.
#[derive(Debug, Clone)]
pub enum Sink {
    /// Writes `<dir>/<study_uid>/<sop_instance_uid>.dcm` durably (temp, fsync, rename, fsync
    /// dir); idempotent (an existing file with the same name is replaced). The UIDs come from
    /// [`SpoolMeta`] and must be UIDs ([`is_uid`]) — an entry whose are not is dead-lettered —
    /// so nothing is ever written outside `dir`.
    Folder {
        /// The folder (created if needed).
        dir: PathBuf,
    },
    /// Sends each batch in one STOW-RS request (`POST {base}studies`).
    Stow {
        /// The destination's client.
        client: StowClient,
    },
}

/// One destination and how to deliver to it.
#[derive(Debug, Clone)]
pub struct Destination {
    /// The spool destination name the instances were put under (`[A-Za-z0-9_-][A-Za-z0-9._-]*`).
    pub name: String,
    /// Where they go.
    pub sink: Sink,
    /// Instances per batch (0 counts as 1). Default 50.
    pub batch_max_count: usize,
    /// Bytes of instance data per batch; a single larger instance goes alone. Default 64 MiB.
    pub batch_max_bytes: u64,
    /// Batches in flight at once (0 counts as 1). Default 2.
    pub concurrency: usize,
    /// How long the loop, woken while its last batch was not full, waits for more entries
    /// before it leases: instances that arrive one by one (a DIMSE association, small STOW-RS
    /// uploads) then go in fuller batches — fewer syncs of the destination and the spool, fewer
    /// requests — for at most this much more delivery latency. After a full batch
    /// (`batch_max_count` entries, or so many bytes that another entry as large as its largest
    /// would not have fitted) the next is leased at once. Default 50 ms; zero leases as soon as woken.
    pub batch_wait: Duration,
    /// Deliveries give way to a burst of arrivals, within bounds ([`Hold`]). Default
    /// [`Hold::default`].
    pub hold: Hold,
    /// How retryable failures are retried.
    pub retry: RetryPolicy,
}

impl Destination {
    /// A destination with the default batch sizes, concurrency and retry policy.
    pub fn new(name: impl Into<String>, sink: Sink) -> Self {
        Self {
            name: name.into(),
            sink,
            batch_max_count: 50,
            batch_max_bytes: 64 << 20,
            concurrency: 2,
            batch_wait: DEFAULT_BATCH_WAIT,
            hold: Hold::default(),
            retry: RetryPolicy::default(),
        }
    }
}

/// Wakes a destination's loop at once (ingest calls it after each successful `put`). Cheap to
/// clone; outlives the [`Forwarder`] harmlessly.
#[derive(Debug, Clone)]
pub struct Notifier {
    wakers: Arc<HashMap<String, Arc<deliver::Wake>>>,
}

impl Notifier {
    /// Tells `destination`'s loop that something was queued for it (an arrival, which a
    /// [`Hold`] counts). A wake-up that arrives while the loop is busy is kept, not lost.
    /// Unknown names are ignored.
    pub fn notify(&self, destination: &str) {
        match self.wakers.get(destination) {
            Some(wake) => wake.arrived(),
            None => debug!(
                message = "Notified a destination the forwarder does not know.",
                destination
            ),
        }
    }
}

/// Delivers what the spool holds to the destinations; see the crate docs.
pub struct Forwarder {
    spool: Spool,
    destinations: Vec<Destination>,
    audit: Arc<Mutex<AuditLog>>,
    metrics: Arc<Metrics>,
    notifier: Notifier,
}

impl std::fmt::Debug for Forwarder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forwarder")
            .field("spool", &self.spool)
            .field("destinations", &self.destinations)
            .finish_non_exhaustive()
    }
}

impl Forwarder {
    /// A forwarder for `destinations`, taking from `spool` and writing to `audit` (the same
    /// `std::sync::Mutex`-wrapped log ingest writes to; it is locked for one line at a time, from
    /// a blocking thread). Starts nothing: see [`Forwarder::run`].
    pub fn new(
        spool: Spool,
        destinations: Vec<Destination>,
        audit: Arc<Mutex<AuditLog>>,
        metrics: Arc<Metrics>,
    ) -> Forwarder {
        let wakers = destinations
            .iter()
            .map(|d| (d.name.clone(), Arc::new(deliver::Wake::default())))
            .collect();
        Forwarder {
            spool,
            destinations,
            audit,
            metrics,
            notifier: Notifier {
                wakers: Arc::new(wakers),
            },
        }
    }

    /// A handle ingest calls after each successful put, so the destination's loop wakes at once
    /// (without it, loops poll every [`POLL_INTERVAL`]).
    pub fn notifier(&self) -> Notifier {
        self.notifier.clone()
    }

    /// Runs one loop per destination until `shutdown` resolves. Then the loops stop leasing and
    /// this returns once the batches in flight are settled — each within its sink's bound (the
    /// STOW client's timeout). Entries not delivered stay queued. For a shutdown bounded more
    /// tightly, drop this future (e.g. under `tokio::time::timeout`): the batches in flight are
    /// abandoned and their leases released, so their entries stay queued too (they may have
    /// reached the destination; they will be sent again).
    ///
    /// Spool and audit calls go through `spawn_blocking`.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) {
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut loops = JoinSet::new();
        for destination in self.destinations {
            let wake = self.notifier.wakers[&destination.name].clone();
            let shared = Arc::new(deliver::Shared::new(
                destination,
                self.spool.clone(),
                self.audit.clone(),
                self.metrics.clone(),
                wake,
            ));
            loops.spawn(deliver::run_destination(shared, stop_rx.clone()));
        }
        shutdown.await;
        info!(message = "Forwarder stopping: no more leases; waiting for deliveries in flight.");
        let _ = stop_tx.send(true);
        while let Some(done) = loops.join_next().await {
            if let Err(e) = done {
                error!(message = "A destination loop ended abnormally.", error = %e);
            }
        }
        info!(message = "Forwarder stopped.");
    }
}
