//! Bybit v5 wire formats: exact decimal strings, public WebSocket frames (orderbook, publicTrade,
//! tickers, allLiquidation, acks, pongs) and the REST envelope and result bodies. Field names
//! and order follow Bybit's v5 documentation.

use super::book::Lvl;
use super::prints::{Fill, Liq, TickerValues};
use super::universe::InstrumentSpec;
use scalper_core::domain::SCALE;
use serde::Serialize;
use std::fmt::{self, Write as _};

/// An exact decimal printed with a fixed number of decimals (Bybit pads, e.g. `"16493.50"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Dec {
    raw: i128,
    decimals: u32,
}

impl Dec {
    /// `units` whole units of `unit_raw` (10^-8), printed with `decimals` decimals.
    pub fn ticks(units: i64, unit_raw: i64, decimals: u32) -> Dec {
        Dec { raw: units as i128 * unit_raw as i128, decimals: decimals.min(8) }
    }

    /// A float rounded to `decimals` decimals (analytics fields such as turnover).
    pub fn from_f64(x: f64, decimals: u32) -> Dec {
        let d = decimals.min(8);
        let scaled = (x * 10f64.powi(d as i32)).round();
        let scaled = if scaled.is_finite() { scaled.clamp(-1e30, 1e30) as i128 } else { 0 };
        Dec { raw: scaled * 10i128.pow(8 - d), decimals: d }
    }
}

impl fmt::Display for Dec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let a = self.raw.unsigned_abs();
        let scale = SCALE as u128;
        let int = a / scale;
        let frac = (a % scale) / 10u128.pow(8 - self.decimals);
        if self.raw < 0 && (int != 0 || frac != 0) {
            f.write_str("-")?;
        }
        write!(f, "{int}")?;
        if self.decimals > 0 {
            write!(f, ".{:0width$}", frac, width = self.decimals as usize)?;
        }
        Ok(())
    }
}

/// JSON string literal of arbitrary text (escaped).
pub(crate) fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string())
}

fn push_levels(out: &mut String, levels: &[Lvl], spec: &InstrumentSpec) {
    out.push('[');
    for (i, &(p, q)) in levels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        // Deletions carry a bare "0", like Bybit's deltas.
        let _ = if q == 0 {
            write!(out, "[\"{}\",\"0\"]", Dec::ticks(p, spec.tick_raw, spec.price_scale))
        } else {
            write!(
                out,
                "[\"{}\",\"{}\"]",
                Dec::ticks(p, spec.tick_raw, spec.price_scale),
                Dec::ticks(q, spec.qty_step_raw, spec.qty_decimals)
            )
        };
    }
    out.push(']');
}

/// Snapshot or delta of one orderbook depth stream.
pub(crate) struct BookFrame<'a> {
    pub depth: usize,
    pub snapshot: bool,
    pub ts: i64,
    pub cts: i64,
    pub u: u64,
    pub seq: u64,
    pub bids: &'a [Lvl],
    pub asks: &'a [Lvl],
}

/// `orderbook.{depth}.{symbol}` frame. Level 1 puts `ts` before `type`, like Bybit's futures
/// level-1 stream.
pub(crate) fn book_frame(spec: &InstrumentSpec, f: &BookFrame<'_>) -> String {
    let mut out = String::with_capacity(128 + 32 * (f.bids.len() + f.asks.len()));
    let kind = if f.snapshot { "snapshot" } else { "delta" };
    let _ = write!(out, "{{\"topic\":\"orderbook.{}.{}\",", f.depth, spec.name);
    if f.depth == 1 {
        let _ = write!(out, "\"ts\":{},\"type\":\"{kind}\",", f.ts);
    } else {
        let _ = write!(out, "\"type\":\"{kind}\",\"ts\":{},", f.ts);
    }
    let _ = write!(out, "\"data\":{{\"s\":\"{}\",\"b\":", spec.name);
    push_levels(&mut out, f.bids, spec);
    out.push_str(",\"a\":");
    push_levels(&mut out, f.asks, spec);
    let _ = write!(out, ",\"u\":{},\"seq\":{}}},\"cts\":{}}}", f.u, f.seq, f.cts);
    out
}

/// `publicTrade.{symbol}` frame with every fill of one match (same `T` and `seq`).
pub(crate) fn trade_frame(spec: &InstrumentSpec, ts: i64, t_match: i64, seq: u64, fills: &[Fill]) -> String {
    let mut out = String::with_capacity(96 + 200 * fills.len());
    let _ = write!(out, "{{\"topic\":\"publicTrade.{}\",\"type\":\"snapshot\",\"ts\":{ts},\"data\":[", spec.name);
    for (i, f) in fills.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(
            out,
            "{{\"T\":{t_match},\"s\":\"{}\",\"S\":\"{}\",\"v\":\"{}\",\"p\":\"{}\",\"L\":\"{}\",\"i\":\"{}\",\"BT\":false,\"RPI\":false,\"seq\":{seq}}}",
            spec.name,
            f.taker.as_bybit(),
            Dec::ticks(f.lots, spec.qty_step_raw, spec.qty_decimals),
            Dec::ticks(f.price, spec.tick_raw, spec.price_scale),
            f.dir.as_str(),
            f.id
        );
    }
    out.push_str("]}");
    out
}

/// `tickers.{symbol}` frame: every field for a snapshot, only the fields that differ from
/// `prev` for a delta. Returns `None` for a delta with nothing to say.
pub(crate) fn ticker_frame(v: &TickerValues, prev: Option<&TickerValues>, cs: u64, ts: i64) -> Option<String> {
    let mut data = String::with_capacity(800);
    let _ = write!(data, "{{\"symbol\":\"{}\"", v.symbol);
    let mut changed = 0;
    let old = prev.map(|p| p.ws_fields());
    for (i, (k, val)) in v.ws_fields().iter().enumerate() {
        if let Some(o) = &old {
            if o[i].1 == *val {
                continue;
            }
        }
        changed += 1;
        let _ = write!(data, ",\"{k}\":\"{val}\"");
    }
    data.push('}');
    if prev.is_some() && changed == 0 {
        return None;
    }
    let kind = if prev.is_some() { "delta" } else { "snapshot" };
    Some(format!("{{\"topic\":\"tickers.{}\",\"type\":\"{kind}\",\"data\":{data},\"cs\":{cs},\"ts\":{ts}}}", v.symbol))
}

/// `allLiquidation.{symbol}` frame.
pub(crate) fn liquidation_frame(spec: &InstrumentSpec, ts: i64, liqs: &[(i64, Liq)]) -> String {
    let mut out = String::with_capacity(96 + 110 * liqs.len());
    let _ = write!(out, "{{\"topic\":\"allLiquidation.{}\",\"type\":\"snapshot\",\"ts\":{ts},\"data\":[", spec.name);
    for (i, (t, l)) in liqs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(
            out,
            "{{\"T\":{t},\"s\":\"{}\",\"S\":\"{}\",\"v\":\"{}\",\"p\":\"{}\"}}",
            spec.name,
            l.side.as_bybit(),
            Dec::ticks(l.lots, spec.qty_step_raw, spec.qty_decimals),
            Dec::ticks(l.price, spec.tick_raw, spec.price_scale)
        );
    }
    out.push_str("]}");
    out
}

/// Reply to `subscribe` / `unsubscribe` / unknown ops (linear format, `req_id` echoed).
pub(crate) fn op_reply(success: bool, ret_msg: &str, conn_id: &str, req_id: &str, op: &str) -> String {
    format!(
        "{{\"success\":{success},\"ret_msg\":{},\"conn_id\":\"{conn_id}\",\"req_id\":{},\"op\":{}}}",
        json_str(ret_msg),
        json_str(req_id),
        json_str(op)
    )
}

/// Pong of the public linear channel.
pub(crate) fn pong(conn_id: &str, req_id: &str) -> String {
    op_reply(true, "pong", conn_id, req_id, "ping")
}

/// A frame that is not valid JSON (fault injection).
pub(crate) fn malformed(spec_name: &str) -> String {
    format!("{{\"topic\":\"orderbook.50.{spec_name}\",\"type\":\"delta\",\"ts\":17")
}

// ---------------------------------------------------------------------------------------------
// REST

/// Empty JSON object `{}`.
#[derive(Debug, Serialize)]
pub(crate) struct Empty {}

/// Bybit's response envelope.
#[derive(Debug, Serialize)]
pub(crate) struct Envelope<'a, T: Serialize> {
    #[serde(rename = "retCode")]
    pub ret_code: i64,
    #[serde(rename = "retMsg")]
    pub ret_msg: &'a str,
    pub result: T,
    #[serde(rename = "retExtInfo")]
    pub ret_ext_info: Empty,
    pub time: i64,
}

/// `/v5/market/time` result.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TimeResult {
    pub time_second: String,
    pub time_nano: String,
}

/// `/v5/market/instruments-info` result.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct InstrumentsResult<'a> {
    pub category: &'static str,
    pub list: Vec<InstrumentJson<'a>>,
    pub next_page_cursor: String,
}

/// One linear instrument.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct InstrumentJson<'a> {
    pub symbol: &'a str,
    pub contract_type: &'static str,
    pub status: &'static str,
    pub base_coin: &'a str,
    pub quote_coin: &'static str,
    pub launch_time: String,
    pub delivery_time: String,
    pub delivery_fee_rate: &'static str,
    pub price_scale: String,
    pub leverage_filter: LeverageFilter,
    pub price_filter: PriceFilter,
    pub lot_size_filter: LotSizeFilter,
    pub unified_margin_trade: bool,
    pub funding_interval: i64,
    pub settle_coin: &'static str,
    pub copy_trading: &'static str,
    pub upper_funding_rate: &'static str,
    pub lower_funding_rate: &'static str,
    pub display_name: &'static str,
    pub forbid_upl_withdrawal: bool,
    pub is_pre_listing: bool,
    pub pre_listing_info: Option<Empty>,
    pub risk_parameters: RiskParameters,
    pub symbol_type: &'static str,
}

/// Leverage filter.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LeverageFilter {
    pub min_leverage: &'static str,
    pub max_leverage: &'static str,
    pub leverage_step: &'static str,
}

/// Price filter.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PriceFilter {
    pub min_price: String,
    pub max_price: String,
    pub tick_size: String,
}

/// Lot size filter.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LotSizeFilter {
    pub max_order_qty: String,
    pub min_order_qty: String,
    pub qty_step: String,
    pub post_only_max_order_qty: String,
    pub max_mkt_order_qty: String,
    pub min_notional_value: &'static str,
}

/// Risk parameters for limit prices.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RiskParameters {
    pub price_limit_ratio_x: &'static str,
    pub price_limit_ratio_y: &'static str,
}

/// Builds the instruments-info entry of `spec`.
pub(crate) fn instrument_json<'a>(
    spec: &'a InstrumentSpec,
    status: &'static str,
    delivery_ms: i64,
) -> InstrumentJson<'a> {
    let px = |t: i64| Dec::ticks(t, spec.tick_raw, spec.price_scale).to_string();
    let qty = |l: i64| Dec::ticks(l, spec.qty_step_raw, spec.qty_decimals).to_string();
    InstrumentJson {
        symbol: &spec.name,
        contract_type: "LinearPerpetual",
        status,
        base_coin: &spec.base,
        quote_coin: "USDT",
        launch_time: spec.launch_time_ms.to_string(),
        delivery_time: delivery_ms.to_string(),
        delivery_fee_rate: "",
        price_scale: spec.price_scale.to_string(),
        leverage_filter: LeverageFilter { min_leverage: "1", max_leverage: spec.max_leverage, leverage_step: "0.01" },
        price_filter: PriceFilter { min_price: px(1), max_price: px(19_999_998), tick_size: px(1) },
        lot_size_filter: LotSizeFilter {
            max_order_qty: qty(spec.max_qty_lots),
            min_order_qty: qty(1),
            qty_step: qty(1),
            post_only_max_order_qty: qty(spec.max_qty_lots),
            max_mkt_order_qty: qty(spec.max_mkt_qty_lots),
            min_notional_value: "5",
        },
        unified_margin_trade: true,
        funding_interval: spec.funding_interval_min,
        settle_coin: "USDT",
        copy_trading: "both",
        upper_funding_rate: "0.005",
        lower_funding_rate: "-0.005",
        display_name: "",
        forbid_upl_withdrawal: false,
        is_pre_listing: false,
        pre_listing_info: None,
        risk_parameters: RiskParameters { price_limit_ratio_x: "0.05", price_limit_ratio_y: "0.1" },
        symbol_type: "",
    }
}

/// `/v5/market/orderbook` result.
pub(crate) struct OrderbookResult<'a> {
    pub spec: &'a InstrumentSpec,
    pub bids: &'a [Lvl],
    pub asks: &'a [Lvl],
    pub ts: i64,
    pub u: u64,
    pub seq: u64,
    pub cts: i64,
}

impl Serialize for OrderbookResult<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        struct Levels<'b>(&'b [Lvl], &'b InstrumentSpec);
        impl Serialize for Levels<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeSeq;
                let mut seq = s.serialize_seq(Some(self.0.len()))?;
                for &(p, q) in self.0 {
                    seq.serialize_element(&[
                        Dec::ticks(p, self.1.tick_raw, self.1.price_scale).to_string(),
                        Dec::ticks(q, self.1.qty_step_raw, self.1.qty_decimals).to_string(),
                    ])?;
                }
                seq.end()
            }
        }
        let mut m = s.serialize_map(Some(7))?;
        m.serialize_entry("s", &self.spec.name)?;
        m.serialize_entry("b", &Levels(self.bids, self.spec))?;
        m.serialize_entry("a", &Levels(self.asks, self.spec))?;
        m.serialize_entry("ts", &self.ts)?;
        m.serialize_entry("u", &self.u)?;
        m.serialize_entry("seq", &self.seq)?;
        m.serialize_entry("cts", &self.cts)?;
        m.end()
    }
}

/// `/v5/market/tickers` result.
pub(crate) struct TickersResult<'a> {
    pub list: &'a [TickerValues],
}

impl Serialize for TickersResult<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        struct One<'b>(&'b TickerValues);
        impl Serialize for One<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let fields = self.0.rest_fields();
                let mut m = s.serialize_map(Some(fields.len() + 1))?;
                m.serialize_entry("symbol", &self.0.symbol)?;
                for (k, v) in fields {
                    m.serialize_entry(k, v)?;
                }
                m.end()
            }
        }
        struct List<'b>(&'b [TickerValues]);
        impl Serialize for List<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut seq = s.serialize_seq(Some(self.0.len()))?;
                for t in self.0 {
                    seq.serialize_element(&One(t))?;
                }
                seq.end()
            }
        }
        let mut m = s.serialize_map(Some(2))?;
        m.serialize_entry("category", "linear")?;
        m.serialize_entry("list", &List(self.list))?;
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_exact_and_padded() {
        assert_eq!(Dec::ticks(164_935, 10_000_000, 2).to_string(), "16493.50");
        assert_eq!(Dec::ticks(6, 100_000, 3).to_string(), "0.006");
        assert_eq!(Dec::ticks(40, 100_000_000, 0).to_string(), "40");
        assert_eq!(Dec::ticks(-3, 1_000_000, 2).to_string(), "-0.03");
        assert_eq!(Dec::from_f64(-0.000212, 6).to_string(), "-0.000212");
        assert_eq!(Dec::from_f64(-0.0000001, 6).to_string(), "0.000000");
        assert_eq!(Dec::from_f64(1570383121.943499, 4).to_string(), "1570383121.9435");
    }

    #[test]
    fn replies_are_valid_json_with_escaped_req_id() {
        let r = op_reply(false, "error:handler not found,topic:x", "c1", "a\"b", "subscribe");
        let v: serde_json::Value = serde_json::from_str(&r).unwrap();
        assert_eq!(v["req_id"], "a\"b");
        assert_eq!(v["success"], false);
        let p: serde_json::Value = serde_json::from_str(&pong("c1", "")).unwrap();
        assert_eq!(p["ret_msg"], "pong");
        assert_eq!(p["op"], "ping");
        assert!(serde_json::from_str::<serde_json::Value>(&malformed("BTCUSDT")).is_err());
    }
}
