//! The access line: one per request, with its fields, on success, error statuses, streamed
//! bodies, client disconnects, HEAD, trusted proxies, and a failing service.
#![cfg(all(feature = "http", feature = "axum"))]
#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

mod http_support;

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;
use http_body::Frame;
use serde_json::Value;
use tokio::sync::mpsc;
use tower::{Layer as _, ServiceExt as _};
use tracelight::http::{IpRange, RequestLayer};
use tracing::info;

use http_support::{access, logs, serve};

/// A body sent in chunks, one per poll; with `then_hang`, it never ends after them.
struct Chunks {
    chunks: VecDeque<Bytes>,
    then_hang: bool,
}

impl http_body::Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.chunks.pop_front() {
            Some(c) => Poll::Ready(Some(Ok(Frame::data(c)))),
            None if self.then_hang => Poll::Pending,
            None => Poll::Ready(None),
        }
    }
}

fn chunks(n: usize, size: usize, then_hang: bool) -> Body {
    Body::new(Chunks {
        chunks: (0..n).map(|_| Bytes::from(vec![b'x'; size])).collect(),
        then_hang,
    })
}

#[derive(Clone)]
struct Started(mpsc::UnboundedSender<()>);

async fn app(layer: RequestLayer) -> (SocketAddr, mpsc::UnboundedReceiver<()>) {
    let _ = logs();
    let (tx, rx) = mpsc::unbounded_channel();
    let router = Router::new()
        .route(
            "/items/{id}",
            get(|| async {
                info!("item read");
                "item body"
            })
            .head(|| async { "item body" }),
        )
        .route(
            "/upload",
            post(|body: Bytes| async move { body.len().to_string() }),
        )
        .route(
            "/fail",
            get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "database unreachable") }),
        )
        .route("/stream", get(|| async { chunks(3, 1000, false) }))
        .route(
            "/hang",
            get(|State(s): State<Started>| async move {
                info!("waiting forever");
                let _ = s.0.send(());
                std::future::pending::<()>().await;
                "never"
            }),
        )
        .route(
            "/hang-body",
            get(|State(s): State<Started>| async move {
                let _ = s.0.send(());
                chunks(1, 100, true)
            }),
        )
        .layer(layer)
        .with_state(Started(tx));
    (serve(router).await, rx)
}

/// Sends a request with the given id and returns its access line.
async fn access_line(id: &str) -> Value {
    let lines = logs()
        .wait_for("the access line", |l| {
            access(l).iter().any(|a| a["request_id"] == id)
        })
        .await;
    let mine: Vec<Value> = access(&lines)
        .into_iter()
        .filter(|a| a["request_id"] == id)
        .cloned()
        .collect();
    assert_eq!(mine.len(), 1, "one access line per request: {mine:#?}");
    mine.into_iter().next().unwrap_or_default()
}

/// An incoming id of sixteen digits that passes the Luhn check with a card issuer's prefix is
/// accepted, answered, and written unmasked: an id is never taken for a card.
#[tokio::test]
async fn a_card_shaped_request_id_is_kept() {
    let (addr, _) = app(RequestLayer::new()).await;
    let resp = get_req(addr, "/items/1", "4111111111111111")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-request-id"], "4111111111111111");
    let a = access_line("4111111111111111").await;
    assert_eq!(a["span"]["request_id"], "4111111111111111", "{a}");
}

fn get_req(addr: SocketAddr, path: &str, id: &str) -> reqwest::RequestBuilder {
    reqwest::Client::new()
        .get(format!("http://{addr}{path}"))
        .header("x-request-id", id)
}

#[tokio::test]
async fn success_has_every_field() {
    let (addr, _) = app(RequestLayer::new()).await;
    let resp = get_req(addr, "/items/42?token=secret", "acc-ok")
        .header("user-agent", "checkout/2.1 (+ops@example.com)")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.text().await.unwrap(), "item body");
    let a = access_line("acc-ok").await;
    assert_eq!(a["level"], "INFO");
    assert_eq!(a["target"], "tracelight::access");
    assert_eq!(a["stream"], "access");
    assert_eq!(a["message"], "request completed");
    assert_eq!(a["method"], "GET");
    assert_eq!(a["path"], "/items/42"); // the query string stays out
    assert_eq!(a["route"], "/items/{id}");
    assert_eq!(a["status"], 200);
    assert!(a["duration_ms"].is_f64(), "{a}");
    assert!(a["duration_ms"].as_f64().unwrap() >= 0.0);
    assert_eq!(a["request_bytes"], 0);
    assert_eq!(a["response_bytes"], 9);
    assert_eq!(a["client_ip"], "127.0.0.1");
    assert_eq!(a["user_agent"], "checkout/2.1 (+ops@example.com)");
    assert!(a.get("cancelled").is_none());
    assert!(!logs().text().contains("secret"));
}

#[tokio::test]
async fn request_bytes_from_content_length() {
    let (addr, _) = app(RequestLayer::new()).await;
    let resp = reqwest::Client::new()
        .post(format!("http://{addr}/upload"))
        .header("x-request-id", "acc-upload")
        .body(vec![7u8; 1500])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.text().await.unwrap(), "1500");
    let a = access_line("acc-upload").await;
    assert_eq!(a["request_bytes"], 1500);
    assert_eq!(a["response_bytes"], 4);
    assert_eq!(a["method"], "POST");
}

#[tokio::test]
async fn server_errors_are_warnings() {
    let (addr, _) = app(RequestLayer::new()).await;
    let resp = get_req(addr, "/fail", "acc-500").send().await.unwrap();
    assert_eq!(resp.status(), 500);
    assert_eq!(resp.headers()["x-request-id"], "acc-500");
    let a = access_line("acc-500").await;
    assert_eq!(a["level"], "WARN");
    assert_eq!(a["status"], 500);
    assert_eq!(a["route"], "/fail");
    assert!(a.get("cancelled").is_none(), "{a}");
}

#[tokio::test]
async fn unknown_routes_are_logged_without_a_route() {
    let (addr, _) = app(RequestLayer::new()).await;
    let resp = get_req(addr, "/nowhere", "acc-404").send().await.unwrap();
    assert_eq!(resp.status(), 404);
    let a = access_line("acc-404").await;
    assert_eq!(a["status"], 404);
    assert_eq!(a["path"], "/nowhere");
    assert!(a.get("route").is_none(), "{a}");
    // An empty body is complete, not cancelled.
    assert!(a.get("cancelled").is_none(), "{a}");
}

#[tokio::test]
async fn streamed_bodies_are_counted_and_logged_at_their_end() {
    let (addr, _) = app(RequestLayer::new()).await;
    let resp = get_req(addr, "/stream", "acc-stream").send().await.unwrap();
    assert_eq!(resp.bytes().await.unwrap().len(), 3000);
    let a = access_line("acc-stream").await;
    assert_eq!(a["response_bytes"], 3000);
    assert_eq!(a["status"], 200);
    assert!(a.get("cancelled").is_none());
}

#[tokio::test]
async fn head_requests_complete_without_a_body() {
    let (addr, _) = app(RequestLayer::new()).await;
    let resp = reqwest::Client::new()
        .head(format!("http://{addr}/items/1"))
        .header("x-request-id", "acc-head")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let a = access_line("acc-head").await;
    assert_eq!(a["method"], "HEAD");
    assert_eq!(a["response_bytes"], 0);
    assert!(a.get("cancelled").is_none(), "{a}");
}

#[tokio::test]
async fn client_gone_before_the_response_is_499() {
    let (addr, mut started) = app(RequestLayer::new()).await;
    let client = tokio::spawn(get_req(addr, "/hang", "acc-gone").send());
    started.recv().await.expect("handler started");
    client.abort(); // closes the connection
    let a = access_line("acc-gone").await;
    assert_eq!(a["status"], 499);
    assert_eq!(a["cancelled"], true);
    assert_eq!(a["route"], "/hang");
    // The handler's own line carries the id too.
    let lines = logs().all();
    assert!(lines
        .iter()
        .any(|l| l["message"] == "waiting forever" && l["request_id"] == "acc-gone"));
}

#[tokio::test]
async fn client_gone_during_the_body_is_cancelled() {
    let (addr, mut started) = app(RequestLayer::new()).await;
    let mut resp = get_req(addr, "/hang-body", "acc-gone-body")
        .send()
        .await
        .unwrap();
    started.recv().await.expect("handler started");
    assert_eq!(resp.chunk().await.unwrap().unwrap().len(), 100);
    drop(resp); // closes the connection mid-body
    let a = access_line("acc-gone-body").await;
    assert_eq!(a["status"], 200);
    assert_eq!(a["cancelled"], true);
    assert_eq!(a["response_bytes"], 100);
}

#[tokio::test]
async fn forwarded_for_only_from_trusted_proxies() {
    let (trusting, _) =
        app(RequestLayer::new().trusted_proxies(["127.0.0.0/8".parse::<IpRange>().unwrap()])).await;
    get_req(trusting, "/items/1", "acc-xff-trusted")
        .header("x-forwarded-for", "203.0.113.7, 198.51.100.2")
        .send()
        .await
        .unwrap();
    let a = access_line("acc-xff-trusted").await;
    // The right-most address not a trusted proxy: 203.0.113.7 may be forged by the client.
    assert_eq!(a["client_ip"], "198.51.100.2");

    let (untrusting, _) = app(RequestLayer::new()).await;
    get_req(untrusting, "/items/1", "acc-xff-untrusted")
        .header("x-forwarded-for", "198.51.100.2")
        .send()
        .await
        .unwrap();
    let a = access_line("acc-xff-untrusted").await;
    assert_eq!(a["client_ip"], "127.0.0.1");
}

#[tokio::test]
async fn a_failing_service_is_logged_as_500_with_its_error() {
    let _ = logs();
    // A tower service whose error is not turned into a response (as hyper or tonic allow).
    let svc = RequestLayer::new().layer(tower::service_fn(|_req: http::Request<String>| async {
        Err::<http::Response<String>, _>(std::io::Error::other("database unreachable"))
    }));
    let req = http::Request::get("/db")
        .header("x-request-id", "acc-svc-err")
        .body(String::new())
        .unwrap();
    let err = svc.oneshot(req).await.unwrap_err();
    assert_eq!(err.to_string(), "database unreachable");
    let a = access_line("acc-svc-err").await;
    assert_eq!(a["status"], 500);
    assert_eq!(a["level"], "WARN");
    assert_eq!(a["error"]["message"], "database unreachable");
}

#[tokio::test]
async fn access_log_can_be_turned_off() {
    let (addr, _) = app(RequestLayer::new().access_log(false)).await;
    let body = get_req(addr, "/items/5", "acc-off")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body, "item body");
    // An access line would be written before the last byte of the body is sent.
    let lines = logs()
        .wait_for("the handler's line", |l| {
            l.iter()
                .any(|x| x["request_id"] == "acc-off" && x["message"] == "item read")
        })
        .await;
    assert!(access(&lines).iter().all(|a| a["request_id"] != "acc-off"));
}

#[tokio::test]
async fn other_servers_give_the_peer_and_the_route_themselves() {
    let _ = logs();
    let handler = tower::service_fn(|_req: http::Request<String>| async {
        Ok::<_, Infallible>(http::Response::new(String::from("pong")))
    });
    // A `PeerAddr` extension, as a hyper server would insert it per connection.
    let svc = RequestLayer::new().layer(handler);
    let mut req = http::Request::get("/grpc.Health/Check")
        .header("x-request-id", "acc-peer-ext")
        .body(String::new())
        .unwrap();
    let peer: SocketAddr = "192.0.2.10:40000".parse().unwrap();
    req.extensions_mut()
        .insert(tracelight::http::PeerAddr(peer));
    drop(svc.oneshot(req).await.unwrap());
    let a = access_line("acc-peer-ext").await;
    assert_eq!(a["client_ip"], "192.0.2.10");
    assert!(a.get("route").is_none());

    // Closures for both.
    let svc = RequestLayer::new()
        .route_with(|parts| Some(parts.uri.path().to_owned()))
        .peer_addr_with(|_| Some([198, 51, 100, 1].into()))
        .layer(handler);
    let req = http::Request::get("/grpc.Health/Check")
        .header("x-request-id", "acc-closures")
        .body(String::new())
        .unwrap();
    drop(svc.oneshot(req).await.unwrap());
    let a = access_line("acc-closures").await;
    assert_eq!(a["client_ip"], "198.51.100.1");
    assert_eq!(a["route"], "/grpc.Health/Check");
    assert_eq!(a["response_bytes"], 0); // the body was never sent
    assert_eq!(a["cancelled"], true);
}
