//! Replay that uses the machine.
//!
//! * [`ThreadedReader`]: the recording is decoded on a second thread while the core runs on the
//!   caller's; decoded items cross a bounded channel in batches of [`BATCH`] (at most
//!   [`CHANNEL_BATCHES`] batches in flight, so memory stays bounded whatever the recording's size).
//!   The items, their order and the reader's final counters are those of the [`RecordingReader`]
//!   it wraps, so the decision log is byte-identical.
//! * [`replay_jobs`]: independent parts of a recording replayed in parallel (`--jobs N`), each
//!   into a fresh core, merged in recording order.
//!
//! # What is independent
//! A *run* starts at a run header (the `seq: 0` `ConfigReload` the recorder writes when an engine
//! starts). The reader hands the core a fresh engine there and resets everything it keeps per
//! run (configuration, reorder buffer, last `seq`), so nothing of the earlier runs reaches the
//! later ones: the runs of a recording are independent. Nothing else is: a day or hour boundary
//! inside one run carries the core's state over, so a run is never split.
//!
//! [`scan_runs`] finds the headers (decoding only lines that mention `ConfigReload`); consecutive
//! runs are grouped into *chunks* of at least 1/(4·jobs) of the recording's bytes; each chunk is
//! read by its own [`RecordingReader`] that starts at its first header and stops before the next
//! chunk's. What the serial reader carries from one run to the next is only its counters and two
//! latches, and the merge restores them exactly:
//! * counters add up; files are counted once however many chunks opened them; the next chunk's
//!   header line is counted when the serial reader would have read it (its period ended there);
//! * "the period has ended" ends the serial replay: chunks after the first one that ended it are
//!   dropped;
//! * "the period has started": a chunk whose reader skipped events as before `--from` after an
//!   earlier chunk had started (a clock that went back across a restart) is replayed again with
//!   the latch set, as the serial reader would have.
//!
//! Each chunk's decision log goes to a temporary file, appended to the real log in chunk order
//! ([`DecisionLog::append_raw`]): the log and its SHA-256 are those of the serial replay
//! (`--jobs 1`), and so is the [`ReplaySummary`].

use super::{
    replay_items, DecisionLog, Pace, Period, ReaderStats, RecordingReader, ReplayError, ReplayItem, ReplayObserver,
    ReplayOptions, ReplaySummary,
};
use scalper_core::config::Config;
use scalper_core::domain::TimeMs;
use scalper_core::engine::event::Event;
use scalper_core::engine::output::Outputs;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};

/// Items per batch sent from the decoding thread.
pub const BATCH: usize = 512;
/// Batches the channel holds before the decoding thread waits for the core.
pub const CHANNEL_BATCHES: usize = 8;

/// A source of replay items with the reader's counters.
pub trait ItemSource: Iterator<Item = Result<ReplayItem, ReplayError>> {
    /// Counters of the items handed out so far (complete once exhausted).
    fn stats(&self) -> ReaderStats;
    /// Takes back an event the core is done with. Dropping an event costs its allocations'
    /// frees; a source on another thread has them done there, off the core's thread.
    fn recycle(&mut self, ev: Event) {
        drop(ev);
    }
}

impl ItemSource for RecordingReader {
    fn stats(&self) -> ReaderStats {
        RecordingReader::stats(self)
    }
}

/// One message of the decoding thread.
struct Batch {
    items: Vec<Result<ReplayItem, ReplayError>>,
    /// Reader counters once these items were read.
    stats: ReaderStats,
    /// The reader is exhausted (or failed): nothing follows.
    last: bool,
}

/// A [`RecordingReader`] running on its own thread (see the module docs).
pub struct ThreadedReader {
    rx: Option<Receiver<Batch>>,
    /// Spent events going back to the decoding thread, which frees them (and the memory stays
    /// with the thread that allocated it).
    back: Option<SyncSender<Vec<Event>>>,
    spent: Vec<Event>,
    current: std::vec::IntoIter<Result<ReplayItem, ReplayError>>,
    stats: ReaderStats,
    done: bool,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ThreadedReader {
    /// Moves `reader` to a new decoding thread.
    pub fn spawn(mut reader: RecordingReader) -> Result<ThreadedReader, ReplayError> {
        let (tx, rx) = sync_channel::<Batch>(CHANNEL_BATCHES);
        let (back, back_rx) = sync_channel::<Vec<Event>>(CHANNEL_BATCHES);
        let stats = reader.stats();
        let thread = std::thread::Builder::new()
            .name("replay-decode".into())
            .spawn(move || loop {
                while let Ok(spent) = back_rx.try_recv() {
                    drop(spent);
                }
                let mut items = Vec::with_capacity(BATCH);
                let mut last = false;
                while items.len() < BATCH {
                    match reader.next() {
                        Some(Ok(it)) => items.push(Ok(it)),
                        Some(Err(e)) => {
                            items.push(Err(e));
                            last = true;
                            break;
                        }
                        None => {
                            last = true;
                            break;
                        }
                    }
                }
                // A closed channel: the consumer stopped early; nothing more to do.
                if tx.send(Batch { items, stats: reader.stats(), last }).is_err() || last {
                    return;
                }
            })
            .map_err(|e| ReplayError::Thread(format!("cannot start the decoding thread: {e}")))?;
        Ok(ThreadedReader {
            rx: Some(rx),
            back: Some(back),
            spent: Vec::with_capacity(BATCH),
            current: Vec::new().into_iter(),
            stats,
            done: false,
            thread: Some(thread),
        })
    }
}

impl Iterator for ThreadedReader {
    type Item = Result<ReplayItem, ReplayError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(it) = self.current.next() {
                return Some(it);
            }
            if self.done {
                return None;
            }
            match self.rx.as_ref()?.recv() {
                Ok(b) => {
                    self.stats = b.stats;
                    self.done = b.last;
                    self.current = b.items.into_iter();
                }
                Err(_) => {
                    // The thread ended without its last batch: it panicked.
                    self.done = true;
                    return Some(Err(ReplayError::Thread("the decoding thread stopped before the end".into())));
                }
            }
        }
    }
}

impl ItemSource for ThreadedReader {
    fn stats(&self) -> ReaderStats {
        self.stats
    }

    fn recycle(&mut self, ev: Event) {
        self.spent.push(ev);
        if self.spent.len() >= BATCH {
            let spent = std::mem::replace(&mut self.spent, Vec::with_capacity(BATCH));
            // A full channel (the decoding thread is behind on freeing) or a gone thread: the
            // refused batch is freed here.
            if let Some(b) = &self.back {
                let _ = b.try_send(spent);
            }
        }
    }
}

impl Drop for ThreadedReader {
    fn drop(&mut self) {
        // Closing the channel first unblocks a thread waiting to send.
        drop(self.rx.take());
        drop(self.back.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A position in a recording: a file (index in the recording's file list) and a line (0-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct LinePos {
    /// File index.
    pub file: usize,
    /// Line index in the file.
    pub line: usize,
}

/// A run header found by [`scan_runs`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunBoundary {
    /// Where its line is.
    pub pos: LinePos,
    /// Bytes of the recording before it.
    pub offset: u64,
}

/// Where a chunk reader starts and stops.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Chunk {
    /// First line read (`None`: the recording's start).
    pub start: Option<LinePos>,
    /// Line not read any more: the next chunk's first header (`None`: the recording's end).
    pub stop: Option<LinePos>,
    /// The "period has started" latch at the start.
    pub started: bool,
}

/// What a chunk reader tells the merge (see the module docs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ChunkEnd {
    /// The reader hit the end of the period (an event or a file after it).
    pub period_ended: bool,
    /// The reader reached `Chunk::stop`.
    pub stopped: bool,
    /// Bytes of the line at `Chunk::stop` (read by the serial reader when its period ended there).
    pub stop_line_bytes: u64,
    /// Events dropped as before the period.
    pub skipped_before: u64,
    /// First and last file index opened.
    pub opened: Option<(usize, usize)>,
}

impl ChunkEnd {
    pub(crate) fn note_opened(&mut self, idx: usize) {
        self.opened = Some(match self.opened {
            None => (idx, idx),
            Some((a, b)) => (a.min(idx), b.max(idx)),
        });
    }
}

impl RecordingReader {
    /// A reader of one chunk of `files` (see the module docs).
    pub(crate) fn chunk_reader(files: Vec<(PathBuf, TimeMs)>, period: Period, chunk: Chunk) -> RecordingReader {
        let mut r = RecordingReader::from_files(files, period);
        if let Some(s) = chunk.start {
            let skip = s.file.min(r.files.len());
            r.files.drain(..skip);
            r.next_file = skip;
        }
        r.started = chunk.started;
        r.chunk = chunk;
        r
    }
}

/// The run headers of a recording, in file order, up to the first file after `period` (the
/// serial reader stops there). Reads every line; decodes only those mentioning `ConfigReload`.
pub fn scan_runs(files: Vec<(PathBuf, TimeMs)>, period: Period) -> Result<Vec<RunBoundary>, ReplayError> {
    Ok(scan_runs_sized(files, period)?.0)
}

/// [`scan_runs`] and the bytes of all the lines read (decompressed: the unit of the offsets).
fn scan_runs_sized(files: Vec<(PathBuf, TimeMs)>, period: Period) -> Result<(Vec<RunBoundary>, u64), ReplayError> {
    let mut r = RecordingReader::from_files(files, period);
    r.scan = Some(Vec::new());
    while r.next_event()?.is_some() {}
    Ok((r.scan.take().unwrap_or_default(), r.stats.bytes_read))
}

/// Groups runs into chunks of at least `min_bytes` (the first chunk starts at the recording's
/// start, so lines before the first header are read exactly as serially).
fn plan_chunks(runs: &[RunBoundary], min_bytes: u64) -> Vec<Chunk> {
    let mut starts: Vec<(Option<LinePos>, u64)> = vec![(None, 0)];
    for b in runs {
        let last = starts.last().map_or(0, |s| s.1);
        if b.offset > 0 && b.offset - last >= min_bytes.max(1) {
            starts.push((Some(b.pos), b.offset));
        }
    }
    let stops: Vec<Option<LinePos>> = starts.iter().skip(1).map(|s| s.0).chain(std::iter::once(None)).collect();
    starts.iter().zip(stops).map(|(s, stop)| Chunk { start: s.0, stop, started: false }).collect()
}

/// Counts bytes read into a shared counter (the progress meter) and forwards to the observer.
struct Counted<'a, O: ReplayObserver> {
    inner: &'a mut O,
    counter: Option<&'a AtomicU64>,
    last: u64,
}

impl<O: ReplayObserver> ReplayObserver for Counted<'_, O> {
    fn on_outputs(&mut self, ev: &Event, out: &Outputs) {
        self.inner.on_outputs(ev, out);
    }
    fn on_run(&mut self, cfg: &Arc<Config>) {
        self.inner.on_run(cfg);
    }
    fn on_progress(&mut self, events: u64, r: &ReaderStats) {
        if let Some(c) = self.counter {
            c.fetch_add(r.file_bytes_read.saturating_sub(self.last), Ordering::Relaxed);
            self.last = r.file_bytes_read;
        }
        self.inner.on_progress(events, r);
    }
}

/// A temporary directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<TempDir, ReplayError> {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let p = std::env::temp_dir().join(format!("scalper-replay-jobs-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&p).map_err(|e| ReplayError::Io { path: p.clone(), source: e })?;
        Ok(TempDir(p))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One replayed chunk.
struct ChunkResult<O> {
    summary: ReplaySummary,
    end: ChunkEnd,
    started: bool,
    observer: O,
    log: PathBuf,
}

/// A chunk's result once its job ran (`None`: not run, being after the period's end).
type Slot<O> = Option<Result<ChunkResult<O>, ReplayError>>;

fn run_chunk<O: ReplayObserver>(
    files: &[(PathBuf, TimeMs)],
    opts: &ReplayOptions,
    chunk: Chunk,
    log_path: &Path,
    mut observer: O,
    counter: Option<&AtomicU64>,
) -> Result<ChunkResult<O>, ReplayError> {
    let mut reader = RecordingReader::chunk_reader(files.to_vec(), opts.period, chunk);
    let f = std::fs::File::create(log_path).map_err(|e| ReplayError::Io { path: log_path.to_path_buf(), source: e })?;
    let mut log = DecisionLog::new(BufWriter::with_capacity(1 << 20, f));
    let mut obs = Counted { inner: &mut observer, counter, last: 0 };
    let summary = replay_items(&mut reader, opts, &mut log, &mut obs)?;
    log.finish().map_err(ReplayError::Write)?;
    Ok(ChunkResult { summary, end: reader.chunk_end, started: reader.started, observer, log: log_path.to_path_buf() })
}

/// Replays the recording made of `files` into `log`: with `jobs > 1` and more than one run,
/// chunks of runs in parallel on `jobs` threads (see the module docs); otherwise one core with
/// decoding on a second thread. Returns the summary and one observer per replayed chunk, in
/// recording order (one observer when not split). `bytes_done`, when given, follows the bytes
/// read (a progress meter). The log, its hash and the summary do not depend on `jobs`.
pub fn replay_jobs<W, O, F>(
    files: Vec<(PathBuf, TimeMs)>,
    opts: &ReplayOptions,
    jobs: usize,
    log: &mut DecisionLog<W>,
    new_observer: F,
    bytes_done: Option<&AtomicU64>,
) -> Result<(ReplaySummary, Vec<O>), ReplayError>
where
    W: Write,
    O: ReplayObserver + Send,
    F: Fn() -> O + Sync,
{
    let chunks = if jobs > 1 && opts.pace == Pace::Max {
        // Offsets are in decompressed line bytes, so the chunk size is too.
        let (runs, total) = scan_runs_sized(files.clone(), opts.period)?;
        plan_chunks(&runs, total / (4 * jobs as u64))
    } else {
        Vec::new()
    };
    if chunks.len() < 2 {
        let mut observer = new_observer();
        let mut reader = ThreadedReader::spawn(RecordingReader::from_files(files, opts.period))?;
        let mut obs = Counted { inner: &mut observer, counter: bytes_done, last: 0 };
        let summary = replay_items(&mut reader, opts, log, &mut obs)?;
        return Ok((summary, vec![observer]));
    }
    let tmp = TempDir::new()?;
    let log_path = |i: usize| tmp.0.join(format!("chunk-{i:06}.jsonl"));
    let n = chunks.len();
    let results: Mutex<Vec<Slot<O>>> = Mutex::new((0..n).map(|_| None).collect());
    let next = AtomicUsize::new(0);
    // Chunks after the first one that ended the period (or failed) are not needed.
    let limit = AtomicUsize::new(n);
    std::thread::scope(|s| {
        for w in 0..jobs.min(n) {
            let (files, chunks, results, next, limit, new_observer, log_path) =
                (&files, &chunks, &results, &next, &limit, &new_observer, &log_path);
            let spawned = std::thread::Builder::new().name(format!("replay-job-{w}")).spawn_scoped(s, move || loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= n || i > limit.load(Ordering::SeqCst) {
                    return;
                }
                let r = run_chunk(files, opts, chunks[i], &log_path(i), new_observer(), bytes_done);
                if r.as_ref().map_or(true, |c| c.end.period_ended) {
                    limit.fetch_min(i, Ordering::SeqCst);
                }
                if let Ok(mut g) = results.lock() {
                    g[i] = Some(r);
                }
            });
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "cannot start a replay job thread; the others do its share");
            }
        }
    });
    let mut results = results.into_inner().map_err(|_| ReplayError::Thread("a replay job panicked".into()))?;

    // Merge in recording order, restoring the serial reader's latches (module docs).
    let mut out_obs = Vec::new();
    let mut merged = ReaderStats { bytes_total: 0, ..ReaderStats::default() };
    let mut opened: Vec<(usize, usize)> = Vec::new();
    let (mut events, mut first_ms, mut last_ms, mut configs) = (0u64, None, None, Vec::new());
    let mut started = false;
    for (i, slot) in results.iter_mut().enumerate() {
        let mut c = match slot.take() {
            Some(r) => r?,
            None => return Err(ReplayError::Thread(format!("replay job for chunk {i} did not run"))),
        };
        if started && c.end.skipped_before > 0 {
            // Serially the period had started: replay this chunk again with the latch set.
            let chunk = Chunk { started: true, ..chunks[i] };
            c = run_chunk(&files, opts, chunk, &log_path(i), new_observer(), None)?;
        }
        let f = std::fs::File::open(&c.log).map_err(|e| ReplayError::Io { path: c.log.clone(), source: e })?;
        log.append_raw(BufReader::with_capacity(1 << 20, f)).map_err(ReplayError::Write)?;
        let _ = std::fs::remove_file(&c.log);
        let r = c.summary.reader;
        merged.bytes_total = r.bytes_total;
        merged.bad_lines += r.bad_lines;
        merged.gaps += r.gaps;
        merged.duplicates += r.duplicates;
        merged.late += r.late;
        merged.runs += r.runs;
        merged.bytes_read += r.bytes_read;
        if c.end.period_ended && c.end.stopped {
            // Serially the next header was read, then the flush ended the period.
            merged.bytes_read += c.end.stop_line_bytes;
        }
        opened.extend(c.end.opened);
        events += c.summary.events;
        first_ms = first_ms.or(c.summary.first_ms);
        last_ms = c.summary.last_ms.or(last_ms);
        configs.extend(c.summary.configs);
        started |= c.started;
        out_obs.push(c.observer);
        if c.end.period_ended {
            break;
        }
    }
    merged.files = count_union(&mut opened);
    let summary = ReplaySummary {
        events,
        outputs: log.lines(),
        first_ms,
        last_ms,
        configs,
        reader: merged,
        sha256: log.sha256_hex(),
    };
    Ok((summary, out_obs))
}

/// Distinct indices covered by inclusive ranges.
fn count_union(ranges: &mut [(usize, usize)]) -> u64 {
    ranges.sort_unstable();
    let mut n = 0u64;
    let mut end: Option<usize> = None;
    for &(a, b) in ranges.iter() {
        let from = match end {
            Some(e) if e >= b => continue,
            Some(e) if e >= a => e + 1,
            _ => a,
        };
        n += (b - from + 1) as u64;
        end = Some(b);
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_ranges_are_counted_once() {
        assert_eq!(count_union(&mut []), 0);
        assert_eq!(count_union(&mut [(0, 2), (2, 3), (5, 5)]), 5);
        assert_eq!(count_union(&mut [(1, 4), (2, 3), (0, 0)]), 5);
    }

    #[test]
    fn chunks_start_at_the_recording_start_and_split_only_at_big_enough_runs() {
        let b = |file, line, offset| RunBoundary { pos: LinePos { file, line }, offset };
        let runs = [b(0, 0, 0), b(0, 10, 100), b(1, 3, 150), b(2, 0, 400)];
        let c = plan_chunks(&runs, 100);
        let starts: Vec<Option<LinePos>> = c.iter().map(|c| c.start).collect();
        assert_eq!(starts, [None, Some(LinePos { file: 0, line: 10 }), Some(LinePos { file: 2, line: 0 })]);
        let stops: Vec<Option<LinePos>> = c.iter().map(|c| c.stop).collect();
        assert_eq!(stops, [Some(LinePos { file: 0, line: 10 }), Some(LinePos { file: 2, line: 0 }), None]);
        assert_eq!(plan_chunks(&runs, 1000).len(), 1);
    }
}
