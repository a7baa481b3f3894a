//! `scalperctl`: the control CLI of a running `scalper` engine (gRPC).
//!
//! Exit codes: 0 ok · 1 refused by the engine (failed precondition, not found, rate limited…) ·
//! 2 usage or connection error · 3 authentication (token or PIN).

use clap::{Parser, Subcommand, ValueEnum};
use scalper::connectors::bybit_public::error_chain;
use scalper::control::auth::PinHash;
use scalper::control::bus::EventRecord;
use scalper::control::eventline;
use scalper::control::format::{self, table};
use scalper::control::top::{self, ComponentLine, TopData};
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
    /// Output format: tables and lines for people (prices at the tick size, money with 2
    /// decimals…), or the raw JSON.
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

/// Wall-clock now, ms since the epoch (for same-day times).
fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn or_dash(s: &str) -> String {
    if s.is_empty() {
        "-".into()
    } else {
        s.to_string()
    }
}

fn print_summary(s: &SummaryView) {
    let g = &s.global;
    let flags = top::raised_flags(s);
    let now = now_ms();
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
        ("equity", format!("{} USDT", format::money(g.equity))),
        ("balance", format!("{} USDT", format::money(g.balance))),
        ("realized pnl", format!("{} USDT", format::pnl(g.realized_pnl))),
        ("unrealized pnl", format!("{} USDT", format::pnl(g.unrealized_pnl))),
        (
            "daily pnl",
            format!("{} USDT (limit {} of equity)", format::pnl(g.daily_pnl), format::pct(g.daily_loss_limit, 1)),
        ),
        (
            "portfolio heat",
            format!("{} (max {})", format::pct(g.portfolio_heat, 2), format::pct(g.max_portfolio_heat, 1)),
        ),
        ("open positions", g.open_positions.to_string()),
        ("blacklist", if g.blacklist.is_empty() { "-".into() } else { g.blacklist.join(" ") }),
    ];
    for n in &g.news_flags {
        rows.push(("news", format::news_flag(n, now)));
    }
    rows.push(("snapshot at", format::datetime(s.ts_ms)));
    print!("{}", format::kv(&rows));
}

fn print_symbol(s: &SymbolView) {
    let px = |v: f64| format::price(v, s.tick_size);
    let mut rows = vec![
        ("symbol", s.symbol.clone()),
        ("category", or_dash(&s.category)),
        ("state", or_dash(&s.state)),
        ("regime", or_dash(&s.regime)),
        (
            "baselines",
            if s.warm { "warm".to_string() } else { format!("{} ({} s left)", s.warm_reason, s.warmup_left_s) },
        ),
        ("price", px(s.price)),
        ("bid / ask", format!("{} / {}", px(s.bid), px(s.ask))),
        ("mark price", px(s.mark_price)),
        (
            "tick / qty step",
            format!(
                "{} / {}",
                if s.tick_size > 0.0 { format::plain(s.tick_size) } else { "-".into() },
                if s.qty_step > 0.0 { format::plain(s.qty_step) } else { "-".into() }
            ),
        ),
        ("spread bps", format::bps(s.spread_bps)),
        ("imbalance", format::fixed(s.imbalance, 2)),
        ("walls bid / ask", format!("{} / {}", format::fixed(s.wall_score_bid, 2), format::fixed(s.wall_score_ask, 2))),
        ("spoofing", format::fixed(s.spoofing_score, 2)),
        ("pump", or_dash(&s.pump_state)),
        ("volatility", format::pct(s.volatility, 3)),
        ("flow delta", format::qty(s.flow_delta, s.qty_step)),
        ("min move", format!("{}%", format::fixed(s.min_move_pct, 3))),
        ("news impact", format::fixed(s.news_impact, 2)),
        ("score long / short", format!("{} / {}", format::score(s.score_long), format::score(s.score_short))),
        ("turnover 24h", format!("{} USDT", format::compact(s.turnover_24h))),
        ("funding rate", format::pct(s.funding_rate, 4)),
        ("open interest", format::compact(s.open_interest)),
        ("book valid", s.book_valid.to_string()),
        ("book errors", s.book_errors.to_string()),
        ("last book", format::datetime(s.last_book_ms)),
        ("last trade", format::datetime(s.last_trade_ms)),
        ("blacklisted", s.blacklisted.to_string()),
    ];
    match &s.position {
        Some(p) => rows.push((
            "position",
            format!(
                "{} {} @ {} pnl {} USDT ({} R)",
                p.side,
                format::qty(p.qty, s.qty_step),
                px(p.entry_price),
                format::pnl(p.unrealized_pnl),
                format::r_multiple(p.r_multiple)
            ),
        )),
        None => rows.push(("position", "-".into())),
    }
    print!("{}", format::kv(&rows));
}

async fn fetch_top(c: &mut Client, limit: u32) -> Result<TopData, Fail> {
    let summary = SummaryView::from(c.get_summary(proto::Empty {}).await?.into_inner());
    let h = c.get_health(proto::Empty {}).await?.into_inner();
    let hot = c.list_hotlist(proto::HotlistRequest { limit }).await?.into_inner();
    let trades = c.list_active_trades(proto::Empty {}).await?.into_inner();
    Ok(TopData {
        summary,
        health: h.overall,
        components: h
            .components
            .into_iter()
            .map(|c| ComponentLine { name: c.name, status: c.status, detail: c.detail })
            .collect(),
        hotlist: hot.entries.into_iter().map(SymbolView::from).collect(),
        trades: trades.trades.into_iter().map(TradeView::from).collect(),
    })
}

/// Cuts every line of `frame` to `cols` terminal cells and the whole to `rows` lines.
fn clip(frame: &str, cols: usize, rows: usize) -> String {
    let mut out = String::new();
    for line in frame.lines().take(rows) {
        let mut w = 0;
        for ch in line.chars() {
            let cw = format::width(ch.encode_utf8(&mut [0u8; 4]));
            if w + cw > cols {
                break;
            }
            w += cw;
            out.push(ch);
        }
        out.push('\n');
    }
    out
}

/// `scalperctl top`: one frame (--once, JSON, or stdout not a terminal), else a refreshing view
/// on the alternate screen until `q` or Ctrl-C. A failed refresh is shown and retried.
async fn run_top(c: &mut Client, out: Output, interval: Duration, limit: u32, once: bool) -> Result<(), Fail> {
    use std::io::IsTerminal;
    if out == Output::Json {
        let d = fetch_top(c, limit).await?;
        let components: serde_json::Map<String, serde_json::Value> = d
            .components
            .iter()
            .map(|c| (c.name.clone(), serde_json::json!({"status": c.status, "detail": c.detail})))
            .collect();
        return print_json(&serde_json::json!({
            "summary": d.summary,
            "health": {"overall": d.health, "components": components},
            "hotlist": d.hotlist,
            "trades": d.trades,
        }));
    }
    if once || !std::io::stdout().is_terminal() {
        let d = fetch_top(c, limit).await?;
        print!("{}", top::frame(&d, now_ms()));
        return Ok(());
    }
    // Ctrl-C is caught from here on (also while a refresh is in flight), so the terminal is
    // always restored.
    let mut interrupt = term::Interrupt::new().map_err(|e| Fail::usage(format!("cannot watch Ctrl-C: {e}")))?;
    let (key_tx, mut key_rx) = tokio::sync::mpsc::channel::<()>(1);
    let _cbreak = if std::io::stdin().is_terminal() { term::Cbreak::enter() } else { None };
    // Keys are read on a plain thread (stdin reads block); it ends with the process.
    std::thread::spawn(move || {
        use std::io::Read;
        let mut b = [0u8; 1];
        let mut stdin = std::io::stdin();
        loop {
            match stdin.read(&mut b) {
                Ok(1) if b[0] == b'q' || b[0] == b'Q' => {
                    let _ = key_tx.blocking_send(());
                    return;
                }
                Ok(0) | Err(_) => return,
                _ => {}
            }
        }
    });
    let mut stdout = std::io::stdout();
    // Alternate screen, cursor hidden; both undone on the way out.
    let _ = write!(stdout, "\x1b[?1049h\x1b[?25l");
    let footer = format!("q or Ctrl-C to quit · refresh every {:.1} s", interval.as_secs_f64());
    loop {
        let body = match fetch_top(c, limit).await {
            Ok(d) => top::frame(&d, now_ms()),
            Err(f) => format!("scalper top  {} UTC\n\nerror: {} (retrying)\n", format::datetime(now_ms()), f.msg),
        };
        let (cols, rows) = term::size().unwrap_or((120, 50));
        // The footer stays on screen: the body gets the rows above it and a blank line.
        let (cols, rows) = (cols.max(20), rows.max(5));
        let frame = clip(&format!("{}\n\n{footer}\n", clip(&body, cols, rows - 3).trim_end_matches('\n')), cols, rows);
        let _ = write!(stdout, "\x1b[H\x1b[2J{}", frame.trim_end_matches('\n'));
        let _ = stdout.flush();
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = interrupt.recv() => break,
            _ = key_rx.recv() => break,
        }
    }
    let _ = write!(stdout, "\x1b[?25h\x1b[?1049l");
    let _ = stdout.flush();
    Ok(())
}

/// Terminal helpers for `top`, through `stty` on the terminal of stdin (no system calls of our
/// own); where `stty` is missing, keys need Enter and the size is a default.
mod term {
    use std::process::{Command, Stdio};

    fn stty(args: &[&str]) -> Option<String> {
        let out = Command::new("stty").args(args).stdin(Stdio::inherit()).stderr(Stdio::null()).output().ok()?;
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// Stdin in cbreak mode (each key arrives at once, no echo; Ctrl-C still signals) until
    /// dropped, when the saved settings come back.
    pub struct Cbreak(String);

    impl Cbreak {
        /// `None` when stdin is not a terminal or `stty` fails.
        pub fn enter() -> Option<Cbreak> {
            let saved = stty(&["-g"]).filter(|s| !s.is_empty())?;
            stty(&["-icanon", "-echo", "min", "1", "time", "0"])?;
            Some(Cbreak(saved))
        }
    }

    impl Drop for Cbreak {
        fn drop(&mut self) {
            let _ = stty(&[self.0.as_str()]);
        }
    }

    /// Ctrl-C (SIGINT), watched from creation on: one pressed before the first `recv` counts.
    pub struct Interrupt(#[cfg(unix)] tokio::signal::unix::Signal);

    impl Interrupt {
        #[cfg(unix)]
        pub fn new() -> std::io::Result<Interrupt> {
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).map(Interrupt)
        }

        #[cfg(not(unix))]
        pub fn new() -> std::io::Result<Interrupt> {
            Ok(Interrupt())
        }

        /// Waits for the next Ctrl-C.
        pub async fn recv(&mut self) {
            #[cfg(unix)]
            let _ = self.0.recv().await;
            #[cfg(not(unix))]
            let _ = tokio::signal::ctrl_c().await;
        }
    }

    /// (columns, rows) of the terminal.
    pub fn size() -> Option<(usize, usize)> {
        let s = stty(&["size"])?;
        let mut it = s.split_whitespace().map(|v| v.parse::<usize>().ok());
        let (rows, cols) = (it.next()??, it.next()??);
        (rows > 0 && cols > 0).then_some((cols, rows))
    }
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
                    print!("{}", table(&["COMPONENT", "STATUS", "DETAIL"], &rows));
                }
            }
        }
        Cmd::Hotlist { limit } => {
            let h = c.list_hotlist(proto::HotlistRequest { limit: *limit }).await?.into_inner();
            let list: Vec<SymbolView> = h.entries.into_iter().map(SymbolView::from).collect();
            match out {
                Output::Json => print_json(&serde_json::json!({"ts_ms": h.ts_ms, "entries": list}))?,
                Output::Table => print!("{}", top::hotlist_table(&list)),
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
                Output::Table => print!("{}", top::trades_table(&list, now_ms())),
            }
        }
        Cmd::Events { follow, limit, symbol, ascii } => {
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
                    Output::Table => println!("{}", eventline::render(&e, now_ms(), *ascii)),
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
        Cmd::Top { interval, limit, once } => run_top(&mut c, out, *interval, *limit, *once).await?,
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

    #[test]
    fn clip_cuts_lines_to_the_terminal() {
        assert_eq!(clip("abcdef\nxy\nz\n", 4, 2), "abcd\nxy\n");
        assert_eq!(clip("🔥🔥🔥\n", 5, 9), "🔥🔥\n", "emoji take two cells");
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
