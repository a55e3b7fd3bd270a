//! The rank experiment's results as data: the per-`(n, T, d)` table and every instance as CSV,
//! JSON, and the table as markdown.

use std::fmt::Write as _;

use super::RankResult;

/// Header of [`RankResult::rows_csv`].
pub const ROWS_CSV_HEADER: &str = "n,T,d,seeds,infeasible,undecided,nuclear_failed,feasible_fraction,mean_rank_fro,mean_rank_fro_paired,mean_rank_nuc,mean_rank_nuc_unprojected,notebook_mean_rank_fro,notebook_mean_rank_nuc,full_rank_fro";

/// Header of [`RankResult::instances_csv`].
pub const INSTANCES_CSV_HEADER: &str = "n,T,d,seed,status_fro,status_nuc,farkas_residual,rank_fro,rank_nuc,rank_nuc_unprojected,notebook_rank_fro,notebook_rank_nuc,fro_of_fro,fro_of_nuc,nuc_of_fro,nuc_of_nuc,fro_off_span,nuc_projection_change,nuc_projection_violation,gap_fro,gap_nuc,seconds";

fn opt<T: std::fmt::Display>(x: Option<T>) -> String {
    x.map(|v| v.to_string()).unwrap_or_default()
}

fn num(x: f64) -> String {
    if x.is_finite() {
        format!("{x:e}")
    } else {
        String::new()
    }
}

impl RankResult {
    /// One row per `(n, T, d)` (header [`ROWS_CSV_HEADER`]; empty fields where nothing was solved).
    pub fn rows_csv(&self) -> String {
        let mut s = format!("{ROWS_CSV_HEADER}\n");
        for r in &self.rows {
            let _ = writeln!(
                s,
                "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
                r.n,
                r.t,
                r.d,
                r.seeds,
                r.infeasible,
                r.undecided,
                r.nuclear_failed,
                r.feasible_fraction,
                num(r.mean_rank_fro),
                num(r.mean_rank_fro_paired),
                num(r.mean_rank_nuc),
                num(r.mean_rank_nuc_raw),
                r.notebook_mean_rank_fro,
                r.notebook_mean_rank_nuc,
                r.full_rank_fro
            );
        }
        s
    }

    /// One row per instance (header [`INSTANCES_CSV_HEADER`]).
    pub fn instances_csv(&self) -> String {
        let mut s = format!("{INSTANCES_CSV_HEADER}\n");
        for i in &self.instances {
            let _ = writeln!(
                s,
                "{},{},{},{},{:?},{:?},{},{},{},{},{},{},{},{},{},{},{},{},{},{:e},{:e},{:.6}",
                i.n,
                i.t,
                i.d,
                i.seed,
                i.status_fro,
                i.status_nuc,
                opt(i.farkas_residual.map(|x| format!("{x:e}"))),
                opt(i.rank_fro),
                opt(i.rank_nuc),
                opt(i.rank_nuc_raw),
                i.notebook_rank_fro,
                i.notebook_rank_nuc,
                num(i.fro_of_fro),
                num(i.fro_of_nuc),
                num(i.nuc_of_fro),
                num(i.nuc_of_nuc),
                num(i.fro_off_span),
                num(i.nuc_projection_change),
                num(i.nuc_projection_violation),
                i.gap_fro,
                i.gap_nuc,
                i.seconds
            );
        }
        s
    }

    /// The result as pretty JSON (non-finite numbers become `null`).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("the rank result serializes")
    }

    /// The table of the spec's §4.5 layout: one line per `(n, T)`, one column per `d`, each cell
    /// `feasible %; mean rank Fro / nuc (nuclear failures) [notebook convention Fro / nuc]`.
    pub fn table_markdown(&self) -> String {
        let ds = &self.config.ds;
        let mut s = String::from("| (n,T) \\ d |");
        for d in ds {
            let _ = write!(s, " {d} |");
        }
        s.push_str("\n|---|");
        s.push_str(&"---|".repeat(ds.len()));
        s.push('\n');
        for &(n, t) in &self.config.shapes {
            let _ = write!(s, "| ({n},{t}) |");
            for &d in ds {
                let cell = match self.row(n, t, d) {
                    Some(r) if r.mean_rank_fro.is_finite() => format!(
                        "{:.0} %; {:.2}/{:.2}{} [{:.2}/{:.2}]",
                        100.0 * r.feasible_fraction,
                        r.mean_rank_fro,
                        r.mean_rank_nuc,
                        if r.nuclear_failed > 0 {
                            format!(" ({} nuc failed)", r.nuclear_failed)
                        } else {
                            String::new()
                        },
                        r.notebook_mean_rank_fro,
                        r.notebook_mean_rank_nuc
                    ),
                    Some(r) => format!(
                        "{:.0} % [{:.2}/{:.2}]",
                        100.0 * r.feasible_fraction,
                        r.notebook_mean_rank_fro,
                        r.notebook_mean_rank_nuc
                    ),
                    None => "—".into(),
                };
                let _ = write!(s, " {cell} |");
            }
            s.push('\n');
        }
        s
    }
}
