//! Convergence rates of self-attention training (spec `rates-and-convex.md`, Paper A): train one
//! self-attention layer (query = token 0, logistic loss, `W`-parameterization) with GD, normalized
//! GD, the Polyak step and joint `(v, W)` training on several seeds, record against `t`
//!
//! - `1 − corr(W_t, W_mm)` (`corr(A,B) = ⟨A,B⟩/(‖A‖‖B‖)`),
//! - `‖W_t‖_F`,
//! - the softmax mass off the top token, `max_i (1 − max_t s_it)` (→ `1 − min_i s_{i,opt}` once
//!   the optimal tokens are selected),
//! - the loss gap `L(W_t) − L*` (fixed head, `L* = (1/n) Σ ℓ(γ_{i,opt})`) or `L(W_t, v_t)`
//!   (joint training, infimum 0),
//!
//! and fit a rate to each over the tail of the trajectory:
//!
//! | [`FitKind`] | model | fitted line |
//! |---|---|---|
//! | `power` | `q ≈ C t^{a}` | `ln q` on `ln t` |
//! | `exponential` | `q ≈ C e^{a t}` | `ln q` on `t` |
//! | `logarithmic` | `q ≈ a ln t + C` | `q` on `ln t` |
//! | `stretched` | `q ≈ C e^{a t^{1/3}}` | `ln q` on `t^{1/3}` |
//!
//! **Fit window.** Records with `t ∈ [fit_from·iters, iters]` (default `fit_from = 0.1`: the last
//! decade of a log-spaced trajectory, i.e. after the burn-in the theorems allow). Non-finite and
//! non-positive values (where a logarithm is taken) are skipped. Rates are summarized over seeds
//! by mean, standard deviation, min and max.
//!
//! **Predicted rates** (spec §A3, §A5). The paper's exact theorems were not recovered; every
//! prediction is tagged as in the spec:
//!
//! | optimizer | `1 − corr` | `‖W_t‖` | off mass | loss gap |
//! |---|---|---|---|---|
//! | GD (η) | power, negative, shallow (`O(1/log t)`-type, \[RECON\] from linear logistic regression) | logarithmic, slope ≈ `‖W_mm‖` \[DERIVED\] | power `−1` \[DERIVED\] | power `−1` \[DERIVED\] |
//! | NGD (η) | power `−2` in S0 \[DERIVED\]; `≤ −1` in general (the `O(t^{−1/2})` directional rate \[3P-SUM\]) | power `+1` \[DERIVED\] | exponential `−η/‖W_mm‖` \[DERIVED/RECON\] | exponential `−η/‖W_mm‖` \[DERIVED\] |
//! | Polyak (`f* = L*`, c) | power `−2` in S0 \[DERIVED\]; `≤ −1` in general | power `+1` (`‖W_t‖/t → c‖W_mm‖`) \[DERIVED\] | exponential `−c` \[DERIVED\] | exponential `−c` \[DERIVED\] |
//! | joint `(v, W)` (NGD) | — | power `+1` \[DERIVED\] | — | stretched (`exp(−t^{1/3})`), negative \[3P-SUM\] |
//!
//! | stochastic NGD (η, batch b of n) | power `−2` in S0 \[OURS\] | power `+1` (`‖W_t‖ ≈ η√(b/n)·t`) \[OURS\] | exponential `−η√(b/n)/‖W_mm‖` in S0 \[OURS\] | same as off mass \[OURS\] |
//!
//! The Polyak step with `f* = 0` is offered for joint training only (with a fixed head `L* > 0` and
//! the step `L/‖∇L‖²` overshoots without bound).
//!
//! **Stochastic NGD** (\[OURS\]: the paper treats it empirically only). In S0 the tokens of all
//! sequences are orthonormal, so `W_mm` is a sum of `n` orthogonal per-sequence pieces of equal
//! norm `‖W_mm‖/√n`, and a minibatch `B` of `b` sequences has gradient direction → `W_mm^B/‖W_mm^B‖`
//! with `‖W_mm^B‖ = ‖W_mm‖√(b/n)`. A step raises the margin of each sequence in `B` by
//! `η/‖W_mm^B‖`, and each sequence is in the batch for a fraction `b/n` of the steps, so margins
//! grow (and `‖W_t‖` grows by `η√(b/n)`) at `η√(b/n)/‖W_mm‖` per step: `√(n/b)` times slower per step than full-batch NGD, but
//! `√(n/b)` times faster per sequence visited. Every sequence is visited once per epoch, so the
//! direction's error stays `O(1/t)` as for NGD.
//!
//! **Data settings** ([`Setting`]; the paper's own global-convergence assumptions were not
//! recovered, these are the spec's proposals):
//! S0 `orthonormal` (closed-form `W_mm`), S1 `equal-score` (the prior work's global setting) and
//! S2 `gaussian` (take `d ≫ nT`); for S1 and S2 `W_mm` comes from the Att-SVM solver.
//!
//! ```
//! use attnsvm::experiments::rates::{run, Quantity, RatesConfig};
//!
//! // One seed of the quick S0 configuration, 300 steps: fitted rates next to predicted ones.
//! let config = RatesConfig { seeds: vec![0], iters: 300, ..RatesConfig::quick() };
//! let result = run(&config)?;
//! println!("{}", result.table_markdown());
//! let ngd = result.row("ngd", Quantity::OffMass).unwrap();
//! let predicted = ngd.prediction.slope.unwrap(); // −η/‖W_mm‖ per step
//! assert!((ngd.mean / predicted - 1.0).abs() < 0.1);
//! let csv = result.curves_csv(); // per-iteration curves, one row per recorded iterate
//! assert!(csv.lines().count() > 1);
//! # Ok::<(), attnsvm::Error>(())
//! ```

use faer::Mat;
use serde::{Deserialize, Serialize};

mod output;
mod predict;

pub use output::CURVES_CSV_HEADER;
pub use predict::{predict, Prediction};

use super::{fit_line, LineFit};
use crate::data::generate::{generate, Family, GenSpec};
use crate::data::Instance;
use crate::error::{invalid, Result};
use crate::model::{Head, Loss, Objective};
use crate::solvers::svm::{AttSvm, AttSvmProblem, Layout, Status, SvmSettings};
use crate::train::{train, Init, Optimizer, PolyakTarget, State, StopReason, TrainSettings};

/// The data setting (spec §A1, S0–S2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Setting {
    /// S0: `x_it = e_{iT+t}` (`d ≥ nT`), `W_mm` in closed form.
    #[default]
    Orthonormal,
    /// S1: every non-optimal token of a sequence has the same score (global convergence in the
    /// prior work); `W_mm` from Att-SVM.
    EqualScore,
    /// S2: Gaussian tokens, nearly orthogonal when `d ≫ nT`; `W_mm` from Att-SVM.
    Gaussian,
}

impl Setting {
    fn family(self) -> Family {
        match self {
            Setting::Orthonormal => Family::Orthonormal,
            Setting::EqualScore => Family::EqualScore,
            Setting::Gaussian => Family::Gaussian,
        }
    }
}

/// One optimizer of the comparison.
///
/// | field | meaning |
/// |---|---|
/// | `name` | label in tables and CSV |
/// | `opt` | `gd`, `ngd`, `polyak` (Adam has no predicted rate but may be run) |
/// | `lr` | η (Polyak: the multiplier c of `c(L − f*)/‖∇L‖²`) |
/// | `polyak_target` | `infimum` (`f* = L*`, fixed head) or `zero` (joint training) |
/// | `train_v` | joint training of the head vector `v` with `W` (per-tensor normalization) |
/// | `batch_size` | sequences per step (minibatch: stochastic GD/NGD/Polyak); none = full batch |
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptimizerSpec {
    pub name: String,
    pub opt: Optimizer,
    pub lr: f64,
    #[serde(default)]
    pub polyak_target: PolyakTarget,
    #[serde(default)]
    pub train_v: bool,
    #[serde(default)]
    pub batch_size: Option<usize>,
}

impl OptimizerSpec {
    fn new(name: &str, opt: Optimizer, lr: f64) -> Self {
        OptimizerSpec {
            name: name.into(),
            opt,
            lr,
            polyak_target: PolyakTarget::Zero,
            train_v: false,
            batch_size: None,
        }
    }

    /// GD η = 1, NGD η = 0.1, Polyak with `f* = L*` (c = 1), joint NGD η = 0.1 (the spec's S0
    /// reference runs, §A4), and stochastic NGD η = 0.1 on minibatches of 2 sequences.
    pub fn defaults() -> Vec<OptimizerSpec> {
        vec![
            OptimizerSpec::new("gd", Optimizer::Gd, 1.0),
            OptimizerSpec::new("ngd", Optimizer::Ngd, 0.1),
            OptimizerSpec {
                polyak_target: PolyakTarget::Infimum,
                ..OptimizerSpec::new("polyak", Optimizer::Polyak, 1.0)
            },
            OptimizerSpec {
                train_v: true,
                ..OptimizerSpec::new("joint-ngd", Optimizer::Ngd, 0.1)
            },
            OptimizerSpec {
                batch_size: Some(2),
                ..OptimizerSpec::new("sngd", Optimizer::Ngd, 0.1)
            },
        ]
    }
}

/// Configuration of the rates experiment.
///
/// | field | quick | full | meaning |
/// |---|---|---|---|
/// | `setting` | `orthonormal` | `orthonormal` | data setting (S0/S1/S2) |
/// | `n, t, d` | 4, 4, 16 | 6, 5, 30 | sequences, tokens, dimension |
/// | `seeds` | 0..3 | 0..10 | seed of data and of the initialization |
/// | `iters` | 1000 | 10 000 | updates per run |
/// | `init` | `random` | `random` | `W_0` entries `U(−1/√d, 1/√d)` (a zero start hides the frozen part of `W_0` that sets the `O(1/t)` directional error) |
/// | `points_per_decade` | 20 | 20 | trajectory records per decade |
/// | `fit_from` | 0.1 | 0.1 | fit window `[fit_from·iters, iters]`, in (0, 1) |
/// | `optimizers` | [`OptimizerSpec::defaults`] | same | what is compared |
///
/// `Default` is the quick configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RatesConfig {
    pub setting: Setting,
    pub n: usize,
    pub t: usize,
    pub d: usize,
    pub seeds: Vec<u64>,
    pub iters: usize,
    pub init: Init,
    pub points_per_decade: usize,
    pub fit_from: f64,
    pub optimizers: Vec<OptimizerSpec>,
}

impl Default for RatesConfig {
    fn default() -> Self {
        RatesConfig::quick()
    }
}

impl RatesConfig {
    /// Test-sized: S0 with n = T = 4, d = 16, 3 seeds, 1000 steps (the spec's §A4 instance size).
    pub fn quick() -> Self {
        RatesConfig {
            setting: Setting::Orthonormal,
            n: 4,
            t: 4,
            d: 16,
            seeds: (0..3).collect(),
            iters: 1000,
            init: Init::Random,
            points_per_decade: 20,
            fit_from: 0.1,
            optimizers: OptimizerSpec::defaults(),
        }
    }

    /// Report-sized: S0 with n = 6, T = 5, d = 30, 10 seeds, 10⁴ steps.
    pub fn full() -> Self {
        RatesConfig {
            n: 6,
            t: 5,
            d: 30,
            seeds: (0..10).collect(),
            iters: 10_000,
            ..RatesConfig::quick()
        }
    }

    /// Validate sizes, window and optimizers.
    pub fn check(&self) -> Result<()> {
        if self.n == 0 || self.t < 2 || self.d == 0 {
            return Err(invalid!(
                "rates: need n ≥ 1, T ≥ 2, d ≥ 1 (got {}, {}, {})",
                self.n,
                self.t,
                self.d
            ));
        }
        if self.seeds.is_empty() || self.optimizers.is_empty() {
            return Err(invalid!("rates: need at least one seed and one optimizer"));
        }
        if self.iters < 10 {
            return Err(invalid!("rates: iters must be ≥ 10 (got {})", self.iters));
        }
        if !(self.fit_from > 0.0 && self.fit_from < 1.0) {
            return Err(invalid!(
                "rates: fit_from must lie in (0, 1) (got {})",
                self.fit_from
            ));
        }
        for o in &self.optimizers {
            if o.opt == Optimizer::Polyak && o.polyak_target == PolyakTarget::Zero && !o.train_v {
                return Err(invalid!(
                    "rates: optimizer {}: Polyak with f* = 0 and a fixed head overshoots (L* > 0); use polyak_target = infimum",
                    o.name
                ));
            }
        }
        Ok(())
    }

    fn train_settings(&self, o: &OptimizerSpec, seed: u64) -> TrainSettings {
        TrainSettings {
            opt: o.opt,
            lr: o.lr,
            polyak_target: o.polyak_target,
            train_v: o.train_v,
            batch_size: o.batch_size,
            iters: self.iters,
            init: self.init,
            seed,
            points_per_decade: self.points_per_decade,
            ..TrainSettings::default()
        }
    }
}

/// The measured quantities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Quantity {
    OneMinusCorr,
    WNorm,
    OffMass,
    LossGap,
}

impl Quantity {
    pub const ALL: [Quantity; 4] = [
        Quantity::OneMinusCorr,
        Quantity::WNorm,
        Quantity::OffMass,
        Quantity::LossGap,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Quantity::OneMinusCorr => "1-corr",
            Quantity::WNorm => "|W|",
            Quantity::OffMass => "off-mass",
            Quantity::LossGap => "loss-gap",
        }
    }
}

/// The form of a rate (module table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FitKind {
    Power,
    Exponential,
    Logarithmic,
    Stretched,
}

impl FitKind {
    /// The fitted `(x, y)` of a point at `t` whose quantity has logarithm `ln_q` (kept in logs
    /// so that values far below the smallest f64 still fit).
    fn transform_log(self, t: f64, ln_q: f64) -> (f64, f64) {
        match self {
            FitKind::Power => (t.ln(), ln_q),
            FitKind::Exponential => (t, ln_q),
            FitKind::Logarithmic => (t.ln(), ln_q.exp()),
            FitKind::Stretched => (t.cbrt(), ln_q),
        }
    }
}

/// One recorded iterate of one run. Logarithms are natural.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CurvePoint {
    pub iter: usize,
    pub loss: f64,
    /// `ln(L − L*)` (fixed head) or `ln L` (joint training).
    pub ln_loss_gap: f64,
    pub one_minus_corr: f64,
    pub w_norm: f64,
    /// `ln max_i (1 − max_t s_it)`.
    pub ln_off_mass: f64,
}

impl CurvePoint {
    /// `(t, ln q)` of a quantity (`‖W‖` as `ln ‖W‖`).
    fn ln_value(&self, q: Quantity) -> f64 {
        match q {
            Quantity::OneMinusCorr => self.one_minus_corr.ln(),
            Quantity::WNorm => self.w_norm.ln(),
            Quantity::OffMass => self.ln_off_mass,
            Quantity::LossGap => self.ln_loss_gap,
        }
    }
}

/// A fitted rate of one quantity in one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RateFit {
    pub quantity: Quantity,
    pub kind: FitKind,
    /// `None` when the window held fewer than two usable points.
    pub fit: Option<LineFit>,
}

/// One optimizer on one seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunCurves {
    pub optimizer: String,
    pub seed: u64,
    /// `‖W_mm‖_F` of the seed's instance.
    pub w_mm_norm: f64,
    pub stop: StopReason,
    pub points: Vec<CurvePoint>,
    pub fits: Vec<RateFit>,
}

impl RunCurves {
    /// The fitted slope of a quantity, if any.
    pub fn slope(&self, q: Quantity) -> Option<f64> {
        self.fits
            .iter()
            .find(|f| f.quantity == q)
            .and_then(|f| f.fit)
            .map(|f| f.slope)
    }

    /// The last recorded point.
    pub fn last(&self) -> &CurvePoint {
        self.points.last().expect("a run records its last iterate")
    }
}

/// One row of the rate table: fitted slopes over seeds next to the prediction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableRow {
    pub optimizer: String,
    pub quantity: Quantity,
    pub prediction: Prediction,
    pub mean: f64,
    pub std: f64,
    pub min: f64,
    pub max: f64,
    /// Seeds with a fit.
    pub seeds: usize,
}

/// Everything the experiment measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RatesResult {
    pub config: RatesConfig,
    pub runs: Vec<RunCurves>,
    pub table: Vec<TableRow>,
}

/// The instance of a seed and its `W_mm`.
pub fn instance(config: &RatesConfig, seed: u64) -> Result<(Instance, Mat<f64>)> {
    let spec = GenSpec {
        self_attention: true,
        ..GenSpec::new(config.setting.family(), config.n, config.t, config.d, seed)
    };
    let g = generate(&spec)?;
    if let Some((_, w_mm)) = g.reference.filter(|r| r.0 == "W_mm") {
        return Ok((g.instance, w_mm));
    }
    let inst = g.instance;
    let alpha = inst.optimal_tokens();
    let problem = AttSvmProblem::att_svm(&inst, &alpha, Layout::default())?;
    let sol = AttSvm::new(&problem, SvmSettings::default())?.solve();
    if sol.status != Status::Solved {
        return Err(invalid!(
            "rates: seed {seed}: Att-SVM for the optimal tokens is {:?} (choose d larger)",
            sol.status
        ));
    }
    Ok((inst, sol.w))
}

/// Run the experiment: every optimizer on every seed, then the fits and the table.
pub fn run(config: &RatesConfig) -> Result<RatesResult> {
    config.check()?;
    let mut runs = Vec::new();
    for &seed in &config.seeds {
        let (inst, w_mm) = instance(config, seed)?;
        let w_mm_norm = w_mm.norm_l2();
        for o in &config.optimizers {
            let settings = config.train_settings(o, seed);
            let mut risk = Objective::new(&inst, Head::Linear, Loss::Logistic, 0)?;
            let state = State::init(&settings, inst.d, &inst.v);
            let res = train(&mut risk, &settings, state, Some(&w_mm), |_| true)?;
            let points: Vec<CurvePoint> = res
                .trajectory
                .records
                .iter()
                .map(|r| CurvePoint {
                    iter: r.iter,
                    loss: r.loss,
                    ln_loss_gap: if o.train_v {
                        r.log_loss
                    } else {
                        r.log_excess_loss
                    }
                    .unwrap_or(f64::NAN),
                    one_minus_corr: r.one_minus_corr.unwrap_or(f64::NAN),
                    w_norm: r.w_norm,
                    ln_off_mass: r.log_max_off_mass,
                })
                .collect();
            let fits = Quantity::ALL
                .iter()
                .map(|&q| {
                    let kind = predict(config, o, q, w_mm_norm).kind;
                    RateFit {
                        quantity: q,
                        kind,
                        fit: fit_tail(&points, q, kind, config.fit_from, config.iters),
                    }
                })
                .collect();
            runs.push(RunCurves {
                optimizer: o.name.clone(),
                seed,
                w_mm_norm,
                stop: res.stop,
                points,
                fits,
            });
        }
    }
    let table = table(config, &runs);
    Ok(RatesResult {
        config: config.clone(),
        runs,
        table,
    })
}

/// The fit of one quantity over the window `[fit_from·iters, iters]`.
pub fn fit_tail(
    points: &[CurvePoint],
    q: Quantity,
    kind: FitKind,
    fit_from: f64,
    iters: usize,
) -> Option<LineFit> {
    let start = (fit_from * iters as f64).max(1.0);
    let pts: Vec<(f64, f64)> = points
        .iter()
        .filter(|p| p.iter as f64 >= start)
        .map(|p| kind.transform_log(p.iter as f64, p.ln_value(q)))
        .collect();
    fit_line(&pts)
}

fn table(config: &RatesConfig, runs: &[RunCurves]) -> Vec<TableRow> {
    let mut rows = Vec::new();
    for o in &config.optimizers {
        let mine: Vec<&RunCurves> = runs.iter().filter(|r| r.optimizer == o.name).collect();
        let mean_w_mm = mine.iter().map(|r| r.w_mm_norm).sum::<f64>() / mine.len().max(1) as f64;
        for q in Quantity::ALL {
            let slopes: Vec<f64> = mine.iter().filter_map(|r| r.slope(q)).collect();
            let m = slopes.len() as f64;
            let mean = slopes.iter().sum::<f64>() / m;
            let var = slopes.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / (m - 1.0).max(1.0);
            rows.push(TableRow {
                optimizer: o.name.clone(),
                quantity: q,
                prediction: predict(config, o, q, mean_w_mm),
                mean,
                std: var.sqrt(),
                min: slopes.iter().cloned().fold(f64::INFINITY, f64::min),
                max: slopes.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
                seeds: slopes.len(),
            });
        }
    }
    rows
}
