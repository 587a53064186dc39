//! `trace_id` and `span_id` in JSON lines.
//!
//! `tracing-opentelemetry` starts a span's OpenTelemetry counterpart when the span is entered and
//! makes its context the thread's current OpenTelemetry context until the span is exited. The logs
//! bridge reads that same current context for the ids of each log record, so the JSON line reads it
//! too: the line, the exported log record and the exported span carry the same ids.

use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::trace::TraceContextExt as _;

/// Set once an OpenTelemetry layer exists in the process; until then lines skip the lookup.
static ACTIVE: AtomicBool = AtomicBool::new(false);

pub(crate) fn activate() {
    ACTIVE.store(true, Ordering::Relaxed);
}

#[inline]
pub(crate) fn is_active() -> bool {
    ACTIVE.load(Ordering::Relaxed)
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn hex(out: &mut Vec<u8>, bytes: &[u8]) {
    for b in bytes {
        out.push(HEX[usize::from(b >> 4)]);
        out.push(HEX[usize::from(b & 0xf)]);
    }
}

/// Writes `"trace_id":"…","span_id":"…",` of the current OpenTelemetry span for a contextual
/// event. An event with an explicit parent (`parent: span`, `parent: None`) gets no ids, and
/// the empty context is returned for its log record, which the SDK would otherwise give the
/// thread's current ids: the parent's own OpenTelemetry span cannot be read without starting it
/// (which would fix its parent and sampling before the code that made it sets them). Costs one
/// relaxed load when no OpenTelemetry layer was built.
#[inline]
pub(crate) fn write_trace_ids(
    out: &mut Vec<u8>,
    event: &tracing_core::Event<'_>,
) -> Option<opentelemetry::Context> {
    if !is_active() {
        return None;
    }
    // The SDK's own diagnostics (`internal-logs`) may be emitted while it holds the current
    // context mutably borrowed: they carry no trace, and reading it there would be re-entrant.
    if event.metadata().target().starts_with("opentelemetry") {
        return None;
    }
    if event.is_contextual() {
        write_current(out);
        return None;
    }
    Some(opentelemetry::Context::new())
}

fn write_ids(out: &mut Vec<u8>, cx: &opentelemetry::Context) {
    let span = cx.span();
    let sc = span.span_context();
    if sc.is_valid() {
        out.extend_from_slice(b"\"trace_id\":\"");
        hex(out, &sc.trace_id().to_bytes());
        out.extend_from_slice(b"\",\"span_id\":\"");
        hex(out, &sc.span_id().to_bytes());
        out.extend_from_slice(b"\",");
    }
}

fn write_current(out: &mut Vec<u8>) {
    opentelemetry::Context::map_current(|cx| write_ids(out, cx));
}
