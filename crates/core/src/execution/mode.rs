//! Execution mode: SIM / DRY_RUN / LIVE, as visible state, and routing of intents by mode.
//!
//! LIVE cannot be entered through [`ModeManager`]: it returns [`ModeError::LiveRequiresPin`]. LIVE
//! is reached only through the control plane's confirmed, PIN-checked flow. In DRY_RUN every
//! intent becomes a would-be-order record and nothing is sent.

use crate::domain::Mode;
use crate::domain::TimeMs;
use crate::execution::order::Intent;
use serde::{Deserialize, Serialize};

/// Mode errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModeError {
    /// LIVE asked for outside the PIN flow.
    #[error(
        "LIVE requires the control-plane PIN flow (`scalperctl mode live --pin`, double confirmation + PIN); \
         it cannot be entered here"
    )]
    LiveRequiresPin,
}

/// A mode change, for the event log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModeChange {
    /// Mode before.
    pub from: Mode,
    /// Mode after.
    pub to: Mode,
    /// Event time.
    pub at_ms: TimeMs,
}

/// A would-be order logged in DRY_RUN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DryRunRecord {
    /// Event time.
    pub ts_ms: TimeMs,
    /// Always `DRY_RUN`.
    pub mode: Mode,
    /// What would have been sent.
    pub intent: Intent,
}

/// Intents split by destination.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Routed {
    /// To send to the venue (SIM venue or, in LIVE, the exchange).
    pub to_venue: Vec<Intent>,
    /// DRY_RUN records (nothing is sent).
    pub dry_run: Vec<DryRunRecord>,
}

/// Holds the current execution mode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModeManager {
    mode: Mode,
    since_ms: TimeMs,
}

impl ModeManager {
    /// Starts in `initial` (SIM or DRY_RUN; LIVE is refused).
    pub fn new(initial: Mode, now_ms: TimeMs) -> Result<Self, ModeError> {
        if initial == Mode::Live {
            return Err(ModeError::LiveRequiresPin);
        }
        Ok(ModeManager { mode: initial, since_ms: now_ms })
    }
    /// Current mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }
    /// When the current mode was entered.
    pub fn since_ms(&self) -> TimeMs {
        self.since_ms
    }
    /// Switches to SIM or DRY_RUN (`Ok(None)` when already there); LIVE is refused.
    pub fn request(&mut self, to: Mode, now_ms: TimeMs) -> Result<Option<ModeChange>, ModeError> {
        if to == Mode::Live {
            return Err(ModeError::LiveRequiresPin);
        }
        if to == self.mode {
            return Ok(None);
        }
        let ch = ModeChange { from: self.mode, to, at_ms: now_ms };
        self.mode = to;
        self.since_ms = now_ms;
        Ok(Some(ch))
    }
    /// Enters LIVE. Only the core calls this, on [`crate::engine::event::ControlCommand::EnterLive`],
    /// which only the control edge's confirmed, PIN-checked flow emits.
    pub fn enter_live(&mut self, now_ms: TimeMs) -> Option<ModeChange> {
        if self.mode == Mode::Live {
            return None;
        }
        let ch = ModeChange { from: self.mode, to: Mode::Live, at_ms: now_ms };
        self.mode = Mode::Live;
        self.since_ms = now_ms;
        Some(ch)
    }
    /// Routes intents by mode: DRY_RUN logs them as records and sends nothing; SIM and LIVE send.
    pub fn route(&self, intents: Vec<Intent>, now_ms: TimeMs) -> Routed {
        match self.mode {
            Mode::DryRun => Routed {
                to_venue: Vec::new(),
                dry_run: intents
                    .into_iter()
                    .map(|intent| DryRunRecord { ts_ms: now_ms, mode: Mode::DryRun, intent })
                    .collect(),
            },
            Mode::Sim | Mode::Live => Routed { to_venue: intents, dry_run: Vec::new() },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Symbol;

    fn cancel() -> Intent {
        Intent::Cancel { symbol: Symbol::new("BTCUSDT"), client_id: "a".into() }
    }

    #[test]
    fn live_is_not_enterable_here() {
        assert_eq!(ModeManager::new(Mode::Live, 0), Err(ModeError::LiveRequiresPin));
        let mut m = ModeManager::new(Mode::Sim, 0).unwrap();
        let e = m.request(Mode::Live, 5).unwrap_err();
        assert!(e.to_string().contains("PIN"), "{e}");
        assert_eq!(m.mode(), Mode::Sim);
        assert_eq!(m.request(Mode::Sim, 6), Ok(None));
        assert_eq!(m.request(Mode::DryRun, 7), Ok(Some(ModeChange { from: Mode::Sim, to: Mode::DryRun, at_ms: 7 })));
        assert_eq!((m.mode(), m.since_ms()), (Mode::DryRun, 7));
    }

    #[test]
    fn dry_run_records_and_sends_nothing() {
        let mut m = ModeManager::new(Mode::DryRun, 0).unwrap();
        let r = m.route(vec![cancel(), cancel()], 42);
        assert!(r.to_venue.is_empty());
        assert_eq!(r.dry_run.len(), 2);
        assert_eq!(r.dry_run[0], DryRunRecord { ts_ms: 42, mode: Mode::DryRun, intent: cancel() });
        let j = serde_json::to_value(&r.dry_run[0]).unwrap();
        assert_eq!(j["mode"], "DRY_RUN");
        assert_eq!(j["intent"]["intent"], "cancel");
        m.request(Mode::Sim, 50).unwrap();
        let r = m.route(vec![cancel()], 51);
        assert_eq!((r.to_venue.len(), r.dry_run.len()), (1, 0));
    }
}
