//! The simulator as a program: `scalper-sim` and `scalper sim-exchange` share these options and
//! this loop (start on loopback, print the URLs, serve until Ctrl-C).

use crate::{SimConfig, SimExchange};
use std::process::ExitCode;

/// Options of the stand-alone simulator.
#[derive(Debug, Clone, clap::Args)]
pub struct SimExchangeArgs {
    /// Loopback port (0 = any free port).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Number of symbols in the base universe, 1..=10000 (the demo's scenarios and delisting
    /// on symbols beyond it are left out).
    #[arg(long, default_value_t = 50)]
    pub symbols: usize,
    /// Seed of the synthetic market.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

#[derive(Debug, clap::Parser)]
#[command(name = "scalper-sim", about = "The Bybit v5 exchange simulator on loopback (REST + public and private WS)")]
struct Cli {
    #[command(flatten)]
    args: SimExchangeArgs,
}

/// Entry point of the `scalper-sim` binary.
pub fn main() -> ExitCode {
    let cli = <Cli as clap::Parser>::parse();
    run(&cli.args)
}

/// Serves the simulator until Ctrl-C; failure to start is reported on stderr.
pub fn run(args: &SimExchangeArgs) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(async move {
        let cfg = SimConfig { port: args.port, ..SimConfig::demo(args.seed).with_symbols(args.symbols) };
        match SimExchange::start(cfg).await {
            Ok(sim) => {
                println!("REST {}  WS {}", sim.rest_url(), sim.ws_public_url());
                let _ = tokio::signal::ctrl_c().await;
                sim.shutdown().await;
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("simulator: {e}");
                ExitCode::FAILURE
            }
        }
    })
}
