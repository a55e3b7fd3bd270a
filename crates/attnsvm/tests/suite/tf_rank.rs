//! The svm_rank experiment (spec tf-as-svm.md §4.5) at quick sizes, checked against mathematical
//! facts (§2.8; checks 4, 5 and 18 of §5):
//! - every feasible instance: rank(W^mm) = min(n, d) ≤ n, row space in span{z_i}, the projected
//!   nuclear solution feasible with the same nuclear norm and rank ≤ n, the norm ordering;
//! - infeasible instances are reported with a Farkas certificate and no rank (n = 15, d = 2);
//! - d = 1 unit tokens are ±e₁, so with T = 5 every instance is infeasible;
//! - n = 1: the two solutions coincide and have rank one.

use attnsvm::experiments::tf_svm::rank::{run, run_instance, RankConfig, ROWS_CSV_HEADER};
use attnsvm::solvers::svm::Status;

#[test]
fn quick_rank_experiment_satisfies_the_structure_facts() {
    let config = RankConfig::quick();
    let r = run(&config).unwrap();
    assert_eq!(r.instances.len(), 2 * 3 * 3);
    let tol = config.structure_tol;
    let (mut solved, mut failed) = (0, 0);
    for i in &r.instances {
        assert_eq!(i.rank_fro.is_some(), i.feasible(), "{i:?}");
        if !i.solved() && !i.infeasible() {
            // A solver limit is reported as such, never as a nuclear rank.
            assert!(i.rank_nuc.is_none(), "{i:?}");
            failed += 1;
            continue;
        }
        if i.infeasible() {
            assert_eq!(i.status_nuc, Status::Infeasible);
            assert!(i.rank_fro.is_none() && i.rank_nuc.is_none());
            assert!(i.farkas_residual.unwrap() <= 1e-8);
            assert_eq!((i.notebook_rank_fro, i.notebook_rank_nuc), (1, 1));
            continue;
        }
        solved += 1;
        let (rf, rn) = (i.rank_fro.unwrap(), i.rank_nuc.unwrap());
        assert!(rf <= i.n.min(i.d) && rn <= i.n.min(i.d), "{rf} {rn}");
        assert!(i.fro_off_span <= tol, "{}", i.fro_off_span);
        assert!(i.nuc_projection_violation <= tol && i.nuc_projection_change <= tol);
        assert!(i.fro_of_fro <= i.fro_of_nuc * (1.0 + tol));
        assert!(i.nuc_of_nuc <= i.nuc_of_fro * (1.0 + tol));
    }
    assert!(
        solved >= 6 && failed <= 1,
        "{solved} solved, {failed} failed"
    );
    // n = 15 > d = 2 with T = 5 (check 5): infeasible for most seeds; never a rank.
    let row = r.row(15, 5, 2).unwrap();
    assert!(row.infeasible >= 2, "{row:?}");
    // Frobenius rank is min(n, d) on the quick instances.
    let full: usize = r.rows.iter().map(|row| row.full_rank_fro).sum();
    let feasible = r.instances.iter().filter(|i| i.feasible()).count();
    assert_eq!(full, feasible);
    let claims = r.claims();
    assert!(claims.len() >= 8);
    // The claims that are theorems hold at any size.
    for c in &claims {
        if c.statement.contains("check 4")
            || c.statement.contains("infeasible instances are reported")
        {
            assert_eq!(c.held, Some(true), "{c:?}");
        }
    }
    assert!(r.rows_csv().starts_with(ROWS_CSV_HEADER));
    assert_eq!(r.instances_csv().lines().count(), 1 + r.instances.len());
    assert!(r.table_markdown().contains("| (15,5) |"));
    let back: attnsvm::experiments::tf_svm::rank::RankResult =
        serde_json::from_str(&r.to_json()).unwrap();
    assert_eq!(back.rows.len(), r.rows.len());
}

#[test]
fn one_dimensional_tokens_are_always_infeasible_and_n_one_is_rank_one() {
    let config = RankConfig::quick();
    for seed in 0..3 {
        let i = run_instance(&config, 5, 5, 1, seed).unwrap();
        assert!(i.infeasible(), "{i:?}");
        let one = run_instance(&config, 1, 5, 6, seed).unwrap();
        assert!(one.solved());
        assert_eq!((one.rank_fro, one.rank_nuc), (Some(1), Some(1)));
        // For n = 1 both programs have the solution u zᵀ/‖z‖² (§2.8): equal norms.
        assert!((one.fro_of_fro - one.fro_of_nuc).abs() <= 1e-6 * one.fro_of_fro);
        assert!((one.nuc_of_nuc - one.nuc_of_fro).abs() <= 1e-6 * one.nuc_of_nuc);
    }
}
