//! Every table that input can key stays bounded: 100,000 distinct operations, error types and
//! security event types, measured by a counting allocator in a child process (so that no other
//! test's allocations are counted), with the `other` entry, its line on stderr, and bounded admin
//! and metrics answers.
#![cfg(feature = "admin")]
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicI64, Ordering};

struct Counting;

static LIVE: AtomicI64 = AtomicI64::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts live bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as i64, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as i64, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as i64 - layout.size() as i64, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const N: usize = 100_000;

/// Lines are counted, not kept: the writer's memory is not the tables'.
struct Discard;
impl tracelight::sink::LineWriter for Discard {
    fn write_line(&self, line: &[u8]) {
        std::hint::black_box(line);
    }
}

/// An error whose `Debug` output begins with its input, as a type name would.
struct Weird(usize);
impl std::fmt::Debug for Weird {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A type-like name made of letters: `OrderBaa`, `OrderBab`…
        let mut name = String::from("Order");
        let mut n = self.0;
        for _ in 0..4 {
            name.push(char::from(b'a' + (n % 26) as u8));
            n /= 26;
        }
        name[5..6].make_ascii_uppercase();
        write!(f, "{name} {{ code: 7 }}")
    }
}
impl std::fmt::Display for Weird {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("order failed")
    }
}
impl std::error::Error for Weird {}

fn live() -> i64 {
    LIVE.load(Ordering::Relaxed)
}

/// The child: drives each table with N distinct keys and prints what it measured.
#[test]
fn bounds_child() {
    if std::env::var_os("TL_BOUNDS_CHILD").is_none() {
        return;
    }
    let (layer, guard) = tracelight::builder()
        .service("bounds")
        .writer(Discard)
        .build()
        .unwrap();
    use tracing_subscriber::layer::SubscriberExt as _;
    let subscriber = tracing_subscriber::registry().with(layer);
    let _default = tracing::subscriber::set_default(subscriber);
    let handle = guard.handle();

    // Warm up each path once, so that what is measured is the tables.
    for i in 0..3 {
        let _s = tracing::info_span!("timed", operation = %format!("warm{i}")).entered();
    }
    let before = live();
    for i in 0..N {
        let _s = tracing::info_span!("timed", operation = %format!("GET /items/{i}")).entered();
    }
    let timing_bytes = live() - before;
    let perf = handle.performance();

    let before = live();
    for i in 0..N {
        let e = Weird(i);
        tracing::error!(error = &e as &dyn std::error::Error, "order failed");
    }
    let errors_bytes = live() - before;
    let errors = handle.errors();

    let before = live();
    for i in 0..N {
        let kind = format!("probe_{i}");
        tracelight::security_event!(kind.as_str(), "low", "probe");
    }
    let security_bytes = live() - before;
    let security = handle.security();

    let metrics = tracelight::admin::render_metrics(&handle);
    let series = metrics
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .count();

    println!(
        "MEASURED {}",
        serde_json::json!({
            "operations": perf.operations.len(),
            "operations_folded": perf.folded,
            "other_operation": perf.operations.iter().find(|o| o.operation == "other").map(|o| o.count),
            "timing_bytes": timing_bytes,
            "groups": errors.groups.len(),
            "groups_folded": errors.folded,
            "other_group": errors.groups.iter().find(|g| g.fingerprint == "ffffffffffffffff").map(|g| g.count),
            "errors_total": errors.total,
            "errors_bytes": errors_bytes,
            "types": security.counts.len(),
            "types_folded": security.folded,
            "other_type": security.counts.iter().find(|(t, _)| t == "other").map(|(_, n)| *n),
            "security_bytes": security_bytes,
            "metrics_bytes": metrics.len(),
            "series": series,
            "overflow_metric": metrics.contains("tracelight_table_overflow_total{table=\"error_groups\"} 99000"),
        })
    );
}

#[test]
fn every_table_keyed_by_input_is_bounded() {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["bounds_child", "--exact", "--nocapture", "--test-threads=1"])
        .env("TL_BOUNDS_CHILD", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed: {stdout}\n{stderr}");
    let measured = stdout
        .lines()
        .find_map(|l| l.split_once("MEASURED ").map(|(_, m)| m))
        .unwrap_or_else(|| panic!("no measurement: {stdout}\n{stderr}"));
    let m: serde_json::Value = serde_json::from_str(measured).unwrap();
    eprintln!("{m:#}");

    // Timing: 500 operations of their own (the 3 warm-up ones among them), the rest under
    // `other`, at about 27 KB each.
    assert_eq!(m["operations"], 501, "{m}");
    assert_eq!(m["operations_folded"], (N + 3 - 500) as u64);
    assert_eq!(m["other_operation"], (N + 3 - 500) as u64);
    assert!(m["timing_bytes"].as_i64().unwrap() < 500 * 32 * 1024, "{m}");

    // Error groups: 1000, then `other` (never suppressed: every error still counted).
    assert_eq!(m["groups"], 1001, "{m}");
    assert_eq!(m["groups_folded"], (N - 1000) as u64);
    assert_eq!(m["other_group"], (N - 1000) as u64);
    assert_eq!(m["errors_total"], N as u64);
    assert!(m["errors_bytes"].as_i64().unwrap() < 1000 * 8 * 1024, "{m}");

    // Security event types: 256, then `other`.
    assert_eq!(m["types"], 257, "{m}");
    assert_eq!(m["types_folded"], (N - 256) as u64);
    assert_eq!(m["other_type"], (N - 256) as u64);
    assert!(m["security_bytes"].as_i64().unwrap() < 1024 * 1024, "{m}");

    // The metrics answer is bounded by the tables, and says how much was folded.
    assert!(m["overflow_metric"].as_bool().unwrap(), "{m}");
    assert!(m["series"].as_u64().unwrap() < 20_000, "{m}");
    assert!(
        m["metrics_bytes"].as_u64().unwrap() < 4 * 1024 * 1024,
        "{m}"
    );

    // Each bound is reported once, on stderr.
    for table in ["timing aggregates", "error groups", "security event types"] {
        let n = stderr
            .matches(&format!("tracelight: {table}: more than"))
            .count();
        assert_eq!(n, 1, "{table}: {stderr}");
    }
}

/// With the bounds raised past what one answer should hold, `/metrics` stops at its cap of series
/// and says how many it left out.
#[test]
fn metrics_answers_have_a_cap_of_series() {
    if std::env::var_os("TL_BOUNDS_CHILD").is_some() {
        return;
    }
    let (layer, guard) = tracelight::builder()
        .service("bounds")
        .writer(Discard)
        .errors(tracelight::errors::ErrorConfig::default().max_groups(10_000))
        .build()
        .unwrap();
    use tracing_subscriber::layer::SubscriberExt as _;
    let _default = tracing::subscriber::set_default(tracing_subscriber::registry().with(layer));
    for i in 0..10_000 {
        let e = Weird(i);
        tracing::error!(error = &e as &dyn std::error::Error, "order failed");
    }
    let metrics = tracelight::admin::render_metrics(&guard.handle());
    let series = metrics
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .count();
    assert_eq!(
        series,
        tracelight::admin::MAX_SERIES + 1,
        "the cap and the omitted count"
    );
    let omitted: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("tracelight_metrics_series_omitted "))
        .unwrap()
        .parse()
        .unwrap();
    // Three series per error group: 30,000, and the others, past 20,000.
    assert!(omitted > 10_000, "{omitted}");
}
