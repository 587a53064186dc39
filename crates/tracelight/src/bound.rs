//! Bounds on the in-memory tables whose keys come from input: timing aggregates by operation,
//! error groups and security event types. Past its bound, a table counts new keys under one
//! `other` entry, and says so once on stderr.

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// The key new entries are counted under once a table is full.
pub(crate) const OTHER: &str = "other";

/// How many keys a table took past its bound, and whether that was reported.
#[derive(Debug, Default)]
pub(crate) struct Overflow {
    folded: AtomicU64,
    reported: AtomicBool,
}

impl Overflow {
    /// Counts one key folded into `other`; the first time, says so on stderr (`table` names the
    /// table, `setting` how to raise the bound).
    pub(crate) fn fold(&self, table: &str, bound: usize, setting: &str) {
        self.folded.fetch_add(1, Ordering::Relaxed);
        if !self.reported.swap(true, Ordering::AcqRel) {
            let _ = writeln!(
                std::io::stderr(),
                "tracelight: {table}: more than {bound} distinct keys; new ones are counted under \
                 \"{OTHER}\" (raise the bound with {setting})"
            );
        }
    }

    /// How many keys were folded into `other`.
    pub(crate) fn folded(&self) -> u64 {
        self.folded.load(Ordering::Relaxed)
    }
}

/// `s` cut to at most `max` bytes at a character boundary, with `…` when cut.
pub(crate) fn truncated(s: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if s.len() <= max {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    std::borrow::Cow::Owned(format!("{}…", &s[..end]))
}

/// At most `max` events per client per window, for events a client can cause at will (a
/// malformed request id on every request): the rest are counted, and the count is given with
/// the client's next event after its window. At most [`PER_CLIENT_SLOTS`] clients are tracked;
/// a full table lets go of the client whose window is the oldest (handing back its count).
#[derive(Debug)]
pub(crate) struct PerClient {
    max: u32,
    window: std::time::Duration,
    slots: std::sync::Mutex<std::collections::HashMap<Option<std::net::IpAddr>, Slot>>,
}

/// How many clients [`PerClient`] tracks.
pub(crate) const PER_CLIENT_SLOTS: usize = 4096;

#[derive(Debug, Clone, Copy)]
struct Slot {
    since: std::time::Instant,
    written: u32,
    suppressed: u64,
}

/// What to do with one client's event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Write it; first say that this many of the client's events were counted, not written.
    Write { suppressed_before: u64 },
    /// Count it.
    Suppress,
}

impl PerClient {
    pub(crate) fn new(max: u32, window: std::time::Duration) -> PerClient {
        PerClient {
            max: max.max(1),
            window,
            slots: std::sync::Mutex::default(),
        }
    }

    /// The verdict on an event of `client` (`None`: an unknown address) at `now`, and the count
    /// of a client let go to make room, if it had one.
    pub(crate) fn check(
        &self,
        client: Option<std::net::IpAddr>,
        now: std::time::Instant,
    ) -> (Verdict, Option<(Option<std::net::IpAddr>, u64)>) {
        let mut slots = crate::util::lock(&self.slots);
        let mut evicted = None;
        if !slots.contains_key(&client) && slots.len() >= PER_CLIENT_SLOTS {
            let window = self.window;
            slots
                .retain(|_, s| now.saturating_duration_since(s.since) < window || s.suppressed > 0);
            if slots.len() >= PER_CLIENT_SLOTS {
                let oldest = slots
                    .iter()
                    .min_by_key(|(_, s)| s.since)
                    .map(|(k, s)| (*k, *s));
                if let Some((k, s)) = oldest {
                    slots.remove(&k);
                    evicted = (s.suppressed > 0).then_some((k, s.suppressed));
                }
            }
        }
        let slot = slots.entry(client).or_insert(Slot {
            since: now,
            written: 0,
            suppressed: 0,
        });
        let mut suppressed_before = 0;
        if now.saturating_duration_since(slot.since) >= self.window {
            suppressed_before = std::mem::take(&mut slot.suppressed);
            slot.since = now;
            slot.written = 0;
        }
        let verdict = if slot.written < self.max {
            slot.written += 1;
            Verdict::Write { suppressed_before }
        } else {
            slot.suppressed += 1;
            Verdict::Suppress
        };
        (verdict, evicted)
    }

    /// How many clients are tracked.
    #[cfg(test)]
    pub(crate) fn tracked(&self) -> usize {
        crate::util::lock(&self.slots).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;
    use std::time::{Duration, Instant};

    #[test]
    fn a_client_gets_its_events_then_a_count() {
        let p = PerClient::new(3, Duration::from_secs(60));
        let a: Option<IpAddr> = Some("10.0.0.1".parse().unwrap());
        let b: Option<IpAddr> = Some("10.0.0.2".parse().unwrap());
        let t = Instant::now();
        for _ in 0..3 {
            assert_eq!(
                p.check(a, t).0,
                Verdict::Write {
                    suppressed_before: 0
                }
            );
        }
        for _ in 0..5 {
            assert_eq!(p.check(a, t).0, Verdict::Suppress);
        }
        // Another client is not affected.
        assert_eq!(
            p.check(b, t).0,
            Verdict::Write {
                suppressed_before: 0
            }
        );
        // After the window, the count comes with the next event.
        let later = t + Duration::from_secs(61);
        assert_eq!(
            p.check(a, later).0,
            Verdict::Write {
                suppressed_before: 5
            }
        );
    }

    #[test]
    fn the_table_is_bounded_and_hands_back_counts() {
        let p = PerClient::new(1, Duration::from_secs(60));
        let t = Instant::now();
        let ip = |i: u32| Some(IpAddr::from(i.to_be_bytes()));
        let mut handed_back = Vec::new();
        for i in 0..10_000u32 {
            let at = t + Duration::from_micros(u64::from(i));
            if let (_, Some(e)) = p.check(ip(i), at) {
                handed_back.push(e);
            }
            if i == 0 {
                // The first client's second event is counted, not written.
                assert_eq!(p.check(ip(0), at).0, Verdict::Suppress);
            }
        }
        assert_eq!(p.tracked(), PER_CLIENT_SLOTS);
        // Its count came back when it was let go for room: nothing counted is lost.
        assert_eq!(handed_back, vec![(ip(0), 1)]);
    }
}
