use tracing::{info, info_span, Dispatch};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::Registry;
struct Noop;
impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Noop {}
#[derive(Default)]
struct C;
impl tracelight::sink::LineWriter for C {
    fn write_line(&self, l: &[u8]) {
        std::hint::black_box(l);
    }
}
fn main() {
    let which = std::env::args().nth(1).unwrap_or_default();
    let n: usize = std::env::args()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(100000);
    let (layer, _g) = tracelight::builder()
        .writer(C)
        .format(tracelight::Format::Json)
        .build()
        .unwrap();
    let d = match which.as_str() {
        "noop" | "noop_event" => Dispatch::new(Registry::default().with(Noop)),
        _ => Dispatch::new(Registry::default().with(layer)),
    };
    tracing::dispatcher::with_default(&d, || {
        if which.ends_with("event") {
            let r = info_span!(
                "request",
                request_id = "0193f2a4-7c1e-7cc2-9a3b-5e0d6f7a8b9c",
                method = "POST",
                path = "/orders"
            );
            let _r = r.enter();
            let p = info_span!("process_order", order_id = "abc-456");
            let _p = p.enter();
            for _ in 0..n {
                info!(
                    user_id = 42u64,
                    order_id = "abc-456",
                    total = 99.99f64,
                    items = 3u32,
                    "order_created"
                );
            }
        } else {
            for _ in 0..n {
                let s = info_span!("op", a = 42u64, b = "abc-456", c = true);
                let _e = s.enter();
            }
        }
    });
}
