//! A streaming `multipart/related` reader ([`PartStream`]) and writer ([`encode_parts`]).
//!
//! The reader holds at most the part being read plus one incoming chunk: a
//! request body is never collected whole. It follows RFC 2046 §5.1.1: the
//! delimiter is `CRLF--boundary` (the very first one may start the body with
//! no CRLF before it), a preamble before it and an epilogue after the closing
//! `--boundary--` are ignored, transport padding (spaces, tabs) may follow a
//! delimiter before its CRLF. Line ends must be CRLF: a delimiter preceded by a
//! bare LF is part of the body, as the RFC says.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use futures_util::Stream;
use memchr::memmem;

/// One body part, as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// The part's header fields in order, names as sent, values trimmed
    /// (folded lines joined with a space).
    pub headers: Vec<(String, String)>,
    /// The part's `Content-Type`, when it has one.
    pub content_type: Option<String>,
    /// The part's body: everything between its header block and the next delimiter.
    pub body: Bytes,
}

impl Part {
    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Bounds on what one request may make the reader hold or do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest part body, in bytes.
    pub max_part_bytes: usize,
    /// Largest header block of one part (and longest transport padding after a delimiter), in bytes.
    pub max_header_bytes: usize,
    /// Most parts in one body.
    pub max_parts: usize,
}

impl Default for Limits {
    /// 1 GiB parts, 16 KiB of headers, 10 000 parts.
    fn default() -> Self {
        Self {
            max_part_bytes: 1 << 30,
            max_header_bytes: 16 << 10,
            max_parts: 10_000,
        }
    }
}

/// Why a part (or the rest of the body) could not be read.
///
/// Errors are either **recoverable** — the part named fails alone, the reader
/// skips to the next delimiter and the stream goes on yielding parts — or
/// **fatal** — the stream yields this error and then ends. See
/// [`PartError::is_recoverable`].
#[derive(Debug)]
pub enum PartError<E> {
    /// Part `index` (0-based) is larger than `max_part_bytes`, or its
    /// `Content-Length` says it is. Recoverable.
    PartTooLarge {
        /// 0-based part number.
        index: usize,
    },
    /// Part `index`'s header block is larger than `max_header_bytes`. Recoverable.
    HeadersTooLarge {
        /// 0-based part number.
        index: usize,
    },
    /// The body breaks the multipart syntax at part `index`.
    /// Recoverable when it concerns one part's headers; fatal when the
    /// delimiters themselves are lost (no delimiter at all, the body ends
    /// inside a part, garbage after a delimiter).
    Malformed {
        /// 0-based part number (the one being read when it went wrong).
        index: usize,
        /// What was wrong, as a fixed phrase (never body content).
        what: &'static str,
        /// Whether the stream continues after this error.
        recoverable: bool,
    },
    /// The body has more than `max_parts` parts. Fatal: nothing after the limit is read.
    TooManyParts,
    /// The underlying body stream failed. Fatal.
    Body(E),
}

impl<E> PartError<E> {
    /// Whether the stream goes on to the next part after this error.
    pub fn is_recoverable(&self) -> bool {
        match self {
            Self::PartTooLarge { .. } | Self::HeadersTooLarge { .. } => true,
            Self::Malformed { recoverable, .. } => *recoverable,
            Self::TooManyParts | Self::Body(_) => false,
        }
    }

    /// The 0-based part this error belongs to, when it belongs to one.
    pub fn index(&self) -> Option<usize> {
        match self {
            Self::PartTooLarge { index }
            | Self::HeadersTooLarge { index }
            | Self::Malformed { index, .. } => Some(*index),
            Self::TooManyParts | Self::Body(_) => None,
        }
    }
}

impl<E: fmt::Display> fmt::Display for PartError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PartTooLarge { index } => write!(f, "Part {index} is larger than the limit"),
            Self::HeadersTooLarge { index } => {
                write!(f, "Part {index} has a header block larger than the limit")
            }
            Self::Malformed { index, what, .. } => {
                write!(f, "Malformed multipart body at part {index}: {what}")
            }
            Self::TooManyParts => write!(f, "The body has more parts than the limit"),
            Self::Body(e) => write!(f, "Could not read the request body: {e}"),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for PartError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Body(e) => Some(e),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Looking for the first delimiter.
    Preamble,
    /// Just past a delimiter: `--` (close), or padding then CRLF.
    AfterDelimiter,
    /// Reading a part's header block.
    Headers,
    /// Reading a part's body up to the next delimiter.
    Body,
    /// Discarding an oversized or broken part up to the next delimiter.
    Skipping,
    /// Finished (closing delimiter, fatal error, or end of input).
    Done,
}

/// Reads a `multipart/related` body part by part as it streams in.
///
/// ```
/// # use bytes::Bytes;
/// # use futures_util::{stream, StreamExt};
/// # use dicom_deid_dicomweb::{encode_parts, Limits, PartStream};
/// # futures_executor::block_on(async {
/// let body = encode_parts("b0undary", &[("application/dicom", b"DICM...")]);
/// let chunks = stream::iter([Ok::<_, std::io::Error>(body)]);
/// let mut parts = PartStream::new(chunks, "b0undary", Limits::default());
/// let part = parts.next().await.unwrap().unwrap();
/// assert_eq!(part.content_type.as_deref(), Some("application/dicom"));
/// assert!(parts.next().await.is_none());
/// # });
/// ```
///
/// After an error, keep polling: a recoverable error is followed by the next
/// part; a fatal one by the end of the stream.
pub struct PartStream<S> {
    inner: S,
    /// Finds `CRLF--boundary`.
    delimiter: memmem::Finder<'static>,
    limits: Limits,
    /// Unconsumed input. In `Body` it holds the current part's bytes so far.
    buf: BytesMut,
    /// In `Body`/`Skipping`/`Preamble`: where the next delimiter search starts.
    scan_from: usize,
    phase: Phase,
    /// Number of the part being read (0-based); equals the count of parts started.
    index: usize,
    headers: Vec<(String, String)>,
    /// The current part's declared `Content-Length`: its body may not be longer.
    declared: Option<usize>,
    /// Whether [`PartStream::next_event`] is in use: stop with [`Event::Head`] after each
    /// part's header block.
    announce: bool,
    eof: bool,
}

/// What [`PartStream::next_event`] yields: a part's head before its body is read, then the
/// part (or error) as the [`Stream`] would yield it.
#[derive(Debug)]
pub enum Event<E> {
    /// A part's header block was read and its body comes next. `declared_len` is the part's
    /// own `Content-Length`, when it has one (its body is refused if longer). The caller can
    /// make room for the body before polling on; at most one incoming chunk of it is held.
    Head {
        /// The part's declared body length.
        declared_len: Option<usize>,
    },
    /// The next item of the stream.
    Item(Result<Part, PartError<E>>),
}

impl<S> PartStream<S> {
    /// A reader of `body` with the given boundary (from [`crate::parse_content_type`]).
    pub fn new(body: S, boundary: &str, limits: Limits) -> Self {
        let mut delimiter = b"\r\n--".to_vec();
        delimiter.extend_from_slice(boundary.as_bytes());
        // A virtual CRLF lets the first delimiter start the body without one.
        let mut buf = BytesMut::with_capacity(8 << 10);
        buf.extend_from_slice(b"\r\n");
        Self {
            inner: body,
            delimiter: memmem::Finder::new(&delimiter).into_owned(),
            limits,
            buf,
            scan_from: 0,
            phase: Phase::Preamble,
            index: 0,
            headers: Vec::new(),
            declared: None,
            announce: false,
            eof: false,
        }
    }

    /// Makes room for `len` more bytes in one allocation, so that a part's body of a known
    /// (or bounded) length is not gathered through a chain of regrown buffers: after an
    /// [`Event::Head`], with the length the caller made room for. Untouched room costs address
    /// space, not memory.
    pub fn reserve_body(&mut self, len: usize) {
        self.buf.reserve(len);
    }

    /// How many parts have been started so far (successful or not).
    pub fn parts_seen(&self) -> usize {
        self.index
    }

    fn fatal<E>(&mut self, what: &'static str) -> Step<E> {
        self.phase = Phase::Done;
        self.buf = BytesMut::new();
        Step::Yield(PartError::Malformed {
            index: self.index,
            what,
            recoverable: false,
        })
    }

    /// Fails a part whose body runs past its declared `Content-Length`.
    fn longer_than_declared<E>(&mut self) -> Step<E> {
        let index = self.index;
        self.skip_part(PartError::Malformed {
            index,
            what: "the part's body is longer than its Content-Length",
            recoverable: true,
        })
    }

    /// Fails the current part and skips to the next delimiter.
    fn skip_part<E>(&mut self, err: PartError<E>) -> Step<E> {
        self.phase = Phase::Skipping;
        self.scan_from = 0;
        self.headers.clear();
        self.index += 1;
        Step::Yield(err)
    }

    /// Advances on buffered input as far as possible.
    fn step<E>(&mut self) -> Step<E> {
        let dlen = self.delimiter.needle().len();
        loop {
            match self.phase {
                Phase::Done => return Step::Done,
                Phase::Preamble => {
                    match self.delimiter.find(&self.buf[self.scan_from..]) {
                        Some(at) => {
                            self.buf.advance(self.scan_from + at + dlen);
                            self.phase = Phase::AfterDelimiter;
                        }
                        None if self.eof => {
                            return self.fatal("no boundary delimiter in the body");
                        }
                        None => {
                            // Keep only what could be the start of a delimiter.
                            let keep = self.buf.len().min(dlen - 1);
                            self.buf.advance(self.buf.len() - keep);
                            self.scan_from = 0;
                            return Step::NeedMore;
                        }
                    }
                }
                Phase::AfterDelimiter => {
                    if self.buf.len() < 2 && !self.eof {
                        return Step::NeedMore;
                    }
                    if self.buf.starts_with(b"--") {
                        // Closing delimiter: the rest is epilogue.
                        self.phase = Phase::Done;
                        self.buf = BytesMut::new();
                        return Step::Done;
                    }
                    match memmem::find(&self.buf, b"\r\n") {
                        Some(at) => {
                            if !self.buf[..at].iter().all(|&b| b == b' ' || b == b'\t') {
                                return self.fatal("unexpected characters after a delimiter");
                            }
                            self.buf.advance(at + 2);
                            if self.index >= self.limits.max_parts {
                                self.phase = Phase::Done;
                                self.buf = BytesMut::new();
                                return Step::Yield(PartError::TooManyParts);
                            }
                            self.phase = Phase::Headers;
                        }
                        None if self.eof => {
                            // A body that stops after the last delimiter,
                            // without the closing `--`: accepted as the end.
                            if self.buf.iter().all(|&b| b == b' ' || b == b'\t') {
                                self.phase = Phase::Done;
                                return Step::Done;
                            }
                            return self.fatal("unexpected characters after a delimiter");
                        }
                        None if self.buf.len() > self.limits.max_header_bytes => {
                            return self.fatal("unexpected characters after a delimiter");
                        }
                        None => return Step::NeedMore,
                    }
                }
                Phase::Headers => {
                    let end = if self.buf.starts_with(b"\r\n") {
                        Some(0)
                    } else {
                        memmem::find(&self.buf, b"\r\n\r\n").map(|at| at + 2)
                    };
                    match end {
                        Some(end) if end > self.limits.max_header_bytes => {
                            return self
                                .skip_part(PartError::HeadersTooLarge { index: self.index });
                        }
                        Some(end) => {
                            let block = self.buf.split_to(end);
                            self.buf.advance(2);
                            match parse_headers(&block) {
                                Ok(h) => {
                                    // A declared length over the limit (RFC 2046 needs
                                    // none; Orthanc and `encode_parts` send one) fails the
                                    // part before its bytes arrive. It is not used to
                                    // size the buffer: memory follows bytes received,
                                    // not bytes promised.
                                    let declared = h
                                        .iter()
                                        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                                        .and_then(|(_, v)| v.parse::<usize>().ok());
                                    if declared.is_some_and(|n| n > self.limits.max_part_bytes) {
                                        return self.skip_part(PartError::PartTooLarge {
                                            index: self.index,
                                        });
                                    }
                                    self.headers = h;
                                    self.phase = Phase::Body;
                                    self.scan_from = 0;
                                    self.declared = declared;
                                    if self.announce {
                                        return Step::Head(declared);
                                    }
                                }
                                Err(what) => {
                                    let index = self.index;
                                    return self.skip_part(PartError::Malformed {
                                        index,
                                        what,
                                        recoverable: true,
                                    });
                                }
                            }
                        }
                        None if self.eof && self.buf.is_empty() => {
                            // `--boundary CRLF` then nothing: the closing `--` is missing.
                            self.phase = Phase::Done;
                            return Step::Done;
                        }
                        None if self.eof => {
                            return self.fatal("the body ends inside a part's headers");
                        }
                        None if self.buf.len() > self.limits.max_header_bytes + 2 => {
                            return self
                                .skip_part(PartError::HeadersTooLarge { index: self.index });
                        }
                        None => return Step::NeedMore,
                    }
                }
                Phase::Body => match self.delimiter.find(&self.buf[self.scan_from..]) {
                    Some(at) => {
                        let at = self.scan_from + at;
                        if at > self.limits.max_part_bytes {
                            self.buf.advance(at);
                            return self.skip_part(PartError::PartTooLarge { index: self.index });
                        }
                        if self.declared.is_some_and(|n| at > n) {
                            self.buf.advance(at);
                            return self.longer_than_declared();
                        }
                        let body = self.buf.split_to(at).freeze();
                        self.buf.advance(dlen);
                        self.phase = Phase::AfterDelimiter;
                        self.index += 1;
                        let headers = std::mem::take(&mut self.headers);
                        let content_type = headers
                            .iter()
                            .find(|(n, _)| n.eq_ignore_ascii_case("content-type"))
                            .map(|(_, v)| v.clone());
                        return Step::Part(Part {
                            headers,
                            content_type,
                            body,
                        });
                    }
                    None if self.eof => {
                        return self.fatal("the body ends inside a part (no delimiter after it)");
                    }
                    None => {
                        let safe = self.buf.len().saturating_sub(dlen - 1);
                        if safe > self.limits.max_part_bytes {
                            self.buf.advance(safe);
                            return self.skip_part(PartError::PartTooLarge { index: self.index });
                        }
                        if self.declared.is_some_and(|n| safe > n) {
                            self.buf.advance(safe);
                            return self.longer_than_declared();
                        }
                        self.scan_from = safe;
                        return Step::NeedMore;
                    }
                },
                Phase::Skipping => {
                    match self.delimiter.find(&self.buf) {
                        Some(at) => {
                            self.buf.advance(at + dlen);
                            self.phase = Phase::AfterDelimiter;
                        }
                        None if self.eof => {
                            // The failed part was already reported; nothing more to read.
                            self.phase = Phase::Done;
                            self.buf = BytesMut::new();
                            return Step::Done;
                        }
                        None => {
                            let keep = self.buf.len().min(dlen - 1);
                            self.buf.advance(self.buf.len() - keep);
                            return Step::NeedMore;
                        }
                    }
                }
            }
        }
    }
}

enum Step<E> {
    Part(Part),
    Yield(PartError<E>),
    /// A part's headers are read (only with `announce`).
    Head(Option<usize>),
    NeedMore,
    Done,
}

impl<S, E> PartStream<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    /// The next part's head ([`Event::Head`], before its body is read), then the part or error
    /// the [`Stream`] yields; `None` at the end. Once this is used, use it for every item.
    pub async fn next_event(&mut self) -> Option<Event<E>> {
        self.announce = true;
        std::future::poll_fn(|cx| self.poll_event(cx)).await
    }

    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<Event<E>>> {
        loop {
            match self.step() {
                Step::Part(p) => return Poll::Ready(Some(Event::Item(Ok(p)))),
                Step::Yield(e) => return Poll::Ready(Some(Event::Item(Err(e)))),
                Step::Head(declared_len) => return Poll::Ready(Some(Event::Head { declared_len })),
                Step::Done => return Poll::Ready(None),
                Step::NeedMore => {}
            }
            match Pin::new(&mut self.inner).poll_next(cx) {
                Poll::Ready(Some(Ok(chunk))) => self.buf.extend_from_slice(&chunk),
                Poll::Ready(Some(Err(e))) => {
                    self.phase = Phase::Done;
                    self.buf = BytesMut::new();
                    return Poll::Ready(Some(Event::Item(Err(PartError::Body(e)))));
                }
                Poll::Ready(None) => self.eof = true,
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl<S, E> Stream for PartStream<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    type Item = Result<Part, PartError<E>>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            match this.poll_event(cx) {
                Poll::Ready(Some(Event::Head { .. })) => continue,
                Poll::Ready(Some(Event::Item(item))) => return Poll::Ready(Some(item)),
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

/// Parses a header block (lines ending in CRLF, the blank line excluded).
fn parse_headers(block: &[u8]) -> Result<Vec<(String, String)>, &'static str> {
    let text = std::str::from_utf8(block).map_err(|_| "part headers are not UTF-8")?;
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in text.split("\r\n").filter(|l| !l.is_empty()) {
        if line.starts_with([' ', '\t']) {
            let (_, value) = headers
                .last_mut()
                .ok_or("a continuation line before any header")?;
            value.push(' ');
            value.push_str(line.trim());
            continue;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or("a header line without a colon")?;
        if name.is_empty() || name.trim() != name {
            return Err("a header line with a malformed name");
        }
        headers.push((name.to_string(), value.trim().to_string()));
    }
    Ok(headers)
}

/// A fresh random boundary: `dicom-deid-` and 32 hexadecimal digits (128 bits,
/// so it never occurs in a body by chance).
pub fn new_boundary() -> String {
    let mut raw = [0u8; 16];
    getrandom::fill(&mut raw).expect("the operating system's random source is available");
    let mut s = String::from("dicom-deid-");
    for b in raw {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Encodes parts as a `multipart/related` body: each part gets its
/// `Content-Type` and `Content-Length`, the body ends with the closing
/// delimiter. The caller sends it with
/// `Content-Type: multipart/related; type="application/dicom"; boundary={boundary}`.
///
/// The boundary must not occur in any body: use [`new_boundary`].
pub fn encode_parts(boundary: &str, parts: &[(&str, &[u8])]) -> Bytes {
    let mut out = BytesMut::with_capacity(
        parts.iter().map(|(_, b)| b.len() + 128).sum::<usize>() + boundary.len() + 8,
    );
    for (content_type, body) in parts {
        out.extend_from_slice(&part_head(boundary, content_type, body.len()));
        out.extend_from_slice(body);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(&closing(boundary));
    out.freeze()
}

/// The delimiter line and header block that precede a part's body.
pub(crate) fn part_head(boundary: &str, content_type: &str, len: usize) -> Bytes {
    Bytes::from(format!(
        "--{boundary}\r\nContent-Type: {content_type}\r\nContent-Length: {len}\r\n\r\n"
    ))
}

/// The closing delimiter line.
pub(crate) fn closing(boundary: &str) -> Bytes {
    Bytes::from(format!("--{boundary}--\r\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_executor::block_on;
    use futures_util::{stream, StreamExt};

    type Item = Result<Part, PartError<std::io::Error>>;

    fn read_chunked(body: &[u8], chunk: usize, boundary: &str, limits: Limits) -> Vec<Item> {
        let chunks: Vec<Result<Bytes, std::io::Error>> = body
            .chunks(chunk.max(1))
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        block_on(PartStream::new(stream::iter(chunks), boundary, limits).collect())
    }

    #[test]
    fn events_announce_each_part_before_its_body_and_a_body_past_its_length_fails_alone() {
        let mut body = encode_parts("b", &[("application/dicom", b"first")]).to_vec();
        body.truncate(body.len() - b"--b--\r\n".len());
        body.extend_from_slice(b"--b\r\nContent-Length: 2\r\n\r\nlonger\r\n");
        body.extend_from_slice(b"--b\r\n\r\nthird\r\n--b--\r\n");
        for chunk in [1, 3, body.len()] {
            let chunks: Vec<Result<Bytes, std::io::Error>> = body
                .chunks(chunk)
                .map(|c| Ok(Bytes::copy_from_slice(c)))
                .collect();
            let mut parts = PartStream::new(stream::iter(chunks), "b", Limits::default());
            let mut seen = Vec::new();
            block_on(async {
                while let Some(event) = parts.next_event().await {
                    seen.push(match event {
                        Event::Head { declared_len } => format!("head {declared_len:?}"),
                        Event::Item(Ok(p)) => {
                            format!("part {}", String::from_utf8_lossy(&p.body))
                        }
                        Event::Item(Err(e)) => format!("error {}", e.is_recoverable()),
                    });
                }
            });
            assert_eq!(
                seen,
                [
                    "head Some(5)",
                    "part first",
                    "head Some(2)",
                    "error true",
                    "head None",
                    "part third"
                ],
                "chunks of {chunk}"
            );
        }
    }

    /// `Ok(body)` for parts, `Err(description)` for errors, to compare runs.
    fn summary(items: &[Item]) -> Vec<Result<Vec<u8>, String>> {
        items
            .iter()
            .map(|i| match i {
                Ok(p) => Ok(p.body.to_vec()),
                Err(e) => Err(e.to_string()),
            })
            .collect()
    }

    const BODY: &[u8] = b"preamble text\r\n\
--XyZ  \t\r\n\
Content-Type: application/dicom\r\n\
X-Folded: one\r\n two\r\n\
\r\n\
first\r\n--XyZnot a delimiter? no: this is inside\r\n-XyZ\r\n--Xy\r\n\
--XyZ\r\n\
\r\n\
\r\n\
--XyZ\r\n\
content-type: application/dicom; transfer-syntax=1.2.840.10008.1.2.1\r\n\
\r\n\
third\r\n\
--XyZ--\r\n\
epilogue --XyZ\r\n garbage";

    #[test]
    fn every_chunk_size_gives_the_same_parts() {
        // Preamble, padding, folded headers, an empty part, near-delimiters and
        // (see the next test) a fatal error: every chunking must see the same.
        let body = BODY.to_vec();
        let whole = read_chunked(&body, body.len(), "XyZ", Limits::default());
        let want = summary(&whole);
        for size in 1..=body.len() {
            let got = read_chunked(&body, size, "XyZ", Limits::default());
            assert_eq!(summary(&got), want, "chunk size {size}");
        }
    }

    #[test]
    fn a_delimiter_prefix_inside_a_line_is_fatal_garbage() {
        // `CRLF--XyZnot…` *is* a delimiter per RFC 2046 followed by characters
        // that are not padding: the body is broken from there.
        let got = read_chunked(BODY, 7, "XyZ", Limits::default());
        assert!(matches!(
            got.last(),
            Some(Err(PartError::Malformed {
                index: 1,
                recoverable: false,
                ..
            }))
        ));
        let first = got[0].as_ref().unwrap();
        assert_eq!(&first.body[..], b"first");
        assert_eq!(first.header("x-folded"), Some("one two"));
    }

    fn good_body() -> Vec<u8> {
        let mut b = b"ignored preamble\r\n".to_vec();
        b.extend_from_slice(&encode_parts(
            "b-1",
            &[
                ("application/dicom", b"alpha\r\n--b-"),
                ("application/dicom", b""),
                ("text/plain", b"\r\n--b-\r\n\r\n--b"),
            ],
        ));
        b.extend_from_slice(b"epilogue");
        b
    }

    #[test]
    fn chunk_sizes_one_to_n() {
        let body = good_body();
        for size in 1..=body.len() {
            let got = read_chunked(&body, size, "b-1", Limits::default());
            let parts: Vec<_> = got.into_iter().map(|r| r.unwrap()).collect();
            assert_eq!(parts.len(), 3, "chunk size {size}");
            assert_eq!(&parts[0].body[..], b"alpha\r\n--b-");
            assert_eq!(&parts[1].body[..], b"");
            assert_eq!(&parts[2].body[..], b"\r\n--b-\r\n\r\n--b");
            assert_eq!(parts[2].content_type.as_deref(), Some("text/plain"));
            assert_eq!(parts[0].header("content-length"), Some("11"));
        }
    }

    #[test]
    fn oversized_part_fails_alone() {
        let big = vec![7u8; 1000];
        let body = encode_parts(
            "bb",
            &[
                ("application/dicom", b"small"),
                ("application/dicom", &big),
                ("application/dicom", b"after"),
            ],
        );
        let limits = Limits {
            max_part_bytes: 100,
            ..Limits::default()
        };
        for size in [1, 3, 64, 99, 100, 101, 4096] {
            let got = read_chunked(&body, size, "bb", limits);
            assert_eq!(got.len(), 3, "chunk size {size}");
            assert_eq!(&got[0].as_ref().unwrap().body[..], b"small");
            let err = got[1].as_ref().unwrap_err();
            assert!(matches!(err, PartError::PartTooLarge { index: 1 }));
            assert!(err.is_recoverable());
            assert_eq!(&got[2].as_ref().unwrap().body[..], b"after");
        }
    }

    #[test]
    fn declared_length_over_the_limit_fails_early() {
        let body = b"--b\r\nContent-Length: 1000\r\n\r\nshort\r\n--b\r\n\r\nok\r\n--b--";
        let limits = Limits {
            max_part_bytes: 100,
            ..Limits::default()
        };
        let got = read_chunked(body, 3, "b", limits);
        assert!(matches!(got[0], Err(PartError::PartTooLarge { index: 0 })));
        assert_eq!(&got[1].as_ref().unwrap().body[..], b"ok");
        assert_eq!(got.len(), 2);
    }

    #[test]
    fn part_of_exactly_the_limit_passes() {
        let body = encode_parts("bb", &[("application/dicom", &[1u8; 100])]);
        let limits = Limits {
            max_part_bytes: 100,
            ..Limits::default()
        };
        for size in 1..=body.len() {
            let got = read_chunked(&body, size, "bb", limits);
            assert_eq!(got.len(), 1);
            assert_eq!(got[0].as_ref().unwrap().body.len(), 100, "chunk {size}");
        }
    }

    #[test]
    fn bad_headers_fail_alone() {
        let body = b"--b\r\nno colon here\r\n\r\nx\r\n--b\r\nContent-Type: a/b\r\n\r\ny\r\n--b--";
        let got = read_chunked(body, 5, "b", Limits::default());
        assert_eq!(got.len(), 2);
        assert!(matches!(
            got[0],
            Err(PartError::Malformed {
                index: 0,
                recoverable: true,
                ..
            })
        ));
        assert_eq!(&got[1].as_ref().unwrap().body[..], b"y");
    }

    #[test]
    fn oversized_headers_fail_alone() {
        let mut body = b"--b\r\nX-Long: ".to_vec();
        body.extend(std::iter::repeat_n(b'a', 500));
        body.extend_from_slice(b"\r\n\r\nx\r\n--b\r\n\r\ny\r\n--b--\r\n");
        let limits = Limits {
            max_header_bytes: 100,
            ..Limits::default()
        };
        for size in [1, 7, 1000] {
            let got = read_chunked(&body, size, "b", limits);
            assert_eq!(got.len(), 2, "chunk {size}");
            assert!(matches!(
                got[0],
                Err(PartError::HeadersTooLarge { index: 0 })
            ));
            assert_eq!(&got[1].as_ref().unwrap().body[..], b"y");
        }
    }

    #[test]
    fn too_many_parts_is_fatal() {
        let body = encode_parts("b", &[("a/b", b"1"), ("a/b", b"2"), ("a/b", b"3")]);
        let limits = Limits {
            max_parts: 2,
            ..Limits::default()
        };
        let got = read_chunked(&body, 4, "b", limits);
        assert_eq!(got.len(), 3);
        assert!(got[0].is_ok() && got[1].is_ok());
        assert!(matches!(got[2], Err(PartError::TooManyParts)));
    }

    #[test]
    fn missing_final_dashes_is_accepted() {
        for body in [
            &b"--b\r\n\r\none\r\n--b"[..],
            b"--b\r\n\r\none\r\n--b\r\n",
            b"--b\r\n\r\none\r\n--b  ",
        ] {
            for size in 1..=body.len() {
                let got = read_chunked(body, size, "b", Limits::default());
                assert_eq!(got.len(), 1, "{size}");
                assert_eq!(&got[0].as_ref().unwrap().body[..], b"one");
            }
        }
    }

    #[test]
    fn truncated_and_empty_bodies_are_fatal() {
        let got = read_chunked(b"--b\r\n\r\nhalf a part", 3, "b", Limits::default());
        assert!(matches!(
            got.as_slice(),
            [Err(PartError::Malformed {
                index: 0,
                recoverable: false,
                ..
            })]
        ));
        let got = read_chunked(b"no delimiter at all", 3, "b", Limits::default());
        assert!(matches!(got.as_slice(), [Err(PartError::Malformed { .. })]));
        let got = read_chunked(b"--b\r\nContent-Type: a", 3, "b", Limits::default());
        assert!(matches!(got.as_slice(), [Err(PartError::Malformed { .. })]));
        let got = read_chunked(b"", 3, "b", Limits::default());
        assert!(matches!(got.as_slice(), [Err(PartError::Malformed { .. })]));
    }

    #[test]
    fn lf_only_delimiters_are_body_content() {
        let body = b"--b\r\n\r\na\n--b\nb\r\n--b--\r\n";
        let got = read_chunked(body, 2, "b", Limits::default());
        assert_eq!(&got[0].as_ref().unwrap().body[..], b"a\n--b\nb");
    }

    #[test]
    fn a_body_error_ends_the_stream() {
        let chunks = vec![
            Ok(Bytes::from_static(b"--b\r\n\r\nab")),
            Err(std::io::Error::other("reset")),
            Ok(Bytes::from_static(b"c\r\n--b--")),
        ];
        let got: Vec<Item> =
            block_on(PartStream::new(stream::iter(chunks), "b", Limits::default()).collect());
        assert_eq!(got.len(), 1);
        assert!(matches!(got[0], Err(PartError::Body(_))));
        assert!(!got[0].as_ref().unwrap_err().is_recoverable());
    }

    #[test]
    fn memory_stays_bounded_while_skipping_and_in_preamble() {
        // A 1 MB preamble and a 1 MB oversized part, fed in 4 KB chunks: the
        // buffer never holds more than the limit plus a chunk.
        let mut body = vec![b'p'; 1 << 20];
        body.extend_from_slice(b"\r\n");
        body.extend_from_slice(&encode_parts(
            "bb",
            &[("a/b", &vec![0u8; 1 << 20]), ("a/b", b"ok")],
        ));
        let chunks: Vec<Result<Bytes, std::io::Error>> = body
            .chunks(4096)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        let limits = Limits {
            max_part_bytes: 10_000,
            ..Limits::default()
        };
        let mut parts = PartStream::new(stream::iter(chunks), "bb", limits);
        let mut peak = 0;
        let mut results = Vec::new();
        block_on(async {
            loop {
                let next = futures_util::future::poll_fn(|cx| {
                    let r = Pin::new(&mut parts).poll_next(cx);
                    peak = peak.max(parts.buf.len());
                    r
                })
                .await;
                match next {
                    Some(r) => results.push(r.is_ok()),
                    None => break,
                }
            }
        });
        assert_eq!(results, [false, true]);
        assert!(peak <= 10_000 + 4096 + 16, "peak {peak}");
    }

    #[test]
    fn boundaries_are_fresh_and_valid() {
        let a = new_boundary();
        assert_ne!(a, new_boundary());
        assert!(crate::content_type::valid_boundary(&a));
        assert_eq!(a.len(), 43);
    }
}
