//! Softmax over the last dimension as one differentiable operation (a burn backend extension).
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

use burn::backend::autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{unary, Backward, Ops, OpsKind};
use burn::backend::autodiff::Autodiff;
use burn::backend::flex::{Flex, FlexTensor};
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Backend, Dispatch, TensorMetadata};
use burn::tensor::{DType, Tensor};
use rayon::prelude::*;

/// The fused softmax (flex, the GPU backends of the `wgpu`/`cuda` features, and their autodiff
/// wrapper).
#[backend_extension(Flex, Cube: cfg(any(feature = "wgpu", feature = "cuda")), Autodiff)]
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

#[cfg(any(feature = "wgpu", feature = "cuda"))]
impl FusedSoftmax for burn::backend::Cube {}

#[cfg(any(feature = "wgpu", feature = "cuda"))]
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
