//! The Attention-SH downsampler `P_r` (spec `primal-dual.md` §2.2, §2.6 step 2, §5.12): masked
//! average pooling of a head's keys or values with kernel = stride = `r`,
//!
//! - **1D**: windows of `r` consecutive tokens (the last window may be short);
//! - **2D**: `r × r` windows of a `[rows, cols]` token grid (row-major tokens, e.g. image patches;
//!   windows at the right and bottom edges may be short), pooled slots in row-major order.
//!
//! A pooled slot is the mean of its *valid* members and is padding when it has none. The same
//! map as an explicit matrix, [`pool_matrix`], spreads a pooled key's attention weight evenly back
//! over its valid members, which is how the head-redundancy measure compares heads with different
//! key lengths.

use burn::tensor::{Bool, Tensor};

/// `(slots, members of each slot)` of pooling `n` tokens by `r` (on `grid` when given).
pub fn windows(n: usize, r: usize, grid: Option<[usize; 2]>) -> Vec<Vec<usize>> {
    match grid {
        None => (0..n.div_ceil(r))
            .map(|s| (s * r..((s + 1) * r).min(n)).collect())
            .collect(),
        Some([rows, cols]) => {
            let (pr, pc) = (rows.div_ceil(r), cols.div_ceil(r));
            (0..pr * pc)
                .map(|s| {
                    let (r0, c0) = (s / pc * r, s % pc * r);
                    (r0..(r0 + r).min(rows))
                        .flat_map(|i| (c0..(c0 + r).min(cols)).map(move |j| i * cols + j))
                        .collect()
                })
                .collect()
        }
    }
}

/// Pool `t` (`[B, 1, N, w]`) by `r` along the tokens or on `grid` (then `N = rows · cols`); with a
/// padding mask `pad` (`[B, N]`, true = padding) also the pooled mask (`[B, slots]`).
pub fn pool(
    t: Tensor<4>,
    pad: Option<&Tensor<2, Bool>>,
    r: usize,
    grid: Option<[usize; 2]>,
) -> (Tensor<4>, Option<Tensor<2, Bool>>) {
    if r == 1 {
        return (t, pad.cloned());
    }
    let [b, _, n, w] = t.dims();
    let device = t.device();
    let mut valid = Tensor::<4>::ones([b, 1, n, 1], &device);
    if let Some(pad) = pad {
        valid = valid.mask_fill(pad.clone().unsqueeze_dim::<3>(1).unsqueeze_dim::<4>(3), 0.0);
    }
    // Sums over the windows; zero rows complete the last windows and count as no member.
    let window_sum = |t: Tensor<4>, width: usize| -> Tensor<4> {
        let zeros = |dims: [usize; 4]| Tensor::<4>::zeros(dims, &device);
        match grid {
            None => {
                let slots = n.div_ceil(r);
                let t = grow(t, 2, slots * r - n, |extra| zeros([b, 1, extra, width]));
                t.reshape([b, 1, slots, r, width])
                    .sum_dim(3)
                    .reshape([b, 1, slots, width])
            }
            Some([rows, cols]) => {
                let (pr, pc) = (rows.div_ceil(r), cols.div_ceil(r));
                let g = t.reshape([b, rows, cols, width]);
                let g = grow(g, 1, pr * r - rows, |extra| zeros([b, extra, cols, width]));
                let g = grow(g, 2, pc * r - cols, |extra| {
                    zeros([b, pr * r, extra, width])
                });
                g.reshape([b, pr, r, pc, r, width])
                    .sum_dim(2)
                    .sum_dim(4)
                    .reshape([b, 1, pr * pc, width])
            }
        }
    };
    let count = window_sum(valid.clone(), 1);
    let slots = count.dims()[2];
    let pooled = window_sum(t * valid.expand([b, 1, n, w]), w)
        .div(count.clone().clamp_min(1.0).expand([b, 1, slots, w]));
    let pad = pad.map(|_| count.reshape([b, slots]).lower_elem(0.5));
    (pooled, pad)
}

/// `t` with `extra` more entries along `dim` from `fill(extra)` (unchanged when `extra = 0`).
fn grow(
    t: Tensor<4>,
    dim: usize,
    extra: usize,
    fill: impl FnOnce(usize) -> Tensor<4>,
) -> Tensor<4> {
    if extra == 0 {
        t
    } else {
        Tensor::cat(vec![t, fill(extra)], dim)
    }
}

/// The pooling of [`pool`] as matrices: `P[b]` (`slots × n`, row-major, batch after batch) with
/// `P[b][s][t] = 1/|valid members of s|` for the valid members `t` of slot `s`, so that the pooled
/// tokens are `P[b]·T[b]`. `pad` is `b × n`, true = padding. Returns `(P, slots)`.
pub fn pool_matrix(
    b: usize,
    n: usize,
    r: usize,
    grid: Option<[usize; 2]>,
    pad: Option<&[bool]>,
) -> (Vec<f32>, usize) {
    let win = windows(n, r, grid);
    let slots = win.len();
    let mut p = vec![0f32; b * slots * n];
    for bi in 0..b {
        let valid = |t: usize| pad.is_none_or(|m| !m[bi * n + t]);
        for (s, members) in win.iter().enumerate() {
            let live: Vec<usize> = members.iter().copied().filter(|&t| valid(t)).collect();
            for &t in &live {
                p[(bi * slots + s) * n + t] = 1.0 / live.len() as f32;
            }
        }
    }
    (p, slots)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Distribution, TensorData};

    /// The pooled tokens are `P·T` with the matrix of [`pool_matrix`], 1D and 2D, with padding;
    /// the pooled mask marks the slots with no valid member.
    #[test]
    fn pooling_is_its_matrix() {
        let device = crate::cpu();
        let (b, n, w) = (2, 6, 3);
        let t = Tensor::<4>::random([b, 1, n, w], Distribution::Normal(0.0, 1.0), &device);
        // Sequence 1: tokens 2, 4 and 5 are padding.
        let mask: Vec<bool> = (0..b * n)
            .map(|e| e >= n && [2, 4, 5].contains(&(e % n)))
            .collect();
        let pad = Tensor::<2, Bool>::from_data(TensorData::new(mask.clone(), [b, n]), &device);
        for (r, grid) in [(2, None), (4, None), (2, Some([2, 3])), (3, Some([3, 2]))] {
            let (pooled, pmask) = pool(t.clone(), Some(&pad), r, grid);
            let (p, slots) = pool_matrix(b, n, r, grid, Some(&mask));
            let p = Tensor::<4>::from_data(TensorData::new(p, [b, 1, slots, n]), &device);
            assert_eq!(pooled.dims(), [b, 1, slots, w]);
            let diff = (pooled - p.clone().matmul(t.clone()))
                .abs()
                .max()
                .into_scalar::<f32>();
            assert!(diff < 1e-6, "r = {r}, grid {grid:?}: {diff:e}");
            let empty: Vec<bool> = p
                .sum_dim(3)
                .into_data()
                .try_to_vec::<f32>()
                .unwrap()
                .iter()
                .map(|&s| s == 0.0)
                .collect();
            let got: Vec<bool> = pmask.unwrap().into_data().try_to_vec::<bool>().unwrap();
            assert_eq!(got, empty, "r = {r}, grid {grid:?}");
        }
        assert_eq!(
            windows(6, 2, Some([2, 3])),
            vec![vec![0, 1, 3, 4], vec![2, 5]]
        );
    }
}
