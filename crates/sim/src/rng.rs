//! Seeded sampling helpers on top of `SmallRng` (no external distribution crate).

use rand::rngs::SmallRng;
use rand::Rng;

/// SplitMix64 finaliser: a good 64-bit mix.
pub(crate) fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Independent seed for stream `idx` of a run seeded with `seed`.
pub(crate) fn mix_seed(seed: u64, idx: u64) -> u64 {
    splitmix(seed ^ splitmix(idx.wrapping_add(1)))
}

/// Uniform in (0, 1].
fn open_unit(rng: &mut SmallRng) -> f64 {
    1.0 - rng.random::<f64>()
}

/// Standard normal (Box-Muller).
pub(crate) fn normal(rng: &mut SmallRng) -> f64 {
    let u1 = open_unit(rng);
    let u2 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Log-normal with the given median and log-sigma.
pub(crate) fn lognormal(rng: &mut SmallRng, median: f64, sigma: f64) -> f64 {
    median * (sigma * normal(rng)).exp()
}

/// Log-uniform in [lo, hi).
pub(crate) fn log_uniform(rng: &mut SmallRng, lo: f64, hi: f64) -> f64 {
    (lo.ln() + (hi.ln() - lo.ln()) * rng.random::<f64>()).exp()
}

/// Poisson count with mean `lambda` (normal approximation above 30).
pub(crate) fn poisson(rng: &mut SmallRng, lambda: f64) -> u32 {
    if lambda.is_nan() || lambda <= 0.0 {
        return 0;
    }
    if lambda > 30.0 {
        let x = lambda + lambda.sqrt() * normal(rng);
        return x.round().clamp(0.0, 10_000.0) as u32;
    }
    let l = (-lambda).exp();
    let mut k = 0u32;
    let mut p = 1.0;
    loop {
        p *= rng.random::<f64>();
        if p <= l {
            return k;
        }
        k += 1;
    }
}

/// Number of failures before the first success of a Bernoulli(p) (p in (0, 1]).
pub(crate) fn geometric(rng: &mut SmallRng, p: f64) -> u32 {
    let p = p.clamp(1e-6, 1.0);
    if p >= 1.0 {
        return 0;
    }
    let u = open_unit(rng);
    (u.ln() / (1.0 - p).ln()).floor().min(1_000_000.0) as u32
}

/// A random UUID-shaped hex id (Bybit's linear trade id format).
pub(crate) fn uuid_like(rng: &mut SmallRng) -> String {
    let a: u64 = rng.random();
    let b: u64 = rng.random();
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        (a >> 32) as u32,
        (a >> 16) as u16,
        a as u16,
        (b >> 48) as u16,
        b & 0xFFFF_FFFF_FFFF
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn samplers_have_sane_moments() {
        let mut r = SmallRng::seed_from_u64(3);
        let n = 20_000;
        let m: f64 = (0..n).map(|_| normal(&mut r)).sum::<f64>() / n as f64;
        assert!(m.abs() < 0.05);
        let pm: f64 = (0..n).map(|_| poisson(&mut r, 2.5) as f64).sum::<f64>() / n as f64;
        assert!((pm - 2.5).abs() < 0.1);
        let gm: f64 = (0..n).map(|_| geometric(&mut r, 0.5) as f64).sum::<f64>() / n as f64;
        assert!((gm - 1.0).abs() < 0.1);
        assert_eq!(poisson(&mut r, 0.0), 0);
        let id = uuid_like(&mut r);
        assert_eq!(id.len(), 36);
        assert_ne!(mix_seed(1, 0), mix_seed(1, 1));
    }
}
