//! Helpers of the Bybit public-connector tests (`bybit_public_*.rs`).

use super::{p, q};
use scalper::market::data::Level;

/// The text of `tests/fixtures/bybit/<name>` (Bybit v5 messages in the documented format),
/// embedded at compile time.
#[allow(unused_macros)]
macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/bybit/", $name))
    };
}
#[allow(unused_imports)]
pub(crate) use fixture;

/// A book level from decimal strings.
pub fn lvl(price: &str, qty: &str) -> Level {
    Level { price: p(price), qty: q(qty) }
}
