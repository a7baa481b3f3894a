//! Market state: typed market data, the universe, order books, the trade tape, micro-candles
//! and symbol profiles.

pub mod data;
