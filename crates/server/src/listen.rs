//! The accept loop: HTTP/1.1 on the caller's listener, in clear or over TLS, with bounded
//! headers and connections, and a graceful stop.
//!
//! Bounds (fixed; a STOW sender needs a handful of short headers):
//! - at most [`MAX_HEADERS`] header fields and [`MAX_HEADER_BYTES`] of request line + headers
//!   (beyond: 431 and the connection is closed);
//! - a request head must arrive within [`HEADER_READ_TIMEOUT`] (this also ends idle keep-alive
//!   connections), a TLS handshake within [`TLS_HANDSHAKE_TIMEOUT`];
//! - at most [`MAX_CONNECTIONS`] connections at once; beyond, new ones wait in the kernel's
//!   backlog. Bodies are bounded by the ingest limits (`[limits]`).
//!
//! On shutdown the listener is closed, every connection finishes the request it is serving
//! (idle ones close at once), and [`serve`] returns when the last one has.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio_rustls::TlsAcceptor;
use tracing::{debug, info, warn};

/// Most header fields in one request.
pub const MAX_HEADERS: usize = 100;
/// Most bytes of request line and headers.
pub const MAX_HEADER_BYTES: usize = 64 << 10;
/// Time a client has to send a request head (and an idle keep-alive connection stays open).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Time a client has to finish the TLS handshake.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 1024;

/// Serves `router` on `listener` until `shutdown` resolves, then lets every connection finish
/// its request and returns.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let acceptor = tls.map(TlsAcceptor::from);
    let (stop_tx, stop_rx) = watch::channel(false);
    // Every connection task holds a sender; `recv` returns `None` once all are gone.
    let (alive_tx, mut alive_rx) = mpsc::channel::<()>(1);
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            () = &mut shutdown => break,
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
        };
        let (tcp, _peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Per-connection errors (reset before accept) are routine; running out of
                    // file descriptors is not: wait a little instead of spinning.
                    if !is_connection_error(&e) {
                        warn!(message = "Accept failed; retrying in a second.", error = %e);
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let router = router.clone();
        let acceptor = acceptor.clone();
        let mut stop = stop_rx.clone();
        let alive = alive_tx.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let _alive = alive;
            let Some(acceptor) = acceptor else {
                return connection(TokioIo::new(tcp), router, stop).await;
            };
            let handshake = tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                h = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(tcp)) => h,
            };
            match handshake {
                Ok(Ok(stream)) => connection(TokioIo::new(stream), router, stop).await,
                Ok(Err(e)) => debug!(message = "TLS handshake failed.", error = %e),
                Err(_) => debug!(message = "TLS handshake timed out."),
            }
        });
    }
    info!(message = "Shutting down: finishing in-flight requests.");
    drop(listener);
    let _ = stop_tx.send(true);
    drop(alive_tx);
    let _ = alive_rx.recv().await;
    Ok(())
}

/// One HTTP/1.1 connection; on `stop`, finishes the request in progress and closes.
async fn connection<I>(io: TokioIo<I>, router: Router, mut stop: watch::Receiver<bool>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .max_headers(MAX_HEADERS)
        .max_header_size(MAX_HEADER_BYTES)
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(true);
    let conn = builder.serve_connection(io, TowerToHyperService::new(router));
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                debug!(message = "Connection ended with an error.", error = %e);
            }
            return;
        }
        _ = stop.wait_for(|s| *s) => conn.as_mut().graceful_shutdown(),
    }
    if let Err(e) = conn.await {
        debug!(message = "Connection ended with an error while stopping.", error = %e);
    }
}

fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    )
}
