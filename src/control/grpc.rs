//! The gRPC control plane (tonic), with the standard health service and reflection.
//!
//! Reads are served from the published snapshot/view, the health board and the event bus.
//! Mutations need the control token and become [`Event`]s of kind [`EventKind::Control`] (or
//! [`EventKind::ConfigReload`]) sent into the core's input channel: they take effect when the core
//! processes them, in order with everything else.
//!
//! LIVE: `confirm=true` and the PIN are both required; PIN attempts are rate-limited (3 per minute
//! by default) and logged. This build has no private Bybit connector, so even a correct PIN is
//! answered with a refusal saying LIVE is not available. Leaving LIVE is always allowed.

use super::auth::Security;
use super::bus::{EventRecord, DEFAULT_RECENT};
use super::convert::health_message;
use super::state::ControlState;
use super::view::{DEFAULT_HOTLIST, MAX_HOTLIST};
use crate::config::Config;
use crate::domain::{EventTime, Symbol};
use crate::engine::event::{ControlCommand, Event, EventKind, Mode};
use crate::engine::runtime::wall_ms;
use crate::proto;
use crate::proto::control_server::{Control, ControlServer};
use futures_util::Stream;
use std::collections::VecDeque;
use std::net::SocketAddr;
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

    async fn command<T>(
        &self,
        req: &Request<T>,
        method: &'static str,
        cmd: ControlCommand,
    ) -> Result<proto::Ack, Status> {
        authorize(&self.st.security, req.metadata())?;
        let what = format!("{cmd:?}");
        self.submit(EventKind::Control(cmd)).await?;
        tracing::info!(method, command = %what, "control command queued for the engine");
        Ok(proto::Ack { ok: true, message: format!("{method}: queued for the engine") })
    }

    async fn set_mode_inner(&self, req: Request<proto::SetModeRequest>) -> Result<proto::SetModeReply, Status> {
        authorize(&self.st.security, req.metadata())?;
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
        self.check_live(&r.pin, r.confirm)?;
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

    /// The LIVE gate: confirmation, PIN configured, rate limit, PIN check (in that order; only a
    /// real PIN check consumes an attempt).
    fn check_live(&self, pin: &str, confirm: bool) -> Result<(), Status> {
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
        if let Err(wait) = sec.pin_attempts.try_acquire(Instant::now()) {
            attempts.with_label_values(&["rate_limited"]).inc();
            tracing::warn!(retry_in_s = wait.as_secs(), "LIVE PIN attempt refused: rate limited");
            return Err(Status::resource_exhausted(format!(
                "too many PIN attempts; retry in {} s",
                wait.as_secs().max(1)
            )));
        }
        if !hash.verify(pin) {
            attempts.with_label_values(&["wrong"]).inc();
            tracing::warn!("LIVE PIN attempt refused: wrong PIN");
            return Err(Status::permission_denied("wrong PIN"));
        }
        attempts.with_label_values(&["ok"]).inc();
        tracing::warn!("LIVE PIN accepted");
        Ok(())
    }

    async fn reload_inner(&self, req: Request<proto::Empty>) -> Result<proto::Ack, Status> {
        authorize(&self.st.security, req.metadata())?;
        let Some(path) = self.st.config_path.clone() else {
            return Err(Status::failed_precondition("the engine was started without a config file; nothing to reload"));
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
                self.submit(EventKind::ConfigReload(Arc::new(cfg))).await?;
                metrics.config_reloads.with_label_values(&["ok"]).inc();
                tracing::info!(path = %shown, "configuration reloaded on request; queued for the engine");
                Ok(proto::Ack { ok: true, message: format!("{shown}: valid; reload queued for the engine") })
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
        let r = match authorize(&self.st.security, req.metadata()).and_then(|_| parse_symbol(&req.get_ref().symbol)) {
            Ok(s) => self.command(&req, "Blacklist", ControlCommand::Blacklist(s)).await,
            Err(e) => Err(e),
        };
        self.done("Blacklist", r)
    }

    async fn unblacklist(&self, req: Request<proto::SymbolRequest>) -> Result<Response<proto::Ack>, Status> {
        let r = match authorize(&self.st.security, req.metadata()).and_then(|_| parse_symbol(&req.get_ref().symbol)) {
            Ok(s) => self.command(&req, "Unblacklist", ControlCommand::Unblacklist(s)).await,
            Err(e) => Err(e),
        };
        self.done("Unblacklist", r)
    }

    async fn set_news_flag(&self, req: Request<proto::NewsFlagRequest>) -> Result<Response<proto::Ack>, Status> {
        let r = match authorize(&self.st.security, req.metadata()).and_then(|_| self.news_inner(req.get_ref())) {
            Ok(cmd) => self.command(&req, "SetNewsFlag", cmd).await,
            Err(e) => Err(e),
        };
        self.done("SetNewsFlag", r)
    }

    async fn clear_news_flag(&self, req: Request<proto::SymbolRequest>) -> Result<Response<proto::Ack>, Status> {
        let r = match authorize(&self.st.security, req.metadata()).and_then(|_| parse_symbol(&req.get_ref().symbol)) {
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

/// Binds `addr` (the config default is 127.0.0.1:50051; a non-loopback address is logged as a
/// warning) and serves the control service, the gRPC health service (`grpc.health.v1`, service
/// `scalper.v1.Control` reported SERVING) and reflection until `cancel` fires.
pub async fn serve(state: ControlState, addr: SocketAddr, cancel: CancellationToken) -> std::io::Result<GrpcServer> {
    if !addr.ip().is_loopback() {
        tracing::warn!(%addr, "the gRPC control plane listens on a non-loopback address");
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
    let svc = ControlServer::new(ControlService::new(state, cancel.clone()));
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    tracing::info!(%local_addr, "gRPC control plane listening");
    let task = tokio::spawn(async move {
        let _reporter = reporter;
        tonic::transport::Server::builder()
            .add_service(health)
            .add_service(reflection)
            .add_service(svc)
            .serve_with_incoming_shutdown(incoming, async move { cancel.cancelled().await })
            .await
    });
    Ok(GrpcServer { local_addr, task })
}
