//! The simulator's private (account) side: API keys, one unified USDT account in one-way
//! mode, orders matched against the simulator's own books, positions, a wallet charged with
//! maker / taker fees, and the pushes of the private WebSocket topics.
//!
//! Matching:
//! - market orders and the crossing part of limit orders take liquidity from the symbol's
//!   book (taker fee); market orders are protected by a 5 % price band like Bybit's
//!   market-to-IOC conversion;
//! - `PostOnly` orders that would cross are cancelled (`EC_PostOnlyWillTakeLiquidity`);
//!   IOC remainders are cancelled;
//! - resting limit orders are kept off the published book and fill completely at their price
//!   (maker fee) at the first market step after placement where the opposite best price reaches
//!   them or the last trade prints through them;
//! - conditional (stop) market orders wait `Untriggered` until the last price crosses the
//!   trigger in their `triggerDirection`, then execute as market orders;
//! - reduce-only orders never increase a position (rejected with 110017 when there is nothing
//!   to reduce; capped to the position otherwise); full-position TP/SL set by trading-stop
//!   closes at market when the last price reaches them.
//!
//! Money is exact: execution value `price × qty`, fee rounded up at 10^-8, realised PnL from
//! the exact cost basis (`execPnl`), wallet balance += execPnl − execFee.

use super::exchange::{Exchange, RestError};
use super::rng::{mix_seed, uuid_like};
use super::wire::Dec;
use crate::connectors::bybit_private::limiter::{EndpointGroup, RateLimits};
use crate::domain::{Fixed, Price, Qty, Side, SCALE};
use crate::risk::money::{fee, Money, Rate};
use rand::rngs::SmallRng;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Utf8Bytes;
use tokio_util::sync::CancellationToken;

/// An API key the simulator accepts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    /// Key (`X-BAPI-API-KEY`).
    pub key: String,
    /// Secret used to verify signatures.
    pub secret: String,
}

/// Settings of the simulated account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrivateConfig {
    /// Accepted API keys (all trade the same account).
    pub api_keys: Vec<ApiKey>,
    /// Starting USDT wallet balance.
    pub initial_balance: Money,
    /// Maker fee rate.
    pub maker_fee_rate: Rate,
    /// Taker fee rate.
    pub taker_fee_rate: Rate,
    /// Leverage of a symbol until set-leverage changes it.
    pub default_leverage: u32,
    /// Requests per second per API key and endpoint group.
    #[serde(skip)]
    pub rate_limits: RateLimits,
    /// Closed orders kept for `/v5/order/realtime?openOnly=1` (Bybit: 500).
    pub recent_closed_orders: usize,
    /// Orders kept in history.
    pub history_orders: usize,
    /// Executions kept.
    pub executions_kept: usize,
}

impl Default for PrivateConfig {
    fn default() -> Self {
        PrivateConfig {
            api_keys: vec![ApiKey { key: "sim-api-key".into(), secret: "sim-api-secret".into() }],
            initial_balance: Money::from_int(100_000),
            maker_fee_rate: Rate::from_raw(20_000),
            taker_fee_rate: Rate::from_raw(55_000),
            default_leverage: 10,
            rate_limits: RateLimits::default(),
            recent_closed_orders: 500,
            history_orders: 10_000,
            executions_kept: 50_000,
        }
    }
}

/// A fault of the private surface, applied through [`super::SimPrivate::inject`]. (HTTP
/// status and retCode storms use the public [`super::Fault::RestHttpError`] /
/// [`super::Fault::RestRetCode`], which private endpoints honour too.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PrivateFault {
    /// The next `count` creates are executed, then answered with HTTP `status` (a gateway
    /// error after the fact, e.g. 502 / 504).
    CreateAcceptedThenHttp {
        /// HTTP status.
        status: u16,
        /// Creates affected.
        count: u32,
    },
    /// The next `count` creates are executed, but the answer is held for `delay_ms` (longer
    /// than the client's timeout: the client sees a timeout).
    CreateAcceptedResponseDelayed {
        /// Delay before answering.
        delay_ms: u64,
        /// Creates affected.
        count: u32,
    },
    /// The next `count` creates are held for `delay_ms` before being processed; their
    /// timestamp is checked then, so one whose receive window has passed is rejected (10002).
    CreateDelayedBeforeProcessing {
        /// Delay before processing.
        delay_ms: u64,
        /// Creates affected.
        count: u32,
    },
    /// The next `count` creates are rejected with `ret_code` (e.g. 110007) without effect.
    RejectCreates {
        /// Bybit retCode.
        ret_code: i64,
        /// Creates affected.
        count: u32,
    },
    /// Close every private WebSocket abruptly.
    DropConnections,
    /// Drop (`on = true`) every private push while the sockets stay open.
    SuppressPushes {
        /// Drop when true.
        on: bool,
    },
}

/// Counters of the private surface.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrivateCounters {
    /// Private REST requests received.
    pub requests: u64,
    /// Requests refused for a bad key, timestamp or signature.
    pub auth_failures: u64,
    /// Requests refused by the rate limit (10006).
    pub rate_limited: u64,
    /// Authenticated create requests processed (accepted or rejected).
    pub create_requests: u64,
    /// Orders created.
    pub orders_created: u64,
    /// Creates rejected (validation, balance, reduce-only, duplicate, injected).
    pub orders_rejected: u64,
    /// Creates rejected for a duplicate `orderLinkId`.
    pub duplicate_link_ids: u64,
    /// Executions.
    pub executions: u64,
    /// Private WebSocket connections accepted.
    pub ws_connections: u64,
    /// Successful WebSocket `auth` ops.
    pub ws_auth_ok: u64,
    /// Rejected WebSocket `auth` ops.
    pub ws_auth_failed: u64,
    /// Topic frames pushed.
    pub pushes_sent: u64,
    /// Topic frames dropped by [`PrivateFault::SuppressPushes`].
    pub pushes_suppressed: u64,
    /// Private faults served.
    pub faults_served: u64,
}

/// An order as the simulator holds it (prices and quantities raw 10^-8).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SimOrderView {
    /// Venue order id.
    pub order_id: String,
    /// Client order id.
    pub order_link_id: String,
    /// Symbol.
    pub symbol: String,
    /// Side.
    pub side: Side,
    /// Bybit status.
    pub status: String,
    /// Quantity.
    pub qty: Qty,
    /// Executed quantity.
    pub cum_exec_qty: Qty,
}

/// An execution as the simulator recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SimExecutionView {
    /// Execution id.
    pub exec_id: String,
    /// Client order id.
    pub order_link_id: String,
    /// Symbol.
    pub symbol: String,
    /// Side.
    pub side: Side,
    /// Price.
    pub price: Price,
    /// Quantity.
    pub qty: Qty,
    /// Fee.
    pub fee: Money,
    /// Realised PnL of the closing part (fees excluded).
    pub pnl: Money,
    /// Maker fill.
    pub is_maker: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OType {
    Limit,
    Market,
}

#[derive(Debug, Clone)]
pub(crate) struct SimOrder {
    seq: u64,
    order_id: String,
    link: String,
    symbol: String,
    side: Side,
    otype: OType,
    price: Option<i64>,
    qty: i64,
    tif: &'static str,
    trigger: Option<i64>,
    trigger_dir: u8,
    stop_type: &'static str,
    reduce_only: bool,
    status: &'static str,
    reject_reason: &'static str,
    cum_qty: i64,
    cum_value: i128,
    cum_fee: i64,
    avg_price: Option<i64>,
    created_ms: i64,
    updated_ms: i64,
    placed_step: u64,
    last_price_on_created: i64,
}

impl SimOrder {
    fn is_open(&self) -> bool {
        matches!(self.status, "New" | "PartiallyFilled" | "Untriggered")
    }
    fn leaves(&self) -> i64 {
        if self.is_open() {
            (self.qty - self.cum_qty).max(0)
        } else {
            0
        }
    }
}

#[derive(Debug, Clone, Default)]
struct Pos {
    /// Signed size, raw qty.
    size: i64,
    /// Exact cost of the open size, 10^-16 USDT.
    cost: i128,
    leverage: i64,
    cur_realised: i64,
    cum_realised: i64,
    take_profit: Option<i64>,
    stop_loss: Option<i64>,
    created_ms: i64,
    updated_ms: i64,
    seq: u64,
}

#[derive(Debug, Clone)]
struct SimExec {
    exec_id: String,
    order_id: String,
    link: String,
    symbol: String,
    side: Side,
    price: i64,
    qty: i64,
    value: i64,
    fee: i64,
    fee_rate: i64,
    is_maker: bool,
    pnl: i64,
    closed: i64,
    order_type: OType,
    stop_type: &'static str,
    order_price: Option<i64>,
    order_qty: i64,
    leaves: i64,
    time_ms: i64,
    seq: u64,
    mark: i64,
}

/// A connected private WebSocket.
#[derive(Debug)]
pub(crate) struct PConn {
    pub tx: mpsc::Sender<Utf8Bytes>,
    pub token: CancellationToken,
    pub authed: bool,
    pub topics: HashSet<&'static str>,
    /// Topics subscribed in their all-in-one form (`order`, not `order.linear`).
    pub all_in_one: HashSet<&'static str>,
}

#[derive(Debug, Default)]
struct Faults {
    then_http: Option<(u16, u32)>,
    delayed_response: Option<(u64, u32)>,
    delayed_processing: Option<(u64, u32)>,
    reject: Option<(i64, u32)>,
}

/// What a create request must suffer before / after processing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CreateFault {
    ThenHttp(u16),
    DelayResponse(u64),
    DelayProcessing(u64),
    Reject(i64),
}

fn take(slot: &mut Option<(impl Copy, u32)>) -> Option<()> {
    match slot {
        Some((_, n)) if *n > 1 => {
            *n -= 1;
            Some(())
        }
        Some(_) => {
            *slot = None;
            Some(())
        }
        None => None,
    }
}

/// Rate-limit window of one (key, group).
#[derive(Debug, Clone, Copy)]
struct Window {
    start: std::time::Instant,
    used: u32,
}

/// Limit headers of a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LimitHeaders {
    pub limit: u32,
    pub remaining: u32,
    pub reset_ms: i64,
}

/// Symbol rules the private side needs.
#[derive(Debug, Clone, Copy)]
struct Rules {
    idx: usize,
    tick: i64,
    step: i64,
    price_scale: u32,
    qty_decimals: u32,
    max_qty: i64,
    max_lev: i64,
}

/// The private state of the simulator.
#[derive(Debug)]
pub(crate) struct PrivateState {
    pub cfg: PrivateConfig,
    secrets: HashMap<String, String>,
    wallet: i64,
    cum_realised: i64,
    orders: BTreeMap<u64, SimOrder>,
    by_link: HashMap<String, u64>,
    positions: BTreeMap<String, Pos>,
    execs: VecDeque<SimExec>,
    next_seq: u64,
    rng: SmallRng,
    faults: Faults,
    windows: HashMap<(String, EndpointGroup), Window>,
    pub conns: HashMap<u64, PConn>,
    next_conn: u64,
    suppress: bool,
    /// The account is a classic (non-unified) one: wallets are answered in the `CONTRACT`
    /// shape with empty USD totals.
    classic: bool,
    pub counters: PrivateCounters,
}

/// Result of a processed request: the JSON `result` or a Bybit error.
pub(crate) type Outcome = Result<Value, RestError>;

fn err(code: i64, msg: impl Into<String>) -> RestError {
    RestError(code, msg.into())
}

fn params(msg: &str) -> RestError {
    err(10001, format!("params error: {msg}"))
}

/// Message Bybit pairs with a private-endpoint retCode.
pub(crate) fn ret_msg(code: i64) -> &'static str {
    match code {
        10003 => "API key is invalid.",
        10005 => "Permission denied, please check your API key permissions.",
        110001 => "order not exists or too late to cancel",
        110007 => "Available balance is insufficient",
        110017 => "Reduce-only rule not satisfied",
        110043 => "Set leverage not modified",
        110072 => "OrderLinkedID is duplicate",
        other => super::server::ret_msg(other),
    }
}

/// A JSON object from (key, value) pairs.
fn obj<const N: usize>(pairs: [(&str, Value); N]) -> Value {
    Value::Object(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

fn money(raw: i64) -> String {
    Fixed::from_raw(raw).to_string()
}

fn i128_to_money(raw16: i128) -> i64 {
    raw16.div_euclid(SCALE as i128).clamp(i64::MIN as i128, i64::MAX as i128) as i64
}

fn side_str(s: Side) -> &'static str {
    s.as_bybit()
}

fn get_str<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(|x| x.as_str())
}

/// Reads a decimal field given as a string (Bybit) or a number.
fn get_dec(v: &Value, k: &str) -> Result<Option<i64>, RestError> {
    match v.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Fixed::parse(s).map(|f| Some(f.raw())).map_err(|_| params(&format!("{k} invalid"))),
        Some(Value::Number(n)) => {
            Fixed::parse(&n.to_string()).map(|f| Some(f.raw())).map_err(|_| params(&format!("{k} invalid")))
        }
        Some(_) => Err(params(&format!("{k} must be a string"))),
    }
}

fn get_bool(v: &Value, k: &str) -> Result<bool, RestError> {
    match v.get(k) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(params(&format!("{k} must be a boolean"))),
    }
}

fn get_int(v: &Value, k: &str) -> Result<Option<i64>, RestError> {
    match v.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(|| params(&format!("{k} invalid"))),
        Some(Value::String(s)) => s.trim().parse::<i64>().map(Some).map_err(|_| params(&format!("{k} invalid"))),
        Some(_) => Err(params(&format!("{k} invalid"))),
    }
}

impl PrivateState {
    /// Fresh account for `cfg`, ids seeded from `seed`.
    pub fn new(cfg: PrivateConfig, seed: u64) -> PrivateState {
        let secrets = cfg.api_keys.iter().map(|k| (k.key.clone(), k.secret.clone())).collect();
        PrivateState {
            wallet: cfg.initial_balance.raw(),
            cfg,
            secrets,
            cum_realised: 0,
            orders: BTreeMap::new(),
            by_link: HashMap::new(),
            positions: BTreeMap::new(),
            execs: VecDeque::new(),
            next_seq: 0,
            rng: SmallRng::seed_from_u64(mix_seed(seed, 0x5052_4956)),
            faults: Faults::default(),
            windows: HashMap::new(),
            conns: HashMap::new(),
            next_conn: 0,
            suppress: false,
            classic: false,
            counters: PrivateCounters::default(),
        }
    }

    /// Replaces the configuration and resets the account (connections stay).
    pub fn reset(&mut self, cfg: PrivateConfig, seed: u64) {
        let conns = std::mem::take(&mut self.conns);
        let next_conn = self.next_conn;
        *self = PrivateState::new(cfg, seed);
        self.conns = conns;
        self.next_conn = next_conn;
    }

    /// Adds (or replaces) an API key.
    pub fn add_key(&mut self, key: &str, secret: &str) {
        self.secrets.insert(key.to_string(), secret.to_string());
        self.cfg.api_keys.retain(|k| k.key != key);
        self.cfg.api_keys.push(ApiKey { key: key.into(), secret: secret.into() });
    }

    /// The secret of a key.
    pub fn secret(&self, key: &str) -> Option<&str> {
        self.secrets.get(key).map(String::as_str)
    }

    /// Applies a fault.
    pub fn apply_fault(&mut self, f: &PrivateFault) {
        let n = |c: u32| (c > 0).then_some(c);
        match *f {
            PrivateFault::CreateAcceptedThenHttp { status, count } => {
                self.faults.then_http = n(count).map(|c| (status, c))
            }
            PrivateFault::CreateAcceptedResponseDelayed { delay_ms, count } => {
                self.faults.delayed_response = n(count).map(|c| (delay_ms, c))
            }
            PrivateFault::CreateDelayedBeforeProcessing { delay_ms, count } => {
                self.faults.delayed_processing = n(count).map(|c| (delay_ms, c))
            }
            PrivateFault::RejectCreates { ret_code, count } => self.faults.reject = n(count).map(|c| (ret_code, c)),
            PrivateFault::DropConnections => {
                for c in self.conns.values() {
                    c.token.cancel();
                }
                self.conns.clear();
            }
            PrivateFault::SuppressPushes { on } => self.suppress = on,
        }
    }

    /// The fault the next create suffers, if any.
    pub fn take_create_fault(&mut self) -> Option<CreateFault> {
        let f = if let Some((d, _)) = self.faults.delayed_processing {
            take(&mut self.faults.delayed_processing).map(|_| CreateFault::DelayProcessing(d))
        } else if let Some((c, _)) = self.faults.reject {
            take(&mut self.faults.reject).map(|_| CreateFault::Reject(c))
        } else if let Some((s, _)) = self.faults.then_http {
            take(&mut self.faults.then_http).map(|_| CreateFault::ThenHttp(s))
        } else if let Some((d, _)) = self.faults.delayed_response {
            take(&mut self.faults.delayed_response).map(|_| CreateFault::DelayResponse(d))
        } else {
            None
        };
        if f.is_some() {
            self.counters.faults_served += 1;
        }
        f
    }

    /// Counts a request against the rate limit of (`key`, `group`): `Err` when exhausted.
    pub fn rate_limit(&mut self, key: &str, group: EndpointGroup, now_ms: i64) -> Result<LimitHeaders, LimitHeaders> {
        let limit = self.cfg.rate_limits.get(group);
        let now = std::time::Instant::now();
        let w = self.windows.entry((key.to_string(), group)).or_insert(Window { start: now, used: 0 });
        let elapsed = now.duration_since(w.start);
        if elapsed >= std::time::Duration::from_secs(1) {
            *w = Window { start: now, used: 0 };
        }
        let reset_ms = now_ms + 1_000 - now.duration_since(w.start).as_millis() as i64;
        if w.used >= limit {
            self.counters.rate_limited += 1;
            return Err(LimitHeaders { limit, remaining: 0, reset_ms });
        }
        w.used += 1;
        Ok(LimitHeaders { limit, remaining: limit - w.used, reset_ms: now_ms })
    }

    // ----------------------------------------------------------------------------- helpers

    fn rules(ex: &Exchange, symbol: &str) -> Option<Rules> {
        let idx = ex.symbols.iter().position(|s| s.spec.name == symbol && s.market.is_some())?;
        let spec = &ex.symbols[idx].spec;
        let max_lev = Fixed::parse(spec.max_leverage).map(|f| f.raw() / SCALE).unwrap_or(10).max(1);
        Some(Rules {
            idx,
            tick: spec.tick_raw,
            step: spec.qty_step_raw,
            price_scale: spec.price_scale,
            qty_decimals: spec.qty_decimals,
            max_qty: spec.max_qty_lots.saturating_mul(spec.qty_step_raw),
            max_lev,
        })
    }

    fn price_str(r: &Rules, raw: i64) -> String {
        if raw % r.tick == 0 {
            Dec::ticks(raw / r.tick, r.tick, r.price_scale).to_string()
        } else {
            Fixed::from_raw(raw).to_string()
        }
    }

    fn qty_str(r: &Rules, raw: i64) -> String {
        Dec::ticks(raw / r.step, r.step, r.qty_decimals).to_string()
    }

    fn last_price(ex: &Exchange, r: &Rules) -> i64 {
        ex.symbols[r.idx].market.as_ref().map_or(0, |m| m.last_price.saturating_mul(r.tick))
    }

    fn new_id(&mut self) -> String {
        uuid_like(&mut self.rng)
    }

    fn next(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    fn lev(&self, symbol: &str) -> i64 {
        self.positions.get(symbol).map_or(self.cfg.default_leverage as i64, |p| p.leverage).max(1)
    }

    /// Initial margin of positions and open orders, 10^-8.
    fn margin_used(&self) -> (i64, i64) {
        let pos_im: i128 = self.positions.values().map(|p| p.cost / p.leverage.max(1) as i128).sum();
        let ord_im: i128 = self
            .orders
            .values()
            .filter(|o| o.is_open() && !o.reduce_only && o.otype == OType::Limit)
            .map(|o| o.leaves() as i128 * o.price.unwrap_or(0) as i128 / self.lev(&o.symbol) as i128)
            .sum();
        (i128_to_money(pos_im), i128_to_money(ord_im))
    }

    fn unrealised(&self, ex: &Exchange) -> i64 {
        let mut u: i128 = 0;
        for (sym, p) in &self.positions {
            if p.size == 0 {
                continue;
            }
            let Some(r) = Self::rules(ex, sym) else { continue };
            let mark = Self::last_price(ex, &r) as i128;
            let value = p.size.unsigned_abs() as i128 * mark;
            u += if p.size > 0 { value - p.cost } else { p.cost - value };
        }
        i128_to_money(u)
    }

    // --------------------------------------------------------------------------- pushes

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

    fn push_changes(&mut self, ex: &Exchange, orders: &[u64], execs: usize, symbols: &[String], now_ms: i64) {
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

    // --------------------------------------------------------------------------- JSON

    fn order_json(&self, ex: &Exchange, o: &SimOrder) -> Value {
        let r = Self::rules(ex, &o.symbol);
        let px = |raw: Option<i64>| match (raw, r.as_ref()) {
            (Some(v), Some(r)) => Self::price_str(r, v),
            (Some(v), None) => Fixed::from_raw(v).to_string(),
            (None, _) => "0".to_string(),
        };
        let q = |raw: i64| r.as_ref().map_or_else(|| Fixed::from_raw(raw).to_string(), |r| Self::qty_str(r, raw));
        let leaves_value = i128_to_money(o.leaves() as i128 * o.price.unwrap_or(0) as i128);
        obj([
            ("category", json!("linear")),
            ("orderId", json!(o.order_id)),
            ("orderLinkId", json!(o.link)),
            ("blockTradeId", json!("")),
            ("symbol", json!(o.symbol)),
            ("price", json!(px(o.price))),
            ("qty", json!(q(o.qty))),
            ("side", json!(side_str(o.side))),
            ("isLeverage", json!("")),
            ("positionIdx", json!(0)),
            ("orderStatus", json!(o.status)),
            ("createType", json!("CreateByUser")),
            (
                "cancelType",
                json!(if o.status == "Cancelled" || o.status == "Deactivated" { "CancelByUser" } else { "UNKNOWN" }),
            ),
            ("rejectReason", json!(o.reject_reason)),
            ("avgPrice", json!(o.avg_price.map_or_else(String::new, |v| Fixed::from_raw(v).to_string()))),
            ("leavesQty", json!(q(o.leaves()))),
            ("leavesValue", json!(money(leaves_value))),
            ("cumExecQty", json!(q(o.cum_qty))),
            ("cumExecValue", json!(money(i128_to_money(o.cum_value)))),
            ("cumExecFee", json!(money(o.cum_fee))),
            ("timeInForce", json!(o.tif)),
            (
                "orderType",
                json!(match o.otype {
                    OType::Limit => "Limit",
                    OType::Market => "Market",
                }),
            ),
            ("stopOrderType", json!(o.stop_type)),
            ("orderIv", json!("")),
            ("triggerPrice", json!(o.trigger.map_or_else(|| "0".to_string(), |v| px(Some(v))))),
            ("takeProfit", json!("0")),
            ("stopLoss", json!("0")),
            ("tpTriggerBy", json!("")),
            ("slTriggerBy", json!("")),
            ("triggerDirection", json!(o.trigger_dir)),
            ("triggerBy", json!(if o.trigger.is_some() { "LastPrice" } else { "" })),
            ("lastPriceOnCreated", json!(px(Some(o.last_price_on_created)))),
            ("reduceOnly", json!(o.reduce_only)),
            ("closeOnTrigger", json!(false)),
            ("smpType", json!("None")),
            ("smpGroup", json!(0)),
            ("smpOrderId", json!("")),
            ("tpslMode", json!("")),
            ("tpLimitPrice", json!("")),
            ("slLimitPrice", json!("")),
            ("placeType", json!("")),
            ("createdTime", json!(o.created_ms.to_string())),
            ("updatedTime", json!(o.updated_ms.to_string())),
        ])
    }

    fn exec_json(&self, ex: &Exchange, e: &SimExec, ws: bool) -> Value {
        let r = Self::rules(ex, &e.symbol);
        let px = |raw: i64| r.as_ref().map_or_else(|| Fixed::from_raw(raw).to_string(), |r| Self::price_str(r, raw));
        let q = |raw: i64| r.as_ref().map_or_else(|| Fixed::from_raw(raw).to_string(), |r| Self::qty_str(r, raw));
        let mut v = obj([
            ("symbol", json!(e.symbol)),
            ("orderId", json!(e.order_id)),
            ("orderLinkId", json!(e.link)),
            ("side", json!(side_str(e.side))),
            ("orderPrice", json!(e.order_price.map_or_else(|| "0".to_string(), px))),
            ("orderQty", json!(q(e.order_qty))),
            ("leavesQty", json!(q(e.leaves))),
            ("createType", json!("CreateByUser")),
            (
                "orderType",
                json!(match e.order_type {
                    OType::Limit => "Limit",
                    OType::Market => "Market",
                }),
            ),
            ("stopOrderType", json!(e.stop_type)),
            ("execFee", json!(money(e.fee))),
            ("execId", json!(e.exec_id)),
            ("execPrice", json!(px(e.price))),
            ("execQty", json!(q(e.qty))),
            ("execPnl", json!(money(e.pnl))),
            ("execType", json!("Trade")),
            ("execValue", json!(money(e.value))),
            ("execTime", json!(e.time_ms.to_string())),
            ("isMaker", json!(e.is_maker)),
            ("feeRate", json!(Fixed::from_raw(e.fee_rate).to_string())),
            ("tradeIv", json!("")),
            ("markIv", json!("")),
            ("markPrice", json!(px(e.mark))),
            ("indexPrice", json!("")),
            ("underlyingPrice", json!("")),
            ("blockTradeId", json!("")),
            ("closedSize", json!(q(e.closed))),
            ("seq", json!(e.seq)),
            ("feeCurrency", json!("USDT")),
            ("extraFees", json!("")),
        ]);
        if ws {
            v["category"] = json!("linear");
            v["isLeverage"] = json!("0");
        }
        v
    }

    fn position_json(&self, ex: &Exchange, symbol: &str, ws: bool) -> Value {
        let p = self
            .positions
            .get(symbol)
            .cloned()
            .unwrap_or_else(|| Pos { leverage: self.cfg.default_leverage as i64, ..Pos::default() });
        let r = Self::rules(ex, symbol);
        let mark = r.as_ref().map_or(0, |r| Self::last_price(ex, r));
        let q = |raw: i64| r.as_ref().map_or_else(|| Fixed::from_raw(raw).to_string(), |r| Self::qty_str(r, raw));
        let px = |raw: i64| r.as_ref().map_or_else(|| Fixed::from_raw(raw).to_string(), |r| Self::price_str(r, raw));
        let abs = p.size.unsigned_abs() as i128;
        let avg = if abs > 0 { (p.cost / abs) as i64 } else { 0 };
        let value = i128_to_money(p.cost);
        let upnl = if p.size == 0 {
            0
        } else {
            let mv = abs * mark as i128;
            i128_to_money(if p.size > 0 { mv - p.cost } else { p.cost - mv })
        };
        let im = i128_to_money(p.cost / p.leverage.max(1) as i128);
        let side = match p.size.signum() {
            1 => "Buy",
            -1 => "Sell",
            _ => "",
        };
        let mut v = obj([
            ("positionIdx", json!(0)),
            ("riskId", json!(1)),
            ("riskLimitValue", json!("2000000")),
            ("symbol", json!(symbol)),
            ("side", json!(side)),
            ("size", json!(q(p.size.abs()))),
            ("positionValue", json!(money(value))),
            ("tradeMode", json!(0)),
            ("autoAddMargin", json!(0)),
            ("positionStatus", json!("Normal")),
            ("leverage", json!(p.leverage.to_string())),
            ("markPrice", json!(px(mark))),
            ("liqPrice", json!("")),
            ("bustPrice", json!("")),
            ("positionIM", json!(money(im))),
            ("positionMM", json!(money(im / 2))),
            ("positionBalance", json!(money(im))),
            ("tpslMode", json!("Full")),
            ("takeProfit", json!(p.take_profit.map_or_else(|| "0".to_string(), px))),
            ("stopLoss", json!(p.stop_loss.map_or_else(|| "0".to_string(), px))),
            ("trailingStop", json!("0")),
            ("unrealisedPnl", json!(money(upnl))),
            ("curRealisedPnl", json!(money(p.cur_realised))),
            ("cumRealisedPnl", json!(money(p.cum_realised))),
            ("adlRankIndicator", json!(if p.size == 0 { 0 } else { 2 })),
            ("isReduceOnly", json!(false)),
            ("mmrSysUpdatedTime", json!("")),
            ("leverageSysUpdatedTime", json!("")),
            ("sessionAvgPrice", json!("")),
            ("createdTime", json!(p.created_ms.to_string())),
            ("updatedTime", json!(p.updated_ms.to_string())),
            ("seq", json!(p.seq)),
        ]);
        let avg_s = if abs > 0 { Fixed::from_raw(avg).to_string() } else { "0".to_string() };
        if ws {
            v["category"] = json!("linear");
            v["entryPrice"] = json!(avg_s);
        } else {
            v["avgPrice"] = json!(avg_s);
        }
        v
    }

    /// A classic account's wallet, as Bybit sends it (`accountType` `CONTRACT`, every USD total
    /// `""`, the coin's own figures filled).
    fn classic_wallet_json(&self, ex: &Exchange) -> Value {
        let upnl = self.unrealised(ex);
        let (pos_im, ord_im) = self.margin_used();
        json!({
            "accountType": "CONTRACT",
            "accountIMRate": "", "accountMMRate": "", "accountLTV": "",
            "totalEquity": "", "totalWalletBalance": "", "totalMarginBalance": "",
            "totalAvailableBalance": "", "totalPerpUPL": "", "totalInitialMargin": "",
            "totalMaintenanceMargin": "",
            "coin": [{
                "coin": "USDT",
                "equity": money(self.wallet + upnl),
                "usdValue": "",
                "walletBalance": money(self.wallet),
                "borrowAmount": "",
                "availableToBorrow": "",
                "availableToWithdraw": money(self.wallet + upnl - pos_im - ord_im),
                "accruedInterest": "",
                "totalOrderIM": money(ord_im),
                "totalPositionIM": money(pos_im),
                "totalPositionMM": "",
                "unrealisedPnl": money(upnl),
                "cumRealisedPnl": money(self.cum_realised),
            }],
        })
    }

    fn wallet_json(&self, ex: &Exchange) -> Value {
        if self.classic {
            return self.classic_wallet_json(ex);
        }
        let upnl = self.unrealised(ex);
        let (pos_im, ord_im) = self.margin_used();
        let equity = self.wallet + upnl;
        let available = equity - pos_im - ord_im;
        let mm = pos_im / 2;
        let rate = |num: i64| if equity > 0 { format!("{:.4}", num as f64 / equity as f64) } else { "0".into() };
        json!({
            "accountType": "UNIFIED",
            "accountIMRate": rate(pos_im + ord_im),
            "accountMMRate": rate(mm),
            "accountLTV": "0",
            "totalEquity": money(equity),
            "totalWalletBalance": money(self.wallet),
            "totalMarginBalance": money(equity),
            "totalAvailableBalance": money(available),
            "totalPerpUPL": money(upnl),
            "totalInitialMargin": money(pos_im + ord_im),
            "totalMaintenanceMargin": money(mm),
            "coin": [{
                "coin": "USDT",
                "equity": money(equity),
                "usdValue": money(equity),
                "walletBalance": money(self.wallet),
                "free": "",
                "locked": "0",
                "spotHedgingQty": "0",
                "borrowAmount": "0",
                "availableToWithdraw": "",
                "availableToBorrow": "",
                "accruedInterest": "0",
                "totalOrderIM": money(ord_im),
                "totalPositionIM": money(pos_im),
                "totalPositionMM": money(mm),
                "unrealisedPnl": money(upnl),
                "cumRealisedPnl": money(self.cum_realised),
                "bonus": "0",
                "marginCollateral": true,
                "collateralSwitch": true,
            }],
        })
    }

    // --------------------------------------------------------------------------- queries

    /// `GET /v5/account/wallet-balance`.
    pub fn wallet_balance(&self, ex: &Exchange, q: &HashMap<String, String>) -> Outcome {
        match q.get("accountType").map(String::as_str) {
            Some("UNIFIED") => Ok(json!({"list": [self.wallet_json(ex)]})),
            _ => Err(err(10001, "accountType only support UNIFIED")),
        }
    }

    fn limit_cursor(q: &HashMap<String, String>, default: usize, max: usize) -> Result<(usize, usize), RestError> {
        let limit = match q.get("limit").map(String::as_str) {
            None | Some("") => default,
            Some(l) => match l.parse::<usize>() {
                Ok(n) if (1..=max).contains(&n) => n,
                _ => return Err(params(&format!("limit must be in [1, {max}]"))),
            },
        };
        // Our cursors read `N%3AN` ("N:N", Bybit-like); the position is the number before it.
        let start = match q.get("cursor").map(String::as_str) {
            None | Some("") => 0,
            Some(c) => c
                .split(['%', ':'])
                .next()
                .and_then(|n| n.parse::<usize>().ok())
                .ok_or_else(|| params("cursor invalid"))?,
        };
        Ok((limit, start))
    }

    /// One page and its `nextPageCursor`. Like Bybit's, the cursor is not empty on the last
    /// page: it points past the end, where the next request finds an empty list (and an empty
    /// cursor).
    fn paged(items: Vec<Value>, limit: usize, start: usize) -> (Vec<Value>, String) {
        let page: Vec<Value> = items.into_iter().skip(start).take(limit).collect();
        let next = if page.is_empty() { String::new() } else { format!("{0}%3A{0}", start + page.len()) };
        (page, next)
    }

    fn check_linear(q: &HashMap<String, String>) -> Result<(), RestError> {
        match q.get("category").map(String::as_str) {
            Some("linear") => Ok(()),
            _ => Err(err(10001, "Illegal category")),
        }
    }

    /// `GET /v5/position/list`.
    pub fn position_list(&self, ex: &Exchange, q: &HashMap<String, String>) -> Outcome {
        Self::check_linear(q)?;
        let symbol = q.get("symbol").filter(|s| !s.is_empty());
        let settle = q.get("settleCoin").filter(|s| !s.is_empty());
        let list: Vec<Value> = match (symbol, settle) {
            (Some(s), _) => {
                if Self::rules(ex, s).is_none() {
                    return Err(err(10001, "params error: symbol invalid"));
                }
                vec![self.position_json(ex, s, false)]
            }
            (None, Some(c)) if c == "USDT" => self.positions.keys().map(|s| self.position_json(ex, s, false)).collect(),
            (None, Some(_)) => Vec::new(),
            (None, None) => return Err(params("symbol or settleCoin is required")),
        };
        let (limit, start) = Self::limit_cursor(q, 20, 200)?;
        let (list, next) = Self::paged(list, limit, start);
        Ok(json!({"category": "linear", "list": list, "nextPageCursor": next}))
    }

    fn filter_orders<'a>(
        &'a self,
        q: &'a HashMap<String, String>,
    ) -> Result<impl Iterator<Item = &'a SimOrder> + 'a, RestError> {
        Self::check_linear(q)?;
        let symbol = q.get("symbol").filter(|s| !s.is_empty());
        let settle = q.get("settleCoin").filter(|s| !s.is_empty());
        let base = q.get("baseCoin").filter(|s| !s.is_empty());
        if symbol.is_none() && settle.is_none() && base.is_none() {
            return Err(params("symbol, baseCoin or settleCoin is required"));
        }
        let link = q.get("orderLinkId").filter(|s| !s.is_empty());
        let oid = q.get("orderId").filter(|s| !s.is_empty());
        Ok(self.orders.values().rev().filter(move |o| {
            symbol.is_none_or(|s| &o.symbol == s)
                && settle.is_none_or(|c| c == "USDT")
                && base.is_none_or(|b| o.symbol.strip_suffix("USDT") == Some(b.as_str()))
                && link.is_none_or(|l| &o.link == l)
                && oid.is_none_or(|i| &o.order_id == i)
        }))
    }

    /// `GET /v5/order/realtime`: open orders (`openOnly=0`) or the most recent closed ones
    /// (`openOnly=1`), newest first.
    pub fn order_realtime(&self, ex: &Exchange, q: &HashMap<String, String>) -> Outcome {
        let closed = match q.get("openOnly").map(String::as_str) {
            None | Some("") | Some("0") => false,
            Some("1") | Some("2") => true,
            Some(_) => return Err(params("openOnly invalid")),
        };
        let recent = self.cfg.recent_closed_orders;
        let mut n_closed = 0;
        let mut list = Vec::new();
        for o in self.filter_orders(q)? {
            if o.is_open() && !closed {
                list.push(self.order_json(ex, o));
            } else if !o.is_open() && closed && n_closed < recent {
                n_closed += 1;
                list.push(self.order_json(ex, o));
            }
        }
        let (limit, start) = Self::limit_cursor(q, 20, 50)?;
        let (list, next) = Self::paged(list, limit, start);
        Ok(json!({"category": "linear", "list": list, "nextPageCursor": next}))
    }

    /// `GET /v5/order/history`, newest first.
    pub fn order_history(&self, ex: &Exchange, q: &HashMap<String, String>) -> Outcome {
        let list: Vec<Value> = self.filter_orders(q)?.map(|o| self.order_json(ex, o)).collect();
        let (limit, start) = Self::limit_cursor(q, 20, 50)?;
        let (list, next) = Self::paged(list, limit, start);
        Ok(json!({"category": "linear", "list": list, "nextPageCursor": next}))
    }

    /// `GET /v5/execution/list`, newest first.
    pub fn execution_list(&self, ex: &Exchange, q: &HashMap<String, String>) -> Outcome {
        Self::check_linear(q)?;
        let num = |k: &str| -> Result<Option<i64>, RestError> {
            q.get(k)
                .filter(|s| !s.is_empty())
                .map(|s| s.parse::<i64>().map_err(|_| params(&format!("{k} invalid"))))
                .transpose()
        };
        let (start_t, end_t) = (num("startTime")?, num("endTime")?);
        let symbol = q.get("symbol").filter(|s| !s.is_empty());
        let link = q.get("orderLinkId").filter(|s| !s.is_empty());
        // Every simulated contract settles in USDT.
        let settle_ok = q.get("settleCoin").filter(|s| !s.is_empty()).is_none_or(|c| c == "USDT");
        let list: Vec<Value> = self
            .execs
            .iter()
            .rev()
            .filter(|e| {
                settle_ok
                    && symbol.is_none_or(|s| &e.symbol == s)
                    && link.is_none_or(|l| &e.link == l)
                    && start_t.is_none_or(|t| e.time_ms >= t)
                    && end_t.is_none_or(|t| e.time_ms <= t)
            })
            .map(|e| self.exec_json(ex, e, false))
            .collect();
        let (limit, start) = Self::limit_cursor(q, 50, 100)?;
        let (list, next) = Self::paged(list, limit, start);
        Ok(json!({"category": "linear", "list": list, "nextPageCursor": next}))
    }

    // --------------------------------------------------------------------------- orders

    /// A create refused by an injected [`PrivateFault::RejectCreates`].
    pub fn reject_create(&mut self, code: i64) -> Outcome {
        self.counters.create_requests += 1;
        self.counters.orders_rejected += 1;
        Err(err(code, ret_msg(code)))
    }

    /// `POST /v5/order/create`.
    pub fn create(&mut self, ex: &mut Exchange, b: &Value, now_ms: i64) -> Outcome {
        self.counters.create_requests += 1;
        let r = self.create_inner(ex, b, now_ms);
        if r.is_err() {
            self.counters.orders_rejected += 1;
        }
        r
    }

    fn create_inner(&mut self, ex: &mut Exchange, b: &Value, now_ms: i64) -> Outcome {
        if get_str(b, "category") != Some("linear") {
            return Err(err(10001, "Illegal category"));
        }
        let symbol = get_str(b, "symbol").unwrap_or("").to_string();
        let r = Self::rules(ex, &symbol).ok_or_else(|| err(10001, "params error: symbol invalid"))?;
        let side = get_str(b, "side").and_then(Side::from_bybit).ok_or_else(|| params("side invalid"))?;
        let otype = match get_str(b, "orderType") {
            Some("Limit") => OType::Limit,
            Some("Market") => OType::Market,
            _ => return Err(params("orderType invalid")),
        };
        let qty = get_dec(b, "qty")?.ok_or_else(|| params("qty is required"))?;
        if qty <= 0 || qty % r.step != 0 || qty > r.max_qty {
            return Err(err(10001, "Qty invalid: must be a positive multiple of qtyStep within the maximum"));
        }
        let price = match otype {
            OType::Limit => {
                let p = get_dec(b, "price")?.ok_or_else(|| params("price is required for limit orders"))?;
                if p <= 0 || p % r.tick != 0 {
                    return Err(err(10001, "Price invalid: must be a positive multiple of tickSize"));
                }
                Some(p)
            }
            OType::Market => None,
        };
        let trigger = get_dec(b, "triggerPrice")?.filter(|t| *t != 0);
        let trigger_dir = match (trigger, get_int(b, "triggerDirection")?) {
            (None, _) => 0u8,
            (Some(t), Some(d @ (1 | 2))) => {
                if t < 0 || t % r.tick != 0 {
                    return Err(params("triggerPrice invalid"));
                }
                let last = Self::last_price(ex, &r);
                let (tp, cur) = (Self::price_str(&r, t), Self::price_str(&r, last));
                if d == 1 && t <= last {
                    return Err(err(110092, format!("expect Rising, but trigger_price[{tp}] <= current[{cur}]")));
                }
                if d == 2 && t >= last {
                    return Err(err(110093, format!("expect Falling, but trigger_price[{tp}] >= current[{cur}]")));
                }
                d as u8
            }
            (Some(_), _) => return Err(params("triggerDirection must be 1 or 2 for a conditional order")),
        };
        let tif = match (otype, get_str(b, "timeInForce")) {
            (OType::Market, _) => "IOC",
            (OType::Limit, None | Some("GTC")) => "GTC",
            (OType::Limit, Some("IOC")) => "IOC",
            (OType::Limit, Some("FOK")) => "FOK",
            (OType::Limit, Some("PostOnly")) => "PostOnly",
            _ => return Err(params("timeInForce invalid")),
        };
        if get_int(b, "positionIdx")?.unwrap_or(0) != 0 {
            return Err(err(10001, "position idx not match position mode"));
        }
        let reduce_only = get_bool(b, "reduceOnly")?;
        let link = get_str(b, "orderLinkId").unwrap_or("").to_string();
        if link.len() > 36 || !link.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_') {
            return Err(params("orderLinkId invalid"));
        }
        if !link.is_empty() && self.by_link.contains_key(&link) {
            self.counters.duplicate_link_ids += 1;
            return Err(err(110072, "OrderLinkedID is duplicate"));
        }
        let pos = self.positions.get(&symbol).map_or(0, |p| p.size);
        let reduces = (side == Side::Buy && pos < 0) || (side == Side::Sell && pos > 0);
        if reduce_only && trigger.is_none() && !reduces {
            return Err(err(110017, "Reduce-only rule not satisfied"));
        }
        if !reduce_only && trigger.is_none() {
            // Initial margin of the part that opens or adds.
            let opening = if reduces { (qty - pos.abs()).max(0) } else { qty };
            let ref_px = match price {
                Some(p) => p,
                None => ex.symbols[r.idx]
                    .market
                    .as_ref()
                    .and_then(|m| m.book.best(side.opposite()))
                    .map_or(0, |(t, _)| t * r.tick),
            };
            let need = i128_to_money(opening as i128 * ref_px as i128 / self.lev(&symbol) as i128);
            let (pos_im, ord_im) = self.margin_used();
            let available = self.wallet + self.unrealised(ex).min(0) - pos_im - ord_im;
            if need > available {
                return Err(err(110007, "Available balance is insufficient"));
            }
        }
        let seq = self.next();
        let order = SimOrder {
            seq,
            order_id: self.new_id(),
            link: link.clone(),
            symbol: symbol.clone(),
            side,
            otype,
            price,
            qty,
            tif,
            trigger,
            trigger_dir,
            stop_type: if trigger.is_some() { "Stop" } else { "" },
            reduce_only,
            status: if trigger.is_some() { "Untriggered" } else { "New" },
            reject_reason: "EC_NoError",
            cum_qty: 0,
            cum_value: 0,
            cum_fee: 0,
            avg_price: None,
            created_ms: now_ms,
            updated_ms: now_ms,
            placed_step: ex.step,
            last_price_on_created: Self::last_price(ex, &r),
        };
        let ack = json!({"orderId": order.order_id, "orderLinkId": order.link});
        if !link.is_empty() {
            self.by_link.insert(link, seq);
        }
        self.orders.insert(seq, order);
        self.counters.orders_created += 1;
        let mut execs = 0;
        let mut touched = Vec::new();
        if trigger.is_none() {
            execs = self.execute_taker(ex, seq, &r, now_ms);
            if execs > 0 {
                touched.push(symbol.clone());
            }
        }
        self.prune();
        self.push_changes(ex, &[seq], execs, &touched, now_ms);
        Ok(ack)
    }

    /// Runs the taker part of order `seq` and settles its time in force. Returns the number of
    /// executions.
    fn execute_taker(&mut self, ex: &mut Exchange, seq: u64, r: &Rules, now_ms: i64) -> usize {
        let Some(o) = self.orders.get(&seq).cloned() else { return 0 };
        let Some(book) = ex.symbols[r.idx].market.as_mut().map(|m| &mut m.book) else { return 0 };
        let passive = o.side.opposite();
        let limit_ticks: Option<i64> = match o.otype {
            OType::Limit => o.price.map(|p| p / r.tick),
            OType::Market => book.best(passive).map(|(t, _)| match o.side {
                Side::Buy => t + (t * 5 + 99) / 100,
                Side::Sell => (t - t * 5 / 100).max(1),
            }),
        };
        let crosses = |t: i64| match (o.side, limit_ticks) {
            (_, None) => false,
            (Side::Buy, Some(l)) => t <= l,
            (Side::Sell, Some(l)) => t >= l,
        };
        if o.tif == "PostOnly" {
            if book.best(passive).is_some_and(|(t, _)| crosses(t)) {
                if let Some(ord) = self.orders.get_mut(&seq) {
                    ord.status = "Cancelled";
                    ord.reject_reason = "EC_PostOnlyWillTakeLiquidity";
                    ord.updated_ms = now_ms;
                }
            }
            return 0;
        }
        let mut want = o.qty - o.cum_qty;
        if o.reduce_only {
            let pos = self.positions.get(&o.symbol).map_or(0, |p| p.size);
            let reducible = match o.side {
                Side::Buy if pos < 0 => -pos,
                Side::Sell if pos > 0 => pos,
                _ => 0,
            };
            want = want.min(reducible);
        }
        let mut lots = want / r.step;
        let mut fills = Vec::new();
        while lots > 0 {
            let Some((t, q)) = book.best(passive) else { break };
            if !crosses(t) {
                break;
            }
            let f = q.min(lots);
            book.set(passive, t, q - f);
            fills.push((t, f));
            lots -= f;
        }
        let n = fills.len();
        for (t, f) in fills {
            self.fill(ex, seq, t * r.tick, f * r.step, false, now_ms);
        }
        if let Some(ord) = self.orders.get_mut(&seq) {
            let done = ord.cum_qty >= ord.qty;
            ord.status = if done {
                "Filled"
            } else if ord.otype == OType::Market || ord.tif == "IOC" || ord.tif == "FOK" {
                // FOK is treated like IOC.
                if ord.cum_qty > 0 {
                    "PartiallyFilledCanceled"
                } else {
                    "Cancelled"
                }
            } else if ord.cum_qty > 0 {
                "PartiallyFilled"
            } else {
                "New"
            };
            ord.updated_ms = now_ms;
        }
        n
    }

    /// One execution of order `seq` at `price` for `qty` (raw), settling position and wallet.
    fn fill(&mut self, ex: &Exchange, seq: u64, price: i64, qty: i64, maker: bool, now_ms: i64) {
        let Some(o) = self.orders.get(&seq).cloned() else { return };
        let rate = if maker { self.cfg.maker_fee_rate } else { self.cfg.taker_fee_rate };
        let f = fee(Qty::from_raw(qty), Price::from_raw(price), rate).raw();
        let notional = qty as i128 * price as i128;
        let default_lev = self.cfg.default_leverage as i64;
        let pos =
            self.positions.entry(o.symbol.clone()).or_insert_with(|| Pos { leverage: default_lev, ..Pos::default() });
        if pos.size == 0 {
            pos.created_ms = now_ms;
            pos.cur_realised = 0;
        }
        let signed = if o.side == Side::Buy { qty } else { -qty };
        let mut pnl16: i128 = 0;
        let mut closed = 0;
        if pos.size == 0 || pos.size.signum() == signed.signum() {
            pos.size += signed;
            pos.cost += notional;
        } else {
            let abs = pos.size.abs();
            let close = abs.min(qty);
            let cost_part = if close == abs { pos.cost } else { pos.cost * close as i128 / abs as i128 };
            let exit = close as i128 * price as i128;
            pnl16 = if pos.size > 0 { exit - cost_part } else { cost_part - exit };
            pos.cost -= cost_part;
            pos.size += if signed > 0 { close } else { -close };
            closed = close;
            let rest = qty - close;
            if rest > 0 {
                pos.size = if signed > 0 { rest } else { -rest };
                pos.cost = rest as i128 * price as i128;
                pos.created_ms = now_ms;
            }
        }
        let pnl = i128_to_money(pnl16);
        pos.cur_realised += pnl - f;
        pos.cum_realised += pnl - f;
        pos.updated_ms = now_ms;
        let pseq = self.next_seq + 1;
        pos.seq = pseq;
        self.next_seq = pseq;
        self.wallet += pnl - f;
        self.cum_realised += pnl - f;
        let (leaves, mark) = {
            let r = Self::rules(ex, &o.symbol);
            let mark = r.as_ref().map_or(price, |r| Self::last_price(ex, r));
            let ord = match self.orders.get_mut(&seq) {
                Some(x) => x,
                None => return,
            };
            ord.cum_qty += qty;
            ord.cum_value += notional;
            ord.cum_fee += f;
            ord.avg_price = Some((ord.cum_value / ord.cum_qty.max(1) as i128) as i64);
            ord.updated_ms = now_ms;
            ((ord.qty - ord.cum_qty).max(0), mark)
        };
        let exec = SimExec {
            exec_id: self.new_id(),
            order_id: o.order_id.clone(),
            link: o.link.clone(),
            symbol: o.symbol.clone(),
            side: o.side,
            price,
            qty,
            value: i128_to_money(notional),
            fee: f,
            fee_rate: rate.raw(),
            is_maker: maker,
            pnl,
            closed,
            order_type: o.otype,
            stop_type: o.stop_type,
            order_price: o.price,
            order_qty: o.qty,
            leaves,
            time_ms: now_ms,
            seq: pseq,
            mark,
        };
        self.execs.push_back(exec);
        while self.execs.len() > self.cfg.executions_kept.max(1) {
            self.execs.pop_front();
        }
        self.counters.executions += 1;
        // Conditional reduce-only orders outlive a flat position, as on Bybit; they are
        // deactivated when they trigger with nothing left to reduce.
    }

    /// Forgets the oldest closed orders beyond the history bound.
    fn prune(&mut self) {
        let keep = self.cfg.history_orders.max(1);
        let closed: Vec<u64> = self.orders.values().filter(|o| !o.is_open()).map(|o| o.seq).collect();
        if closed.len() > keep {
            for s in &closed[..closed.len() - keep] {
                if let Some(o) = self.orders.remove(s) {
                    self.by_link.remove(&o.link);
                }
            }
        }
    }

    fn find(&self, b: &Value) -> Result<u64, RestError> {
        if get_str(b, "category") != Some("linear") {
            return Err(err(10001, "Illegal category"));
        }
        let symbol = get_str(b, "symbol").ok_or_else(|| params("symbol is required"))?;
        let seq = match (
            get_str(b, "orderId").filter(|s| !s.is_empty()),
            get_str(b, "orderLinkId").filter(|s| !s.is_empty()),
        ) {
            (Some(id), _) => self.orders.values().find(|o| o.order_id == id).map(|o| o.seq),
            (None, Some(l)) => self.by_link.get(l).copied(),
            (None, None) => return Err(params("orderId or orderLinkId is required")),
        };
        match seq.and_then(|s| self.orders.get(&s)) {
            Some(o) if o.symbol == symbol && o.is_open() => Ok(o.seq),
            _ => Err(err(110001, "order not exists or too late to cancel")),
        }
    }

    /// `POST /v5/order/amend` (price, trigger price or quantity of an open order).
    pub fn amend(&mut self, ex: &mut Exchange, b: &Value, now_ms: i64) -> Outcome {
        let seq = self.find(b)?;
        let symbol = self.orders.get(&seq).map(|o| o.symbol.clone()).unwrap_or_default();
        let r = Self::rules(ex, &symbol).ok_or_else(|| err(10001, "params error: symbol invalid"))?;
        let qty = get_dec(b, "qty")?;
        let price = get_dec(b, "price")?;
        let trigger = get_dec(b, "triggerPrice")?;
        if qty.is_none() && price.is_none() && trigger.is_none() {
            return Err(err(10001, "order not modified"));
        }
        let o = self.orders.get(&seq).cloned().ok_or_else(|| err(110001, "order not exists"))?;
        if let Some(q) = qty {
            if q <= o.cum_qty || q % r.step != 0 || q > r.max_qty {
                return Err(err(10001, "Qty invalid"));
            }
        }
        if let Some(p) = price {
            if o.otype != OType::Limit || p <= 0 || p % r.tick != 0 {
                return Err(err(10001, "Price invalid"));
            }
        }
        if let Some(t) = trigger {
            if o.trigger.is_none() || t <= 0 || t % r.tick != 0 {
                return Err(err(10001, "triggerPrice invalid"));
            }
        }
        if let Some(ord) = self.orders.get_mut(&seq) {
            if let Some(q) = qty {
                ord.qty = q;
            }
            if let Some(p) = price {
                ord.price = Some(p);
            }
            if let Some(t) = trigger {
                ord.trigger = Some(t);
            }
            ord.updated_ms = now_ms;
            ord.placed_step = ex.step;
        }
        let ack = json!({"orderId": o.order_id, "orderLinkId": o.link});
        self.push_changes(ex, &[seq], 0, &[], now_ms);
        Ok(ack)
    }

    fn close_order(&mut self, seq: u64, now_ms: i64) {
        if let Some(o) = self.orders.get_mut(&seq) {
            o.status = if o.status == "Untriggered" {
                "Deactivated"
            } else if o.cum_qty > 0 {
                "PartiallyFilledCanceled"
            } else {
                "Cancelled"
            };
            o.updated_ms = now_ms;
        }
    }

    /// `POST /v5/order/cancel`.
    pub fn cancel(&mut self, ex: &mut Exchange, b: &Value, now_ms: i64) -> Outcome {
        let seq = self.find(b)?;
        self.close_order(seq, now_ms);
        let ack = self.orders.get(&seq).map(|o| json!({"orderId": o.order_id, "orderLinkId": o.link}));
        self.push_changes(ex, &[seq], 0, &[], now_ms);
        self.prune();
        Ok(ack.unwrap_or_else(|| json!({})))
    }

    /// `POST /v5/order/cancel-all` (a symbol, or `settleCoin=USDT`).
    pub fn cancel_all(&mut self, ex: &mut Exchange, b: &Value, now_ms: i64) -> Outcome {
        if get_str(b, "category") != Some("linear") {
            return Err(err(10001, "Illegal category"));
        }
        let symbol = get_str(b, "symbol").filter(|s| !s.is_empty()).map(str::to_string);
        let settle = get_str(b, "settleCoin").filter(|s| !s.is_empty());
        if symbol.is_none() && settle.is_none() && get_str(b, "baseCoin").is_none() {
            return Err(params("symbol, baseCoin or settleCoin is required"));
        }
        let seqs: Vec<u64> = self
            .orders
            .values()
            .filter(|o| o.is_open() && symbol.as_ref().is_none_or(|s| &o.symbol == s))
            .map(|o| o.seq)
            .collect();
        let mut list = Vec::new();
        for s in &seqs {
            self.close_order(*s, now_ms);
            if let Some(o) = self.orders.get(s) {
                list.push(json!({"orderId": o.order_id, "orderLinkId": o.link}));
            }
        }
        self.push_changes(ex, &seqs, 0, &[], now_ms);
        self.prune();
        Ok(json!({"list": list, "success": "1"}))
    }

    /// `POST /v5/position/set-leverage`.
    pub fn set_leverage(&mut self, ex: &mut Exchange, b: &Value, now_ms: i64) -> Outcome {
        if get_str(b, "category") != Some("linear") {
            return Err(err(10001, "Illegal category"));
        }
        let symbol = get_str(b, "symbol").unwrap_or("").to_string();
        let r = Self::rules(ex, &symbol).ok_or_else(|| err(10001, "params error: symbol invalid"))?;
        let buy = get_dec(b, "buyLeverage")?.ok_or_else(|| params("buyLeverage is required"))?;
        let sell = get_dec(b, "sellLeverage")?.ok_or_else(|| params("sellLeverage is required"))?;
        if buy != sell {
            return Err(err(10001, "buy leverage must equal sell leverage in one-way mode"));
        }
        if buy % SCALE != 0 || buy < SCALE || buy / SCALE > r.max_lev {
            return Err(err(10001, format!("leverage invalid: must be a whole number in [1, {}]", r.max_lev)));
        }
        let lev = buy / SCALE;
        let default_lev = self.cfg.default_leverage as i64;
        let pos =
            self.positions.entry(symbol.clone()).or_insert_with(|| Pos { leverage: default_lev, ..Pos::default() });
        if pos.leverage == lev {
            return Err(err(110043, "Set leverage not modified"));
        }
        pos.leverage = lev;
        pos.updated_ms = now_ms;
        self.push_changes(ex, &[], 0, &[symbol], now_ms);
        Ok(json!({}))
    }

    /// `POST /v5/position/trading-stop` (full-position TP/SL; `"0"` cancels).
    pub fn trading_stop(&mut self, ex: &mut Exchange, b: &Value, now_ms: i64) -> Outcome {
        if get_str(b, "category") != Some("linear") {
            return Err(err(10001, "Illegal category"));
        }
        let symbol = get_str(b, "symbol").unwrap_or("").to_string();
        let r = Self::rules(ex, &symbol).ok_or_else(|| err(10001, "params error: symbol invalid"))?;
        if get_int(b, "positionIdx")?.unwrap_or(0) != 0 {
            return Err(err(10001, "position idx not match position mode"));
        }
        let tp = get_dec(b, "takeProfit")?;
        let sl = get_dec(b, "stopLoss")?;
        for v in [tp, sl].into_iter().flatten() {
            if v < 0 || v % r.tick != 0 {
                return Err(params("takeProfit / stopLoss invalid"));
            }
        }
        let size = self.positions.get(&symbol).map_or(0, |p| p.size);
        if size == 0 {
            return Err(err(10001, "can not set tp/sl/ts for zero position"));
        }
        let last = Self::last_price(ex, &r);
        let long = size > 0;
        if let Some(t) = tp.filter(|t| *t > 0) {
            if (long && t <= last) || (!long && t >= last) {
                return Err(err(10001, "TakeProfit must be beyond the last price"));
            }
        }
        if let Some(s) = sl.filter(|s| *s > 0) {
            if (long && s >= last) || (!long && s <= last) {
                return Err(err(10001, "StopLoss must be before the last price"));
            }
        }
        if let Some(p) = self.positions.get_mut(&symbol) {
            if let Some(t) = tp {
                p.take_profit = (t > 0).then_some(t);
            }
            if let Some(s) = sl {
                p.stop_loss = (s > 0).then_some(s);
            }
            p.updated_ms = now_ms;
        }
        self.push_changes(ex, &[], 0, &[symbol], now_ms);
        Ok(json!({}))
    }

    // --------------------------------------------------------------------------- market

    /// After a market step: resting limits the market reached fill as maker, conditional
    /// orders whose trigger the last price crossed execute at market, position TP/SL fire.
    pub fn on_market(&mut self, ex: &mut Exchange, now_ms: i64) {
        if self.orders.values().all(|o| !o.is_open())
            && self.positions.values().all(|p| p.take_profit.is_none() && p.stop_loss.is_none())
        {
            return;
        }
        let step = ex.step;
        let open: Vec<u64> = self.orders.values().filter(|o| o.is_open()).map(|o| o.seq).collect();
        let mut touched_orders = Vec::new();
        let mut touched_syms: Vec<String> = Vec::new();
        let mut execs = 0;
        for seq in open {
            let Some(o) = self.orders.get(&seq).cloned() else { continue };
            let Some(r) = Self::rules(ex, &o.symbol) else { continue };
            let last = Self::last_price(ex, &r);
            let Some((best_bid, best_ask)) =
                ex.symbols[r.idx].market.as_ref().map(|m| (m.book.best_bid(), m.book.best_ask()))
            else {
                continue;
            };
            if let Some(t) = o.trigger.filter(|_| o.status == "Untriggered") {
                let hit = (o.trigger_dir == 1 && last >= t) || (o.trigger_dir == 2 && last <= t);
                if !hit {
                    continue;
                }
                let pos = self.positions.get(&o.symbol).map_or(0, |p| p.size);
                let reduces = (o.side == Side::Buy && pos < 0) || (o.side == Side::Sell && pos > 0);
                if let Some(ord) = self.orders.get_mut(&seq) {
                    ord.updated_ms = now_ms;
                    if o.reduce_only && !reduces {
                        ord.status = "Deactivated";
                        touched_orders.push(seq);
                        continue;
                    }
                    ord.status = "Triggered";
                }
                let n = self.execute_taker(ex, seq, &r, now_ms);
                execs += n;
                touched_orders.push(seq);
                if n > 0 {
                    touched_syms.push(o.symbol.clone());
                }
                continue;
            }
            if o.otype != OType::Limit || step <= o.placed_step {
                continue;
            }
            let Some(p) = o.price else { continue };
            let reached = match o.side {
                Side::Buy => best_ask.is_some_and(|(t, _)| t * r.tick <= p) || last < p,
                Side::Sell => best_bid.is_some_and(|(t, _)| t * r.tick >= p) || last > p,
            };
            if !reached {
                continue;
            }
            let mut q = o.qty - o.cum_qty;
            if o.reduce_only {
                let pos = self.positions.get(&o.symbol).map_or(0, |p| p.size);
                q = q.min(match o.side {
                    Side::Buy if pos < 0 => -pos,
                    Side::Sell if pos > 0 => pos,
                    _ => 0,
                });
            }
            if q > 0 {
                self.fill(ex, seq, p, q, true, now_ms);
                execs += 1;
                touched_syms.push(o.symbol.clone());
            }
            if let Some(ord) = self.orders.get_mut(&seq) {
                ord.status = if ord.cum_qty >= ord.qty {
                    "Filled"
                } else if q == 0 {
                    "Cancelled"
                } else {
                    "PartiallyFilledCanceled"
                };
                ord.updated_ms = now_ms;
            }
            touched_orders.push(seq);
        }
        execs += self.position_stops(ex, now_ms, &mut touched_orders, &mut touched_syms);
        if touched_orders.is_empty() && touched_syms.is_empty() {
            return;
        }
        touched_syms.sort();
        touched_syms.dedup();
        self.prune();
        self.push_changes(ex, &touched_orders, execs, &touched_syms, now_ms);
    }

    fn position_stops(
        &mut self,
        ex: &mut Exchange,
        now_ms: i64,
        orders: &mut Vec<u64>,
        syms: &mut Vec<String>,
    ) -> usize {
        let armed: Vec<(String, i64, Option<i64>, Option<i64>)> = self
            .positions
            .iter()
            .filter(|(_, p)| p.size != 0 && (p.take_profit.is_some() || p.stop_loss.is_some()))
            .map(|(s, p)| (s.clone(), p.size, p.take_profit, p.stop_loss))
            .collect();
        let mut execs = 0;
        for (sym, size, tp, sl) in armed {
            let Some(r) = Self::rules(ex, &sym) else { continue };
            let last = Self::last_price(ex, &r);
            let long = size > 0;
            let tp_hit = tp.is_some_and(|t| if long { last >= t } else { last <= t });
            let sl_hit = sl.is_some_and(|s| if long { last <= s } else { last >= s });
            if !tp_hit && !sl_hit {
                continue;
            }
            let seq = self.next();
            let order = SimOrder {
                seq,
                order_id: self.new_id(),
                link: String::new(),
                symbol: sym.clone(),
                side: if long { Side::Sell } else { Side::Buy },
                otype: OType::Market,
                price: None,
                qty: size.abs(),
                tif: "IOC",
                trigger: if sl_hit { sl } else { tp },
                trigger_dir: if long == sl_hit { 2 } else { 1 },
                stop_type: if sl_hit { "StopLoss" } else { "TakeProfit" },
                reduce_only: true,
                status: "Triggered",
                reject_reason: "EC_NoError",
                cum_qty: 0,
                cum_value: 0,
                cum_fee: 0,
                avg_price: None,
                created_ms: now_ms,
                updated_ms: now_ms,
                placed_step: ex.step,
                last_price_on_created: last,
            };
            self.orders.insert(seq, order);
            execs += self.execute_taker(ex, seq, &r, now_ms);
            if let Some(p) = self.positions.get_mut(&sym) {
                if p.size == 0 {
                    p.take_profit = None;
                    p.stop_loss = None;
                }
            }
            orders.push(seq);
            syms.push(sym);
        }
        execs
    }

    // --------------------------------------------------------------------------- views

    /// Wallet balance.
    pub fn wallet(&self) -> Money {
        Money::from_raw(self.wallet)
    }

    /// Position of a symbol (`None` when flat).
    pub fn position(&self, symbol: &str) -> Option<(Side, Qty)> {
        let p = self.positions.get(symbol)?;
        match p.size.signum() {
            1 => Some((Side::Buy, Qty::from_raw(p.size))),
            -1 => Some((Side::Sell, Qty::from_raw(-p.size))),
            _ => None,
        }
    }

    /// Every order the simulator still remembers, oldest first.
    pub fn order_views(&self) -> Vec<SimOrderView> {
        self.orders
            .values()
            .map(|o| SimOrderView {
                order_id: o.order_id.clone(),
                order_link_id: o.link.clone(),
                symbol: o.symbol.clone(),
                side: o.side,
                status: o.status.to_string(),
                qty: Qty::from_raw(o.qty),
                cum_exec_qty: Qty::from_raw(o.cum_qty),
            })
            .collect()
    }

    /// Every execution kept, oldest first.
    pub fn exec_views(&self) -> Vec<SimExecutionView> {
        self.execs
            .iter()
            .map(|e| SimExecutionView {
                exec_id: e.exec_id.clone(),
                order_link_id: e.link.clone(),
                symbol: e.symbol.clone(),
                side: e.side,
                price: Price::from_raw(e.price),
                qty: Qty::from_raw(e.qty),
                fee: Money::from_raw(e.fee),
                pnl: Money::from_raw(e.pnl),
                is_maker: e.is_maker,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counted_faults_count_down() {
        let mut s = PrivateState::new(PrivateConfig::default(), 1);
        s.apply_fault(&PrivateFault::CreateAcceptedThenHttp { status: 502, count: 2 });
        s.apply_fault(&PrivateFault::RejectCreates { ret_code: 110007, count: 1 });
        assert_eq!(s.take_create_fault(), Some(CreateFault::Reject(110007)));
        assert_eq!(s.take_create_fault(), Some(CreateFault::ThenHttp(502)));
        assert_eq!(s.take_create_fault(), Some(CreateFault::ThenHttp(502)));
        assert_eq!(s.take_create_fault(), None);
        assert_eq!(s.counters.faults_served, 3);
    }

    #[test]
    fn rate_limit_window() {
        let mut cfg = PrivateConfig::default();
        cfg.rate_limits.set(EndpointGroup::Create, 3);
        let mut s = PrivateState::new(cfg, 1);
        for left in [2, 1, 0] {
            assert_eq!(s.rate_limit("k", EndpointGroup::Create, 1_000).unwrap().remaining, left);
        }
        let e = s.rate_limit("k", EndpointGroup::Create, 1_000).unwrap_err();
        assert_eq!((e.remaining, e.limit), (0, 3));
        assert!(e.reset_ms > 1_000 && e.reset_ms <= 2_000);
        // Other keys and groups have their own windows.
        assert!(s.rate_limit("other", EndpointGroup::Create, 1_000).is_ok());
        assert!(s.rate_limit("k", EndpointGroup::Position, 1_000).is_ok());
        assert_eq!(s.counters.rate_limited, 1);
    }
}

// ---------------------------------------------------------------------------------------------
// Handle
// ---------------------------------------------------------------------------------------------

/// Locks the private state (a poisoned lock is still usable: the state is plain data). Lock
/// order: the exchange first, then this.
pub(crate) fn lock_private(sh: &super::Shared) -> std::sync::MutexGuard<'_, PrivateState> {
    sh.private.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs the private side after a market step.
pub(crate) fn on_step(sh: &super::Shared) {
    let mut ex = sh.lock();
    let now = ex.now_ms();
    lock_private(sh).on_market(&mut ex, now);
}

/// Control and introspection of the simulator's private surface (see
/// [`super::SimHandle::private`]). Cheap to clone.
#[derive(Clone)]
pub struct SimPrivate {
    pub(crate) shared: std::sync::Arc<super::Shared>,
    pub(crate) addr: std::net::SocketAddr,
}

impl std::fmt::Debug for SimPrivate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimPrivate").field("addr", &self.addr).finish()
    }
}

impl SimPrivate {
    fn state(&self) -> std::sync::MutexGuard<'_, PrivateState> {
        lock_private(&self.shared)
    }

    /// Private WebSocket URL, e.g. `ws://127.0.0.1:40123/v5/private`.
    pub fn ws_private_url(&self) -> String {
        format!("ws://{}/v5/private", self.addr)
    }

    /// Replaces the account configuration and resets the account (orders, positions, wallet,
    /// executions, counters); open connections stay.
    pub fn configure(&self, cfg: PrivateConfig) {
        let seed = self.shared.lock().cfg.seed;
        self.state().reset(cfg, seed);
    }

    /// Accepts one more API key (or replaces the secret of an existing one).
    pub fn add_api_key(&self, key: &str, secret: &str) {
        self.state().add_key(key, secret);
    }

    /// Applies a fault now.
    pub fn inject(&self, fault: PrivateFault) {
        self.state().apply_fault(&fault);
    }

    /// [`PrivateFault::DropConnections`].
    pub fn drop_connections(&self) {
        self.inject(PrivateFault::DropConnections);
    }

    /// [`PrivateFault::SuppressPushes`].
    pub fn suppress_pushes(&self, on: bool) {
        self.inject(PrivateFault::SuppressPushes { on });
    }

    /// Counter snapshot.
    pub fn counters(&self) -> PrivateCounters {
        self.state().counters
    }

    /// USDT wallet balance.
    pub fn wallet_balance(&self) -> Money {
        self.state().wallet()
    }

    /// Position of a symbol (`None` when flat).
    pub fn position(&self, symbol: &str) -> Option<(Side, Qty)> {
        self.state().position(symbol)
    }

    /// Orders the simulator remembers, oldest first.
    pub fn orders(&self) -> Vec<SimOrderView> {
        self.state().order_views()
    }

    /// Executions, oldest first.
    pub fn executions(&self) -> Vec<SimExecutionView> {
        self.state().exec_views()
    }

    /// Private WebSocket connections open now.
    pub fn connections(&self) -> usize {
        self.state().conns.len()
    }

    /// Private WebSocket connections open and authenticated now.
    pub fn authenticated_connections(&self) -> usize {
        self.state().conns.values().filter(|c| c.authed).count()
    }

    /// Makes the account a classic (non-unified) one (`on`) or a unified one again: wallets
    /// (REST and WS) then come in the `CONTRACT` shape with empty USD totals.
    pub fn set_classic_account(&self, on: bool) {
        self.state().classic = on;
    }
}
