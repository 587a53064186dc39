//! The secret corpus through the OpenTelemetry export to a real collector (rotel): span
//! attributes, span events, log record bodies and attributes, and the resource. No secret may
//! reach the collector.
#![cfg(feature = "otel")]
#![allow(clippy::unwrap_used)]

mod otel_support;
mod redaction_support;

use std::time::Duration;

use otel_support::Rotel;
use tracelight::otel::{BatchConfig, OtelConfig};

#[test]
fn no_secret_of_the_corpus_reaches_the_collector() {
    let rotel = Rotel::start();
    let corpus = redaction_support::corpus();
    let fast = BatchConfig::default().scheduled_delay(Duration::from_millis(50));
    let guard = tracelight::builder()
        .writer(tracelight::sink::MemoryWriter::new())
        .otel(
            OtelConfig::new()
                .endpoint(rotel.http_url())
                .resource_attribute("deploy_note", corpus[0].text.as_str())
                .resource_attribute("api_token", "plain-but-secret-by-name")
                .traces_batch(fast)
                .logs_batch(fast),
        )
        .init_local()
        .unwrap();
    for (i, s) in corpus.iter().enumerate() {
        let span = tracing::info_span!("corpus_span", n = i, note = s.text.as_str());
        let _e = span.enter();
        tracing::info!(n = i, note = s.text.as_str(), "{}", s.text);
    }
    tracing::info!("corpus done");
    guard.shutdown();
    rotel.wait_log("corpus done");
    otel_support::wait_until(
        Duration::from_secs(30),
        "every span at the collector",
        || {
            (rotel
                .spans()
                .iter()
                .filter(|s| s.name() == "corpus_span")
                .count()
                == corpus.len())
            .then_some(())
        },
        || rotel.output(),
    );
    let out = rotel.output();
    // Cells: each shape in a span attribute, a span event, a log body and a log attribute.
    let leaked: Vec<&str> = corpus
        .iter()
        .filter(|s| out.contains(&s.secret))
        .map(|s| s.name)
        .collect();
    assert!(
        leaked.is_empty(),
        "{} of {} shapes reached the collector: {leaked:?}",
        leaked.len(),
        corpus.len()
    );
    assert!(
        !out.contains("plain-but-secret-by-name"),
        "a secret-named resource attribute"
    );
    assert!(out.contains("[REDACTED]"));
}
