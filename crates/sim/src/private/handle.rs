//! [`SimPrivate`], the control and introspection handle of the private surface that tests and
//! tools hold (configure the account, add keys, inject faults, read counters and state).

use super::{lock_private, PrivateConfig, PrivateCounters, PrivateFault, PrivateState, SimExecutionView, SimOrderView};
use scalper_core::domain::{Qty, Side};
use scalper_core::risk::money::Money;

/// Control and introspection of the simulator's private surface (see
/// [`crate::SimHandle::private`]). Cheap to clone.
#[derive(Clone)]
pub struct SimPrivate {
    pub(crate) shared: std::sync::Arc<crate::Shared>,
    pub(crate) addr: std::net::SocketAddr,
}

impl std::fmt::Debug for SimPrivate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimPrivate").field("addr", &self.addr).finish()
    }
}

impl SimPrivate {
    fn state(&self) -> std::sync::MutexGuard<'_, PrivateState> {
        lock_private(&self.shared)
    }

    /// Private WebSocket URL, e.g. `ws://127.0.0.1:40123/v5/private`.
    pub fn ws_private_url(&self) -> String {
        format!("ws://{}/v5/private", self.addr)
    }

    /// Replaces the account configuration and resets the account (orders, positions, wallet,
    /// executions, counters); open connections stay.
    pub fn configure(&self, cfg: PrivateConfig) {
        let seed = self.shared.lock().cfg.seed;
        self.state().reset(cfg, seed);
    }

    /// Accepts one more API key (or replaces the secret of an existing one).
    pub fn add_api_key(&self, key: &str, secret: &str) {
        self.state().add_key(key, secret);
    }

    /// Applies a fault now.
    pub fn inject(&self, fault: PrivateFault) {
        self.state().apply_fault(&fault);
    }

    /// [`PrivateFault::DropConnections`].
    pub fn drop_connections(&self) {
        self.inject(PrivateFault::DropConnections);
    }

    /// [`PrivateFault::SuppressPushes`].
    pub fn suppress_pushes(&self, on: bool) {
        self.inject(PrivateFault::SuppressPushes { on });
    }

    /// Counter snapshot.
    pub fn counters(&self) -> PrivateCounters {
        self.state().counters
    }

    /// USDT wallet balance.
    pub fn wallet_balance(&self) -> Money {
        self.state().wallet()
    }

    /// Position of a symbol (`None` when flat).
    pub fn position(&self, symbol: &str) -> Option<(Side, Qty)> {
        self.state().position(symbol)
    }

    /// Orders the simulator remembers, oldest first.
    pub fn orders(&self) -> Vec<SimOrderView> {
        self.state().order_views()
    }

    /// Executions, oldest first.
    pub fn executions(&self) -> Vec<SimExecutionView> {
        self.state().exec_views()
    }

    /// Private WebSocket connections open now.
    pub fn connections(&self) -> usize {
        self.state().conns.len()
    }

    /// Private WebSocket connections open and authenticated now.
    pub fn authenticated_connections(&self) -> usize {
        self.state().conns.values().filter(|c| c.authed).count()
    }

    /// Makes the account a classic (non-unified) one (`on`) or a unified one again: wallets
    /// (REST and WS) then come in the `CONTRACT` shape with empty USD totals.
    pub fn set_classic_account(&self, on: bool) {
        self.state().classic = on;
    }
}
