//! STOW-RS ingest: `POST {route}/studies[/{uid}]`.
//!
//! The body is read part by part as it streams ([`PartStream`]); each part is de-identified on
//! the blocking pool (behind the worker and in-flight-bytes semaphores), put in the spool for
//! every destination of the route, and only then listed in ReferencedSOPSequence.
//!
//! Decisions:
//! - **UIDs in the response are the sender's own (original) UIDs**: ReferencedSOPSequence and
//!   FailedSOPSequence items carry the SOP Class and Instance UIDs the sender sent, so it can
//!   match them to what it sent (PS3.18). They go back only over the connection they came on;
//!   they are never logged, audited or stored. The new (pseudonymous) UIDs are *not* returned:
//!   pairing them with the originals would hand the sender the pseudonym mapping. RetrieveURL is
//!   omitted (the gateway keeps nothing to retrieve). A part that could not be read at all has
//!   empty UIDs.
//! - **FailureReason**: 0xC000 not DICOM / unreadable / not `application/dicom` / malformed part
//!   headers; 0xA900 readable but cannot be fully de-identified (fail closed); 0xC409 the
//!   ORIGINAL Study Instance UID differs from the one in `/studies/{uid}` (checked by a cheap read
//!   before de-identification); 0xA700 part too large, spool full, or busy; 0x0110 the spool
//!   could not write.
//! - When the spool is full and nothing of the request was stored, the answer is 503 with
//!   `Retry-After` (the response body still lists the failures).
//! - With several destinations, an instance is listed as stored only if every put succeeded; a
//!   put that succeeded before a later one failed stays queued (delivery is at-least-once and
//!   STOW is idempotent by SOP Instance UID, so the sender's retry is harmless).

use std::collections::{BTreeMap, VecDeque};
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::State;
use axum::http::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use dicom_deid_audit::{Event, NewUids, Record};
use dicom_deid_dicomweb::{
    failure, is_application_dicom, parse_content_type, ContentTypeError, Event as PartEvent,
    Limits as PartLimits, PartError, PartStream, StowResponse,
};
use dicom_deid_engine::{Engine, Held, PixelReport, Rejection, Report};
use dicom_deid_forward::{is_uid, SpoolMeta};
use dicom_deid_spool::{EntryId, SpoolError};
use futures_util::{Stream, StreamExt};
use tokio::sync::OwnedSemaphorePermit;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::originals::Originals;
use crate::{AppState, Inner, RouteTarget, Routing};

/// The outcome of one instance (a STOW part or a C-STORE).
pub(crate) enum Outcome {
    Stored {
        sop_class: String,
        sop_instance: String,
    },
    Failed {
        sop_class: String,
        sop_instance: String,
        reason: u16,
        spool_full: bool,
        /// Why, as audited (tags, codes and fixed text; never a value).
        comment: String,
    },
}

impl Outcome {
    fn unreadable(reason: u16) -> Outcome {
        let comment = match reason {
            failure::OUT_OF_RESOURCES => "out of resources",
            failure::CANNOT_UNDERSTAND => "not DICOM or unreadable",
            _ => "processing failure",
        };
        Outcome::Failed {
            sop_class: String::new(),
            sop_instance: String::new(),
            reason,
            spool_full: false,
            comment: comment.to_string(),
        }
    }

    /// The same outcome with the audited reason as its comment.
    fn with_comment(self, why: &str) -> Outcome {
        match self {
            Outcome::Failed {
                sop_class,
                sop_instance,
                reason,
                spool_full,
                ..
            } => Outcome::Failed {
                sop_class,
                sop_instance,
                reason,
                spool_full,
                comment: why.to_string(),
            },
            stored => stored,
        }
    }
}

/// What the handler accumulates over one request.
struct Answer {
    response: StowResponse,
    bad_request: bool,
    spool_full: bool,
}

impl Answer {
    fn add(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Stored {
                sop_class,
                sop_instance,
            } => self.response.stored(&sop_class, &sop_instance, None),
            Outcome::Failed {
                sop_class,
                sop_instance,
                reason,
                spool_full,
                ..
            } => {
                self.spool_full |= spool_full;
                self.response.failed(&sop_class, &sop_instance, reason);
            }
        }
    }
}

/// Handles one STOW-RS request on `route`; `study` is the `{uid}` of `/studies/{uid}`.
pub(crate) async fn stow(
    State(state): State<AppState>,
    route: Arc<Routing>,
    study: Option<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let inner = &*state.inner;
    let retry_after = inner.limits.retry_after_secs;
    let Ok(_permit) = inner.requests.clone().try_acquire_owned() else {
        inner.metrics.requests_shed.fetch_add(1, Relaxed);
        info!(message = "STOW request refused: too many requests in progress.", route = %route.name);
        return busy(retry_after, "too many requests in progress; retry later\n");
    };
    inner.metrics.requests.fetch_add(1, Relaxed);
    let started = Instant::now();
    let xml = prefers_xml(&headers);
    let idle = Duration::from_secs(inner.limits.body_idle_timeout_secs);
    let request_id = request_id();
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mut answer = Answer {
        response: StowResponse::new(),
        bad_request: false,
        spool_full: false,
    };

    if content_type.is_empty() {
        return plain(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be multipart/related; type=\"application/dicom\" or application/dicom\n",
        );
    }
    if is_application_dicom(content_type) {
        // One instance as the whole body.
        let max = inner.limits.max_instance_bytes;
        let declared = headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > max) {
            return plain(
                StatusCode::PAYLOAD_TOO_LARGE,
                "the instance is larger than the limit\n",
            );
        }
        // Room in the in-flight bytes before the body is read: for the declared length, or
        // the largest instance when the body is chunked; given back down to the real size
        // once it is read.
        let Some(mut permit) = reserve(inner, &route, declared.unwrap_or(max)).await else {
            return plain(
                StatusCode::SERVICE_UNAVAILABLE,
                "the gateway is shutting down\n",
            );
        };
        // One allocation for the whole body (untouched room costs no memory): a buffer
        // regrown chunk by chunk leaves the allocator's heaps fragmented.
        let mut data =
            BytesMut::with_capacity(usize::try_from(declared.unwrap_or(max)).unwrap_or(0));
        let mut stream = idle_bounded(body, idle);
        while let Some(chunk) = stream.next().await {
            let Ok(chunk) = chunk else {
                return plain(StatusCode::BAD_REQUEST, "could not read the request body\n");
            };
            if (data.len() + chunk.len()) as u64 > max {
                return plain(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "the instance is larger than the limit\n",
                );
            }
            data.extend_from_slice(&chunk);
        }
        if data.is_empty() {
            return plain(StatusCode::BAD_REQUEST, "the request body is empty\n");
        }
        let data = data.freeze();
        shrink(&mut permit, inner, &route, data.len() as u64);
        let outcome = part(
            state.clone(),
            route.clone(),
            study.clone(),
            format!("{request_id}.0"),
            data,
            permit,
            None,
        )
        .await;
        answer.add(outcome);
    } else {
        let boundary = match stow_boundary(content_type) {
            Ok(b) => b,
            Err(e) => return plain(e.status(), &format!("{e}\n")),
        };
        let limits = PartLimits {
            max_part_bytes: usize::try_from(inner.limits.max_instance_bytes).unwrap_or(usize::MAX),
            max_header_bytes: 16 << 10,
            max_parts: inner.limits.max_request_parts,
        };
        let mut parts = PartStream::new(idle_bounded(body, idle), &boundary, limits);
        let mut index = 0usize;
        // Parts are de-identified while the next ones are read, up to `max_workers` per
        // request. A part's share of the in-flight bytes is taken after its headers and
        // before its body is read, so a full gateway stops reading (TCP backpressure) instead
        // of buffering. The share is for the part's own Content-Length when it has one (the
        // reader refuses a longer body), else for what is left of a declared request body,
        // else for the largest instance; it is given back down to the part's real size once
        // read. Waiting for it holds nothing else of the budget, and the parts already read
        // finish on their own, so it cannot deadlock.
        let declared = headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let max = inner.limits.max_instance_bytes;
        let mut read = 0u64;
        let mut pending: VecDeque<JoinHandle<Outcome>> = VecDeque::new();
        let max_pending = inner.limits.max_workers.max(1);
        let mut permit = None;
        while let Some(event) = parts.next_event().await {
            let item = match event {
                PartEvent::Head { declared_len } => {
                    let bound = match declared_len {
                        Some(n) => (n as u64).min(max),
                        None => declared.map_or(max, |d| d.saturating_sub(read).min(max)),
                    };
                    // Never wait for a share while holding one (a part that failed after its
                    // head left its share here).
                    drop(permit.take());
                    permit = reserve(inner, &route, bound).await;
                    parts.reserve_body(usize::try_from(bound).unwrap_or(usize::MAX) + 256);
                    continue;
                }
                PartEvent::Item(item) => item,
            };
            let part_id = format!("{request_id}.{index}");
            index += 1;
            match item {
                Ok(p) => {
                    read += p.body.len() as u64;
                    // Every part body follows its head; a permit is always there.
                    let Some(mut permit) = permit.take() else {
                        pending.push_back(ready(Outcome::unreadable(failure::OUT_OF_RESOURCES)));
                        continue;
                    };
                    if p.content_type
                        .as_deref()
                        .is_some_and(|c| !is_application_dicom(c))
                    {
                        reject_unread(
                            inner,
                            &route,
                            &part_id,
                            "the part is not application/dicom",
                            p.body.len(),
                        );
                        pending.push_back(ready(Outcome::unreadable(failure::CANNOT_UNDERSTAND)));
                        continue;
                    }
                    shrink(&mut permit, inner, &route, p.body.len() as u64);
                    pending.push_back(tokio::spawn(part(
                        state.clone(),
                        route.clone(),
                        study.clone(),
                        part_id,
                        p.body,
                        permit,
                        None,
                    )));
                    while pending.len() > max_pending {
                        let first = pending.pop_front().expect("not empty");
                        answer.add(joined(first.await));
                    }
                }
                Err(e) if e.is_recoverable() => {
                    drop(permit.take());
                    let reason = match e {
                        PartError::PartTooLarge { .. } => failure::OUT_OF_RESOURCES,
                        _ => failure::CANNOT_UNDERSTAND,
                    };
                    reject_unread(inner, &route, &part_id, &e.to_string(), 0);
                    pending.push_back(ready(Outcome::unreadable(reason)));
                }
                Err(e) => {
                    info!(message = "STOW request body unusable; answering with what was stored.", route = %route.name, error = %e);
                    answer.bad_request = true;
                    break;
                }
            }
        }
        for handle in pending {
            answer.add(joined(handle.await));
        }
    }

    let Answer {
        response,
        bad_request,
        spool_full,
    } = answer;
    let response = if bad_request {
        let mut r = StowResponse::bad_request();
        r.referenced = response.referenced;
        r.failed = response.failed;
        r
    } else {
        response
    };
    let mut status = response.status();
    if spool_full && response.referenced.is_empty() {
        status = StatusCode::SERVICE_UNAVAILABLE;
    }
    info!(
        message = "STOW request answered.",
        route = %route.name,
        stored = response.referenced.len(),
        failed = response.failed.len(),
        status = status.as_u16(),
        ms = started.elapsed().as_millis() as u64,
    );
    let (body, media) = if xml {
        (response.to_xml(), "application/dicom+xml")
    } else {
        (response.to_json(), "application/dicom+json")
    };
    let mut res = (status, body).into_response();
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(media));
    if spool_full {
        res.headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(retry_after));
    }
    res
}

/// Audits a part that was never read as DICOM (received + rejected).
fn reject_unread(inner: &Inner, route: &Routing, part_id: &str, reason: &str, bytes: usize) {
    inner.metrics.received.fetch_add(1, Relaxed);
    inner
        .metrics
        .received_bytes
        .fetch_add(bytes as u64, Relaxed);
    inner.metrics.rejected.fetch_add(1, Relaxed);
    let (profile, profile_version) = route_profile(route);
    let base = Record {
        instance: part_id.to_string(),
        route: Some(route.name.clone()),
        profile,
        profile_version,
        key_id: Some(inner.key.id()),
        ..Record::default()
    };
    audit_unsynced(
        inner,
        &Record {
            event: Event::Received,
            ..base.clone()
        },
    );
    audit(
        inner,
        &Record {
            event: Event::Rejected,
            reason: Some(reason.to_string()),
            ..base
        },
    );
}

/// The route's profile name and version when all its destinations use the same profile, for the
/// lines written before (or without) de-identification; `None` when they differ (each `queued`
/// line then names its destination's profile).
fn route_profile(route: &Routing) -> (Option<String>, Option<String>) {
    let mut profiles = route.targets.iter().map(|t| t.engine.profile());
    let Some(first) = profiles.next() else {
        return (None, None);
    };
    if profiles.any(|p| p.name() != first.name() || p.version() != first.version()) {
        return (None, None);
    }
    (
        Some(first.name().to_string()),
        Some(first.version().to_string()),
    )
}

/// Whether the forwarder can deliver what the engine made: the spool groups by study and
/// STOW-RS names instances by their UIDs (the forwarder dead-letters an entry without them).
pub(crate) fn forwardable(report: &Report) -> bool {
    is_uid(&report.new_study_uid) && is_uid(&report.new_sop_instance_uid)
}

/// How many rectangles the pixel stage masked in the instance, over all frames.
fn masked_regions(report: &Report) -> u32 {
    match &report.pixel {
        PixelReport::Cleaned { frames, .. } => {
            u32::try_from(frames.iter().map(Vec::len).sum::<usize>()).unwrap_or(u32::MAX)
        }
        PixelReport::PassThrough | PixelReport::NoPixelData => 0,
    }
}

/// Milliseconds since `started`, for `timings_ms`.
pub(crate) fn ms_since(started: Instant) -> f64 {
    started.elapsed().as_secs_f64() * 1000.0
}

/// One instance received by another ingest path (DIMSE C-STORE from `calling_ae`) on the
/// route named `route`: room in the in-flight bytes, then [`part`], exactly as a STOW part.
/// `Stored` means durable in the spool for every destination of the route.
pub(crate) async fn store_instance(
    state: AppState,
    route: &str,
    calling_ae: &str,
    instance_id: String,
    data: Bytes,
) -> Outcome {
    let inner = &*state.inner;
    let Some(routing) = inner.routes.iter().find(|r| r.name == route).cloned() else {
        // Validation ties every DIMSE peer to a route; fail closed anyway.
        return Outcome::unreadable(failure::PROCESSING_FAILURE).with_comment("unknown route");
    };
    if data.len() as u64 > inner.limits.max_instance_bytes {
        reject_unread(
            inner,
            &routing,
            &instance_id,
            "the instance is larger than the limit",
            data.len(),
        );
        return Outcome::unreadable(failure::OUT_OF_RESOURCES)
            .with_comment("the instance is larger than the limit");
    }
    let Some(permit) = reserve(inner, &routing, data.len() as u64).await else {
        return Outcome::unreadable(failure::OUT_OF_RESOURCES);
    };
    part(
        state.clone(),
        routing,
        None,
        instance_id,
        data,
        permit,
        Some(calling_ae.to_string()),
    )
    .await
}

/// Room for a part of up to `len` bytes in the in-flight bytes: its input and one output per
/// distinct profile of the route are held at once, and all count.
async fn reserve(inner: &Inner, route: &Routing, len: u64) -> Option<OwnedSemaphorePermit> {
    let kib = share_kib(inner, route, len);
    inner.bytes.clone().acquire_many_owned(kib).await.ok()
}

/// [`reserve`] if the in-flight bytes have room right now.
pub(crate) fn try_reserve(
    inner: &Inner,
    route: &Routing,
    len: u64,
) -> Option<OwnedSemaphorePermit> {
    let kib = share_kib(inner, route, len);
    inner.bytes.clone().try_acquire_many_owned(kib).ok()
}

/// Gives back what `permit` holds beyond the share of a part of `len` bytes.
fn shrink(permit: &mut OwnedSemaphorePermit, inner: &Inner, route: &Routing, len: u64) {
    let keep = share_kib(inner, route, len) as usize;
    if let Some(excess) = permit.num_permits().checked_sub(keep).filter(|&n| n > 0) {
        drop(permit.split(excess));
    }
}

/// The share of a part of `len` bytes, in KiB, never more than the whole budget (so that a
/// route with several profiles still gets its largest instance through, one at a time).
fn share_kib(inner: &Inner, route: &Routing, len: u64) -> u32 {
    let copies = 1 + route.outputs() as u64;
    let kib = len.saturating_mul(copies).div_ceil(1024).max(1);
    u32::try_from(kib.min(inner.bytes_total_kib as u64)).unwrap_or(u32::MAX)
}

/// An outcome already known, in the queue of pending parts (keeps the response in part order).
fn ready(outcome: Outcome) -> JoinHandle<Outcome> {
    tokio::spawn(std::future::ready(outcome))
}

fn joined(result: Result<Outcome, tokio::task::JoinError>) -> Outcome {
    result.unwrap_or_else(|_| Outcome::unreadable(failure::PROCESSING_FAILURE))
}

/// One part (or C-STORE instance): wait for a worker, de-identify and spool where blocking is
/// allowed, notify the forwarder. Holds `_bytes` (its share of the in-flight bytes) until done.
/// `calling_ae` is the DIMSE sender's AE title (audited), `None` for STOW. A STOW part, one of
/// several futures of its request, goes to the blocking pool. A DIMSE instance (its
/// association's task does nothing else until it is answered) runs on its own worker thread
/// with `block_in_place` where the runtime allows it (multi-threaded): two thread hand-offs
/// fewer per instance than the blocking pool.
async fn part(
    state: AppState,
    route: Arc<Routing>,
    study: Option<String>,
    part_id: String,
    data: Bytes,
    _bytes: OwnedSemaphorePermit,
    calling_ae: Option<String>,
) -> Outcome {
    let inner = &*state.inner;
    let Ok(worker) = inner.workers.clone().acquire_owned().await else {
        return Outcome::unreadable(failure::OUT_OF_RESOURCES);
    };
    let job_state = state.clone();
    let job_route = route.clone();
    let job_study = study;
    let job_id = part_id;
    let inline = calling_ae.is_some();
    let job = move || {
        process(
            &job_state.inner,
            &job_route,
            job_study.as_deref(),
            &job_id,
            &data,
            calling_ae,
            worker,
        )
    };
    match blocking(inline, job).await {
        Ok(outcome) => {
            if matches!(outcome, Outcome::Stored { .. }) {
                for t in &route.targets {
                    inner.notifier.notify(&t.destination);
                }
            }
            outcome
        }
        Err(()) => panicked(inner, &route),
    }
}

/// Runs `job` where blocking is allowed: on this worker thread (`block_in_place`) when `inline`
/// and the runtime is multi-threaded (a current-thread runtime cannot), else on the blocking
/// pool. `Err` when it panicked: a panic is caught either way, so that the caller refuses the
/// instance and goes on.
pub(crate) async fn blocking<T: Send + 'static>(
    inline: bool,
    job: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ()> {
    let multi_thread = tokio::runtime::Handle::current().runtime_flavor()
        == tokio::runtime::RuntimeFlavor::MultiThread;
    if inline && multi_thread {
        tokio::task::block_in_place(|| std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)))
            .map_err(|_| ())
    } else {
        tokio::task::spawn_blocking(job).await.map_err(|_| ())
    }
}

/// The audit fields every line of an instance carries before its original identifiers are read:
/// its id, route, sender's AE title (DIMSE), key id, and the route's profile when all its
/// destinations share one.
pub(crate) fn base_record(
    inner: &Inner,
    route: &Routing,
    part_id: &str,
    calling_ae: Option<String>,
) -> Record {
    let (profile, profile_version) = route_profile(route);
    Record {
        instance: part_id.to_string(),
        route: Some(route.name.clone()),
        calling_ae,
        key_id: Some(inner.key.id()),
        profile,
        profile_version,
        ..Record::default()
    }
}

/// The outcome of an instance whose processing panicked: refused, counted, logged by route.
pub(crate) fn panicked(inner: &Inner, route: &Routing) -> Outcome {
    warn!(message = "De-identification task failed (panic); the part is refused.", route = %route.name);
    inner.metrics.rejected.fetch_add(1, Relaxed);
    Outcome::unreadable(failure::PROCESSING_FAILURE)
}

/// Refuses an instance: counts it, writes its `rejected` line (from `record`, with `reason`)
/// and returns `outcome` with the reason as its comment.
pub(crate) fn rejected(inner: &Inner, record: Record, reason: String, outcome: Outcome) -> Outcome {
    inner.metrics.rejected.fetch_add(1, Relaxed);
    let outcome = outcome.with_comment(&reason);
    audit(
        inner,
        &Record {
            event: Event::Rejected,
            reason: Some(reason),
            ..record
        },
    );
    outcome
}

/// The blocking half of one instance, shared by STOW-RS and DIMSE: read originals, check the
/// study, de-identify per profile, put per destination, audit.
fn process(
    inner: &Inner,
    route: &Routing,
    study: Option<&str>,
    part_id: &str,
    data: &[u8],
    calling_ae: Option<String>,
    worker: OwnedSemaphorePermit,
) -> Outcome {
    let m = &inner.metrics;
    m.received.fetch_add(1, Relaxed);
    m.received_bytes.fetch_add(data.len() as u64, Relaxed);
    let received_at_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let base = base_record(inner, route, part_id, calling_ae);
    let reject = |record, reason, outcome| rejected(inner, record, reason, outcome);

    let originals = match Originals::read(data) {
        Ok(o) => o,
        Err(rejection) => {
            audit_unsynced(
                inner,
                &Record {
                    event: Event::Received,
                    ..base.clone()
                },
            );
            return reject(
                base,
                rejection.to_string(),
                Outcome::unreadable(failure::CANNOT_UNDERSTAND),
            );
        }
    };
    let hashes = originals.hashes(&inner.key);
    let base = Record {
        original: Some(hashes.clone()),
        ..base
    };
    audit_unsynced(
        inner,
        &Record {
            event: Event::Received,
            ..base.clone()
        },
    );
    let failed = |reason: u16, spool_full: bool| Outcome::Failed {
        sop_class: originals.sop_class.clone(),
        sop_instance: originals.sop_instance.clone(),
        reason,
        spool_full,
        comment: String::new(),
    };

    if let Some(expected) = study {
        if originals.study.as_deref() != Some(expected) {
            return reject(
                base,
                "Study Instance UID (0020,000D) differs from the study in the request path".into(),
                failed(failure::STUDY_INSTANCE_UID_MISMATCH, false),
            );
        }
    }

    // De-identify once per distinct engine (profile) among the route's destinations.
    let deidentify_started = Instant::now();
    let mut made: Vec<(Arc<Engine>, Vec<u8>, Report, Held)> = Vec::new();
    for target in &route.targets {
        if made.iter().any(|(e, ..)| Arc::ptr_eq(e, &target.engine)) {
            continue;
        }
        let mut out = Vec::new();
        match target.engine.process_held(data, &mut out) {
            // A destination is STOW-RS (or a folder named by the UIDs): an instance without
            // valid study and instance UIDs could be stored but never delivered. Refuse it
            // now rather than answer "stored" and dead-letter it later.
            Ok((report, _)) if !forwardable(&report) => {
                let record = Record {
                    profile: Some(target.engine.profile().name().to_string()),
                    profile_version: Some(target.engine.profile().version().to_string()),
                    ..base
                };
                return reject(
                    record,
                    "no valid Study Instance UID (0020,000D) or SOP Instance UID (0008,0018): \
                     the instance cannot be forwarded"
                        .into(),
                    failed(failure::DATA_SET_DOES_NOT_MATCH_SOP_CLASS, false),
                );
            }
            // `held` keeps the working memory that covers an output larger than its input
            // until the output is spooled and `made` dropped.
            Ok((report, held)) => made.push((target.engine.clone(), out, report, held)),
            Err(rejection) => {
                let code = match rejection {
                    Rejection::NotDicom | Rejection::Unreadable { .. } => {
                        failure::CANNOT_UNDERSTAND
                    }
                    _ => failure::DATA_SET_DOES_NOT_MATCH_SOP_CLASS,
                };
                let record = Record {
                    profile: Some(target.engine.profile().name().to_string()),
                    profile_version: Some(target.engine.profile().version().to_string()),
                    timings_ms: Some(BTreeMap::from([(
                        "deidentify".to_string(),
                        ms_since(deidentify_started),
                    )])),
                    ..base
                };
                return reject(record, rejection.to_string(), failed(code, false));
            }
        }
    }
    // The worker permit bounds CPU work (de-identification); spool and audit writes wait on
    // fsync, so they run beyond it (bounded by the in-flight bytes the caller still holds).
    drop(worker);

    let deidentify_ms = ms_since(deidentify_started);
    for target in &route.targets {
        let (engine, bytes, report, _) = made
            .iter()
            .find(|(e, ..)| Arc::ptr_eq(e, &target.engine))
            .expect("made above");
        let (meta_json, record) = entry_for(route, target, engine, report, &base, received_at_ms);
        // `forwardable` checked the study UID above: it names the spool group.
        let group = report.new_study_uid.as_str();
        let put = queue(inner, &record, deidentify_ms, |while_syncing| {
            inner
                .spool
                .put_with(&target.destination, group, &meta_json, bytes, while_syncing)
        });
        match put {
            Ok(()) => {
                m.queued_bytes.fetch_add(bytes.len() as u64, Relaxed);
            }
            Err(e) => {
                let (code, reason, full) = refusal(route, &target.destination, &e);
                return reject(record, reason.into(), failed(code, full));
            }
        }
    }
    m.queued.fetch_add(1, Relaxed);
    Outcome::Stored {
        sop_class: originals.sop_class.clone(),
        sop_instance: originals.sop_instance.clone(),
    }
}

/// The spool meta of an instance for one destination, and the audit record its `queued` line
/// is made from. `base` carries the instance's audit fields (id, route, calling AE, key id,
/// original hashes).
pub(crate) fn entry_for(
    route: &Routing,
    target: &RouteTarget,
    engine: &Engine,
    report: &Report,
    base: &Record,
    received_at_ms: u64,
) -> (Vec<u8>, Record) {
    let profile = engine.profile();
    let masked = masked_regions(report);
    let mut actions: BTreeMap<String, u32> = BTreeMap::new();
    for change in &report.changes {
        *actions
            .entry(format!("{:?}", change.action).to_lowercase())
            .or_default() += 1;
    }
    let meta = SpoolMeta {
        sop_class_uid: report.sop_class_uid.clone(),
        sop_instance_uid: report.new_sop_instance_uid.clone(),
        study_uid: report.new_study_uid.clone(),
        series_uid: report.new_series_uid.clone(),
        route: route.name.clone(),
        profile: profile.name().to_string(),
        profile_version: profile.version().to_string(),
        key_id: base.key_id.clone().unwrap_or_default(),
        original: base.original.clone().unwrap_or_default(),
        transfer_syntax_in: report.transfer_syntax_in.clone(),
        transfer_syntax_out: report.transfer_syntax_out.clone(),
        actions: actions.clone(),
        masked_regions: masked,
        received_at_ms,
    };
    let meta_json = serde_json::to_vec(&meta).expect("SpoolMeta serialises");
    let record = Record {
        profile: Some(profile.name().to_string()),
        profile_version: Some(profile.version().to_string()),
        destination: Some(target.destination.clone()),
        new_uids: Some(NewUids {
            study_uid: report.new_study_uid.clone(),
            series_uid: report.new_series_uid.clone(),
            sop_uid: report.new_sop_instance_uid.clone(),
        }),
        actions: Some(actions),
        masked_regions: Some(masked),
        transfer_syntax_in: Some(report.transfer_syntax_in.clone()),
        transfer_syntax_out: Some(report.transfer_syntax_out.clone()),
        ..base.clone()
    };
    (meta_json, record)
}

/// Puts one destination's entry with `put` and writes its `queued` line (from `record`).
/// `put` calls the function it is given once the entry is written and before it waits for the
/// entry's sync: the line is written and its fsync started there, so that it runs while the
/// spool's own sync is waited for; this returns only after both. Should the spool's sync fail,
/// the caller's `rejected` line that follows says so. `spool` in the line's timings is the time
/// to write the entry.
pub(crate) fn queue(
    inner: &Inner,
    record: &Record,
    deidentify_ms: f64,
    put: impl FnOnce(&mut dyn FnMut(EntryId)) -> Result<EntryId, SpoolError>,
) -> Result<(), SpoolError> {
    let put_started = Instant::now();
    let mut queued_line = None;
    put(&mut |id| {
        queued_line = audit_started(
            inner,
            &Record {
                event: Event::Queued,
                instance: id.to_string(),
                timings_ms: Some(BTreeMap::from([
                    ("deidentify".to_string(), deidentify_ms),
                    ("spool".to_string(), ms_since(put_started)),
                ])),
                ..record.clone()
            },
        );
    })?;
    if let Some(seq) = queued_line {
        audit_wait(inner, seq);
    }
    Ok(())
}

/// A failed put, logged by route and destination: the failure code, the audited reason, and
/// whether the spool is full.
pub(crate) fn refusal(
    route: &Routing,
    destination: &str,
    e: &SpoolError,
) -> (u16, &'static str, bool) {
    let full = matches!(e, SpoolError::Full { .. });
    warn!(message = "Spool put failed; the instance is refused.", route = %route.name, destination = %destination, error = %e);
    if full {
        (failure::OUT_OF_RESOURCES, "spool full", true)
    } else {
        (failure::PROCESSING_FAILURE, "spool write failed", false)
    }
}

/// Appends one audit record and returns once it is on disk; a failure is logged (by file and
/// line, never content). The line is written under the log's lock and synced after the lock is
/// released, so the parts being processed at the same moment share one `fsync` (group commit).
fn audit(inner: &Inner, record: &Record) {
    if let Some(seq) = audit_unsynced(inner, record) {
        audit_wait(inner, seq);
    }
}

/// Appends one audit record and starts its `fsync` in the background (see
/// [`dicom_deid_audit::Syncer::start`]); [`audit_wait`] with the returned `seq` waits for it.
/// `None` after logging a failure.
fn audit_started(inner: &Inner, record: &Record) -> Option<u64> {
    let seq = audit_unsynced(inner, record)?;
    inner.audit_syncer.start(seq);
    Some(seq)
}

/// Returns once audit line `seq` is on disk; a failure is logged.
fn audit_wait(inner: &Inner, seq: u64) {
    if let Err(error) = inner.audit_syncer.sync_through(seq) {
        warn!(message = "Could not write an audit record.", error = %error);
    }
}

/// Appends one audit record without waiting for it to reach the disk and returns its `seq`
/// (`None` after logging a failure). Used for `received`: every path that writes one then
/// writes a later record for the same instance (queued or rejected) with [`audit`], whose sync
/// covers this line too.
pub(crate) fn audit_unsynced(inner: &Inner, record: &Record) -> Option<u64> {
    let result = match inner.audit.lock() {
        Ok(mut log) => log.append_deferred(record).map_err(|e| e.to_string()),
        Err(_) => Err("the audit log lock is poisoned".to_string()),
    };
    match result {
        Ok(seq) => Some(seq),
        Err(error) => {
            warn!(message = "Could not write an audit record.", error = %error);
            None
        }
    }
}

fn busy(retry_after: u64, text: &'static str) -> Response {
    let mut res = plain(StatusCode::SERVICE_UNAVAILABLE, text);
    res.headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(retry_after));
    res
}

fn plain(status: StatusCode, text: &str) -> Response {
    let mut res = (status, text.to_string()).into_response();
    res.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    res
}

/// A request id for audit part ids: process-unique, time-ordered, carries nothing of the request.
fn request_id() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    format!("req-{now}-{}", NEXT.fetch_add(1, Relaxed))
}

/// Why the request body stopped.
#[derive(Debug)]
enum BodyError {
    /// The connection failed.
    Read(axum::Error),
    /// No data arrived for the idle timeout.
    Idle,
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BodyError::Read(e) => write!(f, "{e}"),
            BodyError::Idle => f.write_str("no data arrived within the idle timeout"),
        }
    }
}

/// The request body as a stream that ends with [`BodyError::Idle`] when the sender sends
/// nothing for `idle` while the gateway waits for data (a stalled or slow-loris sender cannot
/// hold a request slot forever). Time spent waiting for room in the gateway does not count.
fn idle_bounded(
    body: Body,
    idle: Duration,
) -> Pin<Box<dyn Stream<Item = Result<Bytes, BodyError>> + Send>> {
    Box::pin(futures_util::stream::unfold(
        Some(body.into_data_stream()),
        move |state| async move {
            let mut stream = state?;
            match tokio::time::timeout(idle, stream.next()).await {
                Ok(Some(Ok(chunk))) => Some((Ok(chunk), Some(stream))),
                Ok(Some(Err(e))) => Some((Err(BodyError::Read(e)), None)),
                Ok(None) => None,
                Err(_) => Some((Err(BodyError::Idle), None)),
            }
        },
    ))
}

/// Longest boundary taken when a sender exceeds RFC 2046's 70 characters.
const MAX_LENIENT_BOUNDARY: usize = 200;

/// The boundary of a STOW-RS request's `Content-Type` ([`parse_content_type`]), tolerating one
/// deviation seen in the field: Orthanc 1.10's STOW client sends 73-character boundaries (two
/// UUIDs joined by `-`), beyond the 70 RFC 2046 allows. Such a boundary (up to 200 characters of
/// RFC 2046 `bchars`) is accepted when the rest of the header is valid; everything else is
/// judged by `parse_content_type` alone.
fn stow_boundary(content_type: &str) -> Result<String, ContentTypeError> {
    let err = match parse_content_type(content_type) {
        Ok(t) => return Ok(t.boundary),
        Err(e @ ContentTypeError::InvalidBoundary) => e,
        Err(e) => return Err(e),
    };
    let lower = content_type.to_ascii_lowercase();
    let Some(at) = lower.find("boundary=") else {
        return Err(err);
    };
    let start = at + "boundary=".len();
    let rest = &content_type[start..];
    let (value, raw_len) = match rest.strip_prefix('"') {
        Some(q) => match q.find('"') {
            Some(end) => (&q[..end], end + 2),
            None => return Err(err),
        },
        None => {
            let end = rest.find(';').unwrap_or(rest.len());
            (rest[..end].trim_end(), rest[..end].trim_end().len())
        }
    };
    let bchar = |c: char| c.is_ascii_alphanumeric() || "'()+_,-./:=? ".contains(c);
    if value.len() <= 70
        || value.len() > MAX_LENIENT_BOUNDARY
        || !value.chars().all(bchar)
        || value.ends_with(' ')
    {
        return Err(err);
    }
    // Check everything else with a short stand-in boundary.
    let stand_in = format!(
        "{}x{}",
        &content_type[..start],
        &content_type[start + raw_len..]
    );
    parse_content_type(&stand_in).map(|_| value.to_string())
}

/// Whether `Accept` prefers `application/dicom+xml` over the JSON forms.
pub(crate) fn prefers_xml(headers: &HeaderMap) -> bool {
    let mut xml = 0.0f32;
    let mut json = 0.0f32;
    for value in headers.get_all(ACCEPT) {
        let Ok(value) = value.to_str() else { continue };
        for range in value.split(',') {
            let mut params = range.split(';');
            let media = params.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = params
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            match media.as_str() {
                "application/dicom+xml" => xml = xml.max(q),
                "application/dicom+json" | "application/json" | "*/*" | "application/*" => {
                    json = json.max(q)
                }
                _ => {}
            }
        }
    }
    xml > json
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(ACCEPT, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn orthancs_long_boundaries_are_tolerated() {
        let long = "6b30b659-5e25-475a-869f-46da216e7d32-6b30b659-5e25-475a-869f-46da216e7d32";
        let ct = format!("multipart/related; type=\"application/dicom\"; boundary={long}");
        assert_eq!(stow_boundary(&ct).unwrap(), long);
        let quoted = format!("multipart/related; boundary=\"{long}\"; type=\"application/dicom\"");
        assert_eq!(stow_boundary(&quoted).unwrap(), long);
        // The rest of the header is still checked.
        let wrong = format!("multipart/related; type=\"application/json\"; boundary={long}");
        assert_eq!(
            stow_boundary(&wrong),
            Err(ContentTypeError::UnsupportedRootType)
        );
        let huge = "a".repeat(201);
        assert!(stow_boundary(&format!("multipart/related; boundary={huge}")).is_err());
        assert!(stow_boundary("multipart/related; boundary=\"\"").is_err());
        assert!(
            stow_boundary(&format!("multipart/related; boundary={}<", "a".repeat(80))).is_err()
        );
    }

    #[test]
    fn accept_negotiation() {
        assert!(!prefers_xml(&HeaderMap::new()));
        assert!(prefers_xml(&accept("application/dicom+xml")));
        assert!(!prefers_xml(&accept("application/dicom+json")));
        assert!(!prefers_xml(&accept(
            "application/dicom+xml;q=0.5, application/dicom+json"
        )));
        assert!(prefers_xml(&accept("application/dicom+xml, */*;q=0.1")));
    }
}
