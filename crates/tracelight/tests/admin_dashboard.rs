//! The admin dashboard in a real headless Chromium, driven over WebDriver: a wrong token gets no
//! page; the right one signs in and the charts fill from a real axum service's events; a logged
//! `<script>` is shown as text and never runs; the level form changes the service's filter; the
//! page runs under its Content-Security-Policy with no violation; a screenshot is written to the
//! test's output folder. Then the headers and the CSRF rule, over plain HTTP.
#![cfg(all(feature = "admin", feature = "http", feature = "axum"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod admin_support;
mod browser_support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use browser_support::{browser, chromedriver, screenshot, until};
use fantoccini::Locator;
use serde_json::Value;
use tracelight::http::RequestLayer;
use tracelight::sink::MemoryWriter;
use tracelight::{Format, Output, Stream};

const TOKEN: &str = "dashboard-test-token-9f8e7d6c5b4a";
/// A value an attacker gets into a log line: it must be shown, never run.
const HOSTILE: &str = "<img src=x onerror=\"window.__xss=1\"><script>window.__xss=2</script>";

/// The service: three routes behind the http layer, and the admin router.
async fn service() -> (SocketAddr, tracelight::Guard, MemoryWriter) {
    let lines = MemoryWriter::new();
    let guard = tracelight::builder()
        .service("shop")
        .format(Format::Json)
        .stream(Stream::new("app", Output::Writer(Arc::new(lines.clone()))))
        .timing(
            tracelight::timing::TimingConfig::default()
                .threshold_for("GET /slow", Duration::from_millis(20)),
        )
        .init()
        .expect("init");
    let admin = tracelight::admin::AdminRouter::new(guard.handle())
        .token(TOKEN)
        .build()
        .unwrap();
    let app = Router::new()
        .route(
            "/orders/{id}",
            get(|| async {
                tracing::info!("order found");
                "ok"
            }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(40)).await;
                "slow"
            }),
        )
        .route(
            "/fail",
            get(|| async {
                tracing::error!(note = HOSTILE, "payment failed: {HOSTILE}");
                (StatusCode::BAD_GATEWAY, "no")
            }),
        )
        .layer(RequestLayer::new())
        .merge(admin);
    (admin_support::serve(app).await, guard, lines)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_in_a_real_browser() {
    let (addr, guard, lines) = service().await;
    let http = reqwest::Client::new();
    for path in [
        "/orders/1",
        "/orders/2",
        "/orders/3",
        "/fail",
        "/fail",
        "/slow",
        "/slow",
    ] {
        http.get(format!("http://{addr}{path}"))
            .send()
            .await
            .unwrap();
    }
    // Two failed attempts with a wrong token: security events of their own.
    for _ in 0..2 {
        let r = http
            .get(format!("http://{addr}/admin/logs/errors"))
            .bearer_auth("not-the-token-at-all-0000")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    }

    let (_driver, url) = chromedriver().await;
    let c = browser(&url).await;
    let page = format!("http://{addr}/admin/logs/dashboard");

    // A wrong token: the form again, and no page.
    c.goto(&page).await.unwrap();
    c.find(Locator::Css("#token"))
        .await
        .unwrap()
        .send_keys("wrong-token-0123456789")
        .await
        .unwrap();
    c.find(Locator::Css("#sign-in"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until(
        &c,
        "the refusal",
        "return document.getElementById('problem') !== null",
    )
    .await;
    let problem = c
        .find(Locator::Css("#problem"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(problem, "Wrong token.");
    assert!(
        c.find(Locator::Css("#errors")).await.is_err(),
        "no dashboard without the token"
    );

    // The right one.
    c.find(Locator::Css("#token"))
        .await
        .unwrap()
        .send_keys(TOKEN)
        .await
        .unwrap();
    c.find(Locator::Css("#sign-in"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until(
        &c,
        "the first refresh",
        "return Number(document.body.dataset.ready || 0) >= 1",
    )
    .await;
    until(
        &c,
        "the error groups with their bars",
        "return document.querySelectorAll('#errors-body tr.group svg rect').length >= 1",
    )
    .await;
    let errors = c
        .find(Locator::Css("#errors-body"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        errors.contains("payment failed: <img src=x"),
        "shown as text: {errors}"
    );
    assert!(
        errors.contains("<script>window.__xss=2</script>"),
        "{errors}"
    );
    let xss = c
        .execute("return window.__xss === undefined", vec![])
        .await
        .unwrap();
    assert_eq!(xss, Value::Bool(true), "a logged script never runs");
    let perf = c
        .find(Locator::Css("#perf-body"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        perf.contains("GET /orders/{id}") && perf.contains("GET /slow"),
        "per route: {perf}"
    );
    until(
        &c,
        "a latency histogram",
        "return document.querySelectorAll('#perf-body tr.operation svg rect').length >= 2",
    )
    .await;
    let security = c
        .find(Locator::Css("#security-body"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        security.contains("admin_auth_failed") && security.contains("admin_login"),
        "{security}"
    );
    until(
        &c,
        "security events per minute",
        "return document.querySelectorAll('#security-body tr.security-type svg rect').length >= 2",
    )
    .await;
    let streams = c
        .find(Locator::Css("#streams-body"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(streams.contains("app"), "{streams}");
    let level = c
        .find(Locator::Css("#level-filter"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(level, "info");

    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("admin_dashboard");
    screenshot(&c, &out, "dashboard.png").await;

    // The level form changes the service's filter, for a minute.
    c.find(Locator::Css("#level-input"))
        .await
        .unwrap()
        .send_keys("info,shop=debug")
        .await
        .unwrap();
    c.find(Locator::Css("#level-for"))
        .await
        .unwrap()
        .send_keys("1m")
        .await
        .unwrap();
    c.find(Locator::Css("#level-apply"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until(
        &c,
        "the level change",
        "return document.getElementById('level-result').textContent === 'now info,shop=debug'",
    )
    .await;
    assert_eq!(guard.handle().filter().directives(), "info,shop=debug");
    assert!(
        lines.contents().contains("\"event\":\"log_level_changed\""),
        "the change is a security event"
    );

    let violations = c
        .execute("return document.body.dataset.cspViolations || '0'", vec![])
        .await
        .unwrap();
    assert_eq!(
        violations,
        Value::String("0".into()),
        "the page runs within its policy"
    );

    // Signing out ends the session: the form again.
    c.find(Locator::Css("#logout button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until(
        &c,
        "the sign-in form again",
        "return !!document.getElementById('token') && !document.getElementById('errors')",
    )
    .await;
    c.close().await.unwrap();

    // Over plain HTTP: the headers, and the CSRF rule.
    let r = http.get(&page).send().await.unwrap();
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("script-src 'none'"),
        "{csp}"
    );
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert_eq!(r.headers()["referrer-policy"], "no-referrer");
    assert_eq!(r.headers()["cache-control"], "no-store");
    let body = r.text().await.unwrap();
    assert!(body.contains("id=\"token\"") && !body.contains("id=\"errors\""));

    let no_redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let wrong = no_redirect
        .post(format!("{page}/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("token=wrong-token-0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    assert!(wrong.headers().get("set-cookie").is_none());
    let signed = no_redirect
        .post(format!("{page}/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status(), 303);
    let cookie = signed.headers()["set-cookie"].to_str().unwrap().to_owned();
    for flag in [
        "HttpOnly",
        "SameSite=Strict",
        "Path=/admin/logs",
        "Max-Age=3600",
    ] {
        assert!(cookie.contains(flag), "{cookie}");
    }
    let session = cookie.split(';').next().unwrap().to_owned();
    let dash = http
        .get(&page)
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    let dash_csp = dash.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(dash_csp.contains("script-src 'sha256-"), "{dash_csp}");
    assert!(!dash_csp.contains("unsafe-inline"), "{dash_csp}");
    let html = dash.text().await.unwrap();
    let csrf = html
        .split("name=\"csrf-token\" content=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_owned();
    assert!(
        !html.contains(" onclick=") && !html.contains(" style=\""),
        "no inline attributes"
    );
    let errors = http
        .get(format!("http://{addr}/admin/logs/errors"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(errors.status(), 200, "the session opens the JSON endpoints");
    let put = |csrf: Option<&str>| {
        let mut r = http
            .put(format!("http://{addr}/admin/logs/log-level"))
            .header("cookie", &session)
            .body(r#"{"reset": true}"#);
        if let Some(t) = csrf {
            r = r.header("x-csrf-token", t);
        }
        r.send()
    };
    assert_eq!(
        put(None).await.unwrap().status(),
        403,
        "a change needs the CSRF token"
    );
    assert_eq!(
        put(Some("0".repeat(64).as_str())).await.unwrap().status(),
        403
    );
    assert_eq!(put(Some(&csrf)).await.unwrap().status(), 200);
    assert_eq!(guard.handle().filter().directives(), "info");
    // Sign-out without the session's CSRF token (another site's form) changes nothing.
    let out = no_redirect
        .post(format!("{page}/logout"))
        .header("cookie", &session)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("csrf=nope")
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 303);
    assert!(
        out.headers().get("set-cookie").is_none(),
        "the cookie stays"
    );
    let still = http
        .get(format!("http://{addr}/admin/logs/errors"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(still.status(), 200, "the session stays open");

    // Another site cannot post the sign-in form (and lock the client out with wrong tokens).
    for (k, v) in [
        ("origin", "http://evil.example"),
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-site", "same-site"),
    ] {
        let r = no_redirect
            .post(format!("{page}/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header(k, v)
            .body(format!("token={TOKEN}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{k}: {v}");
        assert!(r.headers().get("set-cookie").is_none());
    }

    // A session that ended (here, one that never was) gets 401s that are not failed attempts:
    // a dashboard left open over a restart does not lock its client out.
    let stale = format!("tracelight_admin={}", "ab".repeat(32));
    for _ in 0..8 {
        let r = http
            .get(format!("http://{addr}/admin/logs/errors"))
            .header("cookie", &stale)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    }
    let again = no_redirect
        .post(format!("{page}/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 303, "not throttled");

    // A method of the client's own making is no operation of its own.
    let brew = http
        .request(
            reqwest::Method::from_bytes(b"BREW").unwrap(),
            format!("http://{addr}/orders/9"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(brew.status(), 405);
    let perf = guard.handle().performance();
    let names: Vec<&str> = perf
        .operations
        .iter()
        .map(|o| o.operation.as_str())
        .collect();
    assert!(!names.iter().any(|n| n.contains("BREW")), "{names:?}");
    assert!(names.contains(&"_OTHER /orders/{id}"), "{names:?}");

    let text = lines.contents();
    assert!(
        text.contains("\"event\":\"admin_csrf_rejected\""),
        "refusals are security events"
    );
    assert!(text.contains("\"event\":\"admin_logout\""));
    assert!(!text.contains(TOKEN), "the token is never written");

    // Wrong tokens through the form: once throttled, the page says when to come back, and so
    // does its `Retry-After` header.
    let mut throttled = None;
    for _ in 0..8 {
        let r = no_redirect
            .post(format!("{page}/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("token=wrong")
            .send()
            .await
            .unwrap();
        if r.status() == 429 {
            throttled = Some(r);
            break;
        }
        assert_eq!(r.status(), 401);
    }
    let r = throttled.expect("throttled within 8 wrong tokens");
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
    let body = r.text().await.unwrap();
    assert!(body.contains(&format!("try again in {retry} s")), "{body}");

    // The admin router inside a `RequestLayer`: a signed-in dashboard's polling writes no
    // access line; a request with the bearer token does (and is an `admin_access` event).
    let inner = tracelight::admin::AdminRouter::new(guard.handle())
        .token(TOKEN)
        .build()
        .unwrap();
    let wrapped = Router::new().merge(inner).layer(RequestLayer::new());
    let wrapped_addr = admin_support::serve(wrapped).await;
    // (Its throttle is its own: the lock-out above was the other router's.)
    let wrapped_page = format!("http://{wrapped_addr}/admin/logs/dashboard");
    let signed = no_redirect
        .post(format!("{wrapped_page}/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status(), 303);
    let session = signed.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let polled = format!("http://{wrapped_addr}/admin/logs/errors");
    for _ in 0..5 {
        let r = http
            .get(&polled)
            .header("cookie", &session)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let bearer = http
        .get(format!("http://{wrapped_addr}/admin/logs/security"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(bearer.status(), 200);
    let access_lines = |path: &str| {
        let path = format!("\"path\":\"{path}\"");
        lines
            .contents()
            .lines()
            .filter(|l| l.contains("\"target\":\"tracelight::access\"") && l.contains(&path))
            .count()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while access_lines("/admin/logs/security") == 0 && std::time::Instant::now() < deadline {
        tracelight::flush();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        access_lines("/admin/logs/security"),
        1,
        "the bearer request has its line"
    );
    assert_eq!(
        access_lines("/admin/logs/errors"),
        0,
        "the dashboard's polling has none"
    );
}
