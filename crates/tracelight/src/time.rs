//! Timestamps: RFC 3339 UTC with microseconds, rendered without a date library.
//!
//! The date-and-time-to-the-second part changes once a second, so each thread keeps the last one it
//! rendered and only writes the sub-second digits for the next event in the same second.

use std::cell::Cell;
use std::time::{SystemTime, UNIX_EPOCH};

/// A point in time as seconds and microseconds since the Unix epoch (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Timestamp {
    pub(crate) secs: u64,
    pub(crate) micros: u32,
}

impl Timestamp {
    /// The current time.
    #[inline]
    pub(crate) fn now() -> Self {
        let d = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp {
            secs: d.as_secs(),
            micros: d.subsec_micros(),
        }
    }
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (Howard Hinnant's algorithm).
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = (z - era * 146_097) as u64;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe as i64 + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// (year, month, day) → days since 1970-01-01: the inverse of [`civil_from_days`].
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn two(buf: &mut [u8], at: usize, v: u32) {
    buf[at] = b'0' + (v / 10 % 10) as u8;
    buf[at + 1] = b'0' + (v % 10) as u8;
}

/// `YYYY-MM-DDTHH:MM:SS` for `secs`, with `sep` between date and time.
pub(crate) fn render_seconds(secs: u64, sep: u8) -> [u8; 19] {
    let days = (secs / 86_400) as i64;
    let rem = (secs % 86_400) as u32;
    let (y, m, d) = civil_from_days(days);
    let mut out = *b"0000-00-00T00:00:00";
    let y = y.clamp(0, 9999) as u32;
    two(&mut out, 0, y / 100);
    two(&mut out, 2, y % 100);
    two(&mut out, 5, m);
    two(&mut out, 8, d);
    out[10] = sep;
    two(&mut out, 11, rem / 3600);
    two(&mut out, 14, rem / 60 % 60);
    two(&mut out, 17, rem % 60);
    out
}

thread_local! {
    static LAST_RFC: Cell<(u64, [u8; 19])> = const { Cell::new((u64::MAX, [0; 19])) };
    static LAST_TEXT: Cell<(u64, [u8; 19])> = const { Cell::new((u64::MAX, [0; 19])) };
}

fn cached(
    cache: &'static std::thread::LocalKey<Cell<(u64, [u8; 19])>>,
    secs: u64,
    sep: u8,
) -> [u8; 19] {
    cache
        .try_with(|c| {
            let (s, r) = c.get();
            if s == secs {
                r
            } else {
                let r = render_seconds(secs, sep);
                c.set((secs, r));
                r
            }
        })
        .unwrap_or_else(|_| render_seconds(secs, sep))
}

/// Appends `2026-02-10T22:30:00.123456Z` (27 bytes, always the same width).
#[inline]
pub(crate) fn write_rfc3339(buf: &mut Vec<u8>, ts: Timestamp) {
    let head = cached(&LAST_RFC, ts.secs, b'T');
    buf.extend_from_slice(&head);
    let mut frac = *b".000000Z";
    let mut us = ts.micros;
    for i in (1..7).rev() {
        frac[i] = b'0' + (us % 10) as u8;
        us /= 10;
    }
    buf.extend_from_slice(&frac);
}

/// Appends `2026-02-10 22:30:00.123` (UTC, milliseconds) for the text format.
#[inline]
pub(crate) fn write_text(buf: &mut Vec<u8>, ts: Timestamp) {
    let head = cached(&LAST_TEXT, ts.secs, b' ');
    buf.extend_from_slice(&head);
    let ms = ts.micros / 1000;
    buf.extend_from_slice(&[
        b'.',
        b'0' + (ms / 100) as u8,
        b'0' + (ms / 10 % 10) as u8,
        b'0' + (ms % 10) as u8,
    ]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_from_civil_inverts_civil_from_days() {
        for days in [-719_468i64, -1, 0, 1, 365, 11_016, 20_423, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
    }

    #[test]
    fn renders_known_instants() {
        let mut b = Vec::new();
        write_rfc3339(&mut b, Timestamp { secs: 0, micros: 5 });
        assert_eq!(b, b"1970-01-01T00:00:00.000005Z");
        b.clear();
        // 2026-02-10T22:30:00Z
        write_rfc3339(
            &mut b,
            Timestamp {
                secs: 1_770_762_600,
                micros: 123_456,
            },
        );
        assert_eq!(b, b"2026-02-10T22:30:00.123456Z");
        b.clear();
        // 2024-02-29T23:59:59Z, a leap day
        write_text(
            &mut b,
            Timestamp {
                secs: 1_709_251_199,
                micros: 999_999,
            },
        );
        assert_eq!(b, b"2024-02-29 23:59:59.999");
    }

    #[test]
    fn every_day_of_four_centuries_round_trips() {
        // Compare against a naive day counter over 1970..2400.
        let (mut y, mut m, mut d) = (1970i64, 1u32, 1u32);
        let leap = |y: i64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        for days in 0..(430 * 365) {
            assert_eq!(civil_from_days(days), (y, m, d));
            let mdays = [
                31,
                if leap(y) { 29 } else { 28 },
                31,
                30,
                31,
                30,
                31,
                31,
                30,
                31,
                30,
                31,
            ];
            d += 1;
            if d > mdays[(m - 1) as usize] {
                d = 1;
                m += 1;
                if m > 12 {
                    m = 1;
                    y += 1;
                }
            }
        }
    }
}
