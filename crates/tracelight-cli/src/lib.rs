//! The `tracelight` command: query, timeline, errors, slow and tail over tracelight's JSON logs.
//!
//! The binary is a thin `main` over [`run`]. The search engine is a library with a small public
//! surface: build a [`Query`] from [`Filter`]s and run it with [`search`] over files and
//! directories (or [`search_bytes`] over bytes in memory); every other module is private.
//!
//! ```
//! use tracelight_cli::{search_bytes, Filter, Level, Query};
//! let logs = concat!(
//!     r#"{"timestamp":"2026-02-10T22:30:00.000001Z","level":"INFO","message":"ok"}"#, "\n",
//!     r#"{"timestamp":"2026-02-10T22:30:00.000002Z","level":"ERROR","message":"boom"}"#, "\n",
//!     "{\"timestamp\":\"2026-02-10T22:30:00.0000", "\n", // a line cut short by a crash
//! );
//! let found = search_bytes(logs.as_bytes(), &Query::new(vec![Filter::MinLevel(Level::Error)]));
//! assert_eq!(found.lines.len(), 1);
//! assert!(found.lines[0].text.ends_with(br#""message":"boom"}"#));
//! assert_eq!(found.malformed, 1);
//! ```
//!
//! Design in one paragraph: parsing every JSON line is the slow way to search logs, so the
//! scanner maps files into memory and searches them on every core, looking for *needles* in the
//! raw bytes (the request id, the field name, the value) with `memchr::memmem`, decides most
//! lines from the fixed layout tracelight writes (the timestamp is always the first key and 27
//! bytes wide, the level always the second), and parses with `serde_json` only the lines that
//! could match. Every shortcut may only widen the set of candidate lines; the parse decides.
//! Matches from all files are merged in time order.

// Library crates also keep their public surface reachable and debuggable (tests and examples
// are exempt: their `pub` items are for sibling modules).
#![warn(unreachable_pub, missing_debug_implementations)]

mod cli;
mod commands;
mod engine;
mod printer;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

pub use engine::filter::{Filter, Level, QueryError, WhereExpr};
pub use engine::time::format_micros as format_timestamp;

use engine::collect::{self, Lines};
use engine::filter::Plan;
use engine::scan::{self, ScanOptions};

/// Did the command find anything? Decides the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Lines matched, or a report was printed: exit 0.
    Found,
    /// Nothing matched: exit 1.
    NotFound,
    /// There was nothing to read (no log file under the paths): exit 3.
    NothingToRead,
}

/// Exit code: lines matched or a report was printed.
pub const EXIT_FOUND: u8 = 0;
/// Exit code: the inputs were read and nothing matched.
pub const EXIT_NOT_FOUND: u8 = 1;
/// Exit code: a usage error, a bad query, or some input could not be read (the rest was
/// searched and printed, as grep does).
pub const EXIT_ERROR: u8 = 2;
/// Exit code: there was nothing to read (no log file under the paths given, `$LOG_DIR` or the
/// current directory).
pub const EXIT_NOTHING_TO_READ: u8 = 3;

/// Parses the command line and runs the command. Returns the process exit code.
pub fn run() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_ERROR } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let result = commands::dispatch(cli);
    let input_failed = commands::input_failed();
    match result {
        Ok(_) if input_failed => ExitCode::from(EXIT_ERROR),
        Ok(Outcome::Found) => ExitCode::from(EXIT_FOUND),
        Ok(Outcome::NotFound) => ExitCode::from(EXIT_NOT_FOUND),
        Ok(Outcome::NothingToRead) => ExitCode::from(EXIT_NOTHING_TO_READ),
        Err(e) => {
            if is_broken_pipe(&e) {
                // The reader has what it wanted; a failed input still says so.
                return ExitCode::from(if input_failed { EXIT_ERROR } else { EXIT_FOUND });
            }
            eprintln!("tracelight: error: {e:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// Did the command stop because its reader went away (`| head`, a pager quit early)?
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || c.downcast_ref::<serde_json::Error>()
                .is_some_and(|j| j.io_error_kind() == Some(std::io::ErrorKind::BrokenPipe))
    })
}

/// A compiled query: every [`Filter`] must hold.
///
/// ```
/// use tracelight_cli::{Filter, Query, WhereExpr};
/// let q = Query::new(vec![Filter::Where(WhereExpr::parse("status >= 500")?)]);
/// # let _ = q;
/// # Ok::<(), tracelight_cli::QueryError>(())
/// ```
#[derive(Debug)]
pub struct Query {
    plan: Plan,
}

impl Query {
    /// Compiles filters into a query with the fast paths (needles, fixed-position checks).
    pub fn new(filters: Vec<Filter>) -> Query {
        Query {
            plan: Plan::new(filters),
        }
    }

    /// The same query without any fast path: every line is parsed and decided. It is the
    /// definition of what matches, which the fast paths must agree with.
    pub fn reference(filters: Vec<Filter>) -> Query {
        Query {
            plan: Plan::reference(filters),
        }
    }
}

/// How [`search`] reads its inputs.
#[derive(Debug, Clone)]
pub struct SearchOptions {
    /// Worker threads (default: one per core).
    pub threads: usize,
    /// Bytes of a plain file per work item (default 4 MiB).
    pub chunk_size: usize,
    /// Map plain files into memory instead of reading them (default on; see `--no-mmap`).
    pub mmap: bool,
}

impl Default for SearchOptions {
    fn default() -> Self {
        let d = ScanOptions::default();
        SearchOptions {
            threads: d.threads,
            chunk_size: d.chunk_size,
            mmap: d.mmap,
        }
    }
}

/// One matching line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    /// Its time in microseconds since the Unix epoch (a line without a readable time takes the
    /// time of the line before it).
    pub timestamp: i64,
    /// The line as it is in the file, without its line terminator.
    pub text: Vec<u8>,
}

/// What a search found.
#[derive(Debug, Default)]
pub struct Found {
    /// The matching lines in time order. A line that another file already gave (the same
    /// bytes at the same time: one event written to two streams) is given once.
    pub lines: Vec<Match>,
    /// Lines that are not a JSON object (cut short, or not JSON): counted over every line of
    /// every input, so the same inputs give the same count whatever the query.
    pub malformed: u64,
    /// Candidate lines that looked like a JSON object but did not parse.
    pub invalid: u64,
    /// Inputs that could not be read, one message each.
    pub warnings: Vec<String>,
}

/// Searches files and directories (directories recursively for log files, rotated and `.gz`
/// ones included) and returns the matching lines in time order.
///
/// A path that does not exist is a warning in [`Found::warnings`]; the rest is searched.
pub fn search(paths: &[PathBuf], query: &Query, opts: &SearchOptions) -> Found {
    let mut warnings = Vec::new();
    let sources = engine::source::discover(paths, &mut warnings);
    let scan_opts = ScanOptions {
        threads: opts.threads.max(1),
        chunk_size: opts.chunk_size,
        mmap: opts.mmap,
        progress: false,
    };
    let results = scan::scan(&sources, &query.plan, &Lines, &scan_opts);
    let report = scan::Report::of(&sources, &results);
    warnings.extend(report.errors);
    Found {
        lines: to_matches(collect::merge_to_vec(results)),
        malformed: report.malformed,
        invalid: report.invalid,
        warnings,
    }
}

/// Runs a query over bytes in memory, as if they were one file.
pub fn search_bytes(data: &[u8], query: &Query) -> Found {
    let r = scan::scan_bytes(data, &query.plan, &Lines);
    Found {
        malformed: r.malformed,
        invalid: r.invalid,
        lines: to_matches(collect::merge_to_vec(vec![r])),
        warnings: Vec::new(),
    }
}

fn to_matches(v: Vec<(i64, Vec<u8>)>) -> Vec<Match> {
    v.into_iter()
        .map(|(timestamp, text)| Match { timestamp, text })
        .collect()
}
