//! Configuration files and environment: defaults in code → `scalper.toml` → environment
//! (`SCALPER_*`, `__` separates sections, e.g. `SCALPER_RISK__PER_TRADE=0.004`). The schema and
//! its validation live with the core ([`scalper_core::config`]); reading them is I/O, so it lives
//! here at the edge.

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use scalper_core::config::{Config, ConfigError};
use std::path::Path;

/// Top-level sections that environment variables may set. Other `SCALPER_*` variables (for
/// example `SCALPER_LIVE_PIN_HASH` or API secrets) are not configuration and are ignored here.
const ENV_SECTIONS: &[&str] = &[
    "mode",
    "data_dir",
    "latency_price_buffer_pct",
    "risk",
    "thresholds",
    "fees",
    "categories",
    "universe",
    "endpoints",
    "server",
    "control",
    "storage",
    "engine",
    "reload",
    "intel",
];

/// Loading a [`Config`] from a file, the environment or a TOML string; every result is validated.
pub trait ConfigFile: Sized {
    /// Figment with the three layers: defaults → `file` (if given) → environment.
    fn figment(file: Option<&Path>) -> Figment;
    /// Loads defaults → `file` → environment and validates the result.
    fn load(file: Option<&Path>) -> Result<Self, ConfigError>;
    /// Parses a TOML string on top of defaults (no environment). Used by tests and `config check`.
    fn from_toml_str(s: &str) -> Result<Self, ConfigError>;
}

fn env_provider() -> Env {
    Env::prefixed("SCALPER_").split("__").filter(|k| {
        let key = k.as_str().to_ascii_lowercase();
        let top = key.split('.').next().unwrap_or("");
        ENV_SECTIONS.contains(&top)
    })
}

impl ConfigFile for Config {
    fn figment(file: Option<&Path>) -> Figment {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(f) = file {
            fig = fig.merge(Toml::file_exact(f));
        }
        fig.merge(env_provider())
    }

    fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        if let Some(f) = file {
            if !f.exists() {
                return Err(ConfigError::Parse(format!("config file {} does not exist", f.display())));
            }
        }
        let cfg: Config = Self::figment(file).extract().map_err(|e| ConfigError::Parse(e.to_string()))?;
        cfg.validate()?;
        Ok(cfg)
    }

    fn from_toml_str(s: &str) -> Result<Config, ConfigError> {
        let cfg: Config = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::string(s))
            .extract()
            .map_err(|e| ConfigError::Parse(e.to_string()))?;
        cfg.validate()?;
        Ok(cfg)
    }
}
