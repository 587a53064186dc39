//! Runs the `tracelight` binary over generated logs: several services, rotated `.N` and `.gz`
//! files, malformed lines, invalid UTF-8 and a truncated last line.

#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;

use common::{generate, T0};

fn tl() -> Command {
    let mut c = Command::cargo_bin("tracelight").unwrap();
    c.env_remove("LOG_DIR").env_remove("NO_COLOR");
    c
}

fn run(args: &[&str], dir: &Path) -> (i32, String, String) {
    let out = tl().args(args).arg(dir).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn count(args: &[&str], dir: &Path) -> usize {
    let mut a = vec!["query", "--count"];
    a.extend_from_slice(args);
    let (_, out, err) = run(&a, dir);
    out.trim()
        .parse()
        .unwrap_or_else(|_| panic!("bad count output {out:?} ({err})"))
}

fn s<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str)
}

fn level_rank(v: &Value) -> u8 {
    match s(v, "level") {
        Some("TRACE") => 0,
        Some("DEBUG") => 1,
        Some("INFO") => 2,
        Some("WARN") => 3,
        Some("ERROR") => 4,
        _ => 255,
    }
}

#[test]
fn counts_match_a_plain_parse_of_every_line() {
    let t = generate(120);
    let d = t.path();
    assert_eq!(count(&[], d), t.count(|_| true));
    assert_eq!(
        count(&["--level", "warn"], d),
        t.count(|v| (3..=4).contains(&level_rank(v)))
    );
    assert_eq!(
        count(&["--level", "ERROR"], d),
        t.count(|v| level_rank(v) == 4)
    );
    assert_eq!(
        count(&["--where", "status >= 500"], d),
        t.count(|v| v
            .get("status")
            .and_then(Value::as_i64)
            .is_some_and(|s| s >= 500))
    );
    assert_eq!(
        count(&["--where", "status=404"], d),
        t.count(|v| v.get("status").and_then(Value::as_i64) == Some(404))
    );
    assert_eq!(
        count(&["--where", "duration_ms > 20.5"], d),
        t.count(|v| v
            .get("duration_ms")
            .and_then(Value::as_f64)
            .is_some_and(|x| x > 20.5))
    );
    assert_eq!(
        count(&["--service", "billing"], d),
        t.count(|v| s(v, "service") == Some("billing"))
    );
    assert_eq!(
        count(&["--where", "span.name = charge_card"], d),
        t.count(|v| v.pointer("/span/name").and_then(Value::as_str) == Some("charge_card"))
    );
    assert_eq!(
        count(&["--where", "error.type exists"], d),
        t.count(|v| v.pointer("/error/type").is_some())
    );
    assert_eq!(
        count(&["--where", "message ~ ^order \"[0-9]+\""], d),
        t.count(|v| s(v, "message").is_some_and(|m| m.starts_with("order \"")))
    );
    assert_eq!(
        count(
            &["--where", "user_id = 103", "--where", "level != DEBUG"],
            d
        ),
        t.count(|v| {
            v.get("user_id").and_then(Value::as_i64) == Some(103) && s(v, "level") != Some("DEBUG")
        })
    );
    let since = common::ts(T0 + 300_000);
    let until = common::ts(T0 + 600_000);
    let in_window =
        |v: &Value| s(v, "timestamp").is_some_and(|x| x >= since.as_str() && x < until.as_str());
    assert_eq!(
        count(&["--since", &since, "--until", &until], d),
        t.count(in_window)
    );
    // `YYYY-MM-DD HH:MM:SS` form.
    assert_eq!(
        count(
            &[
                "--since",
                "2026-02-10 22:30:00",
                "--until",
                "2026-02-10 22:30:01"
            ],
            d
        ),
        t.count(|v| s(v, "timestamp").is_some_and(|x| x < "2026-02-10T22:30:01"))
    );
    let id = &t.requests[7];
    assert_eq!(
        count(&["--request-id", id], d),
        t.count(|v| s(v, "request_id") == Some(id.as_str()))
    );
}

#[test]
fn json_output_is_unchanged_and_in_time_order() {
    let t = generate(60);
    let (code, out, err) = run(&["query", "--json"], t.path());
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), t.count(|_| true));
    let expected: HashSet<Vec<u8>> = t.parsed().into_iter().map(|(l, _)| l).collect();
    let mut prev = String::new();
    for l in &lines {
        assert!(expected.contains(l.as_bytes()), "changed line {l}");
        let v: Value = serde_json::from_str(l).unwrap();
        let ts = s(&v, "timestamp").unwrap().to_owned();
        assert!(ts >= prev, "out of order: {prev} then {ts}");
        prev = ts;
    }
    assert!(
        err.contains(&format!("skipped {} malformed lines in", t.malformed)),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "skipped {} lines that looked like JSON but did not parse",
            t.invalid
        )),
        "{err}"
    );
}

#[test]
fn malformed_lines_are_counted_per_file() {
    let t = generate(40);
    let (code, _, err) = run(&["query", "--count"], t.path());
    assert_eq!(code, 0);
    assert!(
        err.contains(&format!(
            "skipped {} malformed lines in 2 files",
            t.malformed
        )),
        "{err}"
    );
}

/// The count of malformed lines is a fact about the files: every query over them says the same.
#[test]
fn one_malformed_count_whatever_the_query() {
    let t = generate(40);
    let id = t.requests[3].clone();
    let expected = format!("skipped {} malformed lines in 2 files", t.malformed);
    for args in [
        vec!["query", "--count"],
        vec!["query", "--json", "--request-id", id.as_str()],
        vec!["query", "--json", "--level", "error"],
        vec!["query", "--json", "--where", "status >= 500"],
        vec!["query", "--json", "--where", "nosuchfield = 1"],
        vec!["timeline", id.as_str()],
        vec!["errors"],
        vec!["slow"],
    ] {
        let (_, _, err) = run(&args, t.path());
        let said: Vec<&str> = err.lines().filter(|l| l.contains("malformed")).collect();
        assert_eq!(said, [format!("tracelight: {expected}")], "{args:?}: {err}");
    }
}

#[test]
fn timeline_is_complete_and_ordered() {
    let t = generate(80);
    let id = t.requests[3].clone(); // a failing request
    let (code, out, err) = run(&["timeline", &id, "--color", "never"], t.path());
    assert_eq!(code, 0, "{err}");
    let body: Vec<&str> = out.lines().skip(1).collect();
    // Every line of the request, each once (the ERROR line is in app.log and errors.log).
    let mut expected: Vec<(String, Value)> = t
        .parsed()
        .into_iter()
        .filter(|(_, v)| s(v, "request_id") == Some(id.as_str()))
        .map(|(l, v)| (String::from_utf8(l).unwrap(), v))
        .collect();
    expected.sort_by(|a, b| s(&a.1, "timestamp").cmp(&s(&b.1, "timestamp")));
    expected.dedup_by(|a, b| a.0 == b.0);
    assert_eq!(body.len(), expected.len(), "{out}");
    for (line, (_, v)) in body.iter().zip(&expected) {
        assert!(line.contains(s(v, "message").unwrap()), "{line}");
        assert!(line.contains(s(v, "service").unwrap()), "{line}");
    }
    assert!(body[0].contains("+0.000ms"), "{out}");
    assert!(out.lines().next().unwrap().contains("3 services"), "{out}");
    // The last successful line before the first ERROR is marked; WARN lines are skipped.
    let first_error = body.iter().position(|l| l.contains("ERROR")).unwrap();
    let marked = body.iter().position(|l| l.contains("last good ►")).unwrap();
    assert!(marked < first_error);
    assert!(body[marked].contains("INFO"), "{}", body[marked]);
    assert!(body[marked + 1..first_error]
        .iter()
        .all(|l| l.contains("WARN")));
    // Nesting: the DEBUG line has two spans, so it is indented deeper than the first line.
    let debug = body.iter().find(|l| l.contains("DEBUG")).unwrap();
    assert!(debug.contains("      order"), "{debug}");

    let (code, out, _) = run(&["timeline", &id, "--json"], t.path());
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), expected.len());
}

#[test]
fn timeline_of_unknown_request_exits_1() {
    let t = generate(5);
    let (code, out, err) = run(&["timeline", "no-such-id"], t.path());
    assert_eq!(code, 1);
    assert!(out.is_empty());
    assert!(err.contains("no lines with request_id no-such-id"), "{err}");
}

#[test]
fn errors_are_grouped_by_fingerprint() {
    let t = generate(100);
    let (code, out, err) = run(&["errors", "--json"], t.path());
    assert_eq!(code, 0, "{err}");
    let groups: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // Expected: distinct ERROR lines, grouped by fingerprint or by message and target.
    let mut expected: BTreeMap<String, HashSet<Vec<u8>>> = BTreeMap::new();
    for (l, v) in t.parsed() {
        if level_rank(&v) == 4 {
            let key = match s(&v, "error_fingerprint") {
                Some(f) => f.to_owned(),
                None => format!("{}|{}", s(&v, "message").unwrap(), s(&v, "target").unwrap()),
            };
            expected.entry(key).or_default().insert(l);
        }
    }
    assert_eq!(groups.len(), expected.len(), "{out}");
    let mut prev = u64::MAX;
    for g in &groups {
        let c = g["count"].as_u64().unwrap();
        assert!(c <= prev, "not sorted by count");
        prev = c;
        let key = match g["fingerprint"].as_str() {
            Some(f) => f.to_owned(),
            None => format!(
                "{}|{}",
                g["message"].as_str().unwrap(),
                g["target"].as_str().unwrap()
            ),
        };
        assert_eq!(c as usize, expected[&key].len(), "{key}");
        assert!(g["first_seen"].as_str().unwrap() <= g["last_seen"].as_str().unwrap());
        assert!(g["sample"].is_object());
    }
    // Human output and filters.
    let (code, out, _) = run(
        &["errors", "--service", "gateway", "--color", "never"],
        t.path(),
    );
    assert_eq!(code, 0);
    assert!(out.contains("request completed"), "{out}");
    assert!(!out.contains("payment_failed"), "{out}");
}

#[test]
fn slow_reports_percentiles_per_operation() {
    let t = generate(100);
    let (code, out, err) = run(&["slow", "--json", "--top", "5"], t.path());
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let ops = v["operations"].as_array().unwrap();
    let charge = ops
        .iter()
        .find(|o| o["operation"] == "charge_card")
        .unwrap_or_else(|| panic!("{out}"));
    let mut d: Vec<f64> = t
        .parsed()
        .iter()
        .filter(|(_, v)| s(v, "operation") == Some("charge_card"))
        .filter_map(|(_, v)| v["duration_ms"].as_f64())
        .collect();
    d.sort_by(f64::total_cmp);
    assert_eq!(charge["count"].as_u64().unwrap() as usize, d.len());
    assert_eq!(charge["max"].as_f64(), d.last().copied());
    let p50 = d[(d.len() as f64 * 0.5).ceil() as usize - 1];
    assert_eq!(charge["p50"].as_f64(), Some(p50));
    // Access lines are named by their route.
    assert!(
        ops.iter().any(|o| o["operation"] == "POST /orders/{id}"),
        "{out}"
    );
    let slowest = v["slowest"].as_array().unwrap();
    assert_eq!(slowest.len(), 5);
    let max_all = t
        .parsed()
        .iter()
        .filter_map(|(_, v)| v["duration_ms"].as_f64())
        .fold(0.0, f64::max);
    assert_eq!(slowest[0]["duration_ms"].as_f64(), Some(max_all));

    let (code, out, _) = run(&["slow", "--color", "never"], t.path());
    assert_eq!(code, 0);
    assert!(
        out.contains("p99 ms") && out.contains("charge_card"),
        "{out}"
    );
}

#[test]
fn bad_where_points_at_the_operator() {
    let t = generate(2);
    tl().args(["query", "--where", "status >> 5"])
        .arg(t.path())
        .assert()
        .code(2)
        .stderr(predicate::str::contains("unknown operator `>>`"))
        .stderr(predicate::str::contains("  status >> 5\n         ^^\n"));
}

#[test]
fn bad_queries_exit_2_with_a_clear_message() {
    let t = generate(2);
    tl().args(["query", "--level", "verbose"])
        .arg(t.path())
        .assert()
        .code(2)
        .stderr(predicate::str::contains("unknown level `verbose`"))
        .stderr(predicate::str::contains(
            "trace, debug, info, warn (or warning), error (or err, fatal, critical, crit)",
        ));
    tl().args(["query", "--since", "yesterday-ish"])
        .arg(t.path())
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "cannot read `yesterday-ish` as a time",
        ));
    tl().args(["query", "--where", "message ~ ("])
        .arg(t.path())
        .assert()
        .code(2)
        .stderr(predicate::str::contains("bad regular expression"));
    tl().args(["query", "--where", "status"])
        .arg(t.path())
        .assert()
        .code(2)
        .stderr(predicate::str::contains("expected an operator"));
    tl().args(["query", "--bogus"]).assert().code(2);
    tl().args(["query", "/no/such/dir"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("/no/such/dir"));
}

#[test]
fn nothing_matched_exits_1() {
    let t = generate(3);
    let (code, out, _) = run(&["query", "--request-id", "nope-nope"], t.path());
    assert_eq!(code, 1);
    assert!(out.is_empty());
    let (code, out, _) = run(&["query", "--count", "--request-id", "nope-nope"], t.path());
    assert_eq!(code, 1);
    assert_eq!(out.trim(), "0");
}

#[test]
fn log_dir_is_the_default_path() {
    let t = generate(10);
    let out = tl()
        .args(["query", "--count"])
        .env("LOG_DIR", t.path())
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        t.count(|_| true).to_string()
    );
}

#[test]
fn colours_only_when_asked_or_on_a_terminal() {
    let t = generate(8);
    let (_, out, _) = run(&["query", "--level", "error"], t.path());
    assert!(!out.contains('\x1b'), "piped output must not be coloured");
    assert!(out.contains("ERROR"));
    let (_, out, _) = run(
        &["query", "--level", "error", "--color", "always"],
        t.path(),
    );
    assert!(out.contains("\x1b[1;31mERROR"), "{out}");
}

#[test]
fn tail_prints_the_last_lines_of_live_files() {
    let t = generate(20);
    let (code, out, _) = run(&["tail", "-n", "3", "--json"], &t.path().join("gateway"));
    assert_eq!(code, 0);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3);
    let access = &t
        .files
        .iter()
        .find(|f| f.rel == "gateway/access.log")
        .unwrap()
        .lines;
    let last = String::from_utf8(access[access.len() - 1].clone()).unwrap();
    assert_eq!(lines[2], last);
}
