//! Output formatting of the one-shot commands: JSON, the summary and symbol tables, acks.

use super::cli::Output;
use super::Fail;
use scalper::control::format;
use scalper::control::top;
use scalper::control::view::{SummaryView, SymbolView};
use scalper::proto;
use serde::Serialize;

pub(super) fn print_json<T: Serialize>(v: &T) -> Result<(), Fail> {
    let s = serde_json::to_string_pretty(v).map_err(|e| Fail { code: 1, msg: format!("cannot encode JSON: {e}") })?;
    println!("{s}");
    Ok(())
}

/// Wall-clock now, ms since the epoch (for same-day times).
pub(super) fn now_ms() -> i64 {
    scalper::connectors::clock::wall_ms()
}

fn or_dash(s: &str) -> String {
    if s.is_empty() {
        "-".into()
    } else {
        s.to_string()
    }
}

pub(super) fn print_summary(s: &SummaryView) {
    let g = &s.global;
    let flags = top::raised_flags(s);
    let now = now_ms();
    let mut rows = vec![
        ("mode", or_dash(&s.mode)),
        ("flags", if flags.is_empty() { "-".into() } else { flags.join(" ") }),
        ("global regime", or_dash(&g.global_regime)),
        ("feed", or_dash(&s.feed)),
        (
            "exchange account",
            if g.private_feed.is_empty() {
                "- (no private connector: LIVE unavailable)".into()
            } else {
                format!(
                    "{} ({}; {} live orders{})",
                    g.private_feed,
                    if g.exchange_account_known { "reconciled" } else { "not reconciled" },
                    g.live_orders,
                    if g.panic_confirmed { "; PANIC confirmed flat" } else { "" }
                )
            },
        ),
        ("symbols", format!("{} ({} valid books, {} warming up)", s.symbols, s.valid_books, g.symbols_warming)),
        ("events processed", s.events_processed.to_string()),
        ("equity", format!("{} USDT", format::money(g.equity))),
        ("balance", format!("{} USDT", format::money(g.balance))),
        ("realized pnl", format!("{} USDT", format::pnl(g.realized_pnl))),
        ("unrealized pnl", format!("{} USDT", format::pnl(g.unrealized_pnl))),
        (
            "daily pnl",
            format!("{} USDT (limit {} of equity)", format::pnl(g.daily_pnl), format::pct(g.daily_loss_limit, 1)),
        ),
        (
            "portfolio heat",
            format!("{} (max {})", format::pct(g.portfolio_heat, 2), format::pct(g.max_portfolio_heat, 1)),
        ),
        ("open positions", g.open_positions.to_string()),
        ("blacklist", if g.blacklist.is_empty() { "-".into() } else { g.blacklist.join(" ") }),
    ];
    for n in &g.news_flags {
        rows.push(("news", format::news_flag(n, now)));
    }
    rows.push(("snapshot at", format::datetime(s.ts_ms)));
    print!("{}", format::kv(&rows));
}

pub(super) fn print_symbol(s: &SymbolView) {
    let px = |v: f64| format::price(v, s.tick_size);
    let mut rows = vec![
        ("symbol", s.symbol.clone()),
        ("category", or_dash(&s.category)),
        ("state", or_dash(&s.state)),
        ("regime", or_dash(&s.regime)),
        (
            "baselines",
            if s.warm { "warm".to_string() } else { format!("{} ({} s left)", s.warm_reason, s.warmup_left_s) },
        ),
        ("price", px(s.price)),
        ("bid / ask", format!("{} / {}", px(s.bid), px(s.ask))),
        ("mark price", px(s.mark_price)),
        (
            "tick / qty step",
            format!(
                "{} / {}",
                if s.tick_size > 0.0 { format::plain(s.tick_size) } else { "-".into() },
                if s.qty_step > 0.0 { format::plain(s.qty_step) } else { "-".into() }
            ),
        ),
        ("spread bps", format::bps(s.spread_bps)),
        ("imbalance", format::fixed(s.imbalance, 2)),
        ("walls bid / ask", format!("{} / {}", format::fixed(s.wall_score_bid, 2), format::fixed(s.wall_score_ask, 2))),
        ("spoofing", format::fixed(s.spoofing_score, 2)),
        ("pump", or_dash(&s.pump_state)),
        ("volatility", format::pct(s.volatility, 3)),
        ("flow delta", format::qty(s.flow_delta, s.qty_step)),
        ("min move", format!("{}%", format::fixed(s.min_move_pct, 3))),
        ("news impact", format::fixed(s.news_impact, 2)),
        ("score long / short", format!("{} / {}", format::score(s.score_long), format::score(s.score_short))),
        ("turnover 24h", format!("{} USDT", format::compact(s.turnover_24h))),
        ("funding rate", format::pct(s.funding_rate, 4)),
        ("open interest", format::compact(s.open_interest)),
        ("book valid", s.book_valid.to_string()),
        ("book errors", s.book_errors.to_string()),
        ("last book", format::datetime(s.last_book_ms)),
        ("last trade", format::datetime(s.last_trade_ms)),
        ("blacklisted", s.blacklisted.to_string()),
    ];
    match &s.position {
        Some(p) => rows.push((
            "position",
            format!(
                "{} {} @ {} pnl {} USDT ({} R)",
                p.side,
                format::qty(p.qty, s.qty_step),
                px(p.entry_price),
                format::pnl(p.unrealized_pnl),
                format::r_multiple(p.r_multiple)
            ),
        )),
        None => rows.push(("position", "-".into())),
    }
    print!("{}", format::kv(&rows));
}

pub(super) fn ack(out: Output, a: proto::Ack) -> Result<(), Fail> {
    match out {
        Output::Json => print_json(&serde_json::json!({"ok": a.ok, "message": a.message})),
        Output::Table => {
            println!("ok: {}", a.message);
            Ok(())
        }
    }
}
