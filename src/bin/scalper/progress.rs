//! Progress of the long offline tools on stderr: an indicatif bar with rate and ETA on a
//! terminal, plain periodic lines (`done/total, rate, ETA`) otherwise, and one closing line in
//! both cases. The work loop only stores a counter ([`Meter::set`] or the shared [`Meter::counter`], atomics);
//! a reporter thread reads it, so the loop pays no lock or I/O for progress.
//! stdout is never touched: the tools' results there stay as they were.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a meter counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Bytes, shown as kB / MB / GB (powers of 1000).
    Bytes,
    /// Countable things, shown as integers with this name ("events", "trials").
    Items(&'static str),
}

/// Time between two plain lines when stderr is not a terminal (unless
/// `SCALPER_PROGRESS_INTERVAL_MS` says otherwise).
pub const PLAIN_EVERY: Duration = Duration::from_secs(5);
/// Env var: milliseconds between two plain progress lines (a positive integer).
pub const INTERVAL_ENV: &str = "SCALPER_PROGRESS_INTERVAL_MS";

/// The plain-line period: [`INTERVAL_ENV`] when it is a positive integer, else [`PLAIN_EVERY`].
fn plain_every() -> Duration {
    std::env::var(INTERVAL_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|&ms| ms > 0)
        .map(Duration::from_millis)
        .unwrap_or(PLAIN_EVERY)
}
/// How often the bar is refreshed on a terminal.
const BAR_EVERY: Duration = Duration::from_millis(100);

/// A progress display for one phase of work; [`Meter::finish`] prints the closing line.
pub struct Meter {
    done: Arc<AtomicU64>,
    label: String,
    unit: Unit,
    started: Instant,
    stop: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    bar: Option<ProgressBar>,
}

impl Meter {
    /// Starts a meter for `total` units (`None`: unknown, no percentage or ETA); a bar on a
    /// terminal, plain lines every [`PLAIN_EVERY`] (or [`INTERVAL_ENV`]) otherwise.
    pub fn start(label: &str, unit: Unit, total: Option<u64>) -> Meter {
        let tty = std::io::stderr().is_terminal();
        Meter::start_with(label, unit, total, tty, plain_every())
    }

    fn start_with(label: &str, unit: Unit, total: Option<u64>, tty: bool, every: Duration) -> Meter {
        let done = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        let (tx, rx) = mpsc::channel::<()>();
        let bar = tty.then(|| new_bar(label, unit, total));
        let thread = {
            let done = done.clone();
            let bar = bar.clone();
            let label = label.to_string();
            std::thread::Builder::new()
                .name("progress".into())
                .spawn(move || {
                    let wait = if bar.is_some() { BAR_EVERY } else { every };
                    // Wakes on the period, ends when the meter is finished (or dropped).
                    while let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(wait) {
                        let n = done.load(Ordering::Relaxed);
                        match &bar {
                            Some(b) => b.set_position(n),
                            None => eprintln!("{}", plain_line(&label, unit, n, total, started.elapsed())),
                        }
                    }
                })
                .ok()
        };
        Meter { done, label: label.to_string(), unit, started, stop: Some(tx), thread, bar }
    }

    /// Sets the units done so far.
    pub fn set(&self, n: u64) {
        self.done.store(n, Ordering::Relaxed);
    }

    /// The shared counter (for library code that counts by itself).
    pub fn counter(&self) -> Arc<AtomicU64> {
        self.done.clone()
    }

    fn stop(&mut self) {
        self.stop.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }

    /// Stops the display and prints the closing line (units done, time, rate).
    pub fn finish(mut self) {
        self.stop();
        eprintln!("{}", done_line(&self.label, self.unit, self.done.load(Ordering::Relaxed), self.started.elapsed()));
    }
}

impl Drop for Meter {
    fn drop(&mut self) {
        // An early return (an error) ends the display without a closing line.
        self.stop();
    }
}

fn new_bar(label: &str, unit: Unit, total: Option<u64>) -> ProgressBar {
    let bar = match total {
        Some(t) => ProgressBar::with_draw_target(Some(t), ProgressDrawTarget::stderr()),
        None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
    };
    let counts = match (unit, total) {
        (Unit::Bytes, Some(_)) => "{bytes}/{total_bytes} ({bytes_per_sec}, ETA {eta})".to_string(),
        (Unit::Bytes, None) => "{bytes} ({bytes_per_sec})".to_string(),
        (Unit::Items(name), Some(_)) => format!("{{human_pos}}/{{human_len}} {name} ({{rate}} {name}/s, ETA {{eta}})"),
        (Unit::Items(name), None) => format!("{{human_pos}} {name} ({{rate}} {name}/s)"),
    };
    let template = match total {
        Some(_) => format!("{{prefix}} [{{elapsed_precise}}] {{wide_bar}} {counts}"),
        None => format!("{{prefix}} {{spinner}} [{{elapsed_precise}}] {counts}"),
    };
    if let Ok(style) = ProgressStyle::with_template(&template) {
        // A whole number per second (indicatif's `{per_sec}` prints four decimals).
        bar.set_style(style.with_key("rate", |s: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = write!(w, "{:.0}", s.per_sec());
        }));
    }
    bar.set_prefix(label.to_string());
    bar
}

/// `n` in `unit`, for humans.
pub fn amount(unit: Unit, n: u64) -> String {
    match unit {
        Unit::Bytes => bytes(n as f64),
        Unit::Items(name) => format!("{n} {name}"),
    }
}

fn bytes(b: f64) -> String {
    if b >= 1e9 {
        format!("{:.2} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.1} kB", b / 1e3)
    } else {
        format!("{b:.0} B")
    }
}

/// A rate in `unit` per second.
fn rate(unit: Unit, per_s: f64) -> String {
    match unit {
        Unit::Bytes => format!("{}/s", bytes(per_s)),
        Unit::Items(name) => format!("{per_s:.0} {name}/s"),
    }
}

/// A duration as `1h02m`, `3m05s` or `42s`.
pub fn duration(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

/// The periodic line: `label: done/total (pct), rate, ETA t`; without a total `label: done, rate`.
/// Rate is the average since the start; ETA is what is left at that rate ("ETA ?" before any
/// progress).
pub fn plain_line(label: &str, unit: Unit, done: u64, total: Option<u64>, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64();
    let per_s = if secs > 0.0 { done as f64 / secs } else { 0.0 };
    match total {
        Some(t) => {
            let pct = if t > 0 { (done.min(t) as f64 * 100.0) / t as f64 } else { 100.0 };
            let eta = if done >= t {
                "0s".to_string()
            } else if per_s > 0.0 {
                duration(Duration::from_secs_f64(((t - done) as f64 / per_s).min(1e9)))
            } else {
                "?".to_string()
            };
            let of = match unit {
                Unit::Bytes => format!("{} / {}", bytes(done as f64), bytes(t as f64)),
                Unit::Items(name) => format!("{done}/{t} {name}"),
            };
            format!("{label}: {of} ({pct:.1}%), {}, ETA {eta}", rate(unit, per_s))
        }
        None => format!("{label}: {}, {}", amount(unit, done), rate(unit, per_s)),
    }
}

/// The closing line: `label: done, N units in t (rate)`.
pub fn done_line(label: &str, unit: Unit, done: u64, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64();
    let per_s = if secs > 0.0 { done as f64 / secs } else { 0.0 };
    format!("{label}: done, {} in {:.1}s ({})", amount(unit, done), secs, rate(unit, per_s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_line_computes_rate_and_eta() {
        // 30 MB of 120 MB in 10 s: 3 MB/s, 90 MB left → 30 s.
        let l = plain_line("replay", Unit::Bytes, 30_000_000, Some(120_000_000), Duration::from_secs(10));
        assert_eq!(l, "replay: 30.0 MB / 120.0 MB (25.0%), 3.0 MB/s, ETA 30s");
        // 2 500 of 10 000 events in 50 s: 50/s, 7 500 left → 150 s = 2m30s.
        let l = plain_line("evaluate", Unit::Items("events"), 2_500, Some(10_000), Duration::from_secs(50));
        assert_eq!(l, "evaluate: 2500/10000 events (25.0%), 50 events/s, ETA 2m30s");
        // Hours.
        let l = plain_line("import", Unit::Items("trials"), 1, Some(3_601), Duration::from_secs(1));
        assert!(l.ends_with("ETA 1h00m"), "{l}");
        // Nothing done yet: no rate, unknown ETA (never a division by zero).
        let l = plain_line("backtest", Unit::Bytes, 0, Some(1_000), Duration::ZERO);
        assert_eq!(l, "backtest: 0 B / 1.0 kB (0.0%), 0 B/s, ETA ?");
        // Finished: 100 %, ETA 0.
        let l = plain_line("x", Unit::Items("events"), 10, Some(10), Duration::from_secs(2));
        assert_eq!(l, "x: 10/10 events (100.0%), 5 events/s, ETA 0s");
        // Unknown total: count and rate only.
        let l = plain_line("bench", Unit::Items("events"), 900, None, Duration::from_secs(3));
        assert_eq!(l, "bench: 900 events, 300 events/s");
    }

    #[test]
    fn done_line_and_units() {
        assert_eq!(
            done_line("import", Unit::Bytes, 2_500_000_000, Duration::from_secs(10)),
            "import: done, 2.50 GB in 10.0s (250.0 MB/s)"
        );
        assert_eq!(duration(Duration::from_secs(185)), "3m05s");
        assert_eq!(amount(Unit::Bytes, 999), "999 B");
    }

    #[test]
    fn plain_meter_reports_the_counter_periodically() {
        // Not a terminal, a short period: the reporter thread prints from the shared counter.
        let m = Meter::start_with("t", Unit::Items("events"), Some(100), false, Duration::from_millis(5));
        m.counter().fetch_add(40, Ordering::Relaxed);
        m.set(42);
        assert_eq!(m.counter().load(Ordering::Relaxed), 42);
        m.finish();
    }
}
