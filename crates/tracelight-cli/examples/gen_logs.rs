//! Writes a realistic tracelight JSON log file of a given size, for benchmarks.
//!
//! ```text
//! cargo run --release -p tracelight-cli --example gen_logs -- 1GB /tmp/bench/app.log
//! ```
//!
//! The file holds requests across five services: app lines (mostly INFO and DEBUG, some WARN,
//! about 1% ERROR with fingerprints), one access line per request (about 2% with status 5xx) and
//! `span_closed` performance lines with `duration_ms`. Timestamps increase. The request id of a
//! request in the middle of the file is printed on stdout, so a benchmark can search for it.

use std::fs::File;
use std::io::{BufWriter, Write};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim().to_ascii_uppercase();
    let (num, mult) = if let Some(n) = s.strip_suffix("GB") {
        (n, 1u64 << 30)
    } else if let Some(n) = s.strip_suffix("MB") {
        (n, 1 << 20)
    } else if let Some(n) = s.strip_suffix("KB") {
        (n, 1 << 10)
    } else {
        (s.as_str(), 1)
    };
    num.trim()
        .parse::<f64>()
        .ok()
        .map(|n| (n * mult as f64) as u64)
}

fn timestamp(micros: i64) -> String {
    let secs = micros.div_euclid(1_000_000);
    let frac = micros.rem_euclid(1_000_000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // civil_from_days
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{frac:06}Z",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    )
}

const SERVICES: [&str; 5] = ["gateway", "shop", "billing", "inventory", "auth"];
const ROUTES: [(&str, &str); 6] = [
    ("GET", "/orders/{id}"),
    ("POST", "/orders"),
    ("GET", "/products"),
    ("POST", "/payments"),
    ("GET", "/users/{id}"),
    ("DELETE", "/sessions/{id}"),
];
const OPS: [&str; 6] = [
    "process_order",
    "charge_card",
    "reserve_stock",
    "load_user",
    "db.query",
    "render_invoice",
];
const ERRORS: [(&str, &str, &str, &str); 4] = [
    (
        "payment_failed",
        "PaymentError",
        "card declined",
        "9f3a1c2e5b7d4f60",
    ),
    (
        "db_timeout",
        "TimeoutError",
        "query timed out after 5000ms",
        "1b2c3d4e5f607182",
    ),
    (
        "stock_missing",
        "InventoryError",
        "sku \\\"X-1\\\" not found",
        "a0b1c2d3e4f50617",
    ),
    (
        "auth_denied",
        "AuthError",
        "token expired",
        "77aa88bb99cc00dd",
    ),
];

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(size), Some(path)) = (args.get(1).and_then(|s| parse_size(s)), args.get(2)) else {
        eprintln!("usage: gen_logs SIZE (e.g. 1GB, 200MB) OUT_FILE [SEED]");
        std::process::exit(2);
    };
    let seed = args
        .get(3)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x9E37_79B9_7F4A_7C15u64);
    let mut rng = Rng(seed | 1);
    let mut out = BufWriter::with_capacity(1 << 20, File::create(path)?);
    let mut written: u64 = 0;
    let mut t: i64 = 1_770_681_600_000_000; // 2026-02-10T00:00:00Z
    let mut sample_id = String::new();
    let mut req: u64 = 0;
    let mut line = String::with_capacity(1024);
    while written < size {
        req += 1;
        let id = format!(
            "{:08x}-{:04x}-7{:03x}-{:04x}-{:012x}",
            rng.next() as u32,
            rng.below(0x10000),
            rng.below(0x1000),
            0x8000 | rng.below(0x4000),
            rng.next() & 0xFFFF_FFFF_FFFF
        );
        if sample_id.is_empty() && written >= size / 2 {
            sample_id = id.clone();
        }
        let trace = format!("{:016x}{:016x}", rng.next(), rng.next());
        let user = 1000 + rng.below(50_000);
        let (method, route) = ROUTES[rng.below(ROUTES.len() as u64) as usize];
        let n_app = 3 + rng.below(6);
        let failing = rng.below(100) < 4;
        let start = t;
        for k in 0..n_app {
            t += 50 + rng.below(3000) as i64;
            let service = SERVICES[(k as usize + rng.below(2) as usize) % SERVICES.len()];
            let op = OPS[rng.below(OPS.len() as u64) as usize];
            let level = match rng.below(100) {
                0..=39 => "DEBUG",
                40..=93 => "INFO",
                _ => "WARN",
            };
            line.clear();
            let depth = 1 + rng.below(3);
            let mut spans = String::from("[{\"name\":\"request\",\"method\":\"");
            spans.push_str(method);
            spans.push_str("\"}");
            for d in 1..depth {
                spans.push_str(&format!(
                    ",{{\"name\":\"{}\",\"step\":{d}}}",
                    OPS[d as usize]
                ));
            }
            spans.push_str(&format!(",{{\"name\":\"{op}\"}}]"));
            let error_line = failing && k + 1 == n_app;
            if error_line {
                let (msg, ty, emsg, fp) = ERRORS[rng.below(ERRORS.len() as u64) as usize];
                line.push_str(&format!(
                    "{{\"timestamp\":\"{}\",\"level\":\"ERROR\",\"message\":\"{msg}\",\"target\":\"{service}::handler\",\"file\":\"src/handler.rs\",\"line\":{},\"service\":\"{service}\",\"env\":\"production\",\"host\":\"server-{}\",\"pid\":{},\"thread\":\"tokio-runtime-worker\",\"request_id\":\"{id}\",\"trace_id\":\"{trace}\",\"span_id\":\"{:016x}\",\"user_id\":{user},\"attempt\":{},\"span\":{{\"name\":\"{op}\"}},\"spans\":{spans},\"error\":{{\"type\":\"{ty}\",\"message\":\"{emsg}\",\"chain\":[\"{emsg}\",\"upstream returned 502\"]}},\"error_fingerprint\":\"{fp}\"}}\n",
                    timestamp(t),
                    10 + rng.below(400),
                    1 + rng.below(8),
                    1000 + rng.below(60_000),
                    rng.next(),
                    1 + rng.below(3),
                ));
            } else {
                line.push_str(&format!(
                    "{{\"timestamp\":\"{}\",\"level\":\"{level}\",\"message\":\"{op} step {k} done for order \\\"ord-{}\\\"\",\"target\":\"{service}::{op}\",\"file\":\"src/{op}.rs\",\"line\":{},\"service\":\"{service}\",\"env\":\"production\",\"host\":\"server-{}\",\"pid\":{},\"thread\":\"tokio-runtime-worker\",\"request_id\":\"{id}\",\"trace_id\":\"{trace}\",\"span_id\":\"{:016x}\",\"user_id\":{user},\"order_id\":\"ord-{}\",\"total\":{}.{:02},\"items\":{},\"span\":{{\"name\":\"{op}\",\"order_id\":\"ord-{}\"}},\"spans\":{spans}}}\n",
                    timestamp(t),
                    req,
                    10 + rng.below(400),
                    1 + rng.below(8),
                    1000 + rng.below(60_000),
                    rng.next(),
                    req,
                    rng.below(500),
                    rng.below(100),
                    1 + rng.below(9),
                    req
                ));
            }
            if rng.below(3) == 0 {
                t += 10 + rng.below(200) as i64;
                let busy = rng.below(200_000) as f64 / 1000.0;
                let idle = rng.below(50_000) as f64 / 1000.0;
                line.push_str(&format!(
                    "{{\"timestamp\":\"{}\",\"level\":\"INFO\",\"message\":\"span_closed\",\"target\":\"tracelight::timing\",\"service\":\"{service}\",\"env\":\"production\",\"host\":\"server-{}\",\"pid\":{},\"request_id\":\"{id}\",\"trace_id\":\"{trace}\",\"operation\":\"{op}\",\"duration_ms\":{:.3},\"busy_ms\":{busy:.3},\"idle_ms\":{idle:.3}}}\n",
                    timestamp(t),
                    1 + rng.below(8),
                    1000 + rng.below(60_000),
                    busy + idle,
                ));
            }
            out.write_all(line.as_bytes())?;
            written += line.len() as u64;
        }
        t += 20 + rng.below(500) as i64;
        let status = if failing {
            500 + rng.below(4)
        } else {
            match rng.below(100) {
                0..=84 => 200,
                85..=92 => 201,
                93..=96 => 404,
                _ => 400,
            }
        };
        line.clear();
        line.push_str(&format!(
            "{{\"timestamp\":\"{}\",\"level\":\"{}\",\"message\":\"request completed\",\"target\":\"tracelight::http\",\"service\":\"gateway\",\"env\":\"production\",\"host\":\"server-{}\",\"pid\":{},\"request_id\":\"{id}\",\"trace_id\":\"{trace}\",\"method\":\"{method}\",\"path\":\"{}\",\"route\":\"{route}\",\"status\":{status},\"duration_ms\":{:.3},\"request_bytes\":{},\"response_bytes\":{},\"client_ip\":\"10.0.{}.{}\",\"user_agent\":\"Mozilla/5.0 (X11; Linux x86_64) shop-client/2.3\",\"user_id\":{user}}}\n",
            timestamp(t),
            if status >= 500 { "ERROR" } else { "INFO" },
            1 + rng.below(8),
            1000 + rng.below(60_000),
            route.replace("{id}", &format!("{}", rng.below(100_000))),
            (t - start) as f64 / 1000.0,
            rng.below(4000),
            rng.below(200_000),
            rng.below(256),
            rng.below(256),
        ));
        out.write_all(line.as_bytes())?;
        written += line.len() as u64;
    }
    out.flush()?;
    println!("{sample_id}");
    Ok(())
}
