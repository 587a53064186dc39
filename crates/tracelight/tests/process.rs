//! Whole-process behaviour: `init()` from the environment, the `log` bridge, the panic hook, the
//! guard's flush on exit, and a second `init()`. Each scenario runs in a child process (this same
//! test binary, re-run with `TL_TEST_CHILD` set), since a global subscriber is once per process.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

use serde_json::Value;

const CHILD: &str = "TL_TEST_CHILD";

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
        "panic_in_request" => {
            let _g = tracelight::init().expect("init");
            tracing::info!("before");
            let span = tracing::info_span!("request", request_id = "req-panic");
            let _e = span.enter();
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
        "two_panics" => {
            let _g = tracelight::init().expect("init");
            let first = std::thread::spawn(|| panic!("first"));
            assert!(first.join().is_err());
            let second = std::thread::spawn(|| panic!("second"));
            assert!(second.join().is_err());
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
        "exit_after_lines" => {
            let _g = tracelight::init().expect("init");
            for i in 0..1000u32 {
                tracing::info!(i, "before exit");
            }
            // The guard is alive: no destructor runs.
            std::process::exit(0);
        }
        "stacked_parts_exit" => {
            // Parts stacked by hand as the global subscriber (no guard to drop), then
            // `std::process::exit`: the router above the correlation layer reads its span state,
            // and its queued lines still reach the file.
            use tracing_subscriber::layer::SubscriberExt as _;
            let subscriber = tracing_subscriber::registry()
                .with(tracelight::CorrelationLayer::new().expect("correlation"))
                .with(tracelight::RouterLayer::from_env().expect("router"));
            tracing::subscriber::set_global_default(subscriber).expect("global");
            let span = tracing::info_span!("request", request_id = "req-exit");
            let _e = span.enter();
            for i in 0..1000u32 {
                tracing::info!(i, "before exit");
            }
            std::process::exit(0);
        }
        "fatal_exit" => {
            let _g = tracelight::init().expect("init");
            tracing::error!(code = 78, "fatal: the configuration cannot be read");
            std::process::exit(1);
        }
        "tracelight_exit" => {
            let _g = tracelight::init().expect("init");
            for i in 0..1000u32 {
                tracing::info!(i, "before exit");
            }
            tracelight::exit(3);
        }
        "exit_stalled_stdout" => {
            let _g = tracelight::init().expect("init");
            // More than a pipe holds: the writer blocks on stdout, nobody reads it.
            for i in 0..4000u32 {
                tracing::info!(i, padding = "x".repeat(100), "into a stalled pipe");
            }
            std::process::exit(0);
        }
        "service_with_stalled_stdout" => {
            // A service handling requests for a while; its stdout is a pipe whose reader stops.
            let _g = tracelight::init().expect("init");
            let dir = std::path::PathBuf::from(std::env::var("LOG_DIR").expect("LOG_DIR"));
            let run_for = std::time::Duration::from_millis(
                std::env::var("TL_RUN_MS")
                    .expect("TL_RUN_MS")
                    .parse()
                    .expect("ms"),
            );
            let start = std::time::Instant::now();
            let (mut requests, mut slowest) = (0u64, std::time::Duration::ZERO);
            while start.elapsed() < run_for {
                let t = std::time::Instant::now();
                let span = tracing::info_span!("request", request_id = %format!("req-{requests}"));
                let _e = span.enter();
                for step in 0..3u32 {
                    tracing::info!(step, padding = "x".repeat(200), "handling");
                }
                drop(_e);
                slowest = slowest.max(t.elapsed());
                requests += 1;
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            std::fs::write(
                dir.join("measured.json"),
                format!(
                    "{{\"requests\":{requests},\"slowest_ms\":{}}}",
                    slowest.as_millis()
                ),
            )
            .expect("write measurement");
        }
        "stdout_and_stderr_streams" => {
            // Two streams, one to stdout and one to stderr, with long lines from two threads.
            let _g = tracelight::builder()
                .format(tracelight::Format::Json)
                .stream(tracelight::Stream::new("out", tracelight::Output::Stdout))
                .stream(
                    tracelight::Stream::new("err", tracelight::Output::Stderr)
                        .rule(tracelight::default_rule("errors").expect("a default stream")),
                )
                .init()
                .expect("init");
            let work = |n: u32| {
                move || {
                    for i in 0..400u32 {
                        tracing::error!(thread = n, i, padding = "z".repeat(10_000), "long");
                    }
                }
            };
            let a = std::thread::spawn(work(1));
            let b = std::thread::spawn(work(2));
            a.join().expect("a");
            b.join().expect("b");
        }
        other => panic!("unknown scenario {other}"),
    }
}

#[test]
fn a_log_dir_that_cannot_be_written_is_an_error_naming_the_variable() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let in_dir = tmp.path().join("logs");
    std::fs::create_dir_all(in_dir.join("errors-dir")).unwrap();
    // (environment, the variable the error must name, the path it must name)
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a str);
    let cases: [Case<'_>; 3] = [
        (
            &[("LOG_DIR", file.to_str().unwrap())],
            "LOG_DIR",
            "not-a-dir",
        ),
        (
            &[("LOG_DIR", "/proc/tracelight-cannot-be-here")],
            "LOG_DIR",
            "/proc/tracelight-cannot-be-here",
        ),
        (
            &[
                ("LOG_DIR", in_dir.to_str().unwrap()),
                ("LOG_STREAM_ERRORS_FILE", "errors-dir"),
            ],
            "LOG_STREAM_ERRORS_FILE",
            "errors-dir",
        ),
    ];
    for (env, var, path) in cases {
        let out = run_child("bad_env", env);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("ERR: "),
            "init() accepted {env:?}: {stderr}"
        );
        assert!(
            stderr.contains(var) && stderr.contains(path),
            "{env:?}: {stderr}"
        );
    }
}

#[test]
fn a_misspelled_setting_is_never_ignored_without_a_word() {
    // Errors: tracelight's own prefix, and a level name mistyped in RUST_LOG.
    for (env, names) in [
        (
            ("LOG_STREAM_ERORRS_BACKUP_COUNT", "3"),
            [
                "LOG_STREAM_ERORRS_BACKUP_COUNT",
                "LOG_STREAM_ERRORS_BACKUP_COUNT",
            ],
        ),
        (("RUST_LOG", "inf"), ["RUST_LOG", "info"]),
        (("RUST_LOG", "infoo"), ["RUST_LOG", "info"]),
        (("RUST_LOG", "wran"), ["RUST_LOG", "warn"]),
    ] {
        let out = run_child("bad_env", &[env]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("ERR: "),
            "init() accepted {env:?}: {stderr}"
        );
        for n in names {
            assert!(stderr.contains(n), "{env:?}: {stderr}");
        }
    }
    // Warnings: a prefix other software shares, and a target with a hyphen.
    let out = run_child(
        "log_bridge",
        &[("LOG_FORMATT", "json"), ("RUST_LOG", "info,my-svc=debug")],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = json_lines(&out.stdout);
    let warned = |needle: &str| {
        lines.iter().any(|l| {
            l["level"] == "WARN" && l["message"].as_str().is_some_and(|m| m.contains(needle))
        })
    };
    assert!(warned("LOG_FORMATT") && warned("LOG_FORMAT?"), "{lines:?}");
    assert!(warned("my_svc"), "{lines:?}");
}

fn file_lines(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("invalid JSON {e}: {l}")))
        .collect()
}

#[test]
fn lines_logged_before_process_exit_are_on_disk() {
    // 50 runs of: 1,000 lines, then `std::process::exit` with the guard alive.
    let tmp = tempfile::tempdir().unwrap();
    let mut total = 0;
    for run in 0..50 {
        let dir = tmp.path().join(format!("run-{run}"));
        let dir_s = dir.to_str().unwrap();
        let out = run_child(
            "exit_after_lines",
            &[("LOG_DIR", dir_s), ("LOG_STDOUT", "false")],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let lines = file_lines(&dir.join("app.log"));
        let seq: Vec<u64> = lines
            .iter()
            .filter(|l| l["message"] == "before exit")
            .map(|l| l["i"].as_u64().unwrap())
            .collect();
        assert_eq!(seq, (0..1000).collect::<Vec<u64>>(), "run {run}");
        total += seq.len();
    }
    assert_eq!(total, 50_000);
}

#[test]
fn stacked_parts_write_their_lines_before_process_exit() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_str().unwrap();
    let out = run_child(
        "stacked_parts_exit",
        &[("LOG_DIR", dir), ("LOG_STDOUT", "false")],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = file_lines(&tmp.path().join("app.log"));
    let seq: Vec<u64> = lines
        .iter()
        .filter(|l| l["message"] == "before exit" && l["request_id"] == "req-exit")
        .map(|l| l["i"].as_u64().unwrap())
        .collect();
    assert_eq!(seq, (0..1000).collect::<Vec<u64>>());
    // One span state for the stack: nothing on stderr about a second one.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("span state of its own"), "{stderr}");
}

#[test]
fn the_fatal_line_before_process_exit_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_str().unwrap();
    let out = run_child("fatal_exit", &[("LOG_DIR", dir), ("LOG_STDOUT", "false")]);
    assert_eq!(out.status.code(), Some(1));
    for file in ["app.log", "errors.log"] {
        let lines = file_lines(&tmp.path().join(file));
        assert!(
            lines
                .iter()
                .any(|l| l["message"] == "fatal: the configuration cannot be read"),
            "{file}: {lines:?}"
        );
    }
}

#[test]
fn tracelight_exit_flushes_and_exits_with_the_code() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_str().unwrap();
    let out = run_child(
        "tracelight_exit",
        &[("LOG_DIR", dir), ("LOG_STDOUT", "false")],
    );
    assert_eq!(out.status.code(), Some(3));
    let n = file_lines(&tmp.path().join("app.log"))
        .iter()
        .filter(|l| l["message"] == "before exit")
        .count();
    assert_eq!(n, 1000);
}

#[test]
fn a_stalled_stdout_cannot_hold_the_exit_past_the_bound() {
    use std::process::Stdio;
    let exe = std::env::current_exe().expect("test binary");
    let start = std::time::Instant::now();
    let mut child = Command::new(exe)
        .args(["child_entry", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, "exit_stalled_stdout")
        .env_remove("RUST_LOG")
        .env_remove("LOG_LEVEL")
        .env_remove("LOG_DIR")
        .env("LOG_FORMAT", "json")
        .stdout(Stdio::piped()) // never read until the child has exited
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let bound = tracelight::EXIT_FLUSH_BOUND + std::time::Duration::from_secs(3);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break Some(status);
        }
        if start.elapsed() > bound {
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let Some(status) = status else {
        let _ = child.kill();
        panic!("the child was still running after {bound:?}: the exit flush waited on a stalled stdout");
    };
    assert!(status.success());
}

/// A stdout pipe whose reader stops for seconds: requests stay fast (a destination that makes
/// no progress for the block timeout has its lines dropped and counted), the files keep every
/// line, and once the reader resumes stdout says how many lines it dropped, which match.
#[test]
fn a_stalled_stdout_holds_neither_the_requests_nor_the_files() {
    use std::io::Read;
    use std::process::Stdio;
    let tmp = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().expect("test binary");
    let mut child = Command::new(exe)
        .args(["child_entry", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, "service_with_stalled_stdout")
        .env_remove("RUST_LOG")
        .env_remove("LOG_LEVEL")
        .env("LOG_DIR", tmp.path())
        .env("LOG_FORMAT", "json")
        .env("LOG_COMPRESS", "false")
        .env("LOG_MAX_BYTES", "1GiB")
        .env("LOG_QUEUE_BYTES", "64KiB")
        .env("LOG_BLOCK_TIMEOUT", "300ms")
        .env("TL_RUN_MS", "4000")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // The reader stops for 2.5 s: the pipe and the queue fill.
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let app_during = std::fs::read_to_string(tmp.path().join("app.log")).unwrap_or_default();
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{stderr}");

    let measured: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.path().join("measured.json")).unwrap())
            .unwrap();
    let requests = measured["requests"].as_u64().unwrap();
    assert!(requests > 100, "{measured}");
    assert!(
        measured["slowest_ms"].as_u64().unwrap() < 1000,
        "a request waited on the stalled stdout: {measured}"
    );

    // The file kept being written while stdout was stalled, and has every line.
    let handled = |text: &str| text.lines().filter(|l| l.contains("\"handling\"")).count() as u64;
    assert!(
        handled(&app_during) > 300,
        "app.log did not grow during the stall"
    );
    let app = std::fs::read_to_string(tmp.path().join("app.log")).unwrap();
    assert_eq!(handled(&app), 3 * requests);

    // stdout: what got through, plus the dropped lines it reports, is every line.
    let lines = json_lines(stdout.as_bytes());
    let written = lines.iter().filter(|l| l["message"] == "handling").count() as u64;
    let reports: Vec<_> = lines
        .iter()
        .filter(|l| l["target"] == "tracelight::sink" && l["reason"] == "stalled")
        .collect();
    assert!(
        !reports.is_empty(),
        "no drop line on stdout; stderr: {stderr}"
    );
    let dropped: u64 = reports.iter().map(|l| l["dropped"].as_u64().unwrap()).sum();
    assert!(dropped > 0);
    assert_eq!(written + dropped, 3 * requests, "{reports:?}");
    assert!(
        reports[0]["message"]
            .as_str()
            .unwrap()
            .contains("made no progress for 300ms"),
        "{reports:?}"
    );
    // The summary at the end of the run says why.
    let summary = lines
        .iter()
        .find(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("lines were lost during this run"))
        })
        .expect("the end-of-run summary");
    assert!(
        summary["message"]
            .as_str()
            .unwrap()
            .contains(&format!("{dropped} dropped (destination stalled)")),
        "{summary}"
    );
    // stderr says so, from the writer, once per stall.
    assert!(stderr.contains("made no progress for 300ms"), "{stderr}");
}

/// `2>&1`: stdout and stderr are one pipe; streams to both still write whole lines.
#[test]
fn streams_to_stdout_and_stderr_on_one_pipe_keep_their_lines_whole() {
    use std::io::Read;
    let (mut reader, writer) = std::io::pipe().expect("pipe");
    let exe = std::env::current_exe().expect("test binary");
    let mut child = Command::new(exe)
        .args(["child_entry", "--exact", "--test-threads=1"])
        .env(CHILD, "stdout_and_stderr_streams")
        .env_remove("RUST_LOG")
        .env_remove("LOG_LEVEL")
        .env_remove("LOG_DIR")
        .stdout(writer.try_clone().expect("clone"))
        .stderr(writer)
        .spawn()
        .expect("spawn");
    let mut all = String::new();
    reader.read_to_string(&mut all).expect("read");
    assert!(child.wait().expect("wait").success());
    // (The test harness writes `test child_entry ... ` before the first line.)
    let long: Vec<&str> = all
        .lines()
        .filter(|l| l.contains("\"long\""))
        .map(|l| match l.strip_prefix("test child_entry ... ") {
            Some(rest) => rest,
            None => l,
        })
        .collect();
    // Each event goes to both streams.
    assert_eq!(long.len(), 2 * 2 * 400, "{} lines", long.len());
    for l in long {
        let v: Value = serde_json::from_str(l)
            .unwrap_or_else(|e| panic!("a line cut or mixed ({e}): {}…", &l[..l.len().min(200)]));
        assert_eq!(v["padding"].as_str().map(str::len), Some(10_000));
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
    // The line's own location is the panic's, not the hook's.
    assert_eq!(p["file"], "crates/tracelight/tests/process.rs", "{p}");
    assert_eq!(p["line"], p["panic_line"], "{p}");
    // The default hook still runs after ours.
    assert!(String::from_utf8_lossy(&out.stderr).contains("index out of bounds"));
}

#[test]
fn a_panic_is_logged_whatever_the_filter() {
    // A filter for the service's own crate only: the `panic` target is not in it.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_str().unwrap();
    let out = run_child(
        "panic_in_request",
        &[("RUST_LOG", "process=info"), ("LOG_DIR", dir)],
    );
    assert!(!out.status.success());
    let stdout = json_lines(&out.stdout);
    assert!(
        stdout.iter().any(|l| l["message"] == "before"),
        "the filter let nothing through"
    );
    for (name, lines) in [
        ("stdout", stdout),
        ("errors.log", file_lines(&tmp.path().join("errors.log"))),
        ("app.log", file_lines(&tmp.path().join("app.log"))),
    ] {
        let p = lines
            .iter()
            .find(|l| l["level"] == "ERROR")
            .unwrap_or_else(|| panic!("no panic line in {name}: {lines:?}"));
        let msg = p["message"].as_str().expect("message");
        assert!(msg.contains("index out of bounds"), "{msg}");
        assert_eq!(p["target"], "panic");
        assert_eq!(p["panic_file"], "crates/tracelight/tests/process.rs");
        assert_eq!(p["file"], "crates/tracelight/tests/process.rs", "{p}");
        assert_eq!(p["request_id"], "req-panic", "{p}");
    }
}

#[test]
fn two_panics_are_two_error_groups_at_their_own_places() {
    let out = run_child("two_panics", &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = json_lines(&out.stdout);
    let panics: Vec<&Value> = lines.iter().filter(|l| l["target"] == "panic").collect();
    assert_eq!(panics.len(), 2, "{lines:?}");
    for p in &panics {
        assert_eq!(p["file"], "crates/tracelight/tests/process.rs", "{p}");
        assert_eq!(p["line"], p["panic_line"], "{p}");
    }
    assert_ne!(panics[0]["line"], panics[1]["line"]);
    assert_ne!(
        panics[0]["error_fingerprint"], panics[1]["error_fingerprint"],
        "a group per place, not one for the hook"
    );
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
