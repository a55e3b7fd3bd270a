//! The student–teacher experiment (B4.1, B5.1, B5.13): a random softmax-attention teacher labels
//! the data ([`super::task`]); three students learn it with the same weight decay β, chosen by
//! validation error on the convex β path:
//!
//! - the convex program (9), solved by FISTA from `Z = 0` to a relative gap of 1e-10;
//! - the simplex model (8) with `h` heads, projected gradient, several seeds;
//! - softmax attention with `h` heads, Adam, several seeds.
//!
//! Each run records train and test MSE against wall time (the recording's own time is excluded)
//! at log-spaced iterations, and its attention maps: the convex program's recovered one-hot heads
//! (Proposition 1), the simplex heads `w_j`, and the softmax heads' attention over test samples.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::path::run_path;
use super::{task, Regime, Split, Task, TaskConfig};
use crate::error::{Error, Result};
use crate::experiments::Claim;
use crate::solvers::glasso::recover::{head_predictions, recover_heads, Head};
use crate::solvers::glasso::simplex::{self, SimplexSettings};
use crate::solvers::glasso::softmax::{self, SoftmaxHead, SoftmaxSettings};
use crate::solvers::glasso::{Glasso, GlassoProblem, GlassoSettings};

/// One recorded point of a training run.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct CurvePoint {
    pub iteration: usize,
    /// Wall time since the start of the run, without the recording.
    pub seconds: f64,
    pub train_mse: f64,
    pub test_mse: f64,
}

/// One training run of one student.
#[derive(Debug, Clone, Serialize)]
pub struct Curve {
    /// `convex`, `simplex` or `softmax`.
    pub model: String,
    pub seed: u64,
    pub heads: usize,
    pub points: Vec<CurvePoint>,
    /// The final regularized training objective (the convex one is `P*` of (9)).
    pub objective: f64,
    pub status: String,
}

impl Curve {
    fn last(&self) -> CurvePoint {
        *self.points.last().expect("every run records its end")
    }

    /// The first recorded time at which the test MSE is within 5 % of its final value.
    pub fn settle_seconds(&self) -> f64 {
        let target = 1.05 * self.last().test_mse;
        self.points
            .iter()
            .find(|p| p.test_mse <= target)
            .map_or(f64::NAN, |p| p.seconds)
    }
}

/// An attention map: one row per head, one column per token.
#[derive(Debug, Clone, Serialize)]
pub struct AttentionMap {
    pub model: String,
    /// `heads × n`, row-major; each row sums to 1.
    pub weights: Vec<f64>,
    pub heads: usize,
    /// Mean over heads (and samples, for softmax) of `H(row)/ln n`: 0 one-hot, 1 uniform.
    pub normalized_entropy: f64,
}

/// The result.
#[derive(Debug, Clone, Serialize)]
pub struct StudentTeacher {
    pub config: TaskConfig,
    pub beta: f64,
    pub beta_frac: f64,
    /// `σ²`: the teacher's own test MSE.
    pub noise_floor: f64,
    /// Test MSE of the zero predictor (the scale of the errors).
    pub zero_mse: f64,
    pub student_heads: usize,
    pub curves: Vec<Curve>,
    pub maps: Vec<AttentionMap>,
    /// Tokens with a nonzero row in the convex solution.
    pub convex_active_tokens: usize,
}

/// Log-spaced recording with the recording's time excluded.
struct Recorder {
    start: Instant,
    excluded: Duration,
    next: usize,
    points: Vec<CurvePoint>,
}

impl Recorder {
    fn new() -> Self {
        Recorder {
            start: Instant::now(),
            excluded: Duration::ZERO,
            next: 0,
            points: Vec::new(),
        }
    }

    /// Record at iteration `it` if due (or `force`); `eval` returns `(train_mse, test_mse)`.
    fn record(&mut self, it: usize, force: bool, eval: impl FnOnce() -> (f64, f64)) {
        if it < self.next && !force {
            return;
        }
        let t0 = Instant::now();
        let seconds = (t0 - self.start - self.excluded).as_secs_f64();
        let (train_mse, test_mse) = eval();
        self.points.push(CurvePoint {
            iteration: it,
            seconds,
            train_mse,
            test_mse,
        });
        self.next = (it + 1).max((it as f64 * 1.1).ceil() as usize);
        self.excluded += t0.elapsed();
    }
}

fn entropy(row: &[f64]) -> f64 {
    let h: f64 = row.iter().filter(|&&w| w > 0.0).map(|&w| -w * w.ln()).sum();
    h / (row.len() as f64).ln()
}

fn map(model: &str, weights: Vec<f64>, n: usize, normalized_entropy: f64) -> AttentionMap {
    AttentionMap {
        model: model.into(),
        heads: weights.len() / n,
        weights,
        normalized_entropy,
    }
}

/// Sizes of the students.
struct Students {
    heads: usize,
    seeds: Vec<u64>,
    iters: usize,
}

/// Run the experiment; `progress(done, total)` returning `false` stops with
/// [`Error::Interrupted`].
pub fn student_teacher(
    quick: bool,
    regime: Regime,
    progress: &dyn Fn(usize, usize) -> bool,
) -> Result<StudentTeacher> {
    let cfg = TaskConfig::new(quick, regime);
    let t = task(&cfg)?;
    let st = Students {
        heads: if quick { 3 } else { 6 },
        seeds: if quick { vec![0, 1] } else { vec![0, 1, 2] },
        iters: if quick { 400 } else { 4000 },
    };
    let total = 2 + 2 * st.seeds.len();
    let step = |done: usize| {
        if progress(done, total) {
            Ok(())
        } else {
            Err(Error::Interrupted)
        }
    };
    step(0)?;
    let path = run_path(&t, if quick { 8 } else { 13 }, &|_, _| true)?;
    let beta = path.points[path.best].beta;
    step(1)?;
    let (train, test) = (t.train.problem(&cfg)?, t.test.problem(&cfg)?);
    let mut curves = vec![convex_run(&t, &train, &test, beta)?];
    let n = cfg.tokens;
    let sol = Glasso::new(&train, beta, settings())?.solve();
    let total_norm: f64 = sol.row_norms.iter().sum();
    let convex_heads = recover_heads(&train, &sol.z)?;
    let mut maps = vec![map(
        "convex (recovered one-hot heads)",
        convex_heads
            .iter()
            .flat_map(|h| h.attention.clone())
            .collect(),
        n,
        0.0,
    )];
    maps.push(map(
        "convex (token share ‖z_k‖ / Σ‖z‖)",
        sol.row_norms
            .iter()
            .map(|r| r / total_norm.max(1e-300))
            .collect(),
        n,
        entropy(
            &sol.row_norms
                .iter()
                .map(|r| r / total_norm.max(1e-300))
                .collect::<Vec<_>>(),
        ),
    ));
    let mut done = 2;
    for &seed in &st.seeds {
        let (curve, heads) = simplex_run((&t, &train, &test), beta, &st, seed)?;
        curves.push(curve);
        if seed == st.seeds[0] {
            let w: Vec<f64> = heads.iter().flat_map(|h| h.attention.clone()).collect();
            let ent = heads.iter().map(|h| entropy(&h.attention)).sum::<f64>() / heads.len() as f64;
            maps.push(map("simplex (8), seed 0", w, n, ent));
        }
        done += 1;
        step(done)?;
    }
    for &seed in &st.seeds {
        let (curve, heads) = softmax_run((&t, &train, &test), beta, &st, seed)?;
        curves.push(curve);
        if seed == st.seeds[0] {
            maps.push(softmax_map(
                "softmax, seed 0 (mean over test samples)",
                &test,
                &heads,
                n,
            )?);
        }
        done += 1;
        step(done)?;
    }
    maps.push(softmax_map(
        "teacher (mean over test samples)",
        &test,
        &t.teacher,
        n,
    )?);
    Ok(StudentTeacher {
        beta,
        beta_frac: path.points[path.best].beta_frac,
        noise_floor: t.sigma * t.sigma,
        zero_mse: t.test.mse(&vec![0.0; t.test.n]),
        student_heads: st.heads,
        curves,
        maps,
        convex_active_tokens: sol.active_tokens,
        config: cfg,
    })
}

fn settings() -> GlassoSettings {
    GlassoSettings {
        tol: 1e-10,
        ..GlassoSettings::default()
    }
}

fn convex_run(t: &Task, train: &GlassoProblem, test: &GlassoProblem, beta: f64) -> Result<Curve> {
    let mut rec = Recorder::new();
    rec.record(0, true, || {
        (
            t.train.mse(&vec![0.0; t.train.n]),
            t.test.mse(&vec![0.0; t.test.n]),
        )
    });
    let solver = Glasso::new(train, beta, settings())?;
    let sol = solver.solve_observed(|it, z| {
        rec.record(it, false, || {
            (t.train.mse(&train.predict(z)), t.test.mse(&test.predict(z)))
        })
    });
    rec.record(sol.info.iterations, true, || {
        (
            t.train.mse(&sol.predictions),
            t.test.mse(&test.predict(&sol.z)),
        )
    });
    Ok(Curve {
        model: "convex".into(),
        seed: 0,
        heads: sol.active_tokens,
        points: rec.points,
        objective: sol.objective,
        status: format!(
            "{:?} (relative gap {:.1e})",
            sol.status, sol.certificate.rel_gap
        ),
    })
}

/// What a non-convex trainer returns: final heads, objective, accepted steps, status.
type Trained<H> = (Vec<H>, f64, usize, String);

/// Train one non-convex student from `init` with `fit(init, observe)`, recording its errors.
fn student_run<H>(
    model: &str,
    seed: u64,
    (t, train, test): (&Task, &GlassoProblem, &GlassoProblem),
    init: Vec<H>,
    predict: impl Fn(&GlassoProblem, &[H]) -> Result<Vec<f64>>,
    fit: impl FnOnce(Vec<H>, &mut dyn FnMut(usize, &[H])) -> Result<Trained<H>>,
) -> Result<(Curve, Vec<H>)> {
    let errs = |heads: &[H]| {
        let e = |split: &Split, p: &GlassoProblem| {
            predict(p, heads).map_or(f64::NAN, |pr| split.mse(&pr))
        };
        (e(&t.train, train), e(&t.test, test))
    };
    let n_heads = init.len();
    let mut rec = Recorder::new();
    rec.record(0, true, || errs(&init));
    let (heads, objective, iterations, status) =
        fit(init, &mut |it, heads| rec.record(it, false, || errs(heads)))?;
    rec.record(iterations, true, || errs(&heads));
    let curve = Curve {
        model: model.into(),
        seed,
        heads: n_heads,
        points: rec.points,
        objective,
        status,
    };
    Ok((curve, heads))
}

fn simplex_run(
    problems: (&Task, &GlassoProblem, &GlassoProblem),
    beta: f64,
    st: &Students,
    seed: u64,
) -> Result<(Curve, Vec<Head>)> {
    let train = problems.1;
    let s = SimplexSettings {
        max_iter: st.iters,
        seed,
        ..SimplexSettings::default()
    };
    let init = simplex::random_heads(train.n_tokens, train.d, st.heads, s.init_scale, seed);
    student_run(
        "simplex",
        seed,
        problems,
        init,
        head_predictions,
        |init, observe| {
            let sol = simplex::train_observed(train, beta, init, &s, observe)?;
            Ok((
                sol.heads,
                sol.objective,
                sol.iterations,
                format!("{:?}", sol.status),
            ))
        },
    )
}

fn softmax_run(
    problems: (&Task, &GlassoProblem, &GlassoProblem),
    beta: f64,
    st: &Students,
    seed: u64,
) -> Result<(Curve, Vec<SoftmaxHead>)> {
    let train = problems.1;
    let s = SoftmaxSettings {
        max_iter: st.iters,
        seed,
        ..SoftmaxSettings::default()
    };
    let init = softmax::random_heads(train.d, st.heads, s.init_scale, seed);
    student_run(
        "softmax",
        seed,
        problems,
        init,
        softmax::predictions,
        |init, observe| {
            let sol = softmax::train_from(train, beta, init, &s, observe)?;
            Ok((
                sol.heads,
                sol.objective,
                sol.iterations,
                format!("{:?}", sol.status),
            ))
        },
    )
}

/// The mean attention of softmax heads over the samples of `p`, with the mean per-sample entropy.
fn softmax_map(
    model: &str,
    p: &GlassoProblem,
    heads: &[SoftmaxHead],
    n: usize,
) -> Result<AttentionMap> {
    let s = softmax::attention(p, heads)?;
    let h = heads.len();
    let mut mean = vec![0.0; h * n];
    let mut ent = 0.0;
    for (r, row) in s.chunks_exact(n).enumerate() {
        let j = r % h;
        for k in 0..n {
            mean[j * n + k] += row[k] / p.n_samples as f64;
        }
        ent += entropy(row);
    }
    Ok(map(model, mean, n, ent / (p.n_samples * h) as f64))
}

impl StudentTeacher {
    fn runs(&self, model: &str) -> Vec<&Curve> {
        self.curves.iter().filter(|c| c.model == model).collect()
    }

    /// B5.1/B5.3 (a theorem), the paper's test-error and speed claims (B4.1) and B5.13.
    pub fn claims(&self) -> Vec<Claim> {
        let convex = self.runs("convex")[0];
        let (simplex, soft) = (self.runs("simplex"), self.runs("softmax"));
        let mean = |cs: &[&Curve], f: &dyn Fn(&Curve) -> f64| {
            cs.iter().map(|c| f(c)).sum::<f64>() / cs.len() as f64
        };
        let test = |c: &Curve| c.last().test_mse;
        let worst_gap = simplex
            .iter()
            .map(|c| c.objective - convex.objective)
            .fold(f64::INFINITY, f64::min);
        let (ct, st_, sm) = (test(convex), mean(&simplex, &test), mean(&soft, &test));
        let settle = |c: &Curve| c.settle_seconds();
        let (cs, ss, ms) = (
            settle(convex),
            mean(&simplex, &settle),
            mean(&soft, &settle),
        );
        let entropy = |m: &str| {
            self.maps
                .iter()
                .find(|a| a.model.starts_with(m))
                .map_or(f64::NAN, |a| a.normalized_entropy)
        };
        let n = self.config.tokens;
        let r = format!("{:?}", self.config.regime).to_lowercase();
        vec![
            Claim::check(
                format!("B5.1/B5.3, {r} teacher: the convex optimum P* of (9) is ≤ the trained objective (8) of every simplex student (same β)"),
                format!(
                    "P* = {:.6}; simplex objectives {}; smallest excess {:.2e}",
                    convex.objective,
                    simplex.iter().map(|c| format!("{:.6}", c.objective)).collect::<Vec<_>>().join(", "),
                    worst_gap
                ),
                worst_gap >= -1e-9 * convex.objective.abs(),
            ),
            Claim::check(
                format!("B4.1 (paper, Figs. 2–3), {r} teacher: the convex program reaches a better test error than the non-convex simplex and softmax students"),
                format!(
                    "test MSE: convex {ct:.4}, simplex {st_:.4} (mean of {}), softmax {sm:.4} (mean of {}); noise floor σ² = {:.4}, zero predictor {:.4}",
                    simplex.len(),
                    soft.len(),
                    self.noise_floor,
                    self.zero_mse
                ),
                ct <= st_ && ct <= sm,
            ),
            Claim::check(
                format!("B4.1 (paper), {r} teacher: the convex program converges faster (time until the test MSE is within 5 % of its final value)"),
                format!("convex {cs:.3} s, simplex {ss:.3} s, softmax {ms:.3} s (means over seeds)"),
                cs <= ss && cs <= ms,
            ),
            Claim::check(
                format!("B5.13, {r} teacher: the convex attention is sparse over tokens (one-hot recovered heads, few active tokens) while softmax attention is close to uniform"),
                format!(
                    "convex: {} of {n} tokens active, token-share entropy {:.3} (normalized; 0 one-hot, 1 uniform), recovered heads one-hot; softmax student: mean per-sample entropy {:.3}; simplex student: {:.3}; teacher: {:.3}",
                    self.convex_active_tokens,
                    entropy("convex (token share"),
                    entropy("softmax"),
                    entropy("simplex"),
                    entropy("teacher")
                ),
                self.convex_active_tokens < n && entropy("softmax") >= 0.8,
            ),
        ]
    }

    /// Check that every run recorded its end and that recorded times increase.
    pub fn well_formed(&self) -> bool {
        self.curves.iter().all(|c| {
            !c.points.is_empty() && c.points.windows(2).all(|w| w[1].seconds >= w[0].seconds)
        })
    }
}
