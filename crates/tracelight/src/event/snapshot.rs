//! Snapshot: what the event needs of its spans, copied out of the span table.
//!
//! The current span's rendered fields and its context are copied (bytes and a reference count)
//! under the table's shard lock, which is then released: no lock is held while the event's own
//! fields (user code) are visited, and rendering needs nothing from the table.

use std::sync::Arc;

use tracing_core::{Event, Subscriber};
use tracing_subscriber::layer::Context as LayerContext;
use tracing_subscriber::registry::LookupSpan;

use crate::context::Context;
use crate::fields::SpanFields;
use crate::json;
use crate::redact::Redactor;
use crate::spans::SpanTable;

/// The event's span state (reused for every event on a thread).
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    /// The current span's name, when the event has one.
    pub(crate) span_name: Option<&'static str>,
    /// Whether the current span's state was found (its fields are then in `span_fields`).
    pub(crate) found: bool,
    /// The current span's fields, rendered.
    pub(crate) span_fields: SpanFields,
    /// The context: request id and bound fields.
    pub(crate) ctx: Option<Arc<Context>>,
    /// `{"name":…},{"name":…,…}`: the span path from the root, when the span list is on.
    pub(crate) span_list: Vec<u8>,
    /// Whether the event has a span path (`span_list` is then written, even empty).
    pub(crate) has_scope: bool,
    /// `"trace_id":"…","span_id":"…",` of the current OpenTelemetry span, if any.
    pub(crate) trace_ids: Vec<u8>,
}

impl Snapshot {
    /// Copies the state of `event`'s spans out of `table`.
    pub(crate) fn take<S>(
        &mut self,
        event: &Event<'_>,
        ctx: &LayerContext<'_, S>,
        table: &SpanTable,
        redactor: Option<&Redactor>,
        span_list: bool,
    ) where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        self.ctx = None;
        self.span_list.clear();
        self.has_scope = false;
        self.trace_ids.clear();
        let span = ctx.event_span(event);
        self.span_name = span.as_ref().map(|sp| sp.name());
        let fields = &mut self.span_fields;
        let mut found_ctx = None;
        self.found = span.as_ref().is_some_and(|sp| {
            table
                .with(&sp.id(), |st| {
                    st.fields.render(redactor);
                    fields.clone_rendered(&st.fields);
                    found_ctx = st.ctx.clone();
                })
                .is_some()
        });
        self.ctx = found_ctx;
        if span_list {
            if let Some(scope) = ctx.event_scope(event) {
                self.has_scope = true;
                let out = &mut self.span_list;
                for sp in scope.from_root() {
                    let written = table
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
            }
        }
        #[cfg(feature = "otel")]
        crate::otel::write_trace_ids(&mut self.trace_ids, event);
    }

    /// The current span's fields, when its state was found.
    #[inline]
    pub(crate) fn fields(&self) -> Option<&SpanFields> {
        self.found.then_some(&self.span_fields)
    }

    /// The context, if any.
    #[inline]
    pub(crate) fn context(&self) -> Option<&Context> {
        self.ctx.as_deref()
    }
}
