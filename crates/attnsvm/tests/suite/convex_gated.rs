//! Attention + gated ReLU, programs (13)–(14) of spec `rates-and-convex.md` (Paper B, B2, B5.11),
//! and head recovery for vector outputs (11)–(12): the lifted program's predictions against the
//! gated sum computed directly, all-open gates reducing (14) to (12), gates fixed by their
//! generators, recovered heads reproducing predictions and objective, and the convex optimum
//! bounding random gated heads from below.

use attnsvm::solvers::glasso::gated::{
    gated_heads_to_z, gated_objective, gated_predictions, recover_gated_heads, GatedHead, Gates,
};
use attnsvm::solvers::glasso::{
    Glasso, GlassoProblem, GlassoSettings, GlassoSolution, Logistic, Squared, Status,
};

use crate::common::random_vec as gaussians;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(u, v)| (u - v).abs())
        .fold(0.0, f64::max)
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(u, v)| u * v).sum()
}

fn solve(p: &GlassoProblem, beta: f64) -> GlassoSolution {
    let settings = GlassoSettings {
        tol: 1e-11,
        max_iter: 200_000,
        ..GlassoSettings::default()
    };
    let sol = Glasso::new(p, beta, settings).unwrap().solve();
    assert_eq!(sol.status, Status::Solved, "{}", sol.info.message);
    sol
}

#[test]
fn gates_follow_their_generators_and_the_lifted_program_is_the_gated_sum() {
    let (nn, n, d, m, c) = (25, 4, 3, 5, 2);
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let x = gaussians(&mut rng, nn * n * d);
    let gates = Gates::sample(&x, (nn, n, d), m, 11).unwrap();
    let (u1, u2) = gates.generators.clone().unwrap();
    let mut n_open = 0;
    for i in 0..nn {
        for j in 0..m {
            // u_1jᵀ X_i u_2j, computed as Σ_k Σ_f u1_k X_kf u2_f.
            let mut s = 0.0;
            for k in 0..n {
                for f in 0..d {
                    s += u1[j * n + k] * x[(i * n + k) * d + f] * u2[j * d + f];
                }
            }
            assert_eq!(gates.is_open(i, j), s >= 0.0);
            n_open += usize::from(s >= 0.0);
        }
    }
    // Random gates are neither all open nor all closed.
    assert!(n_open > 0 && n_open < nn * m, "{n_open} of {}", nn * m);
    // Rebuilding from the generators gives the same gates: they are a function of (u1, u2, X).
    assert_eq!(Gates::from_vectors(&x, (nn, n, d), u1, u2).unwrap(), gates);

    let lifted = gates.lift(&x, (nn, n, d)).unwrap();
    let y = gaussians(&mut rng, nn * c);
    let p = GlassoProblem::new((nn, m * n, d), &lifted, y, c, Squared).unwrap();
    let z = gaussians(&mut rng, p.n_vars());
    let pred = p.predict(&z);
    for i in 0..nn {
        for l in 0..c {
            let direct: f64 = (0..m)
                .filter(|&j| gates.is_open(i, j))
                .map(|j| {
                    let zj = &z[(l * m + j) * n * d..(l * m + j + 1) * n * d];
                    dot(&x[i * n * d..(i + 1) * n * d], zj)
                })
                .sum();
            assert!((pred[i * c + l] - direct).abs() <= 1e-12 * (1.0 + direct.abs()));
        }
    }
}

#[test]
fn all_open_gates_reduce_program_14_to_program_12() {
    let (nn, n, d, c) = (30, 5, 3, 2);
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let x = gaussians(&mut rng, nn * n * d);
    let y = gaussians(&mut rng, nn * c);
    let plain = GlassoProblem::new((nn, n, d), &x, y.clone(), c, Squared).unwrap();
    let beta = 0.3 * plain.beta_max();
    let s12 = solve(&plain, beta);

    // m = 1 open gate: the lifted tokens are the tokens, bit for bit.
    assert_eq!(Gates::open(nn, 1).lift(&x, (nn, n, d)).unwrap(), x);
    // m = 3 open gates: three copies of every token. Splitting z_k over the copies never lowers
    // the penalty (triangle inequality), so the optimum of (14) is the optimum of (12).
    let lifted = Gates::open(nn, 3).lift(&x, (nn, n, d)).unwrap();
    let gated = GlassoProblem::new((nn, 3 * n, d), &lifted, y, c, Squared).unwrap();
    assert_eq!(gated.beta_max(), plain.beta_max());
    let s14 = solve(&gated, beta);
    let slack = s12.certificate.gap + s14.certificate.gap + 1e-12 * s12.objective;
    assert!(
        (s14.objective - s12.objective).abs() <= slack,
        "(14) {} vs (12) {}",
        s14.objective,
        s12.objective
    );
    assert!(max_abs_diff(&s14.predictions, &s12.predictions) < 1e-4);
}

#[test]
fn recovered_gated_heads_are_one_hot_and_reproduce_predictions_and_objective() {
    let (nn, n, d, m, c) = (20, 4, 3, 3, 2);
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let x = gaussians(&mut rng, nn * n * d);
    let gates = Gates::sample(&x, (nn, n, d), m, 2).unwrap();
    let lifted = gates.lift(&x, (nn, n, d)).unwrap();
    let y: Vec<f64> = gaussians(&mut rng, nn * c)
        .iter()
        .map(|v| v.signum())
        .collect();
    for logistic in [false, true] {
        let p = if logistic {
            GlassoProblem::new((nn, m * n, d), &lifted, y.clone(), c, Logistic).unwrap()
        } else {
            GlassoProblem::new((nn, m * n, d), &lifted, y.clone(), c, Squared).unwrap()
        };
        let beta = 0.2 * p.beta_max();
        let sol = solve(&p, beta);
        assert!(sol.active_groups > 1);
        let heads = recover_gated_heads(&p, &gates, &sol.z).unwrap();
        // One head per nonzero group (the width of Theorems 2–3), each one-hot with one output.
        assert_eq!(heads.len(), sol.active_groups);
        for h in &heads {
            assert_eq!(h.attention.iter().filter(|&&a| a == 1.0).count(), 1);
            assert_eq!(h.attention.iter().filter(|&&a| a == 0.0).count(), n - 1);
            assert_eq!(h.output.iter().filter(|&&o| o != 0.0).count(), 1);
        }
        let pred = gated_predictions(&x, (nn, n, d), c, &gates, &heads).unwrap();
        let scale = sol.predictions.iter().fold(1.0f64, |a, v| a.max(v.abs()));
        assert!(max_abs_diff(&pred, &sol.predictions) <= 1e-12 * scale);
        let f13 = gated_objective(&p, &x, &gates, &heads, beta).unwrap();
        assert!((f13 - sol.objective).abs() <= 1e-12 * sol.objective.abs());
        // And back: the heads map to the same Z.
        let z = gated_heads_to_z((n, d, c), &gates, &heads);
        assert!(
            max_abs_diff(&z, &sol.z) <= 1e-13 * (1.0 + max_abs_diff(&sol.z, &vec![0.0; z.len()]))
        );
        // `recover` reports the same heads and check, and each head's token is its one-hot entry.
        let r = attnsvm::solvers::glasso::gated::recover(&p, &x, (nn, n, d), &gates, &sol).unwrap();
        assert_eq!(r.heads, heads);
        assert_eq!(
            r.max_prediction_difference,
            max_abs_diff(&pred, &sol.predictions)
        );
        assert_eq!(r.nonconvex_objective, f13);
        assert!(r.relative_objective_difference <= 1e-12);
        for h in &r.heads {
            assert_eq!(h.attention[h.token()], 1.0);
        }
    }
}

#[test]
fn the_convex_optimum_bounds_random_gated_heads_from_below() {
    let (nn, n, d, m, c) = (15, 3, 2, 2, 3);
    let mut rng = ChaCha8Rng::seed_from_u64(21);
    let x = gaussians(&mut rng, nn * n * d);
    let gates = Gates::sample(&x, (nn, n, d), m, 4).unwrap();
    let lifted = gates.lift(&x, (nn, n, d)).unwrap();
    let y = gaussians(&mut rng, nn * c);
    let p = GlassoProblem::new((nn, m * n, d), &lifted, y, c, Squared).unwrap();
    let beta = 0.4 * p.beta_max();
    let best = solve(&p, beta);
    for trial in 0..20 {
        let h = 1 + trial % 5;
        let heads: Vec<GatedHead> = (0..h)
            .map(|_| {
                let e: Vec<f64> = (0..n).map(|_| -(1.0 - rng.random::<f64>()).ln()).collect();
                let total: f64 = e.iter().sum();
                GatedHead {
                    gate: rng.random_range(0..m),
                    attention: e.iter().map(|v| v / total).collect(),
                    value: gaussians(&mut rng, d),
                    output: gaussians(&mut rng, c),
                }
            })
            .collect();
        let z = gated_heads_to_z((n, d, c), &gates, &heads);
        let direct = gated_predictions(&x, (nn, n, d), c, &gates, &heads).unwrap();
        assert!(
            max_abs_diff(&p.predict(&z), &direct)
                <= 1e-12 * (1.0 + direct.iter().fold(0.0f64, |a, v| a.max(v.abs())))
        );
        // The norm chain Σ‖z‖ ≤ Σ‖o‖₁‖v‖ ≤ ½Σ(‖v‖² + ‖o‖₁²).
        let chain: Vec<f64> = heads
            .iter()
            .map(|hd| {
                (
                    dot(&hd.value, &hd.value).sqrt(),
                    hd.output.iter().map(|o| o.abs()).sum::<f64>(),
                )
            })
            .map(|(v, o)| v * o)
            .collect();
        let mid: f64 = chain.iter().sum();
        let top: f64 = heads
            .iter()
            .map(|hd| {
                0.5 * (dot(&hd.value, &hd.value)
                    + hd.output.iter().map(|o| o.abs()).sum::<f64>().powi(2))
            })
            .sum();
        assert!(p.penalty(&z) <= mid * (1.0 + 1e-12) && mid <= top * (1.0 + 1e-12));
        let f13 = gated_objective(&p, &x, &gates, &heads, beta).unwrap();
        assert!(p.objective(&z, beta) <= f13 * (1.0 + 1e-12));
        assert!(best.objective - best.certificate.gap <= p.objective(&z, beta));
    }
}

#[test]
fn bad_gates_and_heads_are_errors() {
    let (nn, n, d) = (4, 3, 2);
    let x = vec![0.5; nn * n * d];
    assert!(Gates::sample(&x, (nn, n, d), 0, 1).is_err());
    assert!(Gates::sample(&x[1..], (nn, n, d), 2, 1).is_err());
    let e = Gates::from_vectors(&x, (nn, n, d), vec![1.0; 6], vec![1.0; 3]).unwrap_err();
    assert!(e.to_string().contains("u1 has 6 values and u2 3"), "{e}");
    let mut bad = x.clone();
    bad[5] = f64::NAN;
    assert!(Gates::sample(&bad, (nn, n, d), 2, 1)
        .unwrap_err()
        .to_string()
        .contains("X value 5"));
    let gates = Gates::open(nn + 1, 2);
    assert!(gates
        .lift(&x, (nn, n, d))
        .unwrap_err()
        .to_string()
        .contains("N = 5"));
    let gates = Gates::open(nn, 2);
    let head = GatedHead {
        gate: 2,
        attention: vec![1.0, 0.0, 0.0],
        value: vec![1.0; d],
        output: vec![1.0],
    };
    let e = gated_predictions(&x, (nn, n, d), 1, &gates, &[head]).unwrap_err();
    assert!(e.to_string().contains("head 0: gate 2 of 2"), "{e}");
}
