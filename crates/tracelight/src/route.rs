//! The router layer: span state, formatting and streams in one pass per event.
//!
//! [`TracelightLayer`] keeps each span's fields, correlation context and timing in a table of its
//! own, keyed by span id (pooled, so a span allocates nothing in steady state), and on every event it decides which [streams](Stream) take
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

use crate::context::{Context, REQUEST_ID};
use crate::fields::{write_key, JsonVisitor, KeySet};
use crate::json::{self, EventLine};
use crate::redact::Redactor;
use crate::sink::{LineWriter, Queue, StreamStats};
use crate::spans::SpanState;
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
    pub(crate) statics_json: Vec<u8>,
    pub(crate) static_keys: Vec<String>,
    pub(crate) redactor: Option<Redactor>,
    pub(crate) span_list: bool,
    pub(crate) context_fields: Vec<String>,
    pub(crate) queue: Option<Queue>,
    pub(crate) timing: Option<crate::timing::Timing>,
    pub(crate) tracker: crate::errors::Tracker,
    pub(crate) security: crate::errors::SecurityTracker,
    pub(crate) sampler: Option<crate::sample::Sampler>,
    /// Events seen by level, in shards so threads do not fight over one cache line.
    pub(crate) levels: LevelCounts,
    /// The span tables of every subscriber this layer (or a clone) is part of, for draining
    /// queued timing before a snapshot.
    pub(crate) tables: std::sync::Mutex<Vec<std::sync::Weak<crate::spans::SpanTable>>>,
}

/// Per-level event counters, sharded by thread.
pub(crate) struct LevelCounts {
    shards: [[std::sync::atomic::AtomicU64; 5]; 16],
}

impl Default for LevelCounts {
    fn default() -> Self {
        LevelCounts {
            shards: std::array::from_fn(|_| {
                std::array::from_fn(|_| std::sync::atomic::AtomicU64::new(0))
            }),
        }
    }
}

thread_local! {
    static SHARD: usize = {
        // A stable small number per thread, from the address of a thread-local.
        let x = 0u8;
        (&x as *const u8 as usize >> 6) % 16
    };
}

fn level_index(level: &Level) -> usize {
    match *level {
        Level::TRACE => 0,
        Level::DEBUG => 1,
        Level::INFO => 2,
        Level::WARN => 3,
        Level::ERROR => 4,
    }
}

impl LevelCounts {
    #[inline]
    fn add(&self, level: &Level) {
        let shard = SHARD.try_with(|s| *s).unwrap_or(0);
        self.shards[shard][level_index(level)].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    fn totals(&self) -> [(Level, u64); 5] {
        let mut out = [
            (Level::TRACE, 0),
            (Level::DEBUG, 0),
            (Level::INFO, 0),
            (Level::WARN, 0),
            (Level::ERROR, 0),
        ];
        for shard in &self.shards {
            for (i, c) in shard.iter().enumerate() {
                out[i].1 += c.load(std::sync::atomic::Ordering::Relaxed);
            }
        }
        out
    }
}

/// A value of a line tracelight writes itself (summaries, reports).
pub(crate) enum SynthValue<'a> {
    U64(u64),
    Str(&'a str),
}

impl Inner {
    /// A new span table, registered for draining queued timing and for lookups by id.
    pub(crate) fn new_span_table(&self) -> Arc<crate::spans::SpanTable> {
        let spans = crate::spans::SpanTable::new_registered();
        crate::sink::lock(&self.tables).push(Arc::downgrade(&spans));
        spans
    }

    /// Writes a line of tracelight's own (a summary, a report) to every stream whose rule takes
    /// an event of this level and target.
    pub(crate) fn emit_synthetic(
        &self,
        level: Level,
        target: &str,
        message: &str,
        fields: &[(&str, SynthValue<'_>)],
    ) {
        let mut lines: [Option<Vec<u8>>; 3] = [None, None, None];
        let mut items: Vec<(usize, usize)> = Vec::new();
        for st in &self.streams {
            if !st.rule.matches(&level, target, None, &st.name) {
                continue;
            }
            let r = st.rendering as usize;
            if lines[r].is_none() {
                lines[r] = Some(synthetic_line(
                    st.rendering,
                    &self.statics_json,
                    level,
                    target,
                    message,
                    fields,
                ));
            }
            let bytes = lines[r].as_deref().unwrap_or_default();
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
                StreamSink::Queue(q) => items.push((*q, r)),
            }
        }
        if let Some(queue) = &self.queue {
            for (q, r) in items {
                queue.push_many(&[(q, lines[r].as_deref().unwrap_or_default())]);
            }
        }
    }

    /// Writes the summaries of suppression windows that closed (all of them with `all`).
    pub(crate) fn emit_due_summaries(&self, all: bool) {
        for s in self.tracker.take_due(all) {
            let fp = format!("{:016x}", s.fingerprint);
            let msg = format!("suppressed {} repeats of an error: {}", s.count, s.message);
            self.emit_synthetic(
                Level::WARN,
                "tracelight::errors",
                &msg,
                &[
                    ("error_fingerprint", SynthValue::Str(&fp)),
                    ("suppressed", SynthValue::U64(s.count)),
                    ("window_s", SynthValue::U64(s.window.as_secs())),
                ],
            );
        }
    }

    pub(crate) fn flush(&self) {
        if self.tracker.has_due() {
            self.emit_due_summaries(false);
        }
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
    /// The states of the spans of the subscriber this layer is part of.
    pub(crate) spans: Arc<crate::spans::SpanTable>,
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
    /// The event's span's fields, copied from the span table.
    span_fields: crate::fields::SpanFields,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
    /// Fields recorded on an existing span, rendered before they are merged.
    static RECORD_SCRATCH: RefCell<crate::fields::SpanFields> = RefCell::new(crate::fields::SpanFields::default());
}

/// Runs `f` on this thread's buffers in `key`; when they are in use (re-entered: a field's `Debug`
/// impl logged) or thread-local storage is gone, on fresh ones rather than lose the work.
fn with_scratch<T: Default + 'static>(
    key: &'static std::thread::LocalKey<RefCell<T>>,
    f: impl FnOnce(&mut T),
) {
    let mut f = Some(f);
    let _ = key.try_with(|cell| {
        if let Ok(mut b) = cell.try_borrow_mut() {
            if let Some(f) = f.take() {
                f(&mut b);
            }
        }
    });
    if let Some(f) = f {
        f(&mut T::default());
    }
}

/// Finds the values of the `stream` field (the stream tag) and the `event` field (a security
/// event's type) without rendering anything else.
struct TagVisitor {
    buf: [u8; 32],
    len: usize,
    found: bool,
    event: [u8; 64],
    event_len: usize,
}

impl TagVisitor {
    fn new() -> Self {
        TagVisitor {
            buf: [0; 32],
            len: 0,
            found: false,
            event: [0; 64],
            event_len: 0,
        }
    }

    fn tag(&self) -> Option<&str> {
        if self.found {
            std::str::from_utf8(&self.buf[..self.len]).ok()
        } else {
            None
        }
    }

    fn event(&self) -> &str {
        std::str::from_utf8(&self.event[..self.event_len]).unwrap_or("unknown")
    }
}

impl tracing_core::field::Visit for TagVisitor {
    fn record_str(&mut self, field: &tracing_core::Field, value: &str) {
        match field.name() {
            "stream" if value.len() <= self.buf.len() => {
                self.buf[..value.len()].copy_from_slice(value.as_bytes());
                self.len = value.len();
                self.found = true;
            }
            "event" => {
                let n = value.len().min(self.event.len());
                // Cut at a character boundary.
                let n = (0..=n)
                    .rev()
                    .find(|i| value.is_char_boundary(*i))
                    .unwrap_or(0);
                self.event[..n].copy_from_slice(&value.as_bytes()[..n]);
                self.event_len = n;
            }
            _ => {}
        }
    }
    fn record_debug(&mut self, field: &tracing_core::Field, value: &dyn std::fmt::Debug) {
        // `event = %kind` or `event = ?kind`: keep what fits of its rendering.
        if field.name() == "event" {
            struct Fixed<'a>(&'a mut [u8; 64], &'a mut usize);
            impl std::fmt::Write for Fixed<'_> {
                fn write_str(&mut self, s: &str) -> std::fmt::Result {
                    let room = self.0.len() - *self.1;
                    let mut n = s.len().min(room);
                    while !s.is_char_boundary(n) {
                        n -= 1;
                    }
                    self.0[*self.1..*self.1 + n].copy_from_slice(&s.as_bytes()[..n]);
                    *self.1 += n;
                    Ok(())
                }
            }
            self.event_len = 0;
            let _ = std::fmt::write(
                &mut Fixed(&mut self.event, &mut self.event_len),
                format_args!("{value:?}"),
            );
        }
    }
}

/// What `on_event` decided that `write_event` must add or record.
#[derive(Clone, Copy)]
struct EventPlan<'a> {
    mask: u64,
    /// Events held back by the rate limit before this one.
    rate_limited: u64,
    /// The security event's type, when this is one.
    security: Option<&'a str>,
    ts: Option<Timestamp>,
}

/// A handle on a tracelight layer's state, for snapshots and flushing from anywhere (the admin
/// endpoints hold one). Cheap to clone.
///
/// ```
/// let (layer, guard) = tracelight::builder().writer(tracelight::sink::MemoryWriter::new()).build().unwrap();
/// let handle = guard.handle();
/// assert_eq!(handle.errors().total, 0);
/// # drop(layer);
/// ```
#[derive(Clone)]
pub struct Handle {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle").finish_non_exhaustive()
    }
}

impl Handle {
    /// Per-stream statistics.
    pub fn stats(&self) -> Vec<StreamStats> {
        self.inner.stats()
    }

    /// Per-operation timing aggregates (empty when timing is off).
    pub fn performance(&self) -> crate::timing::PerformanceSnapshot {
        match &self.inner.timing {
            Some(t) => {
                let tables: Vec<_> = crate::sink::lock(&self.inner.tables)
                    .iter()
                    .filter_map(std::sync::Weak::upgrade)
                    .collect();
                for table in tables {
                    t.fold(&table.drain_closed());
                }
                t.snapshot()
            }
            None => Default::default(),
        }
    }

    /// Error groups by fingerprint, recent errors, total.
    pub fn errors(&self) -> crate::errors::ErrorSnapshot {
        self.inner.tracker.snapshot()
    }

    /// Security event counts by type and recent events.
    pub fn security(&self) -> crate::errors::SecuritySnapshot {
        self.inner.security.snapshot()
    }

    /// Events that reached the layer, by level (before sampling, rate limits and suppression).
    ///
    /// ```
    /// # let _g = tracelight::builder().writer(tracelight::sink::MemoryWriter::new()).init_local().unwrap();
    /// tracing::warn!("careful");
    /// let h = tracelight::current_handle().unwrap();
    /// assert_eq!(h.events_by_level()[3], (tracing::Level::WARN, 1));
    /// ```
    pub fn events_by_level(&self) -> [(Level, u64); 5] {
        self.inner.levels.totals()
    }

    /// Lines dropped by sampling and held back by rate limits: `(sampled_out, rate_limited)`.
    pub fn sampling(&self) -> (u64, u64) {
        self.inner.sampler.as_ref().map_or((0, 0), |s| {
            (
                s.sampled_out.load(std::sync::atomic::Ordering::Relaxed),
                s.rate_limited.load(std::sync::atomic::Ordering::Relaxed),
            )
        })
    }

    /// Flushes every stream.
    pub fn flush(&self) {
        self.inner.flush();
    }
}

impl TracelightLayer {
    /// A handle on this layer's state.
    pub fn handle(&self) -> Handle {
        Handle {
            inner: Arc::clone(&self.inner),
        }
    }

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
        if !(state.fields.has(REQUEST_ID)
            || inner.context_fields.iter().any(|c| state.fields.has(c)))
        {
            return;
        }
        state.fields.render(inner.redactor.as_ref());
        let is_context = |k: &str| k == REQUEST_ID || inner.context_fields.iter().any(|c| c == k);
        let mut ctx = state.ctx.clone();
        let names: SmallVec<[&'static str; 4]> =
            state.fields.names().filter(|k| is_context(k)).collect();
        for key in names {
            let Some(value) = state.fields.get(key) else {
                continue;
            };
            let stored = Context::stored_key(key, &inner.static_keys);
            if ctx.as_deref().and_then(|c| c.get_json(&stored)) != Some(value) {
                ctx = Some(Arc::new(Context::with_taken(
                    ctx.as_deref(),
                    key,
                    value,
                    &inner.static_keys,
                )));
            }
        }
        state.ctx = ctx;
    }

    /// The key this layer's entries carry on the per-thread entered stack.
    #[inline]
    fn key(&self) -> usize {
        Arc::as_ptr(&self.spans) as usize
    }

    fn write_event<S>(
        &self,
        event: &Event<'_>,
        ctx: &LayerContext<'_, S>,
        plan: EventPlan<'_>,
        s: &mut Scratch,
    ) where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let inner = &*self.inner;
        let mask = plan.mask;
        let normalized = event.normalized_metadata();
        let is_log = normalized.is_some();
        let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());
        let ts = plan.ts.unwrap_or_else(Timestamp::now);
        if s.thread.is_empty() {
            let t = std::thread::current();
            match t.name() {
                Some(name) => crate::fields::write_str(&mut s.thread, name),
                None => crate::fields::write_str(&mut s.thread, &format!("{:?}", t.id())),
            }
        }
        let span = ctx.event_span(event);
        // The span's fields and context, copied out of the table so that no lock is held while
        // the event's own fields (user code) are rendered.
        let mut span_ctx: Option<Arc<Context>> = None;
        let found = span.as_ref().is_some_and(|sp| {
            self.spans
                .with(&sp.id(), |st| {
                    st.fields.render(inner.redactor.as_ref());
                    s.span_fields.clone_rendered(&st.fields);
                    span_ctx = st.ctx.clone();
                })
                .is_some()
        });
        let state = found.then_some(&s.span_fields);
        let context = span_ctx.as_deref();
        let redactor = inner.redactor.as_ref();
        let level = *meta.level();

        // DEBUG and TRACE are sampled by request: all of a request's lines, or none.
        if level > Level::INFO {
            if let Some(sampler) = &inner.sampler {
                if !sampler.keep_debug(context.and_then(|c| c.get_json(REQUEST_ID))) {
                    return;
                }
            }
        }

        let mut rendered = 0u8;
        for (i, st) in inner.streams.iter().enumerate() {
            if mask & (1 << i) != 0 {
                rendered |= 1 << st.rendering as u8;
            }
        }
        let is_error = level == Level::ERROR;
        let json_wanted = rendered & (1 << Rendering::Json as u8) != 0;
        let mut fingerprint = 0u64;

        if json_wanted || is_error {
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
            if plan.rate_limited > 0 {
                keys.add("rate_limited");
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
            if is_error {
                // Fingerprint: the callsite and the error type, never the message's variable parts.
                let error_type = error_type_of(&s.error);
                fingerprint = crate::errors::fingerprint_u64(
                    meta.target(),
                    meta.file(),
                    meta.line(),
                    error_type,
                );
                let decision = inner
                    .tracker
                    .record(fingerprint, meta.target(), error_type, || {
                        let mut quoted = Vec::with_capacity(s.message.len() + 2);
                        quoted.push(b'"');
                        quoted.extend_from_slice(&s.message);
                        quoted.push(b'"');
                        crate::context::json_to_string(&quoted)
                    });
                if decision == crate::errors::Decision::Suppress {
                    return;
                }
            }
        }
        if json_wanted {
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
            #[cfg(feature = "otel")]
            crate::otel::write_trace_ids(out, event);
            out.extend_from_slice(&s.fields);
            if plan.rate_limited > 0 {
                out.extend_from_slice(b"\"rate_limited\":");
                crate::fields::write_u64(out, plan.rate_limited);
                out.push(b',');
            }
            if let (Some(sp), Some(st)) = (span.as_ref(), state) {
                out.extend_from_slice(b"\"span\":");
                json::write_span_object(out, sp.name(), st.json_members());
                out.push(b',');
            }
            if inner.span_list {
                if let Some(scope) = ctx.event_scope(event) {
                    out.extend_from_slice(b"\"spans\":[");
                    for sp in scope.from_root() {
                        let written = self
                            .spans
                            .with(&sp.id(), |st| {
                                st.fields.render(redactor);
                                json::write_span_object(out, sp.name(), st.fields.json_members())
                            })
                            .is_some();
                        if !written {
                            json::write_span_object(out, sp.name(), b"");
                        }
                        out.push(b',');
                    }
                    if out.last() == Some(&b',') {
                        out.pop();
                    }
                    out.extend_from_slice(b"],");
                }
            }
            if is_error {
                out.extend_from_slice(b"\"error_fingerprint\":\"");
                write_hex16(out, fingerprint);
                out.extend_from_slice(b"\",");
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
            let head_end = out.len();
            out.extend_from_slice(&s.fields);
            if let Some(st) = state {
                for (k, v) in st.iter() {
                    text::write_key(out, k, ansi);
                    text::write_json_value(out, v);
                }
            }
            if let Some(c) = context {
                for (k, v) in c.iter() {
                    // The current span's own fields are already written.
                    if state.is_some_and(|st| st.names().any(|n| n == k)) {
                        continue;
                    }
                    text::write_key(out, k, ansi);
                    text::write_json_value(out, v);
                }
            }
            if plan.rate_limited > 0 {
                text::write_key(out, "rate_limited", ansi);
                crate::fields::write_u64(out, plan.rate_limited);
            }
            if is_error {
                text::write_key(out, "error_fingerprint", ansi);
                write_hex16(out, fingerprint);
            }
            if out.len() == head_end {
                // No fields: the line ends with the message, not with a dangling separator.
                text::trim_separator(out, ansi);
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
        if is_error || plan.security.is_some() {
            let line: &[u8] = if json_wanted {
                &s.json
            } else if rendered & (1 << Rendering::Text as u8) != 0 {
                &s.text
            } else {
                &s.text_ansi
            };
            if is_error {
                inner.tracker.written(fingerprint, line);
            }
            if let Some(event_type) = plan.security {
                inner.security.record(event_type, line);
            }
        }
    }
}

/// The `type` of a rendered error object's members (`"type":"PaymentError",…`).
fn error_type_of(members: &[u8]) -> Option<&str> {
    let rest = members.strip_prefix(b"\"type\":\"")?;
    let end = memchr::memchr(b'"', rest)?;
    std::str::from_utf8(&rest[..end]).ok()
}

fn write_hex16(out: &mut Vec<u8>, v: u64) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for i in (0..16).rev() {
        out.push(HEX[((v >> (i * 4)) & 0xf) as usize]);
    }
}

impl<S> Layer<S> for TracelightLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_layer(&mut self, _subscriber: &mut S) {
        // Span ids are unique only within one registry: a clone of this layer added to a second
        // subscriber keeps its spans in a table of its own.
        if !self.spans.attach() {
            let spans = self.inner.new_span_table();
            spans.attach();
            self.spans = spans;
        }
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: LayerContext<'_, S>) {
        let inner = &*self.inner;
        let parent = if attrs.is_contextual() {
            crate::spans::current(self.key())
        } else {
            attrs.parent().cloned()
        };
        // Rendered before the table is touched: `Debug` impls may log.
        let mut state = SpanState::boxed(attrs.metadata());
        state.fields.record(attrs, inner.redactor.as_ref());
        state.ctx = match parent {
            Some(p) => match self.spans.with(&p, |st| st.ctx.clone()) {
                Some(c) => c,
                // The parent is not one of ours (a per-layer filter left it out): the nearest
                // ancestor that is.
                None => ctx
                    .span(id)
                    .and_then(|s| s.parent())
                    .and_then(|a| self.spans.with(&a.id(), |st| st.ctx.clone()))
                    .flatten(),
            },
            None => None,
        };
        self.promote(&mut state);
        if inner.timing.is_some() {
            state.timing = Some(crate::timing::SpanTiming::new());
        }
        self.spans.insert(id, state);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _ctx: LayerContext<'_, S>) {
        let inner = &*self.inner;
        let merge = |rendered: &mut crate::fields::SpanFields| {
            rendered.clear();
            rendered.record(values, inner.redactor.as_ref());
            self.spans.with(id, |state| {
                state.fields.merge(rendered);
                self.promote(state);
            });
        };
        with_scratch(&RECORD_SCRATCH, merge);
    }

    fn on_event(&self, event: &Event<'_>, ctx: LayerContext<'_, S>) {
        let inner = &*self.inner;
        let meta = event.metadata();
        inner.levels.add(meta.level());
        if inner.tracker.has_due() {
            let now_ms = u64::try_from(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_millis(),
            )
            .unwrap_or(u64::MAX);
            if inner.tracker.maybe_due(now_ms) {
                inner.emit_due_summaries(false);
            }
        }
        // A `log` record's real target is in its fields; normalize only when needed.
        let normalized;
        let target = if meta.fields().field("log.target").is_some() {
            normalized = event.normalized_metadata();
            normalized.as_ref().map_or(meta.target(), |m| m.target())
        } else {
            meta.target()
        };
        let security_target = target.starts_with("tracelight::security");
        let mut tag = TagVisitor::new();
        if meta.fields().field("stream").is_some()
            || (security_target && meta.fields().field("event").is_some())
        {
            event.record(&mut tag);
        }
        let tag_str = tag.tag();
        let mut mask = 0u64;
        for (i, st) in inner.streams.iter().enumerate() {
            if st.rule.matches(meta.level(), target, tag_str, &st.name) {
                mask |= 1 << i;
            }
        }
        if mask == 0 {
            return;
        }
        let mut plan = EventPlan {
            mask,
            rate_limited: 0,
            security: (tag_str == Some("security") || security_target).then(|| tag.event()),
            ts: None,
        };
        if let Some(sampler) = &inner.sampler {
            if *meta.level() != Level::ERROR && sampler.config.rate_limit.is_some() {
                let ts = Timestamp::now();
                plan.ts = Some(ts);
                match sampler.limit(meta as *const _ as usize, ts.secs) {
                    crate::sample::Limit::Pass => {}
                    crate::sample::Limit::PassAfter(n) => plan.rate_limited = n,
                    crate::sample::Limit::Drop => return,
                }
            }
        }
        with_scratch(&SCRATCH, |s| self.write_event(event, &ctx, plan, s));
    }

    fn on_enter(&self, id: &Id, _ctx: LayerContext<'_, S>) {
        let now = if self.inner.timing.is_some() {
            crate::timing::ticks()
        } else {
            0
        };
        crate::spans::enter(self.key(), id, now);
    }

    fn on_exit(&self, id: &Id, _ctx: LayerContext<'_, S>) {
        let since = crate::spans::exit(self.key(), id);
        if let (Some(since), Some(_)) = (since, &self.inner.timing) {
            let now = crate::timing::ticks();
            self.spans.with(id, |st| {
                if let Some(t) = st.timing.as_mut() {
                    t.add_busy(since, now);
                }
            });
        }
    }

    fn on_close(&self, id: Id, _ctx: LayerContext<'_, S>) {
        let inner = &*self.inner;
        let Some(timing) = &inner.timing else {
            if let Some(state) = self.spans.remove(&id) {
                state.recycle();
            }
            return;
        };
        // The common case — a close that is not slow — only queues its duration, under the
        // table lock the removal takes anyway; the queue is folded into the aggregates in batches.
        let mut measured = None;
        let state = self.spans.remove_noting(
            &id,
            |st| {
                let (total, busy) = st.timing.take()?.close();
                if timing.queues(st.meta.name(), total) {
                    return Some(crate::spans::Closed {
                        meta: st.meta,
                        total_ns: total,
                    });
                }
                measured = Some((total, busy));
                None
            },
            |batch| timing.fold(batch),
        );
        let Some(mut state) = state else {
            return;
        };
        let Some((total, busy)) = measured else {
            state.recycle();
            return;
        };
        let redactor = inner.redactor.as_ref();
        let (key, operation): (_, std::borrow::Cow<'static, str>) = match state.meta.name() {
            "timed" => {
                state.fields.render(redactor);
                let op = state
                    .fields
                    .get("operation")
                    .map_or_else(|| "timed".to_owned(), crate::context::json_to_string);
                (crate::timing::OpKey::named(&op), op.into())
            }
            name => (crate::timing::OpKey::callsite(state.meta), name.into()),
        };
        let (slow, threshold) = timing.record(key, &operation, total, busy, || {
            state.fields.render(redactor);
            let request_id = state.ctx.as_ref().and_then(|c| c.request_id());
            let mut fields = Vec::with_capacity(state.fields.json_members().len() + 2);
            fields.push(b'{');
            fields.extend_from_slice(state.fields.json_members());
            fields.push(b'}');
            (request_id, String::from_utf8_lossy(&fields).into_owned())
        });
        if !(slow || timing.config.every_close) {
            state.recycle();
            return;
        }
        // Back in the table while the line is written, so it carries the span's fields and
        // context; out again after.
        self.spans.insert(&id, state);
        let ms = |ns: u64| ns as f64 / 1e6;
        let idle = total - busy;
        // Written inside the closing span, so the line carries its fields and context. The level
        // must be a constant at each callsite, hence one callsite per level.
        macro_rules! span_closed {
            ($level:ident) => {
                tracing::$level!(
                    target: "tracelight::timing",
                    parent: id.clone(),
                    stream = "performance",
                    operation = operation.as_ref(),
                    duration_ms = ms(total),
                    busy_ms = ms(busy),
                    idle_ms = ms(idle),
                    threshold_ms = ms(threshold),
                    slow,
                    "span_closed"
                )
            };
        }
        if slow {
            span_closed!(warn);
        } else {
            span_closed!(info);
        }
        if let Some(state) = self.spans.remove(&id) {
            state.recycle();
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
    synthetic_line(
        rendering,
        statics,
        Level::WARN,
        "tracelight::sink",
        &format!("dropped {dropped} lines: the queue was full"),
        &[
            ("stream", SynthValue::Str(stream)),
            ("dropped", SynthValue::U64(dropped)),
        ],
    )
}

/// A line of tracelight's own, in a stream's rendering.
pub(crate) fn synthetic_line(
    rendering: Rendering,
    statics: &[u8],
    level: Level,
    target: &str,
    message: &str,
    fields: &[(&str, SynthValue<'_>)],
) -> Vec<u8> {
    let mut msg = Vec::new();
    crate::fields::escape_into(&mut msg, message);
    let mut thread = Vec::new();
    let t = std::thread::current();
    crate::fields::write_str(&mut thread, t.name().unwrap_or("tracelight"));
    let ev = EventLine {
        ts: Timestamp::now(),
        level: &level,
        target,
        file: None,
        line: None,
        message: &msg,
        thread: &thread,
    };
    let mut out = Vec::new();
    match rendering {
        Rendering::Json => {
            json::write_head(&mut out, &ev, statics);
            for (k, v) in fields {
                crate::fields::write_key(&mut out, k);
                match v {
                    SynthValue::U64(n) => crate::fields::write_u64(&mut out, *n),
                    SynthValue::Str(s) => crate::fields::write_str(&mut out, s),
                }
                out.push(b',');
            }
            json::close_line(&mut out);
        }
        Rendering::Text | Rendering::TextAnsi => {
            let ansi = rendering == Rendering::TextAnsi;
            text::write_head(&mut out, &ev, None, ansi);
            for (k, v) in fields {
                text::write_key(&mut out, k, ansi);
                match v {
                    SynthValue::U64(n) => crate::fields::write_u64(&mut out, *n),
                    SynthValue::Str(s) => {
                        let mut j = Vec::new();
                        crate::fields::write_str(&mut j, s);
                        text::write_json_value(&mut out, &j);
                    }
                }
            }
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
