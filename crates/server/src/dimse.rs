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
//! max_receive_bytes = 402653184 # default limits.max_in_flight_bytes: memory for data sets
//!                              #   being received, all associations together; beyond it an
//!                              #   instance is drained and answered 0xA700 (retry later)
//! idle_timeout_secs = 60       # default; a silent peer's association is aborted
//! tls_cert_file = "scp.pem"    # optional: TLS (the DICOM TLS profile) on every association,
//! tls_key_file = "scp.key"     #   with this PEM certificate chain and key (0600 or 0640)
//! tls_client_ca_file = "ca.pem" # optional: require client certificates issued by this CA
//!
//! [[dimse.peers]]
//! ae_title = "PACS"            # the calling AE title
//! route = "default"            # the route its instances take
//! addresses = ["10.1.2.3"]     # optional: the only source addresses it may use
//! ```
//!
//! Beyond loopback (a non-loopback `listen`), every peer must name its `addresses`: an AE
//! title alone is not a credential.
//!
//! With `tls_cert_file` and `tls_key_file` (both or neither) every connection is TLS 1.2 or
//! 1.3 first (rustls; the files are read as for the HTTP listener's `[tls]`, by
//! [`crate::tls::dimse_server_config`]); a plain DICOM peer never gets to associate. With
//! `tls_client_ca_file` as well, a peer must present a certificate issued by that CA; the AE
//! title and address checks still apply after the handshake.

use std::collections::BTreeSet;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use dicom_deid_dimse::{
    Arriving, Peer, Receiving, ScpConfig, ScpMetrics, Store, StoreOutcome, StoreRequest,
};
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
    /// Memory for data sets being received, all associations together.
    pub max_receive_bytes: Option<u64>,
    /// Seconds a peer may stay silent in the middle of an association.
    pub idle_timeout_secs: Option<u64>,
    /// TLS: the PEM certificate chain (with `tls_key_file`).
    pub tls_cert_file: Option<PathBuf>,
    /// TLS: the PEM private key (with `tls_cert_file`).
    pub tls_key_file: Option<PathBuf>,
    /// TLS: require client certificates issued by the CA(s) in this PEM file.
    pub tls_client_ca_file: Option<PathBuf>,
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
    /// The SCP's settings (AE title, bounds, peers; `scp.tls` is set by [`DimseConfig::build`]
    /// from [`DimseConfig::tls`]).
    pub scp: ScpConfig,
    /// The TLS files (paths resolved), if TLS is on.
    pub tls: Option<DimseTlsFiles>,
}

/// Where the SCP's TLS certificate, key and client CA are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DimseTlsFiles {
    /// PEM certificate chain.
    pub cert_file: PathBuf,
    /// PEM private key.
    pub key_file: PathBuf,
    /// PEM CA certificates; `Some`: client certificates are required.
    pub client_ca_file: Option<PathBuf>,
}

impl DimseConfig {
    /// Reads the TLS files (if any) into `scp.tls`. The `Err` is (config key, reason), the
    /// reason naming the file, never its content.
    pub fn build(&self) -> Result<DimseConfig, (&'static str, String)> {
        let mut built = self.clone();
        if let Some(t) = &self.tls {
            let config = crate::tls::dimse_server_config(
                &t.cert_file,
                &t.key_file,
                t.client_ca_file.as_deref(),
            )?;
            built.scp.tls = Some(dicom_deid_dimse::ScpTls(config));
        }
        Ok(built)
    }
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
    resolve: &dyn Fn(&Path) -> PathBuf,
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
    scp.max_receive_bytes = limits.max_in_flight_bytes;
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
    if let Some(v) = raw.max_receive_bytes {
        // Room for the largest instance and its file meta, so that it can be received at all.
        let least = limits.max_instance_bytes.saturating_add(1 << 20);
        if v < least {
            bad(
                "dimse.max_receive_bytes",
                format!("must be at least limits.max_instance_bytes + 1 MiB ({least})"),
            );
        }
        scp.max_receive_bytes = v;
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
    let tls = match (&raw.tls_cert_file, &raw.tls_key_file) {
        (Some(cert), Some(key)) => Some(DimseTlsFiles {
            cert_file: resolve(cert),
            key_file: resolve(key),
            client_ca_file: raw.tls_client_ca_file.as_deref().map(resolve),
        }),
        (None, None) => {
            if raw.tls_client_ca_file.is_some() {
                bad(
                    "dimse.tls_client_ca_file",
                    "client certificates need TLS: set tls_cert_file and tls_key_file too".into(),
                );
            }
            None
        }
        (Some(_), None) => {
            bad(
                "dimse.tls_key_file",
                "tls_cert_file is set, so the key is needed too".into(),
            );
            None
        }
        (None, Some(_)) => {
            bad(
                "dimse.tls_cert_file",
                "tls_key_file is set, so the certificate is needed too".into(),
            );
            None
        }
    };
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
        (true, Some(listen)) => Some(DimseConfig { listen, scp, tls }),
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
        let id = instance_id(ms, request.association, request.index);
        let outcome = ingest::store_instance(
            self.state.clone(),
            &request.route,
            &request.calling_ae,
            id,
            Bytes::from(request.bytes),
        )
        .await;
        answer(outcome)
    }

    /// Instances whose pixel data passes through are written into the spool as they arrive
    /// (`crate::streamed`); the others, and any that cannot be, take [`Store::store`]'s path.
    fn receiving(&self, arriving: &Arriving<'_>) -> Option<Box<dyn Receiving>> {
        let streaming = crate::streamed::Streaming::new(&self.state, arriving)?;
        Some(Box::new(streaming))
    }
}

/// The audit id of a DIMSE instance received at `ms` (Unix milliseconds): process-unique, and
/// carries nothing of the data.
pub(crate) fn instance_id(ms: u64, association: u64, index: u64) -> String {
    format!("dimse-{ms}-{association}.{index}")
}

/// The C-STORE answer to an ingest outcome.
pub(crate) fn answer(outcome: Outcome) -> StoreOutcome {
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
        let resolve = |p: &Path| Path::new("/etc/deid").join(p);
        let got = validate(raw, &routes, &limits(), &resolve, &mut |k, r| {
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
        assert_eq!(c.scp.max_receive_bytes, limits().max_in_flight_bytes);
        let set = check(&RawDimse {
            max_receive_bytes: Some(limits().max_instance_bytes + (1 << 20)),
            peers: vec![peer("PACS", "default", &[])],
            ..RawDimse::default()
        })
        .unwrap();
        assert_eq!(
            set.scp.max_receive_bytes,
            limits().max_instance_bytes + (1 << 20)
        );
    }

    #[test]
    fn tls_files_come_in_pairs_and_are_resolved_against_the_config_folder() {
        let with = |cert: Option<&str>, key: Option<&str>, ca: Option<&str>| RawDimse {
            tls_cert_file: cert.map(Into::into),
            tls_key_file: key.map(Into::into),
            tls_client_ca_file: ca.map(Into::into),
            peers: vec![peer("PACS", "default", &[])],
            ..RawDimse::default()
        };
        let c = check(&with(
            Some("scp.pem"),
            Some("/keys/scp.key"),
            Some("ca.pem"),
        ))
        .unwrap();
        assert_eq!(
            c.tls,
            Some(DimseTlsFiles {
                cert_file: "/etc/deid/scp.pem".into(),
                key_file: "/keys/scp.key".into(),
                client_ca_file: Some("/etc/deid/ca.pem".into()),
            })
        );
        assert_eq!(c.scp.tls, None, "files are read by build(), not validate()");
        assert_eq!(check(&with(None, None, None)).unwrap().tls, None);
        let key = |raw| check(&raw).unwrap_err()[0].0.clone();
        assert_eq!(key(with(Some("a"), None, None)), "dimse.tls_key_file");
        assert_eq!(key(with(None, Some("a"), None)), "dimse.tls_cert_file");
        assert_eq!(key(with(None, None, Some("a"))), "dimse.tls_client_ca_file");
    }

    #[test]
    fn building_tls_names_the_key_and_file_that_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(&garbage, "not a certificate").unwrap();
        let config = |cert: &Path, key: &Path, ca: Option<&Path>| DimseConfig {
            tls: Some(DimseTlsFiles {
                cert_file: cert.into(),
                key_file: key.into(),
                client_ca_file: ca.map(Into::into),
            }),
            ..check(&RawDimse {
                peers: vec![peer("PACS", "default", &[])],
                ..RawDimse::default()
            })
            .unwrap()
        };
        let (key, reason) = config(&missing, &missing, None).build().unwrap_err();
        assert_eq!(key, "dimse.tls_cert_file");
        assert!(reason.contains("missing.pem"), "{reason}");
        let (key, reason) = config(&garbage, &missing, None).build().unwrap_err();
        assert_eq!(key, "dimse.tls_cert_file");
        assert!(
            !reason.contains("not a certificate"),
            "never the content: {reason}"
        );
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
                max_receive_bytes: Some(limits().max_instance_bytes),
                idle_timeout_secs: Some(0),
                tls_cert_file: None,
                tls_key_file: Some("scp.key".into()),
                tls_client_ca_file: Some("ca.pem".into()),
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
                "dimse.max_receive_bytes",
                "dimse.idle_timeout_secs",
                "dimse.tls_cert_file",
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
