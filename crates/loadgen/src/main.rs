//! `dicom-deid-loadgen`: the load client of the gateway benchmark (`scripts/bench-gateway`).
//!
//! - `stow --url URL [--clients C] [--per-request N] DIR` sends every file under `DIR` (sorted
//!   by path) to a STOW-RS endpoint as `multipart/related; type="application/dicom"` requests of
//!   `N` instances, from `C` concurrent clients. A 503 is retried after its `Retry-After` and
//!   counted, and so is a request that failed to send (connection closed). It prints `key=value` lines: requests, instances, bytes, stored, failed, the number
//!   of 503s, wall seconds from the first request to the last answer, instances/s, MB/s
//!   (10^6 bytes), and p50/p99/max latency of the answered requests (first byte sent to last
//!   byte of the answer). With `--metrics URL` it then waits until the gateway's
//!   `dicom_deid_instances_delivered_total` has grown by the number stored and prints the
//!   seconds until then (end to end). Exit 1 when any instance was not stored.
//! - `multiframe --count N --frames F OUT` writes `N` multi-frame instances (`F` frames of
//!   512×512×16 bit, ≈ 0.5 MiB each; 200 frames ≈ 100 MiB) built on `dicom-deid-synth`'s CT-like
//!   header, for the large-upload scenario.
//!
//! Files larger than `--stream-above` bytes are streamed from disk in 1 MiB chunks, the others
//! are read whole per request, so the client holds at most a few chunks per large instance.
//!
//! What it does not do: check what the gateway wrote (the tests do that), TLS, or tokens.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::{Parser, Subcommand};
use dicom_deid_wire::{read_file, write_file, Element, FileMetaOut, Limits, Syntax, Vr};
use futures_util::stream::{self, Stream, StreamExt};
use tokio::io::AsyncReadExt;

#[derive(Debug, Parser)]
#[command(
    name = "dicom-deid-loadgen",
    about = "Load client for the dicom-deid gateway benchmark"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Send every file under DIR by STOW-RS with concurrent clients and report speed and latency.
    Stow {
        /// The ingest URL, e.g. http://127.0.0.1:8104/studies.
        #[arg(long)]
        url: String,
        /// Concurrent clients (requests in flight).
        #[arg(long, default_value_t = 8)]
        clients: usize,
        /// Instances per request.
        #[arg(long, default_value_t = 10)]
        per_request: usize,
        /// After sending, wait until /metrics counts every stored instance as delivered.
        #[arg(long)]
        metrics: Option<String>,
        /// Files larger than this are streamed from disk instead of read whole.
        #[arg(long, default_value_t = 8 << 20)]
        stream_above: u64,
        /// Give up on a request after this many 503 answers or send errors.
        #[arg(long, default_value_t = 1000)]
        max_retries: u32,
        /// Send bodies chunked, without Content-Length (by default the length is declared).
        #[arg(long)]
        chunked: bool,
        /// The files to send (a folder is walked; files are sent in path order).
        dir: PathBuf,
    },
    /// Write multi-frame 16-bit instances (CT-like header) for the large-upload scenario.
    Multiframe {
        /// How many instances.
        #[arg(long)]
        count: usize,
        /// Frames of 512x512x16 bit per instance (200 ≈ 100 MiB).
        #[arg(long, default_value_t = 200)]
        frames: usize,
        /// Output folder.
        out: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Multiframe { count, frames, out } => match multiframe(count, frames, &out) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("loadgen: {}: {e}", out.display());
                ExitCode::from(2)
            }
        },
        Command::Stow {
            url,
            clients,
            per_request,
            metrics,
            stream_above,
            max_retries,
            chunked,
            dir,
        } => {
            if clients == 0 || per_request == 0 {
                eprintln!("loadgen: --clients and --per-request must be at least 1");
                return ExitCode::from(2);
            }
            let files = match list_files(&dir) {
                Ok(f) if !f.is_empty() => f,
                Ok(_) => {
                    eprintln!("loadgen: {}: no files", dir.display());
                    return ExitCode::from(2);
                }
                Err(e) => {
                    eprintln!("loadgen: {}: {e}", dir.display());
                    return ExitCode::from(2);
                }
            };
            let runtime = match tokio::runtime::Runtime::new() {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("loadgen: cannot start the runtime: {e}");
                    return ExitCode::from(2);
                }
            };
            let plan = Plan {
                url,
                clients,
                per_request,
                stream_above,
                max_retries,
                metrics,
                chunked,
            };
            match runtime.block_on(stow(plan, files)) {
                Ok(all_stored) => {
                    if all_stored {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::from(1)
                    }
                }
                Err(e) => {
                    eprintln!("loadgen: {e}");
                    ExitCode::from(2)
                }
            }
        }
    }
}

/// Every regular file under `dir` (or `dir` itself), with its size, sorted by path.
fn list_files(dir: &Path) -> std::io::Result<Vec<(PathBuf, u64)>> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(p) = todo.pop() {
        let meta = std::fs::metadata(&p)?;
        if meta.is_dir() {
            for entry in std::fs::read_dir(&p)? {
                todo.push(entry?.path());
            }
        } else if meta.is_file() {
            out.push((p, meta.len()));
        }
    }
    out.sort();
    Ok(out)
}

struct Plan {
    url: String,
    clients: usize,
    per_request: usize,
    stream_above: u64,
    max_retries: u32,
    metrics: Option<String>,
    chunked: bool,
}

#[derive(Default)]
struct Tally {
    stored: AtomicU64,
    failed: AtomicU64,
    shed: AtomicU64,
    send_errors: AtomicU64,
    latencies_us: Mutex<Vec<u64>>,
}

const BOUNDARY: &str = "dicomdeidloadgen0a1b2c3d4e5f";

async fn stow(plan: Plan, files: Vec<(PathBuf, u64)>) -> Result<bool, String> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(plan.clients)
        .timeout(Duration::from_secs(3600))
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
    let delivered_before = match &plan.metrics {
        Some(url) => Some(delivered(&client, url).await?),
        None => None,
    };
    let requests: Arc<Vec<Vec<(PathBuf, u64)>>> = Arc::new(
        files
            .chunks(plan.per_request)
            .map(<[(PathBuf, u64)]>::to_vec)
            .collect(),
    );
    let instances = files.len() as u64;
    let bytes: u64 = files.iter().map(|(_, n)| n).sum();
    let next = Arc::new(AtomicUsize::new(0));
    let tally = Arc::new(Tally::default());
    let plan = Arc::new(plan);
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..plan.clients {
        let (client, requests, next, tally, plan) = (
            client.clone(),
            requests.clone(),
            next.clone(),
            tally.clone(),
            plan.clone(),
        );
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Relaxed);
                let Some(files) = requests.get(i) else { break };
                send(&client, &plan, files, &tally).await;
            }
        }));
    }
    for w in workers {
        w.await.map_err(|e| format!("a client task failed: {e}"))?;
    }
    let seconds = started.elapsed().as_secs_f64();

    let stored = tally.stored.load(Relaxed);
    let failed = tally.failed.load(Relaxed);
    let mut lat = tally.latencies_us.lock().expect("not poisoned").clone();
    lat.sort_unstable();
    let ms = |p: f64| {
        if lat.is_empty() {
            return 0.0;
        }
        // Nearest rank.
        let rank = ((p * lat.len() as f64).ceil() as usize).clamp(1, lat.len());
        lat[rank - 1] as f64 / 1000.0
    };
    println!("requests={}", requests.len());
    println!("instances={instances}");
    println!("bytes={bytes}");
    println!("stored={stored}");
    println!("failed={failed}");
    println!("shed_503={}", tally.shed.load(Relaxed));
    println!("send_errors={}", tally.send_errors.load(Relaxed));
    println!("seconds={seconds:.4}");
    println!("instances_per_s={:.1}", stored as f64 / seconds);
    println!("mb_per_s={:.1}", bytes as f64 / 1e6 / seconds);
    println!("p50_ms={:.1}", ms(0.50));
    println!("p99_ms={:.1}", ms(0.99));
    println!("max_ms={:.1}", ms(1.0));

    if let (Some(url), Some(before)) = (&plan.metrics, delivered_before) {
        let deadline = Instant::now() + Duration::from_secs(1800);
        loop {
            // A failed poll (the gateway busy closing connections) is tried again.
            let now = match delivered(&client, url).await {
                Ok(n) => n,
                Err(e) if Instant::now() < deadline => {
                    eprintln!("loadgen: {e}; polling again");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
                Err(e) => return Err(e),
            };
            if now >= before + stored {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "only {} of {stored} stored instances were delivered within 30 minutes",
                    now - before
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        println!("delivered_seconds={:.4}", started.elapsed().as_secs_f64());
    }
    Ok(failed == 0 && stored == instances)
}

/// Sends one request (retrying 503s and send errors) and tallies its outcome.
async fn send(client: &reqwest::Client, plan: &Plan, files: &[(PathBuf, u64)], tally: &Tally) {
    let content_type =
        format!("multipart/related; type=\"application/dicom\"; boundary={BOUNDARY}");
    let mut attempts = 0;
    loop {
        attempts += 1;
        let t0 = Instant::now();
        let body = reqwest::Body::wrap_stream(multipart_body(files.to_vec(), plan.stream_above));
        // The length is known: say it, as STOW clients that do not chunk do (the gateway then
        // takes no more of its in-flight budget than the body can hold).
        let mut request = client
            .post(&plan.url)
            .header("Content-Type", &content_type)
            .header("Accept", "application/dicom+json");
        if !plan.chunked {
            request = request.header("Content-Length", multipart_len(files));
        }
        let answer = request.body(body).send().await;
        let res = match answer {
            Ok(r) => r,
            // A gateway that answers 503 before reading the body may close the connection
            // while the client is still sending it: the client sees a send error, not the
            // answer. Retried like a 503 and counted apart.
            Err(e) if attempts <= plan.max_retries => {
                tally.send_errors.fetch_add(1, Relaxed);
                if tally.send_errors.load(Relaxed) <= 3 {
                    eprintln!("loadgen: request failed, retrying in 1 s: {e}");
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            Err(e) => {
                eprintln!("loadgen: request failed, giving up: {e}");
                tally.failed.fetch_add(files.len() as u64, Relaxed);
                return;
            }
        };
        let status = res.status().as_u16();
        let retry_after = res
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let text = res.bytes().await.unwrap_or_default();
        let elapsed = t0.elapsed();
        if status == 503 && attempts <= plan.max_retries {
            tally.shed.fetch_add(1, Relaxed);
            // Wait as told, but never less than 100 ms nor more than 5 s.
            let wait = Duration::from_secs(retry_after.unwrap_or(1))
                .clamp(Duration::from_millis(100), Duration::from_secs(5));
            tokio::time::sleep(wait).await;
            continue;
        }
        tally
            .latencies_us
            .lock()
            .expect("not poisoned")
            .push(elapsed.as_micros() as u64);
        let stored = if status == 200 || status == 202 {
            referenced_count(&text).min(files.len())
        } else {
            0
        };
        if stored < files.len() {
            eprintln!(
                "loadgen: HTTP {status}: {} of {} instances stored",
                stored,
                files.len()
            );
        }
        tally.stored.fetch_add(stored as u64, Relaxed);
        tally
            .failed
            .fetch_add((files.len() - stored) as u64, Relaxed);
        return;
    }
}

/// The number of items of ReferencedSOPSequence (0008,1199) in a DICOM JSON answer.
fn referenced_count(json: &[u8]) -> usize {
    serde_json::from_slice::<serde_json::Value>(json)
        .ok()
        .and_then(|v| v.get("00081199")?.get("Value")?.as_array().map(Vec::len))
        .unwrap_or(0)
}

/// The request body: one part per file, each read whole or streamed in 1 MiB chunks.
fn multipart_body(
    files: Vec<(PathBuf, u64)>,
    stream_above: u64,
) -> impl Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    let head = Bytes::from(format!(
        "--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n"
    ));
    let parts = stream::iter(files).flat_map(move |(path, len)| {
        let head = stream::once(std::future::ready(Ok(head.clone())));
        let tail = stream::once(std::future::ready(Ok(Bytes::from_static(b"\r\n"))));
        let content: std::pin::Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>> =
            if len > stream_above {
                Box::pin(file_chunks(path))
            } else {
                Box::pin(stream::once(async move {
                    tokio::fs::read(&path).await.map(Bytes::from)
                }))
            };
        head.chain(content).chain(tail)
    });
    let end = stream::once(std::future::ready(Ok(Bytes::from(format!(
        "--{BOUNDARY}--\r\n"
    )))));
    parts.chain(end)
}

/// The length of [`multipart_body`] for `files`.
fn multipart_len(files: &[(PathBuf, u64)]) -> u64 {
    let head = format!("--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n").len() as u64;
    let end = format!("--{BOUNDARY}--\r\n").len() as u64;
    files.iter().map(|(_, len)| head + len + 2).sum::<u64>() + end
}

/// A file as a stream of chunks of up to 1 MiB.
fn file_chunks(path: PathBuf) -> impl Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    stream::try_unfold(None::<tokio::fs::File>, move |file| {
        let path = path.clone();
        async move {
            let mut file = match file {
                Some(f) => f,
                None => tokio::fs::File::open(&path).await?,
            };
            let mut buf = vec![0u8; 1 << 20];
            let mut filled = 0;
            while filled < buf.len() {
                let n = file.read(&mut buf[filled..]).await?;
                if n == 0 {
                    break;
                }
                filled += n;
            }
            if filled == 0 {
                return Ok(None);
            }
            buf.truncate(filled);
            Ok(Some((Bytes::from(buf), Some(file))))
        }
    })
}

/// `dicom_deid_instances_delivered_total` from a Prometheus text page.
async fn delivered(client: &reqwest::Client, url: &str) -> Result<u64, String> {
    let text = client
        .get(url)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| format!("GET {url}: {e}"))?
        .text()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    parse_delivered(&text).ok_or_else(|| format!("{url}: no dicom_deid_instances_delivered_total"))
}

fn parse_delivered(text: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix("dicom_deid_instances_delivered_total")?;
        rest.split_whitespace()
            .next()?
            .parse::<f64>()
            .ok()
            .map(|v| v as u64)
    })
}

/// Enhanced CT Image Storage: a large multi-frame instance with no burned-in text expected,
/// so the pixel stage passes it through (the benchmark measures ingest, not detection).
const MULTIFRAME_SOP_CLASS: &str = "1.2.840.10008.5.1.4.1.1.2.1";

/// Writes `count` multi-frame instances of `frames` 512×512 16-bit frames to `out/mf-NNNN.dcm`.
fn multiframe(count: usize, frames: usize, out: &Path) -> Result<(), String> {
    if frames == 0 {
        return Err("--frames must be at least 1".into());
    }
    std::fs::create_dir_all(out).map_err(|e| e.to_string())?;
    for i in 0..count {
        let bytes = multiframe_instance(i, frames)?;
        let path = out.join(format!("mf-{i:04}.dcm"));
        std::fs::write(&path, &bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

/// Instance `i`: the CT-like benchmark header of instance `i`, made multi-frame, its pixel data
/// repeated `frames` times (each frame shifted so frames differ).
fn multiframe_instance(i: usize, frames: usize) -> Result<Vec<u8>, String> {
    let base = dicom_deid_synth::bench_instance(dicom_deid_synth::Kind::Ct, i);
    let limits = Limits::default();
    let raw = read_file(&base, &limits).map_err(|e| e.to_string())?;
    let mut ds = raw.parse(&limits).map_err(|e| e.to_string())?;
    let frame = ds
        .get(0x7FE0_0010)
        .and_then(Element::bytes)
        .ok_or("the synthetic instance has no pixel data")?
        .to_vec();
    let mut pixels = Vec::with_capacity(frame.len() * frames);
    for f in 0..frames {
        pixels.extend(frame.iter().map(|b| b.wrapping_add(f as u8)));
    }
    ds.put(Element::text(0x0008_0016, Vr::UI, MULTIFRAME_SOP_CLASS));
    ds.put(Element::text(0x0028_0008, Vr::IS, &frames.to_string()));
    ds.put(Element::new(0x7FE0_0010, Vr::OW, pixels));
    ds.sort();
    let meta = FileMetaOut::for_dataset(
        &ds,
        "1.2.840.10008.1.2.1",
        "1.2.826.0.1.3680043.10.999.1",
        "DEID_LOADGEN",
    );
    let mut out = Vec::with_capacity(frame.len() * frames + (16 << 10));
    write_file(&mut out, &meta, &ds, Syntax::EXPLICIT_LE).map_err(|e| e.to_string())?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_declared_length_is_the_length_of_the_body() {
        use futures_util::TryStreamExt;
        let dir = tempfile::tempdir().unwrap();
        let mut files = Vec::new();
        for (i, len) in [10usize, 3 << 20, 0].into_iter().enumerate() {
            let path = dir.path().join(format!("{i}.dcm"));
            std::fs::write(&path, vec![1u8; len]).unwrap();
            files.push((path, len as u64));
        }
        let body: Vec<Bytes> = multipart_body(files.clone(), 1 << 20)
            .try_collect()
            .await
            .unwrap();
        let sent: usize = body.iter().map(Bytes::len).sum();
        assert_eq!(multipart_len(&files), sent as u64);
    }

    #[test]
    fn counts_referenced_instances() {
        let json =
            br#"{"00081199":{"vr":"SQ","Value":[{},{},{}]},"00081198":{"vr":"SQ","Value":[{}]}}"#;
        assert_eq!(referenced_count(json), 3);
        assert_eq!(
            referenced_count(br#"{"00081198":{"vr":"SQ","Value":[{}]}}"#),
            0
        );
        assert_eq!(referenced_count(b"not json"), 0);
    }

    #[test]
    fn reads_the_delivered_counter() {
        let page = "# TYPE dicom_deid_instances_delivered_total counter\n\
                    dicom_deid_instances_delivered_total_x 9\n\
                    dicom_deid_instances_delivered_total 1234\n";
        // The first line that starts with the name is the `_x` one: it must not be taken.
        assert_eq!(parse_delivered(page), Some(1234));
    }

    #[test]
    fn multiframe_instances_parse_with_their_frames() {
        let bytes = multiframe_instance(3, 4).unwrap();
        let limits = Limits::default();
        let raw = read_file(&bytes, &limits).unwrap();
        let ds = raw.parse(&limits).unwrap();
        assert_eq!(ds.str(0x0028_0008), Some("4"));
        assert_eq!(ds.str(0x0008_0016), Some(MULTIFRAME_SOP_CLASS));
        assert_eq!(
            ds.get(0x7FE0_0010).and_then(Element::bytes).unwrap().len(),
            4 * 512 * 512 * 2
        );
    }

    #[tokio::test]
    async fn the_body_is_a_well_formed_multipart() {
        let dir = std::env::temp_dir().join(format!("loadgen-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let a = dir.join("a");
        let b = dir.join("b");
        std::fs::write(&a, b"AAAA").unwrap();
        std::fs::write(&b, vec![b'B'; 3 << 20]).unwrap();
        let files = vec![(a, 4), (b, 3 << 20)];
        let chunks: Vec<Bytes> = multipart_body(files, 1024)
            .map(|c| c.unwrap())
            .collect()
            .await;
        let body: Vec<u8> = chunks.concat();
        let head = format!("--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n");
        let mut want = head.clone().into_bytes();
        want.extend_from_slice(b"AAAA\r\n");
        want.extend_from_slice(head.as_bytes());
        want.extend(std::iter::repeat_n(b'B', 3 << 20));
        want.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
        assert_eq!(body, want);
        // The large file came in 1 MiB chunks, not whole.
        assert!(chunks.iter().all(|c| c.len() <= 1 << 20));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
