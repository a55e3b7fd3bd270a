//! Softmax attention `softmax(q kᵀ/√d_k) v` as one differentiable operation (a burn backend
//! extension), for the `softmax` kind without top-k or window sparsity.
//!
//! Composed from tensor operations, attention under autodiff records a scale, a product, a
//! softmax and a second product, each into a fresh `[B, h, N, M]` tensor, and as many again
//! backward. Here each (sequence, head) pair is one task (pairs in parallel with rayon) whose
//! `N × M` block stays in cache:
//!
//! ```text
//! forward:  S = q kᵀ/√d_k (padded keys: −1e9),  P = softmax_rows(S),  O = P v      (P is kept)
//! backward: ∂v = Pᵀ ∂O,  ∂P = ∂O vᵀ,  ∂S = P ⊙ (∂P − rowsum(∂P ⊙ P)),
//!           ∂q = ∂S k/√d_k,  ∂k = ∂Sᵀ q/√d_k
//! ```
//!
//! with the products done by the `gemm` crate (the kernels burn's flex backend uses) and, in
//! f32, the vectorizing exponential of [`crate::fused`]. The padded keys get the composed
//! form's score `−1e9`, so the two agree also when every key of a row is hidden (tested against
//! the composed form, values and gradients, in f32 and f64).

use burn::backend::autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::Autodiff;
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Backend, Dispatch, TensorMetadata};
use burn::tensor::{Bool, Shape, Tensor};

mod flex;

use crate::attention::MASKED;

/// Fused softmax attention (flex, the GPU backend of the `wgpu` feature, and their autodiff
/// wrapper).
#[backend_extension(Flex, Cube: cfg(feature = "wgpu"), Autodiff)]
pub trait FusedAttention: Backend {
    /// `softmax(q kᵀ/√d_k) v` for queries `[B, h, N, d_k]`, keys `[B, h, M, d_k]`, values
    /// `[B, h, M, d_v]` and padded keys `key_pad` (`[B, M]`, 1 at padding, 0 elsewhere).
    fn attention_softmax(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        key_pad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        composed_forward::<Self>(q, k, v, key_pad).0
    }
}

/// The kernels behind [`FusedAttention`], on the backend that runs them; by default composed
/// from the backend's operations.
pub trait AttentionKernels: Backend {
    /// `(O, P)`: the output and the attention weights `[B, h, N, M]`.
    fn attention_forward(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        key_pad: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        composed_forward::<Self>(q, k, v, key_pad)
    }

    /// `(∂q, ∂k, ∂v)` from the forward pass's inputs, its weights `p` and the output's gradient.
    /// The scores of padded keys are constants: no gradient reaches them (in a row whose keys
    /// are all padded, the weights are uniform but do not depend on `q` or `k`).
    fn attention_backward(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        key_pad: FloatTensor<Self>,
        p: FloatTensor<Self>,
        d_out: FloatTensor<Self>,
    ) -> [FloatTensor<Self>; 3] {
        composed_backward::<Self>(q, k, v, key_pad, p, d_out)
    }
}

/// [`AttentionKernels::attention_backward`] composed from `B`'s operations.
fn composed_backward<B: Backend>(
    q: FloatTensor<B>,
    k: FloatTensor<B>,
    v: FloatTensor<B>,
    key_pad: FloatTensor<B>,
    p: FloatTensor<B>,
    d_out: FloatTensor<B>,
) -> [FloatTensor<B>; 3] {
    let [b, h, n, dk] = dims4(&q);
    let keep = keep::<B>(key_pad, [b, h, n, k.shape()[2]]);
    let scale = 1.0 / (dk as f64).sqrt();
    let dv = B::float_matmul(B::float_swap_dims(p.clone(), 2, 3), d_out.clone());
    let dp = B::float_matmul(d_out, B::float_swap_dims(v, 2, 3));
    let dot = B::float_sum_dim(B::float_mul(dp.clone(), p.clone()), 3);
    let ds = B::float_mul(B::float_mul(p, B::float_sub(dp, dot)), keep);
    let ds = B::float_mul_scalar(ds, scale.into());
    let dq = B::float_matmul(ds.clone(), k);
    let dk = B::float_matmul(B::float_swap_dims(ds, 2, 3), q);
    [dq, dk, dv]
}

/// [`AttentionKernels::attention_forward`] composed from `B`'s operations.
fn composed_forward<B: Backend>(
    q: FloatTensor<B>,
    k: FloatTensor<B>,
    v: FloatTensor<B>,
    key_pad: FloatTensor<B>,
) -> (FloatTensor<B>, FloatTensor<B>) {
    let [b, h, n, dk] = dims4(&q);
    let m = k.shape()[2];
    let scale = 1.0 / (dk as f64).sqrt();
    let q = B::float_mul_scalar(q, scale.into());
    let s = B::float_matmul(q, B::float_swap_dims(k, 2, 3));
    // s·keep + (1 − keep)·MASKED: exactly `s` at valid keys and MASKED at padded ones.
    let keep = keep::<B>(key_pad, [b, h, n, m]);
    let masked = B::float_add_scalar(B::float_neg(keep.clone()), 1.0.into());
    let s = B::float_add(
        B::float_mul(s, keep),
        B::float_mul_scalar(masked, MASKED.into()),
    );
    let p = B::softmax(s, 3);
    (B::float_matmul(p.clone(), v), p)
}

/// `1 − pad` (`[B, M]`) broadcast to the scores' shape `[B, h, N, M]`: 1 at valid keys.
fn keep<B: Backend>(key_pad: FloatTensor<B>, [b, h, n, m]: [usize; 4]) -> FloatTensor<B> {
    let pad = B::float_reshape(key_pad, Shape::new([b, 1, 1, m]));
    let keep = B::float_add_scalar(B::float_neg(pad), 1.0.into());
    B::float_expand(keep, Shape::new([b, h, n, m]))
}

fn dims4<T: TensorMetadata>(t: &T) -> [usize; 4] {
    let s = t.shape();
    assert_eq!(
        s.num_dims(),
        4,
        "attention: 4D tensors [B, h, tokens, width]"
    );
    [s[0], s[1], s[2], s[3]]
}

#[cfg(feature = "wgpu")]
impl FusedAttention for burn::backend::Cube {}

#[cfg(feature = "wgpu")]
impl AttentionKernels for burn::backend::Cube {}

#[derive(Debug)]
struct AttentionBackward;

impl<B: Backend + AttentionKernels> Backward<B, 3> for AttentionBackward {
    /// `q`, `k`, `v`, the padding and the weights `P`.
    type State = [B::FloatTensorPrimitive; 5];

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let d_out = grads.consume::<B>(&ops.node);
        let [q, k, v, key_pad, p] = ops.state;
        let grads_qkv = B::attention_backward(q, k, v, key_pad, p, d_out);
        crate::fused::register_gradients!(B, grads, ops.parents, grads_qkv);
    }
}

impl<B, C> FusedAttention for Autodiff<B, C>
where
    B: Backend + FusedAttention + AttentionKernels,
    C: CheckpointStrategy,
{
    fn attention_softmax(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        key_pad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let nodes = [q.node(), k.node(), v.node()];
        let [q, k, v] = [q, k, v].map(|t| t.into_primitive());
        // The padding is data, not a parameter: no gradient flows to it.
        let key_pad = key_pad.into_primitive();
        match AttentionBackward
            .prepare::<C>(nodes)
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (out, p) =
                    B::attention_forward(q.clone(), k.clone(), v.clone(), key_pad.clone());
                prep.finish([q, k, v, key_pad, p], out)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::attention_softmax(q, k, v, key_pad)),
        }
    }
}

/// `softmax(q kᵀ/√d_k) v` per head, padded keys (`key_pad`, `[B, M]`) hidden; fused forward and
/// backward.
pub fn attention_softmax(
    q: Tensor<4>,
    k: Tensor<4>,
    v: Tensor<4>,
    key_pad: Option<&Tensor<2, Bool>>,
) -> Tensor<4> {
    let [b, _, _, _] = q.dims();
    let m = k.dims()[2];
    let key_pad = match key_pad {
        Some(pad) => pad.clone().float(),
        None => Tensor::zeros([b, m], &q.device()),
    };
    Tensor::from_dispatch(<Dispatch as FusedAttention>::attention_softmax(
        q.into_dispatch(),
        k.into_dispatch(),
        v.into_dispatch(),
        key_pad.into_dispatch(),
    ))
}

#[cfg(test)]
mod tests {
    use super::{attention_softmax, AttentionKernels};
    use burn::backend::flex::{Flex, FlexTensor};
    use burn::tensor::{Bool, Distribution, Tensor, TensorData};

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f64> {
        t.into_data()
            .convert::<f64>()
            .try_to_vec()
            .expect("float data")
    }

    /// The composed form autodiff differentiates op by op: masked scores, softmax, product.
    fn composed(q: Tensor<4>, k: Tensor<4>, v: Tensor<4>, pad: &Tensor<2, Bool>) -> Tensor<4> {
        let [b, h, n, dk] = q.dims();
        let m = k.dims()[2];
        let s = q.matmul(k.swap_dims(2, 3)).div_scalar((dk as f64).sqrt());
        let hidden = pad
            .clone()
            .unsqueeze_dim::<3>(1)
            .unsqueeze_dim::<4>(1)
            .expand([b, h, n, m]);
        burn::tensor::activation::softmax(s.mask_fill(hidden, -1.0e9), 3).matmul(v)
    }

    fn worst(a: &[f64], b: &[f64]) -> f64 {
        a.iter().zip(b).fold(0f64, |w, (a, b)| w.max((a - b).abs()))
    }

    /// Values and the gradients of q, k and v against the composed form, with strided inputs
    /// (the heads of a `[B, N, D]` projection), padded keys, a sequence whose keys are all
    /// padded, and more keys than queries.
    #[test]
    fn fused_attention_matches_the_composed_form_in_values_and_gradients() {
        let device = crate::cpu();
        crate::with_seed(&device, 5, || {
            let (b, h, n, m, dk) = (3, 2, 5, 7, 4);
            let heads = |rows: usize| {
                Tensor::<3>::random([b, rows, h * dk], Distribution::Normal(0.0, 2.0), &device)
                    .reshape([b, rows, h, dk])
                    .swap_dims(1, 2)
                    .require_grad()
            };
            let (q, k, v) = (heads(n), heads(m), heads(m));
            let mut flags = vec![false; b * m];
            flags[m - 1] = true; // sequence 0: its last key
            flags[m..2 * m].fill(true); // sequence 1: every key
            let pad = Tensor::<2, Bool>::from_data(TensorData::new(flags, [b, m]), &device);
            let w = Tensor::<4>::random([b, h, n, dk], Distribution::Normal(0.0, 1.0), &device);
            let fused = attention_softmax(q.clone(), k.clone(), v.clone(), Some(&pad));
            let reference = composed(q.clone(), k.clone(), v.clone(), &pad);
            assert!(worst(&values(fused.clone()), &values(reference.clone())) < 1e-5);
            let gf = (fused * w.clone()).sum().backward();
            let gr = (reference * w.clone()).sum().backward();
            for t in [&q, &k, &v] {
                let (a, r) = (
                    values(t.grad(&gf).expect("grad")),
                    values(t.grad(&gr).expect("grad")),
                );
                let scale = r.iter().fold(0f64, |s, x| s.max(x.abs()));
                assert!(scale > 0.1, "a non-trivial gradient");
                assert!(
                    worst(&a, &r) < 1e-5 * scale,
                    "gradient differs by {}",
                    worst(&a, &r)
                );
            }
            // The composed kernels (the GPU backend's) against flex's, on the same primitives.
            let prim = |t: &Tensor<4>| FlexTensor::from_data(t.clone().inner().into_data());
            let flags = FlexTensor::from_data(pad.clone().float().into_data());
            let (of, pf) = <Flex as AttentionKernels>::attention_forward(
                prim(&q),
                prim(&k),
                prim(&v),
                flags.clone(),
            );
            let (oc, pc) =
                super::composed_forward::<Flex>(prim(&q), prim(&k), prim(&v), flags.clone());
            let close = |a: FlexTensor, b: FlexTensor| {
                let (a, b) = (
                    a.into_data().convert::<f64>(),
                    b.into_data().convert::<f64>(),
                );
                worst(
                    &a.try_to_vec::<f64>().expect("data"),
                    &b.try_to_vec::<f64>().expect("data"),
                ) < 1e-5
            };
            assert!(close(of, oc.clone()) && close(pf.clone(), pc));
            let dout = prim(&w);
            let gf = <Flex as AttentionKernels>::attention_backward(
                prim(&q),
                prim(&k),
                prim(&v),
                flags.clone(),
                pf.clone(),
                dout.clone(),
            );
            let gc =
                super::composed_backward::<Flex>(prim(&q), prim(&k), prim(&v), flags, pf, dout);
            for (a, b) in gf.into_iter().zip(gc) {
                assert!(close(a, b));
            }
            // Without padding the mask is all zeros and skipped.
            let free = attention_softmax(q.clone(), k.clone(), v.clone(), None);
            let none =
                Tensor::<2, Bool>::from_data(TensorData::new(vec![false; b * m], [b, m]), &device);
            let reference = composed(q, k, v, &none);
            assert!(worst(&values(free), &values(reference)) < 1e-5);
        });
    }
}
