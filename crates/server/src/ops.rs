//! `/healthz`, `/readyz`, `/metrics`.

use std::fmt::Write;
use std::sync::atomic::Ordering::Relaxed;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::response::IntoResponse;

use dicom_deid_forward::LATENCY_BUCKETS_MS;

use crate::AppState;

/// The process is up.
pub(crate) async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready when the spool takes a durable write right now.
pub(crate) async fn readyz(State(state): State<AppState>) -> (StatusCode, &'static str) {
    let spool = state.inner.spool.clone();
    match tokio::task::spawn_blocking(move || spool.probe()).await {
        Ok(Ok(())) => (StatusCode::OK, "ready\n"),
        Ok(Err(e)) => {
            tracing::warn!(message = "Readiness probe failed.", error = %e);
            (StatusCode::SERVICE_UNAVAILABLE, "spool not writable\n")
        }
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "spool probe failed\n"),
    }
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
    let name = "dicom_deid_delivery_latency_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} Time from receipt to delivery, per delivered instance.\n# TYPE {name} histogram"
    );
    for (bucket, le) in f.latency_buckets.iter().zip(LATENCY_BUCKETS_MS) {
        let _ = writeln!(
            out,
            "{name}_bucket{{le=\"{}\"}} {}",
            le as f64 / 1000.0,
            bucket.load(Relaxed)
        );
    }
    let count = f.latency_count.load(Relaxed);
    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
    let _ = writeln!(
        out,
        "{name}_sum {}\n{name}_count {count}",
        f.latency_ms_sum.load(Relaxed) as f64 / 1000.0
    );
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
