//! Finding log files: directories walked recursively, rotated `.N` files and `.gz` archives.

use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};

/// One input file.
#[derive(Debug, Clone)]
pub(crate) struct Source {
    /// Where it is.
    pub(crate) path: PathBuf,
    /// Size on disk when it was listed (compressed size for `.gz`).
    pub(crate) size: u64,
    /// Is it gzip-compressed (by its magic bytes)?
    pub(crate) gz: bool,
    /// Read only this many bytes (a snapshot for `tail`); `None` reads to the end.
    pub(crate) limit: Option<u64>,
}

/// How a file name relates to rotation.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Generation {
    /// A dated archive: `app.log.2026-12-01T08-30-00-123456` (rotated by size at that time),
    /// `app.log.2026-11-21` (a period), `app.log.2026-11-21.2` (the third file of that period);
    /// sorted by the date text, then the counter.
    Dated(String, u64),
    /// A numbered backup `app.log.N`: higher is older.
    Numbered(std::cmp::Reverse<u64>),
    /// The live file.
    Live,
}

/// Splits a file name into its base (e.g. `app.log`) and its rotation generation.
pub(crate) fn rotation_of(name: &str) -> (String, Generation) {
    let name = name.strip_suffix(".gz").unwrap_or(name);
    // logrotate's `dateext`: `app.log-20260101`, or `app.log-2026-01-01` (dashes in the date).
    let dashed = name
        .match_indices('-')
        .map(|(i, _)| (&name[..i], &name[i + 1..]))
        .find(|(base, date)| is_log_base(base) && is_date(date));
    if let Some((base, date)) = dashed {
        return (base.to_owned(), Generation::Dated(date.to_owned(), 0));
    }
    // `<base>.<date>.<k>`: a further file of one period.
    if let Some((rest, k)) = name.rsplit_once('.') {
        if let Some((base, date)) = rest.rsplit_once('.') {
            let counter = !k.is_empty() && k.len() <= 6 && k.bytes().all(|b| b.is_ascii_digit());
            if counter && !base.is_empty() && is_date(date) {
                let k = k.parse().unwrap_or(0);
                return (base.to_owned(), Generation::Dated(date.to_owned(), k));
            }
        }
    }
    if let Some((base, suffix)) = name.rsplit_once('.') {
        if !base.is_empty() && !suffix.is_empty() {
            if suffix.bytes().all(|b| b.is_ascii_digit()) && suffix.len() <= 6 {
                if let Ok(n) = suffix.parse::<u64>() {
                    return (base.to_owned(), Generation::Numbered(std::cmp::Reverse(n)));
                }
            }
            if is_date(suffix) {
                return (base.to_owned(), Generation::Dated(suffix.to_owned(), 0));
            }
        }
    }
    (name.to_owned(), Generation::Live)
}

/// A date or time stamp in a rotated file's name: digits first, then digits, `-`, `_`, `T`.
fn is_date(s: &str) -> bool {
    s.len() >= 8
        && s.as_bytes()[0].is_ascii_digit()
        && s.bytes()
            .all(|b| b.is_ascii_digit() || b == b'-' || b == b'_' || b == b'T')
}

/// Is this the name of a rotated (not live) file?
pub(crate) fn is_rotated(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    name.ends_with(".gz") || rotation_of(&name).1 != Generation::Live
}

/// Does a name end the way a log file's base name does?
fn is_log_base(base: &str) -> bool {
    [".log", ".jsonl", ".ndjson", ".json"]
        .iter()
        .any(|s| base.len() > s.len() && base.ends_with(s))
}

/// Does a file found while walking a directory look like a log file?
fn looks_like_log(name: &str) -> bool {
    if name.starts_with('.') {
        return false;
    }
    let base = rotation_of(name).0;
    base.ends_with(".log")
        || base.ends_with(".jsonl")
        || base.ends_with(".ndjson")
        || base.ends_with(".json")
        || base.contains(".log.")
}

fn is_gzip(path: &Path) -> bool {
    let mut magic = [0u8; 2];
    File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && magic == [0x1f, 0x8b]
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>, warnings: &mut Vec<String>) {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            warnings.push(format!("{}: {e}", dir.display()));
            return;
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(ft) = entry.file_type() else { continue };
        if ft.is_dir() {
            if !name.starts_with('.') {
                walk(&path, out, warnings);
            }
        } else if looks_like_log(&name) && (ft.is_file() || path.is_file()) {
            out.push(path);
        }
    }
}

/// Lists the log files under `paths` (files as given, directories recursively), ordered so that,
/// within one directory and base name, older rotations come before newer ones.
///
/// A path that does not exist, and an unreadable directory, are reported in `warnings`; the
/// rest is listed.
pub(crate) fn discover(paths: &[PathBuf], warnings: &mut Vec<String>) -> Vec<Source> {
    let mut files = Vec::new();
    for p in paths {
        let meta = match fs::metadata(p) {
            Ok(m) => m,
            Err(e) => {
                warnings.push(format!("{}: {e}", p.display()));
                continue;
            }
        };
        if meta.is_dir() {
            walk(p, &mut files, warnings);
        } else {
            files.push(p.clone());
        }
    }
    files.sort_by_cached_key(|p| {
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let (base, generation) = rotation_of(&name);
        (p.parent().map(Path::to_path_buf), base, generation)
    });
    files.dedup();
    let mut out = Vec::with_capacity(files.len());
    for path in files {
        match fs::metadata(&path) {
            Ok(m) => out.push(Source {
                gz: is_gzip(&path),
                size: m.len(),
                path,
                limit: None,
            }),
            Err(e) => warnings.push(format!("{}: {e}", path.display())),
        }
    }
    out
}

/// The paths to search: those given, else `$LOG_DIR`, else the current directory; with words
/// saying where that was, for a message when nothing is found.
pub(crate) fn default_paths(given: &[PathBuf]) -> (Vec<PathBuf>, String) {
    if !given.is_empty() {
        let list: Vec<String> = given.iter().map(|p| p.display().to_string()).collect();
        return (given.to_vec(), format!("under {}", list.join(", ")));
    }
    match std::env::var_os("LOG_DIR") {
        Some(d) if !d.is_empty() => {
            let p = PathBuf::from(d);
            let how = format!("under LOG_DIR={}", p.display());
            (vec![p], how)
        }
        _ => (
            vec![PathBuf::from(".")],
            "in the current directory (no paths were given and LOG_DIR is not set)".to_owned(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_names() {
        assert_eq!(rotation_of("app.log").1, Generation::Live);
        assert_eq!(
            rotation_of("app.log.2"),
            ("app.log".into(), Generation::Numbered(std::cmp::Reverse(2)))
        );
        assert_eq!(
            rotation_of("app.log.3.gz"),
            ("app.log".into(), Generation::Numbered(std::cmp::Reverse(3)))
        );
        assert_eq!(
            rotation_of("app.log.2026-11-21.gz"),
            ("app.log".into(), Generation::Dated("2026-11-21".into(), 0))
        );
        assert!(rotation_of("app.log.3").1 < rotation_of("app.log.1").1);
        // The series as written today: by size, a time stamp; by period, the label then `.k`.
        let order = [
            "app.log.2026-11-21",
            "app.log.2026-11-21.1.gz",
            "app.log.2026-11-21.2",
            "app.log.2026-11-21.10",
            "app.log.2026-12-01T08-30-00-123456.gz",
            "app.log.2026-12-01T08-30-00-123457",
            "app.log",
        ];
        for w in order.windows(2) {
            let (a, b) = (rotation_of(w[0]), rotation_of(w[1]));
            assert_eq!(a.0, "app.log", "{}", w[0]);
            assert!(a.1 < b.1, "{} before {}", w[0], w[1]);
        }
        assert!(rotation_of("app.log.1").1 < rotation_of("app.log").1);
        assert!(looks_like_log("app.log.2026-11-21.gz"));
        assert!(looks_like_log("errors.log.1"));
        // logrotate's dateext names, and their order.
        assert!(looks_like_log("app.log-20260101"));
        assert!(looks_like_log("app.log-20260101.gz"));
        assert_eq!(
            rotation_of("app.log-2026-01-01.gz"),
            ("app.log".into(), Generation::Dated("2026-01-01".into(), 0))
        );
        assert!(rotation_of("app.log-20260101").1 < rotation_of("app.log-20260102").1);
        assert!(rotation_of("app.log-20260102").1 < rotation_of("app.log").1);
        assert_eq!(rotation_of("my-service.log").1, Generation::Live);
        assert!(!looks_like_log("notes.txt"));
    }
}
