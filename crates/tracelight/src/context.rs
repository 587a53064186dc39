//! Correlation context: the request id and bound fields that follow the work.
//!
//! Every span carries a [`Context`] shared with its parent (an `Arc`: a child span costs a reference
//! count, not a copy). A span that records a context field — `request_id` always, plus any name
//! configured with [`Builder::context_field`](crate::Builder::context_field) — gets a new context:
//! the parent's entries plus its own (copy-on-write). [`bind`](fn@crate::bind) does the same for the
//! current span from code. Every line written inside the span, or inside any span opened below it afterwards,
//! carries the context's entries at the root of the JSON object.
//!
//! Context follows the *span*, not the thread: work moved to another task keeps it when the task is
//! instrumented with the span ([`tracing::Instrument::in_current_span`], or [`spawn`](crate::spawn)), and is
//! lost when it is not. See `docs/correlation.md`.
//!
//! ```
//! # let _g = tracelight::builder().writer(tracelight::sink::MemoryWriter::new()).init_local();
//! let span = tracing::info_span!("request", request_id = "req-42");
//! let _enter = span.enter();
//! tracelight::bind("user_id", 7);
//! assert_eq!(tracelight::current_request_id().as_deref(), Some("req-42"));
//! tracing::info!("every line here carries request_id and user_id");
//! ```

use std::fmt::Write as _;

use crate::fields::{self, write_key, write_str};

/// The key of the request id in every line.
pub const REQUEST_ID: &str = "request_id";

/// A shared, immutable set of correlation fields. Cloning is a reference count.
#[derive(Debug, Default)]
pub struct Context {
    entries: Vec<(Box<str>, Box<[u8]>)>,
    /// The entries rendered as JSON members, each followed by a comma.
    json: Vec<u8>,
}

impl Context {
    /// The request id, if one is set in this context.
    pub fn request_id(&self) -> Option<String> {
        self.get_json(REQUEST_ID).map(json_to_string)
    }

    /// The rendered JSON value of `key`.
    pub(crate) fn get_json(&self, key: &str) -> Option<&[u8]> {
        self.entries
            .iter()
            .find(|(k, _)| &**k == key)
            .map(|(_, v)| &**v)
    }

    /// `(key, JSON value)` pairs in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.entries.iter().map(|(k, v)| (&**k, &**v))
    }

    /// The entries as JSON members with trailing commas (`"request_id":"…","user_id":7,`).
    #[inline]
    pub(crate) fn json(&self) -> &[u8] {
        &self.json
    }

    /// Whether the context has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// A new context: these entries plus `key` (replacing an earlier value of the same key).
    /// A key that tracelight writes itself ([`RESERVED_KEYS`](crate::RESERVED_KEYS)) is
    /// kept as `fields.<key>`, so a line never holds it twice.
    #[cfg(test)]
    pub(crate) fn with(parent: Option<&Context>, key: &str, json_value: &[u8]) -> Context {
        Context::with_taken(parent, key, json_value, &[])
    }

    /// The key a context field is stored under: `fields.<name>` when the name is reserved or one
    /// of the static fields (`taken`), so a line never holds a key twice.
    pub(crate) fn stored_key<'k>(key: &'k str, taken: &[String]) -> std::borrow::Cow<'k, str> {
        let is_taken = |k: &str| fields::is_reserved(k) || taken.iter().any(|t| t == k);
        if !is_taken(key) {
            return std::borrow::Cow::Borrowed(key);
        }
        // `fields.<key>`, or `fields.<key>.2`… when a static field has that name already.
        let mut n = 1;
        loop {
            let candidate = tracelight_schema::rename(key, n);
            if !is_taken(&candidate) {
                return std::borrow::Cow::Owned(candidate);
            }
            n += 1;
        }
    }

    /// [`Context::with`], renaming a key that a static field already uses.
    pub(crate) fn with_taken(
        parent: Option<&Context>,
        key: &str,
        json_value: &[u8],
        taken: &[String],
    ) -> Context {
        let stored = Context::stored_key(key, taken);
        let key = stored.as_ref();
        let mut entries: Vec<(Box<str>, Box<[u8]>)> = parent
            .map(|p| {
                p.entries
                    .iter()
                    .filter(|(k, _)| &**k != key)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        // The request id always comes first so lines read the same everywhere.
        let entry = (Box::from(key), Box::from(json_value));
        if key == REQUEST_ID {
            entries.insert(0, entry);
        } else {
            entries.push(entry);
        }
        let mut json = Vec::new();
        for (k, v) in &entries {
            write_key(&mut json, k);
            json.extend_from_slice(v);
            json.push(b',');
        }
        Context { entries, json }
    }
}

/// Converts a rendered JSON value to the string it holds (unquoted and unescaped for strings).
pub(crate) fn json_to_string(v: &[u8]) -> String {
    if v.first() == Some(&b'"') {
        return content_to_string(&v[1..v.len().saturating_sub(1)]);
    }
    String::from_utf8_lossy(v).into_owned()
}

/// The text of escaped JSON string content (no quotes).
pub(crate) fn content_to_string(inner: &[u8]) -> String {
    if inner.contains(&b'\\') {
        unescape(inner)
    } else {
        String::from_utf8_lossy(inner).into_owned()
    }
}

fn unescape(s: &[u8]) -> String {
    let text = String::from_utf8_lossy(s);
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some('b') => out.push('\u{8}'),
            Some('f') => out.push('\u{c}'),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                if let Some(ch) = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    out.push(ch);
                }
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// A value that can be bound into the context with [`bind`](fn@crate::bind).
pub trait ContextValue {
    /// Appends the value as JSON.
    fn render_json(&self, buf: &mut Vec<u8>);
}

macro_rules! int_context_value {
    ($($t:ty => $f:ident),*) => {$(
        impl ContextValue for $t {
            fn render_json(&self, buf: &mut Vec<u8>) {
                fields::$f(buf, (*self).into());
            }
        }
    )*};
}
int_context_value!(u8 => write_u64, u16 => write_u64, u32 => write_u64, u64 => write_u64,
    i8 => write_i64, i16 => write_i64, i32 => write_i64, i64 => write_i64);

impl ContextValue for usize {
    fn render_json(&self, buf: &mut Vec<u8>) {
        fields::write_u64(buf, *self as u64);
    }
}
impl ContextValue for f64 {
    fn render_json(&self, buf: &mut Vec<u8>) {
        fields::write_f64(buf, *self);
    }
}
impl ContextValue for bool {
    fn render_json(&self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(if *self { b"true" } else { b"false" });
    }
}
impl ContextValue for str {
    fn render_json(&self, buf: &mut Vec<u8>) {
        write_str(buf, self);
    }
}
impl ContextValue for String {
    fn render_json(&self, buf: &mut Vec<u8>) {
        write_str(buf, self);
    }
}
impl<T: ContextValue + ?Sized> ContextValue for &T {
    fn render_json(&self, buf: &mut Vec<u8>) {
        (**self).render_json(buf);
    }
}
/// Binds a value by its `Display` output.
///
/// ```
/// # let _g = tracelight::builder().writer(tracelight::sink::MemoryWriter::new()).init_local();
/// # let _s = tracing::info_span!("s").entered();
/// let addr: std::net::IpAddr = "10.0.0.1".parse().unwrap();
/// tracelight::bind("client_ip", tracelight::context::DisplayValue(addr));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct DisplayValue<T>(pub T);

impl<T: std::fmt::Display> ContextValue for DisplayValue<T> {
    fn render_json(&self, buf: &mut Vec<u8>) {
        buf.push(b'"');
        let _ = write!(fields::JsonEscaper(buf), "{}", self.0);
        buf.push(b'"');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_replaces_and_orders_request_id_first() {
        let a = Context::with(None, "user_id", b"7");
        let b = Context::with(Some(&a), REQUEST_ID, b"\"r1\"");
        let c = Context::with(Some(&b), "user_id", b"8");
        assert_eq!(c.json(), b"\"request_id\":\"r1\",\"user_id\":8,");
        assert_eq!(c.request_id().as_deref(), Some("r1"));
        assert_eq!(a.request_id(), None);
    }

    #[test]
    fn reserved_keys_are_renamed() {
        let s = Context::with_taken(None, "region", b"\"eu\"", &["region".to_owned()]);
        assert_eq!(s.json(), b"\"fields.region\":\"eu\",");
        let a = Context::with(None, "message", b"\"m\"");
        let b = Context::with(Some(&a), "message", b"\"n\"");
        assert_eq!(b.json(), b"\"fields.message\":\"n\",");
    }

    #[test]
    fn json_to_string_unescapes() {
        assert_eq!(json_to_string(b"\"a\\nb\\u0001\""), "a\nb\u{1}");
        assert_eq!(json_to_string(b"42"), "42");
    }
}
