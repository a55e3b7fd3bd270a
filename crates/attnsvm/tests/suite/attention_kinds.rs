//! The reference forward passes of spec `primal-dual.md` §2 against the identities of §5:
//! Attention-BN (§5.6–§5.9), Attention-SH (§5.10–§5.12), masks, the cost formulas (§5.11) against
//! the work the forward pass counted, and bad input.

use crate::common::{random_mat, rng};
use attnsvm::model::attention::cost::{
    attention_cost, block_flop_ratio, layer_flop_ratio, layer_flop_ratio_pool_before, rho,
    window_pairs,
};
use attnsvm::model::attention::{
    attention, pooled_length, AttentionConfig, AttentionLayer, BatchNorm, BnOrder, BnScope, Kernel,
    Pooling, ScaledHeads, Sparsity,
};
use faer::Mat;

/// Plain softmax attention of one head, written from the definition (max-subtracted `exp`).
fn naive_softmax(q: &Mat<f64>, k: &Mat<f64>, v: &Mat<f64>) -> Mat<f64> {
    let d = q.ncols() as f64;
    let mut out = Mat::zeros(q.nrows(), v.ncols());
    for i in 0..q.nrows() {
        let a: Vec<f64> = (0..k.nrows())
            .map(|j| (0..q.ncols()).map(|c| q[(i, c)] * k[(j, c)]).sum::<f64>() / d.sqrt())
            .collect();
        let m = a.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = a.iter().map(|x| (x - m).exp()).collect();
        let z: f64 = e.iter().sum();
        for c in 0..v.ncols() {
            out[(i, c)] = (0..k.nrows()).map(|j| e[j] * v[(j, c)]).sum::<f64>() / z;
        }
    }
    out
}

/// Per-column mean and biased variance over the rows.
fn stats(k: &Mat<f64>) -> (Vec<f64>, Vec<f64>) {
    let n = k.nrows() as f64;
    let mu: Vec<f64> = (0..k.ncols())
        .map(|c| k.col(c).iter().sum::<f64>() / n)
        .collect();
    let var = (0..k.ncols())
        .map(|c| k.col(c).iter().map(|x| (x - mu[c]).powi(2)).sum::<f64>() / n)
        .collect();
    (mu, var)
}

fn qkv(seed: u64, n: usize, width: usize, vwidth: usize) -> [Mat<f64>; 3] {
    let mut r = rng(seed);
    let s = |rows: usize, cols: usize| ((rows * cols) as f64).sqrt();
    [
        random_mat(&mut r, n, width, s(n, width)),
        random_mat(&mut r, n, width, s(n, width)),
        random_mat(&mut r, n, vwidth, s(n, vwidth)),
    ]
}

fn max_diff(a: &Mat<f64>, b: &Mat<f64>) -> f64 {
    (a - b).norm_max()
}

fn bn(eps: f64) -> BatchNorm {
    BatchNorm {
        eps,
        ..BatchNorm::default()
    }
}

#[test]
fn attention_bn_is_softmax_with_centred_rescaled_queries() {
    // §5.6 (one-sided form), per head, with ε_bn > 0.
    let [q, k, v] = qkv(1, 9, 6, 4);
    let eps = 1e-3;
    let out = attention(
        &AttentionConfig::softmax(2).with_batch_norm(bn(eps)),
        &q,
        &k,
        &v,
        None,
    )
    .unwrap()
    .out;
    for h in 0..2 {
        let (qh, kh, vh) = (
            q.subcols(3 * h, 3).to_owned(),
            k.subcols(3 * h, 3).to_owned(),
            v.subcols(2 * h, 2).to_owned(),
        );
        let (mu, var) = stats(&kh);
        let qt = Mat::from_fn(9, 3, |i, c| (qh[(i, c)] - mu[c]) / (var[c] + eps));
        let want = naive_softmax(&qt, &kh, &vh);
        let err = max_diff(&out.subcols(2 * h, 2).to_owned(), &want);
        assert!(err <= 1e-12, "head {h}: {err:e}");
    }
}

#[test]
fn attention_bn_is_affine_invariant_and_plain_on_standardized_keys() {
    let [q, k, v] = qkv(2, 8, 4, 3);
    let cfg = AttentionConfig::softmax(1).with_batch_norm(bn(0.0));
    let base = attention(&cfg, &q, &k, &v, None).unwrap().out;
    // §5.7: (q, k) ↦ (a∘q + c, a∘k + c), a > 0.
    let (a, c) = ([0.5, 3.0, 1.7, 0.2], [2.0, -1.0, 0.3, 5.0]);
    let map = |m: &Mat<f64>| Mat::from_fn(m.nrows(), 4, |i, j| a[j] * m[(i, j)] + c[j]);
    let moved = attention(&cfg, &map(&q), &map(&k), &v, None).unwrap().out;
    assert!(
        max_diff(&moved, &base) <= 1e-12,
        "affine: {:e}",
        max_diff(&moved, &base)
    );
    // §2.1 (d): shifting only the query does change the output.
    let shifted = Mat::from_fn(8, 4, |i, j| q[(i, j)] + c[j]);
    assert!(max_diff(&attention(&cfg, &shifted, &k, &v, None).unwrap().out, &base) > 1e-3);
    // §5.8: standardized keys and ε_bn = 0: Attention-BN is softmax attention.
    let (mu, var) = stats(&k);
    let ks = Mat::from_fn(8, 4, |i, j| (k[(i, j)] - mu[j]) / var[j].sqrt());
    let bn_out = attention(&cfg, &q, &ks, &v, None).unwrap().out;
    let plain = attention(&AttentionConfig::softmax(1), &q, &ks, &v, None)
        .unwrap()
        .out;
    assert!(max_diff(&bn_out, &plain) <= 1e-12);
    assert!(max_diff(&plain, &naive_softmax(&q, &ks, &v)) <= 1e-12);
}

fn kinds() -> Vec<(&'static str, AttentionConfig)> {
    let sm = || AttentionConfig::softmax(2);
    let sh2d = ScaledHeads {
        ratios: vec![1, 2],
        pooling: Pooling::TwoD { rows: 3, cols: 4 },
        cls: true,
    };
    let late = BatchNorm {
        order: BnOrder::NormalizeThenPool,
        ..bn(1e-5)
    };
    let hood = BatchNorm {
        scope: BnScope::Neighbourhood,
        ..bn(1e-5)
    };
    vec![
        ("softmax", sm()),
        ("linear", AttentionConfig::linear(2)),
        ("top-k", sm().with_sparsity(Sparsity::TopK(3))),
        ("window", sm().with_sparsity(Sparsity::Window(2))),
        (
            "linear-window",
            AttentionConfig::linear(2).with_sparsity(Sparsity::Window(2)),
        ),
        ("bn", sm().with_batch_norm(bn(1e-5))),
        (
            "bn-window-neighbourhood",
            sm().with_sparsity(Sparsity::Window(3))
                .with_batch_norm(hood),
        ),
        ("sh-1d", sm().with_ratios(vec![2, 3])),
        ("sh-2d-cls", sm().with_scaled_heads(sh2d)),
        (
            "bn+sh",
            sm().with_ratios(vec![2, 3]).with_batch_norm(bn(1e-5)),
        ),
        (
            "bn+sh-late",
            sm().with_ratios(vec![2, 3]).with_batch_norm(late),
        ),
        (
            "linear-bn",
            AttentionConfig::linear(2).with_batch_norm(bn(1e-5)),
        ),
        (
            "linear-sh",
            AttentionConfig::linear(2).with_ratios(vec![1, 2]),
        ),
    ]
}

#[test]
fn padding_tokens_do_not_change_valid_outputs() {
    // §5.9, §5.12: statistics, pooling and attention over valid tokens only.
    let n = 13;
    let [q, k, v] = qkv(3, n, 6, 4);
    let mut valid = vec![true; n];
    for j in [4, 9, 10] {
        valid[j] = false;
    }
    let garbage = |m: &Mat<f64>, seed: u64| {
        let g = random_mat(&mut rng(seed), n, m.ncols(), 100.0);
        Mat::from_fn(
            n,
            m.ncols(),
            |i, c| if valid[i] { m[(i, c)] } else { g[(i, c)] },
        )
    };
    for (name, cfg) in kinds() {
        let a = attention(&cfg, &q, &k, &v, Some(&valid)).unwrap();
        let b = attention(
            &cfg,
            &garbage(&q, 7),
            &garbage(&k, 8),
            &garbage(&v, 9),
            Some(&valid),
        )
        .unwrap();
        assert!(
            a.out.norm_max().is_finite() && a.out.norm_max() > 0.0,
            "{name}"
        );
        for (i, &ok) in valid.iter().enumerate() {
            for c in 0..4 {
                if ok {
                    assert_eq!(a.out[(i, c)], b.out[(i, c)], "{name}: row {i}");
                } else {
                    assert_eq!(a.out[(i, c)], 0.0, "{name}: padding row {i}");
                }
            }
        }
    }
}

#[test]
fn trailing_padding_equals_the_unpadded_sequence() {
    // 8 valid tokens + 4 padding: SH with ratios dividing 8 pools the same slots.
    let [q, k, v] = qkv(4, 12, 6, 4);
    let valid: Vec<bool> = (0..12).map(|i| i < 8).collect();
    let cut = |m: &Mat<f64>| m.subrows(0, 8).to_owned();
    for (name, cfg) in kinds() {
        if matches!(&cfg.scaled_heads, Some(sh) if sh.pooling != Pooling::OneD) {
            continue; // a 2D grid has no trailing padding
        }
        let padded = attention(&cfg, &q, &k, &v, Some(&valid)).unwrap().out;
        let short = attention(&cfg, &cut(&q), &cut(&k), &cut(&v), None)
            .unwrap()
            .out;
        let err = max_diff(&padded.subrows(0, 8).to_owned(), &short);
        assert!(err <= 1e-14, "{name}: {err:e}");
    }
}

#[test]
fn scaled_heads_reduce_to_softmax_and_to_the_mean() {
    // §5.10: r = 1 is bit-identical to softmax MHA; r = N gives the mean of V.
    let n = 10;
    let [q, k, v] = qkv(5, n, 6, 4);
    let plain = attention(&AttentionConfig::softmax(2), &q, &k, &v, None)
        .unwrap()
        .out;
    let ones = AttentionConfig::softmax(2).with_ratios(vec![1, 1]);
    assert_eq!(attention(&ones, &q, &k, &v, None).unwrap().out, plain);
    let coarse = AttentionConfig::softmax(2).with_ratios(vec![1, n]);
    let out = attention(&coarse, &q, &k, &v, None).unwrap().out;
    for i in 0..n {
        for c in 0..2 {
            let mean = (0..n).map(|j| v[(j, 2 + c)]).sum::<f64>() / n as f64;
            assert!((out[(i, 2 + c)] - mean).abs() <= 1e-14);
            assert_eq!(out[(i, c)], plain[(i, c)]);
        }
    }
    // Linear attention: the dense O(N) summary equals the direct per-query sum.
    let lin = attention(&AttentionConfig::linear(2), &q, &k, &v, None)
        .unwrap()
        .out;
    let wide = AttentionConfig::linear(2).with_sparsity(Sparsity::Window(n));
    let direct = attention(&wide, &q, &k, &v, None).unwrap().out;
    assert!(max_diff(&lin, &direct) <= 1e-13);
}

#[test]
fn pooling_averages_windows_blocks_and_keeps_the_cls_token() {
    // §2.2, §5.12: 1D windows of r tokens (the last one partial), r×r blocks of a grid, CLS kept.
    let mean = |m: &Mat<f64>, rows: &[usize]| {
        Mat::from_fn(1, m.ncols(), |_, c| {
            rows.iter().map(|&j| m[(j, c)]).sum::<f64>() / rows.len() as f64
        })
    };
    let stack = |m: &Mat<f64>, groups: &[Vec<usize>]| {
        let rows: Vec<Mat<f64>> = groups.iter().map(|g| mean(m, g)).collect();
        Mat::from_fn(groups.len(), m.ncols(), |s, c| rows[s][(0, c)])
    };
    // 1D with CLS: N = 8, r = 3: [0], [1,2,3], [4,5,6], [7].
    let [q, k, v] = qkv(11, 8, 3, 2);
    let groups = vec![vec![0], vec![1, 2, 3], vec![4, 5, 6], vec![7]];
    let sh = ScaledHeads {
        ratios: vec![3],
        pooling: Pooling::OneD,
        cls: true,
    };
    let cfg = AttentionConfig::softmax(1).with_scaled_heads(sh);
    let out = attention(&cfg, &q, &k, &v, None).unwrap();
    let want = naive_softmax(&q, &stack(&k, &groups), &stack(&v, &groups));
    assert!(max_diff(&out.out, &want) <= 1e-14);
    assert_eq!(
        out.counts.key_lengths,
        vec![pooled_length(8, 3, Pooling::OneD, true)]
    );
    // 2D: a 3×4 grid, r = 2: blocks {0,1,4,5}, {2,3,6,7}, {8,9}, {10,11}.
    let [q, k, v] = qkv(12, 12, 3, 2);
    let groups = vec![vec![0, 1, 4, 5], vec![2, 3, 6, 7], vec![8, 9], vec![10, 11]];
    let grid = Pooling::TwoD { rows: 3, cols: 4 };
    let sh = ScaledHeads {
        ratios: vec![2],
        pooling: grid,
        cls: false,
    };
    let cfg = AttentionConfig::softmax(1).with_scaled_heads(sh);
    let out = attention(&cfg, &q, &k, &v, None).unwrap();
    let want = naive_softmax(&q, &stack(&k, &groups), &stack(&v, &groups));
    assert!(max_diff(&out.out, &want) <= 1e-14);
    assert_eq!(
        out.counts.key_lengths,
        vec![pooled_length(12, 2, grid, false)]
    );
    // A padded member is left out of its block's mean; a fully padded block is masked out.
    let mut valid = vec![true; 12];
    for j in [5, 8, 9] {
        valid[j] = false;
    }
    let out = attention(&cfg, &q, &k, &v, Some(&valid)).unwrap().out;
    let groups = vec![vec![0, 1, 4], vec![2, 3, 6, 7], vec![10, 11]];
    let want = naive_softmax(&q, &stack(&k, &groups), &stack(&v, &groups));
    for i in (0..12).filter(|&i| valid[i]) {
        for c in 0..2 {
            assert!((out[(i, c)] - want[(i, c)]).abs() <= 1e-14);
        }
    }
}

#[test]
fn bn_sh_order_decides_which_statistics_are_used() {
    // §2.3: NormalizeThenPool uses the unpooled keys' statistics; the default the pooled ones.
    let [q, k, v] = qkv(6, 8, 3, 2);
    let eps = 1e-5;
    let (mu, var) = stats(&k);
    let pooled = |m: &Mat<f64>| {
        Mat::from_fn(4, m.ncols(), |s, c| {
            0.5 * (m[(2 * s, c)] + m[(2 * s + 1, c)])
        })
    };
    let norm = |m: &Mat<f64>, mu: &[f64], var: &[f64]| {
        Mat::from_fn(m.nrows(), 3, |i, c| {
            (m[(i, c)] - mu[c]) / (var[c] + eps).sqrt()
        })
    };
    let late = BatchNorm {
        order: BnOrder::NormalizeThenPool,
        ..bn(eps)
    };
    let cfg = AttentionConfig::softmax(1).with_ratios(vec![2]);
    let got = attention(&cfg.clone().with_batch_norm(late), &q, &k, &v, None)
        .unwrap()
        .out;
    let want = naive_softmax(
        &norm(&q, &mu, &var),
        &pooled(&norm(&k, &mu, &var)),
        &pooled(&v),
    );
    assert!(max_diff(&got, &want) <= 1e-12);
    let (pk, pv) = (pooled(&k), pooled(&v));
    let (pmu, pvar) = stats(&pk);
    let got = attention(&cfg.with_batch_norm(bn(eps)), &q, &k, &v, None)
        .unwrap()
        .out;
    let want = naive_softmax(&norm(&q, &pmu, &pvar), &norm(&pk, &pmu, &pvar), &pv);
    assert!(max_diff(&got, &want) <= 1e-12);
}

#[test]
fn constant_sequences_give_the_same_output_for_every_kind() {
    // §5.12: x_j all equal ⇒ every kind outputs v; BN's 0/0 is defined by ε_bn.
    let row_q = [0.3, -1.2, 0.7, 0.1, 2.0, -0.4];
    let row_v = [1.5, -2.0, 0.25, 3.0];
    let q = Mat::from_fn(13, 6, |_, c| row_q[c]);
    let v = Mat::from_fn(13, 4, |_, c| row_v[c]);
    for (name, cfg) in kinds() {
        let out = attention(&cfg, &q, &q, &v, None).unwrap().out;
        for i in 0..13 {
            for c in 0..4 {
                assert!((out[(i, c)] - row_v[c]).abs() <= 1e-14, "{name}");
            }
        }
    }
    let strict = AttentionConfig::softmax(2).with_batch_norm(bn(0.0));
    assert!(
        attention(&strict, &q, &q, &v, None).is_err(),
        "σ² = 0 with ε_bn = 0"
    );
}

#[test]
fn counted_work_matches_the_cost_formulas() {
    // §5.11: counted core MACs 2N²Dρ, probabilities ρHN², for 1D and 2D ratios (N divisible).
    let (n, d_model) = (16, 8);
    let [q, k, v] = qkv(7, n, d_model, d_model);
    let sh2d = ScaledHeads {
        ratios: vec![1, 2],
        pooling: Pooling::TwoD { rows: 4, cols: 4 },
        cls: false,
    };
    let sm = || AttentionConfig::softmax(2);
    let cases = [
        sm(),
        sm().with_ratios(vec![2, 4]),
        sm().with_scaled_heads(sh2d),
        sm().with_ratios(vec![4, 8]).with_batch_norm(bn(1e-5)),
        AttentionConfig::linear(2),
        AttentionConfig::linear(2).with_ratios(vec![2, 4]),
        sm().with_sparsity(Sparsity::TopK(5)),
        sm().with_sparsity(Sparsity::Window(3)),
    ];
    for cfg in cases {
        let counts = attention(&cfg, &q, &k, &v, None).unwrap().counts;
        let cost = attention_cost(&cfg, n, d_model, false).unwrap();
        assert_eq!(counts.core_macs as f64, cost.core_macs, "{cfg:?}");
        assert_eq!(counts.exps as f64, cost.exps, "{cfg:?}");
        assert_eq!(
            counts.attention_elements as f64, cost.attention_memory,
            "{cfg:?}"
        );
        if cfg.kernel == Kernel::Softmax && cfg.sparsity == Sparsity::Dense {
            let r = rho(&cfg);
            assert_eq!(cost.core_macs, 2.0 * (n * n * d_model) as f64 * r);
            assert_eq!(cost.attention_memory, r * (2 * n * n) as f64);
        }
    }
    assert_eq!(window_pairs(16, 3), 16.0 * 7.0 - 12.0);
}

#[test]
fn layer_ratios_follow_the_closed_forms() {
    let sm = |h| AttentionConfig::softmax(h);
    for (n, d) in [(64, 64), (197, 64), (512, 192), (4096, 384)] {
        let ratios = vec![1, 1, 2, 2, 4, 4, 8, 8]; // ρ = 15/32
        let sh = sm(8).with_ratios(ratios);
        let r = rho(&sh);
        assert!((r - 15.0 / 32.0).abs() < 1e-15);
        let (base, c) = (
            attention_cost(&sm(8), n, d, false).unwrap(),
            attention_cost(&sh, n, d, false).unwrap(),
        );
        let got = c.layer_macs() / base.layer_macs();
        assert!((got - layer_flop_ratio(n, d, r)).abs() < 1e-14);
        let got = c.block_macs(n, d) / base.block_macs(n, d);
        assert!((got - block_flop_ratio(n, d, r)).abs() < 1e-14);
        let early = attention_cost(&sh, n, d, true).unwrap();
        let got = early.layer_macs() / base.layer_macs();
        assert!((got - layer_flop_ratio_pool_before(n, d, r)).abs() < 1e-14);
        assert!((c.attention_memory / base.attention_memory - r).abs() < 1e-14);
        // §4.3: BN alone costs ≤ 1.05× softmax at N ≥ 64.
        let b = attention_cost(&sm(8).with_batch_norm(bn(1e-5)), n, d, false).unwrap();
        assert!((b.layer_macs() + b.normalization_ops) / base.layer_macs() <= 1.05);
    }
    // The spec's worked values: 0.697 at N = 197, D = 64, ρ = 0.5; DeiT-tiny 2D (1, 2, 4).
    assert!((layer_flop_ratio(197, 64, 0.5) - 0.697).abs() < 5e-4);
    let deit = sm(3).with_scaled_heads(ScaledHeads {
        ratios: vec![1, 2, 4],
        pooling: Pooling::TwoD { rows: 14, cols: 14 },
        cls: true,
    });
    assert_eq!(rho(&deit), 0.4375);
    assert!((layer_flop_ratio(197, 192, 0.4375) - 0.809).abs() < 5e-4);
    assert!((block_flop_ratio(197, 192, 0.4375) - 0.918).abs() < 5e-4);
}

#[test]
fn layer_applies_projections_around_attention() {
    let [x, _, _] = qkv(8, 6, 5, 5);
    let mut r = rng(9);
    let mut w = |rows, cols| random_mat(&mut r, rows, cols, 1.0);
    let (wq, wk, wv, wo) = (w(5, 4), w(5, 4), w(5, 4), w(4, 3));
    let cfg = AttentionConfig::softmax(2).with_batch_norm(bn(1e-5));
    let layer =
        AttentionLayer::new(cfg.clone(), wq.clone(), wk.clone(), wv.clone(), wo.clone()).unwrap();
    let got = layer.forward(&x, None).unwrap().out;
    let att = attention(&cfg, &(&x * &wq), &(&x * &wk), &(&x * &wv), None)
        .unwrap()
        .out;
    assert!(max_diff(&got, &(&att * &wo)) <= 1e-13);
    assert!(AttentionLayer::new(cfg.clone(), wq.clone(), wk, wv.clone(), w(3, 3)).is_err());
    assert!(layer.forward(&wq, None).is_err(), "X with the wrong width");
}

#[test]
fn bad_attention_input_is_an_error_not_a_panic() {
    let [q, k, v] = qkv(10, 6, 4, 4);
    let sm = AttentionConfig::softmax(2);
    let mut nan = q.clone();
    nan[(2, 3)] = f64::NAN;
    let errors = [
        attention(&sm, &nan, &k, &v, None),
        attention(&sm, &q, &k.subcols(0, 2).to_owned(), &v, None),
        attention(&sm, &q, &k, &v.subrows(0, 5).to_owned(), None),
        attention(&AttentionConfig::softmax(3), &q, &k, &v, None),
        attention(&sm, &q, &k, &v, Some(&[true; 5])),
        attention(&sm, &q, &k, &v, Some(&[false; 6])),
        attention(&sm.clone().with_ratios(vec![2]), &q, &k, &v, None),
        attention(&sm.clone().with_ratios(vec![0, 2]), &q, &k, &v, None),
        attention(
            &sm.clone().with_sparsity(Sparsity::TopK(0)),
            &q,
            &k,
            &v,
            None,
        ),
        attention(
            &sm.clone()
                .with_ratios(vec![2, 2])
                .with_sparsity(Sparsity::Window(1)),
            &q,
            &k,
            &v,
            None,
        ),
        attention(
            &sm.clone().with_batch_norm(BatchNorm {
                scope: BnScope::Neighbourhood,
                ..bn(1e-5)
            }),
            &q,
            &k,
            &v,
            None,
        ),
        attention(&sm.clone().with_batch_norm(bn(-1.0)), &q, &k, &v, None),
        attention(
            &sm.clone().with_scaled_heads(ScaledHeads {
                ratios: vec![2, 2],
                pooling: Pooling::TwoD { rows: 2, cols: 2 },
                cls: false,
            }),
            &q,
            &k,
            &v,
            None,
        ),
    ];
    for (i, e) in errors.into_iter().enumerate() {
        let msg = e.expect_err(&format!("case {i} must fail")).to_string();
        assert!(!msg.is_empty() && !msg.contains('\n'), "case {i}: {msg}");
    }
    assert!(
        attention_cost(&sm, 10, 7, false).is_err(),
        "D not a multiple of H"
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 48, ..Default::default() })]

    /// §5.6 and §5.7 on random multi-head instances with padding: Attention-BN is softmax with
    /// queries `(q − μ) ⊘ s²` over the valid keys, and (ε_bn = 0) invariant under `a∘x + c`.
    #[test]
    fn bn_identities_on_random_padded_instances(
        n in 3usize..10, heads in 1usize..3, d in 1usize..4, dv in 1usize..3,
        seed in 0u64..10_000, pad in proptest::collection::vec(proptest::bool::weighted(0.25), 10),
        log_eps in -3.0f64..0.0, a in proptest::collection::vec(0.2f64..5.0, 4),
        c in proptest::collection::vec(-3.0f64..3.0, 4),
    ) {
        let [q, k, v] = qkv(seed, n, heads * d, heads * dv);
        let mut valid: Vec<bool> = pad[..n].iter().map(|&p| !p).collect();
        valid[0] = true;
        valid[n - 1] = true;
        let eps = 10f64.powf(log_eps);
        let cfg = AttentionConfig::softmax(heads).with_batch_norm(bn(eps));
        let out = attention(&cfg, &q, &k, &v, Some(&valid)).unwrap().out;
        let keep: Vec<usize> = (0..n).filter(|&j| valid[j]).collect();
        for h in 0..heads {
            let kh = Mat::from_fn(keep.len(), d, |r, col| k[(keep[r], h * d + col)]);
            let vh = Mat::from_fn(keep.len(), dv, |r, col| v[(keep[r], h * dv + col)]);
            let (mu, var) = stats(&kh);
            let qt = Mat::from_fn(n, d, |i, col| (q[(i, h * d + col)] - mu[col]) / (var[col] + eps));
            let want = naive_softmax(&qt, &kh, &vh);
            for &i in &keep {
                for col in 0..dv {
                    let err = (out[(i, h * dv + col)] - want[(i, col)]).abs();
                    proptest::prop_assert!(err <= 1e-10, "head {}, row {}: {:e}", h, i, err);
                }
            }
        }
        // Affine invariance with ε_bn = 0 (a constant key dimension is then an error, not NaN).
        let strict = AttentionConfig::softmax(heads).with_batch_norm(bn(0.0));
        if let Ok(base) = attention(&strict, &q, &k, &v, Some(&valid)) {
            let map = |m: &Mat<f64>| {
                Mat::from_fn(n, heads * d, |i, j| a[j % 4] * m[(i, j)] + c[j % 4])
            };
            let moved = attention(&strict, &map(&q), &map(&k), &v, Some(&valid)).unwrap();
            let err = max_diff(&moved.out, &base.out);
            proptest::prop_assert!(err <= 1e-9, "affine: {:e}", err);
        }
    }
}
