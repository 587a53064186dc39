//! `OTEL_*` settings that used to be accepted and ignored, honoured against the real collector:
//! compression and headers (seen by a recording proxy in front of rotel, over HTTP and gRPC, per
//! signal), a signal's own timeout, span limits.
#![cfg(feature = "otel")]
#![allow(clippy::unwrap_used)]

mod otel_support;

use std::time::Duration;

use otel_support::{wait_until, HeaderProxy, Rotel};
use tracelight::otel::OtelConfig;
use tracelight::sink::MemoryWriter;

fn from_vars(vars: &[(&str, String)]) -> OtelConfig {
    OtelConfig::from_lookup(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())).unwrap()
}

fn init(config: OtelConfig) -> tracelight::LocalGuard {
    tracelight::builder()
        .service("settings")
        .writer(MemoryWriter::new())
        .otel(config)
        .init_local()
        .unwrap()
}

/// A port on which connections are accepted and never answered.
fn silent_collector() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().flatten() {
            held.push(s);
        }
    });
    port
}

fn header<'a>(h: &'a http::HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// Both signals through the proxy with gzip and headers; returns what the proxy saw.
fn export_through_proxy(rotel: &Rotel, grpc: bool, name: &str) -> Vec<(String, http::HeaderMap)> {
    let proxy = HeaderProxy::start(if grpc { rotel.grpc } else { rotel.http }, grpc);
    let vars = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", proxy.url()),
        (
            "OTEL_EXPORTER_OTLP_PROTOCOL",
            (if grpc { "grpc" } else { "http/protobuf" }).to_owned(),
        ),
        ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip".to_owned()),
        (
            "OTEL_EXPORTER_OTLP_HEADERS",
            "x-api-key=k-123,x-tenant=shop%20one".to_owned(),
        ),
        (
            "OTEL_EXPORTER_OTLP_LOGS_HEADERS",
            "x-api-key=k-logs".to_owned(),
        ),
        ("OTEL_BSP_SCHEDULE_DELAY", "50".to_owned()),
        ("OTEL_BLRP_SCHEDULE_DELAY", "50".to_owned()),
    ];
    let guard = init(from_vars(&vars));
    {
        let _span = tracing::info_span!("settings_span", name).entered();
        tracing::info!("inside {name}");
    }
    drop(guard);
    // The collector decompressed and read both.
    rotel.wait_span("settings_span");
    rotel.wait_log(&format!("inside {name}"));
    proxy.seen()
}

#[test]
fn gzip_and_headers_reach_a_real_collector_over_http() {
    let rotel = Rotel::start();
    let seen = export_through_proxy(&rotel, false, "over-http");
    let traces: Vec<_> = seen.iter().filter(|(p, _)| p == "/v1/traces").collect();
    let logs: Vec<_> = seen.iter().filter(|(p, _)| p == "/v1/logs").collect();
    assert!(!traces.is_empty() && !logs.is_empty(), "{seen:?}");
    for (_, h) in &traces {
        assert_eq!(header(h, "content-encoding"), Some("gzip"), "{h:?}");
        assert_eq!(header(h, "x-api-key"), Some("k-123"));
        assert_eq!(header(h, "x-tenant"), Some("shop one"));
    }
    for (_, h) in &logs {
        assert_eq!(header(h, "content-encoding"), Some("gzip"), "{h:?}");
        // The signal's own headers win over the general ones, name by name.
        assert_eq!(header(h, "x-api-key"), Some("k-logs"));
        assert_eq!(header(h, "x-tenant"), Some("shop one"));
    }
}

#[test]
fn gzip_and_headers_reach_a_real_collector_over_grpc() {
    let rotel = Rotel::start();
    let seen = export_through_proxy(&rotel, true, "over-grpc");
    let traces: Vec<_> = seen
        .iter()
        .filter(|(p, _)| p.ends_with("TraceService/Export"))
        .collect();
    let logs: Vec<_> = seen
        .iter()
        .filter(|(p, _)| p.ends_with("LogsService/Export"))
        .collect();
    assert!(!traces.is_empty() && !logs.is_empty(), "{seen:?}");
    for (_, h) in &traces {
        assert_eq!(header(h, "grpc-encoding"), Some("gzip"), "{h:?}");
        assert_eq!(header(h, "x-api-key"), Some("k-123"));
        assert_eq!(header(h, "x-tenant"), Some("shop one"));
    }
    for (_, h) in &logs {
        assert_eq!(header(h, "x-api-key"), Some("k-logs"), "{h:?}");
    }
}

#[test]
fn a_signal_timeout_ends_an_export_that_gets_no_answer() {
    // A collector that accepts connections and never answers.
    let port = silent_collector();
    let vars = [
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://127.0.0.1:{port}"),
        ),
        ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "100".to_owned()),
        ("OTEL_LOGS_EXPORTER", "none".to_owned()),
        ("OTEL_BSP_SCHEDULE_DELAY", "20".to_owned()),
    ];
    let guard = init(from_vars(&vars));
    drop(tracing::info_span!("never_answered").entered());
    let pipeline = guard.otel().unwrap();
    // Counted as failed after 100 ms, not after the default 10 s (nor lost at shutdown).
    wait_until(
        Duration::from_secs(5),
        "the span counted as failed",
        || (pipeline.stats().spans.failed == 1).then_some(()),
        || format!("{:?}", pipeline.stats()),
    );
}

#[test]
fn span_limits_are_applied_to_exported_spans() {
    let rotel = Rotel::start();
    let vars = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", rotel.http_url()),
        ("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "2".to_owned()),
        ("OTEL_LOGS_EXPORTER", "none".to_owned()),
        ("OTEL_BSP_SCHEDULE_DELAY", "50".to_owned()),
    ];
    let guard = init(from_vars(&vars));
    drop(tracing::info_span!("limited", a = 1, b = 2, c = 3, d = 4, e = 5).entered());
    drop(guard);
    let span = rotel.wait_span("limited");
    assert!(span.attributes.len() <= 2, "{:#?}", span.attributes);
}

/// The `failure` and `reason` of the first failed export to `url`.
fn first_failure(url: &str, grpc: bool) -> (String, String) {
    let lines = MemoryWriter::new();
    let guard = tracelight::builder()
        .writer(lines.clone())
        .format(tracelight::Format::Json)
        .otel(
            OtelConfig::new()
                .endpoint(url)
                .protocol(if grpc {
                    tracelight::otel::Protocol::Grpc
                } else {
                    tracelight::otel::Protocol::HttpProtobuf
                })
                .logs(false)
                .traces_batch(
                    tracelight::otel::BatchConfig::default()
                        .scheduled_delay(Duration::from_millis(20))
                        .export_timeout(Duration::from_millis(300)),
                ),
        )
        .init_local()
        .unwrap();
    drop(tracing::info_span!("doomed").entered());
    let line = otel_support::export_failure(&lines);
    drop(guard);
    assert!(!line.contains("s3cr3t"), "{line}");
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    (
        v["failure"].as_str().unwrap_or("").to_owned(),
        v["reason"].as_str().unwrap_or("").to_owned(),
    )
}

#[test]
fn export_failures_say_what_failed() {
    // Nothing listens on port 1. The endpoint's password is never repeated.
    for grpc in [false, true] {
        let (failure, reason) = first_failure("http://user:s3cr3t@127.0.0.1:1", grpc);
        assert_eq!(failure, "connection refused", "grpc={grpc}: {reason}");
        assert!(reason.contains("Connection refused"), "{reason}");
        assert!(!reason.contains("s3cr3t"), "{reason}");
    }
    // A socket that never answers.
    let port = silent_collector();
    let (failure, reason) = first_failure(&format!("http://127.0.0.1:{port}"), false);
    assert_eq!(failure, "timed out", "{reason}");
    // An HTTP server that is not a collector: 404 to everything.
    let http = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = http.local_addr().unwrap().port();
    std::thread::spawn(move || {
        use std::io::{Read as _, Write as _};
        for mut s in http.incoming().flatten() {
            let mut b = [0u8; 65536];
            let _ = s.read(&mut b);
            let _ = s.write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n");
        }
    });
    let (failure, reason) = first_failure(&format!("http://127.0.0.1:{port}"), false);
    assert_eq!(
        failure, "the collector answered with an error status",
        "{reason}"
    );
    assert!(reason.contains("404"), "{reason}");
}

#[test]
fn the_loss_summary_says_where_and_why_when_the_collector_never_answered() {
    // Accepts and never answers; the run ends long before the 10 s export timeout.
    let port = silent_collector();
    let lines = MemoryWriter::new();
    let guard = tracelight::builder()
        .writer(lines.clone())
        .format(tracelight::Format::Json)
        .otel(
            OtelConfig::new()
                .endpoint(format!("http://user:s3cr3t@127.0.0.1:{port}"))
                .logs(false)
                .shutdown_timeout(Duration::from_millis(300))
                .traces_batch(
                    tracelight::otel::BatchConfig::default()
                        .scheduled_delay(Duration::from_millis(20)),
                ),
        )
        .init_local()
        .unwrap();
    drop(tracing::info_span!("never_arrives").entered());
    drop(guard);
    let summary = lines
        .lines()
        .into_iter()
        .find(|l| l.contains("lost telemetry"))
        .unwrap_or_else(|| panic!("no summary: {}", lines.contents()));
    assert!(
        summary.contains(&format!(
            "to http://user:[REDACTED]@127.0.0.1:{port}/v1/traces"
        )) && summary.contains("the collector had not answered"),
        "{summary}"
    );
    assert!(!summary.contains("s3cr3t"), "{summary}");
}
