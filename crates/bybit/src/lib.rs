//! # scalper-bybit
//!
//! The Bybit v5 edge of scalper: the public market-data connector (WS + REST), the private
//! connector (signed REST, private WS, the LIVE venue), their wire types and decoders, request
//! signing and rate limits. The same code talks to api.bybit.com and to the loopback simulator
//! (`scalper-sim`); only the base URLs differ. Connectors hold no trading state: everything they
//! learn reaches the core as events.

pub mod bybit_private;
pub mod bybit_public;
pub mod clock;
pub mod error;
pub mod log_gate;
pub mod paging;
mod wire;

pub use log_gate::LogGate;
