//! Read-only endpoints of [`PrivateRest`]: the wallet, positions, open orders, one order by
//! `orderLinkId` and executions. Each is retried freely (reads have no side effect).

use super::{query_string, PrivateRest};
use crate::bybit_private::messages::{
    Page, RawExecution, RawOrder, RawPosition, VenueExecution, VenueOrder, VenuePosition, WalletBalance, WalletResult,
};
use crate::bybit_private::{PrivateError, PrivateStats};
use crate::bybit_public::BybitError;
use scalper_core::domain::{Symbol, TimeMs};
use std::sync::atomic::Ordering;

impl PrivateRest {
    // ------------------------------------------------------------------------------ account

    /// The unified account's wallet (`/v5/account/wallet-balance?accountType=UNIFIED`). A
    /// classic account (Bybit answers `accountType` `CONTRACT` with `totalEquity: ""`) is
    /// [`PrivateError::AccountUnsupported`], never an equity of 0.
    pub async fn wallet_balance(&self) -> Result<WalletBalance, PrivateError> {
        let r: WalletResult = self.get("/v5/account/wallet-balance", "accountType=UNIFIED").await?;
        let w = r.list.first().ok_or_else(|| BybitError::Decode("wallet-balance list is empty".into()))?;
        let w = w.typed().inspect_err(|_| PrivateStats::inc(&self.stats.skipped_wallet_invalid))?;
        if let Some(why) = w.not_unified_reason() {
            let n = self.stats.wallet_not_unified.fetch_add(1, Ordering::Relaxed);
            if n.is_multiple_of(60) {
                tracing::error!(account_type = %w.account_type, seen = n + 1, "{why}");
            }
            return Err(PrivateError::AccountUnsupported(why));
        }
        Ok(w)
    }

    /// Every USDT linear position, flat ones included as Bybit lists them
    /// (`/v5/position/list?category=linear&settleCoin=USDT`).
    pub async fn positions(&self) -> Result<Vec<VenuePosition>, PrivateError> {
        let raw: Vec<RawPosition> = self
            .pages(
                "/v5/position/list",
                vec![("category", "linear".into()), ("settleCoin", "USDT".into()), ("limit", "200".into())],
            )
            .await?;
        Ok(self.universe("/v5/position/list", &raw)?)
    }

    /// Position of one symbol (`None` when the venue lists nothing for it).
    pub async fn position(&self, symbol: &Symbol) -> Result<Option<VenuePosition>, PrivateError> {
        let raw: Vec<RawPosition> = self
            .pages("/v5/position/list", vec![("category", "linear".into()), ("symbol", symbol.as_str().into())])
            .await?;
        Ok(self.universe("/v5/position/list", &raw)?.into_iter().find(|p| &p.symbol == symbol))
    }

    // ------------------------------------------------------------------------------- orders

    /// Open orders (`/v5/order/realtime?category=linear&settleCoin=USDT`), or those of one symbol.
    pub async fn open_orders(&self, symbol: Option<&Symbol>) -> Result<Vec<VenueOrder>, PrivateError> {
        let mut q = vec![("category", "linear".to_string())];
        match symbol {
            Some(s) => q.push(("symbol", s.as_str().to_string())),
            None => q.push(("settleCoin", "USDT".to_string())),
        }
        q.push(("limit", "50".into()));
        let raw: Vec<RawOrder> = self.pages("/v5/order/realtime", q).await?;
        Ok(self.universe("/v5/order/realtime", &raw)?)
    }

    /// Looks an order up by `orderLinkId`: open orders, then recently closed ones
    /// (`openOnly=1`), then order history. `None` when none of them knows it.
    pub async fn order_by_link_id(&self, symbol: &Symbol, link_id: &str) -> Result<Option<VenueOrder>, PrivateError> {
        let sym = symbol.as_str().to_string();
        let link = link_id.to_string();
        let tries: [(&str, Vec<(&str, String)>); 3] = [
            (
                "/v5/order/realtime",
                vec![("category", "linear".into()), ("symbol", sym.clone()), ("orderLinkId", link.clone())],
            ),
            (
                "/v5/order/realtime",
                vec![
                    ("category", "linear".into()),
                    ("symbol", sym.clone()),
                    ("orderLinkId", link.clone()),
                    ("openOnly", "1".into()),
                ],
            ),
            ("/v5/order/history", vec![("category", "linear".into()), ("symbol", sym), ("orderLinkId", link)]),
        ];
        for (path, q) in tries {
            let page: Page<RawOrder> = self.get(path, &query_string(&q)).await?;
            if let Some(o) = self.universe(path, &page.list)?.into_iter().find(|o| o.order_link_id == link_id) {
                return Ok(Some(o));
            }
        }
        Ok(None)
    }

    /// Executions of USDT perpetuals since `start_ms`
    /// (`/v5/execution/list?category=linear&settleCoin=USDT`), oldest first (by time, then
    /// sequence, then id). USDT dated futures (and USDC contracts, should the venue ignore the
    /// filter) are skipped here (counted).
    pub async fn executions_since(&self, start_ms: TimeMs) -> Result<Vec<VenueExecution>, PrivateError> {
        let q = vec![
            ("category", "linear".to_string()),
            ("settleCoin", "USDT".to_string()),
            ("startTime", start_ms.to_string()),
            ("limit", "100".into()),
        ];
        let raw: Vec<RawExecution> = self.pages("/v5/execution/list", q).await?;
        let mut v = self.universe("/v5/execution/list", &raw)?;
        v.sort_by(|a, b| (a.exec_time_ms, a.seq, &a.exec_id).cmp(&(b.exec_time_ms, b.seq, &b.exec_id)));
        Ok(v)
    }
}
