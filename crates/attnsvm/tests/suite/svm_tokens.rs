//! Token analysis of the Att-SVM (spec tf-as-svm.md §2.1, §2.3, §2.5, §2.8): scores, globally
//! optimal tokens with ties, the `opt` selection in every layout, and local optimality of a
//! selection given its max-margin solution.
//!
//! Local optimality is checked on a single-input instance (n = 1), where §2.8 gives the solution in
//! closed form: `W = u zᵀ/‖z‖²` with `u = argmin ‖u‖ s.t. (x_α − x_t)ᵀu ≥ 1`, for both norms. The
//! small `u` program is solved here exactly by enumerating active sets, and the library's own
//! certificate confirms the pair is optimal before the report is checked. The engines then have to
//! reproduce the same report.

use attnsvm::data::generate::{generate, Family, GenSpec};
use attnsvm::data::Instance;
use attnsvm::solvers::svm::tokens::{
    optimal_selection, optimal_tokens, sample_scores, selection_report, SelectionReport,
};
use attnsvm::solvers::svm::{
    certify, AttSvm, AttSvmProblem, Info, Layout, Norm, Solver, Status, SvmSettings, SvmSolution,
};
use faer::Mat;

/// Self-attention, n = 2, T = 3, d = 2, labels (+1, −1), v = (1, 0.5): every score is a dyadic
/// rational, so the expected values are exact.
fn hand() -> Instance {
    let x = vec![
        1.0, 0.0, // γ = +1
        0.5, 2.0, // γ = +1.5
        -1.0, 4.0, // γ = +1
        2.0, 0.0, // γ = −2
        -0.5, -1.0, // γ = +1
        0.25, 0.5, // γ = −0.5
    ];
    Instance::new((2, 3, 2), x, None, vec![1.0, -1.0], vec![1.0, 0.5], None).unwrap()
}

#[test]
fn scores_and_optimal_tokens_of_a_hand_instance() {
    let inst = hand();
    let s = sample_scores(&inst, Layout::default()).unwrap();
    assert_eq!(s.len(), 2);
    assert_eq!(s[0].scores, [1.0, 1.5, 1.0]);
    assert_eq!(s[1].scores, [-2.0, 1.0, -0.5]);
    assert_eq!(
        (s[0].optimal.clone(), s[1].optimal.clone()),
        (vec![1], vec![1])
    );
    assert_eq!((s[0].sequence, s[0].position), (0, Some(0)));
    // The library's own score vector agrees.
    let flat: Vec<f64> = s.iter().flat_map(|r| r.scores.clone()).collect();
    assert_eq!(flat, inst.scores());
    assert_eq!(
        optimal_selection(&inst, Layout::default()).unwrap(),
        inst.optimal_tokens()
    );

    // Causal at query position 0: only token 0 is visible.
    let causal = Layout {
        query_position: 0,
        causal: true,
        ..Layout::default()
    };
    let s = sample_scores(&inst, causal).unwrap();
    assert_eq!(s[0].scores, [1.0]);
    assert_eq!(optimal_selection(&inst, causal).unwrap(), [0, 0]);

    // Sequence to sequence: one sample per query position, sequence-major; non-causal positions
    // all see every token, causal position k the tokens 0..=k.
    let seq = Layout {
        seq2seq: true,
        ..Layout::default()
    };
    assert_eq!(optimal_selection(&inst, seq).unwrap(), [1, 1, 1, 1, 1, 1]);
    let seq_causal = Layout {
        seq2seq: true,
        causal: true,
        ..Layout::default()
    };
    let s = sample_scores(&inst, seq_causal).unwrap();
    let positions: Vec<_> = s
        .iter()
        .map(|r| (r.sequence, r.position, r.scores.len()))
        .collect();
    assert_eq!(
        positions,
        [
            (0, Some(0), 1),
            (0, Some(1), 2),
            (0, Some(2), 3),
            (1, Some(0), 1),
            (1, Some(1), 2),
            (1, Some(2), 3)
        ]
    );
    let opt = optimal_selection(&inst, seq_causal).unwrap();
    assert_eq!(opt, [0, 1, 1, 0, 1, 1]);
    // …and it is a selection the Att-SVM accepts, sample for sample.
    let p = AttSvmProblem::att_svm(&inst, &opt, seq_causal).unwrap();
    let selected: Vec<usize> = p.samples().iter().map(|s| s.selected).collect();
    assert_eq!(selected, opt);
}

#[test]
fn ties_are_reported_and_opt_takes_the_first() {
    // Tokens 0 and 2 of the single sequence have the same score 1 (up to rounding: 0.1 + 0.9).
    let x = vec![1.0, 0.0, 0.0, -1.0, 0.1, 0.9];
    let inst = Instance::new(
        (1, 3, 2),
        x,
        Some(vec![1.0, 0.0]),
        vec![1.0],
        vec![1.0, 1.0],
        None,
    )
    .unwrap();
    let s = sample_scores(&inst, Layout::default()).unwrap();
    assert_eq!(s[0].optimal, [0, 2]);
    assert_eq!(optimal_selection(&inst, Layout::default()).unwrap(), [0]);
    assert_eq!(optimal_tokens(&[2.0, 2.0 * (1.0 + 1e-15), 1.0]), [0, 1]);
    assert_eq!(optimal_tokens(&[2.0, 2.0 * (1.0 + 1e-9), 1.0]), [1]);
}

#[test]
fn layouts_are_checked_like_the_att_svm() {
    let cross = single(&[[1.0, 0.0], [0.0, -1.0]], &[1.0, 0.0]);
    let seq = Layout {
        seq2seq: true,
        ..Layout::default()
    };
    let e = sample_scores(&cross, seq).unwrap_err().to_string();
    assert_eq!(
        e,
        AttSvmProblem::att_svm(&cross, &[0, 0], seq)
            .unwrap_err()
            .to_string()
    );
    assert!(e.contains("Z.npy"), "{e}");
    let far = Layout {
        query_position: 3,
        ..Layout::default()
    };
    let e = optimal_selection(&hand(), far).unwrap_err().to_string();
    assert!(e.contains("query position 3"), "{e}");
}

// ---------- n = 1: the closed form of §2.8 ----------

/// One cross-attention sequence with tokens `x` (rows) and query `z`; y = +1, v = e_2, so the score
/// of a token is its second coordinate.
fn single(x: &[[f64; 2]], z: &[f64; 2]) -> Instance {
    let flat = x.iter().flatten().copied().collect();
    Instance::new(
        (1, x.len(), 2),
        flat,
        Some(z.to_vec()),
        vec![1.0],
        vec![0.0, 1.0],
        None,
    )
    .unwrap()
}

/// Solve `G λ = b` (G small, symmetric positive definite or nearly) by Gaussian elimination with
/// partial pivoting; `None` when singular.
fn solve_small(mut g: Vec<Vec<f64>>, mut b: Vec<f64>) -> Option<Vec<f64>> {
    let n = b.len();
    for c in 0..n {
        let p = (c..n).max_by(|&i, &j| g[i][c].abs().total_cmp(&g[j][c].abs()))?;
        if g[p][c].abs() < 1e-14 {
            return None;
        }
        g.swap(c, p);
        b.swap(c, p);
        let pivot = g[c].clone();
        for r in c + 1..n {
            let f = g[r][c] / pivot[c];
            g[r][c..]
                .iter_mut()
                .zip(&pivot[c..])
                .for_each(|(x, p)| *x -= f * p);
            b[r] -= f * b[c];
        }
    }
    let mut x = vec![0.0; n];
    for r in (0..n).rev() {
        x[r] = (b[r] - (r + 1..n).map(|k| g[r][k] * x[k]).sum::<f64>()) / g[r][r];
    }
    Some(x)
}

/// The exact Att-SVM of a single-input problem, as an [`SvmSolution`] with the library's support
/// rules (margin ≤ 1 + 1e-6, λ > 1e-6·max λ) and certificate.
fn closed_form(p: &AttSvmProblem, norm: Norm) -> SvmSolution {
    assert_eq!(p.n_samples(), 1);
    let m = p.n_constraints();
    let a: Vec<Vec<f64>> = (0..m).map(|k| p.direction(k)).collect();
    let dot = |x: &[f64], y: &[f64]| x.iter().zip(y).map(|(a, b)| a * b).sum::<f64>();
    // min ‖u‖ s.t. a_kᵀu ≥ 1: the KKT point is u = Σ_{k∈S} λ_k a_k with a_kᵀu = 1 on S, λ ≥ 0 and
    // every other margin ≥ 1, for some active set S. Try them all.
    let mut best: Option<(Vec<f64>, Vec<f64>)> = None;
    for mask in 1u32..(1 << m) {
        let s: Vec<usize> = (0..m).filter(|k| mask >> k & 1 == 1).collect();
        let g = s
            .iter()
            .map(|&i| s.iter().map(|&j| dot(&a[i], &a[j])).collect())
            .collect();
        let Some(lam) = solve_small(g, vec![1.0; s.len()]) else {
            continue;
        };
        if lam.iter().any(|&l| l < -1e-12) {
            continue;
        }
        let mut u = vec![0.0; p.d];
        for (&k, &l) in s.iter().zip(&lam) {
            u.iter_mut().zip(&a[k]).for_each(|(ui, ak)| *ui += l * ak);
        }
        if (0..m).all(|k| dot(&a[k], &u) >= 1.0 - 1e-12) {
            let mut full = vec![0.0; m];
            s.iter().zip(&lam).for_each(|(&k, &l)| full[k] = l);
            best = Some((u, full));
            break;
        }
    }
    let (u, lam_u) = best.expect("the single-input program is feasible");
    let z = p.query(0);
    let zz = dot(z, z);
    let d = p.d;
    let w: Vec<f64> = (0..d * d).map(|k| u[k / d] * z[k % d] / zz).collect();
    // W = Σ λ_k a_k zᵀ/‖z‖² (Frobenius multipliers); the nuclear dual is the same vector scaled so
    // that ‖Σλ_k A_k‖_op = ‖Σλ_k a_k‖·‖z‖ = 1.
    let scale = match norm {
        Norm::Frobenius => 1.0 / zz,
        Norm::Nuclear => 1.0 / (dot(&u, &u).sqrt() * zz.sqrt()),
    };
    let duals: Vec<f64> = lam_u.iter().map(|l| l * scale).collect();
    let margins = p.margins(&w);
    let kkt = certify(p, norm, &w, &duals, &margins);
    assert!(
        kkt.max() < 1e-12,
        "the closed form is not certified optimal: {kkt:?}"
    );
    let lmax = duals.iter().copied().fold(0.0, f64::max);
    SvmSolution {
        status: Status::Solved,
        norm,
        w: Mat::from_fn(d, d, |i, j| w[i * d + j]),
        support_by_margin: (0..m).filter(|&k| margins[k] <= 1.0 + 1e-6).collect(),
        support_by_dual: (0..m).filter(|&k| duals[k] > 1e-6 * lmax).collect(),
        duals,
        margins,
        objective: dot(&u, &u).sqrt() / zz.sqrt(),
        kkt,
        farkas: None,
        info: Info {
            solver: "closed form".into(),
            iterations: 0,
            seconds: 0.0,
            message: String::new(),
        },
    }
}

/// x0 = (1, 0) γ = 0, x1 = (0, −1) γ = −1, x2 = (−3, 0.5) γ = 0.5 (optimal), z = (0.6, 0.8).
/// Selecting x0: u = (½, ½) is set by x1 alone (margin 1) and x2 has margin 1.75, so x0 beats its
/// only support token but not the optimal, non-support x2: locally but not globally optimal.
/// Selecting x1: both other tokens are support tokens (λ ≈ 0.63 and 0.17 before scaling) and both
/// score higher: not locally optimal. Selecting x2: support {x1}, globally and locally optimal.
fn three_tokens() -> Instance {
    single(&[[1.0, 0.0], [0.0, -1.0], [-3.0, 0.5]], &[0.6, 0.8])
}

fn report(
    inst: &Instance,
    alpha: usize,
    sol: impl Fn(&AttSvmProblem) -> SvmSolution,
) -> SelectionReport {
    let p = AttSvmProblem::att_svm(inst, &[alpha], Layout::default()).unwrap();
    selection_report(inst, &p, &sol(&p)).unwrap()
}

/// The reports the three selections of [`three_tokens`] must give, whoever solved the SVM.
fn check_three_tokens(r: [SelectionReport; 3]) {
    let [r0, r1, r2] = r;
    // α = 0: locally, not globally optimal. Constraint order is t ≠ α ascending: (1, 2).
    assert_eq!(r0.samples[0].support_by_margin, [1]);
    assert_eq!(r0.samples[0].support_by_dual, [1]);
    assert_eq!(r0.samples[0].optimal, [2]);
    assert_eq!(r0.feasible, Some(true));
    assert!(r0.locally_optimal_by_margin && r0.locally_optimal_by_dual);
    assert!(!r0.globally_optimal);
    assert!(r0.violations.is_empty());

    // α = 1: beaten by both support tokens, under both definitions.
    assert_eq!(r1.samples[0].support_by_margin, [0, 2]);
    assert_eq!(r1.samples[0].support_by_dual, [0, 2]);
    assert!(!r1.locally_optimal_by_margin && !r1.locally_optimal_by_dual && !r1.globally_optimal);
    let v: Vec<_> = r1
        .violations
        .iter()
        .map(|v| (v.selected, v.token, v.by_margin, v.by_dual))
        .collect();
    assert_eq!(v, [(1, 0, true, true), (1, 2, true, true)]);
    assert_eq!(
        (
            r1.violations[1].gamma_selected,
            r1.violations[1].gamma_token
        ),
        (-1.0, 0.5)
    );

    // α = opt = 2: globally optimal, hence locally optimal (§2.3).
    assert_eq!(r2.samples[0].support_by_margin, [1]);
    assert!(r2.globally_optimal && r2.locally_optimal_by_margin && r2.locally_optimal_by_dual);
}

#[test]
fn a_locally_but_not_globally_optimal_selection_closed_form() {
    let inst = three_tokens();
    for norm in [Norm::Frobenius, Norm::Nuclear] {
        check_three_tokens([0, 1, 2].map(|a| report(&inst, a, |p| closed_form(p, norm))));
    }
    // The margins behind the story: α = 0 gives x2 margin 1.75 (non-support).
    let p = AttSvmProblem::att_svm(&inst, &[0], Layout::default()).unwrap();
    let sol = closed_form(&p, Norm::Frobenius);
    assert!((sol.margins[1] - 1.75).abs() < 1e-12, "{:?}", sol.margins);
}

#[test]
fn equal_scores_are_not_beaten() {
    // As in the max-margin paper's g_converge = True (spec §4.6): the selected token x0 and its only
    // support token x1 have the same score, 0, so the selection is not locally optimal.
    let inst = single(&[[1.0, 0.0], [0.0, 0.0], [-3.0, 0.5]], &[0.6, 0.8]);
    let r = report(&inst, 0, |p| closed_form(p, Norm::Frobenius));
    assert_eq!(r.samples[0].support_by_margin, [1]);
    assert!(!r.locally_optimal_by_margin && !r.locally_optimal_by_dual);
    assert_eq!(r.violations.len(), 1);
    assert_eq!(r.violations[0].token, 1);
}

#[test]
fn an_infeasible_selection_is_not_locally_optimal() {
    // Token 1 equals the selected token 0: the presolve answers Infeasible.
    let inst = single(&[[1.0, 0.0], [1.0, 0.0], [-3.0, 0.5]], &[0.6, 0.8]);
    let p = AttSvmProblem::att_svm(&inst, &[0], Layout::default()).unwrap();
    let sol = AttSvm::new(&p, SvmSettings::default()).unwrap().solve();
    assert_eq!(sol.status, Status::Infeasible);
    let r = selection_report(&inst, &p, &sol).unwrap();
    assert_eq!(r.feasible, Some(false));
    assert!(!r.locally_optimal_by_margin && !r.locally_optimal_by_dual);
    assert!(!r.globally_optimal);
    assert!(r.samples[0].support_by_margin.is_empty() && r.violations.is_empty());
}

#[test]
fn the_report_refuses_a_problem_of_another_instance() {
    let (a, b) = (
        three_tokens(),
        single(&[[1.0, 0.0], [0.0, -2.0], [-3.0, 0.5]], &[0.6, 0.8]),
    );
    let p = AttSvmProblem::att_svm(&a, &[0], Layout::default()).unwrap();
    let sol = closed_form(&p, Norm::Frobenius);
    assert!(selection_report(&b, &p, &sol).is_err());
    let mut short = sol.clone();
    short.duals.pop();
    assert!(selection_report(&a, &p, &short).is_err());
}

// ---------- the engines give the same reports ----------

fn engine(solver: Solver, norm: Norm) -> impl Fn(&AttSvmProblem) -> SvmSolution {
    move |p| {
        let sol = AttSvm::new(
            p,
            SvmSettings {
                norm,
                solver,
                ..SvmSettings::default()
            },
        )
        .unwrap()
        .solve();
        assert_eq!(
            sol.status,
            Status::Solved,
            "{solver:?} {norm:?}: {}",
            sol.info.message
        );
        sol
    }
}

#[test]
fn the_frobenius_engines_agree_with_the_closed_form() {
    let inst = three_tokens();
    for solver in [Solver::Auto, Solver::Ipm] {
        check_three_tokens([0, 1, 2].map(|a| report(&inst, a, engine(solver, Norm::Frobenius))));
    }
}

#[test]
fn the_nuclear_engine_agrees_with_the_closed_form() {
    let inst = three_tokens();
    check_three_tokens([0, 1, 2].map(|a| report(&inst, a, engine(Solver::Auto, Norm::Nuclear))));
}

#[test]
fn opt_is_locally_optimal_whenever_feasible() {
    // §2.3: the globally optimal selection beats every token, support or not. Over-parameterized
    // sphere instances are feasible for every α (§2.2): here the n·T = 6 queries of the
    // sequence-to-sequence layout are linearly independent in d = 8.
    for seed in 0..4 {
        let mut spec = GenSpec::new(Family::Sphere, 2, 3, 8, seed);
        spec.self_attention = seed % 2 == 1;
        let inst = generate(&spec).unwrap().instance;
        for layout in [
            Layout::default(),
            Layout {
                seq2seq: true,
                causal: true,
                ..Layout::default()
            },
        ] {
            if layout.seq2seq && !spec.self_attention {
                continue;
            }
            let opt = optimal_selection(&inst, layout).unwrap();
            let p = AttSvmProblem::att_svm(&inst, &opt, layout).unwrap();
            // Causal position 0 sees one token and has no constraint; the others are feasible.
            let r =
                selection_report(&inst, &p, &engine(Solver::Auto, Norm::Frobenius)(&p)).unwrap();
            assert!(r.globally_optimal, "seed {seed} {layout:?}");
            assert!(
                r.locally_optimal_by_margin && r.locally_optimal_by_dual,
                "seed {seed} {layout:?}: {:?}",
                r.violations
            );
        }
    }
}
