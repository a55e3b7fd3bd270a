//! What the f32 (`nn.rs`) and f64 (`nn_f64.rs`) test binaries share: the attention kinds against
//! the core crate's f64 reference. Two binaries because burn fixes the float type once per process.

use attnsvm_nn::attention::{AttentionConfig, AttentionKind};
use attnsvm_nn::data::{default_dir, Dataset};
use attnsvm_nn::model::{Classifier, ClassifierConfig};
use attnsvm_nn::train::{train, TrainConfig};
use burn::tensor::{Bool, Distribution, Tensor, TensorData};

pub fn values<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data().convert::<f64>().try_to_vec::<f64>().unwrap()
}

/// `x W + b` with burn's `[d_in, d_out]` weight layout.
pub fn affine(x: &[f64], n: usize, w: &[f64], b: &[f64], d: usize) -> Vec<f64> {
    let mut out = vec![0.0; n * d];
    for i in 0..n {
        for o in 0..d {
            out[i * d + o] = b[o] + (0..d).map(|k| x[i * d + k] * w[k * d + o]).sum::<f64>();
        }
    }
    out
}

/// The burn attention against the core crate's f64 reference forward pass
/// (`attnsvm::model::attention`), projections included, on the valid tokens of a padded sequence;
/// then padding invariance: differences below `tol` and `pad_tol`.
pub fn attention_kinds_match_the_reference(tol: f64, pad_tol: f64) {
    use attnsvm::model::attention::{
        attention, AttentionConfig as Reference, BatchNorm, Pooling, ScaledHeads,
        Sparsity as RefSparsity,
    };
    use attnsvm_nn::attention::Sparsity;
    let device = attnsvm_nn::cpu();
    let (n, d, h) = (6, 8, 2);
    let bn = BatchNorm::default;
    // (kind, BN, SH ratios, the reference configuration)
    let cases = [
        (AttentionKind::Softmax, false, vec![], Reference::softmax(h)),
        (AttentionKind::Linear, false, vec![], Reference::linear(h)),
        (
            AttentionKind::Softmax,
            true,
            vec![],
            Reference::softmax(h).with_batch_norm(bn()),
        ),
        (
            AttentionKind::Linear,
            true,
            vec![],
            Reference::linear(h).with_batch_norm(bn()),
        ),
        (
            AttentionKind::Softmax,
            false,
            vec![2, 3],
            Reference::softmax(h).with_ratios(vec![2, 3]),
        ),
        (
            AttentionKind::Linear,
            false,
            vec![4, 1],
            Reference::linear(h).with_ratios(vec![4, 1]),
        ),
        (
            AttentionKind::Softmax,
            true,
            vec![3, 2],
            Reference::softmax(h)
                .with_batch_norm(bn())
                .with_ratios(vec![3, 2]),
        ),
    ];
    let sparse = [
        (
            AttentionKind::Softmax,
            false,
            Sparsity::TopK(3),
            Reference::softmax(h).with_sparsity(RefSparsity::TopK(3)),
        ),
        (
            AttentionKind::Linear,
            false,
            Sparsity::TopK(2),
            Reference::linear(h).with_sparsity(RefSparsity::TopK(2)),
        ),
        (
            AttentionKind::Softmax,
            false,
            Sparsity::Window(1),
            Reference::softmax(h).with_sparsity(RefSparsity::Window(1)),
        ),
        (
            AttentionKind::Linear,
            false,
            Sparsity::Window(2),
            Reference::linear(h).with_sparsity(RefSparsity::Window(2)),
        ),
        (
            AttentionKind::Softmax,
            true,
            Sparsity::Window(1),
            Reference::softmax(h)
                .with_batch_norm(bn())
                .with_sparsity(RefSparsity::Window(1)),
        ),
    ];
    // 2D pooling on the 2×3 token grid: head 0 pools the windows {0, 1, 3, 4} and {2, 5}.
    let grid = [2, 3];
    let two_d = |ratios: Vec<usize>| ScaledHeads {
        ratios,
        pooling: Pooling::TwoD {
            rows: grid[0],
            cols: grid[1],
        },
        cls: false,
    };
    let grids = [
        (
            AttentionKind::Softmax,
            false,
            vec![2, 1],
            Reference::softmax(h).with_scaled_heads(two_d(vec![2, 1])),
        ),
        (
            AttentionKind::Softmax,
            true,
            vec![1, 2],
            Reference::softmax(h)
                .with_batch_norm(bn())
                .with_scaled_heads(two_d(vec![1, 2])),
        ),
        (
            AttentionKind::Linear,
            false,
            vec![2, 2],
            Reference::linear(h).with_scaled_heads(two_d(vec![2, 2])),
        ),
    ];
    let all = cases
        .into_iter()
        .map(|(kind, bn, ratios, r)| (kind, bn, ratios, None, Sparsity::Dense, r))
        .chain(
            grids
                .into_iter()
                .map(|(kind, bn, ratios, r)| (kind, bn, ratios, Some(grid), Sparsity::Dense, r)),
        )
        .chain(
            sparse
                .into_iter()
                .map(|(kind, bn, sp, r)| (kind, bn, vec![], None, sp, r)),
        );
    for (kind, bn, ratios, grid, sparsity, reference) in all {
        let (att, x, noise) = attnsvm_nn::with_seed(&device, 3, || {
            (
                AttentionConfig::new(d, h, kind)
                    .with_batch_norm(bn)
                    .with_sparsity(sparsity)
                    .with_ratios(ratios.clone())
                    .with_grid(grid)
                    .init(&device),
                Tensor::<3>::random([1, n, d], Distribution::Normal(0.0, 1.0), &device),
                Tensor::<3>::random([1, n, d], Distribution::Normal(0.0, 5.0), &device),
            )
        });
        let valid = 4; // tokens 4 and 5 are padding
        let mask: Vec<bool> = (0..n).map(|t| t >= valid).collect();
        let pad = Tensor::<2, Bool>::from_data(TensorData::new(mask.clone(), [1, n]), &device);
        let out = values(att.forward(x.clone(), Some(pad.clone())));
        let xs = values(x.clone());
        let p = |l: &burn::nn::Linear| {
            (
                values(l.weight.val()),
                values(l.bias.as_ref().unwrap().val()),
            )
        };
        let ((wq, bq), (wk, bk), (wv, bv), (wo, bo)) =
            (p(&att.query), p(&att.key), p(&att.value), p(&att.output));
        let mat = |a: Vec<f64>| faer::Mat::from_fn(n, d, |i, c| a[i * d + c]);
        let (q, k, v) = (
            mat(affine(&xs, n, &wq, &bq, d)),
            mat(affine(&xs, n, &wk, &bk, d)),
            mat(affine(&xs, n, &wv, &bv, d)),
        );
        let keep: Vec<bool> = mask.iter().map(|m| !m).collect();
        let mixed = attention(&reference, &q, &k, &v, Some(&keep)).unwrap().out;
        let flat: Vec<f64> = (0..n * d).map(|e| mixed[(e / d, e % d)]).collect();
        let expect = affine(&flat, n, &wo, &bo, d);
        let err = out[..valid * d]
            .iter()
            .zip(&expect[..valid * d])
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(
            err < tol,
            "{kind:?} bn={bn} sh={ratios:?} grid={grid:?}: max difference {err:e}"
        );

        // Changing the padded tokens changes nothing at the valid ones.
        let at_pad: Vec<f32> = (0..n * d)
            .map(|e| if e / d < valid { 0.0 } else { 1.0 })
            .collect();
        let at_pad = Tensor::<3>::from_data(TensorData::new(at_pad, [1, n, d]), &device);
        let out2 = values(att.forward(x + noise * at_pad, Some(pad)));
        let diff = out[..valid * d]
            .iter()
            .zip(&out2[..valid * d])
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(
            diff < pad_tol,
            "{kind:?} bn={bn}: padded content leaked, {diff:e}"
        );
    }
}

/// Twelve epochs of a one-block encoder on the shipped digits (2×2 patches): the training loss
/// halves and the test accuracy passes 80 % (chance is 10 %).
pub fn short_digits_run(device: &burn::tensor::Device) -> Classifier {
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
    let (model, hist) = train(&model_cfg, &cfg, &tr, &te, device, None, |_| true).unwrap();
    let last = hist.last().unwrap();
    assert_eq!(hist.len(), 12);
    assert!(last.train_loss < 0.5 * hist[0].train_loss, "{hist:?}");
    assert!(last.test_accuracy > 0.8, "{hist:?}");
    model
}
