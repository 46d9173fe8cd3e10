//! `dicom-deid-synth`: writes the project's synthetic DICOM to a folder.
//!
//! ```text
//! dicom-deid-synth bench-set --kind ct|small --count N OUT_DIR
//! dicom-deid-synth conformance [--study N] OUT_DIR
//! ```

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use dicom_deid_synth::{bench_instance, bench_path, conformance_set, Kind};

#[derive(Parser)]
#[command(
    name = "dicom-deid-synth",
    version,
    about = "Deterministic synthetic DICOM for dicom-deid tests and benchmarks"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// CT-like instances with a realistic PHI header, 200 per study/series.
    BenchSet {
        /// 512×512 (ct) or 64×64 (small) pixels.
        #[arg(long, value_enum)]
        kind: KindArg,
        /// How many instances.
        #[arg(long)]
        count: usize,
        /// Folder to write into (created if missing).
        out_dir: PathBuf,
    },
    /// The PS3.15 Table E.1-1 conformance study (ct1.dcm, ct2.dcm, sr.dcm).
    Conformance {
        /// Study number (varies patient and UIDs).
        #[arg(long, default_value_t = 0)]
        study: usize,
        /// Folder to write into (created if missing).
        out_dir: PathBuf,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum KindArg {
    Ct,
    Small,
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    std::fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))
}

fn run(cli: Cli) -> Result<String, String> {
    match cli.command {
        Command::BenchSet {
            kind,
            count,
            out_dir,
        } => {
            let kind = match kind {
                KindArg::Ct => Kind::Ct,
                KindArg::Small => Kind::Small,
            };
            let mut bytes = 0usize;
            for i in 0..count {
                let data = bench_instance(kind, i);
                bytes += data.len();
                write(&out_dir.join(bench_path(kind, i)), &data)?;
            }
            Ok(format!(
                "wrote {count} instances, {:.1} MB, to {}",
                bytes as f64 / 1e6,
                out_dir.display()
            ))
        }
        Command::Conformance { study, out_dir } => {
            let files = conformance_set(study);
            for (name, data) in &files {
                write(&out_dir.join(name), data)?;
            }
            Ok(format!(
                "wrote {} conformance instances to {}",
                files.len(),
                out_dir.display()
            ))
        }
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(summary) => {
            eprintln!("{summary}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("dicom-deid-synth: {e}");
            ExitCode::from(2)
        }
    }
}
