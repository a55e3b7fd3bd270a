//! Multi-head softmax attention, the non-convex baseline of Paper B (spec `rates-and-convex.md`,
//! model (3) in score-vector form): gradients against central differences, training lowers the
//! objective, and B5.5 — one sample's softmax is a simplex point, two samples' are not one.

use attnsvm::solvers::glasso::recover::{head_predictions, Head};
use attnsvm::solvers::glasso::softmax::{
    attention, objective_and_gradient, predictions, random_heads, train, Optimizer,
    SoftmaxSettings, SoftmaxStatus,
};
use attnsvm::solvers::glasso::{GlassoProblem, Logistic, Squared};

use crate::common::random_vec as gaussians;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

#[test]
fn the_gradient_matches_central_differences() {
    let (nn, n, d, h) = (12, 5, 3, 3);
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let x = gaussians(&mut rng, nn * n * d);
    let y: Vec<f64> = gaussians(&mut rng, nn);
    let signs: Vec<f64> = y.iter().map(|v| v.signum()).collect();
    for logistic in [false, true] {
        let p = if logistic {
            GlassoProblem::new((nn, n, d), &x, signs.clone(), 1, Logistic).unwrap()
        } else {
            GlassoProblem::new((nn, n, d), &x, y.clone(), 1, Squared).unwrap()
        };
        let (beta, lambda) = (0.3, 0.2);
        let heads = random_heads(d, h, 0.8, 7);
        let (_, grad) = objective_and_gradient(&p, &heads, beta, lambda).unwrap();
        let f = |hs: &[_]| objective_and_gradient(&p, hs, beta, lambda).unwrap().0;
        let eps = 1e-6;
        let mut worst = 0.0f64;
        for j in 0..h {
            for part in 0..3 {
                let len = if part == 2 { 1 } else { d };
                for e in 0..len {
                    let bump = |s: f64| {
                        let mut hs = heads.clone();
                        match part {
                            0 => hs[j].key[e] += s,
                            1 => hs[j].value[e] += s,
                            _ => hs[j].output += s,
                        }
                        f(&hs)
                    };
                    let fd = (bump(eps) - bump(-eps)) / (2.0 * eps);
                    let an = match part {
                        0 => grad[j].key[e],
                        1 => grad[j].value[e],
                        _ => grad[j].output,
                    };
                    worst = worst.max((fd - an).abs() / (1.0 + an.abs()));
                }
            }
        }
        assert!(
            worst < 1e-7,
            "logistic = {logistic}: worst relative error {worst:.2e}"
        );
    }
}

#[test]
fn adam_and_gd_lower_the_objective_and_attention_rows_are_distributions() {
    let (nn, n, d) = (40, 6, 4);
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let x = gaussians(&mut rng, nn * n * d);
    // A teacher of the same class: the student can fit it.
    let teacher = random_heads(d, 2, 1.5, 99);
    let p0 = GlassoProblem::new((nn, n, d), &x, vec![0.0; nn], 1, Squared).unwrap();
    let y = predictions(&p0, &teacher).unwrap();
    let p = GlassoProblem::new((nn, n, d), &x, y, 1, Squared).unwrap();
    for optimizer in [
        SoftmaxSettings::default().optimizer,
        Optimizer::Gd { lr: 0.005 },
    ] {
        let settings = SoftmaxSettings {
            optimizer,
            max_iter: 2000,
            ..SoftmaxSettings::default()
        };
        let mut seen = 0;
        let sol = train(&p, 1e-3, 3, &settings, |_, _| seen += 1).unwrap();
        assert_eq!(seen, sol.iterations);
        assert_ne!(sol.status, SoftmaxStatus::NumericalError);
        let (first, last) = (sol.history[0], *sol.history.last().unwrap());
        assert!(last < 0.05 * first, "{optimizer:?}: {first} → {last}");
        let s = attention(&p, &sol.heads).unwrap();
        for row in s.chunks(n) {
            assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            assert!(row.iter().all(|&a| a >= 0.0));
        }
    }
}

#[test]
fn one_sample_softmax_is_a_simplex_point_two_samples_are_not_one() {
    // B5.5 in score-vector form. One sample: the simplex head with w = s(X) predicts exactly what
    // the softmax head predicts.
    let (n, d) = (5, 3);
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let x = gaussians(&mut rng, n * d);
    let p = GlassoProblem::new((1, n, d), &x, vec![0.0], 1, Squared).unwrap();
    let soft = random_heads(d, 2, 1.0, 3);
    let s = attention(&p, &soft).unwrap();
    let simplex: Vec<Head> = soft
        .iter()
        .enumerate()
        .map(|(j, hd)| Head {
            attention: s[j * n..(j + 1) * n].to_vec(),
            value: hd.value.clone(),
            output: hd.output,
        })
        .collect();
    let a = predictions(&p, &soft).unwrap()[0];
    let b = head_predictions(&p, &simplex).unwrap()[0];
    assert!((a - b).abs() <= 1e-13 * (1.0 + a.abs()), "{a} vs {b}");

    // Two samples X_1 = [1, 0]ᵀ, X_2 = [0, 1]ᵀ (n = 2, d = 1), p = v = o = 1: both predictions are
    // e/(e+1). A shared w ∈ Δ_2 predicts w_1 and w_2, which would need w_1 + w_2 = 2e/(e+1) ≠ 1.
    let x2 = [1.0, 0.0, 0.0, 1.0];
    let p2 = GlassoProblem::new((2, 2, 1), &x2, vec![0.0; 2], 1, Squared).unwrap();
    let unit = [attnsvm::solvers::glasso::softmax::SoftmaxHead {
        key: vec![1.0],
        value: vec![1.0],
        output: 1.0,
    }];
    let f = predictions(&p2, &unit).unwrap();
    let e = std::f64::consts::E;
    assert!((f[0] - e / (e + 1.0)).abs() < 1e-15 && (f[1] - e / (e + 1.0)).abs() < 1e-15);
    assert!((f[0] + f[1] - 1.0).abs() > 0.4);
}

#[test]
fn bad_settings_and_shapes_are_errors() {
    let x = vec![1.0; 2 * 3 * 2];
    let p = GlassoProblem::new((2, 3, 2), &x, vec![1.0, 0.0], 1, Squared).unwrap();
    let bad = SoftmaxSettings {
        optimizer: Optimizer::Gd { lr: -1.0 },
        ..SoftmaxSettings::default()
    };
    assert!(train(&p, 0.1, 2, &bad, |_, _| {}).is_err());
    assert!(train(&p, 0.1, 0, &SoftmaxSettings::default(), |_, _| {}).is_err());
    let wrong = random_heads(3, 1, 1.0, 0);
    let e = predictions(&p, &wrong).unwrap_err();
    assert!(e.to_string().contains("key has 3 entries"), "{e}");
}
