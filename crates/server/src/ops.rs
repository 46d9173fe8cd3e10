//! `/healthz`, `/readyz`, `/metrics`, and the request metrics the STOW routes record.
//!
//! `/readyz` is 200 only when the spool takes a durable write **and** every destination can
//! be reached: a folder destination takes a file, a STOW destination answers an `OPTIONS`
//! request (any HTTP status but 401/403/407) within [`PROBE_TIMEOUT`]. The body says, one
//! line each, what was checked and what failed (names and reasons, never URLs or secrets).
//!
//! `/metrics` is the Prometheus text format (0.0.4): counters of requests, instances and bytes,
//! refused requests by reason, spool gauges, and two histograms: STOW request duration (from
//! the request head to the response) and delivery latency (from receipt to delivery).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Mutex;
use std::time::Duration;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::response::IntoResponse;

use dicom_deid_dicomweb::{RetryReason, StowClient};
use dicom_deid_forward::LATENCY_BUCKETS_MS;

use crate::AppState;

/// How long a destination has to answer the readiness probe.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Upper bounds (milliseconds, inclusive) of the STOW request duration histogram.
pub const REQUEST_BUCKETS_MS: [u64; 14] = [
    5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000, 300_000,
];

/// How `/readyz` checks one destination.
#[derive(Debug, Clone)]
pub enum Probe {
    /// A folder destination: a file can be created (and is removed) in `dir`.
    Folder {
        /// The destination's name.
        name: String,
        /// Its folder.
        dir: PathBuf,
    },
    /// A STOW destination: it answers `OPTIONS {base}studies`.
    Stow {
        /// The destination's name.
        name: String,
        /// Its client (same TLS roots and credentials as deliveries).
        client: StowClient,
    },
}

/// The destinations `/readyz` checks, and the last answer. Checks run one at a time: a caller
/// that arrives while one is running waits for it and takes its answer, so a flood of
/// `/readyz` requests sends at most one probe at a time to each destination.
#[derive(Debug)]
pub struct Readiness {
    probes: Vec<Probe>,
    last: tokio::sync::Mutex<Option<(std::time::Instant, StatusCode, String)>>,
}

impl Readiness {
    /// Checks of these destinations.
    pub fn new(probes: Vec<Probe>) -> Readiness {
        Readiness {
            probes,
            last: tokio::sync::Mutex::new(None),
        }
    }
}

/// What the STOW routes record per request (exported by `/metrics`).
#[derive(Debug, Default)]
pub struct RequestMetrics {
    /// Cumulative: `buckets[i]` counts requests that took at most `REQUEST_BUCKETS_MS[i]`.
    buckets: [AtomicU64; REQUEST_BUCKETS_MS.len()],
    count: AtomicU64,
    sum_us: AtomicU64,
    /// Responses by HTTP status.
    statuses: Mutex<BTreeMap<u16, u64>>,
    /// Requests refused before ingest: no token, a wrong token, a token not allowed on the
    /// route, a study in the path that is not a UID.
    refused_missing: AtomicU64,
    refused_invalid: AtomicU64,
    refused_forbidden: AtomicU64,
    refused_bad_study: AtomicU64,
}

impl RequestMetrics {
    /// Records one answered STOW request.
    pub(crate) fn observe(&self, elapsed: Duration, status: StatusCode) {
        let ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
        self.count.fetch_add(1, Relaxed);
        self.sum_us.fetch_add(
            u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
            Relaxed,
        );
        for (bucket, le) in self.buckets.iter().zip(REQUEST_BUCKETS_MS) {
            if ms <= le {
                bucket.fetch_add(1, Relaxed);
            }
        }
        self.status(status);
    }

    /// Counts a response by status (also refusals, which are not timed).
    pub(crate) fn status(&self, status: StatusCode) {
        if let Ok(mut map) = self.statuses.lock() {
            *map.entry(status.as_u16()).or_default() += 1;
        }
    }

    /// Records a request refused before ingest, with its metrics label.
    pub(crate) fn refused(&self, reason: &str, status: StatusCode) {
        let counter = match reason {
            "missing" => &self.refused_missing,
            "invalid" => &self.refused_invalid,
            "forbidden" => &self.refused_forbidden,
            _ => &self.refused_bad_study,
        };
        counter.fetch_add(1, Relaxed);
        self.status(status);
    }
}

/// The process is up.
pub(crate) async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready when the spool takes a durable write and every destination can be reached.
pub(crate) async fn readyz(State(state): State<AppState>) -> (StatusCode, String) {
    let arrived = std::time::Instant::now();
    let readiness = &state.inner.probes;
    let mut last = readiness.last.lock().await;
    if let Some((at, status, body)) = &*last {
        if *at >= arrived {
            return (*status, body.clone()); // computed while this caller waited
        }
    }
    let (status, body) = check_all(&state).await;
    *last = Some((std::time::Instant::now(), status, body.clone()));
    (status, body)
}

async fn check_all(state: &AppState) -> (StatusCode, String) {
    let spool = state.inner.spool.clone();
    let spool_check = tokio::spawn(async move {
        match tokio::task::spawn_blocking(move || spool.probe()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                tracing::warn!(message = "Readiness: the spool is not writable.", error = %e);
                Err("not writable".to_string())
            }
            Err(_) => Err("probe failed".to_string()),
        }
    });
    let checks: Vec<_> = state
        .inner
        .probes
        .probes
        .iter()
        .cloned()
        .map(|probe| tokio::spawn(check(probe)))
        .collect();
    let mut ready = true;
    let mut body = String::new();
    match spool_check.await {
        Ok(Ok(())) => body.push_str("spool: ok\n"),
        Ok(Err(reason)) => {
            ready = false;
            let _ = writeln!(body, "spool: {reason}");
        }
        Err(_) => {
            ready = false;
            body.push_str("spool: probe failed\n");
        }
    }
    for handle in checks {
        match handle.await {
            Ok((name, Ok(detail))) => {
                let _ = writeln!(body, "destination {name}: ok{detail}");
            }
            Ok((name, Err(reason))) => {
                ready = false;
                tracing::warn!(message = "Readiness: a destination cannot be reached.", destination = %name, reason = %reason);
                let _ = writeln!(body, "destination {name}: {reason}");
            }
            Err(_) => {
                ready = false;
                body.push_str("destination check failed\n");
            }
        }
    }
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, body)
}

/// One destination's check: its name and `Ok(detail)` or `Err(reason)`.
async fn check(probe: Probe) -> (String, Result<String, String>) {
    match probe {
        Probe::Folder { name, dir } => {
            let result = tokio::task::spawn_blocking(move || folder_writable(&dir))
                .await
                .unwrap_or_else(|_| Err("probe failed".into()));
            (name, result.map(|()| String::new()))
        }
        Probe::Stow { name, client } => {
            let result = match client.probe(PROBE_TIMEOUT).await {
                Ok(status @ (401 | 403 | 407)) => {
                    Err(format!("refuses the gateway's credentials (HTTP {status})"))
                }
                Ok(status) => Ok(format!(" (HTTP {status})")),
                Err(RetryReason::Timeout) => Err("no answer within the probe timeout".into()),
                Err(_) => Err("cannot be reached (connection or TLS failure)".into()),
            };
            (name, result)
        }
    }
}

/// Creates and removes a probe file in `dir`.
fn folder_writable(dir: &std::path::Path) -> Result<(), String> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let path = dir.join(format!(
        ".dicom-deid-ready-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Relaxed)
    ));
    let result = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map(drop);
    let _ = std::fs::remove_file(&path);
    result.map_err(|e| format!("folder not writable ({})", e.kind()))
}

/// One histogram in Prometheus text format: `buckets` pairs each cumulative count with its
/// upper bound in milliseconds; `sum` is in seconds.
fn histogram<'a>(
    out: &mut String,
    name: &str,
    help: &str,
    buckets: impl Iterator<Item = (&'a AtomicU64, u64)>,
    count: u64,
    sum: f64,
) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
    for (bucket, le_ms) in buckets {
        let _ = writeln!(
            out,
            "{name}_bucket{{le=\"{}\"}} {}",
            le_ms as f64 / 1000.0,
            bucket.load(Relaxed)
        );
    }
    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
    let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {count}");
}

/// Prometheus text format.
pub(crate) async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let spool = state.inner.spool.clone();
    let depth = tokio::task::spawn_blocking(move || spool.depth())
        .await
        .unwrap_or_default();
    let m = &state.inner.metrics;
    let f = &state.inner.forward_metrics;
    let mut out = String::new();
    let mut counter = |name: &str, help: &str, value: u64| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
        );
    };
    counter(
        "dicom_deid_stow_requests_total",
        "STOW-RS requests served.",
        m.requests.load(Relaxed),
    );
    counter(
        "dicom_deid_stow_requests_shed_total",
        "STOW-RS requests refused with 503 because the gateway was busy.",
        m.requests_shed.load(Relaxed),
    );
    let d = &state.inner.dimse_metrics;
    for (name, help, value) in [
        (
            "dicom_deid_dimse_associations_accepted_total",
            "DIMSE associations accepted.",
            &d.associations_accepted,
        ),
        (
            "dicom_deid_dimse_associations_rejected_total",
            "DIMSE associations rejected (AE title, address or association limit).",
            &d.associations_rejected,
        ),
        (
            "dicom_deid_dimse_associations_aborted_total",
            "DIMSE associations aborted (protocol error, limit, idle timeout, peer abort, shutdown).",
            &d.associations_aborted,
        ),
        (
            "dicom_deid_dimse_echoes_total",
            "C-ECHO requests answered.",
            &d.echoes,
        ),
        (
            "dicom_deid_dimse_stores_succeeded_total",
            "C-STORE requests answered Success.",
            &d.stored,
        ),
        (
            "dicom_deid_dimse_stores_refused_total",
            "C-STORE requests answered with a failure status.",
            &d.refused,
        ),
    ] {
        counter(name, help, value.load(Relaxed));
    }
    counter(
        "dicom_deid_instances_received_total",
        "Instances (parts) received.",
        m.received.load(Relaxed),
    );
    counter(
        "dicom_deid_instances_rejected_total",
        "Instances rejected.",
        m.rejected.load(Relaxed),
    );
    counter(
        "dicom_deid_instances_queued_total",
        "Instances stored in the spool for every destination.",
        m.queued.load(Relaxed),
    );
    counter(
        "dicom_deid_instances_streamed_total",
        "Instances queued that were written into the spool while they arrived (DIMSE).",
        m.streamed.load(Relaxed),
    );
    counter(
        "dicom_deid_received_bytes_total",
        "Bytes of instances received.",
        m.received_bytes.load(Relaxed),
    );
    counter(
        "dicom_deid_queued_bytes_total",
        "Bytes of de-identified instances put in the spool.",
        m.queued_bytes.load(Relaxed),
    );
    counter(
        "dicom_deid_instances_delivered_total",
        "Instances delivered to a destination.",
        f.delivered.load(Relaxed),
    );
    counter(
        "dicom_deid_instances_dead_lettered_total",
        "Instances dead-lettered.",
        f.dead_lettered.load(Relaxed),
    );
    counter(
        "dicom_deid_delivery_retries_total",
        "Delivery retries.",
        f.retries.load(Relaxed),
    );
    counter(
        "dicom_deid_delivered_bytes_total",
        "Bytes delivered.",
        f.delivered_bytes.load(Relaxed),
    );
    histogram(
        &mut out,
        "dicom_deid_delivery_latency_seconds",
        "Time from receipt to delivery, per delivered instance.",
        f.latency_buckets.iter().zip(LATENCY_BUCKETS_MS),
        f.latency_count.load(Relaxed),
        f.latency_ms_sum.load(Relaxed) as f64 / 1000.0,
    );
    let r = &state.inner.requests_metrics;
    histogram(
        &mut out,
        "dicom_deid_stow_request_duration_seconds",
        "Time from a STOW request's head to its response (requests that reached ingest).",
        r.buckets.iter().zip(REQUEST_BUCKETS_MS),
        r.count.load(Relaxed),
        r.sum_us.load(Relaxed) as f64 / 1e6,
    );
    let name = "dicom_deid_stow_responses_total";
    let _ = writeln!(
        out,
        "# HELP {name} STOW responses by HTTP status (refusals included).\n# TYPE {name} counter"
    );
    let statuses = r.statuses.lock().map(|m| m.clone()).unwrap_or_default();
    for (code, n) in statuses {
        let _ = writeln!(out, "{name}{{code=\"{code}\"}} {n}");
    }
    let name = "dicom_deid_stow_requests_refused_total";
    let _ = writeln!(
        out,
        "# HELP {name} STOW requests refused before ingest, by reason.\n# TYPE {name} counter"
    );
    for (reason, counter) in [
        ("missing_token", &r.refused_missing),
        ("invalid_token", &r.refused_invalid),
        ("forbidden_route", &r.refused_forbidden),
        ("bad_study_uid", &r.refused_bad_study),
    ] {
        let _ = writeln!(
            out,
            "{name}{{reason=\"{reason}\"}} {}",
            counter.load(Relaxed)
        );
    }
    let mut gauge = |name: &str, help: &str, value: u64| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
        );
    };
    gauge(
        "dicom_deid_spool_entries",
        "Entries queued in the spool.",
        depth.entries,
    );
    gauge(
        "dicom_deid_spool_bytes",
        "Bytes queued in the spool.",
        depth.bytes,
    );
    gauge(
        "dicom_deid_spool_max_bytes",
        "The spool's limit in bytes.",
        depth.max_bytes,
    );
    gauge(
        "dicom_deid_spool_dead_entries",
        "Entries in the dead-letter folder.",
        depth.dead_entries,
    );
    let (in_flight, in_flight_max) = state.in_flight_bytes();
    gauge(
        "dicom_deid_in_flight_bytes",
        "Bytes of the in-flight budget taken now by instances being read or de-identified.",
        in_flight,
    );
    gauge(
        "dicom_deid_in_flight_max_bytes",
        "The in-flight budget (limits.max_in_flight_bytes).",
        in_flight_max,
    );
    let d = &state.inner.dimse_metrics;
    let (receiving, receiving_max) = (
        d.receiving_bytes.load(Relaxed),
        d.receiving_max_bytes.load(Relaxed),
    );
    gauge(
        "dicom_deid_dimse_receiving_bytes",
        "Memory held now by DIMSE data sets being received or stored.",
        receiving,
    );
    gauge(
        "dicom_deid_dimse_receiving_max_bytes",
        "The DIMSE receive budget (dimse.max_receive_bytes; 0 without [dimse]).",
        receiving_max,
    );
    let (working, working_max) = state.working_memory_bytes();
    gauge(
        "dicom_deid_working_memory_bytes",
        "Working memory taken now by inflating and pixel cleans.",
        working,
    );
    gauge(
        "dicom_deid_working_memory_max_bytes",
        "The working-memory budget (limits.max_working_bytes).",
        working_max,
    );
    let _ = writeln!(out, "# HELP dicom_deid_spool_destination_entries Entries queued per destination.\n# TYPE dicom_deid_spool_destination_entries gauge");
    for (name, d) in &depth.destinations {
        let _ = writeln!(
            out,
            "dicom_deid_spool_destination_entries{{destination=\"{name}\"}} {}",
            d.entries
        );
    }
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        out,
    )
}
