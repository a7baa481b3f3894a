//! # scalper-core
//!
//! The pure core of scalper. One ordered stream of [`engine::event::Event`]s flows into one
//! synchronous [`engine::Engine`] that runs the pipeline steps in a fixed order and returns its
//! outputs as data. Nothing here reads a clock, touches a socket or a file, or spawns a task: time
//! comes in with the event, which is what makes replay exact. The crates around it (Bybit
//! connectors, the exchange simulator, storage, control) do the I/O.

pub mod config;
pub mod domain;
pub mod engine;
pub mod execution;
pub mod features;
pub mod intel;
pub mod market;
pub mod regime;
pub mod risk;
pub mod scoring;
pub mod state;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
