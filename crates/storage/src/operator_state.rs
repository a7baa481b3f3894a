//! Operator state that survives a restart: the blacklist (`system/blacklist.json`,
//! `{"symbols": ["SOLUSDT"]}`) and the manual news flags (`system/news_flags.json`, the
//! [`NewsFile`] schema of `features::news`).
//!
//! The edge mirrors every blacklist and news-flag control command the core consumed and, when the
//! mirror changes, has the store replace the file atomically (temp file + fsync + rename). At
//! start the files are read back into the *same* control commands the control plane sends, fed
//! to the core as its first input events, so a recording (and its replay) holds them. Expired
//! news flags are not restored. A file that cannot be read as its schema is logged, counted
//! (`scalper_operator_state_corrupt_total{file}`), moved aside to `<name>.json.corrupt` and
//! ignored: the engine starts without it.

use crate::json_store::StoreHandle;
use scalper_control::monitoring::metrics::Metrics;
use scalper_core::config::paths::{DataKind, Paths};
use scalper_core::domain::{Symbol, TimeMs};
use scalper_core::engine::event::ControlCommand;
use scalper_core::features::news::{ManualNewsSource, NewsFile, NewsFlag, NewsType};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Snapshot name of the blacklist under `system/`.
pub const BLACKLIST_NAME: &str = "blacklist";
/// Snapshot name of the news flags under `system/`.
pub const NEWS_FLAGS_NAME: &str = "news_flags";

/// The blacklist document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlacklistFile {
    /// Symbols the operator blocked from new entries, sorted.
    pub symbols: Vec<Symbol>,
}

/// The operator's blacklist and news flags as last commanded.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OperatorState {
    blacklist: BTreeSet<Symbol>,
    /// Keyed like the core's manual flags: one per symbol and type.
    news: BTreeMap<(Symbol, NewsType), NewsFlag>,
}

/// Which files a command changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Changed {
    /// `system/blacklist.json` must be rewritten.
    pub blacklist: bool,
    /// `system/news_flags.json` must be rewritten.
    pub news: bool,
}

impl OperatorState {
    /// Reads both files under `paths` and returns the state and the control commands that
    /// restore it in the core (blacklist first, then the news flags not expired at `now_ms`).
    pub fn load(paths: &Paths, now_ms: TimeMs, metrics: &Metrics) -> (OperatorState, Vec<ControlCommand>) {
        let mut st = OperatorState::default();
        let mut cmds = Vec::new();
        let bl_path = paths.snapshot_file(DataKind::System, BLACKLIST_NAME);
        if let Some(bytes) = read_optional(&bl_path) {
            match serde_json::from_slice::<BlacklistFile>(&bytes) {
                Ok(f) if f.symbols.iter().all(|s| Symbol::is_valid(s.as_str())) => {
                    for s in f.symbols {
                        if st.blacklist.insert(s.clone()) {
                            cmds.push(ControlCommand::Blacklist(s));
                        }
                    }
                }
                Ok(_) => set_aside(&bl_path, BLACKLIST_NAME, "a symbol is not valid", metrics),
                Err(e) => set_aside(&bl_path, BLACKLIST_NAME, &e.to_string(), metrics),
            }
        }
        let news_path = paths.news_flags_file();
        if let Some(bytes) = read_optional(&news_path) {
            match std::str::from_utf8(&bytes)
                .map_err(|e| e.to_string())
                .and_then(|s| ManualNewsSource::parse_json(s).map_err(|e| e.to_string()))
            {
                Ok(file) => {
                    let mut expired = 0;
                    for f in file.flags {
                        if f.expires_ms <= now_ms {
                            expired += 1;
                            continue;
                        }
                        cmds.push(ControlCommand::SetNewsFlag {
                            symbol: f.symbol.clone(),
                            impact: f.impact,
                            news_type: f.news_type.as_str().to_string(),
                            expires_ms: f.expires_ms,
                        });
                        st.news.insert((f.symbol.clone(), f.news_type), f);
                    }
                    if expired > 0 {
                        tracing::info!(expired, "expired news flags not restored");
                    }
                }
                Err(e) => set_aside(&news_path, NEWS_FLAGS_NAME, &e, metrics),
            }
        }
        if !cmds.is_empty() {
            tracing::info!(blacklisted = st.blacklist.len(), news_flags = st.news.len(), "operator state restored");
        }
        (st, cmds)
    }

    /// Mirrors one control command consumed by the core at `now_ms`; says which files changed.
    pub fn apply(&mut self, cmd: &ControlCommand, now_ms: TimeMs) -> Changed {
        let mut ch = Changed::default();
        match cmd {
            ControlCommand::Blacklist(s) => ch.blacklist = self.blacklist.insert(s.clone()),
            ControlCommand::Unblacklist(s) => ch.blacklist = self.blacklist.remove(s),
            ControlCommand::SetNewsFlag { symbol, impact, news_type, expires_ms } => {
                let kind = NewsType::parse(news_type);
                let flag = NewsFlag {
                    symbol: symbol.clone(),
                    impact: *impact,
                    news_type: kind,
                    time_ms: now_ms,
                    expires_ms: *expires_ms,
                    note: String::new(),
                };
                let same = self
                    .news
                    .get(&(symbol.clone(), kind))
                    .is_some_and(|f| f.impact == flag.impact && f.expires_ms == flag.expires_ms);
                if !same {
                    self.news.insert((symbol.clone(), kind), flag);
                    ch.news = true;
                }
            }
            ControlCommand::ClearNewsFlag(s) => {
                let before = self.news.len();
                self.news.retain(|(sym, _), _| sym != s);
                ch.news = self.news.len() != before;
            }
            _ => {}
        }
        ch
    }

    /// Symbols blacklisted by the operator.
    pub fn blacklist(&self) -> impl Iterator<Item = &Symbol> {
        self.blacklist.iter()
    }

    /// The news flags as their file holds them.
    pub fn news_file(&self) -> NewsFile {
        NewsFile { flags: self.news.values().cloned().collect() }
    }

    /// Queues the atomic rewrite of the changed files; a refusal (queue full, writer gone) is
    /// logged: the file then holds the previous state until the next change.
    pub fn persist(&self, ch: Changed, store: &StoreHandle) {
        if ch.blacklist {
            let doc = BlacklistFile { symbols: self.blacklist.iter().cloned().collect() };
            if let Err(e) = store.try_set_snapshot(DataKind::System, BLACKLIST_NAME, &doc) {
                tracing::error!(error = %e, "blacklist not persisted; it will not survive a restart");
            }
        }
        if ch.news {
            if let Err(e) = store.try_set_snapshot(DataKind::System, NEWS_FLAGS_NAME, &self.news_file()) {
                tracing::error!(error = %e, "news flags not persisted; they will not survive a restart");
            }
        }
    }
}

fn read_optional(path: &Path) -> Option<Vec<u8>> {
    match std::fs::read(path) {
        Ok(b) => Some(b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            tracing::error!(path = %path.display(), error = %e, "operator state file unreadable; starting without it");
            None
        }
    }
}

/// Moves a corrupt file to `<file>.corrupt` (replacing an older one), logs and counts it.
fn set_aside(path: &Path, name: &str, why: &str, metrics: &Metrics) {
    metrics.operator_state_corrupt.with_label_values(&[name]).inc();
    let aside = corrupt_path(path);
    match std::fs::rename(path, &aside) {
        Ok(()) => tracing::error!(path = %path.display(), kept = %aside.display(), error = why,
            "operator state file is corrupt; starting without it (file kept aside)"),
        Err(e) => tracing::error!(path = %path.display(), error = why, rename_error = %e,
            "operator state file is corrupt; starting without it (could not move it aside)"),
    }
}

/// `<file>.corrupt` next to `path`.
pub fn corrupt_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".corrupt");
    PathBuf::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_round_trip_through_the_files_and_expired_flags_stay_out() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::with_data_dir(dir.path());
        let m = Metrics::new();
        let mut st = OperatorState::default();
        let sol = Symbol::new("SOLUSDT");
        assert!(st.apply(&ControlCommand::Blacklist(sol.clone()), 0).blacklist);
        assert!(!st.apply(&ControlCommand::Blacklist(sol.clone()), 0).blacklist, "no change, no rewrite");
        let set = |s: &str, exp| ControlCommand::SetNewsFlag {
            symbol: Symbol::new(s),
            impact: 0.7,
            news_type: "HACK".into(),
            expires_ms: exp,
        };
        assert!(st.apply(&set("ETHUSDT", 5_000), 1_000).news);
        assert!(st.apply(&set("XRPUSDT", 2_000), 1_000).news);
        std::fs::create_dir_all(paths.system_dir()).unwrap();
        let bl = BlacklistFile { symbols: st.blacklist().cloned().collect() };
        std::fs::write(paths.snapshot_file(DataKind::System, BLACKLIST_NAME), serde_json::to_vec(&bl).unwrap())
            .unwrap();
        std::fs::write(paths.news_flags_file(), serde_json::to_vec(&st.news_file()).unwrap()).unwrap();

        let (back, cmds) = OperatorState::load(&paths, 3_000, &m);
        assert_eq!(back.blacklist().collect::<Vec<_>>(), vec![&sol]);
        assert_eq!(
            cmds,
            vec![ControlCommand::Blacklist(sol), set("ETHUSDT", 5_000)],
            "XRPUSDT's flag expired at 2 000 and is not restored"
        );
        assert!(st.apply(&ControlCommand::ClearNewsFlag(Symbol::new("ETHUSDT")), 0).news);
        assert_eq!(st.news_file().flags.len(), 1);
    }

    #[test]
    fn a_corrupt_file_is_set_aside_counted_and_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::with_data_dir(dir.path());
        std::fs::create_dir_all(paths.system_dir()).unwrap();
        let bl = paths.snapshot_file(DataKind::System, BLACKLIST_NAME);
        std::fs::write(&bl, b"{\"symbols\": [\"SOLUSDT\"").unwrap();
        std::fs::write(paths.news_flags_file(), b"{\"flags\": [{\"symbol\": \"SOLUSDT\", \"impact\": 7}]}").unwrap();
        let m = Metrics::new();
        let (st, cmds) = OperatorState::load(&paths, 0, &m);
        assert!(cmds.is_empty());
        assert_eq!(st, OperatorState::default());
        assert!(!bl.exists());
        assert_eq!(std::fs::read(corrupt_path(&bl)).unwrap(), b"{\"symbols\": [\"SOLUSDT\"");
        assert!(corrupt_path(&paths.news_flags_file()).exists());
        assert_eq!(m.operator_state_corrupt.with_label_values(&[BLACKLIST_NAME]).get(), 1);
        assert_eq!(m.operator_state_corrupt.with_label_values(&[NEWS_FLAGS_NAME]).get(), 1);
    }
}
