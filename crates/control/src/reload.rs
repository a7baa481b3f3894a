//! Hot reload: the config file is polled; a changed, valid file replaces the running
//! configuration through a `watch` channel; an invalid one is refused (logged and counted) and
//! the last good configuration stays in force.

use crate::config_file::ConfigFile;
use crate::monitoring::metrics::Metrics;
use scalper_core::config::{Config, ConfigError};
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// What one check of the file found.
#[derive(Debug, Clone, PartialEq)]
pub enum ReloadOutcome {
    /// The file did not change.
    Unchanged,
    /// A new valid configuration is in force.
    Reloaded,
    /// The new file was refused; the last good configuration stays.
    Rejected(String),
}

/// Polls one config file and publishes each new valid configuration.
pub struct ConfigReloader {
    path: PathBuf,
    last_hash: Option<u64>,
    tx: watch::Sender<Arc<Config>>,
    metrics: Arc<Metrics>,
    /// The file was unreadable at the last check: the refusal was logged and counted once, and
    /// is not repeated every poll until the file is readable again.
    missing: bool,
}

impl ConfigReloader {
    /// New reloader for `path`, starting from `initial` (already loaded from that file).
    pub fn new(path: PathBuf, initial: Arc<Config>, metrics: Arc<Metrics>) -> (Self, watch::Receiver<Arc<Config>>) {
        let (tx, rx) = watch::channel(initial);
        let last_hash = std::fs::read(&path).ok().map(|b| hash_bytes(&b));
        (ConfigReloader { path, last_hash, tx, metrics, missing: false }, rx)
    }

    /// The configuration in force.
    pub fn current(&self) -> Arc<Config> {
        self.tx.borrow().clone()
    }

    /// A receiver for configuration changes.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Config>> {
        self.tx.subscribe()
    }

    /// Checks the file once (also used for an explicit `ReloadConfig` command when `force`).
    pub fn check_once(&mut self, force: bool) -> ReloadOutcome {
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) => {
                // A missing file during an editor's save-rename is transient; refuse and retry,
                // but say so once per outage, not once per poll.
                let msg = format!("cannot read {}: {e}", self.path.display());
                if self.missing && !force {
                    return ReloadOutcome::Rejected(msg);
                }
                self.missing = true;
                return self.reject(msg);
            }
        };
        if std::mem::take(&mut self.missing) {
            tracing::info!(path = %self.path.display(), "config file readable again");
        }
        let h = hash_bytes(&bytes);
        if !force && self.last_hash == Some(h) {
            return ReloadOutcome::Unchanged;
        }
        self.last_hash = Some(h);
        match Config::load(Some(&self.path)) {
            Ok(mut cfg) => {
                let running = self.current();
                if cfg.mode != running.mode {
                    tracing::warn!(
                        file_mode = cfg.mode.as_str(),
                        running_mode = running.mode.as_str(),
                        "config reload does not change the mode; use the control plane"
                    );
                    cfg.mode = running.mode;
                }
                keep_startup_only(&mut cfg, &running, &self.metrics);
                if *running == cfg {
                    return ReloadOutcome::Unchanged;
                }
                tracing::info!(path = %self.path.display(), "configuration reloaded");
                self.metrics.config_reloads.with_label_values(&["ok"]).inc();
                self.tx.send_replace(Arc::new(cfg));
                ReloadOutcome::Reloaded
            }
            Err(e) => self.reject(match e {
                ConfigError::Parse(m) => m,
                ConfigError::Invalid(v) => v.join("; "),
            }),
        }
    }

    fn reject(&self, msg: String) -> ReloadOutcome {
        tracing::error!(path = %self.path.display(), error = %msg, "config reload refused; last good configuration stays in force");
        self.metrics.config_reloads.with_label_values(&["rejected"]).inc();
        ReloadOutcome::Rejected(msg)
    }

    /// Polls until cancelled.
    pub async fn run(mut self, cancel: CancellationToken) {
        loop {
            let every = Duration::from_millis(self.current().reload.poll_interval_ms.max(50));
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
            self.check_once(false);
        }
    }
}

/// The reload rule for settings read only at start-up, shared by the file watcher and the
/// `ReloadConfig` command: `cfg` keeps the `running` values ([`Config::keep_startup_only`]), and
/// any it had changed are named in a warning and counted (`result="restart_needed"`). Returns
/// their keys.
pub(crate) fn keep_startup_only(cfg: &mut Config, running: &Config, metrics: &Metrics) -> Vec<&'static str> {
    let kept = cfg.keep_startup_only(running);
    if !kept.is_empty() {
        tracing::warn!(
            keys = %kept.join(", "),
            "config reload: these settings are read at start-up only; the running values stay in force until the next start"
        );
        metrics.config_reloads.with_label_values(&["restart_needed"]).inc();
    }
    kept
}

fn hash_bytes(b: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    b.hash(&mut h);
    h.finish()
}
