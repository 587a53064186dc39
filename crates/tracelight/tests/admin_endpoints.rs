//! What the admin endpoints answer over real HTTP after errors, slow spans and security events
//! went through `tracing`; `/metrics` read by the reference Prometheus parser.
#![cfg(feature = "admin")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod admin_support;

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use admin_support::{get_json, get_with_token, is_rfc3339, logs, parse_prometheus, serve};
use serde_json::Value;
use tracelight::admin::AdminRouter;
use tracing::{error, info_span, Instrument as _};

#[derive(Debug)]
struct PaymentError;

impl fmt::Display for PaymentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("card declined")
    }
}

impl std::error::Error for PaymentError {}

/// The operation name with characters that need escaping in a label value.
const ODD_OPERATION: &str = "odd \"op\" \\ with\nnewline";

/// Errors from two callsites, a slow span in a request, a timed block with an odd name, and
/// security events — once per process.
async fn generate() {
    static ONCE: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    ONCE.get_or_init(|| async {
        logs();
        for order_id in 1..=3u64 {
            error!(
                error = &PaymentError as &(dyn std::error::Error + 'static),
                order_id, "payment failed"
            );
        }
        error!(table = "orders", "database unreachable");
        // The checkout span is opened inside the request span, so it carries its request id.
        async {
            async {
                tokio::time::sleep(Duration::from_millis(40)).await;
            }
            .instrument(info_span!("slow_checkout", order_id = 7u64))
            .await;
        }
        .instrument(info_span!("request", request_id = "req-admin-1"))
        .await;
        drop(tracelight::timed(ODD_OPERATION));
        for _ in 0..2 {
            tracelight::security_event!(
                "login_failed",
                "medium",
                user = "mallory",
                "wrong password"
            );
        }
    })
    .await;
}

async fn server() -> std::net::SocketAddr {
    generate().await;
    serve(
        AdminRouter::new(logs().handle())
            .token(admin_support::TOKEN)
            .build()
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn errors_by_fingerprint_recent_and_total() {
    let addr = server().await;
    let body = get_json(&format!("http://{addr}/admin/logs/errors")).await;
    assert_eq!(body["total"], 4, "{body:#}");
    assert!(is_rfc3339(body["generated_at"].as_str().unwrap()));

    let groups = body["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 2, "{body:#}");
    // Most frequent first.
    let payment = &groups[0];
    assert_eq!(payment["message"], "payment failed");
    assert_eq!(payment["count"], 3);
    assert_eq!(payment["last_minute"], 3);
    assert_eq!(payment["last_hour"], 3);
    assert_eq!(payment["suppressed"], 0);
    assert_eq!(payment["error_type"], "PaymentError");
    assert_eq!(payment["target"], "admin_endpoints");
    let fp = payment["fingerprint"].as_str().unwrap();
    assert_eq!(fp.len(), 16);
    assert!(fp.bytes().all(|b| b.is_ascii_hexdigit()));
    let first = payment["first_seen"].as_str().unwrap();
    let last = payment["last_seen"].as_str().unwrap();
    assert!(is_rfc3339(first) && is_rfc3339(last), "{first} {last}");
    assert!(first <= last);
    // The sample is the first line written, as a JSON object.
    assert_eq!(payment["sample"]["order_id"], 1);
    assert_eq!(payment["sample"]["error_fingerprint"], fp);
    assert_eq!(payment["sample"]["error"]["message"], "card declined");
    let other = &groups[1];
    assert_eq!(other["message"], "database unreachable");
    assert_eq!(other["error_type"], Value::Null);

    // Newest first.
    let recent = body["recent"].as_array().unwrap();
    assert_eq!(recent.len(), 4);
    assert_eq!(recent[0]["message"], "database unreachable");
    assert_eq!(recent[1]["order_id"], 3);
    assert_eq!(recent[3]["order_id"], 1);
}

#[tokio::test]
async fn list_answers_are_paginated_and_bounded() {
    let addr = server().await;
    let body = get_json(&format!("http://{addr}/admin/logs/errors?limit=1")).await;
    assert_eq!(body["groups"].as_array().unwrap().len(), 1, "{body:#}");
    assert_eq!(body["groups"][0]["message"], "payment failed");
    assert_eq!(body["page"]["limit"], 1);
    assert_eq!(body["page"]["total"], 2);
    assert_eq!(body["page"]["next"], 1);
    assert_eq!(body["folded"], 0);
    let next = get_json(&format!("http://{addr}/admin/logs/errors?offset=1&limit=1")).await;
    assert_eq!(
        next["groups"][0]["message"], "database unreachable",
        "{next:#}"
    );
    assert_eq!(next["page"]["next"], Value::Null);
    // A limit past the largest page is the largest page; an offset past the end, an empty one.
    let all = get_json(&format!("http://{addr}/admin/logs/security?limit=100000")).await;
    assert_eq!(all["page"]["limit"], 1000, "{all:#}");
    let none = get_json(&format!(
        "http://{addr}/admin/logs/performance?offset=99999"
    ))
    .await;
    assert_eq!(none["operations"].as_array().unwrap().len(), 0, "{none:#}");
    assert_eq!(none["page"]["limit"], 100);
    // A limit that is not a number is a 400 that says why.
    let resp = reqwest::Client::new()
        .get(format!("http://{addr}/admin/logs/errors?limit=lots"))
        .bearer_auth(admin_support::TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("limit"));
}

#[tokio::test]
async fn performance_aggregates_and_slow_requests() {
    let addr = server().await;
    let body = get_json(&format!("http://{addr}/admin/logs/performance")).await;
    assert!(is_rfc3339(body["generated_at"].as_str().unwrap()));
    let ops = body["operations"].as_array().unwrap();
    let op = |name: &str| {
        ops.iter()
            .find(|o| o["operation"] == name)
            .unwrap_or_else(|| panic!("no {name} in {body:#}"))
    };
    let checkout = op("slow_checkout");
    assert_eq!(checkout["count"], 1);
    assert_eq!(checkout["slow"], 1);
    assert_eq!(checkout["threshold_ms"], 30.0);
    for key in ["min_ms", "max_ms", "mean_ms", "p50_ms", "p90_ms", "p99_ms"] {
        let v = checkout[key].as_f64().unwrap();
        assert!((40.0..10_000.0).contains(&v), "{key} = {v}");
    }
    // A percentile lies between the shortest and the longest (the histogram's buckets are
    // wider than one value).
    let (min, max) = (
        checkout["min_ms"].as_f64().unwrap(),
        checkout["max_ms"].as_f64().unwrap(),
    );
    for key in ["p50_ms", "p90_ms", "p99_ms"] {
        let v = checkout[key].as_f64().unwrap();
        assert!(
            (min..=max).contains(&v),
            "{key} = {v}, min {min}, max {max}"
        );
    }
    let request = op("request");
    assert_eq!(request["count"], 1);
    assert_eq!(op(ODD_OPERATION)["slow"], 0);

    // The slow ones, newest first, with the request they belonged to and their fields.
    let slow = body["slow_requests"].as_array().unwrap();
    assert!(!slow.is_empty());
    let s = slow
        .iter()
        .find(|s| s["operation"] == "slow_checkout")
        .unwrap_or_else(|| panic!("{body:#}"));
    assert_eq!(s["request_id"], "req-admin-1");
    assert_eq!(s["fields"]["order_id"], 7);
    assert!(s["duration_ms"].as_f64().unwrap() >= 40.0);
    assert!(s["busy_ms"].as_f64().unwrap() < s["duration_ms"].as_f64().unwrap());
    assert!(is_rfc3339(s["at"].as_str().unwrap()));
    let times: Vec<&str> = slow.iter().map(|s| s["at"].as_str().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");
}

#[tokio::test]
async fn security_counts_and_recent_events() {
    let addr = server().await;
    let body = get_json(&format!("http://{addr}/admin/logs/security")).await;
    assert!(is_rfc3339(body["generated_at"].as_str().unwrap()));
    let counts: HashMap<String, u64> = body["counts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["event"].as_str().unwrap().to_owned(),
                c["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(counts["login_failed"], 2, "{body:#}");
    // This very request was logged before it was answered.
    assert!(counts["admin_access"] >= 1, "{body:#}");
    assert_eq!(
        body["total"].as_u64().unwrap(),
        counts.values().sum::<u64>()
    );
    let recent = body["recent"].as_array().unwrap();
    let access = recent
        .iter()
        .find(|e| e["event"] == "admin_access" && e["line"]["path"] == "/admin/logs/security")
        .unwrap_or_else(|| panic!("{body:#}"));
    assert_eq!(access["line"]["severity"], "low");
    assert_eq!(access["line"]["client_ip"], "127.0.0.1");
    // Newest first: the login failures were logged before any access.
    let position = |event: &str| recent.iter().position(|e| e["event"] == event).unwrap();
    assert!(position("admin_access") < position("login_failed"));
    let login = recent
        .iter()
        .find(|e| e["event"] == "login_failed")
        .unwrap();
    assert_eq!(login["line"]["user"], "mallory");
    assert_eq!(login["line"]["severity"], "medium");
    assert!(login["line"]["timestamp"].is_string());
}

fn family<'a>(families: &'a [Value], name: &str) -> &'a Value {
    families
        .iter()
        .find(|f| f["name"] == name)
        .unwrap_or_else(|| panic!("no family {name}"))
}

fn samples<'a>(f: &'a Value, name: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    f["samples"]
        .as_array()
        .unwrap()
        .iter()
        .filter(move |s| s["name"] == name)
}

fn value_where(f: &Value, name: &str, key: &str, label: &str) -> f64 {
    samples(f, name)
        .find(|s| s["labels"][key] == label)
        .unwrap_or_else(|| panic!("no {name}{{{key}={label:?}}}"))["value"]
        .as_f64()
        .unwrap()
}

#[tokio::test]
async fn metrics_in_the_prometheus_text_format() {
    let addr = server().await;
    let resp = reqwest::Client::new()
        .get(format!("http://{addr}/metrics"))
        .bearer_auth(admin_support::TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"],
        tracelight::admin::METRICS_CONTENT_TYPE
    );
    let text = resp.text().await.unwrap();
    let families = parse_prometheus(&text);

    // Every family has help and a type, and every sample name belongs to its family.
    for f in &families {
        let name = f["name"].as_str().unwrap();
        assert!(name.starts_with("tracelight_"), "{name}");
        assert!(!f["help"].as_str().unwrap().is_empty(), "{name}");
        assert_ne!(f["type"], "unknown", "{name}");
        for s in f["samples"].as_array().unwrap() {
            assert!(s["name"].as_str().unwrap().starts_with(name), "{s}");
        }
    }
    // Every HELP and TYPE line appears once.
    let mut seen = std::collections::HashSet::new();
    for l in text.lines().filter(|l| l.starts_with('#')) {
        assert!(seen.insert(l.to_owned()), "twice: {l}");
    }

    // The service, named as the lines name it.
    let info = family(&families, "tracelight_info");
    assert_eq!(
        value_where(info, "tracelight_info", "service", "admin-test"),
        1.0
    );

    let events = family(&families, "tracelight_events");
    assert_eq!(events["type"], "counter");
    assert!(value_where(events, "tracelight_events_total", "level", "error") >= 4.0);
    assert!(value_where(events, "tracelight_events_total", "level", "warn") >= 2.0);
    let levels: Vec<&str> = samples(events, "tracelight_events_total")
        .map(|s| s["labels"]["level"].as_str().unwrap())
        .collect();
    assert_eq!(levels, ["trace", "debug", "info", "warn", "error"]);

    let lines = family(&families, "tracelight_stream_lines");
    assert!(value_where(lines, "tracelight_stream_lines_total", "stream", "app") >= 8.0);
    assert!(value_where(lines, "tracelight_stream_lines_total", "stream", "security") >= 2.0);
    for name in [
        "tracelight_stream_bytes",
        "tracelight_stream_dropped",
        "tracelight_stream_write_errors",
        "tracelight_stream_lost_lines",
        "tracelight_stream_rotations",
    ] {
        let f = family(&families, name);
        assert_eq!(f["type"], "counter", "{name}");
        assert_eq!(samples(f, &format!("{name}_total")).count(), 2, "{name}");
    }
    assert_eq!(
        value_where(
            family(&families, "tracelight_stream_dropped"),
            "tracelight_stream_dropped_total",
            "stream",
            "app"
        ),
        0.0
    );

    let errors = family(&families, "tracelight_errors");
    assert_eq!(
        samples(errors, "tracelight_errors_total").next().unwrap()["value"],
        4.0
    );
    let by_fp = family(&families, "tracelight_error_fingerprint_events");
    let payment = samples(by_fp, "tracelight_error_fingerprint_events_total")
        .find(|s| s["labels"]["error_type"] == "PaymentError")
        .unwrap();
    assert_eq!(payment["value"], 3.0);
    assert_eq!(payment["labels"]["target"], "admin_endpoints");
    assert_eq!(payment["labels"]["fingerprint"].as_str().unwrap().len(), 16);
    assert_eq!(
        family(
            &families,
            "tracelight_error_fingerprint_last_seen_timestamp_seconds"
        )["type"],
        "gauge"
    );

    let security = family(&families, "tracelight_security_events");
    assert_eq!(
        value_where(
            security,
            "tracelight_security_events_total",
            "event",
            "login_failed"
        ),
        2.0
    );

    // The histogram: cumulative buckets in increasing `le`, `+Inf` equal to `_count`.
    let hist = family(&families, "tracelight_span_duration_seconds");
    assert_eq!(hist["type"], "histogram");
    let mut operations: Vec<String> = samples(hist, "tracelight_span_duration_seconds_count")
        .map(|s| s["labels"]["operation"].as_str().unwrap().to_owned())
        .collect();
    operations.sort();
    assert!(
        operations.contains(&"slow_checkout".to_owned()),
        "{operations:?}"
    );
    // A label value with quotes, a backslash and a newline reads back as it was.
    assert!(
        operations.contains(&ODD_OPERATION.to_owned()),
        "{operations:?}"
    );
    for op in &operations {
        let buckets: Vec<(f64, f64)> = samples(hist, "tracelight_span_duration_seconds_bucket")
            .filter(|s| s["labels"]["operation"] == op.as_str())
            .map(|s| {
                let le = match s["labels"]["le"].as_str().unwrap() {
                    "+Inf" => f64::INFINITY,
                    le => le.parse().unwrap(),
                };
                (le, s["value"].as_f64().unwrap())
            })
            .collect();
        assert_eq!(buckets.len(), tracelight::timing::BUCKETS.len() + 1, "{op}");
        assert!(
            buckets.windows(2).all(|w| w[0].0 < w[1].0),
            "{op}: {buckets:?}"
        );
        assert!(
            buckets.windows(2).all(|w| w[0].1 <= w[1].1),
            "{op}: {buckets:?}"
        );
        let count = value_where(
            hist,
            "tracelight_span_duration_seconds_count",
            "operation",
            op,
        );
        assert_eq!(buckets.last().unwrap(), &(f64::INFINITY, count), "{op}");
        let sum = value_where(
            hist,
            "tracelight_span_duration_seconds_sum",
            "operation",
            op,
        );
        assert!(sum >= 0.0);
        if op == "slow_checkout" {
            assert_eq!(count, 1.0);
            assert!((0.04..10.0).contains(&sum), "{sum}");
            // 40 ms and more: not in the buckets up to 25 ms, in those from 50 ms on (or later).
            let at = |le: f64| buckets.iter().find(|b| b.0 == le).unwrap().1;
            assert_eq!(at(0.025), 0.0);
            assert_eq!(at(60.0), 1.0);
        }
    }
    let slow = family(&families, "tracelight_slow_spans");
    assert_eq!(
        value_where(
            slow,
            "tracelight_slow_spans_total",
            "operation",
            "slow_checkout"
        ),
        1.0
    );
    let threshold = family(&families, "tracelight_slow_threshold_seconds");
    assert_eq!(
        value_where(
            threshold,
            "tracelight_slow_threshold_seconds",
            "operation",
            "slow_checkout"
        ),
        0.03
    );

    for name in ["tracelight_sampled_out", "tracelight_rate_limited"] {
        let f = family(&families, name);
        assert_eq!(
            samples(f, &format!("{name}_total")).next().unwrap()["value"],
            0.0
        );
    }
}

#[tokio::test]
async fn metrics_ask_for_the_token_too() {
    let addr = server().await;
    let resp = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let (status, body) = get_with_token(&format!("http://{addr}/metrics")).await;
    assert_eq!(status, 200);
    assert!(body.contains("# TYPE tracelight_events_total counter"));
}
