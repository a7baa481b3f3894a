//! Rows: the one Arrow [`schema`] of every exported stream, the [`Row`] a recorded event or a
//! store line becomes (typed columns extracted, the original line kept) and the Arrow batch of a
//! partition's buffered rows. Pure functions of the JSON, apart from file and partition handling.

use super::{ExportError, GLOBAL};
use arrow_array::builder::{Float64Builder, StringBuilder, TimestampMillisecondBuilder, UInt32Builder, UInt64Builder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use scalper_core::domain::Symbol;
use serde_json::Value;
use std::sync::Arc;

/// The Arrow schema of every exported stream: one schema, columns a stream has no value for
/// are null. `hour` and `line` are never null.
pub fn schema() -> SchemaRef {
    let ts = || DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
    Arc::new(Schema::new(vec![
        // Start of the hourly file the row comes from.
        Field::new("hour", ts(), false),
        // The record's own time: the receive time of a recorded event, a trade's fill time, a
        // store record's `ts_ms` / `exit_ms` / `end_ms`.
        Field::new("time", ts(), true),
        // The exchange's time of a recorded event.
        Field::new("exchange_time", ts(), true),
        // The recorder's sequence number of an event (its order in the recording), or a store
        // record's `seq`.
        Field::new("seq", DataType::UInt64, true),
        // The event variant (`Book`, `Trades`, `Timer`…), a store record's `kind` or `event`.
        Field::new("kind", DataType::Utf8, true),
        // `Snapshot` / `Delta` of a book event.
        Field::new("action", DataType::Utf8, true),
        // Bybit's update id `u` of a book event.
        Field::new("update_id", DataType::UInt64, true),
        // Bybit's cross sequence `seq` of a book event.
        Field::new("sequence", DataType::UInt64, true),
        // Exact decimal strings as recorded.
        Field::new("price", DataType::Utf8, true),
        Field::new("price_f64", DataType::Float64, true),
        Field::new("size", DataType::Utf8, true),
        // Aggressor of a trade, side of a liquidation or store record.
        Field::new("side", DataType::Utf8, true),
        // Exchange trade id.
        Field::new("trade_id", DataType::Utf8, true),
        // Levels of a book event (bids + asks), trades of a trade batch.
        Field::new("items", DataType::UInt32, true),
        // The source line, unchanged (for `trades`, the trade's JSON object).
        Field::new("line", DataType::Utf8, false),
    ]))
}

/// One row of [`schema`].
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Row {
    hour: i64,
    time: Option<i64>,
    exchange_time: Option<i64>,
    seq: Option<u64>,
    kind: Option<String>,
    action: Option<String>,
    update_id: Option<u64>,
    sequence: Option<u64>,
    price: Option<String>,
    size: Option<String>,
    side: Option<String>,
    trade_id: Option<String>,
    items: Option<u32>,
    line: String,
}

pub(super) fn batch(schema: &SchemaRef, rows: &[Row]) -> Result<RecordBatch, ExportError> {
    let n = rows.len();
    let mut hour = TimestampMillisecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut time = TimestampMillisecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut exch = TimestampMillisecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut seq = UInt64Builder::with_capacity(n);
    let mut kind = StringBuilder::new();
    let mut action = StringBuilder::new();
    let mut update_id = UInt64Builder::with_capacity(n);
    let mut sequence = UInt64Builder::with_capacity(n);
    let mut price = StringBuilder::new();
    let mut price_f64 = Float64Builder::with_capacity(n);
    let mut size = StringBuilder::new();
    let mut side = StringBuilder::new();
    let mut trade_id = StringBuilder::new();
    let mut items = UInt32Builder::with_capacity(n);
    let mut line = StringBuilder::with_capacity(n, rows.iter().map(|r| r.line.len()).sum());
    for r in rows {
        hour.append_value(r.hour);
        time.append_option(r.time);
        exch.append_option(r.exchange_time);
        seq.append_option(r.seq);
        kind.append_option(r.kind.as_deref());
        action.append_option(r.action.as_deref());
        update_id.append_option(r.update_id);
        sequence.append_option(r.sequence);
        price.append_option(r.price.as_deref());
        price_f64.append_option(r.price.as_deref().and_then(|p| p.parse::<f64>().ok()));
        size.append_option(r.size.as_deref());
        side.append_option(r.side.as_deref());
        trade_id.append_option(r.trade_id.as_deref());
        items.append_option(r.items);
        line.append_value(&r.line);
    }
    let cols: Vec<ArrayRef> = vec![
        Arc::new(hour.finish()),
        Arc::new(time.finish()),
        Arc::new(exch.finish()),
        Arc::new(seq.finish()),
        Arc::new(kind.finish()),
        Arc::new(action.finish()),
        Arc::new(update_id.finish()),
        Arc::new(sequence.finish()),
        Arc::new(price.finish()),
        Arc::new(price_f64.finish()),
        Arc::new(size.finish()),
        Arc::new(side.finish()),
        Arc::new(trade_id.finish()),
        Arc::new(items.finish()),
        Arc::new(line.finish()),
    ];
    Ok(RecordBatch::try_new(schema.clone(), cols)?)
}

/// Approximate memory of a buffered row, bytes.
pub(super) fn row_bytes(r: &Row) -> usize {
    let s = |o: &Option<String>| o.as_ref().map_or(0, String::capacity);
    std::mem::size_of::<Row>()
        + r.line.capacity()
        + s(&r.kind)
        + s(&r.action)
        + s(&r.price)
        + s(&r.size)
        + s(&r.side)
        + s(&r.trade_id)
}

/// A decimal as its exact source text: a JSON string as is, a JSON number as serde_json prints it.
fn decimal(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn string(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str).map(str::to_string)
}

/// The partition value of a symbol named in a record: itself when it is a valid symbol (it goes
/// into a path), else [`GLOBAL`].
fn symbol_of(v: Option<&Value>) -> &str {
    match v.and_then(Value::as_str) {
        Some(s) if Symbol::is_valid(s) => s,
        _ => GLOBAL,
    }
}

/// The rows of one recorded event: its `raw` row (and partition symbol) and its `trades` rows.
pub(super) fn raw_rows(v: &Value, line: &str, hour: i64, want_trades: bool) -> (String, Row, Vec<Row>) {
    let time = &v["time"];
    let mut row = Row {
        hour,
        time: time["recv_ms"].as_i64(),
        exchange_time: time["exchange_ms"].as_i64(),
        seq: v["seq"].as_u64(),
        line: line.to_string(),
        ..Row::default()
    };
    let (name, body) = match &v["kind"] {
        Value::String(s) => (s.as_str(), &Value::Null),
        Value::Object(m) if m.len() == 1 => match m.iter().next() {
            Some((k, b)) => (k.as_str(), b),
            None => ("", &Value::Null),
        },
        _ => ("", &Value::Null),
    };
    if !name.is_empty() {
        row.kind = Some(name.to_string());
    }
    let mut trades = Vec::new();
    let symbol = match name {
        "Book" => {
            row.action = string(body.get("action"));
            row.update_id = body["update_id"].as_u64();
            row.sequence = body["seq"].as_u64();
            let n = |k: &str| body[k].as_array().map_or(0, Vec::len);
            row.items = u32::try_from(n("bids") + n("asks")).ok();
            symbol_of(body.get("symbol"))
        }
        "Trades" => {
            let list = body["trades"].as_array().map(Vec::as_slice).unwrap_or_default();
            row.items = u32::try_from(list.len()).ok();
            if let [t] = list {
                row.price = decimal(t.get("price"));
                row.size = decimal(t.get("qty"));
                row.side = string(t.get("aggressor"));
                row.trade_id = string(t.get("id"));
            }
            if want_trades {
                for t in list {
                    trades.push(Row {
                        hour,
                        time: t["ts_ms"].as_i64(),
                        exchange_time: row.exchange_time,
                        seq: row.seq,
                        kind: Some("Trade".into()),
                        price: decimal(t.get("price")),
                        size: decimal(t.get("qty")),
                        side: string(t.get("aggressor")),
                        trade_id: string(t.get("id")),
                        line: t.to_string(),
                        ..Row::default()
                    });
                }
            }
            symbol_of(body.get("symbol"))
        }
        "Ticker" => {
            row.price = decimal(body.get("last_price"));
            symbol_of(body.get("symbol"))
        }
        "Liquidation" => {
            row.price = decimal(body.get("price"));
            row.size = decimal(body.get("qty"));
            row.side = string(body.get("side"));
            symbol_of(body.get("symbol"))
        }
        "BookShed" => symbol_of(Some(body)),
        "Baselines" | "History" => symbol_of(body.get("symbol")),
        _ => GLOBAL,
    };
    (symbol.to_string(), row, trades)
}

/// The row of one line of a store stream.
pub(super) fn record_row(v: &Value, line: &str, hour: i64) -> Row {
    let time = ["ts_ms", "exit_ms", "end_ms", "time_ms"].iter().find_map(|k| v[*k].as_i64());
    Row {
        hour,
        time,
        seq: v["seq"].as_u64(),
        kind: string(v.get("kind")).or_else(|| string(v.get("event"))),
        price: decimal(v.get("price")),
        size: decimal(v.get("qty")).or_else(|| decimal(v.get("size"))),
        side: string(v.get("side")),
        line: line.to_string(),
        ..Row::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_book_event_goes_to_its_symbol_with_its_ids_and_levels() {
        let v = json!({"seq": 7, "time": {"exchange_ms": 5, "recv_ms": 6}, "kind": {"Book": {
            "symbol": "BTCUSDT", "action": "Delta", "depth": 50,
            "bids": [{"price": "1.5", "qty": "2"}], "asks": [], "update_id": 11, "seq": 12, "cts_ms": null}}});
        let (sym, row, trades) = raw_rows(&v, "L", 0, true);
        assert_eq!(sym, "BTCUSDT");
        assert_eq!((row.seq, row.time, row.exchange_time), (Some(7), Some(6), Some(5)));
        assert_eq!((row.update_id, row.sequence, row.items), (Some(11), Some(12), Some(1)));
        assert_eq!(row.action.as_deref(), Some("Delta"));
        assert!(trades.is_empty());
    }

    #[test]
    fn a_trade_batch_is_one_raw_row_and_one_trade_row_per_trade() {
        let t = |p: &str, id: &str| json!({"ts_ms": 9, "price": p, "qty": "0.010", "aggressor": "Buy", "id": id, "block_trade": false});
        let v = json!({"seq": 1, "time": {"exchange_ms": null, "recv_ms": 10}, "kind": {"Trades": {
            "symbol": "ETHUSDT", "trades": [t("100.10", "a"), t("100.20", "b")]}}});
        let (sym, row, trades) = raw_rows(&v, "L", 0, true);
        assert_eq!(sym, "ETHUSDT");
        assert_eq!(row.items, Some(2));
        assert_eq!(row.price, None, "two prices: none on the batch row");
        assert_eq!(trades.len(), 2);
        assert_eq!(trades[1].price.as_deref(), Some("100.20"));
        assert_eq!(trades[1].size.as_deref(), Some("0.010"), "exact decimal text");
        assert_eq!(trades[1].trade_id.as_deref(), Some("b"));
        assert_eq!(trades[1].time, Some(9));
    }

    #[test]
    fn global_events_and_bad_symbols_go_to_global() {
        let timer = json!({"seq": 2, "time": {"recv_ms": 1}, "kind": {"Timer": "Second"}});
        assert_eq!(raw_rows(&timer, "L", 0, true).0, GLOBAL);
        let bad = json!({"seq": 3, "time": {"recv_ms": 1}, "kind": {"BookShed": "../etc"}});
        assert_eq!(raw_rows(&bad, "L", 0, true).0, GLOBAL);
        let shed = json!({"seq": 3, "time": {"recv_ms": 1}, "kind": {"BookShed": "XUSDT"}});
        assert_eq!(raw_rows(&shed, "L", 0, true).0, "XUSDT");
    }

    #[test]
    fn store_records_keep_kind_time_and_exact_prices() {
        let v = json!({"kind": "WALL", "price": "60905.5", "size": "28.088", "side": "Buy", "ts_ms": 17});
        let r = record_row(&v, "L", 3);
        assert_eq!((r.kind.as_deref(), r.time, r.hour), (Some("WALL"), Some(17), 3));
        assert_eq!(
            (r.price.as_deref(), r.size.as_deref(), r.side.as_deref()),
            (Some("60905.5"), Some("28.088"), Some("Buy"))
        );
        let e = record_row(&json!({"event": "STATE"}), "L", 3);
        assert_eq!((e.kind.as_deref(), e.time), (Some("STATE"), None));
    }
}
