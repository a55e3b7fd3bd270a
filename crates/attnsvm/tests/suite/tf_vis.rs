//! `visualization1/2` (spec `tf-as-svm.md` §4.1–4.2) at quick sizes: every check the experiment
//! states (§5.2, 5.6, 5.9, 5.19, (K,Q) → nuclear, the 1e-6 direction target) holds, and the 2-D
//! paths are what the figures draw.

use attnsvm::experiments::tf_svm::vis::{run, Fixture, VisConfig};

#[test]
fn visualization_checks_hold() {
    for f in [Fixture::Vis1, Fixture::Vis2] {
        let res = run(&VisConfig::new(f, true)).unwrap();
        let claims = res.claims();
        for c in &claims {
            println!("{:?} {:?}: {} | {}", f, c.held, c.statement, c.measured);
        }
        assert!(claims.len() >= 6);
        assert!(claims.iter().all(|c| c.held != Some(false)), "{f:?}");
    }
}
