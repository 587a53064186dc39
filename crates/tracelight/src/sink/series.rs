//! The series of rotated files of one stream: their names, their order, retention, and recovery
//! after a crash.
//!
//! A rotated file is named once, when it is rotated out, and never renamed afterwards (only
//! compressed in place, `X` → `X.gz`):
//!
//! - by size: `app.log.2026-12-01T08-30-00-123456`, the time (UTC, microseconds) it was rotated
//!   out; a later file always gets a later name, also across restarts and when the clock steps
//!   back;
//! - by time: the period's label, `app.log.2026-12-01` (daily) or `app.log.2026-12-01T13`
//!   (hourly), then `.1`, `.2`… for further files of the same period.
//!
//! So the names sort in time order, for a person (`ls`) and for the `tracelight` command alike, and
//! nothing a crash interrupts can leave the series out of order: a rotation is one rename, and a
//! compression writes a temporary file that is renamed into place before the original is
//! removed. On start, [`Series::recover`] finishes what a killed process left: temporary files are
//! removed, a file compressed but not yet removed is removed, files not yet compressed are
//! compressed, and the numbered backups (`app.log.1` newest) and staging files
//! (`app.log.rotating.*`) of earlier versions are renamed into the series, oldest first.
//!
//! Retention removes only the oldest files, in order: beyond the backup count, older than the
//! maximum age, and — the disk bound — while the series' total bytes would exceed
//! `max_total_bytes`. The bound is enforced before a file is added (at rotation, by the writer, and
//! before a compressed copy is written, by the archiver), under one lock per series, so the
//! rotated files never hold more than the bound, also when compression falls behind.

use std::fs::{self, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use super::{lock, Counters, Rotation};
use crate::time::{days_from_civil, render_seconds};

/// One rotated file.
#[derive(Debug, Clone)]
struct Backup {
    path: PathBuf,
    /// The time stamp or period label in its name.
    stamp: String,
    /// The repeat counter after the label (`.1`, `.2`…), 0 without one.
    k: u64,
    gz: bool,
    bytes: u64,
    modified: SystemTime,
}

/// What is about to be added to the series, for retention to make room for.
#[derive(Debug, Clone, Copy)]
enum Incoming<'a> {
    /// Nothing: apply the rules as they stand.
    Nothing,
    /// A new rotated file of this many bytes.
    File(u64),
    /// The compressed copy (this many bytes) of `of`, written beside it before it is removed.
    Copy { of: &'a Path, bytes: u64 },
}

/// The rotated files of one stream.
#[derive(Debug)]
pub(crate) struct Series {
    dir: PathBuf,
    name: String,
    rotation: Rotation,
    /// Held while files are added to or removed from the series.
    lock: Mutex<SeriesState>,
    /// Whether "compression falls behind" was reported (it is reported once).
    behind_reported: AtomicBool,
}

#[derive(Debug, Default)]
struct SeriesState {
    /// The newest size-scheme stamp given out or found, in microseconds since the epoch.
    last_micros: u64,
    /// Bytes set aside for a compressed copy being written (at most the original's size).
    reserved: u64,
}

/// The name stamp of a size rotation: `2026-12-01T08-30-00-123456` (UTC).
fn stamp(micros: u64) -> String {
    let secs = micros / 1_000_000;
    let rendered = render_seconds(secs, b'T');
    let mut s = String::from_utf8_lossy(&rendered).replace(':', "-");
    s.push('-');
    s.push_str(&format!("{:06}", micros % 1_000_000));
    s
}

/// The microseconds of a size-rotation stamp, if `s` is one.
fn parse_stamp(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() != 26 || b[4] != b'-' || b[10] != b'T' || b[19] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<u64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se, us) = (num(11..13)?, num(14..16)?, num(17..19)?, num(20..26)?);
    let days = days_from_civil(
        i64::try_from(y).ok()?,
        u32::try_from(mo).ok()?,
        u32::try_from(d).ok()?,
    );
    let secs = u64::try_from(days).ok()? * 86_400 + h * 3600 + mi * 60 + se;
    Some(secs * 1_000_000 + us)
}

fn micros_of(t: SystemTime) -> u64 {
    u64::try_from(t.duration_since(UNIX_EPOCH).unwrap_or_default().as_micros()).unwrap_or(u64::MAX)
}

/// Whether `s` is a stamp or a period label: digits first, then digits, `-`, `T`, `_`.
fn is_stamp(s: &str) -> bool {
    s.len() >= 8
        && s.as_bytes()[0].is_ascii_digit()
        && s.bytes()
            .all(|b| b.is_ascii_digit() || b == b'-' || b == b'T' || b == b'_')
}

fn with_suffix(p: &Path, suffix: &str) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Streams `src` through gzip into `dst` (created or truncated), synced to disk.
fn compress_file(src: &Path, dst: &Path) -> io::Result<()> {
    let mut input = fs::File::open(src)?;
    let out = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(dst)?;
    let mut enc =
        flate2::write::GzEncoder::new(io::BufWriter::new(out), flate2::Compression::fast());
    io::copy(&mut input, &mut enc)?;
    let out = enc.finish()?;
    let out = out.into_inner().map_err(|e| e.into_error())?;
    out.sync_all()
}

/// Whether the file at `path` is empty or ends with a newline.
pub(crate) fn ends_with_newline(path: &Path) -> io::Result<bool> {
    let mut f = fs::File::open(path)?;
    let len = f.metadata()?.len();
    if len == 0 {
        return Ok(true);
    }
    f.seek(SeekFrom::Start(len - 1))?;
    let mut last = [0u8; 1];
    f.read_exact(&mut last)?;
    Ok(last[0] == b'\n')
}

impl Series {
    pub(crate) fn new(dir: PathBuf, name: String, rotation: Rotation) -> Series {
        Series {
            dir,
            name,
            rotation,
            lock: Mutex::new(SeriesState::default()),
            behind_reported: AtomicBool::new(false),
        }
    }

    /// The rotated files, oldest first.
    fn list(&self) -> Vec<Backup> {
        let prefix = format!("{}.", self.name);
        let mut out = Vec::new();
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return out;
        };
        for e in entries.flatten() {
            let fname = e.file_name();
            let Some(rest) = fname.to_str().and_then(|f| f.strip_prefix(&prefix)) else {
                continue;
            };
            let (rest, gz) = match rest.strip_suffix(".gz") {
                Some(r) => (r, true),
                None => (rest, false),
            };
            let (stamp, k) = match rest.rsplit_once('.') {
                Some((a, b))
                    if is_stamp(a) && !b.is_empty() && b.bytes().all(|c| c.is_ascii_digit()) =>
                {
                    (a, b.parse().unwrap_or(0))
                }
                _ if is_stamp(rest) => (rest, 0),
                _ => continue,
            };
            let Ok(meta) = e.metadata() else { continue };
            if !meta.is_file() {
                continue;
            }
            out.push(Backup {
                path: e.path(),
                stamp: stamp.to_owned(),
                k,
                gz,
                bytes: meta.len(),
                modified: meta.modified().unwrap_or(UNIX_EPOCH),
            });
        }
        out.sort_by(|a, b| (&a.stamp, a.k, a.gz).cmp(&(&b.stamp, b.k, b.gz)));
        out
    }

    /// The next size-scheme name: after every name given out or found.
    fn next_stamp(&self, state: &mut SeriesState, at: SystemTime) -> String {
        let micros = micros_of(at).max(state.last_micros + 1);
        state.last_micros = micros;
        stamp(micros)
    }

    /// The path a file rotated out now gets.
    fn target(&self, state: &mut SeriesState, label: Option<&str>) -> PathBuf {
        let base = self.dir.join(&self.name);
        match label {
            None => with_suffix(
                &base,
                &format!(".{}", self.next_stamp(state, SystemTime::now())),
            ),
            Some(label) => {
                // After the highest counter the label has: a name freed by retention is never
                // given out again, so a later file never sorts before an earlier one.
                let stem = with_suffix(&base, &format!(".{label}"));
                let existing: Vec<u64> = self
                    .list()
                    .into_iter()
                    .filter(|b| b.stamp == label)
                    .map(|b| b.k)
                    .collect();
                match existing.iter().max() {
                    None => stem,
                    Some(k) => with_suffix(&stem, &format!(".{}", k + 1)),
                }
            }
        }
    }

    /// Whether rotated files are kept at all.
    pub(crate) fn keeps_files(&self) -> bool {
        self.max_files() != Some(0)
    }

    /// At most this many rotated files are kept (`None`: no count limit).
    fn max_files(&self) -> Option<usize> {
        let r = &self.rotation;
        if r.backups > 0 {
            Some(r.backups)
        } else if r.max_age.is_some() || r.max_total_bytes.is_some() {
            None
        } else {
            Some(0)
        }
    }

    /// Removes the oldest files while a rule says so, counting `incoming` and the bytes set aside
    /// for a compression in progress as already there. Stops at the first file it cannot remove
    /// (so that nothing newer goes in its place).
    fn prune(&self, state: &SeriesState, incoming: Incoming<'_>) {
        let r = &self.rotation;
        let list = self.list();
        let (extra_files, extra_bytes, keep) = match incoming {
            Incoming::Nothing => (0, 0, None),
            Incoming::File(bytes) => (1, bytes, None),
            // The copy of a file retention already removed will not be written.
            Incoming::Copy { of, bytes } if list.iter().any(|b| b.path == of) => {
                (0, bytes, Some(of))
            }
            Incoming::Copy { .. } => (0, 0, None),
        };
        let mut files = list.len() + extra_files;
        let mut total: u64 =
            list.iter().map(|b| b.bytes).sum::<u64>() + extra_bytes + state.reserved;
        let now = SystemTime::now();
        for b in &list {
            let too_many = self.max_files().is_some_and(|max| files > max);
            let too_old = r
                .max_age
                .is_some_and(|age| now.duration_since(b.modified).unwrap_or_default() > age);
            let too_big = r.max_total_bytes.is_some_and(|bound| total > bound);
            if !(too_many || too_old || too_big) {
                // Only ever the oldest: the first file no rule removes ends the pass.
                break;
            }
            match fs::remove_file(&b.path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    crate::util::say(format!(
                        "tracelight: cannot remove the rotated file {}: {e}; retention stops there",
                        b.path.display()
                    ));
                    break;
                }
            }
            files -= 1;
            total -= b.bytes;
            if keep.is_some_and(|k| k == b.path) {
                // The file to compress went itself: its copy will not be written.
                total -= extra_bytes;
            }
        }
    }

    /// Rotates the live file at `live` out of the way (one rename), making room for it first.
    /// Returns the rotated file's path, to compress, or `None` when nothing was kept.
    pub(crate) fn rotate_out(
        &self,
        live: &Path,
        label: Option<&str>,
        c: &Counters,
    ) -> io::Result<Option<PathBuf>> {
        let mut state = lock(&self.lock);
        let size = match fs::metadata(live) {
            Ok(m) => m.len(),
            // Removed under us: nothing to rotate.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        if self.max_files() == Some(0) {
            fs::remove_file(live)?;
            return Ok(None);
        }
        if self.rotation.compress {
            let waiting = self.list().iter().filter(|b| !b.gz).count();
            if waiting > 1 {
                c.compression_behind.fetch_add(1, Ordering::Relaxed);
                if !self.behind_reported.swap(true, Ordering::AcqRel) {
                    crate::util::say(format!(
                        "tracelight: {}: compression falls behind ({waiting} rotated files wait); \
                         the disk bound still holds, the oldest files go first",
                        live.display()
                    ));
                }
            }
        }
        self.prune(&state, Incoming::File(size));
        let target = self.target(&mut state, label);
        fs::rename(live, &target)?;
        c.rotations.fetch_add(1, Ordering::Relaxed);
        Ok(Some(target))
    }

    /// Compresses a rotated file (when the rotation says so) and applies retention. Runs on the
    /// archiver thread. The compressed copy is streamed into a temporary file beside the original
    /// (at most the original's size is set aside for it under the disk bound), then renamed into
    /// place, and the original removed.
    pub(crate) fn archive(&self, path: &Path) -> io::Result<()> {
        if !(self.rotation.compress && path.extension().is_none_or(|e| e != "gz")) {
            let state = lock(&self.lock);
            self.prune(&state, Incoming::Nothing);
            return Ok(());
        }
        let size = match fs::metadata(path) {
            Ok(m) => m.len(),
            // Removed by retention meanwhile.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        {
            let mut state = lock(&self.lock);
            self.prune(
                &state,
                Incoming::Copy {
                    of: path,
                    bytes: size,
                },
            );
            if !path.exists() {
                return Ok(());
            }
            state.reserved += size;
        }
        let dst = with_suffix(path, ".gz");
        let tmp = with_suffix(&dst, ".tmp");
        let written = compress_file(path, &tmp);
        let mut state = lock(&self.lock);
        state.reserved -= size;
        let result = written.and_then(|()| {
            if !path.exists() {
                // Removed by retention while it was compressed: so is the copy.
                return Err(io::Error::from(io::ErrorKind::NotFound));
            }
            fs::rename(&tmp, &dst)?;
            fs::remove_file(path)
        });
        match result {
            Ok(()) => {}
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                if e.kind() != io::ErrorKind::NotFound {
                    return Err(e);
                }
            }
        }
        self.prune(&state, Incoming::Nothing);
        Ok(())
    }

    /// Finishes what a process that stopped (or was killed) left in the directory; returns the
    /// rotated files still to compress, oldest first.
    pub(crate) fn recover(&self) -> Vec<PathBuf> {
        let mut state = lock(&self.lock);
        let prefix = format!("{}.", self.name);
        let entries: Vec<(String, PathBuf, SystemTime)> = fs::read_dir(&self.dir)
            .map(|rd| {
                rd.flatten()
                    .filter_map(|e| {
                        let name = e.file_name().to_str()?.to_owned();
                        let rest = name.strip_prefix(&prefix)?.to_owned();
                        let modified = e.metadata().ok()?.modified().unwrap_or(UNIX_EPOCH);
                        Some((rest, e.path(), modified))
                    })
                    .collect()
            })
            .unwrap_or_default();
        // A compression cut short: its temporary file goes (the original is still there).
        for (rest, path, _) in &entries {
            if rest.ends_with(".gz.tmp") {
                let _ = fs::remove_file(path);
            }
        }
        // Series files of earlier versions: `app.log.<n>` (1 newest) and staging files
        // `app.log.rotating.<nanos>-<seq>`, renamed into the series by age, oldest first.
        let mut legacy: Vec<(u8, u64, PathBuf, SystemTime, bool)> = Vec::new();
        for (rest, path, modified) in &entries {
            let (body, gz) = match rest.strip_suffix(".gz") {
                Some(b) => (b, true),
                None => (rest.as_str(), false),
            };
            if body.ends_with(".tmp") {
                continue;
            }
            if !body.is_empty() && body.len() <= 6 && body.bytes().all(|b| b.is_ascii_digit()) {
                let n: u64 = body.parse().unwrap_or(0);
                legacy.push((0, u64::MAX - n, path.clone(), *modified, gz));
            } else if let Some(staged) = body.strip_prefix("rotating.") {
                let nanos = staged
                    .split('-')
                    .next()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                legacy.push((1, nanos, path.clone(), *modified, gz));
            }
        }
        legacy.sort_by_key(|(kind, order, ..)| (*kind, *order));
        let base = self.dir.join(&self.name);
        if let Some(newest) = self
            .list()
            .iter()
            .filter_map(|b| parse_stamp(&b.stamp))
            .max()
        {
            state.last_micros = state.last_micros.max(newest);
        }
        for (_, _, path, modified, gz) in legacy {
            // Never over an existing file (a migration cut short by a kill, equal times).
            let to = loop {
                let name = with_suffix(
                    &base,
                    &format!(".{}", self.next_stamp(&mut state, modified)),
                );
                let to = if gz { with_suffix(&name, ".gz") } else { name };
                if !to.exists() && !with_suffix(&to, ".gz").exists() {
                    break to;
                }
            };
            let _ = fs::rename(&path, &to);
        }
        let list = self.list();
        if let Some(newest) = list.iter().filter_map(|b| parse_stamp(&b.stamp)).max() {
            state.last_micros = state.last_micros.max(newest);
        }
        // Compressed but not removed: the compressed copy is whole (it was renamed into place).
        let mut pending = Vec::new();
        for b in &list {
            if b.gz {
                continue;
            }
            if with_suffix(&b.path, ".gz").exists() {
                let _ = fs::remove_file(&b.path);
            } else if self.rotation.compress {
                pending.push(b.path.clone());
            }
        }
        self.prune(&state, Incoming::Nothing);
        drop(state);
        pending.retain(|p| p.exists());
        pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_sort_in_time_order_and_read_back() {
        let a = stamp(1_764_577_800_123_456);
        assert_eq!(a, "2025-12-01T08-30-00-123456");
        assert_eq!(parse_stamp(&a), Some(1_764_577_800_123_456));
        let b = stamp(1_764_577_800_123_457);
        assert!(a < b);
        assert!(stamp(999_999) < stamp(1_000_000));
        assert!(is_stamp(&a) && is_stamp("2026-12-01") && is_stamp("2026-12-01T13"));
        assert!(!is_stamp("3") && !is_stamp("rotating.1"));
    }

    #[test]
    fn names_always_increase() {
        let s = Series::new(".".into(), "x.log".into(), Rotation::size(1));
        let mut st = SeriesState::default();
        let t = SystemTime::now();
        let a = s.next_stamp(&mut st, t);
        let b = s.next_stamp(&mut st, t);
        let c = s.next_stamp(&mut st, t - std::time::Duration::from_secs(3600));
        assert!(a < b && b < c, "{a} {b} {c}");
    }
}
