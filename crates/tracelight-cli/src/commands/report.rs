//! `tracelight report`: one self-contained HTML file from the log files — events by level over
//! time, error groups with their counts over time and a sample, latency percentiles by route and
//! by operation, the slowest requests, and each of their timelines drawn as a waterfall across
//! services. It opens offline (the data, the script and the style are in the file) and runs
//! under a Content-Security-Policy that allows its one script and one style by hash.
//!
//! The figures are those of `tracelight errors` and `tracelight slow` on the same files and
//! filters: the same collectors, in one pass over the files. That pass also notes where each
//! line with a request id is, so that the drawn requests' lines are read again from there alone.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;

use anyhow::{Context as _, Result};
use base64::Engine as _;
use serde::Serialize;
use serde_json::Value;
use sha2::Digest as _;
use tracelight_schema::key;

use super::errors::{finish_groups, group_key, ErrorGroups, Suppressed};
use super::slow::{self, operation_name, Slow, SlowPart};
use super::timeline::{dedup_lines, span_depth};
use super::{build_filters, prepare, report};
use crate::cli::ReportArgs;
use crate::engine::collect::{distinct, line_hash};
use crate::engine::filter::{
    canonical_level, value_level, value_timestamp, Compiled, Decision, Level, Plan,
};
use crate::engine::scan::{self, Collector};
use crate::engine::time;
use crate::Outcome;

const SCRIPT: &str = include_str!("../assets/report.js");
const STYLE: &str = include_str!("../assets/report.css");

/// What the pass keeps of one work item.
#[derive(Debug, Default)]
pub(crate) struct ReportPart {
    /// Every line: its time, the hash of its bytes, its level (0 = TRACE … 4 = ERROR, 5 = none).
    lines: Vec<(i64, u64, u8)>,
    errors: HashMap<String, super::errors::ErrorGroup>,
    /// (group, time, hash) of every ERROR line, for its counts over time.
    error_times: Vec<(String, i64, u64)>,
    suppressed: Vec<(u64, String, u64)>,
    slow: SlowPart,
    /// Where every line with a request id is, filtered or not. The drawn requests' lines are
    /// read again from there.
    requests: Vec<RequestPlace>,
    /// The block being read: the address of its first byte, that byte's offset in the file,
    /// and its length.
    block: (usize, u64, usize),
    /// Where the keys every line is looked at for are in the block: `"request_id"` and
    /// `"duration_ms"`. Each is searched across the whole block at once rather than line by
    /// line.
    keys: [KeyHits; 2],
}

/// Where a line with a request id is: the hash of the id, the byte offset of the line in its
/// file, and its time.
type RequestPlace = (u64, u64, i64);

/// Indexes into [`ReportPart::keys`] and [`KEYS`].
const REQUEST_ID: usize = 0;
const DURATION: usize = 1;

/// Where one key is in the current block (ascending offsets), and how far the lines asked
/// about have come.
#[derive(Debug, Default)]
struct KeyHits {
    at: Vec<usize>,
    next: usize,
}

impl KeyHits {
    /// The places of the key in the line at `start..end` of the block, relative to the line.
    fn in_line(&mut self, start: usize, end: usize, key_len: usize) -> &[usize] {
        if self.next > 0 && self.at[self.next - 1] >= start {
            // Asked about an earlier line.
            self.next = self.at.partition_point(|&a| a < start);
        }
        while self.at.get(self.next).is_some_and(|&a| a < start) {
            self.next += 1;
        }
        let from = self.next;
        let mut to = from;
        while self.at.get(to).is_some_and(|&a| a + key_len <= end) {
            to += 1;
        }
        &self.at[from..to]
    }
}

impl ReportPart {
    /// The file offset of `line`, a slice of the current block.
    fn offset_of(&self, line: &[u8]) -> u64 {
        self.block.1 + (line.as_ptr() as usize).wrapping_sub(self.block.0) as u64
    }

    /// Where `line` starts in the current block, when it is a slice of it (it is not when no
    /// block was announced).
    fn start_in_block(&self, line: &[u8]) -> Option<usize> {
        let start = (line.as_ptr() as usize).wrapping_sub(self.block.0);
        start
            .checked_add(line.len())
            .is_some_and(|end| end <= self.block.2)
            .then_some(start)
    }

    /// Whether `"duration_ms"` is in `line`.
    fn timed(&mut self, line: &[u8]) -> bool {
        match self.start_in_block(line) {
            Some(start) => !self.keys[DURATION]
                .in_line(start, start + line.len(), KEYS[DURATION].needle().len())
                .is_empty(),
            None => KEYS[DURATION].find(line).is_some(),
        }
    }

    /// Notes where a parsed line with a request id is.
    fn note_request(&mut self, ts: Option<i64>, line: &[u8], v: &Value) {
        if let Some(id) = v.get(key::REQUEST_ID).and_then(Value::as_str) {
            let at = self.offset_of(line);
            self.requests
                .push((line_hash(id.as_bytes()), at, ts.unwrap_or(0)));
        }
    }

    /// Notes where an unparsed line with a `"request_id":"…"` is, once for each id it holds
    /// (the parsed line decides when it is read again).
    fn note_raw_request(&mut self, ts: Option<i64>, line: &[u8]) {
        let at = self.offset_of(line);
        let ts = ts.unwrap_or(0);
        let start = self.start_in_block(line);
        let requests = &mut self.requests;
        let mut last = None;
        let each = |id: &[u8]| {
            let h = line_hash(id);
            if last != Some(h) {
                last = Some(h);
                requests.push((h, at, ts));
            }
        };
        match start {
            Some(start) => {
                let key_len = KEYS[REQUEST_ID].needle().len();
                let keys = self.keys[REQUEST_ID].in_line(start, start + line.len(), key_len);
                raw_request_ids(line, keys.iter().map(|k| k - start), each);
            }
            None => raw_request_ids(line, KEYS[REQUEST_ID].find_iter(line), each),
        }
    }
}

fn level_index(l: Option<Level>) -> u8 {
    match l {
        Some(Level::Trace) => 0,
        Some(Level::Debug) => 1,
        Some(Level::Info) => 2,
        Some(Level::Warn) => 3,
        Some(Level::Error) => 4,
        None => 5,
    }
}

/// The collectors of `errors` and `slow`, the levels over time, and where each request's lines
/// are, in one pass over every line. The report's filters are decided here rather than by the
/// scan, since a drawn request's timeline has all its lines (other services', and those before
/// `--since`).
struct Everything<'a> {
    slow: Slow,
    filters: &'a [Compiled],
    /// Several files are read: a line's hash tells a copy in another file.
    several_files: bool,
}

impl Everything<'_> {
    /// The hash of a line for counting it once, when a copy of it may be in another file.
    fn copy_hash(&self, line: &[u8]) -> u64 {
        if self.several_files {
            line_hash(line)
        } else {
            0
        }
    }

    fn take(&self, part: &mut ReportPart, ts: Option<i64>, line: &[u8], v: &Value) {
        part.note_request(ts, line, v);
        if !self.filters.iter().all(|f| f.matches(v)) {
            return;
        }
        let level = value_level(v);
        let h = line_hash(line);
        part.lines
            .push((ts.unwrap_or(i64::MIN), h, level_index(level)));
        if level == Some(Level::Error) {
            ErrorGroups.accept(&mut part.errors, ts, line, Some(v));
            part.error_times.push((group_key(v), ts.unwrap_or(0), h));
        }
        if v.get(key::TARGET).and_then(Value::as_str) == Some("tracelight::errors") {
            Suppressed.accept(&mut part.suppressed, ts, line, Some(v));
        }
        self.slow.accept(&mut part.slow, ts, line, Some(v));
    }

    fn parse_and_take(&self, part: &mut ReportPart, ts: Option<i64>, line: &[u8]) -> bool {
        match serde_json::from_slice::<Value>(line) {
            Ok(v @ Value::Object(_)) => {
                // A time the fixed place does not hold may still be a readable one (as the
                // scan reads it).
                let ts = ts.or_else(|| value_timestamp(&v));
                self.take(part, ts, line, &v);
                true
            }
            _ => false,
        }
    }
}

impl Collector for Everything<'_> {
    type Part = ReportPart;
    fn wants_value(&self) -> bool {
        false
    }
    fn new_part(&self) -> ReportPart {
        ReportPart::default()
    }
    fn block_at(&self, part: &mut ReportPart, offset: u64, data: &[u8]) {
        part.block = (data.as_ptr() as usize, offset, data.len());
        for (hits, key) in part.keys.iter_mut().zip(KEYS.iter()) {
            hits.at.clear();
            hits.at.extend(key.find_iter(data));
            hits.next = 0;
        }
    }
    fn accept(&self, part: &mut ReportPart, ts: Option<i64>, line: &[u8], v: Option<&Value>) {
        match v {
            Some(v) => self.take(part, ts, line, v),
            None => {
                if let Some(v) = crate::engine::preset::parse_line(line) {
                    self.take(part, ts, line, &v);
                }
            }
        }
    }
    fn accept_unparsed(&self, part: &mut ReportPart, ts: Option<i64>, line: &[u8]) -> bool {
        // The filters first, from the line's bytes where they can be (as the scan decides).
        let mut unknown = false;
        for f in self.filters {
            match f.fast(line) {
                Decision::Accept => {}
                Decision::Reject => {
                    part.note_raw_request(ts, line);
                    return true;
                }
                Decision::Unknown => unknown = true,
            }
        }
        // A line whose time is not at the fixed place in the fixed form is parsed for it.
        if unknown || ts.is_none() {
            return self.parse_and_take(part, ts, line);
        }
        let level = canonical_level(line);
        // Only the lines a figure reads are parsed: ERROR lines, timed lines and the error
        // tracker's summaries (WARN lines); the others are only counted by level.
        let timed = part.timed(line);
        let parse = level == Some(Level::Error)
            || (level == Some(Level::Warn) && SUPPRESSED_KEY.find(line).is_some());
        if parse {
            return self.parse_and_take(part, ts, line);
        }
        if timed {
            // A timed line read as `slow` reads it: the few fields it needs, borrowed.
            if !self.slow.accept_unparsed(&mut part.slow, ts, line) {
                return false;
            }
        }
        // A line laid out as tracelight writes it, counted by its fixed-place time and level
        // without a parse (as `query --count` counts).
        part.lines.push((
            ts.unwrap_or(i64::MIN),
            self.copy_hash(line),
            level_index(level),
        ));
        part.note_raw_request(ts, line);
        true
    }
}

/// The keys every line is looked at for, in the order of [`REQUEST_ID`] and [`DURATION`].
static KEYS: std::sync::LazyLock<[memchr::memmem::Finder<'static>; 2]> =
    std::sync::LazyLock::new(|| {
        [
            memchr::memmem::Finder::new(b"\"request_id\""),
            memchr::memmem::Finder::new(b"\"duration_ms\""),
        ]
    });
/// The key of the error tracker's suppression lines, which are WARN lines.
static SUPPRESSED_KEY: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"\"suppressed\""));

/// Gives the value of every `"request_id":"…"` in a raw line (white space allowed around the
/// colon; an escaped value unescaped), from the places of the key in the line (ascending).
fn raw_request_ids(
    line: &[u8],
    keys: impl IntoIterator<Item = usize>,
    mut each: impl FnMut(&[u8]),
) {
    let key_len = KEYS[REQUEST_ID].needle().len();
    let skip = |at: &mut usize| {
        while line.get(*at).is_some_and(|b| b.is_ascii_whitespace()) {
            *at += 1;
        }
    };
    // Past the last value read: a key found inside it is a part of it.
    let mut from = 0;
    for p in keys {
        if p < from {
            continue;
        }
        // `"request_id"`, white space, `:`, white space, `"`: then the value.
        let mut at = p + key_len;
        skip(&mut at);
        if line.get(at) != Some(&b':') {
            continue;
        }
        at += 1;
        skip(&mut at);
        if line.get(at) != Some(&b'"') {
            continue;
        }
        let start = at + 1;
        let Some(len) = memchr::memchr2(b'"', b'\\', &line[start..]) else {
            return;
        };
        if line[start + len] == b'"' {
            each(&line[start..start + len]);
            from = start + len;
            continue;
        }
        // An escaped value: read as a JSON string.
        let mut strings = serde_json::Deserializer::from_slice(&line[at..])
            .into_iter::<std::borrow::Cow<'_, str>>();
        match strings.next() {
            Some(Ok(id)) => {
                each(id.as_bytes());
                from = at + strings.byte_offset();
            }
            _ => return,
        }
    }
}

/// The lines of the requests `ids`, read again from where the pass found them: for each id,
/// its (time, line) pairs.
fn request_lines(
    sources: &[crate::engine::source::Source],
    results: &[(usize, Vec<RequestPlace>)],
    ids: &[String],
) -> Vec<Vec<(i64, Vec<u8>)>> {
    let wanted: HashMap<u64, ()> = ids
        .iter()
        .map(|id| (line_hash(id.as_bytes()), ()))
        .collect();
    // Per file: (offset, time), ascending.
    let mut at: BTreeMap<usize, Vec<(u64, i64)>> = BTreeMap::new();
    for (source, requests) in results {
        for &(h, off, ts) in requests {
            if wanted.contains_key(&h) {
                at.entry(*source).or_default().push((off, ts));
            }
        }
    }
    let mut by_id: Vec<Vec<(i64, Vec<u8>)>> = vec![Vec::new(); ids.len()];
    for (source, mut places) in at {
        places.sort_unstable();
        places.dedup_by_key(|p| p.0);
        let offsets: Vec<u64> = places.iter().map(|p| p.0).collect();
        let (lines, error) = scan::read_lines_at(&sources[source], &offsets);
        if let Some(e) = error {
            eprintln!(
                "tracelight: could not read all of {} again for the timelines: {e}",
                sources[source].path.display()
            );
        }
        for ((_, ts), line) in places.into_iter().zip(lines) {
            // The parsed line decides (a hash may collide; an id may be a nested field's).
            let Some(v) = crate::engine::preset::parse_line(&line) else {
                continue;
            };
            let Some(id) = v.get(key::REQUEST_ID).and_then(Value::as_str) else {
                continue;
            };
            if let Some(i) = ids.iter().position(|x| x == id) {
                by_id[i].push((ts, line));
            }
        }
    }
    by_id
}

#[derive(Serialize)]
struct Data {
    generated_at: String,
    files: usize,
    filters: Vec<String>,
    /// The time of the first and last line.
    from: Option<String>,
    to: Option<String>,
    /// Start of the first bucket (µs since the epoch) and the width of each.
    bucket_start: i64,
    bucket_us: i64,
    buckets: usize,
    /// Lines per level per bucket (`TRACE` … `ERROR`, and `other` for lines without one).
    levels: BTreeMap<&'static str, Vec<u64>>,
    total_lines: u64,
    errors: Vec<ErrorData>,
    operations: Vec<OperationData>,
    slowest: Vec<SlowData>,
    timelines: Vec<TimelineData>,
    /// The report is one request's (`--request-id`).
    request: Option<String>,
}

#[derive(Serialize)]
struct ErrorData {
    count: u64,
    suppressed: u64,
    fingerprint: Option<String>,
    message: String,
    target: String,
    services: Vec<String>,
    first_seen: String,
    last_seen: String,
    per_bucket: Vec<u64>,
    sample: Value,
}

#[derive(Serialize)]
struct OperationData {
    operation: String,
    /// `route` for an access line's `METHOD /route`, `operation` otherwise.
    kind: &'static str,
    count: usize,
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
}

#[derive(Serialize)]
struct SlowData {
    duration_ms: f64,
    timestamp: String,
    operation: Option<String>,
    service: Option<String>,
    request_id: Option<String>,
    /// Index of the request's timeline in `timelines`.
    timeline: Option<usize>,
}

#[derive(Serialize)]
struct TimelineData {
    request_id: String,
    start: String,
    duration_ms: f64,
    services: Vec<String>,
    lines: Vec<TimelineLine>,
}

#[derive(Serialize)]
struct TimelineLine {
    offset_ms: f64,
    service: String,
    level: String,
    message: String,
    depth: usize,
    span: Option<String>,
    replayed: bool,
    error: Option<String>,
}

/// A bucket width that gives at most 120 buckets over `span_us`.
fn bucket_width(span_us: i64) -> i64 {
    const STEPS: [i64; 14] = [
        1, 5, 10, 30, 60, 300, 600, 1800, 3600, 7200, 21600, 43200, 86400, 604800,
    ];
    for s in STEPS {
        if span_us / (s * 1_000_000) < 120 {
            return s * 1_000_000;
        }
    }
    604_800_000_000 * (1 + span_us / (604_800_000_000 * 120))
}

fn is_route(op: &str) -> bool {
    [
        "GET ", "POST ", "PUT ", "DELETE ", "PATCH ", "HEAD ", "OPTIONS ",
    ]
    .iter()
    .any(|m| op.starts_with(m))
}

fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// `'sha256-…'` of an inline element, as the Content-Security-Policy names it.
fn csp_hash(text: &str) -> String {
    let digest = sha2::Sha256::digest(text.as_bytes());
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// JSON that may sit inside a `<script>` element: `<`, `>` and `&` (only ever inside strings)
/// written as escapes, so that no `</script>` or comment opener can end the element.
fn script_safe_json(v: &impl Serialize) -> Result<String> {
    let json = serde_json::to_string(v)?;
    Ok(json
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026"))
}

fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

pub(crate) fn report_command(a: ReportArgs) -> Result<Outcome> {
    let filters = build_filters(&a.filters, None)?;
    let mut described = Vec::new();
    if let Some(id) = &a.filters.request_id {
        described.push(format!("request {id}"));
    }
    if let Some(s) = &a.filters.service {
        described.push(format!("service {s}"));
    }
    if let Some(s) = &a.filters.since {
        described.push(format!("since {s}"));
    }
    if let Some(s) = &a.filters.until {
        described.push(format!("until {s}"));
    }
    described.extend(a.filters.conditions.iter().map(|c| format!("where {c}")));
    let Some(p) = prepare(&a.paths, &a.output) else {
        return Ok(Outcome::NothingToRead);
    };
    // Before the files are read: the report may not replace one of them, and its directory
    // must be there.
    let to_stdout = a.out_file.as_os_str() == "-";
    let out_dir = a
        .out_file
        .parent()
        .filter(|d| !to_stdout && !d.as_os_str().is_empty());
    if let Some(d) = out_dir.filter(|d| !d.is_dir()) {
        anyhow::bail!(
            "cannot write {}: no directory {}",
            a.out_file.display(),
            d.display()
        );
    }
    if let Some(out) = (!to_stdout)
        .then(|| std::fs::canonicalize(&a.out_file).ok())
        .flatten()
    {
        if p.sources
            .iter()
            .any(|s| std::fs::canonicalize(&s.path).is_ok_and(|x| x == out))
        {
            anyhow::bail!(
                "{} is one of the log files read: the report would replace it (give another -o)",
                a.out_file.display()
            );
        }
    }
    // One pass over every line; the filters are the collector's.
    let filters = Plan::new(filters).filters;
    let coll = Everything {
        slow: Slow { top: a.top },
        filters: &filters,
        several_files: p.sources.len() > 1,
    };
    let results = scan::scan(&p.sources, &Plan::new(Vec::new()), &coll, &p.opts);
    report(&p.sources, &results);

    let mut line_parts = Vec::new();
    let mut error_parts = Vec::new();
    let mut error_times = Vec::new();
    let mut suppressed = Vec::new();
    let mut slow_parts = Vec::new();
    let mut request_parts = Vec::new();
    for r in results {
        let part = r.part;
        line_parts.push((r.source, part.lines));
        error_parts.push(part.errors);
        error_times.extend(part.error_times);
        suppressed.extend(part.suppressed);
        slow_parts.push(part.slow);
        request_parts.push((r.source, part.requests));
    }
    // Lines by level: a line given by two files counts once (as `query --count` counts). The
    // lines of one file need no sorting out (nor were they hashed).
    let distinct: Option<Vec<(i64, u8)>> = coll.several_files.then(|| {
        let mut lines: Vec<(i64, u64, usize, u8)> = Vec::new();
        for (source, ls) in &line_parts {
            lines.extend(ls.iter().map(|&(t, h, l)| (t, h, *source, l)));
        }
        let mut events = Vec::new();
        distinct(&mut lines, |&(t, _, _, l), times| {
            events.extend(std::iter::repeat_n((t, l), times));
        });
        events
    });
    // Each event's time and level.
    let each_event = |f: &mut dyn FnMut(i64, u8)| match &distinct {
        Some(events) => events.iter().for_each(|&(t, l)| f(t, l)),
        None => line_parts
            .iter()
            .flat_map(|(_, ls)| ls)
            .for_each(|&(t, _, l)| f(t, l)),
    };
    let mut first_last: Option<(i64, i64)> = None;
    each_event(&mut |t, _| {
        if t != i64::MIN {
            first_last = Some(first_last.map_or((t, t), |(f, l)| (f.min(t), l.max(t))));
        }
    });
    let (first, last) = first_last.unzip();
    let span = last.zip(first).map_or(0, |(l, f)| l - f);
    let bucket_us = bucket_width(span);
    let bucket_start = first.map_or(0, |f| f - f.rem_euclid(bucket_us));
    let buckets = usize::try_from(last.map_or(0, |l| (l - bucket_start) / bucket_us + 1))
        .unwrap_or(1)
        .max(1);
    let bucket_of = |t: i64| -> Option<usize> {
        (t != i64::MIN)
            .then(|| usize::try_from((t - bucket_start) / bucket_us).ok())
            .flatten()
            .filter(|b| *b < buckets)
    };
    let names = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "other"];
    let mut per_level = vec![vec![0u64; buckets]; names.len()];
    let mut total_lines = 0u64;
    each_event(&mut |t, l| {
        total_lines += 1;
        if let Some(b) = bucket_of(t) {
            per_level[usize::from(l)][b] += 1;
        }
    });
    drop(distinct);
    drop(line_parts);
    let levels: BTreeMap<&'static str, Vec<u64>> = names
        .into_iter()
        .zip(per_level)
        .filter(|(_, counts)| counts.iter().any(|n| *n > 0))
        .collect();

    let groups = finish_groups(error_parts, suppressed);
    let mut per_group: HashMap<String, BTreeMap<u64, i64>> = HashMap::new();
    for (k, t, h) in error_times {
        per_group.entry(k).or_default().insert(h, t);
    }
    let errors: Vec<ErrorData> = groups
        .iter()
        .map(|g| {
            let key = match &g.fingerprint {
                Some(f) => format!("f:{f}"),
                None => format!("m:{}\u{1f}{}", g.message, g.target),
            };
            let mut per_bucket = vec![0u64; buckets];
            for t in per_group.get(&key).into_iter().flat_map(BTreeMap::values) {
                if let Some(b) = bucket_of(*t) {
                    per_bucket[b] += 1;
                }
            }
            ErrorData {
                count: g.count,
                suppressed: g.suppressed,
                fingerprint: g.fingerprint.clone(),
                message: g.message.clone(),
                target: g.target.clone(),
                services: g.services.iter().cloned().collect(),
                first_seen: time::format_micros(g.first),
                last_seen: time::format_micros(g.last),
                per_bucket,
                sample: crate::engine::preset::parse_line(&g.sample).unwrap_or(Value::Null),
            }
        })
        .collect();

    let (top, ops) = slow::finish(slow_parts, a.top);
    let operations: Vec<OperationData> = ops
        .iter()
        .map(|o| OperationData {
            kind: if is_route(&o.name) {
                "route"
            } else {
                "operation"
            },
            operation: o.name.clone(),
            count: o.count,
            p50: o.p50,
            p90: o.p90,
            p99: o.p99,
            max: o.max,
        })
        .collect();

    // The requests to draw: the one asked for, or those of the slowest lines.
    let mut ids: Vec<String> = Vec::new();
    if let Some(id) = &a.filters.request_id {
        ids.push(id.clone());
    }
    let slowest_values: Vec<Value> = top
        .iter()
        .map(|s| crate::engine::preset::parse_line(&s.line).unwrap_or(Value::Null))
        .collect();
    for v in &slowest_values {
        if let Some(id) = v.get(key::REQUEST_ID).and_then(Value::as_str) {
            if !ids.iter().any(|x| x == id) {
                ids.push(id.to_owned());
            }
        }
    }
    let mut timelines = Vec::new();
    if !ids.is_empty() {
        let by_id = request_lines(&p.sources, &request_parts, &ids);
        for (id, mut ls) in ids.iter().zip(by_id) {
            ls.sort_by_key(|(t, _)| *t);
            dedup_lines(&mut ls);
            let Some(start) = ls.first().map(|(t, _)| *t) else {
                continue;
            };
            let end = ls.last().map_or(start, |(t, _)| *t);
            let mut services = BTreeSet::new();
            let lines = ls
                .iter()
                .filter_map(|(t, l)| {
                    let v = crate::engine::preset::parse_line(l)?;
                    let service = text(v.get(key::SERVICE)).unwrap_or_default();
                    services.insert(service.clone());
                    let span = match v.get(key::SPANS) {
                        Some(Value::Array(a)) => Some(
                            a.iter()
                                .filter_map(|s| text(s.get(key::SPAN_NAME)))
                                .collect::<Vec<_>>()
                                .join(" > "),
                        ),
                        _ => v.get(key::SPAN).and_then(|s| text(s.get(key::SPAN_NAME))),
                    };
                    Some(TimelineLine {
                        offset_ms: (t - start) as f64 / 1000.0,
                        level: text(v.get(key::LEVEL)).unwrap_or_default(),
                        message: text(v.get(key::MESSAGE)).unwrap_or_default(),
                        depth: span_depth(&v),
                        span,
                        replayed: v.get(key::REPLAYED) == Some(&Value::Bool(true)),
                        error: v
                            .get(key::ERROR)
                            .and_then(|e| text(e.get("message")).or_else(|| text(Some(e)))),
                        service,
                    })
                })
                .collect();
            timelines.push(TimelineData {
                request_id: id.clone(),
                start: time::format_micros(start),
                duration_ms: (end - start) as f64 / 1000.0,
                services: services.into_iter().collect(),
                lines,
            });
        }
    }
    let slowest = top
        .iter()
        .zip(&slowest_values)
        .map(|(s, v)| {
            let request_id = text(v.get(key::REQUEST_ID));
            SlowData {
                duration_ms: s.duration,
                timestamp: time::format_micros(s.ts),
                operation: operation_name(v),
                service: text(v.get(key::SERVICE)),
                timeline: request_id
                    .as_ref()
                    .and_then(|id| timelines.iter().position(|t| &t.request_id == id)),
                request_id,
            }
        })
        .collect();
    let data = Data {
        generated_at: time::format_micros(time::now_micros()),
        files: p.sources.len(),
        filters: described,
        from: first.map(time::format_micros),
        to: last.map(time::format_micros),
        bucket_start,
        bucket_us,
        buckets,
        levels,
        total_lines,
        errors,
        operations,
        slowest,
        timelines,
        request: a.filters.request_id.clone(),
    };
    let title = match &data.request {
        Some(id) => format!("tracelight report: request {id}"),
        None => "tracelight report".to_owned(),
    };
    let csp = format!(
        "default-src 'none'; script-src {}; style-src {}; img-src data:",
        csp_hash(SCRIPT),
        csp_hash(STYLE)
    );
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"{csp}\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><style>{STYLE}</style></head><body>\
         <header><h1>{title}</h1><p class=\"muted\" id=\"summary\"></p></header><main id=\"report\"></main>\
         <script type=\"application/json\" id=\"data\">{data}</script>\
         <script>{SCRIPT}</script></body></html>\n",
        title = escape_html(&title),
        data = script_safe_json(&data)?,
    );
    let target = if to_stdout {
        let mut out = std::io::stdout().lock();
        out.write_all(html.as_bytes())
            .and_then(|()| out.flush())
            .context("cannot write the report to standard output")?;
        "standard output".to_owned()
    } else {
        std::fs::write(&a.out_file, html)
            .with_context(|| format!("cannot write {}", a.out_file.display()))?;
        a.out_file.display().to_string()
    };
    let n = |count: usize, one: &str, many: &str| {
        format!("{count} {}", if count == 1 { one } else { many })
    };
    let mut err = std::io::stderr().lock();
    let _ = writeln!(
        err,
        "tracelight: wrote {target} ({} from {}, {}, {})",
        n(
            usize::try_from(data.total_lines).unwrap_or(usize::MAX),
            "line",
            "lines"
        ),
        n(data.files, "file", "files"),
        n(data.errors.len(), "error group", "error groups"),
        n(data.timelines.len(), "timeline", "timelines"),
    );
    Ok(Outcome::Found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids_of(line: &str) -> Vec<String> {
        let line = line.as_bytes();
        let keys: Vec<usize> = KEYS[REQUEST_ID].find_iter(line).collect();
        let mut out = Vec::new();
        raw_request_ids(line, keys, |id| {
            out.push(String::from_utf8(id.to_vec()).unwrap())
        });
        out
    }

    #[test]
    fn raw_request_ids_reads_every_spelling() {
        assert_eq!(ids_of(r#"{"request_id":"r-1","a":1}"#), ["r-1"]);
        assert_eq!(ids_of(r#"{"request_id" : "r-1"}"#), ["r-1"]);
        assert_eq!(ids_of(r#"{"request_id":"r-\u0031\"x"}"#), ["r-1\"x"]);
        // A key inside a string value is not a key; a number is not an id.
        assert!(ids_of(r#"{"m":"\"request_id\":\"r-2\"","request_id":7}"#).is_empty());
        assert_eq!(
            ids_of(r#"{"request_id":"a","span":{"request_id":"b"}}"#),
            ["a", "b"]
        );
        assert!(ids_of(r#"{"request_id":"unterminated"#).is_empty());
    }

    #[test]
    fn key_hits_answer_lines_in_any_order() {
        let mut k = KeyHits {
            at: vec![3, 10, 12, 40],
            next: 0,
        };
        assert_eq!(k.in_line(0, 9, 2), &[3]);
        assert_eq!(k.in_line(9, 20, 2), &[10, 12]);
        assert_eq!(k.in_line(41, 50, 2), &[] as &[usize]);
        assert_eq!(k.in_line(0, 5, 2), &[3], "an earlier line");
        assert_eq!(
            k.in_line(39, 41, 2),
            &[] as &[usize],
            "the key runs past the line"
        );
    }

    #[test]
    fn buckets_are_at_most_120() {
        for span in [
            0,
            1,
            59_000_000,
            3_600_000_000,
            86_400_000_000 * 30,
            i64::MAX / 4,
        ] {
            let w = bucket_width(span);
            assert!(w > 0 && span / w < 120, "{span} {w}");
        }
    }

    #[test]
    fn json_in_a_script_element_cannot_end_it() {
        let s = script_safe_json(&serde_json::json!({"m": "</script><!-- & >"})).unwrap();
        assert!(
            !s.contains('<') && !s.contains('>') && !s.contains('&'),
            "{s}"
        );
        let back: Value = serde_json::from_str(&s).unwrap();
        assert_eq!(back["m"], "</script><!-- & >");
    }
}
