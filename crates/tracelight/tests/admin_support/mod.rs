//! Shared by the `admin_*` tests: one global subscriber per test binary with an `app` stream and
//! a `security` stream in memory, real axum servers on loopback, and the Prometheus text parsed by
//! the reference Python client's parser.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde_json::Value;
use tracelight::sink::MemoryWriter;
use tracelight::{Format, Guard, Handle, Output, Stream};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt as _;

/// A token long enough to be accepted.
pub const TOKEN: &str = "admin-test-token-5f1c0e9a7b3d4c2e";

pub struct Logs {
    pub app: MemoryWriter,
    pub security: MemoryWriter,
    pub guard: Guard,
}

static LOGS: OnceLock<Logs> = OnceLock::new();

/// The process's logs: installs the global subscriber on first use.
pub fn logs() -> &'static Logs {
    LOGS.get_or_init(|| {
        let app = MemoryWriter::new();
        let security = MemoryWriter::new();
        let (layer, guard) = tracelight::builder()
            .service("admin-test")
            .format(Format::Json)
            .stream(Stream::new("app", Output::Writer(Arc::new(app.clone()))))
            .stream(
                Stream::new("security", Output::Writer(Arc::new(security.clone())))
                    .rule(tracelight::default_rule("security").expect("a default stream")),
            )
            .timing(
                tracelight::timing::TimingConfig::default()
                    .threshold_for("slow_checkout", Duration::from_millis(30)),
            )
            .build()
            .expect("build");
        let subscriber = tracing_subscriber::registry()
            .with(LevelFilter::INFO)
            .with(layer);
        tracing::subscriber::set_global_default(subscriber).expect("one global subscriber");
        Logs {
            app,
            security,
            guard,
        }
    })
}

impl Logs {
    pub fn handle(&self) -> Handle {
        self.guard.handle()
    }

    /// The security stream's lines, parsed.
    pub fn security_lines(&self) -> Vec<Value> {
        self.security
            .lines()
            .iter()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("invalid JSON {e}: {l}")))
            .collect()
    }

    /// Every line of every stream, raw.
    pub fn everything(&self) -> String {
        format!("{}{}", self.app.contents(), self.security.contents())
    }
}

/// Serves `router` on 127.0.0.1 with the peer address (`ConnectInfo<SocketAddr>`).
pub async fn serve(router: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    addr
}

/// Serves `router` on 127.0.0.1 without the peer address.
pub async fn serve_anonymous(router: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    addr
}

/// A client whose requests come from `local` (another loopback address is another client).
pub fn client_from(local: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(Some(local.parse().unwrap()))
        .build()
        .unwrap()
}

/// GET `url` with the token as a bearer token; the status and the body.
pub async fn get_with_token(url: &str) -> (u16, String) {
    let resp = reqwest::Client::new()
        .get(url)
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap())
}

/// GET `url` with the token; the body parsed as JSON (after checking 200 and the content type).
pub async fn get_json(url: &str) -> Value {
    let resp = reqwest::Client::new()
        .get(url)
        .header("x-admin-token", TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{url}");
    assert_eq!(resp.headers()["content-type"], "application/json");
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let body = resp.text().await.unwrap();
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("invalid JSON from {url}: {e}: {body}"))
}

/// Whether `s` is an RFC 3339 UTC time as the admin endpoints write it:
/// `2026-02-10T22:30:00.123456Z`.
pub fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 27
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'.',
            26 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

/// The Python interpreter of the project's virtual environment (scripts/test.sh installs
/// `prometheus-client` there), or `TL_TEST_PYTHON`.
fn python() -> std::path::PathBuf {
    if let Some(p) = std::env::var_os("TL_TEST_PYTHON") {
        return p.into();
    }
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python")
}

/// Parses Prometheus text with `prometheus_client.parser.text_string_to_metric_families` (the
/// reference Python client's parser) and returns its families as JSON:
/// `[{"name","type","help","samples":[{"name","labels":{…},"value"}]}]`.
pub fn parse_prometheus(text: &str) -> Vec<Value> {
    use std::io::Write as _;
    const SCRIPT: &str = r#"
import json, math, sys
from prometheus_client.parser import text_string_to_metric_families
out = []
for f in text_string_to_metric_families(sys.stdin.read()):
    out.append({
        "name": f.name, "type": f.type, "help": f.documentation,
        "samples": [
            {"name": s.name, "labels": dict(s.labels),
             "value": s.value if math.isfinite(s.value) else repr(s.value)}
            for s in f.samples
        ],
    })
print(json.dumps(out))
"#;
    let python = python();
    let mut child = std::process::Command::new(&python)
        .arg("-c")
        .arg(SCRIPT)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {} ({e}): run scripts/test.sh once, which installs prometheus-client \
                 into .venv, or set TL_TEST_PYTHON",
                python.display()
            )
        });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the Prometheus parser refused the text: {}\n--- text ---\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}
