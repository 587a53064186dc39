//! tracelight's correlation for `tracing_subscriber::fmt`: [`CorrelationLayer`] keeps the request
//! id and the bound context of every span (and nothing else), and [`Correlated`] writes them at
//! the root of every `fmt` line inside a request.

use std::cell::RefCell;
use std::sync::Arc;

use tracing_core::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use crate::error::Error;
use crate::layer::TracelightLayer;
use crate::Guard;

/// A part of tracelight: the struct (with the docs given), its `Debug`, and its `Layer`, which
/// hands every callback to the [`TracelightLayer`] it wraps (which the context and the timing are
/// found through) — with `events`, the events too (the parts that write lines).
///
/// Stacked above another tracelight layer, a part reads the span state that one keeps (see
/// [`TracelightLayer::follow`]) and takes no span callback of its own: one table and one lookup
/// per span callback for the whole stack.
macro_rules! part_layer {
    ($(#[$doc:meta])* pub struct $name:ident; $($events:ident)?) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name {
            inner: TracelightLayer,
            _guard: Arc<Guard>,
            /// Reads the span state of a tracelight layer below it.
            follows: bool,
            /// Has said on stderr why it keeps a span state of its own.
            said: bool,
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($name)).finish_non_exhaustive()
            }
        }

        impl $name {
            fn from_parts(inner: TracelightLayer, guard: Guard) -> $name {
                $name {
                    inner,
                    _guard: Arc::new(guard),
                    follows: false,
                    said: false,
                }
            }

            /// The filter of this part's directives (`RUST_LOG` or `LOG_LEVEL` when built from
            /// [`Builder::from_env`](crate::Builder::from_env), [`Builder::filter`](crate::Builder::filter),
            /// `info` otherwise), to put in front of the stack: it keeps the spans that carry
            /// the request id at any level (see [`LogFilter`](crate::LogFilter)), and
            /// [`LogFilter::set`](crate::LogFilter::set) changes the level live.
            ///
            /// ```
            /// use tracing_subscriber::layer::SubscriberExt as _;
            #[doc = concat!("let part = tracelight::", stringify!($name), "::from_builder(tracelight::builder().filter(\"warn\"))?;")]
            /// let subscriber = tracing_subscriber::registry().with(part.filter()).with(part);
            /// # let _ = subscriber;
            /// # Ok::<(), tracelight::Error>(())
            /// ```
            pub fn filter(&self) -> crate::LogFilter {
                self.inner.filter()
            }
        }

        impl<S> tracing_subscriber::Layer<S> for $name
        where
            S: Subscriber + for<'a> LookupSpan<'a>,
        {
            fn on_layer(&mut self, subscriber: &mut S) {
                let below: &dyn Subscriber = &*subscriber;
                // An OpenTelemetry pipeline's layer below: a part that writes lines builds its
                // log records from its capture of each event.
                #[cfg(feature = "otel-core")]
                if part_layer!(@writes $($events)?) {
                    crate::otel::claim_logs(&self.inner.state.shared, below);
                    #[cfg(any(feature = "otel-http", feature = "otel-grpc"))]
                    crate::otel::claim_metrics(&self.inner.state.shared, below);
                }
                // A tracelight layer below this one keeps the span state: read it.
                if let Some(keeper) = below.downcast_ref::<crate::state::StateRef>().cloned() {
                    match self.inner.follow(&keeper) {
                        Ok(()) => {
                            self.follows = true;
                            return;
                        }
                        Err(why) => {
                            self.said = true;
                            crate::util::say(format!(
                                "tracelight: {} keeps a span state of its own beside the \
                                 tracelight layer below it, because {why}: what is bound \
                                 through one is not in the other's lines",
                                stringify!($name)
                            ));
                        }
                    }
                }
                self.follows = false;
                self.inner.keep_own_table();
            }
            fn on_register_dispatch(&self, dispatch: &tracing::Dispatch) {
                tracing_subscriber::Layer::<S>::on_register_dispatch(&self.inner, dispatch);
                // Another tracelight layer in the same subscriber keeps a context of its own,
                // which `bind` and the formatters may not be reading: say so.
                if let Some(other) = dispatch.downcast_ref::<crate::state::StateRef>() {
                    if !self.said && !Arc::ptr_eq(&other.spans, &self.inner.state.spans) {
                        crate::util::say(format!(
                            "tracelight: {} shares its subscriber with a tracelight layer stacked \
                             above it that keeps a span state of its own: what is bound through \
                             that one is not in this one's lines (a TracelightLayer keeps its \
                             own: put it first, below the parts)",
                            stringify!($name)
                        ));
                    }
                }
            }
            fn on_new_span(
                &self,
                attrs: &tracing_core::span::Attributes<'_>,
                id: &tracing_core::span::Id,
                ctx: tracing_subscriber::layer::Context<'_, S>,
            ) {
                if !self.follows {
                    self.inner.on_new_span(attrs, id, ctx);
                }
            }
            fn on_record(
                &self,
                id: &tracing_core::span::Id,
                values: &tracing_core::span::Record<'_>,
                ctx: tracing_subscriber::layer::Context<'_, S>,
            ) {
                if !self.follows {
                    self.inner.on_record(id, values, ctx);
                }
            }
            fn on_enter(
                &self,
                id: &tracing_core::span::Id,
                ctx: tracing_subscriber::layer::Context<'_, S>,
            ) {
                if !self.follows {
                    self.inner.on_enter(id, ctx);
                }
            }
            fn on_exit(
                &self,
                id: &tracing_core::span::Id,
                ctx: tracing_subscriber::layer::Context<'_, S>,
            ) {
                if !self.follows {
                    self.inner.on_exit(id, ctx);
                }
            }
            fn on_close(
                &self,
                id: tracing_core::span::Id,
                ctx: tracing_subscriber::layer::Context<'_, S>,
            ) {
                if !self.follows {
                    self.inner.on_close(id, ctx);
                }
            }
            part_layer!(@on_event $($events)?);
            // The one `unsafe` item: the trait method is `unsafe` to implement. It answers for
            // the layer it wraps (which is how the context is found), and for itself.
            #[doc(hidden)]
            #[allow(unsafe_code)]
            unsafe fn downcast_raw(&self, id: std::any::TypeId) -> Option<*const ()> {
                if id == std::any::TypeId::of::<Self>() {
                    return Some(self as *const Self as *const ());
                }
                // SAFETY: forwarded to the wrapped layer, whose pointers live as long as `self`.
                unsafe { tracing_subscriber::Layer::<S>::downcast_raw(&self.inner, id) }
            }
        }
    };
    (@on_event events) => {
        fn on_event(
            &self,
            event: &tracing_core::Event<'_>,
            ctx: tracing_subscriber::layer::Context<'_, S>,
        ) {
            self.inner.on_event(event, ctx);
        }
    };
    (@on_event) => {};
    (@writes events) => { true };
    (@writes) => { false };
}

part_layer! {
    /// tracelight's correlation alone, beside a formatter of another crate: each span gets the
    /// request id and the context bound to it or to its parents ([`bind`](fn@crate::bind), context
    /// fields), across `.await`s and [`tracelight::spawn`](crate::spawn), readable by any formatter
    /// through [`current_context`](crate::current_context) and
    /// [`current_request_id`](crate::current_request_id) — and by `fmt` through [`Correlated`]. It
    /// writes no line of its own.
    ///
    /// Stacked with other parts ([`TimingLayer`], [`JsonLayer`], [`RouterLayer`]), the first one
    /// keeps the span state and the ones above read it: one table for the stack, and what is
    /// bound is seen by all (docs/streams.md has the rules).
    ///
    /// The spans that carry the id must reach it: a filter in front of it that leaves out INFO
    /// spans (an `EnvFilter` at `warn`) hides them. Put [`LogFilter`](crate::LogFilter) in front
    /// instead (it keeps correlation spans at any level), or give the filter to the `fmt` layer
    /// alone (`.with_filter(…)`).
    ///
    /// ```
    /// use tracing_subscriber::layer::SubscriberExt as _;
    /// let correlation = tracelight::CorrelationLayer::new()?;
    /// let fmt = tracing_subscriber::fmt::layer()
    ///     .json()
    ///     .event_format(tracelight::fmt::Correlated::new(tracing_subscriber::fmt::format().json()));
    /// let subscriber = tracing_subscriber::registry().with(correlation).with(fmt);
    /// tracing::subscriber::with_default(subscriber, || {
    ///     let span = tracing::info_span!("request", request_id = "req-1");
    ///     let _e = span.enter();
    ///     tracelight::bind("user_id", 42u64);
    ///     tracing::info!("inside"); // {"request_id":"req-1","user_id":42,"timestamp":…}
    /// });
    /// # Ok::<(), tracelight::Error>(())
    /// ```
    pub struct CorrelationLayer;
}

impl CorrelationLayer {
    /// The layer with the defaults: `request_id` and whatever is bound.
    pub fn new() -> Result<CorrelationLayer, Error> {
        CorrelationLayer::from_builder(crate::builder())
    }

    /// The layer with the settings of `builder` that concern correlation (context fields with
    /// [`Builder::context_field`](crate::Builder::context_field), redaction of bound values);
    /// its streams, formats and timing are not used.
    pub fn from_builder(builder: crate::Builder) -> Result<CorrelationLayer, Error> {
        let mut builder = builder.without_timing();
        builder.no_streams = true;
        let (inner, guard) = builder.build()?;
        Ok(CorrelationLayer::from_parts(inner, guard))
    }
}

part_layer! {
    /// tracelight's formatter alone: every event it receives as one line of tracelight's JSON (or
    /// text) schema — request id and bound context at the root, the span, the error with its chain,
    /// redaction — written to any [`MakeWriter`](tracing_subscriber::fmt::MakeWriter) (a
    /// [`FileWriter`](crate::sink::FileWriter), stdout, a test buffer) or to tracelight's
    /// non-blocking stdout. It keeps the context as [`CorrelationLayer`] does; span timing is off.
    ///
    /// Like `tracing_subscriber::fmt::layer()`, it writes what reaches it: give it a per-layer
    /// filter with `.with_filter(…)` (a `LevelFilter` or an `EnvFilter`), or put its
    /// [`filter()`](JsonLayer::filter) in front of the stack, which keeps the spans that carry
    /// the request id at any level (a per-layer filter at `warn` hides the INFO request span
    /// from this layer, and its WARN lines lose the request id).
    ///
    /// ```
    /// use tracing_subscriber::layer::SubscriberExt as _;
    /// use tracing_subscriber::Layer as _;
    /// let json = tracelight::JsonLayer::with_writer(std::io::stderr)?;
    /// let subscriber = tracing_subscriber::registry()
    ///     .with(json.with_filter(tracing_subscriber::filter::LevelFilter::INFO));
    /// tracing::subscriber::with_default(subscriber, || {
    ///     let span = tracing::info_span!("request", request_id = "req-1");
    ///     let _e = span.enter();
    ///     tracing::info!(order_id = 7, "order created"); // {"timestamp":…,"request_id":"req-1",…}
    /// });
    /// # Ok::<(), tracelight::Error>(())
    /// ```
    pub struct JsonLayer; events
}

impl JsonLayer {
    /// JSON lines on stdout, through tracelight's non-blocking writer.
    pub fn new() -> Result<JsonLayer, Error> {
        JsonLayer::from_builder(crate::builder().format(crate::Format::Json))
    }

    /// JSON lines to `make_writer`, called once per line on the logging thread (as `fmt` does);
    /// a [`FileWriter`](crate::sink::FileWriter) makes that a non-blocking, rotated file.
    pub fn with_writer<M>(make_writer: M) -> Result<JsonLayer, Error>
    where
        M: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
    {
        JsonLayer::from_builder(
            crate::builder()
                .format(crate::Format::Json)
                .writer(MakeWriterLines(make_writer)),
        )
    }

    /// The formatter with the settings of `builder`: its default output
    /// ([`Builder::writer`](crate::Builder::writer), [`Builder::output`](crate::Builder::output)),
    /// [`format`](crate::Builder::format) (`Format::Text` for the text lines), service, static
    /// fields, redaction, error tracking and sampling. One stream: the builder's other streams
    /// and `log_dir` are not used (that is [`RouterLayer`]), nor its timing.
    pub fn from_builder(builder: crate::Builder) -> Result<JsonLayer, Error> {
        let mut builder = builder.without_timing();
        builder.streams.clear();
        builder.log_dir = None;
        let (inner, guard) = builder.build()?;
        Ok(JsonLayer::from_parts(inner, guard))
    }
}

part_layer! {
    /// tracelight's streams alone: each event goes to every stream whose rule takes it (`app`,
    /// `errors`, `access`, `security`, `performance` under `LOG_DIR`, or the streams you add), each
    /// with its own format and output — rotating, non-blocking, lossless files, stdout, a writer.
    /// It keeps the context as [`CorrelationLayer`] does; span timing is off (add [`TimingLayer`],
    /// or use [`TracelightLayer`] for everything).
    ///
    /// Like [`JsonLayer`], it writes what reaches it: put its [`filter()`](RouterLayer::filter)
    /// in front of the stack (the directives of `RUST_LOG` or `LOG_LEVEL` with
    /// [`from_env`](RouterLayer::from_env)), or give it a per-layer filter. Its lines are
    /// flushed by [`tracelight::flush`](crate::flush), at `std::process::exit` and at the end of
    /// `main`; there is no guard to keep.
    ///
    /// ```
    /// use tracelight::{Format, Output, Rule, Stream};
    /// use tracing_subscriber::layer::SubscriberExt as _;
    /// let router = tracelight::RouterLayer::from_builder(
    ///     tracelight::builder()
    ///         .stream(Stream::new("all", Output::Stdout).format(Format::Json))
    ///         .stream(
    ///             Stream::new("problems", Output::Stderr)
    ///                 .rule(Rule::min_level(tracing::Level::WARN))
    ///                 .format(Format::Text),
    ///         ),
    /// )?;
    /// let subscriber = tracing_subscriber::registry().with(router);
    /// # let _ = subscriber;
    /// # Ok::<(), tracelight::Error>(())
    /// ```
    pub struct RouterLayer; events
}

impl RouterLayer {
    /// The streams the environment asks for (`LOG_DIR`, `LOG_STREAM_*`…, see
    /// docs/configuration.md): the five default files under `LOG_DIR` and the console on stdout
    /// (`LOG_STDOUT=false` leaves it out: do so beside a `fmt` layer on stdout), else stdout
    /// alone. `RUST_LOG` and `LOG_LEVEL` are the directives of [`filter()`](RouterLayer::filter),
    /// which is not applied until you put it in front of the stack.
    pub fn from_env() -> Result<RouterLayer, Error> {
        RouterLayer::from_builder(crate::Builder::from_env()?)
    }

    /// The streams of `builder` ([`stream`](crate::Builder::stream), or
    /// [`log_dir`](crate::Builder::log_dir) and its stream settings), with its formats,
    /// redaction, error tracking and sampling; not its timing.
    pub fn from_builder(builder: crate::Builder) -> Result<RouterLayer, Error> {
        let (inner, guard) = builder.without_timing().build()?;
        Ok(RouterLayer::from_parts(inner, guard))
    }
}

/// A `MakeWriter` as a [`LineWriter`](crate::sink::LineWriter): each line is one `make_writer()`
/// and one `write_all`, as `fmt` writes.
struct MakeWriterLines<M>(M);

impl<M> crate::sink::LineWriter for MakeWriterLines<M>
where
    M: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    fn write_line(&self, line: &[u8]) {
        use std::io::Write as _;
        let mut w = self.0.make_writer();
        // A writer that fails loses the line, as with `fmt`; tracelight's own sinks count it.
        let _ = w.write_all(line);
    }
    fn flush(&self) {
        use std::io::Write as _;
        let _ = self.0.make_writer().flush();
    }
}

part_layer! {
    /// tracelight's timing alone, beside a formatter of another crate: busy and idle time of every
    /// span, per-operation aggregates ([`tracelight::performance`](crate::performance), the admin
    /// endpoint), and a `span_closed` event at WARN for a span slower than its threshold — a real
    /// `tracing` event (target `tracelight::timing`, inside the span that closed, with `operation`,
    /// `duration_ms`, `busy_ms`, `idle_ms`, `threshold_ms`), which any formatter in the stack
    /// receives. It writes no line of its own, and keeps the context as [`CorrelationLayer`] does.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tracing_subscriber::layer::SubscriberExt as _;
    /// let timing = tracelight::TimingLayer::from_builder(tracelight::builder().timing(
    ///     tracelight::timing::TimingConfig::default().threshold(Duration::from_millis(100)),
    /// ))?;
    /// let subscriber = tracing_subscriber::registry()
    ///     .with(timing)
    ///     .with(tracing_subscriber::fmt::layer().json());
    /// # let _ = subscriber;
    /// # Ok::<(), tracelight::Error>(())
    /// ```
    pub struct TimingLayer;
}

impl TimingLayer {
    /// The layer with the default thresholds (500 ms, `LOG_SLOW_THRESHOLD` is not read: use
    /// [`from_builder`](Self::from_builder) with [`Builder::from_env`](crate::Builder::from_env)).
    pub fn new() -> Result<TimingLayer, Error> {
        TimingLayer::from_builder(crate::builder())
    }

    /// The layer with the timing settings of `builder` ([`Builder::timing`](crate::Builder::timing));
    /// its streams and formats are not used.
    pub fn from_builder(builder: crate::Builder) -> Result<TimingLayer, Error> {
        let mut builder = builder;
        if builder.timing.is_none() {
            builder = builder.timing(crate::timing::TimingConfig::default());
        }
        builder.no_streams = true;
        let (inner, guard) = builder.build()?;
        Ok(TimingLayer::from_parts(inner, guard))
    }
}

/// Whether the members of a JSON object (`rest`: after its `{`) have `key` at their own level
/// (not inside a nested object such as `span`).
fn has_top_level_key(rest: &str, key: &str) -> bool {
    let b = rest.as_bytes();
    let (mut depth, mut i) = (0usize, 0usize);
    let mut expect_key = true;
    while i < b.len() {
        match b[i] {
            b'"' => {
                // A string: its end, past escapes (found with `memchr`: strings are most of
                // the line).
                let start = i + 1;
                i += 1;
                loop {
                    match memchr::memchr2(b'"', b'\\', &b[i.min(b.len())..]) {
                        Some(k) if b[i + k] == b'\\' => i += k + 2,
                        Some(k) => {
                            i += k;
                            break;
                        }
                        None => {
                            i = b.len();
                            break;
                        }
                    }
                }
                if depth == 0 && expect_key && b.get(start..i) == Some(key.as_bytes()) {
                    return true;
                }
                expect_key = false;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                if depth == 0 {
                    return false;
                }
                depth -= 1;
            }
            b',' if depth == 0 => expect_key = true,
            _ => {}
        }
        i += 1;
    }
    false
}

/// Whether a text line has ` key=` (a field of that name).
fn has_text_key(body: &str, key: &str) -> bool {
    body.match_indices(key).any(|(i, _)| {
        i > 0 && body.as_bytes()[i - 1] == b' ' && body.as_bytes().get(i + key.len()) == Some(&b'=')
    })
}

thread_local! {
    /// One line being put together, reused.
    static LINE: RefCell<String> = const { RefCell::new(String::new()) };
}

/// A `tracing_subscriber::fmt` event format that adds the request id and bound context of the
/// current span (kept by [`CorrelationLayer`], or by tracelight's whole layer) to every line:
/// at the root of a JSON object (`{"request_id":"…","user_id":42,"timestamp":…}`), or at the end
/// of a text line (` request_id=… user_id=42`). A key the line already has is not repeated.
/// Lines outside any request are written as the wrapped format writes them.
///
/// ```
/// let format = tracelight::fmt::Correlated::new(tracing_subscriber::fmt::format().json());
/// let layer = tracing_subscriber::fmt::layer::<tracing_subscriber::Registry>()
///     .json()
///     .event_format(format);
/// # let _ = layer;
/// ```
///
/// A text line with context is put together before it is written, so `fmt`'s colours are left
/// out of those lines.
#[derive(Debug, Clone)]
pub struct Correlated<F> {
    inner: F,
    /// The span table of the layer that keeps the context, once found.
    table: std::sync::OnceLock<std::sync::Weak<crate::spans::SpanTable>>,
}

impl<F> Correlated<F> {
    /// `inner` (`fmt::format()`, `fmt::format().json()`…) with the context added.
    pub fn new(inner: F) -> Correlated<F> {
        Correlated {
            inner,
            table: std::sync::OnceLock::new(),
        }
    }

    /// The context of span `id`, from the table of the layer that holds it. (The dispatcher
    /// cannot be asked while it formats an event: it answers for no subscriber then.)
    fn context_of(&self, id: &tracing_core::span::Id) -> Option<Arc<crate::context::Context>> {
        if let Some(t) = self.table.get().and_then(std::sync::Weak::upgrade) {
            if let Some(ctx) = t.with(id, |st| st.ctx.clone()) {
                return ctx;
            }
        }
        let table = crate::state::table_holding(id)?;
        let _ = self.table.set(Arc::downgrade(&table));
        table.with(id, |st| st.ctx.clone()).flatten()
    }
}

impl<S, N, F> FormatEvent<S, N> for Correlated<F>
where
    F: FormatEvent<S, N>,
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let span = if event.is_contextual() {
            ctx.lookup_current().map(|s| s.id())
        } else {
            event.parent().cloned()
        };
        let context = span.and_then(|id| self.context_of(&id));
        let Some(context) = context.filter(|c| c.iter().next().is_some()) else {
            return self.inner.format_event(ctx, writer, event);
        };
        LINE.with(|line| {
            let Ok(mut line) = line.try_borrow_mut() else {
                // Formatting inside formatting (a Debug impl that logs): without the context.
                return self.inner.format_event(ctx, writer.by_ref(), event);
            };
            line.clear();
            self.inner
                .format_event(ctx, Writer::new(&mut *line), event)?;
            let body = line.strip_suffix('\n').unwrap_or(&line);
            let newline = if body.len() < line.len() { "\n" } else { "" };
            if let Some(rest) = body.strip_prefix('{') {
                writer.write_char('{')?;
                // Each member is followed by a comma, unless the object was empty: then the
                // commas go between them.
                let empty = rest.starts_with('}');
                let mut first = true;
                for (key, json) in context.iter() {
                    if has_top_level_key(rest, key) {
                        continue;
                    }
                    if empty && !first {
                        writer.write_char(',')?;
                    }
                    first = false;
                    writer.write_char('"')?;
                    writer.write_str(key)?;
                    writer.write_str("\":")?;
                    writer.write_str(std::str::from_utf8(json).unwrap_or("null"))?;
                    if !empty {
                        writer.write_char(',')?;
                    }
                }
                writer.write_str(rest)?;
            } else {
                writer.write_str(body)?;
                for (key, json) in context.iter() {
                    if has_text_key(body, key) {
                        continue;
                    }
                    let value = std::str::from_utf8(json).unwrap_or("null");
                    // Strings as text writes them: without their quotes when they need none.
                    let plain = value
                        .strip_prefix('"')
                        .and_then(|v| v.strip_suffix('"'))
                        .filter(|v| !v.contains([' ', '\\', '"', '=']));
                    write!(writer, " {key}={}", plain.unwrap_or(value))?;
                }
            }
            writer.write_str(newline)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::has_top_level_key;

    #[test]
    fn keys_are_found_at_the_top_level_only() {
        let rest = r#""a":1,"span":{"request_id":"x"},"b":"request_id","c\"d":[{"e":2}]}"#;
        assert!(has_top_level_key(rest, "a"));
        assert!(has_top_level_key(rest, "span"));
        assert!(!has_top_level_key(rest, "request_id"));
        assert!(!has_top_level_key(rest, "e"));
        assert!(!has_top_level_key(rest, "b\"d"));
        assert!(has_top_level_key(r#""request_id":"own"}"#, "request_id"));
    }

    #[test]
    fn text_keys_are_whole_fields() {
        let line = "2026-12-01T00:00:00Z  INFO t: m user_id=7 xrequest_id=1";
        assert!(super::has_text_key(line, "user_id"));
        assert!(!super::has_text_key(line, "request_id"));
        assert!(!super::has_text_key(line, "tenant"));
    }
}
