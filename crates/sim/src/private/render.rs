//! Bybit's JSON shapes of orders, executions, positions and wallets (unified and classic), as
//! the private REST answers and WebSocket pushes carry them (`ws` selects the push variant).
//! Separate so that the field lists, which follow Bybit and change with it, live apart from the
//! account logic.

use super::{i128_to_money, money, obj, side_str, Exchange, OType, Pos, PrivateState, SimExec, SimOrder};
use scalper_core::domain::Fixed;
use serde_json::{json, Value};

impl PrivateState {
    pub(super) fn order_json(&self, ex: &Exchange, o: &SimOrder) -> Value {
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

    pub(super) fn exec_json(&self, ex: &Exchange, e: &SimExec, ws: bool) -> Value {
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

    pub(super) fn position_json(&self, ex: &Exchange, symbol: &str, ws: bool) -> Value {
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

    pub(super) fn wallet_json(&self, ex: &Exchange) -> Value {
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
}
