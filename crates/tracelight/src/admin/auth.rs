//! Token checks in constant time, and the per-client throttle on failed attempts.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;

use crate::util::lock;
use crate::Error;

/// The shortest token accepted, in bytes.
///
/// ```
/// assert_eq!(tracelight::admin::MIN_TOKEN_LEN, 16);
/// ```
pub const MIN_TOKEN_LEN: usize = 16;

/// The longest token accepted, in bytes.
///
/// ```
/// assert_eq!(tracelight::admin::MAX_TOKEN_LEN, 256);
/// ```
pub const MAX_TOKEN_LEN: usize = 256;

/// The header that may carry the token (the other way is `Authorization: Bearer <token>`).
///
/// ```
/// assert_eq!(tracelight::admin::TOKEN_HEADER, "x-admin-token");
/// ```
pub const TOKEN_HEADER: &str = "x-admin-token";

/// A configured token, padded to [`MAX_TOKEN_LEN`] so that every comparison reads the same number
/// of bytes whatever the lengths of the two sides.
pub(crate) struct Secret {
    padded: [u8; MAX_TOKEN_LEN],
    len: usize,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    /// Checks a token given in code: 16 to 256 visible ASCII characters (what an HTTP header can
    /// carry without quoting or trimming).
    pub(crate) fn new(token: &str) -> Result<Secret, Error> {
        let bytes = token.as_bytes();
        let refuse = |reason: String| Error::InvalidSetting {
            setting: "admin token".to_owned(),
            reason,
        };
        if bytes.is_empty() {
            return Err(refuse("the token is empty".to_owned()));
        }
        if bytes.len() < MIN_TOKEN_LEN {
            return Err(refuse(format!(
                "the token is {} bytes long; at least {MIN_TOKEN_LEN} are required (32 random \
                 characters or more are recommended)",
                bytes.len()
            )));
        }
        if bytes.len() > MAX_TOKEN_LEN {
            return Err(refuse(format!(
                "the token is {} bytes long; at most {MAX_TOKEN_LEN} are accepted",
                bytes.len()
            )));
        }
        if let Some(pos) = bytes.iter().position(|b| !(0x21..=0x7e).contains(b)) {
            return Err(refuse(format!(
                "the token has a character at byte {pos} that is not visible ASCII (spaces, \
                 control characters and non-ASCII cannot be sent in a header as they are)"
            )));
        }
        let mut padded = [0u8; MAX_TOKEN_LEN];
        padded[..bytes.len()].copy_from_slice(bytes);
        Ok(Secret {
            padded,
            len: bytes.len(),
        })
    }

    /// Whether `given` is this token. Reads all [`MAX_TOKEN_LEN`] bytes of both sides whatever
    /// they hold, so the time taken says nothing about the token: not its length, not how many
    /// leading bytes a guess got right.
    pub(crate) fn matches(&self, given: &[u8]) -> bool {
        let mut padded = [0u8; MAX_TOKEN_LEN];
        // Depends only on the length of what the client sent, which the client knows.
        let n = given.len().min(MAX_TOKEN_LEN);
        padded[..n].copy_from_slice(&given[..n]);
        let bytes = diff(&self.padded, &padded);
        let lengths = (self.len ^ given.len()) as u64;
        std::hint::black_box(u64::from(bytes) | lengths) == 0
    }
}

/// The OR of the XOR of every pair of bytes: zero exactly when the two arrays are equal. There is
/// no early exit — every byte is read, and the accumulator goes through `black_box` so that the
/// compiler cannot add one (e.g. stop once every bit is set).
pub(crate) fn diff(a: &[u8; MAX_TOKEN_LEN], b: &[u8; MAX_TOKEN_LEN]) -> u8 {
    let mut acc = 0u8;
    for (x, y) in a.iter().zip(b.iter()) {
        acc = std::hint::black_box(acc | (x ^ y));
    }
    acc
}

/// Whether `given` is one of `secrets`, checking every one of them.
pub(crate) fn any_matches(secrets: &[Secret], given: &[u8]) -> bool {
    let mut ok = false;
    for s in secrets {
        // `|` on bools does not short-circuit: every secret is compared.
        ok |= s.matches(given);
    }
    ok
}

/// The token a request presents: `Authorization: Bearer <token>` (scheme case-insensitive), else
/// `X-Admin-Token: <token>`. `None` when there is neither.
pub(crate) fn presented(headers: &HeaderMap) -> Option<&[u8]> {
    for value in headers.get_all(axum::http::header::AUTHORIZATION) {
        let bytes = value.as_bytes();
        let Some(space) = bytes.iter().position(|b| *b == b' ') else {
            continue;
        };
        if bytes[..space].eq_ignore_ascii_case(b"bearer") {
            return Some(bytes[space..].trim_ascii());
        }
    }
    headers.get(TOKEN_HEADER).map(|v| v.as_bytes().trim_ascii())
}

/// Whose failures count together: one address (IPv6 by its /64, what one host usually holds), or
/// everyone whose address is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum ClientKey {
    Ip(IpAddr),
    Shared,
}

impl ClientKey {
    pub(crate) fn of(ip: Option<IpAddr>) -> ClientKey {
        match ip {
            None => ClientKey::Shared,
            Some(IpAddr::V4(v4)) => ClientKey::Ip(IpAddr::V4(v4)),
            Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
                Some(v4) => ClientKey::Ip(IpAddr::V4(v4)),
                None => {
                    let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                    ClientKey::Ip(IpAddr::V6(Ipv6Addr::from(prefix)))
                }
            },
        }
    }
}

/// How many clients' failures are tracked by default ([`AdminRouter::throttle_clients`](super::AdminRouter::throttle_clients));
/// past this, a new failing client takes the place of one that is not locked out, the one whose
/// last failure is the oldest.
pub(crate) const MAX_CLIENTS: usize = 4096;

#[derive(Debug, Default)]
struct Failures {
    times: VecDeque<Instant>,
    /// Whether the current lockout was already reported.
    announced: bool,
}

/// What becomes of an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The token is right: served.
    Allowed,
    /// The token is wrong (or missing): counted as a failure, answered 401.
    Refused,
    /// The client is locked out: answered 429 whatever it sent.
    Blocked(Blocked),
}

/// Failed attempts per client in a sliding window.
#[derive(Debug)]
pub(crate) struct Throttle {
    pub(crate) max_failures: u32,
    pub(crate) window: Duration,
    /// How many clients with failures are tracked.
    max_clients: usize,
    clients: Mutex<HashMap<ClientKey, Failures>>,
}

/// A client that is locked out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Blocked {
    /// When the oldest failure in the window expires (a whole number of seconds, at least 1).
    pub(crate) retry_after: u64,
    /// Whether this is the first refused request of this lockout (to report it once).
    pub(crate) first: bool,
}

impl Throttle {
    pub(crate) fn new(max_failures: u32, window: Duration) -> Throttle {
        Throttle {
            max_failures: max_failures.max(1),
            window: window.max(Duration::from_millis(1)),
            max_clients: MAX_CLIENTS,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// How many clients with failures are tracked (at least 16).
    pub(crate) fn with_max_clients(mut self, n: usize) -> Throttle {
        self.max_clients = n.max(16);
        self
    }

    fn expire(&self, f: &mut Failures, now: Instant) {
        while f
            .times
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= self.window)
        {
            f.times.pop_front();
        }
    }

    /// Whether `client` has used up its failed attempts for now.
    /// Only the client's own failures count: a client that has none is never refused because of
    /// others'.
    pub(crate) fn blocked(&self, client: ClientKey, now: Instant) -> Option<Blocked> {
        let mut map = lock(&self.clients);
        let f = map.get_mut(&client)?;
        self.lockout(f, now)
    }

    /// The lockout of a client with these failures, if it is locked out.
    fn lockout(&self, f: &mut Failures, now: Instant) -> Option<Blocked> {
        self.expire(f, now);
        if f.times.len() < self.max_failures as usize {
            f.announced = false;
            return None;
        }
        let oldest = f.times.front().copied().unwrap_or(now);
        let left = self
            .window
            .saturating_sub(now.saturating_duration_since(oldest));
        let retry_after = left.as_secs() + u64::from(left.subsec_nanos() > 0);
        let first = !f.announced;
        f.announced = true;
        Some(Blocked {
            retry_after: retry_after.max(1),
            first,
        })
    }

    /// Decides an attempt whose token was found right (`ok`) or wrong, in one step: a client
    /// that got locked out meanwhile (by requests of its own running in parallel) is refused
    /// whatever it sent, so a burst of parallel guesses gets no more answers than guesses in a
    /// row would. A wrong token counts as a failure.
    pub(crate) fn settle(&self, client: ClientKey, now: Instant, ok: bool) -> Outcome {
        let mut map = lock(&self.clients);
        if let Some(f) = map.get_mut(&client) {
            if let Some(blocked) = self.lockout(f, now) {
                return Outcome::Blocked(blocked);
            }
        }
        // A right token takes no place in the table.
        if ok {
            return Outcome::Allowed;
        }
        if !map.contains_key(&client) && map.len() >= self.max_clients {
            self.make_room(&mut map, now);
        }
        let f = map.entry(client).or_default();
        f.times.push_back(now);
        while f.times.len() > self.max_failures as usize {
            f.times.pop_front();
        }
        Outcome::Refused
    }

    /// Frees a place in a full table: the clients whose failures have all aged out go, and if
    /// none has, a client not locked out whose last failure is the oldest, else the oldest
    /// locked-out one (so that a flood of new addresses moves through the table instead of
    /// folding every new client into one locked bucket).
    fn make_room(&self, map: &mut HashMap<ClientKey, Failures>, now: Instant) {
        let window = self.window;
        map.retain(|_, f| {
            f.times
                .back()
                .is_some_and(|t| now.saturating_duration_since(*t) < window)
        });
        if map.len() >= self.max_clients {
            // A client not locked out goes before one that is (letting a locked-out client go
            // would give it its attempts back), the one whose last failure is the oldest first.
            let max = self.max_failures as usize;
            let oldest = map
                .iter()
                .min_by_key(|(_, f)| (f.times.len() >= max, f.times.back().copied()))
                .map(|(k, _)| *k);
            if let Some(k) = oldest {
                map.remove(&k);
            }
        }
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        lock(&self.clients).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn padded(bytes: &[u8]) -> [u8; MAX_TOKEN_LEN] {
        let mut out = [0u8; MAX_TOKEN_LEN];
        out[..bytes.len()].copy_from_slice(bytes);
        out
    }

    #[test]
    fn diff_reads_every_byte() {
        // Differences at the first and at the last byte: an early exit at the first difference
        // would miss the bit of the last one.
        let a = [0u8; MAX_TOKEN_LEN];
        let mut b = [0u8; MAX_TOKEN_LEN];
        b[0] = 0x01;
        b[MAX_TOKEN_LEN - 1] = 0x80;
        assert_eq!(diff(&a, &b), 0x81);
        // Every position contributes its own bit.
        for i in 0..MAX_TOKEN_LEN {
            let mut c = [0u8; MAX_TOKEN_LEN];
            c[i] = 1 << (i % 8);
            c[0] |= 0x01;
            let expected = 0x01 | (1u8 << (i % 8));
            assert_eq!(diff(&a, &c), expected, "position {i}");
        }
        assert_eq!(diff(&padded(b"same"), &padded(b"same")), 0);
    }

    #[test]
    fn matches_exactly_and_only() {
        let s = Secret::new("correct-horse-battery-staple").unwrap();
        assert!(s.matches(b"correct-horse-battery-staple"));
        for wrong in [
            &b""[..],
            b"c",
            b"correct-horse-battery-stapl",
            b"correct-horse-battery-staplf",
            b"correct-horse-battery-staple\0",
            b"correct-horse-battery-staple-and-more",
            b"CORRECT-HORSE-BATTERY-STAPLE",
            b"xorrect-horse-battery-staple",
            &[b'c'; 300],
        ] {
            assert!(!s.matches(wrong), "{:?}", String::from_utf8_lossy(wrong));
        }
        // A token of the longest length, and a guess that is it plus more bytes (cut off by the
        // padding) differ by their lengths.
        let long = "a".repeat(MAX_TOKEN_LEN);
        let s = Secret::new(&long).unwrap();
        assert!(s.matches(long.as_bytes()));
        assert!(!s.matches("a".repeat(MAX_TOKEN_LEN + 1).as_bytes()));
    }

    #[test]
    fn any_of_several_tokens() {
        let secrets = [
            Secret::new("old-token-0123456789").unwrap(),
            Secret::new("new-token-0123456789").unwrap(),
        ];
        assert!(any_matches(&secrets, b"old-token-0123456789"));
        assert!(any_matches(&secrets, b"new-token-0123456789"));
        assert!(!any_matches(&secrets, b"mid-token-0123456789"));
        assert!(!any_matches(&[], b"anything"));
    }

    #[test]
    fn weak_tokens_are_refused() {
        for bad in [
            "",
            "short",
            "fifteen-bytes!!",
            "has a space in it 123",
            "tab\tinside-the-token",
            "non-ascii-é-token-1234",
        ] {
            assert!(
                matches!(Secret::new(bad), Err(Error::InvalidSetting { .. })),
                "{bad:?}"
            );
        }
        assert!(Secret::new(&"x".repeat(MAX_TOKEN_LEN + 1)).is_err());
        assert!(Secret::new("sixteen-bytes-ok").is_ok());
    }

    #[test]
    fn bearer_then_header() {
        let mut h = HeaderMap::new();
        assert_eq!(presented(&h), None);
        h.insert(TOKEN_HEADER, "header-token".parse().unwrap());
        assert_eq!(presented(&h), Some(&b"header-token"[..]));
        h.insert("authorization", "Basic dXNlcjpwYXNz".parse().unwrap());
        assert_eq!(presented(&h), Some(&b"header-token"[..]));
        h.insert("authorization", "bEaReR   bearer-token ".parse().unwrap());
        assert_eq!(presented(&h), Some(&b"bearer-token"[..]));
    }

    #[test]
    fn throttle_after_max_failures_in_window() {
        let t = Throttle::new(3, Duration::from_secs(60));
        let a = ClientKey::of(Some("10.0.0.1".parse().unwrap()));
        let b = ClientKey::of(Some("10.0.0.2".parse().unwrap()));
        let now = Instant::now();
        for _ in 0..3 {
            assert_eq!(t.blocked(a, now), None);
            assert_eq!(t.settle(a, now, false), Outcome::Refused);
        }
        let first = t.blocked(a, now).unwrap();
        assert!(first.first);
        assert_eq!(first.retry_after, 60);
        let again = t.blocked(a, now + Duration::from_millis(10_500)).unwrap();
        assert!(!again.first);
        assert_eq!(again.retry_after, 50);
        // Another client is not affected.
        assert_eq!(t.blocked(b, now), None);
        // The window slides: a minute later, attempts are checked again.
        assert_eq!(t.blocked(a, now + Duration::from_secs(60)), None);
    }

    #[test]
    fn a_lockout_reached_meanwhile_refuses_even_the_right_token() {
        let t = Throttle::new(2, Duration::from_secs(60));
        let a = ClientKey::of(Some("10.0.0.1".parse().unwrap()));
        let now = Instant::now();
        // Three attempts that all passed the first check before any was decided.
        assert_eq!(t.blocked(a, now), None);
        assert_eq!(t.settle(a, now, false), Outcome::Refused);
        assert_eq!(t.settle(a, now, false), Outcome::Refused);
        assert!(matches!(t.settle(a, now, false), Outcome::Blocked(_)));
        assert!(matches!(t.settle(a, now, true), Outcome::Blocked(_)));
        // Successes are not failures: they never lock a client out.
        let b = ClientKey::of(Some("10.0.0.2".parse().unwrap()));
        for _ in 0..10 {
            assert_eq!(t.settle(b, now, true), Outcome::Allowed);
        }
        assert_eq!(t.blocked(b, now), None);
    }

    #[test]
    fn ipv6_counts_by_prefix_and_mapped_ipv4_as_ipv4() {
        let x = ClientKey::of(Some("2001:db8::1".parse().unwrap()));
        let y = ClientKey::of(Some("2001:db8::ffff:2".parse().unwrap()));
        let z = ClientKey::of(Some("2001:db8:0:1::1".parse().unwrap()));
        assert_eq!(x, y);
        assert_ne!(x, z);
        assert_eq!(
            ClientKey::of(Some("::ffff:10.0.0.1".parse().unwrap())),
            ClientKey::of(Some("10.0.0.1".parse().unwrap()))
        );
        assert_eq!(ClientKey::of(None), ClientKey::Shared);
    }

    #[test]
    fn a_full_table_makes_room_and_never_refuses_a_new_client() {
        let t = Throttle::new(2, Duration::from_secs(60));
        let start = Instant::now();
        let ip = |i: u32| ClientKey::of(Some(IpAddr::from(i.to_be_bytes())));
        for i in 0..MAX_CLIENTS as u32 {
            let at = start + Duration::from_millis(u64::from(i));
            t.settle(ip(i), at, false);
            t.settle(ip(i), at, false);
        }
        assert_eq!(t.tracked(), MAX_CLIENTS);
        let now = start + Duration::from_secs(10);
        // Every tracked client is locked out; a new one is not, and its right token opens.
        assert!(t.blocked(ip(7), now).is_some());
        let fresh = |i: u32| ip(0xc000_0000 + i);
        assert_eq!(t.blocked(fresh(1), now), None);
        assert_eq!(t.settle(fresh(1), now, true), Outcome::Allowed);
        assert_eq!(t.tracked(), MAX_CLIENTS, "a right token takes no place");
        // A new failing client takes the place of the one whose last failure is the oldest.
        assert_eq!(t.settle(fresh(2), now, false), Outcome::Refused);
        assert_eq!(t.tracked(), MAX_CLIENTS);
        assert_eq!(t.blocked(ip(0), now), None, "the oldest went");
        assert!(
            t.blocked(ip(MAX_CLIENTS as u32 - 1), now).is_some(),
            "the newest stays"
        );
        assert_eq!(t.settle(fresh(2), now, false), Outcome::Refused);
        assert!(matches!(t.settle(fresh(2), now, true), Outcome::Blocked(_)));
        // Once the old entries age out they are dropped first.
        let later = start + Duration::from_secs(120);
        t.settle(fresh(4), later, false);
        assert_eq!(t.tracked(), 1);
    }

    #[test]
    fn a_full_table_keeps_its_locked_out_clients() {
        let t = Throttle::new(2, Duration::from_secs(60));
        let start = Instant::now();
        let ip = |i: u32| ClientKey::of(Some(IpAddr::from(i.to_be_bytes())));
        // Client 0 is locked out first; the others fail once each, later.
        t.settle(ip(0), start, false);
        t.settle(ip(0), start, false);
        for i in 1..MAX_CLIENTS as u32 {
            t.settle(ip(i), start + Duration::from_millis(u64::from(i)), false);
        }
        let now = start + Duration::from_secs(10);
        // New failing clients take the places of clients that are not locked out.
        for i in 0..100u32 {
            t.settle(ip(0xc000_0000 + i), now, false);
        }
        assert!(
            t.blocked(ip(0), now).is_some(),
            "the locked-out client stays locked out"
        );
        assert_eq!(t.blocked(ip(1), now), None);
        assert_eq!(t.tracked(), MAX_CLIENTS);
    }

    #[test]
    fn the_table_size_is_a_setting() {
        let t = Throttle::new(5, Duration::from_secs(60)).with_max_clients(16);
        let now = Instant::now();
        for i in 0..1000u32 {
            t.settle(
                ClientKey::of(Some(IpAddr::from(i.to_be_bytes()))),
                now,
                false,
            );
        }
        assert_eq!(t.tracked(), 16);
    }
}
