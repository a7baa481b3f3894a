//! Faults of the private surface: the public [`PrivateFault`] kinds, the counted create faults
//! pending on the account and how a create request draws them. Separate from the account logic
//! because they only decide what happens around a request, never what it does.

use super::PrivateState;
use serde::{Deserialize, Serialize};

/// A fault of the private surface, applied through [`super::SimPrivate::inject`]. (HTTP
/// status and retCode storms use the public [`crate::Fault::RestHttpError`] /
/// [`crate::Fault::RestRetCode`], which private endpoints honour too.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PrivateFault {
    /// The next `count` creates are executed, then answered with HTTP `status` (a gateway
    /// error after the fact, e.g. 502 / 504).
    CreateAcceptedThenHttp {
        /// HTTP status.
        status: u16,
        /// Creates affected.
        count: u32,
    },
    /// The next `count` creates are executed, but the answer is held for `delay_ms` (longer
    /// than the client's timeout: the client sees a timeout).
    CreateAcceptedResponseDelayed {
        /// Delay before answering.
        delay_ms: u64,
        /// Creates affected.
        count: u32,
    },
    /// The next `count` creates are held for `delay_ms` before being processed; their
    /// timestamp is checked then, so one whose receive window has passed is rejected (10002).
    CreateDelayedBeforeProcessing {
        /// Delay before processing.
        delay_ms: u64,
        /// Creates affected.
        count: u32,
    },
    /// The next `count` creates are rejected with `ret_code` (e.g. 110007) without effect.
    RejectCreates {
        /// Bybit retCode.
        ret_code: i64,
        /// Creates affected.
        count: u32,
    },
    /// Close every private WebSocket abruptly.
    DropConnections,
    /// Drop (`on = true`) every private push while the sockets stay open.
    SuppressPushes {
        /// Drop when true.
        on: bool,
    },
}

#[derive(Debug, Default)]
pub(super) struct Faults {
    then_http: Option<(u16, u32)>,
    delayed_response: Option<(u64, u32)>,
    delayed_processing: Option<(u64, u32)>,
    reject: Option<(i64, u32)>,
}

/// What a create request must suffer before / after processing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CreateFault {
    ThenHttp(u16),
    DelayResponse(u64),
    DelayProcessing(u64),
    Reject(i64),
}

fn take(slot: &mut Option<(impl Copy, u32)>) -> Option<()> {
    match slot {
        Some((_, n)) if *n > 1 => {
            *n -= 1;
            Some(())
        }
        Some(_) => {
            *slot = None;
            Some(())
        }
        None => None,
    }
}

impl PrivateState {
    /// Applies a fault.
    pub fn apply_fault(&mut self, f: &PrivateFault) {
        let n = |c: u32| (c > 0).then_some(c);
        match *f {
            PrivateFault::CreateAcceptedThenHttp { status, count } => {
                self.faults.then_http = n(count).map(|c| (status, c))
            }
            PrivateFault::CreateAcceptedResponseDelayed { delay_ms, count } => {
                self.faults.delayed_response = n(count).map(|c| (delay_ms, c))
            }
            PrivateFault::CreateDelayedBeforeProcessing { delay_ms, count } => {
                self.faults.delayed_processing = n(count).map(|c| (delay_ms, c))
            }
            PrivateFault::RejectCreates { ret_code, count } => self.faults.reject = n(count).map(|c| (ret_code, c)),
            PrivateFault::DropConnections => {
                for c in self.conns.values() {
                    c.token.cancel();
                }
                self.conns.clear();
            }
            PrivateFault::SuppressPushes { on } => self.suppress = on,
        }
    }

    /// The fault the next create suffers, if any.
    pub fn take_create_fault(&mut self) -> Option<CreateFault> {
        let f = if let Some((d, _)) = self.faults.delayed_processing {
            take(&mut self.faults.delayed_processing).map(|_| CreateFault::DelayProcessing(d))
        } else if let Some((c, _)) = self.faults.reject {
            take(&mut self.faults.reject).map(|_| CreateFault::Reject(c))
        } else if let Some((s, _)) = self.faults.then_http {
            take(&mut self.faults.then_http).map(|_| CreateFault::ThenHttp(s))
        } else if let Some((d, _)) = self.faults.delayed_response {
            take(&mut self.faults.delayed_response).map(|_| CreateFault::DelayResponse(d))
        } else {
            None
        };
        if f.is_some() {
            self.counters.faults_served += 1;
        }
        f
    }
}

#[cfg(test)]
mod tests {
    use super::super::PrivateConfig;
    use super::*;

    #[test]
    fn counted_faults_count_down() {
        let mut s = PrivateState::new(PrivateConfig::default(), 1);
        s.apply_fault(&PrivateFault::CreateAcceptedThenHttp { status: 502, count: 2 });
        s.apply_fault(&PrivateFault::RejectCreates { ret_code: 110007, count: 1 });
        assert_eq!(s.take_create_fault(), Some(CreateFault::Reject(110007)));
        assert_eq!(s.take_create_fault(), Some(CreateFault::ThenHttp(502)));
        assert_eq!(s.take_create_fault(), Some(CreateFault::ThenHttp(502)));
        assert_eq!(s.take_create_fault(), None);
        assert_eq!(s.counters.faults_served, 3);
    }
}
