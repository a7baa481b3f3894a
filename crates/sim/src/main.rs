//! `scalper-sim`: the loopback Bybit v5 exchange simulator on its own, without the engine.
//! `scalper sim-exchange` runs the same thing from the main binary.

fn main() -> std::process::ExitCode {
    scalper_sim::cli::main()
}
