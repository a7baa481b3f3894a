//! # scalper
//!
//! A headless, deterministic, real-time scalping engine for Bybit linear USDT perpetuals.
//!
//! One ordered stream of [`engine::event::Event`]s flows into one synchronous core
//! ([`engine::Engine`]) that runs the ten pipeline steps in a fixed order and returns its
//! outputs as data. I/O lives at the edges: [`connectors`] (Bybit public/private and the
//! simulator), [`storage`] (JSONL store, retention, replay), [`control`] (gRPC, HTTP API) and
//! [`monitoring`] (metrics, logging).

pub mod config;
pub mod connectors;
pub mod control;
pub mod domain;
pub mod engine;
pub mod execution;
pub mod features;
pub mod market;
pub mod monitoring;
pub mod regime;
pub mod risk;
pub mod scoring;
pub mod state;
pub mod storage;

/// Generated gRPC types for the control plane (`proto/scalper.proto`).
#[allow(missing_docs, clippy::all)]
pub mod proto {
    tonic::include_proto!("scalper.v1");
    /// Encoded file descriptor set, for gRPC reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("scalper_descriptor");
}
