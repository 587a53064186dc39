//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Query tracelight's JSON log files: one request across every service and rotated file, errors by
/// fingerprint, slow operations, and new lines as they arrive.
///
/// PATHS are files or directories (searched recursively for *.log, rotated *.log.N and *.gz files).
/// Without PATHS, $LOG_DIR is searched, or else the current directory.
///
/// Exit status: 0 when lines matched (or a report was printed), 1 when `query` or `timeline`
/// found no matching line, 2 on a usage error, a bad query or a missing path.
#[derive(Debug, Parser)]
#[command(name = "tracelight", version, max_term_width = 100)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the lines that match the filters, merged from all files in time order.
    Query(QueryArgs),
    /// Every line of one request across all files and services, with timing and span nesting.
    Timeline(TimelineArgs),
    /// ERROR lines grouped by fingerprint, with counts, first and last seen, and a sample.
    Errors(ErrorsArgs),
    /// The slowest operations, and latency percentiles per operation, from `duration_ms`.
    Slow(SlowArgs),
    /// The last lines, or (with -f) new lines as they are written, following rotations.
    Tail(TailArgs),
}

/// When to colour the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum ColorChoice {
    /// On a terminal, unless NO_COLOR is set.
    #[default]
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// Filters shared by the commands.
#[derive(Debug, Args, Clone, Default)]
pub struct FilterArgs {
    /// Only lines of this request (the `request_id` field).
    #[arg(long, value_name = "ID")]
    pub request_id: Option<String>,
    /// Only lines at or after this time: relative (30s, 15m, 1h, 2d) or absolute
    /// (2026-02-10T22:30:00Z, "2026-02-10 22:30:00"; UTC unless an offset is given).
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub since: Option<String>,
    /// Only lines before this time (same forms as --since).
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub until: Option<String>,
    /// Only lines of this service (the `service` field).
    #[arg(long, value_name = "NAME")]
    pub service: Option<String>,
    /// A condition on a field: 'field OP value' with OP one of = != > >= < <= ~ (regex), or
    /// 'field exists'. Nested keys with dots (span.name, error.type). Numbers compare as numbers.
    /// Repeat to combine with AND.
    #[arg(long = "where", value_name = "EXPR", allow_hyphen_values = true)]
    pub conditions: Vec<String>,
}

/// Output options shared by the commands.
#[derive(Debug, Args, Clone, Default)]
pub struct OutputArgs {
    /// Colour: auto (on a terminal, unless NO_COLOR is set), always, never.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// Worker threads (default: one per core).
    #[arg(long, value_name = "N", hide = true)]
    pub threads: Option<usize>,
}

/// `tracelight query`
#[derive(Debug, Args)]
pub struct QueryArgs {
    /// Files or directories to search.
    pub paths: Vec<PathBuf>,
    /// Filters.
    #[command(flatten)]
    pub filters: FilterArgs,
    /// Only lines at this level or more severe: trace, debug, info, warn, error.
    #[arg(long, value_name = "LEVEL")]
    pub level: Option<String>,
    /// Print the matching lines unchanged, byte for byte (JSON lines).
    #[arg(long, conflicts_with = "count")]
    pub json: bool,
    /// Print only the number of matching lines.
    #[arg(long, short = 'c')]
    pub count: bool,
    /// Output options.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `tracelight timeline`
#[derive(Debug, Args)]
pub struct TimelineArgs {
    /// The request id.
    pub id: String,
    /// Files or directories to search.
    pub paths: Vec<PathBuf>,
    /// Print the request's lines unchanged, byte for byte (JSON lines), in order.
    #[arg(long)]
    pub json: bool,
    /// Output options.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `tracelight errors`
#[derive(Debug, Args)]
pub struct ErrorsArgs {
    /// Files or directories to search.
    pub paths: Vec<PathBuf>,
    /// Filters.
    #[command(flatten)]
    pub filters: FilterArgs,
    /// Print the groups as JSON lines.
    #[arg(long)]
    pub json: bool,
    /// Show at most this many groups.
    #[arg(long, value_name = "N")]
    pub top: Option<usize>,
    /// Output options.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `tracelight slow`
#[derive(Debug, Args)]
pub struct SlowArgs {
    /// Files or directories to search.
    pub paths: Vec<PathBuf>,
    /// Filters.
    #[command(flatten)]
    pub filters: FilterArgs,
    /// Only lines at this level or more severe.
    #[arg(long, value_name = "LEVEL")]
    pub level: Option<String>,
    /// How many of the slowest lines, and of the operations, to show.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub top: usize,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Output options.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `tracelight tail`
#[derive(Debug, Args)]
pub struct TailArgs {
    /// Files or directories to follow (rotated .N and .gz files are not followed).
    pub paths: Vec<PathBuf>,
    /// Keep running and print new lines as they are written; follows rotations and truncation.
    #[arg(short, long)]
    pub follow: bool,
    /// How many of the last matching lines to print first.
    #[arg(short = 'n', long = "lines", value_name = "N", default_value_t = 10)]
    pub lines: usize,
    /// Filters.
    #[command(flatten)]
    pub filters: FilterArgs,
    /// Only lines at this level or more severe.
    #[arg(long, value_name = "LEVEL")]
    pub level: Option<String>,
    /// Print lines unchanged (JSON lines).
    #[arg(long)]
    pub json: bool,
    /// How often to look for new lines, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 200, hide = true)]
    pub poll_ms: u64,
    /// Output options.
    #[command(flatten)]
    pub output: OutputArgs,
}
