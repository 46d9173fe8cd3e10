//! A destination's loop, and the delivery and settlement of one batch.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use dicom_deid_audit::{AuditLog, Event, NewUids, Record};
use dicom_deid_dicomweb::{InstanceOutcome, RetryReason, StoreOutcome, StowClient};
use dicom_deid_spool::{Lease, Spool, SpoolError};
use tokio::sync::{watch, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::{error, info, warn};

use crate::meta::is_uid;
use crate::retry::jitter_unit;
use crate::{folder, Destination, Hold, Metrics, Sink, SpoolMeta, POLL_INTERVAL};

/// A destination's wake-up, and when an instance was last queued for it.
#[derive(Debug, Default)]
pub(crate) struct Wake {
    notify: Notify,
    last_arrival: Mutex<Option<Instant>>,
}

impl Wake {
    /// Something was queued for the destination: note when, and wake its loop.
    pub(crate) fn arrived(&self) {
        *self
            .last_arrival
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
        self.notify.notify_one();
    }

    fn last_arrival(&self) -> Option<Instant> {
        *self
            .last_arrival
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Whether a destination's loop holds its next lease back ([`Hold`]), and for how long before
/// it looks again. `held_since` is when the current hold began (`None`: not holding); it is
/// updated here. `spool_use` gives the spool's bytes and limit (asked only while instances
/// arrive).
pub(crate) fn hold_for(
    hold: &Hold,
    now: Instant,
    last_arrival: Option<Instant>,
    held_since: &mut Option<Instant>,
    spool_use: impl FnOnce() -> (u64, u64),
) -> Option<Duration> {
    let since_arrival = now.saturating_duration_since(last_arrival?);
    if hold.quiet.is_zero() || since_arrival >= hold.quiet {
        // A gap: the hold (if any) is over; the next arrival may start another.
        *held_since = None;
        return None;
    }
    let (spool_bytes, spool_max) = spool_use();
    if spool_bytes >= hold.max_bytes.min(spool_max / 4) {
        return None;
    }
    let held = now.saturating_duration_since(*held_since.get_or_insert(now));
    if held >= hold.max {
        return None;
    }
    Some((hold.quiet - since_arrival).min(hold.max - held))
}

/// What a destination's loop and its batches share.
pub(crate) struct Shared {
    dest: Destination,
    spool: Spool,
    audit: Arc<Mutex<AuditLog>>,
    metrics: Arc<Metrics>,
    wake: Arc<Wake>,
    /// When the current hold began ([`hold_for`]).
    held_since: Mutex<Option<Instant>>,
    /// No lease before this instant (backoff).
    not_before: Mutex<Option<Instant>>,
    /// Batches in a row that were held back as a whole: the destination refused access, or
    /// audit lines could not be written.
    stalls: AtomicU32,
}

impl Shared {
    pub(crate) fn new(
        dest: Destination,
        spool: Spool,
        audit: Arc<Mutex<AuditLog>>,
        metrics: Arc<Metrics>,
        wake: Arc<Wake>,
    ) -> Self {
        Self {
            dest,
            spool,
            audit,
            metrics,
            wake,
            held_since: Mutex::new(None),
            not_before: Mutex::new(None),
            stalls: AtomicU32::new(0),
        }
    }

    /// How long the loop holds its next lease back, if it does ([`hold_for`]). Reads the
    /// spool's counters (a lock, no I/O).
    fn hold(&self) -> Option<Duration> {
        let hold = &self.dest.hold;
        if hold.quiet.is_zero() {
            return None;
        }
        hold_for(
            hold,
            Instant::now(),
            self.wake.last_arrival(),
            &mut self
                .held_since
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
            || {
                let depth = self.spool.depth();
                (depth.bytes + depth.writing_bytes, depth.max_bytes)
            },
        )
    }

    fn not_before(&self) -> Option<Instant> {
        *self
            .not_before
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Leases nothing before `until` (a later instant already set stays).
    fn back_off_until(&self, until: Instant) {
        let mut slot = self
            .not_before
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if slot.is_none_or(|t| t < until) {
            *slot = Some(until);
        }
    }
}

/// Resolves once the forwarder is told to stop (or the sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// The loop of one destination: lease, deliver (up to `concurrency` batches at once), settle;
/// until `stop`. Then it waits for the batches in flight.
pub(crate) async fn run_destination(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let name = shared.dest.name.clone();
    let concurrency = shared.dest.concurrency.max(1);
    let slots = Arc::new(Semaphore::new(concurrency));
    let mut in_flight: JoinSet<()> = JoinSet::new();
    info!(message = "Forwarding started.", destination = %name, concurrency);
    // Whether the last lease took a whole batch (more are likely waiting: no batch wait).
    let mut last_full = false;
    loop {
        while let Some(done) = in_flight.try_join_next() {
            report_join(&name, done);
        }
        let permit = tokio::select! {
            biased;
            () = stopped(&mut stop) => break,
            permit = slots.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
        };
        // Backing off, or instances are arriving: lease nothing yet (a hold gives way to them,
        // within its bounds; see `Hold`).
        let backoff = shared.not_before().filter(|t| *t > Instant::now());
        if let Some(until) = backoff.or_else(|| shared.hold().map(|wait| Instant::now() + wait)) {
            drop(permit);
            tokio::select! {
                biased;
                () = stopped(&mut stop) => break,
                () = tokio::time::sleep_until(until) => {}
            }
            continue;
        }
        if !last_full && !shared.dest.batch_wait.is_zero() {
            tokio::select! {
                biased;
                () = stopped(&mut stop) => break,
                () = tokio::time::sleep(shared.dest.batch_wait) => {}
            }
        }
        let leased = {
            let (spool, name) = (shared.spool.clone(), name.clone());
            let (count, bytes) = (
                shared.dest.batch_max_count.max(1),
                shared.dest.batch_max_bytes,
            );
            tokio::task::spawn_blocking(move || spool.lease(&name, count, bytes)).await
        };
        match leased {
            Ok(Ok(leases)) if !leases.is_empty() => {
                last_full = is_full(&leases, &shared.dest);
                // A batch that finished meanwhile may have started a backoff (and released its
                // entries, which this lease may hold), or the forwarder was told to stop: hand
                // them back untouched (dropped leases are released, no attempt counted).
                let backing_off = shared.not_before().is_some_and(|t| t > Instant::now());
                if backing_off || *stop.borrow() {
                    drop((leases, permit));
                    continue;
                }
                let shared = shared.clone();
                in_flight.spawn(deliver_batch(shared, leases, permit));
                continue;
            }
            Ok(Ok(_)) => last_full = false,
            Ok(Err(e)) => {
                error!(message = "Could not lease from the spool.", destination = %name, error = %e)
            }
            Err(e) => {
                error!(message = "Leasing from the spool failed.", destination = %name, error = %e)
            }
        }
        drop(permit);
        tokio::select! {
            biased;
            () = stopped(&mut stop) => break,
            () = shared.wake.notify.notified() => {}
            () = tokio::time::sleep(POLL_INTERVAL) => {}
        }
    }
    if !in_flight.is_empty() {
        info!(
            message = "Destination stopping: waiting for batches in flight.",
            destination = %name,
            batches = in_flight.len()
        );
    }
    while let Some(done) = in_flight.join_next().await {
        report_join(&name, done);
    }
    info!(message = "Forwarding stopped.", destination = %name);
}

/// Whether a leased batch is as large as the destination's bounds allow: `batch_max_count`
/// entries, or bytes enough that another entry as large as its largest would not have fitted.
fn is_full(leases: &[Lease], dest: &Destination) -> bool {
    let (bytes, largest) = leases
        .iter()
        .map(Lease::data_len)
        .fold((0u64, 0), |(sum, max), len| {
            (sum.saturating_add(len), max.max(len))
        });
    leases.len() >= dest.batch_max_count.max(1)
        || bytes.saturating_add(largest) > dest.batch_max_bytes
}

fn report_join(destination: &str, done: Result<(), tokio::task::JoinError>) {
    if let Err(e) = done {
        error!(
            message = "A delivery task ended abnormally; its entries stay queued.",
            destination,
            error = %e
        );
    }
}

/// What becomes of one instance of a batch.
#[derive(Debug, Clone, PartialEq)]
enum Fate {
    /// The destination has it.
    Delivered { status: Option<u16> },
    /// Refused for good; `reason` is codes and fixed text only.
    Dead { reason: String, status: Option<u16> },
    /// Send again later; `cause` is codes and fixed text only.
    Retry { cause: String, status: Option<u16> },
    /// The destination refused us, not the instance (authentication, authorisation, wrong
    /// address): released without counting an attempt, so a misconfigured destination never
    /// dead-letters the queue; it stays queued until the destination is fixed.
    Hold,
}

/// One leased entry on its way through a batch.
struct Item {
    lease: Lease,
    /// The entry's meta, when it could be read (for the audit record even when its UIDs are not
    /// UIDs: such an entry gets its fate at once and is never sent).
    meta: Option<SpoolMeta>,
    data: Option<Bytes>,
    /// Decided once known; `None` while it is still to be sent.
    fate: Option<Fate>,
}

/// Reads an entry's meta and data (blocking).
fn read_item(lease: Lease) -> Item {
    let mut item = Item {
        lease,
        meta: None,
        data: None,
        fate: None,
    };
    match serde_json::from_slice::<SpoolMeta>(item.lease.meta()) {
        Ok(meta) => {
            if !(is_uid(&meta.study_uid) && is_uid(&meta.sop_instance_uid)) {
                item.fate = Some(dead("invalid UID in spool meta", None));
            }
            item.meta = Some(meta);
        }
        Err(_) => item.fate = Some(dead("spool meta unreadable", None)),
    }
    if item.fate.is_none() {
        match item.lease.data() {
            Ok(data) => item.data = Some(Bytes::from(data)),
            Err(SpoolError::Corrupt { defect, .. }) => {
                item.fate = Some(dead(&format!("corrupt spool entry: {defect}"), None))
            }
            Err(e) => {
                error!(
                    message = "Could not read a spool entry.",
                    destination = %item.lease.destination(),
                    spool_id = %item.lease.id(),
                    error = %e
                );
                item.fate = Some(retry("spool read error".into(), None));
            }
        }
    }
    item
}

fn dead(reason: &str, status: Option<u16>) -> Fate {
    Fate::Dead {
        reason: reason.to_string(),
        status,
    }
}

fn retry(cause: String, status: Option<u16>) -> Fate {
    Fate::Retry { cause, status }
}

/// Delivers one batch and settles each of its leases. Holds `_permit` (a slot of the
/// destination's concurrency) until done.
async fn deliver_batch(shared: Arc<Shared>, leases: Vec<Lease>, _permit: OwnedSemaphorePermit) {
    let name = shared.dest.name.clone();
    let first = leases[0].id();
    let count = leases.len();
    let started = Instant::now();
    // If a blocking task panics, the leases it held are dropped: released, still queued.
    let Ok(mut items) =
        tokio::task::spawn_blocking(move || leases.into_iter().map(read_item).collect::<Vec<_>>())
            .await
    else {
        error!(message = "Reading a batch failed.", destination = %name, spool_id = %first);
        return;
    };
    let retry_after = match &shared.dest.sink {
        Sink::Folder { dir } => {
            let (dir, destination) = (dir.clone(), name.clone());
            match tokio::task::spawn_blocking(move || {
                write_to_folder(&dir, &mut items, &destination);
                items
            })
            .await
            {
                Ok(back) => items = back,
                Err(_) => {
                    error!(message = "Writing a batch failed.", destination = %name, spool_id = %first);
                    return;
                }
            }
            None
        }
        Sink::Stow { client } => send_stow(client, &mut items, &name).await,
    };
    let send_ms = started.elapsed().as_secs_f64() * 1000.0;

    // Out of budget → dead-letter; otherwise back off *before* releasing anything, so that no
    // other slot of this destination leases the released entries at once.
    let policy = shared.dest.retry;
    let mut last_attempt = 0;
    for item in &mut items {
        let attempt = item.lease.attempts().saturating_add(1);
        if let Some(Fate::Retry { cause, status }) = &item.fate {
            if policy.exhausted(attempt) {
                let reason =
                    format!("retry budget exhausted after {attempt} attempts (last: {cause})");
                item.fate = Some(dead(&reason, *status));
            } else {
                last_attempt = last_attempt.max(attempt);
            }
        }
    }
    let held = items.iter().any(|i| i.fate == Some(Fate::Hold));
    if held {
        let stalls = shared.stalls.fetch_add(1, Ordering::Relaxed) + 1;
        shared.back_off_until(Instant::now() + policy.ceiling(stalls));
    }
    if last_attempt > 0 {
        let delay = policy.delay(last_attempt, retry_after, jitter_unit());
        shared.back_off_until(Instant::now() + delay);
        info!(
            message = "Batch will be sent again after a backoff.",
            destination = %name,
            spool_id = %first,
            attempt = last_attempt,
            delay_ms = delay.as_millis() as u64
        );
    }

    let settling = shared.clone();
    let Ok(tally) = tokio::task::spawn_blocking(move || settle(&settling, items, send_ms)).await
    else {
        error!(message = "Settling a batch failed.", destination = %name, spool_id = %first);
        return;
    };
    if tally.unaudited > 0 {
        let stalls = shared.stalls.fetch_add(1, Ordering::Relaxed) + 1;
        shared.back_off_until(Instant::now() + policy.ceiling(stalls));
    } else if !held {
        shared.stalls.store(0, Ordering::Relaxed);
    }
    info!(
        message = "Batch settled.",
        destination = %name,
        spool_id = %first,
        instances = count,
        delivered = tally.delivered,
        dead_lettered = tally.dead_lettered,
        retried = tally.retried,
        released = tally.held + tally.unaudited + tally.unsettled
    );
    // Entries may have been released: let the loop look again.
    shared.wake.notify.notify_one();
}

/// Writes every item still to be sent into the folder (blocking).
fn write_to_folder(dir: &Path, items: &mut [Item], destination: &str) {
    let (pending, batch): (Vec<usize>, Vec<folder::Instance<'_>>) = items
        .iter()
        .enumerate()
        .filter_map(|(i, item)| match (&item.fate, &item.meta, &item.data) {
            (None, Some(meta), Some(data)) => Some((
                i,
                (
                    meta.study_uid.as_str(),
                    meta.sop_instance_uid.as_str(),
                    &data[..],
                ),
            )),
            _ => None,
        })
        .unzip();
    let written = folder::write_instances(dir, &batch);
    for (&i, result) in pending.iter().zip(written) {
        let item = &mut items[i];
        item.data = None;
        let fate = match result {
            Ok(_) => Fate::Delivered { status: None },
            Err(e) if e.kind() == io::ErrorKind::InvalidInput => {
                dead("invalid UID in spool meta", None)
            }
            Err(e) => {
                warn!(
                    message = "Could not write an instance to the destination folder.",
                    destination,
                    spool_id = %item.lease.id(),
                    error_kind = %e.kind()
                );
                retry(format!("folder write failed: {}", e.kind()), None)
            }
        };
        item.fate = Some(fate);
    }
}

/// Sends every item still to be sent in one STOW-RS request; returns the destination's
/// `Retry-After`, if any.
async fn send_stow(
    client: &StowClient,
    items: &mut [Item],
    destination: &str,
) -> Option<std::time::Duration> {
    let pending: Vec<usize> = (0..items.len())
        .filter(|&i| items[i].fate.is_none() && items[i].meta.is_some() && items[i].data.is_some())
        .collect();
    if pending.is_empty() {
        return None;
    }
    let outcome = {
        let instances: Vec<(&str, Bytes)> = pending
            .iter()
            .map(|&i| {
                let meta = items[i].meta.as_ref().expect("filtered");
                let data = items[i].data.clone().expect("filtered");
                (meta.sop_instance_uid.as_str(), data)
            })
            .collect();
        client.store(None, &instances).await
    };
    for &i in &pending {
        items[i].data = None;
    }
    let mut set_all = |fate: Fate| {
        for &i in &pending {
            items[i].fate = Some(fate.clone());
        }
    };
    match outcome {
        Ok(StoreOutcome::Answered { status, instances }) => {
            for (n, &i) in pending.iter().enumerate() {
                let fate = match instances.get(n) {
                    Some(InstanceOutcome::Stored { .. } | InstanceOutcome::AlreadyPresent) => {
                        Fate::Delivered {
                            status: Some(status),
                        }
                    }
                    Some(InstanceOutcome::Failed { reason }) => dead(
                        &format!("destination refused: FailureReason 0x{reason:04X}"),
                        Some(status),
                    ),
                    Some(InstanceOutcome::Unconfirmed) | None => retry(
                        format!("HTTP {status}, instance not confirmed"),
                        Some(status),
                    ),
                };
                items[i].fate = Some(fate);
            }
            None
        }
        Ok(StoreOutcome::Retryable {
            reason,
            retry_after,
        }) => {
            let (cause, status) = match reason {
                RetryReason::Network => ("network error".to_string(), None),
                RetryReason::Timeout => ("timeout".to_string(), None),
                RetryReason::Status(s) => (format!("HTTP {s}"), Some(s)),
                RetryReason::UnreadableReply(s) => (format!("HTTP {s}, unreadable reply"), Some(s)),
            };
            set_all(retry(cause, status));
            retry_after
        }
        Ok(StoreOutcome::Permanent {
            status: status @ (401 | 403 | 404 | 407),
        }) => {
            error!(
                message = "The destination refused access (check its URL and credentials); its entries stay queued.",
                destination,
                status
            );
            set_all(Fate::Hold);
            None
        }
        Ok(StoreOutcome::Permanent { status }) => {
            set_all(dead(
                &format!("destination refused the request: HTTP {status}"),
                Some(status),
            ));
            None
        }
        Err(e) => {
            // Only a malformed study UID makes `store` fail, and none is passed.
            error!(message = "Could not form the STOW-RS request.", destination, error = %e);
            set_all(retry("request could not be formed".into(), None));
            None
        }
    }
}

/// Counts of one settled batch.
#[derive(Debug, Default)]
struct Tally {
    delivered: usize,
    dead_lettered: usize,
    retried: usize,
    /// Released because the destination refused access.
    held: usize,
    /// Released because their audit line could not be written.
    unaudited: usize,
    /// Released (or left queued) because the spool could not settle them.
    unsettled: usize,
}

/// Writes the audit line of each delivered or dead-lettered item, then settles its lease
/// (blocking). The lines of the whole batch are written first and made durable by one sync;
/// only then are the leases settled, the delivered ones together (one `.settled` sync per
/// segment): an entry leaves the spool only once its audit line is on disk.
fn settle(shared: &Shared, items: Vec<Item>, send_ms: f64) -> Tally {
    let name = shared.dest.name.as_str();
    let mut tally = Tally::default();
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    // Leases whose audit line was written (not yet synced): delivered with its byte count and
    // latency, or dead-lettered with its reason.
    let mut delivered: Vec<(Lease, u64, u64)> = Vec::new();
    let mut dead_letters: Vec<(Lease, String)> = Vec::new();
    let mut last_seq = None;
    for item in items {
        let Item {
            lease, meta, fate, ..
        } = item;
        let fate = fate.unwrap_or_else(|| retry("not sent".into(), None));
        match fate {
            Fate::Hold => {
                drop(lease); // released; no attempt counted
                tally.held += 1;
            }
            Fate::Retry { .. } => {
                lease.retry_later();
                shared.metrics.retries.fetch_add(1, Ordering::Relaxed);
                tally.retried += 1;
            }
            Fate::Delivered { status } => {
                let latency_ms = meta
                    .as_ref()
                    .map(|m| now_ms.saturating_sub(m.received_at_ms))
                    .unwrap_or(0);
                let mut record = record(Event::Delivered, &lease, meta.as_ref(), name);
                record.destination_status = status;
                record.timings_ms = Some(BTreeMap::from([
                    ("queue_to_delivery".to_string(), latency_ms as f64),
                    ("delivery".to_string(), send_ms),
                ]));
                match append(shared, &record, &lease) {
                    Some(seq) => {
                        last_seq = Some(seq);
                        let bytes = lease.data_len();
                        delivered.push((lease, bytes, latency_ms));
                    }
                    None => tally.unaudited += 1, // dropped: released
                }
            }
            Fate::Dead { reason, status } => {
                let mut record = record(Event::DeadLettered, &lease, meta.as_ref(), name);
                record.destination_status = status;
                record.reason = Some(reason.clone());
                let waited_ms = meta
                    .as_ref()
                    .map(|m| now_ms.saturating_sub(m.received_at_ms))
                    .unwrap_or(0);
                record.timings_ms = Some(BTreeMap::from([
                    ("queue_to_dead_letter".to_string(), waited_ms as f64),
                    ("delivery".to_string(), send_ms),
                ]));
                match append(shared, &record, &lease) {
                    Some(seq) => {
                        last_seq = Some(seq);
                        dead_letters.push((lease, reason));
                    }
                    None => tally.unaudited += 1,
                }
            }
        }
    }
    let Some(last_seq) = last_seq else {
        return tally;
    };
    let syncer = shared
        .audit
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .syncer();
    if let Err(e) = syncer.sync_through(last_seq) {
        let released = delivered.len() + dead_letters.len();
        error!(
            message = "Could not write the audit lines of a batch; its entries stay queued.",
            destination = name,
            instances = released,
            error = %e
        );
        tally.unaudited += released;
        return tally; // the leases are dropped: released
    }

    let (leases, facts): (Vec<Lease>, Vec<_>) = delivered
        .into_iter()
        .map(|(lease, bytes, latency_ms)| {
            let spool_id = lease.id();
            (lease, (spool_id, bytes, latency_ms))
        })
        .unzip();
    for (result, (spool_id, bytes, latency_ms)) in Lease::ack_all(leases).into_iter().zip(facts) {
        match result {
            Ok(()) => {
                shared.metrics.observe_delivery(bytes, latency_ms);
                tally.delivered += 1;
            }
            Err(e) => {
                error!(
                    message = "Delivered, but could not delete the entry from the spool; it will be sent again.",
                    destination = name,
                    spool_id = %spool_id,
                    error = %e
                );
                tally.unsettled += 1;
            }
        }
    }
    for (lease, reason) in dead_letters {
        let spool_id = lease.id();
        match lease.dead_letter(&reason) {
            Ok(()) => {
                warn!(
                    message = "Instance dead-lettered.",
                    destination = name,
                    spool_id = %spool_id,
                    reason = %reason
                );
                shared.metrics.dead_lettered.fetch_add(1, Ordering::Relaxed);
                tally.dead_lettered += 1;
            }
            Err(e) => {
                error!(
                    message = "Could not move an entry to the dead-letter folder.",
                    destination = name,
                    spool_id = %spool_id,
                    error = %e
                );
                tally.unsettled += 1;
            }
        }
    }
    tally
}

/// Appends `record` without syncing it and returns its `seq` (the caller syncs the batch); on
/// failure says so and returns `None` (the caller releases the lease).
fn append(shared: &Shared, record: &Record, lease: &Lease) -> Option<u64> {
    let written = shared
        .audit
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .append_deferred(record);
    match written {
        Ok(seq) => Some(seq),
        Err(e) => {
            error!(
                message = "Could not write the audit line; the entry stays queued.",
                destination = %shared.dest.name,
                spool_id = %lease.id(),
                error = %e
            );
            None
        }
    }
}

/// The audit record of one instance, from its spool meta (when readable).
fn record(event: Event, lease: &Lease, meta: Option<&SpoolMeta>, destination: &str) -> Record {
    let mut record = Record {
        event,
        instance: lease.id().to_string(),
        destination: Some(destination.to_string()),
        ..Record::default()
    };
    if let Some(m) = meta {
        record.route = Some(m.route.clone());
        record.profile = Some(m.profile.clone());
        record.profile_version = Some(m.profile_version.clone());
        record.key_id = Some(m.key_id.clone());
        record.original = Some(m.original.clone());
        record.new_uids = Some(NewUids {
            study_uid: m.study_uid.clone(),
            series_uid: m.series_uid.clone(),
            sop_uid: m.sop_instance_uid.clone(),
        });
        record.actions = Some(m.actions.clone());
        record.masked_regions = Some(m.masked_regions);
        record.transfer_syntax_in = Some(m.transfer_syntax_in.clone());
        record.transfer_syntax_out = Some(m.transfer_syntax_out.clone());
    }
    record
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);
    const GIB: u64 = 1 << 30;

    /// `hold_for` at `now = t0 + at`, the last arrival at `t0 + arrived`, on a spool using
    /// `bytes` of 8 GiB.
    fn decide(
        hold: &Hold,
        held_since: &mut Option<Instant>,
        t0: Instant,
        at: Duration,
        arrived: Option<Duration>,
        bytes: u64,
    ) -> Option<Duration> {
        hold_for(hold, t0 + at, arrived.map(|a| t0 + a), held_since, || {
            (bytes, 8 * GIB)
        })
    }

    #[test]
    fn a_hold_lasts_while_instances_arrive_and_ends_at_a_gap_or_its_bounds() {
        let hold = Hold {
            quiet: 200 * MS,
            max: 1000 * MS,
            max_bytes: GIB,
        };
        let t0 = Instant::now();
        let mut since = None;
        // Nothing ever arrived: no hold.
        assert_eq!(decide(&hold, &mut since, t0, Duration::ZERO, None, 0), None);
        // An arrival 50 ms ago: held until the gap would reach 200 ms.
        assert_eq!(
            decide(&hold, &mut since, t0, 50 * MS, Some(Duration::ZERO), 0),
            Some(150 * MS)
        );
        assert_eq!(since, Some(t0 + 50 * MS), "the hold began now");
        // Arrivals go on: still held, the hold's start kept; near its end, the wait is cut to it.
        assert_eq!(
            decide(&hold, &mut since, t0, 500 * MS, Some(490 * MS), 0),
            Some(190 * MS)
        );
        assert_eq!(
            decide(&hold, &mut since, t0, 1000 * MS, Some(990 * MS), 0),
            Some(50 * MS)
        );
        // The hold has lasted `max`: deliver although instances still arrive ...
        assert_eq!(
            decide(&hold, &mut since, t0, 1050 * MS, Some(1040 * MS), 0),
            None
        );
        assert_eq!(
            decide(&hold, &mut since, t0, 3000 * MS, Some(2990 * MS), 0),
            None,
            "a stream without gaps is held once"
        );
        // ... until a gap of `quiet`, which ends it; the next arrival starts another.
        assert_eq!(
            decide(&hold, &mut since, t0, 3400 * MS, Some(3200 * MS), 0),
            None
        );
        assert_eq!(since, None);
        assert_eq!(
            decide(&hold, &mut since, t0, 3500 * MS, Some(3450 * MS), 0),
            Some(150 * MS)
        );
        // Not while the spool holds `max_bytes`, nor a quarter of its limit.
        assert_eq!(
            decide(&hold, &mut since, t0, 3500 * MS, Some(3450 * MS), GIB),
            None
        );
        let small = hold_for(&hold, t0, Some(t0), &mut None, || (100 << 20, 400 << 20));
        assert_eq!(small, None, "a quarter of a 400 MiB spool");
        let below = hold_for(&hold, t0, Some(t0), &mut None, || {
            ((100 << 20) - 1, 400 << 20)
        });
        assert_eq!(below, Some(200 * MS));
        // A quiet time of zero never holds.
        assert_eq!(
            hold_for(&Hold::NONE, t0, Some(t0), &mut None, || (0, 8 * GIB)),
            None
        );
    }
}
