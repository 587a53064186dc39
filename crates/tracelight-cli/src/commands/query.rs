//! `tracelight query`: the matching lines, merged in time order.

use std::io::Write;

use anyhow::Result;

use super::{build_filters, prepare, report};
use crate::cli::QueryArgs;
use crate::engine::collect::{self, Count, DistinctCount, Lines};
use crate::engine::filter::Plan;
use crate::engine::scan;
use crate::printer::{LinePrinter, Output, Style};
use crate::Outcome;

pub(crate) fn query(a: QueryArgs) -> Result<Outcome> {
    let filters = build_filters(&a.filters, a.level.as_deref())?;
    let Some(p) = prepare(&a.paths, &a.output) else {
        if a.count {
            // Scripts read the number: nothing to read is none.
            writeln!(std::io::stdout().lock(), "0")?;
        }
        return Ok(Outcome::NothingToRead);
    };
    let plan = Plan::new(filters);
    if a.count {
        // With several files, a line written to two streams counts once.
        let n = if p.sources.len() > 1 {
            let results = scan::scan(&p.sources, &plan, &DistinctCount, &p.opts);
            report(&p.sources, &results);
            collect::count_distinct(results)
        } else {
            let results = scan::scan(&p.sources, &plan, &Count, &p.opts);
            report(&p.sources, &results);
            results.iter().map(|r| r.part).sum()
        };
        writeln!(std::io::stdout().lock(), "{n}")?;
        return Ok(if n > 0 {
            Outcome::Found
        } else {
            Outcome::NotFound
        });
    }
    let results = scan::scan(&p.sources, &plan, &Lines, &p.opts);
    report(&p.sources, &results);
    let mut printer = LinePrinter::new(Style::of(&a.output), a.json);
    let limit = a.limit.unwrap_or(usize::MAX);
    let mut found = false;
    if a.newest_first {
        let lines = collect::merge_to_vec(results);
        found = !lines.is_empty();
        let mut out = Output::open(&a.output);
        for (_, line) in lines.iter().rev().take(limit) {
            printer.print(&mut out, line)?;
        }
        out.finish()?;
    } else {
        let mut out = Output::open(&a.output);
        let mut printed = 0usize;
        collect::merge(results, |_, line| -> std::io::Result<()> {
            found = true;
            if printed < limit {
                printed += 1;
                printer.print(&mut out, line)?;
            }
            Ok(())
        })?;
        out.flush()?;
        out.finish()?;
    }
    Ok(if found {
        Outcome::Found
    } else {
        Outcome::NotFound
    })
}
