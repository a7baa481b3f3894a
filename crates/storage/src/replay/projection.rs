//! What a measured bench run means for the whole linear universe: the event rate it must
//! sustain, the disk a day of recording takes, the share of a core the live path needs and how
//! long a recorded day takes to replay. Pure arithmetic on rates measured elsewhere
//! (`scalper bench-replay`), so it can be checked without timing anything.

use serde::Serialize;

/// Seconds in a day.
pub const DAY_S: f64 = 86_400.0;
/// Default universe input rate, events/s: ~550 linear symbols at realistic public-stream rates.
pub const DEFAULT_UNIVERSE_EVENTS_PER_S: f64 = 12_000.0;
/// Budget for a day of compressed recording, bytes (issue #14: <= 80 GB/day).
pub const TARGET_BYTES_PER_DAY: f64 = 80e9;
/// Budget for replaying one recorded universe day, seconds (issue #14: < 1 h).
pub const TARGET_REPLAY_S_PER_DAY: f64 = 3_600.0;

/// Rates measured on one bench run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Measured {
    /// Universe input rate to project to, events/s.
    pub universe_events_per_s: f64,
    /// Events recorded (run header included).
    pub recorded_events: u64,
    /// Size of the recording on disk (compressed segments), bytes.
    pub recorded_file_bytes: u64,
    /// Size of the recorded JSON lines once decompressed, bytes.
    pub recorded_line_bytes: u64,
    /// Core throughput: events / time spent inside `on_event`, events/s.
    pub core_events_per_s: f64,
    /// `scalper replay` throughput of the compressed recording, end to end (decoding on its
    /// thread, core, decision log), events/s.
    pub replay_events_per_s: f64,
    /// Decoding alone (decompress, parse, reorder; no core), events/s.
    pub decode_events_per_s: f64,
}

/// The universe projection computed from [`Measured`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Projection {
    /// The measured inputs.
    pub measured: Measured,
    /// Universe events in a day.
    pub events_per_day: f64,
    /// Compressed recording, bytes per event.
    pub bytes_per_event: f64,
    /// Decompressed JSON line, bytes per event.
    pub raw_bytes_per_event: f64,
    /// Compressed recording of a universe day, bytes.
    pub bytes_per_day: f64,
    /// The same day as plain JSON lines, bytes.
    pub raw_bytes_per_day: f64,
    /// Share of one core the core needs at the universe rate, percent (over 100: it cannot keep up).
    pub core_load_pct: f64,
    /// Wall time to replay one recorded universe day at the measured replay rate, seconds.
    pub replay_s_per_day: f64,
    /// Replay rate a day needs to replay within [`TARGET_REPLAY_S_PER_DAY`], events/s.
    pub replay_events_per_s_needed: f64,
    /// `bytes_per_day` is within [`TARGET_BYTES_PER_DAY`].
    pub bytes_ok: bool,
    /// `replay_s_per_day` is below [`TARGET_REPLAY_S_PER_DAY`].
    pub replay_ok: bool,
}

/// `a / b`, or 0 when `b` is not a positive number (nothing measured).
fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 && b.is_finite() {
        a / b
    } else {
        0.0
    }
}

/// `a / b`, or infinity when `b` is not a positive number (a rate of 0 never finishes).
fn time_at(a: f64, rate: f64) -> f64 {
    if rate > 0.0 && rate.is_finite() {
        a / rate
    } else {
        f64::INFINITY
    }
}

impl Projection {
    /// Projects `m` to a universe day.
    pub fn new(m: Measured) -> Projection {
        let events_per_day = m.universe_events_per_s.max(0.0) * DAY_S;
        let bytes_per_event = ratio(m.recorded_file_bytes as f64, m.recorded_events as f64);
        let raw_bytes_per_event = ratio(m.recorded_line_bytes as f64, m.recorded_events as f64);
        let bytes_per_day = bytes_per_event * events_per_day;
        let core_load_pct = 100.0 * time_at(m.universe_events_per_s.max(0.0), m.core_events_per_s);
        let replay_s_per_day = time_at(events_per_day, m.replay_events_per_s);
        Projection {
            measured: m,
            events_per_day,
            bytes_per_event,
            raw_bytes_per_event,
            bytes_per_day,
            raw_bytes_per_day: raw_bytes_per_event * events_per_day,
            core_load_pct,
            replay_s_per_day,
            replay_events_per_s_needed: events_per_day / TARGET_REPLAY_S_PER_DAY,
            bytes_ok: bytes_per_day <= TARGET_BYTES_PER_DAY,
            replay_ok: replay_s_per_day < TARGET_REPLAY_S_PER_DAY,
        }
    }

    /// The report's lines (no trailing newline), indented to sit under `bench-replay`'s own.
    pub fn lines(&self) -> Vec<String> {
        let m = &self.measured;
        let verdict = |ok: bool| if ok { "PASS" } else { "FAIL" };
        vec![
            format!(
                "  universe projection  {:.0} events/s -> {:.3} G events/day",
                m.universe_events_per_s,
                self.events_per_day / 1e9
            ),
            format!(
                "    recorded           {:.1} B/event zstd ({:.1} B/event as JSON lines) -> {:.1} GB/day ({:.1} GB/day uncompressed)   target <= {:.0} GB/day: {}",
                self.bytes_per_event,
                self.raw_bytes_per_event,
                self.bytes_per_day / 1e9,
                self.raw_bytes_per_day / 1e9,
                TARGET_BYTES_PER_DAY / 1e9,
                verdict(self.bytes_ok)
            ),
            format!(
                "    core load          {:.1} % of one core at {:.0} events/s (core {:.0} events/s)",
                self.core_load_pct, m.universe_events_per_s, m.core_events_per_s
            ),
            format!(
                "    replay             {:.0} events/s end to end (decoding alone {:.0} events/s) -> {:.2} h per universe day   target < {:.0} h (>= {:.0} events/s): {}",
                m.replay_events_per_s,
                m.decode_events_per_s,
                self.replay_s_per_day / 3600.0,
                TARGET_REPLAY_S_PER_DAY / 3600.0,
                self.replay_events_per_s_needed,
                verdict(self.replay_ok)
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measured() -> Measured {
        Measured {
            universe_events_per_s: 12_000.0,
            recorded_events: 200_000,
            recorded_file_bytes: 11_300_000,
            recorded_line_bytes: 69_000_000,
            core_events_per_s: 300_000.0,
            replay_events_per_s: 240_000.0,
            decode_events_per_s: 900_000.0,
        }
    }

    #[test]
    fn a_universe_day_is_projected_from_the_measured_rates() {
        let p = Projection::new(measured());
        assert_eq!(p.events_per_day, 1_036_800_000.0);
        assert!((p.bytes_per_event - 56.5).abs() < 1e-9);
        assert!((p.raw_bytes_per_event - 345.0).abs() < 1e-9);
        assert!((p.bytes_per_day - 56.5 * 1_036_800_000.0).abs() < 1.0);
        assert!((p.raw_bytes_per_day - 345.0 * 1_036_800_000.0).abs() < 1.0);
        assert!((p.core_load_pct - 4.0).abs() < 1e-9);
        assert!((p.replay_s_per_day - 4_320.0).abs() < 1e-9);
        assert!((p.replay_events_per_s_needed - 288_000.0).abs() < 1e-9);
        assert!(p.bytes_ok, "58.6 GB/day is within 80");
        assert!(!p.replay_ok, "1.2 h is not under 1 h");

        let fast = Projection::new(Measured { replay_events_per_s: 300_000.0, ..measured() });
        assert!(fast.replay_ok && (fast.replay_s_per_day - 3_456.0).abs() < 1e-9);
        let big = Projection::new(Measured { recorded_file_bytes: 20_000_000, ..measured() });
        assert!(!big.bytes_ok, "100 B/event is 103.7 GB/day");
    }

    #[test]
    fn the_universe_rate_scales_every_daily_figure() {
        let p = Projection::new(Measured { universe_events_per_s: 24_000.0, ..measured() });
        let q = Projection::new(measured());
        assert!((p.events_per_day - 2.0 * q.events_per_day).abs() < 1e-6);
        assert!((p.bytes_per_day - 2.0 * q.bytes_per_day).abs() < 1.0);
        assert!((p.core_load_pct - 2.0 * q.core_load_pct).abs() < 1e-9);
        assert!((p.replay_s_per_day - 2.0 * q.replay_s_per_day).abs() < 1e-9);
    }

    #[test]
    fn nothing_measured_gives_no_division_by_zero_and_fails_the_targets() {
        let p = Projection::new(Measured {
            recorded_events: 0,
            core_events_per_s: 0.0,
            replay_events_per_s: 0.0,
            ..measured()
        });
        assert_eq!(p.bytes_per_event, 0.0);
        assert!(p.core_load_pct.is_infinite() && p.replay_s_per_day.is_infinite());
        assert!(!p.replay_ok);
    }

    #[test]
    fn the_report_prints_every_figure() {
        let text = Projection::new(measured()).lines().join("\n");
        for want in [
            "12000 events/s -> 1.037 G events/day",
            "56.5 B/event zstd",
            "345.0 B/event as JSON lines",
            "58.6 GB/day",
            "357.7 GB/day uncompressed",
            "4.0 % of one core",
            "240000 events/s end to end",
            "decoding alone 900000 events/s",
            "1.20 h per universe day",
            ">= 288000 events/s): FAIL",
            "target <= 80 GB/day: PASS",
        ] {
            assert!(text.contains(want), "{want:?} missing from:\n{text}");
        }
        let json = serde_json::to_value(Projection::new(measured())).unwrap();
        assert_eq!(json["events_per_day"], 1_036_800_000.0);
        assert_eq!(json["measured"]["universe_events_per_s"], 12_000.0);
        assert_eq!(json["replay_ok"], false);
    }
}
