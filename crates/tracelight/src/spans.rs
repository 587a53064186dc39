//! Per-span state: the table that holds it, keyed by span id.
//!
//! A span's state — its rendered fields, its correlation context, its timing — lives in a table of
//! the layer's own rather than in the registry's span extensions. An extension is a boxed value in
//! a per-span map behind a lock, found through a reference-counted slot: every `enter` and `exit`
//! would pay for that lookup, and every span for the allocation. Here a span id hashes to one of
//! [`SHARDS`] small maps, each behind its own mutex (held for a few dozen instructions, never while
//! user code runs), and the state is a box taken from a per-thread pool, so a span allocates
//! nothing in steady state.
//!
//! The registry still owns span identity, names and the parent chain; the table only keeps what
//! tracelight adds. Lock discipline: at most one shard lock is held at a time, and never across a
//! call into user code (`Debug` impls run while rendering, before the state is looked up).

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::Arc;

use parking_lot::Mutex;

use tracing_core::span::Id;
use tracing_core::Metadata;

use crate::context::Context;
use crate::fields::SpanFields;
use crate::timing::Closed;

/// How many shards the table has: enough that threads working on different spans rarely meet.
pub(crate) const SHARDS: usize = 64;

/// A boxed span state is kept for reuse only while its buffers stay this small.
const POOL_MAX_BYTES: usize = 4096;
/// A unit of work's state goes back to the pool only when its flight recording's buffers hold at
/// most this much (so a thread's pool holds at most 128 × 16 KiB of them).
const RECORDING_POOL_MAX_BYTES: usize = 16 * 1024;
/// Boxes kept per thread for reuse.
const POOL_MAX: usize = 128;

/// What tracelight keeps for one span.
#[derive(Debug)]
pub(crate) struct SpanState {
    /// The span's metadata (name, target).
    pub(crate) meta: &'static Metadata<'static>,
    /// The span's fields, rendered.
    pub(crate) fields: SpanFields,
    /// The correlation context: the parent's, plus this span's context fields.
    pub(crate) ctx: Option<Arc<Context>>,
    /// Busy and idle time, when timing is on.
    pub(crate) timing: Option<crate::timing::SpanTiming>,
    /// The fields and context as text pairs, plain and coloured, once a text line needed them.
    pub(crate) text: [TextPairs; 2],
    /// With the flight recorder on: the span id of the unit of work this span is in (its own
    /// when it is one).
    pub(crate) unit: Option<u64>,
    /// For a unit of work inside another: the span id of that one.
    pub(crate) outer_unit: Option<u64>,
    /// The lines the flight recorder keeps, when this span is a unit of work.
    pub(crate) recording: crate::recorder::Recording,
}

/// A span's fields and the context entries they do not hold, rendered as text pairs
/// (` key=value`), with what they were rendered from.
#[derive(Debug, Default)]
pub(crate) struct TextPairs {
    pub(crate) pairs: crate::text::Pairs,
    /// The fields' generation and the context they were rendered from (held, so that its address
    /// cannot be reused by another context while it is compared against).
    from: Option<(u64, Option<Arc<Context>>)>,
}

impl TextPairs {
    /// Whether the pairs were rendered from these fields and this context.
    #[inline]
    pub(crate) fn is_current(&self, fields: &SpanFields, ctx: Option<&Arc<Context>>) -> bool {
        match &self.from {
            Some((generation, from)) => {
                *generation == fields.generation()
                    && match (from, ctx) {
                        (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                        (None, None) => true,
                        _ => false,
                    }
            }
            None => false,
        }
    }

    /// Records what the pairs now in `bytes` were rendered from.
    #[inline]
    pub(crate) fn rendered_from(&mut self, fields: &SpanFields, ctx: Option<&Arc<Context>>) {
        self.from = Some((fields.generation(), ctx.cloned()));
    }

    fn clear(&mut self) {
        self.pairs.clear();
        self.from = None;
    }
}

impl SpanState {
    /// A state for a new span: from this thread's pool when it has one.
    pub(crate) fn boxed(meta: &'static Metadata<'static>) -> Box<SpanState> {
        let pooled = POOL
            .try_with(|p| p.try_borrow_mut().ok().and_then(|mut p| p.pop()))
            .ok()
            .flatten();
        match pooled {
            Some(mut st) => {
                st.meta = meta;
                st
            }
            None => Box::new(SpanState {
                meta,
                fields: SpanFields::default(),
                ctx: None,
                timing: None,
                text: Default::default(),
                unit: None,
                outer_unit: None,
                recording: crate::recorder::Recording::default(),
            }),
        }
    }

    /// Returns a closed span's state to this thread's pool.
    pub(crate) fn recycle(mut self: Box<Self>) {
        let text = self.text[0].pairs.bytes.capacity() + self.text[1].pairs.bytes.capacity();
        if self.fields.capacity() + text > POOL_MAX_BYTES
            || self.recording.capacity() > RECORDING_POOL_MAX_BYTES
        {
            return;
        }
        self.fields.clear();
        self.ctx = None;
        self.timing = None;
        self.unit = None;
        self.outer_unit = None;
        debug_assert!(self.recording.is_idle() || self.recording.failed);
        self.recording.failed = false;
        // Most spans never had a text line: their pairs are empty already.
        for t in &mut self.text {
            if t.from.is_some() {
                t.clear();
            }
        }
        let _ = POOL.try_with(|p| {
            if let Ok(mut p) = p.try_borrow_mut() {
                if p.len() < POOL_MAX {
                    p.push(self);
                }
            }
        });
    }
}

thread_local! {
    // Boxed: a state moves between the pool and the table as a pointer, not a few hundred bytes.
    #[allow(clippy::vec_box)]
    static POOL: RefCell<Vec<Box<SpanState>>> = const { RefCell::new(Vec::new()) };
}

/// How many closed spans a shard queues before they are folded into the aggregates.
pub(crate) const CLOSED_BATCH: usize = 32;

/// A span id's key in the table, mixed once for both the shard and the map: a xor-shift, a
/// multiplication by an odd constant and a xor-shift, each invertible, so no two ids share a
/// key, and every bit of the id reaches the low bits (the bucket), the middle ones (the shard)
/// and the top ones (the map's tag). The maps hash the key as it is.
#[inline]
fn key(id: &Id) -> u64 {
    let x = id.into_u64();
    let x = (x ^ (x >> 32)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^ (x >> 29)
}

/// The maps' hasher: the key is already mixed ([`key`]).
#[derive(Default)]
struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `u64` keys are hashed; anything else still spreads.
        self.0 = crate::util::fnv_bytes(self.0, bytes);
    }
    #[inline]
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

#[derive(Default)]
struct Shard {
    map: HashMap<u64, Box<SpanState>, BuildHasherDefault<KeyHasher>>,
    /// Durations of spans closed here, queued under the lock the close takes anyway, so that a
    /// close does not take the aggregates' lock as well.
    closed: Vec<Closed>,
}

/// The span states of one subscriber's tracelight layers, by span id: the first tracelight layer
/// keeps it and the ones stacked above read it. (Span ids are unique only within one registry: a
/// layer cloned into a second subscriber gets a table of its own.)
pub(crate) struct SpanTable {
    shards: Box<[Mutex<Shard>]>,
    /// The state whose timing the spans of this table are measured for: the keeping layer's, or
    /// that of a [`TimingLayer`](crate::TimingLayer) stacked above a layer without timing.
    timing_from: std::sync::OnceLock<Arc<crate::state::Shared>>,
    /// Whether a subscriber already uses this table.
    attached: std::sync::atomic::AtomicBool,
    /// Whether the registry knows the dispatcher of that subscriber.
    dispatch_known: std::sync::atomic::AtomicBool,
}

impl SpanTable {
    /// The timing the spans of this table are measured for, if any.
    #[inline]
    pub(crate) fn timing(&self) -> Option<&crate::timing::Timing> {
        self.timing_from.get().and_then(|s| s.timing.as_ref())
    }

    /// The state whose timing the spans of this table are measured for.
    pub(crate) fn timing_owner(&self) -> Option<Arc<crate::state::Shared>> {
        self.timing_from.get().cloned()
    }

    /// Whether the timing of this table is that of `shared`.
    pub(crate) fn timed_for(&self, shared: &Arc<crate::state::Shared>) -> bool {
        self.timing_from
            .get()
            .is_some_and(|s| Arc::ptr_eq(s, shared))
    }

    /// Measures the spans of this table for the timing of `shared`, unless they are measured
    /// for another already; returns whether they now are for `shared`'s.
    pub(crate) fn time_for(&self, shared: &Arc<crate::state::Shared>) -> bool {
        if shared.timing.is_none() {
            return false;
        }
        let _ = self.timing_from.set(Arc::clone(shared));
        self.timed_for(shared)
    }

    /// Whether the registry knows which dispatcher this table's subscriber is part of.
    #[inline]
    pub(crate) fn dispatch_known(&self) -> bool {
        self.dispatch_known
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Records that the registry knows it.
    pub(crate) fn mark_attached_to_dispatch(&self) {
        self.dispatch_known
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Marks the table as used by a subscriber; `false` if one already uses it.
    pub(crate) fn attach(&self) -> bool {
        !self
            .attached
            .swap(true, std::sync::atomic::Ordering::AcqRel)
    }
}

impl Default for SpanTable {
    fn default() -> Self {
        SpanTable {
            // Sized up front so that the first spans to land in each shard do not allocate.
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard {
                        map: HashMap::with_capacity_and_hasher(8, Default::default()),
                        closed: Vec::with_capacity(CLOSED_BATCH),
                    })
                })
                .collect(),
            timing_from: std::sync::OnceLock::new(),
            attached: std::sync::atomic::AtomicBool::new(false),
            dispatch_known: std::sync::atomic::AtomicBool::new(false),
        }
    }
}

impl std::fmt::Debug for SpanTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpanTable")
            .field("len", &self.len())
            .finish()
    }
}

impl SpanTable {
    #[inline]
    fn shard(&self, key: u64) -> &Mutex<Shard> {
        // Middle bits: the maps use the low bits for the bucket and the top seven for the tag.
        &self.shards[(key >> 32) as usize % SHARDS]
    }

    /// Adds a new span's state (replacing a stale one with the same id, which cannot happen
    /// while the registry hands out ids only once per live span).
    pub(crate) fn insert(&self, id: &Id, state: Box<SpanState>) {
        let k = key(id);
        let old = self.shard(k).lock().map.insert(k, state);
        if let Some(old) = old {
            old.recycle();
        }
    }

    /// Runs `f` on the span's state; `None` when the span is unknown. `f` runs under the shard's
    /// lock: it must not call into user code or log.
    #[inline]
    pub(crate) fn with<R>(&self, id: &Id, f: impl FnOnce(&mut SpanState) -> R) -> Option<R> {
        let k = key(id);
        let mut shard = self.shard(k).lock();
        shard.map.get_mut(&k).map(|st| f(st))
    }

    /// Takes a closed span's state out of the table.
    pub(crate) fn remove(&self, id: &Id) -> Option<Box<SpanState>> {
        let k = key(id);
        self.shard(k).lock().map.remove(&k)
    }

    /// Takes a closed span's state out of the table, and queues the duration `note` returns
    /// (`note` runs under the shard's lock). When the shard's queue is full, the queued durations
    /// are handed to `fold` once the lock is released.
    #[inline]
    pub(crate) fn remove_noting(
        &self,
        id: &Id,
        note: impl FnOnce(&mut SpanState) -> Option<Closed>,
        fold: impl FnOnce(&[Closed]),
    ) -> Option<Box<SpanState>> {
        let k = key(id);
        let mut shard = self.shard(k).lock();
        let mut state = shard.map.remove(&k);
        if let Some(closed) = state.as_deref_mut().and_then(note) {
            shard.closed.push(closed);
            if shard.closed.len() >= CLOSED_BATCH {
                // Folded under this lock, so a snapshot never misses a batch in flight. (The
                // aggregates' lock is never held while a shard lock is taken.)
                Self::flush(&mut shard.closed, fold);
            }
        }
        state
    }

    #[cold]
    #[inline(never)]
    fn flush(closed: &mut Vec<Closed>, fold: impl FnOnce(&[Closed])) {
        fold(closed);
        closed.clear();
    }

    /// Takes every queued duration out of every shard.
    pub(crate) fn drain_closed(&self) -> Vec<Closed> {
        let mut out = Vec::new();
        for s in self.shards.iter() {
            out.append(&mut s.lock().closed);
        }
        out
    }

    /// How many spans are live.
    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().map.len()).sum()
    }
}

/// A span entered on this thread.
#[derive(Debug, Clone, Copy)]
struct Entered {
    /// Which layer entered it (the address of its shared state).
    layer: usize,
    id: u64,
    /// When it was entered (raw clock ticks), or `None` when it was already entered on this
    /// thread: the outer entry's interval covers this one.
    since: Option<u64>,
}

thread_local! {
    /// The spans entered on this thread, innermost last. Kept here rather than in each span's
    /// state: entering a span then costs a clock read and a push, not a table lookup.
    static ENTERED: RefCell<Vec<Entered>> = const { RefCell::new(Vec::new()) };
}

/// Notes that `layer` entered span `id` on this thread at `now` (raw ticks).
#[inline]
pub(crate) fn enter(layer: usize, id: &Id, now: u64) {
    let id = id.into_u64();
    let _ = ENTERED.try_with(|stack| {
        if let Ok(mut stack) = stack.try_borrow_mut() {
            let again = stack.iter().any(|e| e.layer == layer && e.id == id);
            stack.push(Entered {
                layer,
                id,
                since: (!again).then_some(now),
            });
        }
    });
}

/// Notes that `layer` exited span `id` on this thread; returns when the busy interval that ends
/// here began, if one does.
#[inline]
pub(crate) fn exit(layer: usize, id: &Id) -> Option<u64> {
    let id = id.into_u64();
    ENTERED
        .try_with(|stack| {
            let mut stack = stack.try_borrow_mut().ok()?;
            let pos = stack.iter().rposition(|e| e.layer == layer && e.id == id)?;
            if pos + 1 == stack.len() {
                stack.pop().and_then(|e| e.since)
            } else {
                stack.remove(pos).since
            }
        })
        .ok()
        .flatten()
}

/// The innermost span `layer` has entered on this thread.
#[inline]
pub(crate) fn current(layer: usize) -> Option<Id> {
    ENTERED
        .try_with(|stack| {
            let stack = stack.try_borrow().ok()?;
            stack
                .iter()
                .rev()
                .find(|e| e.layer == layer)
                .and_then(|e| std::num::NonZeroU64::new(e.id))
                .map(Id::from_non_zero_u64)
        })
        .ok()
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    static CS: tracing_core::callsite::DefaultCallsite = {
        static META: Metadata<'static> = tracing_core::metadata! {
            name: "t",
            target: "t",
            level: tracing_core::Level::INFO,
            fields: &[],
            callsite: &CS,
            kind: tracing_core::metadata::Kind::SPAN,
        };
        tracing_core::callsite::DefaultCallsite::new(&META)
    };

    fn meta() -> &'static Metadata<'static> {
        tracing_core::Callsite::metadata(&CS)
    }

    #[test]
    fn insert_with_remove() {
        let t = SpanTable::default();
        for i in 1..=1000u64 {
            t.insert(&Id::from_u64(i), SpanState::boxed(meta()));
        }
        assert_eq!(t.len(), 1000);
        assert_eq!(t.with(&Id::from_u64(7), |s| s.meta.name()), Some("t"));
        assert!(t.with(&Id::from_u64(1001), |_| ()).is_none());
        for i in 1..=1000u64 {
            t.remove(&Id::from_u64(i)).expect("present").recycle();
        }
        assert_eq!(t.len(), 0);
        // A recycled state comes back empty.
        let st = SpanState::boxed(meta());
        assert!(st.ctx.is_none() && st.timing.is_none() && st.fields.json_members().is_empty());
    }

    #[test]
    fn entered_stack_per_layer() {
        let (a, b) = (1usize, 2usize);
        let (x, y) = (Id::from_u64(10), Id::from_u64(11));
        assert_eq!(current(a), None);
        enter(a, &x, 100);
        enter(b, &y, 150);
        assert_eq!(current(a), Some(x.clone()));
        assert_eq!(current(b), Some(y.clone()));
        // Entered again: the outer interval covers it.
        enter(a, &x, 200);
        assert_eq!(exit(a, &x), None);
        assert_eq!(exit(a, &x), Some(100));
        assert_eq!(exit(a, &x), None);
        assert_eq!(current(a), None);
        assert_eq!(exit(b, &y), Some(150));
    }

    #[test]
    fn ids_spread_over_shards() {
        let t = SpanTable::default();
        let mut used = std::collections::HashSet::new();
        for i in 1..=256u64 {
            used.insert(t.shard(key(&Id::from_u64(i))) as *const _ as usize);
        }
        assert!(used.len() > SHARDS / 2, "{} shards used", used.len());
        // Ids that differ only in high bits (a registry slot reused, a later generation) or
        // that share their low bits spread as well.
        for stride in [64u64, 1 << 22, 1 << 40] {
            let mut used = std::collections::HashSet::new();
            for i in 1..=256u64 {
                used.insert(t.shard(key(&Id::from_u64(i * stride))) as *const _ as usize);
            }
            assert!(
                used.len() > SHARDS / 2,
                "stride {stride}: {} shards used",
                used.len()
            );
        }
    }
}
