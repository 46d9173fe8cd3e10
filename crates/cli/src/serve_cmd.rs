//! `dicom-deid serve [--config FILE]`: the gateway.

use std::path::PathBuf;

use dicom_deid_server::config::RawConfig;

/// Arguments of `dicom-deid serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The configuration file (TOML). Without it: listen on 127.0.0.1:8104, data in
    /// ./dicom-deid-data, deliver to ./dicom-deid-data/out.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
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
        println!("dicom-deid: listening on http://{addr}");
        for route in gateway.state.routes() {
            println!(
                "dicom-deid: route {}: POST http://{addr}{}/studies",
                route.name, route.path
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
