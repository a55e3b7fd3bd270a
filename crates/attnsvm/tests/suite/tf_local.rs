//! `local_converge` (spec `tf-as-svm.md` §4.3, checks §5.7–5.10) at quick sizes (20 seeds).
//!
//! Per seed, facts that hold whatever the sample: the selection read off the softmax is the one the
//! analysis solved for; both parameterizations end with a one-hot softmax on it; the correlation with
//! the matching SVM is the highest of the two (W with Frobenius, (K,Q) with nuclear) on most seeds.
//! The aggregate claims of the spec are computed from the same run and must hold.

use attnsvm::experiments::tf_svm::local::{run, LocalConfig};
use attnsvm::solvers::svm::Status;

#[test]
fn local_convergence_checks_hold_at_quick_size() {
    let cfg = LocalConfig::new(true);
    let res = run(&cfg, &|_, _| true).unwrap();
    assert_eq!(res.seeds.len(), 20);
    for s in &res.seeds {
        for t in [&s.w, &s.kq] {
            assert_eq!(t.analysis.status, Status::Solved, "seed {}", s.seed);
            assert!(*t.mean_max_prob.last().unwrap() > 0.999, "seed {}", s.seed);
        }
    }
    let matching = res
        .seeds
        .iter()
        .filter(|s| {
            s.w.corr_fro.last() > s.w.corr_nuc.last() && s.kq.corr_nuc.last() > s.kq.corr_fro.last()
        })
        .count();
    assert!(
        matching * 10 >= res.seeds.len() * 9,
        "{matching} of 20 seeds prefer the matching SVM"
    );
    let claims = res.claims();
    for c in &claims {
        println!("{:?}: {} | {}", c.held, c.statement, c.measured);
    }
    for c in &claims {
        assert_ne!(c.held, Some(false), "{}: {}", c.statement, c.measured);
    }
}

#[test]
fn an_interrupting_progress_callback_stops_the_run() {
    let cfg = LocalConfig {
        seeds: vec![0, 1],
        ..LocalConfig::new(true)
    };
    let err = run(&cfg, &|_, _| false).unwrap_err();
    assert!(matches!(err, attnsvm::Error::Interrupted));
}
