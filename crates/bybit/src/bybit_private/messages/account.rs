//! Positions and wallet balances (`position` / `wallet` topics, `/v5/position/list`,
//! `/v5/account/wallet-balance`): raw items, exact typed forms and integrity snapshots.

use super::items::{ItemTopic, RawItem};
use super::symbol;
use crate::error::BybitError;
use crate::wire::{decode_err, Txt};
use scalper_core::domain::{Fixed, Price, Qty, Side, Symbol, TimeMs};
use scalper_core::execution::integrity::PositionSnapshot;
use scalper_core::risk::money::Money;
use serde::{Deserialize, Serialize};

/// A position (REST `/v5/position/list`, WS `position`), one-way mode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VenuePosition {
    pub symbol: Symbol,
    /// `Some(Buy)` long, `Some(Sell)` short, `None` flat (Bybit sends `""` / `"None"`).
    pub side: Option<Side>,
    /// Size (0 when flat).
    pub size: Qty,
    /// Average entry price (REST `avgPrice`, WS `entryPrice`).
    pub avg_price: Option<Price>,
    /// Position leverage; `None` when Bybit sends `""` or `"0"` (no leverage is meaningful
    /// then, and the position itself must not be lost over an informational field).
    pub leverage: Option<Fixed>,
    pub mark_price: Option<Price>,
    pub unrealised_pnl: Money,
    /// Realised PnL of the current position (fees included, Bybit's definition).
    pub cur_realised_pnl: Money,
    /// Cumulative realised PnL.
    pub cum_realised_pnl: Money,
    /// Take-profit price set on the position.
    pub take_profit: Option<Price>,
    /// Stop-loss price set on the position.
    pub stop_loss: Option<Price>,
    /// 0 one-way, 1 / 2 hedge mode.
    pub position_idx: i64,
    /// Last update time, ms.
    pub updated_ms: TimeMs,
    /// Cross sequence of the last change.
    pub seq: i64,
}

/// Raw position object.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RawPosition {
    category: Txt,
    symbol: Txt,
    side: Txt,
    size: Txt,
    avg_price: Txt,
    entry_price: Txt,
    leverage: Txt,
    mark_price: Txt,
    unrealised_pnl: Txt,
    cur_realised_pnl: Txt,
    cum_realised_pnl: Txt,
    take_profit: Txt,
    stop_loss: Txt,
    position_idx: Txt,
    updated_time: Txt,
    seq: Txt,
}

impl RawPosition {
    /// Exact typed position.
    pub fn typed(&self) -> Result<VenuePosition, BybitError> {
        let size = Qty(self.size.nonneg("size")?);
        let side = match self.side.s() {
            "" | "None" => None,
            s => Some(Side::from_bybit(s).ok_or_else(|| decode_err(format!("side: {s:?}")))?),
        };
        if side.is_none() && !size.is_zero() {
            // Would read as flat while the venue holds `size`.
            return Err(decode_err(format!("position of size {size} without a side")));
        }
        let (avg, avg_field) = if self.avg_price.s().is_empty() {
            (&self.entry_price, "entryPrice")
        } else {
            (&self.avg_price, "avgPrice")
        };
        Ok(VenuePosition {
            symbol: symbol(&self.symbol)?,
            side: if size.is_zero() { None } else { side },
            size,
            avg_price: avg.price(avg_field)?,
            leverage: Some(self.leverage.nonneg("leverage")?).filter(|l| l.raw() > 0 && !self.leverage.s().is_empty()),
            mark_price: self.mark_price.price("markPrice")?,
            unrealised_pnl: self.unrealised_pnl.dec0("unrealisedPnl")?,
            cur_realised_pnl: self.cur_realised_pnl.dec0("curRealisedPnl")?,
            cum_realised_pnl: self.cum_realised_pnl.dec0("cumRealisedPnl")?,
            take_profit: self.take_profit.price("takeProfit")?,
            stop_loss: self.stop_loss.price("stopLoss")?,
            position_idx: self.position_idx.ms("positionIdx")?,
            updated_ms: self.updated_time.ms("updatedTime")?,
            seq: self.seq.ms("seq")?,
        })
    }
}

impl RawItem for RawPosition {
    type Typed = VenuePosition;
    const TOPIC: ItemTopic = ItemTopic::Position;
    fn category(&self) -> &str {
        self.category.s()
    }
    fn symbol_text(&self) -> Option<&str> {
        Some(self.symbol.s())
    }
    fn typed(&self) -> Result<VenuePosition, BybitError> {
        RawPosition::typed(self)
    }
}

impl RawItem for RawWallet {
    type Typed = WalletBalance;
    const TOPIC: ItemTopic = ItemTopic::Wallet;
    fn category(&self) -> &str {
        ""
    }
    fn symbol_text(&self) -> Option<&str> {
        None
    }
    fn typed(&self) -> Result<WalletBalance, BybitError> {
        RawWallet::typed(self)
    }
}

impl VenuePosition {
    /// As a position snapshot for integrity checks (`None` when flat).
    pub fn to_snapshot(&self) -> Option<PositionSnapshot> {
        match self.side {
            Some(side) if !self.size.is_zero() => {
                Some(PositionSnapshot { symbol: self.symbol.clone(), side, qty: self.size })
            }
            _ => None,
        }
    }
}

/// One coin of a wallet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoinBalance {
    /// Coin, e.g. `USDT`.
    pub coin: String,
    /// Wallet balance (deposits + realised PnL − fees).
    pub wallet_balance: Money,
    /// Equity (wallet balance + unrealised PnL).
    pub equity: Money,
    pub unrealised_pnl: Money,
    /// Cumulative realised PnL.
    pub cum_realised_pnl: Money,
    /// Initial margin of positions.
    pub total_position_im: Money,
    /// Initial margin of open orders.
    pub total_order_im: Money,
}

/// A wallet (REST `/v5/account/wallet-balance`, WS `wallet`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalletBalance {
    /// `UNIFIED`.
    pub account_type: String,
    /// Total equity in USD.
    pub total_equity: Money,
    /// Total wallet balance in USD.
    pub total_wallet_balance: Money,
    /// Available balance in USD.
    pub total_available_balance: Money,
    /// Unrealised PnL of perpetuals in USD.
    pub total_perp_upl: Money,
    pub coins: Vec<CoinBalance>,
    /// A Unified Trading Account (`accountType` `UNIFIED` with a `totalEquity`). A classic
    /// account (`CONTRACT`, `SPOT`) sends `totalEquity: ""`, which must never be read as an
    /// equity of 0: see [`WalletBalance::not_unified_reason`].
    #[serde(default)]
    pub unified: bool,
}

impl WalletBalance {
    /// Why this wallet cannot be traded by the engine (`None` for a unified account). The USD
    /// totals the engine books against exist only on a Unified Trading Account.
    pub fn not_unified_reason(&self) -> Option<String> {
        (!self.unified).then(|| {
            format!(
                "the Bybit account is not a Unified Trading Account (accountType {:?}, no totalEquity); \
                 LIVE needs a unified account: upgrade it on Bybit or use another API key",
                self.account_type
            )
        })
    }

    /// The entry of `coin`, if any.
    pub fn coin(&self, coin: &str) -> Option<&CoinBalance> {
        self.coins.iter().find(|c| c.coin == coin)
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct RawCoin {
    coin: Txt,
    wallet_balance: Txt,
    equity: Txt,
    unrealised_pnl: Txt,
    cum_realised_pnl: Txt,
    #[serde(rename = "totalPositionIM")]
    total_position_im: Txt,
    #[serde(rename = "totalOrderIM")]
    total_order_im: Txt,
}

/// Raw wallet object.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RawWallet {
    account_type: Txt,
    total_equity: Txt,
    total_wallet_balance: Txt,
    total_available_balance: Txt,
    #[serde(rename = "totalPerpUPL")]
    total_perp_upl: Txt,
    coin: Vec<RawCoin>,
}

impl RawWallet {
    /// Exact typed wallet.
    pub fn typed(&self) -> Result<WalletBalance, BybitError> {
        let coins = self
            .coin
            .iter()
            .map(|c| {
                Ok(CoinBalance {
                    coin: c.coin.0.clone(),
                    wallet_balance: c.wallet_balance.dec0("walletBalance")?,
                    equity: c.equity.dec0("equity")?,
                    unrealised_pnl: c.unrealised_pnl.dec0("unrealisedPnl")?,
                    cum_realised_pnl: c.cum_realised_pnl.dec0("cumRealisedPnl")?,
                    total_position_im: c.total_position_im.dec0("totalPositionIM")?,
                    total_order_im: c.total_order_im.dec0("totalOrderIM")?,
                })
            })
            .collect::<Result<Vec<_>, BybitError>>()?;
        let unified = self.account_type.s().eq_ignore_ascii_case("UNIFIED") && !self.total_equity.s().is_empty();
        Ok(WalletBalance {
            unified,
            account_type: self.account_type.0.clone(),
            total_equity: self.total_equity.dec0("totalEquity")?,
            total_wallet_balance: self.total_wallet_balance.dec0("totalWalletBalance")?,
            total_available_balance: self.total_available_balance.dec0("totalAvailableBalance")?,
            total_perp_upl: self.total_perp_upl.dec0("totalPerpUPL")?,
            coins,
        })
    }
}
