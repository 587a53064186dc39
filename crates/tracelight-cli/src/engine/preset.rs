//! Lines written in a schema preset (`LOG_SCHEMA=ecs|gcp|datadog|otel`), read as lines of the
//! default schema: every command then works on them as on any line. The key names come from
//! `tracelight-schema`; this module undoes what is not a plain rename (the level's value, the
//! error's members, GCP's source location and trace, OpenTelemetry's resource and scope).

use serde_json::{Map, Value};
use tracelight_schema::{gcp, key, otel, Schema};

/// Parses a line; a line of a schema preset comes back with the default schema's keys.
pub(crate) fn parse_line(line: &[u8]) -> Option<Value> {
    let mut v: Value = serde_json::from_slice(line).ok()?;
    if let (Some(schema), Value::Object(m)) = (preset_of(line), &mut v) {
        to_default(schema, m);
    }
    Some(v)
}

/// The preset of a line that is not in the default schema.
#[inline]
pub(crate) fn preset_of(line: &[u8]) -> Option<Schema> {
    Schema::detect(line).filter(|s| *s != Schema::Default)
}

/// Renames the root keys of a preset's line to the default schema's, in place.
pub(crate) fn to_default(schema: Schema, m: &mut Map<String, Value>) {
    let keys: Vec<String> = m.keys().cloned().collect();
    for k in keys {
        if let Some(to) = schema.default_key(&k) {
            if let Some(v) = m.remove(&k) {
                m.insert(to.to_owned(), v);
            }
        }
    }
    // The level as the default schema writes it (`WARN`, upper case).
    if let Some(Value::String(l)) = m.get_mut(key::LEVEL) {
        if let Some(i) = schema.level_index(l) {
            *l = tracelight_schema::level::ALL[i].to_owned();
        }
    }
    if let Some([ty, message, chain]) = schema.error_keys() {
        let ty = m.remove(ty);
        let message = m.remove(message);
        let chain = m.remove(chain);
        if ty.is_some() || message.is_some() || chain.is_some() {
            let mut e = Map::new();
            if let Some(t) = ty {
                e.insert("type".into(), t);
            }
            if let Some(msg) = message {
                e.insert("message".into(), msg);
            }
            if let Some(Value::String(c)) = chain {
                let links = c.split('\n').map(|l| Value::String(l.to_owned())).collect();
                e.insert("chain".into(), Value::Array(links));
            }
            m.insert(key::ERROR.into(), Value::Object(e));
        }
    }
    // An event field the preset renamed because it took its name (Datadog's `status`, an
    // access line's HTTP status) gets it back once the preset's key has moved (after the
    // error's members are gathered: a field of the user's named `error.kind` is not them).
    for k in schema.own_keys() {
        if !tracelight_schema::is_reserved(k) && !m.contains_key(*k) {
            if let Some(v) = m.remove(&tracelight_schema::rename(k, 1)) {
                m.insert((*k).to_owned(), v);
            }
        }
    }
    match schema {
        Schema::Ecs => {
            m.remove(tracelight_schema::ecs::ECS_VERSION);
        }
        Schema::Gcp => {
            if let Some(Value::Object(loc)) = m.remove(gcp::SOURCE_LOCATION) {
                for (from, to) in [("file", key::FILE), ("function", key::TARGET)] {
                    if let Some(v) = loc.get(from) {
                        m.insert(to.into(), v.clone());
                    }
                }
                if let Some(n) = loc.get("line").and_then(line_number) {
                    m.insert(key::LINE.into(), Value::from(n));
                }
            }
            if let Some(Value::String(t)) = m.remove(gcp::TRACE) {
                // `projects/<id>/traces/<trace id>`
                let id = t.rsplit('/').next().unwrap_or_default().to_owned();
                m.insert(key::TRACE_ID.into(), Value::String(id));
            }
            m.remove(gcp::TRACE_SAMPLED);
        }
        Schema::Otel => {
            m.remove(otel::SEVERITY_NUMBER);
            if let Some(Value::Object(scope)) = m.remove(otel::SCOPE) {
                if let Some(name) = scope.get("Name") {
                    m.insert(key::TARGET.into(), name.clone());
                }
            }
            if let Some(Value::Object(res)) = m.remove(otel::RESOURCE) {
                for (from, to) in [
                    ("service.name", key::SERVICE),
                    ("deployment.environment.name", key::ENV),
                    ("host.name", key::HOST),
                    ("process.pid", key::PID),
                ] {
                    if let Some(v) = res.get(from) {
                        m.insert(to.into(), v.clone());
                    }
                }
            }
        }
        _ => {}
    }
}

/// A source line written as a number or as a string of digits.
fn line_number(v: &Value) -> Option<u64> {
    v.as_u64().or_else(|| v.as_str()?.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TS: &str = "2026-02-10T22:30:00.123456Z";

    fn normalized(line: &str) -> Value {
        parse_line(line.as_bytes()).expect("a line")
    }

    #[test]
    fn every_preset_reads_as_the_default_schema() {
        let ecs = format!(
            r#"{{"@timestamp":"{TS}","log.level":"warn","message":"m","log.logger":"shop","log.origin.file.name":"src/a.rs","log.origin.file.line":7,"ecs.version":"8.11.0","service.name":"shop","host.hostname":"h","process.pid":1,"process.thread.name":"t","request_id":"r-1","trace.id":"ab","span.id":"cd","error.type":"E","error.message":"top","error.stack_trace":"top\ncause","labels.error_fingerprint":"ff","tracing.span":{{"name":"s"}}}}"#
        );
        let gcp = format!(
            r#"{{"time":"{TS}","severity":"WARNING","message":"m","logging.googleapis.com/sourceLocation":{{"file":"src/a.rs","line":"7","function":"shop"}},"service":"shop","host":"h","pid":1,"thread":"t","request_id":"r-1","logging.googleapis.com/trace":"projects/p/traces/ab","logging.googleapis.com/spanId":"cd","logging.googleapis.com/trace_sampled":true,"error":{{"type":"E","message":"top","chain":["top","cause"]}},"error_fingerprint":"ff","span":{{"name":"s"}}}}"#
        );
        let dd = format!(
            r#"{{"timestamp":"{TS}","status":"warn","message":"m","logger.name":"shop","file":"src/a.rs","line":7,"service":"shop","host":"h","pid":1,"logger.thread_name":"t","request_id":"r-1","dd.trace_id":"ab","dd.span_id":"cd","error.kind":"E","error.message":"top","error.stack":"top\ncause","error.fingerprint":"ff","span":{{"name":"s"}}}}"#
        );
        let otel = format!(
            r#"{{"Timestamp":"{TS}","SeverityText":"WARN","SeverityNumber":13,"Body":"m","InstrumentationScope":{{"Name":"shop"}},"code.file.path":"src/a.rs","code.line.number":7,"Resource":{{"service.name":"shop","host.name":"h","process.pid":1}},"thread.name":"t","request_id":"r-1","TraceId":"ab","SpanId":"cd","exception.type":"E","exception.message":"top","exception.stacktrace":"top\ncause","error_fingerprint":"ff","span":{{"name":"s"}}}}"#
        );
        let want: Value = serde_json::from_str(&format!(
            r#"{{"timestamp":"{TS}","level":"WARN","message":"m","target":"shop","file":"src/a.rs","line":7,"service":"shop","host":"h","pid":1,"thread":"t","request_id":"r-1","trace_id":"ab","span_id":"cd","error":{{"type":"E","message":"top","chain":["top","cause"]}},"error_fingerprint":"ff","span":{{"name":"s"}}}}"#
        ))
        .expect("json");
        for line in [ecs, gcp, dd, otel] {
            assert_eq!(normalized(&line), want, "{line}");
        }
    }

    #[test]
    fn fields_of_the_users_named_like_the_presets_keys_stay_theirs() {
        // On a WARN line with no error, the user's `error.kind` (renamed as it is Datadog's)
        // is not an error; on an OpenTelemetry line, neither is `exception.type`.
        let dd = format!(
            r#"{{"timestamp":"{TS}","status":"warn","message":"m","fields.error.kind":"ek","fields.status":"shipped","fields.logger.name":"mine"}}"#
        );
        let v = normalized(&dd);
        assert_eq!(v.get("error"), None, "{v}");
        assert_eq!(v["error.kind"], "ek");
        assert_eq!(v["status"], "shipped");
        assert_eq!(v["logger.name"], "mine");
        assert_eq!(v["level"], "WARN");
        let otel = format!(
            r#"{{"Timestamp":"{TS}","SeverityText":"ERROR","SeverityNumber":17,"Body":"m","exception.type":"E","exception.message":"top","exception.stacktrace":"top","fields.exception.type":"mine"}}"#
        );
        let v = normalized(&otel);
        assert_eq!(v["error"]["type"], "E");
        assert_eq!(v["exception.type"], "mine", "{v}");
    }

    #[test]
    fn other_lines_are_left_as_they_are() {
        let line =
            format!(r#"{{"timestamp":"{TS}","level":"INFO","message":"m","log.level":"x"}}"#);
        assert_eq!(normalized(&line)["log.level"], "x");
        let foreign = r#"{"@timestamp":"2026","log.level":"info"}"#;
        assert_eq!(normalized(foreign)["log.level"], "info");
    }
}
