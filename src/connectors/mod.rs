//! Edges that talk to exchanges: the Bybit v5 public and private connectors and the loopback
//! Bybit v5 simulator. Connectors own sockets, heartbeats, reconnects and parsing; they hold no
//! trading state and report everything to the core as events.

pub mod bybit_private;
pub mod bybit_public;
pub mod paging;
pub mod simulator;
