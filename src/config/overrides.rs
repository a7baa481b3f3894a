//! Per-symbol overrides read from `data/profiles/<SYMBOL>.json` (the `overrides` object of a
//! profile file). Unknown symbols or unreadable files are logged and skipped, never fatal.

use super::paths::Paths;
use scalper_core::domain::Symbol;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Overrides of one symbol; every field optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SymbolOverride {
    /// Max leverage for this symbol (<= its category's).
    pub max_leverage: Option<f64>,
    /// Max notional for this symbol.
    pub max_notional: Option<f64>,
    /// Book depth to subscribe.
    pub book_depth: Option<u16>,
    /// Points added to the watch/arm thresholds.
    pub extra_score: Option<f64>,
    /// Multiplier applied to position size, (0, 1].
    pub size_multiplier: Option<f64>,
    /// Never trade this symbol.
    pub blacklisted: Option<bool>,
}

#[derive(Deserialize)]
struct ProfileFile {
    #[serde(default)]
    overrides: Option<SymbolOverride>,
}

/// Reads every profile's `overrides`. Returns the overrides and the problems found (one line per
/// bad file) so the caller can log and count them.
pub fn load_overrides(paths: &Paths) -> (BTreeMap<Symbol, SymbolOverride>, Vec<String>) {
    let mut out = BTreeMap::new();
    let mut problems = Vec::new();
    let dir = paths.profiles_dir();
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(_) => return (out, problems),
    };
    let mut files: Vec<_> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    files.sort();
    for f in files {
        if f.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let Some(stem) = f.file_stem().and_then(|s| s.to_str()) else { continue };
        if !Symbol::is_valid(stem) {
            continue;
        }
        match std::fs::read(&f)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice::<ProfileFile>(&b).map_err(|e| e.to_string()))
        {
            Ok(ProfileFile { overrides: Some(o) }) => {
                if let Some(m) = o.size_multiplier {
                    if !(m > 0.0 && m <= 1.0) {
                        problems.push(format!("{}: overrides.size_multiplier must be in (0, 1], got {m}", f.display()));
                        continue;
                    }
                }
                out.insert(Symbol::new(stem), o);
            }
            Ok(_) => {}
            Err(e) => problems.push(format!("{}: {e}", f.display())),
        }
    }
    (out, problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_overrides_and_reports_bad_files() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::with_data_dir(dir.path());
        std::fs::create_dir_all(paths.profiles_dir()).unwrap();
        std::fs::write(
            paths.profiles_dir().join("SOLUSDT.json"),
            r#"{"win_rate":0.5,"overrides":{"max_leverage":3,"blacklisted":true}}"#,
        )
        .unwrap();
        std::fs::write(paths.profiles_dir().join("XRPUSDT.json"), "{not json").unwrap();
        std::fs::write(paths.profiles_dir().join("DOGEUSDT.json"), r#"{"overrides":{"size_multiplier":2}}"#).unwrap();
        let (o, problems) = load_overrides(&paths);
        assert_eq!(o.len(), 1);
        let sol = &o[&Symbol::new("SOLUSDT")];
        assert_eq!(sol.max_leverage, Some(3.0));
        assert_eq!(sol.blacklisted, Some(true));
        assert_eq!(problems.len(), 2, "{problems:?}");
    }
}
