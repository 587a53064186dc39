//! Formatting cost per event, tracelight next to its peers, in one run.
//!
//! Groups `json`, `text` and `span`: the scenario `info!(user_id = 42u64, order_id = "abc-456",
//! total = 99.99f64, items = 3u32, "order_created")` inside two entered spans
//! `request{request_id, method, path}` > `process_order{order_id}` (the `info` shape), written to
//! a sink that only counts bytes. Group `shapes/<shape>`: every shape of `benches/workloads.rs`
//! (`info`, `error_chain`, `warn`, `wide`, `error_long`), tracelight and each JSON peer at its
//! richest (flattened fields, current span, span list), side by side.
//!
//! ```sh
//! cargo bench -p benches --bench format
//! cargo bench -p benches --bench format -- shapes/    # the shapes only
//! python3 scripts/bench-report.py      # the table with ratios
//! ```

mod workloads;

use workloads::Shape;

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use tracing::{info_span, Dispatch};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::Registry;

/// An `io::Write` that counts bytes and keeps nothing.
#[derive(Clone, Default)]
struct Count(Arc<AtomicU64>);

struct CountWriter<'a>(&'a AtomicU64);

impl io::Write for CountWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.fetch_add(buf.len() as u64, Ordering::Relaxed);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Count {
    type Writer = CountWriter<'a>;
    fn make_writer(&'a self) -> Self::Writer {
        CountWriter(&self.0)
    }
}

/// The same counter for bunyan, which wants an owned `'static` writer.
#[derive(Clone, Default)]
struct CountOwned(Arc<AtomicU64>);

impl io::Write for CountOwned {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.fetch_add(buf.len() as u64, Ordering::Relaxed);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl tracelight::sink::LineWriter for Count {
    fn write_line(&self, line: &[u8]) {
        self.0.fetch_add(line.len() as u64, Ordering::Relaxed);
    }
}

fn scenario(c: &mut Criterion, group: &str, subscribers: Vec<(&str, Dispatch)>) {
    shape_scenario(c, group, Shape::Info, subscribers);
}

/// One event of `shape` per iteration, inside its spans, for each subscriber.
fn shape_scenario(
    c: &mut Criterion,
    group: &str,
    shape: Shape,
    subscribers: Vec<(&str, Dispatch)>,
) {
    let mut g = c.benchmark_group(group);
    for (name, dispatch) in subscribers {
        tracing::dispatcher::with_default(&dispatch, || {
            shape.in_spans(|| g.bench_function(name, |b| b.iter(|| shape.event())));
        });
    }
    g.finish();
}

/// Every shape, tracelight beside each JSON peer at its richest, in one run.
fn shapes(c: &mut Criterion) {
    for shape in Shape::ALL {
        let (tl, _guard) = tracelight_json();
        // With the span list, as the peers write theirs: like for like.
        let (tl_list, _guard2) = tracelight_json_span_list();
        let ts = ts_json();
        let bunyan = bunyan();
        let js = json_subscriber();
        shape_scenario(
            c,
            &format!("shapes/{}", shape.name()),
            shape,
            vec![
                ("tracelight", tl),
                ("tracelight_span_list", tl_list),
                ("tracing_subscriber_json", ts),
                ("bunyan", bunyan),
                ("json_subscriber", js),
            ],
        );
    }
}

/// tracing-subscriber's JSON at its richest: flattened fields, the current span, the span list.
fn ts_json() -> Dispatch {
    Dispatch::new(
        Registry::default().with(
            tracing_subscriber::fmt::layer()
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .with_span_list(true)
                .with_writer(Count::default()),
        ),
    )
}

/// tracing-bunyan-formatter with its storage layer.
fn bunyan() -> Dispatch {
    Dispatch::new(
        Registry::default()
            .with(tracing_bunyan_formatter::JsonStorageLayer)
            .with(tracing_bunyan_formatter::BunyanFormattingLayer::new(
                "bench".into(),
                CountOwned::default,
            )),
    )
}

/// json-subscriber at its richest: flattened fields, the current span, the span list.
fn json_subscriber() -> Dispatch {
    Dispatch::new(
        Registry::default().with(
            json_subscriber::layer()
                .flatten_event(true)
                .with_current_span(true)
                .with_span_list(true)
                .with_writer(Count::default()),
        ),
    )
}

/// Each schema preset beside the default, on the ERROR shape (where the presets differ most:
/// their error members are flat).
fn presets(c: &mut Criterion) {
    for shape in [Shape::Info, Shape::ErrorChain] {
        let mut subscribers = Vec::new();
        let mut guards = Vec::new();
        for schema in tracelight::Schema::ALL {
            let (layer, guard) = tracelight::builder()
                .service("bench")
                .schema(schema)
                .gcp_project("bench")
                .format(tracelight::Format::Json)
                .writer(Count::default())
                .build()
                .expect("tracelight layer");
            guards.push(guard);
            subscribers.push((
                schema.name(),
                Dispatch::new(Registry::default().with(layer)),
            ));
        }
        shape_scenario(c, &format!("presets/{}", shape.name()), shape, subscribers);
    }
}

fn tracelight_json() -> (Dispatch, tracelight::Guard) {
    let (layer, guard) = tracelight::builder()
        .service("bench")
        .format(tracelight::Format::Json)
        .writer(Count::default())
        .build()
        .expect("tracelight layer");
    (Dispatch::new(Registry::default().with(layer)), guard)
}

/// tracelight's JSON with the span list (`spans`), as the peers write theirs.
fn tracelight_json_span_list() -> (Dispatch, tracelight::Guard) {
    let (layer, guard) = tracelight::builder()
        .service("bench")
        .format(tracelight::Format::Json)
        .span_list(true)
        .writer(Count::default())
        .build()
        .expect("tracelight layer");
    (Dispatch::new(Registry::default().with(layer)), guard)
}

/// `CorrelationLayer`, `TimingLayer` and `JsonLayer` stacked: one span state, kept by the first.
fn parts_stack() -> Dispatch {
    Dispatch::new(
        Registry::default()
            .with(tracelight::CorrelationLayer::new().expect("correlation layer"))
            .with(tracelight::TimingLayer::new().expect("timing layer"))
            .with(
                tracelight::JsonLayer::from_builder(
                    tracelight::builder()
                        .service("bench")
                        .writer(Count::default()),
                )
                .expect("json layer"),
            ),
    )
}

fn json(c: &mut Criterion) {
    let (tl, _guard) = tracelight_json();
    let (tl_list, _guard2) = tracelight_json_span_list();
    let (tl_plain, _guard3) = {
        let (layer, guard) = tracelight::builder()
            .service("bench")
            .format(tracelight::Format::Json)
            .without_redaction()
            .writer(Count::default())
            .build()
            .expect("tracelight layer");
        (Dispatch::new(Registry::default().with(layer)), guard)
    };
    let ts = ts_json();
    let bunyan = bunyan();
    let js = json_subscriber();
    // tracelight's formatter alone, the parts stacked by hand, and fmt's JSON with tracelight's
    // correlation (the same peer line plus the request id and context at its root).
    let json_layer = Dispatch::new(
        Registry::default().with(
            tracelight::JsonLayer::from_builder(
                tracelight::builder()
                    .service("bench")
                    .writer(Count::default()),
            )
            .expect("json layer"),
        ),
    );
    let parts = parts_stack();
    let fmt_correlated = Dispatch::new(
        Registry::default()
            .with(tracelight::CorrelationLayer::new().expect("correlation layer"))
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .event_format(tracelight::fmt::Correlated::new(
                        tracing_subscriber::fmt::format()
                            .json()
                            .flatten_event(true)
                            .with_current_span(true)
                            .with_span_list(true),
                    ))
                    .with_writer(Count::default()),
            ),
    );
    scenario(
        c,
        "json",
        vec![
            ("tracelight", tl),
            ("tracelight_json_layer", json_layer),
            ("tracelight_parts", parts),
            ("fmt_json_correlated", fmt_correlated),
            ("tracelight_no_redaction", tl_plain),
            ("tracelight_span_list", tl_list),
            ("tracing_subscriber_json", ts),
            ("bunyan", bunyan),
            ("json_subscriber", js),
        ],
    );

    // The floor: serde_json writing an object with the same keys and values, nothing else.
    #[derive(serde::Serialize)]
    struct Span<'a> {
        name: &'a str,
        order_id: &'a str,
    }
    #[derive(serde::Serialize)]
    struct Line<'a> {
        timestamp: &'a str,
        level: &'a str,
        message: &'a str,
        target: &'a str,
        file: &'a str,
        line: u32,
        service: &'a str,
        host: &'a str,
        pid: u32,
        thread: &'a str,
        request_id: &'a str,
        user_id: u64,
        order_id: &'a str,
        total: f64,
        items: u32,
        span: Span<'a>,
    }
    let mut buf = Vec::with_capacity(1024);
    let sink = Count::default();
    c.benchmark_group("json")
        .bench_function("serde_json_floor", |b| {
            b.iter(|| {
                buf.clear();
                let line = Line {
                    timestamp: "2026-02-10T22:30:00.123456Z",
                    level: "INFO",
                    message: "order_created",
                    target: "format",
                    file: "benches/format.rs",
                    line: 80,
                    service: "bench",
                    host: "vm",
                    pid: 1234,
                    thread: "main",
                    request_id: "0193f2a4-7c1e-7cc2-9a3b-5e0d6f7a8b9c",
                    user_id: 42,
                    order_id: "abc-456",
                    total: 99.99,
                    items: 3,
                    span: Span {
                        name: "process_order",
                        order_id: "abc-456",
                    },
                };
                serde_json::to_writer(&mut buf, std::hint::black_box(&line)).expect("serialize");
                buf.push(b'\n');
                tracelight::sink::LineWriter::write_line(&sink, &buf);
            })
        });
}

fn text(c: &mut Criterion) {
    let (layer, _guard) = tracelight::builder()
        .format(tracelight::Format::Text)
        .ansi(false)
        .writer(Count::default())
        .build()
        .expect("tracelight layer");
    let tl = Dispatch::new(Registry::default().with(layer));
    let ts = Dispatch::new(
        Registry::default().with(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(Count::default()),
        ),
    );
    scenario(
        c,
        "text",
        vec![("tracelight", tl), ("tracing_subscriber_text", ts)],
    );
}

/// A layer that does nothing: the baseline of a bare `Registry`.
struct Noop;
impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Noop {}

fn span_lifecycle(c: &mut Criterion) {
    let mut g = c.benchmark_group("span");
    let (layer, _guard) = tracelight::builder()
        .writer(Count::default())
        .build()
        .expect("tracelight layer");
    let (layer_no_timing, _guard2) = tracelight::builder()
        .writer(Count::default())
        .without_timing()
        .build()
        .expect("tracelight layer");
    let subscribers = vec![
        (
            "registry_noop",
            Dispatch::new(Registry::default().with(Noop)),
        ),
        ("tracelight", Dispatch::new(Registry::default().with(layer))),
        (
            "tracelight_no_timing",
            Dispatch::new(Registry::default().with(layer_no_timing)),
        ),
        ("tracelight_parts", parts_stack()),
    ];
    for (name, dispatch) in subscribers {
        tracing::dispatcher::with_default(&dispatch, || {
            g.bench_function(name, |b| {
                b.iter(|| {
                    let span = info_span!("op", a = 42u64, b = "abc-456", c = true);
                    let _e = span.enter();
                })
            });
        });
    }
    g.finish();
}

criterion_group!(benches, json, text, span_lifecycle, shapes, presets);
criterion_main!(benches);
