//! Facts about the training loops of `attnsvm::train` that follow from the update rules alone
//! (step lengths, determinism, descent) or from the theory on instances where it is exact
//! (orthonormal tokens, closed-form W_mm: rates-and-convex.md S0, A3, A5).

use crate::common::*;
use attnsvm::data::generate::{generate, Family, GenSpec, Generated};
use attnsvm::data::Instance;
use attnsvm::model::{Head, Loss, Objective, Param};
use attnsvm::train::{
    self, Init, Optimizer, PolyakTarget, Record, State, StopReason, TrainResult, TrainSettings,
};
use faer::Mat;

fn run(inst: &Instance, s: &TrainSettings, reference: Option<&Mat<f64>>) -> TrainResult {
    let mut obj = Objective::new(inst, Head::Linear, Loss::Logistic, 0).unwrap();
    let state = State::init(s, inst.d, &inst.v);
    train::train(&mut obj, s, state, reference, |_| true).unwrap()
}

fn run_from(inst: &Instance, s: &TrainSettings, state: State) -> TrainResult {
    let mut obj = Objective::new(inst, Head::Linear, Loss::Logistic, 0).unwrap();
    train::train(&mut obj, s, state, None, |_| true).unwrap()
}

fn orthonormal() -> Generated {
    // rates-and-convex.md S0 reference runs: n = 4, T = 4, d = 16.
    generate(&GenSpec::new(Family::Orthonormal, 4, 4, 16, 1)).unwrap()
}

/// Records at every iteration of a short run (points_per_decade so large that the log-spaced
/// schedule contains every integer up to `iters`).
fn dense(iters: usize) -> usize {
    // Consecutive schedule points differ by ≈ k·ln10/ppd < 1 when ppd > iters·ln 10.
    (iters as f64 * 2.5) as usize + 10
}

fn record_at(res: &TrainResult, k: usize) -> &Record {
    res.trajectory
        .records
        .iter()
        .find(|r| r.iter == k)
        .unwrap_or_else(|| panic!("no record at iteration {k}"))
}

/// ‖θ_{k+1} − θ_k‖ for k = 0..iters from runs of k and k+1 iterations (deterministic).
fn step_lengths(inst: &Instance, s: &TrainSettings, ks: &[usize]) -> Vec<(usize, f64, f64, f64)> {
    ks.iter()
        .map(|&k| {
            let a = run(
                inst,
                &TrainSettings {
                    iters: k,
                    ..s.clone()
                },
                None,
            );
            let b = run(
                inst,
                &TrainSettings {
                    iters: k + 1,
                    ..s.clone()
                },
                None,
            );
            assert_eq!((a.iterations, b.iterations), (k, k + 1));
            let dw = dist(&a.state.w, &b.state.w);
            let (dk, dq) = match (&a.state.kq, &b.state.kq) {
                (Some((k1, q1)), Some((k2, q2))) => (dist(k1, k2), dist(q1, q2)),
                _ => (f64::NAN, f64::NAN),
            };
            (k, dw, dk, dq)
        })
        .collect()
}

/// NGD with ε = 0 moves W by exactly η_k per step in Frobenius norm (rates A5 check 4), at the
/// start and deep in saturation (k = 400: ‖W‖ ≈ 40, off-token mass far below 1e-16).
/// The difference of two iterates of norm ≤ 45 carries rounding ≈ ε·45 ≈ 1e-14, i.e. 1e-13
/// relative to η = 0.1; we allow 1e-12.
#[test]
fn ngd_moves_w_by_exactly_the_step_size() {
    let inst = instance(Family::Sphere, (3, 4, 5), 3, false);
    for init in [Init::Zero, Init::Random] {
        let s = TrainSettings {
            opt: Optimizer::Ngd,
            lr: 0.1,
            init,
            seed: 4,
            ..TrainSettings::default()
        };
        for (k, dw, _, _) in step_lengths(&inst, &s, &[0, 1, 2, 3, 7, 30, 400]) {
            assert!((dw - 0.1).abs() <= 1e-12, "{init:?} k = {k}: ‖ΔW‖ = {dw}");
        }
    }
    // With a decaying step, η_k = lr·(1+k)^{−decay}.
    let s = TrainSettings {
        opt: Optimizer::Ngd,
        lr: 0.3,
        lr_decay: 0.5,
        ..TrainSettings::default()
    };
    for (k, dw, _, _) in step_lengths(&inst, &s, &[0, 3, 15]) {
        let eta = 0.3 / ((1 + k) as f64).sqrt();
        assert!(
            (dw - eta).abs() <= 1e-12 * eta.max(0.1),
            "k = {k}: {dw} vs {eta}"
        );
    }
}

/// (K,Q) NGD normalizes K and Q separately (spec §3.1): each moves by exactly η whenever its
/// gradient is non-zero; with `Init::Zero` (Q = 0) the first K-gradient ∇_W·Q is zero, so K
/// stays put at step 0 while Q moves by η.
#[test]
fn kq_ngd_moves_k_and_q_by_the_step_size_each() {
    let inst = instance(Family::Gaussian, (3, 4, 4), 8, false);
    let s = TrainSettings {
        param: Param::Kq,
        opt: Optimizer::Ngd,
        lr: 0.05,
        init: Init::Random,
        seed: 2,
        ..TrainSettings::default()
    };
    for (k, _, dk, dq) in step_lengths(&inst, &s, &[0, 1, 5, 60]) {
        assert!(
            (dk - 0.05).abs() <= 1e-12 && (dq - 0.05).abs() <= 1e-12,
            "k = {k}: ‖ΔK‖ = {dk}, ‖ΔQ‖ = {dq}"
        );
    }
    let s = TrainSettings {
        init: Init::Zero,
        ..s
    };
    let steps = step_lengths(&inst, &s, &[0, 1]);
    let (_, _, dk0, dq0) = steps[0];
    assert_eq!(dk0, 0.0, "∇_K = ∇_W Q = 0 at Q = 0");
    assert!((dq0 - 0.05).abs() <= 1e-12);
    let (_, _, dk1, dq1) = steps[1];
    assert!((dk1 - 0.05).abs() <= 1e-12 && (dq1 - 0.05).abs() <= 1e-12);
}

/// With ε > 0 the NGD step is η‖∇‖/(‖∇‖ + ε) = η/(1 + ε/‖∇‖) (spec §3.1): the papers'
/// ε = 2.2e-16 stalls once ‖∇‖ ≪ ε, which is the saturation regime; ε = 0 keeps the full step
/// there — also at R = 1000, where ‖∇‖ ≈ e^{-1000} is far below the smallest f64 (and e^{+1000},
/// the reciprocal of the gradient scale, overflows).
#[test]
fn ngd_with_positive_eps_shrinks_the_step_by_grad_over_grad_plus_eps() {
    let g = orthonormal();
    let inst = &g.instance;
    let wmm = &g.reference.as_ref().unwrap().1;
    for (radius, eps) in [
        (0.3, 0.05),
        (0.3, 1.0),
        (60.0, 2.220446049250313e-16),
        (60.0, 0.0),
        (1000.0, 2.220446049250313e-16),
        (1000.0, 0.0),
    ] {
        let s = TrainSettings {
            opt: Optimizer::Ngd,
            lr: 0.1,
            ngd_eps: eps,
            iters: 1,
            ..TrainSettings::default()
        };
        let w0 = scale(wmm, radius);
        let res = run_from(
            inst,
            &s,
            State {
                w: w0.clone(),
                kq: None,
                v: inst.v.clone(),
            },
        );
        let log_grad_norm = record_at(&res, 0).log_grad_norm;
        assert!(
            log_grad_norm.is_finite(),
            "R = {radius}: log‖∇‖ = {log_grad_norm}"
        );
        let grad_norm = log_grad_norm.exp(); // (0 at R = 1000: only for the messages)
        let want = if eps > 0.0 {
            0.1 / (1.0 + eps * (-log_grad_norm).exp())
        } else {
            0.1
        };
        let got = dist(&w0, &res.state.w);
        // Rounding: the new iterate carries ε_mach·‖W‖ absolute error, ≤ 4e-13 at ‖W‖ ≤ 1732.
        assert!(
            (got - want).abs() <= 1e-12 * want + 1e-15 * w0.norm_l2(),
            "R = {radius}, ε = {eps}: step {got:e} vs {want:e}"
        );
        if radius > 10.0 && eps > 0.0 {
            assert!(
                got < 1e-3 * 0.1,
                "ε = {eps} must stall in saturation (‖∇‖ = {grad_norm:e}), step {got:e}"
            );
        }
    }
}

/// Same settings and seed → the same trajectory and the same parameters, bit for bit (the
/// record's wall-clock `seconds` aside); another seed → another random initialization.
#[test]
fn training_is_deterministic_for_a_seed() {
    let inst = instance(Family::Gaussian, (4, 5, 6), 12, true);
    for opt in [
        Optimizer::Ngd,
        Optimizer::Gd,
        Optimizer::Adam,
        Optimizer::Polyak,
    ] {
        let s = TrainSettings {
            param: Param::Kq,
            init: Init::Random,
            seed: 77,
            opt,
            lr: 0.05,
            iters: 150,
            kq_ridge: 1e-3,
            ..TrainSettings::default()
        };
        let (a, b) = (run(&inst, &s, None), run(&inst, &s, None));
        assert_eq!(a.state, b.state, "{opt:?}");
        assert_eq!(a.stop, b.stop);
        assert_eq!(a.trajectory.records.len(), b.trajectory.records.len());
        for (ra, rb) in a.trajectory.records.iter().zip(&b.trajectory.records) {
            let strip = |r: &Record| Record {
                seconds: 0.0,
                ..r.clone()
            };
            assert_eq!(strip(ra), strip(rb), "{opt:?}");
        }
        let c = run(
            &inst,
            &TrainSettings {
                seed: 78,
                iters: 0,
                ..s.clone()
            },
            None,
        );
        let a0 = run(
            &inst,
            &TrainSettings {
                iters: 0,
                ..s.clone()
            },
            None,
        );
        assert_ne!(a0.state.w, c.state.w, "the seed drives the initialization");
    }
}

/// rates-and-convex.md A5 checks 4–5 on S0: NGD from W = 0 aligns with the closed-form W_mm —
/// 1 − corr(W_k, W_mm) < 1e-3 after 3000 steps and decreasing at every recorded iterate after
/// the first 100 steps (the direction keeps converging; the exact-direction NGD does not stall).
#[test]
fn ngd_on_orthonormal_tokens_converges_in_direction_to_w_mm() {
    let g = orthonormal();
    let wmm = &g.reference.as_ref().unwrap().1;
    let s = TrainSettings {
        opt: Optimizer::Ngd,
        lr: 0.1,
        iters: 3000,
        ..TrainSettings::default()
    };
    let res = run(&g.instance, &s, Some(wmm));
    assert_eq!(res.stop, StopReason::Iterations);
    let late: Vec<(usize, f64)> = res
        .trajectory
        .records
        .iter()
        .filter(|r| r.iter >= 100)
        .map(|r| (r.iter, r.one_minus_corr.unwrap()))
        .collect();
    assert!(late.len() >= 20);
    for pair in late.windows(2) {
        assert!(
            pair[1].1 < pair[0].1,
            "1 − corr rose from {:?} to {:?}",
            pair[0],
            pair[1]
        );
    }
    let last = late.last().unwrap().1;
    assert!(last < 1e-3, "1 − corr = {last:e} after 3000 steps");
    // ‖W_k‖ grows linearly: ‖W_k‖ ≤ ηk and, once aligned, ≥ ηk − C (A5 check 4).
    let rec = res.trajectory.records.last().unwrap();
    assert!(
        rec.w_norm <= 0.1 * 3000.0 + 1e-9 && rec.w_norm >= 0.1 * 3000.0 - 10.0,
        "‖W‖ = {}",
        rec.w_norm
    );
    // The selection is the optimal token of every sequence.
    assert_eq!(&rec.selected, g.instance.alpha.as_ref().unwrap());
}

/// rates-and-convex.md A3 / A5 check 9: the Polyak step with the exact infimum, f* = L*, raises the
/// soft margin by one per step, so log(L_k − L*) falls by ≈ 1 per iteration asymptotically.
/// Loose form: the average decrease over the last 50 of 300 steps lies in [0.8, 1.2].
#[test]
fn polyak_with_the_infimum_reduces_log_excess_loss_by_one_per_step() {
    let g = orthonormal();
    let wmm = &g.reference.as_ref().unwrap().1;
    let s = TrainSettings {
        opt: Optimizer::Polyak,
        polyak_target: PolyakTarget::Infimum,
        lr: 1.0,
        iters: 300,
        points_per_decade: dense(300),
        ..TrainSettings::default()
    };
    let res = run(&g.instance, &s, Some(wmm));
    assert_eq!(res.stop, StopReason::Iterations);
    let l250 = record_at(&res, 250).log_excess_loss.unwrap();
    let l300 = record_at(&res, 300).log_excess_loss.unwrap();
    let rate = (l250 - l300) / 50.0;
    assert!(
        (0.8..=1.2).contains(&rate),
        "average decrease of log(L − L*) per step = {rate} (log gap {l250} → {l300})"
    );
    // ... and the step length tends to ‖W_mm‖_F (check 9, second half): one more step from W_300.
    let next = run(
        &g.instance,
        &TrainSettings {
            iters: 301,
            ..s.clone()
        },
        None,
    );
    let step = dist(&res.state.w, &next.state.w);
    let target = wmm.norm_l2();
    assert!(
        (step / target - 1.0).abs() <= 0.01,
        "‖W_301 − W_300‖ = {step} vs ‖W_mm‖ = {target}"
    );
}

/// rates-and-convex A5 check 8: under NGD the off-token mass decays exponentially,
/// log(1 − min_i s_i,opt) ≈ −‖W_k‖/‖W_mm‖ + ln(T−1), within ~1 nat once W_k is aligned (k ≥ 200
/// here, 1 − corr < 5e-4). The trajectory's `log_max_off_mass` is that quantity.
#[test]
fn ngd_sparsifies_attention_at_the_predicted_exponential_rate() {
    let g = orthonormal();
    let wmm = &g.reference.as_ref().unwrap().1;
    let s = TrainSettings {
        opt: Optimizer::Ngd,
        lr: 0.1,
        iters: 3000,
        ..TrainSettings::default()
    };
    let res = run(&g.instance, &s, Some(wmm));
    let ln_t1 = ((g.instance.t - 1) as f64).ln();
    for r in res.trajectory.records.iter().filter(|r| r.iter >= 200) {
        let predicted = -r.w_norm / wmm.norm_l2() + ln_t1;
        assert!(
            (r.log_max_off_mass - predicted).abs() <= 1.0,
            "k = {}: log max off mass {} vs predicted {predicted}",
            r.iter,
            r.log_max_off_mass
        );
    }
}

/// (K,Q) from the papers' initialization (Q = 0, K = 0.1·N(0,1)) decreases the loss over the first
/// steps: the first step only moves Q, along −∇_Q = −∇_Wᵀ K ≠ 0.
#[test]
fn kq_from_zero_init_decreases_the_loss() {
    let inst = instance(Family::Gaussian, (4, 5, 6), 21, false);
    for opt in [Optimizer::Ngd, Optimizer::Gd] {
        let s = TrainSettings {
            param: Param::Kq,
            init: Init::Zero,
            opt,
            lr: 0.05,
            iters: 10,
            seed: 5,
            ..TrainSettings::default()
        };
        let res = run(&inst, &s, None);
        let losses: Vec<f64> = res.trajectory.records.iter().map(|r| r.loss).collect();
        assert_eq!(losses.len(), 11);
        for k in 0..10 {
            assert!(
                losses[k + 1] < losses[k],
                "{opt:?}: L rose at step {k}: {losses:?}"
            );
        }
    }
}

/// K = Q = 0 is a stationary point of L(KQᵀ) (both chain-rule factors vanish): training stops at
/// once with `ZeroGradient`.
#[test]
fn k_equals_q_equals_zero_is_a_stationary_point() {
    let inst = instance(Family::Gaussian, (3, 4, 4), 1, false);
    let s = TrainSettings {
        param: Param::Kq,
        iters: 10,
        ..TrainSettings::default()
    };
    let z = Mat::zeros(4, 4);
    let res = run_from(
        &inst,
        &s,
        State {
            w: z.clone(),
            kq: Some((z.clone(), z.clone())),
            v: inst.v.clone(),
        },
    );
    assert_eq!(res.stop, StopReason::ZeroGradient);
    assert_eq!(res.iterations, 0);
}

/// Plain GD with a small step decreases the loss at every step (descent lemma), and to first order
/// by exactly η‖∇L‖²: for η = 1e-3 and a smoothness constant β of order one on these unit-scale
/// tokens, L_k − L_{k+1} = η‖∇L_k‖²(1 − O(ηβ)), so the ratio lies within 1 ± 0.05.
#[test]
fn gd_with_a_small_step_is_a_descent_method() {
    for (family, self_attention) in [(Family::Gaussian, false), (Family::Sphere, true)] {
        let inst = instance(family, (4, 5, 6), 31, self_attention);
        let eta = 1e-3;
        let s = TrainSettings {
            opt: Optimizer::Gd,
            lr: eta,
            iters: 200,
            init: Init::Random,
            seed: 3,
            points_per_decade: dense(200),
            ..TrainSettings::default()
        };
        let res = run(&inst, &s, None);
        let recs = &res.trajectory.records;
        assert_eq!(recs.len(), 201);
        for w in recs.windows(2) {
            let drop = w[0].loss - w[1].loss;
            let predicted = eta * (2.0 * w[0].log_grad_norm).exp();
            assert!(drop > 0.0, "{family:?}: L rose at step {}", w[0].iter);
            let ratio = drop / predicted;
            assert!(
                (0.95..=1.05).contains(&ratio),
                "{family:?} step {}: decrease {drop:e} vs η‖∇‖² = {predicted:e}",
                w[0].iter
            );
        }
    }
}

/// Settings that cannot work are refused with an error, not run.
#[test]
fn invalid_settings_are_errors() {
    let inst = instance(Family::Gaussian, (2, 3, 3), 1, false);
    let bad = [
        TrainSettings {
            lr: 0.0,
            ..TrainSettings::default()
        },
        TrainSettings {
            lr: f64::NAN,
            ..TrainSettings::default()
        },
        TrainSettings {
            ngd_eps: -1.0,
            ..TrainSettings::default()
        },
        TrainSettings {
            points_per_decade: 0,
            ..TrainSettings::default()
        },
        TrainSettings {
            adam_beta1: 1.0,
            ..TrainSettings::default()
        },
    ];
    for s in bad {
        let mut obj = Objective::new(&inst, Head::Linear, Loss::Logistic, 0).unwrap();
        let st = State::init(&s, 3, &inst.v);
        assert!(
            train::train(&mut obj, &s, st, None, |_| true).is_err(),
            "{s:?}"
        );
    }
    // Polyak needs a loss bounded below; the infimum target needs a fixed linear head.
    let polyak = TrainSettings {
        opt: Optimizer::Polyak,
        ..TrainSettings::default()
    };
    assert!(polyak.check(Loss::Corr, true).is_err());
    let inf = TrainSettings {
        polyak_target: PolyakTarget::Infimum,
        ..polyak
    };
    assert!(inf.check(Loss::Logistic, false).is_err());
    assert!(TrainSettings {
        train_v: true,
        ..inf.clone()
    }
    .check(Loss::Logistic, true)
    .is_err());
    assert!(inf.check(Loss::Logistic, true).is_ok());
}

/// A ReLU head whose units are all off on some sequence gives that sequence a zero gradient; it
/// must not set the global gradient scale (found by the equivalence tests: Sphere (3,4,4) seed 5
/// used to stop at step 5314 with a false `ZeroGradient`, the live sequence underflowed).
#[test]
fn dead_relu_sequence_does_not_zero_the_gradient() {
    let inst = generate(&GenSpec::new(Family::Sphere, 3, 4, 4, 5))
        .unwrap()
        .instance;
    let ts = TrainSettings {
        iters: 8000,
        init: Init::Random,
        seed: 5,
        ..TrainSettings::default()
    };
    let mut risk = Objective::new(&inst, Head::relu_from_seed(4, 5), Loss::Logistic, 0).unwrap();
    let res = train::train(&mut risk, &ts, State::init(&ts, 4, &inst.v), None, |_| true).unwrap();
    assert_ne!(
        res.stop,
        StopReason::ZeroGradient,
        "stopped after {} steps",
        res.iterations
    );
}
