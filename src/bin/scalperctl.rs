//! `scalperctl`: the control CLI of a running `scalper` engine (gRPC).
//!
//! Exit codes: 0 ok · 1 refused by the engine (failed precondition, not found, rate limited…) ·
//! 2 usage or connection error · 3 authentication (token or PIN).
//!
//! This file connects (token, TLS) and runs a command; the command line is in `cli`, output
//! formatting in `show`, the `top` screen in `top_screen` and the PIN handling in `pin`.

#[path = "scalperctl/cli.rs"]
mod cli;
#[path = "scalperctl/pin.rs"]
mod pin;
#[path = "scalperctl/show.rs"]
mod show;
#[path = "scalperctl/top_screen.rs"]
mod top_screen;

use clap::Parser;
use cli::{BlacklistCmd, Cli, Cmd, ModeArg, NewsCmd, Output};
use pin::{live_credentials, pin_hash};
use scalper::connectors::bybit_public::error_chain;
use scalper::control::bus::EventRecord;
use scalper::control::eventline;
use scalper::control::format::table;
use scalper::control::top;
use scalper::control::view::{SummaryView, SymbolView, TradeView};
use scalper::proto;
use scalper::proto::control_client::ControlClient;
use show::{ack, now_ms, print_json, print_summary, print_symbol};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use tonic::metadata::MetadataValue;
use tonic::service::Interceptor;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Status};
use top_screen::run_top;

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
