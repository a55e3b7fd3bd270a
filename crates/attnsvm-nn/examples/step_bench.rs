//! Time one training step (forward, backward, AdamW update) of the encoder classifier on a random
//! batch, for the comparison with PyTorch in `bench/nn_step_vs_torch.py`.
//!
//! ```sh
//! cargo run --release -p attnsvm-nn --example step_bench -- BATCH TOKENS FEATURES D_MODEL HEADS LAYERS STEPS
//! ```
//!
//! Prints one JSON line: the settings and the mean and median milliseconds per step after 5
//! warm-up steps.

use std::time::Instant;

use attnsvm_nn::model::ClassifierConfig;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{AdamWConfig, GradientsParams};
use burn::tensor::{Distribution, Int, Tensor, TensorData};

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("every argument is a positive integer"))
        .collect();
    let [batch, tokens, features, d_model, heads, layers, steps] = args[..] else {
        eprintln!("usage: step_bench BATCH TOKENS FEATURES D_MODEL HEADS LAYERS STEPS");
        std::process::exit(2);
    };
    if steps == 0 {
        eprintln!("error: STEPS must be at least 1");
        std::process::exit(2);
    }
    let device = attnsvm_nn::cpu();
    let cfg = ClassifierConfig::new(features, tokens, 10)
        .with_d_model(d_model)
        .with_n_heads(heads)
        .with_layers(layers);
    if let Err(e) = cfg.validate() {
        eprintln!("error: {e}");
        std::process::exit(2);
    }
    let mut model = cfg.init_seeded(&device, 0);
    let mut optim = AdamWConfig::new().init();
    let loss_fn = CrossEntropyLossConfig::new().init(&device);
    let x = Tensor::<3>::random(
        [batch, tokens, features],
        Distribution::Normal(0.0, 1.0),
        &device,
    );
    let labels: Vec<i64> = (0..batch as i64).map(|i| i % 10).collect();
    let y = Tensor::<1, Int>::from_data(TensorData::new(labels, [batch]), &device);
    let mut step = || {
        let loss = loss_fn.forward(model.forward(x.clone(), None), y.clone());
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(1e-3, model.clone(), grads);
    };
    for _ in 0..5 {
        step();
    }
    let mut times: Vec<f64> = (0..steps)
        .map(|_| {
            let start = Instant::now();
            step();
            start.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    let mean = times.iter().sum::<f64>() / steps as f64;
    times.sort_by(f64::total_cmp);
    let median = times[steps / 2];
    println!(
        "{{\"batch\": {batch}, \"tokens\": {tokens}, \"features\": {features}, \"d_model\": {d_model}, \"heads\": {heads}, \"layers\": {layers}, \"steps\": {steps}, \"ms_per_step\": {mean:.4}, \"median_ms\": {median:.4}}}"
    );
}
