//! The single pass over a public WS frame: the envelope's keys are read in document order and
//! `data` is decoded straight into the type its topic calls for, as long as `topic` came first
//! (Bybit puts it first in every public frame). `data` seen before `topic` is skipped and flagged
//! ([`Parts::data_early`]) so that the caller decodes it in a second pass; the other envelope
//! fields (`type`, `ts`, `cts`) are kept as small JSON values and checked by the caller only when
//! the topic is one it handles, so an unknown topic never fails on them.

use super::{route, FrameData, WsLiquidation, WsOrderbookData, WsTrade};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;
use std::borrow::Cow;
use std::fmt;

/// What the pass found besides the topic (which goes into the caller's slot, so that an error
/// in `data` can still name it).
#[derive(Default)]
pub(super) struct Parts {
    /// An `op` key with a string value (an operation response).
    pub op: bool,
    /// `type`, as given.
    pub kind: Option<Value>,
    /// `ts`, as given.
    pub ts: Option<Value>,
    /// `cts`, as given.
    pub cts: Option<Value>,
    /// `data` decoded for the topic (absent: no `data`, data of an unhandled topic, or
    /// [`Parts::data_early`]).
    pub data: Option<FrameData>,
    /// `data` came before `topic` and was skipped.
    pub data_early: bool,
    /// The first envelope field given twice (`type`, `ts`, `cts` or `data`).
    pub duplicate: Option<&'static str>,
}

/// Which typed `data` a handled topic carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DataKind {
    Book,
    Trades,
    Ticker,
    Liquidations,
}

/// Reads `text` in one pass; `topic` receives the frame's topic as soon as it is read (`null`
/// reads as no topic). Malformed JSON, trailing characters, a non-string `topic` or `op`, a
/// repeated `topic` or `op`, and a `data` that does not decode for its topic are errors.
pub(super) fn read<'a>(text: &'a str, topic: &mut Option<Cow<'a, str>>) -> Result<Parts, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(text);
    let parts = de.deserialize_map(FrameVisitor { topic })?;
    de.end()?;
    Ok(parts)
}

/// Decodes a `data` value of `kind` (the second pass of a frame whose `data` came first).
pub(super) struct DataSeed(pub DataKind);

impl<'de> DeserializeSeed<'de> for DataSeed {
    type Value = FrameData;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<FrameData, D::Error> {
        Ok(match self.0 {
            DataKind::Book => FrameData::Book(WsOrderbookData::deserialize(d)?),
            DataKind::Trades => FrameData::Trades(Vec::<WsTrade>::deserialize(d)?),
            DataKind::Ticker => FrameData::Ticker(super::TickerData::deserialize(d)?),
            DataKind::Liquidations => FrameData::Liquidations(super::OneOrMany::<WsLiquidation>::deserialize(d)?),
        })
    }
}

/// Reads only `data` of a frame (other keys skipped); `data` absent is an error.
pub(super) fn read_data(text: &str, kind: DataKind) -> Result<FrameData, serde_json::Error> {
    struct V(DataKind);
    impl<'de> Visitor<'de> for V {
        type Value = FrameData;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a public frame object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FrameData, A::Error> {
            let mut data = None;
            while let Some(key) = map.next_key::<Key>()? {
                if key == Key::Data && data.is_none() {
                    data = Some(map.next_value_seed(DataSeed(self.0))?);
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            data.ok_or_else(|| de::Error::missing_field("data"))
        }
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let data = de.deserialize_map(V(kind))?;
    de.end()?;
    Ok(data)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    Topic,
    Op,
    Type,
    Ts,
    Cts,
    Data,
    Other,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Key, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
                Ok(match v {
                    "topic" => Key::Topic,
                    "op" => Key::Op,
                    "type" => Key::Type,
                    "ts" => Key::Ts,
                    "cts" => Key::Cts,
                    "data" => Key::Data,
                    _ => Key::Other,
                })
            }
        }
        d.deserialize_identifier(V)
    }
}

/// A string borrowed from the frame when it has no escapes, owned otherwise; `null` → `None`.
struct OptStr<'a>(Option<Cow<'a, str>>);

impl<'de> Deserialize<'de> for OptStr<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OptStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or null")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(OptStr(Some(Cow::Borrowed(v))))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(OptStr(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(OptStr(Some(Cow::Owned(v))))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(OptStr(None))
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(OptStr(None))
            }
            fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
                d.deserialize_any(self)
            }
        }
        d.deserialize_option(V)
    }
}

struct FrameVisitor<'s, 'a> {
    topic: &'s mut Option<Cow<'a, str>>,
}

impl<'de> Visitor<'de> for FrameVisitor<'_, 'de> {
    type Value = Parts;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a public frame object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Parts, A::Error> {
        let mut parts = Parts::default();
        let (mut topic_seen, mut op_seen) = (false, false);
        // The typed `data` of the topic, once the topic is known (`None`: skip `data`).
        let mut kind: Option<DataKind> = None;
        let mut data_seen = false;
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Topic => {
                    if topic_seen {
                        return Err(de::Error::duplicate_field("topic"));
                    }
                    topic_seen = true;
                    let t = map.next_value::<OptStr<'de>>()?.0;
                    kind = t.as_deref().and_then(|t| route(t).ok()).and_then(|r| r.data_kind());
                    *self.topic = t;
                }
                Key::Op => {
                    if op_seen {
                        return Err(de::Error::duplicate_field("op"));
                    }
                    op_seen = true;
                    parts.op = map.next_value::<OptStr<'de>>()?.0.is_some();
                }
                Key::Type => store(&mut map, &mut parts.kind, "type", &mut parts.duplicate)?,
                Key::Ts => store(&mut map, &mut parts.ts, "ts", &mut parts.duplicate)?,
                Key::Cts => store(&mut map, &mut parts.cts, "cts", &mut parts.duplicate)?,
                Key::Data => {
                    if data_seen {
                        parts.duplicate.get_or_insert("data");
                        map.next_value::<IgnoredAny>()?;
                        continue;
                    }
                    data_seen = true;
                    match kind {
                        Some(k) => parts.data = Some(map.next_value_seed(DataSeed(k))?),
                        None => {
                            parts.data_early = !topic_seen;
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(parts)
    }
}

/// Keeps the first value of an envelope field, noting a repeat.
fn store<'de, A: MapAccess<'de>>(
    map: &mut A,
    slot: &mut Option<Value>,
    name: &'static str,
    duplicate: &mut Option<&'static str>,
) -> Result<(), A::Error> {
    if slot.is_some() {
        duplicate.get_or_insert(name);
        map.next_value::<IgnoredAny>()?;
    } else {
        *slot = Some(map.next_value::<Value>()?);
    }
    Ok(())
}
