//! Redaction: secrets never leave the process.
//!
//! Redaction is not a layer of its own: sibling layers see the raw fields, so a secret masked by one
//! layer would still be written by another. It lives in the one capture of each event's fields that
//! every format renders from (and in the rendering of span fields), and is applied before any byte
//! reaches a writer or an exporter.
//!
//! Two kinds of rules:
//!
//! - **Key rules.** A field whose name matches a secret word is written as `"[REDACTED]"`, whatever
//!   its value. A name is split into words at `_`, `-`, `.`, spaces and camelCase boundaries; it
//!   matches when a run of consecutive words, joined, equals a secret word (case-insensitive). So
//!   `db_password`, `X-Api-Key`, `accessToken` and `private_key_pem` match, while `max_tokens` and
//!   `author` do not. Decisions are cached per field name, so the check costs a lookup per field.
//! - **Value patterns.** String values (and `Debug` output, messages and error chains) are scanned for
//!   shapes that are secrets wherever they appear: bearer tokens, JWTs, AWS access key ids, PEM
//!   private key blocks, card numbers that pass the Luhn check, and — when asked — e-mail addresses.
//!   Only the secret part becomes `[REDACTED]`; the rest of the value stays readable.
//!
//! ```
//! use tracelight::redact::{Redactor, ValuePattern};
//!
//! let redactor = Redactor::builder()
//!     .key("pin")                       // add a secret word
//!     .allow_key("session")             // `session` is not a secret in this service
//!     .pattern(ValuePattern::Email)     // also mask e-mail addresses
//!     .build();
//! assert!(redactor.is_secret_key("card_pin"));
//! assert!(redactor.is_secret_key("db_password"));
//! assert!(!redactor.is_secret_key("session"));
//! assert_eq!(redactor.redact_str("Authorization: Bearer abc.def.ghi123"), "Authorization: Bearer [REDACTED]");
//! ```

use std::sync::atomic::{AtomicU64, Ordering};

use tracelight_schema::REDACTED;

/// The secret words of the default key rules.
pub const DEFAULT_SECRET_KEYS: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "passphrase",
    "secret",
    "token",
    "api_key",
    "apikey",
    "authorization",
    "auth_token",
    "cookie",
    "set_cookie",
    "session",
    "session_id",
    "sessionid",
    "private_key",
    "privatekey",
    "access_key",
    "secret_key",
    "client_secret",
    "credential",
    "credentials",
    "signature",
];

/// A shape of value that is a secret wherever it appears.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ValuePattern {
    /// `Bearer <token>` (case-insensitive): the token is masked.
    Bearer,
    /// A JSON Web Token: `eyJ…` header, payload and signature.
    Jwt,
    /// An AWS access key id: `AKIA`/`ASIA`… followed by 16 upper-case letters or digits.
    AwsAccessKey,
    /// A PEM block `-----BEGIN … PRIVATE KEY-----` through its `-----END … PRIVATE KEY-----`.
    PrivateKey,
    /// 13 to 19 digits that pass the Luhn check, without separators or grouped as cards are
    /// printed (4-4-4-4, 4-4-4-4-3, 4-6-5, 4-6-4), and not inside a longer token.
    CardNumber,
    /// An e-mail address (off by default).
    Email,
}

impl ValuePattern {
    /// The patterns on by default: every pattern but [`ValuePattern::Email`].
    pub const DEFAULTS: &'static [ValuePattern] = &[
        ValuePattern::Bearer,
        ValuePattern::Jwt,
        ValuePattern::AwsAccessKey,
        ValuePattern::PrivateKey,
        ValuePattern::CardNumber,
    ];
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// The redaction rules: secret key words and value patterns. Cheap to share (`Arc`) between layers.
///
/// ```
/// let r = tracelight::redact::Redactor::default();
/// assert!(r.is_secret_key("Authorization"));
/// assert_eq!(r.redact_str("key AKIAIOSFODNN7EXAMPLE"), "key [REDACTED]");
/// ```
#[derive(Debug, Clone)]
pub struct Redactor {
    id: u64,
    keys: Vec<String>,
    patterns: Vec<ValuePattern>,
    /// `patterns` as bits (`1 << pattern as u8`), for the per-value scan.
    flags: u8,
    /// The shortest value any enabled pattern can match; shorter values are not scanned.
    min_len: usize,
    enabled: bool,
}

impl Default for Redactor {
    fn default() -> Self {
        Redactor::builder().build()
    }
}

/// Builds a [`Redactor`]; starts from the defaults.
///
/// ```
/// use tracelight::redact::{Redactor, ValuePattern};
/// let r = Redactor::builder().clear_keys().key("ssn").clear_patterns().pattern(ValuePattern::Jwt).build();
/// assert!(r.is_secret_key("user_ssn"));
/// assert!(!r.is_secret_key("password"));
/// ```
#[derive(Debug, Clone)]
pub struct RedactorBuilder {
    keys: Vec<String>,
    patterns: Vec<ValuePattern>,
    enabled: bool,
}

impl Default for RedactorBuilder {
    fn default() -> Self {
        RedactorBuilder {
            keys: DEFAULT_SECRET_KEYS.iter().map(|k| normalize(k)).collect(),
            patterns: ValuePattern::DEFAULTS.to_vec(),
            enabled: true,
        }
    }
}

impl RedactorBuilder {
    /// Adds a secret word (matched as described in the [module docs](self)).
    pub fn key(mut self, word: impl AsRef<str>) -> Self {
        let w = normalize(word.as_ref());
        if !w.is_empty() && !self.keys.contains(&w) {
            self.keys.push(w);
        }
        self
    }

    /// Removes a secret word from the list (for example `session` where it names no secret).
    pub fn allow_key(mut self, word: impl AsRef<str>) -> Self {
        let w = normalize(word.as_ref());
        self.keys.retain(|k| *k != w);
        self
    }

    /// Removes every secret word, to start a list from scratch.
    pub fn clear_keys(mut self) -> Self {
        self.keys.clear();
        self
    }

    /// Turns a value pattern on.
    pub fn pattern(mut self, p: ValuePattern) -> Self {
        if !self.patterns.contains(&p) {
            self.patterns.push(p);
        }
        self
    }

    /// Turns a value pattern off.
    pub fn without_pattern(mut self, p: ValuePattern) -> Self {
        self.patterns.retain(|x| *x != p);
        self
    }

    /// Turns every value pattern off.
    pub fn clear_patterns(mut self) -> Self {
        self.patterns.clear();
        self
    }

    /// Turns redaction off altogether (for benchmarks and tests; not for production).
    pub fn disabled(mut self) -> Self {
        self.enabled = false;
        self
    }

    /// Builds the rules.
    pub fn build(self) -> Redactor {
        let flags = self.patterns.iter().fold(0u8, |f, p| f | 1 << *p as u8);
        let min_len = self
            .patterns
            .iter()
            .map(|p| match p {
                ValuePattern::Bearer => 15,
                ValuePattern::Jwt => 19,
                ValuePattern::AwsAccessKey => 20,
                ValuePattern::PrivateKey => 27,
                ValuePattern::CardNumber => 13,
                ValuePattern::Email => 6,
            })
            .min()
            .unwrap_or(usize::MAX);
        Redactor {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            keys: self.keys,
            patterns: self.patterns,
            flags,
            min_len,
            enabled: self.enabled,
        }
    }
}

/// Lower-cases and drops separators: `X-Api-Key` → `xapikey`.
fn normalize(s: &str) -> String {
    s.chars()
        .filter(|c| !matches!(c, '_' | '-' | '.' | ' '))
        .flat_map(char::to_lowercase)
        .collect()
}

/// Splits a field name into lower-cased words at separators and camelCase boundaries.
fn words(name: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut prev_lower = false;
    for c in name.chars() {
        if matches!(c, '_' | '-' | '.' | ' ' | ':' | '/') {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            prev_lower = false;
            continue;
        }
        if c.is_uppercase() && prev_lower && !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
        prev_lower = c.is_lowercase() || c.is_ascii_digit();
        cur.extend(c.to_lowercase());
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

const CACHE_SLOTS: usize = 1024;

/// Decisions of [`Redactor::is_secret_key`], shared by all threads: each slot holds a 63-bit
/// fingerprint of (name address, name length, redactor) and the decision in the low bit. One
/// relaxed atomic load per field on a hit; a rare collision only costs a recomputation.
static KEY_CACHE: [AtomicU64; CACHE_SLOTS] = [const { AtomicU64::new(0) }; CACHE_SLOTS];

#[inline]
fn fingerprint(ptr: usize, len: usize, redactor: u64) -> u64 {
    let mut h = (ptr as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    h ^= (len as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    h ^= redactor.wrapping_mul(0x1656_67B1_9E37_79F9);
    h ^= h >> 29;
    h.wrapping_mul(0xBF58_476D_1CE4_E5B9) | 2
}

impl Redactor {
    /// Starts from the defaults: [`DEFAULT_SECRET_KEYS`] and [`ValuePattern::DEFAULTS`].
    pub fn builder() -> RedactorBuilder {
        RedactorBuilder::default()
    }

    /// Rules that redact nothing.
    pub fn disabled() -> Redactor {
        Redactor::builder().disabled().build()
    }

    /// Whether redaction is on.
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// Whether a field with this name is written as `[REDACTED]`.
    pub fn is_secret_key(&self, name: &str) -> bool {
        self.enabled && !self.keys.is_empty() && self.match_key(name)
    }

    /// [`is_secret_key`](Self::is_secret_key) for a callsite's field name, cached by address.
    #[inline]
    pub(crate) fn is_secret_field(&self, name: &'static str) -> bool {
        if !self.enabled || self.keys.is_empty() {
            return false;
        }
        // Field names are `&'static str` from callsites: the same address every time, so a
        // shared table keyed by address makes the check one load.
        let fp = fingerprint(name.as_ptr() as usize, name.len(), self.id);
        let slot = &KEY_CACHE[(fp >> 40) as usize % CACHE_SLOTS];
        let entry = slot.load(Ordering::Relaxed);
        if entry & !1 == fp & !1 {
            return entry & 1 == 1;
        }
        let secret = self.match_key(name);
        slot.store((fp & !1) | u64::from(secret), Ordering::Relaxed);
        secret
    }

    fn match_key(&self, name: &str) -> bool {
        let words = words(name);
        for start in 0..words.len() {
            let mut joined = String::new();
            for w in &words[start..] {
                joined.push_str(w);
                if self.keys.contains(&joined) {
                    return true;
                }
                if joined.len() > 32 {
                    break;
                }
            }
        }
        false
    }

    /// Whether any value pattern is on.
    #[inline]
    pub fn has_value_patterns(&self) -> bool {
        self.enabled && !self.patterns.is_empty()
    }

    /// Masks the secrets in a plain string (convenience for tests and exporters).
    pub fn redact_str(&self, s: &str) -> String {
        if !self.has_value_patterns() {
            return s.to_owned();
        }
        let matches = self.find(s.as_bytes());
        if matches.is_empty() {
            return s.to_owned();
        }
        let mut out = String::with_capacity(s.len());
        let mut last = 0;
        for (a, b) in matches {
            out.push_str(&s[last..a]);
            out.push_str(REDACTED);
            last = b;
        }
        out.push_str(&s[last..]);
        out
    }

    /// Whether a value of `len` bytes could hold a secret (patterns on and long enough).
    #[inline]
    pub(crate) fn may_match(&self, len: usize) -> bool {
        self.has_value_patterns() && len >= self.min_len
    }

    /// Masks secrets in `buf[start..]`, which holds escaped JSON string content (or text).
    ///
    /// The patterns only span bytes that JSON never escapes (letters, digits, `-._~+/=`, spaces),
    /// except private key blocks, whose escaped newlines are masked with the block.
    pub(crate) fn redact_raw(&self, buf: &mut Vec<u8>, start: usize) {
        if !self.has_value_patterns() || buf.len() < start + self.min_len {
            return;
        }
        let matches = self.find(&buf[start..]);
        if matches.is_empty() {
            return;
        }
        let tail: Vec<u8> = buf[start..].to_vec();
        buf.truncate(start);
        let mut last = 0;
        for (a, b) in matches {
            buf.extend_from_slice(&tail[last..a]);
            buf.extend_from_slice(REDACTED.as_bytes());
            last = b;
        }
        buf.extend_from_slice(&tail[last..]);
    }

    /// Byte ranges of the secrets in `s`, in order and not overlapping.
    fn find(&self, s: &[u8]) -> Vec<(usize, usize)> {
        let mut out: Vec<(usize, usize)> = Vec::new();
        if s.len() < self.min_len {
            return out;
        }
        let on = |p: ValuePattern| self.flags & (1 << p as u8) != 0;
        let (bearer, jwt, aws, pem, card, email) = (
            on(ValuePattern::Bearer),
            on(ValuePattern::Jwt),
            on(ValuePattern::AwsAccessKey),
            on(ValuePattern::PrivateKey),
            on(ValuePattern::CardNumber),
            on(ValuePattern::Email),
        );
        let mut i = 0;
        while i < s.len() {
            // Most bytes cannot start a secret: skip them with one table lookup each.
            let b = s[i];
            if !START[b as usize] {
                i += 1;
                continue;
            }
            let prev_alnum = i > 0 && s[i - 1].is_ascii_alphanumeric();
            let found = match b {
                b'b' | b'B' if bearer && !prev_alnum => match_bearer(s, i),
                b'e' if jwt && !prev_alnum => match_jwt(s, i),
                b'A' if aws && !prev_alnum => match_aws(s, i),
                b'-' if pem => match_pem(s, i),
                b'0'..=b'9' if card && !(i > 0 && s[i - 1].is_ascii_digit()) => match_card(s, i),
                b'@' if email => match_email(s, i, out.last().map_or(0, |r| r.1)),
                _ => None,
            };
            match found {
                Some((a, e)) => {
                    out.push((a, e));
                    i = e;
                }
                None => i += 1,
            }
        }
        out
    }
}

/// Bytes that can start a secret: `b`/`B` (bearer), `e` (JWT), `A` (AWS), `-` (PEM), digits
/// (card numbers), `@` (e-mail).
static START: [bool; 256] = {
    let mut t = [false; 256];
    t[b'b' as usize] = true;
    t[b'B' as usize] = true;
    t[b'e' as usize] = true;
    t[b'A' as usize] = true;
    t[b'-' as usize] = true;
    t[b'@' as usize] = true;
    let mut d = b'0';
    while d <= b'9' {
        t[d as usize] = true;
        d += 1;
    }
    t
};

fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/' | b'=')
}

fn match_bearer(s: &[u8], i: usize) -> Option<(usize, usize)> {
    const W: &[u8] = b"bearer";
    if s.len() < i + W.len() + 1 || !s[i..i + W.len()].eq_ignore_ascii_case(W) {
        return None;
    }
    let mut j = i + W.len();
    let ws = j;
    while j < s.len() && s[j] == b' ' {
        j += 1;
    }
    if j == ws {
        return None;
    }
    let tok = j;
    while j < s.len() && is_token_char(s[j]) {
        j += 1;
    }
    (j - tok >= 8).then_some((tok, j))
}

fn b64url_run(s: &[u8], mut j: usize) -> usize {
    while j < s.len() && (s[j].is_ascii_alphanumeric() || s[j] == b'-' || s[j] == b'_') {
        j += 1;
    }
    j
}

fn match_jwt(s: &[u8], i: usize) -> Option<(usize, usize)> {
    if !s[i..].starts_with(b"eyJ") {
        return None;
    }
    let h = b64url_run(s, i);
    if h - i < 10 || s.get(h) != Some(&b'.') {
        return None;
    }
    let p = b64url_run(s, h + 1);
    if p - (h + 1) < 4 || s.get(p) != Some(&b'.') {
        return None;
    }
    let sig = b64url_run(s, p + 1);
    Some((i, sig))
}

fn match_aws(s: &[u8], i: usize) -> Option<(usize, usize)> {
    const PREFIXES: &[&[u8]] = &[
        b"AKIA", b"ASIA", b"AGPA", b"AIDA", b"AROA", b"ANPA", b"ANVA", b"AIPA",
    ];
    if !PREFIXES.iter().any(|p| s[i..].starts_with(p)) {
        return None;
    }
    let end = i + 20;
    if s.len() < end {
        return None;
    }
    let body_ok = s[i + 4..end]
        .iter()
        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    let boundary = s.get(end).is_none_or(|b| !b.is_ascii_alphanumeric());
    (body_ok && boundary).then_some((i, end))
}

fn match_pem(s: &[u8], i: usize) -> Option<(usize, usize)> {
    const BEGIN: &[u8] = b"-----BEGIN ";
    if !s[i..].starts_with(BEGIN) {
        return None;
    }
    let head_end = memfind(&s[i..], b"-----", BEGIN.len())? + i;
    if !s[i..head_end].ends_with(b"PRIVATE KEY") {
        return None;
    }
    match memfind(&s[i..], b"-----END ", head_end - i) {
        Some(end_start) => {
            let end_start = end_start + i;
            let close =
                memfind(&s[end_start..], b"-----", 9).map_or(s.len(), |p| end_start + p + 5);
            Some((i, close))
        }
        // An unterminated block (a truncated key) is masked to the end of the value.
        None => Some((i, s.len())),
    }
}

fn memfind(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if from >= hay.len() {
        return None;
    }
    hay[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// A card number: 13 to 19 digits passing Luhn, written either without separators or in the
/// groups cards are printed in (4-4-4-4, 4-4-4-4-3, Amex 4-6-5, Diners 4-6-4) with one kind of
/// separator. Digits inside a longer token (`a123…`, `…-9123-456789012348` in a UUID) are not one.
fn match_card(s: &[u8], i: usize) -> Option<(usize, usize)> {
    if i > 0 && s[i - 1].is_ascii_alphanumeric() {
        return None;
    }
    let mut digits = [0u8; 19];
    let mut n = 0;
    let mut j = i;
    let mut end = i;
    let mut groups = [0u8; 6];
    let mut g = 0;
    let mut sep: Option<u8> = None;
    while j < s.len() {
        let b = s[j];
        if b.is_ascii_digit() {
            if n == 19 {
                return None; // too long to be a card number
            }
            digits[n] = b - b'0';
            n += 1;
            groups[g] += 1;
            j += 1;
            end = j;
        } else if (b == b' ' || b == b'-')
            && sep.is_none_or(|c| c == b)
            && j + 1 < s.len()
            && s[j + 1].is_ascii_digit()
            && n > 0
            && g + 1 < groups.len()
        {
            sep = Some(b);
            g += 1;
            j += 1;
        } else {
            break;
        }
    }
    if !(13..=19).contains(&n) {
        return None;
    }
    if end < s.len() && s[end].is_ascii_alphanumeric() {
        return None;
    }
    let grouping = &groups[..=g];
    let grouped_like_a_card = g == 0
        || matches!(
            grouping,
            [4, 4, 4, 4] | [4, 4, 4, 4, 3] | [4, 6, 5] | [4, 6, 4]
        );
    (grouped_like_a_card && luhn(&digits[..n])).then_some((i, end))
}

fn luhn(d: &[u8]) -> bool {
    let mut sum = 0u32;
    for (k, &x) in d.iter().rev().enumerate() {
        let mut v = u32::from(x);
        if k % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum.is_multiple_of(10)
}

fn match_email(s: &[u8], at: usize, floor: usize) -> Option<(usize, usize)> {
    let local_ok =
        |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-');
    let mut a = at;
    while a > floor && local_ok(s[a - 1]) {
        a -= 1;
    }
    if a == at {
        return None;
    }
    let mut e = at + 1;
    let mut dot = false;
    while e < s.len() && (s[e].is_ascii_alphanumeric() || s[e] == b'-' || s[e] == b'.') {
        if s[e] == b'.' {
            dot = true;
        }
        e += 1;
    }
    while e > at + 1 && s[e - 1] == b'.' {
        e -= 1;
    }
    (dot && e > at + 3).then_some((a, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_words_match_parts_not_substrings() {
        let r = Redactor::default();
        for k in [
            "password",
            "db_password",
            "DB_PASSWORD",
            "userPassword",
            "X-Api-Key",
            "api_key",
            "apikey",
            "access_token",
            "accessToken",
            "Authorization",
            "set-cookie",
            "private_key_pem",
            "client_secret",
            "session",
            "sessionId",
        ] {
            assert!(r.is_secret_key(k), "{k} should be secret");
        }
        for k in [
            "author",
            "max_tokens",
            "user_id",
            "passage",
            "order_id",
            "keyboard",
        ] {
            assert!(!r.is_secret_key(k), "{k} should not be secret");
        }
    }

    #[test]
    fn value_patterns_and_near_misses() {
        let r = Redactor::default();
        let cases = [
            ("Bearer abcdefgh12345", "Bearer [REDACTED]"),
            ("bearer  xyz.abc-DEF_123=", "bearer  [REDACTED]"),
            ("bearer short", "bearer short"),
            (
                "t=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig_nature-x end",
                "t=[REDACTED] end",
            ),
            ("AKIAIOSFODNN7EXAMPLE", "[REDACTED]"),
            ("AKIAIOSFODNN7EXAMPLEX", "AKIAIOSFODNN7EXAMPLEX"),
            ("card 4111 1111 1111 1111 ok", "card [REDACTED] ok"),
            ("card 4111-1111-1111-1111", "card [REDACTED]"),
            ("order 4111111111111112", "order 4111111111111112"),
            ("phone 555 123 4567", "phone 555 123 4567"),
            // A UUID whose tail is digits that pass Luhn is an id, not a card.
            (
                "req 0190a1b2-c3d4-7e5f-9123-456789012348",
                "req 0190a1b2-c3d4-7e5f-9123-456789012348",
            ),
            ("id a4111111111111111", "id a4111111111111111"),
            ("amex 3782-822463-10005", "amex [REDACTED]"),
            (
                "-----BEGIN RSA PRIVATE KEY-----\\nMIIE\\n-----END RSA PRIVATE KEY----- tail",
                "[REDACTED] tail",
            ),
            (
                "-----BEGIN CERTIFICATE-----x-----END CERTIFICATE-----",
                "-----BEGIN CERTIFICATE-----x-----END CERTIFICATE-----",
            ),
            ("mail bob@example.com", "mail bob@example.com"),
        ];
        for (input, want) in cases {
            assert_eq!(r.redact_str(input), want, "input {input:?}");
        }
        let with_email = Redactor::builder().pattern(ValuePattern::Email).build();
        assert_eq!(
            with_email.redact_str("mail bob.s@example.com."),
            "mail [REDACTED]."
        );
    }
}
