//! Checks of the monitoring files: `promtool`/`amtool` validation when the tools are installed,
//! and pure-Rust checks that every metric referenced by the alert rules and the Grafana
//! dashboards exists in the engine's metrics registry, with consistent enum mappings.

use scalper::monitoring::metrics::{codes, Metrics};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn dashboards() -> Vec<(String, serde_json::Value)> {
    let dir = root().join("grafana/dashboards");
    let mut out = Vec::new();
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "json") {
            let text = std::fs::read_to_string(&p).unwrap();
            let v: serde_json::Value =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: invalid JSON: {e}", p.display()));
            out.push((p.file_name().unwrap().to_string_lossy().into_owned(), v));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(out.len() >= 5, "expected the five dashboards, found {}", out.len());
    out
}

/// `scalper_*` identifiers in a text (PromQL is scanned as text).
fn metric_tokens(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let b = text.as_bytes();
    let mut i = 0;
    while let Some(pos) = text[i..].find("scalper_") {
        let start = i + pos;
        let preceded_by_ident = start > 0 && (b[start - 1].is_ascii_alphanumeric() || b[start - 1] == b'_');
        let mut end = start;
        while end < b.len() && (b[end].is_ascii_alphanumeric() || b[end] == b'_' || b[end] == b':') {
            end += 1;
        }
        if !preceded_by_ident {
            out.insert(text[start..end].trim_end_matches(':').to_string());
        }
        i = end;
    }
    out
}

/// True when `name` is a registered family (or a histogram's `_bucket`/`_sum`/`_count` series).
fn known(families: &BTreeSet<String>, name: &str) -> bool {
    families.contains(name)
        || ["_bucket", "_sum", "_count"]
            .iter()
            .any(|s| name.strip_suffix(s).is_some_and(|base| families.contains(base)))
}

fn walk<'a>(v: &'a serde_json::Value, key: Option<&str>, f: &mut dyn FnMut(Option<&str>, &'a serde_json::Value)) {
    f(key, v);
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                walk(x, Some(k), f);
            }
        }
        serde_json::Value::Array(a) => {
            for x in a {
                walk(x, key, f);
            }
        }
        _ => {}
    }
}

/// Every PromQL string of a dashboard: target and annotation `expr`s and variable
/// `definition`/`query`s (the datasource variable's `query` is a plugin type, not PromQL).
fn dashboard_queries(d: &serde_json::Value) -> Vec<String> {
    let mut d = d.clone();
    if let Some(list) = d["templating"]["list"].as_array_mut() {
        list.retain(|v| v["type"] != "datasource");
    }
    let mut out = Vec::new();
    walk(&d, None, &mut |k, v| {
        if let (Some("expr" | "definition" | "query"), Some(s)) = (k, v.as_str()) {
            out.push(s.to_string());
        }
    });
    out
}

#[test]
fn alert_rules_reference_only_exported_metrics() {
    let m = Metrics::new();
    let families = m.family_names();
    let text = read("prometheus/alerts.yml");
    let used = metric_tokens(&text);
    assert!(used.len() >= 15, "suspiciously few metrics found: {used:?}");
    let unknown: Vec<_> = used.iter().filter(|n| !known(families, n)).collect();
    assert!(unknown.is_empty(), "alerts.yml references metrics the engine does not export: {unknown:?}");
    // Each rule's expression uses at least one engine metric (or the scrape's `up`).
    let exprs: Vec<&str> = text.lines().filter_map(|l| l.trim().strip_prefix("expr:")).collect();
    assert!(exprs.len() >= 15);
    for e in exprs {
        assert!(!metric_tokens(e).is_empty() || e.contains("up{"), "rule without an engine metric: {e}");
    }
    // The required alerts exist.
    for a in [
        "ScalperFeedDown",
        "ScalperDegraded",
        "ScalperRiskOff",
        "ScalperIntegrityBroken",
        "ScalperDailyLossNearLimit",
        "ScalperHeatNearMax",
        "ScalperGlobalPanic",
        "ScalperErrorRateSpike",
        "ScalperStaleMarketData",
    ] {
        assert!(text.contains(&format!("alert: {a}\n")), "missing alert {a}");
    }
}

#[test]
fn dashboards_reference_only_exported_metrics() {
    let m = Metrics::new();
    let families = m.family_names();
    let mut all_used = BTreeSet::new();
    for (name, d) in dashboards() {
        let queries = dashboard_queries(&d);
        assert!(!queries.is_empty(), "{name}: no queries");
        for q in &queries {
            let used = metric_tokens(q);
            assert!(!used.is_empty(), "{name}: query without an engine metric: {q}");
            for u in &used {
                assert!(known(families, u), "{name}: unknown metric {u} in {q}");
            }
            all_used.extend(used);
        }
    }
    // The per-symbol families issue 7 lists are all on some dashboard.
    for f in [
        "scalper_symbol_price",
        "scalper_symbol_spread_ratio",
        "scalper_symbol_book_imbalance",
        "scalper_symbol_wall_score",
        "scalper_symbol_spoofing_score",
        "scalper_symbol_pump_state",
        "scalper_symbol_regime",
        "scalper_symbol_volatility_ratio",
        "scalper_symbol_flow_delta",
        "scalper_symbol_min_move_ratio",
        "scalper_symbol_news_impact",
        "scalper_symbol_score",
        "scalper_symbol_state",
        "scalper_symbol_position_size",
        "scalper_symbol_position_pnl_usdt",
        "scalper_symbol_position_r",
    ] {
        assert!(all_used.contains(f), "{f} is on no dashboard");
    }
}

#[test]
fn dashboards_are_well_formed() {
    let ds_yaml = read("grafana/provisioning/datasources/prometheus.yaml");
    let mut uids = BTreeSet::new();
    for (name, d) in dashboards() {
        let uid = d["uid"].as_str().unwrap_or_else(|| panic!("{name}: no uid"));
        assert!(uids.insert(uid.to_string()), "duplicate uid {uid}");
        assert_eq!(format!("{uid}.json"), name);
        let panels = d["panels"].as_array().unwrap_or_else(|| panic!("{name}: no panels"));
        let mut ids = BTreeSet::new();
        for p in panels {
            assert!(ids.insert(p["id"].as_i64().unwrap()), "{name}: duplicate panel id");
            let g = &p["gridPos"];
            let (x, w) = (g["x"].as_i64().unwrap(), g["w"].as_i64().unwrap());
            assert!(x >= 0 && w > 0 && x + w <= 24, "{name}: panel {} outside the grid", p["title"]);
            for t in p["targets"].as_array().into_iter().flatten() {
                assert!(t["expr"].as_str().is_some_and(|e| !e.trim().is_empty()), "{name}: empty target");
            }
        }
        // Every Prometheus datasource reference is the `datasource` variable, never a fixed uid,
        // so the dashboards import into any Grafana.
        let mut prom_refs = 0;
        walk(&d, None, &mut |k, v| {
            if k == Some("datasource") && v["type"] == "prometheus" {
                assert_eq!(v["uid"], "${datasource}", "{name}: fixed datasource {v}");
                prom_refs += 1;
            }
            if let Some(s) = v.as_str() {
                assert!(!s.contains("scalper-prometheus"), "{name}: fixed datasource uid in {s}");
            }
        });
        assert!(prom_refs > 0, "{name}: no Prometheus datasource reference");
        let vars = d["templating"]["list"].as_array().unwrap_or_else(|| panic!("{name}: no variables"));
        let ds =
            vars.iter().find(|v| v["name"] == "datasource").unwrap_or_else(|| panic!("{name}: no datasource variable"));
        assert_eq!((&ds["type"], &ds["query"]), (&"datasource".into(), &"prometheus".into()), "{name}: {ds}");
        let engine =
            vars.iter().find(|v| v["name"] == "engine").unwrap_or_else(|| panic!("{name}: no engine variable"));
        assert_eq!(engine["datasource"]["uid"], "${datasource}", "{name}");
        let def = engine["definition"].as_str().unwrap_or_default();
        assert!(
            def.starts_with("label_values(scalper_") && def.ends_with(", engine)"),
            "{name}: engine variable {def}"
        );
        assert_eq!(engine["query"]["query"].as_str(), Some(def), "{name}");
        assert_ne!(engine["includeAll"], true, "{name}: one engine at a time, so aggregations never mix engines");
    }
    // The provisioned datasource still exists for the bundled setup (the variable defaults to it).
    assert!(ds_yaml.contains("type: prometheus"));
    for u in ["scalper-global", "scalper-hotlist", "scalper-trades", "scalper-events", "scalper-symbol"] {
        assert!(uids.contains(u), "missing dashboard {u}");
    }
    // The symbol dashboard has a `symbol` variable and every panel query is filtered by it.
    let (_, sym) = dashboards().into_iter().find(|(n, _)| n == "scalper-symbol.json").unwrap();
    let vars = sym["templating"]["list"].as_array().unwrap();
    assert!(vars.iter().any(|v| v["name"] == "symbol"), "no symbol variable");
    for p in sym["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().into_iter().flatten() {
            let e = t["expr"].as_str().unwrap();
            assert!(e.contains("symbol=\"$symbol\""), "unfiltered query on the symbol dashboard: {e}");
        }
    }
    let prov = read("grafana/provisioning/dashboards/scalper.yaml");
    assert!(prov.contains("type: file") && prov.contains("path:"));
}

/// The metric selectors of a PromQL text: `(name, label matchers inside the braces or "")`.
fn selectors(expr: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = expr;
    while let Some(p) = rest.find("scalper_") {
        let b = rest.as_bytes();
        let ident = p > 0 && (b[p - 1].is_ascii_alphanumeric() || b[p - 1] == b'_');
        let tail = &rest[p..];
        let end = tail.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':')).unwrap_or(tail.len());
        let after = &tail[end..];
        let matchers = match after.strip_prefix('{') {
            Some(m) => m.split_once('}').map(|(m, _)| m.to_string()).unwrap_or_default(),
            None => String::new(),
        };
        if !ident {
            out.push((tail[..end].to_string(), matchers));
        }
        rest = after;
    }
    out
}

/// Several engines side by side: every selector of every panel, annotation and variable query
/// (except the engine variable's own) is filtered by `engine=~"$engine"`, and every aggregation
/// or vector matching keeps the `engine` label, so a filtered dashboard can only show that
/// engine's series.
#[test]
fn every_dashboard_query_is_filtered_by_the_engine_variable() {
    let mut n = 0;
    for (name, d) in dashboards() {
        for q in dashboard_queries(&d) {
            if q.ends_with(", engine)") {
                continue;
            }
            for (metric, matchers) in selectors(&q) {
                assert!(matchers.contains(r#"engine=~"$engine""#), "{name}: {metric} not filtered by engine in {q}");
                n += 1;
            }
            for clause in ["by (", "on ("] {
                for (i, _) in q.match_indices(clause) {
                    assert!(q[i + clause.len()..].starts_with("engine"), "{name}: `{clause}` without engine in {q}");
                }
            }
            for agg in ["sum(", "max(", "min(", "avg(", "count("] {
                assert!(!q.contains(agg), "{name}: aggregation over all labels (drops engine) in {q}");
            }
        }
    }
    assert!(n >= 100, "only {n} selectors checked");
    assert_eq!(
        selectors(r#"sum by (engine) (rate(scalper_a_total{engine=~"$engine",x="1"}[1m])) / scalper_b"#),
        [("scalper_a_total".to_string(), r#"engine=~"$engine",x="1""#.to_string()), ("scalper_b".into(), "".into())]
    );
}

/// The event feed in Grafana: the global, symbol and events dashboards annotate pump, news and
/// spoof events (and more) from `scalper_events_total`; the symbol dashboard's annotations are
/// the selected symbol's; the events dashboard shows the feed in panels instead of a text
/// pointing at the CLI.
#[test]
fn event_annotations_and_the_feed_panel() {
    let all = dashboards();
    let get = |uid: &str| all.iter().find(|(n, _)| n == &format!("{uid}.json")).map(|(_, d)| d).unwrap();
    for uid in ["scalper-global", "scalper-symbol", "scalper-events"] {
        let ann: Vec<&str> = get(uid)["annotations"]["list"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| {
                assert!(a["builtIn"] == 1 || a["datasource"]["uid"] == "${datasource}", "{uid}: {a}");
                a["expr"].as_str()
            })
            .collect();
        for kind in ["pump", "news", "spoof", "regime", "trade", "engine"] {
            let sel = format!(r#"kind="{kind}""#);
            let a = ann.iter().find(|e| e.contains("scalper_events_total") && e.contains(&sel));
            let a = a.unwrap_or_else(|| panic!("{uid}: no {kind} annotation in {ann:?}"));
            if uid == "scalper-symbol" && kind != "engine" {
                assert!(a.contains(r#"symbol="$symbol""#), "{uid}: {a}");
            }
        }
    }
    let events = get("scalper-events");
    let panels = events["panels"].as_array().unwrap();
    assert!(panels.iter().all(|p| p["type"] != "text"), "the events dashboard still has a text panel");
    let feed: Vec<_> = panels
        .iter()
        .filter(|p| dashboard_queries(p).iter().any(|q| q.contains("scalper_events_total") && q.contains("symbol")))
        .collect();
    assert!(feed.iter().any(|p| p["type"] == "table"), "no event feed table");
    let m = Metrics::new();
    assert!(m.family_names().contains("scalper_events_total"));
}

/// Alerts of several engines stay apart: aggregations keep `engine` and every summary names it.
#[test]
fn alerts_name_their_engine() {
    let text = read("prometheus/alerts.yml");
    for (i, _) in text.match_indices("by (") {
        assert!(text[i + 4..].starts_with("engine"), "aggregation without engine: {}", &text[i..i + 40]);
    }
    let summaries: Vec<&str> = text.lines().filter(|l| l.trim().starts_with("summary:")).collect();
    assert_eq!(summaries.len(), text.matches("- alert:").count(), "every alert has a summary");
    for s in summaries {
        assert!(s.contains("{{ $labels.engine }}"), "summary without the engine: {s}");
    }
    let am = read("prometheus/alertmanager.yml");
    assert!(am.contains("group_by: [alertname, engine, instance]"));
}

/// The code tables of the enum gauges and the value mappings of the dashboards agree: every
/// mapping that names a label of a table uses that table's code.
#[test]
fn dashboard_value_mappings_match_the_metric_codes() {
    let mut code_of: BTreeMap<&str, BTreeSet<i64>> = BTreeMap::new();
    for t in [codes::MODE, codes::GLOBAL_REGIME, codes::REGIME, codes::PUMP, codes::STATE, codes::FEED] {
        for (l, c) in t {
            code_of.entry(l).or_default().insert(*c);
        }
    }
    let mut seen = BTreeSet::new();
    for (name, d) in dashboards() {
        walk(&d, None, &mut |k, v| {
            if k != Some("mappings") {
                return;
            }
            for m in v.as_array().into_iter().flatten() {
                for (code, o) in m["options"].as_object().into_iter().flatten() {
                    let Some(text) = o["text"].as_str() else { continue };
                    if let Some(codes) = code_of.get(text) {
                        let c: i64 = code.parse().unwrap();
                        assert!(codes.contains(&c), "{name}: {text} mapped from {c}, the metric uses {codes:?}");
                        seen.insert(text.to_string());
                    }
                }
            }
        });
    }
    for l in code_of.keys() {
        assert!(seen.contains(*l), "label {l} has no value mapping on any dashboard");
    }
}

#[test]
fn prometheus_scrapes_the_engine_and_loads_the_rules() {
    let p = read("prometheus/prometheus.yml");
    assert!(p.contains("\"127.0.0.1:9464\""), "the engine's /metrics address");
    assert!(p.contains("- alerts.yml"));
    assert!(p.contains("metrics_path: /metrics"));
    let am = read("prometheus/alertmanager.yml");
    assert!(am.contains("route:") && am.contains("receivers:"));
}

fn tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file())
}

fn run_tool(tool: &Path, args: &[&str]) {
    let out = Command::new(tool).args(args).current_dir(root()).output().unwrap();
    assert!(
        out.status.success(),
        "{} {args:?} failed:\n{}\n{}",
        tool.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn promtool_validates_config_rules_and_rule_tests() {
    let Some(promtool) = tool("promtool") else {
        println!("NOTICE: promtool not on PATH; skipping promtool check config/rules (CI installs it)");
        return;
    };
    run_tool(&promtool, &["check", "config", "prometheus/prometheus.yml"]);
    run_tool(&promtool, &["check", "rules", "prometheus/alerts.yml"]);
    run_tool(&promtool, &["test", "rules", "prometheus/alerts_test.yml"]);
}

#[test]
fn amtool_validates_the_alertmanager_config() {
    let Some(amtool) = tool("amtool") else {
        println!("NOTICE: amtool not on PATH; skipping amtool check-config (CI installs it)");
        return;
    };
    run_tool(&amtool, &["check-config", "prometheus/alertmanager.yml"]);
}

#[test]
fn token_scanner_finds_names_in_promql() {
    let t = metric_tokens(
        r#"histogram_quantile(0.99, sum by (le) (rate(scalper_tick_latency_seconds_bucket[5m]))) > 0 and xscalper_no"#,
    );
    assert_eq!(t.into_iter().collect::<Vec<_>>(), ["scalper_tick_latency_seconds_bucket"]);
    let m = Metrics::new();
    assert!(known(m.family_names(), "scalper_tick_latency_seconds_bucket"));
    assert!(!known(m.family_names(), "scalper_nope_total"));
}
