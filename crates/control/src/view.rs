//! What the control plane shows: a read-only view of the core, captured by the core loop once per
//! second and published through a `watch` channel beside [`EngineSnapshot`].
//!
//! [`ControlView::capture`] is the one place that fills the view from the core, one line per
//! field: market state, features, regimes, scores, state machines, the portfolio and controls.

use scalper_core::domain::{Side, TimeMs};
use scalper_core::engine::core::CorePipeline;
use scalper_core::engine::event::FeedState;
use scalper_core::engine::snapshot::EngineSnapshot;
use scalper_core::regime::global::GlobalRegime;
use scalper_core::risk::engine::RiskFlags;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Levels used for the raw book imbalance shown until the feature engine provides its own.
pub const IMBALANCE_LEVELS: usize = 5;
/// Default number of hot-list entries.
pub const DEFAULT_HOTLIST: usize = 20;
/// Largest hot list served.
pub const MAX_HOTLIST: usize = 500;

/// Engine-wide state beyond [`EngineSnapshot`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GlobalView {
    /// New entries paused by the operator.
    pub paused: bool,
    /// GLOBAL_PANIC: everything closed, new trades blocked.
    pub global_panic: bool,
    /// Portfolio integrity broken (positions disagree with the venue).
    pub integrity_broken: bool,
    /// Global RISK_OFF (any cause).
    pub risk_off: bool,
    /// Global regime label (`GLOBAL_NORMAL`, `GLOBAL_RISK_OFF`, `GLOBAL_PANIC`; empty = unknown).
    pub global_regime: String,
    /// Equity, USDT.
    pub equity: f64,
    /// Wallet balance, USDT.
    pub balance: f64,
    /// Realized PnL since start, USDT.
    pub realized_pnl: f64,
    /// Unrealized PnL of open positions, USDT.
    pub unrealized_pnl: f64,
    /// Realized PnL of the current UTC day, USDT.
    pub daily_pnl: f64,
    /// Σ open risk / equity.
    pub portfolio_heat: f64,
    /// Configured maximum heat (fraction of equity).
    pub max_portfolio_heat: f64,
    /// Configured daily loss limit (fraction of equity).
    pub daily_loss_limit: f64,
    pub open_positions: u32,
    /// Blacklisted symbols, sorted.
    pub blacklist: Vec<String>,
    /// Active manual news flags, sorted by symbol.
    pub news_flags: Vec<NewsFlagView>,
    /// Private (account) stream state: `CONNECTED`, `RECONNECTING`, `DOWN`; empty without a
    /// private connector.
    pub private_feed: String,
    /// The exchange account is known (private stream connected and reconciled): LIVE possible.
    pub exchange_account_known: bool,
    /// Orders sent to the exchange and not yet seen to end.
    pub live_orders: u32,
    /// A PANIC was confirmed flat by the exchange's own state.
    pub panic_confirmed: bool,
    /// Symbols whose baselines are still warming up.
    #[serde(default)]
    pub symbols_warming: u32,
}

/// A manual news flag.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NewsFlagView {
    pub symbol: String,
    /// Impact in [0, 1].
    pub impact: f64,
    /// Type, e.g. `LISTING`.
    pub news_type: String,
    /// Expiry, ms since the epoch.
    pub expires_ms: TimeMs,
}

/// An open position on a symbol.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PositionView {
    /// `Buy` (long) or `Sell` (short).
    pub side: String,
    /// Size in base coin.
    pub qty: f64,
    /// Average entry price.
    pub entry_price: f64,
    /// Unrealized PnL, USDT.
    pub unrealized_pnl: f64,
    /// PnL in units of the initial risk R.
    pub r_multiple: f64,
}

impl PositionView {
    /// Signed size: long positive, short negative.
    pub fn signed_qty(&self) -> f64 {
        match Side::from_bybit(&self.side) {
            Some(Side::Sell) => -self.qty,
            _ => self.qty,
        }
    }
}

/// One symbol as the control plane shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SymbolView {
    pub symbol: String,
    /// `prime`, `normal` or `wild`.
    pub category: String,
    /// State-machine state (empty = not produced yet).
    pub state: String,
    /// Symbol regime (`NORMAL`, `PUMP`, `MANIPULATED`, `NEWS_DRIVEN`, `COOLDOWN`; empty = unknown).
    pub regime: String,
    /// Last price (last trade, else ticker, else mid).
    pub price: f64,
    /// Best bid.
    pub bid: f64,
    /// Best ask.
    pub ask: f64,
    pub mark_price: f64,
    /// Spread in basis points of the mid.
    pub spread_bps: f64,
    /// Book imbalance in [-1, 1].
    pub imbalance: f64,
    /// Bid-side wall score.
    pub wall_score_bid: f64,
    /// Ask-side wall score.
    pub wall_score_ask: f64,
    pub spoofing_score: f64,
    /// Pump phase label (empty = none).
    pub pump_state: String,
    /// Short-term volatility (fraction).
    pub volatility: f64,
    /// Taker flow delta (base coin).
    pub flow_delta: f64,
    /// Minimum move needed to beat fees, percent.
    pub min_move_pct: f64,
    /// News impact in [0, 1].
    pub news_impact: f64,
    /// Long score (0–100).
    pub score_long: f64,
    /// Short score (0–100).
    pub score_short: f64,
    /// 24 h turnover, USDT.
    pub turnover_24h: f64,
    pub funding_rate: f64,
    /// Open interest, base coin.
    pub open_interest: f64,
    /// Book is valid (snapshot applied, in sequence).
    pub book_valid: bool,
    /// Last book update (event time), 0 = never.
    pub last_book_ms: TimeMs,
    /// Last trade (event time), 0 = never.
    pub last_trade_ms: TimeMs,
    /// Book errors seen.
    pub book_errors: u64,
    /// Blocked from new signals.
    pub blacklisted: bool,
    /// Open position, if any.
    pub position: Option<PositionView>,
    /// Baselines warm: judged and enterable.
    #[serde(default)]
    pub warm: bool,
    /// Seconds of live data still needed to be warm (0 when warm).
    #[serde(default)]
    pub warmup_left_s: u32,
    /// What is still cold ("" when warm).
    #[serde(default)]
    pub warm_reason: String,
    /// Price increment of the instrument (0 = unknown): prices are shown at this precision.
    #[serde(default)]
    pub tick_size: f64,
    /// Quantity increment of the instrument, base coin (0 = unknown).
    #[serde(default)]
    pub qty_step: f64,
}

impl SymbolView {
    /// The better of the two scores (hot-list rank).
    pub fn best_score(&self) -> f64 {
        self.score_long.max(self.score_short)
    }
}

/// An open trade.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TradeView {
    /// Trade id.
    pub id: String,
    pub symbol: String,
    /// `Buy` (long) or `Sell` (short).
    pub side: String,
    /// Size, base coin.
    pub qty: f64,
    /// Average entry price.
    pub entry_price: f64,
    pub mark_price: f64,
    pub stop_price: f64,
    /// Take-profit price.
    pub take_profit: f64,
    /// Unrealized PnL, USDT.
    pub unrealized_pnl: f64,
    /// PnL in R.
    pub r_multiple: f64,
    /// Opening time, ms.
    pub opened_ms: TimeMs,
    /// Trade state (e.g. `OPEN`, `EXITING`).
    pub state: String,
    /// Price increment of the instrument (0 = unknown).
    #[serde(default)]
    pub tick_size: f64,
    /// Quantity increment of the instrument, base coin (0 = unknown).
    #[serde(default)]
    pub qty_step: f64,
}

/// Everything the control plane reads beside [`EngineSnapshot`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ControlView {
    /// Event time of the capture.
    pub ts_ms: TimeMs,
    /// Engine-wide state.
    pub global: GlobalView,
    /// Every tracked symbol, sorted by name.
    pub symbols: Vec<SymbolView>,
    /// Open trades, sorted by symbol then id.
    pub trades: Vec<TradeView>,
}

impl ControlView {
    /// Captures the view from the core pipeline (call from the core loop, next to the snapshot).
    ///
    /// Derived fields: `risk_off` is the risk engine's verdict without the operator pause and
    /// DEGRADED (they have their own flags): feed RISK_OFF, a non-normal global regime, heat,
    /// drawdown or daily-loss limits, broken integrity or the kill switch. `realized_pnl` is the
    /// balance minus the balance at the start (or when LIVE was entered: the wallet then). Per symbol, `volatility` is the 1 s ATR as a
    /// fraction, `flow_delta` the 5 s taker delta, `min_move_pct` the larger of the long and short
    /// MinMoveForProfit, walls are the support (bid) and resistance (ask) scores.
    pub fn capture(p: &CorePipeline, ts_ms: TimeMs) -> ControlView {
        let cfg = p.config();
        let controls = p.controls();
        let desk = p.desk();
        let pf = &desk.portfolio;
        let kill = controls.kill.is_engaged();
        let regime = p.global_regime();
        let integrity_broken = desk.integrity.is_broken();
        let risk_flags = RiskFlags {
            panic: kill,
            kill_switch: kill,
            global_risk_off: p.flags().feed_risk_off || regime != GlobalRegime::GlobalNormal,
            integrity_broken,
            ..RiskFlags::default()
        };
        let news_flags = p
            .news()
            .flags()
            .filter(|f| f.expires_ms > ts_ms)
            .map(|f| NewsFlagView {
                symbol: f.symbol.as_str().to_string(),
                impact: f.impact,
                news_type: f.news_type.as_str().to_string(),
                expires_ms: f.expires_ms,
            })
            .collect();
        let global = GlobalView {
            paused: controls.paused,
            global_panic: kill,
            integrity_broken,
            risk_off: !desk.risk.verdict(pf, &risk_flags, ts_ms).allows_new_trades(),
            global_regime: regime.as_str().to_string(),
            equity: pf.equity().to_f64(),
            balance: pf.balance().to_f64(),
            realized_pnl: pf.realized_since_base().to_f64(),
            unrealized_pnl: pf.unrealized().to_f64(),
            daily_pnl: pf.daily(ts_ms).realized.to_f64(),
            portfolio_heat: pf.heat(),
            max_portfolio_heat: cfg.risk.max_portfolio_heat,
            daily_loss_limit: cfg.risk.daily_loss_limit,
            open_positions: pf.positions().len() as u32,
            blacklist: controls.blacklist.iter().map(|s| s.as_str().to_string()).collect(),
            private_feed: desk.live.feed.map(|f| feed_label(f).to_string()).unwrap_or_default(),
            exchange_account_known: desk.live.ready(),
            live_orders: desk.live.orders.len() as u32,
            panic_confirmed: desk.live.panic_confirmed,
            symbols_warming: p.symbols().filter(|(_, m)| !m.intel.snapshot().baseline_warm).count() as u32,
            news_flags,
        };
        let symbols = p
            .symbols()
            .map(|(sym, m)| {
                let f = m.intel.snapshot();
                let bid = m.book.best_bid().map(|l| l.price.to_f64()).unwrap_or(0.0);
                let ask = m.book.best_ask().map(|l| l.price.to_f64()).unwrap_or(0.0);
                let price = m
                    .tape
                    .last_price()
                    .or(m.ticker.last_price)
                    .map(|p| p.to_f64())
                    .or_else(|| m.book.mid_f64())
                    .unwrap_or(0.0);
                SymbolView {
                    symbol: sym.as_str().to_string(),
                    category: m.category.as_str().to_string(),
                    state: desk.state_of(sym).as_str().to_string(),
                    regime: m.intel.regime().state.as_str().to_string(),
                    price,
                    bid,
                    ask,
                    mark_price: m.ticker.mark_price.map(|p| p.to_f64()).unwrap_or(0.0),
                    spread_bps: m.book.spread_bps().unwrap_or(0.0),
                    imbalance: m.book.imbalance_top_n(IMBALANCE_LEVELS).unwrap_or(0.0),
                    wall_score_bid: f.wall_support,
                    wall_score_ask: f.wall_resistance,
                    spoofing_score: f.spoofing_score,
                    pump_state: f.pump_state.as_str().to_string(),
                    volatility: f.atr_1s_pct / 100.0,
                    flow_delta: f.delta_5s,
                    min_move_pct: f.min_move_long.max(f.min_move_short) * 100.0,
                    news_impact: f.news_impact,
                    score_long: m.score.long,
                    score_short: m.score.short,
                    turnover_24h: m.ticker.turnover_24h.unwrap_or(0.0),
                    funding_rate: m.ticker.funding_rate.unwrap_or(0.0),
                    open_interest: m.ticker.open_interest.unwrap_or(0.0),
                    book_valid: m.book.is_valid(),
                    last_book_ms: m.last_book_ms.unwrap_or(0),
                    last_trade_ms: m.last_trade_ms.unwrap_or(0),
                    book_errors: m.book_errors,
                    blacklisted: controls.blacklist.contains(sym),
                    position: pf.position(sym).map(|pos| PositionView {
                        side: pos.side.as_bybit().to_string(),
                        qty: pos.qty.to_f64(),
                        entry_price: pos.avg_entry().to_f64(),
                        unrealized_pnl: pos.unrealized().to_f64(),
                        r_multiple: pos.r_multiple(),
                    }),
                    warm: f.baseline_warm,
                    warmup_left_s: f.warmup_left_s,
                    warm_reason: m.intel.baselines().cold_reason().unwrap_or_default(),
                    tick_size: m.instrument.tick_size.to_f64(),
                    qty_step: m.instrument.qty_step.to_f64(),
                }
            })
            .collect();
        let trades = pf
            .positions()
            .map(|pos| TradeView {
                id: format!("{}-{}", pos.symbol.as_str(), pos.opened_ms),
                symbol: pos.symbol.as_str().to_string(),
                side: pos.side.as_bybit().to_string(),
                qty: pos.qty.to_f64(),
                entry_price: pos.avg_entry().to_f64(),
                mark_price: pos.mark.to_f64(),
                stop_price: pos.stop.to_f64(),
                take_profit: pos.take_profits.first().map(|t| t.price.to_f64()).unwrap_or(0.0),
                unrealized_pnl: pos.unrealized().to_f64(),
                r_multiple: pos.r_multiple(),
                opened_ms: pos.opened_ms,
                state: desk.state_of(&pos.symbol).as_str().to_string(),
                tick_size: p.symbol(&pos.symbol).map(|m| m.instrument.tick_size.to_f64()).unwrap_or(0.0),
                qty_step: p.symbol(&pos.symbol).map(|m| m.instrument.qty_step.to_f64()).unwrap_or(0.0),
            })
            .collect();
        ControlView { ts_ms, global, symbols, trades }
    }

    /// A symbol by name (binary search: symbols are sorted).
    pub fn symbol(&self, name: &str) -> Option<&SymbolView> {
        self.symbols.binary_search_by(|s| s.symbol.as_str().cmp(name)).ok().map(|i| &self.symbols[i])
    }

    /// The `limit` best symbols: best score first, then 24 h turnover, then name.
    pub fn hotlist(&self, limit: usize) -> Vec<&SymbolView> {
        let mut v: Vec<&SymbolView> = self.symbols.iter().collect();
        v.sort_by(|a, b| {
            b.best_score()
                .total_cmp(&a.best_score())
                .then(b.turnover_24h.total_cmp(&a.turnover_24h))
                .then(a.symbol.cmp(&b.symbol))
        });
        v.truncate(limit);
        v
    }

    /// Latest market-data time over all symbols (0 = none yet).
    pub fn last_market_data_ms(&self) -> TimeMs {
        self.symbols.iter().map(|s| s.last_book_ms.max(s.last_trade_ms)).max().unwrap_or(0)
    }
}

/// Global summary served by `GetSummary` and `/api/summary`: the engine snapshot plus the view's
/// global part.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SummaryView {
    /// `SIM`, `DRY_RUN` or `LIVE`.
    pub mode: String,
    /// Events processed by the core.
    pub events_processed: u64,
    /// Symbols tracked.
    pub symbols: u32,
    /// Symbols with a valid book.
    pub valid_books: u32,
    /// Aggregate feed state (`CONNECTED`, `RECONNECTING`, `DOWN`; empty before the first one).
    pub feed: String,
    /// DEGRADED: no new entries.
    pub degraded: bool,
    /// Feed down for too long.
    pub feed_risk_off: bool,
    /// Core counters by name.
    pub counters: BTreeMap<String, u64>,
    /// Event time of the snapshot.
    pub ts_ms: TimeMs,
    /// Engine-wide state.
    #[serde(flatten)]
    pub global: GlobalView,
}

/// Upper-case label of a feed state.
pub fn feed_label(s: FeedState) -> &'static str {
    match s {
        FeedState::Connected => "CONNECTED",
        FeedState::Reconnecting => "RECONNECTING",
        FeedState::Down => "DOWN",
    }
}

impl SummaryView {
    /// Combines the engine snapshot and the view.
    pub fn new(snap: &EngineSnapshot, view: &ControlView) -> SummaryView {
        let c = &snap.counters;
        let mut counters = BTreeMap::new();
        counters.insert("book_updates".to_string(), c.book_updates);
        counters.insert("zone_rescans".to_string(), c.zone_rescans);
        counters.insert("resyncs".to_string(), c.resyncs);
        counters.insert("trades".to_string(), c.trades);
        counters.insert("unknown_symbol_events".to_string(), c.unknown_symbol_events);
        counters.insert("candles_closed".to_string(), c.candles_closed);
        for (reason, n) in &c.book_errors {
            counters.insert(format!("book_errors_{reason}"), *n);
        }
        let mut global = view.global.clone();
        global.risk_off |= snap.feed_risk_off;
        SummaryView {
            mode: snap.mode.clone(),
            events_processed: snap.events_processed,
            symbols: snap.symbols as u32,
            valid_books: snap.valid_books as u32,
            feed: snap.feed.map(feed_label).unwrap_or_default().to_string(),
            degraded: snap.degraded,
            feed_risk_off: snap.feed_risk_off,
            counters,
            ts_ms: snap.ts_ms,
            global,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sv(name: &str, long: f64, short: f64, turnover: f64) -> SymbolView {
        SymbolView {
            symbol: name.into(),
            score_long: long,
            score_short: short,
            turnover_24h: turnover,
            ..Default::default()
        }
    }

    #[test]
    fn hotlist_ranks_by_best_score_then_turnover_then_name() {
        let v = ControlView {
            symbols: vec![
                sv("AUSDT", 10.0, 0.0, 5.0),
                sv("BUSDT", 0.0, 80.0, 1.0),
                sv("CUSDT", 10.0, 5.0, 9.0),
                sv("DUSDT", 0.0, 0.0, 0.0),
                sv("EUSDT", 0.0, 0.0, 0.0),
            ],
            ..Default::default()
        };
        let names: Vec<&str> = v.hotlist(10).iter().map(|s| s.symbol.as_str()).collect();
        assert_eq!(names, ["BUSDT", "CUSDT", "AUSDT", "DUSDT", "EUSDT"]);
        assert_eq!(v.hotlist(2).len(), 2);
        assert_eq!(v.symbol("CUSDT").map(|s| s.turnover_24h), Some(9.0));
        assert!(v.symbol("ZUSDT").is_none());
    }

    #[test]
    fn summary_merges_snapshot_and_view() {
        let mut snap = EngineSnapshot { mode: "SIM".into(), feed_risk_off: true, ..Default::default() };
        snap.counters.book_errors.insert("gap", 3);
        snap.feed = Some(FeedState::Reconnecting);
        let view = ControlView {
            global: GlobalView { equity: 100.0, blacklist: vec!["XUSDT".into()], ..Default::default() },
            ..Default::default()
        };
        let s = SummaryView::new(&snap, &view);
        assert_eq!(s.feed, "RECONNECTING");
        assert!(s.global.risk_off, "feed RISK_OFF is a global RISK_OFF");
        assert_eq!(s.counters.get("book_errors_gap"), Some(&3));
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["equity"], 100.0);
        assert_eq!(json["mode"], "SIM");
        assert_eq!(json["blacklist"][0], "XUSDT");
    }

    #[test]
    fn capture_reads_market_state_from_the_core() {
        use scalper_core::config::Config;
        use scalper_core::domain::{EventTime, Price, Qty, Side, Symbol};
        use scalper_core::engine::clock::FrozenClock;
        use scalper_core::engine::event::{Event, EventKind};
        use scalper_core::engine::{DegradedPolicy, Engine};
        use scalper_core::market::data::{
            BookAction, BookUpdate, Instrument, InstrumentStatus, Level, Trade, TradeBatch,
        };
        use std::sync::Arc;

        let cfg = Arc::new(Config::default());
        let p = |s: &str| Price::parse(s).unwrap();
        let q = |s: &str| Qty::parse(s).unwrap();
        let btc = Symbol::new("BTCUSDT");
        let inst = Instrument {
            symbol: btc.clone(),
            status: InstrumentStatus::Trading,
            tick_size: p("0.5"),
            qty_step: q("0.001"),
            min_qty: q("0.001"),
            max_qty: q("100"),
            min_notional: p("5"),
            max_leverage: p("100"),
            launch_time_ms: 0,
        };
        let mut e = Engine::new(CorePipeline::new(cfg.clone()), FrozenClock, DegradedPolicy::from_config(&cfg.engine));
        let t0 = 1_700_000_000_000;
        let mut feed = |n: u64, kind: EventKind| {
            e.on_event(&Event::new(n, EventTime::local(t0 + n as i64), kind));
        };
        feed(1, EventKind::Universe(vec![inst]));
        // Baselines an earlier run persisted: warm at once, so the score is live.
        let state = scalper_core::features::baseline::BaselineState::steady(0.0001, 1.0, 1.0, 5.0, 1.0, 1e5, t0);
        feed(1, EventKind::Baselines { symbol: btc.clone(), state });
        feed(
            2,
            EventKind::Book(BookUpdate {
                symbol: btc.clone(),
                action: BookAction::Snapshot,
                depth: 200,
                bids: vec![Level { price: p("100"), qty: q("2") }],
                asks: vec![Level { price: p("100.5"), qty: q("1") }],
                update_id: 1,
                seq: 1,
                cts_ms: Some(t0),
            }),
        );
        let trade = Trade {
            ts_ms: t0 + 3,
            price: p("100.5"),
            qty: q("0.1"),
            aggressor: Side::Buy,
            id: "1".into(),
            block_trade: false,
            rpi: false,
        };
        feed(3, EventKind::Trades(TradeBatch { symbol: btc.clone(), trades: vec![trade] }));

        let v = ControlView::capture(e.pipeline(), t0 + 4);
        assert_eq!(v.ts_ms, t0 + 4);
        assert_eq!(v.global.max_portfolio_heat, cfg.risk.max_portfolio_heat);
        assert_eq!(v.global.daily_loss_limit, cfg.risk.daily_loss_limit);
        let s = v.symbol("BTCUSDT").expect("BTCUSDT is tracked");
        assert_eq!(s.category, "prime");
        assert!(s.book_valid);
        assert_eq!((s.bid, s.ask, s.price), (100.0, 100.5, 100.5));
        assert_eq!((s.tick_size, s.qty_step), (0.5, 0.001), "the instrument's increments");
        assert!((s.spread_bps - 0.5 / 100.25 * 10_000.0).abs() < 1e-6, "{}", s.spread_bps);
        assert!((s.imbalance - 1.0 / 3.0).abs() < 1e-9, "{}", s.imbalance);
        assert_eq!(s.last_book_ms, t0 + 2);
        assert_eq!(s.last_trade_ms, t0 + 3);
        assert_eq!(v.last_market_data_ms(), t0 + 3);
        // The core's own state: the bid-heavy book puts the symbol in WATCHING_LONG, in a NORMAL
        // regime with no pump and no position.
        let f = e.pipeline().symbol(&btc).unwrap();
        assert!(f.score.long > f.score.short, "{:?}", f.score);
        assert_eq!(e.pipeline().desk().state_of(&btc).as_str(), "WATCHING_LONG");
        assert_eq!((s.state.as_str(), s.regime.as_str(), s.pump_state.as_str()), ("WATCHING_LONG", "NORMAL", "NONE"));
        assert!(s.position.is_none());
        assert_eq!((s.score_long, s.score_short), (f.score.long, f.score.short));
        assert_eq!(s.min_move_pct, f.intel.snapshot().min_move_long.max(f.intel.snapshot().min_move_short) * 100.0);
        assert!(s.min_move_pct > 0.0, "fees make a minimum move");
        let g = &v.global;
        assert_eq!(g.global_regime, "GLOBAL_NORMAL");
        assert_eq!((g.equity, g.balance), (cfg.risk.starting_equity, cfg.risk.starting_equity));
        assert_eq!((g.realized_pnl, g.unrealized_pnl, g.daily_pnl, g.open_positions), (0.0, 0.0, 0.0, 0));
        assert!(v.trades.is_empty());
        assert!(!g.risk_off && !g.integrity_broken && !g.global_panic);
    }

    #[test]
    fn short_positions_have_negative_signed_size() {
        let p = PositionView { side: "Sell".into(), qty: 2.0, ..Default::default() };
        assert_eq!(p.signed_qty(), -2.0);
        let p = PositionView { side: "Buy".into(), qty: 2.0, ..Default::default() };
        assert_eq!(p.signed_qty(), 2.0);
    }
}
