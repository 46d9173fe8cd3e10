//! The dicom-deid gateway: STOW-RS ingest in front of the de-identification engine, the durable
//! spool and the forwarder; configuration; health, readiness and metrics.
//!
//! - [`config`]: `RawConfig` (TOML) → `validate()` → `Config::build()` → a [`Gateway`].
//! - [`app`]: the axum router (one for `serve` and for tests): `POST {route}/studies`,
//!   `POST {route}/studies/{uid}`, `GET /healthz`, `GET /readyz`, `GET /metrics`.
//! - [`auth`]: ingest tokens (stored as SHA-256 hashes, each allowed a set of routes), checked
//!   on every STOW route before the body is read; required when `listen` is not loopback.
//! - [`tls`]: optional TLS on the listener (`[tls] cert_file, key_file`, rustls).
//! - [`run`]: serves an [`AppState`] on a listener the caller owns (in clear or TLS, headers
//!   and connections bounded: see [`listen`]), runs the forwarder beside it, and stops both
//!   when the caller's shutdown future resolves (in-flight requests finish; the spool keeps
//!   whatever was not delivered).
//! - `/readyz` checks the spool and every destination; `/metrics` is Prometheus text with
//!   counters, spool gauges, and request-duration and delivery-latency histograms ([`ops`]).
//!
//! Nothing in a request can name a file: routes are fixed at start, the `{uid}` of
//! `/studies/{uid}` must be a UID (else 400 before the body is read) and is only compared with
//! the instances' own, and stored files are named by the spool and by new UIDs.
//!
//! - [`dimse`]: the `[dimse]` section and the C-STORE SCP (crate `dicom-deid-dimse`) that
//!   [`run`] starts beside the HTTP listener; each C-STORE instance takes the STOW-RS path
//!   (engine, durable spool put per destination, audit with the calling AE title) before the
//!   SCP answers Success.
//!
//! An instance is answered "stored" (listed in ReferencedSOPSequence) only after its
//! de-identified bytes were put durably in the spool for **every** destination of its route.
//! Nothing in a log line, error or audit record carries an element value or an original UID: the
//! request URI (which may carry the original Study Instance UID) is never logged.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use dicom_deid_server::config::RawConfig;
//! let gateway = RawConfig::default().validate(None)?.build()?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8104").await?;
//! dicom_deid_server::run(listener, gateway, async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(()) }
//! ```

pub mod auth;
pub mod config;
pub mod dimse;
mod ingest;
pub mod listen;
pub mod ops;
mod originals;
mod streamed;
pub mod tls;

use std::future::Future;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use dicom_deid_audit::AuditLog;
use dicom_deid_engine::{Engine, Key};
use dicom_deid_forward::{Forwarder, Metrics, Notifier};
use dicom_deid_spool::Spool;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::Instrument;

/// Bounds on ingest and the spool (see [`config::RawLimits`] for the defaults).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest instance, in bytes.
    pub max_instance_bytes: u64,
    /// Most parts in one request.
    pub max_request_parts: usize,
    /// Bytes of instances being read and processed at once (input + output).
    pub max_in_flight_bytes: u64,
    /// Working memory of the engines (inflating, pixel cleans), shared.
    pub max_working_bytes: u64,
    /// STOW requests served at once.
    pub max_concurrent_requests: usize,
    /// Instances de-identified at once.
    pub max_workers: usize,
    /// Spool limit, in bytes.
    pub max_spool_bytes: u64,
    /// `Retry-After` seconds on 503.
    pub retry_after_secs: u64,
    /// Seconds a request body may send nothing before the request is ended.
    pub body_idle_timeout_secs: u64,
}

/// One destination of a route, with the engine (profile) its instances are made with.
#[derive(Debug, Clone)]
pub struct RouteTarget {
    /// The destination's name (the spool queue).
    pub destination: String,
    /// The engine of the destination's profile (the route's unless the destination has its own).
    pub engine: Arc<Engine>,
}

/// A route, ready to serve.
#[derive(Debug, Clone)]
pub struct Routing {
    /// The route's name.
    pub name: String,
    /// Path prefix (`""` or `/a/b`).
    pub path: String,
    /// Its destinations (at least one).
    pub targets: Vec<RouteTarget>,
}

impl Routing {
    /// How many outputs one instance makes: one per distinct engine (profile) of its targets.
    pub fn outputs(&self) -> usize {
        let mut engines: Vec<&Arc<Engine>> = Vec::new();
        for t in &self.targets {
            if !engines.iter().any(|e| Arc::ptr_eq(e, &t.engine)) {
                engines.push(&t.engine);
            }
        }
        engines.len().max(1)
    }
}

/// Ingest counters (exported by `/metrics`).
#[derive(Debug, Default)]
pub struct IngestMetrics {
    /// STOW requests answered.
    pub requests: AtomicU64,
    /// Requests refused with 503 because the gateway was busy.
    pub requests_shed: AtomicU64,
    /// Instances (parts) received.
    pub received: AtomicU64,
    /// Instances rejected.
    pub rejected: AtomicU64,
    /// Instances stored in the spool for every destination.
    pub queued: AtomicU64,
    /// Bytes of instances received.
    pub received_bytes: AtomicU64,
    /// Bytes put in the spool.
    pub queued_bytes: AtomicU64,
    /// Instances (of `queued`) written into the spool while they arrived (DIMSE).
    pub streamed: AtomicU64,
}

/// Everything the handlers share. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    routes: Vec<Arc<Routing>>,
    spool: Spool,
    audit: Arc<Mutex<AuditLog>>,
    /// The group-commit handle of `audit` (taken once: the log behind the lock never changes).
    audit_syncer: dicom_deid_audit::Syncer,
    key: Key,
    notifier: Notifier,
    limits: Limits,
    requests: Arc<Semaphore>,
    workers: Arc<Semaphore>,
    /// In-flight bytes, in KiB units.
    bytes: Arc<Semaphore>,
    /// The whole of `bytes`, in KiB.
    bytes_total_kib: u32,
    metrics: IngestMetrics,
    forward_metrics: Arc<Metrics>,
    dimse_metrics: Arc<dicom_deid_dimse::ScpMetrics>,
    tokens: auth::Tokens,
    probes: ops::Readiness,
    requests_metrics: ops::RequestMetrics,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("routes", &self.inner.routes)
            .field("spool", &self.inner.spool)
            .field("limits", &self.inner.limits)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// Assembles the state (normally done by [`config::Config::build`]); `tokens` guard the
    /// STOW routes (empty: open), `probes` are the destinations `/readyz` checks.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        routes: Vec<Routing>,
        spool: Spool,
        audit: Arc<Mutex<AuditLog>>,
        key: Key,
        notifier: Notifier,
        limits: Limits,
        forward_metrics: Arc<Metrics>,
        tokens: auth::Tokens,
        probes: Vec<ops::Probe>,
    ) -> AppState {
        let kib = usize::try_from(limits.max_in_flight_bytes.div_ceil(1024))
            .unwrap_or(usize::MAX)
            .min(Semaphore::MAX_PERMITS);
        let audit_syncer = audit
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .syncer();
        AppState {
            inner: Arc::new(Inner {
                routes: routes.into_iter().map(Arc::new).collect(),
                spool,
                audit,
                audit_syncer,
                key,
                notifier,
                requests: Arc::new(Semaphore::new(limits.max_concurrent_requests)),
                workers: Arc::new(Semaphore::new(limits.max_workers)),
                bytes: Arc::new(Semaphore::new(kib)),
                bytes_total_kib: u32::try_from(kib).unwrap_or(u32::MAX),
                limits,
                metrics: IngestMetrics::default(),
                forward_metrics,
                dimse_metrics: Arc::default(),
                tokens,
                probes: ops::Readiness::new(probes),
                requests_metrics: ops::RequestMetrics::default(),
            }),
        }
    }

    /// Bytes of the in-flight budget taken now (parts being read or de-identified), and the
    /// budget.
    pub fn in_flight_bytes(&self) -> (u64, u64) {
        let total = u64::from(self.inner.bytes_total_kib);
        let free = self.inner.bytes.available_permits() as u64;
        (total.saturating_sub(free) * 1024, total * 1024)
    }

    /// Working memory of the engines taken now, and the budget (bytes); zero and zero when the
    /// engines have no budget.
    pub fn working_memory_bytes(&self) -> (u64, u64) {
        self.inner
            .routes
            .iter()
            .flat_map(|r| r.targets.iter())
            .find_map(|t| t.engine.memory_budget())
            .map_or((0, 0), |b| (b.in_use(), b.total()))
    }

    /// The spool.
    pub fn spool(&self) -> &Spool {
        &self.inner.spool
    }

    /// The ingest counters.
    pub fn metrics(&self) -> &IngestMetrics {
        &self.inner.metrics
    }

    /// The routes.
    pub fn routes(&self) -> impl Iterator<Item = &Routing> {
        self.inner.routes.iter().map(|r| &**r)
    }

    /// The audit log (shared with the forwarder).
    pub fn audit(&self) -> &Arc<Mutex<AuditLog>> {
        &self.inner.audit
    }
}

/// A built gateway: the state to serve and the forwarder to run beside it.
pub struct Gateway {
    /// What the handlers share.
    pub state: AppState,
    /// Delivers from the spool; [`run`] runs it.
    pub forwarder: Forwarder,
    /// The DIMSE C-STORE SCP (`[dimse]`), which [`run`] starts beside the HTTP listener.
    pub dimse: Option<dimse::DimseConfig>,
    /// TLS for the listener (`[tls]`), or `None` for clear HTTP.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

/// The router: ingest routes from the state, plus `/healthz`, `/readyz` and `/metrics`.
pub fn app(state: AppState) -> Router {
    let mut router = Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics));
    for route in &state.inner.routes {
        let r1 = route.clone();
        let r2 = route.clone();
        router = router
            .route(
                &format!("{}/studies", route.path),
                post(move |st: State<AppState>, headers: HeaderMap, body: Body| {
                    guarded(st, r1.clone(), None, headers, body)
                }),
            )
            .route(
                &format!("{}/studies/{{study}}", route.path),
                post(
                    move |st: State<AppState>,
                          Path(study): Path<String>,
                          headers: HeaderMap,
                          body: Body| {
                        guarded(st, r2.clone(), Some(study), headers, body)
                    },
                ),
            );
    }
    router.with_state(state)
}

/// A STOW request: the token (if tokens are configured), then the `{uid}` of `/studies/{uid}`
/// (a UID, or 400), then ingest inside a span naming the route and the token; the response's
/// status and duration go to the request metrics. Nothing is read from the body before the
/// checks pass.
async fn guarded(
    State(state): State<AppState>,
    route: Arc<Routing>,
    study: Option<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let metrics = &state.inner.requests_metrics;
    let token = match state.inner.tokens.check(&headers, &route.name) {
        Ok(token) => token.map(str::to_owned),
        Err(denied) => {
            match &denied {
                auth::Denied::Forbidden { token } => tracing::warn!(
                    message = "STOW request refused: the token may not use this route.",
                    route = %route.name,
                    token = %token,
                ),
                other => tracing::info!(
                    message = "STOW request refused: no valid token.",
                    route = %route.name,
                    reason = other.label(),
                ),
            }
            let response = denied.clone().into_response();
            metrics.refused(denied.label(), response.status());
            return response;
        }
    };
    if study
        .as_deref()
        .is_some_and(|s| !dicom_deid_forward::is_uid(s))
    {
        tracing::info!(
            message = "STOW request refused: the study in the path is not a UID.",
            route = %route.name,
        );
        metrics.refused("bad_study", StatusCode::BAD_REQUEST);
        let mut res = (
            StatusCode::BAD_REQUEST,
            "the study in /studies/{uid} must be a UID (digits and dots, at most 64)\n",
        )
            .into_response();
        res.headers_mut().insert(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        return res;
    }
    let span = tracing::info_span!("stow", route = %route.name, token = token.as_deref());
    let response = ingest::stow(State(state.clone()), route, study, headers, body)
        .instrument(span)
        .await;
    metrics.observe(started.elapsed(), response.status());
    response
}

/// Serves `gateway` on `listener` and runs its forwarder until `shutdown` resolves; then stops
/// accepting, lets in-flight requests finish, stops the forwarder (undelivered entries stay in
/// the spool) and syncs the audit log.
pub async fn run(
    listener: TcpListener,
    gateway: Gateway,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let Gateway {
        state,
        forwarder,
        tls,
        dimse,
    } = gateway;
    let dimse_listener = match &dimse {
        Some(d) => Some(TcpListener::bind(d.listen).await?),
        None => None,
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let scp = match (dimse, dimse_listener) {
        (Some(config), Some(listener)) => {
            tracing::info!(
                message = "DIMSE SCP listening.",
                address = %config.listen,
                ae_title = %config.scp.ae_title,
                peers = config.scp.peers.len(),
            );
            let scp_state = state.clone();
            let scp_metrics = state.inner.dimse_metrics.clone();
            let mut scp_rx = stop_rx.clone();
            Some(tokio::spawn(async move {
                dimse::serve(listener, scp_state, &config, scp_metrics, async move {
                    let _ = scp_rx.wait_for(|stop| *stop).await;
                })
                .await
            }))
        }
        _ => None,
    };
    let mut forward_rx = stop_rx.clone();
    let forwarding = tokio::spawn(forwarder.run(async move {
        let _ = forward_rx.wait_for(|stop| *stop).await;
    }));
    let audit = state.inner.audit.clone();
    let served = listen::serve(listener, app(state), tls, shutdown).await;
    let _ = stop_tx.send(true);
    if let Some(scp) = scp {
        let _ = scp.await;
    }
    let _ = forwarding.await;
    let _ = tokio::task::spawn_blocking(move || {
        if let Ok(mut log) = audit.lock() {
            let _ = log.sync();
        }
    })
    .await;
    drop(stop_rx);
    served
}
