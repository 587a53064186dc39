//! Output: one printer of log lines shared by `query`, `timeline` and `tail` (unchanged JSON, or
//! one readable line per log line with long values cut), colours, the pager, the progress bar.

use std::fmt::Write as _;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::process::{Child, ChildStdin, Command, Stdio};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;

use tracelight_schema::key;

use crate::engine::filter::{value_level, Level};

/// Keys shown in fixed places (or not at all) rather than as `key=value`: the schema's reserved
/// keys, except `error`, whose members are shown as `error.<member>=…`.
fn is_fixed_key(k: &str) -> bool {
    tracelight_schema::is_reserved(k) && k != tracelight_schema::key::ERROR
}

/// Values longer than this many characters are cut in human output (unless `--full`).
pub(crate) const CUT_AT: usize = 300;

/// ANSI styles (or nothing when colour is off), and where long values are cut.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Style {
    on: bool,
    cut: Option<usize>,
}

impl Style {
    /// Colours on or off; long values cut at [`CUT_AT`].
    #[cfg(test)]
    pub(crate) fn new(on: bool) -> Style {
        Style {
            on,
            cut: Some(CUT_AT),
        }
    }

    /// The style of a command's options: `--color`, `--full`.
    pub(crate) fn of(o: &crate::cli::OutputArgs) -> Style {
        Style {
            on: use_color(o.color),
            cut: (!o.full).then_some(CUT_AT),
        }
    }

    /// Appends `text`, cut at the limit with a marker saying how much was left out.
    pub(crate) fn push_cut(self, out: &mut String, text: &str) {
        out.push_str(cut(text, self.cut).0);
        self.marker(out, text);
    }

    fn marker(self, out: &mut String, text: &str) {
        let (kept, cut) = cut(text, self.cut);
        if cut {
            let more = text.len() - kept.len();
            self.dim(out, &format!("…[+{more} bytes, --full shows all]"));
        }
    }

    fn paint(self, out: &mut String, code: &str, text: &str) {
        if self.on {
            let _ = write!(out, "\x1b[{code}m{text}\x1b[0m");
        } else {
            out.push_str(text);
        }
    }

    /// Appends `text` dimmed.
    pub(crate) fn dim(self, out: &mut String, text: &str) {
        self.paint(out, "2", text);
    }

    /// Appends `text` in bold.
    pub(crate) fn bold(self, out: &mut String, text: &str) {
        self.paint(out, "1", text);
    }

    /// Appends `text` in cyan.
    pub(crate) fn cyan(self, out: &mut String, text: &str) {
        self.paint(out, "36", text);
    }

    /// Appends `text` in bold red.
    pub(crate) fn red(self, out: &mut String, text: &str) {
        self.paint(out, "1;31", text);
    }

    /// Appends `text` in green.
    pub(crate) fn green(self, out: &mut String, text: &str) {
        self.paint(out, "32", text);
    }

    /// Appends a level name, padded to five columns, in its colour.
    pub(crate) fn level(self, out: &mut String, level: Option<Level>, raw: &str) {
        let code = match level {
            Some(Level::Error) => "1;31",
            Some(Level::Warn) => "33",
            Some(Level::Info) => "32",
            Some(Level::Debug) => "34",
            Some(Level::Trace) => "35",
            None => "0",
        };
        self.paint(out, code, &format!("{raw:<5}"));
    }
}

/// Should stdout be coloured? `--color always/never`, else when stdout is a terminal and
/// `NO_COLOR` is not set (<https://no-color.org>).
pub(crate) fn use_color(choice: crate::cli::ColorChoice) -> bool {
    match choice {
        crate::cli::ColorChoice::Always => true,
        crate::cli::ColorChoice::Never => false,
        crate::cli::ColorChoice::Auto => {
            std::io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        }
    }
}

/// `text` cut to at most `limit` characters (at a character boundary), and whether it was cut.
fn cut(text: &str, limit: Option<usize>) -> (&str, bool) {
    match limit {
        Some(n) if text.len() > n => match text.char_indices().nth(n) {
            Some((i, _)) => (&text[..i], true),
            None => (text, false),
        },
        _ => (text, false),
    }
}

/// Writes a value the way `key=value` pairs show it: plain strings bare, others as JSON; cut
/// when long.
pub(crate) fn push_value(out: &mut String, style: Style, v: &Value) {
    match v {
        Value::String(s)
            if !s.is_empty()
                && !s
                    .chars()
                    .any(|c| c.is_whitespace() || c == '"' || c == '=' || c.is_control()) =>
        {
            style.push_cut(out, s)
        }
        other => style.push_cut(out, &other.to_string()),
    }
}

fn push_pair(out: &mut String, style: Style, key: &str, v: &Value) {
    out.push(' ');
    style.dim(out, &format!("{key}="));
    push_value(out, style, v);
}

/// Appends a message in bold, cut when long.
pub(crate) fn push_message(out: &mut String, style: Style, m: &Value) {
    let text = match m {
        Value::String(m) => std::borrow::Cow::Borrowed(m.as_str()),
        other => std::borrow::Cow::Owned(other.to_string()),
    };
    style.bold(out, cut(&text, style.cut).0);
    style.marker(out, &text);
}

/// Appends the `key=value` pairs of a line (fields not shown in a fixed place).
pub(crate) fn push_fields(out: &mut String, style: Style, obj: &serde_json::Map<String, Value>) {
    for (k, v) in obj {
        if is_fixed_key(k) {
            continue;
        }
        match (k.as_str(), v) {
            ("error", Value::Object(e)) => {
                for (ek, ev) in e {
                    push_pair(out, style, &format!("error.{ek}"), ev);
                }
            }
            _ => push_pair(out, style, k, v),
        }
    }
    if let Some(name) = obj
        .get(key::SPAN)
        .and_then(|s| s.get(key::SPAN_NAME))
        .filter(|_| !obj.contains_key("spans"))
    {
        push_pair(out, style, "span", name);
    } else if let Some(Value::Array(spans)) = obj.get(key::SPANS) {
        let path: Vec<&str> = spans
            .iter()
            .filter_map(|s| s.get(key::SPAN_NAME).and_then(Value::as_str))
            .collect();
        if !path.is_empty() {
            push_pair(out, style, "span", &Value::from(path.join(">")));
        }
    }
}

/// Formats one line for people:
/// `TIMESTAMP LEVEL service target: message key=value…`.
/// A line that does not parse is shown as it is.
pub(crate) fn human_line(out: &mut String, style: Style, line: &[u8]) {
    let v: Value = match crate::engine::preset::parse_line(line) {
        Some(v) => v,
        None => {
            style.push_cut(out, &String::from_utf8_lossy(line));
            return;
        }
    };
    let Some(obj) = v.as_object() else {
        style.push_cut(out, &String::from_utf8_lossy(line));
        return;
    };
    let s = |k: &str| obj.get(k).and_then(Value::as_str);
    style.dim(out, s(key::TIMESTAMP).unwrap_or("-"));
    out.push(' ');
    style.level(out, value_level(&v), s(key::LEVEL).unwrap_or("-"));
    if let Some(service) = s(key::SERVICE) {
        out.push(' ');
        style.cyan(out, service);
    }
    if let Some(target) = s(key::TARGET) {
        out.push(' ');
        style.dim(out, &format!("{target}:"));
    }
    out.push(' ');
    if let Some(m) = obj.get(key::MESSAGE) {
        push_message(out, style, m);
    }
    push_fields(out, style, obj);
}

/// A progress bar on stderr for long scans (hidden when stderr is not a terminal).
///
/// With a total (plain files: bytes of log), a bar and an estimate; without one (a `.gz` among
/// the inputs, whose uncompressed size is not known ahead), the bytes of log read and the rate.
pub(crate) fn progress_bar(total: Option<u64>) -> ProgressBar {
    let target = if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr_with_hz(10)
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(total, target);
    let template = if total.is_some() {
        "{spinner} [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} eta {eta}"
    } else {
        "{spinner} {binary_bytes} of log read, {binary_bytes_per_sec}"
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// Prints log lines: unchanged (`--json`), or one readable line each.
#[derive(Debug)]
pub(crate) struct LinePrinter {
    style: Style,
    json: bool,
    text: String,
}

impl LinePrinter {
    /// A printer for a command's output options.
    pub(crate) fn new(style: Style, json: bool) -> LinePrinter {
        LinePrinter {
            style,
            json,
            text: String::new(),
        }
    }

    /// Writes one line and its newline.
    pub(crate) fn print(&mut self, out: &mut impl Write, line: &[u8]) -> io::Result<()> {
        if self.json {
            out.write_all(line)?;
        } else {
            self.text.clear();
            human_line(&mut self.text, self.style, line);
            out.write_all(self.text.as_bytes())?;
        }
        out.write_all(b"\n")
    }
}

/// Where a command's output goes: a pager on a terminal, else stdout.
#[derive(Debug)]
pub(crate) enum Output {
    /// Straight to stdout.
    Stdout(BufWriter<io::StdoutLock<'static>>),
    /// Into a pager's stdin.
    Pager(Pager),
}

/// A running pager; dropping it closes its input and waits for it, so the terminal is left to
/// it until the person quits.
#[derive(Debug)]
pub(crate) struct Pager {
    child: Child,
    stdin: Option<BufWriter<ChildStdin>>,
    cmd: String,
}

impl Pager {
    /// Waits for the pager; an error when the shell could not find or run it (126, 127).
    fn could_run(&mut self) -> io::Result<()> {
        let status = self.child.wait()?;
        if matches!(status.code(), Some(126 | 127)) {
            return Err(io::Error::other(format!(
                "the pager `{}` could not run (exit code {}); --no-pager or TRACELIGHT_PAGER= \
                 writes to the terminal",
                self.cmd,
                status.code().unwrap_or(-1)
            )));
        }
        Ok(())
    }

    /// A write that failed: when the pager is gone (a broken pipe), whether it ever ran, so
    /// that a pager that could not run is said however soon it exited.
    fn failed(&mut self, e: io::Error) -> io::Error {
        if e.kind() != io::ErrorKind::BrokenPipe {
            return e;
        }
        if let Some(w) = self.stdin.take() {
            drop(w.into_inner());
        }
        match self.could_run() {
            Err(not_run) => not_run,
            Ok(()) => e,
        }
    }

    fn input(&mut self) -> io::Result<&mut BufWriter<ChildStdin>> {
        self.stdin
            .as_mut()
            .ok_or_else(|| io::Error::from(io::ErrorKind::BrokenPipe))
    }

    /// Closes the pager's input and waits for it. A pager that quit early (the rest of the
    /// output was not wanted) is fine; one that could not run is an error.
    fn close(&mut self) -> io::Result<()> {
        let Some(w) = self.stdin.take() else {
            return Ok(());
        };
        let flushed = w.into_inner().map(drop).map_err(|e| e.into_error());
        self.could_run()?;
        match flushed {
            Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(e),
            _ => Ok(()),
        }
    }
}

impl Drop for Pager {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

impl Output {
    /// Stdout, or a pager when stdout is a terminal and `--no-pager` was not given.
    ///
    /// The pager is `$TRACELIGHT_PAGER`, else `$PAGER`, else `less`; `less` gets `LESS=FRX`
    /// unless `LESS` is set, so it quits at once when the output fits on one screen, keeps
    /// colours and leaves the text on the screen (as git does). An empty value or `cat` turns
    /// paging off; a pager that cannot be started is skipped. While the pager runs, Ctrl-C is
    /// the pager's (it is ignored here, as git does), so the terminal is not left to a pager
    /// whose writer is gone.
    pub(crate) fn open(o: &crate::cli::OutputArgs) -> Output {
        let stdout = || Output::Stdout(BufWriter::with_capacity(1 << 16, io::stdout().lock()));
        if o.no_pager || !io::stdout().is_terminal() {
            return stdout();
        }
        let Some(cmd) = pager_command() else {
            return stdout();
        };
        // A plain command line is run directly, so a missing program is known at once (and
        // skipped); one with shell syntax goes through `sh -c`.
        let mut c = if cmd.contains(|c: char| "|&;<>()$`\\\"'*?[]#~=%{}".contains(c)) {
            let mut c = Command::new("sh");
            c.arg("-c").arg(&cmd);
            c
        } else {
            let mut words = cmd.split_whitespace();
            let mut c = Command::new(words.next().unwrap_or("less"));
            c.args(words);
            c
        };
        c.stdin(Stdio::piped());
        if std::env::var_os("LESS").is_none() {
            c.env("LESS", "FRX");
        }
        match c.spawn() {
            Ok(mut child) => match child.stdin.take() {
                Some(stdin) => {
                    ignore_interrupts();
                    Output::Pager(Pager {
                        child,
                        stdin: Some(BufWriter::with_capacity(1 << 16, stdin)),
                        cmd,
                    })
                }
                None => stdout(),
            },
            Err(_) => stdout(),
        }
    }

    /// Flushes, and waits for the pager to be closed.
    pub(crate) fn finish(self) -> io::Result<()> {
        match self {
            Output::Stdout(mut w) => w.flush(),
            Output::Pager(mut p) => p.close(),
        }
    }
}

/// Ignores SIGINT from here on: Ctrl-C while a pager shows the output goes to the pager.
fn ignore_interrupts() {
    // SAFETY: `signal` with `SIG_IGN` installs no handler; nothing in this program handles
    // SIGINT otherwise.
    #[allow(unsafe_code)]
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_IGN);
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Output::Stdout(w) => w.write(buf),
            Output::Pager(p) => {
                let r = p.input()?.write(buf);
                r.map_err(|e| p.failed(e))
            }
        }
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Output::Stdout(w) => w.write_all(buf),
            Output::Pager(p) => {
                let r = p.input()?.write_all(buf);
                r.map_err(|e| p.failed(e))
            }
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Output::Stdout(w) => w.flush(),
            Output::Pager(p) => {
                let r = p.input()?.flush();
                r.map_err(|e| p.failed(e))
            }
        }
    }
}

/// The pager to run, from `$TRACELIGHT_PAGER`, `$PAGER` or `less`; `None` when paging is off.
pub(crate) fn pager_command() -> Option<String> {
    let var = |k: &str| std::env::var(k).ok();
    let cmd = var("TRACELIGHT_PAGER")
        .or_else(|| var("PAGER"))
        .unwrap_or_else(|| "less".to_owned());
    let cmd = cmd.trim();
    if cmd.is_empty() || cmd == "cat" {
        None
    } else {
        Some(cmd.to_owned())
    }
}

/// A duration in microseconds for people, in the largest units that fit: `0.812ms`, `4.512ms`,
/// `12.345s`, `2m 18.0s`, `6h 2m 18.0s`, `3d 6h 2m 18.0s`.
pub(crate) fn human_duration(micros: i64) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    let us = micros.unsigned_abs();
    if us < 1_000_000 {
        return format!("{sign}{:.3}ms", us as f64 / 1000.0);
    }
    if us < 60_000_000 {
        return format!("{sign}{:.3}s", us as f64 / 1e6);
    }
    // Tenths of a second, rounded, then split into units.
    let tenths = (us + 50_000) / 100_000;
    let (s10, m) = (tenths % 600, tenths / 600);
    let (m, h) = (m % 60, m / 60);
    let (h, d) = (h % 24, h / 24);
    let secs = format!("{}.{}s", s10 / 10, s10 % 10);
    if d > 0 {
        format!("{sign}{d}d {h}h {m}m {secs}")
    } else if h > 0 {
        format!("{sign}{h}h {m}m {secs}")
    } else {
        format!("{sign}{m}m {secs}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(human_duration(0), "0.000ms");
        assert_eq!(human_duration(4_512), "4.512ms");
        assert_eq!(human_duration(12_345_678), "12.346s");
        assert_eq!(human_duration(138_000_000), "2m 18.0s");
        assert_eq!(human_duration(21_738_016_101), "6h 2m 18.0s");
        assert_eq!(
            human_duration(3 * 86_400_000_000 + 60_000_000),
            "3d 0h 1m 0.0s"
        );
        assert_eq!(human_duration(59_999_999), "60.000s");
        assert_eq!(human_duration(-4_512), "-4.512ms");
    }

    #[test]
    fn long_values_are_cut_with_a_marker() {
        let style = Style::new(false);
        let mut out = String::new();
        let long = "é".repeat(1000);
        style.push_cut(&mut out, &long);
        assert!(out.starts_with(&"é".repeat(CUT_AT)), "{out}");
        assert!(out.ends_with("…[+1400 bytes, --full shows all]"), "{out}");
        let mut whole = String::new();
        Style {
            on: false,
            cut: None,
        }
        .push_cut(&mut whole, &long);
        assert_eq!(whole, long);
    }
}
