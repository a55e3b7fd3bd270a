//! Regularization paths in the tf-svm suite at quick sizes (spec §2.4): every point certified, the
//! global paths converge in direction to the SVM of the matching norm, the local path to the SVM of
//! a locally optimal selection.

use attnsvm::experiments::tf_svm::paths::{run, PathsConfig};

#[test]
fn regularization_path_claims_hold() {
    let res = run(&PathsConfig::new(true)).unwrap();
    let claims = res.claims();
    for c in &claims {
        println!("{:?}: {} | {}", c.held, c.statement, c.measured);
    }
    assert!(
        res.local.is_some(),
        "a locally-but-not-globally optimal selection among the seeds"
    );
    for c in &claims {
        assert_ne!(c.held, Some(false), "{}: {}", c.statement, c.measured);
    }
    // A bigger ball cannot raise the minimum: the loss is non-increasing along each global path.
    for p in [&res.fro, &res.nuc, &res.kq] {
        for w in p.points.windows(2) {
            assert!(
                w[1].loss <= w[0].loss * (1.0 + 1e-9),
                "{}: {} then {}",
                p.name,
                w[0].loss,
                w[1].loss
            );
        }
    }
}
