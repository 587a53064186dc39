//! Small helpers every module may use: they depend on nothing else in the crate.

use std::hash::Hasher;
use std::sync::{Mutex, MutexGuard};

/// Locks `m`, recovering the data when a thread panicked while holding it: a layer never panics
/// into user code because another thread did.
#[inline]
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Milliseconds since the Unix epoch (0 before it, `u64::MAX` past the year 584 million).
#[inline]
pub(crate) fn unix_millis() -> u64 {
    u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis(),
    )
    .unwrap_or(u64::MAX)
}

/// The host name: `/proc/sys/kernel/hostname`, `/etc/hostname`, `HOSTNAME`, `COMPUTERNAME`, or
/// `localhost`.
pub(crate) fn hostname() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|s| !s.is_empty()))
        .or_else(|| std::env::var("COMPUTERNAME").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "localhost".to_owned())
}

/// The name of the running binary, or `unknown_service`.
pub(crate) fn binary_name() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown_service".to_owned())
}

/// Hashes a span id (already unique) with one multiplication.
#[derive(Debug, Default)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0 = fnv_bytes(self.0, bytes);
    }
    #[inline]
    fn write_u64(&mut self, v: u64) {
        self.0 = mix(v);
    }
}

/// FNV-1a steps over `bytes` from `state`: what the id hashers do with anything but a `u64`.
pub(crate) fn fnv_bytes(mut state: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        state = (state ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    state
}

#[inline]
pub(crate) fn mix(v: u64) -> u64 {
    let m = u128::from(v).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (m as u64) ^ ((m >> 64) as u64)
}

/// tracelight's own messages to stderr (a destination that fails, a bound reached): handed to a
/// thread of their own, so that a stderr that blocks (the same pipe as a stopped stdout) blocks
/// neither a caller nor a writer. At most 256 wait; more are dropped.
pub(crate) fn say(message: String) {
    use std::io::Write as _;
    use std::sync::atomic::Ordering;
    let sender = SAY.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<String>(256);
        std::thread::Builder::new()
            .name("tracelight-stderr".into())
            .spawn(move || {
                for m in rx {
                    let _ = writeln!(std::io::stderr(), "{m}");
                    SAYING.fetch_sub(1, Ordering::AcqRel);
                }
            })
            .ok()
            .map(|_| tx)
    });
    match sender {
        Some(tx) => {
            SAYING.fetch_add(1, Ordering::AcqRel);
            if tx.try_send(message).is_err() {
                SAYING.fetch_sub(1, Ordering::AcqRel);
            }
        }
        None => {
            let _ = writeln!(std::io::stderr(), "{message}");
        }
    }
}

static SAY: std::sync::OnceLock<Option<std::sync::mpsc::SyncSender<String>>> =
    std::sync::OnceLock::new();
/// Messages handed to [`say`] not yet written.
static SAYING: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Waits until the messages of [`say`] are written, at most `bound` (at exit).
pub(crate) fn said(bound: std::time::Duration) {
    let deadline = std::time::Instant::now() + bound;
    while SAYING.load(std::sync::atomic::Ordering::Acquire) > 0
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}
