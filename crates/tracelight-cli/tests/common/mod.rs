//! Test logs written the way tracelight writes them: one JSON object per line, `timestamp` first
//! (27 characters, UTC, microseconds), `level` second.

#![allow(dead_code, clippy::unwrap_used, missing_docs)]

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

/// 2026-02-10T22:30:00Z in microseconds.
pub const T0: i64 = 1_770_762_600_000_000;

pub fn ts(micros: i64) -> String {
    tracelight_cli::format_timestamp(micros)
}

/// One line: `timestamp`, `level`, then `fields` in the order given.
pub fn line(t: i64, level: &str, fields: &[(&str, Value)]) -> String {
    let mut s = format!("{{\"timestamp\":\"{}\",\"level\":\"{level}\"", ts(t));
    for (k, v) in fields {
        s.push(',');
        s.push_str(&serde_json::to_string(k).unwrap());
        s.push(':');
        s.push_str(&serde_json::to_string(v).unwrap());
    }
    s.push('}');
    s
}

/// A file of the generated tree: where it goes and its lines (raw bytes, one per line).
pub struct LogFile {
    pub rel: String,
    pub lines: Vec<Vec<u8>>,
    /// Write the last line without its newline.
    pub truncated_last: bool,
}

/// What was generated, for computing expected results.
pub struct Tree {
    pub dir: tempfile::TempDir,
    pub files: Vec<LogFile>,
    /// Request ids, one per request, in order.
    pub requests: Vec<String>,
    /// Number of malformed lines written: lines that are not `{…}` (plain text, a cut line).
    pub malformed: usize,
    /// Lines of the form `{…}` that are not valid JSON inside (invalid UTF-8).
    pub invalid: usize,
}

impl Tree {
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Every line of every file that parses as a JSON object.
    pub fn parsed(&self) -> Vec<(Vec<u8>, Value)> {
        let mut out = Vec::new();
        for f in &self.files {
            for l in &f.lines {
                if let Ok(v @ Value::Object(_)) = serde_json::from_slice::<Value>(l) {
                    out.push((l.clone(), v));
                }
            }
        }
        out
    }

    /// How many events satisfy `pred`: a line written to two files (an ERROR line in `app.log`
    /// and `errors.log`) is one event.
    pub fn count(&self, pred: impl Fn(&Value) -> bool) -> usize {
        let mut seen = std::collections::HashSet::new();
        self.parsed()
            .into_iter()
            .filter(|(l, v)| pred(v) && seen.insert(l.clone()))
            .count()
    }
}

fn write_file(root: &Path, f: &LogFile) {
    let path: PathBuf = root.join(&f.rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut bytes = Vec::new();
    for (i, l) in f.lines.iter().enumerate() {
        bytes.extend_from_slice(l);
        if !(f.truncated_last && i + 1 == f.lines.len()) {
            bytes.push(b'\n');
        }
    }
    if f.rel.ends_with(".gz") {
        let file = fs::File::create(&path).unwrap();
        let mut enc = flate2::write::GzEncoder::new(file, flate2::Compression::default());
        enc.write_all(&bytes).unwrap();
        enc.finish().unwrap();
    } else {
        fs::write(&path, bytes).unwrap();
    }
}

const OPS: [&str; 4] = ["process_order", "charge_card", "reserve_stock", "load_user"];

/// Generates a tree of logs from three services over `requests` requests:
///
/// - `shop/app.log.2`, `shop/app.log.1`, `shop/app.log` (rotated by size: the request stream is
///   cut in three, oldest first);
/// - `billing/app.log.3.gz`, `billing/app.log.2026-02-09.gz`, `billing/app.log` (compressed);
/// - `gateway/access.log` (one access line per request), `gateway/errors.log`;
/// - malformed lines: plain text, invalid UTF-8, and a truncated last line in `shop/app.log`.
///
/// Every fourth request fails: it has a WARN, then an ERROR with an error fingerprint, and a
/// 5xx access line.
pub fn generate(requests: usize) -> Tree {
    let dir = tempfile::tempdir().unwrap();
    let mut shop: Vec<Vec<u8>> = Vec::new();
    let mut billing: Vec<Vec<u8>> = Vec::new();
    let mut access: Vec<Vec<u8>> = Vec::new();
    let mut errors: Vec<Vec<u8>> = Vec::new();
    let mut ids = Vec::new();
    let mut malformed = 0;
    let mut invalid = 0;
    for r in 0..requests {
        let id = format!("0193f2a4-7c1e-7cc2-9a3b-{r:012x}");
        ids.push(id.clone());
        let start = T0 + (r as i64) * 10_000;
        let user = 100 + (r % 7) as i64;
        let failing = r % 4 == 3;
        let op = OPS[r % OPS.len()];
        let base = |svc: &str| {
            vec![
                ("target", json!(format!("{svc}::orders"))),
                ("file", json!("src/orders.rs")),
                ("line", json!(42)),
                ("service", json!(svc)),
                ("request_id", json!(id)),
                ("user_id", json!(user)),
            ]
        };
        let mut f = base("shop");
        f.insert(0, ("message", json!("request received")));
        f.push(("spans", json!([{"name": "request", "method": "POST"}])));
        shop.push(line(start, "INFO", &f).into_bytes());

        let mut f = base("shop");
        f.insert(0, ("message", json!(format!("order \"{r}\" created"))));
        f.push(("order_id", json!(format!("ord-{r}"))));
        f.push(("total", json!(10.5 + r as f64)));
        f.push(("span", json!({"name": op, "order_id": format!("ord-{r}")})));
        f.push((
            "spans",
            json!([{"name": "request"}, {"name": op, "order_id": format!("ord-{r}")}]),
        ));
        shop.push(line(start + 1_200, "DEBUG", &f).into_bytes());

        let mut f = base("billing");
        f.insert(0, ("message", json!("charging card")));
        f.push(("span", json!({"name": "charge_card"})));
        billing.push(line(start + 2_000, "INFO", &f).into_bytes());

        let mut f = base("billing");
        f.insert(0, ("message", json!("span_closed")));
        f.push(("operation", json!("charge_card")));
        f.push(("duration_ms", json!(5.0 + (r % 10) as f64 * 3.0)));
        f.push(("busy_ms", json!(1.5)));
        billing.push(line(start + 3_000, "INFO", &f).into_bytes());

        if failing {
            let mut f = base("billing");
            f.insert(0, ("message", json!("retrying gateway")));
            billing.push(line(start + 3_500, "WARN", &f).into_bytes());
            let mut f = base("billing");
            let kind = (r / 4) % 2;
            f.insert(
                0,
                (
                    "message",
                    json!(if kind == 0 {
                        "payment_failed"
                    } else {
                        "db_timeout"
                    }),
                ),
            );
            f.push(("span", json!({"name": "charge_card"})));
            f.push((
                "error",
                json!({"type": if kind == 0 {"PaymentError"} else {"TimeoutError"},
                       "message": "card declined", "chain": ["card declined", "gateway 402"]}),
            ));
            f.push((
                "error_fingerprint",
                json!(if kind == 0 {
                    "9f3a1c2e5b7d4f60"
                } else {
                    "1b2c3d4e5f607182"
                }),
            ));
            let l = line(start + 4_000, "ERROR", &f).into_bytes();
            billing.push(l.clone());
            errors.push(l);
        }
        let status = if failing {
            502
        } else if r % 5 == 0 {
            404
        } else {
            200
        };
        access.push(
            line(
                start + 5_000,
                if failing { "ERROR" } else { "INFO" },
                &[
                    ("message", json!("request completed")),
                    ("target", json!("tracelight::http")),
                    ("service", json!("gateway")),
                    ("request_id", json!(id)),
                    ("method", json!("POST")),
                    ("path", json!(format!("/orders/{r}"))),
                    ("route", json!("/orders/{id}")),
                    ("status", json!(status)),
                    ("duration_ms", json!(5.0 + r as f64 * 0.5)),
                    ("request_bytes", json!(120)),
                    ("response_bytes", json!(2048)),
                    ("client_ip", json!("10.0.0.1")),
                    ("user_agent", json!("curl/8.5")),
                ],
            )
            .into_bytes(),
        );
    }
    // Malformed lines in the middle of files.
    let mid = shop.len() / 2;
    shop.insert(mid, b"this is not json at all".to_vec());
    malformed += 1;
    let mid = billing.len() / 3;
    let mut bad = line(T0, "INFO", &[("message", json!("x"))]).into_bytes();
    bad.splice(30..30, [0xff, 0xfe]); // invalid UTF-8 inside the timestamp string
    billing.insert(mid, bad);
    invalid += 1;
    let mut bad = line(T0 + 3, "INFO", &[("message", json!("caf"))]).into_bytes();
    let at = bad.len() - 3;
    bad.splice(at..at, [0xc3]); // invalid UTF-8 inside a string value
    access.insert(access.len() / 2, bad);
    invalid += 1;

    let cut = |v: &mut Vec<Vec<u8>>, parts: usize| -> Vec<Vec<Vec<u8>>> {
        let n = v.len().div_ceil(parts);
        v.chunks(n.max(1)).map(<[Vec<u8>]>::to_vec).collect()
    };
    let shop_parts = cut(&mut shop, 3);
    let billing_parts = cut(&mut billing, 3);
    let mut files = vec![];
    let shop_names = ["shop/app.log.2", "shop/app.log.1", "shop/app.log"];
    for (i, p) in shop_parts.into_iter().enumerate() {
        files.push(LogFile {
            rel: shop_names[i].into(),
            lines: p,
            truncated_last: false,
        });
    }
    let billing_names = [
        "billing/app.log.3.gz",
        "billing/app.log.2026-02-09.gz",
        "billing/app.log",
    ];
    for (i, p) in billing_parts.into_iter().enumerate() {
        files.push(LogFile {
            rel: billing_names[i].into(),
            lines: p,
            truncated_last: false,
        });
    }
    // A truncated last line: the writer was cut off mid-line.
    if let Some(f) = files.iter_mut().find(|f| f.rel == "shop/app.log") {
        let full = line(
            T0 + (requests as i64) * 10_000,
            "ERROR",
            &[("message", json!("cut"))],
        );
        f.lines.push(full.as_bytes()[..full.len() / 2].to_vec());
        f.truncated_last = true;
        malformed += 1;
    }
    files.push(LogFile {
        rel: "gateway/access.log".into(),
        lines: access,
        truncated_last: false,
    });
    files.push(LogFile {
        rel: "gateway/errors.log".into(),
        lines: errors,
        truncated_last: false,
    });
    for f in &files {
        write_file(dir.path(), f);
    }
    // Not a log file: must be ignored when walking the directory.
    fs::write(dir.path().join("README.txt"), "not logs\n").unwrap();
    Tree {
        dir,
        files,
        requests: ids,
        malformed,
        invalid,
    }
}
