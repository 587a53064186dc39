//! A real headless Chromium for the tests, driven over WebDriver: `chromedriver` (Debian's
//! `chromium-driver`, which scripts/test.sh installs; `$CHROMEDRIVER` names another) on a free
//! port, a session with `--headless=new --no-sandbox` (as root, Chromium runs only without its
//! sandbox; `$CHROMIUM` names the browser), and a wait on the page with a deadline. Shared by
//! `tracelight`'s dashboard test and `tracelight-cli`'s report test.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

/// The driver process, killed when dropped.
pub struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `chromedriver` on a free port, once it accepts connections, and its URL.
pub async fn chromedriver() -> (Driver, String) {
    let bin = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".to_owned());
    let port = free_port();
    let child = Command::new(&bin)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {bin} (scripts/test.sh installs it): {e}"));
    let driver = Driver(child);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "chromedriver did not start"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (driver, format!("http://127.0.0.1:{port}"))
}

/// A headless Chromium session.
pub async fn browser(url: &str) -> fantoccini::Client {
    let mut chrome = json!({
        "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1400,1100"],
    });
    if let Ok(bin) = std::env::var("CHROMIUM") {
        chrome["binary"] = Value::String(bin);
    }
    let mut caps = serde_json::Map::new();
    caps.insert("goog:chromeOptions".to_owned(), chrome);
    fantoccini::ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(url)
        .await
        .expect("a WebDriver session")
}

/// Waits, with a deadline, until `script` returns `true` in the page.
pub async fn until(c: &fantoccini::Client, what: &str, script: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if c.execute(script, vec![]).await.unwrap() == Value::Bool(true) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what} at {}: {}",
            c.current_url()
                .await
                .map(|u| u.to_string())
                .unwrap_or_default(),
            c.execute("return document.body.innerText", vec![])
                .await
                .unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A screenshot of the page, written as `name` to the test's output folder (`dir`) and, when
/// `$TRACELIGHT_SCREENSHOTS` is set, there too (the docs' pictures).
pub async fn screenshot(c: &fantoccini::Client, dir: &std::path::Path, name: &str) {
    c.execute("window.scrollTo(0, 0)", vec![]).await.unwrap();
    let png = c.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(name), &png).unwrap();
    if let Ok(docs) = std::env::var("TRACELIGHT_SCREENSHOTS") {
        std::fs::write(std::path::Path::new(&docs).join(name), &png).unwrap();
    }
}
