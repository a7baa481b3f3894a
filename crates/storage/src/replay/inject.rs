//! Labelled events injected into a real recorded background, for `scalper evaluate --inject` and
//! the real-data tests: a pump, a pump-and-dump, a spoof wall placed then pulled as the price
//! approaches, an absorbing wall eaten by sellers (or buyers), and a news shock (operator flag plus
//! a price drop). Each trial runs a fresh core on a slice of one symbol's real stream
//! (`lead_ms` before the injection, so the baselines warm up on real data, and `tail_ms` after),
//! and records whether and when the judgement saw the event.
//!
//! How an injection rewrites the real stream of its symbol (exact integer ticks throughout):
//! * the injector keeps the real book from the recording's own snapshots and deltas;
//! * a price move is a shift of every price by whole ticks: when the shift changes, a snapshot
//!   of the shifted real book is emitted (Bybit does the same after a resubscribe), and every
//!   later real delta and trade is shifted too; the aggressive trades of the move are added on
//!   top (taker buys at the ask while rising, sells at the bid while falling);
//! * a wall is an extra size on top of the real level at its price, added to every emitted
//!   update that touches that price, and removed by a delta when pulled or eaten;
//! * book updates are renumbered (`u` contiguous) because the stream gained updates.
//!
//! Where a spoof wall goes is chosen by looking ahead in the real touch path: at a distance the
//! price will approach within seconds, and pulled when the touch comes within one tick — the
//! canonical spoof. The placements, sizes and speeds are drawn from a seeded generator, so a
//! report is reproducible.
mod injector;

use super::evaluate::Evaluator;
use injector::{background, injected_stream, spoof_spot, Background, RealBook, Script};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use scalper_core::config::Config;
use scalper_core::domain::{Price, Qty, Side, Symbol, TimeMs};
use scalper_core::engine::event::{Event, EventKind};
use scalper_core::engine::output::{Output, Outputs};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The kinds of labelled event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InjectKind {
    /// A fast rise on heavy buying that holds.
    Pump,
    /// A rise, then a fall through the start on heavy selling.
    PumpAndDump,
    /// A large wall near the touch, pulled as the price approaches.
    SpoofWall,
    /// A large wall at the touch, eaten by aggressive orders.
    AbsorbingWall,
    /// A manual news flag and a sharp drop.
    NewsShock,
}

impl InjectKind {
    pub const ALL: [InjectKind; 5] = [
        InjectKind::Pump,
        InjectKind::PumpAndDump,
        InjectKind::SpoofWall,
        InjectKind::AbsorbingWall,
        InjectKind::NewsShock,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            InjectKind::Pump => "pump",
            InjectKind::PumpAndDump => "pump_and_dump",
            InjectKind::SpoofWall => "spoof_wall",
            InjectKind::AbsorbingWall => "absorbing_wall",
            InjectKind::NewsShock => "news_shock",
        }
    }
}

/// What to inject.
#[derive(Debug, Clone)]
pub struct InjectPlan {
    /// Trials per kind and seed.
    pub trials_per_kind: usize,
    pub seeds: Vec<u64>,
    pub kinds: Vec<InjectKind>,
    /// Real background before the injection (covers the warm-up), ms.
    pub lead_ms: TimeMs,
    /// Background after the injection, ms.
    pub tail_ms: TimeMs,
}

impl Default for InjectPlan {
    fn default() -> Self {
        InjectPlan {
            trials_per_kind: 2,
            seeds: vec![1, 2, 3],
            kinds: InjectKind::ALL.to_vec(),
            lead_ms: 75_000,
            tail_ms: 60_000,
        }
    }
}

/// One injected event and what the judgement made of it.
#[derive(Debug, Clone, Serialize)]
pub struct Trial {
    pub kind: InjectKind,
    /// Symbol of the background.
    pub symbol: String,
    pub seed: u64,
    /// Injection time (start of the move, wall placement or news), ms.
    pub t0_ms: TimeMs,
    /// What was injected, in words.
    pub what: String,
    /// The judgement saw it (for the absorbing wall: it was never called SPOOFING).
    pub detected: bool,
    /// From the reference time (move start; pull for a spoof; dump start for the dump leg) to
    /// the detection, ms.
    pub delay_ms: Option<i64>,
    /// Absorbing wall only: SPOOFING verdicts at its price (must be 0).
    pub spoofing_calls: u32,
    /// Why it was not detected, or a note.
    pub note: String,
}

/// Recall and delays of one kind.
#[derive(Debug, Clone, Default, Serialize)]
pub struct KindStats {
    pub trials: usize,
    pub detected: usize,
    /// detected / trials.
    pub recall: f64,
    /// Median detection delay, seconds.
    pub median_delay_s: Option<f64>,
    /// Largest detection delay, seconds.
    pub max_delay_s: Option<f64>,
    /// SPOOFING calls on absorbing walls (must be 0).
    pub spoofing_calls: u32,
}

/// All trials.
#[derive(Debug, Clone, Default, Serialize)]
pub struct InjectionReport {
    pub kinds: BTreeMap<InjectKind, KindStats>,
    /// Every trial.
    pub trials: Vec<Trial>,
}

impl InjectionReport {
    fn from_trials(trials: Vec<Trial>) -> Self {
        let mut kinds: BTreeMap<InjectKind, KindStats> = BTreeMap::new();
        let mut delays: BTreeMap<InjectKind, Vec<i64>> = BTreeMap::new();
        for t in &trials {
            let k = kinds.entry(t.kind).or_default();
            k.trials += 1;
            k.detected += t.detected as usize;
            k.spoofing_calls += t.spoofing_calls;
            if let (true, Some(d)) = (t.detected, t.delay_ms) {
                delays.entry(t.kind).or_default().push(d);
            }
        }
        for (kind, k) in kinds.iter_mut() {
            k.recall = k.detected as f64 / k.trials.max(1) as f64;
            if let Some(d) = delays.get_mut(kind) {
                d.sort_unstable();
                if !d.is_empty() {
                    k.median_delay_s = Some(d[d.len() / 2] as f64 / 1000.0);
                    k.max_delay_s = d.last().map(|x| *x as f64 / 1000.0);
                }
            }
        }
        InjectionReport { kinds, trials }
    }

    /// A human table.
    pub fn table(&self) -> String {
        use std::fmt::Write;
        let mut o = String::new();
        let _ = writeln!(
            o,
            "{:<16} {:>6} {:>8} {:>7} {:>12} {:>9} {:>10}",
            "injected", "trials", "detected", "recall", "median delay", "max delay", "spoof-call"
        );
        for (k, s) in &self.kinds {
            let d = |x: Option<f64>| x.map(|v| format!("{v:.1} s")).unwrap_or_else(|| "-".into());
            let _ = writeln!(
                o,
                "{:<16} {:>6} {:>8} {:>6.0}% {:>12} {:>9} {:>10}",
                k.as_str(),
                s.trials,
                s.detected,
                s.recall * 100.0,
                d(s.median_delay_s),
                d(s.max_delay_s),
                s.spoofing_calls
            );
        }
        for t in self.trials.iter().filter(|t| !t.detected) {
            let _ = writeln!(
                o,
                "  missed: {} {} seed {} at {}: {} ({})",
                t.kind.as_str(),
                t.symbol,
                t.seed,
                t.t0_ms,
                t.what,
                t.note
            );
        }
        o
    }
}
/// What to look for in the outputs.
enum Expect {
    /// Pump phase PUMPING / BLOWOFF (or regime PUMP) after `t0`; with `dump_at`, then DUMP after it.
    Pump { t0: TimeMs, dump_at: Option<TimeMs> },
    /// A SPOOFING verdict at the wall's price after `pull` (within 5 s).
    Spoof { price: Price, pull: TimeMs },
    /// No SPOOFING verdict at the wall's price.
    Absorb { price: Price },
    /// Regime NEWS_DRIVEN after `t0`.
    News { t0: TimeMs },
}

fn record_bodies(out: &Outputs) -> impl Iterator<Item = &serde_json::Value> {
    out.items.iter().filter_map(|o| match o {
        Output::Record(r) => Some(&r.body),
        _ => None,
    })
}

fn run_trial(stream: &[Event], sym: &Symbol, cfg: &Arc<Config>, expect: &Expect) -> (bool, Option<i64>, u32, String) {
    let mut ev = Evaluator::new(cfg.clone(), 0);
    let (mut first_hit, mut dump_hit, mut spoof_calls): (Option<TimeMs>, Option<TimeMs>, u32) = (None, None, 0);
    let mut warm_at_t0 = None;
    for e in stream {
        let out = ev.feed(e);
        let now = e.now_ms();
        if warm_at_t0.is_none() {
            let t0 = match expect {
                Expect::Pump { t0, .. } | Expect::News { t0 } => *t0,
                Expect::Spoof { pull, .. } => *pull,
                Expect::Absorb { .. } => 0,
            };
            if now >= t0 {
                warm_at_t0 = Some(ev.core().symbol(sym).is_some_and(|m| m.intel.snapshot().baseline_warm));
            }
        }
        for b in record_bodies(&out) {
            let kind = b.get("kind").and_then(|k| k.as_str()).unwrap_or("");
            let to = b.get("to").and_then(|k| k.as_str()).unwrap_or("");
            match expect {
                Expect::Pump { t0, dump_at } => {
                    if now >= *t0
                        && first_hit.is_none()
                        && ((kind == "PUMP" && matches!(to, "PUMPING" | "BLOWOFF"))
                            || (kind == "REGIME" && to == "PUMP"))
                    {
                        first_hit = Some(now);
                    }
                    if let Some(d0) = dump_at {
                        if now >= *d0 && dump_hit.is_none() && kind == "PUMP" && to == "DUMP" {
                            dump_hit = Some(now);
                        }
                    }
                }
                Expect::Spoof { price, .. } | Expect::Absorb { price } => {
                    if kind == "WALL" && b.get("outcome").and_then(|v| v.as_str()) == Some("SPOOFING") {
                        let p = b.get("price").and_then(|v| v.as_str()).and_then(|s| Price::parse(s).ok());
                        if p == Some(*price) {
                            spoof_calls += 1;
                            if let Expect::Spoof { pull, .. } = expect {
                                if now >= *pull && now - pull <= 5_000 && first_hit.is_none() {
                                    first_hit = Some(now);
                                }
                            }
                        }
                    }
                }
                Expect::News { t0 } => {
                    if now >= *t0 && first_hit.is_none() && kind == "REGIME" && to == "NEWS_DRIVEN" {
                        first_hit = Some(now);
                    }
                }
            }
        }
    }
    let warm_note = if warm_at_t0 == Some(false) { "baselines still cold at the injection; " } else { "" };
    match expect {
        Expect::Pump { t0, dump_at } => {
            let ok = first_hit.is_some() && (dump_at.is_none() || dump_hit.is_some());
            let note = match (first_hit, dump_at, dump_hit) {
                (None, _, _) => format!("{warm_note}no PUMPING"),
                (Some(_), Some(_), None) => format!("{warm_note}PUMPING seen, no DUMP"),
                _ => String::new(),
            };
            (ok, first_hit.map(|h| h - t0), 0, note)
        }
        Expect::Spoof { pull, .. } => (
            first_hit.is_some(),
            first_hit.map(|h| h - pull),
            spoof_calls,
            if first_hit.is_none() { format!("{warm_note}no SPOOFING verdict at the wall") } else { String::new() },
        ),
        Expect::Absorb { .. } => (
            spoof_calls == 0,
            None,
            spoof_calls,
            if spoof_calls > 0 { "called SPOOFING".into() } else { String::new() },
        ),
        Expect::News { t0 } => (
            first_hit.is_some(),
            first_hit.map(|h| h - t0),
            0,
            if first_hit.is_none() { format!("{warm_note}no NEWS_DRIVEN") } else { String::new() },
        ),
    }
}

/// Runs every trial of `plan` on `events` (a real background) and reports recall and delays.
/// Symbols need at least `lead_ms + tail_ms` of book data to be used.
pub fn evaluate_injections(events: &[Event], cfg: Arc<Config>, plan: &InjectPlan) -> InjectionReport {
    evaluate_injections_with_progress(events, cfg, plan, &mut |_, _| {})
}

/// [`evaluate_injections`] calling `progress(trials started, trials planned)` before each trial
/// (a trial skipped for lack of a fitting spot still counts as started).
pub fn evaluate_injections_with_progress(
    events: &[Event],
    cfg: Arc<Config>,
    plan: &InjectPlan,
    progress: &mut dyn FnMut(u64, u64),
) -> InjectionReport {
    let planned = (plan.seeds.len() * plan.kinds.len() * plan.trials_per_kind) as u64;
    let mut started = 0u64;
    let mut syms: Vec<Symbol> = Vec::new();
    for ev in events {
        if let EventKind::Universe(list) = &ev.kind {
            for i in list {
                if !syms.contains(&i.symbol) {
                    syms.push(i.symbol.clone());
                }
            }
        }
    }
    syms.sort();
    let bgs: Vec<(Symbol, Background)> = syms
        .iter()
        .filter_map(|s| background(events, s).map(|b| (s.clone(), b)))
        .filter(|(_, b)| b.last_ms - b.first_ms >= plan.lead_ms + plan.tail_ms)
        .collect();
    let mut trials = Vec::new();
    if bgs.is_empty() {
        return InjectionReport::from_trials(trials);
    }
    for &seed in &plan.seeds {
        for (ki, &kind) in plan.kinds.iter().enumerate() {
            for n in 0..plan.trials_per_kind {
                progress(started, planned);
                started += 1;
                let mut rng = SmallRng::seed_from_u64(seed.wrapping_mul(1_000_003) ^ ((ki as u64) << 32) ^ n as u64);
                let (sym, bg) = &bgs[(n + ki + seed as usize) % bgs.len()];
                let lo = bg.first_ms + plan.lead_ms;
                let hi = bg.last_ms - plan.tail_ms;
                let t0 = lo + rng.random_range(0..=(hi - lo).max(0));
                let Some((rb, ra)) = bg.path.iter().find(|x| x.t >= t0).map(|x| (x.bid, x.ask)) else { continue };
                let mid = (rb + ra) as f64 / 2.0;
                let ticks_of_pct = |pct: f64| ((mid * pct / 100.0).round() as i64).max(1);
                let mut real = RealBook::default();
                for ev in events.iter().take_while(|e| e.now_ms() < t0) {
                    if let EventKind::Book(b) = &ev.kind {
                        if &b.symbol == sym {
                            real.apply(b, bg.tick);
                        }
                    }
                }
                let median = real.median_level().max(bg.tick.to_f64().max(1e-8));
                let wall_size = |rng: &mut SmallRng| {
                    let mult: f64 = rng.random_range(30.0..60.0);
                    Qty::from_f64((median * mult).max(real.max_near(10) * 1.5))
                };
                let vol_per_s = bg.volume * rng.random_range(6.0..12.0);
                let (script, expect, what, from, to) = match kind {
                    InjectKind::Pump | InjectKind::PumpAndDump => {
                        let pct: f64 = rng.random_range(2.0..6.0);
                        let dur = rng.random_range(15_000..45_000);
                        let rise = ticks_of_pct(pct);
                        let (dump_at, dump_ms, fall) = if kind == InjectKind::PumpAndDump {
                            let at = t0 + dur + rng.random_range(3_000..10_000);
                            (
                                Some(at),
                                rng.random_range(5_000..15_000),
                                (rise as f64 * rng.random_range(1.0..1.3)) as i64,
                            )
                        } else {
                            (None, 0, 0)
                        };
                        let what = format!(
                            "+{pct:.1} % over {:.0} s{}",
                            dur as f64 / 1000.0,
                            if dump_at.is_some() { ", then dumped" } else { "" }
                        );
                        let end = dump_at.map(|d| d + dump_ms).unwrap_or(t0 + dur) + 30_000;
                        (
                            Script::Move { t0, dur_ms: dur, rise, dump_at, dump_ms, fall, vol_per_s },
                            Expect::Pump { t0, dump_at },
                            what,
                            t0 - plan.lead_ms,
                            end.min(bg.last_ms + 1),
                        )
                    }
                    InjectKind::NewsShock => {
                        let pct: f64 = rng.random_range(1.5..3.0);
                        let dur = rng.random_range(3_000..6_000);
                        (
                            Script::Move {
                                t0,
                                dur_ms: dur,
                                rise: -ticks_of_pct(pct),
                                dump_at: None,
                                dump_ms: 0,
                                fall: 0,
                                vol_per_s,
                            },
                            Expect::News { t0 },
                            format!("HACK flag, −{pct:.1} % over {:.0} s", dur as f64 / 1000.0),
                            t0 - plan.lead_ms,
                            (t0 + 30_000).min(bg.last_ms + 1),
                        )
                    }
                    InjectKind::SpoofWall => {
                        let side = if rng.random_bool(0.5) { Side::Buy } else { Side::Sell };
                        let dist = rng.random_range(3..=5);
                        let found = spoof_spot(&bg.path, t0, side, dist)
                            .map(|x| (side, x))
                            .or_else(|| spoof_spot(&bg.path, t0, side.opposite(), dist).map(|x| (side.opposite(), x)));
                        let Some((side, (place, wall, pull))) = found else {
                            continue;
                        };
                        let size = wall_size(&mut rng);
                        (
                            Script::Wall {
                                side,
                                price: wall,
                                size,
                                t0: place,
                                pull: Some(pull),
                                eat_at: None,
                                eat_ms: 0,
                            },
                            Expect::Spoof { price: Price::from_ticks(wall, bg.tick), pull },
                            format!(
                                "{} wall at {} ({} × median), {dist} ticks out, pulled after {:.1} s",
                                if side == Side::Buy { "bid" } else { "ask" },
                                Price::from_ticks(wall, bg.tick),
                                (size.to_f64() / median).round(),
                                (pull - place) as f64 / 1000.0
                            ),
                            place - plan.lead_ms,
                            (pull + 20_000).min(bg.last_ms + 1),
                        )
                    }
                    InjectKind::AbsorbingWall => {
                        let side = if rng.random_bool(0.5) { Side::Buy } else { Side::Sell };
                        let price = if side == Side::Buy { rb } else { ra };
                        let size = wall_size(&mut rng);
                        let eat_at = t0 + rng.random_range(1_500..4_000);
                        let eat_ms = rng.random_range(1_000..3_000);
                        (
                            Script::Wall { side, price, size, t0, pull: None, eat_at: Some(eat_at), eat_ms },
                            Expect::Absorb { price: Price::from_ticks(price, bg.tick) },
                            format!(
                                "{} wall {} × median at the touch, eaten in {:.1} s",
                                if side == Side::Buy { "bid" } else { "ask" },
                                (size.to_f64() / median).round(),
                                eat_ms as f64 / 1000.0
                            ),
                            t0 - plan.lead_ms,
                            (eat_at + eat_ms + 20_000).min(bg.last_ms + 1),
                        )
                    }
                };
                let news = (kind == InjectKind::NewsShock).then_some((t0, 0.8, "HACK"));
                let stream = injected_stream(events, sym, bg, script, news, from.max(bg.first_ms), to);
                let (detected, delay_ms, spoofing_calls, note) = run_trial(&stream, sym, &cfg, &expect);
                let t0_ms = match expect {
                    Expect::Spoof { pull, .. } => pull,
                    _ => t0,
                };
                trials.push(Trial {
                    kind,
                    symbol: sym.as_str().to_string(),
                    seed,
                    t0_ms,
                    what,
                    detected,
                    delay_ms,
                    spoofing_calls,
                    note,
                });
            }
        }
    }
    InjectionReport::from_trials(trials)
}
