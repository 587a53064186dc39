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
//! - [`TracelightLayer`]: span fields captured once, correlation [`context`], [streams](Stream)
//!   chosen by [rules](Rule), each event's fields visited once and rendered once per format
//!   (JSON or text), bytes to each stream's writer, with [redaction](redact) on every value;
//! - [`sink`]: the bounded queue and background writer thread, lossless by default;
//! - [`schema`]: the names and layout of the keys every line has.
//!
//! [`init`] installs it all from the environment ([`Config`]); [`builder()`] does the same in code;
//! [`Builder::build`] hands you the layer to compose with your own.
//!
//! The guides are in the repository's `docs/` folder: the JSON schema (`docs/schema.md`),
//! configuration, correlation and the benchmarks.

// Library crates also keep their public surface reachable and debuggable (tests and examples
// are exempt: their `pub` items are for sibling modules).
#![warn(unreachable_pub, missing_debug_implementations)]

#[cfg(feature = "admin")]
pub mod admin;
mod bound;
pub mod builder;
pub mod config;
pub mod context;
mod correlation;
mod env;
pub mod error;
pub mod errors;
mod event;
mod exit;
mod fields;
mod filter;
mod fmt_adapter;
#[cfg(feature = "http")]
pub mod http;
mod json;
mod layer;
#[cfg(feature = "otel-core")]
pub mod otel;
mod panic;
pub mod recorder;
pub mod redact;
pub mod sample;
#[cfg(any(feature = "admin", feature = "otel-http", feature = "otel-grpc"))]
mod series;
pub mod sink;
mod spans;
mod state;
mod stream;
#[cfg(feature = "testing")]
pub mod testing;
mod text;
mod time;
pub mod timing;
mod util;

pub use builder::{Builder, Guard, LocalGuard};
pub use config::Config;
#[cfg(feature = "tokio")]
pub use correlation::spawn;
pub use correlation::{bind, current_context, current_request_id, propagate};
pub use error::Error;
pub use errors::err;
pub use exit::{exit, EXIT_FLUSH_BOUND};
pub use filter::{FilterState, LogFilter};
pub use fmt_adapter::{CorrelationLayer, JsonLayer, RouterLayer, TimingLayer};
pub use layer::TracelightLayer;
pub use recorder::FlightRecorder;

/// For `tracing_subscriber::fmt` users: [`Correlated`](fmt::Correlated) writes the request id and
/// bound context at the root of `fmt`'s lines (with [`CorrelationLayer`] in the stack).
pub mod fmt {
    pub use crate::fmt_adapter::Correlated;
}
pub use state::Handle;
pub use stream::{default_rule, default_streams, Format, Output, Rule, Stream, DEFAULT_STREAMS};
pub use timing::timed;
/// The schema of the lines: key names, reserved keys and the renaming rule, the timestamp layout.
pub use tracelight_schema as schema;
pub use tracelight_schema::{Schema, REDACTED, RENAME_PREFIX, RESERVED_KEYS};

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

/// Flushes the current subscriber's tracelight streams, if any (those of every tracelight layer
/// of a stack): returns when every line logged before the call is written. Works behind
/// `reload::Layer` and per-layer filters too.
///
/// ```
/// # let _g = tracelight::builder().writer(tracelight::sink::MemoryWriter::new()).init_local().unwrap();
/// tracing::info!("before the flush");
/// tracelight::flush();
/// ```
pub fn flush() {
    if let Some(state) = state::current() {
        for shared in state.readers() {
            shared.flush();
        }
    }
}

/// Per-stream statistics of the current subscriber's tracelight layer, or of every layer of a
/// stack of tracelight parts (empty if there is none).
///
/// ```
/// let _g = tracelight::builder().writer(tracelight::sink::MemoryWriter::new()).init_local().unwrap();
/// tracing::info!("one");
/// assert_eq!(tracelight::stats()[0].events, 1);
/// ```
pub fn stats() -> Vec<sink::StreamStats> {
    state::current().map_or_else(Vec::new, |s| {
        s.readers()
            .iter()
            .flat_map(|shared| shared.stats())
            .collect()
    })
}

/// A [`Handle`] on the current subscriber's tracelight layer, if there is one (for the admin
/// endpoints, or snapshots from anywhere).
///
/// ```
/// assert!(tracelight::current_handle().is_none());
/// ```
pub fn current_handle() -> Option<Handle> {
    state::current().map(|s| Handle {
        shared: s.principal(),
    })
}

fn with_handle<R: Default>(f: impl FnOnce(&Handle) -> R) -> R {
    current_handle().map(|h| f(&h)).unwrap_or_default()
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
