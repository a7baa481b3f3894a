//! Numbers, times and tables for people (`scalperctl` tables, `events`, `top`).
//!
//! Rules: prices at the symbol's tick size and quantities at its step (rounded to the nearest
//! multiple, written with exactly the decimals the increment needs); money (USDT) with 2 decimals;
//! R multiples with 2 and a sign; scores with 1; basis points with 1; fractions as percentages.
//! A value that rounds to zero never shows a minus sign; a non-finite value shows as `-`. All pure.

use chrono::{DateTime, Utc};

/// Most decimals derived from a tick or step; a finer increment is shown at this precision.
const MAX_DECIMALS: usize = 10;

/// Decimals needed to write every multiple of `step` exactly: 0.5 → 1, 0.0001 → 4, 1e-8 → 8,
/// 10 → 0. `None` when `step` is not positive and finite (unknown increment).
pub fn step_decimals(step: f64) -> Option<usize> {
    if !(step.is_finite() && step > 0.0) {
        return None;
    }
    for d in 0..=MAX_DECIMALS {
        let scaled = step * 10f64.powi(d as i32);
        // Relative tolerance: 1e-8 * 10^8 is 1.0000000000000002 in binary floating point.
        if scaled.round() >= 1.0 && (scaled - scaled.round()).abs() <= 1e-6 * scaled {
            return Some(d);
        }
    }
    Some(MAX_DECIMALS)
}

/// `v` with `decimals` decimals; `-0.00` becomes `0.00`, NaN and infinities become `-`.
pub fn fixed(v: f64, decimals: usize) -> String {
    if !v.is_finite() {
        return "-".into();
    }
    let s = format!("{v:.decimals$}");
    match s.strip_prefix('-') {
        Some(rest) if rest.chars().all(|c| c == '0' || c == '.') => rest.to_string(),
        _ => s,
    }
}

/// Like [`fixed`] with an explicit `+` on positive values (PnL, R): the sign is the news.
pub fn signed(v: f64, decimals: usize) -> String {
    let s = fixed(v, decimals);
    if v > 0.0 && s != "-" && s.chars().any(|c| c.is_ascii_digit() && c != '0') {
        format!("+{s}")
    } else {
        s
    }
}

/// `v` rounded to the nearest multiple of `step` and written with the step's decimals; with an
/// unknown step (0, negative, NaN) the value is written by [`plain`].
pub fn at_step(v: f64, step: f64) -> String {
    match step_decimals(step) {
        Some(d) if v.is_finite() => fixed((v / step).round() * step, d),
        _ => plain(v),
    }
}

/// A price at the symbol's tick size (see [`at_step`]).
pub fn price(v: f64, tick: f64) -> String {
    at_step(v, tick)
}

/// A quantity (base coin) at the symbol's quantity step (see [`at_step`]).
pub fn qty(v: f64, step: f64) -> String {
    at_step(v, step)
}

/// Money in USDT: 2 decimals.
pub fn money(v: f64) -> String {
    fixed(v, 2)
}

/// PnL in USDT: 2 decimals and a sign.
pub fn pnl(v: f64) -> String {
    signed(v, 2)
}

/// An R multiple (PnL over the initial risk): 2 decimals and a sign.
pub fn r_multiple(v: f64) -> String {
    signed(v, 2)
}

/// A score (0–100): 1 decimal.
pub fn score(v: f64) -> String {
    fixed(v, 1)
}

/// Basis points: 1 decimal.
pub fn bps(v: f64) -> String {
    fixed(v, 1)
}

/// A fraction (0.012) as a percentage (`1.20%`) with `decimals` decimals.
pub fn pct(fraction: f64, decimals: usize) -> String {
    let s = fixed(fraction * 100.0, decimals);
    if s == "-" {
        s
    } else {
        format!("{s}%")
    }
}

/// A large amount in short form: `1.23B`, `456.70M`, `12.35K`, below 1000 with 2 decimals.
pub fn compact(v: f64) -> String {
    let a = v.abs();
    for (unit, div) in [("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)] {
        if a >= div {
            return format!("{}{unit}", fixed(v / div, 2));
        }
    }
    fixed(v, 2)
}

/// A number of unknown kind: 2 decimals from 1000 up, else up to 8 with trailing zeros dropped.
pub fn plain(v: f64) -> String {
    if !v.is_finite() {
        return "-".into();
    }
    if v.abs() >= 1000.0 {
        return fixed(v, 2);
    }
    let s = fixed(v, 8);
    let s = if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s };
    if s == "-0" || s.is_empty() {
        "0".into()
    } else {
        s
    }
}

/// A UTC time: `HH:MM:SS.mmm` on the same UTC day as `now_ms`, else with the date in front;
/// `-` for 0 or negative (never).
pub fn time(ms: i64, now_ms: i64) -> String {
    if ms <= 0 {
        return "-".into();
    }
    let Some(t) = DateTime::<Utc>::from_timestamp_millis(ms) else { return ms.to_string() };
    let same_day = DateTime::<Utc>::from_timestamp_millis(now_ms).is_some_and(|n| n.date_naive() == t.date_naive());
    if same_day {
        t.format("%H:%M:%S%.3f").to_string()
    } else {
        t.format("%Y-%m-%d %H:%M:%S%.3f").to_string()
    }
}

/// A UTC time with its date always: `YYYY-MM-DD HH:MM:SS.mmm`; `-` for 0 or negative.
pub fn datetime(ms: i64) -> String {
    time(ms, i64::MIN)
}

/// Terminal cells a string takes: characters, with the wide (emoji) ones counted twice.
pub fn width(s: &str) -> usize {
    s.chars()
        .map(|c| match c as u32 {
            0xFE00..=0xFE0F | 0x200D => 0,
            0x1F000..=0x1FAFF | 0x2600..=0x27BF | 0x2B00..=0x2BFF => 2,
            _ => 1,
        })
        .sum()
}

/// Rows under headers, columns separated by two spaces; the first column left-aligned, the
/// others right-aligned; one line each (no trailing spaces), ending with a newline.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut w: Vec<usize> = headers.iter().map(|h| width(h)).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if let Some(x) = w.get_mut(i) {
                *x = (*x).max(width(c));
            }
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[String]| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate().take(w.len()) {
            let pad = " ".repeat(w[i].saturating_sub(width(c)));
            if i > 0 {
                l.push_str("  ");
            }
            if i == 0 {
                l.push_str(c);
                l.push_str(&pad);
            } else {
                l.push_str(&pad);
                l.push_str(c);
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&headers.iter().map(|h| h.to_string()).collect::<Vec<_>>());
    for r in rows {
        line(r);
    }
    out
}

/// `key  value` lines with the keys padded to the longest, ending with a newline.
pub fn kv(rows: &[(&str, String)]) -> String {
    let w = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    rows.iter().map(|(k, v)| format!("{k:<w$}  {v}\n")).collect()
}

/// A news flag in one line: `SYMBOL TYPE impact 0.80 until 16:05:48.038`.
pub fn news_flag(n: &super::view::NewsFlagView, now_ms: i64) -> String {
    format!("{} {} impact {} until {}", n.symbol, n.news_type, fixed(n.impact, 2), time(n.expires_ms, now_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_decimals_follow_the_increment() {
        assert_eq!(step_decimals(0.5), Some(1));
        assert_eq!(step_decimals(0.0001), Some(4));
        assert_eq!(step_decimals(1e-8), Some(8));
        assert_eq!(step_decimals(10.0), Some(0));
        assert_eq!(step_decimals(1.0), Some(0));
        assert_eq!(step_decimals(0.001), Some(3));
        assert_eq!(step_decimals(0.025), Some(3));
        assert_eq!(step_decimals(0.0), None);
        assert_eq!(step_decimals(-0.1), None);
        assert_eq!(step_decimals(f64::NAN), None);
    }

    #[test]
    fn prices_round_to_the_tick() {
        assert_eq!(price(65_000.37, 0.5), "65000.5");
        assert_eq!(price(65_000.2, 0.5), "65000.0");
        assert_eq!(price(0.123456, 0.0001), "0.1235");
        assert_eq!(price(0.00001234567, 1e-8), "0.00001235");
        assert_eq!(price(65_004.9, 10.0), "65000");
        assert_eq!(price(65_005.1, 10.0), "65010");
        assert_eq!(price(-3.456, 0.01), "-3.46");
        assert_eq!(price(-0.00004, 0.0001), "0.0000", "no minus on a value that rounds to zero");
        // A float that is a hair off its tick still lands on it.
        assert_eq!(price(0.1 + 0.2, 0.1), "0.3");
        // Unknown tick: a plain number.
        assert_eq!(price(0.0123, 0.0), "0.0123");
        assert_eq!(price(65_000.5, f64::NAN), "65000.50");
    }

    #[test]
    fn quantities_round_to_the_step() {
        assert_eq!(qty(0.0126, 0.001), "0.013");
        assert_eq!(qty(12.0, 1.0), "12");
        assert_eq!(qty(1234.0, 10.0), "1230");
        assert_eq!(qty(-0.5, 0.1), "-0.5");
    }

    #[test]
    fn money_r_score_bps_and_percent() {
        assert_eq!(money(-15.483), "-15.48");
        assert_eq!(money(10_000.0), "10000.00");
        assert_eq!(money(0.005), "0.01");
        assert_eq!(money(-0.004), "0.00");
        assert_eq!(pnl(12.345), "+12.35");
        assert_eq!(pnl(-15.483), "-15.48");
        assert_eq!(pnl(0.0), "0.00");
        assert_eq!(pnl(0.001), "0.00", "no plus on a value that rounds to zero");
        assert_eq!(r_multiple(0.59354598), "+0.59");
        assert_eq!(r_multiple(-1.0), "-1.00");
        assert_eq!(score(80.58484004), "80.6");
        assert_eq!(score(-3.25), "-3.2");
        assert_eq!(bps(1.8487136), "1.8");
        assert_eq!(bps(-0.04), "0.0");
        assert_eq!(pct(0.012, 2), "1.20%");
        assert_eq!(pct(-0.0001, 4), "-0.0100%");
        assert_eq!(pct(0.03, 1), "3.0%");
        assert_eq!(money(f64::NAN), "-");
        assert_eq!(pct(f64::INFINITY, 2), "-");
    }

    #[test]
    fn compact_and_plain() {
        assert_eq!(compact(1.234e9), "1.23B");
        assert_eq!(compact(4.567e8), "456.70M");
        assert_eq!(compact(-12_345.0), "-12.35K");
        assert_eq!(compact(999.5), "999.50");
        assert_eq!(plain(0.59354598), "0.59354598");
        assert_eq!(plain(1.5), "1.5");
        assert_eq!(plain(0.0), "0");
        assert_eq!(plain(-0.000000001), "0");
        assert_eq!(plain(12_345.678), "12345.68");
    }

    #[test]
    fn times_drop_the_date_on_the_same_day() {
        let t = 1_700_000_123_456; // 2023-11-14 22:15:23.456 UTC
        assert_eq!(time(t, t + 60_000), "22:15:23.456");
        assert_eq!(time(t, t + 86_400_000), "2023-11-14 22:15:23.456");
        assert_eq!(datetime(t), "2023-11-14 22:15:23.456");
        assert_eq!(time(0, t), "-");
    }

    #[test]
    fn tables_align_and_count_wide_characters() {
        let t = table(&["SYM", "PRICE"], &[vec!["BTCUSDT".into(), "65000.5".into()], vec!["X".into(), "1".into()]]);
        assert_eq!(t, "SYM        PRICE\nBTCUSDT  65000.5\nX              1\n");
        assert_eq!(width("🔥 x"), 4);
        assert_eq!(kv(&[("a", "1".into()), ("long", "2".into())]), "a     1\nlong  2\n");
    }
}
