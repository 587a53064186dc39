//! Filtering inside tracelight: at `warn` (a production setting) the ERROR line inside a request
//! still has the request id and the bound context, the access stream keeps its lines at its own
//! level while the app stream does not get them, and the filter changes live.
#![cfg(all(feature = "http", feature = "axum"))]
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::path::Path;
use std::time::{Duration, Instant};

use axum::routing::get;
use axum::Router;
use serde_json::Value;
use tracelight::http::RequestLayer;

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// Flushes and waits (with a deadline) until `pred` holds for the lines of `path`.
fn wait_for(guard: &tracelight::Guard, path: &Path, what: &str, pred: impl Fn(&[Value]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        guard.flush();
        let l = lines(path);
        if pred(&l) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: {l:#?}");
        std::thread::yield_now();
    }
}

#[tracing::instrument]
async fn checkout() -> &'static str {
    tracelight::bind("user_id", 7);
    tracing::info!("an info line, not written at warn");
    tracing::error!(sku = 42, "payment failed");
    "ok"
}

async fn get_text(url: &str) {
    let r = reqwest::get(url).await.unwrap();
    assert!(r.status().is_success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn correlation_and_access_lines_at_warn_and_a_live_change() {
    let dir = tempfile::tempdir().unwrap();
    let guard = tracelight::builder()
        .service("filter-test")
        .filter("warn")
        .log_dir(dir.path())
        .init()
        .unwrap();
    let app = Router::new()
        .route("/checkout", get(checkout))
        .layer(RequestLayer::new());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let url = format!("http://{addr}/checkout");

    get_text(&url).await;
    let (app_log, errors_log, access_log) = (
        dir.path().join("app.log"),
        dir.path().join("errors.log"),
        dir.path().join("access.log"),
    );
    wait_for(&guard, &access_log, "an access line at warn", |l| {
        l.len() == 1 && l[0]["status"] == 200
    });
    let access = lines(&access_log);
    let request_id = access[0]["request_id"].as_str().unwrap().to_owned();
    // The route says which handler it was; the library's own source is not shown.
    assert!(access[0].get("file").is_none(), "{}", access[0]);
    assert_eq!(access[0]["route"], "/checkout");
    wait_for(&guard, &errors_log, "the ERROR line", |l| l.len() == 1);
    let error = &lines(&errors_log)[0];
    assert_eq!(error["message"], "payment failed");
    assert_eq!(error["request_id"], request_id.as_str(), "{error}");
    assert_eq!(error["user_id"], 7, "{error}");
    // The app stream takes what the filter enables: the ERROR line, not the INFO line, not the
    // access line (which it takes at info).
    let app = lines(&app_log);
    assert_eq!(app.len(), 1, "{app:#?}");
    assert_eq!(app[0]["message"], "payment failed");

    // Live: the filter is changed, and the next request's INFO line is written.
    guard.handle().filter().set("info").unwrap();
    get_text(&url).await;
    wait_for(&guard, &app_log, "the INFO line after set(info)", |l| {
        l.iter()
            .any(|v| v["message"] == "an info line, not written at warn")
            && l.iter().any(|v| v["target"] == "tracelight::access")
    });
    // A directive that names the access target gives the decision back to the filter.
    assert!(guard.handle().filter().set("inf").is_err());
    guard
        .handle()
        .filter()
        .set("warn,tracelight::access=off")
        .unwrap();
    let before = lines(&access_log).len();
    get_text(&url).await;
    wait_for(&guard, &errors_log, "the third ERROR line", |l| {
        l.len() == 3
    });
    assert_eq!(lines(&access_log).len(), before, "access off by directive");

    // `off` is off, correlation spans and access lines included.
    guard.handle().filter().set("off").unwrap();
    get_text(&url).await;
    guard.handle().filter().set("error").unwrap();
    get_text(&url).await;
    wait_for(&guard, &errors_log, "the ERROR line after off", |l| {
        l.len() == 4
    });
    assert_eq!(
        lines(&access_log).len(),
        before + 1,
        "one more at error, none at off"
    );
    let last = lines(&errors_log);
    assert!(last[3]["request_id"].is_string(), "{}", last[3]);
}
