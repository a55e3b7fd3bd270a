//! `attnsvm demo`: the papers' canonical small example end to end.
//!
//! The instance is TF-SVM's `visualization1` (spec `tf-as-svm.md` §4.1): n = 2 sequences of T = 3
//! tokens in d = 2, cross-attention, labels (+1, +1), drawn in float32 by the paper's notebook and
//! widened to f64 here. Its globally optimal tokens (largest score `γ_it = y_i vᵀx_it`) are
//! opt = (0, 2). The demo trains `W` from 0 by exact-direction normalized GD (η = 0.1) with the
//! logistic loss and shows that the attention selects opt while `‖W‖` grows without bound, at
//! almost the NGD maximum of η per update: `W` converges in direction, not in value.

use std::path::{Path, PathBuf};

use anyhow::Result;
use attnsvm::data::Instance;
use attnsvm::model::{HeadKind, Loss, Param};
use attnsvm::train::{Init, Optimizer, TrainResult, TrainSettings};
use clap::Args;
use serde::Serialize;

use crate::config::TrainConfig;
use crate::output::{check_destination, write_json, Staging, TOOL};
use crate::run::{self, Inputs, RunSummary};
use crate::Outcome;

/// The learning rate of the paper's run.
const LR: f64 = 0.1;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Directory to create: DIR/data (the instance), DIR/run (the training run and its plot)
    #[arg(long, value_name = "DIR", default_value = "attnsvm-demo")]
    pub out: PathBuf,
    /// Number of normalized-GD updates (step size 0.1)
    #[arg(long, value_name = "K", default_value_t = 2000)]
    pub iters: usize,
}

/// The `visualization1` instance, with `alpha` = its globally optimal tokens.
pub fn instance() -> Instance {
    attnsvm::data::fixtures::visualization1()
}

/// What `DIR/summary.json` of the demo holds.
#[derive(Serialize)]
struct DemoSummary<'a> {
    tool: &'static str,
    command: &'static str,
    instance: &'static str,
    optimal_tokens: Vec<usize>,
    selected_equal_optimal: bool,
    /// `(k, ‖W_k‖_F)` at k = 10, 100, 1000, … and at the end.
    w_norm_at: Vec<(usize, f64)>,
    run: &'a RunSummary,
}

pub fn run(args: DemoArgs) -> Result<Outcome> {
    let (data, run_dir) = (args.out.join("data"), args.out.join("run"));
    let cfg = TrainConfig {
        data: Some(data.clone()),
        out: Some(run_dir.clone()),
        reference: None,
        head: HeadKind::Linear,
        loss: Loss::Logistic,
        settings: TrainSettings {
            param: Param::W,
            opt: Optimizer::Ngd,
            lr: LR,
            ngd_eps: 0.0,
            iters: args.iters,
            init: Init::Zero,
            ..TrainSettings::default()
        },
        ..TrainConfig::default()
    };
    check_destination(&args.out, "demo", &[])?;
    let inputs = Inputs::with_instance(&cfg, instance(), None)?;
    let result = run::train(&cfg, &inputs)?;

    let staging = Staging::create(&args.out, "demo")?;
    let stage = |p: &Path| {
        staging
            .path()
            .join(p.strip_prefix(&args.out).expect("inside --out"))
    };
    inputs.instance.save(&stage(&data))?;
    std::fs::create_dir(stage(&run_dir))?;
    let summary = run::write_run(&stage(&run_dir), &cfg, &inputs, &result)?;
    crate::plot::plot_run(&stage(&run_dir), &run_dir)?;
    let growth = norm_growth(&result);
    let opt = inputs.instance.optimal_tokens();
    let demo_summary = DemoSummary {
        tool: TOOL,
        command: "demo",
        instance: "TF-SVM visualization1 (spec tf-as-svm.md §4.1)",
        optimal_tokens: opt.clone(),
        selected_equal_optimal: summary.selected == opt,
        w_norm_at: growth.clone(),
        run: &summary,
    };
    write_json(&staging.path().join("summary.json"), &demo_summary)?;
    staging.commit()?;

    println!(
        "attnsvm demo: TF-SVM visualization1 instance (n = 2, T = 3, d = 2, cross-attention),"
    );
    println!("W trained from 0 by exact-direction normalized GD (lr {LR}, logistic loss).");
    println!(
        "  after {} updates: loss {:.4e}, ‖W‖_F {:.4}, min_i max_t s_it {:.9}",
        summary.iterations, summary.final_loss, summary.w_norm, summary.min_max_prob
    );
    let verdict = if demo_summary.selected_equal_optimal {
        "= the globally optimal tokens opt"
    } else {
        "≠ the globally optimal tokens opt"
    };
    println!("  selected tokens {:?} {verdict} {opt:?}", summary.selected);
    let steps: Vec<String> = growth
        .iter()
        .map(|(k, nrm)| format!("k={k}: {nrm:.2}"))
        .collect();
    println!("  ‖W_k‖_F growth: {}", steps.join(", "));
    if summary.iterations > 0 {
        println!(
            "  ‖W_k‖_F / k = {:.4} at the end (normalized GD moves at most lr = {LR} per update):",
            summary.w_norm / summary.iterations as f64
        );
        println!(
            "  W diverges in norm; the theory says W/‖W‖ converges to the Att-SVM direction W^mm."
        );
    }
    println!(
        "  wrote {} (data/, run/ with trace.png and trace.svg)",
        args.out.display()
    );
    Ok(run::outcome(&result))
}

/// `‖W_k‖_F` at k = 10, 100, 1000, … and at the last iteration.
fn norm_growth(result: &TrainResult) -> Vec<(usize, f64)> {
    let records = &result.trajectory.records;
    let last = records.last().map_or(0, |r| r.iter);
    records
        .iter()
        .filter(|r| r.iter == last || (r.iter >= 10 && is_power_of_ten(r.iter)))
        .map(|r| (r.iter, r.w_norm))
        .collect()
}

fn is_power_of_ten(mut k: usize) -> bool {
    while k >= 10 && k.is_multiple_of(10) {
        k /= 10;
    }
    k == 1
}
