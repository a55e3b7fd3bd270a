//! Training: full passes over a seeded shuffle of the training set in minibatches, AdamW with a
//! linear warm-up and a cosine decay of the learning rate, cross-entropy loss, and an evaluation
//! on the held-out split after every epoch.

use std::time::Instant;

use burn::config::Config;
use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{AdamWConfig, GradientsParams};
use burn::tensor::Device;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::data::Dataset;
use crate::model::{Classifier, ClassifierConfig};

/// Optimization settings.
#[derive(Config, Debug)]
pub struct TrainConfig {
    #[config(default = 20)]
    pub epochs: usize,
    #[config(default = 64)]
    pub batch_size: usize,
    /// Peak learning rate.
    #[config(default = 2e-3)]
    pub lr: f64,
    #[config(default = 0.01)]
    pub weight_decay: f64,
    /// Epochs of linear warm-up before the cosine decay.
    #[config(default = 1)]
    pub warmup_epochs: usize,
    #[config(default = 0)]
    pub seed: u64,
}

/// What one epoch measured.
#[derive(Debug, Clone, Serialize)]
pub struct EpochMetrics {
    pub epoch: usize,
    /// Mean cross-entropy over the epoch's minibatches.
    pub train_loss: f64,
    pub train_accuracy: f64,
    pub test_accuracy: f64,
    /// The learning rate of the epoch's last step.
    pub lr: f64,
    pub seconds: f64,
}

impl TrainConfig {
    /// The learning rate at optimizer step `step` of `total`.
    pub fn lr_at(&self, step: usize, steps_per_epoch: usize, total: usize) -> f64 {
        let warm = self.warmup_epochs * steps_per_epoch;
        if step < warm {
            return self.lr * (step + 1) as f64 / warm as f64;
        }
        let t = (step - warm) as f64 / (total - warm).max(1) as f64;
        0.5 * self.lr * (1.0 + (std::f64::consts::PI * t).cos())
    }
}

/// The accuracy of `model` on `data`, in batches of `batch` (no gradients).
pub fn accuracy(model: &Classifier, data: &Dataset, batch: usize, device: &Device) -> f64 {
    let model = model.valid();
    let idx: Vec<usize> = (0..data.n()).collect();
    let mut right = 0usize;
    for chunk in idx.chunks(batch.max(1)) {
        let (x, pad, y) = data.batch(chunk, device);
        let pred = model.forward(x, pad).argmax(1).reshape([chunk.len()]);
        right += pred.equal(y).int().sum().into_scalar::<i64>() as usize;
    }
    right as f64 / data.n().max(1) as f64
}

/// Train a fresh model of `model_cfg` on `train` (the device is seeded with `cfg.seed` first, so
/// the initialization and the minibatch order are reproducible), evaluating on `test` after every
/// epoch; `on_epoch` returning `false` stops after that epoch.
pub fn train(
    model_cfg: &ClassifierConfig,
    cfg: &TrainConfig,
    train: &Dataset,
    test: &Dataset,
    device: &Device,
    mut on_epoch: impl FnMut(&EpochMetrics) -> bool,
) -> attnsvm::Result<(Classifier, Vec<EpochMetrics>)> {
    model_cfg.validate()?;
    if cfg.epochs == 0 || cfg.batch_size == 0 || !(cfg.lr > 0.0 && cfg.lr.is_finite()) {
        return Err(attnsvm::Error::Invalid(format!(
            "training: epochs {}, batch size {} must be ≥ 1 and lr {} positive",
            cfg.epochs, cfg.batch_size, cfg.lr
        )));
    }
    for (name, d) in [("train", train), ("test", test)] {
        if d.features != model_cfg.features
            || d.len > model_cfg.max_len
            || d.classes > model_cfg.classes
            || d.n() == 0
        {
            return Err(attnsvm::Error::Invalid(format!(
                "training: the {name} set ({} sequences of {} tokens × {} features, {} classes) does not fit the model ({} features, {} tokens, {} classes)",
                d.n(), d.len, d.features, d.classes, model_cfg.features, model_cfg.max_len, model_cfg.classes
            )));
        }
    }
    device.seed(cfg.seed);
    let mut model = model_cfg.init(device);
    let mut optim = AdamWConfig::new()
        .with_weight_decay(cfg.weight_decay as f32)
        .init();
    let loss_fn = CrossEntropyLossConfig::new().init(device);
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0xba7c);
    let steps_per_epoch = train.n().div_ceil(cfg.batch_size.max(1));
    let total = steps_per_epoch * cfg.epochs;
    let mut step = 0;
    let mut history = Vec::new();
    for epoch in 0..cfg.epochs {
        let start = Instant::now();
        let mut order: Vec<usize> = (0..train.n()).collect();
        order.shuffle(&mut rng);
        let (mut loss_sum, mut right) = (0.0, 0usize);
        let mut lr = cfg.lr;
        for chunk in order.chunks(cfg.batch_size.max(1)) {
            let (x, pad, y) = train.batch(chunk, device);
            let logits = model.forward(x, pad);
            let pred = logits.clone().argmax(1).reshape([chunk.len()]);
            right += pred.equal(y.clone()).int().sum().into_scalar::<i64>() as usize;
            let loss = loss_fn.forward(logits, y);
            loss_sum += loss.clone().into_scalar::<f64>() * chunk.len() as f64;
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            lr = cfg.lr_at(step, steps_per_epoch, total);
            model = optim.step(lr, model, grads);
            step += 1;
        }
        let m = EpochMetrics {
            epoch: epoch + 1,
            train_loss: loss_sum / train.n() as f64,
            train_accuracy: right as f64 / train.n() as f64,
            test_accuracy: accuracy(&model, test, 256, device),
            lr,
            seconds: start.elapsed().as_secs_f64(),
        };
        let go_on = on_epoch(&m);
        history.push(m);
        if !go_on {
            break;
        }
    }
    Ok((model, history))
}
