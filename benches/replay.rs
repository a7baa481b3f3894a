//! Replay throughput (placeholder, filled below).
fn main() {}
