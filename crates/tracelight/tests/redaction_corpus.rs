//! Redaction against a corpus of real secret shapes, on every path a value can take (event field
//! as `&str`, `%` and `?`, the message, a span field, a promoted context field, a bound field, a
//! static field, an error's source chain), in JSON and text, to a writer, to files and to stdout:
//! no secret may appear in any line. And a corpus of near misses — ids, hashes, versions, URLs
//! without credentials, key names that merely end in `key` — that must come out untouched.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt;

use proptest::prelude::*;
use tracelight::redact::Redactor;
use tracelight::sink::MemoryWriter;
use tracelight::Format;

/// `n` characters from `alphabet`, the same for the same seed (a sample, not a pattern).
fn body(alphabet: &str, n: usize, seed: u64) -> String {
    let a: Vec<char> = alphabet.chars().collect();
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            a[(x % a.len() as u64) as usize]
        })
        .collect()
}

const ALNUM: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const HEX: &str = "0123456789abcdef";
const B64: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const URLSAFE: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// A secret shape: its name, a text as a service would log it, and the part that must not appear.
struct Sample {
    name: &'static str,
    text: String,
    secret: String,
}

fn sample(name: &'static str, text: String, secret: String) -> Sample {
    Sample { name, text, secret }
}

/// A token on its own in a sentence.
fn token(name: &'static str, t: String) -> Sample {
    sample(name, format!("calling upstream with {t} (attempt 2)"), t)
}

fn corpus() -> Vec<Sample> {
    let pem_body = body(B64, 64, 77);
    vec![
        token("github classic", format!("ghp_{}", body(ALNUM, 36, 1))),
        token("github oauth", format!("gho_{}", body(ALNUM, 36, 2))),
        token("github user-to-server", format!("ghu_{}", body(ALNUM, 36, 3))),
        token("github server-to-server", format!("ghs_{}", body(ALNUM, 36, 4))),
        token("github refresh", format!("ghr_{}", body(ALNUM, 36, 5))),
        token(
            "github fine-grained",
            format!("github_pat_{}_{}", body(ALNUM, 22, 6), body(ALNUM, 59, 7)),
        ),
        token("gitlab pat", format!("glpat-{}", body(URLSAFE, 20, 8))),
        token("gitlab deploy", format!("gldt-{}", body(URLSAFE, 20, 9))),
        token(
            "slack bot",
            format!("xoxb-{}-{}-{}", body("0123456789", 12, 10), body("0123456789", 13, 11), body(ALNUM, 24, 12)),
        ),
        token(
            "slack user",
            format!("xoxp-{}-{}-{}-{}", body("0123456789", 12, 13), body("0123456789", 12, 14), body("0123456789", 13, 15), body(HEX, 32, 16)),
        ),
        token("slack app", format!("xapp-1-A{}-{}-{}", body("0123456789", 10, 17), body("0123456789", 13, 18), body(HEX, 64, 19))),
        sample(
            "slack webhook",
            format!("posting to https://hooks.slack.com/services/T{}/B{}/{}", body("ABCDEFGHIJ0123456789", 8, 20), body("ABCDEFGHIJ0123456789", 8, 21), body(ALNUM, 24, 22)),
            body(ALNUM, 24, 22),
        ),
        token("stripe live secret", format!("sk_live_{}", body(ALNUM, 24, 23))),
        token("stripe test secret", format!("sk_test_{}", body(ALNUM, 99, 24))),
        token("stripe restricted", format!("rk_live_{}", body(ALNUM, 24, 25))),
        token("stripe webhook secret", format!("whsec_{}", body(ALNUM, 32, 26))),
        token("openai project", format!("sk-proj-{}", body(URLSAFE, 48, 27))),
        token("anthropic", format!("sk-ant-api03-{}", body(URLSAFE, 93, 28))),
        token("openai legacy", format!("sk-{}", body(ALNUM, 48, 29))),
        token("twilio api key", format!("SK{}", body(HEX, 32, 30))),
        token(
            "sendgrid",
            format!("SG.{}.{}", body(URLSAFE, 22, 31), body(URLSAFE, 43, 32)),
        ),
        token("google api key", format!("AIza{}", body(URLSAFE, 35, 33))),
        token("aws access key id", format!("AKIA{}", body("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16, 34))),
        token("aws session key id", format!("ASIA{}", body("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16, 35))),
        {
            let s = body(B64, 40, 36);
            sample("aws secret access key", format!("aws_secret_access_key={s}"), s)
        },
        {
            let s = format!("{}==", body(B64, 86, 37));
            sample(
                "azure storage connection string",
                format!("DefaultEndpointsProtocol=https;AccountName=shopdata;AccountKey={s};EndpointSuffix=core.windows.net"),
                s,
            )
        },
        token("npm", format!("npm_{}", body(ALNUM, 36, 38))),
        token("pypi", format!("pypi-AgEIcHlwaS5vcmc{}", body(URLSAFE, 70, 39))),
        token("docker hub", format!("dckr_pat_{}", body(URLSAFE, 27, 40))),
        token("rubygems", format!("rubygems_{}", body(HEX, 48, 41))),
        token("nuget", format!("oy2{}", body("abcdefghijklmnopqrstuvwxyz0123456789", 43, 42))),
        token("crates.io", format!("cio{}", body(ALNUM, 32, 43))),
        token("vault", format!("hvs.{}", body(URLSAFE, 90, 44))),
        token("digitalocean", format!("dop_v1_{}", body(HEX, 64, 45))),
        token("hugging face", format!("hf_{}", body("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", 34, 46))),
        token("shopify", format!("shpat_{}", body(HEX, 32, 47))),
        token("grafana service account", format!("glsa_{}_{}", body(ALNUM, 32, 48), body(HEX, 8, 49))),
        token("new relic", format!("NRAK-{}", body("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 27, 50))),
        token("databricks", format!("dapi{}", body(HEX, 32, 51))),
        token("linear", format!("lin_api_{}", body(ALNUM, 40, 52))),
        token("age", format!("AGE-SECRET-KEY-1{}", body("QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L", 58, 53))),
        token(
            "jwt",
            format!("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ{}.{}", body(URLSAFE, 40, 54), body(URLSAFE, 43, 55)),
        ),
        sample(
            "pem rsa private key",
            format!("loaded key -----BEGIN RSA PRIVATE KEY-----\n{pem_body}\n-----END RSA PRIVATE KEY----- from disk"),
            pem_body.clone(),
        ),
        {
            let k = body(B64, 70, 56);
            sample(
                "openssh private key",
                format!("-----BEGIN OPENSSH PRIVATE KEY-----\n{k}\n-----END OPENSSH PRIVATE KEY-----"),
                k,
            )
        },
        {
            let t = body(URLSAFE, 40, 57);
            sample("bearer", format!("Authorization: Bearer {t}"), t)
        },
        {
            let t = "YWRtaW46Y29ycmVjdGhvcnNlYmF0dGVyeQ==".to_owned();
            sample("basic auth", format!("sent Basic {t} upstream"), t)
        },
        sample(
            "postgres url",
            "connecting to postgres://app:S3cr3t-Pa55@db.internal:5432/shop".into(),
            "S3cr3t-Pa55".into(),
        ),
        sample("redis url", "cache redis://:p4ssw0rd1@cache:6379/0".into(), "p4ssw0rd1".into()),
        sample(
            "mongodb url",
            "mongodb+srv://admin:hunter2hunter2@cluster0.example.net/db?retryWrites=true".into(),
            "hunter2hunter2".into(),
        ),
        sample("amqp url", "amqp://guest:rabbit-pass-9@mq:5672/".into(), "rabbit-pass-9".into()),
        sample(
            "cookie in a header map",
            format!("{:?}", [("cookie", "session=d41d8cd98f00b204e9800998ecf8427e; theme=dark")]
                .into_iter()
                .collect::<std::collections::BTreeMap<_, _>>()),
            "d41d8cd98f00b204e9800998ecf8427e".into(),
        ),
        sample(
            "password in a Debug struct",
            format!("{:?}", Login { user: "bob", password: "correct horse battery" }),
            "correct horse battery".into(),
        ),
        sample(
            "token in JSON text",
            r#"body {"user":"bob","token":"tok_9f8e7d6c5b4a"}"#.into(),
            "tok_9f8e7d6c5b4a".into(),
        ),
        sample("secret assignment", "config secret=shh-its-a-secret loaded".into(), "shh-its-a-secret".into()),
        sample("visa", "paid with 4111111111111111 ok".into(), "4111111111111111".into()),
        sample("mastercard grouped", "card 5555 5555 5555 4444 declined".into(), "5555 5555 5555 4444".into()),
        sample("amex grouped", "amex 3782-822463-10005".into(), "3782-822463-10005".into()),
    ]
}

#[derive(Debug)]
#[allow(dead_code)]
struct Login {
    user: &'static str,
    password: &'static str,
}

#[derive(Debug)]
struct Failed(String, Option<Box<Failed>>);
impl fmt::Display for Failed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for Failed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.1.as_deref().map(|e| e as _)
    }
}

const PATHS: &[&str] = &[
    "str field",
    "display field",
    "debug field",
    "message",
    "span field",
    "context field",
    "bound field",
    "static field",
    "error chain",
];

/// Logs `text` through `path`.
fn log_through(path: &str, text: &str) {
    match path {
        "str field" => tracing::info!(note = text, "p"),
        "display field" => tracing::info!(note = %text, "p"),
        "debug field" => tracing::info!(note = ?text, "p"),
        "message" => tracing::info!("{text}"),
        "span field" => {
            let s = tracing::info_span!("s", note = text);
            let _e = s.enter();
            tracing::info!("p");
        }
        "context field" => {
            let s = tracing::info_span!("s", tenant = text);
            let _e = s.enter();
            tracing::info!("p");
        }
        "bound field" => {
            let s = tracing::info_span!("s");
            let _e = s.enter();
            tracelight::bind("note", text);
            tracing::info!("p");
        }
        "static field" => tracing::info!("p"),
        "error chain" => {
            let e = Failed(
                "request failed".into(),
                Some(Box::new(Failed(format!("upstream said: {text}"), None))),
            );
            tracing::error!(error = &e as &dyn std::error::Error, "p");
        }
        other => panic!("unknown path {other}"),
    }
}

fn builder(path: &str, text: &str, format: Format) -> tracelight::Builder {
    let b = tracelight::builder()
        .format(format)
        .ansi(false)
        .context_field("tenant");
    if path == "static field" {
        b.field("note", text)
    } else {
        b
    }
}

/// The lines of `text` logged through `path` in `format`, to a writer.
fn to_writer(path: &str, text: &str, format: Format) -> String {
    let w = MemoryWriter::new();
    {
        let _g = builder(path, text, format)
            .writer(w.clone())
            .init_local()
            .unwrap();
        log_through(path, text);
    }
    w.contents()
}

/// The same, to the stream files of a log directory.
fn to_files(path: &str, text: &str, format: Format) -> String {
    let dir = tempfile::tempdir().unwrap();
    {
        let g = builder(path, text, format)
            .log_dir(dir.path())
            .stdout_with_files(false)
            .format(format)
            .init_local()
            .unwrap();
        log_through(path, text);
        g.flush();
    }
    let mut all = String::new();
    for e in std::fs::read_dir(dir.path()).unwrap() {
        all.push_str(&std::fs::read_to_string(e.unwrap().path()).unwrap_or_default());
    }
    all
}

fn leaks(out: &str, secret: &str) -> bool {
    // A secret as written in a line: raw, or JSON-escaped (newlines of a PEM body are none).
    out.contains(secret) || out.contains(&secret.replace('"', "\\\""))
}

#[test]
fn no_secret_of_the_corpus_reaches_a_line_on_any_path() {
    let corpus = corpus();
    assert!(corpus.len() >= 40, "{} shapes", corpus.len());
    let mut cells = 0;
    let mut leaked = Vec::new();
    for s in &corpus {
        // The sample really holds its secret.
        assert!(s.text.contains(&s.secret), "{}", s.name);
        for path in PATHS {
            for format in [Format::Json, Format::Text] {
                for (output, out) in [
                    ("writer", to_writer(path, &s.text, format)),
                    ("files", to_files(path, &s.text, format)),
                ] {
                    cells += 1;
                    assert!(
                        !out.is_empty(),
                        "{} {path} {format:?} {output}: no line",
                        s.name
                    );
                    if leaks(&out, &s.secret) {
                        leaked.push(format!(
                            "{} via {path} in {format:?} to {output}: {out}",
                            s.name
                        ));
                    }
                }
            }
        }
    }
    assert!(
        leaked.is_empty(),
        "{} leaks in {cells} cells:\n{}",
        leaked.len(),
        leaked.join("\n")
    );
}

/// The child side of the stdout test: every sample through every path, JSON on stdout.
#[test]
fn stdout_child() {
    if std::env::var_os("TL_TEST_REDACT_CHILD").is_none() {
        return;
    }
    let mut statics = tracelight::builder()
        .format(Format::Json)
        .context_field("tenant");
    for (i, s) in corpus().iter().enumerate() {
        statics = statics.field(format!("note{i}"), s.text.as_str());
    }
    let g = statics.init().unwrap();
    for s in corpus() {
        for path in PATHS {
            log_through(path, &s.text);
        }
    }
    g.flush();
}

#[test]
fn no_secret_of_the_corpus_reaches_stdout() {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["stdout_child", "--exact", "--nocapture", "--test-threads=1"])
        .env("TL_TEST_REDACT_CHILD", "1")
        .env_remove("RUST_LOG")
        .env_remove("LOG_FORMAT")
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines = stdout
        .lines()
        .filter(|l| l.contains("\"timestamp\""))
        .count();
    let corpus = corpus();
    assert!(lines >= corpus.len() * PATHS.len(), "{lines} lines");
    let leaked: Vec<&str> = corpus
        .iter()
        .filter(|s| leaks(&stdout, &s.secret))
        .map(|s| s.name)
        .collect();
    assert!(leaked.is_empty(), "leaked to stdout: {leaked:?}");
}

/// Values that look a little like secrets and are not: they must come out as they went in.
fn near_misses() -> Vec<String> {
    vec![
        "request 0f8fad5b-d9cb-469f-a165-70867728950e done".into(),
        "id 01936f2a-4c1e-7cc2-9a3b-5e0d6f7a8b9c".into(),
        "commit 3f786850e387550fdab836ed7e6dc881de23001b".into(),
        "sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".into(),
        "order ORD-2026-000123 shipped".into(),
        "tracking 1Z999AA10123456784 in transit".into(),
        "version 1.2.3-beta.4+build.5".into(),
        "image data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==".into(),
        "see https://example.com/orders?page=2&sort=desc#top".into(),
        "ssh://git@github.com/org/repo.git".into(),
        "http://user@host.example/path".into(),
        "request id 1234567812345670".into(),
        "id 9999999999999995 (Luhn-valid, no issuer)".into(),
        "phone +1 555 123 4567".into(),
        "cache_key=user:42:profile sort_key=created_at".into(),
        "primary_key: 42, partition_key: eu, routing_key: orders.created".into(),
        "idempotency_key=7f3c2e1a max_tokens=512 author=bob".into(),
        "the task-1234567890abcdefghijklmnop ran".into(),
        "desk-ABCDEFGHIJKLMNOPQRSTUVWXYZ".into(),
        "basic information about the plan".into(),
        "token count: 5".into(),
        "at 2026-12-01T10:42:53.868Z on ::1".into(),
        "askAIzaNothing here".into(),
        "skus sk_size=large".into(),
        "the public_key is shown".into(),
    ]
}

#[test]
fn near_misses_are_left_as_they_are() {
    let r = Redactor::default();
    for v in near_misses() {
        assert_eq!(r.redact_str(&v), v, "masked by mistake");
        for path in ["str field", "message", "span field", "bound field"] {
            let out = to_writer(path, &v, Format::Json);
            assert!(!out.contains("[REDACTED"), "{path}: {v} -> {out}");
        }
    }
    // Correlation keys are never masked, whatever they hold.
    let w = MemoryWriter::new();
    {
        let _g = tracelight::builder()
            .writer(w.clone())
            .format(Format::Json)
            .init_local()
            .unwrap();
        let s = tracing::info_span!("request", request_id = "4111111111111111");
        let _e = s.enter();
        tracing::info!(trace_id = "4111111111111111", "in the request");
    }
    let out = w.contents();
    assert!(!out.contains("[REDACTED"), "{out}");
    let v: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(v["request_id"], "4111111111111111");
}

#[test]
fn key_rules_inside_values_and_by_name() {
    let r = Redactor::default();
    for k in [
        "stripe_key",
        "signing_key",
        "secret_key",
        "client_secret",
        "database_url_password",
        "STRIPE_KEY",
        "dsn",
    ] {
        assert!(r.is_secret_key(k), "{k}");
    }
    for k in [
        "cache_key",
        "sort_key",
        "primary_key",
        "partition_key",
        "routing_key",
        "idempotency_key",
        "max_tokens",
        "author",
        "public_key",
        "database_url",
    ] {
        assert!(!r.is_secret_key(k), "{k}");
    }
    // A `*_url` field keeps its URL and loses its password.
    let out = to_writer_field("postgres://app:pw-123456@db/shop");
    assert!(out.contains("postgres://app:[REDACTED]@db/shop"), "{out}");
    let named = Redactor::builder().name_rules(true).build();
    assert_eq!(
        named.redact_str("t ghp_0123456789abcdefghijABCDEFGHIJ012345 u"),
        "t [REDACTED:github_token] u"
    );
    assert_eq!(
        named.redact_str("password: \"x1\""),
        "password: \"[REDACTED:key]\""
    );
}

fn to_writer_field(url: &str) -> String {
    let w = MemoryWriter::new();
    {
        let _g = tracelight::builder()
            .writer(w.clone())
            .format(Format::Json)
            .init_local()
            .unwrap();
        tracing::info!(database_url = url, "connecting");
    }
    w.contents()
}

/// Text that holds no rule's prefix, no key word and no digits: letters that start none of them.
fn plain_text() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just('q'),
            Just('w'),
            Just('z'),
            Just('j'),
            Just('v'),
            Just(' '),
            Just(','),
            Just('!'),
            Just('é')
        ],
        0..60,
    )
    .prop_map(|v| v.into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn a_secret_anywhere_in_text_is_masked(
        i in 0usize..60,
        before in plain_text(),
        after in plain_text(),
    ) {
        let corpus = corpus();
        let s = &corpus[i % corpus.len()];
        let text = format!("{before} {} {after}", s.text);
        let out = Redactor::default().redact_str(&text);
        prop_assert!(!out.contains(&s.secret), "{}: {}", s.name, out);
        prop_assert!(out.contains(before.as_str()) && out.contains(after.as_str()));
    }

    #[test]
    fn text_without_a_secret_is_left_byte_for_byte(text in plain_text()) {
        prop_assert_eq!(Redactor::default().redact_str(&text), text);
    }
}
