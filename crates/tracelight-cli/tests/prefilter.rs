//! The fast path (needles and fixed-position checks) never narrows: for random lines with quotes,
//! backslashes, unicode and look-alike text, written by differently-escaping writers, it selects
//! exactly the lines that parsing every line selects.

#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use proptest::prelude::*;
use serde_json::{json, Value};

use tracelight_cli::{search, search_bytes, Filter, Level, Query, SearchOptions, WhereExpr};

/// How a line is written.
#[derive(Debug, Clone, Copy)]
enum Writer {
    /// Compact, as tracelight writes it (timestamp first, level second).
    Tracelight,
    /// Compact, but every non-ASCII character as `\uXXXX` and `/` as `\/`.
    AsciiOnly,
    /// `": "` and `", "` separators, as Python's json.dumps writes.
    Spaced,
    /// Level before timestamp.
    Reordered,
    /// Every character outside letters, digits and the punctuation no writer escapes written
    /// as `\uXXXX` (quotes and backslashes too), as a strict JSON parse accepts.
    Escaped,
    /// Whitespace around every token, and around the line.
    Loose,
}

/// Characters that every JSON writer writes as themselves (the prefilter searches for runs of
/// these only).
fn is_plain(c: char) -> bool {
    c.is_ascii_alphanumeric() || " -_.:@+,;=#$%!*()?[]^{}|~".contains(c)
}

fn escaped_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        if is_plain(c) {
            out.push(c);
        } else {
            let mut buf = [0u16; 2];
            for u in c.encode_utf16(&mut buf) {
                out.push_str(&format!("\\u{u:04X}"));
            }
        }
    }
    out.push('"');
    out
}

fn escaped_value(v: &Value) -> String {
    match v {
        Value::String(s) => escaped_string(s),
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(escaped_value).collect::<Vec<_>>().join(",")
        ),
        Value::Object(o) => format!(
            "{{{}}}",
            o.iter()
                .map(|(k, v)| format!("{}:{}", escaped_string(k), escaped_value(v)))
                .collect::<Vec<_>>()
                .join(",")
        ),
        other => other.to_string(),
    }
}

fn ascii_only(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c == '/' {
            out.push_str("\\/");
        } else if c.is_ascii() {
            out.push(c);
        } else {
            let mut buf = [0u16; 2];
            for u in c.encode_utf16(&mut buf) {
                out.push_str(&format!("\\u{u:04x}"));
            }
        }
    }
    out
}

fn write_line(w: Writer, fields: &[(String, Value)]) -> String {
    let (colon, comma) = match w {
        Writer::Spaced => (": ", ", "),
        Writer::Loose => (" :\t", " , "),
        _ => (":", ","),
    };
    let mut order: Vec<&(String, Value)> = fields.iter().collect();
    if let Writer::Reordered = w {
        order.swap(0, 1);
    }
    let mut s = String::from("{");
    for (i, (k, v)) in order.iter().enumerate() {
        if i > 0 {
            s.push_str(comma);
        }
        if let Writer::Escaped = w {
            s.push_str(&escaped_string(k));
            s.push_str(colon);
            s.push_str(&escaped_value(v));
        } else {
            s.push_str(&serde_json::to_string(k).unwrap());
            s.push_str(colon);
            s.push_str(&serde_json::to_string(v).unwrap());
        }
    }
    s.push('}');
    match w {
        Writer::AsciiOnly => ascii_only(&s),
        Writer::Loose => format!(" \t{{ {} }} ", &s[1..s.len() - 1]),
        _ => s,
    }
}

fn tricky() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9-]{1,10}",
        "[a-c\"\\\\/é€😀 <>{}:,]{0,8}",
        Just("\"status\":900".to_owned()),
        Just(",\"status\":900,".to_owned()),
        Just("\\\"request_id\\\":\\\"x\\\"".to_owned()),
        Just("abc".to_owned()),
        Just("ab\"c".to_owned()),
        Just("é".to_owned()),
        any::<String>(),
    ]
}

#[derive(Debug, Clone)]
struct Record {
    level: &'static str,
    request_id: String,
    service: String,
    message: String,
    status: Option<Value>,
    nested_status: Option<i64>,
    route_first: bool,
    writer: Writer,
    micros: i64,
}

fn record() -> impl Strategy<Value = Record> {
    (
        prop::sample::select(vec![
            "TRACE", "DEBUG", "INFO", "WARN", "ERROR", "error", "Warning",
        ]),
        tricky(),
        tricky(),
        tricky(),
        prop::option::of(prop_oneof![
            (-5i64..700).prop_map(Value::from),
            (0.0f64..700.0).prop_map(Value::from),
            Just(json!("503")),
            Just(json!("abc")),
        ]),
        prop::option::of(0i64..700),
        any::<bool>(),
        prop::sample::select(vec![
            Writer::Tracelight,
            Writer::Tracelight,
            Writer::AsciiOnly,
            Writer::Spaced,
            Writer::Reordered,
            Writer::Escaped,
            Writer::Loose,
        ]),
        0i64..10_000_000,
    )
        .prop_map(
            |(
                level,
                request_id,
                service,
                message,
                status,
                nested_status,
                route_first,
                writer,
                micros,
            )| {
                Record {
                    level,
                    request_id,
                    service,
                    message,
                    status,
                    nested_status,
                    route_first,
                    writer,
                    micros,
                }
            },
        )
}

fn render(r: &Record) -> String {
    let mut f: Vec<(String, Value)> = vec![
        ("timestamp".into(), json!(common::ts(common::T0 + r.micros))),
        ("level".into(), json!(r.level)),
        ("message".into(), json!(r.message)),
        ("service".into(), json!(r.service)),
    ];
    if r.route_first {
        f.push(("route".into(), json!("/orders/{id}")));
        f.push(("tags".into(), json!(["a", {"status": 1}])));
    }
    if let Some(n) = r.nested_status {
        f.push(("span".into(), json!({"name": "x", "status": n})));
    }
    f.push(("request_id".into(), json!(r.request_id)));
    if let Some(s) = &r.status {
        f.push(("status".into(), s.clone()));
    }
    if !r.route_first {
        f.push(("route".into(), json!("/orders/{id}")));
        // As tracelight writes it: the span path after the root fields, repeating some of them.
        f.push((
            "spans".into(),
            json!([{"name": "request", "request_id": r.request_id, "status": 7, "service": "x"}]),
        ));
    }
    write_line(r.writer, &f)
}

fn filter_for(records: &[Record]) -> impl Strategy<Value = Vec<Filter>> {
    let ids: Vec<String> = records.iter().map(|r| r.request_id.clone()).collect();
    let services: Vec<String> = records.iter().map(|r| r.service.clone()).collect();
    let messages: Vec<String> = records.iter().map(|r| r.message.clone()).collect();
    let one = prop_oneof![
        prop::sample::select(ids)
            .prop_map(|id| Filter::Where(WhereExpr::string_eq("request_id", &id))),
        prop::sample::select(services)
            .prop_map(|s| Filter::Where(WhereExpr::string_eq("service", &s))),
        prop::sample::select(messages.clone())
            .prop_map(|m| Filter::Where(WhereExpr::string_eq("message", &m))),
        prop::sample::select(messages).prop_map(|m| Filter::Where(
            WhereExpr::parse(&format!("message ~ '{}'", regex::escape(&m))).unwrap()
        )),
        tricky().prop_map(|id| Filter::Where(WhereExpr::string_eq("request_id", &id))),
        prop::sample::select(vec![
            Level::Trace,
            Level::Debug,
            Level::Info,
            Level::Warn,
            Level::Error
        ])
        .prop_map(Filter::MinLevel),
        (
            prop::sample::select(vec!["=", "!=", ">", ">=", "<", "<="]),
            -5i64..700
        )
            .prop_map(|(op, n)| Filter::Where(
                WhereExpr::parse(&format!("status {op} {n}")).unwrap()
            )),
        Just(Filter::Where(WhereExpr::parse("status exists").unwrap())),
        Just(Filter::Where(
            WhereExpr::parse("span.status >= 300").unwrap()
        )),
        Just(Filter::Where(WhereExpr::parse("status = abc").unwrap())),
        (0i64..10_000_000, 0i64..10_000_000).prop_map(|(a, b)| Filter::Time {
            since: Some(common::T0 + a.min(b)),
            until: Some(common::T0 + a.max(b)),
        }),
    ];
    prop::collection::vec(one, 1..3)
}

fn matched(data: &[u8], query: &Query) -> Vec<Vec<u8>> {
    search_bytes(data, query)
        .lines
        .into_iter()
        .map(|m| m.text)
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn fast_path_equals_parsing_every_line(
        (records, filters) in prop::collection::vec(record(), 1..12)
            .prop_flat_map(|rs| { let f = filter_for(&rs); (Just(rs), f) })
    ) {
        let mut data = String::new();
        for r in &records {
            data.push_str(&render(r));
            data.push('\n');
        }
        data.push_str("not json\n");
        let fast = search_bytes(data.as_bytes(), &Query::new(filters.clone()));
        let reference = search_bytes(data.as_bytes(), &Query::reference(filters.clone()));
        prop_assert_eq!(&fast.lines, &reference.lines, "filters {:?}\n{}", filters, data);
        // One count of malformed lines whatever the query: here, the one line that is not JSON.
        prop_assert_eq!(fast.malformed, 1);
        prop_assert_eq!(reference.malformed, 1);
    }
}

/// Chunk boundaries anywhere: the parallel chunked scan of a file equals one pass over it.
#[test]
fn chunked_scan_equals_single_pass() {
    let t = common::generate(200);
    let path = t.path().join("gateway/access.log");
    let data = std::fs::read(&path).unwrap();
    for filters in [
        vec![],
        vec![Filter::MinLevel(Level::Error)],
        vec![Filter::Where(WhereExpr::string_eq(
            "request_id",
            &t.requests[150],
        ))],
    ] {
        let query = Query::new(filters);
        let expected = matched(&data, &query);
        for threads in [1, 2, 3] {
            for mmap in [true, false] {
                let opts = SearchOptions {
                    threads,
                    chunk_size: 4096,
                    mmap,
                };
                let found = search(std::slice::from_ref(&path), &query, &opts);
                let got: Vec<Vec<u8>> = found.lines.into_iter().map(|m| m.text).collect();
                assert_eq!(got, expected, "threads {threads} mmap {mmap}");
                assert!(found.warnings.is_empty(), "{:?}", found.warnings);
            }
        }
    }
}

/// A line laid out as tracelight writes it but with a level name tracelight does not write
/// (`error`): the vector scan that looks for `ERROR"` must still hand it to the parse.
#[test]
fn level_error_finds_lines_of_other_spellings() {
    let lines = [
        r#"{"timestamp":"2026-02-10T22:30:04.395346Z","level":"error","message":"a"}"#,
        r#"{"timestamp":"2026-02-10T22:30:04.395347Z","level":"ERROR","message":"b"}"#,
        r#"{"timestamp":"2026-02-10T22:30:04.395348Z","level":"INFO","message":"ERROR\"x"}"#,
        r#"{"level":"fatal","timestamp":"2026-02-10T22:30:04.395349Z","message":"c"}"#,
        r#"{"timestamp":"2026-02-10T22:30:04.395350Z","level":"WARN","message":"d"}"#,
    ];
    // Long enough for the vector loop, with the lines at every offset of its 64-byte blocks.
    let mut data = String::new();
    for pad in 0..70 {
        data.push_str(&format!("{{\"pad\":\"{}\"}}\n", "p".repeat(pad)));
        for l in lines {
            data.push_str(l);
            data.push('\n');
        }
    }
    let q = [Filter::MinLevel(Level::Error)];
    let fast = search_bytes(data.as_bytes(), &Query::new(q.to_vec()));
    let reference = search_bytes(data.as_bytes(), &Query::reference(q.to_vec()));
    assert_eq!(fast.lines.len(), 70 * 3);
    assert_eq!(fast.lines, reference.lines);
}

/// Every kind of line that is or is not `{…}`, at every offset of the vector loop's 64-byte
/// blocks and at the start and end of the data: a query with a needle, `--level error` and the
/// reference (every line parsed) count the same malformed lines and match the same lines.
#[test]
fn malformed_count_is_the_same_for_every_query_and_alignment() {
    let good = |i: usize, level: &str, id: &str| {
        format!(
            r#"{{"timestamp":"2026-02-10T22:30:04.{i:06}Z","level":"{level}","message":"m","request_id":"{id}"}}"#
        )
    };
    let kinds: Vec<String> = vec![
        "".into(),                                                     // blank: not counted
        "   ".into(),                                                  // blank
        "not json".into(),                                             // malformed
        r#"{"timestamp":"2026-02-10T22:30:04.1"#.into(),               // cut short: malformed
        "garbage}".into(),                                             // malformed
        "{garbage".into(),                                             // malformed
        " {\"level\":\"ERROR\",\"request_id\":\"needle-id\"} ".into(), // spaced object
        "{\"request_id\":\"needle-id\"}\r".into(),                     // CRLF object
        "{not valid but shaped}".into(), // shaped: invalid, not malformed
        "{}".into(),
    ];
    let queries = [
        vec![Filter::Where(WhereExpr::string_eq(
            "request_id",
            "needle-id",
        ))],
        vec![Filter::MinLevel(Level::Error)],
        vec![],
    ];
    for pad in 0..70 {
        for (k, odd) in kinds.iter().enumerate() {
            for at_end in [false, true] {
                let mut lines = vec![format!("{{\"pad\":\"{}\"}}", "p".repeat(pad))];
                for i in 0..6 {
                    lines.push(good(
                        i,
                        if i % 2 == 0 { "ERROR" } else { "INFO" },
                        "needle-id",
                    ));
                }
                if at_end {
                    lines.push(odd.clone());
                } else {
                    lines.insert(if k % 2 == 0 { 0 } else { 3 }, odd.clone());
                }
                let mut data = lines.join("\n");
                if pad % 3 != 0 {
                    data.push('\n');
                }
                let reference = search_bytes(data.as_bytes(), &Query::reference(vec![]));
                for q in &queries {
                    let fast = search_bytes(data.as_bytes(), &Query::new(q.clone()));
                    let slow = search_bytes(data.as_bytes(), &Query::reference(q.clone()));
                    assert_eq!(
                        fast.malformed, reference.malformed,
                        "{q:?} pad {pad} kind {k} at_end {at_end}:\n{data}"
                    );
                    assert_eq!(fast.lines, slow.lines, "{q:?} pad {pad} kind {k}:\n{data}");
                }
            }
        }
    }
}

/// A quoted number equals a number written another way (`5e2` is `"500.0"` to the parse): the
/// fast path must not look for the text in the raw bytes.
#[test]
fn quoted_numbers_match_other_spellings() {
    let data = concat!(
        r#"{"timestamp":"2026-02-10T22:30:04.000001Z","level":"INFO","x":5e2}"#,
        "\n",
        r#"{"timestamp":"2026-02-10T22:30:04.000002Z","level":"INFO","x":500.0}"#,
        "\n",
        r#"{"timestamp":"2026-02-10T22:30:04.000003Z","level":"INFO","x":"500.0"}"#,
        "\n",
    );
    let q = vec![Filter::Where(WhereExpr::parse(r#"x = "500.0""#).unwrap())];
    let fast = search_bytes(data.as_bytes(), &Query::new(q.clone()));
    let reference = search_bytes(data.as_bytes(), &Query::reference(q));
    assert_eq!(reference.lines.len(), 3);
    assert_eq!(fast.lines, reference.lines);
}

/// A line without a timestamp keeps its place after the line before it, also when it is the
/// first line of a chunk: the chunked scan orders the lines as one pass does.
#[test]
fn untimed_lines_keep_their_place_across_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let mut data = String::new();
    for i in 0..400 {
        data.push_str(&format!(
            "{{\"timestamp\":\"2026-02-10T22:30:04.{:06}Z\",\"level\":\"INFO\",\"n\":{i}}}\n",
            i * 10
        ));
        // Lines of another writer, with no time: several in a row, long enough that some start
        // a 4 KiB chunk.
        for k in 0..(i % 4) {
            data.push_str(&format!(
                "{{\"n\":{i},\"k\":{k},\"pad\":\"{}\"}}\n",
                "p".repeat(300)
            ));
        }
    }
    let path = dir.path().join("app.log");
    std::fs::write(&path, &data).unwrap();
    let one_pass = search_bytes(data.as_bytes(), &Query::new(vec![]));
    let in_order: Vec<Vec<u8>> = data.lines().map(|l| l.as_bytes().to_vec()).collect();
    let got: Vec<Vec<u8>> = one_pass.lines.iter().map(|m| m.text.clone()).collect();
    assert_eq!(got, in_order);
    for threads in [1, 2] {
        let opts = SearchOptions {
            threads,
            chunk_size: 4096,
            mmap: true,
        };
        let found = search(std::slice::from_ref(&path), &Query::new(vec![]), &opts);
        let got: Vec<Vec<u8>> = found.lines.into_iter().map(|m| m.text).collect();
        assert_eq!(got, in_order, "threads {threads}");
    }
}
