//! The SVR view of attention (spec `primal-dual.md` §1, checks §5.1–§5.5): the no-bias ε-SVR on
//! a sequence's keys is solved to a certified optimum, its support-vector expansion is softmax
//! (exp kernel) or linear (elu+1) attention, its explicit primal layer gives the same outputs,
//! sparse attention is the SVR on a subset of the keys and multi-head attention one SVR per head.
//! Clarabel's interior point method is the independent oracle.

use crate::common::{random_mat, rng};
use attnsvm::model::attention::BatchNorm;
use attnsvm::model::attention::{attention, AttentionConfig, Sparsity};
use attnsvm::solvers::svr::{
    attention_as_svr, Engine, ExpFeatureMap, FeatureMap, PrimalLayer, Status, Svr, SvrKernel,
    SvrProblem, SvrSettings, SvrSolution,
};
use faer::Mat;

fn solve(problem: &SvrProblem, engine: Engine) -> SvrSolution {
    let settings = SvrSettings {
        engine,
        ..SvrSettings::default()
    };
    Svr::new(problem, settings).unwrap().solve()
}

fn max_abs(a: &Mat<f64>) -> f64 {
    a.norm_max()
}

/// Keys, queries, values of a random sequence with entries of size ~`scale`.
fn sequence(seed: u64, n: usize, d: usize, dv: usize, scale: f64) -> [Mat<f64>; 3] {
    let mut r = rng(seed);
    let f = scale * ((n * d) as f64).sqrt();
    [
        random_mat(&mut r, n, d, f),
        random_mat(&mut r, 4, d, scale * ((4 * d) as f64).sqrt()),
        random_mat(&mut r, n, dv, ((n * dv) as f64).sqrt()),
    ]
}

#[test]
fn truncated_exp_features_reproduce_the_kernel() {
    // Spec §5.1: D = 3, ‖x‖ ≲ 1: error ≤ 1e-12 at T = 14, ≤ 1e-15 (relative) at T = 20.
    let mut r = rng(1);
    let x = random_mat(&mut r, 6, 3, 0.7 * 6f64.sqrt());
    for (degree, tol) in [(14, 1e-12), (20, 1e-15)] {
        let map = ExpFeatureMap::new(3, degree).unwrap();
        let want_len = (degree + 1) * (degree + 2) * (degree + 3) / 6;
        assert_eq!(map.len(), want_len, "C(D+T, T) features");
        for i in 0..6 {
            for j in 0..6 {
                let (a, b): (Vec<f64>, Vec<f64>) = (0..3).map(|c| (x[(i, c)], x[(j, c)])).unzip();
                let exact = (attnsvm::linalg::dot(&a, &b) / 3f64.sqrt()).exp();
                let approx = attnsvm::linalg::dot(&map.features(&a), &map.features(&b));
                assert!(
                    (approx - exact).abs() <= tol * exact,
                    "T={degree}: {approx} vs {exact}"
                );
            }
        }
    }
}

#[test]
fn svr_dual_gives_back_attention_values_and_its_expansion_is_softmax_attention() {
    // Spec §5.2 (a)–(b), with the SVR built so that given values are its unique optimum.
    for (seed, n, eps) in [(2, 7, 0.0), (3, 10, 0.01), (4, 12, 0.05)] {
        let [keys, queries, values] = sequence(seed, n, 3, 2, 0.6);
        let problem =
            SvrProblem::from_attention(keys.clone(), &values, SvrKernel::Exp, eps).unwrap();
        let sol = solve(&problem, Engine::CoordinateDescent);
        assert_eq!(sol.status, Status::Solved, "{:?}", sol.info);
        let cert = sol.certificate;
        assert!(
            cert.duality_gap <= 1e-9 && cert.duality_gap >= -1e-12,
            "{cert:?}"
        );
        assert!(cert.kkt_residual <= 1e-9 * problem.c, "{cert:?}");
        let recovered = problem.values(&sol.beta);
        assert!(max_abs(&(&recovered - &values)) <= 1e-8, "values");
        let sve = problem.predict(&sol.beta, &queries).unwrap();
        let att = attention(&AttentionConfig::softmax(1), &queries, &keys, &values, None).unwrap();
        let err = max_abs(&(&sve - &att.out));
        assert!(err <= 1e-9, "SVE vs softmax attention: {err:e}");
        // The primal layer W Φ(q)/h(q) with explicit (truncated, T = 20) features.
        let map = FeatureMap::Exp(ExpFeatureMap::new(3, 20).unwrap());
        let primal = PrimalLayer::new(&problem, &sol.beta, map).unwrap();
        let out = primal.predict(&queries).unwrap();
        let softmax_with_duals = attention(
            &AttentionConfig::softmax(1),
            &queries,
            &keys,
            &problem.values(&sol.beta),
            None,
        )
        .unwrap();
        let err = max_abs(&(&out - &softmax_with_duals.out));
        assert!(err <= 1e-9, "primal layer vs softmax attention: {err:e}");
    }
}

#[test]
fn generic_svr_meets_kkt_and_agrees_with_clarabel() {
    // Spec §5.2 (a), (c) on random targets, over regimes from all-at-bound to sparse.
    for (seed, c, eps) in [
        (5, 0.02, 0.0),
        (6, 1.0, 0.05),
        (7, 1000.0, 0.01),
        (8, 0.3, 0.2),
    ] {
        let [keys, queries, _] = sequence(seed, 9, 3, 2, 0.8);
        let targets = random_mat(&mut rng(seed + 100), 9, 2, 18f64.sqrt());
        let problem = SvrProblem::new(keys.clone(), targets, SvrKernel::Exp, c, eps).unwrap();
        let sol = solve(&problem, Engine::CoordinateDescent);
        assert_eq!(sol.status, Status::Solved, "{:?}", sol.info);
        assert!(sol.certificate.duality_gap <= 1e-9, "{:?}", sol.certificate);
        assert!(sol.certificate.box_violation <= 0.0);
        // (c) β_j = 0 strictly inside the tube, |β_j| = C strictly outside.
        let r = problem.residuals(&sol.beta);
        let tol = 1e-9;
        for j in 0..9 {
            for d in 0..2 {
                let (rj, bj) = (r[(j, d)].abs(), sol.beta[(j, d)]);
                if rj < eps - tol {
                    assert!(bj.abs() <= 1e-9 * c, "inside the tube: β = {bj}");
                }
                if rj > eps + tol {
                    assert!(
                        (bj.abs() - c).abs() <= 1e-9 * c,
                        "outside: |β| = {bj}, C = {c}"
                    );
                }
            }
        }
        let ipm = solve(&problem, Engine::Ipm);
        assert_eq!(ipm.status, Status::Solved, "{:?}", ipm.info);
        let diff = max_abs(&(&ipm.beta - &sol.beta));
        assert!(diff <= 1e-6 * c.max(1.0), "CD vs Clarabel: {diff:e}");
        assert!(
            ipm.certificate.rel_gap.abs() <= 1e-9,
            "{:?}",
            ipm.certificate
        );
        eprintln!(
            "C = {c}, ε = {eps}: gap CD {:e} / IPM {:e}, KKT CD {:e}, |β_CD − β_IPM| = {diff:e}",
            sol.certificate.duality_gap, ipm.certificate.duality_gap, sol.certificate.kkt_residual
        );
        // The expansion of any dual point is softmax attention with v = β/h(k).
        let sve = problem.predict(&sol.beta, &queries).unwrap();
        let values = problem.values(&sol.beta);
        let att = attention(&AttentionConfig::softmax(1), &queries, &keys, &values, None).unwrap();
        assert!(max_abs(&(&sve - &att.out)) <= 1e-12 * max_abs(&values).max(1.0));
    }
}

#[test]
fn elu_svr_is_linear_attention_and_its_primal_layer_is_finite() {
    // Spec §1.5, §5.4.
    for (seed, eps) in [(9, 0.0), (10, 0.02)] {
        let [keys, queries, values] = sequence(seed, 8, 4, 3, 1.0);
        let problem =
            SvrProblem::from_attention(keys.clone(), &values, SvrKernel::EluPlusOne, eps).unwrap();
        let sol = solve(&problem, Engine::CoordinateDescent);
        assert_eq!(sol.status, Status::Solved, "{:?}", sol.info);
        assert!(sol.certificate.duality_gap <= 1e-9);
        let linear = AttentionConfig::linear(1);
        let att = attention(&linear, &queries, &keys, &values, None).unwrap();
        let sve = problem.predict(&sol.beta, &queries).unwrap();
        assert!(
            max_abs(&(&sve - &att.out)) <= 1e-9,
            "SVE vs linear attention"
        );
        let primal = PrimalLayer::new(&problem, &sol.beta, FeatureMap::EluPlusOne).unwrap();
        assert_eq!(primal.w.shape(), (3, 4), "W is D_v × D");
        let att_duals =
            attention(&linear, &queries, &keys, &problem.values(&sol.beta), None).unwrap();
        let err = max_abs(&(&primal.predict(&queries).unwrap() - &att_duals.out));
        assert!(err <= 1e-12, "primal layer vs linear attention: {err:e}");
    }
}

#[test]
fn sparse_attention_is_the_svr_on_each_querys_subset() {
    // Spec §1.6, §5.5: query i's SVR is trained on M_i only.
    let [keys, _, values] = sequence(11, 9, 3, 2, 0.7);
    let queries = keys.clone(); // self-attention: query i sits at position i
    for sparsity in [Sparsity::Window(2), Sparsity::TopK(4)] {
        let cfg = AttentionConfig::softmax(1).with_sparsity(sparsity);
        let att = attention(&cfg, &queries, &keys, &values, None).unwrap();
        for i in 0..9usize {
            let members: Vec<usize> = match sparsity {
                Sparsity::Window(w) => (0..9).filter(|j| i.abs_diff(*j) <= w).collect(),
                _ => {
                    let logit = |j: usize| (0..3).map(|c| keys[(i, c)] * keys[(j, c)]).sum::<f64>();
                    let mut js: Vec<usize> = (0..9).collect();
                    js.sort_by(|&a, &b| logit(b).total_cmp(&logit(a)));
                    js.truncate(4);
                    js
                }
            };
            let sub =
                |m: &Mat<f64>| Mat::from_fn(members.len(), m.ncols(), |a, c| m[(members[a], c)]);
            let problem =
                SvrProblem::from_attention(sub(&keys), &sub(&values), SvrKernel::Exp, 0.01)
                    .unwrap();
            let sol = solve(&problem, Engine::CoordinateDescent);
            assert_eq!(sol.status, Status::Solved);
            let q = queries.subrows(i, 1).to_owned();
            let f = problem.predict(&sol.beta, &q).unwrap();
            let err = max_abs(&(&f - &att.out.subrows(i, 1).to_owned()));
            assert!(err <= 1e-9, "{sparsity:?}, query {i}: {err:e}");
        }
    }
    // An all-keys window is exactly softmax attention.
    let dense = attention(&AttentionConfig::softmax(1), &queries, &keys, &values, None).unwrap();
    let wide = AttentionConfig::softmax(1).with_sparsity(Sparsity::Window(9));
    let wide = attention(&wide, &queries, &keys, &values, None).unwrap();
    assert_eq!(dense.out, wide.out);
}

#[test]
fn multi_head_attention_is_one_svr_per_head() {
    let [keys, queries, values] = sequence(12, 8, 6, 4, 0.5);
    let att = attention(&AttentionConfig::softmax(2), &queries, &keys, &values, None).unwrap();
    for h in 0..2 {
        let (k, q, v) = (
            keys.subcols(3 * h, 3).to_owned(),
            queries.subcols(3 * h, 3).to_owned(),
            values.subcols(2 * h, 2).to_owned(),
        );
        let problem = SvrProblem::from_attention(k, &v, SvrKernel::Exp, 0.02).unwrap();
        let sol = solve(&problem, Engine::CoordinateDescent);
        assert_eq!(sol.status, Status::Solved);
        let f = problem.predict(&sol.beta, &q).unwrap();
        let err = max_abs(&(&f - &att.out.subcols(2 * h, 2).to_owned()));
        assert!(err <= 1e-9, "head {h}: {err:e}");
    }
}

#[test]
fn svr_view_of_every_head_and_kind_reproduces_the_forward_pass() {
    // Softmax, linear, window and top-k attention with 2 heads and padding: one SVR per head
    // (per head and query for sparse), each certified; the expansions are the attention outputs.
    let n = 10;
    let [keys, _, values] = sequence(14, n, 6, 4, 0.6);
    let queries = random_mat(&mut rng(15), n, 6, 0.6 * 60f64.sqrt());
    let mut valid = vec![true; n];
    valid[3] = false;
    valid[8] = false;
    let kinds = [
        AttentionConfig::softmax(2),
        AttentionConfig::linear(2),
        AttentionConfig::softmax(2).with_sparsity(Sparsity::Window(2)),
        AttentionConfig::softmax(2).with_sparsity(Sparsity::TopK(3)),
        AttentionConfig::linear(2).with_sparsity(Sparsity::Window(3)),
    ];
    let settings = SvrSettings::default();
    for cfg in kinds {
        let view = attention_as_svr(
            &cfg,
            &queries,
            &keys,
            &values,
            Some(&valid),
            0.01,
            &settings,
        )
        .unwrap();
        assert_eq!(view.status, Status::Solved, "{cfg:?}");
        let per_head = if cfg.sparsity == Sparsity::Dense {
            1
        } else {
            8
        };
        assert_eq!(view.svrs, 2 * per_head);
        assert!(view.max_duality_gap <= 1e-9, "{cfg:?}: {view:?}");
        assert!(view.max_output_difference <= 1e-9, "{cfg:?}: {view:?}");
        if cfg.kernel == attnsvm::model::attention::Kernel::Softmax {
            assert!(view.max_value_error <= 1e-8, "{cfg:?}: {view:?}");
        }
        eprintln!(
            "{:?}/{:?}: {} SVRs, gap ≤ {:e}, KKT ≤ {:e}, |SVE − attention| ≤ {:e}",
            cfg.kernel,
            cfg.sparsity,
            view.svrs,
            view.max_duality_gap,
            view.max_kkt_residual,
            view.max_output_difference
        );
    }
    let bn = AttentionConfig::softmax(2).with_batch_norm(BatchNorm::default());
    assert!(attention_as_svr(&bn, &queries, &keys, &values, None, 0.01, &settings).is_err());
}

#[test]
fn with_a_bias_the_dual_forces_a_zero_weighted_value_sum() {
    // Spec §5.3: with the bias kept, every dual solution has Σ_j h(k_j) v_j = Σ_j β_j = 0;
    // generic values break this, so that SVR does not give them back.
    let [keys, queries, values] = sequence(16, 8, 3, 2, 0.6);
    let problem = SvrProblem::from_attention(keys, &values, SvrKernel::Exp, 0.01)
        .unwrap()
        .with_bias();
    assert!(
        Svr::new(&problem, SvrSettings::default()).is_err(),
        "CD has no bias"
    );
    let sol = solve(&problem, Engine::Ipm);
    assert_eq!(sol.status, Status::Solved, "{:?}", sol.info);
    let cert = sol.certificate;
    assert!(
        cert.rel_gap.abs() <= 1e-8 && cert.kkt_residual <= 1e-6 * problem.c,
        "{cert:?}"
    );
    assert!(cert.bias_violation <= 1e-8 * problem.c, "{cert:?}");
    let h: Vec<f64> = problem.log_normalizers().iter().map(|l| l.exp()).collect();
    let recovered = problem.values(&sol.beta);
    for col in 0..2 {
        let weighted = |v: &Mat<f64>| (0..8).map(|j| h[j] * v[(j, col)]).sum::<f64>();
        assert!(weighted(&recovered).abs() <= 1e-8 * problem.c);
        assert!(
            weighted(&values).abs() > 1e-2,
            "the given values are generic"
        );
    }
    assert!(max_abs(&(&recovered - &values)) > 1e-3);
    // The expansion now carries the bias: at the keys it is the fit y − r.
    let fit = problem.predict(&sol.beta, problem.keys()).unwrap();
    let want = problem.targets() - &problem.residuals(&sol.beta);
    assert!(max_abs(&(&fit - &want)) <= 1e-12);
    assert!(problem.predict(&sol.beta, &queries).is_ok());
}

#[test]
fn bad_svr_input_is_an_error_not_a_panic() {
    let [keys, queries, values] = sequence(13, 5, 2, 1, 1.0);
    let mut nan = keys.clone();
    nan[(1, 1)] = f64::NAN;
    assert!(SvrProblem::new(nan, values.clone(), SvrKernel::Exp, 1.0, 0.0).is_err());
    let short = values.subrows(0, 4).to_owned();
    assert!(SvrProblem::new(keys.clone(), short, SvrKernel::Exp, 1.0, 0.0).is_err());
    for (c, eps) in [(0.0, 0.0), (1.0, -0.1), (f64::INFINITY, 0.0)] {
        assert!(SvrProblem::new(keys.clone(), values.clone(), SvrKernel::Exp, c, eps).is_err());
    }
    let p = SvrProblem::new(keys.clone(), values.clone(), SvrKernel::Exp, 1.0, 0.0).unwrap();
    let bad = SvrSettings {
        tol: 0.0,
        ..SvrSettings::default()
    };
    assert!(Svr::new(&p, bad).is_err());
    let sol = solve(&p, Engine::CoordinateDescent);
    assert!(p
        .predict(&sol.beta, &queries.subcols(0, 1).to_owned())
        .is_err());
    let map = FeatureMap::Exp(ExpFeatureMap::new(3, 4).unwrap());
    assert!(
        PrimalLayer::new(&p, &sol.beta, map).is_err(),
        "feature width ≠ key width"
    );
    let msg = SvrProblem::new(
        keys,
        values.subrows(0, 2).to_owned(),
        SvrKernel::Exp,
        1.0,
        0.0,
    )
    .unwrap_err()
    .to_string();
    assert!(!msg.contains('\n'), "one-line message: {msg}");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 48, ..Default::default() })]

    /// Random instances across regimes (C from 1e-2 to 1e3, tube from 0 to 0.3): the certificate
    /// holds, the KKT residual vanishes and Clarabel finds the same β.
    #[test]
    fn svr_certificate_on_random_instances(
        n in 2usize..12, d in 1usize..5, dv in 1usize..3, seed in 0u64..10_000,
        log_c in -2.0f64..3.0, eps in 0.0f64..0.3, elu in proptest::bool::ANY,
    ) {
        let mut r = rng(seed);
        let keys = random_mat(&mut r, n, d, 0.8 * ((n * d) as f64).sqrt());
        let targets = random_mat(&mut r, n, dv, ((n * dv) as f64).sqrt());
        let kernel = if elu { SvrKernel::EluPlusOne } else { SvrKernel::Exp };
        let c = 10f64.powf(log_c);
        let problem = SvrProblem::new(keys, targets, kernel, c, eps).unwrap();
        let sol = solve(&problem, Engine::CoordinateDescent);
        proptest::prop_assert_eq!(sol.status, Status::Solved);
        let cert = sol.certificate;
        proptest::prop_assert!(cert.rel_gap <= 1e-12 && cert.duality_gap >= -1e-12, "{:?}", cert);
        proptest::prop_assert!(cert.kkt_residual <= 1e-9 * c.max(1.0), "{:?}", cert);
        let ipm = solve(&problem, Engine::Ipm);
        proptest::prop_assert_eq!(ipm.status, Status::Solved);
        // The primal W (so the fit K̃β at the keys) is unique; β too when K̃ ≻ 0 (exp kernel;
        // elu+1 has rank ≤ D).
        let fit = max_abs(&(&problem.residuals(&ipm.beta) - &problem.residuals(&sol.beta)));
        proptest::prop_assert!(fit <= 1e-6, "fits of CD and Clarabel: {:e}", fit);
        if !elu {
            let diff = max_abs(&(&ipm.beta - &sol.beta));
            proptest::prop_assert!(diff <= 1e-6 * c.max(1.0), "CD vs Clarabel: {:e}", diff);
        }
        let scale = cert.primal.abs().max(1.0);
        proptest::prop_assert!((ipm.certificate.dual - cert.dual).abs() <= 1e-9 * scale);
    }
}
