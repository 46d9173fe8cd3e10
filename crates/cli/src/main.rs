//! `dicom-deid`: the command line of the de-identification gateway.
//!
//! - `batch IN OUT` de-identifies a file or a folder tree into a mirrored tree;
//! - `keygen PATH` makes the pseudonymisation key that `batch` needs;
//! - `profile list | show | check` inspects and validates de-identification profiles;
//! - `audit verify FILE` checks the hash chain of an audit log;
//! - `models install | status` installs and checks the weights of the text-detection network;
//! - `serve [--config FILE]` runs the gateway (STOW-RS in, de-identified instances out);
//! - `token new NAME` mints an ingest token for the gateway (printed once; the config keeps its
//!   SHA-256).
//!
//! Nothing this program prints carries an element value or an original UID: per-file
//! lines name paths and reasons, dry runs name tags and actions, and a panic prints
//! only where it happened (its message could hold patient data).
//!
//! ```text
//! dicom-deid keygen ~/.config/dicom-deid/key
//! dicom-deid batch --key-file ~/.config/dicom-deid/key in/ out/
//! ```

mod audit_cmd;
mod batch_cmd;
mod keys;
mod models_cmd;
mod profile_cmd;
mod serve_cmd;
mod token_cmd;

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit code for errors that stop a command (I/O, bad arguments, no key).
const EXIT_ERROR: u8 = 2;

/// DICOM de-identification (PS3.15 Annex E) with keyed, reproducible pseudonyms.
#[derive(Debug, Parser)]
#[command(name = "dicom-deid", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// De-identify a file or a folder tree into OUT, mirroring relative paths.
    ///
    /// DICOM is recognised by content; other files are reported and skipped. Exit
    /// code: 0 all written, 1 some rejected or skipped, 2 errors.
    Batch(BatchArgs),
    /// Write a new pseudonymisation key to PATH (mode 0600; never overwrites).
    Keygen {
        /// Where to write the key, e.g. ~/.config/dicom-deid/key.
        path: PathBuf,
    },
    /// List, show and check de-identification profiles.
    #[command(subcommand)]
    Profile(ProfileCommand),
    /// Check audit logs.
    #[command(subcommand)]
    Audit(audit_cmd::AuditCommand),
    /// Install and check the weights of the burned-in text detection network.
    #[command(subcommand)]
    Models(models_cmd::ModelsCommand),
    /// Run the gateway: STOW-RS ingest, spool, forwarding (works with no config).
    Serve(serve_cmd::ServeArgs),
    /// Make ingest tokens for the gateway.
    #[command(subcommand)]
    Token(token_cmd::TokenCommand),
}

/// Arguments of `dicom-deid batch`.
#[derive(Debug, clap::Args)]
struct BatchArgs {
    /// A built-in profile name (see `dicom-deid profile list`) or a profile TOML file.
    #[arg(long, default_value = "basic", value_name = "NAME|FILE")]
    profile: String,
    /// The key file (64 hex digits, mode 0600). Default: the file named by $DICOM_DEID_KEY_FILE.
    #[arg(long, value_name = "FILE")]
    key_file: Option<PathBuf>,
    /// Worker threads (default: one per core).
    #[arg(long, short = 'j', value_name = "N")]
    jobs: Option<NonZeroUsize>,
    /// Write nothing; print what would change in each file, tag by tag.
    #[arg(long)]
    dry_run: bool,
    /// The input: a DICOM file or a folder tree.
    input: PathBuf,
    /// The output: a folder (created if missing), or a file path for a single-file input.
    output: PathBuf,
}

#[derive(Debug, Subcommand)]
enum ProfileCommand {
    /// List the built-in profiles.
    List,
    /// Print the effective action for every attribute of Table E.1-1 and every override.
    Show {
        /// A built-in profile name or a profile TOML file.
        #[arg(value_name = "NAME|FILE")]
        profile: String,
    },
    /// Validate profile files; print each problem as FILE:LINE: reason.
    Check {
        /// Profile TOML files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

fn main() -> ExitCode {
    install_panic_hook();
    let cli = Cli::parse();
    // `serve` sets up its logging once its config is read ([log], --log-format, --log-level).
    if !matches!(cli.command, Command::Serve(_)) {
        init_logging();
    }
    let code = match cli.command {
        Command::Batch(args) => batch_cmd::run(args),
        Command::Keygen { path } => keys::keygen(&path),
        Command::Profile(ProfileCommand::List) => profile_cmd::list(),
        Command::Profile(ProfileCommand::Show { profile }) => profile_cmd::show(&profile),
        Command::Profile(ProfileCommand::Check { files }) => profile_cmd::check(&files),
        Command::Audit(command) => audit_cmd::run(command),
        Command::Models(command) => models_cmd::run(command),
        Command::Serve(args) => serve_cmd::run(args),
        Command::Token(command) => token_cmd::run(command),
    };
    ExitCode::from(code)
}

/// Prints `dicom-deid: error: {message}` on stderr and returns the error exit code.
fn fail(message: impl std::fmt::Display) -> u8 {
    eprintln!("dicom-deid: error: {message}");
    EXIT_ERROR
}

/// Logs go to stderr, filtered by `RUST_LOG` (default: warnings and errors).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}

/// A panic message may have been formatted from DICOM data: print only the location.
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let thread = std::thread::current();
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_else(|| "an unknown location".to_string());
        eprintln!(
            "dicom-deid: internal error (panic) in thread {} at {location}; the panic message is \
             withheld because it could contain patient data. Please report this bug.",
            thread.name().unwrap_or("unnamed")
        );
    }));
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn batch_defaults_to_the_basic_profile() {
        let cli = Cli::try_parse_from(["dicom-deid", "batch", "in", "out"]).unwrap();
        let Command::Batch(args) = cli.command else {
            panic!("not batch")
        };
        assert_eq!(args.profile, "basic");
        assert!(!args.dry_run && args.key_file.is_none() && args.jobs.is_none());
    }

    #[test]
    fn zero_jobs_is_refused() {
        assert!(Cli::try_parse_from(["dicom-deid", "batch", "--jobs", "0", "in", "out"]).is_err());
    }
}
