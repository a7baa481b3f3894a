//! Import of public Bybit historical dumps into a recording that replay and backtest read.
//!
//! * Trades: the daily CSV files of `public.bybit.com/trading/<SYMBOL>/`, header
//!   `timestamp,symbol,side,size,price,tickDirection,trdMatchID,grossValue,homeNotional,foreignNotional`
//!   (newer files add columns such as `RPI`; columns are found by name). `timestamp` is epoch
//!   seconds with a fraction (`1585180700.0647`); rows with the same symbol and millisecond become
//!   one trade batch.
//! * Order book: the `ob500` / `ob200` … dumps, one WebSocket frame per line
//!   (`{"topic":"orderbook.500.BTCUSDT","type":"snapshot","ts":…,"data":{…},"cts":…}`), parsed
//!   with the live connector's [`parse_ws_frame`]; other market frames in the file are kept too.
//!
//! Two streaming passes: the first infers each symbol's trading rules (tick size and quantity
//! step = greatest common divisor of every price / size seen) and its turnover; the second merges
//! both sources by time (trades first on a tie: a book update follows the trade that changed
//! it) and writes `feed CONNECTED`, a ticker with the 24 h turnover (extrapolated when the dump
//! covers less than a day), the universe, the market events, and one `Timer(Second)` per second of
//! market time (`Timer(Universe)` every `universe.refresh_s` seconds), as the runtime would.
//! The recording has no configuration header: replay uses `--config` or the defaults.

use super::RecordingWriter;
use scalper_bybit::bybit_public::messages::{parse_ws_frame, MarketData, WsMessage};
use scalper_core::domain::{EventTime, Fixed, Price, Qty, Side, Symbol, TimeMs};
use scalper_core::engine::event::{Event, EventKind, FeedState, TimerKind};
use scalper_core::market::data::{Instrument, InstrumentStatus, TickerUpdate, Trade, TradeBatch};
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Bytes of the dump files read so far, shared with a progress display. Each dump is read twice
/// ([`PASSES`]); `.zst` files count their compressed bytes (compare with the files' sizes).
pub type BytesRead = Arc<AtomicU64>;

/// How many times an import reads each dump (a scan for trading rules, then the events).
pub const PASSES: u64 = 2;

/// A reader that adds the bytes it hands out to a shared counter.
struct Counting<R> {
    inner: R,
    read: Option<BytesRead>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(c) = &self.read {
            c.fetch_add(n as u64, Ordering::Relaxed);
        }
        Ok(n)
    }
}

/// Opens a dump for reading; a `.zst` file is decompressed on the fly (zstd).
fn open_text(path: &Path, read: Option<&BytesRead>) -> Result<Box<dyn BufRead>, ImportError> {
    let f = Counting { inner: File::open(path).map_err(io_err(path))?, read: read.cloned() };
    if path.extension().is_some_and(|e| e == "zst") {
        let d = zstd::stream::read::Decoder::new(f).map_err(io_err(path))?;
        Ok(Box::new(BufReader::with_capacity(1 << 20, d)))
    } else {
        Ok(Box::new(BufReader::with_capacity(1 << 20, f)))
    }
}
use std::path::{Path, PathBuf};

/// Columns the trade CSV must have.
pub const TRADE_COLUMNS: [&str; 10] = [
    "timestamp",
    "symbol",
    "side",
    "size",
    "price",
    "tickDirection",
    "trdMatchID",
    "grossValue",
    "homeNotional",
    "foreignNotional",
];

/// Why an import failed.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The trade CSV header is not Bybit's.
    #[error("{path}: not a Bybit trade dump: header {found:?} lacks {missing:?}")]
    Header {
        /// The file.
        path: PathBuf,
        /// The header found.
        found: String,
        /// The first missing column.
        missing: &'static str,
    },
    /// A malformed row or frame.
    #[error("{path}:{line}: {msg}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        msg: String,
    },
    /// Neither a trade nor an order-book file was given.
    #[error("nothing to import: give --trades and/or --orderbook")]
    NoInput,
    /// The inputs hold no market data.
    #[error("the inputs hold no market data")]
    Empty,
    /// The output directory already holds a recording (imports never mix into one).
    #[error("{0} already holds a recording (raw/_global/*.jsonl.zst or *.jsonl); choose an empty --out")]
    OutExists(PathBuf),
}

/// What was imported.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportSummary {
    /// Instruments inferred, one per symbol.
    pub instruments: Vec<Instrument>,
    /// Trades read.
    pub trades: u64,
    /// Trade batches written.
    pub trade_batches: u64,
    /// Order-book updates written.
    pub book_updates: u64,
    /// Other market events written (tickers, liquidations).
    pub other_market: u64,
    /// Frames that were not market data (acks, pongs, unknown topics), skipped.
    pub skipped_frames: u64,
    /// Timer events synthesised.
    pub timers: u64,
    /// Events written in all.
    pub events: u64,
    /// Market time of the first and last market event.
    pub first_ms: Option<TimeMs>,
    /// See `first_ms`.
    pub last_ms: Option<TimeMs>,
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> ImportError + '_ {
    move |e| ImportError::Io { path: path.to_path_buf(), source: e }
}

fn malformed(path: &Path, line: usize, msg: impl Into<String>) -> ImportError {
    ImportError::Malformed { path: path.to_path_buf(), line, msg: msg.into() }
}

/// Parses the dump's timestamp: epoch seconds with an optional fraction (`1585180700.0647`), or
/// the `2018-12-05D00:00:25.948313000` form of older dumps. Milliseconds, truncated.
pub fn parse_timestamp(s: &str) -> Option<TimeMs> {
    let s = s.trim();
    if s.contains('D') {
        let t = chrono::NaiveDateTime::parse_from_str(&s.replacen('D', "T", 1), "%Y-%m-%dT%H:%M:%S%.f").ok()?;
        return Some(t.and_utc().timestamp_millis());
    }
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    if secs.is_empty() || !secs.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs: i64 = secs.parse().ok()?;
    let mut ms = 0i64;
    for (i, b) in frac.bytes().take(3).enumerate() {
        ms += (b - b'0') as i64 * 10i64.pow(2 - i as u32);
    }
    secs.checked_mul(1000)?.checked_add(ms)
}

/// One parsed trade row.
struct Row {
    symbol: Symbol,
    trade: Trade,
}

/// Streams the rows of a trade CSV.
struct TradeCsv {
    path: PathBuf,
    rd: Box<dyn BufRead>,
    line: usize,
    buf: String,
    cols: [usize; 6],
}

impl TradeCsv {
    fn open(path: &Path, read: Option<&BytesRead>) -> Result<TradeCsv, ImportError> {
        let mut rd = open_text(path, read)?;
        let mut header = String::new();
        rd.read_line(&mut header).map_err(io_err(path))?;
        let names: Vec<&str> = header.trim().trim_start_matches('\u{feff}').split(',').map(str::trim).collect();
        if let Some(missing) = TRADE_COLUMNS.iter().find(|c| !names.contains(c)) {
            return Err(ImportError::Header { path: path.to_path_buf(), found: header.trim().to_string(), missing });
        }
        let pos = |c: &str| names.iter().position(|n| *n == c).unwrap_or(0);
        let cols = [pos("timestamp"), pos("symbol"), pos("side"), pos("size"), pos("price"), pos("trdMatchID")];
        Ok(TradeCsv { path: path.to_path_buf(), rd, line: 1, buf: String::new(), cols })
    }

    fn next_row(&mut self) -> Result<Option<Row>, ImportError> {
        loop {
            self.buf.clear();
            let n = self.rd.read_line(&mut self.buf).map_err(io_err(&self.path))?;
            if n == 0 {
                return Ok(None);
            }
            self.line += 1;
            let text = self.buf.trim();
            if text.is_empty() {
                continue;
            }
            let f: Vec<&str> = text.split(',').collect();
            let get = |i: usize| f.get(self.cols[i]).map(|s| s.trim()).unwrap_or("");
            let bad = |what: &str| malformed(&self.path, self.line, format!("{what} in {text:?}"));
            let ts = parse_timestamp(get(0)).ok_or_else(|| bad("bad timestamp"))?;
            let sym = get(1);
            if !Symbol::is_valid(sym) {
                return Err(bad("bad symbol"));
            }
            let side = Side::from_bybit(get(2)).ok_or_else(|| bad("bad side"))?;
            let qty = Qty::parse(get(3)).map_err(|_| bad("bad size"))?;
            let price = Price::parse(get(4)).map_err(|_| bad("bad price"))?;
            if qty.raw() <= 0 || price.raw() <= 0 {
                return Err(bad("non-positive size or price"));
            }
            let trade = Trade {
                ts_ms: ts,
                price,
                qty,
                aggressor: side,
                id: get(5).to_string(),
                block_trade: false,
                rpi: false,
            };
            return Ok(Some(Row { symbol: Symbol::new(sym), trade }));
        }
    }
}

/// Streams the market events of an order-book dump.
struct BookJsonl {
    path: PathBuf,
    rd: Box<dyn BufRead>,
    line: usize,
    buf: String,
    skipped: u64,
}

impl BookJsonl {
    fn open(path: &Path, read: Option<&BytesRead>) -> Result<BookJsonl, ImportError> {
        Ok(BookJsonl { path: path.to_path_buf(), rd: open_text(path, read)?, line: 0, buf: String::new(), skipped: 0 })
    }

    /// The next frame's events (several for a multi-liquidation frame).
    fn next_events(&mut self) -> Result<Option<Vec<Event>>, ImportError> {
        loop {
            self.buf.clear();
            let n = self.rd.read_line(&mut self.buf).map_err(io_err(&self.path))?;
            if n == 0 {
                return Ok(None);
            }
            self.line += 1;
            let text = self.buf.trim();
            if text.is_empty() {
                continue;
            }
            let msg = parse_ws_frame(text).map_err(|e| malformed(&self.path, self.line, e.to_string()))?;
            let WsMessage::Market { ts_ms, data } = msg else {
                self.skipped += 1;
                continue;
            };
            let exchange_ms = match &data {
                MarketData::Book(b) => b.cts_ms.or(Some(ts_ms)),
                _ => Some(ts_ms),
            };
            let mut out = Vec::new();
            data.push_events(EventTime { exchange_ms, recv_ms: ts_ms }, &mut out);
            return Ok(Some(out));
        }
    }
}

fn gcd(a: i64, b: i64) -> i64 {
    let (mut a, mut b) = (a.abs(), b.abs());
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// What the first pass learns about a symbol.
#[derive(Debug, Clone, Default)]
struct SymbolScan {
    tick: i64,
    step: i64,
    turnover: f64,
}

impl SymbolScan {
    fn price(&mut self, p: Price) {
        self.tick = gcd(self.tick, p.raw());
    }
    fn qty(&mut self, q: Qty) {
        if q.raw() > 0 {
            self.step = gcd(self.step, q.raw());
        }
    }
}

/// The merged, time-ordered market stream of both sources.
struct Merged {
    trades: Option<TradeCsv>,
    book: Option<BookJsonl>,
    next_row: Option<Row>,
    next_book: VecDeque<Event>,
}

impl Merged {
    fn open(trades: Option<&Path>, book: Option<&Path>, read: Option<&BytesRead>) -> Result<Merged, ImportError> {
        let mut m = Merged {
            trades: trades.map(|p| TradeCsv::open(p, read)).transpose()?,
            book: book.map(|p| BookJsonl::open(p, read)).transpose()?,
            next_row: None,
            next_book: VecDeque::new(),
        };
        m.fill()?;
        Ok(m)
    }

    fn fill(&mut self) -> Result<(), ImportError> {
        if self.next_row.is_none() {
            if let Some(t) = self.trades.as_mut() {
                self.next_row = t.next_row()?;
            }
        }
        if self.next_book.is_empty() {
            if let Some(b) = self.book.as_mut() {
                if let Some(evs) = b.next_events()? {
                    self.next_book.extend(evs);
                }
            }
        }
        Ok(())
    }

    fn skipped(&self) -> u64 {
        self.book.as_ref().map_or(0, |b| b.skipped)
    }

    /// Next market event in time order: a trade batch (consecutive rows of one symbol and
    /// millisecond) or a book-dump event.
    fn next(&mut self) -> Result<Option<Event>, ImportError> {
        self.fill()?;
        let take_trade = match (&self.next_row, self.next_book.front()) {
            (None, None) => return Ok(None),
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(r), Some(b)) => r.trade.ts_ms <= b.now_ms(),
        };
        if !take_trade {
            return Ok(self.next_book.pop_front());
        }
        let Some(first) = self.next_row.take() else { return Ok(None) };
        let (symbol, ts) = (first.symbol, first.trade.ts_ms);
        let mut batch = vec![first.trade];
        if let Some(t) = self.trades.as_mut() {
            loop {
                match t.next_row()? {
                    Some(r) if r.symbol == symbol && r.trade.ts_ms == ts => batch.push(r.trade),
                    other => {
                        self.next_row = other;
                        break;
                    }
                }
            }
        }
        let time = EventTime { exchange_ms: Some(ts), recv_ms: ts };
        Ok(Some(Event::new(0, time, EventKind::Trades(TradeBatch { symbol, trades: batch }))))
    }
}

/// Imports Bybit dumps into a recording under `out` (a data directory: the events go to
/// `out/raw/_global/<hour>.jsonl`). `universe_refresh_s` spaces the `Timer(Universe)` events.
/// Dumps ending in `.zst` are read through zstd.
pub fn import_bybit(
    trades: Option<&Path>,
    orderbook: Option<&Path>,
    out: &Path,
    universe_refresh_s: u64,
) -> Result<ImportSummary, ImportError> {
    import_bybit_counted(trades, orderbook, out, universe_refresh_s, None)
}

/// [`import_bybit`] adding the dump bytes it reads to `read` (for a progress display).
pub fn import_bybit_counted(
    trades: Option<&Path>,
    orderbook: Option<&Path>,
    out: &Path,
    universe_refresh_s: u64,
    read: Option<&BytesRead>,
) -> Result<ImportSummary, ImportError> {
    if trades.is_none() && orderbook.is_none() {
        return Err(ImportError::NoInput);
    }
    if super::recording_files(&scalper_core::config::paths::Paths::with_data_dir(out)).is_ok() {
        return Err(ImportError::OutExists(out.to_path_buf()));
    }
    let mut w = RecordingWriter::new(out);
    let summary = import_events_counted(
        trades,
        orderbook,
        universe_refresh_s,
        &mut |ev| w.write(&ev).map_err(io_err(out)),
        read,
    )?;
    w.finish().map_err(io_err(out))?;
    Ok(summary)
}

/// The events an import would record, in order with their `seq`, handed to `sink` instead of a
/// file (what `scalper evaluate` runs on).
pub fn import_events(
    trades: Option<&Path>,
    orderbook: Option<&Path>,
    universe_refresh_s: u64,
    sink: &mut dyn FnMut(Event) -> Result<(), ImportError>,
) -> Result<ImportSummary, ImportError> {
    import_events_counted(trades, orderbook, universe_refresh_s, sink, None)
}

/// [`import_events`] adding the dump bytes it reads to `read` (for a progress display).
pub fn import_events_counted(
    trades: Option<&Path>,
    orderbook: Option<&Path>,
    universe_refresh_s: u64,
    sink: &mut dyn FnMut(Event) -> Result<(), ImportError>,
    read: Option<&BytesRead>,
) -> Result<ImportSummary, ImportError> {
    if trades.is_none() && orderbook.is_none() {
        return Err(ImportError::NoInput);
    }
    // Pass 1: trading rules and turnover per symbol, time span.
    let mut scan: BTreeMap<Symbol, SymbolScan> = BTreeMap::new();
    let (mut first, mut last): (Option<TimeMs>, Option<TimeMs>) = (None, None);
    let mut m = Merged::open(trades, orderbook, read)?;
    while let Some(ev) = m.next()? {
        first.get_or_insert(ev.now_ms());
        last = Some(ev.now_ms());
        match &ev.kind {
            EventKind::Trades(b) => {
                let s = scan.entry(b.symbol.clone()).or_default();
                for t in &b.trades {
                    s.price(t.price);
                    s.qty(t.qty);
                    s.turnover += t.price.to_f64() * t.qty.to_f64();
                }
            }
            EventKind::Book(b) => {
                let s = scan.entry(b.symbol.clone()).or_default();
                for l in b.bids.iter().chain(b.asks.iter()) {
                    s.price(l.price);
                    s.qty(l.qty);
                }
            }
            _ => {}
        }
    }
    let (Some(first), Some(last)) = (first, last) else { return Err(ImportError::Empty) };
    let span = (last - first).max(60_000) as f64;
    let day = 86_400_000.0;
    let instruments: Vec<Instrument> = scan
        .iter()
        .filter(|(_, s)| s.tick > 0 && s.step > 0)
        .map(|(sym, s)| Instrument {
            symbol: sym.clone(),
            status: InstrumentStatus::Trading,
            tick_size: Price::from_raw(s.tick),
            qty_step: Qty::from_raw(s.step),
            min_qty: Qty::from_raw(s.step),
            max_qty: Qty(Fixed::from_int(1_000_000)),
            min_notional: Price(Fixed::from_int(5)),
            max_leverage: Price(Fixed::from_int(100)),
            launch_time_ms: 0,
        })
        .collect();

    // Pass 2: the recording.
    let mut seq = 0u64;
    let mut summary = ImportSummary { instruments: instruments.clone(), ..Default::default() };
    let mut put = |mut ev: Event| -> Result<(), ImportError> {
        seq += 1;
        ev.seq = seq;
        sink(ev)
    };
    let t0 = EventTime::local(first);
    put(Event::new(0, t0, EventKind::Feed { connection: 0, state: FeedState::Connected }))?;
    for (sym, s) in &scan {
        let turnover = if span < day { s.turnover * day / span } else { s.turnover };
        let tk = TickerUpdate { symbol: sym.clone(), turnover_24h: Some(turnover), ..Default::default() };
        put(Event::new(0, t0, EventKind::Ticker(tk)))?;
    }
    put(Event::new(0, t0, EventKind::Universe(instruments)))?;
    summary.events = 2 + scan.len() as u64;
    let mut next_second = (first.div_euclid(1000) + 1) * 1000;
    let mut seconds = 0u64;
    let refresh = universe_refresh_s.max(1);
    let mut m = Merged::open(trades, orderbook, read)?;
    while let Some(ev) = m.next()? {
        while ev.now_ms() >= next_second {
            put(Event::new(0, EventTime::local(next_second), EventKind::Timer(TimerKind::Second)))?;
            seconds += 1;
            summary.timers += 1;
            if seconds.is_multiple_of(refresh) {
                put(Event::new(0, EventTime::local(next_second), EventKind::Timer(TimerKind::Universe)))?;
                summary.timers += 1;
            }
            next_second += 1000;
        }
        match &ev.kind {
            EventKind::Trades(b) => {
                summary.trades += b.trades.len() as u64;
                summary.trade_batches += 1;
            }
            EventKind::Book(_) => summary.book_updates += 1,
            _ => summary.other_market += 1,
        }
        put(ev)?;
    }
    summary.skipped_frames = m.skipped();
    summary.events += summary.timers + summary.trade_batches + summary.book_updates + summary.other_market;
    summary.first_ms = Some(first);
    summary.last_ms = Some(last);
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_parse_exactly_in_both_dump_forms() {
        assert_eq!(parse_timestamp("1585180700.0647"), Some(1_585_180_700_064));
        assert_eq!(parse_timestamp("1585180700.5"), Some(1_585_180_700_500));
        assert_eq!(parse_timestamp("1585180700"), Some(1_585_180_700_000));
        assert_eq!(parse_timestamp("2018-12-05D00:00:25.948313000"), Some(1_543_968_025_948));
        assert_eq!(parse_timestamp("1585180700.06e3"), None);
        assert_eq!(parse_timestamp("-5"), None);
        assert_eq!(parse_timestamp(""), None);
    }

    #[test]
    fn gcd_infers_the_coarsest_consistent_grid() {
        let mut s = SymbolScan::default();
        for p in ["65000.10", "65000.30", "64999.90"] {
            s.price(Price::parse(p).unwrap());
        }
        assert_eq!(Price::from_raw(s.tick), Price::parse("0.1").unwrap());
        s.qty(Qty::parse("0.004").unwrap());
        s.qty(Qty::ZERO);
        s.qty(Qty::parse("0.010").unwrap());
        assert_eq!(Qty::from_raw(s.step), Qty::parse("0.002").unwrap());
    }
}
