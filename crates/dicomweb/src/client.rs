//! The STOW-RS client the forwarder delivers with: one `store` call sends one
//! batch of instances in one `multipart/related` request and classifies the
//! answer per instance.

use std::convert::Infallible;
use std::fmt;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use reqwest::header::{HeaderMap, ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use snafu::{ResultExt, Snafu};

use crate::multipart::{closing, new_boundary, part_head};
use crate::stow::{failure, StowResponse};

/// A secret (token, password). Its `Debug` prints `**REDACTED**`; it has no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret read from wherever secrets come from (a file, not the TOML).
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("**REDACTED**")
    }
}

/// How the client authenticates to the destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// No credentials.
    None,
    /// `Authorization: Bearer <token>`.
    Bearer(Secret),
    /// `Authorization: Basic …`.
    Basic {
        /// The user name (not secret).
        user: String,
        /// The password.
        password: Secret,
    },
}

/// Where and how to deliver.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The DICOMweb service root, e.g. `http://127.0.0.1:8042/dicom-web/`
    /// (a missing final `/` is added). `studies` is appended to it.
    pub base_url: String,
    /// Credentials.
    pub auth: Auth,
    /// Extra trusted CA certificates (PEM, one or more), added to the
    /// built-in web PKI roots.
    pub ca_pem: Option<Vec<u8>>,
    /// Bound on one whole exchange (connect, upload, answer): size it for the
    /// largest batch. Connecting alone is bounded by the smaller of this and 10 s.
    pub timeout: Duration,
}

/// Why a client could not be made or a request could not be formed. The
/// messages never carry URLs with credentials, UIDs or secrets.
#[derive(Debug, Snafu)]
pub enum ClientError {
    /// The destination base URL is not an absolute http or https URL
    BadBaseUrl,
    /// The CA certificates are not PEM certificates
    BadCaPem,
    /// Could not build the HTTP client
    Build {
        /// The HTTP library's error.
        source: reqwest::Error,
    },
    /// The Study Instance UID for the request path is not a UID (digits and dots, at most 64)
    BadStudyUid,
}

/// What became of one instance of a batch that the destination answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceOutcome {
    /// Stored (listed in ReferencedSOPSequence), perhaps with a Warning Reason.
    Stored {
        /// Warning Reason (0008,1196), if any.
        warning: Option<u16>,
    },
    /// The destination already holds this SOP Instance UID: counts as
    /// delivered. (A FailedSOPSequence item with reason
    /// [`failure::DUPLICATE_SOP_INSTANCE`].)
    AlreadyPresent,
    /// Refused for good (listed in FailedSOPSequence): dead-letter it.
    Failed {
        /// Failure Reason (0008,1197).
        reason: u16,
    },
    /// The answer does not mention it (or could not be read for it): send it
    /// again later. STOW-RS is idempotent by SOP Instance UID.
    Unconfirmed,
}

impl InstanceOutcome {
    /// Whether the instance can leave the spool as delivered.
    pub fn is_delivered(&self) -> bool {
        matches!(self, Self::Stored { .. } | Self::AlreadyPresent)
    }
}

/// Why a batch should be sent again later, as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryReason {
    /// Could not connect, or the connection broke before an answer.
    Network,
    /// No complete answer within the configured timeout.
    Timeout,
    /// 408, 429 or 5xx.
    Status(u16),
    /// A 202 or 409 (or a 2xx body that broke off) whose body could not be read
    /// per instance: nothing can be concluded about any one instance.
    UnreadableReply(u16),
}

/// The result of one `store` call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreOutcome {
    /// The destination answered per instance (200, 202, 409, other 2xx):
    /// `instances[i]` is the fate of the `i`-th instance sent, matched by SOP
    /// Instance UID in the reply's ReferencedSOPSequence / FailedSOPSequence.
    /// An instance the reply does not name is `Unconfirmed`. A 2xx other than
    /// 202 whose body names nobody (empty, `{}`, not JSON) is believed:
    /// PS3.18 says 200 means all were stored.
    Answered {
        /// The HTTP status.
        status: u16,
        /// One outcome per instance, in the order sent.
        instances: Vec<InstanceOutcome>,
    },
    /// Send the whole batch again later, no sooner than `retry_after` when the
    /// destination said so.
    Retryable {
        /// What went wrong.
        reason: RetryReason,
        /// The destination's `Retry-After`, if it sent one that parses.
        retry_after: Option<Duration>,
    },
    /// The destination refused the request itself (4xx other than 408, 409, 429;
    /// or a redirect, which is not followed): the whole batch is refused.
    Permanent {
        /// The HTTP status.
        status: u16,
    },
}

/// Replies larger than this are not read (they read as unreadable).
const MAX_REPLY_BYTES: usize = 32 << 20;

/// A STOW-RS client for one destination. Cheap to clone; share one per destination.
#[derive(Clone)]
pub struct StowClient {
    http: reqwest::Client,
    base: reqwest::Url,
    auth: Auth,
}

impl fmt::Debug for StowClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StowClient")
            .field("host", &self.base.host_str())
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

impl StowClient {
    /// A client for `config` (validates the URL and CA certificates; opens nothing yet).
    pub fn new(config: ClientConfig) -> Result<Self, ClientError> {
        let mut base_url = config.base_url;
        if !base_url.ends_with('/') {
            base_url.push('/');
        }
        let base = reqwest::Url::parse(&base_url).map_err(|_| ClientError::BadBaseUrl)?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(ClientError::BadBaseUrl);
        }
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("dicom-deid/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = &config.ca_pem {
            let certs =
                reqwest::Certificate::from_pem_bundle(pem).map_err(|_| ClientError::BadCaPem)?;
            if certs.is_empty() {
                return Err(ClientError::BadCaPem);
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder.build().context(BuildSnafu)?;
        Ok(Self {
            http,
            base,
            auth: config.auth,
        })
    }

    /// Sends `instances` (SOP Instance UID, Part 10 bytes) in one request to
    /// `{base}studies` or, with `study`, `{base}studies/{study}`, and says what
    /// became of each. The bytes are streamed from the given buffers, not copied.
    ///
    /// Only a malformed `study` is an `Err`; every answer (or its absence) is a
    /// [`StoreOutcome`].
    pub async fn store(
        &self,
        study: Option<&str>,
        instances: &[(&str, Bytes)],
    ) -> Result<StoreOutcome, ClientError> {
        let mut url = self.base.clone();
        {
            let mut segments = url
                .path_segments_mut()
                .map_err(|_| ClientError::BadBaseUrl)?;
            segments.pop_if_empty().push("studies");
            if let Some(study) = study {
                if !is_uid(study) {
                    return Err(ClientError::BadStudyUid);
                }
                segments.push(study);
            }
        }
        let boundary = new_boundary();
        let mut chunks: Vec<Bytes> = Vec::with_capacity(instances.len() * 3 + 1);
        for (_, bytes) in instances {
            chunks.push(part_head(&boundary, "application/dicom", bytes.len()));
            chunks.push(bytes.clone());
            chunks.push(Bytes::from_static(b"\r\n"));
        }
        chunks.push(closing(&boundary));
        let length: usize = chunks.iter().map(Bytes::len).sum();
        let body = reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks.into_iter().map(Ok::<_, Infallible>),
        ));
        let mut request = self
            .http
            .post(url)
            .header(
                CONTENT_TYPE,
                format!("multipart/related; type=\"application/dicom\"; boundary={boundary}"),
            )
            .header(CONTENT_LENGTH, length)
            .header(ACCEPT, "application/dicom+json")
            .body(body);
        request = match &self.auth {
            Auth::None => request,
            Auth::Bearer(token) => request.bearer_auth(token.expose()),
            Auth::Basic { user, password } => request.basic_auth(user, Some(password.expose())),
        };
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => return Ok(network_failure(&e)),
        };
        let status = response.status().as_u16();
        let retry_after = retry_after(response.headers(), SystemTime::now());
        match status {
            200..=299 | 409 => {}
            408 | 429 | 500..=599 => {
                return Ok(StoreOutcome::Retryable {
                    reason: RetryReason::Status(status),
                    retry_after,
                })
            }
            _ => return Ok(StoreOutcome::Permanent { status }),
        }
        let body = match read_bounded(response).await {
            Ok(body) => body,
            Err(Some(e)) => return Ok(network_failure(&e)),
            Err(None) => Bytes::new(), // too large: read as unreadable below
        };
        let parsed = StowResponse::from_json(&body).ok();
        Ok(classify(status, parsed.as_ref(), instances))
    }
}

impl StowClient {
    /// Whether the destination answers: sends `OPTIONS {base}studies` (no body, the
    /// credentials attached) and returns the HTTP status of any answer, or the
    /// [`RetryReason`] (`Network` or `Timeout`) when none came within `timeout` — no TCP
    /// connection, a TLS failure (such as an untrusted certificate), or silence.
    pub async fn probe(&self, timeout: Duration) -> Result<u16, RetryReason> {
        let mut url = self.base.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().push("studies");
        }
        let mut request = self
            .http
            .request(reqwest::Method::OPTIONS, url)
            .timeout(timeout);
        request = match &self.auth {
            Auth::None => request,
            Auth::Bearer(token) => request.bearer_auth(token.expose()),
            Auth::Basic { user, password } => request.basic_auth(user, Some(password.expose())),
        };
        match request.send().await {
            Ok(response) => Ok(response.status().as_u16()),
            Err(e) if e.is_timeout() => Err(RetryReason::Timeout),
            Err(_) => Err(RetryReason::Network),
        }
    }
}

/// Per-instance outcomes from an answer (200, 202, 409, other 2xx).
fn classify(
    status: u16,
    reply: Option<&StowResponse>,
    instances: &[(&str, Bytes)],
) -> StoreOutcome {
    let listed = reply.is_some_and(|r| !r.referenced.is_empty() || !r.failed.is_empty());
    if !listed {
        if (200..=299).contains(&status) && status != 202 {
            // PS3.18: 200 means every instance was stored. A server that says
            // so without a usable body (empty, `{}`, not JSON) is believed.
            return StoreOutcome::Answered {
                status,
                instances: vec![InstanceOutcome::Stored { warning: None }; instances.len()],
            };
        }
        return StoreOutcome::Retryable {
            reason: RetryReason::UnreadableReply(status),
            retry_after: None,
        };
    }
    let reply = reply.expect("listed implies parsed");
    let outcomes = instances
        .iter()
        .map(|(uid, _)| {
            if let Some(r) = reply.referenced.iter().find(|r| r.sop_instance == *uid) {
                InstanceOutcome::Stored { warning: r.warning }
            } else if let Some(f) = reply.failed.iter().find(|f| f.sop_instance == *uid) {
                if f.reason == failure::DUPLICATE_SOP_INSTANCE {
                    InstanceOutcome::AlreadyPresent
                } else {
                    InstanceOutcome::Failed { reason: f.reason }
                }
            } else {
                InstanceOutcome::Unconfirmed
            }
        })
        .collect();
    StoreOutcome::Answered {
        status,
        instances: outcomes,
    }
}

fn network_failure(e: &reqwest::Error) -> StoreOutcome {
    let reason = if e.is_timeout() {
        RetryReason::Timeout
    } else {
        RetryReason::Network
    };
    StoreOutcome::Retryable {
        reason,
        retry_after: None,
    }
}

/// The body, or `Err(Some)` if the connection failed, `Err(None)` if it is too large.
async fn read_bounded(mut response: reqwest::Response) -> Result<Bytes, Option<reqwest::Error>> {
    let mut body = bytes::BytesMut::new();
    while let Some(chunk) = response.chunk().await.map_err(Some)? {
        if body.len() + chunk.len() > MAX_REPLY_BYTES {
            return Err(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

fn is_uid(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && !s.starts_with('.')
        && !s.ends_with('.')
        && !s.contains("..")
}

/// `Retry-After` as delta-seconds or an IMF-fixdate (RFC 9110 §10.2.3), as a
/// delay from `now` (zero for a date in the past).
pub(crate) fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = parse_imf_fixdate(value)?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// `Sun, 06 Nov 1994 08:49:37 GMT`.
fn parse_imf_fixdate(s: &str) -> Option<SystemTime> {
    let (_, rest) = s.split_once(", ")?;
    let mut f = rest.split(' ');
    let day: u32 = f.next()?.parse().ok()?;
    let month = match f.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year: i64 = f.next()?.parse().ok()?;
    let mut hms = f.next()?.split(':').map(|p| p.parse::<u64>().ok());
    let (h, m, sec) = (hms.next()??, hms.next()??, hms.next()??);
    if f.next()? != "GMT"
        || f.next().is_some()
        || !(1..=31).contains(&day)
        || h > 23
        || m > 59
        || sec > 60
    {
        return None;
    }
    // Days from 1970-01-01 to the civil date (Howard Hinnant's algorithm).
    let (y, mo) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * mo + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = u64::try_from(days).ok()? * 86_400 + h * 3600 + m * 60 + sec;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn secrets_print_redacted() {
        let auth = Auth::Basic {
            user: "gw".into(),
            password: Secret::new("hunter2"),
        };
        let config = ClientConfig {
            base_url: "https://pacs.example/dicom-web".into(),
            auth,
            ca_pem: None,
            timeout: Duration::from_secs(5),
        };
        let text = format!("{config:?}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("**REDACTED**"));
        let bearer = format!("{:?}", Auth::Bearer(Secret::new("tok-123")));
        assert_eq!(bearer, "Bearer(**REDACTED**)");
        let client = StowClient::new(config).unwrap();
        assert!(!format!("{client:?}").contains("hunter2"));
    }

    #[test]
    fn config_is_checked() {
        let config = |url: &str, ca: Option<&[u8]>| ClientConfig {
            base_url: url.into(),
            auth: Auth::None,
            ca_pem: ca.map(<[u8]>::to_vec),
            timeout: Duration::from_secs(1),
        };
        assert!(matches!(
            StowClient::new(config("ftp://x/", None)),
            Err(ClientError::BadBaseUrl)
        ));
        assert!(matches!(
            StowClient::new(config("not a url", None)),
            Err(ClientError::BadBaseUrl)
        ));
        assert!(matches!(
            StowClient::new(config("http://x/", Some(b"not pem"))),
            Err(ClientError::BadCaPem)
        ));
        let c = StowClient::new(config("http://h:1/dicom-web", None)).unwrap();
        assert_eq!(c.base.as_str(), "http://h:1/dicom-web/");
    }

    #[test]
    fn uids_for_the_path() {
        assert!(is_uid("1.2.840.10008.5.1.4.1.1.2"));
        for bad in [
            "",
            "1..2",
            ".1",
            "1.",
            "1/2",
            "../etc",
            "1.2a",
            &"1".repeat(65),
        ] {
            assert!(!is_uid(bad), "{bad}");
        }
    }

    #[test]
    fn retry_after_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h, now), None);
        h.insert(RETRY_AFTER, HeaderValue::from_static("120"));
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(120)));
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Sun, 06 Nov 1994 08:50:07 GMT"),
        );
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(30)));
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Sat, 05 Nov 1994 08:49:37 GMT"),
        );
        assert_eq!(retry_after(&h, now), Some(Duration::ZERO));
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Thu, 29 Feb 2024 23:59:59 GMT"),
        );
        assert_eq!(
            retry_after(&h, SystemTime::UNIX_EPOCH),
            Some(Duration::from_secs(1_709_251_199))
        );
        for bad in [
            "soon",
            "-5",
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 32 Nov 1994 08:49:37 GMT",
        ] {
            h.insert(RETRY_AFTER, HeaderValue::from_static(bad));
            assert_eq!(retry_after(&h, now), None, "{bad}");
        }
    }
}
