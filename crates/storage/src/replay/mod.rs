//! Replay: feed a recorded input stream back into a fresh core and write its decision log.
//!
//! * A *recording* is the JSONL written by [`crate::recorder::Recorder`] under
//!   `<data>/raw/_global/<YYYY-MM-DDTHH>.jsonl.zst` (zstd frames, see [`crate::segment`];
//!   plain `.jsonl` files are read too): one [`Event`] per line, each run starting with a
//!   `seq: 0` `ConfigReload` header that carries the configuration the run's core was built with.
//! * [`RecordingReader`] streams a period of a recording in `seq` order (a small reorder buffer
//!   absorbs lines that landed in the next hour's file), splits it into runs and resolves the
//!   configuration in force at the start of the period.
//! * [`replay`] builds a fresh `Engine<CorePipeline, FrozenClock>` per run and writes every
//!   [`Output`] to a [`DecisionLog`], whose SHA-256 identifies the decisions: two replays of the
//!   same recording give byte-identical logs.
//! * [`backtest`] turns the outputs into a trade report ([`report_html`] draws it as an HTML page
//!   with charts); [`import`] converts public Bybit dumps into recordings.

pub mod backtest;
pub mod evaluate;
pub mod import;
pub mod inject;
pub mod parallel;
pub mod projection;
mod reader;
pub mod report_html;
mod writer;

pub use reader::{recording_files, ReaderStats, RecordingReader, ReplayItem, RunStart, REORDER_WINDOW};
pub use writer::RecordingWriter;

use scalper_core::config::paths::Paths;
use scalper_core::config::Config;
use scalper_core::domain::TimeMs;
use scalper_core::engine::clock::FrozenClock;
use scalper_core::engine::core::CorePipeline;
use scalper_core::engine::event::{Event, EventKind};
use scalper_core::engine::output::{Output, Outputs};
use scalper_core::engine::{DegradedPolicy, Engine};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

/// What can go wrong while reading or replaying a recording.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// A file could not be read or listed.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A `--from` / `--to` value is not RFC 3339.
    #[error("bad time {0:?}: expected RFC 3339, e.g. 2026-01-01T00:00:00Z")]
    BadTime(String),
    /// `--from` is not before `--to`.
    #[error("empty period: from {from} is not before to {to}")]
    EmptyPeriod {
        /// Start, ms.
        from: TimeMs,
        /// End, ms.
        to: TimeMs,
    },
    /// No recorded file under the directory.
    #[error("no recording under {0} (expected raw/_global/<YYYY-MM-DDTHH>.jsonl.zst or .jsonl)")]
    NoRecording(PathBuf),
    /// The decision log could not be written.
    #[error("cannot write the decision log: {0}")]
    Write(#[source] std::io::Error),
    /// A replay thread (decoding or a `--jobs` worker) could not start or stopped early.
    #[error("replay thread: {0}")]
    Thread(String),
}

/// A recorded period: `[from, to)` on the events' receive time; `None` = unbounded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Period {
    /// Inclusive start, ms.
    pub from_ms: Option<TimeMs>,
    /// Exclusive end, ms.
    pub to_ms: Option<TimeMs>,
}

/// Parses an RFC 3339 time (`2026-01-01T00:00:00Z`, offsets allowed) into epoch ms.
pub fn parse_time(s: &str) -> Result<TimeMs, ReplayError> {
    chrono::DateTime::parse_from_rfc3339(s.trim())
        .map(|t| t.timestamp_millis())
        .map_err(|_| ReplayError::BadTime(s.to_string()))
}

impl Period {
    /// The whole recording.
    pub fn all() -> Period {
        Period::default()
    }
    /// From optional RFC 3339 bounds.
    pub fn parse(from: Option<&str>, to: Option<&str>) -> Result<Period, ReplayError> {
        let p = Period { from_ms: from.map(parse_time).transpose()?, to_ms: to.map(parse_time).transpose()? };
        if let (Some(f), Some(t)) = (p.from_ms, p.to_ms) {
            if f >= t {
                return Err(ReplayError::EmptyPeriod { from: f, to: t });
            }
        }
        Ok(p)
    }
    /// True when `t` is inside.
    pub fn contains(&self, t: TimeMs) -> bool {
        self.from_ms.is_none_or(|f| t >= f) && self.to_ms.is_none_or(|e| t < e)
    }
    fn before(&self, t: TimeMs) -> bool {
        self.from_ms.is_some_and(|f| t < f)
    }
    fn after(&self, t: TimeMs) -> bool {
        self.to_ms.is_some_and(|e| t >= e)
    }
}
/// One line of the decision log.
#[derive(Serialize)]
struct DecisionLine<'a> {
    seq: u64,
    recv_ms: TimeMs,
    output: &'a Output,
}

/// The decision log: every output of every event as one JSON line
/// `{"seq":…,"recv_ms":…,"output":…}`, hashed (SHA-256) as it is written.
pub struct DecisionLog<W: Write> {
    w: W,
    hasher: Sha256,
    lines: u64,
    buf: Vec<u8>,
}

impl<W: Write> DecisionLog<W> {
    /// A log writing to `w`.
    pub fn new(w: W) -> Self {
        DecisionLog { w, hasher: Sha256::new(), lines: 0, buf: Vec::with_capacity(4096) }
    }

    /// Appends the outputs of one event.
    pub fn write(&mut self, ev: &Event, out: &Outputs) -> std::io::Result<()> {
        for o in &out.items {
            self.buf.clear();
            serde_json::to_writer(&mut self.buf, &DecisionLine { seq: ev.seq, recv_ms: ev.now_ms(), output: o })
                .map_err(std::io::Error::other)?;
            self.buf.push(b'\n');
            self.hasher.update(&self.buf);
            self.w.write_all(&self.buf)?;
            self.lines += 1;
        }
        Ok(())
    }

    /// Lines written.
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// Appends a decision log written elsewhere (a `--jobs` chunk), byte for byte: the hash and
    /// line count are those of writing its lines here.
    pub fn append_raw(&mut self, mut r: impl std::io::Read) -> std::io::Result<()> {
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = match r.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            let b = &buf[..n];
            self.hasher.update(b);
            self.w.write_all(b)?;
            self.lines += b.iter().filter(|&&c| c == b'\n').count() as u64;
        }
    }

    /// Hex SHA-256 of everything written so far.
    pub fn sha256_hex(&self) -> String {
        hex::encode(self.hasher.clone().finalize())
    }

    /// Flushes; returns the writer and the hex SHA-256.
    pub fn finish(mut self) -> std::io::Result<(W, String)> {
        self.w.flush()?;
        let h = hex::encode(self.hasher.finalize());
        Ok((self.w, h))
    }
}

/// The two items read ahead of the one being replayed, so that the core can prefetch the
/// state of the events behind it ([`Engine::on_event_ahead`]); outputs are the same as without.
/// The caller keeps its source (for its counters and recycling) and passes it to each step.
pub struct ReadAhead<T> {
    ahead: [Option<T>; 2],
}

impl<E> ReadAhead<Result<ReplayItem, E>> {
    /// Reads the first two items of `src`.
    pub fn start<I: Iterator<Item = Result<ReplayItem, E>> + ?Sized>(src: &mut I) -> Self {
        let first = src.next();
        ReadAhead { ahead: [first, src.next()] }
    }

    /// The next item to replay (reading one more item into the look-ahead).
    pub fn next_item<I>(&mut self, src: &mut I) -> Option<Result<ReplayItem, E>>
    where
        I: Iterator<Item = Result<ReplayItem, E>> + ?Sized,
    {
        let item = self.ahead[0].take()?;
        self.ahead[0] = self.ahead[1].take();
        self.ahead[1] = src.next();
        Some(item)
    }

    /// The events among the items read ahead, next first (what `on_event_ahead` is given).
    pub fn events(&self) -> [Option<&Event>; 2] {
        fn event<E>(i: &Option<Result<ReplayItem, E>>) -> Option<&Event> {
            match i {
                Some(Ok(ReplayItem::Event(ev))) => Some(ev),
                _ => None,
            }
        }
        [event(&self.ahead[0]), event(&self.ahead[1])]
    }
}

/// A fresh core for replay: the real pipeline, a frozen latency clock (DEGRADED never triggers).
pub fn replay_engine(cfg: Arc<Config>) -> Engine<CorePipeline, FrozenClock> {
    let policy = DegradedPolicy::from_config(&cfg.engine);
    Engine::new(CorePipeline::new(cfg), FrozenClock, policy)
}

/// How fast to replay.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pace {
    /// As fast as possible.
    Max,
    /// Paced by recorded receive time, `N` times real time.
    Speed(f64),
}

/// Where a run's configuration came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConfigSource {
    /// Given by the caller (`--config`).
    Override,
    /// The run header / a reload recorded before the period.
    Recorded,
    /// The run's first replayed event was a `ConfigReload`.
    FirstReload,
    /// Nothing recorded: defaults.
    Default,
}

/// Replay options.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// Period to replay.
    pub period: Period,
    /// Configuration that replaces the recorded one.
    pub config: Option<Arc<Config>>,
    pub pace: Pace,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions { period: Period::all(), config: None, pace: Pace::Max }
    }
}

/// Result of a replay.
#[derive(Debug, Clone, Serialize)]
pub struct ReplaySummary {
    /// Events fed to the core.
    pub events: u64,
    /// Decision-log lines.
    pub outputs: u64,
    /// Receive time of the first and last replayed event.
    pub first_ms: Option<TimeMs>,
    /// See `first_ms`.
    pub last_ms: Option<TimeMs>,
    /// Where each run's configuration came from.
    pub configs: Vec<ConfigSource>,
    /// Reader counters (gaps, bad lines…).
    pub reader: ReaderStats,
    /// SHA-256 of the decision log.
    pub sha256: String,
}

/// Paces replay by recorded receive time (reads the wall clock: an edge, never the core).
struct Pacer {
    speed: f64,
    origin: Option<(std::time::Instant, TimeMs)>,
}

impl Pacer {
    fn wait(&mut self, recv_ms: TimeMs) {
        let (t0, r0) = *self.origin.get_or_insert((std::time::Instant::now(), recv_ms));
        let due_ms = (recv_ms - r0).max(0) as f64 / self.speed;
        let due = t0 + std::time::Duration::from_secs_f64(due_ms / 1000.0);
        let now = std::time::Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
    }
}

/// Something that sees every replayed event with its outputs (backtest collectors, progress).
pub trait ReplayObserver {
    /// Called after the core processed `ev`.
    fn on_outputs(&mut self, ev: &Event, out: &Outputs);
    /// Called when a run starts, with the configuration its core was built from.
    fn on_run(&mut self, _cfg: &Arc<Config>) {}
    /// Called every [`PROGRESS_EVERY`] events and at the end.
    fn on_progress(&mut self, _events: u64, _reader: &ReaderStats) {}
}

/// Events between two [`ReplayObserver::on_progress`] calls.
pub const PROGRESS_EVERY: u64 = 8_192;

impl ReplayObserver for () {
    fn on_outputs(&mut self, _ev: &Event, _out: &Outputs) {}
}

/// Replays the items of `reader` into fresh cores (one per run), writing every output to `log`.
/// `reader` is a [`RecordingReader`] (decoding on this thread) or a
/// [`parallel::ThreadedReader`] (decoding on another); the outputs are the same.
pub fn replay_items<W: Write, S: parallel::ItemSource + ?Sized>(
    reader: &mut S,
    opts: &ReplayOptions,
    log: &mut DecisionLog<W>,
    observer: &mut dyn ReplayObserver,
) -> Result<ReplaySummary, ReplayError> {
    let mut engine: Option<Engine<CorePipeline, FrozenClock>> = None;
    let mut pending_run: Option<RunStart> = None;
    let mut configs = Vec::new();
    let mut pacer = match opts.pace {
        Pace::Speed(s) if s > 0.0 && s.is_finite() => Some(Pacer { speed: s, origin: None }),
        _ => None,
    };
    let (mut events, mut first_ms, mut last_ms) = (0u64, None, None);
    let mut ahead = ReadAhead::start(reader);
    while let Some(item) = ahead.next_item(reader) {
        match item? {
            ReplayItem::Run(r) => {
                engine = None;
                pending_run = Some(r);
            }
            ReplayItem::Event(ev) => {
                if let Some(run) = pending_run.take() {
                    let (cfg, src) = match (&opts.config, run.config, &ev.kind) {
                        (Some(c), _, _) => (c.clone(), ConfigSource::Override),
                        (None, Some(c), _) => (c, ConfigSource::Recorded),
                        (None, None, EventKind::ConfigReload(c)) => (c.clone(), ConfigSource::FirstReload),
                        (None, None, _) => (Arc::new(Config::default()), ConfigSource::Default),
                    };
                    tracing::info!(config = ?src, first_ms = run.first_ms, "replay: new run, fresh core");
                    configs.push(src);
                    observer.on_run(&cfg);
                    engine = Some(replay_engine(cfg));
                }
                let Some(e) = engine.as_mut() else {
                    // Items always open with a run; an event without one has nowhere to go.
                    continue;
                };
                if let Some(p) = pacer.as_mut() {
                    p.wait(ev.now_ms());
                }
                let out = e.on_event_ahead(&ev, ahead.events());
                log.write(&ev, &out).map_err(ReplayError::Write)?;
                observer.on_outputs(&ev, &out);
                events += 1;
                first_ms.get_or_insert(ev.now_ms());
                last_ms = Some(ev.now_ms());
                if events.is_multiple_of(PROGRESS_EVERY) {
                    observer.on_progress(events, &reader.stats());
                }
                reader.recycle(ev);
            }
        }
    }
    observer.on_progress(events, &reader.stats());
    Ok(ReplaySummary {
        events,
        outputs: log.lines(),
        first_ms,
        last_ms,
        configs,
        reader: reader.stats(),
        sha256: log.sha256_hex(),
    })
}

/// Replays the recording under `paths` (see [`replay_items`]), decoding it on a second thread
/// ([`parallel::ThreadedReader`]) while the core runs on this one.
pub fn replay<W: Write>(
    paths: &Paths,
    opts: &ReplayOptions,
    log: &mut DecisionLog<W>,
    observer: &mut dyn ReplayObserver,
) -> Result<ReplaySummary, ReplayError> {
    let mut reader = parallel::ThreadedReader::spawn(RecordingReader::open(paths, opts.period)?)?;
    replay_items(&mut reader, opts, log, observer)
}
