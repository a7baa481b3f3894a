//! `scalper export --parquet`: a recording (compressed segments over two days) and the store
//! streams a replay of it writes are exported as Hive-partitioned Parquet; read back with the
//! parquet crate, every partition holds exactly its source lines, with the times, symbols, exact
//! price strings and original lines of the source. Bad input gives clear errors, torn and
//! garbage lines are counted, not exported.

#![cfg(feature = "parquet-export")]

use arrow_array::{Array, RecordBatch, StringArray, TimestampMillisecondArray, UInt64Array};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use scalper::config::paths::Paths;
use scalper::engine::event::{Event, EventKind};
use scalper::engine::output::{Output, Outputs};
use scalper::monitoring::metrics::Metrics;
use scalper::storage::export_parquet::{export, ExportError, ExportOptions};
use scalper::storage::json_store::{day_key, Store};
use scalper::storage::recorder::Recorder;
use scalper::storage::replay::{
    replay, DecisionLog, Period, RecordingReader, RecordingWriter, ReplayItem, ReplayObserver, ReplayOptions,
};
use scalper::storage::segment::SegmentReader;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const DAY_MS: i64 = 86_400_000;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/recordings/handbuilt")
}

/// (stream, day, symbol) → the partition's rows, in file order.
type Parts = BTreeMap<(String, String, String), Vec<Row>>;

/// (stream, day, symbol) → the source lines of the partition.
type SourceLines = BTreeMap<(String, String, String), Vec<String>>;
/// (day, symbol) → the recorded trades.
type SourceTrades = BTreeMap<(String, String), Vec<Value>>;

/// The columns the test checks, one exported row.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    time: Option<i64>,
    seq: Option<u64>,
    kind: Option<String>,
    price: Option<String>,
    size: Option<String>,
    line: String,
}

/// Collects the core's store records, as the runtime hands them to the store.
#[derive(Default)]
struct Records(Vec<(scalper::config::paths::DataKind, Option<scalper::domain::Symbol>, i64, Value)>);

impl ReplayObserver for Records {
    fn on_outputs(&mut self, _ev: &Event, out: &Outputs) {
        for o in &out.items {
            if let Output::Record(r) = o {
                self.0.push((r.kind, r.symbol.clone(), r.ts_ms, r.body.clone()));
            }
        }
    }
}

/// A data directory: the bundled recording rewritten as compressed segments, its last quarter
/// moved to the next day, and the store streams its replay writes (through the async store).
fn make_data_dir(dir: &Path) {
    let (items, _) =
        RecordingReader::open(&Paths::with_data_dir(fixture()), Period::all()).unwrap().collect_all().unwrap();
    let n = items.len();
    let mut w = RecordingWriter::new(dir);
    for (i, it) in items.iter().enumerate() {
        match it {
            ReplayItem::Run(r) => w.write(&Recorder::header(r.config.clone().unwrap(), r.first_ms)).unwrap(),
            ReplayItem::Event(e) => {
                let mut e = e.clone();
                if i > n * 3 / 4 {
                    e.time.recv_ms += DAY_MS;
                }
                w.write(&e).unwrap()
            }
        }
    }
    w.finish().unwrap();
    let mut recs = Records::default();
    let mut log = DecisionLog::new(std::io::sink());
    replay(&Paths::with_data_dir(dir), &ReplayOptions::default(), &mut log, &mut recs).unwrap();
    assert!(recs.0.len() > 20, "the replay writes store records: {}", recs.0.len());
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let store = Store::start(Paths::with_data_dir(dir), 65_536, 1024, Arc::new(Metrics::new()));
        let h = store.handle();
        for (kind, sym, ts, body) in &recs.0 {
            h.append(*kind, sym.as_ref(), *ts, body).await.unwrap();
        }
        store.shutdown().await;
    });
}

/// The source lines of every partition, computed independently of the exporter: the recording
/// by the symbol its event names, the store streams by their symbol directory; the day is the
/// hourly file's.
fn expected(data: &Path) -> (SourceLines, SourceTrades) {
    let mut parts = SourceLines::new();
    let mut trades = SourceTrades::new();
    let mut files: Vec<(String, String, String, PathBuf)> = Vec::new();
    for stream in std::fs::read_dir(data).unwrap() {
        let stream = stream.unwrap();
        if !stream.file_type().unwrap().is_dir() || stream.file_name() == "profiles" {
            continue;
        }
        for sym in std::fs::read_dir(stream.path()).unwrap() {
            let sym = sym.unwrap();
            if !sym.file_type().unwrap().is_dir() {
                continue;
            }
            for f in std::fs::read_dir(sym.path()).unwrap() {
                let f = f.unwrap();
                let name = f.file_name().to_string_lossy().to_string();
                if name.ends_with(".jsonl") || name.ends_with(".jsonl.zst") {
                    files.push((
                        stream.file_name().to_string_lossy().to_string(),
                        name[..10].to_string(),
                        sym.file_name().to_string_lossy().to_string(),
                        f.path(),
                    ));
                }
            }
        }
    }
    files.sort();
    for (stream, day, sym, path) in files {
        let r = SegmentReader::open(&path).unwrap();
        for line in r.lines() {
            let line = line.unwrap();
            if stream == "raw" {
                let v: Value = serde_json::from_str(&line).unwrap();
                let (kind, body) = match &v["kind"] {
                    Value::Object(m) => m.iter().next().map(|(k, b)| (k.clone(), b.clone())).unwrap(),
                    other => (other.as_str().unwrap_or("").to_string(), Value::Null),
                };
                let symbol = match kind.as_str() {
                    "Book" | "Trades" | "Ticker" | "Liquidation" | "Baselines" | "History" => {
                        body["symbol"].as_str().unwrap().to_string()
                    }
                    "BookShed" => body.as_str().unwrap().to_string(),
                    _ => "_global".to_string(),
                };
                if kind == "Trades" {
                    for t in body["trades"].as_array().unwrap() {
                        trades.entry((day.clone(), symbol.clone())).or_default().push(t.clone());
                    }
                }
                parts.entry((stream.clone(), day.clone(), symbol)).or_default().push(line);
            } else {
                parts.entry((stream.clone(), day.clone(), sym.clone())).or_default().push(line);
            }
        }
    }
    (parts, trades)
}

fn strings(b: &RecordBatch, name: &str) -> Vec<Option<String>> {
    let a = b.column_by_name(name).unwrap().as_any().downcast_ref::<StringArray>().unwrap();
    (0..a.len()).map(|i| a.is_valid(i).then(|| a.value(i).to_string())).collect()
}

/// Every Parquet file under `out`, read back with the parquet crate, by its Hive partition.
fn read_back(out: &Path) -> Parts {
    let mut parts = Parts::new();
    let mut files = Vec::new();
    for stream in std::fs::read_dir(out).unwrap() {
        let stream = stream.unwrap();
        for day in std::fs::read_dir(stream.path()).unwrap() {
            let day = day.unwrap();
            for sym in std::fs::read_dir(day.path()).unwrap() {
                let sym = sym.unwrap();
                for f in std::fs::read_dir(sym.path()).unwrap() {
                    let f = f.unwrap().path();
                    assert_eq!(
                        f.extension().and_then(|e| e.to_str()),
                        Some("parquet"),
                        "no temporary file left: {f:?}"
                    );
                    let key = (
                        stream.file_name().to_string_lossy().to_string(),
                        day.file_name().to_string_lossy().strip_prefix("day=").unwrap().to_string(),
                        sym.file_name().to_string_lossy().strip_prefix("symbol=").unwrap().to_string(),
                    );
                    // part-<n>: rows continue in n order (part-10 after part-9).
                    let n: u32 =
                        f.file_stem().unwrap().to_str().unwrap().strip_prefix("part-").unwrap().parse().unwrap();
                    files.push((key, n, f));
                }
            }
        }
    }
    files.sort();
    for (key, _, f) in files {
        let reader =
            ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&f).unwrap()).unwrap().build().unwrap();
        for b in reader {
            let b = b.unwrap();
            let time = b.column_by_name("time").unwrap().as_any().downcast_ref::<TimestampMillisecondArray>().unwrap();
            let seq = b.column_by_name("seq").unwrap().as_any().downcast_ref::<UInt64Array>().unwrap();
            let (kind, price, size, line) =
                (strings(&b, "kind"), strings(&b, "price"), strings(&b, "size"), strings(&b, "line"));
            for i in 0..b.num_rows() {
                parts.entry(key.clone()).or_default().push(Row {
                    time: time.is_valid(i).then(|| time.value(i)),
                    seq: seq.is_valid(i).then(|| seq.value(i)),
                    kind: kind[i].clone(),
                    price: price[i].clone(),
                    size: size[i].clone(),
                    line: line[i].clone().unwrap(),
                });
            }
        }
    }
    parts
}

#[test]
fn a_recording_and_its_store_streams_export_to_partitions_that_read_back_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    make_data_dir(&data);
    let out = dir.path().join("export");
    let mut opts = ExportOptions::new(&data, &out);
    // Small limits so that writers are closed early and row groups flushed on the way.
    opts.max_open = 64;
    opts.memory_budget = 64 << 10;
    let s = export(&opts, None).unwrap();
    let (want, want_trades) = expected(&data);
    let got = read_back(&out);

    // Two days of recording, several symbols, store streams beside it.
    let days: std::collections::BTreeSet<&str> = want.keys().filter(|k| k.0 == "raw").map(|k| k.1.as_str()).collect();
    assert_eq!(days.len(), 2, "{days:?}");
    let streams: std::collections::BTreeSet<&str> = want.keys().map(|k| k.0.as_str()).collect();
    assert!(streams.contains("events") && streams.contains("microcandles"), "{streams:?}");
    assert!(want.keys().filter(|k| k.0 == "raw").count() > 20);

    // Every partition holds exactly its source lines, in order.
    for (key, lines) in &want {
        let rows = got.get(key).unwrap_or_else(|| panic!("partition {key:?} missing"));
        assert_eq!(rows.len(), lines.len(), "rows of {key:?}");
        assert_eq!(s.partitions[key].rows as usize, lines.len(), "summary of {key:?}");
        for (r, l) in rows.iter().zip(lines) {
            assert_eq!(&r.line, l, "the original line of {key:?}");
            let v: Value = serde_json::from_str(l).unwrap();
            if key.0 == "raw" {
                assert_eq!(r.time, v["time"]["recv_ms"].as_i64(), "time");
                assert_eq!(day_key(r.time.unwrap()), key.1, "a row's day is its partition's");
                assert_eq!(r.seq, v["seq"].as_u64(), "seq");
                let kind = v["kind"].as_object().map(|m| m.keys().next().unwrap().clone());
                assert_eq!(r.kind, kind.or_else(|| v["kind"].as_str().map(str::to_string)));
            } else {
                assert_eq!(r.kind, v["kind"].as_str().or(v["event"].as_str()).map(str::to_string), "kind of {l}");
                let price = match &v["price"] {
                    Value::String(p) => Some(p.clone()),
                    Value::Number(p) => Some(p.to_string()),
                    _ => None,
                };
                assert_eq!(r.price, price, "price of {l}");
            }
        }
    }
    // The trades stream: one row per recorded trade, exact decimal strings.
    let mut n_trades = 0;
    for ((day, sym), trades) in &want_trades {
        let rows = &got[&("trades".to_string(), day.clone(), sym.clone())];
        assert_eq!(rows.len(), trades.len(), "trades of {sym} on {day}");
        for (r, t) in rows.iter().zip(trades) {
            assert_eq!(r.price.as_deref(), t["price"].as_str(), "exact price");
            assert_eq!(r.size.as_deref(), t["qty"].as_str(), "exact size");
            assert_eq!(r.time, t["ts_ms"].as_i64());
            n_trades += 1;
        }
    }
    assert!(n_trades > 1000, "{n_trades} trades");
    let expected_parts = want.len() + want_trades.len();
    assert_eq!(got.len(), expected_parts, "no partition beyond the source's");
    assert_eq!(s.lines as usize, want.values().map(Vec::len).sum::<usize>());
    assert_eq!((s.bad_lines, s.torn), (0, 0));
}

#[test]
fn days_symbols_and_streams_select_what_is_exported() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    make_data_dir(&data);
    let (want, _) = expected(&data);
    let first_day = want.keys().map(|k| k.1.clone()).min().unwrap();
    let out = dir.path().join("one");
    let mut opts = ExportOptions::new(&data, &out);
    opts.from_day = Some(first_day.clone());
    opts.to_day = Some(first_day.clone());
    opts.symbols = Some(["AAAUSDT".to_string(), "AABUSDT".to_string()].into_iter().collect());
    opts.streams = Some(["raw".to_string()].into_iter().collect());
    // One open partition for two interleaved symbols: each switch closes a part, the rows go on
    // in the next part-<n>.
    opts.max_open = 1;
    let s = export(&opts, None).unwrap();
    let got = read_back(&out);
    let keys: Vec<_> =
        ["AAAUSDT", "AABUSDT"].iter().map(|sym| ("raw".to_string(), first_day.clone(), sym.to_string())).collect();
    assert_eq!(got.keys().cloned().collect::<Vec<_>>(), keys);
    for key in &keys {
        let lines: Vec<&String> = got[key].iter().map(|r| &r.line).collect();
        assert_eq!(lines, want[key].iter().collect::<Vec<_>>(), "rows of {key:?} in order across parts");
        assert!(s.partitions[key].files > 1, "{:?}", s.partitions[key]);
    }
    assert_eq!(s.rows("raw") as usize, want[&keys[0]].len() + want[&keys[1]].len());
}

#[test]
fn bad_input_gives_clear_errors_and_unreadable_lines_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let missing = export(&ExportOptions::new(dir.path().join("nope"), dir.path().join("o")), None).unwrap_err();
    assert!(matches!(missing, ExportError::NoDataDir(_)), "{missing}");
    let data = dir.path().join("data");
    let events = data.join("events/BTCUSDT");
    std::fs::create_dir_all(&events).unwrap();
    std::fs::write(
        events.join("2026-01-01T00.jsonl"),
        "{\"event\":\"STATE\",\"ts_ms\":1767225600000}\nnot json\n[1]\n{\"event\":\"STATE\"}\n{\"torn",
    )
    .unwrap();
    // A segment whose last zstd frame is cut short (a crash while it was written).
    let raw = data.join("raw/_global");
    std::fs::create_dir_all(&raw).unwrap();
    let ev = Event::new(
        1,
        scalper::domain::EventTime::local(1_767_225_600_000),
        EventKind::Timer(scalper::engine::event::TimerKind::Second),
    );
    let mut line = serde_json::to_vec(&ev).unwrap();
    line.push(b'\n');
    let mut seg = scalper::storage::segment::compress_frame(&line).unwrap();
    let second = scalper::storage::segment::compress_frame(&line).unwrap();
    seg.extend_from_slice(&second[..second.len() / 2]);
    std::fs::write(raw.join("2026-01-01T00.jsonl.zst"), seg).unwrap();

    let out = dir.path().join("out");
    let s = export(&ExportOptions::new(&data, &out), None).unwrap();
    assert_eq!((s.lines, s.bad_lines, s.torn), (5, 2, 2), "{s:?}");
    assert!(s.first_bad.as_deref().unwrap().contains("2026-01-01T00.jsonl line 2"), "{:?}", s.first_bad);
    let got = read_back(&out);
    assert_eq!(got[&("events".into(), "2026-01-01".into(), "BTCUSDT".into())].len(), 2);
    assert_eq!(got[&("raw".into(), "2026-01-01".into(), "_global".into())].len(), 1);

    // The output must be new or empty; days must be days.
    let again = export(&ExportOptions::new(&data, &out), None).unwrap_err();
    assert!(matches!(again, ExportError::OutNotEmpty(_)), "{again}");
    let mut opts = ExportOptions::new(&data, dir.path().join("o2"));
    opts.from_day = Some("2026-13-01".into());
    assert!(export(&opts, None).unwrap_err().to_string().contains("expected YYYY-MM-DD"));
    let mut opts = ExportOptions::new(&data, dir.path().join("o3"));
    opts.streams = Some(["nope".to_string()].into_iter().collect());
    assert!(export(&opts, None).unwrap_err().to_string().contains("unknown stream"));
}

#[test]
fn the_export_command_writes_parquet_and_reports_counts() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    make_data_dir(&data);
    let out = dir.path().join("pq");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_scalper"))
        .args(["export", "--parquet", "--data-dir"])
        .arg(&data)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("raw:") && stdout.contains("trades:") && stdout.contains("Parquet files"), "{stdout}");
    assert!(stderr.contains("export"), "progress closing line on stderr: {stderr}");
    let (want, _) = expected(&data);
    let got = read_back(&out);
    for (key, lines) in &want {
        assert_eq!(got[key].len(), lines.len(), "{key:?}");
    }
    // A clear error, no panic, on a missing data directory.
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_scalper"))
        .args(["export", "--parquet", "--data-dir"])
        .arg(dir.path().join("missing"))
        .arg("--out")
        .arg(dir.path().join("x"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("is not a data directory"), "{stderr}");
}
