//! The demo can be steered out of the box: the real `scalper demo` binary generates a control
//! token (written 0600 under its data directory) and a one-time LIVE PIN, and the real
//! `scalperctl`, with no token flag or environment, finds the token by itself and pauses,
//! blacklists, sets a news flag, panics and enters LIVE with the printed PIN.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Secrets and addresses the test must not inherit: everything comes from the demo itself.
const CLEARED_ENV: [&str; 6] = [
    "SCALPER_CONTROL_TOKEN",
    "SCALPER_CONTROL_TOKEN_FILE",
    "SCALPER_LIVE_PIN_HASH",
    "SCALPER_CONTROL_ADDR",
    "SCALPER_DATA_DIR",
    "SCALPER_CONTROL_TLS_CA",
];

/// Runs `scalperctl` in `cwd` (where the demo's ./data is) with no token given.
fn ctl(cwd: &Path, addr: &str, args: &[&str], stdin: &str) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_scalperctl"));
    cmd.current_dir(cwd).args(["--addr", addr]).args(args);
    for v in CLEARED_ENV {
        cmd.env_remove(v);
    }
    let mut child =
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("scalperctl runs");
    if let Some(mut i) = child.stdin.take() {
        let _ = i.write_all(stdin.as_bytes());
    }
    let out = child.wait_with_output().expect("scalperctl finishes");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn status(cwd: &Path, addr: &str) -> serde_json::Value {
    let (code, out, err) = ctl(cwd, addr, &["-o", "json", "status"], "");
    assert_eq!(code, 0, "status: {out} {err}");
    serde_json::from_str(&out).unwrap_or_default()
}

/// Kills the demo if the test fails half-way.
struct Demo {
    child: Child,
    log: PathBuf,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Demo {
    fn log(&self) -> String {
        let s = std::fs::read_to_string(&self.log).unwrap_or_default();
        s.lines().rev().take(30).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n")
    }
}

#[test]
fn the_demo_is_steerable_with_no_setup() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cwd = dir.path();
    // Free ports: the banner reports the bound gRPC address.
    let cfg = cwd.join("demo.toml");
    std::fs::write(&cfg, "[server]\nhttp_addr = \"127.0.0.1:0\"\ngrpc_addr = \"127.0.0.1:0\"\n").expect("config");
    let log = cwd.join("engine.log");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_scalper"));
    cmd.current_dir(cwd).args(["demo", "--duration-s", "120", "--config", cfg.to_str().expect("utf-8 path")]);
    for v in CLEARED_ENV {
        cmd.env_remove(v);
    }
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::from(std::fs::File::create(&log).expect("log file")))
        .spawn()
        .expect("scalper demo starts");
    let mut demo = Demo { child, log };

    // The banner: address and PIN.
    let stdout = demo.child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let (mut addr, mut pin, mut banner) = (None, None, String::new());
    let deadline = Instant::now() + Duration::from_secs(30);
    while addr.is_none() || pin.is_none() || !banner.contains("mode live") {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx.recv_timeout(left).unwrap_or_else(|_| panic!("no banner; engine log:\n{}", demo.log()));
        if let Some(a) = line.trim().strip_prefix("control address") {
            addr = Some(a.trim().to_string());
        }
        if let Some(p) = line.trim().strip_prefix("LIVE PIN") {
            pin = p.split_whitespace().next().map(str::to_string);
        }
        banner.push_str(&line);
        banner.push('\n');
    }
    let (addr, pin) = (addr.unwrap_or_default(), pin.unwrap_or_default());
    assert!(addr.starts_with("http://127.0.0.1:"), "{banner}");
    assert!(pin.len() == 6 && pin.chars().all(|c| c.is_ascii_digit()), "{banner}");
    // The commands shown work as printed: only the address is added (./data is the default).
    assert!(banner.contains(&format!("scalperctl --addr {addr} pause\n")), "{banner}");

    // The token file: owner-only, and a fresh 256-bit token.
    let token_file = cwd.join("data/system/control.token");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&token_file).expect("token file written").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let token = std::fs::read_to_string(&token_file).expect("token");
        assert_eq!(token.trim().len(), 64);
    }

    // Steering with no token flag or environment.
    for args in [
        vec!["pause"],
        vec!["blacklist", "add", "SIM001USDT"],
        vec!["news", "set", "SIM002USDT", "--impact", "0.8", "--type", "HACK", "--ttl", "15m"],
        vec!["panic"],
    ] {
        let (code, out, err) = ctl(cwd, &addr, &args, "");
        assert_eq!(code, 0, "{args:?}: {out} {err}");
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let v = status(cwd, &addr);
        let news = v["news_flags"].as_array().cloned().unwrap_or_default();
        if v["paused"] == true
            && v["global_panic"] == true
            && v["blacklist"] == serde_json::json!(["SIM001USDT"])
            && news.iter().any(|n| n["symbol"] == "SIM002USDT" && n["news_type"] == "HACK")
        {
            break;
        }
        assert!(Instant::now() < deadline, "controls not applied: {v}");
        std::thread::sleep(Duration::from_millis(250));
    }

    // LIVE with the printed PIN (the simulator's account): retried while the private connector
    // is still reconciling; a wrong PIN or token would answer 3 at once.
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let (code, out, err) = ctl(cwd, &addr, &["mode", "live", "--pin-stdin"], &format!("{pin}\nLIVE\n"));
        if code == 0 {
            assert!(out.contains("LIVE"), "{out}");
            break;
        }
        assert_eq!(code, 1, "LIVE refused other than by readiness: {out} {err}");
        assert!(Instant::now() < deadline, "LIVE never accepted: {err}\n{}", demo.log());
        std::thread::sleep(Duration::from_millis(500));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while status(cwd, &addr)["mode"] != "LIVE" {
        assert!(Instant::now() < deadline, "status never showed LIVE");
        std::thread::sleep(Duration::from_millis(250));
    }

    // A token file others can read is refused, with the fix named.
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let (code, _, err) = ctl(cwd, &addr, &["resume"], "");
        assert_eq!(code, 3, "{err}");
        assert!(err.contains("chmod 600"), "{err}");
        std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        // A stale token (another demo run's) is refused by the engine, and the hint says where it came from.
        let token = std::fs::read_to_string(&token_file).expect("token");
        std::fs::write(&token_file, "0".repeat(64)).expect("stale token");
        let (code, _, err) = ctl(cwd, &addr, &["resume"], "");
        assert_eq!(code, 3, "{err}");
        assert!(err.contains("invalid control token") && err.contains("the token was read from"), "{err}");
        std::fs::write(&token_file, token).expect("token back");
        // An explicit --token wins over the file.
        let (code, _, err) = ctl(cwd, &addr, &["--token", "not-the-token", "resume"], "");
        assert_eq!(code, 3, "{err}");
        assert_eq!(status(cwd, &addr)["paused"], true, "nothing was resumed");
    }

    // A clean stop removes the token.
    // SAFETY: kill(2) on our own child's pid.
    unsafe {
        libc::kill(demo.child.id() as i32, libc::SIGINT);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(Some(_)) = demo.child.try_wait() {
            break;
        }
        assert!(Instant::now() < deadline, "the demo did not stop on Ctrl-C");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!token_file.exists(), "the token file outlived the demo");
}
