//! The claims of the multi-token experiment: spec §5 check 17 (the family) and check 16 (the
//! programs).

use super::{DimensionResult, MultiTokenResult, Snapshot};
use crate::experiments::Claim;

/// The spec's bounds on the final mean `1 − corr(SVMeq)` (observed 0.035 / 0.015 / 0.0071).
const SVMEQ_BOUND: [(usize, f64); 3] = [(4, 0.05), (6, 0.02), (8, 0.012)];

/// `SVMeq ≤ W_dir` per instance is a theorem here (`W^SVMeq` is the projection of `W_T` onto
/// `S_fin ⊕ span{W_dir}`); at earlier snapshots and with rounding, compare with this slack.
const ORDER_REL: f64 = 1e-9;
const ORDER_ABS: f64 = 1e-15;

/// Tolerances of check 16 (relative).
const ORTH_TOL: f64 = 1e-8;
const RATIO_TOL: f64 = 1e-8;
const ONE_TOKEN_TOL: f64 = 1e-6;

fn svmeq(s: &Snapshot) -> f64 {
    s.one_minus_corr_svmeq
}
fn dir(s: &Snapshot) -> f64 {
    s.one_minus_corr_dir
}
fn one(s: &Snapshot) -> f64 {
    s.one_minus_corr_one_token
}

fn with_data(r: &MultiTokenResult) -> Vec<&DimensionResult> {
    r.dims.iter().filter(|d| !d.instances.is_empty()).collect()
}

pub(super) fn claims(r: &MultiTokenResult) -> Vec<Claim> {
    let dims = with_data(r);
    let all = || dims.iter().flat_map(|d| d.instances.iter());
    let accepted = all().count();
    let mut out = Vec::new();
    let short: Vec<String> = r
        .dims
        .iter()
        .filter(|d| d.instances.len() < r.config.accept)
        .map(|d| format!("d = {}: {} of {}", d.d, d.instances.len(), r.config.accept))
        .collect();
    out.push(Claim::check(
        "every dimension reaches its number of accepted instances within max_seeds",
        if short.is_empty() {
            format!("{} accepted per d", r.config.accept)
        } else {
            short.join("; ")
        },
        short.is_empty(),
    ));

    let means: Vec<String> = dims
        .iter()
        .map(|d| {
            format!(
                "d = {}: {:.2e} < {:.2e} < {:.2e}",
                d.d,
                d.mean_final(svmeq),
                d.mean_final(dir),
                d.mean_final(one)
            )
        })
        .collect();
    let ordered = dims
        .iter()
        .all(|d| d.mean_final(svmeq) < d.mean_final(dir) && d.mean_final(dir) < d.mean_final(one));
    out.push(Claim::check(
        "spec §5 check 17: at the final snapshot, mean 1 − corr: SVMeq < W_dir < 1token for every d",
        means.join("; "),
        !dims.is_empty() && ordered,
    ));

    let bad = all()
        .filter(|i| {
            i.snapshots
                .iter()
                .any(|s| svmeq(s) > dir(s) * (1.0 + ORDER_REL) + ORDER_ABS)
        })
        .count();
    let bad_final = all()
        .filter(|i| svmeq(i.last()) > dir(i.last()) * (1.0 + ORDER_REL) + ORDER_ABS)
        .count();
    out.push(Claim::check(
        "spec §5 check 17: 1 − corr(SVMeq) ≤ 1 − corr(W_dir) on every instance at the final snapshot \
         (a theorem: W_svmeq projects W_T onto S_fin ⊕ span{W_dir})",
        format!(
            "violated on {bad_final} of {accepted} instances (final); {bad} have some snapshot where \
             SVMeq is worse (information: R* is fitted to the final W only)"
        ),
        accepted > 0 && bad_final == 0,
    ));

    let mut text = Vec::new();
    let mut held = true;
    let mut any = false;
    for (d, bound) in SVMEQ_BOUND {
        if let Some(dr) = r.dim(d).filter(|x| !x.instances.is_empty()) {
            any = true;
            let m = dr.mean_final(svmeq);
            held &= m <= bound;
            text.push(format!("d = {d}: {m:.2e} (≤ {bound})"));
        }
    }
    let decreasing = dims
        .windows(2)
        .all(|w| w[1].mean_final(svmeq) < w[0].mean_final(svmeq));
    out.push(Claim::check(
        "spec §5 check 17: mean 1 − corr(SVMeq) ≤ 0.05 / 0.02 / 0.012 at d = 4 / 6 / 8, decreasing in d",
        format!("{}; decreasing over the d run: {decreasing}", text.join(", ")),
        any && held && decreasing,
    ));

    let ones: Vec<String> = dims
        .iter()
        .map(|d| format!("d = {}: {:.3}", d.d, d.mean_final(one)))
        .collect();
    out.push(Claim::check(
        "spec §5 check 17: the single-token prediction stays poor, mean 1 − corr(1token) ≥ 0.1",
        ones.join(", "),
        !dims.is_empty() && dims.iter().all(|d| d.mean_final(one) >= 0.1),
    ));

    let multi: Vec<String> = dims
        .iter()
        .map(|d| {
            let m = d.instances.iter().filter(|i| i.multi()).count();
            format!(
                "d = {}: {:.0} %",
                d.d,
                100.0 * m as f64 / d.instances.len() as f64
            )
        })
        .collect();
    out.push(Claim::check(
        "spec §5 check 17: ≥ 70 % of accepted instances select two or more tokens for some input",
        multi.join(", "),
        !dims.is_empty()
            && dims.iter().all(|d| {
                d.instances.iter().filter(|i| i.multi()).count() as f64
                    >= 0.7 * d.instances.len() as f64
            }),
    ));

    let split = r.config.split;
    let (mut lo, mut lo_good, mut hi, mut hi_good) = (0, 0, 0, 0);
    for i in all() {
        let good = svmeq(i.last()) < 1e-2;
        if i.last().max_masked_prob < split {
            lo += 1;
            lo_good += usize::from(good);
        } else {
            hi += 1;
            hi_good += usize::from(good);
        }
    }
    let frac = |a: usize, b: usize| 100.0 * a as f64 / b.max(1) as f64;
    let measured = format!(
        "masked probability < {split:e}: {lo_good} of {lo} ({:.0} %) have 1 − corr(SVMeq) < 1e-2; \
         ≥ {split:e}: {hi_good} of {hi} ({:.0} %)",
        frac(lo_good, lo),
        frac(hi_good, hi)
    );
    let statement =
        "spec §5 check 17: the prediction is good once the masked tokens are suppressed: \
                     ≥ 85 % with 1 − corr(SVMeq) < 1e-2 among instances whose largest masked \
                     probability is < 1e-12, ≤ 45 % among the others";
    if lo == 0 {
        out.push(Claim::info(
            statement,
            format!("{measured} (no instance below the split)"),
        ));
    } else {
        let lo_ok = lo_good as f64 >= 0.85 * lo as f64;
        let hi_ok = hi == 0 || hi_good as f64 <= 0.45 * hi as f64;
        let note = if hi == 0 {
            " (no instance above the split: exact-direction NGD keeps suppressing them, so that half is vacuous)"
        } else {
            ""
        };
        out.push(Claim::check(
            statement,
            format!("{measured}{note}"),
            lo_ok && hi_ok,
        ));
    }

    let rej: Vec<String> = r
        .dims
        .iter()
        .map(|d| {
            let x = &d.rejections;
            format!(
                "d = {}: {} accepted of {} seeds; rejected {} all +1, {} mid, {} finite, {} SVM; {:.2} s per accepted",
                d.d,
                d.instances.len(),
                d.seeds_tried,
                x.all_positive,
                x.mid,
                x.finite,
                x.svm_failed,
                d.seconds_per_accepted()
            )
        })
        .collect();
    out.push(Claim::info(
        "the rejection rules of §3.6 (spec re-run per 150 accepted at d = 4: 98 all +1, 468 mid, 55 finite, 0 SVM)",
        rej.join("; "),
    ));

    // Check 16.
    let singles: Vec<f64> = all().filter_map(|i| i.dir_vs_one_token).collect();
    let fin_zero = all()
        .filter(|i| i.dir_vs_one_token.is_some())
        .all(|i| i.w_fin_norm == 0.0);
    let worst_single = singles.iter().cloned().fold(0.0f64, f64::max);
    let statement =
        "spec §5 check 16(a): when every |O_i| = 1, W_fin = 0 and W_dir is the Att-SVM of \
                     the argmax tokens (relative difference ≤ 1e-6)";
    if singles.is_empty() {
        out.push(Claim::info(
            statement,
            "no accepted instance has every |O_i| = 1",
        ));
    } else {
        out.push(Claim::check(
            statement,
            format!(
                "{} such instances; W_fin = 0 on all: {fin_zero}; largest \
                 ‖W_dir − W_1token‖/‖W_1token‖ = {worst_single:.1e}",
                singles.len()
            ),
            fin_zero && worst_single <= ONE_TOKEN_TOL,
        ));
    }
    let orth = all().map(|i| i.fin_dir_cosine).fold(0.0f64, f64::max);
    let rerr = all()
        .map(|i| i.r_star_closed_form_error)
        .fold(0.0f64, f64::max);
    out.push(Claim::check(
        "spec §5 check 16(b): ⟨W_fin, W_dir⟩ = 0 (relative 1e-8) and R* = ⟨W_T, W_dir⟩/‖W_dir‖²",
        format!(
            "largest |cos(W_fin, W_dir)| = {orth:.1e}; largest relative error of R* = {rerr:.1e}"
        ),
        accepted > 0 && orth <= ORTH_TOL && rerr <= ORTH_TOL,
    ));
    let ratio = all()
        .map(|i| i.fin_log_ratio_residual)
        .fold(0.0f64, f64::max);
    out.push(Claim::check(
        "spec §5 check 16(c): W_fin reproduces the softmax log-ratios inside O_i (relative 1e-8)",
        format!("largest residual {ratio:.1e} over {accepted} instances"),
        accepted > 0 && ratio <= RATIO_TOL,
    ));
    let failures: Vec<String> = r
        .dims
        .iter()
        .flat_map(|d| {
            d.rejections
                .svm_failures
                .iter()
                .map(move |(s, why)| format!("d = {} seed {s}: {why}", d.d))
        })
        .collect();
    let statement =
        "spec §5 check 16(d): inconsistent or infeasible programs are reported with their \
                     status, never used";
    if failures.is_empty() {
        out.push(Claim::info(statement, "no program failed on the seeds run"));
    } else {
        out.push(Claim::check(
            statement,
            failures.join("; "),
            r.dims.iter().all(|d| {
                d.rejections.svm_failures.len() == d.rejections.svm_failed
                    && d.rejections
                        .svm_failures
                        .iter()
                        .all(|(_, why)| !why.is_empty())
            }),
        ));
    }
    out
}
