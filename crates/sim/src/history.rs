//! Candles for `GET /v5/market/kline`: what Bybit would answer for a symbol of the simulator.
//!
//! Two sources, joined at the minute the symbol listed in the simulator:
//!
//! - **Live minutes**: from that minute on, every step's fills are folded into one-minute bars
//!   ([`MinuteTape`]), so the candles are exactly the simulator's own tape (scenarios included).
//!   A minute without trades is flat at the last price with zero volume, as on Bybit. The newest
//!   [`LIVE_MINUTES_KEPT`] minutes are kept.
//! - **Earlier minutes** (symbols of the base universe only; a listing during the run has no
//!   history, like a fresh Bybit listing): synthesised from the symbol's *calm* market
//!   ([`CalmStats`], read from the market itself): a random walk of the fair price with the same
//!   per-second volatility, trades at the bid or the ask of the quoted spread, Poisson trade
//!   counts with log-normal sizes. The walk is anchored at the listing price and runs backwards,
//!   so the last synthesised close is the first live open. Every minute draws from its own
//!   seeded generator: the same `(seed, symbol, minute)` always gives the same candle, whatever
//!   the request. It reaches at most [`SYNTH_MINUTES`] before the listing (and never before the
//!   symbol's `launchTime` when that is earlier).
//!
//! Intervals `1 3 5 15 30 60 120 240 360 720 D` aggregate the minutes in UTC-aligned buckets;
//! `W` and `M` are refused with `10001` (the simulator does not serve them).

use super::prints::Fill;
use super::rng::{lognormal, mix_seed, normal, poisson};
use super::universe::InstrumentSpec;
use super::wire::Dec;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use std::collections::VecDeque;

pub(crate) const MINUTE_MS: i64 = 60_000;
/// Live minutes kept per symbol (Bybit's largest `limit`).
pub(crate) const LIVE_MINUTES_KEPT: usize = 1_000;
/// How far before its listing a base symbol's synthesised history reaches, minutes (30 days).
pub(crate) const SYNTH_MINUTES: i64 = 30 * 1_440;
/// Points of the intra-minute path of a synthesised candle (its high and low come from them).
const SUB_STEPS: usize = 12;
/// Above this many trades in a synthesised minute the volume is drawn from the normal
/// approximation of the sum instead of trade by trade.
const EXACT_TRADES_MAX: u32 = 200;
/// `limit` when the request has none.
const DEFAULT_LIMIT: usize = 200;
/// Largest `limit`.
const MAX_LIMIT: usize = 1_000;

/// How a symbol's market behaves when calm, per simulated second. Read from the market
/// ([`super::market::Market::calm_stats`]) so synthesised history follows its calibration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct CalmStats {
    /// Standard deviation of the fair price's relative move in one second.
    pub sigma_rel_per_s: f64,
    /// Expected trades per second.
    pub trades_per_s: f64,
    /// Median trade size, lots.
    pub trade_lots_median: f64,
    /// Log-sigma of the trade size.
    pub trade_lots_log_sigma: f64,
    /// Largest trade, lots (>= 1).
    pub trade_lots_max: f64,
    /// Quoted spread, ticks (>= 1).
    pub spread_ticks: i64,
}

/// One candle in ticks and lots.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Bar {
    /// Open, ticks.
    pub open: i64,
    /// High, ticks.
    pub high: i64,
    /// Low, ticks.
    pub low: i64,
    /// Close (last trade), ticks.
    pub close: i64,
    /// Traded size, lots.
    pub lots: i64,
    /// Traded value, USDT.
    pub turnover: f64,
}

impl Bar {
    fn flat(price: i64) -> Bar {
        Bar { open: price, high: price, low: price, close: price, lots: 0, turnover: 0.0 }
    }

    /// Appends a later bar of the same bucket.
    fn extend(&mut self, later: &Bar) {
        self.high = self.high.max(later.high);
        self.low = self.low.min(later.low);
        self.close = later.close;
        self.lots += later.lots;
        self.turnover += later.turnover;
    }
}

/// One-minute bars of the live market since the symbol listed (at most
/// [`LIVE_MINUTES_KEPT`]). Minute ids are `ms / 60_000`.
#[derive(Debug, Clone)]
pub(crate) struct MinuteTape {
    /// Minute of the listing (the first live minute ever).
    listed: i64,
    /// Minute of `bars[0]`.
    first: i64,
    /// Consecutive minutes from `first`; the last one is the current (open) minute.
    bars: VecDeque<Bar>,
}

impl MinuteTape {
    /// Starts at the listing: time `ts_ms`, price `price` ticks.
    pub fn new(ts_ms: i64, price: i64) -> MinuteTape {
        let m = ts_ms.div_euclid(MINUTE_MS);
        MinuteTape { listed: m, first: m, bars: VecDeque::from([Bar::flat(price)]) }
    }

    fn current(&self) -> i64 {
        self.first + self.bars.len() as i64 - 1
    }

    fn last_close(&self) -> i64 {
        self.bars.back().map_or(1, |b| b.close)
    }

    /// Opens flat bars up to `minute` (older ones beyond the cap are dropped).
    fn roll_to(&mut self, minute: i64) {
        let cur = self.current();
        if minute <= cur {
            return;
        }
        let close = self.last_close();
        let from = (cur + 1).max(minute - LIVE_MINUTES_KEPT as i64 + 1);
        if from > cur + 1 {
            self.bars.clear();
            self.first = from;
        }
        for _ in from..=minute {
            self.bars.push_back(Bar::flat(close));
        }
        while self.bars.len() > LIVE_MINUTES_KEPT {
            self.bars.pop_front();
            self.first += 1;
        }
    }

    /// Folds the fills of the step at `ts_ms` into the bar of its minute.
    pub fn record(&mut self, ts_ms: i64, fills: &[Fill], spec: &InstrumentSpec) {
        self.roll_to(ts_ms.div_euclid(MINUTE_MS));
        let Some(bar) = self.bars.back_mut() else { return };
        for f in fills {
            bar.high = bar.high.max(f.price);
            bar.low = bar.low.min(f.price);
            bar.close = f.price;
            bar.lots += f.lots;
            bar.turnover += spec.qty_f(f.lots as f64) * spec.price_f(f.price as f64);
        }
    }

    /// The bar of `minute` if it is live: a recorded one, or a flat one after the last step
    /// up to `now_minute` (the clock ran on, no step yet).
    fn bar(&self, minute: i64, now_minute: i64) -> Option<Bar> {
        if minute < self.first || minute > now_minute.max(self.current()) {
            return None;
        }
        match self.bars.get((minute - self.first) as usize) {
            Some(b) => Some(*b),
            None => Some(Bar::flat(self.last_close())),
        }
    }
}

/// Everything needed to answer for one symbol, owned so that the candles are computed outside
/// the exchange lock (a long daily request must not stall the market).
#[derive(Debug, Clone)]
pub(crate) struct Source {
    /// Seed of the symbol's synthesised history.
    pub seed: u64,
    /// Instrument (price and quantity units).
    pub spec: InstrumentSpec,
    /// Calm statistics of its market.
    pub calm: CalmStats,
    /// Its live minutes.
    pub tape: MinuteTape,
    /// Price at the listing, ticks (the anchor of the synthesised walk).
    pub listing_price: i64,
    /// Whether minutes before the listing exist (base universe: yes; listed during the run: no).
    pub has_past: bool,
}

/// A parsed request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct KlineQuery {
    /// Candle length, minutes.
    pub interval_min: i64,
    /// Earliest candle start wanted, ms (inclusive; the candle containing it counts).
    pub start_ms: Option<i64>,
    /// Latest candle start wanted, ms (inclusive).
    pub end_ms: Option<i64>,
    /// Most candles returned (the newest ones of the range).
    pub limit: usize,
}

fn params_error(m: &str) -> (i64, String) {
    (10001, format!("params error: {m}"))
}

impl KlineQuery {
    /// Parses Bybit's `interval`, `start`, `end`, `limit` (`Err`: `retCode` and message).
    pub fn parse(
        interval: Option<&str>,
        start: Option<&str>,
        end: Option<&str>,
        limit: Option<&str>,
    ) -> Result<KlineQuery, (i64, String)> {
        let interval_min = match interval.unwrap_or("") {
            "1" => 1,
            "3" => 3,
            "5" => 5,
            "15" => 15,
            "30" => 30,
            "60" => 60,
            "120" => 120,
            "240" => 240,
            "360" => 360,
            "720" => 720,
            "D" => 1_440,
            "W" | "M" => return Err(params_error("interval W and M are not served by the simulator")),
            _ => return Err(params_error("intervalTime is invalid")),
        };
        let ms = |v: Option<&str>, name: &str| -> Result<Option<i64>, (i64, String)> {
            match v {
                None | Some("") => Ok(None),
                Some(s) => match s.parse::<i64>() {
                    Ok(t) if t >= 0 => Ok(Some(t)),
                    _ => Err(params_error(&format!("{name} invalid"))),
                },
            }
        };
        let start_ms = ms(start, "start")?;
        let end_ms = ms(end, "end")?;
        if let (Some(s), Some(e)) = (start_ms, end_ms) {
            if s > e {
                return Err(params_error("start must not be after end"));
            }
        }
        let limit = match limit {
            None | Some("") => DEFAULT_LIMIT,
            Some(l) => match l.parse::<usize>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
                _ => return Err(params_error("limit must be in [1, 1000]")),
            },
        };
        Ok(KlineQuery { interval_min, start_ms, end_ms, limit })
    }
}

/// The generator of one synthesised minute.
fn minute_rng(seed: u64, minute: i64) -> SmallRng {
    SmallRng::seed_from_u64(mix_seed(seed, minute as u64))
}

/// The last trade around fair price `fair` (ticks): the bid or the ask of the quoted spread,
/// as the market quotes them.
fn trade_at(fair: f64, spread: i64, buy: bool) -> i64 {
    let bid = (fair - (spread - 1) as f64 / 2.0).floor() as i64;
    (if buy { bid + spread } else { bid }).max(1)
}

/// A synthesised minute whose fair price moves from `exp(f_open)` to `exp(f_close)` ticks.
fn synth_bar(rng: &mut SmallRng, f_open: f64, f_close: f64, src: &Source) -> Bar {
    let c = &src.calm;
    let s = c.spread_ticks.max(1);
    let open = trade_at(f_open.exp(), s, rng.random_bool(0.5));
    let close = trade_at(f_close.exp(), s, rng.random_bool(0.5));
    // Brownian bridge from f_open to f_close through SUB_STEPS points.
    let sub_sigma = c.sigma_rel_per_s * (60.0 / SUB_STEPS as f64).sqrt();
    let mut w = [0.0f64; SUB_STEPS];
    let mut acc = 0.0;
    for x in w.iter_mut() {
        acc += sub_sigma * normal(rng);
        *x = acc;
    }
    let w_end = w[SUB_STEPS - 1];
    let (mut high, mut low) = (open.max(close), open.min(close));
    for (i, wi) in w.iter().enumerate().take(SUB_STEPS - 1) {
        let k = (i + 1) as f64 / SUB_STEPS as f64;
        let f = f_open + k * (f_close - f_open) + wi - k * w_end;
        let fair = f.exp();
        high = high.max(trade_at(fair, s, true));
        low = low.min(trade_at(fair, s, false));
    }
    // Volume: Poisson trade count, log-normal sizes as the takers draw them.
    let n = poisson(rng, c.trades_per_s * 60.0);
    let size = |rng: &mut SmallRng| {
        lognormal(rng, c.trade_lots_median, c.trade_lots_log_sigma).round().clamp(1.0, c.trade_lots_max.max(1.0))
    };
    let lots = if n <= EXACT_TRADES_MAX {
        (0..n).map(|_| size(rng)).sum::<f64>()
    } else {
        let s2 = c.trade_lots_log_sigma * c.trade_lots_log_sigma;
        let mean = c.trade_lots_median * (s2 / 2.0).exp();
        let var = c.trade_lots_median * c.trade_lots_median * s2.exp() * (s2.exp() - 1.0);
        (n as f64 * mean + (n as f64 * var).sqrt() * normal(rng)).max(n as f64)
    };
    let lots = lots.round().clamp(0.0, 1e15) as i64;
    let vwap = (open + close + high + low) as f64 / 4.0;
    let turnover = src.spec.qty_f(lots as f64) * src.spec.price_f(vwap);
    Bar { open, high, low, close, lots, turnover }
}

/// Synthesised minutes `from..=to` (clipped to the synthesised range), oldest first.
fn synth_bars(src: &Source, from: i64, to: i64) -> Vec<(i64, Bar)> {
    let anchor = src.tape.listed;
    let earliest = if src.has_past {
        let launch = src.spec.launch_time_ms.div_euclid(MINUTE_MS);
        let floor = anchor - SYNTH_MINUTES;
        if launch < anchor {
            floor.max(launch)
        } else {
            floor
        }
    } else {
        anchor
    };
    let (from, to) = (from.max(earliest), to.min(anchor - 1));
    if from > to {
        return Vec::new();
    }
    let sigma_min = src.calm.sigma_rel_per_s * 60f64.sqrt();
    // Walk back from the anchor: the close of minute k is the open of minute k + 1.
    let mut f_close = (src.listing_price.max(1) as f64).ln();
    let mut out = Vec::with_capacity((to - from + 1) as usize);
    for k in (from..anchor).rev() {
        let mut rng = minute_rng(src.seed, k);
        let r = (sigma_min * normal(&mut rng)).clamp(-0.25, 0.25);
        let f_open = f_close - r;
        if k <= to {
            out.push((k, synth_bar(&mut rng, f_open, f_close, src)));
        }
        f_close = f_open;
    }
    out.reverse();
    out
}

/// One row of `result.list`: `[startTime, open, high, low, close, volume, turnover]`.
pub(crate) type Row = [String; 7];

/// `result` of `/v5/market/kline`.
#[derive(Debug, Serialize)]
pub(crate) struct KlineResult {
    /// Always `linear`.
    pub category: &'static str,
    pub symbol: String,
    /// Candles, newest first.
    pub list: Vec<Row>,
}

/// One `/v5/market/kline` answer to compute: taken under the exchange lock, run outside it.
#[derive(Debug, Clone)]
pub(crate) struct KlineJob {
    /// The symbol's data.
    pub src: Source,
    /// The request.
    pub query: KlineQuery,
    /// The simulator's time when the request arrived, ms.
    pub now_ms: i64,
}

impl KlineJob {
    /// The whole response body (Bybit's envelope, `time` = [`KlineJob::now_ms`]).
    pub fn body(&self) -> String {
        let list = klines(&self.src, &self.query, self.now_ms);
        let result = KlineResult { category: "linear", symbol: self.src.spec.name.clone(), list };
        let env = super::wire::Envelope {
            ret_code: 0,
            ret_msg: "OK",
            result,
            ret_ext_info: super::wire::Empty {},
            time: self.now_ms,
        };
        serde_json::to_string(&env).unwrap_or_default()
    }
}

/// The candles of `q` at time `now_ms`, newest first, as Bybit prints them: the still-open
/// bucket of `now_ms` included, buckets after it never.
pub(crate) fn klines(src: &Source, q: &KlineQuery, now_ms: i64) -> Vec<Row> {
    let iv = q.interval_min.max(1);
    let bucket_of = |ms: i64| ms.div_euclid(MINUTE_MS).div_euclid(iv);
    let now_bucket = bucket_of(now_ms);
    let last = q.end_ms.map_or(now_bucket, |e| bucket_of(e).min(now_bucket));
    let first_wanted = last - q.limit as i64 + 1;
    let first = q.start_ms.map_or(first_wanted, |s| bucket_of(s).max(first_wanted));
    if first > last {
        return Vec::new();
    }
    let (m_from, m_to) = (first * iv, (last + 1) * iv - 1);
    let now_minute = now_ms.div_euclid(MINUTE_MS).min(m_to);
    let mut minutes: Vec<(i64, Bar)> = synth_bars(src, m_from, m_to);
    for m in src.tape.first.max(m_from)..=now_minute {
        if let Some(b) = src.tape.bar(m, now_minute) {
            minutes.push((m, b));
        }
    }
    let mut buckets: Vec<(i64, Bar)> = Vec::new();
    for (m, b) in minutes {
        let id = m.div_euclid(iv);
        match buckets.last_mut() {
            Some((last_id, agg)) if *last_id == id => agg.extend(&b),
            _ => buckets.push((id, b)),
        }
    }
    let spec = &src.spec;
    let px = |t: i64| Dec::ticks(t, spec.tick_raw, spec.price_scale).to_string();
    buckets
        .into_iter()
        .rev()
        .map(|(id, b)| {
            [
                (id * iv * MINUTE_MS).to_string(),
                px(b.open),
                px(b.high),
                px(b.low),
                px(b.close),
                Dec::ticks(b.lots, spec.qty_step_raw, spec.qty_decimals).to_string(),
                Dec::from_f64(b.turnover, 4).to_string(),
            ]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> InstrumentSpec {
        InstrumentSpec::generate(3, 4, "SIM003USDT", None)
    }

    fn calm(spec: &InstrumentSpec) -> CalmStats {
        CalmStats {
            sigma_rel_per_s: 0.8 * (1000.0 / (365.25 * 24.0 * 3_600_000.0f64)).sqrt(),
            trades_per_s: spec.trades_per_sec,
            trade_lots_median: spec.trade_lots,
            trade_lots_log_sigma: 1.0,
            trade_lots_max: spec.level_lots * 12.0,
            spread_ticks: spec.spread_ticks,
        }
    }

    #[test]
    fn query_parsing_follows_bybit() {
        let q = KlineQuery::parse(Some("1"), None, None, None).unwrap();
        assert_eq!((q.interval_min, q.limit), (1, 200));
        assert_eq!(KlineQuery::parse(Some("D"), None, None, Some("1000")).unwrap().interval_min, 1440);
        assert_eq!(KlineQuery::parse(None, None, None, None).unwrap_err().0, 10001);
        assert_eq!(KlineQuery::parse(Some("2"), None, None, None).unwrap_err().0, 10001);
        assert_eq!(KlineQuery::parse(Some("1"), None, None, Some("0")).unwrap_err().0, 10001);
        assert_eq!(KlineQuery::parse(Some("1"), None, None, Some("1001")).unwrap_err().0, 10001);
        assert_eq!(KlineQuery::parse(Some("1"), Some("5"), Some("4"), None).unwrap_err().0, 10001);
        assert_eq!(KlineQuery::parse(Some("1"), Some("x"), None, None).unwrap_err().0, 10001);
    }

    #[test]
    fn history_is_deterministic_continuous_and_has_the_calm_volatility() {
        let spec = spec();
        let t0 = 1_700_000_000_000 + 12_345;
        let p0 = spec.start_price_ticks;
        let mut tape = MinuteTape::new(t0, p0);
        tape.record(t0 + 61_000, &[], &spec);
        let src = Source { seed: 9, spec: spec.clone(), calm: calm(&spec), tape, listing_price: p0, has_past: true };
        let now = t0 + 61_500;
        let q = KlineQuery { interval_min: 1, start_ms: None, end_ms: None, limit: 1000 };
        let a = klines(&src, &q, now);
        assert_eq!(a, klines(&src, &q, now), "same request, same answer");
        assert_eq!(a.len(), 1000);
        // Newest first, one minute apart, ending with the still-open minute of `now`.
        assert_eq!(a[0][0], (now.div_euclid(MINUTE_MS) * MINUTE_MS).to_string());
        for w in a.windows(2) {
            let (t1, t2): (i64, i64) = (w[0][0].parse().unwrap(), w[1][0].parse().unwrap());
            assert_eq!(t1 - t2, MINUTE_MS);
        }
        // The walk ends at the listing price (within the spread).
        let listing_minute = t0.div_euclid(MINUTE_MS);
        let row = a.iter().find(|r| r[0] == ((listing_minute - 1) * MINUTE_MS).to_string()).unwrap();
        let close = Dec::ticks(p0, spec.tick_raw, spec.price_scale).to_string();
        let c: f64 = row[4].parse().unwrap();
        assert!((c / close.parse::<f64>().unwrap() - 1.0).abs() < 0.01, "{c} vs {close}");
        // A later request for an older window sees the same candles.
        let q2 =
            KlineQuery { interval_min: 1, start_ms: None, end_ms: Some((listing_minute - 10) * MINUTE_MS), limit: 5 };
        let b = klines(&src, &q2, now);
        assert_eq!(b.len(), 5);
        let same = a.iter().find(|r| r[0] == b[0][0]).unwrap();
        assert_eq!(same, &b[0]);
        // Volatility of 1 m close returns ≈ σ(1 s)·√60 (the bid/ask bounce adds a little).
        let closes: Vec<f64> = a.iter().rev().map(|r| r[4].parse::<f64>().unwrap()).collect();
        let r2: Vec<f64> = closes.windows(2).map(|w| (w[1] / w[0]).ln().powi(2)).collect();
        let sd = (r2.iter().sum::<f64>() / r2.len() as f64).sqrt();
        let want = calm(&spec).sigma_rel_per_s * 60f64.sqrt();
        assert!(sd > want * 0.8 && sd < want * 1.6, "1 m σ {sd} vs {want}");
        // Volume per minute ≈ trades/s · 60 · mean size.
        let vols: Vec<f64> = a[10..].iter().map(|r| r[5].parse::<f64>().unwrap()).collect();
        let mean_vol = vols.iter().sum::<f64>() / vols.len() as f64;
        let want_vol = spec.trades_per_sec * 60.0 * spec.qty_f(spec.trade_lots) * 0.5f64.exp();
        assert!(mean_vol > want_vol * 0.7 && mean_vol < want_vol * 1.3, "volume {mean_vol} vs {want_vol}");
        // Every candle is consistent.
        for r in &a {
            let v: Vec<f64> = r[1..5].iter().map(|x| x.parse().unwrap()).collect();
            assert!(v[1] >= v[0].max(v[3]) && v[2] <= v[0].min(v[3]) && v[2] > 0.0, "{r:?}");
        }
        // Five-minute candles aggregate the same minutes.
        let q5 = KlineQuery { interval_min: 5, start_ms: None, end_ms: None, limit: 3 };
        let k5 = klines(&src, &q5, now);
        assert_eq!(k5.len(), 3);
        let t5: i64 = k5[1][0].parse().unwrap();
        assert_eq!(t5 % (5 * MINUTE_MS), 0);
    }

    #[test]
    fn a_listing_during_the_run_has_no_past() {
        let spec = spec();
        let tape = MinuteTape::new(1_700_000_000_000, spec.start_price_ticks);
        let src = Source {
            seed: 9,
            spec: spec.clone(),
            calm: calm(&spec),
            tape,
            listing_price: spec.start_price_ticks,
            has_past: false,
        };
        let q = KlineQuery { interval_min: 1, start_ms: None, end_ms: None, limit: 200 };
        assert_eq!(klines(&src, &q, 1_700_000_030_000).len(), 1);
        assert_eq!(klines(&src, &q, 1_700_000_150_000).len(), 3, "flat minutes up to now");
    }

    #[test]
    fn live_fills_make_the_bars() {
        use super::super::prints::TickDir;
        use scalper_core::domain::Side;
        let spec = spec();
        let t0 = 1_700_000_000_000;
        let mut tape = MinuteTape::new(t0, 1_000);
        let fill = |price, lots| Fill { price, lots, taker: Side::Buy, dir: TickDir::Plus, id: String::new() };
        tape.record(t0 + 100, &[fill(1_005, 3), fill(998, 2)], &spec);
        tape.record(t0 + 60_100, &[fill(1_001, 1)], &spec);
        let b = tape.bar(t0 / MINUTE_MS, t0 / MINUTE_MS + 1).unwrap();
        assert_eq!((b.open, b.high, b.low, b.close, b.lots), (1_000, 1_005, 998, 998, 5));
        let b2 = tape.bar(t0 / MINUTE_MS + 1, t0 / MINUTE_MS + 1).unwrap();
        assert_eq!((b2.open, b2.close, b2.lots), (998, 1_001, 1));
        // A long pause keeps only the newest minutes.
        tape.record(t0 + 5_000 * MINUTE_MS, &[], &spec);
        assert_eq!(tape.bars.len(), LIVE_MINUTES_KEPT);
        assert_eq!(tape.current(), t0 / MINUTE_MS + 5_000);
    }
}
