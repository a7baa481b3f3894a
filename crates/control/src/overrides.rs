//! Per-symbol overrides read from `data/profiles/<SYMBOL>.json` (the `overrides` object of a
//! profile file), for the core as one [`ControlCommand::SetOverrides`] at start and at each
//! configuration reload. A file that cannot be used is logged, counted and skipped (that symbol
//! trades without overrides), never fatal.

use scalper_core::config::paths::Paths;
use scalper_core::domain::Symbol;
use scalper_core::engine::event::ControlCommand;
pub use scalper_core::market::profile::SymbolOverride;
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Deserialize)]
struct ProfileFile {
    #[serde(default)]
    overrides: Option<SymbolOverride>,
}

/// Reads every profile's `overrides`. Returns the overrides and the problems found (one line per
/// bad file) so the caller can log and count them. Blocking file reads: call it off the core loop.
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
            Ok(ProfileFile { overrides: Some(o) }) => match o.validate() {
                Ok(()) => {
                    out.insert(Symbol::new(stem), o);
                }
                Err(e) => problems.push(format!("{}: {e}", f.display())),
            },
            Ok(_) => {}
            Err(e) => problems.push(format!("{}: {e}", f.display())),
        }
    }
    (out, problems)
}

/// Reads the overrides, logs and counts every problem, and returns them as the core's command.
pub fn overrides_command(paths: &Paths, metrics: &crate::monitoring::metrics::Metrics) -> ControlCommand {
    let (all, problems) = load_overrides(paths);
    for p in &problems {
        tracing::error!(problem = %p, "per-symbol override refused; that symbol trades without overrides");
        metrics.override_errors.inc();
    }
    if !all.is_empty() {
        tracing::info!(symbols = all.len(), "per-symbol overrides loaded");
    }
    ControlCommand::SetOverrides(all)
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

    #[test]
    fn the_command_carries_the_valid_overrides_and_every_bad_file_is_counted() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::with_data_dir(dir.path());
        std::fs::create_dir_all(paths.profiles_dir()).unwrap();
        let write = |s: &str, body: &str| std::fs::write(paths.profiles_dir().join(format!("{s}.json")), body).unwrap();
        write("BTCUSDT", r#"{"overrides":{"book_depth":200,"extra_score":5}}"#);
        write("ETHUSDT", r#"{"overrides":{"book_depth":300}}"#);
        write("SOLUSDT", r#"{"overrides":{"max_levrage":3}}"#);
        write("XRPUSDT", r#"{"trades":4}"#);
        let metrics = crate::monitoring::metrics::Metrics::new();
        let ControlCommand::SetOverrides(all) = overrides_command(&paths, &metrics) else {
            panic!("not the overrides command")
        };
        assert_eq!(all.keys().map(|s| s.as_str()).collect::<Vec<_>>(), ["BTCUSDT"]);
        assert_eq!(all[&Symbol::new("BTCUSDT")].book_depth, Some(200));
        assert_eq!(metrics.override_errors.get(), 2, "a depth Bybit does not offer and a misspelt key");
    }
}
