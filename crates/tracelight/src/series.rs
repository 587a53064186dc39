//! The metric series of a [`Handle`]: one list, read once per answer, that the admin router's
//! `/metrics` writes in the Prometheus text format and the OpenTelemetry pipeline sends as OTLP
//! metrics. A series added here appears in both.

use crate::state::Handle;

/// What kind of metric a family is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A monotonic total since the layer was built.
    Counter,
    /// A value at the time of reading.
    Gauge,
    /// A distribution: cumulative buckets, sum and count.
    Histogram,
}

impl Kind {
    #[cfg_attr(not(feature = "admin"), allow(dead_code))]
    pub(crate) fn prometheus(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// One value of a series.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Int(u64),
    Float(f64),
    Histogram(Distribution),
}

/// A histogram's data point.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Distribution {
    /// `(upper bound in seconds, cumulative count)`, ascending; the `+Inf` bucket is `count`.
    pub(crate) buckets: Vec<(f64, u64)>,
    pub(crate) count: u64,
    /// Seconds.
    pub(crate) sum: f64,
    pub(crate) min: f64,
    pub(crate) max: f64,
}

/// One series: its labels and value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Point {
    pub(crate) labels: Vec<(&'static str, String)>,
    pub(crate) value: Value,
}

/// A metric and its series.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Family {
    /// The Prometheus name (`tracelight_events_total`).
    pub(crate) name: &'static str,
    /// The OpenTelemetry name and unit (`tracelight.events`, `{event}`): a collector's
    /// Prometheus exporter turns them back into [`name`](Family::name).
    pub(crate) otel_name: &'static str,
    pub(crate) unit: &'static str,
    pub(crate) kind: Kind,
    pub(crate) help: &'static str,
    /// Only in the Prometheus answer (the service's name, which OTLP carries in the resource).
    pub(crate) prometheus_only: bool,
    pub(crate) points: Vec<Point>,
}

struct Families(Vec<Family>);

impl Families {
    fn family(
        &mut self,
        kind: Kind,
        (name, otel_name, unit): (&'static str, &'static str, &'static str),
        help: &'static str,
    ) -> &mut Family {
        self.0.push(Family {
            name,
            otel_name,
            unit,
            kind,
            help,
            prometheus_only: false,
            points: Vec::new(),
        });
        let last = self.0.len() - 1;
        &mut self.0[last]
    }
}

impl Family {
    fn point(&mut self, labels: Vec<(&'static str, String)>, value: Value) -> &mut Family {
        self.points.push(Point { labels, value });
        self
    }

    fn int(&mut self, labels: Vec<(&'static str, String)>, n: u64) -> &mut Family {
        self.point(labels, Value::Int(n))
    }
}

/// The counts of an OpenTelemetry export, for its series.
#[cfg(feature = "otel-core")]
pub(crate) type ExportStats = crate::otel::OtelStats;
/// No OpenTelemetry export in this build.
#[cfg(not(feature = "otel-core"))]
pub(crate) type ExportStats = std::convert::Infallible;

/// Every tracelight metric of `handle`, in the order `/metrics` lists them; with `export`, the
/// series of that OpenTelemetry export too.
pub(crate) fn families(handle: &Handle, export: Option<ExportStats>) -> Vec<Family> {
    let mut m = Families(Vec::new());
    use Kind::{Counter, Gauge};

    m.family(
        Gauge,
        ("tracelight_info", "tracelight.info", "1"),
        "The service the lines are written for, as they name it (always 1).",
    )
    .int(vec![("service", handle.service().to_owned())], 1)
    .prometheus_only = true;

    let f = m.family(
        Counter,
        ("tracelight_events_total", "tracelight.events", "{event}"),
        "Events that reached tracelight, by level (before sampling, rate limits and suppression).",
    );
    for (level, n) in handle.events_by_level() {
        f.int(vec![("level", level.as_str().to_ascii_lowercase())], n);
    }

    let streams = handle.stats();
    type StatOf = fn(&crate::sink::StreamStats) -> u64;
    let per_stream: [((&str, &str, &str), &str, StatOf); 7] = [
        (
            (
                "tracelight_stream_lines_total",
                "tracelight.stream.lines",
                "{line}",
            ),
            "Lines written to each stream.",
            |s| s.events,
        ),
        (
            (
                "tracelight_stream_bytes_total",
                "tracelight.stream.bytes",
                "By",
            ),
            "Bytes written to each stream.",
            |s| s.bytes,
        ),
        (
            (
                "tracelight_stream_dropped_total",
                "tracelight.stream.dropped",
                "{line}",
            ),
            "Lines dropped: the stream's queue full in lossy mode, or its destination stalled.",
            |s| s.dropped,
        ),
        (
            (
                "tracelight_stream_stalled_dropped_total",
                "tracelight.stream.stalled_dropped",
                "{line}",
            ),
            "Lines dropped because the destination made no progress for the block timeout.",
            |s| s.stalled,
        ),
        (
            (
                "tracelight_stream_write_errors_total",
                "tracelight.stream.write_errors",
                "{error}",
            ),
            "Failed write attempts (full disk, missing directory...); retries count again.",
            |s| s.write_errors,
        ),
        (
            (
                "tracelight_stream_lost_lines_total",
                "tracelight.stream.lost_lines",
                "{line}",
            ),
            "Lines given up after failed writes, when the retry buffer was full.",
            |s| s.lost,
        ),
        (
            (
                "tracelight_stream_rotations_total",
                "tracelight.stream.rotations",
                "{rotation}",
            ),
            "File rotations of each stream.",
            |s| s.rotations,
        ),
    ];
    if !streams.is_empty() {
        for (names, help, get) in per_stream {
            let f = m.family(Counter, names, help);
            for s in &streams {
                f.int(vec![("stream", s.name.clone())], get(s));
            }
        }
    }

    let errors = handle.errors();
    m.family(
        Counter,
        ("tracelight_errors_total", "tracelight.errors", "{event}"),
        "ERROR events seen, written or suppressed.",
    )
    .int(Vec::new(), errors.total);
    if !errors.groups.is_empty() {
        let f = m.family(
            Counter,
            (
                "tracelight_error_fingerprint_events_total",
                "tracelight.error.fingerprint.events",
                "{event}",
            ),
            "ERROR events by fingerprint (callsite and error type).",
        );
        for g in &errors.groups {
            let mut l = vec![
                ("fingerprint", g.fingerprint.clone()),
                ("target", g.target.clone()),
            ];
            if let Some(t) = &g.error_type {
                l.push(("error_type", t.clone()));
            }
            f.int(l, g.count);
        }
        let f = m.family(
            Counter,
            (
                "tracelight_error_fingerprint_suppressed_total",
                "tracelight.error.fingerprint.suppressed",
                "{event}",
            ),
            "ERROR events counted but not written, by fingerprint (suppression of repeats).",
        );
        for g in &errors.groups {
            f.int(vec![("fingerprint", g.fingerprint.clone())], g.suppressed);
        }
        let f = m.family(
            Gauge,
            (
                "tracelight_error_fingerprint_last_seen_timestamp_seconds",
                "tracelight.error.fingerprint.last_seen_timestamp",
                "s",
            ),
            "When an error of this fingerprint was last seen, in seconds since the Unix epoch.",
        );
        for g in &errors.groups {
            let secs = g
                .last_seen
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs_f64();
            f.point(
                vec![("fingerprint", g.fingerprint.clone())],
                Value::Float(secs),
            );
        }
    }

    let security = handle.security();
    if !security.counts.is_empty() {
        let f = m.family(
            Counter,
            (
                "tracelight_security_events_total",
                "tracelight.security.events",
                "{event}",
            ),
            "Security events by type (the event field).",
        );
        for (event, n) in &security.counts {
            f.int(vec![("event", event.clone())], *n);
        }
    }

    let mut perf = handle.performance();
    // By name, so that successive readings list the series in the same order.
    perf.operations
        .sort_by(|a, b| a.operation.cmp(&b.operation));
    let f = m.family(
        Counter,
        (
            "tracelight_table_overflow_total",
            "tracelight.table.overflow",
            "{key}",
        ),
        "Distinct keys that came past a table's bound and were counted under other.",
    );
    for (table, n) in [
        ("operations", perf.folded),
        ("error_groups", errors.folded),
        ("security_types", security.folded),
    ] {
        f.int(vec![("table", table.to_owned())], n);
    }
    if !perf.operations.is_empty() {
        let f = m.family(
            Kind::Histogram,
            (
                "tracelight_span_duration_seconds",
                "tracelight.span.duration",
                "s",
            ),
            "Duration of closed spans (and timed blocks) by operation.",
        );
        for op in &perf.operations {
            f.point(
                vec![("operation", op.operation.clone())],
                Value::Histogram(Distribution {
                    buckets: op.buckets.clone(),
                    count: op.count,
                    // Durations are kept in whole microseconds: the sum is too.
                    sum: op.sum_ms / 1000.0,
                    min: op.min_ms / 1000.0,
                    max: op.max_ms / 1000.0,
                }),
            );
        }
        let f = m.family(
            Counter,
            (
                "tracelight_slow_spans_total",
                "tracelight.slow_spans",
                "{span}",
            ),
            "Closed spans that took longer than their slow threshold, by operation.",
        );
        for op in &perf.operations {
            f.int(vec![("operation", op.operation.clone())], op.slow);
        }
        let f = m.family(
            Gauge,
            (
                "tracelight_slow_threshold_seconds",
                "tracelight.slow_threshold",
                "s",
            ),
            "The slow threshold in force, by operation.",
        );
        for op in &perf.operations {
            f.point(
                vec![("operation", op.operation.clone())],
                Value::Float(op.threshold_ms / 1000.0),
            );
        }
    }

    let (sampled_out, rate_limited) = handle.sampling();
    m.family(
        Counter,
        (
            "tracelight_sampled_out_total",
            "tracelight.sampled_out",
            "{event}",
        ),
        "Events left out by sampling.",
    )
    .int(Vec::new(), sampled_out);
    m.family(
        Counter,
        (
            "tracelight_rate_limited_total",
            "tracelight.rate_limited",
            "{event}",
        ),
        "Events held back by per-callsite rate limits.",
    )
    .int(Vec::new(), rate_limited);

    if let Some(r) = handle.flight_recorder() {
        let f = m.family(
            Counter,
            (
                "tracelight_flight_recorder_lines_total",
                "tracelight.flight_recorder.lines",
                "{line}",
            ),
            "What the flight recorder did with the lines the filter left out inside units of \
             work: recorded, replayed (written when the unit failed), discarded (with a unit \
             that succeeded), dropped (for a bound).",
        );
        for (outcome, n) in [
            ("recorded", r.recorded),
            ("replayed", r.replayed),
            ("discarded", r.discarded),
            ("dropped", r.dropped),
        ] {
            f.int(vec![("outcome", outcome.to_owned())], n);
        }
        m.family(
            Gauge,
            (
                "tracelight_flight_recorder_bytes",
                "tracelight.flight_recorder.bytes",
                "By",
            ),
            "Bytes of lines the flight recorder keeps now, all units together.",
        )
        .int(Vec::new(), r.bytes);
    }

    #[cfg(not(feature = "otel-core"))]
    let _ = export;
    #[cfg(feature = "otel-core")]
    if let Some(stats) = export {
        let f = m.family(
            Counter,
            (
                "tracelight_otel_export_items_total",
                "tracelight.otel.export.items",
                "{item}",
            ),
            "What the OpenTelemetry export did with each span, log record and metrics \
             collection, by outcome: exported, dropped (queue full), failed, lost at shutdown.",
        );
        for (signal, s) in [
            ("spans", stats.spans),
            ("logs", stats.logs),
            ("metrics", stats.metrics),
        ] {
            for (outcome, n) in [
                ("exported", s.exported),
                ("dropped", s.dropped),
                ("failed", s.failed),
                ("lost_at_shutdown", s.lost_at_shutdown),
            ] {
                f.int(
                    vec![
                        ("signal", signal.to_owned()),
                        ("outcome", outcome.to_owned()),
                    ],
                    n,
                );
            }
        }
    }
    m.0
}
