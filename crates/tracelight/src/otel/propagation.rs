//! W3C trace context (`traceparent`, `tracestate`) and W3C baggage (`baggage`) in and out of HTTP
//! headers, as `OTEL_PROPAGATORS` says (both by default).

use ::http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator as _};
use opentelemetry::trace::TraceContextExt as _;
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

const TRACEPARENT: &str = "traceparent";
const BAGGAGE: &str = "baggage";

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
        // An empty `tracestate` (the caller sent none) is not sent on.
        if value.is_empty() {
            return;
        }
        if let (Ok(k), Ok(v)) = (
            HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            self.0.insert(k, v);
        }
    }
}

/// Makes `span` (not yet entered) continue the trace of the incoming `traceparent`, if valid,
/// with the incoming `baggage`.
pub(crate) fn extract_into(span: &tracing::Span, headers: &HeaderMap) {
    if !super::ids::is_active() {
        return;
    }
    let p = super::propagators();
    let trace = p.tracecontext && headers.contains_key(TRACEPARENT);
    let baggage = p.baggage && headers.contains_key(BAGGAGE);
    if !(trace || baggage) {
        return;
    }
    let mut cx = opentelemetry::Context::new();
    if trace {
        cx = TraceContextPropagator::new().extract_with_context(&cx, &Get(headers));
    }
    let remote = cx.span().span_context().is_valid();
    if !remote && !baggage {
        return;
    }
    if !remote {
        // Baggage without a valid caller span: the span keeps the parent it would have had.
        cx = tracing::Span::current().context();
    }
    if baggage {
        cx = BaggagePropagator::new().extract_with_context(&cx, &Get(headers));
    }
    // Fails only when the span was already started; then it keeps its own trace.
    let _ = span.set_parent(cx);
}

/// Adds `traceparent` (and `tracestate`) for the current span, unless `traceparent` is already
/// set, and the current `baggage`, unless `baggage` is already set.
pub(crate) fn inject(headers: &mut HeaderMap) {
    if !super::ids::is_active() {
        return;
    }
    let p = super::propagators();
    let trace = p.tracecontext && !headers.contains_key(TRACEPARENT);
    let baggage = p.baggage && !headers.contains_key(BAGGAGE);
    if !(trace || baggage) {
        return;
    }
    let mut cx = tracing::Span::current().context();
    if !cx.span().span_context().is_valid() {
        cx = opentelemetry::Context::current();
    }
    if trace && cx.span().span_context().is_valid() {
        TraceContextPropagator::new().inject_context(&cx, &mut Set(headers));
    }
    if baggage {
        BaggagePropagator::new().inject_context(&cx, &mut Set(headers));
    }
}
