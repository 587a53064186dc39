//! The library's error type.

/// What can go wrong when setting tracelight up. Logging itself never returns errors: a failing
/// write is counted and reported instead (see [`StreamStats`](crate::sink::StreamStats)).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An environment variable holds a value tracelight cannot use.
    #[error("invalid value {value:?} in environment variable {var}: expected {expected}")]
    InvalidEnv {
        /// The variable's name.
        var: String,
        /// The value found.
        value: String,
        /// What is accepted.
        expected: String,
    },
    /// A variable under tracelight's own prefixes (`TRACELIGHT_`, `LOG_STREAM_`) that it does not
    /// read: a misspelling, which would otherwise be ignored without a word.
    #[error("unknown environment variable {var}: did you mean {suggestion}? (docs/configuration.md lists every variable)")]
    UnknownEnv {
        /// The variable found.
        var: String,
        /// The closest variable tracelight reads.
        suggestion: String,
    },
    /// A filter given in code is not valid `EnvFilter` syntax.
    #[error("invalid filter {filter:?}: {reason}; expected EnvFilter directives such as `info` or `info,my_crate=debug`")]
    InvalidFilter {
        /// The filter given.
        filter: String,
        /// Why it was refused.
        reason: String,
    },
    /// A setting given in code is not usable.
    #[error("invalid setting {setting}: {reason}")]
    InvalidSetting {
        /// The setting (builder method or stream).
        setting: String,
        /// Why it was refused.
        reason: String,
    },
    /// A global subscriber is already installed (by an earlier `init()` or another crate).
    #[error("a global tracing subscriber is already set: tracelight::init() can be called once per process")]
    AlreadyInitialized,
    /// A log file cannot be written at start: its directory cannot be created, or the file
    /// cannot be opened for appending. `setting` names where the path came from (`LOG_DIR`,
    /// `LOG_STREAM_<NAME>_FILE`, or the stream given in code).
    #[error("cannot write the log file {path} (from {setting}): {source}")]
    Unwritable {
        /// Where the path came from.
        setting: String,
        /// The file.
        path: std::path::PathBuf,
        /// Why it cannot be written.
        #[source]
        source: std::io::Error,
    },
    /// An I/O error while setting up outputs (opening a file, starting the writer thread).
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn env(var: &str, value: impl Into<String>, expected: impl Into<String>) -> Error {
        Error::InvalidEnv {
            var: var.to_owned(),
            value: value.into(),
            expected: expected.into(),
        }
    }
}
