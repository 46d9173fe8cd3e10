//! One association: negotiation with access control, then DIMSE messages until release, abort
//! or shutdown.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use dicom_ul::association::server::AccessControl;
use dicom_ul::association::server::AsyncServerAssociation;
use dicom_ul::association::{Association, Error as UlError};
use dicom_ul::pdu::{
    AssociationRJ, AssociationRJResult, AssociationRJServiceProviderPresentationReason,
    AssociationRJServiceUserReason, AssociationRJSource, PDataValue, PDataValueType,
    PresentationContextResultReason, UserIdentity,
};
use dicom_ul::{Pdu, ServerAssociationOptions};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::command::{self, Command, C_ECHO_RQ, C_STORE_RQ, MAX_COMMAND_BYTES};
use crate::wire;
use crate::{
    meta, sop, status, Arriving, Receiving, ScpConfig, ScpMetrics, Store, StoreOutcome,
    StoreRequest,
};

pub(crate) struct Ctx<S> {
    pub config: Arc<ScpConfig>,
    pub store: Arc<S>,
    pub metrics: Arc<ScpMetrics>,
}

/// Access control: the called AE title must be ours, the calling one a configured peer,
/// connecting from an allowed address.
struct Access {
    config: Arc<ScpConfig>,
    ip: IpAddr,
}

impl AccessControl for Access {
    fn check_access(
        &self,
        this_ae_title: &str,
        calling_ae_title: &str,
        called_ae_title: &str,
        _user_identity: Option<&UserIdentity>,
    ) -> Result<(), AssociationRJServiceUserReason> {
        if called_ae_title.trim() != this_ae_title {
            return Err(AssociationRJServiceUserReason::CalledAETitleNotRecognized);
        }
        match self.config.peer(calling_ae_title) {
            Some(peer) if peer.addresses.is_empty() || peer.addresses.contains(&self.ip) => Ok(()),
            _ => Err(AssociationRJServiceUserReason::CallingAETitleNotRecognized),
        }
    }
}

/// Answers one connection beyond the association limit with A-ASSOCIATE-RJ (transient, local
/// limit exceeded), after reading its A-ASSOCIATE-RQ (briefly; over TLS when configured).
pub(crate) async fn reject_busy(socket: TcpStream, config: &ScpConfig) {
    let wait = config.idle_timeout.min(std::time::Duration::from_secs(5));
    match &config.tls {
        None => reject_busy_on(socket, config, wait).await,
        Some(tls) => {
            let acceptor = tokio_rustls::TlsAcceptor::from(tls.0.clone());
            if let Ok(Ok(stream)) = tokio::time::timeout(wait, acceptor.accept(socket)).await {
                reject_busy_on(stream, config, wait).await;
            }
        }
    }
}

async fn reject_busy_on<T: AsyncRead + AsyncWrite + Unpin>(
    mut socket: T,
    config: &ScpConfig,
    wait: std::time::Duration,
) {
    let mut buf = bytes::BytesMut::new();
    let read = tokio::time::timeout(
        wait,
        dicom_ul::association::read_pdu_from_wire_async(
            &mut socket,
            &mut buf,
            config.max_pdu.max(crate::MIN_MAX_PDU),
            true,
        ),
    )
    .await;
    if !matches!(read, Ok(Ok(Pdu::AssociationRQ(_)))) {
        return;
    }
    let rj = Pdu::AssociationRJ(AssociationRJ {
        result: AssociationRJResult::Transient,
        source: AssociationRJSource::ServiceProviderPresentation(
            AssociationRJServiceProviderPresentationReason::LocalLimitExceeded,
        ),
    });
    let mut out = Vec::new();
    if dicom_ul::write_pdu(&mut out, &rj).is_ok() {
        let _ = tokio::time::timeout(wait, socket.write_all(&out)).await;
    }
    let _ = socket.shutdown().await;
}

/// A safe description of a dicom-ul error: fixed text, never PDU content.
fn describe(e: &UlError) -> String {
    match e {
        UlError::Rejected { association_rj, .. } => {
            format!("association rejected: {}", association_rj.source)
        }
        UlError::ConnectionClosed { .. } => "connection closed by the peer".into(),
        UlError::Timeout { .. } => "nothing received within the idle timeout".into(),
        UlError::ReceivePdu { source, .. } => format!("unreadable PDU: {source}"),
        UlError::UnexpectedPdu { .. } => "unexpected PDU".into(),
        UlError::UnknownPdu { .. } => "unknown PDU type".into(),
        UlError::WireSend { .. } | UlError::SendPdu { .. } => "could not send a PDU".into(),
        UlError::Aborted { .. } => "aborted".into(),
        UlError::TlsHandshake { source, .. } => format!("TLS handshake failed: {source}"),
        UlError::TlsConnection { source, .. } => format!("TLS handshake failed: {source}"),
        UlError::TlsNotSupported => "a TLS handshake on a plain DICOM port".into(),
        _ => "association error".into(),
    }
}

/// A share of [`ScpConfig::max_receive_bytes`], counted in [`ScpMetrics::receiving_bytes`]
/// and given back when dropped.
struct Held {
    metrics: Arc<ScpMetrics>,
    bytes: u64,
}

impl Held {
    fn new(metrics: &Arc<ScpMetrics>) -> Held {
        Held {
            metrics: metrics.clone(),
            bytes: 0,
        }
    }

    /// Takes `more` bytes if that keeps the total within `max`; never waits.
    fn grow(&mut self, more: u64, max: u64) -> bool {
        let taken = self
            .metrics
            .receiving_bytes
            .fetch_update(Relaxed, Relaxed, |used| {
                used.checked_add(more).filter(|&total| total <= max)
            });
        if taken.is_ok() {
            self.bytes += more;
        }
        taken.is_ok()
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.metrics.receiving_bytes.fetch_sub(self.bytes, Relaxed);
    }
}

/// A DIMSE message being received.
struct Pending {
    cmd: Command,
    pc: u8,
    /// The Part 10 envelope and the data set so far (C-STORE on an accepted context only).
    data: Option<Vec<u8>>,
    /// The share of the receive memory that `data`'s buffer holds.
    held: Option<Held>,
    received: u64,
    too_large: bool,
    /// The receive memory was full: the rest of the data set is drained.
    no_room: bool,
    /// What sees the data set as it arrives ([`Store::receiving`]), once asked (`asked`).
    receiving: Option<Box<dyn Receiving>>,
    asked: bool,
}

impl Pending {
    /// After a data fragment was read into the data set: at the first, asks (`ask`, given the
    /// context's transfer syntax) for what watches the data set arrive; then shows it the data
    /// set so far.
    fn arrived(
        &mut self,
        contexts: &Contexts,
        ask: impl FnOnce(&str) -> Option<Box<dyn Receiving>>,
    ) {
        if !self.asked {
            self.asked = true;
            self.receiving = contexts.get(&self.pc).and_then(|(_, ts)| ask(ts));
        }
        if let (Some(r), Some(data)) = (self.receiving.as_mut(), self.data.as_deref()) {
            r.received(data);
        }
    }
}

/// What the PDV stream has produced.
enum Step {
    Nothing,
    Message(Pending),
}

/// The accepted presentation contexts: id → (abstract syntax, transfer syntax).
type Contexts = HashMap<u8, (String, String)>;

struct Inbound {
    command: Vec<u8>,
    command_pc: Option<u8>,
    pending: Option<Pending>,
    metrics: Arc<ScpMetrics>,
    /// The data set length of the last instance received whole on this association: the next
    /// one's buffer starts that large (the instances of a series usually are), so that it is
    /// not copied as it grows.
    size_hint: u64,
}

/// Where the bytes of the PDV being read go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// [`Inbound::command`].
    Command,
    /// The pending message's data set buffer.
    Data,
    /// Nowhere: the data set is refused (too large, or no receive memory) and drained.
    Drain,
}

impl Inbound {
    /// Feeds one whole PDV (tests: the association reads PDVs straight from the wire with
    /// [`Inbound::begin`] and [`Inbound::finish`]).
    #[cfg(test)]
    fn feed(
        &mut self,
        pdv: PDataValue,
        contexts: &Contexts,
        config: &ScpConfig,
    ) -> Result<Step, &'static str> {
        let target = self.begin(
            pdv.presentation_context_id,
            pdv.value_type,
            pdv.data.len(),
            contexts,
            config,
        )?;
        match target {
            Target::Command => self.command.extend_from_slice(&pdv.data),
            Target::Data => self.data_buffer().extend_from_slice(&pdv.data),
            Target::Drain => {}
        }
        self.finish(pdv.is_last, contexts, config)
    }

    /// A PDV of `len` bytes begins: checks it against the state of the message and the
    /// limits, makes room for it, and says where its bytes go.
    fn begin(
        &mut self,
        pc: u8,
        value_type: PDataValueType,
        len: usize,
        contexts: &Contexts,
        config: &ScpConfig,
    ) -> Result<Target, &'static str> {
        if !contexts.contains_key(&pc) {
            return Err("a PDV on a presentation context that was not accepted");
        }
        match value_type {
            PDataValueType::Command => {
                if self.pending.is_some() {
                    return Err("a command fragment while a data set was expected");
                }
                if self.command_pc.is_some_and(|known| known != pc) {
                    return Err("command fragments on different presentation contexts");
                }
                if self.command.len() + len > MAX_COMMAND_BYTES {
                    return Err("the command set is too large");
                }
                self.command_pc = Some(pc);
                self.command.reserve(len);
                Ok(Target::Command)
            }
            PDataValueType::Data => {
                let Some(pending) = self.pending.as_mut() else {
                    return Err("a data fragment without a command");
                };
                if pending.pc != pc {
                    return Err("a data fragment on another presentation context");
                }
                pending.received += len as u64;
                if pending.received > config.max_instance_bytes {
                    pending.too_large = true;
                    pending.data = None;
                    pending.held = None;
                    pending.receiving = None;
                } else if let (Some(data), Some(held)) =
                    (pending.data.as_mut(), pending.held.as_mut())
                {
                    let before = pending.received - len as u64;
                    if grow(data, held, len, before, config) {
                        return Ok(Target::Data);
                    }
                    pending.no_room = true;
                    pending.data = None;
                    pending.held = None;
                    pending.receiving = None;
                }
                Ok(Target::Drain)
            }
        }
    }

    /// The data set buffer of the pending message ([`Target::Data`]).
    fn data_buffer(&mut self) -> &mut Vec<u8> {
        self.pending
            .as_mut()
            .and_then(|p| p.data.as_mut())
            .expect("begin said the data set is kept")
    }

    /// The PDV begun last has been read whole: what the PDV stream has produced.
    fn finish(
        &mut self,
        is_last: bool,
        contexts: &Contexts,
        config: &ScpConfig,
    ) -> Result<Step, &'static str> {
        let Some(pending) = self.pending.as_mut() else {
            // A command fragment.
            if !is_last {
                return Ok(Step::Nothing);
            }
            let cmd = command::parse(&self.command).map_err(|e| e.0)?;
            self.command.clear();
            let pc = self.command_pc.take().expect("set by begin");
            let mut data = match (cmd.command_field, contexts.get(&pc)) {
                (C_STORE_RQ, Some((abstract_syntax, ts)))
                    if cmd.has_data_set() && *abstract_syntax == cmd.affected_sop_class =>
                {
                    Some(meta::envelope(
                        &cmd.affected_sop_class,
                        &cmd.affected_sop_instance,
                        ts,
                        &config.implementation_class_uid,
                        &config.implementation_version_name,
                    ))
                }
                _ => None,
            };
            let mut held = data.as_ref().map(|_| Held::new(&self.metrics));
            if let (Some(data), Some(held)) = (data.as_mut(), held.as_mut()) {
                presize(data, held, self.size_hint, config);
            }
            let pending = Pending {
                cmd,
                pc,
                data,
                held,
                received: 0,
                too_large: false,
                no_room: false,
                receiving: None,
                asked: false,
            };
            if pending.cmd.has_data_set() {
                self.pending = Some(pending);
                return Ok(Step::Nothing);
            }
            return Ok(Step::Message(pending));
        };
        // A data fragment.
        if !is_last {
            return Ok(Step::Nothing);
        }
        if pending.data.is_some() {
            self.size_hint = pending.received;
        }
        Ok(Step::Message(self.pending.take().expect("checked above")))
    }
}

/// Reserves room for a data set of `hint` bytes after the envelope in `data`, if the receive
/// memory has it (never more than the largest instance); otherwise `data` grows as PDVs come.
fn presize(data: &mut Vec<u8>, held: &mut Held, hint: u64, config: &ScpConfig) {
    let hint = hint.min(config.max_instance_bytes);
    let capacity = data.capacity() as u64;
    let target = data.len() as u64 + hint;
    if target > capacity && held.grow(target - capacity, config.max_receive_bytes) {
        data.reserve_exact(target as usize - data.len());
    }
}

/// Makes room in `data` (the envelope and `before` data set bytes so far) for `more` bytes,
/// never past the envelope plus the largest instance, and only with a share of the receive
/// memory. `false` when the receive memory is full.
fn grow(data: &mut Vec<u8>, held: &mut Held, more: usize, before: u64, config: &ScpConfig) -> bool {
    let want = data.len() + more;
    if want <= data.capacity() {
        return true;
    }
    let envelope = (data.len() as u64).saturating_sub(before);
    let ceiling = envelope.saturating_add(config.max_instance_bytes);
    let (want, capacity) = (want as u64, data.capacity() as u64);
    // Doubling when there is room for it; else an eighth more, so that a tight budget still
    // grows in amortised steps; else exactly what this PDV needs.
    for target in [capacity * 2, want + want / 8, want] {
        let target = target.min(ceiling).max(want);
        if held.grow(target - capacity, config.max_receive_bytes) {
            data.reserve_exact(target as usize - data.len());
            return true;
        }
    }
    false
}

/// Serves one association to its end.
pub(crate) async fn association<S: Store>(
    socket: TcpStream,
    addr: SocketAddr,
    id: u64,
    ctx: Ctx<S>,
    stop: watch::Receiver<bool>,
) {
    let config = &ctx.config;
    let mut options = ServerAssociationOptions::new()
        .ae_access_control(Access {
            config: config.clone(),
            ip: addr.ip(),
        })
        .ae_title(config.ae_title.as_str())
        .max_pdu_length(config.max_pdu.clamp(crate::MIN_MAX_PDU, crate::MAX_MAX_PDU))
        .read_timeout(config.idle_timeout)
        .write_timeout(config.idle_timeout)
        .with_abstract_syntax(sop::VERIFICATION);
    for (uid, _, _) in sop::STORAGE_SOP_CLASSES {
        options = options.with_abstract_syntax(*uid);
    }
    for (uid, _) in sop::TRANSFER_SYNTAXES {
        options = options.with_transfer_syntax(*uid);
    }
    match &config.tls {
        None => {
            let established = options.establish_async(socket).await;
            serve_association(established, addr, id, &ctx, stop).await;
        }
        Some(tls) => {
            // dicom-ul bounds the A-ASSOCIATE exchange by the read timeout but not the TLS
            // handshake before it: a peer that stalls there would keep its slot.
            let options = options.tls_config(tls.0.clone());
            let Ok(established) =
                tokio::time::timeout(config.idle_timeout, options.establish_tls_async(socket))
                    .await
            else {
                ctx.metrics.associations_aborted.fetch_add(1, Relaxed);
                info!(message = "DIMSE association not established.", association = id, peer = %addr, reason = "no TLS handshake within the idle timeout");
                return;
            };
            serve_association(established, addr, id, &ctx, stop).await;
        }
    }
}

/// Serves an association (plain or over TLS) from its establishment to its end.
async fn serve_association<S, T>(
    established: Result<AsyncServerAssociation<T>, UlError>,
    addr: SocketAddr,
    id: u64,
    ctx: &Ctx<S>,
    mut stop: watch::Receiver<bool>,
) where
    S: Store,
    T: AsyncRead + AsyncWrite + Unpin + Send,
{
    let config = &ctx.config;
    let metrics = &ctx.metrics;
    let mut assoc = match established {
        Ok(a) => a,
        Err(e) => {
            // A connection closed before or during the handshake is not a refusal.
            let tls_refused = match &e {
                UlError::TlsHandshake { source, .. } => {
                    source.kind() != std::io::ErrorKind::UnexpectedEof
                }
                UlError::TlsConnection { .. } | UlError::TlsNotSupported => true,
                _ => false,
            };
            if matches!(e, UlError::Rejected { .. }) || tls_refused {
                metrics.associations_rejected.fetch_add(1, Relaxed);
                info!(message = "DIMSE association rejected.", association = id, peer = %addr, reason = %describe(&e));
            } else {
                metrics.associations_aborted.fetch_add(1, Relaxed);
                info!(message = "DIMSE association not established.", association = id, peer = %addr, reason = %describe(&e));
            }
            return;
        }
    };
    let calling = assoc.peer_ae_title().trim().to_string();
    let Some(route) = config.peer(&calling).map(|p| p.route.clone()) else {
        // Access control let it in, so this cannot happen; fail closed anyway.
        metrics.associations_aborted.fetch_add(1, Relaxed);
        let _ = assoc.abort().await;
        return;
    };
    let contexts: Contexts = assoc
        .presentation_contexts()
        .iter()
        .filter(|pc| pc.reason == PresentationContextResultReason::Acceptance)
        .map(|pc| {
            (
                pc.id,
                (pc.abstract_syntax.clone(), pc.transfer_syntax.clone()),
            )
        })
        .collect();
    metrics.associations_accepted.fetch_add(1, Relaxed);
    info!(
        message = "DIMSE association accepted.",
        association = id,
        calling_ae = %calling,
        route = %route,
        peer = %addr,
        contexts = contexts.len(),
    );

    let mut inbound = Inbound {
        command: Vec::new(),
        command_pc: None,
        pending: None,
        metrics: metrics.clone(),
        size_hint: 0,
    };
    let mut index = 0u64;
    let (mut stored, mut refused) = (0u64, 0u64);
    let max_pdu = config.max_pdu.clamp(crate::MIN_MAX_PDU, crate::MAX_MAX_PDU);
    let abort_reason: Option<String> = 'outer: loop {
        // The whole PDU is due within the idle timeout from when it is awaited.
        let deadline = tokio::time::Instant::now() + config.idle_timeout;
        let mut head = [0u8; 6];
        let got = tokio::select! {
            r = wire::read_exact(assoc.inner_stream(), &mut head, deadline) => r,
            _ = stop.wait_for(|s| *s) => break 'outer Some("the gateway is shutting down".into()),
        };
        if let Err(reason) = got {
            break Some(reason.into());
        }
        let len = u32::from_be_bytes([head[2], head[3], head[4], head[5]]);
        match head[0] {
            wire::P_DATA_TF => {}
            wire::A_RELEASE_RQ => {
                let mut reserved = [0u8; 4];
                if len != 4 {
                    break Some("unreadable PDU: malformed A-RELEASE-RQ".into());
                }
                if let Err(reason) =
                    wire::read_exact(assoc.inner_stream(), &mut reserved, deadline).await
                {
                    break Some(reason.into());
                }
                let _ = assoc.send(&Pdu::ReleaseRP).await;
                break None;
            }
            wire::A_ABORT => break Some("aborted by the peer".into()),
            1..=7 => break Some("unexpected PDU".into()),
            _ => break Some("unknown PDU type".into()),
        }
        if len > max_pdu {
            break Some("unreadable PDU: longer than the negotiated maximum".into());
        }
        // The PDV items, each read straight to where its bytes go.
        let mut left = len as usize;
        while left > 0 {
            let mut item = [0u8; 6];
            if left < item.len() {
                break 'outer Some("unreadable PDU: a PDV item runs past its PDU".into());
            }
            if let Err(reason) = wire::read_exact(assoc.inner_stream(), &mut item, deadline).await {
                break 'outer Some(reason.into());
            }
            let item_len = u32::from_be_bytes([item[0], item[1], item[2], item[3]]) as usize;
            if item_len < 2 || item_len > left - 4 {
                break 'outer Some("unreadable PDU: a PDV item runs past its PDU".into());
            }
            left -= 4 + item_len;
            let (pc, control, n) = (item[4], item[5], item_len - 2);
            let value_type = if control & 0x01 != 0 {
                PDataValueType::Command
            } else {
                PDataValueType::Data
            };
            let target = match inbound.begin(pc, value_type, n, &contexts, config) {
                Ok(t) => t,
                Err(reason) => break 'outer Some(reason.into()),
            };
            let read = match target {
                Target::Command => {
                    wire::read_append(assoc.inner_stream(), &mut inbound.command, n, deadline).await
                }
                Target::Data => {
                    let buffer = inbound.data_buffer();
                    wire::read_append(assoc.inner_stream(), buffer, n, deadline).await
                }
                Target::Drain => wire::skip(assoc.inner_stream(), n, deadline).await,
            };
            if let Err(reason) = read {
                break 'outer Some(reason.into());
            }
            if let (Target::Data, Some(p)) = (target, inbound.pending.as_mut()) {
                p.arrived(&contexts, |ts| {
                    ctx.store.receiving(&Arriving {
                        calling_ae: &calling,
                        route: &route,
                        association: id,
                        index,
                        transfer_syntax: ts,
                    })
                });
            }
            let message = match inbound.finish(control & 0x02 != 0, &contexts, config) {
                Ok(Step::Nothing) => continue,
                Ok(Step::Message(m)) => m,
                Err(reason) => break 'outer Some(reason.into()),
            };
            let Pending {
                cmd,
                pc,
                data,
                held,
                too_large,
                no_room,
                receiving,
                ..
            } = message;
            let (status, comment) = match cmd.command_field {
                C_ECHO_RQ => {
                    metrics.echoes.fetch_add(1, Relaxed);
                    (status::SUCCESS, None)
                }
                C_STORE_RQ => {
                    let (st, comment) = store_one(
                        ctx,
                        Received {
                            cmd: &cmd,
                            pc,
                            data,
                            held,
                            too_large,
                            no_room,
                            receiving,
                        },
                        &contexts,
                        (&calling, &route, addr, id, index),
                    )
                    .await;
                    index += 1;
                    if st == status::SUCCESS {
                        stored += 1;
                        metrics.stored.fetch_add(1, Relaxed);
                    } else {
                        refused += 1;
                        metrics.refused.fetch_add(1, Relaxed);
                    }
                    (st, comment)
                }
                _ => (
                    status::UNRECOGNIZED_OPERATION,
                    Some("only C-STORE and C-ECHO are served".to_string()),
                ),
            };
            let comment = comment.map(|c| command::error_comment(&c));
            let rsp = command::response(&cmd, status, comment.as_deref());
            let sent = assoc
                .send(&Pdu::PData {
                    data: vec![PDataValue {
                        presentation_context_id: pc,
                        value_type: PDataValueType::Command,
                        is_last: true,
                        data: rsp,
                    }],
                })
                .await;
            if let Err(e) = sent {
                break 'outer Some(describe(&e));
            }
        }
    };
    match abort_reason {
        None => {
            info!(message = "DIMSE association released.", association = id, calling_ae = %calling, stored, refused);
        }
        Some(reason) => {
            metrics.associations_aborted.fetch_add(1, Relaxed);
            warn!(message = "DIMSE association aborted.", association = id, calling_ae = %calling, reason = %reason, stored, refused);
            let _ = assoc.abort().await;
        }
    }
}

/// A complete C-STORE-RQ.
struct Received<'a> {
    cmd: &'a Command,
    pc: u8,
    data: Option<Vec<u8>>,
    /// The receive memory `data` holds, given back once the store has answered.
    held: Option<Held>,
    too_large: bool,
    no_room: bool,
    /// What saw the data set arrive, if the store asked for it: it answers instead of the store.
    receiving: Option<Box<dyn Receiving>>,
}

/// Answers one complete C-STORE-RQ: the status and comment of the response.
async fn store_one<S: Store>(
    ctx: &Ctx<S>,
    message: Received<'_>,
    contexts: &Contexts,
    (calling, route, addr, id, index): (&str, &str, SocketAddr, u64, u64),
) -> (u16, Option<String>) {
    let Some((abstract_syntax, ts)) = contexts.get(&message.pc) else {
        return (
            status::PROCESSING_FAILURE,
            Some("no presentation context".into()),
        );
    };
    if *abstract_syntax != message.cmd.affected_sop_class {
        return (
            status::SOP_CLASS_NOT_SUPPORTED,
            Some("(0000,0002) AffectedSOPClassUID differs from the presentation context".into()),
        );
    }
    if message.too_large {
        return (
            status::OUT_OF_RESOURCES,
            Some("the instance is larger than the limit".into()),
        );
    }
    if message.no_room {
        return (
            status::OUT_OF_RESOURCES,
            Some(
                "the gateway is receiving too much at once (max_receive_bytes); retry later".into(),
            ),
        );
    }
    let Some(bytes) = message.data else {
        return (
            status::CANNOT_UNDERSTAND,
            Some("C-STORE without a data set".into()),
        );
    };
    let request = StoreRequest {
        calling_ae: calling.to_string(),
        route: route.to_string(),
        peer: addr,
        association: id,
        index,
        transfer_syntax: ts.clone(),
        bytes,
    };
    let outcome = match message.receiving {
        Some(receiving) => receiving.complete(request).await,
        None => ctx.store.store(request).await,
    };
    drop(message.held);
    match outcome {
        StoreOutcome::Stored => (status::SUCCESS, None),
        StoreOutcome::Refused { status, comment } => {
            debug!(message = "C-STORE refused.", association = id, index, status = format_args!("{status:#06X}"), reason = %comment);
            (status, Some(comment))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CT: &str = "1.2.840.10008.5.1.4.1.1.2";
    const EXPLICIT_LE: &str = "1.2.840.10008.1.2.1";

    fn inbound(metrics: &Arc<ScpMetrics>) -> Inbound {
        Inbound {
            command: Vec::new(),
            command_pc: None,
            pending: None,
            metrics: metrics.clone(),
            size_hint: 0,
        }
    }

    fn pdv(value_type: PDataValueType, data: Vec<u8>, is_last: bool) -> PDataValue {
        PDataValue {
            presentation_context_id: 1,
            value_type,
            is_last,
            data,
        }
    }

    /// Feeds a C-STORE-RQ command; the data set is then expected.
    fn start(inbound: &mut Inbound, contexts: &Contexts, config: &ScpConfig) {
        let step = inbound
            .feed(
                pdv(PDataValueType::Command, command::tests::store_rq(), true),
                contexts,
                config,
            )
            .unwrap();
        assert!(matches!(step, Step::Nothing));
    }

    fn data(
        inbound: &mut Inbound,
        len: usize,
        last: bool,
        contexts: &Contexts,
        config: &ScpConfig,
    ) -> Step {
        inbound
            .feed(
                pdv(PDataValueType::Data, vec![0x5a; len], last),
                contexts,
                config,
            )
            .unwrap()
    }

    /// An SCP config with these two limits, one CT context (id 1) and fresh metrics.
    fn setup(max_instance: u64, max_receive: u64) -> (ScpConfig, Contexts, Arc<ScpMetrics>) {
        let mut config = ScpConfig::new("DEID");
        config.max_instance_bytes = max_instance;
        config.max_receive_bytes = max_receive;
        let contexts: Contexts = HashMap::from([(1, (CT.to_string(), EXPLICIT_LE.to_string()))]);
        (config, contexts, Arc::new(ScpMetrics::default()))
    }

    fn receiving(metrics: &ScpMetrics) -> u64 {
        metrics.receiving_bytes.load(Relaxed)
    }

    #[test]
    fn data_sets_being_received_share_one_bounded_memory_and_give_it_back() {
        let (config, contexts, metrics) = setup(1 << 20, 600 << 10);
        let (mut a, mut b) = (inbound(&metrics), inbound(&metrics));

        // A takes 400 KiB of the 600 KiB.
        start(&mut a, &contexts, &config);
        assert!(matches!(
            data(&mut a, 400 << 10, false, &contexts, &config),
            Step::Nothing
        ));
        let held_by_a = receiving(&metrics);
        assert!((400 << 10..=600 << 10).contains(&held_by_a), "{held_by_a}");

        // B cannot get 300 KiB more: it drains its data set and is answered out of resources,
        // holding nothing; A is not disturbed.
        start(&mut b, &contexts, &config);
        assert!(matches!(
            data(&mut b, 300 << 10, false, &contexts, &config),
            Step::Nothing
        ));
        let Step::Message(refused) = data(&mut b, 10, true, &contexts, &config) else {
            panic!("B's message did not complete");
        };
        assert!(refused.no_room && refused.data.is_none() && refused.held.is_none());
        assert_eq!(receiving(&metrics), held_by_a);

        // A completes with all its bytes; its share is held until the store has answered
        // (the message is dropped), then given back.
        let Step::Message(stored) = data(&mut a, 100, true, &contexts, &config) else {
            panic!("A's message did not complete");
        };
        assert!(!stored.no_room && !stored.too_large);
        let envelope = meta::envelope(
            CT,
            "1.2.3.4",
            EXPLICIT_LE,
            &config.implementation_class_uid,
            &config.implementation_version_name,
        )
        .len();
        assert_eq!(
            stored.data.as_ref().map(Vec::len),
            Some(envelope + (400 << 10) + 100)
        );
        assert!(
            receiving(&metrics) >= stored.data.as_ref().unwrap().len() as u64 - envelope as u64
        );
        drop(stored);
        assert_eq!(receiving(&metrics), 0);

        // With A's memory back, B's next instance fits.
        start(&mut b, &contexts, &config);
        let Step::Message(next) = data(&mut b, 300 << 10, true, &contexts, &config) else {
            panic!("B's second message did not complete");
        };
        assert!(!next.no_room && next.data.is_some());
        drop(next);
        assert_eq!(receiving(&metrics), 0);
    }

    #[test]
    fn the_next_instance_starts_as_large_as_the_last_and_is_not_copied_as_it_grows() {
        let (config, contexts, metrics) = setup(1 << 20, 1 << 30);
        let mut a = inbound(&metrics);
        start(&mut a, &contexts, &config);
        let Step::Message(first) = data(&mut a, 300 << 10, true, &contexts, &config) else {
            panic!("message did not complete");
        };
        drop(first);
        assert_eq!(receiving(&metrics), 0);

        // The second instance's buffer is sized (and its share taken) at its command.
        start(&mut a, &contexts, &config);
        let pending = a.pending.as_ref().unwrap();
        let buffer = pending.data.as_ref().unwrap();
        let envelope = buffer.len();
        assert!(buffer.capacity() >= envelope + (300 << 10));
        assert!(receiving(&metrics) >= 300 << 10);
        let at = buffer.as_ptr();
        for _ in 0..2 {
            assert!(matches!(
                data(&mut a, 100 << 10, false, &contexts, &config),
                Step::Nothing
            ));
        }
        let Step::Message(second) = data(&mut a, 100 << 10, true, &contexts, &config) else {
            panic!("message did not complete");
        };
        let buffer = second.data.as_ref().unwrap();
        assert_eq!(buffer.len(), envelope + (300 << 10));
        assert_eq!(buffer.as_ptr(), at, "the buffer was reallocated");
        drop(second);
        assert_eq!(receiving(&metrics), 0);

        // When the receive memory cannot hold the hint, nothing is reserved up front and the
        // instance still arrives whole.
        let (config, contexts, metrics) = setup(1 << 20, 200 << 10);
        let mut b = inbound(&metrics);
        b.size_hint = 300 << 10;
        start(&mut b, &contexts, &config);
        assert_eq!(receiving(&metrics), 0);
        let Step::Message(m) = data(&mut b, 100 << 10, true, &contexts, &config) else {
            panic!("message did not complete");
        };
        assert!(!m.no_room && m.data.is_some());
    }

    #[test]
    fn a_buffer_never_grows_past_the_largest_instance() {
        let (config, contexts, metrics) = setup(1000 << 10, 1 << 30);
        let mut a = inbound(&metrics);
        start(&mut a, &contexts, &config);
        // Doubling from 600 KiB would ask for 1200 KiB; the ceiling is the envelope + 1000 KiB.
        assert!(matches!(
            data(&mut a, 600 << 10, false, &contexts, &config),
            Step::Nothing
        ));
        let Step::Message(m) = data(&mut a, 400 << 10, true, &contexts, &config) else {
            panic!("message did not complete");
        };
        let data = m.data.as_ref().unwrap();
        assert!(
            data.capacity() - data.len() < 64 << 10,
            "capacity {} for {}",
            data.capacity(),
            data.len()
        );
        assert!(receiving(&metrics) <= (1000 << 10) + (64 << 10));
    }

    #[test]
    fn a_data_set_over_the_instance_limit_gives_its_share_back_at_once() {
        let (config, contexts, metrics) = setup(100 << 10, 1 << 30);
        let mut a = inbound(&metrics);
        start(&mut a, &contexts, &config);
        assert!(matches!(
            data(&mut a, 80 << 10, false, &contexts, &config),
            Step::Nothing
        ));
        assert!(receiving(&metrics) > 0);
        assert!(matches!(
            data(&mut a, 80 << 10, false, &contexts, &config),
            Step::Nothing
        ));
        assert_eq!(receiving(&metrics), 0);
        let Step::Message(m) = data(&mut a, 1, true, &contexts, &config) else {
            panic!("message did not complete");
        };
        assert!(m.too_large && m.data.is_none());
    }
}
