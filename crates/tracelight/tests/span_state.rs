//! Where span state lives: one table per subscriber, reachable through wrappers, and context that
//! skips spans a per-layer filter leaves out.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use tracelight::sink::MemoryWriter;
use tracing::{info, info_span};
use tracing_subscriber::layer::{Layer as _, SubscriberExt};

fn parse(lines: &[String]) -> Vec<Value> {
    lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("invalid JSON {e}: {l}")))
        .collect()
}

fn layer() -> (MemoryWriter, tracelight::TracelightLayer, tracelight::Guard) {
    let w = MemoryWriter::new();
    let (layer, guard) = tracelight::builder()
        .writer(w.clone())
        .build()
        .expect("layer");
    (w, layer, guard)
}

#[test]
fn a_layer_cloned_into_two_subscribers_keeps_their_spans_apart() {
    let (w, layer, _guard) = layer();
    let a = tracing::Dispatch::new(tracing_subscriber::registry().with(layer.clone()));
    let b = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    tracing::dispatcher::with_default(&a, || {
        // Both registries number their first span 1.
        let sa = info_span!("in_a", request_id = "req-a", side = "a");
        let _ea = sa.enter();
        tracing::dispatcher::with_default(&b, || {
            let sb = info_span!("in_b", request_id = "req-b", side = "b");
            let _eb = sb.enter();
            info!("from b");
        });
        info!("from a");
    });
    let lines = parse(&w.lines());
    let from_b = lines.iter().find(|l| l["message"] == "from b").unwrap();
    let from_a = lines.iter().find(|l| l["message"] == "from a").unwrap();
    assert_eq!(from_b["request_id"], "req-b", "{from_b}");
    assert_eq!(from_b["span"]["side"], "b", "{from_b}");
    assert_eq!(from_a["request_id"], "req-a", "{from_a}");
    assert_eq!(from_a["span"]["side"], "a", "{from_a}");
}

#[test]
fn bind_and_request_id_work_behind_a_reload_layer() {
    let (w, layer, _guard) = layer();
    let (reloadable, _handle) = tracing_subscriber::reload::Layer::new(layer);
    let d = tracing::Dispatch::new(tracing_subscriber::registry().with(reloadable));
    tracing::dispatcher::with_default(&d, || {
        let s = info_span!("request", request_id = "req-7");
        let _e = s.enter();
        assert_eq!(tracelight::current_request_id().as_deref(), Some("req-7"));
        assert!(tracelight::bind("user_id", 42u64));
        info!("bound");
    });
    let lines = parse(&w.lines());
    assert_eq!(lines[0]["user_id"], 42, "{}", lines[0]);
}

#[test]
fn context_skips_a_parent_that_a_per_layer_filter_leaves_out() {
    let (w, layer, _guard) = layer();
    let filtered = layer.with_filter(tracing_subscriber::filter::filter_fn(|m| m.name() != "mid"));
    // Another layer takes every span, so `mid` exists in the registry, left out of ours only.
    struct Everything;
    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Everything {}
    let d = tracing::Dispatch::new(
        tracing_subscriber::registry()
            .with(filtered)
            .with(Everything),
    );
    tracing::dispatcher::with_default(&d, || {
        let req = info_span!("request", request_id = "req-9");
        let mid = info_span!(parent: &req, "mid");
        let db = info_span!(parent: &mid, "db", table = "orders");
        let _e = db.enter();
        info!("query");
    });
    let lines = parse(&w.lines());
    let q = lines.iter().find(|l| l["message"] == "query").unwrap();
    assert_eq!(q["request_id"], "req-9", "{q}");
    assert_eq!(q["span"]["table"], "orders", "{q}");
}

/// A layer writing to a rolling file (a queued stream, so `flush` has work to do), and the file.
fn file_layer(
    dir: &std::path::Path,
) -> (
    std::path::PathBuf,
    tracelight::TracelightLayer,
    tracelight::Guard,
) {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("app.log");
    let (layer, guard) = tracelight::builder()
        .stream(tracelight::Stream::new(
            "app",
            tracelight::Output::File(tracelight::sink::FileOptions::new(&path)),
        ))
        .build()
        .expect("layer");
    (path, layer, guard)
}

fn file_lines(path: &std::path::Path) -> usize {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .count()
}

#[test]
fn flush_stats_and_current_handle_work_behind_a_reload_layer() {
    let dir = tempfile::tempdir().unwrap();
    let (path, layer, _guard) = file_layer(dir.path());
    let (reloadable, _handle) = tracing_subscriber::reload::Layer::new(layer);
    let d = tracing::Dispatch::new(tracing_subscriber::registry().with(reloadable));
    assert!(tracelight::current_handle().is_none(), "no subscriber yet");
    tracing::dispatcher::with_default(&d, || {
        let handle = tracelight::current_handle().expect("a handle behind reload::Layer");
        for i in 0..100 {
            info!(i, "line");
        }
        tracing::error!("broken");
        // No span is current: the state is found by the subscriber, not by a span.
        tracelight::flush();
        assert_eq!(
            file_lines(&path),
            101,
            "flush() returned before the lines were written"
        );
        let stats = tracelight::stats();
        assert_eq!(stats.len(), 1);
        assert_eq!(stats[0].events, 101, "{stats:?}");
        assert_eq!(handle.events_by_level()[2], (tracing::Level::INFO, 100));
        assert_eq!(tracelight::errors().total, 1);
    });
}

#[test]
fn two_reloadable_subscribers_each_find_their_own_state() {
    let dir = tempfile::tempdir().unwrap();
    let (path_a, layer_a, _ga) = file_layer(&dir.path().join("a"));
    let (path_b, layer_b, _gb) = file_layer(&dir.path().join("b"));
    let (ra, _ha) = tracing_subscriber::reload::Layer::new(layer_a);
    let (rb, _hb) = tracing_subscriber::reload::Layer::new(layer_b);
    let a = tracing::Dispatch::new(tracing_subscriber::registry().with(ra));
    let b = tracing::Dispatch::new(tracing_subscriber::registry().with(rb));
    tracing::dispatcher::with_default(&a, || {
        info!("a");
        tracelight::flush();
        assert_eq!(tracelight::stats()[0].events, 1);
    });
    tracing::dispatcher::with_default(&b, || {
        for _ in 0..3 {
            info!("b");
        }
        tracelight::flush();
        assert_eq!(tracelight::stats()[0].events, 3);
    });
    assert_eq!(file_lines(&path_a), 1);
    assert_eq!(file_lines(&path_b), 3);
}

#[test]
fn flush_and_stats_work_behind_a_per_layer_filter() {
    let dir = tempfile::tempdir().unwrap();
    let (path, layer, _guard) = file_layer(dir.path());
    let filtered = layer.with_filter(tracing_subscriber::filter::LevelFilter::INFO);
    let d = tracing::Dispatch::new(tracing_subscriber::registry().with(filtered));
    tracing::dispatcher::with_default(&d, || {
        info!("kept");
        tracing::debug!("filtered out");
        tracelight::flush();
        assert_eq!(file_lines(&path), 1);
        assert_eq!(tracelight::stats()[0].events, 1);
        assert!(tracelight::current_handle().is_some());
    });
}

#[test]
fn a_layer_swapped_in_by_reload_is_found() {
    let (w1, first, _g1) = layer();
    let (w2, second, _g2) = layer();
    let (reloadable, handle) = tracing_subscriber::reload::Layer::new(first);
    let d = tracing::Dispatch::new(tracing_subscriber::registry().with(reloadable));
    tracing::dispatcher::with_default(&d, || {
        info!("to the first");
        handle.reload(second).unwrap();
        let s = info_span!("request", request_id = "req-new");
        let _e = s.enter();
        assert!(tracelight::bind("user_id", 9u64), "bind after a reload");
        assert_eq!(tracelight::current_request_id().as_deref(), Some("req-new"));
        info!("to the second");
        assert_eq!(
            tracelight::stats()[0].events,
            1,
            "stats of the layer swapped in"
        );
    });
    assert_eq!(w1.lines().len(), 1);
    let lines = parse(&w2.lines());
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["user_id"], 9, "{}", lines[0]);
}

#[test]
fn a_dispatcher_that_is_gone_is_never_found_again() {
    let (_w, layer, _guard) = layer();
    // A clone keeps the layer's table alive after its dispatcher is dropped.
    let keep = layer.clone();
    let (reloadable, _h) = tracing_subscriber::reload::Layer::new(layer);
    {
        let d = tracing::Dispatch::new(tracing_subscriber::registry().with(reloadable));
        tracing::dispatcher::with_default(&d, || {
            assert!(tracelight::current_handle().is_some());
        });
    }
    // New subscribers without tracelight, likely at the same address as the dropped one.
    for _ in 0..8 {
        let plain = tracing::Dispatch::new(tracing_subscriber::registry());
        tracing::dispatcher::with_default(&plain, || {
            assert!(
                tracelight::current_handle().is_none(),
                "found a dropped subscriber's state"
            );
        });
    }
    drop(keep);
}
