//! Market state: typed market data, the universe, order books, the trade tape, micro-candles
//! and symbol profiles.

pub mod candles;
pub mod data;
pub mod orderbook;
pub mod profile;
pub mod stats;
pub mod tape;
pub mod universe;
