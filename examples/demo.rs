//! The whole stack on an embedded default: a small Tokio service that logs the way a production
//! service does, then exits 0.
//!
//! ```sh
//! cargo run --example demo                       # lines on stdout (text on a terminal, JSON otherwise)
//! LOG_FORMAT=json cargo run --example demo       # JSON lines
//! ```
//!
//! It does instrumented work (nested `#[instrument]` functions), moves work to a spawned task that
//! keeps the request's context, fails with an error that has a source chain, logs through the `log`
//! crate, and shows a secret being redacted.

use std::fmt;
use std::time::Duration;

use tracing::{error, info, info_span, instrument, warn, Instrument as _};

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
    // Work moved to another task keeps the request id and bound fields when spawned in the span.
    let audit = tracelight::spawn(async move {
        info!(audited = true, "audit record written");
    });
    let _ = audit.await;
    charge(order_id, amount, "sk_live_51Habcdefghijklmnop").await
}

async fn handle_request(request_id: &str, user_id: u64, order_id: &str, amount: f64) {
    let span = info_span!("request", request_id, method = "POST", path = "/orders");
    async {
        tracelight::bind("user_id", &user_id);
        info!("request received");
        match process_order(order_id, vec!["book", "pen"], amount).await {
            Ok(()) => info!(order_id, total = amount, "order_created"),
            Err(e) => error!(
                error = &e as &(dyn std::error::Error + 'static),
                order_id, "order failed"
            ),
        }
    }
    .instrument(span)
    .await;
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _guard = tracelight::init()?;
    info!(version = env!("CARGO_PKG_VERSION"), "demo service starting");
    log::info!("a record from a crate that uses the `log` crate");

    handle_request("0193f2a4-7c1e-7cc2-9a3b-5e0d6f7a8b9c", 42, "abc-456", 99.99).await;
    handle_request("0193f2a4-8d2f-7dd3-8b4c-6f1e7a8b9c0d", 7, "abc-457", 1200.0).await;

    warn!(
        header = "line one\nline two \"quoted\"",
        "a value with newlines and quotes stays on one line"
    );
    info!("demo service stopped");
    Ok(())
}
