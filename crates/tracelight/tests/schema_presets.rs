//! The schema presets (`LOG_SCHEMA=ecs|gcp|datadog|otel`): each line is checked against the
//! store's documented field list, keeps one line and unique keys whatever the fields are called,
//! and carries the trace ids the store's way.
#![cfg(feature = "otel")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use proptest::prelude::*;
use serde_json::Value;
use tracelight::sink::MemoryWriter;
use tracelight::{Format, Output, Schema, Stream};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::layer::SubscriberExt as _;

#[derive(Debug)]
struct Declined;
impl fmt::Display for Declined {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("card declined")
    }
}
impl std::error::Error for Declined {}

#[derive(Debug)]
struct PaymentFailed(Declined);
impl fmt::Display for PaymentFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("payment failed")
    }
}
impl std::error::Error for PaymentFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// The lines `run` logs under `schema`, inside an OpenTelemetry span of the application's own
/// layer; and that span's trace id, span id.
fn lines_of(schema: Schema, run: impl FnOnce()) -> (Vec<String>, String, String) {
    lines_with(schema, &[], run)
}

/// [`lines_of`] with static fields of these names and values.
fn lines_with(
    schema: Schema,
    statics: &[(String, String)],
    run: impl FnOnce(),
) -> (Vec<String>, String, String) {
    let lines = MemoryWriter::new();
    let mut b = tracelight::builder();
    for (k, v) in statics {
        b = b.field(k.clone(), v.as_str());
    }
    let (layer, guard) = b
        .service("shop")
        .env("production")
        .field("region", "eu-west-1")
        .schema(schema)
        .gcp_project("shop-prod")
        .span_list(true)
        .format(Format::Json)
        .stream(Stream::new("app", Output::Writer(Arc::new(lines.clone()))).format(Format::Json))
        .build()
        .unwrap();
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    let otel = tracing_opentelemetry::layer().with_tracer(provider.tracer("app"));
    let subscriber = tracing_subscriber::registry().with(layer).with(otel);
    let ids = tracing::subscriber::with_default(subscriber, || {
        let span = tracing::info_span!("checkout", request_id = "req-7", order_id = 17);
        let _e = span.enter();
        run();
        let cx = span.context();
        let sc = cx.span().span_context().clone();
        (sc.trace_id().to_string(), sc.span_id().to_string())
    });
    guard.flush();
    (lines.lines(), ids.0, ids.1)
}

/// The line's root keys, in order, duplicates kept.
fn root_keys(line: &str) -> Vec<String> {
    struct Keys;
    impl<'de> serde::de::Visitor<'de> for Keys {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Vec<String>, A::Error> {
            let mut out = Vec::new();
            while let Some((k, _)) = map.next_entry::<String, serde::de::IgnoredAny>()? {
                out.push(k);
            }
            Ok(out)
        }
    }
    struct Seed;
    impl<'de> serde::de::DeserializeSeed<'de> for Seed {
        type Value = Vec<String>;
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Vec<String>, D::Error> {
            d.deserialize_map(Keys)
        }
    }
    let mut de = serde_json::Deserializer::from_str(line);
    serde::de::DeserializeSeed::deserialize(Seed, &mut de).expect("a JSON object")
}

/// One line per event, and no key twice at its root.
fn parse_line(line: &str) -> serde_json::Map<String, Value> {
    assert!(!line.contains('\n'), "{line}");
    let keys = root_keys(line);
    let mut sorted = keys.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), keys.len(), "a key twice: {line}");
    match serde_json::from_str(line).expect("JSON") {
        Value::Object(m) => m,
        _ => panic!("not an object: {line}"),
    }
}

fn log_info_and_error() {
    tracing::info!(user_id = 42, "order placed");
    let err = PaymentFailed(Declined);
    tracing::error!(
        error = &err as &(dyn std::error::Error + 'static),
        "charge failed"
    );
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

fn is_rfc3339_micros(s: &str) -> bool {
    s.len() == 27 && s.ends_with('Z') && s.as_bytes()[10] == b'T'
}

/// What tracelight wrote itself: the line less the event's and the span's fields.
fn own_keys(m: &serde_json::Map<String, Value>) -> BTreeMap<String, Value> {
    m.iter()
        .filter(|(k, _)| !matches!(k.as_str(), "user_id" | "request_id" | "region"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The ECS field reference (ECS 8.11) for the fields tracelight writes: name and JSON type.
const ECS_FIELDS: &[(&str, &str)] = &[
    ("@timestamp", "date"),
    ("log.level", "keyword"),
    ("message", "text"),
    ("ecs.version", "keyword"),
    ("log.logger", "keyword"),
    ("log.origin.file.name", "keyword"),
    ("log.origin.file.line", "long"),
    ("service.name", "keyword"),
    ("service.environment", "keyword"),
    ("host.hostname", "keyword"),
    ("process.pid", "long"),
    ("process.thread.name", "keyword"),
    ("trace.id", "keyword"),
    ("span.id", "keyword"),
    ("error.type", "keyword"),
    ("error.message", "text"),
    ("error.stack_trace", "wildcard"),
    ("labels.error_fingerprint", "keyword"),
];

fn ecs_type_ok(ty: &str, v: &Value) -> bool {
    match ty {
        "long" => v.is_u64() || v.is_i64(),
        "date" => v.as_str().is_some_and(is_rfc3339_micros),
        _ => v.is_string(),
    }
}

#[test]
fn ecs_lines_hold_ecs_fields_only() {
    let (lines, trace_id, span_id) = lines_of(Schema::Ecs, log_info_and_error);
    assert_eq!(lines.len(), 2, "{lines:?}");
    for line in &lines {
        let m = parse_line(line);
        // ecs-logging: `@timestamp`, `log.level` and `message` come first, in this order.
        assert_eq!(
            &root_keys(line)[..3],
            ["@timestamp", "log.level", "message"],
            "{line}"
        );
        for (k, v) in own_keys(&m) {
            if matches!(k.as_str(), "tracing.span" | "tracing.spans") {
                continue; // tracelight's span objects, outside ECS's `span` field set
            }
            let ty = ECS_FIELDS
                .iter()
                .find(|(name, _)| *name == k)
                .map(|(_, t)| *t)
                .unwrap_or_else(|| panic!("{k} is not an ECS field: {line}"));
            assert!(
                ecs_type_ok(ty, &v),
                "{k} = {v} is not of ECS type {ty}: {line}"
            );
        }
        assert_eq!(m["ecs.version"], "8.11.0");
        assert_eq!(m["service.name"], "shop");
        assert_eq!(m["service.environment"], "production");
        assert_eq!(m["trace.id"], trace_id.as_str());
        assert_eq!(m["span.id"], span_id.as_str());
        assert_eq!(m["tracing.span"]["name"], "checkout");
        assert_eq!(m["region"], "eu-west-1");
        assert_eq!(m["request_id"], "req-7");
    }
    let info = parse_line(&lines[0]);
    assert_eq!(info["log.level"], "info");
    assert_eq!(info["user_id"], 42);
    let error = parse_line(&lines[1]);
    assert_eq!(error["log.level"], "error");
    assert_eq!(error["error.type"], "PaymentFailed");
    assert_eq!(error["error.message"], "payment failed");
    assert_eq!(error["error.stack_trace"], "payment failed\ncard declined");
    assert!(is_hex(
        error["labels.error_fingerprint"].as_str().unwrap(),
        16
    ));
}

/// Cloud Logging's `LogSeverity` names.
const GCP_SEVERITIES: &[&str] = &[
    "DEFAULT",
    "DEBUG",
    "INFO",
    "NOTICE",
    "WARNING",
    "ERROR",
    "CRITICAL",
    "ALERT",
    "EMERGENCY",
];

#[test]
fn gcp_lines_use_the_special_fields_of_structured_logging() {
    let (lines, trace_id, span_id) = lines_of(Schema::Gcp, || {
        tracing::warn!(user_id = 42, "slow card check");
        log_info_and_error();
    });
    assert_eq!(lines.len(), 3, "{lines:?}");
    for line in &lines {
        let m = parse_line(line);
        assert!(is_rfc3339_micros(m["time"].as_str().unwrap()), "{line}");
        assert!(
            GCP_SEVERITIES.contains(&m["severity"].as_str().unwrap()),
            "{line}"
        );
        assert!(m["message"].is_string());
        let loc = m["logging.googleapis.com/sourceLocation"]
            .as_object()
            .unwrap();
        assert!(
            loc["file"].as_str().unwrap().ends_with("schema_presets.rs"),
            "{line}"
        );
        // LogEntrySourceLocation.line is an int64: a string in the JSON mapping.
        assert!(
            loc["line"].as_str().unwrap().parse::<u32>().is_ok(),
            "{line}"
        );
        assert_eq!(loc["function"], "schema_presets");
        assert_eq!(
            m["logging.googleapis.com/trace"],
            format!("projects/shop-prod/traces/{trace_id}").as_str()
        );
        assert_eq!(m["logging.googleapis.com/spanId"], span_id.as_str());
        assert_eq!(m["logging.googleapis.com/trace_sampled"], true);
        // No other key in Cloud Logging's namespace (a misspelt special field stays in the
        // payload unnoticed).
        for k in m
            .keys()
            .filter(|k| k.starts_with("logging.googleapis.com/"))
        {
            assert!(
                ["sourceLocation", "trace", "spanId", "trace_sampled"]
                    .iter()
                    .any(|s| k.ends_with(s)),
                "{k}"
            );
        }
        assert_eq!(m["service"], "shop");
    }
    let sev: Vec<_> = lines
        .iter()
        .map(|l| parse_line(l)["severity"].clone())
        .collect();
    assert_eq!(sev, ["WARNING", "INFO", "ERROR"]);
}

#[test]
fn gcp_without_a_project_keeps_the_trace_id_and_says_so() {
    let lines = MemoryWriter::new();
    let guard = tracelight::builder()
        .schema(Schema::Gcp)
        .format(Format::Json)
        .writer(lines.clone())
        .init_local()
        .unwrap();
    drop(guard);
    let warning = lines
        .lines()
        .into_iter()
        .find(|l| l.contains("GOOGLE_CLOUD_PROJECT"))
        .expect("a start-up warning");
    let m = parse_line(&warning);
    assert_eq!(m["severity"], "WARNING", "{warning}");
}

/// Datadog's status values (the status remapper's names, lower case).
const DATADOG_STATUSES: &[&str] = &["trace", "debug", "info", "warn", "error"];

#[test]
fn datadog_lines_use_the_reserved_and_standard_attributes() {
    let (lines, trace_id, span_id) = lines_of(Schema::Datadog, log_info_and_error);
    assert_eq!(lines.len(), 2, "{lines:?}");
    let low = u64::from_str_radix(&trace_id[16..], 16).unwrap();
    let span = u64::from_str_radix(&span_id, 16).unwrap();
    for line in &lines {
        let m = parse_line(line);
        assert!(
            is_rfc3339_micros(m["timestamp"].as_str().unwrap()),
            "{line}"
        );
        assert!(
            DATADOG_STATUSES.contains(&m["status"].as_str().unwrap()),
            "{line}"
        );
        assert_eq!(m["service"], "shop");
        assert_eq!(m["env"], "production");
        assert!(m["host"].is_string());
        assert_eq!(m["logger.name"], "schema_presets");
        assert!(m["logger.thread_name"].is_string());
        // Datadog's correlation: the low 64 bits of the trace id, in decimal.
        assert_eq!(m["dd.trace_id"], low.to_string().as_str(), "{line}");
        assert_eq!(m["dd.span_id"], span.to_string().as_str(), "{line}");
        assert!(
            m.get("level").is_none() && m.get("trace_id").is_none(),
            "{line}"
        );
    }
    let error = parse_line(&lines[1]);
    assert_eq!(error["error.kind"], "PaymentFailed");
    assert_eq!(error["error.message"], "payment failed");
    assert_eq!(error["error.stack"], "payment failed\ncard declined");
    assert!(is_hex(error["error.fingerprint"].as_str().unwrap(), 16));
}

#[test]
fn otel_lines_use_the_log_data_model() {
    let (lines, trace_id, span_id) = lines_of(Schema::Otel, log_info_and_error);
    assert_eq!(lines.len(), 2, "{lines:?}");
    for (line, (text, number)) in lines.iter().zip([("INFO", 9), ("ERROR", 17)]) {
        let m = parse_line(line);
        assert!(
            is_rfc3339_micros(m["Timestamp"].as_str().unwrap()),
            "{line}"
        );
        assert_eq!(m["SeverityText"], text);
        assert_eq!(m["SeverityNumber"], number);
        assert!(m["Body"].is_string());
        assert_eq!(m["TraceId"], trace_id.as_str());
        assert_eq!(m["SpanId"], span_id.as_str());
        assert_eq!(m["InstrumentationScope"]["Name"], "schema_presets");
        assert_eq!(m["Resource"]["service.name"], "shop");
        assert_eq!(m["Resource"]["deployment.environment.name"], "production");
        assert!(m["Resource"]["host.name"].is_string());
        assert!(m["Resource"]["process.pid"].is_u64());
        assert!(m["code.file.path"]
            .as_str()
            .unwrap()
            .ends_with("schema_presets.rs"));
        assert!(m["code.line.number"].is_u64());
        assert!(m["thread.name"].is_string());
    }
    let error = parse_line(&lines[1]);
    assert_eq!(error["exception.type"], "PaymentFailed");
    assert_eq!(error["exception.message"], "payment failed");
    assert_eq!(
        error["exception.stacktrace"],
        "payment failed\ncard declined"
    );
}

/// Names that some preset writes itself, and tracelight's reserved keys.
const TAKEN: &[&str] = &[
    "log",
    "ecs",
    "process",
    "trace",
    "labels",
    "tracing",
    "logger",
    "dd",
    "code",
    "exception",
    "log.origin",
    "@timestamp",
    "log.level",
    "message",
    "ecs.version",
    "service.name",
    "trace.id",
    "span.id",
    "error.type",
    "error.message",
    "tracing.span",
    "time",
    "severity",
    "logging.googleapis.com/trace",
    "logging.googleapis.com/sourceLocation",
    "status",
    "dd.trace_id",
    "logger.name",
    "error.kind",
    "error.stack",
    "Timestamp",
    "SeverityText",
    "SeverityNumber",
    "Body",
    "Resource",
    "TraceId",
    "thread.name",
    "exception.type",
    "timestamp",
    "level",
    "span",
    "error",
    "replayed",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    /// Any field names, taken or not, and any values, as static, context and event fields:
    /// one valid line with unique root keys, in every preset, and the preset's own keys keep
    /// their values.
    #[test]
    fn any_fields_keep_one_line_and_unique_keys(
        names in prop::collection::vec(prop_oneof![
            prop::sample::select(TAKEN).prop_map(str::to_string),
            "[a-z@./]{1,12}",
        ], 1..5),
        value in any::<String>(),
    ) {
        let statics: Vec<(String, String)> =
            names.iter().map(|n| (n.clone(), value.clone())).collect();
        for schema in Schema::ALL {
            let (names, value) = (names.clone(), value.clone());
            let (lines, _, _) = lines_with(schema, &statics, move || {
                for n in &names {
                    tracelight::bind(n, value.as_str());
                }
                tracing::info!(
                    { "@timestamp" = 1, "log.level" = 2, "service.name" = 3, "Body" = 4,
                      "severity" = 5, "status" = 6, "dd.trace_id" = 7, "time" = 8,
                      "level" = 9, "logger.name" = 10 },
                    "{value}"
                );
            });
            prop_assert_eq!(lines.len(), 1, "{:?}", lines);
            let line = &lines[0];
            let m = parse_line(line);
            prop_assert_eq!(Schema::detect(line.as_bytes()), Some(schema), "{}", line);
            prop_assert_eq!(&m[schema.level_key()], &Value::from(schema.level_name(2)));
            prop_assert!(m[schema.timestamp_key()].is_string(), "{}", line);
            // No field is the parent of a key the preset wrote (`log` beside `log.level`): the
            // stores that read dotted keys as objects would refuse the line.
            if matches!(schema, Schema::Ecs | Schema::Datadog | Schema::Otel) {
                for own in schema.own_keys().iter().filter(|k| m.contains_key(**k)) {
                    for k in m.keys() {
                        prop_assert!(
                            !own.starts_with(&format!("{k}.")),
                            "{} is the parent of {}: {}", k, own, line
                        );
                    }
                }
            }
            // The event's own values are all there, under their names or renamed.
            for (name, v) in [("@timestamp", 1), ("level", 9), ("time", 8), ("Body", 4)] {
                prop_assert!(
                    m.iter().any(|(k, x)| (k == name || k.starts_with(&format!("fields.{name}")))
                        && x.as_i64() == Some(v)),
                    "{} = {} is missing: {}", name, v, line
                );
            }
        }
    }
}
