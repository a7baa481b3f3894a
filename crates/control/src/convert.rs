//! Conversions between the view types ([`super::view`]) and the gRPC messages, both ways: the server
//! sends views as messages, `scalperctl` turns messages back into views to print the same JSON as
//! the HTTP API.

use super::bus::EventRecord;
use super::view::{GlobalView, NewsFlagView, PositionView, SummaryView, SymbolView, TradeView};
use crate::proto;
use scalper_core::engine::health::{ComponentHealth, Status};
use std::collections::BTreeMap;

impl From<&NewsFlagView> for proto::NewsFlag {
    fn from(n: &NewsFlagView) -> Self {
        proto::NewsFlag {
            symbol: n.symbol.clone(),
            impact: n.impact,
            news_type: n.news_type.clone(),
            expires_ms: n.expires_ms,
        }
    }
}

impl From<proto::NewsFlag> for NewsFlagView {
    fn from(n: proto::NewsFlag) -> Self {
        NewsFlagView { symbol: n.symbol, impact: n.impact, news_type: n.news_type, expires_ms: n.expires_ms }
    }
}

impl From<&SummaryView> for proto::Summary {
    fn from(s: &SummaryView) -> Self {
        let g = &s.global;
        proto::Summary {
            mode: s.mode.clone(),
            global_regime: g.global_regime.clone(),
            paused: g.paused,
            degraded: s.degraded,
            events_processed: s.events_processed,
            symbols: s.symbols,
            equity: g.equity,
            daily_pnl: g.daily_pnl,
            portfolio_heat: g.portfolio_heat,
            open_positions: g.open_positions,
            valid_books: s.valid_books,
            feed: s.feed.clone(),
            feed_risk_off: s.feed_risk_off,
            risk_off: g.risk_off,
            integrity_broken: g.integrity_broken,
            global_panic: g.global_panic,
            balance: g.balance,
            realized_pnl: g.realized_pnl,
            unrealized_pnl: g.unrealized_pnl,
            max_portfolio_heat: g.max_portfolio_heat,
            daily_loss_limit: g.daily_loss_limit,
            blacklist: g.blacklist.clone(),
            news_flags: g.news_flags.iter().map(Into::into).collect(),
            counters: s.counters.iter().map(|(k, v)| proto::Counter { name: k.clone(), value: *v }).collect(),
            ts_ms: s.ts_ms,
            private_feed: g.private_feed.clone(),
            exchange_account_known: g.exchange_account_known,
            live_orders: g.live_orders,
            panic_confirmed: g.panic_confirmed,
            symbols_warming: g.symbols_warming,
        }
    }
}

impl From<proto::Summary> for SummaryView {
    fn from(s: proto::Summary) -> Self {
        SummaryView {
            mode: s.mode,
            events_processed: s.events_processed,
            symbols: s.symbols,
            valid_books: s.valid_books,
            feed: s.feed,
            degraded: s.degraded,
            feed_risk_off: s.feed_risk_off,
            counters: s.counters.into_iter().map(|c| (c.name, c.value)).collect::<BTreeMap<_, _>>(),
            ts_ms: s.ts_ms,
            global: GlobalView {
                paused: s.paused,
                global_panic: s.global_panic,
                integrity_broken: s.integrity_broken,
                risk_off: s.risk_off,
                global_regime: s.global_regime,
                equity: s.equity,
                balance: s.balance,
                realized_pnl: s.realized_pnl,
                unrealized_pnl: s.unrealized_pnl,
                daily_pnl: s.daily_pnl,
                portfolio_heat: s.portfolio_heat,
                max_portfolio_heat: s.max_portfolio_heat,
                daily_loss_limit: s.daily_loss_limit,
                open_positions: s.open_positions,
                blacklist: s.blacklist,
                news_flags: s.news_flags.into_iter().map(Into::into).collect(),
                private_feed: s.private_feed,
                exchange_account_known: s.exchange_account_known,
                live_orders: s.live_orders,
                panic_confirmed: s.panic_confirmed,
                symbols_warming: s.symbols_warming,
            },
        }
    }
}

impl From<&PositionView> for proto::Position {
    fn from(p: &PositionView) -> Self {
        proto::Position {
            side: p.side.clone(),
            qty: p.qty,
            entry_price: p.entry_price,
            unrealized_pnl: p.unrealized_pnl,
            r_multiple: p.r_multiple,
        }
    }
}

impl From<proto::Position> for PositionView {
    fn from(p: proto::Position) -> Self {
        PositionView {
            side: p.side,
            qty: p.qty,
            entry_price: p.entry_price,
            unrealized_pnl: p.unrealized_pnl,
            r_multiple: p.r_multiple,
        }
    }
}

impl From<&SymbolView> for proto::SymbolDetail {
    fn from(s: &SymbolView) -> Self {
        proto::SymbolDetail {
            symbol: s.symbol.clone(),
            category: s.category.clone(),
            state: s.state.clone(),
            regime: s.regime.clone(),
            price: s.price,
            bid: s.bid,
            ask: s.ask,
            mark_price: s.mark_price,
            spread_bps: s.spread_bps,
            imbalance: s.imbalance,
            wall_score_bid: s.wall_score_bid,
            wall_score_ask: s.wall_score_ask,
            spoofing_score: s.spoofing_score,
            pump_state: s.pump_state.clone(),
            volatility: s.volatility,
            flow_delta: s.flow_delta,
            min_move_pct: s.min_move_pct,
            news_impact: s.news_impact,
            score_long: s.score_long,
            score_short: s.score_short,
            turnover_24h: s.turnover_24h,
            funding_rate: s.funding_rate,
            open_interest: s.open_interest,
            book_valid: s.book_valid,
            last_book_ms: s.last_book_ms,
            last_trade_ms: s.last_trade_ms,
            book_errors: s.book_errors,
            blacklisted: s.blacklisted,
            position: s.position.as_ref().map(Into::into),
            warm: s.warm,
            warmup_left_s: s.warmup_left_s,
            warm_reason: s.warm_reason.clone(),
            tick_size: s.tick_size,
            qty_step: s.qty_step,
        }
    }
}

impl From<proto::SymbolDetail> for SymbolView {
    fn from(s: proto::SymbolDetail) -> Self {
        SymbolView {
            symbol: s.symbol,
            category: s.category,
            state: s.state,
            regime: s.regime,
            price: s.price,
            bid: s.bid,
            ask: s.ask,
            mark_price: s.mark_price,
            spread_bps: s.spread_bps,
            imbalance: s.imbalance,
            wall_score_bid: s.wall_score_bid,
            wall_score_ask: s.wall_score_ask,
            spoofing_score: s.spoofing_score,
            pump_state: s.pump_state,
            volatility: s.volatility,
            flow_delta: s.flow_delta,
            min_move_pct: s.min_move_pct,
            news_impact: s.news_impact,
            score_long: s.score_long,
            score_short: s.score_short,
            turnover_24h: s.turnover_24h,
            funding_rate: s.funding_rate,
            open_interest: s.open_interest,
            book_valid: s.book_valid,
            last_book_ms: s.last_book_ms,
            last_trade_ms: s.last_trade_ms,
            book_errors: s.book_errors,
            blacklisted: s.blacklisted,
            position: s.position.map(Into::into),
            warm: s.warm,
            warmup_left_s: s.warmup_left_s,
            warm_reason: s.warm_reason,
            tick_size: s.tick_size,
            qty_step: s.qty_step,
        }
    }
}

impl From<&TradeView> for proto::Trade {
    fn from(t: &TradeView) -> Self {
        proto::Trade {
            id: t.id.clone(),
            symbol: t.symbol.clone(),
            side: t.side.clone(),
            qty: t.qty,
            entry_price: t.entry_price,
            mark_price: t.mark_price,
            stop_price: t.stop_price,
            take_profit: t.take_profit,
            unrealized_pnl: t.unrealized_pnl,
            r_multiple: t.r_multiple,
            opened_ms: t.opened_ms,
            state: t.state.clone(),
            tick_size: t.tick_size,
            qty_step: t.qty_step,
        }
    }
}

impl From<proto::Trade> for TradeView {
    fn from(t: proto::Trade) -> Self {
        TradeView {
            id: t.id,
            symbol: t.symbol,
            side: t.side,
            qty: t.qty,
            entry_price: t.entry_price,
            mark_price: t.mark_price,
            stop_price: t.stop_price,
            take_profit: t.take_profit,
            unrealized_pnl: t.unrealized_pnl,
            r_multiple: t.r_multiple,
            opened_ms: t.opened_ms,
            state: t.state,
            tick_size: t.tick_size,
            qty_step: t.qty_step,
        }
    }
}

impl From<&EventRecord> for proto::EventRecord {
    fn from(e: &EventRecord) -> Self {
        proto::EventRecord {
            seq: e.seq,
            ts_ms: e.ts_ms,
            symbol: e.symbol.clone().unwrap_or_default(),
            event: e.event.clone(),
            json: e.body.to_string(),
        }
    }
}

impl From<proto::EventRecord> for EventRecord {
    /// A body that is not valid JSON is kept as a JSON string.
    fn from(e: proto::EventRecord) -> Self {
        let body = serde_json::from_str(&e.json).unwrap_or(serde_json::Value::String(e.json));
        EventRecord {
            seq: e.seq,
            ts_ms: e.ts_ms,
            symbol: (!e.symbol.is_empty()).then_some(e.symbol),
            event: e.event,
            body,
        }
    }
}

/// Upper-case label of a health status.
pub fn status_label(s: Status) -> &'static str {
    match s {
        Status::Up => "UP",
        Status::Degraded => "DEGRADED",
        Status::Down => "DOWN",
    }
}

/// The health board as a message.
pub fn health_message(overall: Status, components: &BTreeMap<String, ComponentHealth>) -> proto::Health {
    proto::Health {
        overall: status_label(overall).to_string(),
        components: components
            .iter()
            .map(|(name, c)| proto::ComponentHealth {
                name: name.clone(),
                status: status_label(c.status).to_string(),
                detail: c.detail.clone(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbol_roundtrip_keeps_every_field() {
        let s = SymbolView {
            symbol: "BTCUSDT".into(),
            category: "prime".into(),
            state: "ARMED".into(),
            regime: "PUMP".into(),
            price: 1.0,
            bid: 2.0,
            ask: 3.0,
            mark_price: 4.0,
            spread_bps: 5.0,
            imbalance: 6.0,
            wall_score_bid: 7.0,
            wall_score_ask: 8.0,
            spoofing_score: 9.0,
            pump_state: "IGNITION".into(),
            volatility: 10.0,
            flow_delta: 11.0,
            min_move_pct: 12.0,
            news_impact: 13.0,
            score_long: 14.0,
            score_short: 15.0,
            turnover_24h: 16.0,
            funding_rate: 17.0,
            open_interest: 18.0,
            book_valid: true,
            last_book_ms: 19,
            last_trade_ms: 20,
            book_errors: 21,
            blacklisted: true,
            warm: true,
            warmup_left_s: 22,
            warm_reason: "warming up: volume 38/60 s".into(),
            tick_size: 0.5,
            qty_step: 0.001,
            position: Some(PositionView {
                side: "Sell".into(),
                qty: 22.0,
                entry_price: 23.0,
                unrealized_pnl: 24.0,
                r_multiple: 25.0,
            }),
        };
        assert_eq!(SymbolView::from(proto::SymbolDetail::from(&s)), s);
    }

    #[test]
    fn summary_and_trade_roundtrip() {
        let mut counters = BTreeMap::new();
        counters.insert("trades".to_string(), 7);
        let s = SummaryView {
            mode: "DRY_RUN".into(),
            events_processed: 1,
            symbols: 2,
            valid_books: 3,
            feed: "DOWN".into(),
            degraded: true,
            feed_risk_off: true,
            counters,
            ts_ms: 4,
            global: GlobalView {
                paused: true,
                global_panic: true,
                integrity_broken: true,
                risk_off: true,
                global_regime: "GLOBAL_PANIC".into(),
                equity: 5.0,
                balance: 6.0,
                realized_pnl: 7.0,
                unrealized_pnl: 8.0,
                daily_pnl: 9.0,
                portfolio_heat: 10.0,
                max_portfolio_heat: 11.0,
                daily_loss_limit: 12.0,
                open_positions: 13,
                blacklist: vec!["XUSDT".into()],
                news_flags: vec![NewsFlagView {
                    symbol: "XUSDT".into(),
                    impact: 0.5,
                    news_type: "HACK".into(),
                    expires_ms: 14,
                }],
                private_feed: "RECONNECTING".into(),
                exchange_account_known: true,
                live_orders: 15,
                panic_confirmed: true,
                symbols_warming: 16,
            },
        };
        assert_eq!(SummaryView::from(proto::Summary::from(&s)), s);
        let t = TradeView {
            id: "t1".into(),
            symbol: "XUSDT".into(),
            side: "Buy".into(),
            qty: 1.0,
            entry_price: 2.0,
            mark_price: 3.0,
            stop_price: 4.0,
            take_profit: 5.0,
            unrealized_pnl: 6.0,
            r_multiple: 7.0,
            opened_ms: 8,
            state: "OPEN".into(),
            tick_size: 0.01,
            qty_step: 0.1,
        };
        assert_eq!(TradeView::from(proto::Trade::from(&t)), t);
    }

    #[test]
    fn event_record_roundtrip() {
        let e = EventRecord {
            seq: 3,
            ts_ms: 9,
            symbol: None,
            event: "DEGRADED_ENTER".into(),
            body: serde_json::json!({"event": "DEGRADED_ENTER", "tick_ns": 5}),
        };
        assert_eq!(EventRecord::from(proto::EventRecord::from(&e)), e);
        let bad = proto::EventRecord { json: "not json".into(), ..Default::default() };
        assert_eq!(EventRecord::from(bad).body, serde_json::Value::String("not json".into()));
    }
}
