//! Bybit v5 public decoders on fixtures in the documented format: REST results, WS market
//! frames, acks and pongs.

mod common;

use common::bybit::{fixture, lvl};
use common::{p, q};
use scalper::connectors::bybit_public::messages::{
    parse_envelope, parse_ws_frame, InstrumentsPage, MarketData, OrderbookResult, ServerTime, TickersResult, WsMessage,
};
use scalper::connectors::bybit_public::BybitError;
use scalper::domain::Side;
use scalper::market::data::{BookAction, InstrumentStatus};

#[test]
fn fixture_instruments_parse_and_filter() {
    let page: InstrumentsPage = parse_envelope(fixture!("instruments_linear.json")).unwrap();
    assert_eq!(page.category, "linear");
    assert_eq!(page.next_page_cursor, "");
    assert_eq!(page.list.len(), 4);
    let keep: Vec<&str> = page.list.iter().filter(|i| i.is_usdt_perpetual()).map(|i| i.symbol.as_str()).collect();
    assert_eq!(keep, vec!["BTCUSDT", "1000PEPEUSDT"]);

    let btc = page.list[0].to_instrument().unwrap();
    assert_eq!(btc.symbol.as_str(), "BTCUSDT");
    assert_eq!(btc.status, InstrumentStatus::Trading);
    assert_eq!(btc.tick_size, p("0.1"));
    assert_eq!(btc.qty_step, q("0.001"));
    assert_eq!(btc.min_qty, q("0.001"));
    assert_eq!(btc.max_qty, q("1190"));
    assert_eq!(btc.min_notional, p("5"));
    assert_eq!(btc.max_leverage, p("100"));
    assert_eq!(btc.launch_time_ms, 1_584_230_400_000);

    let pepe = page.list[1].to_instrument().unwrap();
    assert_eq!(pepe.tick_size.raw(), 100);
    assert_eq!(pepe.qty_step, q("100"));

    let pre: InstrumentsPage = parse_envelope(fixture!("instruments_prelaunch.json")).unwrap();
    let newtok = pre.list[0].to_instrument().unwrap();
    assert_eq!(newtok.status, InstrumentStatus::PreLaunch);
    assert_eq!(newtok.max_leverage, p("5"));
}

#[test]
fn fixture_error_envelope_is_api_error() {
    let e = parse_envelope::<TickersResult>(fixture!("error_params.json")).unwrap_err();
    assert_eq!(e, BybitError::Api { code: 10001, msg: "params error: Category is invalid".into() });
}

#[test]
fn fixture_rest_orderbook_tickers_time() {
    let ob: OrderbookResult = parse_envelope(fixture!("orderbook_rest.json")).unwrap();
    assert_eq!(ob.ts, 1_760_000_000_123);
    let book = ob.into_book(25).unwrap();
    assert_eq!(book.action, BookAction::Snapshot);
    assert_eq!(book.depth, 25);
    assert_eq!(book.bids, vec![lvl("61234.5", "2.417"), lvl("61234.4", "0.033"), lvl("61233.9", "1.5")]);
    assert_eq!(book.asks, vec![lvl("61234.6", "0.812"), lvl("61234.8", "3.004")]);
    assert_eq!((book.update_id, book.seq, book.cts_ms), (9_182_736, 456_789_012_345, Some(1_760_000_000_119)));

    let t: TickersResult = parse_envelope(fixture!("tickers_linear.json")).unwrap();
    assert_eq!(t.list.len(), 3);
    let btc = t.list[0].clone().into_update();
    assert_eq!(btc.symbol.as_str(), "BTCUSDT");
    assert_eq!(btc.last_price, Some(p("61234.5")));
    assert_eq!(btc.mark_price, Some(p("61236.78")));
    assert_eq!(btc.index_price, Some(p("61240.12")));
    assert_eq!(btc.bid1_price, Some(p("61234.5")));
    assert_eq!(btc.ask1_price, Some(p("61234.6")));
    assert_eq!(btc.price_24h_pcnt, Some(0.018673));
    assert_eq!(btc.funding_rate, Some(0.0001));
    assert_eq!(btc.open_interest, Some(52341.118));
    assert_eq!(btc.volume_24h, Some(134567.891));
    assert_eq!(btc.turnover_24h, Some(8_123_456_789.123_4));
    // Pre-launch contracts send empty strings: no value, not an error.
    let pre = t.list[1].clone().into_update();
    assert_eq!(pre.symbol.as_str(), "NEWTOKUSDT");
    assert!(pre.last_price.is_none() && pre.funding_rate.is_none() && pre.bid1_price.is_none());

    let st: ServerTime = parse_envelope(fixture!("server_time.json")).unwrap();
    assert_eq!(st.to_ms().unwrap(), 1_760_000_000_654);
}

#[test]
fn fixture_ws_orderbook_snapshot_and_delta() {
    let WsMessage::Market { ts_ms, data: MarketData::Book(b) } =
        parse_ws_frame(fixture!("ws_orderbook_snapshot.json")).unwrap()
    else {
        panic!("not a book")
    };
    assert_eq!(ts_ms, 1_760_000_001_001);
    assert_eq!(b.symbol.as_str(), "BTCUSDT");
    assert_eq!((b.action, b.depth), (BookAction::Snapshot, 50));
    assert_eq!(b.bids, vec![lvl("61234.5", "2.417"), lvl("61234.4", "0.033")]);
    assert_eq!(b.asks, vec![lvl("61234.6", "0.812"), lvl("61234.8", "3.004")]);
    assert_eq!((b.update_id, b.seq, b.cts_ms), (1_234_501, 456_789_012_400, Some(1_760_000_000_998)));

    let WsMessage::Market { ts_ms, data: MarketData::Book(d) } =
        parse_ws_frame(fixture!("ws_orderbook_delta.json")).unwrap()
    else {
        panic!("not a book")
    };
    assert_eq!(ts_ms, 1_760_000_001_021);
    assert_eq!(d.action, BookAction::Delta);
    assert_eq!(d.bids, vec![lvl("61234.4", "0"), lvl("61234.3", "1.25")]);
    assert!(d.asks.is_empty());
    assert_eq!(d.update_id, 1_234_502);
}

#[test]
fn fixture_ws_trades_tickers_liquidations() {
    let WsMessage::Market { ts_ms, data: MarketData::Trades(t) } =
        parse_ws_frame(fixture!("ws_public_trade.json")).unwrap()
    else {
        panic!("not trades")
    };
    assert_eq!(ts_ms, 1_760_000_001_105);
    assert_eq!(t.symbol.as_str(), "BTCUSDT");
    assert_eq!(t.trades.len(), 2);
    assert_eq!(t.trades[0].ts_ms, 1_760_000_001_102);
    assert_eq!(t.trades[0].aggressor, Side::Buy);
    assert_eq!(t.trades[0].qty, q("0.015"));
    assert_eq!(t.trades[0].price, p("61234.6"));
    assert_eq!(t.trades[0].id, "6e0a1f3c-2b7d-5c4e-9a8b-0c1d2e3f4a5b");
    assert!(!t.trades[0].block_trade);
    assert_eq!(t.trades[1].aggressor, Side::Sell);
    assert!(t.trades[1].block_trade);

    let WsMessage::Market { ts_ms, data: MarketData::Ticker(s) } =
        parse_ws_frame(fixture!("ws_ticker_snapshot.json")).unwrap()
    else {
        panic!("not a ticker")
    };
    assert_eq!(ts_ms, 1_760_000_001_200);
    assert_eq!(s.last_price, Some(p("61234.5")));
    assert_eq!(s.funding_rate, Some(0.0001));
    assert_eq!(s.open_interest, Some(52341.118));

    let WsMessage::Market { data: MarketData::Ticker(d), .. } =
        parse_ws_frame(fixture!("ws_ticker_delta.json")).unwrap()
    else {
        panic!("not a ticker")
    };
    assert_eq!(d.last_price, Some(p("61234.6")));
    assert_eq!(d.mark_price, Some(p("61237.01")));
    // Fields absent from a delta did not change: they stay None.
    assert_eq!((d.index_price, d.funding_rate, d.volume_24h), (None, None, None));

    let WsMessage::Market { ts_ms, data: MarketData::Liquidations(l) } =
        parse_ws_frame(fixture!("ws_all_liquidation.json")).unwrap()
    else {
        panic!("not liquidations")
    };
    assert_eq!(ts_ms, 1_760_000_001_402);
    assert_eq!(l.len(), 2);
    assert_eq!((l[0].side, l[0].qty, l[0].price, l[0].ts_ms), (Side::Buy, q("0.25"), p("61102.3"), 1_760_000_001_398));
    assert_eq!(l[1].side, Side::Sell);
}

#[test]
fn fixture_ws_acks_and_pong() {
    let WsMessage::Ack(a) = parse_ws_frame(fixture!("ws_subscribe_ack.json")).unwrap() else { panic!() };
    assert!(a.is_success());
    assert_eq!((a.req_id.as_str(), a.op.as_str()), ("1-1", "subscribe"));
    let WsMessage::Ack(f) = parse_ws_frame(fixture!("ws_subscribe_fail.json")).unwrap() else { panic!() };
    assert!(!f.is_success());
    assert!(f.ret_msg.contains("NOPEUSDT"));
    assert!(matches!(parse_ws_frame(fixture!("ws_pong.json")).unwrap(), WsMessage::Pong(_)));
}
