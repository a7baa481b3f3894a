//! The feed's supervisor: assigns symbols to connections (at most
//! [`FeedConfig::symbols_per_connection`](super::FeedConfig::symbols_per_connection) each),
//! spawns one [`Conn`] task per connection and routes run-time subscribe / unsubscribe / resync
//! commands to the connection that owns each symbol. Separate from the connection loop, which
//! knows nothing of the other connections.

use super::conn::Conn;
use super::{ConnCmd, Ctx, Subscription, SupervisorCmd};
use crate::bybit_public::jitter_seed;
use rand::rngs::SmallRng;
use rand::SeedableRng;
use scalper_core::domain::Symbol;
use scalper_core::engine::event::FeedState;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

pub(super) struct Slot {
    tx: mpsc::Sender<ConnCmd>,
    count: usize,
}

pub(super) struct Supervisor {
    pub(super) ctx: Arc<Ctx>,
    pub(super) slots: Vec<Slot>,
    pub(super) owner: HashMap<Symbol, usize>,
    pub(super) joins: JoinSet<()>,
}

pub(super) fn dedupe(subs: Vec<Subscription>) -> Vec<Subscription> {
    let mut seen: BTreeMap<Symbol, u16> = BTreeMap::new();
    let mut order = Vec::new();
    for s in subs {
        if seen.insert(s.symbol.clone(), s.depth).is_none() {
            order.push(s.symbol);
        }
    }
    order.into_iter().map(|sym| Subscription { depth: seen[&sym], symbol: sym }).collect()
}

impl Supervisor {
    pub(super) async fn run(mut self, subs: Vec<Subscription>, mut cmd_rx: mpsc::Receiver<SupervisorCmd>) {
        // Initial assignment: fill connections in order.
        let per = self.ctx.cfg.symbols_per_connection.max(1);
        let subs = dedupe(subs);
        for chunk in subs.chunks(per) {
            self.spawn_connection(chunk.to_vec()).await;
        }
        loop {
            tokio::select! {
                _ = self.ctx.cancel.cancelled() => break,
                cmd = cmd_rx.recv() => match cmd {
                    Some(SupervisorCmd::Subscribe(s)) => self.subscribe(s).await,
                    Some(SupervisorCmd::Unsubscribe(s)) => self.unsubscribe(s).await,
                    Some(SupervisorCmd::Resync(s)) => self.resync(s).await,
                    None => break,
                },
            }
        }
        self.ctx.cancel.cancel();
        drop(self.slots);
        while self.joins.join_next().await.is_some() {}
    }

    async fn spawn_connection(&mut self, subs: Vec<Subscription>) -> usize {
        let slot = self.slots.len();
        let idx = slot as u32 + 1;
        let (tx, rx) = mpsc::channel(self.ctx.cfg.command_capacity.max(1));
        if let Ok(mut a) = self.ctx.assignments.lock() {
            for s in &subs {
                a.insert(s.symbol.clone(), (idx, s.depth));
            }
        }
        for s in &subs {
            self.owner.insert(s.symbol.clone(), slot);
        }
        self.slots.push(Slot { tx, count: subs.len() });
        self.ctx.set_state(idx, FeedState::Reconnecting, false).await;
        let seed = self.ctx.cfg.jitter_seed.map(|s| s ^ u64::from(idx)).unwrap_or_else(|| jitter_seed(u64::from(idx)));
        let conn = Conn {
            idx,
            ctx: self.ctx.clone(),
            symbols: subs.into_iter().map(|s| (s.symbol, s.depth)).collect(),
            cmd_rx: rx,
            rng: SmallRng::seed_from_u64(seed),
            req_counter: 0,
            last_malformed_log: None,
            malformed_suppressed: 0,
        };
        self.joins.spawn(conn.run());
        slot
    }

    async fn subscribe(&mut self, subs: Vec<Subscription>) {
        let per = self.ctx.cfg.symbols_per_connection.max(1);
        let mut batches: BTreeMap<usize, Vec<Subscription>> = BTreeMap::new();
        let mut fresh: Vec<Subscription> = Vec::new();
        for s in dedupe(subs) {
            if let Some(&slot) = self.owner.get(&s.symbol) {
                if let Ok(mut a) = self.ctx.assignments.lock() {
                    a.insert(s.symbol.clone(), (slot as u32 + 1, s.depth));
                }
                batches.entry(slot).or_default().push(s);
                continue;
            }
            let best =
                self.slots.iter().enumerate().filter(|(_, sl)| sl.count < per).min_by_key(|(i, sl)| (sl.count, *i));
            match best {
                Some((slot, _)) => {
                    self.slots[slot].count += 1;
                    self.owner.insert(s.symbol.clone(), slot);
                    if let Ok(mut a) = self.ctx.assignments.lock() {
                        a.insert(s.symbol.clone(), (slot as u32 + 1, s.depth));
                    }
                    batches.entry(slot).or_default().push(s);
                }
                None => fresh.push(s),
            }
        }
        for (slot, v) in batches {
            let _ = self.slots[slot].tx.send(ConnCmd::Add(v)).await;
        }
        for chunk in fresh.chunks(per) {
            self.spawn_connection(chunk.to_vec()).await;
        }
    }

    async fn unsubscribe(&mut self, symbols: Vec<Symbol>) {
        let mut batches: BTreeMap<usize, Vec<Symbol>> = BTreeMap::new();
        for s in symbols {
            if let Some(slot) = self.owner.remove(&s) {
                self.slots[slot].count = self.slots[slot].count.saturating_sub(1);
                if let Ok(mut a) = self.ctx.assignments.lock() {
                    a.remove(&s);
                }
                batches.entry(slot).or_default().push(s);
            }
        }
        for (slot, v) in batches {
            let _ = self.slots[slot].tx.send(ConnCmd::Remove(v)).await;
        }
    }

    async fn resync(&mut self, symbol: Symbol) {
        match self.owner.get(&symbol) {
            Some(&slot) => {
                let _ = self.slots[slot].tx.send(ConnCmd::Resync(symbol)).await;
            }
            None => tracing::warn!(%symbol, "resync requested for a symbol that is not streamed"),
        }
    }
}
