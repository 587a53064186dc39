//! Streams: which events go where, in which format.
//!
//! A [`Stream`] is a name, a [`Rule`] (which events it takes), a [`Format`] and an [`Output`].
//! Streams are routed inside tracelight's layer rather than as a stack of per-layer filters:
//! `tracing-subscriber`'s per-layer filters have open bugs (stale interest with cached callsites,
//! contextual events dropped), and one pass formats an event once however many streams take it.
//!
//! ```
//! use tracelight::{Format, Rule, Stream, Output};
//! use tracing::Level;
//!
//! let errors = tracelight::sink::MemoryWriter::new();
//! let _g = tracelight::builder()
//!     .stream(Stream::new("app", Output::Writer(std::sync::Arc::new(tracelight::sink::MemoryWriter::new()))))
//!     .stream(Stream::new("errors", Output::Writer(std::sync::Arc::new(errors.clone())))
//!         .rule(Rule::min_level(Level::ERROR)))
//!     .init_local()
//!     .unwrap();
//! tracing::info!("fine");
//! tracing::error!("broken");
//! assert_eq!(errors.lines().len(), 1);
//! ```

use std::sync::Arc;

use tracing_core::Level;

use crate::sink::LineWriter;

pub use tracelight_schema::DEFAULT_STREAMS;

/// The format of a stream's lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// One JSON object per line (production).
    #[default]
    Json,
    /// One human-readable line per event (development). Coloured when written to a terminal.
    Text,
    /// Text when standard output is a terminal, JSON otherwise.
    Auto,
}

impl std::str::FromStr for Format {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s.trim().to_ascii_lowercase().as_str() {
            "json" => Ok(Format::Json),
            "text" | "pretty" => Ok(Format::Text),
            "auto" => Ok(Format::Auto),
            _ => Err(()),
        }
    }
}

/// Which events a stream takes.
///
/// A rule has a level range and, optionally, selectors: target prefixes and the stream tag (an
/// event field `stream = "<name of the stream>"`). An event matches when its level is in range and,
/// if there are selectors, at least one selector matches.
///
/// ```
/// use tracelight::Rule;
/// use tracing::Level;
/// let errors = Rule::min_level(Level::ERROR);                  // ERROR only
/// let db = Rule::all().target("sqlx").target("my_app::db");  // two target prefixes
/// let security = Rule::tagged();                             // events with stream = "security"
/// let quiet = Rule::all().max_level(Level::INFO);            // INFO, DEBUG and TRACE
/// # let _ = (errors, db, security, quiet);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rule {
    /// Least severe level taken (`Level::INFO` takes INFO, WARN, ERROR).
    min: Option<Level>,
    /// Most severe level taken.
    max: Option<Level>,
    targets: Vec<String>,
    tagged: bool,
}

impl Rule {
    /// Every event.
    pub fn all() -> Rule {
        Rule::default()
    }

    /// Events at least as severe as `level`.
    pub fn min_level(level: Level) -> Rule {
        Rule {
            min: Some(level),
            ..Rule::default()
        }
    }

    /// Only events at most as severe as `level`.
    pub fn max_level(mut self, level: Level) -> Rule {
        self.max = Some(level);
        self
    }

    /// Also take events whose target starts with `prefix` (a selector).
    pub fn target(mut self, prefix: impl Into<String>) -> Rule {
        self.targets.push(prefix.into());
        self
    }

    /// Events with a field `stream` equal to the stream's name (a selector).
    pub fn tagged() -> Rule {
        Rule::default().or_tagged()
    }

    /// Also take events with a field `stream` equal to the stream's name (a selector).
    pub fn or_tagged(mut self) -> Rule {
        self.tagged = true;
        self
    }

    /// Replaces the least severe level taken.
    pub fn with_min_level(mut self, level: Level) -> Rule {
        self.min = Some(level);
        self
    }

    /// The targets this rule selects, with its levels: the filter lets their events through to
    /// it whatever the user's directives (see [`crate::filter`]).
    pub(crate) fn owned(&self) -> impl Iterator<Item = crate::filter::Owned> + '_ {
        self.targets.iter().map(|prefix| crate::filter::Owned {
            prefix: prefix.clone(),
            min: self.min,
            max: self.max,
        })
    }

    /// Whether this rule selects by target or tag (it does not take every event of its levels).
    pub(crate) fn selective(&self) -> bool {
        !self.targets.is_empty() || self.tagged
    }

    #[inline]
    pub(crate) fn matches(
        &self,
        level: &Level,
        target: &str,
        tag: Option<&str>,
        name: &str,
    ) -> bool {
        // tracing orders levels by verbosity: TRACE > DEBUG > INFO > WARN > ERROR.
        if self.min.is_some_and(|min| *level > min) || self.max.is_some_and(|max| *level < max) {
            return false;
        }
        if self.targets.is_empty() && !self.tagged {
            return true;
        }
        (self.tagged && tag == Some(name))
            || self.targets.iter().any(|p| target.starts_with(p.as_str()))
    }
}

/// Where a stream's lines go.
#[derive(Clone)]
#[non_exhaustive]
pub enum Output {
    /// Standard output, through the background writer.
    Stdout,
    /// Standard error, through the background writer.
    Stderr,
    /// A synchronous writer called on the logging thread (tests, custom sinks).
    Writer(Arc<dyn LineWriter>),
    /// A rolling file, through the background writer.
    File(crate::sink::FileOptions),
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Output::Stdout => f.write_str("Stdout"),
            Output::Stderr => f.write_str("Stderr"),
            Output::Writer(_) => f.write_str("Writer(..)"),
            Output::File(o) => f.debug_tuple("File").field(o).finish(),
        }
    }
}

/// A named stream: a rule, a format and an output.
///
/// ```
/// use tracelight::{Format, Output, Rule, Stream};
/// let s = Stream::new("errors", Output::Stderr).rule(Rule::min_level(tracing::Level::ERROR)).format(Format::Text);
/// assert_eq!(s.name(), "errors");
/// ```
#[derive(Debug, Clone)]
pub struct Stream {
    pub(crate) name: String,
    pub(crate) format: Option<Format>,
    pub(crate) rule: Rule,
    pub(crate) output: Output,
    /// The setting its file comes from (`LOG_DIR`, `LOG_STREAM_<NAME>_FILE`), for errors.
    pub(crate) origin: Option<String>,
}

impl Stream {
    /// A stream taking every event, in the builder's format.
    pub fn new(name: impl Into<String>, output: Output) -> Stream {
        Stream {
            name: name.into(),
            format: None,
            rule: Rule::all(),
            output,
            origin: None,
        }
    }

    /// The stream's rule.
    pub fn get_rule(&self) -> &Rule {
        &self.rule
    }

    /// The stream's output.
    pub fn output(&self) -> &Output {
        &self.output
    }

    /// Sets the output.
    pub fn with_output(mut self, output: Output) -> Stream {
        self.output = output;
        self
    }

    /// Sets the rule.
    pub fn rule(mut self, rule: Rule) -> Stream {
        self.rule = rule;
        self
    }

    /// Sets the format (default: the builder's).
    pub fn format(mut self, format: Format) -> Stream {
        self.format = Some(format);
        self
    }

    /// The stream's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// The rule of a default stream (see `docs/streams.md`):
///
/// | stream | takes |
/// |---|---|
/// | `app` | every event |
/// | `errors` | ERROR events |
/// | `access` | events tagged `stream = "access"` or with a target under `tracelight::access` |
/// | `security` | events tagged `stream = "security"` or with a target under `tracelight::security` |
/// | `performance` | events tagged `stream = "performance"` or with a target under `tracelight::timing` |
///
/// ```
/// use tracelight::default_rule;
/// assert_eq!(default_rule("errors"), Some(tracelight::Rule::min_level(tracing::Level::ERROR)));
/// assert_eq!(default_rule("nope"), None);
/// ```
pub fn default_rule(name: &str) -> Option<Rule> {
    Some(match name {
        "app" => Rule::all(),
        "errors" => Rule::min_level(Level::ERROR),
        "access" => Rule::tagged().target("tracelight::access"),
        "security" => Rule::tagged().target("tracelight::security"),
        "performance" => Rule::tagged().target("tracelight::timing"),
        _ => return None,
    })
}

/// The five default streams as JSON files in `dir` (`app.log`, `errors.log`, `access.log`,
/// `security.log`, `performance.log`), each with `rotation`.
///
/// ```
/// use tracelight::sink::Rotation;
/// let streams = tracelight::default_streams("/var/log/shop", &Rotation::size(1 << 20));
/// assert_eq!(streams.iter().map(|s| s.name()).collect::<Vec<_>>(), ["app", "errors", "access", "security", "performance"]);
/// ```
pub fn default_streams(
    dir: impl AsRef<std::path::Path>,
    rotation: &crate::sink::Rotation,
) -> Vec<Stream> {
    DEFAULT_STREAMS
        .iter()
        .map(|name| {
            let path = dir.as_ref().join(format!("{name}.log"));
            Stream::new(
                *name,
                Output::File(crate::sink::FileOptions::new(path).rotation(rotation.clone())),
            )
            .rule(default_rule(name).unwrap_or_default())
            .format(Format::Json)
        })
        .collect()
}
