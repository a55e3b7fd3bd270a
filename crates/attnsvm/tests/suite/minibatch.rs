//! Minibatch (stochastic) training, `TrainSettings::batch_size`: each step is the full-batch rule
//! applied to the risk of one minibatch, batches are drawn per epoch without replacement, and the
//! trajectory records the full risk.

use crate::common::*;
use attnsvm::data::generate::{generate, Family, GenSpec};
use attnsvm::data::Instance;
use attnsvm::model::{Head, Loss, Objective};
use attnsvm::train::{self, Init, Optimizer, Record, State, TrainResult, TrainSettings};
use faer::Mat;

fn run(inst: &Instance, s: &TrainSettings, reference: Option<&Mat<f64>>) -> TrainResult {
    let mut obj = Objective::new(inst, Head::Linear, Loss::Logistic, 0).unwrap();
    let state = State::init(s, inst.d, &inst.v);
    train::train(&mut obj, s, state, reference, |_| true).unwrap()
}

fn sngd(batch: usize, iters: usize, seed: u64) -> TrainSettings {
    TrainSettings {
        opt: Optimizer::Ngd,
        lr: 0.1,
        iters,
        init: Init::Random,
        seed,
        batch_size: Some(batch),
        ..TrainSettings::default()
    }
}

/// All `b`-subsets of `0..n` in lexicographic order.
fn subsets(n: usize, b: usize) -> Vec<Vec<usize>> {
    if b == 0 {
        return vec![vec![]];
    }
    (b - 1..n)
        .flat_map(|last| {
            subsets(last, b - 1).into_iter().map(move |mut s| {
                s.push(last);
                s
            })
        })
        .collect()
}

/// A batch of at least `n` sequences is the full batch: bit-identical runs.
#[test]
fn a_batch_of_all_sequences_is_full_batch_training() {
    let inst = instance(Family::Gaussian, (5, 4, 6), 2, false);
    for opt in [Optimizer::Gd, Optimizer::Ngd, Optimizer::Polyak] {
        let full = TrainSettings {
            opt,
            lr: 0.05,
            iters: 60,
            ..TrainSettings::default()
        };
        let a = run(&inst, &full, None);
        for b in [5, 9] {
            let r = run(
                &inst,
                &TrainSettings {
                    batch_size: Some(b),
                    ..full.clone()
                },
                None,
            );
            assert_eq!(a.state, r.state, "{opt:?} batch {b}");
        }
    }
}

/// Each SNGD step is `W − η ∇L_B(W)/‖∇L_B(W)‖` for one minibatch `B` of `b` sequences, found by
/// trying every `b`-subset (n = 6, b = 2: 15 of them); over one epoch (3 steps) the batches are
/// disjoint and cover every sequence once. The step is matched to 1e-12 (‖ΔW‖ = η = 0.1).
#[test]
fn each_sngd_step_is_a_normalized_minibatch_gradient_step() {
    let inst = instance(Family::Gaussian, (6, 4, 5), 8, false);
    let (n, b) = (6, 2);
    let mut seen = Vec::new();
    let mut w = run(&inst, &sngd(b, 0, 3), None).state.w;
    for k in 0..3 {
        let next = run(&inst, &sngd(b, k + 1, 3), None).state.w;
        assert!((dist(&w, &next) - 0.1).abs() <= 1e-12, "step {k}: ‖ΔW‖ ≠ η");
        let matches: Vec<Vec<usize>> = subsets(n, b)
            .into_iter()
            .filter(|ids| {
                let sub = inst.subset(ids);
                let mut o = Objective::new(&sub, Head::Linear, Loss::Logistic, 0).unwrap();
                let g = o.evaluate(&w, &inst.v, false).grad_w.mat;
                let step = scale(&g, -0.1 / g.norm_l2());
                dist(&(&w + &step), &next) <= 1e-12
            })
            .collect();
        assert_eq!(
            matches.len(),
            1,
            "step {k}: {} batches match",
            matches.len()
        );
        seen.extend(matches[0].iter().copied());
        w = next;
    }
    seen.sort();
    assert_eq!(
        seen,
        (0..n).collect::<Vec<_>>(),
        "one epoch visits each sequence once"
    );
}

/// The trajectory records the full risk: the recorded loss at iteration k is the full-batch loss
/// of the iterate, not a minibatch's.
#[test]
fn minibatch_runs_record_the_full_risk() {
    let inst = instance(Family::Gaussian, (8, 4, 5), 5, false);
    let res = run(&inst, &sngd(3, 40, 1), None);
    let last: &Record = res.trajectory.records.last().unwrap();
    assert_eq!(last.iter, 40);
    let mut o = Objective::new(&inst, Head::Linear, Loss::Logistic, 0).unwrap();
    let full = o.evaluate(&res.state.w, &inst.v, false).loss;
    assert_eq!(last.loss, full);
}

/// Deterministic for a seed; another seed draws other batches.
#[test]
fn minibatches_are_deterministic_for_a_seed() {
    let inst = instance(Family::Gaussian, (7, 4, 5), 9, false);
    let (a, b) = (
        run(&inst, &sngd(2, 30, 4), None),
        run(&inst, &sngd(2, 30, 4), None),
    );
    assert_eq!(a.state, b.state);
    let c = run(&inst, &sngd(2, 30, 5), None);
    assert_ne!(a.state.w, c.state.w);
}

/// Rates spec S0 (orthonormal tokens, closed-form W_mm): SNGD converges in direction to W_mm like
/// NGD: 1 − corr < 1e-3 after 3000 steps with batches of 2 of 4 sequences.
#[test]
fn sngd_converges_in_direction_to_w_mm_on_orthonormal_tokens() {
    let g = generate(&GenSpec::new(Family::Orthonormal, 4, 4, 16, 1)).unwrap();
    let wmm = &g.reference.as_ref().unwrap().1;
    let res = run(&g.instance, &sngd(2, 3000, 0), Some(wmm));
    let last = res.trajectory.records.last().unwrap();
    assert!(
        last.one_minus_corr.unwrap() < 1e-3,
        "1 − corr = {:e}",
        last.one_minus_corr.unwrap()
    );
    assert_eq!(&last.selected, g.instance.alpha.as_ref().unwrap());
}

#[test]
fn a_zero_batch_size_is_an_error() {
    let inst = instance(Family::Gaussian, (3, 4, 5), 1, false);
    let s = sngd(0, 5, 0);
    let mut obj = Objective::new(&inst, Head::Linear, Loss::Logistic, 0).unwrap();
    let err = train::train(&mut obj, &s, State::init(&s, 5, &inst.v), None, |_| true).unwrap_err();
    assert!(err.to_string().contains("batch_size"), "{err}");
}
