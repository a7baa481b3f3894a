//! The core loop: the only task that touches the engine. It takes every input from one
//! bounded channel (plus the reports it owes the core itself and the probes of tests), stamps
//! each event's sequence number, records it, runs the core, and carries the outputs to the edges:
//! records to the store and the event bus, feed commands to the public feed and the seeder, venue
//! commands to the exchange edge, status changes back in as events, and once a second the
//! snapshot and view the control plane reads.

use super::{dispatch_feed, event_label, LiveEngine, Probe};
use crate::engine::seeder::{SeedRequest, SeederHandle};
use scalper_bybit::bybit_private::venue::{refusal_report, BybitVenue};
use scalper_bybit::bybit_public::FeedHandle;
use scalper_bybit::clock::wall_ms;
use scalper_control::bus::EventBus;
use scalper_control::monitoring::metrics::Metrics;
use scalper_control::view::ControlView;
use scalper_core::domain::{Category, EventTime, Symbol, TimeMs};
use scalper_core::engine::event::{Event, EventKind, FeedState};
use scalper_core::engine::health::{HealthBoard, Status};
use scalper_core::engine::output::{FeedCommand, Output, StatusChange};
use scalper_core::engine::snapshot::EngineSnapshot;
use scalper_core::execution::venue::VenueReport;
use scalper_storage::json_store::StoreHandle;
use scalper_storage::operator_state::OperatorState;
use scalper_storage::recorder::Recorder;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

/// Everything the core loop owns or feeds; built by [`super::run`] once the edges are up.
pub(super) struct CoreLoop<'a> {
    pub engine: LiveEngine,
    /// Sequence number of the last event.
    pub seq: u64,
    pub recorder: Recorder,
    /// The operator's blacklist and news flags, persisted as they change.
    pub operator: OperatorState,
    /// Event time of the last published snapshot, ms.
    pub last_snapshot_ms: TimeMs,
    pub probes: mpsc::Receiver<Probe>,
    /// Keeps the probe channel open when no caller gave one.
    pub _no_probe_tx: mpsc::Sender<Probe>,
    /// Reports the loop itself owes the core (a venue command that could not even be queued,
    /// DEGRADED decisions), fed before the next input.
    pub loopback: VecDeque<Event>,
    pub in_rx: mpsc::Receiver<Event>,
    /// Inputs taken from `in_rx` up to two events early (only when already queued, and only
    /// with `engine.prefetch` on), so that the core can prefetch their state while it processes
    /// the current one; processed in order, after any loopback.
    pub ahead: VecDeque<Event>,
    pub shutdown: CancellationToken,
    pub store: StoreHandle,
    pub metrics: Arc<Metrics>,
    pub health: HealthBoard,
    pub bus: EventBus,
    /// 24 h turnover of the first ticker sweep: seeding order after Prime.
    pub turnover: Arc<Mutex<HashMap<Symbol, f64>>>,
    pub seeder: SeederHandle,
    pub feed: &'a FeedHandle,
    pub venue: Option<BybitVenue>,
    pub snap_tx: watch::Sender<EngineSnapshot>,
    /// Each symbol's category, for the shedder.
    pub cat_tx: watch::Sender<BTreeMap<Symbol, Category>>,
    pub view_tx: watch::Sender<Arc<ControlView>>,
}

impl CoreLoop<'_> {
    /// Runs until shutdown or until every input sender is gone, then saves the baselines.
    pub async fn run(mut self) {
        loop {
            let ev = tokio::select! {
                biased;
                _ = self.shutdown.cancelled() => break,
                Some(e) = async { self.loopback.pop_front() }, if !self.loopback.is_empty() => e,
                Some(p) = self.probes.recv() => {
                    p(&self.engine);
                    continue;
                }
                Some(e) = async { self.ahead.pop_front() }, if !self.ahead.is_empty() => e,
                ev = self.in_rx.recv() => match ev { Some(e) => e, None => break },
            };
            self.seq += 1;
            let mut ev = ev;
            ev.seq = self.seq;
            self.recorder.record(&ev);
            // The hints are used only with `engine.prefetch` on; otherwise nothing is taken early.
            while self.ahead.len() < 2 && self.engine.pipeline().config().engine.prefetch {
                // Never waits: only an input already queued is taken early.
                let Ok(e) = self.in_rx.try_recv() else { break };
                self.ahead.push_back(e);
            }
            let mut next = self.loopback.iter().chain(self.ahead.iter());
            let out = self.engine.on_event_ahead(&ev, [next.next(), next.next()]);
            if let EventKind::Control(cmd) = &ev.kind {
                let changed = self.operator.apply(cmd, ev.now_ms());
                self.operator.persist(changed, &self.store);
            }
            self.metrics.engine_events.with_label_values(&[event_label(&ev.kind)]).inc();
            self.metrics.tick_latency.observe(self.engine.last_tick_nanos() as f64 / 1e9);
            for o in out.items {
                match o {
                    Output::Record(r) => {
                        self.bus.publish_record(&r);
                        self.metrics.observe_record(&r);
                        let _ = self.store.try_append(r.kind, r.symbol.as_ref(), r.ts_ms, &r.body);
                    }
                    Output::Snapshot { kind, name, body } => {
                        let _ = self.store.try_set_snapshot(kind, &name, &body);
                    }
                    Output::Feed(cmd) => {
                        if let FeedCommand::Subscribe(subs) = &cmd {
                            // Newly subscribed symbols are known to the core now: seed them.
                            let batch = {
                                let t = self.turnover.lock().ok();
                                let u = self.engine.pipeline().universe();
                                subs.iter()
                                    .map(|(s, _)| SeedRequest {
                                        symbol: s.clone(),
                                        prime: u.get(s).is_some_and(|m| m.category == Category::Prime),
                                        turnover: t.as_ref().and_then(|m| m.get(s).copied()).unwrap_or(0.0),
                                    })
                                    .collect()
                            };
                            self.seeder.request(batch);
                        }
                        dispatch_feed(self.feed, cmd).await
                    }
                    Output::Venue(cmd) => {
                        let refused = match &self.venue {
                            Some(v) => v.try_send(cmd).err().map(|c| (c, "the exchange edge's queue is full")),
                            None => Some((cmd, "no private connector (no API credentials)")),
                        };
                        if let Some((cmd, why)) = refused {
                            tracing::error!(?cmd, why, "venue command refused");
                            if let Some(r) = refusal_report(&cmd, why) {
                                self.loopback.push_back(Event::new(
                                    0,
                                    EventTime::local(wall_ms()),
                                    EventKind::Venue(r),
                                ));
                            }
                        }
                    }
                    Output::Status(s) => match s {
                        // The measured latency crossed the budget: the decision becomes an input
                        // event (recorded), so the core applies it, and replay applies it, in order.
                        StatusChange::DegradedEnter | StatusChange::DegradedExit => {
                            let on = s == StatusChange::DegradedEnter;
                            self.metrics.degraded.set(i64::from(on));
                            let kind = EventKind::Degraded { on, tick_ns: self.engine.last_tick_nanos() };
                            self.loopback.push_back(Event::new(0, EventTime::local(wall_ms()), kind));
                        }
                        StatusChange::FeedRiskOffEnter => {
                            self.health.set("feed", Status::Down, "down too long: RISK_OFF")
                        }
                        StatusChange::FeedRiskOffExit => self.health.set("feed", Status::Up, "connected"),
                    },
                }
            }
            if let EventKind::Venue(VenueReport::Feed(state)) = &ev.kind {
                let st = match state {
                    FeedState::Connected => Status::Up,
                    FeedState::Reconnecting => Status::Degraded,
                    FeedState::Down => Status::Down,
                };
                self.health.set("private", st, format!("{state:?}"));
            }
            if let EventKind::Feed { connection: 0, state } = ev.kind {
                let st = match state {
                    FeedState::Connected => Status::Up,
                    FeedState::Reconnecting => Status::Degraded,
                    FeedState::Down => Status::Down,
                };
                self.health.set("feed", st, format!("{state:?}"));
            }
            if ev.now_ms() - self.last_snapshot_ms >= 1000 {
                self.last_snapshot_ms = ev.now_ms();
                let p = self.engine.pipeline();
                let snap = EngineSnapshot {
                    mode: p.mode().as_str().to_string(),
                    events_processed: self.engine.events_processed(),
                    symbols: p.symbols().count(),
                    valid_books: p.symbols().filter(|(_, m)| m.book.is_valid()).count(),
                    feed: p.flags().feed,
                    degraded: self.engine.is_degraded(),
                    feed_risk_off: p.flags().feed_risk_off,
                    counters: p.counters().clone(),
                    ts_ms: ev.now_ms(),
                };
                self.snap_tx.send_replace(snap);
                let cats: BTreeMap<_, _> = p.symbols().map(|(s, m)| (s.clone(), m.category)).collect();
                if *self.cat_tx.borrow() != cats {
                    self.cat_tx.send_replace(cats);
                }
                self.view_tx.send_replace(Arc::new(ControlView::capture(p, ev.now_ms())));
            }
        }
        self.save_baselines();
    }

    fn save_baselines(&self) {
        tracing::info!("shutting down: saving baselines, flushing storage");
        let profiles = self.engine.pipeline().baseline_profiles();
        let saved = profiles.len();
        for (name, body) in profiles {
            if self.store.try_set_snapshot(scalper_core::config::paths::DataKind::Profiles, &name, &body).is_err() {
                tracing::warn!(symbol = %name, "baselines not saved at shutdown: storage queue full");
            }
        }
        tracing::info!(symbols = saved, "baselines saved to the profiles");
    }
}
