//! Operations: `/readyz` (spool and destinations), the `/metrics` exposition, graceful shutdown
//! on a real socket, and forwarding to an HTTPS destination with a custom CA and credentials
//! from files.

mod common;
mod support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use dicom_deid_server::app;
use dicom_deid_server::auth::mint;
use support::*;
use tower::ServiceExt;

async fn get(router: &axum::Router, path: &str) -> (StatusCode, String) {
    let res = router
        .clone()
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = res.status();
    (status, String::from_utf8(body_bytes(res).await).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_checks_the_spool_and_every_destination() {
    let dir = tempfile::tempdir().unwrap();
    let responder = StowResponder::start(None, vec!["Bearer right".into()]).await;
    secret_file(dir.path(), "right.token", "right\n");
    secret_file(dir.path(), "wrong.token", "wrong\n");
    let down = closed_port();
    let text = |dests: &str| {
        format!(
            "data_dir = \"data\"\n[[routes]]\nname = \"r\"\ndestinations = [{dests}]\n\
             [[destinations]]\nname = \"folder\"\nkind = \"folder\"\ndir = \"out\"\n\
             [[destinations]]\nname = \"up\"\nkind = \"stow\"\n\
             url = \"http://{}/dicom-web/\"\ntoken_file = \"right.token\"\n",
            responder.addr
        )
    };
    let gw = gateway_from(dir.path(), &text("\"folder\", \"up\""));
    let router = app(gw.state);
    let (status, body) = get(&router, "/readyz").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("spool: ok"), "{body}");
    assert!(body.contains("destination folder: ok"), "{body}");
    assert!(body.contains("destination up: ok"), "{body}");

    // Many callers at once share one round of checks: one probe reaches the destination.
    let before = responder.options.load(std::sync::atomic::Ordering::SeqCst);
    let answers = futures_util::future::join_all((0..20).map(|_| get(&router, "/readyz"))).await;
    assert!(answers.iter().all(|(s, _)| *s == StatusCode::OK));
    assert_eq!(
        responder.options.load(std::sync::atomic::Ordering::SeqCst) - before,
        1
    );

    // The folder destination disappears: not ready, and the body says which.
    std::fs::remove_dir_all(dir.path().join("data/out")).unwrap();
    let (status, body) = get(&router, "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(
        body.contains("destination folder: folder not writable"),
        "{body}"
    );
    assert!(body.contains("destination up: ok"), "{body}");
    drop(router);

    // A STOW destination that is down, and one that refuses the gateway's token.
    let dir = tempfile::tempdir().unwrap();
    secret_file(dir.path(), "wrong.token", "wrong\n");
    let gw = gateway_from(
        dir.path(),
        &format!(
            "data_dir = \"data\"\n[[routes]]\nname = \"r\"\ndestinations = [\"down\", \"refused\"]\n\
             [[destinations]]\nname = \"down\"\nkind = \"stow\"\nurl = \"http://127.0.0.1:{down}/dicom-web/\"\n\
             [[destinations]]\nname = \"refused\"\nkind = \"stow\"\n\
             url = \"http://{}/dicom-web/\"\ntoken_file = \"wrong.token\"\n",
            responder.addr
        ),
    );
    let router = app(gw.state);
    let (status, body) = get(&router, "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body.contains("spool: ok"), "{body}");
    assert!(
        body.contains("destination down: cannot be reached"),
        "{body}"
    );
    assert!(
        body.contains("destination refused: refuses the gateway's credentials (HTTP 401)"),
        "{body}"
    );
    // Names and reasons only: no URL, no port, no secret.
    assert!(
        !body.contains("127.0.0.1") && !body.contains("wrong"),
        "{body}"
    );
}

/// One parsed sample: name, labels, value.
type Sample = (String, BTreeMap<String, String>, f64);

/// Parses the Prometheus text format strictly enough to catch mistakes: HELP/TYPE before the
/// samples of their family, one TYPE per family, valid names, numeric values.
fn parse_exposition(text: &str) -> (BTreeMap<String, String>, Vec<Sample>) {
    let valid_name = |n: &str| {
        !n.is_empty()
            && !n.starts_with(|c: char| c.is_ascii_digit())
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    };
    let mut types = BTreeMap::new();
    let mut samples = Vec::new();
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(valid_name(name), "{line}");
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            assert!(
                types.insert(name.to_string(), kind.to_string()).is_none(),
                "TYPE twice: {line}"
            );
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').expect("HELP name text");
            assert!(valid_name(name) && !help.is_empty(), "{line}");
            continue;
        }
        assert!(!line.starts_with('#'), "unknown comment: {line}");
        let (series, value) = line.rsplit_once(' ').expect("sample value");
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("value: {line}"));
        let (name, labels) = match series.split_once('{') {
            None => (series.to_string(), BTreeMap::new()),
            Some((name, rest)) => {
                let inner = rest.strip_suffix('}').expect("closing brace");
                let mut labels = BTreeMap::new();
                for pair in inner.split(',') {
                    let (k, v) = pair.split_once('=').expect("label=value");
                    assert!(valid_name(k), "{line}");
                    let v = v
                        .strip_prefix('"')
                        .and_then(|v| v.strip_suffix('"'))
                        .expect("quoted label value");
                    labels.insert(k.to_string(), v.to_string());
                }
                (name.to_string(), labels)
            }
        };
        assert!(valid_name(&name), "{line}");
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| {
                name.strip_suffix(s)
                    .filter(|f| types.get(*f).is_some_and(|t| t == "histogram"))
            })
            .unwrap_or(&name)
            .to_string();
        let kind = types
            .get(&family)
            .unwrap_or_else(|| panic!("sample before its TYPE: {line}"));
        if kind == "counter" {
            assert!(family.ends_with("_total"), "counter without _total: {line}");
        }
        samples.push((name, labels, value));
    }
    (types, samples)
}

fn value(samples: &[Sample], name: &str, label: Option<(&str, &str)>) -> f64 {
    samples
        .iter()
        .find(|(n, l, _)| n == name && label.is_none_or(|(k, v)| l.get(k).is_some_and(|x| x == v)))
        .unwrap_or_else(|| panic!("no sample {name} {label:?}"))
        .2
}

/// The buckets of histogram `family` are cumulative and end with `+Inf` = `_count`.
fn check_histogram(samples: &[Sample], family: &str) -> f64 {
    let buckets: Vec<(f64, f64)> = samples
        .iter()
        .filter(|(n, _, _)| *n == format!("{family}_bucket"))
        .map(|(_, l, v)| {
            let le = &l["le"];
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().unwrap()
            };
            (le, *v)
        })
        .collect();
    assert!(buckets.len() >= 2, "{family} has buckets");
    for pair in buckets.windows(2) {
        assert!(pair[0].0 < pair[1].0, "{family}: le ascending");
        assert!(pair[0].1 <= pair[1].1, "{family}: counts cumulative");
    }
    let (last_le, last) = *buckets.last().unwrap();
    assert!(last_le.is_infinite(), "{family}: ends with +Inf");
    let count = value(samples, &format!("{family}_count"), None);
    assert_eq!(last, count, "{family}: +Inf = count");
    value(samples, &format!("{family}_sum"), None);
    count
}

#[tokio::test]
async fn metrics_parse_as_prometheus_text_and_count_what_happened() {
    let dir = tempfile::tempdir().unwrap();
    let (token, hash) = mint().unwrap();
    let gw = gateway_from(
        dir.path(),
        &format!(
            "data_dir = \"data\"\n[[tokens]]\nname = \"t\"\nsha256 = \"{hash}\"\nroutes = [\"default\"]\n"
        ),
    );
    let router = app(gw.state);
    let one = instance(1);
    let mut good = stow_request(
        "/studies",
        &[("application/dicom", &one), ("application/dicom", b"junk")],
    );
    good.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    assert_eq!(
        router.clone().oneshot(good).await.unwrap().status(),
        StatusCode::ACCEPTED
    );
    let anonymous = stow_request("/studies", &[("application/dicom", &one)]);
    assert_eq!(
        router.clone().oneshot(anonymous).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );

    let res = router
        .clone()
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = String::from_utf8(body_bytes(res).await).unwrap();
    let (types, samples) = parse_exposition(&text);
    for family in [
        "dicom_deid_instances_received_total",
        "dicom_deid_instances_rejected_total",
        "dicom_deid_instances_queued_total",
        "dicom_deid_instances_delivered_total",
        "dicom_deid_instances_dead_lettered_total",
        "dicom_deid_received_bytes_total",
        "dicom_deid_queued_bytes_total",
        "dicom_deid_delivered_bytes_total",
        "dicom_deid_delivery_retries_total",
        "dicom_deid_spool_entries",
        "dicom_deid_spool_bytes",
        "dicom_deid_delivery_latency_seconds",
        "dicom_deid_stow_request_duration_seconds",
        "dicom_deid_stow_responses_total",
        "dicom_deid_stow_requests_refused_total",
    ] {
        assert!(types.contains_key(family), "{family} missing:\n{text}");
    }
    assert_eq!(
        check_histogram(&samples, "dicom_deid_stow_request_duration_seconds"),
        1.0
    );
    check_histogram(&samples, "dicom_deid_delivery_latency_seconds");
    assert_eq!(
        value(&samples, "dicom_deid_instances_received_total", None),
        2.0
    );
    assert_eq!(
        value(&samples, "dicom_deid_instances_rejected_total", None),
        1.0
    );
    assert_eq!(
        value(&samples, "dicom_deid_instances_queued_total", None),
        1.0
    );
    assert_eq!(value(&samples, "dicom_deid_spool_entries", None), 1.0);
    // After the request, no share of either memory budget is held; the limits are the defaults.
    assert_eq!(value(&samples, "dicom_deid_in_flight_bytes", None), 0.0);
    assert_eq!(
        value(&samples, "dicom_deid_in_flight_max_bytes", None),
        (384u64 << 20) as f64
    );
    assert_eq!(
        value(&samples, "dicom_deid_working_memory_bytes", None),
        0.0
    );
    assert_eq!(
        value(&samples, "dicom_deid_working_memory_max_bytes", None),
        (384u64 << 20) as f64
    );
    assert_eq!(
        value(
            &samples,
            "dicom_deid_stow_responses_total",
            Some(("code", "202"))
        ),
        1.0
    );
    assert_eq!(
        value(
            &samples,
            "dicom_deid_stow_responses_total",
            Some(("code", "401"))
        ),
        1.0
    );
    assert_eq!(
        value(
            &samples,
            "dicom_deid_stow_requests_refused_total",
            Some(("reason", "missing_token"))
        ),
        1.0
    );
    assert!(value(&samples, "dicom_deid_received_bytes_total", None) >= one.len() as f64);
    assert!(!text.contains(&token) && !text.contains(&hash));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_the_request_in_flight_and_keeps_the_spool() {
    let dir = tempfile::tempdir().unwrap();
    let down = closed_port();
    // The destination is down, so whatever is stored stays in the spool.
    let gw = gateway_from(
        dir.path(),
        &format!(
            "data_dir = \"data\"\n[[routes]]\nname = \"r\"\ndestinations = [\"pacs\"]\n\
             [[destinations]]\nname = \"pacs\"\nkind = \"stow\"\nurl = \"http://127.0.0.1:{down}/dicom-web/\"\n"
        ),
    );
    let state = gw.state.clone();
    let mut running = Running::start(gw).await;
    let addr = running.addr;

    // Send the head and half of the body, then wait until the gateway has started the request.
    let body = instance(7);
    let half = body.len() / 2;
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "POST /studies HTTP/1.1\r\nHost: x\r\nContent-Type: application/dicom\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(&body[..half]).unwrap();
    stream.flush().unwrap();
    let started = eventually(1500, || {
        state
            .metrics()
            .requests
            .load(std::sync::atomic::Ordering::Relaxed)
            == 1
    })
    .await;
    assert!(started, "the request reached the handler");

    // Shut down while the request is in flight: new connections are no longer accepted…
    let stopping = running.begin_stop();
    let refused = eventually(1500, || std::net::TcpStream::connect(addr).is_err()).await;
    assert!(refused, "the listener is closed once shutdown begins");
    assert!(
        !stopping.is_finished(),
        "run() waits for the request in flight"
    );
    // …and the one in flight completes with its answer.
    stream.write_all(&body[half..]).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("00081199"), "{answer}");
    stopping.await.unwrap().unwrap();
    drop(state);

    // The instance is still in the spool after the gateway stopped: a new start finds it.
    let gw = gateway_from(
        dir.path(),
        &format!(
            "data_dir = \"data\"\n[[routes]]\nname = \"r\"\ndestinations = [\"pacs\"]\n\
             [[destinations]]\nname = \"pacs\"\nkind = \"stow\"\nurl = \"http://127.0.0.1:{down}/dicom-web/\"\n"
        ),
    );
    let depth = gw.state.spool().depth();
    assert_eq!(depth.entries, 1);
    assert_eq!(depth.destinations["pacs"].entries, 1);
    let audit = std::fs::read_to_string(dir.path().join("data/audit.jsonl")).unwrap();
    assert_eq!(audit.matches("\"event\":\"queued\"").count(), 1);
    assert_eq!(audit.matches("\"event\":\"delivered\"").count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_destination_with_a_custom_ca_and_file_credentials_gets_the_instances() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    secret_file(dir.path(), "bearer.token", "s3cret-token\n");
    secret_file(dir.path(), "basic.pw", "pa55word\n");
    // base64("site:pa55word")
    let basic = "Basic c2l0ZTpwYTU1d29yZA==".to_string();
    let responder = StowResponder::start(
        Some(&pki),
        vec!["Bearer s3cret-token".into(), basic.clone()],
    )
    .await;
    let url = format!("https://127.0.0.1:{}/dicom-web/", responder.addr.port());
    let gw = gateway_from(
        dir.path(),
        &format!(
            "data_dir = \"data\"\n[[routes]]\nname = \"r\"\ndestinations = [\"bearer\", \"basic\"]\n\
             [[destinations]]\nname = \"bearer\"\nkind = \"stow\"\nurl = \"{url}\"\n\
             ca_file = \"ca.pem\"\ntoken_file = \"bearer.token\"\n\
             [[destinations]]\nname = \"basic\"\nkind = \"stow\"\nurl = \"{url}\"\n\
             ca_file = \"ca.pem\"\nbasic_user = \"site\"\npassword_file = \"basic.pw\"\n"
        ),
    );
    let state = gw.state.clone();
    let running = Running::start(gw).await;
    let client = reqwest::Client::new();
    let res = client
        .post(format!("http://{}/studies", running.addr))
        .header("content-type", "application/dicom")
        .body(instance(1))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let arrived = eventually(1500, || responder.instances() == 2).await;
    assert!(arrived, "seen: {:?}", responder.seen.lock().unwrap());
    let drained = eventually(1500, || state.spool().depth().entries == 0).await;
    assert!(drained);
    let mut auths: Vec<_> = responder
        .seen
        .lock()
        .unwrap()
        .iter()
        .map(|s| s.authorization.clone().unwrap())
        .collect();
    auths.sort();
    assert_eq!(auths, [basic, "Bearer s3cret-token".to_string()]);
    let res = client
        .get(format!("http://{}/readyz", running.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    running.stop().await;
    let audit = std::fs::read_to_string(dir.path().join("data/audit.jsonl")).unwrap();
    assert_eq!(audit.matches("\"event\":\"delivered\"").count(), 2);
    drop(state);

    // Without the CA the certificate is not trusted: nothing is sent, nothing is lost or
    // dead-lettered, and /readyz says the destination cannot be reached.
    let dir2 = tempfile::tempdir().unwrap();
    secret_file(dir2.path(), "bearer.token", "s3cret-token\n");
    let gw = gateway_from(
        dir2.path(),
        &format!(
            "data_dir = \"data\"\n[[routes]]\nname = \"r\"\ndestinations = [\"bearer\"]\n\
             [[destinations]]\nname = \"bearer\"\nkind = \"stow\"\nurl = \"{url}\"\n\
             token_file = \"bearer.token\"\n"
        ),
    );
    let state = gw.state.clone();
    let running = Running::start(gw).await;
    let before = responder.instances();
    let res = client
        .post(format!("http://{}/studies", running.addr))
        .header("content-type", "application/dicom")
        .body(instance(2))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = client
        .get(format!("http://{}/readyz", running.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    let body = res.text().await.unwrap();
    assert!(
        body.contains("destination bearer: cannot be reached"),
        "{body}"
    );
    // The first delivery attempt fails (TLS) and is counted as a retry.
    let metrics_url = format!("http://{}/metrics", running.addr);
    let mut retried = false;
    for _ in 0..1500 {
        let text = client
            .get(&metrics_url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if text.lines().any(|l| {
            l.strip_prefix("dicom_deid_delivery_retries_total ")
                .is_some_and(|v| v.parse::<u64>().unwrap_or(0) >= 1)
        }) {
            retried = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(retried, "a delivery was attempted and failed");
    assert_eq!(
        responder.instances(),
        before,
        "nothing reached the destination"
    );
    let depth = state.spool().depth();
    assert_eq!(depth.entries, 1);
    assert_eq!(depth.dead_entries, 0);
    running.stop().await;
}
