//! Where everything lives on disk. Resolved once at start-up; no other module builds a path by
//! hand — they ask [`Paths`].

use crate::domain::Symbol;
use std::path::{Path, PathBuf};

/// Data kinds stored under the data directory, one sub-directory each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataKind {
    /// Order-book snapshots.
    Orderbook,
    /// Public trades.
    TradesStream,
    /// Closed micro-candles.
    Microcandles,
    /// Per-symbol feature snapshots.
    Metrics,
    /// Engine events (state changes, regime changes, spoof/pump events…).
    Events,
    /// Closed trades and day summaries.
    TradesLog,
    /// Symbol profiles (kept forever).
    Profiles,
    /// System records (retention log, news flags, health).
    System,
    /// Raw recorded input events for replay.
    Raw,
}

impl DataKind {
    /// Every kind.
    pub const ALL: [DataKind; 9] = [
        DataKind::Orderbook,
        DataKind::TradesStream,
        DataKind::Microcandles,
        DataKind::Metrics,
        DataKind::Events,
        DataKind::TradesLog,
        DataKind::Profiles,
        DataKind::System,
        DataKind::Raw,
    ];
    /// Directory name.
    pub fn dir_name(self) -> &'static str {
        match self {
            DataKind::Orderbook => "orderbook",
            DataKind::TradesStream => "trades_stream",
            DataKind::Microcandles => "microcandles",
            DataKind::Metrics => "metrics",
            DataKind::Events => "events",
            DataKind::TradesLog => "trades_log",
            DataKind::Profiles => "profiles",
            DataKind::System => "system",
            DataKind::Raw => "raw",
        }
    }
    /// True for high-volume hourly files that retention deletes after the retention window.
    pub fn is_raw_stream(self) -> bool {
        matches!(
            self,
            DataKind::Orderbook
                | DataKind::TradesStream
                | DataKind::Microcandles
                | DataKind::Events
                | DataKind::Raw
                | DataKind::Metrics
        )
    }
}

/// Resolved directories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    root: PathBuf,
    data: PathBuf,
}

impl Paths {
    /// Resolves the data directory: `env_data_dir` (from `SCALPER_DATA_DIR`) wins over
    /// `config_data_dir`, which wins over `<root>/data`. Relative paths are taken from `root`.
    pub fn resolve(root: &Path, config_data_dir: Option<&Path>, env_data_dir: Option<&Path>) -> Paths {
        let chosen = env_data_dir.or(config_data_dir);
        let data = match chosen {
            Some(p) if p.is_absolute() => p.to_path_buf(),
            Some(p) => root.join(p),
            None => root.join("data"),
        };
        Paths { root: root.to_path_buf(), data }
    }

    /// Paths rooted at `data_dir` directly (tests, replay tools).
    pub fn with_data_dir(data_dir: impl Into<PathBuf>) -> Paths {
        let data = data_dir.into();
        let root = data.parent().map(Path::to_path_buf).unwrap_or_else(|| data.clone());
        Paths { root, data }
    }

    /// Project root.
    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn data_dir(&self) -> &Path {
        &self.data
    }
    /// LOG_DIR (`<data>/logs`).
    pub fn log_dir(&self) -> PathBuf {
        self.data.join("logs")
    }
    /// PROFILES_DIR (`<data>/profiles`).
    pub fn profiles_dir(&self) -> PathBuf {
        self.kind_dir(DataKind::Profiles)
    }
    /// SYSTEM_DIR (`<data>/system`).
    pub fn system_dir(&self) -> PathBuf {
        self.kind_dir(DataKind::System)
    }
    /// Directory of one data kind.
    pub fn kind_dir(&self, kind: DataKind) -> PathBuf {
        self.data.join(kind.dir_name())
    }
    /// Directory of one kind and symbol (`None` = the kind's global files).
    pub fn symbol_dir(&self, kind: DataKind, symbol: Option<&Symbol>) -> PathBuf {
        match symbol {
            Some(s) => self.kind_dir(kind).join(s.as_str()),
            None => self.kind_dir(kind).join("_global"),
        }
    }
    /// Hourly JSONL file for `hour_key` (`YYYY-MM-DDTHH`).
    pub fn hourly_file(&self, kind: DataKind, symbol: Option<&Symbol>, hour_key: &str) -> PathBuf {
        self.symbol_dir(kind, symbol).join(format!("{hour_key}.jsonl"))
    }
    /// Snapshot file of one kind and symbol (`<data>/<kind>/<SYMBOL>.json`).
    pub fn snapshot_file(&self, kind: DataKind, name: &str) -> PathBuf {
        self.kind_dir(kind).join(format!("{name}.json"))
    }
    /// Profile file of a symbol.
    pub fn profile_file(&self, symbol: &Symbol) -> PathBuf {
        self.snapshot_file(DataKind::Profiles, symbol.as_str())
    }
    /// Per-day trade summary (`<data>/trades_log/day-YYYY-MM-DD.json`).
    pub fn day_summary_file(&self, day: &str) -> PathBuf {
        self.kind_dir(DataKind::TradesLog).join(format!("day-{day}.json"))
    }
    /// Retention run log.
    pub fn retention_log(&self) -> PathBuf {
        self.system_dir().join("retention.log.jsonl")
    }
    /// Manual news flags file.
    pub fn news_flags_file(&self) -> PathBuf {
        self.system_dir().join("news_flags.json")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_wins_over_config_and_relative_is_rooted() {
        let root = Path::new("/srv/scalper");
        let p = Paths::resolve(root, Some(Path::new("cfgdata")), None);
        assert_eq!(p.data_dir(), root.join("cfgdata"));
        let p = Paths::resolve(root, Some(Path::new("cfgdata")), Some(Path::new("/mnt/d")));
        assert_eq!(p.data_dir(), Path::new("/mnt/d"));
        let p = Paths::resolve(root, None, None);
        assert_eq!(p.data_dir(), root.join("data"));
        assert_eq!(p.profiles_dir(), root.join("data").join("profiles"));
        assert_eq!(
            p.hourly_file(DataKind::Events, Some(&Symbol::new("BTCUSDT")), "2026-11-24T13"),
            root.join("data").join("events").join("BTCUSDT").join("2026-11-24T13.jsonl")
        );
    }
}
