//! tracelight's parts beside `tracing_subscriber::fmt`, for a service that keeps its own
//! formatter: `TimingLayer` (slow spans reported as events fmt writes, and the context that
//! `CorrelationLayer` keeps when timing is not wanted) + `tracelight::fmt::Correlated` (the
//! request id and bound fields at the root of fmt's JSON lines), and `FileWriter`
//! (tracelight's lossless rotating file in place of tracing-appender).
//!
//! ```sh
//! cargo run --example fmt_layers            # JSON lines on stdout and in a temporary file
//! ```

use std::time::Duration;

use tracelight::sink::{FileOptions, FileWriter, Rotation};
use tracelight::timing::TimingConfig;
use tracing_subscriber::prelude::*;

#[tracing::instrument]
fn load_cart(cart_id: u64) {
    std::thread::sleep(Duration::from_millis(30));
    tracing::info!(items = 3, "cart loaded");
}

fn main() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join("tracelight-fmt-layers");
    let (file, file_guard) = FileWriter::new(
        FileOptions::new(dir.join("app.log")).rotation(Rotation::size(10 << 20).backups(3)),
    )?;
    let json = || {
        tracelight::fmt::Correlated::new(
            tracing_subscriber::fmt::format().json().flatten_event(true),
        )
    };
    // `TimingLayer` keeps the context too: with it, no `CorrelationLayer` (one of the two per
    // subscriber).
    tracing_subscriber::registry()
        .with(tracelight::TimingLayer::from_builder(
            tracelight::builder().timing(
                TimingConfig::default().threshold_for("load_cart", Duration::from_millis(20)),
            ),
        )?)
        // To stdout, and the same lines to the file.
        .with(tracing_subscriber::fmt::layer().json().event_format(json()))
        .with(
            tracing_subscriber::fmt::layer()
                .json()
                .event_format(json())
                .with_writer(file),
        )
        .init();

    tracing::info!("service starting");
    {
        let span = tracing::info_span!(
            "request",
            request_id = "0193f2a4-7c1e-7cc2-9a3b-5e0d6f7a8b9c"
        );
        let _e = span.enter();
        tracelight::bind("user_id", 42u64);
        load_cart(7); // slower than its 20 ms threshold: a span_closed line
        tracing::warn!("stock is low");
    }
    drop(file_guard); // every line is in the file
    eprintln!("the same lines are in {}", dir.join("app.log").display());
    Ok(())
}
