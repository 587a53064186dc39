//! [`OtelConfig`]: what to export, where, and how — from the environment or in code.

use std::time::Duration;

use crate::error::Error;

/// The OTLP transport.
///
/// ```
/// use tracelight::otel::Protocol;
/// assert_eq!("grpc".parse::<Protocol>(), Ok(Protocol::Grpc));
/// assert_eq!("http/protobuf".parse::<Protocol>(), Ok(Protocol::HttpProtobuf));
/// assert!("http/json".parse::<Protocol>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Protocol {
    /// OTLP over gRPC (HTTP/2), usually port 4317.
    Grpc,
    /// OTLP over HTTP/1.1 with protobuf bodies, usually port 4318 (the OpenTelemetry default).
    #[default]
    HttpProtobuf,
}

/// The values `OTEL_EXPORTER_OTLP_PROTOCOL` accepts.
const PROTOCOLS: &str = "one of grpc, http/protobuf";

impl std::str::FromStr for Protocol {
    type Err = ();
    fn from_str(s: &str) -> Result<Protocol, ()> {
        match s.trim().to_ascii_lowercase().as_str() {
            "grpc" => Ok(Protocol::Grpc),
            "http/protobuf" => Ok(Protocol::HttpProtobuf),
            _ => Err(()),
        }
    }
}

/// Which traces are recorded and exported (`OTEL_TRACES_SAMPLER`).
///
/// The parent-based samplers follow the caller's decision for a trace that comes in with a
/// `traceparent`, and apply their root rule to new traces.
///
/// ```
/// use tracelight::otel::Sampler;
/// assert_eq!(Sampler::parse("parentbased_traceidratio", Some("0.25")).unwrap(), Sampler::ParentBasedRatio(0.25));
/// assert_eq!(Sampler::parse("always_on", None).unwrap(), Sampler::AlwaysOn);
/// let err = Sampler::parse("sometimes", None).unwrap_err();
/// assert!(err.to_string().contains("OTEL_TRACES_SAMPLER"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[non_exhaustive]
pub enum Sampler {
    /// Every trace (`always_on`).
    AlwaysOn,
    /// No trace (`always_off`); lines still carry the ids of the current context.
    AlwaysOff,
    /// A fraction of traces, chosen by trace id (`traceidratio`, with the ratio in
    /// `OTEL_TRACES_SAMPLER_ARG`).
    Ratio(f64),
    /// The parent's decision; new traces are kept (`parentbased_always_on`, the default).
    #[default]
    ParentBasedAlwaysOn,
    /// The parent's decision; new traces are dropped (`parentbased_always_off`).
    ParentBasedAlwaysOff,
    /// The parent's decision; a fraction of new traces (`parentbased_traceidratio`).
    ParentBasedRatio(f64),
}

impl Eq for Sampler {}

/// The values `OTEL_TRACES_SAMPLER` accepts.
const SAMPLERS: &str = "one of always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off, parentbased_traceidratio";

impl Sampler {
    /// Parses `OTEL_TRACES_SAMPLER` and its `OTEL_TRACES_SAMPLER_ARG` (a ratio between 0 and 1,
    /// default 1, for the ratio samplers).
    pub fn parse(name: &str, arg: Option<&str>) -> Result<Sampler, Error> {
        let ratio = || -> Result<f64, Error> {
            match arg.map(str::trim).filter(|a| !a.is_empty()) {
                None => Ok(1.0),
                Some(a) => match a.parse::<f64>() {
                    Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
                    _ => Err(Error::env(
                        "OTEL_TRACES_SAMPLER_ARG",
                        a,
                        "a ratio between 0 and 1, like 0.25",
                    )),
                },
            }
        };
        Ok(match name.trim().to_ascii_lowercase().as_str() {
            "always_on" => Sampler::AlwaysOn,
            "always_off" => Sampler::AlwaysOff,
            "traceidratio" => Sampler::Ratio(ratio()?),
            "parentbased_always_on" => Sampler::ParentBasedAlwaysOn,
            "parentbased_always_off" => Sampler::ParentBasedAlwaysOff,
            "parentbased_traceidratio" => Sampler::ParentBasedRatio(ratio()?),
            _ => return Err(Error::env("OTEL_TRACES_SAMPLER", name, SAMPLERS)),
        })
    }

    pub(crate) fn to_sdk(self) -> opentelemetry_sdk::trace::Sampler {
        use opentelemetry_sdk::trace::Sampler as S;
        match self {
            Sampler::AlwaysOn => S::AlwaysOn,
            Sampler::AlwaysOff => S::AlwaysOff,
            Sampler::Ratio(r) => S::TraceIdRatioBased(r),
            Sampler::ParentBasedAlwaysOn => S::ParentBased(Box::new(S::AlwaysOn)),
            Sampler::ParentBasedAlwaysOff => S::ParentBased(Box::new(S::AlwaysOff)),
            Sampler::ParentBasedRatio(r) => S::ParentBased(Box::new(S::TraceIdRatioBased(r))),
        }
    }
}

/// Batching of one signal: a bounded queue in front of one export thread.
///
/// ```
/// use std::time::Duration;
/// let b = tracelight::otel::BatchConfig::default().max_queue_size(4096).scheduled_delay(Duration::from_millis(200));
/// assert_eq!(b.get_max_queue_size(), 4096);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchConfig {
    pub(crate) max_queue_size: usize,
    pub(crate) max_export_batch_size: usize,
    pub(crate) scheduled_delay: Duration,
    pub(crate) export_timeout: Duration,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            max_queue_size: 2048,
            max_export_batch_size: 512,
            scheduled_delay: Duration::from_secs(1),
            export_timeout: Duration::from_secs(10),
        }
    }
}

impl BatchConfig {
    /// Items held while the collector is slow or away; past it new items are dropped and counted.
    /// Default 2048.
    pub fn max_queue_size(mut self, n: usize) -> BatchConfig {
        self.max_queue_size = n.max(1);
        self
    }

    /// The queue size set.
    pub fn get_max_queue_size(&self) -> usize {
        self.max_queue_size
    }

    /// Items per export request. Default 512.
    pub fn max_export_batch_size(mut self, n: usize) -> BatchConfig {
        self.max_export_batch_size = n.max(1);
        self
    }

    /// The longest an item waits in the queue before an export. Default 1 s.
    pub fn scheduled_delay(mut self, d: Duration) -> BatchConfig {
        self.scheduled_delay = d;
        self
    }

    /// The longest one export may take before it is abandoned (and its items counted as failed).
    /// Default 10 s, or `OTEL_EXPORTER_OTLP_TIMEOUT`.
    pub fn export_timeout(mut self, d: Duration) -> BatchConfig {
        self.export_timeout = d;
        self
    }
}

/// Where a setting came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Origin(pub(crate) &'static str);

/// OpenTelemetry export settings. Export is on when an endpoint is set (by
/// `OTEL_EXPORTER_OTLP_ENDPOINT`, a signal's own endpoint variable, or
/// [`endpoint`](OtelConfig::endpoint)); otherwise tracelight only writes its own lines.
///
/// | variable | accepted values | default |
/// |---|---|---|
/// | `OTEL_EXPORTER_OTLP_ENDPOINT` | base URL: `http://collector:4317` (gRPC) or `http://collector:4318` (HTTP, `/v1/traces` and `/v1/logs` are appended) | export off |
/// | `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, `OTEL_EXPORTER_OTLP_LOGS_ENDPOINT` | the full URL for one signal, used as is | — |
/// | `OTEL_EXPORTER_OTLP_PROTOCOL` (and `_TRACES_`/`_LOGS_` variants) | `grpc`, `http/protobuf` | `http/protobuf` |
/// | `OTEL_EXPORTER_OTLP_TIMEOUT` | milliseconds per export | `10000` |
/// | `OTEL_EXPORTER_OTLP_HEADERS` | `key=value,…` (read by the exporter) | — |
/// | `OTEL_SERVICE_NAME` | the `service.name` resource attribute | tracelight's service |
/// | `OTEL_RESOURCE_ATTRIBUTES` | `key=value,…` (values percent-encoded) | — |
/// | `OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG` | see [`Sampler`] | `parentbased_always_on` |
/// | `OTEL_TRACES_EXPORTER`, `OTEL_LOGS_EXPORTER` | `otlp`, `none` | `otlp` |
/// | `OTEL_SDK_DISABLED` | `true`/`false` | `false` |
/// | `OTEL_BSP_MAX_QUEUE_SIZE`, `OTEL_BSP_MAX_EXPORT_BATCH_SIZE`, `OTEL_BSP_SCHEDULE_DELAY` (ms), `OTEL_BSP_EXPORT_TIMEOUT` (ms); `OTEL_BLRP_*` for logs | numbers | 2048, 512, 1000, 10000 |
///
/// ```
/// use tracelight::otel::{OtelConfig, Protocol, Sampler};
/// let vars = [
///     ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317"),
///     ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
///     ("OTEL_RESOURCE_ATTRIBUTES", "team=payments,region=eu%2Dwest"),
/// ];
/// let c = OtelConfig::from_lookup(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())).unwrap();
/// assert!(c.is_enabled());
/// assert_eq!(c.get_protocol(), Protocol::Grpc);
///
/// let in_code = OtelConfig::new().endpoint("http://127.0.0.1:4318").sampler(Sampler::Ratio(0.1));
/// assert!(in_code.is_enabled());
///
/// let err = OtelConfig::from_lookup(|k| (k == "OTEL_EXPORTER_OTLP_PROTOCOL").then(|| "http/json".to_string())).unwrap_err();
/// assert!(err.to_string().contains("grpc, http/protobuf"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OtelConfig {
    pub(crate) endpoint: Option<(String, Origin)>,
    pub(crate) traces_endpoint: Option<(String, Origin)>,
    pub(crate) logs_endpoint: Option<(String, Origin)>,
    pub(crate) protocol: Option<Protocol>,
    pub(crate) traces_protocol: Option<Protocol>,
    pub(crate) logs_protocol: Option<Protocol>,
    pub(crate) service_name: Option<String>,
    pub(crate) service_version: Option<String>,
    pub(crate) resource: Vec<(String, String)>,
    pub(crate) sampler: Option<Sampler>,
    pub(crate) traces: Option<bool>,
    pub(crate) logs: Option<bool>,
    pub(crate) disabled: Option<bool>,
    pub(crate) export_timeout: Option<Duration>,
    pub(crate) traces_batch: Option<BatchConfig>,
    pub(crate) logs_batch: Option<BatchConfig>,
    pub(crate) shutdown_timeout: Option<Duration>,
}

impl OtelConfig {
    /// Nothing set: export off until an endpoint is given.
    pub fn new() -> OtelConfig {
        OtelConfig::default()
    }

    /// Reads the `OTEL_*` variables of the process environment (see the table above).
    ///
    /// ```
    /// let c = tracelight::otel::OtelConfig::from_env().unwrap();
    /// # let _ = c;
    /// ```
    pub fn from_env() -> Result<OtelConfig, Error> {
        OtelConfig::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads the `OTEL_*` variables through `lookup`.
    pub fn from_lookup(
        mut lookup: impl FnMut(&str) -> Option<String>,
    ) -> Result<OtelConfig, Error> {
        let mut get = |k: &str| lookup(k).filter(|v| !v.trim().is_empty());
        OtelConfig::read(&mut get)
    }

    pub(crate) fn read(get: &mut dyn FnMut(&str) -> Option<String>) -> Result<OtelConfig, Error> {
        let mut c = OtelConfig::default();
        if let Some(v) = get("OTEL_SDK_DISABLED") {
            c.disabled = Some(crate::env::parse_bool("OTEL_SDK_DISABLED", &v)?);
        }
        for (var, slot) in [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &mut c.endpoint),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", &mut c.traces_endpoint),
            ("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", &mut c.logs_endpoint),
        ] {
            if let Some(v) = get(var) {
                check_endpoint(&v).map_err(|why| Error::env(var, v.clone(), why))?;
                *slot = Some((v.trim().to_owned(), Origin(var)));
            }
        }
        for (var, slot) in [
            ("OTEL_EXPORTER_OTLP_PROTOCOL", &mut c.protocol),
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", &mut c.traces_protocol),
            ("OTEL_EXPORTER_OTLP_LOGS_PROTOCOL", &mut c.logs_protocol),
        ] {
            if let Some(v) = get(var) {
                *slot = Some(
                    v.parse()
                        .map_err(|()| Error::env(var, v.clone(), PROTOCOLS))?,
                );
            }
        }
        if let Some(v) = get("OTEL_SERVICE_NAME") {
            c.service_name = Some(v.trim().to_owned());
        }
        if let Some(v) = get("OTEL_RESOURCE_ATTRIBUTES") {
            c.resource = parse_resource_attributes(&v)
                .map_err(|why| Error::env("OTEL_RESOURCE_ATTRIBUTES", v.clone(), why))?;
        }
        if let Some(v) = get("OTEL_TRACES_SAMPLER") {
            let arg = get("OTEL_TRACES_SAMPLER_ARG");
            c.sampler = Some(Sampler::parse(&v, arg.as_deref())?);
        }
        for (var, slot) in [
            ("OTEL_TRACES_EXPORTER", &mut c.traces),
            ("OTEL_LOGS_EXPORTER", &mut c.logs),
        ] {
            if let Some(v) = get(var) {
                *slot = Some(match v.trim().to_ascii_lowercase().as_str() {
                    "otlp" => true,
                    "none" => false,
                    _ => return Err(Error::env(var, v, "one of otlp, none")),
                });
            }
        }
        if let Some(v) = get("OTEL_EXPORTER_OTLP_TIMEOUT") {
            c.export_timeout = Some(parse_millis("OTEL_EXPORTER_OTLP_TIMEOUT", &v)?);
        }
        c.traces_batch = read_batch("OTEL_BSP_", get)?;
        c.logs_batch = read_batch("OTEL_BLRP_", get)?;
        Ok(c)
    }

    /// The base URL of the collector, for both signals: `http://collector:4317` for gRPC,
    /// `http://collector:4318` for HTTP (where `/v1/traces` and `/v1/logs` are appended). Turns
    /// export on.
    pub fn endpoint(mut self, url: impl Into<String>) -> OtelConfig {
        self.endpoint = Some((url.into(), Origin("otlp_endpoint")));
        self
    }

    /// The full URL for traces, used as is (overrides [`endpoint`](OtelConfig::endpoint)).
    ///
    /// ```
    /// let c = tracelight::otel::OtelConfig::new().traces_endpoint("http://127.0.0.1:4318/v1/traces");
    /// assert!(c.is_enabled());
    /// ```
    pub fn traces_endpoint(mut self, url: impl Into<String>) -> OtelConfig {
        self.traces_endpoint = Some((url.into(), Origin("traces_endpoint")));
        self
    }

    /// The full URL for logs, used as is (overrides [`endpoint`](OtelConfig::endpoint)).
    pub fn logs_endpoint(mut self, url: impl Into<String>) -> OtelConfig {
        self.logs_endpoint = Some((url.into(), Origin("logs_endpoint")));
        self
    }

    /// The transport for both signals. Default [`Protocol::HttpProtobuf`].
    pub fn protocol(mut self, protocol: Protocol) -> OtelConfig {
        self.protocol = Some(protocol);
        self.traces_protocol = None;
        self.logs_protocol = None;
        self
    }

    /// The transport set for both signals (default [`Protocol::HttpProtobuf`]).
    pub fn get_protocol(&self) -> Protocol {
        self.protocol.unwrap_or_default()
    }

    /// The `service.name` resource attribute (default: tracelight's service name).
    pub fn service_name(mut self, name: impl Into<String>) -> OtelConfig {
        self.service_name = Some(name.into());
        self
    }

    /// The `service.version` resource attribute, such as `env!("CARGO_PKG_VERSION")`.
    ///
    /// ```
    /// let c = tracelight::otel::OtelConfig::new().service_version(env!("CARGO_PKG_VERSION"));
    /// # let _ = c;
    /// ```
    pub fn service_version(mut self, version: impl Into<String>) -> OtelConfig {
        self.service_version = Some(version.into());
        self
    }

    /// Adds a resource attribute (after those of `OTEL_RESOURCE_ATTRIBUTES`, so it wins).
    pub fn resource_attribute(
        mut self,
        key: impl Into<String>,
        value: impl Into<String>,
    ) -> OtelConfig {
        let key = key.into();
        self.resource.retain(|(k, _)| *k != key);
        self.resource.push((key, value.into()));
        self
    }

    /// The sampler. Default [`Sampler::ParentBasedAlwaysOn`].
    pub fn sampler(mut self, sampler: Sampler) -> OtelConfig {
        self.sampler = Some(sampler);
        self
    }

    /// Whether spans are exported. Default on.
    pub fn traces(mut self, on: bool) -> OtelConfig {
        self.traces = Some(on);
        self
    }

    /// Whether events are exported as log records. Default on.
    pub fn logs(mut self, on: bool) -> OtelConfig {
        self.logs = Some(on);
        self
    }

    /// Batching of spans. Default [`BatchConfig::default`].
    pub fn traces_batch(mut self, batch: BatchConfig) -> OtelConfig {
        self.traces_batch = Some(batch);
        self
    }

    /// Batching of log records. Default [`BatchConfig::default`].
    pub fn logs_batch(mut self, batch: BatchConfig) -> OtelConfig {
        self.logs_batch = Some(batch);
        self
    }

    /// The longest the guard waits, when dropped, for the last exports. Default 5 s.
    pub fn shutdown_timeout(mut self, d: Duration) -> OtelConfig {
        self.shutdown_timeout = Some(d);
        self
    }

    /// Whether this configuration exports anything.
    pub fn is_enabled(&self) -> bool {
        if self.disabled == Some(true) {
            return false;
        }
        let traces = self.traces != Some(false)
            && (self.endpoint.is_some() || self.traces_endpoint.is_some());
        let logs =
            self.logs != Some(false) && (self.endpoint.is_some() || self.logs_endpoint.is_some());
        traces || logs
    }

    /// `other`'s settings where it has them, ours elsewhere.
    pub(crate) fn merge(self, other: OtelConfig) -> OtelConfig {
        let mut resource = self.resource;
        for (k, v) in other.resource {
            resource.retain(|(rk, _)| *rk != k);
            resource.push((k, v));
        }
        OtelConfig {
            endpoint: other.endpoint.or(self.endpoint),
            traces_endpoint: other.traces_endpoint.or(self.traces_endpoint),
            logs_endpoint: other.logs_endpoint.or(self.logs_endpoint),
            protocol: other.protocol.or(self.protocol),
            traces_protocol: other.traces_protocol.or(self.traces_protocol),
            logs_protocol: other.logs_protocol.or(self.logs_protocol),
            service_name: other.service_name.or(self.service_name),
            service_version: other.service_version.or(self.service_version),
            resource,
            sampler: other.sampler.or(self.sampler),
            traces: other.traces.or(self.traces),
            logs: other.logs.or(self.logs),
            disabled: other.disabled.or(self.disabled),
            export_timeout: other.export_timeout.or(self.export_timeout),
            traces_batch: other.traces_batch.or(self.traces_batch),
            logs_batch: other.logs_batch.or(self.logs_batch),
            shutdown_timeout: other.shutdown_timeout.or(self.shutdown_timeout),
        }
    }

    /// The endpoint URL and transport of one signal, or `None` when that signal is off.
    pub(crate) fn signal(&self, logs: bool) -> Result<Option<(String, Protocol)>, Error> {
        if self.disabled == Some(true) {
            return Ok(None);
        }
        let (on, own, own_protocol, path) = if logs {
            (
                self.logs,
                &self.logs_endpoint,
                self.logs_protocol,
                "/v1/logs",
            )
        } else {
            (
                self.traces,
                &self.traces_endpoint,
                self.traces_protocol,
                "/v1/traces",
            )
        };
        if on == Some(false) {
            return Ok(None);
        }
        let protocol = own_protocol.or(self.protocol).unwrap_or_default();
        let url = match (own, &self.endpoint) {
            (Some((url, origin)), _) => {
                check(url, origin)?;
                url.trim().to_owned()
            }
            (None, Some((base, origin))) => {
                check(base, origin)?;
                let base = base.trim();
                match protocol {
                    Protocol::Grpc => base.to_owned(),
                    Protocol::HttpProtobuf => format!("{}{path}", base.trim_end_matches('/')),
                }
            }
            (None, None) => return Ok(None),
        };
        Ok(Some((url, protocol)))
    }

    pub(crate) fn batch(&self, logs: bool) -> BatchConfig {
        let mut b = if logs {
            self.logs_batch
        } else {
            self.traces_batch
        }
        .unwrap_or_default();
        if let Some(t) = self.export_timeout {
            // A batch timeout set on its own wins over the exporter's.
            let own = if logs {
                self.logs_batch
            } else {
                self.traces_batch
            };
            if own.is_none_or(|o| o.export_timeout == BatchConfig::default().export_timeout) {
                b.export_timeout = t;
            }
        }
        b
    }
}

fn check(url: &str, origin: &Origin) -> Result<(), Error> {
    check_endpoint(url).map_err(|why| {
        if origin.0.starts_with("OTEL_") {
            Error::env(origin.0, url, why)
        } else {
            Error::InvalidSetting {
                setting: origin.0.to_owned(),
                reason: format!("{url:?}: expected {why}"),
            }
        }
    })
}

/// Checks that `url` is an absolute `http://` or `https://` URL with a host.
fn check_endpoint(url: &str) -> Result<(), &'static str> {
    const WHAT: &str = "an http:// or https:// URL such as http://127.0.0.1:4317";
    let url = url.trim();
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or(WHAT)?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.is_empty()
        || authority.contains(char::is_whitespace)
        || url.chars().any(char::is_control)
    {
        return Err(WHAT);
    }
    // `[user@]host[:port]`, the host an IPv6 address in brackets or a name: a port, when
    // given, is a number from 1 to 65535 (else the export would fail only when it is tried).
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let port = match host_port.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((_, "")) => None,
            Some((_, after)) => Some(after.strip_prefix(':').ok_or(WHAT)?),
            None => return Err(WHAT),
        },
        None => host_port.split_once(':').map(|(_, p)| p),
    };
    if let Some(p) = port {
        let ok = !p.is_empty()
            && p.bytes().all(|b| b.is_ascii_digit())
            && p.parse::<u16>().is_ok_and(|n| n > 0);
        if !ok {
            return Err("an http:// or https:// URL whose port is a number from 1 to 65535, such as http://127.0.0.1:4317");
        }
    }
    if host_port.starts_with(':') {
        return Err(WHAT);
    }
    Ok(())
}

fn parse_millis(var: &str, v: &str) -> Result<Duration, Error> {
    v.trim()
        .parse::<u64>()
        .map(Duration::from_millis)
        .map_err(|_| Error::env(var, v, "a number of milliseconds, like 10000"))
}

fn read_batch(
    prefix: &str,
    get: &mut dyn FnMut(&str) -> Option<String>,
) -> Result<Option<BatchConfig>, Error> {
    let mut b = BatchConfig::default();
    let mut any = false;
    let count = |var: &str, v: &str| -> Result<usize, Error> {
        match v.trim().parse::<usize>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(Error::env(var, v, "a positive number, like 2048")),
        }
    };
    let var = format!("{prefix}MAX_QUEUE_SIZE");
    if let Some(v) = get(&var) {
        b.max_queue_size = count(&var, &v)?;
        any = true;
    }
    let var = format!("{prefix}MAX_EXPORT_BATCH_SIZE");
    if let Some(v) = get(&var) {
        b.max_export_batch_size = count(&var, &v)?;
        any = true;
    }
    let var = format!("{prefix}SCHEDULE_DELAY");
    if let Some(v) = get(&var) {
        b.scheduled_delay = parse_millis(&var, &v)?;
        any = true;
    }
    let var = format!("{prefix}EXPORT_TIMEOUT");
    if let Some(v) = get(&var) {
        b.export_timeout = parse_millis(&var, &v)?;
        any = true;
    }
    Ok(any.then_some(b))
}

/// Parses `key=value,key2=value2` with percent-encoded values (the W3C baggage octet rules).
pub(crate) fn parse_resource_attributes(s: &str) -> Result<Vec<(String, String)>, &'static str> {
    const WHAT: &str = "comma-separated key=value pairs, like service.version=1.2.0,team=payments (values percent-encoded)";
    let mut out: Vec<(String, String)> = Vec::new();
    for pair in s.split(',') {
        if pair.trim().is_empty() {
            continue;
        }
        let (k, v) = pair.split_once('=').ok_or(WHAT)?;
        let k = k.trim();
        if k.is_empty() || k.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(WHAT);
        }
        let v = percent_decode(v.trim()).ok_or(WHAT)?;
        out.retain(|(ok, _)| ok != k);
        out.push((k.to_owned(), v));
    }
    Ok(out)
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(vars: &[(&str, &str)]) -> Result<OtelConfig, Error> {
        OtelConfig::from_lookup(|k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn endpoints_per_protocol() {
        let c = cfg(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://h:4318/")]).unwrap();
        assert_eq!(
            c.signal(false).unwrap(),
            Some(("http://h:4318/v1/traces".into(), Protocol::HttpProtobuf))
        );
        assert_eq!(
            c.signal(true).unwrap(),
            Some(("http://h:4318/v1/logs".into(), Protocol::HttpProtobuf))
        );
        let c = cfg(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://h:4317"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_LOGS_EXPORTER", "none"),
        ])
        .unwrap();
        assert_eq!(
            c.signal(false).unwrap(),
            Some(("http://h:4317".into(), Protocol::Grpc))
        );
        assert_eq!(c.signal(true).unwrap(), None);
        let c = cfg(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://h:9/t")]).unwrap();
        assert!(c.is_enabled());
        assert_eq!(c.signal(true).unwrap(), None);
        assert!(!cfg(&[]).unwrap().is_enabled());
        let c = cfg(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://h:4317"),
            ("OTEL_SDK_DISABLED", "true"),
        ])
        .unwrap();
        assert!(!c.is_enabled());
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (var, value, expected) in [
            (
                "OTEL_EXPORTER_OTLP_PROTOCOL",
                "http/json",
                "grpc, http/protobuf",
            ),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317", "http://"),
            ("OTEL_TRACES_SAMPLER", "sometimes", "parentbased_always_on"),
            ("OTEL_RESOURCE_ATTRIBUTES", "novalue", "key=value"),
            ("OTEL_TRACES_EXPORTER", "jaeger", "otlp, none"),
            ("OTEL_BSP_MAX_QUEUE_SIZE", "-1", "positive"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "10s", "milliseconds"),
        ] {
            let e = cfg(&[(var, value)]).unwrap_err().to_string();
            assert!(e.contains(var) && e.contains(expected), "{e}");
        }
        let e = cfg(&[
            ("OTEL_TRACES_SAMPLER", "traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "2"),
        ])
        .unwrap_err()
        .to_string();
        assert!(e.contains("OTEL_TRACES_SAMPLER_ARG"), "{e}");
        let e = OtelConfig::new()
            .endpoint("localhost:4317")
            .signal(false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("otlp_endpoint"), "{e}");
        // A port that is not one fails at start, naming the variable, not at the first export.
        for bad in [
            "http://127.0.0.1:notaport",
            "http://127.0.0.1:0",
            "http://127.0.0.1:70000",
            "http://127.0.0.1:",
            "http://[::1]x",
            "http://:4317",
        ] {
            let e = cfg(&[("OTEL_EXPORTER_OTLP_ENDPOINT", bad)])
                .unwrap_err()
                .to_string();
            assert!(e.contains("OTEL_EXPORTER_OTLP_ENDPOINT"), "{bad}: {e}");
        }
        for good in [
            "http://127.0.0.1:4317",
            "https://collector.example:443/otlp",
            "http://[::1]:4318",
            "http://[::1]",
            "http://user@collector:4318",
            "http://collector",
        ] {
            assert!(check_endpoint(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn resource_attributes_are_decoded() {
        assert_eq!(
            parse_resource_attributes("a=1, b = x%2Cy ,a=2").unwrap(),
            vec![
                ("b".to_string(), "x,y".to_string()),
                ("a".into(), "2".into())
            ]
        );
        assert!(parse_resource_attributes("a=%zz").is_err());
    }
}
