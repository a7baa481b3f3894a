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

use crate::config::paths::DataKind;
use crate::domain::Symbol;
use crate::storage::segment::{split_segment_name, SegmentReader};
use arrow_array::builder::{Float64Builder, StringBuilder, TimestampMillisecondBuilder, UInt32Builder, UInt64Builder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

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
    /// Rows.
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

/// The Arrow schema of every exported stream: one schema, columns a stream has no value for
/// are null. `hour` and `line` are never null.
pub fn schema() -> SchemaRef {
    let ts = || DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
    Arc::new(Schema::new(vec![
        // Start of the hourly file the row comes from.
        Field::new("hour", ts(), false),
        // The record's own time: the receive time of a recorded event, a trade's fill time, a
        // store record's `ts_ms` / `exit_ms` / `end_ms`.
        Field::new("time", ts(), true),
        // The exchange's time of a recorded event.
        Field::new("exchange_time", ts(), true),
        // The recorder's sequence number of an event (its order in the recording), or a store
        // record's `seq`.
        Field::new("seq", DataType::UInt64, true),
        // The event variant (`Book`, `Trades`, `Timer`…), a store record's `kind` or `event`.
        Field::new("kind", DataType::Utf8, true),
        // `Snapshot` / `Delta` of a book event.
        Field::new("action", DataType::Utf8, true),
        // Bybit's update id `u` of a book event.
        Field::new("update_id", DataType::UInt64, true),
        // Bybit's cross sequence `seq` of a book event.
        Field::new("sequence", DataType::UInt64, true),
        // Exact decimal strings as recorded.
        Field::new("price", DataType::Utf8, true),
        Field::new("price_f64", DataType::Float64, true),
        Field::new("size", DataType::Utf8, true),
        // Aggressor of a trade, side of a liquidation or store record.
        Field::new("side", DataType::Utf8, true),
        // Exchange trade id.
        Field::new("trade_id", DataType::Utf8, true),
        // Levels of a book event (bids + asks), trades of a trade batch.
        Field::new("items", DataType::UInt32, true),
        // The source line, unchanged (for `trades`, the trade's JSON object).
        Field::new("line", DataType::Utf8, false),
    ]))
}

/// One row of [`schema`].
#[derive(Debug, Clone, Default, PartialEq)]
struct Row {
    hour: i64,
    time: Option<i64>,
    exchange_time: Option<i64>,
    seq: Option<u64>,
    kind: Option<String>,
    action: Option<String>,
    update_id: Option<u64>,
    sequence: Option<u64>,
    price: Option<String>,
    size: Option<String>,
    side: Option<String>,
    trade_id: Option<String>,
    items: Option<u32>,
    line: String,
}

fn batch(schema: &SchemaRef, rows: &[Row]) -> Result<RecordBatch, ExportError> {
    let n = rows.len();
    let mut hour = TimestampMillisecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut time = TimestampMillisecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut exch = TimestampMillisecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut seq = UInt64Builder::with_capacity(n);
    let mut kind = StringBuilder::new();
    let mut action = StringBuilder::new();
    let mut update_id = UInt64Builder::with_capacity(n);
    let mut sequence = UInt64Builder::with_capacity(n);
    let mut price = StringBuilder::new();
    let mut price_f64 = Float64Builder::with_capacity(n);
    let mut size = StringBuilder::new();
    let mut side = StringBuilder::new();
    let mut trade_id = StringBuilder::new();
    let mut items = UInt32Builder::with_capacity(n);
    let mut line = StringBuilder::with_capacity(n, rows.iter().map(|r| r.line.len()).sum());
    for r in rows {
        hour.append_value(r.hour);
        time.append_option(r.time);
        exch.append_option(r.exchange_time);
        seq.append_option(r.seq);
        kind.append_option(r.kind.as_deref());
        action.append_option(r.action.as_deref());
        update_id.append_option(r.update_id);
        sequence.append_option(r.sequence);
        price.append_option(r.price.as_deref());
        price_f64.append_option(r.price.as_deref().and_then(|p| p.parse::<f64>().ok()));
        size.append_option(r.size.as_deref());
        side.append_option(r.side.as_deref());
        trade_id.append_option(r.trade_id.as_deref());
        items.append_option(r.items);
        line.append_value(&r.line);
    }
    let cols: Vec<ArrayRef> = vec![
        Arc::new(hour.finish()),
        Arc::new(time.finish()),
        Arc::new(exch.finish()),
        Arc::new(seq.finish()),
        Arc::new(kind.finish()),
        Arc::new(action.finish()),
        Arc::new(update_id.finish()),
        Arc::new(sequence.finish()),
        Arc::new(price.finish()),
        Arc::new(price_f64.finish()),
        Arc::new(size.finish()),
        Arc::new(side.finish()),
        Arc::new(trade_id.finish()),
        Arc::new(items.finish()),
        Arc::new(line.finish()),
    ];
    Ok(RecordBatch::try_new(schema.clone(), cols)?)
}

/// Approximate memory of a buffered row, bytes.
fn row_bytes(r: &Row) -> usize {
    let s = |o: &Option<String>| o.as_ref().map_or(0, String::capacity);
    std::mem::size_of::<Row>()
        + r.line.capacity()
        + s(&r.kind)
        + s(&r.action)
        + s(&r.price)
        + s(&r.size)
        + s(&r.side)
        + s(&r.trade_id)
}

/// A decimal as its exact source text: a JSON string as is, a JSON number as serde_json prints it.
fn decimal(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn string(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str).map(str::to_string)
}

/// The partition value of a symbol named in a record: itself when it is a valid symbol (it goes
/// into a path), else [`GLOBAL`].
fn symbol_of(v: Option<&Value>) -> &str {
    match v.and_then(Value::as_str) {
        Some(s) if Symbol::is_valid(s) => s,
        _ => GLOBAL,
    }
}

/// The rows of one recorded event: its `raw` row (and partition symbol) and its `trades` rows.
fn raw_rows(v: &Value, line: &str, hour: i64, want_trades: bool) -> (String, Row, Vec<Row>) {
    let time = &v["time"];
    let mut row = Row {
        hour,
        time: time["recv_ms"].as_i64(),
        exchange_time: time["exchange_ms"].as_i64(),
        seq: v["seq"].as_u64(),
        line: line.to_string(),
        ..Row::default()
    };
    let (name, body) = match &v["kind"] {
        Value::String(s) => (s.as_str(), &Value::Null),
        Value::Object(m) if m.len() == 1 => match m.iter().next() {
            Some((k, b)) => (k.as_str(), b),
            None => ("", &Value::Null),
        },
        _ => ("", &Value::Null),
    };
    if !name.is_empty() {
        row.kind = Some(name.to_string());
    }
    let mut trades = Vec::new();
    let symbol = match name {
        "Book" => {
            row.action = string(body.get("action"));
            row.update_id = body["update_id"].as_u64();
            row.sequence = body["seq"].as_u64();
            let n = |k: &str| body[k].as_array().map_or(0, Vec::len);
            row.items = u32::try_from(n("bids") + n("asks")).ok();
            symbol_of(body.get("symbol"))
        }
        "Trades" => {
            let list = body["trades"].as_array().map(Vec::as_slice).unwrap_or_default();
            row.items = u32::try_from(list.len()).ok();
            if let [t] = list {
                row.price = decimal(t.get("price"));
                row.size = decimal(t.get("qty"));
                row.side = string(t.get("aggressor"));
                row.trade_id = string(t.get("id"));
            }
            if want_trades {
                for t in list {
                    trades.push(Row {
                        hour,
                        time: t["ts_ms"].as_i64(),
                        exchange_time: row.exchange_time,
                        seq: row.seq,
                        kind: Some("Trade".into()),
                        price: decimal(t.get("price")),
                        size: decimal(t.get("qty")),
                        side: string(t.get("aggressor")),
                        trade_id: string(t.get("id")),
                        line: t.to_string(),
                        ..Row::default()
                    });
                }
            }
            symbol_of(body.get("symbol"))
        }
        "Ticker" => {
            row.price = decimal(body.get("last_price"));
            symbol_of(body.get("symbol"))
        }
        "Liquidation" => {
            row.price = decimal(body.get("price"));
            row.size = decimal(body.get("qty"));
            row.side = string(body.get("side"));
            symbol_of(body.get("symbol"))
        }
        "BookShed" => symbol_of(Some(body)),
        "Baselines" | "History" => symbol_of(body.get("symbol")),
        _ => GLOBAL,
    };
    (symbol.to_string(), row, trades)
}

/// The row of one line of a store stream.
fn record_row(v: &Value, line: &str, hour: i64) -> Row {
    let time = ["ts_ms", "exit_ms", "end_ms", "time_ms"].iter().find_map(|k| v[*k].as_i64());
    Row {
        hour,
        time,
        seq: v["seq"].as_u64(),
        kind: string(v.get("kind")).or_else(|| string(v.get("event"))),
        price: decimal(v.get("price")),
        size: decimal(v.get("qty")).or_else(|| decimal(v.get("size"))),
        side: string(v.get("side")),
        line: line.to_string(),
        ..Row::default()
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

/// One open partition file.
struct Part {
    writer: ArrowWriter<File>,
    tmp: PathBuf,
    path: PathBuf,
    rows: Vec<Row>,
    /// Approximate bytes of `rows`.
    rows_bytes: usize,
    /// Buffered bytes of the writer at its last write.
    mem: usize,
    last_used: u64,
}

/// The open partitions of the current day.
struct Writers<'a> {
    opts: &'a ExportOptions,
    schema: SchemaRef,
    props: WriterProperties,
    day: String,
    open: HashMap<(&'static str, String), Part>,
    /// Next `part-<n>` per partition of the day.
    next_part: HashMap<(&'static str, String), u32>,
    clock: u64,
    mem: usize,
    summary: ExportSummary,
}

impl Writers<'_> {
    fn push(&mut self, stream: &'static str, symbol: &str, row: Row) -> Result<(), ExportError> {
        if self.opts.symbols.as_ref().is_some_and(|s| !s.contains(symbol)) {
            return Ok(());
        }
        self.clock += 1;
        let key = (stream, symbol.to_string());
        if !self.open.contains_key(&key) {
            self.open_part(&key)?;
        }
        let clock = self.clock;
        let bytes = row_bytes(&row);
        let full = match self.open.get_mut(&key) {
            Some(p) => {
                p.last_used = clock;
                p.rows.push(row);
                p.rows_bytes += bytes;
                self.mem += bytes;
                p.rows.len() >= BATCH_ROWS || self.mem > self.opts.memory_budget
            }
            None => false,
        };
        self.summary.partitions.entry((stream.to_string(), self.day.clone(), symbol.to_string())).or_default().rows +=
            1;
        if full {
            self.write_rows(&key)?;
        }
        Ok(())
    }

    fn open_part(&mut self, key: &(&'static str, String)) -> Result<(), ExportError> {
        while self.open.len() >= self.opts.max_open.max(1) {
            let Some(lru) = self.open.iter().min_by_key(|(_, p)| p.last_used).map(|(k, _)| k.clone()) else { break };
            self.close(&lru)?;
        }
        let n = self.next_part.entry(key.clone()).or_insert(0);
        let dir = self.opts.out.join(key.0).join(format!("day={}", self.day)).join(format!("symbol={}", key.1));
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let path = dir.join(format!("part-{n}.parquet"));
        let tmp = dir.join(format!("part-{n}.parquet.tmp"));
        *n += 1;
        let file = File::create(&tmp).map_err(io(&tmp))?;
        let writer = ArrowWriter::try_new(file, self.schema.clone(), Some(self.props.clone()))
            .map_err(|source| ExportError::Parquet { path: tmp.clone(), source })?;
        self.open.insert(
            key.clone(),
            Part { writer, tmp, path, rows: Vec::new(), rows_bytes: 0, mem: 0, last_used: self.clock },
        );
        self.summary.partitions.entry((key.0.to_string(), self.day.clone(), key.1.clone())).or_default().files += 1;
        Ok(())
    }

    /// Hands a partition's buffered rows to its writer, then, while the rows and row groups in
    /// progress of all partitions hold more than the budget, writes out and flushes the largest.
    fn write_rows(&mut self, key: &(&'static str, String)) -> Result<(), ExportError> {
        self.write_part(key, false)?;
        while self.mem > self.opts.memory_budget {
            let Some(k) = self.open.iter().max_by_key(|(_, p)| p.mem + p.rows_bytes).map(|(k, _)| k.clone()) else {
                break;
            };
            let before = self.mem;
            self.write_part(&k, true)?;
            if self.mem >= before {
                break;
            }
        }
        Ok(())
    }

    /// Writes a partition's buffered rows as one batch; `flush` ends its row group too.
    fn write_part(&mut self, key: &(&'static str, String), flush: bool) -> Result<(), ExportError> {
        let Some(p) = self.open.get_mut(key) else { return Ok(()) };
        let err = |p: &Part| {
            let path = p.tmp.clone();
            move |source| ExportError::Parquet { path, source }
        };
        if !p.rows.is_empty() {
            let b = batch(&self.schema, &p.rows)?;
            p.rows.clear();
            self.mem = self.mem.saturating_sub(p.rows_bytes);
            p.rows_bytes = 0;
            p.writer.write(&b).map_err(err(p))?;
        }
        if flush {
            p.writer.flush().map_err(err(p))?;
        }
        let mem = p.writer.memory_size();
        self.mem = self.mem.saturating_sub(p.mem) + mem;
        p.mem = mem;
        Ok(())
    }

    fn close(&mut self, key: &(&'static str, String)) -> Result<(), ExportError> {
        self.write_part(key, false)?;
        let Some(p) = self.open.remove(key) else { return Ok(()) };
        self.mem = self.mem.saturating_sub(p.mem);
        p.writer.close().map_err(|source| ExportError::Parquet { path: p.tmp.clone(), source })?;
        std::fs::rename(&p.tmp, &p.path).map_err(io(&p.path))?;
        self.summary.files_written += 1;
        self.summary.bytes_written += std::fs::metadata(&p.path).map_err(io(&p.path))?.len();
        Ok(())
    }

    fn close_all(&mut self) -> Result<(), ExportError> {
        let mut keys: Vec<_> = self.open.keys().cloned().collect();
        keys.sort();
        for k in keys {
            self.close(&k)?;
        }
        self.next_part.clear();
        Ok(())
    }
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
    use serde_json::json;

    #[test]
    fn a_book_event_goes_to_its_symbol_with_its_ids_and_levels() {
        let v = json!({"seq": 7, "time": {"exchange_ms": 5, "recv_ms": 6}, "kind": {"Book": {
            "symbol": "BTCUSDT", "action": "Delta", "depth": 50,
            "bids": [{"price": "1.5", "qty": "2"}], "asks": [], "update_id": 11, "seq": 12, "cts_ms": null}}});
        let (sym, row, trades) = raw_rows(&v, "L", 0, true);
        assert_eq!(sym, "BTCUSDT");
        assert_eq!((row.seq, row.time, row.exchange_time), (Some(7), Some(6), Some(5)));
        assert_eq!((row.update_id, row.sequence, row.items), (Some(11), Some(12), Some(1)));
        assert_eq!(row.action.as_deref(), Some("Delta"));
        assert!(trades.is_empty());
    }

    #[test]
    fn a_trade_batch_is_one_raw_row_and_one_trade_row_per_trade() {
        let t = |p: &str, id: &str| json!({"ts_ms": 9, "price": p, "qty": "0.010", "aggressor": "Buy", "id": id, "block_trade": false});
        let v = json!({"seq": 1, "time": {"exchange_ms": null, "recv_ms": 10}, "kind": {"Trades": {
            "symbol": "ETHUSDT", "trades": [t("100.10", "a"), t("100.20", "b")]}}});
        let (sym, row, trades) = raw_rows(&v, "L", 0, true);
        assert_eq!(sym, "ETHUSDT");
        assert_eq!(row.items, Some(2));
        assert_eq!(row.price, None, "two prices: none on the batch row");
        assert_eq!(trades.len(), 2);
        assert_eq!(trades[1].price.as_deref(), Some("100.20"));
        assert_eq!(trades[1].size.as_deref(), Some("0.010"), "exact decimal text");
        assert_eq!(trades[1].trade_id.as_deref(), Some("b"));
        assert_eq!(trades[1].time, Some(9));
    }

    #[test]
    fn global_events_and_bad_symbols_go_to_global() {
        let timer = json!({"seq": 2, "time": {"recv_ms": 1}, "kind": {"Timer": "Second"}});
        assert_eq!(raw_rows(&timer, "L", 0, true).0, GLOBAL);
        let bad = json!({"seq": 3, "time": {"recv_ms": 1}, "kind": {"BookShed": "../etc"}});
        assert_eq!(raw_rows(&bad, "L", 0, true).0, GLOBAL);
        let shed = json!({"seq": 3, "time": {"recv_ms": 1}, "kind": {"BookShed": "XUSDT"}});
        assert_eq!(raw_rows(&shed, "L", 0, true).0, "XUSDT");
    }

    #[test]
    fn store_records_keep_kind_time_and_exact_prices() {
        let v = json!({"kind": "WALL", "price": "60905.5", "size": "28.088", "side": "Buy", "ts_ms": 17});
        let r = record_row(&v, "L", 3);
        assert_eq!((r.kind.as_deref(), r.time, r.hour), (Some("WALL"), Some(17), 3));
        assert_eq!(
            (r.price.as_deref(), r.size.as_deref(), r.side.as_deref()),
            (Some("60905.5"), Some("28.088"), Some("Buy"))
        );
        let e = record_row(&json!({"event": "STATE"}), "L", 3);
        assert_eq!((e.kind.as_deref(), e.time), (Some("STATE"), None));
    }

    #[test]
    fn hour_keys_and_days_are_checked() {
        assert_eq!(hour_start_ms("1970-01-01T01"), Some(3_600_000));
        assert_eq!(hour_start_ms("1970-01-01T24"), None);
        assert!(check_day("2026-02-30").is_err());
        assert!(check_day("2026-02-28").is_ok());
    }
}
