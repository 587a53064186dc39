//! Render: the line of each format the event's streams use, written once from the capture and
//! the snapshot.
//!
//! Rendering copies bytes; it runs no user code and touches no lock. The JSON line takes the
//! captured members in one piece (their keys already unique); the text line writes the same values
//! as `key=value` pairs under their original names.

use tracing_core::Metadata;

use super::capture::{self, Capture, Kind};
use super::plan::Plan;
use super::snapshot::Snapshot;
use crate::fields::{write_key, REDACTED};
use crate::json::{self, EventLine};
use crate::state::{Rendering, Shared};
use crate::text;
use crate::time::Timestamp;
use tracelight_schema::Schema;

/// The event's lines, one buffer per rendering (reused for every event on a thread).
#[derive(Debug, Default)]
pub(crate) struct Lines {
    json: Vec<u8>,
    text: Vec<u8>,
    text_ansi: Vec<u8>,
    /// Which renderings were written, one bit per [`Rendering`].
    written: u8,
}

impl Lines {
    /// The line of `rendering` (empty when it was not written).
    #[inline]
    pub(crate) fn get(&self, rendering: Rendering) -> &[u8] {
        match rendering {
            Rendering::Json => &self.json,
            Rendering::Text => &self.text,
            Rendering::TextAnsi => &self.text_ansi,
        }
    }

    /// The lines of the three renderings (empty where not written), in [`Rendering`] order.
    #[inline]
    pub(crate) fn all(&self) -> [&[u8]; 3] {
        fn line(written: u8, r: Rendering, l: &[u8]) -> &[u8] {
            if written & (1 << r as u8) != 0 {
                l
            } else {
                &[]
            }
        }
        let line = |r, l| line(self.written, r, l);
        [
            line(Rendering::Json, &self.json),
            line(Rendering::Text, &self.text),
            line(Rendering::TextAnsi, &self.text_ansi),
        ]
    }

    /// The line the error tracker and the security counts keep: JSON when there is one.
    pub(crate) fn sample(&self) -> &[u8] {
        [Rendering::Json, Rendering::Text, Rendering::TextAnsi]
            .into_iter()
            .find(|r| self.written & (1 << *r as u8) != 0)
            .map_or(&[][..], |r| self.get(r))
    }
}

/// What every rendering of one event shares.
pub(crate) struct Event<'a> {
    pub(crate) meta: &'a Metadata<'a>,
    /// The file and line the line shows instead of the callsite's.
    pub(crate) location: Option<super::Location>,
    pub(crate) ts: Timestamp,
    /// The thread's name as a quoted JSON string.
    pub(crate) thread: &'a [u8],
    pub(crate) plan: &'a Plan<'a>,
    pub(crate) snapshot: &'a Snapshot,
    pub(crate) capture: &'a Capture,
    /// A line of the flight recorder (`"replayed":true`).
    pub(crate) replayed: bool,
}

impl Event<'_> {
    fn line(&self) -> EventLine<'_> {
        EventLine {
            ts: self.ts,
            level: self.meta.level(),
            target: self.meta.target(),
            file: self.location.map_or(self.meta.file(), |l| l.0),
            line: self.location.map_or(self.meta.line(), |l| l.1),
            message: &self.capture.message,
            thread: self.thread,
        }
    }
}

/// Writes the line of every rendering that one of the event's streams uses.
pub(crate) fn render(shared: &Shared, ev: &Event<'_>, out: &mut Lines) {
    let wanted = ev.plan.renderings;
    out.written = wanted;
    if wanted & (1 << Rendering::Json as u8) != 0 {
        json_line(shared, ev, &mut out.json);
    }
    if wanted & (1 << Rendering::Text as u8) != 0 {
        text_line(ev, false, &mut out.text);
    }
    if wanted & (1 << Rendering::TextAnsi as u8) != 0 {
        text_line(ev, true, &mut out.text_ansi);
    }
}

/// The JSON line (see `docs/schema.md` for the order of its keys).
fn json_line(shared: &Shared, ev: &Event<'_>, out: &mut Vec<u8>) {
    let cap = ev.capture;
    let context = ev.snapshot.context();
    out.clear();
    let schema = shared.json.schema;
    json::write_head(out, &ev.line(), &shared.json);
    if let Some(c) = context {
        out.extend_from_slice(c.json());
    }
    out.extend_from_slice(&ev.snapshot.trace_ids);
    out.extend_from_slice(cap.members());
    if ev.plan.rate_limited > 0 {
        out.extend_from_slice(b"\"rate_limited\":");
        crate::fields::write_u64(out, ev.plan.rate_limited);
        out.push(b',');
    }
    if ev.replayed {
        out.extend_from_slice(b"\"replayed\":true,");
    }
    let (span_key, spans_key, fingerprint_key, error_keys) = preset_keys(schema);
    if let Some((name, members)) = ev.snapshot.span() {
        json::write_key_raw(out, span_key);
        json::write_span_object(out, name, members);
        out.push(b',');
    }
    if ev.snapshot.has_scope {
        json::write_key_raw(out, spans_key);
        out.push(b'[');
        out.extend_from_slice(&ev.snapshot.span_list);
        out.extend_from_slice(b"],");
    }
    if let Some(fp) = ev.plan.fingerprint {
        json::write_key_raw(out, fingerprint_key);
        out.push(b'"');
        write_hex16(out, fp);
        out.extend_from_slice(b"\",");
    }
    if let (Some(i), Some(keys)) = (cap.error, error_keys) {
        write_flat_error(out, cap, i, keys);
    } else if let Some(i) = cap.error {
        let v = &cap.values[i];
        write_key(out, "error");
        out.push(b'{');
        match v.kind {
            Kind::Error { .. } => capture::write_error_members(out, cap, v, cap.token(i)),
            _ => {
                out.extend_from_slice(b"\"message\":");
                out.extend_from_slice(cap.token(i));
            }
        }
        out.extend_from_slice(b"},");
    }
    json::close_line(out);
}

/// The keys of the current span, the span list and the fingerprint in a schema preset, and the
/// keys of its flat error members (type, message, chain) when it has no `error` object.
#[inline]
fn preset_keys(
    schema: Schema,
) -> (
    &'static str,
    &'static str,
    &'static str,
    Option<[&'static str; 3]>,
) {
    use tracelight_schema::{datadog, ecs, key};
    let (span, spans, fingerprint) = match schema {
        Schema::Ecs => (ecs::SPAN, ecs::SPANS, ecs::ERROR_FINGERPRINT),
        Schema::Datadog => (key::SPAN, key::SPANS, datadog::ERROR_FINGERPRINT),
        _ => (key::SPAN, key::SPANS, key::ERROR_FINGERPRINT),
    };
    (span, spans, fingerprint, schema.error_keys())
}

/// The root error as flat members: `"<type>":"…","<message>":"…","<chain>":"a\nb",` (the
/// chain one cause a line, outermost first, as the stores' stack trace fields are text).
fn write_flat_error(out: &mut Vec<u8>, cap: &Capture, i: usize, [ty, message, chain]: [&str; 3]) {
    let v = &cap.values[i];
    match v.kind {
        Kind::Error { .. } => {
            json::write_key_raw(out, ty);
            out.push(b'"');
            out.extend_from_slice(cap.token(i));
            out.extend_from_slice(b"\",");
            json::write_key_raw(out, message);
            out.push(b'"');
            if let Some(first) = cap.chain(v).next() {
                out.extend_from_slice(first);
            }
            out.extend_from_slice(b"\",");
            json::write_key_raw(out, chain);
            out.push(b'"');
            for (n, link) in cap.chain(v).enumerate() {
                if n > 0 {
                    out.extend_from_slice(b"\\n");
                }
                out.extend_from_slice(link);
            }
            out.extend_from_slice(b"\",");
        }
        _ => {
            json::write_key_raw(out, message);
            out.extend_from_slice(cap.token(i));
            out.push(b',');
        }
    }
}

/// The content of a quoted JSON token.
#[inline]
fn unquoted(token: &[u8]) -> &[u8] {
    token
        .strip_prefix(b"\"")
        .and_then(|t| t.strip_suffix(b"\""))
        .unwrap_or(token)
}

/// Writes value `i` in the text format.
fn text_value(out: &mut Vec<u8>, cap: &Capture, i: usize) {
    let v = &cap.values[i];
    match v.kind {
        Kind::Plain => out.extend_from_slice(cap.token(i)),
        Kind::Redacted => out.extend_from_slice(REDACTED.as_bytes()),
        Kind::Str { quote } => {
            if quote {
                out.push(b'"');
            }
            out.extend_from_slice(unquoted(cap.token(i)));
            if quote {
                out.push(b'"');
            }
        }
        Kind::Debug => {
            let start = out.len();
            out.extend_from_slice(unquoted(cap.token(i)));
            text::quote_if_needed(out, start);
        }
        Kind::Error { .. } => {
            // `message: cause: cause`, the whole `source()` chain on one line.
            let start = out.len();
            for (n, link) in cap.chain(v).enumerate() {
                if n > 0 {
                    out.extend_from_slice(b": ");
                }
                out.extend_from_slice(link);
            }
            text::quote_if_needed(out, start);
        }
    }
}

/// The text line: time, level, location, message, then `key=value` pairs.
fn text_line(ev: &Event<'_>, ansi: bool, out: &mut Vec<u8>) {
    let cap = ev.capture;
    out.clear();
    text::write_head(out, &ev.line(), ev.snapshot.span_name, ansi);
    let head_end = out.len();
    let mut fields = 0usize;
    for (i, v) in cap.values.iter().enumerate() {
        // A key once per line (as in JSON): the message is in the head, a repeated field once.
        if v.name == "message" || cap.values[..i].iter().any(|w| w.name == v.name) {
            continue;
        }
        fields += 1;
        text::write_key(out, v.name, ansi);
        text_value(out, cap, i);
    }
    let pairs = &ev.snapshot.text[usize::from(ansi)];
    if fields == 0 {
        out.extend_from_slice(&pairs.bytes);
    } else {
        // The span's fields and the context after the event's, without the keys it wrote.
        pairs.write_except(out, |k| cap.values.iter().any(|v| v.name == k));
    }
    if ev.plan.rate_limited > 0 {
        text::write_key(out, "rate_limited", ansi);
        crate::fields::write_u64(out, ev.plan.rate_limited);
    }
    if ev.replayed {
        text::write_key(out, "replayed", ansi);
        out.extend_from_slice(b"true");
    }
    if let Some(fp) = ev.plan.fingerprint {
        text::write_key(out, "error_fingerprint", ansi);
        write_hex16(out, fp);
    }
    if out.len() == head_end {
        // No fields: the line ends with the message, not with a dangling separator.
        text::trim_separator(out, ansi);
    }
    out.push(b'\n');
}

fn write_hex16(out: &mut Vec<u8>, v: u64) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for i in (0..16).rev() {
        out.push(HEX[((v >> (i * 4)) & 0xf) as usize]);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::event::capture::Options;
    use crate::event::plan::{plan, TagVisitor};
    use crate::event::testing::with_events;
    use crate::fields::KeySet;
    use crate::sink::MemoryWriter;
    use crate::{Output, Stream};

    /// The JSON and text lines `render` makes of each event `run` logs, with no span.
    fn rendered(run: impl FnOnce()) -> Vec<(String, String)> {
        let b = crate::builder()
            .service("svc")
            .stream(
                Stream::new("json", Output::Writer(Arc::new(MemoryWriter::new())))
                    .format(crate::Format::Json),
            )
            .stream(
                Stream::new("text", Output::Writer(Arc::new(MemoryWriter::new())))
                    .format(crate::Format::Text),
            )
            .ansi(false);
        let out = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&out);
        with_events(
            b,
            move |shared, _, event| {
                let mut tag = TagVisitor::new();
                let Some(mut p) = plan(shared, event, &mut tag, || false, false) else {
                    return;
                };
                let mut cap = Capture::default();
                let mut keys = KeySet::new(true);
                for k in &shared.static_keys {
                    keys.add(k);
                }
                let opts = Options {
                    redactor: shared.redactor.as_ref(),
                    skip_log_fields: false,
                    text: true,
                };
                cap.record(event, Some(&mut keys), opts);
                assert!(p.admit_error(
                    shared,
                    event.metadata(),
                    None,
                    cap.error_type(),
                    &cap.message
                ));
                let snapshot = Snapshot::default();
                let ev = Event {
                    meta: event.metadata(),
                    location: None,
                    ts: p.timestamp(),
                    thread: b"\"t\"",
                    plan: &p,
                    snapshot: &snapshot,
                    capture: &cap,
                    replayed: false,
                };
                let mut lines = Lines::default();
                render(shared, &ev, &mut lines);
                let text = |r| String::from_utf8(lines.get(r).to_vec()).expect("utf8");
                crate::util::lock(&seen).push((text(Rendering::Json), text(Rendering::Text)));
            },
            run,
        );
        let v = crate::util::lock(&out).clone();
        v
    }

    #[derive(Debug)]
    struct Declined;
    impl std::fmt::Display for Declined {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("card declined")
        }
    }
    impl std::error::Error for Declined {}

    #[test]
    fn one_capture_makes_both_lines() {
        let got = rendered(|| {
            tracing::info!(
                n = 7u64,
                s = "two words",
                level = 3u64,
                token = "abc",
                "hello"
            );
        });
        let (json, text) = &got[0];
        let v: serde_json::Value = serde_json::from_str(json).expect("valid JSON");
        assert_eq!(v["message"], "hello");
        assert_eq!(v["service"], "svc");
        assert_eq!(v["n"], 7);
        assert_eq!(v["s"], "two words");
        assert_eq!(v["fields.level"], 3, "a reserved key is renamed: {json}");
        assert_eq!(v["token"], "[REDACTED]");
        assert!(json.ends_with("}\n"));
        assert!(
            text.ends_with("| hello | n=7 s=\"two words\" level=3 token=[REDACTED]\n"),
            "{text}"
        );
    }

    #[test]
    fn the_error_is_an_object_in_json_and_a_chain_in_text() {
        let got = rendered(|| {
            tracing::error!(
                error = &Declined as &dyn std::error::Error,
                "payment failed"
            );
        });
        let (json, text) = &got[0];
        let v: serde_json::Value = serde_json::from_str(json).expect("valid JSON");
        assert_eq!(v["error"]["type"], "Declined");
        assert_eq!(v["error"]["message"], "card declined");
        assert_eq!(v["error"]["chain"][0], "card declined");
        assert_eq!(v["error_fingerprint"].as_str().map(str::len), Some(16));
        assert!(text.contains("error=\"card declined\""), "{text}");
        assert!(text.contains("error_fingerprint="), "{text}");
    }

    #[derive(Debug)]
    enum OrderError {
        #[allow(dead_code)]
        Payment(u32),
    }
    impl std::fmt::Display for OrderError {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("payment declined")
        }
    }
    impl std::error::Error for OrderError {}

    #[test]
    fn err_names_the_type_not_the_variant() {
        let got = rendered(|| {
            let e = OrderError::Payment(402);
            tracing::error!(error = crate::err(&e), "with the helper");
            tracing::error!(error = &e as &dyn std::error::Error, "without");
        });
        let v: serde_json::Value = serde_json::from_str(&got[0].0).expect("json");
        assert_eq!(
            v["error"]["type"],
            "tracelight::event::render::tests::OrderError"
        );
        let w: serde_json::Value = serde_json::from_str(&got[1].0).expect("json");
        assert_eq!(w["error"]["type"], "Payment");
        assert_ne!(v["error_fingerprint"], w["error_fingerprint"]);
    }

    #[test]
    fn text_keys_are_quoted_when_they_need_it_and_never_repeat() {
        let got = rendered(|| {
            tracing::info!({ "a b" = "c|d", "k=v" = 1, "" = 2, ok = 3, ok = 4 }, "keys");
        });
        let text = &got[0].1;
        assert!(
            text.trim_end()
                .ends_with(r#"| keys | "a b"="c|d" "k=v"=1 ""=2 ok=3"#),
            "{text}"
        );
    }

    #[derive(Debug)]
    struct Timeout;
    impl std::fmt::Display for Timeout {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("timed out")
        }
    }
    impl std::error::Error for Timeout {}

    #[derive(Debug)]
    struct Cancelled;
    impl std::fmt::Display for Cancelled {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("cancelled")
        }
    }
    impl std::error::Error for Cancelled {}

    #[test]
    fn a_hint_never_names_another_error() {
        // Zero-sized errors share one address; the hint given first is never logged.
        let got = rendered(|| {
            let _ = crate::err(&Timeout);
            tracing::error!(error = &Cancelled as &dyn std::error::Error, "kept");
        });
        let v: serde_json::Value =
            serde_json::from_str(&got.last().expect("a line").0).expect("json");
        assert_eq!(v["error"]["type"], "Cancelled", "{v}");
    }
}
