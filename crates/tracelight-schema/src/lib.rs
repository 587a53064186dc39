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

/// The schema presets: the same line under the key names a log store expects.
///
/// [`Schema::Default`] is tracelight's own schema (the keys of [`key`]). The others rename the keys
/// tracelight writes itself (the event's own fields keep their names) and write the level the
/// store's way; every preset keeps the time as the first key, 27 characters wide, and the level as
/// the second, so [`Schema::detect`] tells a line's preset from its first bytes. `docs/schema.md`
/// lists every preset's keys.
///
/// ```
/// use tracelight_schema::Schema;
/// assert_eq!(Schema::parse("ecs"), Some(Schema::Ecs));
/// let line = br#"{"@timestamp":"2026-02-10T22:30:00.123456Z","log.level":"info","message":"hi"}"#;
/// assert_eq!(Schema::detect(line), Some(Schema::Ecs));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Schema {
    /// tracelight's schema: `timestamp`, `level`, `message`… (the keys of [`key`]).
    #[default]
    Default,
    /// Elastic Common Schema, as the `ecs-logging` libraries write it: `@timestamp`, `log.level`,
    /// `message`, `ecs.version`, `service.name`, `trace.id`, `error.type`…
    Ecs,
    /// Google Cloud Logging's structured logging: `time`, `severity`, `message`,
    /// `logging.googleapis.com/sourceLocation`, `logging.googleapis.com/trace`…
    Gcp,
    /// Datadog's reserved and standard attributes: `timestamp`, `status`, `message`,
    /// `logger.name`, `dd.trace_id` and `dd.span_id` in decimal, `error.kind`…
    Datadog,
    /// The OpenTelemetry log data model's field names (`Timestamp`, `SeverityText`,
    /// `SeverityNumber`, `Body`, `TraceId`, `SpanId`, `Resource`, `InstrumentationScope`) and
    /// the semantic conventions' attribute names (`code.file.path`, `thread.name`,
    /// `exception.type`…).
    Otel,
}

impl Schema {
    /// Every preset, in the order of their names in [`Schema::NAMES`].
    pub const ALL: [Schema; 5] = [
        Schema::Default,
        Schema::Ecs,
        Schema::Gcp,
        Schema::Datadog,
        Schema::Otel,
    ];

    /// The names [`Schema::parse`] accepts, as `LOG_SCHEMA` takes them.
    pub const NAMES: [&'static str; 5] = ["default", "ecs", "gcp", "datadog", "otel"];

    /// The preset of a name (`default`, `ecs`, `gcp`, `datadog`, `otel`, any case).
    pub fn parse(name: &str) -> Option<Schema> {
        let name = name.trim();
        Schema::NAMES
            .iter()
            .position(|n| n.eq_ignore_ascii_case(name))
            .map(|i| Schema::ALL[i])
    }

    /// The preset's name, as [`Schema::parse`] reads it.
    pub fn name(self) -> &'static str {
        match self {
            Schema::Default => "default",
            Schema::Ecs => "ecs",
            Schema::Gcp => "gcp",
            Schema::Datadog => "datadog",
            Schema::Otel => "otel",
        }
    }

    /// The key of the time, always the first key of a line.
    pub fn timestamp_key(self) -> &'static str {
        match self {
            Schema::Default | Schema::Datadog => key::TIMESTAMP,
            Schema::Ecs => ecs::TIMESTAMP,
            Schema::Gcp => gcp::TIME,
            Schema::Otel => otel::TIMESTAMP,
        }
    }

    /// The key of the level, always the second key of a line.
    pub fn level_key(self) -> &'static str {
        match self {
            Schema::Default => key::LEVEL,
            Schema::Ecs => ecs::LEVEL,
            Schema::Gcp => gcp::SEVERITY,
            Schema::Datadog => datadog::STATUS,
            Schema::Otel => otel::SEVERITY_TEXT,
        }
    }

    /// The level name this preset writes for the level at `index` of [`level::ALL`] (0 is
    /// `TRACE`, 4 is `ERROR`).
    ///
    /// ```
    /// use tracelight_schema::Schema;
    /// assert_eq!(Schema::Gcp.level_name(3), "WARNING");
    /// assert_eq!(Schema::Ecs.level_name(4), "error");
    /// ```
    pub fn level_name(self, index: usize) -> &'static str {
        const LOWER: [&str; 5] = ["trace", "debug", "info", "warn", "error"];
        // Cloud Logging has no TRACE: its lowest severity above DEFAULT is DEBUG.
        const GCP: [&str; 5] = ["DEBUG", "DEBUG", "INFO", "WARNING", "ERROR"];
        let i = index.min(4);
        match self {
            Schema::Default | Schema::Otel => level::ALL[i],
            Schema::Ecs | Schema::Datadog => LOWER[i],
            Schema::Gcp => GCP[i],
        }
    }

    /// The index in [`level::ALL`] of a level name this preset writes (any case; `WARNING`
    /// is `WARN`), for readers.
    pub fn level_index(self, name: &str) -> Option<usize> {
        if self == Schema::Gcp && name.eq_ignore_ascii_case("WARNING") {
            return Some(3);
        }
        level::ALL.iter().position(|l| l.eq_ignore_ascii_case(name))
    }

    /// The keys this preset writes itself at the root of a line besides [`RESERVED_KEYS`]: an
    /// event, context or static field with one of these names is renamed as a reserved one is
    /// (see [`rename`]), so the preset's keys are never written twice either.
    pub fn own_keys(self) -> &'static [&'static str] {
        match self {
            Schema::Default => &[],
            Schema::Ecs => ecs::KEYS,
            Schema::Gcp => gcp::KEYS,
            Schema::Datadog => datadog::KEYS,
            Schema::Otel => otel::KEYS,
        }
    }

    /// The bytes every line of this preset starts with: `{"<time key>":"`.
    pub fn line_start(self) -> &'static str {
        match self {
            Schema::Default => layout::LINE_START,
            Schema::Ecs => "{\"@timestamp\":\"",
            Schema::Gcp => "{\"time\":\"",
            Schema::Datadog => "{\"timestamp\":\"",
            Schema::Otel => "{\"Timestamp\":\"",
        }
    }

    /// The bytes between the time and the level's value: `","<level key>":"`.
    pub fn level_prefix(self) -> &'static str {
        match self {
            Schema::Default => layout::LEVEL_PREFIX,
            Schema::Ecs => "\",\"log.level\":\"",
            Schema::Gcp => "\",\"severity\":\"",
            Schema::Datadog => "\",\"status\":\"",
            Schema::Otel => "\",\"SeverityText\":\"",
        }
    }

    /// The preset of a line tracelight wrote, from its first bytes: the time key, a 27-character
    /// time and the level key. `None` for any other line.
    pub fn detect(line: &[u8]) -> Option<Schema> {
        Schema::ALL.into_iter().find(|s| {
            let start = s.line_start().as_bytes();
            let prefix = s.level_prefix().as_bytes();
            let end = start.len() + layout::TIMESTAMP_LEN;
            line.starts_with(start)
                && line.len() > end + prefix.len()
                && line[end..].starts_with(prefix)
        })
    }
}

impl Schema {
    /// The default schema's key for a root key this preset writes in place of it, for readers
    /// that turn a preset's line back into the default schema (`log.level` → `level`). `None`
    /// for the event's own keys and for what is not a plain rename: the level's value, the
    /// error's members (one `error` object by default), GCP's source location and trace, and
    /// OpenTelemetry's `Resource` and `InstrumentationScope` objects.
    ///
    /// ```
    /// use tracelight_schema::Schema;
    /// assert_eq!(Schema::Ecs.default_key("service.name"), Some("service"));
    /// assert_eq!(Schema::Ecs.default_key("order_id"), None);
    /// ```
    pub fn default_key(self, key: &str) -> Option<&'static str> {
        let pairs: &[(&str, &str)] = match self {
            Schema::Default => &[],
            Schema::Ecs => &[
                (ecs::TIMESTAMP, key::TIMESTAMP),
                (ecs::LEVEL, key::LEVEL),
                (ecs::LOGGER, key::TARGET),
                (ecs::FILE, key::FILE),
                (ecs::LINE, key::LINE),
                (ecs::SERVICE, key::SERVICE),
                (ecs::ENV, key::ENV),
                (ecs::HOST, key::HOST),
                (ecs::PID, key::PID),
                (ecs::THREAD, key::THREAD),
                (ecs::TRACE_ID, key::TRACE_ID),
                (ecs::SPAN_ID, key::SPAN_ID),
                (ecs::ERROR_FINGERPRINT, key::ERROR_FINGERPRINT),
                (ecs::SPAN, key::SPAN),
                (ecs::SPANS, key::SPANS),
            ],
            Schema::Gcp => &[
                (gcp::TIME, key::TIMESTAMP),
                (gcp::SEVERITY, key::LEVEL),
                (gcp::SPAN_ID, key::SPAN_ID),
            ],
            Schema::Datadog => &[
                (datadog::STATUS, key::LEVEL),
                (datadog::LOGGER, key::TARGET),
                (datadog::THREAD, key::THREAD),
                (datadog::TRACE_ID, key::TRACE_ID),
                (datadog::SPAN_ID, key::SPAN_ID),
                (datadog::ERROR_FINGERPRINT, key::ERROR_FINGERPRINT),
            ],
            Schema::Otel => &[
                (otel::TIMESTAMP, key::TIMESTAMP),
                (otel::SEVERITY_TEXT, key::LEVEL),
                (otel::BODY, key::MESSAGE),
                (otel::FILE, key::FILE),
                (otel::LINE, key::LINE),
                (otel::THREAD, key::THREAD),
                (otel::TRACE_ID, key::TRACE_ID),
                (otel::SPAN_ID, key::SPAN_ID),
            ],
        };
        pairs
            .iter()
            .find(|(from, _)| *from == key)
            .map(|(_, to)| *to)
    }

    /// The keys of the root error's type, message and chain (the chain one cause a line) when
    /// this preset writes them as flat members instead of the default `error` object.
    pub fn error_keys(self) -> Option<[&'static str; 3]> {
        match self {
            Schema::Ecs => Some([ecs::ERROR_TYPE, ecs::ERROR_MESSAGE, ecs::ERROR_STACK]),
            Schema::Datadog => Some([
                datadog::ERROR_KIND,
                datadog::ERROR_MESSAGE,
                datadog::ERROR_STACK,
            ]),
            Schema::Otel => Some([
                otel::EXCEPTION_TYPE,
                otel::EXCEPTION_MESSAGE,
                otel::EXCEPTION_STACKTRACE,
            ]),
            Schema::Default | Schema::Gcp => None,
        }
    }
}

impl std::fmt::Display for Schema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The keys of the Elastic Common Schema preset ([`Schema::Ecs`]), from the ECS field reference
/// and the `ecs-logging` specification (`@timestamp`, `log.level` and `message` first).
pub mod ecs {
    /// The time (`@timestamp`).
    pub const TIMESTAMP: &str = "@timestamp";
    /// The level, lower case (`log.level`).
    pub const LEVEL: &str = "log.level";
    /// The message.
    pub const MESSAGE: &str = "message";
    /// The ECS version the lines follow (`ecs.version`), required by `ecs-logging`.
    pub const ECS_VERSION: &str = "ecs.version";
    /// The value of [`ECS_VERSION`].
    pub const VERSION: &str = "8.11.0";
    /// The event's target (`log.logger`).
    pub const LOGGER: &str = "log.logger";
    /// The source file (`log.origin.file.name`).
    pub const FILE: &str = "log.origin.file.name";
    /// The source line (`log.origin.file.line`).
    pub const LINE: &str = "log.origin.file.line";
    /// The service (`service.name`).
    pub const SERVICE: &str = "service.name";
    /// The environment (`service.environment`).
    pub const ENV: &str = "service.environment";
    /// The host name (`host.hostname`).
    pub const HOST: &str = "host.hostname";
    /// The process id (`process.pid`).
    pub const PID: &str = "process.pid";
    /// The thread's name (`process.thread.name`).
    pub const THREAD: &str = "process.thread.name";
    /// The trace id (`trace.id`).
    pub const TRACE_ID: &str = "trace.id";
    /// The span id (`span.id`).
    pub const SPAN_ID: &str = "span.id";
    /// The error's type (`error.type`).
    pub const ERROR_TYPE: &str = "error.type";
    /// The error's message (`error.message`).
    pub const ERROR_MESSAGE: &str = "error.message";
    /// The error's chain, one cause a line (`error.stack_trace`).
    pub const ERROR_STACK: &str = "error.stack_trace";
    /// The error's fingerprint, as a label (`labels.error_fingerprint`).
    pub const ERROR_FINGERPRINT: &str = "labels.error_fingerprint";
    /// The current span (`tracing.span`: ECS's `span` is the trace's span).
    pub const SPAN: &str = "tracing.span";
    /// The span list (`tracing.spans`).
    pub const SPANS: &str = "tracing.spans";
    /// Every key the preset writes, and the objects those dotted keys make in Elasticsearch
    /// (`log` for `log.level`): a field named `log` would be a string where Elasticsearch has an
    /// object, and the document would be refused (`service`, `host`, `span` and `error` are
    /// reserved already).
    pub const KEYS: &[&str] = &[
        "@timestamp",
        "log",
        "log.origin",
        "log.origin.file",
        "ecs",
        "process",
        "process.thread",
        "trace",
        "labels",
        "tracing",
        LEVEL,
        ECS_VERSION,
        LOGGER,
        FILE,
        LINE,
        SERVICE,
        ENV,
        HOST,
        PID,
        THREAD,
        TRACE_ID,
        SPAN_ID,
        ERROR_TYPE,
        ERROR_MESSAGE,
        ERROR_STACK,
        ERROR_FINGERPRINT,
        SPAN,
        SPANS,
    ];
}

/// The keys of the Google Cloud Logging preset ([`Schema::Gcp`]): the special fields of
/// structured logging, which Cloud Logging moves into the `LogEntry`; the others stay in its
/// `jsonPayload` under tracelight's names.
pub mod gcp {
    /// The time, an RFC 3339 string (`time`).
    pub const TIME: &str = "time";
    /// The severity (`DEBUG`, `INFO`, `WARNING`, `ERROR`).
    pub const SEVERITY: &str = "severity";
    /// The source location: `{"file":…,"line":"42","function":<target>}`.
    pub const SOURCE_LOCATION: &str = "logging.googleapis.com/sourceLocation";
    /// The trace: `projects/<project id>/traces/<trace id>`.
    pub const TRACE: &str = "logging.googleapis.com/trace";
    /// The span id, 16 hex digits.
    pub const SPAN_ID: &str = "logging.googleapis.com/spanId";
    /// Whether the trace is sampled.
    pub const TRACE_SAMPLED: &str = "logging.googleapis.com/trace_sampled";
    /// Every key the preset writes besides tracelight's own.
    pub const KEYS: &[&str] = &[
        TIME,
        SEVERITY,
        SOURCE_LOCATION,
        TRACE,
        SPAN_ID,
        TRACE_SAMPLED,
    ];
}

/// The keys of the Datadog preset ([`Schema::Datadog`]): reserved and standard attributes.
pub mod datadog {
    /// The level, lower case (`status`).
    pub const STATUS: &str = "status";
    /// The event's target (`logger.name`).
    pub const LOGGER: &str = "logger.name";
    /// The thread's name (`logger.thread_name`).
    pub const THREAD: &str = "logger.thread_name";
    /// The trace id: the low 64 bits of the OpenTelemetry trace id, in decimal (`dd.trace_id`).
    pub const TRACE_ID: &str = "dd.trace_id";
    /// The span id in decimal (`dd.span_id`).
    pub const SPAN_ID: &str = "dd.span_id";
    /// The error's type (`error.kind`).
    pub const ERROR_KIND: &str = "error.kind";
    /// The error's message (`error.message`).
    pub const ERROR_MESSAGE: &str = "error.message";
    /// The error's chain, one cause a line (`error.stack`).
    pub const ERROR_STACK: &str = "error.stack";
    /// The error's fingerprint, which Error Tracking groups by (`error.fingerprint`).
    pub const ERROR_FINGERPRINT: &str = "error.fingerprint";
    /// Every key the preset writes besides tracelight's own, and the objects its dotted keys
    /// make in Datadog (`logger`, `dd`).
    pub const KEYS: &[&str] = &[
        "logger",
        "dd",
        STATUS,
        LOGGER,
        THREAD,
        TRACE_ID,
        SPAN_ID,
        ERROR_KIND,
        ERROR_MESSAGE,
        ERROR_STACK,
        ERROR_FINGERPRINT,
    ];
}

/// The keys of the OpenTelemetry preset ([`Schema::Otel`]): the log data model's top-level
/// fields and the semantic conventions' attribute names.
pub mod otel {
    /// The time (`Timestamp`).
    pub const TIMESTAMP: &str = "Timestamp";
    /// The level's name (`SeverityText`: `TRACE` … `ERROR`).
    pub const SEVERITY_TEXT: &str = "SeverityText";
    /// The level's number (`SeverityNumber`: 1, 5, 9, 13, 17).
    pub const SEVERITY_NUMBER: &str = "SeverityNumber";
    /// The message (`Body`).
    pub const BODY: &str = "Body";
    /// The event's target, as the scope's name: `{"Name":…}`.
    pub const SCOPE: &str = "InstrumentationScope";
    /// The source file (`code.file.path`).
    pub const FILE: &str = "code.file.path";
    /// The source line (`code.line.number`).
    pub const LINE: &str = "code.line.number";
    /// The resource: `{"service.name":…,"deployment.environment.name":…,"host.name":…,
    /// "process.pid":…}`.
    pub const RESOURCE: &str = "Resource";
    /// The thread's name (`thread.name`).
    pub const THREAD: &str = "thread.name";
    /// The trace id, 32 hex digits (`TraceId`).
    pub const TRACE_ID: &str = "TraceId";
    /// The span id, 16 hex digits (`SpanId`).
    pub const SPAN_ID: &str = "SpanId";
    /// The error's type (`exception.type`).
    pub const EXCEPTION_TYPE: &str = "exception.type";
    /// The error's message (`exception.message`).
    pub const EXCEPTION_MESSAGE: &str = "exception.message";
    /// The error's chain, one cause a line (`exception.stacktrace`).
    pub const EXCEPTION_STACKTRACE: &str = "exception.stacktrace";
    /// The severity number of each level of [`level::ALL`](crate::level::ALL).
    pub const SEVERITY_NUMBERS: [u8; 5] = [1, 5, 9, 13, 17];
    /// Every key the preset writes besides tracelight's own, and the namespaces of its dotted
    /// attribute names (`code`, `exception`; `thread` is reserved already).
    pub const KEYS: &[&str] = &[
        "code",
        "code.file",
        "code.line",
        "exception",
        TIMESTAMP,
        SEVERITY_TEXT,
        SEVERITY_NUMBER,
        BODY,
        SCOPE,
        FILE,
        LINE,
        RESOURCE,
        THREAD,
        TRACE_ID,
        SPAN_ID,
        EXCEPTION_TYPE,
        EXCEPTION_MESSAGE,
        EXCEPTION_STACKTRACE,
    ];
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
    fn presets_are_told_apart_by_their_first_bytes() {
        let ts = "2026-02-10T22:30:00.123456Z";
        for s in Schema::ALL {
            assert_eq!(Schema::parse(s.name()), Some(s));
            let line = format!(
                "{}{ts}{}{}\"}}",
                s.line_start(),
                s.level_prefix(),
                s.level_name(2)
            );
            assert_eq!(Schema::detect(line.as_bytes()), Some(s), "{line}");
            assert!(line.contains(&format!("\"{}\":", s.timestamp_key())));
            assert!(line.contains(&format!("\"{}\":", s.level_key())));
            for i in 0..5 {
                assert_eq!(
                    s.level_index(s.level_name(i)),
                    Some(if s == Schema::Gcp && i == 0 { 1 } else { i })
                );
            }
            for k in s.own_keys() {
                assert!(!is_reserved(k), "{s}: {k} is reserved already");
            }
        }
        assert_eq!(Schema::parse("ECS"), Some(Schema::Ecs));
        assert_eq!(Schema::parse("elastic"), None);
        assert_eq!(Schema::detect(b"{\"time\":1}"), None);
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
