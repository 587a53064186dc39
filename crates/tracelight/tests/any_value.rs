//! Whatever a field holds, an event is exactly one valid JSON line (and one text line).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use serde_json::Value;
use tracelight::sink::MemoryWriter;
use tracelight::Format;
use tracing::info;

fn one_line(format: Format, f: impl FnOnce()) -> String {
    let w = MemoryWriter::new();
    {
        let _g = tracelight::builder()
            .format(format)
            .ansi(false)
            .without_redaction()
            .writer(w.clone())
            .init_local()
            .expect("init");
        f();
    }
    let out = w.contents();
    assert_eq!(
        out.matches('\n').count(),
        1,
        "not exactly one line: {out:?}"
    );
    assert!(out.ends_with('\n'));
    out
}

fn json(f: impl FnOnce()) -> Value {
    let line = one_line(Format::Json, f);
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("invalid JSON ({e}): {line:?}"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn any_string_field_round_trips(s in any::<String>()) {
        let v = json(|| info!(value = s.as_str(), "m"));
        prop_assert_eq!(v["value"].as_str(), Some(s.as_str()));
    }

    #[test]
    fn any_message_round_trips(s in any::<String>()) {
        let v = json(|| info!("{}", s));
        prop_assert_eq!(v["message"].as_str(), Some(s.as_str()));
    }

    #[test]
    fn any_debug_value_round_trips(s in any::<String>(), n in any::<i64>()) {
        #[derive(Debug)]
        #[allow(dead_code)]
        struct Payload<'a> { text: &'a str, n: i64 }
        let p = Payload { text: &s, n };
        let v = json(|| info!(payload = ?p, "m"));
        let want = format!("{p:?}");
        prop_assert_eq!(v["payload"].as_str(), Some(want.as_str()));
    }

    #[test]
    fn invalid_utf8_through_debug(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        use std::os::unix::ffi::OsStrExt;
        let os = std::ffi::OsStr::from_bytes(&bytes);
        let v = json(|| info!(path = ?os, raw = ?bytes, "m"));
        let want = format!("{os:?}");
        prop_assert_eq!(v["path"].as_str(), Some(want.as_str()));
    }

    #[test]
    fn any_key_and_span_value(s in any::<String>()) {
        let v = json(|| {
            let span = tracing::info_span!("s", field = s.as_str());
            let _e = span.enter();
            info!("m");
        });
        prop_assert_eq!(v["span"]["field"].as_str(), Some(s.as_str()));
    }

    #[test]
    fn ids_are_never_taken_for_secrets(
        id in "[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}",
        digits in "[0-9]{4}-[0-9]{12}",
    ) {
        let r = tracelight::redact::Redactor::default();
        prop_assert_eq!(r.redact_str(&id), id.clone());
        // The worst case: a v7 id whose last groups are all digits.
        let tail = format!("{}-{digits}", &id[..18]);
        prop_assert_eq!(r.redact_str(&tail), tail.clone());
    }

    #[test]
    fn text_is_one_line_whatever_the_value(s in any::<String>()) {
        let line = one_line(Format::Text, || info!(value = s.as_str(), "{}", s));
        prop_assert!(!line[..line.len() - 1].contains('\n'));
        prop_assert!(!line.contains('\r'));
    }
}

#[test]
fn a_one_megabyte_value_is_one_line() {
    let big: String = "a\"\n\\\u{1}é".repeat(1024 * 1024 / 7);
    let v = json(|| info!(big = big.as_str(), "big"));
    assert_eq!(v["big"].as_str().map(str::len), Some(big.len()));
}
