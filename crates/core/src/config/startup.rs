//! What a reload cannot change: the settings the running engine reads once, when it starts.

use super::Config;

/// Settings the running engine reads once, when it starts (listeners, control-plane limits,
/// queues, connectors, storage and retention tasks, the DEGRADED policy, the memory set-up), as
/// `(key, copy from the running configuration, differs)`. A reload cannot apply them: it keeps
/// the running values and names them ([`Config::keep_startup_only`]).
type StartupKey = (&'static str, fn(&mut Config, &Config), fn(&Config, &Config) -> bool);

macro_rules! startup_keys {
    ($($key:literal => $($field:ident).+;)*) => {
        &[$(($key, |to: &mut Config, from: &Config| to.$($field).+ = from.$($field).+.clone(), |a: &Config, b: &Config| a.$($field).+ != b.$($field).+),)*]
    };
}

const STARTUP_ONLY: &[StartupKey] = startup_keys! {
    "data_dir" => data_dir;
    "endpoints" => endpoints;
    "server.http_addr" => server.http_addr;
    "server.grpc_addr" => server.grpc_addr;
    "control" => control;
    "storage.queue_capacity" => storage.queue_capacity;
    "storage.batch_max" => storage.batch_max;
    "storage.record_raw" => storage.record_raw;
    "storage.retention_hours" => storage.retention_hours;
    "storage.retention_interval_s" => storage.retention_interval_s;
    "storage.max_disk_gb" => storage.max_disk_gb;
    "engine.degraded_tick_ms" => engine.degraded_tick_ms;
    "engine.degraded_recover_ticks" => engine.degraded_recover_ticks;
    "engine.input_queue_capacity" => engine.input_queue_capacity;
    "engine.shed_high_water" => engine.shed_high_water;
    "engine.live_reconcile_interval_ms" => engine.live_reconcile_interval_ms;
    "engine.venue_queue_capacity" => engine.venue_queue_capacity;
    "engine.prefault_mib" => engine.prefault_mib;
    "engine.huge_pages" => engine.huge_pages;
    "universe.refresh_s" => universe.refresh_s;
};

impl Config {
    /// Puts back the running values of the settings read only at start-up (see
    /// [`STARTUP_ONLY`]) that `self`, a reloaded file, changed, and returns their keys: the
    /// configuration in force then says what the engine actually runs with.
    pub fn keep_startup_only(&mut self, running: &Config) -> Vec<&'static str> {
        let mut kept = Vec::new();
        for (key, copy, differs) in STARTUP_ONLY {
            if differs(self, running) {
                copy(self, running);
                kept.push(*key);
            }
        }
        kept
    }
}
