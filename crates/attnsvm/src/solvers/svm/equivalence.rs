//! The general SVM equivalence for nonlinear heads (spec `tf-as-svm.md` §2.6, the two programs of
//! the official `base_nonlinear.py::W_svm_solver`; the notebook `multi_token_converge`, §4.4):
//!
//! ```text
//! O_i     = { t : s_it ≥ threshold }                          selected tokens (threshold 1e-3 = THRED)
//! W_fin   = argmin ‖W‖  s.t. (x_{it₂} − x_{it₁})ᵀ W z_i = log(s_{it₂}/s_{it₁})    t₁ < t₂ in O_i
//! W_dir   = argmin ‖W‖  s.t. (x_{it₁} − x_{it₂})ᵀ W z_i = 0                       t₁ < t₂ in O_i
//!                            (x_{iτ} − x_{it})ᵀ W z_i ≥ 1                         τ ∈ O_i, t ∉ O_i
//! R*      = ⟨W_T − W_fin, W_dir⟩ / ‖W_dir‖_F²                  = argmin_R ‖W_fin + R·W_dir − W_T‖_F
//! W_svmeq = W_fin + R*·W_dir
//! ```
//!
//! `s` is the final attention of a trained model and `W_T` its weights. The prediction is
//! `W(k) ≈ W_fin + R_k·W_dir` with `R_k → ∞`: `W_dir` separates `O_i` from the rest with zero margin
//! inside `O_i`, `W_fin` fixes the softmax ratios inside `O_i`. When every `|O_i| = 1`, `W_fin = 0`
//! (no solve) and `W_dir` is the Att-SVM with `α_i` the selected token.
//!
//! **Pairs** ([`PairRule`]). The notebook writes a constraint for every pair `t₁ < t₂` in `O_i` and
//! every `(τ, t) ∈ O_i × Ō_i` ([`PairRule::All`]). The default, [`PairRule::Chain`], writes the
//! equalities between consecutive members of `O_i` only, and the inequalities from the first member
//! only. Both programs have the same feasible set, always: the right-hand sides `log s_{t₂} − log s_{t₁}`
//! are differences of one potential, so every pair equality is the sum of the consecutive ones along
//! the chain (matrices and right-hand sides alike), and once the equalities hold every `τ ∈ O_i`
//! has the same margin against `t`. So `W_fin` and `W_dir` are the same; only the multipliers differ
//! (the chain has `|O_i| − 1` equalities instead of `|O_i|(|O_i|−1)/2`, and no redundant ones, which
//! keeps the Gram matrix of the dual nonsingular).
//!
//! **Reading the answer.** Both solves are returned whole (status, W, duals, margins, KKT or Farkas
//! certificate). An inconsistent `W_fin` system or an infeasible `W_dir` is a status, not an error:
//! the notebook silently discards such instances, we report them. `R*`, `W_svmeq` and the
//! correlations are present when both solves are `Solved`.
//!
//! **Consistency of `W_fin`** is decided exactly before any engine runs (norm-independent): the
//! right-hand sides must lie in the range of the constraints' Gram matrix. An inconsistent system is
//! `Infeasible`, engine `"gram-consistency"`, with a checked certificate whose multipliers are
//! *signed* (equality rows) and normalized to `Σ|μ_k| = 1`: `Σμ_k A_k = 0` while `Σμ_k r_k > 0`.
//! Probabilities rounded to float32 are generally inconsistent at its tolerance (1e-8): compute
//! them in f64. An infeasible `W_dir` is reported by the engine: the interior point oracle
//! (`Solver::Ipm`) says `Infeasible`; the dual engine certifies infeasibility only for programs
//! without equalities, so it ends with `MaxIterations` after its whole budget (`SvmSettings::max_iter`).
//!
//! **Facts** (Frobenius, \[DERIVED\] in §2.6): `W_fin` lies in `S_fin = span{(x_{it₂} − x_{it₁}) z_iᵀ}`
//! and `W_dir ⊥ S_fin`, so `⟨W_fin, W_dir⟩ = 0`. When `s` is the softmax of `W_T` itself
//! ([`SvmEquivalence::from_trained`]), `W_T` satisfies the `W_fin` system, so the system is
//! consistent and `W_fin` is the orthogonal projection of `W_T` onto `S_fin`; then `W_svmeq` is the
//! projection of `W_T` onto `S_fin ⊕ span{W_dir}`, and hence
//! `corr(W_T, W_svmeq) = ‖W_svmeq‖/‖W_T‖ ≥ |corr(W_T, W_dir)|`: the prediction is never worse than
//! `W_dir` alone (the notebook observed this on every instance, §4.4).

use faer::Mat;
use serde::{Deserialize, Serialize};

use super::problem::{AttSvmProblem, Constraint, Sample};
use super::{farkas, AttSvm, Info, Status, SvmSettings, SvmSolution};
use crate::data::Instance;
use crate::error::{invalid, Result};
use crate::linalg::{clear_upper_simd_state, corr, dot, fro_dot, fro_norm, one_minus_corr};

/// The notebook's `THRED`: a token is selected when its attention is `≥ 1e-3`.
pub const DEFAULT_THRESHOLD: f64 = 1e-3;

/// Rows of the probability matrix must sum to one within this tolerance.
pub const ROW_SUM_TOL: f64 = 1e-6;

/// Which token pairs of `O_i` get a constraint (see the module docs; both give the same `W`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PairRule {
    /// Consecutive members of `O_i` (equalities); the first member against each `t ∉ O_i`.
    #[default]
    Chain,
    /// Every pair `t₁ < t₂` in `O_i`, every `(τ, t) ∈ O_i × Ō_i` (the notebook's programs).
    All,
}

/// Settings of [`SvmEquivalence`].
///
/// | field | default | meaning | valid |
/// |---|---|---|---|
/// | `threshold` | `1e-3` | `O_i = {t : s_it ≥ threshold}` (the notebook's THRED) | (0, 1) |
/// | `pairs` | `chain` | which pairs of `O_i` get constraints ([`PairRule`]) | |
/// | `svm` | [`SvmSettings::default`] | norm (the notebook: Frobenius), engine and tolerances of both solves | see [`SvmSettings`] |
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EquivalenceSettings {
    pub threshold: f64,
    pub pairs: PairRule,
    pub svm: SvmSettings,
}

impl Default for EquivalenceSettings {
    fn default() -> Self {
        EquivalenceSettings {
            threshold: DEFAULT_THRESHOLD,
            pairs: PairRule::Chain,
            svm: SvmSettings::default(),
        }
    }
}

impl EquivalenceSettings {
    /// Check every field's range.
    pub fn validate(&self) -> Result<()> {
        if !(self.threshold > 0.0 && self.threshold < 1.0) {
            return Err(invalid!(
                "svm equivalence: threshold = {} must be in (0, 1)",
                self.threshold
            ));
        }
        self.svm.validate()
    }
}

/// The attention of `W` on `inst`: `s_it = softmax_t(x_itᵀ W z_i)` (`n·T`, row-major), computed in
/// the log domain (`s_it = exp(a_it − logsumexp_τ a_iτ)`), so saturated rows give exact zeros and
/// ones, never NaN. `query_position` picks the query token for self-attention.
pub fn attention_probabilities(
    inst: &Instance,
    w: &Mat<f64>,
    query_position: usize,
) -> Result<Vec<f64>> {
    check_weights(w, inst.d)?;
    let queries = inst.queries(query_position)?;
    let (t, d) = (inst.t, inst.d);
    let mut probs = Vec::with_capacity(inst.n * t);
    let mut u = vec![0.0; d];
    for (i, z) in queries.chunks_exact(d).enumerate() {
        for (r, ur) in u.iter_mut().enumerate() {
            *ur = (0..d).map(|c| w[(r, c)] * z[c]).sum();
        }
        let logits: Vec<f64> = inst.tokens(i).chunks_exact(d).map(|x| dot(x, &u)).collect();
        let m = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let lse = m + logits.iter().map(|a| (a - m).exp()).sum::<f64>().ln();
        probs.extend(logits.iter().map(|a| (a - lse).exp()));
    }
    Ok(probs)
}

/// `O_i = {t : s_it ≥ threshold}` for every row of `probs` (`n·T`, row-major), ascending.
pub fn selected_sets(probs: &[f64], t: usize, threshold: f64) -> Vec<Vec<usize>> {
    probs
        .chunks_exact(t)
        .map(|row| (0..t).filter(|&k| row[k] >= threshold).collect())
        .collect()
}

/// Check `probs` (`n·T`, row-major): finite, in `[0, 1]`, rows summing to one within
/// [`ROW_SUM_TOL`].
pub fn check_probabilities(probs: &[f64], n: usize, t: usize) -> Result<()> {
    if probs.len() != n * t {
        return Err(invalid!(
            "probabilities: {} values, expected n·T = {n}·{t} = {}",
            probs.len(),
            n * t
        ));
    }
    for (i, row) in probs.chunks_exact(t).enumerate() {
        if let Some(k) = row.iter().position(|p| !(0.0..=1.0).contains(p)) {
            return Err(invalid!(
                "probabilities: entry ({i}, {k}) = {} is not a probability (finite, in [0, 1])",
                row[k]
            ));
        }
        let sum: f64 = row.iter().sum();
        if (sum - 1.0).abs() > ROW_SUM_TOL {
            return Err(invalid!(
                "probabilities: row {i} sums to {sum}, not 1 (tolerance {ROW_SUM_TOL:e})"
            ));
        }
    }
    Ok(())
}

fn check_weights(w: &Mat<f64>, d: usize) -> Result<()> {
    if w.shape() != (d, d) {
        return Err(invalid!(
            "trained W is {}×{}, expected d×d = {d}×{d}",
            w.nrows(),
            w.ncols()
        ));
    }
    for j in 0..d {
        if let Some(i) = w.col_as_slice(j).iter().position(|v| !v.is_finite()) {
            return Err(invalid!("trained W: entry ({i}, {j}) is not finite"));
        }
    }
    Ok(())
}

/// The two programs of one trained model, built and validated (the Clarabel pattern: `new`
/// validates, [`solve`](SvmEquivalence::solve) never fails).
pub struct SvmEquivalence<'a> {
    w_trained: Mat<f64>,
    settings: EquivalenceSettings,
    selected: Vec<Vec<usize>>,
    max_masked_prob: f64,
    fin: AttSvmProblem<'a>,
    dir: AttSvmProblem<'a>,
}

/// What [`SvmEquivalence::solve`] found.
#[derive(Debug, Clone)]
pub struct Equivalence {
    /// `O_i` per sequence, ascending.
    pub selected: Vec<Vec<usize>>,
    /// `max_{i, t ∉ O_i} s_it` (0 when nothing is masked): how well the masked tokens are suppressed
    /// (the x-axis of the notebook's bottom row).
    pub max_masked_prob: f64,
    /// The `W_fin` solve. When no `|O_i| ≥ 2` there is no constraint: `W = 0`, `Solved`, engine
    /// `"none"`. An inconsistent system: `Infeasible`, engine `"gram-consistency"`, signed certificate.
    pub w_fin: SvmSolution,
    /// The `W_dir` solve.
    pub w_dir: SvmSolution,
    /// `⟨W_T − W_fin, W_dir⟩ / ‖W_dir‖_F²` (0 when `W_dir = 0`, i.e. nothing is masked anywhere).
    pub r_star: Option<f64>,
    /// `W_fin + R*·W_dir`.
    pub w_svmeq: Option<Mat<f64>>,
    /// `corr(W_T, W_dir)` and `1 − corr` (kept precise near one), when `W_dir` is solved.
    pub corr_dir: Option<f64>,
    pub one_minus_corr_dir: Option<f64>,
    /// `corr(W_T, W_svmeq)` and `1 − corr`, when both programs are solved.
    pub corr_svmeq: Option<f64>,
    pub one_minus_corr_svmeq: Option<f64>,
    /// Why the optional fields are absent (empty when they are present).
    pub message: String,
}

impl Equivalence {
    /// `true` when both programs are solved (so `R*`, `W_svmeq` and the correlations are present).
    pub fn is_solved(&self) -> bool {
        self.w_fin.status == Status::Solved && self.w_dir.status == Status::Solved
    }
}

impl<'a> SvmEquivalence<'a> {
    /// The equivalence of a model with weights `w_trained` whose final attention on `inst` is
    /// `probs` (`n·T`, row-major). `query_position` picks the query token for self-attention.
    pub fn new(
        inst: &'a Instance,
        query_position: usize,
        probs: &[f64],
        w_trained: &Mat<f64>,
        settings: EquivalenceSettings,
    ) -> Result<Self> {
        settings.validate()?;
        let (n, t, d) = (inst.n, inst.t, inst.d);
        check_probabilities(probs, n, t)?;
        check_weights(w_trained, d)?;
        let queries = inst.queries(query_position)?;
        let selected = selected_sets(probs, t, settings.threshold);
        if let Some(i) = selected.iter().position(|o| o.is_empty()) {
            return Err(invalid!(
                "probabilities: row {i} has no entry ≥ threshold {} (the threshold must be ≤ 1/T = {})",
                settings.threshold,
                1.0 / t as f64
            ));
        }
        let max_masked_prob = probs
            .iter()
            .filter(|&&p| p < settings.threshold)
            .fold(0.0f64, |a, &p| a.max(p));
        let position = inst.z.is_none().then_some(query_position);
        let samples: Vec<Sample> = (0..n)
            .map(|i| {
                let row = &probs[i * t..(i + 1) * t];
                let top = selected[i]
                    .iter()
                    .copied()
                    .max_by(|&a, &b| row[a].total_cmp(&row[b]))
                    .expect("O_i is not empty");
                Sample {
                    sequence: i,
                    position,
                    len: t,
                    selected: top,
                }
            })
            .collect();
        let log_p: Vec<f64> = probs.iter().map(|p| p.ln()).collect();
        let (fin_cons, dir_cons) = constraints(&selected, &log_p, t, settings.pairs);
        let fin =
            AttSvmProblem::from_parts(d, t, &inst.x, queries.clone(), samples.clone(), fin_cons)?;
        let dir = AttSvmProblem::from_parts(d, t, &inst.x, queries, samples, dir_cons)?;
        Ok(SvmEquivalence {
            w_trained: w_trained.clone(),
            settings,
            selected,
            max_masked_prob,
            fin,
            dir,
        })
    }

    /// The equivalence of a trained `W` with its own final attention
    /// (`s = softmax(X_i W z_i)`, [`attention_probabilities`]).
    pub fn from_trained(
        inst: &'a Instance,
        query_position: usize,
        w_trained: &Mat<f64>,
        settings: EquivalenceSettings,
    ) -> Result<Self> {
        let probs = attention_probabilities(inst, w_trained, query_position)?;
        Self::new(inst, query_position, &probs, w_trained, settings)
    }

    /// `O_i` per sequence.
    pub fn selected(&self) -> &[Vec<usize>] {
        &self.selected
    }

    /// The `W_fin` program (all equalities; constraints grouped by sequence).
    pub fn fin_problem(&self) -> &AttSvmProblem<'a> {
        &self.fin
    }

    /// The `W_dir` program (per sequence: the equalities, then the inequalities).
    pub fn dir_problem(&self) -> &AttSvmProblem<'a> {
        &self.dir
    }

    pub fn settings(&self) -> &EquivalenceSettings {
        &self.settings
    }

    /// Solve both programs and fit `R*`.
    pub fn solve(&self) -> Equivalence {
        let svm = &self.settings.svm;
        let w_fin = if self.fin.n_constraints() == 0 {
            let mut sol = SvmSolution::empty(&self.fin, svm.norm, Status::Solved, "none");
            sol.info.message = "every |O_i| = 1: no constraint, W_fin = 0".into();
            sol
        } else if let Some(sol) = inconsistent(&self.fin, svm) {
            sol
        } else {
            run(&self.fin, svm)
        };
        let w_dir = run(&self.dir, svm);
        let mut out = Equivalence {
            selected: self.selected.clone(),
            max_masked_prob: self.max_masked_prob,
            w_fin,
            w_dir,
            r_star: None,
            w_svmeq: None,
            corr_dir: None,
            one_minus_corr_dir: None,
            corr_svmeq: None,
            one_minus_corr_svmeq: None,
            message: String::new(),
        };
        let wt = &self.w_trained;
        if out.w_dir.status == Status::Solved {
            out.corr_dir = Some(corr(wt, &out.w_dir.w));
            out.one_minus_corr_dir = Some(one_minus_corr(wt, &out.w_dir.w));
        }
        if !out.is_solved() {
            let mut why = Vec::new();
            for (name, sol) in [("W_fin", &out.w_fin), ("W_dir", &out.w_dir)] {
                if sol.status != Status::Solved {
                    let detail = if sol.info.message.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", sol.info.message)
                    };
                    why.push(format!("{name}: {:?}{detail}", sol.status));
                }
            }
            out.message = format!("no R*: {}", why.join("; "));
            return out;
        }
        let (w_fin, w_dir) = (&out.w_fin.w, &out.w_dir.w);
        let dir_sq = fro_norm(w_dir).powi(2);
        let r_star = if dir_sq > 0.0 {
            (fro_dot(wt, w_dir) - fro_dot(w_fin, w_dir)) / dir_sq
        } else {
            out.message = "W_dir = 0 (no token is masked): R* = 0, W_svmeq = W_fin".into();
            0.0
        };
        let w_svmeq = Mat::from_fn(w_fin.nrows(), w_fin.ncols(), |r, c| {
            w_fin[(r, c)] + r_star * w_dir[(r, c)]
        });
        out.corr_svmeq = Some(corr(wt, &w_svmeq));
        out.one_minus_corr_svmeq = Some(one_minus_corr(wt, &w_svmeq));
        out.r_star = Some(r_star);
        out.w_svmeq = Some(w_svmeq);
        out
    }
}

fn run(p: &AttSvmProblem, settings: &SvmSettings) -> SvmSolution {
    match AttSvm::new(p, settings.clone()) {
        Ok(solver) => solver.solve(),
        // Unreachable: the settings were validated in `SvmEquivalence::new`.
        Err(e) => {
            let mut sol = SvmSolution::empty(p, settings.norm, Status::NumericalError, "none");
            sol.info = Info {
                solver: "none".into(),
                iterations: 0,
                seconds: 0.0,
                message: e.to_string(),
            };
            sol
        }
    }
}

/// The `W_fin` system `⟨W, A_k⟩ = r_k` is consistent iff `r ∈ range(G)`, `G_kl = ⟨A_k, A_l⟩` (the
/// Gram matrix; `G λ = r` is the normal equation of the smallest solution `W = Σλ_k A_k`). The
/// component `μ` of `r` along the null space of `G` is the certificate: `‖Σμ_k A_k‖² = μᵀGμ = 0`
/// while `Σμ_k r_k = ‖μ‖² > 0`, so `⟨W, Σμ_k A_k⟩ = 0 ≠ Σμ_k r_k` for every W. Eigenvalues below
/// `NULL_TOL·λ_max` count as null; the system is inconsistent when `‖μ‖ > CONSISTENCY_TOL·max(1, ‖r‖)`.
/// Returns the `Infeasible` answer, or `None` when the system is consistent. This is independent of
/// the norm, and exact where the dual engine would only run out of iterations (its multipliers
/// diverge along `μ`).
fn inconsistent(p: &AttSvmProblem, settings: &SvmSettings) -> Option<SvmSolution> {
    const NULL_TOL: f64 = 1e-12;
    const CONSISTENCY_TOL: f64 = 1e-8;
    let m = p.n_constraints();
    let g = Mat::from_fn(m, m, |k, l| p.gram(k, l));
    let r: Vec<f64> = p.constraints().iter().map(|c| c.rhs).collect();
    let evd = g.self_adjoint_eigen(faer::Side::Lower);
    clear_upper_simd_state();
    let evd = evd.ok()?;
    let (u, ev) = (evd.U(), evd.S().column_vector());
    let top = (0..m).map(|j| ev[j].abs()).fold(0.0f64, f64::max);
    let mut mu = vec![0.0; m];
    for j in (0..m).filter(|&j| ev[j].abs() <= NULL_TOL * top) {
        let coef: f64 = (0..m).map(|k| u[(k, j)] * r[k]).sum();
        for (k, mk) in mu.iter_mut().enumerate() {
            *mk += coef * u[(k, j)];
        }
    }
    let (mu_norm, r_norm) = (dot(&mu, &mu).sqrt(), dot(&r, &r).sqrt());
    if mu_norm <= CONSISTENCY_TOL * r_norm.max(1.0) {
        return None;
    }
    let l1: f64 = mu.iter().map(|v| v.abs()).sum();
    let multipliers: Vec<f64> = mu.iter().map(|v| v / l1).collect();
    let cert = farkas(p, &multipliers);
    let mut sol = SvmSolution::empty(p, settings.norm, Status::Infeasible, "gram-consistency");
    sol.info.message = format!(
        "the log-ratio equalities are inconsistent: signed multipliers μ (Σ|μ_k| = 1) of {} constraints \
         give ‖Σμ_k A_k‖ = {:.1e}·max‖A_k‖ while Σμ_k r_k = {:.3e} > 0",
        cert.constraints.len(),
        cert.residual,
        cert.rhs_value
    );
    sol.farkas = Some(cert);
    Some(sol)
}

/// The constraints of `W_fin` and `W_dir` (module docs), grouped by sequence.
fn constraints(
    selected: &[Vec<usize>],
    log_p: &[f64],
    t: usize,
    rule: PairRule,
) -> (Vec<Constraint>, Vec<Constraint>) {
    let mut fin = Vec::new();
    let mut dir = Vec::new();
    for (i, o) in selected.iter().enumerate() {
        let pairs: Vec<(usize, usize)> = match rule {
            PairRule::Chain => o.windows(2).map(|w| (w[0], w[1])).collect(),
            PairRule::All => (0..o.len())
                .flat_map(|a| (a + 1..o.len()).map(move |b| (a, b)))
                .map(|(a, b)| (o[a], o[b]))
                .collect(),
        };
        let c = |plus: usize, minus: usize, rhs: f64, equality: bool| Constraint {
            sample: i as u32,
            plus: plus as u32,
            minus: minus as u32,
            rhs,
            equality,
        };
        for &(t1, t2) in &pairs {
            let lr = log_p[i * t + t2] - log_p[i * t + t1];
            fin.push(c(t2, t1, lr, true));
            dir.push(c(t1, t2, 0.0, true));
        }
        let leaders: &[usize] = match rule {
            PairRule::Chain => &o[..1],
            PairRule::All => o,
        };
        for &tau in leaders {
            for tok in (0..t).filter(|k| o.binary_search(k).is_err()) {
                dir.push(c(tau, tok, 1.0, false));
            }
        }
    }
    (fin, dir)
}
