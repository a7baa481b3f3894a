//! Trading-core benchmarks: state-machine step, sizing, pre-trade risk check, TP/SL plan and
//! the SIM venue matching a trade batch. Run with `cargo bench --bench trading`.

use criterion::{criterion_group, criterion_main, Criterion};
use scalper::domain::{Category, Fixed, Price, Qty, Side, Symbol};
use scalper::execution::order::{Fill, Liquidity, OrderKind, OrderRequest, TimeInForce};
use scalper::execution::sim::SimVenue;
use scalper::execution::tpsl::{self, MarketRisk, TpSlPolicy, TpSlRequest};
use scalper::market::data::{BookAction, BookUpdate, Level, Trade, TradeBatch};
use scalper::market::orderbook::OrderBook;
use scalper::risk::engine::{Candidate, RiskEngine, RiskFlags, RiskLimits};
use scalper::risk::money::{self, FeeRates, Money, Rate};
use scalper::risk::sizing::{size_position, SizeRequest, SizingLimits, SizingParams};
use scalper::state::machine::{Confirmation, Input, MachineConfig, TradingMachine};
use scalper::state::portfolio::{Portfolio, PositionPlan};
use std::hint::black_box;

fn p(raw_units: i64) -> Price {
    Price::from_raw(raw_units * 10_000_000) // multiples of 0.1
}
fn fees() -> FeeRates {
    FeeRates { maker: Rate::from_raw(20_000), taker: Rate::from_raw(55_000) }
}

fn bench_machine(c: &mut Criterion) {
    let cfg = MachineConfig::default();
    let ok = Confirmation { walls: true, flow: true, fresh_bad_news: false };
    let inputs: Vec<Input> = (0..64)
        .map(|i| Input::Score { side: Side::Buy, score: 40.0 + (i % 40) as f64, regime_ok: true, confirm: ok })
        .collect();
    c.bench_function("machine_step_score", |b| {
        let mut m = TradingMachine::new(Symbol::new("BTCUSDT"), 0);
        let mut t = 0;
        b.iter(|| {
            t += 1;
            black_box(m.step(&cfg, t, black_box(&inputs[(t % 64) as usize])))
        })
    });
}

fn bench_sizing(c: &mut Criterion) {
    let params = SizingParams {
        risk_per_trade: Rate::from_f64(0.005),
        fees: fees(),
        slippage: Rate::from_f64(0.0005),
        latency_buffer: Rate::from_f64(0.0002),
    };
    let lim = SizingLimits {
        max_leverage: Fixed::from_int(20),
        max_notional: Money::from_int(50_000),
        qty_step: Qty::from_raw(100_000),
        min_qty: Qty::from_raw(100_000),
        max_qty: Qty::from_raw(100 * scalper::domain::SCALE),
        min_notional: Money::from_int(5),
    };
    let req = SizeRequest {
        side: Side::Buy,
        entry: p(300_000),
        stop: p(299_500),
        entry_liquidity: Liquidity::Maker,
        equity: Money::from_int(10_000),
        available_margin: Money::from_int(10_000),
    };
    c.bench_function("size_position", |b| b.iter(|| black_box(size_position(&params, &lim, black_box(&req)))));
}

fn units(v: i64) -> Qty {
    Qty::from_raw(v * scalper::domain::SCALE)
}

fn bench_risk(c: &mut Criterion) {
    let eng = RiskEngine::new(RiskLimits {
        max_heat: Rate::from_f64(0.5),
        daily_loss: Rate::from_f64(0.03),
        unrealized_drawdown: Rate::from_f64(0.05),
        max_positions: [20, 20, 20],
    });
    let mut pf = Portfolio::new(Money::from_int(1_000_000), fees().taker, 0);
    for i in 0..10 {
        let f = Fill {
            symbol: Symbol::new(&format!("S{i}USDT")),
            order_id: "o".into(),
            client_id: "c".into(),
            exec_id: "e".into(),
            side: if i % 2 == 0 { Side::Buy } else { Side::Sell },
            price: p(1_000),
            qty: units(10),
            fee: money::fee(units(10), p(1_000), fees().taker),
            liquidity: Liquidity::Taker,
            reduce_only: false,
            ts_ms: 0,
            venue_pnl: None,
        };
        let stop = if i % 2 == 0 { p(990) } else { p(1_010) };
        let plan = PositionPlan { category: Category::Normal, stop, take_profits: vec![], planned_risk: Money::ZERO };
        pf.on_fill(&f, Some(&plan)).expect("valid fill");
    }
    let cand = Candidate {
        symbol: Symbol::new("NEWUSDT"),
        category: Category::Prime,
        side: Side::Buy,
        entry: p(500),
        stop: p(495),
        qty: units(3),
        risk: Money::ZERO,
    };
    let flags = RiskFlags::default();
    c.bench_function("pre_trade_check_10_positions", |b| {
        b.iter(|| black_box(eng.pre_trade_check(&pf, &flags, black_box(&cand), 1)))
    });
}

fn bench_tpsl(c: &mut Criterion) {
    let pol = TpSlPolicy::default();
    let r = TpSlRequest {
        side: Side::Sell,
        entry: p(300_000),
        stop: p(300_370),
        tick: p(1),
        min_move_for_profit: 0.0012,
        market: MarketRisk::Blowoff,
    };
    c.bench_function("tpsl_plan", |b| b.iter(|| black_box(tpsl::plan(&pol, black_box(&r)))));
}

fn bench_sim(c: &mut Criterion) {
    let sym = Symbol::new("BTCUSDT");
    let mut book = OrderBook::new(p(1), 50).expect("valid tick");
    let lv = |t: i64| Level { price: p(t), qty: units(1) };
    book.apply(&BookUpdate {
        symbol: sym.clone(),
        action: BookAction::Snapshot,
        depth: 50,
        bids: (0..50).map(|i| lv(299_999 - i)).collect(),
        asks: (0..50).map(|i| lv(300_001 + i)).collect(),
        update_id: 1,
        seq: 1,
        cts_ms: None,
    })
    .expect("valid snapshot");
    let batch = TradeBatch {
        symbol: sym.clone(),
        trades: (0..8)
            .map(|i| Trade {
                ts_ms: i,
                price: p(300_001 + (i % 3)),
                qty: Qty::from_raw(10_000_000),
                aggressor: Side::Buy,
                id: format!("t{i}"),
                block_trade: false,
                rpi: false,
            })
            .collect(),
    };
    let mut base = SimVenue::new(fees());
    for i in 0..4 {
        let r = OrderRequest {
            client_id: format!("b{i}"),
            symbol: sym.clone(),
            side: Side::Buy,
            kind: OrderKind::Limit { price: p(299_990 - i), tif: TimeInForce::PostOnly },
            qty: units(1),
            reduce_only: false,
        };
        base.place(&r, &book, 0);
    }
    c.bench_function("sim_on_trades_8_prints_4_orders", |b| {
        b.iter(|| {
            let mut v = base.clone();
            black_box(v.on_trades(black_box(&batch), &book))
        })
    });
}

criterion_group!(benches, bench_machine, bench_sizing, bench_risk, bench_tpsl, bench_sim);
criterion_main!(benches);
