//! The Att-SVM engines against mathematical facts: KKT and duality gap on random feasible
//! instances, closed forms, agreement with the interior point oracle, Farkas certificates,
//! support tokens by margin vs by dual, and the layouts (self, seq2seq, causal) as one program.

use attnsvm::data::generate::{generate, Family, GenSpec};
use attnsvm::data::Instance;
use attnsvm::linalg::fro_norm;
use attnsvm::solvers::svm::{
    AttSvm, AttSvmProblem, Constraint, Layout, Norm, Sample, Solver, Status, SvmSettings,
    SvmSolution,
};
use proptest::prelude::*;

fn solve(p: &AttSvmProblem, norm: Norm, solver: Solver) -> SvmSolution {
    let settings = SvmSettings {
        norm,
        solver,
        ..SvmSettings::default()
    };
    AttSvm::new(p, settings).unwrap().solve()
}

fn opt_problem(inst: &Instance) -> AttSvmProblem<'_> {
    let alpha = inst.optimal_tokens();
    AttSvmProblem::att_svm(inst, &alpha, Layout::default()).unwrap()
}

/// Sphere tokens with T − 1 ≤ d and n ≤ d: feasible for every selection (spec §2.2).
fn feasible(n: usize, t: usize, d: usize, seed: u64, self_attention: bool) -> Instance {
    crate::common::instance(Family::Sphere, (n, t, d), seed, self_attention)
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / a.abs().max(b.abs()).max(1e-300)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Frobenius: KKT residuals and duality gap at machine precision; ‖W‖² = Σλ (spec §2.8);
    /// margins ≥ 1; W = Σλ_k A_k.
    #[test]
    fn frobenius_kkt_on_random_feasible(n in 1usize..7, t in 2usize..6, extra in 0usize..4, seed in 0u64..1000, sa in any::<bool>()) {
        let d = n.max(t) + extra;
        let inst = feasible(n, t, d, seed, sa);
        let p = opt_problem(&inst);
        let sol = solve(&p, Norm::Frobenius, Solver::Auto);
        prop_assert_eq!(sol.status, Status::Solved, "{}", sol.info.message);
        prop_assert!(sol.kkt.max() <= 1e-9, "{:?}", sol.kkt);
        let sum: f64 = sol.duals.iter().sum();
        prop_assert!(rel(fro_norm(&sol.w).powi(2), sum) <= 1e-9);
        prop_assert!(sol.margins.iter().all(|&m| m >= 1.0 - 1e-9));
        prop_assert!(sol.duals.iter().all(|&l| l >= 0.0));
    }

    /// Nuclear: the certificate (gap, dual feasibility ‖Σλ_k A_k‖_op ≤ 1) and the norm ordering
    /// ‖W^mm‖_F ≤ ‖W^mm_⋆‖_F, ‖W^mm_⋆‖_⋆ ≤ ‖W^mm‖_⋆ (spec §2.8).
    #[test]
    fn nuclear_certificate_and_norm_ordering(n in 1usize..6, t in 2usize..5, seed in 0u64..1000) {
        let d = n.max(t) + 2;
        let inst = feasible(n, t, d, seed, false);
        let p = opt_problem(&inst);
        let nuc = solve(&p, Norm::Nuclear, Solver::Auto);
        let fro = solve(&p, Norm::Frobenius, Solver::Auto);
        prop_assert_eq!(nuc.status, Status::Solved, "{}", nuc.info.message);
        prop_assert!(nuc.kkt.duality_gap <= 1e-8 && nuc.kkt.dual_residual <= 1e-8, "{:?}", nuc.kkt);
        prop_assert!(nuc.margins.iter().all(|&m| m >= 1.0 - 1e-9));
        let nuc_of_fro = fro.w.singular_values().unwrap().iter().sum::<f64>();
        prop_assert!(nuc.objective <= nuc_of_fro * (1.0 + 1e-7));
        prop_assert!(fro.objective <= fro_norm(&nuc.w) * (1.0 + 1e-9));
    }
}

/// One constraint: ‖W‖_F = ‖W‖_⋆ = 1/(‖a‖‖z‖) (spec §2.8, n = 1, T = 2).
#[test]
fn one_constraint_closed_form() {
    let (x, z) = (vec![0.3, -1.2, 0.5, 0.1, 0.4, -0.7], vec![0.9, -0.2, 0.6]);
    let inst = Instance::new(
        (1, 2, 3),
        x,
        Some(z.clone()),
        vec![1.0],
        vec![1.0, 0.0, 0.0],
        None,
    )
    .unwrap();
    let p = AttSvmProblem::att_svm(&inst, &[0], Layout::default()).unwrap();
    let a: f64 = (0..3)
        .map(|j| (inst.token(0, 0)[j] - inst.token(0, 1)[j]).powi(2))
        .sum::<f64>()
        .sqrt();
    let zn: f64 = z.iter().map(|v| v * v).sum::<f64>().sqrt();
    for norm in [Norm::Frobenius, Norm::Nuclear] {
        let sol = solve(&p, norm, Solver::Auto);
        assert_eq!(sol.status, Status::Solved);
        assert!(
            rel(sol.objective, 1.0 / (a * zn)) < 1e-9,
            "{norm:?}: {} vs {}",
            sol.objective,
            1.0 / (a * zn)
        );
    }
}

/// Orthonormal tokens: the generator's closed-form W_mm.
#[test]
fn orthonormal_closed_form() {
    let g = generate(&GenSpec {
        self_attention: true,
        ..GenSpec::new(Family::Orthonormal, 3, 4, 12, 5)
    })
    .unwrap();
    let (inst, w_mm) = (g.instance, g.reference.unwrap().1);
    let p = AttSvmProblem::att_svm(&inst, &inst.optimal_tokens(), Layout::default()).unwrap();
    let sol = solve(&p, Norm::Frobenius, Solver::Auto);
    assert_eq!(sol.status, Status::Solved);
    assert!(crate::common::dist(&sol.w, &w_mm) <= 1e-9 * fro_norm(&w_mm));
}

/// The dual engine agrees with Clarabel's interior point method (objective, W, duals).
#[test]
fn dual_engine_equals_ipm_oracle() {
    for seed in 0..6 {
        let inst = crate::common::instance(Family::Gaussian, (12, 5, 8), seed, seed % 2 == 1);
        let p = opt_problem(&inst);
        let dual = solve(&p, Norm::Frobenius, Solver::Dual);
        let ipm = solve(&p, Norm::Frobenius, Solver::Ipm);
        assert_eq!(
            dual.status, ipm.status,
            "seed {seed}: {} / {}",
            dual.info.message, ipm.info.message
        );
        if dual.status != Status::Solved {
            continue;
        }
        assert!(rel(dual.objective, ipm.objective) < 1e-7, "seed {seed}");
        assert!(
            crate::common::dist(&dual.w, &ipm.w) < 1e-6 * fro_norm(&dual.w),
            "seed {seed}"
        );
        // The IPM's certificate is weaker than the engine's: compare what both guarantee.
        assert!(dual.kkt.duality_gap <= ipm.kkt.duality_gap.max(1e-12));
    }
}

/// Support tokens by margin and by dual agree on non-degenerate instances, and λ_k > 0 ⇒ margin 1.
#[test]
fn support_by_margin_equals_support_by_dual() {
    for seed in 0..8 {
        let inst = feasible(5, 4, 7, seed, false);
        let p = opt_problem(&inst);
        let sol = solve(&p, Norm::Frobenius, Solver::Auto);
        assert_eq!(sol.support_by_margin, sol.support_by_dual, "seed {seed}");
        for &k in &sol.support_by_dual {
            assert!((sol.margins[k] - 1.0).abs() < 1e-10);
        }
    }
}

/// More constraints than dimensions: infeasible, with a verified Farkas certificate.
#[test]
fn infeasible_has_farkas_certificate() {
    let inst = crate::common::instance(Family::Gaussian, (60, 6, 3), 11, false);
    let p = opt_problem(&inst);
    let sol = solve(&p, Norm::Frobenius, Solver::Auto);
    assert_eq!(sol.status, Status::Infeasible, "{}", sol.info.message);
    let f = sol.farkas.as_ref().unwrap();
    assert!(f.residual <= 1e-10, "residual {}", f.residual);
    assert!(f.multipliers.iter().all(|&l| l >= 0.0));
    assert!((f.multipliers.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    // Carathéodory: at most d² + 1 constraints are needed.
    assert!(f.constraints.len() <= 10);
    let nuc = solve(&p, Norm::Nuclear, Solver::Auto);
    assert_eq!(nuc.status, Status::Infeasible);
}

/// A selected token equal to another token of its sequence is infeasible at once.
#[test]
fn duplicate_selected_token_is_infeasible_at_once() {
    let mut inst = feasible(3, 4, 5, 2, false);
    let alpha = inst.optimal_tokens();
    let (i, a) = (1, alpha[1]);
    let other = (a + 1) % 4;
    let src = inst.token(i, a).to_vec();
    let o = (i * inst.t + other) * inst.d;
    inst.x[o..o + inst.d].copy_from_slice(&src);
    let p = AttSvmProblem::att_svm(&inst, &alpha, Layout::default()).unwrap();
    let sol = solve(&p, Norm::Frobenius, Solver::Auto);
    assert_eq!(sol.status, Status::Infeasible);
    assert!(
        sol.info.message.contains("sample 1"),
        "{}",
        sol.info.message
    );
    assert_eq!(sol.farkas.unwrap().residual, 0.0);
}

/// Causal seq2seq is the same program as the samples written out by hand (spec §2.5).
#[test]
fn causal_seq2seq_equals_explicit_samples() {
    let inst = feasible(2, 4, 6, 9, true);
    let layout = Layout {
        seq2seq: true,
        causal: true,
        ..Layout::default()
    };
    let scores = inst.scores();
    let mut alpha = Vec::new();
    for i in 0..inst.n {
        for k in 0..inst.t {
            alpha.push(attnsvm::data::argmax(
                &scores[i * inst.t..i * inst.t + k + 1],
            ));
        }
    }
    let p = AttSvmProblem::att_svm(&inst, &alpha, layout).unwrap();
    // By hand: one sample per (i, k ≥ 1), tokens 0..=k, query x_ik.
    let (mut samples, mut queries, mut cons) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..inst.n {
        for k in 1..inst.t {
            let sel = alpha[i * inst.t + k];
            let s = samples.len() as u32;
            samples.push(Sample {
                sequence: i,
                position: Some(k),
                len: k + 1,
                selected: sel,
            });
            queries.extend_from_slice(inst.token(i, k));
            for t in (0..=k).filter(|&t| t != sel) {
                cons.push(Constraint {
                    sample: s,
                    plus: sel as u32,
                    minus: t as u32,
                    rhs: 1.0,
                    equality: false,
                });
            }
        }
    }
    let q = AttSvmProblem::from_parts(inst.d, inst.t, &inst.x, queries, samples, cons).unwrap();
    assert_eq!(p.n_constraints(), q.n_constraints());
    let (a, b) = (
        solve(&p, Norm::Frobenius, Solver::Auto),
        solve(&q, Norm::Frobenius, Solver::Auto),
    );
    assert_eq!(a.status, Status::Solved);
    assert!(crate::common::dist(&a.w, &b.w) <= 1e-9 * fro_norm(&a.w));
}

/// Adding a per-sequence constant vector to every token leaves the program unchanged (spec §2.8).
#[test]
fn per_sequence_shift_invariance() {
    let inst = feasible(4, 4, 6, 3, false);
    let mut shifted = inst.clone();
    for i in 0..inst.n {
        for t in 0..inst.t {
            for j in 0..inst.d {
                shifted.x[(i * inst.t + t) * inst.d + j] += 0.3 * (i + j) as f64 - 0.5;
            }
        }
    }
    let alpha = inst.optimal_tokens();
    let p = AttSvmProblem::att_svm(&inst, &alpha, Layout::default()).unwrap();
    let q = AttSvmProblem::att_svm(&shifted, &alpha, Layout::default()).unwrap();
    let (a, b) = (
        solve(&p, Norm::Frobenius, Solver::Auto),
        solve(&q, Norm::Frobenius, Solver::Auto),
    );
    assert!(crate::common::dist(&a.w, &b.w) <= 1e-9 * fro_norm(&a.w));
}

/// The canonical instance (spec §5 check 2: values from cvxpy, absolute tolerance 2e-4).
#[test]
fn visualization1_fixture() {
    let inst = attnsvm::data::fixtures::visualization1();
    let p = opt_problem(&inst);
    let sol = solve(&p, Norm::Frobenius, Solver::Auto);
    let want = [[2.85363, -2.70286], [5.37136, 5.58049]];
    for (i, row) in want.iter().enumerate() {
        for (j, &v) in row.iter().enumerate() {
            assert!(
                (sol.w[(i, j)] - v).abs() < 2e-4,
                "W[{i},{j}] = {}",
                sol.w[(i, j)]
            );
        }
    }
    // Supports exactly {(i=0,t=2), (i=1,t=0)} with duals (26.470, 48.972); Σλ = ‖W^mm‖².
    let support: Vec<(usize, u32)> = sol
        .support_by_dual
        .iter()
        .map(|&k| {
            (
                p.samples()[p.constraints()[k].sample as usize].sequence,
                p.constraints()[k].minus,
            )
        })
        .collect();
    assert_eq!(support, vec![(0, 2), (1, 0)]);
    let duals: Vec<f64> = sol.support_by_dual.iter().map(|&k| sol.duals[k]).collect();
    assert!(
        (duals[0] - 26.470).abs() < 2e-3 && (duals[1] - 48.972).abs() < 2e-3,
        "{duals:?}"
    );
    let nuc = solve(&p, Norm::Nuclear, Solver::Auto);
    assert!((nuc.objective - 9.75480).abs() < 1e-3, "{}", nuc.objective);
    let sv = nuc.w.singular_values().unwrap();
    assert!(sv[1] / sv[0] < 1e-5, "rank one: {sv:?}");
}

/// Settings are validated by the constructor.
#[test]
fn invalid_settings_are_errors() {
    let inst = feasible(2, 3, 4, 0, false);
    let p = opt_problem(&inst);
    for bad in [
        SvmSettings {
            tol: 0.0,
            ..SvmSettings::default()
        },
        SvmSettings {
            max_iter: 0,
            ..SvmSettings::default()
        },
        SvmSettings {
            time_limit: f64::NAN,
            ..SvmSettings::default()
        },
    ] {
        let err = AttSvm::new(&p, bad).err().unwrap().to_string();
        assert!(err.contains("svm settings"), "{err}");
    }
}
