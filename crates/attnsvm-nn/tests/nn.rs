//! The burn encoder against facts: the attention kinds against a naive f64 evaluation of their
//! formulas, padding invariance (outputs at valid tokens and the logits do not see padded
//! content), the learning-rate schedule, and a short training run on the shipped digits.

use attnsvm_nn::attention::{AttentionConfig, AttentionKind};
use attnsvm_nn::data::{default_dir, Dataset};
use attnsvm_nn::model::ClassifierConfig;
use attnsvm_nn::train::{train, TrainConfig};
use burn::tensor::{Bool, Distribution, Tensor, TensorData};

mod common;

use common::{affine, values};

/// The burn attention (f32) against the core crate's f64 reference forward pass, projections
/// included, on the valid tokens of a padded sequence; then padding invariance.
#[test]
fn attention_kinds_match_the_f64_reference_and_ignore_padded_keys() {
    common::attention_kinds_match_the_reference(1e-4, 1e-5);
}

#[test]
fn classifier_logits_do_not_see_padded_content() {
    let device = attnsvm_nn::cpu();
    let data = Dataset::japanese_vowels(&default_dir(), "train").unwrap();
    for (kind, bn, ratios) in [
        (AttentionKind::Softmax, false, vec![]),
        (AttentionKind::Linear, false, vec![]),
        (AttentionKind::Softmax, true, vec![]),
        (AttentionKind::Softmax, true, vec![1, 4]),
        (AttentionKind::Simplex, false, vec![]),
    ] {
        let cfg = ClassifierConfig::new(12, 29, 9)
            .with_batch_norm(bn)
            .with_ratios(ratios.clone())
            .with_d_model(16)
            .with_n_heads(2)
            .with_attention(kind);
        let (model, junk) = attnsvm_nn::with_seed(&device, 5, || {
            (
                cfg.init(&device),
                Tensor::<3>::random([8, 29, 12], Distribution::Normal(0.0, 3.0), &device),
            )
        });
        let idx: Vec<usize> = (0..8).collect();
        let (x, pad, _) = data.batch(&idx, &device);
        let pad = pad.expect("JapaneseVowels is padded");
        let a = values(model.forward(x.clone(), Some(pad.clone())));
        let padf = Tensor::<3>::ones([8, 29, 12], &device).mask_fill(
            pad.clone()
                .bool_not()
                .unsqueeze_dim::<3>(2)
                .expand([8, 29, 12]),
            0.0,
        );
        let b = values(model.forward(x + junk * padf, Some(pad)));
        let diff = a
            .iter()
            .zip(&b)
            .map(|(u, v)| (u - v).abs())
            .fold(0.0, f64::max);
        assert!(diff < 1e-5, "{kind:?} bn={bn} sh={ratios:?}: {diff:e}");
    }
}

#[test]
fn the_schedule_warms_up_linearly_then_decays_to_zero() {
    let cfg = TrainConfig::new().with_lr(1e-3).with_warmup_epochs(2);
    let (per, total) = (10, 100);
    assert!((cfg.lr_at(0, per, total) - 1e-3 / 20.0).abs() < 1e-15);
    assert!((cfg.lr_at(19, per, total) - 1e-3).abs() < 1e-15);
    assert!((cfg.lr_at(20, per, total) - 1e-3).abs() < 1e-15);
    assert!(cfg.lr_at(total, per, total).abs() < 1e-15);
    let lrs: Vec<f64> = (20..=total).map(|s| cfg.lr_at(s, per, total)).collect();
    assert!(lrs.windows(2).all(|w| w[1] <= w[0]));
}

#[test]
fn a_short_run_learns_the_digits() {
    let model = common::short_digits_run(&attnsvm_nn::cpu());
    assert_eq!(model.blocks.len(), 1);
}

#[test]
fn bad_sizes_are_errors_not_panics() {
    let device = attnsvm_nn::cpu();
    let all = Dataset::digits(&default_dir(), 2).unwrap();
    let (tr, te) = all.split(0.2, 0);
    let cfg = TrainConfig::new().with_epochs(1);
    let bad_heads = ClassifierConfig::new(4, 16, 10)
        .with_d_model(30)
        .with_n_heads(4);
    let e = train(&bad_heads, &cfg, &tr, &te, &device, None, |_| true).unwrap_err();
    assert!(e.to_string().contains("multiple of n_heads = 4"), "{e}");
    let wrong_features = ClassifierConfig::new(12, 16, 10);
    let e = train(&wrong_features, &cfg, &tr, &te, &device, None, |_| true).unwrap_err();
    assert!(e.to_string().contains("does not fit the model"), "{e}");
    let bad_ratios = ClassifierConfig::new(4, 16, 10).with_ratios(vec![2, 0, 1, 1]);
    let e = train(&bad_ratios, &cfg, &tr, &te, &device, None, |_| true).unwrap_err();
    assert!(e.to_string().contains("attention-SH"), "{e}");
    assert!(Dataset::digits(&default_dir(), 3).is_err());
    assert!(Dataset::japanese_vowels(&default_dir(), "valid").is_err());
}

#[test]
fn an_interrupted_run_resumes_from_its_checkpoint_to_the_same_model() {
    let device = attnsvm_nn::cpu();
    let all = Dataset::digits(&default_dir(), 2).unwrap();
    let (tr, te) = all.split(0.2, 3);
    let model_cfg = ClassifierConfig::new(4, 16, 10)
        .with_d_model(16)
        .with_layers(1);
    let cfg = TrainConfig::new().with_epochs(4).with_lr(5e-3).with_seed(7);
    let tmp = std::env::temp_dir().join(format!("attnsvm-nn-ckpt-{}", std::process::id()));
    let (a_dir, b_dir) = (tmp.join("a"), tmp.join("b"));
    let (a, ha) = train(&model_cfg, &cfg, &tr, &te, &device, Some(&a_dir), |_| true).unwrap();
    // Interrupted after epoch 2 ...
    let (_, hb1) = train(&model_cfg, &cfg, &tr, &te, &device, Some(&b_dir), |m| {
        m.epoch < 2
    })
    .unwrap();
    assert_eq!(hb1.len(), 2);
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(b_dir.join("state.json")).unwrap()).unwrap();
    assert_eq!(saved["history"].as_array().unwrap().len(), 2);
    // ... and resumed: the same epochs, the same metrics, the same model.
    let (b, hb) = train(&model_cfg, &cfg, &tr, &te, &device, Some(&b_dir), |_| true).unwrap();
    assert_eq!(hb.len(), 4);
    for (x, y) in ha.iter().zip(&hb) {
        assert_eq!(x.epoch, y.epoch);
        assert!(
            (x.train_loss - y.train_loss).abs() <= 1e-5 * x.train_loss,
            "{x:?} vs {y:?}"
        );
        assert!(
            (x.test_accuracy - y.test_accuracy).abs() <= 1.0 / te.n() as f64,
            "{x:?} vs {y:?}"
        );
    }
    let idx: Vec<usize> = (0..32).collect();
    let (x, _, _) = te.batch(&idx, &device);
    let (la, lb) = (
        values(a.forward(x.clone(), None)),
        values(b.forward(x, None)),
    );
    let diff = la
        .iter()
        .zip(&lb)
        .map(|(p, q)| (p - q).abs())
        .fold(0.0, f64::max);
    assert!(diff < 1e-4, "logits differ by {diff:e}");
    // A checkpoint of other settings is refused, not overwritten.
    let other = TrainConfig::new().with_epochs(5).with_seed(7);
    let e = train(&model_cfg, &other, &tr, &te, &device, Some(&b_dir), |_| {
        true
    })
    .unwrap_err();
    assert!(
        e.to_string().contains("a checkpoint of other settings"),
        "{e}"
    );
    std::fs::remove_dir_all(&tmp).unwrap();
}

/// The simplex kind (model (4) of "Convexifying Transformers"): row-stochastic mixing over the
/// valid keys, the same for every input, applied to the values.
#[test]
fn simplex_attention_mixes_values_with_row_stochastic_weights() {
    let device = attnsvm_nn::cpu();
    let (n, d, h, valid) = (5, 4, 2, 3);
    let (mut att, x, a) = attnsvm_nn::with_seed(&device, 9, || {
        (
            AttentionConfig::new(d, h, AttentionKind::Simplex)
                .with_max_len(n)
                .init(&device),
            Tensor::<3>::random([2, n, d], Distribution::Normal(0.0, 1.0), &device),
            Tensor::<3>::random([h, n, n], Distribution::Normal(0.0, 2.0), &device),
        )
    });
    att.mixing = Some(burn::module::Param::from_tensor(a.clone()));
    let mask: Vec<bool> = (0..2 * n).map(|e| e % n >= valid).collect();
    let pad = Tensor::<2, Bool>::from_data(TensorData::new(mask, [2, n]), &device);
    let w = values(att.mixing_weights(2, n, Some(&pad)).unwrap());
    let a = values(a);
    for (r, row) in w.chunks(n).enumerate() {
        let (head, i) = ((r / n) % h, r % n);
        assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-6);
        assert!(
            row[valid..].iter().all(|&p| p < 1e-12),
            "padded keys get weight"
        );
        // softmax of the logits over the valid keys
        let logits = &a[(head * n + i) * n..(head * n + i) * n + valid];
        let z: f64 = logits.iter().map(|l| l.exp()).sum();
        for j in 0..valid {
            assert!((row[j] - logits[j].exp() / z).abs() < 1e-6);
        }
    }
    // The output is W_O(Σ_j W_ij v_j) + b_O: compare with the value projection mixed by hand.
    let out = values(att.forward(x.clone(), Some(pad)));
    let xs = values(x);
    let p = |l: &burn::nn::Linear| {
        (
            values(l.weight.val()),
            values(l.bias.as_ref().unwrap().val()),
        )
    };
    let ((wv, bv), (wo, bo)) = (p(&att.value), p(&att.output));
    let dk = d / h;
    for s in 0..2 {
        let v = affine(&xs[s * n * d..(s + 1) * n * d], n, &wv, &bv, d);
        let mut mixed = vec![0.0; n * d];
        for i in 0..n {
            for c in 0..d {
                let head = c / dk;
                mixed[i * d + c] = (0..n)
                    .map(|j| w[((s * h + head) * n + i) * n + j] * v[j * d + c])
                    .sum();
            }
        }
        let expect = affine(&mixed, n, &wo, &bo, d);
        let got = &out[s * n * d..(s + 1) * n * d];
        let err = got
            .iter()
            .zip(&expect)
            .map(|(g, e)| (g - e).abs())
            .fold(0.0, f64::max);
        assert!(err < 1e-5, "sample {s}: {err:e}");
    }
    let bad = AttentionConfig::new(d, h, AttentionKind::Simplex);
    assert!(bad.validate().is_err(), "max_len 0 must be refused");
}

/// Every kind's attention maps are distributions over the valid tokens and reproduce the layer:
/// `W_O·(maps·V)` is the forward pass at the valid tokens (SH: the pooled weights spread over the
/// pooled tokens; linear: the explicit weights of the O(N) form; simplex: its mixing matrix).
#[test]
fn attention_maps_are_distributions_that_reproduce_the_layer() {
    use attnsvm_nn::attention::Sparsity;
    let device = attnsvm_nn::cpu();
    let (b, n, d, h) = (2, 6, 8, 2);
    let base = |kind| AttentionConfig::new(d, h, kind).with_max_len(n);
    let configs = [
        base(AttentionKind::Softmax),
        base(AttentionKind::Linear),
        base(AttentionKind::Linear).with_sparsity(Sparsity::TopK(2)),
        base(AttentionKind::Softmax).with_sparsity(Sparsity::Window(1)),
        base(AttentionKind::Softmax).with_batch_norm(true),
        base(AttentionKind::Softmax).with_ratios(vec![2, 3]),
        base(AttentionKind::Linear).with_ratios(vec![3, 1]),
        base(AttentionKind::Softmax)
            .with_batch_norm(true)
            .with_ratios(vec![2, 1])
            .with_grid(Some([2, 3])),
        base(AttentionKind::Simplex),
    ];
    // Sequence 1 has its last two tokens padded.
    let mask: Vec<bool> = (0..b * n).map(|e| e >= n && e % n >= 4).collect();
    let pad = Tensor::<2, Bool>::from_data(TensorData::new(mask.clone(), [b, n]), &device);
    for cfg in configs {
        cfg.validate().unwrap();
        let (att, x) = attnsvm_nn::with_seed(&device, 5, || {
            let mut att = cfg.init(&device);
            if att.mixing.is_some() {
                // Non-uniform mixing, so that the test sees the matrix.
                let logits =
                    Tensor::<3>::random([h, n, n], Distribution::Normal(0.0, 1.0), &device);
                att.mixing = Some(burn::module::Param::from_tensor(logits));
            }
            let x = Tensor::<3>::random([b, n, d], Distribution::Normal(0.0, 1.0), &device);
            (att, x)
        });
        let maps = att.maps(x.clone(), Some(pad.clone()));
        assert_eq!(maps.dims(), [b, h, n, n]);
        let m = values(maps.clone());
        for (row, w) in m.chunks(n).enumerate() {
            let seq = row / (h * n);
            if mask[seq * n + row % n] {
                continue; // a padded query: its row is not used
            }
            let total: f64 = w.iter().sum();
            assert!(
                (total - 1.0).abs() < 1e-5,
                "{cfg:?}: row {row} sums to {total}"
            );
            for (j, &wj) in w.iter().enumerate() {
                assert!(wj >= -1e-7, "{cfg:?}: negative weight");
                if mask[seq * n + j] {
                    assert!(wj.abs() < 1e-7, "{cfg:?}: padded key {j} has weight {wj}");
                }
            }
        }
        let v = att
            .value
            .forward(x.clone())
            .reshape([b, n, h, d / h])
            .swap_dims(1, 2);
        let rebuilt = values(
            att.output
                .forward(maps.matmul(v).swap_dims(1, 2).reshape([b, n, d])),
        );
        let out = values(att.forward(x, Some(pad.clone())));
        let err = (0..b * n * d)
            .filter(|e| !mask[e / d])
            .map(|e| (out[e] - rebuilt[e]).abs())
            .fold(0.0, f64::max);
        assert!(
            err < 1e-5,
            "{cfg:?}: maps·V differs from the layer by {err:e}"
        );
    }
}

/// The retrieval task: one motif of marker tokens in each half, the label says whether they are
/// the same motif, exactly half the labels are 1, a seed gives the same data; bad sizes are errors.
#[test]
fn the_retrieval_task_hides_one_motif_per_half() {
    use attnsvm_nn::data::{MARKERS, MOTIFS, MOTIF_LEN, NOISE};
    let (count, len) = (40, 64);
    let d = Dataset::retrieval(count, len, 7).unwrap();
    assert_eq!(
        (d.n(), d.len, d.features, d.classes),
        (count, len, NOISE + MARKERS, 2)
    );
    assert_eq!(d.y.iter().filter(|&&y| y == 1).count(), count / 2);
    for (i, seq) in d.x.chunks(len * d.features).enumerate() {
        let symbols: Vec<usize> = seq
            .chunks(d.features)
            .map(|t| {
                assert_eq!(t.iter().sum::<f32>(), 1.0, "one-hot tokens");
                t.iter().position(|&v| v == 1.0).unwrap()
            })
            .collect();
        let motif = |half: &[usize]| -> usize {
            let at: Vec<usize> = (0..half.len()).filter(|&t| half[t] >= NOISE).collect();
            assert_eq!(at.len(), MOTIF_LEN, "sequence {i}: one motif per half");
            assert_eq!(at[MOTIF_LEN - 1] - at[0], MOTIF_LEN - 1, "contiguous motif");
            let found: Vec<usize> = at.iter().map(|&t| half[t] - NOISE).collect();
            MOTIFS.iter().position(|m| m[..] == found[..]).unwrap()
        };
        let (a, b) = (motif(&symbols[..len / 2]), motif(&symbols[len / 2..]));
        assert_eq!(d.y[i], i64::from(a == b), "sequence {i}");
    }
    assert_eq!(Dataset::retrieval(count, len, 7).unwrap().x, d.x);
    for (n, l) in [(4, 7), (4, 6), (4, 5000), (0, 64)] {
        let e = Dataset::retrieval(n, l, 0).unwrap_err().to_string();
        assert!(e.contains("retrieval"), "{e}");
    }
}
