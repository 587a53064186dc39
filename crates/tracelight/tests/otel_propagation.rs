//! One trace across services: the server middleware continues the caller's W3C `traceparent`,
//! and the client side (reqwest's `.propagate()`, the tower `PropagateLayer`) sends it on. Checked
//! at a real collector and in the JSON lines.
#![cfg(feature = "otel")]
#![cfg(all(feature = "http", feature = "reqwest", feature = "axum"))]
#![allow(clippy::unwrap_used)]

mod otel_support;

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::routing::get;
use axum::Router;
use http_body_util::{BodyExt as _, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use otel_support::{Item, Rotel};
use tower::{Layer as _, Service as _, ServiceExt as _};
use tracelight::http::{PropagateLayer, RequestBuilderExt as _, RequestLayer};
use tracelight::otel::{BatchConfig, OtelConfig, Protocol};
use tracing::{info, instrument};

async fn b_stock(Path(sku): Path<String>) -> String {
    info!(sku = %sku, "service B: reading stock {sku}");
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

async fn a_order(State(s): State<AState>) -> String {
    info!("service A: order received");
    s.client
        .get(format!("http://{}/stock/reqwest", s.b))
        .propagate()
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn a_order_hyper(State(s): State<AState>) -> String {
    info!("service A (hyper client): order received");
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<bytes::Bytes>>();
    let mut client = PropagateLayer::new().layer(client);
    let req = http::Request::get(format!("http://{}/stock/hyper", s.b))
        .body(Empty::new())
        .unwrap();
    let resp = client.ready().await.unwrap().call(req).await.unwrap();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8_lossy(&body).into_owned()
}

async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

fn request_span<'a>(spans: &'a [Item], path: &str) -> &'a Item {
    spans
        .iter()
        .find(|s| s.attr("path") == Some(&*format!("Str({path})")))
        .unwrap_or_else(|| panic!("no request span for {path} in {spans:#?}"))
}

#[tokio::test(flavor = "current_thread")]
async fn one_trace_from_the_caller_through_a_to_b() {
    let rotel = Rotel::start();
    let lines = tracelight::sink::MemoryWriter::new();
    let fast = BatchConfig::default().scheduled_delay(Duration::from_millis(50));
    let guard = tracelight::builder()
        .service("shop")
        .format(tracelight::Format::Json)
        .writer(lines.clone())
        .otel(
            OtelConfig::new()
                .endpoint(rotel.grpc_url())
                .protocol(Protocol::Grpc)
                .traces_batch(fast)
                .logs_batch(fast),
        )
        .init_local()
        .unwrap();

    let b = serve(
        Router::new()
            .route("/stock/{sku}", get(b_stock))
            .layer(RequestLayer::new()),
    )
    .await;
    let a = serve(
        Router::new()
            .route("/order", get(a_order))
            .route("/order-hyper", get(a_order_hyper))
            .layer(RequestLayer::new())
            .with_state(AState {
                b,
                client: reqwest::Client::new(),
            }),
    )
    .await;
    let client = reqwest::Client::new();

    // A caller that is itself traced: its trace continues through A and B.
    let caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let body = client
        .get(format!("http://{a}/order"))
        .header("traceparent", format!("00-{caller_trace}-{caller_span}-01"))
        .header("tracestate", "vendor=abc")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body, "reqwest:7");
    // A caller without a trace: A starts one, B continues it (tower client this time).
    let body = client
        .get(format!("http://{a}/order-hyper"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body, "hyper:7");

    // Let the request spans close (access lines are written when the bodies finish).
    tokio::time::sleep(Duration::from_millis(20)).await;
    guard.shutdown();
    rotel.wait_log("service B: reading stock hyper");
    let spans = otel_support::wait_until(
        Duration::from_secs(30),
        "four request spans and two lookups",
        || {
            let s = rotel.spans();
            (s.iter().filter(|s| s.attr("request_id").is_some()).count() >= 4
                && s.iter().filter(|s| s.name() == "lookup").count() >= 2)
                .then_some(s)
        },
        || rotel.output(),
    );

    // reqwest: caller -> A -> B, one trace.
    let a_req = request_span(&spans, "/order");
    let b_req = request_span(&spans, "/stock/reqwest");
    // Server spans are named `{method} {route}` and are of kind SERVER.
    assert_eq!(a_req.name(), "GET /order", "{}", a_req.text);
    assert!(a_req.text.contains("SPAN_KIND_SERVER"), "{}", a_req.text);
    assert_eq!(a_req.trace_id(), caller_trace, "{}", a_req.text);
    assert_eq!(a_req.parent_id(), caller_span, "{}", a_req.text);
    assert_eq!(b_req.trace_id(), caller_trace, "{}", b_req.text);
    assert_eq!(b_req.parent_id(), a_req.span_id(), "{}", b_req.text);
    let lookup_r = spans
        .iter()
        .find(|s| s.name() == "lookup" && s.attr("sku") == Some("Str(reqwest)"))
        .unwrap();
    assert_eq!(lookup_r.parent_id(), b_req.span_id());

    // tower client: A -> B, one new trace.
    let a_hyper = request_span(&spans, "/order-hyper");
    let b_hyper = request_span(&spans, "/stock/hyper");
    assert_eq!(a_hyper.trace_id().len(), 32);
    assert_ne!(a_hyper.trace_id(), caller_trace);
    assert_eq!(a_hyper.parent_id(), "", "{}", a_hyper.text);
    assert_eq!(b_hyper.trace_id(), a_hyper.trace_id(), "{}", b_hyper.text);
    assert_eq!(b_hyper.parent_id(), a_hyper.span_id(), "{}", b_hyper.text);

    // The JSON lines of both services carry the trace.
    let json: Vec<serde_json::Value> = lines
        .lines()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let line = |msg: &str| {
        json.iter()
            .find(|v| v["message"] == msg)
            .unwrap_or_else(|| panic!("no line {msg:?}"))
    };
    assert_eq!(line("service A: order received")["trace_id"], caller_trace);
    assert_eq!(
        line("service A: order received")["span_id"],
        a_req.span_id()
    );
    assert_eq!(
        line("service B: reading stock reqwest")["trace_id"],
        caller_trace
    );
    assert_eq!(
        line("service B: reading stock hyper")["trace_id"],
        a_hyper.trace_id()
    );
    // The log records too.
    let log = rotel.wait_log("service B: reading stock reqwest");
    assert_eq!(log.trace_id(), caller_trace);
    assert_eq!(log.span_id(), b_req.span_id());
}

#[tokio::test(flavor = "current_thread")]
async fn no_traceparent_without_a_span_or_when_already_set() {
    let rotel = Rotel::start();
    let _guard = tracelight::builder()
        .writer(tracelight::sink::MemoryWriter::new())
        .otlp_endpoint(rotel.http_url())
        .init_local()
        .unwrap();
    assert!(tracelight::http::headers().get("traceparent").is_none());
    let span = tracing::info_span!("outgoing");
    let _e = span.enter();
    let h = tracelight::http::headers();
    let tp = h.get("traceparent").unwrap().to_str().unwrap().to_owned();
    let parts: Vec<&str> = tp.split('-').collect();
    assert_eq!(parts.len(), 4, "{tp}");
    assert_eq!((parts[0], parts[1].len(), parts[2].len()), ("00", 32, 16));
    let mut set = http::HeaderMap::new();
    set.insert("traceparent", http::HeaderValue::from_static("kept"));
    tracelight::http::inject(&mut set);
    assert_eq!(set["traceparent"], "kept");
}
