//! The experiments of "Max-Margin Token Selection in Attention Mechanism" (spec `tf-as-svm.md`
//! §2.7, §4.6–4.9, checks §5.11–15 and 20), as seeded library functions at two sizes: `quick`
//! (seconds, what the tests run) and `full`. Each returns a serializable result with its
//! [`Claim`](super::Claim)s.
//!
//! # The model
//!
//! The prompt model ([`crate::model::prompt`]): `f_i = vᵀ X_iᵀ softmax(X_i W p)` with W fixed, the
//! prompt `p` (and in joint training the head `v`) trained on `L = (1/n) Σ ℓ(y_i f_i)`. The
//! gradients are exact in direction however saturated the softmax is (§3.7), so every run here is
//! the "exact-direction float64 NGD" of the spec's re-runs, not the official float32 code, whose
//! saturation artifacts (§3.7) are not reproduced.
//!
//! # The programs ([`programs`])
//!
//! `p^mm_α = argmin ‖p‖ s.t. pᵀ(k_{iα_i} − k_it) ≥ 1`, its relaxation `p^relax` (right-hand side 0
//! for the inputs that are not support vectors of `v^mm`), and `v^mm = argmin ‖v‖ s.t.
//! y_i vᵀx_{iα_i} ≥ 1`, all solved as Frobenius Att-SVMs with queries `e_1` (the answer is column 0
//! of W) and certified by the solver's KKT residuals; the W↔p equivalence (check 20).
//!
//! # The experiments
//!
//! | function | notebook (spec) | checks |
//! |---|---|---|
//! | [`svm_values()`] | the printed cvxopt values; W↔p | 12, 20 |
//! | [`single_input()`] | `single_input_converge` (§4.6) | 11 |
//! | [`multi_input()`] | `multi_input_converge` (§4.7) | 13 |
//! | [`joint()`] | `joint_training` (§4.8) | 14 |
//! | [`loss_dependence()`] | `diff_loss_function` (§4.9) | 15 |
//!
//! Quick and full runs use the spec's instances, inits and step sizes; quick runs the 1000 steps of
//! the notebooks, full runs 20 000 steps (the checks' long-run statements are claimed only there).

pub mod joint;
pub mod loss_dependence;
pub mod multi_input;
pub mod programs;
pub mod single_input;
pub mod training;
pub mod values;

pub use joint::{joint, Joint, JointCase};
pub use loss_dependence::{loss_dependence, LossDependence, LossRun};
pub use multi_input::{multi_input, MultiInput};
pub use single_input::{single_input, SingleInput, SingleInputCase};
pub use values::{svm_values, SvmValues};

/// Steps of a run: the notebooks' 1000 (quick) or the checks' long run of 20 000 (full).
pub fn steps(quick: bool) -> usize {
    if quick {
        1000
    } else {
        20_000
    }
}

/// `|a − b| ≤ tol`, formatted for a claim.
fn near(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

/// Numbers for a claim's text.
fn fmt_list(xs: &[f64], digits: usize) -> String {
    let parts: Vec<String> = xs.iter().map(|x| format!("{x:.digits$}")).collect();
    format!("({})", parts.join(", "))
}
