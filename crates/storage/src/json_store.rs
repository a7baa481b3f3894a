//! Append-only JSONL store with atomic JSON snapshots.
//!
//! * `append(kind, symbol, ts_ms, &obj)` writes one JSON line to
//!   `<data>/<kind>/<SYMBOL|_global>/<YYYY-MM-DDTHH>.jsonl` (hour of `ts_ms`, UTC).
//! * `set_snapshot(kind, name, &obj)` atomically replaces `<data>/<kind>/<name>.json`
//!   (temp file + fsync + rename), so a crash never leaves a half file.
//!
//! All writes go through one bounded queue to one writer thread that batches; the caller never
//! blocks on disk (`try_*` methods refuse and count when the queue is full; `*_wait` methods
//! wait for room). A record is *acknowledged* once [`StoreHandle::flush`] returns after it:
//! it is then in the file as a whole line. A crash can only tear the line being written at that
//! moment; the writer repairs such a torn tail (truncates it) before it appends to a file again,
//! and [`read_jsonl`] ignores one. Write errors (disk full…) are counted and logged (at most one
//! line per [`ERROR_LOG_EVERY`], with the number of errors not logged); the writer keeps going.
//!
//! The input recording (`DataKind::Raw`) is stored compressed instead, as
//! `<hour>.jsonl.zst` segments of independent zstd frames ([`crate::segment`]): its lines
//! are gathered into a frame of up to [`segment::FRAME_TARGET_BYTES`] or [`segment::FRAME_MAX_AGE`]
//! and each frame is appended in one write; a flush or shutdown writes the frame at once. A crash
//! tears at most the last frame, which the writer cuts before appending and readers skip.
//!
//! The writer's health is published on a `watch` channel ([`StoreHandle::health`]) and in
//! `scalper_storage_up`: DOWN at the first failed write, flush or fsync, or when the writer
//! thread is gone (panicked, exited); UP again once a batch is written without error and the last
//! failure is [`RECOVER_AFTER`] old. While DOWN, [`StoreHandle::probe`] retries a small
//! atomic write so that recovery is seen even when nothing else is written.
//!
//! This file holds the producers' side (handle, queueing, naming) and the readers; the writer
//! thread that [`Store::start`] spawns is in the `writer` submodule.
mod writer;

use crate::segment;
use scalper_control::monitoring::metrics::Metrics;
use scalper_core::config::paths::{DataKind, Paths};
use scalper_core::domain::{Symbol, TimeMs};
use serde::Serialize;
use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};

/// At most one error line per this period; the others are counted and reported with the next.
pub const ERROR_LOG_EVERY: Duration = Duration::from_secs(10);
/// A DOWN store comes back UP only after writes succeed with no failure for this long, so one
/// failing sink among working ones does not flap the health at every batch. Going DOWN again
/// within [`FLAP_WINDOW`] of coming UP doubles the wait (up to [`RECOVER_AFTER_MAX`]).
pub const RECOVER_AFTER: Duration = Duration::from_secs(1);
/// Longest wait before a flapping store is declared UP again.
pub const RECOVER_AFTER_MAX: Duration = Duration::from_secs(60);
/// A DOWN this soon after an UP counts as a flap.
pub const FLAP_WINDOW: Duration = Duration::from_secs(60);
/// Name of the probe snapshot under `system/` (see [`StoreHandle::probe`]).
pub const PROBE_NAME: &str = "storage_probe";

/// Whether the store can write, as the edges see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreHealth {
    /// The writer runs and its last writes succeeded.
    pub up: bool,
    /// Why (the last error when DOWN).
    pub detail: String,
}

/// Why a record was not queued.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The object could not be serialised.
    #[error("serialisation failed: {0}")]
    Serialize(#[from] serde_json::Error),
    /// The queue is full (the record was dropped and counted).
    #[error("store queue full; record dropped")]
    QueueFull,
    /// The writer has stopped.
    #[error("store writer has stopped")]
    Closed,
    /// Symbol or snapshot name not usable in a path.
    #[error("invalid name for a store path: {0:?}")]
    InvalidName(String),
}

enum Cmd {
    Append {
        kind: DataKind,
        symbol: Option<Symbol>,
        hour: String,
        line: String,
    },
    Snapshot {
        kind: DataKind,
        name: String,
        json: String,
    },
    Flush(oneshot::Sender<()>),
    Probe,
    /// Fault injection: the writer thread panics (see [`StoreHandle::inject_writer_panic`]).
    Panic,
    Shutdown,
}

/// Cheap-to-clone handle to the store's writer.
#[derive(Clone)]
pub struct StoreHandle {
    tx: mpsc::Sender<Cmd>,
    metrics: Arc<Metrics>,
    paths: Paths,
    health: watch::Receiver<StoreHealth>,
}

/// Owns the writer thread; [`Store::shutdown`] flushes everything queued and joins it.
pub struct Store {
    handle: StoreHandle,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// `YYYY-MM-DDTHH` (UTC) of a millisecond timestamp.
pub fn hour_key(ts_ms: TimeMs) -> String {
    match chrono::DateTime::from_timestamp_millis(ts_ms) {
        Some(t) => t.format("%Y-%m-%dT%H").to_string(),
        None => "1970-01-01T00".to_string(),
    }
}

/// `YYYY-MM-DD` (UTC) of a millisecond timestamp.
pub fn day_key(ts_ms: TimeMs) -> String {
    match chrono::DateTime::from_timestamp_millis(ts_ms) {
        Some(t) => t.format("%Y-%m-%d").to_string(),
        None => "1970-01-01".to_string(),
    }
}

impl Store {
    /// A handle for producers.
    pub fn handle(&self) -> StoreHandle {
        self.handle.clone()
    }

    /// Flushes everything queued, stops the writer and waits for it.
    pub async fn shutdown(mut self) {
        // Everything queued before the Shutdown command is written first (the queue is FIFO).
        let _ = self.handle.tx.send(Cmd::Shutdown).await;
        if let Some(t) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
    }
}

impl StoreHandle {
    /// The paths the store writes under.
    pub fn paths(&self) -> &Paths {
        &self.paths
    }

    /// The writer's health; changes only when it flips between UP and DOWN.
    pub fn health(&self) -> watch::Receiver<StoreHealth> {
        self.health.clone()
    }

    /// Asks the writer to retry a small atomic write (`system/storage_probe.json`), without
    /// blocking; used while DOWN so that a recovered disk is noticed even when nothing else is
    /// written. False when the queue is full or the writer is gone.
    pub fn probe(&self) -> bool {
        self.tx.try_send(Cmd::Probe).is_ok()
    }

    /// Fault injection for tests: the writer thread panics when it reaches this command, as a
    /// bug in it would (the store must then turn DOWN, not fail silently).
    #[doc(hidden)]
    pub fn inject_writer_panic(&self) -> bool {
        self.tx.try_send(Cmd::Panic).is_ok()
    }

    fn prepare_append<T: Serialize + ?Sized>(
        &self,
        kind: DataKind,
        symbol: Option<&Symbol>,
        ts_ms: TimeMs,
        obj: &T,
    ) -> Result<Cmd, StoreError> {
        if let Some(s) = symbol {
            if !Symbol::is_valid(s.as_str()) {
                return Err(StoreError::InvalidName(s.to_string()));
            }
        }
        let line = serde_json::to_string(obj)?;
        Ok(Cmd::Append { kind, symbol: symbol.cloned(), hour: hour_key(ts_ms), line })
    }

    fn try_send(&self, kind: DataKind, cmd: Cmd) -> Result<(), StoreError> {
        match self.tx.try_send(cmd) {
            Ok(()) => {
                self.metrics.storage_queue_depth.set((self.tx.max_capacity() - self.tx.capacity()) as i64);
                Ok(())
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.metrics.storage_dropped.with_label_values(&[kind.dir_name()]).inc();
                Err(StoreError::QueueFull)
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(StoreError::Closed),
        }
    }

    /// Queues one JSONL record without blocking. Full queue → dropped, counted, `QueueFull`.
    pub fn try_append<T: Serialize + ?Sized>(
        &self,
        kind: DataKind,
        symbol: Option<&Symbol>,
        ts_ms: TimeMs,
        obj: &T,
    ) -> Result<(), StoreError> {
        let cmd = self.prepare_append(kind, symbol, ts_ms, obj)?;
        self.try_send(kind, cmd)
    }

    /// Queues one JSONL record, waiting for room in the queue (never drops).
    pub async fn append<T: Serialize + ?Sized>(
        &self,
        kind: DataKind,
        symbol: Option<&Symbol>,
        ts_ms: TimeMs,
        obj: &T,
    ) -> Result<(), StoreError> {
        let cmd = self.prepare_append(kind, symbol, ts_ms, obj)?;
        self.tx.send(cmd).await.map_err(|_| StoreError::Closed)
    }

    fn prepare_snapshot<T: Serialize + ?Sized>(&self, kind: DataKind, name: &str, obj: &T) -> Result<Cmd, StoreError> {
        let ok_name = !name.is_empty()
            && name.len() <= 64
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            && !name.starts_with('-');
        if !ok_name {
            return Err(StoreError::InvalidName(name.to_string()));
        }
        let json = serde_json::to_string_pretty(obj)?;
        Ok(Cmd::Snapshot { kind, name: name.to_string(), json })
    }

    /// Queues an atomic snapshot replacement of `<data>/<kind>/<name>.json` without blocking.
    pub fn try_set_snapshot<T: Serialize + ?Sized>(
        &self,
        kind: DataKind,
        name: &str,
        obj: &T,
    ) -> Result<(), StoreError> {
        let cmd = self.prepare_snapshot(kind, name, obj)?;
        self.try_send(kind, cmd)
    }

    /// Queues an atomic snapshot replacement, waiting for room.
    pub async fn set_snapshot<T: Serialize + ?Sized>(
        &self,
        kind: DataKind,
        name: &str,
        obj: &T,
    ) -> Result<(), StoreError> {
        let cmd = self.prepare_snapshot(kind, name, obj)?;
        self.tx.send(cmd).await.map_err(|_| StoreError::Closed)
    }

    /// Waits until everything queued before this call is written (acknowledged).
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Cmd::Flush(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}
/// Writes `bytes` to `path` atomically: temp file in the same directory, fsync, rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().ok_or_else(|| std::io::Error::other("snapshot path has no parent"))?;
    std::fs::create_dir_all(dir)?;
    let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("snapshot");
    let tmp = dir.join(format!(".{file_name}.{}.tmp", std::process::id()));
    let res = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

/// Reads a JSONL file: every whole line parsed as JSON. Returns the values and the number of
/// lines that could not be used (a torn tail or a corrupt line), which callers log and count.
/// A `.jsonl.zst` segment is read the same way; a torn or corrupt frame counts as one bad line.
pub fn read_jsonl(path: &Path) -> std::io::Result<(Vec<serde_json::Value>, usize)> {
    let mut bad = 0;
    let bytes = if segment::is_zst_path(path) {
        let mut r = segment::FrameLines::new(File::open(path)?)?;
        let mut b = Vec::new();
        r.read_to_end(&mut b)?;
        bad += r.bad_frames() as usize;
        b
    } else {
        std::fs::read(path)?
    };
    let mut out = Vec::new();
    let whole = match bytes.iter().rposition(|b| *b == b'\n') {
        Some(i) => &bytes[..=i],
        None => &bytes[..0],
    };
    if whole.len() < bytes.len() {
        bad += 1;
    }
    for line in whole.split(|b| *b == b'\n') {
        if line.is_empty() {
            continue;
        }
        match serde_json::from_slice(line) {
            Ok(v) => out.push(v),
            Err(_) => bad += 1,
        }
    }
    Ok((out, bad))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hour_and_day_keys_are_utc() {
        // 2026-11-24T13:05:00Z
        let t = 1_795_525_500_000;
        assert_eq!(hour_key(t), "2026-11-24T13");
        assert_eq!(day_key(t), "2026-11-24");
    }

    #[tokio::test]
    async fn a_rewritten_profile_keeps_the_operators_overrides() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::with_data_dir(dir.path());
        let store = Store::start(paths.clone(), 16, 4, Arc::new(Metrics::new()));
        let h = store.handle();
        let file = paths.snapshot_file(DataKind::Profiles, "BTCUSDT");
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, r#"{"symbol":"BTCUSDT","old":1,"overrides":{"max_leverage":5.0}}"#).unwrap();
        h.set_snapshot(DataKind::Profiles, "BTCUSDT", &serde_json::json!({"symbol": "BTCUSDT", "new": 2}))
            .await
            .unwrap();
        // Other snapshot kinds are written exactly as given.
        let other = paths.snapshot_file(DataKind::Metrics, "BTCUSDT");
        std::fs::create_dir_all(other.parent().unwrap()).unwrap();
        std::fs::write(&other, r#"{"overrides":{"x":1}}"#).unwrap();
        h.set_snapshot(DataKind::Metrics, "BTCUSDT", &serde_json::json!({"y": 2})).await.unwrap();
        store.shutdown().await;
        let kept: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        assert_eq!(kept, serde_json::json!({"symbol": "BTCUSDT", "new": 2, "overrides": {"max_leverage": 5.0}}));
        let plain: serde_json::Value = serde_json::from_slice(&std::fs::read(&other).unwrap()).unwrap();
        assert_eq!(plain, serde_json::json!({"y": 2}));
    }

    #[tokio::test]
    async fn appends_group_by_kind_symbol_hour_and_snapshots_are_whole() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::with_data_dir(dir.path());
        let m = Arc::new(Metrics::new());
        let store = Store::start(paths.clone(), 16, 4, m.clone());
        let h = store.handle();
        let btc = Symbol::new("BTCUSDT");
        for i in 0..10 {
            h.append(DataKind::Events, Some(&btc), 1_795_525_500_000 + i * 1000, &serde_json::json!({"i": i}))
                .await
                .unwrap();
        }
        h.append(DataKind::Events, Some(&btc), 1_795_529_100_000, &serde_json::json!({"i": 99})).await.unwrap();
        h.set_snapshot(DataKind::Metrics, "BTCUSDT", &serde_json::json!({"x": 1})).await.unwrap();
        assert!(matches!(
            h.try_append(DataKind::Events, Some(&Symbol::new("../x")), 0, &1),
            Err(StoreError::InvalidName(_))
        ));
        store.shutdown().await;
        let (v, bad) = read_jsonl(&paths.hourly_file(DataKind::Events, Some(&btc), "2026-11-24T13")).unwrap();
        assert_eq!(bad, 0);
        assert_eq!(v.len(), 10);
        assert_eq!(v[3]["i"], 3);
        let (v, _) = read_jsonl(&paths.hourly_file(DataKind::Events, Some(&btc), "2026-11-24T14")).unwrap();
        assert_eq!(v.len(), 1);
        let snap: serde_json::Value =
            serde_json::from_slice(&std::fs::read(paths.snapshot_file(DataKind::Metrics, "BTCUSDT")).unwrap()).unwrap();
        assert_eq!(snap["x"], 1);
        assert_eq!(m.storage_writes.with_label_values(&["events"]).get(), 11);
    }

    #[tokio::test]
    async fn torn_tail_is_repaired_before_appending() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::with_data_dir(dir.path());
        let file = paths.hourly_file(DataKind::Events, None, "2026-11-24T13");
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, b"{\"a\":1}\n{\"a\":2}\n{\"a\":").unwrap();
        let (v, bad) = read_jsonl(&file).unwrap();
        assert_eq!((v.len(), bad), (2, 1));
        let store = Store::start(paths.clone(), 16, 4, Arc::new(Metrics::new()));
        store.handle().append(DataKind::Events, None, 1_795_525_500_000, &serde_json::json!({"a": 3})).await.unwrap();
        store.shutdown().await;
        let (v, bad) = read_jsonl(&file).unwrap();
        assert_eq!(bad, 0);
        assert_eq!(v.iter().map(|x| x["a"].as_i64().unwrap()).collect::<Vec<_>>(), vec![1, 2, 3]);
    }

    #[tokio::test]
    async fn full_queue_refuses_and_counts_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let m = Arc::new(Metrics::new());
        // A writer that never runs: build the handle by hand with a tiny queue.
        let (tx, _rx) = mpsc::channel(2);
        let (_htx, health) = watch::channel(StoreHealth { up: true, detail: String::new() });
        let h = StoreHandle { tx, metrics: m.clone(), paths: Paths::with_data_dir(dir.path()), health };
        assert!(h.try_append(DataKind::Raw, None, 0, &1).is_ok());
        assert!(h.try_append(DataKind::Raw, None, 0, &2).is_ok());
        assert!(matches!(h.try_append(DataKind::Raw, None, 0, &3), Err(StoreError::QueueFull)));
        assert_eq!(m.storage_dropped.with_label_values(&["raw"]).get(), 1);
    }

    /// Waits (bounded) until the store's health is `up`.
    async fn wait_health(h: &StoreHandle, up: bool) -> StoreHealth {
        let mut rx = h.health();
        let r = tokio::time::timeout(Duration::from_secs(5), rx.wait_for(|s| s.up == up)).await;
        let seen = r.expect("health flips in time").expect("health channel open").clone();
        #[allow(clippy::let_and_return)] // the Ref borrowing `rx` must be dropped before `rx`
        seen
    }

    #[tokio::test]
    async fn a_full_disk_turns_storage_down_and_recovery_turns_it_up() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::with_data_dir(dir.path());
        // The events file of hour 0 is /dev/full: every write to it fails with ENOSPC.
        let file = paths.hourly_file(DataKind::Events, None, "1970-01-01T00");
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink("/dev/full", &file).unwrap();
        let m = Arc::new(Metrics::new());
        let store = Store::start(paths.clone(), 16, 4, m.clone());
        let h = store.handle();
        assert!(h.health().borrow().up);
        assert_eq!(m.storage_up.get(), 1);
        h.append(DataKind::Events, None, 0, &1).await.unwrap();
        h.flush().await;
        let down = wait_health(&h, false).await;
        assert!(down.detail.contains("No space left"), "{}", down.detail);
        assert_eq!(m.storage_up.get(), 0);
        assert_eq!(m.storage_write_failures.with_label_values(&["events"]).get(), 1);

        // Room again: once the last failure is RECOVER_AFTER old, a successful write (here the
        // probe the runtime sends while DOWN) turns the store UP.
        std::fs::remove_file(&file).unwrap();
        tokio::time::sleep(RECOVER_AFTER + Duration::from_millis(100)).await;
        assert!(h.probe());
        h.flush().await;
        let up = wait_health(&h, true).await;
        assert_eq!(up.detail, "writes succeed");
        assert_eq!(m.storage_up.get(), 1);
        assert!(paths.snapshot_file(DataKind::System, PROBE_NAME).exists());
        store.shutdown().await;
    }

    #[tokio::test]
    async fn a_dead_writer_turns_storage_down() {
        let dir = tempfile::tempdir().unwrap();
        let m = Arc::new(Metrics::new());
        let store = Store::start(Paths::with_data_dir(dir.path()), 16, 4, m.clone());
        let h = store.handle();
        assert!(h.inject_writer_panic());
        let down = wait_health(&h, false).await;
        assert!(down.detail.contains("died"), "{}", down.detail);
        assert_eq!(m.storage_up.get(), 0);
        // Records are refused, not silently queued forever.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(matches!(h.try_append(DataKind::Events, None, 0, &1), Err(StoreError::Closed)));
    }

    #[test]
    fn absurd_sizes_do_not_kill_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let m = Arc::new(Metrics::new());
        let store = Store::start(Paths::with_data_dir(dir.path()), usize::MAX, i64::MAX as usize, m.clone());
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            store.handle().append(DataKind::Events, None, 0, &1).await.unwrap();
            store.handle().flush().await;
            assert!(store.handle().health().borrow().up);
            assert_eq!(m.storage_writes.with_label_values(&["events"]).get(), 1);
            store.shutdown().await;
        });
    }
    #[tokio::test]
    async fn write_failure_is_counted_and_the_writer_keeps_going() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::with_data_dir(dir.path());
        // Make the events kind directory a *file*, so creating symbol dirs under it fails.
        std::fs::write(paths.kind_dir(DataKind::Events), b"not a dir").unwrap();
        let m = Arc::new(Metrics::new());
        let store = Store::start(paths.clone(), 16, 4, m.clone());
        let h = store.handle();
        h.append(DataKind::Events, None, 0, &1).await.unwrap();
        h.append(DataKind::Orderbook, None, 0, &2).await.unwrap();
        store.shutdown().await;
        assert_eq!(m.storage_write_failures.with_label_values(&["events"]).get(), 1);
        assert_eq!(m.storage_writes.with_label_values(&["orderbook"]).get(), 1);
        let (v, _) = read_jsonl(&paths.hourly_file(DataKind::Orderbook, None, "1970-01-01T00")).unwrap();
        assert_eq!(v.len(), 1);
    }
}
