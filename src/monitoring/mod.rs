//! Observability: Prometheus metrics and structured logging.

pub mod logging;
pub mod metrics;
