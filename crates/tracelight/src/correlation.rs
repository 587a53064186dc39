//! Reaching the current span's correlation context from code: [`bind`], [`current_request_id`],
//! [`current_context`], and moving work to other tasks without losing it ([`spawn`],
//! [`propagate`]). The context itself is in [`crate::context`]; the span it belongs to is found
//! through [`state::find`](crate::state), behind `reload::Layer` too.

use std::future::Future;
use std::sync::Arc;

use crate::context::{Context, ContextValue};

/// Runs `f` on the current span's state in the current dispatcher's tracelight layer (found
/// behind `reload::Layer` too).
fn with_current_state<R>(f: impl FnOnce(&mut crate::spans::SpanState) -> R) -> Option<R> {
    let mut f = Some(f);
    tracing::dispatcher::get_default(|dispatch| {
        let current = dispatch.current_span();
        let id = current.id()?;
        let spans = match crate::state::find(dispatch) {
            Some(state) => state.spans,
            // Not found by its dispatcher: the table that holds the span.
            None => crate::state::table_holding(id)?,
        };
        spans.with(id, |st| f.take().map(|f| f(st)))?
    })
}

/// Adds `key = value` to the current span's context: every later line in this span and in spans
/// opened below it carries it at the root. Returns `false` when there is no current span (or no
/// tracelight layer), in which case nothing is bound.
///
/// Spans opened *before* the bind keep the context they started with.
///
/// ```
/// # let _g = tracelight::builder().writer(tracelight::sink::MemoryWriter::new()).init_local();
/// let span = tracing::info_span!("checkout");
/// let _e = span.enter();
/// assert!(tracelight::bind("account_id", "acme"));
/// tracing::info!("charged"); // {"account_id":"acme", …}
/// ```
pub fn bind<V: ContextValue>(key: &str, value: V) -> bool {
    let mut rendered = Vec::with_capacity(16);
    value.render_json(&mut rendered);
    bind_json(key, &rendered)
}

/// Like [`bind`], with a value already rendered as JSON.
pub(crate) fn bind_json(key: &str, json: &[u8]) -> bool {
    let current = crate::state::current();
    // The static fields' keys, so a bound key never repeats one of them.
    let statics: Vec<String> = current
        .as_ref()
        .map_or_else(Vec::new, |s| s.shared.static_keys.clone());
    // Bound values are redacted as fields are: a secret key masks the value, and a string is
    // scanned for secrets (a correlation key's value never is).
    let mut redacted;
    let mut json = json;
    if let Some(r) = current.as_ref().and_then(|s| s.shared.redactor.as_ref()) {
        if r.is_secret_key(key) {
            json = r.key_mask_json().as_bytes();
        } else if json.len() >= 2 && json[0] == b'"' && !r.keeps(key) {
            redacted = json[..json.len() - 1].to_vec();
            r.redact_raw(&mut redacted, 1);
            redacted.push(b'"');
            json = &redacted;
        }
    }
    with_current_state(|state| {
        let next = Context::with_taken(state.ctx.as_deref(), key, json, &statics);
        state.ctx = Some(Arc::new(next));
    })
    .is_some()
}

/// Binds several fields to the current span's context at once.
///
/// ```
/// # let _g = tracelight::builder().writer(tracelight::sink::MemoryWriter::new()).init_local();
/// let span = tracing::info_span!("request");
/// let _e = span.enter();
/// tracelight::bind!(user_id = 7, account = "acme");
/// ```
#[macro_export]
macro_rules! bind {
    ($($key:ident = $value:expr),+ $(,)?) => {{
        $( $crate::bind(stringify!($key), $value); )+
    }};
}

/// The request id of the current span's context, if any.
///
/// ```
/// # let _g = tracelight::builder().writer(tracelight::sink::MemoryWriter::new()).init_local();
/// assert_eq!(tracelight::current_request_id(), None);
/// let span = tracing::info_span!("request", request_id = "abc");
/// let _e = span.enter();
/// assert_eq!(tracelight::current_request_id().as_deref(), Some("abc"));
/// ```
pub fn current_request_id() -> Option<String> {
    with_current_state(|s| s.ctx.as_ref().and_then(|c| c.request_id())).flatten()
}

/// The current span's whole context, if any.
pub fn current_context() -> Option<Arc<Context>> {
    with_current_state(|s| s.ctx.clone()).flatten()
}

/// Spawns `future` on the Tokio runtime inside the current span, so its lines keep the request
/// id and bound fields (a bare `tokio::spawn` loses them).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let span = tracing::info_span!("request", request_id = "r-1");
/// let handle = {
///     let _e = span.enter();
///     tracelight::spawn(async { tracelight::current_request_id() })
/// };
/// assert_eq!(handle.await.unwrap(), None); // no subscriber in this doctest
/// # }
/// ```
#[cfg(feature = "tokio")]
#[track_caller]
pub fn spawn<F>(future: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    use tracing::Instrument as _;
    tokio::spawn(future.in_current_span())
}

/// Wraps `future` so it runs inside the current span wherever it is polled — for executors other
/// than Tokio, or to hand a future to a task pool.
pub fn propagate<F: Future>(future: F) -> tracing::instrument::Instrumented<F> {
    use tracing::Instrument as _;
    future.in_current_span()
}
