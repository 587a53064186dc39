//! The query: filters, their parser, and the two ways of deciding a line.
//!
//! Every filter can always be decided on the parsed line (`serde_json::Value`); that is the
//! definition of what matches. Parsing every line is slow, though, so a [`Plan`] also carries
//! *needles* — byte strings that every matching line must contain in its raw bytes — and *fast
//! checks* that decide a line from its raw bytes when it is laid out the way tracelight writes it.
//! Both may only ever widen the set of candidates: a needle is built only from characters that no
//! JSON writer escapes, and a fast check answers [`Decision::Unknown`] whenever it is not sure,
//! in which case the line is parsed and the parse decides.

use std::fmt;

use memchr::memmem;
use regex::Regex;
use serde_json::Value;

use tracelight_schema::key;

use crate::engine::time;

/// A log level, ordered from the most verbose to the most severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// `TRACE`
    Trace,
    /// `DEBUG`
    Debug,
    /// `INFO`
    Info,
    /// `WARN`
    Warn,
    /// `ERROR`
    Error,
}

/// The levels `--level` accepts, for error messages.
pub(crate) const ACCEPTED_LEVELS: &str =
    "trace, debug, info, warn (or warning), error (or err, fatal, critical, crit)";

impl Level {
    /// Reads a level as written in a log line or on the command line (case-insensitive; also
    /// `warning`, `err`, `fatal`, `critical`).
    pub fn parse(s: &str) -> Option<Level> {
        let l = s.trim();
        let eq = |w: &str| l.eq_ignore_ascii_case(w);
        if eq("error") || eq("err") || eq("fatal") || eq("critical") || eq("crit") {
            Some(Level::Error)
        } else if eq("warn") || eq("warning") {
            Some(Level::Warn)
        } else if eq("info") {
            Some(Level::Info)
        } else if eq("debug") {
            Some(Level::Debug)
        } else if eq("trace") {
            Some(Level::Trace)
        } else {
            None
        }
    }

    /// The upper-case name tracelight writes.
    pub fn as_str(self) -> &'static str {
        use tracelight_schema::level;
        match self {
            Level::Trace => level::TRACE,
            Level::Debug => level::DEBUG,
            Level::Info => level::INFO,
            Level::Warn => level::WARN,
            Level::Error => level::ERROR,
        }
    }

    /// The level of a line as written at tracelight's fixed position: the bytes right after
    /// `"level":"`, which must be followed by the closing quote.
    #[inline(always)]
    fn from_raw(b: &[u8]) -> Option<Level> {
        // Literal prefixes of known length, compared inline (this runs for every line of a
        // `--level` query).
        let lvl = match b.first()? {
            b'I' if b.starts_with(b"INFO\"") => Level::Info,
            b'E' if b.starts_with(b"ERROR\"") => Level::Error,
            b'W' if b.starts_with(b"WARN\"") => Level::Warn,
            b'D' if b.starts_with(b"DEBUG\"") => Level::Debug,
            b'T' if b.starts_with(b"TRACE\"") => Level::Trace,
            _ => return None,
        };
        debug_assert!(b.starts_with(lvl.as_str().as_bytes()));
        Some(lvl)
    }
}

/// A query that cannot be run, with the place of the mistake.
#[derive(Debug, Clone)]
pub struct QueryError {
    /// Which option the mistake is in, e.g. `--where`.
    pub(crate) option: String,
    /// What is wrong.
    pub(crate) message: String,
    /// The text the user gave.
    pub(crate) input: String,
    /// Byte range in `input` to underline, if any.
    pub(crate) span: Option<(usize, usize)>,
    /// What would have been accepted.
    pub(crate) hint: Option<String>,
}

impl QueryError {
    fn new(option: &str, message: String, input: &str) -> Self {
        QueryError {
            option: option.to_owned(),
            message,
            input: input.to_owned(),
            span: None,
            hint: None,
        }
    }
    fn at(mut self, start: usize, len: usize) -> Self {
        self.span = Some((start, len.max(1)));
        self
    }
    fn hint(mut self, hint: &str) -> Self {
        self.hint = Some(hint.to_owned());
        self
    }
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid {}: {}", self.option, self.message)?;
        if let Some((start, len)) = self.span {
            let pad = self.input[..start.min(self.input.len())].chars().count();
            let width = self
                .input
                .get(start..start + len)
                .map_or(1, |s| s.chars().count().max(1));
            write!(
                f,
                "\n  {}\n  {}{}",
                self.input,
                " ".repeat(pad),
                "^".repeat(width)
            )?;
        }
        if let Some(h) = &self.hint {
            write!(f, "\n  {h}")?;
        }
        Ok(())
    }
}

impl std::error::Error for QueryError {}

/// A comparison operator of a `--where` expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    /// `=` (also `==`)
    Eq,
    /// `!=`
    Ne,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `~` (also `=~`): regular expression match
    Regex,
    /// `exists`
    Exists,
}

const OPERATORS_HINT: &str =
    "expected `field OP value` with OP one of =, !=, >, >=, <, <=, ~ (regex), or `field exists`";

/// One `--where` condition (also used for `--request-id` and `--service`).
#[derive(Debug, Clone)]
pub struct WhereExpr {
    /// The field split at dots.
    pub(crate) path: Vec<String>,
    /// The operator.
    pub(crate) op: Op,
    /// The value as text (quotes removed).
    pub(crate) text: String,
    /// The value as a number, when it was written unquoted and is one.
    pub(crate) num: Option<f64>,
    /// The value as an integer, when it was written unquoted and is one.
    pub(crate) int: Option<i64>,
    regex: Option<Regex>,
}

fn is_op_char(c: char) -> bool {
    matches!(c, '=' | '!' | '<' | '>' | '~')
}

impl WhereExpr {
    /// Parses `field op value` or `field exists`.
    pub fn parse(expr: &str) -> Result<WhereExpr, QueryError> {
        let opt = "--where expression";
        let start = expr.len() - expr.trim_start().len();
        let rest = &expr[start..];
        let field_len = rest
            .find(|c: char| c.is_whitespace() || is_op_char(c))
            .unwrap_or(rest.len());
        if field_len == 0 {
            return Err(QueryError::new(opt, "expected a field name".into(), expr)
                .at(start, 1)
                .hint(OPERATORS_HINT));
        }
        let field = &rest[..field_len];
        if field.split('.').any(str::is_empty) {
            return Err(QueryError::new(
                opt,
                format!("`{field}` is not a field name (empty part between dots)"),
                expr,
            )
            .at(start, field_len));
        }
        let mut pos = start + field_len;
        let after = &expr[pos..];
        pos += after.len() - after.trim_start().len();
        let after = &expr[pos..];
        if after.is_empty() {
            return Err(QueryError::new(
                opt,
                format!("expected an operator after `{field}`"),
                expr,
            )
            .at(pos, 1)
            .hint(OPERATORS_HINT));
        }
        let op_len = after.find(|c: char| !is_op_char(c)).unwrap_or(after.len());
        let (op, value_pos) = if op_len == 0 {
            let word_len = after.find(char::is_whitespace).unwrap_or(after.len());
            let word = &after[..word_len];
            if word == "exists" && after[word_len..].trim().is_empty() {
                (Op::Exists, expr.len())
            } else {
                return Err(QueryError::new(
                    opt,
                    format!("expected an operator, found `{word}`"),
                    expr,
                )
                .at(pos, word_len)
                .hint(OPERATORS_HINT));
            }
        } else {
            let op_text = &after[..op_len];
            let op = match op_text {
                "=" | "==" => Op::Eq,
                "!=" => Op::Ne,
                ">" => Op::Gt,
                ">=" => Op::Ge,
                "<" => Op::Lt,
                "<=" => Op::Le,
                "~" | "=~" => Op::Regex,
                _ => {
                    return Err(
                        QueryError::new(opt, format!("unknown operator `{op_text}`"), expr)
                            .at(pos, op_len)
                            .hint(OPERATORS_HINT),
                    )
                }
            };
            (op, pos + op_len)
        };
        let raw_value = expr.get(value_pos..).unwrap_or("");
        let trimmed = raw_value.trim();
        let vstart = value_pos + (raw_value.len() - raw_value.trim_start().len());
        if op != Op::Exists && trimmed.is_empty() {
            return Err(
                QueryError::new(opt, "missing value after the operator".into(), expr)
                    .at(expr.len(), 1)
                    .hint(OPERATORS_HINT),
            );
        }
        let (text, quoted) = unquote(trimmed);
        let (num, int) = if quoted {
            (None, None)
        } else {
            (
                text.parse::<f64>().ok().filter(|n| n.is_finite()),
                text.parse::<i64>().ok(),
            )
        };
        let regex = if op == Op::Regex {
            match Regex::new(&text) {
                Ok(r) => Some(r),
                Err(e) => {
                    let msg = e.to_string();
                    let last = msg
                        .lines()
                        .last()
                        .unwrap_or("bad regular expression")
                        .trim();
                    return Err(QueryError::new(
                        opt,
                        format!("bad regular expression: {last}"),
                        expr,
                    )
                    .at(vstart, trimmed.len()));
                }
            }
        } else {
            None
        };
        Ok(WhereExpr {
            path: field.split('.').map(str::to_owned).collect(),
            op,
            text,
            num,
            int,
            regex,
        })
    }

    /// `field = "value"`, comparing as a string (used by `--request-id` and `--service`).
    pub fn string_eq(field: &str, value: &str) -> WhereExpr {
        WhereExpr {
            path: vec![field.to_owned()],
            op: Op::Eq,
            text: value.to_owned(),
            num: None,
            int: None,
            regex: None,
        }
    }

    /// Does the field's value (`None` when the line has no such field) satisfy the condition?
    pub(crate) fn matches_value(&self, v: Option<&Value>) -> bool {
        match self.op {
            Op::Exists => v.is_some(),
            Op::Ne => !v.is_some_and(|v| self.equals(v)),
            Op::Eq => v.is_some_and(|v| self.equals(v)),
            Op::Regex => match (v, &self.regex) {
                (Some(Value::String(s)), Some(r)) => r.is_match(s),
                (Some(v @ (Value::Number(_) | Value::Bool(_))), Some(r)) => {
                    r.is_match(&v.to_string())
                }
                _ => false,
            },
            Op::Gt | Op::Ge | Op::Lt | Op::Le => {
                let Some(ord) = v.and_then(|v| self.compare(v)) else {
                    return false;
                };
                match self.op {
                    Op::Gt => ord.is_gt(),
                    Op::Ge => ord.is_ge(),
                    Op::Lt => ord.is_lt(),
                    _ => ord.is_le(),
                }
            }
        }
    }

    fn equals(&self, v: &Value) -> bool {
        match v {
            Value::String(s) => *s == self.text,
            Value::Number(n) => {
                if let (Some(a), Some(b)) = (n.as_i64(), self.int) {
                    a == b
                } else if let (Some(a), Some(b)) = (n.as_f64(), self.num) {
                    a == b
                } else {
                    n.to_string() == self.text
                }
            }
            Value::Bool(b) => self.text == if *b { "true" } else { "false" },
            Value::Null => self.text == "null",
            _ => false,
        }
    }

    fn compare(&self, v: &Value) -> Option<std::cmp::Ordering> {
        match v {
            Value::Number(n) => {
                if let (Some(a), Some(b)) = (n.as_i64(), self.int) {
                    Some(a.cmp(&b))
                } else {
                    n.as_f64()?.partial_cmp(&self.num?)
                }
            }
            Value::String(s) => match (self.num, s.parse::<f64>()) {
                (Some(b), Ok(a)) => a.partial_cmp(&b),
                _ => Some(s.as_str().cmp(self.text.as_str())),
            },
            _ => None,
        }
    }

    /// Needles every matching line contains (raw bytes), for the prefilter.
    fn needles(&self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        if self.op == Op::Ne {
            return out;
        }
        // A key tracelight writes itself has another name, and its value another form, in a
        // schema preset (`log.level`: `error`): no needle then, only the parsed line decides.
        if self
            .path
            .first()
            .is_some_and(|k| tracelight_schema::is_reserved(k))
        {
            return out;
        }
        if let [only] = self.path.as_slice() {
            if all_safe(only) {
                out.push(format!("\"{only}\"").into_bytes());
            }
        } else if let (Some(first), Some(last)) = (self.path.first(), self.path.last()) {
            if all_safe(first) && all_safe(last) {
                out.push(format!("\"{first}").into_bytes());
                out.push(format!("{last}\"").into_bytes());
            }
        }
        // A quoted number (`x = "500.0"`) also equals a number written another way (`5e2`), whose
        // raw bytes need not hold the text: no value needle then.
        if self.op == Op::Eq && self.num.is_none() && self.text.trim().parse::<f64>().is_err() {
            let run = longest_safe_run(&self.text);
            if run.len() >= 3 {
                out.push(run.as_bytes().to_vec());
            }
        }
        out
    }
}

fn unquote(s: &str) -> (String, bool) {
    let b = s.as_bytes();
    if b.len() >= 2 && (b[0] == b'"' || b[0] == b'\'') && b[b.len() - 1] == b[0] {
        (s[1..s.len() - 1].to_owned(), true)
    } else {
        (s.to_owned(), false)
    }
}

/// Characters that every JSON writer in use writes as themselves inside a string (no escape).
///
/// Quotes, backslashes and control characters must be escaped; `/` may be; `<`, `>`, `&`, `'`
/// and `` ` `` are escaped by HTML-safe writers; anything outside ASCII may be written as
/// `\uXXXX`. Only the rest can be searched for as raw bytes.
#[inline]
pub(crate) fn is_safe_char(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            ' ' | '-'
                | '_'
                | '.'
                | ':'
                | '@'
                | '+'
                | ','
                | ';'
                | '='
                | '#'
                | '$'
                | '%'
                | '!'
                | '*'
                | '('
                | ')'
                | '?'
                | '['
                | ']'
                | '^'
                | '{'
                | '}'
                | '|'
                | '~'
        )
}

fn all_safe(s: &str) -> bool {
    !s.is_empty() && s.chars().all(is_safe_char)
}

/// The longest run of [`is_safe_char`] characters in `s`: a substring of the raw bytes of any
/// JSON string whose value is `s`, however it was escaped.
pub(crate) fn longest_safe_run(s: &str) -> &str {
    let mut best = "";
    for part in s.split(|c: char| !is_safe_char(c)) {
        if part.len() > best.len() {
            best = part;
        }
    }
    best
}

/// Looks a dotted path up in a line: `a.b.c` is the key `a.b.c` at the root if there is one,
/// else `a` then `b.c` inside it, and so on (so `fields.name` finds both a root key
/// `"fields.name"` and a nested `"fields":{"name":…}`).
pub(crate) fn lookup<'a>(v: &'a Value, path: &[String]) -> Option<&'a Value> {
    let obj = v.as_object()?;
    if let [only] = path {
        return obj.get(only.as_str());
    }
    for split in (1..=path.len()).rev() {
        let key = path[..split].join(".");
        if let Some(inner) = obj.get(&key) {
            if split == path.len() {
                return Some(inner);
            }
            if let Some(found) = lookup(inner, &path[split..]) {
                return Some(found);
            }
        }
    }
    None
}

/// What a fast check concluded from the raw bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// The line matches this filter.
    Accept,
    /// The line cannot match.
    Reject,
    /// Only a parse can tell.
    Unknown,
}

/// One filter of a query.
#[derive(Debug, Clone)]
pub enum Filter {
    /// `level >= min`.
    MinLevel(Level),
    /// `since <= timestamp < until` (either bound optional).
    Time {
        /// Inclusive lower bound.
        since: Option<i64>,
        /// Exclusive upper bound.
        until: Option<i64>,
    },
    /// A field condition.
    Where(WhereExpr),
}

/// Length of `{"timestamp":"`.
const TS_START: usize = tracelight_schema::layout::TIMESTAMP_START;
/// Offset just past the timestamp value.
const TS_END: usize = tracelight_schema::layout::TIMESTAMP_END;
/// Offset of the level value in a line laid out the way tracelight writes it.
const LEVEL_START: usize = tracelight_schema::layout::LEVEL_START;

/// Is the line laid out the way tracelight writes it (`{"timestamp":"<27 chars>","level":"`)?
///
/// Such a line comes from tracelight's compact writer, which puts no whitespace between tokens and
/// never repeats a key; the fast checks rely on that and answer `Unknown` for any other line.
#[inline]
pub(crate) fn is_canonical(line: &[u8]) -> bool {
    // Compared as fixed-size arrays, which compile to a few word compares (no `memcmp` call):
    // this runs for every line of a query without a needle.
    const START: &[u8; TS_START] = as_array(tracelight_schema::layout::LINE_START.as_bytes());
    const PREFIX: &[u8; LEVEL_START - TS_END] =
        as_array(tracelight_schema::layout::LEVEL_PREFIX.as_bytes());
    line.len() > LEVEL_START
        && line.first_chunk::<TS_START>() == Some(START)
        && line[TS_END..].first_chunk::<{ LEVEL_START - TS_END }>() == Some(PREFIX)
}

/// The level of a canonical line, read at its fixed place; `None` when the line is not
/// canonical or the level there is not one of the five names tracelight writes.
#[inline]
pub(crate) fn canonical_level(line: &[u8]) -> Option<Level> {
    if is_canonical(line) {
        Level::from_raw(&line[LEVEL_START..])
    } else {
        None
    }
}

/// A byte string of a known length as an array, at compile time.
const fn as_array<const N: usize>(b: &[u8]) -> &[u8; N] {
    match b.first_chunk::<N>() {
        Some(a) if b.len() == N => a,
        _ => panic!("length of a layout constant"),
    }
}

/// The timestamp of a canonical line, without parsing the JSON.
#[inline]
pub(crate) fn fast_timestamp(line: &[u8]) -> Option<i64> {
    if line.len() > LEVEL_START
        && line.starts_with(tracelight_schema::layout::LINE_START.as_bytes())
        && line[TS_END] == b'"'
    {
        time::parse_fixed(&line[TS_START..TS_END])
    } else {
        None
    }
}

/// The timestamp of a parsed line.
pub(crate) fn value_timestamp(v: &Value) -> Option<i64> {
    match v.get(key::TIMESTAMP)? {
        Value::String(s) => time::parse_rfc3339(s),
        Value::Number(n) => {
            // Epoch seconds or milliseconds, as some writers use.
            let f = n.as_f64()?;
            if f > 1e11 {
                Some((f * 1e3) as i64)
            } else {
                Some((f * 1e6) as i64)
            }
        }
        _ => None,
    }
}

/// The level of a parsed line.
pub(crate) fn value_level(v: &Value) -> Option<Level> {
    v.get(key::LEVEL)
        .and_then(Value::as_str)
        .and_then(Level::parse)
}

/// Where a root key is in a canonical line.
enum RootKey {
    /// Not at the root.
    Absent,
    /// The value starts at this offset.
    At(usize),
    /// Cannot tell without a parse.
    Unknown,
}

/// Finds the root key whose compact form `"key":` is `needle` in a canonical line.
///
/// It is a root key when the occurrence follows a `,` and no object or array value opens before
/// it (so the nesting depth is one).
fn find_root_key(line: &[u8], finder: &memmem::Finder<'_>) -> RootKey {
    let Some(p) = finder.find(line) else {
        return RootKey::Absent;
    };
    let end = p + finder.needle().len();
    if p < 1 || line[p - 1] != b',' {
        return RootKey::Unknown;
    }
    // In a compact line a nested object or array at the root starts with `:{` or `:[`; if no
    // such pair comes before the key, the key is at depth one. (A pair inside a string only
    // makes the answer `Unknown`.)
    for q in memchr::memchr2_iter(b'{', b'[', &line[1..p]) {
        if line[q] == b':' {
            return RootKey::Unknown;
        }
    }
    // The same key may come again inside a later object (`"span":{"request_id":…}`), never at
    // the root: a canonical line has no repeated key.
    RootKey::At(end)
}

/// The raw JSON scalar starting at `line[at..]`: a number, `true`/`false`/`null`, or a string
/// without backslashes. `None` for anything else.
fn raw_scalar(line: &[u8], at: usize) -> Option<&[u8]> {
    let rest = line.get(at..)?;
    match rest.first()? {
        b'"' => {
            let close = memchr::memchr2(b'"', b'\\', &rest[1..])?;
            if rest[1 + close] == b'"' {
                Some(&rest[..close + 2])
            } else {
                None
            }
        }
        b'{' | b'[' => None,
        _ => {
            let end = memchr::memchr2(b',', b'}', rest)?;
            Some(&rest[..end])
        }
    }
}

/// A filter ready to run: the filter plus what the fast path needs.
#[derive(Debug)]
pub(crate) struct Compiled {
    /// The filter.
    pub(crate) filter: Filter,
    /// The compact `"key":` form of a single-segment where field, for fast checks.
    key_finder: Option<memmem::Finder<'static>>,
}

impl Compiled {
    /// Decides the filter from the raw bytes of a canonical line.
    #[inline]
    pub(crate) fn fast(&self, line: &[u8]) -> Decision {
        match &self.filter {
            Filter::MinLevel(min) => match Level::from_raw(&line[LEVEL_START..]) {
                Some(l) if l >= *min => Decision::Accept,
                Some(_) => Decision::Reject,
                None => Decision::Unknown,
            },
            Filter::Time { since, until } => match fast_timestamp(line) {
                Some(t) => {
                    if since.is_some_and(|s| t < s) || until.is_some_and(|u| t >= u) {
                        Decision::Reject
                    } else {
                        Decision::Accept
                    }
                }
                None => Decision::Unknown,
            },
            Filter::Where(w) => {
                let Some(finder) = &self.key_finder else {
                    return Decision::Unknown;
                };
                match find_root_key(line, finder) {
                    RootKey::Absent => {
                        if w.matches_value(None) {
                            Decision::Accept
                        } else {
                            Decision::Reject
                        }
                    }
                    RootKey::Unknown => Decision::Unknown,
                    RootKey::At(at) => {
                        if w.op == Op::Exists {
                            return Decision::Accept;
                        }
                        let Some(raw) = raw_scalar(line, at) else {
                            return Decision::Unknown;
                        };
                        match serde_json::from_slice::<Value>(raw) {
                            Ok(v) => {
                                if w.matches_value(Some(&v)) {
                                    Decision::Accept
                                } else {
                                    Decision::Reject
                                }
                            }
                            Err(_) => Decision::Unknown,
                        }
                    }
                }
            }
        }
    }

    /// Decides the filter on a parsed line.
    pub(crate) fn matches(&self, v: &Value) -> bool {
        match &self.filter {
            Filter::MinLevel(min) => value_level(v).is_some_and(|l| l >= *min),
            Filter::Time { since, until } => value_timestamp(v)
                .is_some_and(|t| !(since.is_some_and(|s| t < s) || until.is_some_and(|u| t >= u))),
            Filter::Where(w) => w.matches_value(lookup(v, &w.path)),
        }
    }
}

/// A compiled query.
#[derive(Debug)]
pub(crate) struct Plan {
    /// The filters (all must hold).
    pub(crate) filters: Vec<Compiled>,
    /// The most selective needle, searched across whole blocks.
    pub(crate) primary: Option<memmem::Finder<'static>>,
    /// Other needles, checked per candidate line.
    pub(crate) others: Vec<memmem::Finder<'static>>,
    /// The primary needle with the two bytes the vector scan looks for.
    pub(crate) pair: Option<crate::engine::scan::NeedlePair>,
    /// Disable needles and fast checks: parse and decide every line (the reference behaviour).
    pub(crate) parse_everything: bool,
}

impl Plan {
    /// Compiles filters into a plan.
    pub(crate) fn new(filters: Vec<Filter>) -> Plan {
        let mut needles: Vec<Vec<u8>> = Vec::new();
        let mut compiled = Vec::new();
        for filter in filters {
            let mut key_finder = None;
            if let Filter::Where(w) = &filter {
                needles.extend(w.needles());
                if let [only] = w.path.as_slice() {
                    if all_safe(only) {
                        key_finder = Some(
                            memmem::Finder::new(format!("\"{only}\":").as_bytes()).into_owned(),
                        );
                    }
                }
            }
            compiled.push(Compiled { filter, key_finder });
        }
        needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
        needles.dedup();
        // A needle contained in a longer one adds nothing.
        let mut kept: Vec<Vec<u8>> = Vec::new();
        for n in needles {
            if !kept.iter().any(|k| memmem::find(k, &n).is_some()) {
                kept.push(n);
            }
        }
        let mut finders = kept.iter().map(|n| memmem::Finder::new(n).into_owned());
        let primary = finders.next();
        let mut pair = kept
            .first()
            .and_then(|n| crate::engine::scan::NeedlePair::new(n));
        if pair.is_none()
            && compiled
                .iter()
                .any(|c| matches!(c.filter, Filter::MinLevel(Level::Error)))
        {
            // `--level error` (and `errors`): a line tracelight wrote holds its level at a fixed
            // place, so the vector scan looks for that; any other line is decided in full.
            // (`ERROR"`: its first byte, which the scan compares, is rarer than a quote.)
            let needle = format!("{}\"", Level::Error.as_str());
            pair = crate::engine::scan::NeedlePair::new(needle.as_bytes()).map(|mut p| {
                p.canonical_only = true;
                p
            });
        }
        Plan {
            filters: compiled,
            primary,
            pair,
            others: finders.collect(),
            parse_everything: false,
        }
    }

    /// A plan that parses and decides every line: the reference the fast path must agree with.
    pub(crate) fn reference(filters: Vec<Filter>) -> Plan {
        let mut p = Plan::new(filters);
        p.primary = None;
        p.pair = None;
        p.others.clear();
        p.parse_everything = true;
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn where_errors_point_at_the_mistake() {
        let e = WhereExpr::parse("status >> 5").err().map(|e| e.to_string());
        let e = e.unwrap_or_default();
        assert!(e.contains("unknown operator `>>`"), "{e}");
        assert!(e.contains("  status >> 5\n         ^^"), "{e}");
        assert!(WhereExpr::parse("status").is_err());
        assert!(WhereExpr::parse("status >").is_err());
        assert!(WhereExpr::parse("= 5").is_err());
        assert!(WhereExpr::parse("msg ~ (").is_err());
        assert!(WhereExpr::parse("a..b = 1").is_err());
    }

    #[test]
    fn where_parses() {
        let w = WhereExpr::parse("status>=500").ok();
        assert!(w
            .as_ref()
            .is_some_and(|w| w.op == Op::Ge && w.int == Some(500)));
        let w = WhereExpr::parse("  error.type exists ").ok();
        assert!(w.is_some_and(|w| w.op == Op::Exists && w.path == ["error", "type"]));
        let w = WhereExpr::parse("message = 'order created'").ok();
        assert!(w.is_some_and(|w| w.text == "order created" && w.num.is_none()));
    }

    #[test]
    fn lookup_dotted() {
        let v: Value =
            serde_json::from_str(r#"{"fields.name":1,"span":{"name":"x"},"a":{"b.c":{"d":2}}}"#)
                .unwrap_or_default();
        let p = |s: &str| s.split('.').map(str::to_owned).collect::<Vec<_>>();
        assert_eq!(lookup(&v, &p("fields.name")), Some(&Value::from(1)));
        assert_eq!(lookup(&v, &p("span.name")), Some(&Value::from("x")));
        assert_eq!(lookup(&v, &p("a.b.c.d")), Some(&Value::from(2)));
        assert_eq!(lookup(&v, &p("span.nope")), None);
    }

    #[test]
    fn safe_runs() {
        assert_eq!(longest_safe_run("ab\"cdef/g"), "cdef");
        assert_eq!(longest_safe_run("0193f2a4-7c1e"), "0193f2a4-7c1e");
        assert_eq!(longest_safe_run("é"), "");
    }
}
