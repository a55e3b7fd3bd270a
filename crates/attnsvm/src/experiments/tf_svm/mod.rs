//! The experiments of "Transformers as Support Vector Machines" (spec `tf-as-svm.md` §4.1–4.5, checks
//! §5), as seeded library functions at two sizes: `quick` (seconds, what the tests run) and `full`
//! (the papers' sizes). Each returns a serializable result with its [`Claim`](super::Claim)s.
//!
//! | module | notebook | what it shows |
//! |---|---|---|
//! | [`vis`] | `visualization1/2` | GD paths of W and (K,Q) against the Frobenius and nuclear SVM rays; per-input separators; how far the direction converges |
//! | [`local`] | `local_converge` | W and (K,Q) converge in direction to the SVM of the selection they make; the selection is locally, not always globally, optimal |
//! | [`paths`] | (theory, §2.4) | regularization paths of the Frobenius, nuclear and (K,Q) balls converge to the matching SVM; the local (cone) path to the SVM of a locally optimal selection |
//! | [`rank`] | `svm_rank` (§4.5) | rank of the Frobenius vs the nuclear Att-SVM solution; infeasible instances reported (checks 4, 18) |
//! | [`multi_token`] | `multi_token_converge` (§4.4) | ReLU head: W-NGD converges to the SVM-equivalence `W_fin + R·W_dir`, not to a single-token SVM (checks 16, 17) |

pub mod local;
pub mod multi_token;
pub mod paths;
pub mod rank;
pub mod vis;

use serde::{Deserialize, Serialize};

use crate::error::{invalid, Result};
use crate::model::Objective;
use crate::solvers::svm::{AttSvmProblem, Status, SvmSolution};
use crate::train::{train, State, StopReason, TrainSettings};

/// The numbers of a solved Att-SVM that the reports quote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SvmSummary {
    pub status: Status,
    /// `‖W‖` in the program's norm.
    pub objective: f64,
    /// `W` row-major.
    pub w: Vec<f64>,
    /// Singular values, descending.
    pub singular_values: Vec<f64>,
    /// Support tokens by dual, as (sample, token) with their multipliers.
    pub support: Vec<(usize, usize, f64)>,
    pub duality_gap: f64,
}

/// Summarize `sol`, a solution of `problem`.
pub fn svm_summary(problem: &AttSvmProblem, sol: &SvmSolution) -> SvmSummary {
    let singular_values = sol.w.singular_values().unwrap_or_default();
    SvmSummary {
        status: sol.status,
        objective: sol.objective,
        w: crate::linalg::mat_to_row_major(&sol.w),
        singular_values,
        support: sol
            .support_by_dual
            .iter()
            .map(|&k| {
                let c = problem.constraints()[k];
                (c.sample as usize, c.minus as usize, sol.duals[k])
            })
            .collect(),
        duality_gap: sol.kkt.duality_gap,
    }
}

/// Train from `state` and return the state at each of `at` (ascending iteration counts; 0 is the
/// start). Training runs in chunks between checkpoints, so the step size must not decay with `k`.
pub fn checkpoints(
    objective: &mut Objective,
    settings: &TrainSettings,
    mut state: State,
    at: &[usize],
) -> Result<Vec<(usize, State)>> {
    if settings.lr_decay != 0.0 {
        return Err(invalid!(
            "checkpoints: lr_decay must be 0 (training runs in chunks)"
        ));
    }
    if at.windows(2).any(|w| w[1] <= w[0]) {
        return Err(invalid!("checkpoints: iterations must increase"));
    }
    let mut out = Vec::with_capacity(at.len());
    let mut k = 0;
    for &next in at {
        if next > k {
            let s = TrainSettings {
                iters: next - k,
                points_per_decade: 1,
                ..settings.clone()
            };
            let res = train(objective, &s, state, None, |_| true)?;
            state = res.state;
            if res.stop != StopReason::Iterations {
                out.push((k + res.iterations, state));
                break;
            }
            k = next;
        }
        out.push((k, state.clone()));
    }
    Ok(out)
}

/// Serde for `f64` fields that are `NaN` when not measured: `NaN` ⇄ `null` (JSON has no NaN).
pub(crate) mod nan_as_null {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(x: &f64, s: S) -> Result<S::Ok, S::Error> {
        if x.is_finite() {
            s.serialize_f64(*x)
        } else {
            s.serialize_none()
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
    }
}
