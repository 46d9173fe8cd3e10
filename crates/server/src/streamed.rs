//! DIMSE instances streamed into the spool while they arrive.
//!
//! Over one association the sender waits for each answer before it sends the next instance, and
//! the answer waits until the de-identified instance is durable. Done after the last byte, the
//! de-identification, the spool write and its `fdatasync` add up to most of an instance's
//! cycle. So, for a C-STORE whose pixel data passes through untouched, this does them while
//! the data set is still arriving:
//!
//! 1. after each fragment, look for the top-level Pixel Data element header
//!    ([`dicom_deid_wire::PixelDataScan`], resuming where it stopped);
//! 2. once it is there, de-identify everything before it ([`Engine::process_head`], which
//!    declines unless the result followed by the pixel value is exactly what the whole-instance
//!    engine makes), and start a streamed spool entry per destination
//!    ([`dicom_deid_spool::Spool::begin`]) with the de-identified header;
//! 3. append the pixel value to those entries as it arrives (raw pixels never reach the disk
//!    unless the engine has decided they pass through as they are);
//! 4. when the instance is complete and ends exactly where the pixel value ends, commit the
//!    entries (durable, as a put) with the same audit lines and counters as the whole path.
//!
//! Anything else — the route has destinations with different profiles, no in-flight bytes or
//! worker free at that moment, a pixel clean is needed, elements after Pixel Data, a deflated
//! or encapsulated data set, a spool error while streaming — gives the streamed entries up
//! (nothing queued) and the complete instance takes the whole path
//! ([`ingest::store_instance`]), which decides and answers as it always does.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use dicom_deid_audit::{Event, Record};
use dicom_deid_dimse::{Arriving, Receiving, StoreOutcome, StoreRequest};
use dicom_deid_engine::Engine;
use dicom_deid_spool::Pending;
use dicom_deid_wire::{Limits, PixelDataAt, PixelDataHeader, PixelDataScan};
use tokio::sync::OwnedSemaphorePermit;
use tracing::debug;

use crate::ingest::{self, Outcome};
use crate::originals::Originals;
use crate::{AppState, Routing};

/// One C-STORE instance being received (see the module docs).
pub(crate) struct Streaming {
    state: AppState,
    route: Arc<Routing>,
    calling_ae: String,
    instance_id: String,
    phase: Phase,
}

enum Phase {
    /// The Pixel Data element header has not arrived yet (the walk so far).
    Looking(PixelDataScan),
    /// The header is de-identified and its entries begun; the pixel value is being appended.
    Streaming(Box<Stream>),
    /// Not streamed: the complete instance takes the whole path.
    Off,
}

/// An instance whose entries are being written.
struct Stream {
    /// Where the pixel value starts in the received bytes, and its length.
    value_start: usize,
    pixel_len: u64,
    /// Pixel value bytes written so far (to every entry).
    written: u64,
    /// One entry per destination of the route, in the route's order.
    entries: Vec<Pending>,
    /// Per destination: the `queued` line's record.
    records: Vec<Record>,
    /// The instance's audit fields (as the whole path's `base`).
    base: Record,
    originals: Originals,
    deidentify_ms: f64,
    /// The de-identified instance's length.
    out_len: u64,
    /// The instance's share of the in-flight bytes, held until it is answered.
    _bytes: OwnedSemaphorePermit,
}

impl Streaming {
    /// A receiver for the instance `arriving` announces, if its route is served by one engine
    /// (the streamed path makes one output).
    pub(crate) fn new(state: &AppState, arriving: &Arriving<'_>) -> Option<Streaming> {
        let route = state
            .inner
            .routes
            .iter()
            .find(|r| r.name == arriving.route)?;
        if route.outputs() != 1 {
            return None;
        }
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        Some(Streaming {
            state: state.clone(),
            route: route.clone(),
            calling_ae: arriving.calling_ae.to_string(),
            instance_id: crate::dimse::instance_id(ms, arriving.association, arriving.index),
            phase: Phase::Looking(PixelDataScan::default()),
        })
    }

    /// The header has arrived (`so_far[..at.value_start]`, the pixel value `at.value_len`
    /// bytes): de-identify it and begin the entries, or `None` to leave the instance to the
    /// whole path.
    fn start(&self, so_far: &[u8], at: PixelDataHeader) -> Option<Stream> {
        let (value_start, pixel_len) = (at.value_start, at.value_len);
        let inner = &*self.state.inner;
        let route = &*self.route;
        let total = (value_start as u64).checked_add(pixel_len)?;
        if total > inner.limits.max_instance_bytes {
            return None;
        }
        let bytes = ingest::try_reserve(inner, route, total)?;
        let _worker = inner.workers.clone().try_acquire_owned().ok()?;
        let head = &so_far[..value_start];
        // The identifiers are read from the header with an empty pixel value (the reader wants
        // whole elements).
        let mut emptied = head.to_vec();
        at.set_len(&mut emptied, 0);
        let originals = Originals::read(&emptied).ok()?;
        drop(emptied);
        let target = route.targets.first()?;
        let engine: &Engine = &target.engine;
        let started = Instant::now();
        let (report, out_head) = engine.process_head(head, pixel_len)?;
        if !ingest::forwardable(&report) {
            return None;
        }
        let deidentify_ms = ingest::ms_since(started);
        let base = ingest::base_record(
            inner,
            route,
            &self.instance_id,
            Some(self.calling_ae.clone()),
        );
        let base = Record {
            original: Some(originals.hashes(&inner.key)),
            ..base
        };
        let received_at_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let out_len = out_head.len() as u64 + pixel_len;
        let mut entries = Vec::with_capacity(route.targets.len());
        let mut records = Vec::with_capacity(route.targets.len());
        for target in &route.targets {
            let (meta, record) =
                ingest::entry_for(route, target, engine, &report, &base, received_at_ms);
            let begun =
                inner
                    .spool
                    .begin(&target.destination, &report.new_study_uid, &meta, out_len);
            let mut entry = match begun {
                Ok(entry) => entry,
                Err(e) => {
                    debug!(message = "Not streamed: the spool did not begin the entry.", destination = %target.destination, error = %e);
                    return None;
                }
            };
            if let Err(e) = entry.write(&out_head) {
                debug!(message = "Not streamed: the spool did not take the header.", destination = %target.destination, error = %e);
                return None;
            }
            entries.push(entry);
            records.push(record);
        }
        Some(Stream {
            value_start,
            pixel_len,
            written: 0,
            entries,
            records,
            base,
            originals,
            deidentify_ms,
            out_len,
            _bytes: bytes,
        })
    }

    /// The complete instance, streamed: counts it received, writes its `received` line and
    /// commits its entries with their `queued` lines, as the whole path would have.
    fn commit(self, stream: Stream, len: usize) -> Outcome {
        let inner = &*self.state.inner;
        let route = &*self.route;
        let m = &inner.metrics;
        m.received.fetch_add(1, Relaxed);
        m.received_bytes.fetch_add(len as u64, Relaxed);
        ingest::audit_unsynced(
            inner,
            &Record {
                event: Event::Received,
                ..stream.base.clone()
            },
        );
        let Stream {
            entries,
            records,
            originals,
            deidentify_ms,
            out_len,
            ..
        } = stream;
        let mut entries = entries.into_iter();
        for (target, record) in route.targets.iter().zip(records) {
            let entry = entries.next().expect("one entry per destination");
            let put = ingest::queue(inner, &record, deidentify_ms, |while_syncing| {
                entry.commit(while_syncing)
            });
            if let Err(e) = put {
                // Those not committed yet are given up as they drop.
                let (code, reason, full) = ingest::refusal(route, &target.destination, &e);
                let failed = Outcome::Failed {
                    sop_class: originals.sop_class,
                    sop_instance: originals.sop_instance,
                    reason: code,
                    spool_full: full,
                    comment: String::new(),
                };
                return ingest::rejected(inner, record, reason.into(), failed);
            }
            m.queued_bytes.fetch_add(out_len, Relaxed);
        }
        m.queued.fetch_add(1, Relaxed);
        m.streamed.fetch_add(1, Relaxed);
        for t in &route.targets {
            inner.notifier.notify(&t.destination);
        }
        Outcome::Stored {
            sop_class: originals.sop_class,
            sop_instance: originals.sop_instance,
        }
    }
}

impl Receiving for Streaming {
    fn received(&mut self, so_far: &[u8]) {
        if let Phase::Looking(scan) = &mut self.phase {
            self.phase = match scan.scan(so_far, &Limits::default()) {
                PixelDataAt::NeedMore => return,
                PixelDataAt::Never => Phase::Off,
                PixelDataAt::Found(at) => match self.start(so_far, at) {
                    Some(stream) => Phase::Streaming(Box::new(stream)),
                    None => Phase::Off,
                },
            };
        }
        let Phase::Streaming(stream) = &mut self.phase else {
            return;
        };
        let end = stream.value_start as u64 + stream.pixel_len;
        if so_far.len() as u64 > end {
            // Elements after Pixel Data: the whole path decides about them.
            self.phase = Phase::Off;
            return;
        }
        let from = stream.value_start + stream.written as usize;
        let piece = &so_far[from..];
        if piece.is_empty() {
            return;
        }
        if stream
            .entries
            .iter_mut()
            .try_for_each(|e| e.write(piece))
            .is_err()
        {
            self.phase = Phase::Off;
            return;
        }
        stream.written += piece.len() as u64;
    }

    fn complete(
        mut self: Box<Self>,
        request: StoreRequest,
    ) -> Pin<Box<dyn Future<Output = StoreOutcome> + Send>> {
        Box::pin(async move {
            let complete = match std::mem::replace(&mut self.phase, Phase::Off) {
                Phase::Streaming(stream)
                    if stream.written == stream.pixel_len
                        && request.bytes.len() as u64
                            == stream.value_start as u64 + stream.pixel_len =>
                {
                    Some(stream)
                }
                // A stream not complete is dropped here: its entries are given up and its
                // in-flight bytes returned before the whole path takes the instance.
                _ => None,
            };
            let outcome = match complete {
                Some(stream) => {
                    let len = request.bytes.len();
                    drop(request);
                    let (state, route) = (self.state.clone(), self.route.clone());
                    let committed = ingest::blocking(true, move || self.commit(*stream, len)).await;
                    committed.unwrap_or_else(|()| ingest::panicked(&state.inner, &route))
                }
                None => {
                    ingest::store_instance(
                        self.state.clone(),
                        &self.route.name,
                        &self.calling_ae,
                        self.instance_id.clone(),
                        Bytes::from(request.bytes),
                    )
                    .await
                }
            };
            crate::dimse::answer(outcome)
        })
    }
}
