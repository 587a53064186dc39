//! A header set in code wins over the same header in `OTEL_EXPORTER_OTLP_HEADERS`, which the
//! OpenTelemetry exporter reads again by itself: seen on the wire by a recording proxy in front
//! of the real collector, over HTTP and gRPC. One test in this binary: it sets the variable in
//! the process environment, which the exporter reads.
#![cfg(feature = "otel")]
#![allow(clippy::unwrap_used)]

mod otel_support;

use otel_support::{HeaderProxy, Rotel};
use tracelight::otel::{BatchConfig, OtelConfig, Protocol};

#[test]
fn a_header_set_in_code_wins_over_the_environment_on_the_wire() {
    std::env::set_var(
        "OTEL_EXPORTER_OTLP_HEADERS",
        "x-api-key=from-env,x-env-only=1",
    );
    let rotel = Rotel::start();
    let fast = BatchConfig::default().scheduled_delay(std::time::Duration::from_millis(20));
    for (protocol, port, h2) in [
        (Protocol::HttpProtobuf, rotel.http, false),
        (Protocol::Grpc, rotel.grpc, true),
    ] {
        let proxy = HeaderProxy::start(port, h2);
        let guard = tracelight::builder()
            .writer(tracelight::sink::MemoryWriter::new())
            // The environment's settings, then the code's over them.
            .otel(OtelConfig::from_env().unwrap())
            .otel(
                OtelConfig::new()
                    .endpoint(proxy.url())
                    .protocol(protocol)
                    .header("x-api-key", "from-code")
                    .logs(false)
                    .traces_batch(fast),
            )
            .init_local()
            .unwrap();
        drop(tracing::info_span!("header_wins", h2).entered());
        drop(guard);
        rotel.wait_span("header_wins");
        let seen = proxy.seen();
        assert!(!seen.is_empty());
        for (_, h) in &seen {
            let keys: Vec<&str> = h
                .get_all("x-api-key")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect();
            assert_eq!(keys, ["from-code"], "{protocol:?}: {h:?}");
            assert_eq!(
                h.get("x-env-only").and_then(|v| v.to_str().ok()),
                Some("1"),
                "{protocol:?}: the environment's other headers still go"
            );
        }
    }
}
