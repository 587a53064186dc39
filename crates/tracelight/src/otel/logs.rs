//! Log records built from tracelight's own capture of each event.
//!
//! The pipeline's layer ([`LogLayer`]) holds the log export. The first tracelight layer stacked
//! above it that writes lines finds it (in `on_layer`, through `downcast_ref`) and claims it:
//! from then on each record is built in that layer's event path, from the capture every line is
//! rendered from. So the record and the line are the same event seen once — the same fields
//! (already redacted), the same timestamp to the microsecond, the same request id and bound
//! context — and the error carries its type, its message and its `source()` chain as the
//! semantic conventions name them. An event no stream takes (filtered out, sampled out, a
//! repeat suppressed) is no record either.
//!
//! Until a tracelight layer claims it — an application that stacks the pipeline's layer
//! without one — the stock `opentelemetry-appender-tracing` bridge builds the records.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, Severity};
use opentelemetry::Key;
use opentelemetry_sdk::logs::{SdkLogger, SdkLoggerProvider};
use tracing_core::{Level, Subscriber};
use tracing_subscriber::layer::Context as LayerContext;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use crate::context::{content_to_string as content, json_to_string};
use crate::event::capture::{Capture, Kind};
use crate::event::render::Event;

/// A pipeline's log export, as the tracelight layer above it finds it.
pub(crate) struct LogExport {
    logger: SdkLogger,
    /// The serial of the layer state that builds the records (0: none, the bridge builds them).
    /// Only that one emits, so a record is never built twice.
    claimant: AtomicUsize,
}

/// The pipeline's logs layer: answers `downcast_ref::<LogExport>()` for the tracelight layer
/// above it, and hands events to the stock bridge until one claims the export.
pub(crate) struct LogLayer {
    bridge: opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge<
        SdkLoggerProvider,
        SdkLogger,
    >,
    export: Arc<LogExport>,
}

impl LogLayer {
    pub(crate) fn new(provider: &SdkLoggerProvider) -> LogLayer {
        use opentelemetry::logs::LoggerProvider as _;
        LogLayer {
            bridge: opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge::new(
                provider,
            ),
            // The bridge's scope (unnamed), so that both paths' records look alike.
            export: Arc::new(LogExport {
                logger: provider.logger(""),
                claimant: AtomicUsize::new(0),
            }),
        }
    }
}

impl<S> Layer<S> for LogLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_event(&self, event: &tracing_core::Event<'_>, ctx: LayerContext<'_, S>) {
        if self.export.claimant.load(Ordering::Relaxed) == 0 {
            self.bridge.on_event(event, ctx);
        }
    }

    // The one `unsafe` item: the trait method is `unsafe` to implement. The pointers returned
    // are to `self` and to the export it holds, valid as long as the `&self` they came from,
    // and tagged with the exact type they point to.
    #[doc(hidden)]
    #[allow(unsafe_code)]
    unsafe fn downcast_raw(&self, id: std::any::TypeId) -> Option<*const ()> {
        if id == std::any::TypeId::of::<Self>() {
            Some(self as *const Self as *const ())
        } else if id == std::any::TypeId::of::<Arc<LogExport>>() {
            Some(&self.export as *const Arc<LogExport> as *const ())
        } else {
            None
        }
    }
}

/// Makes `shared`'s event path build the records of the log export found below it in
/// `subscriber`, if there is one and no other tracelight layer builds them already.
pub(crate) fn claim(shared: &crate::state::Shared, subscriber: &dyn Subscriber) {
    let Some(export) = subscriber.downcast_ref::<Arc<LogExport>>() else {
        return;
    };
    if shared.log_export.get().is_some() {
        return;
    }
    if export
        .claimant
        .compare_exchange(0, shared.serial, Ordering::AcqRel, Ordering::Acquire)
        .is_ok()
    {
        let _ = shared.log_export.set(Arc::clone(export));
        crate::state::note_log_export(shared, export);
    }
}

/// A layer that `reload::Layer` swapped in for the one that built the records of `export`
/// takes them over (it is told of no subscriber, so it finds none below it).
pub(crate) fn take_over(new: &crate::state::Shared, export: &Arc<LogExport>) {
    if new.log_export.get().is_none() {
        export.claimant.store(new.serial, Ordering::Release);
        let _ = new.log_export.set(Arc::clone(export));
    }
}

/// Gives the records `shared` builds back to the stock bridge (`shared` is going).
pub(crate) fn release(shared: &crate::state::Shared) {
    if let Some(export) = shared.log_export.get() {
        let _ =
            export
                .claimant
                .compare_exchange(shared.serial, 0, Ordering::AcqRel, Ordering::Relaxed);
    }
}

/// The log export `shared`'s event path builds the records of, if it still does.
#[inline]
pub(crate) fn exporting(shared: &crate::state::Shared) -> Option<&SdkLogger> {
    let export = shared.log_export.get()?;
    (export.claimant.load(Ordering::Relaxed) == shared.serial).then_some(&export.logger)
}

fn severity(level: &Level) -> Severity {
    match *level {
        Level::TRACE => Severity::Trace,
        Level::DEBUG => Severity::Debug,
        Level::INFO => Severity::Info,
        Level::WARN => Severity::Warn,
        _ => Severity::Error,
    }
}

/// A JSON token (a captured value, a context entry) as an attribute value: strings as strings,
/// integers, floats and booleans as themselves, anything else as its JSON text.
fn any(token: &[u8]) -> AnyValue {
    match token.first() {
        Some(b'"') => AnyValue::String(json_to_string(token).into()),
        _ => {
            let text = String::from_utf8_lossy(token);
            match &*text {
                "true" => AnyValue::Boolean(true),
                "false" => AnyValue::Boolean(false),
                t => {
                    if let Ok(i) = t.parse::<i64>() {
                        AnyValue::Int(i)
                    } else if t.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
                        // An integer wider than an i64 (a u64, an i128): as text, exactly.
                        AnyValue::String(text.into_owned().into())
                    } else if let Ok(f) = t.parse::<f64>() {
                        AnyValue::Double(f)
                    } else {
                        AnyValue::String(text.into_owned().into())
                    }
                }
            }
        }
    }
}

/// An error's `source()` chain as Rust programs print one (as `anyhow` does): the error's
/// message, then each cause on a numbered line.
fn chain_text(links: &[String]) -> String {
    let mut out = links.first().cloned().unwrap_or_default();
    if links.len() > 1 {
        out.push_str("\n\nCaused by:");
        for (i, link) in links[1..].iter().enumerate() {
            out.push_str(&format!("\n    {i}: {link}"));
        }
    }
    out
}

/// Builds the log record of one event from its capture and hands it to the export.
pub(crate) fn emit(logger: &SdkLogger, ev: &Event<'_>) {
    let meta = ev.meta;
    // The SDK's own diagnostics may be made while it holds the current context borrowed: making
    // a record of them would read it again.
    if meta.target().starts_with("opentelemetry") {
        return;
    }
    let cap: &Capture = ev.capture;
    let mut r = logger.create_log_record();
    // The line's own timestamp, to the microsecond: a record and its line join on time.
    r.set_timestamp(UNIX_EPOCH + Duration::new(ev.ts.secs, ev.ts.micros.saturating_mul(1000)));
    r.set_observed_timestamp(SystemTime::now());
    r.set_target(meta.target().to_owned());
    r.set_event_name(meta.name());
    r.set_severity_number(severity(meta.level()));
    r.set_severity_text(meta.level().as_str());
    r.set_body(AnyValue::String(content(&cap.message).into()));
    // A field named like a context entry is renamed as in the line, so no key repeats.
    let mut keys = crate::fields::KeySet::new(true);
    let mut key_buf = Vec::new();
    if let Some(c) = ev.snapshot.context() {
        for (k, v) in c.iter() {
            keys.add(k);
            r.add_attribute(Key::new(k.to_owned()), any(v));
        }
    }
    let mut key_of = |name: &'static str| -> Key {
        key_buf.clear();
        keys.write_key(&mut key_buf, name);
        let written = key_buf
            .get(1..key_buf.len().saturating_sub(2))
            .unwrap_or_default();
        if written == name.as_bytes() {
            Key::from_static_str(name)
        } else {
            Key::new(content(written))
        }
    };
    for (i, v) in cap.values.iter().enumerate() {
        if cap.error == Some(i) {
            continue;
        }
        let value = match v.kind {
            // A second error: its message, as the line's member has its type.
            Kind::Error { .. } => match cap.chain(v).next() {
                Some(first) => AnyValue::String(content(first).into()),
                None => any(cap.token(i)),
            },
            _ => any(cap.token(i)),
        };
        r.add_attribute(key_of(v.name), value);
    }
    if let Some(i) = cap.error {
        let v = &cap.values[i];
        match v.kind {
            Kind::Error { .. } => {
                let links: Vec<String> = cap.chain(v).map(content).collect();
                r.add_attribute(
                    Key::from_static_str("exception.type"),
                    AnyValue::String(content(cap.token(i)).into()),
                );
                if let Some(first) = links.first() {
                    r.add_attribute(
                        Key::from_static_str("exception.message"),
                        AnyValue::String(first.clone().into()),
                    );
                }
                r.add_attribute(
                    Key::from_static_str("exception.stacktrace"),
                    AnyValue::String(chain_text(&links).into()),
                );
            }
            _ => r.add_attribute(Key::from_static_str("exception.message"), any(cap.token(i))),
        }
        r.add_attribute(
            Key::from_static_str("tracelight.error.field"),
            AnyValue::String(v.name.into()),
        );
    }
    if let Some(fp) = ev.plan.fingerprint {
        r.add_attribute(
            Key::from_static_str("error_fingerprint"),
            AnyValue::String(format!("{fp:016x}").into()),
        );
    }
    if let Some(file) = ev.location.map_or(meta.file(), |l| l.0) {
        r.add_attribute(
            Key::from_static_str("code.file.path"),
            AnyValue::String(file.to_owned().into()),
        );
    }
    if let Some(line) = ev.location.map_or(meta.line(), |l| l.1) {
        r.add_attribute(
            Key::from_static_str("code.line.number"),
            AnyValue::Int(i64::from(line)),
        );
    }
    if ev.thread.len() >= 2 {
        r.add_attribute(
            Key::from_static_str("thread.name"),
            AnyValue::String(json_to_string(ev.thread).into()),
        );
    }
    match &ev.snapshot.otel_parent {
        // An explicit parent: not the thread's current context (the record gets no ids).
        Some(cx) => {
            let _in_parent = cx.clone().attach();
            logger.emit(r);
        }
        None => logger.emit(r),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_become_typed_values() {
        assert_eq!(any(b"42"), AnyValue::Int(42));
        assert_eq!(any(b"-7"), AnyValue::Int(-7));
        assert_eq!(any(b"1.5"), AnyValue::Double(1.5));
        assert_eq!(any(b"true"), AnyValue::Boolean(true));
        assert_eq!(any(br#""a\"b\nc""#), AnyValue::String("a\"b\nc".into()));
        // Wider than an i64: kept exactly, as text.
        assert_eq!(
            any(b"18446744073709551615"),
            AnyValue::String("18446744073709551615".into())
        );
        assert_eq!(any(b"null"), AnyValue::String("null".into()));
    }

    #[test]
    fn a_chain_reads_as_rust_prints_one() {
        let links = ["checkout failed", "payment declined", "connection reset"].map(String::from);
        assert_eq!(
            chain_text(&links),
            "checkout failed\n\nCaused by:\n    0: payment declined\n    1: connection reset"
        );
        assert_eq!(chain_text(&links[..1]), "checkout failed");
    }
}
