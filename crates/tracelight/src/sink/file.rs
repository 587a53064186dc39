//! Rolling files: rotation by size and by time, retention, compression, reopen, fault recovery.
//!
//! A [`RollingFile`] is written by the background writer thread only, one batch of whole lines at a
//! time, so a line is never split across files: when a batch would cross the size limit, it is
//! cut at the last newline that fits, the file is rotated, and the rest goes to the new file.
//!
//! Rotation renames the live file to its final name in the stream's series (see [`Series`]:
//! `app.log.2026-12-01T08-30-00-123456` by size, `app.log.2026-12-01` by day) and opens a new one
//! at once; the [`Archiver`] thread then compresses the rotated file (gzip, optional) and applies
//! retention, so the writer never waits for compression. On start, what an earlier process left
//! is finished first, and a live file whose last line was cut short (a kill) is rotated out as it
//! is, so that the broken line stays the last line of its file.
//!
//! The live file is checked every second: if an operator removed or moved it (logrotate without
//! `copytruncate`), a new one is opened at the same path. A missing directory is created.
//!
//! A failing write (a full disk, a directory that cannot be created) keeps the unwritten lines in a
//! bounded retry buffer and retries with a backoff (100 ms doubling to 5 s). The writer thread never
//! blocks on it, so callers never wait on a broken disk; lines that do not fit in the retry buffer
//! are counted as lost in [`StreamStats`](super::StreamStats). Writing resumes as soon as the cause
//! goes away, starting with the retained lines.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::series::Series;
use super::{lock, Counters, Destination, Health};
use crate::time::render_seconds;

/// A time period for rotation (UTC boundaries).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    /// A new file every hour: `app.log.2026-11-21T13`.
    Hourly,
    /// A new file every day: `app.log.2026-11-21`.
    Daily,
}

impl Period {
    fn seconds(self) -> u64 {
        match self {
            Period::Hourly => 3600,
            Period::Daily => 86_400,
        }
    }

    /// The label of the period that contains `secs`.
    fn label(self, secs: u64) -> String {
        let start = secs - secs % self.seconds();
        let rendered = render_seconds(start, b'T');
        let text = String::from_utf8_lossy(&rendered);
        match self {
            Period::Hourly => text[..13].to_owned(),
            Period::Daily => text[..10].to_owned(),
        }
    }
}

impl std::str::FromStr for Period {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s.trim().to_ascii_lowercase().as_str() {
            "hourly" | "hour" => Ok(Period::Hourly),
            "daily" | "day" => Ok(Period::Daily),
            _ => Err(()),
        }
    }
}

/// How a file rotates and what is kept.
///
/// ```
/// use std::time::Duration;
/// use tracelight::sink::{Period, Rotation};
/// // 50 MiB files, 10 of them kept, gzip-compressed:
/// let by_size = Rotation::size(50 * 1024 * 1024).backups(10);
/// // a file a day, two weeks kept, and never more than 1 GiB in one file:
/// let daily = Rotation::every(Period::Daily)
///     .max_bytes(1 << 30)
///     .max_age(Duration::from_secs(14 * 86_400));
/// # let _ = (by_size, daily);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    pub(crate) max_bytes: Option<u64>,
    pub(crate) period: Option<Period>,
    pub(crate) backups: usize,
    pub(crate) max_age: Option<Duration>,
    pub(crate) max_total_bytes: Option<u64>,
    pub(crate) compress: bool,
}

/// Default size limit of a file: 10 MiB.
pub const DEFAULT_MAX_BYTES: u64 = 10 * 1024 * 1024;
/// Default number of rotated files kept: 5.
pub const DEFAULT_BACKUPS: usize = 5;

impl Default for Rotation {
    /// 10 MiB files, 5 backups, compressed.
    fn default() -> Self {
        Rotation::size(DEFAULT_MAX_BYTES)
    }
}

impl Rotation {
    /// Rotates when a file would exceed `max_bytes`; keeps 5 compressed backups.
    pub fn size(max_bytes: u64) -> Rotation {
        Rotation {
            max_bytes: Some(max_bytes.max(1)),
            period: None,
            backups: DEFAULT_BACKUPS,
            max_age: None,
            max_total_bytes: None,
            compress: true,
        }
    }

    /// Rotates every hour or day (UTC); keeps 5 compressed backups.
    pub fn every(period: Period) -> Rotation {
        Rotation {
            max_bytes: None,
            period: Some(period),
            backups: DEFAULT_BACKUPS,
            max_age: None,
            max_total_bytes: None,
            compress: true,
        }
    }

    /// Never rotates (the file grows without limit).
    pub fn never() -> Rotation {
        Rotation {
            max_bytes: None,
            period: None,
            backups: 0,
            max_age: None,
            max_total_bytes: None,
            compress: false,
        }
    }

    /// Also rotates when a file would exceed `max_bytes`.
    pub fn max_bytes(mut self, max_bytes: u64) -> Rotation {
        self.max_bytes = Some(max_bytes.max(1));
        self
    }

    /// Also rotates every hour or day.
    pub fn period(mut self, period: Period) -> Rotation {
        self.period = Some(period);
        self
    }

    /// How many rotated files are kept (0: rotated files are removed).
    pub fn backups(mut self, n: usize) -> Rotation {
        self.backups = n;
        self
    }

    /// Removes rotated files older than `age`.
    pub fn max_age(mut self, age: Duration) -> Rotation {
        self.max_age = Some(age);
        self
    }

    /// The disk bound: rotated files of the stream hold at most `bytes` together (compressed or
    /// not yet), the oldest going first. The live file is bounded by
    /// [`max_bytes`](Rotation::max_bytes).
    ///
    /// ```
    /// use tracelight::sink::Rotation;
    /// let r = Rotation::size(10 << 20).backups(100).max_total_bytes(200 << 20);
    /// # let _ = r;
    /// ```
    pub fn max_total_bytes(mut self, bytes: u64) -> Rotation {
        self.max_total_bytes = Some(bytes);
        self
    }

    /// Whether rotated files are gzip-compressed (in the background). Default on.
    pub fn compress(mut self, on: bool) -> Rotation {
        self.compress = on;
        self
    }

    pub(crate) fn rotates(&self) -> bool {
        self.max_bytes.is_some() || self.period.is_some()
    }

    /// Why this rotation cannot work, if it cannot: a disk bound must leave room for the files it
    /// bounds (a rotated file and its compressed copy while it is written).
    pub(crate) fn check(&self) -> Result<(), String> {
        match (self.max_total_bytes, self.max_bytes) {
            (Some(_), None) => Err(
                "a disk bound (max_total_bytes) needs a size limit (max_bytes) for the files it bounds"
                    .into(),
            ),
            (Some(bound), Some(max)) if bound < max.saturating_mul(2) => Err(format!(
                "a disk bound of {bound} bytes is less than twice the file size limit ({max} bytes): \
                 a rotated file and its compressed copy must fit"
            )),
            _ => Ok(()),
        }
    }
}

/// A file output: a path and its rotation.
///
/// ```
/// use tracelight::sink::{FileOptions, Rotation};
/// let opts = FileOptions::new("/var/log/shop/app.log").rotation(Rotation::size(1 << 20).backups(3));
/// assert_eq!(opts.path().file_name().unwrap(), "app.log");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileOptions {
    pub(crate) path: PathBuf,
    pub(crate) rotation: Rotation,
}

impl FileOptions {
    /// A file at `path`, with the default [`Rotation`].
    pub fn new(path: impl Into<PathBuf>) -> FileOptions {
        FileOptions {
            path: path.into(),
            rotation: Rotation::default(),
        }
    }

    /// Sets the rotation.
    pub fn rotation(mut self, rotation: Rotation) -> FileOptions {
        self.rotation = rotation;
        self
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn rotation_ref(&self) -> &Rotation {
        &self.rotation
    }
}

/// Whether a log file can be written: its directory exists or can be created, and the file can
/// be opened for appending (it is created if missing, and left as it is).
pub(crate) fn check_writable(path: &Path, rotates: bool) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    OpenOptions::new().create(true).append(true).open(path)?;
    if rotates {
        // Rotation creates files beside it: the directory must take new files too.
        let probe = dir.join(format!(
            ".{}.tracelight-probe",
            path.file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
        ));
        OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&probe)?;
        let _ = fs::remove_file(&probe);
    }
    Ok(())
}

/// What the archiver does with one rotated file: compress it (if the rotation says so) and
/// apply retention to its series.
struct Job {
    path: PathBuf,
    series: Arc<Series>,
}

#[derive(Default)]
struct ArchiverState {
    pending: usize,
}

/// The background thread that compresses, names and prunes rotated files.
pub(crate) struct Archiver {
    tx: Mutex<Option<Sender<Job>>>,
    state: Arc<(Mutex<ArchiverState>, Condvar)>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Archiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Archiver").finish_non_exhaustive()
    }
}

impl Archiver {
    pub(crate) fn start() -> io::Result<Arc<Archiver>> {
        let (tx, rx) = mpsc::channel::<Job>();
        let state: Arc<(Mutex<ArchiverState>, Condvar)> = Arc::default();
        let worker_state = Arc::clone(&state);
        let thread = std::thread::Builder::new()
            .name("tracelight-archiver".into())
            .spawn(move || {
                for job in rx {
                    if let Err(e) = job.series.archive(&job.path) {
                        crate::util::say(format!(
                            "tracelight: cannot archive rotated file {}: {e}",
                            job.path.display()
                        ));
                    }
                    let (m, cv) = &*worker_state;
                    lock(m).pending -= 1;
                    cv.notify_all();
                }
            })?;
        Ok(Arc::new(Archiver {
            tx: Mutex::new(Some(tx)),
            state,
            thread: Mutex::new(Some(thread)),
        }))
    }

    fn submit(&self, job: Job) {
        let tx = lock(&self.tx);
        let Some(tx) = tx.as_ref() else {
            // Stopped: archive on this thread rather than leave a file uncompressed.
            let _ = job.series.archive(&job.path);
            return;
        };
        lock(&self.state.0).pending += 1;
        if let Err(mpsc::SendError(job)) = tx.send(job) {
            lock(&self.state.0).pending -= 1;
            let _ = job.series.archive(&job.path);
        }
    }

    /// Waits until every submitted file is archived.
    pub(crate) fn wait_idle(&self) {
        let (m, cv) = &*self.state;
        let mut s = lock(m);
        while s.pending > 0 {
            s = cv.wait(s).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Archives what is pending and stops the thread.
    pub(crate) fn shutdown(&self) {
        self.wait_idle();
        lock(&self.tx).take();
        if let Some(t) = lock(&self.thread).take() {
            let _ = t.join();
        }
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

#[cfg(unix)]
fn inode(m: &fs::Metadata) -> u64 {
    use std::os::unix::fs::MetadataExt;
    m.ino()
}

#[cfg(not(unix))]
fn inode(m: &fs::Metadata) -> u64 {
    m.len()
}

/// How long the live file goes unchecked for removal or replacement.
const CHECK_EVERY: Duration = Duration::from_secs(1);
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// A file written by the writer thread, with rotation, reopen and retry.
pub(crate) struct RollingFile {
    path: PathBuf,
    dir: PathBuf,
    rotation: Rotation,
    file: Option<File>,
    size: u64,
    /// Start (in seconds) of the period the live file belongs to.
    period_start: Option<u64>,
    ino: Option<u64>,
    last_check: Instant,
    /// The live file ends in the middle of a line (after a failed write): do not rotate it yet.
    partial: bool,
    /// The rotated files: names, retention, recovery.
    series: Arc<Series>,
    archiver: Arc<Archiver>,
    /// Lines not written yet because writing failed; retried with a backoff.
    retry: Vec<u8>,
    retry_cap: usize,
    retry_at: Option<Instant>,
    backoff: Duration,
}

impl RollingFile {
    /// A rolling file; opening happens on the first write, so a missing directory is not an error
    /// at start-up but a counted, reported write error until it can be created.
    pub(crate) fn new(
        opts: &FileOptions,
        archiver: Arc<Archiver>,
        retry_cap: usize,
    ) -> RollingFile {
        let path = opts.path.clone();
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        let name = path.file_name().map_or_else(
            || "app.log".to_owned(),
            |n| n.to_string_lossy().into_owned(),
        );
        let series = Arc::new(Series::new(
            dir.clone(),
            name.clone(),
            opts.rotation.clone(),
        ));
        let f = RollingFile {
            path,
            dir,
            rotation: opts.rotation.clone(),
            file: None,
            size: 0,
            period_start: None,
            ino: None,
            last_check: Instant::now(),
            partial: false,
            series,
            archiver,
            retry: Vec::new(),
            retry_cap: retry_cap.max(64 * 1024),
            retry_at: None,
            backoff: FIRST_BACKOFF,
        };
        f.recover();
        // Open at once so every stream's file is there from the start; if that fails, the first
        // write tries again, and counts and reports the failure.
        let mut f = f;
        if f.open().is_ok() && f.partial_at_start() {
            // The last line was cut short by a crash or a kill. Where rotated files are kept, the
            // file is rotated out as it is, so that line stays the last of its file and the next
            // line starts a new one whole; where they are not (no rotation, or no backups), the
            // cut line is ended with a newline, so the next line is whole all the same.
            if f.rotation.rotates() && f.series.keeps_files() {
                let _ = f.rotate(&Counters::default());
            } else if let Some(file) = f.file.as_mut() {
                if file.write_all(b"\n").is_ok() {
                    f.size += 1;
                }
            }
        }
        f
    }

    /// Whether the live file, as found at start, ends in the middle of a line.
    fn partial_at_start(&self) -> bool {
        self.size > 0 && !super::series::ends_with_newline(&self.path).unwrap_or(true)
    }

    /// Finishes what an earlier process left in the directory (see [`Series::recover`]).
    fn recover(&self) {
        if !self.rotation.rotates() {
            return;
        }
        for path in self.series.recover() {
            self.archiver.submit(Job {
                path,
                series: Arc::clone(&self.series),
            });
        }
    }

    fn open(&mut self) -> io::Result<()> {
        fs::create_dir_all(&self.dir)?;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        let meta = file.metadata()?;
        self.size = meta.len();
        self.ino = Some(inode(&meta));
        self.partial = false;
        if let Some(p) = self.rotation.period {
            // An existing file belongs to the period it was last written in.
            let secs = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map_or_else(now_secs, |d| d.as_secs());
            let secs = if self.size == 0 { now_secs() } else { secs };
            self.period_start = Some(secs - secs % p.seconds());
        }
        self.file = Some(file);
        self.last_check = Instant::now();
        Ok(())
    }

    /// Opens the file if needed, and reopens it if it was removed or replaced under us.
    fn ensure_open(&mut self) -> io::Result<()> {
        if self.file.is_some() && self.last_check.elapsed() >= CHECK_EVERY {
            self.last_check = Instant::now();
            let current = fs::metadata(&self.path).ok().map(|m| inode(&m));
            if current.is_none() || current != self.ino {
                self.file = None;
            }
        }
        if self.file.is_none() {
            self.open()?;
        }
        Ok(())
    }

    fn rotate(&mut self, c: &Counters) -> io::Result<()> {
        if let Some(f) = self.file.as_mut() {
            f.flush()?;
        }
        self.file = None;
        let label = match (self.rotation.period, self.period_start) {
            (Some(p), Some(start)) => Some(p.label(start)),
            (Some(p), None) => Some(p.label(now_secs())),
            _ => None,
        };
        if let Some(path) = self.series.rotate_out(&self.path, label.as_deref(), c)? {
            self.archiver.submit(Job {
                path,
                series: Arc::clone(&self.series),
            });
        }
        self.open()
    }

    /// Writes whole lines, rotating between them. On error, returns how many bytes of `data`
    /// reached the file.
    fn write_lines(&mut self, data: &[u8], c: &Counters) -> Result<(), (io::Error, usize)> {
        self.ensure_open().map_err(|e| (e, 0))?;
        if let (Some(p), Some(start), false) =
            (self.rotation.period, self.period_start, self.partial)
        {
            if now_secs() >= start + p.seconds() && self.size > 0 {
                self.rotate(c).map_err(|e| (e, 0))?;
            } else if now_secs() >= start + p.seconds() {
                let now = now_secs();
                self.period_start = Some(now - now % p.seconds());
            }
        }
        let mut done = 0;
        while done < data.len() {
            let rest = &data[done..];
            let chunk = match self.rotation.max_bytes {
                Some(max) if !self.partial => {
                    let room = max.saturating_sub(self.size);
                    if rest.len() as u64 <= room {
                        rest.len()
                    } else {
                        let window = &rest[..room.min(rest.len() as u64) as usize];
                        match memchr::memrchr(b'\n', window) {
                            Some(i) => i + 1,
                            None if self.size > 0 => {
                                self.rotate(c).map_err(|e| (e, done))?;
                                continue;
                            }
                            // One line longer than the limit: it goes whole into a file of its own.
                            None => memchr::memchr(b'\n', rest).map_or(rest.len(), |i| i + 1),
                        }
                    }
                }
                // After a partial write, finish the line before anything else.
                _ if self.partial => memchr::memchr(b'\n', rest).map_or(rest.len(), |i| i + 1),
                _ => rest.len(),
            };
            let piece = &rest[..chunk];
            let Some(file) = self.file.as_mut() else {
                return Err((io::Error::other("file not open"), done));
            };
            let mut written = 0;
            while written < piece.len() {
                match file.write(&piece[written..]) {
                    Ok(0) => {
                        self.note_written(&piece[..written], c);
                        return Err((
                            io::Error::new(io::ErrorKind::WriteZero, "wrote 0 bytes"),
                            done + written,
                        ));
                    }
                    Ok(n) => written += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        self.note_written(&piece[..written], c);
                        return Err((e, done + written));
                    }
                }
            }
            self.note_written(piece, c);
            done += chunk;
            if self.rotation.max_bytes.is_some_and(|m| self.size >= m)
                && !self.partial
                && done < data.len()
            {
                self.rotate(c).map_err(|e| (e, done))?;
            }
        }
        Ok(())
    }

    fn note_written(&mut self, bytes: &[u8], c: &Counters) {
        if bytes.is_empty() {
            return;
        }
        self.size += bytes.len() as u64;
        self.partial = bytes.last() != Some(&b'\n');
        let lines = memchr::memchr_iter(b'\n', bytes).count() as u64;
        c.events.fetch_add(lines, Ordering::Relaxed);
        c.bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
    }

    /// Keeps `bytes` for a later retry, dropping the oldest whole lines beyond the cap.
    fn keep(&mut self, bytes: &[u8], c: &Counters) {
        self.retry.extend_from_slice(bytes);
        if self.retry.len() > self.retry_cap {
            let excess = self.retry.len() - self.retry_cap;
            let cut = memchr::memchr(b'\n', &self.retry[excess..])
                .map_or(self.retry.len(), |i| excess + i + 1);
            let lost = memchr::memchr_iter(b'\n', &self.retry[..cut]).count() as u64;
            c.lost.fetch_add(lost.max(1), Ordering::Relaxed);
            self.retry.drain(..cut);
        }
    }

    fn fail(&mut self, e: io::Error, unwritten: &[u8], c: &Counters) -> io::Error {
        c.write_errors.fetch_add(1, Ordering::Relaxed);
        self.keep(unwritten, c);
        self.retry_at = Some(Instant::now() + self.backoff);
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        // A file handle that failed may be stale (removed directory, revoked mount): reopen next time.
        if !self.partial {
            self.file = None;
        }
        e
    }
}

impl Destination for RollingFile {
    fn write_batch(&mut self, bytes: &[u8], c: &Counters) -> Health {
        let failing = self.retry_at.is_some();
        if failing {
            self.keep(bytes, c);
            if self.retry_at.is_some_and(|t| Instant::now() < t) {
                return Health::StillFailing;
            }
            let data = std::mem::take(&mut self.retry);
            return match self.write_lines(&data, c) {
                Ok(()) => {
                    self.retry_at = None;
                    self.backoff = FIRST_BACKOFF;
                    Health::Recovered
                }
                Err((e, done)) => {
                    let _ = self.fail(e, &data[done..], c);
                    Health::StillFailing
                }
            };
        }
        match self.write_lines(bytes, c) {
            Ok(()) => Health::Ok,
            Err((e, done)) => Health::Failed(self.fail(e, &bytes[done..], c)),
        }
    }

    fn in_pieces(&self) -> bool {
        true
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.file.as_mut() {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }

    fn pending_retry(&self) -> bool {
        self.retry_at.is_some()
    }
}

impl Drop for RollingFile {
    fn drop(&mut self) {
        if !self.retry.is_empty() {
            // Last chance at shutdown: one more try, no backoff.
            let data = std::mem::take(&mut self.retry);
            let c = Counters::default();
            if self.write_lines(&data, &c).is_err() {
                let lines = memchr::memchr_iter(b'\n', &data).count();
                crate::util::say(format!(
                    "tracelight: {lines} lines could not be written to {} before exit",
                    self.path.display()
                ));
            }
        }
        if self.rotation.rotates() {
            let _ = self.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn period_labels() {
        // 2026-11-21T13:45:10Z
        let t = 1795268710;
        assert_eq!(Period::Daily.label(t), "2026-11-21");
        assert_eq!(Period::Hourly.label(t), "2026-11-21T13");
    }
}
