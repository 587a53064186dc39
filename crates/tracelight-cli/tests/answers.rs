//! Answers that cannot mislead: nothing to read is not "no match", a missing path is a warning
//! and the rest is searched, long values are cut with a marker, output is paged on a terminal,
//! durations read as people write them, `slow` groups access lines by route.

#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;

use assert_cmd::Command;
use serde_json::{json, Value};

use common::{generate, line, T0};

fn tl() -> Command {
    let mut c = Command::cargo_bin("tracelight").unwrap();
    c.env_remove("LOG_DIR")
        .env_remove("NO_COLOR")
        .env_remove("PAGER")
        .env_remove("TRACELIGHT_PAGER");
    c
}

fn out(o: &Output) -> (i32, String, String) {
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn write(path: &Path, lines: &[String]) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut s = lines.join("\n");
    s.push('\n');
    fs::write(path, s).unwrap();
}

#[test]
fn nothing_to_read_is_said_and_has_its_own_exit_code() {
    let empty = tempfile::tempdir().unwrap();
    fs::write(empty.path().join("notes.txt"), "not a log\n").unwrap();
    for args in [
        vec!["query"],
        vec!["query", "--count"],
        vec!["timeline", "some-id"],
        vec!["errors"],
        vec!["slow"],
        vec!["tail"],
    ] {
        let (code, stdout, err) = out(&tl().args(&args).arg(empty.path()).output().unwrap());
        assert_eq!(code, 3, "{args:?}: {err}");
        // `--count` says 0, for scripts that read the number; the rest print nothing.
        let want = if args == ["query", "--count"] {
            "0\n"
        } else {
            ""
        };
        assert_eq!(stdout, want, "{args:?}");
        assert!(err.contains("nothing to read: no log files under"), "{err}");
    }
    // No path and no LOG_DIR: the current directory, and the message says so.
    let (code, _, err) = out(&tl()
        .arg("query")
        .current_dir(empty.path())
        .output()
        .unwrap());
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("no paths were given and LOG_DIR is not set"),
        "{err}"
    );
    // An empty log file is something to read: no match, exit 1.
    fs::write(empty.path().join("app.log"), "").unwrap();
    let (code, _, _) = out(&tl().arg("query").arg(empty.path()).output().unwrap());
    assert_eq!(code, 1);
}

#[test]
fn a_missing_path_is_a_warning_and_the_rest_is_searched() {
    let t = generate(20);
    let id = t.requests[3].clone();
    let missing = t.path().join("no-such-dir");
    let o = tl()
        .args(["query", "--json", "--request-id", &id])
        .arg(&missing)
        .arg(t.path())
        .output()
        .unwrap();
    let (code, stdout, err) = out(&o);
    assert_eq!(code, 2, "some input failed: {err}");
    assert!(
        err.contains("warning:") && err.contains("no-such-dir"),
        "{err}"
    );
    let want = t.count(|v| v["request_id"] == id.as_str());
    assert!(want > 0);
    // A line written to two streams (the ERROR line: app.log and errors.log) is printed once.
    let all_copies = t
        .parsed()
        .iter()
        .filter(|(_, v)| v["request_id"] == id.as_str())
        .count();
    assert!(
        all_copies > want,
        "the fixture writes an ERROR line to two files"
    );
    assert_eq!(stdout.lines().count(), want, "{stdout}");
    let (_, n, _) = out(&tl()
        .args(["query", "--count", "--request-id", &id])
        .arg(t.path())
        .output()
        .unwrap());
    assert_eq!(n.trim(), want.to_string());
    // Only missing paths: a warning each, nothing to read, still exit 2.
    let o = tl().args(["errors"]).arg(&missing).output().unwrap();
    let (code, _, err) = out(&o);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("nothing to read"), "{err}");
    // LOG_DIR that does not exist: the same.
    let o = tl().arg("query").env("LOG_DIR", &missing).output().unwrap();
    let (code, _, err) = out(&o);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no-such-dir"), "{err}");
}

#[test]
fn long_values_are_cut_in_human_output_only() {
    let dir = tempfile::tempdir().unwrap();
    let big = "x".repeat(10 << 20);
    let lines = vec![
        line(
            T0,
            "ERROR",
            &[
                ("message", json!(big)),
                ("error_fingerprint", json!("00000000000000aa")),
                ("detail", json!(big)),
            ],
        ),
        line(
            T0 + 1,
            "INFO",
            &[("message", json!("short")), ("note", json!(big))],
        ),
    ];
    let file = dir.path().join("app.log");
    write(&file, &lines);
    // `errors` printed the 10 MB message twice (message and sample): now a few hundred bytes.
    let (code, stdout, err) = out(&tl()
        .args(["errors", "--color", "never"])
        .arg(&file)
        .output()
        .unwrap());
    assert_eq!(code, 0, "{err}");
    assert!(stdout.len() < 4096, "{} bytes", stdout.len());
    assert!(
        stdout.contains("…[+10485460 bytes, --full shows all]"),
        "{stdout}"
    );
    let (_, stdout, _) = out(&tl()
        .args(["query", "--color", "never"])
        .arg(&file)
        .output()
        .unwrap());
    assert_eq!(stdout.lines().count(), 2);
    assert!(stdout.len() < 8192, "{} bytes", stdout.len());
    // --full: whole values; --json: the lines unchanged.
    let (_, stdout, _) = out(&tl()
        .args(["query", "--full", "--color", "never"])
        .arg(&file)
        .output()
        .unwrap());
    assert!(stdout.len() > 3 * (10 << 20), "{} bytes", stdout.len());
    let (_, stdout, _) = out(&tl().args(["query", "--json"]).arg(&file).output().unwrap());
    assert_eq!(stdout, format!("{}\n{}\n", lines[0], lines[1]));
}

#[test]
fn limit_and_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let lines: Vec<String> = (0..20)
        .map(|i| {
            line(
                T0 + i * 1000,
                "INFO",
                &[("message", json!(format!("m{i}")))],
            )
        })
        .collect();
    let file = dir.path().join("app.log");
    write(&file, &lines);
    let q = |args: &[&str]| -> Vec<String> {
        let o = tl()
            .arg("query")
            .arg("--json")
            .args(args)
            .arg(&file)
            .output()
            .unwrap();
        assert!(o.status.success());
        String::from_utf8(o.stdout)
            .unwrap()
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["message"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    };
    assert_eq!(q(&["--limit", "3"]), ["m0", "m1", "m2"]);
    assert_eq!(q(&["--newest-first", "--limit", "2"]), ["m19", "m18"]);
    assert_eq!(q(&["--newest-first"]).len(), 20);
    assert_eq!(q(&["--newest-first"])[0], "m19");
    // Nothing printed, but lines matched: still "found".
    let o = tl()
        .args(["query", "--limit", "0"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
}

/// Runs `cmd` with stdout on a terminal, through `script` (util-linux).
fn on_a_terminal(cmd: &str, env: &[(&str, &str)]) -> String {
    let mut c = std::process::Command::new("script");
    c.args(["-qec", cmd, "/dev/null"]);
    c.env_remove("PAGER")
        .env_remove("TRACELIGHT_PAGER")
        .env_remove("LESS");
    for (k, v) in env {
        c.env(k, v);
    }
    let o = c
        .output()
        .expect("`script` (util-linux) runs commands on a terminal");
    assert!(
        o.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn output_goes_through_a_pager_on_a_terminal() {
    let t = generate(20);
    let dir = tempfile::tempdir().unwrap();
    let seen = dir.path().join("paged.txt");
    let env_file = dir.path().join("less.txt");
    // A pager that keeps what it was given and the LESS it was run with.
    let pager = dir.path().join("pager.sh");
    fs::write(
        &pager,
        format!(
            "#!/bin/sh\necho \"$LESS\" > '{}'\ncat > '{}'\n",
            env_file.display(),
            seen.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&pager, fs::Permissions::from_mode(0o755)).unwrap();
    let bin = assert_cmd::cargo::cargo_bin("tracelight");
    let cmd = format!(
        "{} query --level error {}",
        bin.display(),
        t.path().display()
    );
    let shown = on_a_terminal(&cmd, &[("PAGER", pager.to_str().unwrap())]);
    let paged = fs::read_to_string(&seen).unwrap();
    let errors = t.count(|v| v["level"] == "ERROR");
    assert!(errors > 0);
    assert_eq!(paged.lines().count(), errors, "{paged}");
    assert!(
        !shown.contains("ERROR"),
        "printed besides the pager: {shown}"
    );
    assert_eq!(fs::read_to_string(&env_file).unwrap().trim(), "FRX");
    // --no-pager, and an empty TRACELIGHT_PAGER, write to the terminal.
    fs::remove_file(&seen).unwrap();
    let shown = on_a_terminal(
        &format!("{cmd} --no-pager"),
        &[("PAGER", pager.to_str().unwrap())],
    );
    assert!(!seen.exists());
    assert_eq!(shown.matches("ERROR").count(), errors, "{shown}");
    let shown = on_a_terminal(
        &cmd,
        &[("PAGER", pager.to_str().unwrap()), ("TRACELIGHT_PAGER", "")],
    );
    assert!(!seen.exists());
    assert_eq!(shown.matches("ERROR").count(), errors);
    // Not a terminal: never paged.
    let o = tl()
        .args(["query", "--level", "error"])
        .arg(t.path())
        .env("PAGER", &pager)
        .output()
        .unwrap();
    assert!(!seen.exists());
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), errors);
}

#[test]
fn timeline_offsets_are_human_and_aligned() {
    let dir = tempfile::tempdir().unwrap();
    let id = "req-hours";
    let offsets = [0i64, 4_512, 2_153_000, 138_000_000, 21_738_016_101];
    let lines: Vec<String> = offsets
        .iter()
        .map(|o| {
            line(
                T0 + o,
                "INFO",
                &[
                    ("message", json!("step")),
                    ("service", json!("shop")),
                    ("request_id", json!(id)),
                ],
            )
        })
        .collect();
    write(&dir.path().join("app.log"), &lines);
    let (code, stdout, err) = out(&tl()
        .args(["timeline", id, "--color", "never"])
        .arg(dir.path())
        .output()
        .unwrap());
    assert_eq!(code, 0, "{err}");
    let body: Vec<&str> = stdout.lines().skip(1).collect();
    assert!(
        stdout.lines().next().unwrap().contains("(6h 2m 18.0s)"),
        "{stdout}"
    );
    let want = [
        "+0.000ms",
        "+4.512ms",
        "+2.153s",
        "+2m 18.0s",
        "+6h 2m 18.0s",
    ];
    for (l, w) in body.iter().zip(want) {
        assert!(l.contains(w), "{l} lacks {w}");
    }
    // The service column starts at the same place on every line.
    let col: Vec<usize> = body.iter().map(|l| l.find("shop").unwrap()).collect();
    assert!(col.windows(2).all(|w| w[0] == w[1]), "{stdout}");
}

#[test]
fn slow_groups_access_lines_by_route() {
    let dir = tempfile::tempdir().unwrap();
    let mut lines = Vec::new();
    for i in 0..40i64 {
        let (method, route) = if i % 2 == 0 {
            ("GET", "/orders/{id}")
        } else {
            ("POST", "/checkout")
        };
        // Access lines inside the request span, as the http layer writes them.
        lines.push(line(
            T0 + i,
            "INFO",
            &[
                ("message", json!("request completed")),
                ("span", json!({"name": "http_request", "method": method})),
                ("method", json!(method)),
                ("route", json!(route)),
                ("path", json!(format!("/orders/{i}"))),
                ("status", json!(200)),
                ("duration_ms", json!(i as f64)),
            ],
        ));
        lines.push(line(
            T0 + i,
            "INFO",
            &[
                ("message", json!("span_closed")),
                ("span", json!({"name": "charge_card"})),
                ("operation", json!("charge_card")),
                ("duration_ms", json!(100.0 + i as f64)),
            ],
        ));
    }
    write(&dir.path().join("app.log"), &lines);
    let (code, stdout, err) = out(&tl()
        .args(["slow", "--json"])
        .arg(dir.path())
        .output()
        .unwrap());
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&stdout).unwrap();
    let ops = v["operations"].as_array().unwrap();
    let names: Vec<&str> = ops
        .iter()
        .map(|o| o["operation"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
    for n in ["GET /orders/{id}", "POST /checkout", "charge_card"] {
        assert!(names.contains(&n), "{names:?}");
    }
    let get = ops
        .iter()
        .find(|o| o["operation"] == "GET /orders/{id}")
        .unwrap();
    assert_eq!(get["count"], 20);
    assert_eq!(get["max"], 38.0);
    assert_eq!(get["p50"], 18.0);
    let (_, human, _) = out(&tl()
        .args(["slow", "--color", "never"])
        .arg(dir.path())
        .output()
        .unwrap());
    assert!(
        human.contains("GET /orders/{id}") && !human.contains("http_request"),
        "{human}"
    );
}

/// The reader going away (`| head`) ends the command quietly with exit 0 — also for `--json`
/// reports and `--count` — unless some input failed, which still says 2.
#[test]
fn a_closed_pipe_is_a_quiet_end() {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    // Enough output to fill a pipe: 300 error groups with 2 kB samples.
    let lines: Vec<String> = (0..300)
        .map(|i| {
            line(
                T0 + i,
                "ERROR",
                &[
                    (
                        "message",
                        json!(format!("failure {i} {}", "x".repeat(2000))),
                    ),
                    ("error_fingerprint", json!(format!("{i:016x}"))),
                ],
            )
        })
        .collect();
    write(&dir.path().join("app.log"), &lines);
    let missing = dir.path().join("missing");
    for (args, with_missing, want) in [
        (vec!["errors", "--json"], false, 0),
        (vec!["slow", "--json"], false, 0),
        (vec!["query", "--json"], false, 0),
        (vec!["query"], false, 0),
        (vec!["query", "--json"], true, 2),
    ] {
        let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("tracelight"));
        c.args(&args).arg(dir.path());
        if with_missing {
            c.arg(&missing);
        }
        let mut child = c
            .env_remove("LOG_DIR")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = [0u8; 16];
        let mut stdout = child.stdout.take().unwrap();
        let _ = stdout.read(&mut first).unwrap();
        drop(stdout);
        let o = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(want), "{args:?}: {err}");
        assert!(
            !err.contains("error:") && !err.contains("panicked"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn a_pager_that_cannot_run_is_skipped_or_said() {
    let t = generate(10);
    let bin = assert_cmd::cargo::cargo_bin("tracelight");
    let cmd = format!(
        "{} query --level error {}",
        bin.display(),
        t.path().display()
    );
    let errors = t.count(|v| v["level"] == "ERROR");
    // A program that does not exist: the output goes to the terminal instead.
    let shown = on_a_terminal(&cmd, &[("PAGER", "/nonexistent/pager -R")]);
    assert_eq!(shown.matches("ERROR").count(), errors, "{shown}");
    // A shell command that cannot run: said, and the exit code is 2.
    let mut c = std::process::Command::new("script");
    c.args(["-qec", &format!("{cmd}; echo exit=$?"), "/dev/null"])
        .env("PAGER", "nonexistent-pager-xyz --width=80");
    let o = c.output().unwrap();
    let shown = String::from_utf8_lossy(&o.stdout);
    assert!(
        shown.contains("could not run") || shown.contains("exit=2"),
        "{shown}"
    );
    // With more output than the pipe holds, the pager is gone before the output is written:
    // the broken pipe is not taken for a pager that quit early.
    let big = generate(300);
    let cmd = format!("{} query {}", bin.display(), big.path().display());
    let mut c = std::process::Command::new("script");
    c.args(["-qec", &format!("{cmd}; echo exit=$?"), "/dev/null"])
        .env("PAGER", "nonexistent-pager-xyz --width=80");
    let o = c.output().unwrap();
    let shown = String::from_utf8_lossy(&o.stdout);
    assert!(
        shown.contains("could not run") && shown.contains("exit=2"),
        "{shown}"
    );
}

/// The progress bar on a terminal: a total in bytes of log for plain files; for a `.gz`, whose
/// uncompressed size is not known ahead, the bytes read and the rate without a total.
#[test]
fn progress_counts_bytes_of_log() {
    use std::io::Write as _;
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("big.log");
    let one = line(T0, "INFO", &[("message", json!("x".repeat(400)))]) + "\n";
    let lines = (70 << 20) / one.len() + 1;
    {
        let mut f = std::io::BufWriter::new(fs::File::create(&plain).unwrap());
        for _ in 0..lines {
            f.write_all(one.as_bytes()).unwrap();
        }
    }
    // Lines that compress as logs do (a few times, not a thousand): hex from a simple generator.
    let gz = dir.path().join("big.log.1.gz");
    {
        let mut e = flate2::write::GzEncoder::new(
            fs::File::create(&gz).unwrap(),
            flate2::Compression::fast(),
        );
        // 256 different lines, more than deflate's 32 KiB window holds, written in turn.
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let pool: Vec<String> = (0..256)
            .map(|_| {
                let hex: String = (0..24)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        format!("{x:016x}")
                    })
                    .collect();
                line(T0, "INFO", &[("message", json!(hex))]) + "\n"
            })
            .collect();
        for i in 0..lines {
            e.write_all(pool[i % pool.len()].as_bytes()).unwrap();
        }
        e.finish().unwrap();
    }
    let bin = assert_cmd::cargo::cargo_bin("tracelight");
    let shown = on_a_terminal(
        &format!(
            "{} query --count --level error {}; true",
            bin.display(),
            plain.display()
        ),
        &[],
    );
    assert!(
        shown.contains("B/70.00 MiB"),
        "a total of 70 MiB: {shown:?}"
    );
    let shown = on_a_terminal(
        &format!(
            "{} query --count --level error {}; true",
            bin.display(),
            gz.display()
        ),
        &[],
    );
    assert!(shown.contains("of log read"), "{shown:?}");
    assert!(
        !shown.contains("B/70.00 MiB"),
        "no total for a .gz: {shown:?}"
    );
}
