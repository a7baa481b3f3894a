//! `scalper`: the engine binary.

use clap::{Parser, Subcommand};
use scalper::config::paths::{DataKind, Paths};
use scalper::config::Config;
use scalper::config::ConfigFile;
use scalper::connectors::simulator::{SimConfig, SimExchange};
use scalper::engine::runtime::{self, RunOptions};
use scalper::monitoring::logging::{self, LogFormat};
use scalper::monitoring::metrics::Metrics;
use scalper::storage::json_store::Store;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

#[path = "scalper/demo.rs"]
mod demo;
#[cfg(feature = "parquet-export")]
#[path = "scalper/export.rs"]
mod export;
#[path = "scalper/latency.rs"]
mod latency;
#[path = "scalper/progress.rs"]
mod progress;
#[path = "scalper/tools.rs"]
mod tools;

/// Headless, deterministic scalping engine for Bybit linear USDT perpetuals.
#[derive(Parser)]
#[command(name = "scalper", version, about)]
struct Cli {
    /// Log format: auto (human on a terminal, JSON otherwise), human or json.
    #[arg(long, value_enum, default_value = "auto", global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the engine with a configuration (defaults → scalper.toml → SCALPER_* env).
    Run {
        /// Configuration file (watched for hot reload). Default: ./scalper.toml if it exists.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Run the engine in SIM mode against the built-in simulated exchange on loopback.
    Demo {
        /// Configuration file (optional).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Seed of the simulated market.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Stop after this many seconds (default: run until Ctrl-C).
        #[arg(long)]
        duration_s: Option<u64>,
    },
    /// Run the Bybit v5 simulator alone on loopback (REST + public and private WS); the same
    /// as the `scalper-sim` binary.
    SimExchange(scalper::connectors::simulator::cli::SimExchangeArgs),
    /// Replay a recorded period through a fresh engine; writes the decision log and prints its
    /// SHA-256 (two replays of the same recording print the same hash).
    Replay {
        #[command(flatten)]
        src: ReplaySource,
        /// Pace by recorded receive time, N times real time.
        #[arg(long, conflicts_with = "max")]
        speed: Option<f64>,
        /// As fast as possible (the default).
        #[arg(long)]
        max: bool,
        /// Decision log to write (JSON lines).
        #[arg(long, default_value = "decisions.jsonl")]
        out: PathBuf,
        /// Exit 0 even when the recording has gaps (missing events, unreadable lines); without
        /// it such a replay exits with code 3 after writing the decision log.
        #[arg(long)]
        accept_gaps: bool,
        /// Replay independent runs (each starting at a run header) side by side on this many
        /// threads; the decision log is the same as with 1.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
        jobs: u16,
    },
    /// Replay at full speed and report the trades: win rate, PnL after fees, R distribution,
    /// max drawdown, per-regime / category / exit-reason breakdowns.
    Backtest {
        #[command(flatten)]
        src: ReplaySource,
        /// JSON report to write.
        #[arg(long, default_value = "backtest-report.json")]
        report: PathBuf,
        /// Self-contained HTML report with charts (equity and drawdown, R distribution, PnL by
        /// regime, category and exit reason) to write; default: the JSON report's path with `.html`.
        #[arg(long)]
        html: Option<PathBuf>,
        /// Write no HTML report.
        #[arg(long, conflicts_with = "html")]
        no_html: bool,
        /// Also write the decision log here.
        #[arg(long)]
        decisions: Option<PathBuf>,
        /// Replay independent runs (each starting at a run header) side by side on this many
        /// threads; the report and decision log are the same as with 1.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
        jobs: u16,
    },
    /// Judge the judgement on a recording or on Bybit dumps: share of time per symbol regime and
    /// pump phase, wall verdicts per minute, global regime shares, entries before warm-up, score
    /// distribution; with --inject, labelled events injected into the real background with
    /// recall and detection delay per kind.
    Evaluate {
        /// Recording to read (a data directory holding raw/_global/). Ignored with --orderbook/--trades.
        #[command(flatten)]
        src: ReplaySource,
        /// Order-book dump instead of a recording (`.zst` accepted).
        #[arg(long)]
        orderbook: Option<PathBuf>,
        /// Trade dump instead of a recording (`.zst` accepted).
        #[arg(long)]
        trades: Option<PathBuf>,
        /// Count from this much market time after the first event, seconds.
        #[arg(long, default_value_t = 60)]
        skip_s: u64,
        /// Inject labelled events into the background: this many trials per kind and seed.
        #[arg(long, default_value_t = 0)]
        inject: usize,
        /// Seeds of the injection (comma-separated).
        #[arg(long, value_delimiter = ',', default_value = "1,2,3")]
        seeds: Vec<u64>,
        /// Output: table or json.
        #[arg(short = 'o', long, default_value = "table")]
        output: String,
    },
    /// Convert public Bybit dumps (trade CSV, order-book JSONL) into a recording under --out.
    Import {
        /// Trade dump (`timestamp,symbol,side,size,price,tickDirection,trdMatchID,…` CSV).
        #[arg(long)]
        trades: Option<PathBuf>,
        /// Order-book dump (one `orderbook.{depth}.{symbol}` WS frame per line).
        #[arg(long)]
        orderbook: Option<PathBuf>,
        /// Output data directory (the recording goes to <out>/raw/_global/).
        #[arg(long)]
        out: PathBuf,
    },
    #[cfg(feature = "parquet-export")]
    /// Write the recording and the store's hourly streams as Parquet for DuckDB, Polars or Spark,
    /// partitioned by day and symbol: <out>/<stream>/day=YYYY-MM-DD/symbol=<SYMBOL|_global>/part-N.parquet.
    Export {
        /// Parquet (the only format; required so that other formats can come later).
        #[arg(long, required = true)]
        parquet: bool,
        /// Data directory (default: SCALPER_DATA_DIR, then ./data).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Output directory (created; must be new or empty).
        #[arg(long)]
        out: PathBuf,
        /// First day, YYYY-MM-DD (inclusive, UTC; by the hourly file's day).
        #[arg(long)]
        from: Option<String>,
        /// Last day, YYYY-MM-DD (inclusive).
        #[arg(long)]
        to: Option<String>,
        /// Only these symbols (comma-separated; `_global` for records of no symbol).
        #[arg(long, value_delimiter = ',')]
        symbols: Option<Vec<String>>,
        /// Only these streams (comma-separated): raw, trades, events, microcandles, trades_log,
        /// orderbook, trades_stream, metrics, system.
        #[arg(long, value_delimiter = ',')]
        streams: Option<Vec<String>>,
        /// Most partition files open at once.
        #[arg(long, default_value_t = scalper::storage::export_parquet::DEFAULT_MAX_OPEN)]
        max_open: usize,
    },
    /// Replay a synthetic full-universe stream and report events/s, tick latency, peak RSS and a
    /// projection to the whole universe (bytes/day, core load, replay time per day).
    BenchReplay(tools::BenchOptions),
    /// Regenerate the bundled hand-built trading recording (deterministic).
    #[command(hide = true)]
    RecordFixture {
        /// Output data directory.
        #[arg(long)]
        out: PathBuf,
        /// Symbols.
        #[arg(long, default_value_t = 20)]
        symbols: usize,
        /// Market steps of 100 ms.
        #[arg(long, default_value_t = 150)]
        steps: usize,
        /// Seed.
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Largest price move of one step, ticks.
        #[arg(long, default_value_t = 3)]
        max_move: i64,
    },
    /// Configuration tools.
    Config {
        #[command(subcommand)]
        cmd: ConfigCmd,
    },
    /// Storage crash-safety exerciser (used by the test suite): appends records forever and
    /// prints `ack N` after each acknowledged flush.
    #[command(hide = true)]
    StorageStress {
        /// Data directory.
        #[arg(long)]
        data_dir: PathBuf,
    },
}

/// Which recording to read.
#[derive(clap::Args)]
struct ReplaySource {
    /// Start of the period (RFC 3339, e.g. 2026-01-01T00:00:00Z). Default: the beginning.
    #[arg(long)]
    from: Option<String>,
    /// End of the period (RFC 3339, exclusive). Default: the end.
    #[arg(long)]
    to: Option<String>,
    /// Data directory holding raw/_global/ (default: SCALPER_DATA_DIR, then ./data).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Configuration replacing the recorded one.
    #[arg(long)]
    config: Option<PathBuf>,
}

#[derive(Subcommand)]
enum ConfigCmd {
    /// Validate a configuration file (with defaults and environment applied) and print it.
    Check {
        /// The file.
        file: PathBuf,
    },
}

/// The heap set-up `main` found or made before anything else ran ([`scalper::memory`]).
enum Heap {
    /// A command that runs no engine core: the default heap.
    NoCore,
    /// `engine.huge_pages` is false.
    Off,
    /// The configuration could not be read to decide (the command reports why).
    Unreadable(String),
    /// What [`scalper::memory::reexec_with_huge_pages`] returned with.
    Huge(scalper::memory::HugePages),
}

/// `engine.huge_pages` for the command (its configuration file for `run` and `demo`, defaults
/// and environment otherwise), and if on, this binary started again under the huge-page
/// tunables: on success this does not return. Runs before logging, threads or files exist.
fn heap_setup(cmd: &Cmd) -> Heap {
    let file = match cmd {
        Cmd::Run { config } | Cmd::Demo { config, .. } => config_path(config.clone()),
        Cmd::Replay { .. } | Cmd::Backtest { .. } | Cmd::Evaluate { .. } | Cmd::BenchReplay(_) => None,
        _ => return Heap::NoCore,
    };
    match Config::figment(file.as_deref()).extract_inner::<bool>("engine.huge_pages") {
        Ok(false) => Heap::Off,
        Ok(true) => Heap::Huge(scalper::memory::reexec_with_huge_pages()),
        Err(e) => Heap::Unreadable(e.to_string()),
    }
}

/// Logs what [`heap_setup`] did, once logging is up.
fn log_heap(heap: &Heap) {
    use scalper::memory::HugePages;
    let malloc = scalper::memory::malloc_setup();
    match heap {
        Heap::NoCore => {}
        Heap::Off => tracing::info!(%malloc, "heap: default pages (engine.huge_pages = false)"),
        Heap::Unreadable(e) => {
            tracing::warn!(%malloc, error = %e, "heap: default pages, engine.huge_pages could not be read")
        }
        Heap::Huge(HugePages::InEffect) => {
            tracing::info!(%malloc, "heap: the huge-page tunables are in effect (engine.huge_pages)")
        }
        Heap::Huge(HugePages::Unsupported) => {
            tracing::info!(%malloc, "heap: default pages (engine.huge_pages needs Linux with glibc)")
        }
        Heap::Huge(HugePages::Failed(e)) => {
            tracing::warn!(%malloc, error = %e, "heap: default pages, engine.huge_pages could not be applied")
        }
    }
}

/// The configuration file of `run` and `demo`: the one given, else `./scalper.toml` if it exists.
fn config_path(config: Option<PathBuf>) -> Option<PathBuf> {
    config.or_else(|| {
        let p = PathBuf::from("scalper.toml");
        p.exists().then_some(p)
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let heap = heap_setup(&cli.cmd);
    let offline = matches!(
        cli.cmd,
        Cmd::Replay { .. } | Cmd::Backtest { .. } | Cmd::Import { .. } | Cmd::BenchReplay(_) | Cmd::Evaluate { .. }
    );
    #[cfg(feature = "parquet-export")]
    let offline = offline || matches!(cli.cmd, Cmd::Export { .. });
    if offline && std::env::var_os("RUST_LOG").is_none() {
        // Offline tools: the core's per-decision info logs would drown the output.
        std::env::set_var("RUST_LOG", "warn");
    }
    logging::init(cli.log_format);
    log_heap(&heap);
    match cli.cmd {
        Cmd::Config { cmd: ConfigCmd::Check { file } } => match Config::load(Some(&file)) {
            Ok(cfg) => {
                match toml_like(&cfg) {
                    Ok(s) => println!("{s}"),
                    Err(e) => eprintln!("{e}"),
                }
                eprintln!("{}: OK", file.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{}: {e}", file.display());
                ExitCode::from(2)
            }
        },
        Cmd::Run { config } => run_engine(config, None, None),
        Cmd::Demo { config, seed, duration_s } => run_engine(config, Some(seed), duration_s),
        Cmd::SimExchange(args) => scalper::connectors::simulator::cli::run(&args),
        Cmd::Replay { src, speed, max: _, out, accept_gaps, jobs } => {
            tools::replay(&src, speed, &out, accept_gaps, jobs.into())
        }
        Cmd::Backtest { src, report, html, no_html, decisions, jobs } => {
            let html = (!no_html).then(|| html.unwrap_or_else(|| tools::html_path(&report)));
            tools::backtest(&src, &report, html.as_deref(), decisions.as_deref(), jobs.into())
        }
        Cmd::Import { trades, orderbook, out } => tools::import(trades.as_deref(), orderbook.as_deref(), &out),
        Cmd::Evaluate { src, orderbook, trades, skip_s, inject, seeds, output } => {
            tools::evaluate(&src, orderbook.as_deref(), trades.as_deref(), skip_s, inject, &seeds, &output)
        }
        #[cfg(feature = "parquet-export")]
        Cmd::Export { parquet: _, data_dir, out, from, to, symbols, streams, max_open } => {
            let data_dir = data_dir.unwrap_or_else(export::default_data_dir);
            let mut opts = scalper::storage::export_parquet::ExportOptions::new(data_dir, out);
            opts.from_day = from;
            opts.to_day = to;
            opts.symbols = symbols.map(|v| v.into_iter().collect());
            opts.streams = streams.map(|v| v.into_iter().collect());
            opts.max_open = max_open;
            export::export_parquet(&opts)
        }
        Cmd::BenchReplay(opts) => tools::bench_replay(&opts),
        Cmd::RecordFixture { out, symbols, steps, seed, max_move } => {
            tools::record_fixture(&out, symbols, steps, seed, max_move)
        }
        Cmd::StorageStress { data_dir } => storage_stress(&data_dir),
    }
}

fn toml_like(cfg: &Config) -> Result<String, serde_json::Error> {
    serde_json::to_string_pretty(cfg)
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build()
}

fn run_engine(config: Option<PathBuf>, demo_seed: Option<u64>, duration_s: Option<u64>) -> ExitCode {
    let config_path = config_path(config);
    let mut cfg = match Config::load(config_path.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let root = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let env_data = std::env::var_os("SCALPER_DATA_DIR").map(PathBuf::from);
    let paths = Paths::resolve(&root, cfg.data_dir.as_deref(), env_data.as_deref());
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let res = rt.block_on(async move {
        let shutdown = CancellationToken::new();
        {
            let s = shutdown.clone();
            tokio::spawn(async move {
                let _ = tokio::signal::ctrl_c().await;
                tracing::info!("Ctrl-C: stopping");
                s.cancel();
            });
        }
        if let Some(d) = duration_s {
            let s = shutdown.clone();
            tokio::spawn(async move {
                tokio::time::sleep(std::time::Duration::from_secs(d)).await;
                s.cancel();
            });
        }
        let mut sim = None;
        let mut credentials = None;
        let mut security = None;
        let mut grpc_bound = None;
        let mut demo_token = None;
        if let Some(seed) = demo_seed {
            // The demo always trades in SIM mode against the in-process simulator.
            let s = SimExchange::start(SimConfig::demo(seed))
                .await
                .map_err(|e| anyhow::anyhow!("cannot start the simulated exchange: {e}"))?;
            tracing::info!(rest = %s.rest_url(), ws = %s.ws_public_url(), "simulated exchange listening");
            cfg.mode = scalper::engine::event::Mode::Sim;
            cfg.endpoints = s.endpoints();
            // The demo records its inputs so that any demo run can be replayed.
            cfg.storage.record_raw = true;
            // The private connector talks to the simulator's account (its demo API key), so the
            // confirmed, PIN-checked LIVE flow can be exercised end to end without any real money.
            let key = scalper::connectors::simulator::PrivateConfig::default().api_keys.first().cloned();
            credentials =
                key.and_then(|k| scalper::connectors::bybit_private::Credentials::new(&k.key, &k.secret).ok());
            sim = Some(s);
            // Controls work out of the box: a generated token (found by scalperctl in the data
            // directory) and a one-time LIVE PIN, unless the environment configures its own.
            let steer = demo::prepare(&paths)?;
            demo_token = steer.token_file.clone();
            security = Some(steer.security);
            let (tx, rx) = tokio::sync::oneshot::channel();
            grpc_bound = Some(tx);
            let banner = steer.banner;
            tokio::spawn(async move {
                if let Ok(addr) = rx.await {
                    banner.print(addr);
                }
            });
        }
        let res = runtime::run(RunOptions {
            config_path,
            credentials,
            security,
            grpc_bound,
            ..RunOptions::new(Arc::new(cfg), paths, shutdown)
        })
        .await;
        if let Some((path, token)) = demo_token {
            scalper::control::local_token::remove_token_file(&path, &token);
        }
        if let Some(s) = sim {
            s.shutdown().await;
        }
        res
    });
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn storage_stress(data_dir: &Path) -> ExitCode {
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(async move {
        let store = Store::start(Paths::with_data_dir(data_dir), 1024, 64, Arc::new(Metrics::new()));
        let h = store.handle();
        let sym = scalper::domain::Symbol::new("BTCUSDT");
        let pad = "x".repeat(200);
        let mut n: u64 = 0;
        loop {
            for _ in 0..50 {
                n += 1;
                let rec = serde_json::json!({"n": n, "pad": pad});
                if h.append(DataKind::Events, Some(&sym), 1_795_525_500_000, &rec).await.is_err() {
                    return ExitCode::FAILURE;
                }
            }
            h.flush().await;
            println!("ack {n}");
        }
    })
}
