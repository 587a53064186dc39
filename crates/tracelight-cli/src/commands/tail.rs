//! `tracelight tail`: the last lines, and with `-f` new lines as they are written.
//!
//! Following survives rotation: every poll compares the inode behind each path with the one
//! being read. When a file was renamed away (`app.log` → `app.log.1`) the rest of the old file
//! is read through the still-open handle, then the new file is opened from its start. A file that
//! became shorter than what was read was truncated (copytruncate) and is read again from its start.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Result;
use memchr::memrchr;

use super::{build_filters, prepare, prepare_to_follow, INPUT_FAILED};
use crate::cli::TailArgs;
use crate::engine::collect::{self, LastLines, Lines};
use crate::engine::filter::Plan;
use crate::engine::scan::{self, Report};
use crate::engine::source::{self, Source};
use crate::printer::{LinePrinter, Style};
use crate::Outcome;

/// Where the last complete line of a file ends (just past its newline), reading backwards.
fn last_newline_end(path: &Path, size: u64) -> io::Result<u64> {
    let file = File::open(path)?;
    let mut end = size;
    let mut buf = vec![0u8; 64 << 10];
    while end > 0 {
        let start = end.saturating_sub(buf.len() as u64);
        let n = (end - start) as usize;
        file.read_exact_at(&mut buf[..n], start)?;
        if let Some(i) = memrchr(b'\n', &buf[..n]) {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

struct Followed {
    path: PathBuf,
    file: Option<File>,
    ino: (u64, u64),
    offset: u64,
    pending: Vec<u8>,
}

impl Followed {
    /// Reads what was appended to the open handle since the last read.
    fn read_new(&mut self, chunk: &mut Vec<u8>) -> io::Result<()> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        loop {
            chunk.resize(1 << 20, 0);
            let n = match file.read_at(chunk, self.offset) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if n == 0 {
                return Ok(());
            }
            self.offset += n as u64;
            self.pending.extend_from_slice(&chunk[..n]);
        }
    }

    /// Takes the complete lines out of `pending` (all of it when `all`).
    fn take_lines(&mut self, all: bool) -> Vec<u8> {
        if all {
            return std::mem::take(&mut self.pending);
        }
        match memrchr(b'\n', &self.pending) {
            Some(i) => {
                let rest = self.pending.split_off(i + 1);
                std::mem::replace(&mut self.pending, rest)
            }
            None => Vec::new(),
        }
    }
}

fn identity(m: &fs::Metadata) -> (u64, u64) {
    (m.dev(), m.ino())
}

/// The files `tail` reads: files named on the command line, and the live (not rotated) log files
/// under directories.
fn live_sources(paths: &[PathBuf], all: Vec<Source>) -> Vec<Source> {
    let explicit: HashSet<&Path> = paths
        .iter()
        .filter(|p| p.is_file())
        .map(PathBuf::as_path)
        .collect();
    all.into_iter()
        .filter(|s| explicit.contains(s.path.as_path()) || (!s.gz && !source::is_rotated(&s.path)))
        .collect()
}

/// Runs `tail`.
/// The lines printed lately, to leave out the copy another file gives of one (an ERROR line is in
/// `app.log` and in `errors.log`, each written by its own thread, so the copy may come a poll
/// later). A line counts as a copy when a line of the same bytes came from another file and that
/// file has not given its own copy of it yet; two identical lines of one file are both printed.
#[derive(Default)]
struct Copies {
    /// The hash of each line printed, with the files that gave it (one bit per followed file).
    seen: std::collections::VecDeque<(u64, u64)>,
}

impl Copies {
    /// How many printed lines are remembered.
    const KEPT: usize = 16_384;

    /// Whether `line` from file `file` is a copy of a line printed already (and notes it).
    fn is_copy(&mut self, file: usize, line: &[u8]) -> bool {
        let Some(bit) = u32::try_from(file).ok().and_then(|f| 1u64.checked_shl(f)) else {
            return false;
        };
        let h = collect::line_hash(line);
        if let Some(e) = self
            .seen
            .iter_mut()
            .find(|(eh, files)| *eh == h && files & bit == 0)
        {
            e.1 |= bit;
            return true;
        }
        if self.seen.len() == Self::KEPT {
            self.seen.pop_front();
        }
        self.seen.push_back((h, bit));
        false
    }
}

pub(crate) fn tail(a: TailArgs) -> Result<Outcome> {
    let filters = build_filters(&a.filters, a.level.as_deref())?;
    let prepared = if a.follow {
        prepare_to_follow(&a.paths, &a.output)
    } else {
        prepare(&a.paths, &a.output)
    };
    let Some(p) = prepared else {
        return Ok(Outcome::NothingToRead);
    };
    let given = p.paths;
    let mut opts = p.opts;
    opts.progress = false;
    let mut sources = live_sources(&given, p.sources);
    // Snapshot: read up to the last complete line; following starts there.
    for s in &mut sources {
        if !s.gz {
            let end = last_newline_end(&s.path, s.size).unwrap_or(s.size);
            s.limit = Some(end);
        }
    }
    let plan = Plan::new(filters);
    let results = scan::scan(&sources, &plan, &LastLines(a.lines), &opts);
    let report = Report::of(&sources, &results);
    if !report.errors.is_empty() {
        INPUT_FAILED.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    let lines = collect::merge_to_vec(results);
    let skip = lines.len().saturating_sub(a.lines);
    let mut printer = LinePrinter::new(Style::of(&a.output), a.json);
    let mut out = BufWriter::new(io::stdout().lock());
    for (_, line) in &lines[skip..] {
        printer.print(&mut out, line)?;
    }
    out.flush()?;
    if !a.follow {
        report.print();
        return Ok(Outcome::Found);
    }
    report.print();

    let mut followed: Vec<Followed> = Vec::new();
    let mut known: HashSet<PathBuf> = HashSet::new();
    for s in sources.iter().filter(|s| !s.gz) {
        let Ok(file) = File::open(&s.path) else {
            continue;
        };
        let Ok(meta) = file.metadata() else { continue };
        known.insert(s.path.clone());
        followed.push(Followed {
            path: s.path.clone(),
            file: Some(file),
            ino: identity(&meta),
            offset: s.limit.unwrap_or(0),
            pending: Vec::new(),
        });
    }
    let dirs: Vec<PathBuf> = given.iter().filter(|p| p.is_dir()).cloned().collect();
    let poll = Duration::from_millis(a.poll_ms.max(10));
    let mut last_rescan = Instant::now();
    let mut chunk = Vec::new();
    let mut copies = Copies::default();
    loop {
        std::thread::sleep(poll);
        if !dirs.is_empty() && last_rescan.elapsed() >= Duration::from_secs(1) {
            last_rescan = Instant::now();
            let mut w = Vec::new();
            let found = source::discover(&dirs, &mut w);
            for s in live_sources(&[], found) {
                if known.insert(s.path.clone()) {
                    followed.push(Followed {
                        path: s.path,
                        file: None,
                        ino: (0, 0),
                        offset: 0,
                        pending: Vec::new(),
                    });
                }
            }
        }
        let mut batch: Vec<(i64, usize, Vec<u8>)> = Vec::new();
        let mut malformed = 0;
        for (index, f) in followed.iter_mut().enumerate() {
            let mut blocks: Vec<Vec<u8>> = Vec::new();
            match fs::metadata(&f.path) {
                Ok(meta) if identity(&meta) != f.ino => {
                    // Rotated (or created): finish the old file, then start the new one.
                    if f.file.is_some() {
                        let _ = f.read_new(&mut chunk);
                        blocks.push(f.take_lines(true));
                    }
                    f.file = File::open(&f.path).ok();
                    f.ino = identity(&meta);
                    f.offset = 0;
                    f.pending.clear();
                }
                Ok(meta) if meta.len() < f.offset => {
                    eprintln!("tracelight: {} was truncated", f.path.display());
                    f.offset = 0;
                    f.pending.clear();
                }
                _ => {}
            }
            let _ = f.read_new(&mut chunk);
            blocks.push(f.take_lines(false));
            for b in blocks.iter().filter(|b| !b.is_empty()) {
                let r = scan::scan_bytes(b, &plan, &Lines);
                malformed += r.malformed + r.invalid;
                batch.extend(
                    collect::merge_to_vec(vec![r])
                        .into_iter()
                        .map(|(ts, line)| (ts, index, line)),
                );
            }
        }
        if malformed > 0 {
            eprintln!(
                "tracelight: skipped {malformed} malformed line{}",
                if malformed == 1 { "" } else { "s" }
            );
        }
        batch.sort_by_key(|(ts, _, _)| *ts);
        for (_, file, line) in &batch {
            if copies.is_copy(*file, line) {
                continue;
            }
            printer.print(&mut out, line)?;
        }
        out.flush()?;
    }
}
