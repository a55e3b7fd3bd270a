//! `repro tf-svm --only rank`: the svm_rank notebook (spec §4.5). Writes `rank.json`, `rows.csv`
//! (per `(n, T, d)`), `instances.csv`, `table.md` and `rank.png`/`rank.svg`: rank vs d, Frobenius
//! solid and nuclear dashed, per n (T = 5) and per T (n = 5), the feasible fraction, and the
//! notebook's convention (infeasible = rank 1) for comparison with its saved figure.

use std::path::Path;

use anyhow::Result;

use attnsvm::experiments::tf_svm::rank::{self, RankConfig, RankResult, RankRow};
use attnsvm::experiments::Claim;

use crate::cmd::suite::{Experiment, Step};
use crate::figure::{plot_xy, Corner, Style, XyPanel};
use crate::plot::PALETTE;

pub struct Rank;

impl Experiment for Rank {
    fn name(&self) -> &'static str {
        "rank"
    }

    fn title(&self) -> &'static str {
        "svm_rank (§4.5): rank of the Frobenius vs the nuclear Att-SVM solution, infeasible instances reported"
    }

    fn run(&self, quick: bool, dir: &Path, step: &Step) -> Result<Vec<Claim>> {
        let config = if quick {
            RankConfig::quick()
        } else {
            RankConfig::full()
        };
        let Some(result) = rank::run_with(&config, |done, total| step.advance(done, total))? else {
            return Err(step.interrupted());
        };
        let write = |name: &str, text: &str| attnsvm::data::npy::write_text(&dir.join(name), text);
        write("rank.json", &result.to_json())?;
        write("rows.csv", &result.rows_csv())?;
        write("instances.csv", &result.instances_csv())?;
        write(
            "table.md",
            &format!(
                "Each cell: feasible %; mean rank Fro / nuc over feasible instances \
                 [notebook convention: infeasible = 1, absolute tolerance 1e-7].\n\n{}",
                result.table_markdown()
            ),
        )?;
        plot_xy(
            dir,
            "rank",
            "svm_rank: rank of W^mm (Frobenius, solid) and W^mm_⋆ (nuclear, dashed) vs d",
            &figure(&result),
            1,
            (2000, 520),
        )?;
        Ok(result.claims())
    }
}

/// `(d, f(row))` over the rows of one shape with a finite value.
fn curve(
    result: &RankResult,
    shape: (usize, usize),
    f: impl Fn(&RankRow) -> f64,
) -> Vec<(f64, f64)> {
    result
        .rows
        .iter()
        .filter(|r| (r.n, r.t) == shape)
        .map(|r| (r.d as f64, f(r)))
        .filter(|p| p.1.is_finite())
        .collect()
}

/// A column of the rank table.
type RowValue = fn(&RankRow) -> f64;

/// One panel of Fro (solid) and nuclear (dashed) curves per shape.
fn rank_panel(
    result: &RankResult,
    shapes: &[(usize, usize)],
    title: &str,
    notebook: bool,
) -> XyPanel {
    let mut panel = XyPanel::new(title, "d", "mean rank", false, false);
    for (k, &(n, t)) in shapes.iter().enumerate() {
        let color = PALETTE[k % PALETTE.len()];
        let (fro, nuc): (RowValue, RowValue) = if notebook {
            (|r| r.notebook_mean_rank_fro, |r| r.notebook_mean_rank_nuc)
        } else {
            (|r| r.mean_rank_fro, |r| r.mean_rank_nuc)
        };
        panel.add(
            format!("n={n}, T={t}, Fro"),
            curve(result, (n, t), fro),
            color,
            Style::LinePoints,
        );
        panel.add(
            format!("n={n}, T={t}, nuc"),
            curve(result, (n, t), nuc),
            color,
            Style::Dashed,
        );
    }
    panel
}

fn figure(result: &RankResult) -> Vec<XyPanel> {
    let shapes = &result.config.shapes;
    let by_n: Vec<(usize, usize)> = shapes.iter().copied().filter(|s| s.1 == 5).collect();
    let by_t: Vec<(usize, usize)> = shapes.iter().copied().filter(|s| s.0 == 5).collect();
    let mut feasible = XyPanel::new("feasible fraction", "d", "fraction of seeds", false, false);
    for (k, &(n, t)) in shapes.iter().enumerate() {
        let pts = curve(result, (n, t), |r| r.feasible_fraction);
        feasible.add(
            format!("n={n}, T={t}"),
            pts,
            PALETTE[k % PALETTE.len()],
            Style::LinePoints,
        );
    }
    feasible.legend = Corner::LowerRight;
    vec![
        rank_panel(result, &by_n, "feasible instances, T = 5", false),
        rank_panel(result, &by_t, "feasible instances, n = 5", false),
        rank_panel(
            result,
            &by_n,
            "notebook convention (infeasible = 1), T = 5",
            true,
        ),
        feasible,
    ]
}
