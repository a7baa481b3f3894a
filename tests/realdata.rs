//! The judgement on the real market: every set of `../shared/realdata` (real Bybit and Binance
//! order books and trades, ordinary market time) replayed through the real core.
//!
//! * Background: counting from 60 s of market time on, no symbol spends more than 1 % of the
//!   time in PUMP or in MANIPULATED, the global regime never reaches PANIC and is RISK_OFF at
//!   most 2 % of the time, and nothing is entered before the symbol's baselines are warm; and
//!   the judgement is live — on a set long enough to warm up, every symbol warms within 60 s,
//!   its score moves and its state machine reaches WATCHING.
//! * Injected: labelled events (pump, pump-and-dump, spoof wall, absorbing wall, news shock)
//!   placed into the real backgrounds over several seeds; recall and delay per kind.

mod common;

use scalper::config::Config;
use scalper::regime::global::GlobalRegime;
use scalper::regime::symbol::RegimeState;
use scalper::storage::replay::evaluate::{evaluate, DEFAULT_SKIP_MS};
use scalper::storage::replay::inject::{evaluate_injections, InjectKind, InjectPlan};
use std::sync::Arc;

const SETS: [&str; 4] = ["binance_um_0718", "bybit5_linear", "bybit1_linear", "bybit5_xrp_ob500"];

#[test]
fn no_misfires_on_ordinary_real_market_time_and_the_judgement_is_live() {
    let Some(dir) = common::realdata_dir() else { return };
    let cfg = Arc::new(Config::default());
    let mut live_sets = 0;
    for set in SETS {
        let path = dir.join(set);
        assert!(path.is_dir(), "{} missing from {}", set, dir.display());
        let events = common::realdata_events(&path);
        assert!(events.len() > 50, "{set}: only {} events", events.len());
        let r = evaluate(&events, cfg.clone(), DEFAULT_SKIP_MS);
        println!("== {set}\n{}", r.table());
        assert!(!r.symbols.is_empty(), "{set}: no symbol judged");
        for (sym, e) in &r.symbols {
            let pump = r.regime_share(sym, RegimeState::Pump);
            let manip = r.regime_share(sym, RegimeState::Manipulated);
            assert!(pump <= 0.01, "{set} {sym}: PUMP {:.1} % of the time", pump * 100.0);
            assert!(manip <= 0.01, "{set} {sym}: MANIPULATED {:.1} % of the time", manip * 100.0);
            assert_eq!(e.entries_before_warm, 0, "{set} {sym}: entered before warm-up");
        }
        assert!(r.global_changes.iter().all(|c| c.2 != "GLOBAL_PANIC"), "{set}: GLOBAL_PANIC: {:?}", r.global_changes);
        let risk_off = r.global_share_of(GlobalRegime::GlobalRiskOff);
        assert!(risk_off <= 0.02, "{set}: GLOBAL_RISK_OFF {:.1} % of the time", risk_off * 100.0);
        assert_eq!(r.entries_before_warm, 0, "{set}");
        // Liveness where the set is long enough for the warm-up and a minute of judgement.
        if r.span_s >= 120.0 {
            live_sets += 1;
            for (sym, e) in &r.symbols {
                let warm = e.warm_after_s.unwrap_or(f64::INFINITY);
                assert!(warm <= 61.0, "{set} {sym}: warm after {warm} s (at most 60 s of market time)");
                assert!(e.score_max > e.score_p50 && e.score_p50 > 0.0, "{set} {sym}: score does not move: {e:?}");
                assert!(
                    e.states_reached.iter().any(|s| s.starts_with("WATCHING")),
                    "{set} {sym}: never WATCHING: {:?}",
                    e.states_reached
                );
            }
        } else {
            // Too short to warm up: nothing may act on a cold baseline.
            for (sym, e) in &r.symbols {
                assert_eq!((e.score_max, e.entries), (0.0, 0), "{set} {sym}: acted while cold");
            }
        }
    }
    assert!(live_sets >= 1, "no set long enough to show the judgement live");
}

#[test]
fn injected_events_on_real_backgrounds_are_detected() {
    let Some(dir) = common::realdata_dir() else { return };
    let cfg = Arc::new(Config::default());
    let mut events = Vec::new();
    for set in SETS {
        let evs = common::realdata_events(&dir.join(set));
        let span = evs.last().map(|e| e.now_ms()).unwrap_or(0) - evs.first().map(|e| e.now_ms()).unwrap_or(0);
        // Only backgrounds long enough for a warm-up before the injection and a minute after.
        if span >= 150_000 {
            events.push((set, evs));
        }
    }
    assert!(!events.is_empty(), "no real background long enough for injections");
    let plan = InjectPlan { trials_per_kind: 4, seeds: vec![1, 2, 3], ..InjectPlan::default() };
    let mut all = Vec::new();
    for (set, evs) in &events {
        let r = evaluate_injections(evs, cfg.clone(), &plan);
        println!("== {set} (injected)\n{}", r.table());
        all.extend(r.trials);
    }
    assert!(all.len() >= 50, "only {} injected events", all.len());
    let of = |k: InjectKind| all.iter().filter(move |t| t.kind == k);
    let recall = |k: InjectKind| of(k).filter(|t| t.detected).count() as f64 / of(k).count().max(1) as f64;
    let median_delay_s = |k: InjectKind| {
        let mut d: Vec<i64> = of(k).filter_map(|t| t.delay_ms.filter(|_| t.detected)).collect();
        d.sort_unstable();
        d.get(d.len() / 2).map(|x| *x as f64 / 1000.0).unwrap_or(f64::INFINITY)
    };
    for k in [InjectKind::Pump, InjectKind::PumpAndDump] {
        assert!(of(k).count() >= 10, "{k:?}: {} trials", of(k).count());
        assert!(recall(k) >= 0.9, "{k:?} recall {:.2}", recall(k));
        assert!(median_delay_s(k) <= 10.0, "{k:?} median delay {:.1} s", median_delay_s(k));
    }
    assert!(of(InjectKind::SpoofWall).count() >= 10);
    assert!(recall(InjectKind::SpoofWall) >= 0.9, "spoof recall {:.2}", recall(InjectKind::SpoofWall));
    assert!(of(InjectKind::AbsorbingWall).count() >= 10);
    let eaten_called_spoof: u32 = of(InjectKind::AbsorbingWall).map(|t| t.spoofing_calls).sum();
    assert_eq!(eaten_called_spoof, 0, "an eaten absorbing wall was called SPOOFING");
    assert!(recall(InjectKind::NewsShock) >= 0.9, "news recall {:.2}", recall(InjectKind::NewsShock));
}
