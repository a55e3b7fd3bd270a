//! The CPU kernels of the fused attention (burn's flex backend): one task per sequence, one
//! `N × M` block per head, products by the `gemm` crate.

use burn::backend::flex::{Flex, FlexTensor, Layout};
use burn::tensor::{Bytes, DType, Shape};
use rayon::prelude::*;

use super::{dims4, AttentionKernels, FusedAttention, MASKED};
use crate::fused::Real;

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
