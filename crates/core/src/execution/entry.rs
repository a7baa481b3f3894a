//! Maker-preferred entry tactic: post a post-only limit at (or inside) the touch, and fall back to
//! a taker order after a timeout or when the market drifts away so the maker edge would be lost —
//! but only while the taker price is still within the worst acceptable price; otherwise abandon.

use crate::domain::{Price, Qty, Side, Symbol, TimeMs};
use crate::execution::order::{Intent, OrderKind, OrderRequest, TimeInForce};
use crate::market::orderbook::OrderBook;
use serde::{Deserialize, Serialize};

/// Tactic parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MakerFirstConfig {
    /// Wait at most this long as maker, ms.
    pub timeout_ms: i64,
    /// Give up waiting when our side's touch moved this many ticks away from our limit.
    pub max_drift_ticks: i64,
    /// Ticks inside our side's touch to post at (0 = join the touch); never crosses.
    pub improve_ticks: i64,
}

impl Default for MakerFirstConfig {
    fn default() -> Self {
        MakerFirstConfig { timeout_ms: 3_000, max_drift_ticks: 3, improve_ticks: 0 }
    }
}

/// Post-only price at or inside the touch that does not cross: for a buy
/// `min(best_bid + improve, best_ask − tick)`, mirrored for a sell. `None` without our side's touch.
pub fn maker_price(side: Side, book: &OrderBook, improve_ticks: i64) -> Option<Price> {
    let tick = book.tick_size().raw();
    let own = book.best(side)?.price.raw();
    let s = side.sign();
    let mut px = own + s * tick * improve_ticks.max(0);
    if let Some(opp) = book.best(side.opposite()) {
        let limit = opp.price.raw() - s * tick;
        px = if side == Side::Buy { px.min(limit) } else { px.max(limit) };
    }
    (px > 0).then_some(Price::from_raw(px))
}

/// What to do with a working maker entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum EntryDecision {
    /// Keep waiting as maker.
    Keep,
    /// Cancel the maker order and take with an IOC limit at `limit` (the worst acceptable price).
    SwitchToTaker {
        /// IOC limit price.
        limit: Price,
    },
    /// Cancel and give up: the edge is gone.
    Abandon,
}

/// A working maker-first entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MakerFirstEntry {
    pub symbol: Symbol,
    pub side: Side,
    /// Our post-only limit.
    pub limit: Price,
    /// Worst price at which the setup still has its edge (taker fallback bound).
    pub worst_price: Price,
    /// Placement time.
    pub placed_ms: TimeMs,
}

impl MakerFirstEntry {
    /// Decides at `now_ms` against the current `book`.
    pub fn decide(&self, cfg: &MakerFirstConfig, book: &OrderBook, now_ms: TimeMs) -> EntryDecision {
        let s = self.side.sign();
        let tick = book.tick_size().raw().max(1);
        let timed_out = now_ms.saturating_sub(self.placed_ms) >= cfg.timeout_ms;
        let drift = book.best(self.side).map_or(0, |l| s * (l.price.raw() - self.limit.raw()) / tick);
        if !timed_out && drift < cfg.max_drift_ticks {
            return EntryDecision::Keep;
        }
        match book.best(self.side.opposite()) {
            Some(opp) if s * (self.worst_price.raw() - opp.price.raw()) >= 0 => {
                EntryDecision::SwitchToTaker { limit: self.worst_price }
            }
            _ => EntryDecision::Abandon,
        }
    }

    /// Intents for a decision: nothing to keep; cancel the maker order (and, when switching,
    /// an IOC limit for `remaining` with client id `taker_client_id`).
    pub fn intents(
        &self,
        d: EntryDecision,
        maker_client_id: &str,
        taker_client_id: &str,
        remaining: Qty,
    ) -> Vec<Intent> {
        let cancel = Intent::Cancel { symbol: self.symbol.clone(), client_id: maker_client_id.to_string() };
        match d {
            EntryDecision::Keep => vec![],
            EntryDecision::Abandon => vec![cancel],
            EntryDecision::SwitchToTaker { limit } => vec![
                cancel,
                Intent::Place(OrderRequest {
                    client_id: taker_client_id.to_string(),
                    symbol: self.symbol.clone(),
                    side: self.side,
                    kind: OrderKind::Limit { price: limit, tif: TimeInForce::Ioc },
                    qty: remaining,
                    reduce_only: false,
                }),
            ],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::market::data::{BookAction, BookUpdate, Level};
    use crate::testkit::p;

    fn book(bid: &str, ask: &str) -> OrderBook {
        let mut b = OrderBook::new(p("0.1"), 50).unwrap();
        b.apply(&BookUpdate {
            symbol: Symbol::new("BTCUSDT"),
            action: BookAction::Snapshot,
            depth: 50,
            bids: vec![Level { price: p(bid), qty: units(1) }],
            asks: vec![Level { price: p(ask), qty: units(1) }],
            update_id: 1,
            seq: 1,
            cts_ms: None,
        })
        .unwrap();
        b
    }
    fn units(n: i64) -> Qty {
        Qty::from_raw(n * crate::domain::SCALE)
    }

    #[test]
    fn maker_price_joins_or_improves_without_crossing() {
        let b = book("100", "100.3");
        assert_eq!(maker_price(Side::Buy, &b, 0), Some(p("100")));
        assert_eq!(maker_price(Side::Buy, &b, 1), Some(p("100.1")));
        assert_eq!(maker_price(Side::Buy, &b, 5), Some(p("100.2")));
        assert_eq!(maker_price(Side::Sell, &b, 0), Some(p("100.3")));
        assert_eq!(maker_price(Side::Sell, &b, 9), Some(p("100.1")));
        let tight = book("100", "100.1");
        assert_eq!(maker_price(Side::Buy, &tight, 3), Some(p("100")));
    }

    #[test]
    fn falls_back_to_taker_or_abandons() {
        let cfg = MakerFirstConfig { timeout_ms: 1_000, max_drift_ticks: 3, improve_ticks: 0 };
        let e = MakerFirstEntry {
            symbol: Symbol::new("BTCUSDT"),
            side: Side::Buy,
            limit: p("100"),
            worst_price: p("100.4"),
            placed_ms: 0,
        };
        assert_eq!(e.decide(&cfg, &book("100", "100.1"), 999), EntryDecision::Keep);
        // Timeout with the ask within the worst price.
        let d = e.decide(&cfg, &book("100", "100.1"), 1_000);
        assert_eq!(d, EntryDecision::SwitchToTaker { limit: p("100.4") });
        let i = e.intents(d, "m1", "t1", units(2));
        assert_eq!(i.len(), 2);
        assert!(
            matches!(&i[1], Intent::Place(r) if r.kind == OrderKind::Limit { price: p("100.4"), tif: TimeInForce::Ioc })
        );
        // Market ran 3 ticks away: switch early while the ask is acceptable…
        assert!(matches!(e.decide(&cfg, &book("100.3", "100.4"), 10), EntryDecision::SwitchToTaker { .. }));
        // …abandon when it is not.
        assert_eq!(e.decide(&cfg, &book("100.4", "100.5"), 10), EntryDecision::Abandon);
        assert_eq!(e.intents(EntryDecision::Abandon, "m1", "t1", Qty::ZERO).len(), 1);
        // Short mirror.
        let s = MakerFirstEntry { side: Side::Sell, limit: p("100.1"), worst_price: p("99.6"), ..e };
        assert_eq!(s.decide(&cfg, &book("99.8", "99.9"), 10), EntryDecision::Keep);
        assert_eq!(s.decide(&cfg, &book("99.7", "99.8"), 10), EntryDecision::SwitchToTaker { limit: p("99.6") });
        assert_eq!(s.decide(&cfg, &book("99.5", "99.6"), 10), EntryDecision::Abandon);
    }
}
