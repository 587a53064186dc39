//! OTLP metrics: the series of the admin router's `/metrics` ([`crate::series`]), read every
//! export interval and sent to the collector as cumulative sums, gauges and histograms.
//!
//! The series are tracelight's own totals (kept whether or not anything is exported), so there
//! is no SDK meter on the event path: each export reads them once, as `/metrics` does. The
//! readings go through the same bounded export thread as spans and log records
//! ([`Batcher`]), one item per reading: a collector that is slow or away costs skipped
//! readings (counted as dropped), never a blocked service, and the last reading is exported at
//! shutdown.

use std::sync::{Arc, Condvar, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1 as pm;
use opentelemetry_proto::tonic::resource::v1::Resource as ProtoResource;

use super::batch::{Batcher, Counters, Export};
use super::config::{BatchConfig, SignalSettings};
use crate::error::Error;
use crate::series::{Family, Kind, Value};
use crate::state::{Handle, Shared};

/// One reading to export (taken when the export thread gets to it).
#[derive(Debug)]
pub(crate) struct Reading;

/// What the metrics export is started with, resolved when the pipeline starts (so that a bad
/// setting fails `init`).
#[derive(Debug, Clone)]
pub(crate) struct MetricsPlan {
    pub(crate) settings: SignalSettings,
    pub(crate) interval: Duration,
    pub(crate) timeout: Duration,
    pub(crate) resource: opentelemetry_sdk::Resource,
}

/// A pipeline's metrics export: started once for one tracelight state, by the first tracelight
/// layer stacked above the pipeline's layer (which finds it through `downcast_ref`, as the log
/// export) or by [`OtelPipeline::export_metrics`](super::OtelPipeline::export_metrics); stopped
/// once, by the pipeline's shutdown.
pub(crate) struct MetricsHook {
    plan: MetricsPlan,
    /// The pipeline's counters: the readings' own, and every signal's for the export series.
    counters: super::SignalCounters,
    /// When the pipeline started (where its export counts start).
    started: SystemTime,
    run: Mutex<Run>,
}

enum Run {
    /// No tracelight state attached yet.
    Idle,
    Running(Arc<MetricsExport>),
    /// The export could not start (said once, on stderr, and by `export_metrics`).
    Failed(String),
    /// Shut down: nothing starts any more.
    Done,
}

impl std::fmt::Debug for MetricsHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsHook").finish_non_exhaustive()
    }
}

impl MetricsHook {
    pub(crate) fn new(plan: MetricsPlan, counters: super::SignalCounters) -> MetricsHook {
        MetricsHook {
            plan,
            counters,
            started: SystemTime::now(),
            run: Mutex::new(Run::Idle),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Run> {
        self.run.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts the export of `shared`'s series, unless one is running or the pipeline is down.
    pub(crate) fn attach(&self, shared: &Arc<Shared>) -> Result<(), Error> {
        let mut run = self.lock();
        match &*run {
            Run::Idle => {}
            Run::Failed(why) => {
                return Err(Error::InvalidSetting {
                    setting: "OpenTelemetry metric exporter".into(),
                    reason: why.clone(),
                })
            }
            Run::Running(_) | Run::Done => return Ok(()),
        }
        let start = self.started.min(shared.started);
        match MetricsExport::start(&self.plan, shared, self.counters.clone(), start) {
            Ok(export) => {
                *run = Run::Running(Arc::new(export));
                Ok(())
            }
            Err(e) => {
                *run = Run::Failed(e.to_string());
                Err(e)
            }
        }
    }

    /// [`attach`](MetricsHook::attach) from a layer's `on_layer`, which cannot fail: an error is
    /// said on stderr (and returned again by `export_metrics`).
    pub(crate) fn attach_quietly(&self, shared: &Arc<Shared>) {
        if let Err(e) = self.attach(shared) {
            crate::util::say(format!(
                "tracelight: OpenTelemetry metrics are not exported: {e}"
            ));
        }
    }

    /// Exports a reading now; waits at most `timeout`.
    pub(crate) fn flush(&self, timeout: Duration) {
        let running = match &*self.lock() {
            Run::Running(export) => Some(Arc::clone(export)),
            _ => None,
        };
        if let Some(export) = running {
            export.flush(timeout);
        }
    }

    /// Whether a tracelight state was attached (the export ran, or could not start).
    pub(crate) fn was_attached(&self) -> bool {
        !matches!(&*self.lock(), Run::Idle)
    }

    /// Stops the export, exporting the last reading within `timeout`. `Some(false)` when that
    /// reading was not exported (failed, or out of time); `None` when nothing was running.
    pub(crate) fn shutdown(&self, timeout: Duration) -> Option<bool> {
        let running = match std::mem::replace(&mut *self.lock(), Run::Done) {
            Run::Running(export) => export,
            _ => return None,
        };
        Some(running.shutdown(timeout))
    }
}

/// The layer that lets a tracelight layer above find the pipeline's metrics export.
pub(crate) struct MetricsClaim(pub(crate) Arc<MetricsHook>);

impl<S: tracing_core::Subscriber> tracing_subscriber::Layer<S> for MetricsClaim {
    /// A tracelight layer stacked below the pipeline's (the other order) is found from here.
    fn on_layer(&mut self, subscriber: &mut S) {
        let below: &dyn tracing_core::Subscriber = &*subscriber;
        if let Some(state) = below.downcast_ref::<crate::state::StateRef>() {
            self.0.attach_quietly(&state.shared);
        }
    }

    // The one `unsafe` item: the trait method is `unsafe` to implement. The pointer returned is
    // to the hook this layer holds, valid as long as the `&self` it came from, and tagged with
    // the exact type it points to.
    #[doc(hidden)]
    #[allow(unsafe_code)]
    unsafe fn downcast_raw(&self, id: std::any::TypeId) -> Option<*const ()> {
        if id == std::any::TypeId::of::<Self>() {
            Some(self as *const Self as *const ())
        } else if id == std::any::TypeId::of::<Arc<MetricsHook>>() {
            Some(&self.0 as *const Arc<MetricsHook> as *const ())
        } else {
            None
        }
    }
}

/// Starts the metrics export of the pipeline found below in `subscriber`, if any, for `shared`.
pub(crate) fn claim(shared: &Arc<Shared>, subscriber: &dyn tracing_core::Subscriber) {
    if let Some(hook) = subscriber.downcast_ref::<Arc<MetricsHook>>() {
        hook.attach_quietly(shared);
    }
}

/// The running metrics export: the export thread and the timer that asks for a reading every
/// interval.
struct MetricsExport {
    batcher: Arc<Batcher<Reading>>,
    counters: Arc<Counters>,
    stop: Arc<(Mutex<bool>, Condvar)>,
    timer: Mutex<Option<JoinHandle<()>>>,
}

impl MetricsExport {
    fn start(
        plan: &MetricsPlan,
        shared: &Arc<Shared>,
        counters: super::SignalCounters,
        start: SystemTime,
    ) -> Result<MetricsExport, Error> {
        let batch = BatchConfig::default()
            // One reading waits while one is exported; a newer one is not needed more (each
            // carries the totals), so a reading that finds one waiting is not taken.
            .max_queue_size(1)
            .max_export_batch_size(1)
            // A reading is exported as soon as it is queued (the queue is then full, which
            // wakes the export thread); the thread has no other reason to wake.
            .scheduled_delay(Duration::from_secs(24 * 3600))
            .export_timeout(plan.timeout);
        let settings = plan.settings.clone();
        let url = super::config::without_password(&settings.url);
        let resource = proto_resource(&plan.resource);
        let state = Arc::downgrade(shared);
        let timeout = plan.timeout;
        let own = Arc::clone(&counters.metrics);
        let batcher = Arc::new(Batcher::start(
            "metrics",
            url,
            batch,
            Arc::clone(&own),
            move || MetricSink::new(&settings, timeout, resource, state, counters, start),
        )?);
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let timer = {
            let (batcher, stop, every) = (Arc::clone(&batcher), Arc::clone(&stop), plan.interval);
            std::thread::Builder::new()
                .name("tracelight-otel-metrics-timer".into())
                .spawn(move || {
                    let (lock, wake) = &*stop;
                    let mut stopped = lock.lock().unwrap_or_else(|p| p.into_inner());
                    let mut next = Instant::now() + every;
                    while !*stopped {
                        let left = next.saturating_duration_since(Instant::now());
                        if left.is_zero() {
                            batcher.offer(Reading);
                            // Readings missed (a stopped process) are not made up for.
                            next = Instant::now() + every;
                            continue;
                        }
                        stopped = wake
                            .wait_timeout(stopped, left)
                            .map(|(g, _)| g)
                            .unwrap_or_else(|p| p.into_inner().0);
                    }
                })
                .map_err(|source| Error::Io {
                    what: "cannot start the OpenTelemetry metrics timer".into(),
                    source,
                })?
        };
        Ok(MetricsExport {
            batcher,
            counters: own,
            stop,
            timer: Mutex::new(Some(timer)),
        })
    }

    fn flush(&self, timeout: Duration) -> bool {
        self.batcher.offer(Reading);
        self.batcher.flush(timeout)
    }

    fn stop_timer(&self) {
        {
            let (lock, wake) = &*self.stop;
            *lock.lock().unwrap_or_else(|p| p.into_inner()) = true;
            wake.notify_all();
        }
        if let Some(t) = self.timer.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = t.join();
        }
    }

    /// Stops the timer and exports the last reading within `timeout`: whether it was exported.
    fn shutdown(&self, timeout: Duration) -> bool {
        self.stop_timer();
        let failed = self.counters.snapshot().failed;
        self.batcher.offer(Reading);
        let in_time = self.batcher.shutdown(timeout);
        in_time && self.counters.snapshot().failed == failed
    }
}

impl Drop for MetricsExport {
    fn drop(&mut self) {
        self.stop_timer();
    }
}

/// The export thread's side: reads the series and sends them.
struct MetricSink {
    /// The tracelight state read (not kept alive by the export).
    state: Weak<Shared>,
    resource: ProtoResource,
    /// The pipeline's counters, for the export series.
    counters: super::SignalCounters,
    /// When the cumulative series started, for their `start_time_unix_nano`.
    start: u64,
    transport: Transport,
}

enum Transport {
    #[cfg(feature = "otel-http")]
    Http {
        client: super::failure::DescribedClient,
        url: String,
        gzip: bool,
    },
    #[cfg(feature = "otel-grpc")]
    Grpc {
        client: opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient<tonic::transport::Channel>,
        metadata: Vec<super::GrpcHeader>,
        timeout: Duration,
    },
}

impl MetricSink {
    fn new(
        settings: &SignalSettings,
        timeout: Duration,
        resource: ProtoResource,
        state: Weak<Shared>,
        counters: super::SignalCounters,
        start: SystemTime,
    ) -> Result<MetricSink, Error> {
        #[allow(unused_variables)]
        let gzip = settings.compression == super::Compression::Gzip;
        let fail = |e: String| super::build_error("metric", &settings.url, e);
        let transport = match settings.protocol {
            #[cfg(feature = "otel-http")]
            super::Protocol::HttpProtobuf => Transport::Http {
                client: super::failure::DescribedClient::new(
                    timeout,
                    &settings.headers,
                    settings.tls.as_ref(),
                )
                .map_err(fail)?,
                url: settings.url.clone(),
                gzip,
            },
            #[cfg(feature = "otel-grpc")]
            super::Protocol::Grpc => {
                use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
                let mut endpoint = tonic::transport::Endpoint::from_shared(settings.url.clone())
                    .map_err(|e| fail(e.to_string()))?
                    .timeout(timeout);
                if let Some(tls) = &settings.tls {
                    endpoint = endpoint
                        .tls_config(tls.tonic_config())
                        .map_err(|e| fail(e.to_string()))?;
                }
                let mut client = MetricsServiceClient::new(endpoint.connect_lazy());
                if gzip {
                    client = client.send_compressed(tonic::codec::CompressionEncoding::Gzip);
                }
                Transport::Grpc {
                    client,
                    metadata: super::grpc_metadata(&settings.headers),
                    timeout,
                }
            }
            #[allow(unreachable_patterns)]
            other => {
                return Err(fail(format!(
                    "the {} transport is not compiled in: enable tracelight's `{}` feature",
                    other.name(),
                    other.feature()
                )))
            }
        };
        Ok(MetricSink {
            state,
            resource,
            counters,
            start: unix_nanos(start),
            transport,
        })
    }

    async fn send(&mut self, request: ExportMetricsServiceRequest) -> Result<(), String> {
        match &mut self.transport {
            #[cfg(feature = "otel-http")]
            Transport::Http { client, url, gzip } => {
                use opentelemetry_http::HttpClient as _;
                use prost::Message as _;
                let mut body = request.encode_to_vec();
                if *gzip {
                    use std::io::Write as _;
                    let mut z =
                        flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                    z.write_all(&body).map_err(|e| e.to_string())?;
                    body = z.finish().map_err(|e| e.to_string())?;
                }
                let mut req = http::Request::post(url.as_str())
                    .header(http::header::CONTENT_TYPE, "application/x-protobuf");
                if *gzip {
                    req = req.header(http::header::CONTENT_ENCODING, "gzip");
                }
                let req = req
                    .body(bytes::Bytes::from(body))
                    .map_err(|e| e.to_string())?;
                client.clear();
                let answer = match client.send_bytes(req).await {
                    Ok(a) => a,
                    Err(e) => return Err(client.take_reason().unwrap_or_else(|| e.to_string())),
                };
                if !answer.status().is_success() {
                    let text = String::from_utf8_lossy(answer.body());
                    return Err(format!(
                        "HTTP export failed with status code: {}{}",
                        answer.status(),
                        if text.trim().is_empty() {
                            String::new()
                        } else {
                            format!(": {}", text.chars().take(300).collect::<String>())
                        }
                    ));
                }
                let partial = opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse::decode(answer.body().as_ref())
                    .ok()
                    .and_then(|r| r.partial_success);
                rejected(partial)
            }
            #[cfg(feature = "otel-grpc")]
            Transport::Grpc {
                client,
                metadata,
                timeout,
            } => {
                let mut req = tonic::Request::new(request);
                req.set_timeout(*timeout);
                for (k, v) in metadata.iter() {
                    req.metadata_mut().insert(k.clone(), v.clone());
                }
                let answer = match tokio::time::timeout(*timeout, client.export(req)).await {
                    Err(_) => return Err(format!("no answer within {timeout:?}")),
                    Ok(Err(status)) => {
                        // The status's message and the chain of its source (a refused
                        // connection says so there), not its `Display`, which is a dump.
                        let mut why = status.message().to_owned();
                        if let Some(source) = std::error::Error::source(&status) {
                            why.push_str(": ");
                            why.push_str(&super::failure::chain(source));
                        }
                        return Err(format!(
                            "metrics export failed with gRPC code: {:?}: {why}",
                            status.code()
                        ));
                    }
                    Ok(Ok(a)) => a.into_inner(),
                };
                rejected(answer.partial_success)
            }
        }
    }
}

/// A partial success that rejected data points is a failure, with the collector's reason.
#[cfg_attr(
    not(any(feature = "otel-http", feature = "otel-grpc")),
    allow(dead_code)
)]
fn rejected(
    partial: Option<
        opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsPartialSuccess,
    >,
) -> Result<(), String> {
    match partial {
        Some(p) if p.rejected_data_points > 0 => Err(format!(
            "the collector rejected {} data points: {}",
            p.rejected_data_points, p.error_message
        )),
        _ => Ok(()),
    }
}

impl Export for MetricSink {
    type Item = Reading;
    async fn export(&mut self, _batch: Vec<Reading>) -> Result<(), String> {
        let Some(shared) = self.state.upgrade() else {
            return Err("the tracelight layer whose metrics these are is gone".into());
        };
        let families = crate::series::families(&Handle { shared }, Some(self.counters.stats()));
        let now = unix_nanos(SystemTime::now());
        let request = request(&families, &self.resource, self.start, now);
        self.send(request).await
    }
    fn shutdown(&mut self) {}
}

fn unix_nanos(t: SystemTime) -> u64 {
    u64::try_from(t.duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos()).unwrap_or(u64::MAX)
}

fn string(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.to_owned())),
        }),
        ..Default::default()
    }
}

/// The pipeline's resource (service, host, process, the SDK) as OTLP.
fn proto_resource(resource: &opentelemetry_sdk::Resource) -> ProtoResource {
    use opentelemetry::Value as V;
    let attributes = resource
        .iter()
        .map(|(k, v)| {
            let value = match v {
                V::Bool(b) => any_value::Value::BoolValue(*b),
                V::I64(n) => any_value::Value::IntValue(*n),
                V::F64(x) => any_value::Value::DoubleValue(*x),
                other => any_value::Value::StringValue(other.to_string()),
            };
            KeyValue {
                key: k.as_str().to_owned(),
                value: Some(AnyValue { value: Some(value) }),
                ..Default::default()
            }
        })
        .collect();
    ProtoResource {
        attributes,
        ..Default::default()
    }
}

/// One export request of `families`: cumulative sums for counters (from `start`), gauges, and
/// explicit-bucket histograms, at `now`.
pub(crate) fn request(
    families: &[Family],
    resource: &ProtoResource,
    start: u64,
    now: u64,
) -> ExportMetricsServiceRequest {
    let cumulative = pm::AggregationTemporality::Cumulative as i32;
    let metrics = families
        .iter()
        .filter(|f| !f.prometheus_only)
        .map(|f| {
            let attributes = |p: &crate::series::Point| {
                p.labels
                    .iter()
                    .map(|(k, v)| string(k, v))
                    .collect::<Vec<_>>()
            };
            let numbers = || {
                f.points
                    .iter()
                    .map(|p| pm::NumberDataPoint {
                        attributes: attributes(p),
                        start_time_unix_nano: if f.kind == Kind::Counter { start } else { 0 },
                        time_unix_nano: now,
                        value: Some(match &p.value {
                            Value::Int(n) => pm::number_data_point::Value::AsInt(
                                i64::try_from(*n).unwrap_or(i64::MAX),
                            ),
                            Value::Float(x) => pm::number_data_point::Value::AsDouble(*x),
                            Value::Histogram(d) => pm::number_data_point::Value::AsInt(
                                i64::try_from(d.count).unwrap_or(i64::MAX),
                            ),
                        }),
                        ..Default::default()
                    })
                    .collect::<Vec<_>>()
            };
            let data = match f.kind {
                Kind::Counter => pm::metric::Data::Sum(pm::Sum {
                    data_points: numbers(),
                    aggregation_temporality: cumulative,
                    is_monotonic: true,
                }),
                Kind::Gauge => pm::metric::Data::Gauge(pm::Gauge {
                    data_points: numbers(),
                }),
                Kind::Histogram => pm::metric::Data::Histogram(pm::Histogram {
                    data_points: f
                        .points
                        .iter()
                        .filter_map(|p| match &p.value {
                            Value::Histogram(d) => Some((p, d)),
                            _ => None,
                        })
                        .map(|(p, d)| {
                            // OTLP counts per bucket, Prometheus cumulatively.
                            let mut below = 0;
                            let mut bucket_counts: Vec<u64> = d
                                .buckets
                                .iter()
                                .map(|(_, n)| {
                                    let in_bucket = n.saturating_sub(below);
                                    below = below.max(*n);
                                    in_bucket
                                })
                                .collect();
                            bucket_counts.push(d.count.saturating_sub(below));
                            pm::HistogramDataPoint {
                                attributes: attributes(p),
                                start_time_unix_nano: start,
                                time_unix_nano: now,
                                count: d.count,
                                sum: Some(d.sum),
                                bucket_counts,
                                explicit_bounds: d.buckets.iter().map(|(b, _)| *b).collect(),
                                min: (d.count > 0).then_some(d.min),
                                max: (d.count > 0).then_some(d.max),
                                ..Default::default()
                            }
                        })
                        .collect(),
                    aggregation_temporality: cumulative,
                }),
            };
            pm::Metric {
                name: f.otel_name.to_owned(),
                description: f.help.to_owned(),
                unit: f.unit.to_owned(),
                data: Some(data),
                ..Default::default()
            }
        })
        .collect();
    ExportMetricsServiceRequest {
        resource_metrics: vec![pm::ResourceMetrics {
            resource: Some(resource.clone()),
            scope_metrics: vec![pm::ScopeMetrics {
                scope: Some(InstrumentationScope {
                    name: "tracelight".to_owned(),
                    version: env!("CARGO_PKG_VERSION").to_owned(),
                    ..Default::default()
                }),
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::series::{Distribution, Point};

    #[test]
    fn histograms_count_per_bucket_and_counters_are_cumulative_sums() {
        let families = vec![
            Family {
                name: "x_seconds",
                otel_name: "x",
                unit: "s",
                kind: Kind::Histogram,
                help: "h",
                prometheus_only: false,
                points: vec![Point {
                    labels: vec![("operation", "GET /".to_owned())],
                    value: Value::Histogram(Distribution {
                        buckets: vec![(0.1, 2), (1.0, 5)],
                        count: 7,
                        sum: 3.5,
                        min: 0.01,
                        max: 2.0,
                    }),
                }],
            },
            Family {
                name: "y_total",
                otel_name: "y",
                unit: "{event}",
                kind: Kind::Counter,
                help: "c",
                prometheus_only: false,
                points: vec![Point {
                    labels: Vec::new(),
                    value: Value::Int(9),
                }],
            },
            Family {
                name: "z",
                otel_name: "z",
                unit: "1",
                kind: Kind::Gauge,
                help: "only for Prometheus",
                prometheus_only: true,
                points: Vec::new(),
            },
        ];
        let r = request(&families, &ProtoResource::default(), 10, 20);
        let metrics = &r.resource_metrics[0].scope_metrics[0].metrics;
        assert_eq!(metrics.len(), 2, "the Prometheus-only family is left out");
        let Some(pm::metric::Data::Histogram(h)) = &metrics[0].data else {
            panic!("{:?}", metrics[0]);
        };
        let p = &h.data_points[0];
        assert_eq!(p.bucket_counts, vec![2, 3, 2]);
        assert_eq!(p.explicit_bounds, vec![0.1, 1.0]);
        assert_eq!(
            (p.count, p.sum, p.min, p.max),
            (7, Some(3.5), Some(0.01), Some(2.0))
        );
        assert_eq!(p.attributes[0].key, "operation");
        let Some(pm::metric::Data::Sum(s)) = &metrics[1].data else {
            panic!("{:?}", metrics[1]);
        };
        assert!(s.is_monotonic);
        assert_eq!(
            s.aggregation_temporality,
            pm::AggregationTemporality::Cumulative as i32
        );
        assert_eq!(s.data_points[0].start_time_unix_nano, 10);
        assert_eq!(
            s.data_points[0].value,
            Some(pm::number_data_point::Value::AsInt(9))
        );
    }
}
