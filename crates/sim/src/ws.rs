//! One public WebSocket connection: reads client ops (`subscribe`, `unsubscribe`, `ping`),
//! writes the frames the exchange queues for it, and closes it when idle, dropped by a fault or
//! too slow to keep up.

use super::wire;
use super::Shared;
use futures_util::{SinkExt, StreamExt};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;

/// Most frames written before one flush.
const WRITE_BATCH: usize = 256;

/// Serves one upgraded connection until it closes.
pub(crate) async fn run_connection<S>(sh: Arc<Shared>, socket: WebSocketStream<S>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let token = sh.cancel.child_token();
    let (id, conn_id, queue, idle) = {
        let mut ex = sh.lock();
        let queue = ex.cfg.outbound_queue;
        let idle = Duration::from_millis(ex.cfg.ws_idle_timeout_ms);
        let (tx, rx) = mpsc::channel::<Utf8Bytes>(queue);
        let (id, conn_id) = ex.register_conn(tx, token.clone());
        (id, conn_id, rx, idle)
    };
    let mut rx = queue;
    let c = &sh.counters;
    c.ws_connections_opened.fetch_add(1, Ordering::Relaxed);
    c.ws_connections_open.fetch_add(1, Ordering::Relaxed);
    let (mut sink, mut stream) = socket.split();
    let mut last_seen = tokio::time::Instant::now();
    loop {
        tokio::select! {
            biased;
            _ = token.cancelled() => break,
            _ = tokio::time::sleep_until(last_seen + idle) => {
                c.idle_drops.fetch_add(1, Ordering::Relaxed);
                break;
            }
            frame = rx.recv() => {
                let Some(frame) = frame else { break };
                // Write a batch; a client that stops reading must not keep a dropped connection
                // alive, so cancellation wins over a blocked write.
                let write = async {
                    let mut n = 1u64;
                    sink.feed(Message::Text(frame)).await?;
                    while (n as usize) < WRITE_BATCH {
                        let Ok(f) = rx.try_recv() else { break };
                        sink.feed(Message::Text(f)).await?;
                        n += 1;
                    }
                    sink.flush().await?;
                    Ok::<u64, tokio_tungstenite::tungstenite::Error>(n)
                };
                tokio::select! {
                    biased;
                    _ = token.cancelled() => break,
                    r = write => match r {
                        Ok(n) => {
                            c.ws_messages_sent.fetch_add(n, Ordering::Relaxed);
                        }
                        Err(_) => break,
                    },
                }
            }
            incoming = stream.next() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    last_seen = tokio::time::Instant::now();
                    handle_text(&sh, id, &conn_id, text.as_str());
                }
                Some(Ok(Message::Binary(_))) => {
                    last_seen = tokio::time::Instant::now();
                    let m = "Failed to decode incoming data:binary frames are not supported";
                    sh.lock().reply(id, wire::op_reply(false, m, &conn_id, "", ""));
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => last_seen = tokio::time::Instant::now(),
                Some(Ok(Message::Frame(_))) => {}
                Some(Ok(Message::Close(_))) => {
                    // Let tungstenite send its close reply.
                    let _ = sink.flush().await;
                    break;
                }
                Some(Err(_)) | None => break,
            }
        }
    }
    sh.lock().unregister_conn(id);
    c.ws_connections_open.fetch_sub(1, Ordering::Relaxed);
    // Dropping the socket without a close frame: an abrupt close, as Bybit does.
}

/// A client request frame.
fn handle_text(sh: &Shared, id: u64, conn_id: &str, text: &str) {
    let v: serde_json::Value = match serde_json::from_str(text) {
        Ok(v @ serde_json::Value::Object(_)) => v,
        Ok(_) => {
            let m = "Failed to decode incoming data:expected a JSON object";
            sh.lock().reply(id, wire::op_reply(false, m, conn_id, "", ""));
            return;
        }
        Err(e) => {
            let m = format!("Failed to decode incoming data:{e}");
            sh.lock().reply(id, wire::op_reply(false, &m, conn_id, "", ""));
            return;
        }
    };
    let req_id = match v.get("req_id") {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    };
    let op = v.get("op").and_then(|o| o.as_str()).unwrap_or("");
    let args: Option<Vec<String>> = match v.get("args") {
        None | Some(serde_json::Value::Null) => Some(Vec::new()),
        Some(serde_json::Value::Array(a)) => a.iter().map(|x| x.as_str().map(str::to_string)).collect(),
        Some(_) => None,
    };
    let mut ex = sh.lock();
    match (op, args) {
        ("ping", _) => {
            if ex.refuse_pongs {
                sh.counters.pongs_refused.fetch_add(1, Ordering::Relaxed);
            } else {
                sh.counters.pongs_sent.fetch_add(1, Ordering::Relaxed);
                ex.reply(id, wire::pong(conn_id, &req_id));
            }
        }
        ("subscribe", Some(args)) => ex.subscribe(id, &args, &req_id),
        ("unsubscribe", Some(args)) => ex.unsubscribe(id, &args, &req_id),
        ("subscribe" | "unsubscribe", None) => {
            ex.reply(id, wire::op_reply(false, "error:args must be an array of strings", conn_id, &req_id, op))
        }
        _ => ex.reply(id, wire::op_reply(false, "error:invalid op", conn_id, &req_id, op)),
    }
}
