//! The backtest report as one self-contained HTML page: the summary numbers as a table, charts as
//! inline SVG drawn by `plotters` (equity and drawdown over trade close time, R distribution, net
//! PnL by symbol regime, global regime, category and exit reason) and the breakdown tables.
//!
//! Pure: data in, `String` out, no I/O. Self-contained: no script, stylesheet, font or image is
//! loaded from anywhere (the only URL in the page is the SVG namespace), so the file can be mailed
//! or opened offline. Text in the charts is SVG `<text>` rendered by the browser's own fonts;
//! nothing here needs a font file or a system library.
//!
//! Every chart is a `<figure class="chart" id="chart-…">` holding one `<svg>`; a backtest without
//! trades gets the tables and a notice instead of the charts.

use super::backtest::{BacktestReport, GroupStats, TradeRow};
use plotters::coord::ranged1d::{KeyPointHint, NoDefaultFormatting, ValueFormatter};
use plotters::coord::Shift;
use plotters::prelude::*;
use scalper_core::domain::TimeMs;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The `id`s of the chart figures, in page order (what a reader or a test looks for).
pub const CHART_IDS: [&str; 6] =
    ["chart-equity", "chart-r", "chart-regime", "chart-global-regime", "chart-category", "chart-exit"];

/// Width of every chart in SVG pixels.
const WIDTH: u32 = 900;
/// Height of a bar chart in SVG pixels (the equity chart is taller: two panels).
const BAR_HEIGHT: u32 = 300;
const EQUITY_HEIGHT: u32 = 480;

const GAIN: RGBColor = RGBColor(46, 139, 87);
const LOSS: RGBColor = RGBColor(200, 55, 55);
const NEUTRAL: RGBColor = RGBColor(55, 110, 185);
/// The fine grid lines: barely there.
const LIGHT: RGBColor = RGBColor(242, 242, 242);

type ChartResult = Result<(), Box<dyn std::error::Error>>;

/// Renders the page. `context` rows (e.g. replayed period, events, decision-log SHA-256) go
/// into a second table under the summary, in the order given; all text is HTML-escaped.
pub fn render(report: &BacktestReport, trades: &[TradeRow], context: &[(String, String)]) -> String {
    let mut h = String::with_capacity(64 * 1024);
    h.push_str(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>Backtest report</title>\n<style>\n",
    );
    h.push_str(STYLE);
    h.push_str("</style>\n</head>\n<body>\n<h1>Backtest report</h1>\n");

    h.push_str("<h2>Summary</h2>\n<table id=\"summary\">\n");
    for (k, v) in summary_rows(report) {
        let _ = writeln!(h, "<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(&v));
    }
    h.push_str("</table>\n");
    if !context.is_empty() {
        h.push_str("<table id=\"context\">\n");
        for (k, v) in context {
            let _ = writeln!(h, "<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(v));
        }
        h.push_str("</table>\n");
    }

    if trades.is_empty() || report.total.trades == 0 {
        h.push_str(
            "<p class=\"empty\" id=\"no-trades\">No trades: this backtest closed no trade, so there is no \
             equity curve, R distribution or breakdown to chart.</p>\n",
        );
    } else {
        h.push_str("<h2>Charts</h2>\n");
        let dd_caption = format!(
            "Equity (USDT) and drawdown from the running peak, at each trade's close time (UTC); \
             max drawdown {:.2} USDT ({:.2} %)",
            report.max_drawdown,
            report.max_drawdown_pct * 100.0
        );
        figure(&mut h, CHART_IDS[0], &dd_caption, WIDTH, EQUITY_HEIGHT, |root| {
            equity_chart(root, report.starting_equity, trades)
        });
        let buckets: Vec<(String, f64)> =
            report.r_distribution.iter().map(|b| (b.range.clone(), b.trades as f64)).collect();
        figure(&mut h, CHART_IDS[1], "R distribution: trades per R-multiple bucket", WIDTH, BAR_HEIGHT, |root| {
            bar_chart(root, &buckets, "trades", 0, |_| NEUTRAL)
        });
        let groups = [
            (CHART_IDS[2], "Net PnL (USDT) by symbol regime at entry", &report.by_regime),
            (CHART_IDS[3], "Net PnL (USDT) by global regime at entry", &report.by_global_regime),
            (CHART_IDS[4], "Net PnL (USDT) by category", &report.by_category),
            (CHART_IDS[5], "Net PnL (USDT) by exit reason", &report.by_exit_reason),
        ];
        for (id, caption, g) in groups {
            let bars: Vec<(String, f64)> = g.iter().map(|(k, v)| (k.clone(), v.net_pnl.to_f64())).collect();
            figure(&mut h, id, caption, WIDTH, BAR_HEIGHT, |root| {
                bar_chart(root, &bars, "net PnL (USDT)", 2, |v| if v < 0.0 { LOSS } else { GAIN })
            });
        }
    }

    h.push_str("<h2>Breakdowns</h2>\n");
    let sections = [
        ("by-regime", "By symbol regime at entry", &report.by_regime),
        ("by-global-regime", "By global regime at entry", &report.by_global_regime),
        ("by-category", "By category", &report.by_category),
        ("by-exit-reason", "By exit reason", &report.by_exit_reason),
        ("by-symbol", "By symbol", &report.by_symbol),
    ];
    for (id, title, g) in sections {
        group_table(&mut h, id, title, g);
    }
    h.push_str("</body>\n</html>\n");
    h
}

const STYLE: &str = "body{font-family:sans-serif;margin:2em;color:#222;max-width:960px}\n\
table{border-collapse:collapse;margin:0.5em 0 1.5em}\n\
th,td{border:1px solid #ccc;padding:0.25em 0.7em}\n\
th{text-align:left;background:#f3f3f3}\n\
td{text-align:right;font-variant-numeric:tabular-nums}\n\
td.key{text-align:left}\n\
figure.chart{margin:0 0 2em}\n\
figure.chart svg{max-width:100%;height:auto}\n\
figcaption{font-size:0.9em;color:#555;margin-bottom:0.3em}\n\
.empty,.error{padding:1em;background:#fff6e0;border:1px solid #e0c070}\n";

fn summary_rows(r: &BacktestReport) -> Vec<(&'static str, String)> {
    let t = &r.total;
    let opt = |v: Option<f64>, d: usize| v.map_or("n/a".to_string(), |x| format!("{x:.d$}"));
    vec![
        ("Trades", t.trades.to_string()),
        ("Wins / losses", format!("{} / {}", t.wins, t.losses)),
        ("Win rate", format!("{:.1} %", t.win_rate * 100.0)),
        ("Net PnL after fees (USDT)", format!("{:.2}", t.net_pnl.to_f64())),
        ("Fees (USDT)", format!("{:.2}", t.fees.to_f64())),
        ("Profit factor", opt(r.profit_factor, 2)),
        ("Average win (USDT)", format!("{:.2}", r.avg_win.to_f64())),
        ("Average loss (USDT)", format!("{:.2}", r.avg_loss.to_f64())),
        ("Average R", format!("{:.2}", t.avg_r)),
        ("R min / max", format!("{} / {}", opt(r.r_min, 2), opt(r.r_max, 2))),
        ("Equity (USDT)", format!("{:.2} \u{2192} {:.2}", r.starting_equity, r.ending_equity)),
        ("Max drawdown", format!("{:.2} USDT ({:.2} %)", r.max_drawdown, r.max_drawdown_pct * 100.0)),
    ]
}

fn group_table(h: &mut String, id: &str, title: &str, g: &BTreeMap<String, GroupStats>) {
    let _ = writeln!(h, "<h3>{}</h3>", esc(title));
    if g.is_empty() {
        h.push_str("<p>No trades.</p>\n");
        return;
    }
    let _ = writeln!(
        h,
        "<table id=\"{id}\">\n<tr><th></th><th>trades</th><th>wins</th><th>win %</th>\
         <th>net PnL (USDT)</th><th>fees (USDT)</th><th>avg R</th></tr>"
    );
    for (k, v) in g {
        let _ = writeln!(
            h,
            "<tr><td class=\"key\">{}</td><td>{}</td><td>{}</td><td>{:.1}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td></tr>",
            esc(k),
            v.trades,
            v.wins,
            v.win_rate * 100.0,
            v.net_pnl.to_f64(),
            v.fees.to_f64(),
            v.avg_r
        );
    }
    h.push_str("</table>\n");
}

/// Appends one chart figure; a drawing error becomes a visible notice instead of a panic.
fn figure(
    h: &mut String,
    id: &str,
    caption: &str,
    w: u32,
    hgt: u32,
    draw: impl FnOnce(&DrawingArea<SVGBackend, Shift>) -> ChartResult,
) {
    let _ = writeln!(h, "<figure class=\"chart\" id=\"{id}\">\n<figcaption>{}</figcaption>", esc(caption));
    match svg(w, hgt, draw) {
        Ok(s) => h.push_str(&s),
        Err(e) => {
            let _ = write!(h, "<p class=\"error\">chart not drawn: {}</p>", esc(&e));
        }
    }
    h.push_str("\n</figure>\n");
}

fn svg(w: u32, hgt: u32, draw: impl FnOnce(&DrawingArea<SVGBackend, Shift>) -> ChartResult) -> Result<String, String> {
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (w, hgt)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        draw(&root).map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(buf)
}

/// `lo..hi` widened so that it is never empty and leaves a margin around the data.
fn padded(lo: f64, hi: f64) -> std::ops::Range<f64> {
    let (lo, hi) = if lo.is_finite() && hi.is_finite() { (lo.min(hi), lo.max(hi)) } else { (0.0, 0.0) };
    let pad = ((hi - lo) * 0.08).max(hi.abs().max(lo.abs()) * 1e-6).max(1e-6);
    (lo - pad)..(hi + pad)
}

/// Axis labels for a time axis spanning `span_ms`: seconds when short, dates when long.
fn time_label(ms: TimeMs, span_ms: TimeMs) -> String {
    let fmt = if span_ms <= 86_400_000 { "%H:%M:%S" } else { "%m-%d %H:%M" };
    chrono::DateTime::from_timestamp_millis(ms).map(|t| t.format(fmt).to_string()).unwrap_or_default()
}

/// Points `(time, USDT)` of a curve.
type Curve = Vec<(TimeMs, f64)>;

/// Time buckets a long curve is thinned to: about one per pixel column of the plot.
const THIN_BUCKETS: usize = 1000;
/// Above this many trades the close markers on the equity curve are left out (they would merge).
const MAX_MARKERS: usize = 300;

/// At most four points per time bucket (the first, lowest, highest and last, in time order), so
/// a curve of any number of trades draws the same shape, its extremes included, in a bounded
/// SVG; curves of at most `4 × buckets` points are returned as they are.
fn thin(curve: &[(TimeMs, f64)], buckets: usize) -> Curve {
    let (Some(first), Some(last)) = (curve.first(), curve.last()) else { return Vec::new() };
    if curve.len() <= 4 * buckets.max(1) {
        return curve.to_vec();
    }
    let span = (last.0 - first.0).max(1) as i128;
    let bucket_of = |t: TimeMs| ((t - first.0).max(0) as i128 * buckets as i128 / span) as usize;
    let mut out = Vec::with_capacity(4 * buckets + 1);
    let mut i = 0;
    while i < curve.len() {
        let b = bucket_of(curve[i].0);
        let mut j = i;
        let (mut lo, mut hi) = (i, i);
        while j < curve.len() && bucket_of(curve[j].0) == b {
            if curve[j].1 < curve[lo].1 {
                lo = j;
            }
            if curve[j].1 > curve[hi].1 {
                hi = j;
            }
            j += 1;
        }
        let mut keep = [i, lo, hi, j - 1];
        keep.sort_unstable();
        let mut prev = None;
        for k in keep {
            if prev != Some(k) {
                out.push(curve[k]);
                prev = Some(k);
            }
        }
        i = j;
    }
    out
}

/// Step curves of realised equity and of the drawdown below the running peak (drawn negative).
fn equity_curves(starting_equity: f64, trades: &[TradeRow]) -> (Curve, Curve) {
    let start = trades.iter().map(|t| t.opened_ms.min(t.exit_ms)).min().unwrap_or(0);
    let (mut eq, mut peak) = (starting_equity, starting_equity);
    let mut equity = vec![(start, eq)];
    let mut dd = vec![(start, 0.0)];
    for t in trades {
        let prev_dd = peak - eq;
        equity.push((t.exit_ms, eq));
        dd.push((t.exit_ms, -prev_dd));
        eq += t.net_pnl.to_f64();
        peak = peak.max(eq);
        equity.push((t.exit_ms, eq));
        dd.push((t.exit_ms, -(peak - eq)));
    }
    (equity, dd)
}

fn equity_chart(root: &DrawingArea<SVGBackend, Shift>, starting_equity: f64, trades: &[TradeRow]) -> ChartResult {
    let (equity, dd) = equity_curves(starting_equity, trades);
    let (equity_line, dd_line) = (thin(&equity, THIN_BUCKETS), thin(&dd, THIN_BUCKETS));
    let x0 = equity.iter().map(|p| p.0).min().unwrap_or(0);
    let x1 = equity.iter().map(|p| p.0).max().unwrap_or(0).max(x0 + 1);
    let span = x1 - x0;
    let xs = x0..(x1 + (span / 50).max(1));
    let (upper, lower) = root.split_vertically(EQUITY_HEIGHT * 3 / 5);

    let e_lo = equity.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let e_hi = equity.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    let mut top = ChartBuilder::on(&upper)
        .caption("Equity (USDT)", ("sans-serif", 16))
        .margin(10)
        .x_label_area_size(28)
        .y_label_area_size(80)
        .build_cartesian_2d(xs.clone(), padded(e_lo, e_hi))?;
    top.configure_mesh()
        .x_labels(8)
        .y_labels(6)
        .light_line_style(LIGHT)
        .x_label_formatter(&|x| time_label(*x, span))
        .y_label_formatter(&|y| format!("{y:.2}"))
        .draw()?;
    top.draw_series(LineSeries::new(equity_line, NEUTRAL.stroke_width(2)))?;
    if trades.len() <= MAX_MARKERS {
        top.draw_series(equity.iter().skip(1).step_by(2).map(|p| Circle::new(*p, 3, NEUTRAL.filled())))?;
    }

    let d_lo = dd.iter().map(|p| p.1).fold(0.0, f64::min);
    let mut bottom = ChartBuilder::on(&lower)
        .caption("Drawdown from peak (USDT)", ("sans-serif", 16))
        .margin(10)
        .x_label_area_size(28)
        .y_label_area_size(80)
        .build_cartesian_2d(xs, padded(d_lo, 0.0))?;
    bottom
        .configure_mesh()
        .x_labels(8)
        .y_labels(4)
        .light_line_style(LIGHT)
        .x_label_formatter(&|x| time_label(*x, span))
        .y_label_formatter(&|y| format!("{y:.2}"))
        .draw()?;
    bottom.draw_series(AreaSeries::new(dd_line, 0.0, LOSS.mix(0.35)).border_style(LOSS.stroke_width(2)))?;
    Ok(())
}

/// Vertical bars from 0 to each value, one per label, coloured by `color(value)`; y labels with
/// `decimals` decimals. A zero value draws no bar.
fn bar_chart(
    root: &DrawingArea<SVGBackend, Shift>,
    bars: &[(String, f64)],
    y_desc: &str,
    decimals: usize,
    color: impl Fn(f64) -> RGBColor,
) -> ChartResult {
    let n = bars.len().max(1);
    let lo = bars.iter().map(|b| b.1).fold(0.0, f64::min);
    let hi = bars.iter().map(|b| b.1).fold(0.0, f64::max);
    let mut chart = ChartBuilder::on(root)
        .margin(10)
        .x_label_area_size(36)
        .y_label_area_size(80)
        .build_cartesian_2d(BarAxis(n), padded(lo, hi))?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n)
        .y_labels(6)
        .light_line_style(LIGHT)
        .x_label_formatter(&|x| {
            let i = (x - 0.5).round();
            if i >= 0.0 {
                bars.get(i as usize).map(|b| b.0.clone()).unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_label_formatter(&|y| format!("{y:.decimals$}"))
        .y_desc(y_desc)
        .draw()?;
    chart.draw_series(
        bars.iter()
            .enumerate()
            .filter(|(_, (_, v))| *v != 0.0)
            .map(|(i, (_, v))| Rectangle::new([(i as f64 + 0.1, 0.0), (i as f64 + 0.9, *v)], color(*v).filled())),
    )?;
    Ok(())
}

/// The x axis of a bar chart: bar `i` spans `i..i + 1` and is labelled at its centre (plotters'
/// segmented axes add an empty slot or, with one bar, none at all). The axis is at least
/// [`MIN_SLOTS`] bars wide, centred, so that one or two bars are not drawn as slabs.
struct BarAxis(usize);

const MIN_SLOTS: usize = 4;

impl BarAxis {
    fn span(&self) -> (f64, f64) {
        let pad = MIN_SLOTS.saturating_sub(self.0) as f64 / 2.0;
        (-pad, self.0 as f64 + pad)
    }
}

impl Ranged for BarAxis {
    type FormatOption = NoDefaultFormatting;
    type ValueType = f64;

    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        let (lo, hi) = self.span();
        limit.0 + ((limit.1 - limit.0) as f64 * (v - lo) / (hi - lo)).round() as i32
    }

    fn key_points<H: KeyPointHint>(&self, _hint: H) -> Vec<f64> {
        (0..self.0).map(|i| i as f64 + 0.5).collect()
    }

    fn range(&self) -> std::ops::Range<f64> {
        let (lo, hi) = self.span();
        lo..hi
    }
}

impl ValueFormatter<f64> for BarAxis {
    fn format(v: &f64) -> String {
        format!("{v}")
    }
}

/// Escapes text for HTML element content and double-quoted attributes.
fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '&' => o.push_str("&amp;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use scalper_core::risk::money::Money;

    fn row(symbol: &str, net: &str, r: f64, reason: &str, regime: &str, exit_ms: TimeMs) -> TradeRow {
        TradeRow {
            symbol: symbol.into(),
            category: "normal".into(),
            side: "Buy".into(),
            reason: reason.into(),
            regime: regime.into(),
            global_regime: "GLOBAL_NORMAL".into(),
            opened_ms: exit_ms - 5_000,
            exit_ms,
            net_pnl: Money::parse(net).unwrap(),
            fees: Money::parse("0.25").unwrap(),
            r_multiple: r,
        }
    }

    /// The text between `<figure … id="ID">` and its `</figure>`.
    fn figure_of<'a>(html: &'a str, id: &str) -> &'a str {
        let start = html.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("no figure {id}"));
        let end = html[start..].find("</figure>").unwrap() + start;
        &html[start..end]
    }

    fn sample() -> (BacktestReport, Vec<TradeRow>) {
        let t0 = 1_767_225_600_000; // 2026-01-01T00:00:00Z
        let trades = vec![
            row("AAAUSDT", "12.5", 1.25, "TAKE_PROFIT", "NORMAL", t0 + 10_000),
            row("BBBUSDT", "-4", -0.4, "STOP_LOSS", "PUMP", t0 + 20_000),
            row("AAAUSDT", "-6", -0.6, "STOP_LOSS", "NORMAL", t0 + 30_000),
            row("CCCUSDT", "0.5", 0.05, "TIME_EXIT", "NORMAL", t0 + 40_000),
        ];
        (BacktestReport::from_trades(&trades, 1000.0), trades)
    }

    #[test]
    fn every_chart_is_an_inline_svg_with_drawn_marks() {
        let (rep, trades) = sample();
        let html = render(&rep, &trades, &[]);
        assert!(html.starts_with("<!DOCTYPE html>") && html.trim_end().ends_with("</html>"));
        assert!(!html.contains("class=\"error\""), "a chart failed to draw");
        for id in CHART_IDS {
            let fig = figure_of(&html, id);
            assert_eq!(fig.matches("<svg").count(), 1, "{id}");
            assert!(fig.contains("</svg>"), "{id}");
            let marks = fig.matches("<rect").count() + fig.matches("<polyline").count() + fig.matches("<path").count();
            assert!(marks > 2, "{id}: {marks} marks");
        }
        // The bar charts have one bar per group, green for gains and red for losses: exit reasons
        // are STOP_LOSS (-10), TAKE_PROFIT (+12.5), TIME_EXIT (+0.5).
        let exit = figure_of(&html, "chart-exit");
        for label in ["STOP_LOSS", "TAKE_PROFIT", "TIME_EXIT"] {
            assert!(exit.contains(label), "{label}");
        }
        assert_eq!(exit.matches("fill=\"#C83737\"").count(), 1, "one losing bar");
        assert_eq!(exit.matches("fill=\"#2E8B57\"").count(), 2, "two winning bars");
        // One slot per group, at least 4 slots: the single category's bar is a quarter of the plot.
        let cat = figure_of(&html, "chart-category");
        let bar = &cat[cat.find("fill=\"#2E8B57\"").unwrap()..];
        let bar = &cat[cat[..cat.len() - bar.len()].rfind("<rect").unwrap()..];
        let width: f64 = bar.split("width=\"").nth(1).and_then(|w| w.split('"').next()).unwrap().parse().unwrap();
        assert!((120.0..250.0).contains(&width), "{width}");
        // Empty R buckets draw no bar: the 4 trades fall in 4 of the 10 buckets.
        assert_eq!(figure_of(&html, "chart-r").matches("fill=\"#376EB9\"").count(), 4);
        // The drawdown panel reaches the 10 USDT fall from the 1012.5 peak.
        assert!(figure_of(&html, "chart-equity").contains("max drawdown 10.00 USDT"));
    }

    #[test]
    fn the_summary_table_holds_the_numbers_rounded_for_humans() {
        let (rep, trades) = sample();
        let ctx = vec![("Decision log SHA-256".to_string(), "abc123".to_string())];
        let html = render(&rep, &trades, &ctx);
        let summary = &html[html.find("id=\"summary\"").unwrap()..];
        let summary = &summary[..summary.find("</table>").unwrap()];
        for cell in [
            "<th>Trades</th><td>4</td>",
            "<td>2 / 2</td>",
            "<td>50.0 %</td>",
            "<th>Net PnL after fees (USDT)</th><td>3.00</td>",
            "<th>Fees (USDT)</th><td>1.00</td>",
            "<th>Profit factor</th><td>1.30</td>",
            "<td>1000.00 \u{2192} 1003.00</td>",
            "<td>10.00 USDT (0.99 %)</td>",
            "<th>R min / max</th><td>-0.60 / 1.25</td>",
        ] {
            assert!(summary.contains(cell), "{cell} missing from {summary}");
        }
        assert!(html.contains("<th>Decision log SHA-256</th><td>abc123</td>"));
        let by_regime = &html[html.find("id=\"by-regime\"").unwrap()..];
        assert!(by_regime.contains("<td class=\"key\">PUMP</td><td>1</td><td>0</td><td>0.0</td><td>-4.00</td>"));
    }

    #[test]
    fn the_page_loads_nothing_from_outside_and_escapes_recorded_text() {
        let (_, mut trades) = sample();
        trades[0].symbol = "<b>&\"X".into();
        trades[0].reason = "<script>".into();
        let rep = BacktestReport::from_trades(&trades, 1000.0);
        let html = render(&rep, &trades, &[]);
        let lower = html.to_lowercase();
        for bad in ["<script", "<link", "src=", "url(", "@import", "<img", "<iframe"] {
            assert!(!lower.contains(bad), "{bad} in the page");
        }
        assert!(html.contains("&lt;b&gt;&amp;&quot;X"));
        assert!(html.contains("&lt;script&gt;"));
        // The only URL is the SVG namespace.
        let urls = lower.matches("http").count();
        assert_eq!(urls, lower.matches("http://www.w3.org/2000/svg").count());
    }

    #[test]
    fn an_empty_backtest_is_a_valid_page_that_says_so() {
        let rep = BacktestReport::from_trades(&[], 10_000.0);
        let html = render(&rep, &[], &[]);
        assert!(html.starts_with("<!DOCTYPE html>") && html.trim_end().ends_with("</html>"));
        assert!(html.contains("id=\"no-trades\""));
        assert!(html.contains("<th>Trades</th><td>0</td>"));
        assert!(html.contains("<th>Profit factor</th><td>n/a</td>"));
        assert!(!html.contains("<svg"));
        assert_eq!(html.matches("<table").count(), html.matches("</table>").count());
    }

    #[test]
    fn a_long_backtest_is_thinned_to_a_bounded_page_that_keeps_the_extremes() {
        let t0 = 1_767_225_600_000;
        // 50 000 trades over a day: a slow rise, one deep loss in the middle, a slow rise again.
        let trades: Vec<TradeRow> = (0..50_000)
            .map(|i| {
                let net = if i == 25_000 { "-900" } else { "0.01" };
                row("AAAUSDT", net, 0.1, "TAKE_PROFIT", "NORMAL", t0 + i as i64 * 1_700)
            })
            .collect();
        let rep = BacktestReport::from_trades(&trades, 1000.0);
        let html = render(&rep, &trades, &[]);
        assert!(html.len() < 300_000, "{} bytes", html.len());
        assert!(!figure_of(&html, "chart-equity").contains("<circle"), "no per-trade markers");
        let (eq, dd) = equity_curves(1000.0, &trades);
        let (teq, tdd) = (thin(&eq, THIN_BUCKETS), thin(&dd, THIN_BUCKETS));
        assert!(teq.len() <= 4 * THIN_BUCKETS + 4 && tdd.len() <= 4 * THIN_BUCKETS + 4, "{}", teq.len());
        let min = |c: &[(TimeMs, f64)]| c.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
        let max = |c: &[(TimeMs, f64)]| c.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
        assert_eq!((min(&teq), max(&teq)), (min(&eq), max(&eq)));
        assert_eq!(min(&tdd), min(&dd));
        assert!((min(&tdd) + 900.0).abs() < 1e-6, "{}", min(&tdd));
        assert_eq!((teq.first(), teq.last()), (eq.first(), eq.last()));
        assert!(teq.windows(2).all(|w| w[0].0 <= w[1].0), "time order kept");
        // Short curves are kept whole.
        assert_eq!(thin(&eq[..100], THIN_BUCKETS), eq[..100].to_vec());
    }

    #[test]
    fn the_equity_curve_steps_at_each_close_and_the_drawdown_is_measured_from_the_peak() {
        let (_, trades) = sample();
        let (eq, dd) = equity_curves(1000.0, &trades);
        let levels: Vec<f64> = eq.iter().skip(2).step_by(2).map(|p| p.1).collect();
        assert_eq!(levels, vec![1012.5, 1008.5, 1002.5, 1003.0]);
        assert_eq!(eq[0], (trades[0].opened_ms, 1000.0));
        let worst = dd.iter().map(|p| p.1).fold(0.0, f64::min);
        assert!((worst + 10.0).abs() < 1e-9, "{worst}");
        assert!(padded(0.0, 0.0).start < 0.0 && padded(0.0, 0.0).end > 0.0);
    }
}
