//! Admin endpoints: what the logs know, over HTTP, behind a token.
//!
//! [`AdminRouter`] builds an axum [`Router`] from a [`Handle`] on the tracelight layer:
//!
//! | endpoint | answers |
//! |---|---|
//! | `GET /admin/logs/errors` | error groups by fingerprint (counts, last minute and hour, suppressed, first and last seen, a sample line), the latest error lines, the total — JSON |
//! | `GET /admin/logs/performance` | per-operation aggregates (count, slow, min, max, mean, p50, p90, p99, threshold) and the latest slow requests — JSON |
//! | `GET /admin/logs/security` | security events: counts by type, per minute over the last hour, and the latest events — JSON |
//! | `GET/PUT /admin/logs/log-level` | the filter in force; a new one, for good or for a time — JSON |
//! | `GET /admin/logs/stats` | every counter and gauge of `/metrics` — JSON |
//! | `GET /admin/logs/dashboard` | a self-contained page over all of them, with a sign-in form that gives a session cookie (see docs/admin.md) |
//! | `GET /metrics` | every counter in the Prometheus text format (see below) |
//!
//! The prefix (`/admin/logs`) and the metrics path are configurable. Times are RFC 3339 strings in
//! UTC; lines are embedded as JSON objects when they were written as JSON (the text otherwise);
//! lists of recent things are newest first.
//!
//! ```
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let guard = tracelight::init()?;
//! let token = std::env::var("ADMIN_TOKEN")?; // 16 characters at least; 32 random ones is better
//! let app = axum::Router::new()
//!     .route("/", axum::routing::get(|| async { "hello" }))
//!     .merge(tracelight::admin::AdminRouter::new(guard.handle()).token(token).build()?);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! // With the peer address, failed attempts are throttled per client.
//! axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>()).await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Authentication
//!
//! Every endpoint, `/metrics` included, asks for the token, as `Authorization: Bearer <token>` or
//! `X-Admin-Token: <token>`. There is no way to build the router without one: a missing, empty
//! or short token (under [`MIN_TOKEN_LEN`] bytes) is an [`Error::InvalidSetting`]. Several tokens
//! may be given (to rotate one without downtime).
//!
//! The comparison takes the same time whatever is sent: both sides are padded to
//! [`MAX_TOKEN_LEN`] bytes and every byte is compared, so neither the token's length nor how much
//! of a guess was right shows in the response time.
//!
//! - A **failed attempt** answers `401` (the same response for a missing token and a wrong one)
//!   and is a security event: `event = "admin_auth_failed"`, `severity = "high"`, with
//!   `client_ip`, `path` and `reason` (`missing_token` or `wrong_token`) — never the token sent.
//! - After **5 failures in a minute** from one client (configurable with
//!   [`AdminRouter::throttle`]), its requests answer `429` with `Retry-After`, without checking the
//!   token, until the oldest failure is a minute old; the lockout is one security event
//!   (`admin_auth_throttled`). A client is its peer address (axum's `ConnectInfo<SocketAddr>`, or a
//!   [`PeerAddr`](crate::http::PeerAddr) extension; IPv6 by /64), or what
//!   [`AdminRouter::client_ip_with`] returns; clients whose address is unknown share one bucket.
//! - Every **successful access** is logged too: `event = "admin_access"`, `severity = "low"`,
//!   with `client_ip` and `path`.
//!
//! # Metrics
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `tracelight_events_total` | counter | `level` |
//! | `tracelight_stream_lines_total` | counter | `stream` |
//! | `tracelight_stream_bytes_total` | counter | `stream` |
//! | `tracelight_stream_dropped_total` | counter | `stream` |
//! | `tracelight_stream_write_errors_total` | counter | `stream` |
//! | `tracelight_stream_lost_lines_total` | counter | `stream` |
//! | `tracelight_stream_rotations_total` | counter | `stream` |
//! | `tracelight_errors_total` | counter | |
//! | `tracelight_error_fingerprint_events_total` | counter | `fingerprint`, `target`, `error_type` |
//! | `tracelight_error_fingerprint_suppressed_total` | counter | `fingerprint` |
//! | `tracelight_error_fingerprint_last_seen_timestamp_seconds` | gauge | `fingerprint` |
//! | `tracelight_security_events_total` | counter | `event` |
//! | `tracelight_span_duration_seconds` | histogram | `operation`, `le` |
//! | `tracelight_slow_spans_total` | counter | `operation` |
//! | `tracelight_slow_threshold_seconds` | gauge | `operation` |
//! | `tracelight_sampled_out_total` | counter | |
//! | `tracelight_rate_limited_total` | counter | |
//! | `tracelight_flight_recorder_lines_total` | counter | `outcome` (with the flight recorder on) |
//! | `tracelight_flight_recorder_bytes` | gauge | (with the flight recorder on) |
//! | `tracelight_otel_export_items_total` | counter | `signal`, `outcome` (with an `otel*` feature, once a pipeline is started) |
//!
//! Families with labels appear once there is something to count (a first error, a first span).
//! [`render_metrics`] gives the same text without the router.

mod auth;
mod dashboard;
mod metrics;
mod views;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::state::Handle;
use crate::Error;

pub use auth::{MAX_TOKEN_LEN, MIN_TOKEN_LEN, TOKEN_HEADER};
pub use metrics::{render_metrics, MAX_SERIES, METRICS_CONTENT_TYPE};
pub use views::SLOW_REQUESTS;

/// The default prefix of the JSON endpoints.
///
/// ```
/// assert_eq!(tracelight::admin::DEFAULT_PREFIX, "/admin/logs");
/// ```
pub const DEFAULT_PREFIX: &str = "/admin/logs";

/// The default path of the Prometheus endpoint.
///
/// ```
/// assert_eq!(tracelight::admin::DEFAULT_METRICS_PATH, "/metrics");
/// ```
pub const DEFAULT_METRICS_PATH: &str = "/metrics";

/// Failed attempts a client may make in [`DEFAULT_FAILURE_WINDOW`] before it is throttled.
///
/// ```
/// assert_eq!(tracelight::admin::DEFAULT_MAX_FAILURES, 5);
/// ```
pub const DEFAULT_MAX_FAILURES: u32 = 5;

/// The window over which failed attempts are counted.
///
/// ```
/// assert_eq!(tracelight::admin::DEFAULT_FAILURE_WINDOW.as_secs(), 60);
/// ```
pub const DEFAULT_FAILURE_WINDOW: Duration = Duration::from_secs(60);

type ClientIpFn = Arc<dyn Fn(&Parts) -> Option<IpAddr> + Send + Sync>;

/// Builds the admin [`Router`]: the JSON endpoints and `/metrics`, behind a token (see the
/// [module documentation](self)).
///
/// ```
/// use std::time::Duration;
/// let (layer, _guard) = tracelight::builder().writer(tracelight::sink::MemoryWriter::new()).build()?;
/// let admin: axum::Router = tracelight::admin::AdminRouter::new(layer.handle())
///     .token("0123456789abcdef0123456789abcdef")
///     .prefix("/internal/logs")
///     .metrics_path("/internal/metrics")
///     .throttle(10, Duration::from_secs(300))
///     .build()?;
/// # let _ = admin;
/// # Ok::<(), tracelight::Error>(())
/// ```
#[derive(Clone)]
pub struct AdminRouter {
    handle: Handle,
    tokens: Vec<String>,
    prefix: String,
    metrics_path: Option<String>,
    max_failures: u32,
    window: Duration,
    max_clients: usize,
    client_ip: Option<ClientIpFn>,
    session_ttl: Duration,
    secure_cookie: bool,
}

impl std::fmt::Debug for AdminRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminRouter")
            .field("tokens", &format_args!("[{} hidden]", self.tokens.len()))
            .field("prefix", &self.prefix)
            .field("metrics_path", &self.metrics_path)
            .field("max_failures", &self.max_failures)
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

impl AdminRouter {
    /// An admin router over `handle` (from [`Guard::handle`](crate::Guard::handle),
    /// [`TracelightLayer::handle`](crate::TracelightLayer::handle) or
    /// [`current_handle`](crate::current_handle)), with no token yet: [`build`](Self::build)
    /// refuses to build until one is given.
    ///
    /// ```
    /// let (layer, _guard) = tracelight::builder().writer(tracelight::sink::MemoryWriter::new()).build()?;
    /// let admin = tracelight::admin::AdminRouter::new(layer.handle());
    /// assert!(admin.build().is_err()); // no token
    /// # Ok::<(), tracelight::Error>(())
    /// ```
    pub fn new(handle: Handle) -> AdminRouter {
        AdminRouter {
            handle,
            tokens: Vec::new(),
            prefix: DEFAULT_PREFIX.to_owned(),
            metrics_path: Some(DEFAULT_METRICS_PATH.to_owned()),
            max_failures: DEFAULT_MAX_FAILURES,
            window: DEFAULT_FAILURE_WINDOW,
            max_clients: auth::MAX_CLIENTS,
            client_ip: None,
            session_ttl: dashboard::DEFAULT_SESSION_TTL,
            secure_cookie: false,
        }
    }

    /// How long a dashboard session lasts once signed in (default one hour; at least a minute,
    /// at most a day).
    ///
    /// ```
    /// use std::time::Duration;
    /// # let (layer, _guard) = tracelight::builder().writer(tracelight::sink::MemoryWriter::new()).build()?;
    /// let admin = tracelight::admin::AdminRouter::new(layer.handle())
    ///     .token("0123456789abcdef0123456789abcdef")
    ///     .session_ttl(Duration::from_secs(15 * 60))
    ///     .build()?;
    /// # let _ = admin;
    /// # Ok::<(), tracelight::Error>(())
    /// ```
    pub fn session_ttl(mut self, ttl: Duration) -> AdminRouter {
        self.session_ttl = ttl.clamp(Duration::from_secs(60), Duration::from_secs(86_400));
        self
    }

    /// Marks the dashboard's session cookie `Secure`, so that browsers send it over HTTPS only.
    /// Off by default, since TLS often ends at a proxy in front of the service; turn it on when
    /// browsers reach the dashboard over HTTPS.
    ///
    /// ```
    /// # let (layer, _guard) = tracelight::builder().writer(tracelight::sink::MemoryWriter::new()).build()?;
    /// let admin = tracelight::admin::AdminRouter::new(layer.handle())
    ///     .token("0123456789abcdef0123456789abcdef")
    ///     .secure_cookie(true)
    ///     .build()?;
    /// # let _ = admin;
    /// # Ok::<(), tracelight::Error>(())
    /// ```
    pub fn secure_cookie(mut self, on: bool) -> AdminRouter {
        self.secure_cookie = on;
        self
    }

    /// A token that opens the endpoints: [`MIN_TOKEN_LEN`] to [`MAX_TOKEN_LEN`] visible ASCII
    /// characters (checked by [`build`](Self::build)). Call it again to accept several tokens,
    /// e.g. the old and the new one while rotating.
    ///
    /// ```
    /// # let (layer, _guard) = tracelight::builder().writer(tracelight::sink::MemoryWriter::new()).build()?;
    /// let admin = tracelight::admin::AdminRouter::new(layer.handle())
    ///     .token("old-token-0123456789abcdef")
    ///     .token("new-token-0123456789abcdef")
    ///     .build()?;
    /// # let _ = admin;
    /// # Ok::<(), tracelight::Error>(())
    /// ```
    pub fn token(mut self, token: impl Into<String>) -> AdminRouter {
        self.tokens.push(token.into());
        self
    }

    /// The prefix of the JSON endpoints (default [`DEFAULT_PREFIX`]): `{prefix}/errors`,
    /// `{prefix}/performance`, `{prefix}/security`. Letters, digits and `/._~-` only; `/` or
    /// `""` puts them at the root.
    ///
    /// ```
    /// # let (layer, _guard) = tracelight::builder().writer(tracelight::sink::MemoryWriter::new()).build()?;
    /// let admin = tracelight::admin::AdminRouter::new(layer.handle())
    ///     .token("0123456789abcdef0123456789abcdef")
    ///     .prefix("/ops/logs")
    ///     .build()?;
    /// # let _ = admin;
    /// # Ok::<(), tracelight::Error>(())
    /// ```
    pub fn prefix(mut self, prefix: impl Into<String>) -> AdminRouter {
        self.prefix = prefix.into();
        self
    }

    /// The path of the Prometheus endpoint (default [`DEFAULT_METRICS_PATH`]).
    ///
    /// ```
    /// # let (layer, _guard) = tracelight::builder().writer(tracelight::sink::MemoryWriter::new()).build()?;
    /// let admin = tracelight::admin::AdminRouter::new(layer.handle())
    ///     .token("0123456789abcdef0123456789abcdef")
    ///     .metrics_path("/admin/metrics")
    ///     .build()?;
    /// # let _ = admin;
    /// # Ok::<(), tracelight::Error>(())
    /// ```
    pub fn metrics_path(mut self, path: impl Into<String>) -> AdminRouter {
        self.metrics_path = Some(path.into());
        self
    }

    /// No Prometheus endpoint (when the application serves [`render_metrics`] itself).
    ///
    /// ```
    /// # let (layer, _guard) = tracelight::builder().writer(tracelight::sink::MemoryWriter::new()).build()?;
    /// let admin = tracelight::admin::AdminRouter::new(layer.handle())
    ///     .token("0123456789abcdef0123456789abcdef")
    ///     .without_metrics()
    ///     .build()?;
    /// # let _ = admin;
    /// # Ok::<(), tracelight::Error>(())
    /// ```
    pub fn without_metrics(mut self) -> AdminRouter {
        self.metrics_path = None;
        self
    }

    /// Throttling of failed attempts: after `max_failures` (at least 1) within `window`, a
    /// client's requests answer `429` without being checked until its oldest failure leaves the
    /// window. Default: [`DEFAULT_MAX_FAILURES`] in [`DEFAULT_FAILURE_WINDOW`].
    ///
    /// ```
    /// use std::time::Duration;
    /// # let (layer, _guard) = tracelight::builder().writer(tracelight::sink::MemoryWriter::new()).build()?;
    /// let admin = tracelight::admin::AdminRouter::new(layer.handle())
    ///     .token("0123456789abcdef0123456789abcdef")
    ///     .throttle(3, Duration::from_secs(600))
    ///     .build()?;
    /// # let _ = admin;
    /// # Ok::<(), tracelight::Error>(())
    /// ```
    pub fn throttle(mut self, max_failures: u32, window: Duration) -> AdminRouter {
        self.max_failures = max_failures;
        self.window = window;
        self
    }

    /// How many clients with failed attempts the throttle tracks (default 4096, at least 16;
    /// about 200 bytes each). Past it, a new failing client takes the place of one that is not
    /// locked out (see docs/admin.md, "Throttling").
    ///
    /// ```
    /// # let (layer, _guard) = tracelight::builder().writer(tracelight::sink::MemoryWriter::new()).build()?;
    /// let admin = tracelight::admin::AdminRouter::new(layer.handle())
    ///     .token("0123456789abcdef0123")
    ///     .throttle_clients(65_536);
    /// # let _ = admin;
    /// # Ok::<(), tracelight::Error>(())
    /// ```
    pub fn throttle_clients(mut self, n: usize) -> AdminRouter {
        self.max_clients = n;
        self
    }

    /// How to find the client's address, for throttling and for the security events. Default:
    /// axum's `ConnectInfo<SocketAddr>`, else a [`PeerAddr`](crate::http::PeerAddr) extension.
    /// Behind a reverse proxy, read the address the proxy reports — only from a proxy you trust.
    ///
    /// ```
    /// # let (layer, _guard) = tracelight::builder().writer(tracelight::sink::MemoryWriter::new()).build()?;
    /// let admin = tracelight::admin::AdminRouter::new(layer.handle())
    ///     .token("0123456789abcdef0123456789abcdef")
    ///     .client_ip_with(|parts| {
    ///         parts.headers.get("x-real-ip")?.to_str().ok()?.parse().ok()
    ///     })
    ///     .build()?;
    /// # let _ = admin;
    /// # Ok::<(), tracelight::Error>(())
    /// ```
    pub fn client_ip_with<F>(mut self, f: F) -> AdminRouter
    where
        F: Fn(&Parts) -> Option<IpAddr> + Send + Sync + 'static,
    {
        self.client_ip = Some(Arc::new(f));
        self
    }

    /// Builds the router. Refuses ([`Error::InvalidSetting`]) without a token, with a token that
    /// is empty, shorter than [`MIN_TOKEN_LEN`], longer than [`MAX_TOKEN_LEN`] or not visible
    /// ASCII, and with a prefix or metrics path that is not a plain path or collides with another
    /// endpoint.
    ///
    /// Merge the result into your application's router after `with_state`, or serve it on its
    /// own listener (e.g. one bound to an internal address).
    ///
    /// ```
    /// # let (layer, _guard) = tracelight::builder().writer(tracelight::sink::MemoryWriter::new()).build()?;
    /// use tracelight::admin::AdminRouter;
    /// let refused = AdminRouter::new(layer.handle()).token("short").build();
    /// assert!(matches!(refused, Err(tracelight::Error::InvalidSetting { .. })));
    /// let admin = AdminRouter::new(layer.handle()).token("0123456789abcdef0123456789abcdef").build()?;
    /// # let _ = admin;
    /// # Ok::<(), tracelight::Error>(())
    /// ```
    pub fn build(self) -> Result<Router, Error> {
        if self.tokens.is_empty() {
            return Err(Error::InvalidSetting {
                setting: "admin token".to_owned(),
                reason: "no token given: the admin endpoints are not served without one (call \
                         AdminRouter::token)"
                    .to_owned(),
            });
        }
        let secrets = self
            .tokens
            .iter()
            .map(|t| auth::Secret::new(t))
            .collect::<Result<Vec<_>, _>>()?;
        let prefix = check_path("admin prefix", &self.prefix, true)?;
        let endpoints = [
            format!("{prefix}/errors"),
            format!("{prefix}/performance"),
            format!("{prefix}/security"),
            format!("{prefix}/log-level"),
            format!("{prefix}/stats"),
            format!("{prefix}/dashboard"),
            format!("{prefix}/dashboard/login"),
            format!("{prefix}/dashboard/logout"),
        ];
        let metrics_path = match &self.metrics_path {
            Some(p) => {
                let p = check_path("admin metrics path", p, false)?;
                if endpoints.contains(&p) {
                    return Err(Error::InvalidSetting {
                        setting: "admin metrics path".to_owned(),
                        reason: format!("{p} is also a JSON endpoint"),
                    });
                }
                Some(p)
            }
            None => None,
        };
        let state = Arc::new(AdminState {
            handle: self.handle,
            secrets,
            throttle: auth::Throttle::new(self.max_failures, self.window)
                .with_max_clients(self.max_clients),
            client_ip: self.client_ip,
            sessions: dashboard::Sessions::new(self.session_ttl, self.secure_cookie, &prefix),
            dashboard_path: endpoints[5].clone(),
        });
        let [errors_path, performance_path, security_path, level_path, stats_path, dashboard_path, login_path, logout_path] =
            endpoints;
        let mut router = Router::new()
            .route(&errors_path, get(errors))
            .route(&performance_path, get(performance))
            .route(&security_path, get(security))
            .route(&level_path, get(log_level).put(set_log_level))
            .route(&stats_path, get(stats));
        if let Some(p) = metrics_path {
            router = router.route(&p, get(metrics));
        }
        // The page and its sign-in and sign-out answer without a token: they ask for one.
        Ok(router
            .route_layer(axum::middleware::from_fn_with_state(
                Arc::clone(&state),
                authorize,
            ))
            .route(&dashboard_path, get(dashboard_page))
            .route(&login_path, axum::routing::post(login))
            .route(&logout_path, axum::routing::post(logout))
            .with_state(state))
    }
}

/// A path of plain characters starting with `/` (the prefix: also `""` or `/`, for the root),
/// without a trailing `/` or an empty segment.
fn check_path(setting: &str, path: &str, prefix: bool) -> Result<String, Error> {
    let refuse = |reason: &str| Error::InvalidSetting {
        setting: setting.to_owned(),
        reason: format!("{path:?}: {reason}"),
    };
    let path = if prefix {
        path.strip_suffix('/').unwrap_or(path)
    } else {
        path
    };
    if path.is_empty() {
        return if prefix {
            Ok(String::new())
        } else {
            Err(refuse("empty"))
        };
    }
    if !path.starts_with('/') {
        return Err(refuse("must start with '/'"));
    }
    if path.len() > 1 && path.ends_with('/') {
        return Err(refuse("must not end with '/'"));
    }
    if path.contains("//") {
        return Err(refuse("has an empty segment"));
    }
    if !path
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/._~-".contains(&b))
    {
        return Err(refuse(
            "only letters, digits and '/', '.', '_', '~', '-' are accepted",
        ));
    }
    Ok(path.to_owned())
}

struct AdminState {
    handle: Handle,
    secrets: Vec<auth::Secret>,
    throttle: auth::Throttle,
    client_ip: Option<ClientIpFn>,
    sessions: dashboard::Sessions,
    /// `{prefix}/dashboard`, where signing in and out leads.
    dashboard_path: String,
}

impl AdminState {
    fn client_ip(&self, parts: &Parts) -> Option<IpAddr> {
        if let Some(f) = &self.client_ip {
            return f(parts);
        }
        if let Some(ConnectInfo(addr)) = parts.extensions.get::<ConnectInfo<SocketAddr>>() {
            return Some(addr.ip());
        }
        parts
            .extensions
            .get::<crate::http::PeerAddr>()
            .map(|p| p.0.ip())
    }
}

/// Checks the token (unless the client is throttled) and logs the attempt.
async fn authorize(State(state): State<Arc<AdminState>>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let ip = state.client_ip(&parts);
    let client = auth::ClientKey::of(ip);
    let now = Instant::now();
    let path = parts.uri.path();
    // A dashboard session: its sign-in was the security event; its polling is not logged, nor
    // given an access line by a `RequestLayer` around this router. A request that changes
    // something must carry the session's CSRF token (and keeps its access line).
    if let Some(session) = state.sessions.check(&parts.headers, now) {
        let safe = matches!(
            parts.method,
            axum::http::Method::GET | axum::http::Method::HEAD
        );
        if safe {
            let mut response = next.run(Request::from_parts(parts, body)).await;
            response.extensions_mut().insert(crate::http::QuietAccess);
            return response;
        }
        if dashboard::csrf_matches(&session, &parts.headers) {
            return next.run(Request::from_parts(parts, body)).await;
        }
        crate::security_event!(
            "admin_csrf_rejected",
            "high",
            client_ip = ip.map(tracing::field::display),
            path,
            method = parts.method.as_str(),
            "admin request from a dashboard session without its CSRF token"
        );
        return (
            StatusCode::FORBIDDEN,
            [
                (CONTENT_TYPE, "application/json"),
                (CACHE_CONTROL, "no-store"),
            ],
            "{\"error\":\"missing or wrong CSRF token\"}\n",
        )
            .into_response();
    }
    let throttle = |blocked: auth::Blocked| {
        if blocked.first {
            crate::security_event!(
                "admin_auth_throttled",
                "high",
                client_ip = ip.map(tracing::field::display),
                path,
                max_failures = state.throttle.max_failures,
                window_s = state.throttle.window.as_secs(),
                retry_after_s = blocked.retry_after,
                "admin authentication throttled: too many failed attempts"
            );
        }
        throttled(blocked.retry_after)
    };
    // A locked-out client is answered without its token being looked at.
    if let Some(blocked) = state.throttle.blocked(client, now) {
        return throttle(blocked);
    }
    let given = auth::presented(&parts.headers);
    // A dashboard whose session ended (it timed out, was signed out elsewhere, or the service
    // restarted) asks again: a 401 that is not a failed attempt (a session id cannot be guessed),
    // so that its next refresh does not lock its own client out.
    if given.is_none() && dashboard::has_session_cookie(&parts.headers) {
        return unauthorized();
    }
    let ok = given.is_some_and(|t| auth::any_matches(&state.secrets, t));
    match state.throttle.settle(client, now, ok) {
        auth::Outcome::Blocked(blocked) => throttle(blocked),
        auth::Outcome::Allowed => {
            crate::security_event!(
                "admin_access",
                "low",
                client_ip = ip.map(tracing::field::display),
                path,
                "admin endpoint accessed"
            );
            next.run(Request::from_parts(parts, body)).await
        }
        auth::Outcome::Refused => {
            auth_failed(ip, path, given.is_none());
            unauthorized()
        }
    }
}

/// The security event of a failed attempt (the token sent is never in it).
fn auth_failed(ip: Option<IpAddr>, path: &str, missing: bool) {
    let reason = if missing {
        "missing_token"
    } else {
        "wrong_token"
    };
    crate::security_event!(
        "admin_auth_failed",
        "high",
        client_ip = ip.map(tracing::field::display),
        path,
        reason,
        "admin authentication failed"
    );
}

/// The one answer to every failed attempt, whatever the reason.
fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [
            (WWW_AUTHENTICATE, "Bearer realm=\"tracelight-admin\""),
            (CONTENT_TYPE, "application/json"),
            (CACHE_CONTROL, "no-store"),
        ],
        "{\"error\":\"unauthorized\"}\n",
    )
        .into_response()
}

fn throttled(retry_after: u64) -> Response {
    (
        StatusCode::TOO_MANY_REQUESTS,
        [
            (RETRY_AFTER, retry_after.to_string()),
            (CONTENT_TYPE, "application/json".to_owned()),
            (CACHE_CONTROL, "no-store".to_owned()),
        ],
        "{\"error\":\"too many failed attempts\"}\n",
    )
        .into_response()
}

fn json<T: serde::Serialize>(value: &T) -> Response {
    match serde_json::to_vec_pretty(value) {
        Ok(mut body) => {
            body.push(b'\n');
            (
                [
                    (CONTENT_TYPE, "application/json"),
                    (CACHE_CONTROL, "no-store"),
                ],
                body,
            )
                .into_response()
        }
        Err(e) => {
            tracing::error!(target: "tracelight::admin", error = %e, "could not render an admin response");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

async fn errors(State(state): State<Arc<AdminState>>, Query(page): Query<views::Page>) -> Response {
    json(&views::Errors::new(state.handle.errors(), page))
}

async fn performance(
    State(state): State<Arc<AdminState>>,
    Query(page): Query<views::Page>,
) -> Response {
    json(&views::Performance::new(state.handle.performance(), page))
}

async fn security(
    State(state): State<Arc<AdminState>>,
    Query(page): Query<views::Page>,
) -> Response {
    json(&views::Security::new(state.handle.security(), page))
}

async fn log_level(State(state): State<Arc<AdminState>>) -> Response {
    json(&views::LogLevel::new(state.handle.filter().state()))
}

/// `PUT …/log-level` with `{"filter": "info,my_crate=debug", "for": "10m"}` (`for` optional), or
/// `{"reset": true}`.
async fn set_log_level(
    State(state): State<Arc<AdminState>>,
    parts_ip: ClientIp,
    body: axum::body::Bytes,
) -> Response {
    let bad = |reason: String| {
        (
            StatusCode::BAD_REQUEST,
            [
                (CONTENT_TYPE, "application/json"),
                (CACHE_CONTROL, "no-store"),
            ],
            format!("{}\n", serde_json::json!({ "error": reason })),
        )
            .into_response()
    };
    let request: views::SetLogLevel = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return bad(format!(
                "expected {{\"filter\": \"info,my_crate=debug\", \"for\": \"10m\"}} or {{\"reset\": true}}: {e}"
            ))
        }
    };
    let filter = state.handle.filter();
    let from = filter.directives();
    let duration = match request.duration() {
        Ok(d) => d,
        Err(reason) => return bad(reason),
    };
    let outcome = match (&request.filter, request.reset) {
        (None, true) => {
            filter.reset();
            Ok(())
        }
        (Some(f), false) => match duration {
            Some(d) => filter.set_for(f, d),
            None => filter.set(f),
        },
        _ => return bad("give either \"filter\" or \"reset\": true".to_owned()),
    };
    if let Err(e) = outcome {
        return bad(e.to_string());
    }
    let to = filter.directives();
    crate::security_event!(
        "log_level_changed",
        "medium",
        client_ip = parts_ip.0.map(tracing::field::display),
        from = from.as_str(),
        to = to.as_str(),
        for_s = duration.map(|d| d.as_secs()),
        "log filter changed"
    );
    json(&views::LogLevel::new(filter.state()))
}

/// The client's address as the admin router reads it (its `client_ip_with`, the peer address).
struct ClientIp(Option<IpAddr>);

impl axum::extract::FromRequestParts<Arc<AdminState>> for ClientIp {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AdminState>,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(state.client_ip(parts)))
    }
}

async fn stats(State(state): State<Arc<AdminState>>) -> Response {
    json(&views::Stats::new(&state.handle))
}

/// `GET {prefix}/dashboard`: the page for a signed-in browser, the sign-in form otherwise.
async fn dashboard_page(
    State(state): State<Arc<AdminState>>,
    headers: axum::http::HeaderMap,
) -> Response {
    match state.sessions.check(&headers, Instant::now()) {
        Some(session) => {
            dashboard::dashboard_page(state.handle.service(), &state.dashboard_path, &session.csrf)
        }
        None => dashboard::login_page(
            StatusCode::OK,
            state.handle.service(),
            &state.dashboard_path,
            None,
        ),
    }
}

/// `POST {prefix}/dashboard/login` with `token=…`: a session cookie for the right token, the
/// form again (401) for a wrong one; throttled and logged as every attempt is.
async fn login(
    State(state): State<Arc<AdminState>>,
    ip: ClientIp,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let ip = ip.0;
    // Another site's page may not post the form (and lock its victim out with wrong tokens).
    if dashboard::cross_site(&headers) {
        crate::security_event!(
            "admin_csrf_rejected",
            "high",
            client_ip = ip.map(tracing::field::display),
            path = uri.path(),
            method = "POST",
            "admin sign-in posted from another site"
        );
        return (StatusCode::FORBIDDEN, "sign-in from another site refused\n").into_response();
    }
    let client = auth::ClientKey::of(ip);
    let now = Instant::now();
    let path = uri.path();
    let service = state.handle.service();
    let throttled_page = |blocked: auth::Blocked| {
        if blocked.first {
            crate::security_event!(
                "admin_auth_throttled",
                "high",
                client_ip = ip.map(tracing::field::display),
                path,
                max_failures = state.throttle.max_failures,
                window_s = state.throttle.window.as_secs(),
                retry_after_s = blocked.retry_after,
                "admin authentication throttled: too many failed attempts"
            );
        }
        let text = format!(
            "Too many failed attempts: try again in {} s.",
            blocked.retry_after
        );
        let mut page = dashboard::login_page(
            StatusCode::TOO_MANY_REQUESTS,
            service,
            &state.dashboard_path,
            Some(&text),
        );
        page.headers_mut()
            .insert(RETRY_AFTER, http::HeaderValue::from(blocked.retry_after));
        page
    };
    if let Some(blocked) = state.throttle.blocked(client, now) {
        return throttled_page(blocked);
    }
    let given = dashboard::form_token(&body);
    let ok = given
        .as_deref()
        .is_some_and(|t| auth::any_matches(&state.secrets, t.as_bytes()));
    match state.throttle.settle(client, now, ok) {
        auth::Outcome::Blocked(blocked) => throttled_page(blocked),
        auth::Outcome::Allowed => {
            let Some((id, _csrf)) = state.sessions.open(now) else {
                tracing::error!(target: "tracelight::admin", "no randomness for a session id");
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            };
            crate::security_event!(
                "admin_login",
                "low",
                client_ip = ip.map(tracing::field::display),
                path,
                "admin dashboard signed in"
            );
            dashboard::redirect(&state.dashboard_path, Some(state.sessions.cookie(&id)))
        }
        auth::Outcome::Refused => {
            auth_failed(ip, path, given.is_none());
            dashboard::login_page(
                StatusCode::UNAUTHORIZED,
                service,
                &state.dashboard_path,
                Some("Wrong token."),
            )
        }
    }
}

/// `POST {prefix}/dashboard/logout` with the session's `csrf`: ends the session.
async fn logout(
    State(state): State<Arc<AdminState>>,
    ip: ClientIp,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Some(session) = state.sessions.check(&headers, Instant::now()) {
        let csrf = form_urlencoded::parse(&body)
            .find(|(k, _)| k == "csrf")
            .map(|(_, v)| v.into_owned());
        let mut with_header = headers.clone();
        if let Some(v) = csrf.and_then(|c| axum::http::HeaderValue::from_str(&c).ok()) {
            with_header.insert("x-csrf-token", v);
        }
        if dashboard::csrf_matches(&session, &with_header) {
            state.sessions.close(&headers);
            crate::security_event!(
                "admin_logout",
                "low",
                client_ip = ip.0.map(tracing::field::display),
                "admin dashboard signed out"
            );
            return dashboard::redirect(
                &state.dashboard_path,
                Some(state.sessions.cleared_cookie()),
            );
        }
        // Without the session's CSRF token (another site's form), nothing changes.
        return dashboard::redirect(&state.dashboard_path, None);
    }
    dashboard::redirect(&state.dashboard_path, Some(state.sessions.cleared_cookie()))
}

async fn metrics(State(state): State<Arc<AdminState>>) -> Response {
    (
        [
            (CONTENT_TYPE, METRICS_CONTENT_TYPE),
            (CACHE_CONTROL, "no-store"),
        ],
        render_metrics(&state.handle),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_checked() {
        assert_eq!(check_path("p", "/admin/logs", true).unwrap(), "/admin/logs");
        assert_eq!(
            check_path("p", "/admin/logs/", true).unwrap(),
            "/admin/logs"
        );
        assert_eq!(check_path("p", "/", true).unwrap(), "");
        assert_eq!(check_path("p", "", true).unwrap(), "");
        assert_eq!(check_path("p", "/metrics", false).unwrap(), "/metrics");
        for bad in ["admin", "/a//b", "/{x}", "/a b", "/*rest", "/a/:id", "/é"] {
            assert!(check_path("p", bad, true).is_err(), "{bad}");
            assert!(check_path("p", bad, false).is_err(), "{bad}");
        }
        assert!(check_path("p", "", false).is_err());
        assert!(check_path("p", "/metrics/", false).is_err());
    }
}
