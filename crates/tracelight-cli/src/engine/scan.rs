//! The scanner: reads files in parallel, finds candidate lines, decides them, hands matches on.
//!
//! Plain files are cut into chunks read with positioned reads (`pread`) by a small pool of worker
//! threads, one per core; each chunk owns the lines that *start* inside it and reads past its end
//! to finish its last line. A `.gz` file is one work item: a decoder thread inflates it into blocks
//! while the worker searches the previous block.
//!
//! Inside a block, when the query has a needle (a request id, a field name, a value), the block is
//! searched with `memchr::memmem` and only the lines around the hits are looked at; otherwise every
//! line is visited (split with `memchr`) and decided from its fixed-position prefix when it can
//! be. A line is only parsed when a fast check cannot decide it or when it matched.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::Duration;

use memchr::{memchr, memrchr};
use serde::de::IgnoredAny;
use serde_json::Value;

use crate::engine::filter::{
    canonical_level, fast_timestamp, is_canonical, value_timestamp, Decision, Plan,
};
use crate::engine::source::Source;

/// What to do with the lines that match.
pub(crate) trait Collector: Sync {
    /// Per-work-item state; parts are combined by the caller in file order.
    type Part: Send;
    /// Does [`Collector::accept`] need the parsed line?
    fn wants_value(&self) -> bool;
    /// A fresh part.
    fn new_part(&self) -> Self::Part;
    /// Takes one matching line: its timestamp (when it has a readable one), its raw bytes, and the
    /// parsed line when [`Collector::wants_value`] is true.
    fn accept(&self, part: &mut Self::Part, ts: Option<i64>, line: &[u8], value: Option<&Value>);
    /// Takes a matching line that was decided without a parse and has not been validated yet.
    /// Returns `false` when the line is not valid JSON (it is then counted as invalid).
    ///
    /// The default validates the line and hands it to [`Collector::accept`]; a collector that
    /// parses lines itself can do both in one pass.
    fn accept_unparsed(&self, part: &mut Self::Part, ts: Option<i64>, line: &[u8]) -> bool {
        let valid = std::str::from_utf8(line)
            .ok()
            .is_some_and(|s| serde_json::from_str::<IgnoredAny>(s).is_ok());
        if valid {
            self.accept(part, ts, line, None);
        }
        valid
    }
    /// Told where the block of lines handed over next starts: `offset` is the byte offset of
    /// `data[0]` in its file (in the inflated stream of a `.gz`), and the lines given until the
    /// next call are slices of `data`. A collector that keeps where lines are (to read a few
    /// of them again later) takes it; the default ignores it.
    fn block_at(&self, _part: &mut Self::Part, _offset: u64, _data: &[u8]) {}
}

/// The outcome of one work item.
#[derive(Debug)]
pub(crate) struct ItemResult<P> {
    /// Index of the source file.
    pub(crate) source: usize,
    /// What the collector gathered.
    pub(crate) part: P,
    /// Lines that are not a JSON object by their shape ([`Shape::Malformed`]): every line of
    /// the item is counted, whatever the query.
    pub(crate) malformed: u64,
    /// Candidate lines with the shape of an object that did not parse.
    pub(crate) invalid: u64,
    /// An I/O or decompression error that cut the item short.
    pub(crate) error: Option<String>,
}

/// How to scan.
#[derive(Debug, Clone)]
pub(crate) struct ScanOptions {
    /// Worker threads.
    pub(crate) threads: usize,
    /// Bytes per chunk of a plain file.
    pub(crate) chunk_size: usize,
    /// Show a progress bar on stderr.
    pub(crate) progress: bool,
    /// Map plain files into memory (else read them into page-aligned buffers).
    pub(crate) mmap: bool,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            chunk_size: 4 << 20,
            progress: false,
            mmap: true,
        }
    }
}

/// Where [`LineSink::fused_bulk`] is: lines ending before `checked_to` were checked for their
/// shape, lines ending before `decided_to` were decided.
#[cfg(target_arch = "x86_64")]
struct Bulk {
    checked_to: usize,
    decided_to: usize,
}

/// Bytes of a block searched at a time (then counted), so that both passes find it in the cache.
const PIECE: usize = 128 << 10;

/// Decides lines against a plan and feeds matches to a collector.
struct LineSink<'a, C: Collector> {
    plan: &'a Plan,
    coll: &'a C,
    part: C::Part,
    malformed: u64,
    invalid: u64,
}

impl<'a, C: Collector> LineSink<'a, C> {
    fn new(plan: &'a Plan, coll: &'a C) -> Self {
        LineSink {
            plan,
            coll,
            part: coll.new_part(),
            malformed: 0,
            invalid: 0,
        }
    }

    /// What the sink gathered, as the result of a work item of file `source`.
    fn into_result(self, source: usize, error: Option<String>) -> ItemResult<C::Part> {
        ItemResult {
            source,
            part: self.part,
            malformed: self.malformed,
            invalid: self.invalid,
            error,
        }
    }

    /// [`LineSink::block`] of `data`, which starts at byte `offset` of its file.
    fn block_at(&mut self, data: &[u8], offset: u64) {
        self.coll.block_at(&mut self.part, offset, data);
        self.block(data);
    }

    /// Visits every line of `data` (complete lines; the last one may lack its newline).
    fn block(&mut self, data: &[u8]) {
        #[cfg(target_arch = "x86_64")]
        if let Some(pair) = &self.plan.pair {
            if std::is_x86_feature_detected!("avx2") {
                return self.fused(data, pair);
            }
        }
        if self.plan.primary.is_some() {
            // Only the lines around the needle's hits are looked at, but every line is counted
            // if it is not a JSON object, so that the count does not depend on the query. Both
            // passes run over one piece at a time, while it is in the cache.
            let mut start = 0;
            while start < data.len() {
                let want = (start + PIECE).min(data.len());
                let end = match memchr(b'\n', &data[want - 1..]) {
                    Some(i) => want + i,
                    None => data.len(),
                };
                let piece = &data[start..end];
                self.malformed += count_malformed(piece);
                self.needle_lines(piece);
                start = end;
            }
        } else {
            let mut start = 0;
            #[cfg(target_arch = "x86_64")]
            if std::is_x86_feature_detected!("avx2") {
                // SAFETY: AVX2 is available (checked above).
                #[allow(unsafe_code)]
                unsafe {
                    avx2::newlines(data, &mut |nl| {
                        self.visit(&data[start..nl]);
                        start = nl + 1;
                    });
                }
            } else {
                for nl in memchr::memchr_iter(b'\n', data) {
                    self.visit(&data[start..nl]);
                    start = nl + 1;
                }
            }
            #[cfg(not(target_arch = "x86_64"))]
            for nl in memchr::memchr_iter(b'\n', data) {
                self.visit(&data[start..nl]);
                start = nl + 1;
            }
            if start < data.len() {
                self.visit(&data[start..]);
            }
        }
    }

    /// One pass over `data` for a query with a needle: the newlines and the places where the
    /// needle may start are found together, 64 bytes at a time, so that counting every line's
    /// shape costs no second read of the data.
    #[cfg(target_arch = "x86_64")]
    fn fused(&mut self, data: &[u8], pair: &NeedlePair) {
        if !pair.canonical_only {
            return self.fused_bulk(data, pair);
        }
        // `--level error`: a line tracelight wrote is decided by the level at its fixed place,
        // so the newlines alone are searched (a needle's hit elsewhere in such a line decides
        // nothing), and every other line is decided in full.
        let mut start = 0;
        // SAFETY: AVX2 is available (checked by the caller).
        #[allow(unsafe_code)]
        unsafe {
            avx2::newlines(data, &mut |nl| {
                self.level_line(&data[start..nl]);
                start = nl + 1;
            });
        }
        if start < data.len() {
            self.level_line(&data[start..]);
        }
    }

    /// A line of a `--level error` block: counted when it is not a JSON object; decided unless
    /// the level at tracelight's fixed place is one of the four below ERROR.
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    fn level_line(&mut self, raw: &[u8]) {
        let line = raw_line(raw);
        match shape(line) {
            Shape::Malformed => self.malformed += 1,
            Shape::Object => {
                if canonical_level(line).is_none_or(|l| l == crate::engine::filter::Level::Error) {
                    self.line(line)
                }
            }
            Shape::Blank => {}
        }
    }

    /// The fused pass when only the needle's lines need deciding: the vector loop reports only
    /// the 64-byte blocks with a newline not between `}` and `{` (a line there may be malformed:
    /// its lines are checked one by one) and the needle's candidates; every other newline is
    /// known to end a line `…}` and start a line `{…` without a look.
    #[cfg(target_arch = "x86_64")]
    fn fused_bulk(&mut self, data: &[u8], pair: &NeedlePair) {
        let mut st = Bulk {
            checked_to: 0,
            decided_to: 0,
        };
        // Lines are looked at in order of their ends. The first line (no newline before it to
        // vouch for its start) first, and what the vector loop does not cover at the start.
        let first_end = memchr(b'\n', data).unwrap_or(data.len());
        self.bulk_check(data, &mut st, 0, first_end);
        if data.first() == Some(&b'\n') {
            self.bulk_newline(data, &mut st, 0);
        } else if data.starts_with(&pair.needle) {
            self.bulk_hit(data, pair, &mut st, 0);
        }
        // SAFETY: AVX2 is available (checked by the caller).
        #[allow(unsafe_code)]
        let covered_to = unsafe {
            avx2::suspect_blocks_and_pairs(data, pair, &mut |ev| match ev {
                avx2::Event::Hit(i) => self.bulk_hit(data, pair, &mut st, i),
                avx2::Event::Newline(block) => {
                    let end = (block + 64).min(data.len());
                    for nl in memchr::memchr_iter(b'\n', &data[block..end]) {
                        self.bulk_newline(data, &mut st, block + nl);
                    }
                }
            })
        };
        // The last bytes, one by one; then the last line (no newline after it to vouch for
        // its end).
        for i in covered_to.max(1)..data.len() {
            if data[i] == b'\n' {
                self.bulk_newline(data, &mut st, i);
            } else if data[i..].starts_with(&pair.needle) {
                self.bulk_hit(data, pair, &mut st, i);
            }
        }
        let last_start = memrchr(b'\n', data).map_or(0, |i| i + 1);
        self.bulk_check(data, &mut st, last_start, data.len());
    }

    /// A newline that may border a malformed line: checks the line it ends and the one it starts.
    #[cfg(target_arch = "x86_64")]
    fn bulk_newline(&mut self, data: &[u8], st: &mut Bulk, nl: usize) {
        let start = memrchr(b'\n', &data[..nl]).map_or(0, |i| i + 1);
        self.bulk_check(data, st, start, nl);
        let next_end = memchr(b'\n', &data[nl + 1..]).map_or(data.len(), |i| nl + 1 + i);
        self.bulk_check(data, st, nl + 1, next_end);
    }

    /// Counts the line `data[start..end]` if it is malformed, unless a line ending there or
    /// later was checked already (they come in order of their ends).
    #[cfg(target_arch = "x86_64")]
    fn bulk_check(&mut self, data: &[u8], st: &mut Bulk, start: usize, end: usize) {
        if end < st.checked_to {
            return;
        }
        st.checked_to = end + 1;
        if shape(raw_line(&data[start..end])) == Shape::Malformed {
            self.malformed += 1;
        }
    }

    /// A place where the needle may start: decides its line when the needle is there.
    #[cfg(target_arch = "x86_64")]
    fn bulk_hit(&mut self, data: &[u8], pair: &NeedlePair, st: &mut Bulk, i: usize) {
        if i < st.decided_to || !data[i..].starts_with(&pair.needle) {
            return;
        }
        let start = memrchr(b'\n', &data[..i]).map_or(0, |k| k + 1);
        let end = memchr(b'\n', &data[i..]).map_or(data.len(), |k| i + k);
        st.decided_to = end + 1;
        let line = raw_line(&data[start..end]);
        if shape(line) == Shape::Object {
            self.line(line);
        }
    }

    /// Decides the lines of `data` (complete lines) that hold the primary needle.
    fn needle_lines(&mut self, data: &[u8]) {
        if let Some(needle) = &self.plan.primary {
            let mut pos = 0;
            while pos < data.len() {
                let Some(hit) = needle.find(&data[pos..]) else {
                    break;
                };
                let abs = pos + hit;
                let start = memrchr(b'\n', &data[pos..abs]).map_or(pos, |i| pos + i + 1);
                let end = memchr(b'\n', &data[abs..]).map_or(data.len(), |i| abs + i);
                let raw = &data[start..end];
                let line = raw_line(raw);
                if shape(line) == Shape::Object {
                    self.line(line);
                }
                pos = end + 1;
            }
        }
    }

    /// A line of a block visited in full: counted when it is not a JSON object, else decided.
    #[inline]
    fn visit(&mut self, raw: &[u8]) {
        let line = raw_line(raw);
        match shape(line) {
            Shape::Object => self.line(line),
            Shape::Blank => {}
            Shape::Malformed => self.malformed += 1,
        }
    }

    /// Decides a line that has the shape of a JSON object (less its line terminator).
    #[inline]
    fn line(&mut self, line: &[u8]) {
        let plan = self.plan;
        if plan.parse_everything {
            return self.parse_and_decide(line, false, true);
        }
        for n in &plan.others {
            if n.find(line).is_none() {
                return;
            }
        }
        if !is_canonical(line) {
            return self.parse_and_decide(line, false, true);
        }
        let mut unknown = false;
        for f in &plan.filters {
            match f.fast(line) {
                Decision::Accept => {}
                Decision::Reject => return,
                Decision::Unknown => unknown = true,
            }
        }
        if unknown || self.coll.wants_value() {
            return self.parse_and_decide(line, true, unknown);
        }
        if !self
            .coll
            .accept_unparsed(&mut self.part, fast_timestamp(line), line)
        {
            self.invalid += 1;
        }
    }

    fn parse_and_decide(&mut self, line: &[u8], canonical: bool, decide: bool) {
        let parsed = if canonical {
            serde_json::from_slice(line).ok()
        } else {
            crate::engine::preset::parse_line(line)
        };
        let v: Value = match parsed {
            Some(v @ Value::Object(_)) => v,
            _ => {
                self.invalid += 1;
                return;
            }
        };
        if decide && !self.plan.filters.iter().all(|f| f.matches(&v)) {
            return;
        }
        let ts = if canonical {
            fast_timestamp(line)
        } else {
            None
        }
        .or_else(|| value_timestamp(&v));
        self.coll.accept(&mut self.part, ts, line, Some(&v));
    }
}

/// What a line looks like from its first and last bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// Empty or only whitespace: not a line of log, not counted.
    Blank,
    /// Starts with `{` and ends with `}` (around any whitespace): a JSON object, unless its
    /// inside is broken, which only a parse tells.
    Object,
    /// Anything else: cut short (a crash in the middle of a write) or not JSON.
    Malformed,
}

/// The [`Shape`] of a line (less its line terminator).
#[inline]
pub(crate) fn shape(line: &[u8]) -> Shape {
    match (line.first(), line.last()) {
        (Some(b'{'), Some(b'}')) => Shape::Object,
        (None, _) => Shape::Blank,
        _ => {
            let t = line.trim_ascii();
            match (t.first(), t.last()) {
                (None, _) => Shape::Blank,
                (Some(b'{'), Some(b'}')) => Shape::Object,
                _ => Shape::Malformed,
            }
        }
    }
}

/// How many lines of `data` are [`Shape::Malformed`].
///
/// This runs over every byte of every query, so most of the work is finding the newlines: with
/// AVX2, 64 bytes at a time into a bit mask (no call per line); otherwise with `memchr`. Each
/// line gets a look at its first and last byte, and the full [`shape`] check only when that
/// look fails.
fn count_malformed(data: &[u8]) -> u64 {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        let mut lines = LineEnds::new(data);
        // SAFETY: AVX2 is available (checked above).
        #[allow(unsafe_code)]
        unsafe {
            avx2::newlines(data, &mut |nl| lines.line_to(nl));
        }
        return lines.finish();
    }
    let mut lines = LineEnds::new(data);
    for nl in memchr::memchr_iter(b'\n', data) {
        lines.line_to(nl);
    }
    lines.finish()
}

/// Counts malformed lines as their newlines are found, in order.
struct LineEnds<'a> {
    data: &'a [u8],
    start: usize,
    malformed: u64,
}

impl<'a> LineEnds<'a> {
    fn new(data: &'a [u8]) -> Self {
        LineEnds {
            data,
            start: 0,
            malformed: 0,
        }
    }

    /// The line that ends with the newline at `nl`.
    #[inline(always)]
    fn line_to(&mut self, nl: usize) {
        let line = &self.data[self.start..nl];
        self.start = nl + 1;
        self.malformed += u64::from(shape(raw_line(line)) == Shape::Malformed);
    }

    fn finish(mut self) -> u64 {
        if self.start < self.data.len() {
            self.line_to(self.data.len());
        }
        self.malformed
    }
}

/// The needle of a query with the two bytes of it that the vector search looks for: its first
/// byte (compared in the same load that finds the newlines) and its rarest other byte, as
/// `memchr` ranks bytes.
#[derive(Debug)]
pub(crate) struct NeedlePair {
    /// The needle.
    pub(crate) needle: Vec<u8>,
    /// The needle's first byte.
    pub(crate) b1: u8,
    /// Offset of the second byte looked for (not 0), and the byte.
    pub(crate) i2: usize,
    pub(crate) b2: u8,
    /// Only lines laid out the way tracelight writes them are sure to hold the needle when they
    /// match (it is the level at its fixed place); every other line is a candidate too.
    pub(crate) canonical_only: bool,
}

impl NeedlePair {
    /// The pair for `needle`, when it is at least two bytes long.
    pub(crate) fn new(needle: &[u8]) -> Option<NeedlePair> {
        let pair = memchr::arch::all::packedpair::Pair::new(needle)?;
        let i2 = match usize::from(pair.index1()) {
            0 => usize::from(pair.index2()),
            i => i,
        };
        (i2 > 0 && i2 < needle.len() && i2 <= 255).then(|| NeedlePair {
            needle: needle.to_vec(),
            b1: needle[0],
            i2,
            b2: needle[i2],
            canonical_only: false,
        })
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod avx2 {
    use std::arch::x86_64::{
        __m256i, _mm256_and_si256, _mm256_andnot_si256, _mm256_cmpeq_epi8, _mm256_loadu_si256,
        _mm256_movemask_epi8, _mm256_or_si256, _mm256_set1_epi8, _mm256_testz_si256,
    };

    use super::NeedlePair;

    /// What [`suspect_blocks_and_pairs`] found, in the order of the data.
    #[derive(Debug, Clone, Copy)]
    pub(super) enum Event {
        /// A `\n` at this index.
        Newline(usize),
        /// The needle may start at this index (its two looked-for bytes are there).
        Hit(usize),
    }

    /// Calls `f` with `Event::Newline(block)` for every 64-byte block of `data` that holds a
    /// `\n` not preceded by `}` or not followed by `{`, and with `Event::Hit` for every index
    /// where the pair's two bytes are at their offsets, in index order. It covers `data[1..k]`
    /// and returns `k`: byte 0 and the bytes from `k` are the caller's to look at.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn suspect_blocks_and_pairs(
        data: &[u8],
        pair: &NeedlePair,
        f: &mut impl FnMut(Event),
    ) -> usize {
        let nl = _mm256_set1_epi8(b'\n' as i8);
        let close = _mm256_set1_epi8(b'}' as i8);
        let open = _mm256_set1_epi8(b'{' as i8);
        let v1 = _mm256_set1_epi8(pair.b1 as i8);
        let v2 = _mm256_set1_epi8(pair.b2 as i8);
        // Loads reach one byte before the block and `i2 + 32` bytes past its second half.
        let reach = (pair.i2 + 64).max(65);
        let p = data.as_ptr();
        let first = 1usize.min(data.len());
        let mut at = first;
        while at + reach <= data.len() {
            // SAFETY: `at >= 1`, so `at - 1` is inside `data`; every load reads 32 bytes
            // starting at most `reach - 32` bytes past `at`, and `at + reach <= data.len()`.
            let (a, b, pa, pb, na, nb, c2, d2) = unsafe {
                (
                    _mm256_loadu_si256(p.add(at).cast::<__m256i>()),
                    _mm256_loadu_si256(p.add(at + 32).cast::<__m256i>()),
                    _mm256_loadu_si256(p.add(at - 1).cast::<__m256i>()),
                    _mm256_loadu_si256(p.add(at + 31).cast::<__m256i>()),
                    _mm256_loadu_si256(p.add(at + 1).cast::<__m256i>()),
                    _mm256_loadu_si256(p.add(at + 33).cast::<__m256i>()),
                    _mm256_loadu_si256(p.add(at + pair.i2).cast::<__m256i>()),
                    _mm256_loadu_si256(p.add(at + pair.i2 + 32).cast::<__m256i>()),
                )
            };
            // A newline not between `}` and `{`.
            let bad_a = _mm256_andnot_si256(
                _mm256_and_si256(_mm256_cmpeq_epi8(pa, close), _mm256_cmpeq_epi8(na, open)),
                _mm256_cmpeq_epi8(a, nl),
            );
            let bad_b = _mm256_andnot_si256(
                _mm256_and_si256(_mm256_cmpeq_epi8(pb, close), _mm256_cmpeq_epi8(nb, open)),
                _mm256_cmpeq_epi8(b, nl),
            );
            let (h1, h2) = (
                _mm256_and_si256(_mm256_cmpeq_epi8(a, v1), _mm256_cmpeq_epi8(c2, v2)),
                _mm256_and_si256(_mm256_cmpeq_epi8(b, v1), _mm256_cmpeq_epi8(d2, v2)),
            );
            let bad = _mm256_or_si256(bad_a, bad_b);
            let hit = _mm256_or_si256(h1, h2);
            if _mm256_testz_si256(hit, hit) == 0 {
                let mut hits = u64::from(_mm256_movemask_epi8(h1) as u32)
                    | (u64::from(_mm256_movemask_epi8(h2) as u32) << 32);
                if _mm256_testz_si256(bad, bad) == 0 {
                    f(Event::Newline(at));
                }
                while hits != 0 {
                    f(Event::Hit(at + hits.trailing_zeros() as usize));
                    hits &= hits - 1;
                }
            } else if _mm256_testz_si256(bad, bad) == 0 {
                f(Event::Newline(at));
            }
            at += 64;
        }
        at
    }

    /// Calls `f` with the index of every `\n` in `data`, in order.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn newlines(data: &[u8], f: &mut impl FnMut(usize)) {
        let nl = _mm256_set1_epi8(b'\n' as i8);
        let p = data.as_ptr();
        let mut at = 0;
        while at + 64 <= data.len() {
            // SAFETY: `at + 64 <= data.len()`, so both 32-byte loads are inside `data`.
            let (a, b) = unsafe {
                (
                    _mm256_loadu_si256(p.add(at).cast::<__m256i>()),
                    _mm256_loadu_si256(p.add(at + 32).cast::<__m256i>()),
                )
            };
            let lo = _mm256_movemask_epi8(_mm256_cmpeq_epi8(a, nl)) as u32;
            let hi = _mm256_movemask_epi8(_mm256_cmpeq_epi8(b, nl)) as u32;
            let mut mask = u64::from(lo) | (u64::from(hi) << 32);
            while mask != 0 {
                f(at + mask.trailing_zeros() as usize);
                mask &= mask - 1;
            }
            at += 64;
        }
        for (i, &b) in data[at..].iter().enumerate() {
            if b == b'\n' {
                f(at + i);
            }
        }
    }
}

/// The line as it was in the file, less its line terminator.
#[inline]
fn raw_line(raw: &[u8]) -> &[u8] {
    match raw {
        [rest @ .., b'\r'] => rest,
        _ => raw,
    }
}

#[derive(Clone, Copy)]
enum ItemKind {
    Range { start: u64, end: u64 },
    Stream,
}

struct Item {
    source: usize,
    kind: ItemKind,
}

/// A growable byte buffer whose start is page-aligned.
///
/// `pread` into a buffer whose address has the same offset within a page as the file offset
/// copies about five times faster than into an arbitrary heap address, so chunks are read from
/// a page-aligned file offset into the start of this buffer.
struct PageBuf {
    map: Option<memmap2::MmapMut>,
}

const PAGE: u64 = 4096;

impl PageBuf {
    fn new() -> PageBuf {
        PageBuf { map: None }
    }

    /// The buffer, at least `len` bytes long (the first `keep` bytes kept when it grows).
    fn ensure(&mut self, len: usize, keep: usize) -> io::Result<&mut [u8]> {
        if self.map.as_ref().is_none_or(|m| m.len() < len) {
            let mut bigger = memmap2::MmapMut::map_anon(len.next_power_of_two().max(1 << 16))?;
            if let Some(old) = &self.map {
                let keep = keep.min(old.len());
                bigger[..keep].copy_from_slice(&old[..keep]);
            }
            self.map = Some(bigger);
        }
        match self.map.as_deref_mut() {
            Some(m) => Ok(m),
            None => Err(io::Error::other("no buffer")),
        }
    }

    fn get(&self) -> &[u8] {
        self.map.as_deref().unwrap_or_default()
    }
}

/// Reads the lines owned by the chunk `[start, end)` of `file` (those that start inside it) into
/// `buf`, returning the range of `buf` that holds them and the file offset of `buf[0]`.
fn read_chunk(
    file: &File,
    start: u64,
    end: u64,
    limit: u64,
    buf: &mut PageBuf,
) -> io::Result<(std::ops::Range<usize>, u64)> {
    let from = start.saturating_sub(1);
    let base = from - from % PAGE;
    let pad = usize::try_from(from - base).unwrap_or(0);
    let want = usize::try_from(end - base).unwrap_or(usize::MAX);
    let mut n = 0;
    {
        let b = buf.ensure(want, 0)?;
        while n < want {
            match file.read_at(&mut b[n..want], base + n as u64) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
    if n <= pad {
        return Ok((0..0, base));
    }
    let data = buf.get();
    let first = if start == 0 {
        0
    } else {
        match memchr(b'\n', &data[pad..n]) {
            Some(i) if from + (i as u64) + 1 < end => pad + i + 1,
            _ => return Ok((0..0, base)),
        }
    };
    let mut stop = n;
    if n == want && data[n - 1] != b'\n' {
        // Finish the last line, which runs past the chunk.
        let mut pos = base + n as u64;
        loop {
            if pos >= limit {
                break;
            }
            let step = 64 << 10;
            let b = buf.ensure(stop + step, stop)?;
            let k = match file.read_at(&mut b[stop..stop + step], pos) {
                Ok(k) => k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if k == 0 {
                break;
            }
            let k = k.min(usize::try_from(limit - pos).unwrap_or(usize::MAX));
            if let Some(i) = memchr(b'\n', &b[stop..stop + k]) {
                stop += i + 1;
                break;
            }
            stop += k;
            pos += k as u64;
        }
    }
    Ok((first..stop, base))
}

/// The range of `data` (a whole mapped file) holding the lines that start in `[start, end)`.
fn chunk_of(data: &[u8], start: usize, end: usize) -> std::ops::Range<usize> {
    let end = end.min(data.len());
    let first = if start == 0 {
        0
    } else {
        match memchr(b'\n', &data[start - 1..end]) {
            Some(i) if start + i < end => start + i,
            _ => return 0..0,
        }
    };
    let stop = if end == 0 {
        0
    } else {
        memchr(b'\n', &data[end - 1..]).map_or(data.len(), |i| end + i)
    };
    first..stop
}

/// Maps `len` bytes of a plain file into memory.
fn map_file(file: &File, len: u64) -> io::Result<memmap2::Mmap> {
    let len = usize::try_from(len).map_err(io::Error::other)?;
    // SAFETY: the map is only read, and only while the scan runs. Its contents change only if
    // another process writes into the part of the file already written (log files are
    // appended to; appended bytes lie past `len` and are not mapped). If the file is truncated
    // during the scan, reading past its new end raises SIGBUS; `--no-mmap` reads with `pread`
    // instead (docs/operations.md).
    #[allow(unsafe_code)]
    let map = unsafe { memmap2::MmapOptions::new().len(len).map(file)? };
    let _ = map.advise(memmap2::Advice::Sequential);
    Ok(map)
}

/// Counts bytes read through it.
struct Counting<'a, R> {
    inner: R,
    counter: &'a AtomicU64,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.counter.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

const STREAM_BLOCK: usize = 2 << 20;

/// Scans a stream (a decompressed `.gz`): one thread reads and inflates, this one searches.
fn scan_stream<C: Collector, R: Read + Send>(
    reader: R,
    sink: &mut LineSink<'_, C>,
) -> Option<String> {
    let mut error = None;
    std::thread::scope(|s| {
        let (tx, rx) = mpsc::sync_channel::<io::Result<Vec<u8>>>(3);
        let (back_tx, back_rx) = mpsc::channel::<Vec<u8>>();
        s.spawn(move || {
            let mut reader = reader;
            loop {
                let mut buf = back_rx.try_recv().unwrap_or_default();
                buf.resize(STREAM_BLOCK, 0);
                let mut filled = 0;
                let mut failure = None;
                while filled < buf.len() {
                    match reader.read(&mut buf[filled..]) {
                        Ok(0) => break,
                        Ok(k) => filled += k,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            failure = Some(e);
                            break;
                        }
                    }
                }
                buf.truncate(filled);
                if filled > 0 && tx.send(Ok(buf)).is_err() {
                    return;
                }
                if let Some(e) = failure {
                    let _ = tx.send(Err(e));
                    return;
                }
                if filled == 0 {
                    return;
                }
            }
        });
        // The unfinished last line of the blocks so far, and where it starts in the stream;
        // and where the next block starts.
        let mut carry: Vec<u8> = Vec::new();
        let mut carry_at = 0u64;
        let mut pos = 0u64;
        for msg in rx {
            let block = match msg {
                Ok(b) => b,
                Err(e) => {
                    error = Some(e.to_string());
                    break;
                }
            };
            let block_pos = pos;
            pos += block.len() as u64;
            let mut i = 0;
            if !carry.is_empty() {
                match memchr(b'\n', &block) {
                    Some(nl) => {
                        carry.extend_from_slice(&block[..nl]);
                        sink.block_at(&carry, carry_at);
                        carry.clear();
                        i = nl + 1;
                    }
                    None => {
                        carry.extend_from_slice(&block);
                        let _ = back_tx.send(block);
                        continue;
                    }
                }
            }
            match memrchr(b'\n', &block[i..]) {
                Some(last) => {
                    sink.block_at(&block[i..i + last], block_pos + i as u64);
                    carry.extend_from_slice(&block[i + last + 1..]);
                    carry_at = block_pos + (i + last + 1) as u64;
                }
                None => {
                    carry.extend_from_slice(&block[i..]);
                    carry_at = block_pos + i as u64;
                }
            }
            let _ = back_tx.send(block);
        }
        if !carry.is_empty() {
            sink.block_at(&carry, carry_at);
        }
    });
    error
}

/// Reads again the lines of `src` that start at `offsets` (ascending byte offsets that a
/// collector took from [`Collector::block_at`]; in the inflated stream of a `.gz`), without
/// their line terminators. A plain file is read only at those places; a `.gz` is inflated up
/// to its last one. An error stops the reading: the lines read until then come back with it
/// (the one being read when it came, as far as it was read, as the scan gave it).
pub(crate) fn read_lines_at(src: &Source, offsets: &[u64]) -> (Vec<Vec<u8>>, Option<io::Error>) {
    let mut out = Vec::with_capacity(offsets.len());
    let error = read_lines_into(src, offsets, &mut out).err();
    (out, error)
}

fn read_lines_into(src: &Source, offsets: &[u64], out: &mut Vec<Vec<u8>>) -> io::Result<()> {
    let file = File::open(&src.path)?;
    let limit = src.limit.unwrap_or(u64::MAX);
    let mut line = Vec::new();
    // Keeps the line read (all of it, or what came before an error).
    let mut keep = |line: &mut Vec<u8>, read: io::Result<usize>| -> io::Result<usize> {
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        if read.is_ok() || !line.is_empty() {
            out.push(raw_line(line).to_vec());
        }
        line.clear();
        read
    };
    // Where the reader is: offsets ascend, so it only moves forward.
    let mut pos = 0u64;
    if src.gz {
        let mut r = BufReader::with_capacity(
            1 << 16,
            flate2::read::MultiGzDecoder::new(BufReader::with_capacity(1 << 20, file)),
        );
        for &off in offsets {
            if off < pos {
                return Err(io::Error::other("offsets are not ascending"));
            }
            io::copy(&mut (&mut r).take(off - pos), &mut io::sink())?;
            let read = r.read_until(b'\n', &mut line);
            pos = off + keep(&mut line, read)? as u64;
        }
    } else {
        let mut r = BufReader::with_capacity(1 << 16, file);
        for &off in offsets {
            if off >= limit {
                break;
            }
            // Within the buffer when the lines are near each other.
            match i64::try_from(off.wrapping_sub(pos)) {
                Ok(ahead) if off >= pos => r.seek_relative(ahead)?,
                _ => {
                    r.seek(io::SeekFrom::Start(off))?;
                }
            }
            let read = (&mut r).take(limit - off).read_until(b'\n', &mut line);
            pos = off + keep(&mut line, read)? as u64;
        }
    }
    Ok(())
}

/// A plain file opened for the scan.
enum Opened {
    /// Mapped into memory.
    Map(memmap2::Mmap),
    /// Read with `pread`.
    File(File),
    /// Could not be opened.
    Failed(String),
}

fn open_plain(src: &Source, mmap: bool) -> Opened {
    let file = match File::open(&src.path) {
        Ok(f) => f,
        Err(e) => return Opened::Failed(e.to_string()),
    };
    if !mmap {
        return Opened::File(file);
    }
    // The length when the files were listed (or the snapshot's), or less if it shrank since.
    let now = file.metadata().map_or(0, |m| m.len());
    let len = src.limit.unwrap_or(src.size).min(now);
    if len == 0 {
        return Opened::File(file);
    }
    match map_file(&file, len) {
        Ok(m) => Opened::Map(m),
        Err(_) => Opened::File(file),
    }
}

fn run_item<C: Collector>(
    item: &Item,
    src: &Source,
    opened: Option<&Opened>,
    plan: &Plan,
    coll: &C,
    buf: &mut PageBuf,
    progress: &AtomicU64,
) -> ItemResult<C::Part> {
    let mut sink = LineSink::new(plan, coll);
    let error = match (item.kind, opened) {
        (ItemKind::Range { start, end }, Some(Opened::Map(map))) => {
            let to = |x: u64| usize::try_from(x).unwrap_or(usize::MAX);
            let range = chunk_of(map, to(start), to(end));
            let at = range.start as u64;
            sink.block_at(&map[range], at);
            progress.fetch_add(end - start, Ordering::Relaxed);
            None
        }
        (ItemKind::Range { start, end }, Some(Opened::File(file))) => {
            let limit = src.limit.unwrap_or(u64::MAX);
            let r = read_chunk(file, start, end, limit, buf);
            progress.fetch_add(end - start, Ordering::Relaxed);
            match r {
                Ok((range, base)) => {
                    let at = base + range.start as u64;
                    sink.block_at(&buf.get()[range], at);
                    None
                }
                Err(e) => Some(e.to_string()),
            }
        }
        (ItemKind::Range { .. }, Some(Opened::Failed(e))) => Some(e.clone()),
        (ItemKind::Range { .. }, None) => None,
        (ItemKind::Stream, _) => match File::open(&src.path) {
            Err(e) => Some(e.to_string()),
            Ok(file) => {
                let input = BufReader::with_capacity(1 << 20, file);
                // Progress counts uncompressed bytes: the total of a .gz is not known ahead.
                let decoded = Counting {
                    inner: flate2::read::MultiGzDecoder::new(input),
                    counter: progress,
                };
                scan_stream(decoded, &mut sink).map(|e| format!("gzip: {e}"))
            }
        },
    };
    sink.into_result(item.source, error)
}

/// Scans `sources` with `plan`, giving matches to `coll`. The results come back in file order,
/// and within a file in byte order.
pub(crate) fn scan<C: Collector>(
    sources: &[Source],
    plan: &Plan,
    coll: &C,
    opts: &ScanOptions,
) -> Vec<ItemResult<C::Part>> {
    let chunk = opts.chunk_size.max(4096) as u64;
    let mut items = Vec::new();
    let mut opened: Vec<Option<Opened>> = Vec::with_capacity(sources.len());
    let mut known_total = true;
    let mut total = 0u64;
    for (i, src) in sources.iter().enumerate() {
        if src.gz {
            known_total = false;
            opened.push(None);
            items.push(Item {
                source: i,
                kind: ItemKind::Stream,
            });
            continue;
        }
        let o = open_plain(src, opts.mmap);
        let len = match &o {
            Opened::Map(m) => m.len() as u64,
            Opened::File(_) => src.limit.unwrap_or(src.size),
            Opened::Failed(_) => 1,
        };
        opened.push(Some(o));
        total += len;
        if len == 0 {
            continue;
        }
        let mut start = 0;
        loop {
            let end = (start + chunk).min(len);
            items.push(Item {
                source: i,
                kind: ItemKind::Range { start, end },
            });
            start = end;
            if start >= len || matches!(opened[i], Some(Opened::Failed(_))) {
                break;
            }
        }
    }
    // Long items (streams) first, so they do not finish last.
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by_key(|&i| !matches!(items[i].kind, ItemKind::Stream));
    let slots: Vec<Mutex<Option<ItemResult<C::Part>>>> =
        items.iter().map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let progress = AtomicU64::new(0);
    let threads = opts.threads.clamp(1, items.len().max(1));
    let bar = opts
        .progress
        .then(|| crate::printer::progress_bar(known_total.then_some(total)));
    std::thread::scope(|s| {
        let mut workers = Vec::with_capacity(threads);
        for _ in 0..threads {
            workers.push(s.spawn(|| {
                let mut buf = PageBuf::new();
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&idx) = order.get(k) else { break };
                    let item = &items[idx];
                    let r = run_item(
                        item,
                        &sources[item.source],
                        opened[item.source].as_ref(),
                        plan,
                        coll,
                        &mut buf,
                        &progress,
                    );
                    if let Ok(mut slot) = slots[idx].lock() {
                        *slot = Some(r);
                    }
                }
            }));
        }
        if let Some(bar) = &bar {
            // Until every worker has finished (or failed: the scope then passes its panic on).
            while workers.iter().any(|w| !w.is_finished()) {
                let done = progress.load(Ordering::Relaxed);
                bar.set_position(if known_total { done.min(total) } else { done });
                std::thread::sleep(Duration::from_millis(80));
            }
        }
    });
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    slots
        .into_iter()
        .filter_map(|m| m.into_inner().ok().flatten())
        .collect()
}

/// Totals of malformed lines and errors over a scan, for the report on stderr.
#[derive(Debug, Default)]
pub(crate) struct Report {
    /// Malformed lines skipped.
    pub(crate) malformed: u64,
    /// Files with at least one malformed line.
    pub(crate) malformed_files: usize,
    /// Candidate lines that did not parse.
    pub(crate) invalid: u64,
    /// Errors, one per file.
    pub(crate) errors: Vec<String>,
}

impl Report {
    /// Sums up the per-item results.
    pub(crate) fn of<P>(sources: &[Source], results: &[ItemResult<P>]) -> Report {
        let mut per_file = vec![0u64; sources.len()];
        let mut r = Report::default();
        let mut seen_error = vec![false; sources.len()];
        for item in results {
            per_file[item.source] += item.malformed;
            r.invalid += item.invalid;
            if let Some(e) = &item.error {
                if !seen_error[item.source] {
                    seen_error[item.source] = true;
                    r.errors
                        .push(format!("{}: {e}", sources[item.source].path.display()));
                }
            }
        }
        r.malformed = per_file.iter().sum();
        r.malformed_files = per_file.iter().filter(|&&n| n > 0).count();
        r
    }

    /// Prints the report on stderr.
    pub(crate) fn print(&self) {
        for e in &self.errors {
            eprintln!("tracelight: warning: {e}");
        }
        if self.malformed > 0 {
            eprintln!(
                "tracelight: skipped {} malformed line{} in {} file{}",
                self.malformed,
                if self.malformed == 1 { "" } else { "s" },
                self.malformed_files,
                if self.malformed_files == 1 { "" } else { "s" }
            );
        }
        if self.invalid > 0 {
            eprintln!(
                "tracelight: skipped {} line{} that looked like JSON but did not parse",
                self.invalid,
                if self.invalid == 1 { "" } else { "s" },
            );
        }
    }
}

/// Runs a plan over in-memory bytes (as if they were one file) — for tests and `tail -f`.
pub(crate) fn scan_bytes<C: Collector>(data: &[u8], plan: &Plan, coll: &C) -> ItemResult<C::Part> {
    let mut sink = LineSink::new(plan, coll);
    sink.block(data);
    sink.into_result(0, None)
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    /// Keeps every line it is given with the offset [`Collector::block_at`] says it has.
    struct Places;

    #[derive(Default)]
    struct Seen {
        block: (usize, u64),
        lines: Vec<(u64, Vec<u8>)>,
    }

    impl Collector for Places {
        type Part = Seen;
        fn wants_value(&self) -> bool {
            false
        }
        fn new_part(&self) -> Seen {
            Seen::default()
        }
        fn block_at(&self, part: &mut Seen, offset: u64, data: &[u8]) {
            part.block = (data.as_ptr() as usize, offset);
        }
        fn accept(&self, part: &mut Seen, _: Option<i64>, line: &[u8], _: Option<&Value>) {
            let at = part.block.1 + (line.as_ptr() as usize - part.block.0) as u64;
            part.lines.push((at, line.to_vec()));
        }
    }

    /// About 5 MB of lines of many lengths (some ending in `\r\n`, some blank, one far longer
    /// than a chunk), so that chunks and the inflated stream's blocks end inside lines.
    fn lines() -> Vec<String> {
        let mut out = Vec::new();
        for i in 0..40_000usize {
            let pad = "x".repeat((i * 7919) % 250);
            let end = if i % 5 == 0 { "\r" } else { "" };
            out.push(format!(r#"{{"n":{i},"pad":"{pad}"}}{end}"#));
            if i % 1000 == 0 {
                out.push(String::new());
            }
        }
        out.push(format!(r#"{{"n":"long","pad":"{}"}}"#, "y".repeat(3 << 20)));
        out
    }

    fn check(src: &Source, opts: &ScanOptions, expected: usize) {
        let results = scan(
            std::slice::from_ref(src),
            &Plan::new(Vec::new()),
            &Places,
            opts,
        );
        let seen: Vec<(u64, Vec<u8>)> = results.into_iter().flat_map(|r| r.part.lines).collect();
        assert_eq!(seen.len(), expected);
        let offsets: Vec<u64> = seen.iter().map(|s| s.0).collect();
        assert!(offsets.windows(2).all(|w| w[0] < w[1]), "in file order");
        let (again, error) = read_lines_at(src, &offsets);
        assert!(error.is_none(), "{error:?}");
        assert_eq!(again.len(), seen.len());
        for ((at, line), read) in seen.iter().zip(&again) {
            assert_eq!(line, read, "the line at {at}");
        }
    }

    /// The offsets a collector is told lead back to its lines, in a mapped file, in a file read
    /// with `pread` in small chunks, and in a `.gz` of two members.
    #[test]
    fn block_offsets_lead_back_to_the_lines() {
        let dir = tempfile::tempdir().unwrap();
        let text = lines().join("\n") + "\n";
        let expected = lines().iter().filter(|l| !l.is_empty()).count();
        let plain = dir.path().join("app.log");
        std::fs::write(&plain, &text).unwrap();
        let size = text.len() as u64;
        let src = Source {
            path: plain,
            size,
            gz: false,
            limit: None,
        };
        let small = ScanOptions {
            threads: 2,
            chunk_size: 64 << 10,
            progress: false,
            mmap: true,
        };
        check(&src, &small, expected);
        check(
            &src,
            &ScanOptions {
                mmap: false,
                ..small.clone()
            },
            expected,
        );

        let gz = dir.path().join("app.log.1.gz");
        let half = text[..text.len() / 2].rfind('\n').unwrap() + 1;
        let mut f = std::fs::File::create(&gz).unwrap();
        for part in [&text[..half], &text[half..]] {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(part.as_bytes()).unwrap();
            f.write_all(&e.finish().unwrap()).unwrap();
        }
        drop(f);
        let src = Source {
            size: std::fs::metadata(&gz).unwrap().len(),
            path: gz,
            gz: true,
            limit: None,
        };
        check(&src, &small, expected);

        // A `.gz` cut short: the lines before the cut come back, with the error.
        let whole = std::fs::read(&src.path).unwrap();
        let cut = dir.path().join("cut.log.2.gz");
        std::fs::write(&cut, &whole[..whole.len() / 4]).unwrap();
        let cut = Source {
            size: (whole.len() / 4) as u64,
            path: cut,
            gz: true,
            limit: None,
        };
        let results = scan(
            std::slice::from_ref(&cut),
            &Plan::new(Vec::new()),
            &Places,
            &small,
        );
        let seen: Vec<(u64, Vec<u8>)> = results.into_iter().flat_map(|r| r.part.lines).collect();
        assert!(seen.len() > 1000, "{}", seen.len());
        let mut offsets: Vec<u64> = seen.iter().map(|s| s.0).collect();
        // One more line than the file holds.
        offsets.push(u64::MAX >> 1);
        let (again, error) = read_lines_at(&cut, &offsets);
        assert!(error.is_some());
        assert!(
            again.len() >= seen.len() - 1,
            "{} of {}",
            again.len(),
            seen.len()
        );
        for (read, (_, line)) in again.iter().zip(&seen) {
            assert_eq!(read, line);
        }
    }
}
