//! The exporter's own diagnostics (its HTTP client's DEBUG and TRACE events, through the `log`
//! bridge and `tracing`) never reach the service's streams below WARN, whatever the level: one
//! test in this binary, since it installs the global subscriber the export threads log to.
#![cfg(feature = "otel")]
#![allow(clippy::unwrap_used)]

mod otel_support;

use otel_support::Rotel;
use serde_json::Value;
use tracelight::otel::{BatchConfig, OtelConfig};
use tracelight::sink::MemoryWriter;

#[test]
fn the_exporters_own_events_stay_out_of_the_lines_at_trace_level() {
    let rotel = Rotel::start();
    let lines = MemoryWriter::new();
    let fast = BatchConfig::default().scheduled_delay(std::time::Duration::from_millis(50));
    let guard = tracelight::builder()
        .service("diagnostics")
        .filter("trace")
        .format(tracelight::Format::Json)
        .writer(lines.clone())
        .otel(
            OtelConfig::new()
                .endpoint(rotel.http_url())
                .traces_batch(fast)
                .logs_batch(fast),
        )
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
    // ... and nothing of the exporter's below WARN.
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
