//! Configuration from the environment.
//!
//! | variable | accepted values | default |
//! |---|---|---|
//! | `RUST_LOG` | `EnvFilter` directives: `info`, `warn,my_crate=debug`, `my_crate[span]=trace` | — |
//! | `LOG_LEVEL` | `trace`, `debug`, `info`, `warn`, `error`, `off` (used when `RUST_LOG` is unset) | `info` |
//! | `LOG_FORMAT` | `json`, `text`, `auto` (text on a terminal, JSON otherwise) | `auto` |
//! | `SERVICE_NAME` | any non-empty name; falls back to `OTEL_SERVICE_NAME`, then the executable's name | |
//! | `APP_ENV` | any non-empty name (`production`, `staging`…) | omitted |
//! | `LOG_SPAN_LIST` | `true`/`false` (`1`/`0`, `yes`/`no`, `on`/`off`): add the whole span path under `spans` | `false` |
//!
//! A value that cannot be used is an [`Error::InvalidEnv`] naming the variable, the value and what
//! is accepted; nothing is silently ignored.

use crate::error::Error;
use crate::route::Format;

/// Settings read from the environment; turn them into a [`Builder`](crate::Builder) with
/// [`Config::into_builder`] or apply them with [`Builder::config`](crate::Builder::config).
///
/// ```
/// use tracelight::Config;
/// let vars = [("LOG_LEVEL", "debug"), ("LOG_FORMAT", "json"), ("SERVICE_NAME", "shop")];
/// let config = Config::from_lookup(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())).unwrap();
/// assert_eq!(config.filter.as_deref(), Some("debug"));
/// assert_eq!(config.service.as_deref(), Some("shop"));
///
/// let err = Config::from_lookup(|k| (k == "LOG_FORMAT").then(|| "yaml".to_string())).unwrap_err();
/// assert_eq!(err.to_string(), "invalid value \"yaml\" in environment variable LOG_FORMAT: expected one of json, text, auto");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// `EnvFilter` directives, from `RUST_LOG` or `LOG_LEVEL`.
    pub filter: Option<String>,
    /// `LOG_FORMAT`.
    pub format: Option<Format>,
    /// `SERVICE_NAME` or `OTEL_SERVICE_NAME`.
    pub service: Option<String>,
    /// `APP_ENV`.
    pub env: Option<String>,
    /// `LOG_SPAN_LIST`.
    pub span_list: Option<bool>,
}

/// The levels `LOG_LEVEL` accepts.
pub const LEVELS: &str = "one of trace, debug, info, warn, error, off";

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

/// Checks `EnvFilter` syntax, returning the parser's reason on failure.
pub(crate) fn check_filter(directives: &str) -> Result<(), String> {
    tracing_subscriber::EnvFilter::builder()
        .parse(directives)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn non_empty(var: &str, v: String) -> Result<String, Error> {
    if v.trim().is_empty() || v.chars().any(char::is_control) {
        Err(Error::env(
            var,
            v,
            "a non-empty name without control characters",
        ))
    } else {
        Ok(v.trim().to_owned())
    }
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Config, Error> {
        let mut bad: Option<Error> = None;
        let cfg = Config::from_lookup(|k| match std::env::var(k) {
            Ok(v) => Some(v),
            Err(std::env::VarError::NotPresent) => None,
            Err(std::env::VarError::NotUnicode(raw)) => {
                bad.get_or_insert(Error::env(k, raw.to_string_lossy(), "valid UTF-8"));
                None
            }
        });
        match bad {
            Some(e) => Err(e),
            None => cfg,
        }
    }

    /// Reads variables through `lookup` (for tests, or another source of settings).
    pub fn from_lookup(lookup: impl FnMut(&str) -> Option<String>) -> Result<Config, Error> {
        let mut lookup = lookup;
        let mut get = |k: &str| lookup(k).filter(|v| !v.is_empty());
        let mut cfg = Config::default();

        if let Some(v) = get("RUST_LOG") {
            check_filter(&v).map_err(|reason| {
                Error::env(
                    "RUST_LOG",
                    v.clone(),
                    format!(
                        "EnvFilter directives such as `info` or `info,my_crate=debug` ({reason})"
                    ),
                )
            })?;
            cfg.filter = Some(v);
        } else if let Some(v) = get("LOG_LEVEL") {
            let lvl = v.trim().to_ascii_lowercase();
            match lvl.as_str() {
                "trace" | "debug" | "info" | "warn" | "error" | "off" => cfg.filter = Some(lvl),
                "warning" => cfg.filter = Some("warn".into()),
                _ => return Err(Error::env("LOG_LEVEL", v, LEVELS)),
            }
        }
        if let Some(v) = get("LOG_FORMAT") {
            cfg.format =
                Some(v.parse().map_err(|()| {
                    Error::env("LOG_FORMAT", v.clone(), "one of json, text, auto")
                })?);
        }
        if let Some(v) = get("SERVICE_NAME") {
            cfg.service = Some(non_empty("SERVICE_NAME", v)?);
        } else if let Some(v) = get("OTEL_SERVICE_NAME") {
            cfg.service = Some(non_empty("OTEL_SERVICE_NAME", v)?);
        }
        if let Some(v) = get("APP_ENV") {
            cfg.env = Some(non_empty("APP_ENV", v)?);
        }
        if let Some(v) = get("LOG_SPAN_LIST") {
            cfg.span_list = Some(parse_bool("LOG_SPAN_LIST", &v)?);
        }
        Ok(cfg)
    }

    /// A builder with these settings.
    pub fn into_builder(self) -> crate::Builder {
        crate::Builder::default().config(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(vars: &[(&str, &str)]) -> Result<Config, Error> {
        Config::from_lookup(|k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn bad_values_name_the_variable_and_what_is_accepted() {
        let e = cfg(&[("LOG_LEVEL", "verbose")]).unwrap_err().to_string();
        assert!(
            e.contains("LOG_LEVEL") && e.contains("verbose") && e.contains("trace, debug"),
            "{e}"
        );
        let e = cfg(&[("RUST_LOG", "info,my_crate=loud")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("RUST_LOG") && e.contains("my_crate=loud"), "{e}");
        let e = cfg(&[("LOG_SPAN_LIST", "maybe")]).unwrap_err().to_string();
        assert!(
            e.contains("LOG_SPAN_LIST") && e.contains("true, false"),
            "{e}"
        );
        let e = cfg(&[("SERVICE_NAME", "   ")]).unwrap_err().to_string();
        assert!(e.contains("SERVICE_NAME"), "{e}");
    }

    #[test]
    fn rust_log_wins_over_log_level_and_service_falls_back() {
        let c = cfg(&[
            ("RUST_LOG", "warn,app=debug"),
            ("LOG_LEVEL", "trace"),
            ("OTEL_SERVICE_NAME", "svc"),
        ])
        .unwrap();
        assert_eq!(c.filter.as_deref(), Some("warn,app=debug"));
        assert_eq!(c.service.as_deref(), Some("svc"));
        let c = cfg(&[("LOG_LEVEL", "WARNING"), ("LOG_FORMAT", "Text")]).unwrap();
        assert_eq!(c.filter.as_deref(), Some("warn"));
        assert_eq!(c.format, Some(Format::Text));
    }
}
