//! The simulator's private WebSocket (`/v5/private`): `auth` with Bybit's signature
//! (`HMAC-SHA256(secret, "GET/realtime" + expires)`, `expires` in the future), `subscribe` /
//! `unsubscribe` of `order`, `execution`, `position`, `wallet` (also `*.linear`) once
//! authenticated (like Bybit's, the all-in-one topics mix spot and option items into the
//! frames and the `*.linear` ones a USDC contract's: see `PrivateState::push`), and `ping` answered with the private channel's pong
//! (`{"req_id","op":"pong","args":[now],"conn_id"}`). Topic pushes are queued by the account
//! state ([`super::private::PrivateState`]).

use super::private::lock_private;
use super::wire::json_str;
use super::Shared;
use axum::extract::{Request, State};
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use scalper_bybit::bybit_private::sign::{sign_ws_auth, signatures_match};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;

/// Upgrades `/v5/private` to a WebSocket.
pub(crate) async fn ws_private(State(sh): State<Arc<Shared>>, req: Request) -> Response {
    super::server::upgrade(req, move |socket| run(sh, socket))
}

async fn run<S: AsyncRead + AsyncWrite + Unpin>(sh: Arc<Shared>, socket: WebSocketStream<S>) {
    let token = sh.cancel.child_token();
    let (queue, idle) = {
        let ex = sh.lock();
        (ex.cfg.outbound_queue, Duration::from_millis(ex.cfg.ws_idle_timeout_ms))
    };
    let (tx, mut rx) = mpsc::channel::<Utf8Bytes>(queue);
    let (id, conn_id) = lock_private(&sh).register_conn(tx, token.clone());
    let (mut sink, mut stream) = socket.split();
    let mut last_seen = tokio::time::Instant::now();
    loop {
        tokio::select! {
            biased;
            _ = token.cancelled() => break,
            _ = tokio::time::sleep_until(last_seen + idle) => break,
            frame = rx.recv() => {
                let Some(frame) = frame else { break };
                let write = async {
                    sink.feed(Message::Text(frame)).await?;
                    while let Ok(f) = rx.try_recv() {
                        sink.feed(Message::Text(f)).await?;
                    }
                    sink.flush().await
                };
                tokio::select! {
                    biased;
                    _ = token.cancelled() => break,
                    r = write => if r.is_err() { break },
                }
            }
            incoming = stream.next() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    last_seen = tokio::time::Instant::now();
                    handle(&sh, id, &conn_id, text.as_str());
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Binary(_))) => {
                    last_seen = tokio::time::Instant::now();
                }
                Some(Ok(Message::Frame(_))) => {}
                Some(Ok(Message::Close(_))) => {
                    let _ = sink.flush().await;
                    break;
                }
                Some(Err(_)) | None => break,
            }
        }
    }
    lock_private(&sh).conns.remove(&id);
}

fn op_reply(success: bool, ret_msg: &str, conn_id: &str, req_id: &str, op: &str) -> String {
    let req = if req_id.is_empty() { String::new() } else { format!("\"req_id\":{},", json_str(req_id)) };
    format!(
        "{{{req}\"success\":{success},\"ret_msg\":{},\"op\":{},\"conn_id\":{}}}",
        json_str(ret_msg),
        json_str(op),
        json_str(conn_id)
    )
}

fn topic_of(arg: &str) -> Option<&'static str> {
    match arg {
        "order" | "order.linear" => Some("order"),
        "execution" | "execution.linear" => Some("execution"),
        "position" | "position.linear" => Some("position"),
        "wallet" => Some("wallet"),
        _ => None,
    }
}

fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn handle(sh: &Shared, id: u64, conn_id: &str, text: &str) {
    let v: Value = match serde_json::from_str(text) {
        Ok(v @ Value::Object(_)) => v,
        _ => {
            lock_private(sh).reply(id, op_reply(false, "Failed to decode incoming data", conn_id, "", ""));
            return;
        }
    };
    let req_id = v.get("req_id").and_then(text_of).unwrap_or_default();
    let op = v.get("op").and_then(|o| o.as_str()).unwrap_or("").to_string();
    let args: Vec<String> = match v.get("args") {
        Some(Value::Array(a)) => a.iter().filter_map(text_of).collect(),
        _ => Vec::new(),
    };
    let ex = sh.lock();
    let now = ex.now_ms();
    drop(ex);
    let mut p = lock_private(sh);
    let authed = p.conns.get(&id).is_some_and(|c| c.authed);
    let reply = match op.as_str() {
        "ping" => format!(
            "{{\"req_id\":{},\"op\":\"pong\",\"args\":[\"{now}\"],\"conn_id\":{}}}",
            json_str(&req_id),
            json_str(conn_id)
        ),
        "auth" => {
            let verdict = match args.as_slice() {
                [key, expires, sig] => match (p.secret(key), expires.parse::<i64>()) {
                    (None, _) => Err("API key is invalid"),
                    (_, Err(_)) => Err("Params Error"),
                    (Some(_), Ok(e)) if e <= now => Err("Params Error: expires is in the past"),
                    (Some(secret), Ok(e)) => {
                        if signatures_match(&sig.to_ascii_lowercase(), &sign_ws_auth(secret.as_bytes(), e)) {
                            Ok(())
                        } else {
                            Err("Invalid sign")
                        }
                    }
                },
                _ => Err("Params Error"),
            };
            match verdict {
                Ok(()) => {
                    if let Some(c) = p.conns.get_mut(&id) {
                        c.authed = true;
                    }
                    p.counters.ws_auth_ok += 1;
                    op_reply(true, "", conn_id, &req_id, "auth")
                }
                Err(m) => {
                    p.counters.ws_auth_failed += 1;
                    op_reply(false, m, conn_id, &req_id, "auth")
                }
            }
        }
        "subscribe" | "unsubscribe" if !authed => op_reply(false, "Request not authorized", conn_id, &req_id, &op),
        "subscribe" | "unsubscribe" => {
            let topics: Result<Vec<(&'static str, bool)>, String> = args
                .iter()
                .map(|a| {
                    let t = topic_of(a).ok_or_else(|| format!("error:handler not found,topic:{a}"))?;
                    Ok((t, !a.contains('.')))
                })
                .collect();
            match topics {
                Err(m) => op_reply(false, &m, conn_id, &req_id, &op),
                Ok(ts) if ts.is_empty() => op_reply(false, "error:args is empty", conn_id, &req_id, &op),
                Ok(ts) => {
                    if let Some(c) = p.conns.get_mut(&id) {
                        for (t, all_in_one) in ts {
                            if op == "subscribe" {
                                c.topics.insert(t);
                                if all_in_one {
                                    c.all_in_one.insert(t);
                                } else {
                                    c.all_in_one.remove(t);
                                }
                            } else {
                                c.topics.remove(t);
                                c.all_in_one.remove(t);
                            }
                        }
                    }
                    op_reply(true, "", conn_id, &req_id, &op)
                }
            }
        }
        _ => op_reply(false, "error:invalid op", conn_id, &req_id, &op),
    };
    p.reply(id, reply);
}
