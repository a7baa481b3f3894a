//! The write endpoints of the private REST API: order create / amend / cancel / cancel-all and
//! position set-leverage / trading-stop, with Bybit's validation and error codes. The taker part
//! of a new order is executed by `matching`.

use super::{
    err, get_bool, get_dec, get_int, get_str, i128_to_money, params, ret_msg, Exchange, OType, Outcome, Pos,
    PrivateState, SimOrder,
};
use crate::exchange::RestError;
use scalper_core::domain::{Side, SCALE};
use serde_json::{json, Value};

impl PrivateState {
    /// A create refused by an injected [`super::PrivateFault::RejectCreates`].
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
}
