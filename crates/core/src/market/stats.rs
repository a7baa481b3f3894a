//! Market statistics for calibration: an accumulator fed with the crate's typed market events
//! ([`EventKind::Book`] and [`EventKind::Trades`]) that summarises, per symbol, what a market
//! "looks like" at the second scale: per-second log-return volatility and tails, volatility
//! clustering, the size distribution of the levels near the touch, book-update and trade rates,
//! the trade-size distribution and the spread.
//!
//! Pure and deterministic: no I/O, no clock (time is the events' receive time,
//! [`Event::now_ms`]), per-symbol state in a [`BTreeMap`], so the same stream always gives the
//! same [`StatsSummary`] in the same order.
//!
//! Sampling conventions (all in market time):
//! * The book is sampled once per whole second (`floor(t / 1000)`) at the end of that second: the
//!   state after the last update with a time inside it. A second without any update repeats the
//!   previous state (the book did not change), up to [`MAX_FILL_S`] seconds; a longer silence or
//!   an invalid book breaks the series.
//! * 1 s returns are `ln(mid_s / mid_{s-1})` between consecutive samples, in basis points.
//! * Level sizes: at every sample the best [`LEVELS_PER_SIDE`] levels of each side are divided by
//!   the median size of those (up to 2 x 20) levels.
//! * Rates divide counts by the symbol's span, first to last market event.

use crate::domain::{Price, Side, Symbol, TimeMs};
use crate::engine::event::{Event, EventKind};
use crate::market::data::{BookAction, BookUpdate, TradeBatch};
use crate::market::orderbook::{ApplyKind, BookError, OrderBook};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Levels per side read near the touch for the level-size distribution.
pub const LEVELS_PER_SIDE: usize = 20;
/// A level at least this many times the snapshot's median size counts as "large".
pub const LARGE_LEVEL_MULT: f64 = 12.0;
/// Lags (in 1 s samples) of the autocorrelation of absolute returns.
pub const ACF_LAGS: [usize; 3] = [1, 5, 10];
/// Longest run of seconds without a book update that is filled with the previous state.
pub const MAX_FILL_S: i64 = 60;
/// Levels kept per side of the internal books (enough for every published depth).
const BOOK_DEPTH: usize = 1_000;

/// Per-symbol summary. Ratios are plain numbers, rates per second of market time; a statistic
/// whose sample is too small to define it is `None`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SymbolStats {
    pub symbol: String,
    /// Market time from the first to the last event of the symbol, seconds.
    pub span_s: f64,
    /// Number of 1 s returns.
    pub returns: usize,
    /// Standard deviation of 1 s log returns, basis points of the price.
    pub ret_std_bps: Option<f64>,
    /// Excess kurtosis of 1 s log returns (0 for a normal distribution).
    pub ret_excess_kurtosis: Option<f64>,
    /// Autocorrelation of |1 s return| at lag 1 s.
    pub abs_ret_acf1: Option<f64>,
    /// Autocorrelation of |1 s return| at lag 5 s.
    pub abs_ret_acf5: Option<f64>,
    /// Autocorrelation of |1 s return| at lag 10 s.
    pub abs_ret_acf10: Option<f64>,
    /// Number of level sizes sampled (up to 40 per second).
    pub level_samples: usize,
    /// Median of level size / snapshot median (about 1 by construction).
    pub level_p50: Option<f64>,
    /// 90th percentile of level size / snapshot median.
    pub level_p90: Option<f64>,
    /// 99th percentile of level size / snapshot median.
    pub level_p99: Option<f64>,
    /// Share of sampled levels at least [`LARGE_LEVEL_MULT`] times the snapshot median, 0..=1.
    pub level_share_large: Option<f64>,
    /// Book updates (snapshots and deltas; keep-alive resends excluded) per second.
    pub book_updates_per_s: Option<f64>,
    /// Mean number of levels carried by one delta (both sides).
    pub levels_per_update: Option<f64>,
    /// Number of trades.
    pub trades: usize,
    /// Trades per second.
    pub trades_per_s: Option<f64>,
    /// 90th percentile of trade size / median trade size.
    pub trade_size_p90: Option<f64>,
    /// 99th percentile of trade size / median trade size.
    pub trade_size_p99: Option<f64>,
    /// Number of spread samples (one per second).
    pub spread_samples: usize,
    /// Median spread, ticks.
    pub spread_ticks_p50: Option<f64>,
    /// 90th percentile of the spread, ticks.
    pub spread_ticks_p90: Option<f64>,
    /// Book updates refused (gaps, crossed books, off-tick prices); the book then waits for a
    /// snapshot.
    pub book_errors: u64,
}

/// Summary of every symbol seen, ordered by symbol.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StatsSummary {
    /// One entry per symbol, ascending.
    pub symbols: Vec<SymbolStats>,
}

impl StatsSummary {
    /// The entry of `symbol`.
    pub fn get(&self, symbol: &str) -> Option<&SymbolStats> {
        self.symbols.iter().find(|s| s.symbol == symbol)
    }
}

/// Accumulator of one symbol.
#[derive(Debug, Default)]
struct SymAcc {
    /// Tick size (given or inferred from the first snapshot).
    tick: Option<Price>,
    book: Option<OrderBook>,
    first_ms: Option<TimeMs>,
    last_ms: TimeMs,
    /// Second currently open (`floor(t / 1000)`).
    cur_sec: Option<i64>,
    /// Mid at the end of each closed second; `None` breaks the series.
    mids: Vec<Option<f64>>,
    level_ratios: Vec<f64>,
    spreads: Vec<f64>,
    book_updates: u64,
    deltas: u64,
    delta_levels: u64,
    trade_sizes: Vec<f64>,
    book_errors: u64,
}

fn gcd(a: i64, b: i64) -> i64 {
    let (mut a, mut b) = (a.abs(), b.abs());
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

impl SymAcc {
    fn valid_book(&self) -> Option<&OrderBook> {
        self.book.as_ref().filter(|b| b.is_valid())
    }

    /// Closes every second before `sec`, sampling the current (pre-event) state.
    fn advance_to(&mut self, sec: i64) {
        let Some(cur) = self.cur_sec else {
            self.cur_sec = Some(sec);
            return;
        };
        if sec <= cur {
            return;
        }
        let closed = (sec - cur).min(MAX_FILL_S + 1);
        for i in 0..closed {
            if i >= MAX_FILL_S {
                // Too long without news: the series breaks.
                self.mids.push(None);
                break;
            }
            self.sample();
        }
        self.cur_sec = Some(sec);
    }

    /// Records one per-second sample of the book.
    fn sample(&mut self) {
        let Some(book) = self.valid_book() else {
            self.mids.push(None);
            return;
        };
        let mid = book.mid_f64().filter(|m| *m > 0.0);
        let spread = book.spread_ticks();
        let mut sizes: Vec<f64> = book
            .top_n(Side::Buy, LEVELS_PER_SIDE)
            .chain(book.top_n(Side::Sell, LEVELS_PER_SIDE))
            .map(|l| l.qty.to_f64())
            .collect();
        self.mids.push(mid);
        if let Some(s) = spread {
            self.spreads.push(s as f64);
        }
        if let Some(med) = median(&mut sizes).filter(|m| *m > 0.0) {
            self.level_ratios.extend(sizes.iter().map(|q| q / med));
        }
    }

    fn on_book(&mut self, upd: &BookUpdate) {
        if upd.action == BookAction::Snapshot {
            if self.tick.is_none() {
                let g = upd.bids.iter().chain(upd.asks.iter()).fold(0i64, |g, l| gcd(g, l.price.raw()));
                if g > 0 {
                    self.tick = Some(Price::from_raw(g));
                }
            }
            if self.book.is_none() {
                self.book = self.tick.and_then(|t| OrderBook::new(t, BOOK_DEPTH).ok());
            }
        }
        let Some(book) = self.book.as_mut() else { return };
        match book.apply(upd) {
            Ok(o) => {
                if o.kind != ApplyKind::Resend {
                    self.book_updates += 1;
                }
                if o.kind == ApplyKind::Delta {
                    self.deltas += 1;
                    self.delta_levels += o.levels as u64;
                }
            }
            Err(e) => {
                self.book_errors += 1;
                if let BookError::OffTick { price, .. } = e {
                    // The inferred tick was too coarse: refine it; the next snapshot rebuilds.
                    let t = gcd(self.tick.map_or(0, |t| t.raw()), price.raw());
                    if t > 0 {
                        self.tick = Some(Price::from_raw(t));
                        self.book = OrderBook::new(Price::from_raw(t), BOOK_DEPTH).ok();
                    }
                }
            }
        }
    }

    fn on_trades(&mut self, batch: &TradeBatch) {
        self.trade_sizes.extend(batch.trades.iter().map(|t| t.qty.to_f64()).filter(|q| *q > 0.0));
    }

    fn summary(&self, symbol: &Symbol) -> SymbolStats {
        let span_s = self.first_ms.map_or(0.0, |f| (self.last_ms - f) as f64 / 1000.0);
        let per_s = |n: u64| (span_s > 0.0).then(|| n as f64 / span_s);
        let rets: Vec<f64> = self
            .mids
            .windows(2)
            .filter_map(|w| match (w[0], w[1]) {
                (Some(a), Some(b)) => Some((b / a).ln() * 10_000.0),
                _ => None,
            })
            .collect();
        let (std, kurt) = moments(&rets);
        let abs: Vec<f64> = rets.iter().map(|r| r.abs()).collect();
        let mut ratios = self.level_ratios.clone();
        ratios.sort_by(f64::total_cmp);
        let mut sizes = self.trade_sizes.clone();
        sizes.sort_by(f64::total_cmp);
        let med_size = percentile_sorted(&sizes, 0.5).filter(|m| *m > 0.0);
        let size_ratio = |p: f64| Some(percentile_sorted(&sizes, p)? / med_size?);
        let mut spreads = self.spreads.clone();
        spreads.sort_by(f64::total_cmp);
        let large = ratios.iter().filter(|r| **r >= LARGE_LEVEL_MULT).count();
        SymbolStats {
            symbol: symbol.to_string(),
            span_s,
            returns: rets.len(),
            ret_std_bps: std,
            ret_excess_kurtosis: kurt,
            abs_ret_acf1: autocorr(&abs, ACF_LAGS[0]),
            abs_ret_acf5: autocorr(&abs, ACF_LAGS[1]),
            abs_ret_acf10: autocorr(&abs, ACF_LAGS[2]),
            level_samples: ratios.len(),
            level_p50: percentile_sorted(&ratios, 0.5),
            level_p90: percentile_sorted(&ratios, 0.9),
            level_p99: percentile_sorted(&ratios, 0.99),
            level_share_large: (!ratios.is_empty()).then(|| large as f64 / ratios.len() as f64),
            book_updates_per_s: per_s(self.book_updates),
            levels_per_update: (self.deltas > 0).then(|| self.delta_levels as f64 / self.deltas as f64),
            trades: sizes.len(),
            trades_per_s: per_s(sizes.len() as u64),
            trade_size_p90: size_ratio(0.9),
            trade_size_p99: size_ratio(0.99),
            spread_samples: spreads.len(),
            spread_ticks_p50: percentile_sorted(&spreads, 0.5),
            spread_ticks_p90: percentile_sorted(&spreads, 0.9),
            book_errors: self.book_errors,
        }
    }
}

/// Median of `v` (reorders it); `None` when empty.
fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 })
}

/// Nearest-rank percentile (`p` in 0..=1) of an ascending slice; `None` when empty. The median
/// of an even-sized slice is the lower middle value.
pub fn percentile_sorted(v: &[f64], p: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let rank = (p.clamp(0.0, 1.0) * v.len() as f64).ceil() as usize;
    Some(v[rank.clamp(1, v.len()) - 1])
}

/// Population standard deviation (`None` below 2 samples) and excess kurtosis (`None` below 4
/// samples or with zero variance).
pub fn moments(x: &[f64]) -> (Option<f64>, Option<f64>) {
    if x.len() < 2 {
        return (None, None);
    }
    let n = x.len() as f64;
    let m = x.iter().sum::<f64>() / n;
    let m2 = x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / n;
    let m4 = x.iter().map(|v| (v - m).powi(4)).sum::<f64>() / n;
    let kurt = (x.len() >= 4 && m2 > 0.0).then(|| m4 / (m2 * m2) - 3.0);
    (Some(m2.sqrt()), kurt)
}

/// Sample autocorrelation at `lag`: `sum (x_i - m)(x_{i+lag} - m) / sum (x_i - m)^2`; `None`
/// when the series has fewer than `lag + 2` values or no variance.
pub fn autocorr(x: &[f64], lag: usize) -> Option<f64> {
    if x.len() < lag + 2 {
        return None;
    }
    let n = x.len() as f64;
    let m = x.iter().sum::<f64>() / n;
    let den: f64 = x.iter().map(|v| (v - m).powi(2)).sum();
    if den <= 0.0 {
        return None;
    }
    let num: f64 = x.windows(lag + 1).map(|w| (w[0] - m) * (w[lag] - m)).sum();
    Some(num / den)
}

/// The accumulator. Feed it events in time order with [`MarketStats::on_event`], then read
/// [`MarketStats::summary`].
#[derive(Debug, Default)]
pub struct MarketStats {
    syms: BTreeMap<Symbol, SymAcc>,
}

impl MarketStats {
    /// Empty accumulator.
    pub fn new() -> Self {
        MarketStats::default()
    }

    /// Sets a symbol's tick size (otherwise taken from a [`EventKind::Universe`] event or
    /// inferred as the greatest common divisor of its first snapshot's prices). Must come before
    /// the symbol's first snapshot to take effect.
    pub fn set_tick(&mut self, symbol: &Symbol, tick: Price) {
        if tick.raw() > 0 {
            self.syms.entry(symbol.clone()).or_default().tick.get_or_insert(tick);
        }
    }

    /// Takes one event. Book and trade events are accumulated, a universe event gives tick
    /// sizes, everything else is ignored. Events must be in non-decreasing time per symbol.
    pub fn on_event(&mut self, ev: &Event) {
        let t = ev.now_ms();
        match &ev.kind {
            EventKind::Universe(insts) => {
                for i in insts {
                    self.set_tick(&i.symbol, i.tick_size);
                }
            }
            EventKind::Book(b) => {
                let acc = self.touch(&b.symbol, t);
                acc.on_book(b);
            }
            EventKind::Trades(batch) => {
                let acc = self.touch(&batch.symbol, t);
                acc.on_trades(batch);
            }
            _ => {}
        }
    }

    /// The symbol's accumulator with its clock moved to `t`.
    fn touch(&mut self, symbol: &Symbol, t: TimeMs) -> &mut SymAcc {
        let acc = self.syms.entry(symbol.clone()).or_default();
        acc.first_ms.get_or_insert(t);
        acc.last_ms = acc.last_ms.max(t);
        acc.advance_to(t.div_euclid(1000));
        acc
    }

    /// Summary per symbol (the still-open last second is not sampled).
    pub fn summary(&self) -> StatsSummary {
        StatsSummary {
            symbols: self.syms.iter().filter(|(_, a)| a.first_ms.is_some()).map(|(s, a)| a.summary(s)).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{EventTime, Qty};
    use crate::market::data::{Level, Trade};
    use crate::testkit::lv;

    fn book(t: TimeMs, action: BookAction, u: u64, bids: Vec<Level>, asks: Vec<Level>) -> Event {
        let b = BookUpdate {
            symbol: Symbol::new("TESTUSDT"),
            action,
            depth: 200,
            bids,
            asks,
            update_id: u,
            seq: u,
            cts_ms: Some(t),
        };
        Event::new(0, EventTime::local(t), EventKind::Book(b))
    }

    fn trades(t: TimeMs, sizes: &[&str]) -> Event {
        let trades = sizes
            .iter()
            .map(|q| Trade {
                ts_ms: t,
                price: Price::parse("100").unwrap(),
                qty: Qty::parse(q).unwrap(),
                aggressor: Side::Buy,
                id: String::new(),
                block_trade: false,
                rpi: false,
            })
            .collect();
        Event::new(0, EventTime::local(t), EventKind::Trades(TradeBatch { symbol: Symbol::new("TESTUSDT"), trades }))
    }

    #[test]
    fn helpers_compute_textbook_values() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile_sorted(&v, 0.5), Some(50.0));
        assert_eq!(percentile_sorted(&v, 0.9), Some(90.0));
        assert_eq!(percentile_sorted(&v, 0.99), Some(99.0));
        assert_eq!(percentile_sorted(&[], 0.5), None);
        // Symmetric two-point distribution: kurtosis 1 - 3 = -2.
        let (s, k) = moments(&[1.0, -1.0, 1.0, -1.0]);
        assert_eq!(s, Some(1.0));
        assert!((k.unwrap() + 2.0).abs() < 1e-12);
        // One outlier among zeros: very fat tails.
        let mut x = vec![0.0; 99];
        x.push(10.0);
        assert!(moments(&x).1.unwrap() > 90.0);
        // Alternating series: lag-1 autocorrelation close to -1, lag 2 close to +1.
        let alt: Vec<f64> = (0..50).map(|i| if i % 2 == 0 { 1.0 } else { -1.0 }).collect();
        assert!(autocorr(&alt, 1).unwrap() < -0.9);
        assert!(autocorr(&alt, 2).unwrap() > 0.9);
        assert_eq!(autocorr(&[1.0, 1.0, 1.0], 1), None);
    }

    #[test]
    fn hand_made_stream_gives_the_expected_summary() {
        let mut st = MarketStats::new();
        // Snapshot at t = 0.1 s: bid 100.0 x 1, 99.9 x 1, 99.8 x 13; ask 100.1 x 1, 100.2 x 2.
        st.on_event(&book(
            100,
            BookAction::Snapshot,
            1,
            vec![lv("100.0", "1"), lv("99.9", "1"), lv("99.8", "13")],
            vec![lv("100.1", "1"), lv("100.2", "2")],
        ));
        // Second 1: the ask steps up one tick (mid 100.05 -> 100.10), 2 levels changed.
        st.on_event(&book(1_500, BookAction::Delta, 2, vec![], vec![lv("100.1", "0"), lv("100.3", "1")]));
        st.on_event(&trades(1_600, &["1", "1", "2"]));
        // Seconds 2 and 3: nothing (state repeated). Second 4: the best bid goes.
        st.on_event(&trades(4_200, &["10"]));
        st.on_event(&book(4_500, BookAction::Delta, 3, vec![lv("100.0", "0")], vec![]));
        // A gap in u is refused and counted.
        st.on_event(&book(4_600, BookAction::Delta, 9, vec![lv("99.9", "2")], vec![]));
        // Closes second 4 (the book is invalid from the refused delta on).
        st.on_event(&trades(5_100, &["1"]));
        let s = st.summary();
        assert_eq!(s.symbols.len(), 1);
        let x = s.get("TESTUSDT").unwrap();
        assert!((x.span_s - 5.0).abs() < 1e-9);
        // Mids at the end of seconds 0..=4: 100.05, 100.10, 100.10, 100.10, invalid -> 3 returns.
        assert_eq!(x.returns, 3);
        let r1 = (100.10f64 / 100.05).ln() * 1e4;
        let expect_std = {
            let m = r1 / 3.0;
            (((r1 - m).powi(2) + 2.0 * m * m) / 3.0).sqrt()
        };
        assert!((x.ret_std_bps.unwrap() - expect_std).abs() < 1e-9);
        assert!(x.ret_excess_kurtosis.is_none(), "three returns are too few");
        // Spread 1 tick in second 0, 2 ticks in seconds 1..=3 (4 samples).
        assert_eq!(x.spread_samples, 4);
        assert_eq!(x.spread_ticks_p50, Some(2.0));
        assert_eq!(x.spread_ticks_p90, Some(2.0));
        // Second 0: sizes [1, 1, 13, 1, 2], median 1: 13 is one large level in 5.
        // Seconds 1..=3: sizes [1, 1, 13, 2, 1], same; 20 samples, 4 large.
        assert_eq!(x.level_samples, 20);
        assert_eq!(x.level_share_large, Some(0.2));
        assert_eq!(x.level_p50, Some(1.0));
        assert_eq!(x.level_p99, Some(13.0));
        // 1 snapshot + 2 accepted deltas in 5 s; the deltas carried 2 and 1 levels.
        assert!((x.book_updates_per_s.unwrap() - 0.6).abs() < 1e-9);
        assert_eq!(x.levels_per_update, Some(1.5));
        assert_eq!(x.book_errors, 1);
        // Trades 1, 1, 2, 10, 1: median 1, p90 = 10, p99 = 10.
        assert_eq!(x.trades, 5);
        assert!((x.trades_per_s.unwrap() - 1.0).abs() < 1e-9);
        assert_eq!(x.trade_size_p90, Some(10.0));
        assert_eq!(x.trade_size_p99, Some(10.0));
    }

    #[test]
    fn volatility_clustering_shows_in_the_acf_and_order_is_deterministic() {
        // Calm and wild regimes of 20 s each: |returns| are autocorrelated at lag 1.
        let mut st = MarketStats::new();
        let mut u = 1;
        let mut px = 10_000i64; // ticks of 0.01
        let level = |t: i64| lv(&format!("{}.{:02}", t / 100, t % 100), "1");
        let mut t = 0;
        st.on_event(&book(t, BookAction::Snapshot, u, vec![level(px)], vec![level(px + 1)]));
        for s in 1..=200i64 {
            let wild = (s / 20) % 2 == 1;
            let step = if wild { 5 } else { 1 };
            let dir = if s % 2 == 0 { 1 } else { -1 };
            t = s * 1000 + 10;
            u += 1;
            let next = px + dir * step;
            // Move the whole book: remove the old touch, add the new one.
            st.on_event(&book(
                t,
                BookAction::Delta,
                u,
                vec![Level { qty: Qty::ZERO, ..level(px) }, level(next)],
                vec![Level { qty: Qty::ZERO, ..level(px + 1) }, level(next + 1)],
            ));
            px = next;
        }
        // A second symbol fed second: the summary still lists it by name order.
        let other = Event::new(
            0,
            EventTime::local(t),
            EventKind::Trades(TradeBatch { symbol: Symbol::new("AAAUSDT"), trades: vec![] }),
        );
        st.on_event(&other);
        let s = st.summary();
        assert_eq!(s.symbols[0].symbol, "AAAUSDT");
        let x = s.get("TESTUSDT").unwrap();
        assert!(x.returns >= 190);
        assert!(x.abs_ret_acf1.unwrap() > 0.7, "{x:?}");
        assert!(x.abs_ret_acf5.unwrap() > 0.3, "{x:?}");
        assert!(x.ret_excess_kurtosis.unwrap() < 0.0, "two-regime mixture of +-1 and +-5 ticks");
        assert_eq!(x.book_errors, 0);
        assert_eq!(serde_json::to_string(&s).unwrap(), serde_json::to_string(&st.summary()).unwrap());
    }
}
