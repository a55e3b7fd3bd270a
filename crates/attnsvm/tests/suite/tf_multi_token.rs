//! The multi_token_converge experiment (spec tf-as-svm.md §4.4) at quick sizes, checked against
//! mathematical facts (§2.6; checks 16 and 17 of §5):
//! - per instance: `W_fin ⊥ W_dir`, `R*` in closed form, `W_fin` reproduces the log-ratios inside
//!   `O_i`, `W_dir` = the single-token SVM when every `|O_i| = 1`;
//! - per instance at the final snapshot: `1 − corr(SVMeq) ≤ 1 − corr(W_dir)` (W_svmeq is the
//!   projection of W_T onto `S_fin ⊕ span{W_dir}`);
//! - the rejection rules hold for what is accepted: no final probability in `(1e-6, 1e-3]`,
//!   something masked, not all labels +1.

use attnsvm::experiments::tf_svm::multi_token::{
    run, run_seed, MultiTokenConfig, MultiTokenResult, Outcome, Rejection, CURVES_CSV_HEADER,
};

#[test]
fn quick_multi_token_experiment_satisfies_the_equivalence_facts() {
    let config = MultiTokenConfig::quick();
    let r = run(&config).unwrap();
    assert_eq!(r.dims.len(), 2);
    for d in &r.dims {
        assert_eq!(d.instances.len(), config.accept, "d = {}", d.d);
        let x = &d.rejections;
        let rejected = x.all_positive + x.mid + x.finite + x.svm_failed;
        assert_eq!(rejected + d.instances.len(), d.seeds_tried as usize);
        assert_eq!(x.svm_failures.len(), x.svm_failed);
        for i in &d.instances {
            assert_eq!(i.snapshots.len(), 21);
            assert_eq!((i.snapshots[0].iter, i.last().iter), (1, 2001));
            assert!(i.fin_dir_cosine <= 1e-8, "{}", i.fin_dir_cosine);
            assert!(i.r_star_closed_form_error <= 1e-8);
            assert!(i.fin_log_ratio_residual <= 1e-8);
            assert!(i.r_star > 0.0);
            if let Some(diff) = i.dir_vs_one_token {
                assert_eq!(i.w_fin_norm, 0.0);
                assert!(diff <= 1e-6, "{diff}");
            }
            let last = i.last();
            assert!(
                last.one_minus_corr_svmeq <= last.one_minus_corr_dir * (1.0 + 1e-9) + 1e-15,
                "{last:?}"
            );
            assert!(last.max_masked_prob <= config.low);
            // W-NGD grows ‖W‖ by at most η per step.
            assert!(i.w_norm <= 0.1 * 2001.0 + 2.0);
        }
    }
    let claims = r.claims();
    for c in &claims {
        if c.statement.contains("check 16") || c.statement.contains("on every instance") {
            assert_ne!(c.held, Some(false), "{c:?}");
        }
    }
    assert!(r.curves_csv().starts_with(CURVES_CSV_HEADER));
    assert_eq!(r.curves_csv().lines().count(), 1 + 2 * 21);
    assert_eq!(r.instances_csv().lines().count(), 1 + 2 * config.accept);
    let back: MultiTokenResult = serde_json::from_str(&r.to_json()).unwrap();
    assert_eq!(back.dims[0].instances.len(), config.accept);
}

#[test]
fn rejected_seeds_name_their_rule() {
    let config = MultiTokenConfig::quick();
    let mut seen_positive = false;
    for seed in 1..=16 {
        let inst = attnsvm::data::generate::generate(&attnsvm::data::generate::GenSpec::new(
            attnsvm::data::generate::Family::Sphere,
            3,
            4,
            4,
            seed,
        ))
        .unwrap()
        .instance;
        let all_positive = inst.y.iter().all(|&y| y > 0.0);
        if all_positive {
            seen_positive = true;
            let o = run_seed(&config, 4, seed).unwrap();
            assert!(matches!(o, Outcome::Rejected(Rejection::AllPositive, None)));
        }
    }
    assert!(seen_positive, "1 in 8 seeds has all labels +1");
}
