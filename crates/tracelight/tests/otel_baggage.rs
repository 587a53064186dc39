//! `OTEL_PROPAGATORS`: W3C trace context and W3C baggage by default, from the caller through
//! service A to service B; `tracecontext` alone sends no baggage on; `none` sends neither. One
//! test in this binary: the propagators are the process's.
#![cfg(feature = "otel")]
#![cfg(all(feature = "http", feature = "reqwest", feature = "axum"))]
#![allow(clippy::unwrap_used)]

mod otel_support;

use std::net::SocketAddr;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::get;
use axum::Router;
use otel_support::Rotel;
use tracelight::http::{RequestBuilderExt as _, RequestLayer};
use tracelight::otel::OtelConfig;

/// Service B: answers with the trace headers it received.
async fn b_echo(headers: HeaderMap) -> String {
    let get = |k: &str| {
        headers
            .get(k)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-")
            .to_owned()
    };
    format!(
        "traceparent={} baggage={}",
        get("traceparent"),
        get("baggage")
    )
}

/// Service A: calls B.
async fn a_call(State((b, client)): State<(SocketAddr, reqwest::Client)>) -> String {
    client
        .get(format!("http://{b}/echo"))
        .propagate()
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

#[tokio::test(flavor = "current_thread")]
async fn propagators_as_otel_propagators_says() {
    let rotel = Rotel::start();
    let b = serve(
        Router::new()
            .route("/echo", get(b_echo))
            .layer(RequestLayer::new()),
    )
    .await;
    let a = serve(
        Router::new()
            .route("/call", get(a_call))
            .layer(RequestLayer::new())
            .with_state((b, reqwest::Client::new())),
    )
    .await;
    let caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let call = || async {
        reqwest::Client::new()
            .get(format!("http://{a}/call"))
            .header(
                "traceparent",
                format!("00-{caller_trace}-00f067aa0ba902b7-01"),
            )
            .header("baggage", "user=alice,tier=gold")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    for (propagators, trace, baggage) in [
        (None, true, true),
        (Some("tracecontext,baggage"), true, true),
        (Some("tracecontext"), true, false),
        (Some("baggage"), false, true),
        (Some("none"), false, false),
    ] {
        let url = rotel.http_url();
        let config = OtelConfig::from_lookup(|k| match k {
            "OTEL_EXPORTER_OTLP_ENDPOINT" => Some(url.clone()),
            "OTEL_PROPAGATORS" => propagators.map(str::to_owned),
            _ => None,
        })
        .unwrap();
        let guard = tracelight::builder()
            .writer(tracelight::sink::MemoryWriter::new())
            .otel(config)
            .init_local()
            .unwrap();
        let body = call().await;
        drop(guard);
        let (tp, bg) = body
            .strip_prefix("traceparent=")
            .and_then(|r| r.split_once(" baggage="))
            .unwrap_or_else(|| panic!("{body}"));
        assert_eq!(
            tp.contains(caller_trace),
            trace,
            "{propagators:?}: B got traceparent {tp}"
        );
        let mut entries: Vec<&str> = bg.split(',').map(str::trim).collect();
        entries.sort_unstable();
        if baggage {
            assert_eq!(
                entries,
                ["tier=gold", "user=alice"],
                "{propagators:?}: {bg}"
            );
        } else {
            assert_eq!(bg, "-", "{propagators:?}");
        }
    }
}
