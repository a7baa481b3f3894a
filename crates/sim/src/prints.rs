//! What the simulated market prints: trades on the tape with Bybit's tick direction,
//! liquidations, and ticker fields as Bybit spells them. The market produces these; the wire
//! layer renders them and the history synthesiser replays them.

use scalper_core::domain::Side;

/// Bybit tick direction of the last trade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TickDir {
    Plus,
    ZeroPlus,
    Minus,
    ZeroMinus,
}

impl TickDir {
    /// Bybit spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            TickDir::Plus => "PlusTick",
            TickDir::ZeroPlus => "ZeroPlusTick",
            TickDir::Minus => "MinusTick",
            TickDir::ZeroMinus => "ZeroMinusTick",
        }
    }
}

/// One fill printed on the tape.
#[derive(Debug, Clone)]
pub(crate) struct Fill {
    pub price: i64,
    pub lots: i64,
    pub taker: Side,
    pub dir: TickDir,
    pub id: String,
}

/// One liquidation (side of the liquidated position).
#[derive(Debug, Clone)]
pub(crate) struct Liq {
    pub side: Side,
    pub price: i64,
    pub lots: i64,
}

/// What one step produced.
#[derive(Debug, Default)]
pub(crate) struct StepOut {
    pub fills: Vec<Fill>,
    pub liqs: Vec<Liq>,
}

/// Ticker fields as Bybit prints them (strings). `symbol` never changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TickerValues {
    pub symbol: String,
    pub tick_direction: String,
    pub price_24h_pcnt: String,
    pub last_price: String,
    pub prev_price_24h: String,
    pub high_price_24h: String,
    pub low_price_24h: String,
    pub prev_price_1h: String,
    pub mark_price: String,
    pub index_price: String,
    pub open_interest: String,
    pub open_interest_value: String,
    pub turnover_24h: String,
    pub volume_24h: String,
    pub funding_interval_hour: String,
    pub funding_cap: String,
    pub next_funding_time: String,
    pub funding_rate: String,
    pub bid1_price: String,
    pub bid1_size: String,
    pub ask1_price: String,
    pub ask1_size: String,
}

impl TickerValues {
    /// Fields in Bybit's linear WS order (after `symbol`).
    pub fn ws_fields(&self) -> [(&'static str, &str); 24] {
        [
            ("tickDirection", &self.tick_direction),
            ("price24hPcnt", &self.price_24h_pcnt),
            ("lastPrice", &self.last_price),
            ("prevPrice24h", &self.prev_price_24h),
            ("highPrice24h", &self.high_price_24h),
            ("lowPrice24h", &self.low_price_24h),
            ("prevPrice1h", &self.prev_price_1h),
            ("markPrice", &self.mark_price),
            ("indexPrice", &self.index_price),
            ("openInterest", &self.open_interest),
            ("openInterestValue", &self.open_interest_value),
            ("turnover24h", &self.turnover_24h),
            ("volume24h", &self.volume_24h),
            ("fundingIntervalHour", &self.funding_interval_hour),
            ("fundingCap", &self.funding_cap),
            ("nextFundingTime", &self.next_funding_time),
            ("fundingRate", &self.funding_rate),
            ("bid1Price", &self.bid1_price),
            ("bid1Size", &self.bid1_size),
            ("ask1Price", &self.ask1_price),
            ("ask1Size", &self.ask1_size),
            ("preOpenPrice", ""),
            ("preQty", ""),
            ("curPreListingPhase", ""),
        ]
    }

    /// Fields in Bybit's REST `/v5/market/tickers` order (after `symbol`).
    pub fn rest_fields(&self) -> [(&'static str, &str); 29] {
        [
            ("lastPrice", &self.last_price),
            ("indexPrice", &self.index_price),
            ("markPrice", &self.mark_price),
            ("prevPrice24h", &self.prev_price_24h),
            ("price24hPcnt", &self.price_24h_pcnt),
            ("highPrice24h", &self.high_price_24h),
            ("lowPrice24h", &self.low_price_24h),
            ("prevPrice1h", &self.prev_price_1h),
            ("openInterest", &self.open_interest),
            ("openInterestValue", &self.open_interest_value),
            ("turnover24h", &self.turnover_24h),
            ("volume24h", &self.volume_24h),
            ("fundingRate", &self.funding_rate),
            ("nextFundingTime", &self.next_funding_time),
            ("predictedDeliveryPrice", ""),
            ("basisRate", ""),
            ("deliveryFeeRate", ""),
            ("deliveryTime", "0"),
            ("ask1Size", &self.ask1_size),
            ("bid1Price", &self.bid1_price),
            ("ask1Price", &self.ask1_price),
            ("bid1Size", &self.bid1_size),
            ("basis", ""),
            ("preOpenPrice", ""),
            ("preQty", ""),
            ("curPreListingPhase", ""),
            ("fundingIntervalHour", &self.funding_interval_hour),
            ("basisRateYear", ""),
            ("fundingCap", &self.funding_cap),
        ]
    }
}
