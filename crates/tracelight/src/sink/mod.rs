//! Writers: the bounded queue, the background writer thread, and the destinations.
//!
//! A line is formatted on the caller's thread into a reused buffer and copied into its stream's
//! pending buffer under one short lock; one background thread swaps the pending buffers out and
//! writes each stream's bytes in one call. Nothing is allocated per event once the buffers have
//! grown to their working size, and all I/O happens off the caller's thread.
//!
//! **Lossless by default.** When the pending bytes reach the queue's capacity the caller waits for
//! the writer. In lossy mode ([`Builder::lossy`](crate::Builder::lossy)) the line is dropped instead,
//! counted per stream, and the writer puts a line into that stream saying how many were dropped.
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

mod file;
mod series;

pub(crate) use file::{check_writable, Archiver, RollingFile};
pub use file::{FileOptions, Period, Rotation, DEFAULT_BACKUPS, DEFAULT_MAX_BYTES};

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
}

/// Builds the line that reports dropped events for a stream: `(stream name, dropped count)`.
pub(crate) type DropReport = Box<dyn Fn(&str, u64) -> Vec<u8> + Send + Sync>;

struct Pending {
    bufs: Vec<Vec<u8>>,
    dropped: Vec<u64>,
    total: usize,
    /// Number of `push` calls accepted so far.
    enqueued: u64,
    /// `enqueued` as of the last batch the writer finished.
    written: u64,
    writer_sleeping: bool,
    /// Threads waiting on `progress` (full queue, flush): notify only when there are some.
    waiters: usize,
    shutdown: bool,
}

struct Shared {
    pending: Mutex<Pending>,
    wake_writer: Condvar,
    progress: Condvar,
    capacity: usize,
    lossy: bool,
    writer_alive: AtomicBool,
    /// Destinations, locked by the writer while it writes; used directly once it has stopped.
    dests: Mutex<Vec<Box<dyn Destination>>>,
    names: Vec<String>,
    counters: Vec<Arc<Counters>>,
    drop_report: DropReport,
}

/// The bounded queue in front of the background writer. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Queue {
    shared: Arc<Shared>,
    thread: Arc<Mutex<Option<JoinHandle<()>>>>,
    archiver: Option<Arc<Archiver>>,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("streams", &self.shared.names)
            .field("capacity", &self.shared.capacity)
            .field("lossy", &self.shared.lossy)
            .finish()
    }
}

impl Queue {
    /// Starts the writer thread for these destinations (one per stream index).
    pub(crate) fn start(
        streams: Vec<(String, Box<dyn Destination>, Arc<Counters>)>,
        capacity: usize,
        lossy: bool,
        drop_report: DropReport,
        archiver: Option<Arc<Archiver>>,
    ) -> io::Result<Queue> {
        let n = streams.len();
        let mut names = Vec::with_capacity(n);
        let mut dests = Vec::with_capacity(n);
        let mut counters = Vec::with_capacity(n);
        for (name, dest, c) in streams {
            names.push(name);
            dests.push(dest);
            counters.push(c);
        }
        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending {
                bufs: vec![Vec::new(); n],
                dropped: vec![0; n],
                total: 0,
                enqueued: 0,
                written: 0,
                writer_sleeping: false,
                waiters: 0,
                shutdown: false,
            }),
            wake_writer: Condvar::new(),
            progress: Condvar::new(),
            capacity: capacity.max(1024),
            lossy,
            writer_alive: AtomicBool::new(true),
            dests: Mutex::new(dests),
            names,
            counters,
            drop_report,
        });
        let worker = Arc::clone(&shared);
        let handle = std::thread::Builder::new()
            .name("tracelight-writer".into())
            .spawn(move || {
                let _ = catch_unwind(AssertUnwindSafe(|| writer_loop(&worker)));
                worker.writer_alive.store(false, Ordering::Release);
                let _g = lock(&worker.pending);
                worker.progress.notify_all();
            })?;
        Ok(Queue {
            shared,
            thread: Arc::new(Mutex::new(Some(handle))),
            archiver,
        })
    }

    /// Queues lines for several streams under one lock.
    pub(crate) fn push_many(&self, items: &[(usize, &[u8])]) {
        let sh = &*self.shared;
        let len: usize = items.iter().map(|(_, l)| l.len()).sum();
        let mut p = lock(&sh.pending);
        loop {
            if !sh.writer_alive.load(Ordering::Acquire) || p.shutdown {
                drop(p);
                self.write_direct(items);
                return;
            }
            if p.total == 0 || p.total + len <= sh.capacity {
                break;
            }
            if sh.lossy {
                for (idx, _) in items {
                    p.dropped[*idx] += 1;
                }
                return;
            }
            // Full: make sure the writer is on it, then wait for room.
            p.writer_sleeping = false;
            sh.wake_writer.notify_one();
            p.waiters += 1;
            p = sh.progress.wait(p).unwrap_or_else(|e| e.into_inner());
            p.waiters -= 1;
        }
        append(sh, &mut p, items, len);
    }

    /// [`Queue::push_many`] that never waits: lines that do not fit are dropped and counted, as in
    /// lossy mode (for lines written at process exit).
    pub(crate) fn try_push_many(&self, items: &[(usize, &[u8])]) {
        let sh = &*self.shared;
        let len: usize = items.iter().map(|(_, l)| l.len()).sum();
        let Ok(mut p) = sh.pending.try_lock() else {
            for (idx, _) in items {
                sh.counters[*idx].dropped.fetch_add(1, Ordering::Relaxed);
            }
            return;
        };
        if !sh.writer_alive.load(Ordering::Acquire) || p.shutdown {
            drop(p);
            self.write_direct(items);
            return;
        }
        if p.total != 0 && p.total + len > sh.capacity {
            for (idx, _) in items {
                p.dropped[*idx] += 1;
            }
            return;
        }
        append(sh, &mut p, items, len);
    }

    /// Writes on the caller's thread: used once the writer thread has stopped (after shutdown).
    #[cold]
    fn write_direct(&self, items: &[(usize, &[u8])]) {
        let sh = &*self.shared;
        let mut dests = lock(&sh.dests);
        for (idx, line) in items {
            if let Some(d) = dests.get_mut(*idx) {
                write_one(sh, *idx, d.as_mut(), line);
                let _ = d.flush();
            }
        }
    }

    /// Waits until every line queued before this call is written and the destinations flushed.
    pub(crate) fn flush(&self) {
        let sh = &*self.shared;
        let mut p = lock(&sh.pending);
        let target = p.enqueued;
        while p.written < target && sh.writer_alive.load(Ordering::Acquire) {
            p.writer_sleeping = false;
            sh.wake_writer.notify_one();
            p.waiters += 1;
            p = sh.progress.wait(p).unwrap_or_else(|e| e.into_inner());
            p.waiters -= 1;
        }
    }

    /// [`Queue::flush`], giving up once the writer has made no progress for `bound` (a
    /// destination that blocks, such as a pipe nobody reads). Never blocks on the queue's lock
    /// for longer than that either, so it is safe at process exit. Returns whether every line
    /// queued before the call was written.
    pub(crate) fn flush_bounded(&self, bound: Duration) -> bool {
        let sh = &*self.shared;
        let mut deadline = Instant::now() + bound;
        let mut target = None;
        let mut last_written = None;
        loop {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            let p = match sh.pending.try_lock() {
                Ok(p) => p,
                Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
                Err(std::sync::TryLockError::WouldBlock) => {
                    std::thread::sleep(Duration::from_millis(1));
                    continue;
                }
            };
            let target = *target.get_or_insert(p.enqueued);
            if p.written >= target || !sh.writer_alive.load(Ordering::Acquire) {
                return p.written >= target;
            }
            if last_written.is_some_and(|w| w < p.written) {
                // Progress: the bound counts from the last time the writer moved.
                deadline = now + bound;
            }
            last_written = Some(p.written);
            let mut p = p;
            p.writer_sleeping = false;
            sh.wake_writer.notify_one();
            p.waiters += 1;
            let wait = deadline
                .saturating_duration_since(now)
                .min(Duration::from_millis(50));
            let (mut p, _) = sh
                .progress
                .wait_timeout(p, wait)
                .unwrap_or_else(|e| e.into_inner());
            p.waiters -= 1;
        }
    }

    /// Flushes, stops the writer thread, and makes later lines go straight to the destinations.
    pub(crate) fn shutdown(&self) {
        self.flush();
        {
            let mut p = lock(&self.shared.pending);
            p.shutdown = true;
            self.shared.wake_writer.notify_one();
        }
        if let Some(h) = lock(&self.thread).take() {
            let _ = h.join();
        }
        // Rotated files are compressed and named before the process goes on to exit.
        if let Some(a) = &self.archiver {
            a.shutdown();
        }
    }

    /// Waits until every rotated file so far is compressed and named.
    pub(crate) fn wait_archived(&self) {
        if let Some(a) = &self.archiver {
            a.wait_idle();
        }
    }

    /// Per-stream statistics.
    pub(crate) fn stats(&self) -> Vec<StreamStats> {
        let sh = &*self.shared;
        let p = lock(&sh.pending);
        sh.names
            .iter()
            .zip(&sh.counters)
            .enumerate()
            .map(|(i, (name, c))| {
                let mut s = c.snapshot(name);
                s.dropped += p.dropped[i];
                s
            })
            .collect()
    }
}

/// Appends `items` (`len` bytes in all) to the pending buffers, waking the writer if it sleeps.
#[inline]
fn append(sh: &Shared, p: &mut Pending, items: &[(usize, &[u8])], len: usize) {
    for (idx, line) in items {
        p.bufs[*idx].extend_from_slice(line);
    }
    p.total += len;
    p.enqueued += 1;
    if p.writer_sleeping {
        p.writer_sleeping = false;
        sh.wake_writer.notify_one();
    }
}

fn write_one(sh: &Shared, idx: usize, dest: &mut dyn Destination, bytes: &[u8]) {
    match dest.write_batch(bytes, &sh.counters[idx]) {
        Health::Ok | Health::StillFailing => {}
        Health::Failed(e) => {
            let _ = writeln!(
                io::stderr(),
                "tracelight: stream `{}`: cannot write to {}: {e}; counting write errors, retrying, and saying so here when it works again",
                sh.names[idx],
                dest.describe()
            );
        }
        Health::Recovered => {
            let _ = writeln!(
                io::stderr(),
                "tracelight: stream `{}`: writing to {} again",
                sh.names[idx],
                dest.describe()
            );
        }
    }
}

/// How long the writer lets lines gather after a batch before it writes again.
const LINGER: Duration = Duration::from_millis(1);

/// How often the writer retries a failing destination when nothing else wakes it.
const RETRY_TICK: Duration = Duration::from_millis(100);

fn writer_loop(sh: &Shared) {
    let n = sh.names.len();
    let mut spare: Vec<Vec<u8>> = vec![Vec::new(); n];
    let mut dropped = vec![0u64; n];
    let mut retry_pending = false;
    let mut linger = false;
    loop {
        let (seq, stop) = {
            let mut p = lock(&sh.pending);
            while p.total == 0
                && p.dropped.iter().all(|d| *d == 0)
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
            }
            linger = p.total > 0 && !p.shutdown;
            p.total = 0;
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
                    sh.counters[i]
                        .dropped
                        .fetch_add(dropped[i], Ordering::Relaxed);
                    let line = (sh.drop_report)(&sh.names[i], dropped[i]);
                    write_one(sh, i, d, &line);
                }
                if !spare[i].is_empty() || d.pending_retry() {
                    write_one(sh, i, d, &spare[i]);
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
        {
            let mut p = lock(&sh.pending);
            p.written = seq;
            if p.waiters > 0 {
                sh.progress.notify_all();
            }
            if stop && p.total == 0 {
                return;
            }
        }
    }
}
