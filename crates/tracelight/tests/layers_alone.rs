//! `JsonLayer` and `RouterLayer` used alone on a `Registry`: beside `fmt`, under per-layer
//! filters and `reload`, to a `MakeWriter`, with streams by rule.

#![allow(clippy::unwrap_used, missing_docs)]

use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tracelight::sink::MemoryWriter;
use tracelight::{Format, JsonLayer, Output, RouterLayer, Rule, Stream};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::{reload, Layer as _};

/// A `MakeWriter` into a shared buffer.
#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl Buf {
    fn lines(&self) -> Vec<Value> {
        let b = self.0.lock().unwrap();
        String::from_utf8_lossy(&b)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

struct BufGuard<'a>(std::sync::MutexGuard<'a, Vec<u8>>);

impl io::Write for BufGuard<'_> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Buf {
    type Writer = BufGuard<'a>;
    fn make_writer(&'a self) -> Self::Writer {
        BufGuard(self.0.lock().unwrap())
    }
}

fn request_work() {
    let span = tracing::info_span!("request", request_id = "req-alone");
    let _e = span.enter();
    tracelight::bind("user_id", 42u64);
    tracing::debug!("cache miss");
    {
        let inner = tracing::info_span!("charge_card", order_id = 7);
        let _i = inner.enter();
        let err = io::Error::other("card declined");
        tracing::error!(
            error = &err as &(dyn std::error::Error + 'static),
            "payment failed"
        );
    }
    tracing::info!(status = 200u64, "done");
}

#[test]
fn json_layer_alone_writes_tracelight_lines_to_a_make_writer() {
    let buf = Buf::default();
    let json = JsonLayer::with_writer(buf.clone()).unwrap();
    let subscriber = tracing_subscriber::registry().with(json.with_filter(LevelFilter::INFO));
    tracing::subscriber::with_default(subscriber, request_work);
    let lines = buf.lines();
    assert_eq!(lines.len(), 2, "{}", buf.text()); // DEBUG filtered out by the per-layer filter
    for l in &lines {
        assert_eq!(l["request_id"], "req-alone");
        assert_eq!(l["user_id"], 42);
        assert_eq!(l["timestamp"].as_str().unwrap().len(), 27);
    }
    let err = &lines[0];
    assert_eq!(err["level"], "ERROR");
    assert_eq!(err["span"]["name"], "charge_card");
    assert_eq!(err["error"]["message"], "card declined");
    assert!(err["error_fingerprint"].is_string());
    assert_eq!(lines[1]["status"], 200);
}

#[test]
fn json_layer_beside_fmt_and_under_reload() {
    let buf = Buf::default();
    let fmt_buf = Buf::default();
    let json = JsonLayer::with_writer(buf.clone()).unwrap();
    let (filter, handle) = reload::Layer::new(LevelFilter::INFO);
    let subscriber = tracing_subscriber::registry()
        .with(json.with_filter(filter))
        .with(
            tracing_subscriber::fmt::layer()
                .json()
                .with_writer(fmt_buf.clone()),
        );
    tracing::subscriber::with_default(subscriber, || {
        request_work();
        // Now DEBUG too, without a restart.
        handle.modify(|f| *f = LevelFilter::DEBUG).unwrap();
        request_work();
    });
    let lines = buf.lines();
    assert_eq!(lines.len(), 2 + 3, "{}", buf.text());
    assert_eq!(lines[2]["message"], "cache miss");
    assert_eq!(lines[2]["request_id"], "req-alone");
    // fmt, unfiltered, got every event, unaffected by tracelight's layer.
    assert_eq!(fmt_buf.lines().len(), 6, "{}", fmt_buf.text());
}

#[test]
fn json_layer_writes_text_too() {
    let w = MemoryWriter::new();
    let layer =
        JsonLayer::from_builder(tracelight::builder().format(Format::Text).writer(w.clone()))
            .unwrap();
    let subscriber = tracing_subscriber::registry().with(layer.with_filter(LevelFilter::INFO));
    tracing::subscriber::with_default(subscriber, request_work);
    let text = w.contents();
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(
        text.contains("payment failed") && text.contains("request_id=req-alone"),
        "{text}"
    );
    assert!(serde_json::from_str::<Value>(text.lines().next().unwrap()).is_err());
}

#[test]
fn router_layer_alone_sends_events_by_rule() {
    let all = MemoryWriter::new();
    let problems = MemoryWriter::new();
    let router = RouterLayer::from_builder(
        tracelight::builder()
            .stream(Stream::new("all", Output::Writer(Arc::new(all.clone()))).format(Format::Json))
            .stream(
                Stream::new("problems", Output::Writer(Arc::new(problems.clone())))
                    .rule(Rule::min_level(tracing::Level::WARN))
                    .format(Format::Text),
            ),
    )
    .unwrap();
    let subscriber = tracing_subscriber::registry().with(router.with_filter(LevelFilter::INFO));
    tracing::subscriber::with_default(subscriber, request_work);
    let all: Vec<Value> = all
        .lines()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(all.len(), 2);
    assert!(all.iter().all(|l| l["request_id"] == "req-alone"));
    let problems = problems.contents();
    assert_eq!(problems.lines().count(), 1, "{problems}");
    assert!(
        problems.contains("ERROR") && problems.contains("payment failed"),
        "{problems}"
    );
}

#[test]
fn json_layer_into_a_file_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let (file, guard) =
        tracelight::sink::FileWriter::new(tracelight::sink::FileOptions::new(&path)).unwrap();
    let json = JsonLayer::with_writer(file).unwrap();
    let subscriber = tracing_subscriber::registry().with(json.with_filter(LevelFilter::INFO));
    tracing::subscriber::with_default(subscriber, request_work);
    drop(guard); // flushes
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines.iter().all(|l| l["request_id"] == "req-alone"));
}

/// A `fmt` JSON layer with tracelight's correlation at the root of its lines.
fn correlated_fmt<S>(buf: Buf) -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    tracing_subscriber::fmt::layer()
        .json()
        .event_format(tracelight::fmt::Correlated::new(
            tracing_subscriber::fmt::format().json(),
        ))
        .with_writer(buf)
}

#[test]
fn stacked_parts_share_one_span_state() {
    // Correlation, formatter, timing and fmt in one stack: what is bound inside the request
    // reaches every part's lines, whichever part `bind` finds first.
    let json = Buf::default();
    let fmt = Buf::default();
    let subscriber = tracing_subscriber::registry()
        .with(tracelight::CorrelationLayer::new().unwrap())
        .with(JsonLayer::with_writer(json.clone()).unwrap())
        .with(tracelight::TimingLayer::new().unwrap())
        .with(correlated_fmt(fmt.clone()));
    tracing::subscriber::with_default(subscriber, || {
        request_work();
        // Fields recorded later reach every part too.
        let span =
            tracing::info_span!("job", request_id = "job-1", attempt = tracing::field::Empty);
        let _e = span.enter();
        span.record("attempt", 2u64);
        tracing::warn!("retrying");
    });
    let json = json.lines();
    assert_eq!(json.len(), 4, "{json:?}");
    for l in &json[..3] {
        assert_eq!(l["request_id"], "req-alone", "{l}");
        assert_eq!(l["user_id"], 42, "{l}");
    }
    assert_eq!(json[1]["span"]["order_id"], 7);
    assert_eq!(json[3]["request_id"], "job-1");
    assert_eq!(json[3]["span"]["attempt"], 2);
    let fmt = fmt.lines();
    assert_eq!(fmt.len(), 4, "{fmt:?}");
    for l in &fmt[..3] {
        assert_eq!(l["request_id"], "req-alone", "{l}");
        assert_eq!(l["user_id"], 42, "{l}");
    }
}

#[test]
fn timing_above_a_part_without_timing_measures_every_span_once() {
    let fmt = Buf::default();
    let timing = tracelight::TimingLayer::from_builder(tracelight::builder().timing(
        tracelight::timing::TimingConfig::default().threshold_for("slow_step", Duration::ZERO),
    ))
    .unwrap();
    let subscriber = tracing_subscriber::registry()
        .with(tracelight::CorrelationLayer::new().unwrap())
        .with(timing)
        .with(correlated_fmt(fmt.clone()));
    tracing::subscriber::with_default(subscriber, || {
        let span = tracing::info_span!("request", request_id = "req-t");
        let _e = span.enter();
        for _ in 0..10 {
            drop(tracing::info_span!("load").entered());
        }
        drop(tracing::info_span!("slow_step").entered());
        let perf = tracelight::performance();
        let load = perf
            .operations
            .iter()
            .find(|o| o.operation == "load")
            .unwrap_or_else(|| panic!("{perf:?}"));
        assert_eq!(load.count, 10);
    });
    // The slow close is an event in the closing span: fmt gets it, with the request id.
    let closed: Vec<Value> = fmt
        .lines()
        .into_iter()
        .filter(|l| l["fields"]["message"] == "span_closed")
        .collect();
    assert_eq!(closed.len(), 1, "{}", fmt.text());
    assert_eq!(closed[0]["fields"]["operation"], "slow_step");
    assert_eq!(closed[0]["request_id"], "req-t");
}

#[test]
fn a_part_with_other_redaction_rules_keeps_its_own_span_state() {
    // The layer below masks nothing; the formatter above masks secrets: its lines must not
    // take span fields rendered without redaction.
    let json = Buf::default();
    let subscriber = tracing_subscriber::registry()
        .with(
            tracelight::CorrelationLayer::from_builder(tracelight::builder().without_redaction())
                .unwrap(),
        )
        .with(JsonLayer::with_writer(json.clone()).unwrap());
    let token = "ghp_0123456789abcdefghijABCDEFGHIJ012345";
    tracing::subscriber::with_default(subscriber, || {
        let span = tracing::info_span!("request", request_id = "req-r", token);
        let _e = span.enter();
        tracing::info!("inside");
    });
    let text = json.text();
    assert!(!text.contains(token), "{text}");
    let lines = json.lines();
    assert_eq!(lines[0]["request_id"], "req-r");
    assert_eq!(lines[0]["span"]["token"], "[REDACTED]", "{text}");
}

/// What the process-wide accessors answer for one stack: the spans timed once, the error counted
/// once, whichever order the parts are in.
fn answers_for(name: &str, dispatch: tracing::Dispatch) {
    tracing::dispatcher::with_default(&dispatch, || {
        let span = tracing::info_span!("request", request_id = "req-a");
        let _e = span.enter();
        for _ in 0..3 {
            drop(tracing::info_span!("op_a").entered());
        }
        tracing::error!("failed");
        tracelight::flush();
        let perf = tracelight::performance();
        let count = perf
            .operations
            .iter()
            .find(|o| o.operation == "op_a")
            .map(|o| o.count);
        assert_eq!(count, Some(3), "{name}: {perf:?}");
        assert_eq!(tracelight::errors().total, 1, "{name}");
        assert!(!tracelight::stats().is_empty(), "{name}");
    });
}

#[test]
fn the_accessors_answer_for_the_whole_stack_in_any_order() {
    use tracelight::{CorrelationLayer, TimingLayer};
    let out =
        || JsonLayer::from_builder(tracelight::builder().writer(MemoryWriter::new())).unwrap();
    let registry = tracing_subscriber::registry;
    answers_for(
        "timing, json",
        registry()
            .with(TimingLayer::new().unwrap())
            .with(out())
            .into(),
    );
    answers_for(
        "json, timing",
        registry()
            .with(out())
            .with(TimingLayer::new().unwrap())
            .into(),
    );
    answers_for(
        "correlation, timing, json",
        registry()
            .with(CorrelationLayer::new().unwrap())
            .with(TimingLayer::new().unwrap())
            .with(out())
            .into(),
    );
    answers_for(
        "timing, correlation, json",
        registry()
            .with(TimingLayer::new().unwrap())
            .with(CorrelationLayer::new().unwrap())
            .with(out())
            .into(),
    );
    let (full, _guard) = tracelight::builder()
        .writer(MemoryWriter::new())
        .build()
        .unwrap();
    answers_for(
        "tracelight, timing",
        registry()
            .with(full)
            .with(TimingLayer::new().unwrap())
            .into(),
    );
}

#[test]
fn a_part_filter_in_front_keeps_the_request_id_at_warn() {
    let w = MemoryWriter::new();
    let part =
        JsonLayer::from_builder(tracelight::builder().filter("warn").writer(w.clone())).unwrap();
    let subscriber = tracing_subscriber::registry()
        .with(part.filter())
        .with(part);
    tracing::subscriber::with_default(subscriber, request_work);
    let lines: Vec<Value> = w
        .lines()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{lines:?}"); // the ERROR alone
    assert_eq!(lines[0]["request_id"], "req-alone");
    assert_eq!(lines[0]["user_id"], 42);
}

#[test]
fn a_filter_on_the_first_part_keeps_the_request_id_in_the_others_lines() {
    // The first part (which keeps the span state) filtered at INFO, the one above unfiltered: a
    // line inside a DEBUG span still carries the request id of the INFO request span.
    let first = Buf::default();
    let second = MemoryWriter::new();
    let subscriber = tracing_subscriber::registry()
        .with(
            JsonLayer::with_writer(first.clone())
                .unwrap()
                .with_filter(LevelFilter::INFO),
        )
        .with(JsonLayer::from_builder(tracelight::builder().writer(second.clone())).unwrap());
    tracing::subscriber::with_default(subscriber, || {
        let request = tracing::info_span!("request", request_id = "req-f");
        let _r = request.enter();
        let inner = tracing::debug_span!("cache_lookup", key = "k");
        let _i = inner.enter();
        tracing::warn!("cache slow");
    });
    let lines: Vec<Value> = second
        .lines()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["request_id"], "req-f", "{}", lines[0]);
    assert_eq!(first.lines()[0]["request_id"], "req-f");
}
