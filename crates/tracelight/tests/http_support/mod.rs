//! Shared by the `http_*` tests: one global subscriber per test binary writing JSON lines to
//! memory, a wait on the lines with a deadline (woken by each write, no sleeping), and real axum
//! servers on loopback.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use serde_json::Value;
use tracelight::sink::LineWriter;
use tracelight::{Format, Guard};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt as _;

/// A writer that keeps lines in memory and wakes whoever waits for a line.
#[derive(Default)]
pub struct Lines {
    buf: Mutex<Vec<u8>>,
    notify: tokio::sync::Notify,
}

impl LineWriter for &'static Lines {
    fn write_line(&self, line: &[u8]) {
        self.buf
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(line);
        self.notify.notify_waiters();
    }
}

pub struct Logs {
    lines: &'static Lines,
    guard: Guard,
}

static LOGS: OnceLock<Logs> = OnceLock::new();
static LINES: OnceLock<Lines> = OnceLock::new();

/// The process's logs: installs the global subscriber on first use.
pub fn logs() -> &'static Logs {
    LOGS.get_or_init(|| {
        let lines: &'static Lines = LINES.get_or_init(Lines::default);
        let (layer, guard) = tracelight::builder()
            .service("http-test")
            .format(Format::Json)
            .writer(lines)
            .build()
            .expect("build");
        // INFO, as a service runs: the clients' own TRACE lines stay out.
        let subscriber = tracing_subscriber::registry()
            .with(LevelFilter::INFO)
            .with(layer);
        tracing::subscriber::set_global_default(subscriber).expect("one global subscriber");
        Logs { lines, guard }
    })
}

impl Logs {
    /// The raw text written so far.
    pub fn text(&self) -> String {
        self.guard.flush();
        String::from_utf8_lossy(&self.lines.buf.lock().unwrap_or_else(|e| e.into_inner()))
            .into_owned()
    }

    /// Every line written so far, parsed (each must be valid JSON).
    pub fn all(&self) -> Vec<Value> {
        self.text()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("invalid JSON {e}: {l}")))
            .collect()
    }

    /// Waits until `pred` holds for the lines (checked after every write), for at most 10 s.
    pub async fn wait_for(&self, what: &str, pred: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let notified = self.lines.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let lines = self.all();
            if pred(&lines) {
                return lines;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                let dump: Vec<String> = lines.iter().map(Value::to_string).collect();
                panic!("timed out waiting for {what}; lines:\n{}", dump.join("\n"));
            }
        }
    }
}

/// Serves `app` on 127.0.0.1 with an OS-chosen port, with the peer address in the extensions.
pub async fn serve(app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .expect("serve");
    });
    addr
}

/// Lines whose `request_id` is `id`.
pub fn with_id<'a>(lines: &'a [Value], id: &str) -> Vec<&'a Value> {
    lines.iter().filter(|l| l["request_id"] == id).collect()
}

/// Access lines (target `tracelight::access`).
pub fn access(lines: &[Value]) -> Vec<&Value> {
    lines
        .iter()
        .filter(|l| l["target"] == "tracelight::access")
        .collect()
}

/// Whether `s` looks like a UUID v7 in hyphenated lowercase form.
pub fn is_uuid_v7(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_digit() || (b'a'..=b'f').contains(c),
        })
        && b[14] == b'7'
}
