//! Training: full passes over a seeded shuffle of the training set in minibatches, AdamW with a
//! linear warm-up and a cosine decay of the learning rate, cross-entropy loss, and an evaluation
//! on the held-out split after every epoch.
//!
//! **Checkpoints.** With a checkpoint directory, every finished epoch writes `model.bpk` and
//! `optim.bpk` (burnpack records of the parameters and the AdamW moments) and `state.json` (the
//! configurations, the epoch, the step and the metrics so far), each through a temporary file and
//! a rename, `state.json` last. A run started with the same configurations on a directory that
//! holds a checkpoint continues after its epoch: an interrupted run loses at most the epoch in
//! progress. The shuffle of epoch `e` is seeded by `(seed, e)`, so a resumed run visits the
//! minibatches of an uninterrupted one.

use std::path::Path;
use std::time::Instant;

use burn::config::Config;
use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{AdamWConfig, GradientsParams};
use burn::tensor::Device;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

/// What `state.json` of a checkpoint holds.
#[derive(Serialize, Deserialize)]
struct Checkpoint {
    model: serde_json::Value,
    train: serde_json::Value,
    step: usize,
    history: Vec<EpochMetrics>,
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> attnsvm::Error {
    attnsvm::Error::Io {
        path: path.to_path_buf(),
        source: std::io::Error::other(e.to_string()),
    }
}

/// Write `dir/name` through `dir/name.tmp` and a rename.
fn atomically(
    dir: &Path,
    name: &str,
    write: impl FnOnce(&Path) -> Result<(), String>,
) -> attnsvm::Result<()> {
    let (tmp, dest) = (dir.join(format!("{name}.tmp")), dir.join(name));
    write(&tmp).map_err(|e| io_err(&tmp, e))?;
    std::fs::rename(&tmp, &dest).map_err(|e| io_err(&dest, e))
}

/// Train a fresh model of `model_cfg` on `train` (initialized under [`crate::with_seed`] with
/// `cfg.seed`, so the initialization and the minibatch order are reproducible), evaluating on `test` after every
/// epoch; `on_epoch` returning `false` stops after that epoch. With `checkpoint`, every epoch is
/// saved there and a matching checkpoint found there is resumed (module docs).
pub fn train(
    model_cfg: &ClassifierConfig,
    cfg: &TrainConfig,
    train: &Dataset,
    test: &Dataset,
    device: &Device,
    checkpoint: Option<&Path>,
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
    let mut model = model_cfg.init_seeded(device, cfg.seed);
    let mut optim = AdamWConfig::new()
        .with_weight_decay(cfg.weight_decay as f32)
        .init();
    let configs = (
        serde_json::to_value(model_cfg).map_err(|e| attnsvm::Error::Invalid(e.to_string()))?,
        serde_json::to_value(cfg).map_err(|e| attnsvm::Error::Invalid(e.to_string()))?,
    );
    let mut step = 0;
    let mut history = Vec::new();
    if let Some(dir) = checkpoint {
        std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
        let state_path = dir.join("state.json");
        if state_path.is_file() {
            let text = std::fs::read_to_string(&state_path).map_err(|e| io_err(&state_path, e))?;
            let saved: Checkpoint = serde_json::from_str(&text)
                .map_err(|e| attnsvm::Error::Invalid(format!("{}: {e}", state_path.display())))?;
            if (saved.model, saved.train) != configs {
                return Err(attnsvm::Error::Invalid(format!(
                    "{}: a checkpoint of other settings; use another directory or remove it",
                    dir.display()
                )));
            }
            let record = burn::store::ModuleRecord::load(dir.join("model.bpk"))
                .map_err(|e| io_err(&dir.join("model.bpk"), e))?;
            model = model.load_record(record);
            optim = optim
                .load(dir.join("optim.bpk"))
                .map_err(|e| io_err(&dir.join("optim.bpk"), e))?;
            step = saved.step;
            history = saved.history;
        }
    }
    let loss_fn = CrossEntropyLossConfig::new().init(device);
    let steps_per_epoch = train.n().div_ceil(cfg.batch_size.max(1));
    let total = steps_per_epoch * cfg.epochs;
    for epoch in history.len()..cfg.epochs {
        let start = Instant::now();
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0xba7c ^ ((epoch as u64) << 32));
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
        history.push(m.clone());
        if let Some(dir) = checkpoint {
            let record = model.clone().into_record();
            atomically(dir, "model.bpk", |p| {
                record.save(p).map_err(|e| e.to_string())
            })?;
            atomically(dir, "optim.bpk", |p| {
                optim.save(p).map_err(|e| e.to_string())
            })?;
            let state = Checkpoint {
                model: configs.0.clone(),
                train: configs.1.clone(),
                step,
                history: history.clone(),
            };
            let text = serde_json::to_string_pretty(&state).map_err(|e| io_err(dir, e))?;
            atomically(dir, "state.json", |p| {
                std::fs::write(p, text).map_err(|e| e.to_string())
            })?;
        }
        if !on_epoch(&m) {
            break;
        }
    }
    Ok((model, history))
}
