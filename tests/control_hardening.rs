//! Hardening of the control plane over real sockets: HTTP connection cap and timeouts (5,000 idle
//! HTTP connections leave gRPC PANIC working), refusal of plaintext beyond loopback, gRPC over
//! TLS (a client and `scalperctl --tls-ca`), token failures throttled per peer and the LIVE PIN
//! limited per peer (peers are distinct loopback addresses: 127.0.0.2, 127.0.0.3, …).

use scalper::config::Config;
use scalper::config::ConfigFile;
use scalper::control::auth::{AuthLimits, PinHash, Security};
use scalper::control::bus::EventBus;
use scalper::control::http::{self, HttpLimits};
use scalper::control::view::ControlView;
use scalper::control::{grpc, ControlState, ReadState};
use scalper::engine::event::{ControlCommand, Event, EventKind};
use scalper::engine::health::HealthBoard;
use scalper::engine::runtime::EngineSnapshot;
use scalper::monitoring::metrics::Metrics;
use scalper::proto;
use scalper::proto::control_client::ControlClient;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tonic::transport::{Channel, Endpoint};
use tonic::Code;

const TOKEN: &str = "hardening-t0ken";
const PIN: &str = "2468";

struct Harness {
    grpc_addr: SocketAddr,
    rx: mpsc::Receiver<Event>,
    metrics: Arc<Metrics>,
    cancel: CancellationToken,
    read: ReadState,
    _snap: watch::Sender<EngineSnapshot>,
    _view: watch::Sender<Arc<ControlView>>,
}

fn read_state(metrics: Arc<Metrics>) -> (ReadState, watch::Sender<EngineSnapshot>, watch::Sender<Arc<ControlView>>) {
    let (snap, snap_rx) = watch::channel(EngineSnapshot::default());
    let (view, view_rx) = watch::channel(Arc::new(ControlView::default()));
    let read = ReadState {
        metrics,
        health: HealthBoard::default(),
        snapshot: snap_rx,
        view: view_rx,
        events: EventBus::new(100, 64),
        paths: None,
    };
    (read, snap, view)
}

async fn start_grpc(security: Security, opts: grpc::GrpcOptions, addr: &str) -> std::io::Result<Harness> {
    let metrics = Arc::new(Metrics::new());
    let (read, snap, view) = read_state(metrics.clone());
    let (tx, rx) = mpsc::channel(64);
    let state = ControlState::new(read.clone(), tx, security);
    let cancel = CancellationToken::new();
    let server = grpc::serve_with(state, addr.parse().unwrap(), opts, cancel.clone()).await?;
    Ok(Harness { grpc_addr: server.local_addr, rx, metrics, cancel, read, _snap: snap, _view: view })
}

fn secured(limits: AuthLimits) -> Security {
    Security::new(Some(TOKEN), Some(PinHash::from_pin("salt", PIN))).with_limits(limits)
}

/// A client whose connections come from `local` (a loopback address: the server sees it as the
/// peer).
async fn client_from(addr: SocketAddr, local: &str) -> ControlClient<Channel> {
    let ch = Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .local_address(Some(local.parse::<IpAddr>().unwrap()))
        .connect()
        .await
        .expect("gRPC connects");
    ControlClient::new(ch)
}

fn with_token<T>(msg: T, token: &str) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    r
}

/// Raises this process's soft open-files limit to at least `want` (up to the hard limit) and
/// returns the soft limit in force.
fn raise_open_files_limit(want: u64) -> u64 {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit only read/write the struct passed by pointer.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 0;
        }
        if lim.rlim_cur < want {
            let raised = libc::rlimit { rlim_cur: want.min(lim.rlim_max), rlim_max: lim.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim = raised;
            }
        }
    }
    lim.rlim_cur
}

/// True when the peer closed `s` (EOF or reset); false while it is open with nothing to read.
fn closed_by_server(s: &TcpStream) -> bool {
    let mut b = [0u8; 64];
    match s.try_read(&mut b) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => false,
        Err(_) => true,
    }
}

async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).await.expect("HTTP connects");
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await.expect("HTTP answers").unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, text)
}

async fn start_http(
    app: axum::Router,
    limits: HttpLimits,
    metrics: Arc<Metrics>,
    cancel: CancellationToken,
) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(http::serve(listener, app, limits, metrics, cancel));
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_thousand_idle_http_connections_leave_grpc_panic_working() {
    const IDLE: usize = 5_000;
    const CAP: usize = 64;
    let need = (IDLE + 2 * CAP + 512) as u64;
    let limit = raise_open_files_limit(need);
    assert!(
        limit >= need,
        "this test holds {IDLE} sockets: needs an open-files limit of {need} (ulimit -Hn), got {limit}"
    );
    let mut h = start_grpc(secured(AuthLimits::default()), grpc::GrpcOptions::default(), "127.0.0.1:0").await.unwrap();
    let header_timeout = Duration::from_secs(6);
    let limits = HttpLimits {
        max_connections: CAP,
        header_timeout,
        request_timeout: Duration::from_secs(5),
        idle_timeout: Duration::from_secs(60),
    };
    let http_addr = start_http(http::api_router(h.read.clone()), limits, h.metrics.clone(), h.cancel.clone()).await;

    let t0 = Instant::now();
    let mut idle = Vec::with_capacity(IDLE);
    for _ in 0..IDLE {
        idle.push(TcpStream::connect(http_addr).await.expect("the kernel accepts the TCP connection"));
    }
    let opened_in = t0.elapsed();
    assert!(
        opened_in < Duration::from_secs(3),
        "opening the connections took {opened_in:?}; the timing below needs less"
    );

    // Every connection over the cap is closed by the server at once.
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let rejected = h.metrics.http_connections_rejected.get() as usize;
        if rejected == IDLE - CAP {
            break;
        }
        assert!(Instant::now() < deadline, "only {rejected} connections over the cap were refused");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(h.metrics.http_connections_open.get(), CAP as i64);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let closed = idle.iter().filter(|s| closed_by_server(s)).count();
    assert!(t0.elapsed() < header_timeout, "the check must run before the header timeout");
    assert_eq!(closed, IDLE - CAP, "the connections over the cap are closed, the {CAP} served ones are not (yet)");

    // With the HTTP side saturated, gRPC answers and PANIC reaches the core.
    let mut c = client_from(h.grpc_addr, "127.0.0.1").await;
    assert!(!c.get_health(proto::Empty {}).await.expect("GetHealth").into_inner().overall.is_empty());
    let ack = c.panic_close_all(with_token(proto::Empty {}, TOKEN)).await.expect("PANIC accepted").into_inner();
    assert!(ack.ok);
    let ev = tokio::time::timeout(Duration::from_secs(5), h.rx.recv()).await.unwrap().unwrap();
    assert!(matches!(ev.kind, EventKind::Control(ControlCommand::PanicCloseAll)), "{:?}", ev.kind);

    // The served connections sent nothing: the header timeout closes them, freeing the slots.
    let deadline = t0 + header_timeout + Duration::from_secs(5);
    while idle.iter().any(|s| !closed_by_server(s)) {
        assert!(Instant::now() < deadline, "silent connections outlived the header timeout");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(t0.elapsed() >= header_timeout - Duration::from_millis(500), "closed before the header timeout");
    assert_eq!(h.metrics.http_timeouts.with_label_values(&["header"]).get(), CAP as u64);
    let (status, body) = http_get(http_addr, "/api/health").await;
    assert_eq!(status, 200, "{body}");
    let metrics = http_get(http_addr, "/metrics").await.1;
    assert!(metrics.contains(&format!("scalper_http_connections_rejected_total {}", IDLE - CAP)), "{metrics}");
    h.cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_slow_http_requests_are_cut() {
    let metrics = Arc::new(Metrics::new());
    let cancel = CancellationToken::new();
    let app = axum::Router::new().route("/fast", axum::routing::get(|| async { "ok" })).route(
        "/slow",
        axum::routing::get(|| async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            "late"
        }),
    );
    let limits = HttpLimits {
        max_connections: 8,
        header_timeout: Duration::from_secs(10),
        request_timeout: Duration::from_millis(300),
        idle_timeout: Duration::from_millis(400),
    };
    let addr = start_http(app, limits, metrics.clone(), cancel.clone()).await;
    let t0 = Instant::now();
    let (status, body) = http_get(addr, "/slow").await;
    assert_eq!(status, 408, "{body}");
    assert!(t0.elapsed() < Duration::from_secs(3));
    assert_eq!(metrics.http_timeouts.with_label_values(&["request"]).get(), 1);
    assert_eq!(http_get(addr, "/fast").await.0, 200);

    // A kept-alive connection that goes quiet is closed after the idle timeout, not the (longer)
    // header timeout.
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /fast HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut buf = vec![0u8; 1024];
    let n = s.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let t1 = Instant::now();
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await.expect("closed by the server");
    assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
    assert!(t1.elapsed() >= Duration::from_millis(300) && t1.elapsed() < Duration::from_secs(3), "{:?}", t1.elapsed());
    assert_eq!(metrics.http_timeouts.with_label_values(&["idle"]).get(), 1);

    // The header timeout is also the longest wait for the next request on a kept-alive
    // connection.
    let limits =
        HttpLimits { header_timeout: Duration::from_millis(300), idle_timeout: Duration::from_secs(30), ..limits };
    let app = axum::Router::new().route("/fast", axum::routing::get(|| async { "ok" }));
    let addr = start_http(app, limits, metrics.clone(), cancel.clone()).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /fast HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let n = s.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let t2 = Instant::now();
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await.expect("closed by the server");
    assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
    assert!(t2.elapsed() < Duration::from_secs(3), "{:?}", t2.elapsed());
    assert_eq!(metrics.http_timeouts.with_label_values(&["idle"]).get(), 1, "not the idle timeout");
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_beyond_loopback_needs_an_explicit_opt_in() {
    // Configuration: refused with a message that names the fix, accepted with the opt-in or TLS.
    let err = Config::from_toml_str("[server]\ngrpc_addr = \"0.0.0.0:50051\"\n").unwrap_err().to_string();
    assert!(err.contains("server.grpc_addr") && err.contains("allow_insecure_remote"), "{err}");
    assert!(err.contains("grpc_tls_cert"), "{err}");
    Config::from_toml_str("[server]\ngrpc_addr = \"0.0.0.0:50051\"\n[control]\nallow_insecure_remote = true\n")
        .expect("opt-in accepted");
    Config::from_toml_str(
        "[server]\ngrpc_addr = \"0.0.0.0:50051\"\n[control]\ngrpc_tls_cert = \"c.pem\"\ngrpc_tls_key = \"k.pem\"\n",
    )
    .expect("TLS accepted");
    let err = Config::from_toml_str("[control]\ngrpc_tls_cert = \"c.pem\"\n").unwrap_err().to_string();
    assert!(err.contains("set together"), "{err}");
    let err = Config::from_toml_str("[server]\nhttp_addr = \"0.0.0.0:9464\"\n").unwrap_err().to_string();
    assert!(err.contains("server.http_addr") && err.contains("http_allow_remote"), "{err}");
    Config::from_toml_str("[server]\nhttp_addr = \"0.0.0.0:9464\"\n[control]\nhttp_allow_remote = true\n")
        .expect("HTTP opt-in accepted");
    assert!(Config::from_toml_str("[server]\ngrpc_addr = \"[::1]:50051\"\n").is_ok(), "IPv6 loopback is local");
    let err = Config::from_toml_str("[control]\nhttp_max_connections = 0\n").unwrap_err().to_string();
    assert!(err.contains("control.http_max_connections"), "{err}");

    // The server itself refuses plaintext on a non-loopback address, and serves with the opt-in.
    let err = start_grpc(Security::new(Some(TOKEN), None), grpc::GrpcOptions::default(), "0.0.0.0:0")
        .await
        .err()
        .expect("plaintext on 0.0.0.0 refused");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("allow_insecure_remote"), "{err}");
    let opts = grpc::GrpcOptions { allow_insecure_remote: true, ..Default::default() };
    let h = start_grpc(Security::new(Some(TOKEN), None), opts, "0.0.0.0:0").await.expect("opt-in serves");
    let local: SocketAddr = format!("127.0.0.1:{}", h.grpc_addr.port()).parse().unwrap();
    let mut c = client_from(local, "127.0.0.1").await;
    assert!(c.get_health(proto::Empty {}).await.is_ok());
    h.cancel.cancel();

    // The engine refuses to start before binding anything.
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config::default();
    cfg.server.grpc_addr = "0.0.0.0:0".into();
    cfg.server.http_addr = "127.0.0.1:0".into();
    let paths = scalper::config::paths::Paths::resolve(dir.path(), None, Some(dir.path()));
    let opts = scalper::engine::runtime::RunOptions::new(Arc::new(cfg), paths, CancellationToken::new());
    let err = tokio::time::timeout(Duration::from_secs(10), scalper::engine::runtime::run(opts))
        .await
        .expect("refused at once")
        .expect_err("refused");
    assert!(format!("{err:#}").contains("allow_insecure_remote"), "{err:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_over_tls_with_a_self_signed_certificate() {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    let (cert_pem, key_pem) = (ck.cert.pem(), ck.signing_key.serialize_pem());
    let opts =
        grpc::GrpcOptions { tls: Some(grpc::GrpcTls::from_pem(cert_pem.clone(), key_pem)), ..Default::default() };
    let h = start_grpc(Security::new(Some(TOKEN), None), opts, "127.0.0.1:0").await.expect("TLS server starts");
    let port = h.grpc_addr.port();

    let tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(&cert_pem))
        .domain_name("localhost");
    let ch = Endpoint::from_shared(format!("https://127.0.0.1:{port}"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .expect("TLS handshake");
    let health = ControlClient::new(ch).get_health(proto::Empty {}).await.expect("GetHealth over TLS").into_inner();
    assert!(!health.overall.is_empty());

    // Plaintext against the TLS port does not get an answer.
    let plain = Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
        .unwrap()
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(2));
    let answered = match plain.connect().await {
        Ok(ch) => ControlClient::new(ch).get_health(proto::Empty {}).await.is_ok(),
        Err(_) => false,
    };
    assert!(!answered, "a plaintext client must not be served by the TLS listener");

    // scalperctl talks TLS with --tls-ca (the certificate's SAN covers 127.0.0.1).
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &cert_pem).unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_scalperctl"))
        .args(["--addr", &format!("https://127.0.0.1:{port}"), "--tls-ca"])
        .arg(&ca)
        .args(["-o", "json", "health"])
        .env_remove("SCALPER_CONTROL_ADDR")
        .env_remove("SCALPER_CONTROL_TLS_CA")
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "scalperctl over TLS: {}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("overall"), "{}", String::from_utf8_lossy(&out.stdout));
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_scalperctl"))
        .args(["--addr", &format!("https://127.0.0.1:{port}"), "health"])
        .env_remove("SCALPER_CONTROL_TLS_CA")
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "https without --tls-ca is a usage error");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--tls-ca"));
    h.cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_failures_are_throttled_per_peer() {
    let limits = AuthLimits { token_failures: 3, ..AuthLimits::default() };
    let mut h = start_grpc(secured(limits), grpc::GrpcOptions::default(), "127.0.0.1:0").await.unwrap();
    let mut bad = client_from(h.grpc_addr, "127.0.0.2").await;
    assert_eq!(bad.pause(proto::Empty {}).await.unwrap_err().code(), Code::Unauthenticated);
    for _ in 0..2 {
        assert_eq!(bad.pause(with_token(proto::Empty {}, "guess")).await.unwrap_err().code(), Code::Unauthenticated);
    }
    // Three failures: the peer is now refused without a check, even with the right token.
    let st = bad.pause(with_token(proto::Empty {}, TOKEN)).await.unwrap_err();
    assert_eq!(st.code(), Code::ResourceExhausted, "{st:?}");
    assert!(st.message().contains("too many failed token attempts"), "{}", st.message());
    assert!(!st.message().contains(TOKEN));
    // Reads stay open to it; another peer is not affected.
    assert!(bad.get_health(proto::Empty {}).await.is_ok());
    let mut good = client_from(h.grpc_addr, "127.0.0.3").await;
    assert!(good.pause(with_token(proto::Empty {}, TOKEN)).await.expect("other peer").into_inner().ok);
    assert!(matches!(h.rx.recv().await.unwrap().kind, EventKind::Control(ControlCommand::Pause)));
    assert!(h.rx.try_recv().is_err(), "nothing from the throttled peer reached the core");

    let f = &h.metrics.control_auth_failures;
    assert_eq!(f.with_label_values(&["missing"]).get(), 1);
    assert_eq!(f.with_label_values(&["invalid"]).get(), 2);
    assert_eq!(f.with_label_values(&["throttled"]).get(), 1);
    h.cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pin_attempts_are_limited_per_peer_under_a_global_ceiling() {
    let limits = AuthLimits { pin_attempts: 3, pin_global_attempts: 5, ..AuthLimits::default() };
    let h = start_grpc(secured(limits), grpc::GrpcOptions::default(), "127.0.0.1:0").await.unwrap();
    let live =
        |pin: &str| with_token(proto::SetModeRequest { mode: "LIVE".into(), pin: pin.into(), confirm: true }, TOKEN);

    let mut a = client_from(h.grpc_addr, "127.0.0.2").await;
    for _ in 0..3 {
        assert_eq!(a.set_mode(live("0000")).await.unwrap_err().code(), Code::PermissionDenied);
    }
    let st = a.set_mode(live(PIN)).await.unwrap_err();
    assert_eq!(st.code(), Code::ResourceExhausted, "peer A is locked: {st:?}");
    assert!(st.message().contains("from this address"), "{}", st.message());

    // Peer B still enters the PIN flow: its right PIN is accepted (LIVE is then unavailable here).
    let mut b = client_from(h.grpc_addr, "127.0.0.3").await;
    let st = b.set_mode(live(PIN)).await.unwrap_err();
    assert_eq!(st.code(), Code::FailedPrecondition, "{st:?}");
    assert!(st.message().contains("PIN accepted"), "{}", st.message());
    assert_eq!(b.set_mode(live("9999")).await.unwrap_err().code(), Code::PermissionDenied);

    // Five checks in the window over all peers: a third peer meets the global ceiling.
    let mut c = client_from(h.grpc_addr, "127.0.0.4").await;
    let st = c.set_mode(live(PIN)).await.unwrap_err();
    assert_eq!(st.code(), Code::ResourceExhausted, "{st:?}");
    assert!(st.message().contains("from all clients together"), "{}", st.message());

    let m = &h.metrics.live_pin_attempts;
    assert_eq!(m.with_label_values(&["wrong"]).get(), 4);
    assert_eq!(m.with_label_values(&["ok"]).get(), 1);
    assert_eq!(m.with_label_values(&["rate_limited"]).get(), 2);
    h.cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_has_its_own_connection_cap() {
    let opts =
        grpc::GrpcOptions { max_connections: 4, first_byte_timeout: Duration::from_millis(500), ..Default::default() };
    let h = start_grpc(Security::new(Some(TOKEN), None), opts, "127.0.0.1:0").await.unwrap();
    let mut held = Vec::new();
    for _ in 0..10 {
        held.push(TcpStream::connect(h.grpc_addr).await.unwrap());
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while h.metrics.grpc_connections_rejected.get() < 6 {
        assert!(Instant::now() < deadline, "connections over the gRPC cap were not refused");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(held.iter().filter(|s| closed_by_server(s)).count(), 6);
    assert_eq!(h.metrics.grpc_connections_rejected.get(), 6);
    // The four served connections never sent a byte: closed after the first-byte timeout, which
    // frees their slots for a real client.
    let deadline = Instant::now() + Duration::from_secs(5);
    while held.iter().any(|s| !closed_by_server(s)) {
        assert!(Instant::now() < deadline, "silent gRPC connections kept their slots");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let ok = match Endpoint::from_shared(format!("http://{}", h.grpc_addr)).unwrap().connect().await {
            Ok(ch) => ControlClient::new(ch).get_health(proto::Empty {}).await.is_ok(),
            Err(_) => false,
        };
        if ok {
            break;
        }
        assert!(Instant::now() < deadline, "slots were not given back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    h.cancel.cancel();
}
