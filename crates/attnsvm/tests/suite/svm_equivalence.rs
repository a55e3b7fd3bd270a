//! The general SVM equivalence of nonlinear heads (spec tf-as-svm.md §2.6, check 16 of §5), checked
//! against its mathematical properties:
//! - every `|O_i| = 1`: `W_fin = 0` and `W_dir` is the Att-SVM of the selected tokens;
//! - Frobenius: `⟨W_fin, W_dir⟩ = 0`, `W_fin` reproduces the log-ratios inside `O_i`, `W_dir` has
//!   margin 0 inside `O_i` and ≥ 1 across;
//! - probabilities that are the softmax of a real `W` give a consistent `W_fin` system, and `W_fin`
//!   is the orthogonal projection of that `W` onto the span of the constraints;
//! - the two pair rules (consecutive / all pairs) give the same programs' solutions;
//! - a trained ReLU-head model: `corr(W_T, W_svmeq)² = corr(W_T, W_dir)² + ‖W_fin‖²/‖W_T‖²`, so the
//!   prediction is never worse than `W_dir` alone;
//! - inconsistent and infeasible programs are reported as statuses, bad inputs as clear errors.

use attnsvm::data::fixtures::visualization1;
use attnsvm::data::generate::{generate, Family, GenSpec};
use attnsvm::data::Instance;
use attnsvm::linalg::{fro_dot, fro_norm, one_minus_corr};
use attnsvm::model::{Head, Loss, Objective};
use attnsvm::solvers::svm::equivalence::{
    attention_probabilities, selected_sets, Equivalence, EquivalenceSettings, PairRule,
    SvmEquivalence, DEFAULT_THRESHOLD,
};
use attnsvm::solvers::svm::{AttSvm, AttSvmProblem, Layout, Solver, Status, SvmSettings};
use attnsvm::train::{train, Init, State, TrainSettings};
use faer::Mat;

fn settings(pairs: PairRule) -> EquivalenceSettings {
    EquivalenceSettings {
        pairs,
        ..EquivalenceSettings::default()
    }
}

/// A fixed, full-rank, non-symmetric d×d matrix of unit Frobenius norm.
fn direction(d: usize) -> Mat<f64> {
    let m = Mat::from_fn(d, d, |r, c| {
        (1.7 * r as f64 + 0.31 * c as f64 + 0.5).sin()
            + 0.4 * (2.3 * c as f64 - 0.9 * r as f64).cos()
    });
    let nrm = fro_norm(&m);
    Mat::from_fn(d, d, |r, c| m[(r, c)] / nrm)
}

fn scaled(w: &Mat<f64>, c: f64) -> Mat<f64> {
    Mat::from_fn(w.nrows(), w.ncols(), |r, k| c * w[(r, k)])
}

/// Logits `a_it = x_itᵀ W z_i` (`n·T`), computed directly from the instance.
fn logits(inst: &Instance, w: &Mat<f64>) -> Vec<f64> {
    let z = inst.queries(0).unwrap();
    let d = inst.d;
    let mut out = Vec::new();
    for i in 0..inst.n {
        let zi = &z[i * d..(i + 1) * d];
        for t in 0..inst.t {
            let x = inst.token(i, t);
            out.push(
                (0..d)
                    .map(|r| x[r] * (0..d).map(|c| w[(r, c)] * zi[c]).sum::<f64>())
                    .sum(),
            );
        }
    }
    out
}

/// `W_true = c·direction(d)` with the smallest `c` of a geometric grid whose attention selects at
/// least `min_largest` tokens of some sequence and masks at least one token somewhere.
fn mixed_selection(inst: &Instance, min_largest: usize) -> (Mat<f64>, Vec<f64>) {
    let dir = direction(inst.d);
    for k in 0..60 {
        let w = scaled(&dir, 0.5 * 1.25f64.powi(k));
        let probs = attention_probabilities(inst, &w, 0).unwrap();
        let o = selected_sets(&probs, inst.t, DEFAULT_THRESHOLD);
        let largest = o.iter().map(Vec::len).max().unwrap();
        let masked = o.iter().any(|oi| oi.len() < inst.t);
        if largest >= min_largest && masked {
            return (w, probs);
        }
    }
    panic!("no scale of the fixed direction gives |O_i| ≥ {min_largest} with a masked token");
}

fn assert_close(a: &Mat<f64>, b: &Mat<f64>, rel: f64, what: &str) {
    let diff = Mat::from_fn(a.nrows(), a.ncols(), |r, c| a[(r, c)] - b[(r, c)]);
    let scale = fro_norm(a).max(fro_norm(b)).max(1.0);
    assert!(
        fro_norm(&diff) <= rel * scale,
        "{what}: ‖Δ‖ = {:e}, scale {scale:e}",
        fro_norm(&diff)
    );
}

/// The Frobenius facts of §2.6 on any solved equivalence whose probabilities are `probs`.
fn check_frobenius_facts(inst: &Instance, probs: &[f64], w_t: &Mat<f64>, eq: &Equivalence) {
    assert!(eq.is_solved(), "{}", eq.message);
    let (w_fin, w_dir) = (&eq.w_fin.w, &eq.w_dir.w);
    // ⟨W_fin, W_dir⟩ = 0.
    let inner = fro_dot(w_fin, w_dir);
    assert!(
        inner.abs() <= 1e-8 * fro_norm(w_fin).max(1.0) * fro_norm(w_dir),
        "⟨W_fin, W_dir⟩ = {inner:e}"
    );
    // W_fin reproduces the log-ratios of every pair in O_i; W_dir has margin 0 inside, ≥ 1 across.
    let (a_fin, a_dir) = (logits(inst, w_fin), logits(inst, w_dir));
    let t = inst.t;
    for (i, o) in eq.selected.iter().enumerate() {
        for &t1 in o {
            for &t2 in o {
                let want = probs[i * t + t2].ln() - probs[i * t + t1].ln();
                let got = a_fin[i * t + t2] - a_fin[i * t + t1];
                assert!(
                    (got - want).abs() <= 1e-8 * want.abs().max(1.0),
                    "W_fin log-ratio ({i}, {t1}, {t2}): {got} vs {want}"
                );
                let inside = a_dir[i * t + t1] - a_dir[i * t + t2];
                assert!(
                    inside.abs() <= 1e-8,
                    "W_dir margin inside O_{i} ({t1}, {t2}) = {inside:e}"
                );
            }
            for tok in (0..t).filter(|k| !o.contains(k)) {
                let across = a_dir[i * t + t1] - a_dir[i * t + tok];
                assert!(
                    across >= 1.0 - 1e-8,
                    "W_dir margin ({i}, {t1} over {tok}) = {across}"
                );
            }
        }
    }
    // R* = ⟨W_T, W_dir⟩/‖W_dir‖² (the W_fin term vanishes by orthogonality).
    let r = eq.r_star.unwrap();
    let simple = fro_dot(w_t, w_dir) / fro_norm(w_dir).powi(2);
    assert!(
        (r - simple).abs() <= 1e-8 * simple.abs().max(1.0),
        "R* = {r}, ⟨W_T, W_dir⟩/‖W_dir‖² = {simple}"
    );
}

#[test]
fn single_selected_tokens_give_w_fin_zero_and_w_dir_the_att_svm() {
    let sphere = generate(&GenSpec::new(Family::Sphere, 3, 4, 6, 3))
        .unwrap()
        .instance;
    let self_attention = generate(&GenSpec {
        self_attention: true,
        ..GenSpec::new(Family::Sphere, 3, 4, 6, 5)
    })
    .unwrap()
    .instance;
    for inst in [visualization1(), sphere, self_attention] {
        let alpha = inst.optimal_tokens();
        let problem = AttSvmProblem::att_svm(&inst, &alpha, Layout::default()).unwrap();
        let w_mm = AttSvm::new(&problem, SvmSettings::default())
            .unwrap()
            .solve();
        assert_eq!(w_mm.status, Status::Solved);
        // Every margin of 25·W_mm is ≥ 25, so each masked token has attention ≤ e^{-25} < 1e-3.
        let c = 25.0;
        let w_t = scaled(&w_mm.w, c);
        for pairs in [PairRule::Chain, PairRule::All] {
            let eq = SvmEquivalence::from_trained(&inst, 0, &w_t, settings(pairs)).unwrap();
            let expected: Vec<Vec<usize>> = alpha.iter().map(|&a| vec![a]).collect();
            assert_eq!(eq.selected(), &expected[..]);
            assert_eq!(eq.fin_problem().n_constraints(), 0);
            let sol = eq.solve();
            assert_eq!(
                (sol.w_fin.status, sol.w_fin.info.solver.as_str()),
                (Status::Solved, "none")
            );
            assert_eq!(fro_norm(&sol.w_fin.w), 0.0);
            assert_eq!(sol.w_dir.status, Status::Solved);
            assert_close(&sol.w_dir.w, &w_mm.w, 1e-8, "W_dir vs Att-SVM");
            let w_svmeq = sol.w_svmeq.as_ref().unwrap();
            assert!(one_minus_corr(w_svmeq, &sol.w_dir.w) <= 1e-14);
            let r = sol.r_star.unwrap();
            assert!((r - c).abs() <= 1e-7 * c, "R* = {r}, expected {c}");
            assert!(sol.one_minus_corr_svmeq.unwrap() <= 1e-14);
        }
    }
}

#[test]
fn frobenius_programs_are_orthogonal_and_meet_their_margins() {
    let inst = generate(&GenSpec::new(Family::Gaussian, 4, 6, 8, 11))
        .unwrap()
        .instance;
    let (w_t, probs) = mixed_selection(&inst, 3);
    let eq = SvmEquivalence::new(&inst, 0, &probs, &w_t, EquivalenceSettings::default()).unwrap();
    let sol = eq.solve();
    assert!(sol.selected.iter().any(|o| o.len() >= 3));
    assert!(fro_norm(&sol.w_fin.w) > 0.0);
    assert!(
        sol.w_fin.kkt.max() <= 1e-9 && sol.w_dir.kkt.max() <= 1e-9,
        "{:?} {:?}",
        sol.w_fin.kkt,
        sol.w_dir.kkt
    );
    check_frobenius_facts(&inst, &probs, &w_t, &sol);
    // The largest masked attention is what the threshold left out.
    let masked = probs
        .iter()
        .filter(|&&p| p < DEFAULT_THRESHOLD)
        .fold(0.0f64, |a, &p| a.max(p));
    assert_eq!(sol.max_masked_prob, masked);
}

#[test]
fn consecutive_and_all_pairs_give_the_same_solutions() {
    let inst = generate(&GenSpec::new(Family::Gaussian, 4, 6, 8, 11))
        .unwrap()
        .instance;
    let (w_t, probs) = mixed_selection(&inst, 3);
    let chain = SvmEquivalence::new(&inst, 0, &probs, &w_t, settings(PairRule::Chain)).unwrap();
    let all = SvmEquivalence::new(&inst, 0, &probs, &w_t, settings(PairRule::All)).unwrap();
    // Not the same programs: all pairs adds the redundant equalities and inequalities.
    assert!(all.fin_problem().n_constraints() > chain.fin_problem().n_constraints());
    assert!(all.dir_problem().n_constraints() > chain.dir_problem().n_constraints());
    let (a, b) = (chain.solve(), all.solve());
    assert!(
        a.is_solved() && b.is_solved(),
        "{} / {}",
        a.message,
        b.message
    );
    assert_close(&a.w_fin.w, &b.w_fin.w, 1e-8, "W_fin");
    assert_close(&a.w_dir.w, &b.w_dir.w, 1e-8, "W_dir");
    let (ra, rb) = (a.r_star.unwrap(), b.r_star.unwrap());
    assert!((ra - rb).abs() <= 1e-8 * ra.abs().max(1.0));
    check_frobenius_facts(&inst, &probs, &w_t, &b);
}

#[test]
fn dual_engine_and_interior_point_agree_on_both_programs() {
    let inst = generate(&GenSpec::new(Family::Gaussian, 4, 6, 8, 11))
        .unwrap()
        .instance;
    let (w_t, probs) = mixed_selection(&inst, 3);
    let ipm = EquivalenceSettings {
        svm: SvmSettings {
            solver: Solver::Ipm,
            ..SvmSettings::default()
        },
        ..EquivalenceSettings::default()
    };
    let a = SvmEquivalence::new(&inst, 0, &probs, &w_t, EquivalenceSettings::default())
        .unwrap()
        .solve();
    let b = SvmEquivalence::new(&inst, 0, &probs, &w_t, ipm)
        .unwrap()
        .solve();
    assert!(
        a.is_solved() && b.is_solved(),
        "{} / {}",
        a.message,
        b.message
    );
    assert_eq!(b.w_dir.info.solver, "clarabel-qp");
    assert_close(&a.w_fin.w, &b.w_fin.w, 1e-6, "W_fin (dual vs IPM)");
    assert_close(&a.w_dir.w, &b.w_dir.w, 1e-6, "W_dir (dual vs IPM)");
}

#[test]
fn softmax_of_a_real_w_gives_a_consistent_w_fin_system() {
    // n = 10 queries in d = 3: the W_fin constraints outnumber the d² = 9 entries of W, so a
    // generic right-hand side would be inconsistent; the log-ratios of a real softmax are not.
    let inst = generate(&GenSpec::new(Family::Gaussian, 10, 5, 3, 4))
        .unwrap()
        .instance;
    let (w_true, probs) = mixed_selection(&inst, 2);
    // With n > d, W_dir is infeasible here, and the dual engine certifies infeasibility only for
    // programs without equalities: it would spend its whole budget on W_dir. W_fin needs a few
    // epochs.
    let budget = |pairs| EquivalenceSettings {
        pairs,
        svm: SvmSettings {
            max_iter: 2000,
            ..SvmSettings::default()
        },
        ..EquivalenceSettings::default()
    };
    for pairs in [PairRule::Chain, PairRule::All] {
        let eq = SvmEquivalence::new(&inst, 0, &probs, &w_true, budget(pairs)).unwrap();
        let m = eq.fin_problem().n_constraints();
        let sol = eq.solve();
        assert_ne!(sol.w_dir.status, Status::Solved);
        assert_eq!(
            sol.w_fin.status,
            Status::Solved,
            "{pairs:?}: {}",
            sol.w_fin.info.message
        );
        assert!(
            sol.w_fin.kkt.primal_residual <= 1e-10,
            "{:?}",
            sol.w_fin.kkt
        );
        // Equality margins are the log-ratios.
        for (k, c) in eq.fin_problem().constraints().iter().enumerate() {
            assert!(c.equality);
            assert!((sol.w_fin.margins[k] - c.rhs).abs() <= 1e-9 * c.rhs.abs().max(1.0));
        }
        // W_true satisfies the system, so the smallest solution is its projection onto the span of
        // the constraints: W_true − W_fin ⊥ W_fin, and ‖W_fin‖ ≤ ‖W_true‖.
        let w_fin = &sol.w_fin.w;
        let rest = Mat::from_fn(3, 3, |r, c| w_true[(r, c)] - w_fin[(r, c)]);
        assert!(fro_dot(&rest, w_fin).abs() <= 1e-8 * fro_norm(&w_true).powi(2));
        assert!(fro_norm(w_fin) <= fro_norm(&w_true) * (1.0 + 1e-12));
        if pairs == PairRule::Chain {
            assert!(
                m > 9,
                "only {m} W_fin constraints: the check would be vacuous"
            );
        }
    }
    // Move one selected probability by a factor e^{0.1} (renormalized): the ratios are no longer
    // those of any W, and the system is reported inconsistent.
    let t = inst.t;
    let o = selected_sets(&probs, t, DEFAULT_THRESHOLD);
    let i = o.iter().position(|oi| oi.len() >= 2).unwrap();
    let mut bent = probs.clone();
    bent[i * t + o[i][0]] *= 0.1f64.exp();
    let sum: f64 = bent[i * t..(i + 1) * t].iter().sum();
    bent[i * t..(i + 1) * t].iter_mut().for_each(|p| *p /= sum);
    let eq = SvmEquivalence::new(&inst, 0, &bent, &w_true, budget(PairRule::Chain)).unwrap();
    assert_eq!(eq.selected(), &o[..]);
    let sol = eq.solve();
    assert_eq!(
        sol.w_fin.status,
        Status::Infeasible,
        "{}",
        sol.w_fin.info.message
    );
    assert!(sol.r_star.is_none() && sol.w_svmeq.is_none() && sol.message.contains("W_fin"));
}

/// `Σμ_k r_k` of a certificate of the `W_fin` program.
fn certificate_value(eq: &SvmEquivalence, mu: &[f64]) -> f64 {
    eq.fin_problem()
        .constraints()
        .iter()
        .zip(mu)
        .map(|(c, m)| m * c.rhs)
        .sum()
}

#[test]
fn inconsistent_and_infeasible_programs_are_reported() {
    // One query in d = 2, four selected tokens: three log-ratio equations on u = W z ∈ R², with
    // ratios that no W produces.
    let x = vec![0.3, -1.0, 1.2, 0.4, -0.7, 0.9, 0.5, 0.5];
    let inst = Instance::new(
        (1, 4, 2),
        x,
        Some(vec![0.6, 0.8]),
        vec![1.0],
        vec![1.0, 0.0],
        None,
    )
    .unwrap();
    let probs = [0.1, 0.2, 0.3, 0.4];
    let w = Mat::<f64>::zeros(2, 2);
    for pairs in [PairRule::Chain, PairRule::All] {
        let eq = SvmEquivalence::new(&inst, 0, &probs, &w, settings(pairs)).unwrap();
        let sol = eq.solve();
        assert_eq!(sol.w_fin.status, Status::Infeasible);
        let cert = sol.w_fin.farkas.as_ref().unwrap();
        assert!(
            cert.residual <= 1e-12,
            "certificate residual {:e}",
            cert.residual
        );
        let l1: f64 = cert.multipliers.iter().map(|m| m.abs()).sum();
        assert!((l1 - 1.0).abs() <= 1e-12);
        assert!(certificate_value(&eq, &cert.multipliers) > 1e-3);
        assert!(sol.r_star.is_none() && sol.corr_svmeq.is_none());
        assert!(sol.message.contains("W_fin: Infeasible"), "{}", sol.message);
        // Nothing is masked, so W_dir has only `= 0` rows: W_dir = 0, solved.
        assert_eq!(sol.w_dir.status, Status::Solved);
        assert_eq!(fro_norm(&sol.w_dir.w), 0.0);
    }

    // W_dir infeasible: token 2 lies between tokens 0 and 1, so no W gives 0 and 1 equal logits
    // while both beat token 2.
    let x = vec![0.0, 0.0, 2.0, 0.0, 1.0, 0.0];
    let inst = Instance::new(
        (1, 3, 2),
        x,
        Some(vec![0.6, 0.8]),
        vec![1.0],
        vec![1.0, 0.0],
        None,
    )
    .unwrap();
    let probs = [0.5, 0.5 - 1e-5, 1e-5];
    let ipm = EquivalenceSettings {
        svm: SvmSettings {
            solver: Solver::Ipm,
            ..SvmSettings::default()
        },
        ..EquivalenceSettings::default()
    };
    let sol = SvmEquivalence::new(&inst, 0, &probs, &w, ipm)
        .unwrap()
        .solve();
    assert_eq!(sol.w_fin.status, Status::Solved);
    assert_eq!(sol.w_dir.status, Status::Infeasible);
    assert!(sol.r_star.is_none() && sol.corr_dir.is_none());
    assert!(sol.message.contains("W_dir: Infeasible"), "{}", sol.message);
    // The dual engine has no certificate for programs with equalities: it must not claim a solution.
    let auto = EquivalenceSettings {
        svm: SvmSettings {
            max_iter: 5000,
            ..SvmSettings::default()
        },
        ..EquivalenceSettings::default()
    };
    let sol = SvmEquivalence::new(&inst, 0, &probs, &w, auto)
        .unwrap()
        .solve();
    assert_ne!(sol.w_dir.status, Status::Solved);
    assert!(sol.r_star.is_none() && sol.w_svmeq.is_none());
}

#[test]
fn nothing_masked_gives_w_dir_zero_and_the_finite_prediction() {
    let inst = generate(&GenSpec::new(Family::Gaussian, 3, 4, 5, 2))
        .unwrap()
        .instance;
    let w_t = scaled(&direction(5), 0.5);
    let eq = SvmEquivalence::from_trained(&inst, 0, &w_t, EquivalenceSettings::default()).unwrap();
    assert!(eq.selected().iter().all(|o| o.len() == 4));
    let sol = eq.solve();
    assert!(sol.is_solved());
    assert_eq!((fro_norm(&sol.w_dir.w), sol.r_star), (0.0, Some(0.0)));
    assert_close(
        sol.w_svmeq.as_ref().unwrap(),
        &sol.w_fin.w,
        0.0,
        "W_svmeq = W_fin",
    );
    // n ≤ d: W_fin fixes every logit difference, so it reproduces W_T's attention exactly.
    let (a, b) = (
        attention_probabilities(&inst, &sol.w_fin.w, 0).unwrap(),
        attention_probabilities(&inst, &w_t, 0).unwrap(),
    );
    assert!(a.iter().zip(&b).all(|(p, q)| (p - q).abs() <= 1e-10));
}

#[test]
fn trained_relu_model_prediction_is_never_worse_than_w_dir() {
    // §4.4 in miniature: W-NGD on a ReLU head. With s the softmax of W_T itself, W_fin is the
    // projection of W_T onto S_fin and W_dir ⊥ S_fin, so W_svmeq is the projection of W_T onto
    // S_fin ⊕ span{W_dir}: corr(W_T, W_svmeq)² = corr(W_T, W_dir)² + ‖W_fin‖²/‖W_T‖².
    let (n, t, d) = (4, 4, 6);
    let mut several = 0;
    for seed in 0..3u64 {
        let inst = generate(&GenSpec::new(Family::Sphere, n, t, d, seed))
            .unwrap()
            .instance;
        let mut risk =
            Objective::new(&inst, Head::relu_from_seed(d, seed), Loss::Logistic, 0).unwrap();
        let ts = TrainSettings {
            iters: 3000,
            init: Init::Random,
            seed,
            ..TrainSettings::default()
        };
        let run = train(&mut risk, &ts, State::init(&ts, d, &inst.v), None, |_| true).unwrap();
        let w_t = run.state.w;
        let eq =
            SvmEquivalence::from_trained(&inst, 0, &w_t, EquivalenceSettings::default()).unwrap();
        let sol = eq.solve();
        let probs = attention_probabilities(&inst, &w_t, 0).unwrap();
        check_frobenius_facts(&inst, &probs, &w_t, &sol);
        let (w_fin, wt_norm) = (&sol.w_fin.w, fro_norm(&w_t));
        let rest = Mat::from_fn(d, d, |r, c| w_t[(r, c)] - w_fin[(r, c)]);
        assert!(
            fro_dot(&rest, w_fin).abs() <= 1e-8 * wt_norm * wt_norm,
            "W_fin is not the projection of W_T"
        );
        let (c_dir, c_eq) = (sol.corr_dir.unwrap(), sol.corr_svmeq.unwrap());
        let pythagoras = c_dir * c_dir + (fro_norm(w_fin) / wt_norm).powi(2);
        assert!(
            (c_eq * c_eq - pythagoras).abs() <= 1e-8,
            "corr² {} vs {pythagoras}",
            c_eq * c_eq
        );
        assert!(c_eq >= c_dir.abs() - 1e-12);
        if sol.selected.iter().any(|o| o.len() >= 2) {
            several += 1;
            assert!(
                c_eq > c_dir,
                "W_fin ≠ 0 must make the prediction strictly better"
            );
        }
        println!(
            "seed {seed}: O = {:?}, max masked {:.1e}, ‖W_T‖ = {wt_norm:.1}, R* = {:.1}, 1 − corr(W_T, W_dir) = {:.3e}, 1 − corr(W_T, W_svmeq) = {:.3e}",
            sol.selected,
            sol.max_masked_prob,
            sol.r_star.unwrap(),
            sol.one_minus_corr_dir.unwrap(),
            sol.one_minus_corr_svmeq.unwrap()
        );
    }
    assert!(
        several > 0,
        "no trained model selected two tokens: the check would be vacuous"
    );
}

#[test]
fn bad_inputs_give_clear_errors() {
    let inst = visualization1(); // n = 2, T = 3, d = 2
    let w = Mat::<f64>::zeros(2, 2);
    let ok = [0.2, 0.3, 0.5, 0.1, 0.1, 0.8];
    let err = |probs: &[f64], w: &Mat<f64>, s: EquivalenceSettings| {
        SvmEquivalence::new(&inst, 0, probs, w, s)
            .err()
            .expect("must fail")
            .to_string()
    };
    let def = EquivalenceSettings::default;
    assert!(SvmEquivalence::new(&inst, 0, &ok, &w, def()).is_ok());
    let e = err(&ok[..5], &w, def());
    assert!(e.contains("5 values, expected n·T = 2·3 = 6"), "{e}");
    let mut nan = ok;
    nan[4] = f64::NAN;
    let e = err(&nan, &w, def());
    assert!(e.contains("entry (1, 1) = NaN is not a probability"), "{e}");
    let mut neg = ok;
    (neg[0], neg[1]) = (-0.1, 0.6);
    let e = err(&neg, &w, def());
    assert!(e.contains("entry (0, 0) = -0.1"), "{e}");
    let mut off = ok;
    off[5] = 0.7;
    let e = err(&off, &w, def());
    assert!(e.contains("row 1 sums to") && e.contains("not 1"), "{e}");
    let e = err(&ok, &Mat::zeros(3, 3), def());
    assert!(e.contains("trained W is 3×3, expected d×d = 2×2"), "{e}");
    let mut bad_w = Mat::<f64>::zeros(2, 2);
    bad_w[(1, 0)] = f64::INFINITY;
    let e = err(&ok, &bad_w, def());
    assert!(e.contains("trained W: entry (1, 0) is not finite"), "{e}");
    let e = err(
        &ok,
        &w,
        EquivalenceSettings {
            threshold: 0.0,
            ..def()
        },
    );
    assert!(e.contains("threshold = 0 must be in (0, 1)"), "{e}");
    let e = err(
        &[1.0 / 3.0; 6],
        &w,
        EquivalenceSettings {
            threshold: 0.4,
            ..def()
        },
    );
    assert!(e.contains("row 0 has no entry ≥ threshold 0.4"), "{e}");
    let e = attention_probabilities(&inst, &Mat::zeros(2, 3), 0)
        .unwrap_err()
        .to_string();
    assert!(e.contains("trained W is 2×3"), "{e}");
}
