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
use crate::json;
use crate::redact::Redactor;
use crate::spans::SpanTable;

/// The event's span state (reused for every event on a thread).
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    /// The current span's name, when the event has one.
    pub(crate) span_name: Option<&'static str>,
    /// Whether the current span's state was found.
    pub(crate) found: bool,
    /// The current span's fields as JSON members, when a JSON line is wanted.
    pub(crate) span_members: Vec<u8>,
    /// The context: request id and bound fields.
    pub(crate) ctx: Option<Arc<Context>>,
    /// The unit of work the event is in, with the flight recorder on (its span id).
    pub(crate) unit: Option<u64>,
    /// `{"name":…},{"name":…,…}`: the span path from the root, when the span list is on.
    pub(crate) span_list: Vec<u8>,
    /// Whether the event has a span path (`span_list` is then written, even empty).
    pub(crate) has_scope: bool,
    /// `"trace_id":"…","span_id":"…",` of the current OpenTelemetry span, if any.
    pub(crate) trace_ids: Vec<u8>,
    /// The OpenTelemetry context of an event with an explicit parent (`parent: …`), which is
    /// not the thread's current one: its log record is made in it (the empty one).
    #[cfg(feature = "otel-core")]
    pub(crate) otel_parent: Option<opentelemetry::Context>,
    /// The span's fields and the context entries they do not hold, as text pairs: plain and
    /// coloured, each when a text line of that kind is wanted.
    pub(crate) text: [crate::text::Pairs; 2],
}

/// Which renderings a snapshot is taken for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Wanted {
    /// The current span's object (`span`), for JSON lines.
    pub(crate) span: bool,
    /// The span path (`spans`), for JSON lines with the span list on.
    pub(crate) span_list: bool,
    /// Text pairs without and with colours.
    pub(crate) text: [bool; 2],
}

impl Snapshot {
    /// Copies the state of `event`'s spans out of `table`.
    pub(crate) fn take<S>(
        &mut self,
        event: &Event<'_>,
        ctx: &LayerContext<'_, S>,
        table: &SpanTable,
        redactor: Option<&Redactor>,
        wanted: Wanted,
        json: &crate::json::JsonSchema,
    ) where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        self.ctx = None;
        self.span_list.clear();
        self.has_scope = false;
        self.trace_ids.clear();
        let span = ctx.event_span(event);
        self.span_name = span.as_ref().map(|sp| sp.name());
        let members = &mut self.span_members;
        members.clear();
        let text = &mut self.text;
        let mut found_ctx = None;
        let mut unit = None;
        self.found = span.as_ref().is_some_and(|sp| {
            table
                .with(&sp.id(), |st| {
                    st.fields.render(redactor);
                    if wanted.span {
                        members.extend_from_slice(st.fields.json_members());
                    }
                    for (ansi, out) in text.iter_mut().enumerate() {
                        if !wanted.text[ansi] {
                            continue;
                        }
                        // Rendered once per span (and again after a record or a bind).
                        let pairs = &mut st.text[ansi];
                        if !pairs.is_current(&st.fields, st.ctx.as_ref()) {
                            pairs.pairs.clear();
                            crate::text::write_span_pairs(
                                &mut pairs.pairs,
                                &st.fields,
                                st.ctx.as_deref(),
                                ansi == 1,
                            );
                            pairs.rendered_from(&st.fields, st.ctx.as_ref());
                        }
                        out.copy_from(&pairs.pairs);
                    }
                    found_ctx = st.ctx.clone();
                    unit = st.unit;
                })
                .is_some()
        });
        if !self.found {
            text.iter_mut().for_each(crate::text::Pairs::clear);
            // The span is not in the table (a per-layer filter on the layer that keeps it left
            // it out): the context of its nearest ancestor that is.
            if let Some(sp) = &span {
                (found_ctx, unit) = sp
                    .scope()
                    .skip(1)
                    .find_map(|a| table.with(&a.id(), |st| (st.ctx.clone(), st.unit)))
                    .unwrap_or((None, None));
            }
        }
        self.ctx = found_ctx;
        self.unit = unit;
        if wanted.span_list {
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
        #[cfg(feature = "otel-core")]
        {
            self.otel_parent = crate::otel::write_trace_ids(&mut self.trace_ids, event, json);
        }
        #[cfg(not(feature = "otel-core"))]
        let _ = json;
    }

    /// The current span's name and fields as JSON members, when its state was found.
    #[inline]
    pub(crate) fn span(&self) -> Option<(&str, &[u8])> {
        match (self.found, self.span_name) {
            (true, Some(name)) => Some((name, &self.span_members)),
            _ => None,
        }
    }

    /// The context, if any.
    #[inline]
    pub(crate) fn context(&self) -> Option<&Context> {
        self.ctx.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;
    use crate::state::StateRef;

    /// Span, span list, request id and text pairs of one snapshot.
    type Seen = (Option<String>, String, Option<String>, String);

    /// Takes a snapshot of every event, from the span table of the tracelight layer beside it.
    struct Probe {
        state: StateRef,
        wanted: Wanted,
        out: Arc<Mutex<Vec<Seen>>>,
    }

    impl<S: Subscriber + for<'a> LookupSpan<'a>> tracing_subscriber::Layer<S> for Probe {
        fn on_event(&self, event: &Event<'_>, ctx: LayerContext<'_, S>) {
            let mut s = Snapshot::default();
            s.take(
                event,
                &ctx,
                &self.state.spans,
                None,
                self.wanted,
                &crate::json::JsonSchema::default(),
            );
            let text = |b: &[u8]| String::from_utf8(b.to_vec()).expect("utf8");
            crate::util::lock(&self.out).push((
                s.span()
                    .map(|(name, members)| format!("{name}:{}", text(members))),
                text(&s.span_list),
                s.context().and_then(|c| c.request_id()),
                text(&s.text[0].bytes),
            ));
        }
    }

    #[test]
    fn copies_the_span_the_path_the_context_and_the_text_pairs() {
        let (layer, _guard) = crate::builder()
            .writer(crate::sink::MemoryWriter::new())
            .build()
            .expect("layer");
        let out = Arc::new(Mutex::new(Vec::new()));
        let probe = Probe {
            state: layer.state.clone(),
            wanted: Wanted {
                span: true,
                span_list: true,
                text: [true, false],
            },
            out: Arc::clone(&out),
        };
        let subscriber = tracing_subscriber::registry().with(layer).with(probe);
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("outside");
            let req = tracing::info_span!("request", request_id = "r-1");
            let _r = req.enter();
            let db = tracing::info_span!("db", table = "orders");
            let _d = db.enter();
            tracing::info!("inside");
        });
        let got = crate::util::lock(&out);
        assert_eq!(got[0], (None, String::new(), None, String::new()));
        let (span, list, rid, text) = &got[1];
        assert_eq!(span.as_deref(), Some("db:\"table\":\"orders\""));
        assert_eq!(
            list,
            r#"{"name":"request","request_id":"r-1"},{"name":"db","table":"orders"}"#
        );
        assert_eq!(rid.as_deref(), Some("r-1"));
        assert_eq!(text, " table=orders request_id=r-1");
    }
}
