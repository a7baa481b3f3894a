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
//! `<hour>.jsonl.zst` segments of independent zstd frames ([`crate::storage::segment`]): its lines
//! are gathered into a frame of up to [`segment::FRAME_TARGET_BYTES`] or [`segment::FRAME_MAX_AGE`]
//! and each frame is appended in one write; a flush or shutdown writes the frame at once. A crash
//! tears at most the last frame, which the writer cuts before appending and readers skip.
//!
//! The writer's health is published on a `watch` channel ([`StoreHandle::health`]) and in
//! `scalper_storage_up`: DOWN at the first failed write, flush or fsync, or when the writer
//! thread is gone (panicked, exited); UP again once a batch is written without error and the last
//! failure is [`RECOVER_AFTER`] old. While DOWN, [`StoreHandle::probe`] retries a small
//! atomic write so that recovery is seen even when nothing else is written.

use crate::config::paths::{DataKind, Paths};
use crate::domain::{Symbol, TimeMs};
use crate::monitoring::metrics::Metrics;
use crate::storage::segment;
use serde::Serialize;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
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
    /// Starts the writer thread.
    /// `capacity` and `batch_max` are clamped to what the configuration accepts, so an absurd
    /// value cannot kill the writer.
    pub fn start(paths: Paths, capacity: usize, batch_max: usize, metrics: Arc<Metrics>) -> Store {
        let max = crate::config::MAX_QUEUE_CAPACITY as usize;
        let (tx, rx) = mpsc::channel(capacity.clamp(1, max));
        let (htx, hrx) = watch::channel(StoreHealth { up: true, detail: "writer running".into() });
        let health = Arc::new(htx);
        metrics.storage_up.set(1);
        let writer = Writer {
            paths: paths.clone(),
            metrics: metrics.clone(),
            open: HashMap::new(),
            frames: HashMap::new(),
            batch_max: batch_max.clamp(1, 65_536),
            health: health.clone(),
            last_failure: None,
            recover_after: RECOVER_AFTER,
            last_up: None,
            errors: ErrorLog::default(),
        };
        let guard = DeadMan { health: health.clone(), metrics: metrics.clone(), clean: false };
        let thread = std::thread::Builder::new()
            .name("scalper-store".into())
            .spawn(move || {
                let mut guard = guard;
                writer.run(rx);
                guard.clean = true;
            })
            .map_err(|e| {
                tracing::error!(error = %e, "cannot start the store writer thread");
                set_health(&health, &metrics, false, format!("writer thread could not start: {e}"));
            })
            .ok();
        Store { handle: StoreHandle { tx, metrics, paths, health: hrx }, thread }
    }

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

struct Writer {
    paths: Paths,
    metrics: Arc<Metrics>,
    /// Open append handles by file; only the current hour's files stay open.
    open: HashMap<PathBuf, File>,
    /// Lines of compressed segments waiting for their frame, by file.
    frames: HashMap<PathBuf, PendingFrame>,
    batch_max: usize,
    health: Arc<watch::Sender<StoreHealth>>,
    /// When the last write failed (none yet: `None`).
    last_failure: Option<Instant>,
    /// Failure-free time needed to turn UP again (grows while the store flaps).
    recover_after: Duration,
    /// When the store last turned UP after being DOWN.
    last_up: Option<Instant>,
    errors: ErrorLog,
}

/// Publishes a health flip (no-op when the state is unchanged) and keeps `scalper_storage_up`.
fn set_health(tx: &watch::Sender<StoreHealth>, metrics: &Metrics, up: bool, detail: String) -> bool {
    metrics.storage_up.set(i64::from(up));
    tx.send_if_modified(|h| {
        if h.up == up {
            return false;
        }
        *h = StoreHealth { up, detail };
        true
    })
}

/// Marks the store DOWN when the writer thread ends without a clean shutdown (a panic unwinds
/// through it).
struct DeadMan {
    health: Arc<watch::Sender<StoreHealth>>,
    metrics: Arc<Metrics>,
    clean: bool,
}

impl Drop for DeadMan {
    fn drop(&mut self) {
        let why = if self.clean { "writer stopped" } else { "writer thread died (panicked)" };
        if !self.clean {
            tracing::error!("{why}: nothing is written any more; storage DOWN");
        }
        self.metrics.storage_up.set(0);
        self.health.send_replace(StoreHealth { up: false, detail: why.into() });
    }
}

/// Rate limit of the writer's error lines.
#[derive(Default)]
struct ErrorLog {
    last: Option<Instant>,
    suppressed: u64,
}

impl ErrorLog {
    /// Calls `log` with the number of errors not logged since the last line, at most once per
    /// [`ERROR_LOG_EVERY`]; otherwise counts the error as suppressed.
    fn error(&mut self, log: impl FnOnce(u64)) {
        let now = Instant::now();
        if self.last.is_some_and(|t| now.duration_since(t) < ERROR_LOG_EVERY) {
            self.suppressed += 1;
            return;
        }
        self.last = Some(now);
        log(std::mem::take(&mut self.suppressed));
    }
}

/// Lines gathered for the next frame of a compressed segment.
struct PendingFrame {
    kind: DataKind,
    buf: Vec<u8>,
    lines: u64,
    /// When the first line arrived (the frame is written [`segment::FRAME_MAX_AGE`] later).
    since: Instant,
}

impl Writer {
    /// Next command; while frames wait, gives up at the oldest frame's deadline (`Err(())`) so
    /// that it is written even when nothing else arrives. `Ok(None)`: the queue is closed.
    fn recv(&self, rx: &mut mpsc::Receiver<Cmd>, rt: Option<&tokio::runtime::Runtime>) -> Result<Option<Cmd>, ()> {
        let oldest = self.frames.values().map(|f| f.since).min();
        match (oldest, rt) {
            (Some(t), Some(rt)) => {
                let wait = (t + segment::FRAME_MAX_AGE).saturating_duration_since(Instant::now());
                // The timer must be created inside the runtime (it needs its time driver).
                rt.block_on(async { tokio::time::timeout(wait, rx.recv()).await }).map_err(|_| ())
            }
            _ => Ok(rx.blocking_recv()),
        }
    }

    fn run(mut self, mut rx: mpsc::Receiver<Cmd>) {
        let mut batch: Vec<Cmd> = Vec::with_capacity(self.batch_max);
        let mut stop = false;
        // A timer for the frame deadline; without one, frames wait for the next command (the
        // core's one-second timer is recorded, so one comes every second anyway).
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().ok();
        while !stop {
            let first = match self.recv(&mut rx, rt.as_ref()) {
                Ok(Some(c)) => c,
                Ok(None) => break,
                Err(()) => {
                    let mut outcome = BatchOutcome::default();
                    self.write_frames(false, &mut outcome);
                    self.update_health(outcome);
                    continue;
                }
            };
            batch.push(first);
            while batch.len() < self.batch_max {
                match rx.try_recv() {
                    Ok(c) => batch.push(c),
                    Err(_) => break,
                }
            }
            if let Some(i) = batch.iter().position(|c| matches!(c, Cmd::Shutdown)) {
                batch.remove(i);
                stop = true;
            }
            self.metrics.storage_queue_depth.set(rx.len() as i64);
            self.write_batch(&mut batch);
        }
        rx.close();
        // Anything that raced in after Shutdown is still written: nothing acknowledged is lost.
        while let Ok(c) = rx.try_recv() {
            batch.push(c);
        }
        if !batch.is_empty() {
            self.write_batch(&mut batch);
        }
        let mut outcome = BatchOutcome::default();
        self.write_frames(true, &mut outcome);
        self.update_health(outcome);
        self.open.clear();
    }

    fn write_batch(&mut self, batch: &mut Vec<Cmd>) {
        // Group appends per file, keeping order within each file; flush acks after everything
        // before them has been written.
        let mut pending: Vec<(PathBuf, DataKind, String)> = Vec::new();
        let mut acks = Vec::new();
        let mut outcome = BatchOutcome::default();
        for cmd in batch.drain(..) {
            match cmd {
                Cmd::Append { kind, symbol, hour, mut line } => {
                    line.push('\n');
                    let path = segment::stream_file(&self.paths, kind, symbol.as_ref(), &hour);
                    match pending.iter_mut().find(|(p, _, _)| *p == path) {
                        Some((_, _, buf)) => buf.push_str(&line),
                        None => pending.push((path, kind, line)),
                    }
                }
                Cmd::Snapshot { kind, name, json } => {
                    let path = self.paths.snapshot_file(kind, &name);
                    self.snapshot(kind, &path, json.as_bytes(), &mut outcome);
                }
                Cmd::Probe => {
                    let path = self.paths.snapshot_file(DataKind::System, PROBE_NAME);
                    let body = format!("{{\"probe_pid\": {}}}\n", std::process::id());
                    self.snapshot(DataKind::System, &path, body.as_bytes(), &mut outcome);
                }
                Cmd::Flush(tx) => {
                    self.write_pending(&mut pending, &mut outcome);
                    self.write_frames(true, &mut outcome);
                    acks.push(tx);
                }
                Cmd::Panic => panic!("injected store writer panic"),
                Cmd::Shutdown => {}
            }
        }
        self.write_pending(&mut pending, &mut outcome);
        self.write_frames(false, &mut outcome);
        for a in acks {
            let _ = a.send(());
        }
        self.update_health(outcome);
    }

    fn snapshot(&mut self, kind: DataKind, path: &Path, bytes: &[u8], outcome: &mut BatchOutcome) {
        match write_atomic(path, bytes) {
            Ok(()) => {
                outcome.wrote = true;
                self.metrics.storage_writes.with_label_values(&[kind.dir_name()]).inc();
            }
            Err(e) => {
                self.metrics.storage_write_failures.with_label_values(&[kind.dir_name()]).inc();
                outcome.fail(format!("{}: {e}", path.display()));
                self.errors.error(|suppressed| {
                    tracing::error!(path = %path.display(), error = %e, suppressed, "snapshot write failed");
                });
            }
        }
    }

    /// Flips the health after a batch: DOWN at once on a failure, UP on a clean batch once the
    /// last failure is [`RECOVER_AFTER`] old.
    fn update_health(&mut self, outcome: BatchOutcome) {
        if let Some(err) = outcome.first_error {
            let now = Instant::now();
            self.last_failure = Some(now);
            if set_health(&self.health, &self.metrics, false, format!("writes failing: {err}")) {
                self.recover_after = match self.last_up {
                    Some(t) if now.duration_since(t) < FLAP_WINDOW => (self.recover_after * 2).min(RECOVER_AFTER_MAX),
                    _ => RECOVER_AFTER,
                };
                tracing::error!(error = %err, recover_after_s = self.recover_after.as_secs(),
                    "storage DOWN: writes fail; no new entries until they succeed again");
            }
        } else if outcome.wrote
            && self.last_failure.is_none_or(|t| t.elapsed() >= self.recover_after)
            && set_health(&self.health, &self.metrics, true, "writes succeed".into())
        {
            self.last_up = Some(Instant::now());
            tracing::warn!(
                suppressed_errors = std::mem::take(&mut self.errors.suppressed),
                "storage UP again: writes succeed"
            );
        }
    }

    fn write_pending(&mut self, pending: &mut Vec<(PathBuf, DataKind, String)>, outcome: &mut BatchOutcome) {
        for (path, kind, buf) in pending.drain(..) {
            let lines = buf.bytes().filter(|b| *b == b'\n').count() as u64;
            if segment::is_compressed(kind) {
                self.gather(path, kind, buf, lines, outcome);
                continue;
            }
            self.write_lines(path, kind, buf.as_bytes(), lines, outcome);
        }
    }

    /// Adds lines to the pending frame of a compressed segment, writing it once it is big enough.
    /// A new file in a directory first ends the frames of that directory's other files (the
    /// previous hour), so every hour's file is complete once the next one starts.
    fn gather(&mut self, path: PathBuf, kind: DataKind, buf: String, lines: u64, outcome: &mut BatchOutcome) {
        if !self.frames.contains_key(&path) {
            let others: Vec<PathBuf> =
                self.frames.keys().filter(|p| p.parent() == path.parent() && **p != path).cloned().collect();
            for p in others {
                self.write_frame(&p, outcome);
            }
        }
        let f = self.frames.entry(path.clone()).or_insert_with(|| PendingFrame {
            kind,
            buf: Vec::with_capacity(segment::FRAME_TARGET_BYTES + (64 << 10)),
            lines: 0,
            since: Instant::now(),
        });
        f.buf.extend_from_slice(buf.as_bytes());
        f.lines += lines;
        if f.buf.len() >= segment::FRAME_TARGET_BYTES {
            self.write_frame(&path, outcome);
        }
    }

    /// Writes the pending frames that are due ([`segment::FRAME_MAX_AGE`] old), or all of them.
    fn write_frames(&mut self, all: bool, outcome: &mut BatchOutcome) {
        let due: Vec<PathBuf> = self
            .frames
            .iter()
            .filter(|(_, f)| all || f.since.elapsed() >= segment::FRAME_MAX_AGE)
            .map(|(p, _)| p.clone())
            .collect();
        for p in due {
            self.write_frame(&p, outcome);
        }
    }

    /// Compresses a pending frame and appends it in one write.
    fn write_frame(&mut self, path: &Path, outcome: &mut BatchOutcome) {
        let Some(f) = self.frames.remove(path) else { return };
        match segment::compress_frame(&f.buf) {
            Ok(z) => self.write_lines(path.to_path_buf(), f.kind, &z, f.lines, outcome),
            Err(e) => {
                self.metrics.storage_write_failures.with_label_values(&[f.kind.dir_name()]).inc_by(f.lines);
                outcome.fail(format!("{}: zstd: {e}", path.display()));
            }
        }
    }

    /// Appends bytes holding `lines` records to `path`, counting the outcome.
    fn write_lines(&mut self, path: PathBuf, kind: DataKind, bytes: &[u8], lines: u64, outcome: &mut BatchOutcome) {
        match self.append_to(&path, bytes) {
            Ok(()) => {
                outcome.wrote = true;
                self.metrics.storage_writes.with_label_values(&[kind.dir_name()]).inc_by(lines)
            }
            Err(e) => {
                // Drop the handle: the next append reopens and repairs a torn tail.
                self.open.remove(&path);
                self.metrics.storage_write_failures.with_label_values(&[kind.dir_name()]).inc_by(lines);
                outcome.fail(format!("{}: {e}", path.display()));
                self.errors.error(|suppressed| {
                    tracing::error!(path = %path.display(), error = %e, lines, suppressed, "JSONL append failed; records lost");
                });
            }
        }
    }

    fn append_to(&mut self, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
        if !self.open.contains_key(path) {
            // Close files of other hours in the same directory: only current files stay open.
            if let Some(dir) = path.parent() {
                self.open.retain(|p, _| p.parent() != Some(dir));
            }
            if self.open.len() > 4096 {
                self.open.clear();
            }
            let f = open_for_append(path)?;
            self.open.insert(path.to_path_buf(), f);
        }
        let f = self.open.get_mut(path).ok_or_else(|| std::io::Error::other("handle vanished"))?;
        f.write_all(bytes)
    }
}

/// What one batch did, for the health.
#[derive(Default)]
struct BatchOutcome {
    wrote: bool,
    first_error: Option<String>,
}

impl BatchOutcome {
    fn fail(&mut self, err: String) {
        self.first_error.get_or_insert(err);
    }
}

/// Opens a JSONL file for appending, creating directories, and truncates a torn last line left by
/// a crash so that every line in the file is whole.
fn open_for_append(path: &Path) -> std::io::Result<File> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = OpenOptions::new().create(true).read(true).append(true).open(path)?;
    let len = f.metadata()?.len();
    if len > 0 && segment::is_zst_path(path) {
        let keep = segment::complete_frames_len(&mut f, len)?;
        if keep < len {
            tracing::warn!(path = %path.display(), torn_bytes = len - keep, "cutting a torn zstd frame left by a crash");
            f.set_len(keep)?;
        }
    } else if len > 0 {
        let mut last = [0u8; 1];
        f.seek(SeekFrom::Start(len - 1))?;
        f.read_exact(&mut last)?;
        if last[0] != b'\n' {
            let keep = whole_lines_len(&mut f, len)?;
            tracing::warn!(path = %path.display(), torn_bytes = len - keep, "repairing torn JSONL tail left by a crash");
            f.set_len(keep)?;
        }
    }
    Ok(f)
}

/// Length of the prefix of the file that ends with its last newline.
fn whole_lines_len(f: &mut File, len: u64) -> std::io::Result<u64> {
    let mut pos = len;
    let mut buf = vec![0u8; 8192];
    while pos > 0 {
        let n = (pos.min(buf.len() as u64)) as usize;
        pos -= n as u64;
        f.seek(SeekFrom::Start(pos))?;
        f.read_exact(&mut buf[..n])?;
        if let Some(i) = buf[..n].iter().rposition(|b| *b == b'\n') {
            return Ok(pos + i as u64 + 1);
        }
    }
    Ok(0)
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

    #[test]
    fn a_flapping_store_waits_longer_before_it_is_up_again() {
        let dir = tempfile::tempdir().unwrap();
        let (htx, hrx) = watch::channel(StoreHealth { up: true, detail: String::new() });
        let mut w = Writer {
            paths: Paths::with_data_dir(dir.path()),
            metrics: Arc::new(Metrics::new()),
            open: HashMap::new(),
            frames: HashMap::new(),
            batch_max: 4,
            health: Arc::new(htx),
            last_failure: None,
            recover_after: RECOVER_AFTER,
            last_up: None,
            errors: ErrorLog::default(),
        };
        let fail = || BatchOutcome { wrote: false, first_error: Some("ENOSPC".into()) };
        let ok = || BatchOutcome { wrote: true, first_error: None };
        let ago = |d: Duration| Some(Instant::now() - d);
        w.update_health(fail());
        assert!(!hrx.borrow().up);
        w.update_health(ok());
        assert!(!hrx.borrow().up, "a success right after a failure is not enough");
        w.last_failure = ago(RECOVER_AFTER);
        w.update_health(ok());
        assert!(hrx.borrow().up);
        // DOWN again soon after: the next recovery needs twice as long.
        w.update_health(fail());
        assert_eq!(w.recover_after, 2 * RECOVER_AFTER);
        w.last_failure = ago(RECOVER_AFTER);
        w.update_health(ok());
        assert!(!hrx.borrow().up, "a flapping store stays DOWN longer");
        w.last_failure = ago(2 * RECOVER_AFTER);
        w.update_health(ok());
        assert!(hrx.borrow().up);
    }

    #[test]
    fn error_lines_are_rate_limited_with_a_count_of_the_suppressed() {
        let mut log = ErrorLog::default();
        let mut lines = Vec::new();
        for _ in 0..1_000 {
            log.error(|suppressed| lines.push(suppressed));
        }
        assert_eq!(lines, vec![0], "one line for a burst");
        assert_eq!(log.suppressed, 999);
        log.last = Some(Instant::now() - ERROR_LOG_EVERY);
        log.error(|suppressed| lines.push(suppressed));
        assert_eq!(lines, vec![0, 999], "the next line says how many were not logged");
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
