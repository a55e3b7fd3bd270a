//! `attnsvm repro EXPERIMENT`: the papers' experiments as named, seeded runs that write their
//! numbers (CSV/JSON), figures (PNG/SVG) and a `report.md` that states each claim and whether it
//! held.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};
use serde::Serialize;

use attnsvm::experiments::rates::{self, Quantity, RatesConfig, RatesResult, Setting, TableRow};

use crate::cmd::{names, serde_enum};
use crate::output::{check_destination, write_json, Staging, TOOL};
use crate::plot::{plot_panels, Panel, Series, PALETTE};
use crate::Outcome;

#[derive(Debug, Args)]
pub struct ReproArgs {
    #[command(subcommand)]
    pub experiment: Experiment,
}

#[derive(Debug, Subcommand)]
pub enum Experiment {
    /// Convergence rates of self-attention training (GD, normalized GD, Polyak, joint decoder):
    /// fitted slopes over seeds against the theory's predictions.
    Rates(RatesArgs),
    /// "Transformers as Support Vector Machines": GD paths vs SVM directions (W and (K,Q)),
    /// per-input separators, local convergence, multi-token convergence with the ReLU head, ranks
    /// of the Frobenius vs nuclear solutions, regularization paths.
    #[command(name = "tf-svm")]
    TfSvm(SuiteArgs),
    /// "Max-Margin Token Selection in Attention Mechanism": the prompt p, global vs local
    /// convergence, NGD vs GD, joint (v, p) training, the loss's influence.
    #[command(name = "max-margin")]
    MaxMargin(SuiteArgs),
    /// "Convexifying Transformers": the convex program vs simplex and softmax attention on a
    /// student–teacher task (error against time, attention maps), the β path, the width
    /// counterexample and the loss-weight flag.
    Convex(SuiteArgs),
    /// "A Primal-Dual Framework for Transformers and Neural Networks" at small scale: accuracy
    /// and head redundancy of softmax, linear, sparse, simplex, Attention-BN, -SH and BN+SH on
    /// digits, JapaneseVowels and a long-range retrieval task; FLOP, time and memory against N, D.
    #[command(name = "primal-dual")]
    PrimalDual(PrimalDualArgs),
}

/// `repro primal-dual`: the suite's arguments and the float type of the networks.
#[derive(Debug, Args)]
pub struct PrimalDualArgs {
    #[command(flatten)]
    pub suite: SuiteArgs,
    /// Float type of every network, gradient and optimizer state: f32, or f64 (slower; its own
    /// suite, so an f64 run never resumes into an f32 directory)
    #[arg(long, value_parser = ["f32", "f64"], default_value = "f32")]
    pub precision: String,
}

/// The arguments of the experiment suites.
#[derive(Debug, Args)]
pub struct SuiteArgs {
    /// The quick sizes (seconds; what the tests run) instead of the papers' sizes
    #[arg(long)]
    pub quick: bool,
    /// Output directory: one folder per experiment, report.md, summary.json. Rerunning into the
    /// same directory keeps the experiments that finished (an interrupted run resumes)
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Run only these experiments (comma-separated names)
    #[arg(long, value_name = "NAMES", value_delimiter = ',')]
    pub only: Vec<String>,
    /// Recompute experiments that already finished in DIR
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct RatesArgs {
    /// The quick sizes (seconds; what the tests run) instead of the full ones
    #[arg(long)]
    pub quick: bool,
    /// Data setting: orthonormal tokens (W_mm in closed form), equal non-optimal scores, or
    /// Gaussian tokens (W_mm from the Att-SVM solver)
    #[arg(long, value_parser = serde_enum::<Setting>(names::SETTING), default_value = "orthonormal")]
    pub setting: Setting,
    /// Output directory (rates.json, curves.csv, table.md, report.md, rates.png, rates.svg)
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

pub fn run(args: ReproArgs) -> Result<Outcome> {
    match args.experiment {
        Experiment::Rates(a) => rates_cmd(a),
        Experiment::TfSvm(a) => suite_cmd(
            &a,
            "tf-svm",
            "Transformers as Support Vector Machines: the experiments",
            crate::cmd::tf::experiments(),
        ),
        Experiment::MaxMargin(a) => suite_cmd(
            &a,
            "max-margin",
            "Max-Margin Token Selection in Attention Mechanism: the experiments",
            crate::cmd::mm::experiments(),
        ),
        Experiment::Convex(a) => suite_cmd(
            &a,
            "convex",
            "Convexifying Transformers: the experiments",
            crate::cmd::cx::experiments(),
        ),
        Experiment::PrimalDual(a) => {
            let f64 = a.precision == "f64";
            attnsvm_nn::set_precision(if f64 {
                attnsvm_nn::Precision::F64
            } else {
                attnsvm_nn::Precision::F32
            })?;
            suite_cmd(
                &a.suite,
                if f64 {
                    "primal-dual-f64"
                } else {
                    "primal-dual"
                },
                if f64 {
                    "A Primal-Dual Framework for Transformers and Neural Networks: the experiments (f64)"
                } else {
                    "A Primal-Dual Framework for Transformers and Neural Networks: the experiments"
                },
                crate::cmd::pd::experiments(),
            )
        }
    }
}

fn suite_cmd(
    a: &SuiteArgs,
    suite: &'static str,
    title: &'static str,
    experiments: Vec<Box<dyn crate::cmd::suite::Experiment>>,
) -> Result<Outcome> {
    let run = crate::cmd::suite::SuiteRun {
        suite,
        title,
        out: &a.out,
        quick: a.quick,
        only: &a.only,
        force: a.force,
    };
    crate::cmd::suite::run_suite(&run, &experiments)
}

#[derive(Serialize)]
struct Summary {
    tool: &'static str,
    command: &'static str,
    experiment: &'static str,
    quick: bool,
    seconds: f64,
    claims: usize,
    held: usize,
}

fn rates_cmd(args: RatesArgs) -> Result<Outcome> {
    check_destination(&args.out, "repro", &[])?;
    let sizes = if args.quick {
        RatesConfig::quick()
    } else {
        RatesConfig::full()
    };
    let config = RatesConfig {
        setting: args.setting,
        ..sizes
    };
    let start = std::time::Instant::now();
    let result = rates::run(&config)?;
    let seconds = start.elapsed().as_secs_f64();
    let staging = Staging::create(&args.out, "repro")?;
    let dir = staging.path();
    attnsvm::data::npy::write_text(&dir.join("rates.json"), &result.to_json())?;
    result.write_curves_csv(&dir.join("curves.csv"))?;
    attnsvm::data::npy::write_text(&dir.join("table.md"), &result.table_markdown())?;
    let (report, claims, held) = report(&result, args.quick, seconds);
    attnsvm::data::npy::write_text(&dir.join("report.md"), &report)?;
    plot_panels(
        dir,
        "rates",
        "convergence of self-attention training (mean over seeds)",
        &panels(&result),
        (1800, 480),
    )?;
    let summary = Summary {
        tool: TOOL,
        command: "repro",
        experiment: "rates",
        quick: args.quick,
        seconds,
        claims,
        held,
    };
    write_json(&dir.join("summary.json"), &summary)?;
    staging.commit()?;
    println!(
        "repro rates: {held} of {claims} predicted rates held, {seconds:.1} s; wrote {}",
        args.out.display()
    );
    Ok(Outcome::Done)
}

/// Whether a fitted row agrees with its prediction: a predicted slope `v` holds when the mean over
/// seeds is within `10 %·|v| + 2·std` of it; a bound `b` holds when the mean is `≤ b`.
fn held(r: &TableRow) -> Option<bool> {
    match (r.prediction.slope, r.prediction.at_most) {
        (Some(v), _) => Some((r.mean - v).abs() <= 0.1 * v.abs() + 2.0 * r.std),
        (None, Some(b)) => Some(r.mean <= b),
        (None, None) => None,
    }
}

fn report(result: &RatesResult, quick: bool, seconds: f64) -> (String, usize, usize) {
    let c = &result.config;
    let mut s = String::new();
    let _ = writeln!(s, "# Convergence rates of self-attention training\n");
    let _ = writeln!(
        s,
        "Setting {:?}, n = {}, T = {}, d = {}, {} seeds, {} iterations{}; {seconds:.1} s.\n",
        c.setting,
        c.n,
        c.t,
        c.d,
        c.seeds.len(),
        c.iters,
        if quick { " (quick sizes)" } else { "" }
    );
    let _ = writeln!(
        s,
        "Each row: the rate the theory predicts for a quantity under an optimizer (basis: the spec's \
         tag), the slope fitted on the tail of each seed's curve (mean ± std), and whether it held: a \
         predicted slope holds when the mean is within 10 % of it plus two standard deviations; a \
         bound holds when the mean is below it.\n"
    );
    let _ = writeln!(
        s,
        "| optimizer | quantity | predicted | measured | held | basis |\n|---|---|---|---|---|---|"
    );
    let (mut claims, mut n_held) = (0, 0);
    for r in &result.table {
        let pred = match (r.prediction.slope, r.prediction.at_most) {
            (Some(v), _) => format!("{:?} slope {v:.4}", r.prediction.kind),
            (None, Some(b)) => format!("{:?} slope ≤ {b}", r.prediction.kind),
            (None, None) => "—".into(),
        };
        let verdict = match held(r) {
            Some(true) => {
                claims += 1;
                n_held += 1;
                "yes"
            }
            Some(false) => {
                claims += 1;
                "**no**"
            }
            None => "—",
        };
        let _ = writeln!(
            s,
            "| {} | {} | {pred} | {:.4} ± {:.4} | {verdict} | {} |",
            r.optimizer,
            r.quantity.name(),
            r.mean,
            r.std,
            r.prediction.basis
        );
    }
    let _ = writeln!(s, "\n{n_held} of {claims} predictions held. Curves: `curves.csv`; figure: `rates.png` / `rates.svg`.");
    (s, claims, n_held)
}

/// One panel per quantity, one curve per optimizer: the mean over seeds of `log10` of the
/// quantity at each recorded iteration.
fn panels(result: &RatesResult) -> Vec<Panel> {
    let mut names: Vec<String> = Vec::new();
    for r in &result.runs {
        if !names.contains(&r.optimizer) {
            names.push(r.optimizer.clone());
        }
    }
    let quantities = [
        (Quantity::OneMinusCorr, "1 − corr(W_t, W_mm)", "1 − corr"),
        (Quantity::WNorm, "‖W_t‖_F", "‖W‖_F"),
        (
            Quantity::OffMass,
            "softmax mass off the optimal tokens",
            "off-optimal mass",
        ),
        (Quantity::LossGap, "L − L* (joint: L)", "loss gap"),
    ];
    quantities
        .iter()
        .map(|&(q, title, y_label)| Panel {
            title,
            y_label,
            log_y: true,
            series: names
                .iter()
                .enumerate()
                .map(|(k, name)| Series {
                    label: name.clone(),
                    points: mean_log10(result, name, q),
                    color: PALETTE[k % PALETTE.len()],
                })
                .collect(),
        })
        .collect()
}

fn mean_log10(result: &RatesResult, optimizer: &str, q: Quantity) -> Vec<(f64, f64)> {
    let runs: Vec<_> = result.runs_of(optimizer).collect();
    let Some(first) = runs.first() else {
        return Vec::new();
    };
    let ln10 = std::f64::consts::LN_10;
    (0..first.points.len())
        .filter_map(|i| {
            let vals: Vec<f64> = runs
                .iter()
                .filter_map(|r| r.points.get(i))
                .map(|p| match q {
                    Quantity::OneMinusCorr => p.one_minus_corr.log10(),
                    Quantity::WNorm => p.w_norm.log10(),
                    Quantity::OffMass => p.ln_off_mass / ln10,
                    Quantity::LossGap => p.ln_loss_gap / ln10,
                })
                .collect();
            let m = vals.iter().sum::<f64>() / vals.len() as f64;
            m.is_finite()
                .then_some(((first.points[i].iter + 1) as f64, m))
        })
        .collect()
}
