//! Log records are built from tracelight's own capture of each event: at a real collector
//! (rotel) an ERROR event with a three-deep `source()` chain carries `exception.type`,
//! `exception.message` and the chain in `exception.stacktrace`, the request id and bound context
//! as attributes, typed fields, and the same timestamp as its JSON line to the microsecond; an
//! event no stream takes is no record; and with the pipeline's layer composed by hand, the
//! tracelight layer above it still builds the records (the stock bridge stays quiet: one record
//! per event).
#![cfg(feature = "otel")]
#![allow(clippy::unwrap_used)]

mod otel_support;

use std::time::Duration;

use otel_support::Rotel;
use tracelight::otel::{BatchConfig, OtelConfig, OtelPipeline};
use tracelight::Format;
use tracing_subscriber::layer::SubscriberExt as _;

fn fast() -> BatchConfig {
    BatchConfig::default().scheduled_delay(Duration::from_millis(50))
}

#[derive(Debug)]
struct Chained(&'static str, Option<Box<Chained>>);

impl std::fmt::Display for Chained {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for Chained {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.1.as_deref().map(|e| e as _)
    }
}

fn chain() -> Chained {
    Chained(
        "checkout failed",
        Some(Box::new(Chained(
            "payment declined",
            Some(Box::new(Chained("connection reset by peer", None))),
        ))),
    )
}

/// An RFC 3339 UTC timestamp of a line (`2026-12-01T21:38:07.700252Z`) in nanoseconds since
/// the Unix epoch, as rotel prints a record's time.
fn line_nanos(ts: &str) -> u64 {
    let (date, time) = ts.trim_end_matches('Z').split_once('T').unwrap();
    let d: Vec<i64> = date.split('-').map(|p| p.parse().unwrap()).collect();
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let t: Vec<u64> = hms.split(':').map(|p| p.parse().unwrap()).collect();
    // Days from the civil date (Howard Hinnant's algorithm).
    let (y, m, day) = (if d[1] <= 2 { d[0] - 1 } else { d[0] }, d[1], d[2]);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = u64::try_from(era * 146_097 + doe - 719_468).unwrap();
    let frac_ns: u64 = format!("{frac:0<9}")[..9].parse().unwrap();
    ((days * 86_400 + t[0] * 3600 + t[1] * 60 + t[2]) * 1_000_000_000) + frac_ns
}

/// How many log records rotel received whose body contains `text`.
fn records_of(rotel: &Rotel, text: &str) -> usize {
    rotel
        .logs()
        .iter()
        .filter(|l| l.get("Body").is_some_and(|b| b.contains(text)))
        .count()
}

#[test]
fn an_error_record_has_the_type_the_chain_and_the_lines_timestamp() {
    let rotel = Rotel::start();
    let lines = tracelight::sink::MemoryWriter::new();
    let guard = tracelight::builder()
        .service("checkout")
        .format(Format::Json)
        .writer(lines.clone())
        .filter("info")
        .otel(
            OtelConfig::new()
                .endpoint(rotel.http_url())
                .traces_batch(fast())
                .logs_batch(fast()),
        )
        .init_local()
        .unwrap();
    {
        let _req = tracing::info_span!("request", request_id = "req-7f3a").entered();
        let _bound = tracelight::bind("tenant", "acme");
        let err = chain();
        tracing::error!(
            error = &err as &dyn std::error::Error,
            order_id = "abc-456",
            amount = 99.5,
            items = 3u64,
            big = u64::MAX,
            retried = true,
            note = "quote \" and\nnewline",
            "charge failed"
        );
        // Below the filter: no line, so no record.
        tracing::debug!("not taken by any stream");
    }
    tracing::info!("after the request");
    guard.shutdown();

    let rec = rotel.wait_log("charge failed");
    rotel.wait_log("after the request");
    assert!(
        !rotel.output().contains("not taken by any stream"),
        "{}",
        rotel.output()
    );
    assert_eq!(
        rec.attr("exception.type").map(|t| t.contains("Chained")),
        Some(true),
        "{}",
        rec.text
    );
    assert_eq!(
        rec.attr("exception.message"),
        Some("Str(checkout failed)"),
        "{}",
        rec.text
    );
    // The chain, as Rust prints one (rotel shows the attribute's lines as they are).
    assert!(
        rec.text.contains(
            "exception.stacktrace: Str(checkout failed\n\nCaused by:\n    0: payment declined\n    1: connection reset by peer)"
        ),
        "{}",
        rec.text
    );
    assert_eq!(rec.attr("tracelight.error.field"), Some("Str(error)"));
    assert_eq!(
        rec.attr("request_id"),
        Some("Str(req-7f3a)"),
        "{}",
        rec.text
    );
    assert_eq!(rec.attr("tenant"), Some("Str(acme)"), "{}", rec.text);
    assert_eq!(rec.attr("order_id"), Some("Str(abc-456)"));
    assert_eq!(rec.attr("amount"), Some("Double(99.5)"));
    assert_eq!(rec.attr("items"), Some("Int(3)"));
    assert_eq!(rec.attr("big"), Some("Str(18446744073709551615)"));
    assert_eq!(rec.attr("retried"), Some("Bool(true)"));
    assert!(rec
        .attr("code.file.path")
        .is_some_and(|f| f.contains("otel_log_records.rs")));
    assert_eq!(rec.get("SeverityText"), Some("ERROR"), "{}", rec.text);

    // The line of the same event: the same timestamp to the microsecond, the same fingerprint.
    let line = lines
        .lines()
        .into_iter()
        .find(|l| l.contains("charge failed"))
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    let ts = rec.get("Timestamp").unwrap_or_default();
    assert_eq!(
        ts.parse::<u64>().ok(),
        Some(line_nanos(v["timestamp"].as_str().unwrap())),
        "{}\n{line}",
        rec.text
    );
    assert_eq!(
        rec.attr("error_fingerprint"),
        Some(&*format!(
            "Str({})",
            v["error_fingerprint"].as_str().unwrap()
        ))
    );
    // One record per event: the stock bridge did not build a second one.
    assert_eq!(records_of(&rotel, "charge failed"), 1, "{}", rotel.output());
}

#[test]
fn a_pipeline_composed_by_hand_gets_its_records_from_the_layer_above_it() {
    let rotel = Rotel::start();
    let config = OtelConfig::new()
        .endpoint(rotel.http_url())
        .traces_batch(fast())
        .logs_batch(fast());
    let otel = OtelPipeline::start(&config, "composed").unwrap().unwrap();
    let lines = tracelight::sink::MemoryWriter::new();
    let (layer, guard) = tracelight::builder()
        .service("composed")
        .format(Format::Json)
        .writer(lines.clone())
        .build()
        .unwrap();
    let subscriber = tracing_subscriber::registry()
        .with(otel.layer())
        .with(layer);
    tracing::subscriber::with_default(subscriber, || {
        let _req = tracing::info_span!("request", request_id = "req-hand").entered();
        let err = chain();
        tracing::error!(error = &err as &dyn std::error::Error, "composed failure");
    });
    otel.shutdown();
    drop(guard);
    let rec = rotel.wait_log("composed failure");
    assert_eq!(
        rec.attr("request_id"),
        Some("Str(req-hand)"),
        "{}",
        rec.text
    );
    assert!(rec.attr("exception.stacktrace").is_some(), "{}", rec.text);
    assert_eq!(rec.trace_id().len(), 32, "{}", rec.text);
    assert_eq!(
        records_of(&rotel, "composed failure"),
        1,
        "{}",
        rotel.output()
    );
}

#[test]
fn with_the_parts_the_one_that_writes_lines_builds_the_records() {
    let rotel = Rotel::start();
    let config = OtelConfig::new()
        .endpoint(rotel.http_url())
        .traces_batch(fast())
        .logs_batch(fast());
    let otel = OtelPipeline::start(&config, "parts").unwrap().unwrap();
    let lines = tracelight::sink::MemoryWriter::new();
    // The correlation part, which writes no line, comes first: it must leave the records to the
    // JSON part above it.
    let subscriber = tracing_subscriber::registry()
        .with(otel.layer())
        .with(tracelight::CorrelationLayer::new().unwrap())
        .with(
            tracelight::JsonLayer::from_builder(tracelight::builder().writer(lines.clone()))
                .unwrap(),
        );
    tracing::subscriber::with_default(subscriber, || {
        let _req = tracing::info_span!("request", request_id = "req-parts").entered();
        let err = chain();
        tracing::error!(error = &err as &dyn std::error::Error, "parts failure");
    });
    otel.shutdown();
    let rec = rotel.wait_log("parts failure");
    assert_eq!(
        rec.attr("request_id"),
        Some("Str(req-parts)"),
        "{}",
        rec.text
    );
    assert_eq!(rec.attr("exception.message"), Some("Str(checkout failed)"));
    assert_eq!(records_of(&rotel, "parts failure"), 1, "{}", rotel.output());
}

#[test]
fn a_layer_reloaded_in_builds_the_records_after_it() {
    let rotel = Rotel::start();
    let config = OtelConfig::new()
        .endpoint(rotel.http_url())
        .traces_batch(fast())
        .logs_batch(fast());
    let otel = OtelPipeline::start(&config, "reloaded").unwrap().unwrap();
    let build = || {
        tracelight::builder()
            .service("reloaded")
            .writer(tracelight::sink::MemoryWriter::new())
            .build()
            .unwrap()
    };
    let (first, first_guard) = build();
    let (second, second_guard) = build();
    let (layer, handle) = tracing_subscriber::reload::Layer::new(first);
    let subscriber = tracing_subscriber::registry()
        .with(otel.layer())
        .with(layer);
    tracing::subscriber::with_default(subscriber, || {
        let err = chain();
        tracing::error!(error = &err as &dyn std::error::Error, "before the reload");
        handle.reload(second).unwrap();
        tracing::error!(error = &err as &dyn std::error::Error, "after the reload");
        // The replaced layer's state gone as well: records go on (built by the new layer, or
        // by the stock bridge), none lost and none twice.
        drop(first_guard);
        tracing::error!(error = &err as &dyn std::error::Error, "later still");
    });
    otel.shutdown();
    drop(second_guard);
    for body in ["before the reload", "after the reload"] {
        let rec = rotel.wait_log(body);
        // Built from tracelight's capture (the stock bridge has no stack trace).
        assert!(rec.attr("exception.stacktrace").is_some(), "{}", rec.text);
        assert_eq!(records_of(&rotel, body), 1, "{}", rotel.output());
    }
    rotel.wait_log("later still");
    assert_eq!(records_of(&rotel, "later still"), 1, "{}", rotel.output());
}

#[test]
fn a_field_named_like_a_context_entry_does_not_repeat_its_key() {
    let rotel = Rotel::start();
    let guard = tracelight::builder()
        .service("keys")
        .writer(tracelight::sink::MemoryWriter::new())
        .otel(
            OtelConfig::new()
                .endpoint(rotel.http_url())
                .logs_batch(fast())
                .traces_batch(fast()),
        )
        .init_local()
        .unwrap();
    {
        let _req = tracing::info_span!("request", request_id = "req-keys").entered();
        let _bound = tracelight::bind("tenant", "acme");
        tracing::info!(tenant = "other", "two tenants");
    }
    guard.shutdown();
    let rec = rotel.wait_log("two tenants");
    let tenants: Vec<_> = rec
        .attributes
        .iter()
        .filter(|(k, _)| k == "tenant")
        .collect();
    assert_eq!(tenants.len(), 1, "{}", rec.text);
    assert_eq!(rec.attr("tenant"), Some("Str(acme)"));
    assert!(
        rec.attributes
            .iter()
            .any(|(k, v)| k != "tenant" && k.contains("tenant") && v == "Str(other)"),
        "{}",
        rec.text
    );
}

/// An event with an explicit `parent:` does not take the ids of the span the thread is in, in
/// its line or in its record (its parent's are not read: that would start the parent's
/// OpenTelemetry span); one with `parent: None` neither.
#[test]
fn an_explicit_parent_does_not_take_the_entered_spans_ids() {
    let rotel = Rotel::start();
    let lines = tracelight::sink::MemoryWriter::new();
    let guard = tracelight::builder()
        .service("parents")
        .format(Format::Json)
        .writer(lines.clone())
        .otel(
            OtelConfig::new()
                .endpoint(rotel.http_url())
                .traces_batch(fast())
                .logs_batch(fast()),
        )
        .init_local()
        .unwrap();
    let job = tracing::info_span!("background_job");
    {
        let _req = tracing::info_span!("request").entered();
        tracing::info!("in the request");
        tracing::info!(parent: &job, "for the job");
        tracing::info!(parent: None, "in no span");
    }
    drop(job);
    guard.shutdown();

    let json = |text: &str| -> serde_json::Value {
        let line = lines
            .lines()
            .into_iter()
            .find(|l| l.contains(text))
            .unwrap_or_else(|| panic!("no line {text:?}:\n{}", lines.contents()));
        serde_json::from_str(&line).unwrap()
    };
    let request = rotel.wait_span("request");
    let job_span = rotel.wait_span("background_job");
    assert_ne!(request.trace_id(), job_span.trace_id());
    let in_request = json("in the request");
    assert_eq!(in_request["span_id"], request.span_id());
    let for_job = json("for the job");
    assert!(for_job.get("trace_id").is_none(), "{for_job}");
    let nowhere = json("in no span");
    assert!(nowhere.get("trace_id").is_none(), "{nowhere}");

    let rec = rotel.wait_log("for the job");
    assert_ne!(rec.trace_id(), request.trace_id(), "{}", rec.text);
    assert!(
        rec.trace_id().is_empty() || rec.trace_id().trim_matches('0').is_empty(),
        "{}",
        rec.text
    );
    let rec = rotel.wait_log("in no span");
    assert!(
        rec.trace_id().is_empty() || rec.trace_id().trim_matches('0').is_empty(),
        "{}",
        rec.text
    );
}
