//! Control-plane secrets: the token every mutating call must carry, and the LIVE PIN (a salted
//! SHA-256 hash, checked in constant time, attempts rate-limited).
//!
//! - Token: env `SCALPER_CONTROL_TOKEN`, else the first line of the file named by
//!   `SCALPER_CONTROL_TOKEN_FILE`. Sent as `authorization: Bearer <token>` or `x-scalper-token`.
//!   Without a configured token every mutating call is refused.
//! - PIN: env `SCALPER_LIVE_PIN_HASH` = `salt$hex(sha256(salt ‖ pin))`; generate one with
//!   `scalperctl pin-hash`.
//! - Throttling is per peer IP ([`PeerLimiter`]): a peer that sent too many bad or missing tokens
//!   is refused without a check until its window frees; PIN attempts are limited per peer, so one
//!   client cannot keep LIVE locked for another, under a global ceiling that bounds a brute force
//!   spread over many addresses.

use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Env var holding the control token.
pub const TOKEN_ENV: &str = "SCALPER_CONTROL_TOKEN";
/// Env var naming a file whose first line is the control token.
pub const TOKEN_FILE_ENV: &str = "SCALPER_CONTROL_TOKEN_FILE";
/// Env var holding the LIVE PIN hash (`salt$hexhash`).
pub const PIN_HASH_ENV: &str = "SCALPER_LIVE_PIN_HASH";
/// Default PIN attempts allowed per window.
pub const DEFAULT_PIN_ATTEMPTS: usize = 3;
/// Default PIN rate-limit window.
pub const DEFAULT_PIN_WINDOW: Duration = Duration::from_secs(60);
/// Default PIN attempts allowed per window over all peers together.
pub const DEFAULT_PIN_GLOBAL_ATTEMPTS: usize = 30;
/// Default failed token attempts a peer may make per window before it is throttled.
pub const DEFAULT_TOKEN_FAILURES: usize = 10;
/// Default token-failure window.
pub const DEFAULT_TOKEN_WINDOW: Duration = Duration::from_secs(60);
/// Default number of peers a [`PeerLimiter`] remembers.
pub const DEFAULT_MAX_PEERS: usize = 1024;

/// Constant-time equality of two byte strings (false when lengths differ), from `subtle`.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    bool::from(subtle::ConstantTimeEq::ct_eq(a, b))
}

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// Errors reading secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// `SCALPER_LIVE_PIN_HASH` is not `salt$64-hex-digits`.
    #[error("{PIN_HASH_ENV} must be `salt$<64 hex digits>` (see `scalperctl pin-hash`)")]
    BadPinHash,
    /// The token file could not be read or is empty.
    #[error("control token file {0}: {1}")]
    TokenFile(String, String),
}

/// The control token (kept hashed so comparisons are length-independent).
#[derive(Clone)]
pub struct Token([u8; 32]);

impl Token {
    /// From the secret text.
    pub fn new(secret: &str) -> Token {
        Token(sha256(&[secret.as_bytes()]))
    }
    /// True when `candidate` is the token (constant time).
    pub fn matches(&self, candidate: &str) -> bool {
        ct_eq(&self.0, &sha256(&[candidate.as_bytes()]))
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// A salted PIN hash.
#[derive(Clone, PartialEq, Eq)]
pub struct PinHash {
    salt: String,
    hash: [u8; 32],
}

impl std::fmt::Debug for PinHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PinHash(<redacted>)")
    }
}

impl PinHash {
    /// Parses `salt$hexhash` (the salt may not contain `$`; the hash is 64 hex digits).
    pub fn parse(s: &str) -> Result<PinHash, SecretError> {
        let (salt, hex_hash) = s.trim().split_once('$').ok_or(SecretError::BadPinHash)?;
        if salt.is_empty() {
            return Err(SecretError::BadPinHash);
        }
        let bytes = hex::decode(hex_hash).map_err(|_| SecretError::BadPinHash)?;
        let hash: [u8; 32] = bytes.try_into().map_err(|_| SecretError::BadPinHash)?;
        Ok(PinHash { salt: salt.to_string(), hash })
    }
    /// Hashes `pin` with `salt`.
    pub fn from_pin(salt: &str, pin: &str) -> PinHash {
        PinHash { salt: salt.to_string(), hash: sha256(&[salt.as_bytes(), pin.as_bytes()]) }
    }
    /// The `salt$hexhash` form.
    pub fn encode(&self) -> String {
        format!("{}${}", self.salt, hex::encode(self.hash))
    }
    /// True when `pin` matches (constant time).
    pub fn verify(&self, pin: &str) -> bool {
        ct_eq(&self.hash, &sha256(&[self.salt.as_bytes(), pin.as_bytes()]))
    }
}

/// Sliding-window limit on attempts.
#[derive(Debug)]
pub struct AttemptLimiter {
    max: usize,
    window: Duration,
    times: Mutex<VecDeque<Instant>>,
}

impl AttemptLimiter {
    /// At most `max` attempts in any `window`.
    pub fn new(max: usize, window: Duration) -> AttemptLimiter {
        AttemptLimiter { max: max.max(1), window, times: Mutex::new(VecDeque::new()) }
    }
    /// Records an attempt at `now` if allowed; otherwise returns how long until one is.
    pub fn try_acquire(&self, now: Instant) -> Result<(), Duration> {
        let Ok(mut t) = self.times.lock() else { return Err(self.window) };
        while t.front().is_some_and(|&first| now.saturating_duration_since(first) >= self.window) {
            t.pop_front();
        }
        if t.len() >= self.max {
            let first = t.front().copied().unwrap_or(now);
            return Err(self.window.saturating_sub(now.saturating_duration_since(first)));
        }
        t.push_back(now);
        Ok(())
    }
}

/// The key a peer is throttled under: its IPv4 address, or the /64 prefix of its IPv6 address
/// (one host usually owns a whole /64, so rotating within it must not reset the throttle);
/// IPv4-mapped IPv6 is folded to IPv4 and the port is never part of it (a client gets a new one
/// per connection). An unknown address (`None`, e.g. an in-process transport) is one shared
/// peer, `0.0.0.0`.
pub fn peer_key(addr: Option<SocketAddr>) -> IpAddr {
    match addr.map(|a| a.ip()) {
        Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None if v6.is_loopback() => IpAddr::V6(v6),
            None => IpAddr::V6(std::net::Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
        },
        Some(ip) => ip,
        None => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
    }
}

/// A sliding-window limit per peer IP: at most `max` recorded events per `window` for each peer.
/// Memory is bounded: each peer keeps at most `max` instants and at most `max_peers` peers are
/// remembered. When a new peer arrives and the table is full, peers whose events all left the
/// window are dropped first, then the peer with the oldest latest event (so a flood of fresh
/// addresses can make the limiter forget a throttled peer, never grow it; keep a global ceiling
/// where that matters, as the PIN does).
#[derive(Debug)]
pub struct PeerLimiter {
    max: usize,
    window: Duration,
    max_peers: usize,
    peers: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
}

impl PeerLimiter {
    /// `max` events per `window` per peer (`max` >= 1), remembering at most `max_peers` peers
    /// (>= 1).
    pub fn new(max: usize, window: Duration, max_peers: usize) -> PeerLimiter {
        PeerLimiter { max: max.max(1), window, max_peers: max_peers.max(1), peers: Mutex::new(HashMap::new()) }
    }

    fn prune(&self, q: &mut VecDeque<Instant>, now: Instant) {
        while q.front().is_some_and(|&t| now.saturating_duration_since(t) >= self.window) {
            q.pop_front();
        }
    }

    /// `Err(wait)` when the peer already has `max` events in the window (how long until one
    /// leaves it); records nothing.
    pub fn check(&self, peer: IpAddr, now: Instant) -> Result<(), Duration> {
        let Ok(mut peers) = self.peers.lock() else { return Err(self.window) };
        let Some(q) = peers.get_mut(&peer) else { return Ok(()) };
        self.prune(q, now);
        if q.len() >= self.max {
            let first = q.front().copied().unwrap_or(now);
            return Err(self.window.saturating_sub(now.saturating_duration_since(first)).max(Duration::from_millis(1)));
        }
        Ok(())
    }

    /// Records an event of `peer` at `now` (the oldest beyond `max` is forgotten).
    pub fn record(&self, peer: IpAddr, now: Instant) {
        let Ok(mut peers) = self.peers.lock() else { return };
        if !peers.contains_key(&peer) && peers.len() >= self.max_peers {
            peers.retain(|_, q| q.back().is_some_and(|&t| now.saturating_duration_since(t) < self.window));
            if peers.len() >= self.max_peers {
                let oldest = peers.iter().min_by_key(|(_, q)| q.back().copied()).map(|(k, _)| *k);
                if let Some(k) = oldest {
                    peers.remove(&k);
                }
            }
        }
        let q = peers.entry(peer).or_default();
        self.prune(q, now);
        q.push_back(now);
        while q.len() > self.max {
            q.pop_front();
        }
    }

    /// [`check`](Self::check), then [`record`](Self::record) when allowed.
    pub fn try_acquire(&self, peer: IpAddr, now: Instant) -> Result<(), Duration> {
        self.check(peer, now)?;
        self.record(peer, now);
        Ok(())
    }

    /// Peers remembered now (at most `max_peers`).
    pub fn tracked(&self) -> usize {
        self.peers.lock().map(|p| p.len()).unwrap_or(0)
    }
}

/// Limits of the control plane's throttles; [`Default`] is the documented defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthLimits {
    /// Failed (missing or wrong) token attempts per peer per `token_window` before the peer is
    /// refused without a check.
    pub token_failures: usize,
    /// Window of `token_failures`.
    pub token_window: Duration,
    /// Real PIN checks per peer per `pin_window`.
    pub pin_attempts: usize,
    /// Real PIN checks over all peers per `pin_window`.
    pub pin_global_attempts: usize,
    /// Window of both PIN limits.
    pub pin_window: Duration,
    /// Peers each limiter remembers.
    pub max_peers: usize,
}

impl AuthLimits {
    /// The limits of the `control` section.
    pub fn from_config(c: &scalper_core::config::ControlConfig) -> AuthLimits {
        AuthLimits {
            token_failures: c.auth_max_failures,
            token_window: Duration::from_secs(c.auth_window_s),
            pin_attempts: c.pin_attempts_per_peer,
            pin_global_attempts: c.pin_attempts_global,
            pin_window: Duration::from_secs(c.pin_window_s),
            max_peers: c.max_tracked_peers,
        }
    }
}

impl Default for AuthLimits {
    fn default() -> Self {
        AuthLimits {
            token_failures: DEFAULT_TOKEN_FAILURES,
            token_window: DEFAULT_TOKEN_WINDOW,
            pin_attempts: DEFAULT_PIN_ATTEMPTS,
            pin_global_attempts: DEFAULT_PIN_GLOBAL_ATTEMPTS,
            pin_window: DEFAULT_PIN_WINDOW,
            max_peers: DEFAULT_MAX_PEERS,
        }
    }
}

/// The secrets the gRPC service checks, and the throttles around them.
#[derive(Debug)]
pub struct Security {
    /// Token for mutating calls (`None` = mutating calls refused).
    pub token: Option<Token>,
    /// LIVE PIN hash (`None` = LIVE refused).
    pub pin: Option<PinHash>,
    /// Real PIN checks per peer.
    pub pin_attempts: PeerLimiter,
    /// Real PIN checks over all peers (the ceiling a brute force from many addresses meets).
    pub pin_global: AttemptLimiter,
    /// Failed token attempts per peer.
    pub token_failures: PeerLimiter,
}

impl Security {
    /// Explicit secrets with the default limits ([`AuthLimits::default`]).
    pub fn new(token: Option<&str>, pin: Option<PinHash>) -> Security {
        Security {
            token: token.filter(|t| !t.is_empty()).map(Token::new),
            pin,
            pin_attempts: PeerLimiter::new(DEFAULT_PIN_ATTEMPTS, DEFAULT_PIN_WINDOW, DEFAULT_MAX_PEERS),
            pin_global: AttemptLimiter::new(DEFAULT_PIN_GLOBAL_ATTEMPTS, DEFAULT_PIN_WINDOW),
            token_failures: PeerLimiter::new(DEFAULT_TOKEN_FAILURES, DEFAULT_TOKEN_WINDOW, DEFAULT_MAX_PEERS),
        }
    }

    /// The same secrets under other limits (fresh throttles).
    pub fn with_limits(mut self, l: AuthLimits) -> Security {
        self.pin_attempts = PeerLimiter::new(l.pin_attempts, l.pin_window, l.max_peers);
        self.pin_global = AttemptLimiter::new(l.pin_global_attempts, l.pin_window);
        self.token_failures = PeerLimiter::new(l.token_failures, l.token_window, l.max_peers);
        self
    }

    /// From the environment (see the module docs). A malformed PIN hash or unreadable token file
    /// is an error: the engine should not start with a control plane it cannot secure as asked.
    pub fn from_env() -> Result<Security, SecretError> {
        let token = match std::env::var(TOKEN_ENV) {
            Ok(t) if !t.trim().is_empty() => Some(t.trim().to_string()),
            _ => match std::env::var_os(TOKEN_FILE_ENV) {
                Some(p) => Some(read_token_file(Path::new(&p))?),
                None => None,
            },
        };
        let pin = match std::env::var(PIN_HASH_ENV) {
            Ok(s) if !s.trim().is_empty() => Some(PinHash::parse(&s)?),
            _ => None,
        };
        Ok(Security::new(token.as_deref(), pin))
    }
}

/// Reads a token file (first non-empty line, trimmed).
pub fn read_token_file(p: &Path) -> Result<String, SecretError> {
    let text =
        std::fs::read_to_string(p).map_err(|e| SecretError::TokenFile(p.display().to_string(), e.to_string()))?;
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_string)
        .ok_or_else(|| SecretError::TokenFile(p.display().to_string(), "empty".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_hash_roundtrip_and_verify() {
        let h = PinHash::from_pin("s4lt", "123456");
        let enc = h.encode();
        assert!(enc.starts_with("s4lt$"));
        assert_eq!(enc.len(), 5 + 64);
        let p = PinHash::parse(&enc).unwrap();
        assert!(p.verify("123456"));
        assert!(!p.verify("123457"));
        assert!(!p.verify(""));
        // The salt matters.
        let swapped = PinHash::parse(&format!("other${}", &enc[5..])).unwrap();
        assert!(!swapped.verify("123456"));
        // Known vector: sha256("ab" ‖ "c") = sha256("abc").
        assert_eq!(
            PinHash::from_pin("ab", "c").encode(),
            "ab$ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn malformed_pin_hashes_are_refused() {
        for bad in ["", "nosep", "$abcd", "salt$zz", "salt$abcd", &format!("salt${}", "0".repeat(66))] {
            assert_eq!(PinHash::parse(bad), Err(SecretError::BadPinHash), "{bad:?}");
        }
    }

    #[test]
    fn token_matching() {
        let t = Token::new("secret");
        assert!(t.matches("secret"));
        assert!(!t.matches("secret "));
        assert!(!t.matches(""));
        assert!(Security::new(Some(""), None).token.is_none());
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
    }

    #[test]
    fn limiter_allows_max_per_sliding_window() {
        let l = AttemptLimiter::new(3, Duration::from_secs(60));
        let t0 = Instant::now();
        assert!(l.try_acquire(t0).is_ok());
        assert!(l.try_acquire(t0 + Duration::from_secs(10)).is_ok());
        assert!(l.try_acquire(t0 + Duration::from_secs(20)).is_ok());
        let wait = l.try_acquire(t0 + Duration::from_secs(30)).unwrap_err();
        assert_eq!(wait, Duration::from_secs(30));
        // The first attempt leaves the window at t0 + 60 s: one more is allowed, not two.
        assert!(l.try_acquire(t0 + Duration::from_secs(60)).is_ok());
        assert!(l.try_acquire(t0 + Duration::from_secs(61)).is_err());
        assert!(l.try_acquire(t0 + Duration::from_secs(140)).is_ok());
    }

    #[test]
    fn peer_limiter_is_per_peer_and_bounded() {
        let ip = |n: u8| IpAddr::V4(Ipv4Addr::new(10, 0, 0, n));
        let l = PeerLimiter::new(2, Duration::from_secs(60), 3);
        let t0 = Instant::now();
        assert!(l.try_acquire(ip(1), t0).is_ok());
        assert!(l.try_acquire(ip(1), t0).is_ok());
        assert_eq!(l.try_acquire(ip(1), t0 + Duration::from_secs(15)), Err(Duration::from_secs(45)));
        // Another peer is untouched by the first one's lock.
        assert!(l.check(ip(2), t0).is_ok());
        assert!(l.try_acquire(ip(2), t0).is_ok());
        // The window frees the first peer.
        assert!(l.try_acquire(ip(1), t0 + Duration::from_secs(60)).is_ok());
        // Never more than 3 peers: a 4th first drops peer 2, whose events all left the window…
        assert!(l.try_acquire(ip(3), t0 + Duration::from_secs(61)).is_ok());
        assert!(l.try_acquire(ip(4), t0 + Duration::from_secs(62)).is_ok());
        assert_eq!(l.tracked(), 3);
        // …then, with every peer recent, the one with the oldest latest event.
        for n in 5..200 {
            l.record(ip(n), t0 + Duration::from_secs(63));
        }
        assert_eq!(l.tracked(), 3);
        // Peers whose events left the window are dropped first.
        let l = PeerLimiter::new(1, Duration::from_secs(10), 2);
        l.record(ip(1), t0);
        l.record(ip(2), t0 + Duration::from_secs(5));
        l.record(ip(3), t0 + Duration::from_secs(12));
        assert!(l.check(ip(2), t0 + Duration::from_secs(12)).is_err(), "peer 2 is still locked, not evicted");
        assert!(l.check(ip(1), t0 + Duration::from_secs(12)).is_ok());
    }

    #[test]
    fn peer_keys_fold_ports_and_mapped_v4() {
        let a: SocketAddr = "127.0.0.2:4000".parse().unwrap();
        let b: SocketAddr = "127.0.0.2:4001".parse().unwrap();
        let mapped: SocketAddr = "[::ffff:127.0.0.2]:5000".parse().unwrap();
        assert_eq!(peer_key(Some(a)), peer_key(Some(b)));
        assert_eq!(peer_key(Some(mapped)), peer_key(Some(a)));
        assert_ne!(peer_key(Some("127.0.0.3:4000".parse().unwrap())), peer_key(Some(a)));
        assert_eq!(peer_key(None), IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let v6 = |s: &str| peer_key(Some(s.parse().unwrap()));
        assert_eq!(v6("[2001:db8:1:2::5]:1"), v6("[2001:db8:1:2:ffff::9]:2"), "one /64, one peer");
        assert_ne!(v6("[2001:db8:1:2::5]:1"), v6("[2001:db8:1:3::5]:1"));
        assert_eq!(v6("[::1]:9"), "::1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn token_file_first_nonempty_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("tok");
        std::fs::write(&p, "\n  abc  \nsecond\n").unwrap();
        assert_eq!(read_token_file(&p).unwrap(), "abc");
        std::fs::write(&p, "\n\n").unwrap();
        assert!(read_token_file(&p).is_err());
        assert!(read_token_file(&dir.path().join("missing")).is_err());
    }
}
