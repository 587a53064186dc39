//! The smallest service: `tracelight::init()` and a few events.
//!
//! ```sh
//! cargo run --example quickstart                 # text on a terminal
//! LOG_FORMAT=json cargo run --example quickstart # one JSON object per line
//! ```

use tracing::{info, instrument, warn};

#[instrument]
fn process_order(order_id: &str, items: u32) -> f64 {
    info!(items, "pricing order");
    99.99
}

fn main() -> anyhow::Result<()> {
    let _guard = tracelight::init()?;
    let span = tracing::info_span!(
        "request",
        request_id = "req-1",
        method = "POST",
        path = "/orders"
    );
    let _enter = span.enter();
    let total = process_order("abc-456", 3);
    info!(
        user_id = 42u64,
        order_id = "abc-456",
        total,
        "order_created"
    );
    warn!(password = "hunter2", "a secret field is redacted");
    log::info!("a record from the log crate");
    Ok(())
}
