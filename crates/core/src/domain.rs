//! Small domain types shared by every module: exact fixed-point prices and quantities, sides,
//! symbols, symbol categories and event time.
//!
//! Prices and quantities are fixed-point integers with [`SCALE`] units per 1.0, parsed from the
//! exchange's decimal strings without ever going through `f64`, so tick-size arithmetic is exact.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// Fixed-point scale: 10^8 units per 1.0 (Bybit never quotes more than 8 decimals).
pub const SCALE: i64 = 100_000_000;
/// Number of decimals carried by [`Fixed`].
pub const DECIMALS: u32 = 8;

/// Error when a decimal string cannot be represented exactly.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecimalError {
    /// Empty input.
    #[error("empty decimal")]
    Empty,
    /// A character that is not a digit, sign or a single dot.
    #[error("invalid decimal {0:?}")]
    Invalid(String),
    /// More than [`DECIMALS`] fractional digits that are not zero.
    #[error("decimal {0:?} has more than 8 significant fractional digits")]
    TooPrecise(String),
    /// Does not fit an i64 at [`SCALE`].
    #[error("decimal {0:?} out of range")]
    Overflow(String),
}

/// An exact fixed-point decimal (8 decimals). Base of [`Price`] and [`Qty`].
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Fixed(pub i64);

impl Fixed {
    pub const ZERO: Fixed = Fixed(0);

    /// From raw units of 10^-8.
    pub const fn from_raw(raw: i64) -> Self {
        Fixed(raw)
    }
    /// Raw units of 10^-8.
    pub const fn raw(self) -> i64 {
        self.0
    }
    /// From a whole number.
    pub const fn from_int(v: i64) -> Self {
        Fixed(v * SCALE)
    }
    /// Lossy conversion for analytics (features, scores). Never used for book keys.
    pub fn to_f64(self) -> f64 {
        self.0 as f64 / SCALE as f64
    }
    /// Nearest fixed value of an `f64` (for analytics outputs only).
    pub fn from_f64(v: f64) -> Self {
        Fixed((v * SCALE as f64).round() as i64)
    }
    /// True when zero.
    pub fn is_zero(self) -> bool {
        self.0 == 0
    }
    /// Largest multiple of `step` that is <= self (step > 0).
    pub fn floor_to(self, step: Fixed) -> Fixed {
        if step.0 <= 0 {
            return self;
        }
        Fixed(self.0.div_euclid(step.0) * step.0)
    }
    /// Smallest multiple of `step` that is >= self (step > 0).
    pub fn ceil_to(self, step: Fixed) -> Fixed {
        if step.0 <= 0 {
            return self;
        }
        let q = self.0.div_euclid(step.0);
        let r = self.0.rem_euclid(step.0);
        Fixed(if r == 0 { q * step.0 } else { (q + 1) * step.0 })
    }
    /// Parses an exact decimal string such as `"26000.50"`, `"-0.001"` or `"1e-5"`-free forms.
    pub fn parse(s: &str) -> Result<Self, DecimalError> {
        let s = s.trim();
        if s.is_empty() {
            return Err(DecimalError::Empty);
        }
        let (neg, body) = match s.as_bytes()[0] {
            b'-' => (true, &s[1..]),
            b'+' => (false, &s[1..]),
            _ => (false, s),
        };
        if body.is_empty() {
            return Err(DecimalError::Invalid(s.to_string()));
        }
        let (int_part, frac_part) = match body.split_once('.') {
            Some((i, f)) => (i, f),
            None => (body, ""),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(DecimalError::Invalid(s.to_string()));
        }
        if !int_part.bytes().all(|b| b.is_ascii_digit()) || !frac_part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(DecimalError::Invalid(s.to_string()));
        }
        let frac_trim = frac_part.trim_end_matches('0');
        if frac_trim.len() > DECIMALS as usize {
            return Err(DecimalError::TooPrecise(s.to_string()));
        }
        let mut v: i64 = 0;
        for b in int_part.bytes() {
            v = v
                .checked_mul(10)
                .and_then(|v| v.checked_add((b - b'0') as i64))
                .ok_or_else(|| DecimalError::Overflow(s.to_string()))?;
        }
        v = v.checked_mul(SCALE).ok_or_else(|| DecimalError::Overflow(s.to_string()))?;
        let mut frac: i64 = 0;
        for (i, b) in frac_trim.bytes().enumerate() {
            frac += (b - b'0') as i64 * 10i64.pow(DECIMALS - 1 - i as u32);
        }
        v = v.checked_add(frac).ok_or_else(|| DecimalError::Overflow(s.to_string()))?;
        Ok(Fixed(if neg { -v } else { v }))
    }
}

impl fmt::Display for Fixed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let neg = self.0 < 0;
        let a = self.0.unsigned_abs();
        let int = a / SCALE as u64;
        let frac = a % SCALE as u64;
        if neg {
            f.write_str("-")?;
        }
        if frac == 0 {
            write!(f, "{int}")
        } else {
            let s = format!("{frac:08}");
            write!(f, "{int}.{}", s.trim_end_matches('0'))
        }
    }
}

impl fmt::Debug for Fixed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Fixed {
    type Err = DecimalError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Fixed::parse(s)
    }
}

impl Serialize for Fixed {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Fixed {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Fixed;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a decimal string or number")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Fixed, E> {
                Fixed::parse(v).map_err(E::custom)
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Fixed, E> {
                v.checked_mul(SCALE).map(Fixed).ok_or_else(|| E::custom("decimal out of range"))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Fixed, E> {
                i64::try_from(v)
                    .ok()
                    .and_then(|v| v.checked_mul(SCALE))
                    .map(Fixed)
                    .ok_or_else(|| E::custom("decimal out of range"))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Fixed, E> {
                // Numbers in JSON are re-read through their shortest decimal form: exact for
                // every value that has at most 8 decimals.
                Fixed::parse(&format!("{v}")).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

macro_rules! fixed_newtype {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Fixed);

        impl $name {
            pub const ZERO: $name = $name(Fixed::ZERO);
            /// Parses an exact decimal string.
            pub fn parse(s: &str) -> Result<Self, DecimalError> {
                Fixed::parse(s).map($name)
            }
            /// From raw 10^-8 units.
            pub const fn from_raw(raw: i64) -> Self {
                $name(Fixed(raw))
            }
            /// Raw 10^-8 units.
            pub const fn raw(self) -> i64 {
                self.0 .0
            }
            /// Lossy `f64` view for analytics.
            pub fn to_f64(self) -> f64 {
                self.0.to_f64()
            }
            /// Nearest value of an `f64` (analytics only).
            pub fn from_f64(v: f64) -> Self {
                $name(Fixed::from_f64(v))
            }
            /// True when zero.
            pub fn is_zero(self) -> bool {
                self.0.is_zero()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }
        impl FromStr for $name {
            type Err = DecimalError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }
    };
}

fixed_newtype!(
    /// An exact price in quote currency (USDT).
    Price
);
fixed_newtype!(
    /// An exact quantity in base-coin contracts.
    Qty
);

impl Price {
    /// Price in whole ticks of `tick` (floor). `tick` must be > 0.
    pub fn to_ticks(self, tick: Price) -> i64 {
        if tick.raw() <= 0 {
            return self.raw();
        }
        self.raw().div_euclid(tick.raw())
    }
    /// True when the price is an exact multiple of `tick`.
    pub fn is_on_tick(self, tick: Price) -> bool {
        tick.raw() > 0 && self.raw().rem_euclid(tick.raw()) == 0
    }
    /// Price of `ticks` whole ticks.
    pub fn from_ticks(ticks: i64, tick: Price) -> Price {
        Price::from_raw(ticks * tick.raw())
    }
    /// Rounds down to the tick grid.
    pub fn floor_to_tick(self, tick: Price) -> Price {
        Price(self.0.floor_to(tick.0))
    }
    /// Rounds up to the tick grid.
    pub fn ceil_to_tick(self, tick: Price) -> Price {
        Price(self.0.ceil_to(tick.0))
    }
}

impl Qty {
    /// Rounds down to the quantity step.
    pub fn floor_to_step(self, step: Qty) -> Qty {
        Qty(self.0.floor_to(step.0))
    }
}

/// Order / aggressor side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Side {
    /// Buy / long.
    Buy,
    /// Sell / short.
    Sell,
}

impl Side {
    /// The other side.
    pub fn opposite(self) -> Side {
        match self {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        }
    }
    /// +1 for buy, -1 for sell.
    pub fn sign(self) -> i64 {
        match self {
            Side::Buy => 1,
            Side::Sell => -1,
        }
    }
    /// Bybit's spelling: `"Buy"` / `"Sell"`.
    pub fn as_bybit(self) -> &'static str {
        match self {
            Side::Buy => "Buy",
            Side::Sell => "Sell",
        }
    }
    /// Parses Bybit's `"Buy"` / `"Sell"`.
    pub fn from_bybit(s: &str) -> Option<Side> {
        match s {
            "Buy" => Some(Side::Buy),
            "Sell" => Some(Side::Sell),
            _ => None,
        }
    }
}

/// A Bybit symbol such as `BTCUSDT`. Cheap to clone (shared string).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Symbol(pub std::sync::Arc<str>);

impl Symbol {
    /// New symbol from text.
    pub fn new(s: &str) -> Self {
        Symbol(std::sync::Arc::from(s))
    }
    /// The symbol's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// True when the text is a plausible Bybit symbol (uppercase letters and digits, 2..=32
    /// chars). Used to refuse symbols that could escape a directory when used in paths.
    pub fn is_valid(s: &str) -> bool {
        (2..=32).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    }
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl fmt::Debug for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", &self.0)
    }
}
impl From<&str> for Symbol {
    fn from(s: &str) -> Self {
        Symbol::new(s)
    }
}

/// Symbol category, deciding limits and book depth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    /// BTC, ETH and the most liquid symbols. Never shed.
    Prime,
    /// Everything else that is liquid enough.
    Normal,
    /// New listings, thin or very volatile symbols.
    Wild,
}

impl Category {
    /// Lowercase label (metrics, logs).
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Prime => "prime",
            Category::Normal => "normal",
            Category::Wild => "wild",
        }
    }
}

/// Milliseconds since the Unix epoch (UTC). Time always enters the core inside events.
pub type TimeMs = i64;

/// The two timestamps every event carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct EventTime {
    /// Exchange timestamp when the venue supplied one.
    pub exchange_ms: Option<TimeMs>,
    /// Local receive time (the engine's notion of "now" for this event).
    pub recv_ms: TimeMs,
}

impl EventTime {
    /// Event received at `recv_ms` with no exchange time.
    pub fn local(recv_ms: TimeMs) -> Self {
        EventTime { exchange_ms: None, recv_ms }
    }
}

/// Execution mode of the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Mode {
    /// Local simulated fills (default).
    #[default]
    Sim,
    /// Real feed, decisions logged, no orders sent.
    DryRun,
    /// Real orders. Entered only through the confirmed, PIN-checked control flow.
    Live,
}

impl Mode {
    /// Upper-case label.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Sim => "SIM",
            Mode::DryRun => "DRY_RUN",
            Mode::Live => "LIVE",
        }
    }
    /// Parses `SIM`, `DRY_RUN`, `LIVE` (case-insensitive, `-` accepted for `_`).
    pub fn parse(s: &str) -> Option<Mode> {
        match s.trim().to_ascii_uppercase().replace('-', "_").as_str() {
            "SIM" => Some(Mode::Sim),
            "DRY_RUN" | "DRYRUN" => Some(Mode::DryRun),
            "LIVE" => Some(Mode::Live),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_exact_decimals() {
        assert_eq!(Fixed::parse("26000.5").unwrap().raw(), 2_600_050_000_000);
        assert_eq!(Fixed::parse("0.00000001").unwrap().raw(), 1);
        assert_eq!(Fixed::parse("-0.001").unwrap().raw(), -100_000);
        assert_eq!(Fixed::parse("1.000000000").unwrap().raw(), SCALE);
        assert_eq!(Fixed::parse("7").unwrap().raw(), 7 * SCALE);
        assert!(matches!(Fixed::parse("0.000000001"), Err(DecimalError::TooPrecise(_))));
        assert!(matches!(Fixed::parse("abc"), Err(DecimalError::Invalid(_))));
        assert!(matches!(Fixed::parse(""), Err(DecimalError::Empty)));
        assert!(matches!(Fixed::parse("."), Err(DecimalError::Invalid(_))));
        assert!(matches!(Fixed::parse("99999999999999999"), Err(DecimalError::Overflow(_))));
    }

    #[test]
    fn display_round_trips() {
        for s in ["0", "1", "0.1", "26000.5", "-3.25", "0.00000001"] {
            assert_eq!(Fixed::parse(s).unwrap().to_string(), s);
        }
    }

    #[test]
    fn serde_accepts_strings_and_numbers() {
        let p: Price = serde_json::from_str("\"0.0123\"").unwrap();
        assert_eq!(p, Price::parse("0.0123").unwrap());
        let q: Qty = serde_json::from_str("0.1").unwrap();
        assert_eq!(q, Qty::parse("0.1").unwrap());
        assert_eq!(serde_json::to_string(&p).unwrap(), "\"0.0123\"");
    }

    #[test]
    fn tick_rounding() {
        let tick = Price::parse("0.5").unwrap();
        let p = Price::parse("100.7").unwrap();
        assert_eq!(p.floor_to_tick(tick), Price::parse("100.5").unwrap());
        assert_eq!(p.ceil_to_tick(tick), Price::parse("101").unwrap());
        assert_eq!(p.to_ticks(tick), 201);
        assert!(Price::parse("101").unwrap().is_on_tick(tick));
        let step = Qty::parse("0.001").unwrap();
        assert_eq!(Qty::parse("1.2349").unwrap().floor_to_step(step), Qty::parse("1.234").unwrap());
    }

    #[test]
    fn symbol_validation() {
        assert!(Symbol::is_valid("BTCUSDT"));
        assert!(Symbol::is_valid("1000PEPEUSDT"));
        assert!(!Symbol::is_valid("../etc"));
        assert!(!Symbol::is_valid("btcusdt"));
    }
}
