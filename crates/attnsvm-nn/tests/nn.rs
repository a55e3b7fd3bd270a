//! The burn encoder against facts: the attention kinds against a naive f64 evaluation of their
//! formulas, padding invariance (outputs at valid tokens and the logits do not see padded
//! content), the learning-rate schedule, and a short training run on the shipped digits.

use attnsvm_nn::attention::{AttentionConfig, AttentionKind};
use attnsvm_nn::data::{default_dir, Dataset};
use attnsvm_nn::model::ClassifierConfig;
use attnsvm_nn::train::{train, TrainConfig};
use burn::tensor::{Bool, Tensor, TensorData};

fn values<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data().convert::<f64>().try_to_vec::<f64>().unwrap()
}

/// `x W + b` with burn's `[d_in, d_out]` weight layout.
fn affine(x: &[f64], n: usize, w: &[f64], b: &[f64], d: usize) -> Vec<f64> {
    let mut out = vec![0.0; n * d];
    for i in 0..n {
        for o in 0..d {
            out[i * d + o] = b[o] + (0..d).map(|k| x[i * d + k] * w[k * d + o]).sum::<f64>();
        }
    }
    out
}

#[test]
fn attention_kinds_match_their_formulas_and_ignore_padded_keys() {
    let device = attnsvm_nn::cpu();
    device.seed(3);
    let (n, d, h) = (5, 8, 2);
    for kind in [AttentionKind::Softmax, AttentionKind::Linear] {
        let att = AttentionConfig::new(d, h, kind).init(&device);
        let x = Tensor::<3>::random(
            [1, n, d],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            &device,
        );
        let valid = 3; // tokens 3 and 4 are padding
        let mask: Vec<bool> = (0..n).map(|t| t >= valid).collect();
        let pad = Tensor::<2, Bool>::from_data(TensorData::new(mask, [1, n]), &device);
        let out = values(att.forward(x.clone(), Some(pad.clone())));
        // The naive evaluation over the valid keys only.
        let xs = values(x.clone());
        let p = |l: &burn::nn::Linear| {
            (
                values(l.weight.val()),
                values(l.bias.as_ref().unwrap().val()),
            )
        };
        let ((wq, bq), (wk, bk), (wv, bv), (wo, bo)) =
            (p(&att.query), p(&att.key), p(&att.value), p(&att.output));
        let (q, k, v) = (
            affine(&xs, n, &wq, &bq, d),
            affine(&xs, n, &wk, &bk, d),
            affine(&xs, n, &wv, &bv, d),
        );
        let dk = d / h;
        let phi = |u: f64| if u > 0.0 { u + 1.0 } else { u.exp() };
        let mut mixed = vec![0.0; n * d];
        for head in 0..h {
            let r = head * dk..(head + 1) * dk;
            for i in 0..n {
                let weights: Vec<f64> = (0..valid)
                    .map(|j| match kind {
                        AttentionKind::Softmax => {
                            let s: f64 = r.clone().map(|c| q[i * d + c] * k[j * d + c]).sum();
                            (s / (dk as f64).sqrt()).exp()
                        }
                        AttentionKind::Linear => r
                            .clone()
                            .map(|c| phi(q[i * d + c]) * phi(k[j * d + c]))
                            .sum(),
                    })
                    .collect();
                let total: f64 = weights.iter().sum();
                for c in r.clone() {
                    mixed[i * d + c] =
                        (0..valid).map(|j| weights[j] * v[j * d + c]).sum::<f64>() / total;
                }
            }
        }
        let expect = affine(&mixed, n, &wo, &bo, d);
        let err = out
            .iter()
            .zip(&expect)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(err < 1e-4, "{kind:?}: max difference {err:e}");

        // Changing the padded tokens changes nothing at the valid ones.
        let noise = Tensor::<3>::random(
            [1, n, d],
            burn::tensor::Distribution::Normal(0.0, 5.0),
            &device,
        );
        let keep = Tensor::<3>::from_data(
            TensorData::new(
                (0..n * d)
                    .map(|e| if e / d < valid { 0.0f32 } else { 1.0 })
                    .collect::<Vec<_>>(),
                [1, n, d],
            ),
            &device,
        );
        let out2 = values(att.forward(x + noise * keep, Some(pad)));
        let diff = out[..valid * d]
            .iter()
            .zip(&out2[..valid * d])
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(diff < 1e-5, "{kind:?}: padded content leaked, {diff:e}");
    }
}

#[test]
fn classifier_logits_do_not_see_padded_content() {
    let device = attnsvm_nn::cpu();
    device.seed(5);
    let data = Dataset::japanese_vowels(&default_dir(), "train").unwrap();
    for kind in [AttentionKind::Softmax, AttentionKind::Linear] {
        let model = ClassifierConfig::new(12, 29, 9)
            .with_d_model(16)
            .with_n_heads(2)
            .with_attention(kind)
            .init(&device);
        let idx: Vec<usize> = (0..8).collect();
        let (x, pad, _) = data.batch(&idx, &device);
        let pad = pad.expect("JapaneseVowels is padded");
        let a = values(model.forward(x.clone(), Some(pad.clone())));
        let junk = Tensor::<3>::random(
            [8, 29, 12],
            burn::tensor::Distribution::Normal(0.0, 3.0),
            &device,
        );
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
        assert!(diff < 1e-5, "{kind:?}: {diff:e}");
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
    let device = attnsvm_nn::cpu();
    let all = Dataset::digits(&default_dir(), 2).unwrap();
    let (tr, te) = all.split(0.2, 0);
    assert_eq!((tr.n(), te.n()), (1438, 359));
    let model_cfg = ClassifierConfig::new(4, 16, 10)
        .with_d_model(32)
        .with_n_heads(4)
        .with_layers(1);
    let cfg = TrainConfig::new()
        .with_epochs(12)
        .with_lr(5e-3)
        .with_batch_size(32)
        .with_seed(1);
    let (model, hist) = train(&model_cfg, &cfg, &tr, &te, &device, |_| true).unwrap();
    for m in &hist {
        println!("{m:?}");
    }
    assert_eq!(hist.len(), 12);
    assert!(hist.last().unwrap().train_loss < 0.5 * hist[0].train_loss);
    // Ten classes: chance is 10 %.
    assert!(
        hist.last().unwrap().test_accuracy > 0.8,
        "{:?}",
        hist.last()
    );
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
    let e = train(&bad_heads, &cfg, &tr, &te, &device, |_| true).unwrap_err();
    assert!(e.to_string().contains("multiple of n_heads = 4"), "{e}");
    let wrong_features = ClassifierConfig::new(12, 16, 10);
    let e = train(&wrong_features, &cfg, &tr, &te, &device, |_| true).unwrap_err();
    assert!(e.to_string().contains("does not fit the model"), "{e}");
    assert!(Dataset::digits(&default_dir(), 3).is_err());
    assert!(Dataset::japanese_vowels(&default_dir(), "valid").is_err());
}
