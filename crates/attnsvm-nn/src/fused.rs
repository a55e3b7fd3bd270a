//! Softmax over the last dimension and GELU, each as one differentiable operation (burn backend
//! extensions).
//!
//! Composed from tensor operations, a softmax under autodiff records max, subtract, exp, sum and
//! product nodes: about a dozen passes over the `[B, h, N, M]` scores forward and backward, each
//! into a freshly allocated tensor. Here the forward pass is flex's fused row kernel (max, exp and
//! sum, normalize; SIMD, rows in parallel) and the backward pass is one row-parallel sweep
//!
//! ```text
//! ∂x = y ⊙ (∂y − ⟨∂y, y⟩)          (per row; y = softmax(x), stored by the forward pass)
//! ```
//!
//! written into the incoming gradient's buffer. The values are the softmax's up to rounding
//! (tested against the composed form, values and gradients, in f32 and f64).
//!
//! burn's GELU is already one operation each way, but flex evaluates `erf` with a scalar libm call
//! per element (an eighth of a training step at small shapes). In f32, [`gelu`] computes
//! `x·Φ(x)` and its derivative `Φ(x) + x·φ(x)` with Abramowitz–Stegun 7.1.26 for `erf` (absolute
//! error ≤ 1.5e-7, f32's rounding) and a polynomial `exp`, branch-free so that the loops
//! vectorize; in f64 it is burn's GELU.

use burn::backend::autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{unary, Backward, Ops, OpsKind};
use burn::backend::autodiff::Autodiff;
use burn::backend::flex::Layout;
use burn::backend::flex::{Flex, FlexTensor};
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Backend, Dispatch, TensorMetadata};
use burn::tensor::{Bytes, DType, Element, Tensor};
use rayon::prelude::*;

/// In a hand-written backward pass of backend `$B`: hand each tracked parent its gradient
/// (`$parents` the operation's parents, `$values` their gradients in the same order).
macro_rules! register_gradients {
    ($B:ty, $grads:expr, $parents:expr, $values:expr) => {
        for (parent, value) in $parents.into_iter().zip($values) {
            if let Some(node) = parent {
                $grads.register::<$B>(node.id, value);
            }
        }
    };
}
pub(crate) use register_gradients;

/// The fused softmax (flex, the GPU backend of the `wgpu` feature, and their autodiff
/// wrapper).
#[backend_extension(Flex, Cube: cfg(feature = "wgpu"), Autodiff)]
pub trait FusedSoftmax: Backend {
    /// `softmax` along the last dimension (by default the backend's own softmax).
    fn softmax_last(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let last = x.shape().num_dims() - 1;
        Self::softmax(x, last)
    }
}

/// The backward sweep of the fused softmax, on the backend that runs it.
pub trait SoftmaxGrad: Backend {
    /// `y ⊙ (dy − ⟨dy, y⟩)` row by row along the last dimension (`y` the softmax output); by
    /// default composed from the backend's operations.
    fn softmax_last_grad(y: FloatTensor<Self>, dy: FloatTensor<Self>) -> FloatTensor<Self> {
        let last = y.shape().num_dims() - 1;
        let dot = Self::float_sum_dim(Self::float_mul(dy.clone(), y.clone()), last);
        Self::float_mul(y, Self::float_sub(dy, dot))
    }
}

#[cfg(feature = "wgpu")]
impl FusedSoftmax for burn::backend::Cube {}

#[cfg(feature = "wgpu")]
impl SoftmaxGrad for burn::backend::Cube {}

impl FusedSoftmax for Flex {
    fn softmax_last(x: FloatTensor<Flex>) -> FloatTensor<Flex> {
        let last = x.shape().num_dims() - 1;
        burn::backend::flex::ops::activation::softmax(x, last)
    }
}

/// `t` with a contiguous layout, without holding a second reference to its buffer (which would
/// make an in-place write copy it).
fn contiguous(t: FlexTensor) -> FlexTensor {
    let c = t.to_contiguous();
    drop(t);
    c
}

/// Rows handed to one rayon task.
const ROWS_PER_TASK: usize = 64;

fn grad_rows<T>(y: &[T], dy: &mut [T], row: usize)
where
    T: Copy + Send + Sync + Default + std::ops::Add<Output = T> + std::ops::Sub<Output = T>,
    T: std::ops::Mul<Output = T>,
{
    dy.par_chunks_mut(ROWS_PER_TASK * row)
        .zip(y.par_chunks(ROWS_PER_TASK * row))
        .for_each(|(g, y)| {
            for (g, y) in g.chunks_mut(row).zip(y.chunks(row)) {
                let dot = g.iter().zip(y).fold(T::default(), |s, (&g, &y)| s + g * y);
                for (g, &y) in g.iter_mut().zip(y) {
                    *g = y * (*g - dot);
                }
            }
        });
}

impl SoftmaxGrad for Flex {
    fn softmax_last_grad(y: FloatTensor<Flex>, dy: FloatTensor<Flex>) -> FloatTensor<Flex> {
        let row = *y.shape().last().expect("softmax of a scalar");
        let y = contiguous(y);
        // Written in place: the incoming gradient is usually owned by this step alone (a shared
        // buffer is copied first by `storage_mut`).
        let mut dy = contiguous(dy);
        if row == 0 {
            return dy;
        }
        match y.dtype() {
            DType::F32 => grad_rows(y.storage::<f32>(), dy.storage_mut::<f32>(), row),
            DType::F64 => grad_rows(y.storage::<f64>(), dy.storage_mut::<f64>(), row),
            other => panic!("fused softmax: unsupported dtype {other:?}"),
        }
        dy
    }
}

#[derive(Debug)]
struct SoftmaxBackward;

impl<B: Backend + SoftmaxGrad> Backward<B, 1> for SoftmaxBackward {
    /// The forward output `y`.
    type State = B::FloatTensorPrimitive;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let y = ops.state;
        unary::<B, _>(ops.parents, ops.node, grads, |dy| {
            B::softmax_last_grad(y, dy)
        });
    }
}

impl<B, C> FusedSoftmax for Autodiff<B, C>
where
    B: Backend + FusedSoftmax + SoftmaxGrad,
    C: CheckpointStrategy,
{
    fn softmax_last(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let guard = x.node();
        let y = B::softmax_last(x.into_primitive());
        match SoftmaxBackward
            .prepare::<C>([guard])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish(y.clone(), y),
            OpsKind::UnTracked(prep) => prep.finish(y),
        }
    }
}

/// GELU with a vectorizing `erf` in f32 (flex, the `wgpu` GPU backend, their autodiff wrapper).
#[backend_extension(Flex, Cube: cfg(feature = "wgpu"), Autodiff)]
pub trait FusedGelu: Backend {
    /// `x·Φ(x)` elementwise (by default the backend's own GELU).
    fn gelu_erf(x: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::gelu(x)
    }
}

/// The backward pass of [`FusedGelu`], on the backend that runs it.
pub trait GeluGrad: Backend {
    /// `dy ⊙ (Φ(x) + x·φ(x))` (by default the backend's own GELU backward).
    fn gelu_erf_grad(x: FloatTensor<Self>, dy: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::gelu_backward(x, dy)
    }
}

#[cfg(feature = "wgpu")]
impl FusedGelu for burn::backend::Cube {}

#[cfg(feature = "wgpu")]
impl GeluGrad for burn::backend::Cube {}

/// `e^x` for `x ≤ 0` in f32 without a libm call: `2^k · e^r` with `k = round(x·log₂e)`,
/// `r = x − k·ln 2` (ln 2 split in two constants) and Cephes' polynomial for `e^r` on
/// `|r| ≤ ln 2 / 2` (relative error about 1e-7); 0 below −87.3, where `e^x` leaves f32's normal
/// range.
#[inline(always)]
pub(crate) fn exp_nonpositive(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding and subtracting 1.5·2²³ rounds an f32 of magnitude < 2²² to an integer.
    const ROUND: f32 = 12_582_912.0;
    const FLOOR: f32 = -87.3;
    let xc = x.clamp(FLOOR, 0.0);
    let t = xc * LOG2E + ROUND;
    let k = t - ROUND;
    let r = xc - k * LN2_HI - k * LN2_LO;
    let p = 1.987_569_1e-4_f32;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 0.5;
    let e = p * r * r + r + 1.0;
    // t lies in [2²³, 2²⁴), where f32's spacing is 1: its bits exceed ROUND's by k exactly (an
    // integer operation; `k as i32` would not vectorize).
    let k_int = (t.to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32);
    let scale = f32::from_bits((k_int.wrapping_add(127) << 23) as u32);
    if x < FLOOR {
        0.0
    } else {
        e * scale
    }
}

/// `body()` compiled for the widest vector unit the CPU has (AVX-512, else AVX2 with FMA,
/// checked at run time; the portable build vectorizes for SSE2 only). `body` is inlined into
/// each variant, so its loops vectorize for that unit.
#[inline(always)]
pub(crate) fn vectorized<R>(body: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F (checked above).
            return unsafe { with_avx512(body) };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU has AVX2 and FMA (checked above).
            return unsafe { with_avx2(body) };
        }
    }
    body()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn with_avx512<R>(body: impl FnOnce() -> R) -> R {
    body()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn with_avx2<R>(body: impl FnOnce() -> R) -> R {
    body()
}

/// `(Φ(x), φ(x))`: the standard normal distribution function by Abramowitz–Stegun 7.1.26 for
/// `erf(x/√2)`, and the density `e^{−x²/2}/√(2π)` (the same exponential).
#[inline(always)]
fn normal(x: f32) -> (f32, f32) {
    let z = (x * std::f32::consts::FRAC_1_SQRT_2).abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * z);
    let poly = t
        * (0.254_829_6
            + t * (-0.284_496_74 + t * (1.421_413_8 + t * (-1.453_152 + t * 1.061_405_4))));
    let e = exp_nonpositive(-z * z);
    let erf = (1.0 - poly * e).copysign(x);
    // 1/√(2π)
    (0.5 * (1.0 + erf), e * 0.398_942_3)
}

/// The float types of the fused kernels (f32 and f64).
pub(crate) trait Real:
    Element
    + bytemuck::Pod
    + Send
    + Sync
    + PartialOrd
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
    + std::ops::Div<Output = Self>
{
    const ZERO: Self;
    const ONE: Self;
    fn of(x: f64) -> Self;
    fn sqrt(self) -> Self;
    /// `x ← e^{x − shift}` for every element (`shift` ≥ every `x`).
    fn exp_shifted(xs: &mut [Self], shift: Self);
}

impl Real for f32 {
    const ZERO: f32 = 0.0;
    const ONE: f32 = 1.0;
    fn of(x: f64) -> f32 {
        x as f32
    }
    fn sqrt(self) -> f32 {
        f32::sqrt(self)
    }
    fn exp_shifted(xs: &mut [f32], shift: f32) {
        vectorized(|| {
            for x in xs {
                *x = exp_nonpositive(*x - shift);
            }
        })
    }
}

impl Real for f64 {
    const ZERO: f64 = 0.0;
    const ONE: f64 = 1.0;
    fn of(x: f64) -> f64 {
        x
    }
    fn sqrt(self) -> f64 {
        f64::sqrt(self)
    }
    fn exp_shifted(xs: &mut [f64], shift: f64) {
        for x in xs {
            *x = (*x - shift).exp();
        }
    }
}

/// Elements handed to one rayon task.
const ELEMS_PER_TASK: usize = 1 << 14;

impl FusedGelu for Flex {
    fn gelu_erf(x: FloatTensor<Flex>) -> FloatTensor<Flex> {
        if x.dtype() != DType::F32 {
            return <Flex as burn::backend::ops::ActivationOps<Flex>>::gelu(x);
        }
        let x = contiguous(x);
        let xs = x.storage::<f32>();
        let mut out = vec![0f32; xs.len()];
        out.par_chunks_mut(ELEMS_PER_TASK)
            .zip(xs.par_chunks(ELEMS_PER_TASK))
            .for_each(|(o, x)| {
                vectorized(|| {
                    for (o, &x) in o.iter_mut().zip(x) {
                        *o = x * normal(x).0;
                    }
                })
            });
        FlexTensor::new(
            Bytes::from_elems(out),
            Layout::contiguous(x.shape()),
            DType::F32,
        )
    }
}

impl GeluGrad for Flex {
    fn gelu_erf_grad(x: FloatTensor<Flex>, dy: FloatTensor<Flex>) -> FloatTensor<Flex> {
        if x.dtype() != DType::F32 {
            return <Flex as burn::backend::ops::ActivationOps<Flex>>::gelu_backward(x, dy);
        }
        let x = contiguous(x);
        let mut dy = contiguous(dy);
        dy.storage_mut::<f32>()
            .par_chunks_mut(ELEMS_PER_TASK)
            .zip(x.storage::<f32>().par_chunks(ELEMS_PER_TASK))
            .for_each(|(g, x)| {
                vectorized(|| {
                    for (g, &x) in g.iter_mut().zip(x) {
                        let (cdf, pdf) = normal(x);
                        *g *= cdf + x * pdf;
                    }
                })
            });
        dy
    }
}

#[derive(Debug)]
struct GeluBackward;

impl<B: Backend + GeluGrad> Backward<B, 1> for GeluBackward {
    /// The forward input `x`.
    type State = B::FloatTensorPrimitive;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let x = ops.state;
        unary::<B, _>(ops.parents, ops.node, grads, |dy| B::gelu_erf_grad(x, dy));
    }
}

impl<B, C> FusedGelu for Autodiff<B, C>
where
    B: Backend + FusedGelu + GeluGrad,
    C: CheckpointStrategy,
{
    fn gelu_erf(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let guard = x.node();
        let x = x.into_primitive();
        let y = B::gelu_erf(x.clone());
        match GeluBackward
            .prepare::<C>([guard])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish(x, y),
            OpsKind::UnTracked(prep) => prep.finish(y),
        }
    }
}

/// GELU `x·Φ(x)` elementwise, fused forward and backward.
pub fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    Tensor::from_dispatch(<Dispatch as FusedGelu>::gelu_erf(x.into_dispatch()))
}

/// `softmax` along the last dimension of `x`, fused forward and backward.
pub fn softmax_last<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    Tensor::from_dispatch(<Dispatch as FusedSoftmax>::softmax_last(x.into_dispatch()))
}

#[cfg(test)]
mod tests {
    use super::softmax_last;
    use burn::tensor::{Distribution, Tensor};

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data()
            .convert::<f32>()
            .try_to_vec()
            .expect("f32 data")
    }

    /// The composed softmax `e / Σe` that autodiff differentiates op by op.
    fn composed<const D: usize>(x: Tensor<D>) -> Tensor<D> {
        let e = (x.clone() - x.detach().max_dim(D - 1)).exp();
        let total = e.clone().sum_dim(D - 1);
        e / total
    }

    #[test]
    fn the_polynomial_exp_has_f32_accuracy_and_underflows_to_zero() {
        let mut worst = 0f64;
        for i in 0..=200_000 {
            let x = -87.0 * f64::from(i) / 200_000.0;
            let got = f64::from(super::exp_nonpositive(x as f32));
            let want = (x as f32 as f64).exp();
            worst = worst.max((got - want).abs() / want);
        }
        assert!(worst < 3e-7, "relative error {worst:e}");
        assert_eq!(super::exp_nonpositive(-87.4), 0.0);
        assert_eq!(super::exp_nonpositive(-1e9), 0.0);
        assert_eq!(super::exp_nonpositive(0.0), 1.0);
    }

    /// Against burn's GELU (libm's `erf`): values and gradients over `[−12, 12]`.
    #[test]
    fn fused_gelu_matches_burns_gelu_in_values_and_gradients() {
        let device = crate::cpu();
        let grid: Vec<f32> = (0..=4800).map(|i| -12.0 + i as f32 * 0.005).collect();
        let n = grid.len();
        let x = Tensor::<1>::from_data(burn::tensor::TensorData::new(grid, [n]), &device)
            .require_grad();
        let w = crate::with_seed(&device, 4, || {
            Tensor::<1>::random([n], Distribution::Normal(0.0, 1.0), &device)
        });
        let fused = super::gelu(x.clone());
        let reference = burn::tensor::activation::gelu(x.clone());
        let worst = |a: Vec<f32>, b: Vec<f32>| {
            a.iter()
                .zip(&b)
                .fold(0f32, |m, (a, b)| m.max((a - b).abs() / b.abs().max(1.0)))
        };
        assert!(worst(values(fused.clone()), values(reference.clone())) < 1e-6);
        let gf = x.grad(&(fused * w.clone()).sum().backward()).expect("grad");
        let gr = x.grad(&(reference * w).sum().backward()).expect("grad");
        assert!(worst(values(gf), values(gr)) < 1e-6);
    }

    #[test]
    fn fused_softmax_matches_the_composed_one_in_values_and_gradients() {
        let device = crate::cpu();
        crate::with_seed(&device, 3, || {
            let x = Tensor::<4>::random([2, 3, 5, 7], Distribution::Normal(0.0, 3.0), &device);
            // A strided input (the scores are often a transposed view) and a weighted sum as loss.
            let x = x.swap_dims(2, 3).require_grad();
            let w = Tensor::<4>::random([2, 3, 7, 5], Distribution::Normal(0.0, 1.0), &device);
            let fused = softmax_last(x.clone());
            let reference = composed(x.clone());
            let (f, r) = (values(fused.clone()), values(reference.clone()));
            assert!(f.iter().zip(&r).all(|(a, b)| (a - b).abs() < 1e-6));
            let gf = x.grad(&(fused * w.clone()).sum().backward()).expect("grad");
            let gr = x.grad(&(reference * w).sum().backward()).expect("grad");
            let (gf, gr) = (values(gf), values(gr));
            let scale = gr.iter().fold(0f32, |m, v| m.max(v.abs()));
            assert!(scale > 0.1, "a non-trivial gradient");
            let worst = gf
                .iter()
                .zip(&gr)
                .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
            assert!(worst < 1e-5 * scale, "gradient differs by {worst}");
        });
    }
}
