//! The router: rules, several streams, one formatting per format, default file streams.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde_json::Value;
use tracelight::sink::MemoryWriter;
use tracelight::{Format, Output, Rule, Stream};
use tracing::{error, info, warn, Level};

fn mem(name: &str, w: &MemoryWriter) -> Stream {
    Stream::new(name, Output::Writer(Arc::new(w.clone())))
}

fn parse(w: &MemoryWriter) -> Vec<Value> {
    w.lines()
        .iter()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect()
}

#[test]
fn rules_by_level_target_and_tag() {
    let (all, errors, db, security, quiet) = (
        MemoryWriter::new(),
        MemoryWriter::new(),
        MemoryWriter::new(),
        MemoryWriter::new(),
        MemoryWriter::new(),
    );
    {
        let _g = tracelight::builder()
            .format(Format::Json)
            .filter("trace")
            .stream(mem("app", &all))
            .stream(mem("errors", &errors).rule(Rule::min_level(Level::ERROR)))
            .stream(mem("db", &db).rule(Rule::all().target("shop::db")))
            .stream(mem("security", &security).rule(Rule::tagged()))
            .stream(mem("quiet", &quiet).rule(Rule::all().max_level(Level::INFO).target("shop")))
            .init_local()
            .unwrap();
        info!(target: "shop::api", "a");
        error!(target: "shop::db::pool", "b");
        warn!(target: "shop::auth", stream = "security", event = "login_failed", "c");
        tracing::debug!(target: "shop::api", "d");
        info!(target: "other", stream = "securityish", "e");
    }
    let msgs = |w: &MemoryWriter| {
        parse(w)
            .iter()
            .map(|l| l["message"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(msgs(&all), ["a", "b", "c", "d", "e"]);
    assert_eq!(msgs(&errors), ["b"]);
    assert_eq!(msgs(&db), ["b"]);
    assert_eq!(msgs(&security), ["c"]);
    assert_eq!(msgs(&quiet), ["a", "d"]);
}

struct CountingDebug(Arc<AtomicUsize>);
impl fmt::Debug for CountingDebug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fetch_add(1, Ordering::SeqCst);
        f.write_str("counted")
    }
}

#[test]
fn an_event_is_formatted_once_per_format_whatever_the_number_of_streams() {
    let calls = Arc::new(AtomicUsize::new(0));
    let (a, b, c, t1, t2) = (
        MemoryWriter::new(),
        MemoryWriter::new(),
        MemoryWriter::new(),
        MemoryWriter::new(),
        MemoryWriter::new(),
    );
    {
        let _g = tracelight::builder()
            .stream(mem("a", &a).format(Format::Json))
            .stream(mem("b", &b).format(Format::Json))
            .stream(mem("c", &c).format(Format::Json))
            .stream(mem("t1", &t1).format(Format::Text))
            .stream(mem("t2", &t2).format(Format::Text))
            .init_local()
            .unwrap();
        info!(v = ?CountingDebug(Arc::clone(&calls)), "x");
    }
    // The fields are visited once; the JSON and the text rendering are both made from that visit.
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(a.contents(), b.contents());
    assert_eq!(a.contents(), c.contents());
    assert_eq!(t1.contents(), t2.contents());
    assert!(t1.contents().contains("v=counted"));
}

#[test]
fn streams_and_their_statistics() {
    let (a, e) = (MemoryWriter::new(), MemoryWriter::new());
    let g = tracelight::builder()
        .stream(mem("app", &a))
        .stream(mem("errors", &e).rule(Rule::min_level(Level::ERROR)))
        .init_local()
        .unwrap();
    info!("one");
    error!("two");
    let stats = g.stats();
    assert_eq!(stats[0].name, "app");
    assert_eq!(stats[0].events, 2);
    assert_eq!(stats[1].events, 1);
    assert_eq!(stats[1].bytes, e.contents().len() as u64);
}

#[test]
fn two_streams_with_one_name_are_refused() {
    let w = MemoryWriter::new();
    let err = tracelight::builder()
        .stream(mem("x", &w))
        .stream(mem("x", &w))
        .build()
        .unwrap_err();
    assert!(
        err.to_string().contains("two streams are named `x`"),
        "{err}"
    );
}

#[test]
fn log_dir_writes_the_five_default_streams() {
    let dir = tempfile::tempdir().unwrap();
    let console = MemoryWriter::new();
    let g = tracelight::builder()
        .log_dir(dir.path())
        .writer(console.clone())
        .format(Format::Text)
        .init_local()
        .unwrap();
    info!("plain");
    error!(error = %"boom", "failed");
    info!(target: "tracelight::access", stream = "access", status = 200, "request completed");
    warn!(stream = "security", event = "login_failed", "bad password");
    info!(
        stream = "performance",
        operation = "db_query",
        duration_ms = 812.5,
        "span_closed"
    );
    g.shutdown();
    let read = |name: &str| -> Vec<Value> {
        std::fs::read_to_string(dir.path().join(name))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    assert_eq!(read("app.log").len(), 5);
    assert_eq!(read("errors.log")[0]["message"], "failed");
    assert_eq!(read("errors.log")[0]["error"]["message"], "boom");
    assert_eq!(read("access.log")[0]["status"], 200);
    assert_eq!(read("security.log")[0]["event"], "login_failed");
    assert_eq!(read("performance.log")[0]["duration_ms"], 812.5);
    for f in [
        "errors.log",
        "access.log",
        "security.log",
        "performance.log",
    ] {
        assert_eq!(read(f).len(), 1, "{f}");
    }
    // The console stream keeps its own format.
    assert_eq!(console.lines().len(), 5);
    assert!(
        console.lines()[0].ends_with("| plain"),
        "{}",
        console.lines()[0]
    );
}

#[test]
fn per_stream_settings_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let vars = [
        ("LOG_DIR", dir.path().to_str().unwrap().to_owned()),
        ("LOG_STDOUT", "false".to_owned()),
        ("LOG_STREAM_ACCESS_ENABLED", "false".to_owned()),
        ("LOG_STREAM_APP_LEVEL", "warn".to_owned()),
        ("LOG_STREAM_ERRORS_FILE", "failures.log".to_owned()),
        ("LOG_STREAM_SECURITY_FORMAT", "text".to_owned()),
    ];
    let cfg = tracelight::Config::from_lookup(|k| {
        vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())
    })
    .unwrap();
    let g = cfg.into_builder().init_local().unwrap();
    info!("not in app");
    warn!(stream = "security", "in app and security");
    error!("in app and failures");
    g.shutdown();
    let names: Vec<String> = {
        let mut v: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        names,
        ["app.log", "failures.log", "performance.log", "security.log"]
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("app.log"))
            .unwrap()
            .lines()
            .count(),
        2
    );
    let security = std::fs::read_to_string(dir.path().join("security.log")).unwrap();
    assert!(security.contains("| in app and security |"), "{security}");
}
