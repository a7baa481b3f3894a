//! The HTML backtest report in a real browser: `scalper backtest` on the bundled recording writes
//! the page beside its JSON report, headless Chromium lays it out, and a probe script measures
//! every chart's drawn data marks (bars, the equity line, the drawdown area) with `getBBox()`:
//! each chart must be there, laid out at a real size, and hold non-empty marks matching the
//! JSON report. An empty backtest's page renders its "no trades" notice.
//!
//! Needs Debian's `chromium` (installed by `.ci/run`); without it the test fails when `CI` is set
//! and is skipped with a notice otherwise.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The chart figures the page must hold (mirrors `report_html::CHART_IDS`).
const CHARTS: [&str; 6] =
    ["chart-equity", "chart-r", "chart-regime", "chart-global-regime", "chart-category", "chart-exit"];

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/recordings/handbuilt")
}

fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    for name in ["chromium", "chromium-browser"] {
        for dir in std::env::split_paths(&path) {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    if std::env::var_os("CI").is_some() {
        panic!("CI is set but `chromium` is not on PATH: .ci/run installs Debian's `chromium` package for this test");
    }
    eprintln!(
        "\n*** SKIPPED: the HTML report's browser test needs `chromium` on PATH \
         (apt-get install -y --no-install-recommends chromium); CI runs it ***\n"
    );
    None
}

fn scalper(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_scalper")).args(args).output().expect("scalper runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// Measures, after layout, each chart's SVG box and its data marks: the elements filled or
/// stroked with one of the report's data colours (gain, loss, neutral), with their rendered size.
const PROBE: &str = r#"<script>
(function () {
  const DATA = ['#2E8B57', '#C83737', '#376EB9'];
  const out = {};
  for (const f of document.querySelectorAll('figure.chart')) {
    const svgs = f.querySelectorAll('svg');
    const r = { svgs: svgs.length, w: 0, h: 0, marks: [], texts: 0 };
    if (svgs.length) {
      const box = svgs[0].getBoundingClientRect();
      r.w = box.width; r.h = box.height;
      r.texts = svgs[0].querySelectorAll('text').length;
      for (const el of svgs[0].querySelectorAll('rect,polyline,polygon,circle')) {
        const fill = (el.getAttribute('fill') || '').toUpperCase();
        const stroke = (el.getAttribute('stroke') || '').toUpperCase();
        if (!DATA.includes(fill) && !DATA.includes(stroke)) continue;
        const b = el.getBBox();
        r.marks.push({ tag: el.tagName, fill: fill, w: b.width, h: b.height });
      }
    }
    out[f.id] = r;
  }
  const pre = document.createElement('pre');
  pre.id = 'probe';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
</script>
</body>"#;

/// Lays `html` out in headless Chromium with the probe appended and returns the dumped DOM.
fn render_in_chromium(chromium: &Path, dir: &Path, name: &str, html: &str) -> String {
    let page = dir.join(name);
    std::fs::write(&page, html.replacen("</body>", PROBE, 1)).unwrap();
    let profile = dir.join(format!("{name}.profile"));
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--window-size=1000,3000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium starts");
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || std::io::read_to_string(stdout).unwrap_or_default());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish rendering {} within 60 s", page.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    reader.join().unwrap()
}

/// The probe's JSON out of the dumped DOM.
fn probe(dom: &str) -> Value {
    let start = dom.find("<pre id=\"probe\">").unwrap_or_else(|| panic!("no probe output in the DOM:\n{dom}"));
    let body = &dom[start + "<pre id=\"probe\">".len()..];
    let body = &body[..body.find("</pre>").unwrap()];
    let json = body.replace("&quot;", "\"").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&");
    serde_json::from_str(&json).unwrap_or_else(|e| panic!("probe output is not JSON ({e}): {json}"))
}

/// Data marks of kind `tag` with a visible area (bars, the drawdown polygon) or, for a line,
/// a visible extent.
fn visible_marks(chart: &Value, tag: &str) -> Vec<(f64, f64)> {
    chart["marks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["tag"] == tag)
        .map(|m| (m["w"].as_f64().unwrap(), m["h"].as_f64().unwrap()))
        .filter(|(w, h)| if tag == "polyline" { *w > 0.5 || *h > 0.5 } else { *w > 0.5 && *h > 0.5 })
        .collect()
}

#[test]
fn the_backtest_html_report_draws_every_chart_in_chromium() {
    let Some(chromium) = chromium() else { return };
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let (code, stdout, stderr) =
        scalper(&["backtest", "--data-dir", fixture().to_str().unwrap(), "--report", report.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    let html_path = dir.path().join("report.html");
    assert!(stdout.contains(&format!("html report: {}", html_path.display())), "{stdout}");
    let html = std::fs::read_to_string(&html_path).expect("the HTML report is written beside the JSON one");
    let json: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let trades = json["report"]["total"]["trades"].as_u64().unwrap();
    assert!(trades > 0, "the bundled recording trades");
    assert!(!html.to_lowercase().contains("<script"), "the report itself runs no script");
    assert!(html.contains(&format!("<th>Trades</th><td>{trades}</td>")));

    let dom = render_in_chromium(&chromium, dir.path(), "probe.html", &html);
    let charts = probe(&dom);
    for id in CHARTS {
        let c = &charts[id];
        assert_eq!(c["svgs"], 1, "{id}: one inline SVG ({charts})");
        assert!(c["w"].as_f64().unwrap() >= 800.0 && c["h"].as_f64().unwrap() >= 250.0, "{id} laid out: {c}");
        assert!(c["texts"].as_u64().unwrap() >= 3, "{id} has axis labels: {c}");
    }

    // Equity: a line that spans time and moves; drawdown: an area below zero (the fixture loses once).
    let eq = &charts["chart-equity"];
    let line = visible_marks(eq, "polyline");
    assert!(line.iter().any(|(w, h)| *w > 100.0 && *h > 10.0), "equity line drawn: {eq}");
    let dd = visible_marks(eq, "polygon");
    assert!(dd.iter().any(|(w, h)| *w > 10.0 && *h > 5.0), "drawdown area drawn: {eq}");

    // R distribution: one visible bar per non-empty bucket, none for the empty ones.
    let buckets = json["report"]["r_distribution"].as_array().unwrap();
    let non_empty = buckets.iter().filter(|b| b["trades"].as_u64().unwrap() > 0).count();
    let bars = visible_marks(&charts["chart-r"], "rect");
    assert_eq!(bars.len(), non_empty, "R histogram bars: {}", charts["chart-r"]);
    assert!(bars.iter().all(|(w, h)| *w > 5.0 && *h > 5.0));

    // PnL breakdowns: one visible bar per group of the JSON report.
    for (id, key) in [
        ("chart-regime", "by_regime"),
        ("chart-global-regime", "by_global_regime"),
        ("chart-category", "by_category"),
        ("chart-exit", "by_exit_reason"),
    ] {
        let groups = json["report"][key].as_object().unwrap();
        let bars = visible_marks(&charts[id], "rect");
        assert_eq!(bars.len(), groups.len(), "{id}: {}", charts[id]);
        assert!(bars.iter().all(|(w, h)| *w > 5.0 && *h > 0.5), "{id}: {}", charts[id]);
        let losing = groups.values().filter(|g| g["net_pnl"].as_str().is_some_and(|s| s.starts_with('-'))).count();
        let red = charts[id]["marks"].as_array().unwrap().iter().filter(|m| m["fill"] == "#C83737").count();
        assert_eq!(red, losing, "{id}: losing groups are red");
    }

    // A backtest that closes no trade still gives a page, which says so and draws nothing.
    let empty = dir.path().join("empty.json");
    let empty_html = dir.path().join("empty-page.html");
    let (code, stdout, stderr) = scalper(&[
        "backtest",
        "--data-dir",
        fixture().to_str().unwrap(),
        "--to",
        "2026-01-01T00:00:00.001Z",
        "--report",
        empty.to_str().unwrap(),
        "--html",
        empty_html.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains(&format!("html report: {}", empty_html.display())), "{stdout}");
    let json: Value = serde_json::from_slice(&std::fs::read(&empty).unwrap()).unwrap();
    assert_eq!(json["report"]["total"]["trades"], 0);
    let html = std::fs::read_to_string(&empty_html).unwrap();
    let dom = render_in_chromium(&chromium, dir.path(), "empty-probe.html", &html);
    assert!(dom.contains("id=\"no-trades\""), "{dom}");
    assert_eq!(probe(&dom), serde_json::json!({}), "no chart in an empty report");
}

#[test]
fn no_html_skips_the_page() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("r.json");
    let (code, stdout, stderr) = scalper(&[
        "backtest",
        "--data-dir",
        fixture().to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
        "--no-html",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(report.is_file());
    assert!(!dir.path().join("r.html").exists());
    assert!(!stdout.contains("html report"), "{stdout}");
}
