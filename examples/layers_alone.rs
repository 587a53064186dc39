//! tracelight's formatter and router as layers of their own on a `Registry`, each beside other
//! crates' layers and under its own filter: `JsonLayer` (tracelight's JSON lines to any
//! `MakeWriter`, here stderr) and `RouterLayer` (streams by rule: every event as JSON to stdout,
//! WARN and above as text to stderr).
//!
//! ```sh
//! cargo run --example layers_alone
//! ```

use tracelight::{Format, JsonLayer, Output, RouterLayer, Rule, Stream};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::prelude::*;

fn handle(order_id: u64) {
    let span = tracing::info_span!("request", request_id = %format!("req-{order_id}"));
    let _e = span.enter();
    tracelight::bind("user_id", 7u64);
    tracing::info!(order_id, "order received");
    if order_id.is_multiple_of(2) {
        tracing::warn!(order_id, attempt = 2, "payment gateway slow, retrying");
    }
}

fn main() -> anyhow::Result<()> {
    // 1. The formatter alone, to a MakeWriter, with a per-layer filter.
    let json = JsonLayer::with_writer(std::io::stderr)?;
    let subscriber = tracing_subscriber::registry().with(json.with_filter(LevelFilter::INFO));
    tracing::subscriber::with_default(subscriber, || handle(1));

    // 2. The router alone: two streams, each with its rule, format and output.
    let router = RouterLayer::from_builder(
        tracelight::builder()
            .service("shop")
            .stream(Stream::new("all", Output::Stdout).format(Format::Json))
            .stream(
                Stream::new("problems", Output::Stderr)
                    .rule(Rule::min_level(tracing::Level::WARN))
                    .format(Format::Text),
            ),
    )?;
    let subscriber = tracing_subscriber::registry().with(router.with_filter(LevelFilter::INFO));
    tracing::subscriber::with_default(subscriber, || handle(2));
    Ok(())
}
