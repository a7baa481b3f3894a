//! The LIVE PIN: reading it (and the typed confirmation) for `mode live`, and `pin-hash`,
//! which prints the salted hash for the engine's configuration.

use super::Fail;
use scalper::control::auth::PinHash;
use std::io::{BufRead, Write};

fn read_stdin_lines(n: usize) -> Vec<String> {
    let stdin = std::io::stdin();
    let mut out = Vec::new();
    for line in stdin.lock().lines().take(n) {
        match line {
            Ok(l) => out.push(l.trim_end_matches(['\r', '\n']).to_string()),
            Err(_) => break,
        }
    }
    out
}

/// PIN and confirmation for LIVE.
pub(super) fn live_credentials(pin: bool, pin_stdin: bool) -> Result<(String, bool), Fail> {
    if pin_stdin {
        let lines = read_stdin_lines(2);
        let p = lines.first().cloned().unwrap_or_default();
        let confirm = lines.get(1).is_some_and(|l| l.trim() == "LIVE");
        return Ok((p, confirm));
    }
    if pin {
        let p =
            rpassword::prompt_password("LIVE PIN: ").map_err(|e| Fail::usage(format!("cannot read the PIN: {e}")))?;
        eprint!("Real orders will be sent. Type LIVE to confirm: ");
        let _ = std::io::stderr().flush();
        let line = read_stdin_lines(1).pop().unwrap_or_default();
        return Ok((p, line.trim() == "LIVE"));
    }
    Err(Fail::usage("mode live needs the PIN: use --pin (interactive) or --pin-stdin"))
}

fn random_salt() -> String {
    use sha2::Digest;
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let local = 0u8;
    let mut h = sha2::Sha256::new();
    h.update(nanos.to_le_bytes());
    h.update(std::process::id().to_le_bytes());
    h.update((&local as *const u8 as usize).to_le_bytes());
    hex::encode(&h.finalize()[..8])
}

pub(super) fn pin_hash(salt: Option<String>, pin_stdin: bool) -> Result<(), Fail> {
    let pin = if pin_stdin {
        read_stdin_lines(1).pop().unwrap_or_default()
    } else {
        let a = rpassword::prompt_password("New LIVE PIN: ").map_err(|e| Fail::usage(format!("cannot read: {e}")))?;
        let b = rpassword::prompt_password("Repeat: ").map_err(|e| Fail::usage(format!("cannot read: {e}")))?;
        if a != b {
            return Err(Fail::usage("the PINs differ"));
        }
        a
    };
    if pin.chars().count() < 4 {
        return Err(Fail::usage("the PIN must have at least 4 characters"));
    }
    let salt = salt.unwrap_or_else(random_salt);
    if salt.is_empty() || salt.contains('$') {
        return Err(Fail::usage("the salt must be non-empty and must not contain '$'"));
    }
    println!("{}", PinHash::from_pin(&salt, &pin).encode());
    Ok(())
}
