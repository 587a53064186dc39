//! Bounds on the in-memory tables whose keys come from input: timing aggregates by operation,
//! error groups and security event types. Past its bound, a table counts new keys under one
//! `other` entry, and says so once on stderr.

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// The key new entries are counted under once a table is full.
pub(crate) const OTHER: &str = "other";

/// How many keys a table took past its bound, and whether that was reported.
#[derive(Debug, Default)]
pub(crate) struct Overflow {
    folded: AtomicU64,
    reported: AtomicBool,
}

impl Overflow {
    /// Counts one key folded into `other`; the first time, says so on stderr (`table` names the
    /// table, `setting` how to raise the bound).
    pub(crate) fn fold(&self, table: &str, bound: usize, setting: &str) {
        self.folded.fetch_add(1, Ordering::Relaxed);
        if !self.reported.swap(true, Ordering::AcqRel) {
            let _ = writeln!(
                std::io::stderr(),
                "tracelight: {table}: more than {bound} distinct keys; new ones are counted under \
                 \"{OTHER}\" (raise the bound with {setting})"
            );
        }
    }

    /// How many keys were folded into `other`.
    pub(crate) fn folded(&self) -> u64 {
        self.folded.load(Ordering::Relaxed)
    }
}

/// `s` cut to at most `max` bytes at a character boundary, with `…` when cut.
pub(crate) fn truncated(s: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if s.len() <= max {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    std::borrow::Cow::Owned(format!("{}…", &s[..end]))
}
