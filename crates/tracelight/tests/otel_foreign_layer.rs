//! The application's own `tracing_opentelemetry` layer (its own tracer provider) beside
//! tracelight's layer: tracelight's lines carry that layer's trace and span ids.
#![cfg(feature = "otel")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::layer::SubscriberExt as _;

#[test]
fn lines_carry_the_ids_of_the_applications_own_opentelemetry_layer() {
    let lines = tracelight::sink::MemoryWriter::new();
    let (layer, guard) = tracelight::builder()
        .format(tracelight::Format::Json)
        .stream(tracelight::Stream::new(
            "app",
            tracelight::Output::Writer(Arc::new(lines.clone())),
        ))
        .build()
        .unwrap();
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    let otel = tracing_opentelemetry::layer().with_tracer(provider.tracer("app"));
    let subscriber = tracing_subscriber::registry().with(layer).with(otel);
    let (trace_id, span_id) = tracing::subscriber::with_default(subscriber, || {
        let span = tracing::info_span!("checkout");
        let _e = span.enter();
        tracing::info!("inside the span");
        let cx = span.context();
        let sc = cx.span().span_context().clone();
        (sc.trace_id().to_string(), sc.span_id().to_string())
    });
    guard.flush();
    let line = lines
        .lines()
        .into_iter()
        .find(|l| l.contains("inside the span"))
        .expect("the line");
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["trace_id"], trace_id.as_str(), "{line}");
    assert_eq!(v["span_id"], span_id.as_str(), "{line}");
    assert_ne!(trace_id, "00000000000000000000000000000000");
}
