//! Lines logged just before `std::process::exit` reach their files.
//!
//! `std::process::exit` runs no destructors, so the [`Guard`](crate::Guard)'s flush never runs
//! and whatever the writer thread had not written yet was lost — typically the line that says
//! why the process exits. Two ways out keep those lines:
//!
//! - [`exit`]: flushes every tracelight subscriber of the process, then exits;
//! - an exit handler registered with the C runtime (`atexit`) when the first tracelight layer is
//!   built, which does the same when the process exits through `std::process::exit` (or
//!   `libc::exit`, or a return from `main` after the guard was leaked).
//!
//! Both wait for each writer thread as long as it makes progress, and give up after the block
//! timeout without progress (`LOG_BLOCK_TIMEOUT`, [`EXIT_FLUSH_BOUND`] by default: a stdout pipe
//! nobody reads must not hold the exit).
//! A process killed by a signal (`SIGKILL`), or ended by `abort`, runs neither: what was still
//! queued then is lost, and the next start finds the last line of a file cut short (see
//! `docs/streams.md`).
//!
//! Registering the handler is a call into the C runtime, one of the crate's two `unsafe` items
//! (the other is the layer's `downcast_raw`).

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Once;
use std::time::Duration;

/// How long the exit flush waits for a writer that makes no progress, by default (the default of
/// [`Builder::block_timeout`](crate::Builder::block_timeout)).
pub const EXIT_FLUSH_BOUND: Duration = Duration::from_secs(1);

/// Flushes every tracelight subscriber of the process (waiting at most [`EXIT_FLUSH_BOUND`] for
/// a writer that makes no progress), then exits with `code`.
///
/// ```no_run
/// let _guard = tracelight::init()?;
/// tracing::error!("fatal: the configuration cannot be read");
/// tracelight::exit(1); // the line above is on disk
/// # Ok::<(), tracelight::Error>(())
/// ```
pub fn exit(code: i32) -> ! {
    flush_all();
    std::process::exit(code)
}

/// Set once the process is on its way out: lines written from then on do not wait for room in a
/// queue, and do not ask for the thread's name (its thread-local data may be gone).
static EXITING: AtomicBool = AtomicBool::new(false);

/// Whether the process is exiting (see [`EXITING`]).
#[inline]
pub(crate) fn exiting() -> bool {
    EXITING.load(Ordering::Relaxed)
}

/// Flushes every live tracelight state, bounded, once.
fn flush_all() {
    if EXITING.swap(true, Ordering::AcqRel) {
        return;
    }
    for shared in crate::state::all_shared() {
        shared.flush_at_exit(EXIT_FLUSH_BOUND);
    }
    crate::sink::flush_all_at_exit();
}

static REGISTERED: Once = Once::new();

/// The process that registered the handler: a forked child (which has no writer thread) skips it.
static REGISTERED_BY: AtomicU32 = AtomicU32::new(0);

/// Registers the exit handler, once per process.
pub(crate) fn register() {
    REGISTERED.call_once(|| {
        REGISTERED_BY.store(std::process::id(), Ordering::Relaxed);
        // SAFETY: `atexit` takes a plain `extern "C" fn()` that lives for the whole program, and
        // may be called from any thread; the handler below never unwinds.
        #[allow(unsafe_code)]
        let _ = unsafe { libc::atexit(at_exit) };
    });
}

/// Runs when the process exits: every lock it takes is taken with a bound or only briefly, and a
/// panic inside is caught (unwinding out of an `extern "C"` function would abort).
extern "C" fn at_exit() {
    if REGISTERED_BY.load(Ordering::Relaxed) != std::process::id() {
        return;
    }
    let _ = std::panic::catch_unwind(flush_all);
}
