//! Attention heads from the token group lasso (spec `rates-and-convex.md`, Paper B, B2–B3, B5.1,
//! B5.2, B5.7): Proposition 1 with the corrected indexing (one-hot heads that reproduce the
//! predictions and whose objective (8) equals the convex objective (9)), the map from heads to `Z`
//! and its norm chain, and the Carathéodory reduction to at most `N + 1` active tokens. Also the
//! fused pass of the solver (`A·Z` and `Aᵀh` in one pass) against the two separate products.

use attnsvm::solvers::glasso::recover::{
    caratheodory, head_predictions, heads_to_z, nonconvex_objective, recover_heads, Head,
};
use attnsvm::solvers::glasso::{Glasso, GlassoProblem, GlassoSettings, Squared, Status};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

fn gaussians(rng: &mut ChaCha8Rng, len: usize) -> Vec<f64> {
    (0..len)
        .map(|_| rng.sample::<f64, _>(StandardNormal))
        .collect()
}

fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(u, v)| (u - v).abs())
        .fold(0.0, f64::max)
}

fn max_abs(a: &[f64]) -> f64 {
    a.iter().map(|v| v.abs()).fold(0.0, f64::max)
}

fn row_norms(z: &[f64], d: usize) -> Vec<f64> {
    z.chunks(d)
        .map(|r| r.iter().map(|v| v * v).sum::<f64>().sqrt())
        .collect()
}

#[test]
fn recovered_heads_are_one_hot_reproduce_the_predictions_and_the_convex_objective() {
    let (nn, n, d) = (30, 7, 3);
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let x = gaussians(&mut rng, nn * n * d);
    let y = gaussians(&mut rng, nn);
    let p = GlassoProblem::new((nn, n, d), &x, y, 1, Squared).unwrap();
    for ratio in [0.9, 0.3, 0.05] {
        let beta = ratio * p.beta_max();
        let sol = Glasso::new(&p, beta, GlassoSettings::default())
            .unwrap()
            .solve();
        assert_eq!(sol.status, Status::Solved);
        let heads = recover_heads(&p, &sol.z).unwrap();
        assert_eq!(heads.len(), sol.active_tokens);
        // Each head attends to exactly one token: the support index (e_k, not e_j).
        let support: Vec<usize> = (0..n).filter(|&k| sol.row_norms[k] > 0.0).collect();
        let tokens: Vec<usize> = heads.iter().map(|h| h.one_hot_token().unwrap()).collect();
        assert_eq!(tokens, support);
        // Predictions, evaluated head by head from the tokens.
        let f = head_predictions(&p, &heads).unwrap();
        let scale = max_abs(&sol.predictions).max(1.0);
        assert!(max_abs_diff(&f, &sol.predictions) <= 1e-13 * scale);
        // (β/2)(‖v‖² + o²) = β‖z_k‖ per head: objective (8) = objective (9) with w = 1.
        let nonconvex = nonconvex_objective(&p, &heads, beta).unwrap();
        assert!(
            (nonconvex - sol.objective).abs() <= 1e-13 * sol.objective,
            "{nonconvex} vs {}",
            sol.objective
        );
        // And the heads map back to Z.
        assert!(
            max_abs_diff(&heads_to_z(n, d, &heads), &sol.z) <= 1e-15 * max_abs(&sol.z).max(1.0)
        );
    }
}

#[test]
fn heads_map_to_z_with_the_same_predictions_and_a_lower_convex_objective() {
    let (nn, n, d, h) = (20, 5, 4, 6);
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    let x = gaussians(&mut rng, nn * n * d);
    let y = gaussians(&mut rng, nn);
    let p = GlassoProblem::new((nn, n, d), &x, y, 1, Squared).unwrap();
    let beta = 0.2 * p.beta_max();
    let optimum = Glasso::new(&p, beta, GlassoSettings::default())
        .unwrap()
        .solve();
    for trial in 0..5 {
        // Random feasible heads: w_j on the simplex (normalized exponentials), v_j, o_j Gaussian.
        let heads: Vec<Head> = (0..h)
            .map(|_| {
                let e: Vec<f64> = (0..n).map(|_| rng.random::<f64>().ln().abs()).collect();
                let s: f64 = e.iter().sum();
                Head {
                    attention: e.iter().map(|v| v / s).collect(),
                    value: gaussians(&mut rng, d).iter().map(|v| 0.3 * v).collect(),
                    output: 0.5 * rng.sample::<f64, _>(StandardNormal),
                }
            })
            .collect();
        let z = heads_to_z(n, d, &heads);
        let f = head_predictions(&p, &heads).unwrap();
        let pz = p.predict(&z);
        assert!(
            max_abs_diff(&f, &pz) <= 1e-12 * max_abs(&pz).max(1.0),
            "trial {trial}"
        );
        // Σ_k ‖z_k‖ ≤ Σ_j |o_j|‖v_j‖ ≤ ½ Σ_j (‖v_j‖² + o_j²).
        let group: f64 = row_norms(&z, d).iter().sum();
        let products: f64 = heads
            .iter()
            .map(|hd| hd.output.abs() * row_norms(&hd.value, d)[0])
            .sum();
        let halves: f64 = heads
            .iter()
            .map(|hd| 0.5 * (hd.value.iter().map(|v| v * v).sum::<f64>() + hd.output * hd.output))
            .sum();
        assert!(group <= products * (1.0 + 1e-14) && products <= halves * (1.0 + 1e-14));
        let nonconvex = nonconvex_objective(&p, &heads, beta).unwrap();
        assert!(p.objective(&z, beta) <= nonconvex * (1.0 + 1e-14));
        // The convex optimum (certified within its gap) is below any value of (8).
        assert!(optimum.objective - optimum.certificate.gap <= nonconvex);
    }
}

#[test]
fn caratheodory_leaves_at_most_n_plus_one_tokens_and_keeps_the_objective() {
    // N = 2 samples, n = 8 tokens that are 4 copies each of two tokens: the solver, started at 0,
    // keeps the copies equal, so 4 or 8 rows are active; some optimum has at most N + 1 = 3.
    let (nn, n, d) = (2, 8, 2);
    let mut rng = ChaCha8Rng::seed_from_u64(13);
    let base = gaussians(&mut rng, nn * 2 * d);
    let x: Vec<f64> = (0..nn * n * d)
        .map(|j| {
            let (i, k, f) = (j / (n * d), (j / d) % n, j % d);
            base[(i * 2 + k % 2) * d + f]
        })
        .collect();
    let y = vec![1.0, -0.7];
    let p = GlassoProblem::new((nn, n, d), &x, y, 1, Squared).unwrap();
    let beta = 0.05 * p.beta_max();
    let sol = Glasso::new(&p, beta, GlassoSettings::default())
        .unwrap()
        .solve();
    assert_eq!(sol.status, Status::Solved);
    assert!(
        sol.active_tokens > nn + 1,
        "the copies share the weight: {:?}",
        sol.row_norms
    );
    let reduced = caratheodory(&p, &sol.z).unwrap();
    let norms = row_norms(&reduced, d);
    let active = norms.iter().filter(|&&r| r > 0.0).count();
    assert!(active <= nn + 1, "{active} active rows: {norms:?}");
    let scale = max_abs(&sol.predictions).max(1.0);
    assert!(max_abs_diff(&p.predict(&reduced), &sol.predictions) <= 1e-12 * scale);
    let (before, after) = (sol.penalty, norms.iter().sum::<f64>());
    assert!(
        (after - before).abs() <= 1e-12 * before,
        "{after} vs {before}"
    );
    let obj = p.objective(&reduced, beta);
    assert!((obj - sol.objective).abs() <= 1e-12 * sol.objective);
    // Still certified: same predictions, so the same dual point, and the same primal value.
    let cert = p.certify(&reduced, &p.predict(&reduced), beta);
    assert!(cert.rel_gap <= GlassoSettings::default().tol);
    // Each kept row is a nonnegative multiple of the original one.
    for k in 0..n {
        for f in 0..d {
            assert!(reduced[k * d + f] * sol.z[k * d + f] >= 0.0);
        }
    }
    // The heads of the reduced Z: at most N + 1, one-hot, objective (8) = objective (9).
    let heads = recover_heads(&p, &reduced).unwrap();
    assert!(heads.len() <= nn + 1 && heads.iter().all(|h| h.one_hot_token().is_some()));
    let nonconvex = nonconvex_objective(&p, &heads, beta).unwrap();
    assert!((nonconvex - obj).abs() <= 1e-13 * obj);
    // Already sparse: nothing to do.
    assert_eq!(caratheodory(&p, &reduced).unwrap(), reduced);
}

#[test]
fn the_fused_pass_equals_the_two_products() {
    let (nn, n, d, c) = (300, 4, 5, 2);
    let mut rng = ChaCha8Rng::seed_from_u64(14);
    let x = gaussians(&mut rng, nn * n * d);
    let y = gaussians(&mut rng, nn * c);
    let p = GlassoProblem::new((nn, n, d), &x, y, c, Squared).unwrap();
    let z = gaussians(&mut rng, c * n * d);
    let coef = |j: usize, q: f64| q * q - 0.5 * j as f64;
    let (pred, grad) = p.predict_and_gradient(&z, coef);
    let pred2 = p.predict(&z);
    assert_eq!(pred, pred2);
    let h: Vec<f64> = pred2.iter().enumerate().map(|(j, &q)| coef(j, q)).collect();
    let grad2 = p.gradient(&h);
    assert!(max_abs_diff(&grad, &grad2) <= 1e-12 * max_abs(&grad2));
}

#[test]
fn recovery_rejects_vector_outputs_and_wrong_sizes() {
    let x = vec![1.0; 2 * 3 * 2];
    let p = GlassoProblem::new((2, 3, 2), &x, vec![1.0; 4], 2, Squared).unwrap();
    assert!(recover_heads(&p, &[0.0; 12]).is_err());
    let p = GlassoProblem::new((2, 3, 2), &x, vec![1.0; 2], 1, Squared).unwrap();
    assert!(recover_heads(&p, &[0.0; 5]).is_err());
    assert!(caratheodory(&p, &[0.0; 7]).is_err());
}
