//! The JSON format: one object per line, keys at the root.
//!
//! Key order is fixed so lines read the same everywhere and tools can rely on it: `timestamp` is
//! always the first key (27 bytes, fixed width) and `level` the second. Then `message`, `target`,
//! `file`, `line`, the static fields (`service`, `env`, `host`, `pid`, and those set with
//! [`Builder::field`](crate::Builder::field)), `thread`, the context fields (`request_id` first),
//! the event's fields, `span`, `spans`, and `error`. See `docs/schema.md` for every key.

use tracelight_schema::Schema;
use tracing_core::Level;

use crate::fields::{escape_into, write_str, write_u64};
use crate::time::{write_rfc3339, Timestamp};

/// The upper-case name of a level, as written in lines.
#[inline]
pub(crate) fn level_str(level: &Level) -> &'static str {
    match *level {
        Level::TRACE => "TRACE",
        Level::DEBUG => "DEBUG",
        Level::INFO => "INFO",
        Level::WARN => "WARN",
        Level::ERROR => "ERROR",
    }
}

/// Everything about one event that the formats need, gathered once.
pub(crate) struct EventLine<'a> {
    pub(crate) ts: Timestamp,
    pub(crate) level: &'a Level,
    pub(crate) target: &'a str,
    pub(crate) file: Option<&'a str>,
    pub(crate) line: Option<u32>,
    /// The message, already escaped as JSON string content.
    pub(crate) message: &'a [u8],
    /// The thread's name, already rendered as a quoted JSON string.
    pub(crate) thread: &'a [u8],
}

/// The schema preset of a layer's JSON lines, with what its writers need (see
/// [`Schema`](tracelight_schema::Schema) and `docs/schema.md`).
#[derive(Debug, Clone, Default)]
pub(crate) struct JsonSchema {
    pub(crate) schema: Schema,
    /// The static members (`"service":…,"env":…,"host":…,"pid":…,` and the user's static fields
    /// under the preset's names), each with its trailing comma.
    pub(crate) statics: Vec<u8>,
    /// `projects/<id>/traces/` for the GCP preset's trace field, when the project is known.
    #[cfg_attr(not(feature = "otel-core"), allow(dead_code))]
    pub(crate) gcp_trace_prefix: Option<Box<str>>,
    /// The preset's head, in pieces made once (empty for the default schema).
    head: PresetHead,
}

/// The constant bytes of a preset's head, between the values.
#[derive(Debug, Clone, Default)]
struct PresetHead {
    /// `{"@timestamp":"`
    open: Box<[u8]>,
    /// Per level: `","log.level":"info","message":"` (OpenTelemetry: the severity number and
    /// `"Body"`).
    levels: [Box<[u8]>; 5],
    /// `","log.logger":` (OpenTelemetry: `","InstrumentationScope":{"Name":`).
    target: Box<[u8]>,
    /// What closes the target: `,` (OpenTelemetry: `},`).
    target_end: &'static [u8],
    /// `"log.origin.file.name":`
    file: Box<[u8]>,
    /// `"log.origin.file.line":`
    line: Box<[u8]>,
    /// `"process.thread.name":`
    thread: Box<[u8]>,
}

impl JsonSchema {
    /// The schema of `schema` with these static members.
    pub(crate) fn new(
        schema: Schema,
        statics: Vec<u8>,
        gcp_trace_prefix: Option<Box<str>>,
    ) -> JsonSchema {
        use tracelight_schema::{datadog, ecs, otel};
        let key = |k: &str| format!("\"{k}\":").into_bytes().into_boxed_slice();
        let head = if schema == Schema::Default {
            PresetHead::default()
        } else {
            let levels = std::array::from_fn(|i| {
                let mut b = schema.level_prefix().as_bytes().to_vec();
                b.extend_from_slice(schema.level_name(i).as_bytes());
                if schema == Schema::Otel {
                    b.extend_from_slice(
                        format!(
                            "\",\"{}\":{},\"{}\":\"",
                            otel::SEVERITY_NUMBER,
                            otel::SEVERITY_NUMBERS[i],
                            otel::BODY
                        )
                        .as_bytes(),
                    );
                } else {
                    b.extend_from_slice(b"\",\"message\":\"");
                }
                b.into_boxed_slice()
            });
            let (target, file, line, thread) = match schema {
                Schema::Ecs => (ecs::LOGGER, ecs::FILE, ecs::LINE, ecs::THREAD),
                Schema::Datadog => (datadog::LOGGER, "file", "line", datadog::THREAD),
                Schema::Otel => (otel::SCOPE, otel::FILE, otel::LINE, otel::THREAD),
                _ => ("", "", "", "thread"),
            };
            let (target, target_end): (Box<[u8]>, &'static [u8]) = if schema == Schema::Otel {
                (
                    format!("\",\"{target}\":{{\"Name\":").into_bytes().into(),
                    b"},",
                )
            } else {
                (format!("\",\"{target}\":").into_bytes().into(), b",")
            };
            PresetHead {
                open: schema.line_start().as_bytes().into(),
                levels,
                target,
                target_end,
                file: key(file),
                line: key(line),
                thread: key(thread),
            }
        };
        JsonSchema {
            schema,
            statics,
            gcp_trace_prefix,
            head,
        }
    }
}

/// Writes the head of a line in its preset: the time, level, message, target, file and line,
/// the static members (which carry their own trailing commas), then the thread, each member
/// with its trailing comma.
#[inline]
pub(crate) fn write_head(buf: &mut Vec<u8>, ev: &EventLine<'_>, schema: &JsonSchema) {
    if schema.schema == Schema::Default {
        write_default_head(buf, ev, &schema.statics);
    } else {
        write_preset_head(buf, ev, schema);
    }
}

/// Writes `{"timestamp":…,"level":…,"message":…,"target":…,"file":…,"line":…,` and the static
/// members (which carry their own trailing commas), then `"thread":…,`.
#[inline]
fn write_default_head(buf: &mut Vec<u8>, ev: &EventLine<'_>, statics: &[u8]) {
    buf.extend_from_slice(b"{\"timestamp\":\"");
    write_rfc3339(buf, ev.ts);
    buf.extend_from_slice(b"\",\"level\":\"");
    buf.extend_from_slice(level_str(ev.level).as_bytes());
    buf.extend_from_slice(b"\",\"message\":\"");
    buf.extend_from_slice(ev.message);
    buf.extend_from_slice(b"\",\"target\":");
    write_str(buf, ev.target);
    if let Some(file) = ev.file {
        buf.extend_from_slice(b",\"file\":");
        write_str(buf, file);
    }
    if let Some(line) = ev.line {
        buf.extend_from_slice(b",\"line\":");
        write_u64(buf, u64::from(line));
    }
    buf.push(b',');
    buf.extend_from_slice(statics);
    buf.extend_from_slice(b"\"thread\":");
    buf.extend_from_slice(ev.thread);
    buf.push(b',');
}

/// The index of a level in [`tracelight_schema::level::ALL`].
#[inline]
pub(crate) fn level_index(level: &Level) -> usize {
    match *level {
        Level::TRACE => 0,
        Level::DEBUG => 1,
        Level::INFO => 2,
        Level::WARN => 3,
        Level::ERROR => 4,
    }
}

/// [`write_head`] for the presets other than the default.
fn write_preset_head(buf: &mut Vec<u8>, ev: &EventLine<'_>, schema: &JsonSchema) {
    let h = &schema.head;
    buf.extend_from_slice(&h.open);
    write_rfc3339(buf, ev.ts);
    buf.extend_from_slice(&h.levels[level_index(ev.level)]);
    buf.extend_from_slice(ev.message);
    if schema.schema == Schema::Gcp {
        // `{"file":…,"line":"42","function":<target>}`: the line is a string (an int64 in
        // the LogEntry's JSON mapping).
        buf.extend_from_slice(b"\",\"logging.googleapis.com/sourceLocation\":{");
        if let Some(f) = ev.file {
            buf.extend_from_slice(b"\"file\":");
            write_str(buf, f);
            buf.push(b',');
        }
        if let Some(l) = ev.line {
            buf.extend_from_slice(b"\"line\":\"");
            write_u64(buf, u64::from(l));
            buf.extend_from_slice(b"\",");
        }
        buf.extend_from_slice(b"\"function\":");
        write_str(buf, ev.target);
        buf.extend_from_slice(b"},");
    } else {
        buf.extend_from_slice(&h.target);
        write_str(buf, ev.target);
        buf.extend_from_slice(h.target_end);
        if let Some(f) = ev.file {
            buf.extend_from_slice(&h.file);
            write_str(buf, f);
            buf.push(b',');
        }
        if let Some(l) = ev.line {
            buf.extend_from_slice(&h.line);
            write_u64(buf, u64::from(l));
            buf.push(b',');
        }
    }
    buf.extend_from_slice(&schema.statics);
    buf.extend_from_slice(&h.thread);
    buf.extend_from_slice(ev.thread);
    buf.push(b',');
}

/// Writes `"key":` for a key known to need no escaping.
#[inline]
pub(crate) fn write_key_raw(buf: &mut Vec<u8>, key: &str) {
    buf.push(b'"');
    buf.extend_from_slice(key.as_bytes());
    buf.extend_from_slice(b"\":");
}

/// Writes a span object `{"name":…,<members>}`.
#[inline]
pub(crate) fn write_span_object(buf: &mut Vec<u8>, name: &str, members: &[u8]) {
    buf.extend_from_slice(b"{\"name\":\"");
    escape_into(buf, name);
    buf.push(b'"');
    if !members.is_empty() {
        buf.push(b',');
        buf.extend_from_slice(members);
    }
    buf.push(b'}');
}

/// Replaces the trailing comma of an object being written with `}` and a newline.
#[inline]
pub(crate) fn close_line(buf: &mut Vec<u8>) {
    if buf.last() == Some(&b',') {
        buf.pop();
    }
    buf.extend_from_slice(b"}\n");
}
