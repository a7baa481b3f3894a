//! # scalper
//!
//! A headless, deterministic, real-time scalping engine for Bybit linear USDT perpetuals.
//!
//! The crates are the architecture (README "Architecture"):
//! - [`scalper_core`]: the pure core. One ordered stream of [`engine::event::Event`]s flows into
//!   one synchronous [`engine::Engine`] that runs the pipeline steps in a fixed order and returns
//!   its outputs as data; no async runtime, socket, file or clock inside.
//! - [`scalper_bybit`] ([`connectors`]): the Bybit v5 public and private connectors.
//! - [`scalper_sim`] ([`connectors::simulator`]): the loopback Bybit v5 exchange simulator.
//! - [`scalper_storage`] ([`storage`]): the JSONL store, recording, retention, replay.
//! - [`scalper_control`] ([`control`], [`monitoring`]): gRPC, the HTTP API, metrics, logging and
//!   configuration files.
//!
//! This package owns the runtime wiring ([`engine::runtime`], [`engine::seeder`]) and the
//! `scalper` and `scalperctl` binaries, and re-exports the crates under one namespace so that
//! binaries, tests and benches name every part the same way.

pub use scalper_control as control;
pub use scalper_control::{monitoring, proto};
pub use scalper_core::{domain, execution, features, intel, market, regime, risk, scoring, state};
pub use scalper_storage as storage;

pub mod memory;

/// Configuration: the schema and validation ([`scalper_core::config`]), loading from files and
/// the environment ([`ConfigFile`]), live reload ([`reload`]) and per-symbol overrides.
pub mod config {
    pub use scalper_control::config_file::ConfigFile;
    pub use scalper_control::overrides;
    pub use scalper_control::reload;
    pub use scalper_core::config::*;
}

/// The engine core ([`scalper_core::engine`]) and the runtime that drives it.
pub mod engine {
    pub use scalper_core::engine::*;
    pub mod runtime;
    pub mod seeder;
}

/// Edges that talk to exchanges: the Bybit v5 connectors and the loopback simulator.
pub mod connectors {
    pub use scalper_bybit::{bybit_private, bybit_public, clock, paging};
    pub use scalper_sim as simulator;
}
