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
use burn::backend::flex::{Flex, FlexTensor, Layout};
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Backend, Dispatch, TensorMetadata};
use burn::tensor::{Bool, Bytes, DType, Shape, Tensor};
use rayon::prelude::*;

use crate::fused::Real;

/// The score of a padded key (as in [`crate::attention`]).
const MASKED: f64 = -1.0e9;

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

/// A strided matrix inside a slice: element `(i, j)` at `data[off + i·rs + j·cs]`.
#[derive(Clone, Copy)]
struct View<'a, T> {
    data: &'a [T],
    off: usize,
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

impl<T> View<'_, T> {
    fn t(self) -> Self {
        View {
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
            ..self
        }
    }

    /// Whether every element lies inside `data`.
    fn in_bounds(&self) -> bool {
        self.rows == 0
            || self.cols == 0
            || self.off + (self.rows - 1) * self.rs + (self.cols - 1) * self.cs < self.data.len()
    }
}

/// `dst = alpha · a b` for `dst` a row-major `a.rows × b.cols` matrix whose rows start `dst_rs`
/// elements apart (elements between rows are left alone); one thread.
fn gemm_into<T: Real>(dst: &mut [T], dst_rs: usize, a: View<T>, b: View<T>, alpha: T) {
    let fits = a.rows == 0 || b.cols == 0 || (a.rows - 1) * dst_rs + b.cols <= dst.len();
    assert!(
        a.cols == b.rows && dst_rs >= b.cols && fits && a.in_bounds() && b.in_bounds(),
        "attention: matrix product of mismatched shapes"
    );
    if a.rows == 0 || b.cols == 0 {
        return;
    }
    if a.cols == 0 {
        for row in dst.chunks_mut(dst_rs).take(a.rows) {
            row[..b.cols].fill(T::ZERO);
        }
        return;
    }
    // SAFETY: the assertion keeps every read inside `a.data` and `b.data` and every write inside
    // `dst` (row `i` at `i·dst_rs`, `b.cols` long); `read_dst = false`, so `dst` is only written.
    unsafe {
        gemm::gemm(
            a.rows,
            b.cols,
            a.cols,
            dst.as_mut_ptr(),
            1,
            dst_rs as isize,
            false,
            a.data.as_ptr().add(a.off),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr().add(b.off),
            b.cs as isize,
            b.rs as isize,
            T::ZERO,
            alpha,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// A `[B, h, rows, cols]` flex tensor read as one matrix per (sequence, head) pair, without
/// copying when its strides are non-negative.
struct Heads {
    t: FlexTensor,
    heads: usize,
    rows: usize,
    cols: usize,
    strides: [usize; 4],
}

impl Heads {
    fn new(t: FlexTensor) -> Self {
        let t = if t.layout().has_positive_strides() {
            t
        } else {
            t.to_contiguous()
        };
        let [_, heads, rows, cols] = dims4(&t);
        let s = t.layout().strides();
        let strides = [s[0], s[1], s[2], s[3]].map(|x| x as usize);
        Heads {
            t,
            heads,
            rows,
            cols,
            strides,
        }
    }

    fn pair<T: Real>(&self, pair: usize) -> View<'_, T> {
        let (b, h) = (pair / self.heads, pair % self.heads);
        View {
            data: self.t.storage::<T>(),
            off: self.t.layout().start_offset() + b * self.strides[0] + h * self.strides[1],
            rows: self.rows,
            cols: self.cols,
            rs: self.strides[2],
            cs: self.strides[3],
        }
    }
}

/// The padded keys `[B, M]` (nonzero = padded) as flags; `None` when no key is padded.
fn key_pad_flags(pad: FlexTensor) -> Option<Vec<bool>> {
    let pad = pad.to_contiguous();
    let flags: Vec<bool> = match pad.dtype() {
        DType::F32 => pad.storage::<f32>().iter().map(|&x| x != 0.0).collect(),
        DType::F64 => pad.storage::<f64>().iter().map(|&x| x != 0.0).collect(),
        other => panic!("fused attention: unsupported dtype {other:?}"),
    };
    flags.contains(&true).then_some(flags)
}

fn tensor<T: Real>(data: Vec<T>, shape: [usize; 4]) -> FlexTensor {
    FlexTensor::new(
        Bytes::from_elems(data),
        Layout::contiguous(Shape::new(shape)),
        T::dtype(),
    )
}

/// `[B, h, rows, w]` stored token-major, as `[B, rows, h, w]`: the layout of the projections
/// the heads were split from, so that merging the heads back (`swap_dims(1, 2)` and a reshape
/// to `[B, rows, h·w]`) copies nothing, forward (the output) and backward (the gradients).
fn token_major<T: Real>(data: Vec<T>, [b, h, rows, w]: [usize; 4]) -> FlexTensor {
    let strides = vec![(rows * h * w) as isize, w as isize, (h * w) as isize, 1];
    FlexTensor::new(
        Bytes::from_elems(data),
        Layout::new(Shape::new([b, h, rows, w]), strides, 0),
        T::dtype(),
    )
}

/// A row-major `rows × cols` matrix.
fn dense<T>(data: &[T], rows: usize, cols: usize) -> View<'_, T> {
    View {
        data,
        off: 0,
        rows,
        cols,
        rs: cols,
        cs: 1,
    }
}

fn forward<T: Real>(
    q: Heads,
    k: Heads,
    v: Heads,
    pad: Option<Vec<bool>>,
) -> (FlexTensor, FlexTensor) {
    let (n, m, dk, dv) = (q.rows, k.rows, q.cols, v.cols);
    let [b, h, _, _] = dims4(&q.t);
    let scale = T::of(1.0 / (dk as f64).sqrt());
    let masked = T::of(MASKED);
    let mut out = vec![T::ZERO; b * n * h * dv];
    let mut p = vec![T::ZERO; b * h * n * m];
    if n * m * h > 0 {
        // One task per sequence: its heads' outputs interleave (token-major).
        out.par_chunks_mut((n * h * dv).max(1))
            .zip(p.par_chunks_mut(h * n * m))
            .enumerate()
            .for_each(|(seq, (o, p))| {
                let pad = pad.as_ref().map(|x| &x[seq * m..][..m]);
                for (head, p) in p.chunks_mut(n * m).enumerate() {
                    let pair = seq * h + head;
                    gemm_into(p, m, q.pair(pair), k.pair::<T>(pair).t(), scale);
                    for row in p.chunks_mut(m) {
                        if let Some(pad) = pad {
                            for (s, &hidden) in row.iter_mut().zip(pad) {
                                if hidden {
                                    *s = masked;
                                }
                            }
                        }
                        softmax_row(row);
                    }
                    let o = &mut o[head * dv..];
                    gemm_into(o, h * dv, dense(p, n, m), v.pair(pair), T::ONE);
                }
            });
    }
    (token_major(out, [b, h, n, dv]), tensor(p, [b, h, n, m]))
}

/// Lanes of the reductions below: independent partial results that the compiler keeps in one
/// SIMD register (a single running sum would be a serial chain of additions).
const LANES: usize = 8;

/// `Σ_i f(a_i, b_i)` in [`LANES`] partial sums.
#[inline(always)]
fn lane_sum<T: Real>(a: &[T], b: &[T], f: impl Fn(T, T) -> T) -> T {
    let mut acc = [T::ZERO; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..LANES {
            acc[l] = acc[l] + f(x[l], y[l]);
        }
    }
    let tail = ra.iter().zip(rb).fold(T::ZERO, |s, (&x, &y)| s + f(x, y));
    acc.into_iter().fold(tail, |s, x| s + x)
}

/// The largest element of a non-empty row, in [`LANES`] partial maxima.
#[inline(always)]
fn lane_max<T: Real>(row: &[T]) -> T {
    let bigger = |a: T, x: T| if x > a { x } else { a };
    let mut acc = [row[0]; LANES];
    let chunks = row.chunks_exact(LANES);
    let tail = chunks.remainder().iter().fold(row[0], |a, &x| bigger(a, x));
    for c in chunks {
        for l in 0..LANES {
            acc[l] = bigger(acc[l], c[l]);
        }
    }
    acc.into_iter().fold(tail, bigger)
}

/// `row ← softmax(row)`: the exponentials in a loop of their own (it vectorizes), then the
/// sum and the scaling.
fn softmax_row<T: Real>(row: &mut [T]) {
    let max = lane_max(row);
    T::exp_shifted(row, max);
    let inv = T::ONE / lane_sum(row, row, |x, _| x);
    for x in row.iter_mut() {
        *x = *x * inv;
    }
}

fn backward<T: Real>(
    q: Heads,
    k: Heads,
    v: Heads,
    pad: Option<Vec<bool>>,
    p: Heads,
    d_out: Heads,
) -> [FlexTensor; 3] {
    let (n, m, dk, dv) = (q.rows, k.rows, q.cols, v.cols);
    let [b, h, _, _] = dims4(&q.t);
    let scale = T::of(1.0 / (dk as f64).sqrt());
    let mut gq = vec![T::ZERO; b * n * h * dk];
    let mut gk = vec![T::ZERO; b * m * h * dk];
    let mut gv = vec![T::ZERO; b * m * h * dv];
    if n * m * h > 0 {
        // One task per sequence, the gradients token-major like the forward output.
        gq.par_chunks_mut((n * h * dk).max(1))
            .zip(gk.par_chunks_mut((m * h * dk).max(1)))
            .zip(gv.par_chunks_mut((m * h * dv).max(1)))
            .enumerate()
            .for_each_init(
                || vec![T::ZERO; n * m],
                |ds, (seq, ((gq, gk), gv))| {
                    let pad = pad.as_ref().map(|x| &x[seq * m..][..m]);
                    for head in 0..h {
                        let pair = seq * h + head;
                        let (pp, dop) = (p.pair::<T>(pair), d_out.pair::<T>(pair));
                        gemm_into(&mut gv[head * dv..], h * dv, pp.t(), dop, T::ONE);
                        gemm_into(ds, m, dop, v.pair::<T>(pair).t(), T::ONE);
                        let weights = &pp.data[pp.off..][..n * m];
                        for (row, w) in ds.chunks_mut(m).zip(weights.chunks(m)) {
                            let dot = lane_sum(row, w, |g, w| g * w);
                            for (g, &w) in row.iter_mut().zip(w) {
                                *g = w * (*g - dot);
                            }
                            // Padded scores are constants.
                            if let Some(pad) = pad {
                                for (g, &hidden) in row.iter_mut().zip(pad) {
                                    if hidden {
                                        *g = T::ZERO;
                                    }
                                }
                            }
                        }
                        let ds = dense(ds, n, m);
                        gemm_into(&mut gq[head * dk..], h * dk, ds, k.pair(pair), scale);
                        gemm_into(&mut gk[head * dk..], h * dk, ds.t(), q.pair(pair), scale);
                    }
                },
            );
    }
    [
        token_major(gq, [b, h, n, dk]),
        token_major(gk, [b, h, m, dk]),
        token_major(gv, [b, h, m, dv]),
    ]
}

impl FusedAttention for Flex {
    fn attention_softmax(
        q: FlexTensor,
        k: FlexTensor,
        v: FlexTensor,
        key_pad: FlexTensor,
    ) -> FlexTensor {
        Self::attention_forward(q, k, v, key_pad).0
    }
}

impl AttentionKernels for Flex {
    fn attention_forward(
        q: FlexTensor,
        k: FlexTensor,
        v: FlexTensor,
        key_pad: FlexTensor,
    ) -> (FlexTensor, FlexTensor) {
        let (q, k, v) = (Heads::new(q), Heads::new(k), Heads::new(v));
        let pad = key_pad_flags(key_pad);
        match q.t.dtype() {
            DType::F32 => forward::<f32>(q, k, v, pad),
            DType::F64 => forward::<f64>(q, k, v, pad),
            other => panic!("fused attention: unsupported dtype {other:?}"),
        }
    }

    fn attention_backward(
        q: FlexTensor,
        k: FlexTensor,
        v: FlexTensor,
        key_pad: FlexTensor,
        p: FlexTensor,
        d_out: FlexTensor,
    ) -> [FlexTensor; 3] {
        let pad = key_pad_flags(key_pad);
        // The weights are read row by row: contiguous (they are the forward pass's output).
        let p = p.to_contiguous();
        let [q, k, v, p, d_out] = [q, k, v, p, d_out].map(Heads::new);
        match q.t.dtype() {
            DType::F32 => backward::<f32>(q, k, v, pad, p, d_out),
            DType::F64 => backward::<f64>(q, k, v, pad, p, d_out),
            other => panic!("fused attention: unsupported dtype {other:?}"),
        }
    }
}

#[derive(Debug)]
struct AttentionBackward;

impl<B: Backend + AttentionKernels> Backward<B, 3> for AttentionBackward {
    /// `q`, `k`, `v`, the padding and the weights `P`.
    type State = [B::FloatTensorPrimitive; 5];

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let d_out = grads.consume::<B>(&ops.node);
        let [q, k, v, key_pad, p] = ops.state;
        let grads_qkv = B::attention_backward(q, k, v, key_pad, p, d_out);
        for (parent, grad) in ops.parents.into_iter().zip(grads_qkv) {
            if let Some(node) = parent {
                grads.register::<B>(node.id, grad);
            }
        }
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
