//! Faults: a full disk, a directory that cannot be created, a file removed or moved under the
//! writer, a process that exits or panics. The service keeps running, failures are counted and
//! reported once, and writing resumes when the cause goes away.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use tracelight::sink::{FileOptions, Rotation};
use tracelight::{Format, Output, Stream};
use tracing::info;

const CHILD: &str = "TL_TEST_FAULT_CHILD";

fn file_stream(path: &Path) -> Stream {
    Stream::new(
        "app",
        Output::File(FileOptions::new(path).rotation(Rotation::never())),
    )
    .format(Format::Json)
}

fn count_lines(path: &Path, message: &str) -> usize {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| serde_json::from_str::<Value>(l).is_ok_and(|v| v["message"] == message))
        .count()
}

/// Waits for `cond`, logging one more event each time round, for at most 15 seconds.
fn wait_for(mut cond: impl FnMut() -> bool, mut tick: impl FnMut()) -> bool {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        tick();
        tracelight::flush();
        std::thread::sleep(Duration::from_millis(20));
    }
    cond()
}

#[test]
fn child_entry() {
    let Ok(scenario) = std::env::var(CHILD) else {
        return;
    };
    let dir = std::env::var("FAULT_DIR").unwrap();
    match scenario.as_str() {
        "dev_full" => {
            let g = tracelight::builder()
                .stream(Stream::new(
                    "app",
                    Output::File(FileOptions::new("/dev/full").rotation(Rotation::never())),
                ))
                .queue_bytes(64 * 1024)
                .init_local()
                .unwrap();
            let start = Instant::now();
            for i in 0..20_000u32 {
                info!(i, "into a full disk");
                if i % 5000 == 0 {
                    g.flush();
                }
            }
            g.flush();
            let s = &g.stats()[0];
            println!(
                "STATS write_errors={} lost={} elapsed_ms={}",
                s.write_errors,
                s.lost,
                start.elapsed().as_millis()
            );
        }
        "exit" | "panic" => {
            let _g = tracelight::builder()
                .stream(file_stream(&Path::new(&dir).join("app.log")))
                .init()
                .unwrap();
            for i in 0..10_000u32 {
                info!(i, "n");
            }
            if scenario == "panic" {
                panic!("after 10000 events");
            }
        }
        other => panic!("unknown scenario {other}"),
    }
}

fn child(scenario: &str, dir: &Path) -> std::process::Output {
    Command::new(std::env::current_exe().unwrap())
        .args(["child_entry", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, scenario)
        .env("FAULT_DIR", dir)
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap()
}

#[test]
fn a_full_disk_is_counted_and_reported_once_and_never_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let out = child("dev_full", dir.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.matches("cannot write to /dev/full").count(),
        1,
        "{stderr}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stats = stdout
        .lines()
        .find_map(|l| l.find("STATS ").map(|i| &l[i..]))
        .expect("stats line");
    let field = |k: &str| -> u64 {
        stats
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{k}=")))
            .unwrap()
            .parse()
            .unwrap()
    };
    assert!(field("write_errors") >= 1, "{stats}");
    // The retry buffer is bounded: most of the 20,000 lines are given up and counted.
    assert!(field("lost") > 0, "{stats}");
}

#[test]
fn writing_resumes_when_the_directory_can_be_created_again() {
    let tmp = tempfile::tempdir().unwrap();
    let blocker = tmp.path().join("blocker");
    let path = blocker.join("logs").join("app.log");
    let g = tracelight::builder()
        .stream(file_stream(&path))
        .init_local()
        .unwrap();
    // The fault begins after start: the directory goes, and a file takes its place.
    fs::remove_dir_all(&blocker).unwrap();
    fs::write(&blocker, b"a file where a directory should be").unwrap();
    // The writer notices within a second (the file it had open is gone).
    assert!(
        wait_for(|| g.stats()[0].write_errors >= 1, || info!("probe")),
        "no write error while the directory cannot be created"
    );
    let written = g.stats()[0].events;
    for i in 0..10u32 {
        info!(i, "while broken");
    }
    g.flush();
    assert_eq!(g.stats()[0].events, written);
    fs::remove_file(&blocker).unwrap();
    let ok = wait_for(
        || count_lines(&path, "while broken") == 10 && count_lines(&path, "after") > 0,
        || info!("after"),
    );
    assert!(
        ok,
        "lines kept while the directory was missing were not written"
    );
    assert!(g.stats()[0].events >= written + 11);
    assert_eq!(g.stats()[0].lost, 0);
}

#[test]
fn lines_lost_while_a_file_could_not_be_written_are_said_in_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let blocker = tmp.path().join("blocker");
    let path = blocker.join("logs").join("app.log");
    // A small queue: what is kept for the retry is bounded by it, the rest is lost.
    let g = tracelight::builder()
        .stream(file_stream(&path))
        .queue_bytes(4096)
        .init_local()
        .unwrap();
    fs::remove_dir_all(&blocker).unwrap();
    fs::write(&blocker, b"a file where a directory should be").unwrap();
    assert!(
        wait_for(|| g.stats()[0].write_errors >= 1, || info!("probe")),
        "no write error while the directory cannot be created"
    );
    for i in 0..2000u32 {
        info!(i, padding = "y".repeat(100), "while broken");
    }
    g.flush();
    fs::remove_file(&blocker).unwrap();
    assert!(
        wait_for(|| count_lines(&path, "after") > 0, || info!("after")),
        "writing did not resume"
    );
    g.flush();
    let lost = g.stats()[0].lost;
    assert!(lost > 0, "nothing was lost: the test needs a smaller bound");
    let text = fs::read_to_string(&path).unwrap();
    let report: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| l["reason"] == "write_failed")
        .collect();
    assert_eq!(report.len(), 1, "{report:?}");
    assert_eq!(report[0]["lost"], lost);
    assert_eq!(report[0]["level"], "WARN");
    assert!(report[0]["message"]
        .as_str()
        .unwrap()
        .starts_with(&format!("lost {lost} lines")));
}

#[test]
fn a_file_that_cannot_be_written_at_start_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let blocker = tmp.path().join("blocker");
    fs::write(&blocker, b"a file where a directory should be").unwrap();
    let path = blocker.join("logs").join("app.log");
    let err = tracelight::builder()
        .stream(file_stream(&path))
        .build()
        .expect_err("a stream whose directory cannot be created");
    let msg = err.to_string();
    assert!(
        msg.contains("stream `app`") && msg.contains("blocker"),
        "{msg}"
    );
}

#[test]
fn a_removed_file_is_recreated() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("app.log");
    let _g = tracelight::builder()
        .stream(file_stream(&path))
        .init_local()
        .unwrap();
    info!("before");
    tracelight::flush();
    fs::remove_file(&path).unwrap();
    assert!(wait_for(
        || count_lines(&path, "after") > 0,
        || info!("after")
    ));
}

#[test]
fn a_file_moved_away_keeps_its_lines_and_a_new_one_takes_the_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("app.log");
    let moved = tmp.path().join("app.log.moved");
    let _g = tracelight::builder()
        .stream(file_stream(&path))
        .init_local()
        .unwrap();
    for _ in 0..100 {
        info!("before");
    }
    tracelight::flush();
    fs::rename(&path, &moved).unwrap();
    let mut sent = 0;
    assert!(wait_for(
        || count_lines(&path, "after") > 0,
        || {
            sent += 1;
            info!("after")
        }
    ));
    tracelight::flush();
    assert_eq!(count_lines(&moved, "before"), 100);
    // Every "after" line is in one of the two files, once.
    assert_eq!(
        count_lines(&moved, "after") + count_lines(&path, "after"),
        sent
    );
}

#[test]
fn every_line_is_on_disk_when_the_process_exits_or_panics() {
    for scenario in ["exit", "panic"] {
        let tmp = tempfile::tempdir().unwrap();
        let out = child(scenario, tmp.path());
        assert_eq!(
            out.status.success(),
            scenario == "exit",
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let content = fs::read_to_string(tmp.path().join("app.log")).unwrap();
        let mut n = 0;
        let mut panic_logged = false;
        for line in content.lines() {
            let v: Value = serde_json::from_str(line).unwrap();
            if v["message"] == "n" {
                assert_eq!(v["i"], n);
                n += 1;
            } else if v["level"] == "ERROR" {
                panic_logged = v["message"]
                    .as_str()
                    .unwrap()
                    .contains("after 10000 events");
            }
        }
        assert_eq!(n, 10_000, "{scenario}");
        assert_eq!(panic_logged, scenario == "panic");
    }
}
