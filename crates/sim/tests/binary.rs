//! The simulator runs as its own program: `scalper-sim` serves on loopback and prints its URLs.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

#[test]
fn scalper_sim_starts_and_prints_its_urls() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_scalper-sim"))
        .args(["--port", "0", "--symbols", "3", "--seed", "7"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("scalper-sim starts");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(Duration::from_secs(60));
    let _ = child.kill();
    let _ = child.wait();
    let line = line.expect("scalper-sim printed nothing within 60 s");
    assert!(line.starts_with("REST http://127.0.0.1:"), "{line}");
    assert!(line.contains("WS ws://127.0.0.1:"), "{line}");
}
