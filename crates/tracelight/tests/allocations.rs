//! Zero heap allocations per event in steady state, counted by a global allocator.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use tracing::{info, info_span};

// The event shapes of the benchmarks and the instruction harness.
#[path = "../../../benches/workloads.rs"]
mod workloads;

struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    /// Per thread, so that tests running side by side do not count each other's allocations.
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

fn counted() {
    if COUNTING.try_with(Cell::get).unwrap_or(false) {
        let _ = ALLOCS.try_with(|a| a.set(a.get() + 1));
    }
}

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        counted();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        counted();
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

struct Discard;
impl tracelight::sink::LineWriter for Discard {
    fn write_line(&self, line: &[u8]) {
        std::hint::black_box(line);
        let _ = LINES.try_with(|n| n.set(n.get() + 1));
    }
}

thread_local! {
    /// Lines written on this thread (the writer is synchronous here): a test that counts no
    /// allocations also checks that its events were written.
    static LINES: Cell<u64> = const { Cell::new(0) };
}

fn count(f: impl Fn()) -> u64 {
    // Warm up: thread-local buffers and caches reach their working size.
    for _ in 0..100 {
        f();
    }
    ALLOCS.with(|a| a.set(0));
    COUNTING.with(|c| c.set(true));
    for _ in 0..10_000 {
        f();
    }
    COUNTING.with(|c| c.set(false));
    ALLOCS.with(Cell::get)
}

fn scenario() {
    info!(
        user_id = 42u64,
        order_id = "abc-456",
        total = 99.99f64,
        items = 3u32,
        "order_created"
    );
}

#[test]
fn json_events_allocate_nothing() {
    for (format, span_list) in [
        (tracelight::Format::Json, false),
        (tracelight::Format::Json, true),
        (tracelight::Format::Text, false),
    ] {
        let _g = tracelight::builder()
            .format(format)
            .span_list(span_list)
            .context_field("user")
            .writer(Discard)
            .init_local()
            .expect("init");
        let request = info_span!(
            "request",
            request_id = "0193f2a4-7c1e-7cc2",
            method = "POST",
            path = "/orders"
        );
        let _r = request.enter();
        tracelight::bind("user", "alice");
        let process = info_span!("process_order", order_id = "abc-456");
        let _p = process.enter();
        let n = count(scenario);
        assert_eq!(
            n, 0,
            "{format:?} span_list={span_list}: {n} allocations in 10,000 events"
        );
    }
}

#[test]
fn disabled_events_allocate_nothing() {
    let _g = tracelight::builder()
        .format(tracelight::Format::Json)
        .output(tracelight::Output::Stderr)
        .filter("warn")
        .init_local()
        .expect("init");
    let n = count(scenario);
    assert_eq!(n, 0);
}

#[test]
fn spans_allocate_nothing() {
    // A span's state is pooled and its fields go into reused buffers; the timing aggregates of
    // an operation are allocated when it is first seen (during warm-up here).
    let _g = tracelight::builder()
        .format(tracelight::Format::Json)
        .writer(Discard)
        .init_local()
        .expect("init");
    let outer = info_span!("request", request_id = "0193f2a4-7c1e-7cc2");
    let _o = outer.enter();
    let span = || {
        let span = info_span!("op", a = 42u64, b = "abc-456", c = true);
        let _e = span.enter();
    };
    // Closes are folded into the aggregates in batches: the operation's histogram is created at
    // the first fold, which a snapshot forces.
    span();
    let _ = tracelight::performance();
    let n = count(span);
    assert_eq!(n, 0, "{n} allocations in 10,000 spans");
    let stats = tracelight::performance();
    let op = stats
        .operations
        .iter()
        .find(|o| o.operation == "op")
        .expect("op timed");
    assert_eq!(op.count, 10_101);
}

/// `FileWriter` as a `MakeWriter`: writing a line through it (what `fmt` does for each event)
/// allocates nothing per line; the queue's buffer only grows, now and then, to the size the
/// writer thread's lag asks for (at most the queue's capacity).
#[test]
fn file_writer_lines_allocate_nothing_per_line() {
    use std::io::Write as _;
    use tracing_subscriber::fmt::MakeWriter as _;
    let dir = tempfile::tempdir().unwrap();
    let (writer, guard) = tracelight::sink::FileWriter::new(tracelight::sink::FileOptions::new(
        dir.path().join("a.log"),
    ))
    .unwrap();
    let line = || {
        let mut w = writer.make_writer();
        w.write_all(b"{\"message\":\"order_created\",\"order_id\":\"abc-456\"}\n")
            .unwrap();
    };
    for _ in 0..10_000 {
        line();
    }
    guard.flush();
    let n = count(line);
    assert!(n <= 10, "{n} allocations for 10,000 lines");
}

/// Every shape of the benchmarks (`benches/workloads.rs`): an ERROR with a chain, long escaped
/// strings, `%` and `?` values and a dotted name in four nested spans; a WARN; a wide event;
/// long strings. In JSON (with and without the span list, in every schema preset) and text, with
/// the error tracker and redaction on (the defaults).
#[test]
fn every_shape_allocates_nothing() {
    let mut found = Vec::new();
    for shape in workloads::Shape::ALL {
        for (format, span_list, schema) in [
            (tracelight::Format::Json, false, tracelight::Schema::Default),
            (tracelight::Format::Json, true, tracelight::Schema::Default),
            (tracelight::Format::Text, false, tracelight::Schema::Default),
            (tracelight::Format::Json, true, tracelight::Schema::Ecs),
            (tracelight::Format::Json, true, tracelight::Schema::Gcp),
            (tracelight::Format::Json, true, tracelight::Schema::Datadog),
            (tracelight::Format::Json, true, tracelight::Schema::Otel),
        ] {
            let _g = tracelight::builder()
                .format(format)
                .span_list(span_list)
                .schema(schema)
                .gcp_project("p")
                .writer(Discard)
                .init_local()
                .expect("init");
            // The events' lines are counted inside the spans: a span's close may add a
            // slow-span line of its own (past 500 ms on a slow machine).
            let (n, written) = shape.in_spans(|| {
                let before = LINES.with(Cell::get);
                let n = count(|| shape.event());
                (n, LINES.with(Cell::get) - before)
            });
            assert_eq!(
                written,
                10_100,
                "{} {format:?}: every event is written (warm-up and counted)",
                shape.name()
            );
            if n > 0 {
                found.push(format!(
                    "{} {format:?} span_list={span_list} {schema}: {n} allocations in 10,000 events",
                    shape.name()
                ));
            }
        }
    }
    assert!(found.is_empty(), "{found:#?}");
}

/// The flight recorder keeps DEBUG lines without allocating: in one long unit of work (each
/// line past the bound drops the oldest), and in units that end (their buffers go back to the
/// span pool with their state). Outside any unit, a DEBUG line it lets through allocates nothing
/// either.
#[test]
fn flight_recorder_lines_allocate_nothing() {
    let _g = tracelight::builder()
        .format(tracelight::Format::Json)
        .filter("info")
        .flight_recorder(tracelight::FlightRecorder::new().unit("job").max_events(50))
        .writer(Discard)
        // The units' durations go into histograms that grow the first time a longer one is
        // seen (a few times in a run, never per line): not what this test counts.
        .without_timing()
        .init_local()
        .expect("init");
    let debug = || {
        tracing::debug!(
            i = 3u64,
            order_id = "abc-456",
            total = 9.5f64,
            "cache lookup"
        )
    };
    let n = count(debug);
    assert_eq!(n, 0, "outside a unit: {n} allocations in 10,000 events");
    {
        let job = info_span!("job", id = 1u64);
        let _j = job.enter();
        let n = count(debug);
        assert_eq!(n, 0, "in one unit: {n} allocations in 10,000 events");
    }
    let job = || info_span!("job", id = 2u64).in_scope(|| (0..10).for_each(|_| debug()));
    let n = count(job);
    assert_eq!(n, 0, "10 lines per unit: {n} allocations in 10,000 units");
    let stats = tracelight::current_handle()
        .unwrap()
        .flight_recorder()
        .unwrap();
    assert!(stats.recorded > 100_000 && stats.replayed == 0, "{stats:?}");
    assert_eq!(stats.bytes, 0);
}
