//! # attnsvm-nn
//!
//! Transformer encoder classifiers with pluggable attention, on burn's pure-Rust `flex` CPU
//! backend with autodiff (spec `primal-dual.md`): the attention kinds that the primal-dual view
//! derives as support-vector expansions, the shipped classification data, and a seeded AdamW
//! training loop. burn is pinned (`=0.22.1`); this crate is the only one that builds it.
//!
//! | module | what |
//! |---|---|
//! | [`attention`] | multi-head attention: softmax, linear (`elu + 1` features), simplex (trainable row-stochastic mixing), Attention-BN, Attention-SH (pooling ratios per head, 1D or on a 2D token grid), BN+SH, sparse (top-k, window); padding masks |
//! | [`pool`] | the SH downsampler: masked average pooling, 1D and 2D, and its matrix |
//! | [`redundancy`] | attention maps of every head and block, and the head-distance measure |
//! | [`model`] | the pre-norm encoder classifier, mean pooling over valid tokens |
//! | [`data`] | digits (patch tokens) and JapaneseVowels (padded series) from `data/`, the generated long-range retrieval task |
//! | [`memory`] | a counting global allocator: measured peak heap bytes |
//! | [`experiments`] | `repro primal-dual`: accuracy and head redundancy per variant and task, cost against N and D |
//! | [`train`] | AdamW, warm-up + cosine schedule, per-epoch metrics, checkpoint and resume |
//!
//! Every attention kind is tested against the f64 reference forward pass of the core crate
//! (`attnsvm::model::attention`).

pub mod attention;
pub mod data;
pub mod experiments;
pub mod memory;
pub mod model;
pub mod pool;
pub mod redundancy;
pub mod train;

/// The CPU device: burn's `flex` backend with autodiff (f32).
pub fn cpu() -> burn::tensor::Device {
    burn::tensor::Device::flex().autodiff()
}

/// Run `f` with burn's random number generator seeded by `seed`, holding a process-wide lock.
/// burn's seed is global to the backend, so two threads that seed and draw at the same time would
/// interleave their draws; every random draw of this crate (model initialization) goes through
/// here, which keeps a seeded run reproducible when others run alongside (e.g. parallel tests).
pub fn with_seed<T>(device: &burn::tensor::Device, seed: u64, f: impl FnOnce() -> T) -> T {
    static RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = RNG
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    device.seed(seed);
    f()
}
