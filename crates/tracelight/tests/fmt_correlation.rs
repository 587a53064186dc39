//! `tracing_subscriber::fmt` with tracelight's correlation: `CorrelationLayer` beside `fmt`, and
//! `tracelight::fmt::Correlated` around fmt's JSON and text formats — the request id and the
//! bound context at the root of every line inside a request, in nested spans and spawned tasks,
//! behind `reload` and per-layer filters.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::Layer as _;

#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Buf {
    type Writer = Buf;
    fn make_writer(&'a self) -> Buf {
        self.clone()
    }
}

impl Buf {
    fn lines(&self) -> Vec<String> {
        String::from_utf8(self.0.lock().unwrap().clone())
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

#[tracing::instrument]
fn load_cart(cart: u32) {
    tracing::info!("cart loaded");
}

#[test]
fn fmt_json_lines_carry_the_request_id_and_bound_fields_at_the_root() {
    let out = Buf::default();
    let fmt = tracing_subscriber::fmt::layer()
        .json()
        .event_format(tracelight::fmt::Correlated::new(
            tracing_subscriber::fmt::format().json().flatten_event(true),
        ))
        .with_writer(out.clone())
        .with_filter(tracing_subscriber::filter::LevelFilter::INFO);
    let (correlation, _handle) =
        tracing_subscriber::reload::Layer::new(tracelight::CorrelationLayer::new().unwrap());
    let subscriber = tracing_subscriber::registry().with(correlation).with(fmt);
    let _default = tracing::subscriber::set_default(subscriber);

    tracing::info!("before any request");
    {
        let span = tracing::info_span!("request", request_id = "req-7");
        let _e = span.enter();
        tracelight::bind("user_id", 42u64);
        tracing::info!("in the request");
        load_cart(3);
        tracing::info!(request_id = "own", "an event with its own request_id");
    }
    let lines: Vec<Value> = out
        .lines()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let find = |m: &str| {
        lines
            .iter()
            .find(|l| l["message"] == m)
            .unwrap_or_else(|| panic!("no {m:?} in {lines:#?}"))
    };
    assert_eq!(find("before any request").get("request_id"), None);
    let inside = find("in the request");
    assert_eq!(inside["request_id"], "req-7");
    assert_eq!(inside["user_id"], 42);
    // A nested #[instrument] span inherits both.
    let nested = find("cart loaded");
    assert_eq!(nested["request_id"], "req-7");
    assert_eq!(nested["user_id"], 42);
    // A key the event has itself is not repeated.
    let own = out
        .lines()
        .into_iter()
        .find(|l| l.contains("its own request_id"))
        .unwrap();
    let parsed: Value = serde_json::from_str(&own).unwrap();
    assert_eq!(parsed["request_id"], "own", "{own}");
    assert!(
        !own.contains("\"request_id\":\"req-7\",\"user_id\""),
        "{own}"
    );
    assert!(own.starts_with("{\"user_id\":42,"), "{own}");
}

#[test]
fn fmt_text_lines_end_with_the_context() {
    let out = Buf::default();
    let fmt = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .event_format(tracelight::fmt::Correlated::new(
            tracing_subscriber::fmt::format().with_ansi(false),
        ))
        .with_writer(out.clone());
    let subscriber = tracing_subscriber::registry()
        .with(tracelight::CorrelationLayer::new().unwrap())
        .with(fmt);
    tracing::subscriber::with_default(subscriber, || {
        let span = tracing::info_span!("request", request_id = "req-9");
        let _e = span.enter();
        tracelight::bind("tenant", "acme corp");
        tracing::warn!("low stock");
    });
    let lines = out.lines();
    let line = lines.iter().find(|l| l.contains("low stock")).unwrap();
    assert!(
        line.ends_with(" request_id=req-9 tenant=\"acme corp\""),
        "{line}"
    );
}

/// `TimingLayer` beside fmt: a slow span's `span_closed` event reaches fmt's lines, with its
/// busy and idle time, inside the span that closed; the aggregates count it.
#[test]
fn timing_layer_alone_reports_slow_spans_to_fmt() {
    let out = Buf::default();
    let timing = tracelight::TimingLayer::from_builder(
        tracelight::builder().timing(
            tracelight::timing::TimingConfig::default()
                .threshold_for("slow_query", std::time::Duration::from_millis(10)),
        ),
    )
    .unwrap();
    let fmt = tracing_subscriber::fmt::layer()
        .json()
        .flatten_event(true)
        .with_writer(out.clone());
    let subscriber = tracing_subscriber::registry().with(timing).with(fmt);
    let performance = tracing::subscriber::with_default(subscriber, || {
        {
            let _s = tracing::info_span!("slow_query", table = "orders").entered();
            std::thread::sleep(std::time::Duration::from_millis(30));
        }
        {
            let _s = tracing::info_span!("slow_query", table = "orders").entered();
        }
        tracelight::performance()
    });
    let lines: Vec<Value> = out
        .lines()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let closed: Vec<&Value> = lines
        .iter()
        .filter(|l| l["message"] == "span_closed")
        .collect();
    assert_eq!(closed.len(), 1, "{lines:#?}");
    let c = closed[0];
    assert_eq!(c["level"], "WARN");
    assert_eq!(c["target"], "tracelight::timing");
    assert_eq!(c["operation"], "slow_query");
    assert!(c["duration_ms"].as_f64().unwrap() >= 30.0, "{c}");
    assert!(c["busy_ms"].as_f64().unwrap() >= 30.0, "{c}");
    assert_eq!(
        c["span"]["table"], "orders",
        "inside the span that closed: {c}"
    );
    let op = performance
        .operations
        .iter()
        .find(|o| o.operation == "slow_query")
        .expect("the aggregates");
    assert_eq!((op.count, op.slow), (2, 1));
}
