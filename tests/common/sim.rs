//! Client side of the simulator integration tests: a plain reqwest / tokio-tungstenite client
//! (REST getter, WebSocket send / receive / subscribe) and a naive client book that checks
//! Bybit's sequencing rules, shared by `tests/simulator.rs` and `tests/simulator_scenarios.rs`.

use futures_util::{SinkExt, StreamExt};
use scalper::connectors::simulator::{ClockMode, SimConfig, SimExchange, SimHandle};
use scalper::domain::{Price, Qty};
use scalper::market::data::Level;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{connect_async, MaybeTlsStream, WebSocketStream};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub fn manual(symbols: usize) -> SimConfig {
    SimConfig { symbols, clock: ClockMode::Manual, seed: 42, ..SimConfig::default() }
}

pub async fn start(cfg: SimConfig) -> SimHandle {
    SimExchange::start(cfg).await.expect("simulator starts")
}

pub async fn get(sim: &SimHandle, path: &str) -> (u16, Value) {
    let r = reqwest::get(format!("{}{}", sim.rest_url(), path)).await.expect("http");
    let status = r.status().as_u16();
    let text = r.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

pub async fn connect(sim: &SimHandle) -> Ws {
    connect_async(sim.ws_public_url()).await.expect("ws connect").0
}

pub async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::Text(v.to_string().into())).await.expect("ws send");
}

#[derive(Debug)]
pub enum Got {
    Json(Value),
    Garbage(String),
    Closed,
    Timeout,
}

pub async fn recv_raw(ws: &mut Ws, wait: Duration) -> Got {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => return Got::Timeout,
            Ok(None) | Ok(Some(Err(_))) | Ok(Some(Ok(Message::Close(_)))) => return Got::Closed,
            Ok(Some(Ok(Message::Text(t)))) => {
                return match serde_json::from_str(t.as_str()) {
                    Ok(v) => Got::Json(v),
                    Err(_) => Got::Garbage(t.to_string()),
                }
            }
            Ok(Some(Ok(_))) => continue,
        }
    }
}

pub async fn recv(ws: &mut Ws) -> Value {
    match recv_raw(ws, Duration::from_secs(3)).await {
        Got::Json(v) => v,
        other => panic!("expected a JSON frame, got {other:?}"),
    }
}

/// Subscribes and returns the ack.
pub async fn subscribe(ws: &mut Ws, args: &[&str], req_id: &str) -> Value {
    send(ws, json!({"op": "subscribe", "args": args, "req_id": req_id})).await;
    let ack = recv(ws).await;
    assert_eq!(ack["op"], "subscribe", "{ack}");
    ack
}

pub fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))
}

/// A naive client book built only from frames.
#[derive(Default, Debug, Clone)]
pub struct ClientBook {
    pub bids: BTreeMap<Price, Qty>,
    pub asks: BTreeMap<Price, Qty>,
    pub u: u64,
    pub seq: u64,
    pub ts: i64,
    pub cts: i64,
}

impl ClientBook {
    /// Applies one orderbook frame, checking Bybit's sequencing rules on deltas.
    pub fn apply(&mut self, f: &Value) {
        let d = &f["data"];
        let u = d["u"].as_u64().expect("u");
        let seq = d["seq"].as_u64().expect("seq");
        let ts = f["ts"].as_i64().expect("ts");
        let cts = f["cts"].as_i64().expect("cts");
        match s(&f["type"]) {
            "snapshot" => {
                self.bids.clear();
                self.asks.clear();
            }
            "delta" => {
                assert_eq!(u, self.u + 1, "u must be contiguous: {f}");
                assert!(seq > self.seq && ts > self.ts && cts > self.cts, "seq/ts/cts must increase: {f}");
            }
            other => panic!("bad type {other}"),
        }
        for (side, map) in [("b", &mut self.bids), ("a", &mut self.asks)] {
            for lvl in d[side].as_array().expect("levels") {
                let p = Price::parse(s(&lvl[0])).expect("price");
                let q = Qty::parse(s(&lvl[1])).expect("qty");
                if q.is_zero() {
                    map.remove(&p);
                } else {
                    map.insert(p, q);
                }
            }
        }
        self.u = u;
        self.seq = seq;
        self.ts = ts;
        self.cts = cts;
    }

    pub fn bids(&self) -> Vec<Level> {
        self.bids.iter().rev().map(|(p, q)| Level { price: *p, qty: *q }).collect()
    }

    pub fn asks(&self) -> Vec<Level> {
        self.asks.iter().map(|(p, q)| Level { price: *p, qty: *q }).collect()
    }

    pub fn crossed(&self) -> bool {
        matches!((self.bids.keys().next_back(), self.asks.keys().next()), (Some(b), Some(a)) if b >= a)
    }
}

pub fn levels(v: &Value) -> Vec<Level> {
    v.as_array()
        .expect("levels")
        .iter()
        .map(|l| Level { price: Price::parse(s(&l[0])).unwrap(), qty: Qty::parse(s(&l[1])).unwrap() })
        .collect()
}
