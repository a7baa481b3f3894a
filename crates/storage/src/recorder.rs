//! Input recording for replay: every event the core consumes, in order, with its `seq` and
//! times, appended as one JSON line to `<data>/raw/_global/<hour>.jsonl.zst` (the store compresses
//! it in zstd frames, see [`crate::segment`]). The hour is that of the
//! running maximum of receive time, so the hourly files, read in order, are in `seq` order even
//! when two edges stamped their events a few ms out of order.
//!
//! A run starts with a *header*: a `seq: 0` [`EventKind::ConfigReload`] carrying the configuration
//! the core was built with (never fed to the core; replay builds its fresh core from it). The
//! recorder never blocks the core loop: a full store queue drops the line (counted by the store's
//! `storage_dropped{kind="raw"}` and here), and replay reports the resulting `seq` gap.

use crate::json_store::StoreHandle;
use scalper_core::config::paths::DataKind;
use scalper_core::config::Config;
use scalper_core::domain::{EventTime, TimeMs};
use scalper_core::engine::event::{Event, EventKind};
use std::sync::Arc;

/// Writes the core's input events to the store (or nothing, when disabled).
pub struct Recorder {
    store: Option<StoreHandle>,
    max_ts: TimeMs,
    written: u64,
    dropped: u64,
    /// Drops not yet reported in a log line, and when the last line was written (wall clock:
    /// the recorder is an edge). At most one line per [`DROP_LOG_EVERY`].
    unreported: u64,
    last_warn: Option<std::time::Instant>,
}

/// At most one "not recorded" line per this period, with the count of drops since the last.
pub const DROP_LOG_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

impl Recorder {
    /// The header event of a run started at `now_ms` with `cfg`.
    pub fn header(cfg: Arc<Config>, now_ms: TimeMs) -> Event {
        Event::new(0, EventTime::local(now_ms), EventKind::ConfigReload(cfg))
    }

    /// A recorder writing to `store` when `enabled`; writes the run header at once.
    pub fn new(enabled: bool, store: StoreHandle, cfg: &Arc<Config>, now_ms: TimeMs) -> Recorder {
        let mut r = Recorder {
            store: enabled.then_some(store),
            max_ts: TimeMs::MIN,
            written: 0,
            dropped: 0,
            unreported: 0,
            last_warn: None,
        };
        if enabled {
            tracing::info!("recording input events to raw/_global for replay");
            r.record(&Self::header(cfg.clone(), now_ms));
        }
        r
    }

    /// A recorder that records nothing.
    pub fn disabled() -> Recorder {
        Recorder { store: None, max_ts: TimeMs::MIN, written: 0, dropped: 0, unreported: 0, last_warn: None }
    }

    /// Appends one event (no-op when disabled). Never blocks.
    pub fn record(&mut self, ev: &Event) {
        let Some(store) = &self.store else { return };
        self.max_ts = self.max_ts.max(ev.now_ms());
        match store.try_append(DataKind::Raw, None, self.max_ts, ev) {
            Ok(()) => self.written += 1,
            Err(e) => {
                self.dropped += 1;
                self.unreported += 1;
                if self.last_warn.is_none_or(|t| t.elapsed() >= DROP_LOG_EVERY) {
                    self.last_warn = Some(std::time::Instant::now());
                    tracing::warn!(seq = ev.seq, error = %e, dropped = std::mem::take(&mut self.unreported),
                        dropped_total = self.dropped, "input events not recorded: replay will report a gap");
                }
            }
        }
    }

    /// True when recording.
    pub fn is_enabled(&self) -> bool {
        self.store.is_some()
    }
    /// Lines queued so far.
    pub fn written(&self) -> u64 {
        self.written
    }
    /// Lines dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}
