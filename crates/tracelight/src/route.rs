//! The router layer: span state, formatting and streams in one pass per event.
//!
//! [`TracelightLayer`] keeps each span's rendered fields and correlation context in the span's
//! extensions (one extension per span), and on every event it decides which [streams](Stream) take
//! the event, formats it once per format those streams use, and hands the bytes to each stream's
//! writer. Streams are routed inside this one layer rather than as a stack of per-layer filters:
//! `tracing-subscriber`'s per-layer filters have open bugs (stale interest with cached callsites,
//! contextual events dropped), and one pass formats an event once however many streams take it.
//!
//! ```
//! use tracelight::{Format, Rule, Stream, Output};
//! use tracing::Level;
//!
//! let errors = tracelight::sink::MemoryWriter::new();
//! let _g = tracelight::builder()
//!     .stream(Stream::new("app", Output::Writer(std::sync::Arc::new(tracelight::sink::MemoryWriter::new()))))
//!     .stream(Stream::new("errors", Output::Writer(std::sync::Arc::new(errors.clone())))
//!         .rule(Rule::min_level(Level::ERROR)))
//!     .init_local()
//!     .unwrap();
//! tracing::info!("fine");
//! tracing::error!("broken");
//! assert_eq!(errors.lines().len(), 1);
//! ```

use std::cell::RefCell;

use smallvec::SmallVec;
use std::sync::Arc;

use tracing_core::span::{Attributes, Id, Record};
use tracing_core::{Event, Level, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::layer::Context as LayerContext;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use crate::context::{Context, SpanState, REQUEST_ID};
use crate::fields::{write_key, JsonVisitor, KeySet};
use crate::json::{self, EventLine};
use crate::redact::Redactor;
use crate::sink::{LineWriter, Queue, StreamStats};
use crate::text::{self, TextVisitor};
use crate::time::Timestamp;

/// The format of a stream's lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// One JSON object per line (production).
    #[default]
    Json,
    /// One human-readable line per event (development). Coloured when written to a terminal.
    Text,
    /// Text when standard output is a terminal, JSON otherwise.
    Auto,
}

impl std::str::FromStr for Format {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s.trim().to_ascii_lowercase().as_str() {
            "json" => Ok(Format::Json),
            "text" | "pretty" => Ok(Format::Text),
            "auto" => Ok(Format::Auto),
            _ => Err(()),
        }
    }
}

/// Which events a stream takes.
///
/// A rule has a level range and, optionally, selectors: target prefixes and the stream tag (an
/// event field `stream = "<name of the stream>"`). An event matches when its level is in range and,
/// if there are selectors, at least one selector matches.
///
/// ```
/// use tracelight::Rule;
/// use tracing::Level;
/// let errors = Rule::min_level(Level::ERROR);                  // ERROR only
/// let db = Rule::all().target("sqlx").target("my_app::db");  // two target prefixes
/// let security = Rule::tagged();                             // events with stream = "security"
/// let quiet = Rule::all().max_level(Level::INFO);            // INFO, DEBUG and TRACE
/// # let _ = (errors, db, security, quiet);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rule {
    /// Least severe level taken (`Level::INFO` takes INFO, WARN, ERROR).
    min: Option<Level>,
    /// Most severe level taken.
    max: Option<Level>,
    targets: Vec<String>,
    tagged: bool,
}

impl Rule {
    /// Every event.
    pub fn all() -> Rule {
        Rule::default()
    }

    /// Events at least as severe as `level`.
    pub fn min_level(level: Level) -> Rule {
        Rule {
            min: Some(level),
            ..Rule::default()
        }
    }

    /// Only events at most as severe as `level`.
    pub fn max_level(mut self, level: Level) -> Rule {
        self.max = Some(level);
        self
    }

    /// Also take events whose target starts with `prefix` (a selector).
    pub fn target(mut self, prefix: impl Into<String>) -> Rule {
        self.targets.push(prefix.into());
        self
    }

    /// Events with a field `stream` equal to the stream's name (a selector).
    pub fn tagged() -> Rule {
        Rule::default().or_tagged()
    }

    /// Also take events with a field `stream` equal to the stream's name (a selector).
    pub fn or_tagged(mut self) -> Rule {
        self.tagged = true;
        self
    }

    pub(crate) fn is_tagged(&self) -> bool {
        self.tagged
    }

    /// Replaces the least severe level taken.
    pub fn with_min_level(mut self, level: Level) -> Rule {
        self.min = Some(level);
        self
    }

    #[inline]
    fn matches(&self, level: &Level, target: &str, tag: Option<&str>, name: &str) -> bool {
        // tracing orders levels by verbosity: TRACE > DEBUG > INFO > WARN > ERROR.
        if self.min.is_some_and(|min| *level > min) || self.max.is_some_and(|max| *level < max) {
            return false;
        }
        if self.targets.is_empty() && !self.tagged {
            return true;
        }
        (self.tagged && tag == Some(name))
            || self.targets.iter().any(|p| target.starts_with(p.as_str()))
    }
}

/// Where a stream's lines go.
#[derive(Clone)]
#[non_exhaustive]
pub enum Output {
    /// Standard output, through the background writer.
    Stdout,
    /// Standard error, through the background writer.
    Stderr,
    /// A synchronous writer called on the logging thread (tests, custom sinks).
    Writer(Arc<dyn LineWriter>),
    /// A rolling file, through the background writer.
    File(crate::sink::FileOptions),
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Output::Stdout => f.write_str("Stdout"),
            Output::Stderr => f.write_str("Stderr"),
            Output::Writer(_) => f.write_str("Writer(..)"),
            Output::File(o) => f.debug_tuple("File").field(o).finish(),
        }
    }
}

/// A named stream: a rule, a format and an output.
///
/// ```
/// use tracelight::{Format, Output, Rule, Stream};
/// let s = Stream::new("errors", Output::Stderr).rule(Rule::min_level(tracing::Level::ERROR)).format(Format::Text);
/// assert_eq!(s.name(), "errors");
/// ```
#[derive(Debug, Clone)]
pub struct Stream {
    pub(crate) name: String,
    pub(crate) format: Option<Format>,
    pub(crate) rule: Rule,
    pub(crate) output: Output,
}

impl Stream {
    /// A stream taking every event, in the builder's format.
    pub fn new(name: impl Into<String>, output: Output) -> Stream {
        Stream {
            name: name.into(),
            format: None,
            rule: Rule::all(),
            output,
        }
    }

    /// The stream's rule.
    pub fn get_rule(&self) -> &Rule {
        &self.rule
    }

    /// The stream's output.
    pub fn output(&self) -> &Output {
        &self.output
    }

    /// Sets the output.
    pub fn with_output(mut self, output: Output) -> Stream {
        self.output = output;
        self
    }

    /// Sets the rule.
    pub fn rule(mut self, rule: Rule) -> Stream {
        self.rule = rule;
        self
    }

    /// Sets the format (default: the builder's).
    pub fn format(mut self, format: Format) -> Stream {
        self.format = Some(format);
        self
    }

    /// The stream's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// A concrete rendering: the JSON line, or the text line with or without colours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rendering {
    Json = 0,
    Text = 1,
    TextAnsi = 2,
}

pub(crate) enum StreamSink {
    Queue(usize),
    Writer(Arc<dyn LineWriter>),
}

pub(crate) struct StreamRt {
    pub(crate) name: String,
    pub(crate) rendering: Rendering,
    pub(crate) rule: Rule,
    pub(crate) sink: StreamSink,
    /// Counters for streams with a synchronous writer (queue streams count in the queue).
    pub(crate) counters: Arc<crate::sink::Counters>,
}

/// Shared state of the layer and its guard.
pub(crate) struct Inner {
    pub(crate) streams: Vec<StreamRt>,
    pub(crate) renderings: u8,
    pub(crate) statics_json: Vec<u8>,
    pub(crate) static_keys: Vec<String>,
    pub(crate) redactor: Option<Redactor>,
    pub(crate) span_list: bool,
    pub(crate) context_fields: Vec<String>,
    pub(crate) any_tagged: bool,
    pub(crate) queue: Option<Queue>,
}

impl Inner {
    pub(crate) fn flush(&self) {
        if let Some(q) = &self.queue {
            q.flush();
            q.wait_archived();
        }
        for s in &self.streams {
            if let StreamSink::Writer(w) = &s.sink {
                w.flush();
            }
        }
    }

    pub(crate) fn stats(&self) -> Vec<StreamStats> {
        let queued = self.queue.as_ref().map(|q| q.stats()).unwrap_or_default();
        self.streams
            .iter()
            .map(|s| match s.sink {
                StreamSink::Queue(i) => queued.get(i).cloned().unwrap_or_default(),
                StreamSink::Writer(_) => s.counters.snapshot(&s.name),
            })
            .collect()
    }
}

/// The tracelight layer. Build it with [`Builder::build`](crate::Builder::build) to compose it
/// with other layers, or let [`init`](crate::init) install it.
///
/// ```
/// use tracing_subscriber::prelude::*;
/// let (layer, guard) = tracelight::builder().writer(tracelight::sink::MemoryWriter::new()).build().unwrap();
/// let subscriber = tracing_subscriber::registry().with(layer);
/// tracing::subscriber::with_default(subscriber, || tracing::info!("composed"));
/// drop(guard);
/// ```
#[derive(Clone)]
pub struct TracelightLayer {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for TracelightLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TracelightLayer")
            .field(
                "streams",
                &self
                    .inner
                    .streams
                    .iter()
                    .map(|s| &s.name)
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// Per-thread buffers, reused for every event on the thread.
#[derive(Default)]
struct Scratch {
    json: Vec<u8>,
    text: Vec<u8>,
    text_ansi: Vec<u8>,
    fields: Vec<u8>,
    message: Vec<u8>,
    error: Vec<u8>,
    thread: Vec<u8>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Finds the value of a `stream` field (the stream tag) without rendering anything else.
struct TagVisitor {
    buf: [u8; 32],
    len: usize,
    found: bool,
}

impl tracing_core::field::Visit for TagVisitor {
    fn record_str(&mut self, field: &tracing_core::Field, value: &str) {
        if field.name() == "stream" && value.len() <= self.buf.len() {
            self.buf[..value.len()].copy_from_slice(value.as_bytes());
            self.len = value.len();
            self.found = true;
        }
    }
    fn record_debug(&mut self, _: &tracing_core::Field, _: &dyn std::fmt::Debug) {}
}

impl TracelightLayer {
    /// Flushes every stream: returns when every line logged before the call is written.
    pub fn flush(&self) {
        self.inner.flush();
    }

    /// Per-stream statistics.
    pub fn stats(&self) -> Vec<StreamStats> {
        self.inner.stats()
    }

    fn promote(&self, state: &mut SpanState) {
        let inner = &*self.inner;
        let is_context = |k: &str| k == REQUEST_ID || inner.context_fields.iter().any(|c| c == k);
        if !state.fields.names().any(is_context) {
            return;
        }
        let mut ctx = state.ctx.clone();
        let names: SmallVec<[&'static str; 4]> =
            state.fields.names().filter(|k| is_context(k)).collect();
        for key in names {
            let Some(value) = state.fields.get(key) else {
                continue;
            };
            if ctx.as_deref().and_then(|c| c.get_json(key)) != Some(value) {
                ctx = Some(Arc::new(Context::with(ctx.as_deref(), key, value)));
            }
        }
        state.ctx = ctx;
    }

    fn write_event<S>(
        &self,
        event: &Event<'_>,
        ctx: &LayerContext<'_, S>,
        mask: u64,
        s: &mut Scratch,
    ) where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let inner = &*self.inner;
        let normalized = event.normalized_metadata();
        let is_log = normalized.is_some();
        let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());
        let ts = Timestamp::now();
        if s.thread.is_empty() {
            let t = std::thread::current();
            match t.name() {
                Some(name) => crate::fields::write_str(&mut s.thread, name),
                None => crate::fields::write_str(&mut s.thread, &format!("{:?}", t.id())),
            }
        }
        let span = ctx.event_span(event);
        let ext = span.as_ref().map(|sp| sp.extensions());
        let state = ext.as_ref().and_then(|e| e.get::<SpanState>());
        let context = state.and_then(|st| st.ctx.as_deref());
        let redactor = inner.redactor.as_ref();

        let wants = |r: Rendering| inner.renderings & (1 << r as u8) != 0;
        let mut rendered = 0u8;
        for (i, st) in inner.streams.iter().enumerate() {
            if mask & (1 << i) != 0 {
                rendered |= 1 << st.rendering as u8;
            }
        }
        let _ = wants;

        if rendered & (1 << Rendering::Json as u8) != 0 {
            s.fields.clear();
            s.message.clear();
            s.error.clear();
            let mut keys = KeySet::new(true);
            for k in &inner.static_keys {
                keys.add(k);
            }
            if let Some(c) = context {
                for (k, _) in c.iter() {
                    keys.add(k);
                }
            }
            let mut v = JsonVisitor {
                out: &mut s.fields,
                keys: &mut keys,
                redactor,
                message: Some(&mut s.message),
                error: Some(&mut s.error),
                error_taken: false,
                skip_log_fields: is_log,
            };
            event.record(&mut v);
            let ev = EventLine {
                ts,
                level: meta.level(),
                target: meta.target(),
                file: meta.file(),
                line: meta.line(),
                message: &s.message,
                thread: &s.thread,
            };
            let out = &mut s.json;
            out.clear();
            json::write_head(out, &ev, &inner.statics_json);
            if let Some(c) = context {
                out.extend_from_slice(c.json());
            }
            out.extend_from_slice(&s.fields);
            if let (Some(sp), Some(st)) = (span.as_ref(), state) {
                out.extend_from_slice(b"\"span\":");
                json::write_span_object(out, sp.name(), st.fields.json_members());
                out.push(b',');
            }
            if inner.span_list {
                if let Some(scope) = ctx.event_scope(event) {
                    out.extend_from_slice(b"\"spans\":[");
                    for sp in scope.from_root() {
                        let e = sp.extensions();
                        let members = e
                            .get::<SpanState>()
                            .map(|st| st.fields.json_members())
                            .unwrap_or_default();
                        json::write_span_object(out, sp.name(), members);
                        out.push(b',');
                    }
                    if out.last() == Some(&b',') {
                        out.pop();
                    }
                    out.extend_from_slice(b"],");
                }
            }
            if !s.error.is_empty() {
                out.extend_from_slice(b"\"error\":{");
                out.extend_from_slice(&s.error);
                out.extend_from_slice(b"},");
            }
            json::close_line(out);
        }

        for (r, ansi) in [(Rendering::Text, false), (Rendering::TextAnsi, true)] {
            if rendered & (1 << r as u8) == 0 {
                continue;
            }
            s.fields.clear();
            s.message.clear();
            let mut v = TextVisitor {
                out: &mut s.fields,
                redactor,
                ansi,
                skip_log_fields: is_log,
                message: Some(&mut s.message),
            };
            event.record(&mut v);
            let ev = EventLine {
                ts,
                level: meta.level(),
                target: meta.target(),
                file: meta.file(),
                line: meta.line(),
                message: &s.message,
                thread: &s.thread,
            };
            let out = if ansi { &mut s.text_ansi } else { &mut s.text };
            out.clear();
            text::write_head(out, &ev, span.as_ref().map(|sp| sp.name()), ansi);
            out.extend_from_slice(&s.fields);
            if let Some(st) = state {
                for (k, v) in st.fields.iter() {
                    text::write_key(out, k, ansi);
                    text::write_json_value(out, v);
                }
            }
            if let Some(c) = context {
                for (k, v) in c.iter() {
                    // The current span's own fields are already written.
                    if state.is_some_and(|st| st.fields.names().any(|n| n == k)) {
                        continue;
                    }
                    text::write_key(out, k, ansi);
                    text::write_json_value(out, v);
                }
            }
            out.push(b'\n');
        }

        let mut items: [(usize, &[u8]); 8] = [(0, &[]); 8];
        let mut n = 0;
        for (i, st) in inner.streams.iter().enumerate() {
            if mask & (1 << i) == 0 {
                continue;
            }
            let bytes: &[u8] = match st.rendering {
                Rendering::Json => &s.json,
                Rendering::Text => &s.text,
                Rendering::TextAnsi => &s.text_ansi,
            };
            match &st.sink {
                StreamSink::Writer(w) => {
                    w.write_line(bytes);
                    st.counters
                        .events
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    st.counters
                        .bytes
                        .fetch_add(bytes.len() as u64, std::sync::atomic::Ordering::Relaxed);
                }
                StreamSink::Queue(q) => {
                    if n == items.len() {
                        if let Some(queue) = &inner.queue {
                            queue.push_many(&items[..n]);
                        }
                        n = 0;
                    }
                    items[n] = (*q, bytes);
                    n += 1;
                }
            }
        }
        if n > 0 {
            if let Some(queue) = &inner.queue {
                queue.push_many(&items[..n]);
            }
        }
    }
}

impl<S> Layer<S> for TracelightLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: LayerContext<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let parent_ctx = span.parent().and_then(|p| {
            p.extensions()
                .get::<SpanState>()
                .and_then(|s| s.ctx.clone())
        });
        // The state is filled in place, inside the extension's allocation: it is a few hundred
        // bytes (fields inline), not worth copying around.
        let mut ext = span.extensions_mut();
        ext.insert(SpanState::default());
        if let Some(state) = ext.get_mut::<SpanState>() {
            state.ctx = parent_ctx;
            state.fields.record(attrs, self.inner.redactor.as_ref());
            self.promote(state);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: LayerContext<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut ext = span.extensions_mut();
        if let Some(state) = ext.get_mut::<SpanState>() {
            state.fields.record(values, self.inner.redactor.as_ref());
            self.promote(state);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: LayerContext<'_, S>) {
        let inner = &*self.inner;
        let meta = event.metadata();
        let mut tag = TagVisitor {
            buf: [0; 32],
            len: 0,
            found: false,
        };
        if inner.any_tagged && meta.fields().field("stream").is_some() {
            event.record(&mut tag);
        }
        let tag_str = if tag.found {
            std::str::from_utf8(&tag.buf[..tag.len]).ok()
        } else {
            None
        };
        // A `log` record's real target is in its fields; normalize only when needed.
        let normalized;
        let target = if meta.fields().field("log.target").is_some() {
            normalized = event.normalized_metadata();
            normalized.as_ref().map_or(meta.target(), |m| m.target())
        } else {
            meta.target()
        };
        let mut mask = 0u64;
        for (i, st) in inner.streams.iter().enumerate() {
            if st.rule.matches(meta.level(), target, tag_str, &st.name) {
                mask |= 1 << i;
            }
        }
        if mask == 0 {
            return;
        }
        let done = SCRATCH
            .try_with(|cell| match cell.try_borrow_mut() {
                Ok(mut s) => {
                    self.write_event(event, &ctx, mask, &mut s);
                    true
                }
                Err(_) => false,
            })
            .unwrap_or(false);
        if !done {
            // Re-entered (a field's Debug impl logged) or thread-local storage is gone: use
            // fresh buffers rather than lose the line.
            let mut s = Scratch::default();
            self.write_event(event, &ctx, mask, &mut s);
        }
    }
}

/// Renders the static members (`"service":…,"env":…,"host":…,"pid":…,` and user fields).
pub(crate) fn render_statics(pairs: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in pairs {
        write_key(&mut out, k);
        out.extend_from_slice(v);
        out.push(b',');
    }
    out
}

/// The line a stream gets when lines were dropped from it (lossy mode).
pub(crate) fn drop_report_line(
    rendering: Rendering,
    statics: &[u8],
    stream: &str,
    dropped: u64,
) -> Vec<u8> {
    let mut message = Vec::new();
    let text = format!("dropped {dropped} lines: the queue was full");
    crate::fields::escape_into(&mut message, &text);
    let mut thread = Vec::new();
    crate::fields::write_str(&mut thread, "tracelight-writer");
    let ev = EventLine {
        ts: Timestamp::now(),
        level: &Level::WARN,
        target: "tracelight::sink",
        file: None,
        line: None,
        message: &message,
        thread: &thread,
    };
    let mut out = Vec::new();
    match rendering {
        Rendering::Json => {
            json::write_head(&mut out, &ev, statics);
            out.extend_from_slice(b"\"stream\":");
            crate::fields::write_str(&mut out, stream);
            out.extend_from_slice(b",\"dropped\":");
            crate::fields::write_u64(&mut out, dropped);
            json::close_line(&mut out);
        }
        Rendering::Text | Rendering::TextAnsi => {
            let ansi = rendering == Rendering::TextAnsi;
            text::write_head(&mut out, &ev, None, ansi);
            text::write_key(&mut out, "stream", ansi);
            out.extend_from_slice(stream.as_bytes());
            text::write_key(&mut out, "dropped", ansi);
            crate::fields::write_u64(&mut out, dropped);
            out.push(b'\n');
        }
    }
    out
}

/// The names of the default file streams, in order.
pub const DEFAULT_STREAMS: [&str; 5] = ["app", "errors", "access", "security", "performance"];

/// The rule of a default stream (see `docs/streams.md`):
///
/// | stream | takes |
/// |---|---|
/// | `app` | every event |
/// | `errors` | ERROR events |
/// | `access` | events tagged `stream = "access"` or with a target under `tracelight::access` |
/// | `security` | events tagged `stream = "security"` or with a target under `tracelight::security` |
/// | `performance` | events tagged `stream = "performance"` or with a target under `tracelight::timing` |
///
/// ```
/// use tracelight::route::default_rule;
/// assert_eq!(default_rule("errors"), Some(tracelight::Rule::min_level(tracing::Level::ERROR)));
/// assert_eq!(default_rule("nope"), None);
/// ```
pub fn default_rule(name: &str) -> Option<Rule> {
    Some(match name {
        "app" => Rule::all(),
        "errors" => Rule::min_level(Level::ERROR),
        "access" => Rule::tagged().target("tracelight::access"),
        "security" => Rule::tagged().target("tracelight::security"),
        "performance" => Rule::tagged().target("tracelight::timing"),
        _ => return None,
    })
}

/// The five default streams as JSON files in `dir` (`app.log`, `errors.log`, `access.log`,
/// `security.log`, `performance.log`), each with `rotation`.
///
/// ```
/// use tracelight::sink::Rotation;
/// let streams = tracelight::route::default_streams("/var/log/shop", &Rotation::size(1 << 20));
/// assert_eq!(streams.iter().map(|s| s.name()).collect::<Vec<_>>(), ["app", "errors", "access", "security", "performance"]);
/// ```
pub fn default_streams(
    dir: impl AsRef<std::path::Path>,
    rotation: &crate::sink::Rotation,
) -> Vec<Stream> {
    DEFAULT_STREAMS
        .iter()
        .map(|name| {
            let path = dir.as_ref().join(format!("{name}.log"));
            Stream::new(
                *name,
                Output::File(crate::sink::FileOptions::new(path).rotation(rotation.clone())),
            )
            .rule(default_rule(name).unwrap_or_default())
            .format(Format::Json)
        })
        .collect()
}
