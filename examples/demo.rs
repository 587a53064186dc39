//! The whole stack in a small axum service that logs the way a production service does: it serves
//! a few routes, sends itself requests, shuts down gracefully and exits 0.
//!
//! ```sh
//! cargo run --example demo                       # lines on stdout (text on a terminal, JSON otherwise)
//! LOG_FORMAT=json cargo run --example demo       # JSON lines
//! ```
//!
//! What it shows:
//! - `RequestLayer`: a request id read from `X-Request-ID` (or created), on every line of the
//!   request, echoed on the response, and one access line per request;
//! - a malformed `X-Request-ID` replaced by a new id, with a security event saying why;
//! - instrumented work (nested `#[instrument]` functions) and work moved to a task with
//!   `tracelight::spawn` that keeps the request's context;
//! - a failing request (500) whose error is logged with its whole source chain, and the flight
//!   recorder: the DEBUG lines of that request (DEBUG is off) written before its error line,
//!   marked `replayed`, while those of the requests that succeed are never written;
//! - a secret redacted, a record of the `log` crate, a value with newlines kept on one line;
//! - an operation slower than its threshold (a `span_closed` event on the `performance` stream),
//!   a repeated error counted and suppressed after three (with a summary line), and a security event;
//! - the admin endpoints (`/admin/logs/errors`, `/metrics`…) behind a random token printed on the
//!   terminal: fetched once with it, and once without (a 401 and an `admin_auth_failed` security
//!   event), and the log level changed live for a minute through `PUT /admin/logs/log-level`.
//!
//! With `LOG_DIR=/tmp/demo-logs` the five stream files are written there too.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Extension, Router};
use tracelight::admin::AdminRouter;
use tracelight::errors::ErrorConfig;
use tracelight::http::{RequestId, RequestLayer};
use tracelight::timing::TimingConfig;
use tracelight::FlightRecorder;
use tracing::{debug, error, info, info_span, instrument, warn, Instrument as _};

#[derive(Debug)]
struct GatewayError {
    status: u16,
}

impl fmt::Display for GatewayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "payment gateway answered {}", self.status)
    }
}

impl std::error::Error for GatewayError {}

#[derive(Debug)]
struct PaymentError {
    source: GatewayError,
}

impl fmt::Display for PaymentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("card declined")
    }
}

impl std::error::Error for PaymentError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

#[instrument(skip(card_token))]
async fn charge(order_id: &str, amount: f64, card_token: &str) -> Result<(), PaymentError> {
    tokio::time::sleep(Duration::from_millis(5)).await;
    // Left out at `info`: kept by the flight recorder, written only if this request fails.
    debug!(
        gateway = "acme-pay",
        attempt = 1,
        amount,
        "sending the charge"
    );
    // A secret in a field is written as [REDACTED], whatever the format.
    info!(api_key = card_token, amount, "calling the payment gateway");
    if amount > 500.0 {
        return Err(PaymentError {
            source: GatewayError { status: 402 },
        });
    }
    Ok(())
}

#[instrument(fields(items = items.len()))]
async fn process_order(order_id: &str, items: Vec<&str>, amount: f64) -> Result<(), PaymentError> {
    info!("pricing order");
    debug!(rules = 3, discount = 0.0, "price rules applied");
    // Work moved to another task keeps the request id and bound fields when spawned in the span.
    let audit = tracelight::spawn(async move {
        info!(audited = true, "audit record written");
    });
    let _ = audit.await;
    charge(order_id, amount, "sk_live_51Habcdefghijklmnop").await
}

/// `POST /users/{user_id}/orders/{order_id}` with the amount as the body.
async fn create_order(
    Path((user_id, order_id)): Path<(u64, String)>,
    Extension(request_id): Extension<RequestId>,
    body: String,
) -> Result<String, (StatusCode, String)> {
    tracelight::bind("user_id", user_id);
    info!("request received");
    let amount: f64 = body.trim().parse().map_err(|_| {
        warn!(body_len = body.len(), "amount is not a number");
        (StatusCode::BAD_REQUEST, "amount is not a number".to_owned())
    })?;
    match process_order(&order_id, vec!["book", "pen"], amount).await {
        Ok(()) => {
            info!(order_id, total = amount, "order_created");
            Ok(format!("order {order_id} created"))
        }
        Err(e) => {
            error!(
                error = &e as &(dyn std::error::Error + 'static),
                order_id, "order failed"
            );
            // The client gets the id to quote when it reports the failure.
            Err((
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("order failed; request id {request_id}"),
            ))
        }
    }
}

async fn health() -> &'static str {
    "ok"
}

/// A random admin token from the operating system's generator (two v4 UUIDs: 244 random bits).
fn random_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // The environment decides (LOG_FORMAT, LOG_DIR, OTEL_*…); the code adds what this service knows:
    // its own slow thresholds, and that one error repeated more than 3 times a minute is noise.
    let guard = tracelight::Builder::from_env()?
        .timing(
            TimingConfig::default()
                .threshold_for("inventory_lookup", Duration::from_millis(20))
                .threshold_for("price_rules", Duration::from_millis(10)),
        )
        .errors(ErrorConfig::default().suppress_after(3, Duration::from_secs(60)))
        // The DEBUG lines of a request that fails, written before its error line.
        .flight_recorder(FlightRecorder::new())
        .init()?;
    info!(version = env!("CARGO_PKG_VERSION"), "demo service starting");
    log::info!("a record from a crate that uses the `log` crate");

    // The admin endpoints, behind a token that goes to the terminal only, never into a log line.
    let admin_token = random_token();
    eprintln!("admin token (for /admin/logs/* and /metrics): {admin_token}");
    let admin = AdminRouter::new(guard.handle())
        .token(admin_token.clone())
        .build()?;

    let app = Router::new()
        .route("/health", get(health))
        .route("/users/{user_id}/orders/{order_id}", post(create_order))
        .merge(admin)
        .layer(RequestLayer::new());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
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
    info!(%addr, "listening");

    let client = reqwest::Client::new();
    let order = |user: u64, order: &str| format!("http://{addr}/users/{user}/orders/{order}");

    // Succeeds; the caller names the request.
    let resp = client
        .post(order(42, "abc-456"))
        .header("x-request-id", "0193f2a4-7c1e-7cc2-9a3b-5e0d6f7a8b9c")
        .body("99.99")
        .send()
        .await?;
    info!(
        status = resp.status().as_u16(),
        "client: first order answered"
    );

    // Fails with a 500: the error line carries the whole source chain.
    let resp = client
        .post(order(7, "abc-457"))
        .header("x-request-id", "0193f2a4-8d2f-7dd3-8b4c-6f1e7a8b9c0d")
        .body("1200")
        .send()
        .await?;
    info!(
        status = resp.status().as_u16(),
        "client: second order answered"
    );

    // A malformed X-Request-ID: replaced by a new id, and a security event says why.
    let resp = client
        .get(format!("http://{addr}/health"))
        .header("x-request-id", "bad id\t<script>alert(1)</script>")
        .send()
        .await?;
    info!(
        status = resp.status().as_u16(),
        echoed_id = ?resp.headers().get("x-request-id"),
        "client: health answered with a new request id"
    );
    drop(client);

    warn!(
        header = "line one\nline two \"quoted\"",
        "a value with newlines and quotes stays on one line"
    );

    // Slower than its threshold: a `span_closed` event with busy and idle time.
    async { tokio::time::sleep(Duration::from_millis(30)).await }
        .instrument(info_span!("inventory_lookup", sku = "BOOK-1"))
        .await;
    {
        // A block that is not a function, timed.
        let _t = tracelight::timed("price_rules");
        std::thread::sleep(Duration::from_millis(15));
    }

    // The same error ten times: three are written, seven counted, and a summary line says so.
    for attempt in 1..=10u32 {
        let e = GatewayError { status: 503 };
        error!(
            error = &e as &(dyn std::error::Error + 'static),
            attempt, "cache refresh failed"
        );
    }

    // A security event: its own stream, counted by type.
    tracelight::security_event!(
        "login_failed",
        "medium",
        user = "mallory",
        "wrong password for the admin account"
    );

    let errors = tracelight::errors();
    let perf = tracelight::performance();
    info!(
        errors_total = errors.total,
        error_groups = errors.groups.len(),
        suppressed = errors.groups.iter().map(|g| g.suppressed).sum::<u64>(),
        slowest_operation = perf.operations.first().map_or("", |o| o.operation.as_str()),
        security_events = tracelight::security().total,
        "what the demo saw"
    );

    // The same, over HTTP: the admin endpoints with the token, and once without it.
    let admin_client = reqwest::Client::new();
    let resp = admin_client
        .get(format!("http://{addr}/admin/logs/errors"))
        .bearer_auth(&admin_token)
        .send()
        .await?;
    let status = resp.status().as_u16();
    let body: serde_json::Value = serde_json::from_str(&resp.text().await?)?;
    info!(
        status,
        errors_total = body["total"].as_u64(),
        error_groups = body["groups"].as_array().map(Vec::len),
        "client: /admin/logs/errors answered"
    );
    let resp = admin_client
        .get(format!("http://{addr}/metrics"))
        .header("x-admin-token", &admin_token)
        .send()
        .await?;
    let status = resp.status().as_u16();
    let metrics = resp.text().await?;
    info!(
        status,
        samples = metrics.lines().filter(|l| !l.starts_with('#')).count(),
        "client: /metrics answered"
    );
    let resp = admin_client
        .get(format!("http://{addr}/admin/logs/errors"))
        .send()
        .await?;
    info!(
        status = resp.status().as_u16(),
        "client: /admin/logs/errors without the token refused (see the admin_auth_failed event)"
    );
    // The level changed live, for a minute: debug lines appear at once, and the change is a
    // `log_level_changed` security event.
    let resp = admin_client
        .put(format!("http://{addr}/admin/logs/log-level"))
        .bearer_auth(&admin_token)
        .body(r#"{"filter": "info,demo=debug", "for": "60s"}"#)
        .send()
        .await?;
    info!(
        status = resp.status().as_u16(),
        "client: log level set to info,demo=debug for a minute"
    );
    tracing::debug!("a debug line, written now that the level allows it");
    drop(admin_client);

    let _ = stop.send(());
    server.await??;
    info!("demo service stopped");
    Ok(())
}
