//! TLS to the collector, for `https://` endpoints: rustls with the `ring` provider (no aws-lc,
//! no OpenSSL), over both transports.
//!
//! The files (a CA, a client certificate and key) are read and checked when export starts, so a
//! missing or malformed one is an error naming the variable or setting that gave it, not a
//! failure at every export. Without a CA the system's roots are used (`rustls-native-certs`:
//! the platform's store, or `SSL_CERT_FILE` / `SSL_CERT_DIR`).

#![cfg_attr(
    not(any(feature = "otel-http", feature = "otel-grpc")),
    allow(dead_code)
)]

use std::path::Path;

#[cfg(any(feature = "otel-http", feature = "otel-grpc"))]
use rustls::pki_types::pem::PemObject as _;
#[cfg(any(feature = "otel-http", feature = "otel-grpc"))]
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::config::{Origin, TlsPaths};
use crate::error::Error;

/// The TLS files of one signal's exporter, read and checked.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Tls {
    /// The CA certificates (PEM), when given: they replace the system's roots.
    pub(crate) ca: Option<Vec<u8>>,
    /// The client's certificate chain and private key (PEM), for mutual TLS.
    pub(crate) identity: Option<(Vec<u8>, Vec<u8>)>,
}

/// The key is a secret: never shown.
impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("ca", &self.ca.as_ref().map(Vec::len))
            .field("identity", &self.identity.is_some())
            .finish()
    }
}

fn bad(origin: &Origin, path: &Path, why: impl Into<String>) -> Error {
    origin.invalid(path.display().to_string(), why)
}

fn read(file: &(std::path::PathBuf, Origin)) -> Result<Vec<u8>, Error> {
    std::fs::read(&file.0).map_err(|e| bad(&file.1, &file.0, format!("a readable PEM file ({e})")))
}

#[cfg(any(feature = "otel-http", feature = "otel-grpc"))]
fn certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("a PEM file of certificates ({e})"))?;
    if certs.is_empty() {
        return Err("a PEM file with at least one CERTIFICATE block".to_owned());
    }
    Ok(certs)
}

#[cfg(any(feature = "otel-http", feature = "otel-grpc"))]
fn private_key(pem: &[u8]) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_slice(pem)
        .map_err(|e| format!("a PEM file with a private key (PKCS#8, RSA or SEC1) ({e})"))
}

/// Without a transport nothing is exported: nothing to check (the protocol is refused at start).
#[cfg(not(any(feature = "otel-http", feature = "otel-grpc")))]
fn certificates(_pem: &[u8]) -> Result<(), String> {
    Ok(())
}

#[cfg(not(any(feature = "otel-http", feature = "otel-grpc")))]
fn private_key(_pem: &[u8]) -> Result<(), String> {
    Ok(())
}

impl Tls {
    /// Reads and checks the files of `paths`.
    pub(crate) fn load(paths: &TlsPaths) -> Result<Tls, Error> {
        let ca = match &paths.ca {
            Some(file) => {
                let pem = read(file)?;
                certificates(&pem).map_err(|why| bad(&file.1, &file.0, why))?;
                Some(pem)
            }
            None => None,
        };
        let identity = match (&paths.cert, &paths.key) {
            (None, None) => None,
            (Some(cert), Some(key)) => {
                let cert_pem = read(cert)?;
                certificates(&cert_pem).map_err(|why| bad(&cert.1, &cert.0, why))?;
                let key_pem = read(key)?;
                private_key(&key_pem).map_err(|why| bad(&key.1, &key.0, why))?;
                Some((cert_pem, key_pem))
            }
            (Some((path, origin)), None) | (None, Some((path, origin))) => {
                return Err(bad(
                    origin,
                    path,
                    "a client certificate and a client key, both \
                     (OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE and OTEL_EXPORTER_OTLP_CLIENT_KEY)",
                ));
            }
        };
        Ok(Tls { ca, identity })
    }

    /// The rustls configuration of the HTTP exporter's client.
    #[cfg(feature = "otel-http")]
    pub(crate) fn client_config(&self) -> Result<rustls::ClientConfig, String> {
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?;
        let mut roots = rustls::RootCertStore::empty();
        match &self.ca {
            Some(pem) => {
                for cert in certificates(pem)? {
                    roots
                        .add(cert)
                        .map_err(|e| format!("the CA certificate: {e}"))?;
                }
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                let (added, _) = roots.add_parsable_certificates(found.certs);
                if added == 0 {
                    return Err(format!(
                        "no CA certificate: none in the system's store ({} errors reading it); \
                         give one with OTEL_EXPORTER_OTLP_CERTIFICATE",
                        found.errors.len()
                    ));
                }
            }
        }
        let builder = builder.with_root_certificates(roots);
        match &self.identity {
            Some((cert, key)) => builder
                .with_client_auth_cert(certificates(cert)?, private_key(key)?)
                .map_err(|e| format!("the client certificate: {e}")),
            None => Ok(builder.with_no_client_auth()),
        }
    }

    /// The tonic configuration of the gRPC exporter's channel.
    #[cfg(feature = "otel-grpc")]
    pub(crate) fn tonic_config(
        &self,
    ) -> opentelemetry_otlp::tonic_types::transport::ClientTlsConfig {
        use opentelemetry_otlp::tonic_types::transport::{Certificate, ClientTlsConfig, Identity};
        let mut config = ClientTlsConfig::new();
        config = match &self.ca {
            Some(pem) => config.ca_certificate(Certificate::from_pem(pem)),
            None => config.with_enabled_roots(),
        };
        if let Some((cert, key)) = &self.identity {
            config = config.identity(Identity::from_pem(cert, key));
        }
        config
    }
}

#[cfg(all(test, any(feature = "otel-http", feature = "otel-grpc")))]
mod tests {
    use super::*;

    fn paths(ca: Option<&Path>, cert: Option<&Path>, key: Option<&Path>) -> TlsPaths {
        let o = |p: Option<&Path>, v: &'static str| p.map(|p| (p.to_path_buf(), Origin(v)));
        TlsPaths {
            ca: o(ca, "OTEL_EXPORTER_OTLP_CERTIFICATE"),
            cert: o(cert, "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE"),
            key: o(key, "OTEL_EXPORTER_OTLP_CLIENT_KEY"),
        }
    }

    #[test]
    fn bad_files_are_refused_naming_their_variable() {
        let dir = std::env::temp_dir().join(format!("tl-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_default();
        let missing = dir.join("missing.pem");
        let err = Tls::load(&paths(Some(&missing), None, None))
            .expect_err("a missing CA")
            .to_string();
        assert!(err.contains("OTEL_EXPORTER_OTLP_CERTIFICATE"), "{err}");
        let junk = dir.join("junk.pem");
        std::fs::write(&junk, "not a certificate").unwrap_or_default();
        let err = Tls::load(&paths(Some(&junk), None, None))
            .expect_err("no certificate in it")
            .to_string();
        assert!(err.contains("CERTIFICATE block"), "{err}");
        let err = Tls::load(&paths(None, Some(&junk), None))
            .expect_err("a certificate without its key")
            .to_string();
        assert!(err.contains("OTEL_EXPORTER_OTLP_CLIENT_KEY"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn nothing_given_is_the_system_roots() {
        assert_eq!(
            Tls::load(&TlsPaths::default()).ok(),
            Some(Tls {
                ca: None,
                identity: None
            })
        );
    }
}
