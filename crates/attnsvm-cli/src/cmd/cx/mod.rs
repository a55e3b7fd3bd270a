//! `repro convex`: the experiments of "Convexifying Transformers" (spec `rates-and-convex.md`,
//! Paper B, B4–B5); each runs a library experiment (`attnsvm::experiments::convex`), writes its
//! tables and figures, and returns its claims.
//!
//! | experiment | writes |
//! |---|---|
//! | `student-teacher` | `result_content.json`, `result_positional.json`, `curves.csv`, `maps.csv`, `errors` (train/test MSE against time), `attention_content`, `attention_positional` (PNG + SVG) |
//! | `beta-path` | `result.json`, `path.csv`, `path` (active tokens, loss and errors, row norms against β) |
//! | `width` | `result.json`, `width` (trained objectives of 1 and 2 heads against `P*`) |

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;

use attnsvm::data::npy::write_text;
use attnsvm::experiments::convex::{beta_path, student_teacher, width, Regime, StudentTeacher};
use attnsvm::experiments::Claim;

use super::suite::{Experiment, Step};
use crate::figure::{plot_xy, Style, XyPanel};
use crate::heatmap::{plot_heatmaps, HeatPanel};
use crate::output::write_json;
use crate::plot::PALETTE;

/// The suite, in report order.
pub fn experiments() -> Vec<Box<dyn Experiment>> {
    vec![
        Box::new(StudentTeacherExp),
        Box::new(BetaPathExp),
        Box::new(WidthExp),
    ]
}

const REGIMES: [Regime; 2] = [Regime::Content, Regime::Positional];

fn regime_name(r: Regime) -> &'static str {
    match r {
        Regime::Content => "content",
        Regime::Positional => "positional",
    }
}

fn model_color(model: &str) -> plotters::style::RGBColor {
    match model {
        "convex" => PALETTE[0],
        "simplex" => PALETTE[1],
        _ => PALETTE[2],
    }
}

/// `log10` with a floor, for log axes.
fn lg(v: f64) -> f64 {
    v.max(1e-12).log10()
}

struct StudentTeacherExp;

impl Experiment for StudentTeacherExp {
    fn name(&self) -> &'static str {
        "student-teacher"
    }

    fn title(&self) -> &'static str {
        "student–teacher: convex program (9) vs simplex model (8) vs softmax attention, train/test error against time, attention maps (B4.1, B5.1, B5.13)"
    }

    fn run(&self, quick: bool, dir: &Path, step: &Step) -> Result<Vec<Claim>> {
        let mut results = Vec::new();
        for (r, &regime) in REGIMES.iter().enumerate() {
            let progress = |done: usize, total: usize| step.advance(r * total + done, 2 * total);
            let res = student_teacher(quick, regime, &progress)?;
            write_json(
                &dir.join(format!("result_{}.json", regime_name(regime))),
                &res,
            )?;
            attention_figure(dir, &res)?;
            results.push(res);
        }
        let mut curves =
            String::from("regime,model,seed,heads,iteration,seconds,train_mse,test_mse\n");
        let mut maps = String::from("regime,model,head,token,weight,normalized_entropy\n");
        for res in &results {
            let r = regime_name(res.config.regime);
            for c in &res.curves {
                for p in &c.points {
                    let _ = writeln!(
                        curves,
                        "{r},{},{},{},{},{:e},{:e},{:e}",
                        c.model, c.seed, c.heads, p.iteration, p.seconds, p.train_mse, p.test_mse
                    );
                }
            }
            for m in &res.maps {
                for (j, row) in m.weights.chunks(res.config.tokens).enumerate() {
                    for (k, w) in row.iter().enumerate() {
                        let _ = writeln!(
                            maps,
                            "{r},{},{j},{k},{w:e},{:e}",
                            m.model.replace(',', ";"),
                            m.normalized_entropy
                        );
                    }
                }
            }
        }
        write_text(&dir.join("curves.csv"), &curves)?;
        write_text(&dir.join("maps.csv"), &maps)?;
        let mut panels = Vec::new();
        for res in &results {
            let r = regime_name(res.config.regime);
            for (train, what) in [(true, "train"), (false, "test")] {
                let mut p = XyPanel::new(
                    format!("{r} teacher: {what} MSE"),
                    "seconds",
                    &format!("{what} MSE"),
                    true,
                    true,
                );
                let mut labelled = Vec::new();
                for c in &res.curves {
                    let label = if labelled.contains(&c.model) {
                        String::new()
                    } else {
                        labelled.push(c.model.clone());
                        format!("{} ({} heads)", c.model, c.heads)
                    };
                    let pts = c
                        .points
                        .iter()
                        .map(|q| {
                            let e = if train { q.train_mse } else { q.test_mse };
                            (lg(q.seconds.max(1e-5)), lg(e))
                        })
                        .collect();
                    p.add(label, pts, model_color(&c.model), Style::Line);
                }
                let floor = lg(res.noise_floor);
                let (x0, x1) = (-5.0, p_max_x(&p));
                if !train {
                    p.add(
                        "noise floor σ²",
                        vec![(x0, floor), (x1, floor)],
                        PALETTE[5],
                        Style::Dashed,
                    );
                }
                panels.push(p);
            }
        }
        plot_xy(
            dir,
            "errors",
            "student–teacher: mean squared error against wall time (β shared, chosen on the convex path)",
            &panels,
            2,
            (1300, 1000),
        )?;
        Ok(results.iter().flat_map(StudentTeacher::claims).collect())
    }
}

fn p_max_x(p: &XyPanel) -> f64 {
    p.series
        .iter()
        .flat_map(|s| s.points.iter().map(|q| q.0))
        .filter(|v| v.is_finite())
        .fold(-5.0, f64::max)
}

fn attention_figure(dir: &Path, res: &StudentTeacher) -> Result<()> {
    let n = res.config.tokens;
    let panels: Vec<HeatPanel> = res
        .maps
        .iter()
        .map(|m| HeatPanel {
            title: format!("{} — entropy {:.2}", m.model, m.normalized_entropy),
            rows: m.heads,
            cols: n,
            values: m.weights.clone(),
            row_label: "head".into(),
            col_label: "token".into(),
        })
        .collect();
    let r = regime_name(res.config.regime);
    plot_heatmaps(
        dir,
        &format!("attention_{r}"),
        &format!("attention maps, {r} teacher (normalized entropy: 0 one-hot, 1 uniform)"),
        &panels,
        2,
        (1500, 900),
    )?;
    Ok(())
}

struct BetaPathExp;

impl Experiment for BetaPathExp {
    fn name(&self) -> &'static str {
        "beta-path"
    }

    fn title(&self) -> &'static str {
        "the β path of (9): Z = 0 at β_max, the first token, active tokens, Carathéodory bound, loss (B5.6–B5.9)"
    }

    fn run(&self, quick: bool, dir: &Path, step: &Step) -> Result<Vec<Claim>> {
        let res = beta_path(quick, &|done, total| step.advance(done, total))?;
        write_json(&dir.join("result.json"), &res)?;
        let mut csv = String::from("beta,beta_frac,status,rel_gap,active_tokens,reduced_tokens,loss,objective,train_mse,valid_mse,test_mse,iterations,seconds\n");
        for p in &res.points {
            let _ = writeln!(
                csv,
                "{:e},{:e},{:?},{:e},{},{},{:e},{:e},{:e},{:e},{:e},{},{:e}",
                p.beta,
                p.beta_frac,
                p.status,
                p.rel_gap,
                p.active_tokens,
                p.reduced_tokens,
                p.loss,
                p.objective,
                p.train_mse,
                p.valid_mse,
                p.test_mse,
                p.iterations,
                p.seconds
            );
        }
        write_text(&dir.join("path.csv"), &csv)?;
        let x = |p: &attnsvm::experiments::convex::PathPoint| p.beta_frac.log10();
        let mut active = XyPanel::new("active tokens", "β / β_max", "tokens", true, false);
        active.add(
            "active",
            res.points
                .iter()
                .map(|p| (x(p), p.active_tokens as f64))
                .collect(),
            PALETTE[0],
            Style::LinePoints,
        );
        active.add(
            "after Carathéodory",
            res.points
                .iter()
                .map(|p| (x(p), p.reduced_tokens as f64))
                .collect(),
            PALETTE[1],
            Style::Dashed,
        );
        let mut errors = XyPanel::new("errors", "β / β_max", "MSE", true, true);
        for (k, (name, f)) in [
            (
                "train",
                (|p: &attnsvm::experiments::convex::PathPoint| p.train_mse) as fn(&_) -> f64,
            ),
            ("validation", |p| p.valid_mse),
            ("test", |p| p.test_mse),
        ]
        .into_iter()
        .enumerate()
        {
            errors.add(
                name,
                res.points.iter().map(|p| (x(p), lg(f(p)))).collect(),
                PALETTE[k],
                Style::LinePoints,
            );
        }
        let mut norms = XyPanel::new("row norms ‖z_k‖", "β / β_max", "‖z_k‖", true, false);
        for k in 0..res.config.tokens {
            let label = if k == res.argmax_token {
                format!("token {k} (first to activate)")
            } else {
                String::new()
            };
            norms.add(
                label,
                res.points.iter().map(|p| (x(p), p.row_norms[k])).collect(),
                if k == res.argmax_token {
                    PALETTE[3]
                } else {
                    PALETTE[0]
                },
                Style::Line,
            );
        }
        plot_xy(
            dir,
            "path",
            "β path of the token group lasso (9), warm-started from β_max",
            &[active, errors, norms],
            1,
            (1650, 540),
        )?;
        Ok(res.claims())
    }
}

struct WidthExp;

impl Experiment for WidthExp {
    fn name(&self) -> &'static str {
        "width"
    }

    fn title(&self) -> &'static str {
        "printed vs corrected: the h = 1 counterexample and the loss-weight flag (B-T2, B5.3, B5.4)"
    }

    fn run(&self, quick: bool, dir: &Path, step: &Step) -> Result<Vec<Claim>> {
        if !step.advance(0, 1) {
            return Err(step.interrupted());
        }
        let res = width(quick)?;
        write_json(&dir.join("result.json"), &res)?;
        let mut p = XyPanel::new(
            "trained objective (8) per seed",
            "seed",
            "objective",
            false,
            false,
        );
        let pts = |v: &[f64]| v.iter().enumerate().map(|(s, &o)| (s as f64, o)).collect();
        p.add("1 head", pts(&res.one_head), PALETTE[1], Style::Points);
        p.add("2 heads", pts(&res.two_heads), PALETTE[2], Style::Points);
        let last = res.one_head.len().saturating_sub(1) as f64;
        p.add(
            "convex optimum P* = 62/256",
            vec![(0.0, res.convex), (last, res.convex)],
            PALETTE[0],
            Style::Dashed,
        );
        plot_xy(
            dir,
            "width",
            "width counterexample (N = n = 2, d = 1, β = 1/8): one head cannot reach the convex optimum",
            &[p],
            1,
            (900, 560),
        )?;
        Ok(res.claims())
    }
}
