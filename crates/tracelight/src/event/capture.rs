//! Capture: the event's fields visited once.
//!
//! Every format renders from a [`Capture`], so a field's `Debug` or `Display` impl runs once per
//! event however many formats and streams take it, and redaction happens once, here. Values are
//! kept as JSON tokens in a per-thread buffer: numbers and booleans as they are written, strings
//! and `Debug` output quoted, escaped and already redacted, errors as their type and the `Display`
//! text of each link of their `source()` chain. The tokens are laid out as the members of the JSON
//! line (`"key":value,`, each key made unique by the schema's renaming rule), so the JSON
//! rendering copies them in one piece; the text rendering reads each value by its range, under its
//! original name (see [`render`](super::render)).

use std::fmt::{self, Write as _};

use tracing_core::field::{Field, Visit};
use tracing_core::Event;

use crate::fields::{self, JsonEscaper, KeySet, REDACTED};
use crate::redact::Redactor;

/// What a captured value is, which decides how each format writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A number, a boolean or a float: the same bytes in every format.
    Plain,
    /// A `&str`, as a quoted JSON string; `quote` says whether the text format quotes it (decided
    /// on the value as recorded).
    Str { quote: bool },
    /// `Debug` (or `Display`) output, as a quoted JSON string.
    Debug,
    /// The value of a secret key: `"[REDACTED]"`.
    Redacted,
    /// An error: its range is its type name (escaped, in the side buffer); its chain is `len`
    /// links from `first`.
    Error { first: usize, len: usize },
}

/// One captured field.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Value {
    pub(crate) name: &'static str,
    pub(crate) kind: Kind,
    start: usize,
    end: usize,
}

/// The event's fields, captured once (reused for every event on a thread).
#[derive(Debug, Default)]
pub(crate) struct Capture {
    /// The message, escaped as JSON string content and redacted.
    pub(crate) message: Vec<u8>,
    pub(crate) values: Vec<Value>,
    /// Which value is the event's error (the first `&dyn Error`, or a plain value named `error`
    /// when it comes first): the JSON format writes it as the `error` object, not as a member.
    pub(crate) error: Option<usize>,
    /// `"key":value,` for every value but the event's error: the members of the JSON line.
    members: Vec<u8>,
    /// The event's error's token, errors' type names and the links of their chains.
    side: Vec<u8>,
    /// Ranges in `side` of the links of errors' chains.
    chain: Vec<(usize, usize)>,
}

/// The settings of one capture.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Options<'a> {
    pub(crate) redactor: Option<&'a Redactor>,
    /// Events of the `log` crate: their `log.*` fields are metadata, not data.
    pub(crate) skip_log_fields: bool,
    /// Whether a text line is wanted (it needs to know which strings it quotes).
    pub(crate) text: bool,
}

impl Capture {
    /// Visits `event`'s fields once, replacing what was captured before. `keys` holds the keys the
    /// JSON line already has (static and context fields); each field's key is made unique against
    /// it. Without `keys` (no JSON line is wanted), the members hold the values alone.
    pub(crate) fn record(
        &mut self,
        event: &Event<'_>,
        keys: Option<&mut KeySet<'_>>,
        opts: Options<'_>,
    ) {
        self.clear();
        event.record(&mut Recorder {
            cap: self,
            keys,
            opts,
        });
        crate::errors::clear_type_hint();
        if self.message.is_empty() {
            self.message_from_error();
        }
    }

    /// An event with an error and no message (what `#[instrument(err)]` writes) gets the error's
    /// text as its message.
    fn message_from_error(&mut self) {
        let Some(v) = self.error.and_then(|i| self.values.get(i)).copied() else {
            return;
        };
        // The event's error lives in `side` (its chain, or its quoted token).
        let range = match v.kind {
            Kind::Error { first, .. } => self.chain.get(first).copied(),
            Kind::Str { .. } | Kind::Debug => Some((v.start + 1, v.end.saturating_sub(1))),
            _ => None,
        };
        if let Some(text) = range.and_then(|(s, e)| self.side.get(s..e)) {
            self.message.extend_from_slice(text);
        }
    }

    fn clear(&mut self) {
        self.message.clear();
        self.values.clear();
        self.error = None;
        self.members.clear();
        self.side.clear();
        self.chain.clear();
    }

    /// `"key":value,` for every value but the event's error.
    #[inline]
    pub(crate) fn members(&self) -> &[u8] {
        &self.members
    }

    /// The JSON token of a value (the type name of an error).
    #[inline]
    pub(crate) fn token(&self, i: usize) -> &[u8] {
        let v = &self.values[i];
        let buf = if matches!(v.kind, Kind::Error { .. }) || self.error == Some(i) {
            &self.side
        } else {
            &self.members
        };
        buf.get(v.start..v.end).unwrap_or_default()
    }

    /// The escaped `Display` text of each link of an error's chain, from the error itself down.
    pub(crate) fn chain(&self, v: &Value) -> impl Iterator<Item = &[u8]> + '_ {
        let (first, len) = match v.kind {
            Kind::Error { first, len } => (first, len),
            _ => (0, 0),
        };
        self.chain
            .get(first..first + len)
            .unwrap_or_default()
            .iter()
            .map(|&(s, e)| self.side.get(s..e).unwrap_or_default())
    }

    /// The type name of the event's error, when it is an `&dyn Error`.
    pub(crate) fn error_type(&self) -> Option<&str> {
        let i = self.error?;
        match self.values.get(i)?.kind {
            Kind::Error { .. } => std::str::from_utf8(self.token(i)).ok(),
            _ => None,
        }
    }
}

struct Recorder<'c, 'k, 'o> {
    cap: &'c mut Capture,
    keys: Option<&'c mut KeySet<'k>>,
    opts: Options<'o>,
}

/// Appends `"key":value,` of an error: `{"type":…,"message":…,"chain":[…]}`.
pub(crate) fn write_error_object(out: &mut Vec<u8>, cap: &Capture, v: &Value, type_name: &[u8]) {
    out.push(b'{');
    write_error_members(out, cap, v, type_name);
    out.push(b'}');
}

/// `"type":…,"message":…,"chain":[…]` of an error value.
pub(crate) fn write_error_members(out: &mut Vec<u8>, cap: &Capture, v: &Value, type_name: &[u8]) {
    out.extend_from_slice(b"\"type\":\"");
    out.extend_from_slice(type_name);
    out.extend_from_slice(b"\",\"message\":\"");
    if let Some(first) = cap.chain(v).next() {
        out.extend_from_slice(first);
    }
    out.extend_from_slice(b"\",\"chain\":[");
    for (i, link) in cap.chain(v).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'"');
        out.extend_from_slice(link);
        out.push(b'"');
    }
    out.push(b']');
}

impl Recorder<'_, '_, '_> {
    /// Whether the field is kept as it is; a secret key's value is recorded as redacted instead.
    #[inline]
    fn keep(&mut self, field: &Field) -> bool {
        if self.opts.skip_log_fields && field.name().starts_with("log.") {
            return false;
        }
        if self
            .opts
            .redactor
            .is_some_and(|r| r.is_secret_field(field.name()))
        {
            let start = self.key(field);
            fields::write_str(&mut self.cap.members, REDACTED);
            self.push(field.name(), Kind::Redacted, start);
            return false;
        }
        true
    }

    /// Writes the field's key into the members; returns where its value starts.
    #[inline]
    fn key(&mut self, field: &Field) -> usize {
        if let Some(keys) = self.keys.as_deref_mut() {
            keys.write_key(&mut self.cap.members, field.name());
        }
        self.cap.members.len()
    }

    /// Records a value written to the members since `start`, and the comma after it.
    #[inline]
    fn push(&mut self, name: &'static str, kind: Kind, start: usize) {
        let end = self.cap.members.len();
        self.cap.members.push(b',');
        self.cap.values.push(Value {
            name,
            kind,
            start,
            end,
        });
    }

    /// Records the event's error, written to the side buffer since `start`.
    #[inline]
    fn push_error(&mut self, name: &'static str, kind: Kind, start: usize) {
        self.cap.error = Some(self.cap.values.len());
        self.cap.values.push(Value {
            name,
            kind,
            start,
            end: self.cap.side.len(),
        });
    }

    #[inline]
    fn plain(&mut self, field: &Field, write: impl FnOnce(&mut Vec<u8>)) {
        if self.keep(field) {
            let start = self.key(field);
            write(&mut self.cap.members);
            self.push(field.name(), Kind::Plain, start);
        }
    }

    /// Whether a value named `error` is the event's error: the first error-like value is.
    #[inline]
    fn claims_error(&self, field: &Field) -> bool {
        self.cap.error.is_none() && field.name() == "error"
    }

    /// Writes a quoted, escaped, redacted string with `write`, into the side buffer when it is the
    /// event's error and as a member otherwise.
    #[inline]
    fn string(
        &mut self,
        field: &Field,
        kind: Kind,
        redact: bool,
        write: impl FnOnce(&mut Vec<u8>),
    ) {
        let claims = self.claims_error(field);
        let buf = if claims {
            &mut self.cap.side
        } else {
            if let Some(keys) = self.keys.as_deref_mut() {
                keys.write_key(&mut self.cap.members, field.name());
            }
            &mut self.cap.members
        };
        let start = buf.len();
        buf.push(b'"');
        write(buf);
        if redact {
            if let Some(r) = self.opts.redactor.filter(|r| !r.keeps_field(field.name())) {
                r.redact_raw(buf, start + 1);
            }
        }
        buf.push(b'"');
        if claims {
            self.push_error(field.name(), kind, start);
        } else {
            self.push(field.name(), kind, start);
        }
    }
}

impl Visit for Recorder<'_, '_, '_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.plain(field, |b| fields::write_f64(b, value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.plain(field, |b| fields::write_i64(b, value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.plain(field, |b| fields::write_u64(b, value));
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        self.plain(field, |b| {
            b.extend_from_slice(itoa::Buffer::new().format(value).as_bytes())
        });
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        self.plain(field, |b| {
            b.extend_from_slice(itoa::Buffer::new().format(value).as_bytes())
        });
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.plain(field, |b| {
            b.extend_from_slice(if value { b"true" } else { b"false" })
        });
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            let m = &mut self.cap.message;
            fields::escape_into(m, value);
            if let Some(r) = self.opts.redactor {
                r.redact_raw(m, 0);
            }
            return;
        }
        if !self.keep(field) {
            return;
        }
        let bytes = value.as_bytes();
        let quote = self.opts.text && (crate::text::needs_quotes(bytes) || fields::escapes(bytes));
        let redact = self.opts.redactor.is_some_and(|r| r.may_match(value.len()));
        self.string(field, Kind::Str { quote }, redact, |b| {
            fields::escape_into(b, value)
        });
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        if self.opts.skip_log_fields && field.name().starts_with("log.") {
            return;
        }
        // A secret-named error keeps its type (for grouping) and loses its text.
        let secret = self
            .opts
            .redactor
            .is_some_and(|r| r.is_secret_field(field.name()));
        let side = &mut self.cap.side;
        let start = side.len();
        match crate::errors::type_hint(value) {
            Some(name) => fields::escape_into(side, name),
            None => fields::write_type_name(side, value),
        }
        let type_end = side.len();
        let first = self.cap.chain.len();
        if secret {
            side.extend_from_slice(REDACTED.as_bytes());
            self.cap.chain.push((type_end, side.len()));
        } else {
            let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(value);
            while let Some(e) = cur {
                let s = side.len();
                let _ = write!(JsonEscaper(side), "{e}");
                if let Some(r) = self.opts.redactor {
                    r.redact_raw(side, s);
                }
                self.cap.chain.push((s, side.len()));
                cur = e.source();
                if self.cap.chain.len() - first >= 64 {
                    // A cycle in `source()` would otherwise never end.
                    break;
                }
            }
        }
        let kind = Kind::Error {
            first,
            len: self.cap.chain.len() - first,
        };
        let v = Value {
            name: field.name(),
            kind,
            start,
            end: type_end,
        };
        if self.cap.error.is_none() {
            self.cap.error = Some(self.cap.values.len());
            self.cap.values.push(v);
            return;
        }
        // A second error: a member of the line, as an object.
        if let Some(keys) = self.keys.as_deref_mut() {
            keys.write_key(&mut self.cap.members, field.name());
        }
        let mut obj = std::mem::take(&mut self.cap.members);
        let type_name = self.cap.side.get(start..type_end).unwrap_or_default();
        write_error_object(&mut obj, self.cap, &v, type_name);
        obj.push(b',');
        self.cap.members = obj;
        self.cap.values.push(v);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            let m = &mut self.cap.message;
            let start = m.len();
            let _ = write!(JsonEscaper(m), "{value:?}");
            if let Some(r) = self.opts.redactor {
                r.redact_raw(m, start);
            }
            return;
        }
        if !self.keep(field) {
            return;
        }
        self.string(field, Kind::Debug, true, |b| {
            // A Debug impl may return an error; what it wrote so far is kept.
            let _ = write!(JsonEscaper(b), "{value:?}");
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct PaymentError {
        code: u32,
    }
    impl fmt::Display for PaymentError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "card declined ({})", self.code)
        }
    }
    impl std::error::Error for PaymentError {}

    fn type_name(e: &dyn std::error::Error) -> String {
        let mut b = Vec::new();
        fields::write_type_name(&mut b, e);
        String::from_utf8(b).expect("utf8")
    }

    #[test]
    fn type_name_is_the_leading_identifier_of_debug() {
        assert_eq!(type_name(&PaymentError { code: 402 }), "PaymentError");
        let io = std::io::Error::from_raw_os_error(2);
        assert_eq!(type_name(&io), "Os");
        let fmt_err = fmt::Error;
        assert_eq!(type_name(&fmt_err), "Error");
    }

    #[test]
    fn captures_every_kind_once() {
        use std::sync::{Arc, Mutex};
        let cap = Arc::new(Mutex::new(Capture::default()));
        struct L(Arc<Mutex<Capture>>);
        impl<S: tracing_core::Subscriber> tracing_subscriber::Layer<S> for L {
            fn on_event(&self, e: &Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
                let r = Redactor::default();
                let mut c = crate::util::lock(&self.0);
                let mut keys = KeySet::new(true);
                c.record(
                    e,
                    Some(&mut keys),
                    Options {
                        redactor: Some(&r),
                        skip_log_fields: false,
                        text: true,
                    },
                );
            }
        }
        use tracing_subscriber::layer::SubscriberExt as _;
        let sub = tracing_subscriber::registry().with(L(Arc::clone(&cap)));
        tracing::subscriber::with_default(sub, || {
            let err = PaymentError { code: 402 };
            tracing::info!(
                n = 3u64,
                s = "two words",
                d = ?vec![1],
                password = "hunter2",
                error = &err as &dyn std::error::Error,
                level = 5u64,
                "hello {}",
                "world"
            );
        });
        let c = crate::util::lock(&cap);
        assert_eq!(c.message, b"hello world");
        let names: Vec<_> = c.values.iter().map(|v| (v.name, v.kind)).collect();
        assert_eq!(names[0], ("n", Kind::Plain));
        assert_eq!(names[1], ("s", Kind::Str { quote: true }));
        assert_eq!(names[2], ("d", Kind::Debug));
        assert_eq!(names[3], ("password", Kind::Redacted));
        assert_eq!(c.token(0), b"3");
        assert_eq!(c.token(2), b"\"[1]\"");
        assert_eq!(c.error, Some(4));
        assert_eq!(c.error_type(), Some("PaymentError"));
        let chain: Vec<_> = c.chain(&c.values[4]).collect();
        assert_eq!(chain, [b"card declined (402)".as_slice()]);
        assert_eq!(
            std::str::from_utf8(c.members()).expect("utf8"),
            r#""n":3,"s":"two words","d":"[1]","password":"[REDACTED]","fields.level":5,"#
        );
    }
}
