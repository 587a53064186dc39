//! The text format against hostile keys and values: every line parses back, by the grammar the
//! format documents (logfmt, with a key or value that needs it written as a JSON string), to the
//! keys and values logged; and every C0/C1 control, DEL, bidi control and line/paragraph separator
//! is escaped in fields, messages, span fields, keys, paths and headers — also on a real
//! pseudo-terminal, where the format turns colours on.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(unsafe_code)] // openpty, for the pseudo-terminal test

use proptest::prelude::*;
use tracelight::sink::MemoryWriter;
use tracelight::Format;

fn text_of(f: impl FnOnce()) -> String {
    let w = MemoryWriter::new();
    {
        let _g = tracelight::builder()
            .format(Format::Text)
            .ansi(false)
            .without_redaction()
            .writer(w.clone())
            .init_local()
            .expect("init");
        f();
    }
    w.contents()
}

/// A logfmt reader for the pairs after `| message |`: `key=value` separated by one space, a key or
/// value either bare (no space, `"`, `=`, `|`, `\`) or a JSON string.
fn parse_pairs(line: &str) -> Vec<(String, String)> {
    let line = line.trim_end_matches('\n');
    let rest = line
        .split_once(" | m |")
        .unwrap_or_else(|| panic!("no message: {line:?}"))
        .1;
    let mut out = Vec::new();
    let mut s = rest;
    while !s.is_empty() {
        s = s
            .strip_prefix(' ')
            .unwrap_or_else(|| panic!("no separator at {s:?} in {line:?}"));
        let (key, after) = token(s, '=', line);
        s = after
            .strip_prefix('=')
            .unwrap_or_else(|| panic!("no = at {after:?} in {line:?}"));
        let (value, after) = token(s, ' ', line);
        out.push((key, value));
        s = after;
    }
    out
}

/// One bare or quoted token, and what follows it.
fn token<'a>(s: &'a str, end: char, line: &str) -> (String, &'a str) {
    if s.starts_with('"') {
        let mut stream = serde_json::Deserializer::from_str(s).into_iter::<String>();
        let v = stream
            .next()
            .unwrap_or_else(|| panic!("no string at {s:?}"))
            .unwrap_or_else(|e| panic!("{e} at {s:?} in {line:?}"));
        (v, &s[stream.byte_offset()..])
    } else {
        let n = s.find(end).unwrap_or(s.len());
        let t = &s[..n];
        assert!(
            !t.contains(['"', '\\', '|']) && !t.chars().any(char::is_control),
            "bare token {t:?} in {line:?}"
        );
        (t.to_owned(), &s[n..])
    }
}

/// Characters that make keys and values hard: separators, quotes, escapes, controls, bidi.
fn hostile_char() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => proptest::char::range('a', 'z'),
        1 => Just(' '),
        1 => Just('='),
        1 => Just('"'),
        1 => Just('\\'),
        1 => Just('|'),
        1 => Just('\n'),
        1 => Just('\u{1b}'),
        1 => Just('\u{7f}'),
        1 => Just('\u{9b}'),
        1 => Just('\u{202e}'),
        1 => Just('\u{2028}'),
        1 => Just('é'),
        1 => proptest::char::any(),
    ]
}

fn hostile(min: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(hostile_char(), min..12).prop_map(|v| v.into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn hostile_keys_and_values_read_back(
        key in hostile(1),
        bound in hostile(0),
        value in hostile(0),
    ) {
        // A bound key: tracelight's own prefix keeps it off the reserved names.
        let key = format!("k{key}");
        let out = text_of(|| {
            let span = tracing::info_span!("s");
            let _e = span.enter();
            tracelight::bind(&key, bound.as_str());
            tracing::info!(v = value.as_str(), "m");
        });
        prop_assert_eq!(out.lines().count(), 1, "{:?}", out);
        let pairs = parse_pairs(&out);
        prop_assert_eq!(pairs, vec![("v".to_owned(), value.clone()), (key.clone(), bound.clone())], "{:?}", out);
    }
}

/// Every code point a terminal or a text viewer acts on.
fn dangerous() -> Vec<char> {
    (0u32..0x20)
        .chain([0x7f])
        .chain(0x80..0xa0)
        .chain(0x202a..=0x202e)
        .chain(0x2066..=0x2069)
        .chain([0x2028, 0x2029])
        .filter_map(char::from_u32)
        .collect()
}

fn assert_escaped(out: &str, c: char) {
    let line = out
        .strip_suffix('\n')
        .unwrap_or_else(|| panic!("one line: {out:?}"));
    assert!(!line.contains(c), "{c:?} written raw: {out:?}");
}

#[test]
fn every_control_and_bidi_code_point_is_escaped_in_every_place() {
    for c in dangerous() {
        let s = format!("a{c}b");
        for format in [Format::Text, Format::Json] {
            let w = MemoryWriter::new();
            {
                let _g = tracelight::builder()
                    .format(format)
                    .ansi(false)
                    .writer(w.clone())
                    .init_local()
                    .unwrap();
                let span = tracing::info_span!("request", path = s.as_str(), user_agent = %s);
                let _e = span.enter();
                tracelight::bind(&s, s.as_str());
                tracing::info!(field = s.as_str(), debug = ?s, "{s}");
            }
            let out = w.contents();
            assert_escaped(&out, c);
            if format == Format::Json {
                let v: serde_json::Value = serde_json::from_str(&out).unwrap();
                assert_eq!(v["field"], s.as_str(), "{c:?}");
                assert_eq!(v["message"], s.as_str(), "{c:?}");
            }
        }
    }
}

/// The child side of the pseudo-terminal test: text format chosen because stdout is a terminal.
#[test]
fn pty_child() {
    if std::env::var_os("TL_TEST_PTY_CHILD").is_none() {
        return;
    }
    let all: String = dangerous().into_iter().collect();
    let guard = tracelight::builder().format(Format::Auto).init().unwrap();
    let span = tracing::info_span!("request", path = all.as_str());
    let _e = span.enter();
    tracing::warn!(user_agent = all.as_str(), "agent {all}");
    drop(_e);
    guard.flush();
}

#[test]
fn on_a_pseudo_terminal_nothing_raw_reaches_it() {
    let (mut master, mut slave) = (0, 0);
    // SAFETY: openpty writes two descriptors into the integers given; the other arguments may be
    // null.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    use std::os::fd::FromRawFd as _;
    // SAFETY: both descriptors were just opened and are owned here.
    let (master, slave) = unsafe {
        (
            std::fs::File::from_raw_fd(master),
            std::os::fd::OwnedFd::from_raw_fd(slave),
        )
    };
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["pty_child", "--exact", "--nocapture", "--test-threads=1"])
        .env("TL_TEST_PTY_CHILD", "1")
        .env_remove("NO_COLOR")
        .env_remove("LOG_FORMAT")
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::from(slave))
        .spawn()
        .unwrap();
    let reader = std::thread::spawn(move || {
        use std::io::Read as _;
        let mut master = master;
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        // Ends with EIO once the child (the last holder of the terminal's other side) exits.
        while let Ok(n) = master.read(&mut buf) {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        out
    });
    assert!(child.wait().unwrap().success());
    let out = String::from_utf8(reader.join().unwrap()).unwrap();
    let line = out
        .lines()
        .find(|l| l.contains("agent"))
        .unwrap_or_else(|| panic!("no line: {out:?}"));
    assert!(line.contains("\u{1b}["), "colours on a terminal: {line:?}");
    // The only escape sequences are the format's own colours.
    let without_colours = line
        .replace("\u{1b}[0m", "")
        .replace("\u{1b}[2m", "")
        .replace("\u{1b}[33m", "");
    for c in dangerous() {
        // The terminal turns the child's "\n" into "\r\n".
        if c == '\r' {
            continue;
        }
        assert!(
            !without_colours.contains(c),
            "{c:?} raw on the terminal: {line:?}"
        );
    }
}
