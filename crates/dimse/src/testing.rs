//! Test helpers shared by the SCP's tests and the gateway's (feature `testing`): finding DCMTK,
//! running `storescu` / `echoscu`, reading their per-file results, and picking corpus files by
//! transfer syntax with the matching `storescu` proposal option.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A DCMTK tool on `PATH`, or `None` (said loudly) when absent on a developer machine. Under
/// `CI=true` a missing tool is a failure.
pub fn dcmtk(tool: &str) -> Option<PathBuf> {
    for dir in std::env::var("PATH").unwrap_or_default().split(':') {
        let p = Path::new(dir).join(tool);
        if p.is_file() {
            return Some(p);
        }
    }
    assert!(
        std::env::var("CI").map_or(true, |v| v != "true"),
        "CI=true but DCMTK's {tool} is not installed (apt-get install dcmtk)"
    );
    eprintln!("\n!!! SKIPPED: DCMTK's {tool} is not installed (apt-get install dcmtk) !!!\n");
    None
}

/// What a DCMTK tool did.
#[derive(Debug, Clone)]
pub struct ToolRun {
    /// Exit status 0.
    pub ok: bool,
    /// stdout and stderr.
    pub log: String,
}

impl ToolRun {
    /// How many C-STORE responses were Success.
    pub fn successes(&self) -> usize {
        self.log
            .matches("Received Store Response (Success)")
            .count()
    }
}

/// Runs `tool` with `args` (and `TCP_NODELAY=1`) on the blocking pool.
pub async fn run_tool(tool: &Path, args: &[String]) -> ToolRun {
    let tool = tool.to_path_buf();
    let args = args.to_vec();
    tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new(&tool)
            .args(&args)
            .env("TCP_NODELAY", "1")
            .output()
            .expect("the DCMTK tool runs");
        ToolRun {
            ok: out.status.success(),
            log: format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        }
    })
    .await
    .expect("the tool's thread")
}

/// Arguments for `storescu` / `echoscu` (`-v`, AE titles, `extra`, and with files `-R` so
/// storescu proposes exactly the SOP classes of the files).
pub fn scu_args(
    port: u16,
    calling: &str,
    called: &str,
    extra: &[&str],
    files: &[PathBuf],
) -> Vec<String> {
    let mut a: Vec<String> = vec![
        "-v".into(),
        "-aet".into(),
        calling.into(),
        "-aec".into(),
        called.into(),
    ];
    a.extend(extra.iter().map(|s| s.to_string()));
    if !files.is_empty() {
        a.push("-R".into());
    }
    a.push("127.0.0.1".into());
    a.push(port.to_string());
    a.extend(files.iter().map(|f| f.display().to_string()));
    a
}

/// storescu's verdict per file from its `-v` log: (file, response) where response is what
/// storescu printed in `Received Store Response (…)` (`Success`, `Error: …`, …).
pub fn store_responses(log: &str) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut current: Option<PathBuf> = None;
    for line in log.lines() {
        if let Some(f) = line.strip_prefix("I: Sending file: ") {
            current = Some(PathBuf::from(f.trim()));
        } else if let Some(r) = line.strip_prefix("I: Received Store Response (") {
            if let Some(f) = current.take() {
                out.push((f, r.trim_end_matches(')').to_string()));
            }
        }
    }
    out
}

/// storescu's proposal option for each transfer syntax of the corpus it can send as is.
pub const PROPOSALS: &[(&str, &str)] = &[
    ("1.2.840.10008.1.2.1", "-xe"),
    ("1.2.840.10008.1.2", "-xi"),
    ("1.2.840.10008.1.2.2", "-xb"),
    ("1.2.840.10008.1.2.1.99", "-xd"),
    ("1.2.840.10008.1.2.4.50", "-xy"),
    ("1.2.840.10008.1.2.4.51", "-xx"),
    ("1.2.840.10008.1.2.4.70", "-xs"),
    ("1.2.840.10008.1.2.4.80", "-xt"),
    ("1.2.840.10008.1.2.4.81", "-xu"),
    ("1.2.840.10008.1.2.4.90", "-xv"),
    ("1.2.840.10008.1.2.4.91", "-xw"),
    ("1.2.840.10008.1.2.5", "-xr"),
];

/// The proposal option for a transfer syntax of [`PROPOSALS`].
pub fn proposal(ts: &str) -> &'static str {
    PROPOSALS
        .iter()
        .find(|(t, _)| *t == ts)
        .map(|(_, o)| *o)
        .expect("a syntax of PROPOSALS")
}

/// A Part 10 file's transfer syntax and SOP Class UID (from its meta) and SOP Instance UID
/// (from its data set; empty for deflated files, which are not inflated here).
pub fn describe(bytes: &[u8]) -> Option<(String, String, String)> {
    let limits = dicom_deid_wire::Limits::default();
    let raw = dicom_deid_wire::read_file(bytes, &limits).ok()?;
    let class = raw
        .meta
        .media_storage_sop_class_uid
        .clone()
        .unwrap_or_default();
    let instance = if raw.syntax.deflated {
        String::new()
    } else {
        let ds = dicom_deid_wire::parse_dataset(raw.body, raw.syntax, &limits).ok()?;
        ds.str(0x0008_0018).unwrap_or_default().to_string()
    };
    Some((raw.transfer_syntax_uid.clone(), class, instance))
}

/// Up to `per_syntax` well-formed files of the shared corpus per transfer syntax of
/// [`PROPOSALS`], with a storage SOP class, grouped by syntax; `None` without the corpus.
pub fn corpus_groups(per_syntax: usize) -> Option<BTreeMap<String, Vec<PathBuf>>> {
    let corpus = dicom_deid_wire::testing::shared_corpus()?;
    let mut reader = csv::Reader::from_path(corpus.join("MANIFEST.csv")).expect("the manifest");
    let headers = reader.headers().expect("a header line").clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .expect("a manifest column")
    };
    let (path, ts, meta, parse, notes) = (
        col("path"),
        col("transfer_syntax_uid"),
        col("has_file_meta"),
        col("pydicom_parse"),
        col("notes"),
    );
    let mut groups: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for row in reader.records() {
        let row = row.expect("a manifest line");
        let notes = row[notes].to_ascii_uppercase();
        if row[meta] != *"True"
            || row[parse] != *"ok"
            || notes.contains("MALFORMED")
            || notes.contains("ODD")
            || !PROPOSALS.iter().any(|(t, _)| *t == &row[ts])
        {
            continue;
        }
        let file = corpus.join(&row[path]);
        let Ok(bytes) = std::fs::read(&file) else {
            continue;
        };
        let Some((_, class, _)) = describe(&bytes) else {
            continue;
        };
        let group = groups.entry(row[ts].to_string()).or_default();
        if crate::sop::is_storage(&class) && group.len() < per_syntax {
            group.push(file);
        }
    }
    Some(groups)
}
