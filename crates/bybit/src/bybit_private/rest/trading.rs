//! State-changing endpoints of [`PrivateRest`]: order creation (exactly once, see the
//! parent module's docs), amend, cancel, cancel-all, leverage, trading stop, and [`Intent`]
//! submission. Kept apart because each has its own rule for what a failure means.

use super::{
    create_is_ambiguous, proven_unprocessed, CancelOutcome, IntentResult, Method, PlaceOutcome, Placed, PrivateRest,
};
use crate::bybit_private::limiter::EndpointGroup;
use crate::bybit_private::messages::{
    AmendOrderBody, CancelAllBody, CancelAllResult, CancelOrderBody, CreateOrderBody, OrderAck, SetLeverageBody,
    TradingStopBody, VenueOrder, CODE_DUPLICATE_LINK_ID, CODE_LEVERAGE_NOT_MODIFIED, CODE_ORDER_FINISHED,
    CODE_ORDER_NOT_FOUND,
};
use crate::bybit_private::{PrivateError, PrivateStats};
use crate::bybit_public::BybitError;
use scalper_core::domain::{Fixed, Price, Qty, Side, Symbol, TimeMs};
use scalper_core::execution::order::{Intent, OrderKind, OrderRequest};
use std::time::Duration;

impl PrivateRest {
    /// Places an order (`/v5/order/create`) exactly once; see the [`rest`](super) module docs for how
    /// ambiguous failures and duplicate `orderLinkId`s are resolved.
    pub async fn create_order(&self, req: &OrderRequest) -> Result<Placed, PrivateError> {
        let body = CreateOrderBody::from_request(req).map_err(PrivateError::Invalid)?;
        let json = serde_json::to_string(&body).map_err(|e| PrivateError::Invalid(e.to_string()))?;
        self.ensure_synced().await?;
        let path = "/v5/order/create";
        let group = EndpointGroup::Create;
        let mut sends = 0u32;
        let mut attempt = 0u32;
        loop {
            sends += 1;
            PrivateStats::inc(&self.stats.creates_sent);
            let (ts, r) = self.attempt::<OrderAck>(&Method::Post, path, &json, group).await;
            let f = match r {
                Ok(ack) => {
                    return Ok(Placed {
                        order_id: ack.order_id,
                        order_link_id: ack.order_link_id,
                        outcome: PlaceOutcome::Accepted,
                        order: None,
                        sends,
                    })
                }
                Err(f) => f,
            };
            if let BybitError::Api { code: CODE_DUPLICATE_LINK_ID, .. } = f.err {
                PrivateStats::inc(&self.stats.creates_duplicate);
                let found = self.lookup_with_retries(req).await?;
                return match found {
                    Some(o) => Ok(Placed {
                        order_id: o.order_id.clone(),
                        order_link_id: o.order_link_id.clone(),
                        outcome: PlaceOutcome::Duplicate,
                        order: Some(o),
                        sends,
                    }),
                    None => Err(f.err.into()),
                };
            }
            if create_is_ambiguous(&f) {
                PrivateStats::inc(&self.stats.creates_ambiguous);
                tracing::warn!(order_link_id = %req.client_id, error = %f.err, "order create failed ambiguously; resolving by orderLinkId");
                match self.resolve_create(req, ts, &f.err).await? {
                    Some(o) => {
                        PrivateStats::inc(&self.stats.creates_recovered);
                        return Ok(Placed {
                            order_id: o.order_id.clone(),
                            order_link_id: o.order_link_id.clone(),
                            outcome: PlaceOutcome::Recovered,
                            order: Some(o),
                            sends,
                        });
                    }
                    None => {
                        PrivateStats::inc(&self.stats.creates_resent);
                        tracing::info!(order_link_id = %req.client_id, "order provably absent; sending it again");
                        attempt += 1;
                        if attempt >= self.cfg.max_attempts.max(1) {
                            return Err(f.err.into());
                        }
                        continue;
                    }
                }
            }
            if proven_unprocessed(&f) {
                if !self.after_failure(path, group, &f, attempt).await {
                    return Err(f.err.into());
                }
                attempt += 1;
                continue;
            }
            PrivateStats::inc(&self.stats.rest_errors);
            return Err(f.err.into());
        }
    }

    async fn lookup_with_retries(&self, req: &OrderRequest) -> Result<Option<VenueOrder>, PrivateError> {
        let mut last = None;
        for attempt in 0..self.cfg.resolve_attempts.max(1) {
            match self.order_by_link_id(&req.symbol, &req.client_id).await {
                Ok(v) => return Ok(v),
                Err(e) => {
                    last = Some(e);
                    self.backoff(attempt).await;
                }
            }
        }
        Err(last.unwrap_or_else(|| PrivateError::Invalid("no look-up attempted".into())))
    }

    /// Finds out whether an ambiguously failed create exists. `Some` = it does; `None` = it
    /// provably does not (its receive window has closed and no look-up finds it).
    async fn resolve_create(
        &self,
        req: &OrderRequest,
        sent_ts: TimeMs,
        cause: &BybitError,
    ) -> Result<Option<VenueOrder>, PrivateError> {
        if let Ok(Some(o)) = self.order_by_link_id(&req.symbol, &req.client_id).await {
            return Ok(Some(o));
        }
        let closes_at = sent_ts + self.cfg.recv_window_ms as i64 + self.cfg.resolve_margin.as_millis() as i64;
        let wait = closes_at - self.server_now_ms();
        if wait > 0 {
            tokio::time::sleep(Duration::from_millis(wait as u64)).await;
        }
        let mut last_err = cause.to_string();
        for attempt in 0..self.cfg.resolve_attempts.max(1) {
            match self.order_by_link_id(&req.symbol, &req.client_id).await {
                Ok(found) => return Ok(found),
                Err(e) => {
                    last_err = e.to_string();
                    self.backoff(attempt).await;
                }
            }
        }
        Err(PrivateError::Unresolved { order_link_id: req.client_id.clone(), last_error: last_err })
    }

    /// Amends a working order by `orderLinkId` (`/v5/order/amend`).
    pub async fn amend_order(
        &self,
        symbol: &Symbol,
        link_id: &str,
        price: Option<Price>,
        trigger: Option<Price>,
        qty: Option<Qty>,
    ) -> Result<OrderAck, PrivateError> {
        let body = AmendOrderBody {
            category: "linear",
            symbol: symbol.as_str().to_string(),
            order_link_id: link_id.to_string(),
            qty: qty.map(|q| q.to_string()),
            price: price.map(|p| p.to_string()),
            trigger_price: trigger.map(|p| p.to_string()),
        };
        Ok(self.post("/v5/order/amend", &body).await?)
    }

    /// Cancels an order by `orderLinkId` (`/v5/order/cancel`). An order the venue no longer
    /// has open is [`CancelOutcome::NotOpen`], not an error.
    pub async fn cancel_order(&self, symbol: &Symbol, link_id: &str) -> Result<CancelOutcome, PrivateError> {
        let body = CancelOrderBody {
            category: "linear",
            symbol: symbol.as_str().to_string(),
            order_link_id: link_id.to_string(),
        };
        match self.post::<OrderAck, _>("/v5/order/cancel", &body).await {
            Ok(ack) => Ok(CancelOutcome::Cancelled(ack)),
            Err(BybitError::Api { code, .. }) if code == CODE_ORDER_NOT_FOUND || code == CODE_ORDER_FINISHED => {
                Ok(CancelOutcome::NotOpen { code })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Cancels every open order of `symbol`, or of every USDT contract (`/v5/order/cancel-all`).
    pub async fn cancel_all(&self, symbol: Option<&Symbol>) -> Result<Vec<OrderAck>, PrivateError> {
        let body = CancelAllBody {
            category: "linear",
            symbol: symbol.map(|s| s.as_str().to_string()),
            settle_coin: symbol.is_none().then_some("USDT"),
        };
        let r: CancelAllResult = self.post("/v5/order/cancel-all", &body).await?;
        Ok(r.list)
    }

    /// Sets the leverage of a symbol (both sides). `Ok(false)` when it already had it (110043).
    pub async fn set_leverage(&self, symbol: &Symbol, leverage: Fixed) -> Result<bool, PrivateError> {
        let l = leverage.to_string();
        let body = SetLeverageBody {
            category: "linear",
            symbol: symbol.as_str().to_string(),
            buy_leverage: l.clone(),
            sell_leverage: l,
        };
        match self.post::<serde_json::Value, _>("/v5/position/set-leverage", &body).await {
            Ok(_) => Ok(true),
            Err(BybitError::Api { code: CODE_LEVERAGE_NOT_MODIFIED, .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Sets (or with `Price::ZERO` cancels) the full-position take profit and stop loss,
    /// triggered by the last price (`/v5/position/trading-stop`).
    pub async fn set_trading_stop(
        &self,
        symbol: &Symbol,
        take_profit: Option<Price>,
        stop_loss: Option<Price>,
    ) -> Result<(), PrivateError> {
        if take_profit.is_none() && stop_loss.is_none() {
            return Err(PrivateError::Invalid("trading-stop needs a take profit or a stop loss".into()));
        }
        let body = TradingStopBody {
            category: "linear",
            symbol: symbol.as_str().to_string(),
            tpsl_mode: "Full",
            position_idx: 0,
            take_profit: take_profit.map(|p| p.to_string()),
            stop_loss: stop_loss.map(|p| p.to_string()),
            tp_trigger_by: take_profit.map(|_| "LastPrice"),
            sl_trigger_by: stop_loss.map(|_| "LastPrice"),
        };
        self.post::<serde_json::Value, _>("/v5/position/trading-stop", &body).await?;
        Ok(())
    }

    /// Carries out one core [`Intent`]: `Place` and `Close` (a reduce-only market order on the
    /// opposite side) through [`PrivateRest::create_order`], `Cancel`, `Amend`.
    pub async fn submit(&self, intent: &Intent) -> Result<IntentResult, PrivateError> {
        match intent {
            Intent::Place(req) => Ok(IntentResult::Placed(Box::new(self.create_order(req).await?))),
            Intent::Close { symbol, position_side, qty, client_id, .. } => {
                let req = OrderRequest {
                    client_id: client_id.clone(),
                    symbol: symbol.clone(),
                    side: match position_side {
                        Side::Buy => Side::Sell,
                        Side::Sell => Side::Buy,
                    },
                    kind: OrderKind::Market,
                    qty: *qty,
                    reduce_only: true,
                };
                Ok(IntentResult::Placed(Box::new(self.create_order(&req).await?)))
            }
            Intent::Cancel { symbol, client_id } => {
                Ok(IntentResult::Cancel(self.cancel_order(symbol, client_id).await?))
            }
            Intent::Amend { symbol, client_id, price, trigger, qty } => {
                Ok(IntentResult::Amended(self.amend_order(symbol, client_id, *price, *trigger, *qty).await?))
            }
        }
    }
}
