//! tracelight's parts beside tokio-console's layer (`console-subscriber`) in one registry: the
//! console's gRPC server, read by a real client on loopback, reports the task; tracelight's lines
//! carry the request id inside it and across `tracelight::spawn`. One test in this binary: it
//! installs the global subscriber (the runtime's worker threads must see it).
//!
//! Built only with `--cfg tokio_unstable`, as tokio-console users build (tokio then instruments
//! its tasks, and the console layer refuses to start without it): `scripts/test.sh` runs it so,
//! in a target directory of its own.
#![cfg(tokio_unstable)]
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::{Duration, Instant};

use console_api::instrument::instrument_client::InstrumentClient;
use console_api::instrument::InstrumentRequest;
use serde_json::Value;
use tracelight::sink::MemoryWriter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::Layer as _;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracelight_beside_the_console_layer() {
    let (console, server) = console_subscriber::ConsoleLayer::builder()
        .publish_interval(Duration::from_millis(20))
        .build();
    let lines = MemoryWriter::new();
    let subscriber = tracing_subscriber::registry()
        .with(console)
        .with(tracelight::CorrelationLayer::new().unwrap())
        .with(
            tracelight::JsonLayer::from_builder(tracelight::builder().writer(lines.clone()))
                .unwrap()
                .with_filter(tracing_subscriber::filter::LevelFilter::INFO),
        );
    tracing::subscriber::set_global_default(subscriber).unwrap();

    // The console's server and aggregator, on a listener of our own (port 0: no clash).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let parts = server.into_parts();
    let aggregator = tokio::spawn(parts.aggregator.run());
    let serve = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(parts.instrument_server)
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );

    // A request whose work runs in a task that tokio instruments (its `runtime.spawn` span,
    // which the console reads), spawned with `tracelight::spawn` so that the context follows.
    let request = tracing::info_span!("request", request_id = "req-console");
    let spawned = {
        let _r = request.enter();
        tracelight::bind("user_id", 42u64);
        tracelight::spawn(async {
            tokio::task::yield_now().await;
            tracing::info!(order_id = 7u64, "in a spawned task");
        })
    };
    spawned.await.unwrap();

    // The console reports the task to a client, within a deadline.
    let mut client = InstrumentClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    let mut updates = client
        .watch_updates(InstrumentRequest {})
        .await
        .unwrap()
        .into_inner();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = None;
    while seen.is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "the console reported no task");
        let update = tokio::time::timeout(left, updates.message())
            .await
            .expect("an update before the deadline")
            .unwrap()
            .expect("the stream stays open");
        seen = update
            .task_update
            .into_iter()
            .flat_map(|t| t.new_tasks)
            .find(|t| {
                t.location
                    .as_ref()
                    .and_then(|l| l.file.as_deref())
                    .is_some_and(|f| f.ends_with("console.rs"))
            });
    }

    tracelight::flush();
    let lines: Vec<Value> = lines
        .lines()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let spawned = lines
        .iter()
        .find(|l| l["message"] == "in a spawned task")
        .unwrap_or_else(|| panic!("{lines:?}"));
    assert_eq!(spawned["request_id"], "req-console");
    assert_eq!(spawned["user_id"], 42);
    assert_eq!(spawned["order_id"], 7);
    serve.abort();
    aggregator.abort();
}
