//! Per-symbol features computed from books, tape and candles (imbalance, walls and spoofing,
//! pump phases, flow and delta, volatility, fee hurdle, news). Pure and deterministic: filled in
//! by the market-intelligence work (issue 4); the engine already calls its pipeline step.
