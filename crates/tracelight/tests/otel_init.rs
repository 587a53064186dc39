//! `tracelight::init()` configured by `OTEL_*` variables alone, in a service that runs a
//! current-thread Tokio runtime and drops the guard inside it: the last batch still reaches the
//! collector over gRPC (a blocking shutdown on that runtime would lose it), and a bad value is an
//! `Error::InvalidEnv` naming the variable.
#![cfg(feature = "otel")]
#![allow(clippy::unwrap_used)]

mod otel_support;

use std::time::{Duration, Instant};

use otel_support::Rotel;

#[test]
fn init_from_env_exports_and_the_guard_flushes_on_a_current_thread_runtime() {
    let rotel = Rotel::start();

    // A bad value: init() says which variable and what it accepts, and installs nothing.
    std::env::set_var("OTEL_EXPORTER_OTLP_ENDPOINT", rotel.grpc_url());
    std::env::set_var("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc+tls");
    let err = tracelight::init().unwrap_err();
    match &err {
        tracelight::Error::InvalidEnv {
            var,
            value,
            expected,
        } => {
            assert_eq!(var, "OTEL_EXPORTER_OTLP_PROTOCOL");
            assert_eq!(value, "grpc+tls");
            assert!(expected.contains("grpc, http/protobuf"), "{expected}");
        }
        other => panic!("expected InvalidEnv, got {other:?}"),
    }
    std::env::set_var("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc");
    std::env::set_var("OTEL_TRACES_SAMPLER", "parentbased_traceidratio");
    std::env::set_var("OTEL_TRACES_SAMPLER_ARG", "1.5");
    let err = tracelight::init().unwrap_err().to_string();
    assert!(err.contains("OTEL_TRACES_SAMPLER_ARG"), "{err}");
    std::env::set_var("OTEL_TRACES_SAMPLER_ARG", "1.0");
    std::env::set_var("OTEL_SERVICE_NAME", "inventory");
    std::env::set_var(
        "OTEL_RESOURCE_ATTRIBUTES",
        "service.version=9.9.9,team=stock%20keepers",
    );
    std::env::set_var("APP_ENV", "staging");
    std::env::set_var("LOG_FORMAT", "json");
    // A long delay: only the guard's shutdown can make the batch leave.
    std::env::set_var("OTEL_BSP_SCHEDULE_DELAY", "60000");
    std::env::set_var("OTEL_BLRP_SCHEDULE_DELAY", "60000");

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let shutdown_took = rt.block_on(async {
        let guard = tracelight::init().unwrap();
        async {
            tracing::info!(sku = "A-1", "reserving stock");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        .instrument_in("reserve_stock")
        .await;
        // Dropped inside the runtime, on its only thread.
        let start = Instant::now();
        drop(guard);
        start.elapsed()
    });

    let span = rotel.wait_span("reserve_stock");
    let log = rotel.wait_log("reserving stock");
    assert_eq!(span.resource_attr("service.name"), Some("Str(inventory)"));
    assert_eq!(span.resource_attr("service.version"), Some("Str(9.9.9)"));
    assert_eq!(span.resource_attr("team"), Some("Str(stock keepers)"));
    assert_eq!(
        span.resource_attr("deployment.environment.name"),
        Some("Str(staging)")
    );
    assert_eq!(log.trace_id(), span.trace_id());
    assert_eq!(log.span_id(), span.span_id());
    assert!(
        shutdown_took < Duration::from_secs(5),
        "shutdown took {shutdown_took:?}"
    );
    let stats = tracelight::otel::stats();
    assert_eq!(stats.spans.exported, 1, "{stats:?}");
    assert_eq!(stats.logs.failed + stats.logs.dropped, 0, "{stats:?}");
}

trait InstrumentIn: std::future::Future + Sized {
    fn instrument_in(self, name: &'static str) -> tracing::instrument::Instrumented<Self>;
}

impl<F: std::future::Future> InstrumentIn for F {
    fn instrument_in(self, name: &'static str) -> tracing::instrument::Instrumented<Self> {
        use tracing::Instrument as _;
        let span = tracing::info_span!("work", otel.name = name);
        self.instrument(span)
    }
}
