//! # scalper-storage
//!
//! Append-only JSONL storage with atomic snapshots, compressed recording segments, retention
//! under a disk budget, persistent operator state, and the offline side: replay (the same core
//! code as the live run), backtests, import of Bybit recordings, evaluation and Parquet export.

#[cfg(feature = "parquet-export")]
pub mod export_parquet;
pub mod json_store;
pub mod operator_state;
pub mod recorder;
pub mod replay;
pub mod retention;
pub mod segment;
