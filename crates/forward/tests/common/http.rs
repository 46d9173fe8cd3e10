//! A scripted STOW-RS server on 127.0.0.1:0 that answers each request as the test says.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use dicom_deid_dicomweb::{
    parse_content_type, Auth, ClientConfig, Limits, PartStream, StowClient, StowResponse,
};
use futures_util::StreamExt;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::time::Instant;

pub const SOP_CLASS: &str = "1.2.840.10008.5.1.4.1.1.7";

/// A request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub path: String,
    /// The SOP Instance UIDs of the parts (each part body is `uid:<uid>`).
    pub uids: Vec<String>,
    /// When it arrived (tokio time).
    pub at: Instant,
}

/// What the server does with a request.
pub enum Reply {
    /// Status, extra headers, body.
    Http(u16, Vec<(&'static str, String)>, Vec<u8>),
    /// Never answer.
    Hang,
}

impl Reply {
    /// A STOW-RS answer with `response` as application/dicom+json.
    pub fn stow(response: &StowResponse) -> Reply {
        Reply::Http(
            response.status().as_u16(),
            vec![("Content-Type", "application/dicom+json".into())],
            response.to_json(),
        )
    }

    /// 200 listing every instance of the request as stored.
    pub fn all_stored(seen: &Seen) -> Reply {
        let mut r = StowResponse::new();
        for uid in &seen.uids {
            r.stored(SOP_CLASS, uid, None);
        }
        Reply::stow(&r)
    }
}

/// The part data the tests spool for instance `uid`.
pub fn data(uid: &str) -> Vec<u8> {
    format!("uid:{uid}").into_bytes()
}

/// Starts the server; `script(request, n)` answers the `n`-th request (0-based). Returns the
/// base URL and the requests seen.
pub async fn server(
    script: impl Fn(&Seen, usize) -> Reply + Send + Sync + 'static,
) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/dicom-web/", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let script = Arc::new(script);
    let log = seen.clone();
    tokio::spawn(async move {
        loop {
            let (socket, _) = listener.accept().await.unwrap();
            let (script, log) = (script.clone(), log.clone());
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut read = BufReader::new(read);
                let mut line = String::new();
                if read.read_line(&mut line).await.unwrap_or(0) == 0 {
                    return;
                }
                let path = line.split_whitespace().nth(1).unwrap().to_string();
                let mut headers = Vec::new();
                loop {
                    let mut h = String::new();
                    read.read_line(&mut h).await.unwrap();
                    let h = h.trim_end();
                    if h.is_empty() {
                        break;
                    }
                    let (n, v) = h.split_once(':').unwrap();
                    headers.push((n.to_ascii_lowercase(), v.trim().to_string()));
                }
                let header = |name: &str| {
                    headers
                        .iter()
                        .find(|(n, _)| n == name)
                        .map(|(_, v)| v.clone())
                        .unwrap()
                };
                let len: usize = header("content-length").parse().unwrap();
                let mut body = vec![0; len];
                read.read_exact(&mut body).await.unwrap();
                let boundary = parse_content_type(&header("content-type"))
                    .unwrap()
                    .boundary;
                let chunks =
                    futures_util::stream::iter([Ok::<_, std::io::Error>(Bytes::from(body))]);
                let uids = PartStream::new(chunks, &boundary, Limits::default())
                    .map(|p| {
                        let p = p.unwrap();
                        String::from_utf8(p.body.strip_prefix(b"uid:").unwrap().to_vec()).unwrap()
                    })
                    .collect()
                    .await;
                let seen = Seen {
                    path,
                    uids,
                    at: Instant::now(),
                };
                let n = {
                    let mut log = log.lock().unwrap();
                    log.push(seen.clone());
                    log.len() - 1
                };
                match script(&seen, n) {
                    Reply::Http(status, headers, body) => {
                        let mut out = format!(
                            "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n",
                            body.len()
                        );
                        for (n, v) in headers {
                            out.push_str(&format!("{n}: {v}\r\n"));
                        }
                        out.push_str("\r\n");
                        write.write_all(out.as_bytes()).await.unwrap();
                        write.write_all(&body).await.unwrap();
                        write.shutdown().await.ok();
                    }
                    Reply::Hang => std::future::pending::<()>().await,
                }
            });
        }
    });
    (base, seen)
}

/// A client for `base` with a generous timeout (tests run in paused time).
pub fn client(base: &str, timeout: Duration) -> StowClient {
    StowClient::new(ClientConfig {
        base_url: base.to_string(),
        auth: Auth::None,
        ca_pem: None,
        timeout,
    })
    .unwrap()
}

/// Keeps tokio's paused clock from jumping far while sockets are busy: with this timer always
/// pending, an idle runtime advances it 1 ms at a time, not straight to the next far timer
/// (such as the HTTP client's timeout).
pub fn heartbeat() {
    tokio::spawn(async {
        loop {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    });
}
