//! The store's writer thread: [`Store::start`] spawns it; it batches the queued commands,
//! appends lines per file (repairing a torn tail first), gathers the compressed segments' frames,
//! writes snapshots atomically and publishes the health. Separate from the handle side
//! (queueing, naming, reading) because nothing here runs on a producer's thread.

use super::{
    segment, write_atomic, Cmd, Store, StoreHandle, StoreHealth, ERROR_LOG_EVERY, FLAP_WINDOW, PROBE_NAME,
    RECOVER_AFTER, RECOVER_AFTER_MAX,
};
use scalper_control::monitoring::metrics::Metrics;
use scalper_core::config::paths::{DataKind, Paths};
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

impl Store {
    /// Starts the writer thread.
    /// `capacity` and `batch_max` are clamped to what the configuration accepts, so an absurd
    /// value cannot kill the writer.
    pub fn start(paths: Paths, capacity: usize, batch_max: usize, metrics: Arc<Metrics>) -> Store {
        let max = scalper_core::config::MAX_QUEUE_CAPACITY as usize;
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
                    let json = if kind == DataKind::Profiles { keep_profile_overrides(&path, json) } else { json };
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

/// A profile file also holds the operator's `overrides`: the core rewrites the rest of it, so the
/// writer carries the file's `overrides` over into the new body (here, off the core loop, because
/// it reads the old file). A body or file that is not a JSON object is written as it came.
fn keep_profile_overrides(path: &Path, json: String) -> String {
    let Ok(bytes) = std::fs::read(path) else { return json };
    let Ok(old) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        tracing::warn!(path = %path.display(), "profile file is not JSON; its overrides cannot be kept");
        return json;
    };
    let Some(overrides) = old.get("overrides") else { return json };
    let Ok(mut body) = serde_json::from_str::<serde_json::Value>(&json) else { return json };
    let Some(map) = body.as_object_mut() else { return json };
    map.insert("overrides".into(), overrides.clone());
    serde_json::to_string_pretty(&body).unwrap_or(json)
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
