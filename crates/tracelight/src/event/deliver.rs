//! Deliver and record: the event's lines to each of its streams, then what the insight parts
//! keep of it.

use std::sync::atomic::Ordering;

use super::plan::Plan;
use super::render::Lines;
use crate::state::{Shared, StreamSink};

/// Hands each stream that takes the event its rendering's line: a synchronous writer is called
/// here, queued streams get their lines in one push per batch.
pub(crate) fn deliver(shared: &Shared, plan: &Plan, lines: &Lines) {
    let mut items: [(usize, &[u8]); 8] = [(0, &[]); 8];
    let mut n = 0;
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
                if n == items.len() {
                    if let Some(queue) = &shared.queue {
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
        if let Some(queue) = &shared.queue {
            queue.push_many(&items[..n]);
        }
    }
}

/// Records the written line with the error tracker (ERROR events) and the security counts
/// (security events).
pub(crate) fn record(shared: &Shared, plan: &Plan, lines: &Lines) {
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
