//! `repro primal-dual`: the experiments of "A Primal-Dual Framework for Transformers and Neural
//! Networks" at small scale (spec `primal-dual.md` §4); each runs a library experiment
//! (`attnsvm_nn::experiments`), writes its tables and figures, and returns its claims.
//!
//! | experiment | writes |
//! |---|---|
//! | `digits`, `vowels`, `retrieval` | `result.json` (every run with its epochs), `runs.csv`, `table.md` (accuracy mean ± std, head distance, ρ, FLOPs), `accuracy` (test accuracy against layer FLOPs and against head distance, one marker per seed) |
//! | `cost` | `result.json`, `analytic.csv`, `measured.csv`, `ratios` (counted FLOP and memory ratios against N with the closed forms), `measured` (wall time and peak heap against N and D) |

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use plotters::style::RGBColor;

use attnsvm::data::npy::write_text;
use attnsvm::experiments::Claim;
use attnsvm_nn::experiments::accuracy::{accuracy, Accuracy, VARIANTS};
use attnsvm_nn::experiments::cost::{cost, Cost, KINDS};
use attnsvm_nn::experiments::Task;

use super::suite::{Experiment, Step};
use crate::figure::{plot_xy, Style, XyPanel};
use crate::output::write_json;
use crate::plot::PALETTE;

/// The suite, in report order.
pub fn experiments() -> Vec<Box<dyn Experiment>> {
    let mut v: Vec<Box<dyn Experiment>> = Task::ALL
        .into_iter()
        .map(|t| Box::new(AccuracyExp(t)) as Box<dyn Experiment>)
        .collect();
    v.push(Box::new(CostExp));
    v
}

fn color(variant: &str) -> RGBColor {
    let i = VARIANTS.iter().position(|v| *v == variant).unwrap_or(0);
    PALETTE[i % PALETTE.len()]
}

struct AccuracyExp(Task);

impl Experiment for AccuracyExp {
    fn name(&self) -> &'static str {
        self.0.name()
    }

    fn title(&self) -> &'static str {
        match self.0 {
            Task::Digits => "digits (8×8, 2×2 patches, 2D SH pooling): accuracy and head redundancy of every attention variant, 3 seeds (spec §4.3)",
            Task::Vowels => "JapaneseVowels (padded series, 1D SH pooling): accuracy and head redundancy of every attention variant, 3 seeds (spec §4.3)",
            Task::Retrieval => "long-range retrieval (N = 128, same motif in both halves?): accuracy and head redundancy of every attention variant, 3 seeds (spec §4.2–§4.3)",
        }
    }

    fn run(&self, quick: bool, dir: &Path, step: &Step) -> Result<Vec<Claim>> {
        let res = accuracy(self.0, quick, &|d, t| step.advance(d, t))?;
        write_json(&dir.join("result.json"), &res)?;
        let mut csv =
            String::from("variant,seed,epoch,train_loss,train_accuracy,test_accuracy,lr,seconds\n");
        for r in &res.runs {
            for m in &r.history {
                let _ = writeln!(
                    csv,
                    "{},{},{},{:e},{},{},{:e},{:e}",
                    r.variant,
                    r.seed,
                    m.epoch,
                    m.train_loss,
                    m.train_accuracy,
                    m.test_accuracy,
                    m.lr,
                    m.seconds
                );
            }
        }
        write_text(&dir.join("runs.csv"), &csv)?;
        write_text(&dir.join("table.md"), &table(&res))?;
        accuracy_figure(dir, &res)?;
        Ok(res.claims())
    }
}

/// The accuracy table in Markdown.
pub fn table(res: &Accuracy) -> String {
    let pct = |(m, s): (f64, f64)| format!("{:.1} ± {:.1}", 100.0 * m, 100.0 * s);
    let mut t = format!(
        "{}: {} train / {} test sequences of {} tokens, {} seeds, {} epochs (AdamW, lr {}, batch {})\n\n\
         | variant | final test accuracy % | best test accuracy % (\"best test\" protocol) | head distance | ρ | layer FLOPs / softmax | seconds per run |\n|---|---|---|---|---|---|---|\n",
        res.task, res.train_size, res.test_size, res.tokens, res.seeds, res.train.epochs, res.train.lr, res.train.batch_size
    );
    for r in &res.rows {
        let _ = writeln!(
            t,
            "| {} | {} | {} | {} | {:.4} | {} | {:.1} |",
            r.variant,
            pct(r.final_test),
            pct(r.best_test),
            r.head_distance
                .map_or("–".into(), |(m, s)| format!("{m:.3} ± {s:.3}")),
            r.rho,
            r.layer_flops_vs_softmax
                .map_or("–".into(), |f| format!("{f:.3}")),
            r.seconds
        );
    }
    t
}

fn accuracy_figure(dir: &Path, res: &Accuracy) -> Result<()> {
    let mut by_flops = XyPanel::new(
        format!("{}: final test accuracy against layer FLOPs", res.task),
        "attention-layer FLOPs / softmax",
        "test accuracy",
        false,
        false,
    );
    let mut by_distance = XyPanel::new(
        format!("{}: final test accuracy against head distance", res.task),
        "mean TV distance between heads (higher: less redundant)",
        "test accuracy",
        false,
        false,
    );
    for row in &res.rows {
        let runs: Vec<_> = res
            .runs
            .iter()
            .filter(|r| r.variant == row.variant)
            .collect();
        if let Some(f) = row.layer_flops_vs_softmax {
            by_flops.add(
                row.variant.clone(),
                runs.iter().map(|r| (f, r.final_test)).collect(),
                color(&row.variant),
                Style::Points,
            );
        }
        by_distance.add(
            row.variant.clone(),
            runs.iter()
                .filter_map(|r| r.head_distance.map(|d| (d, r.final_test)))
                .collect(),
            color(&row.variant),
            Style::Points,
        );
    }
    plot_xy(
        dir,
        "accuracy",
        &format!("{}: every attention variant, one marker per seed", res.task),
        &[by_flops, by_distance],
        1,
        (1400, 600),
    )?;
    Ok(())
}

struct CostExp;

impl Experiment for CostExp {
    fn name(&self) -> &'static str {
        "cost"
    }

    fn title(&self) -> &'static str {
        "cost of softmax, BN, SH, BN+SH and linear attention: counted FLOP and memory ratios against the closed forms, measured wall time and peak heap against N and D (spec §2.2, §4.3.2, checks 11 and 14)"
    }

    fn run(&self, quick: bool, dir: &Path, step: &Step) -> Result<Vec<Claim>> {
        let res = cost(quick, &|d, t| step.advance(d, t))?;
        write_json(&dir.join("result.json"), &res)?;
        let mut a = String::from(
            "n,d,layer_ratio,layer_formula,block_ratio,block_formula,memory_ratio,bn_ratio\n",
        );
        for p in &res.analytic {
            let _ = writeln!(
                a,
                "{},{},{},{},{},{},{},{}",
                p.n,
                p.d,
                p.layer_ratio,
                p.layer_formula,
                p.block_ratio,
                p.block_formula,
                p.memory_ratio,
                p.bn_ratio
            );
        }
        write_text(&dir.join("analytic.csv"), &a)?;
        let mut m = String::from("kind,n,d,ms,peak_bytes,layer_macs\n");
        for p in &res.measured {
            let peak = p.peak_bytes.map_or(String::new(), |b| b.to_string());
            let _ = writeln!(
                m,
                "{},{},{},{},{peak},{}",
                p.kind, p.n, p.d, p.ms, p.layer_macs
            );
        }
        write_text(&dir.join("measured.csv"), &m)?;
        cost_figures(dir, &res)?;
        Ok(res.claims())
    }
}

fn lg(v: f64) -> f64 {
    v.max(1e-12).log10()
}

fn cost_figures(dir: &Path, res: &Cost) -> Result<()> {
    let mut layer = XyPanel::new(
        format!("attention layer, SH / softmax FLOPs (ρ = {})", res.rho),
        "sequence length N",
        "FLOP ratio",
        true,
        false,
    );
    let mut block = XyPanel::new(
        "encoder block with a 4× MLP, SH / softmax FLOPs",
        "sequence length N",
        "FLOP ratio",
        true,
        false,
    );
    let mut memory = XyPanel::new(
        "attention-probability memory, SH / softmax",
        "sequence length N",
        "memory ratio",
        true,
        false,
    );
    for (i, d) in [64, 192, 384].into_iter().enumerate() {
        let pts: Vec<_> = res.analytic.iter().filter(|a| a.d == d).collect();
        let series = |f: fn(&attnsvm_nn::experiments::cost::Analytic) -> f64| {
            pts.iter()
                .map(|a| (lg(a.n as f64), f(a)))
                .collect::<Vec<_>>()
        };
        layer.add(
            format!("D = {d}, counted"),
            series(|a| a.layer_ratio),
            PALETTE[i],
            Style::Points,
        );
        layer.add(
            format!("D = {d}, (2D + Nρ)/(2D + N)"),
            series(|a| a.layer_formula),
            PALETTE[i],
            Style::Line,
        );
        block.add(
            format!("D = {d}, counted"),
            series(|a| a.block_ratio),
            PALETTE[i],
            Style::Points,
        );
        block.add(
            format!("D = {d}, (6D + Nρ)/(6D + N)"),
            series(|a| a.block_formula),
            PALETTE[i],
            Style::Line,
        );
        memory.add(
            format!("D = {d}"),
            series(|a| a.memory_ratio),
            PALETTE[i],
            Style::LinePoints,
        );
    }
    plot_xy(
        dir,
        "ratios",
        "analytic cost of Attention-SH relative to softmax attention",
        &[layer, block, memory],
        1,
        (1800, 560),
    )?;
    let mut panels = Vec::new();
    for against_n in [true, false] {
        let fixed = if against_n {
            format!("D = {}", res.width)
        } else {
            format!("N = {}", res.length)
        };
        let mut time = XyPanel::new(
            format!("forward + backward, batch {}, {fixed}", res.batch),
            &format!(
                "{} (log)",
                if against_n {
                    "sequence length N"
                } else {
                    "width D"
                }
            ),
            "milliseconds (log)",
            true,
            true,
        );
        let mut mem = XyPanel::new(
            format!("peak heap of one pass, {fixed}"),
            &format!(
                "{} (log)",
                if against_n {
                    "sequence length N"
                } else {
                    "width D"
                }
            ),
            "MB (log)",
            true,
            true,
        );
        for (i, kind) in KINDS.iter().enumerate() {
            let mut pts: Vec<_> = res
                .measured
                .iter()
                .filter(|m| {
                    m.kind == *kind
                        && if against_n {
                            m.d == res.width
                        } else {
                            m.n == res.length
                        }
                })
                .map(|m| (if against_n { m.n } else { m.d } as f64, m))
                .collect();
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            time.add(
                *kind,
                pts.iter().map(|(x, m)| (lg(*x), lg(m.ms))).collect(),
                PALETTE[i],
                Style::LinePoints,
            );
            let peak: Vec<_> = pts
                .iter()
                .filter_map(|(x, m)| m.peak_bytes.map(|b| (lg(*x), lg(b as f64 / 1e6))))
                .collect();
            mem.add(*kind, peak, PALETTE[i], Style::LinePoints);
        }
        panels.push(time);
        panels.push(mem);
    }
    plot_xy(
        dir,
        "measured",
        "measured cost of one attention layer (4 heads; SH ratios 1, 2, 4, 4)",
        &panels,
        2,
        (1400, 1000),
    )?;
    Ok(())
}
