//! `scalperctl top`: fetching a frame's data and the refreshing full-screen view, with the
//! terminal helpers it needs (cbreak mode, size, Ctrl-C).

use super::cli::Output;
use super::show::{now_ms, print_json};
use super::{Client, Fail};
use scalper::control::format;
use scalper::control::top::{self, ComponentLine, TopData};
use scalper::control::view::{SummaryView, SymbolView, TradeView};
use scalper::proto;
use std::io::Write;
use std::time::Duration;

async fn fetch_top(c: &mut Client, limit: u32) -> Result<TopData, Fail> {
    let summary = SummaryView::from(c.get_summary(proto::Empty {}).await?.into_inner());
    let h = c.get_health(proto::Empty {}).await?.into_inner();
    let hot = c.list_hotlist(proto::HotlistRequest { limit }).await?.into_inner();
    let trades = c.list_active_trades(proto::Empty {}).await?.into_inner();
    Ok(TopData {
        summary,
        health: h.overall,
        components: h
            .components
            .into_iter()
            .map(|c| ComponentLine { name: c.name, status: c.status, detail: c.detail })
            .collect(),
        hotlist: hot.entries.into_iter().map(SymbolView::from).collect(),
        trades: trades.trades.into_iter().map(TradeView::from).collect(),
    })
}

/// Cuts every line of `frame` to `cols` terminal cells and the whole to `rows` lines.
fn clip(frame: &str, cols: usize, rows: usize) -> String {
    let mut out = String::new();
    for line in frame.lines().take(rows) {
        let mut w = 0;
        for ch in line.chars() {
            let cw = format::width(ch.encode_utf8(&mut [0u8; 4]));
            if w + cw > cols {
                break;
            }
            w += cw;
            out.push(ch);
        }
        out.push('\n');
    }
    out
}

/// `scalperctl top`: one frame (--once, JSON, or stdout not a terminal), else a refreshing view
/// on the alternate screen until `q` or Ctrl-C. A failed refresh is shown and retried.
pub(super) async fn run_top(
    c: &mut Client,
    out: Output,
    interval: Duration,
    limit: u32,
    once: bool,
) -> Result<(), Fail> {
    use std::io::IsTerminal;
    if out == Output::Json {
        let d = fetch_top(c, limit).await?;
        let components: serde_json::Map<String, serde_json::Value> = d
            .components
            .iter()
            .map(|c| (c.name.clone(), serde_json::json!({"status": c.status, "detail": c.detail})))
            .collect();
        return print_json(&serde_json::json!({
            "summary": d.summary,
            "health": {"overall": d.health, "components": components},
            "hotlist": d.hotlist,
            "trades": d.trades,
        }));
    }
    if once || !std::io::stdout().is_terminal() {
        let d = fetch_top(c, limit).await?;
        print!("{}", top::frame(&d, now_ms()));
        return Ok(());
    }
    // Ctrl-C is caught from here on (also while a refresh is in flight), so the terminal is
    // always restored.
    let mut interrupt = term::Interrupt::new().map_err(|e| Fail::usage(format!("cannot watch Ctrl-C: {e}")))?;
    let (key_tx, mut key_rx) = tokio::sync::mpsc::channel::<()>(1);
    let _cbreak = if std::io::stdin().is_terminal() { term::Cbreak::enter() } else { None };
    // Keys are read on a plain thread (stdin reads block); it ends with the process.
    std::thread::spawn(move || {
        use std::io::Read;
        let mut b = [0u8; 1];
        let mut stdin = std::io::stdin();
        loop {
            match stdin.read(&mut b) {
                Ok(1) if b[0] == b'q' || b[0] == b'Q' => {
                    let _ = key_tx.blocking_send(());
                    return;
                }
                Ok(0) | Err(_) => return,
                _ => {}
            }
        }
    });
    let mut stdout = std::io::stdout();
    // Alternate screen, cursor hidden; both undone on the way out.
    let _ = write!(stdout, "\x1b[?1049h\x1b[?25l");
    let footer = format!("q or Ctrl-C to quit · refresh every {:.1} s", interval.as_secs_f64());
    loop {
        let body = match fetch_top(c, limit).await {
            Ok(d) => top::frame(&d, now_ms()),
            Err(f) => format!("scalper top  {} UTC\n\nerror: {} (retrying)\n", format::datetime(now_ms()), f.msg),
        };
        let (cols, rows) = term::size().unwrap_or((120, 50));
        // The footer stays on screen: the body gets the rows above it and a blank line.
        let (cols, rows) = (cols.max(20), rows.max(5));
        let frame = clip(&format!("{}\n\n{footer}\n", clip(&body, cols, rows - 3).trim_end_matches('\n')), cols, rows);
        let _ = write!(stdout, "\x1b[H\x1b[2J{}", frame.trim_end_matches('\n'));
        let _ = stdout.flush();
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = interrupt.recv() => break,
            _ = key_rx.recv() => break,
        }
    }
    let _ = write!(stdout, "\x1b[?25h\x1b[?1049l");
    let _ = stdout.flush();
    Ok(())
}

/// Terminal helpers for `top`, through `stty` on the terminal of stdin (no system calls of our
/// own); where `stty` is missing, keys need Enter and the size is a default.
mod term {
    use std::process::{Command, Stdio};

    fn stty(args: &[&str]) -> Option<String> {
        let out = Command::new("stty").args(args).stdin(Stdio::inherit()).stderr(Stdio::null()).output().ok()?;
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// Stdin in cbreak mode (each key arrives at once, no echo; Ctrl-C still signals) until
    /// dropped, when the saved settings come back.
    pub struct Cbreak(String);

    impl Cbreak {
        /// `None` when stdin is not a terminal or `stty` fails.
        pub fn enter() -> Option<Cbreak> {
            let saved = stty(&["-g"]).filter(|s| !s.is_empty())?;
            stty(&["-icanon", "-echo", "min", "1", "time", "0"])?;
            Some(Cbreak(saved))
        }
    }

    impl Drop for Cbreak {
        fn drop(&mut self) {
            let _ = stty(&[self.0.as_str()]);
        }
    }

    /// Ctrl-C (SIGINT), watched from creation on: one pressed before the first `recv` counts.
    pub struct Interrupt(#[cfg(unix)] tokio::signal::unix::Signal);

    impl Interrupt {
        #[cfg(unix)]
        pub fn new() -> std::io::Result<Interrupt> {
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).map(Interrupt)
        }

        #[cfg(not(unix))]
        pub fn new() -> std::io::Result<Interrupt> {
            Ok(Interrupt())
        }

        /// Waits for the next Ctrl-C.
        pub async fn recv(&mut self) {
            #[cfg(unix)]
            let _ = self.0.recv().await;
            #[cfg(not(unix))]
            let _ = tokio::signal::ctrl_c().await;
        }
    }

    /// (columns, rows) of the terminal.
    pub fn size() -> Option<(usize, usize)> {
        let s = stty(&["size"])?;
        let mut it = s.split_whitespace().map(|v| v.parse::<usize>().ok());
        let (rows, cols) = (it.next()??, it.next()??);
        (rows > 0 && cols > 0).then_some((cols, rows))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_cuts_lines_to_the_terminal() {
        assert_eq!(clip("abcdef\nxy\nz\n", 4, 2), "abcd\nxy\n");
        assert_eq!(clip("🔥🔥🔥\n", 5, 9), "🔥🔥\n", "emoji take two cells");
    }
}
