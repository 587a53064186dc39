//! Bad incoming request ids, sent to a real server: each is replaced by a generated UUID v7, the
//! response carries the generated id, a security event says why, and the bad value never reaches
//! a line.
#![cfg(all(feature = "http", feature = "axum"))]
#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

mod http_support;

use std::net::SocketAddr;

use axum::routing::get;
use axum::{Extension, Router};
use http::HeaderValue;
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tracelight::http::{RequestId, RequestLayer};
use tracing::info;

use http_support::{access, is_uuid_v7, logs, serve, with_id};

async fn handler(Extension(id): Extension<RequestId>) -> String {
    info!("handler ran");
    id.to_string()
}

async fn server(layer: RequestLayer) -> SocketAddr {
    let _ = logs();
    serve(
        Router::new()
            .route("/case/{name}", get(handler))
            .layer(layer),
    )
    .await
}

/// Sends `value` as `X-Request-ID`; returns the lines of that request and the id it got.
async fn send_bad(addr: SocketAddr, case: &str, value: HeaderValue) -> (String, Vec<Value>) {
    let resp = reqwest::Client::new()
        .get(format!("http://{addr}/case/{case}"))
        .header("x-request-id", value)
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);
    let id = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(is_uuid_v7(&id), "not a generated id: {id}");
    // The handler saw the same id in the extensions.
    assert_eq!(resp.text().await.unwrap(), id);
    let lines = logs()
        .wait_for("the access line", |l| {
            access(l).iter().any(|a| a["request_id"] == id.as_str())
        })
        .await;
    let mine = with_id(&lines, &id).into_iter().cloned().collect();
    (id, mine)
}

fn check_rejected(lines: &[Value], reason: &str, length: u64) {
    let security: Vec<&Value> = lines
        .iter()
        .filter(|l| l["target"] == "tracelight::security")
        .collect();
    assert_eq!(security.len(), 1, "{lines:#?}");
    let s = security[0];
    assert_eq!(s["level"], "WARN");
    assert_eq!(s["stream"], "security");
    assert_eq!(s["event"], "request_id_rejected");
    assert_eq!(s["severity"], "medium");
    assert_eq!(s["reason"], reason);
    assert_eq!(s["header"], "x-request-id");
    assert_eq!(s["length"], length);
    assert!(s["prefix"].as_str().unwrap().len() <= 16);
    assert!(lines.iter().any(|l| l["message"] == "handler ran"));
    assert_eq!(access(lines).len(), 1);
}

#[tokio::test]
async fn ten_kilobytes() {
    let addr = server(RequestLayer::new()).await;
    let value = format!("0123456789abcdef{}", "LONG-PAYLOAD-".repeat(800));
    let (_, lines) = send_bad(addr, "long", HeaderValue::from_str(&value).unwrap()).await;
    check_rejected(&lines, "too_long", value.len() as u64);
    assert!(!logs().text().contains("LONG-PAYLOAD"));
    assert!(logs().text().lines().all(|l| l.len() < 4096));
}

#[tokio::test]
async fn non_ascii() {
    let addr = server(RequestLayer::new()).await;
    let value = "réq-ÜBER-1";
    let (_, lines) = send_bad(
        addr,
        "non-ascii",
        HeaderValue::from_bytes(value.as_bytes()).unwrap(),
    )
    .await;
    check_rejected(&lines, "invalid_character", value.len() as u64);
    let text = logs().text();
    assert!(!text.contains(value) && !text.contains('é') && !text.contains("\\u00e9"));
}

#[tokio::test]
async fn not_utf8() {
    let addr = server(RequestLayer::new()).await;
    let (_, lines) = send_bad(
        addr,
        "not-utf8",
        HeaderValue::from_bytes(b"id-\xff\xfe-BINARY-BEYOND-THE-PREFIX").unwrap(),
    )
    .await;
    check_rejected(&lines, "not_utf8", 30);
    let text = logs().text();
    // At most a sanitized 16-byte prefix is shown (`id-??-BINARY-BEY`).
    assert!(!text.contains("BEYOND-THE-PREFIX") && !text.contains('\u{fffd}'));
}

#[tokio::test]
async fn empty() {
    let addr = server(RequestLayer::new()).await;
    let (_, lines) = send_bad(addr, "empty", HeaderValue::from_static("")).await;
    check_rejected(&lines, "empty", 0);
}

#[tokio::test]
async fn control_character_and_space() {
    let addr = server(RequestLayer::new()).await;
    let tab = "tab\tTABBED-BEYOND-THE-PREFIX";
    let (_, lines) = send_bad(addr, "tab", HeaderValue::from_static(tab)).await;
    check_rejected(&lines, "invalid_character", tab.len() as u64);
    let (_, lines) = send_bad(addr, "space", HeaderValue::from_static("a SPACED id")).await;
    check_rejected(&lines, "invalid_character", 11);
    let text = logs().text();
    assert!(!text.contains("BEYOND-THE-PREFIX") && !text.contains("tab\\t"));
    assert!(!text.contains("a SPACED id"));
}

/// Newlines, carriage returns and NUL cannot be sent with reqwest (a `HeaderValue` refuses
/// them), so these go as raw bytes. The HTTP parser refuses them before any service runs: the
/// request never reaches the layer, and nothing of it reaches the logs. (The layer's own check
/// of such bytes is covered by `RequestId::from_bytes` tests.)
#[tokio::test]
async fn newline_and_friends_as_raw_bytes() {
    let addr = server(RequestLayer::new()).await;
    let cases: [&[u8]; 4] = [
        b"X-Request-ID: fold-1\r\n INJECTED-FOLD: 1\r\n",
        b"X-Request-ID: cr-1\rINJECTED-CR: 1\r\n",
        b"X-Request-ID: nul-1\0INJECTED-NUL\r\n",
        b"X-Request-ID: lf-1\nINJECTED-LF\r\n",
    ];
    for header in cases {
        let mut raw = b"GET /case/raw HTTP/1.1\r\nHost: localhost\r\n".to_vec();
        raw.extend_from_slice(header);
        raw.extend_from_slice(b"Connection: close\r\n\r\n");
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.write_all(&raw).await.unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.unwrap();
        let response = String::from_utf8_lossy(&response);
        let status_line = response.lines().next().unwrap_or_default();
        assert_eq!(
            status_line,
            "HTTP/1.1 400 Bad Request",
            "{}",
            String::from_utf8_lossy(header)
        );
    }
    // A request that did reach the service, to know the logs are caught up.
    let (_, _) = send_bad(addr, "after-raw", HeaderValue::from_static("")).await;
    assert!(!logs().text().contains("INJECTED"));
}

#[tokio::test]
async fn valid_ids_are_kept_and_other_header_names_work() {
    let addr =
        server(RequestLayer::new().header(http::HeaderName::from_static("x-correlation-id"))).await;
    let resp = reqwest::Client::new()
        .get(format!("http://{addr}/case/custom"))
        .header("x-correlation-id", "Corr_1.2:3-x")
        .header("x-request-id", "ignored-here")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-correlation-id"], "Corr_1.2:3-x");
    assert!(resp.headers().get("x-request-id").is_none());
    let lines = logs()
        .wait_for("the access line", |l| {
            access(l).iter().any(|a| a["request_id"] == "Corr_1.2:3-x")
        })
        .await;
    let mine = with_id(&lines, "Corr_1.2:3-x");
    assert!(mine.iter().all(|l| l["target"] != "tracelight::security"));
    assert!(mine.iter().any(|l| l["message"] == "handler ran"));
}

#[tokio::test]
async fn an_edge_can_refuse_every_incoming_id() {
    let addr = server(RequestLayer::new().accept_incoming(false)).await;
    let resp = reqwest::Client::new()
        .get(format!("http://{addr}/case/edge"))
        .header("x-request-id", "client-chosen-1")
        .send()
        .await
        .unwrap();
    let id = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(is_uuid_v7(&id));
    let lines = logs()
        .wait_for("the access line", |l| {
            access(l).iter().any(|a| a["request_id"] == id.as_str())
        })
        .await;
    assert!(with_id(&lines, &id)
        .iter()
        .all(|l| l["target"] != "tracelight::security"));
    assert!(with_id(&lines, "client-chosen-1").is_empty());
}

/// A client that sends a malformed id on every request gets ten events a minute written; the
/// rest are counted (and said with its next event after the minute), and every request is served.
#[tokio::test]
async fn repeated_rejections_from_one_client_are_limited() {
    let addr = server(RequestLayer::new()).await;
    let mut ids = Vec::new();
    for _ in 0..30 {
        let resp = reqwest::Client::new()
            .get(format!("http://{addr}/case/flood"))
            .header("x-request-id", "bad id with spaces")
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status(), 200);
        ids.push(resp.headers()["x-request-id"].to_str().unwrap().to_owned());
    }
    let last = ids.last().unwrap().clone();
    let lines = logs()
        .wait_for("the last access line", |l| {
            access(l).iter().any(|a| a["request_id"] == last.as_str())
        })
        .await;
    let rejected = lines
        .iter()
        .filter(|l| {
            l["event"] == "request_id_rejected"
                && ids.iter().any(|id| l["request_id"] == id.as_str())
        })
        .count();
    assert_eq!(rejected, 10, "{rejected} events for 30 rejected ids");
    let served = ids
        .iter()
        .filter(|id| {
            access(&lines)
                .iter()
                .any(|a| a["request_id"] == id.as_str())
        })
        .count();
    assert_eq!(served, 30);
}
