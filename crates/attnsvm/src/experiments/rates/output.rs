//! The rates experiment's results as data: table lookups, per-iteration curves as CSV, JSON, and
//! the rate table as markdown.

use std::fmt::Write as _;
use std::path::Path;

use super::{Quantity, RatesResult, RunCurves, TableRow};
use crate::error::{Error, Result};

/// The CSV header of [`RatesResult::curves_csv`]. Logarithms are base 10.
pub const CURVES_CSV_HEADER: &str =
    "optimizer,seed,iter,loss,log10_loss_gap,one_minus_corr,w_norm,log10_off_mass";

impl RatesResult {
    /// The table row of an optimizer and quantity.
    pub fn row(&self, optimizer: &str, q: Quantity) -> Option<&TableRow> {
        self.table
            .iter()
            .find(|r| r.optimizer == optimizer && r.quantity == q)
    }

    /// The runs of one optimizer, in seed order.
    pub fn runs_of(&self, optimizer: &str) -> impl Iterator<Item = &RunCurves> + '_ {
        let name = optimizer.to_string();
        self.runs.iter().filter(move |r| r.optimizer == name)
    }

    /// Every recorded point of every run as CSV (header [`CURVES_CSV_HEADER`]).
    pub fn curves_csv(&self) -> String {
        let ln10 = std::f64::consts::LN_10;
        let mut s = String::from(CURVES_CSV_HEADER);
        s.push('\n');
        for r in &self.runs {
            for p in &r.points {
                let _ = writeln!(
                    s,
                    "{},{},{},{:e},{:e},{:e},{:e},{:e}",
                    r.optimizer,
                    r.seed,
                    p.iter,
                    p.loss,
                    p.ln_loss_gap / ln10,
                    p.one_minus_corr,
                    p.w_norm,
                    p.ln_off_mass / ln10
                );
            }
        }
        s
    }

    /// Write [`RatesResult::curves_csv`] to `path`.
    pub fn write_curves_csv(&self, path: &Path) -> Result<()> {
        std::fs::write(path, self.curves_csv()).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })
    }

    /// The result as pretty JSON (non-finite numbers become `null`).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("the result serializes")
    }

    /// The rate table as markdown: fitted slope (mean ± std over seeds, [min, max]) next to the
    /// prediction.
    pub fn table_markdown(&self) -> String {
        let mut s = String::from(
            "| optimizer | quantity | fit | fitted slope (mean ± std) | [min, max] | predicted | basis |\n|---|---|---|---|---|---|---|\n",
        );
        for r in &self.table {
            let pred = match (r.prediction.slope, r.prediction.at_most) {
                (Some(v), _) => format!("{v:.4}"),
                (None, Some(b)) => format!("≤ {b}"),
                (None, None) => "—".into(),
            };
            let _ = writeln!(
                s,
                "| {} | {} | {:?} | {:.4} ± {:.4} | [{:.4}, {:.4}] | {} | {} |",
                r.optimizer,
                r.quantity.name(),
                r.prediction.kind,
                r.mean,
                r.std,
                r.min,
                r.max,
                pred,
                r.prediction.basis
            );
        }
        s
    }
}
