//! Gradients of the attention risk against central finite differences of the library's own loss,
//! for every parameterization (W; (K,Q) with W = KQᵀ), head (linear, λ, ReLU) and loss (logistic,
//! exp, correlation), and for ∇_v; plus the chain rule as the training layer applies it.
//!
//! Tolerances. A central difference with step `h` has truncation error `≈ h²|L'''|/6` and rounding
//! error `≈ ε|L|/h` per entry (ε = 2.2e-16). With `h = 1e-6·scale` both are ≲ 1e-10·(1+|L|), four
//! orders of magnitude below the 1e-6 relative tolerance for the gradients of norm ~1e-2 that these
//! small instances have; the absolute term `FLOOR·(1+|L|)` in `assert_close` is that rounding floor
//! (summed over at most 36 entries), so a gradient that happens to be tiny does not turn the
//! rounding noise into a spurious relative error.

use crate::common::*;
use attnsvm::data::generate::Family;
use attnsvm::data::Instance;
use attnsvm::model::{Head, Loss, Objective};
use attnsvm::train::{self, Optimizer, State, StopReason, TrainSettings};
use faer::Mat;
use proptest::prelude::*;

const REL_TOL: f64 = 1e-6;
/// Rounding floor of a central difference with h = 1e-6: ~ε/h per entry, times √(d²) ≤ 6 entries
/// in Frobenius norm, with a safety factor 10.
const FLOOR: f64 = 1e-8;
/// Distance from the ReLU kink below which a case is skipped (the FD step moves x̄ by ~1e-6).
const KINK: f64 = 1e-4;

fn assert_close(fd: &Mat<f64>, exact: &Mat<f64>, loss_value: f64, what: &str) {
    let err = dist(fd, exact);
    let bound = REL_TOL * exact.norm_l2() + FLOOR * (1.0 + loss_value.abs());
    assert!(
        err <= bound,
        "{what}: ‖fd − exact‖ = {err:e} > {bound:e} (‖exact‖ = {:e})",
        exact.norm_l2()
    );
}

/// A random small problem: instance, a W of moderate norm, and the extra randomness.
#[derive(Debug, Clone)]
struct Case {
    family: Family,
    self_attention: bool,
    dims: (usize, usize, usize),
    seed: u64,
    w_norm: f64,
    lambda: f64,
}

fn case_strategy() -> impl Strategy<Value = Case> {
    (
        prop::sample::select(vec![Family::Gaussian, Family::Sphere]),
        any::<bool>(),
        (1usize..=4, 2usize..=5, 2usize..=5),
        any::<u64>(),
        0.2f64..3.0,
        0.05f64..1.0,
    )
        .prop_map(
            |(family, self_attention, dims, seed, w_norm, lambda)| Case {
                family,
                self_attention,
                dims,
                seed,
                w_norm,
                lambda,
            },
        )
}

impl Case {
    fn instance(&self) -> Instance {
        instance(self.family, self.dims, self.seed, self.self_attention)
    }
}

/// The ReLU head is not differentiable where a pre-activation is 0: skip such points.
fn near_kink(inst: &Instance, head: &Head, w: &Mat<f64>) -> bool {
    if !matches!(head, Head::Relu { .. }) {
        return false;
    }
    let nv = naive(inst, head, Loss::Corr, 0, w, &inst.v);
    nv.preact.iter().flatten().any(|r| r.abs() < KINK)
}

fn loss_at(obj: &mut Objective, w: &Mat<f64>, v: &[f64]) -> f64 {
    obj.evaluate(w, v, false).loss
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// ∇_W L from `Objective::evaluate` equals central differences of `L`, for every head and loss.
    #[test]
    fn grad_w_matches_finite_differences(case in case_strategy()) {
        let inst = case.instance();
        let d = inst.d;
        let mut r = rng(case.seed ^ 1);
        let w = random_mat(&mut r, d, d, case.w_norm);
        let h = 1e-6 * (1.0 + w.norm_max());
        let mut checked = 0;
        for head in heads(d, case.lambda, case.seed) {
            if near_kink(&inst, &head, &w) {
                continue;
            }
            for loss in LOSSES {
                let mut obj = Objective::new(&inst, head.clone(), loss, 0).unwrap();
                let ev = obj.evaluate(&w, &inst.v, false);
                let exact = ev.grad_w.value();
                let fd = fd_grad_mat(&w, h, |wp| loss_at(&mut obj, wp, &inst.v));
                assert_close(&fd, &exact, ev.loss, &format!("{} / {loss:?}", head_name(&head)));
                checked += 1;
            }
        }
        // The linear and λ heads have no kinks: at least 6 combinations were checked.
        prop_assert!(checked >= 6);
    }

    /// (K,Q): finite differences of `K, Q ↦ L(KQᵀ)` equal `∇_W L(KQᵀ)·Q` and `∇_W L(KQᵀ)ᵀ·K`
    /// (spec §1.5), with K, Q ∈ R^{d×m} for an inner dimension m that need not be d.
    #[test]
    fn kq_chain_rule_matches_finite_differences(case in case_strategy(), m in 1usize..=5) {
        let inst = case.instance();
        let d = inst.d;
        let mut r = rng(case.seed ^ 2);
        let k = random_mat(&mut r, d, m, case.w_norm.sqrt());
        let q = random_mat(&mut r, d, m, case.w_norm.sqrt());
        let w = &k * q.transpose();
        let hk = 1e-6 * (1.0 + k.norm_max());
        let hq = 1e-6 * (1.0 + q.norm_max());
        for head in heads(d, case.lambda, case.seed) {
            if near_kink(&inst, &head, &w) {
                continue;
            }
            for loss in LOSSES {
                let mut obj = Objective::new(&inst, head.clone(), loss, 0).unwrap();
                let ev = obj.evaluate(&w, &inst.v, false);
                let gw = ev.grad_w.value();
                let gk = &gw * &q;
                let gq = gw.transpose() * &k;
                let fdk = fd_grad_mat(&k, hk, |kp| loss_at(&mut obj, &(kp * q.transpose()), &inst.v));
                let fdq = fd_grad_mat(&q, hq, |qp| loss_at(&mut obj, &(&k * qp.transpose()), &inst.v));
                let what = format!("{} / {loss:?}", head_name(&head));
                assert_close(&fdk, &gk, ev.loss, &format!("∇_K {what}"));
                assert_close(&fdq, &gq, ev.loss, &format!("∇_Q {what}"));
            }
        }
    }

    /// ∇_v L (linear and λ heads) equals central differences of `v ↦ L(W, v)`.
    #[test]
    fn grad_v_matches_finite_differences(case in case_strategy()) {
        let inst = case.instance();
        let d = inst.d;
        let mut r = rng(case.seed ^ 3);
        let w = random_mat(&mut r, d, d, case.w_norm);
        // A head vector other than the instance's unit v (∇_v must not assume ‖v‖ = 1).
        let v: Vec<f64> = random_vec(&mut r, d);
        let h = 1e-6 * (1.0 + v.iter().fold(0.0f64, |a, b| a.max(b.abs())));
        for head in [Head::Linear, Head::Lambda { lambda: case.lambda }] {
            for loss in LOSSES {
                let mut obj = Objective::new(&inst, head.clone(), loss, 0).unwrap();
                let ev = obj.evaluate(&w, &v, true);
                let gv = ev.grad_v.as_ref().expect("grad_v was asked for").value();
                prop_assert_eq!(gv.shape(), (d, 1));
                let fd = fd_grad_vec(&v, h, |vp| loss_at(&mut obj, &w, vp));
                let fd = Mat::from_fn(d, 1, |i, _| fd[i]);
                assert_close(&fd, &gv, ev.loss, &format!("∇_v {} / {loss:?}", head_name(&head)));
                // The W-gradient at a non-unit v is still the derivative of the same loss.
                let fdw = fd_grad_mat(&w, 1e-6 * (1.0 + w.norm_max()), |wp| loss_at(&mut obj, wp, &v));
                assert_close(&fdw, &ev.grad_w.value(), ev.loss, &format!("∇_W at v {} / {loss:?}", head_name(&head)));
            }
        }
    }

    /// The training layer's (private) chain rule, seen through one plain-GD step:
    /// `(K₀ − K₁)/η = ∇_K L̃` and `(Q₀ − Q₁)/η = ∇_Q L̃` for `L̃ = L(KQᵀ) + λ(‖K‖² + ‖Q‖²)`,
    /// compared with finite differences of `L̃`; and `W₁ = K₁Q₁ᵀ`.
    #[test]
    fn training_kq_step_is_the_chain_rule_gradient(case in case_strategy(), ridge in prop::sample::select(vec![0.0, 0.05])) {
        let inst = case.instance();
        let d = inst.d;
        let mut r = rng(case.seed ^ 4);
        let k0 = random_mat(&mut r, d, d, case.w_norm.sqrt());
        let q0 = random_mat(&mut r, d, d, case.w_norm.sqrt());
        let w0 = &k0 * q0.transpose();
        // η = 1/2: the division (K₀ − K₁)/η is exact and K₀ − K₁ loses at most ε‖K₀‖.
        let eta = 0.5;
        for head in heads(d, case.lambda, case.seed) {
            if near_kink(&inst, &head, &w0) {
                continue;
            }
            for loss in LOSSES {
                let mut obj = Objective::new(&inst, head.clone(), loss, 0).unwrap();
                let settings = TrainSettings {
                    param: attnsvm::model::Param::Kq,
                    opt: Optimizer::Gd,
                    lr: eta,
                    iters: 1,
                    kq_ridge: ridge,
                    ..TrainSettings::default()
                };
                let state = State { w: w0.clone(), kq: Some((k0.clone(), q0.clone())), v: inst.v.clone() };
                let res = train::train(&mut obj, &settings, state, None, |_| true).unwrap();
                if res.iterations == 0 {
                    // A flat point (every ReLU unit inactive on every sequence): training stops
                    // before the step. Then K₁ = K₀, Q₁ = Q₀ and the checks below demand that the
                    // finite differences vanish too.
                    prop_assert_eq!(res.stop, StopReason::ZeroGradient);
                } else {
                    prop_assert_eq!(res.iterations, 1);
                }
                let (k1, q1) = res.state.kq.clone().unwrap();
                let step_k = scale(&(&k0 - &k1), 1.0 / eta);
                let step_q = scale(&(&q0 - &q1), 1.0 / eta);
                let penalty = |m: &Mat<f64>| ridge * m.norm_l2().powi(2);
                let l0 = loss_at(&mut obj, &w0, &inst.v);
                let h = 1e-6 * (1.0 + k0.norm_max().max(q0.norm_max()));
                let fdk = fd_grad_mat(&k0, h, |kp| loss_at(&mut obj, &(kp * q0.transpose()), &inst.v) + penalty(kp));
                let fdq = fd_grad_mat(&q0, h, |qp| loss_at(&mut obj, &(&k0 * qp.transpose()), &inst.v) + penalty(qp));
                let what = format!("{} / {loss:?} / ridge {ridge}", head_name(&head));
                assert_close(&fdk, &step_k, l0, &format!("K step {what}"));
                assert_close(&fdq, &step_q, l0, &format!("Q step {what}"));
                let w1 = &k1 * q1.transpose();
                prop_assert!(dist(&res.state.w, &w1) <= 1e-14 * (1.0 + w1.norm_l2()));
            }
        }
    }

    /// The training layer's v-gradient through one plain-GD step with `train_v`:
    /// `(W₀ − W₁)/η = ∇_W L` and `(v₀ − v₁)/η = ∇_v L` (finite differences).
    #[test]
    fn training_w_and_v_step_is_the_gradient(case in case_strategy()) {
        let inst = case.instance();
        let d = inst.d;
        let mut r = rng(case.seed ^ 5);
        let w0 = random_mat(&mut r, d, d, case.w_norm);
        let eta = 0.5;
        for head in [Head::Linear, Head::Lambda { lambda: case.lambda }] {
            for loss in LOSSES {
                let mut obj = Objective::new(&inst, head.clone(), loss, 0).unwrap();
                let settings = TrainSettings { opt: Optimizer::Gd, lr: eta, iters: 1, train_v: true, ..TrainSettings::default() };
                let state = State { w: w0.clone(), kq: None, v: inst.v.clone() };
                let res = train::train(&mut obj, &settings, state, None, |_| true).unwrap();
                let step_w = scale(&(&w0 - &res.state.w), 1.0 / eta);
                let step_v = Mat::from_fn(d, 1, |i, _| (inst.v[i] - res.state.v[i]) / eta);
                let l0 = loss_at(&mut obj, &w0, &inst.v);
                let fdw = fd_grad_mat(&w0, 1e-6 * (1.0 + w0.norm_max()), |wp| loss_at(&mut obj, wp, &inst.v));
                let fdv = fd_grad_vec(&inst.v, 1e-6, |vp| loss_at(&mut obj, &w0, vp));
                let fdv = Mat::from_fn(d, 1, |i, _| fdv[i]);
                let what = format!("{} / {loss:?}", head_name(&head));
                assert_close(&fdw, &step_w, l0, &format!("W step {what}"));
                assert_close(&fdv, &step_v, l0, &format!("v step {what}"));
            }
        }
    }

    /// The log-domain gradient equals the naive plain-softmax formula `s_t (g_t − sᵀg)` wherever the
    /// latter is accurate (moderate ‖W‖: no underflow, logit gaps ≤ ~10 so the cancellation in
    /// `g_t − sᵀg` costs at most ~e^{10}·ε ≈ 5e-12 relative).
    #[test]
    fn grad_w_and_loss_match_the_naive_formula(case in case_strategy()) {
        let inst = case.instance();
        let d = inst.d;
        let mut r = rng(case.seed ^ 6);
        let w = random_mat(&mut r, d, d, case.w_norm);
        for head in heads(d, case.lambda, case.seed) {
            for loss in LOSSES {
                let mut obj = Objective::new(&inst, head.clone(), loss, 0).unwrap();
                let ev = obj.evaluate(&w, &inst.v, true);
                let nv = naive(&inst, &head, loss, 0, &w, &inst.v);
                let what = format!("{} / {loss:?}", head_name(&head));
                // Loss: a sum of ≤ 4 terms of magnitude ≤ e^{|f|} ≤ e², each exact to a few ε.
                prop_assert!((ev.loss - nv.loss).abs() <= 1e-13 * (1.0 + nv.loss.abs()), "loss {}: {} vs {}", what, ev.loss, nv.loss);
                let gw = ev.grad_w.value();
                let err = dist(&gw, &nv.grad_w);
                prop_assert!(err <= 1e-10 * nv.grad_w.norm_l2() + 1e-15, "∇_W {}: rel err {:e}", what, err / nv.grad_w.norm_l2());
                if !matches!(head, Head::Relu { .. }) {
                    let gv = ev.grad_v.as_ref().unwrap().value();
                    let nvv = Mat::from_fn(d, 1, |i, _| nv.grad_v[i]);
                    prop_assert!(dist(&gv, &nvv) <= 1e-12 * nvv.norm_l2() + 1e-15, "∇_v {}", what);
                }
                // The selected token is the argmax of the attention.
                for (i, s) in nv.attention.iter().enumerate() {
                    let top = s[ev.selected[i]];
                    prop_assert!(s.iter().all(|&sk| sk <= top), "selected {} of sequence {}", what, i);
                }
            }
        }
    }
}

/// Spec §1.5: `∇_W L = (1/n) Σ_i c_i b_i z_iᵀ` has rank ≤ n. With one sequence it is the outer
/// product `b zᵀ`: every 2×2 minor vanishes and `∇_W L · z⊥ = 0` for every `z⊥ ⟂ z`.
#[test]
fn grad_w_is_rank_one_for_a_single_sequence() {
    let inst = instance(Family::Gaussian, (1, 5, 4), 11, false);
    let w = random_mat(&mut rng(12), 4, 4, 1.5);
    for head in heads(4, 0.3, 13) {
        for loss in LOSSES {
            let mut obj = Objective::new(&inst, head.clone(), loss, 0).unwrap();
            let g = obj.evaluate(&w, &inst.v, false).grad_w.value();
            let scale = g.norm_l2().powi(2);
            assert!(scale > 0.0);
            for (r1, r2) in [(0, 1), (0, 2), (1, 3), (2, 3)] {
                for (c1, c2) in [(0, 1), (1, 2), (0, 3), (2, 3)] {
                    let minor = g[(r1, c1)] * g[(r2, c2)] - g[(r1, c2)] * g[(r2, c1)];
                    // Each product is exact to ε; the minor is zero up to ~4ε·‖G‖².
                    assert!(
                        minor.abs() <= 1e-14 * scale,
                        "{} {loss:?}: minor {minor:e}",
                        head_name(&head)
                    );
                }
            }
            // Row space: G = b zᵀ, so G z⊥ = 0 for z⊥ ⟂ z.
            let z = inst.z.as_ref().unwrap();
            let zperp = [z[1], -z[0], 0.0, 0.0];
            for row in 0..4 {
                let gz: f64 = (0..4).map(|c| g[(row, c)] * zperp[c]).sum();
                assert!(gz.abs() <= 1e-14 * g.norm_l2(), "{gz:e}");
            }
        }
    }
}
