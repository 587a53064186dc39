//! `reqwest` integration: the current request id on outgoing requests.

use super::propagate::Propagator;

/// Adds the current correlation context to a `reqwest` request (see [`Propagator::inject`]).
///
/// ```no_run
/// use tracelight::http::RequestBuilderExt as _;
///
/// # async fn call(client: reqwest::Client) -> Result<(), reqwest::Error> {
/// // Inside a handler: the next service's lines carry this request's id.
/// let resp = client.get("http://inventory.internal/stock/42").propagate().send().await?;
/// # let _ = resp; Ok(()) }
/// ```
pub trait RequestBuilderExt: Sized {
    /// Adds the current request id header (`x-request-id`) unless the request already has one.
    /// Call it last, just before `.send()`: a header added after it with `.header()` would be sent
    /// as a second value.
    fn propagate(self) -> Self {
        self.propagate_with(&Propagator::default())
    }

    /// Like [`propagate`](RequestBuilderExt::propagate), with a configured [`Propagator`].
    ///
    /// ```no_run
    /// use tracelight::http::{Propagator, RequestBuilderExt as _};
    /// # fn f(client: reqwest::Client) {
    /// let p = Propagator::new().header(http::HeaderName::from_static("x-correlation-id"));
    /// let _req = client.get("http://example.internal/").propagate_with(&p);
    /// # }
    /// ```
    fn propagate_with(self, propagator: &Propagator) -> Self;
}

impl RequestBuilderExt for ::reqwest::RequestBuilder {
    fn propagate_with(self, propagator: &Propagator) -> Self {
        let headers = propagator.headers();
        if headers.is_empty() {
            return self;
        }
        // A builder hides its headers: build a copy to see them, and keep the original when the
        // copy fails to build, so that `send()` reports the original error.
        match self.try_clone().map(::reqwest::RequestBuilder::build_split) {
            Some((client, Ok(mut request))) => {
                propagator.inject(request.headers_mut());
                ::reqwest::RequestBuilder::from_parts(client, request)
            }
            Some((_, Err(_))) => self,
            // A streaming body cannot be copied: add the headers, replacing any set before.
            None => self.headers(headers),
        }
    }
}

impl RequestBuilderExt for ::reqwest::Request {
    /// Adds the headers that are not already set on the request.
    fn propagate_with(mut self, propagator: &Propagator) -> Self {
        propagator.inject(self.headers_mut());
        self
    }
}
