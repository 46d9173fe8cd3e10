//! `dicom-deid serve [--config FILE]`: the gateway.

use std::path::PathBuf;

use dicom_deid_server::config::{LogConfig, LogFormat, RawConfig, LOG_LEVELS};

/// Arguments of `dicom-deid serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The configuration file (TOML). Without it: listen on 127.0.0.1:8104, data in
    /// ./dicom-deid-data, deliver to ./dicom-deid-data/out.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Log format on stderr: `text` or `json` (one object per line). Overrides `[log] format`.
    #[arg(long, value_name = "FORMAT", value_parser = ["text", "json"])]
    pub log_format: Option<String>,
    /// Log level: error, warn, info, debug or trace. Overrides `RUST_LOG` and `[log] level`.
    #[arg(long, value_name = "LEVEL", value_parser = LOG_LEVELS)]
    pub log_level: Option<String>,
}

/// Dependencies whose debug output is noise (and may describe connections): kept at `warn`
/// unless `RUST_LOG` says otherwise.
const QUIET: &str = "h2=warn,hyper=warn,hyper_util=warn,reqwest=warn,rustls=warn,tokio_rustls=warn";

/// Sets up logging on stderr: the level from `--log-level`, else `RUST_LOG`, else `[log] level`,
/// else `info`; the format from `--log-format`, else `[log] format`.
fn init_logging(args: &ServeArgs, log: &LogConfig) {
    let env = std::env::var("RUST_LOG").ok().filter(|v| !v.is_empty());
    let directives = match (&args.log_level, env, &log.level) {
        (Some(level), _, _) => format!("{level},{QUIET}"),
        (None, Some(env), _) => env,
        (None, None, Some(level)) => format!("{level},{QUIET}"),
        (None, None, None) => format!("info,{QUIET}"),
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&directives)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let json = match args.log_format.as_deref() {
        Some(f) => f == "json",
        None => log.format == LogFormat::Json,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .init();
    } else {
        builder.init();
    }
}

/// Validates the configuration, opens everything, prints where it listens, the data directory
/// and the key path (never the key), and serves until Ctrl-C or SIGTERM.
pub fn run(args: ServeArgs) -> u8 {
    let raw = match &args.config {
        Some(path) => match RawConfig::from_file(path) {
            Ok(raw) => raw,
            Err(e) => return crate::fail(e),
        },
        None => RawConfig::default(),
    };
    let config = match raw.validate(args.config.as_deref()) {
        Ok(c) => c,
        Err(e) => return crate::fail(e),
    };
    init_logging(&args, &config.log);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => return crate::fail(format!("cannot start the async runtime: {e}")),
    };
    runtime.block_on(async move {
        let created = config.create_key && !config.key_file.exists();
        let gateway = match config.build() {
            Ok(g) => g,
            Err(e) => return crate::fail(e),
        };
        let listener = match tokio::net::TcpListener::bind(config.listen).await {
            Ok(l) => l,
            Err(e) => return crate::fail(format!("cannot listen on {}: {e}", config.listen)),
        };
        let addr = listener.local_addr().unwrap_or(config.listen);
        let scheme = if gateway.tls.is_some() {
            "https"
        } else {
            "http"
        };
        println!("dicom-deid: listening on {scheme}://{addr}");
        for route in gateway.state.routes() {
            println!(
                "dicom-deid: route {}: POST {scheme}://{addr}{}/studies",
                route.name, route.path
            );
        }
        if config.tokens.is_empty() {
            println!("dicom-deid: ingest is open to anyone who can reach {addr} (no [[tokens]])");
        } else {
            println!("dicom-deid: ingest requires a bearer token");
        }
        if !addr.ip().is_loopback() && gateway.tls.is_none() {
            eprintln!(
                "dicom-deid: warning: listening beyond this host without [tls]: tokens and \
                 instances cross the network in clear"
            );
        }
        println!("dicom-deid: data directory {}", config.data_dir.display());
        println!(
            "dicom-deid: key {}{}",
            config.key_file.display(),
            if created {
                " (created now; keep it private and backed up)"
            } else {
                ""
            }
        );
        match dicom_deid_server::run(listener, gateway, shutdown_signal()).await {
            Ok(()) => {
                println!("dicom-deid: stopped; undelivered instances stay in the spool");
                0
            }
            Err(e) => crate::fail(format!("server error: {e}")),
        }
    })
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
