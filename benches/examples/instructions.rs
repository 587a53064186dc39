//! A fixed workload for counting instructions with callgrind, which is repeatable where wall-clock
//! benchmarks on a shared 2-core machine are noisy.
//!
//! ```sh
//! cargo build --release -p benches --example instructions
//! for n in 100000 200000; do
//!   valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.$n target/release/examples/instructions span tracelight $n
//! done   # instructions per span = (total(200000) - total(100000)) / 100000
//! ```
//!
//! Workloads: `span` (create, enter, exit, close a span with three fields), `disabled` (a DEBUG
//! event the filter leaves out), `request` (a request span with its id and an ERROR event in it),
//! and the event shapes of `benches/workloads.rs`, each inside its spans: `info` (or `event`: the
//! `order_created` event of the format bench), `error_chain`, `warn`, `wide` and `error_long`.
//! `TL_REDACT=off` turns redaction off, to measure it; `TL_SPAN_LIST=on` writes the span list
//! (`spans`), as `fmt_json` does; `TL_SCHEMA=ecs` (`gcp`, `datadog`, `otel`) writes the lines in
//! a schema preset; `TL_RECORDER=on` turns the flight recorder on (spans named
//! `request` are units of work; with the `filtered` subscriber), for the workloads `recorded`
//! (DEBUG events in one request, kept) and `mixed` (requests of ten DEBUG events and one INFO).
//! Subscribers `filtered` and `envfilter` put the directives of `TL_FILTER` (default `info`) in
//! front of the layer, as tracelight's `LogFilter` or as an `EnvFilter`. Subscribers: `noop` (a bare
//! registry with a layer that does nothing), `tracelight`, and `tracing-subscriber`'s `fmt` (text)
//! and `fmt_json` (JSON, flattened, current span and span list) writing to `io::sink`;
//! `json_layer` (tracelight's `JsonLayer` alone) and `fmt_json_correlated` (`fmt_json` with
//! `CorrelationLayer` and `tracelight::fmt::Correlated`); `parts` (`CorrelationLayer`,
//! `TimingLayer` and `JsonLayer` stacked), beside `noop3` (three layers that do nothing). A fourth argument `text` selects the
//! text format (JSON otherwise).

#[path = "../workloads.rs"]
mod workloads;

use tracing::{info_span, Dispatch};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::Registry;
use workloads::Shape;

struct Noop;
impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Noop {}

struct Discard;
impl tracelight::sink::LineWriter for Discard {
    fn write_line(&self, line: &[u8]) {
        std::hint::black_box(line);
    }
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let workload = args.get(1).map_or("span", String::as_str);
    let subscriber = args.get(2).map_or("tracelight", String::as_str);
    let n: usize = args.get(3).map_or(Ok(100_000), |s| s.parse())?;
    let format = match args.get(4).map(String::as_str) {
        Some("text") => tracelight::Format::Text,
        _ => tracelight::Format::Json,
    };
    // `filtered` and `envfilter`: the same directives, through tracelight's filter or an
    // `EnvFilter` in front of the layer.
    let directives = std::env::var("TL_FILTER").unwrap_or_else(|_| "info".to_owned());
    // `TL_REDACT=off` turns redaction off, to measure what it costs.
    let mut builder = tracelight::builder();
    if std::env::var("TL_REDACT").is_ok_and(|v| v == "off") {
        builder = builder.without_redaction();
    }
    // `TL_RECORDER=on` turns the flight recorder on, with spans named `request` as units of work
    // (it needs tracelight's filter: the `filtered` subscriber).
    if std::env::var("TL_RECORDER").is_ok_and(|v| v == "on") {
        builder = builder.flight_recorder(tracelight::FlightRecorder::new().unit("request"));
    }
    // `TL_SCHEMA=ecs` (`gcp`, `datadog`, `otel`) writes the lines in a schema preset.
    if let Ok(name) = std::env::var("TL_SCHEMA") {
        let schema = tracelight::Schema::parse(&name).ok_or_else(|| {
            anyhow::anyhow!("TL_SCHEMA: expected one of default, ecs, gcp, datadog, otel")
        })?;
        builder = builder.schema(schema);
    }
    // `TL_SPAN_LIST=on` writes the span list too, as `fmt_json` does.
    if std::env::var("TL_SPAN_LIST").is_ok_and(|v| v == "on") {
        builder = builder.span_list(true);
    }
    let (layer, _guard) = builder
        .filter(directives.clone())
        .writer(Discard)
        .format(format)
        .ansi(false)
        .build()?;
    let dispatch = match subscriber {
        "noop" => Dispatch::new(Registry::default().with(Noop)),
        // Three layers that do nothing: what the registry costs for a stack as deep as `parts`.
        "noop3" => Dispatch::new(Registry::default().with(Noop).with(Noop).with(Noop)),
        "tracelight" => Dispatch::new(Registry::default().with(layer)),
        "filtered" => Dispatch::new(Registry::default().with(layer.filter()).with(layer)),
        "envfilter" => Dispatch::new(
            Registry::default()
                .with(tracing_subscriber::EnvFilter::new(&directives))
                .with(layer),
        ),
        "fmt" => Dispatch::new(
            Registry::default().with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(false)
                    .with_writer(std::io::sink),
            ),
        ),
        "fmt_json" => Dispatch::new(
            Registry::default().with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(true)
                    .with_writer(std::io::sink),
            ),
        ),
        // tracelight's formatter as a layer of its own.
        "json_layer" => Dispatch::new(Registry::default().with(
            tracelight::JsonLayer::from_builder(
                tracelight::builder().writer(Discard).format(format),
            )?,
        )),
        // The parts stacked by hand, as `TracelightLayer` has them in one: correlation, timing
        // and the formatter (the two above read the span state the first keeps).
        "parts" => Dispatch::new(
            Registry::default()
                .with(tracelight::CorrelationLayer::new()?)
                .with(tracelight::TimingLayer::new()?)
                .with(tracelight::JsonLayer::from_builder(
                    tracelight::builder().writer(Discard).format(format),
                )?),
        ),
        // `fmt`'s JSON with tracelight's correlation (the request id at the root of its lines).
        "fmt_json_correlated" => Dispatch::new(
            Registry::default()
                .with(tracelight::CorrelationLayer::new()?)
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
                        .with_writer(std::io::sink),
                ),
        ),
        other => anyhow::bail!(
            "unknown subscriber {other:?}: expected noop, noop3, tracelight, filtered, envfilter, fmt, \
             fmt_json, json_layer, parts or fmt_json_correlated"
        ),
    };
    tracing::dispatcher::with_default(&dispatch, || match workload {
        "event" => {
            Shape::Info.in_spans(|| (0..n).for_each(|_| Shape::Info.event()));
            Ok(())
        }
        "disabled" => {
            for i in 0..n {
                tracing::debug!(i, "not enabled at info");
            }
            Ok(())
        }
        "request" => {
            // A request span with its id, and an ERROR event inside (the filter may be `warn`).
            for _ in 0..n {
                let r = info_span!(
                    "request",
                    request_id = "0193f2a4-7c1e-7cc2-9a3b-5e0d6f7a8b9c"
                );
                let _r = r.enter();
                tracing::error!(order_id = "abc-456", "payment failed");
            }
            Ok(())
        }
        "span" => {
            for _ in 0..n {
                let span = info_span!("op", a = 42u64, b = "abc-456", c = true);
                let _e = span.enter();
            }
            Ok(())
        }
        // DEBUG events in one long request (at `info`: left out, or kept by the flight
        // recorder, which drops its oldest once 1 000 are kept).
        "recorded" => {
            let r = info_span!(
                "request",
                request_id = "0193f2a4-7c1e-7cc2-9a3b-5e0d6f7a8b9c"
            );
            let _r = r.enter();
            for i in 0..n {
                tracing::debug!(i, order_id = "abc-456", total = 99.99f64, "cache lookup");
            }
            Ok(())
        }
        // Requests that succeed, each with ten DEBUG events and one INFO event.
        "mixed" => {
            for _ in 0..n {
                let r = info_span!(
                    "request",
                    request_id = "0193f2a4-7c1e-7cc2-9a3b-5e0d6f7a8b9c"
                );
                let _r = r.enter();
                for i in 0..10u64 {
                    tracing::debug!(i, order_id = "abc-456", "cache lookup");
                }
                tracing::info!(user_id = 42u64, order_id = "abc-456", "order_created");
            }
            Ok(())
        }
        other => match Shape::parse(other) {
            Some(shape) => {
                shape.in_spans(|| (0..n).for_each(|_| shape.event()));
                Ok(())
            }
            None => anyhow::bail!(
                "unknown workload {other:?}: expected span, event, disabled, request, recorded, \
                 mixed, info, error_chain, warn, wide or error_long"
            ),
        },
    })
}
