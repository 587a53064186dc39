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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Protocol {
    /// OTLP over gRPC (HTTP/2), usually port 4317.
    Grpc,
    /// OTLP over HTTP/1.1 with protobuf bodies, usually port 4318 (the OpenTelemetry default).
    HttpProtobuf,
}

/// HTTP/protobuf, the OpenTelemetry default; gRPC in a build that has only `otel-grpc`.
impl Default for Protocol {
    fn default() -> Self {
        if cfg!(all(feature = "otel-grpc", not(feature = "otel-http"))) {
            Protocol::Grpc
        } else {
            Protocol::HttpProtobuf
        }
    }
}

impl Protocol {
    /// The name `OTEL_EXPORTER_OTLP_PROTOCOL` gives it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Protocol::Grpc => "grpc",
            Protocol::HttpProtobuf => "http/protobuf",
        }
    }

    /// The crate feature that compiles it in.
    pub(crate) fn feature(self) -> &'static str {
        match self {
            Protocol::Grpc => "otel-grpc",
            Protocol::HttpProtobuf => "otel-http",
        }
    }

    /// Whether this build has it.
    pub(crate) fn compiled(self) -> bool {
        match self {
            Protocol::Grpc => cfg!(feature = "otel-grpc"),
            Protocol::HttpProtobuf => cfg!(feature = "otel-http"),
        }
    }

    /// An error naming the feature, when this build does not have it.
    pub(crate) fn check_compiled(self) -> Result<(), Error> {
        if self.compiled() {
            return Ok(());
        }
        Err(Error::InvalidSetting {
            setting: "OTEL_EXPORTER_OTLP_PROTOCOL (or OtelConfig::protocol)".to_owned(),
            reason: format!(
                "{} needs tracelight's `{}` feature (or `otel`, which has both transports)",
                self.name(),
                self.feature()
            ),
        })
    }
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

/// Compression of export requests (`OTEL_EXPORTER_OTLP_COMPRESSION`).
///
/// ```
/// use tracelight::otel::Compression;
/// assert_eq!("gzip".parse::<Compression>(), Ok(Compression::Gzip));
/// assert!("bogus".parse::<Compression>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Compression {
    /// Bodies sent as they are (the default).
    #[default]
    None,
    /// Bodies gzip-compressed (`Content-Encoding: gzip`, or gRPC's `grpc-encoding: gzip`).
    Gzip,
}

/// The values `OTEL_EXPORTER_OTLP_COMPRESSION` accepts.
const COMPRESSIONS: &str = "one of gzip, none";

impl std::str::FromStr for Compression {
    type Err = ();
    fn from_str(s: &str) -> Result<Compression, ()> {
        match s.trim().to_ascii_lowercase().as_str() {
            "gzip" => Ok(Compression::Gzip),
            "none" => Ok(Compression::None),
            _ => Err(()),
        }
    }
}

/// The propagators of `OTEL_PROPAGATORS` that tracelight has.
const PROPAGATORS: &str =
    "a comma-separated list of tracecontext, baggage, or none (b3, b3multi, jaeger, xray and ottrace are not supported)";

/// What trace context the HTTP middleware reads and writes (`OTEL_PROPAGATORS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Propagators {
    pub(crate) tracecontext: bool,
    pub(crate) baggage: bool,
}

impl Default for Propagators {
    fn default() -> Self {
        Propagators {
            tracecontext: true,
            baggage: true,
        }
    }
}

impl Propagators {
    fn parse(v: &str) -> Result<Propagators, Error> {
        let mut p = Propagators {
            tracecontext: false,
            baggage: false,
        };
        for name in v.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match name.to_ascii_lowercase().as_str() {
                "tracecontext" => p.tracecontext = true,
                "baggage" => p.baggage = true,
                "none" => {}
                _ => return Err(Error::env("OTEL_PROPAGATORS", v, PROPAGATORS)),
            }
        }
        Ok(p)
    }
}

/// Span limits (`OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT` and the others of the specification).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct SpanLimits {
    pub(crate) attributes: Option<u32>,
    pub(crate) events: Option<u32>,
    pub(crate) links: Option<u32>,
    pub(crate) event_attributes: Option<u32>,
    pub(crate) link_attributes: Option<u32>,
}

/// The variables of the OpenTelemetry SDK environment specification (and of common SDKs) that
/// tracelight does not honour: named in one warning at start, never an error, since platforms
/// set them for every service of a cluster.
const NOT_HONOURED: &[&str] = &[
    "OTEL_EXPORTER_OTLP_INSECURE",
    "OTEL_EXPORTER_OTLP_TRACES_INSECURE",
    "OTEL_EXPORTER_OTLP_LOGS_INSECURE",
    "OTEL_EXPORTER_OTLP_METRICS_INSECURE",
    "OTEL_METRICS_EXEMPLAR_FILTER",
    "OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION",
    "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT",
    "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT",
    "OTEL_LOGRECORD_ATTRIBUTE_VALUE_LENGTH_LIMIT",
    "OTEL_LOGRECORD_ATTRIBUTE_COUNT_LIMIT",
    "OTEL_LOG_LEVEL",
    "OTEL_CONFIG_FILE",
    "OTEL_EXPERIMENTAL_CONFIG_FILE",
    "OTEL_EXPORTER_ZIPKIN_ENDPOINT",
    "OTEL_EXPORTER_ZIPKIN_TIMEOUT",
    "OTEL_EXPORTER_PROMETHEUS_HOST",
    "OTEL_EXPORTER_PROMETHEUS_PORT",
    "OTEL_EXPORTER_JAEGER_ENDPOINT",
];

/// The variables tracelight reads (see the table of [`OtelConfig`]).
const HONOURED: &[&str] = &[
    "OTEL_SDK_DISABLED",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    "OTEL_EXPORTER_OTLP_LOGS_HEADERS",
    "OTEL_EXPORTER_OTLP_COMPRESSION",
    "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
    "OTEL_EXPORTER_OTLP_LOGS_COMPRESSION",
    "OTEL_EXPORTER_OTLP_TIMEOUT",
    "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
    "OTEL_EXPORTER_OTLP_LOGS_TIMEOUT",
    "OTEL_EXPORTER_OTLP_CERTIFICATE",
    "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
    "OTEL_EXPORTER_OTLP_CLIENT_KEY",
    "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE",
    "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE",
    "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY",
    "OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE",
    "OTEL_EXPORTER_OTLP_LOGS_CLIENT_CERTIFICATE",
    "OTEL_EXPORTER_OTLP_LOGS_CLIENT_KEY",
    "OTEL_METRICS_EXPORTER",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
    "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
    "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION",
    "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT",
    "OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE",
    "OTEL_EXPORTER_OTLP_METRICS_CLIENT_CERTIFICATE",
    "OTEL_EXPORTER_OTLP_METRICS_CLIENT_KEY",
    "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE",
    "OTEL_METRIC_EXPORT_INTERVAL",
    "OTEL_METRIC_EXPORT_TIMEOUT",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
    "OTEL_TRACES_EXPORTER",
    "OTEL_LOGS_EXPORTER",
    "OTEL_PROPAGATORS",
    "OTEL_BSP_MAX_QUEUE_SIZE",
    "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
    "OTEL_BSP_SCHEDULE_DELAY",
    "OTEL_BSP_EXPORT_TIMEOUT",
    "OTEL_BLRP_MAX_QUEUE_SIZE",
    "OTEL_BLRP_MAX_EXPORT_BATCH_SIZE",
    "OTEL_BLRP_SCHEDULE_DELAY",
    "OTEL_BLRP_EXPORT_TIMEOUT",
    "OTEL_ATTRIBUTE_COUNT_LIMIT",
    "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT",
    "OTEL_SPAN_EVENT_COUNT_LIMIT",
    "OTEL_SPAN_LINK_COUNT_LIMIT",
    "OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT",
    "OTEL_LINK_ATTRIBUTE_COUNT_LIMIT",
];

/// The `OTEL_*` names among `names` that no list knows (a misspelling, or a setting of another
/// SDK), sorted: named in the start-up warning with the ones not honoured.
pub(crate) fn unknown_names<'a>(names: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut unknown: Vec<String> = names
        .filter(|k| k.starts_with("OTEL_") && !HONOURED.contains(k) && !NOT_HONOURED.contains(k))
        .map(str::to_owned)
        .collect();
    unknown.sort();
    unknown.dedup();
    unknown
}

/// The one start-up warning that names the `OTEL_*` variables set that have no effect.
pub(crate) fn not_honoured_warning(names: &[String]) -> Option<String> {
    (!names.is_empty()).then(|| {
        format!(
            "these OpenTelemetry variables are set but tracelight does not support them, so they \
             have no effect: {} (docs/opentelemetry.md lists what is supported)",
            names.join(", ")
        )
    })
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

/// The files of a TLS connection to the collector, each with where it was set: the CA that signs
/// the collector's certificate, and the client's certificate and key (mutual TLS).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct TlsPaths {
    pub(crate) ca: Option<(std::path::PathBuf, Origin)>,
    pub(crate) cert: Option<(std::path::PathBuf, Origin)>,
    pub(crate) key: Option<(std::path::PathBuf, Origin)>,
}

impl TlsPaths {
    /// `self`'s files where it has them, `base`'s elsewhere: the CA on its own, the client's
    /// certificate and key as a pair (setting one of them takes neither from `base`, so that a
    /// certificate is never paired with another setting's key).
    fn over(&self, base: &TlsPaths) -> TlsPaths {
        let (cert, key) = if self.cert.is_some() || self.key.is_some() {
            (self.cert.clone(), self.key.clone())
        } else {
            (base.cert.clone(), base.key.clone())
        };
        TlsPaths {
            ca: self.ca.clone().or_else(|| base.ca.clone()),
            cert,
            key,
        }
    }
}

/// Where a setting came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Origin(pub(crate) &'static str);

impl Origin {
    /// The error for a bad `value` of this setting: naming the variable when it came from the
    /// environment, the builder's setting otherwise.
    pub(crate) fn invalid(&self, value: String, why: impl Into<String>) -> Error {
        if self.0.starts_with("OTEL_") {
            Error::env(self.0, value, why)
        } else {
            Error::InvalidSetting {
                setting: self.0.to_owned(),
                reason: format!("{value:?}: expected {}", why.into()),
            }
        }
    }
}

/// OpenTelemetry export settings. Export is on when an endpoint is set (by
/// `OTEL_EXPORTER_OTLP_ENDPOINT`, a signal's own endpoint variable, or
/// [`endpoint`](OtelConfig::endpoint)); otherwise tracelight only writes its own lines.
///
/// | variable | accepted values | default |
/// |---|---|---|
/// | `OTEL_EXPORTER_OTLP_ENDPOINT` | base URL: `http://collector:4317` (gRPC) or `http://collector:4318` (HTTP, `/v1/traces` and `/v1/logs` are appended) | export off |
/// | `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, `OTEL_EXPORTER_OTLP_LOGS_ENDPOINT` | the full URL for one signal, used as is | — |
/// | `OTEL_EXPORTER_OTLP_PROTOCOL` (and `_TRACES_`/`_LOGS_` variants) | `grpc`, `http/protobuf` | `http/protobuf` |
/// | `OTEL_EXPORTER_OTLP_TIMEOUT` (and `_TRACES_`/`_LOGS_` variants) | milliseconds per export | `10000` |
/// | `OTEL_EXPORTER_OTLP_HEADERS` (and `_TRACES_`/`_LOGS_` variants) | `key=value,…`, values percent-encoded | — |
/// | `OTEL_EXPORTER_OTLP_COMPRESSION` (and `_TRACES_`/`_LOGS_` variants) | `gzip`, `none` | `none` |
/// | `OTEL_EXPORTER_OTLP_CERTIFICATE` (and `_TRACES_`/`_LOGS_` variants) | a PEM file of CA certificates, for `https://` | the system's roots |
/// | `OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE`, `OTEL_EXPORTER_OTLP_CLIENT_KEY` (and `_TRACES_`/`_LOGS_` variants) | PEM files of the client's certificate chain and key (mutual TLS), both or neither | — |
/// | `OTEL_PROPAGATORS` | `tracecontext`, `baggage`, `none` | `tracecontext,baggage` |
/// | `OTEL_ATTRIBUTE_COUNT_LIMIT`, `OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT`, `OTEL_SPAN_EVENT_COUNT_LIMIT`, `OTEL_SPAN_LINK_COUNT_LIMIT`, `OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT`, `OTEL_LINK_ATTRIBUTE_COUNT_LIMIT` | whole numbers | 128 |
/// | `OTEL_SERVICE_NAME` | the `service.name` resource attribute | tracelight's service |
/// | `OTEL_RESOURCE_ATTRIBUTES` | `key=value,…` (values percent-encoded) | — |
/// | `OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG` | see [`Sampler`] | `parentbased_always_on` |
/// | `OTEL_TRACES_EXPORTER`, `OTEL_LOGS_EXPORTER` | `otlp`, `none` | `otlp` |
/// | `OTEL_METRICS_EXPORTER` | a list of `otlp`, `none` (`prometheus` and `console` are named in the start-up warning) | `none` (see [`metrics`](OtelConfig::metrics)) |
/// | `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT` and the other `_METRICS_` forms of the settings above | as for traces and logs (`/v1/metrics` is appended to the general HTTP endpoint) | the general settings |
/// | `OTEL_METRIC_EXPORT_INTERVAL`, `OTEL_METRIC_EXPORT_TIMEOUT` | milliseconds | `60000`, `30000` |
/// | `OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE` | `cumulative` (`delta` and `lowmemory` are named in the start-up warning) | `cumulative` |
/// | `OTEL_SDK_DISABLED` | `true`/`false` | `false` |
/// | `OTEL_BSP_MAX_QUEUE_SIZE`, `OTEL_BSP_MAX_EXPORT_BATCH_SIZE`, `OTEL_BSP_SCHEDULE_DELAY` (ms), `OTEL_BSP_EXPORT_TIMEOUT` (ms); `OTEL_BLRP_*` for logs | numbers | 2048, 512, 1000, 10000 |
///
/// The other variables of the specification (`OTEL_EXPORTER_OTLP_INSECURE`, exemplars, value length limits…)
/// and unknown `OTEL_*` names are not refused: [`Config`](crate::Config) names them in one
/// start-up warning, and so does [`OtelPipeline::start`](crate::otel::OtelPipeline::start).
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
#[derive(Clone, PartialEq, Eq, Default)]
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
    pub(crate) compression: Option<Compression>,
    pub(crate) traces_compression: Option<Compression>,
    pub(crate) logs_compression: Option<Compression>,
    pub(crate) headers: Option<Vec<(String, String)>>,
    pub(crate) traces_headers: Option<Vec<(String, String)>>,
    pub(crate) logs_headers: Option<Vec<(String, String)>>,
    pub(crate) traces_timeout: Option<Duration>,
    pub(crate) logs_timeout: Option<Duration>,
    pub(crate) propagators: Option<Propagators>,
    pub(crate) tls: TlsPaths,
    pub(crate) traces_tls: TlsPaths,
    pub(crate) logs_tls: TlsPaths,
    pub(crate) span_limits: SpanLimits,
    /// Metrics export: off unless asked for (`OTEL_METRICS_EXPORTER=otlp`, [`metrics`]).
    ///
    /// [`metrics`]: OtelConfig::metrics
    pub(crate) metrics: Option<bool>,
    pub(crate) metrics_endpoint: Option<(String, Origin)>,
    pub(crate) metrics_protocol: Option<Protocol>,
    pub(crate) metrics_compression: Option<Compression>,
    pub(crate) metrics_headers: Option<Vec<(String, String)>>,
    pub(crate) metrics_timeout: Option<Duration>,
    pub(crate) metrics_tls: TlsPaths,
    /// `OTEL_METRIC_EXPORT_INTERVAL`.
    pub(crate) metric_interval: Option<Duration>,
    /// `OTEL_METRIC_EXPORT_TIMEOUT`.
    pub(crate) metric_export_timeout: Option<Duration>,
    /// `OTEL_*` variables set that tracelight does not honour, to name at start.
    pub(crate) not_honoured: Vec<String>,
}

/// Header values are credentials: `Debug` shows their names only.
impl std::fmt::Debug for OtelConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names = |h: &Option<Vec<(String, String)>>| {
            h.as_ref().map(|h| {
                h.iter()
                    .map(|(k, _)| format!("{k}: [not shown]"))
                    .collect::<Vec<_>>()
            })
        };
        f.debug_struct("OtelConfig")
            .field(
                "endpoint",
                &self.endpoint.as_ref().map(|(u, _)| without_password(u)),
            )
            .field(
                "traces_endpoint",
                &self
                    .traces_endpoint
                    .as_ref()
                    .map(|(u, _)| without_password(u)),
            )
            .field(
                "logs_endpoint",
                &self
                    .logs_endpoint
                    .as_ref()
                    .map(|(u, _)| without_password(u)),
            )
            .field("protocol", &self.protocol)
            .field("traces_protocol", &self.traces_protocol)
            .field("logs_protocol", &self.logs_protocol)
            .field("service_name", &self.service_name)
            .field("service_version", &self.service_version)
            .field("resource", &self.resource)
            .field("sampler", &self.sampler)
            .field("traces", &self.traces)
            .field("logs", &self.logs)
            .field("disabled", &self.disabled)
            .field("export_timeout", &self.export_timeout)
            .field("traces_timeout", &self.traces_timeout)
            .field("logs_timeout", &self.logs_timeout)
            .field("traces_batch", &self.traces_batch)
            .field("logs_batch", &self.logs_batch)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field("compression", &self.compression)
            .field("traces_compression", &self.traces_compression)
            .field("logs_compression", &self.logs_compression)
            .field("headers", &names(&self.headers))
            .field("traces_headers", &names(&self.traces_headers))
            .field("logs_headers", &names(&self.logs_headers))
            .field("propagators", &self.propagators)
            .field("tls", &self.tls)
            .field("traces_tls", &self.traces_tls)
            .field("logs_tls", &self.logs_tls)
            .field("span_limits", &self.span_limits)
            .field("metrics", &self.metrics)
            .field(
                "metrics_endpoint",
                &self
                    .metrics_endpoint
                    .as_ref()
                    .map(|(u, _)| without_password(u)),
            )
            .field("metrics_protocol", &self.metrics_protocol)
            .field("metrics_compression", &self.metrics_compression)
            .field("metrics_headers", &names(&self.metrics_headers))
            .field("metrics_timeout", &self.metrics_timeout)
            .field("metrics_tls", &self.metrics_tls)
            .field("metric_interval", &self.metric_interval)
            .field("metric_export_timeout", &self.metric_export_timeout)
            .field("not_honoured", &self.not_honoured)
            .finish()
    }
}

/// What one signal's exporter is built with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SignalSettings {
    pub(crate) url: String,
    pub(crate) protocol: Protocol,
    pub(crate) compression: Compression,
    pub(crate) headers: Vec<(String, String)>,
    /// The TLS files, read and checked, for an `https://` URL.
    pub(crate) tls: Option<super::tls::Tls>,
    /// TLS files set for a URL that is not `https://`: where they were set, to say at start that
    /// they are not used.
    pub(crate) unused_tls: Vec<&'static str>,
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
        let mut c = OtelConfig::from_lookup(|k| std::env::var(k).ok())?;
        let set: Vec<String> = std::env::vars_os()
            .filter(|(_, v)| !v.is_empty())
            .filter_map(|(k, _)| k.into_string().ok())
            .collect();
        c.not_honoured
            .extend(unknown_names(set.iter().map(String::as_str)));
        Ok(c)
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
            (
                "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
                &mut c.metrics_endpoint,
            ),
        ] {
            if let Some(v) = get(var) {
                check_endpoint(&v).map_err(|why| Error::env(var, without_password(&v), why))?;
                *slot = Some((v.trim().to_owned(), Origin(var)));
            }
        }
        for (var, slot) in [
            ("OTEL_EXPORTER_OTLP_PROTOCOL", &mut c.protocol),
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", &mut c.traces_protocol),
            ("OTEL_EXPORTER_OTLP_LOGS_PROTOCOL", &mut c.logs_protocol),
            (
                "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
                &mut c.metrics_protocol,
            ),
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
        for (var, slot) in [
            ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", &mut c.traces_timeout),
            ("OTEL_EXPORTER_OTLP_LOGS_TIMEOUT", &mut c.logs_timeout),
            ("OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", &mut c.metrics_timeout),
            ("OTEL_METRIC_EXPORT_INTERVAL", &mut c.metric_interval),
            ("OTEL_METRIC_EXPORT_TIMEOUT", &mut c.metric_export_timeout),
        ] {
            if let Some(v) = get(var) {
                *slot = Some(parse_millis(var, &v)?);
            }
        }
        for (var, slot) in [
            ("OTEL_EXPORTER_OTLP_COMPRESSION", &mut c.compression),
            (
                "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
                &mut c.traces_compression,
            ),
            (
                "OTEL_EXPORTER_OTLP_LOGS_COMPRESSION",
                &mut c.logs_compression,
            ),
            (
                "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION",
                &mut c.metrics_compression,
            ),
        ] {
            if let Some(v) = get(var) {
                *slot = Some(
                    v.parse()
                        .map_err(|()| Error::env(var, v.clone(), COMPRESSIONS))?,
                );
            }
        }
        for (var, slot) in [
            ("OTEL_EXPORTER_OTLP_HEADERS", &mut c.headers),
            ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", &mut c.traces_headers),
            ("OTEL_EXPORTER_OTLP_LOGS_HEADERS", &mut c.logs_headers),
            ("OTEL_EXPORTER_OTLP_METRICS_HEADERS", &mut c.metrics_headers),
        ] {
            if let Some(v) = get(var) {
                // The value is not repeated in the error: headers carry credentials.
                *slot = Some(parse_headers(&v).map_err(|why| {
                    Error::env(var, "(not shown: headers may hold credentials)", why)
                })?);
            }
        }
        for (slot, vars) in [
            (
                &mut c.tls,
                [
                    "OTEL_EXPORTER_OTLP_CERTIFICATE",
                    "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
                    "OTEL_EXPORTER_OTLP_CLIENT_KEY",
                ],
            ),
            (
                &mut c.traces_tls,
                [
                    "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE",
                    "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE",
                    "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY",
                ],
            ),
            (
                &mut c.logs_tls,
                [
                    "OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE",
                    "OTEL_EXPORTER_OTLP_LOGS_CLIENT_CERTIFICATE",
                    "OTEL_EXPORTER_OTLP_LOGS_CLIENT_KEY",
                ],
            ),
            (
                &mut c.metrics_tls,
                [
                    "OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE",
                    "OTEL_EXPORTER_OTLP_METRICS_CLIENT_CERTIFICATE",
                    "OTEL_EXPORTER_OTLP_METRICS_CLIENT_KEY",
                ],
            ),
        ] {
            let [ca, cert, key] = vars;
            for (var, file) in [
                (ca, &mut slot.ca),
                (cert, &mut slot.cert),
                (key, &mut slot.key),
            ] {
                if let Some(v) = get(var) {
                    if v.trim().is_empty() {
                        return Err(Error::env(var, v, "the path of a PEM file"));
                    }
                    *file = Some((std::path::PathBuf::from(v.trim()), Origin(var)));
                }
            }
        }
        if let Some(v) = get("OTEL_PROPAGATORS") {
            c.propagators = Some(Propagators::parse(&v)?);
        }
        let general = match get("OTEL_ATTRIBUTE_COUNT_LIMIT") {
            Some(v) => Some(parse_count("OTEL_ATTRIBUTE_COUNT_LIMIT", &v)?),
            None => None,
        };
        for (var, slot, falls_back) in [
            (
                "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT",
                &mut c.span_limits.attributes,
                true,
            ),
            (
                "OTEL_SPAN_EVENT_COUNT_LIMIT",
                &mut c.span_limits.events,
                false,
            ),
            (
                "OTEL_SPAN_LINK_COUNT_LIMIT",
                &mut c.span_limits.links,
                false,
            ),
            (
                "OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT",
                &mut c.span_limits.event_attributes,
                true,
            ),
            (
                "OTEL_LINK_ATTRIBUTE_COUNT_LIMIT",
                &mut c.span_limits.link_attributes,
                true,
            ),
        ] {
            *slot = match get(var) {
                Some(v) => Some(parse_count(var, &v)?),
                None if falls_back => general,
                None => None,
            };
        }
        for (var, value) in [
            ("OTEL_METRIC_EXPORT_INTERVAL", c.metric_interval),
            ("OTEL_METRIC_EXPORT_TIMEOUT", c.metric_export_timeout),
        ] {
            if value == Some(Duration::ZERO) {
                return Err(Error::env(var, "0", "a positive number of milliseconds"));
            }
        }
        c.traces_batch = read_batch("OTEL_BSP_", get)?;
        c.logs_batch = read_batch("OTEL_BLRP_", get)?;
        if let Some(v) = get("OTEL_METRICS_EXPORTER") {
            // A list, as the specification has it: `otlp` turns the export on; the pull
            // exporters of other SDKs (`prometheus`: tracelight's admin `/metrics` is that) and
            // `console` are named in the start-up warning.
            let mut on = false;
            for item in v.split(',').map(|i| i.trim().to_ascii_lowercase()) {
                match item.as_str() {
                    "otlp" => on = true,
                    "none" | "" => {}
                    "prometheus" | "console" | "logging" => {
                        c.not_honoured.push(format!("OTEL_METRICS_EXPORTER={item}"))
                    }
                    _ => {
                        return Err(Error::env(
                            "OTEL_METRICS_EXPORTER",
                            v,
                            "a list of otlp, none (prometheus and console are not supported)",
                        ))
                    }
                }
            }
            c.metrics = Some(on);
        }
        if let Some(v) = get("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE") {
            // Every tracelight series is a total since start (or a value at the time): cumulative
            // is what there is; asking for delta is named in the start-up warning.
            match v.trim().to_ascii_lowercase().as_str() {
                "cumulative" => {}
                "delta" | "lowmemory" => c.not_honoured.push(format!(
                    "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE={} (metrics are cumulative)",
                    v.trim()
                )),
                _ => {
                    return Err(Error::env(
                        "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE",
                        v,
                        "one of cumulative, delta, lowmemory",
                    ))
                }
            }
        }
        for var in NOT_HONOURED {
            if get(var).is_some() {
                c.not_honoured.push((*var).to_owned());
            }
        }
        Ok(c)
    }

    /// Compression of export requests, for both signals. Default [`Compression::None`].
    ///
    /// ```
    /// use tracelight::otel::{Compression, OtelConfig};
    /// let c = OtelConfig::new().endpoint("http://127.0.0.1:4318").compression(Compression::Gzip);
    /// # let _ = c;
    /// ```
    pub fn compression(mut self, compression: Compression) -> OtelConfig {
        self.compression = Some(compression);
        self.traces_compression = None;
        self.logs_compression = None;
        self.metrics_compression = None;
        self
    }

    /// A header sent with every export request of both signals (an API key, a tenant), over
    /// those of `OTEL_EXPORTER_OTLP_HEADERS` and its per-signal forms (so it wins).
    ///
    /// ```
    /// let c = tracelight::otel::OtelConfig::new()
    ///     .endpoint("http://127.0.0.1:4318")
    ///     .header("x-api-key", "k-123");
    /// # let _ = c;
    /// ```
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> OtelConfig {
        let (name, value) = (name.into(), value.into());
        // It wins over a signal's own header of that name from the environment too.
        for own in [
            &mut self.traces_headers,
            &mut self.logs_headers,
            &mut self.metrics_headers,
        ]
        .into_iter()
        .flatten()
        {
            own.retain(|(k, _)| !k.eq_ignore_ascii_case(&name));
        }
        let headers = self.headers.get_or_insert_with(Vec::new);
        headers.retain(|(k, _)| !k.eq_ignore_ascii_case(&name));
        headers.push((name, value));
        self
    }

    /// The CA certificate (a PEM file) that signs the collector's certificate, for an
    /// `https://` endpoint, in place of the system's roots (`OTEL_EXPORTER_OTLP_CERTIFICATE`).
    /// Read and checked when export starts.
    ///
    /// ```
    /// let c = tracelight::otel::OtelConfig::new()
    ///     .endpoint("https://collector.internal:4318")
    ///     .certificate("/etc/otel/ca.pem");
    /// # let _ = c;
    /// ```
    pub fn certificate(mut self, ca_pem: impl Into<std::path::PathBuf>) -> OtelConfig {
        self.tls.ca = Some((ca_pem.into(), Origin("certificate")));
        self
    }

    /// The client's certificate chain and private key (PEM files), for a collector that asks
    /// for one (mutual TLS; `OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE` and
    /// `OTEL_EXPORTER_OTLP_CLIENT_KEY`).
    ///
    /// ```
    /// let c = tracelight::otel::OtelConfig::new()
    ///     .endpoint("https://collector.internal:4317")
    ///     .client_certificate("/etc/otel/client.pem", "/etc/otel/client.key");
    /// # let _ = c;
    /// ```
    pub fn client_certificate(
        mut self,
        cert_pem: impl Into<std::path::PathBuf>,
        key_pem: impl Into<std::path::PathBuf>,
    ) -> OtelConfig {
        self.tls.cert = Some((cert_pem.into(), Origin("client_certificate")));
        self.tls.key = Some((key_pem.into(), Origin("client_certificate")));
        self
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
        self.metrics_protocol = None;
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

    /// Whether tracelight's metrics (the series of the admin router's `/metrics`: events by
    /// level, errors by fingerprint, span durations, security events, stream and export
    /// statistics) are exported as OTLP metrics, every [`metric_export_interval`]. Default off
    /// (`OTEL_METRICS_EXPORTER=otlp` turns it on); they go to the same collector as the other
    /// signals unless [`metrics_endpoint`] says otherwise.
    ///
    /// ```
    /// let c = tracelight::otel::OtelConfig::new().endpoint("http://127.0.0.1:4318").metrics(true);
    /// assert!(c.is_enabled());
    /// ```
    ///
    /// [`metric_export_interval`]: OtelConfig::metric_export_interval
    /// [`metrics_endpoint`]: OtelConfig::metrics_endpoint
    pub fn metrics(mut self, on: bool) -> OtelConfig {
        self.metrics = Some(on);
        self
    }

    /// The full URL for metrics, used as is (overrides [`endpoint`](OtelConfig::endpoint)).
    /// Turns the metrics export on.
    ///
    /// ```
    /// let c = tracelight::otel::OtelConfig::new().metrics_endpoint("http://127.0.0.1:4318/v1/metrics");
    /// assert!(c.is_enabled());
    /// ```
    pub fn metrics_endpoint(mut self, url: impl Into<String>) -> OtelConfig {
        self.metrics_endpoint = Some((url.into(), Origin("metrics_endpoint")));
        self.metrics = Some(true);
        self
    }

    /// How often the metrics are exported (`OTEL_METRIC_EXPORT_INTERVAL`). Default 60 s, at
    /// least 10 ms; the last reading is also exported at shutdown.
    ///
    /// ```
    /// use std::time::Duration;
    /// let c = tracelight::otel::OtelConfig::new()
    ///     .endpoint("http://127.0.0.1:4318")
    ///     .metrics(true)
    ///     .metric_export_interval(Duration::from_secs(15));
    /// # let _ = c;
    /// ```
    pub fn metric_export_interval(mut self, every: Duration) -> OtelConfig {
        self.metric_interval = Some(every);
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
        let metrics = self.metrics == Some(true)
            && (self.endpoint.is_some() || self.metrics_endpoint.is_some());
        traces || logs || metrics
    }

    /// `other`'s settings where it has them, ours elsewhere.
    pub(crate) fn merge(self, other: OtelConfig) -> OtelConfig {
        let other_headers = other.headers.clone();
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
            compression: other.compression.or(self.compression),
            traces_compression: other.traces_compression.or(self.traces_compression),
            logs_compression: other.logs_compression.or(self.logs_compression),
            headers: match (self.headers, other.headers) {
                (Some(mut a), Some(b)) => {
                    for (k, v) in b {
                        a.retain(|(ak, _)| !ak.eq_ignore_ascii_case(&k));
                        a.push((k, v));
                    }
                    Some(a)
                }
                (a, b) => b.or(a),
            },
            // `other`'s general headers win over `self`'s per-signal ones of the same name.
            traces_headers: other
                .traces_headers
                .or_else(|| without_names(self.traces_headers, other_headers.as_deref())),
            logs_headers: other
                .logs_headers
                .or_else(|| without_names(self.logs_headers, other_headers.as_deref())),
            traces_timeout: other.traces_timeout.or(self.traces_timeout),
            logs_timeout: other.logs_timeout.or(self.logs_timeout),
            propagators: other.propagators.or(self.propagators),
            tls: other.tls.over(&self.tls),
            traces_tls: other.traces_tls.over(&self.traces_tls),
            logs_tls: other.logs_tls.over(&self.logs_tls),
            metrics: other.metrics.or(self.metrics),
            metrics_endpoint: other.metrics_endpoint.or(self.metrics_endpoint),
            metrics_protocol: other.metrics_protocol.or(self.metrics_protocol),
            metrics_compression: other.metrics_compression.or(self.metrics_compression),
            metrics_headers: other
                .metrics_headers
                .or_else(|| without_names(self.metrics_headers, other_headers.as_deref())),
            metrics_timeout: other.metrics_timeout.or(self.metrics_timeout),
            metrics_tls: other.metrics_tls.over(&self.metrics_tls),
            metric_interval: other.metric_interval.or(self.metric_interval),
            metric_export_timeout: other.metric_export_timeout.or(self.metric_export_timeout),
            span_limits: SpanLimits {
                attributes: other.span_limits.attributes.or(self.span_limits.attributes),
                events: other.span_limits.events.or(self.span_limits.events),
                links: other.span_limits.links.or(self.span_limits.links),
                event_attributes: other
                    .span_limits
                    .event_attributes
                    .or(self.span_limits.event_attributes),
                link_attributes: other
                    .span_limits
                    .link_attributes
                    .or(self.span_limits.link_attributes),
            },
            not_honoured: {
                let mut n = self.not_honoured;
                for v in other.not_honoured {
                    if !n.contains(&v) {
                        n.push(v);
                    }
                }
                n
            },
        }
    }

    /// The endpoint URL and transport of one signal, or `None` when that signal is off.
    pub(crate) fn signal(&self, logs: bool) -> Result<Option<SignalSettings>, Error> {
        if logs {
            self.resolve(Own {
                on: self.logs != Some(false),
                endpoint: &self.logs_endpoint,
                protocol: self.logs_protocol,
                path: "/v1/logs",
                compression: self.logs_compression,
                headers: &self.logs_headers,
                tls: &self.logs_tls,
            })
        } else {
            self.resolve(Own {
                on: self.traces != Some(false),
                endpoint: &self.traces_endpoint,
                protocol: self.traces_protocol,
                path: "/v1/traces",
                compression: self.traces_compression,
                headers: &self.traces_headers,
                tls: &self.traces_tls,
            })
        }
    }

    /// The metrics signal's settings, or `None` when metrics are not exported (the default).
    pub(crate) fn metrics_signal(&self) -> Result<Option<SignalSettings>, Error> {
        self.resolve(Own {
            on: self.metrics == Some(true),
            endpoint: &self.metrics_endpoint,
            protocol: self.metrics_protocol,
            path: "/v1/metrics",
            compression: self.metrics_compression,
            headers: &self.metrics_headers,
            tls: &self.metrics_tls,
        })
    }

    /// How often metrics are exported, and the longest one export may take: the exporter's
    /// timeout (`OTEL_EXPORTER_OTLP_METRICS_TIMEOUT`, then `OTEL_EXPORTER_OTLP_TIMEOUT`, 10 s),
    /// within `OTEL_METRIC_EXPORT_TIMEOUT` (30 s).
    #[cfg_attr(
        not(any(feature = "otel-http", feature = "otel-grpc")),
        allow(dead_code)
    )]
    pub(crate) fn metrics_schedule(&self) -> (Duration, Duration) {
        // At least 10 ms: a reading every few microseconds would only keep a core busy.
        let interval = self
            .metric_interval
            .unwrap_or(Duration::from_secs(60))
            .max(Duration::from_millis(10));
        let exporter = self
            .metrics_timeout
            .or(self.export_timeout)
            .unwrap_or(Duration::from_secs(10));
        let bound = self
            .metric_export_timeout
            .unwrap_or(Duration::from_secs(30));
        (interval, exporter.min(bound))
    }

    /// What to say at start about these settings (whether or not anything is exported):
    /// metrics settings without metrics, metrics without an endpoint.
    pub(crate) fn setting_warnings(&self) -> Vec<String> {
        let mut w: Vec<String> = self.metrics_settings_unused().into_iter().collect();
        if self.metrics == Some(true)
            && self.disabled != Some(true)
            && self.endpoint.is_none()
            && self.metrics_endpoint.is_none()
        {
            w.push(
                "OpenTelemetry metrics are turned on (OTEL_METRICS_EXPORTER=otlp, \
                 OtelConfig::metrics) but no endpoint is set (OTEL_EXPORTER_OTLP_ENDPOINT, \
                 OTEL_EXPORTER_OTLP_METRICS_ENDPOINT): nothing is exported"
                    .to_owned(),
            );
        }
        w
    }

    /// A warning when settings of the metrics export are given but metrics are not exported
    /// (nobody asked for them, `OTEL_METRICS_EXPORTER` unset): probably a forgotten switch.
    pub(crate) fn metrics_settings_unused(&self) -> Option<String> {
        let given = self.metrics_endpoint.is_some()
            || self.metrics_protocol.is_some()
            || self.metrics_compression.is_some()
            || self.metrics_headers.is_some()
            || self.metrics_timeout.is_some()
            || self.metrics_tls != TlsPaths::default()
            || self.metric_interval.is_some()
            || self.metric_export_timeout.is_some();
        (given && self.metrics.is_none()).then(|| {
            "settings of the OpenTelemetry metrics export are given (OTEL_EXPORTER_OTLP_METRICS_*, \
             OTEL_METRIC_EXPORT_*), but metrics are not exported: OTEL_METRICS_EXPORTER=otlp \
             (or OtelConfig::metrics) turns them on"
                .to_owned()
        })
    }

    fn resolve(&self, own: Own<'_>) -> Result<Option<SignalSettings>, Error> {
        if self.disabled == Some(true) || !own.on {
            return Ok(None);
        }
        let protocol = own.protocol.or(self.protocol).unwrap_or_default();
        let url = match (own.endpoint, &self.endpoint) {
            (Some((url, origin)), _) => {
                check(url, origin)?;
                url.trim().to_owned()
            }
            (None, Some((base, origin))) => {
                check(base, origin)?;
                let base = base.trim();
                match protocol {
                    Protocol::Grpc => base.to_owned(),
                    Protocol::HttpProtobuf => {
                        format!("{}{}", base.trim_end_matches('/'), own.path)
                    }
                }
            }
            (None, None) => return Ok(None),
        };
        let files = own.tls.over(&self.tls);
        let (tls, unused_tls) = if is_https(&url) {
            (Some(super::tls::Tls::load(&files)?), Vec::new())
        } else {
            let set = [&files.ca, &files.cert, &files.key]
                .into_iter()
                .flatten()
                .map(|(_, origin)| origin.0);
            let mut unused: Vec<&'static str> = Vec::new();
            for origin in set {
                if !unused.contains(&origin) {
                    unused.push(origin);
                }
            }
            (None, unused)
        };
        Ok(Some(SignalSettings {
            url,
            protocol,
            compression: own.compression.or(self.compression).unwrap_or_default(),
            headers: merged_headers(self.headers.as_deref(), own.headers.as_deref())?,
            tls,
            unused_tls,
        }))
    }

    pub(crate) fn batch(&self, logs: bool) -> BatchConfig {
        let mut b = if logs {
            self.logs_batch
        } else {
            self.traces_batch
        }
        .unwrap_or_default();
        let own_timeout = if logs {
            self.logs_timeout
        } else {
            self.traces_timeout
        };
        if let Some(t) = own_timeout.or(self.export_timeout) {
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

/// One signal's own settings, over the general ones.
struct Own<'a> {
    on: bool,
    endpoint: &'a Option<(String, Origin)>,
    protocol: Option<Protocol>,
    /// What is appended to the general endpoint over HTTP.
    path: &'static str,
    compression: Option<Compression>,
    headers: &'a Option<Vec<(String, String)>>,
    tls: &'a TlsPaths,
}

/// Whether `url` is an `https://` URL: its exporter then speaks TLS.
pub(crate) fn is_https(url: &str) -> bool {
    url.trim()
        .get(..8)
        .is_some_and(|p| p.eq_ignore_ascii_case("https://"))
}

fn check(url: &str, origin: &Origin) -> Result<(), Error> {
    // Refused here rather than failing at every export.
    check_endpoint(url).map_err(|why| origin.invalid(without_password(url), why))
}

/// `url` with the password of its user info, if any, masked (`http://user:[REDACTED]@host`):
/// what an endpoint looks like in errors and lines.
pub(crate) fn without_password(url: &str) -> String {
    let Some(i) = url.find("://") else {
        return url.to_owned();
    };
    let rest = &url[i + 3..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    if let Some(at) = authority.rfind('@') {
        if let Some(colon) = authority[..at].find(':') {
            return format!(
                "{}{}:[REDACTED]{}",
                &url[..i + 3],
                &rest[..colon],
                &rest[at..]
            );
        }
    }
    url.to_owned()
}

/// Checks that `url` is an absolute `http://` or `https://` URL with a host.
fn check_endpoint(url: &str) -> Result<(), &'static str> {
    const WHAT: &str = "an http:// URL such as http://127.0.0.1:4317";
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
            return Err("an http:// URL whose port is a number from 1 to 65535, such as http://127.0.0.1:4317");
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

fn parse_count(var: &str, v: &str) -> Result<u32, Error> {
    v.trim()
        .parse::<u32>()
        .map_err(|_| Error::env(var, v, "a whole number, like 128"))
}

/// `OTEL_EXPORTER_OTLP_HEADERS`: `key=value` pairs separated by commas, values percent-decoded
/// (the W3C baggage format the specification names). Each name must be a valid HTTP header
/// name and each value a valid header value.
fn parse_headers(v: &str) -> Result<Vec<(String, String)>, String> {
    const WHAT: &str = "comma-separated key=value pairs, like api-key=secret,tenant=shop";
    let mut out: Vec<(String, String)> = Vec::new();
    for (i, entry) in v.split(',').enumerate() {
        let entry = entry.trim();
        if entry.is_empty() {
            continue;
        }
        let Some((k, val)) = entry.split_once('=') else {
            return Err(format!("{WHAT} (entry {} has no `=`)", i + 1));
        };
        let k = k.trim();
        if !is_header_name(k) {
            return Err(format!("{WHAT} (entry {} has no valid header name)", i + 1));
        }
        let val = percent_decode(val.trim())
            .ok_or_else(|| format!("{WHAT} (entry {} `{k}` has a bad percent-encoding)", i + 1))?;
        if !val
            .bytes()
            .all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
        {
            return Err(format!(
                "{WHAT} (entry {} `{k}` has an invalid value)",
                i + 1
            ));
        }
        out.retain(|(ok, _)| !ok.eq_ignore_ascii_case(k));
        out.push((k.to_owned(), val));
    }
    Ok(out)
}

/// `list` without the headers `names` sets.
fn without_names(
    list: Option<Vec<(String, String)>>,
    names: Option<&[(String, String)]>,
) -> Option<Vec<(String, String)>> {
    let mut list = list?;
    for (n, _) in names.unwrap_or_default() {
        list.retain(|(k, _)| !k.eq_ignore_ascii_case(n));
    }
    Some(list)
}

/// The general headers with a signal's own over them (its own win, name by name), each checked
/// (those set in code were not checked when read); an error names the header, not its value.
fn merged_headers(
    general: Option<&[(String, String)]>,
    own: Option<&[(String, String)]>,
) -> Result<Vec<(String, String)>, Error> {
    let mut out: Vec<(String, String)> = general.unwrap_or_default().to_vec();
    for (k, v) in own.unwrap_or_default() {
        out.retain(|(ok, _)| !ok.eq_ignore_ascii_case(k));
        out.push((k.clone(), v.clone()));
    }
    for (k, v) in &out {
        if !is_header_name(k) || !v.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b)) {
            return Err(Error::InvalidSetting {
                setting: "OtelConfig::header".to_owned(),
                reason: format!(
                    "header `{}`: a name of token characters and a value of visible ASCII \
                     (the value is not shown: headers may hold credentials)",
                    k.escape_debug()
                ),
            });
        }
    }
    Ok(out)
}

/// An HTTP header name: one or more token characters (RFC 9110).
fn is_header_name(k: &str) -> bool {
    !k.is_empty()
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
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

    fn url_protocol(c: &OtelConfig, logs: bool) -> Option<(String, Protocol)> {
        c.signal(logs).unwrap().map(|s| (s.url, s.protocol))
    }

    #[test]
    fn the_default_protocol_is_one_this_build_has() {
        // HTTP/protobuf, the OpenTelemetry default, unless only gRPC is compiled in.
        if cfg!(any(feature = "otel-http", feature = "otel-grpc")) {
            assert!(Protocol::default().compiled());
        }
        if cfg!(feature = "otel-http") {
            assert_eq!(Protocol::default(), Protocol::HttpProtobuf);
        }
    }

    #[test]
    fn endpoints_per_protocol() {
        let c = cfg(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://h:4318/"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ])
        .unwrap();
        assert_eq!(
            url_protocol(&c, false),
            Some(("http://h:4318/v1/traces".into(), Protocol::HttpProtobuf))
        );
        assert_eq!(
            url_protocol(&c, true),
            Some(("http://h:4318/v1/logs".into(), Protocol::HttpProtobuf))
        );
        let c = cfg(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://h:4317"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_LOGS_EXPORTER", "none"),
        ])
        .unwrap();
        assert_eq!(
            url_protocol(&c, false),
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
    fn compression_headers_timeouts_propagators_and_limits_are_read() {
        let c = cfg(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://h:4318"),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
            ("OTEL_EXPORTER_OTLP_LOGS_COMPRESSION", "none"),
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                "api-key=s%3Dcret, tenant = shop ,",
            ),
            ("OTEL_EXPORTER_OTLP_LOGS_HEADERS", "x-logs=1"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "3000"),
            ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "100"),
            ("OTEL_PROPAGATORS", "tracecontext"),
            ("OTEL_ATTRIBUTE_COUNT_LIMIT", "16"),
            ("OTEL_SPAN_EVENT_COUNT_LIMIT", "4"),
        ])
        .unwrap();
        let traces = c.signal(false).unwrap().unwrap();
        assert_eq!(traces.compression, Compression::Gzip);
        assert_eq!(
            traces.headers,
            vec![
                ("api-key".to_owned(), "s=cret".to_owned()),
                ("tenant".to_owned(), "shop".to_owned())
            ]
        );
        let logs = c.signal(true).unwrap().unwrap();
        assert_eq!(logs.compression, Compression::None);
        // A signal's own headers are added to the general ones (its own win, name by name).
        assert_eq!(
            logs.headers,
            vec![
                ("api-key".to_owned(), "s=cret".to_owned()),
                ("tenant".to_owned(), "shop".to_owned()),
                ("x-logs".to_owned(), "1".to_owned())
            ]
        );
        assert_eq!(c.batch(false).export_timeout, Duration::from_millis(100));
        assert_eq!(c.batch(true).export_timeout, Duration::from_millis(3000));
        assert_eq!(
            c.propagators,
            Some(Propagators {
                tracecontext: true,
                baggage: false
            })
        );
        assert_eq!(c.span_limits.attributes, Some(16));
        assert_eq!(c.span_limits.event_attributes, Some(16));
        assert_eq!(c.span_limits.events, Some(4));
        assert_eq!(c.span_limits.links, None);
        assert!(c.not_honoured.is_empty(), "{:?}", c.not_honoured);
        // `none` is no propagator at all.
        let c = cfg(&[("OTEL_PROPAGATORS", "none")]).unwrap();
        assert_eq!(
            c.propagators,
            Some(Propagators {
                tracecontext: false,
                baggage: false
            })
        );
    }

    /// Run by scripts/test.sh in builds with one transport (`--features otel-http`, `otel-grpc`).
    #[test]
    fn a_transport_not_compiled_in_is_refused_naming_its_feature() {
        for (protocol, p) in [
            ("grpc", Protocol::Grpc),
            ("http/protobuf", Protocol::HttpProtobuf),
        ] {
            let c = cfg(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://h:4317"),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
            ])
            .unwrap();
            assert_eq!(c.signal(false).unwrap().unwrap().protocol, p);
            match crate::otel::OtelPipeline::start(&c, "svc") {
                Ok(pipeline) => {
                    assert!(p.compiled());
                    drop(pipeline);
                }
                Err(e) => {
                    assert!(!p.compiled(), "{e}");
                    let e = e.to_string();
                    assert!(e.contains(p.feature()) && e.contains(protocol), "{e}");
                }
            }
        }
    }

    #[test]
    fn headers_set_in_code_reach_every_signal_and_are_checked() {
        let c = cfg(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://h:4318"),
            (
                "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
                "x-tenant=a,authorization=old",
            ),
        ])
        .unwrap()
        .merge(OtelConfig::new().header("authorization", "Bearer k"));
        for logs in [false, true] {
            let h = c.signal(logs).unwrap().unwrap().headers;
            assert!(
                h.contains(&("authorization".into(), "Bearer k".into())),
                "{h:?}"
            );
        }
        let bad = OtelConfig::new()
            .endpoint("http://h:4318")
            .header("x-key", "line\nbreak-s3cr3t");
        let e = bad.signal(false).unwrap_err().to_string();
        assert!(e.contains("x-key") && !e.contains("s3cr3t"), "{e}");
        let shown = format!("{:?}", c.clone().header("x-api-key", "s3cr3t"));
        assert!(
            shown.contains("x-api-key") && !shown.contains("s3cr3t"),
            "{shown}"
        );
    }

    #[test]
    fn an_endpoint_password_is_never_repeated() {
        assert_eq!(
            without_password("http://user:s3cr3t@collector:4318/v1/traces"),
            "http://user:[REDACTED]@collector:4318/v1/traces"
        );
        assert_eq!(
            without_password("http://user@h:1/a@b"),
            "http://user@h:1/a@b"
        );
        assert_eq!(without_password("http://h:1/p:q@r"), "http://h:1/p:q@r");
        for url in [
            "https://user:s3cr3t@collector:notaport",
            "http://user:s3cr3t@collector:notaport",
        ] {
            let e = cfg(&[("OTEL_EXPORTER_OTLP_ENDPOINT", url)])
                .and_then(|c| c.signal(false).map(|_| ()))
                .unwrap_err();
            assert!(!e.to_string().contains("s3cr3t"), "{e}");
            assert!(!format!("{e:?}").contains("s3cr3t"), "{e:?}");
        }
    }

    #[test]
    fn a_malformed_header_is_refused_without_repeating_its_value() {
        let e = cfg(&[(
            "OTEL_EXPORTER_OTLP_HEADERS",
            "authorization=Bearer s3cr3t,broken",
        )])
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("OTEL_EXPORTER_OTLP_HEADERS") && e.contains("entry 2"),
            "{e}"
        );
        assert!(!e.contains("s3cr3t"), "{e}");
    }

    /// Every variable `read` looks at is in `HONOURED` or `NOT_HONOURED`: one it reads but the
    /// lists miss would be named in the start-up warning as unknown.
    #[test]
    fn every_variable_read_is_in_the_lists() {
        let mut asked: Vec<String> = Vec::new();
        let _ = OtelConfig::read(&mut |k: &str| {
            asked.push(k.to_owned());
            None
        });
        for k in &asked {
            assert!(
                HONOURED.contains(&k.as_str()) || NOT_HONOURED.contains(&k.as_str()),
                "{k} is read but in neither list"
            );
        }
        assert!(asked.len() >= HONOURED.len() - 1, "{asked:?}");
        for k in HONOURED.iter().filter(|k| **k != "OTEL_TRACES_SAMPLER_ARG") {
            assert!(
                asked.iter().any(|a| a == k),
                "{k} is listed as honoured but never read"
            );
        }
    }

    #[test]
    fn metrics_are_exported_only_when_asked_for() {
        let base = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://h:4318/");
        let http = ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf");
        let c = cfg(&[base, http]).unwrap();
        assert_eq!(c.metrics_signal().unwrap(), None, "off by default");
        let c = cfg(&[base, http, ("OTEL_METRICS_EXPORTER", "otlp")]).unwrap();
        assert_eq!(
            c.metrics_signal().unwrap().unwrap().url,
            "http://h:4318/v1/metrics"
        );
        let c = cfg(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://h:4317"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_METRICS_EXPORTER", "none, otlp"),
        ])
        .unwrap();
        let m = c.metrics_signal().unwrap().unwrap();
        assert_eq!(
            (m.url.as_str(), m.protocol),
            ("http://h:4317", Protocol::Grpc)
        );
        // A signal's own settings win; the general ones fill in.
        let c = cfg(&[
            base,
            ("OTEL_METRICS_EXPORTER", "otlp"),
            ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://m:9000/in"),
            ("OTEL_EXPORTER_OTLP_METRICS_COMPRESSION", "gzip"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "a=1,b=2"),
            ("OTEL_EXPORTER_OTLP_METRICS_HEADERS", "b=3"),
        ])
        .unwrap();
        let m = c.metrics_signal().unwrap().unwrap();
        assert_eq!(m.url, "http://m:9000/in");
        assert_eq!(m.compression, Compression::Gzip);
        assert_eq!(
            m.headers,
            vec![("a".into(), "1".into()), ("b".into(), "3".into())]
        );
        assert_eq!(
            c.signal(false).unwrap().unwrap().compression,
            Compression::None
        );
        // In code.
        let c = OtelConfig::new().endpoint("http://h:4318").metrics(true);
        assert!(c.metrics_signal().unwrap().is_some());
        assert!(c.setting_warnings().is_empty());
        // On, with nowhere to send them: said at start.
        let w = OtelConfig::new().metrics(true).setting_warnings();
        assert!(w.len() == 1 && w[0].contains("no endpoint"), "{w:?}");
        let c = OtelConfig::new().metrics_endpoint("http://m:4318/v1/metrics");
        assert!(c.is_enabled());
        assert_eq!(c.signal(false).unwrap(), None);
        assert!(c.metrics_signal().unwrap().is_some());
    }

    #[test]
    fn metrics_settings_refused_or_named() {
        let e = cfg(&[("OTEL_METRICS_EXPORTER", "statsd")])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("OTEL_METRICS_EXPORTER") && e.contains("otlp, none"),
            "{e}"
        );
        let c = cfg(&[("OTEL_METRICS_EXPORTER", "prometheus")]).unwrap();
        assert_eq!(c.not_honoured, vec!["OTEL_METRICS_EXPORTER=prometheus"]);
        assert_eq!(c.metrics, Some(false));
        let c = cfg(&[("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "delta")]).unwrap();
        assert_eq!(c.not_honoured.len(), 1);
        assert!(c.not_honoured[0].contains("delta"), "{:?}", c.not_honoured);
        assert!(cfg(&[(
            "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE",
            "Cumulative"
        )])
        .unwrap()
        .not_honoured
        .is_empty());
        let e = cfg(&[(
            "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE",
            "weekly",
        )])
        .unwrap_err()
        .to_string();
        assert!(e.contains("cumulative, delta, lowmemory"), "{e}");
        let e = cfg(&[("OTEL_METRIC_EXPORT_INTERVAL", "0")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("OTEL_METRIC_EXPORT_INTERVAL"), "{e}");
        let e = cfg(&[("OTEL_METRIC_EXPORT_TIMEOUT", "0")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("OTEL_METRIC_EXPORT_TIMEOUT"), "{e}");
        let e = cfg(&[("OTEL_METRIC_EXPORT_INTERVAL", "soon")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("OTEL_METRIC_EXPORT_INTERVAL"), "{e}");
    }

    #[test]
    fn a_signals_client_certificate_and_key_go_together() {
        let file = |p: &str, o: &'static str| Some((std::path::PathBuf::from(p), Origin(o)));
        let general = TlsPaths {
            ca: file("ca.pem", "OTEL_EXPORTER_OTLP_CERTIFICATE"),
            cert: file("c.pem", "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE"),
            key: file("c.key", "OTEL_EXPORTER_OTLP_CLIENT_KEY"),
        };
        let own_cert = TlsPaths {
            cert: file("t.pem", "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE"),
            ..TlsPaths::default()
        };
        let m = own_cert.over(&general);
        assert_eq!(m.ca, general.ca, "the CA on its own");
        assert_eq!(m.cert, own_cert.cert);
        assert_eq!(
            m.key, None,
            "not the general key with the signal's certificate"
        );
        let own_ca = TlsPaths {
            ca: file("t-ca.pem", "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE"),
            ..TlsPaths::default()
        };
        let m = own_ca.over(&general);
        assert_eq!(
            (m.ca, m.cert, m.key),
            (own_ca.ca, general.cert, general.key)
        );
    }

    #[test]
    fn metrics_settings_without_metrics_are_said() {
        let c = cfg(&[(
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
            "http://m:4318/v1/metrics",
        )])
        .unwrap();
        let w = c.metrics_settings_unused().unwrap();
        assert!(w.contains("OTEL_METRICS_EXPORTER=otlp"), "{w}");
        // Asked off, or on: nothing to say.
        for exporter in ["none", "otlp"] {
            let c = cfg(&[
                (
                    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
                    "http://m:4318/v1/metrics",
                ),
                ("OTEL_METRICS_EXPORTER", exporter),
            ])
            .unwrap();
            assert_eq!(c.metrics_settings_unused(), None, "{exporter}");
        }
        assert_eq!(cfg(&[]).unwrap().metrics_settings_unused(), None);
        let c = OtelConfig::new().metric_export_interval(Duration::ZERO);
        assert_eq!(c.metrics_schedule().0, Duration::from_millis(10));
    }

    #[test]
    fn the_metrics_schedule() {
        let c = cfg(&[]).unwrap();
        assert_eq!(
            c.metrics_schedule(),
            (Duration::from_secs(60), Duration::from_secs(10))
        );
        let c = cfg(&[
            ("OTEL_METRIC_EXPORT_INTERVAL", "250"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "5000"),
            ("OTEL_METRIC_EXPORT_TIMEOUT", "2000"),
        ])
        .unwrap();
        assert_eq!(
            c.metrics_schedule(),
            (Duration::from_millis(250), Duration::from_millis(2000))
        );
        let c = cfg(&[("OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "700")]).unwrap();
        assert_eq!(c.metrics_schedule().1, Duration::from_millis(700));
    }

    #[test]
    fn variables_not_honoured_are_named_not_refused() {
        let c = cfg(&[
            ("OTEL_METRICS_EXEMPLAR_FILTER", "trace_based"),
            ("OTEL_EXPORTER_OTLP_INSECURE", "true"),
            ("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "100"),
        ])
        .unwrap();
        assert_eq!(
            c.not_honoured,
            vec![
                "OTEL_EXPORTER_OTLP_INSECURE",
                "OTEL_METRICS_EXEMPLAR_FILTER",
                "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT"
            ]
        );
        let w = not_honoured_warning(&c.not_honoured).unwrap();
        assert!(
            w.contains("OTEL_METRICS_EXEMPLAR_FILTER") && w.contains("no effect"),
            "{w}"
        );
        // `none` asks for what tracelight does by default: nothing to say.
        let c = cfg(&[("OTEL_METRICS_EXPORTER", "none")]).unwrap();
        assert!(c.not_honoured.is_empty());
        assert_eq!(
            unknown_names(
                [
                    "OTEL_SERVICE_NAME",
                    "OTEL_SERVCE_NAME",
                    "PATH",
                    "OTEL_LOG_LEVEL"
                ]
                .into_iter()
            ),
            vec!["OTEL_SERVCE_NAME"]
        );
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
            ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "10s", "milliseconds"),
            ("OTEL_EXPORTER_OTLP_LOGS_TIMEOUT", "1m", "milliseconds"),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "bogus", "gzip, none"),
            ("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "zip", "gzip, none"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "novalue", "key=value"),
            ("OTEL_EXPORTER_OTLP_LOGS_HEADERS", "a b=c", "header name"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "k=%zz", "percent"),
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                "k=line%0Abreak",
                "invalid value",
            ),
            ("OTEL_PROPAGATORS", "b3", "tracecontext, baggage"),
            (
                "OTEL_PROPAGATORS",
                "tracecontext,nonsense",
                "tracecontext, baggage",
            ),
            ("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "lots", "whole number"),
            ("OTEL_ATTRIBUTE_COUNT_LIMIT", "-3", "whole number"),
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
