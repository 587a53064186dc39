//! `FileWriter` behind `tracing_subscriber::fmt`, in place of `tracing_appender`: every event once,
//! whole, across rotations and compression, from several threads; the lines of a process that
//! calls `std::process::exit` on disk; lossy mode counted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read as _;
use std::path::Path;

use tracelight::sink::{FileOptions, FileWriter, Rotation};
use tracing_subscriber::layer::SubscriberExt as _;

/// Every file of the series of `name` in `dir` (rotated ones gunzipped), concatenated.
fn everything(dir: &Path, name: &str) -> String {
    let mut out = String::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let file = p.file_name().unwrap().to_string_lossy().into_owned();
        if !file.starts_with(name) || file.ends_with(".tmp") {
            continue;
        }
        let bytes = std::fs::read(&p).unwrap();
        if file.ends_with(".gz") {
            flate2::read::GzDecoder::new(&bytes[..])
                .read_to_string(&mut out)
                .unwrap();
        } else {
            out.push_str(&String::from_utf8(bytes).unwrap());
        }
    }
    out
}

#[test]
fn fmt_json_through_a_rotating_file_writer_loses_and_splits_nothing() {
    const THREADS: u64 = 4;
    const EACH: u64 = 20_000;
    let dir = tempfile::tempdir().unwrap();
    let (writer, guard) = FileWriter::new(
        FileOptions::new(dir.path().join("app.log"))
            .rotation(Rotation::size(256 * 1024).backups(1000).compress(true)),
    )
    .unwrap();
    let subscriber = tracing_subscriber::registry().with(
        tracing_subscriber::fmt::layer()
            .json()
            .with_writer(writer.clone()),
    );
    let dispatch = tracing::Dispatch::new(subscriber);
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let d = dispatch.clone();
            std::thread::spawn(move || {
                tracing::dispatcher::with_default(&d, || {
                    for i in 0..EACH {
                        tracing::info!(t, i, padding = "p".repeat(i as usize % 300), "event");
                    }
                })
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    drop(dispatch);
    let stats = writer.stats();
    drop(guard);
    assert!(stats.rotations > 3, "{stats:?}");
    let text = everything(dir.path(), "app.log");
    let mut seen = vec![vec![false; EACH as usize]; THREADS as usize];
    let mut n = 0u64;
    for line in text.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        let t = v["fields"]["t"].as_u64().unwrap() as usize;
        let i = v["fields"]["i"].as_u64().unwrap() as usize;
        assert!(!seen[t][i], "twice: {line}");
        seen[t][i] = true;
        n += 1;
    }
    assert_eq!(n, THREADS * EACH, "every event once");
}

#[test]
fn lossy_mode_counts_what_it_drops_and_says_so_in_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, guard) = FileWriter::builder(FileOptions::new(dir.path().join("lossy.log")))
        .lossy(true)
        .queue_bytes(1024)
        .build()
        .unwrap();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_writer(writer.clone()));
    tracing::subscriber::with_default(subscriber, || {
        for i in 0..50_000u32 {
            tracing::info!(i, padding = "q".repeat(200), "burst");
        }
    });
    let dropped = writer.stats().dropped;
    drop(guard);
    let text = std::fs::read_to_string(dir.path().join("lossy.log")).unwrap();
    let written = text.lines().filter(|l| l.contains("burst")).count() as u64;
    let reported: u64 = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["reason"] == "queue_full")
        .map(|v| v["dropped"].as_u64().unwrap())
        .sum();
    assert!(dropped > 0, "nothing dropped with a 1 KiB queue");
    assert_eq!(written + dropped, 50_000);
    assert_eq!(reported, dropped);
}

#[test]
fn exit_child() {
    if std::env::var_os("TL_FILE_WRITER_EXIT").is_none() {
        return;
    }
    let dir = std::env::var("TL_FILE_WRITER_EXIT").unwrap();
    let (writer, guard) =
        FileWriter::new(FileOptions::new(Path::new(&dir).join("exit.log"))).unwrap();
    let subscriber =
        tracing_subscriber::registry().with(tracing_subscriber::fmt::layer().with_writer(writer));
    tracing::subscriber::set_global_default(subscriber).unwrap();
    for i in 0..5000u32 {
        tracing::info!(i, "before exit");
    }
    tracing::error!("fatal: exiting");
    std::mem::forget(guard);
    std::process::exit(3);
}

#[test]
fn the_lines_before_process_exit_are_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["exit_child", "--exact", "--test-threads=1"])
        .env("TL_FILE_WRITER_EXIT", dir.path())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(3));
    let text = std::fs::read_to_string(dir.path().join("exit.log")).unwrap();
    assert_eq!(
        text.lines().filter(|l| l.contains("before exit")).count(),
        5000
    );
    assert!(text.lines().last().unwrap().contains("fatal: exiting"));
}
