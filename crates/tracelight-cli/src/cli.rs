//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Query tracelight's JSON log files: one request across every service and rotated file, errors by
/// fingerprint, slow operations, and new lines as they arrive.
///
/// PATHS are files or directories, searched recursively for *.log, *.json, *.jsonl and *.ndjson
/// files, their rotated (.N, dated, logrotate -YYYYMMDD) files and .gz archives. Without PATHS,
/// $LOG_DIR is searched, or else the current directory.
///
/// Exit status: 0 when lines matched (or a report was printed); 1 when `query` or `timeline`
/// found no matching line; 2 on a usage error or a bad query, or when some input could not be
/// read (a missing path is a warning, and the rest is still searched and printed); 3 when there
/// was nothing to read (no log file under the paths).
///
/// On a terminal, long output goes through a pager ($TRACELIGHT_PAGER, $PAGER or `less`;
/// --no-pager turns it off), and values longer than 300 characters are cut (--full).
#[derive(Debug, Parser)]
#[command(name = "tracelight", version, max_term_width = 100)]
pub(crate) struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
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
    /// One self-contained HTML file: events by level over time, error groups, latency by route
    /// and operation, the slowest requests and their timelines across services.
    Report(ReportArgs),
}

/// When to colour the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub(crate) enum ColorChoice {
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
pub(crate) struct FilterArgs {
    /// Only lines of this request (the `request_id` field).
    #[arg(long, value_name = "ID")]
    pub(crate) request_id: Option<String>,
    /// Only lines at or after this time: relative (30s, 15m, 1h, 2d, 1w), `now`, or absolute
    /// (2026-02-10T22:30:00Z, "2026-02-10 22:30:00"; UTC unless an offset is given).
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub(crate) since: Option<String>,
    /// Only lines before this time (same forms as --since).
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub(crate) until: Option<String>,
    /// Only lines of this service (the `service` field).
    #[arg(long, value_name = "NAME")]
    pub(crate) service: Option<String>,
    /// A condition on a field: 'field OP value' with OP one of = != > >= < <= ~ (regex), or
    /// 'field exists'. Nested keys with dots (span.name, error.type). Numbers compare as numbers.
    /// Repeat to combine with AND.
    #[arg(long = "where", value_name = "EXPR", allow_hyphen_values = true)]
    pub(crate) conditions: Vec<String>,
}

/// Output options shared by the commands.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct OutputArgs {
    /// Colour: auto (on a terminal, unless NO_COLOR is set), always, never.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub(crate) color: ColorChoice,
    /// Show long values whole (human output cuts values past 300 characters, with a marker
    /// saying how many bytes were left out; --json never cuts).
    #[arg(long)]
    pub(crate) full: bool,
    /// Do not send the output through a pager (on a terminal, output goes through
    /// $TRACELIGHT_PAGER, else $PAGER, else `less`, which quits at once when it fits a screen).
    #[arg(long)]
    pub(crate) no_pager: bool,
    /// Read files with read calls instead of mapping them into memory (mapping is faster; a file
    /// truncated while it is searched can make a mapped read fail).
    #[arg(long)]
    pub(crate) no_mmap: bool,
    /// Worker threads (default: one per core). One thread spends the least CPU time in all,
    /// for a machine whose other cores are busy; more finish sooner on an idle one.
    #[arg(long, value_name = "N")]
    pub(crate) threads: Option<usize>,
}

/// `tracelight query`
#[derive(Debug, Args)]
pub(crate) struct QueryArgs {
    /// Files or directories to search.
    pub(crate) paths: Vec<PathBuf>,
    /// Filters.
    #[command(flatten)]
    pub(crate) filters: FilterArgs,
    /// Only lines at this level or more severe: trace, debug, info, warn (or warning), error
    /// (or err, fatal, critical, crit).
    #[arg(long, value_name = "LEVEL")]
    pub(crate) level: Option<String>,
    /// Print the matching lines unchanged, byte for byte (JSON lines).
    #[arg(long, conflicts_with = "count")]
    pub(crate) json: bool,
    /// Print at most N lines (the oldest N, or the newest N with --newest-first).
    #[arg(long, value_name = "N", conflicts_with = "count")]
    pub(crate) limit: Option<usize>,
    /// Print the newest lines first.
    #[arg(long, conflicts_with = "count")]
    pub(crate) newest_first: bool,
    /// Print only the number of matching lines.
    #[arg(long, short = 'c')]
    pub(crate) count: bool,
    /// Output options.
    #[command(flatten)]
    pub(crate) output: OutputArgs,
}

/// `tracelight timeline`
#[derive(Debug, Args)]
pub(crate) struct TimelineArgs {
    /// The request id.
    pub(crate) id: String,
    /// Files or directories to search.
    pub(crate) paths: Vec<PathBuf>,
    /// Print the request's lines unchanged, byte for byte (JSON lines), in order.
    #[arg(long)]
    pub(crate) json: bool,
    /// Output options.
    #[command(flatten)]
    pub(crate) output: OutputArgs,
}

/// `tracelight errors`
#[derive(Debug, Args)]
pub(crate) struct ErrorsArgs {
    /// Files or directories to search.
    pub(crate) paths: Vec<PathBuf>,
    /// Filters.
    #[command(flatten)]
    pub(crate) filters: FilterArgs,
    /// Print the groups as JSON lines.
    #[arg(long)]
    pub(crate) json: bool,
    /// Show at most this many groups.
    #[arg(long, value_name = "N")]
    pub(crate) top: Option<usize>,
    /// Output options.
    #[command(flatten)]
    pub(crate) output: OutputArgs,
}

/// `tracelight slow`
#[derive(Debug, Args)]
pub(crate) struct SlowArgs {
    /// Files or directories to search.
    pub(crate) paths: Vec<PathBuf>,
    /// Filters.
    #[command(flatten)]
    pub(crate) filters: FilterArgs,
    /// Only lines at this level or more severe: trace, debug, info, warn (or warning), error
    /// (or err, fatal, critical, crit).
    #[arg(long, value_name = "LEVEL")]
    pub(crate) level: Option<String>,
    /// How many of the slowest lines, and of the operations, to show.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub(crate) top: usize,
    /// Print the report as JSON.
    #[arg(long)]
    pub(crate) json: bool,
    /// Output options.
    #[command(flatten)]
    pub(crate) output: OutputArgs,
}

/// `tracelight tail`
#[derive(Debug, Args)]
pub(crate) struct TailArgs {
    /// Files or directories to follow (rotated .N and .gz files are not followed).
    pub(crate) paths: Vec<PathBuf>,
    /// Keep running and print new lines as they are written; follows rotations and truncation.
    #[arg(short, long)]
    pub(crate) follow: bool,
    /// How many of the last matching lines to print first.
    #[arg(short = 'n', long = "lines", value_name = "N", default_value_t = 10)]
    pub(crate) lines: usize,
    /// Filters.
    #[command(flatten)]
    pub(crate) filters: FilterArgs,
    /// Only lines at this level or more severe: trace, debug, info, warn (or warning), error
    /// (or err, fatal, critical, crit).
    #[arg(long, value_name = "LEVEL")]
    pub(crate) level: Option<String>,
    /// Print lines unchanged (JSON lines).
    #[arg(long)]
    pub(crate) json: bool,
    /// How often to look for new lines, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 200, hide = true)]
    pub(crate) poll_ms: u64,
    /// Output options.
    #[command(flatten)]
    pub(crate) output: OutputArgs,
}

/// `tracelight report`
#[derive(Debug, Args)]
pub(crate) struct ReportArgs {
    /// Files or directories to read.
    pub(crate) paths: Vec<PathBuf>,
    /// Filters (with --request-id, the report is that request's).
    #[command(flatten)]
    pub(crate) filters: FilterArgs,
    /// The HTML file to write (`-` for standard output).
    #[arg(
        short = 'o',
        long = "output",
        value_name = "FILE",
        default_value = "tracelight-report.html"
    )]
    pub(crate) out_file: PathBuf,
    /// How many of the slowest lines to list (each request among them with its timeline).
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub(crate) top: usize,
    /// Output options.
    #[command(flatten)]
    pub(crate) output: OutputArgs,
}
