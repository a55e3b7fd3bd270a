//! `attnsvm plot RUN_DIR`: draw a run's trajectory (see [`crate::plot`]).

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use crate::Outcome;

#[derive(Debug, Args)]
#[command(
    after_help = "Panels, against iteration + 1 on a log axis: the loss (log axis, exact \
    when the loss underflows), ‖W‖_F, and 1 − corr(W, reference) when the run had a reference, \
    else 1 − min_i max_t s_it (both log axes)."
)]
pub struct PlotArgs {
    /// Run directory written by `attnsvm train` (reads trace.csv; writes trace.png, 1500×480
    /// pixels, and trace.svg)
    #[arg(value_name = "RUN_DIR")]
    pub run_dir: PathBuf,
}

pub fn run(args: PlotArgs) -> Result<Outcome> {
    let [png, svg] = crate::plot::plot_run(&args.run_dir, &args.run_dir)?;
    println!("wrote {} and {}", png.display(), svg.display());
    Ok(Outcome::Done)
}
