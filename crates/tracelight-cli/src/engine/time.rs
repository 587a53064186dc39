//! Timestamps: the fixed-width fast path, a general RFC 3339 parser, relative times and formatting.
//!
//! Every time in this crate is a count of microseconds since the Unix epoch (UTC) in an `i64`.
//! tracelight writes `timestamp` as the first key of every line, always 27 characters wide
//! (`2026-02-10T22:30:00.123456Z`), so [`parse_fixed`] can turn it into a number with a handful of
//! digit operations and no allocation; [`parse_rfc3339`] handles everything else a user may type or
//! another writer may produce.

use std::time::{SystemTime, UNIX_EPOCH};

/// Microseconds in one second.
pub(crate) const MICROS_PER_SEC: i64 = 1_000_000;

/// Days since 1970-01-01 of a proleptic Gregorian date.
pub(crate) fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date `(year, month, day)` of a count of days since 1970-01-01.
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[inline]
fn digits(b: &[u8]) -> Option<u32> {
    let mut v = 0u32;
    for &c in b {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v * 10 + u32::from(d);
    }
    Some(v)
}

/// Parses exactly `YYYY-MM-DDTHH:MM:SS.ffffffZ` (27 bytes), the form tracelight writes.
///
/// Returns `None` for anything else; callers then fall back to [`parse_rfc3339`].
#[inline]
pub(crate) fn parse_fixed(b: &[u8]) -> Option<i64> {
    if b.len() != tracelight_schema::layout::TIMESTAMP_LEN
        || tracelight_schema::layout::TIMESTAMP_SEPARATORS
            .iter()
            .any(|&(i, c)| b[i] != c)
    {
        return None;
    }
    let year = digits(&b[0..4])?;
    let month = digits(&b[5..7])?;
    let day = digits(&b[8..10])?;
    let hour = digits(&b[11..13])?;
    let min = digits(&b[14..16])?;
    let sec = digits(&b[17..19])?;
    let micros = digits(&b[20..26])?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    let days = days_from_civil(i64::from(year), month, day);
    let secs = days * 86_400 + i64::from(hour) * 3600 + i64::from(min) * 60 + i64::from(sec);
    Some(secs * MICROS_PER_SEC + i64::from(micros))
}

/// Parses an RFC 3339 timestamp, or the friendlier `YYYY-MM-DD HH:MM[:SS[.fff]]` and `YYYY-MM-DD`.
///
/// A time without an offset is taken as UTC (tracelight writes UTC). Offsets `Z`, `+HH:MM`,
/// `-HH:MM` and `+HHMM` are accepted; the fraction may have any number of digits (kept to
/// microseconds).
pub(crate) fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.trim().as_bytes();
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let year = digits(&b[0..4])?;
    let month = digits(&b[5..7])?;
    let day = digits(&b[8..10])?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let days = days_from_civil(i64::from(year), month, day);
    let mut secs = days * 86_400;
    let mut micros: i64 = 0;
    let mut i = 10;
    if i < b.len() {
        if b[i] != b'T' && b[i] != b't' && b[i] != b' ' {
            return None;
        }
        i += 1;
        if b.len() < i + 5 || b[i + 2] != b':' {
            return None;
        }
        let hour = digits(&b[i..i + 2])?;
        let min = digits(&b[i + 3..i + 5])?;
        i += 5;
        let mut sec = 0;
        if i < b.len() && b[i] == b':' {
            if b.len() < i + 3 {
                return None;
            }
            sec = digits(&b[i + 1..i + 3])?;
            i += 3;
            if i < b.len() && (b[i] == b'.' || b[i] == b',') {
                i += 1;
                let start = i;
                let mut scale = 100_000i64;
                while i < b.len() && b[i].is_ascii_digit() {
                    micros += i64::from(b[i] - b'0') * scale;
                    scale /= 10;
                    i += 1;
                }
                if i == start {
                    return None;
                }
            }
        }
        if hour > 23 || min > 59 || sec > 60 {
            return None;
        }
        secs += i64::from(hour) * 3600 + i64::from(min) * 60 + i64::from(sec);
        if i < b.len() {
            match b[i] {
                b'Z' | b'z' if i + 1 == b.len() => {}
                sign @ (b'+' | b'-') => {
                    let rest = &b[i + 1..];
                    let (oh, om) = match rest.len() {
                        5 if rest[2] == b':' => (digits(&rest[0..2])?, digits(&rest[3..5])?),
                        4 => (digits(&rest[0..2])?, digits(&rest[2..4])?),
                        2 => (digits(rest)?, 0),
                        _ => return None,
                    };
                    let off = i64::from(oh) * 3600 + i64::from(om) * 60;
                    secs -= if sign == b'+' { off } else { -off };
                }
                _ => return None,
            }
        }
    }
    Some(secs * MICROS_PER_SEC + micros)
}

/// Formats microseconds since the Unix epoch the way tracelight writes timestamps (RFC 3339,
/// UTC, six decimals: 27 characters), e.g. a [`Match::timestamp`](crate::Match::timestamp).
///
/// ```
/// assert_eq!(
///     tracelight_cli::format_timestamp(1_770_762_600_000_001),
///     "2026-02-10T22:30:00.000001Z"
/// );
/// ```
pub fn format_micros(t: i64) -> String {
    let secs = t.div_euclid(MICROS_PER_SEC);
    let micros = t.rem_euclid(MICROS_PER_SEC);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}Z",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    )
}

/// The current time in microseconds since the epoch.
pub(crate) fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Parses a duration such as `30s`, `15m`, `1h`, `2d`, `1w`, `250ms` or `1.5h` into microseconds.
pub(crate) fn parse_duration(s: &str) -> Option<i64> {
    let s = s.trim();
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let unit_micros = match unit {
        "us" | "µs" => 1.0,
        "ms" => 1e3,
        "s" | "sec" | "secs" => 1e6,
        "m" | "min" | "mins" => 60e6,
        "h" | "hour" | "hours" => 3600e6,
        "d" | "day" | "days" => 86_400e6,
        "w" | "week" | "weeks" => 604_800e6,
        _ => return None,
    };
    let v = n * unit_micros;
    if (0.0..9.0e18).contains(&v) {
        Some(v as i64)
    } else {
        None
    }
}

/// Parses a `--since`/`--until` value: a relative time before `now` (`30s`, `15m`, `1h`, `2d`),
/// `now`, or an absolute time (RFC 3339 or `YYYY-MM-DD HH:MM:SS`, UTC when no offset is given).
pub(crate) fn parse_time_arg(s: &str, now: i64) -> Option<i64> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("now") {
        return Some(now);
    }
    if let Some(d) = parse_duration(t) {
        return Some(now - d);
    }
    if let Some(d) = t.strip_suffix(" ago").and_then(parse_duration) {
        return Some(now - d);
    }
    parse_rfc3339(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_and_general_agree() {
        let s = "2026-02-10T22:30:00.123456Z";
        let a = parse_fixed(s.as_bytes());
        assert_eq!(a, parse_rfc3339(s));
        assert_eq!(a.map(format_micros).as_deref(), Some(s));
        assert_eq!(
            parse_rfc3339("2026-02-10T23:30:00.123456+01:00"),
            parse_rfc3339(s)
        );
        assert_eq!(
            parse_rfc3339("2026-02-10 22:30:00"),
            parse_rfc3339("2026-02-10T22:30:00Z")
        );
        assert!(parse_fixed(b"2026-02-10T22:30:00.12345xZ").is_none());
    }

    #[test]
    fn epoch_round_trip() {
        for days in [-800_000i64, -1, 0, 1, 19_000, 20_500, 2_000_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Some(30_000_000));
        assert_eq!(parse_duration("15m"), Some(900_000_000));
        assert_eq!(parse_duration("2d"), Some(172_800_000_000));
        assert_eq!(parse_duration("1.5h"), Some(5_400_000_000));
        assert_eq!(parse_duration("abc"), None);
        assert_eq!(parse_time_arg("1h", 10_000_000_000), Some(6_400_000_000));
    }
}
