//! Production-grade structured logging for Tokio services, in one line.
//!
//! ```no_run
//! fn main() -> Result<(), tracelight::Error> {
//!     let _guard = tracelight::init()?; // reads the environment; flushes on drop
//!     tracing::info!(user_id = 42u64, order_id = "abc-456", "order_created");
//!     Ok(())
//! }
//! ```
//!
//! From then on every `tracing` event, every `#[instrument]`ed function and every record of the
//! `log` crate becomes one JSON object per line (or a human line on a terminal):
//!
//! ```json
//! {"timestamp":"2026-02-10T22:30:00.123456Z","level":"INFO","message":"order_created",
//!  "target":"shop::orders","file":"src/orders.rs","line":42,"service":"shop","host":"server-1",
//!  "pid":12345,"thread":"tokio-runtime-worker","request_id":"0193f2a4-…","user_id":42,
//!  "order_id":"abc-456","span":{"name":"process_order","order_id":"abc-456"}}
//! ```
//!
//! tracelight is a set of `tracing` layers on a [`tracing_subscriber::Registry`]:
//!
//! - [`route`]: the [`TracelightLayer`] — span fields rendered once, correlation [`context`],
//!   streams chosen by rules, one formatting per format, bytes to each stream's writer;
//! - [`fields`]: rendering values as JSON with escaping and [redaction](redact) built in;
//! - [`json`] and [`text`]: the two formats;
//! - [`sink`]: the bounded queue and background writer thread, lossless by default.
//!
//! [`init`] installs it all from the environment ([`Config`]); [`builder()`] does the same in code;
//! [`Builder::build`] hands you the layer to compose with your own.
//!
//! The guides are in the repository's `docs/` folder: the JSON schema (`docs/schema.md`),
//! configuration, correlation and the benchmarks.

#[cfg(feature = "admin")]
pub mod admin;
pub mod builder;
pub mod config;
pub mod context;
pub mod error;
pub mod errors;
pub mod fields;
#[cfg(feature = "http")]
pub mod http;
pub mod json;
#[cfg(feature = "otel")]
pub mod otel;
mod panic;
pub mod redact;
pub mod route;
pub mod sample;
pub mod sink;
mod spans;
pub mod text;
mod time;
pub mod timing;

pub use builder::{Builder, Guard, LocalGuard};
pub use config::Config;
#[cfg(feature = "tokio")]
pub use context::spawn;
pub use context::{bind, current_context, current_request_id, propagate};
pub use error::Error;
pub use route::{Format, Handle, Output, Rule, Stream, TracelightLayer};
pub use timing::timed;

/// Installs tracelight as the global subscriber, configured from the environment (see [`Config`]).
///
/// Returns a [`Guard`] that flushes every stream when dropped; keep it for the life of `main`.
/// A bad environment value is an [`Error::InvalidEnv`] naming the variable; a second call is
/// [`Error::AlreadyInitialized`].
///
/// ```no_run
/// let _guard = tracelight::init()?;
/// tracing::info!("ready");
/// # Ok::<(), tracelight::Error>(())
/// ```
pub fn init() -> Result<Guard, Error> {
    Builder::from_env()?.init()
}

/// A [`Builder`] with the defaults (nothing read from the environment; use
/// [`Builder::from_env`] for that).
///
/// ```
/// let w = tracelight::sink::MemoryWriter::new();
/// let _g = tracelight::builder().service("shop").writer(w.clone()).init_local().unwrap();
/// tracing::info!("hello");
/// assert!(w.contents().contains("\"service\":\"shop\""));
/// ```
pub fn builder() -> Builder {
    Builder::default()
}

/// Flushes the current subscriber's tracelight streams, if any: returns when every line logged
/// before the call is written.
pub fn flush() {
    tracing::dispatcher::get_default(|d| {
        if let Some(layer) = d.downcast_ref::<TracelightLayer>() {
            layer.flush();
        }
    });
}

/// Per-stream statistics of the current subscriber's tracelight layer (empty if there is none).
pub fn stats() -> Vec<sink::StreamStats> {
    let mut out = Vec::new();
    tracing::dispatcher::get_default(|d| {
        if let Some(layer) = d.downcast_ref::<TracelightLayer>() {
            out = layer.stats();
        }
    });
    out
}

/// A [`Handle`] on the current subscriber's tracelight layer, if there is one (for the admin
/// endpoints, or snapshots from anywhere).
///
/// ```
/// assert!(tracelight::current_handle().is_none());
/// ```
pub fn current_handle() -> Option<Handle> {
    let mut out = None;
    tracing::dispatcher::get_default(|d| {
        out = d
            .downcast_ref::<TracelightLayer>()
            .map(TracelightLayer::handle);
    });
    out
}

fn with_handle<R: Default>(f: impl FnOnce(&Handle) -> R) -> R {
    let mut out = None;
    let mut f = Some(f);
    tracing::dispatcher::get_default(|d| {
        if let (Some(layer), Some(f)) = (d.downcast_ref::<TracelightLayer>(), f.take()) {
            out = Some(f(&layer.handle()));
        }
    });
    out.unwrap_or_default()
}

/// Per-operation timing aggregates of the current subscriber (see [`timing`]).
///
/// ```
/// # let _g = tracelight::builder().writer(tracelight::sink::MemoryWriter::new()).init_local().unwrap();
/// drop(tracing::info_span!("load").entered());
/// assert_eq!(tracelight::performance().operations[0].count, 1);
/// ```
pub fn performance() -> timing::PerformanceSnapshot {
    with_handle(Handle::performance)
}

/// Error groups, recent errors and the total of the current subscriber (see [`errors`](mod@errors)).
///
/// ```
/// # let _g = tracelight::builder().writer(tracelight::sink::MemoryWriter::new()).init_local().unwrap();
/// tracing::error!("boom");
/// assert_eq!(tracelight::errors().total, 1);
/// ```
pub fn errors() -> errors::ErrorSnapshot {
    with_handle(Handle::errors)
}

/// Security event counts and recent events of the current subscriber (see [`security_event!`]).
///
/// ```
/// # let _g = tracelight::builder().writer(tracelight::sink::MemoryWriter::new()).init_local().unwrap();
/// tracelight::security_event!("admin_access", "low", "dashboard opened");
/// assert_eq!(tracelight::security().total, 1);
/// ```
pub fn security() -> errors::SecuritySnapshot {
    with_handle(Handle::security)
}
