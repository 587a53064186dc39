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
use std::io::{self, BufReader, Read};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::Duration;

use memchr::{memchr, memrchr};
use serde::de::IgnoredAny;
use serde_json::Value;

use crate::filter::{fast_timestamp, is_canonical, value_timestamp, Decision, Plan};
use crate::source::Source;

/// What to do with the lines that match.
pub trait Collector: Sync {
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
    /// Returns `false` when the line is not valid JSON (it is then counted as malformed).
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
}

/// The outcome of one work item.
#[derive(Debug)]
pub struct ItemResult<P> {
    /// Index of the source file.
    pub source: usize,
    /// What the collector gathered.
    pub part: P,
    /// Lines that were looked at and turned out not to be JSON objects.
    pub malformed: u64,
    /// An I/O or decompression error that cut the item short.
    pub error: Option<String>,
}

/// How to scan.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// Worker threads.
    pub threads: usize,
    /// Bytes per chunk of a plain file.
    pub chunk_size: usize,
    /// Show a progress bar on stderr.
    pub progress: bool,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            chunk_size: 4 << 20,
            progress: false,
        }
    }
}

/// Decides lines against a plan and feeds matches to a collector.
struct LineSink<'a, C: Collector> {
    plan: &'a Plan,
    coll: &'a C,
    part: C::Part,
    malformed: u64,
}

impl<C: Collector> LineSink<'_, C> {
    /// Visits every line of `data` (complete lines; the last one may lack its newline).
    fn block(&mut self, data: &[u8]) {
        if let Some(needle) = &self.plan.primary {
            let mut pos = 0;
            while pos < data.len() {
                let Some(hit) = needle.find(&data[pos..]) else {
                    break;
                };
                let abs = pos + hit;
                let start = memrchr(b'\n', &data[pos..abs]).map_or(pos, |i| pos + i + 1);
                let end = memchr(b'\n', &data[abs..]).map_or(data.len(), |i| abs + i);
                self.line(&data[start..end]);
                pos = end + 1;
            }
        } else {
            let mut start = 0;
            for nl in memchr::memchr_iter(b'\n', data) {
                self.line(&data[start..nl]);
                start = nl + 1;
            }
            if start < data.len() {
                self.line(&data[start..]);
            }
        }
    }

    #[inline]
    fn line(&mut self, raw: &[u8]) {
        let line = match raw {
            [rest @ .., b'\r'] => rest,
            _ => raw,
        };
        if line.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        let plan = self.plan;
        if plan.parse_everything {
            return self.parse_and_decide(raw, line, false, true);
        }
        for n in &plan.others {
            if n.find(line).is_none() {
                return;
            }
        }
        if !is_canonical(line) {
            return self.parse_and_decide(raw, line, false, true);
        }
        let mut unknown = false;
        for f in &plan.filters {
            match f.fast(line) {
                Decision::Accept => {}
                Decision::Reject => return,
                Decision::Unknown => unknown = true,
            }
        }
        let last = line.iter().rposition(|b| !b.is_ascii_whitespace());
        if last.is_none_or(|i| line[i] != b'}') {
            self.malformed += 1;
            return;
        }
        if unknown || self.coll.wants_value() {
            return self.parse_and_decide(raw, line, true, unknown);
        }
        if !self
            .coll
            .accept_unparsed(&mut self.part, fast_timestamp(line), raw_line(raw))
        {
            self.malformed += 1;
        }
    }

    fn parse_and_decide(&mut self, raw: &[u8], line: &[u8], canonical: bool, decide: bool) {
        let v: Value = match serde_json::from_slice(line) {
            Ok(v @ Value::Object(_)) => v,
            _ => {
                self.malformed += 1;
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
        self.coll
            .accept(&mut self.part, ts, raw_line(raw), Some(&v));
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

enum ItemKind {
    Range { start: u64, end: u64 },
    Stream,
}

struct Item {
    source: usize,
    kind: ItemKind,
}

/// Reads the lines owned by the chunk `[start, end)` of `file` into `buf`, returning the range of
/// `buf` that holds them.
fn read_chunk(
    file: &File,
    start: u64,
    end: u64,
    limit: u64,
    buf: &mut Vec<u8>,
) -> io::Result<std::ops::Range<usize>> {
    let from = start.saturating_sub(1);
    let want = usize::try_from(end - from).unwrap_or(usize::MAX);
    if buf.len() < want {
        buf.resize(want, 0);
    }
    let mut n = 0;
    while n < want {
        match file.read_at(&mut buf[n..want], from + n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let first = if start == 0 {
        0
    } else {
        match memchr(b'\n', &buf[..n]) {
            Some(i) if from + (i as u64) + 1 < end => i + 1,
            _ => return Ok(0..0),
        }
    };
    let mut stop = n;
    if n > 0 && n == want && buf[n - 1] != b'\n' {
        // Finish the last line, which runs past the chunk.
        let mut pos = from + n as u64;
        loop {
            if pos >= limit {
                break;
            }
            let step = 64 << 10;
            if buf.len() < stop + step {
                buf.resize(stop + step, 0);
            }
            let k = match file.read_at(&mut buf[stop..stop + step], pos) {
                Ok(k) => k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if k == 0 {
                break;
            }
            let k = k.min(usize::try_from(limit - pos).unwrap_or(usize::MAX));
            if let Some(i) = memchr(b'\n', &buf[stop..stop + k]) {
                stop += i + 1;
                break;
            }
            stop += k;
            pos += k as u64;
        }
    }
    Ok(first..stop)
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
        let mut carry: Vec<u8> = Vec::new();
        for msg in rx {
            let block = match msg {
                Ok(b) => b,
                Err(e) => {
                    error = Some(e.to_string());
                    break;
                }
            };
            let mut i = 0;
            if !carry.is_empty() {
                match memchr(b'\n', &block) {
                    Some(nl) => {
                        carry.extend_from_slice(&block[..nl]);
                        sink.block(&carry);
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
                    sink.block(&block[i..i + last]);
                    carry.extend_from_slice(&block[i + last + 1..]);
                }
                None => carry.extend_from_slice(&block[i..]),
            }
            let _ = back_tx.send(block);
        }
        if !carry.is_empty() {
            sink.block(&carry);
        }
    });
    error
}

fn run_item<C: Collector>(
    item: &Item,
    src: &Source,
    plan: &Plan,
    coll: &C,
    buf: &mut Vec<u8>,
    progress: &AtomicU64,
) -> ItemResult<C::Part> {
    let mut sink = LineSink {
        plan,
        coll,
        part: coll.new_part(),
        malformed: 0,
    };
    let error = match File::open(&src.path) {
        Err(e) => Some(e.to_string()),
        Ok(file) => match item.kind {
            ItemKind::Range { start, end } => {
                let limit = src.limit.unwrap_or(u64::MAX);
                let r = read_chunk(&file, start, end, limit, buf);
                progress.fetch_add(end - start, Ordering::Relaxed);
                match r {
                    Ok(range) => {
                        sink.block(&buf[range]);
                        None
                    }
                    Err(e) => Some(e.to_string()),
                }
            }
            ItemKind::Stream => {
                let counting = Counting {
                    inner: file,
                    counter: progress,
                };
                let input = BufReader::with_capacity(1 << 20, counting);
                if src.gz {
                    scan_stream(flate2::read::MultiGzDecoder::new(input), &mut sink)
                        .map(|e| format!("gzip: {e}"))
                } else {
                    scan_stream(input.take(src.limit.unwrap_or(u64::MAX)), &mut sink)
                }
            }
        },
    };
    ItemResult {
        source: item.source,
        part: sink.part,
        malformed: sink.malformed,
        error,
    }
}

/// Scans `sources` with `plan`, giving matches to `coll`. The results come back in file order,
/// and within a file in byte order.
pub fn scan<C: Collector>(
    sources: &[Source],
    plan: &Plan,
    coll: &C,
    opts: &ScanOptions,
) -> Vec<ItemResult<C::Part>> {
    let chunk = opts.chunk_size.max(4096) as u64;
    let mut items = Vec::new();
    let mut total = 0u64;
    for (i, src) in sources.iter().enumerate() {
        total += src.size;
        if src.gz {
            items.push(Item {
                source: i,
                kind: ItemKind::Stream,
            });
            continue;
        }
        let len = src.limit.unwrap_or(src.size);
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
            if start >= len {
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
    let done = AtomicUsize::new(0);
    let progress = AtomicU64::new(0);
    let threads = opts.threads.clamp(1, items.len().max(1));
    let bar = opts.progress.then(|| crate::output::progress_bar(total));
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let mut buf = Vec::new();
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&idx) = order.get(k) else { break };
                    let item = &items[idx];
                    let r = run_item(item, &sources[item.source], plan, coll, &mut buf, &progress);
                    if let Ok(mut slot) = slots[idx].lock() {
                        *slot = Some(r);
                    }
                    done.fetch_add(1, Ordering::Release);
                }
            });
        }
        if let Some(bar) = &bar {
            while done.load(Ordering::Acquire) < items.len() {
                bar.set_position(progress.load(Ordering::Relaxed).min(total));
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
pub struct Report {
    /// Malformed lines skipped.
    pub malformed: u64,
    /// Files with at least one malformed line.
    pub malformed_files: usize,
    /// Errors, one per file.
    pub errors: Vec<String>,
}

impl Report {
    /// Sums up the per-item results.
    pub fn of<P>(sources: &[Source], results: &[ItemResult<P>]) -> Report {
        let mut per_file = vec![0u64; sources.len()];
        let mut r = Report::default();
        let mut seen_error = vec![false; sources.len()];
        for item in results {
            per_file[item.source] += item.malformed;
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

    /// Adds counts gathered elsewhere (e.g. by `tail -f`).
    pub fn add(&mut self, other: Report) {
        self.malformed += other.malformed;
        self.malformed_files += other.malformed_files;
        self.errors.extend(other.errors);
    }

    /// Prints the report on stderr.
    pub fn print(&self) {
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
    }
}

/// Runs a plan over in-memory bytes (as if they were one file) — for tests and `tail -f`.
pub fn scan_bytes<C: Collector>(data: &[u8], plan: &Plan, coll: &C) -> (C::Part, u64) {
    let mut sink = LineSink {
        plan,
        coll,
        part: coll.new_part(),
        malformed: 0,
    };
    sink.block(data);
    (sink.part, sink.malformed)
}
