//! Human output: one readable line per log line, coloured on a terminal; the progress bar.

use std::fmt::Write as _;
use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;

use crate::filter::{value_level, Level};

/// Keys shown in fixed places (or not at all) rather than as `key=value`: the schema's reserved
/// keys, except `error`, whose members are shown as `error.<member>=…`.
fn is_fixed_key(k: &str) -> bool {
    tracelight_schema::is_reserved(k) && k != tracelight_schema::key::ERROR
}

/// ANSI styles, or nothing when colour is off.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    on: bool,
}

impl Style {
    /// Colours on or off.
    pub fn new(on: bool) -> Style {
        Style { on }
    }

    /// Is colour on?
    pub fn enabled(self) -> bool {
        self.on
    }

    fn paint(self, out: &mut String, code: &str, text: &str) {
        if self.on {
            let _ = write!(out, "\x1b[{code}m{text}\x1b[0m");
        } else {
            out.push_str(text);
        }
    }

    /// Appends `text` dimmed.
    pub fn dim(self, out: &mut String, text: &str) {
        self.paint(out, "2", text);
    }

    /// Appends `text` in bold.
    pub fn bold(self, out: &mut String, text: &str) {
        self.paint(out, "1", text);
    }

    /// Appends `text` in cyan.
    pub fn cyan(self, out: &mut String, text: &str) {
        self.paint(out, "36", text);
    }

    /// Appends `text` in bold red.
    pub fn red(self, out: &mut String, text: &str) {
        self.paint(out, "1;31", text);
    }

    /// Appends `text` in green.
    pub fn green(self, out: &mut String, text: &str) {
        self.paint(out, "32", text);
    }

    /// Appends a level name, padded to five columns, in its colour.
    pub fn level(self, out: &mut String, level: Option<Level>, raw: &str) {
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
pub fn use_color(choice: crate::cli::ColorChoice) -> bool {
    match choice {
        crate::cli::ColorChoice::Always => true,
        crate::cli::ColorChoice::Never => false,
        crate::cli::ColorChoice::Auto => {
            std::io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        }
    }
}

/// Writes a value the way `key=value` pairs show it: plain strings bare, others as JSON.
pub fn push_value(out: &mut String, v: &Value) {
    match v {
        Value::String(s)
            if !s.is_empty()
                && !s
                    .chars()
                    .any(|c| c.is_whitespace() || c == '"' || c == '=' || c.is_control()) =>
        {
            out.push_str(s)
        }
        other => out.push_str(&other.to_string()),
    }
}

fn push_pair(out: &mut String, style: Style, key: &str, v: &Value) {
    out.push(' ');
    style.dim(out, &format!("{key}="));
    push_value(out, v);
}

/// Appends the `key=value` pairs of a line (fields not shown in a fixed place).
pub fn push_fields(out: &mut String, style: Style, obj: &serde_json::Map<String, Value>) {
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
        .get("span")
        .and_then(|s| s.get("name"))
        .filter(|_| !obj.contains_key("spans"))
    {
        push_pair(out, style, "span", name);
    } else if let Some(Value::Array(spans)) = obj.get("spans") {
        let path: Vec<&str> = spans
            .iter()
            .filter_map(|s| s.get("name").and_then(Value::as_str))
            .collect();
        if !path.is_empty() {
            push_pair(out, style, "span", &Value::from(path.join(">")));
        }
    }
}

/// Formats one line for people:
/// `TIMESTAMP LEVEL service target: message key=value…`.
/// A line that does not parse is shown as it is.
pub fn human_line(out: &mut String, style: Style, line: &[u8]) {
    let v: Value = match serde_json::from_slice(line) {
        Ok(v) => v,
        Err(_) => {
            out.push_str(&String::from_utf8_lossy(line));
            return;
        }
    };
    let Some(obj) = v.as_object() else {
        out.push_str(&String::from_utf8_lossy(line));
        return;
    };
    let s = |k: &str| obj.get(k).and_then(Value::as_str);
    style.dim(out, s("timestamp").unwrap_or("-"));
    out.push(' ');
    style.level(out, value_level(&v), s("level").unwrap_or("-"));
    if let Some(service) = s("service") {
        out.push(' ');
        style.cyan(out, service);
    }
    if let Some(target) = s("target") {
        out.push(' ');
        style.dim(out, &format!("{target}:"));
    }
    out.push(' ');
    match obj.get("message") {
        Some(Value::String(m)) => style.bold(out, m),
        Some(other) => style.bold(out, &other.to_string()),
        None => {}
    }
    push_fields(out, style, obj);
}

/// A progress bar on stderr for long scans (hidden when stderr is not a terminal).
pub fn progress_bar(total: u64) -> ProgressBar {
    let target = if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr_with_hz(10)
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(Some(total), target);
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} eta {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}
