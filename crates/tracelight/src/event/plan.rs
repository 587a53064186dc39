//! Plan: what happens to an event, decided before any of its fields is rendered.
//!
//! Which streams take it (level, target, the `stream` tag), whether a rate limit holds it back,
//! whether DEBUG sampling drops it (by request, once its context is known), and whether a
//! repeated error is suppressed (once its type is captured). An event that no stream takes, or
//! that a limit drops, costs nothing more.

use tracing_core::{Event, Level, Metadata};
use tracing_log::NormalizeEvent;

use crate::context::{Context, REQUEST_ID};
use crate::state::{Rendering, Shared};
use crate::time::Timestamp;

/// Finds the values of the `stream` field (the stream tag) and the `event` field (a security
/// event's type) without rendering anything else.
#[derive(Debug)]
pub(crate) struct TagVisitor {
    buf: [u8; 32],
    len: usize,
    found: bool,
    event: [u8; 64],
    event_len: usize,
}

impl TagVisitor {
    pub(crate) fn new() -> Self {
        TagVisitor {
            buf: [0; 32],
            len: 0,
            found: false,
            event: [0; 64],
            event_len: 0,
        }
    }

    fn tag(&self) -> Option<&str> {
        if self.found {
            std::str::from_utf8(&self.buf[..self.len]).ok()
        } else {
            None
        }
    }

    fn event(&self) -> &str {
        std::str::from_utf8(&self.event[..self.event_len]).unwrap_or("unknown")
    }
}

impl tracing_core::field::Visit for TagVisitor {
    fn record_str(&mut self, field: &tracing_core::Field, value: &str) {
        match field.name() {
            "stream" if value.len() <= self.buf.len() => {
                self.buf[..value.len()].copy_from_slice(value.as_bytes());
                self.len = value.len();
                self.found = true;
            }
            "event" => {
                let n = value.len().min(self.event.len());
                // Cut at a character boundary.
                let n = (0..=n)
                    .rev()
                    .find(|i| value.is_char_boundary(*i))
                    .unwrap_or(0);
                self.event[..n].copy_from_slice(&value.as_bytes()[..n]);
                self.event_len = n;
            }
            _ => {}
        }
    }
    fn record_debug(&mut self, field: &tracing_core::Field, value: &dyn std::fmt::Debug) {
        // `event = %kind` or `event = ?kind`: keep what fits of its rendering.
        if field.name() == "event" {
            struct Fixed<'a>(&'a mut [u8; 64], &'a mut usize);
            impl std::fmt::Write for Fixed<'_> {
                fn write_str(&mut self, s: &str) -> std::fmt::Result {
                    let room = self.0.len() - *self.1;
                    let mut n = s.len().min(room);
                    while !s.is_char_boundary(n) {
                        n -= 1;
                    }
                    self.0[*self.1..*self.1 + n].copy_from_slice(&s.as_bytes()[..n]);
                    *self.1 += n;
                    Ok(())
                }
            }
            self.event_len = 0;
            let _ = std::fmt::write(
                &mut Fixed(&mut self.event, &mut self.event_len),
                format_args!("{value:?}"),
            );
        }
    }
}

impl TagVisitor {
    /// Reads the tag and security event type of `event`, visiting its fields only when its
    /// callsite has a `stream` field, or an `event` field on a security target.
    fn read(&mut self, event: &Event<'_>, security_target: bool) {
        let fields = event.metadata().fields();
        if fields.field("stream").is_some() || (security_target && fields.field("event").is_some())
        {
            event.record(self);
        }
    }
}

/// What the later stages must do with an event.
#[derive(Debug)]
pub(crate) struct Plan<'t> {
    /// The streams that take the event, one bit per stream.
    pub(crate) mask: u64,
    /// The renderings those streams use, one bit per [`Rendering`].
    pub(crate) renderings: u8,
    /// Events held back by the rate limit before this one.
    pub(crate) rate_limited: u64,
    /// Whether this is a security event (its type is then [`Plan::security_type`]).
    pub(crate) security: bool,
    tag: &'t TagVisitor,
    pub(crate) ts: Option<Timestamp>,
    /// The fingerprint of an ERROR event, set by [`Plan::admit_error`].
    pub(crate) fingerprint: Option<u64>,
}

impl Plan<'_> {
    /// The security event's type, when this is one.
    pub(crate) fn security_type(&self) -> Option<&str> {
        self.security.then(|| self.tag.event())
    }

    /// The event's time: taken once, by the rate limit when it needed it.
    pub(crate) fn timestamp(&self) -> Timestamp {
        self.ts.unwrap_or_else(Timestamp::now)
    }

    /// Whether one of the event's streams uses `rendering`.
    #[inline]
    pub(crate) fn wants(&self, rendering: Rendering) -> bool {
        self.renderings & (1 << rendering as u8) != 0
    }

    /// The error tracker's decision for an ERROR event, once its error type is known: `false`
    /// when a repeat is suppressed. Records the fingerprint for the line.
    pub(crate) fn admit_error(
        &mut self,
        shared: &Shared,
        meta: &Metadata<'_>,
        location: Option<super::Location>,
        error_type: Option<&str>,
        message: &[u8],
    ) -> bool {
        if *meta.level() != Level::ERROR {
            return true;
        }
        // Fingerprint: the callsite (or the place the line reports on: a panic's) and the error
        // type, never the message's variable parts.
        let (file, line) = location.unwrap_or((meta.file(), meta.line()));
        let fingerprint = crate::errors::fingerprint_u64(meta.target(), file, line, error_type);
        self.fingerprint = Some(fingerprint);
        let decision =
            shared
                .tracker
                .record(fingerprint, (meta.target(), file, line), error_type, || {
                    let mut quoted = Vec::with_capacity(message.len() + 2);
                    quoted.push(b'"');
                    quoted.extend_from_slice(message);
                    quoted.push(b'"');
                    crate::context::json_to_string(&quoted)
                });
        decision != crate::errors::Decision::Suppress
    }
}

/// Plans `event`: `None` when no stream takes it or a rate limit drops it. `tag` receives the
/// event's stream tag and security event type. `only_owned` tells whether the event got through
/// the filter only because a stream selecting its target takes it (then only such streams do).
pub(crate) fn plan<'t>(
    shared: &Shared,
    event: &Event<'_>,
    tag: &'t mut TagVisitor,
    only_owned: impl FnOnce() -> bool,
    recording: bool,
) -> Option<Plan<'t>> {
    let meta = event.metadata();
    // A `log` record's real target is in its fields; normalize only when needed.
    let normalized;
    let target = if meta.fields().field("log.target").is_some() {
        normalized = event.normalized_metadata();
        normalized.as_ref().map_or(meta.target(), |m| m.target())
    } else {
        meta.target()
    };
    let security_target = target.starts_with("tracelight::security");
    tag.read(event, security_target);
    let tag: &'t TagVisitor = tag;
    let tag_str = tag.tag();
    let mut mask = 0u64;
    let mut renderings = 0u8;
    for (i, st) in shared.streams.iter().enumerate() {
        if st.rule.matches(meta.level(), target, tag_str, &st.name) {
            mask |= 1 << i;
            renderings |= 1 << st.rendering as u8;
        }
    }
    if mask & shared.selective != 0 && mask & !shared.selective != 0 && only_owned() {
        mask &= shared.selective;
        renderings = 0;
        for (i, st) in shared.streams.iter().enumerate() {
            if mask & (1 << i) != 0 {
                renderings |= 1 << st.rendering as u8;
            }
        }
    }
    if mask == 0 {
        return None;
    }
    let security = tag_str == Some("security") || security_target;
    let mut plan = Plan {
        mask,
        renderings,
        rate_limited: 0,
        security,
        tag,
        ts: None,
        fingerprint: None,
    };
    // A line the flight recorder keeps takes no rate-limit slot: it is not written now.
    if let Some(sampler) = shared.sampler.as_ref().filter(|_| !recording) {
        if *meta.level() != Level::ERROR && sampler.config.rate_limit.is_some() {
            let ts = Timestamp::now();
            plan.ts = Some(ts);
            match sampler.limit(meta as *const _ as usize, ts.secs) {
                crate::sample::Limit::Pass => {}
                crate::sample::Limit::PassAfter(n) => plan.rate_limited = n,
                crate::sample::Limit::Drop => return None,
            }
        }
    }
    Some(plan)
}

/// DEBUG and TRACE are sampled by request: all of a request's lines, or none. `false` when the
/// event is sampled out.
pub(crate) fn keep_sampled(shared: &Shared, level: &Level, context: Option<&Context>) -> bool {
    if *level <= Level::INFO {
        return true;
    }
    match &shared.sampler {
        Some(sampler) => sampler.keep_debug(context.and_then(|c| c.get_json(REQUEST_ID))),
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::event::testing::with_events;
    use crate::sink::MemoryWriter;
    use crate::{Output, Rule, Stream};

    fn stream(name: &str) -> Stream {
        Stream::new(name, Output::Writer(Arc::new(MemoryWriter::new())))
    }

    /// `(mask, security type)` of each event `run` logs.
    fn plans(builder: crate::Builder, run: impl FnOnce()) -> Vec<(u64, Option<String>)> {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let out = Arc::clone(&seen);
        with_events(
            builder,
            move |shared, _, event| {
                let mut tag = TagVisitor::new();
                let p = plan(shared, event, &mut tag, || false, false);
                crate::util::lock(&out).push(p.map_or((0, None), |p| {
                    (p.mask, p.security_type().map(str::to_owned))
                }));
            },
            run,
        );
        let v = crate::util::lock(&seen).clone();
        v
    }

    #[test]
    fn streams_by_level_target_and_tag() {
        let b = crate::builder()
            .stream(stream("all"))
            .stream(stream("errors").rule(Rule::min_level(Level::ERROR)))
            .stream(stream("db").rule(Rule::all().target("plan_db")))
            .stream(stream("audit").rule(Rule::tagged()));
        let got = plans(b, || {
            tracing::info!("plain");
            tracing::error!("bad");
            tracing::info!(target: "plan_db::pool", "query");
            tracing::info!(stream = "audit", "tagged");
            tracing::info!(stream = "elsewhere", "tagged for no stream");
        });
        let masks: Vec<u64> = got.iter().map(|(m, _)| *m).collect();
        assert_eq!(masks, [0b0001, 0b0011, 0b0101, 0b1001, 0b0001]);
    }

    #[test]
    fn no_stream_means_no_plan() {
        let b = crate::builder().stream(stream("errors").rule(Rule::min_level(Level::ERROR)));
        let got = plans(b, || tracing::info!("nobody takes this"));
        assert_eq!(got, [(0, None)]);
    }

    #[test]
    fn security_events_carry_their_type() {
        let b = crate::builder().stream(stream("all"));
        let got = plans(b, || {
            crate::security_event!("login_failed", "medium", "wrong password");
            tracing::info!("not security");
        });
        assert_eq!(got[0].1.as_deref(), Some("login_failed"));
        assert_eq!(got[1].1, None);
    }

    #[test]
    fn a_rate_limit_drops_and_then_counts() {
        let sampling = crate::sample::SamplingConfig::default().rate_limit(2);
        let b = crate::builder().stream(stream("all")).sampling(sampling);
        let limited = Arc::new(Mutex::new(Vec::new()));
        let out = Arc::clone(&limited);
        with_events(
            b,
            move |shared, _, event| {
                let mut tag = TagVisitor::new();
                let p = plan(shared, event, &mut tag, || false, false);
                crate::util::lock(&out).push(p.is_some());
            },
            || {
                for _ in 0..5 {
                    tracing::info!("same callsite");
                }
            },
        );
        let kept = crate::util::lock(&limited).iter().filter(|k| **k).count();
        assert!(kept < 5, "a limit of 2 a second let all 5 through");
        assert!(kept >= 2);
    }
}
