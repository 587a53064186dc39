//! The value rules: each a name, the literal prefixes that start it (looked for at the starts of
//! words the first pass keeps), and an exact check run only where a prefix was found.
//!
//! The shapes follow the secret scanners' rule sets (gitleaks, detect-secrets): a fixed prefix,
//! then a body of a known alphabet and length, not inside a longer token.

use super::ValuePattern;

/// What a check is given: the value, where the prefix starts and ends.
pub(super) type Check = fn(s: &[u8], start: usize, end: usize) -> Option<(usize, usize)>;

/// A value rule.
#[derive(Clone, Copy)]
pub(super) struct Rule {
    /// Shown in `[REDACTED:<name>]` when rules are named.
    pub(super) name: &'static str,
    /// The switch that turns it on and off.
    pub(super) group: ValuePattern,
    /// Literal prefixes, as written (`bearer ` and `basic ` are looked for in any case).
    pub(super) prefixes: &'static [&'static str],
    pub(super) check: Check,
}

impl std::fmt::Debug for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

macro_rules! token_rule {
    ($name:literal, $group:ident, [$($p:literal),+], $alphabet:expr, $min:expr, $max:expr) => {
        Rule {
            name: $name,
            group: ValuePattern::$group,
            prefixes: &[$($p),+],
            check: |s, start, end| token(s, start, end, &[$($p),+], $alphabet, $min, $max),
        }
    };
}

fn alnum(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}
fn alnum_us(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}
fn alnum_us_dash(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}
fn alnum_dash(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-'
}
fn hex_lower(b: u8) -> bool {
    b.is_ascii_digit() || (b'a'..=b'f').contains(&b)
}
fn hex(b: u8) -> bool {
    b.is_ascii_hexdigit()
}
fn upper_digit(b: u8) -> bool {
    b.is_ascii_uppercase() || b.is_ascii_digit()
}
fn base64(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=')
}
fn base64_any(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'-' | b'_')
}

/// Whether `b` continues a token (so a match must not end or start next to it).
fn word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// The prefix must appear as written (case-sensitive), not glued to a word before it.
fn exact_prefix(s: &[u8], start: usize, end: usize, prefixes: &[&str]) -> bool {
    (start == 0 || !word(s[start - 1])) && prefixes.iter().any(|p| &s[start..end] == p.as_bytes())
}

/// A prefix (exact case, not glued to a word before it), then `min..=max` bytes of `alphabet`,
/// not followed by another byte of it.
fn token(
    s: &[u8],
    start: usize,
    end: usize,
    prefixes: &[&str],
    alphabet: fn(u8) -> bool,
    min: usize,
    max: usize,
) -> Option<(usize, usize)> {
    if !exact_prefix(s, start, end, prefixes) {
        return None;
    }
    let mut j = end;
    while j < s.len() && alphabet(s[j]) && j - end <= max {
        j += 1;
    }
    let n = j - end;
    (n >= min && n <= max && s.get(j).is_none_or(|&b| !alphabet(b))).then_some((start, j))
}

/// Every value rule found by a literal prefix, in the order they are tried at one position. PEM
/// blocks ([`match_pem`]) and URL passwords ([`match_url_password`]) are found by their own
/// search.
pub(super) static RULES: &[Rule] = &[
    // Source hosts.
    token_rule!(
        "github_token",
        SourceHost,
        ["ghp_", "gho_", "ghu_", "ghs_", "ghr_"],
        alnum,
        36,
        251
    ),
    token_rule!(
        "github_token",
        SourceHost,
        ["github_pat_"],
        alnum_us,
        60,
        251
    ),
    token_rule!(
        "gitlab_token",
        SourceHost,
        [
            "glpat-", "gldt-", "glrt-", "glptt-", "glcbt-", "glsoat-", "gloas-", "glimt-",
            "glagent-"
        ],
        alnum_us_dash,
        20,
        255
    ),
    // Chat and SaaS.
    token_rule!(
        "slack_token",
        Saas,
        ["xoxb-", "xoxp-", "xoxa-", "xoxr-", "xoxs-", "xoxe-", "xapp-"],
        alnum_dash,
        10,
        255
    ),
    Rule {
        name: "slack_webhook",
        group: ValuePattern::Saas,
        prefixes: &["hooks.slack.com/services/"],
        check: |s, _start, end| {
            let mut j = end;
            while j < s.len() && (alnum(s[j]) || s[j] == b'/') {
                j += 1;
            }
            (j - end >= 20).then_some((end, j))
        },
    },
    token_rule!(
        "stripe_key",
        Saas,
        ["sk_live_", "sk_test_", "rk_live_", "rk_test_"],
        alnum,
        16,
        247
    ),
    token_rule!("stripe_webhook_secret", Saas, ["whsec_"], alnum, 24, 250),
    token_rule!("openai_key", Saas, ["sk-"], alnum_us_dash, 20, 250),
    Rule {
        name: "twilio_api_key",
        group: ValuePattern::Saas,
        prefixes: &["SK"],
        check: |s, start, end| {
            if !exact_prefix(s, start, end, &["SK"]) {
                return None;
            }
            let j = end + 32;
            (j <= s.len()
                && s[end..j].iter().all(|&b| hex_lower(b))
                && s.get(j).is_none_or(|&b| !word(b)))
            .then_some((start, j))
        },
    },
    Rule {
        name: "sendgrid_key",
        group: ValuePattern::Saas,
        prefixes: &["SG."],
        check: |s, start, end| {
            if !exact_prefix(s, start, end, &["SG."]) {
                return None;
            }
            let a = run(s, end, alnum_us_dash);
            if a - end != 22 || s.get(a) != Some(&b'.') {
                return None;
            }
            let b = run(s, a + 1, alnum_us_dash);
            (b - (a + 1) == 43).then_some((start, b))
        },
    },
    token_rule!("linear_key", Saas, ["lin_api_"], alnum, 40, 40),
    token_rule!("new_relic_key", Saas, ["NRAK-"], upper_digit, 27, 27),
    token_rule!("postman_key", Saas, ["PMAK-"], base64_any, 59, 59),
    token_rule!(
        "sentry_token",
        Saas,
        ["sntrys_", "sntryu_"],
        base64_any,
        40,
        255
    ),
    token_rule!(
        "shopify_token",
        Saas,
        ["shpat_", "shpss_", "shpca_", "shppa_"],
        hex,
        32,
        32
    ),
    token_rule!("atlassian_token", Saas, ["ATATT3"], base64_any, 50, 255),
    token_rule!("huggingface_token", Saas, ["hf_"], alnum, 30, 40),
    token_rule!(
        "grafana_token",
        Saas,
        ["glsa_", "glc_"],
        base64_any,
        32,
        255
    ),
    // Cloud.
    token_rule!("google_api_key", Cloud, ["AIza"], alnum_us_dash, 35, 35),
    Rule {
        name: "aws_access_key_id",
        group: ValuePattern::AwsAccessKey,
        prefixes: &[
            "AKIA", "ASIA", "AGPA", "AIDA", "AROA", "ANPA", "ANVA", "AIPA", "A3T",
        ],
        check: |s, start, end| {
            if !exact_prefix(
                s,
                start,
                end,
                &[
                    "AKIA", "ASIA", "AGPA", "AIDA", "AROA", "ANPA", "ANVA", "AIPA", "A3T",
                ],
            ) {
                return None;
            }
            let j = start + 20;
            (j <= s.len()
                && s[end..j].iter().all(|&b| upper_digit(b))
                && s.get(j).is_none_or(|&b| !b.is_ascii_alphanumeric()))
            .then_some((start, j))
        },
    },
    token_rule!(
        "digitalocean_token",
        Cloud,
        ["dop_v1_", "doo_v1_", "dor_v1_"],
        hex_lower,
        64,
        64
    ),
    token_rule!("databricks_token", Cloud, ["dapi"], hex_lower, 32, 34),
    token_rule!(
        "vault_token",
        Cloud,
        ["hvs.", "hvb."],
        alnum_us_dash,
        24,
        255
    ),
    token_rule!(
        "age_secret_key",
        Cloud,
        ["AGE-SECRET-KEY-1"],
        upper_digit,
        58,
        58
    ),
    // Package registries.
    token_rule!("npm_token", Registry, ["npm_"], alnum, 36, 36),
    token_rule!(
        "pypi_token",
        Registry,
        ["pypi-AgEIcHlwaS5vcmc"],
        alnum_us_dash,
        50,
        255
    ),
    token_rule!(
        "docker_token",
        Registry,
        ["dckr_pat_", "dckr_oat_"],
        alnum_us_dash,
        27,
        64
    ),
    token_rule!("rubygems_token", Registry, ["rubygems_"], hex_lower, 48, 48),
    token_rule!("crates_io_token", Registry, ["cio"], alnum, 32, 32),
    token_rule!("nuget_key", Registry, ["oy2"], alnum, 43, 43),
    // Credentials by shape.
    Rule {
        name: "jwt",
        group: ValuePattern::Jwt,
        prefixes: &["eyJ"],
        check: match_jwt,
    },
    Rule {
        name: "bearer",
        group: ValuePattern::Bearer,
        prefixes: &["bearer "],
        check: |s, start, end| {
            let (tok, j) = credential(s, start, end, is_token_char)?;
            let t = &s[tok..j];
            // A credential, not a word: `Bearer authentication failed` is prose.
            let not_a_word = t.iter().any(|b| !b.is_ascii_alphabetic())
                || (t.iter().any(u8::is_ascii_uppercase) && t.iter().any(u8::is_ascii_lowercase));
            (t.len() >= 8 && not_a_word).then_some((tok, j))
        },
    },
    Rule {
        name: "basic_auth",
        group: ValuePattern::Bearer,
        prefixes: &["basic "],
        check: |s, start, end| {
            let (tok, j) = credential(s, start, end, base64)?;
            let t = &s[tok..j];
            // Base64 of `user:password`: a multiple of four that decodes to text with a colon
            // (`Basic Settings` is a word).
            (t.len() >= 8 && t.len() % 4 == 0 && decodes_to_credentials(t)).then_some((tok, j))
        },
    },
];

/// The credential after an authorization scheme (`Bearer `, `Basic ` at `s[start..end]`, not
/// glued to a word before it): the run of `alphabet` after the spaces.
fn credential(
    s: &[u8],
    start: usize,
    end: usize,
    alphabet: fn(u8) -> bool,
) -> Option<(usize, usize)> {
    if start > 0 && s[start - 1].is_ascii_alphanumeric() {
        return None;
    }
    let tok = run(s, end, |b| b == b' ');
    Some((tok, run(s, tok, alphabet)))
}

/// Whether standard base64 `t` decodes to `user:password` (a colon among printable bytes).
fn decodes_to_credentials(t: &[u8]) -> bool {
    let val = |b: u8| match b {
        b'A'..=b'Z' => Some(b - b'A'),
        b'a'..=b'z' => Some(b - b'a' + 26),
        b'0'..=b'9' => Some(b - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let mut colon = false;
    for quad in t.chunks(4) {
        let mut n = 0u32;
        let mut bytes = 3;
        for (k, &b) in quad.iter().enumerate() {
            let v = if b == b'=' {
                bytes = bytes.min(k.saturating_sub(1));
                0
            } else {
                match val(b) {
                    Some(v) => u32::from(v),
                    None => return false,
                }
            };
            n = n << 6 | v;
        }
        for k in 0..bytes {
            let c = (n >> (16 - 8 * k)) as u8;
            if c == b':' {
                colon = true;
            } else if !(0x20..0x7f).contains(&c) {
                return false;
            }
        }
    }
    colon
}

/// The end of the run of `alphabet` bytes from `j`.
pub(super) fn run(s: &[u8], mut j: usize, alphabet: impl Fn(u8) -> bool) -> usize {
    while j < s.len() && alphabet(s[j]) {
        j += 1;
    }
    j
}

pub(super) fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/' | b'=')
}

fn b64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

fn match_jwt(s: &[u8], start: usize, _end: usize) -> Option<(usize, usize)> {
    if &s[start..start + 3] != b"eyJ" || (start > 0 && s[start - 1].is_ascii_alphanumeric()) {
        return None;
    }
    let h = run(s, start, b64url);
    if h - start < 10 || s.get(h) != Some(&b'.') {
        return None;
    }
    let p = run(s, h + 1, b64url);
    if p - (h + 1) < 4 || s.get(p) != Some(&b'.') {
        return None;
    }
    Some((start, run(s, p + 1, b64url)))
}

pub(super) fn match_pem(s: &[u8], start: usize, end: usize) -> Option<(usize, usize)> {
    if &s[start..end] != b"-----BEGIN " {
        return None;
    }
    let head_end = memchr::memmem::find(&s[end..], b"-----")? + end;
    let head = &s[start..head_end];
    if !(head.ends_with(b"PRIVATE KEY") || head.ends_with(b"PRIVATE KEY BLOCK")) {
        return None;
    }
    match memchr::memmem::find(&s[head_end..], b"-----END ") {
        Some(e) => {
            let e = head_end + e + 9;
            let close = memchr::memmem::find(&s[e..], b"-----").map_or(s.len(), |p| e + p + 5);
            Some((start, close))
        }
        // A block cut short (a truncated key) is masked to the end of the value.
        None => Some((start, s.len())),
    }
}

/// `scheme://user:password@host`: the password is masked, the rest stays readable.
pub(super) fn match_url_password(s: &[u8], start: usize, end: usize) -> Option<(usize, usize)> {
    // A scheme before `://`.
    let mut a = start;
    while a > 0 && (s[a - 1].is_ascii_alphanumeric() || matches!(s[a - 1], b'+' | b'.' | b'-')) {
        a -= 1;
    }
    if a == start || !s[a].is_ascii_alphabetic() {
        return None;
    }
    // The authority: up to the first `/`, `?`, `#`, space, quote or escape.
    let stop = |b: u8| {
        matches!(
            b,
            b'/' | b'?' | b'#' | b' ' | b'"' | b'\'' | b'\\' | b'<' | b'>'
        )
    };
    let mut j = end;
    while j < s.len() && !stop(s[j]) {
        j += 1;
    }
    let authority = &s[end..j];
    let at = authority.iter().rposition(|&b| b == b'@')?;
    let userinfo = &authority[..at];
    let colon = userinfo.iter().position(|&b| b == b':')?;
    let (p, q) = (end + colon + 1, end + at);
    (q > p).then_some((p, q))
}

/// A card number: 13 to 19 digits, without separators or grouped as cards are printed (4-4-4-4,
/// 4-4-4-4-3, 4-6-5, 4-6-4) with one kind of separator, whose issuer prefix and length are those
/// of a card brand, and that pass the Luhn check. Digits inside a longer token are not one.
pub(super) fn match_card(s: &[u8], i: usize) -> Option<(usize, usize)> {
    if i > 0 && (s[i - 1].is_ascii_alphanumeric() || s[i - 1] == b'-' || s[i - 1] == b'_') {
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
                return None;
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
    if end < s.len() && (s[end].is_ascii_alphanumeric() || s[end] == b'-' || s[end] == b'_') {
        return None;
    }
    let grouping = &groups[..=g];
    let grouped_like_a_card = g == 0
        || matches!(
            grouping,
            [4, 4, 4, 4] | [4, 4, 4, 4, 3] | [4, 6, 5] | [4, 6, 4]
        );
    (grouped_like_a_card && issuer_length(&digits[..n]) && luhn(&digits[..n])).then_some((i, end))
}

/// Whether the digits start with a card brand's issuer prefix and have that brand's length.
fn issuer_length(d: &[u8]) -> bool {
    let n = d.len();
    let p = |k: usize| d[..k].iter().fold(0u32, |v, &x| v * 10 + u32::from(x));
    match d[0] {
        // Visa: 4, 13/16/19 digits.
        4 => matches!(n, 13 | 16 | 19),
        // Mastercard 51–55 and 2221–2720; 16 digits.
        5 => (51..=55).contains(&p(2)) && n == 16,
        2 => (2221..=2720).contains(&p(4)) && n == 16,
        // Amex 34, 37 (15); Diners 36, 300–305 (14); JCB 3528–3589 (16–19).
        3 => {
            (matches!(p(2), 34 | 37) && n == 15)
                || ((p(2) == 36 || (300..=305).contains(&p(3))) && n == 14)
                || ((3528..=3589).contains(&p(4)) && (16..=19).contains(&n))
        }
        // Discover 6011, 644–649, 65; UnionPay 62 (16–19).
        6 => {
            ((p(4) == 6011 || (644..=649).contains(&p(3)) || p(2) == 65) && (16..=19).contains(&n))
                || (p(2) == 62 && (16..=19).contains(&n))
        }
        _ => false,
    }
}

pub(super) fn luhn(d: &[u8]) -> bool {
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

pub(super) fn match_email(s: &[u8], at: usize, floor: usize) -> Option<(usize, usize)> {
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
