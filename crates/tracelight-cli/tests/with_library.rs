//! Logs written by the tracelight library itself, read back with the `tracelight` command.

#![allow(clippy::unwrap_used, missing_docs)]

#[path = "../../tracelight/tests/browser_support/mod.rs"]
mod browser_support;

use std::fs;
use std::io::Write;

use assert_cmd::Command;
use serde_json::Value;

/// Two services log requests through the real library; the lines are split into rotated files.
fn write_logs(dir: &std::path::Path) -> Vec<Value> {
    write_logs_in(dir, tracelight::Schema::Default)
}

/// [`write_logs`] in a schema preset.
fn write_logs_in(dir: &std::path::Path, schema: tracelight::Schema) -> Vec<Value> {
    let mut all = Vec::new();
    for service in ["shop", "billing"] {
        let w = tracelight::sink::MemoryWriter::new();
        {
            let _g = tracelight::builder()
                .service(service)
                .schema(schema)
                .gcp_project("shop-prod")
                .span_list(true)
                .writer(w.clone())
                .init_local()
                .unwrap();
            for r in 0..12u32 {
                let id = format!("req-{r:04}");
                let request = tracing::info_span!("request", request_id = %id, method = "POST");
                let _e = request.enter();
                tracing::info!(user_id = 7 + u64::from(r % 3), "request received");
                {
                    let charge = tracing::info_span!("charge_card", order_id = "ord-1");
                    let _c = charge.enter();
                    if r % 4 == 3 && service == "billing" {
                        tracing::warn!(attempt = 2, "retrying gateway");
                        let err = std::io::Error::other("card \"declined\"");
                        tracing::error!(
                            error = &err as &(dyn std::error::Error + 'static),
                            "payment_failed"
                        );
                    } else {
                        tracing::debug!(total = 99.5, "charged");
                    }
                }
                tracing::info!(status = 200u64, duration_ms = 3.5 + f64::from(r), "done");
            }
        }
        let text = w.contents();
        let lines: Vec<&str> = text.lines().collect();
        for l in &lines {
            all.push(serde_json::from_str::<Value>(l).unwrap());
        }
        // Rotated: the first half in app.log.1.gz, the second in app.log.
        let half = lines.len() / 2;
        let sub = dir.join(service);
        fs::create_dir_all(&sub).unwrap();
        let mut gz = flate2::write::GzEncoder::new(
            fs::File::create(sub.join("app.log.1.gz")).unwrap(),
            flate2::Compression::fast(),
        );
        for l in &lines[..half] {
            writeln!(gz, "{l}").unwrap();
        }
        gz.finish().unwrap();
        let mut rest = String::new();
        for l in &lines[half..] {
            rest.push_str(l);
            rest.push('\n');
        }
        fs::write(sub.join("app.log"), rest).unwrap();
    }
    all
}

#[test]
fn reads_what_the_library_writes() {
    let dir = tempfile::tempdir().unwrap();
    let all = write_logs(dir.path());
    assert!(all
        .iter()
        .all(|v| v["timestamp"].as_str().is_some_and(|t| t.len() == 27)));

    let count = |args: &[&str]| -> usize {
        let out = Command::cargo_bin("tracelight")
            .unwrap()
            .arg("query")
            .arg("--count")
            .args(args)
            .arg(dir.path())
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    };
    assert_eq!(count(&[]), all.len());
    let id = "req-0003";
    let of_request = all.iter().filter(|v| v["request_id"] == id).count();
    assert_eq!(of_request, 6, "request id on every line of the request");
    assert_eq!(count(&["--request-id", id]), of_request);
    assert_eq!(
        count(&["--level", "warn"]),
        all.iter()
            .filter(|v| v["level"] == "WARN" || v["level"] == "ERROR")
            .count()
    );
    assert_eq!(
        count(&["--where", "user_id = 8"]),
        all.iter().filter(|v| v["user_id"] == 8).count()
    );

    let out = Command::cargo_bin("tracelight")
        .unwrap()
        .args(["timeline", id, "--color", "never"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    let body: Vec<&str> = text.lines().skip(1).collect();
    assert_eq!(body.len(), of_request, "{text}");
    assert!(
        text.lines().next().unwrap().contains("2 services"),
        "{text}"
    );
    let err = body
        .iter()
        .position(|l| l.contains("payment_failed"))
        .unwrap();
    let good = body.iter().position(|l| l.contains("last good ►")).unwrap();
    assert!(good < err, "{text}");
}

/// What each command finds in lines written in a schema preset: the same as in the default
/// schema's lines of the same events.
#[test]
fn every_command_reads_every_schema_preset() {
    fn run(dir: &std::path::Path, args: &[&str]) -> String {
        let out = Command::cargo_bin("tracelight")
            .unwrap()
            .args(args)
            .args(["--color", "never"])
            .arg(dir)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
    /// What a command's output says, less the times (each run has its own).
    fn answers(dir: &std::path::Path) -> Vec<String> {
        let mut out = Vec::new();
        for args in [
            &["query", "--count"][..],
            &["query", "--count", "--request-id", "req-0003"],
            &["query", "--count", "--level", "warn"],
            &["query", "--count", "--where", "user_id = 8"],
            &["query", "--count", "--where", "service = billing"],
            &["query", "--count", "--where", "error.type = Custom"],
        ] {
            out.push(format!("{args:?}: {}", run(dir, args).trim()));
        }
        let errors: Vec<Value> = run(dir, &["errors", "--json"])
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        for e in &errors {
            out.push(format!(
                "errors: {} {} {} {}",
                e["count"], e["message"], e["target"], e["services"]
            ));
        }
        let slow: Value = serde_json::from_str(&run(dir, &["slow", "--json"])).unwrap();
        out.push(format!("slow: {}", slow["operations"]));
        for l in run(dir, &["timeline", "req-0003"]).lines() {
            // Times and offsets (`+12.3ms`, `(2.5ms)`) differ from run to run.
            let words = l
                .split_whitespace()
                .filter(|w| !(w.starts_with('+') || w.starts_with('(') || w.starts_with("20")));
            out.push(words.collect::<Vec<_>>().join(" "));
        }
        out
    }
    let default_dir = tempfile::tempdir().unwrap();
    write_logs(default_dir.path());
    let want = answers(default_dir.path());
    assert!(want.iter().any(|l| l.starts_with("errors: 3")), "{want:#?}");
    assert!(
        want.iter().any(|l| l.contains("payment_failed")),
        "{want:#?}"
    );
    for schema in [
        tracelight::Schema::Ecs,
        tracelight::Schema::Gcp,
        tracelight::Schema::Datadog,
        tracelight::Schema::Otel,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let lines = write_logs_in(dir.path(), schema);
        assert!(
            lines[0].get(schema.level_key()).is_some(),
            "{schema}: {}",
            lines[0]
        );
        let got = answers(dir.path());
        assert_eq!(got, want, "{schema}");
    }
}

/// Access lines written by the library's http layer: `slow` groups them by route and method,
/// not by the request span's name.
#[test]
fn slow_groups_the_http_layers_access_lines_by_route() {
    use tower::{Layer, ServiceExt};
    let dir = tempfile::tempdir().unwrap();
    let w = tracelight::sink::MemoryWriter::new();
    {
        let _g = tracelight::builder()
            .service("shop")
            .writer(w.clone())
            .init_local()
            .unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let handler = tower::service_fn(|_req: http::Request<String>| async {
            Ok::<_, std::convert::Infallible>(http::Response::new(String::from("ok")))
        });
        // The route template, as a router would give it.
        let svc = tracelight::http::RequestLayer::new()
            .route_with(|parts| {
                let p = parts.uri.path();
                Some(if p.starts_with("/orders/") {
                    "/orders/{id}".into()
                } else {
                    p.to_owned()
                })
            })
            .layer(handler);
        for i in 0..30 {
            let (method, path) = if i % 3 == 0 {
                ("POST", "/checkout".to_owned())
            } else {
                ("GET", format!("/orders/{i}"))
            };
            let req = http::Request::builder()
                .method(method)
                .uri(path)
                .body(String::new())
                .unwrap();
            drop(rt.block_on(svc.clone().oneshot(req)).unwrap());
        }
    }
    fs::write(dir.path().join("access.log"), w.contents()).unwrap();
    let out = Command::cargo_bin("tracelight")
        .unwrap()
        .args(["slow", "--json"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let ops: Vec<(&str, u64)> = v["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["operation"].as_str().unwrap(),
                o["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert!(ops.contains(&("GET /orders/{id}", 20)), "{ops:?}");
    assert!(ops.contains(&("POST /checkout", 10)), "{ops:?}");
}

/// The error tracker's suppressed repeats are in `errors`' answer, and `--json` gives the
/// sample line byte for byte.
#[test]
fn errors_counts_the_repeats_the_tracker_suppressed() {
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    let w = tracelight::sink::MemoryWriter::new();
    {
        let g = tracelight::builder()
            .service("shop")
            .errors(
                tracelight::errors::ErrorConfig::default()
                    .suppress_after(3, Duration::from_secs(60)),
            )
            .writer(w.clone())
            .init_local()
            .unwrap();
        for i in 0..10u64 {
            tracing::error!(attempt = i, "cache refresh failed");
        }
        g.flush();
    }
    let text = w.contents();
    fs::write(dir.path().join("app.log"), &text).unwrap();
    let out = Command::cargo_bin("tracelight")
        .unwrap()
        .args(["errors", "--json"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let v: Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
    assert_eq!(
        (v["count"].as_u64(), v["suppressed"].as_u64()),
        (Some(3), Some(7)),
        "{stdout}"
    );
    let last_error = text
        .lines()
        .rfind(|l| l.contains("\"level\":\"ERROR\""))
        .unwrap();
    assert!(
        stdout.contains(&format!("\"sample\":{last_error}")),
        "{stdout}"
    );
    let human = Command::cargo_bin("tracelight")
        .unwrap()
        .args(["errors", "--color", "never"])
        .arg(dir.path())
        .output()
        .unwrap();
    let human = String::from_utf8_lossy(&human.stdout);
    assert!(
        human.contains("(+7 repeats suppressed, not written)"),
        "{human}"
    );
    assert!(
        human.contains("3 ERROR lines (and 7 repeats suppressed) in 1 group"),
        "{human}"
    );
}

/// The flight recorder's lines of a failed request are in its timeline, in place by their own
/// timestamps, marked, and without the `replayed` field repeated among the fields.
#[test]
fn timeline_shows_the_flight_recorders_lines_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let w = tracelight::sink::MemoryWriter::new();
    {
        let g = tracelight::builder()
            .service("shop")
            .filter("info")
            .flight_recorder(tracelight::FlightRecorder::new().unit("request"))
            .writer(w.clone())
            .init_local()
            .unwrap();
        let request = tracing::info_span!("request", request_id = "req-fr-1");
        let _e = request.enter();
        tracing::info!("request received");
        tracing::debug!(rows = 0, "the query returned nothing");
        tracing::info!("retrying");
        tracing::error!("order lookup failed");
        g.flush();
    }
    let text = w.contents();
    fs::write(dir.path().join("app.log"), &text).unwrap();
    let out = Command::cargo_bin("tracelight")
        .unwrap()
        .args(["timeline", "req-fr-1", "--color", "never", "--no-pager"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let rows: Vec<&str> = stdout.lines().skip(1).collect();
    assert_eq!(rows.len(), 4, "{stdout}");
    // In the order they happened, the DEBUG line between the two INFO lines.
    assert!(rows[0].contains("request received"), "{stdout}");
    assert!(
        rows[1].starts_with("replayed ↺") && rows[1].contains("the query returned nothing"),
        "{stdout}"
    );
    assert!(
        !rows[1].contains("replayed=") && !rows[1].contains("replayed: "),
        "{stdout}"
    );
    assert!(
        rows[2].contains("retrying") && !rows[2].contains("replayed"),
        "{stdout}"
    );
    assert!(rows[3].contains("order lookup failed"), "{stdout}");
}

/// The JSON a report holds.
fn report_data(html: &str) -> Value {
    let start = html
        .find("<script type=\"application/json\" id=\"data\">")
        .unwrap();
    let rest = &html[start..];
    let body = &rest[rest.find('>').unwrap() + 1..rest.find("</script>").unwrap()];
    serde_json::from_str(body).unwrap()
}

/// `tracelight report` on two services' rotated and compressed files: its figures are those of
/// `errors` and `slow` on the same files; the slowest requests have their timelines across both
/// services; the HTML opens in a real headless Chromium with no error and no policy violation
/// (a screenshot goes to the test's output folder); `--request-id` makes it one request's.
#[tokio::test]
async fn report_holds_the_figures_of_errors_and_slow_and_opens_in_a_browser() {
    let dir = tempfile::tempdir().unwrap();
    let all = write_logs(dir.path());
    let out = dir.path().join("report.html");
    let run = |args: &[&str]| {
        Command::cargo_bin("tracelight")
            .unwrap()
            .args(args)
            .arg(dir.path().join("shop"))
            .arg(dir.path().join("billing"))
            .output()
            .unwrap()
    };
    let r = run(&["report", "-o", out.to_str().unwrap()]);
    assert_eq!(
        r.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    let html = fs::read_to_string(&out).unwrap();
    let data = report_data(&html);
    assert_eq!(data["total_lines"], all.len(), "each event once");
    let levels: u64 = data["levels"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|v| v.as_array().unwrap().iter().map(|n| n.as_u64().unwrap()))
        .sum();
    assert_eq!(levels as usize, all.len());

    let errors: Vec<Value> = String::from_utf8(run(&["errors", "--json"]).stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!errors.is_empty());
    let groups = data["errors"].as_array().unwrap();
    assert_eq!(groups.len(), errors.len());
    for (g, e) in groups.iter().zip(&errors) {
        for k in [
            "count",
            "suppressed",
            "fingerprint",
            "message",
            "target",
            "services",
            "first_seen",
            "last_seen",
        ] {
            assert_eq!(g[k], e[k], "{k}: {g} {e}");
        }
        let over_time: u64 = g["per_bucket"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_u64().unwrap())
            .sum();
        assert_eq!(over_time, g["count"].as_u64().unwrap());
    }
    let slow: Value = serde_json::from_slice(&run(&["slow", "--json"]).stdout).unwrap();
    let ops = data["operations"].as_array().unwrap();
    assert_eq!(ops.len(), slow["operations"].as_array().unwrap().len());
    for (o, s) in ops.iter().zip(slow["operations"].as_array().unwrap()) {
        for k in ["operation", "count", "p50", "p90", "p99", "max"] {
            assert_eq!(o[k], s[k], "{k}: {o} {s}");
        }
    }
    for (x, s) in data["slowest"]
        .as_array()
        .unwrap()
        .iter()
        .zip(slow["slowest"].as_array().unwrap())
    {
        assert_eq!(x["duration_ms"], s["duration_ms"]);
        assert_eq!(x["request_id"], s["request_id"]);
    }
    let timelines = data["timelines"].as_array().unwrap();
    assert!(!timelines.is_empty());
    for t in timelines {
        let id = t["request_id"].as_str().unwrap();
        let lines = all.iter().filter(|v| v["request_id"] == id).count();
        assert_eq!(t["lines"].as_array().unwrap().len(), lines, "{id}");
        assert_eq!(
            t["services"],
            serde_json::json!(["billing", "shop"]),
            "across services"
        );
    }

    let (_driver, url) = browser_support::chromedriver().await;
    let c = browser_support::browser(&url).await;
    c.goto(&format!("file://{}", out.display())).await.unwrap();
    browser_support::until(
        &c,
        "the report",
        "return document.body.dataset.rendered === 'true'",
    )
    .await;
    let problems = c
        .execute("return document.body.dataset.problems || '0'", vec![])
        .await
        .unwrap();
    assert_eq!(
        problems,
        Value::String("0".into()),
        "no script error, no policy violation"
    );
    let n = |sel: &str| format!("return document.querySelectorAll('{sel}').length");
    assert_eq!(
        c.execute(&n("#errors tr.group"), vec![]).await.unwrap(),
        errors.len()
    );
    assert_eq!(
        c.execute(&n("section.timeline svg.waterfall"), vec![])
            .await
            .unwrap(),
        timelines.len()
    );
    assert!(
        c.execute(&n("#slowest a[href^=\"#timeline-\"]"), vec![])
            .await
            .unwrap()
            .as_u64()
            .unwrap()
            >= 1
    );
    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("report");
    browser_support::screenshot(&c, &shots, "report.png").await;

    // Lines without a time, the report to standard output: no time axis (not one from 1970),
    // and it opens without an error.
    let untimed_dir = tempfile::tempdir().unwrap();
    let untimed_log = untimed_dir.path().join("app.log");
    fs::write(
        &untimed_log,
        "{\"level\":\"INFO\",\"message\":\"no time\"}\n",
    )
    .unwrap();
    let r = Command::cargo_bin("tracelight")
        .unwrap()
        .args(["report", "-o", "-"])
        .arg(&untimed_log)
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&r.stderr)
            .contains("(1 line from 1 file, 0 error groups, 0 timelines)"),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    let untimed = untimed_dir.path().join("r.html");
    fs::write(&untimed, &r.stdout).unwrap();
    assert!(report_data(&fs::read_to_string(&untimed).unwrap())["from"].is_null());
    c.goto(&format!("file://{}", untimed.display()))
        .await
        .unwrap();
    browser_support::until(
        &c,
        "the untimed report",
        "return document.body.dataset.rendered === 'true'",
    )
    .await;
    let levels = c
        .execute(
            "return [document.body.dataset.problems || '0', document.getElementById('levels').textContent]",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(levels[0], "0", "no script error");
    let text = levels[1].as_str().unwrap();
    assert!(text.contains("No lines with a readable time."), "{text}");
    assert!(!text.contains("1970"), "{text}");
    c.close().await.unwrap();

    // One request's report.
    let one = dir.path().join("one.html");
    let r = run(&[
        "report",
        "--request-id",
        "req-0003",
        "-o",
        one.to_str().unwrap(),
    ]);
    assert_eq!(r.status.code(), Some(0));
    let d = report_data(&fs::read_to_string(&one).unwrap());
    assert_eq!(d["request"], "req-0003");
    assert_eq!(d["timelines"][0]["request_id"], "req-0003");
    assert_eq!(
        d["total_lines"],
        all.iter().filter(|v| v["request_id"] == "req-0003").count()
    );

    // One service's report: its figures are that service's, and its timelines still have the
    // lines of both services.
    let shop = dir.path().join("shop.html");
    let r = run(&["report", "--service", "shop", "-o", shop.to_str().unwrap()]);
    assert_eq!(
        r.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    let d = report_data(&fs::read_to_string(&shop).unwrap());
    assert_eq!(
        d["total_lines"],
        all.iter().filter(|v| v["service"] == "shop").count()
    );
    let slow_shop: Value =
        serde_json::from_slice(&run(&["slow", "--service", "shop", "--json"]).stdout).unwrap();
    let slowest = d["slowest"].as_array().unwrap();
    assert!(!slowest.is_empty());
    assert_eq!(
        slowest.len(),
        slow_shop["slowest"].as_array().unwrap().len()
    );
    for (x, s) in slowest.iter().zip(slow_shop["slowest"].as_array().unwrap()) {
        assert_eq!(x["duration_ms"], s["duration_ms"]);
        assert_eq!(x["service"], "shop");
    }
    for t in d["timelines"].as_array().unwrap() {
        let id = t["request_id"].as_str().unwrap();
        let lines = all.iter().filter(|v| v["request_id"] == id).count();
        assert_eq!(t["lines"].as_array().unwrap().len(), lines, "{id}");
        assert_eq!(t["services"], serde_json::json!(["billing", "shop"]));
    }

    // The report may not replace a file it reads; its directory must exist.
    let input = dir.path().join("shop").join("app.log");
    let before = fs::read(&input).unwrap();
    let r = run(&["report", "-o", input.to_str().unwrap()]);
    assert_eq!(
        r.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    assert_eq!(
        fs::read(&input).unwrap(),
        before,
        "the log file is untouched"
    );
    let r = run(&[
        "report",
        "-o",
        dir.path().join("nodir/r.html").to_str().unwrap(),
    ]);
    assert_eq!(r.status.code(), Some(2));

    // Lines written by another writer, with a space after the colon, have their timeline too.
    let spaced = tempfile::tempdir().unwrap();
    fs::write(
        spaced.path().join("app.log"),
        concat!(
            r#"{"timestamp": "2026-02-10T22:30:00.000000Z", "level": "INFO", "message": "start", "request_id": "r-1"}"#,
            "\n",
            r#"{"timestamp": "2026-02-10T22:30:00.200000Z", "level": "INFO", "message": "done", "request_id": "r-1", "duration_ms": 200}"#,
            "\n"
        ),
    )
    .unwrap();
    let spaced_out = spaced.path().join("r.html");
    let r = Command::cargo_bin("tracelight")
        .unwrap()
        .args(["report", "-o", spaced_out.to_str().unwrap()])
        .arg(spaced.path().join("app.log"))
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(0));
    let d = report_data(&fs::read_to_string(&spaced_out).unwrap());
    assert_eq!(
        d["timelines"][0]["lines"].as_array().map(Vec::len),
        Some(2),
        "{d}"
    );

    // Lines laid out as tracelight writes them, one with its id escaped, are one timeline.
    let escaped = tempfile::tempdir().unwrap();
    fs::write(
        escaped.path().join("app.log"),
        concat!(
            r#"{"timestamp":"2026-02-10T22:30:00.000000Z","level":"INFO","message":"start","request_id":"r-\u0032"}"#,
            "\n",
            r#"{"timestamp":"2026-02-10T22:30:00.100000Z","level":"INFO","message":"other","request_id":"r-3"}"#,
            "\n",
            r#"{"timestamp":"2026-02-10T22:30:00.300000Z","level":"INFO","message":"done","request_id":"r-2","duration_ms":300}"#,
            "\n"
        ),
    )
    .unwrap();
    let escaped_out = escaped.path().join("r.html");
    let r = Command::cargo_bin("tracelight")
        .unwrap()
        .args(["report", "-o", escaped_out.to_str().unwrap()])
        .arg(escaped.path().join("app.log"))
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(0));
    let d = report_data(&fs::read_to_string(&escaped_out).unwrap());
    assert_eq!(d["timelines"][0]["request_id"], "r-2", "{d}");
    let messages: Vec<&str> = d["timelines"][0]["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["message"].as_str().unwrap())
        .collect();
    assert_eq!(messages, ["start", "done"], "{d}");

    // A time written in another form where tracelight writes its own is still the line's time,
    // with and without a filter on time.
    let offset_dir = tempfile::tempdir().unwrap();
    let offset_log = offset_dir.path().join("app.log");
    fs::write(
        &offset_log,
        concat!(
            r#"{"timestamp":"2026-02-10T23:30:00.1+01:00","level":"INFO","message":"a"}"#,
            "\n",
            r#"{"timestamp":"2026-02-10T22:31:00.000000Z","level":"INFO","message":"b"}"#,
            "\n"
        ),
    )
    .unwrap();
    for since in [None, Some("2026-02-10T22:00:00Z")] {
        let out = offset_dir.path().join("r.html");
        let mut cmd = Command::cargo_bin("tracelight").unwrap();
        cmd.args(["report", "-o", out.to_str().unwrap()]);
        if let Some(s) = since {
            cmd.args(["--since", s]);
        }
        let r = cmd.arg(&offset_log).output().unwrap();
        assert_eq!(r.status.code(), Some(0), "{since:?}");
        let d = report_data(&fs::read_to_string(&out).unwrap());
        assert_eq!(d["total_lines"], 2, "{since:?}");
        assert_eq!(d["from"], "2026-02-10T22:30:00.100000Z", "{since:?} {d}");
        let bucketed: u64 = d["levels"]["INFO"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_u64().unwrap())
            .sum();
        assert_eq!(bucketed, 2, "{since:?}");
    }
}
