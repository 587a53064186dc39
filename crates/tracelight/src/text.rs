//! The text format: one human line per event, for development.
//!
//! ```text
//! 2026-02-10 22:30:00.123 INFO  shop::orders:42 [process_order] | order_created | user_id=42 total=99.99 request_id=0193f2a4-…
//! ```
//!
//! Time (UTC, milliseconds), level, the target (the module that logged) and the line number, the
//! current span's name in brackets, the message, then `key=value` pairs: the event's fields, the current span's fields, the context.
//! Values with spaces, quotes, `=` or control characters are quoted and escaped like JSON strings,
//! so one event is always one line. Colours (level, dimmed separators) only on a terminal.

use tracing_core::Level;

use crate::fields::escape_into;

use crate::json::{level_str, EventLine};
use crate::time::write_text;

const RESET: &[u8] = b"\x1b[0m";
const DIM: &[u8] = b"\x1b[2m";

fn level_colour(level: &Level) -> &'static [u8] {
    match *level {
        Level::TRACE => b"\x1b[35m",
        Level::DEBUG => b"\x1b[34m",
        Level::INFO => b"\x1b[32m",
        Level::WARN => b"\x1b[33m",
        Level::ERROR => b"\x1b[1;31m",
    }
}

/// Writes the time, level, location and message: `2026-… INFO  target:42 [span] | message |`.
pub(crate) fn write_head(buf: &mut Vec<u8>, ev: &EventLine<'_>, span: Option<&str>, ansi: bool) {
    write_text(buf, ev.ts);
    buf.push(b' ');
    if ansi {
        buf.extend_from_slice(level_colour(ev.level));
    }
    let lvl = level_str(ev.level);
    buf.extend_from_slice(lvl.as_bytes());
    if ansi {
        buf.extend_from_slice(RESET);
    }
    for _ in lvl.len()..6 {
        buf.push(b' ');
    }
    // Where the code that logged is (module and line), then the current span, shown as a span
    // and never so that it reads as a function name: `shop::orders:42 [process_order]`.
    escape_control(buf, ev.target);
    if let Some(line) = ev.line {
        buf.push(b':');
        buf.extend_from_slice(itoa::Buffer::new().format(line).as_bytes());
    }
    if let Some(span) = span {
        buf.extend_from_slice(b" [");
        escape_control(buf, span);
        buf.push(b']');
    }
    sep(buf, ansi);
    buf.push(b' ');
    // The message arrives escaped as JSON content: already one line.
    buf.extend_from_slice(ev.message);
    sep(buf, ansi);
}

/// Removes the separator `write_head` put after the message.
pub(crate) fn trim_separator(buf: &mut Vec<u8>, ansi: bool) {
    let sep: &[u8] = if ansi { b"\x1b[2m |\x1b[0m" } else { b" |" };
    if buf.ends_with(sep) {
        buf.truncate(buf.len() - sep.len());
    }
}

#[inline]
fn sep(buf: &mut Vec<u8>, ansi: bool) {
    if ansi {
        buf.extend_from_slice(DIM);
        buf.extend_from_slice(b" |");
        buf.extend_from_slice(RESET);
    } else {
        buf.extend_from_slice(b" |");
    }
}

#[inline]
fn escape_control(buf: &mut Vec<u8>, s: &str) {
    escape_into(buf, s);
}

/// Writes ` key=` (the key dimmed on a terminal). A key that would not read back as one key
/// (empty, or with a space, `=`, `"`, `|`, `\\` or a character that must be escaped) is written
/// as a quoted string, like a value: `"a b"=1`.
#[inline]
pub(crate) fn write_key(buf: &mut Vec<u8>, key: &str, ansi: bool) {
    buf.push(b' ');
    if ansi {
        buf.extend_from_slice(DIM);
    }
    if needs_quotes(key.as_bytes()) || crate::fields::needs_escape(key.as_bytes()) {
        crate::fields::write_str(buf, key);
    } else {
        buf.extend_from_slice(key.as_bytes());
    }
    buf.push(b'=');
    if ansi {
        buf.extend_from_slice(RESET);
    }
}

/// Bytes that make a text value need quotes: space, `"`, `=`, `\` (an escape), `|`.
static QUOTE: [bool; 256] = {
    let mut t = [false; 256];
    t[b' ' as usize] = true;
    t[b'"' as usize] = true;
    t[b'=' as usize] = true;
    t[b'\\' as usize] = true;
    t[b'|' as usize] = true;
    t
};

/// Whether a value needs quotes in the text format: it is empty, or holds one of the [`QUOTE`]
/// bytes. Eight bytes at a time, as [`needs_escape`](crate::fields::needs_escape) does.
#[inline]
pub(crate) fn needs_quotes(v: &[u8]) -> bool {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    #[inline(always)]
    fn has(w: u64, b: u8) -> u64 {
        (w ^ (LO * u64::from(b))).wrapping_sub(LO)
    }
    if v.is_empty() {
        return true;
    }
    let mut chunks = v.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_le_bytes(word);
        let hits = has(w, b' ') | has(w, b'"') | has(w, b'=') | has(w, b'\\') | has(w, b'|');
        // Masked to bytes that were ASCII: the subtractions set false alarms for the others.
        if hits & !w & HI != 0 {
            return true;
        }
    }
    chunks.remainder().iter().any(|&b| QUOTE[b as usize])
}

/// Quotes the value written since `start` when it is empty or holds a space, quote, `=` or escape.
pub(crate) fn quote_if_needed(buf: &mut Vec<u8>, start: usize) {
    if needs_quotes(&buf[start..]) {
        buf.insert(start, b'"');
        buf.push(b'"');
    }
}

/// ` key=value` pairs rendered once for many lines, with the key and the end of each, so that a
/// line can leave out the pairs whose key its event already wrote.
#[derive(Debug, Default, Clone)]
pub(crate) struct Pairs {
    pub(crate) bytes: Vec<u8>,
    /// The keys, one after the other.
    names: String,
    /// For each pair: the end of its key in `names`, the end of the pair in `bytes`.
    index: Vec<(u32, u32)>,
}

impl Pairs {
    pub(crate) fn clear(&mut self) {
        self.bytes.clear();
        self.names.clear();
        self.index.clear();
    }

    fn push(&mut self, key: &str, value: &[u8], ansi: bool) {
        write_key(&mut self.bytes, key, ansi);
        write_json_value(&mut self.bytes, value);
        self.names.push_str(key);
        self.index
            .push((self.names.len() as u32, self.bytes.len() as u32));
    }

    pub(crate) fn copy_from(&mut self, other: &Pairs) {
        self.clear();
        self.bytes.extend_from_slice(&other.bytes);
        self.names.push_str(&other.names);
        self.index.extend_from_slice(&other.index);
    }

    /// Writes the pairs whose key `skip` does not name.
    pub(crate) fn write_except(&self, out: &mut Vec<u8>, skip: impl Fn(&str) -> bool) {
        let (mut name_start, mut start) = (0usize, 0usize);
        for &(name_end, end) in &self.index {
            let (name_end, end) = (name_end as usize, end as usize);
            if !skip(&self.names[name_start..name_end]) {
                out.extend_from_slice(&self.bytes[start..end]);
            }
            (name_start, start) = (name_end, end);
        }
    }
}

/// Writes a span's fields, then the context entries the fields do not hold, as ` key=value`
/// pairs.
pub(crate) fn write_span_pairs(
    out: &mut Pairs,
    fields: &crate::fields::SpanFields,
    ctx: Option<&crate::context::Context>,
    ansi: bool,
) {
    for (k, v) in fields.iter() {
        out.push(k, v, ansi);
    }
    if let Some(c) = ctx {
        for (k, v) in c.iter() {
            // The span's own fields are already written.
            if fields.names().any(|n| n == k) {
                continue;
            }
            out.push(k, v, ansi);
        }
    }
}

/// Writes a value that is already rendered as JSON (span and context fields) in text form.
#[inline]
pub(crate) fn write_json_value(buf: &mut Vec<u8>, json: &[u8]) {
    if json.len() >= 2 && json[0] == b'"' {
        let inner = &json[1..json.len() - 1];
        let start = buf.len();
        buf.extend_from_slice(inner);
        // `inner` is escaped JSON content; quote it if it needs quoting in logfmt.
        if needs_quotes(inner) {
            buf.truncate(start);
            buf.extend_from_slice(json);
        }
    } else {
        buf.extend_from_slice(json);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needs_quotes_agrees_with_the_table() {
        assert!(needs_quotes(b""));
        for b in 0u8..=255 {
            for len in 1..=17 {
                for pos in 0..len {
                    let mut v = vec![b'a'; len];
                    v[pos] = b;
                    assert_eq!(needs_quotes(&v), QUOTE[b as usize], "{v:?}");
                }
            }
        }
    }

    #[test]
    fn json_values_in_text_form() {
        let mut b = Vec::new();
        write_json_value(&mut b, b"\"plain\"");
        b.push(b' ');
        write_json_value(&mut b, b"\"two words\"");
        b.push(b' ');
        write_json_value(&mut b, b"42");
        assert_eq!(b, b"plain \"two words\" 42");
    }
}
