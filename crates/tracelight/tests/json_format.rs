//! The JSON line: keys, types, spans, errors, renaming, escaping.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt;

use serde_json::Value;
use tracelight::sink::MemoryWriter;
use tracelight::Format;
use tracing::{error, info, info_span, instrument, warn};

fn capture(builder: tracelight::Builder, f: impl FnOnce()) -> Vec<Value> {
    let w = MemoryWriter::new();
    {
        let _g = builder
            .format(Format::Json)
            .filter("trace")
            .writer(w.clone())
            .init_local()
            .expect("init_local");
        f();
    }
    w.lines()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("invalid JSON {e}: {l}")))
        .collect()
}

#[derive(Debug)]
struct GatewayError;
impl fmt::Display for GatewayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("gateway 402")
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

#[test]
fn every_documented_key_with_its_type() {
    let lines = capture(
        tracelight::builder()
            .service("shop")
            .env("production")
            .field("region", "eu-west-1")
            .span_list(true),
        || {
            let request = info_span!(
                "request",
                request_id = "req-1",
                method = "POST",
                path = "/orders"
            );
            let _r = request.enter();
            let process = info_span!("process_order", order_id = "abc-456");
            let _p = process.enter();
            info!(
                user_id = 42u64,
                order_id = "abc-456",
                total = 99.99f64,
                items = 3u32,
                ok = true,
                delta = -5i64,
                "order_created"
            );
        },
    );
    assert_eq!(lines.len(), 1);
    let l = &lines[0];
    let ts = l["timestamp"].as_str().expect("timestamp");
    assert_eq!(ts.len(), 27, "{ts}");
    assert!(
        ts.ends_with('Z') && ts.as_bytes()[10] == b'T' && ts.as_bytes()[19] == b'.',
        "{ts}"
    );
    assert_eq!(l["level"], "INFO");
    assert_eq!(l["message"], "order_created");
    assert_eq!(l["target"], "json_format");
    assert_eq!(l["file"], "crates/tracelight/tests/json_format.rs");
    assert!(l["line"].as_u64().is_some());
    assert_eq!(l["service"], "shop");
    assert_eq!(l["env"], "production");
    assert!(l["host"].as_str().is_some_and(|h| !h.is_empty()));
    assert_eq!(l["pid"], u64::from(std::process::id()));
    assert!(l["thread"].as_str().is_some());
    assert_eq!(l["region"], "eu-west-1");
    assert_eq!(l["request_id"], "req-1");
    assert_eq!(l["user_id"], 42);
    assert_eq!(l["total"], 99.99);
    assert_eq!(l["items"], 3);
    assert_eq!(l["ok"], true);
    assert_eq!(l["delta"], -5);
    assert_eq!(l["span"]["name"], "process_order");
    assert_eq!(l["span"]["order_id"], "abc-456");
    let spans = l["spans"].as_array().expect("spans");
    assert_eq!(spans.len(), 2);
    assert_eq!(spans[0]["name"], "request");
    assert_eq!(spans[0]["method"], "POST");
    assert_eq!(spans[1]["name"], "process_order");
    // The key order is fixed: timestamp first, level second.
    let raw = serde_json::to_string(l).expect("serialize");
    let _ = raw;
}

#[test]
fn timestamp_and_level_lead_every_line() {
    let w = MemoryWriter::new();
    {
        let _g = tracelight::builder()
            .format(Format::Json)
            .writer(w.clone())
            .init_local()
            .expect("init");
        warn!(a = 1, "x");
    }
    let line = &w.lines()[0];
    assert!(line.starts_with("{\"timestamp\":\""), "{line}");
    assert!(
        line[41..].starts_with("\",\"level\":\"WARN\",\"message\":"),
        "{line}"
    );
}

#[test]
fn error_fields_carry_type_message_and_chain() {
    let lines = capture(tracelight::builder(), || {
        let err = PaymentError {
            source: GatewayError,
        };
        error!(
            error = &err as &(dyn std::error::Error + 'static),
            order_id = "o-1",
            "payment failed"
        );
    });
    let e = &lines[0]["error"];
    assert_eq!(e["type"], "PaymentError");
    assert_eq!(e["message"], "card declined");
    assert_eq!(
        e["chain"],
        serde_json::json!(["card declined", "gateway 402"])
    );
    assert_eq!(lines[0]["order_id"], "o-1");
}

#[test]
fn display_error_field_becomes_error_message() {
    let lines = capture(tracelight::builder(), || {
        error!(error = %"connection reset", "upstream failed");
    });
    assert_eq!(lines[0]["error"]["message"], "connection reset");
}

#[test]
fn colliding_keys_are_renamed_never_duplicated() {
    let w = MemoryWriter::new();
    {
        let _g = tracelight::builder()
            .format(Format::Json)
            .field("level", "static-level")
            .writer(w.clone())
            .init_local()
            .expect("init");
        let span = info_span!("req", request_id = "r-9", name = "span-name-field");
        let _e = span.enter();
        info!(
            level = "user-level",
            timestamp = 5,
            service = "svc",
            request_id = "event-rid",
            "collide"
        );
    }
    let v = parse_unique(&w.lines()[0]);
    assert_eq!(v["level"], "INFO");
    assert_eq!(v["fields.level"], "static-level");
    assert_eq!(v["fields.level.2"], "user-level");
    assert_eq!(v["fields.timestamp"], 5);
    assert_eq!(v["fields.service"], "svc");
    assert_eq!(v["request_id"], "r-9");
    assert_eq!(v["fields.request_id"], "event-rid");
    assert_eq!(v["span"]["name"], "req");
    assert_eq!(v["span"]["fields.name"], "span-name-field");
}

#[test]
fn a_bound_reserved_key_never_repeats_a_renamed_static_field() {
    // The static `message` is written as `fields.message`; a bound `message` is renamed too,
    // and may not take that name again.
    let w = MemoryWriter::new();
    {
        let _g = tracelight::builder()
            .format(Format::Json)
            .field("message", "static")
            .writer(w.clone())
            .init_local()
            .expect("init");
        let span = info_span!("req");
        let _e = span.enter();
        tracelight::bind("message", "bound");
        info!("hello");
    }
    let v = parse_unique(&w.lines()[0]);
    assert_eq!(v["message"], "hello");
    assert_eq!(v["fields.message"], "static");
    assert_eq!(v["fields.message.2"], "bound");
}

#[test]
fn a_bound_key_never_repeats_a_static_field() {
    let w = MemoryWriter::new();
    {
        let _g = tracelight::builder()
            .format(Format::Json)
            .field("region", "eu-west-1")
            .context_field("tenant")
            .field("tenant", "static-tenant")
            .writer(w.clone())
            .init_local()
            .expect("init");
        let span = info_span!("req", tenant = "acme");
        let _e = span.enter();
        tracelight::bind("region", "us-east-1");
        info!("bound");
    }
    let v = parse_unique(&w.lines()[0]);
    assert_eq!(v["region"], "eu-west-1");
    assert_eq!(v["fields.region"], "us-east-1");
    assert_eq!(v["tenant"], "static-tenant");
    assert_eq!(v["fields.tenant"], "acme");
}

/// Parses a line, failing if its root object holds a key twice (a map would hide it).
fn parse_unique(line: &str) -> Value {
    let keys = top_level_keys(line);
    let mut sorted = keys.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), keys.len(), "duplicate key in {line}");
    serde_json::from_str(line).expect("json")
}

/// The top-level keys of a JSON object, in order, duplicates kept.
fn top_level_keys(line: &str) -> Vec<String> {
    struct Keys(Vec<String>);
    impl<'de> serde::de::Visitor<'de> for Keys {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            mut self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            while let Some((k, _)) = map.next_entry::<String, serde::de::IgnoredAny>()? {
                self.0.push(k);
            }
            Ok(self.0)
        }
    }
    struct Wrap;
    impl<'de> serde::de::DeserializeSeed<'de> for Wrap {
        type Value = Vec<String>;
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_map(Keys(Vec::new()))
        }
    }
    use serde::de::DeserializeSeed;
    let mut de = serde_json::Deserializer::from_str(line);
    Wrap.deserialize(&mut de).expect("object")
}

#[instrument(fields(stage = "outer"))]
fn outer(id: u64) {
    inner("x\ny");
}

#[instrument]
fn inner(label: &str) {
    info!("inside");
}

#[test]
fn instrumented_functions_nest() {
    let lines = capture(tracelight::builder().span_list(true), || outer(7));
    let l = &lines[0];
    assert_eq!(l["span"]["name"], "inner");
    assert_eq!(l["span"]["label"], "x\ny");
    assert_eq!(l["spans"][0]["name"], "outer");
    assert_eq!(l["spans"][0]["id"], 7);
    assert_eq!(l["spans"][0]["stage"], "outer");
}

#[test]
fn span_fields_recorded_later_replace_their_empty_value() {
    let w = MemoryWriter::new();
    {
        let _g = tracelight::builder()
            .format(Format::Json)
            .writer(w.clone())
            .init_local()
            .expect("init");
        let span = info_span!("job", status = tracing::field::Empty, attempt = 1);
        let _e = span.enter();
        span.record("status", "running");
        span.record("attempt", 2);
        info!("step");
    }
    let line = &w.lines()[0];
    assert!(
        line.contains("\"span\":{\"name\":\"job\",\"status\":\"running\",\"attempt\":2}"),
        "{line}"
    );
}

#[test]
fn span_fields_are_redacted_and_typed_when_rendered() {
    #[derive(Debug)]
    struct Card {
        _number: &'static str,
    }
    let lines = capture(tracelight::builder(), || {
        let span = info_span!(
            "login",
            password = "hunter2",
            user = "alice",
            note = "card 4111111111111111 on file",
            card = ?Card { _number: "4111111111111111" },
            retries = 3u64,
            delta = -2i64,
            ratio = 0.5f64,
            ok = true,
            big = u128::MAX,
            quote = "a \"b\"\n\u{1}",
            otel.name = "login-op",
            err = &std::io::Error::other("boom") as &(dyn std::error::Error + 'static),
        );
        let _e = span.enter();
        info!("inside");
    });
    let span = &lines[0]["span"];
    assert_eq!(span["password"], "[REDACTED]", "{span}");
    assert_eq!(span["user"], "alice");
    assert!(
        !span["note"].as_str().unwrap().contains("4111111111111111"),
        "{span}"
    );
    assert!(
        !span["card"].as_str().unwrap().contains("4111111111111111"),
        "{span}"
    );
    assert_eq!(span["retries"], 3);
    assert_eq!(span["delta"], -2);
    assert_eq!(span["ratio"], 0.5);
    assert_eq!(span["ok"], true);
    assert!(span["big"].is_number(), "{span}");
    assert_eq!(span["quote"], "a \"b\"\n\u{1}");
    assert!(span.get("otel.name").is_none(), "{span}");
    assert_eq!(span["err"]["message"], "boom");
}

#[test]
fn a_span_recorded_many_times_keeps_the_last_values_once() {
    let w = MemoryWriter::new();
    {
        let _g = tracelight::builder()
            .format(Format::Json)
            .writer(w.clone())
            .init_local()
            .expect("init");
        let span = info_span!(
            "loop",
            i = tracing::field::Empty,
            label = tracing::field::Empty
        );
        let _e = span.enter();
        info!("before");
        for i in 0..1000u64 {
            span.record("i", i);
            span.record("label", format!("step-{i}").as_str());
        }
        info!("after");
    }
    let lines = w.lines();
    let before = parse_unique(&lines[0]);
    assert_eq!(before["span"], serde_json::json!({"name": "loop"}));
    let after = parse_unique(&lines[1]);
    assert_eq!(
        after["span"],
        serde_json::json!({"name": "loop", "i": 999, "label": "step-999"})
    );
}

#[test]
fn non_finite_floats_and_big_integers_stay_valid() {
    let lines = capture(tracelight::builder(), || {
        info!(
            nan = f64::NAN,
            inf = f64::INFINITY,
            big = u128::MAX,
            small = i128::MIN,
            "numbers"
        );
    });
    assert_eq!(lines[0]["nan"], "NaN");
    assert_eq!(lines[0]["inf"], "inf");
    assert!(lines[0]["big"].is_number());
}

#[test]
fn events_outside_spans_have_no_span_key() {
    let lines = capture(tracelight::builder(), || info!("bare"));
    assert!(lines[0].get("span").is_none());
    assert!(lines[0].get("spans").is_none());
    assert!(lines[0].get("request_id").is_none());
}

#[test]
fn level_filter_applies() {
    let w = MemoryWriter::new();
    {
        let _g = tracelight::builder()
            .filter("warn")
            .writer(w.clone())
            .init_local()
            .expect("init");
        info!("hidden");
        warn!("shown");
    }
    assert_eq!(w.lines().len(), 1);
}

#[test]
fn bad_filter_is_a_clear_error() {
    let e = tracelight::builder()
        .filter("info,my_crate=loud")
        .init_local()
        .unwrap_err();
    assert!(e.to_string().contains("my_crate=loud"), "{e}");
}

#[test]
fn otel_directive_fields_are_not_written() {
    let lines = capture(tracelight::builder(), || {
        let span = info_span!(
            "request",
            path = "/x",
            otel.kind = "server",
            otel.name = "GET /x"
        );
        let _e = span.enter();
        info!("inside");
    });
    assert_eq!(
        lines[0]["span"],
        serde_json::json!({"name": "request", "path": "/x"})
    );
}

#[test]
fn a_debug_impl_runs_once_per_event_whatever_the_formats_and_streams() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use tracelight::{Output, Rule, Stream};

    static DEBUG: AtomicUsize = AtomicUsize::new(0);
    static DISPLAY: AtomicUsize = AtomicUsize::new(0);
    static MESSAGE: AtomicUsize = AtomicUsize::new(0);
    static ERROR_DEBUG: AtomicUsize = AtomicUsize::new(0);
    static ERROR_DISPLAY: AtomicUsize = AtomicUsize::new(0);

    struct Counted(&'static AtomicUsize);
    impl fmt::Debug for Counted {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            self.0.fetch_add(1, Ordering::SeqCst);
            f.write_str("counted value")
        }
    }
    impl fmt::Display for Counted {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            self.0.fetch_add(1, Ordering::SeqCst);
            f.write_str("counted text")
        }
    }
    struct CountedError;
    impl fmt::Debug for CountedError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            ERROR_DEBUG.fetch_add(1, Ordering::SeqCst);
            f.write_str("CountedError { code: 7 }")
        }
    }
    impl fmt::Display for CountedError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            ERROR_DISPLAY.fetch_add(1, Ordering::SeqCst);
            f.write_str("it failed")
        }
    }
    impl std::error::Error for CountedError {}

    let writers: Vec<MemoryWriter> = (0..4).map(|_| MemoryWriter::new()).collect();
    let stream = |name: &str, w: &MemoryWriter, format: Format| {
        Stream::new(name, Output::Writer(Arc::new(w.clone()))).format(format)
    };
    {
        let _g = tracelight::builder()
            .stream(stream("json", &writers[0], Format::Json))
            .stream(
                stream("errors", &writers[1], Format::Json)
                    .rule(Rule::min_level(tracing::Level::ERROR)),
            )
            .stream(stream("text", &writers[2], Format::Text))
            .stream(
                stream("text_errors", &writers[3], Format::Text)
                    .rule(Rule::min_level(tracing::Level::ERROR)),
            )
            .init_local()
            .expect("init_local");
        let span = info_span!("request", request_id = "r-1");
        let _e = span.enter();
        let err = CountedError;
        error!(
            value = ?Counted(&DEBUG),
            text = %Counted(&DISPLAY),
            error = &err as &dyn std::error::Error,
            "failed: {:?}",
            Counted(&MESSAGE)
        );
    }
    for w in &writers {
        assert_eq!(w.lines().len(), 1, "every stream took the event");
    }
    let json: Value = serde_json::from_str(&writers[0].lines()[0]).unwrap();
    assert_eq!(json["value"], "counted value", "{json}");
    assert_eq!(json["text"], "counted text", "{json}");
    assert_eq!(json["error"]["type"], "CountedError", "{json}");
    assert_eq!(json["error"]["chain"][0], "it failed", "{json}");
    assert!(
        writers[2].lines()[0].contains("value=\"counted value\""),
        "{}",
        writers[2].lines()[0]
    );
    assert_eq!(DEBUG.load(Ordering::SeqCst), 1, "a ? value's Debug impl");
    assert_eq!(
        DISPLAY.load(Ordering::SeqCst),
        1,
        "a % value's Display impl"
    );
    assert_eq!(MESSAGE.load(Ordering::SeqCst), 1, "the message's arguments");
    assert_eq!(
        ERROR_DEBUG.load(Ordering::SeqCst),
        1,
        "the error's Debug impl (its type)"
    );
    assert_eq!(
        ERROR_DISPLAY.load(Ordering::SeqCst),
        1,
        "the error's Display impl"
    );
}

#[test]
fn a_secret_named_error_keeps_its_type_and_loses_its_text() {
    let err = GatewayError;
    let lines = capture(tracelight::builder(), || {
        error!(
            session_error = &err as &(dyn std::error::Error + 'static),
            "login failed"
        );
    });
    let e = &lines[0]["error"];
    assert_eq!(e["type"], "GatewayError", "{}", lines[0]);
    assert_eq!(e["message"], "[REDACTED]", "{}", lines[0]);
    assert!(!lines[0].to_string().contains("gateway"), "{}", lines[0]);
}

#[test]
fn an_unterminated_private_key_in_a_span_field_still_gives_valid_json() {
    let lines = capture(tracelight::builder(), || {
        let s = info_span!(
            "job",
            key = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA"
        );
        let _e = s.enter();
        info!(other = "-----BEGIN RSA PRIVATE KEY-----\nMIIEow", "inside");
    });
    assert_eq!(lines[0]["span"]["key"], "[REDACTED]", "{}", lines[0]);
    assert_eq!(lines[0]["other"], "[REDACTED]", "{}", lines[0]);
}

#[instrument(err)]
fn charge_display() -> Result<(), PaymentError> {
    Err(PaymentError {
        source: GatewayError,
    })
}

#[instrument(err(Debug))]
fn charge_debug() -> Result<(), PaymentError> {
    Err(PaymentError {
        source: GatewayError,
    })
}

#[test]
fn instrument_err_lines_have_a_message_and_the_error() {
    let lines = capture(tracelight::builder(), || {
        let _ = charge_display();
        let _ = charge_debug();
    });
    let errors: Vec<&Value> = lines.iter().filter(|l| l["level"] == "ERROR").collect();
    assert_eq!(errors.len(), 2, "{lines:?}");
    // `err` records the Display text only: no type or chain to be had.
    assert_eq!(errors[0]["message"], "card declined", "{}", errors[0]);
    assert_eq!(
        errors[0]["error"]["message"], "card declined",
        "{}",
        errors[0]
    );
    // `err(Debug)` records the Debug text.
    let debug = errors[1]["message"].as_str().unwrap();
    assert!(debug.starts_with("PaymentError"), "{}", errors[1]);
}
