//! `bench-replay`'s tick latencies per event kind.

/// One event kind's tick latencies, µs.
#[derive(serde::Serialize)]
pub struct KindLatency {
    pub count: usize,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

/// The `q` quantile (0–1) of latencies in ns, sorted ascending, in µs (0 when empty): the
/// nearest-rank value, so `q = 1` is the maximum.
pub fn quantile_us(sorted: &[u32], q: f64) -> f64 {
    let n = sorted.len();
    if n == 0 {
        0.0
    } else {
        sorted[((n as f64 * q).ceil() as usize).clamp(1, n) - 1] as f64 / 1000.0
    }
}

/// Latencies (ns, `lat`) grouped by event kind (`kind_of`, indices into `kinds`).
pub fn kind_latencies(
    kinds: &[&'static str],
    kind_of: &[u8],
    lat: &[u32],
) -> std::collections::BTreeMap<&'static str, KindLatency> {
    let mut groups: Vec<Vec<u32>> = vec![Vec::new(); kinds.len()];
    for (k, l) in kind_of.iter().zip(lat) {
        groups[*k as usize].push(*l);
    }
    let mut out = std::collections::BTreeMap::new();
    for (label, mut g) in kinds.iter().zip(groups) {
        g.sort_unstable();
        let pct = |q: f64| quantile_us(&g, q);
        out.insert(*label, KindLatency { count: g.len(), p50: pct(0.5), p99: pct(0.99), max: pct(1.0) });
    }
    out
}
