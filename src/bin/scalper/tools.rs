//! Offline subcommands of `scalper`: replay, backtest, import, bench-replay, record-fixture.

use super::ReplaySource;
use scalper::config::paths::Paths;
use scalper::config::Config;
use scalper::config::ConfigFile;
use scalper::connectors::clock::MonotonicClock;
use scalper::engine::clock::{Clock, FrozenClock};
use scalper::engine::core::CorePipeline;
use scalper::engine::event::Event;
use scalper::engine::runtime::event_label;
use scalper::engine::synthetic::{TradingMarket, UniverseStream, EPOCH_MS};
use scalper::engine::Engine;
use scalper::storage::recorder::Recorder;
use scalper::storage::replay::backtest::BacktestCollector;
use scalper::storage::replay::report_html;
use scalper::storage::replay::{
    self, import, parallel, projection, DecisionLog, Pace, Period, RecordingReader, RecordingWriter, ReplayItem,
    ReplayOptions, ReplaySummary,
};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use super::progress::{Meter, Unit};

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::FAILURE
}

fn data_dir(src: &ReplaySource) -> PathBuf {
    if let Some(d) = &src.data_dir {
        return d.clone();
    }
    let root = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let env = std::env::var_os("SCALPER_DATA_DIR").map(PathBuf::from);
    Paths::resolve(&root, None, env.as_deref()).data_dir().to_path_buf()
}

fn options(src: &ReplaySource, pace: Pace) -> Result<ReplayOptions, String> {
    let period = Period::parse(src.from.as_deref(), src.to.as_deref()).map_err(|e| e.to_string())?;
    let config = match &src.config {
        Some(p) => Some(Arc::new(Config::load(Some(p)).map_err(|e| format!("{}: {e}", p.display()))?)),
        None => None,
    };
    Ok(ReplayOptions { period, config, pace })
}

fn time_str(ms: Option<i64>) -> String {
    ms.and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_else(|| "-".into())
}

fn print_summary(s: &ReplaySummary) {
    let r = &s.reader;
    eprintln!(
        "replayed {} events in {} run(s) ({} .. {}): {} outputs; gaps {}, bad lines {}, duplicates {}, late {}; config {:?}",
        s.events,
        r.runs,
        time_str(s.first_ms),
        time_str(s.last_ms),
        s.outputs,
        r.gaps,
        r.bad_lines,
        r.duplicates,
        r.late,
        s.configs
    );
}

pub fn replay(src: &ReplaySource, speed: Option<f64>, out: &Path, accept_gaps: bool, jobs: usize) -> ExitCode {
    let pace = match speed {
        Some(s) if !(s > 0.0 && s.is_finite()) => return fail("--speed must be a positive number"),
        Some(s) => Pace::Speed(s),
        None => Pace::Max,
    };
    let opts = match options(src, pace) {
        Ok(o) => o,
        Err(e) => return fail(e),
    };
    if jobs > 1 && speed.is_some() {
        return fail("--jobs replays runs side by side: it cannot be paced with --speed");
    }
    // List the recording first: no empty decision log is left behind when there is none.
    let files = match replay::recording_files(&Paths::with_data_dir(data_dir(src))) {
        Ok(f) => f,
        Err(e) => return fail(e),
    };
    let file = match std::fs::File::create(out) {
        Ok(f) => f,
        Err(e) => return fail(format!("{}: {e}", out.display())),
    };
    let mut log = DecisionLog::new(BufWriter::with_capacity(1 << 20, file));
    let meter = Meter::start("replay", Unit::Bytes, Some(files_bytes(&files)));
    let counter = meter.counter();
    let res = parallel::replay_jobs(files, &opts, jobs, &mut log, || (), Some(&counter));
    let summary = match res {
        Ok((s, _)) => s,
        Err(e) => return fail(e),
    };
    meter.finish();
    if let Err(e) = log.finish() {
        return fail(format!("{}: {e}", out.display()));
    }
    print_summary(&summary);
    let _ = writeln!(std::io::stdout().lock(), "{}  {}", summary.sha256, out.display());
    let r = &summary.reader;
    if r.has_gaps() && !accept_gaps {
        eprintln!(
            "error: the recording has gaps ({} missing events, {} unreadable lines, {} late events): this replay is \
             not the recorded run; pass --accept-gaps to accept it",
            r.gaps, r.bad_lines, r.late
        );
        return ExitCode::from(3);
    }
    ExitCode::SUCCESS
}

pub fn backtest(
    src: &ReplaySource,
    report: &Path,
    html: Option<&Path>,
    decisions: Option<&Path>,
    jobs: usize,
) -> ExitCode {
    let opts = match options(src, Pace::Max) {
        Ok(o) => o,
        Err(e) => return fail(e),
    };
    let files = match replay::recording_files(&Paths::with_data_dir(data_dir(src))) {
        Ok(f) => f,
        Err(e) => return fail(e),
    };
    let sink: Box<dyn Write> = match decisions {
        Some(p) => match std::fs::File::create(p) {
            Ok(f) => Box::new(BufWriter::with_capacity(1 << 20, f)),
            Err(e) => return fail(format!("{}: {e}", p.display())),
        },
        None => Box::new(std::io::sink()),
    };
    let mut log = DecisionLog::new(sink);
    let meter = Meter::start("backtest", Unit::Bytes, Some(files_bytes(&files)));
    let counter = meter.counter();
    let res = parallel::replay_jobs(files, &opts, jobs, &mut log, BacktestCollector::new, Some(&counter));
    let (summary, parts) = match res {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let mut collector = BacktestCollector::new();
    for p in parts {
        collector.merge(p);
    }
    meter.finish();
    if let Err(e) = log.finish() {
        return fail(format!("decision log: {e}"));
    }
    print_summary(&summary);
    let rep = collector.report(Config::default().risk.starting_equity);
    let doc = serde_json::json!({ "report": rep, "replay": summary, "trades": collector.trades() });
    let text = match serde_json::to_string_pretty(&doc) {
        Ok(t) => t,
        Err(e) => return fail(e),
    };
    if let Err(e) = std::fs::write(report, text + "\n") {
        return fail(format!("{}: {e}", report.display()));
    }
    if let Some(p) = html {
        let page = report_html::render(&rep, collector.trades(), &html_context(&summary));
        if let Err(e) = std::fs::write(p, page) {
            return fail(format!("{}: {e}", p.display()));
        }
    }
    // Written without panicking when stdout is a closed pipe (`| head`).
    let mut o = std::io::stdout().lock();
    let _ = write!(o, "{}", rep.table());
    if let Some(p) = html {
        let _ = writeln!(o, "\nhtml report: {}", p.display());
    }
    // Last, as scripts read it: the decision log's hash.
    let _ = writeln!(o, "\nreport: {}   decisions sha256: {}", report.display(), summary.sha256);
    ExitCode::SUCCESS
}

/// Bytes of the recording's files (the progress meter's total).
fn files_bytes(files: &[(PathBuf, i64)]) -> u64 {
    files.iter().filter_map(|(p, _)| std::fs::metadata(p).ok()).map(|m| m.len()).sum()
}

/// The HTML report's default path: the JSON report's with `.html` (appended when that is the
/// JSON report's own extension, so the two never overwrite each other).
pub fn html_path(report: &Path) -> PathBuf {
    let p = report.with_extension("html");
    if p == report {
        PathBuf::from(format!("{}.html", report.display()))
    } else {
        p
    }
}

/// The replay facts shown under the HTML report's summary.
fn html_context(s: &ReplaySummary) -> Vec<(String, String)> {
    let r = &s.reader;
    vec![
        ("Replayed period (UTC)".into(), format!("{} .. {}", time_str(s.first_ms), time_str(s.last_ms))),
        ("Events / runs".into(), format!("{} / {}", s.events, r.runs)),
        ("Gaps / bad lines / late events".into(), format!("{} / {} / {}", r.gaps, r.bad_lines, r.late)),
        ("Decision log SHA-256".into(), s.sha256.clone()),
    ]
}

pub fn import(trades: Option<&Path>, orderbook: Option<&Path>, out: &Path) -> ExitCode {
    let refresh = Config::default().universe.refresh_s;
    let meter = Meter::start("import", Unit::Bytes, Some(dump_bytes(trades, orderbook) * import::PASSES));
    let res = import::import_bybit_counted(trades, orderbook, out, refresh, Some(&meter.counter()));
    if res.is_ok() {
        meter.finish();
    }
    match res {
        Ok(s) => {
            println!(
                "imported {} events ({} trades in {} batches, {} book updates, {} other, {} timers; {} frames skipped) \
                 from {} to {} into {}",
                s.events,
                s.trades,
                s.trade_batches,
                s.book_updates,
                s.other_market,
                s.timers,
                s.skipped_frames,
                time_str(s.first_ms),
                time_str(s.last_ms),
                out.display()
            );
            for i in &s.instruments {
                println!("  {}: tick {} qty step {}", i.symbol, i.tick_size, i.qty_step);
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

/// Size of the given dump files, bytes (a missing one counts 0: the import reports it).
fn dump_bytes(trades: Option<&Path>, orderbook: Option<&Path>) -> u64 {
    [trades, orderbook].into_iter().flatten().filter_map(|p| std::fs::metadata(p).ok()).map(|m| m.len()).sum()
}

/// Peak resident set size in bytes (`VmHWM`; Linux only).
fn peak_rss_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// What `scalper bench-replay` runs (its command-line arguments).
#[derive(clap::Args, Debug)]
pub struct BenchOptions {
    /// Symbols in the universe.
    #[arg(long, default_value_t = 500)]
    pub symbols: usize,
    /// Market events after the set-up.
    #[arg(long, default_value_t = 200_000)]
    pub events: u64,
    /// Market events per millisecond of stream time (25 ≈ 500 symbols at orderbook.50 cadence).
    #[arg(long, default_value_t = 25)]
    pub events_per_ms: u64,
    /// Seed of the stream.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Universe input rate the projection scales the measured rates to, events/s.
    #[arg(long, default_value_t = scalper::storage::replay::projection::DEFAULT_UNIVERSE_EVENTS_PER_S)]
    pub universe_events_per_s: f64,
    /// Also write the figures (latencies, rates, universe projection) as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Decode the whole recording before the timed replay instead of on a second thread
    /// during it: the tick latencies without the decoding thread's load on the machine (for
    /// comparing two builds on a small VM). The workload and outputs are the same.
    #[arg(long)]
    pub decode_first: bool,
    /// Run the core with `engine.prefetch` on (software prefetch of each event's symbol
    /// state and of the next two events'; off by default): the same decisions, for
    /// measuring whether it pays on this host.
    #[arg(long)]
    pub prefetch: bool,
    /// MiB of heap to write before the timed replay, as `engine.prefault_mib` does at the
    /// engine's start-up (0: none; default: that setting's default), and like it only where
    /// the heap keeps it (`engine.huge_pages` in effect).
    #[arg(long, value_parser = clap::value_parser!(u64).range(0..=16_384))]
    pub prefault_mib: Option<u64>,
}

pub fn bench_replay(opts: &BenchOptions) -> ExitCode {
    let dir = std::env::temp_dir().join(format!("scalper-bench-replay-{}", std::process::id()));
    let res = bench_replay_in(&dir, opts);
    let _ = std::fs::remove_dir_all(&dir);
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

/// Bytes as MiB, for the report.
fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// The JSON form of the bench-replay report (`--json`).
#[derive(serde::Serialize)]
struct BenchJson {
    symbols: usize,
    events: usize,
    events_per_ms: u64,
    seed: u64,
    /// The recording was decoded before the timed replay (`--decode-first`), not beside it.
    decode_first: bool,
    /// The core ran with `engine.prefetch` on (`--prefetch`).
    prefetch: bool,
    wall_events_per_s: f64,
    core_events_per_s: f64,
    latency_us: BenchLatency,
    worst_kind: &'static str,
    /// Tick latency per event kind (`book`, `trades`, `timer`, …), µs.
    by_kind: std::collections::BTreeMap<&'static str, crate::latency::KindLatency>,
    peak_rss_bytes: Option<u64>,
    /// `default` or the `GLIBC_TUNABLES` the process started with (see `scalper::memory`).
    malloc: String,
    /// Resident anonymous memory in huge pages at the end of the run.
    anon_huge_bytes: Option<u64>,
    /// Heap bytes written and freed before the run (`--prefault-mib`).
    prefault_bytes: u64,
    /// The malloc set-up keeps the pre-faulted heap (`scalper::memory::Prefault`).
    prefault_kept: bool,
    /// The pre-faulted heap was collapsed into huge pages.
    prefault_huge: bool,
    decision_lines: u64,
    decision_sha256: String,
    projection: projection::Projection,
}

/// Tick latency percentiles, µs.
#[derive(serde::Serialize)]
struct BenchLatency {
    p50: f64,
    p90: f64,
    p99: f64,
    p999: f64,
    max: f64,
}

/// Reads the recording under `dir` without a core: decompress, parse, reorder. Returns the
/// events read and the seconds it took.
fn bench_decode(dir: &Path) -> Result<(u64, f64), String> {
    let t = Instant::now();
    let reader = RecordingReader::open(&Paths::with_data_dir(dir), Period::all()).map_err(|e| e.to_string())?;
    let mut n = 0u64;
    for item in reader {
        if let ReplayItem::Event(_) = item.map_err(|e| e.to_string())? {
            n += 1;
        }
    }
    Ok((n, t.elapsed().as_secs_f64()))
}

fn bench_replay_in(dir: &Path, opts: &BenchOptions) -> Result<(), String> {
    let BenchOptions { symbols, events, events_per_ms, seed, .. } = *opts;
    if !(opts.universe_events_per_s.is_finite() && opts.universe_events_per_s > 0.0) {
        return Err(format!("--universe-events-per-s must be a positive number, not {}", opts.universe_events_per_s));
    }
    // On this thread, which runs the timed core below (the decoding thread has its own arena).
    let prefault_mib = opts.prefault_mib.unwrap_or(scalper::config::EngineConfig::default().prefault_mib);
    let prefault = scalper::memory::prefault_if_kept(prefault_mib).unwrap_or_default();
    // 1. Record the synthetic stream.
    let t = Instant::now();
    let mut w = RecordingWriter::new(dir);
    let mut cfg = UniverseStream::config();
    cfg.engine.prefetch = opts.prefetch;
    let cfg = Arc::new(cfg);
    let io = |e: std::io::Error| e.to_string();
    w.write(&Recorder::header(cfg, EPOCH_MS)).map_err(io)?;
    let mut stream = UniverseStream::new(symbols, seed, events_per_ms);
    let setup = stream.setup();
    let meter = Meter::start("bench-replay: record", Unit::Items("events"), Some(setup.len() as u64 + events));
    let mut seq = 0;
    for mut ev in setup.into_iter().chain((&mut stream).take(events as usize)) {
        seq += 1;
        ev.seq = seq;
        w.write(&ev).map_err(io)?;
        if seq.is_multiple_of(256) {
            meter.set(seq);
        }
    }
    w.finish().map_err(io)?;
    meter.set(seq);
    meter.finish();
    let bytes: u64 = replay::recording_files(&Paths::with_data_dir(dir))
        .map_err(|e| e.to_string())?
        .iter()
        .filter_map(|(p, _)| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    eprintln!(
        "recorded {seq} events ({symbols} symbols, {:.1} MB) in {:.2} s",
        bytes as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );

    // 2. Replay it, timing every on_event with the monotonic clock (outside the core).
    let clock = MonotonicClock::new();
    let reader = RecordingReader::open(&Paths::with_data_dir(dir), Period::all()).map_err(|e| e.to_string())?;
    // Decoding on a second thread, as `scalper replay` does.
    let mut reader = parallel::ThreadedReader::spawn(reader).map_err(|e| e.to_string())?;
    let mut t = Timed {
        clock,
        log: DecisionLog::new(std::io::sink()),
        engine: None,
        lat: Vec::with_capacity(seq as usize),
        worst: (0, ""),
        kinds: Vec::new(),
        kind_of: Vec::with_capacity(seq as usize),
        meter: Meter::start("bench-replay: replay", Unit::Items("events"), Some(seq)),
    };
    let mut started = Instant::now();
    if opts.decode_first {
        let items: Vec<_> = (&mut reader).collect();
        let mut items = items.into_iter();
        let mut spent = Vec::with_capacity(seq as usize);
        started = Instant::now();
        let mut ahead = replay::ReadAhead::start(&mut items);
        while let Some(item) = ahead.next_item(&mut items) {
            spent.extend(t.step(item.map_err(|e| e.to_string())?, ahead.events())?);
        }
    } else {
        // Two items read ahead, as `scalper replay` does: the core prefetches the next events' state.
        let mut ahead = replay::ReadAhead::start(&mut reader);
        while let Some(item) = ahead.next_item(&mut reader) {
            if let Some(ev) = t.step(item.map_err(|e| e.to_string())?, ahead.events())? {
                parallel::ItemSource::recycle(&mut reader, ev);
            }
        }
    }
    let Timed { log, mut lat, worst, kinds, kind_of, meter, .. } = t;
    let by_kind = crate::latency::kind_latencies(&kinds, &kind_of, &lat);
    let wall = started.elapsed().as_secs_f64();
    meter.set(seq);
    meter.finish();
    let core_s: f64 = lat.iter().map(|x| *x as f64).sum::<f64>() / 1e9;
    let n = lat.len();
    lat.sort_unstable();
    let pct = |q: f64| crate::latency::quantile_us(&lat, q);
    let rss = peak_rss_bytes();
    let p99 = pct(0.99);
    let core_rate = n as f64 / core_s.max(1e-12);
    let sha = log.sha256_hex();
    let prefetch = if opts.prefetch { "on" } else { "off (engine.prefetch)" };
    println!(
        "bench-replay: {n} events, {symbols} symbols, {events_per_ms} events/ms of stream time, prefetch {prefetch}"
    );
    println!(
        "  replay wall time     {wall:.3} s  ({:.0} events/s end to end: {})",
        n as f64 / wall,
        if opts.decode_first { "core + log, decoded beforehand" } else { "read + parse + core + log" }
    );
    println!("  core time            {core_s:.3} s  ({core_rate:.0} events/s in on_event)");
    println!(
        "  tick latency (µs)    p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2} ({})",
        pct(0.5),
        pct(0.9),
        p99,
        pct(0.999),
        worst.0 as f64 / 1000.0,
        worst.1
    );
    let kinds: Vec<String> = by_kind
        .iter()
        .map(|(k, l)| format!("{k} {}× p50 {:.2} p99 {:.2} max {:.1}", l.count, l.p50, l.p99, l.max))
        .collect();
    println!("  per event kind (µs)  {}", kinds.join(", "));
    match rss {
        Some(b) => println!("  peak RSS (VmHWM)     {:.1} MiB", mib(b)),
        None => println!("  peak RSS (VmHWM)     unavailable on this platform"),
    }
    let malloc = scalper::memory::malloc_setup();
    let anon_huge = scalper::memory::anon_huge_bytes();
    let prefaulted = match prefault {
        p if p.bytes > 0 => {
            format!(", {:.1} MiB pre-faulted{}", mib(p.bytes), if p.huge { " in huge pages" } else { "" })
        }
        _ if prefault_mib > 0 => ", not pre-faulted (this set-up hands freed memory back)".to_string(),
        _ => String::new(),
    };
    println!(
        "  malloc               {malloc}, {} resident in huge pages{prefaulted}",
        anon_huge.map_or_else(|| "unknown".to_string(), |b| format!("{:.1} MiB", mib(b)))
    );
    println!("  decision log         {} lines, sha256 {sha}", log.lines());
    let rss_ok = rss.is_none_or(|b| b < 1 << 30);
    println!(
        "  targets              p99 < 50 µs: {}   RSS < 1 GiB: {}",
        if p99 < 50.0 { "PASS" } else { "FAIL" },
        if rss_ok { "PASS" } else { "FAIL" }
    );

    // 3. The same compressed recording through `scalper replay`'s path (decoding on its own
    //    thread, no per-event clock reads), then decoded alone: the rates the projection uses.
    let paths = Paths::with_data_dir(dir);
    let t = Instant::now();
    let mut rlog = DecisionLog::new(std::io::sink());
    let rs = replay::replay(&paths, &ReplayOptions::default(), &mut rlog, &mut ()).map_err(|e| e.to_string())?;
    let replay_s = t.elapsed().as_secs_f64();
    if rs.sha256 != sha {
        return Err(format!("replay of the bench recording gave another decision log ({} vs {sha})", rs.sha256));
    }
    let (decoded, decode_s) = bench_decode(dir)?;
    let proj = projection::Projection::new(projection::Measured {
        universe_events_per_s: opts.universe_events_per_s,
        recorded_events: seq + 1,
        recorded_file_bytes: bytes,
        recorded_line_bytes: rs.reader.bytes_read,
        core_events_per_s: core_rate,
        replay_events_per_s: rs.events as f64 / replay_s.max(1e-12),
        decode_events_per_s: decoded as f64 / decode_s.max(1e-12),
    });
    for l in proj.lines() {
        println!("{l}");
    }
    if let Some(path) = &opts.json {
        let report = BenchJson {
            symbols,
            events: n,
            events_per_ms,
            seed,
            decode_first: opts.decode_first,
            prefetch: opts.prefetch,
            wall_events_per_s: n as f64 / wall,
            core_events_per_s: core_rate,
            latency_us: BenchLatency {
                p50: pct(0.5),
                p90: pct(0.9),
                p99,
                p999: pct(0.999),
                max: worst.0 as f64 / 1000.0,
            },
            worst_kind: worst.1,
            by_kind,
            peak_rss_bytes: rss,
            malloc,
            anon_huge_bytes: anon_huge,
            prefault_bytes: prefault.bytes,
            prefault_kept: prefault.kept,
            prefault_huge: prefault.huge,
            decision_lines: log.lines(),
            decision_sha256: sha,
            projection: proj,
        };
        let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
        std::fs::write(path, text + "\n").map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

/// The timed replay of bench-replay: each event through the core, its `on_event` time kept.
struct Timed {
    clock: MonotonicClock,
    log: DecisionLog<std::io::Sink>,
    engine: Option<Engine<CorePipeline, FrozenClock>>,
    /// Every event's `on_event` time, ns.
    lat: Vec<u32>,
    /// The slowest event: ns and kind.
    worst: (u64, &'static str),
    /// The event kinds seen, in order of first sight.
    kinds: Vec<&'static str>,
    /// Each event's kind, an index into `kinds`, beside `lat`.
    kind_of: Vec<u8>,
    meter: Meter,
}

impl Timed {
    /// Replays one item; returns the event when done with it (for recycling).
    fn step(&mut self, item: ReplayItem, ahead: [Option<&Event>; 2]) -> Result<Option<Event>, String> {
        match item {
            ReplayItem::Run(r) => {
                self.engine =
                    Some(replay::replay_engine(r.config.unwrap_or_else(|| Arc::new(UniverseStream::config()))));
                Ok(None)
            }
            ReplayItem::Event(ev) => {
                let Some(e) = self.engine.as_mut() else { return Ok(None) };
                let t0 = self.clock.now_nanos();
                let out = e.on_event_ahead(&ev, ahead);
                let dt = self.clock.now_nanos().saturating_sub(t0);
                self.lat.push(dt.min(u32::MAX as u64) as u32);
                let label = event_label(&ev.kind);
                if dt > self.worst.0 {
                    self.worst = (dt, label);
                }
                let k = match self.kinds.iter().position(|l| *l == label) {
                    Some(k) => k,
                    None => {
                        self.kinds.push(label);
                        self.kinds.len() - 1
                    }
                };
                self.kind_of.push(k as u8);
                self.log.write(&ev, &out).map_err(|e| e.to_string())?;
                if ev.seq.is_multiple_of(256) {
                    self.meter.set(ev.seq);
                }
                Ok(Some(ev))
            }
        }
    }
}

pub fn record_fixture(out: &Path, symbols: usize, steps: usize, seed: u64, max_move: i64) -> ExitCode {
    let raw = Paths::with_data_dir(out).symbol_dir(scalper::config::paths::DataKind::Raw, None);
    if let Ok(files) = replay::recording_files(&Paths::with_data_dir(out)) {
        for (p, _) in files {
            if let Err(e) = std::fs::remove_file(&p) {
                return fail(format!("{}: {e}", p.display()));
            }
        }
    }
    let mut w = RecordingWriter::new(out);
    let mut m = TradingMarket::new(symbols, seed).with_max_move(max_move);
    let header = Recorder::header(Arc::new(TradingMarket::config()), EPOCH_MS);
    let res = std::iter::once(header).chain(m.events(steps)).try_for_each(|ev| w.write(&ev));
    match res.and_then(|_| w.finish()) {
        Ok(n) => {
            println!("wrote {n} events to {}", raw.display());
            ExitCode::SUCCESS
        }
        Err(e) => fail(format!("{}: {e}", raw.display())),
    }
}

/// Loads the events to evaluate: the dumps when given, else the recording (with the
/// configuration its first run recorded, if any).
fn evaluation_events(
    src: &ReplaySource,
    orderbook: Option<&Path>,
    trades: Option<&Path>,
    refresh_s: u64,
) -> Result<(Vec<Event>, Option<Arc<Config>>), String> {
    if orderbook.is_some() || trades.is_some() {
        let mut evs = Vec::new();
        let meter = Meter::start("evaluate: read", Unit::Bytes, Some(dump_bytes(trades, orderbook) * import::PASSES));
        import::import_events_counted(
            trades,
            orderbook,
            refresh_s,
            &mut |e| {
                evs.push(e);
                Ok(())
            },
            Some(&meter.counter()),
        )
        .map_err(|e| e.to_string())?;
        meter.finish();
        return Ok((evs, None));
    }
    let opts = options(src, Pace::Max)?;
    let paths = Paths::with_data_dir(data_dir(src));
    let mut reader = RecordingReader::open(&paths, opts.period).map_err(|e| e.to_string())?;
    let meter = Meter::start("evaluate: read", Unit::Bytes, Some(reader.stats().bytes_total));
    let mut items = Vec::new();
    while let Some(item) = reader.next() {
        items.push(item.map_err(|e| e.to_string())?);
        if items.len().is_multiple_of(4096) {
            meter.set(reader.stats().file_bytes_read);
        }
    }
    meter.set(reader.stats().file_bytes_read);
    meter.finish();
    let recorded = items.iter().find_map(|i| match i {
        ReplayItem::Run(r) => r.config.clone(),
        ReplayItem::Event(_) => None,
    });
    let events = items
        .into_iter()
        .filter_map(|i| match i {
            ReplayItem::Event(e) => Some(e),
            ReplayItem::Run(_) => None,
        })
        .collect();
    Ok((events, recorded))
}

/// `scalper evaluate`.
pub fn evaluate(
    src: &ReplaySource,
    orderbook: Option<&Path>,
    trades: Option<&Path>,
    skip_s: u64,
    inject: usize,
    seeds: &[u64],
    output: &str,
) -> ExitCode {
    let json = match output {
        "json" => true,
        "table" => false,
        other => return fail(format!("unknown output {other:?}: use table or json")),
    };
    let given = match &src.config {
        Some(p) => match Config::load(Some(p)) {
            Ok(c) => Some(Arc::new(c)),
            Err(e) => return fail(format!("{}: {e}", p.display())),
        },
        None => None,
    };
    let refresh_s = given.as_ref().map(|c| c.universe.refresh_s).unwrap_or(Config::default().universe.refresh_s);
    let (events, recorded) = match evaluation_events(src, orderbook, trades, refresh_s) {
        Ok(e) => e,
        Err(e) => return fail(e),
    };
    // --config wins, then the recording's own, then the defaults.
    let cfg = given.or(recorded).unwrap_or_else(|| Arc::new(Config::default()));
    if events.is_empty() {
        return fail("no events to evaluate");
    }
    let skip_ms = (skip_s as i64).saturating_mul(1000);
    let meter = Meter::start("evaluate", Unit::Items("events"), Some(events.len() as u64));
    let mut evaluator = replay::evaluate::Evaluator::new(cfg.clone(), skip_ms);
    for (i, ev) in events.iter().enumerate() {
        evaluator.feed(ev);
        if i.is_multiple_of(256) {
            meter.set(i as u64);
        }
    }
    meter.set(events.len() as u64);
    meter.finish();
    let report = evaluator.report();
    let injected = (inject > 0).then(|| {
        let plan = replay::inject::InjectPlan { trials_per_kind: inject, seeds: seeds.to_vec(), ..Default::default() };
        let planned = (plan.seeds.len() * plan.kinds.len() * plan.trials_per_kind) as u64;
        let meter = Meter::start("evaluate: injections", Unit::Items("trials"), Some(planned));
        let r =
            replay::inject::evaluate_injections_with_progress(&events, cfg.clone(), &plan, &mut |n, _| meter.set(n));
        meter.set(planned);
        meter.finish();
        r
    });
    if json {
        let v = serde_json::json!({"background": report, "injection": injected});
        match serde_json::to_string_pretty(&v) {
            Ok(s) => println!("{s}"),
            Err(e) => return fail(e),
        }
    } else {
        print!("{}", report.table());
        if let Some(r) = &injected {
            print!("\n{}", r.table());
        }
    }
    ExitCode::SUCCESS
}
