//! `tracelight report`: one self-contained HTML file from the log files — events by level over
//! time, error groups with their counts over time and a sample, latency percentiles by route and
//! by operation, the slowest requests, and each of their timelines drawn as a waterfall across
//! services. It opens offline (the data, the script and the style are in the file) and runs
//! under a Content-Security-Policy that allows its one script and one style by hash.
//!
//! The figures are those of `tracelight errors` and `tracelight slow` on the same files and
//! filters: the same collectors, in one pass; the slowest requests' lines come from a second
//! pass that looks for their request ids only.

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
use crate::engine::collect::line_hash;
use crate::engine::filter::{canonical_level, value_level, Level, Plan};
use crate::engine::scan::{self, Collector};
use crate::engine::time;
use crate::Outcome;

const SCRIPT: &str = include_str!("../assets/report.js");
const STYLE: &str = include_str!("../assets/report.css");

/// What one pass keeps of one work item.
#[derive(Debug, Default)]
pub(crate) struct ReportPart {
    /// Every line: its time, the hash of its bytes, its level (0 = TRACE … 4 = ERROR, 5 = none).
    lines: Vec<(i64, u64, u8)>,
    errors: HashMap<String, super::errors::ErrorGroup>,
    /// (group, time, hash) of every ERROR line, for its counts over time.
    error_times: Vec<(String, i64, u64)>,
    suppressed: Vec<(u64, String, u64)>,
    slow: SlowPart,
}

/// The collectors of `errors` and `slow`, and the levels over time, in one pass.
struct Everything {
    slow: Slow,
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

impl Everything {
    fn take(&self, part: &mut ReportPart, ts: Option<i64>, line: &[u8], v: &Value) {
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
}

impl Collector for Everything {
    type Part = ReportPart;
    fn wants_value(&self) -> bool {
        false
    }
    fn new_part(&self) -> ReportPart {
        ReportPart::default()
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
        let level = canonical_level(line);
        // Only the lines a figure reads are parsed: ERROR lines, timed lines and the error
        // tracker's summaries; the others are only counted by level.
        let timed = DURATION_KEY.find(line).is_some();
        let parse = level == Some(Level::Error) || SUPPRESSED_KEY.find(line).is_some();
        if timed && !parse {
            // A timed line read as `slow` reads it: the few fields it needs, borrowed.
            if !self.slow.accept_unparsed(&mut part.slow, ts, line) {
                return false;
            }
            part.lines
                .push((ts.unwrap_or(i64::MIN), line_hash(line), level_index(level)));
            return true;
        }
        if parse {
            return match serde_json::from_slice::<Value>(line) {
                Ok(v @ Value::Object(_)) => {
                    self.take(part, ts, line, &v);
                    true
                }
                _ => false,
            };
        }
        // A line laid out as tracelight writes it, counted by its fixed-place time and level
        // without a parse (as `query --count` counts).
        part.lines
            .push((ts.unwrap_or(i64::MIN), line_hash(line), level_index(level)));
        true
    }
}

/// The lines of some requests, found by their ids in one pass: a line's `"request_id":"…"` is
/// found with one vector search and its value looked up.
struct RequestLines {
    ids: Vec<String>,
}

static REQUEST_ID_KEY: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"\"request_id\""));
static DURATION_KEY: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"\"duration_ms\""));
static SUPPRESSED_KEY: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"\"suppressed\""));

impl RequestLines {
    /// Whether the line may be one of the requests': a `"request_id":"…"` whose raw value is
    /// one of the ids (the parsed line then decides).
    fn candidate(&self, line: &[u8]) -> bool {
        let mut from = 0;
        while let Some(p) = REQUEST_ID_KEY.find(&line[from..]) {
            // `"request_id"`, white space, `:`, white space, `"`: then the value.
            let mut at = from + p + REQUEST_ID_KEY.needle().len();
            let skip = |at: &mut usize| {
                while line.get(*at).is_some_and(|b| b.is_ascii_whitespace()) {
                    *at += 1;
                }
            };
            skip(&mut at);
            if line.get(at) != Some(&b':') {
                from = at;
                continue;
            }
            at += 1;
            skip(&mut at);
            if line.get(at) != Some(&b'"') {
                from = at;
                continue;
            }
            let start = at + 1;
            let Some(len) = memchr::memchr(b'"', &line[start..]) else {
                return false;
            };
            let value = &line[start..start + len];
            // An escaped value: the parsed line decides.
            if value.contains(&b'\\') || self.ids.iter().any(|id| id.as_bytes() == value) {
                return true;
            }
            from = start + len;
        }
        false
    }

    fn take(&self, part: &mut Vec<(usize, i64, Vec<u8>)>, ts: Option<i64>, line: &[u8], v: &Value) {
        let Some(id) = v.get(key::REQUEST_ID).and_then(Value::as_str) else {
            return;
        };
        if let Some(i) = self.ids.iter().position(|x| x == id) {
            part.push((i, ts.unwrap_or(0), line.to_vec()));
        }
    }
}

impl Collector for RequestLines {
    type Part = Vec<(usize, i64, Vec<u8>)>;
    fn wants_value(&self) -> bool {
        false
    }
    fn new_part(&self) -> Self::Part {
        Vec::new()
    }
    fn accept(&self, part: &mut Self::Part, ts: Option<i64>, line: &[u8], v: Option<&Value>) {
        if !self.candidate(line) {
            return;
        }
        match v {
            Some(v) => self.take(part, ts, line, v),
            None => {
                if let Some(v) = crate::engine::preset::parse_line(line) {
                    self.take(part, ts, line, &v);
                }
            }
        }
    }
    fn accept_unparsed(&self, part: &mut Self::Part, ts: Option<i64>, line: &[u8]) -> bool {
        if self.candidate(line) {
            if let Ok(v @ Value::Object(_)) = serde_json::from_slice::<Value>(line) {
                self.take(part, ts, line, &v);
            }
        }
        true
    }
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
    let out_dir = a.out_file.parent().filter(|d| !d.as_os_str().is_empty());
    if let Some(d) = out_dir.filter(|d| !d.is_dir()) {
        anyhow::bail!(
            "cannot write {}: no directory {}",
            a.out_file.display(),
            d.display()
        );
    }
    if let Ok(out) = std::fs::canonicalize(&a.out_file) {
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
    let plan = Plan::new(filters);
    let coll = Everything {
        slow: Slow { top: a.top },
    };
    let results = scan::scan(&p.sources, &plan, &coll, &p.opts);
    report(&p.sources, &results);

    // Lines by level: a line given by two files counts once (as `query --count` counts).
    let mut lines: Vec<(i64, u64, u8, usize)> = Vec::new();
    let mut error_parts = Vec::new();
    let mut error_times = Vec::new();
    let mut suppressed = Vec::new();
    let mut slow_parts = Vec::new();
    for r in results {
        let source = r.source;
        let part = r.part;
        lines.extend(part.lines.into_iter().map(|(t, h, l)| (t, h, l, source)));
        error_parts.push(part.errors);
        error_times.extend(part.error_times);
        suppressed.extend(part.suppressed);
        slow_parts.push(part.slow);
    }
    lines.sort_unstable();
    let mut events: Vec<(i64, u8)> = Vec::new();
    for group in lines.chunk_by(|x, y| x.0 == y.0 && x.1 == y.1) {
        let most = group
            .chunk_by(|x, y| x.3 == y.3)
            .map(<[_]>::len)
            .max()
            .unwrap_or(0);
        events.extend(std::iter::repeat_n((group[0].0, group[0].2), most));
    }
    let timed: Vec<i64> = events
        .iter()
        .map(|e| e.0)
        .filter(|t| *t != i64::MIN)
        .collect();
    let (first, last) = (timed.iter().min().copied(), timed.iter().max().copied());
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
    let mut levels: BTreeMap<&'static str, Vec<u64>> = BTreeMap::new();
    for (t, l) in &events {
        if let Some(b) = bucket_of(*t) {
            levels
                .entry(names[usize::from(*l)])
                .or_insert_with(|| vec![0; buckets])[b] += 1;
        }
    }

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
        let coll = RequestLines { ids: ids.clone() };
        let results = scan::scan(&p.sources, &Plan::new(Vec::new()), &coll, &p.opts);
        let mut by_id: Vec<Vec<(i64, Vec<u8>)>> = vec![Vec::new(); ids.len()];
        for (i, t, l) in results.into_iter().flat_map(|r| r.part) {
            by_id[i].push((t, l));
        }
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
        total_lines: events.len() as u64,
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
    std::fs::write(&a.out_file, html)
        .with_context(|| format!("cannot write {}", a.out_file.display()))?;
    let mut err = std::io::stderr().lock();
    let _ = writeln!(
        err,
        "tracelight: wrote {} ({} lines from {} files, {} error groups, {} timelines)",
        a.out_file.display(),
        data.total_lines,
        data.files,
        data.errors.len(),
        data.timelines.len()
    );
    Ok(Outcome::Found)
}

#[cfg(test)]
mod tests {
    use super::*;

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
