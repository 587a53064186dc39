//! Tower middleware for HTTP services and clients: request ids in and out, the request span, and
//! the access log.
//!
//! # Server: [`RequestLayer`]
//!
//! One layer gives every request its correlation context:
//!
//! - it reads the request id from `X-Request-ID` (the name is configurable) and accepts it only if
//!   it is 1 to 128 characters of `[A-Za-z0-9._:-]`; anything else — a newline, a 10 KB value,
//!   non-ASCII bytes, an empty value — is replaced by a new time-ordered id (UUID v7), and a
//!   security event says why, without ever copying the bad value into the logs;
//! - it opens the `request` span (`request_id`, `method`, `path`, `route`) and runs the inner
//!   service inside it, so every line the handler writes — and every line of work spawned with
//!   [`tracelight::spawn`](crate::spawn) — carries `"request_id"` at the root;
//! - it puts the id in the request's extensions as a [`RequestId`] (handlers read it with axum's
//!   `Extension<RequestId>`) and echoes it on the response;
//! - it writes one access line per request when the response body is finished (or the client
//!   went away): method, path, route, status, `duration_ms`, bytes, client IP, user agent.
//!
//! ```
//! use axum::{routing::get, Router};
//! use tracelight::http::RequestLayer;
//!
//! let app: Router = Router::new()
//!     .route("/orders/{id}", get(|| async { "ok" }))
//!     .layer(RequestLayer::new());
//! ```
//!
//! Add it with `Router::layer` so it runs after routing: then it sees axum's `MatchedPath` and the
//! access line carries the route (`/orders/{id}`) as well as the path (`/orders/42`).
//!
//! # Client: [`PropagateLayer`], [`inject`], and `reqwest`
//!
//! Outgoing requests carry the current request id, so the next service's lines share it:
//!
//! ```
//! # let _g = tracelight::builder().writer(tracelight::sink::MemoryWriter::new()).init_local();
//! let span = tracing::info_span!("request", request_id = "req-7");
//! let _e = span.enter();
//! let mut headers = http::HeaderMap::new();
//! tracelight::http::inject(&mut headers);
//! assert_eq!(headers["x-request-id"], "req-7");
//! ```
//!
//! [`PropagateLayer`] does this for tower clients (hyper, tonic); with the `reqwest` feature,
//! `RequestBuilderExt::propagate` does it for reqwest. All of them go through one
//! [`Propagator::inject`], the single place where outgoing context is written.
//!
//! # Events for the router
//!
//! | target | `stream` field | what |
//! |---|---|---|
//! | `tracelight::access` | `access` | one per request (`"request completed"`), WARN for 5xx |
//! | `tracelight::security` | `security` | a rejected incoming request id (`event = "request_id_rejected"`) |
//! | `tracelight::http` | — | the `request` span |
//!
//! # Why an `axum` feature
//!
//! The route template and the peer address live in axum's request extensions as axum types
//! (`MatchedPath`, `ConnectInfo<SocketAddr>`); an extension is looked up by its type, so reading
//! them needs the type. With the `axum` feature the layer reads both with no configuration. Without
//! it (hyper, tonic, or to read something else), give the layer closures:
//! [`RequestLayer::route_with`] and [`RequestLayer::peer_addr_with`]. A [`PeerAddr`] extension is
//! read in every case.

mod client_ip;
mod propagate;
mod request_id;
#[cfg(feature = "reqwest")]
mod reqwest_ext;
mod server;

pub use client_ip::{InvalidIpRange, IpRange};
pub use propagate::{headers, inject, PropagateLayer, PropagateService, Propagator};
pub use request_id::{InvalidRequestId, Rejection, RequestId, MAX_REQUEST_ID_LEN};
#[cfg(feature = "reqwest")]
pub use reqwest_ext::RequestBuilderExt;
#[cfg(feature = "admin")]
pub(crate) use server::QuietAccess;
pub use server::{PeerAddr, RequestLayer, RequestService, ResponseBody, ResponseFuture};

/// The default request id header, `x-request-id`.
///
/// ```
/// assert_eq!(tracelight::http::X_REQUEST_ID.as_str(), "x-request-id");
/// ```
pub const X_REQUEST_ID: ::http::HeaderName = ::http::HeaderName::from_static("x-request-id");

/// The target of access lines.
pub const ACCESS_TARGET: &str = "tracelight::access";

/// The target of security events.
pub const SECURITY_TARGET: &str = "tracelight::security";
