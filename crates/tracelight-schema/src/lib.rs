//! The schema of tracelight's JSON lines, shared by the library that writes them and the
//! `tracelight` command that reads them back.
//!
//! This crate has no dependencies and holds facts only: the names of the keys tracelight writes
//! ([`key`]), which of them are reserved at the root of a line ([`RESERVED_KEYS`]) and how a field
//! that collides with one is renamed ([`rename`]), the fixed layout of the first bytes of every line
//! ([`layout`]) and the level names ([`level`]). `docs/schema.md` describes every key.
//!
//! ```
//! use tracelight_schema::{is_reserved, key, layout};
//! assert!(is_reserved(key::LEVEL));
//! assert!(!is_reserved("order_id"));
//! let line = r#"{"timestamp":"2026-02-10T22:30:00.123456Z","level":"INFO","message":"hi"}"#;
//! assert_eq!(&line[layout::TIMESTAMP_START..layout::TIMESTAMP_END], "2026-02-10T22:30:00.123456Z");
//! assert_eq!(&line[layout::LEVEL_START..layout::LEVEL_START + 4], "INFO");
//! ```

#![forbid(unsafe_code)]
// Library crates also keep their public surface reachable and debuggable (tests and examples
// are exempt: their `pub` items are for sibling modules).
#![warn(unreachable_pub, missing_debug_implementations)]

/// The names of the keys tracelight writes.
pub mod key {
    /// The event's time, UTC, microseconds: always the first key (see [`layout`](crate::layout)).
    pub const TIMESTAMP: &str = "timestamp";
    /// The level (`TRACE` … `ERROR`): always the second key.
    pub const LEVEL: &str = "level";
    /// The event's message.
    pub const MESSAGE: &str = "message";
    /// The event's target (its module path unless set).
    pub const TARGET: &str = "target";
    /// The source file of the callsite.
    pub const FILE: &str = "file";
    /// The source line of the callsite.
    pub const LINE: &str = "line";
    /// The service's name.
    pub const SERVICE: &str = "service";
    /// The deployment environment, when set.
    pub const ENV: &str = "env";
    /// The host name.
    pub const HOST: &str = "host";
    /// The process id.
    pub const PID: &str = "pid";
    /// The name of the thread that logged.
    pub const THREAD: &str = "thread";
    /// The current span: `{"name":…, its fields}`.
    pub const SPAN: &str = "span";
    /// The span path from the root, when asked for.
    pub const SPANS: &str = "spans";
    /// An error: `{"type":…,"message":…,"chain":[…]}`.
    pub const ERROR: &str = "error";
    /// The fingerprint of an ERROR event (callsite and error type), 16 hex digits.
    pub const ERROR_FINGERPRINT: &str = "error_fingerprint";
    /// The OpenTelemetry trace id, 32 hex digits.
    pub const TRACE_ID: &str = "trace_id";
    /// The OpenTelemetry span id, 16 hex digits.
    pub const SPAN_ID: &str = "span_id";
    /// The request id of the context (a context key, not reserved: it comes from the spans).
    pub const REQUEST_ID: &str = "request_id";
    /// The name member of a span object.
    pub const SPAN_NAME: &str = "name";
    /// Events held back by a rate limit before this one.
    pub const RATE_LIMITED: &str = "rate_limited";
    /// `true` on a line the flight recorder kept and wrote because its unit of work failed.
    pub const REPLAYED: &str = "replayed";
    /// How long the work took, in milliseconds: on access lines and `span_closed` lines.
    pub const DURATION_MS: &str = "duration_ms";
    /// The route template of an access line (`/orders/{id}`).
    pub const ROUTE: &str = "route";
    /// The HTTP method of an access line.
    pub const METHOD: &str = "method";
    /// The request path of an access line (`/orders/17`).
    pub const PATH: &str = "path";
    /// The HTTP status of an access line.
    pub const STATUS: &str = "status";
    /// The operation a `span_closed` line measures (the span's name unless set).
    pub const OPERATION: &str = "operation";
}

/// Keys that tracelight writes itself at the root of a JSON line. An event or context field with
/// one of these names is written under its [`rename`]d key instead, so no object ever has a
/// duplicate key.
pub const RESERVED_KEYS: &[&str] = &[
    key::TIMESTAMP,
    key::LEVEL,
    key::MESSAGE,
    key::TARGET,
    key::FILE,
    key::LINE,
    key::SERVICE,
    key::ENV,
    key::HOST,
    key::PID,
    key::THREAD,
    key::SPAN,
    key::SPANS,
    key::ERROR,
    key::ERROR_FINGERPRINT,
    key::TRACE_ID,
    key::SPAN_ID,
    key::REPLAYED,
];

/// Whether `key` is one of [`RESERVED_KEYS`] (a `match`, which the compiler turns into a length
/// switch: this runs for every field of every event).
///
/// ```
/// assert!(tracelight_schema::is_reserved("trace_id"));
/// assert!(!tracelight_schema::is_reserved("request_id"));
/// ```
#[inline(always)]
pub fn is_reserved(key: &str) -> bool {
    matches!(
        key,
        "timestamp"
            | "level"
            | "message"
            | "target"
            | "file"
            | "line"
            | "service"
            | "env"
            | "host"
            | "pid"
            | "thread"
            | "span"
            | "spans"
            | "error"
            | "error_fingerprint"
            | "trace_id"
            | "span_id"
            | "replayed"
    )
}

/// The prefix given to a field whose name is already taken in the object it is written to.
pub const RENAME_PREFIX: &str = "fields.";

/// The renaming rule: the `n`-th candidate name for a field `key` whose name is taken.
///
/// The first candidate is `fields.<key>`, then `fields.<key>.2`, `fields.<key>.3`…; the writer
/// takes the first one not yet used in the object.
///
/// ```
/// assert_eq!(tracelight_schema::rename("level", 1), "fields.level");
/// assert_eq!(tracelight_schema::rename("level", 3), "fields.level.3");
/// ```
pub fn rename(key: &str, n: u32) -> String {
    let mut out = String::with_capacity(RENAME_PREFIX.len() + key.len() + 4);
    out.push_str(RENAME_PREFIX);
    out.push_str(key);
    if n > 1 {
        out.push('.');
        out.push_str(&n.to_string());
    }
    out
}

/// The marker written in place of a redacted value.
pub const REDACTED: &str = "[REDACTED]";

/// The fixed layout of the start of every line tracelight writes, which readers may rely on to
/// find the time and level without parsing the JSON.
///
/// A line starts `{"timestamp":"YYYY-MM-DDTHH:MM:SS.ffffffZ","level":"` and the level name
/// follows, then its closing quote. The writer puts no whitespace between tokens and never
/// repeats a key.
pub mod layout {
    /// The bytes every line starts with.
    pub const LINE_START: &str = "{\"timestamp\":\"";
    /// Offset of the timestamp's first character.
    pub const TIMESTAMP_START: usize = LINE_START.len();
    /// Width of the timestamp: `2026-02-10T22:30:00.123456Z`.
    pub const TIMESTAMP_LEN: usize = 27;
    /// Offset just past the timestamp.
    pub const TIMESTAMP_END: usize = TIMESTAMP_START + TIMESTAMP_LEN;
    /// The bytes between the timestamp and the level name.
    pub const LEVEL_PREFIX: &str = "\",\"level\":\"";
    /// Offset of the level name's first character.
    pub const LEVEL_START: usize = TIMESTAMP_END + LEVEL_PREFIX.len();
    /// Byte offsets of the separators inside the timestamp: `-` at 4 and 7, `T` at 10, `:` at 13
    /// and 16, `.` at 19, `Z` at 26.
    pub const TIMESTAMP_SEPARATORS: [(usize, u8); 7] = [
        (4, b'-'),
        (7, b'-'),
        (10, b'T'),
        (13, b':'),
        (16, b':'),
        (19, b'.'),
        (26, b'Z'),
    ];
}

/// Level names as written in lines.
pub mod level {
    /// `TRACE`
    pub const TRACE: &str = "TRACE";
    /// `DEBUG`
    pub const DEBUG: &str = "DEBUG";
    /// `INFO`
    pub const INFO: &str = "INFO";
    /// `WARN`
    pub const WARN: &str = "WARN";
    /// `ERROR`
    pub const ERROR: &str = "ERROR";
    /// Every level name, from the most verbose to the most severe.
    pub const ALL: [&str; 5] = [TRACE, DEBUG, INFO, WARN, ERROR];
}

/// The names of the default streams, in order (see `docs/streams.md`).
pub const DEFAULT_STREAMS: [&str; 5] = ["app", "errors", "access", "security", "performance"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_reserved_agrees_with_the_list() {
        for k in RESERVED_KEYS {
            assert!(is_reserved(k), "{k}");
        }
        for k in ["request_id", "user_id", "name", "fields.level", "Level", ""] {
            assert!(!is_reserved(k), "{k}");
        }
    }

    #[test]
    fn layout_offsets() {
        let line = "{\"timestamp\":\"2026-02-10T22:30:00.123456Z\",\"level\":\"WARN\"}";
        assert_eq!(
            &line[layout::TIMESTAMP_START..layout::TIMESTAMP_END],
            "2026-02-10T22:30:00.123456Z"
        );
        assert_eq!(
            &line[layout::LEVEL_START..layout::LEVEL_START + 4],
            level::WARN
        );
        let ts = &line.as_bytes()[layout::TIMESTAMP_START..layout::TIMESTAMP_END];
        for (i, b) in layout::TIMESTAMP_SEPARATORS {
            assert_eq!(ts[i], b);
        }
    }
}
