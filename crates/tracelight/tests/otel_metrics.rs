//! tracelight's metrics as OTLP metrics at a real collector (rotel): the series of the admin
//! router's `/metrics`, with the same values and names a collector's Prometheus exporter turns
//! back into the `/metrics` names; read every export interval while the service runs and once
//! more at shutdown; over HTTP and over gRPC with gzip and headers, configured by the
//! `OTEL_*` variables; and against a collector that is away, counted as failed without holding
//! the service up.
#![cfg(feature = "otel")]
#![allow(clippy::unwrap_used)]

mod otel_support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use otel_support::{free_port, wait_until, HeaderProxy, Rotel};
use tracelight::otel::{OtelConfig, Protocol};

/// One data point of one metric as rotel printed it.
#[derive(Debug, Clone, Default)]
struct Point {
    metric: String,
    unit: String,
    kind: String,
    attributes: Vec<(String, String)>,
    /// `Value` of a number point, `Count` of a histogram point.
    value: f64,
    sum: f64,
    bounds: Vec<f64>,
    buckets: Vec<u64>,
}

/// The readings (one per export) in rotel's output, each a list of points.
fn readings(out: &str) -> Vec<Vec<Point>> {
    let mut readings: Vec<Vec<Point>> = Vec::new();
    let (mut metric, mut unit, mut kind) = (String::new(), String::new(), String::new());
    let mut in_metrics = false;
    for line in out.lines() {
        let t = line.trim();
        if t.starts_with("ResourceMetrics #") {
            readings.push(Vec::new());
            in_metrics = true;
            continue;
        }
        if t.starts_with("ResourceSpans #") || t.starts_with("ResourceLog") {
            in_metrics = false;
        }
        if !in_metrics {
            continue;
        }
        let Some(reading) = readings.last_mut() else {
            continue;
        };
        if let Some(v) = t.strip_prefix("-> Name: ") {
            metric = v.to_owned();
        } else if let Some(v) = t.strip_prefix("-> Unit: ") {
            unit = v.to_owned();
        } else if let Some(v) = t.strip_prefix("-> DataType: ") {
            kind = v.to_owned();
        } else if t.starts_with("NumberDataPoints #") || t.starts_with("HistogramDataPoints #") {
            reading.push(Point {
                metric: metric.clone(),
                unit: unit.clone(),
                kind: kind.clone(),
                ..Point::default()
            });
        } else if let Some(p) = reading.last_mut().filter(|p| p.metric == metric) {
            if let Some(kv) = t.strip_prefix("-> ") {
                if let Some((k, v)) = kv.split_once(": ") {
                    let v = v
                        .strip_prefix("Str(")
                        .and_then(|v| v.strip_suffix(')'))
                        .unwrap_or(v);
                    p.attributes.push((k.to_owned(), v.to_owned()));
                }
            } else if let Some(v) = t.strip_prefix("Value: ").or(t.strip_prefix("Count: ")) {
                p.value = v.parse().unwrap();
            } else if let Some(v) = t.strip_prefix("Sum: ") {
                p.sum = v.parse().unwrap();
            } else if let Some((_, v)) = t
                .strip_prefix("ExplicitBounds #")
                .and_then(|r| r.split_once(": "))
            {
                p.bounds.push(v.parse().unwrap());
            } else if let Some((_, v)) = t
                .strip_prefix("Buckets #")
                .and_then(|r| r.split_once(", Count: "))
            {
                p.buckets.push(v.parse().unwrap());
            }
        }
    }
    readings
}

fn find<'a>(reading: &'a [Point], metric: &str, attrs: &[(&str, &str)]) -> Option<&'a Point> {
    reading.iter().find(|p| {
        p.metric == metric
            && attrs
                .iter()
                .all(|(k, v)| p.attributes.iter().any(|(pk, pv)| pk == k && pv == v))
    })
}

/// Whether a reading was printed to its end: its last point is the metrics export's
/// `lost_at_shutdown` count, the last series of the list.
fn complete(reading: &[Point]) -> bool {
    reading.last().is_some_and(|p| {
        p.metric == "tracelight.otel.export.items"
            && p.attributes
                .iter()
                .any(|(k, v)| k == "signal" && v == "metrics")
            && p.attributes
                .iter()
                .any(|(k, v)| k == "outcome" && v == "lost_at_shutdown")
    })
}

/// A series key as Prometheus writes it: `name{a="1",b="2"}`, labels sorted.
fn key(name: &str, labels: &[(String, String)]) -> String {
    let mut labels = labels.to_vec();
    labels.sort();
    let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    format!("{name}{{{}}}", inner.join(","))
}

/// The samples of a Prometheus text answer, by [`key`].
fn prometheus(text: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, value) = line.rsplit_once(' ').unwrap();
        let (name, labels) = match series.split_once('{') {
            Some((n, rest)) => (n, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        let labels: Vec<(String, String)> = labels
            .split("\",")
            .filter(|l| !l.is_empty())
            .map(|l| {
                let (k, v) = l.split_once("=\"").unwrap();
                (k.to_owned(), v.trim_end_matches('"').to_owned())
            })
            .collect();
        out.insert(key(name, &labels), value.parse().unwrap());
    }
    out
}

/// What a collector's Prometheus exporter names an OTLP metric: dots to underscores, the unit
/// `s` as `_seconds`, `_total` on monotonic sums.
fn prometheus_name(p: &Point) -> String {
    let mut name = p.metric.replace('.', "_");
    if p.unit == "s" {
        name.push_str("_seconds");
    }
    if p.kind == "Sum" {
        name.push_str("_total");
    }
    name
}

/// The Prometheus samples an OTLP point stands for.
fn as_prometheus(p: &Point) -> Vec<(String, f64)> {
    let name = prometheus_name(p);
    if p.kind != "Histogram" {
        return vec![(key(&name, &p.attributes), p.value)];
    }
    let mut out = Vec::new();
    let mut cumulative = 0;
    for (bound, n) in p.bounds.iter().zip(&p.buckets) {
        cumulative += n;
        let mut labels = p.attributes.clone();
        labels.push(("le".into(), format!("{bound}")));
        out.push((key(&format!("{name}_bucket"), &labels), cumulative as f64));
    }
    let mut labels = p.attributes.clone();
    labels.push(("le".into(), "+Inf".into()));
    out.push((key(&format!("{name}_bucket"), &labels), p.value));
    out.push((key(&format!("{name}_count"), &p.attributes), p.value));
    out.push((key(&format!("{name}_sum"), &p.attributes), p.sum));
    out
}

#[derive(Debug)]
struct Declined;
impl std::fmt::Display for Declined {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("card declined")
    }
}
impl std::error::Error for Declined {}

/// Over HTTP: the last reading, exported at shutdown, is the `/metrics` answer of the same
/// moment, series for series, under the names a collector's Prometheus exporter gives them.
#[cfg(feature = "admin")]
#[test]
fn the_series_of_metrics_reach_the_collector_with_the_same_values() {
    let rotel = Rotel::start();
    let out = tracelight::sink::MemoryWriter::new();
    let guard = tracelight::builder()
        .service("metrics-http")
        .writer(out.clone())
        .otel(
            OtelConfig::new()
                .endpoint(rotel.http_url())
                .protocol(Protocol::HttpProtobuf)
                .traces(false)
                .logs(false)
                .metrics(true)
                // Only the reading at shutdown, within this test.
                .metric_export_interval(Duration::from_secs(3600)),
        )
        .init_local()
        .unwrap();
    for i in 0..3 {
        tracing::info!(order = i, "order placed");
    }
    for _ in 0..2 {
        tracing::error!(
            error = &Declined as &(dyn std::error::Error + 'static),
            "payment failed"
        );
    }
    tracing::error!("inventory service unavailable");
    tracelight::security_event!("login_failed", "medium", user = "alice", "wrong password");
    for _ in 0..5 {
        tracing::info_span!("checkout").in_scope(|| std::thread::sleep(Duration::from_millis(2)));
    }
    guard.flush();
    let handle = guard.handle();
    let expected = prometheus(&tracelight::admin::render_metrics(&handle));
    drop(guard);

    // The collector prints what it got a moment after it answers, and in pieces: wait for the
    // last point of the reading.
    wait_until(
        Duration::from_secs(20),
        "the whole reading at shutdown",
        || {
            readings(&rotel.output())
                .first()
                .filter(|r| complete(r))
                .map(|_| ())
        },
        || rotel.output(),
    );
    let all = readings(&rotel.output());
    assert_eq!(
        all.len(),
        1,
        "one reading, at shutdown:\n{}",
        rotel.output()
    );
    let reading = &all[0];

    let errors = find(reading, "tracelight.events", &[("level", "error")]).unwrap();
    assert_eq!(errors.value, 3.0);
    assert_eq!(errors.kind, "Sum");
    let checkout = find(
        reading,
        "tracelight.span.duration",
        &[("operation", "checkout")],
    )
    .unwrap();
    assert_eq!(checkout.value, 5.0, "{checkout:?}");
    assert_eq!(checkout.buckets.iter().sum::<u64>(), 5);
    assert!(checkout.sum >= 0.010, "{checkout:?}");
    let security = find(
        reading,
        "tracelight.security.events",
        &[("event", "login_failed")],
    );
    assert_eq!(security.unwrap().value, 1.0);
    let groups: Vec<&Point> = reading
        .iter()
        .filter(|p| p.metric == "tracelight.error.fingerprint.events")
        .collect();
    assert_eq!(groups.len(), 2, "{groups:?}");
    assert!(rotel.output().contains("service.name: Str(metrics-http)"));

    let mut compared = 0;
    for p in reading {
        if p.metric == "tracelight.otel.export.items" {
            // Not in this `/metrics` answer's moment: the export counts itself.
            continue;
        }
        for (series, value) in as_prometheus(p) {
            let want = expected
                .get(&series)
                .unwrap_or_else(|| panic!("{series} is not in /metrics:\n{expected:#?}"));
            assert!(
                (want - value).abs() <= want.abs() * 1e-9,
                "{series}: OTLP {value}, /metrics {want}"
            );
            compared += 1;
        }
    }
    // Every series of `/metrics` but the service's name and its own cap was exported.
    let left: Vec<&String> = expected
        .keys()
        .filter(|k| {
            !k.starts_with("tracelight_info") && !k.starts_with("tracelight_metrics_series_omitted")
        })
        .filter(|k| !k.starts_with("tracelight_otel_export_items_total"))
        .collect();
    assert_eq!(compared, left.len(), "{left:#?}");
}

/// Configured by the environment (as a platform would), over gRPC with gzip and a header: the
/// readings come every interval while the service runs, each with the counts of its moment.
#[test]
fn readings_come_every_interval_over_grpc_with_the_environments_settings() {
    let rotel = Rotel::start();
    let proxy = HeaderProxy::start(rotel.grpc, true);
    let vars = [
        ("OTEL_METRICS_EXPORTER", "otlp".to_owned()),
        ("OTEL_TRACES_EXPORTER", "none".to_owned()),
        ("OTEL_LOGS_EXPORTER", "none".to_owned()),
        ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", proxy.url()),
        ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "grpc".to_owned()),
        ("OTEL_EXPORTER_OTLP_METRICS_COMPRESSION", "gzip".to_owned()),
        (
            "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
            "x-tenant=blue".to_owned(),
        ),
        ("OTEL_METRIC_EXPORT_INTERVAL", "100".to_owned()),
    ];
    let config =
        OtelConfig::from_lookup(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone()))
            .unwrap();
    assert!(config.is_enabled());
    let guard = tracelight::builder()
        .service("metrics-grpc")
        .writer(tracelight::sink::MemoryWriter::new())
        .otel(config)
        .init_local()
        .unwrap();
    let errors_in = |reading: &[Point]| {
        find(reading, "tracelight.events", &[("level", "error")]).map(|p| p.value)
    };
    for n in 1..=2 {
        tracing::error!(n, "failed");
        wait_until(
            Duration::from_secs(20),
            &format!("a reading with {n} errors while the service runs"),
            || {
                readings(&rotel.output())
                    .iter()
                    .any(|r| errors_in(r) == Some(f64::from(n)))
                    .then_some(())
            },
            || rotel.output(),
        );
    }
    // Counted once the collector's answer is in, just after it printed the reading.
    let otel = guard.otel().unwrap();
    wait_until(
        Duration::from_secs(10),
        "two readings counted as exported",
        || (otel.stats().metrics.exported >= 2).then_some(()),
        || format!("{:?}", otel.stats()),
    );
    assert_eq!(otel.stats().metrics.failed, 0, "{:?}", otel.stats());
    drop(guard);

    let seen = proxy.seen();
    let export = seen
        .iter()
        .find(|(path, _)| path.contains("MetricsService/Export"))
        .unwrap_or_else(|| panic!("no metrics export through the proxy: {seen:?}"));
    assert_eq!(export.1.get("x-tenant").unwrap(), "blue");
    assert_eq!(export.1.get("grpc-encoding").unwrap(), "gzip");
}

/// A collector that is away: each reading fails and is counted, the first failure is said
/// once in the service's own lines, and neither the service nor its shutdown waits on it.
#[test]
fn a_collector_away_costs_failed_readings_not_a_blocked_service() {
    for protocol in [Protocol::HttpProtobuf, Protocol::Grpc] {
        let port = free_port();
        let url = match protocol {
            Protocol::Grpc => format!("http://127.0.0.1:{port}"),
            _ => format!("http://127.0.0.1:{port}/v1/metrics"),
        };
        let out = tracelight::sink::MemoryWriter::new();
        let guard = tracelight::builder()
            .service("metrics-away")
            .writer(out.clone())
            .otel(
                OtelConfig::new()
                    .metrics_endpoint(url)
                    .protocol(protocol)
                    .traces(false)
                    .logs(false)
                    .metric_export_interval(Duration::from_millis(50))
                    .shutdown_timeout(Duration::from_secs(2)),
            )
            .init_local()
            .unwrap();
        let started = Instant::now();
        for i in 0..1000 {
            tracing::info!(i, "still serving");
        }
        assert!(started.elapsed() < Duration::from_secs(2));
        let otel = guard.otel().unwrap();
        wait_until(
            Duration::from_secs(20),
            "failed metrics readings counted",
            || (otel.stats().metrics.failed >= 2).then_some(()),
            || format!("{:?}", otel.stats()),
        );
        let stopping = Instant::now();
        drop(guard);
        assert!(
            stopping.elapsed() < Duration::from_secs(4),
            "{protocol:?}: {:?}",
            stopping.elapsed()
        );
        // Said as what it is, over either transport.
        let text = out.contents();
        let said: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("metrics") && l.contains("\"failure\":\"connection refused\""))
            .collect();
        assert!(!said.is_empty(), "{protocol:?}: {text}");
    }
}

/// A pipeline that exports metrics only, to `rotel` over HTTP, with only the reading at
/// shutdown (and at flushes) within a test.
fn metrics_pipeline(rotel: &Rotel, service: &str) -> tracelight::otel::OtelPipeline {
    tracelight::otel::OtelPipeline::start(
        &OtelConfig::new()
            .endpoint(rotel.http_url())
            .traces(false)
            .logs(false)
            .metrics(true)
            .metric_export_interval(Duration::from_secs(3600)),
        service,
    )
    .unwrap()
    .unwrap()
}

/// The tracelight layer stacked below the pipeline's layer (the other order) has its metrics
/// exported too.
#[test]
fn stacked_the_other_way_round_the_export_starts_too() {
    use tracing_subscriber::layer::SubscriberExt as _;
    let rotel = Rotel::start();
    let otel = metrics_pipeline(&rotel, "other-order");
    let (layer, guard) = tracelight::builder()
        .service("other-order")
        .writer(tracelight::sink::MemoryWriter::new())
        .build()
        .unwrap();
    let subscriber = tracing_subscriber::registry()
        .with(layer)
        .with(otel.layer());
    tracing::subscriber::with_default(subscriber, || tracing::error!("once"));
    otel.shutdown();
    wait_until(
        Duration::from_secs(20),
        "the reading at shutdown",
        || {
            readings(&rotel.output())
                .iter()
                .any(|r| {
                    find(r, "tracelight.events", &[("level", "error")]).map(|p| p.value)
                        == Some(1.0)
                })
                .then_some(())
        },
        || rotel.output(),
    );
    drop(guard);
}

/// Layers stacked by hand: the tracelight layer above the pipeline's layer starts the metrics
/// export for its own state (no call needed), and flushes and the shutdown lose nothing: no
/// reading is counted as dropped or lost, and no loss is reported.
#[test]
fn stacked_by_hand_the_layer_above_starts_the_export() {
    use tracing_subscriber::layer::SubscriberExt as _;
    let rotel = Rotel::start();
    let otel = metrics_pipeline(&rotel, "by-hand");
    let out = tracelight::sink::MemoryWriter::new();
    let (layer, guard) = tracelight::builder()
        .service("by-hand")
        .writer(out.clone())
        .build()
        .unwrap();
    let subscriber = tracing_subscriber::registry()
        .with(otel.layer())
        .with(layer);
    tracing::subscriber::with_default(subscriber, || {
        tracing::warn!("disk nearly full");
        otel.flush();
        otel.flush();
        tracing::warn!("disk full");
    });
    otel.shutdown();
    otel.flush(); // after the shutdown: nothing to do, nothing counted
    let warns = |r: &[Point]| find(r, "tracelight.events", &[("level", "warn")]).map(|p| p.value);
    wait_until(
        Duration::from_secs(20),
        "the last reading",
        || {
            readings(&rotel.output())
                .iter()
                .any(|r| warns(r) == Some(2.0))
                .then_some(())
        },
        || rotel.output(),
    );
    let all = readings(&rotel.output());
    assert!(
        all.iter().any(|r| warns(r) == Some(1.0)),
        "{}",
        rotel.output()
    );
    assert_eq!(
        all.last().and_then(|r| warns(r)),
        Some(2.0),
        "the last reading has the final totals"
    );
    let s = otel.stats().metrics;
    assert_eq!(
        (s.dropped, s.failed, s.lost_at_shutdown),
        (0, 0, 0),
        "{s:?}"
    );
    assert_eq!(s.exported, s.created(), "{s:?}");
    drop(guard);
    assert!(
        !out.contents().contains("lost telemetry"),
        "{}",
        out.contents()
    );
}

/// An interval of zero in code is taken as the shortest one (10 ms): readings keep coming, the
/// export does not spin, and the shutdown comes back at once.
#[test]
fn an_interval_of_zero_does_not_spin() {
    let rotel = Rotel::start();
    let guard = tracelight::builder()
        .service("zero")
        .writer(tracelight::sink::MemoryWriter::new())
        .otel(
            OtelConfig::new()
                .endpoint(rotel.http_url())
                .traces(false)
                .logs(false)
                .metrics(true)
                .metric_export_interval(Duration::ZERO),
        )
        .init_local()
        .unwrap();
    let otel = guard.otel().unwrap();
    wait_until(
        Duration::from_secs(20),
        "a few readings exported",
        || (otel.stats().metrics.exported >= 3).then_some(()),
        || format!("{:?}", otel.stats()),
    );
    std::thread::sleep(Duration::from_millis(200));
    let made = otel.stats().metrics.created();
    let stopping = Instant::now();
    drop(guard);
    assert!(
        stopping.elapsed() < Duration::from_secs(3),
        "{:?}",
        stopping.elapsed()
    );
    // Some 30 readings at most in that time (plus the ones waiting for the collector's start).
    assert!(made < 200, "{made} readings: the timer spins");
}
