//! `scalper evaluate`: how the judgement behaves on a recording — the share of market time each
//! symbol spends in every regime and pump phase, wall verdicts per minute, the global regime's
//! shares and changes, entries taken before the baselines were warm, the score distribution and
//! the trading states reached. With an [`super::inject::InjectPlan`], labelled events are injected
//! into the real background and scored for recall and detection delay
//! ([`super::inject::evaluate_injections`]).
//!
//! Time shares are sampled once per `Timer(Second)` from the core's own state, counting only
//! from `skip_ms` of market time after the first event, so a long warm-up cannot hide a misfire.
//! The core is the real one (the same code `run` and `replay` use); nothing here changes it.

use scalper_core::config::Config;
use scalper_core::domain::{Symbol, TimeMs};
use scalper_core::engine::clock::FrozenClock;
use scalper_core::engine::core::CorePipeline;
use scalper_core::engine::event::{Event, EventKind, TimerKind};
use scalper_core::engine::output::{Output, Outputs};
use scalper_core::engine::Engine;
use scalper_core::features::PumpState;
use scalper_core::regime::global::GlobalRegime;
use scalper_core::regime::symbol::RegimeState;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Market time after the first event from which time shares and misfires are counted, ms.
pub const DEFAULT_SKIP_MS: TimeMs = 60_000;

/// Figures of one symbol.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SymbolEval {
    /// Seconds sampled after the skip.
    pub seconds: u64,
    /// Share of those seconds per symbol regime (`NORMAL`, `PUMP`, …), [0, 1].
    pub regime_share: BTreeMap<&'static str, f64>,
    /// Share per pump phase, [0, 1].
    pub pump_share: BTreeMap<&'static str, f64>,
    /// Regime changes (all, including during the skip).
    pub regime_changes: u64,
    /// SPOOFING verdicts (whole recording).
    pub spoof_verdicts: u64,
    /// ABSORBING verdicts (whole recording).
    pub absorbing_verdicts: u64,
    /// Wall verdicts per minute of market time.
    pub verdicts_per_min: f64,
    /// Entries taken.
    pub entries: u64,
    /// Entries taken while the symbol's baselines were cold.
    pub entries_before_warm: u64,
    /// Market time from the first event until the baselines were warm, seconds.
    pub warm_after_s: Option<f64>,
    /// Best of the long and short score, sampled per warm second after the skip: p50.
    pub score_p50: f64,
    pub score_p90: f64,
    pub score_p99: f64,
    pub score_max: f64,
    /// Trading states the symbol's machine went through.
    pub states_reached: BTreeSet<String>,
    /// The first SPOOFING verdicts and a few ABSORBING ones as logged (at most [`VERDICTS_KEPT`]),
    /// to see why a wall was called.
    pub verdicts: Vec<serde_json::Value>,
}

/// Wall verdicts kept per symbol in the report.
pub const VERDICTS_KEPT: usize = 50;

/// What `scalper evaluate` reports.
#[derive(Debug, Clone, Default, Serialize)]
pub struct EvalReport {
    /// Events fed to the core.
    pub events: u64,
    /// Market time from the first to the last event, seconds.
    pub span_s: f64,
    /// Market time counted (after the skip), seconds.
    pub counted_s: f64,
    /// Skip at the start, seconds.
    pub skip_s: f64,
    pub symbols: BTreeMap<String, SymbolEval>,
    /// Share of the counted seconds per global regime, [0, 1].
    pub global_share: BTreeMap<&'static str, f64>,
    /// Global regime changes: time (ms), from, to, reason.
    pub global_changes: Vec<(TimeMs, String, String, String)>,
    /// Entries taken before the symbol was warm (all symbols).
    pub entries_before_warm: u64,
}

#[derive(Default)]
struct SymAcc {
    seconds: u64,
    regime: BTreeMap<&'static str, u64>,
    pump: BTreeMap<&'static str, u64>,
    regime_changes: u64,
    spoof: u64,
    absorbing: u64,
    entries: u64,
    entries_cold: u64,
    warm_at: Option<TimeMs>,
    scores: Vec<f64>,
    states: BTreeSet<String>,
    verdicts: Vec<serde_json::Value>,
}

/// Feeds events to a fresh core and accumulates the evaluation. Usable as a building block
/// (the injection harness drives one per trial).
pub struct Evaluator {
    engine: Engine<CorePipeline, FrozenClock>,
    skip_ms: TimeMs,
    first_ms: Option<TimeMs>,
    last_ms: Option<TimeMs>,
    events: u64,
    syms: BTreeMap<Symbol, SymAcc>,
    global: BTreeMap<&'static str, u64>,
    global_seconds: u64,
    global_changes: Vec<(TimeMs, String, String, String)>,
}

fn regime_label(r: RegimeState) -> &'static str {
    r.as_str()
}

impl Evaluator {
    /// A fresh core with `cfg`; shares count from `skip_ms` after the first event.
    pub fn new(cfg: Arc<Config>, skip_ms: TimeMs) -> Self {
        Evaluator {
            engine: super::replay_engine(cfg),
            skip_ms,
            first_ms: None,
            last_ms: None,
            events: 0,
            syms: BTreeMap::new(),
            global: BTreeMap::new(),
            global_seconds: 0,
            global_changes: Vec::new(),
        }
    }

    /// The core (to read its state).
    pub fn core(&self) -> &CorePipeline {
        self.engine.pipeline()
    }

    /// Feeds one event; returns the core's outputs for the caller to inspect.
    pub fn feed(&mut self, ev: &Event) -> Outputs {
        let now = ev.now_ms();
        let first = *self.first_ms.get_or_insert(now);
        self.last_ms = Some(now);
        self.events += 1;
        let out = self.engine.on_event(ev);
        for o in &out.items {
            let Output::Record(r) = o else { continue };
            let body = &r.body;
            let sym = r.symbol.clone();
            if let Some(kind) = body.get("kind").and_then(|k| k.as_str()) {
                let Some(s) = sym else { continue };
                let acc = self.syms.entry(s).or_default();
                match kind {
                    "WALL" => {
                        match body.get("outcome").and_then(|v| v.as_str()) {
                            Some("SPOOFING") => acc.spoof += 1,
                            Some("ABSORBING") => acc.absorbing += 1,
                            _ => {}
                        }
                        // SPOOFING verdicts are the ones worth reading: keep those first.
                        let spoofing = body.get("outcome").and_then(|v| v.as_str()) == Some("SPOOFING");
                        if acc.verdicts.len() < VERDICTS_KEPT && (spoofing || acc.absorbing <= 5) {
                            acc.verdicts.push(body.clone());
                        }
                    }
                    "REGIME" => acc.regime_changes += 1,
                    _ => {}
                }
                continue;
            }
            match body.get("event").and_then(|e| e.as_str()) {
                Some("ENTRY") => {
                    if let Some(s) = sym {
                        let warm = self.engine.pipeline().symbol(&s).is_some_and(|m| m.intel.snapshot().baseline_warm);
                        let acc = self.syms.entry(s).or_default();
                        acc.entries += 1;
                        if !warm {
                            acc.entries_cold += 1;
                        }
                    }
                }
                Some("STATE") => {
                    if let (Some(s), Some(to)) =
                        (sym, body.get("transition").and_then(|t| t.get("to")).and_then(|v| v.as_str()))
                    {
                        self.syms.entry(s).or_default().states.insert(to.to_string());
                    }
                }
                Some("GLOBAL_REGIME") => {
                    let g = |k: &str| body.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string();
                    self.global_changes.push((r.ts_ms, g("from"), g("to"), g("reason")));
                }
                _ => {}
            }
        }
        if matches!(ev.kind, EventKind::Timer(TimerKind::Second)) {
            self.sample(now, now - first >= self.skip_ms);
        }
        out
    }

    fn sample(&mut self, now: TimeMs, counted: bool) {
        let core = self.engine.pipeline();
        let first = self.first_ms.unwrap_or(now);
        for (s, m) in core.symbols() {
            let acc = self.syms.entry(s.clone()).or_default();
            let f = m.intel.snapshot();
            if f.baseline_warm && acc.warm_at.is_none() {
                acc.warm_at = Some(now - first);
            }
            if !counted {
                continue;
            }
            acc.seconds += 1;
            *acc.regime.entry(regime_label(m.intel.regime().state)).or_default() += 1;
            *acc.pump.entry(f.pump_state.as_str()).or_default() += 1;
            if f.baseline_warm {
                acc.scores.push(m.score.long.max(m.score.short));
            }
        }
        if counted {
            self.global_seconds += 1;
            *self.global.entry(core.global_regime().as_str()).or_default() += 1;
        }
    }

    /// The report so far.
    pub fn report(&self) -> EvalReport {
        let span_ms = match (self.first_ms, self.last_ms) {
            (Some(a), Some(b)) => b - a,
            _ => 0,
        };
        let minutes = (span_ms as f64 / 60_000.0).max(1.0 / 60.0);
        let mut symbols = BTreeMap::new();
        let mut before_warm = 0;
        for (s, a) in &self.syms {
            let share = |m: &BTreeMap<&'static str, u64>| -> BTreeMap<&'static str, f64> {
                m.iter().map(|(k, v)| (*k, *v as f64 / a.seconds.max(1) as f64)).collect()
            };
            let mut sc = a.scores.clone();
            sc.sort_by(|x, y| x.total_cmp(y));
            let q = |p: f64| -> f64 {
                if sc.is_empty() {
                    0.0
                } else {
                    sc[((sc.len() - 1) as f64 * p).round() as usize]
                }
            };
            before_warm += a.entries_cold;
            symbols.insert(
                s.as_str().to_string(),
                SymbolEval {
                    seconds: a.seconds,
                    regime_share: share(&a.regime),
                    pump_share: share(&a.pump),
                    regime_changes: a.regime_changes,
                    spoof_verdicts: a.spoof,
                    absorbing_verdicts: a.absorbing,
                    verdicts_per_min: (a.spoof + a.absorbing) as f64 / minutes,
                    entries: a.entries,
                    entries_before_warm: a.entries_cold,
                    warm_after_s: a.warm_at.map(|t| t as f64 / 1000.0),
                    score_p50: q(0.5),
                    score_p90: q(0.9),
                    score_p99: q(0.99),
                    score_max: sc.last().copied().unwrap_or(0.0),
                    states_reached: a.states.clone(),
                    verdicts: a.verdicts.clone(),
                },
            );
        }
        let gs = self.global_seconds.max(1) as f64;
        EvalReport {
            events: self.events,
            span_s: span_ms as f64 / 1000.0,
            counted_s: self.global_seconds as f64,
            skip_s: self.skip_ms as f64 / 1000.0,
            symbols,
            global_share: self.global.iter().map(|(k, v)| (*k, *v as f64 / gs)).collect(),
            global_changes: self.global_changes.clone(),
            entries_before_warm: before_warm,
        }
    }
}

/// Evaluates `events` on a fresh core built from `cfg`.
pub fn evaluate(events: &[Event], cfg: Arc<Config>, skip_ms: TimeMs) -> EvalReport {
    let mut e = Evaluator::new(cfg, skip_ms);
    for ev in events {
        e.feed(ev);
    }
    e.report()
}

/// Share of `key` in a share map (0 when absent).
pub fn share(m: &BTreeMap<&'static str, f64>, key: &str) -> f64 {
    m.get(key).copied().unwrap_or(0.0)
}

impl EvalReport {
    /// Share of the counted time `sym` spent in `regime`.
    pub fn regime_share(&self, sym: &str, regime: RegimeState) -> f64 {
        self.symbols.get(sym).map(|s| share(&s.regime_share, regime.as_str())).unwrap_or(0.0)
    }
    /// Share of the counted time in `g`.
    pub fn global_share_of(&self, g: GlobalRegime) -> f64 {
        share(&self.global_share, g.as_str())
    }
    /// Share of the counted time `sym` spent in pump phase `p`.
    pub fn pump_share(&self, sym: &str, p: PumpState) -> f64 {
        self.symbols.get(sym).map(|s| share(&s.pump_share, p.as_str())).unwrap_or(0.0)
    }

    /// A human table.
    pub fn table(&self) -> String {
        use std::fmt::Write;
        let mut o = String::new();
        let _ = writeln!(
            o,
            "{} events, {:.0} s of market time, {:.0} s counted (after {:.0} s)",
            self.events, self.span_s, self.counted_s, self.skip_s
        );
        let pct = |x: f64| format!("{:5.1}%", x * 100.0);
        let _ = writeln!(
            o,
            "\n{:<14} {:>6} {:>7} {:>7} {:>7} {:>7} {:>7} {:>8} {:>6} {:>6} {:>6} {:>6} {:>8} {:>6}",
            "symbol",
            "warm s",
            "NORMAL",
            "PUMP",
            "MANIP",
            "NEWS",
            "COOL",
            "pumping",
            "spoof",
            "absorb",
            "wall/m",
            "entry",
            "cold-ent",
            "score"
        );
        for (s, e) in &self.symbols {
            let r = |k: &str| pct(share(&e.regime_share, k));
            let pumping =
                share(&e.pump_share, "PUMPING") + share(&e.pump_share, "BLOWOFF") + share(&e.pump_share, "DUMP");
            let _ = writeln!(
                o,
                "{:<14} {:>6} {:>7} {:>7} {:>7} {:>7} {:>7} {:>8} {:>6} {:>6} {:>6.1} {:>6} {:>8} {:>6.1}",
                s,
                e.warm_after_s.map(|w| format!("{w:.0}")).unwrap_or_else(|| "cold".into()),
                r("NORMAL"),
                r("PUMP"),
                r("MANIPULATED"),
                r("NEWS_DRIVEN"),
                r("COOLDOWN"),
                pct(pumping),
                e.spoof_verdicts,
                e.absorbing_verdicts,
                e.verdicts_per_min,
                e.entries,
                e.entries_before_warm,
                e.score_p90,
            );
        }
        let _ = writeln!(o, "\nscore (best side, warm seconds): symbol p50 / p90 / p99 / max; states reached");
        for (s, e) in &self.symbols {
            let st: Vec<&str> = e.states_reached.iter().map(String::as_str).collect();
            let _ = writeln!(
                o,
                "  {:<14} {:5.1} / {:5.1} / {:5.1} / {:5.1}   {}",
                s,
                e.score_p50,
                e.score_p90,
                e.score_p99,
                e.score_max,
                if st.is_empty() { "-".to_string() } else { st.join(" ") }
            );
        }
        let _ = writeln!(
            o,
            "\nglobal: NORMAL {}  RISK_OFF {}  PANIC {}   entries before warm-up: {}",
            pct(share(&self.global_share, "GLOBAL_NORMAL")),
            pct(share(&self.global_share, "GLOBAL_RISK_OFF")),
            pct(share(&self.global_share, "GLOBAL_PANIC")),
            self.entries_before_warm
        );
        for (t, from, to, why) in &self.global_changes {
            let _ = writeln!(o, "  {t} {from} -> {to}: {why}");
        }
        o
    }
}
