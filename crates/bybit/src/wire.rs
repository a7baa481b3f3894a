//! Readers of Bybit's v5 wire conventions, shared by the public and the private decoders: most
//! numbers arrive as strings (sometimes as JSON numbers), `""` / `null` / an absent field mean
//! "no value", timestamps are integer milliseconds in either form, sides are `"Buy"` / `"Sell"`.
//!
//! Kept apart from both connectors so that one convention has one reader: the public messages
//! use the `de_*` field deserializers, the private ones read every scalar as [`Txt`] and convert
//! it with its methods. Error texts are part of what these readers do (they end up in decode
//! errors and logs), so each keeps its own wording.

use crate::error::BybitError;
use scalper_core::domain::{Fixed, Price, Qty, Side, TimeMs};
use scalper_core::market::data::Level;
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use std::fmt;

/// A JSON scalar read as text: strings as they are, numbers in their decimal form, `null` (and
/// an absent value) empty. `BOOL` decides whether booleans are text too (`"true"` / `"false"`,
/// as the private API needs for flags) or an invalid type (the public API never sends one where
/// text is read); it also picks the `expecting` wording of each caller.
struct TextVisitor<const BOOL: bool>;

impl<const BOOL: bool> Visitor<'_> for TextVisitor<BOOL> {
    type Value = String;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if BOOL { "a string, a number, a boolean or null" } else { "a string or a number" })
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<String, E> {
        Ok(v)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<String, E> {
        Ok(format!("{v}"))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<String, E> {
        if BOOL {
            Ok(v.to_string())
        } else {
            // serde's default answer to an unexpected boolean.
            Err(E::invalid_type(de::Unexpected::Bool(v), &self))
        }
    }
    fn visit_unit<E: de::Error>(self) -> Result<String, E> {
        Ok(String::new())
    }
    fn visit_none<E: de::Error>(self) -> Result<String, E> {
        Ok(String::new())
    }
}

/// Reads a string or a number as text (`null` → empty; a boolean is refused).
pub(crate) fn de_text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    d.deserialize_any(TextVisitor::<false>)
}

/// Reads an integer given as a number or a decimal-integer string.
pub(crate) fn de_i64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = i64;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an integer or an integer string")
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
            Ok(v)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
            i64::try_from(v).map_err(|_| E::custom("integer out of range"))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<i64, E> {
            v.trim().parse().map_err(|_| E::custom(format!("invalid integer {v:?}")))
        }
    }
    d.deserialize_any(V)
}

/// Reads an unsigned integer given as a number or a string.
pub(crate) fn de_u64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = u64;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an unsigned integer or an integer string")
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
            u64::try_from(v).map_err(|_| E::custom("negative integer"))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
            Ok(v)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
            v.trim().parse().map_err(|_| E::custom(format!("invalid unsigned integer {v:?}")))
        }
    }
    d.deserialize_any(V)
}

/// Optional integer: absent, `null` or `""` → `None`.
pub(crate) fn de_opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<i64>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an optional integer")
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            i64::try_from(v).map(Some).map_err(|_| E::custom("integer out of range"))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            if v.trim().is_empty() {
                return Ok(None);
            }
            v.trim().parse().map(Some).map_err(|_| E::custom(format!("invalid integer {v:?}")))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
            d.deserialize_any(self)
        }
    }
    d.deserialize_any(V)
}

/// Optional exact decimal: absent, `null` or `""` (Bybit's "no value", e.g. pre-launch
/// tickers) → `None`; anything else must parse exactly.
pub(crate) fn de_opt_fixed<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Fixed>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<Fixed>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an optional decimal string")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            if v.trim().is_empty() {
                return Ok(None);
            }
            Fixed::parse(v).map(Some).map_err(E::custom)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Fixed::parse(&v.to_string()).map(Some).map_err(E::custom)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Fixed::parse(&v.to_string()).map(Some).map_err(E::custom)
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            Fixed::parse(&format!("{v}")).map(Some).map_err(E::custom)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
            d.deserialize_any(self)
        }
    }
    d.deserialize_any(V)
}

pub(crate) fn de_opt_price<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Price>, D::Error> {
    de_opt_fixed(d).map(|o| o.map(Price))
}

/// Optional analytics number (`f64`), from a decimal string or a number; `""` → `None`;
/// non-finite values are refused.
pub(crate) fn de_opt_f64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<f64>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an optional decimal string")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            let t = v.trim();
            if t.is_empty() {
                return Ok(None);
            }
            match t.parse::<f64>() {
                Ok(x) if x.is_finite() => Ok(Some(x)),
                _ => Err(E::custom(format!("invalid number {v:?}"))),
            }
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v as f64))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v as f64))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            if v.is_finite() {
                Ok(Some(v))
            } else {
                Err(E::custom("non-finite number"))
            }
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
            d.deserialize_any(self)
        }
    }
    d.deserialize_any(V)
}

/// Bybit's `"Buy"` / `"Sell"`.
pub(crate) fn de_side<'de, D: Deserializer<'de>>(d: D) -> Result<Side, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Side;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("\"Buy\" or \"Sell\"")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Side, E> {
            Side::from_bybit(v).ok_or_else(|| E::custom(format!("invalid side {v:?}")))
        }
    }
    d.deserialize_str(V)
}

/// Book levels `[["price","size"], …]` parsed exactly, without intermediate strings.
pub(crate) fn de_levels<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Level>, D::Error> {
    let raw: Vec<(Price, Qty)> = Vec::deserialize(d)?;
    Ok(raw.into_iter().map(|(price, qty)| Level { price, qty }).collect())
}

/// A value that does not have the documented shape, as [`BybitError::Decode`].
pub(crate) fn decode_err(e: impl fmt::Display) -> BybitError {
    BybitError::Decode(e.to_string())
}

/// A JSON value read as text: strings as they are, numbers in their decimal form, booleans as
/// `true` / `false`, `null` empty. The private decoders read every scalar this way and convert it
/// with the methods below, which name the field in their errors.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Txt(pub String);

impl<'de> Deserialize<'de> for Txt {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TextVisitor::<true>).map(Txt)
    }
}

impl Txt {
    /// The text without surrounding whitespace.
    pub(crate) fn s(&self) -> &str {
        self.0.trim()
    }
    /// Exact decimal; empty → `None`.
    pub(crate) fn dec(&self, field: &str) -> Result<Option<Fixed>, BybitError> {
        if self.s().is_empty() {
            return Ok(None);
        }
        Fixed::parse(self.s()).map(Some).map_err(|e| decode_err(format!("{field}: {e}")))
    }
    /// Exact decimal; empty → zero.
    pub(crate) fn dec0(&self, field: &str) -> Result<Fixed, BybitError> {
        Ok(self.dec(field)?.unwrap_or(Fixed::ZERO))
    }
    /// Exact decimal that can never be negative (sizes, prices, values); empty → zero.
    pub(crate) fn nonneg(&self, field: &str) -> Result<Fixed, BybitError> {
        let v = self.dec0(field)?;
        if v.raw() < 0 {
            return Err(decode_err(format!("{field}: {v} is negative")));
        }
        Ok(v)
    }
    /// Exact decimal that must be strictly positive (an execution's price and quantity).
    pub(crate) fn positive(&self, field: &str) -> Result<Fixed, BybitError> {
        let v = self.nonneg(field)?;
        if v.is_zero() {
            return Err(decode_err(format!("{field}: must be positive, got {:?}", self.0)));
        }
        Ok(v)
    }
    /// A price where `""` and `"0"` mean "none"; a negative one is refused.
    pub(crate) fn price(&self, field: &str) -> Result<Option<Price>, BybitError> {
        Ok(Some(self.nonneg(field)?).filter(|v| !v.is_zero()).map(Price))
    }
    /// Integer milliseconds; empty → 0.
    pub(crate) fn ms(&self, field: &str) -> Result<TimeMs, BybitError> {
        if self.s().is_empty() {
            return Ok(0);
        }
        self.s().parse::<i64>().map_err(|_| decode_err(format!("{field}: {:?} is not an integer", self.0)))
    }
    /// `true` / `false` / `1` / `0`; empty → false.
    pub(crate) fn flag(&self) -> bool {
        matches!(self.s(), "true" | "1")
    }
}
