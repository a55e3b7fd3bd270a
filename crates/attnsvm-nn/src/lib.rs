//! # attnsvm-nn
//!
//! Transformer encoder classifiers with pluggable attention, on burn's pure-Rust `flex` CPU
//! backend with autodiff, f32 or f64 (spec `primal-dual.md`): the attention kinds that the primal-dual view
//! derives as support-vector expansions, the shipped classification data, and a seeded AdamW
//! training loop. burn is pinned (`=0.22.1`); this crate is the only one that builds it.
//!
//! | module | what |
//! |---|---|
//! | [`attention`] | multi-head attention: softmax, linear (`elu + 1` features), simplex (trainable row-stochastic mixing), Attention-BN, Attention-SH (pooling ratios per head, 1D or on a 2D token grid), BN+SH, sparse (top-k, window); padding masks |
//! | [`fused`] | softmax as one differentiable operation (a burn backend extension: flex's fused kernel forward, one row sweep backward) |
//! | [`pool`] | the SH downsampler: masked average pooling, 1D and 2D, and its matrix |
//! | [`redundancy`] | attention maps of every head and block, and the head-distance measure |
//! | [`model`] | the pre-norm encoder classifier, mean pooling over valid tokens |
//! | [`data`] | digits (patch tokens) and JapaneseVowels (padded series) from `data/`, the generated long-range retrieval task |
//! | [`memory`] | a counting global allocator: measured peak heap bytes |
//! | [`experiments`] | `repro primal-dual`: accuracy and head redundancy per variant and task, cost against N and D |
//! | [`train`] | AdamW, warm-up + cosine schedule, per-epoch metrics, checkpoint and resume |
//!
//! Every attention kind is tested against the f64 reference forward pass of the core crate
//! (`attnsvm::model::attention`): to 1e-4 in f32 (the default) and to 1e-11 in f64
//! ([`set_precision`]).

pub mod attention;
pub mod data;
pub mod experiments;
pub mod fused;
pub mod fused_attention;
pub mod fused_norm;
pub mod memory;
pub mod model;
pub mod pool;
pub mod redundancy;
pub mod train;

/// The CPU device: burn's `flex` backend with autodiff; f32 unless [`set_precision`] chose f64.
/// (Also tunes the allocator: [`memory::keep_freed_memory`].)
pub fn cpu() -> burn::tensor::Device {
    memory::keep_freed_memory();
    burn::tensor::Device::flex().autodiff()
}

/// The default GPU through wgpu (Vulkan, Metal or WebGPU, whichever the machine offers), with
/// autodiff; only with the `wgpu` feature. Compiled, never run here: the CI machines have no GPU.
#[cfg(feature = "wgpu")]
pub fn gpu() -> burn::tensor::Device {
    burn::tensor::Device::wgpu(burn::tensor::DeviceKind::DefaultDevice).autodiff()
}

/// The float type of the tensors, parameters and gradients on the CPU device.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// 32-bit floats (the default: the speed of the benchmarks).
    #[default]
    F32,
    /// 64-bit floats (checks against the core crate's f64 reference to rounding; slower).
    F64,
}

impl Precision {
    /// burn's name of the float type.
    fn dtype(self) -> burn::tensor::FloatDType {
        match self {
            Precision::F32 => burn::tensor::FloatDType::F32,
            Precision::F64 => burn::tensor::FloatDType::F64,
        }
    }
}

/// Make every float tensor this process creates on the CPU device (data, parameters, gradients,
/// optimizer state) `precision`. burn fixes a device's float type once per process, when it is
/// first configured or its first tensor is made, so call this before anything else; asking for
/// the type already in force is a no-op, and asking for another one afterwards is an error.
pub fn set_precision(precision: Precision) -> attnsvm::Result<()> {
    let mut device = cpu();
    let want = precision.dtype();
    if device.settings().float_dtype == want {
        return Ok(());
    }
    device.configure(want).or_else(|e| {
        // Another thread may have configured the same type in between.
        if device.settings().float_dtype == want {
            return Ok(());
        }
        Err(attnsvm::Error::Invalid(format!(
            "precision {precision:?}: the CPU device's float type is already fixed for this \
             process ({e:?}); set the precision before the first tensor is made"
        )))
    })
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
