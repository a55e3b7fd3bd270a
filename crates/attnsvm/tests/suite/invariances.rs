//! Exact invariances of the attention risk (they hold for every W, not just near a solution):
//!
//! - softmax shift invariance: logits that move by a per-sequence constant give the same attention;
//!   reached two ways, by moving the tokens (r_i ⟂ v, linear head) and by moving W along
//!   `u wᵀ` with `u ⟂ every token difference` (every head, self-attention too);
//! - scale bookkeeping of the [`Scaled`] gradient;
//! - relabelling symmetries (label/head flip, token and sequence permutations);
//! - the orientation convention `a_it = x_itᵀ W z_i`.
//!
//! Tolerances are a few hundred ε relative: every invariant quantity is a sum of ≤ 30 terms whose
//! rounding differs between the two sides, with no cancellation amplified by more than ~e^{|Δa|}
//! for the moderate logits used here.

use crate::common::*;
use attnsvm::data::generate::Family;
use attnsvm::data::Instance;
use attnsvm::model::{Head, Loss, Objective, Scaled};
use faer::Mat;
use proptest::prelude::*;

fn with_tokens(inst: &Instance, x: Vec<f64>) -> Instance {
    Instance::new(
        (inst.n, inst.t, inst.d),
        x,
        inst.z.clone(),
        inst.y.clone(),
        inst.v.clone(),
        inst.alpha.clone(),
    )
    .unwrap()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Compare two scaled gradients in log-norm and direction (valid even when both underflow).
fn assert_same_gradient(a: &Scaled, b: &Scaled, tol: f64, what: &str) {
    let (la, lb) = (a.log_norm(), b.log_norm());
    assert!(
        (la - lb).abs() <= tol * (1.0 + la.abs()),
        "{what}: log-norms {la} vs {lb}"
    );
    let (da, db) = (a.direction().unwrap(), b.direction().unwrap());
    let e = dist(&da, &db);
    assert!(e <= tol, "{what}: directions differ by {e:e}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// (a) Adding r_i ⟂ v to every token of sequence i (cross-attention, linear head) shifts each of
    /// its logits by the constant r_iᵀWz_i, so the attention is unchanged; the prediction
    /// Σ_t s_t vᵀ(x_t + r_i) is unchanged because vᵀr_i = 0; and ∇_W L is unchanged because
    /// X'ᵀ∂f/∂a = Xᵀ∂f/∂a + r_i Σ_t ∂f/∂a_t with Σ_t ∂f/∂a_t = Σ_t s_t(g_t − sᵀg) = 0.
    /// Checked both at moderate ‖W‖ and deep in saturation (R = 40: off-token mass ~e^{-40}).
    #[test]
    fn shifting_a_sequence_orthogonally_to_v_changes_nothing(
        family in prop::sample::select(vec![Family::Gaussian, Family::Sphere]),
        dims in (1usize..=4, 2usize..=5, 2usize..=5),
        seed in any::<u64>(),
        w_norm in 0.3f64..2.0,
        big in any::<bool>(),
        r_norm in 0.0f64..2.0,
    ) {
        let inst = instance(family, dims, seed, false);
        let (n, t, d) = dims;
        let mut r = rng(seed ^ 7);
        let w = scale(&random_mat(&mut r, d, d, w_norm), if big { 40.0 } else { 1.0 });
        let v = &inst.v;
        let vv = dot(v, v);
        let mut x = inst.x.clone();
        let mut shifts = Vec::new();
        for i in 0..n {
            let mut ri = random_vec(&mut r, d);
            let c = dot(&ri, v) / vv;
            ri.iter_mut().zip(v).for_each(|(a, b)| *a -= c * b);
            let nr = dot(&ri, &ri).sqrt();
            if nr > 0.0 {
                ri.iter_mut().for_each(|a| *a *= r_norm / nr);
            }
            for k in 0..t {
                x[(i * t + k) * d..][..d].iter_mut().zip(&ri).for_each(|(a, b)| *a += b);
            }
            shifts.push(ri);
        }
        let shifted = with_tokens(&inst, x);
        let z = inst.z.as_ref().unwrap();
        for loss in LOSSES {
            let mut o1 = Objective::new(&inst, Head::Linear, loss, 0).unwrap();
            let mut o2 = Objective::new(&shifted, Head::Linear, loss, 0).unwrap();
            // Logits move by c_i = r_iᵀ W z_i, the same for every token of sequence i.
            let (a1, a2) = (o1.logits(&w), o2.logits(&w));
            let amax = a1.iter().chain(&a2).fold(1.0f64, |m, a| m.max(a.abs()));
            for i in 0..n {
                let zi = &z[i * d..][..d];
                let wz: Vec<f64> = (0..d).map(|p| (0..d).map(|q| w[(p, q)] * zi[q]).sum()).collect();
                let ci = dot(&shifts[i], &wz);
                for k in 0..t {
                    let got = a2[i * t + k] - a1[i * t + k];
                    prop_assert!((got - ci).abs() <= 1e-13 * amax * d as f64, "logit shift {} vs {}", got, ci);
                }
            }
            let (e1, e2) = (o1.evaluate(&w, v, false), o2.evaluate(&w, v, false));
            prop_assert!((e1.loss - e2.loss).abs() <= 1e-12 * (1.0 + e1.loss.abs()), "{:?}: loss {} vs {}", loss, e1.loss, e2.loss);
            prop_assert_eq!(&e1.selected, &e2.selected);
            prop_assert!((e1.min_max_prob - e2.min_max_prob).abs() <= 1e-12);
            // log-quantities from a log-softmax whose inputs moved by a constant: error ~ε·|a|.
            // (Both may be −∞ deep in saturation; see saturation.rs for its accuracy there.)
            let (m1, m2) = (e1.log_max_off_mass, e2.log_max_off_mass);
            if m1.is_finite() || m2.is_finite() {
                prop_assert!((m1 - m2).abs() <= 1e-12 * amax * (t as f64) * (1.0 + m1.abs()), "log off mass {} vs {}", m1, m2);
            }
            if let (Some(l1), Some(l2)) = (e1.log_excess_loss, e2.log_excess_loss) {
                prop_assert!((l1 - l2).abs() <= 1e-9 * (1.0 + l1.abs()), "log excess {} vs {}", l1, l2);
            }
            if e1.grad_w.log_norm().is_finite() {
                assert_same_gradient(&e1.grad_w, &e2.grad_w, 1e-10 * (1.0 + r_norm), &format!("{loss:?}"));
            }
        }
    }

    /// (b) Softmax shift invariance through W: if `u ⟂ x_it − x_i0` for all i, t (possible when
    /// d > n(T−1)), then `W + u wᵀ` moves every logit of sequence i by the constant
    /// `(x_i0ᵀu)(wᵀz_i)`, with the tokens untouched. So for every head, loss, and for self- as
    /// well as cross-attention, the loss, the gradient, the attention read-outs are unchanged —
    /// and, since L is constant along `u wᵀ` for every w, `uᵀ ∇_W L = 0`.
    #[test]
    fn moving_w_along_a_common_token_direction_changes_nothing(
        family in prop::sample::select(vec![Family::Gaussian, Family::Sphere]),
        self_attention in any::<bool>(),
        (n, t) in (1usize..=3, 2usize..=3),
        extra in 1usize..=3,
        seed in any::<u64>(),
        w_norm in 0.3f64..2.0,
        lambda in 0.05f64..1.0,
        c in -3.0f64..3.0,
    ) {
        let d = n * (t - 1) + extra;
        let inst = instance(family, (n, t, d), seed, self_attention);
        let mut r = rng(seed ^ 8);
        let w = random_mat(&mut r, d, d, w_norm);
        // u: a random vector made orthogonal to every within-sequence token difference
        // (modified Gram–Schmidt, twice for orthogonality to working precision).
        let mut basis: Vec<Vec<f64>> = Vec::new();
        for i in 0..n {
            for k in 1..t {
                let mut b: Vec<f64> = inst.token(i, k).iter().zip(inst.token(i, 0)).map(|(a, b)| a - b).collect();
                for _ in 0..2 {
                    for q in &basis {
                        let c = dot(&b, q);
                        b.iter_mut().zip(q).for_each(|(x, y)| *x -= c * y);
                    }
                }
                let nb = dot(&b, &b).sqrt();
                if nb > 1e-8 {
                    b.iter_mut().for_each(|x| *x /= nb);
                    basis.push(b);
                }
            }
        }
        let mut u = random_vec(&mut r, d);
        for _ in 0..2 {
            for q in &basis {
                let c = dot(&u, q);
                u.iter_mut().zip(q).for_each(|(x, y)| *x -= c * y);
            }
        }
        let nu = dot(&u, &u).sqrt();
        prop_assume!(nu > 1e-6);
        u.iter_mut().for_each(|x| *x /= nu);
        let wv = random_vec(&mut r, d);
        let w2 = Mat::from_fn(d, d, |p, q| w[(p, q)] + c * u[p] * wv[q]);
        let z = inst.queries(0).unwrap();
        for head in heads(d, lambda, seed) {
            for loss in LOSSES {
                let mut o = Objective::new(&inst, head.clone(), loss, 0).unwrap();
                let (a1, a2) = (o.logits(&w), o.logits(&w2));
                let amax = a1.iter().chain(&a2).fold(1.0f64, |m, a| m.max(a.abs()));
                for i in 0..n {
                    let ci = c * dot(inst.token(i, 0), &u) * dot(&wv, &z[i * d..][..d]);
                    for k in 0..t {
                        let got = a2[i * t + k] - a1[i * t + k];
                        prop_assert!((got - ci).abs() <= 1e-13 * amax * d as f64, "shift {} vs {}", got, ci);
                    }
                }
                let (e1, e2) = (o.evaluate(&w, &inst.v, false), o.evaluate(&w2, &inst.v, false));
                let what = format!("{} / {loss:?}", head_name(&head));
                prop_assert!((e1.loss - e2.loss).abs() <= 1e-12 * (1.0 + e1.loss.abs()), "{}: {} vs {}", what, e1.loss, e2.loss);
                prop_assert_eq!(&e1.selected, &e2.selected);
                prop_assert!((e1.min_max_prob - e2.min_max_prob).abs() <= 1e-12);
                let g1 = e1.grad_w.value();
                if g1.norm_l2() > 0.0 {
                    let g2 = e2.grad_w.value();
                    prop_assert!(dist(&g1, &g2) <= 1e-10 * g1.norm_l2(), "{}: ∇ differs by {:e}", what, dist(&g1, &g2) / g1.norm_l2());
                    // uᵀ∇_W L = 0 (the columns of ∇_W L are combinations of token differences).
                    for q in 0..d {
                        let ug: f64 = (0..d).map(|p| u[p] * g1[(p, q)]).sum();
                        prop_assert!(ug.abs() <= 1e-12 * g1.norm_l2(), "{}: uᵀ∇ = {:e}", what, ug);
                    }
                }
            }
        }
    }

    /// (c) Scale bookkeeping. `grad_w` is `e^{log_scale}·mat`: `value()` is exactly that product,
    /// `log_norm` is ln‖value‖ wherever the value is a normal f64, and `direction()` is
    /// value/‖value‖. Doubling every query and halving W leaves every logit bit-for-bit unchanged
    /// (powers of two scale exactly), and since L'(W') = L(2W') the gradient doubles:
    /// ∇L'(W/2) = 2∇L(W) — in log-norm (+ln 2) and direction, also where the value underflows.
    #[test]
    fn scaled_gradient_bookkeeping_and_query_rescaling(
        family in prop::sample::select(vec![Family::Gaussian, Family::Sphere]),
        dims in (1usize..=4, 2usize..=5, 2usize..=5),
        seed in any::<u64>(),
        radius in prop::sample::select(vec![0.5, 2.0, 20.0, 3000.0]),
        lambda in 0.05f64..1.0,
    ) {
        let inst = instance(family, dims, seed, false);
        let d = inst.d;
        let w = random_mat(&mut rng(seed ^ 9), d, d, radius);
        let z2: Vec<f64> = inst.z.as_ref().unwrap().iter().map(|x| 2.0 * x).collect();
        let inst2 = Instance::new((inst.n, inst.t, d), inst.x.clone(), Some(z2), inst.y.clone(), inst.v.clone(), inst.alpha.clone()).unwrap();
        let w_half = scale(&w, 0.5);
        for head in heads(d, lambda, seed) {
            for loss in LOSSES {
                let mut o = Objective::new(&inst, head.clone(), loss, 0).unwrap();
                let ev = o.evaluate(&w, &inst.v, false);
                let g = &ev.grad_w;
                let what = format!("{} / {loss:?} / R = {radius}", head_name(&head));
                let s = g.log_scale.exp();
                let value = g.value();
                for p in 0..d {
                    for q in 0..d {
                        prop_assert_eq!(value[(p, q)], s * g.mat[(p, q)]);
                    }
                }
                let ln = g.log_norm();
                prop_assert!(!ln.is_nan(), "{}", what);
                let plain = value.norm_l2();
                if plain > 1e3 * f64::MIN_POSITIVE {
                    prop_assert!((ln - plain.ln()).abs() <= 1e-13 * (1.0 + ln.abs()), "{}: log_norm {} vs ln‖value‖ {}", what, ln, plain.ln());
                    let dir = g.direction().unwrap();
                    prop_assert!(dist(&dir, &scale(&value, 1.0 / plain)) <= 1e-14, "{}", what);
                }
                if let Some(dir) = g.direction() {
                    prop_assert!((dir.norm_l2() - 1.0).abs() <= 1e-14);
                    // Query rescaling.
                    let mut o2 = Objective::new(&inst2, head.clone(), loss, 0).unwrap();
                    prop_assert_eq!(o.logits(&w), o2.logits(&w_half));
                    let ev2 = o2.evaluate(&w_half, &inst.v, false);
                    prop_assert_eq!(ev.loss, ev2.loss);
                    let l2 = ev2.grad_w.log_norm();
                    prop_assert!((l2 - (ln + std::f64::consts::LN_2)).abs() <= 1e-12 * (1.0 + ln.abs()), "{}: {} vs {} + ln 2", what, l2, ln);
                    prop_assert!(dist(&ev2.grad_w.direction().unwrap(), &dir) <= 1e-13, "{}", what);
                }
            }
        }
    }

    /// Spec rates-and-convex A5 check 12: flipping every label and the head, (y, v) → (−y, −v),
    /// leaves the token scores γ_it = y_i vᵀx_it, hence (linear head) the loss and ∇_W L, unchanged.
    /// Every product changes sign exactly, so the results agree to the last bit up to summation
    /// order (which is the same): we allow a few ε.
    #[test]
    fn flipping_labels_and_head_changes_nothing(
        family in prop::sample::select(vec![Family::Gaussian, Family::Sphere]),
        self_attention in any::<bool>(),
        dims in (1usize..=4, 2usize..=5, 2usize..=5),
        seed in any::<u64>(),
        w_norm in 0.3f64..30.0,
    ) {
        let inst = instance(family, dims, seed, self_attention);
        let d = inst.d;
        let flipped = Instance::new(
            (inst.n, inst.t, d), inst.x.clone(), inst.z.clone(),
            inst.y.iter().map(|y| -y).collect(), inst.v.iter().map(|v| -v).collect(), inst.alpha.clone(),
        ).unwrap();
        prop_assert_eq!(inst.optimal_tokens(), flipped.optimal_tokens());
        let w = random_mat(&mut rng(seed ^ 10), d, d, w_norm);
        for loss in LOSSES {
            let mut o1 = Objective::new(&inst, Head::Linear, loss, 0).unwrap();
            let mut o2 = Objective::new(&flipped, Head::Linear, loss, 0).unwrap();
            let (e1, e2) = (o1.evaluate(&w, &inst.v, false), o2.evaluate(&w, &flipped.v, false));
            prop_assert!((e1.loss - e2.loss).abs() <= 4.0 * f64::EPSILON * (1.0 + e1.loss.abs()));
            if e1.grad_w.log_norm().is_finite() {
                assert_same_gradient(&e1.grad_w, &e2.grad_w, 1e-14, &format!("{loss:?}"));
            }
        }
    }

    /// Permuting the tokens inside each sequence (cross-attention) and permuting the sequences
    /// permute the terms of the sums that make L and ∇_W L, and relabel `selected` accordingly.
    #[test]
    fn permuting_tokens_and_sequences_changes_nothing(
        family in prop::sample::select(vec![Family::Gaussian, Family::Sphere]),
        dims in (2usize..=4, 2usize..=5, 2usize..=5),
        seed in any::<u64>(),
        w_norm in 0.3f64..3.0,
        lambda in 0.05f64..1.0,
        rot in 1usize..5,
    ) {
        let inst = instance(family, dims, seed, false);
        let (n, t, d) = dims;
        // Token permutation k ↦ (k + rot) mod T, sequence permutation i ↦ n−1−i.
        let tok = |k: usize| (k + rot) % t;
        let seqp = |i: usize| n - 1 - i;
        let mut x = vec![0.0; n * t * d];
        let mut z = vec![0.0; n * d];
        let mut y = vec![0.0; n];
        let zi = inst.z.as_ref().unwrap();
        for i in 0..n {
            for k in 0..t {
                x[(seqp(i) * t + tok(k)) * d..][..d].copy_from_slice(inst.token(i, k));
            }
            z[seqp(i) * d..][..d].copy_from_slice(&zi[i * d..][..d]);
            y[seqp(i)] = inst.y[i];
        }
        let perm = Instance::new((n, t, d), x, Some(z), y, inst.v.clone(), None).unwrap();
        let w = random_mat(&mut rng(seed ^ 11), d, d, w_norm);
        for head in heads(d, lambda, seed) {
            for loss in LOSSES {
                let mut o1 = Objective::new(&inst, head.clone(), loss, 0).unwrap();
                let mut o2 = Objective::new(&perm, head.clone(), loss, 0).unwrap();
                let (e1, e2) = (o1.evaluate(&w, &inst.v, false), o2.evaluate(&w, &inst.v, false));
                let what = format!("{} / {loss:?}", head_name(&head));
                prop_assert!((e1.loss - e2.loss).abs() <= 1e-13 * (1.0 + e1.loss.abs()), "{}", what);
                let (g1, g2) = (e1.grad_w.value(), e2.grad_w.value());
                prop_assert!(dist(&g1, &g2) <= 1e-12 * g1.norm_l2() + 1e-300, "{}", what);
                // selected: the attention is permuted; compare the attention of the chosen tokens
                // (ties could pick a different index with the same attention).
                let nv = naive(&inst, &head, loss, 0, &w, &inst.v);
                for i in 0..n {
                    let s = &nv.attention[i];
                    let chosen = e2.selected[seqp(i)];
                    let k_orig = (0..t).find(|&k| tok(k) == chosen).unwrap();
                    prop_assert!((s[k_orig] - s[e1.selected[i]]).abs() <= 1e-15);
                }
            }
        }
    }
}

/// The orientation convention of DESIGN.md: `a_it = x_itᵀ W z_i` (not `z_iᵀ W x_it`). Checked on
/// a non-symmetric W against the explicit double sum, for cross- and self-attention (self: the
/// query is token `q`).
#[test]
fn logits_follow_the_x_w_z_convention() {
    for self_attention in [false, true] {
        let inst = instance(Family::Gaussian, (3, 4, 5), 21, self_attention);
        let d = inst.d;
        let w = random_mat(&mut rng(22), d, d, 2.0);
        let asym = dist(&w, &w.transpose().to_owned());
        assert!(asym > 0.5, "W must be visibly non-symmetric");
        for qpos in [0, 2] {
            let mut o = Objective::new(&inst, Head::Linear, Loss::Logistic, qpos).unwrap();
            let a = o.logits(&w);
            let z = inst.queries(qpos).unwrap();
            for i in 0..inst.n {
                let zi = &z[i * d..][..d];
                if self_attention {
                    assert_eq!(zi, inst.token(i, qpos));
                }
                for k in 0..inst.t {
                    let x = inst.token(i, k);
                    let want: f64 = (0..d)
                        .map(|p| x[p] * (0..d).map(|q| w[(p, q)] * zi[q]).sum::<f64>())
                        .sum();
                    let transposed: f64 = (0..d)
                        .map(|p| zi[p] * (0..d).map(|q| w[(p, q)] * x[q]).sum::<f64>())
                        .sum();
                    assert!((a[i * inst.t + k] - want).abs() <= 1e-14 * (1.0 + want.abs()));
                    // The check has teeth: the other orientation gives a different number here.
                    if (want - transposed).abs() > 1e-6 {
                        assert!((a[i * inst.t + k] - transposed).abs() > 1e-7);
                    }
                }
            }
        }
    }
}

/// `Objective::set_parallel` is documented to give bit-for-bit the same result either way: the
/// sequences are independent and are combined in the same order.
#[test]
fn parallel_and_sequential_evaluation_agree_bit_for_bit() {
    // n·T·d = 32 768 ≥ the size at which parallel evaluation is on by default.
    let inst = instance(Family::Gaussian, (64, 8, 64), 3, false);
    let w = random_mat(&mut rng(4), 64, 64, 3.0);
    for head in heads(64, 0.3, 5) {
        let mut o = Objective::new(&inst, head.clone(), Loss::Logistic, 0).unwrap();
        o.set_parallel(false);
        let a = o.evaluate(&w, &inst.v, true);
        o.set_parallel(true);
        let b = o.evaluate(&w, &inst.v, true);
        let what = head_name(&head);
        assert_eq!(a.loss.to_bits(), b.loss.to_bits(), "{what}");
        assert_eq!(a.grad_w, b.grad_w, "{what}");
        assert_eq!(a.grad_v, b.grad_v, "{what}");
        assert_eq!(a.selected, b.selected, "{what}");
        assert_eq!(a.min_max_prob.to_bits(), b.min_max_prob.to_bits(), "{what}");
        assert_eq!(
            a.log_max_off_mass.to_bits(),
            b.log_max_off_mass.to_bits(),
            "{what}"
        );
        assert_eq!(
            a.log_loss.map(f64::to_bits),
            b.log_loss.map(f64::to_bits),
            "{what}"
        );
        assert_eq!(
            a.log_excess_loss.map(f64::to_bits),
            b.log_excess_loss.map(f64::to_bits),
            "{what}"
        );
    }
}
