//! The demo's generated control secrets and the token file `scalperctl` finds by itself.
//!
//! `scalper demo` makes a fresh random control token and a one-time 6-digit LIVE PIN at each
//! start ([`DemoSecrets::generate`]), writes the token to `<data>/system/control.token` (mode
//! 0600, replaced atomically, removed again when the demo stops) and prints the PIN. `scalperctl`
//! reads that file when neither `--token` nor `SCALPER_CONTROL_TOKEN` is given
//! ([`read_local_token`]), refusing a file that group or others could read or replace.
//! `scalper run` never writes it: a real engine keeps its explicitly configured secrets.

use super::auth::{PinHash, Security};
use scalper_core::config::paths::Paths;
use std::path::{Path, PathBuf};

/// File name of the token under the system directory.
pub const TOKEN_FILE_NAME: &str = "control.token";

/// Where the demo writes its token and `scalperctl` looks for it: `<data>/system/control.token`.
pub fn token_path(paths: &Paths) -> PathBuf {
    paths.system_dir().join(TOKEN_FILE_NAME)
}

/// Why the local token file cannot be written or used.
#[derive(Debug, thiserror::Error)]
pub enum LocalTokenError {
    /// Reading, writing or inspecting a path failed.
    #[error("{path}: {reason}")]
    Io {
        path: PathBuf,
        /// The OS error in words.
        reason: String,
    },
    /// The token file is open to group or others (it grants full control of the engine).
    #[error(
        "{path} has mode {mode:04o}: a control token must be readable by its owner only; run `chmod 600 {path}` \
         or pass --token"
    )]
    FilePermissions {
        /// The token file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The directory holding the token file lets group or others replace it.
    #[error("{dir} has mode {mode:04o}: group or others may replace the control token in it; run `chmod go-w {dir}`")]
    DirectoryPermissions {
        /// The directory.
        dir: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file holds no token.
    #[error("{0} holds no token")]
    Empty(PathBuf),
    /// The operating system gave no randomness.
    #[error("no randomness from the operating system: {0}")]
    Random(String),
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> LocalTokenError + '_ {
    move |e| LocalTokenError::Io { path: path.to_path_buf(), reason: e.to_string() }
}

/// A fresh control token and one-time LIVE PIN for one demo run.
#[derive(Clone)]
pub struct DemoSecrets {
    /// 64 hex digits (256 random bits).
    pub token: String,
    /// 6 decimal digits.
    pub pin: String,
    /// Random salt of the PIN hash (16 hex digits).
    pub salt: String,
}

impl std::fmt::Debug for DemoSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DemoSecrets(<redacted>)")
    }
}

impl DemoSecrets {
    /// New secrets from the operating system's randomness.
    pub fn generate() -> Result<DemoSecrets, LocalTokenError> {
        let mut b = [0u8; 48];
        getrandom::fill(&mut b).map_err(|e| LocalTokenError::Random(e.to_string()))?;
        let token = hex::encode(&b[..32]);
        let salt = hex::encode(&b[32..40]);
        // 8 random bytes reduced to 6 digits: the bias (2^64 mod 10^6 over 2^64) is negligible.
        let mut n = [0u8; 8];
        n.copy_from_slice(&b[40..48]);
        let pin = format!("{:06}", u64::from_le_bytes(n) % 1_000_000);
        Ok(DemoSecrets { token, pin, salt })
    }

    /// The PIN as the engine checks it.
    pub fn pin_hash(&self) -> PinHash {
        PinHash::from_pin(&self.salt, &self.pin)
    }

    /// The control plane's secrets: these, except where `env` (from [`Security::from_env`])
    /// already configures a token or a PIN hash — an operator's explicit secret wins.
    /// The flags say which generated secret is in force (token, PIN).
    pub fn security(&self, env: Security) -> (Security, bool, bool) {
        let mut s = Security::new(Some(&self.token), Some(self.pin_hash()));
        let (own_token, own_pin) = (env.token.is_none(), env.pin.is_none());
        if let Some(t) = env.token {
            s.token = Some(t);
        }
        if let Some(p) = env.pin {
            s.pin = Some(p);
        }
        (s, own_token, own_pin)
    }
}

/// Writes `token` to `path` readable by the owner only (0600), replacing any older file
/// atomically (a temporary file renamed over it). The directory is created (0700) when missing
/// and loses group/other write permission when it had it.
pub fn write_token_file(path: &Path, token: &str) -> Result<(), LocalTokenError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    create_private_dir(&dir)?;
    let tmp = dir.join(format!(".{TOKEN_FILE_NAME}.{}.tmp", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    {
        use std::io::Write;
        let mut f = open_private(&tmp).map_err(io_err(&tmp))?;
        f.write_all(format!("{token}\n").as_bytes()).map_err(io_err(&tmp))?;
        f.sync_all().map_err(io_err(&tmp))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io_err(path)(e)
    })
}

/// Removes the token file if it still holds `token` (a newer demo's file is left alone).
pub fn remove_token_file(path: &Path, token: &str) {
    if let Ok(text) = std::fs::read_to_string(path) {
        if text.trim() == token {
            let _ = std::fs::remove_file(path);
        }
    }
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> Result<(), LocalTokenError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    if !dir.exists() {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(io_err(dir))?;
    }
    // An existing directory others may write to (a loose umask) would make scalperctl refuse
    // the token: it is the engine's own directory, so close it.
    let mode = std::fs::metadata(dir).map_err(io_err(dir))?.permissions().mode() & 0o7777;
    if mode & 0o022 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode & !0o022)).map_err(io_err(dir))?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> Result<(), LocalTokenError> {
    std::fs::create_dir_all(dir).map_err(io_err(dir))
}

#[cfg(unix)]
fn open_private(p: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(p)
}

#[cfg(not(unix))]
fn open_private(p: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new().write(true).create_new(true).open(p)
}

/// Reads the local token file: `Ok(None)` when there is none; an error when it exists but is
/// open to group/others (or its directory is group/other-writable), unreadable or empty.
pub fn read_local_token(path: &Path) -> Result<Option<String>, LocalTokenError> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(path)(e)),
    };
    check_permissions(path, &meta)?;
    let text = std::fs::read_to_string(path).map_err(io_err(path))?;
    match text.lines().map(str::trim).find(|l| !l.is_empty()) {
        Some(t) => Ok(Some(t.to_string())),
        None => Err(LocalTokenError::Empty(path.to_path_buf())),
    }
}

#[cfg(unix)]
fn check_permissions(path: &Path, meta: &std::fs::Metadata) -> Result<(), LocalTokenError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(LocalTokenError::FilePermissions { path: path.to_path_buf(), mode });
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let dmode = std::fs::metadata(&dir).map_err(io_err(&dir))?.permissions().mode() & 0o7777;
    if dmode & 0o022 != 0 {
        return Err(LocalTokenError::DirectoryPermissions { dir, mode: dmode });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_permissions(_path: &Path, _meta: &std::fs::Metadata) -> Result<(), LocalTokenError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_are_fresh_and_well_formed() {
        let a = DemoSecrets::generate().unwrap();
        let b = DemoSecrets::generate().unwrap();
        assert_eq!(a.token.len(), 64);
        assert!(a.token.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(a.pin.len(), 6);
        assert!(a.pin.chars().all(|c| c.is_ascii_digit()));
        assert_ne!(a.token, b.token);
        assert!(a.pin_hash().verify(&a.pin));
        assert!(!a.pin_hash().verify("not the pin"));
    }

    #[test]
    fn explicit_environment_secrets_win() {
        let g = DemoSecrets::generate().unwrap();
        let (s, own_t, own_p) = g.security(Security::new(None, None));
        assert!(own_t && own_p);
        assert!(s.token.as_ref().unwrap().matches(&g.token));
        assert!(s.pin.as_ref().unwrap().verify(&g.pin));
        let env = Security::new(Some("operator-token"), Some(PinHash::from_pin("s", "4242")));
        let (s, own_t, own_p) = g.security(env);
        assert!(!own_t && !own_p);
        assert!(s.token.as_ref().unwrap().matches("operator-token"));
        assert!(!s.token.as_ref().unwrap().matches(&g.token));
        assert!(s.pin.as_ref().unwrap().verify("4242"));
        assert!(!s.pin.as_ref().unwrap().verify(&g.pin));
    }

    #[cfg(unix)]
    #[test]
    fn token_file_is_private_replaced_and_checked() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let paths = Paths::with_data_dir(d.path().join("data"));
        let p = token_path(&paths);
        assert_eq!(read_local_token(&p).unwrap(), None, "no file: no token");
        write_token_file(&p, "first").unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::metadata(p.parent().unwrap()).unwrap().permissions().mode() & 0o777, 0o700);
        write_token_file(&p, "second").unwrap();
        assert_eq!(read_local_token(&p).unwrap().as_deref(), Some("second"));
        // Readable by others: refused with a message naming the fix.
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = read_local_token(&p).unwrap_err().to_string();
        assert!(e.contains("0644") && e.contains("chmod 600"), "{e}");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        // A directory others may write to: refused.
        std::fs::set_permissions(p.parent().unwrap(), std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(matches!(read_local_token(&p), Err(LocalTokenError::DirectoryPermissions { .. })));
        std::fs::set_permissions(p.parent().unwrap(), std::fs::Permissions::from_mode(0o755)).unwrap();
        // Removal only of our own token.
        remove_token_file(&p, "not it");
        assert!(p.exists());
        remove_token_file(&p, "second");
        assert!(!p.exists());
    }
}
