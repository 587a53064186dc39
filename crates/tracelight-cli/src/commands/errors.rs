//! `tracelight errors`: ERROR lines grouped by fingerprint.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::Write;

use anyhow::Result;
use serde_json::Value;
use tracelight_schema::key;

use super::{build_filters, prepare, report};
use crate::cli::ErrorsArgs;
use crate::engine::collect::line_hash;
use crate::engine::filter::{Filter, Level, Plan, WhereExpr};
use crate::engine::scan::{self, Collector};
use crate::engine::time;
use crate::printer::{human_line, push_message, Output, Style};
use crate::Outcome;

/// One group of `errors`.
#[derive(Debug, Clone)]
pub(crate) struct ErrorGroup {
    /// The `error_fingerprint`, when the lines have one.
    pub(crate) fingerprint: Option<String>,
    /// The message of the latest line.
    pub(crate) message: String,
    /// The target of the latest line.
    pub(crate) target: String,
    /// How many lines.
    pub(crate) count: u64,
    /// Repeats the error tracker did not write (from its `suppressed N repeats` lines).
    pub(crate) suppressed: u64,
    /// Time of the first line.
    pub(crate) first: i64,
    /// Time of the last line.
    pub(crate) last: i64,
    /// Services the lines came from.
    pub(crate) services: BTreeSet<String>,
    /// The latest line, unchanged.
    pub(crate) sample: Vec<u8>,
    /// Hashes of the lines counted, so that a line written to two streams (e.g. `app.log` and
    /// `errors.log`) counts once.
    pub(crate) seen: HashSet<u64>,
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

/// Sums the error tracker's suppression lines (`suppressed N repeats of an error: …`, WARN,
/// target `tracelight::errors`, with `error_fingerprint` and `suppressed`) by fingerprint; a
/// line written to two streams counts once.
#[derive(Debug)]
pub(crate) struct Suppressed;

impl Collector for Suppressed {
    /// (hash of the line, fingerprint, repeats left out) per line.
    type Part = Vec<(u64, String, u64)>;
    fn wants_value(&self) -> bool {
        true
    }
    fn new_part(&self) -> Self::Part {
        Vec::new()
    }
    fn accept(&self, part: &mut Self::Part, _: Option<i64>, line: &[u8], v: Option<&Value>) {
        let Some(v) = v else { return };
        let (Some(fp), Some(n)) = (
            v.get(key::ERROR_FINGERPRINT).and_then(Value::as_str),
            v.get(SUPPRESSED).and_then(Value::as_u64),
        ) else {
            return;
        };
        part.push((line_hash(line), fp.to_owned(), n));
    }
}

/// One group of `errors --json`.
#[derive(serde::Serialize)]
struct GroupJson<'a> {
    count: u64,
    suppressed: u64,
    fingerprint: Option<&'a str>,
    message: &'a str,
    target: &'a str,
    first_seen: String,
    last_seen: String,
    services: &'a BTreeSet<String>,
    sample: Option<Box<serde_json::value::RawValue>>,
}

/// The field of the error tracker's suppression lines that says how many repeats it left out.
const SUPPRESSED: &str = "suppressed";

/// Groups ERROR lines by fingerprint (or message and target).
#[derive(Debug)]
pub(crate) struct ErrorGroups;

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
            .get(key::ERROR_FINGERPRINT)
            .filter(|f| !f.is_null())
            .map(|f| f.as_str().map_or_else(|| f.to_string(), str::to_owned));
        let message = s(key::MESSAGE);
        let target = s(key::TARGET);
        let key = group_key(v);
        let ts = ts.unwrap_or(0);
        let mut services = BTreeSet::new();
        if let Some(svc) = v.get(key::SERVICE).and_then(Value::as_str) {
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
            suppressed: 0,
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

/// The groups of `errors` from the scans' parts: merged across files (a line written to two
/// streams counts once), with the repeats the tracker left out (from [`Suppressed`]'s parts),
/// the most frequent first.
pub(crate) fn finish_groups(
    parts: impl IntoIterator<Item = HashMap<String, ErrorGroup>>,
    suppressed: impl IntoIterator<Item = (u64, String, u64)>,
) -> Vec<ErrorGroup> {
    let mut all: HashMap<String, ErrorGroup> = HashMap::new();
    for part in parts {
        for (k, g) in part {
            match all.get_mut(&k) {
                Some(e) => e.merge(g),
                None => {
                    all.insert(k, g);
                }
            }
        }
    }
    let mut seen = HashSet::new();
    for (h, fp, n) in suppressed {
        if seen.insert(h) {
            if let Some(g) = all.get_mut(&format!("f:{fp}")) {
                g.suppressed += n;
            }
        }
    }
    let mut groups: Vec<ErrorGroup> = all.into_values().collect();
    groups.sort_by(|x, y| {
        (y.count + y.suppressed)
            .cmp(&(x.count + x.suppressed))
            .then(y.last.cmp(&x.last))
    });
    groups
}

/// The key a line's group has in [`ErrorGroups`]' parts.
pub(crate) fn group_key(v: &Value) -> String {
    match v
        .get(key::ERROR_FINGERPRINT)
        .filter(|f| !f.is_null())
        .map(|f| f.as_str().map_or_else(|| f.to_string(), str::to_owned))
    {
        Some(f) => format!("f:{f}"),
        None => {
            let s = |k: &str| match v.get(k) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            };
            format!("m:{}\u{1f}{}", s(key::MESSAGE), s(key::TARGET))
        }
    }
}

pub(crate) fn errors(a: ErrorsArgs) -> Result<Outcome> {
    let mut filters = build_filters(&a.filters, None)?;
    filters.insert(0, Filter::MinLevel(Level::Error));
    let Some(p) = prepare(&a.paths, &a.output) else {
        return Ok(Outcome::NothingToRead);
    };
    let plan = Plan::new(filters);
    let results = scan::scan(&p.sources, &plan, &ErrorGroups, &p.opts);
    report(&p.sources, &results);
    let parts: Vec<_> = results.into_iter().map(|r| r.part).collect();
    // The repeats the error tracker left out, from its summary lines (same filters, WARN).
    let mut filters = build_filters(&a.filters, None)?;
    filters.push(Filter::Where(WhereExpr::string_eq(
        key::TARGET,
        "tracelight::errors",
    )));
    filters.push(Filter::Where(WhereExpr::parse(&format!(
        "{SUPPRESSED} exists"
    ))?));
    let results = scan::scan(&p.sources, &Plan::new(filters), &Suppressed, &p.opts);
    let mut groups = finish_groups(parts, results.into_iter().flat_map(|r| r.part));
    let total_groups = groups.len();
    if let Some(n) = a.top {
        groups.truncate(n);
    }
    let mut out = Output::open(&a.output);
    if a.json {
        for g in &groups {
            // The sample line byte for byte, as it is in the file.
            let sample = std::str::from_utf8(&g.sample)
                .ok()
                .and_then(|s| serde_json::value::RawValue::from_string(s.to_owned()).ok());
            let obj = GroupJson {
                count: g.count,
                suppressed: g.suppressed,
                fingerprint: g.fingerprint.as_deref(),
                message: &g.message,
                target: &g.target,
                first_seen: time::format_micros(g.first),
                last_seen: time::format_micros(g.last),
                services: &g.services,
                sample,
            };
            serde_json::to_writer(&mut out, &obj).map_err(std::io::Error::from)?;
            out.write_all(b"\n")?;
        }
        out.finish()?;
        return Ok(Outcome::Found);
    }
    let style = Style::of(&a.output);
    if groups.is_empty() {
        writeln!(out, "no ERROR lines")?;
    }
    let total: u64 = groups.iter().map(|g| g.count).sum();
    let total_suppressed: u64 = groups.iter().map(|g| g.suppressed).sum();
    let mut text = String::new();
    for g in &groups {
        text.clear();
        style.red(&mut text, &format!("{:>8}×", g.count));
        text.push_str("  ");
        push_message(&mut text, style, &Value::from(g.message.as_str()));
        if g.suppressed > 0 {
            text.push(' ');
            style.dim(
                &mut text,
                &format!("(+{} repeats suppressed, not written)", g.suppressed),
            );
        }
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
            "{total} ERROR line{}{} in {} group{}{}",
            if total == 1 { "" } else { "s" },
            if total_suppressed > 0 {
                format!(" (and {total_suppressed} repeats suppressed)")
            } else {
                String::new()
            },
            groups.len(),
            if groups.len() == 1 { "" } else { "s" },
            if total_groups > groups.len() {
                format!(" (of {total_groups})")
            } else {
                String::new()
            }
        )?;
    }
    out.finish()?;
    Ok(Outcome::Found)
}
