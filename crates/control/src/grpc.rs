//! The gRPC control plane (tonic), with the standard health service and reflection.
//!
//! Reads are served from the published snapshot/view, the health board and the event bus.
//! Mutations need the control token and become [`Event`]s of kind [`EventKind::Control`] (or
//! [`EventKind::ConfigReload`]) sent into the core's input channel: they take effect when the core
//! processes them, in order with everything else.
//!
//! LIVE: `confirm=true` and the PIN are both required; PIN attempts are rate-limited per peer IP
//! (3 per minute by default) under a global ceiling (30 per minute), and logged. Failed tokens are
//! logged with the peer and method, counted, and a peer with too many of them is refused
//! (`ResourceExhausted`) without a check until its window frees. Leaving LIVE is always allowed.
//!
//! A non-loopback address is served only over TLS ([`GrpcOptions::tls`]) or with the explicit
//! plaintext opt-in ([`GrpcOptions::allow_insecure_remote`]).

use super::auth::{peer_key, Security};
use super::bus::{EventRecord, DEFAULT_RECENT};
use super::convert::health_message;
use super::state::ControlState;
use super::view::{DEFAULT_HOTLIST, MAX_HOTLIST};
use crate::config_file::ConfigFile;
use crate::proto;
use crate::proto::control_server::{Control, ControlServer};
use futures_util::Stream;
use scalper_bybit::clock::wall_ms;
use scalper_core::config::Config;
use scalper_core::domain::{EventTime, Symbol};
use scalper_core::engine::event::{ControlCommand, Event, EventKind, Mode};
use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tonic::metadata::MetadataMap;
use tonic::{Code, Request, Response, Status};

/// Metadata header carrying the token (alternative to `authorization: Bearer`).
pub const TOKEN_HEADER: &str = "x-scalper-token";
/// How long a mutation may wait for room in the core's input queue.
pub const SUBMIT_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest news-flag time to live, seconds (7 days).
pub const MAX_NEWS_TTL_S: u64 = 7 * 24 * 3600;

/// The message returned after a correct PIN: LIVE needs the private connector.
pub const LIVE_UNAVAILABLE: &str =
    "PIN accepted, but this engine runs no private Bybit connector (no API credentials: \
     SCALPER_BYBIT_API_KEY + SCALPER_BYBIT_API_SECRET, or SCALPER_BYBIT_CREDENTIALS_FILE); mode unchanged";

/// How long `SetMode(LIVE)` waits for the engine to confirm or refuse.
const LIVE_CONFIRM_TIMEOUT: Duration = Duration::from_secs(5);

/// The token a request carries, from `authorization: Bearer <t>` or `x-scalper-token: <t>`.
pub fn request_token(meta: &MetadataMap) -> Option<String> {
    if let Some(v) = meta.get("authorization").and_then(|v| v.to_str().ok()) {
        let v = v.trim();
        if let Some(t) = v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")) {
            return Some(t.trim().to_string());
        }
    }
    meta.get(TOKEN_HEADER).and_then(|v| v.to_str().ok()).map(|t| t.trim().to_string())
}

/// Checks a request's token against the configured one.
pub fn authorize(security: &Security, meta: &MetadataMap) -> Result<(), Status> {
    let Some(expected) = &security.token else {
        return Err(Status::permission_denied(
            "mutating calls are disabled: no control token is configured on the engine \
             (set SCALPER_CONTROL_TOKEN or SCALPER_CONTROL_TOKEN_FILE and restart)",
        ));
    };
    match request_token(meta) {
        None => Err(Status::unauthenticated(
            "missing control token: send `authorization: Bearer <token>` or `x-scalper-token: <token>` \
             (scalperctl: --token or SCALPER_CONTROL_TOKEN)",
        )),
        Some(t) if expected.matches(&t) => Ok(()),
        Some(_) => Err(Status::unauthenticated("invalid control token")),
    }
}

/// Normalises and validates a symbol (`btcusdt` → `BTCUSDT`).
pub fn parse_symbol(s: &str) -> Result<Symbol, Status> {
    let up = s.trim().to_ascii_uppercase();
    if Symbol::is_valid(&up) {
        Ok(Symbol::new(&up))
    } else {
        Err(Status::invalid_argument(format!(
            "invalid symbol {s:?}: expected uppercase letters and digits, e.g. BTCUSDT"
        )))
    }
}

fn code_label(c: Code) -> &'static str {
    match c {
        Code::Ok => "ok",
        Code::InvalidArgument => "invalid_argument",
        Code::NotFound => "not_found",
        Code::PermissionDenied => "permission_denied",
        Code::Unauthenticated => "unauthenticated",
        Code::FailedPrecondition => "failed_precondition",
        Code::ResourceExhausted => "resource_exhausted",
        Code::Unavailable => "unavailable",
        _ => "error",
    }
}

/// The `Control` service implementation.
pub struct ControlService {
    st: ControlState,
    cancel: CancellationToken,
}

impl ControlService {
    /// New service; open event streams end when `cancel` fires.
    pub fn new(st: ControlState, cancel: CancellationToken) -> ControlService {
        ControlService { st, cancel }
    }

    fn done<T>(&self, method: &'static str, r: Result<T, Status>) -> Result<Response<T>, Status> {
        let label = match &r {
            Ok(_) => "ok",
            Err(s) => code_label(s.code()),
        };
        self.st.read.metrics.control_requests.with_label_values(&[method, label]).inc();
        r.map(Response::new)
    }

    async fn submit(&self, kind: EventKind) -> Result<(), Status> {
        let ev = Event::new(0, EventTime::local(wall_ms()), kind);
        match tokio::time::timeout(SUBMIT_TIMEOUT, self.st.commands.send(ev)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(Status::unavailable("the engine has stopped; command not delivered")),
            Err(_) => Err(Status::unavailable("the engine's input queue stayed full; command not delivered")),
        }
    }

    /// [`authorize`] under the per-peer throttle: a peer with too many recent failures is refused
    /// (`ResourceExhausted`) without a check; every failure is logged (peer and method, never the
    /// token; at most ten lines a second) and counted in `scalper_control_auth_failures_total`.
    fn auth<T>(&self, req: &Request<T>, method: &'static str) -> Result<(), Status> {
        let sec = &self.st.security;
        if sec.token.is_none() {
            return authorize(sec, req.metadata());
        }
        let peer = peer_key(req.remote_addr());
        let failures = &self.st.read.metrics.control_auth_failures;
        let now = Instant::now();
        if let Err(wait) = sec.token_failures.check(peer, now) {
            failures.with_label_values(&["throttled"]).inc();
            if let Some(suppressed) = self.st.auth_log.pass() {
                tracing::warn!(%peer, method, suppressed, "control call refused: too many failed token attempts from this peer");
            }
            return Err(Status::resource_exhausted(format!(
                "too many failed token attempts from {peer}; retry in {} s",
                wait.as_secs().max(1)
            )));
        }
        authorize(sec, req.metadata()).inspect_err(|_| {
            sec.token_failures.record(peer, now);
            let reason = if request_token(req.metadata()).is_some() { "invalid" } else { "missing" };
            failures.with_label_values(&[reason]).inc();
            if let Some(suppressed) = self.st.auth_log.pass() {
                tracing::warn!(%peer, method, reason, suppressed, "control call refused: bad control token");
            }
        })
    }

    async fn command<T>(
        &self,
        req: &Request<T>,
        method: &'static str,
        cmd: ControlCommand,
    ) -> Result<proto::Ack, Status> {
        self.auth(req, method)?;
        let what = format!("{cmd:?}");
        self.submit(EventKind::Control(cmd)).await?;
        tracing::info!(method, command = %what, "control command queued for the engine");
        Ok(proto::Ack { ok: true, message: format!("{method}: queued for the engine") })
    }

    async fn set_mode_inner(&self, req: Request<proto::SetModeRequest>) -> Result<proto::SetModeReply, Status> {
        self.auth(&req, "SetMode")?;
        let peer = peer_key(req.remote_addr());
        let r = req.into_inner();
        let mode = Mode::parse(&r.mode).ok_or_else(|| {
            Status::invalid_argument(format!("unknown mode {:?}: expected SIM, DRY_RUN or LIVE", r.mode))
        })?;
        if mode != Mode::Live {
            self.submit(EventKind::Control(ControlCommand::SetMode(mode))).await?;
            tracing::info!(mode = mode.as_str(), "mode change queued for the engine");
            return Ok(proto::SetModeReply {
                ok: true,
                mode: mode.as_str().into(),
                message: format!("switching to {}: queued for the engine", mode.as_str()),
            });
        }
        self.check_live(&r.pin, r.confirm, peer)?;
        if !self.st.live_available {
            return Err(Status::failed_precondition(LIVE_UNAVAILABLE));
        }
        // The engine decides (it needs the exchange account reconciled and nothing open in the
        // current mode); wait for its MODE_CHANGED or MODE_REFUSED.
        if self.st.read.snapshot.borrow().mode == Mode::Live.as_str() {
            return Ok(proto::SetModeReply { ok: true, mode: "LIVE".into(), message: "already LIVE".into() });
        }
        let (_, mut rx) = self.st.read.events.recent_and_subscribe(0);
        self.submit(EventKind::Control(ControlCommand::EnterLive)).await?;
        tracing::warn!("LIVE requested with confirmation and PIN; queued for the engine");
        let deadline = tokio::time::Instant::now() + LIVE_CONFIRM_TIMEOUT;
        loop {
            let rec = match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Ok(rec)) => rec,
                Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => continue,
                Ok(Err(_)) | Err(_) => return Err(Status::deadline_exceeded(
                    "LIVE requested, but the engine neither entered nor refused it in time; check `scalperctl status`",
                )),
            };
            match (rec.event.as_str(), rec.body.get("to").and_then(|v| v.as_str())) {
                ("MODE_CHANGED", Some("LIVE")) => {
                    return Ok(proto::SetModeReply {
                        ok: true,
                        mode: "LIVE".into(),
                        message: "LIVE: real orders are sent to the exchange from now on".into(),
                    })
                }
                ("MODE_REFUSED", Some("LIVE")) => {
                    let why = rec.body.get("reason").and_then(|v| v.as_str()).unwrap_or("refused");
                    return Err(Status::failed_precondition(format!("the engine refused LIVE: {why}")));
                }
                _ => {}
            }
        }
    }

    /// The LIVE gate: confirmation, PIN configured, rate limits, PIN check (in that order; only a
    /// real PIN check consumes an attempt). The limit is per peer IP (one client's wrong PINs
    /// lock only that client) under a global ceiling over all peers; an attempt refused by its
    /// peer's limit does not use up the global one.
    fn check_live(&self, pin: &str, confirm: bool, peer: IpAddr) -> Result<(), Status> {
        let sec = &self.st.security;
        let attempts = &self.st.read.metrics.live_pin_attempts;
        if !confirm {
            return Err(Status::failed_precondition("LIVE needs an explicit confirmation (confirm=true)"));
        }
        let Some(hash) = &sec.pin else {
            return Err(Status::failed_precondition(
                "LIVE is disabled: no PIN hash is configured on the engine (SCALPER_LIVE_PIN_HASH)",
            ));
        };
        if pin.is_empty() {
            return Err(Status::unauthenticated("LIVE needs the PIN"));
        }
        let now = Instant::now();
        let limited = match sec.pin_attempts.check(peer, now) {
            Err(wait) => Some((wait, "from this address")),
            Ok(()) => sec.pin_global.try_acquire(now).err().map(|wait| (wait, "from all clients together")),
        };
        if let Some((wait, scope)) = limited {
            attempts.with_label_values(&["rate_limited"]).inc();
            if let Some(suppressed) = self.st.auth_log.pass() {
                tracing::warn!(%peer, scope, retry_in_s = wait.as_secs(), suppressed, "LIVE PIN attempt refused: rate limited");
            }
            return Err(Status::resource_exhausted(format!(
                "too many PIN attempts {scope}; retry in {} s",
                wait.as_secs().max(1)
            )));
        }
        sec.pin_attempts.record(peer, now);
        if !hash.verify(pin) {
            attempts.with_label_values(&["wrong"]).inc();
            tracing::warn!(%peer, "LIVE PIN attempt refused: wrong PIN");
            return Err(Status::permission_denied("wrong PIN"));
        }
        attempts.with_label_values(&["ok"]).inc();
        tracing::warn!(%peer, "LIVE PIN accepted");
        Ok(())
    }

    /// Reads the per-symbol overrides of the data directory again and queues them for the engine;
    /// `None` when the engine has no data directory here.
    async fn reload_overrides(&self) -> Result<Option<usize>, Status> {
        let Some(paths) = self.st.read.paths.clone() else { return Ok(None) };
        let metrics = self.st.read.metrics.clone();
        let cmd = tokio::task::spawn_blocking(move || crate::overrides::overrides_command(&paths, &metrics))
            .await
            .map_err(|e| Status::internal(format!("reading the overrides failed: {e}")))?;
        let n = match &cmd {
            ControlCommand::SetOverrides(all) => all.len(),
            _ => 0,
        };
        self.submit(EventKind::Control(cmd)).await?;
        Ok(Some(n))
    }

    /// A reload: the configuration file (when the engine has one), then the per-symbol overrides.
    async fn reload_inner(&self, req: Request<proto::Empty>) -> Result<proto::Ack, Status> {
        self.auth(&req, "ReloadConfig")?;
        let Some(path) = self.st.config_path.clone() else {
            return match self.reload_overrides().await? {
                Some(n) => Ok(proto::Ack {
                    ok: true,
                    message: format!("no config file; per-symbol overrides re-read ({n} symbols) and queued"),
                }),
                None => {
                    Err(Status::failed_precondition("the engine was started without a config file; nothing to reload"))
                }
            };
        };
        let shown = path.display().to_string();
        let loaded = tokio::task::spawn_blocking(move || Config::load(Some(&path)))
            .await
            .map_err(|e| Status::internal(format!("reload task failed: {e}")))?;
        let metrics = &self.st.read.metrics;
        match loaded {
            Ok(mut cfg) => {
                // The mode is never changed by a reload (same rule as the file watcher).
                if let Some(m) = Mode::parse(&self.st.read.snapshot.borrow().mode) {
                    cfg.mode = m;
                }
                // Nor the settings read only at start-up (same rule as the file watcher).
                let kept = match &self.st.startup_config {
                    Some(s) => crate::reload::keep_startup_only(&mut cfg, s, metrics),
                    None => Vec::new(),
                };
                self.submit(EventKind::ConfigReload(Arc::new(cfg))).await?;
                metrics.config_reloads.with_label_values(&["ok"]).inc();
                tracing::info!(path = %shown, "configuration reloaded on request; queued for the engine");
                let restart = if kept.is_empty() {
                    String::new()
                } else {
                    format!("; read at start-up only, kept until the next start: {}", kept.join(", "))
                };
                let overrides = match self.reload_overrides().await? {
                    Some(n) => format!("; per-symbol overrides re-read ({n} symbols)"),
                    None => String::new(),
                };
                Ok(proto::Ack {
                    ok: true,
                    message: format!("{shown}: valid; reload queued for the engine{restart}{overrides}"),
                })
            }
            Err(e) => {
                metrics.config_reloads.with_label_values(&["rejected"]).inc();
                tracing::error!(path = %shown, error = %e, "requested config reload refused");
                Err(Status::failed_precondition(format!("{shown}: {e}; the running configuration stays in force")))
            }
        }
    }

    fn news_inner(&self, r: &proto::NewsFlagRequest) -> Result<ControlCommand, Status> {
        let symbol = parse_symbol(&r.symbol)?;
        if !(0.0..=1.0).contains(&r.impact) {
            return Err(Status::invalid_argument(format!("impact must be in [0, 1], got {}", r.impact)));
        }
        let news_type = r.news_type.trim().to_ascii_uppercase();
        if news_type.is_empty()
            || news_type.len() > 32
            || !news_type.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(Status::invalid_argument(
                "news type must be 1-32 letters, digits, '_' or '-' (e.g. LISTING, HACK, MACRO)",
            ));
        }
        if r.ttl_seconds == 0 || r.ttl_seconds > MAX_NEWS_TTL_S {
            return Err(Status::invalid_argument(format!(
                "ttl must be 1..={MAX_NEWS_TTL_S} seconds, got {}",
                r.ttl_seconds
            )));
        }
        let expires_ms = wall_ms() + (r.ttl_seconds as i64) * 1000;
        Ok(ControlCommand::SetNewsFlag { symbol, impact: r.impact, news_type, expires_ms })
    }
}

/// The stream type of `StreamEvents`.
pub type EventStream = Pin<Box<dyn Stream<Item = Result<proto::EventRecord, Status>> + Send + 'static>>;

fn lagged(skipped: u64) -> proto::EventRecord {
    proto::EventRecord {
        seq: 0,
        ts_ms: wall_ms(),
        symbol: String::new(),
        event: "LAGGED".into(),
        json: serde_json::json!({"event": "LAGGED", "skipped": skipped}).to_string(),
    }
}

struct StreamState {
    initial: VecDeque<proto::EventRecord>,
    rx: Option<broadcast::Receiver<Arc<EventRecord>>>,
    symbol: Option<String>,
    cancel: CancellationToken,
}

fn event_stream(st: StreamState) -> EventStream {
    Box::pin(futures_util::stream::unfold(st, |mut st| async move {
        if let Some(e) = st.initial.pop_front() {
            return Some((Ok(e), st));
        }
        let rx = st.rx.as_mut()?;
        loop {
            let r = tokio::select! {
                _ = st.cancel.cancelled() => return None,
                r = rx.recv() => r,
            };
            match r {
                Ok(e) => {
                    if st.symbol.as_ref().is_none_or(|s| e.symbol.as_ref() == Some(s)) {
                        return Some((Ok(proto::EventRecord::from(e.as_ref())), st));
                    }
                }
                Err(broadcast::error::RecvError::Lagged(n)) => return Some((Ok(lagged(n)), st)),
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }))
}

#[tonic::async_trait]
impl Control for ControlService {
    async fn get_summary(&self, _req: Request<proto::Empty>) -> Result<Response<proto::Summary>, Status> {
        let s = self.st.read.summary();
        self.done("GetSummary", Ok(proto::Summary::from(&s)))
    }

    async fn get_health(&self, _req: Request<proto::Empty>) -> Result<Response<proto::Health>, Status> {
        let h = &self.st.read.health;
        self.done("GetHealth", Ok(health_message(h.overall(), &h.snapshot())))
    }

    async fn list_hotlist(&self, req: Request<proto::HotlistRequest>) -> Result<Response<proto::Hotlist>, Status> {
        let limit = match req.get_ref().limit {
            0 => DEFAULT_HOTLIST,
            n => (n as usize).min(MAX_HOTLIST),
        };
        let v = self.st.read.current_view();
        let entries = v.hotlist(limit).into_iter().map(Into::into).collect();
        self.done("ListHotlist", Ok(proto::Hotlist { entries, ts_ms: v.ts_ms }))
    }

    async fn get_symbol(&self, req: Request<proto::SymbolRequest>) -> Result<Response<proto::SymbolDetail>, Status> {
        let r = parse_symbol(&req.get_ref().symbol).and_then(|sym| {
            let v = self.st.read.current_view();
            v.symbol(sym.as_str())
                .map(proto::SymbolDetail::from)
                .ok_or_else(|| Status::not_found(format!("symbol {sym} is not tracked by the engine")))
        });
        self.done("GetSymbol", r)
    }

    async fn list_active_trades(&self, _req: Request<proto::Empty>) -> Result<Response<proto::ActiveTrades>, Status> {
        let v = self.st.read.current_view();
        let trades = v.trades.iter().map(Into::into).collect();
        self.done("ListActiveTrades", Ok(proto::ActiveTrades { trades, ts_ms: v.ts_ms }))
    }

    type StreamEventsStream = EventStream;

    async fn stream_events(
        &self,
        req: Request<proto::StreamEventsRequest>,
    ) -> Result<Response<Self::StreamEventsStream>, Status> {
        let r = req.into_inner();
        let symbol =
            if r.symbol.is_empty() { Ok(None) } else { parse_symbol(&r.symbol).map(|s| Some(s.as_str().to_string())) };
        let symbol = match symbol {
            Ok(s) => s,
            Err(e) => return self.done("StreamEvents", Err(e)),
        };
        let (recent, rx) = self.st.read.events.recent_and_subscribe(DEFAULT_RECENT);
        let matching: Vec<_> =
            recent.iter().filter(|e| symbol.as_ref().is_none_or(|s| e.symbol.as_ref() == Some(s))).collect();
        let skip = matching.len().saturating_sub(r.recent as usize);
        let initial = matching.into_iter().skip(skip).map(|e| proto::EventRecord::from(e.as_ref())).collect();
        let st = StreamState { initial, rx: r.follow.then_some(rx), symbol, cancel: self.cancel.clone() };
        self.done("StreamEvents", Ok(event_stream(st)))
    }

    async fn set_mode(&self, req: Request<proto::SetModeRequest>) -> Result<Response<proto::SetModeReply>, Status> {
        let r = self.set_mode_inner(req).await;
        self.done("SetMode", r)
    }

    async fn pause(&self, req: Request<proto::Empty>) -> Result<Response<proto::Ack>, Status> {
        let r = self.command(&req, "Pause", ControlCommand::Pause).await;
        self.done("Pause", r)
    }

    async fn resume(&self, req: Request<proto::Empty>) -> Result<Response<proto::Ack>, Status> {
        let r = self.command(&req, "Resume", ControlCommand::Resume).await;
        self.done("Resume", r)
    }

    async fn panic_close_all(&self, req: Request<proto::Empty>) -> Result<Response<proto::Ack>, Status> {
        let r = self.command(&req, "PanicCloseAll", ControlCommand::PanicCloseAll).await;
        self.done("PanicCloseAll", r)
    }

    async fn blacklist(&self, req: Request<proto::SymbolRequest>) -> Result<Response<proto::Ack>, Status> {
        let r = match self.auth(&req, "Blacklist").and_then(|_| parse_symbol(&req.get_ref().symbol)) {
            Ok(s) => self.command(&req, "Blacklist", ControlCommand::Blacklist(s)).await,
            Err(e) => Err(e),
        };
        self.done("Blacklist", r)
    }

    async fn unblacklist(&self, req: Request<proto::SymbolRequest>) -> Result<Response<proto::Ack>, Status> {
        let r = match self.auth(&req, "Unblacklist").and_then(|_| parse_symbol(&req.get_ref().symbol)) {
            Ok(s) => self.command(&req, "Unblacklist", ControlCommand::Unblacklist(s)).await,
            Err(e) => Err(e),
        };
        self.done("Unblacklist", r)
    }

    async fn set_news_flag(&self, req: Request<proto::NewsFlagRequest>) -> Result<Response<proto::Ack>, Status> {
        let r = match self.auth(&req, "SetNewsFlag").and_then(|_| self.news_inner(req.get_ref())) {
            Ok(cmd) => self.command(&req, "SetNewsFlag", cmd).await,
            Err(e) => Err(e),
        };
        self.done("SetNewsFlag", r)
    }

    async fn clear_news_flag(&self, req: Request<proto::SymbolRequest>) -> Result<Response<proto::Ack>, Status> {
        let r = match self.auth(&req, "ClearNewsFlag").and_then(|_| parse_symbol(&req.get_ref().symbol)) {
            Ok(s) => self.command(&req, "ClearNewsFlag", ControlCommand::ClearNewsFlag(s)).await,
            Err(e) => Err(e),
        };
        self.done("ClearNewsFlag", r)
    }

    async fn reload_config(&self, req: Request<proto::Empty>) -> Result<Response<proto::Ack>, Status> {
        let r = self.reload_inner(req).await;
        self.done("ReloadConfig", r)
    }
}

/// A running gRPC server.
pub struct GrpcServer {
    /// The bound address (useful with port 0).
    pub local_addr: SocketAddr,
    /// The server task; ends after `cancel` fires and connections drain.
    pub task: tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
}

/// A server certificate chain and private key, PEM.
#[derive(Clone)]
pub struct GrpcTls {
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
}

impl std::fmt::Debug for GrpcTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GrpcTls(<key redacted>)")
    }
}

impl GrpcTls {
    /// From PEM bytes (checked when the server starts).
    pub fn from_pem(cert_pem: impl Into<Vec<u8>>, key_pem: impl Into<Vec<u8>>) -> GrpcTls {
        GrpcTls { cert_pem: cert_pem.into(), key_pem: key_pem.into() }
    }
    /// Reads both PEM files; the error names the file that could not be read.
    pub fn load(cert: &std::path::Path, key: &std::path::Path) -> Result<GrpcTls, String> {
        let read = |p: &std::path::Path, what: &str| {
            std::fs::read(p).map_err(|e| format!("cannot read the gRPC TLS {what} {}: {e}", p.display()))
        };
        Ok(GrpcTls { cert_pem: read(cert, "certificate")?, key_pem: read(key, "key")? })
    }
}

/// Default cap on concurrent gRPC connections (`control.grpc_max_connections`).
pub const DEFAULT_MAX_CONNECTIONS: usize = 128;

/// How the gRPC server may be exposed.
#[derive(Debug, Clone)]
pub struct GrpcOptions {
    /// Serve over TLS with this identity.
    pub tls: Option<GrpcTls>,
    /// Accept plaintext on a non-loopback address (`control.allow_insecure_remote`).
    pub allow_insecure_remote: bool,
    /// Connections served at once; more are closed as soon as they are accepted. Separate from
    /// the HTTP API's cap, so HTTP clients can never use up gRPC's room (PANIC stays reachable).
    pub max_connections: usize,
    /// A connection must send its first byte (TLS hello or HTTP/2 preface) within this time, and
    /// a TLS handshake must finish within it; otherwise it is closed and its slot freed.
    pub first_byte_timeout: Duration,
}

/// Default of [`GrpcOptions::first_byte_timeout`].
pub const DEFAULT_FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(10);

impl Default for GrpcOptions {
    fn default() -> Self {
        GrpcOptions {
            tls: None,
            allow_insecure_remote: false,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            first_byte_timeout: DEFAULT_FIRST_BYTE_TIMEOUT,
        }
    }
}

/// An accepted gRPC connection holding one of the server's connection slots until it closes.
struct SlotStream {
    io: tokio::net::TcpStream,
    _slot: tokio::sync::OwnedSemaphorePermit,
    /// Deadline for the first byte; `None` once one arrived.
    first_byte: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl tonic::transport::server::Connected for SlotStream {
    type ConnectInfo = tonic::transport::server::TcpConnectInfo;
    fn connect_info(&self) -> Self::ConnectInfo {
        self.io.connect_info()
    }
}

impl tokio::io::AsyncRead for SlotStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.io).poll_read(cx, buf);
        if let Some(deadline) = self.first_byte.as_mut() {
            if buf.filled().len() > before {
                self.first_byte = None;
            } else if r.is_pending() && std::future::Future::poll(deadline.as_mut(), cx).is_ready() {
                return std::task::Poll::Ready(Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "no byte from the client within the first-byte timeout",
                )));
            }
        }
        r
    }
}

impl tokio::io::AsyncWrite for SlotStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        b: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, b)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// The accepted connections of `listener`, at most `max` open at once: one over the cap is
/// closed at once and counted (`scalper_grpc_connections_rejected_total`); accept errors (e.g.
/// out of file descriptors) are counted, logged at most once a second and retried after a pause.
fn limited_incoming(
    listener: tokio::net::TcpListener,
    max: usize,
    first_byte_timeout: Duration,
    metrics: Arc<crate::monitoring::metrics::Metrics>,
) -> impl Stream<Item = Result<SlotStream, std::io::Error>> {
    let slots = Arc::new(tokio::sync::Semaphore::new(max.max(1)));
    let log = Arc::new(super::LogGate::new(Duration::from_secs(1)));
    futures_util::stream::unfold((listener, slots, metrics, log), move |(listener, slots, metrics, log)| async move {
        loop {
            let (io, peer) = match listener.accept().await {
                Ok(x) => x,
                Err(e) => {
                    metrics.grpc_accept_errors.inc();
                    if let Some(suppressed) = log.pass() {
                        tracing::warn!(error = %e, suppressed, "gRPC: accept failed; retrying");
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            match slots.clone().try_acquire_owned() {
                Ok(slot) => {
                    let _ = io.set_nodelay(true);
                    let first_byte = Some(Box::pin(tokio::time::sleep(first_byte_timeout)));
                    return Some((Ok(SlotStream { io, _slot: slot, first_byte }), (listener, slots, metrics, log)));
                }
                Err(_) => {
                    metrics.grpc_connections_rejected.inc();
                    if let Some(suppressed) = log.pass() {
                        tracing::warn!(%peer, max, suppressed, "gRPC: connection limit reached; closing the new connection");
                    }
                }
            }
        }
    })
}

impl GrpcOptions {
    /// From the `control` section (reads the PEM files when TLS is configured).
    pub fn from_config(c: &scalper_core::config::ControlConfig) -> Result<GrpcOptions, String> {
        let tls = match (&c.grpc_tls_cert, &c.grpc_tls_key) {
            (Some(cert), Some(key)) => Some(GrpcTls::load(cert, key)?),
            (None, None) => None,
            _ => return Err("control.grpc_tls_cert and control.grpc_tls_key must be set together".into()),
        };
        Ok(GrpcOptions {
            tls,
            allow_insecure_remote: c.allow_insecure_remote,
            max_connections: c.grpc_max_connections,
            ..GrpcOptions::default()
        })
    }
}

/// Binds `addr` on loopback in plaintext and serves (see [`serve_with`]).
pub async fn serve(state: ControlState, addr: SocketAddr, cancel: CancellationToken) -> std::io::Result<GrpcServer> {
    serve_with(state, addr, GrpcOptions::default(), cancel).await
}

/// Binds `addr` and serves the control service, the gRPC health service (`grpc.health.v1`,
/// service `scalper.v1.Control` reported SERVING) and reflection until `cancel` fires.
///
/// A non-loopback `addr` without TLS is refused (`InvalidInput`) unless
/// `opts.allow_insecure_remote`, which is logged as an error-level warning: the token and the
/// LIVE PIN would cross the network in clear. A bad certificate or key is refused the same way.
pub async fn serve_with(
    state: ControlState,
    addr: SocketAddr,
    opts: GrpcOptions,
    cancel: CancellationToken,
) -> std::io::Result<GrpcServer> {
    if !addr.ip().is_loopback() && opts.tls.is_none() {
        if !opts.allow_insecure_remote {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "refusing plaintext gRPC on non-loopback address {addr}: the control token and LIVE PIN                      would travel in clear; configure control.grpc_tls_cert + control.grpc_tls_key, or set                      control.allow_insecure_remote = true"
                ),
            ));
        }
        tracing::error!(
            %addr,
            "INSECURE: the gRPC control plane serves PLAINTEXT on a non-loopback address              (control.allow_insecure_remote = true); the control token and LIVE PIN cross the network in clear"
        );
    }
    // Server pings reap connections whose peer vanished, so dead ones do not hold slots.
    let mut builder = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)));
    if let Some(tls) = &opts.tls {
        let identity = tonic::transport::Identity::from_pem(&tls.cert_pem, &tls.key_pem);
        let tls_config = tonic::transport::ServerTlsConfig::new().identity(identity).timeout(opts.first_byte_timeout);
        builder = builder.tls_config(tls_config).map_err(|e| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("gRPC TLS certificate or key refused: {e}"))
        })?;
    }
    if state.security.token.is_none() {
        tracing::warn!("no control token configured: mutating gRPC calls will be refused");
    }
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local_addr = listener.local_addr()?;
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter.set_serving::<ControlServer<ControlService>>().await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(std::io::Error::other)?;
    let incoming =
        limited_incoming(listener, opts.max_connections, opts.first_byte_timeout, state.read.metrics.clone());
    let svc = ControlServer::new(ControlService::new(state, cancel.clone()));
    tracing::info!(%local_addr, tls = opts.tls.is_some(), "gRPC control plane listening");
    let task = tokio::spawn(async move {
        let _reporter = reporter;
        builder
            .add_service(health)
            .add_service(reflection)
            .add_service(svc)
            .serve_with_incoming_shutdown(incoming, async move { cancel.cancelled().await })
            .await
    });
    Ok(GrpcServer { local_addr, task })
}
