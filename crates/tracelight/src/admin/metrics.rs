//! The Prometheus text exposition format (version 0.0.4) of a [`Handle`]'s counters.

use std::fmt::Write as _;

use crate::state::Handle;

/// The `Content-Type` of [`render_metrics`]'s output.
///
/// ```
/// assert!(tracelight::admin::METRICS_CONTENT_TYPE.starts_with("text/plain; version=0.0.4"));
/// ```
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Renders every tracelight counter of `handle` in the Prometheus text exposition format: what
/// `GET /metrics` answers (see the [module documentation](super) for the list of metrics).
///
/// Use it to serve the metrics from a router of your own, or to push them elsewhere.
///
/// ```
/// let (layer, guard) = tracelight::builder().writer(tracelight::sink::MemoryWriter::new()).build()?;
/// let handle = layer.handle();
/// let subscriber = tracing_subscriber::layer::SubscriberExt::with(tracing_subscriber::registry(), layer);
/// tracing::subscriber::with_default(subscriber, || tracing::error!("boom"));
/// let text = tracelight::admin::render_metrics(&handle);
/// assert!(text.contains("# TYPE tracelight_events_total counter"));
/// assert!(text.contains("tracelight_events_total{level=\"error\"} 1"));
/// assert!(text.contains("tracelight_errors_total 1"));
/// # drop(guard);
/// # Ok::<(), tracelight::Error>(())
/// ```
pub fn render_metrics(handle: &Handle) -> String {
    let mut m = Exposition::default();

    m.family(
        "tracelight_info",
        "gauge",
        "The service the lines are written for, as they name it (always 1).",
    );
    m.sample("tracelight_info", &[("service", handle.service())], 1);

    m.family(
        "tracelight_events_total",
        "counter",
        "Events that reached tracelight, by level (before sampling, rate limits and suppression).",
    );
    for (level, n) in handle.events_by_level() {
        let level = level.as_str().to_ascii_lowercase();
        m.sample("tracelight_events_total", &[("level", &level)], n);
    }

    let streams = handle.stats();
    let per_stream: [(&str, &str, StatOf); 7] = [
        (
            "tracelight_stream_lines_total",
            "Lines written to each stream.",
            |s| s.events,
        ),
        (
            "tracelight_stream_bytes_total",
            "Bytes written to each stream.",
            |s| s.bytes,
        ),
        (
            "tracelight_stream_dropped_total",
            "Lines dropped: the stream's queue full in lossy mode, or its destination stalled.",
            |s| s.dropped,
        ),
        (
            "tracelight_stream_stalled_dropped_total",
            "Lines dropped because the destination made no progress for the block timeout.",
            |s| s.stalled,
        ),
        (
            "tracelight_stream_write_errors_total",
            "Failed write attempts (full disk, missing directory...); retries count again.",
            |s| s.write_errors,
        ),
        (
            "tracelight_stream_lost_lines_total",
            "Lines given up after failed writes, when the retry buffer was full.",
            |s| s.lost,
        ),
        (
            "tracelight_stream_rotations_total",
            "File rotations of each stream.",
            |s| s.rotations,
        ),
    ];
    if !streams.is_empty() {
        for (name, help, get) in per_stream {
            m.family(name, "counter", help);
            for s in &streams {
                m.sample(name, &[("stream", &s.name)], get(s));
            }
        }
    }

    let errors = handle.errors();
    m.family(
        "tracelight_errors_total",
        "counter",
        "ERROR events seen, written or suppressed.",
    );
    m.sample("tracelight_errors_total", &[], errors.total);
    if !errors.groups.is_empty() {
        let labels = |g: &crate::errors::ErrorGroup| {
            let mut l = vec![
                ("fingerprint", g.fingerprint.clone()),
                ("target", g.target.clone()),
            ];
            if let Some(t) = &g.error_type {
                l.push(("error_type", t.clone()));
            }
            l
        };
        m.family(
            "tracelight_error_fingerprint_events_total",
            "counter",
            "ERROR events by fingerprint (callsite and error type).",
        );
        for g in &errors.groups {
            let l = labels(g);
            m.sample_owned("tracelight_error_fingerprint_events_total", &l, g.count);
        }
        m.family(
            "tracelight_error_fingerprint_suppressed_total",
            "counter",
            "ERROR events counted but not written, by fingerprint (suppression of repeats).",
        );
        for g in &errors.groups {
            m.sample(
                "tracelight_error_fingerprint_suppressed_total",
                &[("fingerprint", &g.fingerprint)],
                g.suppressed,
            );
        }
        m.family(
            "tracelight_error_fingerprint_last_seen_timestamp_seconds",
            "gauge",
            "When an error of this fingerprint was last seen, in seconds since the Unix epoch.",
        );
        for g in &errors.groups {
            let secs = g
                .last_seen
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs_f64();
            m.sample(
                "tracelight_error_fingerprint_last_seen_timestamp_seconds",
                &[("fingerprint", &g.fingerprint)],
                Float(secs),
            );
        }
    }

    let security = handle.security();
    if !security.counts.is_empty() {
        m.family(
            "tracelight_security_events_total",
            "counter",
            "Security events by type (the event field).",
        );
        for (event, n) in &security.counts {
            m.sample("tracelight_security_events_total", &[("event", event)], *n);
        }
    }

    let mut perf = handle.performance();
    // By name, so that successive scrapes list the series in the same order.
    perf.operations
        .sort_by(|a, b| a.operation.cmp(&b.operation));
    m.family(
        "tracelight_table_overflow_total",
        "counter",
        "Distinct keys that came past a table's bound and were counted under other.",
    );
    for (table, n) in [
        ("operations", perf.folded),
        ("error_groups", errors.folded),
        ("security_types", security.folded),
    ] {
        m.sample("tracelight_table_overflow_total", &[("table", table)], n);
    }
    if !perf.operations.is_empty() {
        m.family(
            "tracelight_span_duration_seconds",
            "histogram",
            "Duration of closed spans (and timed blocks) by operation.",
        );
        for op in &perf.operations {
            let name = op.operation.as_str();
            for (le, n) in &op.buckets {
                let le = Float(*le).to_string();
                m.sample(
                    "tracelight_span_duration_seconds_bucket",
                    &[("operation", name), ("le", &le)],
                    *n,
                );
            }
            m.sample(
                "tracelight_span_duration_seconds_bucket",
                &[("operation", name), ("le", "+Inf")],
                op.count,
            );
            m.sample(
                "tracelight_span_duration_seconds_sum",
                &[("operation", name)],
                // Durations are kept in whole microseconds: the sum is too.
                Float(op.sum_ms / 1000.0),
            );
            m.sample(
                "tracelight_span_duration_seconds_count",
                &[("operation", name)],
                op.count,
            );
        }
        m.family(
            "tracelight_slow_spans_total",
            "counter",
            "Closed spans that took longer than their slow threshold, by operation.",
        );
        for op in &perf.operations {
            m.sample(
                "tracelight_slow_spans_total",
                &[("operation", &op.operation)],
                op.slow,
            );
        }
        m.family(
            "tracelight_slow_threshold_seconds",
            "gauge",
            "The slow threshold in force, by operation.",
        );
        for op in &perf.operations {
            m.sample(
                "tracelight_slow_threshold_seconds",
                &[("operation", &op.operation)],
                Float(op.threshold_ms / 1000.0),
            );
        }
    }

    let (sampled_out, rate_limited) = handle.sampling();
    m.family(
        "tracelight_sampled_out_total",
        "counter",
        "Events left out by sampling.",
    );
    m.sample("tracelight_sampled_out_total", &[], sampled_out);
    m.family(
        "tracelight_rate_limited_total",
        "counter",
        "Events held back by per-callsite rate limits.",
    );
    m.sample("tracelight_rate_limited_total", &[], rate_limited);

    let omitted = m.omitted;
    m.written = 0;
    m.family(
        "tracelight_metrics_series_omitted",
        "gauge",
        "Series left out of this answer past the cap of series per answer.",
    );
    m.sample("tracelight_metrics_series_omitted", &[], omitted);
    m.out
}

/// The most series one `/metrics` answer holds; past it, series are left out and counted in
/// `tracelight_metrics_series_omitted`. The bounded tables keep the defaults well under it.
pub const MAX_SERIES: usize = 20_000;

/// Reads one counter of a stream's statistics.
type StatOf = fn(&crate::sink::StreamStats) -> u64;

/// A float as Prometheus writes it: `+Inf`, `-Inf`, `NaN`, else the shortest decimal that reads
/// back as the same value (`0.005`, `1`, `2.5`).
#[derive(Debug, Clone, Copy)]
struct Float(f64);

impl std::fmt::Display for Float {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v = self.0;
        if v.is_nan() {
            f.write_str("NaN")
        } else if v == f64::INFINITY {
            f.write_str("+Inf")
        } else if v == f64::NEG_INFINITY {
            f.write_str("-Inf")
        } else {
            write!(f, "{v}")
        }
    }
}

#[derive(Default)]
struct Exposition {
    out: String,
    /// Series written, and left out past [`MAX_SERIES`].
    written: usize,
    omitted: u64,
}

impl Exposition {
    /// `# HELP` and `# TYPE` lines of a family.
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        self.out.push_str("# HELP ");
        self.out.push_str(name);
        self.out.push(' ');
        escape_help(&mut self.out, help);
        self.out.push('\n');
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        if self.written >= MAX_SERIES {
            self.omitted += 1;
            return;
        }
        self.written += 1;
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                self.out.push_str(k);
                self.out.push_str("=\"");
                escape_label(&mut self.out, v);
                self.out.push('"');
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }

    fn sample_owned(&mut self, name: &str, labels: &[(&str, String)], value: u64) {
        let borrowed: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
        self.sample(name, &borrowed, value);
    }
}

/// Label values: `\` → `\\`, `"` → `\"`, newline → `\n`.
fn escape_label(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Help text: `\` → `\\`, newline → `\n`.
fn escape_help(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_help_are_escaped() {
        let mut m = Exposition::default();
        m.family("x_total", "counter", "a \\ b\nc \"q\"");
        m.sample("x_total", &[("a", "q\"b\\s\nn"), ("b", "plain")], 3);
        assert_eq!(
            m.out,
            "# HELP x_total a \\\\ b\\nc \"q\"\n# TYPE x_total counter\n\
             x_total{a=\"q\\\"b\\\\s\\nn\",b=\"plain\"} 3\n"
        );
    }

    #[test]
    fn floats_as_prometheus_writes_them() {
        assert_eq!(Float(0.005).to_string(), "0.005");
        assert_eq!(Float(1.0).to_string(), "1");
        assert_eq!(Float(2.5).to_string(), "2.5");
        assert_eq!(Float(60.0).to_string(), "60");
        assert_eq!(Float(f64::INFINITY).to_string(), "+Inf");
        assert_eq!(Float(f64::NAN).to_string(), "NaN");
    }
}
