//! Redaction: secrets never leave the process.
//!
//! Redaction is not a layer of its own: sibling layers see the raw fields, so a secret masked by one
//! layer would still be written by another. It lives in the one capture of each event's fields that
//! every format renders from (and in the rendering of span fields, bound context, static fields and
//! the OpenTelemetry export), and is applied before any byte reaches a writer or an exporter.
//!
//! Three kinds of rules:
//!
//! - **Key rules.** A field whose name matches a secret word is written as `"[REDACTED]"`, whatever
//!   its value. A name is split into words at `_`, `-`, `.`, spaces and camelCase boundaries; it
//!   matches when a run of consecutive words, joined, equals a secret word (case-insensitive). So
//!   `db_password`, `X-Api-Key`, `accessToken`, `stripe_key` and `private_key_pem` match, while
//!   `max_tokens`, `author`, `cache_key`, `sort_key`, `primary_key`, `partition_key`,
//!   `routing_key` and `idempotency_key` do not: the list names secret keys word by word
//!   ([`DEFAULT_SECRET_KEYS`]), never a bare `*_key` suffix.
//! - **Key rules inside values.** The same names in an assignment inside a string or a `{:?}`
//!   rendering — `password: "…"`, `"token": "…"`, `secret=…`, `Cookie: …`,
//!   `aws_secret_access_key=…` — mask the value assigned.
//! - **Value rules.** Shapes that are secrets wherever they appear: source-host, chat, SaaS, cloud
//!   and package-registry tokens by their prefixes, JWTs, PEM private keys, bearer and basic
//!   credentials, the password of a URL (`postgres://user:[REDACTED]@host/db`), card numbers (an
//!   issuer's prefix and length, and the Luhn check), and — when asked — e-mail addresses. Only the
//!   secret part becomes `[REDACTED]`; the rest of the value stays readable. Each rule is in
//!   `docs/insight.md`.
//!
//! A first pass reads each value 32 bytes at a time (with AVX2 where the machine has it) and
//! keeps only the bytes where a rule can start: a start of a word whose first two bytes may begin
//! a literal prefix (tested on all 32 positions at once with nibble tables, as Teddy does), a `=`
//! or `:`, and an aligned group of four digits. The rules are tried only there, so a value with no
//! candidate costs one pass.
//!
//! The values of the correlation keys (`request_id`, `trace_id`, `span_id` and the configured
//! context fields) are never masked: a request id of sixteen digits that happen to pass the Luhn
//! check stays findable.
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
//! assert_eq!(redactor.redact_str("token ghp_0123456789abcdefghijABCDEFGHIJ012345"), "token [REDACTED]");
//! ```
//!
//! To see which rule masked a value, [`RedactorBuilder::name_rules`] writes
//! `[REDACTED:github_token]` instead of `[REDACTED]`.

mod prefilter;
mod rules;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use smallvec::SmallVec;
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
    "stripe_key",
    "signing_key",
    "encryption_key",
    "master_key",
    "hmac_key",
    "account_key",
    "shared_access_key",
    "ssh_key",
    "license_key",
    "dsn",
];

/// Keys whose values are never masked: they are how lines are found and joined.
pub const CORRELATION_KEYS: &[&str] = &["request_id", "trace_id", "span_id"];

/// A group of value rules, turned on or off together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ValuePattern {
    /// `Bearer <token>` and `Basic <base64>` (case-insensitive): the credential is masked.
    Bearer,
    /// A JSON Web Token: `eyJ…` header, payload and signature.
    Jwt,
    /// An AWS access key id: `AKIA`/`ASIA`… followed by 16 upper-case letters or digits.
    AwsAccessKey,
    /// A PEM block `-----BEGIN … PRIVATE KEY-----` through its `-----END … PRIVATE KEY-----`.
    PrivateKey,
    /// 13 to 19 digits with a card brand's issuer prefix and length that pass the Luhn check,
    /// without separators or grouped as cards are printed (4-4-4-4, 4-4-4-4-3, 4-6-5, 4-6-4), and
    /// not inside a longer token.
    CardNumber,
    /// An e-mail address (off by default).
    Email,
    /// Source-host tokens: GitHub (`ghp_`, `gho_`, `ghu_`, `ghs_`, `ghr_`, `github_pat_`), GitLab
    /// (`glpat-`, `gldt-`, `glrt-`…).
    SourceHost,
    /// Chat and SaaS tokens: Slack (`xoxb-`… and webhook URLs), Stripe (`sk_live_`, `rk_live_`,
    /// `whsec_`…), OpenAI-style `sk-…`, Twilio (`SK` + 32 hex), SendGrid (`SG.…`), Linear, New
    /// Relic, Postman, Sentry, Shopify, Atlassian, Hugging Face, Grafana.
    Saas,
    /// Cloud keys: Google API keys (`AIza…`), DigitalOcean, Databricks, HashiCorp Vault, age.
    Cloud,
    /// Package-registry tokens: npm, PyPI, Docker Hub, RubyGems, crates.io, NuGet.
    Registry,
    /// The password in a URL of any scheme: `postgres://user:[REDACTED]@host/db`.
    UrlCredentials,
    /// Secret key names in assignments inside values: `password: "…"`, `"token": "…"`,
    /// `secret=…`, `Cookie: …`, `aws_secret_access_key=…`.
    Assignment,
}

impl ValuePattern {
    /// The patterns on by default: every pattern but [`ValuePattern::Email`].
    pub const DEFAULTS: &'static [ValuePattern] = &[
        ValuePattern::Bearer,
        ValuePattern::Jwt,
        ValuePattern::AwsAccessKey,
        ValuePattern::PrivateKey,
        ValuePattern::CardNumber,
        ValuePattern::SourceHost,
        ValuePattern::Saas,
        ValuePattern::Cloud,
        ValuePattern::Registry,
        ValuePattern::UrlCredentials,
        ValuePattern::Assignment,
    ];
}

/// A rule of your own: finds secrets in a value. Given the value (escaped as JSON string
/// content), it returns the byte ranges to mask, in order and not overlapping.
pub type CustomRule = Arc<dyn Fn(&str) -> Vec<std::ops::Range<usize>> + Send + Sync>;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// The redaction rules: secret key words and value rules. Cheap to share (`Arc`) between layers.
///
/// ```
/// let r = tracelight::redact::Redactor::default();
/// assert!(r.is_secret_key("Authorization"));
/// assert_eq!(r.redact_str("key AKIAIOSFODNN7EXAMPLE"), "key [REDACTED]");
/// ```
#[derive(Clone)]
pub struct Redactor {
    id: u64,
    keys: Vec<String>,
    patterns: Vec<ValuePattern>,
    /// The compiled scan, shared by clones.
    scan: Arc<Scan>,
    enabled: bool,
    name_rules: bool,
    /// Field names whose values are never masked.
    kept: Vec<String>,
    /// The lengths of the secret words (bit `n` for length `n`) and their first letters (bit
    /// `b & 31`), to pass over most words without comparing.
    key_lens: u64,
    key_firsts: u32,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redactor")
            .field("keys", &self.keys)
            .field("patterns", &self.patterns)
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

/// What one value scan needs, built once per set of rules.
struct Scan {
    /// The value rules' literal prefixes with their rule, sorted by first byte (in rule order
    /// for one byte), and for each byte the range of those that start with it.
    literals: Vec<(&'static [u8], usize)>,
    by_first: [(u16, u16); 256],
    /// The first three bytes of every literal (of `Bearer` and `Basic` in any case, of the
    /// `BEGIN` of a private key), hashed into 4,096 bits: most word starts the first pass keeps
    /// are passed over by one test.
    tri: Box<[u64; 64]>,
    /// The `Bearer` and `Basic` rules, found by their own search.
    bearer: Option<usize>,
    basic: Option<usize>,
    /// The tables of the first pass ([`prefilter`]).
    filter: prefilter::Filter,
    /// The first pass runs on vectors (AVX2).
    vector: bool,
    /// Secret key names in assignments inside values are looked for.
    assignment: bool,
    /// URL passwords are looked for.
    url: bool,
    /// `Bearer` and `Basic` credentials are looked for.
    credentials: bool,
    rules: Vec<rules::Rule>,
    email: bool,
    customs: Vec<(&'static str, CustomRule)>,
    /// PEM private key blocks are looked for.
    pem: bool,
    /// The shortest value any rule can match; shorter values are not scanned.
    min_len: usize,
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
#[derive(Clone)]
pub struct RedactorBuilder {
    keys: Vec<String>,
    patterns: Vec<ValuePattern>,
    enabled: bool,
    name_rules: bool,
    customs: Vec<(String, CustomRule)>,
}

impl std::fmt::Debug for RedactorBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedactorBuilder")
            .field("keys", &self.keys)
            .field("patterns", &self.patterns)
            .finish_non_exhaustive()
    }
}

impl Default for RedactorBuilder {
    fn default() -> Self {
        RedactorBuilder {
            keys: DEFAULT_SECRET_KEYS.iter().map(|k| normalize(k)).collect(),
            patterns: ValuePattern::DEFAULTS.to_vec(),
            enabled: true,
            name_rules: false,
            customs: Vec::new(),
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

    /// Turns a group of value rules on.
    pub fn pattern(mut self, p: ValuePattern) -> Self {
        if !self.patterns.contains(&p) {
            self.patterns.push(p);
        }
        self
    }

    /// Turns a group of value rules off.
    pub fn without_pattern(mut self, p: ValuePattern) -> Self {
        self.patterns.retain(|x| *x != p);
        self
    }

    /// Turns every value rule off.
    pub fn clear_patterns(mut self) -> Self {
        self.patterns.clear();
        self
    }

    /// Adds a rule of your own, named `name` (shown by [`name_rules`](Self::name_rules)). It
    /// runs on every string value long enough to hold a secret, after the built-in scan.
    ///
    /// ```
    /// use tracelight::redact::Redactor;
    /// let r = Redactor::builder()
    ///     .custom("employee_badge", |v: &str| {
    ///         v.match_indices("BADGE-").map(|(i, m)| i..(i + m.len() + 6).min(v.len())).collect()
    ///     })
    ///     .name_rules(true)
    ///     .build();
    /// assert_eq!(r.redact_str("scanned BADGE-123456 at gate"), "scanned [REDACTED:employee_badge] at gate");
    /// ```
    pub fn custom(
        mut self,
        name: impl Into<String>,
        rule: impl Fn(&str) -> Vec<std::ops::Range<usize>> + Send + Sync + 'static,
    ) -> Self {
        self.customs.push((name.into(), Arc::new(rule)));
        self
    }

    /// Writes `[REDACTED:<rule>]` (`[REDACTED:github_token]`, `[REDACTED:key]` for a secret key)
    /// instead of `[REDACTED]`, so that a reader can tell which rule masked a value.
    pub fn name_rules(mut self, on: bool) -> Self {
        self.name_rules = on;
        self
    }

    /// Turns redaction off altogether (for benchmarks and tests; not for production).
    pub fn disabled(mut self) -> Self {
        self.enabled = false;
        self
    }

    /// Builds the rules.
    pub fn build(self) -> Redactor {
        let on = |p: ValuePattern| self.patterns.contains(&p);
        let value_rules: Vec<rules::Rule> = rules::RULES
            .iter()
            .copied()
            .filter(|r| on(r.group))
            .collect();
        // The literals, by first byte; `Bearer` and `Basic` (written in any case) have their
        // own search.
        let mut literals: Vec<(&'static [u8], usize)> = Vec::new();
        let mut bearer = None;
        let mut basic = None;
        for (i, r) in value_rules.iter().enumerate() {
            for p in r.prefixes {
                match *p {
                    "bearer " => bearer = Some(i),
                    "basic " => basic = Some(i),
                    _ => literals.push((p.as_bytes(), i)),
                }
            }
        }
        literals.sort_by_key(|(l, _)| l[0]);
        let mut by_first = [(0u16, 0u16); 256];
        let assignment = on(ValuePattern::Assignment) && !self.keys.is_empty();
        let url = on(ValuePattern::UrlCredentials);
        let credentials = on(ValuePattern::Bearer);
        let card = on(ValuePattern::CardNumber);
        let email = on(ValuePattern::Email);
        let pem = on(ValuePattern::PrivateKey);
        // The starts of words the first pass keeps (their first two bytes) and the exact test
        // after it (their first three).
        let mut starts: Vec<Vec<u8>> = Vec::new();
        for (k, (l, _)) in literals.iter().enumerate() {
            let e = &mut by_first[usize::from(l[0])];
            if e.1 == 0 {
                e.0 = k as u16;
            }
            e.1 = k as u16 + 1;
            if l.len() >= 3 {
                starts.push(l[..3].to_vec());
            } else {
                // A two-byte literal (`SK`): any third byte a token can have.
                for c in (0..=255u8).filter(|&c| rules::is_token_char(c)) {
                    starts.push(vec![l[0], l.get(1).copied().unwrap_or(c), c]);
                }
            }
        }
        let mut cased = |w: &[u8; 3]| {
            for m in 0..8u8 {
                let v: Vec<u8> = (0..3)
                    .map(|i| {
                        if m >> i & 1 == 1 {
                            w[i].to_ascii_uppercase()
                        } else {
                            w[i]
                        }
                    })
                    .collect();
                starts.push(v);
            }
        };
        if credentials && bearer.is_some() {
            cased(b"bea");
        }
        if credentials && basic.is_some() {
            cased(b"bas");
        }
        if pem {
            starts.push(b"BEG".to_vec());
        }
        let mut tri = Box::new([0u64; 64]);
        let mut pairs = Vec::new();
        for w in &starts {
            let h = tri_hash(w[0], w[1], w[2]);
            tri[h >> 6] |= 1 << (h & 63);
            pairs.push((w[0], w[1]));
        }
        let filter = prefilter::Filter::new(&pairs, assignment || url, email, card);
        let mut min_len = literals
            .iter()
            .map(|(l, _)| l.len() + 1)
            .min()
            .unwrap_or(usize::MAX);
        if credentials {
            min_len = min_len.min(14);
        }
        if pem {
            min_len = min_len.min(27);
        }
        if assignment || url {
            min_len = min_len.min(4);
        }
        if card {
            min_len = min_len.min(13);
        }
        if email {
            min_len = min_len.min(6);
        }
        if !self.customs.is_empty() {
            min_len = 1;
        }
        let key_lens = self.keys.iter().fold(0, |m, k| m | 1u64 << k.len().min(63));
        let key_firsts = self
            .keys
            .iter()
            .filter_map(|k| k.bytes().next())
            .fold(0, |m, b| m | 1u32 << (b & 31));
        Redactor {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            keys: self.keys,
            patterns: self.patterns,
            scan: Arc::new(Scan {
                literals,
                by_first,
                tri,
                bearer,
                basic,
                filter,
                vector: prefilter::vector(),
                assignment,
                url,
                credentials,
                rules: value_rules,
                email,
                customs: self
                    .customs
                    .into_iter()
                    .map(|(name, rule)| (intern(&name), rule))
                    .collect(),
                pem,
                min_len,
            }),
            enabled: self.enabled,
            name_rules: self.name_rules,
            kept: CORRELATION_KEYS.iter().map(|k| (*k).to_owned()).collect(),
            key_lens,
            key_firsts,
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

/// The words of a field name, lower-cased, at separators and camelCase boundaries, into `buf`
/// (ASCII only, at most 128 bytes and 16 words; the rest is ignored). Returns the word ends.
fn words_into(name: &str, buf: &mut [u8; 128]) -> (usize, SmallVec<[(u8, u8); 16]>) {
    let mut ends: SmallVec<[(u8, u8); 16]> = SmallVec::new();
    let mut len = 0usize;
    let mut start = 0usize;
    let mut prev_lower = false;
    for c in name.bytes() {
        if len == buf.len() || ends.len() == 16 {
            break;
        }
        if matches!(c, b'_' | b'-' | b'.' | b' ' | b':' | b'/') {
            if len > start {
                ends.push((start as u8, len as u8));
            }
            start = len;
            prev_lower = false;
            continue;
        }
        if c.is_ascii_uppercase() && prev_lower && len > start {
            ends.push((start as u8, len as u8));
            start = len;
        }
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        buf[len] = c.to_ascii_lowercase();
        len += 1;
    }
    if len > start && ends.len() < 16 {
        ends.push((start as u8, len as u8));
    }
    (len, ends)
}

const CACHE_SLOTS: usize = 4096;

/// Decisions of [`Redactor::is_secret_key`] and [`Redactor::keeps`], shared by all threads: each
/// slot holds a 62-bit fingerprint of (name address, name length, redactor) and the decisions in
/// the two low bits. One
/// relaxed atomic load per field on a hit; a collision only costs a recomputation (which
/// allocates nothing).
static KEY_CACHE: [AtomicU64; CACHE_SLOTS] = [const { AtomicU64::new(0) }; CACHE_SLOTS];

#[inline]
fn fingerprint(ptr: usize, len: usize, redactor: u64) -> u64 {
    let mut h = (ptr as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    h ^= (len as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    h ^= redactor.wrapping_mul(0x1656_67B1_9E37_79F9);
    h ^= h >> 29;
    h.wrapping_mul(0xBF58_476D_1CE4_E5B9) | 4
}

/// The low bits of a [`KEY_CACHE`] entry: the field's name is secret, or kept (a correlation
/// key); the other bits are the fingerprint (never zero: bit 2 is always set).
const SECRET: u64 = 1;
const KEPT: u64 = 2;
const CLASS: u64 = SECRET | KEPT;

thread_local! {
    /// [`Redactor::secret_value_key`]'s decisions: the key's bytes (two words), its length
    /// (`(len << 1 | 1) << 1 | secret`) and the redactor.
    static KEY_MEMO: std::cell::RefCell<[(u64, u64, u64, u64); 256]> =
        const { std::cell::RefCell::new([(0, 0, 0, 0); 256]) };
}

/// One masked range and the rule that masked it.
type Hit = (usize, usize, &'static str);

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

    /// The same rules, also keeping the values of the configured context fields that are ids
    /// (`user_id`, `tenantId`: a name whose last word is `id`), which correlate lines like
    /// `request_id`. Other context fields are redacted as any field is.
    /// Whether `other` masks exactly what this one does (rules of your own are compared by
    /// identity: clones of one redactor).
    pub(crate) fn same_rules(&self, other: &Redactor) -> bool {
        (Arc::ptr_eq(&self.scan, &other.scan)
            || (self.scan.customs.is_empty() && other.scan.customs.is_empty()))
            && self.enabled == other.enabled
            && self.name_rules == other.name_rules
            && self.keys == other.keys
            && self.patterns == other.patterns
            && self.kept == other.kept
    }

    pub(crate) fn keeping(mut self, fields: &[String]) -> Redactor {
        // Other decisions than the redactor it came from: cached under an id of its own.
        self.id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        for f in fields {
            let mut b = [0u8; 128];
            let (_, words) = words_into(f, &mut b);
            let is_id = words
                .last()
                .is_some_and(|w| &b[w.0 as usize..w.1 as usize] == b"id");
            if is_id && !self.kept.contains(f) {
                self.kept.push(f.clone());
            }
        }
        self
    }

    /// Whether the values of the field `name` are never masked (a correlation key).
    #[inline]
    pub(crate) fn keeps(&self, name: &str) -> bool {
        self.kept.iter().any(|k| k == name)
    }

    /// Whether a field with this name is written as `[REDACTED]`.
    pub fn is_secret_key(&self, name: &str) -> bool {
        self.enabled && !self.keys.is_empty() && !self.keeps(name) && self.match_key(name)
    }

    /// [`is_secret_key`](Self::is_secret_key) for a callsite's field name, cached by address.
    #[inline]
    pub(crate) fn is_secret_field(&self, name: &'static str) -> bool {
        self.enabled && !self.keys.is_empty() && self.field_class(name) & SECRET != 0
    }

    /// [`keeps`](Self::keeps) for a callsite's field name, cached by address.
    #[inline]
    pub(crate) fn keeps_field(&self, name: &'static str) -> bool {
        self.field_class(name) & KEPT != 0
    }

    /// What the rules say of a callsite's field name ([`SECRET`], [`KEPT`]). Field names are
    /// `&'static str` from callsites: the same address every time, so a shared table keyed by
    /// address makes the check one load.
    #[inline]
    fn field_class(&self, name: &'static str) -> u64 {
        let fp = fingerprint(name.as_ptr() as usize, name.len(), self.id);
        let slot = &KEY_CACHE[(fp >> 40) as usize % CACHE_SLOTS];
        let entry = slot.load(Ordering::Relaxed);
        if entry & !CLASS == fp & !CLASS {
            return entry & CLASS;
        }
        let class = if self.keeps(name) {
            KEPT
        } else if !self.keys.is_empty() && self.match_key(name) {
            SECRET
        } else {
            0
        };
        slot.store((fp & !CLASS) | class, Ordering::Relaxed);
        class
    }

    fn match_key(&self, name: &str) -> bool {
        let mut buf = [0u8; 128];
        let (_, words) = words_into(name, &mut buf);
        for start in 0..words.len() {
            let from = words[start].0 as usize;
            for w in &words[start..] {
                let joined = &buf[from..w.1 as usize];
                if joined.len() > 32 {
                    break;
                }
                // Most runs differ from every key in length or first byte.
                if self.key_lens & (1u64 << joined.len().min(63)) == 0
                    || self.key_firsts & (1u32 << (joined[0] & 31)) == 0
                {
                    continue;
                }
                if self.keys.iter().any(|k| {
                    let k = k.as_bytes();
                    k.len() == joined.len() && k[0] == joined[0] && k == joined
                }) {
                    return true;
                }
            }
        }
        false
    }

    /// The mask written in place of a secret found by `rule`.
    fn mask(&self, rule: &str, out: &mut Vec<u8>) {
        if self.name_rules {
            out.extend_from_slice(b"[REDACTED:");
            out.extend_from_slice(rule.as_bytes());
            out.push(b']');
        } else {
            out.extend_from_slice(REDACTED.as_bytes());
        }
    }

    /// The mask of a value whose key is secret, as JSON (`"[REDACTED]"`).
    pub(crate) fn key_mask_json(&self) -> &'static str {
        if self.name_rules {
            "\"[REDACTED:key]\""
        } else {
            "\"[REDACTED]\""
        }
    }

    /// Whether any value rule is on.
    #[inline]
    pub fn has_value_patterns(&self) -> bool {
        self.enabled && self.scan.min_len != usize::MAX
    }

    /// Masks the secrets in a plain string (convenience for tests and exporters).
    pub fn redact_str(&self, s: &str) -> String {
        let mut out = s.as_bytes().to_vec();
        self.redact_raw(&mut out, 0);
        // Masks replace whole ASCII ranges found at character boundaries.
        String::from_utf8(out)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }

    /// Whether a value of `len` bytes could hold a secret (rules on and long enough).
    #[inline]
    pub(crate) fn may_match(&self, len: usize) -> bool {
        self.has_value_patterns() && len >= self.scan.min_len
    }

    /// Masks secrets in `buf[start..]`, which holds escaped JSON string content (or text).
    ///
    /// The rules only span bytes that JSON never escapes (letters, digits, `-._~+/=:@`, spaces),
    /// except private key blocks, whose escaped newlines are masked with the block, and quoted
    /// assignments, whose quotes appear escaped (`\"`).
    pub(crate) fn redact_raw(&self, buf: &mut Vec<u8>, start: usize) {
        if !self.may_match(buf.len().saturating_sub(start)) {
            return;
        }
        let hits = self.find(&buf[start..]);
        if hits.is_empty() {
            return;
        }
        let tail: Vec<u8> = buf[start..].to_vec();
        buf.truncate(start);
        let mut last = 0;
        for (a, b, rule) in hits {
            buf.extend_from_slice(&tail[last..a]);
            self.mask(rule, buf);
            last = b;
        }
        buf.extend_from_slice(&tail[last..]);
    }

    /// Byte ranges of the secrets in `s`, in order and not overlapping.
    ///
    /// The first pass ([`prefilter::blocks`]) finds the 32-byte blocks that hold a trigger byte,
    /// a start of a word that may begin a literal, or a group of digits; only there are the
    /// rules tried: at each trigger byte, the rules it starts; at each such start, the value
    /// rules whose literal prefix begins with its three bytes; at each group of digits, the card
    /// rule.
    fn find(&self, s: &[u8]) -> SmallVec<[Hit; 4]> {
        let mut out: SmallVec<[Hit; 4]> = SmallVec::new();
        let scan = &*self.scan;
        if s.len() < scan.min_len {
            return out;
        }
        let mut cards_done = 0usize;
        prefilter::blocks(s, &scan.filter, scan.vector, &mut |b| {
            if b.triggers != 0 {
                self.triggers_in(s, b, &mut out);
            }
            let mut starts = b.starts;
            while starts != 0 {
                let p = b.at + starts.trailing_zeros() as usize;
                starts &= starts - 1;
                self.token_at(s, p, &mut out);
            }
            if b.quads != 0 {
                Self::cards_in(s, b, &mut cards_done, &mut out);
            }
        });
        if !scan.customs.is_empty() {
            if let Ok(text) = std::str::from_utf8(s) {
                for (name, rule) in &scan.customs {
                    for r in rule(text) {
                        // Widened to whole characters, so that a line stays valid UTF-8.
                        let mut r = r;
                        while r.start > 0 && !text.is_char_boundary(r.start) {
                            r.start -= 1;
                        }
                        while r.end < text.len() && !text.is_char_boundary(r.end) {
                            r.end += 1;
                        }
                        if r.start < r.end && r.end <= s.len() {
                            insert(&mut out, (r.start, r.end, name));
                        }
                    }
                }
            }
        }
        out
    }

    /// The rules started by the trigger bytes of a block: `=` and `:` (an assignment to a secret
    /// key, a URL's credentials), `@` (an address).
    #[inline(never)]
    fn triggers_in(&self, s: &[u8], b: &prefilter::Block, out: &mut SmallVec<[Hit; 4]>) {
        let scan = &*self.scan;
        let mut t = b.triggers;
        while t != 0 {
            let q = b.at + t.trailing_zeros() as usize;
            t &= t - 1;
            let found = match s[q] {
                b':' if scan.url && s[q..].starts_with(b"://") => {
                    rules::match_url_password(s, q, q + 3).map(|(x, y)| (x, y, "url_password"))
                }
                b'=' | b':' if scan.assignment => {
                    self.assignment_at(s, q).map(|(x, y)| (x, y, "key"))
                }
                b'@' if scan.email => rules::match_email(s, q, 0).map(|(x, y)| (x, y, "email")),
                _ => None,
            };
            if let Some(h) = found.filter(|h| h.1 > h.0) {
                insert(out, h);
            }
        }
    }

    /// `Bearer ` or `Basic ` (in any case) or `-----BEGIN ` at the `B` or `b` at `q`.
    fn letter_b_at(&self, s: &[u8], q: usize) -> Option<Hit> {
        let scan = &*self.scan;
        if scan.credentials && (q == 0 || !s[q - 1].is_ascii_alphanumeric()) {
            let starts = |w: &[u8]| {
                s.get(q..q + w.len())
                    .is_some_and(|x| x.eq_ignore_ascii_case(w))
            };
            let scheme = if starts(b"bearer ") {
                scan.bearer.map(|r| (r, 7))
            } else if starts(b"basic ") {
                scan.basic.map(|r| (r, 6))
            } else {
                None
            };
            if let Some((r, n)) = scheme {
                let rule = &scan.rules[r];
                if let Some((x, y)) = (rule.check)(s, q, q + n) {
                    return Some((x, y, rule.name));
                }
            }
        }
        if scan.pem
            && s[q] == b'B'
            && q >= 5
            && &s[q - 5..q] == b"-----"
            && s[q..].starts_with(b"BEGIN ")
        {
            return rules::match_pem(s, q - 5, q + 6).map(|(x, y)| (x, y, "private_key"));
        }
        None
    }

    /// The value rules at the start of a word at `p`, when its first three bytes start a
    /// literal.
    #[inline(always)]
    fn token_at(&self, s: &[u8], p: usize, out: &mut SmallVec<[Hit; 4]>) {
        let scan = &*self.scan;
        if let (Some(&b1), Some(&b2)) = (s.get(p + 1), s.get(p + 2)) {
            let h = tri_hash(s[p], b1, b2);
            if scan.tri[h >> 6] >> (h & 63) & 1 != 0 {
                self.literal_at(s, p, out);
            }
        }
    }

    /// The value rules whose literal is at `p`; whether one matched.
    #[inline(never)]
    fn literal_at(&self, s: &[u8], p: usize, out: &mut SmallVec<[Hit; 4]>) -> bool {
        let scan = &*self.scan;
        if s[p] | 0x20 == b'b' {
            if let Some(h) = self.letter_b_at(s, p).filter(|h| h.1 > h.0) {
                insert(out, h);
                return true;
            }
        }
        let (a, e) = scan.by_first[usize::from(s[p])];
        for &(lit, r) in &scan.literals[usize::from(a)..usize::from(e)] {
            if s[p..].starts_with(lit) {
                let rule = &scan.rules[r];
                if let Some((x, y)) = (rule.check)(s, p, p + lit.len()) {
                    if y > x {
                        insert(out, (x, y, rule.name));
                        return true;
                    }
                }
            }
        }
        false
    }

    /// Card numbers holding the aligned groups of four digits of a block: from the run of
    /// digits holding each group, back over the groups before it (`4111 1111 …`), the first
    /// start that reads as a card.
    #[inline(never)]
    fn cards_in(s: &[u8], b: &prefilter::Block, done: &mut usize, out: &mut SmallVec<[Hit; 4]>) {
        let mut quads = u64::from(b.quads);
        while quads != 0 {
            let bit = quads.trailing_zeros() as usize;
            quads &= !((1u64 << ((bit / 4 + 1) * 4)) - 1);
            let g = b.at + bit;
            if g < *done {
                continue;
            }
            let mut end = g;
            while end < s.len() && s[end].is_ascii_digit() {
                end += 1;
            }
            // Not back into a number already taken (a card just before this one).
            let floor = *done;
            let mut r = g;
            while r > floor && s[r - 1].is_ascii_digit() {
                r -= 1;
            }
            let mut starts: SmallVec<[usize; 6]> = SmallVec::new();
            starts.push(r);
            while starts.len() < 5
                && r >= floor + 2
                && matches!(s[r - 1], b' ' | b'-')
                && s[r - 2].is_ascii_digit()
            {
                r -= 1;
                while r > floor && s[r - 1].is_ascii_digit() {
                    r -= 1;
                }
                starts.push(r);
            }
            for &st in starts.iter().rev() {
                // A card holding this group.
                if let Some((x, y)) = rules::match_card(s, st).filter(|&(_, y)| y > g) {
                    insert(out, (x, y, "card_number"));
                    end = end.max(y);
                    break;
                }
            }
            *done = end;
        }
    }

    /// The `=` or `:` at `q` ends an assignment to a secret key: the range of the value.
    fn assignment_at(&self, s: &[u8], q: usize) -> Option<(usize, usize)> {
        let ident = |b: u8| IDENT[usize::from(b)];
        let mut k = q;
        while k > 0 && s[k - 1] == b' ' {
            k -= 1;
        }
        // A closing quote, escaped or not.
        if k > 0 && (s[k - 1] == b'"' || s[k - 1] == b'\'') {
            k -= 1;
            while k > 0 && s[k - 1] == b'\\' {
                k -= 1;
            }
        }
        let ke = k;
        let mut ks = ke;
        while ks > 0 && ident(s[ks - 1]) {
            ks -= 1;
        }
        // Shorter than every secret word (`C:\\`, `n: 1`): no secret key.
        if ke - ks < self.key_lens.trailing_zeros() as usize {
            return None;
        }
        // A key never starts inside a word of another token (`\nCookie` is a key after `\n`).
        let from = if s[ks] == b'n' && ks >= 1 && s[ks - 1] == b'\\' && ke > ks + 1 {
            ks + 1
        } else {
            ks
        };
        if !self.secret_value_key(&s[from..ke]) {
            return None;
        }
        self.match_assignment(s, ks, ke)
    }

    /// Whether a key found in a value is secret and not kept, remembered per thread for the
    /// last keys seen (compared byte for byte: keys of at most 16 bytes).
    fn secret_value_key(&self, key: &[u8]) -> bool {
        let decide = || std::str::from_utf8(key).is_ok_and(|k| self.match_key(k) && !self.keeps(k));
        let n = key.len();
        if n > 16 {
            return decide();
        }
        let read = |b: &[u8]| {
            let mut w = 0u64;
            for (i, &x) in b.iter().enumerate() {
                w |= u64::from(x) << (8 * i);
            }
            w
        };
        let (w0, w1) = if n >= 8 {
            (read(&key[..8]), read(&key[n - 8..]))
        } else {
            (read(key), 0)
        };
        let tag = (n as u64) << 1 | 1;
        let mut h = (w0 ^ w1.rotate_left(29) ^ tag).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        h ^= h >> 31;
        // Two ways: the newest decision first, the one it displaced second.
        let slot = (h.wrapping_mul(0xBF58_476D_1CE4_E5B9) >> 56) as usize & !1;
        KEY_MEMO
            .try_with(|memo| {
                let mut memo = memo.borrow_mut();
                let hit = |e: &(u64, u64, u64, u64)| {
                    e.0 == w0 && e.1 == w1 && e.2 >> 1 == tag && e.3 == self.id
                };
                for e in &memo[slot..slot + 2] {
                    if hit(e) {
                        return e.2 & 1 == 1;
                    }
                }
                let secret = decide();
                memo[slot + 1] = memo[slot];
                memo[slot] = (w0, w1, tag << 1 | u64::from(secret), self.id);
                secret
            })
            .unwrap_or_else(|_| decide())
    }

    /// A secret key word at `s[a..e]` in an assignment (`key=value`, `key: value`, `"key": "value"`,
    /// with the quotes JSON-escaped or not): the range of the value. The caller has found the key
    /// secret.
    fn match_assignment(&self, s: &[u8], ks: usize, ke: usize) -> Option<(usize, usize)> {
        let key = std::str::from_utf8(&s[ks..ke]).ok()?;
        let key = key
            .strip_prefix('n')
            .filter(|_| ks >= 1 && s[ks - 1] == b'\\')
            .unwrap_or(key);
        // A quote as it appears here: `"`, or escaped once or more (`\\"` in a JSON string,
        // `\\\\\\"` for a Debug-printed string inside one). Returns its length.
        let quote_at = |k: usize| -> Option<usize> {
            let q = rules::run(s, k, |b| b == b'\\');
            (s.get(q) == Some(&b'"') || (q == k && s.get(q) == Some(&b'\''))).then_some(q + 1 - k)
        };
        // After the key: an optional closing quote, spaces, `=`, `:` or `=>`, spaces.
        let mut j = ke;
        if let Some(n) = quote_at(j) {
            j += n;
        }
        j = rules::run(s, j, |b| b == b' ');
        match s.get(j) {
            Some(b'=') => {
                j += 1;
                if s.get(j) == Some(&b'>') {
                    j += 1;
                }
            }
            Some(b':') => j += 1,
            _ => return None,
        }
        j = rules::run(s, j, |b| b == b' ');
        // The value: quoted (to the same quote closing it) or bare.
        if let Some(n) = quote_at(j) {
            let quote = &s[j..j + n];
            let v = j + n;
            let close = memchr::memmem::find(&s[v..], quote).map_or(s.len(), |p| p + v);
            return (close > v && &s[v..close] != REDACTED.as_bytes()).then_some((v, close));
        }
        // Bare: to a delimiter. An `Authorization` value is a scheme and a credential
        // (`Bearer abc`); a `Cookie` value goes on over `; name=value` pairs.
        let kind = {
            let mut b = [0u8; 128];
            let (n, _) = words_into(key, &mut b);
            match &b[..n] {
                b"authorization" | b"proxyauthorization" => 1,
                b"cookie" | b"setcookie" => 2,
                _ => 0,
            }
        };
        let bare = |k: usize| {
            let mut k = k;
            while k < s.len()
                && !matches!(
                    s[k],
                    b' ' | b',' | b';' | b'&' | b')' | b'}' | b']' | b'\\' | b'\n' | b'"' | b'\''
                )
            {
                k += 1;
            }
            k
        };
        let mut end = bare(j);
        if kind == 1 && s.get(end) == Some(&b' ') {
            let c = rules::run(s, end, |b| b == b' ');
            let next = bare(c);
            if next > c {
                // A scheme (a word of letters) and a credential: the scheme stays readable.
                if s[j..end].iter().all(u8::is_ascii_alphabetic) {
                    return (&s[c..next] != REDACTED.as_bytes()).then_some((c, next));
                }
                end = next;
            }
        }
        if kind == 2 {
            while s[end..].starts_with(b"; ") {
                let next = bare(end + 2);
                if next == end + 2 || !s[end + 2..next].contains(&b'=') {
                    break;
                }
                end = next;
            }
        }
        (end > j && &s[j..end] != REDACTED.as_bytes()).then_some((j, end))
    }
}

/// A rule name or literal built at run time, as a `&'static str` (kept for the life of the
/// process, once per distinct string: they are few and fixed).
fn intern(name: &str) -> &'static str {
    static NAMES: std::sync::Mutex<Vec<&'static str>> = std::sync::Mutex::new(Vec::new());
    let mut names = NAMES.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(n) = names.iter().find(|n| **n == name) {
        return n;
    }
    let leaked: &'static str = Box::leak(name.to_owned().into_boxed_str());
    names.push(leaked);
    leaked
}

/// The bytes of a key in an assignment: letters, digits, `_`, `-`, `.`.
static IDENT: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric() || c == b'_' || c == b'-' || c == b'.';
        b += 1;
    }
    t
};

/// Where the three bytes `a b c` fall in [`Scan::tri`].
#[inline(always)]
fn tri_hash(a: u8, b: u8, c: u8) -> usize {
    let w = u32::from(a) | u32::from(b) << 8 | u32::from(c) << 16;
    (w.wrapping_mul(0x9E37_79B1) >> 20) as usize
}

/// Adds a hit that overlaps none already found, keeping the list in order.
fn insert(out: &mut SmallVec<[Hit; 4]>, hit: Hit) {
    if out.iter().any(|h| hit.0 < h.1 && h.0 < hit.1) {
        return;
    }
    let at = out.iter().position(|h| h.0 > hit.0).unwrap_or(out.len());
    out.insert(at, hit);
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

    #[test]
    fn shapes_found_in_review() {
        let r = Redactor::default();
        let cases = [
            ("user=alice,pwd=hunter2 ok", "user=alice,pwd=[REDACTED] ok"),
            ("host=db1;port=5432;pwd=s3cr3t!", "host=db1;port=5432;pwd=[REDACTED]"),
            ("retrying login user=alice,token=abc123 failed", "retrying login user=alice,token=[REDACTED] failed"),
            ("x Bearer abcdefgh12345", "x Bearer [REDACTED]"),
            ("see Basic dXNlcjpwYXNz", "see Basic [REDACTED]"),
            ("4222222222222", "[REDACTED]"),
            ("30569309025904", "[REDACTED]"),
            (
                "-----BEGIN CERTIFICATE-----\\nMIIB\\n-----END CERTIFICATE-----\\n-----BEGIN PRIVATE KEY-----\\nMIIEv\\n-----END PRIVATE KEY-----",
                "-----BEGIN CERTIFICATE-----\\nMIIB\\n-----END CERTIFICATE-----\\n[REDACTED]",
            ),
            ("Open menu Basic Settings", "Open menu Basic Settings"),
            ("Bearer authentication failed", "Bearer authentication failed"),
        ];
        for (input, want) in cases {
            assert_eq!(r.redact_str(input), want, "input {input:?}");
        }
        // A custom rule's range is widened to whole characters.
        let c = Redactor::builder()
            .custom("x", |v: &str| {
                v.find("é").into_iter().map(|i| i + 1..i + 2).collect()
            })
            .build();
        assert_eq!(c.redact_str("aéb"), "a[REDACTED]b");
    }

    /// Every kind of mark the first pass looks for, at every offset and before every length of
    /// tail, so that each block boundary and the last partial block are crossed.
    #[test]
    fn secrets_are_found_at_every_offset() {
        let r = Redactor::default();
        let secrets = [
            "ghp_0123456789abcdefghijABCDEFGHIJ012345",
            "xoxb-1234567890-abcdefghij",
            "AKIAIOSFODNN7EXAMPLE",
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln",
            "4111 1111 1111 1111",
            "4111-1111-1111-1111",
            "4111111111111111",
            "378282246310005",
            "3782 822463 10005",
        ];
        for secret in secrets {
            for pad in 0..40 {
                for tail in [0, 1, 3, 5, 7, 33] {
                    let input = format!(
                        "{}{secret}{}",
                        "a ".repeat(pad / 2) + &"x".repeat(pad % 2) + " ",
                        " z".repeat(tail)
                    );
                    let out = r.redact_str(&input);
                    assert!(
                        !out.contains(secret),
                        "{secret:?} at {pad}, tail {tail}: {out:?}"
                    );
                    assert!(out.contains("[REDACTED]"), "{out:?}");
                }
            }
        }
        // Headers as written, and the other cases with longer credentials.
        let cases = [
            ("Bearer abcd1234", "Bearer [REDACTED]"),
            ("BEARER abcd1234", "BEARER [REDACTED]"),
            ("bearer abcdefgh12345678", "bearer [REDACTED]"),
            (
                "auth: bearer   abcdefgh12345678",
                "auth: bearer   [REDACTED]",
            ),
            ("BASIC dXNlcjpwYXNz", "BASIC [REDACTED]"),
            (
                "Authorization: bearer abcd1234",
                "Authorization: bearer [REDACTED]",
            ),
            (
                "Authorization: Digest abcd",
                "Authorization: Digest [REDACTED]",
            ),
            ("a=1&password=hunter2&b=2", "a=1&password=[REDACTED]&b=2"),
            (
                "postgres://app:s3cret@db:5432/orders",
                "postgres://app:[REDACTED]@db:5432/orders",
            ),
        ];
        for (input, want) in cases {
            for pad in 0..34 {
                let pre = " ".repeat(pad);
                assert_eq!(
                    r.redact_str(&format!("{pre}{input}")),
                    format!("{pre}{want}"),
                    "{input:?} at {pad}"
                );
            }
        }
    }
}
