//! The public WebSocket's connections and subscriptions: registering connections, parsing and
//! validating topics the way Bybit does, acks, the snapshots a subscription starts with and
//! control replies.

use super::{inc, ConnEntry, Exchange, Topic, DEPTHS};
use crate::rng::mix_seed;
use crate::wire;
use crate::Listing;
use scalper_core::domain::Symbol;
use std::collections::HashSet;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Utf8Bytes;
use tokio_util::sync::CancellationToken;

impl Exchange {
    /// Registers a new connection; returns its numeric id and Bybit-style `conn_id`.
    pub fn register_conn(&mut self, tx: mpsc::Sender<Utf8Bytes>, token: CancellationToken) -> (u64, String) {
        self.next_conn += 1;
        let id = self.next_conn;
        let h = mix_seed(self.cfg.seed ^ 0xC0CC, id);
        let conn_id = format!("{:016x}-{:x}", h, id);
        self.conns.insert(id, ConnEntry { tx, token, conn_id: conn_id.clone(), topics: HashSet::new(), args_chars: 0 });
        (id, conn_id)
    }

    /// Forgets a connection and all its subscriptions.
    pub fn unregister_conn(&mut self, id: u64) {
        if let Some(conn) = self.conns.remove(&id) {
            for t in conn.topics {
                if let Some(list) = self.subs.get_mut(&t) {
                    list.retain(|(c, _)| *c != id);
                    if list.is_empty() {
                        self.subs.remove(&t);
                    }
                }
            }
        }
    }

    pub(super) fn topic_name(&self, t: Topic) -> String {
        match t {
            Topic::Book(s, d) => format!("orderbook.{}.{}", DEPTHS[d as usize], self.symbols[s as usize].spec.name),
            Topic::Trade(s) => format!("publicTrade.{}", self.symbols[s as usize].spec.name),
            Topic::Ticker(s) => format!("tickers.{}", self.symbols[s as usize].spec.name),
            Topic::Liq(s) => format!("allLiquidation.{}", self.symbols[s as usize].spec.name),
        }
    }

    /// Parses a topic string; errors carry Bybit's `ret_msg`.
    fn parse_topic(&self, arg: &str) -> Result<Topic, String> {
        let not_found = || format!("error:handler not found,topic:{arg}");
        let parts: Vec<&str> = arg.split('.').collect();
        let (kind, depth, sym) = match parts.as_slice() {
            ["orderbook", d, s] => {
                let d: usize = d.parse().map_err(|_| not_found())?;
                let di = DEPTHS.iter().position(|x| *x == d).ok_or_else(not_found)?;
                (0u8, di as u8, *s)
            }
            ["publicTrade", s] => (1, 0, *s),
            ["tickers", s] => (2, 0, *s),
            ["allLiquidation", s] => (3, 0, *s),
            _ => return Err(not_found()),
        };
        if !Symbol::is_valid(sym) {
            return Err(not_found());
        }
        let i = match self.by_name.get(sym) {
            Some(&i) if self.symbols[i].listing == Listing::Trading => i as u32,
            _ => return Err(format!("Invalid symbol :[{arg}]")),
        };
        Ok(match kind {
            0 => Topic::Book(i, depth),
            1 => Topic::Trade(i),
            2 => Topic::Ticker(i),
            _ => Topic::Liq(i),
        })
    }

    /// Handles `subscribe`: validates the whole batch (one bad arg fails all, like Bybit), then
    /// acks and sends the snapshots, all before any later delta can be queued.
    pub fn subscribe(&mut self, conn: u64, args: &[String], req_id: &str) {
        let Some(c) = self.conns.get(&conn) else { return };
        let conn_id = c.conn_id.clone();
        let fail = |m: String| Err::<Vec<Topic>, String>(m);
        let parsed = (|| {
            if args.is_empty() {
                return fail("error:args is empty".into());
            }
            if let Some(max) = self.cfg.max_args_per_request {
                if args.len() > max {
                    return fail(format!("args size >{max}"));
                }
            }
            let mut topics = Vec::with_capacity(args.len());
            let mut chars = c.args_chars;
            for a in args {
                let t = self.parse_topic(a)?;
                if c.topics.contains(&t) || topics.contains(&t) {
                    return fail(format!("error:already subscribed,topic:{a}"));
                }
                chars += a.len();
                topics.push(t);
            }
            if chars > self.cfg.max_args_chars {
                return fail(format!("error:args length exceeds {} characters", self.cfg.max_args_chars));
            }
            Ok(topics)
        })();
        let topics = match parsed {
            Ok(t) => t,
            Err(m) => {
                inc(&self.counters.subscribe_failures);
                inc(&self.counters.control_frames);
                self.send_to(conn, wire::op_reply(false, &m, &conn_id, req_id, "subscribe"));
                return;
            }
        };
        inc(&self.counters.control_frames);
        self.send_to(conn, wire::op_reply(true, "", &conn_id, req_id, "subscribe"));
        let chars: usize = args.iter().map(|a| a.len()).sum();
        let Some(entry) = self.conns.get_mut(&conn) else { return };
        entry.args_chars += chars;
        let tx = entry.tx.clone();
        for &t in &topics {
            entry.topics.insert(t);
            self.subs.entry(t).or_default().push((conn, tx.clone()));
        }
        for t in topics {
            let (si, quiet) = match t {
                Topic::Book(s, _) | Topic::Ticker(s) => (s as usize, self.silent || self.symbols[s as usize].silent),
                _ => continue,
            };
            if quiet {
                inc(&self.counters.frames_suppressed);
                continue;
            }
            let sym = &self.symbols[si];
            let frame = match t {
                Topic::Book(_, d) => {
                    Some(wire::book_frame(&sym.spec, &sym.depths[d as usize].snapshot_frame(None, None)))
                }
                _ => sym.ticker.as_ref().and_then(|v| wire::ticker_frame(v, None, sym.seq, sym.last_ts)),
            };
            if let Some(f) = frame {
                inc(self.frame_counter(t));
                self.send_to(conn, f);
            }
        }
        self.drop_slow();
    }

    /// Handles `unsubscribe` (valid but not subscribed topics are accepted silently).
    pub fn unsubscribe(&mut self, conn: u64, args: &[String], req_id: &str) {
        let Some(c) = self.conns.get(&conn) else { return };
        let conn_id = c.conn_id.clone();
        let mut topics = Vec::new();
        for a in args {
            match self.parse_topic(a) {
                Ok(t) => topics.push((t, a.len())),
                Err(m) => {
                    inc(&self.counters.control_frames);
                    self.send_to(conn, wire::op_reply(false, &m, &conn_id, req_id, "unsubscribe"));
                    return;
                }
            }
        }
        if let Some(entry) = self.conns.get_mut(&conn) {
            for (t, len) in topics {
                if entry.topics.remove(&t) {
                    entry.args_chars = entry.args_chars.saturating_sub(len);
                    if let Some(list) = self.subs.get_mut(&t) {
                        list.retain(|(c, _)| *c != conn);
                    }
                }
            }
        }
        inc(&self.counters.control_frames);
        self.send_to(conn, wire::op_reply(true, "", &conn_id, req_id, "unsubscribe"));
        self.drop_slow();
    }

    /// Queues a control reply (pong, errors) on a connection.
    pub fn reply(&mut self, conn: u64, frame: String) {
        inc(&self.counters.control_frames);
        self.send_to(conn, frame);
        self.drop_slow();
    }
}
