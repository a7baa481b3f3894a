//! Fault injection on the public surface: the [`Fault`]s applied now or at their scheduled step
//! (silence, gaps, malformed and crossed frames, dropped connections, book restarts) and the
//! counted REST faults served instead of real answers.

use super::{inc, Exchange, Topic, DEPTHS};
use crate::config::{CrossedKind, Fault};
use crate::wire::{self, BookFrame};
use crate::{Listing, SimError};
use std::sync::atomic::Ordering;
use tokio_tungstenite::tungstenite::Utf8Bytes;

/// Pending REST faults.
#[derive(Debug, Default)]
pub(super) struct RestFaults {
    http: Option<(u16, u32)>,
    ret: Option<(i64, u32)>,
}

/// A REST fault to serve instead of the real answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RestFault {
    Http(u16),
    RetCode(i64),
}

impl Exchange {
    fn index_of(&self, symbol: &str) -> Result<usize, SimError> {
        self.by_name.get(symbol).copied().ok_or_else(|| SimError::UnknownSymbol(symbol.to_string()))
    }

    /// Applies a fault now.
    pub fn apply_fault(&mut self, fault: &Fault) -> Result<(), SimError> {
        match fault {
            Fault::DropConnections => {
                let ids: Vec<u64> = self.conns.keys().copied().collect();
                for id in ids {
                    if let Some(c) = self.conns.get(&id) {
                        c.token.cancel();
                        inc(&self.counters.forced_drops);
                    }
                    self.unregister_conn(id);
                }
            }
            Fault::Silence { on } => self.silent = *on,
            Fault::SilenceSymbol { symbol, on } => {
                let i = self.index_of(symbol)?;
                self.symbols[i].silent = *on;
            }
            Fault::SkipUpdateId { symbol } => {
                let i = self.index_of(symbol)?;
                self.symbols[i].gap = [false, true, true, true];
            }
            Fault::MalformedFrame => {
                let ids: Vec<u64> = self.conns.keys().copied().collect();
                let name = self.symbols.first().map(|s| s.spec.name.clone()).unwrap_or_default();
                for id in ids {
                    inc(&self.counters.malformed_sent);
                    self.send_to(id, wire::malformed(&name));
                }
                self.drop_slow();
            }
            Fault::CrossedBook { symbol, kind } => {
                let i = self.index_of(symbol)?;
                self.crossed(i, *kind);
            }
            Fault::RestHttpError { status, count } => self.rest.http = (*count > 0).then_some((*status, *count)),
            Fault::RestRetCode { ret_code, count } => self.rest.ret = (*count > 0).then_some((*ret_code, *count)),
            Fault::RefusePongs { on } => self.refuse_pongs = *on,
            Fault::RestartBook { symbol } => {
                let i = self.index_of(symbol)?;
                self.restart_book(i);
            }
        }
        Ok(())
    }

    fn crossed(&mut self, i: usize, kind: CrossedKind) {
        let idx = i as u32;
        if self.symbols[i].listing != Listing::Trading {
            return;
        }
        let quiet = self.silent || self.symbols[i].silent;
        let mut frames = Vec::new();
        for d in 1..DEPTHS.len() {
            let sym = &mut self.symbols[i];
            let ds = &mut sym.depths[d];
            let Some(&(ask, _)) = ds.asks.first() else { continue };
            let bad = (ask + 1, ds.bids.first().map_or(1, |b| b.1.max(1)));
            let frame = match kind {
                CrossedKind::Snapshot => {
                    let mut bids = vec![bad];
                    bids.extend_from_slice(&ds.bids);
                    wire::book_frame(&sym.spec, &ds.snapshot_frame(None, Some(&bids)))
                }
                CrossedKind::Delta => {
                    sym.seq += 1;
                    ds.seq = sym.seq;
                    ds.u += 1;
                    ds.ts += 1;
                    ds.cts += 1;
                    ds.last_sent_ts = ds.ts;
                    sym.last_ts = sym.last_ts.max(ds.ts);
                    sym.last_cts = sym.last_cts.max(ds.cts);
                    let f = BookFrame {
                        depth: ds.depth,
                        snapshot: false,
                        ts: ds.ts,
                        cts: ds.cts,
                        u: ds.u,
                        seq: ds.seq,
                        bids: &[bad],
                        asks: &[],
                    };
                    wire::book_frame(&sym.spec, &f)
                }
            };
            if !quiet {
                frames.push((Topic::Book(idx, d as u8), frame));
            }
        }
        for (t, f) in frames {
            let n = self.subs.get(&t).map_or(0, |v| v.len() as u64);
            self.counters.crossed_sent.fetch_add(n, Ordering::Relaxed);
            self.dispatch(t, Utf8Bytes::from(f));
        }
        self.drop_slow();
    }

    fn restart_book(&mut self, i: usize) {
        let idx = i as u32;
        if self.symbols[i].listing != Listing::Trading {
            return;
        }
        let quiet = self.silent || self.symbols[i].silent;
        let mut frames = Vec::new();
        let sym = &mut self.symbols[i];
        for (d, ds) in sym.depths.iter_mut().enumerate() {
            ds.u = 1;
            if !quiet {
                frames.push((Topic::Book(idx, d as u8), wire::book_frame(&sym.spec, &ds.snapshot_frame(None, None))));
            }
        }
        for (t, f) in frames {
            self.dispatch(t, Utf8Bytes::from(f));
        }
        self.drop_slow();
    }

    /// Takes the next pending REST fault, if any.
    pub fn take_rest_fault(&mut self) -> Option<RestFault> {
        if let Some((status, left)) = self.rest.http {
            self.rest.http = (left > 1).then_some((status, left - 1));
            return Some(RestFault::Http(status));
        }
        if let Some((code, left)) = self.rest.ret {
            self.rest.ret = (left > 1).then_some((code, left - 1));
            return Some(RestFault::RetCode(code));
        }
        None
    }
}
