//! `tracelight timeline`: every line of one request, with offsets and nesting.

use std::collections::{BTreeSet, HashSet};
use std::io::Write;

use anyhow::Result;
use serde_json::Value;
use tracelight_schema::key;

use super::{prepare, report};
use crate::cli::TimelineArgs;
use crate::engine::collect::{self, line_hash, Lines};
use crate::engine::filter::{value_level, Filter, Level, Plan, WhereExpr};
use crate::engine::{scan, time};
use crate::printer::{human_duration, push_fields, push_message, LinePrinter, Output, Style};
use crate::Outcome;

/// How deep a line is in its request's span tree: the length of `spans`, else 1 when it has a
/// `span`, else 0.
pub(crate) fn span_depth(v: &Value) -> usize {
    match v.get(key::SPANS) {
        Some(Value::Array(a)) => a.len(),
        _ => usize::from(v.get(key::SPAN).is_some_and(|s| !s.is_null())),
    }
}

pub(crate) fn timeline(a: TimelineArgs) -> Result<Outcome> {
    let Some(p) = prepare(&a.paths, &a.output) else {
        return Ok(Outcome::NothingToRead);
    };
    let plan = Plan::new(vec![Filter::Where(WhereExpr::string_eq(
        key::REQUEST_ID,
        &a.id,
    ))]);
    let results = scan::scan(&p.sources, &plan, &Lines, &p.opts);
    report(&p.sources, &results);
    let mut lines = collect::merge_to_vec(results);
    dedup_lines(&mut lines);
    if lines.is_empty() {
        eprintln!("tracelight: no lines with request_id {}", a.id);
        return Ok(Outcome::NotFound);
    }
    let mut out = Output::open(&a.output);
    if a.json {
        let mut printer = LinePrinter::new(Style::of(&a.output), true);
        for (_, l) in &lines {
            printer.print(&mut out, l)?;
        }
        out.finish()?;
        return Ok(Outcome::Found);
    }
    let style = Style::of(&a.output);
    let values: Vec<Value> = lines
        .iter()
        .map(|(_, l)| crate::engine::preset::parse_line(l).unwrap_or(Value::Null))
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
        .filter_map(|v| v.get(key::SERVICE).and_then(Value::as_str))
        .collect();
    let svc_width = services
        .iter()
        .map(|s| s.chars().count())
        .max()
        .unwrap_or(1)
        .max(1);
    let offsets: Vec<String> = lines
        .iter()
        .map(|(ts, _)| format!("+{}", human_duration(ts - t0)))
        .collect();
    let off_width = offsets.iter().map(String::len).max().unwrap_or(1);
    let mut head = String::new();
    style.bold(&mut head, &format!("request {}", a.id));
    head.push_str(&format!(
        ": {} line{} from {} service{} ({}), {} → {} ({})",
        lines.len(),
        if lines.len() == 1 { "" } else { "s" },
        services.len(),
        if services.len() == 1 { "" } else { "s" },
        services.iter().copied().collect::<Vec<_>>().join(", "),
        time::format_micros(t0),
        time::format_micros(t_end),
        human_duration(t_end - t0)
    ));
    writeln!(out, "{head}")?;
    let mut text = String::new();
    for (i, (((_, raw), v), offset)) in lines.iter().zip(&values).zip(&offsets).enumerate() {
        text.clear();
        let replayed = v.get(key::REPLAYED) == Some(&Value::Bool(true));
        if Some(i) == last_good {
            style.green(&mut text, "last good ► ");
        } else if Some(i) == first_error {
            style.red(&mut text, "first error ");
        } else if replayed {
            // Kept by the flight recorder and written when the request failed: in place, by
            // its own timestamp.
            style.dim(&mut text, "replayed ↺  ");
        } else {
            text.push_str("            ");
        }
        style.dim(&mut text, &format!("{offset:>off_width$}"));
        text.push_str("  ");
        let Some(obj) = v.as_object() else {
            style.push_cut(&mut text, &String::from_utf8_lossy(raw));
            writeln!(out, "{text}")?;
            continue;
        };
        let svc = obj.get(key::SERVICE).and_then(Value::as_str).unwrap_or("-");
        style.cyan(&mut text, &format!("{svc:<svc_width$}"));
        text.push_str("  ");
        let lvl = obj.get(key::LEVEL).and_then(Value::as_str).unwrap_or("-");
        style.level(&mut text, value_level(v), lvl);
        text.push_str("  ");
        text.push_str(&"  ".repeat(span_depth(v)));
        if let Some(m) = obj.get(key::MESSAGE) {
            push_message(&mut text, style, m);
        }
        let mut rest = obj.clone();
        rest.remove(key::REQUEST_ID);
        if replayed {
            rest.remove(key::REPLAYED);
        }
        push_fields(&mut text, style, &rest);
        writeln!(out, "{text}")?;
    }
    out.finish()?;
    Ok(Outcome::Found)
}

/// Drops repeated lines (the same bytes at the same time), as when one event was written to two
/// streams. Expects time-ordered input.
pub(crate) fn dedup_lines(lines: &mut Vec<(i64, Vec<u8>)>) {
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
