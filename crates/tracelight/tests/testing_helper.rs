//! `tracelight::testing`: each test captures its own lines while tests run in parallel, in
//! `#[test]`s and in both flavours of `#[tokio::test]`, with the lines of `tracelight::spawn`ed
//! tasks; the lines reach libtest's output capture (shown for a failed test).
#![cfg(feature = "testing")]
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// The tests of this file log at the same time as far as libtest runs them side by side: each
/// waits (for at most a second) until as many as there are test threads have started.
struct Together {
    started: Mutex<usize>,
    cv: Condvar,
}

impl Together {
    fn wait(&self) {
        let threads = std::env::var("RUST_TEST_THREADS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
            .min(4);
        let deadline = Instant::now() + Duration::from_secs(1);
        let mut n = self.started.lock().unwrap();
        *n += 1;
        self.cv.notify_all();
        while *n < threads {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            n = self.cv.wait_timeout(n, left).unwrap().0;
        }
    }
}

static TOGETHER: Together = Together {
    started: Mutex::new(0),
    cv: Condvar::new(),
};

fn only_own(logs: &tracelight::testing::Capture, mine: &str) {
    let lines = logs.lines();
    assert!(!lines.is_empty());
    for l in &lines {
        assert_eq!(l["who"], mine, "another test's line was captured: {l}");
    }
}

#[test]
fn a_plain_test() {
    let logs = tracelight::testing::capture();
    TOGETHER.wait();
    for i in 0..50 {
        tracing::info!(who = "plain", i, "step");
    }
    assert_eq!(logs.count(|l| l["message"] == "step"), 50);
    only_own(&logs, "plain");
    assert!(
        logs.text().contains("| step | who=plain i=49"),
        "{}",
        logs.text()
    );
}

#[tokio::test]
async fn a_current_thread_test() {
    let logs = tracelight::testing::capture();
    tokio::task::spawn_blocking(|| TOGETHER.wait())
        .await
        .unwrap();
    // On a current-thread runtime, even a bare spawn runs on the test's thread.
    tokio::spawn(async { tracing::info!(who = "current", "from a bare task") })
        .await
        .unwrap();
    for i in 0..50 {
        tracing::warn!(who = "current", i, "step");
        tokio::task::yield_now().await;
    }
    assert_eq!(logs.count(|l| l["level"] == "WARN"), 50);
    logs.assert_contains("from a bare task");
    only_own(&logs, "current");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_thread_test() {
    let logs = tracelight::testing::capture();
    tokio::task::spawn_blocking(|| TOGETHER.wait())
        .await
        .unwrap();
    let handles: Vec<_> = (0..4)
        .map(|t| {
            tracelight::spawn(async move {
                for i in 0..25 {
                    tracing::info!(who = "multi", t, i, "from a task");
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    for h in handles {
        h.await.unwrap();
    }
    // A bare `tokio::spawn` on a worker thread is outside the test's span: not captured.
    tokio::spawn(async { tracing::info!(who = "stray", "not attributed") })
        .await
        .unwrap();
    assert_eq!(logs.count(|l| l["message"] == "from a task"), 100);
    assert!(!logs.contains("not attributed"));
    only_own(&logs, "multi");
}

#[test]
fn the_lines_of_a_failed_test_are_shown_by_libtest() {
    let logs = tracelight::testing::capture();
    TOGETHER.wait();
    tracing::info!(who = "parent", "running the failing test");
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "failing", "--test-threads=1"])
        .env("TL_TEST_FAILING_CHILD", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    let section = stdout
        .split("---- failing stdout ----")
        .nth(1)
        .unwrap_or_else(|| panic!("no captured output section: {stdout}"));
    assert!(
        section.contains("| before the failure | who=failing"),
        "{stdout}"
    );
    // libtest captured it: nothing before its report.
    let before = stdout.split("---- failing stdout ----").next().unwrap();
    assert!(!before.contains("before the failure"), "{stdout}");
    only_own(&logs, "parent");
}

/// The child side of the test above: fails only when that test runs it.
#[test]
fn failing() {
    if std::env::var_os("TL_TEST_FAILING_CHILD").is_none() {
        return;
    }
    let _logs = tracelight::testing::capture();
    tracing::info!(who = "failing", "before the failure");
    panic!("this test fails on purpose");
}
