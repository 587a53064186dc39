//! Timing: how long spans take, which ones are slow, and aggregates per operation.
//!
//! Every span's busy time (entered), idle time (alive but not entered, e.g. waiting on an
//! `.await`) and total duration are measured. When a span closes above its threshold (a default,
//! overridable per span name), a `span_closed` event goes to the `performance` stream with
//! `operation`, `duration_ms`, `busy_ms`, `idle_ms`, `threshold_ms`, `slow`, the span's fields (under
//! `span`) and its context (`request_id`…). [`TimingConfig::every_close`] sends one for every span.
//!
//! Aggregates per operation — count, min, max, mean, p50/p90/p99 (an HDR histogram) and the last
//! slow samples — are available with [`performance`](crate::performance) (and the admin endpoint).
//!
//! The timing state lives in the span's tracelight state, next to its fields; enter times stay on
//! the entering thread. Measuring costs four reads of the CPU's time-stamp counter a span and one
//! aggregate update at close, with no allocation.
//!
//! ```
//! use std::time::Duration;
//! let w = tracelight::sink::MemoryWriter::new();
//! let _g = tracelight::builder()
//!     .timing(tracelight::timing::TimingConfig::default()
//!         .threshold(Duration::from_millis(100))
//!         .threshold_for("db_query", Duration::from_millis(5)))
//!     .writer(w.clone())
//!     .init_local()
//!     .unwrap();
//! {
//!     let _t = tracelight::timed("db_query");
//!     std::thread::sleep(Duration::from_millis(10));
//! }
//! assert!(w.contents().contains("\"message\":\"span_closed\""));
//! let stats = tracelight::performance();
//! assert_eq!(stats.operations[0].operation, "db_query");
//! ```

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasherDefault;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

/// The span clock: the CPU's time-stamp counter where it is stable (a few nanoseconds a read, four
/// reads a span, scaled to nanoseconds only at close), the monotonic clock elsewhere.
fn clock() -> &'static quanta::Clock {
    static CLOCK: std::sync::OnceLock<quanta::Clock> = std::sync::OnceLock::new();
    CLOCK.get_or_init(quanta::Clock::new)
}

/// Calibrates the clock now rather than at the first span.
pub(crate) fn warm_up_clock() {
    let _ = clock();
}

use hdrhistogram::Histogram;

use crate::util::lock;

/// A closed span's duration, waiting to be folded into the timing aggregates.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Closed {
    pub(crate) meta: &'static tracing_core::Metadata<'static>,
    pub(crate) total_ns: u64,
}

/// The target of timing events.
pub const TARGET: &str = "tracelight::timing";

/// How many slow samples are kept per operation.
pub const SLOW_SAMPLES: usize = 20;

/// How many operations have aggregates of their own by default (see
/// [`TimingConfig::max_operations`]).
pub const DEFAULT_MAX_OPERATIONS: usize = 500;

/// The longest fields text a slow sample keeps, in bytes (longer ones are cut, with `…`).
pub const SAMPLE_FIELDS_MAX: usize = 4096;

/// Timing settings.
///
/// ```
/// use std::time::Duration;
/// let t = tracelight::timing::TimingConfig::default()
///     .threshold(Duration::from_millis(250))
///     .threshold_for("render_invoice", Duration::from_secs(2))
///     .every_close(false);
/// # let _ = t;
/// ```
#[derive(Debug, Clone)]
pub struct TimingConfig {
    pub(crate) threshold: Duration,
    pub(crate) per_name: Vec<(String, Duration)>,
    pub(crate) every_close: bool,
    pub(crate) max_operations: usize,
}

/// Default slow threshold: 500 ms.
pub const DEFAULT_THRESHOLD: Duration = Duration::from_millis(500);

impl Default for TimingConfig {
    fn default() -> Self {
        TimingConfig {
            threshold: DEFAULT_THRESHOLD,
            per_name: Vec::new(),
            every_close: false,
            max_operations: DEFAULT_MAX_OPERATIONS,
        }
    }
}

impl TimingConfig {
    /// The slow threshold of every span without its own.
    pub fn threshold(mut self, t: Duration) -> Self {
        self.threshold = t;
        self
    }

    /// The slow threshold of spans (or [`timed`] blocks) named `name`.
    pub fn threshold_for(mut self, name: impl Into<String>, t: Duration) -> Self {
        let name = name.into();
        self.per_name.retain(|(n, _)| *n != name);
        self.per_name.push((name, t));
        self
    }

    /// Whether every span close is reported, not only slow ones. Default off.
    pub fn every_close(mut self, on: bool) -> Self {
        self.every_close = on;
        self
    }

    /// How many operations have aggregates of their own (default
    /// [`DEFAULT_MAX_OPERATIONS`], at least 1). Operations are span names and [`timed`] names;
    /// when those come from input (`info_span!("timed", operation = %path)`), each distinct one
    /// would be kept for ever. Past the bound, new operations are counted under `other`, and
    /// stderr says so once. Each operation costs about 27 KB (its latency histogram, two
    /// significant digits).
    ///
    /// ```
    /// let t = tracelight::timing::TimingConfig::default().max_operations(2000);
    /// # let _ = t;
    /// ```
    pub fn max_operations(mut self, n: usize) -> Self {
        self.max_operations = n.max(1);
        self
    }

    fn threshold_of(&self, name: &str) -> Duration {
        self.per_name
            .iter()
            .find(|(n, _)| n == name)
            .map_or(self.threshold, |(_, t)| *t)
    }
}

/// Reads the span clock, in raw ticks.
#[inline]
pub(crate) fn ticks() -> u64 {
    clock().raw()
}

/// Per-span timing, kept in the span's state, in raw clock ticks. Enter times are kept on the
/// entering thread (see `spans::enter`); the span only accumulates busy time at each exit.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SpanTiming {
    created: u64,
    busy: u64,
}

impl SpanTiming {
    #[inline]
    pub(crate) fn new() -> Self {
        SpanTiming {
            created: ticks(),
            busy: 0,
        }
    }

    /// Adds the busy interval from `entered` to `exited` (both raw ticks).
    #[inline]
    pub(crate) fn add_busy(&mut self, entered: u64, exited: u64) {
        self.busy += exited.saturating_sub(entered);
    }

    /// (total, busy) in nanoseconds at close; idle is the difference.
    #[cfg(test)]
    pub(crate) fn close(&self) -> (u64, u64) {
        let total = self.total();
        (total, self.busy_within(total))
    }

    /// The total time in nanoseconds, from creation to now.
    #[inline]
    pub(crate) fn total(&self) -> u64 {
        let c = clock();
        c.delta_as_nanos(self.created, c.raw())
    }

    /// The busy time in nanoseconds, at most `total`.
    #[inline]
    pub(crate) fn busy_within(&self, total: u64) -> u64 {
        clock().delta_as_nanos(0, self.busy).min(total)
    }
}

/// One slow occurrence of an operation.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SlowSample {
    /// When it closed.
    pub at: SystemTime,
    /// Total duration in milliseconds.
    pub duration_ms: f64,
    /// Busy (entered) time in milliseconds.
    pub busy_ms: f64,
    /// The request it belonged to, if any.
    pub request_id: Option<String>,
    /// The span's fields, as a JSON object.
    pub fields: String,
}

/// Aggregates of one operation (span name, or the name given to [`timed`]).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct OperationStats {
    /// The operation.
    pub operation: String,
    /// Closed spans.
    pub count: u64,
    /// How many were above their threshold.
    pub slow: u64,
    /// Shortest, in milliseconds.
    pub min_ms: f64,
    /// Longest, in milliseconds.
    pub max_ms: f64,
    /// Mean, in milliseconds.
    pub mean_ms: f64,
    /// Sum of all durations, in milliseconds (exact to the microsecond).
    pub sum_ms: f64,
    /// Median, in milliseconds.
    pub p50_ms: f64,
    /// 90th percentile, in milliseconds.
    pub p90_ms: f64,
    /// 99th percentile, in milliseconds.
    pub p99_ms: f64,
    /// The threshold in force, in milliseconds.
    pub threshold_ms: f64,
    /// The last slow occurrences, newest last.
    pub slow_samples: Vec<SlowSample>,
    /// Counts per histogram bucket for exposition: `(upper bound in seconds, cumulative count)`.
    pub buckets: Vec<(f64, u64)>,
}

/// A snapshot of every operation, slowest p99 first.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct PerformanceSnapshot {
    /// Per operation.
    pub operations: Vec<OperationStats>,
    /// How many distinct operations came past [`TimingConfig::max_operations`] (counted under
    /// `other`).
    pub folded: u64,
}

struct Op {
    name: Cow<'static, str>,
    count: u64,
    slow: u64,
    /// Nanoseconds.
    min: u64,
    max: u64,
    sum: u128,
    /// Microseconds.
    hist: Histogram<u64>,
    samples: VecDeque<SlowSample>,
}

impl Op {
    fn new(name: Cow<'static, str>) -> Option<Op> {
        Some(Op {
            name,
            count: 0,
            slow: 0,
            min: u64::MAX,
            max: 0,
            sum: 0,
            hist: Histogram::new_with_bounds(1, 3_600_000_000, 2).ok()?,
            samples: VecDeque::new(),
        })
    }

    /// Adds one close of `total_ns`.
    #[inline]
    fn add(&mut self, total_ns: u64) {
        self.count += 1;
        self.min = self.min.min(total_ns);
        self.max = self.max.max(total_ns);
        self.sum += u128::from(total_ns);
        let _ = self.hist.record((total_ns / 1000).clamp(1, 3_600_000_000));
    }

    /// Folds another callsite's aggregates of the same operation into this one.
    fn merge(&mut self, other: &Op) {
        self.count += other.count;
        self.slow += other.slow;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.sum += other.sum;
        let _ = self.hist.add(&other.hist);
        self.samples.extend(other.samples.iter().cloned());
        self.samples.make_contiguous().sort_by_key(|s| s.at);
        while self.samples.len() > SLOW_SAMPLES {
            self.samples.pop_front();
        }
    }
}

/// Bucket bounds (seconds) for Prometheus-style exposition.
pub const BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// Whether `meta` is the http layer's request span, whose operation is its method and route
/// (`GET /orders/{id}`), so that each route has aggregates of its own.
#[inline]
pub(crate) fn is_request_span(meta: &tracing_core::Metadata<'_>) -> bool {
    meta.name() == "request" && meta.target() == "tracelight::http"
}

/// FNV-1a, for the key of an operation named at run time.
fn fnv(bytes: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The key of an operation's aggregates: its callsite (a span's metadata address, the same for
/// every span opened there), or a hash of its name for [`timed`] blocks, which share one
/// callsite. Keying by address saves hashing the name on every close; operations of the same
/// name from different callsites are merged in [`Timing::snapshot`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct OpKey(u64);

impl OpKey {
    /// The operations past the bound (neither an address nor a name's hash, which is odd).
    const OTHER: OpKey = OpKey(0);

    /// The key of every span opened at the callsite of `meta`.
    pub(crate) fn callsite(meta: &'static tracing_core::Metadata<'static>) -> OpKey {
        OpKey(meta as *const _ as usize as u64)
    }

    /// The key of an operation named at run time.
    pub(crate) fn named(name: &str) -> OpKey {
        // The low bit set: never equal to an (aligned) address.
        OpKey(fnv(name.as_bytes()) | 1)
    }
}

/// The timing state of one layer: settings and aggregates.
pub(crate) struct Timing {
    pub(crate) config: TimingConfig,
    /// Whether any per-name threshold is set (else the default applies without a lookup).
    per_name: bool,
    /// The default threshold in nanoseconds.
    threshold_ns: u64,
    ops: Mutex<HashMap<OpKey, Op, BuildHasherDefault<crate::util::IdHasher>>>,
    /// Operations past `max_operations`, counted under `other`.
    overflow: crate::bound::Overflow,
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Timing {
    pub(crate) fn new(config: TimingConfig) -> Self {
        Timing {
            per_name: !config.per_name.is_empty(),
            threshold_ns: nanos(config.threshold),
            config,
            ops: Mutex::new(HashMap::default()),
            overflow: crate::bound::Overflow::default(),
        }
    }

    /// Records a close of `total_ns` (of which `busy_ns` entered); returns whether it was slow,
    /// and the threshold in nanoseconds. `sample` describes the span when it was slow.
    // `&Cow`: cloned only when the operation is seen for the first time (a borrowed name then
    // stays borrowed).
    #[allow(clippy::ptr_arg)]
    pub(crate) fn record(
        &self,
        key: OpKey,
        operation: &Cow<'static, str>,
        total_ns: u64,
        busy_ns: u64,
        sample: impl FnOnce() -> (Option<String>, String),
    ) -> (bool, u64) {
        let threshold = self.threshold_ns(operation);
        let slow = total_ns >= threshold;
        let mut ops = lock(&self.ops);
        let Some(op) = self.op(&mut ops, key, || operation.clone()) else {
            return (slow, threshold);
        };
        op.add(total_ns);
        if slow {
            op.slow += 1;
            let (request_id, mut fields) = sample();
            if fields.len() > SAMPLE_FIELDS_MAX {
                fields = crate::bound::truncated(&fields, SAMPLE_FIELDS_MAX).into_owned();
            }
            if op.samples.len() == SLOW_SAMPLES {
                op.samples.pop_front();
            }
            op.samples.push_back(SlowSample {
                at: SystemTime::now(),
                duration_ms: total_ns as f64 / 1e6,
                busy_ms: busy_ns as f64 / 1e6,
                request_id,
                fields,
            });
        }
        (slow, threshold)
    }

    /// The slow threshold of `name`, in nanoseconds.
    #[inline]
    fn threshold_ns(&self, name: &str) -> u64 {
        if self.per_name {
            nanos(self.config.threshold_of(name))
        } else {
            self.threshold_ns
        }
    }

    /// The aggregates of `key`, created (named by `name`) when first seen, or those of `other`
    /// once there are `max_operations`; `None` only if the histogram cannot be created.
    fn op<'m>(
        &self,
        ops: &'m mut HashMap<OpKey, Op, BuildHasherDefault<crate::util::IdHasher>>,
        key: OpKey,
        name: impl FnOnce() -> Cow<'static, str>,
    ) -> Option<&'m mut Op> {
        let full = ops.len() >= self.config.max_operations;
        let key = if full && !ops.contains_key(&key) {
            self.overflow.fold(
                "timing aggregates",
                self.config.max_operations,
                "TimingConfig::max_operations",
            );
            OpKey::OTHER
        } else {
            key
        };
        match ops.entry(key) {
            std::collections::hash_map::Entry::Occupied(e) => Some(e.into_mut()),
            std::collections::hash_map::Entry::Vacant(e) => {
                let name = if key == OpKey::OTHER {
                    Cow::Borrowed(crate::bound::OTHER)
                } else {
                    name()
                };
                Some(e.insert(Op::new(name)?))
            }
        }
    }

    /// Whether a close of `name` lasting `total_ns` only updates the aggregates (no event, no
    /// sample), so it may be queued and folded in later with others.
    #[inline]
    pub(crate) fn queues(
        &self,
        meta: &'static tracing_core::Metadata<'static>,
        total_ns: u64,
    ) -> bool {
        let name = meta.name();
        !self.config.every_close
            && total_ns < self.threshold_ns(name)
            && name != "timed"
            && !is_request_span(meta)
    }

    /// Folds queued closes (none of them slow) into the aggregates.
    pub(crate) fn fold(&self, closed: &[Closed]) {
        if closed.is_empty() {
            return;
        }
        let mut ops = lock(&self.ops);
        // One lookup per run of closes of the same callsite (a batch is mostly one or a few).
        let mut rest = closed;
        while let Some(first) = rest.first() {
            let run = rest
                .iter()
                .position(|c| !std::ptr::eq(c.meta, first.meta))
                .unwrap_or(rest.len());
            let (same, next) = rest.split_at(run);
            let key = OpKey::callsite(first.meta);
            let name = || Cow::Borrowed(first.meta.name());
            if ops.len() >= self.config.max_operations && !ops.contains_key(&key) {
                // Past the bound: each close is counted as folded, as it would be alone, so the
                // count does not depend on how closes were batched.
                for c in same {
                    if let Some(op) = self.op(&mut ops, key, name) {
                        op.add(c.total_ns);
                    }
                }
            } else if let Some(op) = self.op(&mut ops, key, name) {
                for c in same {
                    op.add(c.total_ns);
                }
            }
            rest = next;
        }
    }

    pub(crate) fn snapshot(&self) -> PerformanceSnapshot {
        let ops = lock(&self.ops);
        // One entry per operation name, whichever callsites it was recorded at; a name recorded
        // at one callsite (the usual case) is read in place.
        let mut groups: Vec<(&Cow<'static, str>, Vec<&Op>)> = Vec::new();
        for op in ops.values() {
            match groups.iter_mut().find(|(n, _)| **n == op.name) {
                Some((_, g)) => g.push(op),
                None => groups.push((&op.name, vec![op])),
            }
        }
        let mut merged_store: Vec<Op> = Vec::new();
        let mut single: Vec<&Op> = Vec::new();
        for (name, g) in &groups {
            if let [op] = g.as_slice() {
                single.push(op);
            } else if let Some(mut m) = Op::new((*name).clone()) {
                for op in g {
                    m.merge(op);
                }
                merged_store.push(m);
            }
        }
        let ms = |ns: u64| ns as f64 / 1e6;
        // The histogram gives a bucket's highest value, which may pass the largest duration
        // seen (or fall below the smallest): a percentile lies between the two.
        let quantile_ms = |op: &Op, q: f64| {
            if op.count == 0 {
                return 0.0;
            }
            let us = op.hist.value_at_quantile(q) as f64 / 1000.0;
            us.min(ms(op.max)).max(ms(op.min).min(ms(op.max)))
        };
        let mut operations: Vec<OperationStats> = single
            .into_iter()
            .chain(merged_store.iter())
            .map(|op| OperationStats {
                operation: op.name.to_string(),
                count: op.count,
                slow: op.slow,
                min_ms: if op.count == 0 { 0.0 } else { ms(op.min) },
                max_ms: ms(op.max),
                mean_ms: if op.count == 0 {
                    0.0
                } else {
                    op.sum as f64 / op.count as f64 / 1e6
                },
                sum_ms: op.sum as f64 / 1e6,
                p50_ms: quantile_ms(op, 0.50),
                p90_ms: quantile_ms(op, 0.90),
                p99_ms: quantile_ms(op, 0.99),
                threshold_ms: self.config.threshold_of(&op.name).as_secs_f64() * 1000.0,
                slow_samples: op.samples.iter().cloned().collect(),
                buckets: BUCKETS
                    .iter()
                    .map(|b| {
                        let us = (b * 1_000_000.0) as u64;
                        let n: u64 = op
                            .hist
                            .iter_recorded()
                            .filter(|v| v.value_iterated_to() <= us)
                            .map(|v| v.count_at_value())
                            .sum();
                        (*b, n)
                    })
                    .collect(),
            })
            .collect();
        drop(ops);
        operations.sort_by(|a, b| b.p99_ms.total_cmp(&a.p99_ms));
        PerformanceSnapshot {
            operations,
            folded: self.overflow.folded(),
        }
    }
}

/// Times a block that is not a function: the returned guard opens and enters a span named
/// `operation` (a `timed` span with an `operation` field), and closing it (dropping the guard)
/// records the duration — a `span_closed` event when it is slow, and the aggregates.
///
/// ```
/// # let _g = tracelight::builder().writer(tracelight::sink::MemoryWriter::new()).init_local().unwrap();
/// let rows = {
///     let _t = tracelight::timed("load_rows");
///     vec![1, 2, 3] // the work being timed
/// };
/// # assert_eq!(rows.len(), 3);
/// ```
///
/// For fields, or in async code, open a span yourself: every span is timed
/// (`tracing::info_span!("db_query", table = "orders")`).
pub fn timed(operation: &'static str) -> tracing::span::EnteredSpan {
    tracing::info_span!("timed", operation).entered()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closes_past_the_bound_are_counted_each_however_batched() {
        let t = Timing::new(TimingConfig::default().max_operations(1));
        macro_rules! callsite {
            ($cs:ident, $name:literal) => {{
                static $cs: tracing_core::callsite::DefaultCallsite = {
                    static META: tracing_core::Metadata<'static> = tracing_core::metadata! {
                        name: $name,
                        target: "t",
                        level: tracing_core::Level::INFO,
                        fields: &[],
                        callsite: &$cs,
                        kind: tracing_core::metadata::Kind::SPAN,
                    };
                    tracing_core::callsite::DefaultCallsite::new(&META)
                };
                tracing_core::Callsite::metadata(&$cs)
            }};
        }
        let a = callsite!(FIRST, "first_op");
        let b = callsite!(SECOND, "second_op");
        let closed = |meta| Closed {
            meta,
            total_ns: 1_000,
        };
        // One batch with a run of three closes of an operation past the bound, then one alone.
        t.fold(&[closed(a), closed(b), closed(b), closed(b)]);
        t.fold(&[closed(b)]);
        assert_eq!(t.overflow.folded(), 4);
        let ops = t.snapshot().operations;
        let count = |name: &str| ops.iter().find(|o| o.operation == name).map(|o| o.count);
        assert_eq!(count("first_op"), Some(1));
        assert_eq!(count(crate::bound::OTHER), Some(4));
    }

    #[test]
    fn busy_and_idle_add_up() {
        let mut t = SpanTiming::new();
        let entered = ticks();
        std::thread::sleep(Duration::from_millis(2));
        t.add_busy(entered, ticks());
        std::thread::sleep(Duration::from_millis(2));
        let (total, busy) = t.close();
        assert!(busy <= total);
        assert!(busy >= 2_000_000, "busy {busy} ns");
        assert!(total - busy >= 2_000_000, "idle {} ns", total - busy);
    }

    #[test]
    fn aggregates_and_percentiles() {
        let timing =
            Timing::new(TimingConfig::default().threshold_for("q", Duration::from_millis(50)));
        // Two callsites of one operation: merged in the snapshot.
        for ms in 1..=100u64 {
            timing.record(
                OpKey(8 << (ms % 2)),
                &Cow::Borrowed("q"),
                ms * 1_000_000,
                0,
                || (None, "{}".into()),
            );
        }
        let s = timing.snapshot();
        let q = &s.operations[0];
        assert_eq!(q.count, 100);
        assert_eq!(q.slow, 51);
        assert_eq!(q.slow_samples.len(), SLOW_SAMPLES);
        assert!((q.p50_ms - 50.0).abs() < 1.0, "{}", q.p50_ms);
        assert!((q.p99_ms - 99.0).abs() < 1.0, "{}", q.p99_ms);
        assert_eq!(q.min_ms, 1.0);
        assert_eq!(q.max_ms, 100.0);
        assert_eq!(q.buckets.last().map(|b| b.1), Some(100));
    }
}
