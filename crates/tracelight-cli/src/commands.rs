//! The subcommands: query, timeline, errors, slow (tail is in [`crate::tail`]).

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::io::{self, BufWriter, IsTerminal, Write};

use anyhow::Result;
use serde_json::{json, Value};

use crate::cli::{Command, ErrorsArgs, FilterArgs, OutputArgs, QueryArgs, SlowArgs, TimelineArgs};
use crate::collect::{self, Count, Lines};
use crate::filter::{value_level, Filter, Level, Plan, QueryError, WhereExpr, ACCEPTED_LEVELS};
use crate::output::{self, human_line, push_fields, Style};
use crate::scan::{self, Collector, Report, ScanOptions};
use crate::source::{self, Source};
use crate::time;
use crate::Outcome;

/// Runs a parsed command line.
pub fn dispatch(cli: crate::cli::Cli) -> Result<Outcome> {
    match cli.command {
        Command::Query(a) => query(a),
        Command::Timeline(a) => timeline(a),
        Command::Errors(a) => errors(a),
        Command::Slow(a) => slow(a),
        Command::Tail(a) => crate::tail::tail(a),
    }
}

/// Reads `--level`.
pub fn parse_level(s: &str) -> Result<Level, QueryError> {
    Level::parse(s).ok_or_else(|| QueryError {
        option: "--level".into(),
        message: format!("unknown level `{s}`"),
        input: s.into(),
        span: None,
        hint: Some(format!("accepted levels: {ACCEPTED_LEVELS}")),
    })
}

fn parse_time(option: &str, s: &str, now: i64) -> Result<i64, QueryError> {
    time::parse_time_arg(s, now).ok_or_else(|| QueryError {
        option: option.into(),
        message: format!("cannot read `{s}` as a time"),
        input: s.into(),
        span: None,
        hint: Some(
            "use a relative time (30s, 15m, 1h, 2d) or an absolute one \
             (2026-02-10T22:30:00Z or '2026-02-10 22:30:00', UTC unless an offset is given)"
                .into(),
        ),
    })
}

/// Turns the shared filter options (and `--level`) into filters.
pub fn build_filters(f: &FilterArgs, level: Option<&str>) -> Result<Vec<Filter>, QueryError> {
    let mut out = Vec::new();
    if let Some(id) = &f.request_id {
        out.push(Filter::Where(WhereExpr::string_eq("request_id", id)));
    }
    if let Some(svc) = &f.service {
        out.push(Filter::Where(WhereExpr::string_eq("service", svc)));
    }
    if let Some(l) = level {
        out.push(Filter::MinLevel(parse_level(l)?));
    }
    let now = time::now_micros();
    let since = f
        .since
        .as_deref()
        .map(|s| parse_time("--since", s, now))
        .transpose()?;
    let until = f
        .until
        .as_deref()
        .map(|s| parse_time("--until", s, now))
        .transpose()?;
    if since.is_some() || until.is_some() {
        out.push(Filter::Time { since, until });
    }
    for w in &f.conditions {
        out.push(Filter::Where(WhereExpr::parse(w)?));
    }
    Ok(out)
}

/// Finds the files and the scan options for a command.
pub fn prepare(
    paths: &[std::path::PathBuf],
    output: &OutputArgs,
) -> Result<(Vec<Source>, ScanOptions, Vec<String>)> {
    let mut warnings = Vec::new();
    let paths = source::default_paths(paths)?;
    let sources = source::discover(&paths, &mut warnings)?;
    let total: u64 = sources.iter().map(|s| s.size).sum();
    let mut opts = ScanOptions::default();
    if let Some(t) = output.threads {
        opts.threads = t.max(1);
    }
    opts.progress = io::stderr().is_terminal() && total >= 64 << 20;
    Ok((sources, opts, warnings))
}

fn report<P>(sources: &[Source], results: &[scan::ItemResult<P>], warnings: Vec<String>) {
    let mut r = Report::of(sources, results);
    r.errors.splice(0..0, warnings);
    r.print();
}

fn stdout() -> BufWriter<io::StdoutLock<'static>> {
    BufWriter::with_capacity(1 << 16, io::stdout().lock())
}

fn query(a: QueryArgs) -> Result<Outcome> {
    let filters = build_filters(&a.filters, a.level.as_deref())?;
    let (sources, opts, warnings) = prepare(&a.paths, &a.output)?;
    let plan = Plan::new(filters);
    if a.count {
        let results = scan::scan(&sources, &plan, &Count, &opts);
        let n: u64 = results.iter().map(|r| r.part).sum();
        println!("{n}");
        report(&sources, &results, warnings);
        return Ok(if n > 0 {
            Outcome::Found
        } else {
            Outcome::NotFound
        });
    }
    let results = scan::scan(&sources, &plan, &Lines, &opts);
    report(&sources, &results, warnings);
    let style = Style::new(output::use_color(a.output.color));
    let mut out = stdout();
    let mut found = false;
    let mut text = String::new();
    collect::merge(results, |_, line| -> io::Result<()> {
        found = true;
        if a.json {
            out.write_all(line)?;
        } else {
            text.clear();
            human_line(&mut text, style, line);
            out.write_all(text.as_bytes())?;
        }
        out.write_all(b"\n")
    })?;
    out.flush()?;
    Ok(if found {
        Outcome::Found
    } else {
        Outcome::NotFound
    })
}

/// How deep a line is in its request's span tree: the length of `spans`, else 1 when it has a
/// `span`, else 0.
pub fn span_depth(v: &Value) -> usize {
    match v.get("spans") {
        Some(Value::Array(a)) => a.len(),
        _ => usize::from(v.get("span").is_some_and(|s| !s.is_null())),
    }
}

fn timeline(a: TimelineArgs) -> Result<Outcome> {
    let (sources, opts, warnings) = prepare(&a.paths, &a.output)?;
    let plan = Plan::new(vec![Filter::Where(WhereExpr::string_eq(
        "request_id",
        &a.id,
    ))]);
    let results = scan::scan(&sources, &plan, &Lines, &opts);
    report(&sources, &results, warnings);
    let mut lines = collect::merge_to_vec(results);
    dedup_lines(&mut lines);
    if lines.is_empty() {
        eprintln!("tracelight: no lines with request_id {}", a.id);
        return Ok(Outcome::NotFound);
    }
    let mut out = stdout();
    if a.json {
        for (_, l) in &lines {
            out.write_all(l)?;
            out.write_all(b"\n")?;
        }
        out.flush()?;
        return Ok(Outcome::Found);
    }
    let style = Style::new(output::use_color(a.output.color));
    let values: Vec<Value> = lines
        .iter()
        .map(|(_, l)| serde_json::from_slice(l).unwrap_or(Value::Null))
        .collect();
    let t0 = lines[0].0;
    let t_end = lines[lines.len() - 1].0;
    let first_error = values
        .iter()
        .position(|v| value_level(v) == Some(Level::Error));
    let last_good = first_error.and_then(|e| {
        values[..e]
            .iter()
            .rposition(|v| !matches!(value_level(v), Some(Level::Error | Level::Warn)))
    });
    let services: BTreeSet<&str> = values
        .iter()
        .filter_map(|v| v.get("service").and_then(Value::as_str))
        .collect();
    let svc_width = services
        .iter()
        .map(|s| s.chars().count())
        .max()
        .unwrap_or(1)
        .max(1);
    let mut head = String::new();
    style.bold(&mut head, &format!("request {}", a.id));
    head.push_str(&format!(
        ": {} line{} from {} service{} ({}), {} → {} ({:.3}ms)",
        lines.len(),
        if lines.len() == 1 { "" } else { "s" },
        services.len(),
        if services.len() == 1 { "" } else { "s" },
        services.iter().copied().collect::<Vec<_>>().join(", "),
        time::format_micros(t0),
        time::format_micros(t_end),
        (t_end - t0) as f64 / 1000.0
    ));
    writeln!(out, "{head}")?;
    let mut text = String::new();
    for (i, ((ts, raw), v)) in lines.iter().zip(&values).enumerate() {
        text.clear();
        if Some(i) == last_good {
            style.green(&mut text, "last good ► ");
        } else if Some(i) == first_error {
            style.red(&mut text, "first error ");
        } else {
            text.push_str("            ");
        }
        style.dim(
            &mut text,
            &format!("+{:>11.3}ms", (ts - t0) as f64 / 1000.0),
        );
        text.push_str("  ");
        let Some(obj) = v.as_object() else {
            text.push_str(&String::from_utf8_lossy(raw));
            writeln!(out, "{text}")?;
            continue;
        };
        let svc = obj.get("service").and_then(Value::as_str).unwrap_or("-");
        style.cyan(&mut text, &format!("{svc:<svc_width$}"));
        text.push_str("  ");
        let lvl = obj.get("level").and_then(Value::as_str).unwrap_or("-");
        style.level(&mut text, value_level(v), lvl);
        text.push_str("  ");
        text.push_str(&"  ".repeat(span_depth(v)));
        match obj.get("message") {
            Some(Value::String(m)) => style.bold(&mut text, m),
            Some(other) => style.bold(&mut text, &other.to_string()),
            None => {}
        }
        let mut rest = obj.clone();
        rest.remove("request_id");
        push_fields(&mut text, style, &rest);
        writeln!(out, "{text}")?;
    }
    out.flush()?;
    Ok(Outcome::Found)
}

/// A hash of a line's bytes, to count a line written to several streams once.
pub fn line_hash(line: &[u8]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    line.hash(&mut h);
    h.finish()
}

/// Drops repeated lines (the same bytes at the same time), as when one event was written to two
/// streams. Expects time-ordered input.
pub fn dedup_lines(lines: &mut Vec<(i64, Vec<u8>)>) {
    let mut seen: HashSet<u64> = HashSet::new();
    let mut run_ts = None;
    lines.retain(|(ts, l)| {
        if run_ts != Some(*ts) {
            run_ts = Some(*ts);
            seen.clear();
        }
        seen.insert(line_hash(l))
    });
}

/// One group of `errors`.
#[derive(Debug, Clone)]
pub struct ErrorGroup {
    /// The `error_fingerprint`, when the lines have one.
    pub fingerprint: Option<String>,
    /// The message of the latest line.
    pub message: String,
    /// The target of the latest line.
    pub target: String,
    /// How many lines.
    pub count: u64,
    /// Time of the first line.
    pub first: i64,
    /// Time of the last line.
    pub last: i64,
    /// Services the lines came from.
    pub services: BTreeSet<String>,
    /// The latest line, unchanged.
    pub sample: Vec<u8>,
    /// Hashes of the lines counted, so that a line written to two streams (e.g. `app.log` and
    /// `errors.log`) counts once.
    pub seen: HashSet<u64>,
}

impl ErrorGroup {
    fn merge(&mut self, o: ErrorGroup) {
        self.seen.extend(o.seen);
        self.count = self.seen.len() as u64;
        self.first = self.first.min(o.first);
        if o.last >= self.last {
            self.last = o.last;
            self.sample = o.sample;
            self.message = o.message;
            self.target = o.target;
        }
        self.services.extend(o.services);
    }
}

/// Groups ERROR lines by fingerprint (or message and target).
#[derive(Debug)]
pub struct ErrorGroups;

impl Collector for ErrorGroups {
    type Part = HashMap<String, ErrorGroup>;
    fn wants_value(&self) -> bool {
        true
    }
    fn new_part(&self) -> Self::Part {
        HashMap::new()
    }
    fn accept(&self, part: &mut Self::Part, ts: Option<i64>, line: &[u8], v: Option<&Value>) {
        let Some(v) = v else { return };
        let s = |k: &str| match v.get(k) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => String::new(),
            Some(other) => other.to_string(),
        };
        let fingerprint = v
            .get("error_fingerprint")
            .filter(|f| !f.is_null())
            .map(|f| f.as_str().map_or_else(|| f.to_string(), str::to_owned));
        let message = s("message");
        let target = s("target");
        let key = match &fingerprint {
            Some(f) => format!("f:{f}"),
            None => format!("m:{message}\u{1f}{target}"),
        };
        let ts = ts.unwrap_or(0);
        let mut services = BTreeSet::new();
        if let Some(svc) = v.get("service").and_then(Value::as_str) {
            services.insert(svc.to_owned());
        }
        let h = line_hash(line);
        if part.get(&key).is_some_and(|g| g.seen.contains(&h)) {
            return;
        }
        let g = ErrorGroup {
            seen: HashSet::from([h]),
            fingerprint,
            message,
            target,
            count: 1,
            first: ts,
            last: ts,
            services,
            sample: line.to_vec(),
        };
        match part.get_mut(&key) {
            Some(existing) => existing.merge(g),
            None => {
                part.insert(key, g);
            }
        }
    }
}

fn errors(a: ErrorsArgs) -> Result<Outcome> {
    let mut filters = build_filters(&a.filters, None)?;
    filters.insert(0, Filter::MinLevel(Level::Error));
    let (sources, opts, warnings) = prepare(&a.paths, &a.output)?;
    let plan = Plan::new(filters);
    let results = scan::scan(&sources, &plan, &ErrorGroups, &opts);
    report(&sources, &results, warnings);
    let mut all: HashMap<String, ErrorGroup> = HashMap::new();
    for r in results {
        for (k, g) in r.part {
            match all.get_mut(&k) {
                Some(e) => e.merge(g),
                None => {
                    all.insert(k, g);
                }
            }
        }
    }
    let mut groups: Vec<ErrorGroup> = all.into_values().collect();
    groups.sort_by(|x, y| y.count.cmp(&x.count).then(y.last.cmp(&x.last)));
    let total_groups = groups.len();
    if let Some(n) = a.top {
        groups.truncate(n);
    }
    let mut out = stdout();
    if a.json {
        for g in &groups {
            let sample: Value = serde_json::from_slice(&g.sample).unwrap_or(Value::Null);
            let obj = json!({
                "count": g.count,
                "fingerprint": g.fingerprint,
                "message": g.message,
                "target": g.target,
                "first_seen": time::format_micros(g.first),
                "last_seen": time::format_micros(g.last),
                "services": g.services,
                "sample": sample,
            });
            serde_json::to_writer(&mut out, &obj)?;
            out.write_all(b"\n")?;
        }
        out.flush()?;
        return Ok(Outcome::Found);
    }
    let style = Style::new(output::use_color(a.output.color));
    if groups.is_empty() {
        writeln!(out, "no ERROR lines")?;
    }
    let total: u64 = groups.iter().map(|g| g.count).sum();
    let mut text = String::new();
    for g in &groups {
        text.clear();
        style.red(&mut text, &format!("{:>8}×", g.count));
        text.push_str("  ");
        style.bold(&mut text, &g.message);
        if !g.target.is_empty() {
            text.push_str("  ");
            style.dim(&mut text, &format!("({})", g.target));
        }
        text.push_str(&format!(
            "\n          fingerprint {}  services {}\n          first {}  last {}\n          sample ",
            g.fingerprint.as_deref().unwrap_or("-"),
            g.services.iter().cloned().collect::<Vec<_>>().join(","),
            time::format_micros(g.first),
            time::format_micros(g.last),
        ));
        human_line(&mut text, style, &g.sample);
        writeln!(out, "{text}")?;
    }
    if !groups.is_empty() {
        writeln!(
            out,
            "{total} ERROR line{} in {} group{}{}",
            if total == 1 { "" } else { "s" },
            groups.len(),
            if groups.len() == 1 { "" } else { "s" },
            if total_groups > groups.len() {
                format!(" (of {total_groups})")
            } else {
                String::new()
            }
        )?;
    }
    out.flush()?;
    Ok(Outcome::Found)
}

/// The operation a line measures: `operation`, else `span.name`, else `route` or `path` (access
/// lines), else `message`.
pub fn operation_name(v: &Value) -> Option<String> {
    let as_text = |x: &Value| match x {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    };
    v.get("operation")
        .and_then(as_text)
        .or_else(|| v.get("span").and_then(|s| s.get("name")).and_then(as_text))
        .or_else(|| v.get("route").and_then(as_text))
        .or_else(|| v.get("path").and_then(as_text))
        .or_else(|| v.get("message").and_then(as_text))
}

/// The `duration_ms` of a line (a number, or a string holding one).
pub fn duration_ms(v: &Value) -> Option<f64> {
    match v.get("duration_ms")? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|d: &f64| d.is_finite())
}

/// One of the slowest lines.
#[derive(Debug, Clone)]
pub struct SlowLine {
    /// Its `duration_ms`.
    pub duration: f64,
    /// Its time.
    pub ts: i64,
    /// Hash of the line.
    pub hash: u64,
    /// The line, unchanged.
    pub line: Vec<u8>,
}

/// Durations per operation and the slowest lines of one work item.
#[derive(Debug, Default)]
pub struct SlowPart {
    /// (line hash, duration) per operation.
    pub per_op: HashMap<String, Vec<(u64, f64)>>,
    /// The slowest lines (at most about 2 × top).
    pub top: Vec<SlowLine>,
}

/// Collects durations for `slow`.
#[derive(Debug)]
pub struct Slow {
    /// How many slowest lines to keep.
    pub top: usize,
}

fn trim_top(top: &mut Vec<SlowLine>, n: usize) {
    top.sort_by(|a, b| {
        b.duration
            .total_cmp(&a.duration)
            .then(a.ts.cmp(&b.ts))
            .then(a.hash.cmp(&b.hash))
    });
    top.dedup_by_key(|s| s.hash);
    top.truncate(n);
}

/// The fields `slow` needs, read without building a `Value` (strings borrowed when unescaped).
/// Any other shape (a number where a string was expected, a duplicate key…) fails and the line
/// is parsed as a `Value` instead.
#[derive(serde::Deserialize)]
struct SlowView<'a> {
    #[serde(borrow, default)]
    operation: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    span: Option<SpanView<'a>>,
    #[serde(borrow, default)]
    route: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    path: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    message: Option<Cow<'a, str>>,
    #[serde(default)]
    duration_ms: Option<f64>,
}

#[derive(serde::Deserialize)]
struct SpanView<'a> {
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
}

impl Slow {
    fn record(&self, part: &mut SlowPart, ts: Option<i64>, line: &[u8], op: String, d: f64) {
        let hash = line_hash(line);
        part.per_op.entry(op).or_default().push((hash, d));
        if self.top > 0 {
            part.top.push(SlowLine {
                duration: d,
                ts: ts.unwrap_or(0),
                hash,
                line: line.to_vec(),
            });
            if part.top.len() >= 2 * self.top + 64 {
                trim_top(&mut part.top, self.top);
            }
        }
    }
}

impl Collector for Slow {
    type Part = SlowPart;
    fn wants_value(&self) -> bool {
        false
    }
    fn new_part(&self) -> SlowPart {
        SlowPart::default()
    }
    fn accept(&self, part: &mut SlowPart, ts: Option<i64>, line: &[u8], v: Option<&Value>) {
        let Some(v) = v else { return };
        let Some(d) = duration_ms(v) else { return };
        let op = operation_name(v).unwrap_or_else(|| "-".into());
        self.record(part, ts, line, op, d);
    }
    fn accept_unparsed(&self, part: &mut SlowPart, ts: Option<i64>, line: &[u8]) -> bool {
        let Ok(text) = std::str::from_utf8(line) else {
            return false;
        };
        match serde_json::from_str::<SlowView<'_>>(text) {
            Ok(view) => {
                if let Some(d) = view.duration_ms.filter(|d| d.is_finite()) {
                    let op = view
                        .operation
                        .or(view.span.and_then(|s| s.name))
                        .or(view.route)
                        .or(view.path)
                        .or(view.message)
                        .map_or_else(|| "-".to_owned(), Cow::into_owned);
                    self.record(part, ts, line, op, d);
                }
                true
            }
            Err(_) => match serde_json::from_str::<Value>(text) {
                Ok(v @ Value::Object(_)) => {
                    self.accept(part, ts, line, Some(&v));
                    true
                }
                _ => false,
            },
        }
    }
}

/// The `q`-quantile of sorted values (nearest rank).
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn slow(a: SlowArgs) -> Result<Outcome> {
    let mut filters = build_filters(&a.filters, a.level.as_deref())?;
    filters.push(Filter::Where(WhereExpr::parse("duration_ms exists")?));
    let (sources, opts, warnings) = prepare(&a.paths, &a.output)?;
    let plan = Plan::new(filters);
    let coll = Slow { top: a.top };
    let results = scan::scan(&sources, &plan, &coll, &opts);
    report(&sources, &results, warnings);
    let mut per_op: HashMap<String, Vec<(u64, f64)>> = HashMap::new();
    let mut top = Vec::new();
    for r in results {
        for (k, mut v) in r.part.per_op {
            per_op.entry(k).or_default().append(&mut v);
        }
        top.extend(r.part.top);
    }
    trim_top(&mut top, a.top);
    struct OpStats {
        name: String,
        count: usize,
        p50: f64,
        p90: f64,
        p99: f64,
        max: f64,
    }
    let mut ops: Vec<OpStats> = per_op
        .into_iter()
        .map(|(name, mut hd)| {
            // A line written to two streams counts once.
            hd.sort_unstable_by_key(|&(h, _)| h);
            hd.dedup_by_key(|&mut (h, _)| h);
            let mut d: Vec<f64> = hd.into_iter().map(|(_, d)| d).collect();
            d.sort_by(f64::total_cmp);
            OpStats {
                count: d.len(),
                p50: percentile(&d, 0.50),
                p90: percentile(&d, 0.90),
                p99: percentile(&d, 0.99),
                max: d.last().copied().unwrap_or(f64::NAN),
                name,
            }
        })
        .collect();
    ops.sort_by(|x, y| y.p99.total_cmp(&x.p99).then(y.count.cmp(&x.count)));
    let total_ops = ops.len();
    ops.truncate(a.top);
    let mut out = stdout();
    if a.json {
        let slowest: Vec<Value> = top
            .iter()
            .map(|s| {
                let v: Value = serde_json::from_slice(&s.line).unwrap_or(Value::Null);
                json!({
                    "duration_ms": s.duration,
                    "timestamp": time::format_micros(s.ts),
                    "operation": operation_name(&v),
                    "service": v.get("service"),
                    "request_id": v.get("request_id"),
                    "line": v,
                })
            })
            .collect();
        let operations: Vec<Value> = ops
            .iter()
            .map(|o| {
                json!({"operation": o.name, "count": o.count, "p50": o.p50, "p90": o.p90,
                       "p99": o.p99, "max": o.max})
            })
            .collect();
        serde_json::to_writer(
            &mut out,
            &json!({"slowest": slowest, "operations": operations}),
        )?;
        out.write_all(b"\n")?;
        out.flush()?;
        return Ok(Outcome::Found);
    }
    let style = Style::new(output::use_color(a.output.color));
    if top.is_empty() && ops.is_empty() {
        writeln!(out, "no lines with duration_ms")?;
        out.flush()?;
        return Ok(Outcome::Found);
    }
    let mut text = String::new();
    style.bold(&mut text, "slowest");
    writeln!(out, "{text}")?;
    for s in &top {
        text.clear();
        style.red(&mut text, &format!("{:>12.3}ms", s.duration));
        let v: Value = serde_json::from_slice(&s.line).unwrap_or(Value::Null);
        text.push_str("  ");
        style.dim(&mut text, &time::format_micros(s.ts));
        if let Some(svc) = v.get("service").and_then(Value::as_str) {
            text.push_str("  ");
            style.cyan(&mut text, svc);
        }
        text.push_str("  ");
        style.bold(&mut text, &operation_name(&v).unwrap_or_default());
        if let Some(id) = v.get("request_id") {
            text.push_str("  ");
            style.dim(&mut text, "request_id=");
            output::push_value(&mut text, id);
        }
        writeln!(out, "{text}")?;
    }
    let width = ops
        .iter()
        .map(|o| o.name.chars().count())
        .max()
        .unwrap_or(9)
        .clamp(9, 60);
    text.clear();
    style.bold(
        &mut text,
        &format!(
            "\n{:<width$}  {:>9}  {:>11}  {:>11}  {:>11}  {:>11}",
            "operation", "count", "p50 ms", "p90 ms", "p99 ms", "max ms"
        ),
    );
    writeln!(out, "{text}")?;
    for o in &ops {
        let name: String = o.name.chars().take(60).collect();
        writeln!(
            out,
            "{name:<width$}  {:>9}  {:>11.3}  {:>11.3}  {:>11.3}  {:>11.3}",
            o.count, o.p50, o.p90, o.p99, o.max
        )?;
    }
    if total_ops > ops.len() {
        writeln!(
            out,
            "({} more operations; --top N shows more)",
            total_ops - ops.len()
        )?;
    }
    out.flush()?;
    Ok(Outcome::Found)
}
