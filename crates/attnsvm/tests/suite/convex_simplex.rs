//! The non-convex simplex-attention baseline (spec `rates-and-convex.md`, Paper B, model (8),
//! B5.3): the sort-based simplex projection against its optimality conditions and a brute force
//! over supports, the gradient against central differences, monotone projected-gradient
//! training, and the convex optimum of (9) as a lower bound of every trained value of (8).

use attnsvm::solvers::glasso::recover::{heads_to_z, nonconvex_objective, recover_heads, Head};
use attnsvm::solvers::glasso::simplex::{
    objective_and_gradient, project_simplex, random_heads, train, train_from, SimplexSettings,
    SimplexStatus,
};
use attnsvm::solvers::glasso::{Glasso, GlassoProblem, GlassoSettings, Logistic, Squared, Status};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

fn gaussians(rng: &mut ChaCha8Rng, len: usize) -> Vec<f64> {
    (0..len)
        .map(|_| rng.sample::<f64, _>(StandardNormal))
        .collect()
}

fn uniform_simplex(rng: &mut ChaCha8Rng, n: usize) -> Vec<f64> {
    let e: Vec<f64> = (0..n).map(|_| -(1.0 - rng.random::<f64>()).ln()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|v| v / s).collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(u, v)| u * v).sum()
}

fn sq_dist(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(u, v)| (u - v) * (u - v)).sum()
}

/// The projection by enumeration of supports: on a support `S` the minimizer of `‖x − p‖²`
/// over `{Σ p = 1}` is `p_S = x_S − (Σ x_S − 1)/|S|`; keep the best nonnegative one.
fn brute_force_projection(x: &[f64]) -> Vec<f64> {
    let n = x.len();
    let mut best: Option<(f64, Vec<f64>)> = None;
    for mask in 1u32..(1 << n) {
        let support: Vec<usize> = (0..n).filter(|&k| mask >> k & 1 == 1).collect();
        let shift = (support.iter().map(|&k| x[k]).sum::<f64>() - 1.0) / support.len() as f64;
        let mut p = vec![0.0; n];
        for &k in &support {
            p[k] = x[k] - shift;
        }
        if p.iter().all(|&v| v >= 0.0) {
            let dist = sq_dist(x, &p);
            if best.as_ref().is_none_or(|(b, _)| dist < *b) {
                best = Some((dist, p));
            }
        }
    }
    best.unwrap().1
}

#[test]
fn the_projection_lands_on_the_simplex_is_idempotent_and_satisfies_the_variational_inequality() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for trial in 0..200 {
        let n = 1 + trial % 7;
        let scale = [0.1, 1.0, 10.0][trial % 3];
        let x: Vec<f64> = gaussians(&mut rng, n).iter().map(|v| scale * v).collect();
        let p = project_simplex(&x);
        assert!(p.iter().all(|&v| v >= 0.0), "{p:?}");
        assert!((p.iter().sum::<f64>() - 1.0).abs() <= 1e-14 * n as f64);
        let pp = project_simplex(&p);
        assert!(
            sq_dist(&p, &pp).sqrt() <= 1e-15 * n as f64,
            "{p:?} vs {pp:?}"
        );
        // ⟨x − P(x), y − P(x)⟩ ≤ 0 for every y ∈ Δ: random points and the vertices.
        let r: Vec<f64> = x.iter().zip(&p).map(|(a, b)| a - b).collect();
        let tol = 1e-13 * (1.0 + dot(&x, &x).sqrt());
        for _ in 0..20 {
            let y = uniform_simplex(&mut rng, n);
            let d: Vec<f64> = y.iter().zip(&p).map(|(a, b)| a - b).collect();
            assert!(dot(&r, &d) <= tol);
        }
        for k in 0..n {
            let vi = dot(&r, &p.iter().map(|v| -v).collect::<Vec<_>>()) + r[k];
            assert!(vi <= tol, "vertex {k}: {vi}");
        }
        assert!(sq_dist(&p, &brute_force_projection(&x)).sqrt() <= 1e-13 * (1.0 + scale));
    }
    // Points already on the simplex stay, vertices included; ties are handled.
    assert_eq!(project_simplex(&[0.0, 1.0, 0.0]), vec![0.0, 1.0, 0.0]);
    assert_eq!(project_simplex(&[3.0, 3.0]), vec![0.5, 0.5]);
}

fn instance(seed: u64, (nn, n, d): (usize, usize, usize)) -> (Vec<f64>, Vec<f64>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (gaussians(&mut rng, nn * n * d), gaussians(&mut rng, nn))
}

fn signs(y: &[f64]) -> Vec<f64> {
    y.iter()
        .map(|&v| if v >= 0.0 { 1.0 } else { -1.0 })
        .collect()
}

#[test]
fn the_gradient_matches_central_differences() {
    let (nn, n, d, h) = (9, 4, 3, 3);
    let (x, y) = instance(2, (nn, n, d));
    let squared = GlassoProblem::new((nn, n, d), &x, y.clone(), 1, Squared).unwrap();
    let logistic = GlassoProblem::new((nn, n, d), &x, signs(&y), 1, Logistic).unwrap();
    let beta = 0.3;
    let eps = 1e-6;
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for p in [&squared, &logistic] {
        let heads = random_heads(n, d, h, 0.7, 4);
        let (f, grad) = objective_and_gradient(p, &heads, beta).unwrap();
        assert_eq!(f, nonconvex_objective(p, &heads, beta).unwrap());
        let value = |hs: &[Head]| nonconvex_objective(p, hs, beta).unwrap();
        let close = |fd: f64, an: f64| {
            assert!(
                (fd - an).abs() <= 1e-6 * (1.0 + an.abs()),
                "{}: fd {fd} vs analytic {an}",
                p.loss().name()
            )
        };
        for j in 0..h {
            for f_ in 0..d {
                let (mut a, mut b) = (heads.clone(), heads.clone());
                a[j].value[f_] += eps;
                b[j].value[f_] -= eps;
                close((value(&a) - value(&b)) / (2.0 * eps), grad[j].value[f_]);
            }
            let (mut a, mut b) = (heads.clone(), heads.clone());
            a[j].output += eps;
            b[j].output -= eps;
            close((value(&a) - value(&b)) / (2.0 * eps), grad[j].output);
            // Directions e_a − e_b and random zero-sum ones keep w_j in the (open) simplex.
            for _ in 0..4 {
                let raw = gaussians(&mut rng, n);
                let mean = raw.iter().sum::<f64>() / n as f64;
                let dir: Vec<f64> = raw.iter().map(|v| v - mean).collect();
                let (mut a, mut b) = (heads.clone(), heads.clone());
                for (k, dk) in dir.iter().enumerate() {
                    a[j].attention[k] += eps * dk;
                    b[j].attention[k] -= eps * dk;
                }
                assert!(a[j]
                    .attention
                    .iter()
                    .chain(&b[j].attention)
                    .all(|&w| w > 0.0));
                close(
                    (value(&a) - value(&b)) / (2.0 * eps),
                    dot(&grad[j].attention, &dir),
                );
            }
        }
    }
}

#[test]
fn training_decreases_the_objective_monotonically() {
    let (nn, n, d) = (25, 5, 3);
    let (x, y) = instance(5, (nn, n, d));
    let squared = GlassoProblem::new((nn, n, d), &x, y.clone(), 1, Squared).unwrap();
    let logistic = GlassoProblem::new((nn, n, d), &x, signs(&y), 1, Logistic).unwrap();
    for p in [&squared, &logistic] {
        let beta = 0.2 * p.beta_max();
        for (seed, h) in [(0, 1), (1, 3), (2, 6)] {
            let settings = SimplexSettings {
                seed,
                max_iter: 2000,
                ..SimplexSettings::default()
            };
            let sol = train(p, beta, h, &settings).unwrap();
            assert_ne!(sol.status, SimplexStatus::NumericalError);
            assert_eq!(sol.history.len(), sol.iterations + 1);
            assert!(
                sol.history.windows(2).all(|w| w[1] <= w[0]),
                "{:?}",
                sol.history
            );
            assert!(sol.objective < sol.history[0]);
            assert_eq!(sol.objective, *sol.history.last().unwrap());
            assert_eq!(
                sol.objective,
                nonconvex_objective(p, &sol.heads, beta).unwrap()
            );
            for hd in &sol.heads {
                assert!(hd.attention.iter().all(|&w| w >= 0.0));
                assert!((hd.attention.iter().sum::<f64>() - 1.0).abs() <= 1e-12);
            }
        }
    }
}

/// B5.3 on one instance: the convex optimum minus its certified gap lies below the trained value
/// of (8) and below (8) at the heads mapped to `Z`. Returns the relative gaps
/// `(F_trained − P*)/P*` per run, for the report.
fn lower_bound_holds(p: &GlassoProblem, beta: f64, heads: &[usize], seeds: &[u64]) -> Vec<f64> {
    let conv = Glasso::new(p, beta, GlassoSettings::default())
        .unwrap()
        .solve();
    assert_eq!(conv.status, Status::Solved);
    let lower = conv.objective - conv.certificate.gap;
    let mut gaps = Vec::new();
    for &h in heads {
        for &seed in seeds {
            let settings = SimplexSettings {
                seed,
                ..SimplexSettings::default()
            };
            let sol = train(p, beta, h, &settings).unwrap();
            let z = heads_to_z(p.n_tokens, p.d, &sol.heads);
            let at_z = p.objective(&z, beta);
            assert!(lower <= at_z, "h {h} seed {seed}: {lower} vs {at_z}");
            assert!(lower <= sol.objective, "h {h} seed {seed}");
            assert!(at_z <= sol.objective * (1.0 + 1e-14));
            let rel = (sol.objective - conv.objective) / conv.objective;
            println!(
                "{} β/β_max {:.2} active {} h {h} seed {seed}: P* {:.10} F {:.10} rel gap {rel:.3e} ({:?}, {} it)",
                p.loss().name(),
                beta / p.beta_max(),
                conv.active_tokens,
                conv.objective,
                sol.objective,
                sol.status,
                sol.iterations
            );
            gaps.push(rel);
        }
    }
    // Started from the Proposition-1 heads of Z*, training stays at the optimum value.
    let init = recover_heads(p, &conv.z).unwrap();
    let sol = train_from(p, beta, init, &SimplexSettings::default()).unwrap();
    assert!(lower <= sol.objective && sol.objective <= conv.objective * (1.0 + 1e-12));
    gaps
}

#[test]
fn the_convex_optimum_is_a_lower_bound_of_every_trained_nonconvex_value() {
    let (nn, n, d) = (20, 5, 3);
    for seed in [6, 7] {
        let (x, y) = instance(seed, (nn, n, d));
        let squared = GlassoProblem::new((nn, n, d), &x, y.clone(), 1, Squared).unwrap();
        let logistic = GlassoProblem::new((nn, n, d), &x, signs(&y), 1, Logistic).unwrap();
        for p in [&squared, &logistic] {
            for ratio in [0.5, 0.1] {
                let beta = ratio * p.beta_max();
                let gaps = lower_bound_holds(p, beta, &[1, 2, n, n + 3], &[0, 1, 2]);
                let best = gaps.iter().copied().fold(f64::INFINITY, f64::min);
                println!("best relative gap {best:.3e}");
            }
        }
    }
}

#[test]
fn one_head_stays_above_the_width_counterexample_bound() {
    // Spec B-T2 / B5.3: N = 2, n = 2, d = 1, X_1 = [1, 0]ᵀ, X_2 = [0, 1]ᵀ, y = (1, −1), squared
    // loss, β = 1/8. The convex optimum is ≈ 0.242; every 1-head value of (8) is ≥ 1.
    let x = [1.0, 0.0, 0.0, 1.0];
    let p = GlassoProblem::new((2, 2, 1), &x, vec![1.0, -1.0], 1, Squared).unwrap();
    let beta = 0.125;
    let conv = Glasso::new(&p, beta, GlassoSettings::default())
        .unwrap()
        .solve();
    let lower = conv.objective - conv.certificate.gap;
    for seed in 0..4 {
        let settings = SimplexSettings {
            seed,
            ..SimplexSettings::default()
        };
        let one = train(&p, beta, 1, &settings).unwrap();
        let two = train(&p, beta, 2, &settings).unwrap();
        println!(
            "width example seed {seed}: P* {:.10} h=1 {:.10} h=2 {:.10}",
            conv.objective, one.objective, two.objective
        );
        assert!(one.objective >= 1.0);
        assert!(lower <= two.objective && lower <= one.objective);
    }
}
