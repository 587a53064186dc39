//! The corpus of secret shapes shared by the redaction tests.
#![allow(dead_code)]

/// `n` characters from `alphabet`, the same for the same seed (a sample, not a pattern).
pub fn body(alphabet: &str, n: usize, seed: u64) -> String {
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
pub struct Sample {
    pub name: &'static str,
    pub text: String,
    pub secret: String,
}

fn sample(name: &'static str, text: String, secret: String) -> Sample {
    Sample { name, text, secret }
}

/// A token on its own in a sentence.
fn token(name: &'static str, t: String) -> Sample {
    sample(name, format!("calling upstream with {t} (attempt 2)"), t)
}

pub fn corpus() -> Vec<Sample> {
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
