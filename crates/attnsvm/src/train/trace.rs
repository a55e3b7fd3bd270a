//! The trajectory of a run, recorded on a log-spaced schedule (every iteration up to 10, then
//! `points_per_decade` per decade, and the last one), and its CSV form.

use std::collections::BTreeSet;
use std::fmt::Write;

/// Which iterations to record.
#[derive(Debug, Clone)]
pub struct LogSchedule {
    points: BTreeSet<usize>,
}

impl LogSchedule {
    /// `0..=10`, then `round(10^{j/points_per_decade})` up to `iters`, and `iters` itself.
    pub fn new(iters: usize, points_per_decade: usize) -> Self {
        let mut points: BTreeSet<usize> = (0..=iters.min(10)).collect();
        let mut j = points_per_decade; // 10^1
        loop {
            let k = 10f64.powf(j as f64 / points_per_decade as f64).round() as usize;
            if k > iters {
                break;
            }
            points.insert(k);
            j += 1;
        }
        points.insert(iters);
        LogSchedule { points }
    }

    pub fn contains(&self, k: usize) -> bool {
        self.points.contains(&k)
    }
}

/// One recorded iterate.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub iter: usize,
    pub loss: f64,
    pub log_loss: Option<f64>,
    /// `log(L − L*)` (fixed linear head).
    pub log_excess_loss: Option<f64>,
    pub log_grad_norm: f64,
    /// `‖W‖_F` (effective W).
    pub w_norm: f64,
    pub corr: Option<f64>,
    pub one_minus_corr: Option<f64>,
    /// `min_i max_t s_it`.
    pub min_max_prob: f64,
    /// `(1/n) Σ_i max_t s_it`.
    pub mean_max_prob: f64,
    /// `log max_i (1 − max_t s_it)`.
    pub log_max_off_mass: f64,
    pub seconds: f64,
    /// `argmax_t s_it` per sequence.
    pub selected: Vec<usize>,
}

/// The recorded iterates of a run.
#[derive(Debug, Clone, Default)]
pub struct Trajectory {
    pub records: Vec<Record>,
}

/// The CSV header of [`Trajectory::to_csv`]. Logs are base 10.
pub const CSV_HEADER: &str = "iter,loss,log10_loss,log10_excess_loss,log10_grad_norm,w_norm,corr,one_minus_corr,min_max_prob,mean_max_prob,log10_max_off_mass,seconds";

fn opt(x: Option<f64>) -> String {
    x.map(|v| format!("{v:e}")).unwrap_or_default()
}

impl Trajectory {
    /// The trajectory as CSV (header `CSV_HEADER`; empty fields where a value does not apply).
    pub fn to_csv(&self) -> String {
        let ln10 = std::f64::consts::LN_10;
        let mut s = String::from(CSV_HEADER);
        s.push('\n');
        for r in &self.records {
            let _ = writeln!(
                s,
                "{},{:e},{},{},{:e},{:e},{},{},{:e},{:e},{:e},{:.6}",
                r.iter,
                r.loss,
                opt(r.log_loss.map(|l| l / ln10)),
                opt(r.log_excess_loss.map(|l| l / ln10)),
                r.log_grad_norm / ln10,
                r.w_norm,
                opt(r.corr),
                opt(r.one_minus_corr),
                r.min_max_prob,
                r.mean_max_prob,
                r.log_max_off_mass / ln10,
                r.seconds
            );
        }
        s
    }

    /// The selected token of every sequence at every record (`records × n`, row-major).
    pub fn selected_matrix(&self) -> (usize, usize, Vec<i64>) {
        let n = self.records.first().map_or(0, |r| r.selected.len());
        let data = self
            .records
            .iter()
            .flat_map(|r| r.selected.iter().map(|&k| k as i64))
            .collect();
        (self.records.len(), n, data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_keeps_the_start_each_decade_and_the_end() {
        let s = LogSchedule::new(1234, 10);
        for k in [0, 1, 5, 10, 100, 1000, 1234] {
            assert!(s.contains(k), "{k}");
        }
        assert!(!s.contains(11) && !s.contains(1235));
        assert!(s.points.len() < 50);
    }
}
