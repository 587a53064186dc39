//! The tracelight layer: span state, correlation context, timing, and the per-event path.
//!
//! [`TracelightLayer`] keeps each span's fields, correlation context and timing in a table of its
//! own, keyed by span id (pooled, so a span allocates nothing in steady state). Its callbacks are
//! short: span callbacks update the table, [`on_event`](Layer::on_event) hands the event to the
//! six stages of [`crate::event`], and a slow close writes a `span_closed` event.

use std::any::TypeId;
use std::sync::Arc;

use smallvec::SmallVec;
use tracing_core::span::{Attributes, Id, Record};
use tracing_core::{Dispatch, Event, Subscriber};
use tracing_subscriber::layer::Context as LayerContext;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use crate::context::{Context, REQUEST_ID};
use crate::sink::StreamStats;
use crate::spans::SpanState;
use crate::state::{Handle, StateRef};

thread_local! {
    /// Fields recorded on an existing span, rendered before they are merged.
    static RECORD_SCRATCH: std::cell::RefCell<crate::fields::SpanFields> =
        std::cell::RefCell::new(crate::fields::SpanFields::default());
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
    /// The shared state, and the states of the spans of the subscriber this layer is part of.
    pub(crate) state: StateRef,
}

impl std::fmt::Debug for TracelightLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TracelightLayer")
            .field(
                "streams",
                &self
                    .state
                    .shared
                    .streams
                    .iter()
                    .map(|s| &s.name)
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// Slots of the per-thread cache of [`TracelightLayer::may_carry_context`].
const CARRY_SLOTS: usize = 16;

thread_local! {
    /// (callsite, layer state, whether its spans can carry context), by callsite address.
    static CARRIES: [std::cell::Cell<(usize, usize, bool)>; CARRY_SLOTS] =
        const { [const { std::cell::Cell::new((0, 0, false)) }; CARRY_SLOTS] };
}

impl TracelightLayer {
    /// A handle on this layer's state.
    pub fn handle(&self) -> Handle {
        Handle {
            shared: Arc::clone(&self.state.shared),
        }
    }

    /// Flushes every stream: returns when every line logged before the call is written.
    pub fn flush(&self) {
        self.state.shared.flush();
    }

    /// Per-stream statistics.
    pub fn stats(&self) -> Vec<StreamStats> {
        self.state.shared.stats()
    }

    /// The filter of the builder's directives (`RUST_LOG`, `LOG_LEVEL` or
    /// [`Builder::filter`](crate::Builder::filter)), to put in front of this layer: it keeps the
    /// spans that carry correlation at any level (see [`LogFilter`](crate::LogFilter)).
    pub fn filter(&self) -> crate::LogFilter {
        self.state.shared.filter.clone()
    }

    /// Whether spans of `meta`'s callsite can carry the request id or a context field: a span
    /// records only the fields its callsite declares, so this is decided once per callsite (in a
    /// small per-thread cache), and a span without any is never looked at again.
    #[inline]
    fn may_carry_context(&self, meta: &'static tracing_core::Metadata<'static>) -> bool {
        let shared = self.state.shared.serial;
        let callsite = meta as *const tracing_core::Metadata<'static> as usize;
        let slot = (callsite >> 4 ^ callsite >> 10) % CARRY_SLOTS;
        let cached = CARRIES
            .try_with(|c| {
                let (cs, sh, carries) = c[slot].get();
                (cs == callsite && sh == shared).then_some(carries)
            })
            .ok()
            .flatten();
        if let Some(carries) = cached {
            return carries;
        }
        let carries = meta.fields().iter().any(|f| self.is_context(f.name()));
        let _ = CARRIES.try_with(|c| c[slot].set((callsite, shared, carries)));
        carries
    }

    /// Puts the span's context fields (the request id, the builder's context fields) into its
    /// correlation context.
    #[inline]
    fn promote(&self, state: &mut SpanState) {
        if self.may_carry_context(state.meta) {
            self.promote_fields(state);
        }
    }

    /// Whether a field named `k` goes into the correlation context.
    fn is_context(&self, k: &str) -> bool {
        k == REQUEST_ID || self.state.shared.context_fields.iter().any(|c| c == k)
    }

    #[inline(never)]
    fn promote_fields(&self, state: &mut SpanState) {
        let inner = &*self.state.shared;
        if !(state.fields.has(REQUEST_ID)
            || inner.context_fields.iter().any(|c| state.fields.has(c)))
        {
            return;
        }
        state.fields.render(inner.redactor.as_ref());
        let mut ctx = state.ctx.clone();
        let names: SmallVec<[&'static str; 4]> = state
            .fields
            .names()
            .filter(|k| self.is_context(k))
            .collect();
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

    /// A layer that `reload::Layer` swapped in is told of no dispatcher: on its first callback it
    /// takes over the one of the layer it replaced (one relaxed load afterwards).
    #[inline]
    fn know_dispatch<S: Subscriber>(&self) {
        if !self.state.spans.dispatch_known() {
            self.record_dispatch::<S>();
        }
    }

    #[cold]
    fn record_dispatch<S: Subscriber>(&self) {
        crate::state::adopt_dispatch(&self.state.spans, crate::state::probe::<S>());
    }

    /// Makes this layer read the span state that `keeper`, a tracelight layer below it in the
    /// same subscriber, keeps, instead of keeping its own: one table and one lookup per span
    /// callback for the stack (the caller then hands this layer no span callback). The span
    /// state is the same only when it would be rendered the same: the same redaction rules,
    /// context fields and static keys; otherwise this layer keeps its own, and the returned
    /// reason says why. With timing of its own above a keeper without, the keeper measures its
    /// spans for this layer's timing.
    pub(crate) fn follow(&mut self, keeper: &StateRef) -> Result<(), &'static str> {
        let (own, theirs) = (&*self.state.shared, &*keeper.shared);
        let same_redaction = match (&own.redactor, &theirs.redactor) {
            (None, None) => true,
            (Some(a), Some(b)) => a.same_rules(b),
            _ => false,
        };
        if !same_redaction {
            return Err("its redaction rules differ from those of the layer below it");
        }
        if own.context_fields != theirs.context_fields || own.static_keys != theirs.static_keys {
            return Err(
                "its context fields or static fields differ from those of the layer below it",
            );
        }
        self.state.spans = Arc::clone(&keeper.spans);
        crate::state::read_span_table(&self.state.shared, &self.state.spans);
        if own.timing.is_some() && !self.state.spans.time_for(&self.state.shared) {
            crate::util::say(
                "tracelight: a TimingLayer's settings are not used: the tracelight layer below \
                 it in the subscriber times the spans already"
                    .to_owned(),
            );
        }
        Ok(())
    }

    /// Takes this layer's span table for the subscriber it is added to. Span ids are unique
    /// only within one registry: a clone of this layer added to a second subscriber keeps its
    /// spans in a table of its own.
    pub(crate) fn keep_own_table(&mut self) {
        if !self.state.spans.attach() {
            let spans = crate::state::new_span_table(&self.state.shared);
            spans.attach();
            self.state.spans = spans;
        }
    }

    /// The key this layer's entries carry on the per-thread entered stack.
    #[inline]
    fn key(&self) -> usize {
        Arc::as_ptr(&self.state.spans) as usize
    }
}

impl<S> Layer<S> for TracelightLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_layer(&mut self, subscriber: &mut S) {
        // An OpenTelemetry pipeline's layer below: its log records are built from this layer's
        // capture of each event.
        #[cfg(feature = "otel-core")]
        crate::otel::claim_logs(&self.state.shared, &*subscriber);
        // ... and its metrics are this layer's.
        #[cfg(any(feature = "otel-http", feature = "otel-grpc"))]
        crate::otel::claim_metrics(&self.state.shared, &*subscriber);
        #[cfg(not(feature = "otel-core"))]
        let _ = subscriber;
        self.keep_own_table();
    }

    fn on_register_dispatch(&self, dispatch: &Dispatch) {
        // How `state::find` recognises this subscriber behind a wrapper that answers no downcast.
        crate::state::attach_dispatch(&self.state.spans, crate::state::probe::<S>(), dispatch);
    }

    // The one `unsafe` item of the layer: the trait method is `unsafe` to implement. The pointers
    // returned are to `self` and to a field of it, valid for as long as the `&self` they came from,
    // and tagged with the exact type they point to, which is what `downcast_raw` requires.
    #[doc(hidden)]
    #[allow(unsafe_code)]
    unsafe fn downcast_raw(&self, id: TypeId) -> Option<*const ()> {
        if id == TypeId::of::<Self>() {
            Some(self as *const Self as *const ())
        } else if id == TypeId::of::<StateRef>() {
            Some(&self.state as *const StateRef as *const ())
        } else {
            None
        }
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: LayerContext<'_, S>) {
        // The OpenTelemetry exporter's own spans (its HTTP/2 connection) are not the service's:
        // neither timed nor carried into lines.
        #[cfg(feature = "otel-core")]
        if crate::otel::on_export_thread() {
            return;
        }
        self.know_dispatch::<S>();
        let inner = &*self.state.shared;
        let parent = if attrs.is_contextual() {
            crate::spans::current(self.key())
        } else {
            attrs.parent().cloned()
        };
        // Rendered before the table is touched: `Debug` impls may log.
        let mut state = SpanState::boxed(attrs.metadata());
        state.fields.record(attrs, inner.redactor.as_ref());
        let (parent_ctx, parent_unit) = match parent {
            Some(p) => match self.state.spans.with(&p, |st| (st.ctx.clone(), st.unit)) {
                Some(c) => c,
                // The parent is not one of ours (a per-layer filter left it out): the nearest
                // ancestor that is.
                None => ctx
                    .span(id)
                    .and_then(|s| s.parent())
                    .and_then(|a| {
                        self.state
                            .spans
                            .with(&a.id(), |st| (st.ctx.clone(), st.unit))
                    })
                    .unwrap_or((None, None)),
            },
            None => (None, None),
        };
        state.ctx = parent_ctx;
        if let Some(r) = &inner.recorder {
            state.unit = if r.is_unit(attrs.metadata()) {
                state.outer_unit = parent_unit;
                Some(id.into_u64())
            } else {
                parent_unit
            };
        }
        self.promote(&mut state);
        if self.state.spans.timing().is_some() {
            state.timing = Some(crate::timing::SpanTiming::new());
        }
        self.state.spans.insert(id, state);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _ctx: LayerContext<'_, S>) {
        let inner = &*self.state.shared;
        let merge = |rendered: &mut crate::fields::SpanFields| {
            rendered.clear();
            rendered.record(values, inner.redactor.as_ref());
            self.state.spans.with(id, |state| {
                state.fields.merge(rendered);
                self.promote(state);
            });
        };
        crate::event::with_scratch(&RECORD_SCRATCH, merge);
    }

    fn on_event(&self, event: &Event<'_>, ctx: LayerContext<'_, S>) {
        self.know_dispatch::<S>();
        crate::event::on_event(&self.state.shared, &self.state.spans, event, &ctx);
    }

    fn on_enter(&self, id: &Id, _ctx: LayerContext<'_, S>) {
        let now = if self.state.spans.timing().is_some() {
            crate::timing::ticks()
        } else {
            0
        };
        crate::spans::enter(self.key(), id, now);
        #[cfg(feature = "otel-core")]
        crate::otel::probe_foreign_layer(id);
    }

    fn on_exit(&self, id: &Id, _ctx: LayerContext<'_, S>) {
        let since = crate::spans::exit(self.key(), id);
        if let (Some(since), Some(_)) = (since, self.state.spans.timing()) {
            let now = crate::timing::ticks();
            self.state.spans.with(id, |st| {
                if let Some(t) = st.timing.as_mut() {
                    t.add_busy(since, now);
                }
            });
        }
    }

    fn on_close(&self, id: Id, _ctx: LayerContext<'_, S>) {
        let Some(timing) = self.state.spans.timing() else {
            if let Some(state) = self.state.spans.remove(&id) {
                self.recycle(state);
            }
            return;
        };
        // The common case — a close that is not slow — only queues its duration, under the
        // table lock the removal takes anyway; the queue is folded into the aggregates in batches.
        let mut measured = None;
        let state = self.state.spans.remove_noting(
            &id,
            |st| {
                let t = st.timing.take()?;
                let total = t.total();
                if timing.queues(st.meta, total) {
                    return Some(crate::timing::Closed {
                        meta: st.meta,
                        total_ns: total,
                    });
                }
                measured = Some((total, t.busy_within(total)));
                None
            },
            |batch| timing.fold(batch),
        );
        let Some(state) = state else {
            return;
        };
        let Some((total, busy)) = measured else {
            self.recycle(state);
            return;
        };
        self.close_measured(id, state, timing, total, busy);
    }
}

impl TracelightLayer {
    /// A close that is slow, timed by name or reported on every close: recorded on its own, and
    /// written as a `span_closed` line when it is to be. Out of line, so that the common close
    /// stays small.
    #[inline(never)]
    fn close_measured(
        &self,
        id: Id,
        mut state: Box<SpanState>,
        timing: &crate::timing::Timing,
        total: u64,
        busy: u64,
    ) {
        let inner = &*self.state.shared;
        let redactor = inner.redactor.as_ref();
        let (key, operation): (_, std::borrow::Cow<'static, str>) = match state.meta.name() {
            _ if crate::timing::is_request_span(state.meta) => {
                // `GET /orders/{id}`: aggregates per route (a request with no route, as an
                // unmatched path, is `GET` alone, so that paths never make operations).
                state.fields.render(redactor);
                let field = |k| state.fields.get(k).map(crate::context::json_to_string);
                // A method outside the standard ones (which clients choose freely) is `_OTHER`,
                // as OpenTelemetry names it: operations come from the routes only.
                let method = match field("method") {
                    Some(m)
                        if matches!(
                            m.as_str(),
                            "GET"
                                | "HEAD"
                                | "POST"
                                | "PUT"
                                | "DELETE"
                                | "CONNECT"
                                | "OPTIONS"
                                | "TRACE"
                                | "PATCH"
                        ) =>
                    {
                        m
                    }
                    Some(_) => "_OTHER".to_owned(),
                    None => "request".to_owned(),
                };
                let op = match field("route") {
                    Some(route) => format!("{method} {route}"),
                    None => method,
                };
                (crate::timing::OpKey::named(&op), op.into())
            }
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
            self.recycle(state);
            return;
        }
        // Back in the table while the line is written, so it carries the span's fields and
        // context; out again after.
        let state_meta = state.meta;
        self.state.spans.insert(&id, state);
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
        // The line points at the slow span's callsite, not at this file.
        let at = (state_meta.file(), state_meta.line());
        crate::event::reporting_at(at, || {
            if slow {
                span_closed!(warn);
            } else {
                span_closed!(info);
            }
        });
        if let Some(state) = self.state.spans.remove(&id) {
            self.recycle(state);
        }
    }

    /// Returns a closed span's state to the pool; a unit of work that ended without failing
    /// drops the lines its flight recording kept.
    #[inline]
    fn recycle(&self, mut state: Box<SpanState>) {
        if let Some(r) = &self.state.shared.recorder {
            if !state.recording.is_idle() {
                r.discard(&mut state.recording);
            }
        }
        state.recycle();
    }
}
