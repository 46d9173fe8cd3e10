//! Reads from the peer once the association is established. The association loop reads each
//! PDU header and PDV item header itself and the PDV's bytes straight to where they belong (the
//! command set, the instance's buffer, or nowhere), so a data set arrives in its buffer with
//! the one copy out of the socket; dicom-ul's reader would copy each PDU into a buffer of its
//! own and each PDV into a vector of its own first. Every read is bounded by a deadline (the
//! idle timeout, per PDU), and the errors are short reasons for the log.

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::time::{timeout_at, Instant};

/// PDU types (PS3.8 §9.3).
pub(crate) const P_DATA_TF: u8 = 0x04;
pub(crate) const A_RELEASE_RQ: u8 = 0x05;
pub(crate) const A_ABORT: u8 = 0x07;

const TIMEOUT: &str = "nothing received within the idle timeout";
const CLOSED: &str = "connection closed by the peer";
const FAILED: &str = "could not read from the connection";

/// Fills `buf` from `stream` before `deadline`.
pub(crate) async fn read_exact<R: AsyncRead + Unpin>(
    stream: &mut R,
    buf: &mut [u8],
    deadline: Instant,
) -> Result<(), &'static str> {
    match timeout_at(deadline, stream.read_exact(buf)).await {
        Err(_) => Err(TIMEOUT),
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(CLOSED),
        Ok(Err(_)) => Err(FAILED),
    }
}

/// Appends the next `n` bytes of `stream` to `buf` before `deadline`, reading into `buf`'s
/// spare capacity (reserve it first to keep `buf` where it is).
pub(crate) async fn read_append<R: AsyncRead + Unpin>(
    stream: &mut R,
    buf: &mut Vec<u8>,
    n: usize,
    deadline: Instant,
) -> Result<(), &'static str> {
    let end = buf.len() + n;
    let mut limited = stream.take(n as u64);
    while buf.len() < end {
        match timeout_at(deadline, limited.read_buf(buf)).await {
            Err(_) => return Err(TIMEOUT),
            Ok(Ok(0)) => return Err(CLOSED),
            Ok(Ok(_)) => {}
            Ok(Err(_)) => return Err(FAILED),
        }
    }
    Ok(())
}

/// Reads and drops the next `n` bytes of `stream` before `deadline`.
pub(crate) async fn skip<R: AsyncRead + Unpin>(
    stream: &mut R,
    n: usize,
    deadline: Instant,
) -> Result<(), &'static str> {
    let mut scratch = [0u8; 16 << 10];
    let mut left = n;
    while left > 0 {
        let chunk = left.min(scratch.len());
        read_exact(stream, &mut scratch[..chunk], deadline).await?;
        left -= chunk;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::AsyncWriteExt;

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(10)
    }

    #[tokio::test]
    async fn reads_exactly_what_is_asked_across_partial_writes() {
        let (mut tx, mut rx) = tokio::io::duplex(8);
        let writer = tokio::spawn(async move {
            for chunk in [&b"abc"[..], b"defgh", b"ijklmnop", b"qrst"] {
                tx.write_all(chunk).await.unwrap();
            }
            tx
        });
        let mut head = [0u8; 2];
        read_exact(&mut rx, &mut head, soon()).await.unwrap();
        assert_eq!(&head, b"ab");
        let mut buf = Vec::with_capacity(64);
        buf.extend_from_slice(b"XY");
        let at = buf.as_ptr();
        read_append(&mut rx, &mut buf, 10, soon()).await.unwrap();
        assert_eq!(buf, b"XYcdefghijkl");
        assert_eq!(buf.as_ptr(), at, "read into the reserved capacity");
        skip(&mut rx, 5, soon()).await.unwrap();
        let mut tail = [0u8; 3];
        read_exact(&mut rx, &mut tail, soon()).await.unwrap();
        assert_eq!(&tail, b"rst");
        drop(writer.await.unwrap());
    }

    #[tokio::test]
    async fn a_closed_or_silent_peer_is_an_error_named_as_such() {
        let (tx, mut rx) = tokio::io::duplex(64);
        drop(tx);
        let mut buf = Vec::new();
        assert_eq!(read_append(&mut rx, &mut buf, 4, soon()).await, Err(CLOSED));
        let mut head = [0u8; 6];
        assert_eq!(read_exact(&mut rx, &mut head, soon()).await, Err(CLOSED));

        let (_tx, mut rx) = tokio::io::duplex(64);
        let past = Instant::now() + Duration::from_millis(20);
        assert_eq!(read_exact(&mut rx, &mut head, past).await, Err(TIMEOUT));
        assert_eq!(skip(&mut rx, 100, past).await, Err(TIMEOUT));
        assert_eq!(read_append(&mut rx, &mut buf, 4, past).await, Err(TIMEOUT));
    }
}
