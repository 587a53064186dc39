//! Reading settings from the environment: the helpers every variable's parser shares.

use crate::error::Error;

/// Reads a boolean setting: `true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`, any case.
pub(crate) fn parse_bool(var: &str, v: &str) -> Result<bool, Error> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(Error::env(
            var,
            v,
            "one of true, false, 1, 0, yes, no, on, off",
        )),
    }
}

/// The variables tracelight reads with the `LOG_` prefix (besides `LOG_STREAM_<NAME>_<SETTING>`).
/// One registry: the start-up check below names the closest of these for a misspelling.
pub(crate) const LOG_VARS: &[&str] = &[
    "LOG_LEVEL",
    "LOG_FORMAT",
    "LOG_SPAN_LIST",
    "LOG_SCHEMA",
    "LOG_DIR",
    "LOG_STDOUT",
    "LOG_MAX_BYTES",
    "LOG_MAX_TOTAL_BYTES",
    "LOG_BACKUP_COUNT",
    "LOG_ROTATION",
    "LOG_MAX_AGE",
    "LOG_COMPRESS",
    "LOG_LOSSY",
    "LOG_QUEUE_BYTES",
    "LOG_BLOCK_TIMEOUT",
    "LOG_TIMING",
    "LOG_SLOW_THRESHOLD",
    "LOG_TIMING_EVERY_CLOSE",
    "LOG_ERROR_SUPPRESS_AFTER",
    "LOG_ERROR_WINDOW",
    "LOG_RATE_LIMIT",
    "LOG_DEBUG_SAMPLE_RATE",
    "LOG_REDACT",
    "LOG_REDACT_KEYS",
    "LOG_REDACT_ALLOW",
    "LOG_REDACT_EMAIL",
    "LOG_FLIGHT_RECORDER",
    "LOG_FLIGHT_RECORDER_LEVEL",
    "LOG_FLIGHT_RECORDER_UNITS",
    "LOG_FLIGHT_RECORDER_MAX_EVENTS",
    "LOG_FLIGHT_RECORDER_MAX_BYTES",
];

/// The settings `LOG_STREAM_<NAME>_<SETTING>` takes.
pub(crate) const STREAM_SETTINGS: &[&str] = &[
    "ENABLED",
    "FILE",
    "FORMAT",
    "LEVEL",
    "MAX_BYTES",
    "MAX_TOTAL_BYTES",
    "BACKUP_COUNT",
    "ROTATION",
    "MAX_AGE",
    "COMPRESS",
];

/// Whether tracelight reads the variable `name` (under its own prefixes).
#[cfg(test)]
pub(crate) fn is_known(name: &str) -> bool {
    known().iter().any(|k| k == name)
}

/// Every variable name tracelight reads under its own prefixes.
fn known() -> Vec<String> {
    let mut out: Vec<String> = LOG_VARS.iter().map(|s| (*s).to_owned()).collect();
    // `NAME` is a default stream's name, upper-cased.
    for n in tracelight_schema::DEFAULT_STREAMS {
        for s in STREAM_SETTINGS {
            out.push(format!("LOG_STREAM_{}_{s}", n.to_ascii_uppercase()));
        }
    }
    out
}

/// Levenshtein distance (small strings only).
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The known name closest to `name`.
fn closest(name: &str, candidates: &[String]) -> String {
    candidates
        .iter()
        .min_by_key(|c| distance(name, c))
        .cloned()
        .unwrap_or_default()
}

/// Checks the names of the variables set: an unknown `TRACELIGHT_*` or `LOG_STREAM_*` variable
/// is an error naming the closest valid one (those prefixes are tracelight's own); an unknown
/// `LOG_*` variable (a prefix other software shares) is a warning. Returns the warnings.
pub(crate) fn check_names<'a>(names: impl Iterator<Item = &'a str>) -> Result<Vec<String>, Error> {
    let known = known();
    let mut warnings = Vec::new();
    for name in names {
        if known.iter().any(|k| k == name) {
            continue;
        }
        let own = name.starts_with("TRACELIGHT_") || name.starts_with("LOG_STREAM_");
        if own {
            return Err(Error::UnknownEnv {
                var: name.to_owned(),
                suggestion: closest(name, &known),
            });
        }
        if name.starts_with("LOG_") {
            let near = closest(name, &known);
            let hint = if distance(name, &near) <= 3 {
                format!("; did you mean {near}?")
            } else {
                String::new()
            };
            warnings.push(format!(
                "environment variable {name} is not a tracelight setting and is ignored{hint} (see docs/configuration.md)"
            ));
        }
    }
    Ok(warnings)
}

/// The level names a bare `RUST_LOG` directive may be.
const LEVEL_WORDS: &[&str] = &["trace", "debug", "info", "warn", "error", "off"];

/// Whether `word` is `level` mistyped: a prefix of it (`inf`), it with more letters (`infoo`), two
/// neighbouring letters swapped (`wran`), or one letter left out (`debg`). A letter replaced by
/// another is not counted: `warp` is a crate, not `warn`.
fn looks_like(word: &str, level: &str) -> bool {
    let (w, l) = (word.as_bytes(), level.as_bytes());
    if w.len() >= 2 && (level.starts_with(word) || word.starts_with(level)) {
        return true;
    }
    if w.len() == l.len() {
        let diff: Vec<usize> = (0..w.len()).filter(|&i| w[i] != l[i]).collect();
        return diff.len() == 2
            && diff[1] == diff[0] + 1
            && w[diff[0]] == l[diff[1]]
            && w[diff[1]] == l[diff[0]];
    }
    if w.len() + 1 == l.len() {
        return (0..l.len()).any(|i| l[..i] == w[..i] && l[i + 1..] == w[i..]);
    }
    false
}

/// Checks `RUST_LOG` for what `EnvFilter` accepts but almost certainly means something else (see
/// [`check_directives`]). Returns the warnings.
pub(crate) fn check_rust_log(value: &str) -> Result<Vec<String>, Error> {
    check_directives(value).map_err(|reason| Error::env("RUST_LOG", value, reason))
}

/// Checks filter directives: a bare directive within a small edit distance of a level name
/// (`inf`, `infoo`, `wran`) is refused with the level meant (`EnvFilter` takes it as a target and
/// every line is filtered out); a target with a hyphen (`my-svc=debug`; Rust paths have
/// underscores) is a warning. Returns the warnings, or why the directives are refused.
pub(crate) fn check_directives(value: &str) -> Result<Vec<String>, String> {
    let mut warnings = Vec::new();
    for directive in value.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let target = directive.split(['=', '[']).next().unwrap_or("").trim();
        if !directive.contains('=') && !directive.contains('[') {
            let word = directive.to_ascii_lowercase();
            if !LEVEL_WORDS.contains(&word.as_str())
                && word.chars().all(|c| c.is_ascii_alphabetic())
            {
                if let Some(level) = LEVEL_WORDS.iter().find(|l| looks_like(&word, l)) {
                    return Err(format!(
                        "a level or `target=level` directives; `{directive}` is not a level (did you mean `{level}`?)"
                    ));
                }
            }
        }
        if target.contains('-') {
            warnings.push(format!(
                "RUST_LOG directive `{directive}`: the target `{target}` has a hyphen, but Rust module paths use underscores (`{}`); events of crate `{target}` have the target `{}`",
                target.replace('-', "_"),
                target.replace('-', "_")
            ));
        }
    }
    Ok(warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn misspelled_variables_name_the_closest() {
        let e = check_names(["LOG_STREAM_ERORRS_BACKUP_COUNT"].into_iter()).unwrap_err();
        assert!(
            e.to_string().contains("LOG_STREAM_ERRORS_BACKUP_COUNT"),
            "{e}"
        );
        let e = check_names(["TRACELIGHT_LEVEL"].into_iter()).unwrap_err();
        assert!(e.to_string().contains("TRACELIGHT_LEVEL"), "{e}");
        let w = check_names(["LOG_FORMATT", "LOG_ROTATE", "PATH", "LOG_DIR"].into_iter()).unwrap();
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(
            w[0].contains("LOG_FORMATT") && w[0].contains("LOG_FORMAT?"),
            "{w:?}"
        );
        assert!(w[1].contains("LOG_ROTATION"), "{w:?}");
    }

    #[test]
    fn bare_directives_near_a_level_are_errors() {
        for bad in ["inf", "infoo", "wran", "debg", "my_crate=debug,eror"] {
            let e = check_rust_log(bad).unwrap_err().to_string();
            assert!(
                e.contains("RUST_LOG") && e.contains("did you mean"),
                "{bad}: {e}"
            );
        }
        for good in [
            "info",
            "WARN",
            "my_crate=debug",
            "info,hyper=warn",
            "sqlx",
            "warp",
            "tokio[task]=trace",
        ] {
            assert!(check_rust_log(good).is_ok(), "{good}");
        }
        let w = check_rust_log("my-svc=debug").unwrap();
        assert!(w[0].contains("my_svc"), "{w:?}");
    }
}
