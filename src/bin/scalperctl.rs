//! `scalperctl`: the control CLI of a running `scalper` engine (gRPC).
//!
//! Exit codes: 0 ok · 1 refused by the engine (failed precondition, not found, rate limited…) ·
//! 2 usage or connection error · 3 authentication (token or PIN).

use clap::{Parser, Subcommand, ValueEnum};
use scalper::connectors::bybit_public::error_chain;
use scalper::control::auth::PinHash;
use scalper::control::bus::EventRecord;
use scalper::control::view::{SummaryView, SymbolView, TradeView};
use scalper::proto;
use scalper::proto::control_client::ControlClient;
use serde::Serialize;
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use tonic::metadata::MetadataValue;
use tonic::service::Interceptor;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Status};

const AFTER_HELP: &str = "\
Exit codes: 0 ok, 1 refused by the engine, 2 usage or connection error, 3 authentication (token or PIN).

Mutating commands need the control token: --token or SCALPER_CONTROL_TOKEN, else the token
`scalper demo` wrote to <data dir>/system/control.token (--data-dir, SCALPER_DATA_DIR, ./data).
Entering LIVE needs the PIN and a typed confirmation: `scalperctl mode live --pin`
(or `--pin-stdin`: PIN on the first stdin line, the word LIVE on the second).";

/// Control a running scalper engine over gRPC.
#[derive(Parser)]
#[command(name = "scalperctl", version, after_help = AFTER_HELP)]
struct Cli {
    /// Engine gRPC address.
    #[arg(long, global = true, default_value = "http://127.0.0.1:50051", env = "SCALPER_CONTROL_ADDR")]
    addr: String,
    /// Control token for mutating commands. Default: the token `scalper demo` wrote to
    /// <data dir>/system/control.token.
    #[arg(long, global = true, env = "SCALPER_CONTROL_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Data directory of a local demo engine, where its generated token is found (default:
    /// SCALPER_DATA_DIR, then ./data).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// PEM certificate (or CA) that the engine's TLS certificate must chain to; talks TLS. An
    /// `https://` address needs it.
    #[arg(long, global = true, env = "SCALPER_CONTROL_TLS_CA")]
    tls_ca: Option<PathBuf>,
    /// Output format.
    #[arg(short = 'o', long, global = true, value_enum, default_value = "table")]
    output: Output,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    /// Human-readable tables.
    Table,
    /// JSON (one document; `events` prints one JSON object per line).
    Json,
}

#[derive(Subcommand)]
enum Cmd {
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
enum ModeArg {
    /// Simulated fills.
    Sim,
    /// Decisions logged, no orders.
    DryRun,
    /// Real orders (PIN and confirmation required).
    Live,
}

#[derive(Subcommand)]
enum BlacklistCmd {
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
enum NewsCmd {
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

/// A failure with its exit code.
struct Fail {
    code: u8,
    msg: String,
}

impl Fail {
    fn usage(msg: impl Into<String>) -> Fail {
        Fail { code: 2, msg: msg.into() }
    }
}

impl From<Status> for Fail {
    fn from(s: Status) -> Fail {
        let code = match s.code() {
            Code::Unauthenticated | Code::PermissionDenied => 3,
            Code::InvalidArgument | Code::Unavailable | Code::DeadlineExceeded | Code::Unknown => 2,
            _ => 1,
        };
        let msg = if s.message().is_empty() { format!("{:?}", s.code()) } else { s.message().to_string() };
        Fail { code, msg: format!("{msg} [{:?}]", s.code()) }
    }
}

#[derive(Clone)]
struct TokenInterceptor(Option<MetadataValue<tonic::metadata::Ascii>>);

impl Interceptor for TokenInterceptor {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, Status> {
        if let Some(v) = &self.0 {
            req.metadata_mut().insert("authorization", v.clone());
        }
        Ok(req)
    }
}

type Client = ControlClient<tonic::service::interceptor::InterceptedService<Channel, TokenInterceptor>>;

/// True for commands that change the engine (they carry the control token).
fn mutates(cmd: &Cmd) -> bool {
    matches!(
        cmd,
        Cmd::Mode { .. }
            | Cmd::Pause
            | Cmd::Resume
            | Cmd::Panic
            | Cmd::Blacklist { .. }
            | Cmd::News { .. }
            | Cmd::Reload
    )
}

/// The token to send: `--token` / `SCALPER_CONTROL_TOKEN`, else (for a mutating command) the one
/// a local `scalper demo` wrote under the data directory (`--data-dir`, `SCALPER_DATA_DIR`, then
/// `./data`, resolved as the engine does). A token file open to group/others is refused.
fn resolve_token(cli: &Cli) -> Result<Option<String>, Fail> {
    if let Some(t) = cli.token.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        return Ok(Some(t.to_string()));
    }
    if !mutates(&cli.cmd) {
        return Ok(None);
    }
    scalper::control::local_token::read_local_token(&local_token_path(cli))
        .map_err(|e| Fail { code: 3, msg: format!("{LOCAL_TOKEN_REFUSED}: {e}") })
}

/// Start of the message for a token file refused before any call.
const LOCAL_TOKEN_REFUSED: &str = "cannot use the local control token";

/// Where a local demo's token is looked for (`--data-dir`, `SCALPER_DATA_DIR`, `./data`).
fn local_token_path(cli: &Cli) -> PathBuf {
    let root = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let env = std::env::var_os("SCALPER_DATA_DIR").map(PathBuf::from);
    let paths = scalper::config::paths::Paths::resolve(&root, None, cli.data_dir.as_deref().or(env.as_deref()));
    scalper::control::local_token::token_path(&paths)
}

/// What to tell the operator when the engine refuses the token of a mutating command: where the
/// token came from (none, or the local file, which may be another demo run's).
fn token_hint(cli: &Cli) -> Option<String> {
    if !mutates(&cli.cmd) || cli.token.as_deref().is_some_and(|t| !t.trim().is_empty()) {
        return None;
    }
    let p = local_token_path(cli);
    Some(if p.exists() {
        format!(
            "the token was read from {}; `scalper demo` writes a new one at each start, so it may belong to another \
             run or data directory (--data-dir), or pass --token",
            p.display()
        )
    } else {
        format!(
            "no token given: pass --token or SCALPER_CONTROL_TOKEN (for a local `scalper demo`, run scalperctl where \
             its data directory is found: {} does not exist; see --data-dir)",
            p.display()
        )
    })
}

async fn connect(cli: &Cli) -> Result<Client, Fail> {
    let token = match resolve_token(cli)? {
        Some(t) => Some(
            MetadataValue::try_from(format!("Bearer {t}"))
                .map_err(|_| Fail::usage("the token contains characters not allowed in a header"))?,
        ),
        None => None,
    };
    let mut addr = cli.addr.clone();
    if cli.tls_ca.is_some() {
        if let Some(rest) = addr.strip_prefix("http://") {
            addr = format!("https://{rest}");
        }
    } else if addr.starts_with("https://") {
        return Err(Fail::usage("an https:// address needs --tls-ca <PEM file> (the engine's certificate or its CA)"));
    }
    let mut ep = Endpoint::from_shared(addr.clone())
        .map_err(|e| Fail::usage(format!("invalid --addr {:?}: {e}", cli.addr)))?
        .connect_timeout(Duration::from_secs(5));
    if let Some(ca) = &cli.tls_ca {
        let pem = std::fs::read(ca).map_err(|e| Fail::usage(format!("cannot read --tls-ca {}: {e}", ca.display())))?;
        let tls = tonic::transport::ClientTlsConfig::new().ca_certificate(tonic::transport::Certificate::from_pem(pem));
        ep = ep.tls_config(tls).map_err(|e| Fail::usage(format!("TLS setup failed: {}", error_chain(&e))))?;
    }
    let ch =
        ep.connect().await.map_err(|e| Fail::usage(format!("cannot connect to {}: {}", cli.addr, error_chain(&e))))?;
    Ok(ControlClient::with_interceptor(ch, TokenInterceptor(token)))
}

fn print_json<T: Serialize>(v: &T) -> Result<(), Fail> {
    let s = serde_json::to_string_pretty(v).map_err(|e| Fail { code: 1, msg: format!("cannot encode JSON: {e}") })?;
    println!("{s}");
    Ok(())
}

fn fmt_time(ms: i64) -> String {
    if ms <= 0 {
        return "-".into();
    }
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.format("%Y-%m-%d %H:%M:%S%.3f").to_string())
        .unwrap_or_else(|| ms.to_string())
}

fn num(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.abs() >= 1000.0 {
        format!("{v:.2}")
    } else {
        let s = format!("{v:.8}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

fn or_dash(s: &str) -> String {
    if s.is_empty() {
        "-".into()
    } else {
        s.to_string()
    }
}

/// Prints rows under headers; the first column is left-aligned, the others right-aligned.
fn print_table(headers: &[&str], rows: &[Vec<String>]) {
    let mut w: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i < w.len() {
                w[i] = w[i].max(c.chars().count());
            }
        }
    }
    let line = |cells: Vec<String>| {
        let mut out = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i > 0 {
                out.push_str("  ");
            }
            if i == 0 {
                out.push_str(&format!("{c:<width$}", width = w[0]));
            } else {
                out.push_str(&format!("{c:>width$}", width = w[i]));
            }
        }
        println!("{}", out.trim_end());
    };
    line(headers.iter().map(|h| h.to_string()).collect());
    for r in rows {
        line(r.clone());
    }
}

fn print_kv(rows: &[(&str, String)]) {
    let w = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in rows {
        println!("{k:<w$}  {v}");
    }
}

fn print_summary(s: &SummaryView) {
    let g = &s.global;
    let mut flags = Vec::new();
    for (on, name) in [
        (g.paused, "PAUSED"),
        (s.degraded, "DEGRADED"),
        (g.risk_off, "RISK_OFF"),
        (s.feed_risk_off, "FEED_RISK_OFF"),
        (g.integrity_broken, "INTEGRITY_BROKEN"),
        (g.global_panic, "GLOBAL_PANIC"),
    ] {
        if on {
            flags.push(name);
        }
    }
    let mut rows = vec![
        ("mode", or_dash(&s.mode)),
        ("flags", if flags.is_empty() { "-".into() } else { flags.join(" ") }),
        ("global regime", or_dash(&g.global_regime)),
        ("feed", or_dash(&s.feed)),
        (
            "exchange account",
            if g.private_feed.is_empty() {
                "- (no private connector: LIVE unavailable)".into()
            } else {
                format!(
                    "{} ({}; {} live orders{})",
                    g.private_feed,
                    if g.exchange_account_known { "reconciled" } else { "not reconciled" },
                    g.live_orders,
                    if g.panic_confirmed { "; PANIC confirmed flat" } else { "" }
                )
            },
        ),
        ("symbols", format!("{} ({} valid books, {} warming up)", s.symbols, s.valid_books, g.symbols_warming)),
        ("events processed", s.events_processed.to_string()),
        ("equity", num(g.equity)),
        ("balance", num(g.balance)),
        ("realized pnl", num(g.realized_pnl)),
        ("unrealized pnl", num(g.unrealized_pnl)),
        ("daily pnl", format!("{} (limit {} of equity)", num(g.daily_pnl), num(g.daily_loss_limit))),
        ("portfolio heat", format!("{} (max {})", num(g.portfolio_heat), num(g.max_portfolio_heat))),
        ("open positions", g.open_positions.to_string()),
        ("blacklist", if g.blacklist.is_empty() { "-".into() } else { g.blacklist.join(" ") }),
    ];
    for n in &g.news_flags {
        rows.push((
            "news",
            format!("{} {} impact {} until {}", n.symbol, n.news_type, n.impact, fmt_time(n.expires_ms)),
        ));
    }
    rows.push(("snapshot at", fmt_time(s.ts_ms)));
    print_kv(&rows);
}

fn print_symbol(s: &SymbolView) {
    let mut rows = vec![
        ("symbol", s.symbol.clone()),
        ("category", or_dash(&s.category)),
        ("state", or_dash(&s.state)),
        ("regime", or_dash(&s.regime)),
        (
            "baselines",
            if s.warm { "warm".to_string() } else { format!("{} ({} s left)", s.warm_reason, s.warmup_left_s) },
        ),
        ("price", num(s.price)),
        ("bid / ask", format!("{} / {}", num(s.bid), num(s.ask))),
        ("mark price", num(s.mark_price)),
        ("spread bps", num(s.spread_bps)),
        ("imbalance", num(s.imbalance)),
        ("walls bid / ask", format!("{} / {}", num(s.wall_score_bid), num(s.wall_score_ask))),
        ("spoofing", num(s.spoofing_score)),
        ("pump", or_dash(&s.pump_state)),
        ("volatility", num(s.volatility)),
        ("flow delta", num(s.flow_delta)),
        ("min move %", num(s.min_move_pct)),
        ("news impact", num(s.news_impact)),
        ("score long / short", format!("{} / {}", num(s.score_long), num(s.score_short))),
        ("turnover 24h", num(s.turnover_24h)),
        ("funding rate", num(s.funding_rate)),
        ("open interest", num(s.open_interest)),
        ("book valid", s.book_valid.to_string()),
        ("book errors", s.book_errors.to_string()),
        ("last book", fmt_time(s.last_book_ms)),
        ("last trade", fmt_time(s.last_trade_ms)),
        ("blacklisted", s.blacklisted.to_string()),
    ];
    match &s.position {
        Some(p) => rows.push((
            "position",
            format!(
                "{} {} @ {} pnl {} ({} R)",
                p.side,
                num(p.qty),
                num(p.entry_price),
                num(p.unrealized_pnl),
                num(p.r_multiple)
            ),
        )),
        None => rows.push(("position", "-".into())),
    }
    print_kv(&rows);
}

fn print_event(e: &EventRecord) {
    let body = e.body.to_string();
    println!(
        "{}  #{:<6} {:<12} {:<20} {}",
        fmt_time(e.ts_ms),
        e.seq,
        e.symbol.as_deref().unwrap_or("-"),
        or_dash(&e.event),
        body
    );
}

fn read_stdin_lines(n: usize) -> Vec<String> {
    let stdin = std::io::stdin();
    let mut out = Vec::new();
    for line in stdin.lock().lines().take(n) {
        match line {
            Ok(l) => out.push(l.trim_end_matches(['\r', '\n']).to_string()),
            Err(_) => break,
        }
    }
    out
}

/// PIN and confirmation for LIVE.
fn live_credentials(pin: bool, pin_stdin: bool) -> Result<(String, bool), Fail> {
    if pin_stdin {
        let lines = read_stdin_lines(2);
        let p = lines.first().cloned().unwrap_or_default();
        let confirm = lines.get(1).is_some_and(|l| l.trim() == "LIVE");
        return Ok((p, confirm));
    }
    if pin {
        let p =
            rpassword::prompt_password("LIVE PIN: ").map_err(|e| Fail::usage(format!("cannot read the PIN: {e}")))?;
        eprint!("Real orders will be sent. Type LIVE to confirm: ");
        let _ = std::io::stderr().flush();
        let line = read_stdin_lines(1).pop().unwrap_or_default();
        return Ok((p, line.trim() == "LIVE"));
    }
    Err(Fail::usage("mode live needs the PIN: use --pin (interactive) or --pin-stdin"))
}

fn random_salt() -> String {
    use sha2::Digest;
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let local = 0u8;
    let mut h = sha2::Sha256::new();
    h.update(nanos.to_le_bytes());
    h.update(std::process::id().to_le_bytes());
    h.update((&local as *const u8 as usize).to_le_bytes());
    hex::encode(&h.finalize()[..8])
}

fn pin_hash(salt: Option<String>, pin_stdin: bool) -> Result<(), Fail> {
    let pin = if pin_stdin {
        read_stdin_lines(1).pop().unwrap_or_default()
    } else {
        let a = rpassword::prompt_password("New LIVE PIN: ").map_err(|e| Fail::usage(format!("cannot read: {e}")))?;
        let b = rpassword::prompt_password("Repeat: ").map_err(|e| Fail::usage(format!("cannot read: {e}")))?;
        if a != b {
            return Err(Fail::usage("the PINs differ"));
        }
        a
    };
    if pin.chars().count() < 4 {
        return Err(Fail::usage("the PIN must have at least 4 characters"));
    }
    let salt = salt.unwrap_or_else(random_salt);
    if salt.is_empty() || salt.contains('$') {
        return Err(Fail::usage("the salt must be non-empty and must not contain '$'"));
    }
    println!("{}", PinHash::from_pin(&salt, &pin).encode());
    Ok(())
}

fn ack(out: Output, a: proto::Ack) -> Result<(), Fail> {
    match out {
        Output::Json => print_json(&serde_json::json!({"ok": a.ok, "message": a.message})),
        Output::Table => {
            println!("ok: {}", a.message);
            Ok(())
        }
    }
}

async fn run(cli: Cli) -> Result<(), Fail> {
    let out = cli.output;
    if let Cmd::PinHash { salt, pin_stdin } = &cli.cmd {
        return pin_hash(salt.clone(), *pin_stdin);
    }
    // Collect LIVE credentials before connecting, so a prompt never races a connection error.
    let live = match &cli.cmd {
        Cmd::Mode { mode: ModeArg::Live, pin, pin_stdin } => Some(live_credentials(*pin, *pin_stdin)?),
        _ => None,
    };
    let mut c = connect(&cli).await?;
    let sym = |s: &str| proto::SymbolRequest { symbol: s.trim().to_ascii_uppercase() };
    match &cli.cmd {
        Cmd::Status => {
            let s = SummaryView::from(c.get_summary(proto::Empty {}).await?.into_inner());
            match out {
                Output::Json => print_json(&s)?,
                Output::Table => print_summary(&s),
            }
        }
        Cmd::Health => {
            let h = c.get_health(proto::Empty {}).await?.into_inner();
            match out {
                Output::Json => print_json(&serde_json::json!({
                    "overall": h.overall,
                    "components": h.components.iter().map(|c| (c.name.clone(), serde_json::json!({"status": c.status, "detail": c.detail}))).collect::<serde_json::Map<_, _>>(),
                }))?,
                Output::Table => {
                    println!("overall: {}", h.overall);
                    let rows: Vec<Vec<String>> =
                        h.components.into_iter().map(|c| vec![c.name, c.status, c.detail]).collect();
                    print_table(&["COMPONENT", "STATUS", "DETAIL"], &rows);
                }
            }
        }
        Cmd::Hotlist { limit } => {
            let h = c.list_hotlist(proto::HotlistRequest { limit: *limit }).await?.into_inner();
            let list: Vec<SymbolView> = h.entries.into_iter().map(SymbolView::from).collect();
            match out {
                Output::Json => print_json(&serde_json::json!({"ts_ms": h.ts_ms, "entries": list}))?,
                Output::Table => {
                    let rows: Vec<Vec<String>> = list
                        .iter()
                        .map(|s| {
                            vec![
                                s.symbol.clone(),
                                s.category.clone(),
                                or_dash(&s.state),
                                or_dash(&s.regime),
                                num(s.price),
                                num(s.spread_bps),
                                num(s.imbalance),
                                num(s.score_long),
                                num(s.score_short),
                                num(s.turnover_24h),
                            ]
                        })
                        .collect();
                    print_table(
                        &[
                            "SYMBOL",
                            "CAT",
                            "STATE",
                            "REGIME",
                            "PRICE",
                            "SPREAD_BPS",
                            "IMB",
                            "LONG",
                            "SHORT",
                            "TURNOVER_24H",
                        ],
                        &rows,
                    );
                }
            }
        }
        Cmd::Symbol { symbol } => {
            let s = SymbolView::from(c.get_symbol(sym(symbol)).await?.into_inner());
            match out {
                Output::Json => print_json(&s)?,
                Output::Table => print_symbol(&s),
            }
        }
        Cmd::Trades => {
            let t = c.list_active_trades(proto::Empty {}).await?.into_inner();
            let list: Vec<TradeView> = t.trades.into_iter().map(TradeView::from).collect();
            match out {
                Output::Json => print_json(&serde_json::json!({"ts_ms": t.ts_ms, "trades": list}))?,
                Output::Table if list.is_empty() => println!("no open trades"),
                Output::Table => {
                    let rows: Vec<Vec<String>> = list
                        .iter()
                        .map(|t| {
                            vec![
                                t.symbol.clone(),
                                t.side.clone(),
                                num(t.qty),
                                num(t.entry_price),
                                num(t.mark_price),
                                num(t.stop_price),
                                num(t.take_profit),
                                num(t.unrealized_pnl),
                                num(t.r_multiple),
                                or_dash(&t.state),
                                fmt_time(t.opened_ms),
                            ]
                        })
                        .collect();
                    print_table(
                        &["SYMBOL", "SIDE", "QTY", "ENTRY", "MARK", "STOP", "TP", "PNL", "R", "STATE", "OPENED"],
                        &rows,
                    );
                }
            }
        }
        Cmd::Events { follow, limit, symbol } => {
            let req = proto::StreamEventsRequest {
                recent: *limit,
                follow: *follow,
                symbol: symbol.as_deref().map(|s| s.trim().to_ascii_uppercase()).unwrap_or_default(),
            };
            let mut stream = c.stream_events(req).await?.into_inner();
            while let Some(e) = stream.message().await? {
                let e = EventRecord::from(e);
                match out {
                    Output::Json => match serde_json::to_string(&e) {
                        Ok(s) => println!("{s}"),
                        Err(err) => return Err(Fail { code: 1, msg: format!("cannot encode JSON: {err}") }),
                    },
                    Output::Table => print_event(&e),
                }
                let _ = std::io::stdout().flush();
            }
        }
        Cmd::Mode { mode, .. } => {
            let (pin, confirm) = live.unwrap_or_default();
            let m = match mode {
                ModeArg::Sim => "SIM",
                ModeArg::DryRun => "DRY_RUN",
                ModeArg::Live => "LIVE",
            };
            let r = c.set_mode(proto::SetModeRequest { mode: m.into(), pin, confirm }).await?.into_inner();
            match out {
                Output::Json => print_json(&serde_json::json!({"ok": r.ok, "mode": r.mode, "message": r.message}))?,
                Output::Table => println!("ok: {}", r.message),
            }
        }
        Cmd::Pause => ack(out, c.pause(proto::Empty {}).await?.into_inner())?,
        Cmd::Resume => ack(out, c.resume(proto::Empty {}).await?.into_inner())?,
        Cmd::Panic => ack(out, c.panic_close_all(proto::Empty {}).await?.into_inner())?,
        Cmd::Blacklist { cmd: BlacklistCmd::Add { symbol } } => ack(out, c.blacklist(sym(symbol)).await?.into_inner())?,
        Cmd::Blacklist { cmd: BlacklistCmd::Rm { symbol } } => {
            ack(out, c.unblacklist(sym(symbol)).await?.into_inner())?
        }
        Cmd::News { cmd: NewsCmd::Set { symbol, impact, news_type, ttl } } => {
            let req = proto::NewsFlagRequest {
                symbol: symbol.trim().to_ascii_uppercase(),
                impact: *impact,
                news_type: news_type.clone(),
                ttl_seconds: *ttl,
            };
            ack(out, c.set_news_flag(req).await?.into_inner())?
        }
        Cmd::News { cmd: NewsCmd::Clear { symbol } } => ack(out, c.clear_news_flag(sym(symbol)).await?.into_inner())?,
        Cmd::Reload => ack(out, c.reload_config(proto::Empty {}).await?.into_inner())?,
        Cmd::PinHash { .. } => {}
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { ExitCode::from(2) } else { ExitCode::SUCCESS };
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let hint = token_hint(&cli);
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("error: {}", f.msg);
            // Only for the engine's token refusals (not a wrong PIN, not a refused file).
            if f.msg.ends_with("[Unauthenticated]") && f.msg.contains("control token") {
                if let Some(h) = hint {
                    eprintln!("hint: {h}");
                }
            }
            ExitCode::from(f.code)
        }
    }
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
    fn status_codes_map_to_exit_codes() {
        assert_eq!(Fail::from(Status::unauthenticated("x")).code, 3);
        assert_eq!(Fail::from(Status::permission_denied("x")).code, 3);
        assert_eq!(Fail::from(Status::failed_precondition("x")).code, 1);
        assert_eq!(Fail::from(Status::resource_exhausted("x")).code, 1);
        assert_eq!(Fail::from(Status::not_found("x")).code, 1);
        assert_eq!(Fail::from(Status::invalid_argument("x")).code, 2);
        assert_eq!(Fail::from(Status::unavailable("x")).code, 2);
    }
}
