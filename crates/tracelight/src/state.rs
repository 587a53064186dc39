//! The state a tracelight layer shares with its guard and its handles, and the one way to find it
//! from anywhere.
//!
//! [`Shared`] holds the stream table, the writer queue, the static fields and the parts chosen in
//! the builder (redactor, error tracker, security counts, sampler, timing). A layer, its
//! [`Guard`](crate::Guard) and every [`Handle`] point at the same `Shared`.
//!
//! [`find`] is how code that has no layer at hand (`bind`, `flush()`, `stats()`,
//! `current_handle()`, the admin router, the panic hook) reaches that state from the current
//! dispatcher. The layer answers a downcast to [`StateRef`] (as tracing-opentelemetry's layer
//! answers one to `WithContext`); behind a wrapper that hides the layer's type (`reload::Layer`
//! answers no downcast), the registry below finds it: each layer records, when its subscriber
//! becomes a dispatcher, how to recognise that subscriber.

use std::sync::{Arc, Mutex, Weak};

use tracing_core::{Dispatch, Level};

use crate::fields::write_key;
use crate::json::{self, EventLine};
use crate::redact::Redactor;
use crate::sink::{LineWriter, Queue, StreamStats};
use crate::spans::SpanTable;
use crate::stream::Rule;
use crate::text;
use crate::time::Timestamp;
use crate::util::lock;

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
pub(crate) struct Shared {
    /// Unique in the process (an address may be reused once a state is dropped).
    pub(crate) serial: usize,
    pub(crate) streams: Vec<StreamRt>,
    /// The schema preset of JSON lines and their static members.
    pub(crate) json: crate::json::JsonSchema,
    /// The keys every line holds besides the reserved ones: the schema preset's own keys
    /// first, then the static fields' (as written).
    pub(crate) static_keys: Vec<String>,
    /// The schema preset's own keys, for the per-event key check.
    pub(crate) preset_keys: crate::fields::PresetKeys,
    pub(crate) redactor: Option<Redactor>,
    pub(crate) span_list: bool,
    pub(crate) context_fields: Vec<String>,
    pub(crate) queue: Option<Queue>,
    pub(crate) timing: Option<crate::timing::Timing>,
    pub(crate) tracker: crate::errors::Tracker,
    pub(crate) security: crate::errors::SecurityTracker,
    pub(crate) sampler: Option<crate::sample::Sampler>,
    /// The flight recorder, when on.
    pub(crate) recorder: Option<crate::recorder::Recorder>,
    /// Whether lines also go to the test they belong to ([`crate::testing`]).
    #[cfg(feature = "testing")]
    pub(crate) testing: bool,
    /// The service name the lines carry (also in the exported resource and the metrics).
    pub(crate) service: String,
    /// The filter in front of the layer (when installed), and its handle.
    pub(crate) filter: crate::filter::LogFilter,
    /// The streams that select events by target or tag, one bit per stream.
    pub(crate) selective: u64,
    /// Events seen by level, in shards so threads do not fight over one cache line.
    pub(crate) levels: LevelCounts,
    /// Whether the line that sums up what was lost has been written (it is written once).
    pub(crate) losses_reported: std::sync::atomic::AtomicBool,
    /// When this state was built: where its totals (the metrics' cumulative series) start.
    #[cfg_attr(
        not(any(feature = "otel-http", feature = "otel-grpc")),
        allow(dead_code)
    )]
    pub(crate) started: std::time::SystemTime,
    /// The OpenTelemetry log export this layer builds its records for, from its own capture of
    /// each event (see `otel::logs`): set when the layer finds a pipeline's layer below it.
    #[cfg(feature = "otel-core")]
    pub(crate) log_export: std::sync::OnceLock<Arc<crate::otel::LogExport>>,
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

use crate::json::level_index;

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

/// A state that built an OpenTelemetry pipeline's log records gives them back to the stock
/// bridge when it goes, so that records go on.
#[cfg(feature = "otel-core")]
impl Drop for Shared {
    fn drop(&mut self) {
        crate::otel::release_logs(self);
    }
}

impl Shared {
    /// Counts an event by level, and writes the summaries of suppression windows that closed.
    #[inline]
    pub(crate) fn count_event(&self, level: &Level) {
        self.levels.add(level);
        if self.tracker.has_due() && self.tracker.maybe_due(crate::util::unix_millis()) {
            self.emit_due_summaries(false);
        }
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
        self.emit_synthetic_at(level, target, None, message, fields);
    }

    /// [`Shared::emit_synthetic`] with the source location the line reports on.
    pub(crate) fn emit_synthetic_at(
        &self,
        level: Level,
        target: &str,
        location: Option<(&str, u32)>,
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
                    &self.json,
                    (level, target, location),
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
            let exiting = crate::exit::exiting();
            for (q, r) in items {
                let item = [(q, lines[r].as_deref().unwrap_or_default())];
                if exiting {
                    queue.try_push_many(&item);
                } else {
                    queue.push_many(&item);
                }
            }
        }
    }

    /// Writes the summaries of suppression windows that closed (all of them with `all`).
    pub(crate) fn emit_due_summaries(&self, all: bool) {
        for s in self.tracker.take_due(all) {
            let fp = format!("{:016x}", s.fingerprint);
            let msg = format!("suppressed {} repeats of an error: {}", s.count, s.message);
            // The line points at the error's callsite.
            let location = s.file.as_deref().zip(s.line);
            self.emit_synthetic_at(
                Level::WARN,
                "tracelight::errors",
                location,
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

    /// Writes, once, a line saying how many lines each stream lost and why, if any was lost:
    /// dropped from a full queue (lossy mode) or not written after write errors.
    pub(crate) fn report_losses(&self) {
        let stats = self.stats();
        let parts: Vec<String> = stats
            .iter()
            .filter(|s| s.dropped > 0 || s.lost > 0)
            .map(|s| {
                let mut why = Vec::new();
                if s.dropped > s.stalled {
                    why.push(format!("{} dropped (queue full)", s.dropped - s.stalled));
                }
                if s.stalled > 0 {
                    why.push(format!("{} dropped (destination stalled)", s.stalled));
                }
                if s.lost > 0 {
                    why.push(format!("{} not written (write errors)", s.lost));
                }
                format!("{}: {}", s.name, why.join(", "))
            })
            .collect();
        if parts.is_empty()
            || self
                .losses_reported
                .swap(true, std::sync::atomic::Ordering::AcqRel)
        {
            return;
        }
        let dropped: u64 = stats.iter().map(|s| s.dropped).sum();
        let lost: u64 = stats.iter().map(|s| s.lost).sum();
        let msg = format!("lines were lost during this run: {}", parts.join("; "));
        self.emit_synthetic(
            Level::WARN,
            "tracelight::sink",
            &msg,
            &[
                ("dropped", SynthValue::U64(dropped)),
                ("lost", SynthValue::U64(lost)),
            ],
        );
    }

    /// What the process does on its way out without the guard (`std::process::exit`): the
    /// summaries still open, the loss report, then the lines queued so far, waiting at most
    /// the block timeout (`bound` for writers without a queue) for a writer that makes no
    /// progress. Rotated files are left for the next start to archive.
    pub(crate) fn flush_at_exit(&self, bound: std::time::Duration) {
        // The lines already queued first (the fatal one among them); then, only if the writer
        // keeps up, the summaries, which do not wait for room (see `exit::exiting`).
        if self.flush_bounded() {
            self.emit_due_summaries(true);
            self.report_losses();
            self.flush_bounded();
        }
        crate::util::said(bound);
    }

    /// Flushes what is queued, waiting for a writer that makes no progress at most the block
    /// timeout the queue was built with (the exit and the panic hook: neither may hang on a
    /// stalled output). Returns whether everything queued before the call was written.
    pub(crate) fn flush_bounded(&self) -> bool {
        let written = self
            .queue
            .as_ref()
            .is_none_or(|q| q.flush_bounded(q.block_timeout()));
        for s in &self.streams {
            if let StreamSink::Writer(w) = &s.sink {
                w.flush();
            }
        }
        written
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

/// What a layer answers to a downcast for it: the state it shares and the span table of the
/// subscriber it is part of.
#[derive(Clone)]
pub(crate) struct StateRef {
    pub(crate) shared: Arc<Shared>,
    pub(crate) spans: Arc<SpanTable>,
}

impl StateRef {
    /// The states of the tracelight layers that read this span table, this one's first (one
    /// subscriber's stacked parts, see [`read_span_table`]).
    pub(crate) fn readers(&self) -> Vec<Arc<Shared>> {
        let mut out = vec![Arc::clone(&self.shared)];
        for e in lock(&REGISTRY).iter() {
            if !std::ptr::eq(e.spans.as_ptr(), Arc::as_ptr(&self.spans)) {
                continue;
            }
            if let Some(s) = e.shared.upgrade() {
                if !out.iter().any(|o| Arc::ptr_eq(o, &s)) {
                    out.push(s);
                }
            }
        }
        out
    }

    /// The state that answers for the subscriber (its handle, errors, security, admin): this
    /// one if it writes lines, else the first of the layers reading the same table that does
    /// (a `CorrelationLayer` or `TimingLayer` on top of a stack writes none, and counts no
    /// error).
    pub(crate) fn principal(&self) -> Arc<Shared> {
        if !self.shared.streams.is_empty() {
            return Arc::clone(&self.shared);
        }
        let readers = self.readers();
        readers
            .iter()
            .find(|s| !s.streams.is_empty())
            .unwrap_or(&readers[0])
            .clone()
    }
}

/// Recognises a subscriber in a dispatcher: the address at which `downcast_ref` finds it, and
/// its type (a subscriber and the one it wraps may share an address).
#[derive(Clone, Copy)]
pub(crate) struct Probe {
    find: fn(&Dispatch) -> Option<usize>,
    ty: std::any::TypeId,
}

/// The probe for a subscriber of type `S`.
pub(crate) fn probe<S: tracing_core::Subscriber>() -> Probe {
    fn find<S: tracing_core::Subscriber>(d: &Dispatch) -> Option<usize> {
        d.downcast_ref::<S>().map(|s| s as *const S as usize)
    }
    Probe {
        find: find::<S>,
        ty: std::any::TypeId::of::<S>(),
    }
}

struct Entry {
    shared: Weak<Shared>,
    spans: Weak<SpanTable>,
    /// The subscriber whose spans the table holds, once it is part of a dispatcher: how to
    /// recognise it, its address, and the dispatcher (held weakly: an entry whose dispatcher is
    /// gone matches nothing, whatever reuses its address).
    subscriber: Option<(Probe, usize, tracing_core::dispatcher::WeakDispatch)>,
    /// The OpenTelemetry log export the layer builds the records of: what a layer that
    /// `reload::Layer` swaps in for it takes over, even once this state is gone.
    #[cfg(feature = "otel-core")]
    log_export: Option<Arc<crate::otel::LogExport>>,
}

/// Notes that the layer of `shared` builds the records of `export`.
#[cfg(feature = "otel-core")]
pub(crate) fn note_log_export(shared: &Shared, export: &Arc<crate::otel::LogExport>) {
    for e in lock(&REGISTRY).iter_mut() {
        if std::ptr::eq(e.shared.as_ptr(), shared) {
            e.log_export = Some(Arc::clone(export));
        }
    }
}

/// Every live span table with its layer's state: the one registry of span tables.
static REGISTRY: Mutex<Vec<Entry>> = Mutex::new(Vec::new());

/// A new span table for a layer with state `shared`, registered.
pub(crate) fn new_span_table(shared: &Arc<Shared>) -> Arc<SpanTable> {
    let spans = Arc::new(SpanTable::default());
    spans.time_for(shared);
    let mut all = lock(&REGISTRY);
    // An entry whose table is gone is kept while its dispatcher lives: a layer that
    // `reload::Layer` swapped in takes its place on its first callback.
    all.retain(|e| {
        e.spans.strong_count() > 0
            || e.subscriber
                .as_ref()
                .is_some_and(|(_, _, d)| d.upgrade().is_some())
    });
    all.push(Entry {
        #[cfg(feature = "otel-core")]
        log_export: None,
        shared: Arc::downgrade(shared),
        spans: Arc::downgrade(&spans),
        subscriber: None,
    });
    spans
}

/// Registers `shared` as reading the table `spans`, which a tracelight layer below it keeps (see
/// [`TracelightLayer::follow`](crate::TracelightLayer)): so that `flush`, the exit and the
/// snapshots find `shared` through it.
pub(crate) fn read_span_table(shared: &Arc<Shared>, spans: &Arc<SpanTable>) {
    let mut all = lock(&REGISTRY);
    let subscriber = all
        .iter()
        .find(|e| std::ptr::eq(e.spans.as_ptr(), Arc::as_ptr(spans)))
        .and_then(|e| e.subscriber.clone());
    all.push(Entry {
        #[cfg(feature = "otel-core")]
        log_export: None,
        shared: Arc::downgrade(shared),
        spans: Arc::downgrade(spans),
        subscriber,
    });
}

/// Records which subscriber the table `spans` belongs to: called when the subscriber becomes a
/// dispatcher, and by a layer that `reload::Layer` swapped in (which is told of no dispatcher) on
/// its first callback. Another table recorded for the same subscriber (the layer swapped out) is
/// forgotten.
pub(crate) fn attach_dispatch(spans: &Arc<SpanTable>, probe: Probe, dispatch: &Dispatch) {
    let Some(addr) = (probe.find)(dispatch) else {
        return;
    };
    let mut all = lock(&REGISTRY);
    for e in all.iter_mut() {
        if std::ptr::eq(e.spans.as_ptr(), Arc::as_ptr(spans)) {
            e.subscriber = Some((probe, addr, dispatch.downgrade()));
        } else if e
            .subscriber
            .as_ref()
            .is_some_and(|(p, a, _)| *a == addr && p.ty == probe.ty)
        {
            e.subscriber = None;
        }
    }
    spans.mark_attached_to_dispatch();
}

/// For a layer that `reload::Layer` swapped in, which is told of no dispatcher (and cannot ask
/// for one from inside a callback): it takes over the subscriber of the layer it replaced, whose
/// table is gone while its dispatcher lives on. Called once per table, on its first callback.
pub(crate) fn adopt_dispatch(spans: &Arc<SpanTable>, probe: Probe) {
    let mut all = lock(&REGISTRY);
    let own = all
        .iter()
        .position(|e| std::ptr::eq(e.spans.as_ptr(), Arc::as_ptr(spans)));
    if let Some(own) = own {
        if all[own].subscriber.is_none() {
            let orphan = all.iter().position(|e| {
                e.spans.strong_count() == 0
                    && e.subscriber
                        .as_ref()
                        .is_some_and(|(p, _, d)| p.ty == probe.ty && d.upgrade().is_some())
            });
            if let Some(orphan) = orphan {
                // The log records the replaced layer built, this one builds now.
                #[cfg(feature = "otel-core")]
                if let (Some(new), Some(export)) =
                    (all[own].shared.upgrade(), all[orphan].log_export.take())
                {
                    crate::otel::take_over_logs(&new, &export);
                    all[own].log_export = Some(export);
                }
                all[own].subscriber = all[orphan].subscriber.take();
            }
        }
    }
    spans.mark_attached_to_dispatch();
}

/// The live span table that holds span `id`, for a lookup that found no state by its dispatcher.
pub(crate) fn table_holding(id: &tracing_core::span::Id) -> Option<Arc<SpanTable>> {
    let tables: Vec<Arc<SpanTable>> = lock(&REGISTRY)
        .iter()
        .filter_map(|e| e.spans.upgrade())
        .collect();
    tables.into_iter().find(|t| t.with(id, |_| ()).is_some())
}

/// The tracelight state in dispatcher `d`, if it has a tracelight layer.
pub(crate) fn find(d: &Dispatch) -> Option<StateRef> {
    if let Some(r) = d.downcast_ref::<StateRef>() {
        return Some(r.clone());
    }
    // Behind a wrapper that answers no downcast: the table whose subscriber this is. The probes
    // (downcasts into other layers) run with the registry unlocked.
    let candidates: Vec<_> = lock(&REGISTRY)
        .iter()
        .filter_map(|e| {
            let (probe, addr, dispatch) = e.subscriber.clone()?;
            Some((probe, addr, dispatch, e.shared.clone(), e.spans.clone()))
        })
        .collect();
    candidates
        .into_iter()
        .find_map(|(probe, addr, dispatch, shared, spans)| {
            dispatch.upgrade()?;
            if (probe.find)(d) != Some(addr) {
                return None;
            }
            Some(StateRef {
                shared: shared.upgrade()?,
                spans: spans.upgrade()?,
            })
        })
}

/// The tracelight state of the current dispatcher.
pub(crate) fn current() -> Option<StateRef> {
    tracing::dispatcher::get_default(find)
}

/// The state of every live layer, each once.
pub(crate) fn all_shared() -> Vec<Arc<Shared>> {
    let mut out: Vec<Arc<Shared>> = Vec::new();
    for e in lock(&REGISTRY).iter() {
        if let Some(s) = e.shared.upgrade() {
            if !out.iter().any(|o| Arc::ptr_eq(o, &s)) {
                out.push(s);
            }
        }
    }
    out
}

/// The live span tables of the layers (clones included) that share `shared`.
pub(crate) fn tables_of(shared: &Arc<Shared>) -> Vec<Arc<SpanTable>> {
    lock(&REGISTRY)
        .iter()
        .filter(|e| std::ptr::eq(e.shared.as_ptr(), Arc::as_ptr(shared)))
        .filter_map(|e| e.spans.upgrade())
        .collect()
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
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle").finish_non_exhaustive()
    }
}

impl Handle {
    /// The filter in front of the layer: [`LogFilter::set`](crate::LogFilter::set) changes the
    /// level live.
    ///
    /// ```
    /// let guard = tracelight::builder().writer(tracelight::sink::MemoryWriter::new()).init_local().unwrap();
    /// guard.handle().filter().set("debug").unwrap();
    /// ```
    pub fn filter(&self) -> crate::LogFilter {
        self.shared.filter.clone()
    }

    /// Changes what every stream and layer of this subscriber takes, at once, without a
    /// restart: [`LogFilter::set`](crate::LogFilter::set). The directives (`EnvFilter` syntax) are
    /// checked first; on error nothing changes and the error says what is wrong.
    ///
    /// ```
    /// let guard = tracelight::builder().writer(tracelight::sink::MemoryWriter::new()).init_local().unwrap();
    /// let handle = guard.handle();
    /// handle.set_filter("info,my_crate=debug").unwrap();
    /// assert!(handle.set_filter("info,my_crate=loud").is_err());
    /// handle.reset_filter();
    /// assert_eq!(handle.filter().directives(), "info");
    /// ```
    pub fn set_filter(&self, directives: &str) -> Result<(), crate::Error> {
        self.shared.filter.set(directives)
    }

    /// [`set_filter`](Self::set_filter) for a time (debug for ten minutes), after which the
    /// directives set before come back: [`LogFilter::set_for`](crate::LogFilter::set_for).
    pub fn set_filter_for(
        &self,
        directives: &str,
        duration: std::time::Duration,
    ) -> Result<(), crate::Error> {
        self.shared.filter.set_for(directives, duration)
    }

    /// Goes back to the directives the subscriber started with.
    pub fn reset_filter(&self) {
        self.shared.filter.reset();
    }

    /// The service name the lines carry: `SERVICE_NAME`, else `OTEL_SERVICE_NAME`, else
    /// [`Builder::service`](crate::Builder::service), else the binary's name.
    pub fn service(&self) -> &str {
        &self.shared.service
    }

    /// Per-stream statistics.
    pub fn stats(&self) -> Vec<StreamStats> {
        self.shared.stats()
    }

    /// Per-operation timing aggregates (empty when timing is off).
    pub fn performance(&self) -> crate::timing::PerformanceSnapshot {
        // This state's timing; without one, the timing its spans are measured for (a
        // `TimingLayer` stacked with this layer).
        let owner = match &self.shared.timing {
            Some(_) => Some(Arc::clone(&self.shared)),
            None => tables_of(&self.shared)
                .iter()
                .find_map(|t| t.timing_owner()),
        };
        let Some(owner) = owner else {
            return Default::default();
        };
        let Some(t) = &owner.timing else {
            return Default::default();
        };
        // Only the tables whose spans are measured for this timing (a table read by layers of
        // several states is measured for one of them).
        for table in tables_of(&owner) {
            if table.timed_for(&owner) {
                t.fold(&table.drain_closed());
            }
        }
        t.snapshot()
    }

    /// Error groups by fingerprint, recent errors, total.
    pub fn errors(&self) -> crate::errors::ErrorSnapshot {
        self.shared.tracker.snapshot()
    }

    /// Security event counts by type and recent events.
    pub fn security(&self) -> crate::errors::SecuritySnapshot {
        self.shared.security.snapshot()
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
        self.shared.levels.totals()
    }

    /// Lines dropped by sampling and held back by rate limits: `(sampled_out, rate_limited)`.
    pub fn sampling(&self) -> (u64, u64) {
        self.shared.sampler.as_ref().map_or((0, 0), |s| {
            (
                s.sampled_out.load(std::sync::atomic::Ordering::Relaxed),
                s.rate_limited.load(std::sync::atomic::Ordering::Relaxed),
            )
        })
    }

    /// What the flight recorder kept, replayed and dropped (`None` when it is off).
    ///
    /// ```
    /// let _g = tracelight::builder()
    ///     .flight_recorder(tracelight::FlightRecorder::new())
    ///     .writer(tracelight::sink::MemoryWriter::new())
    ///     .init_local()
    ///     .unwrap();
    /// let h = tracelight::current_handle().unwrap();
    /// assert_eq!(h.flight_recorder().unwrap().recorded, 0);
    /// ```
    pub fn flight_recorder(&self) -> Option<crate::recorder::RecorderStats> {
        self.shared
            .recorder
            .as_ref()
            .map(crate::recorder::Recorder::stats)
    }

    /// Flushes every stream.
    pub fn flush(&self) {
        self.shared.flush();
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
    statics: &crate::json::JsonSchema,
    stream: &str,
    count: u64,
    why: crate::sink::Loss,
) -> Vec<u8> {
    use crate::sink::Loss;
    let (message, key, reason) = match why {
        Loss::QueueFull => (
            format!("dropped {count} lines: the queue was full"),
            "dropped",
            "queue_full",
        ),
        Loss::Stalled(t) => (
            format!("dropped {count} lines: the destination made no progress for {t:?}"),
            "dropped",
            "stalled",
        ),
        Loss::WriteFailed => (
            format!("lost {count} lines: the destination could not be written"),
            "lost",
            "write_failed",
        ),
    };
    synthetic_line(
        rendering,
        statics,
        (Level::WARN, "tracelight::sink", None),
        &message,
        &[
            ("stream", SynthValue::Str(stream)),
            (key, SynthValue::U64(count)),
            ("reason", SynthValue::Str(reason)),
        ],
    )
}

/// A line of tracelight's own, in a stream's rendering.
pub(crate) fn synthetic_line(
    rendering: Rendering,
    statics: &crate::json::JsonSchema,
    (level, target, location): (Level, &str, Option<(&str, u32)>),
    message: &str,
    fields: &[(&str, SynthValue<'_>)],
) -> Vec<u8> {
    let mut msg = Vec::new();
    crate::fields::escape_into(&mut msg, message);
    let mut thread = Vec::new();
    if crate::exit::exiting() {
        // Thread-local data may be gone at exit: no `thread::current()`.
        crate::fields::write_str(&mut thread, "exit");
    } else {
        let t = std::thread::current();
        crate::fields::write_str(&mut thread, t.name().unwrap_or("tracelight"));
    }
    let ev = EventLine {
        ts: Timestamp::now(),
        level: &level,
        target,
        file: location.map(|(f, _)| f),
        line: location.map(|(_, l)| l),
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
