//! One line per engine event for people (`scalperctl events`): time, icon, symbol, kind and what
//! happened in words. The record bodies are the ones the core writes (`crates/core/src/engine`:
//! `core.rs` and `core/`, `desk.rs` and `desk/`, and the intelligence layer's `IntelEvent`s); a
//! kind without its own sentence is shown as `key=value` pairs of its top-level and nested fields,
//! never as a JSON object.

use super::bus::EventRecord;
use super::format;
use serde_json::Value;

/// Longest string value shown in a `key=value` pair (longer ones end with `…`).
const MAX_VALUE_CHARS: usize = 80;
/// Most `key=value` pairs shown for one event (the rest are counted as `(+N more)`).
const MAX_PAIRS: usize = 10;

/// The event's kind: the body's `event` field, else (intelligence events) its `kind`, with a wall
/// judged SPOOFING named `SPOOF` and any other wall `WALL`; `?` when the body names none.
pub fn kind_of(e: &EventRecord) -> String {
    if !e.event.is_empty() {
        return e.event.clone();
    }
    match e.body.get("kind").and_then(Value::as_str) {
        Some("WALL") if e.body.get("outcome").and_then(Value::as_str) == Some("SPOOFING") => "SPOOF".into(),
        Some(k) if !k.is_empty() => k.to_string(),
        _ => "?".into(),
    }
}

/// The icon of a kind: an emoji, or with `ascii` a two-character tag (both two cells wide).
pub fn icon(kind: &str, ascii: bool) -> &'static str {
    let (emoji, tag) = match kind {
        "PUMP" => ("🔥", "^^"),
        k if k.starts_with("NEWS") => ("🚨", "!!"),
        "SPOOF" => ("🎭", "~~"),
        "WALL" => ("🧱", "##"),
        "REGIME" | "GLOBAL_REGIME" => ("🧭", "<>"),
        "STATE" => ("🔁", "->"),
        "ENTRY" | "ENTRY_REVIEW" => ("🎯", ">>"),
        "FILL" => ("💱", "$$"),
        "PARTIAL_EXIT" | "BREAK_EVEN" => ("💰", "$<"),
        "PANIC_CLOSE_ALL" | "PANIC_CONFIRMED" | "KILL_SWITCH" => ("🛑", "XX"),
        k if k.starts_with("FEED") || k == "PRIVATE_FEED" => ("📡", "))"),
        k if k.starts_with("STORAGE") => ("💾", "[]"),
        k if k.starts_with("MODE") => ("🔧", "<>"),
        "PAUSED" => ("💤", "||"),
        "RESUMED" => ("🟢", "|>"),
        "BLACKLISTED" | "UNBLACKLISTED" => ("🚫", "--"),
        k if k.starts_with("DEGRADED") || k == "SHED" || k == "LAGGED" => ("🐢", ".."),
        "INTEGRITY_BROKEN" => ("💔", "!X"),
        k if k.starts_with("ORDER") || k == "DRY_RUN_ORDER" || k.starts_with("STOP_") || k.starts_with("ENTRY_") => {
            ("📨", "=>")
        }
        _ => ("🔹", "* "),
    };
    if ascii {
        tag
    } else {
        emoji
    }
}

/// One event as a line: `time  icon  symbol  kind  what happened` (time as [`format::time`]
/// against `now_ms`; `-` for a global event's symbol).
pub fn render(e: &EventRecord, now_ms: i64, ascii: bool) -> String {
    let kind = kind_of(e);
    let line = format!(
        "{}  {} {:<12} {:<16} {}",
        format::time(e.ts_ms, now_ms),
        icon(&kind, ascii),
        e.symbol.as_deref().unwrap_or("-"),
        kind,
        describe(&kind, &e.body)
    );
    line.trim_end().to_string()
}

/// What an event of `kind` with this body says, in words.
pub fn describe(kind: &str, b: &Value) -> String {
    let s = |k: &str| text(b.get(k));
    let transition = || format!("{} → {}", s("from"), s("to"));
    let with_reason = |head: String| match b.get("reason").map(|r| text(Some(r))) {
        Some(r) if !r.is_empty() => format!("{head}: {r}"),
        _ => head,
    };
    match kind {
        "PUMP" => {
            let mut out = with_reason(transition());
            if let Some(ev) = b.get("evidence") {
                let mut extra = Vec::new();
                if let Some(r) = number(ev.get("ret_30s_pct")) {
                    extra.push(format!("30 s {}%", format::signed(r, 2)));
                }
                if let Some(v) = number(ev.get("vol_ratio")) {
                    extra.push(format!("volume ×{}", format::fixed(v, 1)));
                }
                if let Some(p) = number(ev.get("peak_price")).filter(|p| *p > 0.0) {
                    extra.push(format!("peak {}", format::plain(p)));
                }
                if let Some(d) = number(ev.get("drawdown_pct")).filter(|d| *d != 0.0) {
                    extra.push(format!("drawdown {}%", format::fixed(d, 2)));
                }
                if !extra.is_empty() {
                    out.push_str(&format!(" ({})", extra.join(", ")));
                }
            }
            out
        }
        "SPOOF" | "WALL" => wall(b),
        "REGIME" | "GLOBAL_REGIME" => with_reason(transition()),
        "STATE" => state(b),
        "ENTRY" => {
            let mut out = format!(
                "{} {} @ {}, stop {}, tp1 {}, tp2 {}, risk {} USDT, notional {} USDT",
                side_word(&s("side")),
                s("qty"),
                s("entry"),
                s("stop"),
                s("tp1"),
                s("tp2"),
                money(b.get("risk")),
                money(b.get("notional"))
            );
            match b.get("market") {
                Some(Value::Bool(true)) => out.push_str(", at market"),
                Some(Value::String(m)) if !m.is_empty() => out.push_str(&format!(", market {m}")),
                _ => {}
            }
            out
        }
        "ENTRY_REVIEW" => {
            let d = b.get("decision").unwrap_or(&Value::Null);
            let what = match d {
                Value::Object(_) => text(d.get("decision")),
                other => text(Some(other)),
            }
            .replace('_', " ");
            let mut out = format!("maker entry: {what}");
            if let Some(l) = d.get("limit").filter(|l| !l.is_null()) {
                out.push_str(&format!(" (limit {})", text(Some(l))));
            }
            if b.get("setup_ok").and_then(Value::as_bool) == Some(false) {
                out.push_str(", setup gone");
            }
            out
        }
        "ENTRY_REFUSED" => format!("entry refused: {}", s("reason")),
        "ENTRY_CANCELLED" => {
            let mut out = format!("entry order {} ended: {}", s("client_id"), s("reason"));
            if b.get("remaining").is_some() {
                out.push_str(&format!(", {} unfilled", s("remaining")));
            }
            out
        }
        "STOP_TRIGGERED" => format!("stop {} triggered at {}", s("client_id"), s("price")),
        "FILL" => {
            let f = b.get("fill").unwrap_or(&Value::Null);
            let g = |k: &str| text(f.get(k));
            let mut out = format!(
                "{} {} @ {} {}, fee {} USDT",
                side_word(&g("side")),
                g("qty"),
                g("price"),
                g("liquidity").to_lowercase(),
                money(f.get("fee"))
            );
            if f.get("reduce_only").and_then(Value::as_bool) == Some(true) {
                out.push_str(", reduce-only");
            }
            if let Some(p) = number(f.get("venue_pnl")) {
                out.push_str(&format!(", pnl {} USDT", format::pnl(p)));
            }
            out.push_str(&format!(" ({})", g("client_id")));
            out
        }
        "PARTIAL_EXIT" => format!(
            "realized {} USDT ({})",
            number(b.get("realized")).map(format::pnl).unwrap_or_else(|| "-".into()),
            s("client_id")
        ),
        "BREAK_EVEN" => format!("stop moved to {} (mark {})", s("stop"), s("mark")),
        "NEWS_FLAG_SET" => format!(
            "{} impact {} until {}",
            s("news_type"),
            number(b.get("impact")).map(|v| format::fixed(v, 2)).unwrap_or_else(|| "-".into()),
            number(b.get("expires_ms")).map(|v| format::datetime(v as i64)).unwrap_or_else(|| "-".into())
        ),
        "NEWS_FLAG_CLEARED" => "news flag cleared".into(),
        "NEWS_FLAG_EXPIRED" => "news flag expired".into(),
        "NEWS_LISTING" => format!("new listing (category {})", s("category")),
        "MODE_CHANGED" => transition(),
        "MODE_REFUSED" => format!("{} refused: {}", s("to"), s("reason")),
        "PAUSED" => "new entries paused".into(),
        "RESUMED" => "new entries resumed".into(),
        "PANIC_CLOSE_ALL" => "panic: cancel every order, close every position, block new trades".into(),
        "PANIC_CONFIRMED" => format!("panic confirmed flat by the {}", s("by")),
        "KILL_SWITCH" => format!("kill switch engaged: {}", s("reason")),
        "BLACKLISTED" => "blocked from new signals".into(),
        "UNBLACKLISTED" => "unblocked".into(),
        "FEED_STATE" => format!("public feed {}", s("state")),
        "PRIVATE_FEED" => format!("private feed {}", s("state")),
        "FEED_RISK_OFF" => format!(
            "feed down for {} s: no new trades",
            number(b.get("down_ms")).map(|v| format::fixed(v / 1000.0, 1)).unwrap_or_else(|| "-".into())
        ),
        "FEED_RISK_OFF_EXIT" => "feed back: trading allowed again".into(),
        "STORAGE_UP" => format!("storage writes again ({})", s("detail")),
        "STORAGE_DOWN" => format!("storage cannot write: {}", s("detail")),
        "DEGRADED_ENTER" => format!(
            "tick took {} ms (budget {} ms): shedding load",
            number(b.get("tick_ns")).map(|v| format::fixed(v / 1e6, 1)).unwrap_or_else(|| "-".into()),
            number(b.get("budget_ns")).map(|v| format::fixed(v / 1e6, 1)).unwrap_or_else(|| "-".into())
        ),
        "DEGRADED_EXIT" => "tick time back within budget".into(),
        "BASELINE_SEEDED" => {
            let mut out = format!("baselines seeded from {}", s("source"));
            if let Some(k) = number(b.get("klines")) {
                out.push_str(&format!(", {k} klines"));
            }
            if let Some(sig) = number(b.get("sigma_60s_pct")) {
                out.push_str(&format!(", σ60s {}%", format::fixed(sig, 3)));
            }
            out
        }
        "ORDER_SENT" | "DRY_RUN_ORDER" => b.get("intent").map(intent).unwrap_or_else(|| pairs(b)),
        _ => pairs(b),
    }
}

/// `Buy` → `long`, `Sell` → `short`, else as given.
fn side_word(s: &str) -> String {
    match s {
        "Buy" => "long".into(),
        "Sell" => "short".into(),
        other => other.to_string(),
    }
}

fn wall(b: &Value) -> String {
    let s = |k: &str| text(b.get(k));
    let side = match s("side").as_str() {
        "Buy" => "bid",
        "Sell" => "ask",
        _ => "?",
    };
    let ratio = number(b.get("size_ratio")).map(|r| format!(" ({}× median)", format::fixed(r, 1))).unwrap_or_default();
    let life = number(b.get("lifetime_ms")).map(|v| format::fixed(v / 1000.0, 1)).unwrap_or_else(|| "-".into());
    if b.get("outcome").and_then(Value::as_str) == Some("SPOOFING") {
        format!(
            "{side} wall {} @ {}{ratio} pulled {} ticks from the touch after {life} s, {} left, {} traded",
            s("size"),
            s("price"),
            s("distance_ticks"),
            s("remaining"),
            s("eaten")
        )
    } else {
        format!(
            "{side} wall {} @ {}{ratio} {}: {} traded in {life} s",
            s("size"),
            s("price"),
            s("outcome").to_lowercase(),
            s("eaten")
        )
    }
}

fn state(b: &Value) -> String {
    let t = b.get("transition").unwrap_or(&Value::Null);
    let g = |k: &str| text(t.get(k));
    let mut out = format!("{} → {}", g("from"), g("to"));
    let side = g("side");
    if !side.is_empty() {
        out.push_str(&format!(" {}", side_word(&side)));
    }
    if let Some(r) = t.get("reason") {
        let (why, detail) = match r {
            Value::Object(_) => (text(r.get("reason")), text(r.get("detail"))),
            other => (text(Some(other)), String::new()),
        };
        out.push_str(&format!(": {}", why.to_lowercase().replace('_', " ")));
        if !detail.is_empty() {
            out.push_str(&format!(" ({})", detail.to_lowercase().replace('_', " ")));
        }
    }
    if let Some(sc) = b.get("input").and_then(|i| number(i.get("score"))) {
        out.push_str(&format!(", score {}", format::score(sc)));
    }
    out
}

fn intent(i: &Value) -> String {
    let g = |k: &str| text(i.get(k));
    match i.get("intent").and_then(Value::as_str) {
        Some("place") => {
            let k = i.get("kind").unwrap_or(&Value::Null);
            let at = match k.get("type").and_then(Value::as_str) {
                Some("limit") => format!(" limit @ {} {}", text(k.get("price")), text(k.get("tif"))),
                Some("stop_market") => format!(" stop @ {}", text(k.get("trigger"))),
                Some(other) => format!(" {}", other.replace('_', " ")),
                None => String::new(),
            };
            let ro = if i.get("reduce_only").and_then(Value::as_bool) == Some(true) { ", reduce-only" } else { "" };
            format!("place {} {}{at}{ro} ({})", g("side"), g("qty"), g("client_id"))
        }
        Some(other) => {
            let rest = pairs(i);
            format!("{other} {rest}").trim_end().to_string()
        }
        None => pairs(i),
    }
}

/// `key=value` pairs of a body (nested objects as `outer.inner=value`), without the fields every
/// line already shows (`event`, `kind`, `ts_ms`, `symbol`, `intent`).
pub fn pairs(b: &Value) -> String {
    let mut out = Vec::new();
    match b {
        Value::Object(_) => flatten("", b, &mut out),
        other => out.push(text(Some(other))),
    }
    let more = out.len().saturating_sub(MAX_PAIRS);
    out.truncate(MAX_PAIRS);
    if more > 0 {
        out.push(format!("(+{more} more)"));
    }
    out.join(" ")
}

fn flatten(prefix: &str, v: &Value, out: &mut Vec<String>) {
    let Value::Object(m) = v else { return };
    for (k, v) in m {
        if prefix.is_empty() && matches!(k.as_str(), "event" | "kind" | "ts_ms" | "symbol" | "intent") {
            continue;
        }
        let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
        match v {
            Value::Object(_) => flatten(&key, v, out),
            Value::Null => {}
            _ => out.push(format!("{key}={}", text(Some(v)))),
        }
    }
}

/// A value as text: strings bare (shortened), numbers at up to 8 decimals, arrays of scalars
/// joined by commas (or counted when long or nested), `null` and absent as the empty string.
fn text(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => shorten(s),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Number(n)) => match n.as_i64() {
            Some(i) => i.to_string(),
            None => n.as_f64().map(format::plain).unwrap_or_default(),
        },
        Some(Value::Array(a)) if a.is_empty() => "none".into(),
        Some(Value::Array(a)) if a.len() <= 5 && a.iter().all(|x| !x.is_object() && !x.is_array()) => {
            shorten(&a.iter().map(|x| text(Some(x))).collect::<Vec<_>>().join(","))
        }
        Some(Value::Array(a)) => format!("[{} items]", a.len()),
        Some(Value::Object(m)) => format!("{{{} fields}}", m.len()),
    }
}

fn shorten(s: &str) -> String {
    if s.chars().count() <= MAX_VALUE_CHARS {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(MAX_VALUE_CHARS - 1).collect();
        t.push('…');
        t
    }
}

/// A number given as JSON number or as a decimal string (prices, quantities and money are
/// written as exact decimal strings).
fn number(v: Option<&Value>) -> Option<f64> {
    match v? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|x: &f64| x.is_finite())
}

fn money(v: Option<&Value>) -> String {
    number(v).map(format::money).unwrap_or_else(|| "-".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// 2026-12-02 15:14:23.143 UTC, the time of the demo run the bodies below come from.
    const T: i64 = 1_796_224_463_143;

    fn rec(symbol: Option<&str>, body: Value) -> EventRecord {
        let event = body.get("event").and_then(Value::as_str).unwrap_or_default().to_string();
        EventRecord { seq: 1, ts_ms: T, symbol: symbol.map(Into::into), event, body }
    }

    fn line(symbol: Option<&str>, body: Value) -> String {
        let l = render(&rec(symbol, body), T + 1_000, false);
        assert!(!l.contains('{') && !l.contains('"'), "no JSON in a line: {l}");
        assert!(!l.contains('\n'), "one line: {l}");
        l
    }

    #[test]
    fn pump_is_a_sentence_with_its_evidence() {
        let l = line(
            Some("SIMNEWUSDT"),
            json!({"evidence":{"ask_thinning":0.0,"bid_thinning":0.0,"confirmations":2,"delta_ratio_5s":-0.2477264835461306,
            "drawdown_pct":0.0,"liq_long_share":0.0,"liq_short_share":0.0603246573835879,"move_z_30s":26.7408738443014,
            "peak_price":0.0,"price":0.016582,"ret_30s_pct":4.295867664632991,"ret_5s_pct":0.7411907654921057,
            "ret_60s_pct":5.8132856869376415,"trade_rate_ratio":1.3278445177986393,"trades_5s":13.212,
            "vol_ratio":7.113830156267947,"warm":true},"from":"NONE","kind":"PUMP","reason":"30 s rise on rising volume",
            "to":"PREPUMP","ts_ms":1796224506947i64}),
        );
        assert_eq!(
            l,
            "15:14:23.143  🔥 SIMNEWUSDT   PUMP             NONE → PREPUMP: 30 s rise on rising volume \
             (30 s +4.30%, volume ×7.1)"
        );
    }

    #[test]
    fn spoof_and_absorbing_walls() {
        let spoof = json!({"approach_from_ticks":8,"distance_ticks":2,"eaten":"0","kind":"WALL","lifetime_ms":2296,
            "outcome":"SPOOFING","price":"1.9512","remaining":"1230","side":"Sell","size":"47160",
            "size_ratio":18.788844621513945,"ts_ms":1796224452938i64});
        assert_eq!(kind_of(&rec(Some("SIM003USDT"), spoof.clone())), "SPOOF");
        let l = line(Some("SIM003USDT"), spoof);
        assert!(l.contains("🎭 SIM003USDT   SPOOF"), "{l}");
        assert!(
            l.ends_with(
                "ask wall 47160 @ 1.9512 (18.8× median) pulled 2 ticks from the touch after 2.3 s, 1230 left, 0 traded"
            ),
            "{l}"
        );
        let wall = json!({"approach_from_ticks":341,"distance_ticks":104,"eaten":"36.765","kind":"WALL","lifetime_ms":601,
            "outcome":"ABSORBING","price":"60905.5","remaining":"0","side":"Buy","size":"28.088",
            "size_ratio":21.99530148786218,"ts_ms":1796224481538i64});
        let l = line(Some("BTCUSDT"), wall);
        assert!(l.contains("🧱 BTCUSDT      WALL"), "{l}");
        assert!(l.ends_with("bid wall 28.088 @ 60905.5 (22.0× median) absorbing: 36.765 traded in 0.6 s"), "{l}");
    }

    #[test]
    fn news_regime_and_global_regime() {
        let l = line(
            Some("XUSDT"),
            json!({"event": "NEWS_FLAG_SET", "symbol": "XUSDT", "impact": 0.7, "news_type": "HACK", "expires_ms": 1_796_225_363_143i64}),
        );
        assert!(l.contains("🚨 XUSDT        NEWS_FLAG_SET    HACK impact 0.70 until 2026-12-02 15:29:23.143"), "{l}");
        let l = line(Some("SIMNEWUSDT"), json!({"category":"wild","event":"NEWS_LISTING"}));
        assert!(l.ends_with("🚨 SIMNEWUSDT   NEWS_LISTING     new listing (category wild)"), "{l}");
        let l = line(
            Some("SIM002USDT"),
            json!({"from":"NORMAL","kind":"REGIME","reason":"pump state PUMPING","to":"PUMP","ts_ms":1796224516338i64}),
        );
        assert!(l.ends_with("🧭 SIM002USDT   REGIME           NORMAL → PUMP: pump state PUMPING"), "{l}");
        let l = line(
            None,
            json!({"event": "GLOBAL_REGIME", "from": "GLOBAL_NORMAL", "to": "GLOBAL_RISK_OFF", "reason": "BTC fell 3 % in 60 s"}),
        );
        assert!(
            l.ends_with("🧭 -            GLOBAL_REGIME    GLOBAL_NORMAL → GLOBAL_RISK_OFF: BTC fell 3 % in 60 s"),
            "{l}"
        );
    }

    #[test]
    fn state_changes_name_the_reason_and_score() {
        let l = line(
            Some("BTCUSDT"),
            json!({"event":"STATE","input":{"confirm":{"flow":true,"fresh_bad_news":false,"walls":true},"input":"score",
            "regime_ok":true,"score":71.57333491556132,"side":"Sell"},"transition":{"at_ms":1796224513937i64,
            "from":"WATCHING_SHORT","reason":{"reason":"CONFIRMED"},"side":"Sell","symbol":"BTCUSDT","to":"ARMED_SHORT"}}),
        );
        assert!(
            l.ends_with("🔁 BTCUSDT      STATE            WATCHING_SHORT → ARMED_SHORT short: confirmed, score 71.6"),
            "{l}"
        );
        let l = line(
            Some("SIM030USDT"),
            json!({"event":"STATE","input":{"STOP_LOSS":null,"input":"exit_triggered"},"transition":{"at_ms":1796224558944i64,
            "from":"IN_POSITION","reason":{"detail":"STOP_LOSS","reason":"EXIT"},"side":"Buy","symbol":"SIM030USDT","to":"EXITED"}}),
        );
        assert!(l.ends_with("IN_POSITION → EXITED long: exit (stop loss)"), "{l}");
    }

    #[test]
    fn entry_fill_and_exits() {
        let l = line(
            Some("BTCUSDT"),
            json!({"entry":"60909.9","event":"ENTRY","market":"NORMAL","notional":"17420.2314","qty":"0.286",
            "risk":"49.73771991","side":"Sell","stop":"61025.8","tp1":"60794","tp2":"60678.1"}),
        );
        assert!(
            l.ends_with(
                "🎯 BTCUSDT      ENTRY            short 0.286 @ 60909.9, stop 61025.8, tp1 60794, tp2 60678.1, \
                 risk 49.74 USDT, notional 17420.23 USDT, market NORMAL"
            ),
            "{l}"
        );
        let l = line(
            Some("SIM013USDT"),
            json!({"event":"FILL","fill":{"client_id":"e-SIM013USDT-63","exec_id":"sim-e64","fee":"0.1826514",
            "liquidity":"Maker","order_id":"sim-62","price":"1943.1","qty":"0.47","reduce_only":false,"side":"Sell",
            "symbol":"SIM013USDT","ts_ms":1796224554831i64}}),
        );
        assert!(
            l.ends_with("💱 SIM013USDT   FILL             short 0.47 @ 1943.1 maker, fee 0.18 USDT (e-SIM013USDT-63)"),
            "{l}"
        );
        let l = line(
            Some("SIM039USDT"),
            json!({"client_id":"tp-SIM039USDT-47","event":"PARTIAL_EXIT","realized":"2.834244"}),
        );
        assert!(l.ends_with("💰 SIM039USDT   PARTIAL_EXIT     realized +2.83 USDT (tp-SIM039USDT-47)"), "{l}");
        let l = line(Some("SIM032USDT"), json!({"event":"BREAK_EVEN","mark":"4.088","stop":"4.089"}));
        assert!(l.ends_with("stop moved to 4.089 (mark 4.088)"), "{l}");
        let l =
            line(Some("SIM032USDT"), json!({"client_id":"sl-SIM032USDT-16","event":"STOP_TRIGGERED","price":"4.09"}));
        assert!(l.ends_with("📨 SIM032USDT   STOP_TRIGGERED   stop sl-SIM032USDT-16 triggered at 4.09"), "{l}");
        let l =
            line(Some("BTCUSDT"), json!({"event":"ENTRY_REFUSED","reason":"heat after trade 0.03476 > max 0.03000"}));
        assert!(l.ends_with("entry refused: heat after trade 0.03476 > max 0.03000"), "{l}");
        let l = line(
            Some("SIM010USDT"),
            json!({"decision":{"decision":"switch_to_taker","limit":"3.846"},"event":"ENTRY_REVIEW","setup_ok":true}),
        );
        assert!(l.ends_with("maker entry: switch to taker (limit 3.846)"), "{l}");
        let l = line(
            Some("BTCUSDT"),
            json!({"client_id":"e-BTCUSDT-61","event":"ENTRY_CANCELLED","reason":"cancelled","remaining":"0.286"}),
        );
        assert!(l.ends_with("entry order e-BTCUSDT-61 ended: cancelled, 0.286 unfilled"), "{l}");
    }

    #[test]
    fn panic_controls_feed_storage_and_mode() {
        let l = line(None, json!({"event": "PANIC_CLOSE_ALL"}));
        assert!(l.contains("🛑 -            PANIC_CLOSE_ALL  panic: cancel every order"), "{l}");
        let l = line(None, json!({"event": "MODE_CHANGED", "from": "SIM", "to": "DRY_RUN"}));
        assert!(l.ends_with("🔧 -            MODE_CHANGED     SIM → DRY_RUN"), "{l}");
        let l = line(None, json!({"event": "MODE_REFUSED", "to": "LIVE", "reason": "wrong PIN"}));
        assert!(l.ends_with("LIVE refused: wrong PIN"), "{l}");
        let l = line(None, json!({"event": "PAUSED"}));
        assert!(l.ends_with("💤 -            PAUSED           new entries paused"), "{l}");
        let l = line(Some("SIM001USDT"), json!({"event": "BLACKLISTED", "symbol": "SIM001USDT"}));
        assert!(l.ends_with("🚫 SIM001USDT   BLACKLISTED      blocked from new signals"), "{l}");
        let l = line(None, json!({"event":"FEED_STATE","state":"RECONNECTING"}));
        assert!(l.ends_with("📡 -            FEED_STATE       public feed RECONNECTING"), "{l}");
        let l = line(None, json!({"event":"FEED_RISK_OFF","down_ms":12_500}));
        assert!(l.ends_with("feed down for 12.5 s: no new trades"), "{l}");
        let l = line(None, json!({"event":"STORAGE_DOWN","detail":"disk full"}));
        assert!(l.ends_with("💾 -            STORAGE_DOWN     storage cannot write: disk full"), "{l}");
        let l = line(None, json!({"event": "DEGRADED_ENTER", "tick_ns": 7_500_000, "budget_ns": 5_000_000}));
        assert!(l.ends_with("🐢 -            DEGRADED_ENTER   tick took 7.5 ms (budget 5.0 ms): shedding load"), "{l}");
    }

    #[test]
    fn other_kinds_are_key_value_pairs_and_ascii_tags_replace_icons() {
        let l = line(
            None,
            json!({"added":50,"event":"UNIVERSE_CHANGED","new_listings":[],"removed":0,"resubscribed":0,"size":50}),
        );
        assert!(l.ends_with("UNIVERSE_CHANGED added=50 new_listings=none removed=0 resubscribed=0 size=50"), "{l}");
        let l = line(
            Some("BTCUSDT"),
            json!({"event": "PROFILE_CHANGED", "change": {"extra_score": 5.5, "auto_blacklisted": false, "reason": "3 losses"}}),
        );
        assert!(l.ends_with("change.auto_blacklisted=false change.extra_score=5.5 change.reason=3 losses"), "{l}");
        let l = line(
            Some("BTCUSDT"),
            json!({"event": "ORDER_SENT", "intent": {"intent": "place", "client_id": "e-BTCUSDT-3", "symbol": "BTCUSDT",
                "side": "Buy", "kind": {"type": "limit", "price": "60000.5", "tif": "PostOnly"}, "qty": "0.01", "reduce_only": false}}),
        );
        assert!(l.ends_with("place Buy 0.01 limit @ 60000.5 PostOnly (e-BTCUSDT-3)"), "{l}");
        let e = rec(Some("SIM003USDT"), json!({"kind": "WALL", "outcome": "SPOOFING", "side": "Buy"}));
        let l = render(&e, T, true);
        assert!(l.starts_with("15:14:23.143  ~~ SIM003USDT   SPOOF"), "{l}");
        assert!(l.is_ascii(), "{l}");
        // Another day: the date is shown.
        assert!(render(&e, T + 86_400_000, true).starts_with("2026-12-02 15:14:23.143  ~~"));
    }
}
