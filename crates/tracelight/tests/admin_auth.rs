//! The admin router's authentication over real HTTP on loopback: tokens in both headers, refusals
//! that all look the same, throttling per client, and the security events of every attempt.
#![cfg(feature = "admin")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod admin_support;

use std::time::Duration;

use admin_support::{client_from, logs, serve, serve_anonymous, TOKEN};
use serde_json::Value;
use tracelight::admin::AdminRouter;

/// A router under its own prefix, so each test finds its own security events by `path`.
fn router(prefix: &str) -> AdminRouter {
    AdminRouter::new(logs().handle())
        .token(TOKEN)
        .prefix(prefix)
}

fn events_for(prefix: &str, event: &str) -> Vec<Value> {
    logs()
        .security_lines()
        .into_iter()
        .filter(|l| {
            l["event"] == event
                && l["path"]
                    .as_str()
                    .is_some_and(|p| p.starts_with(&format!("{prefix}/")))
        })
        .collect()
}

#[test]
fn the_router_is_not_built_without_a_usable_token() {
    let handle = logs().handle();
    let refused = |r: Result<axum::Router, tracelight::Error>| match r {
        Err(tracelight::Error::InvalidSetting { setting, reason }) => {
            assert_eq!(setting, "admin token");
            reason
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("built"),
    };
    let reason = refused(AdminRouter::new(handle.clone()).build());
    assert!(reason.contains("no token"), "{reason}");
    let reason = refused(AdminRouter::new(handle.clone()).token("").build());
    assert!(reason.contains("empty"), "{reason}");
    let reason = refused(AdminRouter::new(handle.clone()).token("hunter2").build());
    assert!(reason.contains("at least 16"), "{reason}");
    // The error never repeats the token.
    assert!(!reason.contains("hunter2"));
    refused(
        AdminRouter::new(handle.clone())
            .token("with space 0123456789")
            .build(),
    );
    // One bad token among good ones is refused too.
    refused(
        AdminRouter::new(handle.clone())
            .token(TOKEN)
            .token("short")
            .build(),
    );
    // Paths are checked rather than left to panic in the router.
    for (prefix, metrics) in [
        ("admin", "/metrics"),
        ("/a/{x}", "/metrics"),
        ("/a", "/a/errors"),
    ] {
        let e = AdminRouter::new(handle.clone())
            .token(TOKEN)
            .prefix(prefix)
            .metrics_path(metrics)
            .build();
        assert!(
            matches!(e, Err(tracelight::Error::InvalidSetting { .. })),
            "{prefix} {metrics}"
        );
    }
    // The Debug output hides the token.
    let debug = format!("{:?}", AdminRouter::new(handle).token(TOKEN));
    assert!(!debug.contains(TOKEN), "{debug}");
}

#[tokio::test]
async fn bearer_and_header_tokens_open_every_endpoint() {
    let addr = serve(router("/both").build().unwrap()).await;
    let client = reqwest::Client::new();
    for path in [
        "/both/errors",
        "/both/performance",
        "/both/security",
        "/metrics",
    ] {
        let url = format!("http://{addr}{path}");
        let bearer = client.get(&url).bearer_auth(TOKEN).send().await.unwrap();
        assert_eq!(bearer.status(), 200, "{path}");
        let lower = client
            .get(&url)
            .header("authorization", format!("bearer {TOKEN}"))
            .send()
            .await
            .unwrap();
        assert_eq!(lower.status(), 200, "{path}");
        let header = client
            .get(&url)
            .header("x-admin-token", TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(header.status(), 200, "{path}");
        // Another scheme in Authorization does not hide the X-Admin-Token header.
        let both = client
            .get(&url)
            .basic_auth("user", Some("pass"))
            .header("x-admin-token", TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(both.status(), 200, "{path}");
        let none = client.get(&url).send().await.unwrap();
        assert_eq!(none.status(), 401, "{path}");
    }
    // An unknown path under the prefix is not an endpoint.
    let resp = client
        .get(format!("http://{addr}/both/nope"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn prefix_metrics_path_and_several_tokens() {
    let other = "second-token-0123456789abcdef";
    let addr = serve(
        router("/ops/logs/")
            .token(other)
            .metrics_path("/ops/metrics")
            .build()
            .unwrap(),
    )
    .await;
    let client = reqwest::Client::new();
    for token in [TOKEN, other] {
        for path in ["/ops/logs/errors", "/ops/metrics"] {
            let resp = client
                .get(format!("http://{addr}{path}"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200, "{path}");
        }
    }
    for path in ["/admin/logs/errors", "/metrics"] {
        let resp = client
            .get(format!("http://{addr}{path}"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 404, "{path}");
    }

    let addr = serve(router("/nometrics").without_metrics().build().unwrap()).await;
    let resp = client
        .get(format!("http://{addr}/metrics"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
}

/// What a client sees of a response: everything but the date.
async fn seen(resp: reqwest::Response) -> (u16, Vec<(String, String)>, String) {
    let status = resp.status().as_u16();
    let mut headers: Vec<(String, String)> = resp
        .headers()
        .iter()
        .filter(|(k, _)| *k != "date")
        .map(|(k, v)| {
            (
                k.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    headers.sort();
    (status, headers, resp.text().await.unwrap())
}

#[tokio::test]
async fn every_wrong_token_is_refused_the_same_way() {
    // Enough attempts allowed that throttling does not step in.
    let addr = serve(
        router("/probe")
            .throttle(1000, Duration::from_secs(60))
            .build()
            .unwrap(),
    )
    .await;
    let url = format!("http://{addr}/probe/errors");
    let client = reqwest::Client::new();
    let mut last_char = TOKEN.to_owned();
    last_char.pop();
    last_char.push('!');
    let mut first_char = TOKEN.to_owned();
    first_char.replace_range(0..1, "b");
    let wrong: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"a".to_vec(),
        TOKEN.as_bytes()[..1].to_vec(),
        TOKEN.as_bytes()[..TOKEN.len() / 2].to_vec(),
        TOKEN.as_bytes()[..TOKEN.len() - 1].to_vec(),
        last_char.into_bytes(),
        first_char.into_bytes(),
        format!("{TOKEN}x").into_bytes(),
        format!("{TOKEN}{TOKEN}").into_bytes(),
        TOKEN.to_uppercase().into_bytes(),
        vec![b'z'; 255],
        vec![b'z'; 256],
        vec![b'z'; 257],
        vec![b'q'; 4000],
        // Not UTF-8: compared as bytes.
        [TOKEN.as_bytes(), &[0xff, 0xfe]].concat(),
    ];
    let baseline = seen(client.get(&url).send().await.unwrap()).await;
    assert_eq!(baseline.0, 401);
    assert!(baseline.1.contains(&(
        "www-authenticate".into(),
        "Bearer realm=\"tracelight-admin\"".into()
    )));
    assert_eq!(baseline.2, "{\"error\":\"unauthorized\"}\n");
    for (i, token) in wrong.iter().enumerate() {
        let value = reqwest::header::HeaderValue::from_bytes(token).unwrap();
        let by_header = client
            .get(&url)
            .header("x-admin-token", value.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(seen(by_header).await, baseline, "x-admin-token #{i}");
        let mut bearer = b"Bearer ".to_vec();
        bearer.extend_from_slice(token);
        let by_bearer = client
            .get(&url)
            .header(
                "authorization",
                reqwest::header::HeaderValue::from_bytes(&bearer).unwrap(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(seen(by_bearer).await, baseline, "bearer #{i}");
    }
    // And the right one still opens.
    let ok = client.get(&url).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(ok.status(), 200);
}

#[tokio::test]
async fn failed_attempts_are_throttled_per_client() {
    let addr = serve(router("/throttle").build().unwrap()).await;
    let url = format!("http://{addr}/throttle/security");
    let a = client_from("127.0.0.1");
    let b = client_from("127.0.0.2");
    for i in 0..5 {
        let resp = a
            .get(&url)
            .bearer_auth("wrong-token-0123456789")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401, "attempt {i}");
    }
    // The sixth answers 429 without looking at the token: the right one does not help now.
    for token in ["wrong-token-0123456789", TOKEN, TOKEN] {
        let resp = a.get(&url).bearer_auth(token).send().await.unwrap();
        assert_eq!(resp.status(), 429);
        let retry: u64 = resp.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&retry), "{retry}");
        assert_eq!(
            resp.text().await.unwrap(),
            "{\"error\":\"too many failed attempts\"}\n"
        );
    }
    // Another client is not affected.
    let resp = b.get(&url).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(resp.status(), 200);

    // Five failures from 127.0.0.1, each an event; one throttling event however many 429s.
    let failed = events_for("/throttle", "admin_auth_failed");
    assert_eq!(failed.len(), 5, "{failed:?}");
    assert!(failed.iter().all(|e| e["client_ip"] == "127.0.0.1"));
    let throttled = events_for("/throttle", "admin_auth_throttled");
    assert_eq!(throttled.len(), 1, "{throttled:?}");
    assert_eq!(throttled[0]["client_ip"], "127.0.0.1");
    assert_eq!(throttled[0]["severity"], "high");
    assert_eq!(throttled[0]["max_failures"], 5);
    let access = events_for("/throttle", "admin_access");
    assert_eq!(access.len(), 1);
    assert_eq!(access[0]["client_ip"], "127.0.0.2");
}

/// One request over a fresh connection from the loopback address `from`: its status code.
async fn status_from(
    from: std::net::Ipv4Addr,
    addr: std::net::SocketAddr,
    path: &str,
    token: &str,
) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind((from, 0).into()).unwrap();
    let mut stream = socket.connect(addr).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).await.unwrap();
    std::str::from_utf8(&head[9..12]).unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_from_thousands_of_addresses_do_not_lock_out_a_new_client() {
    let addr = serve(router("/flood").build().unwrap()).await;
    // 5,000 addresses of 127/8 fail once each: more than the table holds.
    let addresses: Vec<std::net::Ipv4Addr> = (0..5000u32)
        .map(|i| std::net::Ipv4Addr::new(127, 1, (i / 250) as u8, (i % 250) as u8 + 1))
        .collect();
    for batch in addresses.chunks(50) {
        let tasks: Vec<_> = batch
            .iter()
            .map(|&ip| {
                tokio::spawn(status_from(
                    ip,
                    addr,
                    "/flood/errors",
                    "wrong-token-0123456789",
                ))
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap(), 401);
        }
    }
    // A new client with the right token is served at once, and so is one of the flood's.
    let new = std::net::Ipv4Addr::new(127, 2, 0, 1);
    assert_eq!(status_from(new, addr, "/flood/errors", TOKEN).await, 200);
    assert_eq!(
        status_from(addresses[4999], addr, "/flood/errors", TOKEN).await,
        200
    );
    // Each failure is still counted and logged.
    assert_eq!(events_for("/flood", "admin_auth_failed").len(), 5000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_parallel_guesses_gets_no_more_answers() {
    let addr = serve(router("/burst").build().unwrap()).await;
    let url = format!("http://{addr}/burst/errors");
    let client = reqwest::Client::new();
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let req = client
                .get(&url)
                .bearer_auth(format!("guess-{i:04}-0123456789abcdef"));
            tokio::spawn(async move { req.send().await.unwrap().status().as_u16() })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    let refused = statuses.iter().filter(|s| **s == 401).count();
    let throttled = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!((refused, throttled), (5, 35), "{statuses:?}");
    assert_eq!(events_for("/burst", "admin_auth_failed").len(), 5);
    assert_eq!(events_for("/burst", "admin_auth_throttled").len(), 1);
}

#[tokio::test]
async fn without_a_peer_address_clients_share_one_bucket() {
    let addr = serve_anonymous(
        router("/anon")
            .throttle(2, Duration::from_secs(60))
            .build()
            .unwrap(),
    )
    .await;
    let url = format!("http://{addr}/anon/errors");
    let a = client_from("127.0.0.1");
    let b = client_from("127.0.0.3");
    for _ in 0..2 {
        assert_eq!(a.get(&url).send().await.unwrap().status(), 401);
    }
    assert_eq!(
        b.get(&url)
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .status(),
        429
    );
    let failed = events_for("/anon", "admin_auth_failed");
    assert_eq!(failed.len(), 2);
    // No address known: no client_ip field rather than a made-up one.
    assert!(
        failed.iter().all(|e| e.get("client_ip").is_none()),
        "{failed:?}"
    );
}

#[tokio::test]
async fn the_client_address_can_come_from_a_trusted_proxy() {
    let addr = serve(
        router("/proxied")
            .throttle(1, Duration::from_secs(60))
            .client_ip_with(|parts| parts.headers.get("x-real-ip")?.to_str().ok()?.parse().ok())
            .build()
            .unwrap(),
    )
    .await;
    let url = format!("http://{addr}/proxied/errors");
    let client = reqwest::Client::new();
    let from = |ip: &'static str| client.get(&url).header("x-real-ip", ip);
    assert_eq!(from("203.0.113.7").send().await.unwrap().status(), 401);
    assert_eq!(from("203.0.113.7").send().await.unwrap().status(), 429);
    assert_eq!(
        from("203.0.113.8")
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let failed = events_for("/proxied", "admin_auth_failed");
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["client_ip"], "203.0.113.7");
}

#[tokio::test]
async fn failures_and_accesses_are_security_events_without_the_token() {
    let addr = serve(router("/events").build().unwrap()).await;
    let client = reqwest::Client::new();
    let wrong = "not-the-token-but-close-5f1c0e9a";
    let url = format!("http://{addr}/events/performance");
    assert_eq!(client.get(&url).send().await.unwrap().status(), 401);
    assert_eq!(
        client
            .get(&url)
            .header("x-admin-token", wrong)
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        client
            .get(&url)
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    logs().guard.flush();

    let failed = events_for("/events", "admin_auth_failed");
    assert_eq!(failed.len(), 2, "{failed:?}");
    let reasons: Vec<&str> = failed.iter().filter_map(|e| e["reason"].as_str()).collect();
    assert_eq!(reasons, ["missing_token", "wrong_token"]);
    for e in &failed {
        assert_eq!(e["level"], "WARN");
        assert_eq!(e["severity"], "high");
        assert_eq!(e["client_ip"], "127.0.0.1");
        assert_eq!(e["path"], "/events/performance");
        assert_eq!(e["target"], "tracelight::security");
        assert_eq!(e["message"], "admin authentication failed");
    }
    let access = events_for("/events", "admin_access");
    assert_eq!(access.len(), 1, "{access:?}");
    assert_eq!(access[0]["severity"], "low");
    assert_eq!(access[0]["client_ip"], "127.0.0.1");
    assert_eq!(access[0]["path"], "/events/performance");

    // Counted by type where the admin endpoint and `tracelight::security()` read them.
    let counts = tracelight::security().counts;
    let count = |t: &str| counts.iter().find(|(e, _)| e == t).map_or(0, |(_, n)| *n);
    assert!(count("admin_auth_failed") >= 2, "{counts:?}");
    assert!(count("admin_access") >= 1, "{counts:?}");

    // Neither the right token nor the wrong one is anywhere in the logs.
    let everything = logs().everything();
    assert!(!everything.contains(TOKEN));
    assert!(!everything.contains(wrong));
}
