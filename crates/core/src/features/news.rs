//! News flags: a [`NewsSource`] trait and the working [`ManualNewsSource`], fed by control
//! commands, by the JSON document the edge watches (`data/system/news_flags.json`) and by new
//! listings. Flags expire by event time: an expired flag is never reported and
//! [`ManualNewsSource::expire`] removes it.
//!
//! JSON schema accepted by [`ManualNewsSource::load_from_json`] ([`NewsFile`]):
//!
//! ```json
//! { "flags": [
//!     { "symbol": "SOLUSDT", "impact": 0.8, "type": "HACK",
//!       "time_ms": 1700000000000, "expires_ms": 1700003600000, "note": "exploit reported" }
//! ] }
//! ```
//!
//! `impact` ∈ [0, 1]; `type` is one of `LISTING`, `DELISTING`, `HACK`, `MACRO`, `REGULATORY`,
//! `PARTNERSHIP`, `OTHER` (any other text is read as `OTHER`); `time_ms` defaults to 0 and
//! `note` to empty. A document with an invalid flag is refused as a whole.

use crate::domain::{Symbol, TimeMs};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Kind of news.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum NewsType {
    /// New listing (raised automatically).
    Listing,
    /// Delisting announced.
    Delisting,
    /// Hack / exploit.
    Hack,
    /// Macro event (CPI, FOMC…).
    Macro,
    /// Regulatory action.
    Regulatory,
    /// Partnership / product news.
    Partnership,
    /// Anything else.
    #[serde(other)]
    Other,
}

impl NewsType {
    /// Parses free-form text (case-insensitive); unknown text is `Other`.
    pub fn parse(s: &str) -> NewsType {
        match s.trim().to_ascii_uppercase().as_str() {
            "LISTING" | "NEWS-LISTING" | "NEWS_LISTING" => NewsType::Listing,
            "DELISTING" => NewsType::Delisting,
            "HACK" | "EXPLOIT" => NewsType::Hack,
            "MACRO" => NewsType::Macro,
            "REGULATORY" | "REGULATION" => NewsType::Regulatory,
            "PARTNERSHIP" => NewsType::Partnership,
            _ => NewsType::Other,
        }
    }
    /// Upper-case label.
    pub fn as_str(self) -> &'static str {
        match self {
            NewsType::Listing => "LISTING",
            NewsType::Delisting => "DELISTING",
            NewsType::Hack => "HACK",
            NewsType::Macro => "MACRO",
            NewsType::Regulatory => "REGULATORY",
            NewsType::Partnership => "PARTNERSHIP",
            NewsType::Other => "OTHER",
        }
    }
}

/// Where a flag came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum NewsOrigin {
    /// A control command.
    Manual,
    /// The watched JSON document.
    File,
    /// Raised automatically (new listing).
    Auto,
}

/// One news flag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewsFlag {
    /// Symbol concerned.
    pub symbol: Symbol,
    /// NewsImpactScore ∈ [0, 1].
    pub impact: f64,
    #[serde(rename = "type")]
    pub news_type: NewsType,
    /// NewsTime: when the news happened (ms).
    #[serde(default)]
    pub time_ms: TimeMs,
    /// Expiry (ms): the flag vanishes at this event time.
    pub expires_ms: TimeMs,
    /// Free text.
    #[serde(default)]
    pub note: String,
}

/// The JSON document of news flags (see the module docs).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewsFile {
    #[serde(default)]
    pub flags: Vec<NewsFlag>,
}

/// Why a news document was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NewsError {
    /// Not valid JSON for the schema.
    #[error("news flags document is not valid: {0}")]
    Parse(String),
    /// A flag with a bad value.
    #[error("news flag #{index} ({symbol}): {reason}")]
    Invalid {
        /// Position in `flags`.
        index: usize,
        /// Its symbol text.
        symbol: String,
        /// What is wrong.
        reason: String,
    },
}

/// The strongest active flag of a symbol, as features consume it (`Copy`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NewsView {
    /// NewsImpactScore ∈ [0, 1].
    pub impact: f64,
    pub news_type: NewsType,
    /// NewsTime (ms).
    pub time_ms: TimeMs,
    /// Expiry (ms).
    pub expires_ms: TimeMs,
}

/// A source of news flags.
pub trait NewsSource {
    /// The strongest flag of `symbol` active at `now_ms` (`expires_ms > now_ms`), if any.
    /// Ties on impact go to the latest expiry, then the lowest type.
    fn active(&self, symbol: &Symbol, now_ms: TimeMs) -> Option<NewsView>;
}

/// A source that never has news.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoNews;

impl NewsSource for NoNews {
    fn active(&self, _symbol: &Symbol, _now_ms: TimeMs) -> Option<NewsView> {
        None
    }
}

/// Settings of automatic flags.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NewsConfig {
    /// Impact of the automatic NEWS-LISTING flag. [0, 1].
    pub listing_impact: f64,
    /// How long the listing flag lasts, ms. > 0.
    pub listing_ttl_ms: i64,
}

impl Default for NewsConfig {
    fn default() -> Self {
        NewsConfig { listing_impact: 0.8, listing_ttl_ms: 30 * 60 * 1000 }
    }
}

impl NewsConfig {
    /// Problems with the values.
    pub fn validate(&self, prefix: &str, e: &mut Vec<String>) {
        if !(self.listing_impact.is_finite() && (0.0..=1.0).contains(&self.listing_impact)) {
            e.push(format!("{prefix}.listing_impact must be in [0, 1], got {}", self.listing_impact));
        }
        if self.listing_ttl_ms <= 0 {
            e.push(format!("{prefix}.listing_ttl_ms must be > 0, got {}", self.listing_ttl_ms));
        }
    }
}

/// Manually managed flags: at most one flag per (symbol, origin, type); iteration is ordered.
#[derive(Debug, Clone, Default)]
pub struct ManualNewsSource {
    cfg: NewsConfig,
    flags: BTreeMap<(Symbol, NewsOrigin, NewsType), NewsFlag>,
}

fn check_flag(f: &NewsFlag) -> Result<(), String> {
    if !(f.impact.is_finite() && (0.0..=1.0).contains(&f.impact)) {
        return Err(format!("impact must be in [0, 1], got {}", f.impact));
    }
    if !Symbol::is_valid(f.symbol.as_str()) {
        return Err("invalid symbol".into());
    }
    Ok(())
}

impl ManualNewsSource {
    /// Empty source.
    pub fn new(cfg: NewsConfig) -> Self {
        ManualNewsSource { cfg, flags: BTreeMap::new() }
    }

    /// Replaces the settings.
    pub fn set_config(&mut self, cfg: NewsConfig) {
        self.cfg = cfg;
    }

    /// Sets (or replaces) a manual flag, e.g. from `ControlCommand::SetNewsFlag`. The impact is
    /// clamped to [0, 1]; NaN is refused (returns false).
    pub fn set(&mut self, mut flag: NewsFlag) -> bool {
        if flag.impact.is_nan() {
            return false;
        }
        flag.impact = flag.impact.clamp(0.0, 1.0);
        self.flags.insert((flag.symbol.clone(), NewsOrigin::Manual, flag.news_type), flag);
        true
    }

    /// Sets a manual flag from the fields of `ControlCommand::SetNewsFlag`.
    pub fn set_manual(
        &mut self,
        symbol: &Symbol,
        impact: f64,
        news_type: &str,
        now_ms: TimeMs,
        expires_ms: TimeMs,
    ) -> bool {
        self.set(NewsFlag {
            symbol: symbol.clone(),
            impact,
            news_type: NewsType::parse(news_type),
            time_ms: now_ms,
            expires_ms,
            note: String::new(),
        })
    }

    /// Removes every flag of a symbol (all origins); returns how many were removed.
    pub fn clear(&mut self, symbol: &Symbol) -> usize {
        let before = self.flags.len();
        self.flags.retain(|k, _| &k.0 != symbol);
        before - self.flags.len()
    }

    /// Raises the automatic NEWS-LISTING flag for a newly listed symbol.
    pub fn on_new_listing(&mut self, symbol: &Symbol, now_ms: TimeMs) {
        let flag = NewsFlag {
            symbol: symbol.clone(),
            impact: self.cfg.listing_impact,
            news_type: NewsType::Listing,
            time_ms: now_ms,
            expires_ms: now_ms.saturating_add(self.cfg.listing_ttl_ms),
            note: "new listing".into(),
        };
        self.flags.insert((symbol.clone(), NewsOrigin::Auto, NewsType::Listing), flag);
    }

    /// Parses a news document (see the module docs) without applying it.
    pub fn parse_json(s: &str) -> Result<NewsFile, NewsError> {
        let file: NewsFile = serde_json::from_str(s).map_err(|e| NewsError::Parse(e.to_string()))?;
        for (index, f) in file.flags.iter().enumerate() {
            check_flag(f).map_err(|reason| NewsError::Invalid { index, symbol: f.symbol.to_string(), reason })?;
        }
        Ok(file)
    }

    /// Replaces every file-origin flag with the document's flags; returns how many were loaded.
    /// On error nothing changes.
    pub fn load_from_json(&mut self, s: &str) -> Result<usize, NewsError> {
        let file = Self::parse_json(s)?;
        Ok(self.load_file(file))
    }

    /// Replaces every file-origin flag with an already parsed document.
    pub fn load_file(&mut self, file: NewsFile) -> usize {
        self.flags.retain(|k, _| k.1 != NewsOrigin::File);
        let n = file.flags.len();
        for f in file.flags {
            self.flags.insert((f.symbol.clone(), NewsOrigin::File, f.news_type), f);
        }
        n
    }

    /// Removes flags with `expires_ms <= now_ms` and returns them (in key order).
    pub fn expire(&mut self, now_ms: TimeMs) -> Vec<NewsFlag> {
        let mut gone = Vec::new();
        if self.flags.values().any(|f| f.expires_ms <= now_ms) {
            let old = std::mem::take(&mut self.flags);
            for (k, f) in old {
                if f.expires_ms <= now_ms {
                    gone.push(f);
                } else {
                    self.flags.insert(k, f);
                }
            }
        }
        gone
    }

    /// Every stored flag (expired ones included until [`ManualNewsSource::expire`]), ordered.
    pub fn flags(&self) -> impl Iterator<Item = &NewsFlag> + '_ {
        self.flags.values()
    }

    /// Number of stored flags.
    pub fn len(&self) -> usize {
        self.flags.len()
    }

    /// True when no flag is stored.
    pub fn is_empty(&self) -> bool {
        self.flags.is_empty()
    }
}

impl NewsSource for ManualNewsSource {
    fn active(&self, symbol: &Symbol, now_ms: TimeMs) -> Option<NewsView> {
        let lo = (symbol.clone(), NewsOrigin::Manual, NewsType::Listing);
        let mut best: Option<NewsView> = None;
        for ((s, _, _), f) in self.flags.range(lo..) {
            if s != symbol {
                break;
            }
            if f.expires_ms <= now_ms {
                continue;
            }
            let v = NewsView { impact: f.impact, news_type: f.news_type, time_ms: f.time_ms, expires_ms: f.expires_ms };
            best = match best {
                Some(b) if (b.impact, b.expires_ms) >= (v.impact, v.expires_ms) => Some(b),
                _ => Some(v),
            };
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_flags_expire_by_event_time() {
        let mut n = ManualNewsSource::new(NewsConfig::default());
        let sol = Symbol::new("SOLUSDT");
        assert!(n.set_manual(&sol, 0.7, "hack", 1_000, 5_000));
        assert!(n.set_manual(&sol, 1.7, "macro", 1_000, 3_000), "clamped to 1");
        assert!(!n.set_manual(&sol, f64::NAN, "macro", 1_000, 3_000));
        let v = n.active(&sol, 2_000).unwrap();
        assert_eq!((v.impact, v.news_type), (1.0, NewsType::Macro));
        // At 3 000 the macro flag has expired; the hack flag remains.
        let v = n.active(&sol, 3_000).unwrap();
        assert_eq!((v.impact, v.news_type, v.expires_ms), (0.7, NewsType::Hack, 5_000));
        assert_eq!(n.active(&sol, 5_000), None);
        assert_eq!(n.active(&Symbol::new("BTCUSDT"), 2_000), None);
        let gone = n.expire(3_000);
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].news_type, NewsType::Macro);
        assert_eq!(n.len(), 1);
        assert_eq!(n.clear(&sol), 1);
        assert!(n.is_empty());
    }

    #[test]
    fn new_listing_raises_flag() {
        let mut n = ManualNewsSource::new(NewsConfig { listing_impact: 0.6, listing_ttl_ms: 10_000 });
        let s = Symbol::new("NEWUSDT");
        n.on_new_listing(&s, 100);
        let v = n.active(&s, 100).unwrap();
        assert_eq!((v.news_type, v.impact, v.time_ms, v.expires_ms), (NewsType::Listing, 0.6, 100, 10_100));
        assert_eq!(n.active(&s, 10_100), None);
    }

    #[test]
    fn json_document() {
        let mut n = ManualNewsSource::new(NewsConfig::default());
        let doc = r#"{"flags":[
            {"symbol":"SOLUSDT","impact":0.8,"type":"HACK","time_ms":1,"expires_ms":100,"note":"x"},
            {"symbol":"ETHUSDT","impact":0.3,"type":"SOMETHING","expires_ms":100}
        ]}"#;
        assert_eq!(n.load_from_json(doc), Ok(2));
        assert_eq!(n.active(&Symbol::new("ETHUSDT"), 50).unwrap().news_type, NewsType::Other);
        // A manual flag survives a reload of the file; file flags are replaced.
        n.set_manual(&Symbol::new("BTCUSDT"), 0.5, "MACRO", 0, 100);
        assert_eq!(n.load_from_json(r#"{"flags":[]}"#), Ok(0));
        assert_eq!(n.len(), 1);
        // Errors change nothing and never panic.
        for bad in [
            "",
            "{",
            r#"{"flags":[{"symbol":"SOLUSDT","impact":2,"type":"HACK","expires_ms":1}]}"#,
            r#"{"flags":[{"symbol":"../x","impact":0.5,"type":"HACK","expires_ms":1}]}"#,
            r#"{"flags":[{"symbol":"SOLUSDT","type":"HACK","expires_ms":1}]}"#,
            r#"{"flagz":[]}"#,
        ] {
            assert!(n.load_from_json(bad).is_err(), "{bad}");
        }
        assert_eq!(n.len(), 1);
        let e = ManualNewsSource::parse_json(
            r#"{"flags":[{"symbol":"SOLUSDT","impact":-1,"type":"HACK","expires_ms":1}]}"#,
        );
        assert!(matches!(e, Err(NewsError::Invalid { index: 0, .. })));
        // Round trip of the schema.
        let f = NewsFile {
            flags: vec![NewsFlag {
                symbol: Symbol::new("SOLUSDT"),
                impact: 0.5,
                news_type: NewsType::Regulatory,
                time_ms: 5,
                expires_ms: 9,
                note: String::new(),
            }],
        };
        let json = serde_json::to_string(&f).unwrap();
        assert!(json.contains(r#""type":"REGULATORY""#), "{json}");
        assert_eq!(ManualNewsSource::parse_json(&json).unwrap(), f);
    }
}
