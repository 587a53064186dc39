//! The JSON lines read by the real OpenTelemetry Collector: `otelcol-contrib`'s `filelog` receiver
//! with `json_parser` (timestamp, severity) and `trace_parser` (trace ids) forwards them over OTLP
//! to rotel; attributes, severity, timestamp and trace ids arrive intact and match the spans
//! tracelight exported itself. The collector configuration is the recipe of docs/opentelemetry.md;
//! the `otel` schema preset's recipe (docs/schema.md) puts each key where the data model says.
#![cfg(feature = "otel")]
#![allow(clippy::unwrap_used)]

mod otel_support;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use otel_support::{binary, Rotel};
use tracelight::otel::{BatchConfig, OtelConfig, Protocol};
use tracelight::sink::FileOptions;
use tracelight::{Format, Output, Stream};

/// The recipe: read tracelight's JSON lines, take the timestamp, severity and trace context.
fn collector_config(log: &std::path::Path, otlp_http: &str) -> String {
    format!(
        r#"receivers:
  filelog:
    include: ["{log}"]
    start_at: beginning
    poll_interval: 50ms
    operators:
      - type: json_parser
        timestamp:
          parse_from: attributes.timestamp
          layout_type: gotime
          layout: "2006-01-02T15:04:05.000000Z"
        severity:
          parse_from: attributes.level
      - type: trace_parser
        trace_id:
          parse_from: attributes.trace_id
        span_id:
          parse_from: attributes.span_id
      - type: move
        from: attributes.message
        to: body
exporters:
  otlphttp:
    endpoint: {otlp_http}
    compression: none
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    logs:
      receivers: [filelog]
      exporters: [otlphttp]
"#,
        log = log.display()
    )
}

struct Otelcol(Child);

impl Drop for Otelcol {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `2026-02-10T22:30:00.123456Z` as nanoseconds since the epoch.
fn unix_nanos(ts: &str) -> u128 {
    let n = |a: usize, b: usize| ts[a..b].parse::<i64>().unwrap();
    let (y, m, d) = (n(0, 4), n(5, 7), n(8, 10));
    let (hh, mm, ss, us) = (n(11, 13), n(14, 16), n(17, 19), n(20, 26));
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hh * 3600 + mm * 60 + ss;
    (secs as u128) * 1_000_000_000 + (us as u128) * 1000
}

#[test]
fn filelog_reads_the_json_lines_with_their_trace_ids() {
    let rotel = Rotel::start();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let fast = BatchConfig::default().scheduled_delay(Duration::from_millis(50));
    let guard = tracelight::builder()
        .service("billing")
        .stream(Stream::new("app", Output::File(FileOptions::new(&path))).format(Format::Json))
        .otel(
            OtelConfig::new()
                .endpoint(rotel.http_url())
                .protocol(Protocol::HttpProtobuf)
                .logs(false) // every log record at rotel comes through the file
                .traces_batch(fast),
        )
        .init_local()
        .unwrap();
    {
        let _s = tracing::info_span!("create_invoice", invoice = "inv-9").entered();
        tracing::warn!(
            user_id = 42,
            amount = 99.5,
            paid = false,
            order_id = "abc-456",
            "invoice created"
        );
    }
    tracing::error!(code = 7, "outside any span");
    guard.shutdown();
    let span = rotel.wait_span("create_invoice");

    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let created = lines
        .iter()
        .find(|v| v["message"] == "invoice created")
        .unwrap();
    assert_eq!(created["trace_id"], span.trace_id());

    let config = dir.path().join("otelcol.yaml");
    std::fs::write(&config, collector_config(&path, &rotel.http_url())).unwrap();
    let otelcol = binary("OTELCOL_CONTRIB", "otelcol-contrib");
    let child = Command::new(&otelcol)
        .arg("--config")
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", otelcol.display()));
    let _otelcol = Otelcol(child);

    let log = rotel.wait_log("invoice created");
    let outside = rotel.wait_log("outside any span");

    assert_eq!(
        log.get("Body"),
        Some("Str(invoice created)"),
        "{}",
        log.text
    );
    assert_eq!(log.trace_id(), span.trace_id(), "{}", log.text);
    assert_eq!(log.span_id(), span.span_id(), "{}", log.text);
    assert_eq!(log.get("SeverityText"), Some("WARN"), "{}", log.text);
    assert!(
        log.get("SeverityNumber").unwrap().contains("WARN"),
        "{}",
        log.text
    );
    let ts = created["timestamp"].as_str().unwrap();
    assert_eq!(
        log.get("Timestamp"),
        Some(unix_nanos(ts).to_string().as_str()),
        "{ts}\n{}",
        log.text
    );
    // The fields, typed as JSON types.
    assert_eq!(log.attr("order_id"), Some("Str(abc-456)"), "{}", log.text);
    assert_eq!(log.attr("amount"), Some("Double(99.5)"), "{}", log.text);
    assert_eq!(log.attr("paid"), Some("Bool(false)"), "{}", log.text);
    let user = log.attr("user_id").unwrap();
    assert!(user == "Double(42)" || user == "Int(42)", "{}", log.text);
    assert_eq!(log.attr("service"), Some("Str(billing)"), "{}", log.text);
    let span_obj = log.attr("span").unwrap();
    assert!(span_obj.contains("create_invoice"), "{}", log.text);

    assert_eq!(
        outside.get("SeverityText"),
        Some("ERROR"),
        "{}",
        outside.text
    );
    assert_eq!(outside.trace_id(), "", "{}", outside.text);
}

/// The recipe for the `otel` schema preset (docs/schema.md): the keys are the log data model's,
/// so each goes where its name says, and the resource comes from the line.
fn otel_preset_config(log: &std::path::Path, otlp_http: &str) -> String {
    format!(
        r#"receivers:
  filelog:
    include: ["{log}"]
    start_at: beginning
    poll_interval: 50ms
    operators:
      - type: json_parser
        timestamp:
          parse_from: attributes.Timestamp
          layout_type: gotime
          layout: "2006-01-02T15:04:05.000000Z"
        severity:
          parse_from: attributes.SeverityText
        scope_name:
          parse_from: attributes.InstrumentationScope.Name
      - type: trace_parser
        trace_id:
          parse_from: attributes.TraceId
        span_id:
          parse_from: attributes.SpanId
      - type: move
        from: attributes.Body
        to: body
      - type: move
        from: attributes.Resource
        to: resource.tracelight
      - type: flatten
        field: resource.tracelight
      - type: remove
        field: attributes.Timestamp
      - type: remove
        field: attributes.SeverityText
      - type: remove
        field: attributes.SeverityNumber
      - type: remove
        field: attributes.TraceId
      - type: remove
        field: attributes.SpanId
      - type: remove
        field: attributes.InstrumentationScope
exporters:
  otlphttp:
    endpoint: {otlp_http}
    compression: none
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    logs:
      receivers: [filelog]
      exporters: [otlphttp]
"#,
        log = log.display()
    )
}

#[test]
fn filelog_reads_the_otel_preset_into_the_log_data_model() {
    let rotel = Rotel::start();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let fast = BatchConfig::default().scheduled_delay(Duration::from_millis(50));
    let guard = tracelight::builder()
        .service("billing")
        .env("staging")
        .schema(tracelight::Schema::Otel)
        .stream(Stream::new("app", Output::File(FileOptions::new(&path))).format(Format::Json))
        .otel(
            OtelConfig::new()
                .endpoint(rotel.http_url())
                .protocol(Protocol::HttpProtobuf)
                .logs(false)
                .traces_batch(fast),
        )
        .init_local()
        .unwrap();
    {
        let _s = tracing::info_span!("create_invoice", invoice = "inv-9").entered();
        tracing::warn!(user_id = 42, order_id = "abc-456", "invoice created");
    }
    guard.shutdown();
    let span = rotel.wait_span("create_invoice");
    let text = std::fs::read_to_string(&path).unwrap();
    let created: serde_json::Value = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["Body"] == "invoice created")
        .unwrap();

    let config = dir.path().join("otelcol.yaml");
    std::fs::write(&config, otel_preset_config(&path, &rotel.http_url())).unwrap();
    let otelcol = binary("OTELCOL_CONTRIB", "otelcol-contrib");
    let child = Command::new(&otelcol)
        .arg("--config")
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", otelcol.display()));
    let _otelcol = Otelcol(child);

    let log = rotel.wait_log("invoice created");
    assert_eq!(
        log.get("Body"),
        Some("Str(invoice created)"),
        "{}",
        log.text
    );
    assert_eq!(log.trace_id(), span.trace_id(), "{}", log.text);
    assert_eq!(log.span_id(), span.span_id(), "{}", log.text);
    assert_eq!(log.get("SeverityText"), Some("WARN"), "{}", log.text);
    assert!(
        log.get("SeverityNumber").unwrap().contains("WARN"),
        "{}",
        log.text
    );
    let ts = created["Timestamp"].as_str().unwrap();
    assert_eq!(
        log.get("Timestamp"),
        Some(unix_nanos(ts).to_string().as_str()),
        "{ts}\n{}",
        log.text
    );
    assert_eq!(log.attr("order_id"), Some("Str(abc-456)"), "{}", log.text);
    assert!(
        log.attr("code.file.path")
            .unwrap()
            .contains("otel_filelog.rs"),
        "{}",
        log.text
    );
    assert!(log.attr("thread.name").is_some(), "{}", log.text);
    assert!(
        log.attr("SeverityText").is_none() && log.attr("TraceId").is_none(),
        "{}",
        log.text
    );
    assert_eq!(
        log.resource_attr("service.name"),
        Some("Str(billing)"),
        "{:?}",
        log.resource
    );
    assert_eq!(
        log.resource_attr("deployment.environment.name"),
        Some("Str(staging)"),
        "{:?}",
        log.resource
    );
    assert!(
        rotel.output().contains("InstrumentationScope otel_filelog"),
        "the target is the scope's name: {}",
        rotel.output()
    );
}
