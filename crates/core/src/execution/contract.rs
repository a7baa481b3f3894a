//! The one venue contract (ARCHITECTURE "One venue contract"): SIM, DRY_RUN and LIVE take the
//! same [`Intent`]s from the desk and answer with the same [`VenueEvent`]s (acks, fills, ends,
//! refusals); the desk cannot tell them apart except by the mode it was told, which only picks
//! the venue.
//!
//! Everything crosses as data. A venue that answers at once puts its events in
//! [`VenueAnswer::events`]: the SIM venue (matching against the book and tape it is fed, with the
//! fill model the simulator's exchange shares, [`crate::execution::matching`]) and the DRY_RUN
//! venue (nothing is sent, so an entry ends at once, [`EndReason::NotSent`]). The LIVE venue
//! answers with requests for the exchange edge ([`VenueAnswer::commands`]); the edge's answers
//! come back later as [`VenueReport::Order`](crate::execution::venue::VenueReport::Order) events
//! and take the same path into the desk.

use crate::domain::{Fixed, Symbol, TimeMs};
use crate::execution::integrity::VenueSnapshot;
use crate::execution::order::{EndReason, Intent, VenueEvent};
use crate::execution::sim::SimVenue;
use crate::execution::venue::{LiveAccount, VenueCommand};
use crate::market::data::TradeBatch;
use crate::market::orderbook::OrderBook;

/// What a venue needs besides the intent.
#[derive(Clone, Copy)]
pub struct SubmitContext<'a> {
    /// The current book of a symbol, when the core has one (only a venue that matches locally
    /// asks for it).
    pub books: &'a dyn Fn(&Symbol) -> Option<&'a OrderBook>,
    /// Leverage the trade was sized with (0 = not set).
    pub leverage: Fixed,
    /// Event time, ms.
    pub now: TimeMs,
}

/// Why a venue could not take an intent at all (written as the record's `reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum DropReason {
    /// The symbol has no book for the SIM venue to match against.
    #[serde(rename = "no book")]
    NoBook,
}

/// How the desk journals the intents it hands to a venue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Journal {
    /// As sent to the exchange (`ORDER_SENT`).
    Sent,
    /// As what would have been sent (`DRY_RUN_ORDER`).
    DryRun,
}

/// A venue's answer to one intent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VenueAnswer {
    /// Order events known at once, in order.
    pub events: Vec<VenueEvent>,
    /// Requests for the exchange edge, in order.
    pub commands: Vec<VenueCommand>,
    /// The venue could not take the intent at all: why.
    pub dropped: Option<DropReason>,
}

/// A venue: where the desk's intents go.
pub trait Venue {
    /// How the desk journals every intent it hands to this venue (`None`: the venue's own
    /// events are the journal).
    fn journal(&self) -> Option<Journal>;

    /// Carries out one intent.
    fn submit(&mut self, intent: &Intent, ctx: SubmitContext<'_>) -> VenueAnswer;

    /// Public trades of one symbol against the venue's resting orders. Only a venue that
    /// matches locally (SIM) answers anything.
    fn on_trades(&mut self, _batch: &TradeBatch, _book: &OrderBook) -> Vec<VenueEvent> {
        Vec::new()
    }

    /// Positions and working orders the venue holds locally, for the integrity check against the
    /// portfolio (`None`: the venue is checked against the exchange's own snapshots instead).
    fn local_snapshot(&self) -> Option<VenueSnapshot> {
        None
    }
}

impl Venue for SimVenue {
    fn journal(&self) -> Option<Journal> {
        None
    }

    fn submit(&mut self, intent: &Intent, ctx: SubmitContext<'_>) -> VenueAnswer {
        match (ctx.books)(intent.symbol()) {
            Some(book) => {
                VenueAnswer { events: SimVenue::submit(self, intent, book, ctx.now), ..VenueAnswer::default() }
            }
            None => VenueAnswer { dropped: Some(DropReason::NoBook), ..VenueAnswer::default() },
        }
    }

    fn on_trades(&mut self, batch: &TradeBatch, book: &OrderBook) -> Vec<VenueEvent> {
        SimVenue::on_trades(self, batch, book)
    }

    fn local_snapshot(&self) -> Option<VenueSnapshot> {
        Some(self.snapshot())
    }
}

/// DRY_RUN: the real feed, no orders. Every intent is journalled and nothing is sent, so an
/// entry ends at once (its machine goes back to watching) and nothing else has anything to end.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DryRunVenue;

impl Venue for DryRunVenue {
    fn journal(&self) -> Option<Journal> {
        Some(Journal::DryRun)
    }

    fn submit(&mut self, intent: &Intent, _ctx: SubmitContext<'_>) -> VenueAnswer {
        let events = match intent {
            Intent::Place(r) if !r.reduce_only => vec![VenueEvent::Cancelled {
                symbol: r.symbol.clone(),
                client_id: r.client_id.clone(),
                remaining: r.qty,
                reason: EndReason::NotSent,
            }],
            _ => Vec::new(),
        };
        VenueAnswer { events, ..VenueAnswer::default() }
    }
}

impl Venue for LiveAccount {
    fn journal(&self) -> Option<Journal> {
        Some(Journal::Sent)
    }

    /// Hands the intent to the exchange edge, setting the symbol's leverage first when an entry
    /// needs one not set yet.
    fn submit(&mut self, intent: &Intent, ctx: SubmitContext<'_>) -> VenueAnswer {
        let mut commands = Vec::with_capacity(2);
        if let Intent::Place(r) = intent {
            if !r.reduce_only && ctx.leverage.raw() > 0 && self.leverage.get(&r.symbol) != Some(&ctx.leverage) {
                self.leverage.insert(r.symbol.clone(), ctx.leverage);
                commands.push(VenueCommand::SetLeverage { symbol: r.symbol.clone(), leverage: ctx.leverage });
            }
        }
        self.on_sent(intent);
        commands.push(VenueCommand::Submit(intent.clone()));
        VenueAnswer { commands, ..VenueAnswer::default() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Side;
    use crate::execution::order::{OrderKind, OrderRequest, TimeInForce};
    use crate::risk::money::{FeeRates, Rate};
    use crate::testkit::{p, q};

    fn entry() -> Intent {
        Intent::Place(OrderRequest {
            client_id: "e-BTCUSDT-1".into(),
            symbol: Symbol::new("BTCUSDT"),
            side: Side::Buy,
            kind: OrderKind::Limit { price: p("100"), tif: TimeInForce::PostOnly },
            qty: q("0.5"),
            reduce_only: false,
        })
    }

    fn no_book(_: &Symbol) -> Option<&'static OrderBook> {
        None
    }

    fn ctx() -> SubmitContext<'static> {
        SubmitContext { books: &no_book, leverage: Fixed::parse("5").unwrap_or(Fixed::ZERO), now: 1_000 }
    }

    #[test]
    fn every_venue_answers_an_intent_in_the_same_terms() {
        // DRY_RUN: nothing sent, the entry ends at once.
        let a = Venue::submit(&mut DryRunVenue, &entry(), ctx());
        assert_eq!(
            a.events,
            vec![VenueEvent::Cancelled {
                symbol: Symbol::new("BTCUSDT"),
                client_id: "e-BTCUSDT-1".into(),
                remaining: q("0.5"),
                reason: EndReason::NotSent,
            }]
        );
        assert!(a.commands.is_empty());

        // LIVE: leverage once, then the intent, for the edge; nothing known at once.
        let mut live = LiveAccount::default();
        let a = Venue::submit(&mut live, &entry(), ctx());
        assert!(a.events.is_empty());
        assert!(matches!(a.commands[..], [VenueCommand::SetLeverage { .. }, VenueCommand::Submit(_)]));
        assert!(live.orders.contains_key("e-BTCUSDT-1"), "the LIVE account tracks what it sent");
        let a = Venue::submit(&mut live, &entry(), ctx());
        assert!(matches!(a.commands[..], [VenueCommand::Submit(_)]), "leverage already set");

        // SIM: answers from the book it is fed; without one it cannot take the intent.
        let mut sim = SimVenue::new(FeeRates { maker: Rate::from_f64(0.0002), taker: Rate::from_f64(0.00055) });
        assert_eq!(Venue::submit(&mut sim, &entry(), ctx()).dropped, Some(DropReason::NoBook));
        assert!(Venue::local_snapshot(&sim).is_some());
        assert!(Venue::local_snapshot(&live).is_none() && Venue::local_snapshot(&DryRunVenue).is_none());
    }
}
