//! Gateway security: ingest tokens (401/403, hashed in the config, never logged), TLS on the
//! listener, bounded headers, and requests that try to reach outside the data directory.

mod common;
mod support;

use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use dicom_deid_server::auth::{hash_hex, mint};
use dicom_deid_server::config::RawConfig;
use dicom_deid_server::{app, Gateway};
use support::*;
use tower::ServiceExt;

/// Two routes (`a` at `/a`, `b` at `/b`) to folder destinations, and two tokens: `site-a` may
/// use `a`, `site-b` may use both. Returns the gateway and the two tokens.
fn two_route_gateway(dir: &Path, extra: &str) -> (Gateway, String, String) {
    let (ta, ha) = mint().unwrap();
    let (tb, hb) = mint().unwrap();
    let text = format!(
        "data_dir = \"data\"\n{extra}\n\
         [[routes]]\nname = \"a\"\npath = \"/a\"\ndestinations = [\"out-a\"]\n\
         [[routes]]\nname = \"b\"\npath = \"/b\"\ndestinations = [\"out-b\"]\n\
         [[destinations]]\nname = \"out-a\"\nkind = \"folder\"\ndir = \"out-a\"\n\
         [[destinations]]\nname = \"out-b\"\nkind = \"folder\"\ndir = \"out-b\"\n\
         [[tokens]]\nname = \"site-a\"\nsha256 = \"{ha}\"\nroutes = [\"a\"]\n\
         [[tokens]]\nname = \"site-b\"\nsha256 = \"{hb}\"\nroutes = [\"a\", \"b\"]\n"
    );
    let file = dir.join("gateway.toml");
    std::fs::write(&file, &text).unwrap();
    let gw = RawConfig::from_file(&file)
        .unwrap()
        .validate(Some(&file))
        .unwrap()
        .build()
        .unwrap();
    (gw, ta, tb)
}

fn with_token(mut req: Request<Body>, token: Option<&str>) -> Request<Body> {
    if let Some(t) = token {
        req.headers_mut()
            .insert("authorization", format!("Bearer {t}").parse().unwrap());
    }
    req
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The logs of every test of this binary, at debug level (one global subscriber: a scoped one
/// misses events whose callsites other threads registered first).
fn captured_logs() -> &'static Captured {
    static LOGS: std::sync::OnceLock<Captured> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Captured::default();
        let writer = logs.clone();
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                "debug,reqwest=off,hyper_util::client=off",
            ))
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .init();
        logs
    })
}

#[tokio::test]
async fn tokens_are_required_checked_and_scoped_to_routes() {
    let logs = captured_logs();

    let dir = tempfile::tempdir().unwrap();
    let (gw, token_a, token_b) = two_route_gateway(dir.path(), "");
    let state = gw.state.clone();
    let router = app(gw.state);
    let one = instance(1);
    let post = |path: &str, token: Option<&str>| {
        with_token(
            stow_request(path, &[("application/dicom", one.as_slice())]),
            token,
        )
    };

    // No token: 401 with a Bearer challenge, before anything is read or stored.
    let res = router
        .clone()
        .oneshot(post("/a/studies", None))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let challenge = res.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.starts_with("Bearer "), "{challenge}");
    // Another scheme is not a bearer token either.
    let mut basic = post("/a/studies", None);
    basic
        .headers_mut()
        .insert("authorization", "Basic c2l0ZS1hOnB3".parse().unwrap());
    let res = router.clone().oneshot(basic).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    // A wrong token (also: the hash of a right one): 401 invalid_token.
    for wrong in [
        format!("{token_a}0"),
        hash_hex(&token_a),
        "ddt_".to_string(),
    ] {
        let res = router
            .clone()
            .oneshot(post("/a/studies", Some(&wrong)))
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{wrong}");
        let challenge = res.headers()["www-authenticate"].to_str().unwrap();
        assert!(challenge.contains("invalid_token"), "{challenge}");
    }

    // A right token on a route it may not use: 403.
    let res = router
        .clone()
        .oneshot(post("/b/studies", Some(&token_a)))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        state.spool().depth().entries,
        0,
        "a refused request stored nothing"
    );
    let audit_path = dir.path().join("data/audit.jsonl");
    assert_eq!(
        std::fs::read_to_string(&audit_path).unwrap_or_default(),
        "",
        "a refused request audits nothing"
    );

    // Right tokens on their routes: stored.
    let res = router
        .clone()
        .oneshot(post("/a/studies", Some(&token_a)))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = router
        .clone()
        .oneshot(post(&format!("/b/studies/{STUDY}"), Some(&token_b)))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let depth = state.spool().depth();
    assert_eq!(depth.destinations["out-a"].entries, 1);
    assert_eq!(depth.destinations["out-b"].entries, 1);

    // Operations endpoints stay open (probes and scrapers).
    let res = router
        .clone()
        .oneshot(Request::get("/healthz").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    // Logs name the token, never the token or its hash.
    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("site-a") && logs.contains("site-b"),
        "token names are logged:\n{logs}"
    );
    assert!(logs.contains("may not use this route"), "{logs}");
    for secret in [&token_a, &token_b, &hash_hex(&token_a), &hash_hex(&token_b)] {
        assert!(
            !logs.contains(secret.as_str()),
            "a token or hash in the logs"
        );
        assert!(
            !logs.contains(&secret[4..20]),
            "part of a token or hash in the logs"
        );
    }
}

fn validate_text(text: &str) -> Result<dicom_deid_server::config::Config, String> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gateway.toml");
    std::fs::write(&file, text).unwrap();
    RawConfig::from_file(&file)
        .and_then(|raw| raw.validate(Some(&file)))
        .map_err(|e| e.to_string())
}

#[test]
fn a_non_loopback_listener_needs_tokens_and_tokens_are_validated() {
    let err = validate_text("listen = \"0.0.0.0:8104\"\n").unwrap_err();
    assert!(
        err.contains(": listen: ") && err.contains("[[tokens]]") && err.contains("loopback"),
        "{err}"
    );
    let (_, hash) = mint().unwrap();
    let ok = validate_text(&format!(
        "listen = \"0.0.0.0:8104\"\n[[tokens]]\nname = \"pacs\"\nsha256 = \"{hash}\"\nroutes = [\"default\"]\n"
    ))
    .unwrap();
    assert!(!ok.tokens.is_empty());
    assert!(!format!("{ok:?}").contains(&hash), "Debug shows no hash");

    // Bad entries: the reason names the key and never echoes the value.
    let bad = "f".repeat(63);
    let err = validate_text(&format!(
        "[[tokens]]\nname = \"../x\"\nsha256 = \"{bad}\"\nroutes = [\"nope\"]\n\
         [[tokens]]\nname = \"y\"\nsha256 = \"{hash}\"\nroutes = []\n\
         [[tokens]]\nname = \"z\"\nsha256 = \"{hash}\"\nroutes = [\"default\"]\n"
    ))
    .unwrap_err();
    assert!(err.contains(": tokens[0].name: "), "{err}");
    assert!(
        err.contains(": tokens[0].sha256: must be 64 hex digits"),
        "{err}"
    );
    assert!(
        err.contains(": tokens[0].routes[0]: no route is named \"nope\""),
        "{err}"
    );
    assert!(err.contains(": tokens[1].routes: "), "{err}");
    assert!(err.contains(": tokens[2].sha256: the same token"), "{err}");
    assert!(!err.contains(&bad) && !err.contains(&hash), "{err}");
    // A token itself is not a key of the config.
    let err =
        validate_text("[[tokens]]\nname = \"x\"\ntoken = \"ddt_1\"\nroutes = [\"default\"]\n")
            .unwrap_err();
    assert!(err.contains("token"), "{err}");
}

#[test]
fn tls_files_are_checked_at_build_with_file_key_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let build = |cert: &Path, key: &Path| {
        let file = dir.path().join("gw.toml");
        std::fs::write(
            &file,
            format!(
                "data_dir = \"data\"\n[tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n",
                cert.display(),
                key.display()
            ),
        )
        .unwrap();
        RawConfig::from_file(&file)
            .unwrap()
            .validate(Some(&file))
            .unwrap()
            .build()
            .map(|gw| gw.tls.is_some())
            .map_err(|e| e.to_string())
    };
    assert_eq!(build(&pki.cert, &pki.key), Ok(true));
    // The CA is not the server's certificate: the key does not fit.
    let err = build(&pki.ca, &pki.key).unwrap_err();
    assert!(err.contains(": tls.key_file: "), "{err}");
    let err = build(&dir.path().join("missing.pem"), &pki.key).unwrap_err();
    assert!(err.contains(": tls.cert_file: cannot read"), "{err}");
    let err = build(&pki.key, &pki.key).unwrap_err();
    assert!(err.contains(": tls.cert_file: "), "{err}");
    let not_a_key = dir.path().join("not-a-key.pem");
    std::fs::copy(&pki.cert, &not_a_key).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&not_a_key, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let err = build(&pki.cert, &not_a_key).unwrap_err();
    assert!(
        err.contains(": tls.key_file: ") && err.contains("no PEM private key"),
        "{err}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&pki.key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = build(&pki.cert, &pki.key).unwrap_err();
        assert!(
            err.contains(": tls.key_file: ") && err.contains("readable by everyone"),
            "{err}"
        );
    }
    // Neither file's content shows in any message.
    let key_pem = std::fs::read_to_string(&pki.key).unwrap();
    let body_line = key_pem.lines().nth(1).unwrap();
    assert!(!err.contains(body_line));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_on_the_listener_serves_https_with_tokens() {
    captured_logs();
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let extra = format!(
        "[tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n",
        pki.cert.display(),
        pki.key.display()
    );
    let (gw, token_a, _) = two_route_gateway(dir.path(), &extra);
    let spool = gw.state.spool().clone();
    let running = Running::start(gw).await;
    let addr = running.addr;

    let client = pki.client();
    let res = client
        .get(format!("https://{addr}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let one = instance(1);
    let boundary = "tls-boundary-1";
    let body = dicom_deid_dicomweb::encode_parts(boundary, &[("application/dicom", &one)]);
    let post = |token: Option<&str>| {
        let mut req = client
            .post(format!("https://localhost:{}/a/studies", addr.port()))
            .header(
                "content-type",
                format!("multipart/related; type=\"application/dicom\"; boundary={boundary}"),
            )
            .body(body.to_vec());
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send()
    };
    assert_eq!(post(None).await.unwrap().status(), 401);
    let res = post(Some(&token_a)).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(spool.depth().destinations["out-a"].entries, 1);

    // A client that does not trust the CA gets no answer; neither does clear HTTP.
    let untrusting = reqwest::Client::builder().use_rustls_tls().build().unwrap();
    let err = untrusting
        .get(format!("https://{addr}/healthz"))
        .send()
        .await
        .expect_err("an untrusted certificate is refused by the client");
    assert!(err.is_connect() || err.is_request(), "{err}");
    let answer = tokio::task::spawn_blocking(move || {
        raw_exchange(
            addr,
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
    })
    .await
    .unwrap();
    assert_eq!(status_of(&answer), 0, "clear HTTP on a TLS port: {answer}");
    // Still serving.
    let res = client
        .get(format!("https://{addr}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_are_bounded_in_count_and_size() {
    let dir = tempfile::tempdir().unwrap();
    let running = Running::start(gateway(&raw_config(dir.path()))).await;
    let addr = running.addr;
    let answers = tokio::task::spawn_blocking(move || {
        let mut many = String::from("GET /healthz HTTP/1.1\r\nHost: x\r\n");
        for i in 0..150 {
            many.push_str(&format!("X-Filler-{i}: y\r\n"));
        }
        many.push_str("Connection: close\r\n\r\n");
        let big = format!(
            "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
            "b".repeat(80 << 10)
        );
        let long_uri = format!(
            "POST /studies/{} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            "1.".repeat(60 << 10)
        );
        let fine = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        [
            raw_exchange(addr, many.as_bytes()),
            raw_exchange(addr, big.as_bytes()),
            raw_exchange(addr, long_uri.as_bytes()),
            raw_exchange(addr, fine.as_bytes()),
        ]
    })
    .await
    .unwrap();
    assert_eq!(status_of(&answers[0]), 431, "150 headers: {}", answers[0]);
    assert_eq!(
        status_of(&answers[1]),
        431,
        "an 80 KiB header: {}",
        answers[1]
    );
    let s = status_of(&answers[2]);
    assert!((400..500).contains(&s), "a 120 KiB URI: {}", answers[2]);
    assert_eq!(status_of(&answers[3]), 200, "still serving: {}", answers[3]);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_in_a_request_reaches_outside_the_data_directory() {
    let logs = captured_logs();
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let gw = gateway(&raw_config(&data));
    let audit_path = data.join("audit.jsonl");
    let before_root = files_under(root.path());
    let running = Running::start(gw).await;
    let addr = running.addr;

    let one = instance(1);
    let statuses = tokio::task::spawn_blocking(move || {
        let head = |method: &str, path: &str, len: usize| {
            format!(
                "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/dicom\r\n\
                 Content-Length: {len}\r\nConnection: close\r\n\r\n"
            )
        };
        let long = "9".repeat(4000);
        let paths = [
            "/studies/..%2F..%2F..%2Fetc%2Fpasswd",
            "/studies/..%2f..%2ftmp%2fx",
            "/studies/%2e%2e",
            "/studies/%2E%2E%2F%2E%2E",
            "/studies/..",
            "/studies/../../../../tmp/x",
            "/%2e%2e/%2e%2e/studies",
            "/studies/1.2.3%00",
            "/studies/1.2.3%2F..%2F..",
            "/studies/1.2.3/../../x",
            "/studies/not-a-uid",
            "/studies/1..2",
            "/studies/%C0%AE%C0%AE",
            "/studies/%ff",
            &format!("/studies/{long}"),
            "//studies",
            "/studies%2F..",
            "/./studies/../studies",
        ];
        let mut out = Vec::new();
        for path in paths {
            let mut request = head("POST", path, one.len()).into_bytes();
            request.extend_from_slice(&one);
            let answer = raw_exchange(addr, &request);
            out.push((path.to_string(), status_of(&answer)));
        }
        // A part whose headers name a path: ignored, the instance is stored by its new UIDs.
        let boundary = "trav-boundary";
        let mut body = format!(
            "--{boundary}\r\nContent-Type: application/dicom\r\n\
             Content-Disposition: attachment; filename=\"../../../evil.dcm\"\r\n\
             Content-Location: file:///tmp/evil.dcm\r\n\r\n"
        )
        .into_bytes();
        body.extend_from_slice(&one);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let mut request = format!(
            "POST /studies HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/related; \
             type=\"application/dicom\"; boundary={boundary}\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        request.extend_from_slice(&body);
        let answer = raw_exchange(addr, &request);
        out.push(("part with path headers".to_string(), status_of(&answer)));
        out
    })
    .await
    .unwrap();

    let (last, refused) = statuses.split_last().unwrap();
    for (path, status) in refused {
        assert!(
            (400..500).contains(status),
            "{path} answered {status}, expected 4xx"
        );
    }
    assert_eq!(last.1, 200, "the part with path-like headers is stored");
    // The refused requests stored and audited nothing; the good one is one entry.
    let audit = std::fs::read_to_string(&audit_path).unwrap();
    assert_eq!(
        audit.matches("\"event\":\"received\"").count(),
        1,
        "{audit}"
    );
    assert_eq!(audit.matches("\"event\":\"queued\"").count(), 1, "{audit}");
    assert_eq!(
        audit.matches("\"event\":\"rejected\"").count(),
        0,
        "{audit}"
    );

    running.stop().await;
    // Outside the data directory nothing changed: not in the temp root, not in the working
    // directory; inside, every file is in the spool, the output folder, the key or the audit.
    let after_root: Vec<_> = files_under(root.path())
        .into_iter()
        .filter(|p| !p.starts_with(&data))
        .collect();
    assert_eq!(
        after_root,
        before_root
            .into_iter()
            .filter(|p| !p.starts_with(&data))
            .collect::<Vec<_>>()
    );
    let cwd = std::env::current_dir().unwrap();
    for base in [
        cwd.as_path(),
        root.path(),
        &std::env::temp_dir(),
        Path::new("/"),
    ] {
        assert!(!base.join("evil.dcm").exists(), "{}", base.display());
    }
    for f in files_under(&data) {
        let rel = f.strip_prefix(&data).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        assert!(
            ["spool", "out", "key", "audit.jsonl"].contains(&top.as_ref()),
            "unexpected file {}",
            f.display()
        );
        assert!(!f.to_string_lossy().contains("evil"), "{}", f.display());
    }
    // No request URI or part header reached the logs.
    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    for needle in ["passwd", "evil", "not-a-uid", "%2e", "%2F", "1.2.3%00"] {
        assert!(!logs.contains(needle), "{needle} in the logs");
    }
}
