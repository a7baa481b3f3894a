//! Sorting of raw private items (orders, executions, positions, wallets) into the ones of our
//! universe, typed, and the ones left out one by one with a labelled reason. Shared by the
//! private REST lists and the private WS topics, so both skip and count the same way.

use super::is_usdt_perpetual;
use crate::error::BybitError;

/// Which item kind a private list or topic carries (the `topic` label of
/// `scalper_private_items_skipped_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ItemTopic {
    /// `order` topic, `/v5/order/realtime`, `/v5/order/history`.
    Order,
    /// `execution` topic, `/v5/execution/list`.
    Execution,
    /// `position` topic, `/v5/position/list`.
    Position,
    /// `wallet` topic, `/v5/account/wallet-balance`.
    Wallet,
}

impl ItemTopic {
    /// Every topic, in label order.
    pub const ALL: [ItemTopic; 4] = [ItemTopic::Order, ItemTopic::Execution, ItemTopic::Position, ItemTopic::Wallet];

    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ItemTopic::Order => "order",
            ItemTopic::Execution => "execution",
            ItemTopic::Position => "position",
            ItemTopic::Wallet => "wallet",
        }
    }
}

/// Why an item was left out (the `reason` label of `scalper_private_items_skipped_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SkipReason {
    /// Its `category` is not `linear` (spot, inverse, option items of the all-in-one topics).
    Category,
    /// A `linear` contract that is not a USDT perpetual (USDC perpetual or future, dated future).
    Symbol,
    /// A value Bybit never sends (negative size or price, unknown side, …): a decode error of
    /// that item alone.
    Invalid,
}

impl SkipReason {
    /// Every reason, in label order.
    pub const ALL: [SkipReason; 3] = [SkipReason::Category, SkipReason::Symbol, SkipReason::Invalid];

    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::Category => "category",
            SkipReason::Symbol => "symbol",
            SkipReason::Invalid => "invalid",
        }
    }
}

/// An item left out of a frame or a REST list, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// Item kind.
    pub topic: ItemTopic,
    pub reason: SkipReason,
    /// Its symbol as sent (cut to 64 characters).
    pub symbol: String,
    /// What was wrong (the category, or the decode error).
    pub detail: String,
}

/// The items of one frame or list: the USDT-perpetual ones typed, the others set aside one by
/// one (never the whole frame for one bad item).
#[derive(Debug, Clone, PartialEq)]
pub struct Sorted<T> {
    /// Items of our universe that decoded.
    pub kept: Vec<T>,
    /// Items left out.
    pub skipped: Vec<Skipped>,
}

/// A raw private item: where it belongs and how it decodes.
pub trait RawItem {
    /// Typed form.
    type Typed;
    /// Item kind.
    const TOPIC: ItemTopic;
    /// `category` as sent (empty when the item has none: REST list items carry it on the
    /// `result`, which the request fixed to `linear`).
    fn category(&self) -> &str;
    /// `symbol` as sent (`None` for items without one: wallets).
    fn symbol_text(&self) -> Option<&str>;
    /// Exact typed value, or the decode error.
    fn typed(&self) -> Result<Self::Typed, BybitError>;
}

/// Sorts raw items: foreign category → [`SkipReason::Category`], a linear contract that is not a
/// USDT perpetual → [`SkipReason::Symbol`], a value that does not decode or is impossible →
/// [`SkipReason::Invalid`]; the rest is typed and kept, in order.
pub fn sort_items<R: RawItem>(raw: &[R]) -> Sorted<R::Typed> {
    let mut out = Sorted { kept: Vec::with_capacity(raw.len()), skipped: Vec::new() };
    for r in raw {
        let sym = r.symbol_text().unwrap_or("");
        let skip = |reason, detail: String| Skipped {
            topic: R::TOPIC,
            reason,
            symbol: sym.chars().take(64).collect(),
            detail: detail.chars().take(200).collect(),
        };
        let category = r.category().trim();
        if !category.is_empty() && category != "linear" {
            out.skipped.push(skip(SkipReason::Category, format!("category {category:?}")));
            continue;
        }
        if r.symbol_text().is_some_and(|s| !is_usdt_perpetual(s.trim())) {
            out.skipped.push(skip(SkipReason::Symbol, "not a USDT perpetual".into()));
            continue;
        }
        match r.typed() {
            Ok(t) => out.kept.push(t),
            Err(e) => out.skipped.push(skip(SkipReason::Invalid, e.to_string())),
        }
    }
    out
}
