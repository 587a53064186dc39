//! The Prometheus text exposition format (version 0.0.4) of a [`Handle`]'s counters.

use std::fmt::Write as _;

use crate::series::{Distribution, Value};
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
    // The export series of the pipeline started last, if any.
    #[cfg(feature = "otel-core")]
    let export = crate::otel::started_stats();
    #[cfg(not(feature = "otel-core"))]
    let export = None;
    for f in crate::series::families(handle, export) {
        m.family(f.name, f.kind.prometheus(), f.help);
        for p in &f.points {
            let labels: Vec<(&str, &str)> =
                p.labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
            match &p.value {
                Value::Int(n) => m.sample(f.name, &labels, n),
                Value::Float(x) => m.sample(f.name, &labels, Float(*x)),
                Value::Histogram(d) => m.histogram(f.name, &labels, d),
            }
        }
    }
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

    /// A histogram's `_bucket` series (`le` last among the labels), `_sum` and `_count`.
    fn histogram(&mut self, name: &str, labels: &[(&str, &str)], d: &Distribution) {
        let bucket = format!("{name}_bucket");
        let infinity = (f64::INFINITY, d.count);
        for (le, n) in d.buckets.iter().chain(std::iter::once(&infinity)) {
            let le = Float(*le).to_string();
            let mut l = labels.to_vec();
            l.push(("le", &le));
            self.sample(&bucket, &l, *n);
        }
        self.sample(&format!("{name}_sum"), labels, Float(d.sum));
        self.sample(&format!("{name}_count"), labels, d.count);
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
