//! Collectors for matching lines, and the k-way merge that puts them in time order.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use serde_json::Value;

use crate::engine::scan::{Collector, ItemResult};

/// One stored line: its time and where its bytes are in the buffer.
#[derive(Debug, Clone, Copy)]
struct Entry {
    ts: i64,
    start: usize,
    len: usize,
}

/// Matching lines of one work item, in file order.
#[derive(Debug, Default)]
pub(crate) struct MatchBuf {
    data: Vec<u8>,
    entries: Vec<Entry>,
    /// The time of the last line with a readable one.
    last_ts: Option<i64>,
    /// How many lines at the start had no readable time (they take the time of the line before
    /// them, which is in an earlier work item).
    leading_untimed: usize,
}

impl MatchBuf {
    fn push(&mut self, ts: Option<i64>, line: &[u8]) {
        // A line without a readable timestamp keeps its place after the line before it.
        let ts = match (ts, self.last_ts) {
            (Some(t), _) => {
                self.last_ts = Some(t);
                t
            }
            (None, Some(t)) => t,
            (None, None) => {
                // Its time is that of the last timed line of an earlier work item, which
                // `file_lines` fills in.
                self.leading_untimed += 1;
                0
            }
        };
        let start = self.data.len();
        self.data.extend_from_slice(line);
        self.entries.push(Entry {
            ts,
            start,
            len: line.len(),
        });
    }

    fn line(&self, e: &Entry) -> &[u8] {
        &self.data[e.start..e.start + e.len]
    }

    /// Keeps only the `n` latest lines (by time, then position).
    fn keep_last(&mut self, n: usize) {
        if self.entries.len() <= n {
            return;
        }
        let mut idx: Vec<usize> = (0..self.entries.len()).collect();
        idx.sort_by_key(|&i| (self.entries[i].ts, i));
        let mut keep = idx.split_off(idx.len() - n);
        keep.sort_unstable();
        self.leading_untimed = keep.iter().filter(|&&i| i < self.leading_untimed).count();
        let mut data = Vec::new();
        let mut entries = Vec::with_capacity(n);
        for i in keep {
            let e = self.entries[i];
            entries.push(Entry {
                ts: e.ts,
                start: data.len(),
                len: e.len,
            });
            data.extend_from_slice(&self.data[e.start..e.start + e.len]);
        }
        self.data = data;
        self.entries = entries;
    }

    /// Number of lines held.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Holds no line?
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Keeps every matching line.
#[derive(Debug, Default)]
pub(crate) struct Lines;

impl Collector for Lines {
    type Part = MatchBuf;
    fn wants_value(&self) -> bool {
        false
    }
    fn new_part(&self) -> MatchBuf {
        MatchBuf::default()
    }
    fn accept(&self, part: &mut MatchBuf, ts: Option<i64>, line: &[u8], _: Option<&Value>) {
        part.push(ts, line);
    }
}

/// Keeps the last `n` matching lines of each work item (enough for the last `n` overall).
#[derive(Debug)]
pub(crate) struct LastLines(pub(crate) usize);

impl Collector for LastLines {
    type Part = MatchBuf;
    fn wants_value(&self) -> bool {
        false
    }
    fn new_part(&self) -> MatchBuf {
        MatchBuf::default()
    }
    fn accept(&self, part: &mut MatchBuf, ts: Option<i64>, line: &[u8], _: Option<&Value>) {
        part.push(ts, line);
        if part.entries.len() >= 2 * self.0 + 4096 {
            part.keep_last(self.0);
        }
    }
}

/// A hash of a line's bytes, to count a line written to several streams once.
pub(crate) fn line_hash(line: &[u8]) -> u64 {
    // XXH3: a count hashes every line; on 1 GB it takes about a tenth less CPU than SipHash.
    xxhash_rust::xxh3::xxh3_64(line)
}

/// Counts matching lines, a line given by two files once (see [`merge`]): the time and a hash of
/// every matching line, counted by [`count_distinct`].
#[derive(Debug, Default)]
pub(crate) struct DistinctCount;

impl Collector for DistinctCount {
    type Part = Vec<(i64, u64)>;
    fn wants_value(&self) -> bool {
        false
    }
    fn new_part(&self) -> Self::Part {
        Vec::new()
    }
    fn accept(&self, part: &mut Self::Part, ts: Option<i64>, line: &[u8], _: Option<&Value>) {
        part.push((ts.unwrap_or(i64::MIN), line_hash(line)));
    }
}

/// The number of events among the lines of [`DistinctCount`]: lines with the same time and
/// bytes in several files count once (as often as the file with the most of them has them).
pub(crate) fn count_distinct(results: Vec<ItemResult<Vec<(i64, u64)>>>) -> u64 {
    let mut all: Vec<(i64, u64, usize, ())> = Vec::new();
    for r in results {
        all.extend(r.part.into_iter().map(|(t, h)| (t, h, r.source, ())));
    }
    let mut n = 0u64;
    distinct(&mut all, |_, times| n += times as u64);
    n
}

/// Sorts lines given as (time, hash of the bytes, file, what else is kept) and calls `each` once
/// per group of copies with one of them and how many events the group is: lines with the same
/// time and bytes in several files are one event (as often as the file with the most of them
/// has them; identical lines in one file are separate events).
pub(crate) fn distinct<T: Ord>(
    all: &mut [(i64, u64, usize, T)],
    mut each: impl FnMut(&(i64, u64, usize, T), usize),
) {
    all.sort_unstable();
    for group in all.chunk_by(|a, b| a.0 == b.0 && a.1 == b.1) {
        // `group` is sorted by file: the longest run of one file.
        let most = group
            .chunk_by(|a, b| a.2 == b.2)
            .map(<[_]>::len)
            .max()
            .unwrap_or(0);
        each(&group[0], most);
    }
}

/// Counts matching lines.
#[derive(Debug, Default)]
pub(crate) struct Count;

impl Collector for Count {
    type Part = u64;
    fn wants_value(&self) -> bool {
        false
    }
    fn new_part(&self) -> u64 {
        0
    }
    fn accept(&self, part: &mut u64, _: Option<i64>, _: &[u8], _: Option<&Value>) {
        *part += 1;
    }
}

/// The lines of one file, in time order.
struct FileLines {
    bufs: Vec<MatchBuf>,
    /// (time, buffer, entry), sorted by time, ties in file order.
    order: Vec<(i64, u32, u32)>,
}

fn file_lines(bufs: Vec<MatchBuf>) -> FileLines {
    let mut order = Vec::with_capacity(bufs.iter().map(MatchBuf::len).sum());
    // The time of the last timed line so far in the file: the untimed lines at the start of a
    // work item come after it.
    let mut before = None::<i64>;
    for (b, buf) in bufs.iter().enumerate() {
        for (e, entry) in buf.entries.iter().enumerate() {
            let ts = if e < buf.leading_untimed {
                before.unwrap_or(entry.ts)
            } else {
                entry.ts
            };
            order.push((ts, b as u32, e as u32));
        }
        if let Some(t) = buf.last_ts {
            before = Some(t);
        }
    }
    // Files are nearly always in order already; sort only when they are not.
    if order.windows(2).any(|w| w[0].0 > w[1].0) {
        order.sort_by_key(|&(ts, _, _)| ts); // stable: ties keep file order
    }
    FileLines { bufs, order }
}

/// Merges the lines of all files into one time-ordered sequence (k-way merge over files, each
/// sorted first if it was not in order), calling `emit` for each. Ties go to the earlier file in
/// listing order (older rotations first). Stops at the first error `emit` returns.
///
/// A line that another file already gave — the same bytes at the same time, as when one event
/// was written to two streams (`app.log` and `errors.log`) — is given once. Identical lines in
/// one file are separate events and all given.
pub(crate) fn merge<E>(
    results: Vec<ItemResult<MatchBuf>>,
    mut emit: impl FnMut(i64, &[u8]) -> Result<(), E>,
) -> Result<(), E> {
    let mut files: Vec<FileLines> = Vec::new();
    let mut current: Option<usize> = None;
    let mut pending: Vec<MatchBuf> = Vec::new();
    for r in results {
        if current != Some(r.source) && !pending.is_empty() {
            files.push(file_lines(std::mem::take(&mut pending)));
        }
        current = Some(r.source);
        if !r.part.is_empty() {
            pending.push(r.part);
        }
    }
    if !pending.is_empty() {
        files.push(file_lines(pending));
    }
    if files.len() == 1 {
        let f = &files[0];
        for &(ts, b, e) in &f.order {
            let buf = &f.bufs[b as usize];
            emit(ts, buf.line(&buf.entries[e as usize]))?;
        }
        return Ok(());
    }
    let mut heap = BinaryHeap::with_capacity(files.len());
    for (i, f) in files.iter().enumerate() {
        if let Some(&(ts, _, _)) = f.order.first() {
            heap.push(Reverse((ts, i, 0usize)));
        }
    }
    // The lines given at the current time, with the file each came from.
    let mut run: Vec<(&[u8], usize)> = Vec::new();
    let mut run_ts = None;
    while let Some(Reverse((ts, i, pos))) = heap.pop() {
        let f = &files[i];
        let (_, b, e) = f.order[pos];
        let buf = &f.bufs[b as usize];
        let line = buf.line(&buf.entries[e as usize]);
        if run_ts != Some(ts) {
            run_ts = Some(ts);
            run.clear();
        }
        let copy = run.iter().any(|&(l, from)| from != i && l == line);
        if !copy {
            run.push((line, i));
            emit(ts, line)?;
        }
        if let Some(&(next_ts, _, _)) = f.order.get(pos + 1) {
            heap.push(Reverse((next_ts, i, pos + 1)));
        }
    }
    Ok(())
}

/// Collects merged lines into owned `(time, line)` pairs.
pub(crate) fn merge_to_vec(results: Vec<ItemResult<MatchBuf>>) -> Vec<(i64, Vec<u8>)> {
    let mut out = Vec::new();
    let _ = merge::<()>(results, |ts, line| {
        out.push((ts, line.to_vec()));
        Ok(())
    });
    out
}
