//! Unit tests of the synthetic market: book invariants, calibration of the calm market,
//! determinism and scenario marks.

use super::*;

fn market(scenario: Scenario, seed: u64) -> Market {
    let spec = InstrumentSpec::generate(seed, 3, "SIM002USDT", None);
    Market::new(seed, 3, spec, scenario, 100, 60, 1.0, 0)
}

#[test]
fn book_stays_uncrossed_and_sized() {
    let mut m = market(Scenario::Calm, 4);
    let mut fills = 0;
    for n in 1..=2_000 {
        let out = m.step(n);
        fills += out.fills.len();
        assert!(!m.book.is_crossed(), "crossed at step {n}");
        assert_eq!(m.book.len(Side::Buy), 60);
        assert_eq!(m.book.len(Side::Sell), 60);
        for f in &out.fills {
            assert!(f.lots > 0 && f.price > 0);
        }
    }
    assert!(fills > 0);
}

#[test]
fn calm_market_has_clustered_fat_tailed_volatility_and_heavy_tailed_sizes() {
    use scalper_core::market::stats::{autocorr, moments, percentile_sorted};
    let mut m = market(Scenario::Calm, 21);
    let (mut mids, mut sizes, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    let mut vol2 = 0.0;
    let steps = 30_000u64;
    for n in 1..=steps {
        let out = m.step(n);
        sizes.extend(out.fills.iter().map(|f| f.lots as f64));
        vol2 += m.vol_state().powi(2);
        if n % 10 == 0 {
            mids.push(m.fair);
            let mut lv: Vec<f64> =
                m.book.top(Side::Buy, 20).iter().chain(m.book.top(Side::Sell, 20)).map(|l| l.1 as f64).collect();
            lv.sort_by(f64::total_cmp);
            let med = lv[lv.len() / 2];
            ratios.extend(lv.iter().map(|q| q / med));
        }
    }
    // The volatility state keeps the configured variance on average.
    let mean_var = vol2 / steps as f64;
    assert!((0.6..1.6).contains(&mean_var), "mean variance multiplier {mean_var}");
    let r: Vec<f64> = mids.windows(2).map(|w| (w[1] / w[0]).ln()).collect();
    let (_, kurt) = moments(&r);
    let abs: Vec<f64> = r.iter().map(|x| x.abs()).collect();
    assert!(kurt.unwrap_or(0.0) > 2.0, "1 s excess kurtosis {kurt:?}");
    assert!(autocorr(&abs, 1).unwrap_or(0.0) > 0.1, "|r| acf1 {:?}", autocorr(&abs, 1));
    sizes.sort_by(f64::total_cmp);
    let med = percentile_sorted(&sizes, 0.5).unwrap_or(1.0);
    assert!(percentile_sorted(&sizes, 0.9).unwrap_or(0.0) / med > 8.0, "trade sizes not heavy-tailed");
    ratios.sort_by(f64::total_cmp);
    let p99 = percentile_sorted(&ratios, 0.99).unwrap_or(0.0);
    assert!(
        p99 > 12.0,
        "level sizes not heavy-tailed: p99 {p99}, p90 {:?} level lots {} sigma ticks {} spread {}",
        percentile_sorted(&ratios, 0.9),
        m.spec.level_lots,
        m.step_sigma_ticks(),
        m.spec.spread_ticks
    );
}

#[test]
fn same_seed_same_market() {
    let mut a = market(Scenario::SpoofWalls { every_ms: 2_000 }, 11);
    let mut b = market(Scenario::SpoofWalls { every_ms: 2_000 }, 11);
    for n in 1..=500 {
        let (oa, ob) = (a.step(n), b.step(n));
        assert_eq!(oa.fills.len(), ob.fills.len());
        assert_eq!(a.book.top(Side::Buy, 50), b.book.top(Side::Buy, 50));
        assert_eq!(a.book.top(Side::Sell, 50), b.book.top(Side::Sell, 50));
    }
    let mut c = market(Scenario::SpoofWalls { every_ms: 2_000 }, 12);
    c.step(1);
    assert_ne!(a.spec.start_price_ticks, c.spec.start_price_ticks);
}

#[test]
fn scenarios_leave_their_marks() {
    let mut p = market(Scenario::Pump { start_ms: 1_000, duration_ms: 20_000, magnitude_bps: 2_000 }, 5);
    let start = p.fair;
    for n in 1..=250 {
        p.step(n);
    }
    assert!(p.fair > start * 1.1, "pump moved {} -> {}", start, p.fair);
    assert!(p.events.iter().any(|e| e.1 == ScenarioEventKind::PumpStarted));
    assert!(p.events.iter().any(|e| e.1 == ScenarioEventKind::PumpEnded));

    let mut s = market(Scenario::SpoofWalls { every_ms: 1_000 }, 6);
    for n in 1..=600 {
        s.step(n);
    }
    let placed = s.events.iter().filter(|e| matches!(e.1, ScenarioEventKind::WallPlaced { .. })).count();
    let pulled = s.events.iter().filter(|e| matches!(e.1, ScenarioEventKind::WallPulled { .. })).count();
    assert!(placed >= 3 && pulled >= 2, "placed {placed} pulled {pulled}");

    let mut a = market(Scenario::AbsorbingWall { start_ms: 500, repeat_ms: 0 }, 7);
    for n in 1..=3_000 {
        a.step(n);
    }
    assert!(a.events.iter().any(|e| matches!(e.1, ScenarioEventKind::WallConsumed { .. })), "{:?}", a.events);

    let mut pd =
        market(Scenario::PumpAndDump { start_ms: 1_000, pump_ms: 10_000, dump_ms: 5_000, magnitude_bps: 2_000 }, 9);
    let base = pd.fair;
    let mut top = 0.0f64;
    for n in 1..=200 {
        pd.step(n);
        top = top.max(pd.fair);
    }
    assert!(top > base * 1.12, "pump to {top} from {base}");
    assert!(pd.fair < top * 0.9, "dump back to {} from {top}", pd.fair);
    let kinds: Vec<ScenarioEventKind> = pd.events.iter().map(|e| e.1.clone()).collect();
    assert_eq!(
        kinds,
        vec![ScenarioEventKind::PumpStarted, ScenarioEventKind::DumpStarted, ScenarioEventKind::DumpEnded]
    );

    let mut x = market(Scenario::NewsShock { at_ms: 1_000, jump_bps: -1_000 }, 8);
    for n in 1..=9 {
        x.step(n);
    }
    let before = x.fair;
    for n in 10..=14 {
        x.step(n);
    }
    assert!(x.fair < before * 0.95);
}
