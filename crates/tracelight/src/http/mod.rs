//! Tower middleware for HTTP services and clients: request ids in and out, the request span, and
//! the access log.
