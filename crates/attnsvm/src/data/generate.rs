//! Seeded generators for the papers' data families. The same `(family, n, T, d, seed, self_attn)`
//! always gives the same instance, bit for bit (ChaCha8 stream, fixed draw order).
//!
//! | family | tokens | what it is for |
//! |---|---|---|
//! | `gaussian` | `x_it, z_i ~ N(0, I/d)`, unit `v` (the peer's `gen`) | generic instances |
//! | `sphere` | unit-norm tokens and queries, unit `v` (TF-SVM `local_converge`) | local convergence |
//! | `orthonormal` | `x_it = e_{iT+t}`, query = token 0, `W_mm` in closed form (rates paper, S0) | rates with a known `W_mm` |
//! | `equal-score` | Gaussian tokens moved along `v` so `γ_opt = 1` and every other `γ_it = ½` (MM global condition) | global convergence |
//! | `planted` | Gaussian tokens and a hidden unit `W*`; the optimal token is moved (orthogonally to `v`) so it wins every logit by ≥ `δ` under `W*` | feasible at any `n` (scale benchmarks) |

use faer::Mat;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

use super::Instance;
use crate::error::{invalid, Result};
use crate::linalg::{axpy, dot};

/// A data family (see the module table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Family {
    Gaussian,
    Sphere,
    Orthonormal,
    EqualScore,
    Planted,
}

impl Family {
    pub const ALL: [Family; 5] = [
        Family::Gaussian,
        Family::Sphere,
        Family::Orthonormal,
        Family::EqualScore,
        Family::Planted,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Family::Gaussian => "gaussian",
            Family::Sphere => "sphere",
            Family::Orthonormal => "orthonormal",
            Family::EqualScore => "equal-score",
            Family::Planted => "planted",
        }
    }
}

/// What to generate.
///
/// | field | default | meaning |
/// |---|---|---|
/// | `family` | — | the data family |
/// | `n, t, d` | — | sequences, tokens per sequence, dimension (`orthonormal` needs `d ≥ nT`) |
/// | `seed` | 0 | the only source of randomness |
/// | `self_attention` | false | no `Z`: the query is token 0 of each sequence |
/// | `margin` | 0.5 | `planted` only: logit margin `δ > 0` of the selected token under `W*` |
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenSpec {
    pub family: Family,
    pub n: usize,
    pub t: usize,
    pub d: usize,
    pub seed: u64,
    pub self_attention: bool,
    pub margin: f64,
}

impl GenSpec {
    pub fn new(family: Family, n: usize, t: usize, d: usize, seed: u64) -> Self {
        GenSpec {
            family,
            n,
            t,
            d,
            seed,
            self_attention: false,
            margin: 0.5,
        }
    }
}

/// A generated instance and, where the family knows it, a reference matrix:
/// `W_mm` in closed form (`orthonormal`) or the hidden `W*` (`planted`).
#[derive(Debug, Clone)]
pub struct Generated {
    pub instance: Instance,
    pub reference: Option<(&'static str, Mat<f64>)>,
}

/// Generate an instance of a family. The selected tokens `alpha` are the optimal ones.
pub fn generate(spec: &GenSpec) -> Result<Generated> {
    let GenSpec {
        family,
        n,
        t,
        d,
        seed,
        self_attention,
        margin,
    } = *spec;
    if n == 0 || t == 0 || d == 0 {
        return Err(invalid!("n, T and d must all be ≥ 1 (got {n}, {t}, {d})"));
    }
    if family == Family::Orthonormal && d < n * t {
        return Err(invalid!(
            "family orthonormal needs d ≥ n·T = {} (got d = {d})",
            n * t
        ));
    }
    if matches!(family, Family::Orthonormal | Family::Planted) && t < 2 {
        return Err(invalid!("family {} needs T ≥ 2 (got {t})", family.name()));
    }
    if family == Family::Planted && !(margin > 0.0 && margin.is_finite()) {
        return Err(invalid!(
            "planted margin must be a positive number (got {margin})"
        ));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let gen = match family {
        Family::Orthonormal => orthonormal(&mut rng, n, t, d, self_attention),
        _ => {
            let scale = 1.0 / (d as f64).sqrt();
            let unit = family == Family::Sphere;
            let mut x = normal_vectors(&mut rng, n * t, d, scale, unit);
            let zc = normal_vectors(&mut rng, n, d, scale, unit);
            let y: Vec<f64> = (0..n)
                .map(|_| if rng.random::<bool>() { 1.0 } else { -1.0 })
                .collect();
            let v = normal_vectors(&mut rng, 1, d, 1.0, true);
            match family {
                Family::EqualScore => equal_scores(&mut rng, &mut x, &y, &v, (n, t, d)),
                Family::Planted => {
                    return planted(&mut rng, x, zc, y, v, (n, t, d), self_attention, margin)
                }
                _ => {}
            }
            let z = (!self_attention).then_some(zc);
            finish((n, t, d), x, z, y, v, None)?
        }
    };
    Ok(gen)
}

fn finish(
    dims: (usize, usize, usize),
    x: Vec<f64>,
    z: Option<Vec<f64>>,
    y: Vec<f64>,
    v: Vec<f64>,
    reference: Option<(&'static str, Mat<f64>)>,
) -> Result<Generated> {
    let mut instance = Instance::new(dims, x, z, y, v, None)?;
    instance.alpha = Some(instance.optimal_tokens());
    Ok(Generated {
        instance,
        reference,
    })
}

/// `count` vectors of `N(0, scale²I_d)`, optionally normalized to unit length.
fn normal_vectors(
    rng: &mut ChaCha8Rng,
    count: usize,
    d: usize,
    scale: f64,
    unit: bool,
) -> Vec<f64> {
    let mut out: Vec<f64> = (0..count * d)
        .map(|_| scale * rng.sample::<f64, _>(StandardNormal))
        .collect();
    if unit {
        for row in out.chunks_mut(d) {
            let nrm = dot(row, row).sqrt();
            row.iter_mut().for_each(|e| *e /= nrm);
        }
    }
    out
}

/// Move every token along `v` so that the optimal token (uniform position) has score 1 and all
/// others score ½: the equal-score condition of the max-margin paper.
fn equal_scores(
    rng: &mut ChaCha8Rng,
    x: &mut [f64],
    y: &[f64],
    v: &[f64],
    (n, t, d): (usize, usize, usize),
) {
    for i in 0..n {
        let opt = rng.random_range(0..t);
        for k in 0..t {
            let token = &mut x[(i * t + k) * d..][..d];
            let target = if k == opt { 1.0 } else { 0.5 };
            // γ = y vᵀx and ‖v‖ = 1: shift along v by y·(target − γ).
            let gamma = y[i] * dot(token, v);
            axpy(y[i] * (target - gamma), v, token);
        }
    }
}

/// The rates paper's S0: `x_it = e_{iT+t}`, query token 0, optimal token drawn from positions
/// 1..T, `γ_opt = 1`, the other scores `U(−½, ½)`. `W_mm e_{iT} = a e_{iT+opt} + (a−1) Σ_{t≠opt} e_{iT+t}`
/// with `a = (T−1)/T`, and every other column zero, so `‖W_mm‖²_F = n(T−1)/T`.
fn orthonormal(
    rng: &mut ChaCha8Rng,
    n: usize,
    t: usize,
    d: usize,
    self_attention: bool,
) -> Generated {
    let mut x = vec![0.0; n * t * d];
    let mut v = vec![0.0; d];
    let mut y = vec![0.0; n];
    let mut w_mm = Mat::zeros(d, d);
    let a = (t as f64 - 1.0) / t as f64;
    for i in 0..n {
        y[i] = if rng.random::<bool>() { 1.0 } else { -1.0 };
        let opt = rng.random_range(1..t);
        for k in 0..t {
            let e = i * t + k;
            x[(i * t + k) * d + e] = 1.0;
            let gamma = if k == opt {
                1.0
            } else {
                rng.random_range(-0.5..0.5)
            };
            v[e] = y[i] * gamma;
            w_mm[(e, i * t)] = if k == opt { a } else { a - 1.0 };
        }
    }
    let z = (!self_attention).then(|| (0..n).flat_map(|i| x[i * t * d..][..d].to_vec()).collect());
    finish((n, t, d), x, z, y, v, Some(("W_mm", w_mm))).expect("orthonormal instances are valid")
}

/// Planted family: a hidden `W*` (unit Frobenius norm) under which the optimal token of every
/// sequence wins all logits by at least `δ`, so `W*/δ` is feasible for Att-SVM at any `n`.
#[allow(clippy::too_many_arguments)]
fn planted(
    rng: &mut ChaCha8Rng,
    mut x: Vec<f64>,
    mut z: Vec<f64>,
    y: Vec<f64>,
    v: Vec<f64>,
    (n, t, d): (usize, usize, usize),
    self_attention: bool,
    margin: f64,
) -> Result<Generated> {
    let mut w_star = Mat::from_fn(d, d, |_, _| rng.sample::<f64, _>(StandardNormal));
    let nrm = w_star.norm_l2();
    crate::linalg::scale_in_place(&mut w_star, 1.0 / nrm);
    for i in 0..n {
        let seq = &mut x[i * t * d..][..t * d];
        if self_attention {
            // The query (token 0) gets the lowest score, so the optimal token is never the query
            // and moving it leaves z_i unchanged.
            let gammas: Vec<f64> = seq.chunks(d).map(|tok| y[i] * dot(tok, &v)).collect();
            let low = gammas.iter().cloned().fold(f64::INFINITY, f64::min) - 1.0;
            axpy(y[i] * (low - gammas[0]), &v, &mut seq[..d]);
            z[i * d..][..d].copy_from_slice(&seq[..d]);
        }
        let gammas: Vec<f64> = seq.chunks(d).map(|tok| y[i] * dot(tok, &v)).collect();
        let opt = super::argmax(&gammas);
        // w = W* z_i and its part p orthogonal to v: moving x_opt along p changes its logit but not
        // its score.
        let zi = &z[i * d..][..d];
        let w: Vec<f64> = (0..d)
            .map(|r| (0..d).map(|c| w_star[(r, c)] * zi[c]).sum())
            .collect();
        let mut p = w.clone();
        axpy(-dot(&v, &w), &v, &mut p);
        let pp = dot(&p, &p);
        if pp <= 1e-300 {
            continue; // measure-zero degenerate draw: leave this sequence as drawn
        }
        let logits: Vec<f64> = seq.chunks(d).map(|tok| dot(tok, &w)).collect();
        let best_other = (0..t)
            .filter(|&k| k != opt)
            .map(|k| logits[k])
            .fold(f64::NEG_INFINITY, f64::max);
        let shift = (best_other + margin - logits[opt]).max(0.0);
        axpy(shift / pp, &p, &mut seq[opt * d..][..d]);
    }
    let z = (!self_attention).then_some(z);
    finish((n, t, d), x, z, y, v, Some(("W_star", w_star)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_instance_other_seed_other_instance() {
        for family in Family::ALL {
            let spec = GenSpec::new(family, 3, 4, 12, 7);
            let a = generate(&spec).unwrap().instance;
            let b = generate(&spec).unwrap().instance;
            assert_eq!(a, b, "{family:?}");
            let c = generate(&GenSpec { seed: 8, ..spec }).unwrap().instance;
            assert_ne!(a, c, "{family:?}");
        }
    }

    #[test]
    fn equal_score_family_has_equal_non_optimal_scores() {
        let inst = generate(&GenSpec::new(Family::EqualScore, 5, 6, 4, 1))
            .unwrap()
            .instance;
        let g = inst.scores();
        for (i, row) in g.chunks(6).enumerate() {
            let opt = inst.alpha.as_ref().unwrap()[i];
            for (k, &gk) in row.iter().enumerate() {
                let want = if k == opt { 1.0 } else { 0.5 };
                assert!((gk - want).abs() < 1e-12, "γ[{i},{k}] = {gk}");
            }
        }
    }

    #[test]
    fn planted_selection_wins_every_logit_by_the_margin() {
        for self_attention in [false, true] {
            let spec = GenSpec {
                self_attention,
                margin: 0.3,
                ..GenSpec::new(Family::Planted, 50, 5, 3, 2)
            };
            let g = generate(&spec).unwrap();
            let inst = &g.instance;
            let w = &g.reference.as_ref().unwrap().1;
            let z = inst.queries(0).unwrap();
            let alpha = inst.alpha.as_ref().unwrap();
            assert_eq!(alpha, &inst.optimal_tokens());
            for i in 0..inst.n {
                let zi = &z[i * 3..][..3];
                let logit = |k: usize| {
                    let x = inst.token(i, k);
                    (0..3)
                        .map(|r| x[r] * (0..3).map(|c| w[(r, c)] * zi[c]).sum::<f64>())
                        .sum::<f64>()
                };
                for k in (0..5).filter(|&k| k != alpha[i]) {
                    assert!(logit(alpha[i]) - logit(k) >= 0.3 - 1e-12);
                }
            }
        }
    }

    #[test]
    fn orthonormal_closed_form_satisfies_the_svm_constraints_with_equality() {
        let g = generate(&GenSpec::new(Family::Orthonormal, 3, 4, 12, 5)).unwrap();
        let (inst, w) = (&g.instance, &g.reference.as_ref().unwrap().1);
        let alpha = inst.alpha.as_ref().unwrap();
        assert!((w.norm_l2().powi(2) - 3.0 * 3.0 / 4.0).abs() < 1e-12);
        for i in 0..3 {
            let q = i * 4;
            for k in (0..4).filter(|&k| k != alpha[i]) {
                let margin = w[(q + alpha[i], q)] - w[(q + k, q)];
                assert!((margin - 1.0).abs() < 1e-12);
            }
        }
    }
}
