//! The experiments of "Convexifying Transformers" (spec `rates-and-convex.md`, Paper B, B4–B5) on
//! a synthetic student–teacher task, since the paper's BERT features and hyperparameters were not
//! recovered (B4):
//!
//! - [`student_teacher`]: a random multi-head softmax attention layer labels the data; the convex
//!   program (9), the simplex model (8) and softmax attention learn it; train/test error against
//!   time and the attention maps (B4.1, B5.13);
//! - [`beta_path`]: the β path of (9) on the same data (active tokens, loss, the exact `β_max`;
//!   B5.6, B5.7, B5.9);
//! - [`width`]: the printed-vs-corrected discrepancies: the `h = 1` counterexample of B-T2 and the
//!   loss-weight flag (B5.3, B5.4).
//!
//! **The data** ([`Regime::Content`]; [`Regime::Positional`] uses `pos_scale = 3`,
//! `key_scale = 0.5`). `N` samples of `n` tokens in `R^d`: `x_ik = g_ik + e_k` with `g_ik ~ N(0, I)` and
//! a fixed positional embedding `e_k ~ N(0, pos_scale²·I)` (seeded), so that where the teacher
//! looks depends on both content and position. The teacher is [`softmax`] attention with
//! `teacher_heads` heads, scores `p_j ~ N(0, key_scale²·I)` (peaked attention), values and outputs
//! `N(0, 1)`; targets `y_i = f*(X_i) + σ ε_i` with `σ = noise · std(f*)`. The loss is squared,
//! `(ŷ − y)²`, with the corrected weight 1; errors are reported as mean squared errors.

mod path;
mod teacher;
mod width;

pub use path::{beta_path, run_path, BetaPath, PathPoint};
pub use teacher::{student_teacher, AttentionMap, Curve, CurvePoint, StudentTeacher};
pub use width::{width, Width};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use serde::Serialize;

use crate::error::Result;
use crate::solvers::glasso::softmax::{self, SoftmaxHead};
use crate::solvers::glasso::{GlassoProblem, Squared};

/// Where the teacher's attention comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Regime {
    /// Content and position alike (`pos_scale = 1`): the attention varies strongly between
    /// samples, which no fixed simplex matrix can follow (B-T0).
    Content,
    /// Position dominates (`pos_scale = 3`, content scores damped): the teacher's attention is
    /// nearly the same for every sample, the regime that model (4) assumes.
    Positional,
}

/// Sizes and seeds of the student–teacher data.
#[derive(Debug, Clone, Serialize)]
pub struct TaskConfig {
    pub regime: Regime,
    pub n_train: usize,
    pub n_valid: usize,
    pub n_test: usize,
    pub tokens: usize,
    pub d: usize,
    pub teacher_heads: usize,
    pub key_scale: f64,
    pub pos_scale: f64,
    /// Label noise as a fraction of the teacher's output standard deviation.
    pub noise: f64,
    pub seed: u64,
}

impl TaskConfig {
    /// The quick (tests) or full sizes.
    pub fn new(quick: bool, regime: Regime) -> Self {
        let positional = regime == Regime::Positional;
        TaskConfig {
            regime,
            n_train: if quick { 60 } else { 400 },
            n_valid: if quick { 60 } else { 400 },
            n_test: if quick { 200 } else { 2000 },
            tokens: if quick { 6 } else { 16 },
            d: if quick { 4 } else { 8 },
            teacher_heads: 3,
            key_scale: if positional { 0.5 } else { 1.5 },
            pos_scale: if positional { 3.0 } else { 1.0 },
            noise: 0.1,
            seed: 2022,
        }
    }
}

/// One split: tokens `N·n·d` and targets.
#[derive(Debug, Clone)]
pub struct Split {
    pub x: Vec<f64>,
    pub y: Vec<f64>,
    pub n: usize,
}

impl Split {
    /// The squared-loss program (9) on this split (weight 1).
    pub fn problem(&self, cfg: &TaskConfig) -> Result<GlassoProblem<'_>> {
        GlassoProblem::new(
            (self.n, cfg.tokens, cfg.d),
            &self.x,
            self.y.clone(),
            1,
            Squared,
        )
    }

    /// `(1/N) Σ (ŷ_i − y_i)²`.
    pub fn mse(&self, pred: &[f64]) -> f64 {
        pred.iter()
            .zip(&self.y)
            .map(|(p, y)| (p - y).powi(2))
            .sum::<f64>()
            / self.n as f64
    }
}

/// The teacher and the three splits.
#[derive(Debug, Clone)]
pub struct Task {
    pub config: TaskConfig,
    pub teacher: Vec<SoftmaxHead>,
    pub train: Split,
    pub valid: Split,
    pub test: Split,
    /// `σ`, the label noise's standard deviation: the best possible test MSE is `σ²`.
    pub sigma: f64,
}

/// Draw the task (deterministic in `cfg.seed`).
pub fn task(cfg: &TaskConfig) -> Result<Task> {
    let (n, d) = (cfg.tokens, cfg.d);
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let mut normal = |len: usize, scale: f64| -> Vec<f64> {
        (0..len)
            .map(|_| scale * rng.sample::<f64, _>(StandardNormal))
            .collect()
    };
    let pos = normal(n * d, cfg.pos_scale);
    let mut teacher = softmax::random_heads(d, cfg.teacher_heads, 1.0, cfg.seed ^ 0x7eac);
    for h in &mut teacher {
        h.key.iter_mut().for_each(|p| *p *= cfg.key_scale);
    }
    // (tokens, clean teacher outputs, standard normal noise) of `count` samples.
    let mut draw = |count: usize| -> Result<(Vec<f64>, Vec<f64>, Vec<f64>)> {
        let mut x = normal(count * n * d, 1.0);
        for (k, v) in x.iter_mut().enumerate() {
            *v += pos[k % (n * d)];
        }
        let probe = GlassoProblem::new((count, n, d), &x, vec![0.0; count], 1, Squared)?;
        let clean = softmax::predictions(&probe, &teacher)?;
        Ok((x, clean, normal(count, 1.0)))
    };
    let train = draw(cfg.n_train)?;
    let valid = draw(cfg.n_valid)?;
    let test = draw(cfg.n_test)?;
    // The noise scale comes from the clean training outputs.
    let clean = &train.1;
    let mean = clean.iter().sum::<f64>() / cfg.n_train as f64;
    let var = clean.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / cfg.n_train as f64;
    let sigma = cfg.noise * var.sqrt();
    let split = |(x, clean, eps): (Vec<f64>, Vec<f64>, Vec<f64>)| Split {
        n: clean.len(),
        y: clean.iter().zip(&eps).map(|(c, e)| c + sigma * e).collect(),
        x,
    };
    Ok(Task {
        train: split(train),
        valid: split(valid),
        test: split(test),
        teacher,
        sigma,
        config: cfg.clone(),
    })
}
