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
//!
//! Layout: this module holds the account state ([`PrivateState`]) with its public and internal
//! types and the small helpers every part shares; the behaviour is split by responsibility:
//! `orders` (the order and position endpoints), `matching` (fills against the books, resting
//! and conditional orders, TP/SL), `queries` (the read endpoints), `render` (Bybit's JSON shapes),
//! `push` (the private WebSocket topics), `faults` and `limits` (injected faults, rate limits)
//! and `handle` ([`SimPrivate`], the control surface).

mod faults;
mod handle;
mod limits;
mod matching;
mod orders;
mod push;
mod queries;
mod render;

pub(crate) use faults::CreateFault;
use faults::Faults;
pub use faults::PrivateFault;
pub use handle::SimPrivate;
pub(crate) use limits::LimitHeaders;
use limits::Window;

use super::exchange::{Exchange, RestError};
use super::rng::{mix_seed, uuid_like};
use super::wire::Dec;
use rand::rngs::SmallRng;
use rand::SeedableRng;
use scalper_bybit::bybit_private::limiter::{EndpointGroup, RateLimits};
use scalper_core::domain::{Fixed, Price, Qty, Side, SCALE};
use scalper_core::risk::money::{Money, Rate};
use serde::{Deserialize, Serialize};
use serde_json::Value;
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
    pub maker_fee_rate: Rate,
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
    pub orders_created: u64,
    /// Creates rejected (validation, balance, reduce-only, duplicate, injected).
    pub orders_rejected: u64,
    /// Creates rejected for a duplicate `orderLinkId`.
    pub duplicate_link_ids: u64,
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
    pub symbol: String,
    pub side: Side,
    /// Bybit status.
    pub status: String,
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
    pub symbol: String,
    pub side: Side,
    pub price: Price,
    pub qty: Qty,
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
