//! 200 concurrent requests with distinct ids on a multi-thread runtime: every line carries the id
//! of the request that produced it, also from work spawned with `tracelight::spawn` and from
//! nested `#[instrument]` functions, across worker threads.
#![cfg(all(feature = "http", feature = "axum"))]
#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

mod http_support;

use std::collections::HashMap;

use axum::extract::Path;
use axum::routing::get;
use axum::Router;
use tracelight::http::RequestLayer;
use tracing::{info, instrument};

use http_support::{access, logs, serve};

const REQUESTS: usize = 200;

#[instrument]
async fn step(n: u64, depth: u32) {
    info!(n, depth, "step");
    tokio::task::yield_now().await;
    if depth > 0 {
        Box::pin(step(n, depth - 1)).await;
    }
}

async fn work(Path(n): Path<u64>) -> String {
    info!(n, "handler start");
    tokio::task::yield_now().await;
    // Work moved to other tasks, maybe on other worker threads.
    let a = tracelight::spawn(async move {
        tokio::task::yield_now().await;
        info!(n, "spawned task");
        let inner = tracelight::spawn(async move {
            info!(n, "task spawned by a task");
            n * 2
        });
        inner.await.unwrap_or(0)
    });
    step(n, 2).await;
    let doubled = a.await.unwrap_or(0);
    info!(n, doubled, "handler end");
    format!("{n}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_line_carries_another_requests_id() {
    let logs = logs();
    let addr = serve(
        Router::new()
            .route("/work/{n}", get(work))
            .layer(RequestLayer::new()),
    )
    .await;
    let client = reqwest::Client::new();
    let mut tasks = Vec::new();
    for n in 0..REQUESTS {
        let client = client.clone();
        // A bare tokio::spawn on purpose: the client side has no context to carry.
        tasks.push(tokio::spawn(async move {
            let resp = client
                .get(format!("http://{addr}/work/{n}"))
                .header("x-request-id", format!("conc-{n}"))
                .send()
                .await
                .expect("send");
            let echoed = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
            assert_eq!(echoed, format!("conc-{n}"));
            assert_eq!(resp.text().await.unwrap(), n.to_string());
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let lines = logs
        .wait_for("every access line", |l| access(l).len() >= REQUESTS)
        .await;

    let mut per_request: HashMap<u64, usize> = HashMap::new();
    for line in &lines {
        let id = line["request_id"]
            .as_str()
            .unwrap_or_else(|| panic!("line without request_id: {line}"));
        if line["target"] == "tracelight::access" {
            let path = line["path"].as_str().unwrap();
            assert_eq!(format!("conc-{}", &path["/work/".len()..]), id, "{line}");
            assert_eq!(line["route"], "/work/{n}");
            assert_eq!(line["status"], 200);
            continue;
        }
        let n = line["n"]
            .as_u64()
            .unwrap_or_else(|| panic!("line without n: {line}"));
        assert_eq!(format!("conc-{n}"), id, "bleed: {line}");
        *per_request.entry(n).or_default() += 1;
    }
    assert_eq!(per_request.len(), REQUESTS);
    // handler start, spawned task, task spawned by a task, 3 steps, handler end.
    for (n, count) in &per_request {
        assert_eq!(*count, 7, "request {n} wrote {count} lines");
    }
    assert_eq!(access(&lines).len(), REQUESTS);
}
