//! `bench-replay`'s tick latencies per event kind.

/// One event kind's tick latencies, µs.
#[derive(serde::Serialize)]
pub struct KindLatency {
    pub count: usize,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
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
        let n = g.len();
        let pct =
            |q: f64| if n == 0 { 0.0 } else { g[((n as f64 * q).ceil() as usize).clamp(1, n) - 1] as f64 / 1000.0 };
        out.insert(*label, KindLatency { count: n, p50: pct(0.5), p99: pct(0.99), max: pct(1.0) });
    }
    out
}
