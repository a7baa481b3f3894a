//! Append-only JSONL storage with atomic snapshots, retention and replay.

#[cfg(feature = "parquet-export")]
pub mod export_parquet;
pub mod json_store;
pub mod operator_state;
pub mod replay;
pub mod retention;
pub mod segment;
