//! The text line: `2024-12-16 14:49:36.123 INFO  target:166 [span] | message | key=value …`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use tracelight::sink::MemoryWriter;
use tracelight::Format;
use tracing::{info, info_span, warn};

fn text(ansi: bool, f: impl FnOnce()) -> String {
    let w = MemoryWriter::new();
    {
        let _g = tracelight::builder()
            .format(Format::Text)
            .ansi(ansi)
            .writer(w.clone())
            .init_local()
            .expect("init");
        f();
    }
    w.contents()
}

#[test]
fn the_shape_of_a_text_line() {
    let out = text(false, || {
        let span = info_span!("process_order", order_id = "abc-456", request_id = "r-1");
        let _e = span.enter();
        info!(
            user_id = 42u64,
            total = 99.99,
            note = "two words",
            "order_created"
        );
    });
    let line = out.as_str();
    // 2026-11-21 20:24:34.335 INFO  text_format:27 [process_order] | order_created | user_id=42 …
    let (time, rest) = line.split_at(23);
    assert_eq!(time.as_bytes()[10], b' ');
    assert_eq!(time.as_bytes()[19], b'.');
    assert!(rest.starts_with(" INFO  text_format:"), "{line}");
    assert!(
        rest.contains(" [process_order] | order_created |"),
        "{line}"
    );
    assert!(
        rest.contains(" | order_created | user_id=42 total=99.99 note=\"two words\" order_id=abc-456 request_id=r-1\n"),
        "{line}"
    );
}

#[test]
fn newlines_and_control_characters_stay_on_one_line() {
    let out = text(false, || warn!(value = "a\nb\r\u{1b}[31mc", "multi\nline"));
    assert_eq!(out.matches('\n').count(), 1, "{out:?}");
    assert!(out.contains("| multi\\nline |"), "{out}");
    assert!(out.contains("value=\"a\\nb\\r\\u001b[31mc\""), "{out}");
}

#[test]
fn colours_only_when_asked() {
    assert!(!text(false, || info!("x")).contains('\u{1b}'));
    let coloured = text(true, || info!(k = 1, "x"));
    assert!(coloured.contains("\u{1b}[32mINFO\u{1b}[0m"), "{coloured:?}");
}

#[test]
fn secrets_are_redacted_in_text_too() {
    let out = text(false, || {
        info!(
            password = "hunter2",
            auth = "Bearer abcdefgh12345678",
            "login"
        )
    });
    assert!(
        !out.contains("hunter2") && !out.contains("abcdefgh12345678"),
        "{out}"
    );
    assert!(out.contains("password=[REDACTED]"), "{out}");
}

#[test]
fn span_pairs_follow_records_and_binds_within_one_span() {
    // A span's pairs are rendered once and reused: a record or a bind must show on the next line.
    let out = text(false, || {
        let span = info_span!("job", attempt = 1u64, stage = tracing::field::Empty);
        let _e = span.enter();
        info!("first");
        span.record("attempt", 2u64);
        span.record("stage", "load");
        info!("second");
        tracelight::bind("user_id", 7u64);
        info!("third");
        tracelight::bind("user_id", 8u64);
        info!("fourth");
    });
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert!(lines[0].ends_with("| first | attempt=1"), "{}", lines[0]);
    assert!(
        lines[1].ends_with("| second | attempt=2 stage=load"),
        "{}",
        lines[1]
    );
    assert!(
        lines[2].ends_with("attempt=2 stage=load user_id=7"),
        "{}",
        lines[2]
    );
    assert!(
        lines[3].ends_with("attempt=2 stage=load user_id=8"),
        "{}",
        lines[3]
    );
}

#[test]
fn bytes_a_terminal_acts_on_are_escaped_in_every_place() {
    // C1 CSI, right-to-left override, DEL, line separator: in a field, a message, a target-like
    // span field and a key.
    let hostile = "a\u{9b}31m\u{202e}b\u{7f}c\u{2028}d";
    for ansi in [false, true] {
        let out = text(ansi, || {
            let span = info_span!("request", path = hostile);
            let _e = span.enter();
            info!(user_agent = hostile, "{hostile}");
        });
        for raw in ["\u{9b}", "\u{202e}", "\u{7f}", "\u{2028}"] {
            assert!(!out.contains(raw), "{raw:?} written raw: {out:?}");
        }
        assert!(out.contains("\\u202e") && out.contains("\\u009b"), "{out}");
        assert_eq!(out.lines().count(), 1, "{out:?}");
    }
}
