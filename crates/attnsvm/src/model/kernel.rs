//! Forward and backward of one sequence (the hot loop): softmax in the log domain, the head, and
//! `X_iᵀ δ̃_i` with the pair weight `e^{κ_i}` factored out (see `objective.rs`). Compiled twice on
//! x86-64: for the baseline and for AVX2+FMA, chosen at run time.

use faer::Mat;

use super::{Head, Loss};
use crate::data::Instance;

/// Inputs shared by all sequences of one evaluation.
pub(super) struct Context<'a> {
    pub inst: &'a Instance,
    pub head: &'a Head,
    pub loss: Loss,
    pub v: &'a [f64],
    /// Column `i` is `W z_i`.
    pub u: &'a Mat<f64>,
    /// Whether `x̄_i` is needed (nonlinear heads, or the gradient in `v`).
    pub need_xbar: bool,
    /// `g_it = x_itᵀ v` for the linear head with a fixed `v` (`n·T`), computed once.
    pub g_linear: Option<&'a [f64]>,
}

/// Per-thread scratch.
pub(super) struct Scratch {
    a: Vec<f64>,
    g: Vec<f64>,
    e1: Vec<f64>,
    e2: Vec<f64>,
    /// Per-token weights of a row sum.
    w: Vec<f64>,
    gradh: Vec<f64>,
}

impl Scratch {
    pub fn new(t: usize, d: usize) -> Self {
        Scratch {
            a: vec![0.0; t],
            g: vec![0.0; t],
            e1: vec![0.0; t],
            e2: vec![0.0; t],
            w: vec![0.0; t],
            gradh: vec![0.0; d],
        }
    }
}

/// Per-sequence results before the global rescaling.
pub(super) struct SeqOut {
    pub yf: f64,
    pub loss: f64,
    pub log_neg_derivative: f64,
    pub log_weight: f64,
    pub selected: usize,
    pub max_prob: f64,
    /// `a₂ − a₁` (−∞ for T = 1).
    pub a21: f64,
    /// `ln Σ_t e^{a_t − a₁}`.
    pub ln_e: f64,
    /// `Σ_{t≠top} e^{a_t − a₂}`.
    pub sum_e2: f64,
    /// The pieces of `Δ` for the linear head.
    pub gap: Option<GapParts>,
}

/// `Δ = (gap_top + e^{a₂−a₁}·rest)/E` and the best score `γ*`.
pub(super) struct GapParts {
    pub best: f64,
    pub gap_top: f64,
    pub rest: f64,
}

impl SeqOut {
    /// `log(1 − max_t s_t) = a₂ − a₁ + ln Σ_{t≠top} e2_t − ln E`, exact however small.
    pub fn log_off_mass(&self) -> f64 {
        self.a21 + self.sum_e2.ln() - self.ln_e
    }

    /// `(γ*, log Δ)` for the linear head.
    pub fn log_gap(&self) -> Option<(f64, f64)> {
        self.gap.as_ref().map(|g| {
            let top = g.gap_top.ln() - self.ln_e;
            let rest = self.a21 + g.rest.ln() - self.ln_e;
            (g.best, log_add(top, rest))
        })
    }
}

/// Sequences `first, first+1, …` (one per `d`-block of `bs` and `xbars`): writes each
/// `b_i = −y_i X_iᵀ δ̃_i` (before the factor `ρ_i`) and `x̄_i`, and appends the per-sequence results.
/// The CPU's features are checked once per call, not per sequence.
pub(super) fn sequences(
    ctx: &Context,
    first: usize,
    s: &mut Scratch,
    bs: &mut [f64],
    xbars: &mut [f64],
    outs: &mut Vec<SeqOut>,
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU supports the features `sequences_avx2` is compiled for (checked above).
        return unsafe { sequences_avx2(ctx, first, s, bs, xbars, outs) };
    }
    sequences_body::<false>(ctx, first, s, bs, xbars, outs)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn sequences_avx2(
    ctx: &Context,
    first: usize,
    s: &mut Scratch,
    bs: &mut [f64],
    xbars: &mut [f64],
    outs: &mut Vec<SeqOut>,
) {
    sequences_body::<true>(ctx, first, s, bs, xbars, outs)
}

#[inline(always)]
fn sequences_body<const FMA: bool>(
    ctx: &Context,
    first: usize,
    s: &mut Scratch,
    bs: &mut [f64],
    xbars: &mut [f64],
    outs: &mut Vec<SeqOut>,
) {
    let d = ctx.inst.d;
    for (k, (bi, xbar)) in bs
        .chunks_exact_mut(d)
        .zip(xbars.chunks_exact_mut(d))
        .enumerate()
    {
        outs.push(sequence_body::<FMA>(ctx, first + k, s, bi, xbar));
    }
}

/// `a·b + c`, fused where the kernel is compiled with FMA (a libm call otherwise).
#[inline(always)]
fn fmadd<const FMA: bool>(a: f64, b: f64, c: f64) -> f64 {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// `Σ_k a_k b_k` with eight independent accumulators.
#[inline(always)]
fn dot<const FMA: bool>(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0.0f64; 8];
    let (ca, ra) = a.as_chunks::<8>();
    let (cb, rb) = b.as_chunks::<8>();
    for (x, y) in ca.iter().zip(cb) {
        for k in 0..8 {
            acc[k] = fmadd::<FMA>(x[k], y[k], acc[k]);
        }
    }
    let mut s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (x, y) in ra.iter().zip(rb) {
        s = fmadd::<FMA>(*x, *y, s);
    }
    s
}

/// `Σ_q e_q (g_k − g_q)`, each term formed exactly (no `g_k Σe − Σ e g` cancellation), with four
/// accumulators so that it vectorizes.
#[inline(always)]
fn weighted_gaps<const FMA: bool>(e: &[f64], gk: f64, g: &[f64]) -> f64 {
    let mut acc = [0.0f64; 4];
    let (ce, re) = e.as_chunks::<4>();
    let (cg, rg) = g.as_chunks::<4>();
    for (ee, gg) in ce.iter().zip(cg) {
        for l in 0..4 {
            acc[l] = fmadd::<FMA>(ee[l], gk - gg[l], acc[l]);
        }
    }
    let mut s = (acc[0] + acc[2]) + (acc[1] + acc[3]);
    for (ee, gg) in re.iter().zip(rg) {
        s = fmadd::<FMA>(*ee, gk - gg, s);
    }
    s
}

/// `out = Σ_t w_t x_t` over the rows `x_t` of a `T×d` block, eight columns at a time so that the
/// partial sums stay in registers (one read of the block, no read-modify-write of `out` per row).
#[inline(always)]
fn weighted_row_sum<const FMA: bool>(x: &[f64], d: usize, w: &[f64], out: &mut [f64]) {
    let full = d / 8 * 8;
    for c in (0..full).step_by(8) {
        let mut acc = [0.0f64; 8];
        for (row, &wt) in x.chunks_exact(d).zip(w) {
            let xr = &row[c..c + 8];
            for l in 0..8 {
                acc[l] = fmadd::<FMA>(wt, xr[l], acc[l]);
            }
        }
        out[c..c + 8].copy_from_slice(&acc);
    }
    for (c, o) in out.iter_mut().enumerate().skip(full) {
        *o = x
            .chunks_exact(d)
            .zip(w)
            .fold(0.0, |acc, (row, &wt)| fmadd::<FMA>(wt, row[c], acc));
    }
}

#[inline(always)]
fn sequence_body<const FMA: bool>(
    ctx: &Context,
    i: usize,
    s: &mut Scratch,
    bi: &mut [f64],
    xbar: &mut [f64],
) -> SeqOut {
    let (t, d) = (ctx.inst.t, ctx.inst.d);
    let xs = ctx.inst.tokens(i);
    let yi = ctx.inst.y[i];
    let ui = ctx.u.col_as_slice(i);
    for (a, x) in s.a.iter_mut().zip(xs.chunks_exact(d)) {
        *a = dot::<FMA>(x, ui);
    }
    // Softmax in the log domain: e1_t = e^{a_t − a₁}, E = Σ e1, s_t = e1_t / E.
    let top = crate::data::argmax(&s.a);
    let a1 = s.a[top];
    let mut e_sum = 0.0;
    for (e, &a) in s.e1.iter_mut().zip(&s.a) {
        *e = exp_nonpositive::<FMA>(a - a1);
    }
    for &e in &s.e1 {
        e_sum += e;
    }
    let ln_e = e_sum.ln(); // logsumexp(a) = a₁ + ln E
    let max_prob = 1.0 / e_sum;
    // e2_τ = e^{a_τ − a₂} (a₂ the second largest logit). Reusing e1 loses only terms below e^{-400}
    // of the largest one when a₁ − a₂ ≤ 345; past that, exponentiate again.
    let a2 = (0..t)
        .filter(|&k| k != top)
        .map(|k| s.a[k])
        .fold(f64::NEG_INFINITY, f64::max);
    let a21 = a2 - a1;
    // e^{a₂−a₁}, the factor between the two scalings (0 for T = 1).
    let mut ratio21 = 0.0;
    if t > 1 {
        if a1 - a2 <= 345.0 {
            let c = (a1 - a2).exp();
            ratio21 = 1.0 / c;
            for k in 0..t {
                s.e2[k] = s.e1[k] * c;
            }
        } else {
            ratio21 = a21.exp();
            for k in 0..t {
                // Only the top token has a_k > a₂, and its entry is overwritten below.
                s.e2[k] = exp_nonpositive::<FMA>((s.a[k] - a2).min(0.0));
            }
        }
        s.e2[top] = 0.0; // never used: the top token's own term is handled apart
    }
    let sum_e2: f64 = s.e2.iter().sum();

    // x̄ = Σ s_t x_t.
    if ctx.need_xbar {
        for (w, &e) in s.w.iter_mut().zip(&s.e1) {
            *w = e / e_sum;
        }
        weighted_row_sum::<FMA>(xs, d, &s.w, xbar);
    }
    // Value scores g_t = x_tᵀ ∇h(x̄) and the prediction f.
    let (f, gap) = match ctx.head {
        Head::Linear => {
            match ctx.g_linear {
                Some(g) => s.g.copy_from_slice(&g[i * t..][..t]),
                None => {
                    for (k, x) in xs.chunks_exact(d).enumerate() {
                        s.g[k] = dot::<FMA>(x, ctx.v);
                    }
                }
            }
            // y f = γ* − Δ with Δ = Σ_t s_t (γ* − γ_t) = (gap_top + e^{a₂−a₁} Σ_{t≠top} e2_t gap_t)/E,
            // no cancellation; its logarithm is formed only for the diagnostics.
            let best = (0..t)
                .map(|k| yi * s.g[k])
                .fold(f64::NEG_INFINITY, f64::max);
            let gap_top = best - yi * s.g[top];
            let rest: f64 = (0..t).map(|k| s.e2[k] * (best - yi * s.g[k])).sum();
            let delta = (gap_top + ratio21 * rest) / e_sum;
            (
                yi * (best - delta),
                Some(GapParts {
                    best,
                    gap_top,
                    rest,
                }),
            )
        }
        Head::Lambda { lambda } => {
            for ((gh, &vk), &xk) in s.gradh.iter_mut().zip(ctx.v).zip(xbar.iter()) {
                *gh = vk - 2.0 * lambda * xk;
            }
            for (k, x) in xs.chunks_exact(d).enumerate() {
                s.g[k] = dot::<FMA>(x, &s.gradh);
            }
            (
                dot::<FMA>(ctx.v, xbar) - lambda * dot::<FMA>(xbar, xbar),
                None,
            )
        }
        Head::Relu { wv, u } => {
            let mut f = 0.0;
            s.gradh.fill(0.0);
            for (j, &uj) in u.iter().enumerate() {
                let rj: f64 = (0..d).map(|k| wv[(j, k)] * xbar[k]).sum();
                if rj > 0.0 {
                    f += uj * rj;
                    for k in 0..d {
                        s.gradh[k] += uj * wv[(j, k)];
                    }
                }
            }
            for (k, x) in xs.chunks_exact(d).enumerate() {
                s.g[k] = dot::<FMA>(x, &s.gradh);
            }
            (f, None)
        }
    };
    let yf = yi * f;
    let (loss, log_neg_derivative) = ctx.loss.value_and_log_neg_derivative(yf);

    // b_i = −y_i Σ_t δ̃_t x_t with
    //   δ̃_top = Σ_{τ≠top} e2_τ (g_top − g_τ),   δ̃_t = e2_t Σ_τ e1_τ (g_t − g_τ)  (t ≠ top).
    let log_weight = if t > 1 {
        for k in 0..t {
            let gk = s.g[k];
            let delta = if k == top {
                weighted_gaps::<FMA>(&s.e2, gk, &s.g)
            } else {
                s.e2[k] * weighted_gaps::<FMA>(&s.e1, gk, &s.g)
            };
            s.w[k] = -yi * delta;
        }
        weighted_row_sum::<FMA>(xs, d, &s.w, bi);
        // Fold the size of b_i into its log-weight: a sequence whose b_i vanishes (a ReLU head
        // with every unit off) must not set the global scale, or it would underflow the others.
        let bmax = bi.iter().fold(0.0f64, |a, &x| a.max(x.abs()));
        if bmax > 0.0 && bmax.is_finite() {
            bi.iter_mut().for_each(|x| *x /= bmax);
            log_neg_derivative + (a21 - 2.0 * ln_e) + bmax.ln()
        } else if bmax == 0.0 {
            f64::NEG_INFINITY
        } else {
            log_neg_derivative + (a21 - 2.0 * ln_e)
        }
    } else {
        bi.fill(0.0);
        f64::NEG_INFINITY
    };
    SeqOut {
        yf,
        loss,
        log_neg_derivative,
        log_weight,
        selected: top,
        max_prob,
        a21,
        ln_e,
        sum_e2,
        gap,
    }
}

/// `e^x` for `x ≤ 0`, with ≤ 2 ulp error and results below `e^{-708}` flushed to zero (they are
/// below 1e-300 of the softmax's largest term, which is 1). Branch-free so that the softmax loop
/// vectorizes: Cody–Waite reduction `x = k ln2 + r`, `|r| ≤ ln2/2`, and the degree-13 Taylor
/// polynomial of `e^r` (truncation < 5e-18).
#[inline(always)]
pub(super) fn exp_nonpositive<const FMA: bool>(x: f64) -> f64 {
    const MAGIC: f64 = 6755399441055744.0; // 1.5·2^52: adding it rounds to an integer
    const LN2_HI: f64 = 6.931_471_803_691_238e-1;
    const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
    let xc = x.max(-708.0);
    let kf = xc * std::f64::consts::LOG2_E + MAGIC;
    let k = kf - MAGIC;
    let r = (xc - k * LN2_HI) - k * LN2_LO; // k·LN2_HI is exact: LN2_HI has 32 significant bits
    let mut p = 1.0 / 6_227_020_800.0;
    for c in [
        1.0 / 479_001_600.0,
        1.0 / 39_916_800.0,
        1.0 / 3_628_800.0,
        1.0 / 362_880.0,
        1.0 / 40_320.0,
        1.0 / 5_040.0,
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5,
        1.0,
        1.0,
    ] {
        p = fmadd::<FMA>(p, r, c);
    }
    // 2^k from the integer held in the low bits of kf.
    let scale = f64::from_bits(
        kf.to_bits()
            .wrapping_sub(MAGIC.to_bits())
            .wrapping_add(1023)
            << 52,
    );
    if x < -708.0 {
        0.0
    } else {
        p * scale
    }
}

/// `log(e^a + e^b)`.
#[inline(always)]
fn log_add(a: f64, b: f64) -> f64 {
    let (hi, lo) = if a >= b { (a, b) } else { (b, a) };
    if hi == f64::NEG_INFINITY {
        return hi;
    }
    hi + (lo - hi).exp().ln_1p()
}

#[cfg(test)]
mod tests {
    use super::exp_nonpositive;

    #[test]
    fn exp_nonpositive_is_within_two_ulp_of_libm() {
        let mut worst: f64 = 0.0;
        for k in 0..200_000 {
            let x = -708.0 * (k as f64 / 200_000.0).powi(2);
            let (fast, exact) = (exp_nonpositive::<false>(x), x.exp());
            let fused = exp_nonpositive::<true>(x);
            worst = worst.max(((fused - exact) / exact).abs());
            worst = worst.max(((fast - exact) / exact).abs());
        }
        assert!(
            worst <= 2.0 * f64::EPSILON,
            "worst relative error {worst:e}"
        );
        assert_eq!(exp_nonpositive::<false>(0.0), 1.0);
        assert_eq!(exp_nonpositive::<false>(-800.0), 0.0);
        assert_eq!(exp_nonpositive::<false>(f64::NEG_INFINITY), 0.0);
    }
}
