//! [`RecordingReader`]: streams a recorded period in `seq` order (a small reorder buffer absorbs
//! lines that landed in the next hour's file), splits it into runs at their headers and resolves
//! the configuration in force at the start of the period. Separate from the replay driver because
//! the `--jobs` chunking ([`super::parallel`]) drives readers of its own.

use super::{parallel, Period, ReplayError};
use crate::segment::SegmentReader;
use scalper_core::config::paths::{DataKind, Paths};
use scalper_core::config::Config;
use scalper_core::domain::TimeMs;
use scalper_core::engine::event::{Event, EventKind};
use serde::Serialize;
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;

/// One hour in milliseconds.
const HOUR_MS: TimeMs = 3_600_000;
/// Events held back to restore `seq` order across hourly files.
pub const REORDER_WINDOW: usize = 16_384;

/// Start of a run of the recorded engine, emitted before its first event in the period.
#[derive(Debug, Clone)]
pub struct RunStart {
    /// Configuration in force at the first replayed event: the run header's, updated by every
    /// `ConfigReload` recorded before the period. `None` when the recording has no header.
    pub config: Option<Arc<Config>>,
    /// Receive time of the first replayed event.
    pub first_ms: TimeMs,
}

/// One item of a recording, in replay order.
#[derive(Debug, Clone)]
pub enum ReplayItem {
    /// A new run starts: build a fresh core.
    Run(RunStart),
    /// The next input event of the current run.
    Event(Event),
}

/// What the reader saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ReaderStats {
    /// Files opened.
    pub files: u64,
    /// Lines that were not a recorded event (torn tail, corruption).
    pub bad_lines: u64,
    /// Events missing inside the period (`seq` holes: dropped by a full store queue).
    pub gaps: u64,
    /// Events recorded twice (ignored).
    pub duplicates: u64,
    /// Events that arrived too far out of order to be replayed in place (dropped).
    pub late: u64,
    /// Runs started.
    pub runs: u64,
    /// Bytes of the recorded lines read so far (decompressed): exact, the unit of run offsets
    /// and of the `--jobs` merge.
    pub bytes_read: u64,
    /// Bytes of the files consumed so far (compressed bytes for `.jsonl.zst`), for progress
    /// against [`ReaderStats::bytes_total`]; not part of the reports.
    #[serde(skip)]
    pub file_bytes_read: u64,
    /// Bytes of all the recording's files (on disk, compressed for `.jsonl.zst`).
    pub bytes_total: u64,
}

impl ReaderStats {
    /// True when the replay is not the whole recorded stream: `seq` holes, unreadable lines or
    /// events too far out of order to replay in place. Duplicates are harmless.
    pub fn has_gaps(&self) -> bool {
        self.gaps > 0 || self.bad_lines > 0 || self.late > 0
    }
}

/// Streams a recorded period in `seq` order (see the module docs).
pub struct RecordingReader {
    pub(super) files: VecDeque<(PathBuf, TimeMs)>,
    current: Option<(PathBuf, SegmentReader, usize, bool)>,
    period: Period,
    reorder: Reorder,
    window: usize,
    run_config: Option<Arc<Config>>,
    run_open: bool,
    run_seen_first: bool,
    last_seq: Option<u64>,
    pub(super) started: bool,
    finished: bool,
    out: VecDeque<ReplayItem>,
    pub(super) stats: ReaderStats,
    /// Index in the recording's file list of the next file to open.
    pub(super) next_file: usize,
    pub(super) chunk: parallel::Chunk,
    pub(super) chunk_end: parallel::ChunkEnd,
    /// `Some` in scan mode ([`parallel::scan_runs`]): run headers found so far, nothing decoded else.
    pub(super) scan: Option<Vec<parallel::RunBoundary>>,
}

/// Events held back to restore `seq` order: sorted by `seq`, without duplicates. A recording is
/// nearly always in order already, so an event almost always goes at the back in O(1); one that
/// landed early is inserted in place (binary search).
#[derive(Default)]
struct Reorder(VecDeque<Event>);

impl Reorder {
    fn len(&self) -> usize {
        self.0.len()
    }

    /// Adds `ev` in `seq` order; false (and `ev` dropped) when its `seq` is already held.
    fn insert(&mut self, ev: Event) -> bool {
        match self.0.back() {
            Some(b) if b.seq >= ev.seq => match self.0.binary_search_by_key(&ev.seq, |e| e.seq) {
                Ok(_) => false,
                Err(i) => {
                    self.0.insert(i, ev);
                    true
                }
            },
            _ => {
                self.0.push_back(ev);
                true
            }
        }
    }

    fn pop_first(&mut self) -> Option<Event> {
        self.0.pop_front()
    }
}

/// True for a run header: the `seq: 0` `ConfigReload` a recorder writes first (a fresh core starts).
fn is_run_header(ev: &Event) -> bool {
    ev.seq == 0 && matches!(ev.kind, EventKind::ConfigReload(_))
}

/// True when a recorded line may be a `ConfigReload` (the only lines decoded before the period
/// and while scanning for run headers).
fn mentions_config_reload(line: &[u8]) -> bool {
    memchr::memmem::find(line, b"\"ConfigReload\"").is_some()
}

/// Hour start (ms) of a `YYYY-MM-DDTHH.jsonl` or `.jsonl.zst` file name.
fn hour_of_file(name: &str) -> Option<TimeMs> {
    let (stem, _) = crate::segment::split_segment_name(name)?;
    let t = chrono::NaiveDateTime::parse_from_str(&format!("{stem}:00:00"), "%Y-%m-%dT%H:%M:%S").ok()?;
    Some(t.and_utc().timestamp_millis())
}

/// The recorded hourly files under a data directory, oldest first.
pub fn recording_files(paths: &Paths) -> Result<Vec<(PathBuf, TimeMs)>, ReplayError> {
    let dir = paths.symbol_dir(DataKind::Raw, None);
    let rd = std::fs::read_dir(&dir).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => ReplayError::NoRecording(paths.data_dir().to_path_buf()),
        _ => ReplayError::Io { path: dir.clone(), source: e },
    })?;
    let mut files = Vec::new();
    for ent in rd {
        let ent = ent.map_err(|e| ReplayError::Io { path: dir.clone(), source: e })?;
        let name = ent.file_name().to_string_lossy().to_string();
        if let Some(h) = hour_of_file(&name) {
            files.push((ent.path(), h));
        }
    }
    // Within an hour, a plain file (older format) before the compressed one.
    files.sort_by_key(|(p, h)| (*h, crate::segment::is_zst_path(p)));
    if files.is_empty() {
        return Err(ReplayError::NoRecording(paths.data_dir().to_path_buf()));
    }
    Ok(files)
}

impl RecordingReader {
    /// Opens the recording under `paths` for `period`.
    pub fn open(paths: &Paths, period: Period) -> Result<RecordingReader, ReplayError> {
        Ok(Self::from_files(recording_files(paths)?, period))
    }

    /// A reader over explicit hourly files (`(path, hour start ms)`, oldest first).
    pub fn from_files(files: Vec<(PathBuf, TimeMs)>, period: Period) -> RecordingReader {
        let bytes_total = files.iter().filter_map(|(p, _)| std::fs::metadata(p).ok()).map(|m| m.len()).sum();
        RecordingReader {
            files: files.into(),
            current: None,
            period,
            reorder: Reorder::default(),
            window: REORDER_WINDOW,
            run_config: None,
            run_open: false,
            run_seen_first: false,
            last_seq: None,
            started: false,
            finished: false,
            out: VecDeque::new(),
            stats: ReaderStats { bytes_total, ..ReaderStats::default() },
            next_file: 0,
            chunk: parallel::Chunk::default(),
            chunk_end: parallel::ChunkEnd::default(),
            scan: None,
        }
    }

    /// Counters so far (complete once the iterator is exhausted).
    pub fn stats(&self) -> ReaderStats {
        self.stats
    }

    /// Reads every item (tests and small recordings).
    pub fn collect_all(mut self) -> Result<(Vec<ReplayItem>, ReaderStats), ReplayError> {
        let mut v = Vec::new();
        for it in self.by_ref() {
            v.push(it?);
        }
        Ok((v, self.stats))
    }

    /// Next raw line's event; `Ok(None)` at the end of all files.
    pub(super) fn next_event(&mut self) -> Result<Option<Event>, ReplayError> {
        loop {
            if self.current.is_none() {
                let Some((path, hour)) = self.files.pop_front() else { return Ok(None) };
                self.next_file += 1;
                if self.period.after(hour) {
                    // Everything from here on is after the period.
                    self.files.clear();
                    self.chunk_end.period_ended = true;
                    return Ok(None);
                }
                // A file wholly before the period is only scanned for run headers and reloads.
                let before = self.period.before(hour + HOUR_MS);
                let f = SegmentReader::open(&path).map_err(|e| ReplayError::Io { path: path.clone(), source: e })?;
                self.stats.files += 1;
                self.chunk_end.note_opened(self.next_file - 1);
                self.current = Some((path, f, 0, before));
            }
            let Some((path, rd, line_no, before)) = self.current.as_mut() else { continue };
            let here = parallel::LinePos { file: self.next_file - 1, line: *line_no };
            let n = rd.next_line().map_err(|e| ReplayError::Io { path: path.clone(), source: e })?;
            if self.chunk.stop == Some(here) {
                // The next chunk's run header: that chunk replays it; this one ends before it.
                self.chunk_end.stopped = true;
                self.chunk_end.stop_line_bytes = n as u64;
                self.files.clear();
                self.current = None;
                return Ok(None);
            }
            if n == 0 {
                // A torn last zstd frame (crash while writing) counts as one bad line.
                self.stats.bad_lines += rd.bad_frames();
                self.stats.file_bytes_read += rd.take_progress();
                self.current = None;
                continue;
            }
            *line_no += 1;
            self.stats.file_bytes_read += rd.take_progress();
            if self.chunk.start.is_some_and(|s| s.file == here.file && here.line < s.line) {
                // Before this chunk's start: the chunk before it read this line.
                continue;
            }
            self.stats.bytes_read += n as u64;
            let line = rd.line();
            let whole = line.last() == Some(&b'\n');
            let text = line.trim_ascii_end();
            if let Some(found) = self.scan.as_mut() {
                if whole && mentions_config_reload(text) {
                    if let Some(ev) = std::str::from_utf8(text).ok().and_then(|t| serde_json::from_str::<Event>(t).ok())
                    {
                        if is_run_header(&ev) {
                            found.push(parallel::RunBoundary { pos: here, offset: self.stats.bytes_read - n as u64 });
                        }
                    }
                }
                continue;
            }
            if !whole {
                // A torn tail (crash while writing): not a whole record.
                tracing::warn!(file = %path.display(), line = *line_no, "torn last line ignored");
                self.stats.bad_lines += 1;
                continue;
            }
            if text.is_empty() || (*before && !mentions_config_reload(text)) {
                continue;
            }
            // A line that is not UTF-8 is unreadable like any other corrupt line.
            let parsed = std::str::from_utf8(text)
                .map_err(|e| e.to_string())
                .and_then(|t| serde_json::from_str::<Event>(t).map_err(|e| e.to_string()));
            match parsed {
                Ok(ev) => return Ok(Some(ev)),
                Err(e) => {
                    tracing::warn!(file = %path.display(), line = *line_no, error = %e, "unreadable recorded line ignored");
                    self.stats.bad_lines += 1;
                }
            }
        }
    }

    fn flush_reorder(&mut self) {
        while let Some(ev) = self.reorder.pop_first() {
            self.process(ev);
        }
    }

    fn new_run(&mut self, config: Option<Arc<Config>>) {
        self.flush_reorder();
        self.run_config = config;
        self.run_open = false;
        self.run_seen_first = false;
        self.last_seq = None;
    }

    /// Handles one event in `seq` order.
    fn process(&mut self, ev: Event) {
        if self.finished {
            return;
        }
        if let Some(l) = self.last_seq {
            if ev.seq <= l {
                self.stats.late += 1;
                tracing::warn!(seq = ev.seq, last = l, "recorded event too far out of order: dropped");
                return;
            }
        }
        if !self.started {
            if self.period.before(ev.now_ms()) {
                if let EventKind::ConfigReload(c) = &ev.kind {
                    self.run_config = Some(c.clone());
                }
                self.last_seq = Some(ev.seq);
                self.chunk_end.skipped_before += 1;
                return;
            }
            self.started = true;
        }
        if self.period.after(ev.now_ms()) {
            self.finished = true;
            self.chunk_end.period_ended = true;
            return;
        }
        if !self.run_open {
            self.run_open = true;
            self.stats.runs += 1;
            self.out.push_back(ReplayItem::Run(RunStart { config: self.run_config.clone(), first_ms: ev.now_ms() }));
        } else if let Some(l) = self.last_seq {
            self.stats.gaps += ev.seq - l - 1;
        }
        self.last_seq = Some(ev.seq);
        self.out.push_back(ReplayItem::Event(ev));
    }

    fn pump(&mut self) -> Result<(), ReplayError> {
        while self.out.is_empty() && !self.finished {
            let Some(ev) = self.next_event()? else {
                self.flush_reorder();
                self.finished = true;
                break;
            };
            if is_run_header(&ev) {
                let EventKind::ConfigReload(c) = ev.kind else { continue };
                self.new_run(Some(c));
                continue;
            }
            if ev.seq == 1 {
                if self.run_seen_first {
                    // A restart without a header (header line lost).
                    self.new_run(None);
                }
                self.run_seen_first = true;
            }
            if !self.reorder.insert(ev) {
                self.stats.duplicates += 1;
                continue;
            }
            if self.reorder.len() > self.window {
                if let Some(e) = self.reorder.pop_first() {
                    self.process(e);
                }
            }
        }
        Ok(())
    }
}

impl Iterator for RecordingReader {
    type Item = Result<ReplayItem, ReplayError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.out.is_empty() {
            if let Err(e) = self.pump() {
                self.finished = true;
                self.out.clear();
                return Some(Err(e));
            }
        }
        self.out.pop_front().map(Ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replay::RecordingWriter;
    use scalper_core::domain::EventTime;
    use scalper_core::engine::event::TimerKind;

    fn timer(seq: u64, t: TimeMs) -> Event {
        Event::new(seq, EventTime::local(t), EventKind::Timer(TimerKind::Second))
    }

    #[test]
    fn periods_parse_rfc3339_and_refuse_garbage() {
        let p = Period::parse(Some("2026-01-01T00:00:00Z"), Some("2026-01-01T01:00:00+01:00")).unwrap_err();
        assert!(matches!(p, ReplayError::EmptyPeriod { .. }));
        let p = Period::parse(Some("2026-01-01T00:00:00Z"), Some("2026-01-01T00:00:01Z")).unwrap();
        assert_eq!(p.from_ms, Some(1_767_225_600_000));
        assert!(p.contains(1_767_225_600_000) && p.contains(1_767_225_600_999) && !p.contains(1_767_225_601_000));
        assert!(matches!(Period::parse(Some("yesterday"), None), Err(ReplayError::BadTime(_))));
        assert_eq!(hour_of_file("2026-01-01T05.jsonl"), Some(1_767_225_600_000 + 5 * HOUR_MS));
        assert_eq!(hour_of_file("notes.txt"), None);
    }

    #[test]
    fn reader_restores_seq_order_splits_runs_and_counts_gaps() {
        let dir = tempfile::tempdir().unwrap();
        let base = 1_767_225_600_000 + HOUR_MS - 10;
        let cfg = Arc::new(Config::default());
        let mut w = RecordingWriter::plain(dir.path());
        w.write(&crate::recorder::Recorder::header(cfg.clone(), base)).unwrap();
        w.write(&timer(1, base)).unwrap();
        w.write(&timer(2, base + 5)).unwrap();
        w.finish().unwrap();
        // seq 3 landed in the next hour's file before seq 4, which was written to the earlier one.
        let paths = Paths::with_data_dir(dir.path());
        let next = paths.hourly_file(DataKind::Raw, None, "2026-01-01T01");
        let prev = paths.hourly_file(DataKind::Raw, None, "2026-01-01T00");
        let line = |e: &Event| serde_json::to_string(e).unwrap() + "\n";
        let mut s = std::fs::read_to_string(&prev).unwrap();
        s.push_str(&line(&timer(4, base + 9)));
        std::fs::write(&prev, s).unwrap();
        let mut n = line(&timer(3, base + 11));
        n.push_str(&line(&timer(6, base + 20))); // 5 lost
        n.push_str(&line(&Event::new(1, EventTime::local(base + 30), EventKind::Timer(TimerKind::Universe))));
        n.push_str("{\"seq\":2,\"ti"); // torn tail
        std::fs::write(&next, n).unwrap();

        let (items, st) = RecordingReader::open(&paths, Period::all()).unwrap().collect_all().unwrap();
        let seqs: Vec<String> = items
            .iter()
            .map(|i| match i {
                ReplayItem::Run(r) => format!("run:{}", r.config.is_some()),
                ReplayItem::Event(e) => e.seq.to_string(),
            })
            .collect();
        assert_eq!(seqs, ["run:true", "1", "2", "3", "4", "6", "run:false", "1"]);
        assert_eq!((st.gaps, st.bad_lines, st.runs), (1, 1, 2));
        assert!(st.has_gaps());
    }

    #[test]
    fn period_start_uses_the_config_in_force_and_stops_at_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let base = 1_767_225_600_000;
        let mut c1 = Config::default();
        c1.thresholds.arm = 71.0;
        let mut c2 = Config::default();
        c2.thresholds.arm = 72.0;
        let mut w = RecordingWriter::new(dir.path());
        w.write(&crate::recorder::Recorder::header(Arc::new(c1), base)).unwrap();
        w.write(&timer(1, base + 1000)).unwrap();
        w.write(&Event::new(2, EventTime::local(base + 1500), EventKind::ConfigReload(Arc::new(c2)))).unwrap();
        for s in 3..10 {
            w.write(&timer(s, base + 1000 * s as i64)).unwrap();
        }
        w.finish().unwrap();
        let period = Period { from_ms: Some(base + 3000), to_ms: Some(base + 6000) };
        let (items, _) =
            RecordingReader::open(&Paths::with_data_dir(dir.path()), period).unwrap().collect_all().unwrap();
        let ReplayItem::Run(r) = &items[0] else { panic!("run first") };
        assert_eq!(r.config.as_ref().unwrap().thresholds.arm, 72.0, "the reload before the period is in force");
        let seqs: Vec<u64> =
            items.iter().filter_map(|i| if let ReplayItem::Event(e) = i { Some(e.seq) } else { None }).collect();
        assert_eq!(seqs, [3, 4, 5]);
    }

    #[test]
    fn the_reorder_buffer_keeps_seq_order_and_refuses_duplicates() {
        let mut r = Reorder::default();
        for s in [1, 2, 5, 3, 9, 4, 0, 7] {
            assert!(r.insert(timer(s, 0)), "seq {s} is new");
        }
        for s in [5, 1, 9, 0] {
            assert!(!r.insert(timer(s, 0)), "seq {s} is held already");
        }
        assert_eq!(r.len(), 8);
        let order: Vec<u64> = std::iter::from_fn(|| r.pop_first()).map(|e| e.seq).collect();
        assert_eq!(order, [0, 1, 2, 3, 4, 5, 7, 9]);
    }

    #[test]
    fn missing_recording_is_a_typed_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            RecordingReader::open(&Paths::with_data_dir(dir.path()), Period::all()),
            Err(ReplayError::NoRecording(_))
        ));
    }
}
