//! Replay throughput: a recorded synthetic full universe (500 symbols, orderbook.50 cadence, one
//! timer per second of stream time) read from its JSONL files, parsed, fed to a fresh
//! `Engine<CorePipeline, FrozenClock>` and hashed into a decision log — the whole `scalper replay
//! --max` path. A second benchmark feeds the same events pre-parsed, isolating the core.
//! Run with `cargo bench --bench replay`.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use scalper::config::paths::Paths;
use scalper::engine::synthetic::{UniverseStream, EPOCH_MS};
use scalper::storage::recorder::Recorder;
use scalper::storage::replay::{
    self, DecisionLog, Period, RecordingReader, RecordingWriter, ReplayItem, ReplayOptions,
};
use std::sync::Arc;

const SYMBOLS: usize = 500;
const EVENTS: usize = 50_000;

fn record(dir: &std::path::Path) -> Vec<scalper::engine::event::Event> {
    let mut w = RecordingWriter::new(dir);
    w.write(&Recorder::header(Arc::new(UniverseStream::config()), EPOCH_MS)).expect("header");
    let mut s = UniverseStream::new(SYMBOLS, 42, 25);
    let mut evs = s.setup();
    evs.extend((&mut s).take(EVENTS));
    for (i, ev) in evs.iter_mut().enumerate() {
        ev.seq = i as u64 + 1;
        w.write(ev).expect("write");
    }
    w.finish().expect("flush");
    evs
}

fn bench_replay(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let evs = record(dir.path());
    let paths = Paths::with_data_dir(dir.path());
    let mut g = c.benchmark_group("replay");
    g.sample_size(10);
    g.throughput(Throughput::Elements(evs.len() as u64));
    g.bench_function("recording_500_symbols_read_parse_core_log", |b| {
        b.iter(|| {
            let mut log = DecisionLog::new(std::io::sink());
            let s = replay::replay(&paths, &ReplayOptions::default(), &mut log, &mut ()).expect("replay");
            assert_eq!(s.events as usize, evs.len());
            s.sha256
        })
    });
    g.bench_function("events_500_symbols_core_log", |b| {
        b.iter_batched(
            || replay::replay_engine(Arc::new(UniverseStream::config())),
            |mut e| {
                let mut log = DecisionLog::new(std::io::sink());
                for ev in &evs {
                    let out = e.on_event(ev);
                    log.write(ev, &out).expect("sink");
                }
                log.sha256_hex()
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function("recording_500_symbols_read_parse_only", |b| {
        b.iter(|| {
            let r = RecordingReader::open(&paths, Period::all()).expect("open");
            r.filter(|i| matches!(i, Ok(ReplayItem::Event(_)))).count()
        })
    });
    g.finish();
}

criterion_group!(benches, bench_replay);
criterion_main!(benches);
