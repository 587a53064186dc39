//! Two real services on loopback, A calling B: one request id across both, through reqwest's
//! `.propagate()` and through a hyper client with `PropagateLayer`.
#![cfg(all(feature = "http", feature = "reqwest", feature = "axum"))]
#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

mod http_support;

use std::net::SocketAddr;

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Extension, Router};
use http_body_util::{BodyExt as _, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use tower::{Layer as _, Service as _, ServiceExt as _};
use tracelight::http::{PropagateLayer, RequestBuilderExt as _, RequestId, RequestLayer};
use tracing::{info, instrument};

use http_support::{access, is_uuid_v7, logs, serve};

/// Scenarios share the global subscriber; they run one at a time so that every line written
/// while one runs belongs to it.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn b_stock(Path(sku): Path<String>) -> String {
    info!(sku = %sku, "service B: reading stock");
    lookup(&sku).await
}

#[instrument]
async fn lookup(sku: &str) -> String {
    info!("service B: stock found");
    format!("{sku}:7")
}

#[derive(Clone)]
struct AState {
    b: SocketAddr,
    client: reqwest::Client,
}

async fn a_order(State(s): State<AState>, Extension(id): Extension<RequestId>) -> String {
    info!(request_id_ext = %id, "service A: order received");
    let stock = s
        .client
        .get(format!("http://{}/stock/abc", s.b))
        .propagate()
        .send()
        .await
        .expect("call B")
        .text()
        .await
        .expect("B's body");
    info!(stock = %stock, "service A: order priced");
    stock
}

async fn a_order_hyper(State(s): State<AState>) -> String {
    info!("service A (hyper client): order received");
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<bytes::Bytes>>();
    let mut client = PropagateLayer::new().layer(client);
    let req = http::Request::get(format!("http://{}/stock/xyz", s.b))
        .body(Empty::new())
        .expect("request");
    let resp = client
        .ready()
        .await
        .expect("ready")
        .call(req)
        .await
        .expect("call B");
    let body = resp
        .into_body()
        .collect()
        .await
        .expect("B's body")
        .to_bytes();
    String::from_utf8_lossy(&body).into_owned()
}

async fn start() -> SocketAddr {
    let b = Router::new()
        .route("/stock/{sku}", get(b_stock))
        .layer(RequestLayer::new());
    let b = serve(b).await;
    let a = Router::new()
        .route("/order", get(a_order))
        .route("/order-hyper", get(a_order_hyper))
        .layer(RequestLayer::new())
        .with_state(AState {
            b,
            client: reqwest::Client::new(),
        });
    serve(a).await
}

/// Lines written since `from`, once both access lines are in.
async fn request_lines(from: usize) -> Vec<Value> {
    let lines = logs()
        .wait_for("both access lines", |l| access(&l[from..]).len() >= 2)
        .await;
    lines[from..].to_vec()
}

fn check_one_id(lines: &[Value], id: &str, b_route: &str) {
    assert!(lines.len() >= 5, "too few lines: {lines:#?}");
    for line in lines {
        assert_eq!(
            line["request_id"], id,
            "line without the request's id: {line}"
        );
    }
    let accesses = access(lines);
    assert_eq!(accesses.len(), 2, "{accesses:#?}");
    let b_access = accesses
        .iter()
        .find(|l| l["route"] == b_route)
        .expect("B's access line");
    assert_eq!(b_access["request_id"], id);
    assert_eq!(b_access["status"], 200);
    assert!(lines
        .iter()
        .any(|l| l["message"] == "service B: stock found" && l["span"]["name"] == "lookup"));
}

#[tokio::test]
async fn incoming_id_flows_from_a_to_b_with_reqwest() {
    let _serial = SERIAL.lock().await;
    let from = logs().all().len();
    let a = start().await;
    let resp = reqwest::Client::new()
        .get(format!("http://{a}/order"))
        .header("x-request-id", "order-2026-0001")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-request-id"], "order-2026-0001");
    assert_eq!(resp.text().await.unwrap(), "abc:7");

    let lines = request_lines(from).await;
    check_one_id(&lines, "order-2026-0001", "/stock/{sku}");
    let a_line = lines
        .iter()
        .find(|l| l["message"] == "service A: order received")
        .unwrap();
    assert_eq!(a_line["request_id_ext"], "order-2026-0001");
}

#[tokio::test]
async fn generated_id_flows_from_a_to_b_with_reqwest() {
    let _serial = SERIAL.lock().await;
    let from = logs().all().len();
    let a = start().await;
    let resp = reqwest::Client::new()
        .get(format!("http://{a}/order"))
        .send()
        .await
        .unwrap();
    let id = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(is_uuid_v7(&id), "{id}");
    assert_eq!(resp.text().await.unwrap(), "abc:7");

    let lines = request_lines(from).await;
    check_one_id(&lines, &id, "/stock/{sku}");
}

#[tokio::test]
async fn id_flows_from_a_to_b_with_a_tower_hyper_client() {
    let _serial = SERIAL.lock().await;
    let from = logs().all().len();
    let a = start().await;
    let resp = reqwest::Client::new()
        .get(format!("http://{a}/order-hyper"))
        .header("x-request-id", "hyper-chain-1")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.text().await.unwrap(), "xyz:7");

    let lines = request_lines(from).await;
    check_one_id(&lines, "hyper-chain-1", "/stock/{sku}");
}

#[tokio::test]
async fn no_header_outside_a_request() {
    let _serial = SERIAL.lock().await;
    let _ = logs();
    let b = serve(Router::new().route(
        "/echo",
        axum::routing::any(|headers: http::HeaderMap| async move {
            format!("{:?}", headers.get("x-request-id"))
        }),
    ))
    .await;
    // Not inside a request span: nothing to propagate.
    let body = reqwest::Client::new()
        .get(format!("http://{b}/echo"))
        .propagate()
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body, "None");
    // A header set before `.propagate()` wins.
    let span = tracing::info_span!("request", request_id = "outer-1");
    let body = async {
        reqwest::Client::new()
            .get(format!("http://{b}/echo"))
            .header("x-request-id", "explicit-1")
            .propagate()
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let body = tracing::Instrument::instrument(body, span.clone()).await;
    assert_eq!(body, "Some(\"explicit-1\")");
    let body = async {
        reqwest::Client::new()
            .post(format!("http://{b}/echo"))
            .body("payload")
            .propagate()
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let body = tracing::Instrument::instrument(body, span).await;
    assert_eq!(body, "Some(\"outer-1\")");
}
