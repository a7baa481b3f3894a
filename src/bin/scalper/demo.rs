//! `scalper demo`'s control secrets: a generated token in the data directory and a one-time LIVE
//! PIN, so every `scalperctl` control works on the demo with no setup.

use scalper::config::paths::Paths;
use scalper::control::auth::Security;
use scalper::control::local_token::{self, DemoSecrets};
use std::net::SocketAddr;
use std::path::PathBuf;

/// What `prepare` set up.
pub struct Steer {
    /// The control plane's secrets.
    pub security: Security,
    /// The token file written and the token in it (removed when the demo stops); `None` when the
    /// environment supplied the token.
    pub token_file: Option<(PathBuf, String)>,
    /// Printed once the gRPC address is known.
    pub banner: Banner,
}

/// The "how to steer this demo" text.
pub struct Banner {
    token_file: Option<PathBuf>,
    /// `--data-dir` scalperctl needs to find the token (when it would not look there by itself).
    data_dir_arg: Option<PathBuf>,
    pin: Option<String>,
}

/// Generates the secrets (explicit `SCALPER_CONTROL_TOKEN[_FILE]` / `SCALPER_LIVE_PIN_HASH` win)
/// and writes the generated token to `<data>/system/control.token` (0600).
pub fn prepare(paths: &Paths) -> anyhow::Result<Steer> {
    let env = Security::from_env().map_err(|e| anyhow::anyhow!("{e}"))?;
    let secrets = DemoSecrets::generate().map_err(|e| anyhow::anyhow!("{e}"))?;
    let (security, own_token, own_pin) = secrets.security(env);
    let path = local_token::token_path(paths);
    let token_file = if own_token {
        local_token::write_token_file(&path, &secrets.token)
            .map_err(|e| anyhow::anyhow!("cannot write the demo's control token: {e}"))?;
        Some((path.clone(), secrets.token.clone()))
    } else {
        None
    };
    let data_dir_arg = (own_token && !scalperctl_finds(paths)).then(|| paths.data_dir().to_path_buf());
    let banner = Banner { token_file: own_token.then_some(path), data_dir_arg, pin: own_pin.then_some(secrets.pin) };
    Ok(Steer { security, token_file, banner })
}

/// True when `scalperctl` started in this directory with this environment looks in `paths`'
/// data directory (`SCALPER_DATA_DIR`, else `./data`).
fn scalperctl_finds(paths: &Paths) -> bool {
    let root = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let env = std::env::var_os("SCALPER_DATA_DIR").map(PathBuf::from);
    Paths::resolve(&root, None, env.as_deref()).data_dir() == paths.data_dir()
}

impl Banner {
    /// The text for an engine whose gRPC control plane listens on `grpc`.
    pub fn text(&self, grpc: SocketAddr) -> String {
        let addr = format!("http://{grpc}");
        let mut ctl = String::from("scalperctl");
        if addr != "http://127.0.0.1:50051" {
            ctl.push_str(&format!(" --addr {addr}"));
        }
        if let Some(d) = &self.data_dir_arg {
            ctl.push_str(&format!(" --data-dir {}", d.display()));
        }
        let mut t =
            String::from("\nscalper demo: SIM trading against the built-in simulated exchange (no real money)\n");
        t.push_str(&format!("  control address  {addr}\n"));
        match &self.token_file {
            Some(p) => t.push_str(&format!(
                "  control token    {} (new at each start; scalperctl reads it by itself)\n",
                p.display()
            )),
            None => t.push_str("  control token    from the environment (SCALPER_CONTROL_TOKEN / _FILE)\n"),
        }
        match &self.pin {
            Some(pin) => t.push_str(&format!("  LIVE PIN         {pin} (this run only)\n")),
            None => t.push_str("  LIVE PIN         from the environment (SCALPER_LIVE_PIN_HASH)\n"),
        }
        t.push_str("Steer it from another terminal:\n");
        for cmd in [
            "status",
            "pause",
            "resume",
            "blacklist add SIM001USDT",
            "news set SIM001USDT --impact 0.8 --type HACK --ttl 15m",
            "panic",
            "mode live --pin        (the PIN above, then type LIVE; the simulator's account)",
        ] {
            t.push_str(&format!("  {ctl} {cmd}\n"));
        }
        t
    }

    /// Prints the text on stdout (the logs go to stderr).
    pub fn print(&self, grpc: SocketAddr) {
        use std::io::Write;
        let mut o = std::io::stdout().lock();
        let _ = write!(o, "{}", self.text(grpc));
        let _ = o.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn banner_names_the_address_token_file_and_pin() {
        let b = Banner {
            token_file: Some(PathBuf::from("/d/system/control.token")),
            data_dir_arg: Some(PathBuf::from("/d")),
            pin: Some("012345".into()),
        };
        let t = b.text("127.0.0.1:6000".parse().unwrap());
        assert!(t.contains("control address  http://127.0.0.1:6000"), "{t}");
        assert!(t.contains("LIVE PIN         012345"), "{t}");
        assert!(t.contains("scalperctl --addr http://127.0.0.1:6000 --data-dir /d pause"), "{t}");
        // On the default address and data directory the commands need no options.
        let b = Banner { token_file: None, data_dir_arg: None, pin: None };
        let t = b.text("127.0.0.1:50051".parse().unwrap());
        assert!(t.contains("  scalperctl panic\n"), "{t}");
        assert!(t.contains("from the environment (SCALPER_LIVE_PIN_HASH)"), "{t}");
    }
}
