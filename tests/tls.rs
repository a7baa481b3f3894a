//! TLS is pure Rust (rustls with bundled web PKI roots): no OpenSSL, no system package, and the
//! connectors' `wss://` and `https://` paths reach a TLS handshake instead of failing to build
//! or panicking on a missing crypto provider.

use scalper::connectors::bybit_public::rest::PublicRest;
use scalper::connectors::bybit_public::BybitError;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::error::{Error as WsError, TlsError};

#[test]
fn the_lock_file_holds_no_openssl_and_no_native_tls() {
    let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.lock")).expect("Cargo.lock");
    let names: Vec<&str> = lock.lines().filter_map(|l| l.strip_prefix("name = \"")?.strip_suffix('"')).collect();
    assert!(names.contains(&"rustls"), "rustls is the TLS stack");
    assert!(names.contains(&"webpki-roots"), "the web PKI roots are bundled");
    for banned in ["openssl", "openssl-sys", "native-tls", "tokio-native-tls", "hyper-tls"] {
        assert!(!names.contains(&banned), "{banned} is in Cargo.lock: a system TLS library would be needed");
    }
}

/// A TCP server that answers every connection with plain HTTP, so a TLS client fails in its
/// handshake with a protocol error.
async fn plaintext_server() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n").await;
        }
    });
    addr
}

#[tokio::test]
async fn wss_goes_through_rustls() {
    let addr = plaintext_server().await;
    let err = tokio_tungstenite::connect_async(format!("wss://localhost:{}/v5/public/linear", addr.port()))
        .await
        .expect_err("a plaintext server cannot complete a TLS handshake");
    // rustls' handshake errors surface either as tungstenite's TLS error or inside an I/O error.
    let from_rustls = match &err {
        WsError::Tls(TlsError::Rustls(_)) => true,
        WsError::Io(e) => e.get_ref().is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some()),
        _ => false,
    };
    assert!(from_rustls, "expected a rustls handshake error, got {err:?}");
}

#[tokio::test]
async fn https_reaches_a_tls_handshake_and_reports_its_cause() {
    let addr = plaintext_server().await;
    let rest = PublicRest::new(&format!("https://localhost:{}", addr.port())).expect("client");
    match rest.server_time().await {
        Err(BybitError::Transport(text)) => {
            // The cause from the error chain, not only reqwest's "error sending request".
            assert!(text.len() > "error sending request".len() + 30, "transport error without its cause: {text}");
        }
        other => panic!("expected a transport error from the TLS handshake, got {other:?}"),
    }
}
