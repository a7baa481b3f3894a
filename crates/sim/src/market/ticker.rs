//! Rolling 24 h statistics in 5-minute buckets (blended with a seeded virtual first day) and the
//! ticker values built from them and the book. Separate from the price process: it only
//! observes trades.

use super::Market;
use crate::prints::TickerValues;
use crate::wire::Dec;

pub(super) const BUCKET_MS: i64 = 300_000;
pub(super) const BUCKETS: usize = 288;
const DAY_MS: i64 = 86_400_000;

/// One 5-minute bucket of the 24 h window: `id` is the bucket number since the simulator's
/// start (`i64::MIN` when empty), prices in ticks, volume in lots.
#[derive(Debug, Clone, Copy)]
pub(super) struct Bucket {
    id: i64,
    open: i64,
    high: i64,
    low: i64,
    vol: i64,
    turnover: f64,
}

pub(super) const EMPTY_BUCKET: Bucket =
    Bucket { id: i64::MIN, open: 0, high: i64::MIN, low: i64::MAX, vol: 0, turnover: 0.0 };

/// Rolling 24 h statistics in 5-minute buckets, blended with a seeded "virtual" history for the
/// first day so tickers look like a market that existed before the simulator started.
#[derive(Debug, Clone)]
pub(crate) struct Stats {
    pub(super) buckets: Vec<Bucket>,
    pub(super) cur: i64,
    pub(super) vol_sum: i64,
    pub(super) turnover_sum: f64,
    pub(super) hi: i64,
    pub(super) lo: i64,
    pub(super) listed_ms: i64,
    pub(super) v_prev24: i64,
    pub(super) v_prev1h: i64,
    pub(super) v_high: i64,
    pub(super) v_low: i64,
    pub(super) v_vol: f64,
    pub(super) v_turnover: f64,
}

impl Stats {
    fn slot(id: i64) -> usize {
        id.rem_euclid(BUCKETS as i64) as usize
    }

    pub(super) fn roll(&mut self, t_rel: i64, last: i64) {
        let id = t_rel.div_euclid(BUCKET_MS);
        if id <= self.cur {
            return;
        }
        let from = if id - self.cur > BUCKETS as i64 { id - BUCKETS as i64 + 1 } else { self.cur + 1 };
        for b in from..=id {
            let s = Self::slot(b);
            let old = self.buckets[s];
            if old.id != i64::MIN {
                self.vol_sum -= old.vol;
                self.turnover_sum -= old.turnover;
            }
            self.buckets[s] = Bucket { id: b, open: last, high: last, low: last, vol: 0, turnover: 0.0 };
        }
        // Buckets older than the window that were never overwritten.
        for s in 0..BUCKETS {
            let old = self.buckets[s];
            if old.id != i64::MIN && old.id <= id - BUCKETS as i64 {
                self.vol_sum -= old.vol;
                self.turnover_sum -= old.turnover;
                self.buckets[s] = EMPTY_BUCKET;
            }
        }
        self.cur = id;
        self.hi = self.buckets.iter().filter(|b| b.id != i64::MIN).map(|b| b.high).max().unwrap_or(i64::MIN);
        self.lo = self.buckets.iter().filter(|b| b.id != i64::MIN).map(|b| b.low).min().unwrap_or(i64::MAX);
    }

    pub(super) fn on_trade(&mut self, price: i64, lots: i64, turnover: f64) {
        let b = &mut self.buckets[Self::slot(self.cur)];
        b.high = b.high.max(price);
        b.low = b.low.min(price);
        b.vol += lots;
        b.turnover += turnover;
        self.vol_sum += lots;
        self.turnover_sum += turnover;
        self.hi = self.hi.max(price);
        self.lo = self.lo.min(price);
    }

    fn virtual_weight(&self, t_rel: i64) -> f64 {
        (1.0 - (t_rel - self.listed_ms) as f64 / DAY_MS as f64).clamp(0.0, 1.0)
    }

    fn open_of(&self, id: i64) -> Option<i64> {
        let b = self.buckets[Self::slot(id)];
        (b.id == id).then_some(b.open)
    }
}

impl Market {
    /// Current ticker values at relative time `t` (ms since simulator start) and absolute time
    /// `now_ms`.
    pub fn ticker(&self, t: i64, now_ms: i64) -> TickerValues {
        let spec = &self.spec;
        let px = |ticks: i64| Dec::ticks(ticks, spec.tick_raw, spec.price_scale).to_string();
        let qty = |lots: i64| Dec::ticks(lots, spec.qty_step_raw, spec.qty_decimals).to_string();
        let st = &self.stats;
        let w = st.virtual_weight(t);
        let elapsed = t - st.listed_ms;
        let last = self.last_price;
        let prev24 =
            if elapsed < DAY_MS { st.v_prev24 } else { st.open_of(st.cur - BUCKETS as i64 + 1).unwrap_or(last) };
        let prev1h = if elapsed < 3_600_000 { st.v_prev1h } else { st.open_of(st.cur - 12).unwrap_or(last) };
        let mut high = st.hi.max(last);
        let mut low = st.lo.min(last);
        if w > 0.0 {
            high = high.max(st.v_high);
            low = low.min(st.v_low);
        }
        let vol_lots = st.vol_sum as f64 + w * st.v_vol;
        let turnover = st.turnover_sum + w * st.v_turnover;
        let mark = (self.fair.round() as i64).max(1);
        let index = ((mark as f64) * (1.0 + self.basis)).round().max(1.0) as i64;
        let pcnt = if prev24 > 0 { (last - prev24) as f64 / prev24 as f64 } else { 0.0 };
        let interval = spec.funding_interval_min.max(1) * 60_000;
        let next_funding = (now_ms.div_euclid(interval) + 1) * interval;
        let (b1, bq) = self.book.best_bid().unwrap_or((0, 0));
        let (a1, aq) = self.book.best_ask().unwrap_or((0, 0));
        let oi = self.oi_lots.round() as i64;
        TickerValues {
            symbol: spec.name.clone(),
            tick_direction: self.tick_dir.as_str().to_string(),
            price_24h_pcnt: Dec::from_f64(pcnt, 6).to_string(),
            last_price: px(last),
            prev_price_24h: px(prev24),
            high_price_24h: px(high),
            low_price_24h: px(low),
            prev_price_1h: px(prev1h),
            mark_price: px(mark),
            index_price: px(index),
            open_interest: qty(oi),
            open_interest_value: Dec::from_f64(spec.qty_f(oi as f64) * spec.price_f(mark as f64), 2).to_string(),
            turnover_24h: Dec::from_f64(turnover, 4).to_string(),
            volume_24h: Dec::from_f64(spec.qty_f(vol_lots), 4).to_string(),
            funding_interval_hour: (spec.funding_interval_min / 60).to_string(),
            funding_cap: "0.005".to_string(),
            next_funding_time: next_funding.to_string(),
            funding_rate: Dec::from_f64(self.funding, 6).to_string(),
            bid1_price: px(b1),
            bid1_size: qty(bq),
            ask1_price: px(a1),
            ask1_size: qty(aq),
        }
    }
}
