//! The frame of `scalperctl top`: global state, the hot list and the open positions, built as one
//! `String` from the views the engine serves (pure; `scalperctl` fetches, clears the screen and
//! prints it every refresh).

use super::format::{self, table};
use super::view::{SummaryView, SymbolView, TradeView};

/// One component of the engine's health board.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ComponentLine {
    /// Component name, e.g. `feed`, `storage`.
    pub name: String,
    /// `UP`, `DEGRADED` or `DOWN`.
    pub status: String,
    /// Why, when not up.
    pub detail: String,
}

/// Everything one frame shows.
#[derive(Debug, Clone, Default)]
pub struct TopData {
    /// Global state.
    pub summary: SummaryView,
    /// Overall health (`UP`, `DEGRADED`, `DOWN`).
    pub health: String,
    /// Health per component.
    pub components: Vec<ComponentLine>,
    /// Hot list, best first (already cut to the length shown).
    pub hotlist: Vec<SymbolView>,
    /// Open trades.
    pub trades: Vec<TradeView>,
}

/// The engine-wide flags that are raised, in a fixed order (empty when all is normal).
pub fn raised_flags(s: &SummaryView) -> Vec<&'static str> {
    let g = &s.global;
    [
        (g.paused, "PAUSED"),
        (s.degraded, "DEGRADED"),
        (g.risk_off, "RISK_OFF"),
        (s.feed_risk_off, "FEED_RISK_OFF"),
        (g.integrity_broken, "INTEGRITY_BROKEN"),
        (g.global_panic, "GLOBAL_PANIC"),
    ]
    .into_iter()
    .filter_map(|(on, name)| on.then_some(name))
    .collect()
}

fn or_dash(s: &str) -> &str {
    if s.is_empty() {
        "-"
    } else {
        s
    }
}

/// The hot-list table: symbol, regime, state, scores, spread, price at the tick, pump phase.
pub fn hotlist_table(list: &[SymbolView]) -> String {
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|s| {
            vec![
                s.symbol.clone(),
                or_dash(&s.category).to_string(),
                or_dash(&s.regime).to_string(),
                or_dash(&s.state).to_string(),
                format::score(s.score_long),
                format::score(s.score_short),
                format::bps(s.spread_bps),
                format::fixed(s.imbalance, 2),
                format::price(s.price, s.tick_size),
                format::compact(s.turnover_24h),
            ]
        })
        .collect();
    table(&["SYMBOL", "CAT", "REGIME", "STATE", "LONG", "SHORT", "SPREAD_BPS", "IMB", "PRICE", "TURNOVER_24H"], &rows)
}

/// The open-positions table: prices at the tick, quantities at the step, PnL with 2 decimals, R.
pub fn trades_table(list: &[TradeView], now_ms: i64) -> String {
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|t| {
            vec![
                t.symbol.clone(),
                t.side.clone(),
                format::qty(t.qty, t.qty_step),
                format::price(t.entry_price, t.tick_size),
                format::price(t.mark_price, t.tick_size),
                format::price(t.stop_price, t.tick_size),
                if t.take_profit > 0.0 { format::price(t.take_profit, t.tick_size) } else { "-".into() },
                format::pnl(t.unrealized_pnl),
                format::r_multiple(t.r_multiple),
                or_dash(&t.state).to_string(),
                format::time(t.opened_ms, now_ms),
            ]
        })
        .collect();
    table(&["SYMBOL", "SIDE", "QTY", "ENTRY", "MARK", "STOP", "TP", "UPNL", "R", "STATE", "OPENED"], &rows)
}

/// One frame; `now_ms` is the wall clock (for the header and same-day times).
pub fn frame(d: &TopData, now_ms: i64) -> String {
    let s = &d.summary;
    let g = &s.global;
    let mut out = String::new();
    out.push_str(&format!(
        "scalper top  {} UTC  mode {}  regime {}  feed {}  private {}  health {}\n",
        format::datetime(now_ms),
        or_dash(&s.mode),
        or_dash(&g.global_regime),
        or_dash(&s.feed),
        or_dash(&g.private_feed),
        or_dash(&d.health),
    ));
    let flags = raised_flags(s);
    let mut rows = vec![
        ("flags", if flags.is_empty() { "-".to_string() } else { flags.join(" ") }),
        (
            "equity",
            format!(
                "{} USDT  balance {}  realized {}  unrealized {}",
                format::money(g.equity),
                format::money(g.balance),
                format::pnl(g.realized_pnl),
                format::pnl(g.unrealized_pnl)
            ),
        ),
        (
            "risk",
            format!(
                "daily pnl {} (limit {} of equity)  heat {} (max {})  open positions {}  live orders {}",
                format::pnl(g.daily_pnl),
                format::pct(g.daily_loss_limit, 1),
                format::pct(g.portfolio_heat, 2),
                format::pct(g.max_portfolio_heat, 1),
                g.open_positions,
                g.live_orders
            ),
        ),
        (
            "symbols",
            format!(
                "{} ({} valid books, {} warming up)  events {}  snapshot {}",
                s.symbols,
                s.valid_books,
                g.symbols_warming,
                s.events_processed,
                format::time(s.ts_ms, now_ms)
            ),
        ),
    ];
    if !d.components.is_empty() {
        let parts: Vec<String> = d
            .components
            .iter()
            .map(|c| {
                if c.status == "UP" || c.detail.is_empty() {
                    format!("{} {}", c.name, c.status)
                } else {
                    format!("{} {} ({})", c.name, c.status, c.detail)
                }
            })
            .collect();
        rows.push(("health", parts.join(" · ")));
    }
    if !g.blacklist.is_empty() {
        rows.push(("blacklist", g.blacklist.join(" ")));
    }
    for n in &g.news_flags {
        rows.push(("news", format::news_flag(n, now_ms)));
    }
    out.push_str(&format::kv(&rows));
    out.push('\n');
    out.push_str(&format!("HOT LIST (top {})\n", d.hotlist.len()));
    if d.hotlist.is_empty() {
        out.push_str("no symbols yet\n");
    } else {
        out.push_str(&hotlist_table(&d.hotlist));
    }
    out.push('\n');
    out.push_str(&format!("POSITIONS ({})\n", d.trades.len()));
    if d.trades.is_empty() {
        out.push_str("no open positions\n");
    } else {
        out.push_str(&trades_table(&d.trades, now_ms));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::{GlobalView, NewsFlagView};

    const NOW: i64 = 1_796_224_463_143; // 2026-12-02 15:14:23.143 UTC

    fn data() -> TopData {
        TopData {
            summary: SummaryView {
                mode: "SIM".into(),
                feed: "CONNECTED".into(),
                symbols: 50,
                valid_books: 49,
                events_processed: 123_456,
                ts_ms: NOW - 400,
                global: GlobalView {
                    paused: true,
                    global_panic: true,
                    global_regime: "GLOBAL_NORMAL".into(),
                    equity: 10_012.345_6,
                    balance: 10_000.0,
                    realized_pnl: 13.5,
                    unrealized_pnl: -1.1544,
                    daily_pnl: 13.5,
                    portfolio_heat: 0.0123,
                    max_portfolio_heat: 0.03,
                    daily_loss_limit: 0.03,
                    open_positions: 1,
                    private_feed: "CONNECTED".into(),
                    blacklist: vec!["SIM001USDT".into()],
                    news_flags: vec![NewsFlagView {
                        symbol: "ETHUSDT".into(),
                        impact: 0.7,
                        news_type: "HACK".into(),
                        expires_ms: NOW + 900_000,
                    }],
                    ..Default::default()
                },
                ..Default::default()
            },
            health: "DEGRADED".into(),
            components: vec![
                ComponentLine { name: "feed".into(), status: "UP".into(), detail: String::new() },
                ComponentLine { name: "storage".into(), status: "DOWN".into(), detail: "disk full".into() },
            ],
            hotlist: vec![SymbolView {
                symbol: "BTCUSDT".into(),
                category: "prime".into(),
                regime: "NORMAL".into(),
                state: "ARMED_SHORT".into(),
                score_long: 12.04,
                score_short: 80.58484004,
                spread_bps: 1.8487136,
                imbalance: -0.3333,
                price: 60_909.93,
                tick_size: 0.1,
                turnover_24h: 1.234e9,
                ..Default::default()
            }],
            trades: vec![TradeView {
                symbol: "BTCUSDT".into(),
                side: "Sell".into(),
                qty: 0.28600000001,
                entry_price: 60_909.9,
                mark_price: 60_911.04,
                stop_price: 61_025.8,
                take_profit: 60_794.0,
                unrealized_pnl: -0.32604,
                r_multiple: -0.0065549,
                state: "IN_POSITION".into(),
                opened_ms: NOW - 60_000,
                tick_size: 0.1,
                qty_step: 0.001,
                ..Default::default()
            }],
        }
    }

    #[test]
    fn frame_shows_global_state_hotlist_and_positions_formatted() {
        let f = frame(&data(), NOW);
        let lines: Vec<&str> = f.lines().collect();
        assert_eq!(
            lines[0],
            "scalper top  2026-12-02 15:14:23.143 UTC  mode SIM  regime GLOBAL_NORMAL  feed CONNECTED  \
             private CONNECTED  health DEGRADED"
        );
        assert!(f.contains("flags      PAUSED GLOBAL_PANIC\n"), "{f}");
        assert!(f.contains("equity     10012.35 USDT  balance 10000.00  realized +13.50  unrealized -1.15\n"), "{f}");
        assert!(f.contains("daily pnl +13.50 (limit 3.0% of equity)  heat 1.23% (max 3.0%)  open positions 1"), "{f}");
        assert!(
            f.contains("symbols    50 (49 valid books, 0 warming up)  events 123456  snapshot 15:14:22.743"),
            "{f}"
        );
        assert!(f.contains("health     feed UP · storage DOWN (disk full)\n"), "{f}");
        assert!(f.contains("blacklist  SIM001USDT\n"), "{f}");
        assert!(f.contains("news       ETHUSDT HACK impact 0.70 until 15:29:23.143\n"), "{f}");
        let hot = lines.iter().position(|l| *l == "HOT LIST (top 1)").expect("hot list section");
        assert!(lines[hot + 1].starts_with("SYMBOL") && lines[hot + 1].contains("SPREAD_BPS"), "{f}");
        let btc: Vec<&str> = lines[hot + 2].split_whitespace().collect();
        assert_eq!(
            btc,
            ["BTCUSDT", "prime", "NORMAL", "ARMED_SHORT", "12.0", "80.6", "1.8", "-0.33", "60909.9", "1.23B"]
        );
        let pos = lines.iter().position(|l| *l == "POSITIONS (1)").expect("positions section");
        let t: Vec<&str> = lines[pos + 2].split_whitespace().collect();
        assert_eq!(
            t,
            [
                "BTCUSDT",
                "Sell",
                "0.286",
                "60909.9",
                "60911.0",
                "61025.8",
                "60794.0",
                "-0.33",
                "-0.01",
                "IN_POSITION",
                "15:13:23.143"
            ]
        );
    }

    #[test]
    fn empty_sections_say_so() {
        let mut d = data();
        d.hotlist.clear();
        d.trades.clear();
        d.summary.global.paused = false;
        d.summary.global.global_panic = false;
        let f = frame(&d, NOW);
        assert!(f.contains("flags      -\n"), "{f}");
        assert!(f.contains("HOT LIST (top 0)\nno symbols yet\n"), "{f}");
        assert!(f.ends_with("POSITIONS (0)\nno open positions\n"), "{f}");
    }
}
