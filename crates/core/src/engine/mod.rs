//! The deterministic core. [`Engine::on_event`] runs the ten pipeline steps in a fixed order for
//! every event and returns its [`Outputs`]:
//!
//! 1. market update → 2. microstructure → 3. features → 4. regime → 5. scoring →
//! 6. state machine → 7. risk & portfolio → 8. execution intents → 9. log records → 10. metrics.
//!
//! The steps are the methods of [`Pipeline`]; each later capability fills its step. Time comes in
//! with the event; the injected [`clock::Clock`] only measures tick latency for DEGRADED.

pub mod backpressure;
pub mod clock;
pub mod core;
pub mod desk;
pub mod event;
pub mod health;
pub mod markets;
pub mod output;
pub mod prefetch;
pub mod record;
pub mod second_work;
pub mod snapshot;
pub mod symbol_table;
pub mod synthetic;

use clock::Clock;
use event::{Event, EventKind};
use output::{Output, Outputs, StatusChange};
use record::EventRecord;
use serde::Serialize;

/// The ten steps, in pipeline order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Apply the event to market state (books, tape, tickers, universe).
    MarketUpdate,
    /// Candles, delta, volume.
    Microstructure,
    /// Feature engine.
    Features,
    /// Symbol and global regime.
    Regime,
    /// Long/short scores.
    Scoring,
    /// Per-symbol state machine.
    StateMachine,
    /// Risk and portfolio.
    Risk,
    /// Execution intents.
    Execution,
    /// Log records and events.
    Logging,
    /// Metric updates.
    Metrics,
}

impl Step {
    /// All steps in order.
    pub const ORDER: [Step; 10] = [
        Step::MarketUpdate,
        Step::Microstructure,
        Step::Features,
        Step::Regime,
        Step::Scoring,
        Step::StateMachine,
        Step::Risk,
        Step::Execution,
        Step::Logging,
        Step::Metrics,
    ];
}

/// What a step sees: the event, engine-level flags and the outputs so far.
pub struct Tick<'a> {
    /// The event being processed.
    pub event: &'a Event,
    /// True while DEGRADED: no new entries may be opened.
    pub degraded: bool,
    /// Outputs produced so far for this event.
    pub out: &'a mut Outputs,
}

/// The ten steps of the core. Each method is called once per event, in [`Step::ORDER`].
pub trait Pipeline {
    /// Step 1.
    fn market_update(&mut self, t: &mut Tick<'_>);
    /// Step 2.
    fn microstructure(&mut self, t: &mut Tick<'_>);
    /// Step 3.
    fn features(&mut self, t: &mut Tick<'_>);
    /// Step 4.
    fn regime(&mut self, t: &mut Tick<'_>);
    /// Step 5.
    fn scoring(&mut self, t: &mut Tick<'_>);
    /// Step 6.
    fn state_machine(&mut self, t: &mut Tick<'_>);
    /// Step 7.
    fn risk(&mut self, t: &mut Tick<'_>);
    /// Step 8.
    fn execution(&mut self, t: &mut Tick<'_>);
    /// Step 9.
    fn logging(&mut self, t: &mut Tick<'_>);
    /// Step 10.
    fn metrics(&mut self, t: &mut Tick<'_>);
    /// Starts loading into the cache the state that `next` (the event after the one being
    /// processed) will read, so that the memory fetches overlap this event's work instead of
    /// stalling the next one. A hint only: it must change nothing a step can observe.
    ///
    /// `distance` is how many events ahead `next` is: 1 for the very next event, 2 for the one
    /// after it, whose first loads (the addresses the rest of its state is found through) are
    /// started an event earlier so that they are in the cache when its own hint runs.
    fn prefetch(&self, _next: &Event, _distance: usize) {}
}

/// DEGRADED policy.
#[derive(Debug, Clone, Copy)]
pub struct DegradedPolicy {
    /// A tick slower than this (nanoseconds) enters DEGRADED.
    pub tick_budget_nanos: u64,
    /// Consecutive ticks within budget needed to leave DEGRADED.
    pub recover_ticks: u32,
}

impl DegradedPolicy {
    /// From the engine configuration.
    pub fn from_config(c: &crate::config::EngineConfig) -> Self {
        DegradedPolicy { tick_budget_nanos: c.degraded_tick_ms * 1_000_000, recover_ticks: c.degraded_recover_ticks }
    }
}

/// The core: a pipeline, a latency clock and engine-level flags.
pub struct Engine<P: Pipeline, C: Clock> {
    pipeline: P,
    clock: C,
    policy: DegradedPolicy,
    degraded: bool,
    /// DEGRADED as measured here (the applied flag follows [`EventKind::Degraded`] events).
    measured: bool,
    fast_ticks: u32,
    events: u64,
    last_tick_nanos: u64,
}

impl<P: Pipeline, C: Clock> Engine<P, C> {
    /// New engine.
    pub fn new(pipeline: P, clock: C, policy: DegradedPolicy) -> Self {
        Engine {
            pipeline,
            clock,
            policy,
            degraded: false,
            measured: false,
            fast_ticks: 0,
            events: 0,
            last_tick_nanos: 0,
        }
    }

    /// Processes one event through the ten steps, in order.
    pub fn on_event(&mut self, event: &Event) -> Outputs {
        self.on_event_ahead(event, [None, None])
    }

    /// [`Engine::on_event`] for `event` when the caller already holds the events queued behind
    /// it (`ahead[0]` next, `ahead[1]` the one after): inside the measured tick, the state they
    /// will read is prefetched first ([`Pipeline::prefetch`]: the next event's in full, the
    /// following one's headers), so those memory fetches overlap `event`'s work instead of
    /// stalling theirs (the core pipeline acts on the hints only with `engine.prefetch` on).
    /// Outputs are exactly those of `on_event(event)`: the hint changes timing, never a
    /// decision.
    pub fn on_event_ahead(&mut self, event: &Event, ahead: [Option<&Event>; 2]) -> Outputs {
        let mut out = Outputs::default();
        if let EventKind::Degraded { on, tick_ns } = event.kind {
            self.apply_degraded(on, tick_ns, event, &mut out);
        }
        let start = self.clock.now_nanos();
        for (i, n) in ahead.into_iter().enumerate() {
            if let Some(n) = n {
                self.pipeline.prefetch(n, i + 1);
            }
        }
        {
            let mut t = Tick { event, degraded: self.degraded, out: &mut out };
            let p = &mut self.pipeline;
            p.market_update(&mut t);
            p.microstructure(&mut t);
            p.features(&mut t);
            p.regime(&mut t);
            p.scoring(&mut t);
            p.state_machine(&mut t);
            p.risk(&mut t);
            p.execution(&mut t);
            p.logging(&mut t);
            p.metrics(&mut t);
        }
        let took = self.clock.now_nanos().saturating_sub(start);
        self.last_tick_nanos = took;
        self.events += 1;
        self.update_degraded(took, event, &mut out);
        out
    }

    /// Measures: a tick over budget asks for DEGRADED, enough fast ticks in a row ask to leave
    /// it ([`StatusChange`] outputs). The edge turns each request into an
    /// [`EventKind::Degraded`] input, which is what actually changes the flag (so a recorded
    /// stream replays it exactly, whatever the replaying machine's speed).
    fn update_degraded(&mut self, took: u64, _event: &Event, out: &mut Outputs) {
        if took > self.policy.tick_budget_nanos {
            self.fast_ticks = 0;
            if !self.measured {
                self.measured = true;
                tracing::warn!(tick_ms = took as f64 / 1e6, "tick over budget: asking for DEGRADED (no new entries)");
                out.push(Output::Status(StatusChange::DegradedEnter));
            }
        } else if self.measured {
            self.fast_ticks += 1;
            if self.fast_ticks >= self.policy.recover_ticks {
                self.measured = false;
                self.fast_ticks = 0;
                tracing::info!("tick latency back within budget: asking to leave DEGRADED");
                out.push(Output::Status(StatusChange::DegradedExit));
            }
        }
    }

    fn apply_degraded(&mut self, on: bool, tick_ns: u64, event: &Event, out: &mut Outputs) {
        if on == self.degraded {
            return;
        }
        self.degraded = on;
        let rec = if on {
            EventRecord::DegradedEnter { tick_ns, budget_ns: self.policy.tick_budget_nanos }
        } else {
            EventRecord::DegradedExit
        };
        out.record(None, event.now_ms(), rec);
    }

    /// True while DEGRADED.
    pub fn is_degraded(&self) -> bool {
        self.degraded
    }
    /// Events processed so far.
    pub fn events_processed(&self) -> u64 {
        self.events
    }
    /// Latency of the last tick in nanoseconds.
    pub fn last_tick_nanos(&self) -> u64 {
        self.last_tick_nanos
    }
    /// The pipeline (read access for the edges' snapshots).
    pub fn pipeline(&self) -> &P {
        &self.pipeline
    }
    /// The pipeline, mutable.
    pub fn pipeline_mut(&mut self) -> &mut P {
        &mut self.pipeline
    }
}
