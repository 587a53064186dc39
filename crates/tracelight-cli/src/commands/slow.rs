//! `tracelight slow`: the slowest lines and latency percentiles per group.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Write;

use anyhow::Result;
use serde_json::{json, Value};
use tracelight_schema::key;

use super::{build_filters, prepare, report};
use crate::cli::SlowArgs;
use crate::engine::collect::line_hash;
use crate::engine::filter::{Filter, Plan, WhereExpr};
use crate::engine::scan::{self, Collector};
use crate::engine::time;
use crate::printer::{self, Output, Style};
use crate::Outcome;

/// What a line measures, which `slow` groups by: the route of an access line (`route`, with its
/// `method`: `GET /orders/{id}`), else `operation` (performance lines), else `span.name`, else
/// `path`, else `message`.
pub(crate) fn operation_name(v: &Value) -> Option<String> {
    let as_text = |x: &Value| match x {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    };
    if let Some(route) = v.get(key::ROUTE).and_then(as_text) {
        return Some(with_method(
            v.get(key::METHOD).and_then(as_text).as_deref(),
            route,
        ));
    }
    v.get(key::OPERATION)
        .and_then(as_text)
        .or_else(|| {
            v.get(key::SPAN)
                .and_then(|s| s.get(key::SPAN_NAME))
                .and_then(as_text)
        })
        .or_else(|| v.get(key::PATH).and_then(as_text))
        .or_else(|| v.get(key::MESSAGE).and_then(as_text))
}

fn with_method(method: Option<&str>, route: String) -> String {
    match method {
        Some(m) if !m.is_empty() => format!("{m} {route}"),
        _ => route,
    }
}

/// The `duration_ms` of a line (a number, or a string holding one).
pub(crate) fn duration_ms(v: &Value) -> Option<f64> {
    match v.get(key::DURATION_MS)? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|d: &f64| d.is_finite())
}

/// One of the slowest lines.
#[derive(Debug, Clone)]
pub(crate) struct SlowLine {
    /// Its `duration_ms`.
    pub(crate) duration: f64,
    /// Its time.
    pub(crate) ts: i64,
    /// Hash of the line.
    pub(crate) hash: u64,
    /// The line, unchanged.
    pub(crate) line: Vec<u8>,
}

/// Durations per operation and the slowest lines of one work item.
#[derive(Debug, Default)]
pub(crate) struct SlowPart {
    /// (line hash, duration) per operation.
    pub(crate) per_op: HashMap<String, Vec<(u64, f64)>>,
    /// The slowest lines (at most about 2 × top).
    pub(crate) top: Vec<SlowLine>,
    /// Once `top` has been trimmed to `top` lines, the shortest duration among them: a line
    /// shorter than that is not one of the slowest.
    pub(crate) floor: Option<f64>,
}

/// Collects durations for `slow`.
#[derive(Debug)]
pub(crate) struct Slow {
    /// How many slowest lines to keep.
    pub(crate) top: usize,
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
    method: Option<Cow<'a, str>>,
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
    fn record(&self, part: &mut SlowPart, ts: Option<i64>, line: &[u8], op: Cow<'_, str>, d: f64) {
        let hash = line_hash(line);
        // The operation's name is copied only the first time it is seen.
        match part.per_op.get_mut(op.as_ref()) {
            Some(durations) => durations.push((hash, d)),
            None => {
                part.per_op.insert(op.into_owned(), vec![(hash, d)]);
            }
        }
        if self.top > 0 && part.floor.is_none_or(|f| d >= f) {
            part.top.push(SlowLine {
                duration: d,
                ts: ts.unwrap_or(0),
                hash,
                line: line.to_vec(),
            });
            if part.top.len() >= 2 * self.top + 64 {
                trim_top(&mut part.top, self.top);
                if part.top.len() == self.top {
                    part.floor = part.top.last().map(|s| s.duration);
                }
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
        self.record(part, ts, line, Cow::Owned(op), d);
    }
    fn accept_unparsed(&self, part: &mut SlowPart, ts: Option<i64>, line: &[u8]) -> bool {
        let Ok(text) = std::str::from_utf8(line) else {
            return false;
        };
        match serde_json::from_str::<SlowView<'_>>(text) {
            Ok(view) => {
                if let Some(d) = view.duration_ms.filter(|d| d.is_finite()) {
                    let op = match view.route {
                        Some(route) => {
                            Cow::Owned(with_method(view.method.as_deref(), route.into_owned()))
                        }
                        None => view
                            .operation
                            .or(view.span.and_then(|s| s.name))
                            .or(view.path)
                            .or(view.message)
                            .unwrap_or(Cow::Borrowed("-")),
                    };
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
pub(crate) fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Latency percentiles of one operation.
#[derive(Debug, Clone)]
pub(crate) struct OpStats {
    pub(crate) name: String,
    pub(crate) count: usize,
    pub(crate) p50: f64,
    pub(crate) p90: f64,
    pub(crate) p99: f64,
    pub(crate) max: f64,
}

/// The slowest lines (at most `top`) and every operation's percentiles (slowest p99 first) from
/// the scans' parts; a line written to two streams counts once.
pub(crate) fn finish(
    parts: impl IntoIterator<Item = SlowPart>,
    top: usize,
) -> (Vec<SlowLine>, Vec<OpStats>) {
    let mut per_op: HashMap<String, Vec<(u64, f64)>> = HashMap::new();
    let mut slowest = Vec::new();
    for part in parts {
        for (k, mut v) in part.per_op {
            per_op.entry(k).or_default().append(&mut v);
        }
        slowest.extend(part.top);
    }
    trim_top(&mut slowest, top);
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
    (slowest, ops)
}

pub(crate) fn slow(a: SlowArgs) -> Result<Outcome> {
    let mut filters = build_filters(&a.filters, a.level.as_deref())?;
    filters.push(Filter::Where(WhereExpr::parse(&format!(
        "{} exists",
        key::DURATION_MS
    ))?));
    let Some(p) = prepare(&a.paths, &a.output) else {
        return Ok(Outcome::NothingToRead);
    };
    let plan = Plan::new(filters);
    let coll = Slow { top: a.top };
    let results = scan::scan(&p.sources, &plan, &coll, &p.opts);
    report(&p.sources, &results);
    let (top, mut ops) = finish(results.into_iter().map(|r| r.part), a.top);
    let total_ops = ops.len();
    ops.truncate(a.top);
    let mut out = Output::open(&a.output);
    if a.json {
        let slowest: Vec<Value> = top
            .iter()
            .map(|s| {
                let v: Value = crate::engine::preset::parse_line(&s.line).unwrap_or(Value::Null);
                json!({
                    "duration_ms": s.duration,
                    "timestamp": time::format_micros(s.ts),
                    "operation": operation_name(&v),
                    "service": v.get(key::SERVICE),
                    "request_id": v.get(key::REQUEST_ID),
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
        )
        .map_err(std::io::Error::from)?;
        out.write_all(b"\n")?;
        out.finish()?;
        return Ok(Outcome::Found);
    }
    let style = Style::of(&a.output);
    if top.is_empty() && ops.is_empty() {
        writeln!(out, "no lines with duration_ms")?;
        out.finish()?;
        return Ok(Outcome::Found);
    }
    let mut text = String::new();
    style.bold(&mut text, "slowest");
    writeln!(out, "{text}")?;
    for s in &top {
        text.clear();
        style.red(&mut text, &format!("{:>12.3}ms", s.duration));
        let v: Value = crate::engine::preset::parse_line(&s.line).unwrap_or(Value::Null);
        text.push_str("  ");
        style.dim(&mut text, &time::format_micros(s.ts));
        if let Some(svc) = v.get(key::SERVICE).and_then(Value::as_str) {
            text.push_str("  ");
            style.cyan(&mut text, svc);
        }
        text.push_str("  ");
        let name = operation_name(&v).unwrap_or_default();
        printer::push_message(&mut text, style, &Value::from(name));
        if let Some(id) = v.get(key::REQUEST_ID) {
            text.push_str("  ");
            style.dim(&mut text, "request_id=");
            printer::push_value(&mut text, style, id);
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
    out.finish()?;
    Ok(Outcome::Found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::filter::Plan;
    use crate::engine::scan;

    /// The slowest lines kept while reading (only those at least as slow as the part's slowest
    /// `top` so far) are those of sorting every line, ties included, with lines in reverse time
    /// order.
    #[test]
    fn the_slowest_lines_are_those_of_a_full_sort() {
        let mut text = String::new();
        let mut all = Vec::new();
        let mut x = 7u64;
        for i in 0..5000u64 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            // Few distinct durations, so that many lines tie.
            let d = ((x >> 33) % 300) as f64 / 4.0;
            let line = format!(
                r#"{{"timestamp":"2026-02-10T22:30:{:02}.{:06}Z","level":"INFO","message":"span_closed","operation":"op","duration_ms":{d},"n":{i}}}"#,
                59 - i * 60 / 5000,
                i
            );
            // In reverse time order: a later line that ties wins.
            all.push((d, 59 - i * 60 / 5000, i));
            text.push_str(&line);
            text.push('\n');
        }
        for top in [1, 10, 100] {
            let r = scan::scan_bytes(text.as_bytes(), &Plan::new(Vec::new()), &Slow { top });
            let (got, ops) = finish([r.part], top);
            let mut want = all.clone();
            // Slowest first; ties by time.
            want.sort_by(|a, b| b.0.total_cmp(&a.0).then((a.1, a.2).cmp(&(b.1, b.2))));
            let want: Vec<(f64, u64)> = want.into_iter().take(top).map(|w| (w.0, w.2)).collect();
            let got: Vec<(f64, u64)> = got
                .iter()
                .map(|s| {
                    let v: Value = serde_json::from_slice(&s.line).unwrap();
                    (s.duration, v["n"].as_u64().unwrap())
                })
                .collect();
            assert_eq!(got, want, "top {top}");
            assert_eq!(ops[0].count, 5000);
        }
    }
}
