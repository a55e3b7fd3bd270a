//! The rates experiment (spec `rates-and-convex.md` Paper A, checks §A5) at quick sizes with fixed
//! seeds: S0 (orthonormal tokens, closed-form `W_mm`), n = T = 4, d = 16, seeds 0, 1, 2, 1000
//! steps; GD η = 1, NGD η = 0.1, Polyak with `f* = L*`, joint NGD, stochastic NGD (batches of 2). Rates are fitted over the last
//! decade, t ∈ [100, 1000]. Every assertion is a statement of the spec, with the tolerance argued
//! next to it.

use std::sync::OnceLock;

use attnsvm::experiments::rates::{
    run, OptimizerSpec, Quantity, RatesConfig, RatesResult, RunCurves, Setting, CURVES_CSV_HEADER,
};
use attnsvm::model::softplus;
use attnsvm::train::{Optimizer, PolyakTarget};

fn quick() -> &'static RatesResult {
    static RESULT: OnceLock<RatesResult> = OnceLock::new();
    RESULT.get_or_init(|| {
        let res = run(&RatesConfig::quick()).unwrap();
        // The fitted-vs-predicted table of the quick run (`cargo test --test rates -- --nocapture`).
        println!("{}", res.table_markdown());
        res
    })
}

/// The run of `optimizer` on `seed`.
fn curves<'a>(res: &'a RatesResult, optimizer: &str, seed: u64) -> &'a RunCurves {
    res.runs_of(optimizer)
        .find(|r| r.seed == seed)
        .expect("every optimizer runs on every seed")
}

fn slope(r: &RunCurves, q: Quantity) -> f64 {
    r.slope(q)
        .unwrap_or_else(|| panic!("{} seed {}: no fit of {q:?}", r.optimizer, r.seed))
}

/// §A5 check 7: at an equal budget (t = 10³) NGD and Polyak give 1 − corr(W_t, W_mm) at least 10×
/// smaller than GD (the spec's S0 runs show ≈100×). The gap keeps opening: the fitted log-log
/// slopes of NGD and Polyak (predicted −2) lie at least 1 below GD's (which flattens, O(1/log t)
/// asymptotically), so the factor grows by ≥ 10× per further decade.
#[test]
fn ngd_and_polyak_beat_gd_on_one_minus_corr() {
    let res = quick();
    for &seed in &res.config.seeds {
        let gd = curves(res, "gd", seed);
        for fast in ["ngd", "polyak"] {
            let f = curves(res, fast, seed);
            assert_eq!(f.last().iter, 1000);
            assert!(
                f.last().one_minus_corr * 10.0 <= gd.last().one_minus_corr,
                "seed {seed}: {fast} 1 − corr = {:e} vs GD {:e}",
                f.last().one_minus_corr,
                gd.last().one_minus_corr
            );
            let (sf, sg) = (
                slope(f, Quantity::OneMinusCorr),
                slope(gd, Quantity::OneMinusCorr),
            );
            assert!(sf <= sg - 1.0, "seed {seed}: {fast} slope {sf} vs GD {sg}");
        }
    }
}

/// §A5 check 8 and §A3: the softmax mass off the optimal tokens decays exponentially under NGD,
/// ln(1 − min_i s_i,opt) ≈ −‖W_t‖/‖W_mm‖ + ln(T−1) with ‖W_t‖ ≈ ηt, i.e. slope −η/‖W_mm‖ per step;
/// under Polyak (f* = L*) the margin rises by one per step, slope −1; under GD only polynomially,
/// ~1/t.
///
/// Tolerances: the spec's "within ~1 nat once aligned" moves a least-squares slope over the
/// 900-step window by at most ≈ 2/900 ≈ 0.002 = 4% of η/‖W_mm‖ = 0.058, so 10% for NGD; Polyak's
/// unit decrease is asymptotically exact (5%). GD's −1 is asymptotic: ‖W_t‖ = ‖W_mm‖ ln t + O(ln ln t),
/// whose correction is ≈ 1/ln t ≈ 0.15–0.2 at t ∈ [10², 10³], so GD's slope must lie in
/// [−1.5, −0.75] — and far from the exponential rates.
#[test]
fn off_optimal_mass_decays_as_predicted() {
    let res = quick();
    for &seed in &res.config.seeds {
        let ngd = curves(res, "ngd", seed);
        let predicted = -0.1 / ngd.w_mm_norm;
        let got = slope(ngd, Quantity::OffMass);
        assert!(
            (got / predicted - 1.0).abs() <= 0.10,
            "seed {seed}: NGD off-mass slope {got} vs −η/‖W_mm‖ = {predicted}"
        );
        let got = slope(curves(res, "polyak", seed), Quantity::OffMass);
        assert!(
            (got + 1.0).abs() <= 0.05,
            "seed {seed}: Polyak off-mass slope {got} vs −1"
        );
        let gd = curves(res, "gd", seed);
        let got = slope(gd, Quantity::OffMass);
        assert!(
            (-1.5..=-0.75).contains(&got),
            "seed {seed}: GD off-mass log-log slope {got} vs −1"
        );
        // Exponential against polynomial: after 1000 steps NGD's off mass is below GD's by more
        // than e^{-40} (predicted: e^{-100/‖W_mm‖ + ln 3} ≈ e^{-56} against ≈ 1/t).
        assert!(ngd.last().ln_off_mass < gd.last().ln_off_mass - 40.0);
    }
}

/// Stochastic NGD (batches of b = 2 of n = 4 sequences) on S0: the margins grow at
/// η√(b/n)/‖W_mm‖ per step (the derivation in `experiments::rates`), so the off mass and the loss
/// gap decay exponentially at that rate, √2 slower per step than full-batch NGD; the direction
/// still converges at t^{−2}. Tolerances as for NGD (10%; slope −2 ± 0.2).
#[test]
fn stochastic_ngd_rates_scale_with_the_square_root_of_the_batch_fraction() {
    let res = quick();
    for &seed in &res.config.seeds {
        let s = curves(res, "sngd", seed);
        let predicted = -0.1 * (2.0f64 / 4.0).sqrt() / s.w_mm_norm;
        for q in [Quantity::OffMass, Quantity::LossGap] {
            let got = slope(s, q);
            assert!(
                (got / predicted - 1.0).abs() <= 0.10,
                "seed {seed}: SNGD {q:?} slope {got} vs −η√(b/n)/‖W_mm‖ = {predicted}"
            );
        }
        let ratio =
            slope(s, Quantity::OffMass) / slope(curves(res, "ngd", seed), Quantity::OffMass);
        assert!(
            (ratio - 0.5f64.sqrt()).abs() <= 0.05,
            "seed {seed}: SNGD/NGD rate {ratio}"
        );
        let c = slope(s, Quantity::OneMinusCorr);
        assert!(
            (c + 2.0).abs() <= 0.2,
            "seed {seed}: SNGD 1 − corr slope {c}"
        );
    }
}

/// §A3, §A5 checks 4, 6, 9, 10: the fitted rates have the predicted sign and order.
/// - 1 − corr decreases for every fixed-head optimizer; NGD and Polyak at least as fast as the
///   O(t^{−1/2}) directional rate (1 − corr = ½‖direction error‖², slope ≤ −1).
/// - ‖W_t‖ grows linearly under NGD (ηt − C ≤ ‖W_t‖ ≤ ‖W_0‖ + ηt: log-log slope 1 ± 0.05 over
///   [10², 10³]) and under Polyak with ‖W_t‖/t → ‖W_mm‖ (1% at t = 10³); logarithmically under GD.
/// - The loss gap L − L* decays at the off-mass rates (NGD −η/‖W_mm‖, Polyak −1 per step; same
///   tolerances) and polynomially under GD.
#[test]
fn fitted_slopes_have_the_predicted_sign_and_order() {
    let res = quick();
    for row in &res.table {
        if let Some(bound) = row.prediction.at_most {
            assert!(
                row.max <= bound,
                "{} {:?}: slopes up to {} vs the bound {bound}",
                row.optimizer,
                row.quantity,
                row.max
            );
        }
    }
    for &seed in &res.config.seeds {
        let (gd, ngd, polyak) = (
            curves(res, "gd", seed),
            curves(res, "ngd", seed),
            curves(res, "polyak", seed),
        );
        for r in [gd, ngd, polyak] {
            assert!(slope(r, Quantity::OneMinusCorr) < 0.0);
            assert!(slope(r, Quantity::LossGap) < 0.0);
        }
        assert!(slope(ngd, Quantity::OneMinusCorr) <= -1.0);
        assert!(slope(polyak, Quantity::OneMinusCorr) <= -1.0);
        assert!((slope(ngd, Quantity::WNorm) - 1.0).abs() <= 0.05);
        let rate = polyak.last().w_norm / polyak.last().iter as f64;
        assert!(
            (rate / polyak.w_mm_norm - 1.0).abs() <= 0.01,
            "‖W_t‖/t = {rate}"
        );
        // GD: ‖W_t‖ ≈ a ln t + b with a > 0, and far below NGD's linear growth.
        assert!(slope(gd, Quantity::WNorm) > 0.0);
        assert!(gd.last().w_norm < 0.5 * ngd.last().w_norm);
        let predicted = -0.1 / ngd.w_mm_norm;
        let got = slope(ngd, Quantity::LossGap);
        assert!(
            (got / predicted - 1.0).abs() <= 0.10,
            "NGD loss-gap slope {got}"
        );
        let got = slope(polyak, Quantity::LossGap);
        assert!((got + 1.0).abs() <= 0.05, "Polyak loss-gap slope {got}");
    }
}

/// §A5 check 11: with (v, W) trained the loss goes to 0, not to the fixed-head infimum
/// L* = (1/n) Σ ℓ(γ_opt) (= ℓ(1) ≈ 0.31 in S0), and its fitted exp(−c t^{1/3}) exponent is negative.
#[test]
fn joint_training_drives_the_loss_to_zero() {
    let res = quick();
    let l_star = softplus(-1.0);
    for r in res.runs_of("joint-ngd") {
        assert!(
            r.last().ln_loss_gap < l_star.ln() - 20.0,
            "seed {}: ln L = {}",
            r.seed,
            r.last().ln_loss_gap
        );
        assert!(slope(r, Quantity::LossGap) < 0.0);
    }
}

/// S1 (equal non-optimal scores, the prior work's global setting), `W_mm` from the Att-SVM
/// solver: the same acceleration (§A5 check 7) and the NGD sparsification rate (check 8).
#[test]
fn global_setting_with_solver_w_mm_shows_the_same_rates() {
    let cfg = RatesConfig {
        setting: Setting::EqualScore,
        seeds: vec![0, 1],
        optimizers: RatesConfig::quick().optimizers[..3].to_vec(),
        ..RatesConfig::quick()
    };
    let res = run(&cfg).unwrap();
    for &seed in &cfg.seeds {
        let gd = curves(&res, "gd", seed);
        let ngd = curves(&res, "ngd", seed);
        for fast in ["ngd", "polyak"] {
            let f = curves(&res, fast, seed);
            assert!(f.last().one_minus_corr * 10.0 <= gd.last().one_minus_corr);
            assert!(slope(f, Quantity::OneMinusCorr) <= -1.0);
        }
        let predicted = -0.1 / ngd.w_mm_norm;
        let got = slope(ngd, Quantity::OffMass);
        assert!(
            (got / predicted - 1.0).abs() <= 0.10,
            "NGD off-mass slope {got}"
        );
    }
}

#[test]
fn curves_csv_and_json_hold_every_record() {
    let res = quick();
    let csv = res.curves_csv();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some(CURVES_CSV_HEADER));
    let columns = CURVES_CSV_HEADER.split(',').count();
    let rows: Vec<&str> = lines.collect();
    let points: usize = res.runs.iter().map(|r| r.points.len()).sum();
    assert_eq!(rows.len(), points);
    assert!(rows.iter().all(|l| l.split(',').count() == columns));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("curves.csv");
    res.write_curves_csv(&path).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), csv);
    let json: serde_json::Value = serde_json::from_str(&res.to_json()).unwrap();
    // 3 seeds × 5 optimizers; 4 quantities per optimizer.
    let optimizers = res.config.optimizers.len();
    assert_eq!(optimizers, 5);
    assert_eq!(json["runs"].as_array().unwrap().len(), 3 * optimizers);
    assert_eq!(json["table"].as_array().unwrap().len(), 4 * optimizers);
    let back: RatesResult = serde_json::from_str(&res.to_json()).unwrap();
    assert_eq!(back.config, res.config);
}

#[test]
fn invalid_configs_are_errors() {
    let polyak_zero = OptimizerSpec {
        name: "polyak-zero".into(),
        opt: Optimizer::Polyak,
        lr: 1.0,
        polyak_target: PolyakTarget::Zero,
        train_v: false,
        batch_size: None,
    };
    for cfg in [
        RatesConfig {
            seeds: vec![],
            ..RatesConfig::quick()
        },
        RatesConfig {
            fit_from: 1.0,
            ..RatesConfig::quick()
        },
        RatesConfig {
            t: 1,
            ..RatesConfig::quick()
        },
        RatesConfig {
            optimizers: vec![polyak_zero],
            ..RatesConfig::quick()
        },
        // Orthonormal tokens need d ≥ nT.
        RatesConfig {
            d: 8,
            ..RatesConfig::quick()
        },
    ] {
        assert!(run(&cfg).is_err(), "{cfg:?}");
    }
    let cfg: RatesConfig = serde_json::from_str(r#"{"iters": 50}"#).unwrap();
    assert_eq!(cfg.iters, 50);
    assert_eq!(cfg.optimizers, RatesConfig::quick().optimizers);
}

/// The report-sized configuration (`cargo test --release --test rates -- --ignored --nocapture`):
/// prints the rate table and the wall time (issue 5 asks for ≤ 3 minutes on 2 cores).
#[test]
#[ignore = "report-sized; run explicitly"]
fn full_run_prints_the_rate_table() {
    let start = std::time::Instant::now();
    let res = run(&RatesConfig::full()).unwrap();
    println!("{}", res.table_markdown());
    println!("full run: {:.1} s", start.elapsed().as_secs_f64());
}
