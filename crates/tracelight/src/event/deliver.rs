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
    // Queued lines go in one push; the batch lives on the stack (uninitialised until used).
    let mut items: SmallVec<[(usize, &[u8]); 8]> = SmallVec::new();
    for (i, st) in shared.streams.iter().enumerate() {
        if !plan.takes(i) {
            continue;
        }
        let bytes = lines.get(st.rendering);
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
