//! The event shapes measured by the benchmarks (`benches/format.rs`), the instruction harness
//! (`benches/examples/instructions.rs`) and the allocation test
//! (`crates/tracelight/tests/allocations.rs`): one definition of each, so that all three
//! measure the same events. Only `tracing` is used here.
//!
//! Each shape is one event, emitted inside that shape's spans:
//!
//! | shape | event | spans |
//! |---|---|---|
//! | `info` | INFO `order_created` with four short fields | `request{request_id, method, path}` > `process_order{order_id}` |
//! | `error_chain` | ERROR with ten fields: a 165-byte string full of characters to escape, a `%` and a `?` value, a dotted name, and an `&dyn Error` with a three-deep `source()` chain | four nested spans |
//! | `warn` | WARN with five fields, no error | as `info` |
//! | `wide` | INFO with 30 fields of every type | as `info` |
//! | `error_long` | ERROR with four strings of 197–220 bytes (SQL, a User-Agent, a URL path with a query, a sentence) and an error with a message | none |

#![allow(dead_code)]

use tracing::{error, info, info_span, warn};

/// One of the shapes of the table above.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Info,
    ErrorChain,
    Warn,
    Wide,
    ErrorLong,
}

impl Shape {
    /// Every shape, in the order of the table.
    pub const ALL: [Shape; 5] = [
        Shape::Info,
        Shape::ErrorChain,
        Shape::Warn,
        Shape::Wide,
        Shape::ErrorLong,
    ];

    /// The shape's name (`info`, `error_chain`, …).
    pub fn name(self) -> &'static str {
        match self {
            Shape::Info => "info",
            Shape::ErrorChain => "error_chain",
            Shape::Warn => "warn",
            Shape::Wide => "wide",
            Shape::ErrorLong => "error_long",
        }
    }

    /// The shape named `name`.
    pub fn parse(name: &str) -> Option<Shape> {
        Shape::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Runs `f` inside the shape's spans (entered once, as a request's spans are around the
    /// events it logs).
    pub fn in_spans<R>(self, f: impl FnOnce() -> R) -> R {
        match self {
            Shape::Info | Shape::Warn | Shape::Wide => {
                let r = info_span!(
                    "request",
                    request_id = "0193f2a4-7c1e-7cc2-9a3b-5e0d6f7a8b9c",
                    method = "POST",
                    path = "/orders"
                );
                let _r = r.enter();
                let p = info_span!("process_order", order_id = "abc-456");
                let _p = p.enter();
                f()
            }
            Shape::ErrorChain => {
                let r = info_span!(
                    "request",
                    request_id = "0193f2a4-7c1e-7cc2-9a3b-5e0d6f7a8b9c",
                    method = "POST",
                    path = "/checkout"
                );
                let _r = r.enter();
                let c = info_span!("checkout", cart_id = "c-77f1", items = 4u64);
                let _c = c.enter();
                let p = info_span!("charge", provider = "acme-pay", amount_cents = 12_999u64);
                let _p = p.enter();
                let g = info_span!("gateway_call", attempt = 3u64, host = "pay.example.net");
                let _g = g.enter();
                f()
            }
            Shape::ErrorLong => f(),
        }
    }

    /// Emits one event of the shape.
    #[inline(never)]
    pub fn event(self) {
        match self {
            Shape::Info => info!(
                user_id = 42u64,
                order_id = "abc-456",
                total = 99.99f64,
                items = 3u32,
                "order_created"
            ),
            Shape::ErrorChain => {
                let err = &CHAIN;
                let gateway = Gateway("pay.example.net", 443);
                let request = Request {
                    method: "POST",
                    attempt: 3,
                };
                error!(
                    order_id = "abc-456",
                    user_id = 42u64,
                    amount = 129.99f64,
                    attempt = 3u64,
                    retry = true,
                    http.status_code = 502u64,
                    payload = ESCAPED,
                    gateway = %gateway,
                    request = ?request,
                    error = err as &(dyn std::error::Error + 'static),
                    "payment failed"
                );
            }
            Shape::Warn => warn!(
                order_id = "abc-456",
                sku = "SKU-1042",
                left = 3u64,
                threshold = 5u64,
                warehouse = "eu-west-2",
                "inventory low"
            ),
            Shape::Wide => info!(
                f01 = 1u64,
                f02 = 2u64,
                f03 = -3i64,
                f04 = 4.5f64,
                f05 = true,
                f06 = "six",
                f07 = "seven",
                f08 = 8u64,
                f09 = 9u64,
                f10 = "ten",
                f11 = 11u64,
                f12 = -12i64,
                f13 = 13.25f64,
                f14 = false,
                f15 = "fifteen",
                f16 = "sixteen",
                f17 = 17u64,
                f18 = 18u64,
                f19 = "nineteen",
                f20 = 20u64,
                f21 = 21u64,
                f22 = -22i64,
                f23 = 23.5f64,
                f24 = true,
                f25 = "twenty-five",
                f26 = "twenty-six",
                f27 = 27u64,
                f28 = 28u64,
                f29 = "twenty-nine",
                f30 = 30u64,
                "wide event"
            ),
            Shape::ErrorLong => {
                // Made once: the shape measures the logging, not the error's making.
                static ERR: std::sync::OnceLock<std::io::Error> = std::sync::OnceLock::new();
                let err = ERR.get_or_init(|| {
                    std::io::Error::other(
                        "connection reset by peer while reading the response body",
                    )
                });
                error!(
                    query = SQL,
                    user_agent = USER_AGENT,
                    path = PATH,
                    note = NOTE,
                    error = err as &dyn std::error::Error,
                    "order query failed"
                );
            }
        }
    }
}

/// 165 bytes with quotes, backslashes, newlines, tabs and a control character to escape.
const ESCAPED: &str = "line one: \"quoted\" and C:\\path\\to\\file\n\tline two:\ttabs\tand \"more\" quotes \u{1} control\nline three: {\"json\": \"inside\", \"n\": [1, 2, 3]} \\ back\\slash\\es \"end\" of the text\r\n";

const SQL: &str = "SELECT o.id, o.total, o.status, c.email FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.created_at > now() - interval '1 day' AND o.status IN ('pending', 'paid') ORDER BY o.created_at DESC LIMIT 100";
const USER_AGENT: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.80 with a long tail of extension identifiers appended by the client";
const PATH: &str = "/api/v2/customers/8d4c2f5e-0b7a-4c1e-9a3b-5e0d6f7a8b9c/orders/01936f2a-4c1e-7cc2-9a3b-5e0d6f7a8b9c/items?expand=product,inventory,pricing&include=discounts,taxes&page=3&per_page=50&sort=-created_at";
const NOTE: &str = "retrying after the upstream inventory service returned 503 Service Unavailable three times in a row; the circuit breaker is half-open and the next attempt is scheduled with exponential backoff and jitter";

/// An error with a `source()` chain: `payment declined` ← `gateway timeout` ← `connection reset`
/// (static: the shape measures the logging, not the error's making).
#[derive(Debug)]
pub struct ChainError {
    message: &'static str,
    source: Option<&'static ChainError>,
}

impl std::fmt::Display for ChainError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message)
    }
}

impl std::error::Error for ChainError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.map(|e| e as &(dyn std::error::Error + 'static))
    }
}

static RESET: ChainError = ChainError {
    message: "connection reset by peer",
    source: None,
};
static TIMEOUT: ChainError = ChainError {
    message: "gateway timeout after 3 attempts",
    source: Some(&RESET),
};
/// The three-deep chain of the `error_chain` shape.
pub static CHAIN: ChainError = ChainError {
    message: "payment declined",
    source: Some(&TIMEOUT),
};

/// A `%` value.
struct Gateway(&'static str, u16);

impl std::fmt::Display for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.0, self.1)
    }
}

/// A `?` value.
#[derive(Debug)]
#[allow(dead_code)]
struct Request {
    method: &'static str,
    attempt: u32,
}
