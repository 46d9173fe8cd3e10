//! The STOW-RS client against a scripted HTTP server on 127.0.0.1:0 that
//! answers each request as the test says (or drops the connection).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use dicom_deid_dicomweb::{
    failure, parse_content_type, warning, Auth, ClientConfig, InstanceOutcome, Limits, PartStream,
    RetryReason, Secret, StoreOutcome, StowClient, StowResponse,
};
use futures_util::StreamExt;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

const CT: &str = "1.2.840.10008.5.1.4.1.1.2";

/// A request as the server saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The SOP Instance UIDs the test put in the part bodies (`uid:<uid>`).
    async fn part_uids(&self) -> Vec<String> {
        let ct = parse_content_type(self.header("content-type").unwrap()).unwrap();
        let chunks =
            futures_util::stream::iter([Ok::<_, std::io::Error>(Bytes::from(self.body.clone()))]);
        let parts: Vec<_> = PartStream::new(chunks, &ct.boundary, Limits::default())
            .collect()
            .await;
        parts
            .into_iter()
            .map(|p| {
                let p = p.unwrap();
                assert_eq!(p.content_type.as_deref(), Some("application/dicom"));
                assert_eq!(p.header("content-length"), Some(&*p.body.len().to_string()));
                String::from_utf8(p.body.strip_prefix(b"uid:").unwrap().to_vec()).unwrap()
            })
            .collect()
    }
}

/// What the server does after reading a request.
enum Reply {
    /// Status, extra headers, body.
    Http(u16, Vec<(&'static str, String)>, Vec<u8>),
    /// Close the connection without answering.
    Close,
    /// Never answer.
    Hang,
}

type Script = Arc<dyn Fn(&Seen) -> Reply + Send + Sync>;

/// Starts the server; returns its base URL and the requests it has seen.
async fn server(
    script: impl Fn(&Seen) -> Reply + Send + Sync + 'static,
) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/dicom-web", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let script: Script = Arc::new(script);
    let log = seen.clone();
    tokio::spawn(async move {
        loop {
            let (socket, _) = listener.accept().await.unwrap();
            let (script, log) = (script.clone(), log.clone());
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut read = BufReader::new(read);
                let mut line = String::new();
                read.read_line(&mut line).await.unwrap();
                let mut words = line.split_whitespace();
                let (method, path) = (
                    words.next().unwrap().to_string(),
                    words.next().unwrap().to_string(),
                );
                let mut headers = Vec::new();
                loop {
                    let mut h = String::new();
                    read.read_line(&mut h).await.unwrap();
                    let h = h.trim_end();
                    if h.is_empty() {
                        break;
                    }
                    let (n, v) = h.split_once(':').unwrap();
                    headers.push((n.to_string(), v.trim().to_string()));
                }
                let seen = Seen {
                    method,
                    path,
                    headers,
                    body: Vec::new(),
                };
                assert!(
                    seen.header("transfer-encoding").is_none(),
                    "the client sends a Content-Length"
                );
                let len: usize = seen.header("content-length").unwrap().parse().unwrap();
                let mut body = vec![0; len];
                read.read_exact(&mut body).await.unwrap();
                let seen = Seen { body, ..seen };
                log.lock().unwrap().push(seen.clone());
                match script(&seen) {
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
                    Reply::Close => drop(write),
                    Reply::Hang => std::future::pending::<()>().await,
                }
            });
        }
    });
    (base, seen)
}

fn client(base: &str, auth: Auth) -> StowClient {
    StowClient::new(ClientConfig {
        base_url: base.to_string(),
        auth,
        ca_pem: None,
        timeout: Duration::from_secs(30),
    })
    .unwrap()
}

fn instances(uids: &[&'static str]) -> Vec<(&'static str, Bytes)> {
    uids.iter()
        .map(|u| (*u, Bytes::from(format!("uid:{u}"))))
        .collect()
}

fn json(status: u16, r: &StowResponse) -> Reply {
    Reply::Http(
        status,
        vec![("Content-Type", "application/dicom+json".into())],
        r.to_json(),
    )
}

#[tokio::test]
async fn all_stored_200() {
    let (base, seen) = server(|req| {
        let mut r = StowResponse::new();
        for uid in futures_executor::block_on(req.part_uids()) {
            r.stored(CT, &uid, Some(format!("http://x/{uid}")));
        }
        json(200, &r)
    })
    .await;
    let c = client(&base, Auth::Bearer(Secret::new("tok-1")));
    let out = c
        .store(None, &instances(&["1.1", "1.2", "1.3"]))
        .await
        .unwrap();
    assert_eq!(
        out,
        StoreOutcome::Answered {
            status: 200,
            instances: vec![InstanceOutcome::Stored { warning: None }; 3],
        }
    );
    let req = seen.lock().unwrap()[0].clone();
    assert_eq!(req.method, "POST");
    assert_eq!(req.path, "/dicom-web/studies");
    assert_eq!(req.header("authorization"), Some("Bearer tok-1"));
    assert_eq!(req.header("accept"), Some("application/dicom+json"));
    let ct = parse_content_type(req.header("content-type").unwrap()).unwrap();
    assert_eq!(ct.root_type.as_deref(), Some("application/dicom"));
    assert_eq!(req.part_uids().await, ["1.1", "1.2", "1.3"]);
}

#[tokio::test]
async fn study_path_and_basic_auth() {
    let (base, seen) = server(|_| Reply::Http(200, vec![], b"{}".to_vec())).await;
    let c = client(
        &format!("{base}/"),
        Auth::Basic {
            user: "gw".into(),
            password: Secret::new("pw"),
        },
    );
    let out = c.store(Some("1.2.3"), &instances(&["1.1"])).await.unwrap();
    // 200 with a body naming nobody: the status is believed.
    assert_eq!(
        out,
        StoreOutcome::Answered {
            status: 200,
            instances: vec![InstanceOutcome::Stored { warning: None }]
        }
    );
    let req = seen.lock().unwrap()[0].clone();
    assert_eq!(req.path, "/dicom-web/studies/1.2.3");
    assert_eq!(req.header("authorization"), Some("Basic Z3c6cHc="));
    assert!(c
        .store(Some("1.2/../x"), &instances(&["1.1"]))
        .await
        .is_err());
    assert_eq!(
        seen.lock().unwrap().len(),
        1,
        "a bad study UID sends nothing"
    );
}

#[tokio::test]
async fn partial_202_is_read_per_instance() {
    let (base, _) = server(|_| {
        let mut r = StowResponse::new();
        r.stored(CT, "1.1", None);
        r.stored(CT, "1.2", None);
        r.referenced[1].warning = Some(warning::COERCION_OF_DATA_ELEMENTS);
        r.failed(CT, "1.3", failure::DATA_SET_DOES_NOT_MATCH_SOP_CLASS);
        r.failed(CT, "1.4", failure::DUPLICATE_SOP_INSTANCE);
        json(202, &r)
    })
    .await;
    let out = client(&base, Auth::None)
        .store(None, &instances(&["1.1", "1.2", "1.3", "1.4", "1.5"]))
        .await
        .unwrap();
    let StoreOutcome::Answered {
        status: 202,
        instances,
    } = out
    else {
        panic!("{out:?}")
    };
    assert_eq!(
        instances,
        [
            InstanceOutcome::Stored { warning: None },
            InstanceOutcome::Stored {
                warning: Some(0xB000)
            },
            InstanceOutcome::Failed { reason: 0xA900 },
            InstanceOutcome::AlreadyPresent,
            InstanceOutcome::Unconfirmed,
        ]
    );
    let delivered: Vec<bool> = instances
        .iter()
        .map(InstanceOutcome::is_delivered)
        .collect();
    assert_eq!(delivered, [true, true, false, true, false]);
}

#[tokio::test]
async fn a_200_that_omits_an_instance_leaves_it_unconfirmed() {
    let (base, _) = server(|_| {
        let mut r = StowResponse::new();
        r.stored(CT, "1.2", None);
        json(200, &r)
    })
    .await;
    let out = client(&base, Auth::None)
        .store(None, &instances(&["1.1", "1.2"]))
        .await
        .unwrap();
    assert_eq!(
        out,
        StoreOutcome::Answered {
            status: 200,
            instances: vec![
                InstanceOutcome::Unconfirmed,
                InstanceOutcome::Stored { warning: None }
            ],
        }
    );
}

#[tokio::test]
async fn conflict_409_names_the_failures() {
    let (base, _) = server(|_| {
        let mut r = StowResponse::new();
        r.failed(CT, "1.1", failure::SOP_CLASS_NOT_SUPPORTED);
        r.failed(CT, "1.2", failure::STUDY_INSTANCE_UID_MISMATCH);
        json(409, &r)
    })
    .await;
    let out = client(&base, Auth::None)
        .store(None, &instances(&["1.1", "1.2"]))
        .await
        .unwrap();
    assert_eq!(
        out,
        StoreOutcome::Answered {
            status: 409,
            instances: vec![
                InstanceOutcome::Failed { reason: 0x0122 },
                InstanceOutcome::Failed { reason: 0xC409 },
            ],
        }
    );
}

#[tokio::test]
async fn overload_is_retryable_with_retry_after() {
    let (base, _) =
        server(|_| Reply::Http(503, vec![("Retry-After", "7".into())], b"busy".to_vec())).await;
    let out = client(&base, Auth::None)
        .store(None, &instances(&["1.1"]))
        .await
        .unwrap();
    assert_eq!(
        out,
        StoreOutcome::Retryable {
            reason: RetryReason::Status(503),
            retry_after: Some(Duration::from_secs(7))
        }
    );
    let (base, _) = server(|_| {
        Reply::Http(
            429,
            vec![("Retry-After", "Fri, 31 Dec 9999 23:59:59 GMT".into())],
            vec![],
        )
    })
    .await;
    let out = client(&base, Auth::None)
        .store(None, &instances(&["1.1"]))
        .await
        .unwrap();
    let StoreOutcome::Retryable {
        reason: RetryReason::Status(429),
        retry_after: Some(after),
    } = out
    else {
        panic!("{out:?}")
    };
    assert!(after > Duration::from_secs(86_400 * 365 * 1000));
    let (base, _) = server(|_| Reply::Http(500, vec![], vec![])).await;
    let out = client(&base, Auth::None)
        .store(None, &instances(&["1.1"]))
        .await
        .unwrap();
    assert_eq!(
        out,
        StoreOutcome::Retryable {
            reason: RetryReason::Status(500),
            retry_after: None
        }
    );
}

#[tokio::test]
async fn other_client_errors_are_permanent() {
    for status in [400, 401, 403, 404, 413, 415, 301] {
        let (base, _) = server(move |_| {
            Reply::Http(
                status,
                vec![("Location", "http://elsewhere/".into())],
                b"no".to_vec(),
            )
        })
        .await;
        let out = client(&base, Auth::None)
            .store(None, &instances(&["1.1"]))
            .await
            .unwrap();
        assert_eq!(out, StoreOutcome::Permanent { status }, "{status}");
    }
}

#[tokio::test]
async fn garbage_bodies() {
    // A 200 is believed without a readable body; a 202 or 409 is not.
    let (base, _) = server(|_| Reply::Http(200, vec![], b"<html>ok</html>".to_vec())).await;
    let out = client(&base, Auth::None)
        .store(None, &instances(&["1.1", "1.2"]))
        .await
        .unwrap();
    assert_eq!(
        out,
        StoreOutcome::Answered {
            status: 200,
            instances: vec![InstanceOutcome::Stored { warning: None }; 2]
        }
    );
    for status in [202, 409] {
        let (base, _) =
            server(move |_| Reply::Http(status, vec![], b"\x00\xff garbage".to_vec())).await;
        let out = client(&base, Auth::None)
            .store(None, &instances(&["1.1"]))
            .await
            .unwrap();
        assert_eq!(
            out,
            StoreOutcome::Retryable {
                reason: RetryReason::UnreadableReply(status),
                retry_after: None
            }
        );
    }
}

#[tokio::test]
async fn closed_connection_and_refused_connect_are_retryable() {
    let (base, seen) = server(|_| Reply::Close).await;
    let out = client(&base, Auth::None)
        .store(None, &instances(&["1.1"]))
        .await
        .unwrap();
    assert_eq!(
        out,
        StoreOutcome::Retryable {
            reason: RetryReason::Network,
            retry_after: None
        }
    );
    assert!(!seen.lock().unwrap().is_empty());
    // Nobody listening.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = client(&format!("http://127.0.0.1:{port}/"), Auth::None)
        .store(None, &instances(&["1.1"]))
        .await
        .unwrap();
    assert_eq!(
        out,
        StoreOutcome::Retryable {
            reason: RetryReason::Network,
            retry_after: None
        }
    );
}

#[tokio::test(start_paused = true)]
async fn no_answer_times_out() {
    let (base, _) = server(|_| Reply::Hang).await;
    let c = StowClient::new(ClientConfig {
        base_url: base,
        auth: Auth::None,
        ca_pem: None,
        timeout: Duration::from_secs(60),
    })
    .unwrap();
    let out = c.store(None, &instances(&["1.1"])).await.unwrap();
    assert_eq!(
        out,
        StoreOutcome::Retryable {
            reason: RetryReason::Timeout,
            retry_after: None
        }
    );
}
