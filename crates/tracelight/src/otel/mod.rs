//! OpenTelemetry: OTLP export of spans, log events and metrics, and trace ids in every JSON line.
//!
//! With the `otel` feature, [`init`](crate::init) exports to a collector as soon as
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set (or [`Builder::otlp_endpoint`](crate::Builder::otlp_endpoint)
//! / [`Builder::otel`](crate::Builder::otel) says so), over gRPC or HTTP/protobuf:
//!
//! - every span becomes an OpenTelemetry span (`tracing-opentelemetry`), with its fields as
//!   attributes, its parent, and its events;
//! - every event that a stream takes becomes an OpenTelemetry log record, built from the same
//!   capture as its line (the same fields, timestamp and context; the error as `exception.type`,
//!   `exception.message` and `exception.stacktrace`), carrying the trace and span id of the span
//!   it happened in;
//! - with `OTEL_METRICS_EXPORTER=otlp` (or [`OtelConfig::metrics`]), tracelight's own metrics —
//!   the series of the admin router's `/metrics`: events by level, errors by fingerprint, span
//!   durations as histograms, security events, stream and export statistics — are read every
//!   export interval and sent as OTLP metrics;
//! - every JSON line written inside a span carries `"trace_id"` (32 hex digits) and `"span_id"` (16)
//!   right after the context fields — the same ids the collector receives, so a line leads to its
//!   trace and back;
//! - with the `http` feature the server middleware continues the caller's trace from its W3C
//!   `traceparent`/`tracestate` headers, and the client side (the tower layer, `reqwest`) sends them.
//!
//! ```no_run
//! // OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4317 OTEL_EXPORTER_OTLP_PROTOCOL=grpc ./shop
//! let _guard = tracelight::init()?; // flushes and shuts the exporters down when dropped
//! # Ok::<(), tracelight::Error>(())
//! ```
//!
//! Or in code:
//!
//! ```no_run
//! use tracelight::otel::{OtelConfig, Protocol, Sampler};
//! let _guard = tracelight::builder()
//!     .service("shop")
//!     .otel(OtelConfig::new()
//!         .endpoint("http://127.0.0.1:4317")
//!         .protocol(Protocol::Grpc)
//!         .service_version(env!("CARGO_PKG_VERSION"))
//!         .sampler(Sampler::ParentBasedRatio(0.1)))
//!     .init()?;
//! # Ok::<(), tracelight::Error>(())
//! ```
//!
//! # What leaves the process
//!
//! Secrets do not: each export thread passes every span and log record through the builder's
//! [`Redactor`] before export — attributes with a secret key become
//! `"[REDACTED]"`, and string values, span event names, status descriptions and log bodies are
//! scanned for secret shapes.
//!
//! # A collector that is down or slow
//!
//! The service never waits for it. Spans and records go into a bounded queue per signal (2048 by
//! default) in front of one export thread each; when the queue is full new items are dropped and
//! counted, failed exports are counted, the first of each is reported once on stderr, and export
//! resumes by itself when the collector answers again. [`stats()`] returns the counts.
//!
//! # Shutdown
//!
//! The guard flushes both queues and shuts the exporters down (waiting at most
//! [`OtelConfig::shutdown_timeout`], 5 s by default). Each export thread has its own small Tokio
//! runtime, so this works the same whether the service runs a multi-thread runtime, a
//! current-thread runtime, or none.

mod batch;
pub(crate) mod config;
mod ids;
mod logs;
#[cfg(any(feature = "otel-http", feature = "otel-grpc"))]
mod metrics;
pub(crate) use logs::{
    claim as claim_logs, emit as emit_log, exporting as log_exporting, release as release_logs,
    take_over as take_over_logs, LogExport,
};
#[cfg(any(feature = "otel-http", feature = "otel-grpc"))]
pub(crate) use metrics::claim as claim_metrics;

/// Whether the span `id` being entered has an OpenTelemetry counterpart made by a
/// `tracing_opentelemetry` layer of the application's own (tracelight's pipeline turns the ids
/// on itself): then the lines carry its ids too. Looked at on the first spans entered only, while
/// the ids are off, so it costs nothing once decided.
#[inline]
pub(crate) fn probe_foreign_layer(id: &tracing_core::span::Id) {
    use std::sync::atomic::{AtomicU32, Ordering};
    static PROBES_LEFT: AtomicU32 = AtomicU32::new(64);
    if ids::is_active()
        || PROBES_LEFT
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_err()
    {
        return;
    }
    let found = tracing::dispatcher::get_default(|d| {
        tracing_opentelemetry::get_otel_context(id, d).is_some()
    });
    if found {
        ids::activate();
    }
}
mod failure;
#[cfg(feature = "http")]
pub(crate) mod propagation;
mod tls;

thread_local! {
    /// Set on the export threads: what their HTTP and gRPC clients log below WARN is dropped.
    static EXPORT_THREAD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether this thread is one of the export threads.
#[inline]
pub(crate) fn on_export_thread() -> bool {
    EXPORT_THREAD
        .try_with(std::cell::Cell::get)
        .unwrap_or(false)
}

/// Marks this thread as an export thread.
pub(crate) fn mark_export_thread() {
    let _ = EXPORT_THREAD.try_with(|t| t.set(true));
}

/// The propagators in force (`OTEL_PROPAGATORS`): bit 0 W3C trace context, bit 1 W3C baggage.
static PROPAGATORS: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0b11);

fn set_propagators(p: config::Propagators) {
    let bits = u8::from(p.tracecontext) | (u8::from(p.baggage) << 1);
    PROPAGATORS.store(bits, std::sync::atomic::Ordering::Relaxed);
}

/// The propagators in force.
#[cfg(feature = "http")]
pub(crate) fn propagators() -> config::Propagators {
    let bits = PROPAGATORS.load(std::sync::atomic::Ordering::Relaxed);
    config::Propagators {
        tracecontext: bits & 1 != 0,
        baggage: bits & 2 != 0,
    }
}
mod redact;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry::logs::LogRecord as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry::KeyValue;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::logs::{LogBatch, LogExporter as _, SdkLogRecord, SdkLoggerProvider};
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter as _};
use opentelemetry_sdk::Resource;
use tracing_core::Subscriber;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

pub(crate) use batch::Report;
pub use batch::SignalStats;
use batch::{Batcher, Counters, Export};
use config::SignalSettings;
pub use config::{BatchConfig, Compression, OtelConfig, Protocol, Sampler};
pub(crate) use ids::write_trace_ids;

use crate::error::Error;
use crate::redact::Redactor;

/// Export counts of the pipeline installed last (by [`init`](crate::init) or
/// [`OtelPipeline::start`]).
///
/// ```
/// let s = tracelight::otel::stats();
/// assert_eq!(s.spans.failed + s.logs.failed, 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct OtelStats {
    /// Spans.
    pub spans: SignalStats,
    /// Log records.
    pub logs: SignalStats,
    /// Metrics: one item per reading of the series (every export interval, and at shutdown).
    pub metrics: SignalStats,
}

/// The counters of each signal of a pipeline: spans, log records, metrics readings.
#[derive(Debug, Clone, Default)]
struct SignalCounters {
    spans: Arc<Counters>,
    logs: Arc<Counters>,
    metrics: Arc<Counters>,
}

impl SignalCounters {
    fn stats(&self) -> OtelStats {
        OtelStats {
            spans: self.spans.snapshot(),
            logs: self.logs.snapshot(),
            metrics: self.metrics.snapshot(),
        }
    }
}

static LAST: Mutex<Option<SignalCounters>> = Mutex::new(None);

/// Export counts of the pipeline started last: queued, exported, dropped (queue full) and failed,
/// per signal. All zero when nothing is exported.
///
/// ```
/// let s = tracelight::otel::stats();
/// println!("{} spans dropped, {} log records lost to failed exports", s.spans.dropped, s.logs.failed);
/// ```
pub fn stats() -> OtelStats {
    started_stats().unwrap_or_default()
}

/// [`stats`], or `None` when no pipeline was started: the export series are then left out of
/// the metrics.
pub(crate) fn started_stats() -> Option<OtelStats> {
    LAST.lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
        .map(SignalCounters::stats)
}

/// What the resource says about the service when the OpenTelemetry settings do not.
#[derive(Debug, Clone, Default)]
pub(crate) struct ResourceDefaults {
    pub(crate) service: String,
    pub(crate) env: Option<String>,
    pub(crate) host: String,
}

/// A running export pipeline: the tracer and logger providers and their export threads.
///
/// [`init`](crate::init) starts one when the configuration has an endpoint and keeps it in the
/// [`Guard`](crate::Guard). To compose layers yourself, start it, add [`layer`](OtelPipeline::layer)
/// *before* tracelight's layer, and keep the pipeline alive:
///
/// ```no_run
/// use tracing_subscriber::prelude::*;
/// use tracelight::otel::{OtelConfig, OtelPipeline};
///
/// let otel = OtelPipeline::start(&OtelConfig::new().endpoint("http://127.0.0.1:4318"), "shop")?
///     .expect("an endpoint is set");
/// let (layer, guard) = tracelight::builder().service("shop").build()?;
/// tracing_subscriber::registry().with(otel.layer()).with(layer).init();
/// // … at the end:
/// otel.shutdown();
/// drop(guard);
/// # Ok::<(), tracelight::Error>(())
/// ```
pub struct OtelPipeline {
    tracer: Option<SdkTracerProvider>,
    logger: Option<SdkLoggerProvider>,
    /// The metrics export, when metrics are exported: started for the first tracelight layer
    /// stacked above [`layer`](OtelPipeline::layer) (or by [`OtelPipeline::export_metrics`]).
    #[cfg(any(feature = "otel-http", feature = "otel-grpc"))]
    metrics: Option<Arc<metrics::MetricsHook>>,
    /// Whether the last metrics reading, at shutdown, was not exported.
    metrics_last_lost: std::sync::atomic::AtomicBool,
    counters: SignalCounters,
    /// What to say at start about the settings (TLS files that are not used).
    warnings: Vec<String>,
    shutdown_timeout: Duration,
    done: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for OtelPipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtelPipeline")
            .field("traces", &self.tracer.is_some())
            .field("logs", &self.logger.is_some())
            .field("metrics", &self.exports_metrics())
            .finish_non_exhaustive()
    }
}

impl OtelPipeline {
    /// Starts the export threads for `config`, with `service` as the default `service.name` and
    /// the default redaction rules; `Ok(None)` when the configuration exports nothing.
    pub fn start(config: &OtelConfig, service: &str) -> Result<Option<OtelPipeline>, Error> {
        let defaults = ResourceDefaults {
            service: service.to_owned(),
            env: None,
            host: crate::util::hostname(),
        };
        if let Some(w) = config::not_honoured_warning(&config.not_honoured) {
            crate::util::say(format!("tracelight: {w}"));
        }
        for w in config.setting_warnings() {
            crate::util::say(format!("tracelight: {w}"));
        }
        let pipeline = OtelPipeline::start_with(config, &defaults, Some(Redactor::default()))?;
        for w in pipeline.iter().flat_map(|p| &p.warnings) {
            crate::util::say(format!("tracelight: {w}"));
        }
        Ok(pipeline)
    }

    pub(crate) fn start_with(
        config: &OtelConfig,
        defaults: &ResourceDefaults,
        redactor: Option<Redactor>,
    ) -> Result<Option<OtelPipeline>, Error> {
        let traces = config.signal(false)?;
        let logs = config.signal(true)?;
        let metrics_settings = config.metrics_signal()?;
        for s in traces
            .iter()
            .chain(logs.iter())
            .chain(metrics_settings.iter())
        {
            s.protocol.check_compiled()?;
        }
        set_propagators(config.propagators.unwrap_or_default());
        if traces.is_none() && logs.is_none() && metrics_settings.is_none() {
            return Ok(None);
        }
        let warnings = unused_tls_warnings(&[
            ("traces", traces.as_ref()),
            ("logs", logs.as_ref()),
            ("metrics", metrics_settings.as_ref()),
        ]);
        let resource = resource(config, defaults, redactor.as_ref());
        let counters = SignalCounters::default();
        let span_counters = Arc::clone(&counters.spans);
        let log_counters = Arc::clone(&counters.logs);
        let tracer = match traces {
            None => None,
            Some(settings) => {
                let batch = config.batch(false);
                let res = resource.clone();
                let red = redactor.clone();
                let url = config::without_password(&settings.url);
                let batcher =
                    Batcher::start("spans", url, batch, Arc::clone(&span_counters), move || {
                        SpanSink::new(&settings, batch.export_timeout, &res, red)
                    })?;
                let sampler = config.sampler.unwrap_or_default().to_sdk();
                let mut builder = SdkTracerProvider::builder()
                    .with_span_processor(SpanQueue(batcher))
                    .with_sampler(sampler)
                    .with_resource(resource.clone());
                let limits = config.span_limits;
                if let Some(n) = limits.attributes {
                    builder = builder.with_max_attributes_per_span(n);
                }
                if let Some(n) = limits.events {
                    builder = builder.with_max_events_per_span(n);
                }
                if let Some(n) = limits.links {
                    builder = builder.with_max_links_per_span(n);
                }
                if let Some(n) = limits.event_attributes {
                    builder = builder.with_max_attributes_per_event(n);
                }
                if let Some(n) = limits.link_attributes {
                    builder = builder.with_max_attributes_per_link(n);
                }
                Some(builder.build())
            }
        };
        let logger = match logs {
            None => None,
            Some(settings) => {
                let batch = config.batch(true);
                let res = resource.clone();
                let red = redactor.clone();
                let url = config::without_password(&settings.url);
                let batcher =
                    Batcher::start("logs", url, batch, Arc::clone(&log_counters), move || {
                        LogSink::new(&settings, batch.export_timeout, &res, red)
                    })?;
                Some(
                    SdkLoggerProvider::builder()
                        .with_log_processor(LogQueue(batcher))
                        .with_resource(resource.clone())
                        .build(),
                )
            }
        };
        #[cfg(any(feature = "otel-http", feature = "otel-grpc"))]
        let metrics = metrics_settings.map(|settings| {
            let (interval, timeout) = config.metrics_schedule();
            let plan = metrics::MetricsPlan {
                settings,
                interval,
                timeout,
                resource,
            };
            Arc::new(metrics::MetricsHook::new(plan, counters.clone()))
        });
        *LAST.lock().unwrap_or_else(|p| p.into_inner()) = Some(counters.clone());
        Ok(Some(OtelPipeline {
            tracer,
            logger,
            #[cfg(any(feature = "otel-http", feature = "otel-grpc"))]
            metrics,
            metrics_last_lost: std::sync::atomic::AtomicBool::new(false),
            counters,
            warnings,
            shutdown_timeout: config.shutdown_timeout.unwrap_or(Duration::from_secs(5)),
            done: std::sync::atomic::AtomicBool::new(false),
        }))
    }

    /// The layers that turn spans into OpenTelemetry spans and events into log records. Add them
    /// before tracelight's layer: the JSON lines then see the span's trace context, and the
    /// tracelight layer builds each log record from its own capture of the event (the line's
    /// fields, timestamp and context, the error as `exception.*`); without a tracelight layer
    /// above, the stock `opentelemetry-appender-tracing` bridge builds them.
    pub fn layer<S>(&self) -> impl Layer<S> + Send + Sync + 'static
    where
        S: Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
    {
        self.layer_beside(None)
    }

    /// [`layer`](Self::layer), stacked above tracelight's `filter`: the events that filter lets
    /// through only for the flight recorder are not exported.
    pub(crate) fn layer_beside<S>(
        &self,
        filter: Option<crate::LogFilter>,
    ) -> impl Layer<S> + Send + Sync + 'static
    where
        S: Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
    {
        ids::activate();
        // What the exporter's own clients log and trace on the export threads (h2's frames and
        // connection spans at DEBUG) is not exported: that would feed itself.
        let not_exporting = || {
            let filter = filter.clone();
            tracing_subscriber::filter::dynamic_filter_fn(
                move |meta: &tracing_core::Metadata<'_>, ctx| {
                    !on_export_thread()
                        && !filter
                            .as_ref()
                            .is_some_and(|f| f.recorder_only(meta, ctx.clone()))
                },
            )
        };
        let spans = self.tracer.as_ref().map(|p| {
            tracing_opentelemetry::layer()
                .with_tracer(p.tracer("tracelight"))
                .with_threads(false)
                .with_filter(not_exporting())
        });
        // The records are built by the tracelight layer above, from its capture of each event
        // (see `logs`); the stock bridge builds them only when there is none.
        let logs = self
            .logger
            .as_ref()
            .map(|l| logs::LogLayer::new(l).with_filter(not_exporting()));
        // Found by the tracelight layer above, which starts the metrics export for its state.
        #[cfg(any(feature = "otel-http", feature = "otel-grpc"))]
        let metrics = self
            .metrics
            .as_ref()
            .map(|m| metrics::MetricsClaim(Arc::clone(m)));
        #[cfg(not(any(feature = "otel-http", feature = "otel-grpc")))]
        let metrics: Option<tracing_subscriber::layer::Identity> = None;
        Layer::and_then(spans, logs).and_then(metrics)
    }

    /// Starts exporting the metrics of the tracelight layer that `handle` belongs to, when the
    /// configuration exports metrics ([`OtelConfig::metrics`], `OTEL_METRICS_EXPORTER=otlp`):
    /// its series (those of the admin router's `/metrics`) are read every export interval and
    /// at shutdown, and sent as OTLP metrics. The first tracelight layer stacked above
    /// [`layer`](OtelPipeline::layer) starts it by itself; call this for a layer stacked
    /// elsewhere, or to see the error when the export cannot start. Once started (for any
    /// state), or after the shutdown, a call does nothing.
    ///
    /// ```no_run
    /// use tracing_subscriber::prelude::*;
    /// use tracelight::otel::{OtelConfig, OtelPipeline};
    ///
    /// let config = OtelConfig::new().endpoint("http://127.0.0.1:4318").metrics(true);
    /// let otel = OtelPipeline::start(&config, "shop")?.expect("an endpoint is set");
    /// let (layer, guard) = tracelight::builder().service("shop").build()?;
    /// // Stacked together, the layer starts the export itself; this call starts it first, to
    /// // see an error (a TLS file that cannot be used) instead of a line on stderr.
    /// otel.export_metrics(&layer.handle())?;
    /// tracing_subscriber::registry().with(otel.layer()).with(layer).init();
    /// # Ok::<(), tracelight::Error>(())
    /// ```
    #[cfg_attr(
        not(any(feature = "otel-http", feature = "otel-grpc")),
        allow(unused_variables, clippy::unnecessary_wraps)
    )]
    pub fn export_metrics(&self, handle: &crate::Handle) -> Result<(), Error> {
        #[cfg(any(feature = "otel-http", feature = "otel-grpc"))]
        if let Some(hook) = &self.metrics {
            hook.attach(&handle.shared)?;
        }
        Ok(())
    }

    /// What to say at start about its settings, as WARN lines.
    pub(crate) fn start_warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Whether this pipeline exports metrics.
    fn exports_metrics(&self) -> bool {
        #[cfg(any(feature = "otel-http", feature = "otel-grpc"))]
        return self.metrics.is_some();
        #[cfg(not(any(feature = "otel-http", feature = "otel-grpc")))]
        false
    }

    /// Exports everything queued so far, and a reading of the metrics; waits at most the
    /// shutdown timeout.
    pub fn flush(&self) {
        std::thread::scope(|s| {
            #[cfg(any(feature = "otel-http", feature = "otel-grpc"))]
            if let Some(m) = &self.metrics {
                let timeout = self.shutdown_timeout;
                s.spawn(move || m.flush(timeout));
            }
            if let Some(t) = &self.tracer {
                s.spawn(move || t.force_flush());
            }
            if let Some(l) = &self.logger {
                let _ = l.force_flush();
            }
        });
    }

    /// Flushes and shuts both providers down (what dropping does). Safe to call from any thread,
    /// in or out of a Tokio runtime of any flavour.
    ///
    /// Both signals shut down at once, within one total time (`shutdown_timeout`, default 5 s):
    /// what is still queued or being exported when it runs out (a collector that never answers)
    /// is counted as `lost_at_shutdown`. When anything was lost, one line says how much, per
    /// signal and why (a WARN with target `tracelight::otel`, also on stderr).
    pub fn shutdown(&self) {
        if self.done.swap(true, std::sync::atomic::Ordering::AcqRel) {
            return;
        }
        let timeout = self.shutdown_timeout;
        #[cfg(any(feature = "otel-http", feature = "otel-grpc"))]
        let deadline = std::time::Instant::now() + timeout;
        std::thread::scope(|s| {
            if let Some(t) = &self.tracer {
                s.spawn(move || {
                    let _ = t.shutdown_with_timeout(timeout);
                });
            }
            if let Some(l) = &self.logger {
                let _ = l.shutdown_with_timeout(timeout);
            }
        });
        // The last metrics reading after the spans and records are done, so that it has their
        // final counts, within what is left of the time.
        #[cfg(any(feature = "otel-http", feature = "otel-grpc"))]
        if let Some(m) = &self.metrics {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if !m.was_attached() {
                crate::util::say(
                    "tracelight: OpenTelemetry metrics were turned on but never exported: no \
                     tracelight layer was stacked with the pipeline's layer (call \
                     OtelPipeline::export_metrics for one stacked elsewhere)"
                        .to_owned(),
                );
            }
            if m.shutdown(left) == Some(false) {
                self.metrics_last_lost
                    .store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
        if let Some(summary) = self.loss_summary() {
            eprintln!("tracelight: {summary}");
            // Not exported itself (the pipeline is down, and this would feed it).
            let _suppressed = opentelemetry::Context::enter_telemetry_suppressed_scope();
            let st = self.stats();
            self.counters.spans.say(
                false,
                &summary,
                &[
                    ("spans_lost", crate::state::SynthValue::U64(st.spans.lost())),
                    ("logs_lost", crate::state::SynthValue::U64(st.logs.lost())),
                    (
                        "metrics_last_reading_lost",
                        crate::state::SynthValue::U64(u64::from(
                            self.metrics_last_lost
                                .load(std::sync::atomic::Ordering::Relaxed),
                        )),
                    ),
                ],
            );
        }
    }

    /// `OpenTelemetry export lost …`, when anything was lost.
    fn loss_summary(&self) -> Option<String> {
        let st = self.stats();
        let timeout = self.shutdown_timeout;
        let part = |name: &str, s: &SignalStats, c: &Counters| {
            (s.lost() > 0).then(|| {
                let to = c
                    .endpoint
                    .get()
                    .map_or_else(String::new, |e| format!(" to {e}"));
                // Lost at shutdown with no failure seen: the collector had not answered yet.
                let why = if s.lost_at_shutdown > 0 {
                    format!(
                        " (still queued or being exported when the shutdown timeout of \
                         {timeout:?} ran out{})",
                        if s.failed_exports == 0 && s.exported == 0 {
                            ": the collector had not answered"
                        } else {
                            ""
                        }
                    )
                } else {
                    String::new()
                };
                format!(
                    "{name}{to}: {} made, {} exported, {} dropped (queue full), {} failed, {} lost at shutdown{why}",
                    s.created(),
                    s.exported,
                    s.dropped,
                    s.failed,
                    s.lost_at_shutdown
                )
            })
        };
        let parts: Vec<String> = [
            part("spans", &st.spans, &self.counters.spans),
            part("log records", &st.logs, &self.counters.logs),
        ]
        .into_iter()
        .flatten()
        .chain(
            // A reading that failed loses nothing the next one does not carry (the totals);
            // only the last one, at shutdown, does.
            self.metrics_last_lost
                .load(std::sync::atomic::Ordering::Relaxed)
                .then(|| {
                    let to = self
                        .counters
                        .metrics
                        .endpoint
                        .get()
                        .map_or_else(String::new, |e| format!(" to {e}"));
                    format!(
                        "metrics{to}: the last reading, at shutdown, was not exported (the \
                         totals since the last reading exported, {} of {} readings)",
                        st.metrics.exported,
                        st.metrics.created()
                    )
                }),
        )
        .collect();
        (!parts.is_empty())
            .then(|| format!("OpenTelemetry export lost telemetry: {}", parts.join("; ")))
    }

    /// Writes the export's own lines (failures, recoveries, the loss summary) with `report`.
    pub(crate) fn set_report(&self, report: batch::Report) {
        let _ = self.counters.spans.report.set(Arc::clone(&report));
        let _ = self.counters.logs.report.set(Arc::clone(&report));
        let _ = self.counters.metrics.report.set(report);
    }

    /// Export counts of this pipeline.
    pub fn stats(&self) -> OtelStats {
        self.counters.stats()
    }
}

impl Drop for OtelPipeline {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// One warning per set of TLS files given for endpoints that are not `https://`: the files are
/// not used, which is a mistake more often than not (an `http://` left behind).
fn unused_tls_warnings(signals: &[(&str, Option<&SignalSettings>)]) -> Vec<String> {
    let mut by_files: Vec<(Vec<&'static str>, Vec<String>)> = Vec::new();
    for (name, settings) in signals {
        let Some(s) = settings.filter(|s| !s.unused_tls.is_empty()) else {
            continue;
        };
        let to = format!("{name} to {}", config::without_password(&s.url));
        match by_files
            .iter_mut()
            .find(|(files, _)| *files == s.unused_tls)
        {
            Some((_, exports)) => exports.push(to),
            None => by_files.push((s.unused_tls.clone(), vec![to])),
        }
    }
    by_files
        .into_iter()
        .map(|(files, exports)| {
            format!(
                "{} set, but the OpenTelemetry export ({}) is not to an https:// endpoint: the \
                 TLS files are not used, and the export is not encrypted",
                files.join(", "),
                exports.join(", ")
            )
        })
        .collect()
}

fn resource(config: &OtelConfig, d: &ResourceDefaults, redactor: Option<&Redactor>) -> Resource {
    let mut attrs: Vec<KeyValue> = Vec::new();
    let from_attrs = |k: &str| {
        config
            .resource
            .iter()
            .find(|(rk, _)| rk == k)
            .map(|(_, v)| v.clone())
    };
    let service = config
        .service_name
        .clone()
        .or_else(|| from_attrs("service.name"))
        .unwrap_or_else(|| d.service.clone());
    attrs.push(KeyValue::new("service.name", service));
    if let Some(v) = config
        .service_version
        .clone()
        .or_else(|| from_attrs("service.version"))
    {
        attrs.push(KeyValue::new("service.version", v));
    }
    if let Some(env) = from_attrs("deployment.environment.name").or_else(|| d.env.clone()) {
        attrs.push(KeyValue::new("deployment.environment.name", env));
    }
    attrs.push(KeyValue::new(
        "host.name",
        from_attrs("host.name").unwrap_or_else(|| d.host.clone()),
    ));
    attrs.push(KeyValue::new("process.pid", i64::from(std::process::id())));
    for (k, v) in &config.resource {
        if !attrs.iter().any(|a| a.key.as_str() == k) {
            // Resource attributes are redacted as fields are.
            let v = match redactor {
                Some(r) if r.is_secret_key(k) => crate::REDACTED.to_owned(),
                Some(r) => r.redact_str(v),
                None => v.clone(),
            };
            attrs.push(KeyValue::new(k.clone(), v));
        }
    }
    Resource::builder_empty()
        .with_detector(Box::new(
            opentelemetry_sdk::resource::TelemetryResourceDetector,
        ))
        .with_attributes(attrs)
        .build()
}

/// The exporter's error, or, where it says only "network error", the chain the HTTP client
/// noted for that failure.
fn described(error: &str, client: &failure::DescribedClient) -> String {
    let noted = client.take_reason();
    match noted {
        Some(chain) if error.contains("network error") => chain,
        _ => error.to_owned(),
    }
}

fn build_error(what: &str, url: &str, e: impl std::fmt::Display) -> Error {
    Error::InvalidSetting {
        setting: format!("OpenTelemetry {what} exporter"),
        reason: format!(
            "cannot export to {:?}: {}",
            config::without_password(url),
            failure::scrub(&e.to_string())
        ),
    }
}

/// A gRPC request header.
#[cfg(feature = "otel-grpc")]
type GrpcHeader = (
    tonic::metadata::MetadataKey<tonic::metadata::Ascii>,
    tonic::metadata::MetadataValue<tonic::metadata::Ascii>,
);

/// The resolved headers as gRPC metadata, set last on every request.
#[cfg(feature = "otel-grpc")]
fn grpc_metadata(headers: &[(String, String)]) -> Vec<GrpcHeader> {
    failure::header_map(headers)
        .into_iter()
        .filter_map(|(k, v)| {
            Some((
                tonic::metadata::MetadataKey::from_bytes(k.as_str().as_bytes()).ok()?,
                tonic::metadata::MetadataValue::try_from(v.as_bytes()).ok()?,
            ))
        })
        .collect()
}

/// Builds an OTLP exporter of either signal: the span and log builders have the same methods
/// but no common trait. A transport whose feature is not compiled is an error (which
/// [`OtelConfig`]'s checks at start report first, naming the feature).
macro_rules! otlp_exporter {
    ($exporter:ty, $settings:expr, $timeout:expr, $client:expr) => {{
        #[allow(unused_imports)]
        use opentelemetry_otlp::WithExportConfig as _;
        let settings: &SignalSettings = $settings;
        #[allow(unused_variables)]
        let (timeout, client) = ($timeout, $client);
        #[allow(unused_variables)]
        let compression = match settings.compression {
            Compression::Gzip => Some(()),
            _ => None,
        };
        let built: Result<$exporter, String> = match settings.protocol {
            #[cfg(feature = "otel-grpc")]
            Protocol::Grpc => {
                use opentelemetry_otlp::WithTonicConfig as _;
                // The resolved headers, set last on every request (after the exporter's own
                // metadata, which reads `OTEL_EXPORTER_OTLP_HEADERS` again by itself).
                let metadata = grpc_metadata(&settings.headers);
                let last_word = move |mut req: tonic::Request<()>| {
                    for (k, v) in &metadata {
                        req.metadata_mut().insert(k.clone(), v.clone());
                    }
                    Ok(req)
                };
                let mut b = <$exporter>::builder()
                    .with_tonic()
                    .with_endpoint(&settings.url)
                    .with_timeout(timeout)
                    .with_interceptor(last_word);
                if compression.is_some() {
                    b = b.with_compression(opentelemetry_otlp::Compression::Gzip);
                }
                if let Some(tls) = &settings.tls {
                    b = b.with_tls_config(tls.tonic_config());
                }
                b.build().map_err(|e| e.to_string())
            }
            #[cfg(feature = "otel-http")]
            Protocol::HttpProtobuf => {
                use opentelemetry_otlp::WithHttpConfig as _;
                let mut b = <$exporter>::builder()
                    .with_http()
                    .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                    .with_endpoint(&settings.url)
                    .with_timeout(timeout)
                    .with_http_client(client)
                    .with_headers(settings.headers.iter().cloned().collect());
                if compression.is_some() {
                    b = b.with_compression(opentelemetry_otlp::Compression::Gzip);
                }
                b.build().map_err(|e| e.to_string())
            }
            #[allow(unreachable_patterns)]
            other => Err(format!(
                "the {} transport is not compiled in: enable tracelight's `{}` feature",
                other.name(),
                other.feature()
            )),
        };
        built
    }};
}

/// The OTLP exporters, or in a build without a transport (`otel-core` alone) a type that is
/// never built: the configuration is refused at start ([`Protocol::compiled`]).
#[cfg(any(feature = "otel-http", feature = "otel-grpc"))]
type OtlpSpanExporter = opentelemetry_otlp::SpanExporter;
#[cfg(any(feature = "otel-http", feature = "otel-grpc"))]
type OtlpLogExporter = opentelemetry_otlp::LogExporter;
#[cfg(not(any(feature = "otel-http", feature = "otel-grpc")))]
type OtlpSpanExporter = NoSpanTransport;
#[cfg(not(any(feature = "otel-http", feature = "otel-grpc")))]
type OtlpLogExporter = NoLogTransport;

/// No transport compiled in: uninhabited.
#[cfg(not(any(feature = "otel-http", feature = "otel-grpc")))]
#[derive(Debug)]
enum NoSpanTransport {}

/// No transport compiled in: uninhabited.
#[cfg(not(any(feature = "otel-http", feature = "otel-grpc")))]
#[derive(Debug)]
enum NoLogTransport {}

#[cfg(not(any(feature = "otel-http", feature = "otel-grpc")))]
impl opentelemetry_sdk::trace::SpanExporter for NoSpanTransport {
    fn export(
        &self,
        _batch: Vec<SpanData>,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        let this = self;
        async move { match *this {} }
    }
}

#[cfg(not(any(feature = "otel-http", feature = "otel-grpc")))]
impl opentelemetry_sdk::logs::LogExporter for NoLogTransport {
    fn export(
        &self,
        _batch: LogBatch<'_>,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        let this = self;
        async move { match *this {} }
    }
}

/// The span side of an export thread.
#[derive(Debug)]
struct SpanSink {
    exporter: OtlpSpanExporter,
    /// The HTTP client (unused over gRPC), which knows why a request failed.
    client: failure::DescribedClient,
    scrub: Option<redact::Scrubber>,
}

impl SpanSink {
    fn new(
        settings: &SignalSettings,
        timeout: Duration,
        resource: &Resource,
        redactor: Option<Redactor>,
    ) -> Result<SpanSink, Error> {
        let client =
            failure::DescribedClient::new(timeout, &settings.headers, settings.tls.as_ref())
                .map_err(|e| build_error("span", &settings.url, e))?;
        let mut exporter = otlp_exporter!(OtlpSpanExporter, settings, timeout, client.clone())
            .map_err(|e| build_error("span", &settings.url, e))?;
        exporter.set_resource(resource);
        Ok(SpanSink {
            exporter,
            client,
            scrub: redactor.map(redact::Scrubber::new),
        })
    }
}

impl Export for SpanSink {
    type Item = SpanData;
    async fn export(&mut self, mut batch: Vec<SpanData>) -> Result<(), String> {
        if let Some(s) = &mut self.scrub {
            for span in &mut batch {
                s.span(span);
            }
        }
        self.client.clear();
        let result = self.exporter.export(batch).await;
        result.map_err(|e| described(&e.to_string(), &self.client))
    }
    fn shutdown(&mut self) {
        let _ = self.exporter.shutdown();
    }
}

/// The log side of an export thread.
#[derive(Debug)]
struct LogSink {
    exporter: OtlpLogExporter,
    /// The HTTP client (unused over gRPC), which knows why a request failed.
    client: failure::DescribedClient,
    scrub: Option<redact::Scrubber>,
}

impl std::fmt::Debug for redact::Scrubber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scrubber").finish_non_exhaustive()
    }
}

impl LogSink {
    fn new(
        settings: &SignalSettings,
        timeout: Duration,
        resource: &Resource,
        redactor: Option<Redactor>,
    ) -> Result<LogSink, Error> {
        let client =
            failure::DescribedClient::new(timeout, &settings.headers, settings.tls.as_ref())
                .map_err(|e| build_error("log", &settings.url, e))?;
        let mut exporter = otlp_exporter!(OtlpLogExporter, settings, timeout, client.clone())
            .map_err(|e| build_error("log", &settings.url, e))?;
        exporter.set_resource(resource);
        Ok(LogSink {
            exporter,
            client,
            scrub: redactor.map(redact::Scrubber::new),
        })
    }
}

type LogItem = Box<(SdkLogRecord, opentelemetry::InstrumentationScope)>;

impl Export for LogSink {
    type Item = LogItem;
    async fn export(&mut self, mut batch: Vec<LogItem>) -> Result<(), String> {
        if let Some(s) = &mut self.scrub {
            for item in &mut batch {
                if let Some(clean) = s.log(&item.0) {
                    item.0 = clean;
                }
            }
        }
        let refs: Vec<(&SdkLogRecord, &opentelemetry::InstrumentationScope)> =
            batch.iter().map(|b| (&b.0, &b.1)).collect();
        self.client.clear();
        let result = self.exporter.export(LogBatch::new(&refs)).await;
        result.map_err(|e| described(&e.to_string(), &self.client))
    }
    fn shutdown(&mut self) {
        let _ = self.exporter.shutdown();
    }
}

fn flush_result(done: bool, timeout: Duration) -> OTelSdkResult {
    if done {
        Ok(())
    } else {
        Err(OTelSdkError::Timeout(timeout))
    }
}

/// The span processor: ended, sampled spans into the queue.
#[derive(Debug)]
struct SpanQueue(Batcher<SpanData>);

impl opentelemetry_sdk::trace::SpanProcessor for SpanQueue {
    fn on_start(&self, _span: &mut opentelemetry_sdk::trace::Span, _cx: &opentelemetry::Context) {}

    fn on_end(&self, span: SpanData) {
        if span.span_context.is_sampled() {
            self.0.push(span);
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        let t = Duration::from_secs(5);
        flush_result(self.0.flush(t), t)
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        flush_result(self.0.shutdown(timeout), timeout)
    }
}

/// The log processor: records into the queue.
#[derive(Debug)]
struct LogQueue(Batcher<LogItem>);

impl opentelemetry_sdk::logs::LogProcessor for LogQueue {
    fn emit(&self, record: &mut SdkLogRecord, scope: &opentelemetry::InstrumentationScope) {
        // The bridge leaves the event time to the observed time; say it is the event's.
        if record.timestamp().is_none() {
            if let Some(t) = record.observed_timestamp() {
                record.set_timestamp(t);
            }
        }
        self.0.push(Box::new((record.clone(), scope.clone())));
    }

    fn force_flush(&self) -> OTelSdkResult {
        let t = Duration::from_secs(5);
        flush_result(self.0.flush(t), t)
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        flush_result(self.0.shutdown(timeout), timeout)
    }
}
