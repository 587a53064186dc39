//! Rotation with real files: many threads across size boundaries, compression, time periods,
//! retention, lossy mode.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde_json::Value;
use tracelight::sink::{FileOptions, Period, Rotation};
use tracelight::{Format, Output, Stream};
use tracing::{info, Dispatch};
use tracing_subscriber::layer::SubscriberExt;

fn file_stream(path: &Path, rotation: Rotation) -> Stream {
    Stream::new(
        "app",
        Output::File(FileOptions::new(path).rotation(rotation)),
    )
    .format(Format::Json)
}

/// The rotated files of `name`, oldest first: their names sort in time order (a time stamp or a
/// period label, then `.1`, `.2`… for more files of one period).
fn rotated(dir: &Path, name: &str) -> Vec<PathBuf> {
    let mut files: Vec<((String, u64), PathBuf)> = fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let p = e.unwrap().path();
            let f = p.file_name()?.to_str()?.to_owned();
            let rest = f.strip_prefix(&format!("{name}."))?;
            let rest = rest.strip_suffix(".gz").unwrap_or(rest).to_owned();
            let key = match rest.rsplit_once('.') {
                Some((a, b)) if b.bytes().all(|c| c.is_ascii_digit()) => {
                    (a.to_owned(), b.parse().ok()?)
                }
                _ => (rest, 0),
            };
            Some((key, p))
        })
        .collect();
    files.sort();
    files.into_iter().map(|(_, p)| p).collect()
}

/// The contents of `name` and its rotated files, oldest first, gunzipped.
fn read_all(dir: &Path, name: &str) -> Vec<String> {
    let mut out: Vec<String> = rotated(dir, name)
        .iter()
        .map(|p| read_maybe_gz(p))
        .collect();
    out.push(fs::read_to_string(dir.join(name)).unwrap_or_default());
    out
}

fn read_maybe_gz(p: &Path) -> String {
    let bytes = fs::read(p).unwrap();
    if p.extension().is_some_and(|e| e == "gz") {
        let mut s = String::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_string(&mut s)
            .unwrap();
        s
    } else {
        String::from_utf8(bytes).unwrap()
    }
}

#[test]
fn four_threads_across_rotations_lose_split_and_duplicate_nothing() {
    const THREADS: u64 = 4;
    const EACH: u64 = 250_000;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let (layer, guard) = tracelight::builder()
        .stream(file_stream(
            &path,
            Rotation::size(1 << 20).backups(100_000).compress(true),
        ))
        .build()
        .unwrap();
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(layer));
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let d = dispatch.clone();
            s.spawn(move || {
                tracing::dispatcher::with_default(&d, || {
                    for i in 0..EACH {
                        info!(
                            t,
                            i,
                            pad = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
                            "event"
                        );
                    }
                })
            });
        }
    });
    guard.shutdown();
    let stats = guard.stats();
    assert!(stats[0].rotations > 100, "{stats:?}");
    assert_eq!(stats[0].events, THREADS * EACH);

    let files = read_all(dir.path(), "app.log");
    assert!(
        files.len() as u64 > stats[0].rotations / 2,
        "rotated files kept"
    );
    let mut next: HashMap<u64, u64> = HashMap::new();
    let mut total = 0;
    for (k, content) in files.iter().enumerate() {
        assert!(
            content.is_empty() || content.ends_with('\n'),
            "file {k} ends mid-line"
        );
        assert!(
            content.len() <= (1 << 20) + 4096,
            "file {k} is {} bytes",
            content.len()
        );
        for line in content.lines() {
            let v: Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("split line? {e}: {line}"));
            let (t, i) = (v["t"].as_u64().unwrap(), v["i"].as_u64().unwrap());
            let want = next.entry(t).or_insert(0);
            assert_eq!(i, *want, "thread {t}: out of order or missing/duplicated");
            *want += 1;
            total += 1;
        }
    }
    assert_eq!(total, THREADS * EACH);
    assert!(next.values().all(|n| *n == EACH));
    // Every rotated file was compressed and named: nothing staged or temporary is left.
    for e in fs::read_dir(dir.path()).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        assert!(
            name == "app.log" || name.ends_with(".gz"),
            "left over: {name}"
        );
    }
}

#[test]
fn size_rotation_keeps_the_newest_backups_named_in_time_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let g = tracelight::builder()
        .stream(file_stream(
            &path,
            Rotation::size(4096).backups(3).compress(false),
        ))
        .init_local()
        .unwrap();
    for i in 0..2000u32 {
        info!(i, "line");
    }
    g.shutdown();
    let backups = rotated(dir.path(), "app.log");
    assert_eq!(backups.len(), 3, "{backups:?}");
    assert_eq!(
        fs::read_dir(dir.path()).unwrap().count(),
        4,
        "the live file and 3 backups"
    );
    // Names sort in time order: the last one's last line comes just before app.log's first.
    let last_of = |p: &Path| -> u64 {
        let s = fs::read_to_string(p).unwrap();
        serde_json::from_str::<Value>(s.lines().last().unwrap()).unwrap()["i"]
            .as_u64()
            .unwrap()
    };
    let first_live: Value =
        serde_json::from_str(fs::read_to_string(&path).unwrap().lines().next().unwrap()).unwrap();
    assert_eq!(last_of(&backups[2]) + 1, first_live["i"].as_u64().unwrap());
    assert!(last_of(&backups[0]) < last_of(&backups[1]));
}

#[test]
fn a_file_from_an_earlier_period_is_rotated_and_named_for_its_period() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    fs::write(&path, "{\"old\":true}\n").unwrap();
    let two_days_ago = SystemTime::now() - Duration::from_secs(2 * 86_400);
    fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(two_days_ago)
        .unwrap();
    // An old rotated file beyond the age limit, and one within it.
    let ancient = dir.path().join("app.log.2020-01-01.gz");
    fs::write(&ancient, b"x").unwrap();
    fs::File::options()
        .write(true)
        .open(&ancient)
        .unwrap()
        .set_modified(SystemTime::now() - Duration::from_secs(400 * 86_400))
        .unwrap();

    let g = tracelight::builder()
        .stream(file_stream(
            &path,
            Rotation::every(Period::Daily).max_age(Duration::from_secs(30 * 86_400)),
        ))
        .init_local()
        .unwrap();
    info!("today");
    g.shutdown();

    let secs = two_days_ago
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let label = {
        // YYYY-MM-DD of `secs`, computed independently of the library.
        let days = secs / 86_400;
        let out = std::process::Command::new("date")
            .args(["-u", "-d", &format!("@{}", days * 86_400), "+%Y-%m-%d"])
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let rotated = dir.path().join(format!("app.log.{label}.gz"));
    assert_eq!(read_maybe_gz(&rotated), "{\"old\":true}\n");
    assert!(!ancient.exists(), "files older than max_age are removed");
    assert!(fs::read_to_string(&path)
        .unwrap()
        .contains("\"message\":\"today\""));
}

#[test]
fn time_rotation_keeps_only_the_newest_backups() {
    let dir = tempfile::tempdir().unwrap();
    for (i, day) in ["2026-01-01", "2026-01-02", "2026-01-03", "2026-01-04"]
        .iter()
        .enumerate()
    {
        let p = dir.path().join(format!("app.log.{day}.gz"));
        fs::write(&p, b"x").unwrap();
        fs::File::options()
            .write(true)
            .open(&p)
            .unwrap()
            .set_modified(SystemTime::now() - Duration::from_secs((10 - i as u64) * 86_400))
            .unwrap();
    }
    let path = dir.path().join("app.log");
    fs::write(&path, "{\"old\":true}\n").unwrap();
    fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(SystemTime::now() - Duration::from_secs(86_400))
        .unwrap();
    let g = tracelight::builder()
        .stream(file_stream(
            &path,
            Rotation::every(Period::Daily).backups(2),
        ))
        .init_local()
        .unwrap();
    info!("today");
    g.shutdown();
    let mut names: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names.len(), 3, "{names:?}");
    assert!(
        names.contains(&"app.log.2026-01-04.gz".to_owned()),
        "{names:?}"
    );
}

#[test]
fn lossy_mode_counts_every_dropped_line_and_says_so_in_the_stream() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let (layer, guard) = tracelight::builder()
        .stream(file_stream(&path, Rotation::never()))
        .lossy(true)
        .queue_bytes(1024)
        .build()
        .unwrap();
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(layer));
    const EACH: u64 = 50_000;
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let d = dispatch.clone();
            s.spawn(move || {
                tracing::dispatcher::with_default(&d, || (0..EACH).for_each(|i| info!(t, i, "e")))
            });
        }
    });
    guard.shutdown();
    let stats = &guard.stats()[0];
    let content = fs::read_to_string(&path).unwrap();
    let mut events = 0u64;
    let mut reported = 0u64;
    for line in content.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        if v["message"] == "e" {
            events += 1;
        } else if v["message"]
            .as_str()
            .unwrap()
            .starts_with("lines were lost")
        {
            // The summary the guard writes at the end.
            assert_eq!(v["dropped"].as_u64(), Some(stats.dropped), "{v}");
        } else {
            assert_eq!(v["level"], "WARN");
            assert_eq!(v["target"], "tracelight::sink");
            assert!(v["message"].as_str().unwrap().starts_with("dropped "));
            reported += v["dropped"].as_u64().unwrap();
        }
    }
    assert!(stats.dropped > 0, "the queue never overflowed: {stats:?}");
    assert_eq!(events + stats.dropped, 4 * EACH, "{stats:?}");
    assert_eq!(reported, stats.dropped);
}

#[test]
fn a_live_file_cut_mid_line_is_rotated_out_as_it_is_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    // What a kill in the middle of a write leaves: whole lines, then half of one.
    fs::write(&path, "{\"i\":0}\n{\"i\":1}\n{\"i\":2,\"mess").unwrap();
    let g = tracelight::builder()
        .stream(file_stream(&path, Rotation::size(1 << 20).compress(false)))
        .init_local()
        .unwrap();
    info!("after restart");
    g.shutdown();
    let backups = rotated(dir.path(), "app.log");
    assert_eq!(backups.len(), 1, "{backups:?}");
    assert_eq!(
        fs::read_to_string(&backups[0]).unwrap(),
        "{\"i\":0}\n{\"i\":1}\n{\"i\":2,\"mess",
        "the cut line stays the last line of its file, unchanged"
    );
    let live = fs::read_to_string(&path).unwrap();
    let first: Value = serde_json::from_str(live.lines().next().unwrap()).unwrap();
    assert_eq!(first["message"], "after restart");
}

#[test]
fn backups_of_earlier_versions_are_renamed_into_the_series_oldest_first() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    // The numbered scheme: `.1` is the newest. And a staging file a crash left behind.
    for (n, age_s) in [(1u64, 300u64), (2, 400), (3, 500)] {
        let p = dir.path().join(format!("app.log.{n}"));
        fs::write(&p, format!("{{\"old\":{n}}}\n")).unwrap();
        fs::File::options()
            .write(true)
            .open(&p)
            .unwrap()
            .set_modified(SystemTime::now() - Duration::from_secs(age_s))
            .unwrap();
    }
    fs::write(
        dir.path().join("app.log.rotating.1764577800000000000-1"),
        "{\"old\":0}\n",
    )
    .unwrap();
    let g = tracelight::builder()
        .stream(file_stream(
            &path,
            Rotation::size(1 << 20).backups(10).compress(false),
        ))
        .init_local()
        .unwrap();
    g.shutdown();
    let contents: Vec<String> = rotated(dir.path(), "app.log")
        .iter()
        .map(|p| fs::read_to_string(p).unwrap())
        .collect();
    assert_eq!(
        contents,
        [
            "{\"old\":3}\n",
            "{\"old\":2}\n",
            "{\"old\":1}\n",
            "{\"old\":0}\n"
        ]
    );
}

#[test]
fn a_period_whose_oldest_file_was_removed_keeps_its_files_in_order() {
    // Daily with a small size limit and two backups: retention removes `app.log.<day>` while
    // later files of the same day exist; a new file must never take its freed name.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let g = tracelight::builder()
        .stream(file_stream(
            &path,
            Rotation::every(Period::Daily)
                .max_bytes(2048)
                .backups(2)
                .compress(false),
        ))
        .init_local()
        .unwrap();
    for i in 0..400u32 {
        info!(i, "line");
    }
    g.shutdown();
    let files = rotated(dir.path(), "app.log");
    assert_eq!(files.len(), 2, "{files:?}");
    let mut last = None;
    for f in files.iter().chain(std::iter::once(&path)) {
        for line in fs::read_to_string(f).unwrap().lines() {
            let i = serde_json::from_str::<Value>(line).unwrap()["i"]
                .as_u64()
                .unwrap();
            assert!(last.is_none_or(|l| i > l), "{f:?}: {i} after {last:?}");
            last = Some(i);
        }
    }
    assert_eq!(last, Some(399));
}

#[test]
fn without_rotation_a_cut_line_is_ended_before_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    fs::write(&path, "{\"i\":0}\n{\"i\":1,\"mess").unwrap();
    let g = tracelight::builder()
        .stream(file_stream(&path, Rotation::never()))
        .init_local()
        .unwrap();
    info!("after restart");
    g.shutdown();
    let content = fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = content.lines().collect();
    assert_eq!(lines[1], "{\"i\":1,\"mess", "the cut line is kept as it is");
    let next: Value = serde_json::from_str(lines[2]).unwrap();
    assert_eq!(next["message"], "after restart");
}

#[test]
fn a_disk_bound_too_small_for_its_files_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = tracelight::builder()
        .stream(file_stream(
            &dir.path().join("app.log"),
            Rotation::size(1 << 20).max_total_bytes(1 << 20),
        ))
        .build()
        .expect_err("a bound that cannot hold a file and its compressed copy");
    assert!(err.to_string().contains("twice"), "{err}");
}
