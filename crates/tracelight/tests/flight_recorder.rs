//! The flight recorder, with a real axum service at `info`: the DEBUG lines of a failing request
//! are written before its access line, marked and in order, those of a succeeding one never; a
//! unit of work of your own (a job) fails on an ERROR or a slow span; sampled-out lines are kept
//! the same way; and memory stays within its bound under 500 requests at once.
#![cfg(all(feature = "http", feature = "axum"))]
#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

mod http_support;

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use serde_json::Value;
use tracelight::http::RequestLayer;
use tracelight::sink::MemoryWriter;
use tracelight::{FlightRecorder, Format, Guard};
use tracing::{debug, error, info, info_span, trace};

use http_support::serve;

/// The total bound of the process's recorder (the 500-request test fills it).
const TOTAL: usize = 256 * 1024;

struct Service {
    lines: MemoryWriter,
    _guard: Guard,
}

/// The process's subscriber, as `init` installs it (tracelight's filter at `info`), with the
/// recorder on.
fn service() -> &'static Service {
    static S: OnceLock<Service> = OnceLock::new();
    S.get_or_init(|| {
        let lines = MemoryWriter::new();
        let guard = tracelight::builder()
            .service("recorder-test")
            .filter("info,legacy=warn")
            .format(Format::Json)
            .flight_recorder(FlightRecorder::new().max_total_bytes(TOTAL))
            // The 500 requests wait for one another: none is slow for that.
            .timing(tracelight::timing::TimingConfig::default().threshold(Duration::from_secs(120)))
            .writer(lines.clone())
            .init()
            .expect("init");
        Service {
            lines,
            _guard: guard,
        }
    })
}

fn parsed(lines: &MemoryWriter) -> Vec<Value> {
    lines
        .lines()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("invalid JSON {e}: {l}")))
        .collect()
}

async fn wait_for(lines: &MemoryWriter, what: &str, pred: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let all = parsed(lines);
        if pred(&all) {
            return all;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}: {all:#?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn app() -> SocketAddr {
    let _ = service();
    let router = Router::new()
        .route(
            "/ok",
            get(|| async {
                debug!(order_id = 7, "looking up the order");
                info!("order found");
                "ok"
            }),
        )
        .route(
            "/fail",
            get(|| async {
                debug!(order_id = 8, "looking up the order");
                trace!(rows = 0, "the query returned");
                debug!(token = "s3cr3t-value", "calling the payment gateway");
                // Left out by the filter (`legacy=warn`) and not kept: the `log` crate's records
                // stay out.
                log::info!(target: "legacy", "a log record the filter leaves out");
                (StatusCode::BAD_GATEWAY, "gateway down")
            }),
        )
        .route(
            "/panic",
            get(|| async {
                debug!(order_id = 9, "about to fail hard");
                if std::hint::black_box(true) {
                    panic!("the handler panicked");
                }
                "unreachable"
            }),
        )
        .route(
            "/burst",
            get(
                |q: axum::extract::Query<std::collections::HashMap<String, String>>| async move {
                    let n: usize = q.get("n").and_then(|n| n.parse().ok()).unwrap_or(10);
                    for i in 0..n {
                        debug!(i, padding = "x".repeat(150), "step");
                    }
                    let gate = BURST.get().cloned();
                    if let Some(gate) = gate {
                        gate.wait().await;
                    }
                    if q.get("fail").is_some() {
                        StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        StatusCode::OK
                    }
                },
            ),
        );
    serve(router.layer(RequestLayer::new())).await
}

static BURST: OnceLock<Arc<tokio::sync::Barrier>> = OnceLock::new();

fn of_request<'a>(lines: &'a [Value], id: &str) -> Vec<&'a Value> {
    lines.iter().filter(|l| l["request_id"] == id).collect()
}

async fn get_with_id(addr: SocketAddr, path: &str, id: &str) -> StatusCode {
    let r = reqwest::Client::new()
        .get(format!("http://{addr}{path}"))
        .header("x-request-id", id)
        .send()
        .await
        .unwrap();
    StatusCode::from_u16(r.status().as_u16()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_request_writes_its_debug_lines_before_its_access_line() {
    let addr = app().await;
    let s = service();
    assert_eq!(get_with_id(addr, "/ok", "rec-ok-1").await, StatusCode::OK);
    assert_eq!(
        get_with_id(addr, "/fail", "rec-fail-1").await,
        StatusCode::BAD_GATEWAY
    );
    let all = wait_for(&s.lines, "both access lines", |l| {
        ["rec-ok-1", "rec-fail-1"].iter().all(|id| {
            of_request(l, id)
                .iter()
                .any(|x| x["target"] == "tracelight::access")
        })
    })
    .await;

    // The request that succeeded: its INFO line and access line, no DEBUG line.
    let ok = of_request(&all, "rec-ok-1");
    assert!(ok.iter().all(|l| l["level"] != "DEBUG"), "{ok:#?}");
    assert!(ok.iter().any(|l| l["message"] == "order found"));

    // The one that failed: its DEBUG and TRACE lines, in order, marked, before the access line.
    let failed = of_request(&all, "rec-fail-1");
    let messages: Vec<&str> = failed
        .iter()
        .map(|l| l["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        messages,
        [
            "looking up the order",
            "the query returned",
            "calling the payment gateway",
            "request completed"
        ],
        "{failed:#?}"
    );
    for l in &failed[..3] {
        assert_eq!(l["replayed"], true, "{l}");
        assert_eq!(l["service"], "recorder-test");
    }
    assert!(failed[3].get("replayed").is_none());
    assert_eq!(failed[3]["status"], 502);
    assert_eq!(failed[1]["level"], "TRACE");
    assert_eq!(failed[1]["rows"], 0);
    assert!(
        all.iter()
            .all(|l| l["message"] != "a log record the filter leaves out"),
        "{all:#?}"
    );
    // Redacted like any line.
    assert_eq!(failed[2]["token"], tracelight::REDACTED);
    // Their own timestamps, in order, before the access line's.
    let ts: Vec<&str> = failed
        .iter()
        .map(|l| l["timestamp"].as_str().unwrap())
        .collect();
    assert!(ts.windows(2).all(|w| w[0] <= w[1]), "{ts:?}");
    let stats = tracelight::current_handle()
        .unwrap()
        .flight_recorder()
        .unwrap();
    assert!(stats.replayed >= 3 && stats.discarded >= 1, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_stays_bounded_under_500_requests_at_once() {
    let addr = app().await;
    let s = service();
    const N: usize = 500;
    let gate = BURST.get_or_init(|| Arc::new(tokio::sync::Barrier::new(N + 1)));
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..N {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let path = if i % 50 == 0 {
                "/burst?n=20&fail=1"
            } else {
                "/burst?n=20"
            };
            client
                .get(format!("http://{addr}{path}"))
                .header("x-request-id", format!("burst-{i}"))
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    // Every request is inside its handler, holding its lines: the bound holds now.
    tokio::time::timeout(Duration::from_secs(30), gate.wait())
        .await
        .expect("all 500 requests in their handlers");
    let h = tracelight::current_handle().unwrap();
    let during = h.flight_recorder().unwrap();
    assert!(during.bytes as usize <= TOTAL, "{during:?}");
    assert!(
        during.dropped > 0,
        "500 × 20 lines must overflow 256 KiB: {during:?}"
    );
    for t in tasks {
        t.await.unwrap();
    }
    let all = wait_for(&s.lines, "every access line", |l| {
        l.iter()
            .filter(|x| {
                x["target"] == "tracelight::access"
                    && x["request_id"]
                        .as_str()
                        .is_some_and(|r| r.starts_with("burst-"))
            })
            .count()
            == N
    })
    .await;
    // The failing requests wrote what they still held, each at most its lines, in order.
    for i in (0..N).step_by(50) {
        let id = format!("burst-{i}");
        let steps: Vec<u64> = of_request(&all, &id)
            .iter()
            .filter(|l| l["message"] == "step")
            .map(|l| l["i"].as_u64().unwrap())
            .collect();
        assert!(steps.len() <= 20, "{id}: {steps:?}");
        assert!(steps.windows(2).all(|w| w[0] < w[1]), "{id}: {steps:?}");
    }
    // No other request wrote a DEBUG line.
    let others: Vec<&Value> = all
        .iter()
        .filter(|l| {
            l["message"] == "step"
                && l["request_id"]
                    .as_str()
                    .and_then(|r| r.strip_prefix("burst-"))
                    .and_then(|n| n.parse::<usize>().ok())
                    .is_none_or(|n| n % 50 != 0)
        })
        .collect();
    assert!(others.is_empty(), "{others:#?}");
    // Everything was released when the requests ended.
    let end = wait_until_released(&h).await;
    assert_eq!(end.bytes, 0, "{end:?}");
}

async fn wait_until_released(h: &tracelight::Handle) -> tracelight::recorder::RecorderStats {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let s = h.flight_recorder().unwrap();
        if s.bytes == 0 || tokio::time::Instant::now() > deadline {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A subscriber of this thread only, with a `job` unit and a 20 ms slow threshold.
fn local(w: &MemoryWriter, sampling: bool) -> tracelight::LocalGuard {
    let mut b = tracelight::builder()
        .filter(if sampling { "debug" } else { "info" })
        .format(Format::Json)
        .timing(tracelight::timing::TimingConfig::default().threshold(Duration::from_millis(20)))
        .flight_recorder(
            FlightRecorder::new()
                .unit("job")
                .unit("batch")
                .max_events(3),
        )
        .writer(w.clone());
    if sampling {
        b = b.sampling(tracelight::sample::SamplingConfig::default().debug_sample_rate(0.0));
    }
    b.init_local().unwrap()
}

fn messages(w: &MemoryWriter) -> Vec<(String, bool)> {
    parsed(w)
        .iter()
        .map(|l| {
            (
                l["message"].as_str().unwrap_or_default().to_owned(),
                l["replayed"] == true,
            )
        })
        .collect()
}

#[test]
fn a_job_fails_on_an_error_and_writes_its_later_lines_at_once() {
    let w = MemoryWriter::new();
    let _g = local(&w, false);
    info_span!("job", id = 1).in_scope(|| {
        debug!("a");
        debug!("b");
    });
    info_span!("job", id = 2).in_scope(|| {
        for m in ["c", "d", "e", "f"] {
            debug!("{m}");
        }
        error!("failed");
        debug!("after");
    });
    // Outside any unit: left out, as the filter says.
    debug!("outside");
    let got = messages(&w);
    let want: Vec<(String, bool)> = [
        ("d", true),
        ("e", true),
        ("f", true),
        ("failed", false),
        ("after", true),
    ]
    .iter()
    .map(|(m, r)| ((*m).to_owned(), *r))
    .collect();
    assert_eq!(got, want);
    let s = tracelight::current_handle()
        .unwrap()
        .flight_recorder()
        .unwrap();
    // `c` went for the bound of three; `a` and `b` with their job.
    assert_eq!(
        (s.recorded, s.dropped, s.discarded, s.replayed),
        (6, 1, 2, 4)
    );
    assert_eq!(s.bytes, 0);
}

#[test]
fn a_failing_unit_inside_another_writes_the_outer_ones_lines_first() {
    let w = MemoryWriter::new();
    let _g = local(&w, false);
    info_span!("batch", id = 9).in_scope(|| {
        debug!("batch started");
        info_span!("job", id = 10).in_scope(|| {
            debug!("job started");
            error!("job failed");
        });
        // The batch failed with its job: its later lines are written at once.
        debug!("batch goes on");
    });
    assert_eq!(
        messages(&w),
        [
            ("batch started".to_owned(), true),
            ("job started".to_owned(), true),
            ("job failed".to_owned(), false),
            ("batch goes on".to_owned(), true),
        ]
    );
}

#[test]
fn a_slow_span_makes_its_unit_fail() {
    let w = MemoryWriter::new();
    let _g = local(&w, false);
    info_span!("job", id = 3).in_scope(|| {
        debug!("before the slow call");
        info_span!("slow_call").in_scope(|| std::thread::sleep(Duration::from_millis(30)));
    });
    let got = messages(&w);
    assert_eq!(
        got.first(),
        Some(&("before the slow call".to_owned(), true)),
        "{got:?}"
    );
    assert!(got.iter().any(|(m, r)| m == "span_closed" && !r), "{got:?}");
}

#[test]
fn lines_sampled_out_are_kept_and_written_when_the_unit_fails() {
    let w = MemoryWriter::new();
    // DEBUG is on, but sampled at 0: no request has its DEBUG lines live.
    let _g = local(&w, true);
    info_span!("job", id = 4).in_scope(|| debug!("sampled out, dropped with the job"));
    info_span!("job", id = 5).in_scope(|| {
        debug!("sampled out, kept");
        error!("failed");
    });
    assert_eq!(
        messages(&w),
        [
            ("sampled out, kept".to_owned(), true),
            ("failed".to_owned(), false)
        ]
    );
}

fn env(vars: &[(&str, &str)]) -> Result<tracelight::Config, tracelight::Error> {
    tracelight::Config::from_lookup(|k| {
        vars.iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| (*v).to_owned())
    })
}

/// The environment switches the recorder the code configures and tunes it; a setting while it is
/// off is said at start; a bad value names the variable and what it takes.
#[test]
fn the_environment_switches_and_tunes_the_recorder() {
    // Tuned over the code's settings: five lines kept, not one; `job` a unit at any level.
    let w = MemoryWriter::new();
    let config = env(&[
        ("LOG_FLIGHT_RECORDER_MAX_EVENTS", "5"),
        ("LOG_FLIGHT_RECORDER_UNITS", "job"),
    ])
    .unwrap();
    {
        let _g = tracelight::builder()
            .config(config)
            .filter("info")
            .format(Format::Json)
            .flight_recorder(FlightRecorder::new().max_events(1))
            .writer(w.clone())
            .init_local()
            .unwrap();
        tracing::debug_span!("job", id = 11).in_scope(|| {
            for i in 0..6u64 {
                debug!(i, "step");
            }
            error!("failed");
        });
    }
    let got = messages(&w);
    assert_eq!(
        got.iter().filter(|(m, r)| m == "step" && *r).count(),
        5,
        "{got:?}"
    );

    // The operator's switch wins over the code.
    let off = env(&[("LOG_FLIGHT_RECORDER", "off")]).unwrap();
    let w = MemoryWriter::new();
    let _g = tracelight::builder()
        .config(off)
        .flight_recorder(FlightRecorder::new())
        .writer(w.clone())
        .init_local()
        .unwrap();
    assert!(tracelight::current_handle()
        .unwrap()
        .flight_recorder()
        .is_none());
    drop(_g);

    // Set while the recorder is off: said at start.
    let w = MemoryWriter::new();
    let _g = tracelight::builder()
        .config(env(&[("LOG_FLIGHT_RECORDER_UNITS", "job")]).unwrap())
        .format(Format::Json)
        .writer(w.clone())
        .init_local()
        .unwrap();
    let lines = parsed(&w);
    assert!(
        lines.iter().any(|l| l["level"] == "WARN"
            && l["message"]
                .as_str()
                .is_some_and(|m| m.contains("LOG_FLIGHT_RECORDER_UNITS")
                    && m.contains("LOG_FLIGHT_RECORDER=on"))),
        "{lines:#?}"
    );
    drop(_g);

    for (var, value, accepted) in [
        ("LOG_FLIGHT_RECORDER", "maybe", "true, false"),
        (
            "LOG_FLIGHT_RECORDER_LEVEL",
            "verbose",
            "trace, debug, info, warn",
        ),
        ("LOG_FLIGHT_RECORDER_UNITS", ",", "span names"),
        ("LOG_FLIGHT_RECORDER_MAX_EVENTS", "0", "positive number"),
        ("LOG_FLIGHT_RECORDER_MAX_BYTES", "100", "at least 64KiB"),
    ] {
        let err = env(&[(var, value), ("LOG_FLIGHT_RECORDER", "on")])
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(err.contains(var) && err.contains(accepted), "{err}");
    }
}

/// The recorder's counts on the admin router's `/metrics`.
#[cfg(feature = "admin")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_counts_are_on_the_metrics_endpoint() {
    let addr = app().await;
    assert_eq!(
        get_with_id(addr, "/fail", "rec-metrics-1").await,
        StatusCode::BAD_GATEWAY
    );
    let h = tracelight::current_handle().unwrap();
    let admin = serve(
        tracelight::admin::AdminRouter::new(h.clone())
            .token("t0ken-for-the-recorder-test")
            .build()
            .unwrap(),
    )
    .await;
    let text = reqwest::Client::new()
        .get(format!("http://{admin}/metrics"))
        .bearer_auth("t0ken-for-the-recorder-test")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let value = |series: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
            .unwrap_or_else(|| panic!("no {series} in\n{text}"))
    };
    assert!(value("tracelight_flight_recorder_lines_total{outcome=\"replayed\"}") >= 3.0);
    assert!(value("tracelight_flight_recorder_lines_total{outcome=\"recorded\"}") >= 3.0);
    let _ = value("tracelight_flight_recorder_lines_total{outcome=\"dropped\"}");
    let _ = value("tracelight_flight_recorder_bytes");
}

/// A line kept for the recorder takes no rate-limit slot, and an ERROR the error tracker
/// suppresses as a repeat still fails its unit.
#[test]
fn rate_limits_and_suppressed_repeats() {
    let w = MemoryWriter::new();
    let _g = tracelight::builder()
        .filter("info")
        .format(Format::Json)
        .sampling(tracelight::sample::SamplingConfig::default().rate_limit(2))
        .errors(
            tracelight::errors::ErrorConfig::default().suppress_after(1, Duration::from_secs(60)),
        )
        .flight_recorder(FlightRecorder::new().unit("job"))
        .writer(w.clone())
        .init_local()
        .unwrap();
    let job = |id: u64, n: u64| {
        info_span!("job", id).in_scope(|| {
            for i in 0..n {
                debug!(i, "step");
            }
            error!("the same failure");
        })
    };
    job(1, 5);
    // Suppressed by the tracker, not written: the job's lines are written all the same.
    job(2, 1);
    let got = messages(&w);
    let steps = got.iter().filter(|(m, r)| m == "step" && *r).count();
    assert_eq!(steps, 6, "{got:?}");
    assert_eq!(
        got.iter().filter(|(m, _)| m == "the same failure").count(),
        1,
        "{got:?}"
    );
}

/// A field named `replayed` on an ordinary line is renamed: only the recorder writes the key.
#[test]
fn a_field_named_replayed_is_renamed() {
    let w = MemoryWriter::new();
    let _g = local(&w, false);
    info!(replayed = true, "not a replayed line");
    let line = &parsed(&w)[0];
    assert!(line.get("replayed").is_none(), "{line}");
    assert_eq!(line["fields.replayed"], true);
}

/// A panic inside a request fails it: the panic hook's ERROR line comes after the kept lines.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_inside_a_request_writes_its_kept_lines() {
    let addr = app().await;
    let s = service();
    // The connection is dropped by the panic: the client sees an error, not a response.
    let _ = reqwest::Client::new()
        .get(format!("http://{addr}/panic"))
        .header("x-request-id", "rec-panic-1")
        .send()
        .await;
    let all = wait_for(&s.lines, "the panic line", |l| {
        of_request(l, "rec-panic-1")
            .iter()
            .any(|x| x["target"] == "panic")
    })
    .await;
    let lines = of_request(&all, "rec-panic-1");
    let kept = lines
        .iter()
        .position(|l| l["message"] == "about to fail hard")
        .unwrap_or_else(|| panic!("{lines:#?}"));
    let panic = lines.iter().position(|l| l["target"] == "panic").unwrap();
    assert!(kept < panic, "{lines:#?}");
    assert_eq!(lines[kept]["replayed"], true);
    // The access line says the service failed, not that the client went away.
    let all = wait_for(&s.lines, "the access line", |l| {
        of_request(l, "rec-panic-1")
            .iter()
            .any(|x| x["target"] == "tracelight::access")
    })
    .await;
    let access = of_request(&all, "rec-panic-1")
        .into_iter()
        .find(|l| l["target"] == "tracelight::access")
        .unwrap();
    assert_eq!(access["status"], 500, "{access}");
    assert!(access.get("cancelled").is_none(), "{access}");
    assert_eq!(
        access["error"]["message"], "the handler panicked",
        "{access}"
    );
}

/// A layer of one's own beside tracelight's filter sees what the directives enable, behind
/// `LogFilter::for_layer`, while tracelight's layer keeps the rest.
#[test]
fn a_layer_beside_the_filter_sees_only_what_the_directives_enable() {
    use std::io::Write as _;
    use std::sync::Mutex;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::Layer as _;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let printed = Buf::default();
    let w = MemoryWriter::new();
    let (layer, _guard) = tracelight::builder()
        .filter("info")
        .format(Format::Json)
        .flight_recorder(FlightRecorder::new().unit("job"))
        .writer(w.clone())
        .build()
        .unwrap();
    let filter = layer.filter();
    let out = printed.clone();
    let fmt = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_writer(move || out.clone())
        .with_filter(filter.for_layer());
    let subscriber = tracing_subscriber::registry()
        .with(filter)
        .with(layer)
        .with(fmt);
    tracing::subscriber::with_default(subscriber, || {
        info_span!("job", id = 12).in_scope(|| {
            debug!("kept for the recorder");
            info!("written by both");
            error!("the job failed");
        });
    });
    let _ = printed.clone().flush();
    let text = String::from_utf8(printed.0.lock().unwrap().clone()).unwrap();
    assert!(
        text.contains("written by both") && text.contains("the job failed"),
        "{text}"
    );
    assert!(!text.contains("kept for the recorder"), "{text}");
    // tracelight's own lines have the kept one, replayed.
    let got = messages(&w);
    assert!(
        got.contains(&("kept for the recorder".to_owned(), true)),
        "{got:?}"
    );
}
