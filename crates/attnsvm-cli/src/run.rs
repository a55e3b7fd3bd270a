//! One training run, shared by `train` and `demo`: load and validate its inputs, train with a
//! progress bar and Ctrl-C, write the run directory, summarize.
//!
//! A run directory holds `W.npy` (the effective `W`), `K.npy`/`Q.npy` for `(K,Q)`, `v.npy` when `v`
//! is trained, `trace.csv` (the trajectory), `selected.npy` (records × n, int64: the top-attention
//! token of every sequence at every record), `alpha_hat.npy` (n, int64: the final selection, ready
//! for `attnsvm svm/tokens --alpha`), `summary.json` and `config.toml`.

use std::path::{Path, PathBuf};

use anyhow::Result;
use attnsvm::data::{npy, Instance};
use attnsvm::model::{Head, HeadKind, Loss, Objective, Param};
use attnsvm::train::{State, StopReason, TrainResult, TrainSettings};
use faer::Mat;
use serde::Serialize;

use crate::config::TrainConfig;
use crate::error::bad_input;
use crate::progress::Progress;
use crate::Outcome;

/// Everything a run reads, loaded and validated before anything is written.
pub struct Inputs {
    pub instance: Instance,
    pub head: Head,
    pub reference: Option<Mat<f64>>,
}

impl Inputs {
    /// Load the instance of `cfg.data`, the head's data and the reference matrix.
    pub fn load(cfg: &TrainConfig) -> Result<Self> {
        let dir = cfg.data()?;
        let instance = Instance::load(dir)?;
        Self::with_instance(cfg, instance, Some(dir))
    }

    /// Inputs around an instance held in memory. `dir` is where a ReLU head's `Wv.npy` and
    /// `u.npy` would be (none: the head is drawn from the seed).
    pub fn with_instance(
        cfg: &TrainConfig,
        instance: Instance,
        dir: Option<&Path>,
    ) -> Result<Self> {
        let head = match cfg.head {
            HeadKind::Linear => Head::Linear,
            HeadKind::Lambda => Head::Lambda { lambda: cfg.lambda },
            HeadKind::Relu => relu_head(dir, instance.d, cfg.settings.seed)?,
        };
        let reference = match &cfg.reference {
            Some(path) => Some(load_reference(path, instance.d)?),
            None => None,
        };
        Ok(Inputs {
            instance,
            head,
            reference,
        })
    }
}

/// The ReLU head `uᵀReLU(W_v x̄)`: `Wv.npy` (d_h×d) and `u.npy` (d_h,) from the instance directory
/// when both exist, else drawn from the seed ([`Head::relu_from_seed`]).
fn relu_head(dir: Option<&Path>, d: usize, seed: u64) -> Result<Head> {
    let Some(dir) = dir else {
        return Ok(Head::relu_from_seed(d, seed));
    };
    let (wv_path, u_path) = (dir.join("Wv.npy"), dir.join("u.npy"));
    match (wv_path.exists(), u_path.exists()) {
        (false, false) => Ok(Head::relu_from_seed(d, seed)),
        (true, true) => {
            let wv = npy::read_mat(&wv_path)?;
            let u = npy::read_f64(&u_path)?;
            if u.shape.len() != 1 {
                return Err(bad_input!(
                    "{}: expected a vector (d_h,), got shape {:?}",
                    u_path.display(),
                    u.shape
                ));
            }
            if let Some(k) = u.data.iter().position(|x| !x.is_finite()) {
                return Err(bad_input!(
                    "{}: non-finite value {} at index {k}",
                    u_path.display(),
                    u.data[k]
                ));
            }
            Ok(Head::Relu { wv, u: u.data })
        }
        (has_wv, _) => {
            let missing = if has_wv { &u_path } else { &wv_path };
            Err(bad_input!(
                "{}: the ReLU head needs both Wv.npy and u.npy in the instance directory",
                missing.display()
            ))
        }
    }
}

/// A `d×d` reference matrix (e.g. `W_mm`).
fn load_reference(path: &Path, d: usize) -> Result<Mat<f64>> {
    let m = npy::read_mat(path)?;
    if m.shape() != (d, d) {
        return Err(bad_input!(
            "{}: reference matrix is {}×{}, expected {d}×{d} (d of the instance)",
            path.display(),
            m.nrows(),
            m.ncols()
        ));
    }
    Ok(m)
}

/// Train with a progress bar; Ctrl-C stops the run with [`StopReason::Interrupted`].
pub fn train(cfg: &TrainConfig, inputs: &Inputs) -> Result<TrainResult> {
    let inst = &inputs.instance;
    let mut objective = Objective::new(inst, inputs.head.clone(), cfg.loss, cfg.query_pos)?;
    let state = State::init(&cfg.settings, inst.d, &inst.v);
    let progress = Progress::new(cfg.settings.iters);
    let result = attnsvm::train::train(
        &mut objective,
        &cfg.settings,
        state,
        inputs.reference.as_ref(),
        |k| progress.keep_going(k),
    );
    progress.finish();
    Ok(result?)
}

/// What `summary.json` of a run holds.
#[derive(Debug, Serialize)]
pub struct RunSummary {
    pub tool: &'static str,
    pub command: &'static str,
    pub data: Option<PathBuf>,
    pub reference: Option<PathBuf>,
    pub head: HeadKind,
    /// λ of the λ head (absent for the other heads).
    pub lambda: Option<f64>,
    pub loss: Loss,
    /// The query position (self-attention only).
    pub query_pos: Option<usize>,
    pub settings: TrainSettings,
    pub stop_reason: StopReason,
    /// Updates performed.
    pub iterations: usize,
    pub seconds: f64,
    pub iterations_per_second: Option<f64>,
    pub final_loss: f64,
    /// `log10` of the final loss, exact when the loss underflows (absent for the correlation loss).
    pub final_log10_loss: Option<f64>,
    /// `‖W‖_F` of the effective `W`.
    pub w_norm: f64,
    /// `corr(W, reference)` and `1 − corr`, when a reference was given.
    pub corr: Option<f64>,
    pub one_minus_corr: Option<f64>,
    /// `min_i max_t s_it` at the end.
    pub min_max_prob: f64,
    /// `argmax_t s_it` per sequence at the end.
    pub selected: Vec<usize>,
    /// The instance's selected tokens, and on how many sequences the final attention agrees.
    pub alpha: Option<Vec<usize>>,
    pub selected_agree_with_alpha: Option<usize>,
    pub n: usize,
    pub files: Vec<String>,
}

/// Write the run directory `dir` (which exists and is empty) and return its summary.
pub fn write_run(
    dir: &Path,
    cfg: &TrainConfig,
    inputs: &Inputs,
    result: &TrainResult,
) -> Result<RunSummary> {
    let inst = &inputs.instance;
    let mut files = Vec::new();
    let mut put = |name: &str| {
        files.push(name.to_string());
        dir.join(name)
    };
    let state = &result.state;
    npy::write_mat(&put("W.npy"), &state.w)?;
    if let Some((k, q)) = &state.kq {
        npy::write_mat(&put("K.npy"), k)?;
        npy::write_mat(&put("Q.npy"), q)?;
    }
    if cfg.settings.train_v {
        npy::write_f64(&put("v.npy"), &[inst.d], &state.v)?;
    }
    npy::write_text(&put("trace.csv"), &result.trajectory.to_csv())?;
    let (rows, n, selected) = result.trajectory.selected_matrix();
    npy::write_i64(&put("selected.npy"), &[rows, n], &selected)?;
    let final_selection = &selected[selected.len() - n..];
    npy::write_i64(&put("alpha_hat.npy"), &[n], final_selection)?;
    npy::write_text(&put("config.toml"), &cfg.to_toml()?)?;
    let summary_path = put("summary.json");
    let summary = summarize(cfg, inputs, result, files);
    crate::output::write_json(&summary_path, &summary)?;
    Ok(summary)
}

fn summarize(
    cfg: &TrainConfig,
    inputs: &Inputs,
    result: &TrainResult,
    files: Vec<String>,
) -> RunSummary {
    let inst = &inputs.instance;
    let last = result
        .trajectory
        .records
        .last()
        .expect("training records its last iterate");
    let agree = inst
        .alpha
        .as_ref()
        .map(|a| a.iter().zip(&last.selected).filter(|(a, s)| a == s).count());
    RunSummary {
        tool: crate::output::TOOL,
        command: "train",
        data: cfg.data.clone(),
        reference: cfg.reference.clone(),
        head: cfg.head,
        lambda: (cfg.head == HeadKind::Lambda).then_some(cfg.lambda),
        loss: cfg.loss,
        query_pos: inst.is_self_attention().then_some(cfg.query_pos),
        settings: cfg.settings.clone(),
        stop_reason: result.stop,
        iterations: result.iterations,
        seconds: result.seconds,
        iterations_per_second: (result.seconds > 0.0)
            .then(|| result.iterations as f64 / result.seconds),
        final_loss: last.loss,
        final_log10_loss: last.log_loss.map(|l| l / std::f64::consts::LN_10),
        w_norm: last.w_norm,
        corr: last.corr,
        one_minus_corr: last.one_minus_corr,
        min_max_prob: last.min_max_prob,
        selected: last.selected.clone(),
        alpha: inst.alpha.clone(),
        selected_agree_with_alpha: agree,
        n: inst.n,
        files,
    }
}

impl RunSummary {
    /// A few lines for a person.
    pub fn print(&self, out: &Path) {
        let s = &self.settings;
        let param = match s.param {
            Param::W => "W",
            Param::Kq => "(K,Q)",
        };
        println!(
            "trained {param} with {} (lr {}): {} updates in {:.2} s{}, stopped: {}",
            crate::cmd::name_of(&s.opt),
            s.lr,
            self.iterations,
            self.seconds,
            self.iterations_per_second
                .map_or(String::new(), |r| format!(" ({r:.0} updates/s)")),
            crate::cmd::name_of(&self.stop_reason),
        );
        let loss = match self.final_log10_loss {
            Some(l) => format!("{:.4e} (log10 {l:.3})", self.final_loss),
            None => format!("{:.6e}", self.final_loss),
        };
        println!(
            "  loss {loss}   ‖W‖_F {:.6}   min_i max_t s_it {:.6}",
            self.w_norm, self.min_max_prob
        );
        if let (Some(c), Some(omc)) = (self.corr, self.one_minus_corr) {
            println!("  corr(W, reference) {c:.6}   1 − corr {omc:.3e}");
        }
        // The token lists only while they fit on a line.
        let short = self.n <= 12;
        if short {
            print!("  selected tokens {:?}", self.selected);
        }
        match (&self.alpha, self.selected_agree_with_alpha) {
            (Some(alpha), Some(k)) if short => {
                println!("   alpha {alpha:?}: {k}/{} agree", self.n)
            }
            (Some(_), Some(k)) => {
                println!(
                    "  selected tokens agree with alpha on {k}/{} sequences",
                    self.n
                )
            }
            _ if short => println!(),
            _ => {}
        }
        println!("  wrote {} ({})", out.display(), self.files.join(", "));
    }
}

/// How a command that ran this training ends: [`Outcome::Interrupted`] after Ctrl-C.
pub fn outcome(result: &TrainResult) -> Outcome {
    if result.stop == StopReason::Interrupted {
        Outcome::Interrupted
    } else {
        Outcome::Done
    }
}
