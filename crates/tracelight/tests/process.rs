//! Whole-process behaviour: `init()` from the environment, the `log` bridge, the panic hook, the
//! guard's flush on exit, and a second `init()`. Each scenario runs in a child process (this same
//! test binary, re-run with `TRACELIGHT_CHILD` set), since a global subscriber is once per process.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

use serde_json::Value;

const CHILD: &str = "TRACELIGHT_CHILD";

fn run_child(scenario: &str, env: &[(&str, &str)]) -> Output {
    let exe = std::env::current_exe().expect("test binary");
    let mut cmd = Command::new(exe);
    cmd.args(["child_entry", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, scenario)
        .env_remove("RUST_LOG")
        .env_remove("LOG_LEVEL")
        .env("LOG_FORMAT", "json")
        .env("RUST_BACKTRACE", "0");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run child")
}

fn json_lines(out: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(out)
        .lines()
        // The test harness prints `test child_entry ... ` before the child's first line.
        .filter_map(|l| l.find("{\"timestamp\"").map(|i| &l[i..]))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("invalid JSON {e}: {l}")))
        .collect()
}

/// The child side: does what the scenario says.
#[test]
fn child_entry() {
    let Ok(scenario) = std::env::var(CHILD) else {
        return;
    };
    match scenario.as_str() {
        "log_bridge" => {
            let _g = tracelight::init().expect("init");
            log::warn!(target: "legacy::db", "from the log crate {}", 7);
            tracing::info!(n = 1, "from tracing");
        }
        "flush_on_exit" => {
            let _g = tracelight::init().expect("init");
            for i in 0..20_000u32 {
                tracing::info!(i, "event");
            }
        }
        "panic" => {
            let _g = tracelight::init().expect("init");
            tracing::info!("before");
            let v: Vec<u32> = Vec::new();
            let _ = v[3];
        }
        "panic_in_thread" => {
            let _g = tracelight::init().expect("init");
            let h = std::thread::Builder::new()
                .name("worker".into())
                .spawn(|| panic!("worker failed: {}", 42))
                .expect("spawn");
            assert!(h.join().is_err());
            tracing::info!("after");
        }
        "twice" => {
            let _g = tracelight::init().expect("first init");
            let second = tracelight::init();
            match second {
                Err(tracelight::Error::AlreadyInitialized) => tracing::info!("second init refused"),
                other => panic!("unexpected: {other:?}"),
            }
        }
        "bad_env" => match tracelight::init() {
            Err(e) => eprintln!("ERR: {e}"),
            Ok(_) => eprintln!("OK"),
        },
        other => panic!("unknown scenario {other}"),
    }
}

#[test]
fn log_crate_records_come_out_in_the_same_format() {
    let out = run_child("log_bridge", &[("SERVICE_NAME", "legacy-svc")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = json_lines(&out.stdout);
    let log_line = lines
        .iter()
        .find(|l| l["message"] == "from the log crate 7")
        .expect("log line");
    assert_eq!(log_line["level"], "WARN");
    assert_eq!(log_line["target"], "legacy::db");
    assert_eq!(log_line["file"], "crates/tracelight/tests/process.rs");
    assert_eq!(log_line["service"], "legacy-svc");
    assert!(log_line.get("log.target").is_none(), "{log_line}");
    assert!(lines.iter().any(|l| l["message"] == "from tracing"));
}

#[test]
fn the_guard_flushes_every_line_on_exit() {
    let out = run_child("flush_on_exit", &[]);
    assert!(out.status.success());
    let lines = json_lines(&out.stdout);
    let events: Vec<u64> = lines
        .iter()
        .filter(|l| l["message"] == "event")
        .filter_map(|l| l["i"].as_u64())
        .collect();
    assert_eq!(events, (0..20_000).collect::<Vec<u64>>());
}

#[test]
fn a_panic_is_logged_as_an_error_with_its_location() {
    let out = run_child("panic", &[]);
    assert!(!out.status.success());
    let lines = json_lines(&out.stdout);
    let p = lines
        .iter()
        .find(|l| l["level"] == "ERROR")
        .expect("panic line");
    let msg = p["message"].as_str().expect("message");
    assert!(msg.contains("index out of bounds"), "{msg}");
    assert_eq!(p["target"], "panic");
    assert_eq!(p["panic_file"], "crates/tracelight/tests/process.rs");
    assert!(p["panic_line"].as_u64().is_some());
    // The default hook still runs after ours.
    assert!(String::from_utf8_lossy(&out.stderr).contains("index out of bounds"));
}

#[test]
fn a_panic_in_another_thread_is_logged_and_the_process_goes_on() {
    let out = run_child("panic_in_thread", &[("RUST_BACKTRACE", "1")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = json_lines(&out.stdout);
    let p = lines
        .iter()
        .find(|l| l["level"] == "ERROR")
        .expect("panic line");
    assert!(p["message"]
        .as_str()
        .is_some_and(|m| m.contains("worker failed: 42")));
    assert_eq!(p["panic_thread"], "worker");
    assert!(
        p["backtrace"].as_str().is_some_and(|b| !b.is_empty()),
        "{p}"
    );
    assert!(lines.iter().any(|l| l["message"] == "after"));
}

#[test]
fn a_second_init_is_an_error_not_a_panic() {
    let out = run_child("twice", &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(json_lines(&out.stdout)
        .iter()
        .any(|l| l["message"] == "second init refused"));
}

#[test]
fn a_bad_environment_value_names_the_variable() {
    let out = run_child("bad_env", &[("LOG_LEVEL", "loud")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ERR: invalid value \"loud\" in environment variable LOG_LEVEL: expected one of trace, debug, info, warn, error, off"), "{err}");
    let out = run_child("bad_env", &[("LOG_FORMAT", "xml")]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("LOG_FORMAT"));
    let out = run_child("bad_env", &[("RUST_LOG", "=[")]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("RUST_LOG"));
}
