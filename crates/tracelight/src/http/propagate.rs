//! Client side: the current request id on outgoing requests.

use std::task::{Context as TaskContext, Poll};

use ::http::{HeaderMap, HeaderName, Request};
use tower_layer::Layer;
use tower_service::Service;

use super::request_id::RequestId;
use super::X_REQUEST_ID;

/// Writes the current correlation context into outgoing headers. Every client integration
/// ([`PropagateLayer`], the `reqwest` extension, [`inject`], [`headers`]) goes through
/// [`Propagator::inject`], so a new header (W3C `traceparent`, baggage) is added in one place.
///
/// ```
/// use tracelight::http::Propagator;
/// # let _g = tracelight::builder().writer(tracelight::sink::MemoryWriter::new()).init_local();
/// let p = Propagator::new().header(http::HeaderName::from_static("x-correlation-id"));
/// let _s = tracing::info_span!("request", request_id = "r-9").entered();
/// let mut h = http::HeaderMap::new();
/// p.inject(&mut h);
/// assert_eq!(h["x-correlation-id"], "r-9");
/// ```
#[derive(Debug, Clone)]
pub struct Propagator {
    header: HeaderName,
}

impl Default for Propagator {
    fn default() -> Self {
        Propagator {
            header: X_REQUEST_ID,
        }
    }
}

impl Propagator {
    /// A propagator writing `x-request-id`.
    ///
    /// ```
    /// let _p = tracelight::http::Propagator::new();
    /// ```
    pub fn new() -> Propagator {
        Propagator::default()
    }

    /// The request id header to write (default `x-request-id`).
    ///
    /// ```
    /// let _p = tracelight::http::Propagator::new().header(http::HeaderName::from_static("request-id"));
    /// ```
    pub fn header(mut self, name: HeaderName) -> Propagator {
        self.header = name;
        self
    }

    /// Adds the current context to `headers`: the request id of the current span, when there is
    /// one, valid, and the header is not already set (an explicit value wins). Does nothing
    /// outside a request. With the `otel` feature and an export pipeline running, also the W3C
    /// `traceparent` and `tracestate` of the current span (unless `traceparent` is already set).
    ///
    /// ```
    /// # let _g = tracelight::builder().writer(tracelight::sink::MemoryWriter::new()).init_local();
    /// let mut h = http::HeaderMap::new();
    /// tracelight::http::Propagator::new().inject(&mut h);
    /// assert!(h.is_empty()); // no current request
    /// ```
    pub fn inject(&self, headers: &mut HeaderMap) {
        if !headers.contains_key(&self.header) {
            if let Some(id) = RequestId::current() {
                headers.insert(self.header.clone(), id.into());
            }
        }
        // The W3C trace context (`traceparent`, `tracestate`) of the current span.
        #[cfg(feature = "otel-core")]
        crate::otel::propagation::inject(headers);
    }

    /// The headers [`inject`](Propagator::inject) would add to an empty map.
    ///
    /// ```
    /// assert!(tracelight::http::Propagator::new().headers().is_empty());
    /// ```
    pub fn headers(&self) -> HeaderMap {
        let mut h = HeaderMap::new();
        self.inject(&mut h);
        h
    }
}

/// Adds the current request id to `headers` as `x-request-id`, unless already set (see
/// [`Propagator::inject`]).
///
/// ```
/// # let _g = tracelight::builder().writer(tracelight::sink::MemoryWriter::new()).init_local();
/// let _s = tracing::info_span!("request", request_id = "r-1").entered();
/// let mut h = http::HeaderMap::new();
/// tracelight::http::inject(&mut h);
/// assert_eq!(h["x-request-id"], "r-1");
/// ```
pub fn inject(headers: &mut HeaderMap) {
    Propagator::default().inject(headers);
}

/// The headers that carry the current context to another service, for clients without a
/// dedicated integration.
///
/// ```
/// # let _g = tracelight::builder().writer(tracelight::sink::MemoryWriter::new()).init_local();
/// let _s = tracing::info_span!("request", request_id = "r-1").entered();
/// assert_eq!(tracelight::http::headers()["x-request-id"], "r-1");
/// ```
pub fn headers() -> HeaderMap {
    Propagator::default().headers()
}

/// A tower layer for HTTP clients (hyper, tonic): every request leaves with the current request
/// id (see [`Propagator::inject`]).
///
/// The id is read when the request is *called*, so call the client inside the request's span —
/// as a handler does.
///
/// ```
/// use tower::{Layer, Service, ServiceExt};
/// use tracelight::http::PropagateLayer;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// # let _g = tracelight::builder().writer(tracelight::sink::MemoryWriter::new()).init_local();
/// // Any tower client; this one answers with the header it received.
/// let client = tower::service_fn(|req: http::Request<()>| async move {
///     Ok::<_, std::convert::Infallible>(req.headers().get("x-request-id").cloned())
/// });
/// let mut client = PropagateLayer::new().layer(client);
///
/// let span = tracing::info_span!("request", request_id = "req-1");
/// let _e = span.enter();
/// let sent = client.ready().await.unwrap().call(http::Request::new(())).await.unwrap();
/// assert_eq!(sent.unwrap(), "req-1");
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct PropagateLayer {
    propagator: Propagator,
}

impl PropagateLayer {
    /// A layer writing `x-request-id`.
    ///
    /// ```
    /// let _l = tracelight::http::PropagateLayer::new();
    /// ```
    pub fn new() -> PropagateLayer {
        PropagateLayer::default()
    }

    /// The request id header to write (default `x-request-id`).
    ///
    /// ```
    /// let _l = tracelight::http::PropagateLayer::new().header(http::HeaderName::from_static("request-id"));
    /// ```
    pub fn header(mut self, name: HeaderName) -> PropagateLayer {
        self.propagator = self.propagator.header(name);
        self
    }

    /// Uses `propagator` for every request.
    ///
    /// ```
    /// use tracelight::http::{PropagateLayer, Propagator};
    /// let _l = PropagateLayer::new().propagator(Propagator::new());
    /// ```
    pub fn propagator(mut self, propagator: Propagator) -> PropagateLayer {
        self.propagator = propagator;
        self
    }
}

impl<S> Layer<S> for PropagateLayer {
    type Service = PropagateService<S>;
    fn layer(&self, inner: S) -> PropagateService<S> {
        PropagateService {
            inner,
            propagator: self.propagator.clone(),
        }
    }
}

/// The service of [`PropagateLayer`].
///
/// ```
/// use tower::Layer;
/// let svc = tracelight::http::PropagateLayer::new().layer(tower::service_fn(|_: http::Request<()>| async {
///     Ok::<_, std::convert::Infallible>(())
/// }));
/// # let _ = svc;
/// ```
#[derive(Debug, Clone)]
pub struct PropagateService<S> {
    inner: S,
    propagator: Propagator,
}

impl<S, B> Service<Request<B>> for PropagateService<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> S::Future {
        self.propagator.inject(req.headers_mut());
        self.inner.call(req)
    }
}
