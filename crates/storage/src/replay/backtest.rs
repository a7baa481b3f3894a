//! Backtest report from a replay's outputs: trades, win rate, PnL after fees (exact), R
//! distribution, maximum drawdown of the realised equity curve, and breakdowns per symbol regime
//! at entry, global regime at entry, category, exit reason and symbol.
//!
//! Trades come from the core's `trades_log` records. The trade record does not carry a regime,
//! so the collector follows the regime changes the core logs (`{"kind":"REGIME",…}` per symbol,
//! `GLOBAL_REGIME` globally) and attributes each trade to the regimes in force at its `ENTRY`.

use super::ReplayObserver;
use scalper_core::config::paths::DataKind;
use scalper_core::config::Config;
use scalper_core::domain::{Fixed, Symbol, TimeMs};
use scalper_core::engine::event::Event;
use scalper_core::engine::output::{Output, Outputs};
use scalper_core::risk::money::Money;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

/// One closed trade as the report sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TradeRow {
    pub symbol: String,
    /// Category (`prime`, `normal`, `wild`).
    pub category: String,
    /// `Buy` (long) or `Sell` (short).
    pub side: String,
    /// Exit reason (`TAKE_PROFIT`, `STOP_LOSS`, …).
    pub reason: String,
    /// Symbol regime when the entry was planned.
    pub regime: String,
    /// Global regime when the entry was planned.
    pub global_regime: String,
    /// Open time.
    pub opened_ms: TimeMs,
    pub exit_ms: TimeMs,
    /// Exact net PnL after fees.
    pub net_pnl: Money,
    /// Exact fees.
    pub fees: Money,
    /// Net PnL in units of the planned risk.
    pub r_multiple: f64,
}

impl TradeRow {
    /// From a `trades_log` record body; `None` when it is not a closed trade.
    pub fn from_record(body: &Value, regime: &str, global_regime: &str) -> Option<TradeRow> {
        let s = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let money = |exact: &str, approx: &str| -> Option<Money> {
            match body.get(exact) {
                Some(v) => serde_json::from_value::<Fixed>(v.clone()).ok(),
                None => body.get(approx).and_then(Value::as_f64).map(Money::from_f64),
            }
        };
        let net_pnl = money("net_pnl_exact", "net_pnl")?;
        Some(TradeRow {
            symbol: s("symbol"),
            category: s("category"),
            side: s("side"),
            reason: s("reason"),
            regime: regime.to_string(),
            global_regime: global_regime.to_string(),
            opened_ms: body.get("opened_ms").and_then(Value::as_i64).unwrap_or(0),
            exit_ms: body.get("exit_ms").and_then(Value::as_i64).unwrap_or(0),
            net_pnl,
            fees: money("fees_exact", "fees").unwrap_or(Money::ZERO),
            r_multiple: body.get("r_multiple").and_then(Value::as_f64).unwrap_or(0.0),
        })
    }
}

/// Collects trades (and the regimes in force at their entries) from replay outputs.
#[derive(Debug, Clone, Default)]
pub struct BacktestCollector {
    trades: Vec<TradeRow>,
    regime: BTreeMap<Symbol, String>,
    entry_regime: BTreeMap<Symbol, (String, String)>,
    global: Option<String>,
    starting_equity: Option<f64>,
    events: u64,
}

const NORMAL: &str = "NORMAL";
const GLOBAL_NORMAL: &str = "GLOBAL_NORMAL";

impl BacktestCollector {
    /// Empty collector.
    pub fn new() -> Self {
        Self::default()
    }

    /// Looks at one event's outputs.
    pub fn observe(&mut self, out: &Outputs) {
        self.events += 1;
        for o in &out.items {
            let Output::Record(r) = o else { continue };
            match r.kind {
                DataKind::Events => {
                    let b = &r.body;
                    if b.get("event").and_then(Value::as_str) == Some("GLOBAL_REGIME") {
                        self.global = b.get("to").and_then(Value::as_str).map(str::to_string);
                    }
                    let Some(sym) = &r.symbol else { continue };
                    if b.get("kind").and_then(Value::as_str) == Some("REGIME") {
                        if let Some(to) = b.get("to").and_then(Value::as_str) {
                            self.regime.insert(sym.clone(), to.to_string());
                        }
                    } else if b.get("event").and_then(Value::as_str) == Some("ENTRY") {
                        let reg = self.regime.get(sym).map(String::as_str).unwrap_or(NORMAL).to_string();
                        let glob = self.global.clone().unwrap_or_else(|| GLOBAL_NORMAL.to_string());
                        self.entry_regime.insert(sym.clone(), (reg, glob));
                    }
                }
                DataKind::TradesLog => {
                    let sym = r.symbol.clone().unwrap_or_default();
                    let (reg, glob) = self.entry_regime.remove(&sym).unwrap_or_else(|| {
                        let reg = self.regime.get(&sym).map(String::as_str).unwrap_or(NORMAL).to_string();
                        (reg, self.global.clone().unwrap_or_else(|| GLOBAL_NORMAL.to_string()))
                    });
                    if let Some(t) = TradeRow::from_record(&r.body, &reg, &glob) {
                        self.trades.push(t);
                    }
                }
                _ => {}
            }
        }
    }

    /// The trades so far, in exit order.
    pub fn trades(&self) -> &[TradeRow] {
        &self.trades
    }

    /// Events observed.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// The report; equity starts at the first run's `risk.starting_equity` (or `starting_equity`
    /// when no run was seen).
    pub fn report(&self, starting_equity: f64) -> BacktestReport {
        BacktestReport::from_trades(&self.trades, self.starting_equity.unwrap_or(starting_equity))
    }
}

impl BacktestCollector {
    /// Appends the collector of the next part of the same replay (a `--jobs` chunk, which starts
    /// with a run): the result is the collector of the whole replay.
    pub fn merge(&mut self, next: BacktestCollector) {
        self.trades.extend(next.trades);
        self.starting_equity = self.starting_equity.or(next.starting_equity);
        self.events += next.events;
        self.regime = next.regime;
        self.entry_regime = next.entry_regime;
        self.global = next.global;
    }
}

impl ReplayObserver for BacktestCollector {
    fn on_outputs(&mut self, _ev: &Event, out: &Outputs) {
        self.observe(out);
    }
    /// A fresh core starts with every regime NORMAL: the regimes followed so far belonged to the
    /// previous run's core and are forgotten (this is also what makes runs independent).
    fn on_run(&mut self, cfg: &Arc<Config>) {
        self.starting_equity.get_or_insert(cfg.risk.starting_equity);
        self.regime.clear();
        self.entry_regime.clear();
        self.global = None;
    }
}

/// Aggregates of a group of trades.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct GroupStats {
    pub trades: u64,
    /// Trades with a positive net PnL.
    pub wins: u64,
    /// Trades with a negative net PnL.
    pub losses: u64,
    /// wins / trades (0 when none).
    pub win_rate: f64,
    /// Exact net PnL after fees.
    pub net_pnl: Money,
    /// Exact fees.
    pub fees: Money,
    /// Mean R multiple.
    pub avg_r: f64,
}

impl GroupStats {
    fn add(&mut self, t: &TradeRow) {
        let n = self.trades as f64;
        self.trades += 1;
        match t.net_pnl.raw().signum() {
            1 => self.wins += 1,
            -1 => self.losses += 1,
            _ => {}
        }
        self.win_rate = self.wins as f64 / self.trades as f64;
        self.net_pnl = Money::from_raw(self.net_pnl.raw().saturating_add(t.net_pnl.raw()));
        self.fees = Money::from_raw(self.fees.raw().saturating_add(t.fees.raw()));
        self.avg_r = (self.avg_r * n + t.r_multiple) / (n + 1.0);
    }
}

/// One bucket of the R distribution: `lo <= R < hi`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RBucket {
    /// Label, e.g. `[-1,-0.5)`.
    pub range: String,
    /// Trades in the bucket.
    pub trades: u64,
}

/// Bucket edges of the R distribution.
pub const R_EDGES: [f64; 9] = [-2.0, -1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0];

/// The backtest report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BacktestReport {
    /// All trades together.
    pub total: GroupStats,
    /// Σ net PnL of winners / |Σ net PnL of losers| (`None` without losers).
    pub profit_factor: Option<f64>,
    /// Mean net PnL of winners.
    pub avg_win: Money,
    /// Mean net PnL of losers.
    pub avg_loss: Money,
    /// Smallest and largest R.
    pub r_min: Option<f64>,
    /// See `r_min`.
    pub r_max: Option<f64>,
    pub r_distribution: Vec<RBucket>,
    /// Equity at the start.
    pub starting_equity: f64,
    /// Equity after the last trade.
    pub ending_equity: f64,
    /// Largest peak-to-trough fall of the realised equity curve, USDT.
    pub max_drawdown: f64,
    /// The same as a fraction of the peak.
    pub max_drawdown_pct: f64,
    /// Per symbol regime at entry.
    pub by_regime: BTreeMap<String, GroupStats>,
    /// Per global regime at entry.
    pub by_global_regime: BTreeMap<String, GroupStats>,
    pub by_category: BTreeMap<String, GroupStats>,
    pub by_exit_reason: BTreeMap<String, GroupStats>,
    pub by_symbol: BTreeMap<String, GroupStats>,
}

fn r_label(i: usize) -> String {
    match i {
        0 => format!("< {}", R_EDGES[0]),
        i if i == R_EDGES.len() => format!(">= {}", R_EDGES[R_EDGES.len() - 1]),
        i => format!("[{}, {})", R_EDGES[i - 1], R_EDGES[i]),
    }
}

impl BacktestReport {
    /// Computes the report of `trades` (in exit order).
    pub fn from_trades(trades: &[TradeRow], starting_equity: f64) -> BacktestReport {
        let mut total = GroupStats::default();
        let mut groups: [BTreeMap<String, GroupStats>; 5] = Default::default();
        let mut buckets = vec![0u64; R_EDGES.len() + 1];
        let (mut win_sum, mut loss_sum) = (0i128, 0i128);
        let mut equity = starting_equity;
        let mut peak = starting_equity;
        let (mut dd, mut dd_pct) = (0.0f64, 0.0f64);
        let (mut r_min, mut r_max): (Option<f64>, Option<f64>) = (None, None);
        for t in trades {
            total.add(t);
            let keys = [&t.regime, &t.global_regime, &t.category, &t.reason, &t.symbol];
            for (g, k) in groups.iter_mut().zip(keys) {
                g.entry(k.clone()).or_default().add(t);
            }
            let r = t.r_multiple;
            buckets[R_EDGES.iter().take_while(|e| r >= **e).count()] += 1;
            r_min = Some(r_min.map_or(r, |m| m.min(r)));
            r_max = Some(r_max.map_or(r, |m| m.max(r)));
            match t.net_pnl.raw().signum() {
                1 => win_sum += t.net_pnl.raw() as i128,
                -1 => loss_sum += t.net_pnl.raw() as i128,
                _ => {}
            }
            equity += t.net_pnl.to_f64();
            peak = peak.max(equity);
            if peak - equity > dd {
                dd = peak - equity;
                dd_pct = if peak > 0.0 { dd / peak } else { 0.0 };
            }
        }
        let mean = |sum: i128, n: u64| {
            if n == 0 {
                Money::ZERO
            } else {
                Money::from_raw((sum / n as i128).clamp(i64::MIN as i128, i64::MAX as i128) as i64)
            }
        };
        let [by_regime, by_global_regime, by_category, by_exit_reason, by_symbol] = groups;
        BacktestReport {
            profit_factor: (loss_sum != 0).then(|| win_sum as f64 / (-loss_sum) as f64),
            avg_win: mean(win_sum, total.wins),
            avg_loss: mean(loss_sum, total.losses),
            total,
            r_min,
            r_max,
            r_distribution: buckets
                .iter()
                .enumerate()
                .map(|(i, n)| RBucket { range: r_label(i), trades: *n })
                .collect(),
            starting_equity,
            ending_equity: equity,
            max_drawdown: dd,
            max_drawdown_pct: dd_pct,
            by_regime,
            by_global_regime,
            by_category,
            by_exit_reason,
            by_symbol,
        }
    }

    /// A human-readable table.
    pub fn table(&self) -> String {
        let t = &self.total;
        let mut s = String::new();
        let _ = writeln!(s, "BACKTEST");
        let _ = writeln!(s, "  trades           {:>12}", t.trades);
        let _ = writeln!(s, "  wins / losses    {:>12}", format!("{} / {}", t.wins, t.losses));
        let _ = writeln!(s, "  win rate         {:>11.1}%", t.win_rate * 100.0);
        let _ = writeln!(s, "  net PnL (USDT)   {:>12.4}", t.net_pnl.to_f64());
        let _ = writeln!(s, "  fees (USDT)      {:>12.4}", t.fees.to_f64());
        let pf = self.profit_factor.map_or("n/a".to_string(), |p| format!("{p:.2}"));
        let _ = writeln!(s, "  profit factor    {pf:>12}");
        let _ = writeln!(s, "  avg R            {:>12.3}", t.avg_r);
        let _ = writeln!(
            s,
            "  equity           {:>12}",
            format!("{:.2} -> {:.2}", self.starting_equity, self.ending_equity)
        );
        let _ = writeln!(
            s,
            "  max drawdown     {:>12}",
            format!("{:.4} ({:.3}%)", self.max_drawdown, self.max_drawdown_pct * 100.0)
        );
        let _ = writeln!(s, "\nR DISTRIBUTION");
        let width = self.r_distribution.iter().map(|b| b.trades).max().unwrap_or(0).max(1);
        for b in &self.r_distribution {
            let bar = "#".repeat(((b.trades * 30).div_ceil(width)) as usize);
            let _ = writeln!(s, "  {:<14} {:>6}  {bar}", b.range, b.trades);
        }
        let sections = [
            ("BY SYMBOL REGIME AT ENTRY", &self.by_regime),
            ("BY GLOBAL REGIME AT ENTRY", &self.by_global_regime),
            ("BY CATEGORY", &self.by_category),
            ("BY EXIT REASON", &self.by_exit_reason),
            ("BY SYMBOL", &self.by_symbol),
        ];
        for (title, g) in sections {
            let _ = writeln!(s, "\n{title}");
            let _ = writeln!(
                s,
                "  {:<16} {:>6} {:>6} {:>8} {:>14} {:>12} {:>8}",
                "", "trades", "wins", "win%", "net PnL", "fees", "avg R"
            );
            for (k, v) in g {
                let _ = writeln!(
                    s,
                    "  {:<16} {:>6} {:>6} {:>7.1}% {:>14.4} {:>12.4} {:>8.3}",
                    k,
                    v.trades,
                    v.wins,
                    v.win_rate * 100.0,
                    v.net_pnl.to_f64(),
                    v.fees.to_f64(),
                    v.avg_r
                );
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(net: &str, r: f64, reason: &str) -> TradeRow {
        TradeRow {
            symbol: "AAAUSDT".into(),
            category: "normal".into(),
            side: "Buy".into(),
            reason: reason.into(),
            regime: NORMAL.into(),
            global_regime: GLOBAL_NORMAL.into(),
            opened_ms: 0,
            exit_ms: 0,
            net_pnl: Money::parse(net).unwrap(),
            fees: Money::parse("0.1").unwrap(),
            r_multiple: r,
        }
    }

    #[test]
    fn report_aggregates_exactly_and_measures_drawdown_from_the_peak() {
        let trades = vec![
            row("10", 1.0, "TAKE_PROFIT"),
            row("-4", -0.4, "STOP_LOSS"),
            row("-8", -0.8, "STOP_LOSS"),
            row("5", 0.5, "TAKE_PROFIT"),
            row("0", 0.0, "TIMEOUT"),
        ];
        let r = BacktestReport::from_trades(&trades, 1000.0);
        assert_eq!((r.total.trades, r.total.wins, r.total.losses), (5, 2, 2));
        assert_eq!(r.total.net_pnl, Money::parse("3").unwrap());
        assert_eq!(r.total.fees, Money::parse("0.5").unwrap());
        assert!((r.total.win_rate - 0.4).abs() < 1e-12);
        // Equity 1000 → 1010 (peak) → 1006 → 998 (trough, −12) → 1003 → 1003.
        assert!((r.max_drawdown - 12.0).abs() < 1e-9);
        assert!((r.max_drawdown_pct - 12.0 / 1010.0).abs() < 1e-12);
        assert!((r.ending_equity - 1003.0).abs() < 1e-9);
        assert_eq!(r.profit_factor, Some(15.0 / 12.0));
        assert_eq!(r.avg_win, Money::parse("7.5").unwrap());
        assert_eq!(r.avg_loss, Money::parse("-6").unwrap());
        let counts: Vec<u64> = r.r_distribution.iter().map(|b| b.trades).collect();
        // [-1,-0.5): −0.8; [-0.5,0): −0.4; [0,0.5): 0; [0.5,1): 0.5; [1,1.5): 1.0.
        assert_eq!(counts, vec![0, 0, 0, 1, 1, 1, 1, 1, 0, 0]);
        assert_eq!(r.by_exit_reason["STOP_LOSS"].trades, 2);
        assert_eq!(r.by_exit_reason["TAKE_PROFIT"].net_pnl, Money::parse("15").unwrap());
        assert!(r.table().contains("STOP_LOSS"));
    }

    #[test]
    fn collector_attributes_trades_to_the_regime_at_entry() {
        use scalper_core::engine::output::LogRecord;
        let sym = Symbol::new("AAAUSDT");
        let rec = |kind, body: Value| Output::Record(LogRecord { kind, symbol: Some(sym.clone()), ts_ms: 0, body });
        let mut c = BacktestCollector::new();
        let mut out = Outputs::default();
        out.push(rec(DataKind::Events, serde_json::json!({"kind": "REGIME", "from": "NORMAL", "to": "COOLDOWN"})));
        out.push(rec(DataKind::Events, serde_json::json!({"event": "ENTRY"})));
        out.push(rec(DataKind::Events, serde_json::json!({"kind": "REGIME", "from": "COOLDOWN", "to": "PUMP"})));
        out.push(rec(
            DataKind::TradesLog,
            serde_json::json!({"symbol": "AAAUSDT", "category": "wild", "side": "Sell", "reason": "STOP_LOSS",
                               "net_pnl_exact": "-1.25000000", "fees_exact": "0.05", "r_multiple": -1.0}),
        ));
        c.observe(&out);
        let t = &c.trades()[0];
        assert_eq!(t.regime, "COOLDOWN", "regime at entry, not at exit");
        assert_eq!(t.global_regime, GLOBAL_NORMAL);
        assert_eq!(t.net_pnl, Money::parse("-1.25").unwrap());
        assert_eq!(c.report(100.0).by_category["wild"].losses, 1);
    }
}
