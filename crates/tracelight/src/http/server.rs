//! Server side: the request id, the request span and the access log.

use std::fmt;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context as TaskContext, Poll};
use std::time::Instant;

use ::http::request::Parts;
use ::http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Uri};
use bytes::Buf as _;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;
use tracing::{Level, Span};

use super::client_ip::{client_ip, IpRange};
use super::request_id::{InvalidRequestId, RequestId};
use super::X_REQUEST_ID;

/// Longest path written to the request span and the access line, in bytes; longer paths are cut
/// (at a character boundary) and end with `…`.
const MAX_PATH_LEN: usize = 1024;
/// Longest user agent written to the access line, in bytes.
const MAX_USER_AGENT_LEN: usize = 256;

/// The connection's peer address, for servers other than axum: insert it in the request's
/// extensions (in hyper, in the per-connection service) and [`RequestLayer`] reads it.
///
/// ```
/// use std::net::SocketAddr;
/// let peer: SocketAddr = "192.0.2.7:50123".parse().unwrap();
/// let mut req = http::Request::new(());
/// req.extensions_mut().insert(tracelight::http::PeerAddr(peer));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PeerAddr(pub SocketAddr);

type RouteFn = dyn Fn(&Parts) -> Option<String> + Send + Sync;
type PeerFn = dyn Fn(&Parts) -> Option<IpAddr> + Send + Sync;

#[derive(Clone)]
struct Config {
    header: HeaderName,
    accept_incoming: bool,
    echo: bool,
    access_log: bool,
    span_level: Level,
    trusted_proxies: Vec<IpRange>,
    route: Option<Arc<RouteFn>>,
    peer: Option<Arc<PeerFn>>,
    /// Rejected request ids per client: at most [`REJECTIONS_PER_MINUTE`] written a minute.
    rejections: Arc<crate::bound::PerClient>,
}

/// How many `request_id_rejected` events a client gets written a minute; the rest are counted,
/// and the count is written with the client's next one after its minute.
pub(crate) const REJECTIONS_PER_MINUTE: u32 = 10;

impl Default for Config {
    fn default() -> Self {
        Config {
            header: X_REQUEST_ID,
            accept_incoming: true,
            echo: true,
            access_log: true,
            span_level: Level::INFO,
            trusted_proxies: Vec::new(),
            route: None,
            peer: None,
            rejections: Arc::new(crate::bound::PerClient::new(
                REJECTIONS_PER_MINUTE,
                std::time::Duration::from_secs(60),
            )),
        }
    }
}

impl Config {
    /// The request's id, and why the incoming one was refused if it was.
    fn request_id(&self, headers: &HeaderMap) -> (RequestId, Option<InvalidRequestId>) {
        if !self.accept_incoming {
            return (RequestId::generate(), None);
        }
        match headers.get(&self.header).map(RequestId::from_header) {
            Some(Ok(id)) => (id, None),
            Some(Err(e)) => (RequestId::generate(), Some(e)),
            None => (RequestId::generate(), None),
        }
    }

    fn route(&self, parts: &Parts) -> Option<String> {
        if let Some(f) = &self.route {
            return f(parts);
        }
        #[cfg(feature = "axum")]
        if let Some(m) = parts.extensions.get::<axum::extract::MatchedPath>() {
            return Some(m.as_str().to_owned());
        }
        None
    }

    fn peer(&self, parts: &Parts) -> Option<IpAddr> {
        if let Some(f) = &self.peer {
            return f(parts);
        }
        if let Some(PeerAddr(addr)) = parts.extensions.get::<PeerAddr>() {
            return Some(addr.ip());
        }
        #[cfg(feature = "axum")]
        if let Some(axum::extract::ConnectInfo(addr)) = parts
            .extensions
            .get::<axum::extract::ConnectInfo<SocketAddr>>()
        {
            return Some(addr.ip());
        }
        None
    }
}

/// The server middleware: request id in and out, the `request` span around the inner service,
/// and one access line per request. See the [module docs](super) for what it writes.
///
/// ```
/// use std::convert::Infallible;
/// use tower::{Layer, ServiceExt};
/// use tracelight::http::{RequestId, RequestLayer};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let logs = tracelight::sink::MemoryWriter::new();
/// let _g = tracelight::builder().format(tracelight::Format::Json).writer(logs.clone()).init_local().unwrap();
///
/// let handler = tower::service_fn(|req: http::Request<String>| async move {
///     tracing::info!("handling"); // carries "request_id":"abc-1"
///     let id = req.extensions().get::<RequestId>().cloned();
///     Ok::<_, Infallible>(http::Response::new(format!("{id:?}")))
/// });
/// let svc = RequestLayer::new().layer(handler);
/// let req = http::Request::builder().uri("/hello").header("x-request-id", "abc-1").body(String::new()).unwrap();
/// let resp = svc.oneshot(req).await.unwrap();
/// assert_eq!(resp.headers()["x-request-id"], "abc-1");
/// drop(resp); // the access line is written when the body is done
///
/// assert!(logs.lines().iter().all(|l| l.contains(r#""request_id":"abc-1""#)));
/// assert!(logs.contents().contains(r#""message":"request completed""#));
/// # }
/// ```
#[derive(Clone, Default)]
pub struct RequestLayer {
    config: Arc<Config>,
}

impl fmt::Debug for RequestLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.config;
        f.debug_struct("RequestLayer")
            .field("header", &c.header)
            .field("accept_incoming", &c.accept_incoming)
            .field("echo", &c.echo)
            .field("access_log", &c.access_log)
            .field("span_level", &c.span_level)
            .field("trusted_proxies", &c.trusted_proxies)
            .field("route", &c.route.as_ref().map(|_| ".."))
            .field("peer", &c.peer.as_ref().map(|_| ".."))
            .finish()
    }
}

impl RequestLayer {
    /// The defaults: `x-request-id`, incoming ids accepted when valid, the id echoed on the
    /// response, the access log on, the span at INFO, no trusted proxy.
    ///
    /// ```
    /// let _layer = tracelight::http::RequestLayer::new();
    /// ```
    pub fn new() -> RequestLayer {
        RequestLayer::default()
    }

    fn with(mut self, f: impl FnOnce(&mut Config)) -> RequestLayer {
        f(Arc::make_mut(&mut self.config));
        self
    }

    /// How many `request_id_rejected` security events a client gets written a minute (default
    /// 10, at least 1); the rest are counted, and the count is written once its minute is over.
    ///
    /// ```
    /// let layer = tracelight::http::RequestLayer::new().rejection_limit(100);
    /// # let _ = layer;
    /// ```
    pub fn rejection_limit(self, per_minute: u32) -> RequestLayer {
        self.with(|c| {
            c.rejections = Arc::new(crate::bound::PerClient::new(
                per_minute,
                std::time::Duration::from_secs(60),
            ));
        })
    }

    /// The request id header, read on requests and written on responses (default
    /// `x-request-id`).
    ///
    /// ```
    /// let _layer = tracelight::http::RequestLayer::new()
    ///     .header(http::HeaderName::from_static("x-correlation-id"));
    /// ```
    pub fn header(self, name: HeaderName) -> RequestLayer {
        self.with(|c| c.header = name)
    }

    /// Whether a valid incoming id is used (default `true`). Turn it off at an edge that must not
    /// trust its clients: every request then gets a new id.
    ///
    /// ```
    /// let _edge = tracelight::http::RequestLayer::new().accept_incoming(false);
    /// ```
    pub fn accept_incoming(self, on: bool) -> RequestLayer {
        self.with(|c| c.accept_incoming = on)
    }

    /// Whether the id is written on the response when the service did not set the header itself
    /// (default `true`).
    ///
    /// ```
    /// let _layer = tracelight::http::RequestLayer::new().echo(false);
    /// ```
    pub fn echo(self, on: bool) -> RequestLayer {
        self.with(|c| c.echo = on)
    }

    /// Whether the access line is written (default `true`).
    ///
    /// ```
    /// let _layer = tracelight::http::RequestLayer::new().access_log(false);
    /// ```
    pub fn access_log(self, on: bool) -> RequestLayer {
        self.with(|c| c.access_log = on)
    }

    /// The level of the `request` span (default INFO). The span carries the request id to every
    /// line inside it, so it must be enabled: with a filter above INFO (`warn`), either enable
    /// `tracelight::http=info` or raise this level.
    ///
    /// ```
    /// let _layer = tracelight::http::RequestLayer::new().span_level(tracing::Level::WARN);
    /// ```
    pub fn span_level(self, level: Level) -> RequestLayer {
        self.with(|c| c.span_level = level)
    }

    /// Proxies whose `X-Forwarded-For` is believed. When the connection's peer is one of them, the
    /// client IP is the right-most address in `X-Forwarded-For` that is not a trusted proxy;
    /// otherwise the header is ignored (anyone can send it).
    ///
    /// ```
    /// use tracelight::http::{IpRange, RequestLayer};
    /// let layer = RequestLayer::new().trusted_proxies([
    ///     "10.0.0.0/8".parse::<IpRange>()?,
    ///     "127.0.0.1".parse()?,
    /// ]);
    /// # let _ = layer;
    /// # Ok::<(), tracelight::http::InvalidIpRange>(())
    /// ```
    pub fn trusted_proxies(self, proxies: impl IntoIterator<Item = IpRange>) -> RequestLayer {
        let proxies: Vec<IpRange> = proxies.into_iter().collect();
        self.with(|c| c.trusted_proxies = proxies)
    }

    /// How to find the route (the path template, `/users/{id}`) of a request. Default: axum's
    /// `MatchedPath` with the `axum` feature, none otherwise.
    ///
    /// ```
    /// // gRPC (tonic): the path is the method, a fixed set: use it as the route.
    /// let _layer = tracelight::http::RequestLayer::new()
    ///     .route_with(|parts| Some(parts.uri.path().to_owned()));
    /// ```
    pub fn route_with<F>(self, f: F) -> RequestLayer
    where
        F: Fn(&Parts) -> Option<String> + Send + Sync + 'static,
    {
        self.with(|c| c.route = Some(Arc::new(f)))
    }

    /// How to find the connection's peer address. Default: a [`PeerAddr`] extension, then (with
    /// the `axum` feature) axum's `ConnectInfo<SocketAddr>`.
    ///
    /// ```
    /// use std::net::SocketAddr;
    /// #[derive(Clone)]
    /// struct MyPeer(SocketAddr);
    /// let _layer = tracelight::http::RequestLayer::new()
    ///     .peer_addr_with(|parts| parts.extensions.get::<MyPeer>().map(|p| p.0.ip()));
    /// ```
    pub fn peer_addr_with<F>(self, f: F) -> RequestLayer
    where
        F: Fn(&Parts) -> Option<IpAddr> + Send + Sync + 'static,
    {
        self.with(|c| c.peer = Some(Arc::new(f)))
    }
}

impl<S> Layer<S> for RequestLayer {
    type Service = RequestService<S>;
    fn layer(&self, inner: S) -> RequestService<S> {
        RequestService {
            inner,
            config: Arc::clone(&self.config),
        }
    }
}

/// The service of [`RequestLayer`].
///
/// ```
/// use tower::Layer;
/// let svc = tracelight::http::RequestLayer::new().layer(tower::service_fn(|_: http::Request<String>| async {
///     Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
/// }));
/// # let _ = svc;
/// ```
#[derive(Clone)]
pub struct RequestService<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S: fmt::Debug> fmt::Debug for RequestService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestService")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

macro_rules! request_span {
    ($level:expr, $($fields:tt)*) => {{
        let level = $level;
        if level == Level::ERROR {
            tracing::span!(target: "tracelight::http", Level::ERROR, "request", $($fields)*)
        } else if level == Level::WARN {
            tracing::span!(target: "tracelight::http", Level::WARN, "request", $($fields)*)
        } else if level == Level::INFO {
            tracing::span!(target: "tracelight::http", Level::INFO, "request", $($fields)*)
        } else if level == Level::DEBUG {
            tracing::span!(target: "tracelight::http", Level::DEBUG, "request", $($fields)*)
        } else {
            tracing::span!(target: "tracelight::http", Level::TRACE, "request", $($fields)*)
        }
    }};
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RequestService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Error: fmt::Display,
    ReqBody: Body,
    ResBody: Body,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> ResponseFuture<S::Future> {
        let start = Instant::now();
        let config = &*self.config;
        let (mut parts, body) = req.into_parts();
        let (id, rejected) = config.request_id(&parts.headers);
        let route = config.route(&parts);
        let path = crate::bound::truncated(parts.uri.path(), MAX_PATH_LEN);
        // OpenTelemetry names a server span `{method} {route}` (the path when there is no route)
        // and marks it SERVER; `otel.*` fields are directives for the exporter, never written in
        // lines.
        let otel_name = format!(
            "{} {}",
            parts.method.as_str(),
            route.as_deref().unwrap_or(&path)
        );
        let span = request_span!(
            config.span_level,
            request_id = id.as_str(),
            method = parts.method.as_str(),
            path = &*path,
            route = route.as_deref(),
            otel.kind = "server",
            otel.name = otel_name.as_str()
        );
        // Continue the caller's trace (W3C `traceparent`), before anything enters the span.
        #[cfg(feature = "otel-core")]
        crate::otel::propagation::extract_into(&span, &parts.headers);
        if let Some(err) = rejected {
            let client = client_ip(config.peer(&parts), &parts.headers, &config.trusted_proxies);
            let verdict = config.rejections.check(client, start);
            // Counts of earlier windows belong to no request of theirs: said outside this one.
            for (ip, n) in &verdict.counted {
                rejections_counted(*ip, *n);
            }
            if verdict.write {
                span.in_scope(|| security_event(&config.header, &err, client));
            }
        }
        let access = config.access_log.then(|| {
            let peer = config.peer(&parts);
            Box::new(Access {
                start,
                method: parts.method.clone(),
                uri: parts.uri.clone(),
                route,
                request_bytes: content_length(&parts.headers).or_else(|| body.size_hint().exact()),
                client_ip: client_ip(peer, &parts.headers, &config.trusted_proxies),
                user_agent: parts.headers.get(::http::header::USER_AGENT).cloned(),
                status: StatusCode::OK,
                bodyless: false,
                response_bytes: 0,
            })
        });
        parts.extensions.insert(id.clone());
        let future = {
            let _e = span.enter();
            self.inner.call(Request::from_parts(parts, body))
        };
        ResponseFuture {
            inner: future,
            span,
            config: Arc::clone(&self.config),
            id: Some(id),
            access,
        }
    }
}

fn security_event(header: &HeaderName, err: &InvalidRequestId, client: Option<IpAddr>) {
    // A malformed id is a mistake or a probe: medium, a WARN line.
    crate::security_event!(
        "request_id_rejected",
        "medium",
        client_ip = client.map(tracing::field::display),
        reason = err.reason().as_str(),
        header = header.as_str(),
        length = err.len() as u64,
        prefix = err.prefix(),
        "rejected the incoming request id ({}): a new one was generated",
        err.reason()
    );
}

/// The summary of a client's rejected request ids that were counted, not written.
fn rejections_counted(client: Option<IpAddr>, n: u64) {
    crate::security_event!(
        "request_id_rejected",
        "medium",
        client_ip = client.map(tracing::field::display),
        suppressed = n,
        "{n} more rejected request ids from this client were counted, not written (at most {REJECTIONS_PER_MINUTE} a minute per client)"
    );
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(::http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// A response extension that asks [`RequestService`] for no access line unless the response
/// is a server error: the admin router sets it on a signed-in dashboard's own polling, which
/// would otherwise write a line every few seconds.
#[cfg(feature = "admin")]
#[derive(Debug, Clone, Copy)]
pub(crate) struct QuietAccess;

/// Whether the response asked for no access line ([`QuietAccess`]).
fn quiet(parts: &mut ::http::response::Parts) -> bool {
    #[cfg(feature = "admin")]
    if parts.extensions.remove::<QuietAccess>().is_some() {
        return !parts.status.is_server_error();
    }
    let _ = parts;
    false
}

/// What the access line needs, gathered when the request arrives.
struct Access {
    start: Instant,
    method: Method,
    uri: Uri,
    route: Option<String>,
    request_bytes: Option<u64>,
    client_ip: Option<IpAddr>,
    user_agent: Option<HeaderValue>,
    status: StatusCode,
    /// A response that has no body on the wire (HEAD, 1xx, 204, 304, an empty body): complete
    /// without a frame.
    bodyless: bool,
    response_bytes: u64,
}

/// How a request ended.
enum End<'a> {
    /// The whole response was handed to the server.
    Completed,
    /// The client went away (the future or the body was dropped before the end).
    Cancelled,
    /// The service returned an error, or the body failed.
    Failed(&'a dyn fmt::Display),
}

macro_rules! access_event {
    ($level:expr, $a:expr, $status:expr, $path:expr, $ua:expr, $cancelled:expr, $error:expr) => {
        tracing::event!(
            target: "tracelight::access",
            $level,
            stream = "access",
            method = $a.method.as_str(),
            path = &*$path,
            route = $a.route.as_deref(),
            status = $status,
            // Whole microseconds: `0.25`, not `0.25000000000000006`.
            duration_ms = $a.start.elapsed().as_micros() as f64 / 1000.0,
            request_bytes = $a.request_bytes,
            response_bytes = $a.response_bytes,
            client_ip = $a.client_ip.map(tracing::field::display),
            user_agent = $ua,
            cancelled = $cancelled,
            error = $error,
            "request completed"
        )
    };
}

impl Access {
    /// Writes the access line with the response's status (inside the request span: the caller
    /// enters it).
    fn emit(&self, end: End<'_>) {
        self.emit_status(self.status.as_u16(), end);
    }

    fn emit_status(&self, status: u16, end: End<'_>) {
        let path = crate::bound::truncated(self.uri.path(), MAX_PATH_LEN);
        let ua = self.user_agent.as_ref().map(|v| {
            let bytes = v.as_bytes();
            String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_USER_AGENT_LEN)])
        });
        let ua = ua.as_deref();
        let cancelled = matches!(end, Cancelled).then_some(true);
        let error = match end {
            Failed(e) => Some(tracing::field::display(e)),
            _ => None,
        };
        // No `file`/`line` (they would be this file's): the `route` says which handler it was.
        crate::event::reporting_at((None, None), || {
            if status >= 500 {
                access_event!(Level::WARN, self, status, path, ua, cancelled, error);
            } else {
                access_event!(Level::INFO, self, status, path, ua, cancelled, error);
            }
        });
    }

    /// The access line of a request that got no response: 499 (as nginx logs a client that
    /// closed the connection) when cancelled, 500 when the service failed.
    fn emit_unanswered(&self, end: End<'_>) {
        let status = match end {
            Cancelled => 499,
            _ => 500,
        };
        self.emit_status(status, end);
    }
}

use End::{Cancelled, Failed};

pin_project! {
    /// The future of [`RequestService`]: runs the inner future inside the request span, echoes
    /// the id, and wraps the body in a [`ResponseBody`]. Dropped before the response (the client
    /// went away), it writes the access line with status 499 and `cancelled: true`; dropped by
    /// a panic unwinding through the handler, with status 500 and `error: "the handler panicked"`.
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        span: Span,
        config: Arc<Config>,
        id: Option<RequestId>,
        access: Option<Box<Access>>,
    }

    impl<F> PinnedDrop for ResponseFuture<F> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let Some(access) = this.access.take() {
                // Dropped by a panic unwinding through the handler: the service failed (500),
                // the client did not go away.
                let end = if std::thread::panicking() {
                    Failed(&"the handler panicked")
                } else {
                    Cancelled
                };
                this.span.in_scope(|| access.emit_unanswered(end));
            }
        }
    }
}

impl<F: fmt::Debug> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("inner", &self.inner)
            .field("request_id", &self.id)
            .finish_non_exhaustive()
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    E: fmt::Display,
    B: Body,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = {
            let _e = this.span.enter();
            ready!(this.inner.poll(cx))
        };
        let access = this.access.take();
        match result {
            Ok(resp) => {
                let (mut parts, body) = resp.into_parts();
                if let Some(id) = this.id.take() {
                    if this.config.echo && !parts.headers.contains_key(&this.config.header) {
                        parts.headers.insert(this.config.header.clone(), id.into());
                    }
                }
                let access = access.filter(|_| !quiet(&mut parts)).map(|mut a| {
                    a.status = parts.status;
                    a.bodyless = a.method == Method::HEAD
                        || parts.status.is_informational()
                        || parts.status == StatusCode::NO_CONTENT
                        || parts.status == StatusCode::NOT_MODIFIED
                        // An empty body is never polled: it is over already.
                        || body.is_end_stream();
                    a
                });
                let body = ResponseBody {
                    inner: body,
                    span: this.span.clone(),
                    access,
                };
                Poll::Ready(Ok(Response::from_parts(parts, body)))
            }
            Err(e) => {
                if let Some(a) = access {
                    this.span.in_scope(|| a.emit_unanswered(Failed(&e)));
                }
                Poll::Ready(Err(e))
            }
        }
    }
}

pin_project! {
    /// The response body of [`RequestService`]: counts the bytes sent and writes the access line
    /// when the body ends — or, dropped before its end (the client went away), with
    /// `cancelled: true`. Polled inside the request span.
    pub struct ResponseBody<B> {
        #[pin]
        inner: B,
        span: Span,
        access: Option<Box<Access>>,
    }

    impl<B> PinnedDrop for ResponseBody<B> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let Some(access) = this.access.take() {
                let end = if access.bodyless { End::Completed } else { Cancelled };
                this.span.in_scope(|| access.emit(end));
            }
        }
    }
}

impl<B: fmt::Debug> fmt::Debug for ResponseBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseBody")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<B: Body> Body for ResponseBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let mut this = self.project();
        let _e = this.span.enter();
        let frame = ready!(this.inner.as_mut().poll_frame(cx));
        if let Some(access) = this.access.as_mut() {
            let end = match &frame {
                Some(Ok(f)) => {
                    if let Some(data) = f.data_ref() {
                        access.response_bytes += data.remaining() as u64;
                    }
                    this.inner.is_end_stream().then_some(End::Completed)
                }
                Some(Err(_)) => Some(Failed(&"the response body failed")),
                None => Some(End::Completed),
            };
            if let Some(end) = end {
                access.emit(end);
                *this.access = None;
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
