//! `JsonLayer` and `RouterLayer` used alone on a `Registry`: beside `fmt`, under per-layer
//! filters and `reload`, to a `MakeWriter`, with streams by rule.

#![allow(clippy::unwrap_used, missing_docs)]

use std::io;
use std::sync::{Arc, Mutex};

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
