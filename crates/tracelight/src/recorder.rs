//! The flight recorder: the lines the filter leaves out, kept per unit of work and written when
//! the work fails.
//!
//! At 3 AM the INFO lines show *that* a request failed; the DEBUG lines that would show *why* were
//! never written, because DEBUG is off in production. With the recorder on, an event that the
//! filter leaves out (down to [`FlightRecorder::level`], TRACE by default) inside a **unit of
//! work** — the request span of the [http](crate::http) layer, or a span whose name you list
//! ([`FlightRecorder::unit`]: a job, a message handler; at any level) — is formatted and redacted as any line
//! and kept in that unit's buffer instead of being dropped. When the unit **fails**, the lines
//! kept are written, in order, before the line that says so, each with its original timestamp and
//! `"replayed":true`, to the streams they would have gone to. A unit fails on:
//!
//! - an ERROR event inside it (a panic inside it is one: the panic hook logs at ERROR);
//! - a 5xx response (the http layer's access line, WARN on `tracelight::access`);
//! - a span inside it slower than its threshold (the `span_closed` line, WARN on
//!   `tracelight::timing`).
//!
//! After a failure, the unit's later left-out lines are written at once (still marked). When the
//! unit ends without failing, its lines are dropped, at no I/O cost.
//!
//! Memory is bounded per unit ([`FlightRecorder::max_events`],
//! [`FlightRecorder::max_unit_bytes`]) and in total ([`FlightRecorder::max_total_bytes`]); the
//! oldest lines of a unit go first, and every line dropped for a bound is counted
//! ([`Handle::flight_recorder`](crate::Handle::flight_recorder)). Lines dropped by DEBUG sampling
//! ([`debug_sample_rate`](crate::sample::SamplingConfig::debug_sample_rate)) inside a unit are
//! kept by the recorder in the same way: sampled requests have their DEBUG lines live, the others
//! get theirs when they fail.
//!
//! ```
//! use std::time::Duration;
//! let w = tracelight::sink::MemoryWriter::new();
//! let _g = tracelight::builder()
//!     .flight_recorder(tracelight::FlightRecorder::new().unit("job"))
//!     .format(tracelight::Format::Json)
//!     .writer(w.clone())
//!     .init_local()
//!     .unwrap();
//! tracing::info_span!("job", id = 1).in_scope(|| {
//!     tracing::debug!("fetched 3 rows");  // kept, not written: the job succeeds
//! });
//! tracing::info_span!("job", id = 2).in_scope(|| {
//!     tracing::debug!("fetched 0 rows");  // kept, then written before the error
//!     tracing::error!("nothing to do");
//! });
//! let lines = w.lines();
//! assert_eq!(lines.len(), 2);
//! assert!(lines[0].contains("fetched 0 rows") && lines[0].contains("\"replayed\":true"));
//! assert!(lines[1].contains("nothing to do"));
//! ```
//!
//! The recorder needs tracelight's filter in front of the layers ([`init`](crate::init) puts it
//! there): it is the filter that lets the left-out events through to be kept. The OpenTelemetry
//! layers stacked by [`init`](crate::init) do not see them; a layer of your own stacked beside
//! tracelight's filter does, unless it is behind
//! [`LogFilter::for_layer`](crate::LogFilter::for_layer).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use tracing_core::{Level, Metadata};

/// The flight recorder's settings (see [the module](self)); off unless given to
/// [`Builder::flight_recorder`](crate::Builder::flight_recorder) or turned on by
/// `LOG_FLIGHT_RECORDER`.
///
/// ```
/// let recorder = tracelight::FlightRecorder::new()
///     .unit("handle_message")
///     .level(tracing::Level::DEBUG)
///     .max_events(500);
/// let _builder = tracelight::builder().flight_recorder(recorder);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct FlightRecorder {
    pub(crate) level: Level,
    pub(crate) units: Vec<String>,
    pub(crate) max_events: usize,
    pub(crate) max_unit_bytes: usize,
    pub(crate) max_total_bytes: usize,
}

impl Default for FlightRecorder {
    fn default() -> Self {
        FlightRecorder {
            level: Level::TRACE,
            units: Vec::new(),
            max_events: 1000,
            max_unit_bytes: 256 * 1024,
            max_total_bytes: 32 * 1024 * 1024,
        }
    }
}

impl FlightRecorder {
    /// The defaults: the http layer's request span as the unit, TRACE and DEBUG kept, 1 000 lines
    /// and 256 KiB per unit, 32 MiB in total.
    pub fn new() -> Self {
        FlightRecorder::default()
    }

    /// The most verbose level kept (`DEBUG`: TRACE lines are not kept). Every level the filter
    /// leaves out down to this one is kept.
    pub fn level(mut self, level: Level) -> Self {
        self.level = level;
        self
    }

    /// Spans with this name are units of work too (the http layer's request span always is).
    pub fn unit(mut self, span_name: impl Into<String>) -> Self {
        let name = span_name.into();
        if !name.is_empty() && !self.units.contains(&name) {
            self.units.push(name);
        }
        self
    }

    /// At most this many lines kept per unit (the oldest go first).
    pub fn max_events(mut self, n: usize) -> Self {
        self.max_events = n.max(1);
        self
    }

    /// At most this many bytes of lines kept per unit (the oldest go first).
    pub fn max_unit_bytes(mut self, bytes: usize) -> Self {
        self.max_unit_bytes = bytes.max(1);
        self
    }

    /// At most this many bytes of lines kept by all units together: a unit that would go over it
    /// drops its own oldest lines, and a line that does not fit even then is dropped.
    pub fn max_total_bytes(mut self, bytes: usize) -> Self {
        self.max_total_bytes = bytes.max(1);
        self
    }

    /// Whether an event at `level` is one the recorder keeps when the filter leaves it out.
    #[inline]
    pub(crate) fn covers(&self, level: &Level) -> bool {
        *level <= self.level
    }
}

/// The flight recorder's settings from the environment (`LOG_FLIGHT_RECORDER` and
/// `LOG_FLIGHT_RECORDER_*`, see [`Config`](crate::Config)).
///
/// `on` turns the recorder on (with the defaults, or with what the code gave
/// [`Builder::flight_recorder`](crate::Builder::flight_recorder)) or off (whatever the code
/// says: the operator's switch). The other settings tune the recorder in force, over what the code
/// set; set while the recorder is off, they are reported at start.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct RecorderEnv {
    /// `LOG_FLIGHT_RECORDER`.
    pub on: Option<bool>,
    /// `LOG_FLIGHT_RECORDER_LEVEL`.
    pub level: Option<Level>,
    /// `LOG_FLIGHT_RECORDER_UNITS`.
    pub units: Vec<String>,
    /// `LOG_FLIGHT_RECORDER_MAX_EVENTS`.
    pub max_events: Option<usize>,
    /// `LOG_FLIGHT_RECORDER_MAX_BYTES`.
    pub max_total_bytes: Option<usize>,
}

impl RecorderEnv {
    /// The variables set besides `LOG_FLIGHT_RECORDER`.
    pub(crate) fn tuning(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.level.is_some() {
            v.push("LOG_FLIGHT_RECORDER_LEVEL");
        }
        if !self.units.is_empty() {
            v.push("LOG_FLIGHT_RECORDER_UNITS");
        }
        if self.max_events.is_some() {
            v.push("LOG_FLIGHT_RECORDER_MAX_EVENTS");
        }
        if self.max_total_bytes.is_some() {
            v.push("LOG_FLIGHT_RECORDER_MAX_BYTES");
        }
        v
    }

    /// The recorder in force: `code`'s, switched by `on`, tuned by the rest.
    pub(crate) fn resolve(&self, code: Option<&FlightRecorder>) -> Option<FlightRecorder> {
        let mut r = match self.on {
            Some(false) => return None,
            Some(true) => code.cloned().unwrap_or_default(),
            None => code.cloned()?,
        };
        if let Some(l) = self.level {
            r = r.level(l);
        }
        for u in &self.units {
            r = r.unit(u.clone());
        }
        if let Some(n) = self.max_events {
            r = r.max_events(n);
        }
        if let Some(n) = self.max_total_bytes {
            r = r.max_total_bytes(n);
        }
        Some(r)
    }
}

/// What the recorder did, since start ([`Handle::flight_recorder`](crate::Handle::flight_recorder)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecorderStats {
    /// Lines kept in a unit's buffer.
    pub recorded: u64,
    /// Lines written because their unit failed: the kept ones, and those the failed unit left
    /// out afterwards (never kept, so this can exceed `recorded`).
    pub replayed: u64,
    /// Lines dropped with their unit when it ended without failing.
    pub discarded: u64,
    /// Lines dropped for a bound (per unit or in total), or kept into a unit that was gone.
    pub dropped: u64,
    /// Bytes kept now, by all units.
    pub bytes: u64,
}

/// The recorder of one layer: its settings, the bytes all units hold, and its counts.
#[derive(Debug)]
pub(crate) struct Recorder {
    pub(crate) config: FlightRecorder,
    used: AtomicUsize,
    recorded: AtomicU64,
    replayed: AtomicU64,
    discarded: AtomicU64,
    dropped: AtomicU64,
}

impl Recorder {
    pub(crate) fn new(config: FlightRecorder) -> Recorder {
        Recorder {
            config,
            used: AtomicUsize::new(0),
            recorded: AtomicU64::new(0),
            replayed: AtomicU64::new(0),
            discarded: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        }
    }

    /// Whether a span with this metadata is a unit of work.
    pub(crate) fn is_unit(&self, meta: &Metadata<'_>) -> bool {
        (meta.target() == "tracelight::http" && meta.name() == "request")
            || self.config.units.iter().any(|u| u == meta.name())
    }

    /// Whether a line written at `meta` makes its unit fail.
    #[inline]
    pub(crate) fn fails(meta: &Metadata<'_>) -> bool {
        match *meta.level() {
            Level::ERROR => true,
            Level::WARN => matches!(meta.target(), "tracelight::access" | "tracelight::timing"),
            _ => false,
        }
    }

    pub(crate) fn stats(&self) -> RecorderStats {
        RecorderStats {
            recorded: self.recorded.load(Ordering::Relaxed),
            replayed: self.replayed.load(Ordering::Relaxed),
            discarded: self.discarded.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            bytes: self.used.load(Ordering::Relaxed) as u64,
        }
    }

    /// Keeps a line (its renderings `lines`, for the streams of `mask`) in `rec`.
    pub(crate) fn keep(&self, rec: &mut Recording, mask: u64, lines: [&[u8]; 3]) {
        let size: usize = lines.iter().map(|l| l.len()).sum::<usize>() + ENTRY_OVERHEAD;
        let cfg = &self.config;
        if size > cfg.max_unit_bytes {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        // A line that would not fit in the total even with this unit's lines gone is dropped
        // before any of them is.
        let others = self.used.load(Ordering::Relaxed).saturating_sub(rec.bytes);
        if others + size > cfg.max_total_bytes {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        // Room in the unit, then in the total; the unit's oldest lines go first.
        while rec.entries.len() >= cfg.max_events || rec.bytes + size > cfg.max_unit_bytes {
            self.drop_oldest(rec);
        }
        loop {
            let used = self.used.load(Ordering::Relaxed);
            if used + size <= cfg.max_total_bytes {
                if self
                    .used
                    .compare_exchange_weak(used, used + size, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
                {
                    break;
                }
                continue;
            }
            if rec.entries.is_empty() {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                return;
            }
            self.drop_oldest(rec);
        }
        rec.compact();
        let start = rec.data.len();
        let mut lens = [0u32; 3];
        for (i, l) in lines.iter().enumerate() {
            rec.data.extend_from_slice(l);
            lens[i] = l.len() as u32;
        }
        rec.entries.push_back(Entry { mask, start, lens });
        rec.bytes += size;
        self.recorded.fetch_add(1, Ordering::Relaxed);
    }

    fn drop_oldest(&self, rec: &mut Recording) {
        if let Some(e) = rec.entries.pop_front() {
            let size = e.size();
            rec.bytes -= size;
            self.used.fetch_sub(size, Ordering::Relaxed);
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Hands each kept line of `rec` to `write` (its streams and renderings), oldest first, and
    /// empties it.
    pub(crate) fn replay(&self, rec: &mut Recording, mut write: impl FnMut(u64, [&[u8]; 3])) {
        for e in &rec.entries {
            let mut at = e.start;
            let mut part = |n: u32| {
                let s = &rec.data[at..at + n as usize];
                at += n as usize;
                s
            };
            let lines = [part(e.lens[0]), part(e.lens[1]), part(e.lens[2])];
            write(e.mask, lines);
        }
        self.replayed
            .fetch_add(rec.entries.len() as u64, Ordering::Relaxed);
        self.release(rec);
        rec.failed = true;
    }

    /// Counts a line whose unit's state was gone (dropped).
    pub(crate) fn lost(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a line of a failed unit written at once.
    pub(crate) fn written_after_failure(&self) {
        self.replayed.fetch_add(1, Ordering::Relaxed);
    }

    /// Drops what `rec` holds, as its unit ends without failing.
    pub(crate) fn discard(&self, rec: &mut Recording) {
        self.discarded
            .fetch_add(rec.entries.len() as u64, Ordering::Relaxed);
        self.release(rec);
        rec.failed = false;
    }

    fn release(&self, rec: &mut Recording) {
        self.used.fetch_sub(rec.bytes, Ordering::Relaxed);
        rec.entries.clear();
        rec.data.clear();
        rec.bytes = 0;
    }
}

/// What each kept line costs besides its bytes (its entry), so that many empty lines are bounded
/// too.
const ENTRY_OVERHEAD: usize = std::mem::size_of::<Entry>();

#[derive(Debug, Clone, Copy)]
struct Entry {
    mask: u64,
    start: usize,
    /// The lengths of the JSON, text and coloured text renderings, one after the other.
    lens: [u32; 3],
}

impl Entry {
    fn size(&self) -> usize {
        self.lens.iter().map(|&n| n as usize).sum::<usize>() + ENTRY_OVERHEAD
    }
}

/// The lines one unit of work keeps (in its span's state, reused with it).
#[derive(Debug, Default)]
pub(crate) struct Recording {
    data: Vec<u8>,
    entries: VecDeque<Entry>,
    /// The bytes counted against the bounds.
    bytes: usize,
    /// The unit failed: its later lines are written at once.
    pub(crate) failed: bool,
}

impl Recording {
    /// Whether it holds nothing (and its unit has not failed).
    pub(crate) fn is_idle(&self) -> bool {
        self.entries.is_empty() && !self.failed
    }

    /// The capacity it holds on to, for the span pool's bound.
    pub(crate) fn capacity(&self) -> usize {
        self.data.capacity() + self.entries.capacity() * ENTRY_OVERHEAD
    }

    /// Moves the live lines to the front of the buffer once the dropped ones take half of it.
    fn compact(&mut self) {
        let Some(first) = self.entries.front().map(|e| e.start) else {
            self.data.clear();
            return;
        };
        if first > 0 && first >= self.data.len() / 2 {
            self.data.drain(..first);
            for e in &mut self.entries {
                e.start -= first;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(r: &Recorder, rec: &mut Recording) -> Vec<String> {
        let mut out = Vec::new();
        r.replay(rec, |_, l| {
            out.push(String::from_utf8_lossy(l[0]).into_owned())
        });
        out
    }

    #[test]
    fn the_oldest_go_first_and_are_counted() {
        let r = Recorder::new(FlightRecorder::new().max_events(3));
        let mut rec = Recording::default();
        for i in 0..10 {
            r.keep(&mut rec, 1, [format!("line {i}").as_bytes(), b"", b""]);
        }
        assert_eq!(lines(&r, &mut rec), ["line 7", "line 8", "line 9"]);
        let s = r.stats();
        assert_eq!((s.recorded, s.dropped, s.replayed, s.bytes), (10, 7, 3, 0));
        assert!(rec.failed);
    }

    #[test]
    fn the_total_bound_holds_across_units() {
        let line = [b'x'; 100];
        let size = 100 + ENTRY_OVERHEAD;
        let r = Recorder::new(FlightRecorder::new().max_total_bytes(size * 5));
        let mut units: Vec<Recording> = (0..4).map(|_| Recording::default()).collect();
        for round in 0..10 {
            for u in &mut units {
                r.keep(u, 1, [&line, b"", b""]);
                assert!(r.stats().bytes as usize <= size * 5, "round {round}");
            }
        }
        for u in &mut units {
            r.discard(u);
        }
        let s = r.stats();
        assert_eq!(s.bytes, 0);
        assert_eq!(s.recorded, 40);
        assert_eq!(s.dropped + s.discarded, 40);
    }

    #[test]
    fn a_line_larger_than_a_unit_is_dropped_and_counted() {
        let r = Recorder::new(FlightRecorder::new().max_unit_bytes(10));
        let mut rec = Recording::default();
        r.keep(&mut rec, 1, [&[b'x'; 64], b"", b""]);
        assert_eq!(r.stats().dropped, 1);
        assert!(rec.is_idle());
    }

    #[test]
    fn the_buffer_is_compacted_and_reused() {
        let r = Recorder::new(FlightRecorder::new().max_events(4));
        let mut rec = Recording::default();
        for i in 0..1000 {
            r.keep(&mut rec, 1, [format!("{i:04}").as_bytes(), b"t", b""]);
            assert!(rec.data.len() <= 8 * 5 * 2, "{}", rec.data.len());
        }
        let mut got = Vec::new();
        r.replay(&mut rec, |_, l| {
            got.push((String::from_utf8_lossy(l[0]).into_owned(), l[1].to_vec()))
        });
        assert_eq!(got.len(), 4);
        assert_eq!(got[0].0, "0996");
        assert_eq!(got[3], ("0999".to_owned(), b"t".to_vec()));
    }
}
