//! `scalper sim-exchange --symbols N` starts for any N in 1..=10000 (the demo preset's scenarios
//! name SIM001USDT..SIM010USDT; a smaller universe used to be refused) and lists exactly N
//! instruments over REST.

use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

async fn listed_symbols(n: usize) -> Vec<String> {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_scalper"))
        .args(["sim-exchange", "--port", "0", "--seed", "3", "--symbols", &n.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("scalper starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(Duration::from_secs(15), lines.next_line()).await.expect("prints its URLs");
    let Ok(Some(line)) = first else {
        let out = child.wait_with_output().await.unwrap();
        panic!("sim-exchange --symbols {n} did not start: {}", String::from_utf8_lossy(&out.stderr));
    };
    let rest = line.split_whitespace().nth(1).expect("`REST <url>  WS <url>`").to_string();
    let body: serde_json::Value = reqwest::get(format!("{rest}/v5/market/instruments-info?category=linear&limit=1000"))
        .await
        .expect("REST answers")
        .json()
        .await
        .unwrap();
    assert_eq!(body["retCode"], 0, "{body}");
    let names = body["result"]["list"]
        .as_array()
        .expect("list")
        .iter()
        .map(|i| i["symbol"].as_str().unwrap_or_default().to_string())
        .collect();
    child.kill().await.unwrap();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_exchange_starts_with_small_universes() {
    for n in [1usize, 3, 10] {
        let mut names = listed_symbols(n).await;
        names.sort();
        assert_eq!(names.len(), n, "--symbols {n}: {names:?}");
        assert!(names.contains(&"BTCUSDT".to_string()), "{names:?}");
        if n >= 3 {
            assert!(names.contains(&"SIM001USDT".to_string()), "{names:?}");
        }
    }
}
