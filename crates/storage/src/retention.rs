//! Retention: runs at start-up and every `storage.retention_interval_s`. Before deleting
//! anything it folds each day's closed trades into `trades_log/day-YYYY-MM-DD.json`; then it
//! deletes raw hourly stream files whose hour ended more than `retention_hours` (>= 24) ago.
//! With a disk budget (`storage.max_disk_gb`) it then deletes the oldest remaining stream files,
//! oldest hour first, until they fit, even when younger than `retention_hours`; the current
//! hour's files (being written) are never deleted. Hours younger than 24 h lost that way are
//! reported ([`RetentionReport::budget_forced_hours`], the `scalper_retention_budget_forced_hours`
//! gauge and its alert). Profiles, snapshots, trade logs and system files are never deleted and
//! not counted. Every run appends a record to `system/retention.log.jsonl`.
//!
//! File age comes from the hour in the file name (`YYYY-MM-DDTHH.jsonl` or `.jsonl.zst`), not
//! from mtime, so a run is a pure function of the directory and `now_ms`.

use crate::json_store::{day_key, read_jsonl, write_atomic};
use crate::segment::split_segment_name;
use scalper_core::config::paths::{DataKind, Paths};
use scalper_core::domain::TimeMs;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

const HOUR_MS: i64 = 3_600_000;

/// A closed trade as recorded in `trades_log/<SYMBOL>/<hour>.jsonl`. Only the fields the day
/// summary needs; others are ignored.
#[derive(Debug, Clone, Deserialize)]
pub struct ClosedTradeRecord {
    pub symbol: String,
    /// Exit time, ms (decides the UTC day).
    pub exit_ms: TimeMs,
    /// PnL before fees, USDT.
    pub gross_pnl: f64,
    /// Fees paid, USDT.
    pub fees: f64,
    /// PnL after fees, USDT.
    pub net_pnl: f64,
}

/// Per-symbol totals of a day.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SymbolDayTotals {
    /// Trades closed.
    pub trades: u64,
    pub net_pnl: f64,
    pub fees: f64,
}

/// Summary of one UTC day of trading.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DaySummary {
    /// `YYYY-MM-DD`.
    pub day: String,
    /// Trades closed.
    pub count: u64,
    /// Trades with net PnL > 0.
    pub wins: u64,
    /// Trades with net PnL <= 0.
    pub losses: u64,
    /// PnL before fees.
    pub gross_pnl: f64,
    /// PnL after fees.
    pub net_pnl: f64,
    pub fees: f64,
    /// Totals per symbol (sorted).
    pub per_symbol: BTreeMap<String, SymbolDayTotals>,
}

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RetentionReport {
    /// Time of the run.
    pub ts_ms: TimeMs,
    /// Files older than this hour start were deleted.
    pub cutoff_ms: TimeMs,
    /// Raw files deleted.
    pub deleted_files: u64,
    /// Bytes freed.
    pub deleted_bytes: u64,
    /// Raw files kept.
    pub kept_files: u64,
    /// Day summaries written.
    pub day_summaries: Vec<String>,
    /// Disk budget of the stream files, bytes (`None`: no budget).
    #[serde(default)]
    pub budget_bytes: Option<u64>,
    /// Bytes of the stream files kept.
    #[serde(default)]
    pub kept_bytes: u64,
    /// Files younger than `retention_hours` deleted to fit the budget (included in
    /// `deleted_files`).
    #[serde(default)]
    pub budget_deleted_files: u64,
    /// Distinct hours younger than 24 h of which the budget deleted files.
    #[serde(default)]
    pub budget_forced_hours: u64,
    /// Start of the oldest hour still kept, ms (`None`: no stream file left).
    #[serde(default)]
    pub oldest_kept_ms: Option<TimeMs>,
    /// Problems met (unreadable files, unparseable names); the run goes on.
    pub errors: Vec<String>,
}

/// Parses `YYYY-MM-DDTHH` into the hour's start (ms).
pub fn parse_hour_key(s: &str) -> Option<TimeMs> {
    let dt = chrono::NaiveDateTime::parse_from_str(&format!("{s}:00:00"), "%Y-%m-%dT%H:%M:%S").ok()?;
    Some(dt.and_utc().timestamp_millis())
}

/// Runs retention once at `now_ms`, keeping `retention_hours` (raised to 24 if lower).
pub fn run_once(paths: &Paths, now_ms: TimeMs, retention_hours: u64) -> RetentionReport {
    run_with_budget(paths, now_ms, retention_hours, None)
}

/// Publishes what a run did in the metrics: deletions, the bytes kept, and the hours under 24 h
/// the budget forced out (`scalper_retention_budget_forced_hours`, alerted on).
pub fn publish(metrics: &scalper_control::monitoring::metrics::Metrics, r: &RetentionReport) {
    let label = if r.errors.is_empty() { "ok" } else { "with_errors" };
    metrics.retention_runs.with_label_values(&[label]).inc();
    metrics.retention_deleted_files.inc_by(r.deleted_files);
    metrics.retention_budget_deleted_files.inc_by(r.budget_deleted_files);
    metrics.retention_budget_forced_hours.set(i64::try_from(r.budget_forced_hours).unwrap_or(i64::MAX));
    metrics.storage_stream_bytes.set(i64::try_from(r.kept_bytes).unwrap_or(i64::MAX));
    if let Some(b) = r.budget_bytes {
        metrics.storage_budget_bytes.set(i64::try_from(b).unwrap_or(i64::MAX));
    }
}

/// A stream file seen by a run.
struct StreamFile {
    hour: TimeMs,
    path: std::path::PathBuf,
    len: u64,
}

/// Runs retention once at `now_ms`, keeping `retention_hours` (raised to 24 if lower) and, with
/// `budget_bytes`, at most that many bytes of stream files (see the module docs).
pub fn run_with_budget(
    paths: &Paths,
    now_ms: TimeMs,
    retention_hours: u64,
    budget_bytes: Option<u64>,
) -> RetentionReport {
    let hours = retention_hours.max(24) as i64;
    let cutoff = now_ms - hours * HOUR_MS;
    let mut rep = RetentionReport { ts_ms: now_ms, cutoff_ms: cutoff, budget_bytes, ..Default::default() };
    fold_days(paths, &mut rep);
    let mut subdirs = Vec::new();
    let mut kept = Vec::new();
    for kind in DataKind::ALL.into_iter().filter(|k| k.is_raw_stream()) {
        let dir = paths.kind_dir(kind);
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        let mut dirs: Vec<_> = entries.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_dir()).collect();
        dirs.sort();
        for sub in dirs {
            for f in list_stream_files(&sub, &mut rep) {
                if f.hour + HOUR_MS <= cutoff {
                    delete(&f, &mut rep);
                } else {
                    kept.push(f);
                }
            }
            subdirs.push(sub);
        }
    }
    if let Some(budget) = budget_bytes {
        kept.sort_by(|a, b| (a.hour, &a.path).cmp(&(b.hour, &b.path)));
        let mut total: u64 = kept.iter().map(|f| f.len).sum();
        let mut forced_hours = std::collections::BTreeSet::new();
        let mut remaining = Vec::with_capacity(kept.len());
        let mut done = false;
        for f in kept {
            // The current hour's files are being written: deleting them frees nothing.
            done = done || total <= budget || f.hour + HOUR_MS > now_ms;
            if done || !delete(&f, &mut rep) {
                remaining.push(f);
                continue;
            }
            total -= f.len;
            rep.budget_deleted_files += 1;
            if f.hour + HOUR_MS > now_ms - 24 * HOUR_MS {
                forced_hours.insert(f.hour);
            }
        }
        kept = remaining;
        rep.budget_forced_hours = forced_hours.len() as u64;
        if rep.budget_deleted_files > 0 {
            tracing::warn!(
                budget_bytes = budget,
                deleted = rep.budget_deleted_files,
                hours_under_24h = rep.budget_forced_hours,
                "storage.max_disk_gb forced retention to delete stream files before retention_hours"
            );
        }
        if total > budget {
            rep.errors.push(format!(
                "stream files take {total} bytes, over the budget of {budget} bytes, with only the current hour left"
            ));
        }
    }
    rep.kept_files = kept.len() as u64;
    rep.kept_bytes = kept.iter().map(|f| f.len).sum();
    rep.oldest_kept_ms = kept.iter().map(|f| f.hour).min();
    for sub in subdirs {
        // Remove a symbol directory left empty.
        if std::fs::read_dir(&sub).map(|mut d| d.next().is_none()).unwrap_or(false) {
            let _ = std::fs::remove_dir(&sub);
        }
    }
    append_log(paths, &rep);
    rep
}

/// The hourly stream files of a directory (`.jsonl` and `.jsonl.zst`), sorted by name.
fn list_stream_files(dir: &Path, rep: &mut RetentionReport) -> Vec<StreamFile> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<_> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    files.sort();
    let mut out = Vec::new();
    for path in files {
        let Some(name) = path.file_name().and_then(|s| s.to_str()) else { continue };
        let Some((stem, _)) = split_segment_name(name) else { continue };
        let Some(hour) = parse_hour_key(stem) else {
            rep.errors.push(format!("{}: name is not an hour key; left alone", path.display()));
            continue;
        };
        let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        out.push(StreamFile { hour, path, len });
    }
    out
}

/// Deletes one stream file, counting it; false (and an error noted) when it cannot be deleted.
fn delete(f: &StreamFile, rep: &mut RetentionReport) -> bool {
    match std::fs::remove_file(&f.path) {
        Ok(()) => {
            rep.deleted_files += 1;
            rep.deleted_bytes += f.len;
            true
        }
        Err(e) => {
            rep.errors.push(format!("{}: cannot delete: {e}", f.path.display()));
            false
        }
    }
}

/// Folds every day that has trade records into its day summary (rewritten atomically, so the
/// fold is idempotent).
fn fold_days(paths: &Paths, rep: &mut RetentionReport) {
    let dir = paths.kind_dir(DataKind::TradesLog);
    let Ok(subdirs) = std::fs::read_dir(&dir) else { return };
    let mut subdirs: Vec<_> = subdirs.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_dir()).collect();
    subdirs.sort();
    let mut days: BTreeMap<String, DaySummary> = BTreeMap::new();
    for sub in subdirs {
        let Ok(entries) = std::fs::read_dir(&sub) else { continue };
        let mut files: Vec<_> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
        files.sort();
        for f in files.into_iter().filter(|f| f.extension().and_then(|e| e.to_str()) == Some("jsonl")) {
            let (values, bad) = match read_jsonl(&f) {
                Ok(v) => v,
                Err(e) => {
                    rep.errors.push(format!("{}: {e}", f.display()));
                    continue;
                }
            };
            if bad > 0 {
                rep.errors.push(format!("{}: {bad} unreadable line(s) skipped", f.display()));
            }
            for v in values {
                let Ok(t) = serde_json::from_value::<ClosedTradeRecord>(v) else {
                    rep.errors.push(format!("{}: a record is not a closed trade; skipped", f.display()));
                    continue;
                };
                let day = day_key(t.exit_ms);
                let d = days.entry(day.clone()).or_insert_with(|| DaySummary { day, ..Default::default() });
                d.count += 1;
                if t.net_pnl > 0.0 {
                    d.wins += 1;
                } else {
                    d.losses += 1;
                }
                d.gross_pnl += t.gross_pnl;
                d.net_pnl += t.net_pnl;
                d.fees += t.fees;
                let s = d.per_symbol.entry(t.symbol).or_default();
                s.trades += 1;
                s.net_pnl += t.net_pnl;
                s.fees += t.fees;
            }
        }
    }
    for (day, summary) in days {
        let path = paths.day_summary_file(&day);
        let res =
            serde_json::to_vec_pretty(&summary).map_err(std::io::Error::other).and_then(|b| write_atomic(&path, &b));
        match res {
            Ok(()) => rep.day_summaries.push(day),
            Err(e) => rep.errors.push(format!("{}: {e}", path.display())),
        }
    }
}

fn append_log(paths: &Paths, rep: &RetentionReport) {
    let path = paths.retention_log();
    let res = (|| -> std::io::Result<()> {
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d)?;
        }
        let mut line = serde_json::to_string(rep).map_err(std::io::Error::other)?;
        line.push('\n');
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&path)?;
        f.write_all(line.as_bytes())
    })();
    if let Err(e) = res {
        tracing::error!(path = %path.display(), error = %e, "cannot append to the retention log");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hour_keys_parse() {
        assert_eq!(parse_hour_key("1970-01-01T01"), Some(HOUR_MS));
        assert_eq!(parse_hour_key("garbage"), None);
    }
}
