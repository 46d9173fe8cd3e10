//! Orthanc with its DICOMweb plugin, started on 127.0.0.1 with a temporary storage folder.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::http::{self, Response};

/// Where Debian's `orthanc` package puts the server.
pub const ORTHANC: &str = "/usr/sbin/Orthanc";
/// Where Debian's `orthanc-dicomweb` package puts the plugin.
pub const PLUGIN: &str = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so";

/// How long Orthanc may take to answer `GET /system` after it starts (waiting for a process
/// to come up, not a timing assertion).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// How an [`Orthanc`] is configured before it starts.
#[derive(Debug, Clone, Default)]
pub struct OrthancBuilder {
    http_port: Option<u16>,
    dicom_port: Option<u16>,
    dicom_aet: Option<String>,
    servers: serde_json::Map<String, serde_json::Value>,
    modalities: serde_json::Map<String, serde_json::Value>,
}

impl OrthancBuilder {
    /// Listen on this HTTP port (default: a free one).
    pub fn http_port(mut self, port: u16) -> Self {
        self.http_port = Some(port);
        self
    }

    /// Listen for DICOM on this port (default: a free one).
    pub fn dicom_port(mut self, port: u16) -> Self {
        self.dicom_port = Some(port);
        self
    }

    /// Orthanc's own AE title (`DicomAet`, default `DEIDTEST`): the calling AE title of what
    /// it sends.
    pub fn dicom_aet(mut self, aet: &str) -> Self {
        self.dicom_aet = Some(aet.to_string());
        self
    }

    /// Declare a DICOM modality Orthanc can send to (`DicomModalities.{name}` = `[aet, host,
    /// port]`), for `POST /modalities/{name}/store`.
    pub fn dicom_modality(mut self, name: &str, aet: &str, host: &str, port: u16) -> Self {
        self.modalities
            .insert(name.to_string(), serde_json::json!([aet, host, port]));
        self
    }

    /// Declare a DICOMweb server Orthanc can push to (`DicomWeb.Servers.{name}`), e.g.
    /// `{"Url": "http://127.0.0.1:8104/", "ChunkedTransfers": false}`.
    pub fn dicomweb_server(mut self, name: &str, server: serde_json::Value) -> Self {
        self.servers.insert(name.to_string(), server);
        self
    }

    /// Starts Orthanc and waits until it answers; `None` (after a loud message) when Orthanc
    /// or its plugin is not installed on a developer machine. Panics under `CI=true` when
    /// they are missing, and anywhere when Orthanc does not come up (with its log).
    pub fn start(self) -> Option<Orthanc> {
        if !Orthanc::available() {
            return None;
        }
        let dir = tempfile::tempdir().expect("a temporary folder");
        let http_port = self.http_port.unwrap_or_else(crate::free_port);
        let dicom_port = self.dicom_port.unwrap_or_else(crate::free_port);
        let dicom_aet = self.dicom_aet.unwrap_or_else(|| "DEIDTEST".to_string());
        let storage = dir.path().join("storage");
        let config = serde_json::json!({
            "Name": "dicom-deid-test",
            "StorageDirectory": storage,
            "IndexDirectory": storage,
            "HttpPort": http_port,
            "DicomPort": dicom_port,
            "DicomAet": dicom_aet,
            "DicomModalities": self.modalities,
            "RemoteAccessAllowed": false,
            "AuthenticationEnabled": false,
            "Plugins": [PLUGIN],
            "DicomWeb": {"Enable": true, "Root": "/dicom-web/", "Servers": self.servers},
        });
        let config_path = dir.path().join("orthanc.json");
        std::fs::write(
            &config_path,
            serde_json::to_vec_pretty(&config).expect("JSON"),
        )
        .expect("write the Orthanc configuration");
        let log_path = dir.path().join("orthanc.log");
        let log = std::fs::File::create(&log_path).expect("create the Orthanc log");
        let child = Command::new(ORTHANC)
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {ORTHANC}: {e}"));
        let mut orthanc = Orthanc {
            child,
            url: format!("http://127.0.0.1:{http_port}"),
            http_port,
            dicom_port,
            dicom_aet,
            log_path,
            dir,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if http::get(&orthanc.rest("/system")).is_ok_and(|r| r.is_success()) {
                return Some(orthanc);
            }
            if let Ok(Some(status)) = orthanc.child.try_wait() {
                panic!(
                    "Orthanc exited ({status}) on start; its log:\n{}",
                    orthanc.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "Orthanc did not answer GET /system within {START_TIMEOUT:?}; its log:\n{}",
                orthanc.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// A running Orthanc, killed (by its PID) when dropped; its storage goes with it.
#[derive(Debug)]
pub struct Orthanc {
    child: Child,
    url: String,
    http_port: u16,
    dicom_port: u16,
    dicom_aet: String,
    log_path: PathBuf,
    dir: tempfile::TempDir,
}

impl Drop for Orthanc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Orthanc {
    /// A builder (ports, AE title, DICOMweb servers, DICOM modalities).
    pub fn builder() -> OrthancBuilder {
        OrthancBuilder::default()
    }

    /// Whether Orthanc and its DICOMweb plugin are installed; when not, says so loudly (and
    /// panics under `CI=true`), so a caller can skip before setting up anything else.
    pub fn available() -> bool {
        if Path::new(ORTHANC).exists() && Path::new(PLUGIN).exists() {
            return true;
        }
        crate::absent(
            &format!("Orthanc ({ORTHANC}) with its DICOMweb plugin ({PLUGIN})"),
            "`apt-get install -y orthanc orthanc-dicomweb`",
        );
        false
    }

    /// Starts Orthanc with the defaults ([`OrthancBuilder::start`]).
    pub fn start() -> Option<Orthanc> {
        Self::builder().start()
    }

    /// `http://127.0.0.1:{port}` (no trailing slash).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The DICOMweb root, `http://127.0.0.1:{port}/dicom-web/`.
    pub fn dicomweb_url(&self) -> String {
        format!("{}/dicom-web/", self.url)
    }

    /// The HTTP port.
    pub fn http_port(&self) -> u16 {
        self.http_port
    }

    /// The DICOM port.
    pub fn dicom_port(&self) -> u16 {
        self.dicom_port
    }

    /// Its AE title (`DicomAet`).
    pub fn dicom_aet(&self) -> &str {
        &self.dicom_aet
    }

    /// Its temporary folder (configuration, log, storage).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// What Orthanc wrote on stdout and stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    fn rest(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// `GET {path}` (e.g. `/statistics`); panics with the answer when it is not 2xx JSON.
    pub fn get_json(&self, path: &str) -> serde_json::Value {
        let r = http::get(&self.rest(path)).unwrap_or_else(|e| panic!("GET {path}: {e}"));
        assert!(r.is_success(), "GET {path}: {} {}", r.status, r.text());
        r.json()
    }

    /// `POST {path}` with a body; the answer, whatever its status.
    pub fn post(&self, path: &str, content_type: &str, body: &[u8]) -> Response {
        http::post(&self.rest(path), content_type, body)
            .unwrap_or_else(|e| panic!("POST {path}: {e}"))
    }

    /// The Orthanc ids of every stored instance.
    pub fn instances(&self) -> Vec<String> {
        self.ids("/instances")
    }

    /// The Orthanc ids of every stored study.
    pub fn studies(&self) -> Vec<String> {
        self.ids("/studies")
    }

    fn ids(&self, path: &str) -> Vec<String> {
        let list = self.get_json(path);
        list.as_array()
            .unwrap_or_else(|| panic!("GET {path} is not a list: {list}"))
            .iter()
            .map(|v| v.as_str().expect("an id").to_string())
            .collect()
    }

    /// The stored Part 10 file of instance `id` (`GET /instances/{id}/file`).
    pub fn instance_file(&self, id: &str) -> Vec<u8> {
        let path = format!("/instances/{id}/file");
        let r = http::get(&self.rest(&path)).unwrap_or_else(|e| panic!("GET {path}: {e}"));
        assert!(r.is_success(), "GET {path}: {} {}", r.status, r.text());
        r.body
    }

    /// Writes every stored instance to `dir/{orthanc id}.dcm` and returns the paths.
    pub fn export_instances(&self, dir: &Path) -> Vec<PathBuf> {
        std::fs::create_dir_all(dir).expect("create the export folder");
        self.instances()
            .into_iter()
            .map(|id| {
                let path = dir.join(format!("{id}.dcm"));
                std::fs::write(&path, self.instance_file(&id)).expect("write an exported instance");
                path
            })
            .collect()
    }

    /// Waits until Orthanc holds at least `count` instances or `timeout` passes (waiting for
    /// asynchronous delivery, not a timing assertion); returns how many it holds.
    pub fn wait_for_instances(&self, count: usize, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        loop {
            let n = self.get_json("/statistics")["CountInstances"]
                .as_u64()
                .unwrap_or(0) as usize;
            if n >= count || Instant::now() >= deadline {
                return n;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}
