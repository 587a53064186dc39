//! The request id: validation of incoming values, generation of new ones.

use std::fmt;

use ::http::HeaderValue;

/// The longest request id accepted from outside, in characters.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// How many characters of a rejected value the security event shows (sanitized).
pub(crate) const PREFIX_LEN: usize = 16;

/// A validated request id: 1 to [`MAX_REQUEST_ID_LEN`] characters of `[A-Za-z0-9._:-]`.
///
/// [`RequestLayer`](super::RequestLayer) puts one in every request's extensions; with axum, read it
/// with `Extension<RequestId>`. Cloning is cheap (a reference count).
///
/// ```
/// use tracelight::http::{RequestId, Rejection};
///
/// let id = RequestId::new("order-42.retry:1")?;
/// assert_eq!(id.as_str(), "order-42.retry:1");
/// assert_eq!(RequestId::new("two\nlines").unwrap_err().reason(), Rejection::InvalidCharacter);
///
/// let fresh = RequestId::generate(); // a UUID v7: ordered by creation time
/// assert_eq!(fresh.as_str().len(), 36);
/// # Ok::<(), tracelight::http::InvalidRequestId>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RequestId(HeaderValue);

impl RequestId {
    /// Validates `id`.
    ///
    /// ```
    /// assert!(tracelight::http::RequestId::new("a".repeat(129).as_str()).is_err());
    /// ```
    pub fn new(id: &str) -> Result<RequestId, InvalidRequestId> {
        RequestId::from_bytes(id.as_bytes())
    }

    /// Validates raw bytes (a header value as received).
    ///
    /// ```
    /// use tracelight::http::{RequestId, Rejection};
    /// let err = RequestId::from_bytes(b"caf\xc3\xa9").unwrap_err();
    /// assert_eq!(err.reason(), Rejection::InvalidCharacter);
    /// assert_eq!(RequestId::from_bytes(b"\xff").unwrap_err().reason(), Rejection::NotUtf8);
    /// ```
    pub fn from_bytes(bytes: &[u8]) -> Result<RequestId, InvalidRequestId> {
        check(bytes)?;
        HeaderValue::from_bytes(bytes)
            .map(RequestId)
            .map_err(|_| InvalidRequestId::new(Rejection::InvalidCharacter, bytes))
    }

    /// Validates a header value, sharing its bytes.
    ///
    /// ```
    /// let v = http::HeaderValue::from_static("abc-1");
    /// assert_eq!(tracelight::http::RequestId::from_header(&v).unwrap().as_str(), "abc-1");
    /// ```
    pub fn from_header(value: &HeaderValue) -> Result<RequestId, InvalidRequestId> {
        check(value.as_bytes())?;
        Ok(RequestId(value.clone()))
    }

    /// A new id: a UUID v7 in its hyphenated lowercase form. Ids generated later sort after
    /// earlier ones, so they also index well.
    ///
    /// ```
    /// let a = tracelight::http::RequestId::generate();
    /// assert_eq!(a.as_str().as_bytes()[14], b'7'); // the version digit
    /// ```
    pub fn generate() -> RequestId {
        let mut buf = uuid::Uuid::encode_buffer();
        let text = uuid::Uuid::now_v7().hyphenated().encode_lower(&mut buf);
        // Hex digits and hyphens are always a valid header value.
        RequestId(
            HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static("invalid")),
        )
    }

    /// The request id of the current span's context, if there is one and it is valid.
    ///
    /// ```
    /// # let _g = tracelight::builder().writer(tracelight::sink::MemoryWriter::new()).init_local();
    /// let _s = tracing::info_span!("request", request_id = "r-1").entered();
    /// assert_eq!(tracelight::http::RequestId::current().unwrap().as_str(), "r-1");
    /// ```
    pub fn current() -> Option<RequestId> {
        crate::current_request_id().and_then(|id| RequestId::new(&id).ok())
    }

    /// The id as text.
    ///
    /// ```
    /// assert_eq!(tracelight::http::RequestId::new("x").unwrap().as_str(), "x");
    /// ```
    pub fn as_str(&self) -> &str {
        // Validated ASCII: the conversion cannot fail.
        self.0.to_str().unwrap_or_default()
    }

    /// The id as a header value.
    ///
    /// ```
    /// let id = tracelight::http::RequestId::new("x").unwrap();
    /// assert_eq!(id.header_value(), "x");
    /// ```
    pub fn header_value(&self) -> &HeaderValue {
        &self.0
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RequestId").field(&self.as_str()).finish()
    }
}

impl AsRef<str> for RequestId {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl std::str::FromStr for RequestId {
    type Err = InvalidRequestId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RequestId::new(s)
    }
}

impl From<RequestId> for HeaderValue {
    fn from(id: RequestId) -> HeaderValue {
        id.0
    }
}

/// Why a request id was refused.
///
/// ```
/// use tracelight::http::Rejection;
/// assert_eq!(Rejection::TooLong.as_str(), "too_long");
/// assert_eq!(Rejection::TooLong.to_string(), "too long");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Rejection {
    /// The value is empty.
    Empty,
    /// The value is longer than [`MAX_REQUEST_ID_LEN`].
    TooLong,
    /// The value is not valid UTF-8.
    NotUtf8,
    /// The value holds a character outside `[A-Za-z0-9._:-]` (a space, a control character,
    /// non-ASCII…).
    InvalidCharacter,
}

impl Rejection {
    /// The machine-readable reason, as written in the security event's `reason` field.
    pub fn as_str(self) -> &'static str {
        match self {
            Rejection::Empty => "empty",
            Rejection::TooLong => "too_long",
            Rejection::NotUtf8 => "not_utf8",
            Rejection::InvalidCharacter => "invalid_character",
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Rejection::Empty => "empty",
            Rejection::TooLong => "too long",
            Rejection::NotUtf8 => "not UTF-8",
            Rejection::InvalidCharacter => "invalid character",
        })
    }
}

/// A value refused as a request id. It never holds the value itself, only its length and a
/// short sanitized prefix, so it is safe to log.
///
/// ```
/// let err = tracelight::http::RequestId::new("bad id\n").unwrap_err();
/// assert_eq!(err.len(), 7);
/// assert_eq!(err.prefix(), "bad?id?");
/// assert_eq!(err.to_string(), "invalid request id (7 bytes): invalid character");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid request id ({len} bytes): {reason}")]
pub struct InvalidRequestId {
    reason: Rejection,
    len: usize,
    prefix: String,
}

impl InvalidRequestId {
    fn new(reason: Rejection, bytes: &[u8]) -> InvalidRequestId {
        InvalidRequestId {
            reason,
            len: bytes.len(),
            prefix: sanitized_prefix(bytes),
        }
    }

    /// Why it was refused.
    pub fn reason(&self) -> Rejection {
        self.reason
    }

    /// The length of the refused value in bytes.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Up to 16 leading bytes of the refused value, each byte outside `[A-Za-z0-9._:-]` replaced by
    /// `?`: enough to recognise a client's format, never a newline or a payload.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }
}

#[inline]
pub(crate) fn is_id_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-')
}

fn check(bytes: &[u8]) -> Result<(), InvalidRequestId> {
    let reason = if bytes.is_empty() {
        Rejection::Empty
    } else if bytes.len() > MAX_REQUEST_ID_LEN {
        Rejection::TooLong
    } else if bytes.iter().all(|&b| is_id_byte(b)) {
        return Ok(());
    } else if std::str::from_utf8(bytes).is_err() {
        Rejection::NotUtf8
    } else {
        Rejection::InvalidCharacter
    };
    Err(InvalidRequestId::new(reason, bytes))
}

fn sanitized_prefix(bytes: &[u8]) -> String {
    bytes
        .iter()
        .take(PREFIX_LEN)
        .map(|&b| if is_id_byte(b) { char::from(b) } else { '?' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_allowed_alphabet_up_to_128() {
        assert!(RequestId::new("AZaz09._:-").is_ok());
        assert!(RequestId::new(&"a".repeat(128)).is_ok());
        assert_eq!(
            RequestId::new(&"a".repeat(129)).unwrap_err().reason(),
            Rejection::TooLong
        );
    }

    #[test]
    fn reasons() {
        let r = |b: &[u8]| RequestId::from_bytes(b).unwrap_err().reason();
        assert_eq!(r(b""), Rejection::Empty);
        assert_eq!(r(b"a\nb"), Rejection::InvalidCharacter);
        assert_eq!(r(b"a\r\nX-Admin: 1"), Rejection::InvalidCharacter);
        assert_eq!(r(b"a b"), Rejection::InvalidCharacter);
        assert_eq!(r("é".as_bytes()), Rejection::InvalidCharacter);
        assert_eq!(r(b"\xff\xfe"), Rejection::NotUtf8);
        assert_eq!(r(&[b'x'; 10 * 1024]), Rejection::TooLong);
    }

    #[test]
    fn prefix_is_short_and_sanitized() {
        let e = RequestId::from_bytes(b"ab\ncd\"{}\x00\xffefghijklmnopqrstuvwxyz").unwrap_err();
        assert_eq!(e.prefix(), "ab?cd?????efghij");
        assert!(e.prefix().len() <= PREFIX_LEN);
    }

    #[test]
    fn generated_ids_are_valid_v7_and_ordered() {
        let a = RequestId::generate();
        let b = RequestId::generate();
        assert!(RequestId::new(a.as_str()).is_ok());
        let u = uuid::Uuid::parse_str(a.as_str()).unwrap();
        assert_eq!(u.get_version_num(), 7);
        assert!(a.as_str() <= b.as_str());
    }
}
