//! Integrity: reconcile local positions and orders with what the venue reports, and the kill
//! switch.
//!
//! [`reconcile`] compares two [`VenueSnapshot`]s (local view vs venue view) and lists every
//! difference in a deterministic order. An [`IntegrityGuard`] turns a report with mismatches into
//! INTEGRITY_BROKEN, which blocks new trades until it is explicitly cleared (a later clean report
//! does not clear it by itself: someone must look).
//!
//! The [`KillSwitch`] engages on feed/API failure, an extreme spread or volatility, or a manual
//! PANIC, and yields the intents that flatten everything: cancels for every open order, then a
//! reduce-only market close for every position.

use crate::domain::{Qty, Side, Symbol, TimeMs};
use crate::execution::order::{Intent, OrderKind, OrderRole};
use crate::state::machine::ExitReason;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A position as one side sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PositionSnapshot {
    pub symbol: Symbol,
    /// Long (`Buy`) or short (`Sell`).
    pub side: Side,
    /// Size (> 0; zero-size entries are ignored).
    pub qty: Qty,
}

/// A working order as one side sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderSnapshot {
    pub symbol: Symbol,
    /// Client order id.
    pub client_id: String,
    pub side: Side,
    /// Type and price.
    pub kind: OrderKind,
    /// Quantity still working.
    pub remaining: Qty,
    pub reduce_only: bool,
}

/// Positions and working orders at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VenueSnapshot {
    /// Open positions.
    pub positions: Vec<PositionSnapshot>,
    /// Working orders.
    pub orders: Vec<OrderSnapshot>,
}

/// One difference between the local view and the venue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mismatch", rename_all = "snake_case")]
pub enum Mismatch {
    /// Local position the venue does not have.
    PositionMissingAtVenue {
        symbol: Symbol,
        /// Local side.
        side: Side,
        /// Local size.
        qty: Qty,
    },
    /// Venue position unknown locally.
    UnknownVenuePosition {
        symbol: Symbol,
        /// Venue side.
        side: Side,
        /// Venue size.
        qty: Qty,
    },
    /// Position sides differ.
    PositionSide { symbol: Symbol, local: Side, venue: Side },
    /// Position sizes differ.
    PositionQty {
        symbol: Symbol,
        /// Local size.
        local: Qty,
        /// Venue size.
        venue: Qty,
    },
    /// Local order the venue does not have.
    OrderMissingAtVenue { symbol: Symbol, client_id: String },
    /// Venue order unknown locally.
    UnknownVenueOrder { symbol: Symbol, client_id: String },
    /// Same order, different side, type/price, remaining size or reduce-only flag.
    OrderDiffers {
        symbol: Symbol,
        client_id: String,
        /// Local view.
        local: Box<OrderSnapshot>,
        /// Venue view.
        venue: Box<OrderSnapshot>,
    },
    /// The same symbol (position) or client id (order) appears twice in one snapshot.
    Duplicate {
        /// Which snapshot: `"local"` or `"venue"`.
        source: String,
        /// Symbol or client id.
        key: String,
    },
}

/// Result of one reconciliation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntegrityReport {
    /// Time of the check.
    pub at_ms: TimeMs,
    /// Differences, deterministic order (positions by symbol, then orders by symbol/client id).
    pub mismatches: Vec<Mismatch>,
}

impl IntegrityReport {
    /// True when local and venue agree.
    pub fn ok(&self) -> bool {
        self.mismatches.is_empty()
    }
}

fn positions_by_symbol<'a>(
    src: &str,
    v: &'a [PositionSnapshot],
    out: &mut Vec<Mismatch>,
) -> BTreeMap<&'a Symbol, &'a PositionSnapshot> {
    let mut m = BTreeMap::new();
    for p in v.iter().filter(|p| p.qty.raw() != 0) {
        if m.insert(&p.symbol, p).is_some() {
            out.push(Mismatch::Duplicate { source: src.into(), key: p.symbol.to_string() });
        }
    }
    m
}

fn orders_by_id<'a>(
    src: &str,
    v: &'a [OrderSnapshot],
    out: &mut Vec<Mismatch>,
) -> BTreeMap<(&'a Symbol, &'a str), &'a OrderSnapshot> {
    let mut m = BTreeMap::new();
    for o in v {
        if m.insert((&o.symbol, o.client_id.as_str()), o).is_some() {
            out.push(Mismatch::Duplicate { source: src.into(), key: o.client_id.clone() });
        }
    }
    m
}

/// Compares the local view with the venue's.
pub fn reconcile(local: &VenueSnapshot, venue: &VenueSnapshot, at_ms: TimeMs) -> IntegrityReport {
    let mut out = Vec::new();
    let lp = positions_by_symbol("local", &local.positions, &mut out);
    let vp = positions_by_symbol("venue", &venue.positions, &mut out);
    let mut syms: Vec<&Symbol> = lp.keys().chain(vp.keys()).copied().collect();
    syms.sort();
    syms.dedup();
    for s in syms {
        match (lp.get(s), vp.get(s)) {
            (Some(l), None) => {
                out.push(Mismatch::PositionMissingAtVenue { symbol: s.clone(), side: l.side, qty: l.qty })
            }
            (None, Some(v)) => out.push(Mismatch::UnknownVenuePosition { symbol: s.clone(), side: v.side, qty: v.qty }),
            (Some(l), Some(v)) => {
                if l.side != v.side {
                    out.push(Mismatch::PositionSide { symbol: s.clone(), local: l.side, venue: v.side });
                } else if l.qty != v.qty {
                    out.push(Mismatch::PositionQty { symbol: s.clone(), local: l.qty, venue: v.qty });
                }
            }
            (None, None) => {}
        }
    }
    let lo = orders_by_id("local", &local.orders, &mut out);
    let vo = orders_by_id("venue", &venue.orders, &mut out);
    let mut ids: Vec<(&Symbol, &str)> = lo.keys().chain(vo.keys()).copied().collect();
    ids.sort();
    ids.dedup();
    for k in ids {
        let (symbol, client_id) = (k.0.clone(), k.1.to_string());
        match (lo.get(&k), vo.get(&k)) {
            (Some(_), None) => out.push(Mismatch::OrderMissingAtVenue { symbol, client_id }),
            (None, Some(_)) => out.push(Mismatch::UnknownVenueOrder { symbol, client_id }),
            (Some(l), Some(v)) if l != v => out.push(Mismatch::OrderDiffers {
                symbol,
                client_id,
                local: Box::new((*l).clone()),
                venue: Box::new((*v).clone()),
            }),
            _ => {}
        }
    }
    IntegrityReport { at_ms, mismatches: out }
}

/// Holds INTEGRITY_BROKEN.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntegrityGuard {
    broken: Option<IntegrityReport>,
}

impl IntegrityGuard {
    /// New guard (not broken).
    pub fn new() -> Self {
        IntegrityGuard::default()
    }
    /// Applies a report: a report with mismatches sets INTEGRITY_BROKEN (returns true when it
    /// was not already broken). A clean report changes nothing.
    pub fn apply(&mut self, r: &IntegrityReport) -> bool {
        if r.ok() {
            return false;
        }
        let newly = self.broken.is_none();
        if newly {
            self.broken = Some(r.clone());
        }
        newly
    }
    /// True while INTEGRITY_BROKEN: new trades are blocked.
    pub fn is_broken(&self) -> bool {
        self.broken.is_some()
    }
    /// The report that broke integrity.
    pub fn report(&self) -> Option<&IntegrityReport> {
        self.broken.as_ref()
    }
    /// Clears INTEGRITY_BROKEN (operator action after investigation); returns whether it was set.
    pub fn clear(&mut self) -> bool {
        self.broken.take().is_some()
    }
}

/// Why the kill switch engaged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kill", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum KillReason {
    /// Market-data feed failed.
    FeedFailure,
    /// Private/trading API failed.
    ApiFailure,
    /// Spread beyond the limit.
    ExtremeSpread { symbol: Symbol, spread_bps: f64 },
    /// Price move beyond the limit.
    ExtremeVolatility {
        symbol: Symbol,
        /// Absolute move, percent.
        move_pct: f64,
    },
    /// Operator PANIC.
    ManualPanic,
}

/// Market thresholds that engage the kill switch.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct KillThresholds {
    /// Spread above this many bps.
    pub max_spread_bps: f64,
    /// Absolute move above this many percent (over the caller's window).
    pub max_move_pct: f64,
}

impl Default for KillThresholds {
    fn default() -> Self {
        KillThresholds { max_spread_bps: 100.0, max_move_pct: 10.0 }
    }
}

impl KillThresholds {
    /// Kill reason for a symbol's current spread and recent move, if either is extreme.
    pub fn check(&self, symbol: &Symbol, spread_bps: Option<f64>, move_pct: Option<f64>) -> Option<KillReason> {
        if let Some(s) = spread_bps.filter(|s| s.is_finite() && *s > self.max_spread_bps) {
            return Some(KillReason::ExtremeSpread { symbol: symbol.clone(), spread_bps: s });
        }
        if let Some(m) = move_pct.filter(|m| m.is_finite() && m.abs() > self.max_move_pct) {
            return Some(KillReason::ExtremeVolatility { symbol: symbol.clone(), move_pct: m.abs() });
        }
        None
    }
}

/// The kill switch.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KillSwitch {
    engaged: Option<(KillReason, TimeMs)>,
}

impl KillSwitch {
    /// New, disengaged.
    pub fn new() -> Self {
        KillSwitch::default()
    }
    /// Engages (first reason wins); returns true when it was not engaged before.
    pub fn engage(&mut self, reason: KillReason, now_ms: TimeMs) -> bool {
        if self.engaged.is_some() {
            return false;
        }
        self.engaged = Some((reason, now_ms));
        true
    }
    /// True while engaged.
    pub fn is_engaged(&self) -> bool {
        self.engaged.is_some()
    }
    /// Reason and time of engagement.
    pub fn reason(&self) -> Option<&(KillReason, TimeMs)> {
        self.engaged.as_ref()
    }
    /// Disengages (operator reset); returns whether it was engaged.
    pub fn reset(&mut self) -> bool {
        self.engaged.take().is_some()
    }
    /// Intents that flatten everything in `state`: a cancel for every working order, then a
    /// reduce-only market close for every position (deterministic order, client ids
    /// `kill-{now_ms}-{n}`). Works whether or not the switch is engaged.
    pub fn flatten(&self, state: &VenueSnapshot, now_ms: TimeMs) -> Vec<Intent> {
        let mut orders: Vec<&OrderSnapshot> = state.orders.iter().collect();
        orders.sort_by(|a, b| (&a.symbol, &a.client_id).cmp(&(&b.symbol, &b.client_id)));
        let mut positions: Vec<&PositionSnapshot> = state.positions.iter().filter(|p| p.qty.raw() > 0).collect();
        positions.sort_by(|a, b| a.symbol.cmp(&b.symbol));
        let mut out: Vec<Intent> = orders
            .into_iter()
            .map(|o| Intent::Cancel { symbol: o.symbol.clone(), client_id: o.client_id.clone() })
            .collect();
        out.extend(positions.into_iter().enumerate().map(|(i, p)| Intent::Close {
            symbol: p.symbol.clone(),
            position_side: p.side,
            qty: p.qty,
            reason: ExitReason::Panic,
            client_id: OrderRole::Kill.client_id(&now_ms.to_string(), i as u64),
        }));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Price;
    use crate::execution::order::TimeInForce;
    use crate::testkit::q;

    fn pos(s: &str, side: Side, qty: &str) -> PositionSnapshot {
        PositionSnapshot { symbol: Symbol::new(s), side, qty: q(qty) }
    }
    fn ord(s: &str, id: &str, price: &str, rem: &str) -> OrderSnapshot {
        OrderSnapshot {
            symbol: Symbol::new(s),
            client_id: id.into(),
            side: Side::Sell,
            kind: OrderKind::Limit { price: Price::parse(price).unwrap(), tif: TimeInForce::Gtc },
            remaining: q(rem),
            reduce_only: true,
        }
    }

    #[test]
    fn identical_states_reconcile_ok() {
        let a = VenueSnapshot {
            positions: vec![pos("BTCUSDT", Side::Buy, "0.1"), pos("ETHUSDT", Side::Sell, "0")],
            orders: vec![ord("BTCUSDT", "tp-1", "30000", "0.1")],
        };
        let b = VenueSnapshot { positions: vec![pos("BTCUSDT", Side::Buy, "0.1")], orders: a.orders.clone() };
        let r = reconcile(&a, &b, 5);
        assert!(r.ok(), "{r:?}");
        let mut g = IntegrityGuard::new();
        assert!(!g.apply(&r));
        assert!(!g.is_broken());
    }

    #[test]
    fn every_kind_of_mismatch_is_listed_in_order() {
        let local = VenueSnapshot {
            positions: vec![pos("AUSDT", Side::Buy, "1"), pos("BUSDT", Side::Buy, "1"), pos("CUSDT", Side::Sell, "2")],
            orders: vec![ord("AUSDT", "a1", "10", "1"), ord("BUSDT", "b1", "10", "1"), ord("CUSDT", "c1", "5", "2")],
        };
        let venue = VenueSnapshot {
            positions: vec![
                pos("BUSDT", Side::Sell, "1"),
                pos("CUSDT", Side::Sell, "1.5"),
                pos("DUSDT", Side::Buy, "3"),
            ],
            orders: vec![ord("BUSDT", "b1", "11", "1"), ord("CUSDT", "c1", "5", "2"), ord("DUSDT", "d1", "1", "1")],
        };
        let r = reconcile(&local, &venue, 9);
        let kinds: Vec<String> = r
            .mismatches
            .iter()
            .map(|m| serde_json::to_value(m).unwrap()["mismatch"].as_str().unwrap().into())
            .collect();
        assert_eq!(
            kinds,
            [
                "position_missing_at_venue",
                "position_side",
                "position_qty",
                "unknown_venue_position",
                "order_missing_at_venue",
                "order_differs",
                "unknown_venue_order"
            ]
        );
        assert_eq!(
            r.mismatches[2],
            Mismatch::PositionQty { symbol: Symbol::new("CUSDT"), local: q("2"), venue: q("1.5") }
        );
        let mut g = IntegrityGuard::new();
        assert!(g.apply(&r));
        assert!(g.is_broken());
        // A later clean report does not clear it; an explicit clear does.
        assert!(!g.apply(&reconcile(&venue, &venue, 10)));
        assert!(g.is_broken());
        assert_eq!(g.report().unwrap().at_ms, 9);
        assert!(g.clear());
        assert!(!g.is_broken());
    }

    #[test]
    fn duplicates_are_reported() {
        let a = VenueSnapshot {
            positions: vec![pos("AUSDT", Side::Buy, "1"), pos("AUSDT", Side::Buy, "1")],
            orders: vec![ord("AUSDT", "x", "1", "1"), ord("AUSDT", "x", "1", "1")],
        };
        let b =
            VenueSnapshot { positions: vec![pos("AUSDT", Side::Buy, "1")], orders: vec![ord("AUSDT", "x", "1", "1")] };
        let r = reconcile(&a, &b, 0);
        assert_eq!(r.mismatches.len(), 2);
        assert!(r.mismatches.iter().all(|m| matches!(m, Mismatch::Duplicate { .. })));
    }

    #[test]
    fn kill_switch_flattens_everything() {
        let th = KillThresholds::default();
        let s = Symbol::new("XUSDT");
        assert_eq!(th.check(&s, Some(50.0), Some(-3.0)), None);
        assert!(matches!(th.check(&s, Some(150.0), None), Some(KillReason::ExtremeSpread { .. })));
        assert!(matches!(
            th.check(&s, None, Some(-12.5)),
            Some(KillReason::ExtremeVolatility { move_pct, .. }) if move_pct == 12.5
        ));
        assert_eq!(th.check(&s, Some(f64::NAN), Some(f64::INFINITY)), None);

        let mut k = KillSwitch::new();
        assert!(k.engage(KillReason::FeedFailure, 100));
        assert!(!k.engage(KillReason::ManualPanic, 101));
        assert_eq!(k.reason(), Some(&(KillReason::FeedFailure, 100)));
        let state = VenueSnapshot {
            positions: vec![pos("BUSDT", Side::Sell, "2"), pos("AUSDT", Side::Buy, "1"), pos("CUSDT", Side::Buy, "0")],
            orders: vec![ord("BUSDT", "b-sl", "10", "2"), ord("AUSDT", "a-tp", "10", "1")],
        };
        let out = k.flatten(&state, 100);
        assert_eq!(out.len(), 4);
        assert_eq!(out[0], Intent::Cancel { symbol: Symbol::new("AUSDT"), client_id: "a-tp".into() });
        assert_eq!(out[1], Intent::Cancel { symbol: Symbol::new("BUSDT"), client_id: "b-sl".into() });
        assert_eq!(
            out[2],
            Intent::Close {
                symbol: Symbol::new("AUSDT"),
                position_side: Side::Buy,
                qty: q("1"),
                reason: ExitReason::Panic,
                client_id: "kill-100-0".into()
            }
        );
        assert!(
            matches!(&out[3], Intent::Close { symbol, position_side: Side::Sell, .. } if symbol.as_str() == "BUSDT")
        );
        assert!(out.iter().all(|i| i.is_risk_reducing()));
        assert!(k.reset());
        assert!(!k.is_engaged());
    }
}
