//! Small dense kernels on row-major slices and `faer` matrices: dot products, norms and the
//! correlation `⟨A,B⟩ / (‖A‖_F ‖B‖_F)` used by every paper.

use faer::Mat;

/// `Σ a_k b_k`, with eight independent accumulators so the compiler vectorizes it.
#[inline]
pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    debug_assert_eq!(a.len(), b.len());
    let mut acc = [0.0f64; 8];
    let (ca, ra) = a.as_chunks::<8>();
    let (cb, rb) = b.as_chunks::<8>();
    for (x, y) in ca.iter().zip(cb) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    let mut s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

/// `y += a·x`.
#[inline]
pub fn axpy(a: f64, x: &[f64], y: &mut [f64]) {
    debug_assert_eq!(x.len(), y.len());
    for (yk, xk) in y.iter_mut().zip(x) {
        *yk += a * xk;
    }
}

/// `C ← A·B` (faer's kernel, one thread), then [`clear_upper_simd_state`]: every dense product
/// of the hot loops goes through here.
/// Products below ~32k multiply-adds use a plain column-axpy loop, which skips faer's dispatch
/// (it dominated the cost of a whole training step at the papers' small sizes).
pub fn matmul_into(c: &mut Mat<f64>, a: faer::MatRef<'_, f64>, b: faer::MatRef<'_, f64>) {
    assert_eq!(
        (c.nrows(), c.ncols(), a.ncols()),
        (a.nrows(), b.ncols(), b.nrows())
    );
    let flops = a.nrows() * a.ncols() * b.ncols();
    let b_contiguous = b.try_as_col_major().is_some() || b.transpose().try_as_col_major().is_some();
    let a_cols: Option<Vec<&[f64]>> = (flops < 32_768 && b_contiguous)
        .then(|| {
            (0..a.ncols())
                .map(|k| a.col(k).try_as_col_major().map(|col| col.as_slice()))
                .collect()
        })
        .flatten();
    match a_cols {
        Some(a_cols) => small_matmul(c, &a_cols, b),
        None => {
            faer::linalg::matmul::matmul(c, faer::Accum::Replace, a, b, 1.0, faer::Par::Seq);
            clear_upper_simd_state();
        }
    }
}

/// `C = A·B` by column axpys, for small products; AVX2+FMA code where the CPU has it. `B` is read
/// through contiguous slices (column-major, or row-major as a transposed view), never by index.
fn small_matmul(c: &mut Mat<f64>, a_cols: &[&[f64]], b: faer::MatRef<'_, f64>) {
    #[inline(always)]
    fn body(c: &mut Mat<f64>, a_cols: &[&[f64]], b: faer::MatRef<'_, f64>) {
        match b.try_as_col_major() {
            Some(bc) => columns(c, a_cols, |k, j| bc.col(j).as_slice()[k]),
            None => {
                let br = b.transpose();
                let br = br
                    .try_as_col_major()
                    .expect("B is column- or row-major (checked by caller)");
                columns(c, a_cols, |k, j| br.col(k).as_slice()[j])
            }
        }
    }
    /// `C[:, j] = Σ_k A[:, k]·b(k, j)`, eight rows at a time in a register-resident accumulator.
    #[inline(always)]
    fn columns(c: &mut Mat<f64>, a_cols: &[&[f64]], b: impl Fn(usize, usize) -> f64) {
        let m = c.nrows();
        let full = m / 8 * 8;
        for j in 0..c.ncols() {
            let cj = c.col_as_slice_mut(j);
            for r0 in (0..full).step_by(8) {
                let mut acc = [0.0f64; 8];
                for (k, ak) in a_cols.iter().enumerate() {
                    let (bkj, a8) = (b(k, j), &ak[r0..r0 + 8]);
                    for l in 0..8 {
                        acc[l] += bkj * a8[l];
                    }
                }
                cj[r0..r0 + 8].copy_from_slice(&acc);
            }
            for (r, cr) in cj.iter_mut().enumerate().skip(full) {
                *cr = a_cols
                    .iter()
                    .enumerate()
                    .map(|(k, ak)| b(k, j) * ak[r])
                    .sum();
            }
        }
    }
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn body_avx2(c: &mut Mat<f64>, a_cols: &[&[f64]], b: faer::MatRef<'_, f64>) {
        body(c, a_cols, b)
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU supports the features `body_avx2` is compiled for (checked above).
        return unsafe { body_avx2(c, a_cols, b) };
    }
    body(c, a_cols, b)
}

/// Issue `vzeroupper` after faer's AVX-512 kernels. They return with the upper halves of the vector
/// registers dirty; on the machines we run on, every later call into libm's `exp`/`log` then paid
/// ≈ 300 ns instead of ≈ 8 ns (a 30× slowdown of the whole risk evaluation, measured).
#[inline]
pub fn clear_upper_simd_state() {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx") {
        // SAFETY: `vzeroupper` only zeroes the upper 128+ bits of the vector registers, which hold
        // no live values between Rust statements (the ABI treats them as caller-saved), and the CPU
        // supports it (checked above).
        unsafe { std::arch::asm!("vzeroupper", options(nomem, nostack, preserves_flags)) };
    }
}

/// Frobenius norm of a matrix (faer's scaled algorithm only if the plain sum overflows).
pub fn fro_norm(a: &Mat<f64>) -> f64 {
    let sq: f64 = (0..a.ncols())
        .map(|j| {
            let c = a.col_as_slice(j);
            dot(c, c)
        })
        .sum();
    if sq.is_finite() && sq > 1e-290 {
        sq.sqrt()
    } else {
        let n = a.norm_l2();
        clear_upper_simd_state();
        n
    }
}

/// Frobenius inner product `⟨A,B⟩`.
pub fn fro_dot(a: &Mat<f64>, b: &Mat<f64>) -> f64 {
    assert_eq!(a.shape(), b.shape());
    (0..a.ncols()).map(|j| dot(col(a, j), col(b, j))).sum()
}

/// Column `j` of a column-major `faer` matrix as a slice.
pub fn col(a: &Mat<f64>, j: usize) -> &[f64] {
    a.col_as_slice(j)
}

/// `A ← c·A`.
pub fn scale_in_place(a: &mut Mat<f64>, c: f64) {
    for j in 0..a.ncols() {
        a.col_as_slice_mut(j).iter_mut().for_each(|e| *e *= c);
    }
}

/// The papers' correlation `⟨A,B⟩ / (‖A‖_F ‖B‖_F)` (a signed cosine). Zero when either is zero.
pub fn corr(a: &Mat<f64>, b: &Mat<f64>) -> f64 {
    let (na, nb) = (fro_norm(a), fro_norm(b));
    if na == 0.0 || nb == 0.0 {
        return 0.0;
    }
    fro_dot(a, b) / (na * nb)
}

/// `1 − corr(A,B)`, computed as `½‖A/‖A‖ − B/‖B‖‖²_F` so that it keeps its relative precision when the
/// correlation is within 1e-16 of one (plain `1 − corr` would round to zero there).
pub fn one_minus_corr(a: &Mat<f64>, b: &Mat<f64>) -> f64 {
    let (na, nb) = (fro_norm(a), fro_norm(b));
    if na == 0.0 || nb == 0.0 {
        return 1.0;
    }
    let mut s = 0.0;
    for j in 0..a.ncols() {
        for i in 0..a.nrows() {
            let e = a[(i, j)] / na - b[(i, j)] / nb;
            s += e * e;
        }
    }
    0.5 * s
}

/// A `faer` matrix from a row-major slice of `rows × cols` values.
pub fn mat_from_row_major(rows: usize, cols: usize, data: &[f64]) -> Mat<f64> {
    assert_eq!(data.len(), rows * cols);
    Mat::from_fn(rows, cols, |i, j| data[i * cols + j])
}

/// The row-major values of a `faer` matrix (the layout of a C-ordered `.npy`).
pub fn mat_to_row_major(a: &Mat<f64>) -> Vec<f64> {
    let mut out = Vec::with_capacity(a.nrows() * a.ncols());
    for i in 0..a.nrows() {
        for j in 0..a.ncols() {
            out.push(a[(i, j)]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_matches_naive_sum_for_every_tail_length() {
        for len in 0..20 {
            let a: Vec<f64> = (0..len).map(|k| (k as f64).sin()).collect();
            let b: Vec<f64> = (0..len).map(|k| (k as f64 * 0.7).cos()).collect();
            let naive: f64 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            assert!((dot(&a, &b) - naive).abs() <= 1e-14 * (1.0 + naive.abs()));
        }
    }

    #[test]
    fn one_minus_corr_agrees_with_corr_and_keeps_precision_near_one() {
        let a = Mat::from_fn(3, 3, |i, j| (i * 3 + j) as f64 + 1.0);
        let b = Mat::from_fn(3, 3, |i, j| ((i + 2 * j) as f64).cos());
        assert!((one_minus_corr(&a, &b) - (1.0 - corr(&a, &b))).abs() < 1e-14);
        // A perturbation of relative size 1e-10 gives 1 − corr ≈ 1e-20, far below f64's 1 − corr.
        let mut c = a.clone();
        c[(0, 1)] += 1e-10 * fro_norm(&a);
        let small = one_minus_corr(&a, &c);
        assert!(small > 0.0 && small < 1e-19, "{small}");
    }
}
