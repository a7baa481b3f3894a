//! `scalper export --parquet`: runs [`scalper::storage::export_parquet`] with progress on stderr
//! and prints what it wrote on stdout.

use super::progress::{Meter, Unit};
use scalper::config::paths::Paths;
use scalper::storage::export_parquet::{self, ExportOptions};
use std::path::PathBuf;
use std::process::ExitCode;

/// SCALPER_DATA_DIR, else `./data`.
pub fn default_data_dir() -> PathBuf {
    let root = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let env = std::env::var_os("SCALPER_DATA_DIR").map(PathBuf::from);
    Paths::resolve(&root, None, env.as_deref()).data_dir().to_path_buf()
}

pub fn export_parquet(opts: &ExportOptions) -> ExitCode {
    let total = match export_parquet::source_bytes(opts) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let meter = Meter::start("export", Unit::Bytes, Some(total));
    let counter = meter.counter();
    let res = export_parquet::export(opts, Some(&counter));
    if res.is_ok() {
        meter.finish();
    }
    let s = match res {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut streams: Vec<&str> = s.partitions.keys().map(|(st, _, _)| st.as_str()).collect();
    streams.dedup();
    println!(
        "exported {} lines from {} files ({} source bytes) into {} Parquet files ({} bytes) under {}",
        s.lines,
        s.files_read,
        s.bytes_read,
        s.files_written,
        s.bytes_written,
        opts.out.display()
    );
    for st in streams {
        let parts = s.partitions.keys().filter(|(x, _, _)| x == st).count();
        println!("  {st}: {} rows in {parts} partitions", s.rows(st));
    }
    if s.bad_lines > 0 || s.torn > 0 {
        eprintln!(
            "warning: {} unreadable lines and {} torn lines or frames skipped{}",
            s.bad_lines,
            s.torn,
            s.first_bad.as_deref().map(|f| format!(" (first: {f})")).unwrap_or_default()
        );
    }
    ExitCode::SUCCESS
}
