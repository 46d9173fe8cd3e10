//! Configuration: [`RawConfig`] (the TOML as written) → [`RawConfig::validate`] (pure checks,
//! every problem as `FILE: key: reason`) → [`Config::build`] (opens the data directory, key,
//! spool, audit log and destinations).
//!
//! With no file, [`RawConfig::default`] is the embedded default: listen on `127.0.0.1:8104`, data
//! under `./dicom-deid-data`, one route `default` (ingest at `/studies`, profile `basic`) to one
//! folder destination `local` (`<data>/out`).
//!
//! Paths in a file are relative to the file's folder; a destination's `dir` is relative to the
//! data directory. Secrets (bearer tokens, passwords) are only read from files named in the
//! config (`token_file`, `password_file`), never written inline.
//!
//! Ingest tokens (`[[tokens]]`) are stored as the SHA-256 of the token, with a name and the
//! routes the token may use; at least one is required when `listen` is not a loopback address.
//! `[tls]` names a PEM certificate chain and key for the listener; `[log]` chooses the log
//! format (`text` or `json`) and level for `dicom-deid serve`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dicom_deid_audit::{AuditLog, SyncPolicy};
use dicom_deid_dicomweb::{Auth, ClientConfig, Secret, StowClient};
use dicom_deid_engine::memory::MemoryBudget;
use dicom_deid_engine::{Engine, Key, Profile};
use dicom_deid_forward::{Destination, Forwarder, Hold, Metrics, RetryPolicy, Sink};
use dicom_deid_spool::{Spool, SpoolConfig};
use serde::Deserialize;
use tracing::info;

use crate::{AppState, Gateway, Limits, RouteTarget, Routing};

/// The address `serve` listens on without a config file.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8104";
/// The data directory without a config file (relative to the working directory).
pub const DEFAULT_DATA_DIR: &str = "./dicom-deid-data";

const MIB: u64 = 1 << 20;
/// The longest `batch_wait_ms` a destination may have.
const MAX_BATCH_WAIT_MS: u64 = 10_000;
/// The longest `hold_quiet_ms` a destination may have.
const MAX_HOLD_QUIET_MS: u64 = 10_000;
/// The longest `hold_max_ms` a destination may have.
const MAX_HOLD_MS: u64 = 600_000;

/// The configuration file as written. Every key is optional; unknown keys are refused.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// `host:port` to listen on. Anything but loopback needs at least one `[[tokens]]` entry.
    pub listen: Option<String>,
    /// Where the key, spool, audit log and folder destinations live.
    pub data_dir: Option<PathBuf>,
    /// The pseudonymisation key file. Default `<data_dir>/key`, created (mode 0600) on first start.
    pub key_file: Option<PathBuf>,
    /// Bounds on ingest and the spool.
    #[serde(default)]
    pub limits: RawLimits,
    /// Ingest routes. Default: one route `default` at `/studies` to destination `local`.
    #[serde(default)]
    pub routes: Vec<RawRoute>,
    /// Destinations. Default: `local`, a folder `<data_dir>/out`.
    #[serde(default)]
    pub destinations: Vec<RawDestination>,
    /// The DIMSE C-STORE SCP (`[dimse]`); absent: no SCP.
    pub dimse: Option<crate::dimse::RawDimse>,
    /// Ingest tokens (hashed). None: ingest is open (loopback only).
    #[serde(default)]
    pub tokens: Vec<RawToken>,
    /// TLS on the listener.
    pub tls: Option<RawTls>,
    /// Logging of `dicom-deid serve`.
    #[serde(default)]
    pub log: RawLog,
}

/// One `[[tokens]]` entry: `dicom-deid token new NAME` prints one.
#[derive(Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RawToken {
    /// The token's name: logged for each request it lets in (the token never is).
    pub name: String,
    /// SHA-256 of the token, 64 hex digits.
    pub sha256: String,
    /// Names of the routes this token may use.
    pub routes: Vec<String>,
}

impl fmt::Debug for RawToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawToken")
            .field("name", &self.name)
            .field("sha256", &"**REDACTED**")
            .field("routes", &self.routes)
            .finish()
    }
}

/// `[tls]`: the listener's certificate chain and private key, PEM.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    /// The certificate, then any intermediates.
    pub cert_file: PathBuf,
    /// The private key (not readable by others).
    pub key_file: PathBuf,
}

/// `[log]`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RawLog {
    /// `"text"` (default) or `"json"` (one JSON object per line).
    pub format: Option<String>,
    /// `error`, `warn`, `info` (default), `debug` or `trace`. `RUST_LOG`, when set, wins.
    pub level: Option<String>,
}

/// `[limits]`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    /// Largest instance (one part, or a single `application/dicom` body). Default 192 MiB.
    pub max_instance_bytes: Option<u64>,
    /// Most parts in one request. Default 10 000.
    pub max_request_parts: Option<usize>,
    /// Bytes of instances being read and de-identified at once, input and output counted
    /// (a part's share is taken before it is read). At least twice `max_instance_bytes`.
    /// Default 384 MiB.
    pub max_in_flight_bytes: Option<u64>,
    /// Bytes of working memory beyond input and output, shared by the instances being
    /// de-identified: inflated data sets and pixel cleans (decoded frames, detection, the
    /// re-encoded pixels). An instance that needs more than this is refused. Default 384 MiB.
    pub max_working_bytes: Option<u64>,
    /// STOW requests served at once; more get 503 + Retry-After. Default 16.
    pub max_concurrent_requests: Option<usize>,
    /// Instances de-identified at once (blocking threads). Default: the number of cores.
    pub max_workers: Option<usize>,
    /// Bytes of queued spool entries beyond which ingest answers "out of resources". Default 8 GiB.
    pub max_spool_bytes: Option<u64>,
    /// Seconds a client is told to wait (`Retry-After`) when the gateway is busy or full. Default 5.
    pub retry_after_secs: Option<u64>,
    /// Seconds a request body may send nothing before the request is ended. Default 60.
    pub body_idle_timeout_secs: Option<u64>,
}

/// One `[[routes]]` entry.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    /// The route's name (logs, audit, metrics).
    pub name: String,
    /// Path prefix: `""` (ingest at `/studies`) or e.g. `"/projects/a"` (ingest at `/projects/a/studies`).
    #[serde(default)]
    pub path: String,
    /// A built-in profile name or a profile TOML file. Default `basic`.
    pub profile: Option<String>,
    /// Names of the destinations every instance of this route goes to.
    pub destinations: Vec<String>,
}

/// One `[[destinations]]` entry.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RawDestination {
    /// The destination's name.
    pub name: String,
    /// `"folder"` or `"stow"`.
    pub kind: String,
    /// Folder destinations: the folder (relative to the data directory).
    pub dir: Option<PathBuf>,
    /// STOW destinations: the DICOMweb service root, e.g. `http://127.0.0.1:8042/dicom-web/`.
    pub url: Option<String>,
    /// STOW: a file holding a bearer token.
    pub token_file: Option<PathBuf>,
    /// STOW: the basic-auth user (with `password_file`).
    pub basic_user: Option<String>,
    /// STOW: a file holding the basic-auth password.
    pub password_file: Option<PathBuf>,
    /// STOW: extra CA certificates (PEM).
    pub ca_file: Option<PathBuf>,
    /// STOW: seconds one request may take. Default 300.
    pub timeout_secs: Option<u64>,
    /// Most instances per delivery. Default 50.
    pub batch_max_count: Option<usize>,
    /// Most bytes per delivery. Default 64 MiB.
    pub batch_max_bytes: Option<u64>,
    /// Deliveries in flight. Default 2.
    pub concurrency: Option<usize>,
    /// Milliseconds to wait for more instances before delivering a batch that is not full.
    /// Default 50; at most 10000.
    pub batch_wait_ms: Option<u64>,
    /// While instances for this destination keep arriving, deliveries wait; a gap this long
    /// in the arrivals ends the wait. Default 200; 0 delivers while instances arrive; at most
    /// 10000.
    pub hold_quiet_ms: Option<u64>,
    /// The longest such a wait lasts. Default 10000; at most 600000.
    pub hold_max_ms: Option<u64>,
    /// No such wait while the spool holds this many bytes (nor a quarter of its limit).
    /// Default 1 GiB.
    pub hold_max_bytes: Option<u64>,
    /// Attempts before an instance is dead-lettered. Default 20.
    pub retry_max_attempts: Option<u32>,
    /// A profile for this destination instead of the route's.
    pub profile: Option<String>,
}

/// One problem in a configuration: `FILE: key: reason`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The config file, or `<built-in default>`.
    pub file: String,
    /// The key, e.g. `routes[1].path`.
    pub key: String,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.file, self.key, self.reason)
    }
}

/// Why a configuration was refused: every problem found, one per line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The problems.
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Name of the origin used in messages when there is no file.
pub const BUILTIN_ORIGIN: &str = "<built-in default>";

impl RawConfig {
    /// Reads and parses a config file (syntax, types and unknown keys; then call
    /// [`RawConfig::validate`]).
    pub fn from_file(path: &Path) -> Result<RawConfig, ConfigError> {
        let file = path.display().to_string();
        let text =
            std::fs::read_to_string(path).map_err(|e| one(&file, "(file)", e.to_string()))?;
        Self::from_toml(&text, &file)
    }

    /// Parses config text; `file` names it in messages.
    pub fn from_toml(text: &str, file: &str) -> Result<RawConfig, ConfigError> {
        toml::from_str(text).map_err(|e: toml::de::Error| {
            let key = match e.span() {
                Some(span) => {
                    let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
                    let at = text.get(span.clone()).unwrap_or("").trim();
                    if !at.is_empty() && at.len() <= 64 && !at.contains('\n') {
                        format!("line {line}: {at}")
                    } else {
                        format!("line {line}")
                    }
                }
                None => "(file)".to_string(),
            };
            one(file, &key, e.message().trim().to_string())
        })
    }

    /// Checks everything that can be checked without I/O and resolves defaults. `origin` is
    /// the config file (relative paths are taken from its folder), or `None` for the embedded
    /// default (paths relative to the working directory).
    pub fn validate(&self, origin: Option<&Path>) -> Result<Config, ConfigError> {
        let file = origin.map_or_else(|| BUILTIN_ORIGIN.to_string(), |p| p.display().to_string());
        let base = origin
            .and_then(Path::parent)
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let resolve = |p: &Path| {
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                base.join(p)
            }
        };
        let mut problems = Vec::new();
        let mut problem = |key: &str, reason: String| {
            problems.push(Problem {
                file: file.clone(),
                key: key.to_string(),
                reason,
            })
        };

        let listen_text = self.listen.as_deref().unwrap_or(DEFAULT_LISTEN);
        let listen = match listen_text.parse::<SocketAddr>() {
            Ok(addr) if !addr.ip().is_loopback() && self.tokens.is_empty() => {
                problem(
                    "listen",
                    format!(
                        "{addr} is not a loopback address; listening beyond this host needs at \
                         least one [[tokens]] entry (make one with `dicom-deid token new NAME`), \
                         or use 127.0.0.1 or ::1"
                    ),
                );
                None
            }
            Ok(addr) => Some(addr),
            Err(_) => {
                problem(
                    "listen",
                    "must be an IP address and port, e.g. \"127.0.0.1:8104\"".into(),
                );
                None
            }
        };

        let data_dir = resolve(
            self.data_dir
                .as_deref()
                .unwrap_or(Path::new(DEFAULT_DATA_DIR)),
        );
        if data_dir.as_os_str().is_empty() {
            problem("data_dir", "must not be empty".into());
        }
        let (key_file, create_key) = match &self.key_file {
            Some(p) => (resolve(p), false),
            None => (data_dir.join("key"), true),
        };

        let l = &self.limits;
        let limits = Limits {
            max_instance_bytes: l.max_instance_bytes.unwrap_or(192 * MIB),
            max_request_parts: l.max_request_parts.unwrap_or(10_000),
            max_in_flight_bytes: l.max_in_flight_bytes.unwrap_or(384 * MIB),
            max_working_bytes: l.max_working_bytes.unwrap_or(384 * MIB),
            max_concurrent_requests: l.max_concurrent_requests.unwrap_or(16),
            max_workers: l.max_workers.unwrap_or_else(|| {
                std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
            }),
            max_spool_bytes: l.max_spool_bytes.unwrap_or(8192 * MIB),
            retry_after_secs: l.retry_after_secs.unwrap_or(5),
            body_idle_timeout_secs: l.body_idle_timeout_secs.unwrap_or(60),
        };
        for (key, value) in [
            ("limits.max_instance_bytes", limits.max_instance_bytes),
            ("limits.max_request_parts", limits.max_request_parts as u64),
            ("limits.max_in_flight_bytes", limits.max_in_flight_bytes),
            ("limits.max_working_bytes", limits.max_working_bytes),
            (
                "limits.max_concurrent_requests",
                limits.max_concurrent_requests as u64,
            ),
            ("limits.max_workers", limits.max_workers as u64),
            ("limits.max_spool_bytes", limits.max_spool_bytes),
            (
                "limits.body_idle_timeout_secs",
                limits.body_idle_timeout_secs,
            ),
        ] {
            if value == 0 {
                problem(key, "must be at least 1".into());
            }
        }
        if limits.max_instance_bytes > 4 << 30 {
            problem("limits.max_instance_bytes", "must be at most 4 GiB".into());
        }
        // One instance holds its input and its output at once.
        if limits.max_in_flight_bytes < limits.max_instance_bytes.saturating_mul(2) {
            problem(
                "limits.max_in_flight_bytes",
                format!(
                    "must be at least twice limits.max_instance_bytes ({} bytes), or the largest \
                     instance could never be processed",
                    limits.max_instance_bytes.saturating_mul(2)
                ),
            );
        }
        if limits.max_in_flight_bytes > 1 << 50 {
            problem("limits.max_in_flight_bytes", "must be at most 1 PiB".into());
        }
        if limits.max_working_bytes > 1 << 50 {
            problem("limits.max_working_bytes", "must be at most 1 PiB".into());
        }

        // Destinations.
        let raw_destinations = if self.destinations.is_empty() && self.routes.is_empty() {
            vec![RawDestination::folder("local", "out")]
        } else {
            self.destinations.clone()
        };
        let mut destinations = Vec::new();
        let mut names = BTreeSet::new();
        for (i, d) in raw_destinations.iter().enumerate() {
            let at = |k: &str| format!("destinations[{i}].{k}");
            if let Err(reason) = check_name(&d.name) {
                problem(&at("name"), reason);
            } else if !names.insert(d.name.clone()) {
                problem(&at("name"), format!("\"{}\" is defined twice", d.name));
            }
            let positive = |v: Option<u64>| v.is_none_or(|v| v > 0);
            for (k, ok) in [
                (
                    "batch_max_count",
                    positive(d.batch_max_count.map(|v| v as u64)),
                ),
                ("batch_max_bytes", positive(d.batch_max_bytes)),
                ("hold_max_bytes", positive(d.hold_max_bytes)),
                ("concurrency", positive(d.concurrency.map(|v| v as u64))),
                ("timeout_secs", positive(d.timeout_secs)),
                (
                    "retry_max_attempts",
                    positive(d.retry_max_attempts.map(u64::from)),
                ),
            ] {
                if !ok {
                    problem(&at(k), "must be at least 1".into());
                }
            }
            for (k, value, max) in [
                ("batch_wait_ms", d.batch_wait_ms, MAX_BATCH_WAIT_MS),
                ("hold_quiet_ms", d.hold_quiet_ms, MAX_HOLD_QUIET_MS),
                ("hold_max_ms", d.hold_max_ms, MAX_HOLD_MS),
            ] {
                if value.is_some_and(|v| v > max) {
                    problem(&at(k), format!("must be at most {max}"));
                }
            }
            let stow_only = [
                ("url", d.url.is_some()),
                ("token_file", d.token_file.is_some()),
                ("basic_user", d.basic_user.is_some()),
                ("password_file", d.password_file.is_some()),
                ("ca_file", d.ca_file.is_some()),
                ("timeout_secs", d.timeout_secs.is_some()),
            ];
            let kind = match d.kind.as_str() {
                "folder" => {
                    for (k, set) in stow_only {
                        if set {
                            problem(&at(k), "only a \"stow\" destination takes this key".into());
                        }
                    }
                    match &d.dir {
                        None => {
                            problem(&at("dir"), "a \"folder\" destination needs a dir".into());
                            None
                        }
                        Some(dir) => Some(DestinationKind::Folder {
                            dir: if dir.is_absolute() {
                                dir.clone()
                            } else {
                                data_dir.join(dir)
                            },
                        }),
                    }
                }
                "stow" => {
                    if d.dir.is_some() {
                        problem(
                            &at("dir"),
                            "only a \"folder\" destination takes this key".into(),
                        );
                    }
                    let url = match &d.url {
                        None => {
                            problem(&at("url"), "a \"stow\" destination needs a url".into());
                            None
                        }
                        Some(u) if !(u.starts_with("http://") || u.starts_with("https://")) => {
                            problem(&at("url"), "must start with http:// or https://".into());
                            None
                        }
                        Some(u) if u.contains('@') => {
                            problem(
                                &at("url"),
                                "must not carry credentials; use token_file or basic_user + \
                                 password_file"
                                    .into(),
                            );
                            None
                        }
                        Some(u) => Some(u.clone()),
                    };
                    let auth = match (&d.token_file, &d.basic_user, &d.password_file) {
                        (None, None, None) => Some(AuthSpec::None),
                        (Some(t), None, None) => Some(AuthSpec::Bearer(resolve(t))),
                        (None, Some(u), Some(p)) => Some(AuthSpec::Basic {
                            user: u.clone(),
                            password_file: resolve(p),
                        }),
                        (Some(_), _, _) => {
                            problem(
                                &at("token_file"),
                                "give either token_file or basic_user + password_file, not both"
                                    .into(),
                            );
                            None
                        }
                        (None, Some(_), None) => {
                            problem(
                                &at("password_file"),
                                "basic_user needs a password_file".into(),
                            );
                            None
                        }
                        (None, None, Some(_)) => {
                            problem(&at("basic_user"), "password_file needs a basic_user".into());
                            None
                        }
                    };
                    match (url, auth) {
                        (Some(url), Some(auth)) => Some(DestinationKind::Stow {
                            url,
                            auth,
                            ca_file: d.ca_file.as_deref().map(resolve),
                            timeout: Duration::from_secs(d.timeout_secs.unwrap_or(300)),
                        }),
                        _ => None,
                    }
                }
                other => {
                    problem(
                        &at("kind"),
                        format!("\"{other}\" is not a destination kind (\"folder\" or \"stow\")"),
                    );
                    None
                }
            };
            let profile = d.profile.as_ref().map(|p| profile_spec(p, &resolve));
            if let Some(kind) = kind {
                destinations.push(DestinationConfig {
                    name: d.name.clone(),
                    kind,
                    batch_max_count: d.batch_max_count.unwrap_or(50),
                    batch_max_bytes: d.batch_max_bytes.unwrap_or(64 * MIB),
                    concurrency: d.concurrency.unwrap_or(2),
                    batch_wait: d.batch_wait_ms.map_or(
                        dicom_deid_forward::DEFAULT_BATCH_WAIT,
                        Duration::from_millis,
                    ),
                    hold: {
                        let default = Hold::default();
                        Hold {
                            quiet: d.hold_quiet_ms.map_or(default.quiet, Duration::from_millis),
                            max: d.hold_max_ms.map_or(default.max, Duration::from_millis),
                            max_bytes: d.hold_max_bytes.unwrap_or(default.max_bytes),
                        }
                    },
                    retry_max_attempts: d.retry_max_attempts.unwrap_or(20),
                    profile,
                });
            }
        }

        // Routes.
        let raw_routes = if self.routes.is_empty() {
            let dest = raw_destinations
                .first()
                .map_or_else(|| "local".to_string(), |d| d.name.clone());
            vec![RawRoute {
                name: "default".into(),
                path: String::new(),
                profile: None,
                destinations: vec![dest],
            }]
        } else {
            self.routes.clone()
        };
        let mut routes = Vec::new();
        let mut route_names = BTreeSet::new();
        let mut paths = BTreeSet::new();
        let mut used = BTreeSet::new();
        for (i, r) in raw_routes.iter().enumerate() {
            let at = |k: &str| format!("routes[{i}].{k}");
            if let Err(reason) = check_name(&r.name) {
                problem(&at("name"), reason);
            } else if !route_names.insert(r.name.clone()) {
                problem(&at("name"), format!("\"{}\" is defined twice", r.name));
            }
            if let Err(reason) = check_path(&r.path) {
                problem(&at("path"), reason);
            } else if !paths.insert(r.path.clone()) {
                problem(
                    &at("path"),
                    format!("\"{}\" is used by another route", r.path),
                );
            }
            if r.destinations.is_empty() {
                problem(&at("destinations"), "name at least one destination".into());
            }
            let mut seen = BTreeSet::new();
            for (j, name) in r.destinations.iter().enumerate() {
                if !names.contains(name) {
                    problem(
                        &format!("routes[{i}].destinations[{j}]"),
                        format!("no destination is named \"{name}\""),
                    );
                } else if !seen.insert(name.clone()) {
                    problem(
                        &format!("routes[{i}].destinations[{j}]"),
                        format!("\"{name}\" is listed twice"),
                    );
                }
                used.insert(name.clone());
            }
            routes.push(RouteConfig {
                name: r.name.clone(),
                path: r.path.clone(),
                profile: profile_spec(r.profile.as_deref().unwrap_or("basic"), &resolve),
                destinations: r.destinations.clone(),
            });
        }
        let dimse = self
            .dimse
            .as_ref()
            .and_then(|d| crate::dimse::validate(d, &route_names, &limits, &resolve, &mut problem));
        for (i, d) in raw_destinations.iter().enumerate() {
            if !used.contains(&d.name) {
                problem(
                    &format!("destinations[{i}].name"),
                    format!("\"{}\" is not used by any route", d.name),
                );
            }
        }

        // Tokens.
        let mut tokens = Vec::new();
        let mut token_names = BTreeSet::new();
        let mut hashes = BTreeSet::new();
        for (i, t) in self.tokens.iter().enumerate() {
            let at = |k: &str| format!("tokens[{i}].{k}");
            if let Err(reason) = check_name(&t.name) {
                problem(&at("name"), reason);
            } else if !token_names.insert(t.name.clone()) {
                problem(&at("name"), format!("\"{}\" is defined twice", t.name));
            }
            // Never echo the value: it is the hash of a secret.
            let hash = crate::auth::parse_hash(&t.sha256);
            match hash {
                None => problem(
                    &at("sha256"),
                    "must be 64 hex digits, the SHA-256 of the token (`dicom-deid token new \
                     NAME` prints the line)"
                        .into(),
                ),
                Some(h) if !hashes.insert(h) => {
                    problem(&at("sha256"), "the same token is configured twice".into())
                }
                Some(_) => {}
            }
            if t.routes.is_empty() {
                problem(&at("routes"), "name at least one route".into());
            }
            for (j, r) in t.routes.iter().enumerate() {
                if !route_names.contains(r) {
                    problem(
                        &format!("tokens[{i}].routes[{j}]"),
                        format!("no route is named \"{r}\""),
                    );
                }
            }
            if let Some(sha256) = hash {
                tokens.push(crate::auth::TokenEntry {
                    name: t.name.clone(),
                    sha256,
                    routes: t.routes.iter().cloned().collect(),
                });
            }
        }

        let tls = self.tls.as_ref().map(|t| TlsConfig {
            cert_file: resolve(&t.cert_file),
            key_file: resolve(&t.key_file),
        });

        let format = match self.log.format.as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(_) => {
                problem("log.format", "must be \"text\" or \"json\"".into());
                LogFormat::Text
            }
        };
        let level = self.log.level.clone();
        if level.as_deref().is_some_and(|l| !LOG_LEVELS.contains(&l)) {
            problem(
                "log.level",
                "must be one of error, warn, info, debug, trace".into(),
            );
        }

        if !problems.is_empty() {
            return Err(ConfigError { problems });
        }
        Ok(Config {
            origin: file,
            listen: listen.expect("checked above"),
            data_dir,
            key_file,
            create_key,
            limits,
            routes,
            destinations,
            dimse,
            tokens: crate::auth::Tokens::new(tokens),
            tls,
            log: LogConfig { format, level },
        })
    }
}

impl RawDestination {
    fn folder(name: &str, dir: &str) -> RawDestination {
        RawDestination {
            name: name.into(),
            kind: "folder".into(),
            dir: Some(dir.into()),
            url: None,
            token_file: None,
            basic_user: None,
            password_file: None,
            ca_file: None,
            timeout_secs: None,
            batch_max_count: None,
            batch_max_bytes: None,
            concurrency: None,
            batch_wait_ms: None,
            hold_quiet_ms: None,
            hold_max_ms: None,
            hold_max_bytes: None,
            retry_max_attempts: None,
            profile: None,
        }
    }
}

fn one(file: &str, key: &str, reason: String) -> ConfigError {
    ConfigError {
        problems: vec![Problem {
            file: file.to_string(),
            key: key.to_string(),
            reason,
        }],
    }
}

/// A built-in profile name stays a name; anything else is a file relative to the config.
fn profile_spec(spec: &str, resolve: &impl Fn(&Path) -> PathBuf) -> String {
    if Profile::builtin_names().contains(&spec) {
        spec.to_string()
    } else {
        resolve(Path::new(spec)).display().to_string()
    }
}

/// Route, destination and token names: 1-64 of `A-Z a-z 0-9 _ - .`, not starting with `.`
/// (what the spool accepts as a destination name).
pub fn check_name(name: &str) -> Result<(), String> {
    let ok_first = name
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    let ok_rest = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if name.is_empty() || name.len() > 64 || !ok_first || !ok_rest {
        return Err(
            "must be 1-64 characters of A-Z a-z 0-9 _ - . and not start with '.'".to_string(),
        );
    }
    Ok(())
}

/// A route prefix: empty, or `/seg/seg` with safe segments, none of them reserved.
fn check_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Ok(());
    }
    let Some(rest) = path.strip_prefix('/') else {
        return Err("must be empty or start with '/' (e.g. \"/projects/a\")".into());
    };
    for segment in rest.split('/') {
        let ok = !segment.is_empty()
            && segment != "."
            && segment != ".."
            && segment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if !ok {
            return Err(
                "segments must be non-empty A-Z a-z 0-9 _ - . (no trailing '/', no '..')".into(),
            );
        }
    }
    if ["healthz", "readyz", "metrics", "studies"].contains(&rest.split('/').next().unwrap_or("")) {
        return Err(
            "must not start with a reserved segment (healthz, readyz, metrics, studies)".into(),
        );
    }
    Ok(())
}

/// The levels `[log] level` takes.
pub const LOG_LEVELS: [&str; 5] = ["error", "warn", "info", "debug", "trace"];

/// Where the listener's certificate and key are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// PEM certificate chain.
    pub cert_file: PathBuf,
    /// PEM private key.
    pub key_file: PathBuf,
}

/// How `serve` logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// `[log]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// The format.
    pub format: LogFormat,
    /// One of [`LOG_LEVELS`], or `None` for the default.
    pub level: Option<String>,
}

/// A validated configuration: every default resolved, nothing opened yet.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file it came from (or [`BUILTIN_ORIGIN`]).
    pub origin: String,
    /// Where to listen.
    pub listen: SocketAddr,
    /// The data directory.
    pub data_dir: PathBuf,
    /// The key file.
    pub key_file: PathBuf,
    /// Whether a missing key file is created (only the default `<data_dir>/key`).
    pub create_key: bool,
    /// Ingest and spool bounds.
    pub limits: Limits,
    /// Routes.
    pub routes: Vec<RouteConfig>,
    /// Destinations.
    pub destinations: Vec<DestinationConfig>,
    /// The DIMSE C-STORE SCP, if configured.
    pub dimse: Option<crate::dimse::DimseConfig>,
    /// Ingest tokens (empty: ingest is open; only on loopback).
    pub tokens: crate::auth::Tokens,
    /// TLS on the listener.
    pub tls: Option<TlsConfig>,
    /// Logging.
    pub log: LogConfig,
}

/// A validated route.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteConfig {
    /// Name.
    pub name: String,
    /// Path prefix (`""` or `/a/b`).
    pub path: String,
    /// Built-in profile name or profile file path.
    pub profile: String,
    /// Destination names.
    pub destinations: Vec<String>,
}

/// A validated destination.
#[derive(Debug, Clone, PartialEq)]
pub struct DestinationConfig {
    /// Name.
    pub name: String,
    /// Folder or STOW.
    pub kind: DestinationKind,
    /// Most instances per delivery.
    pub batch_max_count: usize,
    /// Most bytes per delivery.
    pub batch_max_bytes: u64,
    /// Deliveries in flight.
    pub concurrency: usize,
    /// Wait for more instances before delivering a batch that is not full.
    pub batch_wait: Duration,
    /// Deliveries give way to arriving instances, within bounds.
    pub hold: Hold,
    /// Attempts before dead-lettering.
    pub retry_max_attempts: u32,
    /// Own profile, overriding the route's.
    pub profile: Option<String>,
}

/// Where a destination delivers.
#[derive(Debug, Clone, PartialEq)]
pub enum DestinationKind {
    /// A local folder.
    Folder {
        /// The folder.
        dir: PathBuf,
    },
    /// A DICOMweb server.
    Stow {
        /// Service root.
        url: String,
        /// Credentials (files, read at build).
        auth: AuthSpec,
        /// Extra CA certificates.
        ca_file: Option<PathBuf>,
        /// Bound on one request.
        timeout: Duration,
    },
}

/// Where a destination's credentials come from.
#[derive(Debug, Clone, PartialEq)]
pub enum AuthSpec {
    /// None.
    None,
    /// A bearer token from this file.
    Bearer(PathBuf),
    /// Basic auth with the password from a file.
    Basic {
        /// The user.
        user: String,
        /// The password file.
        password_file: PathBuf,
    },
}

/// Why a valid configuration could not be put to work (files, directories, key, spool, audit).
#[derive(Debug, snafu::Snafu)]
pub enum BuildError {
    /// Could not create the data directory
    #[snafu(display("cannot create the data directory {}: {source}", path.display()))]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The key
    #[snafu(display("{origin}: key_file: {source}"))]
    KeyFile {
        /// The config file.
        origin: String,
        /// Why.
        source: dicom_deid_engine::KeyError,
    },
    /// A configured key file is missing
    #[snafu(display(
        "{origin}: key_file: {} does not exist; a configured key is never created (make one with \
         `dicom-deid keygen {}`)",
        path.display(),
        path.display()
    ))]
    KeyMissing {
        /// The config file.
        origin: String,
        /// The key file.
        path: PathBuf,
    },
    /// A profile could not be loaded
    #[snafu(display("{origin}: {key}: {reason}"))]
    Profile {
        /// The config file.
        origin: String,
        /// Where it was named.
        key: String,
        /// Why.
        reason: String,
    },
    /// A file named by a destination could not be read
    #[snafu(display("{origin}: {key}: cannot read {}: {source}", path.display()))]
    SecretFile {
        /// The config file.
        origin: String,
        /// The key naming it.
        key: String,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A destination's client could not be built
    #[snafu(display("{origin}: destinations.{name}: {reason}"))]
    Client {
        /// The config file.
        origin: String,
        /// The destination.
        name: String,
        /// Why.
        reason: String,
    },
    /// The listener's or the DIMSE SCP's TLS certificate, key or client CA
    #[snafu(display("{origin}: {key}: {reason}"))]
    Tls {
        /// The config file.
        origin: String,
        /// `tls.cert_file`, `tls.key_file` or `dimse.tls_…_file`.
        key: String,
        /// Why.
        reason: String,
    },
    /// The spool
    #[snafu(display("spool: {source}"))]
    Spool {
        /// Why.
        source: dicom_deid_spool::SpoolError,
    },
    /// The audit log
    #[snafu(display("audit: {source}"))]
    Audit {
        /// Why.
        source: dicom_deid_audit::AuditError,
    },
}

/// Creates a directory (and parents) with mode 0700 where it is new.
fn create_private_dir(path: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(path)
}

fn read_secret(origin: &str, key: &str, path: &Path) -> Result<Secret, BuildError> {
    let text = std::fs::read_to_string(path).map_err(|source| BuildError::SecretFile {
        origin: origin.to_string(),
        key: key.to_string(),
        path: path.to_path_buf(),
        source,
    })?;
    Ok(Secret::new(text.trim_end_matches(['\r', '\n'])))
}

impl Config {
    /// Opens everything: creates the data directory (0700) and, for the default key path, the
    /// key (0600); loads profiles; opens the spool (`<data>/spool`) and the audit log
    /// (`<data>/audit.jsonl`); builds the destinations. The caller gets an [`AppState`] for
    /// [`crate::app`] and a [`Forwarder`] to run (both in a [`Gateway`]).
    pub fn build(&self) -> Result<Gateway, BuildError> {
        let origin = &self.origin;
        create_private_dir(&self.data_dir).map_err(|source| BuildError::DataDir {
            path: self.data_dir.clone(),
            source,
        })?;
        let key = if self.create_key && !self.key_file.exists() {
            let key = Key::generate().map_err(|source| BuildError::KeyFile {
                origin: origin.clone(),
                source,
            })?;
            key.write_new(&self.key_file)
                .map_err(|source| BuildError::KeyFile {
                    origin: origin.clone(),
                    source,
                })?;
            info!(message = "Key created.", path = %self.key_file.display());
            key
        } else if !self.key_file.exists() {
            return Err(BuildError::KeyMissing {
                origin: origin.clone(),
                path: self.key_file.clone(),
            });
        } else {
            Key::load(&self.key_file).map_err(|source| BuildError::KeyFile {
                origin: origin.clone(),
                source,
            })?
        };

        // One engine per distinct profile, all sharing one working-memory budget.
        let working_memory = Arc::new(MemoryBudget::new(self.limits.max_working_bytes));
        let mut engines: BTreeMap<String, Arc<Engine>> = BTreeMap::new();
        let mut engine_for = |spec: &str, key_name: String| -> Result<Arc<Engine>, BuildError> {
            if let Some(e) = engines.get(spec) {
                return Ok(e.clone());
            }
            let profile = Profile::load(spec).map_err(|e| BuildError::Profile {
                origin: origin.clone(),
                key: key_name,
                reason: e.to_string(),
            })?;
            let engine = Arc::new(
                Engine::new(profile, key.clone()).with_memory_budget(working_memory.clone()),
            );
            engines.insert(spec.to_string(), engine.clone());
            Ok(engine)
        };

        let mut routes = Vec::new();
        for (i, r) in self.routes.iter().enumerate() {
            let route_engine = engine_for(&r.profile, format!("routes[{i}].profile"))?;
            let mut targets = Vec::new();
            for name in &r.destinations {
                let (j, d) = self
                    .destinations
                    .iter()
                    .enumerate()
                    .find(|(_, d)| &d.name == name)
                    .expect("validated");
                let engine = match &d.profile {
                    Some(spec) => engine_for(spec, format!("destinations[{j}].profile"))?,
                    None => route_engine.clone(),
                };
                targets.push(RouteTarget {
                    destination: name.clone(),
                    engine,
                });
            }
            routes.push(Routing {
                name: r.name.clone(),
                path: r.path.clone(),
                targets,
            });
        }

        let tls = match &self.tls {
            None => None,
            Some(t) => Some(
                crate::tls::server_config(&t.cert_file, &t.key_file).map_err(|(key, reason)| {
                    BuildError::Tls {
                        origin: origin.clone(),
                        key: key.to_string(),
                        reason,
                    }
                })?,
            ),
        };

        let dimse = match &self.dimse {
            None => None,
            Some(d) => Some(d.build().map_err(|(key, reason)| BuildError::Tls {
                origin: origin.clone(),
                key: key.to_string(),
                reason,
            })?),
        };

        let mut destinations = Vec::new();
        let mut probes = Vec::new();
        for (j, d) in self.destinations.iter().enumerate() {
            let sink = match &d.kind {
                DestinationKind::Folder { dir } => {
                    create_private_dir(dir).map_err(|source| BuildError::DataDir {
                        path: dir.clone(),
                        source,
                    })?;
                    probes.push(crate::ops::Probe::Folder {
                        name: d.name.clone(),
                        dir: dir.clone(),
                    });
                    Sink::Folder { dir: dir.clone() }
                }
                DestinationKind::Stow {
                    url,
                    auth,
                    ca_file,
                    timeout,
                } => {
                    let auth = match auth {
                        AuthSpec::None => Auth::None,
                        AuthSpec::Bearer(path) => Auth::Bearer(read_secret(
                            origin,
                            &format!("destinations[{j}].token_file"),
                            path,
                        )?),
                        AuthSpec::Basic {
                            user,
                            password_file,
                        } => Auth::Basic {
                            user: user.clone(),
                            password: read_secret(
                                origin,
                                &format!("destinations[{j}].password_file"),
                                password_file,
                            )?,
                        },
                    };
                    let ca_pem =
                        match ca_file {
                            Some(path) => Some(std::fs::read(path).map_err(|source| {
                                BuildError::SecretFile {
                                    origin: origin.clone(),
                                    key: format!("destinations[{j}].ca_file"),
                                    path: path.clone(),
                                    source,
                                }
                            })?),
                            None => None,
                        };
                    let client = StowClient::new(ClientConfig {
                        base_url: url.clone(),
                        auth,
                        ca_pem,
                        timeout: *timeout,
                    })
                    .map_err(|e| BuildError::Client {
                        origin: origin.clone(),
                        name: d.name.clone(),
                        reason: e.to_string(),
                    })?;
                    probes.push(crate::ops::Probe::Stow {
                        name: d.name.clone(),
                        client: client.clone(),
                    });
                    Sink::Stow { client }
                }
            };
            destinations.push(Destination {
                name: d.name.clone(),
                sink,
                batch_max_count: d.batch_max_count,
                batch_max_bytes: d.batch_max_bytes,
                concurrency: d.concurrency,
                batch_wait: d.batch_wait,
                hold: d.hold,
                retry: RetryPolicy {
                    max_attempts: d.retry_max_attempts,
                    ..RetryPolicy::default()
                },
            });
        }

        let spool = Spool::open(
            &self.data_dir.join("spool"),
            SpoolConfig {
                max_bytes: self.limits.max_spool_bytes,
            },
        )
        .map_err(|source| BuildError::Spool { source })?;
        let audit = AuditLog::open(&self.data_dir.join("audit.jsonl"), SyncPolicy::EveryRecord)
            .map_err(|source| BuildError::Audit { source })?;
        let audit = Arc::new(Mutex::new(audit));
        let forward_metrics = Arc::new(Metrics::default());
        let forwarder = Forwarder::new(
            spool.clone(),
            destinations,
            audit.clone(),
            forward_metrics.clone(),
        );
        let state = AppState::new(
            routes,
            spool,
            audit,
            key,
            forwarder.notifier(),
            self.limits.clone(),
            forward_metrics,
            self.tokens.clone(),
            probes,
        );
        Ok(Gateway {
            state,
            forwarder,
            dimse,
            tls,
        })
    }
}
