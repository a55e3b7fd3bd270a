//! The configuration of a training run: what `attnsvm train` reads from `--config FILE`, merges
//! with its flags, and stores as `config.toml` in the run directory (rerunnable as is).
//!
//! ```toml
//! data = "inst"            # instance directory (paths are stored as given: relative to the cwd)
//! out = "runs/w-ngd"       # run directory
//! reference = "inst/W_mm.npy"   # optional d×d matrix for the correlation columns
//! head = "linear"          # linear | relu | lambda
//! lambda = 0.1             # λ of the λ head h(x̄) = vᵀx̄ − λ‖x̄‖² (other heads ignore it)
//! loss = "logistic"        # logistic | exp | corr
//! query_pos = 0            # self-attention: the query is token query_pos of each sequence
//!
//! [settings]               # attnsvm::train::TrainSettings, every field optional
//! param = "w"
//! opt = "ngd"
//! lr = 0.1
//! iters = 1000
//! ```
//!
//! Unknown keys are errors (a misspelt setting must not be silently ignored).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use attnsvm::model::{HeadKind, Loss};
use attnsvm::train::TrainSettings;
use serde::{Deserialize, Serialize};

use crate::error::bad_input;

/// The λ of the λ head when none is given.
pub const DEFAULT_LAMBDA: f64 = 0.1;

fn default_lambda() -> f64 {
    DEFAULT_LAMBDA
}

/// A training run. `data` and `out` are required once the config file and the flags are merged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub out: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<PathBuf>,
    #[serde(default)]
    pub head: HeadKind,
    #[serde(default = "default_lambda")]
    pub lambda: f64,
    #[serde(default)]
    pub loss: Loss,
    #[serde(default)]
    pub query_pos: usize,
    #[serde(default)]
    pub settings: TrainSettings,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            data: None,
            out: None,
            reference: None,
            head: HeadKind::default(),
            lambda: DEFAULT_LAMBDA,
            loss: Loss::default(),
            query_pos: 0,
            settings: TrainSettings::default(),
        }
    }
}

impl TrainConfig {
    /// Read a config file. A missing file or a malformed one is bad input; the message gives the
    /// line of the problem.
    pub fn read(path: &Path) -> Result<Self> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(bad_input!("{}: no such config file", path.display()))
            }
            Err(e) => return Err(e).with_context(|| format!("{}", path.display())),
        };
        toml::from_str(&text).map_err(|e| {
            let line = e
                .span()
                .map(|s| format!(" (line {})", text[..s.start].matches('\n').count() + 1))
                .unwrap_or_default();
            bad_input!("{}{line}: {}", path.display(), e.message())
        })
    }

    /// The config as TOML (what `config.toml` holds).
    pub fn to_toml(&self) -> Result<String> {
        toml::to_string(self).map_err(|e| bad_input!("cannot store the config as TOML: {e}"))
    }

    /// The instance directory.
    pub fn data(&self) -> Result<&Path> {
        self.data.as_deref().ok_or_else(|| {
            bad_input!("no instance directory: give --data DIR (or `data` in the config file)")
        })
    }

    /// The run directory.
    pub fn out(&self) -> Result<&Path> {
        self.out.as_deref().ok_or_else(|| {
            bad_input!("no output directory: give --out DIR (or `out` in the config file)")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_round_trip_keeps_every_setting() {
        let mut cfg = TrainConfig {
            data: Some("inst".into()),
            out: Some("runs/a".into()),
            reference: Some("inst/W_mm.npy".into()),
            head: HeadKind::Lambda,
            lambda: 0.25,
            loss: Loss::Exp,
            query_pos: 2,
            ..TrainConfig::default()
        };
        cfg.settings.loss_tol = Some(1e-300);
        cfg.settings.lr = 0.3;
        let text = cfg.to_toml().unwrap();
        let back: TrainConfig = toml::from_str(&text).unwrap();
        assert_eq!(back, cfg);
        // An empty file is the default config.
        assert_eq!(
            toml::from_str::<TrainConfig>("").unwrap(),
            TrainConfig::default()
        );
    }

    #[test]
    fn misspelt_keys_are_rejected_with_their_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "data = \"x\"\n[settings]\nlr = 0.1\niter = 5\n").unwrap();
        let e = crate::error::one_line(&TrainConfig::read(&path).unwrap_err());
        assert!(e.contains("line 4") && e.contains("iter"), "{e}");
    }
}
