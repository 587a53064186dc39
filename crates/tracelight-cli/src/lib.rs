//! The `tracelight` command: query, timeline, errors, slow and tail over tracelight's JSON logs.
//!
//! The binary is a thin `main` over [`run`]; the modules are public so the tests can reach the
//! scanner and the filters directly.
//!
//! Design in one paragraph: parsing every JSON line is the slow way to search logs, so the
//! scanner ([`scan`]) reads files in large chunks on every core, looks for *needles* in the raw
//! bytes (the request id, the field name, the value) with `memchr::memmem`, decides most lines
//! from the fixed layout tracelight writes (the timestamp is always the first key and 27 bytes
//! wide, the level always the second), and parses with `serde_json` only the lines that could
//! match. Every shortcut may only widen the set of candidate lines; the parse decides
//! ([`filter`] explains the rules). Matches from all files are merged in time order
//! ([`collect::merge`]).

// Library crates also keep their public surface reachable and debuggable (tests and examples
// are exempt: their `pub` items are for sibling modules).
#![warn(unreachable_pub, missing_debug_implementations)]

pub mod cli;
pub mod collect;
pub mod commands;
pub mod filter;
pub mod output;
pub mod scan;
pub mod source;
pub mod tail;
pub mod time;

use std::process::ExitCode;

use clap::Parser;

/// Did the command find anything? Decides the exit code (as grep does: 0 found, 1 not found).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Lines matched, or a report was printed.
    Found,
    /// Nothing matched.
    NotFound,
}

/// Parses the command line and runs the command. Returns the process exit code.
pub fn run() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match commands::dispatch(cli) {
        Ok(Outcome::Found) => ExitCode::SUCCESS,
        Ok(Outcome::NotFound) => ExitCode::from(1),
        Err(e) => {
            if is_broken_pipe(&e) {
                return ExitCode::SUCCESS;
            }
            eprintln!("tracelight: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
