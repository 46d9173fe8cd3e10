//! `dicom-deid audit verify FILE...`.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use dicom_deid_audit::{verify, VerifyError};

/// `dicom-deid audit …`.
#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain of audit logs; name the first line altered, removed, reordered
    /// or malformed in each.
    ///
    /// Prints `FILE: ok, N records, last hash H` on stdout, or `FILE:LINE: problem` on
    /// stderr. Deleting the last lines of a log cannot be seen in the file: keep the last
    /// hash somewhere else to compare. Exit code: 0 all intact, 1 some not, 2 unreadable.
    Verify {
        /// Audit log files (JSON lines).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

/// Runs an `audit` command and returns its exit code.
pub fn run(command: AuditCommand) -> u8 {
    match command {
        AuditCommand::Verify { files } => files.iter().map(|f| verify_file(f)).max().unwrap_or(0),
    }
}

/// Checks one file: 0 intact, 1 not, 2 unreadable.
fn verify_file(path: &Path) -> u8 {
    let origin = path.display();
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) => {
            eprintln!("{origin}: cannot read: {e}");
            return 2;
        }
    };
    match verify(BufReader::with_capacity(1 << 16, file)) {
        Ok(summary) => {
            let last = summary.last_hash.as_deref().unwrap_or("none");
            println!("{origin}: ok, {} records, last hash {last}", summary.lines);
            0
        }
        Err(VerifyError::Io { line, source }) => {
            eprintln!("{origin}:{line}: cannot read: {source}");
            2
        }
        Err(e) => {
            // The message reads `line N: kind: detail`; print it as `FILE:N: kind: detail`.
            let message = e.to_string();
            let detail = message
                .split_once(": ")
                .map_or(message.as_str(), |(_, d)| d);
            eprintln!("{origin}:{}: {detail}", e.line());
            1
        }
    }
}
