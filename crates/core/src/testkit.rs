//! Literals for tests and benches: exact decimals written as strings, the way Bybit sends them.
//! One copy for every test module of every crate (feature `testkit`, on for the workspace's tests).
//! Each function panics on a malformed literal: its input is written by hand in a test, never read
//! from outside.

use crate::domain::{Price, Qty};
use crate::market::data::Level;
use crate::risk::money::Money;

/// A price literal, e.g. `p("65000.5")`.
pub fn p(s: &str) -> Price {
    Price::parse(s).unwrap_or_else(|e| panic!("price literal {s:?}: {e:?}"))
}

/// A quantity literal.
pub fn q(s: &str) -> Qty {
    Qty::parse(s).unwrap_or_else(|e| panic!("qty literal {s:?}: {e:?}"))
}

/// A money (USDT) literal.
pub fn m(s: &str) -> Money {
    Money::parse(s).unwrap_or_else(|e| panic!("money literal {s:?}: {e:?}"))
}

/// A book level from a price and a quantity literal.
pub fn lv(price: &str, qty: &str) -> Level {
    Level { price: p(price), qty: q(qty) }
}
