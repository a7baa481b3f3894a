//! Matching of the account's orders against the simulator's own books: the taker part of an
//! order (with time in force and the market-order price band), fills that settle position and
//! wallet with exact money, and, after each market step, resting limits, conditional orders and
//! position TP/SL. The rules are the core's shared fill model ([`matching`]); what is the
//! exchange's own here is the book it owns (takers consume its levels), the market-order price
//! band and Bybit's order statuses.

use super::{i128_to_money, Exchange, OType, Pos, PrivateState, Rules, SimExec, SimOrder};
use scalper_core::domain::{Price, Qty, Side};
use scalper_core::execution::matching::{self, TriggerDirection};
use scalper_core::risk::money::fee;

impl PrivateState {
    /// Runs the taker part of order `seq` and settles its time in force. Returns the number of
    /// executions.
    pub(super) fn execute_taker(&mut self, ex: &mut Exchange, seq: u64, r: &Rules, now_ms: i64) -> usize {
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
        let px = |ticks: i64| Price::from_raw(ticks * r.tick);
        let Some(limit) = limit_ticks.map(px) else { return 0 };
        if o.tif == "PostOnly" {
            if matching::crosses(o.side, limit, book.best(passive).map(|(t, _)| px(t))) {
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
            want = want.min(matching::reducible(pos, o.side).raw());
        }
        let want = Qty::from_raw(want / r.step * r.step);
        let levels = book.side(passive).iter().map(|&(t, q)| (px(t), Qty::from_raw(q * r.step)));
        let (takes, _) = matching::walk(o.side, levels, Some(limit), None, want);
        // The exchange owns its book: what a taker takes is gone.
        for take in &takes {
            let t = take.price.raw() / r.tick;
            book.set(passive, t, book.get(passive, t) - take.qty.raw() / r.step);
        }
        let n = takes.len();
        for take in takes {
            self.fill(ex, seq, take.price.raw(), take.qty.raw(), false, now_ms);
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
    pub(super) fn prune(&mut self) {
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
                let dir = if o.trigger_dir == 1 { TriggerDirection::RisesTo } else { TriggerDirection::FallsTo };
                if !dir.hit(Price::from_raw(last), Price::from_raw(t)) {
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
            // Reached when the opposite touch crosses the limit (an order arrived at or through
            // it) or the last trade printed through it.
            let opposite = match o.side {
                Side::Buy => best_ask,
                Side::Sell => best_bid,
            };
            let limit = Price::from_raw(p);
            let reached = matching::crosses(o.side, limit, opposite.map(|(t, _)| Price::from_raw(t * r.tick)))
                || matching::trades_through(o.side, limit, Price::from_raw(last));
            if !reached {
                continue;
            }
            let mut q = o.qty - o.cum_qty;
            if o.reduce_only {
                let pos = self.positions.get(&o.symbol).map_or(0, |p| p.size);
                q = q.min(matching::reducible(pos, o.side).raw());
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
            let close = if long { Side::Sell } else { Side::Buy };
            let last_px = Price::from_raw(last);
            let tp_hit = tp.is_some_and(|t| TriggerDirection::of_take_profit(close).hit(last_px, Price::from_raw(t)));
            let sl_hit = sl.is_some_and(|s| TriggerDirection::of_stop(close).hit(last_px, Price::from_raw(s)));
            if !tp_hit && !sl_hit {
                continue;
            }
            let seq = self.next();
            let order = SimOrder {
                seq,
                order_id: self.new_id(),
                link: String::new(),
                symbol: sym.clone(),
                side: close,
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
}
