//! Writers: the bounded queues, the background writer threads, and the destinations.
//!
//! A line is formatted on the caller's thread into a reused buffer and copied into its stream's
//! pending buffer under one short lock. Each destination has its own queue and writer thread
//! (streams to stdout share one, as they share the file descriptor), which swaps the pending
//! buffers out and writes each stream's bytes in one call. Nothing is allocated per event once the
//! buffers have grown to their working size, and all I/O happens off the caller's thread; a
//! destination that stops holds up neither the callers for long nor the other destinations.
//!
//! **Lossless by default.** When the pending bytes reach a queue's capacity the caller waits for
//! that destination's writer, as long as it makes progress. A destination that makes no progress
//! for the block timeout ([`Builder::block_timeout`](crate::Builder::block_timeout),
//! `LOG_BLOCK_TIMEOUT`, 1 s by default: a pipe whose reader stopped) has its lines dropped and
//! counted until it gets through; then a line in its stream says how many, and stderr says so once.
//! In lossy mode ([`Builder::lossy`](crate::Builder::lossy)) a line is dropped as soon as its
//! queue is full, counted per stream, and the writer puts a line into that stream saying how many
//! were dropped.
//!
//! **Faults.** A write error (a full disk, a removed directory) is counted in the stream's
//! [`StreamStats`], reported once on stderr, and the writer carries on: the next batch is tried
//! again and writing resumes when the cause goes away. The writer thread never takes the caller down:
//! if it ever stopped, callers write synchronously instead of waiting on it.

use std::io::{self, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use smallvec::SmallVec;

mod file;
mod series;
mod writer;

pub(crate) use file::{check_writable, Archiver, RollingFile};
pub use file::{FileOptions, Period, Rotation, DEFAULT_BACKUPS, DEFAULT_MAX_BYTES};
pub(crate) use writer::flush_all_at_exit;
pub use writer::{FileGuard, FileLineWriter, FileWriter, FileWriterBuilder};

/// A synchronous destination for whole lines, called on the thread that logs.
///
/// Implement it to capture output in tests or to feed another system; the built-in outputs
/// (stdout, stderr, files) go through the background writer instead.
///
/// ```
/// use tracelight::sink::{LineWriter, MemoryWriter};
/// let w = MemoryWriter::new();
/// w.write_line(b"{\"a\":1}\n");
/// assert_eq!(w.lines(), vec!["{\"a\":1}".to_string()]);
/// ```
pub trait LineWriter: Send + Sync + 'static {
    /// Writes one line, newline included.
    fn write_line(&self, line: &[u8]);
    /// Flushes buffered lines, if the writer buffers.
    fn flush(&self) {}
}

/// A [`LineWriter`] that keeps every line in memory; clones share the same buffer.
///
/// ```
/// let w = tracelight::sink::MemoryWriter::new();
/// let _g = tracelight::builder().writer(w.clone()).init_local().unwrap();
/// tracing::info!(answer = 42, "hello");
/// let line: serde_json::Value = serde_json::from_str(&w.lines()[0]).unwrap();
/// assert_eq!(line["answer"], 42);
/// ```
#[derive(Debug, Clone, Default)]
pub struct MemoryWriter {
    buf: Arc<Mutex<Vec<u8>>>,
}

impl MemoryWriter {
    /// An empty writer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Everything written so far.
    pub fn contents(&self) -> String {
        String::from_utf8_lossy(&lock(&self.buf)).into_owned()
    }

    /// Every line written so far, without newlines.
    pub fn lines(&self) -> Vec<String> {
        self.contents().lines().map(str::to_owned).collect()
    }

    /// Forgets everything written so far.
    pub fn clear(&self) {
        lock(&self.buf).clear();
    }
}

impl LineWriter for MemoryWriter {
    fn write_line(&self, line: &[u8]) {
        lock(&self.buf).extend_from_slice(line);
    }
}

/// A [`LineWriter`] that counts lines and bytes and keeps nothing (for benchmarks).
#[derive(Debug, Default)]
pub struct CountingWriter {
    /// Lines written.
    pub lines: AtomicU64,
    /// Bytes written.
    pub bytes: AtomicU64,
}

impl LineWriter for CountingWriter {
    fn write_line(&self, line: &[u8]) {
        self.lines.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(line.len() as u64, Ordering::Relaxed);
    }
}

impl<W: LineWriter> LineWriter for Arc<W> {
    fn write_line(&self, line: &[u8]) {
        (**self).write_line(line)
    }
    fn flush(&self) {
        (**self).flush()
    }
}

pub(crate) use crate::util::lock;

/// Statistics of one stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StreamStats {
    /// The stream's name.
    pub name: String,
    /// Lines written (or handed to a custom writer).
    pub events: u64,
    /// Bytes written.
    pub bytes: u64,
    /// Lines dropped because the queue was full (lossy mode only).
    pub dropped: u64,
    /// Of those, the lines dropped because the destination made no progress for the block
    /// timeout (a stalled stdout); the rest were dropped with the queue full in lossy mode.
    pub stalled: u64,
    /// Failed write attempts (a full disk, a missing directory…); retries count again.
    pub write_errors: u64,
    /// Lines given up after failed writes, when the retry buffer was full.
    pub lost: u64,
    /// File rotations.
    pub rotations: u64,
    /// Rotations that found earlier rotated files still waiting for compression (compression
    /// falls behind; the disk bound still holds).
    pub compression_behind: u64,
}

/// Live counters of one stream, updated by the writer thread.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) events: AtomicU64,
    pub(crate) bytes: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) stalled: AtomicU64,
    pub(crate) write_errors: AtomicU64,
    pub(crate) lost: AtomicU64,
    pub(crate) rotations: AtomicU64,
    pub(crate) compression_behind: AtomicU64,
}

impl Counters {
    pub(crate) fn snapshot(&self, name: &str) -> StreamStats {
        StreamStats {
            name: name.to_owned(),
            events: self.events.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            stalled: self.stalled.load(Ordering::Relaxed),
            write_errors: self.write_errors.load(Ordering::Relaxed),
            lost: self.lost.load(Ordering::Relaxed),
            rotations: self.rotations.load(Ordering::Relaxed),
            compression_behind: self.compression_behind.load(Ordering::Relaxed),
        }
    }
}

/// The outcome of one write to a destination, for reporting.
pub(crate) enum Health {
    /// Written.
    Ok,
    /// The first failure after a success: reported on stderr.
    Failed(io::Error),
    /// Still failing: counted, not reported again.
    StillFailing,
    /// Written again after failures: reported on stderr.
    Recovered,
}

/// Where a stream's batches go, on the writer thread. A destination updates the stream's
/// counters itself (events and bytes written, write errors, rotations).
pub(crate) trait Destination: Send {
    /// Writes a batch of whole lines.
    fn write_batch(&mut self, bytes: &[u8], counters: &Counters) -> Health;
    /// Flushes what the destination buffers.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
    /// A short description for error reports (a path, `stdout`).
    fn describe(&self) -> String;
    /// Whether lines wait for a retry (the writer then wakes up on its own to retry).
    fn pending_retry(&self) -> bool {
        false
    }
    /// Streams whose destinations have the same key share one queue and one writer (`stdout`,
    /// `stderr`: one file descriptor, whose lines must not interleave); `None`: a queue of its
    /// own.
    fn shared_key(&self) -> Option<&'static str> {
        None
    }
    /// Whether a batch may be written in pieces (at line ends), so that progress through a long
    /// batch to a slow reader shows.
    fn in_pieces(&self) -> bool {
        false
    }
}

/// Writes to a standard stream; a failed batch is counted (lines lost), not retried.
fn write_std(out: &mut dyn Write, bytes: &[u8], c: &Counters, was_failing: &mut bool) -> Health {
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => {
            c.events.fetch_add(
                memchr::memchr_iter(b'\n', bytes).count() as u64,
                Ordering::Relaxed,
            );
            c.bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
            if std::mem::take(was_failing) {
                Health::Recovered
            } else {
                Health::Ok
            }
        }
        Err(e) => {
            c.write_errors.fetch_add(1, Ordering::Relaxed);
            c.lost.fetch_add(
                memchr::memchr_iter(b'\n', bytes).count() as u64,
                Ordering::Relaxed,
            );
            if std::mem::replace(was_failing, true) {
                Health::StillFailing
            } else {
                Health::Failed(e)
            }
        }
    }
}

/// The process's standard output.
#[derive(Default)]
pub(crate) struct Stdout {
    failing: bool,
}

impl Destination for Stdout {
    fn write_batch(&mut self, bytes: &[u8], c: &Counters) -> Health {
        write_std(&mut io::stdout().lock(), bytes, c, &mut self.failing)
    }
    fn describe(&self) -> String {
        "stdout".into()
    }
    fn shared_key(&self) -> Option<&'static str> {
        Some("stdout")
    }
    fn in_pieces(&self) -> bool {
        true
    }
}

/// The process's standard error.
#[derive(Default)]
pub(crate) struct Stderr {
    failing: bool,
}

impl Destination for Stderr {
    fn write_batch(&mut self, bytes: &[u8], c: &Counters) -> Health {
        write_std(&mut io::stderr().lock(), bytes, c, &mut self.failing)
    }
    fn describe(&self) -> String {
        "stderr".into()
    }
    fn shared_key(&self) -> Option<&'static str> {
        Some("stderr")
    }
    fn in_pieces(&self) -> bool {
        true
    }
}

/// Why lines of a stream were not written, for the line that says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Loss {
    /// Lossy mode, the queue full.
    QueueFull,
    /// The destination made no progress for the block timeout.
    Stalled(Duration),
    /// The destination could not be written (a full disk); said when writing resumes.
    WriteFailed,
}

/// Builds the line that reports lines not written: `(stream name, count, why)`.
pub(crate) type DropReport = Box<dyn Fn(&str, u64, Loss) -> Vec<u8> + Send + Sync>;

/// How long a destination may make no write progress before its lines are dropped and counted
/// instead of waited for (`LOG_BLOCK_TIMEOUT`).
pub const DEFAULT_BLOCK_TIMEOUT: Duration = Duration::from_secs(1);

/// The largest piece of a batch written at once to a destination written in pieces.
const PIECE: usize = 64 * 1024;

struct Pending {
    bufs: Vec<Vec<u8>>,
    dropped: Vec<u64>,
    /// Dropped while the destination made no progress.
    stalled_dropped: Vec<u64>,
    total: usize,
    /// Number of `push` calls accepted so far.
    enqueued: u64,
    /// `enqueued` as of the last batch the writer finished.
    written: u64,
    writer_sleeping: bool,
    /// The writer holds a batch (is writing, outside the lock).
    busy: bool,
    /// The destination made no progress for the block timeout: lines are dropped and counted
    /// until the writer gets through its batch.
    stalled: bool,
    /// Threads waiting on `progress` (full queue, flush): notify only when there are some.
    waiters: usize,
    shutdown: bool,
}

/// One destination's queue and writer thread (streams to stdout share one).
struct Lane {
    pending: Mutex<Pending>,
    wake_writer: Condvar,
    progress: Condvar,
    capacity: usize,
    lossy: bool,
    block_timeout: Duration,
    writer_alive: AtomicBool,
    /// When the writer last moved (took a batch, wrote a piece), in nanoseconds since `epoch`.
    moved_ns: AtomicU64,
    epoch: Instant,
    /// Destinations, locked by the writer while it writes; used directly once it has stopped.
    dests: Mutex<Vec<Box<dyn Destination>>>,
    names: Vec<String>,
    counters: Vec<Arc<Counters>>,
    drop_report: Arc<DropReport>,
}

impl Lane {
    fn moved(&self) {
        let ns = u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.moved_ns.store(ns, Ordering::Release);
    }

    /// How long since the writer last moved.
    fn since_moved(&self) -> Duration {
        self.epoch
            .elapsed()
            .saturating_sub(Duration::from_nanos(self.moved_ns.load(Ordering::Acquire)))
    }

    fn push(&self, items: &[(usize, &[u8])]) {
        let len: usize = items.iter().map(|(_, l)| l.len()).sum();
        let mut p = lock(&self.pending);
        loop {
            if !self.writer_alive.load(Ordering::Acquire) || p.shutdown {
                drop(p);
                self.write_direct(items);
                return;
            }
            if p.stalled {
                for (idx, _) in items {
                    p.stalled_dropped[*idx] += 1;
                }
                return;
            }
            if p.total == 0 || p.total + len <= self.capacity {
                break;
            }
            if self.lossy {
                for (idx, _) in items {
                    p.dropped[*idx] += 1;
                }
                return;
            }
            // Full: wait while the destination makes progress; past the block timeout without
            // any, drop and count until it gets through.
            let since = self.since_moved();
            if p.busy && since >= self.block_timeout {
                p.stalled = true;
                for (idx, _) in items {
                    p.stalled_dropped[*idx] += 1;
                }
                if p.waiters > 0 {
                    self.progress.notify_all();
                }
                return;
            }
            p.writer_sleeping = false;
            self.wake_writer.notify_one();
            p.waiters += 1;
            let wait = self
                .block_timeout
                .saturating_sub(since)
                .clamp(Duration::from_millis(1), Duration::from_millis(50));
            p = self
                .progress
                .wait_timeout(p, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
            p.waiters -= 1;
        }
        self.append(&mut p, items, len);
    }

    fn try_push(&self, items: &[(usize, &[u8])]) {
        let len: usize = items.iter().map(|(_, l)| l.len()).sum();
        let Ok(mut p) = self.pending.try_lock() else {
            for (idx, _) in items {
                self.counters[*idx].dropped.fetch_add(1, Ordering::Relaxed);
            }
            return;
        };
        if !self.writer_alive.load(Ordering::Acquire) || p.shutdown {
            drop(p);
            self.write_direct(items);
            return;
        }
        if p.stalled {
            for (idx, _) in items {
                p.stalled_dropped[*idx] += 1;
            }
            return;
        }
        if p.total != 0 && p.total + len > self.capacity {
            for (idx, _) in items {
                p.dropped[*idx] += 1;
            }
            return;
        }
        self.append(&mut p, items, len);
    }

    /// Appends `items` (`len` bytes in all) to the pending buffers, waking the writer if it
    /// sleeps.
    #[inline]
    fn append(&self, p: &mut Pending, items: &[(usize, &[u8])], len: usize) {
        for (idx, line) in items {
            p.bufs[*idx].extend_from_slice(line);
        }
        p.total += len;
        p.enqueued += 1;
        if p.writer_sleeping {
            p.writer_sleeping = false;
            self.wake_writer.notify_one();
        }
    }

    /// Writes on the caller's thread: used once the writer thread has stopped (after shutdown).
    #[cold]
    fn write_direct(&self, items: &[(usize, &[u8])]) {
        // A writer left stuck on its destination at shutdown still holds it: count, never wait.
        let mut dests = match self.dests.try_lock() {
            Ok(d) => d,
            Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => {
                for (idx, _) in items {
                    self.counters[*idx].dropped.fetch_add(1, Ordering::Relaxed);
                    self.counters[*idx].stalled.fetch_add(1, Ordering::Relaxed);
                }
                return;
            }
        };
        for (idx, line) in items {
            if let Some(d) = dests.get_mut(*idx) {
                self.write_one(*idx, d.as_mut(), line);
                let _ = d.flush();
            }
        }
    }

    /// Waits until every line queued before the call is written, giving up once the writer has
    /// made no progress for `bound`. Never blocks on the queue's lock for longer than that
    /// either, so it is safe at process exit. Returns whether every line was written.
    fn flush_bounded(&self, bound: Duration) -> bool {
        let mut deadline = Instant::now() + bound;
        let mut target = None;
        let mut last_written = None;
        loop {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            let p = match self.pending.try_lock() {
                Ok(p) => p,
                Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
                Err(std::sync::TryLockError::WouldBlock) => {
                    std::thread::sleep(Duration::from_millis(1));
                    continue;
                }
            };
            let target = *target.get_or_insert(p.enqueued);
            if p.written >= target || !self.writer_alive.load(Ordering::Acquire) {
                return p.written >= target;
            }
            if last_written.is_some_and(|w| w < p.written) || self.since_moved() < bound / 4 {
                // Progress: the bound counts from the last time the writer moved.
                deadline = now + bound;
            }
            last_written = Some(p.written);
            let mut p = p;
            p.writer_sleeping = false;
            self.wake_writer.notify_one();
            p.waiters += 1;
            let wait = deadline
                .saturating_duration_since(now)
                .min(Duration::from_millis(50));
            let (mut p, _) = self
                .progress
                .wait_timeout(p, wait)
                .unwrap_or_else(|e| e.into_inner());
            p.waiters -= 1;
        }
    }

    /// Writes one batch to the destination of stream `idx`, in pieces when it takes them.
    fn write_one(&self, idx: usize, dest: &mut dyn Destination, bytes: &[u8]) -> Health {
        if !dest.in_pieces() || bytes.len() <= PIECE {
            let health = dest.write_batch(bytes, &self.counters[idx]);
            self.moved();
            self.report(idx, dest, &health);
            return health;
        }
        let mut rest = bytes;
        let mut worst = Health::Ok;
        while !rest.is_empty() {
            let cut = if rest.len() <= PIECE {
                rest.len()
            } else {
                memchr::memrchr(b'\n', &rest[..PIECE]).map_or(rest.len(), |i| i + 1)
            };
            let health = dest.write_batch(&rest[..cut], &self.counters[idx]);
            self.moved();
            self.report(idx, dest, &health);
            // What the batch as a whole tells: a failure over a recovery over the rest.
            let rank = |h: &Health| match h {
                Health::Failed(_) => 3,
                Health::Recovered => 2,
                Health::StillFailing => 1,
                Health::Ok => 0,
            };
            if rank(&health) > rank(&worst) {
                worst = health;
            }
            rest = &rest[cut..];
        }
        worst
    }

    fn report(&self, idx: usize, dest: &dyn Destination, health: &Health) {
        match health {
            Health::Ok | Health::StillFailing => {}
            Health::Failed(e) => crate::util::say(format!(
                "tracelight: stream `{}`: cannot write to {}: {e}; counting write errors, retrying, and saying so here when it works again",
                self.names[idx],
                dest.describe()
            )),
            Health::Recovered => crate::util::say(format!(
                "tracelight: stream `{}`: writing to {} again",
                self.names[idx],
                dest.describe()
            )),
        }
    }

    /// Whether the writer holds a batch it has made no progress on for the block timeout.
    fn stuck(&self) -> bool {
        let busy = match self.pending.try_lock() {
            Ok(p) => p.busy,
            Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner().busy,
            Err(std::sync::TryLockError::WouldBlock) => return false,
        };
        busy && self.since_moved() >= self.block_timeout
    }
}

/// Whether stdout and stderr are the same open file or pipe.
fn std_streams_are_one() -> bool {
    #[cfg(unix)]
    {
        use std::os::fd::AsFd as _;
        use std::os::unix::fs::MetadataExt as _;
        let id = |fd: std::os::fd::BorrowedFd<'_>| {
            let file = std::fs::File::from(fd.try_clone_to_owned().ok()?);
            let m = file.metadata().ok()?;
            Some((m.dev(), m.ino()))
        };
        let (out, err) = (io::stdout(), io::stderr());
        matches!((id(out.as_fd()), id(err.as_fd())), (Some(a), Some(b)) if a == b)
    }
    #[cfg(not(unix))]
    {
        false
    }
}

/// A stream's name, destination and counters, as the queue is started with.
pub(crate) type StreamDest = (String, Box<dyn Destination>, Arc<Counters>);

/// The bounded queues in front of the background writers: one per destination (the streams to
/// stdout share one), so that a destination that stops stops none of the others. Cheap to
/// clone.
#[derive(Clone)]
pub(crate) struct Queue {
    lanes: Arc<[Arc<Lane>]>,
    /// Per stream: its lane and its index in the lane.
    route: Arc<[(usize, usize)]>,
    threads: Arc<Mutex<Vec<JoinHandle<()>>>>,
    archiver: Option<Arc<Archiver>>,
    block_timeout: Duration,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field(
                "lanes",
                &self
                    .lanes
                    .iter()
                    .map(|l| l.names.clone())
                    .collect::<Vec<_>>(),
            )
            .field("block_timeout", &self.block_timeout)
            .finish()
    }
}

impl Queue {
    /// Starts a writer thread per destination (one per stream, the streams to stdout or stderr
    /// sharing one). `capacity` is each queue's, in bytes.
    pub(crate) fn start(
        streams: Vec<StreamDest>,
        capacity: usize,
        lossy: bool,
        block_timeout: Duration,
        drop_report: DropReport,
        archiver: Option<Arc<Archiver>>,
    ) -> io::Result<Queue> {
        let drop_report = Arc::new(drop_report);
        let block_timeout = block_timeout.max(Duration::from_millis(1));
        // Group the streams by destination; stdout and stderr are one when they are the same
        // file or pipe (`2>&1`), so that one writer keeps their lines whole.
        let same_std = std_streams_are_one();
        let mut groups: Vec<(Option<&'static str>, Vec<StreamDest>)> = Vec::new();
        let mut route = Vec::with_capacity(streams.len());
        for (name, dest, c) in streams {
            let key = match dest.shared_key() {
                Some("stderr") if same_std => Some("stdout"),
                k => k,
            };
            let lane = match key.and_then(|k| groups.iter().position(|(g, _)| *g == Some(k))) {
                Some(i) => i,
                None => {
                    groups.push((key, Vec::new()));
                    groups.len() - 1
                }
            };
            route.push((lane, groups[lane].1.len()));
            groups[lane].1.push((name, dest, c));
        }
        let mut lanes = Vec::with_capacity(groups.len());
        let mut threads = Vec::with_capacity(groups.len());
        for (_, members) in groups {
            let n = members.len();
            let mut names = Vec::with_capacity(n);
            let mut dests = Vec::with_capacity(n);
            let mut counters = Vec::with_capacity(n);
            for (name, dest, c) in members {
                names.push(name);
                dests.push(dest);
                counters.push(c);
            }
            let lane = Arc::new(Lane {
                pending: Mutex::new(Pending {
                    bufs: vec![Vec::new(); n],
                    dropped: vec![0; n],
                    stalled_dropped: vec![0; n],
                    total: 0,
                    enqueued: 0,
                    written: 0,
                    writer_sleeping: false,
                    busy: false,
                    stalled: false,
                    waiters: 0,
                    shutdown: false,
                }),
                wake_writer: Condvar::new(),
                progress: Condvar::new(),
                capacity: capacity.max(1024),
                lossy,
                block_timeout,
                writer_alive: AtomicBool::new(true),
                moved_ns: AtomicU64::new(0),
                epoch: Instant::now(),
                dests: Mutex::new(dests),
                names,
                counters,
                drop_report: Arc::clone(&drop_report),
            });
            let worker = Arc::clone(&lane);
            let handle = std::thread::Builder::new()
                .name(format!("tracelight-writer-{}", lane.names[0]))
                .spawn(move || {
                    let _ = catch_unwind(AssertUnwindSafe(|| writer_loop(&worker)));
                    worker.writer_alive.store(false, Ordering::Release);
                    let _g = lock(&worker.pending);
                    worker.progress.notify_all();
                })?;
            lanes.push(lane);
            threads.push(handle);
        }
        Ok(Queue {
            lanes: lanes.into(),
            route: route.into(),
            threads: Arc::new(Mutex::new(threads)),
            archiver,
            block_timeout,
        })
    }

    /// The lines of `items` for each lane, with the lane's stream indexes.
    #[inline]
    fn by_lane<'a>(
        &self,
        items: &[(usize, &'a [u8])],
        mut f: impl FnMut(&Lane, &[(usize, &'a [u8])]),
    ) {
        if let [lane] = &*self.lanes {
            let mut local: SmallVec<[(usize, &[u8]); 8]> = SmallVec::new();
            for (idx, line) in items {
                local.push((self.route[*idx].1, *line));
            }
            f(lane, &local);
            return;
        }
        for (l, lane) in self.lanes.iter().enumerate() {
            let mut local: SmallVec<[(usize, &[u8]); 8]> = SmallVec::new();
            for (idx, line) in items {
                let (li, lo) = self.route[*idx];
                if li == l {
                    local.push((lo, *line));
                }
            }
            if !local.is_empty() {
                f(lane, &local);
            }
        }
    }

    /// Queues lines for several streams: waits while a destination whose queue is full makes
    /// progress, and drops and counts once it has made none for the block timeout.
    pub(crate) fn push_many(&self, items: &[(usize, &[u8])]) {
        self.by_lane(items, |lane, local| lane.push(local));
    }

    /// [`Queue::push_many`] that never waits: lines that do not fit are dropped and counted, as in
    /// lossy mode (for lines written at process exit).
    pub(crate) fn try_push_many(&self, items: &[(usize, &[u8])]) {
        self.by_lane(items, |lane, local| lane.try_push(local));
    }

    /// How long a destination may make no progress before its lines are dropped.
    pub(crate) fn block_timeout(&self) -> Duration {
        self.block_timeout
    }

    /// Waits until every line queued before this call is written and the destinations flushed,
    /// giving up on a destination that makes no progress for the block timeout.
    pub(crate) fn flush(&self) {
        self.flush_bounded(self.block_timeout);
    }

    /// [`Queue::flush`], giving up on a destination once its writer has made no progress for
    /// `bound` (a pipe nobody reads). Returns whether every line queued before the call was
    /// written.
    pub(crate) fn flush_bounded(&self, bound: Duration) -> bool {
        let mut all = true;
        for lane in self.lanes.iter() {
            // A destination already stuck is not waited for again.
            all &= !lane.stuck() && lane.flush_bounded(bound);
        }
        all
    }

    /// Flushes, stops the writer threads, and makes later lines go straight to the destinations.
    pub(crate) fn shutdown(&self) {
        self.flush();
        for lane in self.lanes.iter() {
            let mut p = lock(&lane.pending);
            p.shutdown = true;
            lane.wake_writer.notify_one();
        }
        let threads = std::mem::take(&mut *lock(&self.threads));
        for (lane, h) in self.lanes.iter().zip(threads) {
            // Joined once it has stopped; a writer that makes no progress on its destination
            // for the block timeout is left behind.
            while lane.writer_alive.load(Ordering::Acquire) && !lane.stuck() {
                std::thread::sleep(Duration::from_millis(1));
            }
            if !lane.writer_alive.load(Ordering::Acquire) {
                let _ = h.join();
            }
        }
        // Rotated files are compressed and named before the process goes on to exit.
        if let Some(a) = &self.archiver {
            a.shutdown();
        }
        crate::util::said(self.block_timeout);
    }

    /// Waits until every rotated file so far is compressed and named.
    pub(crate) fn wait_archived(&self) {
        if let Some(a) = &self.archiver {
            a.wait_idle();
        }
    }

    /// Per-stream statistics, in the order of the streams.
    pub(crate) fn stats(&self) -> Vec<StreamStats> {
        let pending: Vec<_> = self.lanes.iter().map(|l| lock(&l.pending)).collect();
        self.route
            .iter()
            .map(|&(l, i)| {
                let lane = &self.lanes[l];
                let mut s = lane.counters[i].snapshot(&lane.names[i]);
                s.dropped += pending[l].dropped[i] + pending[l].stalled_dropped[i];
                s.stalled += pending[l].stalled_dropped[i];
                s
            })
            .collect()
    }
}

/// How long the writer lets lines gather after a batch before it writes again.
const LINGER: Duration = Duration::from_millis(1);

/// How often the writer retries a failing destination when nothing else wakes it.
const RETRY_TICK: Duration = Duration::from_millis(100);

fn writer_loop(sh: &Lane) {
    let n = sh.names.len();
    let mut spare: Vec<Vec<u8>> = vec![Vec::new(); n];
    let mut dropped = vec![0u64; n];
    let mut stalled_dropped = vec![0u64; n];
    // Per stream: the lines counted lost when its destination began failing.
    let mut lost_at_failure: Vec<Option<u64>> = vec![None; n];
    let mut retry_pending = false;
    let mut linger = false;
    loop {
        let (seq, stop) = {
            let mut p = lock(&sh.pending);
            while p.total == 0
                && p.dropped.iter().all(|d| *d == 0)
                && p.stalled_dropped.iter().all(|d| *d == 0)
                && !p.shutdown
                && p.written == p.enqueued
            {
                if linger {
                    // Just wrote a batch: let the next one gather for a moment instead of being
                    // woken by every line (producers do not signal while we linger).
                    linger = false;
                    let (g, _) = sh
                        .wake_writer
                        .wait_timeout(p, LINGER)
                        .unwrap_or_else(|e| e.into_inner());
                    p = g;
                    continue;
                }
                p.writer_sleeping = true;
                if retry_pending {
                    // Lines wait for a retry: wake up on our own to try again.
                    let (g, timeout) = sh
                        .wake_writer
                        .wait_timeout(p, RETRY_TICK)
                        .unwrap_or_else(|e| e.into_inner());
                    p = g;
                    if timeout.timed_out() {
                        break;
                    }
                } else {
                    p = sh.wake_writer.wait(p).unwrap_or_else(|e| e.into_inner());
                }
            }
            p.writer_sleeping = false;
            for i in 0..n {
                std::mem::swap(&mut p.bufs[i], &mut spare[i]);
                dropped[i] = std::mem::take(&mut p.dropped[i]);
                // While stalled, the count goes on until this batch is through.
                if !p.stalled {
                    stalled_dropped[i] = std::mem::take(&mut p.stalled_dropped[i]);
                }
                // Counted now, before any write can block: the statistics never miss them.
                let c = &sh.counters[i];
                c.dropped
                    .fetch_add(dropped[i] + stalled_dropped[i], Ordering::Relaxed);
                c.stalled.fetch_add(stalled_dropped[i], Ordering::Relaxed);
            }
            linger = p.total > 0 && !p.shutdown;
            p.total = 0;
            p.busy = true;
            sh.moved();
            if p.waiters > 0 {
                sh.progress.notify_all();
            }
            (p.enqueued, p.shutdown)
        };
        {
            let mut dests = lock(&sh.dests);
            for i in 0..n {
                let d = dests[i].as_mut();
                if dropped[i] > 0 {
                    let line = (sh.drop_report)(&sh.names[i], dropped[i], Loss::QueueFull);
                    sh.write_one(i, d, &line);
                    dropped[i] = 0;
                }
                if stalled_dropped[i] > 0 {
                    let line = (sh.drop_report)(
                        &sh.names[i],
                        stalled_dropped[i],
                        Loss::Stalled(sh.block_timeout),
                    );
                    sh.write_one(i, d, &line);
                    stalled_dropped[i] = 0;
                }
                if !spare[i].is_empty() || d.pending_retry() {
                    let lost_before = sh.counters[i].lost.load(Ordering::Relaxed);
                    match sh.write_one(i, d, &spare[i]) {
                        Health::Failed(_) => {
                            lost_at_failure[i].get_or_insert(lost_before);
                        }
                        Health::Recovered => {
                            // Lines lost while it failed are said in the destination itself.
                            if let Some(before) = lost_at_failure[i].take() {
                                let lost = sh.counters[i].lost.load(Ordering::Relaxed) - before;
                                if lost > 0 {
                                    let line =
                                        (sh.drop_report)(&sh.names[i], lost, Loss::WriteFailed);
                                    sh.write_one(i, d, &line);
                                }
                            }
                        }
                        Health::Ok | Health::StillFailing => {}
                    }
                    spare[i].clear();
                    // Give memory back after a burst, keep the working size.
                    if spare[i].capacity() > 4 * sh.capacity {
                        spare[i].shrink_to(sh.capacity);
                    }
                }
                let _ = d.flush();
            }
            retry_pending = dests.iter().any(|d| d.pending_retry());
        }
        let mut report = None;
        {
            let mut p = lock(&sh.pending);
            p.written = seq;
            p.busy = false;
            sh.moved();
            if p.stalled {
                // Through the batch it was stuck in: lines are queued again, and the count of
                // those dropped meanwhile is written next.
                p.stalled = false;
                report = Some(p.stalled_dropped.iter().sum::<u64>());
            }
            if p.waiters > 0 {
                sh.progress.notify_all();
            }
            if stop && p.total == 0 && p.stalled_dropped.iter().all(|d| *d == 0) {
                return;
            }
        }
        if let Some(n) = report {
            let what = lock(&sh.dests)
                .first()
                .map_or_else(String::new, |d| d.describe());
            crate::util::say(format!(
                "tracelight: {what} (stream `{}`) made no progress for {:?}: {n} lines were \
                 dropped and counted meanwhile instead of holding the service; writing again",
                sh.names.join("`, `"),
                sh.block_timeout,
            ));
        }
    }
}
