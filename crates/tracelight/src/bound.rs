//! Bounds on the in-memory tables whose keys come from input: timing aggregates by operation,
//! error groups and security event types. Past its bound, a table counts new keys under one
//! `other` entry, and says so once on stderr.

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
            crate::util::say(format!(
                "tracelight: {table}: more than {bound} distinct keys; new ones are counted under \
                 \"{OTHER}\" (raise the bound with {setting})"
            ));
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

#[cfg(feature = "http")]
pub(crate) use per_client::PerClient;

#[cfg(feature = "http")]
mod per_client {
    use std::collections::HashMap;
    use std::net::{IpAddr, Ipv6Addr};
    use std::sync::Mutex;
    use std::time::{Duration, Instant};

    use smallvec::SmallVec;

    /// How many clients [`PerClient`] tracks.
    pub(crate) const SLOTS: usize = 4096;

    /// At most `max` events per client per window, for events a client can cause at will (a
    /// malformed request id on every request): the rest are counted, and each count is given
    /// back once its window is over, with the next event of any client. A client is its address,
    /// an IPv6 one by its /64 (what one host holds). At most [`SLOTS`] clients are tracked; a
    /// full table lets go of the client whose window is the oldest, giving back its count.
    #[derive(Debug)]
    pub(crate) struct PerClient {
        max: u32,
        window: Duration,
        state: Mutex<State>,
    }

    #[derive(Debug, Default)]
    struct State {
        slots: HashMap<Option<IpAddr>, Slot>,
        /// The earliest end of a window that holds a count (`None`: none does).
        due: Option<Instant>,
    }

    #[derive(Debug, Clone, Copy)]
    struct Slot {
        since: Instant,
        written: u32,
        suppressed: u64,
    }

    /// What to do with one client's event.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub(crate) struct Verdict {
        /// Whether to write it (else it is counted).
        pub(crate) write: bool,
        /// Counts to say first: clients whose window is over, with how many of their events
        /// were counted, not written.
        pub(crate) counted: SmallVec<[(Option<IpAddr>, u64); 2]>,
    }

    /// The key of a client: IPv4 as is (an IPv4-mapped IPv6 address as IPv4), IPv6 by its /64.
    fn key(ip: Option<IpAddr>) -> Option<IpAddr> {
        ip.map(|ip| match ip {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
            },
            v4 => v4,
        })
    }

    impl PerClient {
        pub(crate) fn new(max: u32, window: Duration) -> PerClient {
            PerClient {
                max: max.max(1),
                window,
                state: Mutex::default(),
            }
        }

        /// The verdict on an event of `client` (`None`: an unknown address) at `now`.
        pub(crate) fn check(&self, client: Option<IpAddr>, now: Instant) -> Verdict {
            let client = key(client);
            let mut st = crate::util::lock(&self.state);
            let mut counted = SmallVec::new();
            let window = self.window;
            if st.due.is_some_and(|d| now >= d) {
                // Windows over with counts in them: given back now.
                let mut next = None::<Instant>;
                for (k, s) in st.slots.iter_mut() {
                    if s.suppressed == 0 {
                        continue;
                    }
                    if now.saturating_duration_since(s.since) >= window {
                        counted.push((*k, std::mem::take(&mut s.suppressed)));
                    } else {
                        let end = s.since + window;
                        next = Some(next.map_or(end, |n| n.min(end)));
                    }
                }
                st.due = next;
            }
            if !st.slots.contains_key(&client) && st.slots.len() >= SLOTS {
                st.slots.retain(|_, s| {
                    now.saturating_duration_since(s.since) < window || s.suppressed > 0
                });
                if st.slots.len() >= SLOTS {
                    let oldest = st
                        .slots
                        .iter()
                        .min_by_key(|(_, s)| s.since)
                        .map(|(k, s)| (*k, *s));
                    if let Some((k, s)) = oldest {
                        st.slots.remove(&k);
                        if s.suppressed > 0 {
                            counted.push((k, s.suppressed));
                        }
                    }
                }
            }
            let slot = st.slots.entry(client).or_insert(Slot {
                since: now,
                written: 0,
                suppressed: 0,
            });
            if now.saturating_duration_since(slot.since) >= window {
                if slot.suppressed > 0 {
                    counted.push((client, std::mem::take(&mut slot.suppressed)));
                }
                slot.since = now;
                slot.written = 0;
            }
            let write = slot.written < self.max;
            if write {
                slot.written += 1;
            } else {
                slot.suppressed += 1;
                let end = slot.since + window;
                st.due = Some(st.due.map_or(end, |d| d.min(end)));
            }
            Verdict { write, counted }
        }

        /// How many clients are tracked.
        #[cfg(test)]
        pub(crate) fn tracked(&self) -> usize {
            crate::util::lock(&self.state).slots.len()
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn ip(s: &str) -> Option<IpAddr> {
            Some(s.parse().unwrap_or_else(|e| panic!("{s}: {e}")))
        }

        #[test]
        fn a_client_gets_its_events_then_a_count_given_back_after_its_window() {
            let p = PerClient::new(3, Duration::from_secs(60));
            let (a, b) = (ip("10.0.0.1"), ip("10.0.0.2"));
            let t = Instant::now();
            for _ in 0..3 {
                assert!(p.check(a, t).write);
            }
            for _ in 0..5 {
                assert!(!p.check(a, t).write);
            }
            // Another client is not affected.
            let v = p.check(b, t);
            assert!(v.write && v.counted.is_empty());
            // After the window, the count comes with the next event of any client.
            let v = p.check(b, t + Duration::from_secs(61));
            assert_eq!(v.counted.as_slice(), &[(a, 5)]);
            assert!(p.check(a, t + Duration::from_secs(62)).counted.is_empty());
        }

        #[test]
        fn an_ipv6_host_is_one_client_whatever_its_addresses() {
            let p = PerClient::new(2, Duration::from_secs(60));
            let t = Instant::now();
            let writes = (0..10)
                .filter(|i| p.check(ip(&format!("2001:db8:1:2::{i:x}")), t).write)
                .count();
            assert_eq!(writes, 2);
            assert_eq!(p.tracked(), 1);
        }

        #[test]
        fn the_table_is_bounded_and_gives_back_counts() {
            let p = PerClient::new(1, Duration::from_secs(60));
            let t = Instant::now();
            let at = |i: u32| Some(IpAddr::from(i.to_be_bytes()));
            let mut given_back = Vec::new();
            for i in 0..10_000u32 {
                let now = t + Duration::from_micros(u64::from(i));
                given_back.extend(p.check(at(i), now).counted);
                if i == 0 {
                    // The first client's second event is counted, not written.
                    assert!(!p.check(at(0), now).write);
                }
            }
            assert_eq!(p.tracked(), SLOTS);
            // Its count came back when it was let go for room: nothing counted is lost.
            assert_eq!(given_back, vec![(at(0), 1)]);
        }
    }
}
