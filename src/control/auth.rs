//! Control-plane secrets: the token every mutating call must carry, and the LIVE PIN (a salted
//! SHA-256 hash, checked in constant time, attempts rate-limited).
//!
//! - Token: env `SCALPER_CONTROL_TOKEN`, else the first line of the file named by
//!   `SCALPER_CONTROL_TOKEN_FILE`. Sent as `authorization: Bearer <token>` or `x-scalper-token`.
//!   Without a configured token every mutating call is refused.
//! - PIN: env `SCALPER_LIVE_PIN_HASH` = `salt$hex(sha256(salt ‖ pin))`; generate one with
//!   `scalperctl pin-hash`.

use sha2::{Digest, Sha256};
use std::collections::VecDeque;
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

/// Constant-time equality of two byte strings of equal length (false when lengths differ).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
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

/// The secrets the gRPC service checks.
#[derive(Debug)]
pub struct Security {
    /// Token for mutating calls (`None` = mutating calls refused).
    pub token: Option<Token>,
    /// LIVE PIN hash (`None` = LIVE refused).
    pub pin: Option<PinHash>,
    /// Limit on PIN attempts.
    pub pin_attempts: AttemptLimiter,
}

impl Security {
    /// Explicit secrets with the default PIN limit (3 per minute).
    pub fn new(token: Option<&str>, pin: Option<PinHash>) -> Security {
        Security {
            token: token.filter(|t| !t.is_empty()).map(Token::new),
            pin,
            pin_attempts: AttemptLimiter::new(DEFAULT_PIN_ATTEMPTS, DEFAULT_PIN_WINDOW),
        }
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
