//! Prometheus metrics. One [`Metrics`] value owns a registry; every component gets an `Arc` of
//! it. Names follow Prometheus conventions (base units, `_total` counters, `_seconds`).

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// All engine metrics.
pub struct Metrics {
    /// The registry served on `/metrics`.
    pub registry: Registry,
    /// Config reloads by result (`ok`, `rejected`).
    pub config_reloads: IntCounterVec,
    /// Records written by the store, by kind.
    pub storage_writes: IntCounterVec,
    /// Failed store writes, by kind.
    pub storage_write_failures: IntCounterVec,
    /// Records dropped because the store queue was full, by kind.
    pub storage_dropped: IntCounterVec,
    /// Depth of the store's queue.
    pub storage_queue_depth: IntGauge,
    /// Retention runs by result.
    pub retention_runs: IntCounterVec,
    /// Files deleted by retention.
    pub retention_deleted_files: IntCounter,
    /// Events processed by the core, by type.
    pub engine_events: IntCounterVec,
    /// Whole-pipeline latency per event.
    pub tick_latency: Histogram,
    /// 1 while DEGRADED.
    pub degraded: IntGauge,
    /// Component health (1 = ok, 0 = not), label `component`.
    pub component_up: IntGaugeVec,
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Metrics {
        let registry = Registry::new_custom(Some("scalper".into()), None).expect("static registry prefix is valid");
        macro_rules! reg {
            ($m:expr) => {{
                let m = $m.expect("static metric definition is valid");
                registry.register(Box::new(m.clone())).expect("metric names are unique");
                m
            }};
        }
        let config_reloads = reg!(IntCounterVec::new(
            Opts::new("config_reloads_total", "Configuration reload attempts by result"),
            &["result"]
        ));
        let storage_writes = reg!(IntCounterVec::new(
            Opts::new("storage_writes_total", "Records written to the JSONL store by kind"),
            &["kind"]
        ));
        let storage_write_failures = reg!(IntCounterVec::new(
            Opts::new("storage_write_failures_total", "Failed JSONL store writes by kind"),
            &["kind"]
        ));
        let storage_dropped = reg!(IntCounterVec::new(
            Opts::new("storage_dropped_total", "Records refused because the store queue was full, by kind"),
            &["kind"]
        ));
        let storage_queue_depth = reg!(IntGauge::new("storage_queue_depth", "Records waiting in the store queue"));
        let retention_runs =
            reg!(IntCounterVec::new(Opts::new("retention_runs_total", "Retention runs by result"), &["result"]));
        let retention_deleted_files =
            reg!(IntCounter::new("retention_deleted_files_total", "Raw files deleted by retention"));
        let engine_events = reg!(IntCounterVec::new(
            Opts::new("engine_events_total", "Events processed by the core, by type"),
            &["type"]
        ));
        let tick_latency = reg!(Histogram::with_opts(
            HistogramOpts::new("tick_latency_seconds", "Whole-pipeline processing time per event").buckets(vec![
                0.000_005, 0.000_01, 0.000_02, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.005, 0.01, 0.05, 0.1,
                0.3, 1.0
            ])
        ));
        let degraded = reg!(IntGauge::new("degraded", "1 while the engine is DEGRADED (no new entries)"));
        let component_up =
            reg!(IntGaugeVec::new(Opts::new("component_up", "Component health: 1 healthy, 0 not"), &["component"]));
        Metrics {
            registry,
            config_reloads,
            storage_writes,
            storage_write_failures,
            storage_dropped,
            storage_queue_depth,
            retention_runs,
            retention_deleted_files,
            engine_events,
            tick_latency,
            degraded,
            component_up,
        }
    }

    /// Text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let enc = TextEncoder::new();
        if let Err(e) = enc.encode(&self.registry.gather(), &mut buf) {
            tracing::error!(error = %e, "metrics encoding failed");
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
