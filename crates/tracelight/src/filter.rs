//! Filtering inside tracelight: see [`LogFilter`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use tracing_core::subscriber::Interest;
use tracing_core::{span, Level, LevelFilter, Metadata, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::{EnvFilter, Layer};

use crate::error::Error;

thread_local! {
    /// The callsite of the event the filter last let through only for the flight recorder (its
    /// metadata's address), read by the layer's event path: the filter is the last asked before
    /// an event is dispatched.
    static RECORDER_ONLY: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Whether `meta` is a `log` crate record seen through `tracing-log` (its fields name the record's
/// target and module). The flight recorder does not keep those: `tracing-log` asks about a record
/// with metadata of its own and dispatches it with the bridge's, so the filter's mark would not
/// be found, and what the filter leaves out of the `log` crate stays out.
#[inline]
fn is_log_record(meta: &Metadata<'_>) -> bool {
    let f = meta.fields();
    f.field("log.target").is_some() && f.field("log.module_path").is_some()
}

/// Whether the filter let `meta`'s event through only for the flight recorder (and forgets it).
#[inline]
pub(crate) fn take_recorder_only(meta: &Metadata<'_>) -> bool {
    let addr = meta as *const Metadata<'_> as usize;
    RECORDER_ONLY
        .try_with(|c| c.get() == addr && c.replace(0) == addr)
        .unwrap_or(false)
}

/// Filtering inside tracelight: the user's `EnvFilter` decides what is written, but never hides
/// the spans that carry correlation, nor the events of a stream that selects its own targets.
///
/// An `EnvFilter` in front of every layer disables a span for all of them: at `warn`, the INFO
/// request span never reaches tracelight, so the ERROR line inside the request has no
/// `request_id`, and every access line is gone. [`LogFilter`] wraps the filter and enables, on top
/// of what it enables:
///
/// - **correlation spans**: spans of target `tracelight::http` (the request span) and spans with a
///   `request_id` field or a configured context field, at any level. They are never written as
///   lines; they carry the context to the lines that are;
/// - **the events of targeted streams**: a stream whose rule selects targets (by default
///   `access` ← `tracelight::access`, `security` ← `tracelight::security`, `performance` ←
///   `tracelight::timing`) takes those events at its own level (`LOG_STREAM_<NAME>_LEVEL`); the
///   streams that take everything (`app`, a console) still get them only when the user's filter
///   enables them. A directive that names such a target (`tracelight=off`,
///   `tracelight::access=warn`) gives the decision back to the user's filter.
///
/// A filter of `off` turns everything off. Callsites nothing needs still cost only tracing's
/// per-callsite interest cache (the filter's level hint is TRACE, so each callsite is asked once).
///
/// Cloning gives another handle on the same filter, and [`set`](LogFilter::set) changes it live.
///
/// [`init`](crate::init) installs it; with [`Builder::build`](crate::Builder::build), put it in
/// front of the layers yourself:
///
/// ```
/// use tracing_subscriber::prelude::*;
/// let (layer, guard) = tracelight::builder()
///     .filter("warn")
///     .writer(tracelight::sink::MemoryWriter::new())
///     .build()
///     .unwrap();
/// let filter = layer.filter();
/// let subscriber = tracing_subscriber::registry().with(filter.clone()).with(layer);
/// tracing::subscriber::with_default(subscriber, || {
///     tracing::info!("not written at warn");
///     filter.set("info").unwrap();
///     tracing::info!("written");
/// });
/// assert_eq!(filter.directives(), "info");
/// # drop(guard);
/// ```
#[derive(Clone)]
pub struct LogFilter {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for LogFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogFilter")
            .field("directives", &self.directives())
            .finish()
    }
}

struct Inner {
    current: RwLock<Current>,
    /// Field names that make a span a correlation span.
    correlation: Vec<String>,
    /// The targets of streams that select their own, with the levels those streams take.
    owned: Vec<Owned>,
    /// Whether the filter is part of a subscriber (only then do streams rely on it).
    installed: AtomicBool,
    /// Whether the filter has span directives (`[span{field}]=level`): only then does it need the
    /// span callbacks (read without the lock, so a span's enter costs one load).
    dynamic: AtomicBool,
    /// Whether `init` routed the `log` crate's records through this filter.
    log_bridge: AtomicBool,
    /// The directives the filter was built with ([`LogFilter::reset`] goes back to them).
    initial: String,
    /// With the flight recorder on, its most verbose level: the events the directives leave out
    /// down to it are let through, to be kept (see [`crate::recorder`]).
    recorder: Option<Level>,
    /// The span names the flight recorder takes as units of work: enabled at any level, as
    /// correlation spans are (a `debug_span!("job")` is a unit at `info` too).
    units: Vec<String>,
    /// When the directives in force were set, and whether they revert.
    changes: std::sync::Mutex<Changes>,
}

struct Changes {
    since: std::time::SystemTime,
    reverts: Option<(std::time::SystemTime, String)>,
    /// Counts changes, so that a revert that is due does not undo a later change.
    generation: u64,
}

/// The directives in force, since when, and what they revert to.
///
/// ```
/// let (layer, _guard) = tracelight::builder().writer(tracelight::sink::MemoryWriter::new()).build().unwrap();
/// let state = layer.filter().state();
/// assert_eq!(state.directives, "info");
/// assert!(state.reverts_at.is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FilterState {
    /// The directives in force.
    pub directives: String,
    /// The directives the filter started with.
    pub initial: String,
    /// When the directives in force were set.
    pub since: std::time::SystemTime,
    /// When they revert, if they were set for a time ([`LogFilter::set_for`]).
    pub reverts_at: Option<std::time::SystemTime>,
    /// What they revert to then.
    pub reverts_to: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct Owned {
    pub(crate) prefix: String,
    /// Least severe level taken (`None`: all).
    pub(crate) min: Option<Level>,
    pub(crate) max: Option<Level>,
}

struct Current {
    directives: String,
    filter: EnvFilter,
    dynamic: bool,
    /// The filter is `off` and nothing at all is enabled.
    off: bool,
    /// For each of `owned`, whether a directive names the target (the user's filter decides).
    named: Vec<bool>,
}

/// Parses `directives` as tracelight does at start: `EnvFilter` syntax, and a bare directive that
/// is a mistyped level (`inf`) refused.
pub(crate) fn parse(directives: &str) -> Result<EnvFilter, Error> {
    crate::env::check_directives(directives).map_err(|reason| Error::InvalidFilter {
        filter: directives.to_owned(),
        reason,
    })?;
    EnvFilter::builder()
        .parse(directives)
        .map_err(|e| Error::InvalidFilter {
            filter: directives.to_owned(),
            reason: e.to_string(),
        })
}

impl LogFilter {
    /// A filter of `directives` (`EnvFilter` syntax) that keeps spans with a `request_id` field
    /// (or one of `context_fields`) and the request span, and gives `owned` targets their
    /// streams' levels.
    pub(crate) fn new(
        directives: &str,
        context_fields: &[String],
        owned: Vec<Owned>,
        recorder: Option<(Level, Vec<String>)>,
    ) -> Result<LogFilter, Error> {
        let (recorder, units) = match recorder {
            Some((level, units)) => (Some(level), units),
            None => (None, Vec::new()),
        };
        let mut correlation = vec![crate::context::REQUEST_ID.to_owned()];
        correlation.extend(context_fields.iter().cloned());
        let current = Current::new(directives, &owned)?;
        Ok(LogFilter {
            inner: Arc::new(Inner {
                dynamic: AtomicBool::new(current.dynamic),
                current: RwLock::new(current),
                correlation,
                owned,
                installed: AtomicBool::new(false),
                log_bridge: AtomicBool::new(false),
                initial: directives.to_owned(),
                recorder,
                units,
                changes: std::sync::Mutex::new(Changes {
                    since: std::time::SystemTime::now(),
                    reverts: None,
                    generation: 0,
                }),
            }),
        })
    }

    /// Replaces the directives, live: every callsite is asked again. The new directives are
    /// checked as at start; on error the filter is left as it was.
    ///
    /// ```
    /// let (layer, _guard) = tracelight::builder().writer(tracelight::sink::MemoryWriter::new()).build().unwrap();
    /// let filter = layer.filter();
    /// assert!(filter.set("inf").is_err()); // a mistyped level
    /// filter.set("warn,my_crate=debug").unwrap();
    /// assert_eq!(filter.directives(), "warn,my_crate=debug");
    /// ```
    pub fn set(&self, directives: &str) -> Result<(), Error> {
        self.change(directives, None).map(|_| ())
    }

    /// [`set`](Self::set) for a time: after `duration` the directives set for good before the
    /// call (those in force, or those a change for a time would have reverted to) come back,
    /// unless another change came first.
    ///
    /// ```
    /// use std::time::Duration;
    /// let (layer, _guard) = tracelight::builder().writer(tracelight::sink::MemoryWriter::new()).build().unwrap();
    /// let filter = layer.filter();
    /// filter.set_for("debug", Duration::from_secs(600)).unwrap();
    /// let state = filter.state();
    /// assert_eq!(state.directives, "debug");
    /// assert_eq!(state.reverts_to.as_deref(), Some("info"));
    /// ```
    pub fn set_for(&self, directives: &str, duration: std::time::Duration) -> Result<(), Error> {
        let generation = self.change(directives, Some(duration))?;
        let filter = self.clone();
        let spawned = std::thread::Builder::new()
            .name("tracelight-filter-revert".into())
            .spawn(move || {
                std::thread::sleep(duration);
                filter.revert(generation);
            });
        if spawned.is_err() {
            // No thread to revert it: the change is not made for a time it cannot keep.
            let back = {
                let c = crate::util::lock(&self.inner.changes);
                c.reverts.as_ref().map(|(_, d)| d.clone())
            };
            if let Some(back) = back {
                let _ = self.change(&back, None);
            }
            return Err(Error::InvalidSetting {
                setting: "filter".into(),
                reason: "cannot start the thread that reverts a change for a time".into(),
            });
        }
        Ok(())
    }

    /// Goes back to the directives the filter was built with.
    pub fn reset(&self) {
        let initial = self.inner.initial.clone();
        // They were valid when the filter was built.
        let _ = self.change(&initial, None);
    }

    /// The directives in force, since when, and what they revert to.
    pub fn state(&self) -> FilterState {
        let directives = self.directives();
        let c = crate::util::lock(&self.inner.changes);
        FilterState {
            directives,
            initial: self.inner.initial.clone(),
            since: c.since,
            reverts_at: c.reverts.as_ref().map(|(t, _)| *t),
            reverts_to: c.reverts.as_ref().map(|(_, d)| d.clone()),
        }
    }

    /// Reverts the change of `generation` if it is still the one in force.
    fn revert(&self, generation: u64) {
        let back = {
            let c = crate::util::lock(&self.inner.changes);
            (c.generation == generation)
                .then(|| c.reverts.as_ref().map(|(_, d)| d.clone()))
                .flatten()
        };
        if let Some(back) = back {
            // Directives that were in force were valid.
            let _ = self.change(&back, None);
        }
    }

    /// Sets the directives; with `duration`, to revert to the present ones after it. Returns
    /// the change's generation.
    fn change(
        &self,
        directives: &str,
        duration: Option<std::time::Duration>,
    ) -> Result<u64, Error> {
        let next = Current::new(directives, &self.inner.owned)?;
        let mut changes = crate::util::lock(&self.inner.changes);
        let mut current = self
            .inner
            .current
            .write()
            .unwrap_or_else(|p| p.into_inner());
        // Under the lock, so that two changes at once leave the flag and the `log` level of the
        // filter in force.
        self.inner.dynamic.store(next.dynamic, Ordering::Release);
        let replaced = std::mem::replace(&mut *current, next);
        if self.inner.log_bridge.load(Ordering::Relaxed) {
            log::set_max_level(log_level(&current.filter));
        }
        drop(current);
        // A change for a time over another one reverts to what that one reverted to: to the
        // last directives set for good.
        let previous = match changes.reverts.take() {
            Some((_, back)) => back,
            None => replaced.directives,
        };
        tracing_core::callsite::rebuild_interest_cache();
        let now = std::time::SystemTime::now();
        changes.since = now;
        changes.generation += 1;
        changes.reverts = duration.map(|d| (now + d, previous));
        Ok(changes.generation)
    }

    /// The directives in force.
    pub fn directives(&self) -> String {
        self.read(|c| c.directives.clone())
    }

    /// The most verbose level of the `log` crate's records worth sending (they carry no spans).
    pub(crate) fn log_level(&self) -> log::LevelFilter {
        self.read(|c| log_level(&c.filter))
    }

    /// Notes that `init` routed the `log` crate through this filter: [`set`](Self::set) then
    /// changes its level too.
    pub(crate) fn drives_log(&self) {
        self.inner.log_bridge.store(true, Ordering::Relaxed);
    }

    fn read<R>(&self, f: impl FnOnce(&Current) -> R) -> R {
        f(&self.inner.current.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Whether `meta` is a span that carries correlation.
    fn correlation_span(&self, meta: &Metadata<'_>) -> bool {
        meta.is_span()
            && (meta.target() == "tracelight::http"
                || meta.target() == "tracelight::testing"
                || self.inner.units.iter().any(|u| u == meta.name())
                || self
                    .inner
                    .correlation
                    .iter()
                    .any(|name| meta.fields().field(name).is_some()))
    }

    /// Whether a targeted stream takes `meta` whatever the user's filter says.
    fn owned_takes(&self, current: &Current, meta: &Metadata<'_>) -> bool {
        meta.is_event()
            && self
                .inner
                .owned
                .iter()
                .zip(&current.named)
                .any(|(o, named)| {
                    !named
                        && meta.target().starts_with(o.prefix.as_str())
                        && o.min.is_none_or(|min| *meta.level() <= min)
                        && o.max.is_none_or(|max| *meta.level() >= max)
                })
    }

    /// Whether the flight recorder keeps events at `meta`'s level (the filter then lets them
    /// through).
    #[inline]
    fn records(&self, meta: &Metadata<'_>) -> bool {
        self.inner
            .recorder
            .is_some_and(|l| *meta.level() <= l && meta.is_event() && !is_log_record(meta))
    }

    /// A per-layer filter for a layer of yours stacked beside this filter. With the flight
    /// recorder on, this filter lets through the events its directives leave out, to be kept by
    /// tracelight's layer, and a layer beside it would see them too; behind this filter it sees
    /// what the directives enable, as without the recorder (the OpenTelemetry layers that
    /// [`init`](crate::init) stacks have it already).
    ///
    /// ```
    /// use tracing_subscriber::prelude::*;
    /// let (layer, _guard) = tracelight::builder()
    ///     .flight_recorder(tracelight::FlightRecorder::new())
    ///     .writer(tracelight::sink::MemoryWriter::new())
    ///     .build()
    ///     .unwrap();
    /// let filter = layer.filter();
    /// let fmt = tracing_subscriber::fmt::layer().with_filter(filter.for_layer());
    /// let subscriber = tracing_subscriber::registry().with(filter).with(layer).with(fmt);
    /// tracing::subscriber::with_default(subscriber, || {
    ///     tracing::debug!("kept by the recorder inside a request, never printed by `fmt`");
    /// });
    /// ```
    pub fn for_layer<S>(&self) -> impl tracing_subscriber::layer::Filter<S> + Clone + Send + Sync
    where
        S: Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    {
        let f = self.clone();
        tracing_subscriber::filter::dynamic_filter_fn(move |meta: &Metadata<'_>, ctx| {
            !f.recorder_only(meta, ctx.clone())
        })
    }

    /// For the event path: `true` when `meta` reached tracelight only for the flight recorder
    /// (the directives leave it out), so that it is kept, not written.
    #[inline]
    pub(crate) fn recorder_only<S>(&self, meta: &Metadata<'_>, ctx: Context<'_, S>) -> bool {
        self.records(meta)
            && self.inner.installed.load(Ordering::Relaxed)
            && self.read(|c| !c.off && !self.owned_takes(c, meta) && !c.filter.enabled(meta, ctx))
    }

    /// For the plan: `true` when `meta` reached tracelight only because a targeted stream takes
    /// it, so that only the streams selecting it by target write it.
    #[inline]
    pub(crate) fn only_owned<S>(&self, meta: &Metadata<'_>, ctx: Context<'_, S>) -> bool {
        if self.inner.owned.is_empty() || !self.inner.installed.load(Ordering::Relaxed) {
            return false;
        }
        if !self
            .inner
            .owned
            .iter()
            .any(|o| meta.target().starts_with(o.prefix.as_str()))
        {
            return false;
        }
        self.read(|c| self.owned_takes(c, meta) && !c.filter.enabled(meta, ctx))
    }
}

/// The most verbose level of the `log` crate's records `filter` may enable.
fn log_level(filter: &EnvFilter) -> log::LevelFilter {
    match filter.max_level_hint() {
        Some(LevelFilter::OFF) => log::LevelFilter::Off,
        Some(LevelFilter::ERROR) => log::LevelFilter::Error,
        Some(LevelFilter::WARN) => log::LevelFilter::Warn,
        Some(LevelFilter::INFO) => log::LevelFilter::Info,
        Some(LevelFilter::DEBUG) => log::LevelFilter::Debug,
        _ => log::LevelFilter::Trace,
    }
}

impl Current {
    fn new(directives: &str, owned: &[Owned]) -> Result<Current, Error> {
        let filter = parse(directives)?;
        let off = filter.max_level_hint() == Some(LevelFilter::OFF);
        let targets: Vec<&str> = directives
            .split(',')
            .map(str::trim)
            .filter(|d| d.contains('=') || d.contains('['))
            .map(|d| d.split(['=', '[']).next().unwrap_or("").trim())
            .filter(|t| !t.is_empty())
            .collect();
        let named = owned
            .iter()
            .map(|o| {
                targets
                    .iter()
                    .any(|t| o.prefix.starts_with(t) || t.starts_with(o.prefix.as_str()))
            })
            .collect();
        Ok(Current {
            directives: directives.to_owned(),
            dynamic: directives.contains('['),
            filter,
            off,
            named,
        })
    }
}

impl<S: Subscriber> Layer<S> for LogFilter {
    fn on_layer(&mut self, _subscriber: &mut S) {
        self.inner.installed.store(true, Ordering::Relaxed);
    }

    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        self.read(|c| {
            if c.off {
                return Interest::never();
            }
            // The filter is always asked: that is where it notes the spans its span directives
            // (`[request]=debug`) match.
            let interest = <EnvFilter as Layer<S>>::register_callsite(&c.filter, meta);
            if self.correlation_span(meta) || self.owned_takes(c, meta) {
                return Interest::always();
            }
            // Left out by the directives, but kept by the recorder when inside a unit of work:
            // asked each time.
            if interest.is_never() && self.records(meta) {
                return Interest::sometimes();
            }
            interest
        })
    }

    fn enabled(&self, meta: &Metadata<'_>, ctx: Context<'_, S>) -> bool {
        self.read(|c| {
            if c.off {
                return false;
            }
            if self.correlation_span(meta) || self.owned_takes(c, meta) {
                return true;
            }
            let enabled = c.filter.enabled(meta, ctx);
            if self.inner.recorder.is_some() && meta.is_event() {
                let only = !enabled && self.records(meta);
                let addr = if only {
                    meta as *const Metadata<'_> as usize
                } else {
                    0
                };
                let _ = RECORDER_ONLY.try_with(|f| f.set(addr));
                return enabled || only;
            }
            enabled
        })
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        // Correlation spans may be at any level.
        if self.read(|c| c.off) {
            Some(LevelFilter::OFF)
        } else {
            Some(LevelFilter::TRACE)
        }
    }

    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        if self.inner.dynamic.load(Ordering::Acquire) {
            self.read(|c| c.filter.on_new_span(attrs, id, ctx));
        }
    }

    fn on_record(&self, id: &span::Id, values: &span::Record<'_>, ctx: Context<'_, S>) {
        if self.inner.dynamic.load(Ordering::Acquire) {
            self.read(|c| c.filter.on_record(id, values, ctx));
        }
    }

    fn on_enter(&self, id: &span::Id, ctx: Context<'_, S>) {
        if self.inner.dynamic.load(Ordering::Acquire) {
            self.read(|c| c.filter.on_enter(id, ctx));
        }
    }

    fn on_exit(&self, id: &span::Id, ctx: Context<'_, S>) {
        if self.inner.dynamic.load(Ordering::Acquire) {
            self.read(|c| c.filter.on_exit(id, ctx));
        }
    }

    fn on_close(&self, id: span::Id, ctx: Context<'_, S>) {
        if self.inner.dynamic.load(Ordering::Acquire) {
            self.read(|c| c.filter.on_close(id, ctx));
        }
    }
}

#[cfg(test)]
mod tests {
    use tracing_subscriber::layer::SubscriberExt as _;

    #[test]
    fn span_directives_match_correlation_spans() {
        let w = crate::sink::MemoryWriter::new();
        let (layer, _g) = crate::builder()
            .filter("warn,[request]=debug")
            .writer(w.clone())
            .format(crate::Format::Json)
            .build()
            .expect("layer");
        let subscriber = tracing_subscriber::registry()
            .with(layer.filter())
            .with(layer);
        tracing::subscriber::with_default(subscriber, || {
            tracing::debug!("outside: not written");
            let s = tracing::info_span!("request", request_id = "r-1");
            let _e = s.enter();
            tracing::debug!("inside the request: written");
        });
        let lines = w.lines();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].contains("inside the request") && lines[0].contains("r-1"));
    }
}
