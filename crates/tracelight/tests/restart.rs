//! Restarts in the same `LOG_DIR`: a child process writing from four threads is killed with
//! SIGKILL and started again, several times, with size rotation and compression on. The series of
//! files must stay in time order, lose nothing but what was still queued at each kill, and keep
//! the one line a kill may cut short as the last line of its file; retention must remove only the
//! oldest files; the disk bound must hold at every moment.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const CHILD: &str = "TL_TEST_RESTART_CHILD";
const THREADS: u64 = 4;

/// The child side: four threads log numbered lines until the process is killed.
#[test]
fn child_entry() {
    let Ok(run) = std::env::var(CHILD) else {
        return;
    };
    let run: u64 = run.parse().unwrap();
    let _g = tracelight::init().expect("init");
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            std::thread::spawn(move || {
                let pad = "p".repeat(120);
                for seq in 0u64.. {
                    tracing::info!(run, t, seq, pad = pad.as_str(), "line");
                }
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
}

fn spawn(dir: &Path, run: u64, env: &[(&str, &str)]) -> Child {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new(exe);
    cmd.args(["child_entry", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, run.to_string())
        .env("LOG_DIR", dir)
        .env("LOG_STDOUT", "false")
        .env("LOG_MAX_BYTES", "1MiB")
        .env("LOG_COMPRESS", "true")
        .env_remove("RUST_LOG")
        .env_remove("LOG_LEVEL")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

/// The rotated files of `app.log`, oldest first (their names sort in time order), then the live
/// file.
fn series(dir: &Path) -> Vec<PathBuf> {
    let mut rotated: Vec<(String, PathBuf)> = fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let p = e.ok()?.path();
            let name = p.file_name()?.to_str()?.to_owned();
            let rest = name.strip_prefix("app.log.")?;
            if rest.ends_with(".tmp") {
                return None;
            }
            Some((rest.trim_end_matches(".gz").to_owned(), p))
        })
        .collect();
    rotated.sort();
    let mut out: Vec<PathBuf> = rotated.into_iter().map(|(_, p)| p).collect();
    out.push(dir.join("app.log"));
    out
}

fn read(p: &Path) -> Vec<u8> {
    let bytes = fs::read(p).unwrap_or_default();
    if p.extension().is_some_and(|e| e == "gz") {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_end(&mut out)
            .unwrap();
        out
    } else {
        bytes
    }
}

/// Runs the child `runs` times, killing each after it has rotated `rotations` more files.
fn kill_and_restart(dir: &Path, runs: u64, rotations: usize, env: &[(&str, &str)]) {
    // The newest rotated file's name (without `.gz`): it changes at every rotation, whatever
    // retention removes.
    let newest = |dir: &Path| {
        let s = series(dir);
        (s.len() > 1).then(|| {
            let p = s[s.len() - 2].to_string_lossy().into_owned();
            p.trim_end_matches(".gz").to_owned()
        })
    };
    for run in 0..runs {
        let mut child = spawn(dir, run, env);
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut seen = newest(dir);
        let mut rotated = 0;
        while rotated < rotations && Instant::now() < deadline {
            let now = newest(dir);
            if now != seen {
                rotated += 1;
                seen = now;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        assert!(
            rotated >= rotations,
            "run {run}: the child rotated {rotated} files in 20 s"
        );
        child.kill().unwrap(); // SIGKILL: no destructor, no exit handler
        child.wait().unwrap();
    }
}

/// One parsed line: `(run, thread, seq)`.
type Key = (u64, u64, u64);

/// Every line of the series in file order; asserts the shape of the files on the way: each line
/// valid JSON except at most one per kill, always the last line of its file.
fn lines_in_order(dir: &Path, kills: u64) -> Vec<Key> {
    let mut out = Vec::new();
    let mut broken = 0;
    for path in series(dir) {
        let content = read(&path);
        let lines: Vec<&[u8]> = content.split(|b| *b == b'\n').collect();
        // The text after the last newline (empty for a whole file).
        let (tail, whole) = lines.split_last().unwrap();
        for (i, line) in whole.iter().enumerate() {
            match serde_json::from_slice::<Value>(line) {
                Ok(v) => out.push((
                    v["run"].as_u64().unwrap(),
                    v["t"].as_u64().unwrap(),
                    v["seq"].as_u64().unwrap(),
                )),
                Err(e) => panic!(
                    "{}: line {i} of {} is not valid JSON ({e}) and is not the last",
                    path.display(),
                    whole.len()
                ),
            }
        }
        if !tail.is_empty() {
            broken += 1;
            assert!(
                serde_json::from_slice::<Value>(tail).is_err(),
                "{}: a whole line without its newline",
                path.display()
            );
        }
    }
    assert!(broken <= kills, "{broken} cut lines for {kills} kills");
    out
}

#[test]
fn killed_and_restarted_five_times_the_series_stays_whole_and_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let env = [("LOG_BACKUP_COUNT", "100000")];
    kill_and_restart(tmp.path(), 5, 3, &env);
    let lines = lines_in_order(tmp.path(), 5);
    // Per run and thread: 0, 1, 2… with no gap and no duplicate, in file order; runs in order.
    let mut next: HashMap<(u64, u64), u64> = HashMap::new();
    let mut last_run = 0;
    for (run, t, seq) in &lines {
        assert!(
            *run >= last_run,
            "run {run} after run {last_run}: files out of time order"
        );
        last_run = *run;
        let want = next.entry((*run, *t)).or_insert(0);
        assert_eq!(seq, want, "run {run} thread {t}: a gap or a duplicate");
        *want += 1;
    }
    assert_eq!(last_run, 4, "every run wrote");
    assert!(lines.len() > 10_000, "{} lines", lines.len());
    // Nothing temporary or uncompressed is left once a last start has finished the series (a
    // start that does not rotate, so that its own rotations do not keep compression busy).
    let mut child = spawn(
        tmp.path(),
        5,
        &[("LOG_BACKUP_COUNT", "100000"), ("LOG_MAX_BYTES", "1GiB")],
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let settled = loop {
        let names: Vec<String> = fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        let rotated_plain = names
            .iter()
            .filter(|n| n.starts_with("app.log.") && !n.ends_with(".gz"))
            .count();
        if rotated_plain == 0 || Instant::now() > deadline {
            break rotated_plain == 0;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(settled, "rotated files left uncompressed after a restart");
}

#[test]
fn with_a_small_retention_restarts_remove_exactly_the_oldest() {
    let tmp = tempfile::tempdir().unwrap();
    kill_and_restart(tmp.path(), 5, 3, &[("LOG_BACKUP_COUNT", "3")]);
    let rotated = series(tmp.path()).len() - 1;
    assert!(
        rotated <= 3,
        "{rotated} rotated files kept for a count of 3"
    );
    let lines = lines_in_order(tmp.path(), 5);
    // What is left is everything after one cut: the first run present may start anywhere (per
    // thread, contiguous from there on); every later run is whole from its first line.
    let first_run = lines[0].0;
    let mut next: HashMap<(u64, u64), u64> = HashMap::new();
    for (run, t, seq) in &lines {
        match next.get_mut(&(*run, *t)) {
            Some(want) => {
                assert_eq!(seq, want, "run {run} thread {t}: a hole in what was kept");
                *want += 1;
            }
            None => {
                assert!(
                    *run == first_run || *seq == 0,
                    "run {run} thread {t} starts at {seq}: a newer file was removed"
                );
                next.insert((*run, *t), seq + 1);
            }
        }
    }
}

#[test]
fn the_disk_bound_holds_at_every_moment() {
    // Uncompressed (each rotated file is 1 MiB) and compressed (a compressed copy is written
    // beside its original before the original goes).
    for (compress, bound) in [("false", 3u64 << 20), ("true", 2u64 << 20)] {
        let tmp = tempfile::tempdir().unwrap();
        let bound_s = bound.to_string();
        let env = [
            ("LOG_COMPRESS", compress),
            ("LOG_BACKUP_COUNT", "100000"),
            ("LOG_MAX_TOTAL_BYTES", bound_s.as_str()),
        ];
        let mut child = spawn(tmp.path(), 0, &env);
        let deadline = Instant::now() + Duration::from_millis(1500);
        let mut worst = 0u64;
        let mut samples = 0;
        while Instant::now() < deadline {
            let total: u64 = fs::read_dir(tmp.path())
                .unwrap()
                .filter_map(|e| {
                    let e = e.ok()?;
                    let name = e.file_name().into_string().ok()?;
                    // Rotated files, finished or not (temporary compressed copies included).
                    name.starts_with("app.log.").then(|| e.metadata().ok())?
                })
                .map(|m| m.len())
                .sum();
            worst = worst.max(total);
            samples += 1;
            std::thread::sleep(Duration::from_millis(2));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(samples > 50);
        assert!(worst > 0, "nothing was rotated (compress={compress})");
        assert!(
            worst <= bound,
            "compress={compress}: rotated files held {worst} bytes, bound {bound}"
        );
    }
}
