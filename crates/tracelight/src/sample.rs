//! Sampling and rate limits: a flood never takes the service (or the disk) down.
//!
//! - **Per-callsite rate limit** ([`SamplingConfig::rate_limit`]): at most N events per second from
//!   one callsite (one `info!` line in the code); the rest are counted, and the first event let
//!   through in a later second says how many were suppressed (`rate_limited` field), so nothing
//!   disappears silently. ERROR events are never rate limited here (error suppression groups them
//!   by fingerprint instead, see [`errors`](mod@crate::errors)).
//! - **Probabilistic sampling of DEBUG and TRACE** ([`SamplingConfig::debug_sample_rate`]), keyed by
//!   the request id: a request is either sampled with all its DEBUG and TRACE lines or not at all,
//!   so a sampled request can be followed from start to end. Lines outside any request are sampled
//!   one by one. INFO, WARN and ERROR are never sampled.
//!
//! ```
//! let w = tracelight::sink::MemoryWriter::new();
//! let _g = tracelight::builder()
//!     .sampling(tracelight::sample::SamplingConfig::default().rate_limit(5))
//!     .writer(w.clone())
//!     .init_local()
//!     .unwrap();
//! for i in 0..100 {
//!     tracing::info!(i, "hot loop");
//! }
//! assert_eq!(w.lines().len(), 5);
//! ```

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

/// Sampling and rate-limit settings. Default: neither.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SamplingConfig {
    pub(crate) rate_limit: Option<u32>,
    pub(crate) debug_rate: Option<f64>,
}

impl SamplingConfig {
    /// At most `per_second` events per second from one callsite (ERROR excepted).
    pub fn rate_limit(mut self, per_second: u32) -> Self {
        self.rate_limit = Some(per_second.max(1));
        self
    }

    /// Keeps this fraction (0.0 to 1.0) of DEBUG and TRACE lines, by request.
    pub fn debug_sample_rate(mut self, rate: f64) -> Self {
        self.debug_rate = Some(rate.clamp(0.0, 1.0));
        self
    }

    pub(crate) fn is_active(&self) -> bool {
        self.rate_limit.is_some() || self.debug_rate.is_some_and(|r| r < 1.0)
    }
}

const SLOTS: usize = 4096;

/// Per-callsite counters in a fixed table keyed by the callsite's address: `key` holds the
/// address, `window` the current second (high 32 bits) and the count in it (low 32 bits),
/// `suppressed` what was held back since the last event let through. Collisions between callsites
/// only make the limit apply to both together.
struct Slot {
    key: AtomicU64,
    window: AtomicU64,
    suppressed: AtomicU64,
}

/// The rate limiter and sampler of one layer.
pub(crate) struct Sampler {
    pub(crate) config: SamplingConfig,
    slots: Box<[Slot]>,
    /// Lines dropped by sampling.
    pub(crate) sampled_out: AtomicU64,
    /// Lines held back by the rate limit.
    pub(crate) rate_limited: AtomicU64,
}

/// What the rate limiter says about an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Limit {
    /// Write it.
    Pass,
    /// Write it, and say that this many were suppressed before it.
    PassAfter(u64),
    /// Do not write it.
    Drop,
}

impl Sampler {
    pub(crate) fn new(config: SamplingConfig) -> Self {
        let slots = (0..SLOTS)
            .map(|_| Slot {
                key: AtomicU64::new(0),
                window: AtomicU64::new(0),
                suppressed: AtomicU64::new(0),
            })
            .collect();
        Sampler {
            config,
            slots,
            sampled_out: AtomicU64::new(0),
            rate_limited: AtomicU64::new(0),
        }
    }

    /// The rate limit decision for an event of the callsite at `callsite` (an address).
    pub(crate) fn limit(&self, callsite: usize, now_secs: u64) -> Limit {
        let Some(max) = self.config.rate_limit else {
            return Limit::Pass;
        };
        let key = callsite as u64 | 1;
        let h = (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 52) as usize % SLOTS;
        let slot = &self.slots[h];
        if slot.key.load(Ordering::Relaxed) != key {
            slot.key.store(key, Ordering::Relaxed);
            slot.window.store(now_secs << 32, Ordering::Relaxed);
            slot.suppressed.store(0, Ordering::Relaxed);
        }
        let w = slot.window.load(Ordering::Relaxed);
        if w >> 32 != now_secs & 0xffff_ffff {
            // A new second: start counting again.
            let _ = slot.window.compare_exchange(
                w,
                (now_secs << 32) | 1,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
            let held = slot.suppressed.swap(0, Ordering::Relaxed);
            return if held > 0 {
                Limit::PassAfter(held)
            } else {
                Limit::Pass
            };
        }
        let n = slot.window.fetch_add(1, Ordering::Relaxed) & 0xffff_ffff;
        if n < u64::from(max) {
            Limit::Pass
        } else {
            slot.suppressed.fetch_add(1, Ordering::Relaxed);
            self.rate_limited.fetch_add(1, Ordering::Relaxed);
            Limit::Drop
        }
    }

    /// Whether a DEBUG or TRACE line is kept: by the request id's hash when there is one.
    pub(crate) fn keep_debug(&self, request_id: Option<&[u8]>) -> bool {
        let Some(rate) = self.config.debug_rate else {
            return true;
        };
        let threshold = (rate * u64::MAX as f64) as u64;
        let h = match request_id {
            Some(id) => crate::errors::fnv1a(&[id]),
            None => next_random(),
        };
        let keep = rate >= 1.0 || h < threshold;
        if !keep {
            self.sampled_out.fetch_add(1, Ordering::Relaxed);
        }
        keep
    }
}

thread_local! {
    static RNG: Cell<u64> = const { Cell::new(0) };
}

/// A per-thread xorshift generator, seeded from the thread's address and the clock.
fn next_random() -> u64 {
    RNG.try_with(|r| {
        let mut x = r.get();
        if x == 0 {
            let seed = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos() as u64;
            x = seed ^ (r as *const Cell<u64> as u64) | 1;
        }
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        r.set(x);
        x
    })
    .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_per_second_and_report_of_the_suppressed() {
        let s = Sampler::new(SamplingConfig::default().rate_limit(3));
        let d: Vec<Limit> = (0..6).map(|_| s.limit(0x1000, 50)).collect();
        assert_eq!(
            d,
            [
                Limit::Pass,
                Limit::Pass,
                Limit::Pass,
                Limit::Drop,
                Limit::Drop,
                Limit::Drop
            ]
        );
        assert_eq!(s.limit(0x1000, 51), Limit::PassAfter(3));
        assert_eq!(s.limit(0x2000, 51), Limit::Pass);
    }

    #[test]
    fn sampling_by_request_is_all_or_nothing() {
        let s = Sampler::new(SamplingConfig::default().debug_sample_rate(0.5));
        let mut kept = 0;
        for i in 0..1000 {
            let id = format!("req-{i}");
            let first = s.keep_debug(Some(id.as_bytes()));
            for _ in 0..5 {
                assert_eq!(s.keep_debug(Some(id.as_bytes())), first);
            }
            kept += usize::from(first);
        }
        assert!((350..650).contains(&kept), "{kept}");
    }
}
