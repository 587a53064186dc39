//! Timing, error tracking, security events, redaction and sampling, through the public API with
//! real streams in a temporary directory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use tracelight::errors::ErrorConfig;
use tracelight::sample::SamplingConfig;
use tracelight::timing::TimingConfig;
use tracing::{debug, error, info, info_span, warn};

fn lines(dir: &Path, file: &str) -> Vec<Value> {
    fs::read_to_string(dir.join(file))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn builder(dir: &Path) -> tracelight::Builder {
    tracelight::builder()
        .log_dir(dir)
        .stdout_with_files(false)
        .filter("trace")
}

#[test]
fn slow_spans_go_to_the_performance_stream_with_fields_and_context() {
    let dir = tempfile::tempdir().unwrap();
    let g = builder(dir.path())
        .timing(
            TimingConfig::default()
                .threshold(Duration::from_secs(10))
                .threshold_for("db_query", Duration::from_millis(20)),
        )
        .init_local()
        .unwrap();
    let slow_line;
    {
        let req = info_span!("request", request_id = "req-7");
        let _r = req.enter();
        {
            let (_q, line) = (info_span!("db_query", table = "orders").entered(), line!());
            slow_line = line;
            std::thread::sleep(Duration::from_millis(30));
        }
        {
            let _q = info_span!("db_query", table = "fast").entered();
        }
        let _cheap = info_span!("render").entered();
    }
    g.shutdown();
    let perf = lines(dir.path(), "performance.log");
    assert_eq!(perf.len(), 1, "{perf:?}");
    let p = &perf[0];
    assert_eq!(p["message"], "span_closed");
    assert_eq!(p["level"], "WARN");
    assert_eq!(p["operation"], "db_query");
    assert_eq!(p["slow"], true);
    assert_eq!(p["threshold_ms"], 20.0);
    assert!(p["duration_ms"].as_f64().unwrap() >= 30.0);
    let (busy, idle, total) = (
        p["busy_ms"].as_f64().unwrap(),
        p["idle_ms"].as_f64().unwrap(),
        p["duration_ms"].as_f64().unwrap(),
    );
    assert!((busy + idle - total).abs() < 0.01);
    assert_eq!(p["span"]["name"], "db_query");
    assert_eq!(p["span"]["table"], "orders");
    assert_eq!(p["request_id"], "req-7");
    // The line points at the slow span, not at the library.
    assert_eq!(p["file"], "crates/tracelight/tests/insight.rs", "{p}");
    assert_eq!(p["line"], slow_line, "{p}");
    // Aggregates: two db_query closes, one slow, with its sample.
    let stats = g.handle().performance();
    let q = stats
        .operations
        .iter()
        .find(|o| o.operation == "db_query")
        .unwrap();
    assert_eq!((q.count, q.slow), (2, 1));
    assert_eq!(q.slow_samples[0].request_id.as_deref(), Some("req-7"));
    assert!(q.slow_samples[0].fields.contains("\"table\":\"orders\""));
    assert!(q.max_ms >= 30.0 && q.min_ms < 20.0);
    assert!(stats
        .operations
        .iter()
        .any(|o| o.operation == "request" && o.count == 1));
}

#[tokio::test(flavor = "current_thread")]
async fn idle_time_is_time_spent_awaiting() {
    use tracing::Instrument as _;
    let w = tracelight::sink::MemoryWriter::new();
    let _g = tracelight::builder()
        .timing(TimingConfig::default().every_close(true))
        .format(tracelight::Format::Json)
        .writer(w.clone())
        .init_local()
        .unwrap();
    async { tokio::time::sleep(Duration::from_millis(40)).await }
        .instrument(info_span!("waiting"))
        .await;
    let line: Value = serde_json::from_str(&w.lines()[0]).unwrap();
    assert_eq!(line["operation"], "waiting");
    assert_eq!(line["slow"], false);
    assert!(line["idle_ms"].as_f64().unwrap() >= 35.0, "{line}");
    assert!(line["busy_ms"].as_f64().unwrap() < 20.0, "{line}");
}

#[test]
fn timed_blocks_are_operations_of_their_own() {
    let w = tracelight::sink::MemoryWriter::new();
    let g = tracelight::builder()
        .timing(TimingConfig::default().threshold_for("load_rows", Duration::from_millis(5)))
        .writer(w.clone())
        .init_local()
        .unwrap();
    for _ in 0..3 {
        let _t = tracelight::timed("load_rows");
        std::thread::sleep(Duration::from_millis(6));
    }
    let s = g.handle().performance();
    let op = s
        .operations
        .iter()
        .find(|o| o.operation == "load_rows")
        .unwrap();
    assert_eq!((op.count, op.slow), (3, 3));
    assert!(op.p50_ms >= 6.0);
    assert_eq!(w.lines().len(), 3);
}

#[derive(Debug)]
struct Timeout;
impl std::fmt::Display for Timeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("upstream timed out")
    }
}
impl std::error::Error for Timeout {}

#[derive(Debug)]
struct Refused;
impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection refused")
    }
}
impl std::error::Error for Refused {}

fn fail(order: u32, err: &(dyn std::error::Error + 'static)) {
    error!(error = err, order, "order {order} failed");
}

#[test]
fn errors_are_fingerprinted_by_callsite_and_type_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let g = builder(dir.path()).init_local().unwrap();
    for order in 0..5 {
        fail(order, &Timeout);
    }
    fail(99, &Refused);
    error!("something else");
    g.shutdown();
    let errs = lines(dir.path(), "errors.log");
    assert_eq!(errs.len(), 7);
    let fp: Vec<&str> = errs
        .iter()
        .map(|l| l["error_fingerprint"].as_str().unwrap())
        .collect();
    assert!(
        fp[..5].iter().all(|f| *f == fp[0]),
        "the message's variable parts do not matter"
    );
    assert_ne!(fp[0], fp[5], "another error type is another fingerprint");
    assert_ne!(fp[5], fp[6]);
    assert!(fp
        .iter()
        .all(|f| f.len() == 16 && f.chars().all(|c| c.is_ascii_hexdigit())));
    let snap = g.handle().errors();
    assert_eq!(snap.total, 7);
    let top = &snap.groups[0];
    assert_eq!(
        (
            top.fingerprint.as_str(),
            top.count,
            top.last_minute,
            top.last_hour
        ),
        (fp[0], 5, 5, 5)
    );
    assert_eq!(top.error_type.as_deref(), Some("Timeout"));
    assert_eq!(top.message, "order 0 failed");
    assert!(top.sample.contains("\"order\":0"));
    assert_eq!(snap.recent.len(), 7);
    // The app stream has the fingerprint too.
    assert!(lines(dir.path(), "app.log")
        .iter()
        .filter(|l| l["level"] == "ERROR")
        .all(|l| l["error_fingerprint"].is_string()));
}

#[test]
fn repeated_errors_are_suppressed_and_summarised_when_the_window_closes() {
    let dir = tempfile::tempdir().unwrap();
    let g = builder(dir.path())
        .errors(ErrorConfig::default().suppress_after(3, Duration::from_millis(300)))
        .init_local()
        .unwrap();
    for order in 0..10 {
        fail(order, &Timeout);
    }
    g.flush();
    assert_eq!(lines(dir.path(), "errors.log").len(), 3);
    // The summary comes with the first event after the window closes.
    let deadline = Instant::now() + Duration::from_secs(10);
    let summary = loop {
        info!("tick");
        g.flush();
        let found = lines(dir.path(), "app.log")
            .into_iter()
            .find(|l| l["target"] == "tracelight::errors");
        if let Some(s) = found {
            break s;
        }
        assert!(Instant::now() < deadline, "no summary line");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(summary["level"], "WARN");
    assert_eq!(summary["suppressed"], 7);
    assert_eq!(
        summary["error_fingerprint"],
        lines(dir.path(), "errors.log")[0]["error_fingerprint"]
    );
    assert!(summary["message"]
        .as_str()
        .unwrap()
        .starts_with("suppressed 7 repeats of an error"));
    // The summary points at the error's callsite, as the error lines do.
    let first = &lines(dir.path(), "errors.log")[0];
    assert_eq!(summary["file"], first["file"], "{summary}");
    assert_eq!(summary["line"], first["line"], "{summary}");
    let snap = g.handle().errors();
    assert_eq!((snap.groups[0].count, snap.groups[0].suppressed), (10, 7));
    // After the window, errors are written again.
    fail(10, &Timeout);
    g.shutdown();
    assert_eq!(lines(dir.path(), "errors.log").len(), 4);
}

#[test]
fn security_events_have_their_stream_and_counts() {
    let dir = tempfile::tempdir().unwrap();
    let g = builder(dir.path()).init_local().unwrap();
    for _ in 0..3 {
        tracelight::security_event!("login_failed", "medium", user = "mallory", "wrong password");
    }
    tracelight::security_event!("admin_access", "low", path = "/admin", "admin page opened");
    warn!(
        stream = "security",
        event = "rate_limited",
        "too many requests"
    );
    info!("not a security event");
    g.shutdown();
    let sec = lines(dir.path(), "security.log");
    assert_eq!(sec.len(), 5);
    assert_eq!(sec[0]["event"], "login_failed");
    assert_eq!(sec[0]["severity"], "medium");
    assert_eq!(sec[0]["target"], "tracelight::security");
    let snap = g.handle().security();
    assert_eq!(snap.total, 5);
    assert_eq!(snap.counts[0], ("login_failed".to_owned(), 3));
    assert!(snap.counts.contains(&("rate_limited".to_owned(), 1)));
    assert_eq!(snap.recent.len(), 5);
}

/// Real secret shapes, and near-misses that must stay readable.
const SECRETS: &[&str] = &[
    "Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ.eyJpc3MiOiJodHRwczovL2V4YW1wbGUuY29tIn0.c2lnbmF0dXJl",
    "AKIAIOSFODNN7EXAMPLE",
    "ASIAY34FZKBOKMUTVV7A",
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA7bq\n-----END RSA PRIVATE KEY-----",
    "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----",
    "4111 1111 1111 1111",
    "5500-0000-0000-0004",
    "378282246310005",
    "6011111111111117",
];
const NEAR_MISSES: &[&str] = &[
    "bearer of bad news",
    "AKIA-not-a-key",
    "order 4111111111111112 shipped",
    "call 555 123 4567",
    "-----BEGIN CERTIFICATE-----",
    "eyJust kidding",
    "2026-11-21T13:45:10Z",
    "0193f2a4-7c1e-7cc2-9a3b-5e0d6f7a8b9c",
];

#[test]
fn secrets_never_reach_a_file_in_any_field_or_format() {
    let dir = tempfile::tempdir().unwrap();
    let g = builder(dir.path())
        .stream_settings("security", {
            let mut s = tracelight::config::StreamSettings::default();
            s.format = Some(tracelight::Format::Text);
            s
        })
        .init_local()
        .unwrap();
    for (i, secret) in SECRETS.iter().enumerate() {
        let span = info_span!("login", credential_hint = *secret, password = "hunter2");
        let _e = span.enter();
        info!(i, value = *secret, note = %secret, "user sent {}", secret);
        warn!(
            stream = "security",
            i,
            db_password = "correct horse",
            value = *secret,
            "text too: {}",
            secret
        );
    }
    for miss in NEAR_MISSES {
        info!(value = *miss, "near miss");
    }
    g.shutdown();
    let mut all = String::new();
    for f in ["app.log", "security.log"] {
        all.push_str(&fs::read_to_string(dir.path().join(f)).unwrap());
    }
    for secret in SECRETS {
        let escaped = serde_json::to_string(secret).unwrap();
        let core = &escaped[1..escaped.len() - 1];
        assert!(!all.contains(core), "leaked {secret}");
        // No fragment of a multi-line key either.
        for part in secret
            .split('\n')
            .filter(|p| p.len() > 12 && !p.starts_with("-----"))
        {
            assert!(!all.contains(part), "leaked part {part}");
        }
    }
    assert!(!all.contains("hunter2") && !all.contains("correct horse"));
    let app = lines(dir.path(), "app.log");
    for miss in NEAR_MISSES {
        assert!(
            app.iter().any(|l| l["value"] == *miss),
            "near miss {miss} was masked"
        );
    }
    assert!(app
        .iter()
        .all(|l| l["span"]["password"].is_null() || l["span"]["password"] == "[REDACTED]"));
    let texts = fs::read_to_string(dir.path().join("security.log")).unwrap();
    assert!(texts.contains("db_password=[REDACTED]"), "{texts}");
}

#[test]
fn a_security_event_by_target_alone_is_counted_by_its_type() {
    let w = tracelight::sink::MemoryWriter::new();
    let g = tracelight::builder()
        .writer(w.clone())
        .init_local()
        .unwrap();
    warn!(target: "tracelight::security", event = "login_failed", "wrong password");
    assert_eq!(
        g.handle().security().counts,
        vec![("login_failed".to_owned(), 1)]
    );
}

#[test]
fn rate_limits_hold_back_a_flood_and_say_how_much() {
    let w = tracelight::sink::MemoryWriter::new();
    let g = tracelight::builder()
        .sampling(SamplingConfig::default().rate_limit(10))
        .format(tracelight::Format::Json)
        .writer(w.clone())
        .init_local()
        .unwrap();
    let flood = |n: u32| {
        for i in 0..n {
            info!(i, "flood");
        }
    };
    // Start at the beginning of a second so the burst stays within it.
    let now_secs = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    let next_second = |from: u64| {
        while now_secs() == from {
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    next_second(now_secs());
    let burst = now_secs();
    flood(100);
    error!("errors are not rate limited");
    error!("errors are not rate limited");
    assert_eq!(w.lines().len(), 12);
    // The first line let through in a later second says how many were held back.
    next_second(burst);
    flood(1);
    assert_eq!(w.lines().len(), 13);
    let last: Value = serde_json::from_str(w.lines().last().unwrap()).unwrap();
    assert_eq!(last["rate_limited"], 90);
    assert_eq!(g.handle().sampling().1, 90);
}

#[test]
fn a_field_named_rate_limited_is_renamed_when_the_count_is_added() {
    let w = tracelight::sink::MemoryWriter::new();
    let _g = tracelight::builder()
        .sampling(SamplingConfig::default().rate_limit(1))
        .format(tracelight::Format::Json)
        .writer(w.clone())
        .init_local()
        .unwrap();
    let now_secs = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    let flood = || {
        for i in 0..3u64 {
            info!(rate_limited = i, "flood");
        }
    };
    let start = now_secs();
    flood();
    while now_secs() == start {
        std::thread::sleep(Duration::from_millis(5));
    }
    flood();
    let line = w.lines().last().unwrap().clone();
    assert_eq!(line.matches("\"rate_limited\":").count(), 1, "{line}");
    let last: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(last["rate_limited"], 2);
    assert_eq!(last["fields.rate_limited"], 0);
}

#[test]
fn debug_sampling_keeps_or_drops_whole_requests() {
    let w = tracelight::sink::MemoryWriter::new();
    let g = tracelight::builder()
        .sampling(SamplingConfig::default().debug_sample_rate(0.5))
        .format(tracelight::Format::Json)
        .filter("trace")
        .writer(w.clone())
        .init_local()
        .unwrap();
    for r in 0..200 {
        let span = info_span!("request", request_id = format!("req-{r}").as_str());
        let _e = span.enter();
        for _ in 0..5 {
            debug!("detail");
        }
        info!("summary");
        warn!("warning");
    }
    let mut per_request: HashMap<String, (u32, u32, u32)> = HashMap::new();
    for l in w.lines() {
        let v: Value = serde_json::from_str(&l).unwrap();
        let e = per_request
            .entry(v["request_id"].as_str().unwrap().to_owned())
            .or_default();
        match v["level"].as_str().unwrap() {
            "DEBUG" => e.0 += 1,
            "INFO" => e.1 += 1,
            "WARN" => e.2 += 1,
            _ => {}
        }
    }
    assert_eq!(per_request.len(), 200);
    let sampled = per_request.values().filter(|(d, _, _)| *d == 5).count();
    assert!(per_request
        .values()
        .all(|(d, i, w)| (*d == 0 || *d == 5) && *i == 1 && *w == 1));
    assert!(
        (60..140).contains(&sampled),
        "{sampled} of 200 requests sampled at 0.5"
    );
    assert_eq!(g.handle().sampling().0, (200 - sampled as u64) * 5);
}

#[test]
fn a_security_event_type_given_by_display_is_counted_by_it() {
    struct Kind;
    impl std::fmt::Display for Kind {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("token_reuse")
        }
    }
    let w = tracelight::sink::MemoryWriter::new();
    let g = tracelight::builder().writer(w).init_local().unwrap();
    warn!(stream = "security", event = %Kind, "a refresh token was used twice");
    assert_eq!(
        g.handle().security().counts,
        vec![("token_reuse".to_owned(), 1)]
    );
}
