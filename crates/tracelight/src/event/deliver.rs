//! Deliver and record: the event's lines to each of its streams, then what the insight parts
//! keep of it.

use std::sync::atomic::Ordering;

use smallvec::SmallVec;

use super::plan::Plan;
use super::render::Lines;
use crate::state::{Shared, StreamSink};

/// Hands each stream that takes the event its rendering's line: a synchronous writer is called
/// here, queued streams get their lines in one push per batch.
pub(crate) fn deliver(shared: &Shared, plan: &Plan<'_>, lines: &Lines) {
    deliver_to(shared, plan.mask, lines.all());
}

/// [`deliver`] to the streams of `mask` (one bit per stream), from the line of each rendering
/// (JSON, text, coloured text).
pub(crate) fn deliver_to(shared: &Shared, mask: u64, lines: [&[u8]; 3]) {
    // Queued lines go in one push; the batch lives on the stack (uninitialised until used).
    let mut items: SmallVec<[(usize, &[u8]); 8]> = SmallVec::new();
    for (i, st) in shared.streams.iter().enumerate() {
        if mask & (1 << i) == 0 {
            continue;
        }
        let bytes = lines[st.rendering as usize];
        match &st.sink {
            StreamSink::Writer(w) => {
                w.write_line(bytes);
                st.counters.events.fetch_add(1, Ordering::Relaxed);
                st.counters
                    .bytes
                    .fetch_add(bytes.len() as u64, Ordering::Relaxed);
            }
            StreamSink::Queue(q) => {
                if items.len() == items.inline_size() {
                    if let Some(queue) = &shared.queue {
                        queue.push_many(&items);
                    }
                    items.clear();
                }
                items.push((*q, bytes));
            }
        }
    }
    if !items.is_empty() {
        if let Some(queue) = &shared.queue {
            queue.push_many(&items);
        }
    }
}

/// Records the written line with the error tracker (ERROR events) and the security counts
/// (security events).
pub(crate) fn record(shared: &Shared, plan: &Plan<'_>, lines: &Lines) {
    let security = plan.security_type();
    if plan.fingerprint.is_none() && security.is_none() {
        return;
    }
    let line = lines.sample();
    if let Some(fp) = plan.fingerprint {
        shared.tracker.written(fp, line);
    }
    if let Some(event_type) = security {
        shared.security.record(event_type, line);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use crate::event::plan::{plan, TagVisitor};
    use crate::event::render::Lines;
    use crate::event::testing::with_events;
    use crate::sink::MemoryWriter;
    use crate::{Output, Rule, Stream};

    #[test]
    fn each_stream_gets_its_line_and_counts_it() {
        let all = MemoryWriter::new();
        let errors = MemoryWriter::new();
        // The stats count what each stream was handed.
        let b = crate::builder()
            .stream(Stream::new("all", Output::Writer(Arc::new(all.clone()))))
            .stream(
                Stream::new("errors", Output::Writer(Arc::new(errors.clone())))
                    .rule(Rule::min_level(tracing::Level::ERROR)),
            );
        let stats = Arc::new(Mutex::new(Vec::new()));
        let out = Arc::clone(&stats);
        with_events(
            b,
            move |shared, _, event| {
                let mut tag = TagVisitor::new();
                let Some(p) = plan(shared, event, &mut tag, || false, false) else {
                    return;
                };
                // An empty line of every rendering: deliver only hands over bytes.
                let lines = Lines::default();
                super::deliver(shared, &p, &lines);
                *crate::util::lock(&out) = shared.stats();
            },
            || {
                tracing::info!("one");
                tracing::error!("two");
            },
        );
        let stats = crate::util::lock(&stats);
        assert_eq!(stats[0].events, 2);
        assert_eq!(stats[1].events, 1);
    }
}
