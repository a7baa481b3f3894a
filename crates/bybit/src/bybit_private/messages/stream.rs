//! The private WebSocket: the topics this client subscribes to and the parsing of one text
//! frame into typed items (ours) and skipped items (foreign or bad), one item at a time.

use super::account::{RawPosition, RawWallet, VenuePosition, WalletBalance};
use super::execution::{RawExecution, VenueExecution};
use super::items::{sort_items, RawItem, SkipReason, Skipped, Sorted};
use super::order::{RawOrder, VenueOrder};
use crate::bybit_public::messages::OpResponse;
use crate::error::BybitError;
use crate::wire::decode_err;
use scalper_core::domain::TimeMs;
use serde::de;
use serde::Deserialize;

/// Private topics this client subscribes to: the `linear` ones (the all-in-one `order`,
/// `execution`, `position` also carry spot, inverse and option items); `wallet` has no
/// category form.
pub const PRIVATE_TOPICS: [&str; 4] = ["order.linear", "execution.linear", "position.linear", "wallet"];

/// `{id, topic, creationTime, data: [...]}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PrivateTopicFrame<D> {
    #[serde(default)]
    creation_time: Option<i64>,
    data: Vec<D>,
}

/// A parsed private WebSocket frame. Topic frames carry the items of our universe that decoded
/// and, apart, the ones left out ([`Skipped`]): one foreign or bad item never costs the others.
#[derive(Debug, Clone, PartialEq)]
pub enum PrivateFrame {
    /// Answer to `auth`, `subscribe` or `ping` (pongs have `op == "pong"`).
    Op(OpResponse),
    /// `order` topic.
    Orders {
        /// `creationTime`.
        ts_ms: Option<TimeMs>,
        orders: Vec<VenueOrder>,
        /// Items left out.
        skipped: Vec<Skipped>,
    },
    /// `execution` topic.
    Executions {
        /// `creationTime`.
        ts_ms: Option<TimeMs>,
        executions: Vec<VenueExecution>,
        /// Items left out.
        skipped: Vec<Skipped>,
    },
    /// `position` topic.
    Positions {
        /// `creationTime`.
        ts_ms: Option<TimeMs>,
        positions: Vec<VenuePosition>,
        /// Items left out.
        skipped: Vec<Skipped>,
    },
    /// `wallet` topic.
    Wallet {
        /// `creationTime`.
        ts_ms: Option<TimeMs>,
        wallets: Vec<WalletBalance>,
        /// Items left out.
        skipped: Vec<Skipped>,
    },
    /// A topic this client does not handle.
    Unhandled(String),
}

impl PrivateFrame {
    /// Items left out of a topic frame (empty for ops and unhandled topics).
    pub fn skipped(&self) -> &[Skipped] {
        match self {
            PrivateFrame::Orders { skipped, .. }
            | PrivateFrame::Executions { skipped, .. }
            | PrivateFrame::Positions { skipped, .. }
            | PrivateFrame::Wallet { skipped, .. } => skipped,
            PrivateFrame::Op(_) | PrivateFrame::Unhandled(_) => &[],
        }
    }
}

/// `{topic, creationTime, data: [...]}` with the items left raw.
fn topic_items<R: RawItem + de::DeserializeOwned>(
    v: serde_json::Value,
) -> Result<(Option<TimeMs>, Sorted<R::Typed>), BybitError> {
    let f: PrivateTopicFrame<serde_json::Value> = serde_json::from_value(v).map_err(decode_err)?;
    let mut raw = Vec::with_capacity(f.data.len());
    let mut shapeless = Vec::new();
    for item in f.data {
        let sym = item.get("symbol").and_then(|s| s.as_str()).unwrap_or("").chars().take(64).collect::<String>();
        match serde_json::from_value::<R>(item) {
            Ok(r) => raw.push(r),
            Err(e) => shapeless.push(Skipped {
                topic: R::TOPIC,
                reason: SkipReason::Invalid,
                symbol: sym,
                detail: e.to_string().chars().take(200).collect(),
            }),
        }
    }
    let mut sorted = sort_items(&raw);
    sorted.skipped.extend(shapeless);
    Ok((f.creation_time, sorted))
}

/// Parses one private WebSocket text frame. The topic may be all-in-one (`order`) or
/// categorised (`order.linear`): either way every item's `category` and symbol are checked.
pub fn parse_private_frame(text: &str) -> Result<PrivateFrame, BybitError> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(decode_err)?;
    let topic = match v.get("topic").and_then(|t| t.as_str()) {
        Some(t) => t.to_string(),
        None => {
            if v.get("op").is_some() {
                return serde_json::from_value(v).map(PrivateFrame::Op).map_err(decode_err);
            }
            return Err(decode_err("frame has neither topic nor op"));
        }
    };
    match topic.split('.').next().unwrap_or("") {
        "order" => {
            let (ts_ms, s) = topic_items::<RawOrder>(v)?;
            Ok(PrivateFrame::Orders { ts_ms, orders: s.kept, skipped: s.skipped })
        }
        "execution" => {
            let (ts_ms, s) = topic_items::<RawExecution>(v)?;
            Ok(PrivateFrame::Executions { ts_ms, executions: s.kept, skipped: s.skipped })
        }
        "position" => {
            let (ts_ms, s) = topic_items::<RawPosition>(v)?;
            Ok(PrivateFrame::Positions { ts_ms, positions: s.kept, skipped: s.skipped })
        }
        "wallet" => {
            let (ts_ms, s) = topic_items::<RawWallet>(v)?;
            Ok(PrivateFrame::Wallet { ts_ms, wallets: s.kept, skipped: s.skipped })
        }
        _ => Ok(PrivateFrame::Unhandled(f_topic(&topic))),
    }
}

fn f_topic(t: &str) -> String {
    t.chars().take(64).collect()
}
