//! DIMSE ingest: the `[dimse]` section of the config and the gateway's [`Store`] behind the
//! C-STORE SCP of `dicom-deid-dimse`.
//!
//! Each C-STORE instance takes the same path as a STOW-RS part (`ingest::store_instance`:
//! in-flight bytes, a worker, the engine of every destination's profile, a durable spool put
//! per destination, audit lines `received` → `queued` / `rejected` carrying the calling AE
//! title, the same ingest counters); the SCP answers Success only once that returns `Stored`.
//! A refusal is answered with the STOW FailureReason code as the C-STORE status (the two share
//! PS3.4's codes: `0xC000` unreadable, `0xA900` cannot be fully de-identified, `0xA700` too
//! large or spool full, `0x0110` spool write failed) and the audited reason as ErrorComment.
//!
//! ```toml
//! [dimse]
//! listen = "127.0.0.1:11112"   # default
//! ae_title = "DEID"            # default; a different called AE title is rejected
//! max_pdu = 131072             # default; 4096 ..= 4194304
//! max_associations = 8         # default; one more is rejected (transient, local limit)
//! idle_timeout_secs = 60       # default; a silent peer's association is aborted
//!
//! [[dimse.peers]]
//! ae_title = "PACS"            # the calling AE title
//! route = "default"            # the route its instances take
//! addresses = ["10.1.2.3"]     # optional: the only source addresses it may use
//! ```
//!
//! Beyond loopback (a non-loopback `listen`), every peer must name its `addresses`: an AE
//! title alone is not a credential.

use std::collections::BTreeSet;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use dicom_deid_dimse::{Peer, ScpConfig, ScpMetrics, Store, StoreOutcome, StoreRequest};
use serde::Deserialize;
use tokio::net::TcpListener;

use crate::ingest::{self, Outcome};
use crate::{AppState, Limits};

/// The DIMSE port without a `listen` key.
pub const DEFAULT_DIMSE_LISTEN: &str = "127.0.0.1:11112";
/// The SCP's AE title without an `ae_title` key.
pub const DEFAULT_AE_TITLE: &str = "DEID";

/// `[dimse]` as written. Its presence turns the C-STORE SCP on.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RawDimse {
    /// `host:port` of the SCP.
    pub listen: Option<String>,
    /// The SCP's AE title.
    pub ae_title: Option<String>,
    /// Largest PDU received.
    pub max_pdu: Option<u32>,
    /// Associations at once.
    pub max_associations: Option<usize>,
    /// Seconds a peer may stay silent in the middle of an association.
    pub idle_timeout_secs: Option<u64>,
    /// The calling AE titles let in.
    #[serde(default)]
    pub peers: Vec<RawPeer>,
}

/// One `[[dimse.peers]]` entry.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RawPeer {
    /// Calling AE title.
    pub ae_title: String,
    /// Route name.
    pub route: String,
    /// Allowed source addresses (empty: any; required beyond loopback).
    #[serde(default)]
    pub addresses: Vec<String>,
}

/// `[dimse]`, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct DimseConfig {
    /// Where the SCP listens.
    pub listen: SocketAddr,
    /// The SCP's settings (AE title, bounds, peers).
    pub scp: ScpConfig,
}

/// Whether `t` is a usable AE title: 1 to 16 characters of ISO 646 without backslash or
/// control characters, not all spaces.
fn check_ae_title(t: &str) -> Result<(), String> {
    if t.trim().is_empty() {
        return Err("must not be empty".into());
    }
    if t.len() > 16 {
        return Err("must be at most 16 characters".into());
    }
    if !t.chars().all(|c| (' '..='~').contains(&c) && c != '\\') {
        return Err("must be printable ASCII without backslash".into());
    }
    if t != t.trim() {
        return Err("must not start or end with a space".into());
    }
    Ok(())
}

/// Checks `[dimse]`; every problem goes to `problem(key, reason)`. `None` when invalid.
pub(crate) fn validate(
    raw: &RawDimse,
    route_names: &BTreeSet<String>,
    limits: &Limits,
    problem: &mut dyn FnMut(&str, String),
) -> Option<DimseConfig> {
    let mut ok = true;
    let mut bad = |key: &str, reason: String| {
        ok = false;
        problem(key, reason);
    };
    let listen = match raw
        .listen
        .as_deref()
        .unwrap_or(DEFAULT_DIMSE_LISTEN)
        .parse::<SocketAddr>()
    {
        Ok(a) => Some(a),
        Err(_) => {
            bad(
                "dimse.listen",
                "must be an IP address and port, e.g. \"127.0.0.1:11112\"".into(),
            );
            None
        }
    };
    let ae_title = raw.ae_title.as_deref().unwrap_or(DEFAULT_AE_TITLE);
    if let Err(reason) = check_ae_title(ae_title) {
        bad("dimse.ae_title", reason);
    }
    let mut scp = ScpConfig::new(ae_title);
    scp.implementation_class_uid = dicom_deid_engine::IMPLEMENTATION_CLASS_UID.to_string();
    scp.max_instance_bytes = limits.max_instance_bytes;
    if let Some(v) = raw.max_pdu {
        if !(dicom_deid_dimse::MIN_MAX_PDU..=dicom_deid_dimse::MAX_MAX_PDU).contains(&v) {
            bad(
                "dimse.max_pdu",
                format!(
                    "must be between {} and {}",
                    dicom_deid_dimse::MIN_MAX_PDU,
                    dicom_deid_dimse::MAX_MAX_PDU
                ),
            );
        }
        scp.max_pdu = v;
    }
    if let Some(v) = raw.max_associations {
        if !(1..=1024).contains(&v) {
            bad(
                "dimse.max_associations",
                "must be between 1 and 1024".into(),
            );
        }
        scp.max_associations = v;
    }
    if let Some(v) = raw.idle_timeout_secs {
        if !(1..=3600).contains(&v) {
            bad(
                "dimse.idle_timeout_secs",
                "must be between 1 and 3600".into(),
            );
        }
        scp.idle_timeout = Duration::from_secs(v);
    }
    if raw.peers.is_empty() {
        bad(
            "dimse.peers",
            "name at least one [[dimse.peers]] (ae_title, route): nobody else is let in".into(),
        );
    }
    let beyond_loopback = listen.is_some_and(|a| !a.ip().is_loopback());
    let mut titles = BTreeSet::new();
    for (i, p) in raw.peers.iter().enumerate() {
        let at = |k: &str| format!("dimse.peers[{i}].{k}");
        if let Err(reason) = check_ae_title(&p.ae_title) {
            bad(&at("ae_title"), reason);
        } else if !titles.insert(p.ae_title.clone()) {
            bad(
                &at("ae_title"),
                format!("\"{}\" is listed twice", p.ae_title),
            );
        }
        if !route_names.contains(&p.route) {
            bad(&at("route"), format!("no route is named \"{}\"", p.route));
        }
        let mut addresses = Vec::new();
        for (j, a) in p.addresses.iter().enumerate() {
            match a.parse::<IpAddr>() {
                Ok(ip) => addresses.push(ip),
                Err(_) => bad(
                    &format!("dimse.peers[{i}].addresses[{j}]"),
                    "must be an IP address".into(),
                ),
            }
        }
        if beyond_loopback && p.addresses.is_empty() {
            bad(
                &at("addresses"),
                "dimse.listen is not a loopback address, so each peer must list the addresses \
                 it connects from (an AE title alone is not a credential)"
                    .into(),
            );
        }
        scp.peers.push(Peer {
            ae_title: p.ae_title.clone(),
            route: p.route.clone(),
            addresses,
        });
    }
    match (ok, listen) {
        (true, Some(listen)) => Some(DimseConfig { listen, scp }),
        _ => None,
    }
}

/// The gateway as a [`Store`]: each instance goes the way of a STOW part.
#[derive(Debug, Clone)]
pub struct GatewayStore {
    state: AppState,
}

impl GatewayStore {
    /// A store putting instances into `state`'s engine, spool and audit.
    pub fn new(state: AppState) -> GatewayStore {
        GatewayStore { state }
    }
}

impl Store for GatewayStore {
    async fn store(&self, request: StoreRequest) -> StoreOutcome {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        // Audit id of the instance: process-unique, carries nothing of the data.
        let id = format!("dimse-{ms}-{}.{}", request.association, request.index);
        let outcome = ingest::store_instance(
            self.state.clone(),
            &request.route,
            &request.calling_ae,
            id,
            Bytes::from(request.bytes),
        )
        .await;
        match outcome {
            Outcome::Stored { .. } => StoreOutcome::Stored,
            Outcome::Failed {
                reason, comment, ..
            } => StoreOutcome::Refused {
                status: reason,
                comment,
            },
        }
    }
}

/// Serves the C-STORE SCP on `listener` into `state` until `shutdown` resolves (operations in
/// progress are answered first). `metrics` counts associations and operations.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    config: &DimseConfig,
    metrics: Arc<ScpMetrics>,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    dicom_deid_dimse::serve(
        listener,
        Arc::new(config.scp.clone()),
        Arc::new(GatewayStore::new(state)),
        metrics,
        shutdown,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        crate::config::RawConfig::default()
            .validate(None)
            .unwrap()
            .limits
    }

    fn check(raw: &RawDimse) -> Result<DimseConfig, Vec<(String, String)>> {
        let routes = BTreeSet::from(["default".to_string()]);
        let mut problems = Vec::new();
        let got = validate(raw, &routes, &limits(), &mut |k, r| {
            problems.push((k.to_string(), r))
        });
        got.ok_or(problems)
    }

    fn peer(ae: &str, route: &str, addresses: &[&str]) -> RawPeer {
        RawPeer {
            ae_title: ae.into(),
            route: route.into(),
            addresses: addresses.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn defaults_and_a_peer_make_a_loopback_scp() {
        let c = check(&RawDimse {
            peers: vec![peer("PACS", "default", &[])],
            ..RawDimse::default()
        })
        .unwrap();
        assert_eq!(c.listen, DEFAULT_DIMSE_LISTEN.parse().unwrap());
        assert_eq!(c.scp.ae_title, "DEID");
        assert_eq!(c.scp.peers[0].route, "default");
        assert_eq!(c.scp.max_instance_bytes, limits().max_instance_bytes);
    }

    #[test]
    fn every_problem_is_named_by_its_key() {
        let keys = |raw: RawDimse| -> Vec<String> {
            check(&raw).unwrap_err().into_iter().map(|p| p.0).collect()
        };
        assert_eq!(keys(RawDimse::default()), ["dimse.peers"]);
        assert_eq!(
            keys(RawDimse {
                listen: Some("nowhere".into()),
                ae_title: Some("MUCH-TOO-LONG-AE-TITLE".into()),
                max_pdu: Some(10),
                max_associations: Some(0),
                idle_timeout_secs: Some(0),
                peers: vec![
                    peer("A\\B", "default", &[]),
                    peer("PACS", "nope", &["10.0.0.300"]),
                    peer("PACS", "default", &[]),
                ],
            }),
            [
                "dimse.listen",
                "dimse.ae_title",
                "dimse.max_pdu",
                "dimse.max_associations",
                "dimse.idle_timeout_secs",
                "dimse.peers[0].ae_title",
                "dimse.peers[1].route",
                "dimse.peers[1].addresses[0]",
                "dimse.peers[2].ae_title",
            ]
        );
        // Beyond loopback, an AE title alone does not get in.
        assert_eq!(
            keys(RawDimse {
                listen: Some("0.0.0.0:11112".into()),
                peers: vec![
                    peer("PACS", "default", &[]),
                    peer("CT", "default", &["10.1.2.3"])
                ],
                ..RawDimse::default()
            }),
            ["dimse.peers[0].addresses"]
        );
    }
}
