//! Two services in one process, A calling B over HTTP on loopback: every line either service
//! writes for one request carries the same `request_id`, also B's access line.
//!
//! ```sh
//! cargo run --example two_services                   # text on a terminal
//! LOG_FORMAT=json cargo run --example two_services   # JSON lines
//! LOG_FORMAT=json cargo run --example two_services | jq -c 'select(.request_id == "order-7")'
//! ```
//!
//! - `RequestLayer` on both services reads or creates the request id, opens the `request` span and
//!   writes one access line per request;
//! - A calls B with reqwest's `.propagate()`, which sends the current request id as
//!   `X-Request-ID`, so B's lines carry A's id;
//! - work A moves to another task with `tracelight::spawn` keeps the id too.

use std::net::SocketAddr;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Extension, Router};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tracelight::http::{RequestBuilderExt as _, RequestId, RequestLayer};
use tracing::{info, instrument, warn};

// ---- service B: inventory ----

async fn stock(Path(sku): Path<String>) -> Result<String, StatusCode> {
    info!(sku = %sku, "inventory: stock requested");
    let units = count_units(&sku).await;
    if units == 0 {
        warn!(sku = %sku, "inventory: out of stock");
        return Err(StatusCode::NOT_FOUND);
    }
    Ok(units.to_string())
}

#[instrument]
async fn count_units(sku: &str) -> u32 {
    tokio::task::yield_now().await;
    let units = if sku == "sold-out" { 0 } else { 7 };
    info!(units, "inventory: counted");
    units
}

// ---- service A: checkout ----

#[derive(Clone)]
struct Checkout {
    inventory: SocketAddr,
    http: reqwest::Client,
}

async fn checkout(
    State(app): State<Checkout>,
    Extension(id): Extension<RequestId>,
    Path(sku): Path<String>,
) -> Result<String, StatusCode> {
    info!(sku = %sku, "checkout: started");
    // The audit runs in another task and keeps the request's context.
    let audit = tracelight::spawn(async move {
        info!(request = %id, "checkout: audit record written");
    });
    let resp = app
        .http
        .get(format!("http://{}/stock/{sku}", app.inventory))
        .propagate() // X-Request-ID: the current request id
        .send()
        .await
        .map_err(|e| {
            warn!(
                error = &e as &(dyn std::error::Error + 'static),
                "checkout: inventory unreachable"
            );
            StatusCode::BAD_GATEWAY
        })?;
    let _ = audit.await;
    if !resp.status().is_success() {
        warn!(status = resp.status().as_u16(), "checkout: no stock");
        return Err(StatusCode::CONFLICT);
    }
    let units = resp.text().await.map_err(|_| StatusCode::BAD_GATEWAY)?;
    info!(sku = %sku, units = %units, "checkout: order accepted");
    Ok(format!("ordered {sku}; {units} in stock"))
}

/// Serves `app` on 127.0.0.1 (an OS-chosen port) until `stop` fires.
async fn serve(
    app: Router,
) -> anyhow::Result<(
    SocketAddr,
    oneshot::Sender<()>,
    JoinHandle<std::io::Result<()>>,
)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async {
            let _ = stopped.await;
        })
        .await
    });
    Ok((addr, stop, server))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _guard = tracelight::init()?;

    let inventory = Router::new()
        .route("/stock/{sku}", get(stock))
        .layer(RequestLayer::new());
    let (b_addr, b_stop, b_server) = serve(inventory).await?;

    let checkout = Router::new()
        .route("/checkout/{sku}", get(checkout))
        .layer(RequestLayer::new())
        .with_state(Checkout {
            inventory: b_addr,
            http: reqwest::Client::new(),
        });
    let (a_addr, a_stop, a_server) = serve(checkout).await?;
    info!(checkout = %a_addr, inventory = %b_addr, "two services listening");

    let client = reqwest::Client::new();
    // 1. The caller names the request: both services log `order-7`.
    let resp = client
        .get(format!("http://{a_addr}/checkout/book"))
        .header("x-request-id", "order-7")
        .send()
        .await?;
    info!(status = resp.status().as_u16(), request_id_echoed = ?resp.headers().get("x-request-id"), "client: checkout answered");
    // 2. No id from the caller: A creates one (UUID v7) and B logs the same.
    let resp = client
        .get(format!("http://{a_addr}/checkout/sold-out"))
        .send()
        .await?;
    info!(status = resp.status().as_u16(), request_id_echoed = ?resp.headers().get("x-request-id"), "client: checkout answered");
    drop(client);

    let _ = a_stop.send(());
    let _ = b_stop.send(());
    a_server.await??;
    b_server.await??;
    info!("both services stopped");
    Ok(())
}
