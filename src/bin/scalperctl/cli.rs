//! The command line of `scalperctl` (clap definitions) and the parsers of its duration values.
//! Kept apart from `run`, which only matches on the parsed [`Cmd`].

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;

const AFTER_HELP: &str = "\
Exit codes: 0 ok, 1 refused by the engine, 2 usage or connection error, 3 authentication (token or PIN).

Mutating commands need the control token: --token or SCALPER_CONTROL_TOKEN, else the token
`scalper demo` wrote to <data dir>/system/control.token (--data-dir, SCALPER_DATA_DIR, ./data).
Entering LIVE needs the PIN and a typed confirmation: `scalperctl mode live --pin`
(or `--pin-stdin`: PIN on the first stdin line, the word LIVE on the second).";

/// Control a running scalper engine over gRPC.
#[derive(Parser)]
#[command(name = "scalperctl", version, after_help = AFTER_HELP)]
pub(super) struct Cli {
    /// Engine gRPC address.
    #[arg(long, global = true, default_value = "http://127.0.0.1:50051", env = "SCALPER_CONTROL_ADDR")]
    pub(super) addr: String,
    /// Control token for mutating commands. Default: the token `scalper demo` wrote to
    /// <data dir>/system/control.token.
    #[arg(long, global = true, env = "SCALPER_CONTROL_TOKEN", hide_env_values = true)]
    pub(super) token: Option<String>,
    /// Data directory of a local demo engine, where its generated token is found (default:
    /// SCALPER_DATA_DIR, then ./data).
    #[arg(long, global = true)]
    pub(super) data_dir: Option<PathBuf>,
    /// PEM certificate (or CA) that the engine's TLS certificate must chain to; talks TLS. An
    /// `https://` address needs it.
    #[arg(long, global = true, env = "SCALPER_CONTROL_TLS_CA")]
    pub(super) tls_ca: Option<PathBuf>,
    /// Output format: tables and lines for people (prices at the tick size, money with 2
    /// decimals…), or the raw JSON.
    #[arg(short = 'o', long, global = true, value_enum, default_value = "table")]
    pub(super) output: Output,
    #[command(subcommand)]
    pub(super) cmd: Cmd,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(super) enum Output {
    /// Human-readable tables.
    Table,
    /// JSON (one document; `events` prints one JSON object per line).
    Json,
}

#[derive(Subcommand)]
pub(super) enum Cmd {
    /// Global state: mode, flags, equity, PnL, heat, counters.
    Status,
    /// Component health.
    Health,
    /// Symbols ranked by their best score.
    Hotlist {
        /// Maximum entries.
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// One symbol's detail.
    Symbol {
        /// Symbol, e.g. BTCUSDT.
        symbol: String,
    },
    /// Open trades.
    Trades,
    /// Engine events (recent ones; --follow keeps streaming).
    Events {
        /// Keep the stream open.
        #[arg(short, long)]
        follow: bool,
        /// Recent events shown first.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Only this symbol.
        #[arg(long)]
        symbol: Option<String>,
        /// Two-character ASCII tags instead of the emoji icons.
        #[arg(long)]
        ascii: bool,
    },
    /// Live view like `top`: global state, hot list and open positions, refreshed until `q` or
    /// Ctrl-C. One frame only with --once or when stdout is not a terminal.
    Top {
        /// Refresh interval: seconds, or with a unit (500ms, 2s).
        #[arg(long, default_value = "1s", value_parser = parse_interval)]
        interval: Duration,
        /// Hot-list entries shown.
        #[arg(long, default_value_t = 10)]
        limit: u32,
        /// Print one frame and exit.
        #[arg(long)]
        once: bool,
    },
    /// Change the execution mode.
    Mode {
        /// Target mode.
        #[arg(value_enum)]
        mode: ModeArg,
        /// Prompt for the PIN (no echo), then for a typed confirmation (LIVE only).
        #[arg(long, conflicts_with = "pin_stdin")]
        pin: bool,
        /// Read the PIN from the first stdin line and the confirmation (LIVE) from the second.
        #[arg(long)]
        pin_stdin: bool,
    },
    /// Stop opening new positions.
    Pause,
    /// Resume opening new positions.
    Resume,
    /// Cancel everything, close everything, block new trades.
    Panic,
    /// Symbol blacklist.
    Blacklist {
        #[command(subcommand)]
        cmd: BlacklistCmd,
    },
    /// Manual news flags.
    News {
        #[command(subcommand)]
        cmd: NewsCmd,
    },
    /// Re-read and validate the engine's config file; a valid one is applied.
    Reload,
    /// Print a salted PIN hash for SCALPER_LIVE_PIN_HASH (no engine needed).
    PinHash {
        /// Salt (default: random).
        #[arg(long)]
        salt: Option<String>,
        /// Read the PIN from the first stdin line instead of prompting.
        #[arg(long)]
        pin_stdin: bool,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(super) enum ModeArg {
    /// Simulated fills.
    Sim,
    /// Decisions logged, no orders.
    DryRun,
    /// Real orders (PIN and confirmation required).
    Live,
}

#[derive(Subcommand)]
pub(super) enum BlacklistCmd {
    /// Block a symbol from new signals.
    Add {
        /// Symbol.
        symbol: String,
    },
    /// Unblock a symbol.
    Rm {
        /// Symbol.
        symbol: String,
    },
}

#[derive(Subcommand)]
pub(super) enum NewsCmd {
    /// Set a news flag.
    Set {
        /// Symbol.
        symbol: String,
        /// Impact in [0, 1].
        #[arg(long)]
        impact: f64,
        /// Type, e.g. LISTING, HACK, MACRO.
        #[arg(long = "type")]
        news_type: String,
        /// Time to live: seconds, or with a unit (90s, 15m, 2h, 1d).
        #[arg(long, value_parser = parse_ttl)]
        ttl: u64,
    },
    /// Clear a symbol's news flag.
    Clear {
        /// Symbol.
        symbol: String,
    },
}

fn parse_ttl(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last() {
        Some((i, 's')) => (&s[..i], 1),
        Some((i, 'm')) => (&s[..i], 60),
        Some((i, 'h')) => (&s[..i], 3600),
        Some((i, 'd')) => (&s[..i], 86_400),
        _ => (s, 1),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("invalid ttl {s:?}: use seconds or 90s, 15m, 2h, 1d"))
}

/// A refresh interval: `1`, `0.5`, `2s` or `500ms`, from 100 ms to 1 hour.
fn parse_interval(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let (num, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else {
        (t, 1.0)
    };
    num.trim()
        .parse::<f64>()
        .ok()
        .map(|v| v * scale)
        .filter(|v| v.is_finite() && (0.1..=3600.0).contains(v))
        .map(Duration::from_secs_f64)
        .ok_or_else(|| format!("invalid interval {s:?}: use seconds (1, 0.5) or 2s, 500ms; from 100 ms to 1 h"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_units() {
        assert_eq!(parse_ttl("90"), Ok(90));
        assert_eq!(parse_ttl("90s"), Ok(90));
        assert_eq!(parse_ttl("15m"), Ok(900));
        assert_eq!(parse_ttl("2h"), Ok(7200));
        assert_eq!(parse_ttl("1d"), Ok(86_400));
        assert!(parse_ttl("0").is_err());
        assert!(parse_ttl("x").is_err());
        assert!(parse_ttl("-5m").is_err());
    }

    #[test]
    fn intervals() {
        assert_eq!(parse_interval("1"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_interval("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_interval("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_interval("0.5"), Ok(Duration::from_millis(500)));
        assert!(parse_interval("0").is_err());
        assert!(parse_interval("50ms").is_err());
        assert!(parse_interval("x").is_err());
        assert!(parse_interval("-1").is_err());
    }
}
