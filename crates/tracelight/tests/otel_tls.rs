//! TLS to the collector over both transports: certificates made in the test (rcgen), a small
//! TLS-terminating proxy on 127.0.0.1 that forwards to the real collector (rotel: gRPC when the
//! client negotiated `h2`, HTTP otherwise), the CA given by `OTEL_EXPORTER_OTLP_CERTIFICATE`, a
//! client certificate for mutual TLS, and the refusals: a collector whose certificate the CA did
//! not sign, a missing client certificate, a missing or malformed file.
#![cfg(feature = "otel")]
#![allow(clippy::unwrap_used)]

mod otel_support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use otel_support::Rotel;
use rcgen::{
    BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use tracelight::otel::{BatchConfig, OtelConfig};
use tracelight::sink::MemoryWriter;

/// A CA, the collector's certificate for 127.0.0.1 and a client certificate, as PEM files.
struct Pki {
    dir: tempfile::TempDir,
    server: (rustls::pki_types::CertificateDer<'static>, KeyPair),
    ca_der: rustls::pki_types::CertificateDer<'static>,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca_cert.pem()).unwrap();
        let ca_der = ca_cert.der().clone();
        let issuer = Issuer::new(ca, ca_key);
        let server_key = KeyPair::generate().unwrap();
        let server = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
            .unwrap()
            .signed_by(&server_key, &issuer)
            .unwrap();
        let client_key = KeyPair::generate().unwrap();
        let mut client = CertificateParams::new(vec!["client".into()]).unwrap();
        client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let client = client.signed_by(&client_key, &issuer).unwrap();
        std::fs::write(dir.path().join("client.pem"), client.pem()).unwrap();
        std::fs::write(dir.path().join("client.key"), client_key.serialize_pem()).unwrap();
        // A second CA, which signed nothing here.
        let other_key = KeyPair::generate().unwrap();
        let mut other = CertificateParams::new(Vec::<String>::new()).unwrap();
        other.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let other = other.self_signed(&other_key).unwrap();
        std::fs::write(dir.path().join("other-ca.pem"), other.pem()).unwrap();
        Pki {
            dir,
            server: (server.der().clone(), server_key),
            ca_der,
        }
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

fn ring() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Terminates TLS on 127.0.0.1 and forwards the bytes to rotel: to its gRPC port when the
/// client negotiated `h2`, to its HTTP port otherwise. With `client_auth`, a client must show a
/// certificate signed by the CA.
struct TlsProxy {
    port: u16,
    _rt: tokio::runtime::Runtime,
}

impl TlsProxy {
    fn start(pki: &Pki, rotel: &Rotel, client_auth: bool) -> TlsProxy {
        let builder = rustls::ServerConfig::builder_with_provider(ring())
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = if client_auth {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(pki.ca_der.clone()).unwrap();
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                ring(),
            )
            .build()
            .unwrap();
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let key = rustls::pki_types::PrivatePkcs8KeyDer::from(pki.server.1.serialize_der());
        let mut config = builder
            .with_single_cert(vec![pki.server.0.clone()], key.into())
            .unwrap();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let (grpc, http) = (rotel.grpc, rotel.http);
        rt.spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    // A refused handshake (no client certificate, an unknown CA) ends here.
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
                    let to = if h2 { grpc } else { http };
                    if let Ok(mut up) = tokio::net::TcpStream::connect(("127.0.0.1", to)).await {
                        let _ = tokio::io::copy_bidirectional(&mut tls, &mut up).await;
                    }
                });
            }
        });
        TlsProxy { port, _rt: rt }
    }

    fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }
}

fn fast() -> BatchConfig {
    BatchConfig::default()
        .scheduled_delay(Duration::from_millis(30))
        .export_timeout(Duration::from_millis(1500))
}

/// The settings `vars` give, as the environment would.
fn from_env(vars: &[(&str, String)]) -> OtelConfig {
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    OtelConfig::from_lookup(move |k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
        .unwrap()
        .traces_batch(fast())
        .logs_batch(fast())
}

/// The settings of an export through `proxy` over `protocol`, with `vars` besides.
fn over(proxy: &TlsProxy, protocol: &str, vars: &[(&str, String)]) -> OtelConfig {
    let mut all = vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT", proxy.url()),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol.to_owned()),
    ];
    all.extend(vars.iter().cloned());
    from_env(&all)
}

fn path(p: &Path) -> String {
    p.display().to_string()
}

/// Logs one span and one event through `config`, shuts down, and returns the lines.
fn export(config: OtelConfig, marker: &str) -> MemoryWriter {
    let lines = MemoryWriter::new();
    let guard = tracelight::builder()
        .service("tls")
        .writer(lines.clone())
        .format(tracelight::Format::Json)
        .otel(config)
        .init_local()
        .unwrap();
    {
        let _s = tracing::info_span!("tls_span", marker).entered();
        tracing::info!("tls record {marker}");
    }
    guard.shutdown();
    lines
}

#[test]
fn https_with_the_ca_from_the_environment_over_both_transports() {
    let rotel = Rotel::start();
    let pki = Pki::new();
    let proxy = TlsProxy::start(&pki, &rotel, false);
    for protocol in ["grpc", "http/protobuf"] {
        let config = over(
            &proxy,
            protocol,
            &[("OTEL_EXPORTER_OTLP_CERTIFICATE", path(&pki.file("ca.pem")))],
        );
        let marker = format!("ca-{}", protocol.replace('/', "-"));
        export(config, &marker);
        // This protocol's span (the first protocol's is there already).
        let want = format!("Str({marker})");
        otel_support::wait_until(
            Duration::from_secs(30),
            &format!("the span marked {marker} at the collector"),
            || {
                rotel
                    .spans()
                    .into_iter()
                    .find(|s| s.name() == "tls_span" && s.attr("marker") == Some(&*want))
            },
            || rotel.output(),
        );
        rotel.wait_log(&format!("tls record {marker}"));
    }
}

#[test]
fn mutual_tls_needs_the_client_certificate() {
    let rotel = Rotel::start();
    let pki = Pki::new();
    let proxy = TlsProxy::start(&pki, &rotel, true);
    for protocol in ["grpc", "http/protobuf"] {
        let marker = format!("mtls-{}", protocol.replace('/', "-"));
        let config = over(
            &proxy,
            protocol,
            &[
                ("OTEL_EXPORTER_OTLP_CERTIFICATE", path(&pki.file("ca.pem"))),
                (
                    "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
                    path(&pki.file("client.pem")),
                ),
                (
                    "OTEL_EXPORTER_OTLP_CLIENT_KEY",
                    path(&pki.file("client.key")),
                ),
            ],
        );
        export(config, &marker);
        rotel.wait_log(&format!("tls record {marker}"));
    }
    // Without it the handshake fails, and the failure says TLS.
    for protocol in ["grpc", "http/protobuf"] {
        let config = over(
            &proxy,
            protocol,
            &[("OTEL_EXPORTER_OTLP_CERTIFICATE", path(&pki.file("ca.pem")))],
        );
        let lines = export(config.logs(false), "no-client-cert");
        let failed = otel_support::export_failure(&lines);
        assert!(failed.contains("\"failure\":\""), "{protocol}: {failed}");
    }
    assert!(!rotel.output().contains("no-client-cert"));
}

/// Metrics over mutual TLS, with the files of their own `_METRICS_` variables, over both
/// transports.
#[test]
fn metrics_over_mutual_tls_with_their_own_files() {
    let rotel = Rotel::start();
    let pki = Pki::new();
    let proxy = TlsProxy::start(&pki, &rotel, true);
    for protocol in ["grpc", "http/protobuf"] {
        let marker = format!("metrics-{}", protocol.replace('/', "-"));
        let config = over(
            &proxy,
            protocol,
            &[
                ("OTEL_METRICS_EXPORTER", "otlp".to_owned()),
                ("OTEL_TRACES_EXPORTER", "none".to_owned()),
                ("OTEL_LOGS_EXPORTER", "none".to_owned()),
                ("OTEL_RESOURCE_ATTRIBUTES", format!("marker={marker}")),
                (
                    "OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE",
                    path(&pki.file("ca.pem")),
                ),
                (
                    "OTEL_EXPORTER_OTLP_METRICS_CLIENT_CERTIFICATE",
                    path(&pki.file("client.pem")),
                ),
                (
                    "OTEL_EXPORTER_OTLP_METRICS_CLIENT_KEY",
                    path(&pki.file("client.key")),
                ),
            ],
        );
        export(config, &marker);
        otel_support::wait_until(
            Duration::from_secs(20),
            &format!("the metrics of {marker} at the collector"),
            || {
                let out = rotel.output();
                (out.contains("ResourceMetrics") && out.contains(&format!("marker: Str({marker})")))
                    .then_some(())
            },
            || rotel.output(),
        );
    }
}

/// TLS files set for an `http://` endpoint are not used: said once at start, per endpoint.
#[test]
fn tls_files_for_an_http_endpoint_are_said_at_start() {
    let pki = Pki::new();
    let port = otel_support::free_port();
    let config = from_env(&[
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://127.0.0.1:{port}"),
        ),
        ("OTEL_EXPORTER_OTLP_CERTIFICATE", path(&pki.file("ca.pem"))),
    ]);
    let lines = MemoryWriter::new();
    let guard = tracelight::builder()
        .service("tls")
        .writer(lines.clone())
        .format(tracelight::Format::Json)
        .otel(config.shutdown_timeout(Duration::from_millis(200)))
        .init_local()
        .unwrap();
    drop(guard);
    let said: Vec<String> = lines
        .lines()
        .into_iter()
        .filter(|l| l.contains("are not used"))
        .collect();
    assert_eq!(said.len(), 1, "{}", lines.contents());
    assert!(
        said[0].contains("\"level\":\"WARN\"")
            && said[0].contains("OTEL_EXPORTER_OTLP_CERTIFICATE set")
            && said[0].contains(&format!("traces to http://127.0.0.1:{port}/v1/traces"))
            && said[0].contains(&format!("logs to http://127.0.0.1:{port}/v1/logs")),
        "{said:?}"
    );
}

#[test]
fn a_collector_the_ca_did_not_sign_is_a_tls_failure() {
    let rotel = Rotel::start();
    let pki = Pki::new();
    let proxy = TlsProxy::start(&pki, &rotel, false);
    for protocol in ["grpc", "http/protobuf"] {
        let config = over(
            &proxy,
            protocol,
            &[(
                "OTEL_EXPORTER_OTLP_CERTIFICATE",
                path(&pki.file("other-ca.pem")),
            )],
        );
        let lines = export(config.logs(false), "untrusted");
        let failed = otel_support::export_failure(&lines);
        assert!(
            failed.contains("\"failure\":\"TLS failed\""),
            "{protocol}: {failed}"
        );
    }
    assert!(!rotel.output().contains("untrusted"));
}

#[test]
fn missing_or_malformed_files_stop_init_naming_the_variable() {
    let pki = Pki::new();
    std::fs::write(pki.file("junk.pem"), "not a certificate").unwrap();
    let cases = [
        (
            "OTEL_EXPORTER_OTLP_CERTIFICATE",
            path(&pki.file("nope.pem")),
            "readable",
        ),
        (
            "OTEL_EXPORTER_OTLP_CERTIFICATE",
            path(&pki.file("junk.pem")),
            "CERTIFICATE",
        ),
        (
            "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE",
            path(&pki.file("client.pem")),
            "OTEL_EXPORTER_OTLP_CLIENT_KEY",
        ),
        (
            "OTEL_EXPORTER_OTLP_CLIENT_KEY",
            path(&pki.file("junk.pem")),
            "OTEL_EXPORTER_OTLP_CLIENT_KEY",
        ),
    ];
    for (var, value, says) in cases {
        let mut vars = vec![
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "https://127.0.0.1:4318".to_owned(),
            ),
            (var, value),
        ];
        if var == "OTEL_EXPORTER_OTLP_CLIENT_KEY" {
            vars.push((
                "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
                path(&pki.file("client.pem")),
            ));
        }
        let err = tracelight::builder()
            .writer(MemoryWriter::new())
            .otel(from_env(&vars))
            .init_local()
            .unwrap_err()
            .to_string();
        assert!(err.contains(var) && err.contains(says), "{var}: {err}");
    }
    // The same files in code name the setting.
    let err = tracelight::builder()
        .writer(MemoryWriter::new())
        .otel(
            OtelConfig::new()
                .endpoint("https://127.0.0.1:4318")
                .certificate(pki.file("nope.pem")),
        )
        .init_local()
        .unwrap_err()
        .to_string();
    assert!(err.contains("certificate"), "{err}");
}
