//! Capturing the lines of one test (feature `testing`), in the spirit of the `tracing-test` crate.
//!
//! [`capture`] returns a [`Capture`] that collects the lines written by the code of the test
//! that called it, and only those, while tests run in parallel:
//!
//! - lines written on the test's thread while the capture lives (a `#[test]`, the body of a
//!   `#[tokio::test]` of either flavour, and tasks a current-thread runtime polls on that thread);
//! - lines of tasks started with [`tracelight::spawn`](crate::spawn), of futures wrapped with
//!   [`tracelight::propagate`](crate::propagate) or `.in_current_span()`, and of spans created
//!   inside the test, wherever they run.
//!
//! A task started with a bare `tokio::spawn` on a multi-thread runtime runs outside the test's
//! span: its lines cannot be told from another test's, and are not captured (the same limit as
//! `tracing-test`; use `tracelight::spawn`).
//!
//! The lines are kept as JSON (for assertions) and as text, and the text is printed through
//! libtest's output capture when the capture is dropped: shown for a failed test only (or with
//! `--nocapture`). One subscriber is installed for the whole test binary, on the first call;
//! `RUST_LOG` sets its filter (default `trace`).
//!
//! ```
//! let logs = tracelight::testing::capture();
//! tracing::info!(order_id = 7, "order created");
//! logs.assert_contains("order created");
//! assert_eq!(logs.lines()[0]["order_id"], 7);
//! assert_eq!(logs.count(|l| l["level"] == "INFO"), 1);
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use tracing_core::{Event, Subscriber};
use tracing_subscriber::layer::Context as LayerContext;
use tracing_subscriber::registry::LookupSpan;

use crate::event::render::Lines;
use crate::state::Rendering;

/// The lines of one capture: JSON and text, in order.
type Buffer = Arc<Mutex<Vec<(String, String)>>>;

/// The streams' own writer: the lines go to the captures instead.
struct Discard;

impl crate::sink::LineWriter for Discard {
    fn write_line(&self, _line: &[u8]) {}
}

/// Captures by the id of their span.
#[derive(Default)]
struct Router {
    captures: Mutex<HashMap<u64, Buffer>>,
}

static ROUTER: OnceLock<Result<Router, String>> = OnceLock::new();

const SPAN_NAME: &str = "tracelight_test";

fn router() -> Result<&'static Router, crate::Error> {
    ROUTER
        .get_or_init(install)
        .as_ref()
        .map_err(|e| crate::Error::InvalidSetting {
            setting: "tracelight::testing".into(),
            reason: e.clone(),
        })
}

fn install() -> Result<Router, String> {
    use tracing_subscriber::layer::SubscriberExt as _;
    let discard = || crate::Output::Writer(Arc::new(Discard));
    let directives = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| "trace".to_owned());
    let mut builder = crate::builder()
        .filter(directives)
        .stream(crate::Stream::new("test-json", discard()).format(crate::Format::Json))
        .stream(crate::Stream::new("test-text", discard()).format(crate::Format::Text))
        .ansi(false)
        .catch_panics(false);
    builder.testing = true;
    let (layer, guard) = builder.build().map_err(|e| e.to_string())?;
    let subscriber = tracing_subscriber::registry()
        .with(layer.filter())
        .with(layer);
    tracing::subscriber::set_global_default(subscriber).map_err(|_| {
        "another global subscriber is already set in this test binary; tracelight::testing \
         installs its own on the first capture"
            .to_owned()
    })?;
    // The subscriber lives as long as the test binary.
    std::mem::forget(guard);
    Ok(Router::default())
}

/// Gives the lines of an event to the capture of the test it belongs to: the capture whose span
/// is the root of the event's scope.
pub(crate) fn route<S>(event: &Event<'_>, ctx: &LayerContext<'_, S>, lines: &Lines)
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let Some(Ok(router)) = ROUTER.get() else {
        return;
    };
    let Some(root) = ctx.event_scope(event).and_then(|s| s.from_root().next()) else {
        return;
    };
    if root.name() != SPAN_NAME || root.metadata().target() != "tracelight::testing" {
        return;
    }
    let buffer = crate::util::lock(&router.captures)
        .get(&root.id().into_u64())
        .cloned();
    if let Some(buffer) = buffer {
        let text = |r| String::from_utf8_lossy(lines.get(r)).trim_end().to_owned();
        crate::util::lock(&buffer).push((text(Rendering::Json), text(Rendering::Text)));
    }
}

/// The lines of one test, from [`capture`] to its drop. Not `Send`: it keeps the test's span
/// entered on the test's thread.
pub struct Capture {
    buffer: Buffer,
    id: u64,
    // Dropped before the lines are printed: exits the span.
    entered: Option<tracing::span::EnteredSpan>,
}

impl std::fmt::Debug for Capture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Capture")
            .field("lines", &crate::util::lock(&self.buffer).len())
            .finish()
    }
}

/// Starts capturing the lines of the calling test (see the [module](self)). Installs the test
/// subscriber on the first call.
///
/// # Panics
///
/// When another global subscriber is already set in the test binary, or `RUST_LOG` is not a
/// valid filter: a test helper that cannot capture fails the test rather than let it pass on
/// lines it never saw. [`try_capture`] returns the error instead.
pub fn capture() -> Capture {
    match try_capture() {
        Ok(c) => c,
        Err(e) => panic!("tracelight::testing::capture: {e}"),
    }
}

/// [`capture`], returning the error instead of panicking.
pub fn try_capture() -> Result<Capture, crate::Error> {
    let router = router()?;
    let span = tracing::span!(
        target: "tracelight::testing",
        parent: None,
        tracing::Level::ERROR,
        "tracelight_test",
        test = std::thread::current().name().unwrap_or("test")
    );
    let id = span.id().map_or(0, |id| id.into_u64());
    let buffer = Buffer::default();
    crate::util::lock(&router.captures).insert(id, Arc::clone(&buffer));
    Ok(Capture {
        buffer,
        id,
        entered: Some(span.entered()),
    })
}

impl Capture {
    /// The lines so far, parsed from JSON.
    pub fn lines(&self) -> Vec<serde_json::Value> {
        crate::util::lock(&self.buffer)
            .iter()
            .filter_map(|(json, _)| serde_json::from_str(json).ok())
            .collect()
    }

    /// The lines so far in the text format, one per line.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for (_, text) in crate::util::lock(&self.buffer).iter() {
            out.push_str(text);
            out.push('\n');
        }
        out
    }

    /// Whether a line (JSON or text) contains `needle`.
    pub fn contains(&self, needle: &str) -> bool {
        crate::util::lock(&self.buffer)
            .iter()
            .any(|(json, text)| json.contains(needle) || text.contains(needle))
    }

    /// Panics, showing every captured line, unless a line contains `needle`.
    #[track_caller]
    pub fn assert_contains(&self, needle: &str) {
        assert!(
            self.contains(needle),
            "no captured line contains {needle:?}; the lines:\n{}",
            self.text()
        );
    }

    /// How many lines `pred` holds for.
    pub fn count(&self, pred: impl Fn(&serde_json::Value) -> bool) -> usize {
        self.lines().iter().filter(|l| pred(l)).count()
    }

    /// The first line `pred` holds for.
    pub fn find(&self, pred: impl Fn(&serde_json::Value) -> bool) -> Option<serde_json::Value> {
        self.lines().into_iter().find(|l| pred(l))
    }

    /// Forgets the lines so far.
    pub fn clear(&self) {
        crate::util::lock(&self.buffer).clear();
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.entered.take();
        if let Some(Ok(router)) = ROUTER.get() {
            crate::util::lock(&router.captures).remove(&self.id);
        }
        // Through libtest's capture: shown when the test fails.
        let text = self.text();
        if !text.is_empty() {
            print!("{text}");
        }
    }
}
