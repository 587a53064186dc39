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
        let thread = std::thread::current();
        let thread = thread.name().unwrap_or("<unnamed>");
        match info.location() {
            Some(loc) => tracing::error!(
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
            ),
            None => tracing::error!(
                target: "panic",
                panic_thread = thread,
                backtrace = backtrace.as_deref(),
                "panicked: {}",
                message
            ),
        }
        match crate::state::current() {
            Some(state) => state.shared.flush(),
            None => installed_by.flush(),
        }
        previous(info);
    }));
}
