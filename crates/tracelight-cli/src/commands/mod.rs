//! The subcommands, one per file, over the shared engine and printer.

mod errors;
mod query;
mod report;
mod slow;
mod tail;
mod timeline;

use std::io::{self, IsTerminal};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Result;

use crate::cli::{Command, FilterArgs, OutputArgs};
use crate::engine::filter::{Filter, Level, QueryError, WhereExpr, ACCEPTED_LEVELS};
use crate::engine::scan::{self, Report, ScanOptions};
use crate::engine::source::{self, Source};
use crate::engine::time;
use crate::Outcome;

/// Runs a parsed command line.
pub(crate) fn dispatch(cli: crate::cli::Cli) -> Result<Outcome> {
    match cli.command {
        Command::Query(a) => query::query(a),
        Command::Timeline(a) => timeline::timeline(a),
        Command::Errors(a) => errors::errors(a),
        Command::Slow(a) => slow::slow(a),
        Command::Tail(a) => tail::tail(a),
        Command::Report(a) => report::report_command(a),
    }
}

/// Reads `--level`.
pub(crate) fn parse_level(s: &str) -> Result<Level, QueryError> {
    Level::parse(s).ok_or_else(|| QueryError {
        option: "--level".into(),
        message: format!("unknown level `{s}`"),
        input: s.into(),
        span: None,
        hint: Some(format!("accepted levels: {ACCEPTED_LEVELS}")),
    })
}

fn parse_time(option: &str, s: &str, now: i64) -> Result<i64, QueryError> {
    time::parse_time_arg(s, now).ok_or_else(|| QueryError {
        option: option.into(),
        message: format!("cannot read `{s}` as a time"),
        input: s.into(),
        span: None,
        hint: Some(
            "use a relative time (30s, 15m, 1h, 2d, 1w), `now`, or an absolute one \
             (2026-02-10T22:30:00Z or '2026-02-10 22:30:00', UTC unless an offset is given)"
                .into(),
        ),
    })
}

/// Turns the shared filter options (and `--level`) into filters.
pub(crate) fn build_filters(
    f: &FilterArgs,
    level: Option<&str>,
) -> Result<Vec<Filter>, QueryError> {
    let mut out = Vec::new();
    if let Some(id) = &f.request_id {
        out.push(Filter::Where(WhereExpr::string_eq(
            tracelight_schema::key::REQUEST_ID,
            id,
        )));
    }
    if let Some(svc) = &f.service {
        out.push(Filter::Where(WhereExpr::string_eq(
            tracelight_schema::key::SERVICE,
            svc,
        )));
    }
    if let Some(l) = level {
        out.push(Filter::MinLevel(parse_level(l)?));
    }
    let now = time::now_micros();
    let since = f
        .since
        .as_deref()
        .map(|s| parse_time("--since", s, now))
        .transpose()?;
    let until = f
        .until
        .as_deref()
        .map(|s| parse_time("--until", s, now))
        .transpose()?;
    if since.is_some() || until.is_some() {
        out.push(Filter::Time { since, until });
    }
    for w in &f.conditions {
        out.push(Filter::Where(WhereExpr::parse(w)?));
    }
    Ok(out)
}

/// Set when some input could not be read: the exit code is then 2 whatever was found.
static INPUT_FAILED: AtomicBool = AtomicBool::new(false);

/// Did some input fail to be read (a missing path, an unreadable file or directory)?
pub(crate) fn input_failed() -> bool {
    INPUT_FAILED.load(Ordering::Relaxed)
}

/// The files to read and how, for a command.
pub(crate) struct Prepared {
    /// The paths searched (those given, `$LOG_DIR`, or `.`).
    pub(crate) paths: Vec<PathBuf>,
    /// The log files found.
    pub(crate) sources: Vec<Source>,
    /// How to scan them.
    pub(crate) opts: ScanOptions,
}

/// Finds the files and the scan options for a command. Paths that cannot be read are warned
/// about on stderr (and make the exit code 2); `None` means there is nothing to read at all,
/// which has been said on stderr.
pub(crate) fn prepare(paths: &[PathBuf], output: &OutputArgs) -> Option<Prepared> {
    prepare_inner(paths, output, false)
}

/// [`prepare`] for `tail -f`, which waits for files to appear in a directory that has none yet.
pub(crate) fn prepare_to_follow(paths: &[PathBuf], output: &OutputArgs) -> Option<Prepared> {
    prepare_inner(paths, output, true)
}

fn prepare_inner(paths: &[PathBuf], output: &OutputArgs, wait: bool) -> Option<Prepared> {
    let (paths, how) = source::default_paths(paths);
    let mut warnings = Vec::new();
    let sources = source::discover(&paths, &mut warnings);
    warn(&warnings);
    if sources.is_empty() && wait && paths.iter().any(|p| p.is_dir()) {
        eprintln!("tracelight: no log files {how} yet; waiting for them");
    } else if sources.is_empty() {
        if warnings.is_empty() {
            eprintln!(
                "tracelight: nothing to read: no log files {how} \
                 (*.log, *.jsonl, *.ndjson, *.json, their rotated .N and dated files, and .gz)"
            );
        } else {
            eprintln!("tracelight: nothing to read {how}");
        }
        return None;
    }
    // Bytes of log, about: a `.gz` holds some eight times its size.
    let total: u64 = sources
        .iter()
        .map(|s| {
            if s.gz {
                s.size.saturating_mul(8)
            } else {
                s.size
            }
        })
        .sum();
    let mut opts = ScanOptions::default();
    if let Some(t) = output.threads {
        opts.threads = t.max(1);
    }
    opts.mmap = !output.no_mmap;
    opts.progress = io::stderr().is_terminal() && total >= 64 << 20;
    Some(Prepared {
        paths,
        sources,
        opts,
    })
}

/// Prints warnings about inputs, and remembers that some input failed.
pub(crate) fn warn(warnings: &[String]) {
    for w in warnings {
        eprintln!("tracelight: warning: {w}");
    }
    if !warnings.is_empty() {
        INPUT_FAILED.store(true, Ordering::Relaxed);
    }
}

/// Prints the report of a scan (read errors, malformed lines) on stderr.
pub(crate) fn report<P>(sources: &[Source], results: &[scan::ItemResult<P>]) {
    let r = Report::of(sources, results);
    if !r.errors.is_empty() {
        INPUT_FAILED.store(true, Ordering::Relaxed);
    }
    r.print();
}
