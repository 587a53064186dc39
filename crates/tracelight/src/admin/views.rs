//! The JSON bodies of the admin endpoints, built from the handle's snapshots.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::Value;

use crate::errors::{ErrorSnapshot, SecuritySnapshot};
use crate::timing::PerformanceSnapshot;

/// How many slow requests `/performance` lists (newest first).
///
/// ```
/// assert_eq!(tracelight::admin::SLOW_REQUESTS, 50);
/// ```
pub const SLOW_REQUESTS: usize = 50;

/// `2026-02-10T22:30:00.123456Z`: RFC 3339, UTC, microseconds.
pub(crate) fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let head = crate::time::render_seconds(d.as_secs(), b'T');
    format!(
        "{}.{:06}Z",
        String::from_utf8_lossy(&head),
        d.subsec_micros()
    )
}

/// A line as written: its JSON object when it is one (the JSON format), else the text.
fn line(text: &str) -> Value {
    match serde_json::from_str::<Value>(text) {
        Ok(v @ Value::Object(_)) => v,
        _ => Value::String(text.to_owned()),
    }
}

/// The longest page of an admin answer's list (`?limit=`); the default is [`DEFAULT_LIMIT`].
pub(crate) const MAX_LIMIT: usize = 1000;
/// The page length of an admin answer's list when `?limit=` is not given.
pub(crate) const DEFAULT_LIMIT: usize = 100;

/// `?offset=&limit=` of a list endpoint.
#[derive(Debug, Default, Clone, Copy, serde::Deserialize)]
pub(crate) struct Page {
    offset: Option<usize>,
    limit: Option<usize>,
}

/// Where a page is in its list: what a client needs to ask for the next one.
#[derive(Serialize)]
struct PageInfo {
    offset: usize,
    limit: usize,
    /// How many items the whole list has.
    total: usize,
    /// The `offset` of the next page, if there is one.
    next: Option<usize>,
}

impl Page {
    /// The page of `items`, and where it is.
    fn take<T>(self, items: Vec<T>) -> (Vec<T>, PageInfo) {
        let total = items.len();
        let offset = self.offset.unwrap_or(0).min(total);
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
        let end = offset.saturating_add(limit).min(total);
        let page = items.into_iter().skip(offset).take(end - offset).collect();
        let next = (end < total).then_some(end);
        (
            page,
            PageInfo {
                offset,
                limit,
                total,
                next,
            },
        )
    }
}

#[derive(Serialize)]
pub(crate) struct Errors {
    generated_at: String,
    total: u64,
    /// Distinct fingerprints past the bound, counted in the group `other`.
    folded: u64,
    groups: Vec<ErrorGroup>,
    page: PageInfo,
    recent: Vec<Value>,
}

#[derive(Serialize)]
struct ErrorGroup {
    fingerprint: String,
    message: String,
    target: String,
    error_type: Option<String>,
    count: u64,
    last_minute: u64,
    last_hour: u64,
    suppressed: u64,
    first_seen: String,
    last_seen: String,
    /// Occurrences in each of the last 60 minutes, oldest first.
    per_minute: Vec<u32>,
    sample: Value,
}

impl Errors {
    pub(crate) fn new(s: ErrorSnapshot, page: Page) -> Errors {
        let (groups, page) = page.take(s.groups);
        Errors {
            generated_at: rfc3339(SystemTime::now()),
            total: s.total,
            folded: s.folded,
            page,
            groups: groups
                .into_iter()
                .map(|g| ErrorGroup {
                    fingerprint: g.fingerprint,
                    message: g.message,
                    target: g.target,
                    error_type: g.error_type,
                    count: g.count,
                    last_minute: g.last_minute,
                    last_hour: g.last_hour,
                    suppressed: g.suppressed,
                    first_seen: rfc3339(g.first_seen),
                    last_seen: rfc3339(g.last_seen),
                    per_minute: g.per_minute,
                    sample: if g.sample.is_empty() {
                        Value::Null
                    } else {
                        line(&g.sample)
                    },
                })
                .collect(),
            recent: s.recent.iter().rev().map(|l| line(l)).collect(),
        }
    }
}

#[derive(Serialize)]
pub(crate) struct Performance {
    generated_at: String,
    /// Distinct operations past the bound, counted under `other`.
    folded: u64,
    operations: Vec<Operation>,
    page: PageInfo,
    slow_requests: Vec<SlowRequest>,
}

#[derive(Serialize)]
struct Operation {
    operation: String,
    count: u64,
    slow: u64,
    min_ms: f64,
    max_ms: f64,
    mean_ms: f64,
    p50_ms: f64,
    p90_ms: f64,
    p99_ms: f64,
    threshold_ms: f64,
    /// The latency histogram: closes per bucket (not cumulative), each bucket up to `le_ms`.
    histogram: Vec<Bucket>,
}

#[derive(Serialize)]
struct Bucket {
    /// The bucket's upper bound; `null` for the last, unbounded one.
    le_ms: Option<f64>,
    count: u64,
}

#[derive(Serialize)]
struct SlowRequest {
    operation: String,
    at: String,
    duration_ms: f64,
    busy_ms: f64,
    request_id: Option<String>,
    fields: Value,
    #[serde(skip)]
    sort_key: SystemTime,
}

impl Performance {
    pub(crate) fn new(s: PerformanceSnapshot, page: Page) -> Performance {
        let mut slow_requests = Vec::new();
        let mut operations = Vec::with_capacity(s.operations.len());
        for op in s.operations {
            for sample in op.slow_samples {
                slow_requests.push(SlowRequest {
                    operation: op.operation.clone(),
                    at: rfc3339(sample.at),
                    duration_ms: sample.duration_ms,
                    busy_ms: sample.busy_ms,
                    request_id: sample.request_id,
                    fields: serde_json::from_str(&sample.fields)
                        .unwrap_or(Value::String(sample.fields)),
                    sort_key: sample.at,
                });
            }
            operations.push(Operation {
                operation: op.operation,
                count: op.count,
                slow: op.slow,
                min_ms: op.min_ms,
                max_ms: op.max_ms,
                mean_ms: op.mean_ms,
                p50_ms: op.p50_ms,
                p90_ms: op.p90_ms,
                p99_ms: op.p99_ms,
                threshold_ms: op.threshold_ms,
                histogram: {
                    let mut h: Vec<Bucket> = op
                        .buckets
                        .iter()
                        .scan(0u64, |below, (le, cumulative)| {
                            let count = cumulative.saturating_sub(*below);
                            *below = *cumulative;
                            Some(Bucket {
                                le_ms: Some(le * 1e3),
                                count,
                            })
                        })
                        .collect();
                    // Past the last bound: the closes longer than every bucket.
                    let within = op.buckets.last().map_or(0, |(_, c)| *c);
                    h.push(Bucket {
                        le_ms: None,
                        count: op.count.saturating_sub(within),
                    });
                    h
                },
            });
        }
        slow_requests.sort_by_key(|s| std::cmp::Reverse(s.sort_key));
        slow_requests.truncate(SLOW_REQUESTS);
        let (operations, page) = page.take(operations);
        Performance {
            generated_at: rfc3339(SystemTime::now()),
            folded: s.folded,
            operations,
            page,
            slow_requests,
        }
    }
}

#[derive(Serialize)]
pub(crate) struct Security {
    generated_at: String,
    total: u64,
    /// Distinct event types past the bound, counted as `other`.
    folded: u64,
    counts: Vec<SecurityCount>,
    page: PageInfo,
    recent: Vec<SecurityEvent>,
}

#[derive(Serialize)]
struct SecurityCount {
    event: String,
    count: u64,
    /// Events in each of the last 60 minutes, oldest first.
    per_minute: Vec<u32>,
}

#[derive(Serialize)]
struct SecurityEvent {
    event: String,
    line: Value,
}

impl Security {
    pub(crate) fn new(s: SecuritySnapshot, page: Page) -> Security {
        let mut series: std::collections::HashMap<String, Vec<u32>> =
            s.per_minute.into_iter().collect();
        let (counts, page) = page.take(s.counts);
        Security {
            generated_at: rfc3339(SystemTime::now()),
            total: s.total,
            folded: s.folded,
            page,
            counts: counts
                .into_iter()
                .map(|(event, count)| SecurityCount {
                    per_minute: series.remove(&event).unwrap_or_else(|| vec![0; 60]),
                    event,
                    count,
                })
                .collect(),
            recent: s
                .recent
                .into_iter()
                .rev()
                .map(|e| SecurityEvent {
                    line: line(&e.line),
                    event: e.event,
                })
                .collect(),
        }
    }
}

/// `GET …/log-level`.
#[derive(Serialize)]
pub(crate) struct LogLevel {
    filter: String,
    initial: String,
    since: String,
    reverts_at: Option<String>,
    reverts_to: Option<String>,
}

impl LogLevel {
    pub(crate) fn new(s: crate::FilterState) -> LogLevel {
        LogLevel {
            filter: s.directives,
            initial: s.initial,
            since: rfc3339(s.since),
            reverts_at: s.reverts_at.map(rfc3339),
            reverts_to: s.reverts_to,
        }
    }
}

/// The body of `PUT …/log-level`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SetLogLevel {
    pub(crate) filter: Option<String>,
    #[serde(default)]
    pub(crate) reset: bool,
    /// `"10m"`, `"30s"`, `"1h"`, or a number of seconds.
    #[serde(rename = "for")]
    pub(crate) for_: Option<serde_json::Value>,
}

impl SetLogLevel {
    /// The time limit asked for, checked.
    pub(crate) fn duration(&self) -> Result<Option<std::time::Duration>, String> {
        let Some(v) = &self.for_ else {
            return Ok(None);
        };
        let d = match v {
            Value::Number(n) => n
                .as_u64()
                .map(std::time::Duration::from_secs)
                .ok_or_else(|| format!("\"for\": {n} is not a whole number of seconds"))?,
            Value::String(s) => crate::config::parse_duration("for", s)
                .map_err(|_| format!("\"for\": {s:?} is not a duration (30s, 10m, 1h)"))?,
            other => {
                return Err(format!(
                    "\"for\": {other} is neither \"10m\" nor a number of seconds"
                ))
            }
        };
        if d.is_zero() || d > std::time::Duration::from_secs(7 * 24 * 3600) {
            return Err(format!("\"for\": {d:?} is not between 1 s and 7 days"));
        }
        Ok(Some(d))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_histogram_ends_with_the_closes_past_its_last_bound() {
        let op = crate::timing::OperationStats {
            operation: "GET /export".into(),
            count: 5,
            slow: 0,
            min_ms: 1.0,
            max_ms: 90_000.0,
            mean_ms: 1.0,
            sum_ms: 1.0,
            p50_ms: 1.0,
            p90_ms: 1.0,
            p99_ms: 1.0,
            threshold_ms: 500.0,
            slow_samples: Vec::new(),
            buckets: vec![(0.005, 1), (60.0, 2)],
        };
        let s = PerformanceSnapshot {
            operations: vec![op],
            folded: 0,
        };
        let v = serde_json::to_value(Performance::new(s, Page::default())).unwrap();
        let h = &v["operations"][0]["histogram"];
        assert_eq!(h[0]["count"], 1);
        assert_eq!(h[1]["count"], 1);
        assert_eq!(h[2]["le_ms"], serde_json::Value::Null);
        assert_eq!(h[2]["count"], 3, "three closes over a minute: {h}");
    }

    use super::*;
    use std::time::Duration;

    #[test]
    fn rfc3339_in_utc_with_microseconds() {
        let t = UNIX_EPOCH + Duration::from_micros(1_770_762_600_123_456);
        assert_eq!(rfc3339(t), "2026-02-10T22:30:00.123456Z");
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000000Z");
    }

    #[test]
    fn lines_are_objects_when_json() {
        assert_eq!(line("{\"a\":1}")["a"], 1);
        assert_eq!(line("2026 INFO text line"), "2026 INFO text line");
        assert_eq!(line("42"), "42");
    }
}

/// `GET …/stats`: every counter and gauge of `/metrics` (histograms left out), as JSON.
#[derive(Serialize)]
pub(crate) struct Stats {
    generated_at: String,
    service: String,
    metrics: Vec<Metric>,
}

#[derive(Serialize)]
struct Metric {
    name: &'static str,
    help: &'static str,
    points: Vec<MetricPoint>,
}

#[derive(Serialize)]
struct MetricPoint {
    labels: std::collections::BTreeMap<&'static str, String>,
    value: f64,
}

impl Stats {
    pub(crate) fn new(handle: &crate::Handle) -> Stats {
        #[cfg(feature = "otel-core")]
        let export = crate::otel::started_stats();
        #[cfg(not(feature = "otel-core"))]
        let export = None;
        let metrics = crate::series::families(handle, export)
            .into_iter()
            .map(|f| Metric {
                name: f.name,
                help: f.help,
                points: f
                    .points
                    .into_iter()
                    .filter_map(|p| {
                        let value = match p.value {
                            crate::series::Value::Int(n) => n as f64,
                            crate::series::Value::Float(x) => x,
                            crate::series::Value::Histogram(_) => return None,
                        };
                        Some(MetricPoint {
                            labels: p.labels.into_iter().collect(),
                            value,
                        })
                    })
                    .collect(),
            })
            .filter(|m| !m.points.is_empty())
            .collect();
        Stats {
            generated_at: rfc3339(SystemTime::now()),
            service: handle.service().to_owned(),
            metrics,
        }
    }
}
