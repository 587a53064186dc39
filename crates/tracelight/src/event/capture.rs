//! Capture: the event's fields visited once.
//!
//! Every format renders from a [`Capture`], so a field's `Debug` or `Display` impl runs once per
//! event however many formats and streams take it, and redaction happens once, here. Values are
//! kept as typed JSON tokens in a per-thread arena: numbers and booleans as they are written,
//! strings and `Debug` output escaped as JSON string content and already redacted, errors as their
//! type and the `Display` text of each link of the `source()` chain. Rendering then only copies
//! bytes and adds keys (see [`render`](super::render)).

use std::fmt::{self, Write as _};

use tracing_core::field::{Field, Visit};
use tracing_core::Event;

use crate::fields::{self, JsonEscaper};
use crate::redact::Redactor;

/// What a captured value is, which decides how each format writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A number, a boolean or a float: the same bytes in every format.
    Plain,
    /// A `&str`, as escaped string content; `quote` says whether the text format quotes it (decided
    /// on the value as recorded).
    Str { quote: bool },
    /// `Debug` (or `Display`) output, as escaped string content.
    Debug,
    /// The value of a secret key: nothing of it is kept.
    Redacted,
    /// An error: the arena range is its type name; its chain is `chain` entries from `first`.
    Error { first: u32, len: u32 },
}

/// One captured field.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Value {
    pub(crate) name: &'static str,
    pub(crate) kind: Kind,
    start: u32,
    end: u32,
}

/// The event's fields, captured once (reused for every event on a thread).
#[derive(Debug, Default)]
pub(crate) struct Capture {
    /// The message, escaped as JSON string content and redacted.
    pub(crate) message: Vec<u8>,
    pub(crate) values: Vec<Value>,
    /// Which value is the event's error (the first `&dyn Error`, or a plain value named `error`
    /// when it comes first): the JSON format writes it as the `error` object.
    pub(crate) error: Option<usize>,
    arena: Vec<u8>,
    /// Arena ranges of the links of errors' chains.
    chain: Vec<(u32, u32)>,
}

/// The settings of one capture.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Options<'a> {
    pub(crate) redactor: Option<&'a Redactor>,
    /// Events of the `log` crate: their `log.*` fields are metadata, not data.
    pub(crate) skip_log_fields: bool,
}

impl Capture {
    /// Visits `event`'s fields once, replacing what was captured before.
    pub(crate) fn record(&mut self, event: &Event<'_>, opts: Options<'_>) {
        self.clear();
        event.record(&mut Recorder { cap: self, opts });
    }

    fn clear(&mut self) {
        self.message.clear();
        self.values.clear();
        self.error = None;
        self.arena.clear();
        self.chain.clear();
    }

    /// The bytes of a value: the token of a plain value, the escaped content of a string, the
    /// type name of an error.
    #[inline]
    pub(crate) fn bytes(&self, v: &Value) -> &[u8] {
        &self.arena[v.start as usize..v.end as usize]
    }

    /// The escaped `Display` text of each link of an error's chain, from the error itself down.
    pub(crate) fn chain(&self, v: &Value) -> impl Iterator<Item = &[u8]> + '_ {
        let (first, len) = match v.kind {
            Kind::Error { first, len } => (first as usize, len as usize),
            _ => (0, 0),
        };
        self.chain[first..first + len]
            .iter()
            .map(|&(s, e)| &self.arena[s as usize..e as usize])
    }

    /// The type name of the event's error, when it is an `&dyn Error`.
    pub(crate) fn error_type(&self) -> Option<&str> {
        let v = self.values.get(self.error?)?;
        match v.kind {
            Kind::Error { .. } => std::str::from_utf8(self.bytes(v)).ok(),
            _ => None,
        }
    }

    /// The captured values other than the event's error.
    #[inline]
    pub(crate) fn fields(&self) -> impl Iterator<Item = &Value> + '_ {
        let error = self.error;
        self.values
            .iter()
            .enumerate()
            .filter(move |(i, _)| Some(*i) != error)
            .map(|(_, v)| v)
    }
}

struct Recorder<'c, 'o> {
    cap: &'c mut Capture,
    opts: Options<'o>,
}

impl Recorder<'_, '_> {
    /// Whether the field is kept; a secret key's value is recorded as redacted and not kept.
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
            self.push(field.name(), Kind::Redacted, 0);
            return false;
        }
        true
    }

    #[inline]
    fn push(&mut self, name: &'static str, kind: Kind, start: usize) {
        let end = self.cap.arena.len();
        self.cap.values.push(Value {
            name,
            kind,
            start: start as u32,
            end: end as u32,
        });
    }

    /// Masks secrets in the string content written since `start`.
    #[inline]
    fn redact(&mut self, start: usize) {
        if let Some(r) = self.opts.redactor {
            r.redact_raw(&mut self.cap.arena, start);
        }
    }

    #[inline]
    fn plain(&mut self, field: &Field, write: impl FnOnce(&mut Vec<u8>)) {
        if self.keep(field) {
            let start = self.cap.arena.len();
            write(&mut self.cap.arena);
            self.push(field.name(), Kind::Plain, start);
        }
    }

    /// The first error-like value of the event becomes its `error`.
    #[inline]
    fn claims_error(&self, field: &Field, is_error: bool) -> bool {
        self.cap.error.is_none() && (is_error || field.name() == "error")
    }

    fn debug_value(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if !self.keep(field) {
            return;
        }
        let claims = self.claims_error(field, false);
        let start = self.cap.arena.len();
        // A Debug impl may return an error; what it wrote so far is kept.
        let _ = write!(JsonEscaper(&mut self.cap.arena), "{value:?}");
        self.redact(start);
        if claims {
            self.cap.error = Some(self.cap.values.len());
        }
        self.push(field.name(), Kind::Debug, start);
    }
}

impl Visit for Recorder<'_, '_> {
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
        let claims = self.claims_error(field, false);
        let bytes = value.as_bytes();
        let quote = crate::text::needs_quotes(bytes) || fields::needs_escape(bytes);
        let start = self.cap.arena.len();
        fields::escape_into(&mut self.cap.arena, value);
        if self.opts.redactor.is_some_and(|r| r.may_match(value.len())) {
            self.redact(start);
        }
        if claims {
            self.cap.error = Some(self.cap.values.len());
        }
        self.push(field.name(), Kind::Str { quote }, start);
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        if !self.keep(field) {
            return;
        }
        let claims = self.claims_error(field, true);
        let start = self.cap.arena.len();
        fields::write_type_name(&mut self.cap.arena, value);
        let type_end = self.cap.arena.len();
        let first = self.cap.chain.len();
        let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(value);
        while let Some(e) = cur {
            let s = self.cap.arena.len();
            let _ = write!(JsonEscaper(&mut self.cap.arena), "{e}");
            self.redact(s);
            self.cap.chain.push((s as u32, self.cap.arena.len() as u32));
            cur = e.source();
            if self.cap.chain.len() - first >= 64 {
                // A cycle in `source()` would otherwise never end.
                break;
            }
        }
        let len = (self.cap.chain.len() - first) as u32;
        if claims {
            self.cap.error = Some(self.cap.values.len());
        }
        self.cap.values.push(Value {
            name: field.name(),
            kind: Kind::Error {
                first: first as u32,
                len,
            },
            start: start as u32,
            end: type_end as u32,
        });
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
        self.debug_value(field, value);
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
                c.record(
                    e,
                    Options {
                        redactor: Some(&r),
                        skip_log_fields: false,
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
        assert_eq!(c.bytes(&c.values[0]), b"3");
        assert_eq!(c.bytes(&c.values[2]), b"[1]");
        assert_eq!(c.error, Some(4));
        assert_eq!(c.error_type(), Some("PaymentError"));
        let chain: Vec<_> = c.chain(&c.values[4]).collect();
        assert_eq!(chain, [b"card declined (402)".as_slice()]);
        assert_eq!(c.fields().count(), 4);
    }
}
