//! The per-event path, in six stages:
//!
//! 1. [`plan`](plan::plan): the streams that take the event, rate limits — decided before
//!    anything is rendered;
//! 2. [`snapshot`](snapshot::Snapshot::take): the span state copied out of the span table, lock
//!    released (DEBUG sampling by request is decided here, once the context is known);
//! 3. [`capture`](capture::Capture::record): the event's fields visited once — message, error,
//!    typed values into a per-thread arena, redacted there (a repeated error is suppressed here,
//!    once its type is known);
//! 4. [`render`](render::render): one line per format the streams use, from the capture;
//! 5. [`deliver`](deliver::deliver): the bytes to each stream;
//! 6. [`record`](deliver::record): the error tracker and the security counts.
//!
//! [`on_event`] reads as those calls. All buffers are per thread and reused ([`Scratch`]), so an
//! event allocates nothing in steady state.

pub(crate) mod capture;
pub(crate) mod deliver;
pub(crate) mod plan;
pub(crate) mod render;
pub(crate) mod snapshot;

use std::cell::RefCell;

use smallvec::SmallVec;

use tracing_core::{Event, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::layer::Context as LayerContext;
use tracing_subscriber::registry::LookupSpan;

use crate::spans::SpanTable;
use crate::state::{Rendering, Shared};

/// Per-thread buffers, reused for every event on the thread.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    snapshot: snapshot::Snapshot,
    capture: capture::Capture,
    lines: render::Lines,
    /// The thread's name as a quoted JSON string.
    thread: Vec<u8>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
    /// The source location a line tracelight writes as an event (`span_closed`) reports on, set
    /// around that event: the line shows it instead of the library's own source.
    static REPORTED_LOCATION: std::cell::Cell<Option<Location>> = const { std::cell::Cell::new(None) };
}

/// A source file and line.
pub(crate) type Location = (Option<&'static str>, Option<u32>);

/// Runs `f` (which writes one of tracelight's own events) with the location its line shows.
pub(crate) fn reporting_at<R>(location: Location, f: impl FnOnce() -> R) -> R {
    let _ = REPORTED_LOCATION.try_with(|c| c.set(Some(location)));
    let out = f();
    let _ = REPORTED_LOCATION.try_with(|c| c.set(None));
    out
}

/// Runs `f` on this thread's buffers in `key`; when they are in use (re-entered: a field's `Debug`
/// impl logged) or thread-local storage is gone, on fresh ones rather than lose the work.
pub(crate) fn with_scratch<T: Default + 'static>(
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

/// Everything tracelight does with one event.
pub(crate) fn on_event<S>(
    shared: &Shared,
    table: &SpanTable,
    event: &Event<'_>,
    ctx: &LayerContext<'_, S>,
) where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    // An event the filter let through only for the flight recorder: kept in its unit of work,
    // not written (and not counted) unless the unit fails.
    let mut recording =
        shared.recorder.is_some() && crate::filter::take_recorder_only(event.metadata());
    // The OpenTelemetry exporter's own diagnostics (its HTTP client's DEBUG and INFO events,
    // made on the export threads) are not the service's lines.
    #[cfg(feature = "otel-core")]
    if *event.metadata().level() > tracing_core::Level::WARN && crate::otel::on_export_thread() {
        return;
    }
    // Outside any unit of work there is nothing to keep it in: done before anything is planned.
    if recording && !in_unit(table, event, ctx) {
        return;
    }
    if !recording {
        shared.count_event(event.metadata().level());
    }
    let mut tag = plan::TagVisitor::new();
    let only_owned = || shared.filter.only_owned(event.metadata(), ctx.clone());
    let Some(mut plan) = plan::plan(shared, event, &mut tag, only_owned, recording) else {
        crate::errors::clear_type_hint();
        // Not written (no stream takes it, or a rate limit holds it back), but a failure all
        // the same: the unit's kept lines are written.
        if !recording {
            fail_unit(shared, table, event, ctx);
        }
        return;
    };
    with_scratch(&SCRATCH, |s| {
        let normalized = event.normalized_metadata();
        let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());
        let ts = plan.timestamp();
        let redactor = shared.redactor.as_ref();
        let wanted = snapshot::Wanted {
            span: plan.wants(Rendering::Json),
            span_list: shared.span_list && plan.wants(Rendering::Json),
            text: [plan.wants(Rendering::Text), plan.wants(Rendering::TextAnsi)],
        };
        s.snapshot
            .take(event, ctx, table, redactor, wanted, &shared.json);
        let unit = s.snapshot.unit;
        if recording && unit.is_none() {
            return;
        }
        if !recording && !plan::keep_sampled(shared, meta.level(), s.snapshot.context()) {
            // Sampled out: kept by the recorder instead, inside a unit of work.
            let keeps = unit.is_some()
                && shared
                    .recorder
                    .as_ref()
                    .is_some_and(|r| r.config.covers(meta.level()));
            if !keeps {
                return;
            }
            recording = true;
        }
        let opts = capture::Options {
            redactor,
            skip_log_fields: normalized.is_some(),
            text: wanted.text[0] || wanted.text[1],
        };
        if plan.wants(Rendering::Json) {
            // The keys the line has before the event's fields, so that a field never repeats one.
            let mut keys = crate::fields::KeySet::new(true).with_preset(&shared.preset_keys);
            // The preset's keys come first in `static_keys`; the filter above has them.
            for k in &shared.static_keys[shared.preset_keys.len()..] {
                keys.add(k);
            }
            if let Some(c) = s.snapshot.context() {
                for (k, _) in c.iter() {
                    keys.add(k);
                }
            }
            if plan.rate_limited > 0 {
                keys.add(tracelight_schema::key::RATE_LIMITED);
            }
            s.capture.record(event, Some(&mut keys), opts);
        } else {
            s.capture.record(event, None, opts);
        }
        // tracelight's own events report on something else (a span's callsite, a panic's
        // place).
        let location = if meta.target().starts_with("tracelight::") || meta.target() == "panic" {
            REPORTED_LOCATION
                .try_with(std::cell::Cell::get)
                .ok()
                .flatten()
        } else {
            None
        };
        if !recording
            && !plan.admit_error(
                shared,
                meta,
                location,
                s.capture.error_type(),
                &s.capture.message,
            )
        {
            // A repeat the error tracker suppresses still fails its unit.
            if let (Some(r), Some(unit)) = (&shared.recorder, unit) {
                replay(shared, r, table, unit);
            }
            return;
        }
        if s.thread.is_empty() {
            let t = std::thread::current();
            match t.name() {
                Some(name) => crate::fields::write_str(&mut s.thread, name),
                None => crate::fields::write_str(&mut s.thread, &format!("{:?}", t.id())),
            }
        }
        let ev = render::Event {
            meta,
            location,
            ts,
            thread: &s.thread,
            plan: &plan,
            snapshot: &s.snapshot,
            capture: &s.capture,
            replayed: recording,
        };
        render::render(shared, &ev, &mut s.lines);
        if let (Some(r), Some(unit)) = (&shared.recorder, unit) {
            if recording {
                keep(shared, r, table, unit, plan.mask, &s.lines);
                return;
            }
            if crate::recorder::Recorder::fails(meta) {
                replay(shared, r, table, unit);
            }
        }
        #[cfg(feature = "otel-core")]
        if let Some(logger) = crate::otel::log_exporting(shared) {
            crate::otel::emit_log(logger, &ev);
        }
        #[cfg(feature = "testing")]
        if shared.testing {
            crate::testing::route(event, ctx, &s.lines);
        }
        deliver::deliver(shared, &plan, &s.lines);
        deliver::record(shared, &plan, &s.lines);
    });
}

/// With the flight recorder on, writes what the unit of a failing line that is not itself written
/// kept.
fn fail_unit<S>(shared: &Shared, table: &SpanTable, event: &Event<'_>, ctx: &LayerContext<'_, S>)
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let Some(r) = &shared.recorder else {
        return;
    };
    if !crate::recorder::Recorder::fails(event.metadata()) {
        return;
    }
    let unit = ctx
        .event_span(event)
        .and_then(|sp| table.with(&sp.id(), |st| st.unit).flatten());
    if let Some(unit) = unit {
        replay(shared, r, table, unit);
    }
}

/// Whether `event` is in a unit of work of the flight recorder (or in a span the table does not
/// hold, which the snapshot looks at more closely).
fn in_unit<S>(table: &SpanTable, event: &Event<'_>, ctx: &LayerContext<'_, S>) -> bool
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    ctx.event_span(event)
        .is_some_and(|sp| table.with(&sp.id(), |st| st.unit.is_some()).unwrap_or(true))
}

/// The span id of a unit of work, as the span table keys it (`None` for 0, which no span has).
fn unit_id(unit: u64) -> Option<tracing_core::span::Id> {
    std::num::NonZeroU64::new(unit).map(tracing_core::span::Id::from_non_zero_u64)
}

/// Keeps a line of the flight recorder in its unit's recording, or writes it at once when the
/// unit has failed already.
#[inline(never)]
fn keep(
    shared: &Shared,
    recorder: &crate::recorder::Recorder,
    table: &SpanTable,
    unit: u64,
    mask: u64,
    lines: &render::Lines,
) {
    let Some(id) = unit_id(unit) else {
        return;
    };
    let Some(failed) = table.with(&id, |st| {
        if st.recording.failed {
            return true;
        }
        recorder.keep(&mut st.recording, mask, lines.all());
        false
    }) else {
        recorder.lost();
        return;
    };
    if failed {
        recorder.written_after_failure();
        deliver::deliver_to(shared, mask, lines.all());
    }
}

/// Writes what the unit `unit` and the units around it kept (the outermost first, each oldest
/// first), before the line that makes them fail.
#[inline(never)]
fn replay(shared: &Shared, recorder: &crate::recorder::Recorder, table: &SpanTable, unit: u64) {
    let mut units: SmallVec<[tracing_core::span::Id; 2]> = SmallVec::new();
    let mut next = unit_id(unit);
    while let Some(u) = next.take() {
        let Some(outer) = table.with(&u, |st| st.outer_unit) else {
            break;
        };
        units.push(u);
        // A bound on the walk, should units ever nest very deep.
        if units.len() < 16 {
            next = outer.and_then(unit_id);
        }
    }
    for u in units.iter().rev() {
        // Out of the table while it is written (a writer may log); lines other threads keep
        // meanwhile go into the fresh recording left in its place, and are written after.
        let mut rec = match table.with(u, |st| std::mem::take(&mut st.recording)) {
            Some(rec) if !rec.failed => rec,
            Some(rec) => {
                // Failed already (and replayed): nothing kept.
                table.with(u, |st| st.recording = rec);
                continue;
            }
            None => continue,
        };
        loop {
            recorder.replay(&mut rec, |mask, lines| {
                deliver::deliver_to(shared, mask, lines)
            });
            let done = table.with(u, |st| {
                if st.recording.is_idle() {
                    st.recording = std::mem::take(&mut rec);
                    st.recording.failed = true;
                    true
                } else {
                    // Kept meanwhile: written next, while new ones keep going in.
                    std::mem::swap(&mut st.recording, &mut rec);
                    st.recording.failed = false;
                    false
                }
            });
            if done != Some(false) {
                break;
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! Runs a stage on real events: a layer that hands each event to a closure.

    use std::sync::Arc;

    use tracing_core::{Event, Subscriber};
    use tracing_subscriber::layer::{Context as LayerContext, SubscriberExt as _};
    use tracing_subscriber::registry::LookupSpan;

    use crate::state::{Shared, StateRef};

    type OnEvent = dyn Fn(&Shared, &crate::spans::SpanTable, &Event<'_>) + Send + Sync;

    struct Probe {
        state: StateRef,
        f: Arc<OnEvent>,
    }

    impl<S: Subscriber + for<'a> LookupSpan<'a>> tracing_subscriber::Layer<S> for Probe {
        fn on_event(&self, event: &Event<'_>, _: LayerContext<'_, S>) {
            (self.f)(&self.state.shared, &self.state.spans, event);
        }
    }

    /// The state of a layer built by `builder`, and `run` executed with a subscriber whose
    /// events go to `f` with that state.
    pub(crate) fn with_events(
        builder: crate::Builder,
        f: impl Fn(&Shared, &crate::spans::SpanTable, &Event<'_>) + Send + Sync + 'static,
        run: impl FnOnce(),
    ) {
        let (layer, _guard) = builder.build().expect("layer");
        let probe = Probe {
            state: layer.state.clone(),
            f: Arc::new(f),
        };
        let subscriber = tracing_subscriber::registry().with(probe);
        tracing::subscriber::with_default(subscriber, run);
    }
}
