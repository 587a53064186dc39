//! W3C trace context (`traceparent`, `tracestate`) in and out of HTTP headers.

use ::http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator as _};
use opentelemetry::trace::TraceContextExt as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

const TRACEPARENT: &str = "traceparent";

struct Get<'a>(&'a HeaderMap);

impl Extractor for Get<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

struct Set<'a>(&'a mut HeaderMap);

impl Injector for Set<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(k), Ok(v)) = (
            HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            self.0.insert(k, v);
        }
    }
}

/// Makes `span` (not yet entered) continue the trace of the incoming `traceparent`, if valid.
pub(crate) fn extract_into(span: &tracing::Span, headers: &HeaderMap) {
    if !super::ids::is_active() || !headers.contains_key(TRACEPARENT) {
        return;
    }
    let cx = TraceContextPropagator::new().extract(&Get(headers));
    if cx.span().span_context().is_valid() {
        // Fails only when the span was already started; then it keeps its own trace.
        let _ = span.set_parent(cx);
    }
}

/// Adds `traceparent` (and `tracestate`) for the current span, unless `traceparent` is already set.
pub(crate) fn inject(headers: &mut HeaderMap) {
    if !super::ids::is_active() || headers.contains_key(TRACEPARENT) {
        return;
    }
    let mut cx = tracing::Span::current().context();
    if !cx.span().span_context().is_valid() {
        cx = opentelemetry::Context::current();
    }
    if cx.span().span_context().is_valid() {
        TraceContextPropagator::new().inject_context(&cx, &mut Set(headers));
    }
}
