//! A real axum service whose lines are in a schema preset (Datadog's, where the level's key is
//! `status`, a name the access line uses too): the access line, the request id on every line
//! of the request, and the flight recorder's replayed lines, read back by the `tracelight`
//! command's rules as the default schema's.
#![cfg(all(feature = "http", feature = "axum"))]
#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

mod http_support;

use std::time::Duration;

use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use serde_json::Value;
use tracelight::http::RequestLayer;
use tracelight::sink::MemoryWriter;
use tracelight::{FlightRecorder, Format, Schema};
use tracing::{debug, info};

use http_support::serve;

fn parsed(lines: &MemoryWriter) -> Vec<Value> {
    lines
        .lines()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("invalid JSON {e}: {l}")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_in_the_datadog_preset() {
    let lines = MemoryWriter::new();
    let _guard = tracelight::builder()
        .service("shop")
        .env("production")
        .schema(Schema::Datadog)
        .filter("info")
        .format(Format::Json)
        .flight_recorder(FlightRecorder::new())
        .writer(lines.clone())
        .init()
        .expect("init");
    let router = Router::new()
        .route(
            "/orders/{id}",
            get(|| async {
                debug!(order_id = 7, "looking up the order");
                info!(items = 3, "order found");
                "ok"
            }),
        )
        .route(
            "/pay",
            get(|| async {
                debug!(card = "visa", "calling the gateway");
                (StatusCode::BAD_GATEWAY, "gateway down")
            }),
        )
        .layer(RequestLayer::new());
    let addr = serve(router).await;
    let client = reqwest::Client::new();
    let ok = client
        .get(format!("http://{addr}/orders/17"))
        .header("x-request-id", "req-ok")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let failed = client
        .get(format!("http://{addr}/pay"))
        .header("x-request-id", "req-fail")
        .send()
        .await
        .unwrap();
    assert_eq!(failed.status(), 502);

    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let all = loop {
        let all = parsed(&lines);
        let accesses = all
            .iter()
            .filter(|l| l["logger.name"] == "tracelight::access")
            .count();
        if accesses == 2 {
            break all;
        }
        assert!(tokio::time::Instant::now() < deadline, "{all:#?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    for l in &all {
        assert!(l.get("level").is_none() && l.get("target").is_none(), "{l}");
        assert!(
            l["timestamp"].as_str().is_some_and(|t| t.len() == 27),
            "{l}"
        );
        assert_eq!(l["service"], "shop");
    }
    let of = |id: &str| -> Vec<&Value> { all.iter().filter(|l| l["request_id"] == id).collect() };
    let ok_lines = of("req-ok");
    assert_eq!(
        ok_lines.len(),
        2,
        "order found and the access line: {ok_lines:#?}"
    );
    let found = ok_lines
        .iter()
        .find(|l| l["message"] == "order found")
        .unwrap();
    assert_eq!(found["status"], "info");
    assert_eq!(found["items"], 3);
    let access = ok_lines.last().unwrap();
    // The access line's HTTP status keeps its value under `fields.status`: `status` is the level.
    assert_eq!(access["status"], "info", "{access}");
    assert_eq!(access["fields.status"], 200, "{access}");
    assert_eq!(access["route"], "/orders/{id}", "{access}");

    let fail_lines = of("req-fail");
    let replayed: Vec<_> = fail_lines
        .iter()
        .filter(|l| l["replayed"] == true)
        .collect();
    assert_eq!(replayed.len(), 1, "{fail_lines:#?}");
    assert_eq!(replayed[0]["status"], "debug");
    assert_eq!(replayed[0]["message"], "calling the gateway");
    let access = fail_lines.last().unwrap();
    assert_eq!(access["fields.status"], 502, "{access}");
    // A 5xx access line is a WARN (docs/streams.md), `warn` in Datadog's statuses.
    assert_eq!(access["status"], "warn", "{access}");
}
