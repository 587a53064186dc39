//! Redaction of what leaves for the collector.
//!
//! `tracing-opentelemetry` and the logs bridge read the raw fields of spans and events, beside
//! tracelight's own visitor, so the JSON lines' redaction does not cover them. The export threads
//! apply the same [`Redactor`] to every span and log record before it is exported: attributes whose
//! key is secret become `"[REDACTED]"`, and every string value — attribute values, span event names
//! and attributes, status descriptions, log bodies — goes through [`Redactor::redact_str`]. This
//! happens on the export thread, never on the service's.

use std::collections::HashMap;

use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _};
use opentelemetry::{Array, Key, KeyValue, StringValue, Value};
use opentelemetry_sdk::logs::SdkLogRecord;
use opentelemetry_sdk::trace::SpanData;

use crate::fields::REDACTED;
use crate::redact::Redactor;

/// A redactor with a cache of key decisions (the export thread sees the same keys again and again).
pub(crate) struct Scrubber {
    redactor: Redactor,
    keys: HashMap<String, bool>,
    /// Makes fresh log records (their constructor is the SDK's).
    logger: opentelemetry_sdk::logs::SdkLogger,
    _provider: opentelemetry_sdk::logs::SdkLoggerProvider,
}

impl Scrubber {
    pub(crate) fn new(redactor: Redactor) -> Scrubber {
        use opentelemetry::logs::LoggerProvider as _;
        let provider = opentelemetry_sdk::logs::SdkLoggerProvider::builder().build();
        let logger = provider.logger("tracelight");
        Scrubber {
            redactor,
            keys: HashMap::new(),
            logger,
            _provider: provider,
        }
    }

    fn secret(&mut self, key: &str) -> bool {
        if let Some(s) = self.keys.get(key) {
            return *s;
        }
        let s = self.redactor.is_secret_key(key);
        if self.keys.len() < 4096 {
            self.keys.insert(key.to_owned(), s);
        }
        s
    }

    fn text(&self, s: &str) -> Option<String> {
        let r = self.redactor.redact_str(s);
        (r != s).then_some(r)
    }

    fn value(&self, v: &mut Value) {
        match v {
            Value::String(s) => {
                if let Some(r) = self.text(s.as_str()) {
                    *s = StringValue::from(r);
                }
            }
            Value::Array(Array::String(items)) => {
                for s in items {
                    if let Some(r) = self.text(s.as_str()) {
                        *s = StringValue::from(r);
                    }
                }
            }
            _ => {}
        }
    }

    fn attributes(&mut self, attrs: &mut [KeyValue]) {
        for kv in attrs {
            if self.secret(kv.key.as_str()) {
                kv.value = Value::String(StringValue::from(REDACTED));
            } else {
                self.value(&mut kv.value);
            }
        }
    }

    /// Masks the secrets of a span in place.
    pub(crate) fn span(&mut self, span: &mut SpanData) {
        if !self.redactor.is_enabled() {
            return;
        }
        if let Some(r) = self.text(&span.name) {
            span.name = r.into();
        }
        self.attributes(&mut span.attributes);
        for ev in &mut span.events.events {
            if let Some(r) = self.text(&ev.name) {
                ev.name = r.into();
            }
            self.attributes(&mut ev.attributes);
        }
        for link in &mut span.links.links {
            self.attributes(&mut link.attributes);
        }
        if let opentelemetry::trace::Status::Error { description } = &mut span.status {
            if let Some(r) = self.text(description) {
                *description = r.into();
            }
        }
    }

    fn any(&mut self, v: &AnyValue) -> Option<AnyValue> {
        match v {
            AnyValue::String(s) => self.text(s.as_str()).map(|r| AnyValue::String(r.into())),
            AnyValue::ListAny(items) => {
                let mut changed = false;
                let out: Vec<AnyValue> = items
                    .iter()
                    .map(|i| match self.any(i) {
                        Some(r) => {
                            changed = true;
                            r
                        }
                        None => i.clone(),
                    })
                    .collect();
                changed.then(|| AnyValue::ListAny(Box::new(out)))
            }
            AnyValue::Map(map) => {
                let mut changed = false;
                let mut out = HashMap::with_capacity(map.len());
                for (k, i) in map.iter() {
                    let r = if self.secret(k.as_str()) {
                        Some(AnyValue::String(REDACTED.into()))
                    } else {
                        self.any(i)
                    };
                    changed |= r.is_some();
                    out.insert(k.clone(), r.unwrap_or_else(|| i.clone()));
                }
                changed.then(|| AnyValue::Map(Box::new(out)))
            }
            _ => None,
        }
    }

    /// The record with its secrets masked, or `None` when it has none. (A record's attributes can
    /// only be added to, so a changed record is rebuilt.)
    pub(crate) fn log(&mut self, rec: &SdkLogRecord) -> Option<SdkLogRecord> {
        if !self.redactor.is_enabled() {
            return None;
        }
        let body = rec.body().and_then(|b| self.any(b));
        let mut attrs: Vec<(Key, Option<AnyValue>)> = Vec::new();
        let mut changed = body.is_some();
        for (k, v) in rec.attributes_iter() {
            let r = if self.secret(k.as_str()) {
                Some(AnyValue::String(REDACTED.into()))
            } else {
                self.any(v)
            };
            changed |= r.is_some();
            attrs.push((k.clone(), r));
        }
        if !changed {
            return None;
        }
        let mut out = self.logger.create_log_record();
        if let Some(n) = rec.event_name() {
            out.set_event_name(n);
        }
        if let Some(t) = rec.target() {
            out.set_target(t.clone());
        }
        if let Some(t) = rec.timestamp() {
            out.set_timestamp(t);
        }
        if let Some(t) = rec.observed_timestamp() {
            out.set_observed_timestamp(t);
        }
        if let Some(tc) = rec.trace_context() {
            out.set_trace_context(tc.trace_id, tc.span_id, tc.trace_flags);
        }
        if let Some(s) = rec.severity_text() {
            out.set_severity_text(s);
        }
        if let Some(s) = rec.severity_number() {
            out.set_severity_number(s);
        }
        match body {
            Some(b) => out.set_body(b),
            None => {
                if let Some(b) = rec.body() {
                    out.set_body(b.clone());
                }
            }
        }
        for ((k, r), (_, v)) in attrs.into_iter().zip(rec.attributes_iter()) {
            out.add_attribute(k, r.unwrap_or_else(|| v.clone()));
        }
        Some(out)
    }
}
