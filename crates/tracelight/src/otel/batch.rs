//! Bounded queues in front of one export thread per signal.
//!
//! The SDK's batch processors export from a thread with `futures_executor::block_on`, so the gRPC
//! exporter's connection lives on whatever Tokio runtime was current when it was built — the
//! service's. When the service runs a current-thread runtime and blocks in shutdown, nobody drives
//! that connection and the last batch times out. Here each signal has its own thread with its own
//! small current-thread runtime: the exporter is built on it, exports run on it, and the service's
//! runtime (or the lack of one) does not matter. The caller's side is a `try`-style push into a
//! bounded queue: a collector that is slow or away fills the queue, and what does not fit is dropped
//! and counted, never waited for.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::config::BatchConfig;
use crate::state::SynthValue;

/// Counts of one signal (spans or log records).
///
/// ```
/// let s = tracelight::otel::stats();
/// assert_eq!(s.spans.dropped, 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SignalStats {
    /// Items taken into the queue (also those made after the shutdown, which are lost at once).
    pub queued: u64,
    /// Items the collector accepted.
    pub exported: u64,
    /// Items dropped because the queue was full (the collector slow or away).
    pub dropped: u64,
    /// Items lost because their export failed or timed out.
    pub failed: u64,
    /// Items still queued or being exported when the shutdown's time ran out, or made after the
    /// shutdown: not known to be exported (one in flight may still reach the collector).
    pub lost_at_shutdown: u64,
    /// Export requests that failed.
    pub failed_exports: u64,
}

impl SignalStats {
    /// Every item made: `queued + dropped`. Once the pipeline is shut down, each of them is
    /// exported, dropped, failed or lost at shutdown.
    ///
    /// ```
    /// let s = tracelight::otel::stats().spans;
    /// assert!(s.created() >= s.exported);
    /// ```
    pub fn created(&self) -> u64 {
        self.queued + self.dropped
    }

    /// Items not exported: dropped, failed or lost at shutdown.
    pub fn lost(&self) -> u64 {
        self.dropped + self.failed + self.lost_at_shutdown
    }
}

/// Writes a line of tracelight's own about the export: `(is_error, message, fields)`.
pub(crate) type Report = Arc<dyn Fn(bool, &str, &[(&str, SynthValue<'_>)]) + Send + Sync>;

#[derive(Default)]
pub(crate) struct Counters {
    /// Where export failures, recoveries and the loss summary are written as lines (set by the
    /// builder to tracelight's own streams); a `tracing` event when unset.
    pub(crate) report: std::sync::OnceLock<Report>,
    /// Where this signal is exported (its password masked), for the loss summary.
    pub(crate) endpoint: std::sync::OnceLock<String>,
    queued: AtomicU64,
    exported: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
    /// Queued items abandoned when the shutdown's time ran out.
    abandoned: AtomicU64,
    /// Items made after the shutdown.
    late: AtomicU64,
    failed_exports: AtomicU64,
    reported_drop: AtomicBool,
    reported_failure: AtomicBool,
}

impl std::fmt::Debug for Counters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Counters")
            .field("stats", &self.snapshot())
            .finish()
    }
}

impl Counters {
    /// Writes a line about the export through the report, or as a `tracing` event.
    pub(crate) fn say(&self, error: bool, message: &str, fields: &[(&str, SynthValue<'_>)]) {
        if let Some(report) = self.report.get() {
            report(error, message, fields);
            return;
        }
        let fields = fields
            .iter()
            .map(|(k, v)| match v {
                SynthValue::U64(n) => format!("{k}={n}"),
                SynthValue::Str(s) => format!("{k}={s}"),
            })
            .collect::<Vec<_>>()
            .join(" ");
        if error {
            tracing::error!(target: "tracelight::otel", details = fields.as_str(), "{message}");
        } else {
            tracing::warn!(target: "tracelight::otel", details = fields.as_str(), "{message}");
        }
    }

    pub(crate) fn snapshot(&self) -> SignalStats {
        SignalStats {
            queued: self.queued.load(Ordering::Relaxed),
            exported: self.exported.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            lost_at_shutdown: self.abandoned.load(Ordering::Relaxed)
                + self.late.load(Ordering::Relaxed),
            failed_exports: self.failed_exports.load(Ordering::Relaxed),
        }
    }
}

/// What the export thread does with a batch. Built on the export thread, inside its runtime.
pub(crate) trait Export: 'static {
    type Item: Send + 'static;
    /// Exports one batch; the error is a one-line reason.
    fn export(&mut self, batch: Vec<Self::Item>) -> impl Future<Output = Result<(), String>>;
    /// Releases the exporter (called once, after the last export).
    fn shutdown(&mut self);
}

struct State<T> {
    items: VecDeque<T>,
    /// Flush tickets: requested and completed.
    flush_requested: u64,
    flush_done: u64,
    shutdown: bool,
    finished: bool,
    /// Items taken out of the queue for the export in progress.
    in_flight: usize,
    /// The shutdown gave up waiting: what the export thread still holds is counted as lost, and
    /// it counts nothing more.
    abandoned: bool,
}

struct Shared<T> {
    state: Mutex<State<T>>,
    /// Wakes the export thread.
    work: Condvar,
    /// Wakes callers waiting for a flush or the shutdown.
    done: Condvar,
    config: BatchConfig,
    counters: Arc<Counters>,
    signal: &'static str,
    endpoint: String,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // A panic while holding the lock leaves plain data behind: keep going.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The caller's side of one signal's queue.
pub(crate) struct Batcher<T> {
    shared: Arc<Shared<T>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl<T> std::fmt::Debug for Batcher<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batcher")
            .field("signal", &self.shared.signal)
            .field("endpoint", &self.shared.endpoint)
            .finish_non_exhaustive()
    }
}

impl<T: Send + 'static> Batcher<T> {
    /// Starts the export thread. `make` builds the exporter on that thread, inside its runtime;
    /// its error is returned here.
    pub(crate) fn start<E, F>(
        signal: &'static str,
        endpoint: String,
        config: BatchConfig,
        counters: Arc<Counters>,
        make: F,
    ) -> Result<Batcher<T>, crate::Error>
    where
        E: Export<Item = T>,
        F: FnOnce() -> Result<E, crate::Error> + Send + 'static,
    {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                items: VecDeque::new(),
                flush_requested: 0,
                flush_done: 0,
                shutdown: false,
                finished: false,
                in_flight: 0,
                abandoned: false,
            }),
            work: Condvar::new(),
            done: Condvar::new(),
            config,
            counters,
            signal,
            endpoint,
        });
        let _ = shared.counters.endpoint.set(shared.endpoint.clone());
        let (tx, rx) = std::sync::mpsc::sync_channel::<Result<(), crate::Error>>(1);
        let worker = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name(format!("tracelight-otel-{signal}"))
            .spawn(move || {
                // Telemetry made while exporting (the HTTP client's own events) is not exported:
                // that would feed itself.
                let _suppressed = opentelemetry::Context::enter_telemetry_suppressed_scope();
                // ... nor written to the service's streams below WARN.
                super::mark_export_thread();
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(source) => {
                        let _ = tx.send(Err(crate::Error::Io {
                            what: "cannot start the OpenTelemetry export runtime".into(),
                            source,
                        }));
                        return;
                    }
                };
                let exporter = {
                    let _enter = rt.enter();
                    make()
                };
                match exporter {
                    Ok(exporter) => {
                        let _ = tx.send(Ok(()));
                        run(&worker, &rt, exporter);
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                    }
                }
            })
            .map_err(|source| crate::Error::Io {
                what: "cannot start the OpenTelemetry export thread".into(),
                source,
            })?;
        match rx.recv() {
            Ok(Ok(())) => Ok(Batcher {
                shared,
                thread: Mutex::new(Some(thread)),
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => {
                let _ = thread.join();
                Err(crate::Error::Io {
                    what: "the OpenTelemetry export thread stopped while starting".into(),
                    source: std::io::Error::other("export thread exited"),
                })
            }
        }
    }

    /// Queues an item, or drops and counts it when the queue is full. Never blocks beyond the
    /// queue's lock.
    pub(crate) fn push(&self, item: T) {
        let sh = &*self.shared;
        let mut st = sh.lock();
        if st.shutdown {
            // Made after the shutdown: taken, and lost at once.
            drop(st);
            sh.counters.queued.fetch_add(1, Ordering::Relaxed);
            sh.counters.late.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if st.items.len() >= sh.config.max_queue_size {
            drop(st);
            sh.counters.dropped.fetch_add(1, Ordering::Relaxed);
            if !sh.counters.reported_drop.swap(true, Ordering::Relaxed) {
                eprintln!(
                    "tracelight: the OpenTelemetry {} queue is full ({} items; the collector at {} is slow or away): new {} are dropped and counted (tracelight::otel::stats())",
                    sh.signal, sh.config.max_queue_size, sh.endpoint, sh.signal
                );
            }
            return;
        }
        st.items.push_back(item);
        // Counted under the lock, before the export thread can count it exported.
        sh.counters.queued.fetch_add(1, Ordering::Relaxed);
        let wake = st.items.len() == sh.config.max_export_batch_size;
        drop(st);
        if wake {
            sh.work.notify_one();
        }
    }

    /// Exports everything queued before the call; waits at most `timeout`. Returns whether the
    /// flush completed in time.
    /// Queues `item` if there is room and the queue is not shut down, counting nothing
    /// otherwise: for items that a later one makes unneeded (a metrics reading carries the
    /// totals, so a reading that finds one waiting loses nothing).
    #[cfg_attr(
        not(any(feature = "otel-http", feature = "otel-grpc")),
        allow(dead_code)
    )]
    pub(crate) fn offer(&self, item: T) {
        let sh = &*self.shared;
        let mut st = sh.lock();
        if st.shutdown || st.items.len() >= sh.config.max_queue_size {
            return;
        }
        st.items.push_back(item);
        sh.counters.queued.fetch_add(1, Ordering::Relaxed);
        let wake = st.items.len() >= sh.config.max_export_batch_size;
        drop(st);
        if wake {
            sh.work.notify_one();
        }
    }

    pub(crate) fn flush(&self, timeout: Duration) -> bool {
        let sh = &*self.shared;
        let mut st = sh.lock();
        if st.finished {
            return true;
        }
        st.flush_requested += 1;
        let ticket = st.flush_requested;
        sh.work.notify_one();
        let deadline = Instant::now() + timeout;
        while st.flush_done < ticket && !st.finished {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            st = sh
                .done
                .wait_timeout(st, left)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
        true
    }

    /// Exports what is queued, stops the thread; waits at most `timeout`. Returns whether it
    /// finished in time (if not, the thread ends on its own after its current export).
    pub(crate) fn shutdown(&self, timeout: Duration) -> bool {
        let sh = &*self.shared;
        let mut st = sh.lock();
        st.shutdown = true;
        sh.work.notify_one();
        let deadline = Instant::now() + timeout;
        while !st.finished {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                // Out of time (a collector that never answers): what is still queued or in
                // flight is lost, and counted as such; the thread ends on its own.
                let lost = st.items.len() + st.in_flight;
                st.items.clear();
                st.in_flight = 0;
                st.abandoned = true;
                sh.counters
                    .abandoned
                    .fetch_add(lost as u64, Ordering::Relaxed);
                return false;
            }
            st = sh
                .done
                .wait_timeout(st, left)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
        drop(st);
        let thread = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(t) = thread {
            let _ = t.join();
        }
        true
    }
}

/// The export thread's loop.
fn run<E: Export>(sh: &Shared<E::Item>, rt: &tokio::runtime::Runtime, mut exporter: E) {
    let cfg = sh.config;
    let mut last_export = Instant::now();
    loop {
        let mut st = sh.lock();
        // Wait for a full batch, the delay, a flush or the shutdown.
        loop {
            if st.shutdown
                || st.flush_requested > st.flush_done
                || st.items.len() >= cfg.max_export_batch_size
            {
                break;
            }
            let left = cfg.scheduled_delay.saturating_sub(last_export.elapsed());
            if left.is_zero() {
                break;
            }
            st = sh
                .work
                .wait_timeout(st, left)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
        let shutdown = st.shutdown;
        let flush_ticket = st.flush_requested;
        // On a flush or the shutdown, export everything queued now (in batches); otherwise one
        // batch.
        let drain_all = shutdown || flush_ticket > st.flush_done;
        let mut pending = if drain_all {
            st.items.len()
        } else {
            st.items.len().min(cfg.max_export_batch_size)
        };
        drop(st);
        last_export = Instant::now();
        while pending > 0 {
            let batch: Vec<E::Item> = {
                let mut st = sh.lock();
                let n = pending.min(cfg.max_export_batch_size).min(st.items.len());
                st.in_flight = n;
                st.items.drain(..n).collect()
            };
            if batch.is_empty() {
                break;
            }
            pending -= batch.len();
            let outcome = export_one(sh, rt, &mut exporter, batch);
            let mut st = sh.lock();
            if st.abandoned {
                // The shutdown gave up on us and counted this batch as lost.
                st.finished = true;
                sh.done.notify_all();
                return;
            }
            st.in_flight = 0;
            drop(st);
            outcome.count(sh);
        }
        let mut st = sh.lock();
        if drain_all && st.flush_done < flush_ticket {
            st.flush_done = flush_ticket;
            sh.done.notify_all();
        }
        if shutdown {
            drop(st);
            exporter.shutdown();
            let mut st = sh.lock();
            st.finished = true;
            sh.done.notify_all();
            return;
        }
    }
}

/// What one export did, counted once the batch is known not to have been given up on.
enum Outcome {
    Exported(u64),
    Failed(u64, String),
}

impl Outcome {
    fn count<T>(self, sh: &Shared<T>) {
        match self {
            Outcome::Exported(n) => {
                sh.counters.exported.fetch_add(n, Ordering::Relaxed);
                if sh.counters.reported_failure.swap(false, Ordering::Relaxed) {
                    // The end of an outage: a line in the logs, beside the failure's.
                    let lost = sh.counters.failed.load(Ordering::Relaxed);
                    sh.counters.say(
                        false,
                        "OpenTelemetry export works again",
                        &[
                            ("signal", SynthValue::Str(sh.signal)),
                            ("endpoint", SynthValue::Str(&sh.endpoint)),
                            ("failed", SynthValue::U64(lost)),
                        ],
                    );
                }
            }
            Outcome::Failed(n, reason) => {
                sh.counters.failed.fetch_add(n, Ordering::Relaxed);
                sh.counters.failed_exports.fetch_add(1, Ordering::Relaxed);
                if !sh.counters.reported_failure.swap(true, Ordering::Relaxed) {
                    // Once per outage: on stderr and as an ERROR line in the logs (the errors
                    // stream takes it).
                    let reason = super::failure::scrub(&one_line(&reason));
                    let kind = super::failure::classify(&reason);
                    eprintln!(
                        "tracelight: OpenTelemetry {} export to {} failed, {kind}: {}; the service is not slowed, lost {} are counted (tracelight::otel::stats()) and export resumes when the collector answers",
                        sh.signal, sh.endpoint, reason, sh.signal
                    );
                    sh.counters.say(
                        true,
                        &format!("OpenTelemetry export failed: {kind}"),
                        &[
                            ("signal", SynthValue::Str(sh.signal)),
                            ("endpoint", SynthValue::Str(&sh.endpoint)),
                            ("failure", SynthValue::Str(kind)),
                            ("reason", SynthValue::Str(&reason)),
                        ],
                    );
                }
            }
        }
    }
}

fn export_one<E: Export>(
    sh: &Shared<E::Item>,
    rt: &tokio::runtime::Runtime,
    exporter: &mut E,
    batch: Vec<E::Item>,
) -> Outcome {
    let n = batch.len() as u64;
    let timeout = sh.config.export_timeout;
    let result = rt.block_on(async {
        match tokio::time::timeout(timeout, exporter.export(batch)).await {
            Ok(r) => r,
            Err(_) => Err(format!("no answer within {timeout:?}")),
        }
    });
    match result {
        Ok(()) => Outcome::Exported(n),
        Err(reason) => Outcome::Failed(n, reason),
    }
}

fn one_line(s: &str) -> String {
    let s: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if s.len() > 300 {
        let mut end = 300;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", &s[..end])
    } else {
        s
    }
}
