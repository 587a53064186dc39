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
//! The timing state lives in the span's tracelight extension, next to its fields: a span costs one
//! allocation whatever is measured.
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
use std::hash::{BuildHasherDefault, Hasher};
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

use crate::sink::lock;

/// The target of timing events.
pub const TARGET: &str = "tracelight::timing";

/// How many slow samples are kept per operation.
pub const SLOW_SAMPLES: usize = 20;

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
}

/// Default slow threshold: 500 ms.
pub const DEFAULT_THRESHOLD: Duration = Duration::from_millis(500);

impl Default for TimingConfig {
    fn default() -> Self {
        TimingConfig {
            threshold: DEFAULT_THRESHOLD,
            per_name: Vec::new(),
            every_close: false,
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

    /// (total, busy, idle) at close.
    pub(crate) fn close(&self) -> (Duration, Duration, Duration) {
        let c = clock();
        let total = c.delta(self.created, c.raw());
        let busy = c.delta(0, self.busy).min(total);
        (total, busy, total - busy)
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
}

struct Op {
    count: u64,
    slow: u64,
    min: u64,
    max: u64,
    sum: u128,
    hist: Histogram<u64>,
    samples: VecDeque<SlowSample>,
}

/// Bucket bounds (seconds) for Prometheus-style exposition.
pub const BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// FNV-1a for the operation map: names are short, and SipHash would cost more than the rest of
/// the update.
#[derive(Default)]
struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

/// The timing state of one layer: settings and aggregates.
pub(crate) struct Timing {
    pub(crate) config: TimingConfig,
    /// Whether any per-name threshold is set (else the default applies without a lookup).
    per_name: bool,
    ops: Mutex<HashMap<Cow<'static, str>, Op, BuildHasherDefault<Fnv>>>,
}

impl Timing {
    pub(crate) fn new(config: TimingConfig) -> Self {
        Timing {
            per_name: !config.per_name.is_empty(),
            config,
            ops: Mutex::new(HashMap::default()),
        }
    }

    /// Records a close; returns whether it was slow, and the threshold.
    pub(crate) fn record(
        &self,
        operation: Cow<'static, str>,
        total: Duration,
        busy: Duration,
        sample: impl FnOnce() -> (Option<String>, String),
    ) -> (bool, Duration) {
        let threshold = if self.per_name {
            self.config.threshold_of(&operation)
        } else {
            self.config.threshold
        };
        let slow = total >= threshold;
        let micros = u64::try_from(total.as_micros()).unwrap_or(u64::MAX).max(1);
        let mut ops = lock(&self.ops);
        let op = match ops.get_mut(operation.as_ref()) {
            Some(op) => op,
            None => {
                let hist = match Histogram::new_with_bounds(1, 3_600_000_000, 3) {
                    Ok(h) => h,
                    Err(_) => return (slow, threshold),
                };
                ops.entry(operation).or_insert(Op {
                    count: 0,
                    slow: 0,
                    min: u64::MAX,
                    max: 0,
                    sum: 0,
                    hist,
                    samples: VecDeque::new(),
                })
            }
        };
        op.count += 1;
        op.min = op.min.min(micros);
        op.max = op.max.max(micros);
        op.sum += u128::from(micros);
        let _ = op.hist.record(micros.min(3_600_000_000));
        if slow {
            op.slow += 1;
            let (request_id, fields) = sample();
            if op.samples.len() == SLOW_SAMPLES {
                op.samples.pop_front();
            }
            op.samples.push_back(SlowSample {
                at: SystemTime::now(),
                duration_ms: micros as f64 / 1000.0,
                busy_ms: busy.as_secs_f64() * 1000.0,
                request_id,
                fields,
            });
        }
        (slow, threshold)
    }

    pub(crate) fn snapshot(&self) -> PerformanceSnapshot {
        let ops = lock(&self.ops);
        let ms = |us: u64| us as f64 / 1000.0;
        let mut operations: Vec<OperationStats> = ops
            .iter()
            .map(|(name, op)| OperationStats {
                operation: name.to_string(),
                count: op.count,
                slow: op.slow,
                min_ms: if op.count == 0 { 0.0 } else { ms(op.min) },
                max_ms: ms(op.max),
                mean_ms: if op.count == 0 {
                    0.0
                } else {
                    op.sum as f64 / op.count as f64 / 1000.0
                },
                sum_ms: op.sum as f64 / 1000.0,
                p50_ms: ms(op.hist.value_at_quantile(0.50)),
                p90_ms: ms(op.hist.value_at_quantile(0.90)),
                p99_ms: ms(op.hist.value_at_quantile(0.99)),
                threshold_ms: self.config.threshold_of(name).as_secs_f64() * 1000.0,
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
        operations.sort_by(|a, b| b.p99_ms.total_cmp(&a.p99_ms));
        PerformanceSnapshot { operations }
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
    fn busy_and_idle_add_up() {
        let mut t = SpanTiming::new();
        let entered = ticks();
        std::thread::sleep(Duration::from_millis(2));
        t.add_busy(entered, ticks());
        std::thread::sleep(Duration::from_millis(2));
        let (total, busy, idle) = t.close();
        assert_eq!(busy + idle, total);
        assert!(busy >= Duration::from_millis(2), "{busy:?}");
        assert!(idle >= Duration::from_millis(2), "{idle:?}");
    }

    #[test]
    fn aggregates_and_percentiles() {
        let timing =
            Timing::new(TimingConfig::default().threshold_for("q", Duration::from_millis(50)));
        for ms in 1..=100u64 {
            timing.record(
                Cow::Borrowed("q"),
                Duration::from_millis(ms),
                Duration::ZERO,
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
