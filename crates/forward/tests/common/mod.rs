//! Helpers shared by the forwarder's integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dicom_deid_audit::{AuditLog, OriginalHashes, SyncPolicy};
use dicom_deid_forward::{Destination, Forwarder, Metrics, SpoolMeta};
use dicom_deid_spool::{EntryId, Spool, SpoolConfig};
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A spool, an audit log and metrics in a temporary folder.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub spool: Spool,
    pub audit: Arc<Mutex<AuditLog>>,
    pub audit_path: PathBuf,
    pub metrics: Arc<Metrics>,
}

impl Env {
    pub fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(
            &dir.path().join("spool"),
            SpoolConfig { max_bytes: 1 << 30 },
        )
        .unwrap();
        let audit_path = dir.path().join("audit.jsonl");
        let audit = AuditLog::open(&audit_path, SyncPolicy::EveryRecord).unwrap();
        Env {
            dir,
            spool,
            audit: Arc::new(Mutex::new(audit)),
            audit_path,
            metrics: Arc::new(Metrics::default()),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Puts one instance for `destination` the way ingest does; returns its id.
    pub fn put(&self, destination: &str, meta: &SpoolMeta, data: &[u8]) -> EntryId {
        let json = serde_json::to_vec(meta).unwrap();
        self.spool
            .put(destination, &meta.study_uid, &json, data)
            .unwrap()
    }

    /// Starts a forwarder for `destinations`; stop it with [`Running::stop`].
    pub fn start(&self, destinations: Vec<Destination>) -> Running {
        let forwarder = Forwarder::new(
            self.spool.clone(),
            destinations,
            self.audit.clone(),
            self.metrics.clone(),
        );
        let notifier = forwarder.notifier();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(forwarder.run(async move {
            let _ = rx.await;
        }));
        Running {
            notifier,
            stop: Some(tx),
            task,
        }
    }

    /// Waits (polling, in tokio time) until no entry is queued for `destination`.
    pub async fn drained(&self, destination: &str) {
        while self.spool.depth().destinations.contains_key(destination) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// The audit lines as JSON values.
    pub fn audit_lines(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.audit_path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// The audit lines of `event`.
    pub fn audit_events(&self, event: &str) -> Vec<Value> {
        self.audit_lines()
            .into_iter()
            .filter(|l| l["event"] == event)
            .collect()
    }

    /// Checks the audit chain; returns the number of lines.
    pub fn verify_audit(&self) -> u64 {
        let file = std::fs::File::open(&self.audit_path).unwrap();
        dicom_deid_audit::verify(std::io::BufReader::new(file))
            .unwrap()
            .lines
    }

    /// The reason file of a dead-lettered entry.
    pub fn dead_reason(&self, destination: &str, id: EntryId) -> String {
        let path = self
            .path()
            .join("spool/dead")
            .join(destination)
            .join(format!("{id}.reason"));
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .trim_end()
            .to_string()
    }

    pub fn metric(&self, pick: impl Fn(&Metrics) -> &std::sync::atomic::AtomicU64) -> u64 {
        pick(&self.metrics).load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// A forwarder running in a task.
pub struct Running {
    pub notifier: dicom_deid_forward::Notifier,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Running {
    /// Signals shutdown and waits for `run` to return.
    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.await.unwrap();
    }

    /// Signals shutdown without waiting.
    pub fn signal(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }

    /// The task of `run`.
    pub fn task(&mut self) -> &mut JoinHandle<()> {
        &mut self.task
    }
}

/// The meta of instance `sop` (`2.25.<study>.<n>` style UIDs) of study `study`.
pub fn meta(study: &str, sop: &str) -> SpoolMeta {
    SpoolMeta {
        sop_class_uid: "1.2.840.10008.5.1.4.1.1.7".into(),
        sop_instance_uid: sop.into(),
        study_uid: study.into(),
        series_uid: format!("{study}.9"),
        route: "research".into(),
        profile: "basic".into(),
        profile_version: "3".into(),
        key_id: "key-2026".into(),
        original: OriginalHashes {
            study_uid: Some(format!("h-study-{study}")),
            series_uid: Some("h-series".into()),
            sop_uid: Some(format!("h-sop-{sop}")),
            patient_id: Some("h-patient".into()),
        },
        transfer_syntax_in: "1.2.840.10008.1.2.1".into(),
        transfer_syntax_out: "1.2.840.10008.1.2.1".into(),
        actions: [("remove".to_string(), 12u32)].into_iter().collect(),
        masked_regions: 4,
        received_at_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64,
    }
}

pub mod http;
