//! OTLP export to a real collector (rotel), over gRPC and over HTTP/protobuf: span names,
//! attributes, parent/child links, log records with their trace and span ids, the resource, the
//! same ids in the JSON lines, and secrets that never reach the collector.
#![cfg(feature = "otel")]
#![allow(clippy::unwrap_used)]

mod otel_support;

use std::time::Duration;

use otel_support::Rotel;
use tracelight::otel::{BatchConfig, OtelConfig, Protocol};
use tracelight::Format;

fn fast() -> BatchConfig {
    BatchConfig::default().scheduled_delay(Duration::from_millis(50))
}

fn export_to(rotel: &Rotel, protocol: Protocol) {
    let url = match protocol {
        Protocol::Grpc => rotel.grpc_url(),
        _ => rotel.http_url(),
    };
    let lines = tracelight::sink::MemoryWriter::new();
    let guard = tracelight::builder()
        .service("checkout")
        .env("test")
        .format(Format::Json)
        .writer(lines.clone())
        .otel(
            OtelConfig::new()
                .endpoint(url)
                .protocol(protocol)
                .service_version("1.2.3")
                .resource_attribute("team", "payments")
                .traces_batch(fast())
                .logs_batch(fast()),
        )
        .init_local()
        .unwrap();
    let marker = format!("{protocol:?}").to_lowercase();
    {
        let _root = tracing::info_span!(
            "checkout_request",
            order_id = "abc-456",
            password = "hunter2-secret",
            proto = marker.as_str()
        )
        .entered();
        tracing::info!(step = 1u64, "started {marker}");
        tracing::info!("login used Bearer zyxwvuts98765432 ({marker})");
        let _child = tracing::info_span!("charge_card", amount = 99.5, items = 3).entered();
        tracing::warn!(
            user_id = 42,
            api_token = "tok-SECRET-123",
            note = "header was Bearer abcdefgh12345678",
            "charged card {marker}"
        );
    }
    tracing::info!("outside any span {marker}");
    guard.shutdown();

    let root = rotel.wait_span("checkout_request");
    let child = rotel.wait_span("charge_card");
    let log = rotel.wait_log(&format!("charged card {marker}"));
    let started = rotel.wait_log(&format!("started {marker}"));
    let outside = rotel.wait_log(&format!("outside any span {marker}"));
    let out = rotel.output();

    // Spans: names, attributes, the parent link, one trace.
    assert_eq!(root.trace_id().len(), 32, "{}", root.text);
    assert_eq!(child.trace_id(), root.trace_id());
    assert_eq!(child.parent_id(), root.span_id(), "{}", child.text);
    assert_eq!(root.attr("order_id"), Some("Str(abc-456)"), "{}", root.text);
    assert_eq!(root.attr("proto"), Some(&*format!("Str({marker})")));
    assert_eq!(child.attr("amount"), Some("Double(99.5)"), "{}", child.text);
    assert_eq!(child.attr("items"), Some("Int(3)"), "{}", child.text);

    // Resource.
    assert_eq!(root.resource_attr("service.name"), Some("Str(checkout)"));
    assert_eq!(root.resource_attr("service.version"), Some("Str(1.2.3)"));
    assert_eq!(
        root.resource_attr("deployment.environment.name"),
        Some("Str(test)")
    );
    assert_eq!(root.resource_attr("team"), Some("Str(payments)"));
    assert!(root.resource_attr("host.name").is_some(), "{}", out);
    assert_eq!(log.resource_attr("service.name"), Some("Str(checkout)"));

    // Log records: their span's ids, their fields, their severity.
    assert_eq!(log.trace_id(), root.trace_id(), "{}", log.text);
    assert_eq!(log.span_id(), child.span_id(), "{}", log.text);
    assert_eq!(log.get("SeverityText"), Some("WARN"), "{}", log.text);
    assert_eq!(log.attr("user_id"), Some("Int(42)"), "{}", log.text);
    assert_eq!(started.span_id(), root.span_id(), "{}", started.text);
    assert_eq!(outside.trace_id(), "", "{}", outside.text);

    // Secrets: masked by key and by shape, absent from everything the collector printed.
    assert_eq!(
        root.attr("password"),
        Some("Str([REDACTED])"),
        "{}",
        root.text
    );
    assert_eq!(
        log.attr("api_token"),
        Some("Str([REDACTED])"),
        "{}",
        log.text
    );
    assert_eq!(
        log.attr("note"),
        Some("Str(header was Bearer [REDACTED])"),
        "{}",
        log.text
    );
    let body = rotel.wait_log(&format!("login used Bearer [REDACTED] ({marker})"));
    assert_eq!(body.span_id(), root.span_id(), "{}", body.text);
    for secret in [
        "hunter2-secret",
        "tok-SECRET-123",
        "abcdefgh12345678",
        "zyxwvuts98765432",
    ] {
        let out = rotel.output();
        assert!(
            !out.contains(secret),
            "{secret} reached the collector:\n{out}"
        );
    }

    // The JSON lines carry the same ids.
    let json: Vec<serde_json::Value> = lines
        .lines()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let line = |msg: &str| {
        json.iter()
            .find(|v| v["message"] == msg)
            .unwrap_or_else(|| panic!("no line {msg:?} in {json:#?}"))
    };
    let charged = line(&format!("charged card {marker}"));
    assert_eq!(charged["trace_id"], root.trace_id(), "{charged}");
    assert_eq!(charged["span_id"], child.span_id(), "{charged}");
    let started_line = line(&format!("started {marker}"));
    assert_eq!(started_line["trace_id"], root.trace_id());
    assert_eq!(started_line["span_id"], root.span_id());
    let outside_line = line(&format!("outside any span {marker}"));
    assert!(outside_line.get("trace_id").is_none(), "{outside_line}");
    // trace_id and span_id come right after the context fields, before the event's own.
    let raw = lines
        .lines()
        .into_iter()
        .find(|l| l.contains(&format!("charged card {marker}")))
        .unwrap();
    let (t, s, u) = (
        raw.find("\"trace_id\"").unwrap(),
        raw.find("\"span_id\"").unwrap(),
        raw.find("\"user_id\"").unwrap(),
    );
    assert!(t < s && s < u, "{raw}");

    let stats = guard.otel().unwrap().stats();
    assert!(stats.spans.exported >= 2, "{stats:?}");
    assert!(stats.logs.exported >= 3, "{stats:?}");
    assert_eq!(stats.spans.dropped + stats.spans.failed, 0, "{stats:?}");
}

#[test]
fn exports_over_grpc() {
    let rotel = Rotel::start();
    export_to(&rotel, Protocol::Grpc);
}

#[test]
fn exports_over_http_protobuf() {
    let rotel = Rotel::start();
    export_to(&rotel, Protocol::HttpProtobuf);
}

#[test]
fn without_an_endpoint_nothing_is_exported_and_lines_have_no_ids() {
    let lines = tracelight::sink::MemoryWriter::new();
    let guard = tracelight::builder()
        .format(Format::Json)
        .writer(lines.clone())
        .init_local()
        .unwrap();
    assert!(guard.otel().is_none());
    let _s = tracing::info_span!("work").entered();
    tracing::info!("inside");
    let l = &lines.lines()[0];
    assert!(!l.contains("trace_id"), "{l}");
}
