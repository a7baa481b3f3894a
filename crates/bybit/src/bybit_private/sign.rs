//! Bybit v5 request signing and API credentials.
//!
//! - REST: `X-BAPI-SIGN = hex(HMAC-SHA256(secret, timestamp + api_key + recv_window + payload))`
//!   where `payload` is the query string exactly as sent (GET) or the JSON body exactly as sent
//!   (POST); sent with `X-BAPI-API-KEY`, `X-BAPI-TIMESTAMP` and `X-BAPI-RECV-WINDOW`.
//! - WebSocket: `{"op":"auth","args":[api_key, expires, hex(HMAC-SHA256(secret, "GET/realtime" + expires))]}`.
//!
//! Credentials come from the environment (`SCALPER_BYBIT_API_KEY`, `SCALPER_BYBIT_API_SECRET`)
//! or from a file readable by its owner only (mode `0600` or `0400`) named by
//! `SCALPER_BYBIT_CREDENTIALS_FILE`. The secret is never logged: `Debug` redacts it.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::path::{Path, PathBuf};

/// Env var holding the API key.
pub const API_KEY_ENV: &str = "SCALPER_BYBIT_API_KEY";
/// Env var holding the API secret.
pub const API_SECRET_ENV: &str = "SCALPER_BYBIT_API_SECRET";
/// Env var naming a credentials file (`KEY=VALUE` lines, see [`Credentials::from_file`]).
pub const CREDENTIALS_FILE_ENV: &str = "SCALPER_BYBIT_CREDENTIALS_FILE";

/// Header carrying the API key.
pub const HEADER_API_KEY: &str = "X-BAPI-API-KEY";
/// Header carrying the request timestamp (ms).
pub const HEADER_TIMESTAMP: &str = "X-BAPI-TIMESTAMP";
/// Header carrying the signature.
pub const HEADER_SIGN: &str = "X-BAPI-SIGN";
/// Header carrying the receive window (ms).
pub const HEADER_RECV_WINDOW: &str = "X-BAPI-RECV-WINDOW";

type HmacSha256 = Hmac<Sha256>;

/// Lower-case hex HMAC-SHA256 of `parts` concatenated, keyed with `secret`.
fn hmac_hex(secret: &[u8], parts: &[&[u8]]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = match HmacSha256::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    for p in parts {
        mac.update(p);
    }
    hex::encode(mac.finalize().into_bytes())
}

/// The string a REST request signs: `timestamp + api_key + recv_window + payload`.
pub fn rest_sign_payload(timestamp_ms: i64, api_key: &str, recv_window_ms: u64, payload: &str) -> String {
    format!("{timestamp_ms}{api_key}{recv_window_ms}{payload}")
}

/// `X-BAPI-SIGN` of a REST request (`payload` = query string of a GET or JSON body of a POST,
/// byte for byte as sent).
pub fn sign_rest(secret: &[u8], timestamp_ms: i64, api_key: &str, recv_window_ms: u64, payload: &str) -> String {
    let ts = timestamp_ms.to_string();
    let rw = recv_window_ms.to_string();
    hmac_hex(secret, &[ts.as_bytes(), api_key.as_bytes(), rw.as_bytes(), payload.as_bytes()])
}

/// Signature of the private WebSocket `auth` op: HMAC over `"GET/realtime" + expires`.
pub fn sign_ws_auth(secret: &[u8], expires_ms: i64) -> String {
    let e = expires_ms.to_string();
    hmac_hex(secret, &[b"GET/realtime", e.as_bytes()])
}

/// Constant-time comparison of two signatures (hex strings).
pub fn signatures_match(a: &str, b: &str) -> bool {
    bool::from(subtle::ConstantTimeEq::ct_eq(a.as_bytes(), b.as_bytes()))
}

/// Marker Bybit puts before the string it expected to be signed (`error sign!
/// origin_string[<timestamp><api key><recv window><payload>]`).
const ORIGIN_STRING: &str = "origin_string[";

/// Text from the exchange (a `retMsg`, an op's `ret_msg`, an error body) made safe to log, put
/// into an error or an event: everything between `origin_string[` and its closing `]` is
/// removed (the payload may itself hold brackets, so up to the last `]`, or the end of the
/// text when it was cut), and every occurrence of `api_key` becomes `***`. Keys shorter than 4
/// characters are not searched for (they would blank out ordinary words).
pub fn redact_exchange_text(text: &str, api_key: &str) -> String {
    let mut out = match text.find(ORIGIN_STRING) {
        Some(start) => {
            let body = start + ORIGIN_STRING.len();
            let rest = &text[body..];
            let tail = match rest.rfind(']') {
                Some(end) => &rest[end..],
                None => "]",
            };
            format!("{}***{tail}", &text[..body])
        }
        None => text.to_string(),
    };
    let key = api_key.trim();
    if key.len() >= 4 {
        out = out.replace(key, "***");
    }
    out
}

/// Errors loading credentials. Messages name the variable or file, never the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialsError {
    /// Neither the env vars nor a credentials file are set.
    #[error("no Bybit API credentials: set {API_KEY_ENV} and {API_SECRET_ENV}, or {CREDENTIALS_FILE_ENV}")]
    Missing,
    /// Only one of key / secret is set, or a value is empty.
    #[error("incomplete Bybit API credentials: {0}")]
    Incomplete(String),
    /// The file could not be read.
    #[error("cannot read credentials file {path}: {reason}")]
    Read {
        /// File path.
        path: PathBuf,
        /// OS error.
        reason: String,
    },
    /// The file is readable by group or others (or not readable by its owner).
    #[error(
        "credentials file {path} has permissions {mode:04o}; it must be readable by its owner only \
         (chmod 600 {path})",
        path = .path.display()
    )]
    Permissions {
        /// File path.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file's directory is writable by group or others: anyone who can write there can
    /// replace the file (rename over it) with their own key, whatever the file's own mode.
    #[error(
        "credentials directory {dir} has permissions {mode:04o}; it must not be writable by group or others \
         (chmod go-w {dir})",
        dir = .dir.display()
    )]
    DirectoryPermissions {
        /// The directory.
        dir: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A line of the file is not `KEY=VALUE` with a known key.
    #[error("credentials file {path}: line {line}: {reason}", path = .path.display())]
    Syntax {
        /// File path.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong (never the value).
        reason: String,
    },
}

/// An API key and its secret. `Debug` shows neither in full.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    api_key: String,
    secret: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown: String = self.api_key.chars().take(4).collect();
        f.debug_struct("Credentials")
            .field("api_key", &format_args!("{shown}…"))
            .field("secret", &format_args!("<redacted>"))
            .finish()
    }
}

impl Credentials {
    /// From a key and a secret (both non-empty after trimming).
    pub fn new(api_key: &str, secret: &str) -> Result<Credentials, CredentialsError> {
        let (k, s) = (api_key.trim(), secret.trim());
        if k.is_empty() {
            return Err(CredentialsError::Incomplete("the API key is empty".into()));
        }
        if s.is_empty() {
            return Err(CredentialsError::Incomplete("the API secret is empty".into()));
        }
        Ok(Credentials { api_key: k.to_string(), secret: s.to_string() })
    }

    /// The API key (public identifier, sent in `X-BAPI-API-KEY`).
    pub fn api_key(&self) -> &str {
        &self.api_key
    }

    /// Signs a REST request.
    pub fn sign_rest(&self, timestamp_ms: i64, recv_window_ms: u64, payload: &str) -> String {
        sign_rest(self.secret.as_bytes(), timestamp_ms, &self.api_key, recv_window_ms, payload)
    }

    /// Signs the WebSocket `auth` op.
    pub fn sign_ws_auth(&self, expires_ms: i64) -> String {
        sign_ws_auth(self.secret.as_bytes(), expires_ms)
    }

    /// The `auth` op frame: `{"req_id":…,"op":"auth","args":[api_key, expires, signature]}`.
    pub fn ws_auth_frame(&self, req_id: &str, expires_ms: i64) -> String {
        serde_json::json!({
            "req_id": req_id,
            "op": "auth",
            "args": [self.api_key, expires_ms, self.sign_ws_auth(expires_ms)],
        })
        .to_string()
    }

    /// From the process environment: `SCALPER_BYBIT_API_KEY` + `SCALPER_BYBIT_API_SECRET`, else
    /// the file named by `SCALPER_BYBIT_CREDENTIALS_FILE`.
    pub fn from_env() -> Result<Credentials, CredentialsError> {
        Self::from_vars(|k| std::env::var(k).ok())
    }

    /// Like [`Credentials::from_env`] with an injectable variable lookup (tests).
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Result<Credentials, CredentialsError> {
        let key = get(API_KEY_ENV).filter(|v| !v.trim().is_empty());
        let secret = get(API_SECRET_ENV).filter(|v| !v.trim().is_empty());
        match (key, secret) {
            (Some(k), Some(s)) => Credentials::new(&k, &s),
            (Some(_), None) => {
                Err(CredentialsError::Incomplete(format!("{API_KEY_ENV} is set but {API_SECRET_ENV} is not")))
            }
            (None, Some(_)) => {
                Err(CredentialsError::Incomplete(format!("{API_SECRET_ENV} is set but {API_KEY_ENV} is not")))
            }
            (None, None) => match get(CREDENTIALS_FILE_ENV).filter(|v| !v.trim().is_empty()) {
                Some(path) => Credentials::from_file(Path::new(path.trim())),
                None => Err(CredentialsError::Missing),
            },
        }
    }

    /// From a file with `KEY=VALUE` lines: `SCALPER_BYBIT_API_KEY=…` and
    /// `SCALPER_BYBIT_API_SECRET=…` (`api_key` / `api_secret` are accepted too); blank lines and
    /// `#` comments are ignored. On Unix the file must not be accessible by group or others and
    /// must be readable by its owner (mode `0600` or `0400`); anything else is refused.
    pub fn from_file(path: &Path) -> Result<Credentials, CredentialsError> {
        let read_err = |e: std::io::Error| CredentialsError::Read { path: path.to_path_buf(), reason: e.to_string() };
        let meta = std::fs::metadata(path).map_err(read_err)?;
        check_permissions(path, &meta)?;
        let text = std::fs::read_to_string(path).map_err(read_err)?;
        let (mut key, mut secret) = (None, None);
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let syntax = |reason: &str| CredentialsError::Syntax {
                path: path.to_path_buf(),
                line: i + 1,
                reason: reason.to_string(),
            };
            let (k, v) = line.split_once('=').ok_or_else(|| syntax("expected KEY=VALUE"))?;
            let v = v.trim().trim_matches('"').to_string();
            match k.trim() {
                API_KEY_ENV | "api_key" => key = Some(v),
                API_SECRET_ENV | "api_secret" => secret = Some(v),
                _ => return Err(syntax("unknown key (expected SCALPER_BYBIT_API_KEY or SCALPER_BYBIT_API_SECRET)")),
            }
        }
        match (key, secret) {
            (Some(k), Some(s)) => Credentials::new(&k, &s),
            _ => Err(CredentialsError::Incomplete(format!(
                "{} must set both the API key and the secret",
                path.display()
            ))),
        }
    }
}

#[cfg(unix)]
fn check_permissions(path: &Path, meta: &std::fs::Metadata) -> Result<(), CredentialsError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 || mode & 0o400 == 0 {
        return Err(CredentialsError::Permissions { path: path.to_path_buf(), mode });
    }
    // The directory as named and, behind a symlink, the one really holding the file.
    let mut dirs = vec![parent_dir(path)];
    if let Ok(real) = std::fs::canonicalize(path) {
        dirs.push(parent_dir(&real));
    }
    for dir in dirs {
        let meta =
            std::fs::metadata(&dir).map_err(|e| CredentialsError::Read { path: dir.clone(), reason: e.to_string() })?;
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o022 != 0 {
            return Err(CredentialsError::DirectoryPermissions { dir, mode });
        }
    }
    Ok(())
}

/// The directory holding `path` (`.` for a bare file name).
#[cfg(unix)]
fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

#[cfg(not(unix))]
fn check_permissions(_path: &Path, _meta: &std::fs::Metadata) -> Result<(), CredentialsError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected values computed independently with Python's standard library:
    //   python3 -c 'import hmac,hashlib;print(hmac.new(b"sim-secret-XYZ", MSG, hashlib.sha256).hexdigest())'
    // with MSG = the concatenated strings spelled out in each assertion.
    const SECRET: &str = "sim-secret-XYZ";

    #[test]
    fn rest_get_signature_matches_an_independent_hmac() {
        // MSG = b"1700000000000sim-key-ABC5000accountType=UNIFIED"
        assert_eq!(
            rest_sign_payload(1_700_000_000_000, "sim-key-ABC", 5000, "accountType=UNIFIED"),
            "1700000000000sim-key-ABC5000accountType=UNIFIED"
        );
        assert_eq!(
            sign_rest(SECRET.as_bytes(), 1_700_000_000_000, "sim-key-ABC", 5000, "accountType=UNIFIED"),
            "26b9b1444652606617293101f6c00c06a1238e7286d9507928e7353f8ff2adef"
        );
    }

    #[test]
    fn rest_post_signature_matches_an_independent_hmac() {
        let body = r#"{"category":"linear","symbol":"BTCUSDT","side":"Buy","orderType":"Limit","qty":"0.001","price":"65000.5","timeInForce":"PostOnly","positionIdx":0,"orderLinkId":"e-1","reduceOnly":false}"#;
        let c = Credentials::new("sim-key-ABC", SECRET).unwrap();
        assert_eq!(
            c.sign_rest(1_700_000_000_123, 10_000, body),
            "c328c6c106e965bb9e2155b44fe3858ff01c5d0d794a0c88768fbdf74e26e700"
        );
        // One changed byte changes the signature.
        assert_ne!(c.sign_rest(1_700_000_000_124, 10_000, body), c.sign_rest(1_700_000_000_123, 10_000, body));
    }

    #[test]
    fn ws_auth_signature_and_frame() {
        // MSG = b"GET/realtime1700000010000"
        let c = Credentials::new("sim-key-ABC", SECRET).unwrap();
        let sig = "9f3252487d7449e09023edac4adb7f67b1b9bd3bec23613f12934f938d4d7d9b";
        assert_eq!(c.sign_ws_auth(1_700_000_010_000), sig);
        let v: serde_json::Value = serde_json::from_str(&c.ws_auth_frame("a1", 1_700_000_010_000)).unwrap();
        assert_eq!(v["op"], "auth");
        assert_eq!(v["req_id"], "a1");
        assert_eq!(v["args"], serde_json::json!(["sim-key-ABC", 1_700_000_010_000i64, sig]));
        assert!(signatures_match(sig, sig));
        assert!(!signatures_match(sig, &sig[1..]));
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let c = Credentials::new("ABCDEFGH", "topsecretvalue").unwrap();
        let d = format!("{c:?}");
        assert!(!d.contains("topsecretvalue"), "{d}");
        assert!(!d.contains("ABCDEFGH"), "{d}");
        assert!(d.contains("<redacted>"));
    }

    #[test]
    fn env_lookup_prefers_vars_then_file() {
        let vars = |k: &str| match k {
            API_KEY_ENV => Some("k1".to_string()),
            API_SECRET_ENV => Some("s1".to_string()),
            _ => None,
        };
        assert_eq!(Credentials::from_vars(vars).unwrap().api_key(), "k1");
        assert_eq!(Credentials::from_vars(|_| None), Err(CredentialsError::Missing));
        let half = |k: &str| (k == API_KEY_ENV).then(|| "k".to_string());
        assert!(matches!(Credentials::from_vars(half), Err(CredentialsError::Incomplete(_))));
        assert!(Credentials::new(" ", "x").is_err());
    }

    #[test]
    fn exchange_texts_lose_the_key_and_the_origin_string() {
        let real = "error sign! origin_string[1701783394711de21RcqOIH8Gfxvxvv15000]";
        assert_eq!(redact_exchange_text(real, "de21RcqOIH8Gfxvxvv1"), "error sign! origin_string[***]");
        let with_payload = "error sign! origin_string[1672000000000MYKEY12345000category=linear&symbol=[x]] tail";
        let r = redact_exchange_text(with_payload, "MYKEY1234");
        assert_eq!(r, "error sign! origin_string[***] tail");
        let cut = "error sign! origin_string[1672000000000MYKEY1234500";
        assert_eq!(redact_exchange_text(cut, "MYKEY1234"), "error sign! origin_string[***]");
        assert_eq!(
            redact_exchange_text("key MYKEY1234 is bound to 1.2.3.4", "MYKEY1234"),
            "key *** is bound to 1.2.3.4"
        );
        assert_eq!(redact_exchange_text("Order does not exist", "MYKEY1234"), "Order does not exist");
        assert_eq!(redact_exchange_text("a b c", "a"), "a b c", "too short a key is not searched");
    }

    #[cfg(unix)]
    #[test]
    fn file_must_be_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bybit.env");
        std::fs::write(&path, "# live key\nSCALPER_BYBIT_API_KEY=key9\nSCALPER_BYBIT_API_SECRET=\"sec9\"\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = Credentials::from_file(&path).unwrap_err();
        assert!(matches!(err, CredentialsError::Permissions { mode: 0o644, .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains("0644") && msg.contains("chmod 600"), "{msg}");
        assert!(!msg.contains("sec9"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let c = Credentials::from_file(&path).unwrap();
        assert_eq!(c.api_key(), "key9");
        assert_eq!(c, Credentials::new("key9", "sec9").unwrap());
        let file_var = |k: &str| (k == CREDENTIALS_FILE_ENV).then(|| path.display().to_string());
        assert_eq!(Credentials::from_vars(file_var).unwrap().api_key(), "key9");
        std::fs::write(&path, "password=oops\n").unwrap();
        let err = Credentials::from_file(&path).unwrap_err();
        assert!(matches!(err, CredentialsError::Syntax { line: 1, .. }), "{err:?}");
        assert!(!err.to_string().contains("oops"));
        let missing = Credentials::from_file(&dir.path().join("nope")).unwrap_err();
        assert!(matches!(missing, CredentialsError::Read { .. }));
    }

    #[cfg(unix)]
    #[test]
    fn file_in_a_group_or_world_writable_directory_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bybit.env");
        std::fs::write(&path, "SCALPER_BYBIT_API_KEY=key9\nSCALPER_BYBIT_API_SECRET=sec9\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        for (mode, refused) in [(0o777, true), (0o775, true), (0o757, true), (0o755, false), (0o700, false)] {
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(mode)).unwrap();
            let r = Credentials::from_file(&path);
            if refused {
                let err = r.unwrap_err();
                assert!(matches!(err, CredentialsError::DirectoryPermissions { mode: m, .. } if m == mode), "{err:?}");
                let msg = err.to_string();
                assert!(msg.contains(&format!("{mode:04o}")) && msg.contains("chmod go-w"), "{msg}");
                assert!(!msg.contains("sec9"), "{msg}");
            } else {
                assert_eq!(r.unwrap().api_key(), "key9", "directory {mode:o} is safe");
            }
        }
        // Behind a symlink, the directory really holding the file counts too.
        let open = tempfile::tempdir().unwrap();
        let real = open.path().join("real.env");
        std::fs::write(&real, "SCALPER_BYBIT_API_KEY=k\nSCALPER_BYBIT_API_SECRET=s\n").unwrap();
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::set_permissions(open.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let link = dir.path().join("link.env");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        assert!(matches!(Credentials::from_file(&link), Err(CredentialsError::DirectoryPermissions { .. })));
        // A group-readable file stays refused in a safe directory.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert!(matches!(Credentials::from_file(&path), Err(CredentialsError::Permissions { mode: 0o640, .. })));
    }
}
