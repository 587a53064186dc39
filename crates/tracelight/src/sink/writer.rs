//! [`FileWriter`]: tracelight's file output for any `tracing_subscriber::fmt` layer.

use std::cell::RefCell;
use std::io;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use super::{Archiver, Counters, FileOptions, Loss, Queue, RollingFile, StreamStats};
use crate::error::Error;

/// A non-blocking, lossless, rotating file for a `tracing_subscriber::fmt` layer (or anything that
/// takes a [`MakeWriter`](tracing_subscriber::fmt::MakeWriter)): the replacement for
/// `tracing_appender::rolling` + `tracing_appender::non_blocking`, with tracelight's file
/// handling.
///
/// - Each event's line is handed whole to a background writer: the logging thread never does
///   I/O, and a line is never split, at a rotation either.
/// - Lossless by default: when the queue is full the logging thread waits, as long as the disk
///   makes progress ([`FileWriterBuilder::block_timeout`]); lossy on request, the dropped lines
///   counted and said in the file.
/// - Rotation by size and/or time, retention by count, age and total size, gzip in the
///   background, a crash-safe naming of rotated files: everything [`FileOptions`] and
///   [`Rotation`](super::Rotation) offer. A full disk is counted, said once on stderr, retried,
///   and the lines lost are said in the file when writing resumes.
/// - Flushed when the [`FileGuard`] is dropped, at `std::process::exit` and by
///   [`tracelight::exit`](crate::exit).
///
/// ```
/// use tracelight::sink::{FileOptions, FileWriter, Rotation};
/// use tracing_subscriber::layer::SubscriberExt as _;
///
/// let dir = tempfile::tempdir().unwrap();
/// let (writer, guard) = FileWriter::new(
///     FileOptions::new(dir.path().join("app.log")).rotation(Rotation::size(10 << 20).backups(5)),
/// )?;
/// let subscriber = tracing_subscriber::registry()
///     .with(tracing_subscriber::fmt::layer().json().with_writer(writer));
/// tracing::subscriber::with_default(subscriber, || tracing::info!(order_id = 7, "order created"));
/// drop(guard); // every line is in the file
/// let text = std::fs::read_to_string(dir.path().join("app.log")).unwrap();
/// assert!(text.contains("order created"));
/// # Ok::<(), tracelight::Error>(())
/// ```
#[derive(Clone)]
pub struct FileWriter {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for FileWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileWriter")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

struct Inner {
    queue: Queue,
    counters: Arc<Counters>,
    path: std::path::PathBuf,
}

/// Flushes the [`FileWriter`] and stops its writer thread when dropped: keep it for as long as
/// the writer is used (in `main`), as `tracing_appender`'s `WorkerGuard`.
#[must_use = "dropping the guard flushes and stops the file writer"]
pub struct FileGuard {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for FileGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileGuard")
            .field("path", &self.inner.path)
            .finish()
    }
}

impl Drop for FileGuard {
    fn drop(&mut self) {
        self.inner.queue.shutdown();
    }
}

impl FileGuard {
    /// Waits until every line written so far is in the file (and rotated files archived).
    pub fn flush(&self) {
        self.inner.queue.flush();
        self.inner.queue.wait_archived();
    }
}

/// Settings of a [`FileWriter`] beyond its file.
///
/// ```
/// use std::time::Duration;
/// use tracelight::sink::{FileOptions, FileWriter};
/// let dir = tempfile::tempdir().unwrap();
/// let (writer, _guard) = FileWriter::builder(FileOptions::new(dir.path().join("app.log")))
///     .lossy(true)
///     .queue_bytes(1 << 20)
///     .block_timeout(Duration::from_millis(500))
///     .build()?;
/// # let _ = writer;
/// # Ok::<(), tracelight::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct FileWriterBuilder {
    opts: FileOptions,
    lossy: bool,
    queue_bytes: usize,
    block_timeout: Duration,
}

impl FileWriterBuilder {
    /// Drops and counts lines when the queue is full instead of waiting (default off).
    pub fn lossy(mut self, on: bool) -> Self {
        self.lossy = on;
        self
    }

    /// The queue's capacity in bytes (default 8 MiB); a line that does not fit waits (or is
    /// dropped, lossy).
    pub fn queue_bytes(mut self, bytes: usize) -> Self {
        self.queue_bytes = bytes;
        self
    }

    /// How long the disk may make no progress before lines are dropped and counted instead of
    /// waited for (default 1 s, as [`Builder::block_timeout`](crate::Builder::block_timeout)).
    pub fn block_timeout(mut self, timeout: Duration) -> Self {
        self.block_timeout = timeout.clamp(Duration::from_millis(1), Duration::from_secs(3600));
        self
    }

    /// Checks the file (its directory is created; it must be writable) and starts the writer
    /// thread.
    pub fn build(self) -> Result<(FileWriter, FileGuard), Error> {
        let opts = self.opts;
        opts.rotation_ref()
            .check()
            .map_err(|reason| Error::InvalidSetting {
                setting: format!("the rotation of {}", opts.path().display()),
                reason,
            })?;
        super::check_writable(opts.path(), opts.rotation_ref().rotates()).map_err(|source| {
            Error::Unwritable {
                setting: "FileWriter".into(),
                path: opts.path().to_path_buf(),
                source,
            }
        })?;
        let io = |what: &str| {
            let what = what.to_owned();
            move |source| Error::Io { what, source }
        };
        let archiver =
            Archiver::start().map_err(io("cannot start the tracelight archiver thread"))?;
        let counters = Arc::new(Counters::default());
        let file = RollingFile::new(&opts, Arc::clone(&archiver), self.queue_bytes);
        let name = opts
            .path()
            .file_stem()
            .map_or_else(|| "file".to_owned(), |s| s.to_string_lossy().into_owned());
        let report = Box::new(|stream: &str, count: u64, why: Loss| {
            crate::state::drop_report_line(
                crate::state::Rendering::Json,
                &crate::json::JsonSchema::default(),
                stream,
                count,
                why,
            )
        });
        let queue = Queue::start(
            vec![(name, Box::new(file), Arc::clone(&counters))],
            self.queue_bytes,
            self.lossy,
            self.block_timeout,
            report,
            Some(archiver),
        )
        .map_err(io("cannot start the tracelight writer thread"))?;
        let inner = Arc::new(Inner {
            queue,
            counters,
            path: opts.path().to_path_buf(),
        });
        crate::util::lock(&WRITERS).push(Arc::downgrade(&inner));
        crate::exit::register();
        Ok((
            FileWriter {
                inner: Arc::clone(&inner),
            },
            FileGuard { inner },
        ))
    }
}

/// The live file writers, flushed at process exit.
static WRITERS: Mutex<Vec<Weak<Inner>>> = Mutex::new(Vec::new());

/// Flushes every live [`FileWriter`], waiting at most its block timeout for a disk that makes no
/// progress (at process exit).
pub(crate) fn flush_all_at_exit() {
    let live: Vec<Arc<Inner>> = crate::util::lock(&WRITERS)
        .iter()
        .filter_map(Weak::upgrade)
        .collect();
    for w in live {
        let _ = w.queue.flush_bounded(w.queue.block_timeout());
    }
}

impl FileWriter {
    /// A writer to the file of `opts`, with the defaults (lossless, an 8 MiB queue, a 1 s block
    /// timeout); keep the guard for as long as it is used.
    pub fn new(opts: FileOptions) -> Result<(FileWriter, FileGuard), Error> {
        FileWriter::builder(opts).build()
    }

    /// A writer with settings beyond its file.
    pub fn builder(opts: FileOptions) -> FileWriterBuilder {
        FileWriterBuilder {
            opts,
            lossy: false,
            queue_bytes: crate::builder::DEFAULT_QUEUE_BYTES,
            block_timeout: super::DEFAULT_BLOCK_TIMEOUT,
        }
    }

    /// What was written, dropped, lost, rotated.
    pub fn stats(&self) -> StreamStats {
        self.inner
            .queue
            .stats()
            .into_iter()
            .next()
            .unwrap_or_else(|| self.inner.counters.snapshot("file"))
    }
}

thread_local! {
    /// A line's buffer, reused from one event to the next on a thread.
    static SPARE: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// The writer of one event: gathers what the formatter writes, and hands the whole line to the
/// queue when dropped.
pub struct FileLineWriter<'a> {
    writer: &'a FileWriter,
    buf: Vec<u8>,
}

impl std::fmt::Debug for FileLineWriter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileLineWriter")
            .field("bytes", &self.buf.len())
            .finish()
    }
}

impl io::Write for FileLineWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for FileLineWriter<'_> {
    fn drop(&mut self) {
        if !self.buf.is_empty() {
            if !self.buf.ends_with(b"\n") {
                self.buf.push(b'\n');
            }
            let queue = &self.writer.inner.queue;
            if crate::exit::exiting() {
                queue.try_push_many(&[(0, &self.buf)]);
            } else {
                queue.push_many(&[(0, &self.buf)]);
            }
        }
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        let _ = SPARE.try_with(|s| {
            if let Ok(mut s) = s.try_borrow_mut() {
                if buf.capacity() > s.capacity() && buf.capacity() <= 1 << 20 {
                    *s = buf;
                }
            }
        });
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for FileWriter {
    type Writer = FileLineWriter<'a>;

    fn make_writer(&'a self) -> FileLineWriter<'a> {
        let buf = SPARE
            .try_with(|s| {
                s.try_borrow_mut()
                    .map(|mut s| std::mem::take(&mut *s))
                    .unwrap_or_default()
            })
            .unwrap_or_default();
        FileLineWriter { writer: self, buf }
    }
}
