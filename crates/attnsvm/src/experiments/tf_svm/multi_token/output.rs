//! The multi-token experiment's results as data: a summary row per `d`, the mean curves per
//! snapshot, every accepted instance at its final snapshot (the scatter), and JSON.

use std::fmt::Write as _;

use super::{DimensionResult, MultiTokenResult, Snapshot};

/// Header of [`MultiTokenResult::summary_csv`].
pub const SUMMARY_CSV_HEADER: &str = "d,accepted,seeds_tried,trainings,rejected_all_positive,rejected_mid,rejected_finite,rejected_svm,mean_1mc_svmeq,mean_1mc_dir,mean_1mc_one_token,median_1mc_svmeq,median_1mc_dir,median_1mc_one_token,frac_multi,frac_svmeq_below_1e-2,seconds_per_accepted";

/// Header of [`MultiTokenResult::curves_csv`].
pub const CURVES_CSV_HEADER: &str =
    "d,iter,mean_1mc_svmeq,mean_1mc_dir,mean_1mc_one_token,median_max_masked_prob";

/// Header of [`MultiTokenResult::instances_csv`].
pub const INSTANCES_CSV_HEADER: &str = "d,seed,selected_sizes,r_star,w_norm,w_fin_norm,max_masked_prob,one_minus_corr_svmeq,one_minus_corr_dir,one_minus_corr_one_token,seconds";

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len();
    if m % 2 == 1 {
        v[m / 2]
    } else {
        0.5 * (v[m / 2 - 1] + v[m / 2])
    }
}

impl DimensionResult {
    /// Median over instances of a final-snapshot quantity.
    pub fn median_final(&self, f: impl Fn(&Snapshot) -> f64) -> f64 {
        median(self.instances.iter().map(|i| f(i.last())).collect())
    }
}

impl MultiTokenResult {
    /// One row per `d` (header [`SUMMARY_CSV_HEADER`]); `1mc` is `1 − corr` at the final snapshot.
    pub fn summary_csv(&self) -> String {
        let mut s = format!("{SUMMARY_CSV_HEADER}\n");
        for d in &self.dims {
            let m = d.instances.len().max(1) as f64;
            let r = &d.rejections;
            let _ = writeln!(
                s,
                "{},{},{},{},{},{},{},{},{:e},{:e},{:e},{:e},{:e},{:e},{},{},{:.4}",
                d.d,
                d.instances.len(),
                d.seeds_tried,
                d.trainings,
                r.all_positive,
                r.mid,
                r.finite,
                r.svm_failed,
                d.mean_final(|s| s.one_minus_corr_svmeq),
                d.mean_final(|s| s.one_minus_corr_dir),
                d.mean_final(|s| s.one_minus_corr_one_token),
                d.median_final(|s| s.one_minus_corr_svmeq),
                d.median_final(|s| s.one_minus_corr_dir),
                d.median_final(|s| s.one_minus_corr_one_token),
                d.instances.iter().filter(|i| i.multi()).count() as f64 / m,
                d.instances
                    .iter()
                    .filter(|i| i.last().one_minus_corr_svmeq < 1e-2)
                    .count() as f64
                    / m,
                d.seconds_per_accepted()
            );
        }
        s
    }

    /// The mean `1 − corr` of each prediction at each snapshot, per `d` (header
    /// [`CURVES_CSV_HEADER`]).
    pub fn curves_csv(&self) -> String {
        let mut s = format!("{CURVES_CSV_HEADER}\n");
        for d in &self.dims {
            let Some(first) = d.instances.first() else {
                continue;
            };
            for (k, snap) in first.snapshots.iter().enumerate() {
                let masked = median(
                    d.instances
                        .iter()
                        .filter_map(|i| i.snapshots.get(k))
                        .map(|s| s.max_masked_prob)
                        .collect(),
                );
                let _ = writeln!(
                    s,
                    "{},{},{:e},{:e},{:e},{:e}",
                    d.d,
                    snap.iter,
                    d.mean_at(k, |s| s.one_minus_corr_svmeq),
                    d.mean_at(k, |s| s.one_minus_corr_dir),
                    d.mean_at(k, |s| s.one_minus_corr_one_token),
                    masked
                );
            }
        }
        s
    }

    /// Every accepted instance at its final snapshot (header [`INSTANCES_CSV_HEADER`];
    /// `selected_sizes` is `|O_1| |O_2| …`).
    pub fn instances_csv(&self) -> String {
        let mut s = format!("{INSTANCES_CSV_HEADER}\n");
        for d in &self.dims {
            for i in &d.instances {
                let last = i.last();
                let sizes: Vec<String> = i.selected_sizes.iter().map(usize::to_string).collect();
                let _ = writeln!(
                    s,
                    "{},{},{},{:e},{:e},{:e},{:e},{:e},{:e},{:e},{:.4}",
                    i.d,
                    i.seed,
                    sizes.join(" "),
                    i.r_star,
                    i.w_norm,
                    i.w_fin_norm,
                    last.max_masked_prob,
                    last.one_minus_corr_svmeq,
                    last.one_minus_corr_dir,
                    last.one_minus_corr_one_token,
                    i.seconds
                );
            }
        }
        s
    }

    /// The result as pretty JSON (non-finite numbers become `null`).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("the multi-token result serializes")
    }
}
