//! Observability: Prometheus metrics and structured logging.

pub mod events;
pub mod logging;
pub mod metrics;
