//! The panic hook: a panic becomes an ERROR event with its location (and backtrace when
//! `RUST_BACKTRACE` asks for one), flushed before the previous hook runs and the process goes on
//! to unwind or abort.

use std::backtrace::{Backtrace, BacktraceStatus};
use std::sync::Arc;

use crate::state::Shared;

/// Installs the hook. The panic line goes to the current dispatcher, so that dispatcher's
/// tracelight state is flushed (found as `bind` finds it); `installed_by` (the state of the
/// subscriber `init()` installed) when there is none.
pub(crate) fn install(installed_by: Arc<Shared>) {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("Box<dyn Any>");
        let backtrace = Backtrace::capture();
        let backtrace =
            (backtrace.status() == BacktraceStatus::Captured).then(|| backtrace.to_string());
        let current = (!crate::exit::exiting()).then(std::thread::current);
        let thread = current
            .as_ref()
            .and_then(|t| t.name())
            .unwrap_or("<unnamed>");
        // A panic on one of tracelight's own threads must not wait for that thread.
        let own_thread = thread.starts_with("tracelight-");
        let state = crate::state::current();
        let shared = state.as_ref().map_or(&installed_by, |s| &s.shared);
        if tracing::enabled!(target: "panic", tracing::Level::ERROR) {
            match info.location() {
                // The line's `file` and `line` are the panic's, not this hook's.
                Some(loc) => crate::event::reporting_at(
                    match static_file(loc.file()) {
                        Some(file) => (Some(file), Some(loc.line())),
                        None => (None, None),
                    },
                    || {
                        tracing::error!(
                            target: "panic",
                            panic_file = loc.file(),
                            panic_line = loc.line(),
                            panic_column = loc.column(),
                            panic_thread = thread,
                            backtrace = backtrace.as_deref(),
                            "panicked at {}:{}:{}: {}",
                            loc.file(),
                            loc.line(),
                            loc.column(),
                            message
                        )
                    },
                ),
                None => tracing::error!(
                    target: "panic",
                    panic_thread = thread,
                    backtrace = backtrace.as_deref(),
                    "panicked: {}",
                    message
                ),
            }
        } else {
            // The user's filter leaves out the `panic` target (`RUST_LOG=my_service=info`): the
            // line is written through tracelight's own state instead, to every stream that takes
            // errors, so the one line that matters is never filtered away.
            write_unfiltered(
                shared,
                state.as_ref(),
                info.location(),
                message,
                thread,
                backtrace.as_deref(),
            );
        }
        if !own_thread {
            // Bounded: a panic must not hang on a stalled output.
            match &state {
                Some(state) => _ = state.shared.flush_bounded(),
                None => _ = installed_by.flush_bounded(),
            }
        }
        previous(info);
    }));
}

/// Writes the panic line as a line of tracelight's own, with the request id of the current span
/// when there is one.
/// `file` as a `&'static str`, for the line's location: a panic's file name is the program's
/// own (`Location::caller()`'s, static in practice, but not by its type), kept once. At most 256
/// files are kept; past that the line shows no location of its own (the `panic_file` field
/// still has it).
fn static_file(file: &str) -> Option<&'static str> {
    static FILES: std::sync::Mutex<Vec<&'static str>> = std::sync::Mutex::new(Vec::new());
    let mut files = FILES.lock().ok()?;
    if let Some(known) = files.iter().find(|f| **f == file) {
        return Some(known);
    }
    if files.len() >= 256 {
        return None;
    }
    let kept: &'static str = Box::leak(file.to_owned().into_boxed_str());
    files.push(kept);
    Some(kept)
}

fn write_unfiltered(
    shared: &Shared,
    state: Option<&crate::state::StateRef>,
    location: Option<&std::panic::Location<'_>>,
    message: &str,
    thread: &str,
    backtrace: Option<&str>,
) {
    use crate::state::SynthValue;
    let request_id = state.and_then(|s| {
        tracing::dispatcher::get_default(|d| {
            let id = d.current_span().id()?.clone();
            s.spans
                .with(&id, |st| st.ctx.as_ref().and_then(|c| c.request_id()))?
        })
    });
    let text = match location {
        Some(loc) => format!(
            "panicked at {}:{}:{}: {message}",
            loc.file(),
            loc.line(),
            loc.column()
        ),
        None => format!("panicked: {message}"),
    };
    let text = match &shared.redactor {
        Some(r) => r.redact_str(&text),
        None => text,
    };
    let mut fields: Vec<(&str, SynthValue<'_>)> = Vec::new();
    if let Some(id) = &request_id {
        fields.push((crate::context::REQUEST_ID, SynthValue::Str(id)));
    }
    if let Some(loc) = location {
        fields.push(("panic_file", SynthValue::Str(loc.file())));
        fields.push(("panic_line", SynthValue::U64(u64::from(loc.line()))));
        fields.push(("panic_column", SynthValue::U64(u64::from(loc.column()))));
    }
    fields.push(("panic_thread", SynthValue::Str(thread)));
    if let Some(bt) = backtrace {
        fields.push(("backtrace", SynthValue::Str(bt)));
    }
    shared.emit_synthetic_at(
        tracing::Level::ERROR,
        "panic",
        location.map(|l| (l.file(), l.line())),
        &text,
        &fields,
    );
}
