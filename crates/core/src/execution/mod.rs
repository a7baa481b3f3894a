//! Execution intents, TP/SL planning, modes and venues (SIM, DRY_RUN, Bybit). The core emits
//! intents as data; venues live at the edge.

pub mod contract;
pub mod entry;
pub mod integrity;
pub mod matching;
pub mod mode;
pub mod order;
pub mod sim;
pub mod tpsl;
pub mod venue;
