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
    json: &crate::json::JsonSchema,
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
        opentelemetry::Context::map_current(|cx| write_ids(out, cx, json));
        return None;
    }
    Some(opentelemetry::Context::new())
}

/// Writes the ids of `cx`'s span under the keys of the schema preset (see `docs/schema.md`).
fn write_ids(out: &mut Vec<u8>, cx: &opentelemetry::Context, json: &crate::json::JsonSchema) {
    use tracelight_schema::{datadog, ecs, gcp, otel, Schema};
    let span = cx.span();
    let sc = span.span_context();
    if !sc.is_valid() {
        return;
    }
    let trace = sc.trace_id().to_bytes();
    let span_id = sc.span_id().to_bytes();
    let quoted_hex = |out: &mut Vec<u8>, key: &str, prefix: &str, bytes: &[u8]| {
        crate::json::write_key_raw(out, key);
        out.push(b'"');
        out.extend_from_slice(prefix.as_bytes());
        hex(out, bytes);
        out.extend_from_slice(b"\",");
    };
    match json.schema {
        Schema::Ecs => {
            quoted_hex(out, ecs::TRACE_ID, "", &trace);
            quoted_hex(out, ecs::SPAN_ID, "", &span_id);
        }
        Schema::Gcp => {
            match &json.gcp_trace_prefix {
                Some(p) => quoted_hex(out, gcp::TRACE, p, &trace),
                None => quoted_hex(out, tracelight_schema::key::TRACE_ID, "", &trace),
            }
            quoted_hex(out, gcp::SPAN_ID, "", &span_id);
            crate::json::write_key_raw(out, gcp::TRACE_SAMPLED);
            out.extend_from_slice(if sc.is_sampled() { b"true," } else { b"false," });
        }
        Schema::Datadog => {
            // Datadog's ids are 64-bit decimals: the low half of the trace id.
            let low = u64::from_be_bytes(trace[8..].try_into().unwrap_or_default());
            let dec = |out: &mut Vec<u8>, key: &str, v: u64| {
                crate::json::write_key_raw(out, key);
                out.push(b'"');
                crate::fields::write_u64(out, v);
                out.extend_from_slice(b"\",");
            };
            dec(out, datadog::TRACE_ID, low);
            dec(out, datadog::SPAN_ID, u64::from_be_bytes(span_id));
        }
        Schema::Otel => {
            quoted_hex(out, otel::TRACE_ID, "", &trace);
            quoted_hex(out, otel::SPAN_ID, "", &span_id);
        }
        _ => {
            out.extend_from_slice(b"\"trace_id\":\"");
            hex(out, &trace);
            out.extend_from_slice(b"\",\"span_id\":\"");
            hex(out, &span_id);
            out.extend_from_slice(b"\",");
        }
    }
}
