//! `attnsvm train`: train one attention layer on an instance directory.
//!
//! Settings come from `--config FILE` (if given) or the defaults, then every flag given overrides
//! them; the merged config is stored as `config.toml` in the run directory.

use std::path::PathBuf;

use anyhow::Result;
use attnsvm::model::{HeadKind, Loss, Param};
use attnsvm::train::{Init, Optimizer, PolyakTarget, TrainSettings};
use clap::Args;

use super::{name_of, names, serde_enum, with_default};
use crate::config::{TrainConfig, DEFAULT_LAMBDA};
use crate::output::{check_destination, Staging};
use crate::run::{self, Inputs};
use crate::Outcome;

fn d() -> TrainSettings {
    TrainSettings::default()
}

/// Flags of `attnsvm train`. Every flag is optional here: a missing one keeps the value of the
/// config file, or the default shown.
#[derive(Debug, Args)]
#[command(
    after_help = "Exit codes: 0 done, 1 I/O failure, 2 bad input, 130 stopped by Ctrl-C \
    (the run so far is written, stop reason `interrupted`)."
)]
pub struct TrainArgs {
    /// TOML config (e.g. the config.toml of an earlier run); the flags below override it
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Instance directory: X.npy, y.npy, v.npy, optional Z.npy and alpha.npy (and Wv.npy, u.npy
    /// for --head relu) [required, here or in the config]
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Run directory to create (replaces an earlier run there) [required, here or in the config]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// d×d matrix (.npy, e.g. W_mm.npy) to track corr(W, reference) against
    #[arg(long, value_name = "FILE")]
    pub reference: Option<PathBuf>,

    #[arg(long, value_parser = serde_enum::<Param>(names::PARAM),
          help = with_default("Parameterization: W, or (K,Q) with W = K Qᵀ", name_of(&d().param)))]
    pub param: Option<Param>,
    #[arg(long, value_parser = serde_enum::<HeadKind>(names::HEAD),
          help = with_default("Prediction head: vᵀx̄, uᵀReLU(W_v x̄), or vᵀx̄ − λ‖x̄‖²",
                              name_of(&HeadKind::default())))]
    pub head: Option<HeadKind>,
    #[arg(long, value_name = "λ", allow_negative_numbers = true,
          help = with_default("λ of the lambda head", DEFAULT_LAMBDA))]
    pub lambda: Option<f64>,
    #[arg(long, value_parser = serde_enum::<Loss>(names::LOSS),
          help = with_default("Margin loss ℓ(y f): log(1+e^{−u}), e^{−u}, or −u",
                              name_of(&Loss::default())))]
    pub loss: Option<Loss>,
    #[arg(long, value_parser = serde_enum::<Optimizer>(names::OPT),
          help = with_default("Update rule: gradient descent, normalized GD, Polyak step, Adam",
                              name_of(&d().opt)))]
    pub opt: Option<Optimizer>,
    #[arg(long, value_name = "η", allow_negative_numbers = true,
          help = with_default("Step size η (dimensionless; for polyak a multiplier of the Polyak step)",
                              d().lr))]
    pub lr: Option<f64>,
    #[arg(long, value_name = "p", allow_negative_numbers = true,
          help = with_default("Step-size decay: η_k = η·(1+k)^(−p)", d().lr_decay))]
    pub lr_decay: Option<f64>,
    #[arg(long, value_name = "K", help = with_default("Number of updates", d().iters))]
    pub iters: Option<usize>,
    #[arg(long, value_parser = serde_enum::<Init>(names::INIT),
          help = with_default("Initialization: W = 0 (K = 0.1·N(0,1), Q = 0 for kq), or U(±1/√d) entries",
                              name_of(&d().init)))]
    pub init: Option<Init>,
    #[arg(long, help = with_default("Seed of the initialization and of a drawn ReLU head", d().seed))]
    pub seed: Option<u64>,
    #[arg(long, value_name = "q",
          help = with_default("Self-attention: the query is token q of each sequence (0-based)", 0))]
    pub query_pos: Option<usize>,
    #[arg(long, value_name = "ε", allow_negative_numbers = true,
          help = with_default("ε of normalized GD, ∇/(‖∇‖+ε); 0 is the exact direction", d().ngd_eps))]
    pub ngd_eps: Option<f64>,
    #[arg(long, value_parser = serde_enum::<PolyakTarget>(names::POLYAK_TARGET),
          help = with_default("f* of the Polyak step: 0, or the infimum L* of a fixed linear head",
                              name_of(&d().polyak_target)))]
    pub polyak_target: Option<PolyakTarget>,
    #[arg(long, value_name = "r", allow_negative_numbers = true,
          help = with_default("Ridge r·(‖K‖²+‖Q‖²) added for kq", d().kq_ridge))]
    pub kq_ridge: Option<f64>,
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true",
          help = with_default("Also train the head vector v (linear and lambda heads)", d().train_v))]
    pub train_v: Option<bool>,
    /// Stop when the loss is ≤ x [default: off]
    #[arg(long, value_name = "x", allow_negative_numbers = true)]
    pub loss_tol: Option<f64>,
    /// Stop when ‖∇L‖ is ≤ x [default: off]
    #[arg(long, value_name = "x", allow_negative_numbers = true)]
    pub grad_tol: Option<f64>,
    /// Sequences per step: minibatch (stochastic) GD / normalized GD / Polyak, each epoch in a
    /// fresh random order [default: off, the full batch]
    #[arg(long, value_name = "b")]
    pub batch_size: Option<usize>,
    #[arg(long, value_name = "m",
          help = with_default("Trajectory records per decade of iterations (every one of 0..=10 is kept)",
                              d().points_per_decade))]
    pub points_per_decade: Option<usize>,
    #[arg(long, allow_negative_numbers = true, help = with_default("Adam β₁", d().adam_beta1))]
    pub adam_beta1: Option<f64>,
    #[arg(long, allow_negative_numbers = true, help = with_default("Adam β₂", d().adam_beta2))]
    pub adam_beta2: Option<f64>,
    #[arg(long, allow_negative_numbers = true, help = with_default("Adam ε", format!("{:e}", d().adam_eps)))]
    pub adam_eps: Option<f64>,
}

impl TrainArgs {
    /// The config file (or the defaults) with every given flag applied.
    pub fn merged(self) -> Result<TrainConfig> {
        let mut c = match &self.config {
            Some(path) => TrainConfig::read(path)?,
            None => TrainConfig::default(),
        };
        fn set<T>(slot: &mut T, flag: Option<T>) {
            if let Some(v) = flag {
                *slot = v;
            }
        }
        set(&mut c.data, self.data.map(Some));
        set(&mut c.out, self.out.map(Some));
        set(&mut c.reference, self.reference.map(Some));
        set(&mut c.head, self.head);
        set(&mut c.lambda, self.lambda);
        set(&mut c.loss, self.loss);
        set(&mut c.query_pos, self.query_pos);
        let s = &mut c.settings;
        set(&mut s.param, self.param);
        set(&mut s.opt, self.opt);
        set(&mut s.lr, self.lr);
        set(&mut s.lr_decay, self.lr_decay);
        set(&mut s.iters, self.iters);
        set(&mut s.init, self.init);
        set(&mut s.seed, self.seed);
        set(&mut s.ngd_eps, self.ngd_eps);
        set(&mut s.polyak_target, self.polyak_target);
        set(&mut s.kq_ridge, self.kq_ridge);
        set(&mut s.train_v, self.train_v);
        set(&mut s.loss_tol, self.loss_tol.map(Some));
        set(&mut s.grad_tol, self.grad_tol.map(Some));
        set(&mut s.batch_size, self.batch_size.map(Some));
        set(&mut s.points_per_decade, self.points_per_decade);
        set(&mut s.adam_beta1, self.adam_beta1);
        set(&mut s.adam_beta2, self.adam_beta2);
        set(&mut s.adam_eps, self.adam_eps);
        Ok(c)
    }
}

pub fn run(args: TrainArgs) -> Result<Outcome> {
    let cfg = args.merged()?;
    let (data, out) = (cfg.data()?, cfg.out()?);
    cfg.to_toml()?;
    let inputs = Inputs::load(&cfg)?;
    let mut protected = vec![data];
    protected.extend(cfg.reference.as_deref());
    check_destination(out, "train", &protected)?;

    let result = run::train(&cfg, &inputs)?;

    let staging = Staging::create(out, "train")?;
    let summary = run::write_run(staging.path(), &cfg, &inputs, &result)?;
    staging.commit()?;
    summary.print(out);
    Ok(run::outcome(&result))
}
