//! DIMSE ingest for dicom-deid: a C-STORE / C-ECHO SCP (on dicom-ul) that hands every received
//! instance to a [`Store`] and answers the sender with what the store says.
//!
//! What it does:
//! - **Negotiation**: every storage SOP class of the standard ([`sop::STORAGE_SOP_CLASSES`],
//!   generated from PS3.6 through dicom-dictionary-std) and Verification, each with the transfer
//!   syntaxes of [`sop::TRANSFER_SYNTAXES`] (uncompressed, deflate, and the compressed ones the
//!   engine passes through). The maximum PDU length it receives ([`ScpConfig::max_pdu`]) and the
//!   number of concurrent associations ([`ScpConfig::max_associations`]) are bounded.
//! - **Access control at association time**: a wrong called AE title is rejected with
//!   A-ASSOCIATE-RJ (permanent, service user, "called AE title not recognized"); a calling AE
//!   title that is not a configured [`Peer`], or that connects from an address the peer does not
//!   allow, with "calling AE title not recognized"; one association too many with (transient,
//!   service provider (presentation), "local limit exceeded").
//! - **C-STORE**: the data set is collected (bounded by [`ScpConfig::max_instance_bytes`], and
//!   all associations' buffers together by [`ScpConfig::max_receive_bytes`]; once the
//!   association is established its PDUs are read by this crate, each data fragment straight
//!   into the instance's buffer, which starts as large as the association's previous instance),
//!   wrapped in a Part 10 envelope (preamble, `DICM`, file meta from the command and the
//!   presentation context) and given to [`Store::store`]; the C-STORE-RSP goes out only when the
//!   store has answered. Success is `0x0000`; a refusal carries the store's status (`0xA700` out
//!   of resources, `0xA900` cannot be fully de-identified, `0xC000` cannot understand, `0x0110`
//!   processing failure) and an ErrorComment naming the reason — never a value. A refused
//!   instance does not end the association.
//! - **C-ECHO** is answered with Success.
//! - **Aborts**: bytes that are not a valid PDU, a PDU larger than the negotiated maximum, a
//!   DIMSE message out of order, or a peer that does not complete a PDU within
//!   [`ScpConfig::idle_timeout`] of its being awaited (silent between messages or in the middle
//!   of one) end *that* association with A-ABORT (or a closed socket); the others go on.
//!
//! - **TLS** (the DICOM TLS profile, PS3.15 B.1/B.9): with [`ScpConfig::tls`] set, every
//!   connection must first complete a TLS handshake (rustls; the caller's configuration says
//!   which certificate, whether client certificates are required and from which CA); a plain
//!   DICOM peer, or one whose certificate does not verify, never gets to associate. The
//!   handshake is bounded by [`ScpConfig::idle_timeout`].
//!
//! What it does not do: load certificates (the caller builds the rustls configuration),
//! asynchronous operations windows (one operation at a time per association, the default),
//! other DIMSE services (answered with `0x0211` unrecognized operation), private SOP classes.
//! It knows nothing of the engine, the spool or the audit: the caller's [`Store`] does all of
//! that.
//!
//! Nothing it logs carries an element value or a UID from the data: it logs AE titles, peer
//! addresses, association ids and reasons.
//!
//! ```no_run
//! use std::sync::Arc;
//! use dicom_deid_dimse::{Peer, ScpConfig, ScpMetrics, Store, StoreOutcome, StoreRequest};
//!
//! struct Discard;
//! impl Store for Discard {
//!     async fn store(&self, request: StoreRequest) -> StoreOutcome {
//!         let _ = request.bytes.len();
//!         StoreOutcome::Stored
//!     }
//! }
//!
//! # async fn demo(stop: tokio::sync::oneshot::Receiver<()>) -> std::io::Result<()> {
//! let mut config = ScpConfig::new("DEID");
//! config.peers.push(Peer { ae_title: "MODALITY".into(), route: "default".into(), addresses: vec![] });
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:11112").await?;
//! dicom_deid_dimse::serve(listener, Arc::new(config), Arc::new(Discard),
//!     Arc::new(ScpMetrics::default()), async { let _ = stop.await; }).await
//! # }
//! ```

pub mod command;
pub mod meta;
mod scp;
pub mod sop;
#[cfg(feature = "testing")]
pub mod testing;
mod wire;

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tracing::{info, warn};

/// C-STORE / C-ECHO response status codes used by the SCP (PS3.4 Annex B, PS3.7 Annex C).
pub mod status {
    /// Success.
    pub const SUCCESS: u16 = 0x0000;
    /// Refused: out of resources.
    pub const OUT_OF_RESOURCES: u16 = 0xA700;
    /// Error: data set does not match SOP class (used for "cannot be fully de-identified").
    pub const DATA_SET_DOES_NOT_MATCH_SOP_CLASS: u16 = 0xA900;
    /// Error: cannot understand.
    pub const CANNOT_UNDERSTAND: u16 = 0xC000;
    /// Failure: processing failure.
    pub const PROCESSING_FAILURE: u16 = 0x0110;
    /// Failure: SOP class not supported.
    pub const SOP_CLASS_NOT_SUPPORTED: u16 = 0x0122;
    /// Failure: unrecognized operation.
    pub const UNRECOGNIZED_OPERATION: u16 = 0x0211;
}

/// Smallest accepted [`ScpConfig::max_pdu`].
pub const MIN_MAX_PDU: u32 = 4096;
/// Largest accepted [`ScpConfig::max_pdu`] (4 MiB).
pub const MAX_MAX_PDU: u32 = 4 << 20;

/// A calling AE title allowed to associate, and the route its instances feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// The calling AE title (compared exactly, without leading and trailing spaces).
    pub ae_title: String,
    /// The route its instances go to (passed to the store as is).
    pub route: String,
    /// Source addresses it may connect from; empty means any.
    pub addresses: Vec<IpAddr>,
}

/// TLS for the SCP: a rustls server configuration (certificate chain and key, and a client
/// certificate verifier when client certificates are required). Compared by identity; its
/// `Debug` shows neither key nor certificates.
#[derive(Clone)]
pub struct ScpTls(pub Arc<rustls::ServerConfig>);

impl std::fmt::Debug for ScpTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ScpTls(**REDACTED**)")
    }
}

impl PartialEq for ScpTls {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for ScpTls {}

/// How the SCP behaves. Build with [`ScpConfig::new`] and change fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScpConfig {
    /// This SCP's AE title; associations calling another title are rejected.
    pub ae_title: String,
    /// Largest PDU (the A-ASSOCIATE "maximum length") it receives; a longer one aborts the
    /// association. Between [`MIN_MAX_PDU`] and [`MAX_MAX_PDU`].
    pub max_pdu: u32,
    /// Associations served at once; one more is rejected (transient, local limit exceeded).
    pub max_associations: usize,
    /// Largest data set accepted; a larger one is drained and answered `0xA700`.
    pub max_instance_bytes: u64,
    /// Memory for data sets being received, summed over every association (the capacity of
    /// their buffers). An instance whose buffer would take it beyond this is drained and
    /// answered `0xA700` (out of resources; the sender retries later). Never waited for, so
    /// associations cannot hold each other's memory in a deadlock. A received instance's share
    /// is held until the store has answered for it.
    pub max_receive_bytes: u64,
    /// How long a peer may send nothing (while the SCP waits for it) before its association is
    /// aborted; also bounds each write.
    pub idle_timeout: Duration,
    /// The calling AE titles allowed in.
    pub peers: Vec<Peer>,
    /// Implementation Class UID written in the file meta handed to the store.
    pub implementation_class_uid: String,
    /// Implementation Version Name written in the file meta handed to the store.
    pub implementation_version_name: String,
    /// TLS on every connection (`None`: plain TCP).
    pub tls: Option<ScpTls>,
}

impl ScpConfig {
    /// Defaults: max PDU 128 KiB, 8 associations, 512 MiB per instance, 1 GiB being received,
    /// 60 s idle, no peers, no TLS.
    pub fn new(ae_title: &str) -> ScpConfig {
        ScpConfig {
            ae_title: ae_title.trim().to_string(),
            max_pdu: 128 << 10,
            max_associations: 8,
            max_instance_bytes: 512 << 20,
            max_receive_bytes: 1 << 30,
            idle_timeout: Duration::from_secs(60),
            peers: Vec::new(),
            implementation_class_uid: dicom_ul::IMPLEMENTATION_CLASS_UID.to_string(),
            implementation_version_name: "DICOMDEID_DIMSE".to_string(),
            tls: None,
        }
    }

    /// The peer entry for a calling AE title, if any.
    pub fn peer(&self, calling_ae: &str) -> Option<&Peer> {
        let calling_ae = calling_ae.trim();
        self.peers.iter().find(|p| p.ae_title == calling_ae)
    }
}

/// One received instance, for the store.
pub struct StoreRequest {
    /// The calling AE title of the association.
    pub calling_ae: String,
    /// The route of that AE title ([`Peer::route`]).
    pub route: String,
    /// Where the association comes from.
    pub peer: SocketAddr,
    /// The association's process-unique id (also in the SCP's log lines).
    pub association: u64,
    /// The instance's index within the association (0, 1, …).
    pub index: u64,
    /// The negotiated transfer syntax of the data set.
    pub transfer_syntax: String,
    /// The instance as a Part 10 file (file meta from the command, then the data set as sent).
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for StoreRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreRequest")
            .field("calling_ae", &self.calling_ae)
            .field("route", &self.route)
            .field("peer", &self.peer)
            .field("association", &self.association)
            .field("index", &self.index)
            .field("transfer_syntax", &self.transfer_syntax)
            .field(
                "bytes",
                &format_args!("{} bytes **REDACTED**", self.bytes.len()),
            )
            .finish()
    }
}

/// What the store did with an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreOutcome {
    /// Durably stored: the sender gets Success.
    Stored,
    /// Refused: the sender gets `status` (see [`status`]) and `comment` as ErrorComment (cut to
    /// 64 characters; it must name a reason, never a value).
    Refused {
        /// The C-STORE status.
        status: u16,
        /// Why, for the ErrorComment.
        comment: String,
    },
}

/// Where the SCP puts received instances. Called once per C-STORE; the response is sent when
/// the returned future completes, so "Stored" must mean durable.
pub trait Store: Send + Sync + 'static {
    /// Takes one instance.
    fn store(&self, request: StoreRequest) -> impl Future<Output = StoreOutcome> + Send;

    /// For a C-STORE whose data set begins to arrive: something that sees the data set as it
    /// arrives and then answers the instance in [`Store::store`]'s place, or `None` (the
    /// default) to get whole instances only. It is dropped without being asked to answer when
    /// the instance is refused before it is complete (too large, no receive memory) or the
    /// association ends first.
    fn receiving(&self, arriving: &Arriving<'_>) -> Option<Box<dyn Receiving>> {
        let _ = arriving;
        None
    }
}

/// An instance whose data set begins to arrive ([`Store::receiving`]).
#[derive(Debug, Clone, Copy)]
pub struct Arriving<'a> {
    /// The calling AE title of the association.
    pub calling_ae: &'a str,
    /// The route of that AE title.
    pub route: &'a str,
    /// The association's process-unique id.
    pub association: u64,
    /// The instance's index within the association.
    pub index: u64,
    /// The negotiated transfer syntax of the data set.
    pub transfer_syntax: &'a str,
}

/// Sees one instance's data set while it arrives, then answers the instance ([`Store::receiving`]).
pub trait Receiving: Send + 'static {
    /// After each data fragment read: `so_far` is the Part 10 envelope and the data set as far
    /// as it has arrived (it only grows). Runs on the association's task between two reads:
    /// keep it short.
    fn received(&mut self, so_far: &[u8]);

    /// The instance is complete: answers it, as [`Store::store`] would.
    fn complete(
        self: Box<Self>,
        request: StoreRequest,
    ) -> Pin<Box<dyn Future<Output = StoreOutcome> + Send>>;
}

/// SCP counters.
#[derive(Debug, Default)]
pub struct ScpMetrics {
    /// Associations accepted.
    pub associations_accepted: AtomicU64,
    /// Associations rejected (AE title, address or limit), and connections whose TLS
    /// handshake failed (no or an untrusted client certificate, a plain DICOM peer).
    pub associations_rejected: AtomicU64,
    /// Associations aborted (protocol error, limit, timeout, peer abort, shutdown).
    pub associations_aborted: AtomicU64,
    /// C-ECHO requests answered.
    pub echoes: AtomicU64,
    /// C-STORE requests answered with Success.
    pub stored: AtomicU64,
    /// C-STORE requests answered with a failure status.
    pub refused: AtomicU64,
    /// Bytes held by data sets being received or stored (a gauge, at most
    /// [`ScpConfig::max_receive_bytes`]).
    pub receiving_bytes: AtomicU64,
    /// [`ScpConfig::max_receive_bytes`] of the SCP serving (set by [`serve`]; 0 before).
    pub receiving_max_bytes: AtomicU64,
}

/// Serves associations on `listener` until `shutdown` resolves; then stops accepting, lets
/// each association finish the operation in progress (a store under way is answered), aborts
/// the associations and returns when all have ended.
pub async fn serve<S: Store>(
    listener: TcpListener,
    config: Arc<ScpConfig>,
    store: Arc<S>,
    metrics: Arc<ScpMetrics>,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    metrics
        .receiving_max_bytes
        .store(config.max_receive_bytes, Relaxed);
    let slots = Arc::new(Semaphore::new(config.max_associations.max(1)));
    // Connections beyond the limit are answered A-ASSOCIATE-RJ by a few short-lived tasks;
    // beyond those, they are closed unanswered.
    let rejecters = Arc::new(Semaphore::new(config.max_associations.clamp(1, 16)));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    static NEXT_ID: AtomicU64 = AtomicU64::new(1);
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            a = listener.accept() => a,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
        };
        let (socket, addr) = match accepted {
            Ok(a) => a,
            Err(e) => {
                warn!(message = "DIMSE accept failed; retrying.", error = %e);
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = socket.set_nodelay(true);
        let id = NEXT_ID.fetch_add(1, Relaxed);
        match slots.clone().try_acquire_owned() {
            Ok(permit) => {
                let ctx = scp::Ctx {
                    config: config.clone(),
                    store: store.clone(),
                    metrics: metrics.clone(),
                };
                let stop = stop_rx.clone();
                tasks.spawn(async move {
                    scp::association(socket, addr, id, ctx, stop).await;
                    drop(permit);
                });
            }
            Err(_) => {
                metrics.associations_rejected.fetch_add(1, Relaxed);
                info!(message = "DIMSE association refused: too many associations.", association = id, peer = %addr);
                if let Ok(permit) = rejecters.clone().try_acquire_owned() {
                    let config = config.clone();
                    tasks.spawn(async move {
                        scp::reject_busy(socket, &config).await;
                        drop(permit);
                    });
                }
            }
        }
    }
    info!(message = "DIMSE SCP stopping: finishing operations in progress.");
    let _ = stop_tx.send(true);
    while tasks.join_next().await.is_some() {}
    Ok(())
}
