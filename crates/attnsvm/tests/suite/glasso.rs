//! The token-group lasso of convex attention (spec Paper B, programs (9) and (12)) against
//! mathematical facts: the zero threshold β_max on both sides, the duality-gap certificate on
//! random instances, monotone FISTA, decoupling of vector outputs, closed forms (orthonormal
//! design; the spec's width example B-T2; the loss-factor example B5.4), and warm-started paths.

use attnsvm::data::Instance;
use attnsvm::solvers::glasso::{
    path, ConvexLoss, Glasso, GlassoProblem, GlassoSettings, GlassoSolution, Logistic, Squared,
    Status, PRINTED_LOSS_WEIGHT,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

fn gaussians(rng: &mut ChaCha8Rng, len: usize) -> Vec<f64> {
    (0..len)
        .map(|_| rng.sample::<f64, _>(StandardNormal))
        .collect()
}

/// Tokens `N×n×d` and targets `N×c`: real targets (squared) or signs (logistic).
fn data(
    seed: u64,
    (nn, n, d, c): (usize, usize, usize, usize),
    signs: bool,
) -> (Vec<f64>, Vec<f64>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let x = gaussians(&mut rng, nn * n * d);
    let mut y = gaussians(&mut rng, nn * c);
    if signs {
        y.iter_mut()
            .for_each(|v| *v = if *v >= 0.0 { 1.0 } else { -1.0 });
    }
    (x, y)
}

fn solve(p: &GlassoProblem, beta: f64) -> GlassoSolution {
    Glasso::new(p, beta, GlassoSettings::default())
        .unwrap()
        .solve()
}

fn problem<'a>(
    x: &'a [f64],
    y: &[f64],
    dims: (usize, usize, usize, usize),
    logistic: bool,
) -> GlassoProblem<'a> {
    let (nn, n, d, c) = dims;
    if logistic {
        GlassoProblem::new((nn, n, d), x, y.to_vec(), c, Logistic).unwrap()
    } else {
        GlassoProblem::new((nn, n, d), x, y.to_vec(), c, Squared).unwrap()
    }
}

fn dist(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(u, v)| (u - v) * (u - v))
        .sum::<f64>()
        .sqrt()
}

#[test]
fn beta_max_matches_the_squared_loss_formula_and_scales_with_the_loss_weight() {
    let dims = (12, 5, 3, 1);
    let (x, y) = data(1, dims, false);
    let p = problem(&x, &y, dims, false);
    // β_max = max_k ‖Σ_i ∂L(0, y_i) x_ik‖ = max_k ‖Σ_i 2 y_i x_ik‖ for (ŷ − y)² (spec B3).
    let expect = (0..5)
        .map(|k| {
            (0..3)
                .map(|f| {
                    let s: f64 = (0..12).map(|i| 2.0 * y[i] * x[(i * 5 + k) * 3 + f]).sum();
                    s * s
                })
                .sum::<f64>()
                .sqrt()
        })
        .fold(0.0, f64::max);
    assert!((p.beta_max() - expect).abs() <= 1e-12 * expect);
    let printed = problem(&x, &y, dims, false)
        .with_loss_weight(PRINTED_LOSS_WEIGHT)
        .unwrap();
    assert!((printed.beta_max() - 0.5 * expect).abs() <= 1e-12 * expect);
}

#[test]
fn z_is_zero_iff_beta_at_least_beta_max() {
    for (seed, logistic, c) in [(2, false, 1), (3, true, 1), (4, false, 2), (5, true, 3)] {
        let dims = (15, 6, 3, c);
        let (x, y) = data(seed, dims, logistic);
        let p = problem(&x, &y, dims, logistic);
        let bmax = p.beta_max();
        for factor in [1.0, 1.0 + 1e-9, 2.0] {
            let sol = solve(&p, factor * bmax);
            assert_eq!(sol.status, Status::Solved);
            assert!(sol.z.iter().all(|&v| v == 0.0), "β = {factor}·β_max");
            assert_eq!(sol.active_tokens, 0);
        }
        // Just below: exactly one group, the argmax of ‖∇f(0)‖, is active (spec B5.6) — also
        // when starting from a dense point.
        let g0 = p.gradient(&p.dloss(&vec![0.0; 15 * c]));
        let norms = p.group_norms(&g0);
        let argmax = (0..norms.len())
            .max_by(|&a, &b| norms[a].total_cmp(&norms[b]))
            .unwrap();
        let dense = vec![0.3; p.n_vars()];
        for warm in [None, Some(&dense)] {
            let mut s = Glasso::new(&p, (1.0 - 1e-3) * bmax, GlassoSettings::default()).unwrap();
            if let Some(z) = warm {
                s = s.with_warm_start(z).unwrap();
            }
            let sol = s.solve();
            assert_eq!(sol.status, Status::Solved);
            assert_eq!(sol.active_groups, 1, "seed {seed}");
            assert!(sol.row_norms[argmax] > 0.0);
        }
        // Above β_max from a dense warm start, the solver still lands exactly on zero.
        let sol = Glasso::new(&p, 1.5 * bmax, GlassoSettings::default())
            .unwrap()
            .with_warm_start(&dense)
            .unwrap()
            .solve();
        assert_eq!(sol.status, Status::Solved);
        assert_eq!(sol.active_groups, 0);
    }
}

#[test]
fn certificate_holds_on_random_instances() {
    for seed in 0..8u64 {
        let logistic = seed % 2 == 1;
        let c = 1 + (seed as usize / 2) % 2;
        let dims = (20 + seed as usize, 5, 3, c);
        let (x, y) = data(10 + seed, dims, logistic);
        let p = problem(&x, &y, dims, logistic);
        let beta = [0.05, 0.2, 0.6][seed as usize % 3] * p.beta_max();
        let sol = solve(&p, beta);
        let cert = sol.certificate;
        assert_eq!(sol.status, Status::Solved, "seed {seed}: {cert:?}");
        assert!(cert.rel_gap <= 1e-8);
        // Weak duality holds by construction, and the dual is an independent lower bound.
        assert!(cert.dual <= cert.primal + 1e-12 * cert.primal.abs());
        assert!((cert.primal - sol.objective).abs() <= 1e-12 * sol.objective);
        // KKT: zero rows have ‖∇_k f‖ ≤ β, active rows ∇_k f ≈ −β z_k/‖z_k‖.
        assert!(cert.kkt_inactive <= 1e-6 * beta, "seed {seed}: {cert:?}");
        assert!(cert.kkt_active <= 1e-3 * beta, "seed {seed}: {cert:?}");
        // No random nearby point is better than the gap allows.
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        for scale in [1e-3, 1e-1, 1.0] {
            let z: Vec<f64> = sol
                .z
                .iter()
                .zip(gaussians(&mut rng, p.n_vars()))
                .map(|(a, e)| a + scale * e)
                .collect();
            assert!(p.objective(&z, beta) >= cert.dual);
        }
    }
}

#[test]
fn objective_never_increases_along_fista() {
    let dims = (25, 6, 4, 1);
    for logistic in [false, true] {
        let (x, y) = data(30, dims, logistic);
        let p = problem(&x, &y, dims, logistic);
        let beta = 0.1 * p.beta_max();
        let sol = solve(&p, beta);
        let h = &sol.info.history;
        assert!(h.len() > 2);
        // Non-increasing up to the rounding of P (1e-14·|P|, documented).
        assert!(
            h.windows(2).all(|w| w[1] <= w[0] + 1e-14 * w[0].abs()),
            "logistic {logistic}"
        );
        assert_eq!(*h.last().unwrap(), sol.objective);
        assert!(sol.objective <= p.objective(&vec![0.0; p.n_vars()], beta));
        let mut rng = ChaCha8Rng::seed_from_u64(31);
        for _ in 0..5 {
            assert!(sol.objective <= p.objective(&gaussians(&mut rng, p.n_vars()), beta));
        }
    }
}

#[test]
fn vector_outputs_decouple_into_scalar_programs() {
    let (nn, n, d, c) = (18, 4, 3, 3);
    for logistic in [false, true] {
        let (x, y) = data(40, (nn, n, d, c), logistic);
        let joint = problem(&x, &y, (nn, n, d, c), logistic);
        let beta = 0.3 * joint.beta_max();
        let sol = solve(&joint, beta);
        assert_eq!(sol.status, Status::Solved);
        let mut sum = 0.0;
        for l in 0..c {
            let yl: Vec<f64> = (0..nn).map(|i| y[i * c + l]).collect();
            let single = problem(&x, &yl, (nn, n, d, 1), logistic);
            let s = solve(&single, beta);
            assert_eq!(s.status, Status::Solved);
            sum += s.objective;
            let block = &sol.z[l * n * d..(l + 1) * n * d];
            assert!(dist(block, &s.z) <= 1e-3 * (1.0 + s.penalty), "output {l}");
        }
        assert!((sum - sol.objective).abs() <= 1e-7 * sol.objective);
    }
}

#[test]
fn one_output_vector_program_is_the_scalar_program_of_an_instance() {
    let (nn, n, d) = (10, 3, 2);
    let (x, y) = data(50, (nn, n, d, 1), true);
    let inst = Instance::new((nn, n, d), x.clone(), None, y.clone(), vec![1.0; d], None).unwrap();
    let a = GlassoProblem::from_instance(&inst, Squared).unwrap();
    let b = GlassoProblem::new((nn, n, d), &x, y, 1, Squared).unwrap();
    let beta = 0.2 * a.beta_max();
    let (sa, sb) = (solve(&a, beta), solve(&b, beta));
    assert_eq!(sa.z, sb.z);
    assert_eq!(sa.objective, sb.objective);
}

/// Columns of `A` (N × nd) orthonormal: `‖Az − y‖² = ‖z − Aᵀy‖² + const`, so each row is the
/// group soft-threshold of `b = Aᵀy`: `z_k = (1 − β/(2‖b_k‖))₊ b_k`.
#[test]
fn orthonormal_design_has_the_closed_form_soft_threshold() {
    let (nn, n, d) = (20, 4, 3);
    let m = n * d;
    let mut rng = ChaCha8Rng::seed_from_u64(60);
    // Gram–Schmidt on m random columns of length N (twice, for orthogonality to rounding).
    let mut cols: Vec<Vec<f64>> = (0..m).map(|_| gaussians(&mut rng, nn)).collect();
    for j in 0..m {
        for _ in 0..2 {
            for i in 0..j {
                let proj: f64 = cols[i].iter().zip(&cols[j]).map(|(a, b)| a * b).sum();
                let ci = cols[i].clone();
                cols[j]
                    .iter_mut()
                    .zip(&ci)
                    .for_each(|(a, b)| *a -= proj * b);
            }
        }
        let nrm = cols[j].iter().map(|a| a * a).sum::<f64>().sqrt();
        cols[j].iter_mut().for_each(|a| *a /= nrm);
    }
    let x: Vec<f64> = (0..nn * m).map(|e| cols[e % m][e / m]).collect();
    let y = gaussians(&mut rng, nn);
    let p = GlassoProblem::new((nn, n, d), &x, y.clone(), 1, Squared).unwrap();
    let b: Vec<f64> = (0..m)
        .map(|j| (0..nn).map(|i| cols[j][i] * y[i]).sum())
        .collect();
    let bnorms: Vec<f64> = b
        .chunks(d)
        .map(|r| r.iter().map(|a| a * a).sum::<f64>().sqrt())
        .collect();
    // A β between the group norms, so some rows vanish and some do not.
    let mut sorted = bnorms.clone();
    sorted.sort_by(f64::total_cmp);
    let beta = sorted[1] + sorted[2]; // 2‖b_k‖ thresholds: rows 0 and 1 vanish
    let expect: Vec<f64> = b
        .chunks(d)
        .zip(&bnorms)
        .flat_map(|(r, &nb)| {
            let s = (1.0 - beta / (2.0 * nb)).max(0.0);
            r.iter().map(move |a| s * a)
        })
        .collect();
    let sol = solve(&p, beta);
    assert_eq!(sol.status, Status::Solved);
    assert!(dist(&sol.z, &expect) <= 1e-6, "{:?} vs {expect:?}", sol.z);
    assert_eq!(sol.active_groups, 2);
    let exact = p.objective(&expect, beta);
    assert!((sol.objective - exact).abs() <= 1e-9 * exact);
}

/// Spec B-T2: N = 2, n = 2, d = 1, X_1 = [1, 0]ᵀ, X_2 = [0, 1]ᵀ, y = (1, −1), squared loss,
/// β = 1/8. Each row solves `min (z ∓ 1)² + β|z|`: `|z| = 1 − β/2`, value `31/256`; total 62/256.
#[test]
fn width_example_of_the_spec_has_value_62_over_256() {
    let x = [1.0, 0.0, 0.0, 1.0];
    let p = GlassoProblem::new((2, 2, 1), &x, vec![1.0, -1.0], 1, Squared).unwrap();
    let sol = solve(&p, 0.125);
    assert_eq!(sol.status, Status::Solved);
    assert!((sol.objective - 62.0 / 256.0).abs() <= 1e-12);
    assert!((sol.z[0] - 15.0 / 16.0).abs() <= 1e-9 && (sol.z[1] + 15.0 / 16.0).abs() <= 1e-9);
}

/// Spec B5.4: zero data, target 1, β = 1: the printed weight gives ½, the corrected weight 1.
#[test]
fn loss_weight_flag_printed_half_vs_corrected_one() {
    let x = [0.0; 4];
    for (w, value) in [(1.0, 1.0), (PRINTED_LOSS_WEIGHT, 0.5)] {
        let p = GlassoProblem::new((1, 2, 2), &x, vec![1.0], 1, Squared)
            .unwrap()
            .with_loss_weight(w)
            .unwrap();
        let sol = solve(&p, 1.0);
        assert_eq!(sol.status, Status::Solved);
        assert_eq!(sol.objective, value);
    }
}

#[test]
fn warm_started_path_equals_cold_solves() {
    // N > nd and the squared loss: strongly convex, so the optimum is unique and Z can be compared.
    let dims = (40, 5, 3, 1);
    let (x, y) = data(70, dims, false);
    let p = problem(&x, &y, dims, false);
    let bmax = p.beta_max();
    let betas: Vec<f64> = (0..8).map(|j| bmax * 1.2 * 0.5f64.powi(j)).collect();
    let sols = path(&p, &betas, &GlassoSettings::default()).unwrap();
    assert_eq!(sols[0].active_tokens, 0);
    assert_eq!(sols.last().unwrap().active_tokens, 5);
    for (sol, &beta) in sols.iter().zip(&betas) {
        assert_eq!(sol.status, Status::Solved);
        let cold = solve(&p, beta);
        assert!((sol.objective - cold.objective).abs() <= 2e-8 * cold.objective);
        assert!(dist(&sol.z, &cold.z) <= 1e-3 * (1.0 + cold.penalty));
    }
    // The training loss does not increase as β decreases (up to the certified tolerance).
    for w in sols.windows(2) {
        assert!(w[1].loss <= w[0].loss + 1e-7 * w[0].objective);
    }
    // Logistic path: objectives equal cold solves too.
    let (x, y) = data(71, dims, true);
    let p = problem(&x, &y, dims, true);
    let betas: Vec<f64> = (0..5).map(|j| p.beta_max() * 0.5f64.powi(j)).collect();
    for (sol, &beta) in path(&p, &betas, &GlassoSettings::default())
        .unwrap()
        .iter()
        .zip(&betas)
    {
        let cold = solve(&p, beta);
        assert_eq!(sol.status, Status::Solved);
        assert!((sol.objective - cold.objective).abs() <= 2e-8 * cold.objective);
    }
}

#[test]
fn invalid_inputs_are_errors() {
    let x = [1.0; 6];
    assert!(GlassoProblem::new((1, 2, 3), &x, vec![0.5], 1, Logistic).is_err());
    assert!(GlassoProblem::new((1, 2, 2), &x, vec![1.0], 1, Squared).is_err());
    let p = GlassoProblem::new((1, 2, 3), &x, vec![0.5], 1, Squared).unwrap();
    assert!(Glasso::new(&p, 0.0, GlassoSettings::default()).is_err());
    assert!(Glasso::new(&p, f64::NAN, GlassoSettings::default()).is_err());
    let bad = GlassoSettings {
        tol: 0.0,
        ..GlassoSettings::default()
    };
    assert!(Glasso::new(&p, 1.0, bad).is_err());
    assert!(path(&p, &[1.0, -1.0], &GlassoSettings::default()).is_err());
    assert_eq!(Squared.name(), "squared");
}

/// The certificate rests on the conjugates: Fenchel–Young is tight at the derivative,
/// `L(u) + L*(L'(u)) = u·L'(u)`, and `L(u) + L*(s) ≥ u·s` for every `s`.
#[test]
fn loss_conjugates_satisfy_fenchel_young() {
    let losses: [(&dyn ConvexLoss, f64); 3] =
        [(&Squared, 0.7), (&Logistic, 1.0), (&Logistic, -1.0)];
    for (loss, y) in losses {
        for u in [-30.0, -2.0, -0.3, 0.0, 0.5, 3.0, 30.0] {
            let g = loss.derivative(u, y);
            let tight = loss.value(u, y) + loss.conjugate(g, y).unwrap() - u * g;
            assert!(tight.abs() <= 1e-12, "{} u = {u}: {tight}", loss.name());
            for s in [-0.9, -0.5, -0.1, 0.0, 0.2, 0.6, 0.95] {
                let fy = loss.value(u, y) + loss.conjugate(s, y).unwrap() - u * s;
                assert!(fy >= -1e-12, "{} u = {u}, s = {s}", loss.name());
            }
        }
    }
}

/// Real-valued labels: an `Instance` built field by field is accepted for the squared loss only.
#[test]
fn real_valued_labels_are_accepted_by_the_squared_loss_only() {
    let (nn, n, d) = (6, 2, 2);
    let (x, y) = data(80, (nn, n, d, 1), false);
    let inst = Instance {
        n: nn,
        t: n,
        d,
        x,
        z: None,
        y,
        v: vec![0.0; d],
        alpha: None,
    };
    let p = GlassoProblem::from_instance(&inst, Squared).unwrap();
    assert_eq!(solve(&p, 0.1 * p.beta_max()).status, Status::Solved);
    assert!(GlassoProblem::from_instance(&inst, Logistic).is_err());
}
