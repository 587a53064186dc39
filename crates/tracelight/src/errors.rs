//! Error tracking: fingerprints, counts, suppression of repeats; and security event counts.
//!
//! Every ERROR event gets a **fingerprint**: a hash of its callsite (target, file, line) and its
//! error type — not of the message, whose variable parts (ids, amounts) would split one problem into
//! thousands. It is written in the line as `error_fingerprint`, so logs can be grouped by it, and
//! counted: total, in the last minute and hour, first and last seen, with a sample line.
//!
//! **Suppression** (opt-in, [`ErrorConfig::suppress_after`]): after N identical errors in a window,
//! further ones are counted, not written; when the window closes, a line says how many were
//! suppressed (`"message":"suppressed 1234 repeats of an error"`, with `error_fingerprint` and
//! `suppressed`). The line is written with the next event after the window ends, or at flush and
//! shutdown, whichever comes first.
//!
//! ```
//! use std::time::Duration;
//! let w = tracelight::sink::MemoryWriter::new();
//! let g = tracelight::builder()
//!     .errors(tracelight::errors::ErrorConfig::default().suppress_after(3, Duration::from_secs(60)))
//!     .writer(w.clone())
//!     .init_local()
//!     .unwrap();
//! for _ in 0..10 {
//!     tracing::error!(order_id = 7, "payment failed");
//! }
//! g.flush();
//! assert_eq!(w.lines().len(), 3);
//! let summary = &tracelight::errors().groups[0];
//! assert_eq!((summary.count, summary.suppressed), (10, 7));
//! ```

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::util::lock;

/// How many recent error lines are kept.
pub const RECENT: usize = 50;

/// How many error groups are tracked by default (see [`ErrorConfig::max_groups`]).
pub const DEFAULT_MAX_GROUPS: usize = 1000;

/// How many security event types are counted by default (see
/// [`ErrorConfig::max_security_types`]).
pub const DEFAULT_MAX_SECURITY_TYPES: usize = 256;

/// The longest line kept as a group's sample, a recent error or a recent security event, in
/// bytes (longer ones are cut, with `…`; the line written is whole).
pub const LINE_MAX: usize = 8192;

/// The longest message kept for a group, in bytes.
pub const MESSAGE_MAX: usize = 1024;

/// The fingerprint of the group that counts errors past [`ErrorConfig::max_groups`].
const OTHER_GROUP: u64 = u64::MAX;

/// Error tracking settings.
///
/// ```
/// use std::time::Duration;
/// let c = tracelight::errors::ErrorConfig::default().suppress_after(100, Duration::from_secs(60));
/// # let _ = c;
/// ```
#[derive(Debug, Clone)]
pub struct ErrorConfig {
    pub(crate) suppress: Option<(u32, Duration)>,
    pub(crate) max_groups: usize,
    pub(crate) max_security_types: usize,
}

impl Default for ErrorConfig {
    fn default() -> Self {
        ErrorConfig {
            suppress: None,
            max_groups: DEFAULT_MAX_GROUPS,
            max_security_types: DEFAULT_MAX_SECURITY_TYPES,
        }
    }
}

impl ErrorConfig {
    /// How many error groups (fingerprints) are tracked (default [`DEFAULT_MAX_GROUPS`], at
    /// least 1). An error whose type or message carries input (an id in the message) makes a
    /// group per value. Past the bound, new fingerprints are counted in one group named `other`
    /// (fingerprint `ffffffffffffffff`, never suppressed: its lines are all written), and stderr
    /// says so once. A group keeps at most [`MESSAGE_MAX`] bytes of message and [`LINE_MAX`] of
    /// sample: about 5 KB for a usual line, 13 KB at most.
    ///
    /// ```
    /// let c = tracelight::errors::ErrorConfig::default().max_groups(5000);
    /// # let _ = c;
    /// ```
    pub fn max_groups(mut self, n: usize) -> Self {
        self.max_groups = n.max(1);
        self
    }

    /// How many security event types (the `event` field) are counted one by one (default
    /// [`DEFAULT_MAX_SECURITY_TYPES`], at least 1); past the bound, new types are counted as
    /// `other`, and stderr says so once.
    ///
    /// ```
    /// let c = tracelight::errors::ErrorConfig::default().max_security_types(64);
    /// # let _ = c;
    /// ```
    pub fn max_security_types(mut self, n: usize) -> Self {
        self.max_security_types = n.max(1);
        self
    }

    /// After `n` identical errors (same fingerprint) within `window`, count further ones instead of
    /// writing them, and write a summary when the window closes.
    pub fn suppress_after(mut self, n: u32, window: Duration) -> Self {
        self.suppress = Some((n.max(1), window.max(Duration::from_millis(1))));
        self
    }
}

/// FNV-1a, 64 bits: stable across processes and versions, so fingerprints group across services.
pub(crate) fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for &b in *p {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The fingerprint of an error at a callsite: 16 lower-case hex digits.
///
/// ```
/// let a = tracelight::errors::fingerprint("shop::pay", Some("src/pay.rs"), Some(42), Some("PaymentError"));
/// let b = tracelight::errors::fingerprint("shop::pay", Some("src/pay.rs"), Some(42), Some("PaymentError"));
/// assert_eq!(a, b);
/// assert_eq!(a.len(), 16);
/// ```
pub fn fingerprint(
    target: &str,
    file: Option<&str>,
    line: Option<u32>,
    error_type: Option<&str>,
) -> String {
    format!("{:016x}", fingerprint_u64(target, file, line, error_type))
}

pub(crate) fn fingerprint_u64(
    target: &str,
    file: Option<&str>,
    line: Option<u32>,
    error_type: Option<&str>,
) -> u64 {
    let line = line.unwrap_or(0).to_le_bytes();
    fnv1a(&[
        target.as_bytes(),
        file.unwrap_or("").as_bytes(),
        &line,
        error_type.unwrap_or("").as_bytes(),
    ])
}

/// A sliding count over `N` slots of `slot_secs` seconds.
#[derive(Debug, Clone)]
struct Window<const N: usize> {
    slot_secs: u64,
    slots: [(u64, u32); N],
}

impl<const N: usize> Window<N> {
    fn new(slot_secs: u64) -> Self {
        Window {
            slot_secs,
            slots: [(u64::MAX, 0); N],
        }
    }

    fn add(&mut self, now_secs: u64) {
        let slot = now_secs / self.slot_secs;
        let e = &mut self.slots[(slot % N as u64) as usize];
        if e.0 != slot {
            *e = (slot, 0);
        }
        e.1 += 1;
    }

    /// The count of each of the last `N` slots, oldest first (the last is the current one).
    fn series(&self, now_secs: u64) -> Vec<u32> {
        let slot = now_secs / self.slot_secs;
        (0..N as u64)
            .map(|back| {
                let want = slot.wrapping_sub(N as u64 - 1 - back);
                let e = &self.slots[(want % N as u64) as usize];
                if e.0 == want {
                    e.1
                } else {
                    0
                }
            })
            .collect()
    }

    fn count(&self, now_secs: u64) -> u64 {
        let slot = now_secs / self.slot_secs;
        self.slots
            .iter()
            .filter(|(s, _)| *s != u64::MAX && *s + N as u64 > slot && *s <= slot)
            .map(|(_, c)| u64::from(*c))
            .sum()
    }
}

struct Group {
    message: String,
    target: String,
    /// The callsite's file and line (the summary of its repeats points there).
    file: Option<String>,
    line: Option<u32>,
    error_type: Option<String>,
    count: u64,
    suppressed: u64,
    first_seen: SystemTime,
    last_seen: SystemTime,
    /// The first line written, as its bytes (text when a snapshot is taken).
    sample: Vec<u8>,
    minute: Window<60>,
    hour: Window<60>,
    /// Suppression window: start, errors in it, suppressed in it.
    window_start: SystemTime,
    in_window: u32,
    suppressed_in_window: u64,
}

/// One error group in a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ErrorGroup {
    /// The fingerprint (as in `error_fingerprint`).
    pub fingerprint: String,
    /// The message of the first occurrence.
    pub message: String,
    /// The target of the callsite.
    pub target: String,
    /// The error type, when an error value was recorded.
    pub error_type: Option<String>,
    /// Occurrences in all.
    pub count: u64,
    /// Occurrences in the last minute.
    pub last_minute: u64,
    /// Occurrences in the last hour.
    pub last_hour: u64,
    /// Occurrences counted but not written (suppression).
    pub suppressed: u64,
    /// First occurrence.
    pub first_seen: SystemTime,
    /// Last occurrence.
    pub last_seen: SystemTime,
    /// The first line written for this group.
    pub sample: String,
    /// Occurrences in each of the last 60 minutes, oldest first (the last is the current
    /// minute).
    pub per_minute: Vec<u32>,
}

/// Errors at a glance: groups by fingerprint (most frequent first), the latest lines, the total.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ErrorSnapshot {
    /// Every ERROR event seen.
    pub total: u64,
    /// Groups by fingerprint, most frequent first.
    pub groups: Vec<ErrorGroup>,
    /// The latest error lines written, newest last.
    pub recent: Vec<String>,
    /// How many distinct fingerprints came past [`ErrorConfig::max_groups`] (counted in the
    /// group `other`).
    pub folded: u64,
}

/// A suppression window that closed with errors suppressed.
#[derive(Debug, Clone)]
pub(crate) struct Suppressed {
    pub(crate) fingerprint: u64,
    pub(crate) count: u64,
    pub(crate) message: String,
    pub(crate) window: Duration,
    /// The callsite of the error held back.
    pub(crate) file: Option<String>,
    pub(crate) line: Option<u32>,
}

/// What to do with an error event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    Write,
    Suppress,
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

fn millis(t: SystemTime) -> u64 {
    u64::try_from(t.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis()).unwrap_or(u64::MAX)
}

/// The error tracker of one layer.
pub(crate) struct Tracker {
    config: ErrorConfig,
    overflow: crate::bound::Overflow,
    state: Mutex<State>,
    /// Earliest end of an open suppression window with suppressed errors, in ms (u64::MAX: none).
    next_due: AtomicU64,
}

#[derive(Default)]
struct State {
    total: u64,
    groups: HashMap<u64, Group>,
    /// The last lines written, as their bytes (text when a snapshot is taken).
    recent: VecDeque<Vec<u8>>,
}

impl Tracker {
    pub(crate) fn new(config: ErrorConfig) -> Self {
        Tracker {
            config,
            overflow: crate::bound::Overflow::default(),
            state: Mutex::new(State::default()),
            next_due: AtomicU64::new(u64::MAX),
        }
    }

    /// Counts an error; `line` gives the written line (called only when it will be written or is
    /// the first of its group). `message` gives the message (called for the first of a group).
    pub(crate) fn record(
        &self,
        fp: u64,
        (target, file, line): (&str, Option<&str>, Option<u32>),
        error_type: Option<&str>,
        message: impl FnOnce() -> String,
    ) -> Decision {
        let now = SystemTime::now();
        let mut st = lock(&self.state);
        st.total += 1;
        let fp = if st.groups.len() >= self.config.max_groups && !st.groups.contains_key(&fp) {
            self.overflow.fold(
                "error groups",
                self.config.max_groups,
                "ErrorConfig::max_groups",
            );
            OTHER_GROUP
        } else {
            fp
        };
        let g = st.groups.entry(fp).or_insert_with(|| Group {
            message: if fp == OTHER_GROUP {
                crate::bound::OTHER.to_owned()
            } else {
                crate::bound::truncated(&message(), MESSAGE_MAX).into_owned()
            },
            target: target.to_owned(),
            file: file.map(str::to_owned),
            line,
            error_type: error_type.map(str::to_owned),
            count: 0,
            suppressed: 0,
            first_seen: now,
            last_seen: now,
            sample: Vec::new(),
            minute: Window::new(1),
            hour: Window::new(60),
            window_start: now,
            in_window: 0,
            suppressed_in_window: 0,
        });
        g.count += 1;
        g.last_seen = now;
        g.minute.add(secs(now));
        g.hour.add(secs(now));
        let Some((n, window)) = self.config.suppress else {
            return Decision::Write;
        };
        // Errors of different kinds share `other`: none is suppressed for another's count.
        if fp == OTHER_GROUP {
            return Decision::Write;
        }
        if now.duration_since(g.window_start).unwrap_or_default() >= window
            && g.suppressed_in_window == 0
        {
            g.window_start = now;
            g.in_window = 0;
        }
        g.in_window = g.in_window.saturating_add(1);
        if g.in_window > n {
            g.suppressed += 1;
            g.suppressed_in_window += 1;
            let due = millis(g.window_start + window);
            self.next_due.fetch_min(due, Ordering::Relaxed);
            Decision::Suppress
        } else {
            Decision::Write
        }
    }

    /// Keeps a written error line (the group's sample and the recent list): its bytes, copied
    /// into the buffer of the entry it replaces. The line is tracelight's own, UTF-8 by
    /// construction; it is read as text only when a snapshot is taken.
    pub(crate) fn written(&self, fp: u64, line: &[u8]) {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let mut st = lock(&self.state);
        let mut kept = if st.recent.len() == RECENT {
            st.recent.pop_front().unwrap_or_default()
        } else {
            Vec::new()
        };
        kept.clear();
        if line.len() <= LINE_MAX {
            kept.extend_from_slice(line);
        } else {
            // Cut at a character's start, and say so as `bound::truncated` does.
            let mut end = LINE_MAX;
            while end > 0 && line[end] & 0xC0 == 0x80 {
                end -= 1;
            }
            kept.extend_from_slice(&line[..end]);
            kept.extend_from_slice("…".as_bytes());
        }
        if let Some(g) = st.groups.get_mut(&fp) {
            if g.sample.is_empty() {
                g.sample = kept.clone();
            }
        }
        st.recent.push_back(kept);
    }

    /// Whether some suppression window holds suppressed errors (one atomic load).
    #[inline]
    pub(crate) fn has_due(&self) -> bool {
        self.next_due.load(Ordering::Relaxed) != u64::MAX
    }

    /// Whether a suppression window may have closed (one atomic load).
    #[inline]
    pub(crate) fn maybe_due(&self, now_ms: u64) -> bool {
        self.next_due.load(Ordering::Relaxed) <= now_ms
    }

    /// Closes the suppression windows that ended (all of them with `all`), returning summaries.
    pub(crate) fn take_due(&self, all: bool) -> Vec<Suppressed> {
        let Some((_, window)) = self.config.suppress else {
            return Vec::new();
        };
        let now = SystemTime::now();
        let mut out = Vec::new();
        let mut st = lock(&self.state);
        let mut next = u64::MAX;
        for (fp, g) in &mut st.groups {
            if g.suppressed_in_window == 0 {
                continue;
            }
            let end = g.window_start + window;
            if all || now >= end {
                out.push(Suppressed {
                    fingerprint: *fp,
                    count: g.suppressed_in_window,
                    message: g.message.clone(),
                    window,
                    file: g.file.clone(),
                    line: g.line,
                });
                g.suppressed_in_window = 0;
                g.in_window = 0;
                g.window_start = now;
            } else {
                next = next.min(millis(end));
            }
        }
        self.next_due.store(next, Ordering::Relaxed);
        out
    }

    pub(crate) fn snapshot(&self) -> ErrorSnapshot {
        let st = lock(&self.state);
        let now = secs(SystemTime::now());
        let mut groups: Vec<ErrorGroup> = st
            .groups
            .iter()
            .map(|(fp, g)| ErrorGroup {
                fingerprint: format!("{fp:016x}"),
                message: g.message.clone(),
                target: g.target.clone(),
                error_type: g.error_type.clone(),
                count: g.count,
                last_minute: g.minute.count(now),
                last_hour: g.hour.count(now),
                suppressed: g.suppressed,
                first_seen: g.first_seen,
                last_seen: g.last_seen,
                sample: String::from_utf8_lossy(&g.sample).into_owned(),
                per_minute: g.hour.series(now),
            })
            .collect();
        groups.sort_by(|a, b| b.count.cmp(&a.count).then(b.last_seen.cmp(&a.last_seen)));
        ErrorSnapshot {
            total: st.total,
            groups,
            recent: st
                .recent
                .iter()
                .map(|l| String::from_utf8_lossy(l).into_owned())
                .collect(),
            folded: self.overflow.folded(),
        }
    }
}

/// One security event in a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SecurityEvent {
    /// The `event` field (`login_failed`, `request_id_rejected`…), or `unknown`.
    pub event: String,
    /// The line as written.
    pub line: String,
}

/// Security events at a glance: counts by type and the latest lines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SecuritySnapshot {
    /// Every security event seen.
    pub total: u64,
    /// Counts by event type, most frequent first.
    pub counts: Vec<(String, u64)>,
    /// The latest events, newest last.
    pub recent: Vec<SecurityEvent>,
    /// Events of each type in each of the last 60 minutes, oldest first (the last is the
    /// current minute), in the order of [`counts`](Self::counts).
    pub per_minute: Vec<(String, Vec<u32>)>,
    /// How many distinct event types came past [`ErrorConfig::max_security_types`] (counted
    /// as `other`).
    pub folded: u64,
}

/// Security event counts of one layer.
pub(crate) struct SecurityTracker {
    max_types: usize,
    overflow: crate::bound::Overflow,
    state: Mutex<SecurityState>,
}

#[derive(Default)]
struct SecurityState {
    total: u64,
    counts: HashMap<String, u64>,
    /// Per type, the events of each of the last 60 minutes.
    minutes: HashMap<String, Window<60>>,
    recent: VecDeque<SecurityEvent>,
}

impl SecurityTracker {
    pub(crate) fn new(max_types: usize) -> SecurityTracker {
        SecurityTracker {
            max_types: max_types.max(1),
            overflow: crate::bound::Overflow::default(),
            state: Mutex::default(),
        }
    }

    pub(crate) fn record(&self, event: &str, line: &[u8]) {
        let event = if event.is_empty() { "unknown" } else { event };
        let mut st = lock(&self.state);
        st.total += 1;
        let full = st.counts.len() >= self.max_types;
        let event = if let Some(c) = st.counts.get_mut(event) {
            *c += 1;
            event
        } else if full {
            self.overflow.fold(
                "security event types",
                self.max_types,
                "ErrorConfig::max_security_types",
            );
            *st.counts.entry(crate::bound::OTHER.to_owned()).or_default() += 1;
            crate::bound::OTHER
        } else {
            st.counts.insert(event.to_owned(), 1);
            event
        };
        let now = secs(SystemTime::now());
        match st.minutes.get_mut(event) {
            Some(w) => w.add(now),
            None => {
                let mut w = Window::new(60);
                w.add(now);
                st.minutes.insert(event.to_owned(), w);
            }
        }
        if st.recent.len() == RECENT {
            st.recent.pop_front();
        }
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        st.recent.push_back(SecurityEvent {
            event: event.to_owned(),
            line: crate::bound::truncated(&String::from_utf8_lossy(line), LINE_MAX).into_owned(),
        });
    }

    pub(crate) fn snapshot(&self) -> SecuritySnapshot {
        let st = lock(&self.state);
        let mut counts: Vec<(String, u64)> =
            st.counts.iter().map(|(k, v)| (k.clone(), *v)).collect();
        counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let now = secs(SystemTime::now());
        let per_minute = counts
            .iter()
            .map(|(k, _)| {
                let series = st
                    .minutes
                    .get(k)
                    .map_or_else(|| vec![0; 60], |w| w.series(now));
                (k.clone(), series)
            })
            .collect();
        SecuritySnapshot {
            total: st.total,
            counts,
            per_minute,
            recent: st.recent.iter().cloned().collect(),
            folded: self.overflow.folded(),
        }
    }
}

/// The level a security event is written at, from its severity: `low` → INFO, `medium` and
/// `high` → WARN, `critical` → ERROR (anything else → WARN).
///
/// ```
/// assert_eq!(tracelight::errors::severity_level("critical"), tracing::Level::ERROR);
/// ```
pub fn severity_level(severity: &str) -> tracing::Level {
    match severity {
        "low" | "info" => tracing::Level::INFO,
        "critical" => tracing::Level::ERROR,
        _ => tracing::Level::WARN,
    }
}

/// Emits a security event: an event tagged for the `security` stream, with `event` (its type)
/// and `severity` (`low`, `medium`, `high`, `critical`; the level follows it, see
/// [`severity_level`]), counted by type in [`security`](crate::security).
///
/// ```
/// # let _g = tracelight::builder().writer(tracelight::sink::MemoryWriter::new()).init_local().unwrap();
/// let user = "alice";
/// tracelight::security_event!("login_failed", "medium", user, attempts = 3, "wrong password");
/// assert_eq!(tracelight::security().counts, vec![("login_failed".to_string(), 1)]);
/// ```
#[macro_export]
macro_rules! security_event {
    ($event:expr, $severity:expr, $($rest:tt)+) => {{
        let severity: &str = $severity;
        match $crate::errors::severity_level(severity) {
            ::tracing::Level::INFO => ::tracing::info!(
                target: "tracelight::security",
                stream = "security",
                event = $event,
                severity,
                $($rest)+
            ),
            ::tracing::Level::ERROR => ::tracing::error!(
                target: "tracelight::security",
                stream = "security",
                event = $event,
                severity,
                $($rest)+
            ),
            _ => ::tracing::warn!(
                target: "tracelight::security",
                stream = "security",
                event = $event,
                severity,
                $($rest)+
            ),
        }
    }};
}

/// What [`err`] was last given: the error's address, its type's name, and a check that an error
/// is of that type.
type Hint = (
    usize,
    &'static str,
    fn(&(dyn std::error::Error + 'static)) -> bool,
);

thread_local! {
    static TYPE_HINT: std::cell::Cell<Option<Hint>> = const { std::cell::Cell::new(None) };
}

/// Records an error with its type: `error = tracelight::err(&e)` gives the line's `error.type`
/// the name of `E` (as [`std::any::type_name`] spells it, e.g. `shop::orders::OrderError`).
///
/// The type of a `&dyn Error` cannot be known from the value, so without this helper tracelight
/// takes the leading word of its `Debug` output when that is a type-like name followed by ` {`,
/// `(` or the end: for an enum that is the variant (`Payment`), for `std::io::Error` its kind's
/// constructor (`Os`). The fingerprint of an ERROR event hashes the type, so the two spellings
/// group apart.
///
/// ```
/// #[derive(Debug)]
/// enum OrderError { Payment(u32) }
/// impl std::fmt::Display for OrderError {
///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("payment declined") }
/// }
/// impl std::error::Error for OrderError {}
///
/// let w = tracelight::sink::MemoryWriter::new();
/// let _g = tracelight::builder().writer(w.clone()).init_local().unwrap();
/// let e = OrderError::Payment(402);
/// tracing::error!(error = tracelight::err(&e), "checkout failed");
/// let line: serde_json::Value = serde_json::from_str(&w.lines()[0]).unwrap();
/// assert!(line["error"]["type"].as_str().unwrap().ends_with("OrderError"));
/// ```
pub fn err<E: std::error::Error + 'static>(e: &E) -> &(dyn std::error::Error + 'static) {
    fn is<E: std::error::Error + 'static>(e: &(dyn std::error::Error + 'static)) -> bool {
        e.is::<E>()
    }
    let _ = TYPE_HINT.try_with(|h| {
        h.set(Some((
            e as *const E as *const () as usize,
            std::any::type_name::<E>(),
            is::<E>,
        )))
    });
    e
}

/// The type name [`err`] recorded for `e`, if it was given `e` (by address) on this thread.
pub(crate) fn type_hint(e: &(dyn std::error::Error + 'static)) -> Option<&'static str> {
    let at = e as *const dyn std::error::Error as *const () as usize;
    // The address and the type: zero-sized errors all share one address.
    TYPE_HINT
        .try_with(|h| {
            h.get()
                .filter(|(p, _, is)| *p == at && is(e))
                .map(|(_, n, _)| n)
        })
        .ok()
        .flatten()
}

/// Forgets the hint once an event is handled (recorded or not), so that it never names another
/// error that later sits at the same address.
pub(crate) fn clear_type_hint() {
    let _ = TYPE_HINT.try_with(|h| h.set(None));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_count_recent_occurrences_only() {
        let mut w: Window<60> = Window::new(1);
        for s in 1000..1010 {
            w.add(s);
        }
        assert_eq!(w.count(1010), 10);
        assert_eq!(w.count(1065), 4);
        assert_eq!(w.count(2000), 0);
    }

    #[test]
    fn fingerprints_depend_on_callsite_and_type_only() {
        let a = fingerprint_u64("t", Some("f.rs"), Some(1), Some("E"));
        assert_eq!(a, fingerprint_u64("t", Some("f.rs"), Some(1), Some("E")));
        assert_ne!(a, fingerprint_u64("t", Some("f.rs"), Some(2), Some("E")));
        assert_ne!(a, fingerprint_u64("t", Some("f.rs"), Some(1), Some("F")));
    }

    #[test]
    fn suppression_after_n_in_a_window() {
        let t = Tracker::new(ErrorConfig::default().suppress_after(2, Duration::from_secs(3600)));
        let d: Vec<Decision> = (0..5)
            .map(|_| t.record(1, ("t", None, None), None, || "m".into()))
            .collect();
        assert_eq!(
            d,
            [
                Decision::Write,
                Decision::Write,
                Decision::Suppress,
                Decision::Suppress,
                Decision::Suppress
            ]
        );
        assert!(t.take_due(false).is_empty());
        let s = t.take_due(true);
        assert_eq!(s[0].count, 3);
        assert_eq!(t.snapshot().groups[0].suppressed, 3);
    }
}
