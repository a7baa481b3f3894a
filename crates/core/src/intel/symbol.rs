//! [`SymbolIntel`]: the per-symbol facade the engine calls per event. It owns every per-symbol
//! tracker (walls, pump, flow, volatility, baselines, regime) and keeps one [`FeatureSnapshot`]
//! up to date in place.
//!
//! Call order per event (after the market step applied it to the book / tape / candles):
//! `Book` → [`SymbolIntel::on_book`]; `Trades` → [`SymbolIntel::on_trades`];
//! `Liquidation` → [`SymbolIntel::on_liquidation`]; `Timer(Second)` → (after
//! `CandleSet::on_time`) [`SymbolIntel::on_second`]; a news flag change →
//! [`SymbolIntel::on_news`]. Each returns the [`IntelEvent`]s it produced (wall verdicts, pump
//! transitions, regime changes), usually none (an empty `Vec` does not allocate).
//!
//! Per-event cost: `on_book` O(levels within 1 % + scanned wall levels + levels walked for
//! slippage), `on_trades` O(trades × tracked walls), plus O(1) window sums (≤ 50 buckets).

use crate::config::Config;
use crate::domain::{Category, Side, Symbol, TimeMs};
use crate::features::baseline::{BaselineState, BookSample, SecondSample, SymbolBaselines};
use crate::features::costs::{
    liq_safety_score, liquidation_distance, min_move_for_profit, walk_book, CostParams, Walk,
};
use crate::features::flow::{FlowFeatures, Streaks};
use crate::features::imbalance::{BookFeatures, ZoneTracker};
use crate::features::math::{clamp01, median, pct_change};
use crate::features::news::{NewsSource, NewsView};
use crate::features::pump::{PumpEngine, PumpInputs};
use crate::features::snapshot::FeatureSnapshot;
use crate::features::volatility::VolatilityTracker;
use crate::features::walls::WallTracker;
use crate::features::window::{sec_of, SecondRing, RING_SECONDS};
use crate::intel::IntelConfig;
use crate::intel::IntelEvent;
use crate::market::candles::CandleSet;
use crate::market::data::{KlineHistory, Liquidation, Trade};
use crate::market::orderbook::{BookChanges, OrderBook};
use crate::regime::global::GlobalRegime;
use crate::regime::symbol::{RegimeInputs, RegimeSnapshot, SymbolRegimeTracker};
use crate::scoring::{score, signal_allowed, ScalpScore, SignalLevel, SignalThresholds};
use std::sync::Arc;

/// Ratios are capped here (a zero baseline would otherwise give infinity).
const RATIO_CAP: f64 = 1_000.0;

/// SPOOFING verdicts remembered for the "repeated spoofing" test of MANIPULATED.
const SPOOF_VERDICTS_KEPT: usize = 16;

/// Flow windows of every refresh, ms: 1, 5, 10 and 30 s.
const WINDOWS_MS: [i64; 4] = [1_000, 5_000, 10_000, 30_000];

/// Levels per side whose median size is the level-size sample.
const LEVEL_SIZE_LEVELS: usize = 20;

/// All market intelligence of one symbol.
#[derive(Debug, Clone)]
pub struct SymbolIntel {
    symbol: Symbol,
    cfg: Arc<IntelConfig>,
    costs: CostParams,
    ring: SecondRing,
    walls: WallTracker,
    pump: PumpEngine,
    streaks: Streaks,
    vol: VolatilityTracker,
    regime: SymbolRegimeTracker,
    baselines: SymbolBaselines,
    /// Last second fed to the baselines.
    last_sec: Option<i64>,
    /// Times of the latest SPOOFING verdicts, oldest first (at most [`SPOOF_VERDICTS_KEPT`]).
    spoof_verdicts: std::collections::VecDeque<TimeMs>,
    /// Median resting level size of the top levels at the last second, base units.
    level_size: f64,
    /// Tick size as a percentage of the price (σ floor).
    tick_pct: f64,
    book: BookFeatures,
    /// The zone depths behind `book`, kept from each delta's level changes.
    zones: ZoneTracker,
    book_valid: bool,
    walk_buy: Walk,
    walk_sell: Walk,
    news: Option<NewsView>,
    has_trade: bool,
    snap: FeatureSnapshot,
    extra_threshold: f64,
}

fn ratio(x: f64, base: f64) -> f64 {
    if base > 0.0 {
        (x / base).min(RATIO_CAP)
    } else if x > 0.0 {
        RATIO_CAP
    } else {
        0.0
    }
}

impl SymbolIntel {
    /// Prefetches the heap buffers an event's refresh reads (see [`crate::engine::prefetch`]):
    /// the ring's window cache and the buckets the windows and the returns read (the current
    /// second, each window's oldest, 60 s back; see `refresh`), and the wall tracker's buffers.
    #[inline]
    pub fn prefetch(&self, now: TimeMs) {
        self.ring.prefetch_windows(now, WINDOWS_MS);
        self.ring.prefetch_second(sec_of(now - 60_000));
        self.walls.prefetch();
    }

    /// The address of the second ring's page
    /// ([`crate::features::window::SecondRing::page_probe`]), fixed for the tracker's life.
    pub fn page_probe(&self) -> usize {
        self.ring.page_probe()
    }

    /// New intelligence for `symbol` starting at `now_ms`.
    pub fn new(symbol: Symbol, cfg: Arc<IntelConfig>, costs: CostParams, now_ms: TimeMs) -> Self {
        SymbolIntel {
            walls: WallTracker::new(cfg.walls.clone()),
            pump: PumpEngine::new(cfg.pump.clone()),
            vol: VolatilityTracker::new(cfg.volatility.clone()),
            regime: SymbolRegimeTracker::new(cfg.regime.clone(), now_ms),
            baselines: SymbolBaselines::new(cfg.baseline.clone()),
            last_sec: None,
            spoof_verdicts: std::collections::VecDeque::with_capacity(SPOOF_VERDICTS_KEPT),
            level_size: 0.0,
            tick_pct: 0.0,
            symbol,
            cfg,
            costs,
            ring: SecondRing::new(),
            streaks: Streaks::default(),
            book: BookFeatures::default(),
            zones: ZoneTracker::default(),
            book_valid: false,
            walk_buy: Walk::default(),
            walk_sell: Walk::default(),
            news: None,
            has_trade: false,
            snap: FeatureSnapshot { ts_ms: now_ms, ..FeatureSnapshot::default() },
            extra_threshold: 0.0,
        }
    }

    /// From the whole configuration for a symbol of `category` (clones `cfg.intel`; prefer
    /// [`SymbolIntel::new`] with a shared `Arc` for a whole universe).
    pub fn from_config(symbol: Symbol, cfg: &Config, category: Category, now_ms: TimeMs) -> Self {
        SymbolIntel::new(symbol, Arc::new(cfg.intel.clone()), cfg.cost_params(category), now_ms)
    }

    /// Applies a reloaded configuration (trackers keep their state).
    pub fn set_config(&mut self, cfg: Arc<IntelConfig>, costs: CostParams) {
        self.walls.set_config(cfg.walls.clone());
        self.pump.set_config(cfg.pump.clone());
        self.vol.set_config(cfg.volatility.clone());
        self.regime.set_config(cfg.regime.clone());
        self.baselines.set_config(cfg.baseline.clone());
        self.cfg = cfg;
        self.costs = costs;
    }

    /// Applies the costs of a new category (the trading rules' leverage and margin) from the
    /// next refresh on.
    pub fn set_costs(&mut self, costs: CostParams) {
        self.costs = costs;
    }

    /// Score points this symbol's signals need on top of the thresholds.
    pub fn extra_threshold(&self) -> f64 {
        self.extra_threshold
    }

    /// Sets the per-symbol extra added to the signal thresholds (not finite: 0).
    pub fn set_extra_threshold(&mut self, extra: f64) {
        self.extra_threshold = if extra.is_finite() { extra } else { 0.0 };
    }

    pub fn symbol(&self) -> &Symbol {
        &self.symbol
    }

    /// The current snapshot (kept up to date in place: free to read).
    pub fn snapshot(&self) -> &FeatureSnapshot {
        &self.snap
    }

    /// The current symbol regime.
    pub fn regime(&self) -> &RegimeSnapshot {
        self.regime.snapshot()
    }

    /// Book updates so far whose zone depths were re-summed from the book instead of kept from
    /// the update's level changes ([`ZoneTracker`]).
    pub fn zone_rescans(&self) -> u64 {
        self.zones.rescans()
    }

    /// Wall verdict counters: (absorbing, spoofing, cancelled).
    pub fn wall_totals(&self) -> (u64, u64, u64) {
        self.walls.totals()
    }

    /// FinalScalpScore long/short from the current snapshot and regime. O(1).
    ///
    /// While the baselines are cold the score is zero: every term is relative to "normal" for
    /// the symbol, which is not known yet.
    pub fn score(&self) -> ScalpScore {
        if !self.snap.baseline_warm {
            return ScalpScore::default();
        }
        score(&self.snap, self.regime.state(), &self.cfg.score)
    }

    /// The signal gate for a direction's score (`config.thresholds` + this symbol's extra).
    pub fn signal(
        &self,
        score: f64,
        global: GlobalRegime,
        thresholds: &crate::config::Thresholds,
        now_ms: TimeMs,
    ) -> SignalLevel {
        if !self.snap.baseline_warm {
            return SignalLevel::Blocked;
        }
        let t = SignalThresholds::from_config(thresholds, self.extra_threshold);
        signal_allowed(self.regime.snapshot(), global, score, &t, now_ms)
    }

    /// A book update was applied (or refused: pass the book anyway, invalid books reset the
    /// book features and the wall tracker).
    pub fn on_book(&mut self, book: &OrderBook, now: TimeMs) -> Vec<IntelEvent> {
        self.on_book_tracked(book, None, now)
    }

    /// [`SymbolIntel::on_book`] with the level changes of the update just applied
    /// ([`OrderBook::apply_tracked`]), from which the zone depths are kept without a rescan
    /// while the mid stays put. Same figures either way.
    pub fn on_book_tracked(&mut self, book: &OrderBook, changes: Option<&BookChanges>, now: TimeMs) -> Vec<IntelEvent> {
        let mut out: Vec<IntelEvent> = self.walls.on_book(book, now).into_iter().map(IntelEvent::Wall).collect();
        self.note_verdicts(&out);
        self.book_valid = book.is_valid();
        if self.book_valid {
            self.book = self.zones.update(book, changes);
            if self.book.mid > 0.0 {
                self.tick_pct = book.tick_size().to_f64() / self.book.mid * 100.0;
            }
            let n = self.costs.notional;
            self.walk_buy = walk_book(book, Side::Buy, n).unwrap_or_default();
            self.walk_sell = walk_book(book, Side::Sell, n).unwrap_or_default();
            if !self.has_trade {
                self.ring.set_price(now, self.book.mid);
            }
        } else {
            self.book = BookFeatures::default();
            self.zones.reset();
            self.walk_buy = Walk::default();
            self.walk_sell = Walk::default();
        }
        self.refresh(now, &mut out);
        out
    }

    /// A batch of public trades (already on the tape / candles).
    pub fn on_trades(&mut self, trades: &[Trade], now: TimeMs) -> Vec<IntelEvent> {
        let mut out = Vec::new();
        for t in trades {
            let (p, q) = (t.price.to_f64(), t.qty.to_f64());
            if p <= 0.0 || q <= 0.0 {
                continue;
            }
            let buy = t.aggressor == Side::Buy;
            self.ring.add_trade(now, p, q, buy);
            self.streaks.on_trade(buy);
            self.has_trade = true;
        }
        out.extend(self.walls.on_trades(trades, now).into_iter().map(IntelEvent::Wall));
        self.note_verdicts(&out);
        self.refresh(now, &mut out);
        out
    }

    /// Remembers the times of SPOOFING verdicts among `evs`.
    fn note_verdicts(&mut self, evs: &[IntelEvent]) {
        for e in evs {
            if let IntelEvent::Wall(w) = e {
                if w.outcome == crate::features::walls::WallOutcome::Spoofing {
                    if self.spoof_verdicts.len() == SPOOF_VERDICTS_KEPT {
                        self.spoof_verdicts.pop_front();
                    }
                    self.spoof_verdicts.push_back(w.ts_ms);
                }
            }
        }
    }

    /// SPOOFING verdicts within `window_ms` before `now`.
    fn recent_spoof_verdicts(&self, now: TimeMs, window_ms: i64) -> u32 {
        self.spoof_verdicts.iter().filter(|&&t| now - t <= window_ms).count() as u32
    }

    /// Seeds the volatility and volume baselines from one-minute history; returns whether it was
    /// taken (enough usable candles).
    pub fn on_history(&mut self, h: &KlineHistory, now: TimeMs) -> Vec<IntelEvent> {
        let mut out = Vec::new();
        if h.interval_min == 1 && self.baselines.seed_from_klines(&h.klines, now) {
            self.refresh(now, &mut out);
        }
        out
    }

    /// Restores baselines persisted by an earlier run (ignored when stale).
    pub fn on_baselines(&mut self, st: &BaselineState, now: TimeMs) -> Vec<IntelEvent> {
        let mut out = Vec::new();
        if self.baselines.restore(st, now) {
            self.refresh(now, &mut out);
        }
        out
    }

    /// The baselines (for status lines and the profile).
    pub fn baselines(&self) -> &SymbolBaselines {
        &self.baselines
    }

    /// A liquidation print of this symbol.
    pub fn on_liquidation(&mut self, liq: &Liquidation, now: TimeMs) -> Vec<IntelEvent> {
        let mut out = Vec::new();
        let notional = liq.price.to_f64() * liq.qty.to_f64();
        if notional > 0.0 && notional.is_finite() {
            self.ring.add_liquidation(now, notional, liq.side == Side::Buy);
        }
        self.refresh(now, &mut out);
        out
    }

    /// The one-second timer: baselines, streaks, volatility (call after
    /// `CandleSet::on_time(now)`), news expiry / refresh, overdue wall verdicts.
    pub fn on_second(
        &mut self,
        candles: &CandleSet,
        book: &OrderBook,
        news: &dyn NewsSource,
        now: TimeMs,
    ) -> Vec<IntelEvent> {
        let mut out = Vec::new();
        self.level_size = if book.is_valid() { median_level_size(book) } else { 0.0 };
        self.close_seconds(now);
        let usual = if self.baselines.book_warm() { self.baselines.level_size() } else { 0.0 };
        self.walls.set_reference_level(usual);
        self.vol.update(candles, now, self.baselines.volatility_ratio());
        self.news = news.active(&self.symbol, now);
        out.extend(self.walls.finalize_due(now).into_iter().map(IntelEvent::Wall));
        self.note_verdicts(&out);
        self.refresh(now, &mut out);
        out
    }

    /// A news flag changed: re-reads this symbol's strongest active flag.
    pub fn on_news(&mut self, news: &dyn NewsSource, now: TimeMs) -> Vec<IntelEvent> {
        let mut out = Vec::new();
        self.news = news.active(&self.symbol, now);
        self.refresh(now, &mut out);
        out
    }

    /// Feeds every completed second since the last call to the baselines and streaks. A gap
    /// longer than the ring is caught up once (at most [`RING_SECONDS`] samples).
    fn close_seconds(&mut self, now: TimeMs) {
        let now_sec = sec_of(now);
        let last = match self.last_sec {
            Some(l) => l,
            None => {
                self.last_sec = Some(now_sec - 1);
                return;
            }
        };
        if now_sec <= last + 1 {
            return;
        }
        let frozen = self.pump.state() != crate::features::pump::PumpState::None;
        let first = (last + 1).max(now_sec - RING_SECONDS as i64 + 1);
        let book = self.book_valid.then_some(BookSample {
            spread_bps: self.book.spread_bps,
            level_size: self.level_size,
            bid_depth: self.book.bid_notional_0_5,
            ask_depth: self.book.ask_notional_0_5,
        });
        for s in first..now_sec {
            let b = self.ring.get(s);
            let (v, c) = b.map(|b| (b.volume(), b.count)).unwrap_or((0.0, 0.0));
            let p1 = self.ring.price_at(s * 1000);
            let p0 = self.ring.price_at((s - 5) * 1000);
            let ret5_pct = match (p0, p1) {
                (Some(a), Some(b)) if a > 0.0 && b > 0.0 => Some((b / a).ln() * 100.0),
                _ => None,
            };
            let sample = SecondSample { ret5_pct, volume: v, trades: c, book };
            self.baselines.close_second(&sample, frozen, (s + 1) * 1000);
            self.streaks.on_completed_second(s, b.as_ref());
        }
        self.last_sec = Some(now_sec - 1);
    }

    /// Recomputes the derived features, runs the pump engine and the regime, and refreshes the
    /// snapshot. O(1): six bucket reads while the windows' past-second sums are cached (the
    /// same second), ~35 on the first refresh of a second.
    fn refresh(&mut self, now: TimeMs, out: &mut Vec<IntelEvent>) {
        let cfg = &*self.cfg;
        if self.news.is_some_and(|n| n.expires_ms <= now) {
            self.news = None;
        }
        let price = if self.ring.last_price() > 0.0 { self.ring.last_price() } else { self.book.mid };
        let ret = |ms: i64| self.ring.price_at(now - ms).map(|p| pct_change(price, p)).unwrap_or(0.0);
        let (r5, r30, r60) = (ret(5_000), ret(30_000), ret(60_000));
        let [w1, w5, w10, w30] = self.ring.windows_cached(now, WINDOWS_MS);
        let bl = &self.baselines;
        let warm = bl.warm();
        let flow_warm = bl.flow_warm();
        let vol_ratio = if flow_warm { ratio(w5.volume() / 5.0, bl.volume_rate()) } else { 0.0 };
        let trade_rate_ratio = if flow_warm { ratio(w5.count / 5.0, bl.trade_rate()) } else { 0.0 };
        let book_warm = bl.book_warm();
        let thin = |cur: f64, base: f64| {
            if base > 0.0 && self.book_valid && book_warm {
                clamp01(1.0 - cur / base)
            } else {
                0.0
            }
        };
        let ask_thinning = thin(self.book.ask_notional_0_5, bl.ask_depth());
        let bid_thinning = thin(self.book.bid_notional_0_5, bl.bid_depth());
        let sigma30 = bl.sigma_pct(30.0, self.tick_pct);
        let sigma60 = bl.sigma_pct(60.0, self.tick_pct);
        let z = |r: f64, sig: f64| if sig > 0.0 { r / sig } else { 0.0 };
        let (move_z_30s, move_z_60s) = (z(r30, sigma30), z(r60, sigma60));
        let traded = w10.notional();
        let share = |liq: f64| {
            if liq <= 0.0 {
                0.0
            } else if traded > 0.0 {
                clamp01(liq / traded)
            } else {
                1.0
            }
        };
        let flow = FlowFeatures::compute(&w1, &w5, &w30, r5, vol_ratio, &cfg.flow);
        let inputs = PumpInputs {
            price,
            ret_5s_pct: r5,
            ret_30s_pct: r30,
            ret_60s_pct: r60,
            vol_ratio,
            trade_rate_ratio,
            trades_5s: w5.count,
            ask_thinning,
            bid_thinning,
            liq_short_share: share(w10.liq_short),
            liq_long_share: share(w10.liq_long),
            delta_ratio_5s: flow.delta_ratio_5s,
            move_z_30s,
            warm,
        };
        if price > 0.0 {
            if let Some(ev) = self.pump.evaluate(&inputs, now) {
                out.push(IntelEvent::Pump(ev));
            }
        }
        let ws = self.walls.scores(now);
        let v = self.vol.current();
        let c = &cfg.costs;
        let stop = (c.stop_min_pct.max(c.stop_atr_mult * v.atr_3s_pct)) / 100.0;
        let liq_dist = liquidation_distance(self.costs.leverage, self.costs.mmr);
        let (mm_long, mm_short) = if self.book_valid {
            (
                min_move_for_profit(Side::Buy, &self.costs, &self.walk_buy, &self.walk_sell),
                min_move_for_profit(Side::Sell, &self.costs, &self.walk_buy, &self.walk_sell),
            )
        } else {
            (0.0, 0.0)
        };
        let b = &self.book;
        let s = &mut self.snap;
        *s = FeatureSnapshot {
            ts_ms: now,
            book_valid: self.book_valid,
            mid: b.mid,
            spread_bps: b.spread_bps,
            microprice: b.microprice,
            imb_l1: b.imb_l1,
            imb_0_1: b.imb_zone[0],
            imb_0_25: b.imb_zone[1],
            imb_0_5: b.imb_zone[2],
            imb_1_0: b.imb_zone[3],
            wall_support: ws.support,
            wall_resistance: ws.resistance,
            spoofing_score: ws.spoofing,
            spoof_bid_score: ws.spoof_bid,
            spoof_ask_score: ws.spoof_ask,
            bid_walls: ws.bid_walls,
            ask_walls: ws.ask_walls,
            bid_wall_price: ws.bid_wall_price,
            ask_wall_price: ws.ask_wall_price,
            pump_state: self.pump.state(),
            pump_since_ms: self.pump.since_ms(),
            pump_cooldown_until_ms: self.pump.cooldown_until_ms(),
            pump_peak_price: self.pump.peak(),
            price,
            ret_5s_pct: r5,
            ret_30s_pct: r30,
            ret_60s_pct: r60,
            volume_ratio: vol_ratio,
            trade_rate_ratio,
            trades_per_s: w5.count / 5.0,
            ask_thinning,
            bid_thinning,
            liq_long_share_10s: inputs.liq_long_share,
            liq_short_share_10s: inputs.liq_short_share,
            baseline_warm: inputs.warm,
            warmup_left_s: self.baselines.seconds_to_warm(),
            sigma_60s_pct: sigma60,
            move_z_30s,
            move_z_60s,
            delta_1s: flow.delta_1s,
            delta_5s: flow.delta_5s,
            delta_30s: flow.delta_30s,
            delta_ratio_1s: flow.delta_ratio_1s,
            delta_ratio_5s: flow.delta_ratio_5s,
            delta_ratio_30s: flow.delta_ratio_30s,
            buy_vol_5s: flow.buy_vol_5s,
            sell_vol_5s: flow.sell_vol_5s,
            trade_streak: self.streaks.trade_streak,
            delta_streak_s: self.streaks.delta_streak_s,
            bid_defence: flow.bid_defence,
            ask_defence: flow.ask_defence,
            atr_1s_pct: v.atr_1s_pct,
            atr_3s_pct: v.atr_3s_pct,
            volatility_ratio: v.ratio,
            volatility_score: v.score,
            explosion: v.explosion,
            min_move_long: mm_long,
            min_move_short: mm_short,
            slippage_buy: self.walk_buy.slippage,
            slippage_sell: self.walk_sell.slippage,
            book_thin: self.book_valid && !(self.walk_buy.complete && self.walk_sell.complete),
            liq_distance: liq_dist,
            stop_distance: stop,
            liq_safety: liq_safety_score(stop, liq_dist, c.liq_safe_fraction),
            news_impact: self.news.map(|n| n.impact).unwrap_or(0.0),
            news_type: self.news.map(|n| n.news_type),
            news_time_ms: self.news.map(|n| n.time_ms).unwrap_or(0),
            news_expires_ms: self.news.map(|n| n.expires_ms).unwrap_or(0),
        };
        let mut ri = RegimeInputs::from_snapshot(&self.snap);
        ri.spoof_verdicts = self.recent_spoof_verdicts(now, cfg.regime.spoof_window_ms);
        if let Some(ch) = self.regime.update(&ri, now) {
            out.push(IntelEvent::Regime(ch));
        }
    }
}

/// Median resting size of the top [`LEVEL_SIZE_LEVELS`] levels of both sides, base units (0 for
/// an empty book).
fn median_level_size(book: &OrderBook) -> f64 {
    let mut v: [f64; 2 * LEVEL_SIZE_LEVELS] = [0.0; 2 * LEVEL_SIZE_LEVELS];
    let mut n = 0;
    for side in [Side::Buy, Side::Sell] {
        for l in book.top_n(side, LEVEL_SIZE_LEVELS) {
            v[n] = l.qty.to_f64();
            n += 1;
        }
    }
    median(&mut v[..n]).unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Price, Qty};
    use crate::features::imbalance::tests::book_of;
    use crate::features::news::{ManualNewsSource, NewsType};

    fn intel() -> SymbolIntel {
        SymbolIntel::from_config(Symbol::new("ABCUSDT"), &Config::default(), Category::Normal, 0)
    }
    fn tr(px: &str, qty: &str, side: Side) -> Trade {
        Trade {
            ts_ms: 0,
            price: Price::parse(px).unwrap(),
            qty: Qty::parse(qty).unwrap(),
            aggressor: side,
            id: String::new(),
            block_trade: false,
            rpi: false,
        }
    }

    #[test]
    fn snapshot_reflects_book_trades_liquidations_and_news() {
        let mut i = intel();
        let b = book_of("0.1", &[("99.9", "30"), ("99.8", "50")], &[("100.1", "10"), ("100.2", "20")]);
        assert!(i.on_book(&b, 1_000).is_empty());
        let s = *i.snapshot();
        assert!(s.book_valid && (s.mid - 100.0).abs() < 1e-12);
        assert!((s.imb_l1 - 0.5).abs() < 1e-12);
        // Normal category: maker 0.02 % + taker 0.055 % + sell slippage of 1 000 USDT + 0.02 %.
        let sell = walk_book(&b, Side::Sell, 1_000.0).unwrap();
        assert!((s.min_move_long - (0.0002 + 0.00055 + sell.slippage + 0.0002)).abs() < 1e-12);
        assert!(!s.book_thin);
        // Leverage 10, MMR 1 %: liquidation 9 % away; stop 0.15 % → fully safe.
        assert!((s.liq_distance - 0.09).abs() < 1e-12);
        assert_eq!(s.liq_safety, 1.0);
        // Trades: 3 bought, 1 sold in the same second.
        i.on_trades(&[tr("100.1", "2", Side::Buy), tr("100.1", "1", Side::Buy), tr("99.9", "1", Side::Sell)], 1_500);
        let s = *i.snapshot();
        assert!((s.delta_1s - 2.0).abs() < 1e-9 && (s.delta_ratio_5s - 0.5).abs() < 1e-9, "{s:?}");
        assert_eq!(s.trade_streak, -1);
        assert_eq!(s.price, 99.9);
        // A liquidated long worth 99.9 × 1 against 400.2 USDT traded.
        let liq = Liquidation {
            symbol: Symbol::new("ABCUSDT"),
            ts_ms: 0,
            side: Side::Buy,
            price: Price::parse("99.9").unwrap(),
            qty: Qty::parse("1").unwrap(),
        };
        i.on_liquidation(&liq, 1_600);
        let s = *i.snapshot();
        assert!((s.liq_long_share_10s - 99.9 / 400.2).abs() < 1e-9, "{s:?}");
        assert_eq!(s.liq_short_share_10s, 0.0);
        // News.
        let mut news = ManualNewsSource::default();
        news.set_manual(&Symbol::new("ABCUSDT"), 0.9, "HACK", 1_600, 5_000);
        let ev = i.on_news(&news, 1_700);
        assert!(matches!(&ev[..], [IntelEvent::Regime(r)] if r.to == crate::regime::RegimeState::NewsDriven));
        assert_eq!(i.snapshot().news_type, Some(NewsType::Hack));
        // The flag expires by event time even before the next news refresh.
        i.on_trades(&[tr("99.9", "1", Side::Sell)], 5_000);
        assert_eq!(i.snapshot().news_impact, 0.0);
        // The snapshot is flat: every value is a scalar.
        let v = serde_json::to_value(i.snapshot()).unwrap();
        assert!(v.as_object().unwrap().values().all(|x| !x.is_object() && !x.is_array()));
        // Invalid book: book features cleared.
        let mut bad = b.clone();
        bad.invalidate();
        i.on_book(&bad, 6_000);
        assert!(!i.snapshot().book_valid && i.snapshot().mid == 0.0 && i.snapshot().min_move_long == 0.0);
    }

    #[test]
    fn baselines_need_warmup_and_time_gaps_are_bounded() {
        let mut i = intel();
        let cs = CandleSet::new(10, 0);
        let news = crate::features::news::NoNews;
        let b = book_of("0.1", &[("99.9", "30")], &[("100.1", "10")]);
        i.on_book(&b, 0);
        for s in 1..=60 {
            i.on_book(&b, s * 1000 - 600);
            i.on_trades(&[tr("100.1", "1", Side::Buy)], s * 1000 - 500);
            i.on_second(&cs, &b, &news, s * 1000);
        }
        // Live samples start with the second completed after the first event: 59 so far.
        assert!(!i.snapshot().baseline_warm);
        assert_eq!(i.snapshot().warmup_left_s, 1);
        assert_eq!(i.score(), ScalpScore::default(), "no score while cold");
        assert_eq!(
            i.signal(99.0, GlobalRegime::GlobalNormal, &Config::default().thresholds, 60_000),
            SignalLevel::Blocked
        );
        i.on_second(&cs, &b, &news, 61_000);
        assert!(i.snapshot().baseline_warm);
        assert_eq!(i.snapshot().warmup_left_s, 0);
        // One trade per second is the baseline: ratio ≈ 1 on the same flow.
        i.on_trades(&[tr("100.1", "1", Side::Buy)], 61_500);
        assert!((i.snapshot().volume_ratio - 1.0).abs() < 0.3, "{}", i.snapshot().volume_ratio);
        // A day without events is one bounded catch-up.
        i.on_second(&cs, &b, &news, 86_400_000);
        assert!(i.snapshot().volume_ratio < 1.0);
        assert_eq!(i.snapshot().pump_state, crate::features::PumpState::None);
    }
}
