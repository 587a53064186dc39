//! Changing the log level live through the admin endpoint, on a real server: the filter in force,
//! a change for a time that reverts by itself, a refused filter that says why, the security event.
#![cfg(feature = "admin")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod admin_support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tracelight::sink::MemoryWriter;
use tracing_subscriber::layer::SubscriberExt as _;

const TOKEN: &str = "level-test-token-0123456789abcdef";

async fn start() -> (SocketAddr, MemoryWriter, tracelight::Guard) {
    let lines = MemoryWriter::new();
    let (layer, guard) = tracelight::builder()
        .service("level-test")
        .format(tracelight::Format::Json)
        .stream(tracelight::Stream::new(
            "app",
            tracelight::Output::Writer(Arc::new(lines.clone())),
        ))
        .build()
        .unwrap();
    let subscriber = tracing_subscriber::registry()
        .with(layer.filter())
        .with(layer);
    tracing::subscriber::set_global_default(subscriber).unwrap();
    let router = tracelight::admin::AdminRouter::new(guard.handle())
        .token(TOKEN)
        .build()
        .unwrap();
    let addr = admin_support::serve(router).await;
    (addr, lines, guard)
}

async fn level(addr: SocketAddr) -> Value {
    reqwest::Client::new()
        .get(format!("http://{addr}/admin/logs/log-level"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .map(|t| serde_json::from_str(&t).unwrap())
        .unwrap()
}

async fn put(addr: SocketAddr, body: &str) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .put(format!("http://{addr}/admin/logs/log-level"))
        .bearer_auth(TOKEN)
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn count(lines: &MemoryWriter, message: &str) -> usize {
    lines
        .lines()
        .iter()
        .filter(|l| l.contains(&format!("\"message\":\"{message}\"")))
        .count()
}

#[tokio::test]
async fn the_level_changes_live_for_a_time_and_comes_back() {
    let (addr, lines, guard) = start().await;
    let state = level(addr).await;
    assert_eq!(state["filter"], "info", "{state}");
    assert_eq!(state["initial"], "info");
    assert_eq!(state["reverts_at"], Value::Null);

    tracing::debug!("debug before");
    // Debug for one second.
    let (status, state) = put(addr, r#"{"filter": "debug", "for": "1s"}"#).await;
    assert_eq!(status, 200, "{state}");
    assert_eq!(state["filter"], "debug");
    assert_eq!(state["reverts_to"], "info");
    assert!(state["reverts_at"].is_string());
    tracing::debug!("debug during");
    // It comes back by itself.
    let deadline = Instant::now() + Duration::from_secs(10);
    while level(addr).await["filter"] != "info" {
        assert!(Instant::now() < deadline, "the change did not revert");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tracing::debug!("debug after");
    guard.flush();
    assert_eq!(count(&lines, "debug before"), 0);
    assert_eq!(count(&lines, "debug during"), 1);
    assert_eq!(count(&lines, "debug after"), 0);

    // A filter that cannot be used is refused with the reason, and nothing changes.
    let (status, body) = put(addr, r#"{"filter": "info,my_crate=loud"}"#).await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("loud"), "{body}");
    let (status, body) = put(addr, r#"{"filter": "debug", "for": "forever"}"#).await;
    assert_eq!(status, 400);
    assert!(
        body["error"].as_str().unwrap().contains("forever"),
        "{body}"
    );
    let (status, _) = put(addr, "not json").await;
    assert_eq!(status, 400);
    assert_eq!(level(addr).await["filter"], "info");

    // A change for good, then back to the start.
    let (status, state) = put(addr, r#"{"filter": "warn"}"#).await;
    assert_eq!((status, &state["filter"]), (200, &Value::from("warn")));
    let (status, state) = put(addr, r#"{"reset": true}"#).await;
    assert_eq!((status, &state["filter"]), (200, &Value::from("info")));

    // Every change is a security event, with who and what.
    guard.flush();
    let changes: Vec<Value> = lines
        .lines()
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|l| l["event"] == "log_level_changed")
        .collect();
    assert_eq!(changes.len(), 3, "{changes:#?}");
    assert_eq!(changes[0]["from"], "info");
    assert_eq!(changes[0]["to"], "debug");
    assert_eq!(changes[0]["for_s"], 1);
    assert_eq!(changes[0]["client_ip"], "127.0.0.1");
    assert_eq!(changes[2]["to"], "info");
    // Without the token, no change.
    let resp = reqwest::Client::new()
        .put(format!("http://{addr}/admin/logs/log-level"))
        .body(r#"{"filter": "trace"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(level(addr).await["filter"], "info");
}
