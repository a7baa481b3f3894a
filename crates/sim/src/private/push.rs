//! The private WebSocket's connection registry and topic pushes (`order`, `execution`,
//! `position`, `wallet`), in both subscription forms, with the foreign-category items a real
//! account's frames carry. Separate from the REST side, which only reports what changed.

use super::{Exchange, PConn, PrivateState};
use serde_json::{json, Value};
use std::collections::HashSet;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Utf8Bytes;
use tokio_util::sync::CancellationToken;

impl PrivateState {
    /// Items a real account's frames carry besides ours, made from the first of `data`: on the
    /// all-in-one topics a spot item of the same symbol and an option item; on `*.linear` a
    /// USDC perpetual's (`linear` holds USDC contracts too). Wallets have no category.
    fn foreign_items(topic: &str, data: &[Value], all_in_one: bool) -> Vec<Value> {
        let Some(first) = data.first().filter(|_| topic != "wallet") else { return Vec::new() };
        let variant = |category: &str, symbol: Option<&str>, tag: &str| {
            let mut v = first.clone();
            v["category"] = json!(category);
            if let Some(s) = symbol {
                v["symbol"] = json!(s);
            }
            for id in ["orderId", "execId", "orderLinkId"] {
                if let Some(x) = v.get(id).and_then(Value::as_str).filter(|x| !x.is_empty()) {
                    v[id] = json!(format!("{x}-{tag}"));
                }
            }
            v
        };
        if all_in_one {
            vec![variant("spot", None, "spot"), variant("option", Some("ETH-30DEC22-1400-C"), "opt")]
        } else {
            vec![variant("linear", Some("BTCPERP"), "usdc")]
        }
    }

    fn push(&mut self, topic: &'static str, data: Vec<Value>, now_ms: i64) {
        if data.is_empty() || self.conns.is_empty() {
            return;
        }
        // One frame per subscription form: ours first, then the foreign items (the client must
        // skip them one by one, never drop the frame).
        let id = self.new_id();
        let frame_for = |all_in_one: bool| {
            let mut items = data.clone();
            items.extend(Self::foreign_items(topic, &data, all_in_one));
            let name = if all_in_one || topic == "wallet" { topic.to_string() } else { format!("{topic}.linear") };
            Utf8Bytes::from(json!({"id": id, "topic": name, "creationTime": now_ms, "data": items}).to_string())
        };
        let (mixed, linear) = (frame_for(true), frame_for(false));
        let mut dead = Vec::new();
        for (id, c) in &self.conns {
            if !c.authed || !c.topics.contains(topic) {
                continue;
            }
            if self.suppress {
                self.counters.pushes_suppressed += 1;
                continue;
            }
            let frame = if c.all_in_one.contains(topic) { &mixed } else { &linear };
            match c.tx.try_send(frame.clone()) {
                Ok(()) => self.counters.pushes_sent += 1,
                Err(_) => dead.push(*id),
            }
        }
        for id in dead {
            if let Some(c) = self.conns.remove(&id) {
                c.token.cancel();
            }
        }
    }

    /// Registers a private connection.
    pub fn register_conn(&mut self, tx: mpsc::Sender<Utf8Bytes>, token: CancellationToken) -> (u64, String) {
        self.next_conn += 1;
        let id = self.next_conn;
        let conn_id = format!("{}-p{id}", self.new_id());
        self.conns.insert(id, PConn { tx, token, authed: false, topics: HashSet::new(), all_in_one: HashSet::new() });
        self.counters.ws_connections += 1;
        (id, conn_id)
    }

    /// Queues a control frame on one connection.
    pub fn reply(&mut self, conn: u64, frame: String) {
        if let Some(c) = self.conns.get(&conn) {
            if c.tx.try_send(Utf8Bytes::from(frame)).is_err() {
                c.token.cancel();
                self.conns.remove(&conn);
            }
        }
    }

    pub(super) fn push_changes(
        &mut self,
        ex: &Exchange,
        orders: &[u64],
        execs: usize,
        symbols: &[String],
        now_ms: i64,
    ) {
        let o: Vec<Value> = orders.iter().filter_map(|s| self.orders.get(s)).map(|o| self.order_json(ex, o)).collect();
        self.push("order", o, now_ms);
        if execs > 0 {
            let n = self.execs.len();
            let x: Vec<Value> = self.execs.range(n - execs.min(n)..).map(|e| self.exec_json(ex, e, true)).collect();
            self.push("execution", x, now_ms);
        }
        if !symbols.is_empty() {
            let p: Vec<Value> = symbols.iter().map(|s| self.position_json(ex, s, true)).collect();
            self.push("position", p, now_ms);
            let w = self.wallet_json(ex);
            self.push("wallet", vec![w], now_ms);
        }
    }
}
