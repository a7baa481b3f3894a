//! The read endpoints of the private REST API (wallet balance, positions, open and past orders,
//! executions) with their filters and Bybit-like cursor pagination.

use super::{err, params, Exchange, Outcome, PrivateState, SimOrder};
use crate::exchange::RestError;
use serde_json::{json, Value};
use std::collections::HashMap;

impl PrivateState {
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
}
