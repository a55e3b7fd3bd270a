//! "Max-Margin Token Selection" (spec `tf-as-svm.md` §2.7, §4.6–4.9): the prompt model's gradients
//! (finite differences; exact direction deep in saturation) and checks 11–15 and 20 at quick sizes.

use attnsvm::experiments::max_margin::{
    self as mm,
    programs::{corr, locally_optimal, p_relax, p_svm, v_svm, w_given_p},
};
use attnsvm::model::prompt::PromptModel;
use attnsvm::model::{softplus, Loss};
use attnsvm::solvers::svm::Status;
use faer::Mat;
use rand::{Rng, SeedableRng};

fn gaussian(rng: &mut impl Rng, k: usize) -> Vec<f64> {
    (0..k)
        .map(|_| rng.sample::<f64, _>(rand_distr::StandardNormal))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Gradients

#[test]
fn gradients_match_central_finite_differences() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    for loss in [Loss::Logistic, Loss::Exp, Loss::Corr] {
        for _ in 0..4 {
            let (n, t, d) = (3, 5, 4);
            let x = gaussian(&mut rng, n * t * d);
            let wv = gaussian(&mut rng, d * d);
            let w = Mat::from_fn(d, d, |r, c| 0.5 * wv[r * d + c]);
            let y: Vec<f64> = (0..n)
                .map(|i| if i % 2 == 0 { 1.0 } else { -1.0 })
                .collect();
            let m = PromptModel::new((n, t, d), x, &w, y, loss).unwrap();
            let p: Vec<f64> = gaussian(&mut rng, d).iter().map(|a| 0.5 * a).collect();
            let v = gaussian(&mut rng, d);
            let e = m.evaluate(&p, &v);
            let (gp, gv) = (e.grad_p.value(), e.grad_v.value());
            let h = 1e-5;
            for (which, theta, g) in [(0, &p, &gp), (1, &v, &gv)] {
                let mut fd = vec![0.0; d];
                for j in 0..d {
                    let (mut a, mut b) = (theta.clone(), theta.clone());
                    a[j] += h;
                    b[j] -= h;
                    let (la, lb) = if which == 0 {
                        (m.evaluate(&a, &v).loss, m.evaluate(&b, &v).loss)
                    } else {
                        (m.evaluate(&p, &a).loss, m.evaluate(&p, &b).loss)
                    };
                    fd[j] = (la - lb) / (2.0 * h);
                }
                let err: f64 = (0..d)
                    .map(|j| (fd[j] - g[(j, 0)]).powi(2))
                    .sum::<f64>()
                    .sqrt();
                let nrm: f64 = fd.iter().map(|a| a * a).sum::<f64>().sqrt();
                assert!(
                    err <= 1e-6 * nrm.max(1e-3),
                    "{loss:?} {}: fd {fd:?} vs {g:?}",
                    ["p", "v"][which]
                );
            }
            // log L agrees with L where both are representable.
            if let Some(ll) = e.log_loss {
                assert!((ll - e.loss.ln()).abs() < 1e-12 * ll.abs().max(1.0));
            }
        }
    }
}

/// Keys `k_top = (0,1)`, `k_b = (−1, .5)`, `k_c = (−1.001, −1)` and p = (s, 0): logits 0, −s and
/// −1.001 s. Values (third coordinate) 1, 0.2, −0.5. For s ≫ 1 the pair (b, c) weighs e^{−s}
/// relative to the others, so to f64 precision
/// `−∇_p L ∝ (g_top − g_b)(k_top − k_b) + e^{−δ}(g_top − g_c)(k_top − k_c)`, δ = 0.001 s.
fn saturated_model() -> PromptModel {
    let x = vec![0.0, 1.0, 1.0, -1.0, 0.5, 0.2, -1.001, -1.0, -0.5];
    let w = Mat::from_fn(3, 3, |r, c| if r == c && r < 2 { 1.0 } else { 0.0 });
    PromptModel::new((1, 3, 3), x, &w, vec![1.0], Loss::Logistic).unwrap()
}

#[test]
fn the_direction_is_exact_deep_in_saturation() {
    let m = saturated_model();
    let v = [0.0, 0.0, 1.0];
    for s in [800.0, 1600.0, 20_000.0] {
        let e = m.evaluate(&[s, 0.0, 0.0], &v);
        // The plain value underflows (what f64 autograd would give), the direction does not.
        assert!(e.grad_p.value().norm_l2() == 0.0);
        let dir = e.grad_p.direction().expect("a finite direction");
        let delta: f64 = 0.001 * s;
        let (kb, kc) = ([1.0, 0.5], [1.001, 2.0]); // k_top − k_b, k_top − k_c
        let want: Vec<f64> = (0..2)
            .map(|j| -(0.8 * kb[j] + (-delta).exp() * 1.5 * kc[j]))
            .collect();
        let wn = want.iter().map(|a| a * a).sum::<f64>().sqrt();
        for j in 0..2 {
            assert!(
                (dir[(j, 0)] - want[j] / wn).abs() < 1e-12,
                "s = {s}: {:?} vs {want:?}",
                dir
            );
        }
        assert_eq!(dir[(2, 0)], 0.0);
        // log‖∇‖ = log σ(−u) + log s_top + log s_b + log‖0.8 k_b + e^{−δ}·1.5 k_c‖, u → 1.
        let want_log = -softplus(1.0) - s + wn.ln();
        assert!(
            (e.grad_p.log_norm() - want_log).abs() < 1e-12 * s,
            "{} vs {want_log}",
            e.grad_p.log_norm()
        );
        let ll = e.log_loss.unwrap();
        assert!((ll - softplus(-1.0).ln()).abs() < 1e-12);
    }
}

// ---------------------------------------------------------------------------------------------
// Programs (checks 12 and 20)

#[test]
fn check_12_printed_qp_values() {
    let r = mm::svm_values(true).unwrap();
    let pcost: Vec<f64> = r.printed.iter().map(|p| p.svm.half_sq_norm).collect();
    let want = [0.49505, 0.5, 0.31319, 17.0 / 18.0, 0.5];
    for (a, b) in pcost.iter().zip(want) {
        assert!((a - b).abs() <= 5e-6, "{pcost:?}");
    }
    // The exact minimizers that are known in closed form.
    let g = &r.printed[0].svm.solution;
    assert!((g[0] + 0.1 / 1.01).abs() < 1e-9 && (g[1] - 1.0 / 1.01).abs() < 1e-9);
    let j = &r.printed[3].svm.solution;
    assert!((j[0] - 4.0 / 3.0).abs() < 1e-9 && (j[1] - 1.0 / 3.0).abs() < 1e-9);
    let v = &r.v_joint.solution;
    assert!(v[0].abs() < 1e-9 && (v[1] - 1.0).abs() < 1e-9);
    for p in &r.printed {
        assert_eq!(p.svm.status, Status::Solved);
        assert!(p.svm.kkt_max < 1e-8, "{}: KKT {}", p.name, p.svm.kkt_max);
    }
    assert!(r.claims().iter().all(|c| c.held != Some(false)));
}

#[test]
fn check_20_w_p_equivalence() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(20);
    for seed in 0..10 {
        let (n, t, d) = (2, 3, 4);
        let x = gaussian(&mut rng, n * t * d);
        let p = gaussian(&mut rng, d);
        let alpha = [seed % t, (seed + 1) % t];
        let (w_mm, closed) = w_given_p((n, t, d), &x, &alpha, &p).unwrap();
        let diff = Mat::from_fn(d, d, |r, c| w_mm[(r, c)] - closed[(r, c)]);
        assert!(diff.norm_l2() <= 1e-6 * w_mm.norm_l2());
    }
    let r = mm::svm_values(true).unwrap();
    assert!(r.equivalence.iter().all(|e| e.rel_diff_keys <= 1e-6));
}

#[test]
fn relaxed_and_v_svm_are_the_programs_of_section_2_7() {
    let dims = (3, 2, 2);
    let x = mm::joint::tokens(false);
    let v = v_svm(dims, &x, &mm::joint::Y, &[1; 3]).unwrap();
    // Every margin ≥ 1, and the non-support input 3 has margin 1.5.
    assert!(v.margins.iter().all(|&m| m >= 1.0 - 1e-9));
    assert!((v.margins[2] - 1.5).abs() < 1e-9);
    let relax = p_relax(dims, &x, &[1; 3], &v).unwrap();
    assert_eq!(relax.rhs, vec![1.0, 1.0, 0.0]);
    assert!((relax.solution[0] - 1.0).abs() < 1e-8 && relax.solution[1].abs() < 1e-8);
    let full = p_svm(dims, &x, &[1; 3], None).unwrap();
    assert!((full.solution[0] - 1.25).abs() < 1e-8 && (full.solution[1] - 0.25).abs() < 1e-8);
    assert!((full.half_sq_norm - 0.8125).abs() < 1e-9);
}

// ---------------------------------------------------------------------------------------------
// Experiments at quick sizes (checks 11, 13, 14, 15)

#[test]
fn check_11_single_input_basins_and_local_optimality() {
    let r = mm::single_input(true).unwrap();
    let (t, f) = (&r.cases[0], &r.cases[1]);
    assert!(t.g_converge && !f.g_converge);
    let glob = [-0.1, 1.0, 0.0];
    for run in &t.runs {
        assert!(corr(&run.at(1000).unwrap().p, &glob) >= 0.9997);
    }
    for (k, run) in f.runs.iter().enumerate() {
        let target = if k < 4 { glob } else { [1.0, 0.0, 0.0] };
        assert!(
            corr(&run.at(1000).unwrap().p, &target) >= 0.9999,
            "init {k}"
        );
    }
    // α = 2 (token 1) is locally optimal only without the tie γ2 = γ3.
    assert_eq!(t.local_is_locally_optimal, Some(false));
    assert_eq!(f.local_is_locally_optimal, Some(true));
    let m = mm::single_input::model(true).unwrap();
    let g = p_svm((1, 3, 3), m.keys(), &[0], None).unwrap();
    assert_eq!(
        locally_optimal(&g, &m.scores(&mm::single_input::V), 3, &[0]),
        Some(true)
    );
    // NGD moves p by exactly η per step (ε = 0).
    let rec = &t.runs[2].records;
    for w in rec.windows(2) {
        let s: f64 = (0..3)
            .map(|j| (w[1].p[j] - w[0].p[j]).powi(2))
            .sum::<f64>()
            .sqrt();
        assert!((s - 0.1).abs() < 1e-12);
    }
    assert!(r.claims().iter().all(|c| c.held == Some(true)));
}

#[test]
fn check_13_ngd_vs_gd_growth() {
    let r = mm::multi_input(true).unwrap();
    let (ngd, gd) = (&r.ngd[2], &r.gd[2]);
    for k in 1..=200 {
        let nrm = ngd.at(k).unwrap().p_norm;
        assert!(
            nrm >= 0.095 * k as f64 && nrm <= 0.1 * k as f64 * (1.0 + 1e-12),
            "k = {k}: {nrm}"
        );
    }
    assert!(ngd.at(50).unwrap().prob_selected >= 0.99);
    let g = gd.at(1000).unwrap();
    assert!(g.p_norm < 6.0 && g.prob_selected < 0.996);
    for run in &r.ngd {
        assert!(run.at(1000).unwrap().corr_p[0] >= 0.997);
    }
    // The model's p^mm and the notebook's (W = I) one share their first two coordinates' direction.
    let (a, b) = (&r.p_mm.solution, &r.p_mm_identity.solution);
    assert!(corr(&a[..2], &b[..2]) > 1.0 - 1e-12 && a[2] == 0.0);
}

#[test]
fn check_14_joint_training_goes_to_v_mm_and_the_relaxed_p() {
    let r = mm::joint(true).unwrap();
    let (t, nt) = (&r.cases[0], &r.cases[1]);
    let (t1, n1) = (t.run.at(1000).unwrap(), nt.run.at(1000).unwrap());
    assert!(corr(&t1.p, &[4.0, 1.0]) >= 0.9999);
    assert!(corr(&n1.p, &[1.0, 0.0]) >= 0.9999);
    assert!((corr(&n1.p, &[1.25, 0.25]) - 0.981).abs() <= 0.001);
    assert!(corr(&t1.v, &[0.0, 1.0]) >= 0.9999 && corr(&n1.v, &[0.0, 1.0]) >= 0.9999);
    assert_eq!(t.v_mm.support_inputs(), vec![0, 1, 2]);
    assert_eq!(nt.v_mm.support_inputs(), vec![0, 1]);
}

#[test]
fn check_15_the_transient_depends_on_the_loss() {
    let r = mm::loss_dependence(true).unwrap();
    for run in &r.runs {
        let py = run.run.at(200).unwrap().p[1];
        if run.c >= 5.0 {
            match run.loss {
                Loss::Corr => assert!(py > 0.0, "C = {}", run.c),
                _ => assert!(py < 0.0, "C = {}", run.c),
            }
        }
        if run.loss == Loss::Logistic && run.c == 100.0 {
            assert!((run.run.at(200).unwrap().corr_p[0] - 0.707).abs() <= 0.01);
            assert!((run.run.at(1000).unwrap().corr_p[0] - 0.867).abs() <= 0.01);
        }
    }
    // C = 1 is symmetric: both losses go straight along p^mm.
    for run in r.runs.iter().filter(|x| x.c == 1.0) {
        assert!(run.run.last().p[1].abs() < 1e-12);
    }
}

#[test]
fn the_papers_epsilon_stalls_ngd_once_the_gradient_is_below_it() {
    use attnsvm::experiments::max_margin::training::{train, Refs, TrainOpts, PAPER_EPS};
    let m = mm::single_input::model(true).unwrap();
    let refs = Refs {
        alpha: &[0],
        p: &[],
        v: &[],
    };
    let v = mm::single_input::V;
    let exact = train(&m, &TrainOpts::default(), &[0.0; 3], &v, &refs);
    let opts = TrainOpts {
        eps_p: PAPER_EPS,
        ..TrainOpts::default()
    };
    let paper = train(&m, &opts, &[0.0; 3], &v, &refs);
    // The step is η‖∇‖/(‖∇‖ + ε): full length while ‖∇‖ ≫ ε, then it shrinks with ‖∇‖ ≈ e^{−gap}.
    let step = |t: &attnsvm::experiments::max_margin::training::Trajectory, k: usize| {
        let (a, b) = (&t.at(k).unwrap().p, &t.at(k + 1).unwrap().p);
        (0..3).map(|j| (a[j] - b[j]).powi(2)).sum::<f64>().sqrt()
    };
    let g0 = m.evaluate(&[0.0; 3], &v).grad_p.log_norm().exp();
    assert!((step(&paper, 0) - 0.1 * g0 / (g0 + PAPER_EPS)).abs() < 1e-15);
    // By step 999 ‖∇‖ ≪ ε: the step has shrunk well below η (and matches the formula).
    let g999 = m
        .evaluate(&paper.at(999).unwrap().p, &v)
        .grad_p
        .log_norm()
        .exp();
    assert!(g999 < 0.1 * PAPER_EPS, "{g999}");
    let s999 = step(&paper, 999);
    assert!((s999 - 0.1 * g999 / (g999 + PAPER_EPS)).abs() < 1e-12 * 0.1 && s999 < 0.01);
    assert!((step(&exact, 999) - 0.1).abs() < 1e-12);
    assert!(paper.last().p_norm < 0.5 * exact.last().p_norm);
}
