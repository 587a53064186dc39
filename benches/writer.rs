//! Throughput to a file: 2 threads writing JSON events, lossless, tracelight's rotating file next
//! to tracing-subscriber's JSON formatter with tracing-appender's `non_blocking` writer (lossless
//! too), and the same formatter with tracelight's `FileWriter`, in the same run. Each measurement
//! includes the final flush: the events are on disk.
//!
//! ```sh
//! cargo bench -p benches --bench writer
//! ```

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tracelight::sink::{FileOptions, Rotation};
use tracelight::{Format, Output, Stream};
use tracing::{info, info_span, Dispatch};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::Registry;

const THREADS: u64 = 2;

fn run(dispatch: &Dispatch, iters: u64) {
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let d = dispatch.clone();
            s.spawn(move || {
                tracing::dispatcher::with_default(&d, || {
                    let span = info_span!(
                        "request",
                        request_id = "0193f2a4-7c1e-7cc2-9a3b-5e0d6f7a8b9c",
                        method = "POST",
                        path = "/orders"
                    );
                    let _e = span.enter();
                    for i in 0..iters / THREADS {
                        info!(
                            t,
                            i,
                            user_id = 42u64,
                            order_id = "abc-456",
                            total = 99.99f64,
                            "order_created"
                        );
                    }
                })
            });
        }
    });
}

/// tracing-subscriber's JSON formatter as both fmt cases run it: flattened, current span, no span
/// list.
fn fmt_json<W>(writer: W) -> impl tracing_subscriber::Layer<Registry>
where
    W: for<'a> tracing_subscriber::fmt::MakeWriter<'a> + Send + Sync + 'static,
{
    tracing_subscriber::fmt::layer()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_writer(writer)
}

fn writer(c: &mut Criterion) {
    let mut g = c.benchmark_group("file");
    g.throughput(Throughput::Elements(1));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(10));

    g.bench_function("tracelight", |b| {
        b.iter_custom(|iters| {
            let dir = tempfile::tempdir().expect("tempdir");
            let (layer, guard) = tracelight::builder()
                .stream(
                    Stream::new(
                        "app",
                        Output::File(
                            FileOptions::new(dir.path().join("app.log"))
                                .rotation(Rotation::size(64 << 20).backups(2).compress(false)),
                        ),
                    )
                    .format(Format::Json),
                )
                .build()
                .expect("layer");
            let dispatch = Dispatch::new(Registry::default().with(layer));
            let start = Instant::now();
            run(&dispatch, iters);
            guard.flush();
            start.elapsed()
        })
    });

    g.bench_function("tracing_subscriber_appender", |b| {
        b.iter_custom(|iters| {
            let dir = tempfile::tempdir().expect("tempdir");
            let file = tracing_appender::rolling::never(dir.path(), "app.log");
            let (writer, worker) = tracing_appender::non_blocking::NonBlockingBuilder::default()
                .lossy(false)
                .finish(file);
            let layer = fmt_json(writer);
            let dispatch = Dispatch::new(Registry::default().with(layer));
            let start = Instant::now();
            run(&dispatch, iters);
            drop(dispatch);
            drop(worker); // flushes and joins the worker thread
            start.elapsed()
        })
    });
    // The same fmt layer with tracelight's `FileWriter` instead of tracing-appender's writer:
    // the writer alone, compared.
    g.bench_function("fmt_filewriter", |b| {
        b.iter_custom(|iters| {
            let dir = tempfile::tempdir().expect("tempdir");
            let (writer, guard) = tracelight::sink::FileWriter::new(
                FileOptions::new(dir.path().join("app.log"))
                    .rotation(Rotation::size(64 << 20).backups(2).compress(false)),
            )
            .expect("file writer");
            let layer = fmt_json(writer);
            let dispatch = Dispatch::new(Registry::default().with(layer));
            let start = Instant::now();
            run(&dispatch, iters);
            drop(dispatch);
            drop(guard); // flushes and stops the writer thread
            start.elapsed()
        })
    });
    g.finish();
}

criterion_group!(benches, writer);
criterion_main!(benches);
