//! `tracelight tail -f` follows appends, partial writes, rotation, truncation and new files.

#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::fs::{self, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

use serde_json::json;

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `tracelight tail -f --json --poll-ms 40 ARGS… PATH`; its stdout lines arrive on the
/// receiver, read by a thread of their own.
fn follow(args: &[&str], path: &std::path::Path) -> (Killed, Receiver<String>) {
    let child = Command::new(env!("CARGO_BIN_EXE_tracelight"))
        .args(["tail", "-f", "--json", "--poll-ms", "40"])
        .args(args)
        .arg(path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = Killed(child);
    let stdout = child.0.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

fn l(i: i64, msg: &str) -> String {
    common::line(
        common::T0 + i * 1000,
        if i % 5 == 0 { "ERROR" } else { "INFO" },
        &[("message", json!(msg)), ("service", json!("shop"))],
    )
}

fn append(path: &std::path::Path, text: &str) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

fn expect(rx: &Receiver<String>, want: &[String]) {
    for w in want {
        let got = rx
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("timed out waiting for {w}"));
        assert_eq!(&got, w);
    }
}

#[test]
fn follows_appends_rotation_and_truncation() {
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("app.log");
    fs::write(
        &app,
        format!("{}\n{}\n{}\n", l(1, "a"), l(2, "b"), l(3, "c")),
    )
    .unwrap();
    // A rotated file is not followed.
    fs::write(dir.path().join("app.log.1"), format!("{}\n", l(0, "old"))).unwrap();

    let (_child, rx) = follow(&["-n", "2"], dir.path());

    // The last two lines first.
    expect(&rx, &[l(2, "b"), l(3, "c")]);

    // Appends, one of them written in two parts.
    append(&app, &format!("{}\n", l(4, "d")));
    expect(&rx, &[l(4, "d")]);
    let e = l(5, "e");
    append(&app, &e[..10]);
    std::thread::sleep(Duration::from_millis(200));
    append(&app, &format!("{}\n", &e[10..]));
    expect(&rx, &[e]);

    // Rotation: renamed to app.log.2, a last line lands in the old file, then a new app.log.
    fs::rename(&app, dir.path().join("app.log.2")).unwrap();
    append(&dir.path().join("app.log.2"), &format!("{}\n", l(6, "f")));
    append(&app, &format!("{}\n{}\n", l(7, "g"), l(8, "h")));
    expect(&rx, &[l(6, "f"), l(7, "g"), l(8, "h")]);

    // Truncation (copytruncate): read again from the start.
    std::thread::sleep(Duration::from_millis(200));
    fs::write(&app, "").unwrap();
    std::thread::sleep(Duration::from_millis(200));
    append(&app, &format!("{}\n", l(9, "i")));
    expect(&rx, &[l(9, "i")]);

    // A new live file in the directory.
    append(&dir.path().join("errors.log"), &format!("{}\n", l(10, "j")));
    expect(&rx, &[l(10, "j")]);
}

#[test]
fn follows_with_filters() {
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("app.log");
    fs::write(&app, format!("{}\n", l(1, "a"))).unwrap();
    let (_child, rx) = follow(&["--level", "error"], &app);
    std::thread::sleep(Duration::from_millis(300));
    let mut text = String::new();
    for i in 2..=11 {
        text.push_str(&l(i, "x"));
        text.push('\n');
    }
    text.push_str("garbage line\n");
    append(&app, &text);
    expect(&rx, &[l(5, "x"), l(10, "x")]);
    assert!(rx.recv_timeout(Duration::from_millis(400)).is_err());
}

/// `tail -f` started before the service wrote anything: it waits for files to appear in the
/// directory (without `-f`, nothing to read is exit 3).
#[test]
fn follows_a_directory_that_has_no_files_yet() {
    let dir = tempfile::tempdir().unwrap();
    let once = Command::new(env!("CARGO_BIN_EXE_tracelight"))
        .args(["tail"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(once.status.code(), Some(3));
    let (mut child, rx) = follow(&[], dir.path());
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        child.0.try_wait().unwrap().is_none(),
        "tail -f exited on an empty directory"
    );
    append(
        &dir.path().join("app.log"),
        &format!("{}\n{}\n", l(1, "first"), l(2, "second")),
    );
    expect(&rx, &[l(1, "first"), l(2, "second")]);
}

/// A line written to two streams (an ERROR in `app.log` and `errors.log`) is printed once while
/// following, also when its second copy comes a poll later; two identical lines of one file are
/// both printed.
#[test]
fn follows_a_line_of_two_streams_once() {
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("app.log");
    let errors = dir.path().join("errors.log");
    append(&app, &format!("{}\n", l(1, "before")));
    append(&errors, "");
    let (_child, rx) = follow(&["-n", "0"], dir.path());
    std::thread::sleep(Duration::from_millis(300));
    let err = l(5, "payment failed");
    append(&app, &format!("{err}\n{}\n", l(6, "after")));
    expect(&rx, &[err.clone(), l(6, "after")]);
    // The copy, a few polls later: not printed again.
    std::thread::sleep(Duration::from_millis(200));
    append(&errors, &format!("{err}\n"));
    let twice = l(7, "same bytes twice");
    append(&app, &format!("{twice}\n{twice}\n"));
    expect(&rx, &[twice.clone(), twice.clone()]);
    assert!(
        rx.recv_timeout(Duration::from_millis(400)).is_err(),
        "nothing more: the copy in errors.log is left out"
    );
}
