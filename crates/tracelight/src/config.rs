//! Configuration from the environment.
//!
//! | variable | accepted values | default |
//! |---|---|---|
//! | `RUST_LOG` | `EnvFilter` directives: `info`, `warn,my_crate=debug`, `my_crate[span]=trace` | — |
//! | `LOG_LEVEL` | `trace`, `debug`, `info`, `warn`, `error`, `off` (used when `RUST_LOG` is unset) | `info` |
//! | `LOG_FORMAT` | `json`, `text`, `auto` (text on a terminal, JSON otherwise) | `auto` |
//! | `SERVICE_NAME` | any non-empty name; falls back to `OTEL_SERVICE_NAME`, then the executable's name | |
//! | `APP_ENV` | any non-empty name (`production`, `staging`…) | omitted |
//! | `LOG_SCHEMA` | `default`, `ecs`, `gcp`, `datadog`, `otel`: the key names of JSON lines (see `docs/schema.md`) | `default` |
//! | `GOOGLE_CLOUD_PROJECT` | the project id the `gcp` schema writes in `logging.googleapis.com/trace` | |
//! | `LOG_SPAN_LIST` | `true`/`false` (`1`/`0`, `yes`/`no`, `on`/`off`): add the whole span path under `spans` | `false` |
//! | `LOG_DIR` | a directory: write the five default streams there as rotating JSON files | stdout only |
//! | `LOG_MAX_BYTES` | a size: `10485760`, `10MiB`, `500KB`, `1G` | `10MiB` |
//! | `LOG_MAX_TOTAL_BYTES` | the disk bound of each stream's rotated files (a size), oldest removed first | none |
//! | `LOG_BACKUP_COUNT` | rotated files kept per stream | `5` |
//! | `LOG_ROTATION` | `size`, `hourly`, `daily` (time rotation, UTC; `LOG_MAX_BYTES` still applies when set) | `size` |
//! | `LOG_MAX_AGE` | rotated files older than this are removed: `7d`, `12h`, `30m`, `3600s` | none |
//! | `LOG_COMPRESS` | gzip rotated files | `true` |
//! | `LOG_STDOUT` | with `LOG_DIR`, also write every line to stdout | `true` |
//! | `LOG_LOSSY` | drop and count lines instead of waiting when the queue is full | `false` |
//! | `LOG_QUEUE_BYTES` | capacity of each destination's queue in front of its writer thread | `8MiB` |
//! | `LOG_BLOCK_TIMEOUT` | a destination that makes no write progress this long (`1s`, `500ms`) has its lines dropped and counted until it drains | `1s` |
//! | `LOG_TIMING` | time spans (`span_closed` events for slow ones, aggregates) | `true` |
//! | `LOG_SLOW_THRESHOLD` | a span slower than this is reported: `500ms`, `2s` | `500ms` |
//! | `LOG_TIMING_EVERY_CLOSE` | report every span close, not only slow ones | `false` |
//! | `LOG_ERROR_SUPPRESS_AFTER` | after N identical errors in a window, count instead of writing | off |
//! | `LOG_ERROR_WINDOW` | that window: `60s`, `5m` | `60s` |
//! | `LOG_RATE_LIMIT` | at most N events per second per callsite (ERROR excepted) | off |
//! | `LOG_DEBUG_SAMPLE_RATE` | keep this fraction of DEBUG/TRACE lines, by request: `0.1` | `1` |
//! | `LOG_REDACT` | redaction on or off | `true` |
//! | `LOG_REDACT_KEYS` / `LOG_REDACT_ALLOW` | comma-separated secret words to add / remove | |
//! | `LOG_REDACT_EMAIL` | also mask e-mail addresses in values | `false` |
//! | `LOG_FLIGHT_RECORDER` | keep the lines the filter leaves out per unit of work, write them when it fails (see `recorder`) | `false` |
//! | `LOG_FLIGHT_RECORDER_LEVEL` | the most verbose level kept: `trace`, `debug`, `info`, `warn` | `trace` |
//! | `LOG_FLIGHT_RECORDER_UNITS` | comma-separated span names that are units of work, besides the http layer's request span | |
//! | `LOG_FLIGHT_RECORDER_MAX_EVENTS` | lines kept per unit (the oldest go first) | `1000` |
//! | `LOG_FLIGHT_RECORDER_MAX_BYTES` | bytes kept by all units together (a size of at least `64KiB`) | `32MiB` |
//! | `LOG_STREAM_<NAME>_<SETTING>` | per stream (`APP`, `ERRORS`, `ACCESS`, `SECURITY`, `PERFORMANCE`): `ENABLED`, `FILE`, `FORMAT`, `LEVEL`, `MAX_BYTES`, `MAX_TOTAL_BYTES`, `BACKUP_COUNT`, `ROTATION`, `MAX_AGE`, `COMPRESS` | the global ones |
//! | `OTEL_*` | with the `otel` feature: the OTLP endpoint, protocol, resource, sampler… (see `OtelConfig` in the `otel` module) | export off |
//!
//! A value that cannot be used is an [`Error::InvalidEnv`] naming the variable, the value and what
//! is accepted; nothing is silently ignored.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::Error;
use crate::sink::Period;
use crate::stream::{Format, DEFAULT_STREAMS};

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
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Config {
    /// `EnvFilter` directives, from `RUST_LOG` or `LOG_LEVEL`.
    pub filter: Option<String>,
    /// What start-up found suspicious but not wrong (an unknown `LOG_*` variable, a `RUST_LOG`
    /// target with a hyphen): written as WARN lines once the subscriber is installed.
    pub warnings: Vec<String>,
    /// `LOG_FORMAT`.
    pub format: Option<Format>,
    /// `SERVICE_NAME` or `OTEL_SERVICE_NAME`.
    pub service: Option<String>,
    /// `APP_ENV`.
    pub env: Option<String>,
    /// `LOG_SPAN_LIST`.
    pub span_list: Option<bool>,
    /// `LOG_SCHEMA`.
    pub schema: Option<tracelight_schema::Schema>,
    /// `GOOGLE_CLOUD_PROJECT`.
    pub gcp_project: Option<String>,
    /// `LOG_DIR`.
    pub log_dir: Option<PathBuf>,
    /// File settings for every stream: `LOG_MAX_BYTES`, `LOG_MAX_TOTAL_BYTES`, `LOG_BACKUP_COUNT`, `LOG_ROTATION`,
    /// `LOG_MAX_AGE`, `LOG_COMPRESS`.
    pub files: StreamSettings,
    /// `LOG_STDOUT`.
    pub stdout: Option<bool>,
    /// `LOG_LOSSY`.
    pub lossy: Option<bool>,
    /// `LOG_QUEUE_BYTES`.
    pub queue_bytes: Option<usize>,
    /// `LOG_BLOCK_TIMEOUT`.
    pub block_timeout: Option<Duration>,
    /// `LOG_STREAM_<NAME>_*`, for the streams that have any.
    pub streams: Vec<(String, StreamSettings)>,
    /// `LOG_TIMING`.
    pub timing: Option<bool>,
    /// `LOG_SLOW_THRESHOLD`.
    pub slow_threshold: Option<Duration>,
    /// `LOG_TIMING_EVERY_CLOSE`.
    pub timing_every_close: Option<bool>,
    /// `LOG_ERROR_SUPPRESS_AFTER` and `LOG_ERROR_WINDOW`.
    pub error_suppression: Option<(u32, Duration)>,
    /// `LOG_RATE_LIMIT`.
    pub rate_limit: Option<u32>,
    /// `LOG_DEBUG_SAMPLE_RATE`.
    pub debug_sample_rate: Option<f64>,
    /// `LOG_REDACT`.
    pub redact: Option<bool>,
    /// `LOG_REDACT_KEYS`.
    pub redact_keys: Vec<String>,
    /// `LOG_REDACT_ALLOW`.
    pub redact_allow: Vec<String>,
    /// `LOG_REDACT_EMAIL`.
    pub redact_email: Option<bool>,
    /// `LOG_FLIGHT_RECORDER` and its settings (`LOG_FLIGHT_RECORDER_*`).
    pub flight_recorder: crate::recorder::RecorderEnv,
    /// The OpenTelemetry settings (`OTEL_*`, see [`OtelConfig`](crate::otel::OtelConfig)).
    #[cfg(feature = "otel-core")]
    pub otel: crate::otel::OtelConfig,
}

/// `Config` is compared in tests; f64 has no `Eq`, but the rate is a plain finite number.
impl Eq for Config {}

/// Settings of one file stream; `None` keeps the default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StreamSettings {
    /// `ENABLED`: whether the stream is written.
    pub enabled: Option<bool>,
    /// `FILE`: the file name in `LOG_DIR`.
    pub file: Option<String>,
    /// `FORMAT`.
    pub format: Option<Format>,
    /// `LEVEL`: the least severe level the stream takes.
    pub level: Option<tracing::Level>,
    /// `MAX_BYTES`.
    pub max_bytes: Option<u64>,
    /// `MAX_TOTAL_BYTES`: the disk bound of the stream's rotated files.
    pub max_total_bytes: Option<u64>,
    /// `BACKUP_COUNT`.
    pub backups: Option<usize>,
    /// `ROTATION`: `Some(None)` for size only, `Some(Some(period))` for time.
    pub period: Option<Option<Period>>,
    /// `MAX_AGE`.
    pub max_age: Option<Duration>,
    /// `COMPRESS`.
    pub compress: Option<bool>,
}

impl StreamSettings {
    fn is_empty(&self) -> bool {
        *self == StreamSettings::default()
    }

    /// `other`'s settings where it has them, ours elsewhere.
    pub(crate) fn or(&self, other: &StreamSettings) -> StreamSettings {
        StreamSettings {
            enabled: other.enabled.or(self.enabled),
            file: other.file.clone().or_else(|| self.file.clone()),
            format: other.format.or(self.format),
            level: other.level.or(self.level),
            max_bytes: other.max_bytes.or(self.max_bytes),
            max_total_bytes: other.max_total_bytes.or(self.max_total_bytes),
            backups: other.backups.or(self.backups),
            period: other.period.or(self.period),
            max_age: other.max_age.or(self.max_age),
            compress: other.compress.or(self.compress),
        }
    }

    /// The rotation these settings describe, starting from the defaults.
    pub(crate) fn rotation(&self) -> crate::sink::Rotation {
        let mut r = match self.period {
            Some(Some(p)) => crate::sink::Rotation::every(p),
            _ => crate::sink::Rotation::default(),
        };
        if let Some(b) = self.max_bytes {
            r = r.max_bytes(b);
        }
        if let Some(b) = self.max_total_bytes {
            r = r.max_total_bytes(b);
        }
        if let Some(n) = self.backups {
            r = r.backups(n);
        }
        if let Some(a) = self.max_age {
            r = r.max_age(a);
        }
        if let Some(c) = self.compress {
            r = r.compress(c);
        }
        r
    }
}

/// Parses a size: a number of bytes with an optional unit (`K`, `KB`, `KiB`, `M`, `MB`, `MiB`,
/// `G`, `GB`, `GiB`; all binary multiples).
pub(crate) fn parse_size(var: &str, v: &str) -> Result<u64, Error> {
    let t = v.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(digits);
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => 0,
    };
    match num.parse::<u64>() {
        Ok(n) if mult > 0 && n > 0 => n
            .checked_mul(mult)
            .ok_or_else(|| Error::env(var, v, "a size that fits in 64 bits")),
        _ => Err(Error::env(
            var,
            v,
            "a positive size in bytes, optionally with a unit: 10485760, 500KB, 10MiB, 1G",
        )),
    }
}

/// Parses a duration: a number with a unit `ms`, `s`, `m`, `h` or `d`.
pub(crate) fn parse_duration(var: &str, v: &str) -> Result<Duration, Error> {
    let t = v.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(digits);
    let millis: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => 0,
    };
    match num.parse::<u64>() {
        Ok(n) if millis > 0 && n > 0 => Ok(Duration::from_millis(n.saturating_mul(millis))),
        _ => Err(Error::env(
            var,
            v,
            "a duration with a unit: 500ms, 3600s, 30m, 12h, 7d",
        )),
    }
}

/// `LOG_FLIGHT_RECORDER` and its settings.
fn flight_recorder(
    get: &mut impl FnMut(&str) -> Option<String>,
) -> Result<crate::recorder::RecorderEnv, Error> {
    let mut env = crate::recorder::RecorderEnv {
        on: get("LOG_FLIGHT_RECORDER")
            .map(|v| crate::env::parse_bool("LOG_FLIGHT_RECORDER", &v))
            .transpose()?,
        ..Default::default()
    };
    if let Some(v) = get("LOG_FLIGHT_RECORDER_LEVEL") {
        env.level = Some(match v.trim().to_ascii_lowercase().as_str() {
            "trace" => tracing_core::Level::TRACE,
            "debug" => tracing_core::Level::DEBUG,
            "info" => tracing_core::Level::INFO,
            "warn" | "warning" => tracing_core::Level::WARN,
            _ => {
                return Err(Error::env(
                    "LOG_FLIGHT_RECORDER_LEVEL",
                    v,
                    "one of trace, debug, info, warn",
                ))
            }
        });
    }
    if let Some(v) = get("LOG_FLIGHT_RECORDER_UNITS") {
        env.units = parse_list(&v);
        if env.units.is_empty() {
            return Err(Error::env(
                "LOG_FLIGHT_RECORDER_UNITS",
                v,
                "comma-separated span names, like job,handle_message",
            ));
        }
    }
    if let Some(v) = get("LOG_FLIGHT_RECORDER_MAX_EVENTS") {
        env.max_events = Some(
            v.trim()
                .parse()
                .ok()
                .filter(|n: &usize| *n > 0)
                .ok_or_else(|| {
                    Error::env(
                        "LOG_FLIGHT_RECORDER_MAX_EVENTS",
                        v.clone(),
                        "a positive number of lines per unit of work, like 1000",
                    )
                })?,
        );
    }
    if let Some(v) = get("LOG_FLIGHT_RECORDER_MAX_BYTES") {
        let n = parse_size("LOG_FLIGHT_RECORDER_MAX_BYTES", &v)?;
        // Below a few lines' worth, every line would be dropped.
        if n < 64 * 1024 {
            return Err(Error::env(
                "LOG_FLIGHT_RECORDER_MAX_BYTES",
                v,
                "a size of at least 64KiB, like 32MiB",
            ));
        }
        env.max_total_bytes = Some(usize::try_from(n).unwrap_or(usize::MAX));
    }
    Ok(env)
}

fn parse_list(v: &str) -> Vec<String> {
    v.split(',')
        .map(|w| w.trim().to_owned())
        .filter(|w| !w.is_empty())
        .collect()
}

fn parse_period(var: &str, v: &str) -> Result<Option<Period>, Error> {
    match v.trim().to_ascii_lowercase().as_str() {
        "size" => Ok(None),
        other => other
            .parse::<Period>()
            .map(Some)
            .map_err(|()| Error::env(var, v, "one of size, hourly, daily")),
    }
}

fn parse_level(var: &str, v: &str) -> Result<tracing::Level, Error> {
    match v.trim().to_ascii_lowercase().as_str() {
        "trace" => Ok(tracing::Level::TRACE),
        "debug" => Ok(tracing::Level::DEBUG),
        "info" => Ok(tracing::Level::INFO),
        "warn" | "warning" => Ok(tracing::Level::WARN),
        "error" => Ok(tracing::Level::ERROR),
        _ => Err(Error::env(var, v, "one of trace, debug, info, warn, error")),
    }
}

/// Reads the file settings under `prefix` (`LOG_` for every stream, `LOG_STREAM_APP_` for one).
fn read_settings(
    prefix: &str,
    per_stream: bool,
    get: &mut dyn FnMut(&str) -> Option<String>,
) -> Result<StreamSettings, Error> {
    let mut s = StreamSettings::default();
    let mut var = |name: &str| {
        let full = format!("{prefix}{name}");
        get(&full).map(|v| (full, v))
    };
    if let Some((k, v)) = var("MAX_BYTES") {
        s.max_bytes = Some(parse_size(&k, &v)?);
    }
    if let Some((k, v)) = var("MAX_TOTAL_BYTES") {
        s.max_total_bytes = Some(parse_size(&k, &v)?);
    }
    if let Some((k, v)) = var("BACKUP_COUNT") {
        s.backups = Some(
            v.trim()
                .parse()
                .map_err(|_| Error::env(&k, v.clone(), "a number of files: 0, 5, 30"))?,
        );
    }
    if let Some((k, v)) = var("ROTATION") {
        s.period = Some(parse_period(&k, &v)?);
    }
    if let Some((k, v)) = var("MAX_AGE") {
        s.max_age = Some(parse_duration(&k, &v)?);
    }
    if let Some((k, v)) = var("COMPRESS") {
        s.compress = Some(crate::env::parse_bool(&k, &v)?);
    }
    if per_stream {
        if let Some((k, v)) = var("ENABLED") {
            s.enabled = Some(crate::env::parse_bool(&k, &v)?);
        }
        if let Some((k, v)) = var("FILE") {
            if v.contains('/') || v.contains('\\') || v.trim().is_empty() || v.starts_with('.') {
                return Err(Error::env(
                    &k,
                    v,
                    "a file name (no directory), like `app.log`",
                ));
            }
            s.file = Some(v);
        }
        if let Some((k, v)) = var("FORMAT") {
            s.format = Some(
                v.parse()
                    .map_err(|()| Error::env(&k, v.clone(), "one of json, text, auto"))?,
            );
        }
        if let Some((k, v)) = var("LEVEL") {
            s.level = Some(parse_level(&k, &v)?);
        }
    }
    Ok(s)
}

/// The levels `LOG_LEVEL` accepts.
pub const LEVELS: &str = "one of trace, debug, info, warn, error, off";

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
        let names: Vec<String> = std::env::vars_os()
            .filter_map(|(k, _)| k.into_string().ok())
            .collect();
        let warnings = crate::env::check_names(names.iter().map(String::as_str))?;
        #[cfg(feature = "otel-core")]
        let unknown_otel = crate::otel::config::unknown_names(
            names
                .iter()
                .map(String::as_str)
                .filter(|k| std::env::var_os(k).is_some_and(|v| !v.is_empty())),
        );
        #[cfg(not(feature = "otel-core"))]
        let unknown_otel = Vec::new();
        let mut bad: Option<Error> = None;
        let cfg = Config::from_lookup_naming(unknown_otel, |k| match std::env::var(k) {
            Ok(v) => Some(v),
            Err(std::env::VarError::NotPresent) => None,
            Err(std::env::VarError::NotUnicode(raw)) => {
                bad.get_or_insert(Error::env(k, raw.to_string_lossy(), "valid UTF-8"));
                None
            }
        });
        match bad {
            Some(e) => Err(e),
            None => cfg.map(|mut c| {
                c.warnings.splice(0..0, warnings);
                c
            }),
        }
    }

    /// Reads variables through `lookup` (for tests, or another source of settings).
    pub fn from_lookup(lookup: impl FnMut(&str) -> Option<String>) -> Result<Config, Error> {
        Config::from_lookup_naming(Vec::new(), lookup)
    }

    /// [`Config::from_lookup`], with `OTEL_*` variables set that no list knows (to name in the
    /// start-up warning).
    fn from_lookup_naming(
        #[cfg_attr(not(feature = "otel-core"), allow(unused_variables))] unknown_otel: Vec<String>,
        lookup: impl FnMut(&str) -> Option<String>,
    ) -> Result<Config, Error> {
        let mut lookup = lookup;
        let mut get = |k: &str| lookup(k).filter(|v| !v.is_empty());
        let mut cfg = Config::default();

        if let Some(v) = get("RUST_LOG") {
            cfg.warnings.extend(crate::env::check_rust_log(&v)?);
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
            let service = non_empty("SERVICE_NAME", v)?;
            if let Some(otel) = get("OTEL_SERVICE_NAME").filter(|o| o.trim() != service) {
                cfg.warnings.push(format!(
                    "SERVICE_NAME ({service:?}) and OTEL_SERVICE_NAME ({:?}) differ: {service:?} is the service everywhere, in lines and in the exported resource",
                    otel.trim()
                ));
            }
            cfg.service = Some(service);
        } else if let Some(v) = get("OTEL_SERVICE_NAME") {
            cfg.service = Some(non_empty("OTEL_SERVICE_NAME", v)?);
        }
        if let Some(v) = get("APP_ENV") {
            cfg.env = Some(non_empty("APP_ENV", v)?);
        }
        if let Some(v) = get("LOG_SPAN_LIST") {
            cfg.span_list = Some(crate::env::parse_bool("LOG_SPAN_LIST", &v)?);
        }
        if let Some(v) = get("LOG_SCHEMA") {
            cfg.schema = Some(tracelight_schema::Schema::parse(&v).ok_or_else(|| {
                Error::env(
                    "LOG_SCHEMA",
                    v.clone(),
                    "one of default, ecs, gcp, datadog, otel",
                )
            })?);
        }
        if let Some(v) = get("GOOGLE_CLOUD_PROJECT") {
            let id = non_empty("GOOGLE_CLOUD_PROJECT", v)?;
            if !crate::builder::valid_gcp_project(&id) {
                return Err(Error::env(
                    "GOOGLE_CLOUD_PROJECT",
                    id,
                    "a project id: lower-case letters, digits and '-' (and '.' or ':' for a domain-scoped one)",
                ));
            }
            cfg.gcp_project = Some(id);
        }
        if let Some(v) = get("LOG_DIR") {
            cfg.log_dir = Some(PathBuf::from(v));
        }
        cfg.files = read_settings("LOG_", false, &mut get)?;
        if let Some(v) = get("LOG_STDOUT") {
            cfg.stdout = Some(crate::env::parse_bool("LOG_STDOUT", &v)?);
        }
        if let Some(v) = get("LOG_LOSSY") {
            cfg.lossy = Some(crate::env::parse_bool("LOG_LOSSY", &v)?);
        }
        if let Some(v) = get("LOG_QUEUE_BYTES") {
            let n = parse_size("LOG_QUEUE_BYTES", &v)?;
            cfg.queue_bytes = Some(usize::try_from(n).unwrap_or(usize::MAX));
        }
        if let Some(v) = get("LOG_BLOCK_TIMEOUT") {
            cfg.block_timeout = Some(parse_duration("LOG_BLOCK_TIMEOUT", &v)?);
        }
        if let Some(v) = get("LOG_TIMING") {
            cfg.timing = Some(crate::env::parse_bool("LOG_TIMING", &v)?);
        }
        if let Some(v) = get("LOG_SLOW_THRESHOLD") {
            cfg.slow_threshold = Some(parse_duration("LOG_SLOW_THRESHOLD", &v)?);
        }
        if let Some(v) = get("LOG_TIMING_EVERY_CLOSE") {
            cfg.timing_every_close = Some(crate::env::parse_bool("LOG_TIMING_EVERY_CLOSE", &v)?);
        }
        if let Some(v) = get("LOG_ERROR_SUPPRESS_AFTER") {
            let n: u32 = v.trim().parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                Error::env(
                    "LOG_ERROR_SUPPRESS_AFTER",
                    v.clone(),
                    "a positive number of errors: 10, 100",
                )
            })?;
            let window = match get("LOG_ERROR_WINDOW") {
                Some(w) => parse_duration("LOG_ERROR_WINDOW", &w)?,
                None => Duration::from_secs(60),
            };
            cfg.error_suppression = Some((n, window));
        }
        if let Some(v) = get("LOG_RATE_LIMIT") {
            cfg.rate_limit = Some(v.trim().parse().ok().filter(|n: &u32| *n > 0).ok_or_else(
                || {
                    Error::env(
                        "LOG_RATE_LIMIT",
                        v.clone(),
                        "a positive number of events per second per callsite",
                    )
                },
            )?);
        }
        if let Some(v) = get("LOG_DEBUG_SAMPLE_RATE") {
            cfg.debug_sample_rate = Some(
                v.trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|r| (0.0..=1.0).contains(r))
                    .ok_or_else(|| {
                        Error::env(
                            "LOG_DEBUG_SAMPLE_RATE",
                            v.clone(),
                            "a fraction from 0 to 1, like 0.1",
                        )
                    })?,
            );
        }
        if let Some(v) = get("LOG_REDACT") {
            cfg.redact = Some(crate::env::parse_bool("LOG_REDACT", &v)?);
        }
        if let Some(v) = get("LOG_REDACT_KEYS") {
            cfg.redact_keys = parse_list(&v);
        }
        if let Some(v) = get("LOG_REDACT_ALLOW") {
            cfg.redact_allow = parse_list(&v);
        }
        if let Some(v) = get("LOG_REDACT_EMAIL") {
            cfg.redact_email = Some(crate::env::parse_bool("LOG_REDACT_EMAIL", &v)?);
        }
        cfg.flight_recorder = flight_recorder(&mut get)?;
        for name in DEFAULT_STREAMS {
            let prefix = format!("LOG_STREAM_{}_", name.to_ascii_uppercase());
            let settings = read_settings(&prefix, true, &mut get)?;
            if !settings.is_empty() {
                cfg.streams.push((name.to_owned(), settings));
            }
        }
        #[cfg(feature = "otel-core")]
        {
            cfg.otel = crate::otel::OtelConfig::read(&mut get)?;
            cfg.otel.not_honoured.extend(unknown_otel);
            if let Some(w) = crate::otel::config::not_honoured_warning(&cfg.otel.not_honoured) {
                cfg.warnings.push(w);
            }
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
        let e = cfg(&[("LOG_SCHEMA", "elastic")]).unwrap_err().to_string();
        assert_eq!(
            e,
            "invalid value \"elastic\" in environment variable LOG_SCHEMA: expected one of default, ecs, gcp, datadog, otel"
        );
        let c =
            cfg(&[("LOG_SCHEMA", "GCP"), ("GOOGLE_CLOUD_PROJECT", "shop-prod")]).expect("valid");
        assert_eq!(c.schema, Some(tracelight_schema::Schema::Gcp));
        assert_eq!(c.gcp_project.as_deref(), Some("shop-prod"));
        let e = cfg(&[("GOOGLE_CLOUD_PROJECT", "my proj/x")])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("GOOGLE_CLOUD_PROJECT") && e.contains("project id"),
            "{e}"
        );
        let e = cfg(&[("LOG_SPAN_LIST", "maybe")]).unwrap_err().to_string();
        assert!(
            e.contains("LOG_SPAN_LIST") && e.contains("true, false"),
            "{e}"
        );
        let e = cfg(&[("SERVICE_NAME", "   ")]).unwrap_err().to_string();
        assert!(e.contains("SERVICE_NAME"), "{e}");
        let e = cfg(&[("LOG_BLOCK_TIMEOUT", "soon")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("LOG_BLOCK_TIMEOUT") && e.contains("soon"), "{e}");
        let ok = cfg(&[("LOG_BLOCK_TIMEOUT", "250ms")]).unwrap();
        assert_eq!(
            ok.block_timeout,
            Some(std::time::Duration::from_millis(250))
        );
    }

    #[test]
    fn file_settings_and_per_stream_overrides() {
        let c = cfg(&[
            ("LOG_DIR", "/tmp/x"),
            ("LOG_MAX_BYTES", "10MiB"),
            ("LOG_BACKUP_COUNT", "3"),
            ("LOG_ROTATION", "daily"),
            ("LOG_MAX_AGE", "7d"),
            ("LOG_STREAM_ERRORS_BACKUP_COUNT", "30"),
            ("LOG_STREAM_ACCESS_ENABLED", "false"),
            ("LOG_STREAM_APP_FORMAT", "text"),
        ])
        .unwrap();
        assert_eq!(c.files.max_bytes, Some(10 << 20));
        assert_eq!(c.files.period, Some(Some(Period::Daily)));
        assert_eq!(c.files.max_age, Some(Duration::from_secs(7 * 86_400)));
        let errors = &c.streams.iter().find(|(n, _)| n == "errors").unwrap().1;
        assert_eq!(errors.backups, Some(30));
        assert_eq!(c.files.or(errors).backups, Some(30));
        assert_eq!(c.files.or(errors).max_bytes, Some(10 << 20));
        let e = cfg(&[("LOG_MAX_BYTES", "ten")]).unwrap_err().to_string();
        assert!(e.contains("LOG_MAX_BYTES") && e.contains("10MiB"), "{e}");
        let e = cfg(&[("LOG_STREAM_ERRORS_ROTATION", "weekly")])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("LOG_STREAM_ERRORS_ROTATION") && e.contains("size, hourly, daily"),
            "{e}"
        );
        let e = cfg(&[("LOG_STREAM_APP_FILE", "../etc/passwd")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("LOG_STREAM_APP_FILE"), "{e}");
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

    #[cfg(feature = "otel-core")]
    #[test]
    fn otel_variables_not_honoured_are_one_start_up_warning() {
        let c = cfg(&[
            ("OTEL_METRICS_EXPORTER", "otlp,prometheus"),
            ("OTEL_EXPORTER_OTLP_INSECURE", "true"),
        ])
        .unwrap();
        assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
        assert!(
            c.warnings[0].contains("OTEL_METRICS_EXPORTER=prometheus")
                && c.warnings[0].contains("OTEL_EXPORTER_OTLP_INSECURE"),
            "{:?}",
            c.warnings
        );
        let unknown =
            Config::from_lookup_naming(vec!["OTEL_SERVCE_NAME".into()], |_| None).unwrap();
        assert!(
            unknown.warnings[0].contains("OTEL_SERVCE_NAME"),
            "{:?}",
            unknown.warnings
        );
        assert!(cfg(&[("OTEL_METRICS_EXPORTER", "none")])
            .unwrap()
            .warnings
            .is_empty());
    }

    #[test]
    fn two_service_names_warn_and_service_name_wins() {
        let c = cfg(&[("SERVICE_NAME", "shop"), ("OTEL_SERVICE_NAME", "shop-otel")]).unwrap();
        assert_eq!(c.service.as_deref(), Some("shop"));
        assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
        assert!(c.warnings[0].contains("shop-otel"), "{:?}", c.warnings);
        let same = cfg(&[("SERVICE_NAME", "shop"), ("OTEL_SERVICE_NAME", "shop")]).unwrap();
        assert!(same.warnings.is_empty());
    }

    #[test]
    fn every_log_variable_read_is_in_the_registry_the_checks_use() {
        // The start-up check names unknown variables from `env.rs`; a variable read here but
        // missing there would be reported as a misspelling.
        let mut asked = Vec::new();
        let _ = Config::from_lookup(|k| {
            asked.push(k.to_owned());
            None
        });
        let log: Vec<&String> = asked.iter().filter(|k| k.starts_with("LOG_")).collect();
        assert!(log.len() > 20, "{log:?}");
        for k in log {
            assert!(crate::env::is_known(k), "{k} is read but not in env.rs");
        }
    }
}
