//! [`Builder`]: tracelight's set-up in code, and the [`Guard`] that flushes on drop.

use std::io::IsTerminal as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::Registry;

use crate::config::{Config, StreamSettings};
use crate::context::ContextValue;
use crate::error::Error;
use crate::fields::{is_reserved, write_str};
use crate::json::JsonSchema;
use crate::layer::TracelightLayer;
use crate::redact::Redactor;
use crate::sink::{
    Archiver, Counters, Destination, FileOptions, LineWriter, Queue, RollingFile, Rotation,
    StreamStats,
};
use crate::state::{render_statics, Rendering, Shared, StreamRt, StreamSink};
use crate::stream::{default_rule, Format, Output, Stream, DEFAULT_STREAMS};
use crate::util::{binary_name as default_service, hostname};
use tracelight_schema::Schema;

/// Default capacity of the queue in front of the writer thread, in bytes.
pub const DEFAULT_QUEUE_BYTES: usize = 8 * 1024 * 1024;

/// Sets tracelight up in code. Start from [`builder()`](crate::builder()) (defaults) or
/// [`Builder::from_env`] (the environment), change what you need, then [`init`](Builder::init).
///
/// ```
/// use tracelight::Format;
/// let writer = tracelight::sink::MemoryWriter::new();
/// let _guard = tracelight::builder()
///     .service("shop")
///     .env("staging")
///     .filter("debug,hyper=warn")
///     .format(Format::Json)
///     .field("region", "eu-west-1")
///     .span_list(true)
///     .writer(writer.clone())
///     .init_local()?;
/// tracing::debug!(items = 3, "cart loaded");
/// assert!(writer.contents().contains("\"region\":\"eu-west-1\""));
/// # Ok::<(), tracelight::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Builder {
    filter: Option<String>,
    /// Start-up warnings, written once the subscriber is installed.
    warnings: Vec<String>,
    format: Format,
    service: Option<String>,
    env: Option<String>,
    fields: Vec<(String, Vec<u8>)>,
    span_list: bool,
    schema: Schema,
    gcp_project: Option<String>,
    pub(crate) streams: Vec<Stream>,
    default_output: Output,
    redactor: Option<Redactor>,
    context_fields: Vec<String>,
    catch_panics: bool,
    queue_bytes: usize,
    block_timeout: std::time::Duration,
    lossy: bool,
    ansi: Option<bool>,
    pub(crate) log_dir: Option<std::path::PathBuf>,
    files: StreamSettings,
    stdout_with_files: bool,
    stream_settings: Vec<(String, StreamSettings)>,
    pub(crate) timing: Option<crate::timing::TimingConfig>,
    /// No stream at all: the layer keeps span state and context only ([`crate::CorrelationLayer`]).
    pub(crate) no_streams: bool,
    errors: crate::errors::ErrorConfig,
    sampling: crate::sample::SamplingConfig,
    recorder: Option<crate::recorder::FlightRecorder>,
    recorder_env: crate::recorder::RecorderEnv,
    #[cfg(feature = "otel-core")]
    otel: crate::otel::OtelConfig,
    /// Lines go to the test they belong to ([`crate::testing`]).
    #[cfg(feature = "testing")]
    pub(crate) testing: bool,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            filter: None,
            format: Format::Auto,
            service: None,
            env: None,
            fields: Vec::new(),
            span_list: false,
            schema: Schema::Default,
            gcp_project: None,
            streams: Vec::new(),
            default_output: Output::Stdout,
            redactor: Some(Redactor::default()),
            context_fields: Vec::new(),
            catch_panics: true,
            queue_bytes: DEFAULT_QUEUE_BYTES,
            block_timeout: crate::sink::DEFAULT_BLOCK_TIMEOUT,
            lossy: false,
            ansi: None,
            log_dir: None,
            files: StreamSettings::default(),
            stdout_with_files: true,
            stream_settings: Vec::new(),
            timing: Some(crate::timing::TimingConfig::default()),
            no_streams: false,
            errors: crate::errors::ErrorConfig::default(),
            sampling: crate::sample::SamplingConfig::default(),
            recorder: None,
            recorder_env: crate::recorder::RecorderEnv::default(),
            #[cfg(feature = "otel-core")]
            otel: crate::otel::OtelConfig::default(),
            #[cfg(feature = "testing")]
            testing: false,
            warnings: Vec::new(),
        }
    }
}

impl Builder {
    /// A builder with the settings of the environment (see [`Config`]).
    pub fn from_env() -> Result<Builder, Error> {
        Ok(Config::from_env()?.into_builder())
    }

    /// Applies the settings present in `config`.
    pub fn config(mut self, config: Config) -> Builder {
        self.warnings.extend(config.warnings);
        if let Some(f) = config.filter {
            self.filter = Some(f);
        }
        if let Some(f) = config.format {
            self.format = f;
        }
        if let Some(s) = config.service {
            self.service = Some(s);
        }
        if let Some(e) = config.env {
            self.env = Some(e);
        }
        if let Some(s) = config.span_list {
            self.span_list = s;
        }
        if let Some(s) = config.schema {
            self.schema = s;
        }
        if let Some(p) = config.gcp_project {
            self.gcp_project = Some(p);
        }
        if let Some(d) = config.log_dir {
            self.log_dir = Some(d);
        }
        self.files = self.files.or(&config.files);
        if let Some(s) = config.stdout {
            self.stdout_with_files = s;
        }
        if let Some(l) = config.lossy {
            self.lossy = l;
        }
        if let Some(t) = config.block_timeout {
            self = self.block_timeout(t);
        }
        if let Some(q) = config.queue_bytes {
            self.queue_bytes = q;
        }
        for (name, settings) in config.streams {
            self = self.stream_settings(name, settings);
        }
        #[cfg(feature = "otel-core")]
        {
            self.otel = std::mem::take(&mut self.otel).merge(config.otel);
        }
        match config.timing {
            Some(false) => self.timing = None,
            _ => {
                if config.slow_threshold.is_some() || config.timing_every_close.is_some() {
                    let mut t = self.timing.clone().unwrap_or_default();
                    if let Some(d) = config.slow_threshold {
                        t = t.threshold(d);
                    }
                    if let Some(e) = config.timing_every_close {
                        t = t.every_close(e);
                    }
                    self.timing = Some(t);
                } else if config.timing == Some(true) && self.timing.is_none() {
                    self.timing = Some(crate::timing::TimingConfig::default());
                }
            }
        }
        if let Some((n, window)) = config.error_suppression {
            self.errors = self.errors.clone().suppress_after(n, window);
        }
        if let Some(n) = config.rate_limit {
            self.sampling = self.sampling.clone().rate_limit(n);
        }
        if let Some(r) = config.debug_sample_rate {
            self.sampling = self.sampling.clone().debug_sample_rate(r);
        }
        self.recorder_env = config.flight_recorder.clone();
        if config.redact == Some(false) {
            self.redactor = None;
        } else if !config.redact_keys.is_empty()
            || !config.redact_allow.is_empty()
            || config.redact_email.is_some()
        {
            let mut r = Redactor::builder();
            for k in &config.redact_keys {
                r = r.key(k);
            }
            for k in &config.redact_allow {
                r = r.allow_key(k);
            }
            if config.redact_email == Some(true) {
                r = r.pattern(crate::redact::ValuePattern::Email);
            }
            self.redactor = Some(r.build());
        }
        self
    }

    /// Writes the five default streams (`app`, `errors`, `access`, `security`, `performance`) as
    /// rotating JSON files in `dir`, created if missing. The default stream (stdout, or the
    /// [`writer`](Builder::writer)) still gets every line unless
    /// [`stdout_with_files(false)`](Builder::stdout_with_files).
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let g = tracelight::builder().log_dir(dir.path()).stdout_with_files(false).init_local().unwrap();
    /// tracing::error!("disk on fire");
    /// g.shutdown();
    /// let errors = std::fs::read_to_string(dir.path().join("errors.log")).unwrap();
    /// assert!(errors.contains("disk on fire"));
    /// ```
    pub fn log_dir(mut self, dir: impl Into<std::path::PathBuf>) -> Builder {
        self.log_dir = Some(dir.into());
        self
    }

    /// The rotation of the default file streams. Default: [`Rotation::default`] (10 MiB, 5
    /// compressed backups).
    pub fn rotation(mut self, rotation: Rotation) -> Builder {
        self.files = StreamSettings {
            max_bytes: rotation.max_bytes,
            backups: Some(rotation.backups),
            period: Some(rotation.period),
            max_age: rotation.max_age,
            compress: Some(rotation.compress),
            ..self.files
        };
        self
    }

    /// Whether the default stream (stdout) is written too when [`log_dir`](Builder::log_dir) is
    /// set. Default on.
    pub fn stdout_with_files(mut self, on: bool) -> Builder {
        self.stdout_with_files = on;
        self
    }

    /// Settings of one default file stream (by name: `app`, `errors`, `access`, `security`,
    /// `performance`), over the global ones.
    pub fn stream_settings(mut self, name: impl Into<String>, settings: StreamSettings) -> Builder {
        let name = name.into();
        match self.stream_settings.iter_mut().find(|(n, _)| *n == name) {
            Some((_, s)) => *s = s.or(&settings),
            None => self.stream_settings.push((name, settings)),
        }
        self
    }

    /// Span timing: thresholds, every close or only slow ones (see [`timing`](crate::timing)).
    /// On by default with a 500 ms threshold.
    pub fn timing(mut self, config: crate::timing::TimingConfig) -> Builder {
        self.timing = Some(config);
        self
    }

    /// Turns span timing off (no `span_closed` events, no aggregates; spans cost a little less).
    pub fn without_timing(mut self) -> Builder {
        self.timing = None;
        self
    }

    /// Error tracking: suppression of repeats (see [`errors`](mod@crate::errors)). Fingerprints and
    /// counts are always on.
    pub fn errors(mut self, config: crate::errors::ErrorConfig) -> Builder {
        self.errors = config;
        self
    }

    /// Turns the flight recorder on: the lines the filter leaves out, kept per unit of work and
    /// written when it fails (see [`recorder`](crate::recorder)). `LOG_FLIGHT_RECORDER=off` still
    /// turns it off, and `LOG_FLIGHT_RECORDER_*` tune it over what is given here.
    ///
    /// ```
    /// let _b = tracelight::builder().flight_recorder(tracelight::FlightRecorder::new().unit("job"));
    /// ```
    pub fn flight_recorder(mut self, recorder: crate::recorder::FlightRecorder) -> Builder {
        self.recorder = Some(recorder);
        self
    }

    /// The flight recorder's settings that do nothing: set while it is off.
    fn schema_warnings(&self) -> Vec<String> {
        if self.schema == Schema::Gcp && self.gcp_project.is_none() {
            vec![
                "LOG_SCHEMA=gcp without a project id (GOOGLE_CLOUD_PROJECT or Builder::gcp_project): lines that carry a trace id write it as trace_id, which Cloud Logging does not link to Cloud Trace"
                    .to_string(),
            ]
        } else {
            Vec::new()
        }
    }

    fn recorder_warnings(&self) -> Vec<String> {
        let tuning = self.recorder_env.tuning();
        if tuning.is_empty() || self.recorder_env.resolve(self.recorder.as_ref()).is_some() {
            return Vec::new();
        }
        vec![format!(
            "{} set, but the flight recorder is off: set LOG_FLIGHT_RECORDER=on to use {}",
            tuning.join(", "),
            if tuning.len() == 1 { "it" } else { "them" }
        )]
    }

    /// Turns the flight recorder off (after `LOG_FLIGHT_RECORDER=on`, say).
    pub fn without_flight_recorder(mut self) -> Builder {
        self.recorder = None;
        self
    }

    /// Per-callsite rate limits and sampling of DEBUG/TRACE (see [`sample`](crate::sample)).
    /// Default: neither.
    pub fn sampling(mut self, config: crate::sample::SamplingConfig) -> Builder {
        self.sampling = config;
        self
    }

    /// The streams this builder writes.
    fn resolve_streams(&self) -> Vec<Stream> {
        if self.no_streams {
            return Vec::new();
        }
        if !self.streams.is_empty() {
            return self.streams.clone();
        }
        let default = Stream::new("app", self.default_output.clone());
        let Some(dir) = &self.log_dir else {
            return vec![default];
        };
        let mut out = Vec::new();
        for name in DEFAULT_STREAMS {
            let own = self
                .stream_settings
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, s)| s.clone())
                .unwrap_or_default();
            let settings = self.files.or(&own);
            if settings.enabled == Some(false) {
                continue;
            }
            let file = settings
                .file
                .clone()
                .unwrap_or_else(|| format!("{name}.log"));
            let mut rule = default_rule(name).unwrap_or_default();
            if let Some(level) = settings.level {
                rule = rule.with_min_level(level);
            }
            let mut stream = Stream::new(
                name,
                Output::File(FileOptions::new(dir.join(file)).rotation(settings.rotation())),
            )
            .rule(rule)
            .format(settings.format.unwrap_or(Format::Json));
            stream.origin = Some(if settings.file.is_some() {
                format!("LOG_DIR and LOG_STREAM_{}_FILE", name.to_ascii_uppercase())
            } else {
                "LOG_DIR".to_owned()
            });
            out.push(stream);
        }
        if self.stdout_with_files {
            out.push(Stream::new("console", self.default_output.clone()));
        }
        out
    }

    /// Which events are enabled, in `EnvFilter` syntax (`info`, `warn,my_crate=debug`).
    /// Default `info`. Checked when the subscriber is built.
    pub fn filter(mut self, directives: impl Into<String>) -> Builder {
        self.filter = Some(directives.into());
        self
    }

    /// Enables events at `level` and above (a shorthand for [`filter`](Builder::filter)).
    pub fn level(mut self, level: tracing::Level) -> Builder {
        self.filter = Some(level.as_str().to_ascii_lowercase());
        self
    }

    /// The format of streams that do not set their own. Default [`Format::Auto`].
    pub fn format(mut self, format: Format) -> Builder {
        self.format = format;
        self
    }

    /// The `service` key. Default: the executable's name.
    pub fn service(mut self, name: impl Into<String>) -> Builder {
        self.service = Some(name.into());
        self
    }

    /// The `env` key (`production`, `staging`…). Omitted when unset.
    pub fn env(mut self, env: impl Into<String>) -> Builder {
        self.env = Some(env.into());
        self
    }

    /// A static field written at the root of every JSON line (`region`, `version`…).
    pub fn field<V: ContextValue>(mut self, key: impl Into<String>, value: V) -> Builder {
        let mut v = Vec::new();
        value.render_json(&mut v);
        self.fields.push((key.into(), v));
        self
    }

    /// The schema preset of JSON lines: tracelight's own ([`Schema::Default`]), or the key names
    /// of Elastic Common Schema, Google Cloud Logging, Datadog or the OpenTelemetry log data
    /// model (`LOG_SCHEMA`). Only tracelight's own keys change; the event's fields keep their
    /// names. See `docs/schema.md`.
    ///
    /// ```
    /// use tracelight::{sink::MemoryWriter, Schema};
    /// let writer = MemoryWriter::new();
    /// let _guard = tracelight::builder()
    ///     .service("shop")
    ///     .schema(Schema::Ecs)
    ///     .format(tracelight::Format::Json)
    ///     .writer(writer.clone())
    ///     .init_local()?;
    /// tracing::info!(order_id = 17, "order placed");
    /// let line: serde_json::Value = serde_json::from_str(writer.contents().lines().next().unwrap()).unwrap();
    /// assert_eq!(line["log.level"], "info");
    /// assert_eq!(line["service.name"], "shop");
    /// assert_eq!(line["order_id"], 17);
    /// # Ok::<(), tracelight::Error>(())
    /// ```
    pub fn schema(mut self, schema: Schema) -> Builder {
        self.schema = schema;
        self
    }

    /// The Google Cloud project id the [`Schema::Gcp`] preset writes in
    /// `logging.googleapis.com/trace` (`projects/<id>/traces/<trace id>`, which links a line to
    /// Cloud Trace). Default: `GOOGLE_CLOUD_PROJECT`. Without one, the trace id is written as
    /// `trace_id` and start-up says so.
    pub fn gcp_project(mut self, id: impl Into<String>) -> Builder {
        self.gcp_project = Some(id.into());
        self
    }

    /// Also writes the whole span path, root first, under `spans`. Default off.
    pub fn span_list(mut self, on: bool) -> Builder {
        self.span_list = on;
        self
    }

    /// Sends the default stream to a synchronous [`LineWriter`] instead of stdout (tests, custom
    /// sinks). Ignored for streams added with [`stream`](Builder::stream).
    pub fn writer<W: LineWriter>(mut self, writer: W) -> Builder {
        self.default_output = Output::Writer(Arc::new(writer));
        self
    }

    /// Sends the default stream to this output.
    pub fn output(mut self, output: Output) -> Builder {
        self.default_output = output;
        self
    }

    /// Adds a stream. Once any stream is added, only the added streams are written.
    pub fn stream(mut self, stream: Stream) -> Builder {
        self.streams.push(stream);
        self
    }

    /// The redaction rules. Default: [`Redactor::default`].
    pub fn redactor(mut self, redactor: Redactor) -> Builder {
        self.redactor = Some(redactor);
        self
    }

    /// Turns redaction off (not for production).
    pub fn without_redaction(mut self) -> Builder {
        self.redactor = None;
        self
    }

    /// A span field that joins the correlation context (like `request_id`, which always does): once
    /// a span records it, every line in that span and below carries it at the root.
    pub fn context_field(mut self, name: impl Into<String>) -> Builder {
        self.context_fields.push(name.into());
        self
    }

    /// Whether [`init`](Builder::init) installs a panic hook that logs panics as ERROR events and
    /// flushes. Default on.
    pub fn catch_panics(mut self, on: bool) -> Builder {
        self.catch_panics = on;
        self
    }

    /// Capacity of the queue in front of the writer thread, in bytes. Default 8 MiB.
    pub fn queue_bytes(mut self, bytes: usize) -> Builder {
        self.queue_bytes = bytes;
        self
    }

    /// How long a destination may make no write progress before its lines are dropped and
    /// counted instead of waited for (default [`DEFAULT_BLOCK_TIMEOUT`](crate::sink::DEFAULT_BLOCK_TIMEOUT),
    /// 1 s; `LOG_BLOCK_TIMEOUT`). A stdout pipe whose reader stopped (a blocked log shipper)
    /// then costs a caller at most this long, once; its lines are counted until it drains, and a
    /// line in the stream says how many were dropped. The flush at exit is bounded by it too.
    ///
    /// ```
    /// let b = tracelight::builder().block_timeout(std::time::Duration::from_millis(500));
    /// # let _ = b;
    /// ```
    pub fn block_timeout(mut self, timeout: std::time::Duration) -> Builder {
        self.block_timeout = timeout.clamp(
            std::time::Duration::from_millis(1),
            std::time::Duration::from_secs(3600),
        );
        self
    }

    /// Drops lines (counting them, and saying so in the stream) instead of waiting when the queue is
    /// full. Default off: the caller waits, nothing is lost.
    pub fn lossy(mut self, on: bool) -> Builder {
        self.lossy = on;
        self
    }

    /// Forces colours in text output on or off. Default: on for a terminal unless `NO_COLOR` is set.
    pub fn ansi(mut self, on: bool) -> Builder {
        self.ansi = Some(on);
        self
    }

    /// The static members of the schema preset, and the keys every line holds besides the
    /// reserved ones (the user's static fields and the preset's own keys), which later fields
    /// may not take.
    fn statics(&self) -> (JsonSchema, Vec<String>) {
        use tracelight_schema::{ecs, otel};
        let schema = self.schema;
        let service = self.service.clone().unwrap_or_else(default_service);
        let quoted = |s: &str| {
            let mut v = Vec::new();
            write_str(&mut v, s);
            v
        };
        let mut pid = Vec::new();
        crate::fields::write_u64(&mut pid, u64::from(std::process::id()));
        let (k_service, k_env, k_host, k_pid) = match schema {
            Schema::Ecs => (ecs::SERVICE, ecs::ENV, ecs::HOST, ecs::PID),
            Schema::Otel => (
                "service.name",
                "deployment.environment.name",
                "host.name",
                "process.pid",
            ),
            _ => ("service", "env", "host", "pid"),
        };
        let mut own: Vec<(String, Vec<u8>)> = Vec::new();
        if schema == Schema::Ecs {
            own.push((ecs::ECS_VERSION.into(), quoted(ecs::VERSION)));
        }
        own.push((k_service.into(), quoted(&service)));
        if let Some(env) = &self.env {
            own.push((k_env.into(), quoted(env)));
        }
        own.push((k_host.into(), quoted(&hostname())));
        own.push((k_pid.into(), pid));
        let mut pairs: Vec<(String, Vec<u8>)> = Vec::new();
        if schema == Schema::Otel {
            // The data model's resource: one object, as the collector's `Resource`.
            let mut resource = b"{".to_vec();
            resource.extend_from_slice(&render_statics(&own));
            resource.pop();
            resource.push(b'}');
            pairs.push((otel::RESOURCE.into(), resource));
        } else {
            pairs = own;
        }
        let mut keys: Vec<String> = schema.own_keys().iter().map(|k| (*k).to_string()).collect();
        for (k, v) in &self.fields {
            let mut key = k.clone();
            while is_reserved(&key) || keys.contains(&key) {
                key = tracelight_schema::rename(&key, 1);
            }
            keys.push(key.clone());
            // Static fields are redacted as event fields are.
            let value = match &self.redactor {
                Some(r) if r.is_secret_key(k) => r.key_mask_json().as_bytes().to_vec(),
                Some(r) if v.len() >= 2 && v[0] == b'"' => {
                    let mut b = v[..v.len() - 1].to_vec();
                    r.redact_raw(&mut b, 1);
                    b.push(b'"');
                    b
                }
                _ => v.clone(),
            };
            pairs.push((key, value));
        }
        let gcp_trace_prefix = self
            .gcp_project
            .as_deref()
            .map(|p| format!("projects/{p}/traces/").into_boxed_str());
        (
            JsonSchema::new(schema, render_statics(&pairs), gcp_trace_prefix),
            keys,
        )
    }

    /// Builds the layer and its guard, to compose with other layers on a registry of your own.
    /// Filtering is then yours to add: [`TracelightLayer::filter`] is the filter of this builder's
    /// directives, which keeps correlation at any level (see [`LogFilter`](crate::LogFilter)).
    /// Fails with [`Error::InvalidFilter`] when the directives are not valid.
    pub fn build(self) -> Result<(TracelightLayer, Guard), Error> {
        if let Some(p) = self
            .gcp_project
            .as_deref()
            .filter(|p| !valid_gcp_project(p))
        {
            return Err(Error::InvalidSetting {
                setting: "gcp_project".into(),
                reason: format!(
                    "{p:?} is not a Google Cloud project id (lower-case letters, digits, '-', and '.' or ':' for a domain-scoped one)"
                ),
            });
        }
        let streams = self.resolve_streams();
        if streams.len() > 64 {
            return Err(Error::InvalidSetting {
                setting: "stream".into(),
                reason: format!("{} streams given; at most 64 are supported", streams.len()),
            });
        }
        for (i, s) in streams.iter().enumerate() {
            if streams[..i].iter().any(|o| o.name == s.name) {
                return Err(Error::InvalidSetting {
                    setting: "stream".into(),
                    reason: format!("two streams are named `{}`", s.name),
                });
            }
        }
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let (json_schema, static_keys) = self.statics();
        let mut rts = Vec::new();
        let mut queued: Vec<(String, Box<dyn Destination>, Arc<Counters>)> = Vec::new();
        let mut archiver: Option<Arc<Archiver>> = None;
        for s in &streams {
            let (terminal, sink) = match &s.output {
                Output::Stdout => {
                    let c = Arc::new(Counters::default());
                    queued.push((s.name.clone(), Box::<crate::sink::Stdout>::default(), c));
                    (
                        std::io::stdout().is_terminal(),
                        StreamSink::Queue(queued.len() - 1),
                    )
                }
                Output::Stderr => {
                    let c = Arc::new(Counters::default());
                    queued.push((s.name.clone(), Box::<crate::sink::Stderr>::default(), c));
                    (
                        std::io::stderr().is_terminal(),
                        StreamSink::Queue(queued.len() - 1),
                    )
                }
                Output::Writer(w) => (false, StreamSink::Writer(Arc::clone(w))),
                Output::File(opts) => {
                    // A file that cannot be written at start is a setting that cannot work: say
                    // so now rather than log into nothing (faults that begin later are survived).
                    opts.rotation_ref()
                        .check()
                        .map_err(|reason| Error::InvalidSetting {
                            setting: s.origin.clone().map_or_else(
                                || format!("the rotation of stream `{}`", s.name),
                                |_| "LOG_MAX_TOTAL_BYTES".to_owned(),
                            ),
                            reason,
                        })?;
                    crate::sink::check_writable(opts.path(), opts.rotation_ref().rotates())
                        .map_err(|source| Error::Unwritable {
                            setting: s
                                .origin
                                .clone()
                                .unwrap_or_else(|| format!("the file of stream `{}`", s.name)),
                            path: opts.path().to_path_buf(),
                            source,
                        })?;
                    let archiver = match &archiver {
                        Some(a) => Arc::clone(a),
                        None => {
                            let a = Archiver::start().map_err(|source| Error::Io {
                                what: "cannot start the tracelight archiver thread".into(),
                                source,
                            })?;
                            archiver = Some(Arc::clone(&a));
                            a
                        }
                    };
                    let c = Arc::new(Counters::default());
                    let file = RollingFile::new(opts, archiver, self.queue_bytes);
                    queued.push((s.name.clone(), Box::new(file), c));
                    (false, StreamSink::Queue(queued.len() - 1))
                }
            };
            let format = s.format.unwrap_or(self.format);
            let text = match format {
                Format::Json => false,
                Format::Text => true,
                Format::Auto => terminal,
            };
            let ansi = self.ansi.unwrap_or(terminal && !no_color);
            let rendering = match (text, ansi) {
                (false, _) => Rendering::Json,
                (true, false) => Rendering::Text,
                (true, true) => Rendering::TextAnsi,
            };
            rts.push(StreamRt {
                name: s.name.clone(),
                rendering,
                rule: s.rule.clone(),
                sink,
                counters: Arc::new(Counters::default()),
            });
        }
        let queue = if queued.is_empty() {
            None
        } else {
            let report_renderings: Vec<(String, Rendering)> =
                rts.iter().map(|r| (r.name.clone(), r.rendering)).collect();
            let statics = json_schema.clone();
            let report = Box::new(move |stream: &str, count: u64, why: crate::sink::Loss| {
                let rendering = report_renderings
                    .iter()
                    .find(|(n, _)| n == stream)
                    .map_or(Rendering::Json, |(_, r)| *r);
                crate::state::drop_report_line(rendering, &statics, stream, count, why)
            });
            Some(
                Queue::start(
                    queued,
                    self.queue_bytes,
                    self.lossy,
                    self.block_timeout,
                    report,
                    archiver,
                )
                .map_err(|source| Error::Io {
                    what: "cannot start the tracelight writer thread".into(),
                    source,
                })?,
            )
        };
        let owned: Vec<_> = streams.iter().flat_map(|s| s.rule.owned()).collect();
        let recorder = self.recorder_env.resolve(self.recorder.as_ref());
        let filter = crate::filter::LogFilter::new(
            self.filter.as_deref().unwrap_or("info"),
            &self.context_fields,
            owned,
            recorder.as_ref().map(|r| (r.level, r.units.clone())),
        )?;
        let selective = streams
            .iter()
            .enumerate()
            .filter(|(_, s)| s.rule.selective())
            .fold(0u64, |m, (i, _)| m | 1 << i);
        static SERIAL: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(1);
        let inner = Arc::new(Shared {
            serial: SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            service: self.service.clone().unwrap_or_else(default_service),
            #[cfg(feature = "testing")]
            testing: self.testing,
            filter,
            selective,
            streams: rts,
            json: json_schema,
            static_keys,
            preset_keys: crate::fields::PresetKeys::new(self.schema.own_keys()),
            redactor: self
                .redactor
                .clone()
                .map(|r| r.keeping(&self.context_fields)),
            span_list: self.span_list,
            context_fields: self.context_fields.clone(),
            queue,
            timing: self.timing.clone().map(|t| {
                crate::timing::warm_up_clock();
                crate::timing::Timing::new(t)
            }),
            tracker: crate::errors::Tracker::new(self.errors.clone()),
            security: crate::errors::SecurityTracker::new(self.errors.max_security_types),
            levels: crate::state::LevelCounts::default(),
            losses_reported: AtomicBool::new(false),
            started: std::time::SystemTime::now(),
            #[cfg(feature = "otel-core")]
            log_export: std::sync::OnceLock::new(),
            sampler: self
                .sampling
                .is_active()
                .then(|| crate::sample::Sampler::new(self.sampling.clone())),
            recorder: recorder.map(crate::recorder::Recorder::new),
        });
        let guard = Guard {
            inner: Arc::clone(&inner),
            done: AtomicBool::new(false),
            #[cfg(feature = "otel-core")]
            otel: None,
        };
        let spans = crate::state::new_span_table(&inner);
        // `std::process::exit` runs no destructors: flush from the C runtime's exit handlers.
        crate::exit::register();
        Ok((
            TracelightLayer {
                state: crate::state::StateRef {
                    shared: inner,
                    spans,
                },
            },
            guard,
        ))
    }

    /// Installs tracelight as the global subscriber (with the filter, the `log` bridge and, unless
    /// turned off, the panic hook). Fails with [`Error::AlreadyInitialized`] if a global subscriber
    /// is already set.
    pub fn init(self) -> Result<Guard, Error> {
        let catch_panics = self.catch_panics;
        #[allow(unused_mut)]
        let mut warnings = self.warnings.clone();
        warnings.extend(self.recorder_warnings());
        warnings.extend(self.schema_warnings());
        #[cfg(feature = "otel-core")]
        let otel = self.start_otel()?;
        #[cfg(feature = "otel-core")]
        warnings.extend(self.otel_warnings(otel.as_ref()));
        #[allow(unused_mut)]
        let (layer, mut guard) = self.build()?;
        let filter = layer.filter();
        let log_level = filter.log_level();
        #[cfg(feature = "otel-core")]
        let subscriber = Registry::default()
            .with(filter.clone())
            .with(otel.as_ref().map(|o| o.layer_beside(Some(filter))))
            .with(layer);
        #[cfg(not(feature = "otel-core"))]
        let subscriber = Registry::default().with(filter).with(layer);
        #[cfg(feature = "otel-core")]
        {
            if let Some(o) = &otel {
                attach_otel(o, &guard)?;
            }
            guard.otel = otel;
        }
        tracing::subscriber::set_global_default(subscriber)
            .map_err(|_| Error::AlreadyInitialized)?;
        // Route the `log` crate's records through the same pipeline. Another logger may already be
        // installed; then its records keep going there, and we say so once.
        if tracing_log::LogTracer::builder()
            .with_max_level(log_level)
            .init()
            .is_ok()
        {
            guard.handle().filter().drives_log();
        } else {
            tracing::warn!(
                target: "tracelight",
                "another `log` logger is already installed: records of the `log` crate go there, not through tracelight"
            );
        }
        if catch_panics {
            crate::panic::install(Arc::clone(&guard.inner));
        }
        warn_at_start(&warnings);
        Ok(guard)
    }

    /// Installs tracelight as the default subscriber of the current thread only, until the returned
    /// guard is dropped: for tests and examples that must not touch global state.
    pub fn init_local(self) -> Result<LocalGuard, Error> {
        #[allow(unused_mut)]
        let mut warnings = self.warnings.clone();
        warnings.extend(self.recorder_warnings());
        warnings.extend(self.schema_warnings());
        #[cfg(feature = "otel-core")]
        let otel = self.start_otel()?;
        #[cfg(feature = "otel-core")]
        warnings.extend(self.otel_warnings(otel.as_ref()));
        #[allow(unused_mut)]
        let (layer, mut guard) = self.build()?;
        let filter = layer.filter();
        #[cfg(feature = "otel-core")]
        let subscriber = Registry::default()
            .with(filter.clone())
            .with(otel.as_ref().map(|o| o.layer_beside(Some(filter))))
            .with(layer);
        #[cfg(not(feature = "otel-core"))]
        let subscriber = Registry::default().with(filter).with(layer);
        #[cfg(feature = "otel-core")]
        {
            if let Some(o) = &otel {
                attach_otel(o, &guard)?;
            }
            guard.otel = otel;
        }
        let default = tracing::subscriber::set_default(subscriber);
        warn_at_start(&warnings);
        Ok(LocalGuard {
            _default: default,
            guard,
        })
    }
}

/// Ties the pipeline to the state `guard` holds: its reports become tracelight lines, and its
/// metrics (when exported) are that state's.
#[cfg(feature = "otel-core")]
fn attach_otel(otel: &crate::otel::OtelPipeline, guard: &Guard) -> Result<(), Error> {
    otel.set_report(otel_report(&guard.inner));
    otel.export_metrics(&guard.handle())
}

/// The export's own lines go to tracelight's streams (ERROR ones to `errors`), as lines of its
/// own: they are written whatever the filter, and from the export threads, which have no
/// dispatcher of their own.
#[cfg(feature = "otel-core")]
fn otel_report(shared: &Arc<Shared>) -> crate::otel::Report {
    let shared = Arc::downgrade(shared);
    Arc::new(move |error, message, fields| {
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let level = if error {
            tracing::Level::ERROR
        } else {
            tracing::Level::WARN
        };
        shared.emit_synthetic(level, "tracelight::otel", message, fields);
    })
}

#[cfg(feature = "otel-core")]
impl Builder {
    /// Exports spans and log events to the OpenTelemetry collector at `url` (the base URL:
    /// `http://collector:4318` for HTTP/protobuf, the default, or `http://collector:4317` with
    /// [`Protocol::Grpc`](crate::otel::Protocol::Grpc)). See [`crate::otel`].
    ///
    /// ```no_run
    /// let _guard = tracelight::builder().service("shop").otlp_endpoint("http://127.0.0.1:4318").init()?;
    /// # Ok::<(), tracelight::Error>(())
    /// ```
    pub fn otlp_endpoint(mut self, url: impl Into<String>) -> Builder {
        self.otel = std::mem::take(&mut self.otel).endpoint(url);
        self
    }

    /// The OpenTelemetry settings, over those read from the environment (`OTEL_*`). Export is on
    /// when the result has an endpoint.
    ///
    /// ```no_run
    /// use tracelight::otel::{OtelConfig, Protocol};
    /// let _guard = tracelight::builder()
    ///     .otel(OtelConfig::new().endpoint("http://127.0.0.1:4317").protocol(Protocol::Grpc))
    ///     .init()?;
    /// # Ok::<(), tracelight::Error>(())
    /// ```
    pub fn otel(mut self, config: crate::otel::OtelConfig) -> Builder {
        self.otel = std::mem::take(&mut self.otel).merge(config);
        self
    }

    /// What to say at start about the OpenTelemetry settings, exported or not.
    fn otel_warnings(&self, otel: Option<&crate::otel::OtelPipeline>) -> Vec<String> {
        let mut w = self.otel.setting_warnings();
        w.extend(otel.iter().flat_map(|o| o.start_warnings()).cloned());
        w
    }

    fn start_otel(&self) -> Result<Option<crate::otel::OtelPipeline>, Error> {
        let defaults = crate::otel::ResourceDefaults {
            service: self.service.clone().unwrap_or_else(default_service),
            env: self.env.clone(),
            host: hostname(),
        };
        // One service name everywhere: the lines' (SERVICE_NAME, then OTEL_SERVICE_NAME, then
        // the binary's name) is also the exported resource's.
        let mut otel = self.otel.clone();
        if let Some(service) = &self.service {
            otel = otel.service_name(service.clone());
        }
        let redactor = self
            .redactor
            .clone()
            .map(|r| r.keeping(&self.context_fields));
        crate::otel::OtelPipeline::start_with(&otel, &defaults, redactor)
    }
}

/// Writes the start-up warnings (see [`Config::warnings`]) as WARN lines.
fn warn_at_start(warnings: &[String]) {
    for w in warnings {
        tracing::warn!(target: "tracelight", "{w}");
    }
}

/// Flushes every stream when dropped, and stops the writer thread; lines logged afterwards are
/// written synchronously, so none is lost. Keep it alive for the life of `main`:
/// `let _guard = tracelight::init()?;` (not `let _ = …`, which drops it at once).
pub struct Guard {
    pub(crate) inner: Arc<Shared>,
    done: AtomicBool,
    #[cfg(feature = "otel-core")]
    otel: Option<crate::otel::OtelPipeline>,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard").finish_non_exhaustive()
    }
}

impl Guard {
    /// Returns when every line logged before the call is written.
    pub fn flush(&self) {
        self.inner.flush();
    }

    /// Per-stream statistics: events, bytes, dropped lines, write errors, rotations.
    ///
    /// ```
    /// let w = tracelight::sink::MemoryWriter::new();
    /// let g = tracelight::builder().writer(w).init_local().unwrap();
    /// tracing::info!("one");
    /// assert_eq!(g.stats()[0].events, 1);
    /// ```
    pub fn stats(&self) -> Vec<StreamStats> {
        self.inner.stats()
    }

    /// The OpenTelemetry export pipeline, when one was started (see [`crate::otel`]).
    ///
    /// ```
    /// let g = tracelight::builder().writer(tracelight::sink::MemoryWriter::new()).init_local().unwrap();
    /// assert!(g.otel().is_none()); // no endpoint, no export
    /// ```
    #[cfg(feature = "otel-core")]
    pub fn otel(&self) -> Option<&crate::otel::OtelPipeline> {
        self.otel.as_ref()
    }

    /// A handle on the layer's state: snapshots of errors, performance, security events.
    pub fn handle(&self) -> crate::Handle {
        crate::Handle {
            shared: Arc::clone(&self.inner),
        }
    }

    /// Flushes and stops the writer thread now (what dropping the guard does).
    pub fn shutdown(&self) {
        if self.done.swap(true, Ordering::AcqRel) {
            return;
        }
        // Spans and log records to the collector first: their export may still log.
        #[cfg(feature = "otel-core")]
        if let Some(otel) = &self.otel {
            otel.shutdown();
        }
        // Suppression windows still open say what they held back; then, once what was queued is
        // written (so that the report itself fits), what was lost, if anything.
        self.inner.emit_due_summaries(true);
        if let Some(q) = &self.inner.queue {
            q.flush();
        }
        self.inner.report_losses();
        if let Some(q) = &self.inner.queue {
            q.shutdown();
        }
        self.inner.flush();
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The guard of [`Builder::init_local`]: the subscriber is the thread's default until it drops.
pub struct LocalGuard {
    // Field order matters: the thread default is reset before the writer shuts down.
    _default: tracing::subscriber::DefaultGuard,
    guard: Guard,
}

impl std::fmt::Debug for LocalGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalGuard").finish_non_exhaustive()
    }
}

impl std::ops::Deref for LocalGuard {
    type Target = Guard;
    fn deref(&self) -> &Guard {
        &self.guard
    }
}

/// Whether `id` can be a Google Cloud project id: lower-case letters, digits and `-` (and `.` or
/// `:` for the older domain-scoped ids, `example.com:my-project`), at most 100 characters.
pub(crate) fn valid_gcp_project(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 100
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-.:".contains(&b))
}
