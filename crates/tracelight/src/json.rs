//! The JSON format: one object per line, keys at the root.
//!
//! Key order is fixed so lines read the same everywhere and tools can rely on it: `timestamp` is
//! always the first key (27 bytes, fixed width) and `level` the second. Then `message`, `target`,
//! `file`, `line`, the static fields (`service`, `env`, `host`, `pid`, and those set with
//! [`Builder::field`](crate::Builder::field)), `thread`, the context fields (`request_id` first),
//! the event's fields, `span`, `spans`, and `error`. See `docs/schema.md` for every key.

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

/// Writes `{"timestamp":…,"level":…,"message":…,"target":…,"file":…,"line":…,` and the static
/// members (which carry their own trailing commas), then `"thread":…,`.
#[inline]
pub(crate) fn write_head(buf: &mut Vec<u8>, ev: &EventLine<'_>, statics: &[u8]) {
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
