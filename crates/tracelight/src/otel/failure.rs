//! What failed, when an export fails: refused, timed out, TLS, an HTTP status or a gRPC code,
//! said first, with the error's whole chain after it.
//!
//! The HTTP exporter keeps only "network error" of a failed request; [`DescribedClient`] is the
//! same reqwest client, which notes the error's chain before the exporter drops it.

#[cfg(feature = "otel-http")]
pub(crate) use described::DescribedClient;

/// Without the HTTP transport: nothing to describe.
#[cfg(not(feature = "otel-http"))]
#[derive(Debug, Clone)]
pub(crate) struct DescribedClient;

#[cfg(not(feature = "otel-http"))]
impl DescribedClient {
    pub(crate) fn new(
        _timeout: std::time::Duration,
        _headers: &[(String, String)],
        _tls: Option<&super::tls::Tls>,
    ) -> Result<DescribedClient, String> {
        Ok(DescribedClient)
    }

    pub(crate) fn take_reason(&self) -> Option<String> {
        None
    }

    pub(crate) fn clear(&self) {}
}

#[cfg(feature = "otel-http")]
mod described {
    use std::sync::{Arc, Mutex};

    use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};

    use super::chain;

    /// An `https://` endpoint's client: hyper over rustls with `ring`, configured here rather
    /// than through reqwest's TLS features, which would change how every other reqwest client
    /// of the application picks its TLS.
    type TlsClient = hyper_util::client::legacy::Client<
        hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
        http_body_util::Full<Bytes>,
    >;

    #[derive(Debug, Clone)]
    enum Inner {
        Plain(reqwest::Client),
        Tls(Box<TlsClient>, std::time::Duration),
    }

    /// The most of a collector's answer that is read.
    const MAX_ANSWER: usize = 1 << 20;

    /// The HTTP client the OTLP HTTP exporter uses (reqwest, or hyper over TLS for `https://`),
    /// remembering why the last request failed.
    #[derive(Debug, Clone)]
    pub(crate) struct DescribedClient {
        inner: Inner,
        last: Arc<Mutex<Option<String>>>,
        /// The headers resolved from tracelight's configuration, set last on each request: the
        /// exporter adds `OTEL_EXPORTER_OTLP_HEADERS` again by itself, which must not win over
        /// a header set in code.
        headers: Arc<Vec<(http::HeaderName, http::HeaderValue)>>,
    }

    impl DescribedClient {
        pub(crate) fn new(
            timeout: std::time::Duration,
            headers: &[(String, String)],
            tls: Option<&crate::otel::tls::Tls>,
        ) -> Result<DescribedClient, String> {
            let inner = match tls {
                None => Inner::Plain(
                    reqwest::Client::builder()
                        .timeout(timeout)
                        .build()
                        .map_err(|e| e.to_string())?,
                ),
                Some(tls) => {
                    let https = hyper_rustls::HttpsConnectorBuilder::new()
                        .with_tls_config(tls.client_config()?)
                        .https_only()
                        .enable_http1()
                        .build();
                    let client = hyper_util::client::legacy::Client::builder(
                        hyper_util::rt::TokioExecutor::new(),
                    )
                    .build(https);
                    Inner::Tls(Box::new(client), timeout)
                }
            };
            Ok(DescribedClient {
                inner,
                last: Arc::new(Mutex::new(None)),
                headers: Arc::new(super::header_map(headers)),
            })
        }

        async fn send(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
            match &self.inner {
                Inner::Plain(c) => c.send_bytes(request).await,
                Inner::Tls(c, timeout) => {
                    use http_body_util::BodyExt as _;
                    let (parts, body) = request.into_parts();
                    let request = http::Request::from_parts(parts, http_body_util::Full::new(body));
                    let answer = async {
                        let response = c.request(request).await?;
                        let (parts, body) = response.into_parts();
                        let body = http_body_util::Limited::new(body, MAX_ANSWER)
                            .collect()
                            .await?
                            .to_bytes();
                        Ok::<_, HttpError>(Response::from_parts(parts, body))
                    };
                    match tokio::time::timeout(*timeout, answer).await {
                        Ok(result) => result,
                        Err(_) => Err(format!("no answer within {timeout:?}").into()),
                    }
                }
            }
        }

        /// Why the last request failed, once.
        pub(crate) fn take_reason(&self) -> Option<String> {
            self.last.lock().unwrap_or_else(|p| p.into_inner()).take()
        }

        /// Forgets an earlier failure (one the exporter's retry got past): called before each
        /// export.
        pub(crate) fn clear(&self) {
            *self.last.lock().unwrap_or_else(|p| p.into_inner()) = None;
        }
    }

    #[async_trait::async_trait]
    impl HttpClient for DescribedClient {
        async fn send_bytes(
            &self,
            mut request: Request<Bytes>,
        ) -> Result<Response<Bytes>, HttpError> {
            for (k, v) in self.headers.iter() {
                request.headers_mut().insert(k.clone(), v.clone());
            }
            match self.send(request).await {
                Ok(r) => Ok(r),
                Err(e) => {
                    *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some(chain(&*e));
                    Err(e)
                }
            }
        }
    }
}

/// Resolved headers as HTTP types (checked when resolved; one that is not valid is left out).
#[cfg_attr(
    not(any(feature = "otel-http", feature = "otel-grpc")),
    allow(dead_code)
)]
pub(crate) fn header_map(
    headers: &[(String, String)],
) -> Vec<(http::HeaderName, http::HeaderValue)> {
    headers
        .iter()
        .filter_map(|(k, v)| {
            Some((
                http::HeaderName::from_bytes(k.as_bytes()).ok()?,
                http::HeaderValue::from_str(v).ok()?,
            ))
        })
        .collect()
}

/// `reason` with what the default redaction rules mask masked: an error's text can quote the
/// endpoint URL, with the password of its user info, or a header.
pub(crate) fn scrub(reason: &str) -> String {
    static RULES: std::sync::OnceLock<crate::redact::Redactor> = std::sync::OnceLock::new();
    RULES
        .get_or_init(crate::redact::Redactor::default)
        .redact_str(reason)
}

/// An error and its sources, `: `-joined, a source that repeats its cause left out.
#[cfg_attr(not(feature = "otel-http"), allow(dead_code))]
pub(crate) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if parts.last() != Some(&text) {
            parts.push(text);
        }
        cur = s.source();
    }
    parts.join(": ")
}

/// The kind of failure `reason` describes, said first in the report (from the text without the
/// URLs it quotes, whose host names could read as a kind).
pub(crate) fn classify(reason: &str) -> &'static str {
    let mut r = reason.to_ascii_lowercase();
    while let Some(start) = r.find("http://").or_else(|| r.find("https://")) {
        let end = r[start..]
            .find([' ', ')', ','])
            .map_or(r.len(), |e| start + e);
        r.replace_range(start..end, "");
    }
    if r.contains("connection refused") {
        "connection refused"
    } else if r.contains("no answer within") || r.contains("timed out") || r.contains("deadline") {
        "timed out"
    } else if r.contains("certificate") || r.contains("tls") || r.contains("handshake") {
        "TLS failed"
    } else if r.contains("dns error")
        || r.contains("failed to lookup")
        || r.contains("name or service not known")
    {
        "host not found"
    } else if r.contains("status code") {
        "the collector answered with an error status"
    } else if r.contains("grpc code") {
        "the collector answered with a gRPC error"
    } else if r.contains("connection reset") || r.contains("broken pipe") || r.contains("closed") {
        "connection closed"
    } else {
        "export failed"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        for (reason, kind) in [
            ("error sending request: client error (Connect): tcp connect error: Connection refused (os error 111)", "connection refused"),
            ("no answer within 500ms", "timed out"),
            ("Operation failed: HTTP export failed with status code: 404", "the collector answered with an error status"),
            ("Operation failed: TonicTracesClient export failed with gRPC code: Unauthenticated: no key", "the collector answered with a gRPC error"),
            ("invalid peer certificate: UnknownIssuer", "TLS failed"),
            ("dns error: failed to lookup address information", "host not found"),
            ("transport error: connection error: stream closed because of a broken pipe", "connection closed"),
            ("error sending request for url (http://otel-tls-gw:4318/v1/traces): dns error: failed to lookup address information", "host not found"),
        ] {
            assert_eq!(classify(reason), kind, "{reason}");
        }
        let e = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert_eq!(chain(&e), "refused");
    }
}
