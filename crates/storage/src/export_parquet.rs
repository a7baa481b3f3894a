//! `scalper export --parquet`: the data directory's hourly JSON-lines streams as Parquet files
//! that DuckDB, Polars or Spark read directly, partitioned Hive style by day and symbol:
//! `<out>/<stream>/day=YYYY-MM-DD/symbol=<SYMBOL|_global>/part-<n>.parquet`.
//!
//! Streams:
//! * `raw`: the input recording (`raw/_global/<hour>.jsonl.zst` or `.jsonl`, read through
//!   [`SegmentReader`]), one row per recorded event, partitioned by the symbol the event is about
//!   (book, trades, ticker, liquidation, book shed, baselines, history); every other event
//!   (timers, universe, feed, control, configuration…) goes to `symbol=_global`.
//! * `trades`: the public trades of the recording's `Trades` events, one row per trade (a batch
//!   of several trades is one `raw` row but several `trades` rows).
//! * every other hourly stream of the store (`events`, `microcandles`, `trades_log`,
//!   `orderbook`, `trades_stream`, `metrics`, `system`): one row per line, partitioned by the
//!   symbol directory the store wrote it to.
//!
//! The day of a row is the day of the hourly file it comes from (the hour the store filed it
//! under), so a partition holds exactly the lines of that day's files of that symbol. The day and
//! symbol are partition columns (in the path, not in the files), as Hive-style readers expect.
//!
//! Every row keeps its original JSON line (`line`), so nothing is lost; typed columns are
//! extracted where present. Prices and sizes are the exact decimal strings of the source (the
//! recorder writes them as strings), with a lossy `price_f64` beside for convenience.
//!
//! Memory stays bounded on a big recording: rows are buffered per partition in batches of
//! [`BATCH_ROWS`], written into row groups of at most [`ROW_GROUP_ROWS`]; when the buffered rows
//! and row groups in progress of all partitions pass [`ExportOptions::memory_budget`], the
//! largest partition's rows are written and its row group flushed early; at most [`ExportOptions::max_open`] partitions are open at once (the least
//! recently used is closed, and its later rows go to the next `part-<n>`); every partition is
//! closed when the day changes. A file is written as `part-<n>.parquet.tmp` and renamed when
//! complete, so readers never see a half file.
//!
//! This file holds the options, the choice of source files and the export loop; the row
//! extraction and Arrow schema are in `rows`, the open partition files in `writers`.

mod rows;
mod writers;

pub use rows::schema;

use crate::segment::{split_segment_name, SegmentReader};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use rows::{raw_rows, record_row};
use scalper_core::config::paths::DataKind;
use scalper_core::domain::Symbol;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use writers::Writers;

/// Rows gathered per partition before they are handed to its Parquet writer as one batch.
pub const BATCH_ROWS: usize = 4096;
/// Largest row group, rows (DuckDB and Spark parallelise by row group).
pub const ROW_GROUP_ROWS: usize = 65_536;
/// Default of [`ExportOptions::max_open`].
pub const DEFAULT_MAX_OPEN: usize = 512;
/// Default of [`ExportOptions::memory_budget`], bytes.
pub const DEFAULT_MEMORY_BUDGET: usize = 512 << 20;
/// zstd level of the Parquet pages.
pub const ZSTD_LEVEL: i32 = 3;
/// Partition value of records that belong to no symbol.
pub const GLOBAL: &str = "_global";
/// Stream name of the recording.
pub const RAW: &str = "raw";
/// Stream name of the recording's public trades, one row per trade.
pub const TRADES: &str = "trades";

/// What can go wrong in an export.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// A file or directory could not be read, listed or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A `--from` / `--to` value is not a day.
    #[error("bad day {0:?}: expected YYYY-MM-DD, e.g. 2026-01-01")]
    BadDay(String),
    /// `--from` is after `--to`.
    #[error("empty range: --from {0} is after --to {1}")]
    EmptyRange(String, String),
    /// A stream name that is not one of the data directory's streams.
    #[error("unknown stream {0:?} (known: {1})")]
    UnknownStream(String, String),
    /// The output directory already holds files.
    #[error("{0} is not empty: export into a new or empty directory")]
    OutNotEmpty(PathBuf),
    /// The data directory does not exist or is not a directory.
    #[error("{0} is not a data directory")]
    NoDataDir(PathBuf),
    /// Writing a Parquet file failed.
    #[error("cannot write {path}: {source}")]
    Parquet {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: parquet::errors::ParquetError,
    },
    /// Building a batch failed (a bug: the columns are built to the schema).
    #[error("cannot build a batch: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ExportError + '_ {
    move |source| ExportError::Io { path: path.to_path_buf(), source }
}

/// What to export.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// Data directory (holding `raw/`, `events/`…).
    pub data_dir: PathBuf,
    /// Output directory: created if missing, must be empty.
    pub out: PathBuf,
    /// First day (`YYYY-MM-DD`, inclusive); `None` = from the first.
    pub from_day: Option<String>,
    /// Last day (`YYYY-MM-DD`, inclusive); `None` = to the last.
    pub to_day: Option<String>,
    /// Only these symbol partitions (`_global` included only when named); `None` = all.
    pub symbols: Option<BTreeSet<String>>,
    /// Only these streams (`raw`, `trades`, `events`…); `None` = all.
    pub streams: Option<BTreeSet<String>>,
    /// Most partitions open at once (each holds a file handle and a row group in progress).
    pub max_open: usize,
    /// Buffered bytes of all open writers above which the largest row group is flushed early.
    pub memory_budget: usize,
}

impl ExportOptions {
    /// Everything of `data_dir` into `out`, default limits.
    pub fn new(data_dir: impl Into<PathBuf>, out: impl Into<PathBuf>) -> ExportOptions {
        ExportOptions {
            data_dir: data_dir.into(),
            out: out.into(),
            from_day: None,
            to_day: None,
            symbols: None,
            streams: None,
            max_open: DEFAULT_MAX_OPEN,
            memory_budget: DEFAULT_MEMORY_BUDGET,
        }
    }
}

/// Rows written to one partition.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PartitionStats {
    pub rows: u64,
    /// Parquet files (`part-<n>`).
    pub files: u32,
}

/// What an export did.
#[derive(Debug, Clone, Default)]
pub struct ExportSummary {
    /// Source files read.
    pub files_read: u64,
    /// Source bytes read (compressed bytes of `.zst` segments).
    pub bytes_read: u64,
    /// Complete lines read.
    pub lines: u64,
    /// Lines that are not JSON objects: skipped and counted.
    pub bad_lines: u64,
    /// The first unreadable line: where and why.
    pub first_bad: Option<String>,
    /// Torn or corrupt zstd frames, and plain files' torn last lines: skipped and counted.
    pub torn: u64,
    /// Rows per `(stream, day, symbol)`.
    pub partitions: BTreeMap<(String, String, String), PartitionStats>,
    /// Parquet files written.
    pub files_written: u64,
    /// Bytes of the Parquet files written.
    pub bytes_written: u64,
}

impl ExportSummary {
    /// Rows written to `stream`.
    pub fn rows(&self, stream: &str) -> u64 {
        self.partitions.iter().filter(|((s, _, _), _)| s == stream).map(|(_, p)| p.rows).sum()
    }
}
/// One hourly source file.
#[derive(Debug, Clone)]
struct Source {
    path: PathBuf,
    stream: &'static str,
    /// Symbol directory (`_global` for global files).
    dir_symbol: String,
    day: String,
    hour_ms: i64,
    len: u64,
    /// Counted in the summary's line and file counts (false for the second pass of a file).
    count: bool,
}

/// Start of an hour key `YYYY-MM-DDTHH`, ms; `None` when it is not one.
fn hour_start_ms(key: &str) -> Option<i64> {
    let t = chrono::NaiveDateTime::parse_from_str(&format!("{key}:00:00"), "%Y-%m-%dT%H:%M:%S").ok()?;
    Some(t.and_utc().timestamp_millis())
}

fn check_day(d: &str) -> Result<(), ExportError> {
    chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").map(|_| ()).map_err(|_| ExportError::BadDay(d.to_string()))
}

/// Streams of the data directory that have hourly files, by directory name.
pub fn stream_names() -> Vec<&'static str> {
    let mut v: Vec<&'static str> =
        DataKind::ALL.iter().filter(|k| **k != DataKind::Profiles).map(|k| k.dir_name()).collect();
    v.push(TRADES);
    v
}

/// The hourly files to read, in (day, stream, symbol, hour) order.
fn sources(opts: &ExportOptions, streams: &BTreeSet<&'static str>) -> Result<Vec<Source>, ExportError> {
    let mut out = Vec::new();
    for kind in DataKind::ALL {
        let stream = kind.dir_name();
        let wanted = streams.contains(stream) || (kind == DataKind::Raw && streams.contains(TRADES));
        if kind == DataKind::Profiles || !wanted {
            continue;
        }
        let dir = opts.data_dir.join(stream);
        let Ok(subs) = std::fs::read_dir(&dir) else { continue };
        for sub in subs {
            let sub = sub.map_err(io(&dir))?;
            if !sub.file_type().map_err(io(&sub.path()))?.is_dir() {
                continue;
            }
            let dir_symbol = sub.file_name().to_string_lossy().to_string();
            if dir_symbol != GLOBAL && !Symbol::is_valid(&dir_symbol) {
                continue;
            }
            let sub_path = sub.path();
            for f in std::fs::read_dir(&sub_path).map_err(io(&sub_path))? {
                let f = f.map_err(io(&sub_path))?;
                let name = f.file_name().to_string_lossy().to_string();
                let Some((key, _)) = split_segment_name(&name) else { continue };
                let Some(hour_ms) = hour_start_ms(key) else { continue };
                let day = key[..10].to_string();
                if opts.from_day.as_deref().is_some_and(|d| day.as_str() < d)
                    || opts.to_day.as_deref().is_some_and(|d| day.as_str() > d)
                {
                    continue;
                }
                let len = f.metadata().map_err(io(&f.path()))?.len();
                // The recording is read once per exported stream (raw, then trades), so that
                // each pass keeps at most one partition per symbol open.
                let mut count = true;
                for pass in [stream, TRADES] {
                    if streams.contains(pass) && (pass == stream || kind == DataKind::Raw) {
                        let (path, day, dir_symbol) = (f.path(), day.clone(), dir_symbol.clone());
                        out.push(Source { path, stream: pass, dir_symbol, day, hour_ms, len, count });
                        count = false;
                    }
                }
            }
        }
    }
    out.sort_by(|a, b| (&a.day, a.stream, &a.dir_symbol, a.hour_ms).cmp(&(&b.day, b.stream, &b.dir_symbol, b.hour_ms)));
    Ok(out)
}
/// Reads every line of `src` and routes its rows. `progress` gets the source bytes consumed.
fn export_file(w: &mut Writers<'_>, src: &Source, progress: Option<&AtomicU64>) -> Result<(), ExportError> {
    let mut r = SegmentReader::open(&src.path).map_err(io(&src.path))?;
    // `line_no` counts every whole line (for the first bad line's position), `lines` the
    // non-blank ones.
    let (mut line_no, mut lines, mut torn, mut bytes) = (0u64, 0u64, 0u64, 0u64);
    let mut first_bad: Option<(u64, String)> = None;
    let mut bad_count = 0u64;
    let mut note_bad = |line_no: u64, why: String| {
        bad_count += 1;
        first_bad.get_or_insert((line_no, why));
    };
    loop {
        let n = r.next_line().map_err(io(&src.path))?;
        let d = r.take_progress();
        bytes += d;
        if let Some(p) = progress {
            p.fetch_add(d, Ordering::Relaxed);
        }
        if n == 0 {
            break;
        }
        let buf = r.line();
        if buf.last() != Some(&b'\n') {
            // A torn last line (the store was cut mid-write): readers skip it.
            torn += 1;
            break;
        }
        line_no += 1;
        let text = match std::str::from_utf8(&buf[..buf.len() - 1]) {
            Ok(t) => t.strip_suffix('\r').unwrap_or(t),
            Err(e) => {
                lines += 1;
                note_bad(line_no, e.to_string());
                continue;
            }
        };
        if text.trim().is_empty() {
            continue;
        }
        lines += 1;
        if src.stream == TRADES && !text.contains("\"Trades\"") {
            continue;
        }
        let v: Value = match serde_json::from_str(text) {
            Ok(v @ Value::Object(_)) => v,
            other => {
                note_bad(line_no, other.err().map_or_else(|| "not a JSON object".to_string(), |e| e.to_string()));
                continue;
            }
        };
        if src.stream == RAW || src.stream == TRADES {
            let trades_pass = src.stream == TRADES;
            let (symbol, row, trades) = raw_rows(&v, text, src.hour_ms, trades_pass);
            if trades_pass {
                for t in trades {
                    w.push(TRADES, &symbol, t)?;
                }
            } else {
                w.push(RAW, &symbol, row)?;
            }
        } else {
            let row = record_row(&v, text, src.hour_ms);
            w.push(src.stream, &src.dir_symbol, row)?;
        }
    }
    if src.count {
        let s = &mut w.summary;
        s.lines += lines;
        s.torn += torn + r.bad_frames();
        s.bytes_read += bytes;
        s.files_read += 1;
        s.bad_lines += bad_count;
        if let (None, Some((n, why))) = (&s.first_bad, first_bad) {
            s.first_bad = Some(format!("{} line {n}: {why}", src.path.display()));
        }
    }
    Ok(())
}

/// Total size of the files an export would read, bytes (for progress).
pub fn source_bytes(opts: &ExportOptions) -> Result<u64, ExportError> {
    let streams = chosen_streams(opts)?;
    Ok(sources(opts, &streams)?.iter().map(|s| s.len).sum())
}

fn chosen_streams(opts: &ExportOptions) -> Result<BTreeSet<&'static str>, ExportError> {
    let known = stream_names();
    match &opts.streams {
        None => Ok(known.into_iter().collect()),
        Some(want) => want
            .iter()
            .map(|s| {
                known
                    .iter()
                    .find(|k| **k == s)
                    .copied()
                    .ok_or_else(|| ExportError::UnknownStream(s.clone(), known.join(", ")))
            })
            .collect(),
    }
}

/// Exports `opts.data_dir` to `opts.out`; `progress` (optional) counts the source bytes read.
pub fn export(opts: &ExportOptions, progress: Option<&AtomicU64>) -> Result<ExportSummary, ExportError> {
    for d in [&opts.from_day, &opts.to_day].into_iter().flatten() {
        check_day(d)?;
    }
    if let (Some(f), Some(t)) = (&opts.from_day, &opts.to_day) {
        if f > t {
            return Err(ExportError::EmptyRange(f.clone(), t.clone()));
        }
    }
    if !opts.data_dir.is_dir() {
        return Err(ExportError::NoDataDir(opts.data_dir.clone()));
    }
    let streams = chosen_streams(opts)?;
    if opts.out.exists() {
        let mut entries = std::fs::read_dir(&opts.out).map_err(io(&opts.out))?;
        if entries.next().is_some() {
            return Err(ExportError::OutNotEmpty(opts.out.clone()));
        }
    }
    std::fs::create_dir_all(&opts.out).map_err(io(&opts.out))?;
    let files = sources(opts, &streams)?;
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(ZSTD_LEVEL).map_err(|source| ExportError::Parquet { path: opts.out.clone(), source })?,
        ))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_created_by(format!("scalper {}", env!("CARGO_PKG_VERSION")))
        .build();
    let mut w = Writers {
        opts,
        schema: schema(),
        props,
        day: String::new(),
        open: HashMap::new(),
        next_part: HashMap::new(),
        clock: 0,
        mem: 0,
        summary: ExportSummary::default(),
    };
    for src in &files {
        if src.day != w.day {
            w.close_all()?;
            w.day = src.day.clone();
        }
        export_file(&mut w, src, progress)?;
    }
    w.close_all()?;
    Ok(w.summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn hour_keys_and_days_are_checked() {
        assert_eq!(hour_start_ms("1970-01-01T01"), Some(3_600_000));
        assert_eq!(hour_start_ms("1970-01-01T24"), None);
        assert!(check_day("2026-02-30").is_err());
        assert!(check_day("2026-02-28").is_ok());
    }
}
