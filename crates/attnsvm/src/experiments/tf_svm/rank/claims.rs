//! The claims of the rank experiment: spec §5 check 18 (the rank family) and check 4 (structure).

use super::{RankInstance, RankResult};
use crate::experiments::Claim;

/// The spec's re-run feasible fractions (§4.5) at `(n, T, d)`: rough expectations only, our
/// generator is not torch's.
const SPEC_FEASIBLE: [((usize, usize, usize), f64); 4] = [
    ((5, 5, 1), 0.0),
    ((5, 5, 2), 0.34),
    ((15, 5, 3), 0.0),
    ((15, 5, 5), 0.96),
];

/// Band around a spec fraction: ±15 points (≈ 3 binomial standard deviations at 100 seeds).
const FRACTION_BAND: f64 = 0.15;

/// Seeds a row needs before its fraction is compared with the spec's.
const MIN_SEEDS_FOR_FRACTION: usize = 50;

/// A Farkas certificate counts when `‖Σλ_k A_k‖ ≤ FARKAS_TOL·max‖A_k‖` (with `λ ≥ 0`, `Σλ_k = 1`):
/// then every feasible W would need `‖W‖_F ≥ 1/(FARKAS_TOL·max‖A_k‖)`, i.e. none of norm below 1e8.
const FARKAS_TOL: f64 = 1e-8;

pub(super) fn claims(r: &RankResult) -> Vec<Claim> {
    let tol = r.config.structure_tol;
    let feasible: Vec<&RankInstance> = r.instances.iter().filter(|i| i.feasible()).collect();
    let solved: Vec<&RankInstance> = r.instances.iter().filter(|i| i.solved()).collect();
    let infeasible: Vec<&RankInstance> = r.instances.iter().filter(|i| i.infeasible()).collect();
    let undecided = r.instances.len() - feasible.len() - infeasible.len();
    let nuclear_failed = feasible.len() - solved.len();
    let mut out = Vec::new();

    // Check 18: infeasibility is an answer.
    let worst_farkas = infeasible
        .iter()
        .map(|i| i.farkas_residual.unwrap_or(f64::INFINITY))
        .fold(0.0f64, f64::max);
    let unranked = infeasible
        .iter()
        .all(|i| i.rank_fro.is_none() && i.rank_nuc.is_none());
    out.push(Claim::check(
        "spec §5 check 18 / check 5: infeasible instances are reported as Infeasible with a Farkas \
         certificate, never given a rank (the notebook counted them as rank 1)",
        format!(
            "{} of {} instances infeasible, each with a certificate and no rank; feasibility \
             undecided (reported, not ranked) for {undecided}",
            infeasible.len(),
            r.instances.len(),
        ),
        unranked && infeasible.iter().all(|i| i.farkas_residual.is_some()),
    ));
    let loose = infeasible
        .iter()
        .filter(|i| i.farkas_residual.is_none_or(|x| x > FARKAS_TOL))
        .count();
    out.push(Claim::check(
        "every Farkas certificate is tight: ‖Σλ_k A_k‖ ≤ 1e-8·max‖A_k‖ with λ ≥ 0, Σλ = 1 (no \
         feasible W of norm below ~1e8)",
        format!(
            "{loose} of {} certificates above 1e-8; largest residual {worst_farkas:.1e}",
            infeasible.len()
        ),
        loose == 0,
    ));

    let mut parts = Vec::new();
    let mut all_comparable = true;
    let mut all_close = true;
    let mut any = false;
    for ((n, t, d), want) in SPEC_FEASIBLE {
        let Some(row) = r.row(n, t, d) else { continue };
        any = true;
        let close = (row.feasible_fraction - want).abs() <= FRACTION_BAND;
        all_comparable &= row.seeds >= MIN_SEEDS_FOR_FRACTION;
        all_close &= close;
        parts.push(format!(
            "({n},{t},{d}): {:.0} % (spec {:.0} %, {} seeds)",
            100.0 * row.feasible_fraction,
            100.0 * want,
            row.seeds
        ));
    }
    let d1: Vec<String> = r
        .rows
        .iter()
        .filter(|row| row.d == 1)
        .map(|row| {
            format!(
                "({},{}): {:.0} %",
                row.n,
                row.t,
                100.0 * row.feasible_fraction
            )
        })
        .collect();
    if !d1.is_empty() {
        parts.push(format!("d = 1: {}", d1.join(", ")));
    }
    let statement = "spec §5 check 18: feasible fractions near the spec's re-run (0 % at d = 1, 34 % at \
                     (5,5,2), 0 % at (15,5,3), 96 % at (15,5,5)); our seeded generator differs from \
                     torch's, so within ±15 points";
    if any && all_comparable {
        let d1_zero = r
            .rows
            .iter()
            .filter(|row| row.d == 1)
            .all(|row| row.feasible_fraction == 0.0);
        out.push(Claim::check(
            statement,
            parts.join("; "),
            all_close && d1_zero,
        ));
    } else {
        out.push(Claim::info(
            statement,
            format!(
                "{} (too few seeds for a verdict)",
                if parts.is_empty() {
                    "no reference point run".into()
                } else {
                    parts.join("; ")
                }
            ),
        ));
    }

    let full = r.rows.iter().map(|row| row.full_rank_fro).sum::<usize>();
    let frac = full as f64 / feasible.len().max(1) as f64;
    let short: Vec<String> = r
        .rows
        .iter()
        .filter(|row| row.mean_rank_fro < row.n.min(row.d) as f64)
        .map(|row| format!("({},{},{}): {:.2}", row.n, row.t, row.d, row.mean_rank_fro))
        .collect();
    out.push(Claim::check(
        "spec §5 check 18: rank(W^mm) = min(n, d) in ≥ 99 % of feasible instances",
        format!(
            "{full} of {} ({:.2} %); mean below min(n, d) at {}",
            feasible.len(),
            100.0 * frac,
            if short.is_empty() {
                "no point".to_string()
            } else {
                short.join(", ")
            }
        ),
        !feasible.is_empty() && frac >= 0.99,
    ));

    let mut worse = Vec::new();
    for row in r.rows.iter().filter(|row| row.mean_rank_nuc.is_finite()) {
        if row.mean_rank_nuc > row.mean_rank_fro_paired {
            worse.push(format!(
                "({},{},{}): {:.2} > {:.2}",
                row.n, row.t, row.d, row.mean_rank_nuc, row.mean_rank_fro_paired
            ));
        }
    }
    let compared = r
        .rows
        .iter()
        .filter(|row| row.mean_rank_nuc.is_finite())
        .count();
    out.push(Claim::check(
        "spec §5 check 18: mean rank(W^mm_⋆) ≤ mean rank(W^mm) at every (n, T, d) (over the \
         instances solved in both norms)",
        if worse.is_empty() {
            format!("held at all {compared} points with a feasible instance")
        } else {
            format!("violated at {}", worse.join(", "))
        },
        compared > 0 && worse.is_empty(),
    ));

    let at_n: Vec<_> = r
        .rows
        .iter()
        .filter(|row| row.d == row.n && row.mean_rank_nuc.is_finite())
        .collect();
    if !at_n.is_empty() {
        let text: Vec<String> = at_n
            .iter()
            .map(|row| {
                format!(
                    "(n,T) = ({},{}): nuc {:.2} vs Fro {:.2}",
                    row.n, row.t, row.mean_rank_nuc, row.mean_rank_fro_paired
                )
            })
            .collect();
        out.push(Claim::check(
            "spec §5 check 18: at d = n the mean nuclear rank is strictly lower (spec: 4.46 vs 4.97, \
             8.66 vs 9.99, 13.40 vs 14.99 for n = 5, 10, 15)",
            text.join("; "),
            at_n.iter()
                .all(|row| row.mean_rank_nuc < row.mean_rank_fro_paired),
        ));
    }

    let over: Vec<&&RankInstance> = solved
        .iter()
        .filter(|i| i.rank_nuc.is_some_and(|k| k > i.n))
        .collect();
    let raw_over = solved
        .iter()
        .filter(|i| i.rank_nuc_raw.is_some_and(|k| k > i.n))
        .count();
    let nb_over = solved.iter().filter(|i| i.notebook_rank_nuc > i.n).count();
    out.push(Claim::check(
        "spec §5 check 18: after projecting onto span{z_i}, rank(W^mm_⋆) ≤ n (relative tolerance \
         1e-6·σ_max)",
        format!(
            "{} of {} solved instances exceed n after projection; without it {raw_over} do, and \
             {nb_over} with the notebook's absolute tolerance 1e-7",
            over.len(),
            solved.len()
        ),
        !solved.is_empty() && over.is_empty(),
    ));

    // Check 4: structure.
    let worst = |f: fn(&RankInstance) -> f64| solved.iter().map(|i| f(i)).fold(0.0f64, f64::max);
    let off = feasible
        .iter()
        .map(|i| i.fro_off_span)
        .fold(0.0f64, f64::max);
    let rank_ok = feasible
        .iter()
        .all(|i| i.rank_fro.is_some_and(|k| k <= i.n.min(i.d)));
    out.push(Claim::check(
        "spec §5 check 4: for every feasible instance rank(W^mm) ≤ min(n, d) and \
         ‖W^mm(I − P_Z)‖_F ≤ 1e-6·‖W^mm‖_F",
        format!(
            "{} feasible instances; largest ‖W^mm(I − P_Z)‖/‖W^mm‖ = {off:.1e}; ranks ≤ min(n, d): \
             {rank_ok}",
            feasible.len()
        ),
        !feasible.is_empty() && rank_ok && off <= tol,
    ));
    let change = worst(|i| i.nuc_projection_change);
    let viol = worst(|i| i.nuc_projection_violation);
    out.push(Claim::check(
        "spec §5 check 4: W^mm_⋆ P_Z is feasible with the same nuclear norm (tol 1e-6)",
        format!("largest constraint violation {viol:.1e}; largest relative change of ‖·‖_⋆ {change:.1e}"),
        !solved.is_empty() && viol <= tol && change <= tol,
    ));
    let fro_bad = solved
        .iter()
        .filter(|i| i.fro_of_fro > i.fro_of_nuc * (1.0 + tol))
        .count();
    let nuc_bad = solved
        .iter()
        .filter(|i| i.nuc_of_nuc > i.nuc_of_fro * (1.0 + tol))
        .count();
    let slack_f = worst(|i| (i.fro_of_fro / i.fro_of_nuc - 1.0).max(0.0));
    let slack_n = worst(|i| (i.nuc_of_nuc / i.nuc_of_fro - 1.0).max(0.0));
    out.push(Claim::check(
        "spec §5 check 4: norm ordering ‖W^mm‖_F ≤ ‖W^mm_⋆‖_F and ‖W^mm_⋆‖_⋆ ≤ ‖W^mm‖_⋆ (relative tol 1e-6)",
        format!(
            "violated on {fro_bad} (Frobenius) and {nuc_bad} (nuclear) of {} solved instances; \
             largest excess {slack_f:.1e} / {slack_n:.1e}",
            solved.len()
        ),
        !solved.is_empty() && fro_bad == 0 && nuc_bad == 0,
    ));
    let gap = solved
        .iter()
        .map(|i| i.gap_fro.max(i.gap_nuc))
        .fold(0.0f64, f64::max);
    out.push(Claim::check(
        "every feasible instance is solved in both norms to a certified duality gap (≤ 1e-9)",
        format!(
            "{} feasible; nuclear engine without a certified answer on {nuclear_failed}; \
             feasibility undecided on {undecided}; largest certified gap {gap:.1e}",
            feasible.len()
        ),
        nuclear_failed == 0 && undecided == 0 && gap <= 1e-9,
    ));
    if let Some(row) = r.row(5, 5, 2) {
        out.push(Claim::info(
            "the notebook's convention (infeasible = rank 1, absolute tolerance 1e-7) at (5,5,2); the \
             spec's re-run gives [1.34 / 1.27]",
            format!(
                "Fro {:.2} / nuc {:.2}; the honest means over feasible instances are {:.2} / {:.2}",
                row.notebook_mean_rank_fro,
                row.notebook_mean_rank_nuc,
                row.mean_rank_fro,
                row.mean_rank_nuc
            ),
        ));
    }
    out
}
