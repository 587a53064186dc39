//! A collector that goes away, comes back, or never answers: the service's latency stays the same
//! (nothing waits for the collector), losses are counted, and export resumes by itself.
#![cfg(feature = "otel")]
#![allow(clippy::unwrap_used)]

mod otel_support;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use otel_support::{wait_until, Rotel};
use tracelight::otel::{BatchConfig, OtelConfig, Protocol};

/// One "request": a span with a few events, the way a handler logs. Returns how long it took.
fn request(i: u64, tag: &str) -> Duration {
    let start = Instant::now();
    let span = tracing::info_span!("handle_order", order = i, tag = tag);
    let _e = span.enter();
    tracing::info!(step = "validate", "order {i} {tag}");
    tracing::info!(step = "charge", amount = 12.5, "charged {i}");
    tracing::info!(step = "done", "order {i} done");
    drop(_e);
    drop(span);
    start.elapsed()
}

/// Median and maximum of `n` requests.
fn measure(n: u64, tag: &str) -> (Duration, Duration) {
    let mut t: Vec<Duration> = (0..n).map(|i| request(i, tag)).collect();
    t.sort();
    (t[t.len() / 2], t[t.len() - 1])
}

fn batch() -> BatchConfig {
    BatchConfig::default()
        .scheduled_delay(Duration::from_millis(50))
        .max_queue_size(512)
        .export_timeout(Duration::from_millis(500))
}

/// The scenarios measure latency: they run one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

fn outage(protocol: Protocol) {
    let _serial = serial();
    let mut rotel = Rotel::start();
    let (grpc, http) = (rotel.grpc, rotel.http);
    let url = match protocol {
        Protocol::Grpc => rotel.grpc_url(),
        _ => rotel.http_url(),
    };
    let guard = tracelight::builder()
        .writer(tracelight::sink::MemoryWriter::new())
        .otel(
            OtelConfig::new()
                .endpoint(url)
                .protocol(protocol)
                .traces_batch(batch())
                .logs_batch(batch()),
        )
        .init_local()
        .unwrap();
    let otel = guard.otel().unwrap();

    // Warm up, then the baseline with the collector up.
    measure(200, "warmup");
    rotel.wait_log("order 0 warmup");
    let (up_median, up_max) = measure(2000, "up");

    // The collector goes away in the middle of the run.
    rotel.stop();
    let (down_median, down_max) = measure(2000, "down");
    // Exports now fail (connection refused) or the queue overflows: counted, not waited for.
    wait_until(
        Duration::from_secs(20),
        "failed or dropped telemetry to be counted",
        || {
            let s = otel.stats();
            (s.logs.failed + s.logs.dropped > 0).then_some(())
        },
        || format!("{:?}", otel.stats()),
    );
    let (down2_median, down2_max) = measure(2000, "still-down");

    eprintln!(
        "{protocol:?}: up median {up_median:?} max {up_max:?}; down median {down_median:?} max {down_max:?}; still down median {down2_median:?} max {down2_max:?}"
    );
    let bound = up_median * 4 + Duration::from_millis(1);
    assert!(
        down_median <= bound && down2_median <= bound,
        "requests got slower without the collector: {up_median:?} -> {down_median:?} / {down2_median:?}"
    );
    // No request ever waits for an export (the export timeout is 500 ms).
    assert!(
        down_max < Duration::from_millis(250) && down2_max < Duration::from_millis(250),
        "a request waited: {down_max:?} / {down2_max:?}"
    );

    // The collector comes back on the same ports: later telemetry arrives without a restart.
    let rotel = Rotel::start_on(grpc, http);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut i = 0;
    loop {
        request(i, "back");
        i += 1;
        if rotel
            .logs()
            .iter()
            .any(|l| l.get("Body").is_some_and(|b| b.ends_with(" back)")))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no telemetry after the collector came back; stats {:?}\n{}",
            otel.stats(),
            rotel.output()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    rotel.wait_span("handle_order");
    let s = otel.stats();
    assert!(s.logs.failed + s.logs.dropped > 0, "{s:?}");
    assert!(s.spans.failed + s.spans.dropped > 0, "{s:?}");
    guard.shutdown();
}

#[test]
fn grpc_collector_stopped_and_restarted() {
    outage(Protocol::Grpc);
}

#[test]
fn http_collector_stopped_and_restarted() {
    outage(Protocol::HttpProtobuf);
}

#[test]
fn a_collector_that_never_answers_does_not_slow_the_service() {
    let _serial = serial();
    // Accepts connections and never answers: each export runs into its timeout.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let held = std::thread::spawn(move || {
        let mut conns = Vec::new();
        silent.set_nonblocking(true).unwrap();
        let end = Instant::now() + Duration::from_secs(20);
        while Instant::now() < end {
            if let Ok((c, _)) = silent.accept() {
                conns.push(c);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    });
    let lines = tracelight::sink::MemoryWriter::new();
    let guard = tracelight::builder()
        .writer(lines.clone())
        .otel(
            OtelConfig::new()
                .endpoint(format!("http://127.0.0.1:{port}"))
                .protocol(Protocol::HttpProtobuf)
                .traces_batch(batch())
                .logs_batch(batch())
                .shutdown_timeout(Duration::from_secs(1)),
        )
        .init_local()
        .unwrap();
    let otel = guard.otel().unwrap();
    let (median, max) = measure(3000, "silent");
    wait_until(
        Duration::from_secs(15),
        "exports to time out and the queue to overflow",
        || {
            let s = otel.stats();
            (s.logs.failed > 0 && s.logs.dropped > 0).then_some(())
        },
        || format!("{:?}", otel.stats()),
    );
    let (median2, max2) = measure(3000, "silent-2");
    eprintln!("silent collector: median {median:?} / {median2:?}, max {max:?} / {max2:?}");
    assert!(max < Duration::from_millis(250) && max2 < Duration::from_millis(250));
    // The guard gives up after its shutdown timeout (1 s, both signals at once) rather than
    // hanging, and accounts for every span and record.
    let start = Instant::now();
    guard.shutdown();
    assert!(
        start.elapsed() < Duration::from_millis(1500),
        "{:?}",
        start.elapsed()
    );
    let stats = tracelight::otel::stats();
    for (name, s) in [("spans", stats.spans), ("logs", stats.logs)] {
        assert!(s.created() > 0, "{name}: {s:?}");
        assert_eq!(
            s.exported + s.dropped + s.failed + s.lost_at_shutdown,
            s.created(),
            "{name}: every item is accounted for: {s:?}"
        );
        assert!(s.lost() > 0, "{name}: {s:?}");
    }
    // The failure and the summary are lines in the log, not only on stderr.
    let text = lines.contents();
    assert!(
        text.contains("OpenTelemetry export failed"),
        "no failure line"
    );
    let summary = text
        .lines()
        .find(|l| l.contains("OpenTelemetry export lost telemetry"))
        .expect("a summary line");
    let v: serde_json::Value = serde_json::from_str(summary).unwrap();
    assert_eq!(v["level"], "WARN");
    assert_eq!(v["spans_lost"].as_u64(), Some(stats.spans.lost()), "{v}");
    assert_eq!(v["logs_lost"].as_u64(), Some(stats.logs.lost()), "{v}");
    drop(guard);
    let _ = held.join();
}
