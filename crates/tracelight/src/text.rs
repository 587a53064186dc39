//! The text format: one human line per event, for development.
//!
//! ```text
//! 2026-02-10 22:30:00.123 INFO  shop::orders::process_order:42 | order_created | user_id=42 total=99.99 request_id=0193f2a4-…
//! ```
//!
//! Time (UTC, milliseconds), level, target with the current span's name and the line number, the
//! message, then `key=value` pairs: the event's fields, the current span's fields, the context.
//! Values with spaces, quotes, `=` or control characters are quoted and escaped like JSON strings,
//! so one event is always one line. Colours (level, dimmed separators) only on a terminal.

use std::fmt::{self, Write as _};

use tracing_core::field::{Field, Visit};
use tracing_core::Level;

use crate::fields::{escape_into, JsonEscaper, REDACTED};
use crate::json::{level_str, EventLine};
use crate::redact::Redactor;
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

/// Writes the time, level, location and message: `2026-… INFO  target::span:42 | message |`.
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
    escape_control(buf, ev.target);
    if let Some(span) = span {
        buf.extend_from_slice(b"::");
        escape_control(buf, span);
    }
    if let Some(line) = ev.line {
        buf.push(b':');
        buf.extend_from_slice(itoa::Buffer::new().format(line).as_bytes());
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

/// Writes ` key=` (the key dimmed on a terminal).
#[inline]
pub(crate) fn write_key(buf: &mut Vec<u8>, key: &str, ansi: bool) {
    buf.push(b' ');
    if ansi {
        buf.extend_from_slice(DIM);
    }
    escape_into(buf, key);
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

#[inline]
fn needs_quotes(v: &[u8]) -> bool {
    v.is_empty() || v.iter().any(|&b| QUOTE[b as usize])
}

/// Quotes the value written since `start` when it is empty or holds a space, quote, `=` or escape.
fn quote_if_needed(buf: &mut Vec<u8>, start: usize) {
    if needs_quotes(&buf[start..]) {
        buf.insert(start, b'"');
        buf.push(b'"');
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

/// Writes an event's fields as ` key=value` pairs.
pub(crate) struct TextVisitor<'a> {
    pub(crate) out: &'a mut Vec<u8>,
    pub(crate) redactor: Option<&'a Redactor>,
    pub(crate) ansi: bool,
    pub(crate) skip_log_fields: bool,
    /// Where the `message` field goes, escaped.
    pub(crate) message: Option<&'a mut Vec<u8>>,
}

impl TextVisitor<'_> {
    fn key(&mut self, field: &Field) -> bool {
        let name = field.name();
        if name == "message" || (self.skip_log_fields && name.starts_with("log.")) {
            return false;
        }
        write_key(self.out, name, self.ansi);
        true
    }

    fn secret(&self, field: &Field) -> bool {
        self.redactor
            .is_some_and(|r| r.is_secret_field(field.name()))
    }

    fn plain(&mut self, field: &Field, v: impl itoa_or_ryu::Render) {
        if self.key(field) {
            if self.secret(field) {
                self.out.extend_from_slice(REDACTED.as_bytes());
            } else {
                v.render(self.out);
            }
        }
    }

    fn string_like(&mut self, field: &Field, f: impl FnOnce(&mut Vec<u8>)) {
        if !self.key(field) {
            return;
        }
        let start = self.out.len();
        if self.secret(field) {
            self.out.extend_from_slice(REDACTED.as_bytes());
            return;
        }
        f(self.out);
        if let Some(r) = self.redactor {
            r.redact_raw(self.out, start);
        }
        quote_if_needed(self.out, start);
    }
}

mod itoa_or_ryu {
    pub(crate) trait Render {
        fn render(self, buf: &mut Vec<u8>);
    }
    impl Render for i64 {
        fn render(self, buf: &mut Vec<u8>) {
            crate::fields::write_i64(buf, self)
        }
    }
    impl Render for u64 {
        fn render(self, buf: &mut Vec<u8>) {
            crate::fields::write_u64(buf, self)
        }
    }
    impl Render for i128 {
        fn render(self, buf: &mut Vec<u8>) {
            buf.extend_from_slice(itoa::Buffer::new().format(self).as_bytes())
        }
    }
    impl Render for u128 {
        fn render(self, buf: &mut Vec<u8>) {
            buf.extend_from_slice(itoa::Buffer::new().format(self).as_bytes())
        }
    }
    impl Render for f64 {
        fn render(self, buf: &mut Vec<u8>) {
            crate::fields::write_f64(buf, self)
        }
    }
    impl Render for bool {
        fn render(self, buf: &mut Vec<u8>) {
            buf.extend_from_slice(if self { b"true" } else { b"false" })
        }
    }
}

impl Visit for TextVisitor<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.plain(field, value);
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.plain(field, value);
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.plain(field, value);
    }
    fn record_i128(&mut self, field: &Field, value: i128) {
        self.plain(field, value);
    }
    fn record_u128(&mut self, field: &Field, value: u128) {
        self.plain(field, value);
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.plain(field, value);
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            if let Some(m) = self.message.as_deref_mut() {
                let start = m.len();
                escape_into(m, value);
                if let Some(r) = self.redactor {
                    r.redact_raw(m, start);
                }
            }
            return;
        }
        if !self.key(field) {
            return;
        }
        if self.secret(field) {
            self.out.extend_from_slice(REDACTED.as_bytes());
            return;
        }
        // The value is known up front: decide on quotes before writing, not by moving bytes after.
        let bytes = value.as_bytes();
        let quote = needs_quotes(bytes) || crate::fields::needs_escape(bytes);
        if quote {
            self.out.push(b'"');
        }
        let start = self.out.len();
        escape_into(self.out, value);
        if let Some(r) = self.redactor {
            if r.may_match(value.len()) {
                r.redact_raw(self.out, start);
            }
        }
        if quote {
            self.out.push(b'"');
        }
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        // `message: cause: cause`, the whole `source()` chain on one line.
        self.string_like(field, |b| {
            let _ = write!(JsonEscaper(b), "{}", ErrorText(value));
        });
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            if let Some(m) = self.message.as_deref_mut() {
                let start = m.len();
                let _ = write!(JsonEscaper(m), "{value:?}");
                if let Some(r) = self.redactor {
                    r.redact_raw(m, start);
                }
            }
            return;
        }
        self.string_like(field, |b| {
            let _ = write!(JsonEscaper(b), "{value:?}");
        });
    }
}

struct ErrorText<'a>(&'a (dyn std::error::Error + 'static));

impl fmt::Display for ErrorText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cur = self.0.source();
        let mut depth = 0;
        while let Some(e) = cur {
            write!(f, ": {e}")?;
            cur = e.source();
            depth += 1;
            if depth > 64 {
                break;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
