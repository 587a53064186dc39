//! Rendering field values as JSON (and as `key=value` text) straight into a byte buffer.
//!
//! Every format goes through this module, so it is the one place where escaping happens and the one
//! place where redaction is applied: sibling layers see the raw fields, so a "redaction layer" could
//! not stop a secret from reaching another layer's output. The functions here never allocate beyond
//! growing the caller's buffer, and every byte they write is valid JSON string content: quotes,
//! backslashes and control characters are escaped, and `Debug` output (which may contain anything) is
//! escaped as it is produced.
//!
//! Span fields are captured as typed values when the span is created or recorded, and rendered
//! once, the first time a line needs them, into a ready-made JSON fragment ([`SpanFields`]); an
//! event inside the span copies the bytes instead of visiting the fields again.

use std::fmt::{self, Write as _};

use tracing_core::field::{Field, Visit};

use crate::redact::Redactor;

/// Bytes that may start something to escape inside a string: control characters, `"`, `\`, DEL,
/// and the lead bytes of the C1 controls (`0xC2`) and of the line separators and bidirectional
/// controls (`0xE2`).
const fn needs_escape_table() -> [bool; 256] {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t[0x7f] = true;
    t[0xc2] = true;
    t[0xe2] = true;
    t
}
static NEEDS_ESCAPE: [bool; 256] = needs_escape_table();

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Whether any byte of `bytes` may need escaping (see [`NEEDS_ESCAPE`]): a quick filter, exact
/// for ASCII, that sends a string with any `0xC2` or `0xE2` byte to the slow path, which decides
/// per character. Checks eight bytes at a time.
#[inline(always)]
pub(crate) fn needs_escape(bytes: &[u8]) -> bool {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    #[inline(always)]
    fn has_byte(w: u64, b: u8) -> u64 {
        let x = w ^ (LO * u64::from(b));
        x.wrapping_sub(LO) & !x & HI
    }
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_le_bytes(word);
        let control = w.wrapping_sub(LO * 0x20);
        let quote = (w ^ (LO * b'"' as u64)).wrapping_sub(LO);
        let backslash = (w ^ (LO * b'\\' as u64)).wrapping_sub(LO);
        let del = (w ^ (LO * 0x7f)).wrapping_sub(LO);
        // High bits set by the subtractions, masked to bytes that were ASCII (the others would
        // set false alarms); the two lead bytes are looked for exactly.
        if (control | quote | backslash | del) & !w & HI != 0 {
            return true;
        }
        // Only a word with a non-ASCII byte can hold a lead byte.
        if w & HI != 0 && has_byte(w, 0xc2) | has_byte(w, 0xe2) != 0 {
            return true;
        }
    }
    chunks.remainder().iter().any(|&b| NEEDS_ESCAPE[b as usize])
}

/// The character at `bytes[i]` when it is one that is written escaped although JSON allows it:
/// DEL, a C1 control (U+0080–U+009F), U+2028/U+2029 (line and paragraph separators, which
/// JavaScript takes as line ends) and the bidirectional controls U+202A–U+202E and
/// U+2066–U+2069 (which can make a terminal show text in another order). Returns the code point
/// and the length of its UTF-8 encoding.
#[inline]
fn special_char(bytes: &[u8], i: usize) -> Option<(u32, usize)> {
    match bytes[i] {
        0x7f => Some((0x7f, 1)),
        0xc2 => match bytes.get(i + 1) {
            Some(&b) if (0x80..=0x9f).contains(&b) => Some((u32::from(b), 2)),
            _ => None,
        },
        0xe2 => {
            let (b1, b2) = (*bytes.get(i + 1)?, *bytes.get(i + 2)?);
            let cp = (0x2 << 12) | (u32::from(b1 & 0x3f) << 6) | u32::from(b2 & 0x3f);
            matches!(cp, 0x2028..=0x202e | 0x2066..=0x2069).then_some((cp, 3))
        }
        _ => None,
    }
}

/// Whether escaping `bytes` changes them (exact, unlike [`needs_escape`]).
pub(crate) fn escapes(bytes: &[u8]) -> bool {
    if !needs_escape(bytes) {
        return false;
    }
    (0..bytes.len()).any(|i| {
        let b = bytes[i];
        NEEDS_ESCAPE[b as usize] && (b < 0x7f || special_char(bytes, i).is_some())
    })
}

/// Appends `s` to `buf` as the content of a JSON string (without the surrounding quotes).
#[inline(always)]
pub(crate) fn escape_into(buf: &mut Vec<u8>, s: &str) {
    escape_bytes_into(buf, s.as_bytes());
}

/// [`escape_into`] for bytes known to be UTF-8 (a span's captured strings).
#[inline(always)]
fn escape_bytes_into(buf: &mut Vec<u8>, bytes: &[u8]) {
    // Fast path: most strings need no escaping at all.
    if !needs_escape(bytes) {
        buf.extend_from_slice(bytes);
    } else {
        escape_slow(buf, bytes);
    }
}

#[cold]
#[inline(never)]
fn escape_slow(buf: &mut Vec<u8>, bytes: &[u8]) {
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if !NEEDS_ESCAPE[b as usize] {
            i += 1;
            continue;
        }
        let (escaped, len): (&[u8], usize) = match b {
            b'"' => (b"\\\"", 1),
            b'\\' => (b"\\\\", 1),
            b'\n' => (b"\\n", 1),
            b'\r' => (b"\\r", 1),
            b'\t' => (b"\\t", 1),
            0x08 => (b"\\b", 1),
            0x0c => (b"\\f", 1),
            _ => {
                let (cp, len) = if b < 0x20 {
                    (u32::from(b), 1)
                } else if let Some(special) = special_char(bytes, i) {
                    special
                } else {
                    // A lead byte of an ordinary character: copied with the rest.
                    i += 1;
                    continue;
                };
                if start < i {
                    buf.extend_from_slice(&bytes[start..i]);
                }
                buf.extend_from_slice(&[
                    b'\\',
                    b'u',
                    HEX[(cp >> 12) as usize & 0xf],
                    HEX[(cp >> 8) as usize & 0xf],
                    HEX[(cp >> 4) as usize & 0xf],
                    HEX[cp as usize & 0xf],
                ]);
                i += len;
                start = i;
                continue;
            }
        };
        if start < i {
            buf.extend_from_slice(&bytes[start..i]);
        }
        buf.extend_from_slice(escaped);
        i += len;
        start = i;
    }
    if start < bytes.len() {
        buf.extend_from_slice(&bytes[start..]);
    }
}

/// Appends `s` as a quoted JSON string.
#[inline]
pub(crate) fn write_str(buf: &mut Vec<u8>, s: &str) {
    buf.push(b'"');
    escape_into(buf, s);
    buf.push(b'"');
}

/// Appends `"key":` to `buf`.
#[inline]
pub(crate) fn write_key(buf: &mut Vec<u8>, key: &str) {
    buf.push(b'"');
    escape_into(buf, key);
    buf.extend_from_slice(b"\":");
}

/// A `fmt::Write` adapter that escapes everything written through it as JSON string content.
pub(crate) struct JsonEscaper<'a>(pub(crate) &'a mut Vec<u8>);

impl fmt::Write for JsonEscaper<'_> {
    #[inline]
    fn write_str(&mut self, s: &str) -> fmt::Result {
        escape_into(self.0, s);
        Ok(())
    }
}

#[inline]
pub(crate) fn write_u64(buf: &mut Vec<u8>, v: u64) {
    buf.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

#[inline]
pub(crate) fn write_i64(buf: &mut Vec<u8>, v: i64) {
    buf.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

/// Appends a float; JSON has no NaN or infinity, so those become the strings `"NaN"`, `"inf"`, `"-inf"`.
#[inline]
pub(crate) fn write_f64(buf: &mut Vec<u8>, v: f64) {
    if v.is_finite() {
        buf.extend_from_slice(ryu::Buffer::new().format_finite(v).as_bytes());
    } else if v.is_nan() {
        buf.extend_from_slice(b"\"NaN\"");
    } else if v > 0.0 {
        buf.extend_from_slice(b"\"inf\"");
    } else {
        buf.extend_from_slice(b"\"-inf\"");
    }
}

pub(crate) use tracelight_schema::{is_reserved, REDACTED};

/// A 64-bit hash of a key, from its length and its first and last eight bytes (keys are short;
/// two keys that differ only in the middle of a long one share a hash, and are then told apart
/// by their bytes).
#[inline(always)]
fn key_hash(key: &str) -> u64 {
    let k = key.as_bytes();
    let n = k.len();
    let read8 = |b: &[u8]| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&b[..8]);
        u64::from_le_bytes(w)
    };
    let (a, b) = if n >= 8 {
        (read8(k), read8(&k[n - 8..]))
    } else {
        let mut w = 0u64;
        for (i, &byte) in k.iter().enumerate() {
            w |= u64::from(byte) << (8 * i);
        }
        (w, 0)
    };
    (a ^ b.rotate_left(29) ^ ((n as u64) << 56)).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// The word and bit of a key's hash in [`KeySet`]'s 256-bit filter.
#[inline(always)]
fn bloom_slot(hash: u64) -> (usize, u64) {
    ((hash >> 62) as usize, 1 << ((hash >> 56) & 63))
}

/// Keys written so far in one JSON object, to keep every key unique (see
/// [`tracelight_schema::RESERVED_KEYS`]).
///
/// Each key is kept with a hash of it: a key whose bit in the 256-bit filter is clear is new
/// with no comparison, and one whose bit is set is compared with the keys of the same hash only,
/// so that a wide event (30 fields named alike, `f01`…`f30`) costs a few comparisons per key,
/// not one per key written before it.
pub(crate) struct KeySet<'a> {
    /// Inline room for as many keys as an event can have fields (`tracing` allows 32 per
    /// callsite), so that the widest event needs no allocation (statics and context entries
    /// come on top, and only past 32 in all is the list moved to the heap). The inline room is
    /// not initialised: making a set costs the same whatever its size.
    keys: smallvec::SmallVec<[&'a str; 32]>,
    /// The hash of each key of `keys`, at the same index.
    hashes: smallvec::SmallVec<[u64; 32]>,
    /// One bit per key recorded, chosen by its hash.
    bloom: [u64; 4],
    reserved: bool,
    /// The keys of the schema preset, taken as the reserved ones are.
    preset: Option<&'a PresetKeys>,
    /// Keys written under a new name (rare; allocated only then).
    renamed: Vec<String>,
}

/// The keys a schema preset writes itself ([`tracelight_schema::Schema::own_keys`]), with a
/// filter of their hashes made once, so that checking a field against them costs a bit test.
#[derive(Debug, Clone, Default)]
pub(crate) struct PresetKeys {
    keys: &'static [&'static str],
    bloom: [u64; 4],
}

impl PresetKeys {
    pub(crate) fn new(keys: &'static [&'static str]) -> PresetKeys {
        let mut bloom = [0u64; 4];
        for k in keys {
            let (word, bit) = bloom_slot(key_hash(k));
            bloom[word] |= bit;
        }
        PresetKeys { keys, bloom }
    }

    /// How many keys the preset has.
    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }
}

impl<'a> KeySet<'a> {
    /// A set for an object whose reserved keys are the schema's reserved keys when `reserved` is true
    /// (the root of a line) and just `name` otherwise (a span object).
    #[inline]
    pub(crate) fn new(reserved: bool) -> Self {
        KeySet {
            keys: smallvec::SmallVec::new(),
            hashes: smallvec::SmallVec::new(),
            bloom: [0; 4],
            reserved,
            preset: None,
            renamed: Vec::new(),
        }
    }

    /// Also takes the keys of a schema preset.
    #[inline]
    pub(crate) fn with_preset(mut self, preset: &'a PresetKeys) -> Self {
        if !preset.keys.is_empty() {
            self.preset = Some(preset);
        }
        self
    }

    /// Whether `key` is taken; its hash when it is not (to record it with).
    #[inline]
    fn taken(&self, key: &str) -> Result<u64, ()> {
        if self.reserved {
            if is_reserved(key) {
                return Err(());
            }
        } else if key == "name" {
            return Err(());
        }
        let h = key_hash(key);
        let (word, bit) = bloom_slot(h);
        if let Some(p) = self.preset {
            if p.bloom[word] & bit != 0 && p.keys.contains(&key) {
                return Err(());
            }
        }
        if self.bloom[word] & bit != 0
            && self
                .hashes
                .iter()
                .zip(self.keys.iter())
                .any(|(kh, k)| *kh == h && *k == key)
        {
            return Err(());
        }
        if !self.renamed.is_empty() && self.renamed.iter().any(|k| k == key) {
            return Err(());
        }
        Ok(h)
    }

    #[inline]
    fn record(&mut self, key: &'a str, h: u64) {
        let (word, bit) = bloom_slot(h);
        self.bloom[word] |= bit;
        self.keys.push(key);
        self.hashes.push(h);
    }

    /// Records a key written by other means (static and context fields), without checking it.
    #[inline]
    pub(crate) fn add(&mut self, key: &'a str) {
        self.record(key, key_hash(key));
    }

    /// Records `key` and writes it to `buf`, renamed by the schema's rule
    /// ([`tracelight_schema::rename`]) when it is already taken.
    #[inline]
    pub(crate) fn write_key(&mut self, buf: &mut Vec<u8>, key: &'a str) {
        match self.taken(key) {
            Ok(h) => {
                self.record(key, h);
                write_key(buf, key);
            }
            Err(()) => self.write_renamed(buf, key),
        }
    }

    #[cold]
    fn write_renamed(&mut self, buf: &mut Vec<u8>, key: &str) {
        // `fields.<name>`, then `fields.<name>.2`, `.3`… Renamed keys are compared by their
        // rendered form, kept in a small side list since they are not `&'a str`.
        let mut n = 1u32;
        loop {
            let candidate = tracelight_schema::rename(key, n);
            if self.taken(&candidate).is_ok() {
                write_key(buf, &candidate);
                self.renamed.push(candidate);
                return;
            }
            n += 1;
        }
    }
}

/// Writes the type name at the start of an error's `Debug` output (`PaymentError { .. }` →
/// `PaymentError`, `Os { code: 2, .. }` → `Os`, `Timeout` → `Timeout`), or `Error` when the
/// output does not start with a type-like name followed by ` {`, `(` or its end (anyhow's
/// `Debug` starts with the message: `card declined\n\nCaused by…` names no type). `dyn Error`
/// carries no type name, and this is the one place it shows. The `Debug` impl is stopped as soon
/// as the name is complete, so the rest of the error (its chain, say) is not formatted.
pub(crate) fn write_type_name(buf: &mut Vec<u8>, err: &dyn fmt::Debug) {
    /// Collects the leading identifier, then the two bytes after it.
    struct Name {
        name: [u8; 128],
        len: usize,
        /// Up to two bytes that follow the name; `None` while the name goes on.
        after: [u8; 2],
        after_len: usize,
        done_name: bool,
        too_long: bool,
    }
    impl fmt::Write for Name {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            for &b in s.as_bytes() {
                if !self.done_name {
                    if b.is_ascii_alphanumeric() || b == b'_' || b == b':' {
                        if self.len == self.name.len() {
                            self.too_long = true;
                            return Err(fmt::Error);
                        }
                        self.name[self.len] = b;
                        self.len += 1;
                        continue;
                    }
                    self.done_name = true;
                }
                self.after[self.after_len] = b;
                self.after_len += 1;
                if self.after_len == 2 {
                    return Err(fmt::Error);
                }
            }
            Ok(())
        }
    }
    let mut n = Name {
        name: [0; 128],
        len: 0,
        after: [0; 2],
        after_len: 0,
        done_name: false,
        too_long: false,
    };
    let _ = write!(n, "{err:?}");
    let name = &n.name[..n.len];
    let after = &n.after[..n.after_len];
    let ends_well = after.is_empty() || after == b" {" || after.first() == Some(&b'(');
    // Type-like: its last path segment starts with an upper-case letter.
    let last = name.rsplit(|b| *b == b':').next().unwrap_or(&[]);
    let type_like = last.first().is_some_and(u8::is_ascii_uppercase);
    if n.too_long || name.is_empty() || !ends_well || !type_like {
        buf.extend_from_slice(b"Error");
    } else {
        buf.extend_from_slice(name);
    }
}

/// Writes the members of an `error` object: `"type":…,"message":…,"chain":[…]`.
pub(crate) fn write_error_members(
    buf: &mut Vec<u8>,
    err: &(dyn std::error::Error + 'static),
    redactor: Option<&Redactor>,
) {
    // Each string masked on its own, inside its quotes, as an event's error is.
    let text = |buf: &mut Vec<u8>, e: &dyn fmt::Display| {
        buf.push(b'"');
        let start = buf.len();
        let _ = write!(JsonEscaper(buf), "{e}");
        if let Some(r) = redactor {
            r.redact_raw(buf, start);
        }
        buf.push(b'"');
    };
    buf.extend_from_slice(b"\"type\":\"");
    write_type_name(buf, err);
    buf.extend_from_slice(b"\",\"message\":");
    text(buf, err);
    buf.extend_from_slice(b",\"chain\":[");
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    let mut depth = 0;
    while let Some(e) = cur {
        if depth > 0 {
            buf.push(b',');
        }
        text(buf, e);
        cur = e.source();
        depth += 1;
        if depth >= 64 {
            // A cycle in `source()` would otherwise never end.
            break;
        }
    }
    buf.push(b']');
}

/// A span field's value as captured when the span was created or recorded.
#[derive(Debug, Clone, Copy)]
enum Raw {
    U64(u64),
    I64(i64),
    F64(f64),
    Bool(bool),
    /// A string (or `Debug` output), unescaped, at this range of the arena.
    Str(usize, usize),
    /// An already rendered JSON value (an error object, a 128-bit integer) in the arena.
    Json(usize, usize),
}

/// How many captured values, and how many arena bytes, a span keeps at least before values
/// replaced by later records are dropped. After a compaction the limits are twice what is left,
/// so a span whose fields are all live does not compact on every record.
const COMPACT_AT: usize = 32;
const ARENA_COMPACT_AT: usize = 64 * 1024;

/// A span's fields: captured when the span is created (cheap copies of the values), rendered once
/// as a JSON fragment (`"k":v,"k2":v2,`) the first time a line needs them. An event inside the
/// span then copies the bytes instead of formatting the values again; a span no line reads (most
/// of them) never renders at all.
///
/// The buffers are plain `Vec`s: span states are pooled (see `spans`), so their capacity is reused
/// and a span allocates nothing in steady state.
#[derive(Debug, Default, Clone)]
pub(crate) struct SpanFields {
    /// Captured values in record order; a later value of a name replaces an earlier one.
    values: Vec<(&'static str, Raw)>,
    /// Bytes of string values and pre-rendered JSON values.
    arena: Vec<u8>,
    /// Whether `json` and `entries` reflect `values`.
    rendered: bool,
    /// `"k":v,` pairs, each followed by a comma.
    pub(crate) json: Vec<u8>,
    /// Names and byte ranges of each pair in `json`.
    entries: Vec<(&'static str, usize, usize)>,
    /// When to compact next (values, arena bytes); zero means the defaults.
    compact_at: (usize, usize),
    /// Changes with every record, merge or clear: what was rendered from an older generation is
    /// stale.
    generation: u64,
}

#[inline]
fn same_name(a: &str, b: &str) -> bool {
    a.len() == b.len() && (a.as_ptr() == b.as_ptr() || a == b)
}

impl SpanFields {
    /// Empties the fields, keeping the buffers.
    pub(crate) fn clear(&mut self) {
        self.values.clear();
        self.arena.clear();
        self.json.clear();
        self.entries.clear();
        self.rendered = false;
        self.compact_at = (0, 0);
        self.generation = self.generation.wrapping_add(1);
    }

    /// The generation of the values: it changes whenever they do.
    #[inline]
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    /// Bytes held by the buffers.
    pub(crate) fn capacity(&self) -> usize {
        self.json.capacity()
            + self.arena.capacity()
            + self.entries.capacity() * std::mem::size_of::<(&str, usize, usize)>()
            + self.values.capacity() * std::mem::size_of::<(&str, Raw)>()
    }

    /// Captures `values`; a field recorded again replaces its earlier value. `Debug` and `Display`
    /// impls run here; nothing is escaped or redacted until [`SpanFields::render`].
    pub(crate) fn record<R: tracing_subscriber::field::RecordFields>(
        &mut self,
        values: R,
        redactor: Option<&Redactor>,
    ) {
        values.record(&mut SpanRecorder {
            fields: self,
            redactor,
        });
        self.rendered = false;
        self.generation = self.generation.wrapping_add(1);
        self.maybe_compact();
    }

    /// Appends the captured values of `other`; a field already here is replaced.
    pub(crate) fn merge(&mut self, other: &SpanFields) {
        let base = self.arena.len();
        self.arena.extend_from_slice(&other.arena);
        self.values.extend(other.values.iter().map(|&(k, v)| {
            let v = match v {
                Raw::Str(s, e) => Raw::Str(s + base, e + base),
                Raw::Json(s, e) => Raw::Json(s + base, e + base),
                v => v,
            };
            (k, v)
        }));
        self.rendered = false;
        self.generation = self.generation.wrapping_add(1);
        self.maybe_compact();
    }

    #[inline]
    fn maybe_compact(&mut self) {
        if self.values.len() > self.compact_at.0.max(COMPACT_AT)
            || self.arena.len() > self.compact_at.1.max(ARENA_COMPACT_AT)
        {
            self.compact();
            self.compact_at = (2 * self.values.len(), 2 * self.arena.len());
        }
    }

    /// Drops values that a later value of the same name replaces, and their bytes.
    #[cold]
    fn compact(&mut self) {
        let values = std::mem::take(&mut self.values);
        let arena = std::mem::take(&mut self.arena);
        for (i, &(k, v)) in values.iter().enumerate() {
            if values[i + 1..].iter().any(|(n, _)| same_name(n, k)) {
                continue;
            }
            let v = match v {
                Raw::Str(s, e) | Raw::Json(s, e) => {
                    let start = self.arena.len();
                    self.arena.extend_from_slice(&arena[s..e]);
                    let end = self.arena.len();
                    if matches!(v, Raw::Str(..)) {
                        Raw::Str(start, end)
                    } else {
                        Raw::Json(start, end)
                    }
                }
                v => v,
            };
            self.values.push((k, v));
        }
    }

    /// Whether a value named `name` was captured.
    pub(crate) fn has(&self, name: &str) -> bool {
        self.values.iter().any(|(k, _)| *k == name)
    }

    /// Renders the captured values as JSON members (once; later calls are free until the next
    /// record). Secret keys become `[REDACTED]`, and secrets in string values are masked.
    pub(crate) fn render(&mut self, redactor: Option<&Redactor>) {
        if self.rendered {
            return;
        }
        self.json.clear();
        self.entries.clear();
        for (i, &(name, v)) in self.values.iter().enumerate() {
            if self.values[i + 1..].iter().any(|(n, _)| same_name(n, name)) {
                continue;
            }
            let json = &mut self.json;
            let start = json.len();
            if name == "name" {
                write_key(json, "fields.name");
            } else {
                write_key(json, name);
            }
            match redactor {
                Some(r) if r.is_secret_field(name) => write_str(json, REDACTED),
                r => match v {
                    Raw::U64(v) => write_u64(json, v),
                    Raw::I64(v) => write_i64(json, v),
                    Raw::F64(v) => write_f64(json, v),
                    Raw::Bool(v) => json.extend_from_slice(if v { b"true" } else { b"false" }),
                    Raw::Str(s, e) => {
                        // A correlation key's value is never masked.
                        let r = r.filter(|r| !r.keeps_field(name));
                        string_value(json, r, &self.arena[s..e]);
                    }
                    Raw::Json(s, e) => json.extend_from_slice(&self.arena[s..e]),
                },
            }
            json.push(b',');
            self.entries.push((name, start, json.len()));
        }
        self.rendered = true;
    }

    /// The JSON members, without a trailing comma. Empty until [`SpanFields::render`].
    pub(crate) fn json_members(&self) -> &[u8] {
        self.json.strip_suffix(b",").unwrap_or(&self.json)
    }

    /// The names of the rendered fields.
    pub(crate) fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.entries.iter().map(|(k, _, _)| *k)
    }

    /// The rendered JSON value of `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&[u8]> {
        self.iter().find(|(k, _)| *k == name).map(|(_, v)| v)
    }

    /// Iterates `(name, rendered JSON value)` pairs.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&'static str, &[u8])> {
        self.entries.iter().map(|(k, s, e)| {
            let pair = &self.json[*s..*e];
            // pair is `"key":value,`; the value starts after the first `":` that closes the key.
            let key_len = if *k == "name" {
                "\"fields.name\":".len()
            } else if !needs_escape(k.as_bytes()) {
                k.len() + 3
            } else {
                rendered_key_len(pair)
            };
            (*k, &pair[key_len..pair.len() - 1])
        })
    }
}

/// Length of the `"key":` prefix of a rendered pair (keys are escaped, so the first unescaped
/// quote after the opening one closes the key).
fn rendered_key_len(pair: &[u8]) -> usize {
    let mut i = 1;
    while i < pair.len() {
        match pair[i] {
            b'\\' => i += 2,
            b'"' => return i + 2,
            _ => i += 1,
        }
    }
    pair.len()
}

/// Captures span field values into a [`SpanFields`].
struct SpanRecorder<'a> {
    fields: &'a mut SpanFields,
    redactor: Option<&'a Redactor>,
}

impl SpanRecorder<'_> {
    /// `otel.name`, `otel.kind`…: directives for the OpenTelemetry exporter, not data.
    #[inline]
    fn is_directive(field: &Field) -> bool {
        field.name().as_bytes().starts_with(b"otel.")
    }

    #[inline]
    fn push(&mut self, field: &Field, v: Raw) {
        if !Self::is_directive(field) {
            self.fields.values.push((field.name(), v));
        }
    }

    #[inline]
    fn push_with(&mut self, field: &Field, json: bool, write: impl FnOnce(&mut Vec<u8>)) {
        if Self::is_directive(field) {
            return;
        }
        let start = self.fields.arena.len();
        write(&mut self.fields.arena);
        let end = self.fields.arena.len();
        let v = if json {
            Raw::Json(start, end)
        } else {
            Raw::Str(start, end)
        };
        self.fields.values.push((field.name(), v));
    }
}

/// Renders a string value (unescaped bytes), masking secrets that match the value patterns.
fn string_value(b: &mut Vec<u8>, r: Option<&Redactor>, value: &[u8]) {
    b.push(b'"');
    let start = b.len();
    escape_bytes_into(b, value);
    if let Some(r) = r {
        if r.may_match(value.len()) {
            // The content only: a mask that runs to the end never takes the closing quote.
            r.redact_raw(b, start);
        }
    }
    b.push(b'"');
}

/// Appends `Debug` output to a byte buffer as is.
struct RawWriter<'a>(&'a mut Vec<u8>);

impl fmt::Write for RawWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

impl Visit for SpanRecorder<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.push(field, Raw::F64(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.push(field, Raw::I64(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.push(field, Raw::U64(value));
    }
    fn record_i128(&mut self, field: &Field, value: i128) {
        self.push_with(field, true, |b| {
            b.extend_from_slice(itoa::Buffer::new().format(value).as_bytes())
        });
    }
    fn record_u128(&mut self, field: &Field, value: u128) {
        self.push_with(field, true, |b| {
            b.extend_from_slice(itoa::Buffer::new().format(value).as_bytes())
        });
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.push(field, Raw::Bool(value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.push_with(field, false, |b| b.extend_from_slice(value.as_bytes()));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        let r = self.redactor;
        self.push_with(field, true, |b| {
            b.push(b'{');
            write_error_members(b, value, r);
            b.push(b'}');
        });
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.push_with(field, false, |b| {
            // A Debug impl may return an error; what it wrote so far is kept.
            let _ = write!(RawWriter(b), "{value:?}");
        });
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_key_set_tells_keys_apart_past_its_inline_room_and_within_a_hash() {
        let names: Vec<String> = (1..=40).map(|i| format!("f{i:02}")).collect();
        // Same length, same first and last eight bytes: the same hash, told apart by bytes.
        let (a, b) = ("request_header_aaaa_value_x", "request_header_bbbb_value_x");
        assert_eq!(key_hash(a), key_hash(b));
        let mut keys = KeySet::new(true);
        let mut out = Vec::new();
        for n in &names {
            keys.write_key(&mut out, n);
        }
        keys.write_key(&mut out, a);
        keys.write_key(&mut out, b);
        keys.write_key(&mut out, "f05");
        keys.write_key(&mut out, "f37");
        keys.write_key(&mut out, a);
        keys.write_key(&mut out, "level");
        let text = String::from_utf8(out).unwrap();
        for n in &names {
            assert_eq!(text.matches(&format!("\"{n}\":")).count(), 1, "{n}: {text}");
        }
        for renamed in [
            "fields.f05",
            "fields.f37",
            "fields.request_header_aaaa_value_x",
            "fields.level",
        ] {
            assert!(
                text.contains(&format!("\"{renamed}\":")),
                "{renamed}: {text}"
            );
        }
        assert!(text.contains("\"request_header_bbbb_value_x\":"), "{text}");
        assert!(!text.contains("fields.request_header_bbbb"), "{text}");
    }

    use super::*;

    #[test]
    fn escapes_every_control_character() {
        let mut s = String::new();
        for c in 0u8..0x20 {
            s.push(c as char);
        }
        s.push_str("\"\\é\u{2028}");
        let mut buf = Vec::new();
        write_str(&mut buf, &s);
        let parsed: String = serde_json::from_slice(&buf).expect("valid JSON string");
        assert_eq!(parsed, s);
        assert!(!buf.contains(&b'\n'));
    }

    #[test]
    fn terminal_and_line_breaking_characters_are_escaped() {
        let mut s = String::from("a\u{7f}b\u{85}c\u{9b}d\u{2028}e\u{2029}f");
        for c in ['\u{202a}', '\u{202b}', '\u{202c}', '\u{202d}', '\u{202e}'] {
            s.push(c);
        }
        for c in ['\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}'] {
            s.push(c);
        }
        // Ordinary characters that share the lead bytes stay as they are.
        s.push_str("£…—✓é");
        let mut buf = Vec::new();
        write_str(&mut buf, &s);
        let text = std::str::from_utf8(&buf).expect("utf8");
        for esc in [
            "\\u007f", "\\u0085", "\\u009b", "\\u2028", "\\u2029", "\\u202a", "\\u202e", "\\u2066",
            "\\u2069",
        ] {
            assert!(text.contains(esc), "{esc} missing in {text}");
        }
        assert!(text.ends_with("£…—✓é\""), "{text}");
        let parsed: String = serde_json::from_slice(&buf).expect("valid JSON string");
        assert_eq!(parsed, s);
        assert!(escapes(s.as_bytes()) && !escapes("£…—✓é".as_bytes()));
    }

    #[test]
    fn needs_escape_agrees_with_the_table() {
        let mut samples: Vec<Vec<u8>> = Vec::new();
        for b in 0u8..=255 {
            for len in 1..=17 {
                for pos in 0..len {
                    let mut v = vec![b'a'; len];
                    v[pos] = b;
                    samples.push(v);
                }
            }
        }
        samples.push(Vec::new());
        samples.push("héllo wörld, ünïcode ✓ 1234567890".as_bytes().to_vec());
        for s in samples {
            let slow = s.iter().any(|&b| NEEDS_ESCAPE[b as usize]);
            assert_eq!(needs_escape(&s), slow, "{s:?}");
        }
    }

    #[test]
    fn floats_that_json_cannot_hold_become_strings() {
        for (v, want) in [
            (f64::NAN, "\"NaN\""),
            (f64::INFINITY, "\"inf\""),
            (f64::NEG_INFINITY, "\"-inf\""),
            (1.5, "1.5"),
        ] {
            let mut b = Vec::new();
            write_f64(&mut b, v);
            assert_eq!(std::str::from_utf8(&b).expect("utf8"), want);
        }
    }

    #[test]
    fn error_type_name_is_the_leading_identifier() {
        struct D(&'static str);
        impl fmt::Debug for D {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.0)
            }
        }
        let name = |s: &'static str| {
            let mut b = Vec::new();
            write_type_name(&mut b, &D(s));
            String::from_utf8(b).expect("utf8")
        };
        assert_eq!(name("PaymentError { code: 402 }"), "PaymentError");
        assert_eq!(name("Os { code: 2, kind: NotFound }"), "Os");
        assert_eq!(name("\"just a string\""), "Error");
        assert_eq!(name("io::Error"), "io::Error");
        assert_eq!(name("Payment(Declined)"), "Payment");
        assert_eq!(name("Timeout"), "Timeout");
        // anyhow's Debug starts with the message: no type there.
        assert_eq!(
            name("card declined\n\nCaused by:\n    gateway 402"),
            "Error"
        );
        assert_eq!(name("timeout after 5s"), "Error");
    }

    #[test]
    fn keyset_renames_reserved_and_repeated_keys() {
        let mut buf = Vec::new();
        let mut keys = KeySet::new(true);
        keys.write_key(&mut buf, "user");
        keys.write_key(&mut buf, "level");
        keys.write_key(&mut buf, "user");
        assert_eq!(
            std::str::from_utf8(&buf).expect("utf8"),
            "\"user\":\"fields.level\":\"fields.user\":"
        );
        keys.write_key(&mut buf, "user");
        assert!(std::str::from_utf8(&buf)
            .expect("utf8")
            .ends_with("\"fields.user.2\":"));
    }
}
