//! The exporter's own diagnostics (its HTTP client's DEBUG and TRACE events, through the `log`
//! bridge and `tracing`; its gRPC client's h2 frames and connection spans) never reach the
//! service's streams below WARN, are not timed, and are not exported, whatever the level: one
//! test in this binary, since it installs the global subscriber the export threads log to. Spans
//! go over gRPC and logs over HTTP, so that each transport's events could feed the other.
#![cfg(feature = "otel")]
#![allow(clippy::unwrap_used)]

mod otel_support;

use otel_support::Rotel;
use serde_json::Value;
use tracelight::otel::OtelConfig;
use tracelight::sink::MemoryWriter;
use tracelight::timing::TimingConfig;

#[test]
fn the_exporters_own_events_stay_out_of_the_lines_at_trace_level() {
    let rotel = Rotel::start();
    let lines = MemoryWriter::new();
    let (grpc, http) = (rotel.grpc_url(), format!("{}/v1/logs", rotel.http_url()));
    let otel = OtelConfig::from_lookup(|k| match k {
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" => Some(grpc.clone()),
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL" => Some("grpc".into()),
        "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT" => Some(http.clone()),
        "OTEL_BSP_SCHEDULE_DELAY" | "OTEL_BLRP_SCHEDULE_DELAY" => Some("50".into()),
        _ => None,
    })
    .unwrap();
    let guard = tracelight::builder()
        .service("diagnostics")
        .filter("trace")
        .format(tracelight::Format::Json)
        // Every close reported as slow: a span of the exporter's would show.
        .timing(TimingConfig::default().threshold(std::time::Duration::ZERO))
        .writer(lines.clone())
        .otel(otel)
        .init()
        .unwrap();
    for i in 0..3u32 {
        let _span = tracing::info_span!("exported_work", i).entered();
        tracing::debug!(i, "service debug line");
    }
    rotel.wait_span("exported_work");
    rotel.wait_log("service debug line");
    drop(guard);
    let lines: Vec<Value> = lines
        .lines()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // The service's own DEBUG lines are there ...
    assert_eq!(
        lines
            .iter()
            .filter(|l| l["message"] == "service debug line")
            .count(),
        3
    );
    // ... and nothing of the exporter's below WARN, no span of its timed, nothing lost.
    assert!(
        !lines.iter().any(|l| l["thread"]
            .as_str()
            .is_some_and(|t| t.starts_with("tracelight-otel"))
            && l["message"] == "span_closed"),
        "{lines:#?}"
    );
    assert!(
        !lines.iter().any(|l| l["message"]
            .as_str()
            .is_some_and(|m| m.contains("lost telemetry"))),
        "{lines:#?}"
    );
    for log in rotel.logs() {
        for foreign in ["h2::", "hyper", "reqwest", "tonic", "tower"] {
            assert!(!log.text.contains(foreign), "exported: {}", log.text);
        }
    }
    for span in rotel.spans() {
        assert!(span.name() == "exported_work", "exported: {}", span.text);
    }
    let foreign: Vec<&Value> = lines
        .iter()
        .filter(|l| {
            let t = l["target"].as_str().unwrap_or("");
            l["level"] != "WARN"
                && l["level"] != "ERROR"
                && !t.starts_with("otel_diagnostics")
                && !t.starts_with("tracelight")
        })
        .collect();
    assert!(foreign.is_empty(), "{foreign:#?}");
}
