//! `attnsvm tokens`: token scores `γ_it = y_i vᵀx_it`, the globally optimal tokens, and whether a
//! selection α is globally or locally optimal (spec `tf-as-svm.md` §2.1, §2.3). Local optimality
//! needs the max-margin solution `W^mm_α`, so the Att-SVM of α is solved: α is locally optimal when
//! it is feasible and every selected token scores strictly higher than its support tokens.

use std::path::{Path, PathBuf};

use anyhow::Result;
use attnsvm::solvers::svm::tokens::{selection_report, SelectionReport};
use attnsvm::solvers::svm::{AttSvm, Norm, Status};
use clap::Args;
use serde::Serialize;

use super::svm::{status_line, warn_unfinished, LayoutSummary, SelectionArgs, SolveArgs};
use crate::error::bad_input;
use crate::output::{write_atomically, write_json, TOOL};
use crate::Outcome;

#[derive(Debug, Args)]
#[command(
    after_help = "Prints, per sequence (per query position with --seq2seq), the scores of \
    the visible tokens, the optimal token(s), the selected token and its support tokens (by margin \
    and by dual), then the verdict. Ties: scores within a relative 1e-12 of the best are all \
    optimal, and a selected token must beat a support token by more than that.
Exit codes: 0 for every status, 1 I/O failure, 2 bad input."
)]
pub struct TokensArgs {
    #[command(flatten)]
    pub selection: SelectionArgs,
    #[command(flatten)]
    pub solve: SolveArgs,
    /// Also write the analysis as JSON to FILE
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

#[derive(Debug, Serialize)]
struct TokensJson<'a> {
    tool: &'static str,
    command: &'static str,
    data: &'a Path,
    alpha_source: &'a str,
    layout: LayoutSummary,
    norm: Norm,
    objective: f64,
    duality_gap: f64,
    solver: &'a str,
    message: &'a str,
    #[serde(flatten)]
    report: &'a SelectionReport,
}

pub fn run(args: TokensArgs) -> Result<Outcome> {
    let settings = args.solve.settings();
    settings.validate()?;
    let selection = args.selection.load()?;
    let problem = selection.problem()?;
    if let Some(json) = &args.json {
        check_json_path(json, &selection.inputs(&args.selection.data))?;
    }

    let sol = AttSvm::new(&problem, settings)?.solve();
    let report = selection_report(&selection.instance, &problem, &sol)?;

    if let Some(json) = &args.json {
        let value = TokensJson {
            tool: TOOL,
            command: "tokens",
            data: &args.selection.data,
            alpha_source: &selection.source,
            layout: selection.layout_summary(),
            norm: sol.norm,
            objective: sol.objective,
            duality_gap: sol.kkt.duality_gap,
            solver: &sol.info.solver,
            message: &sol.info.message,
            report: &report,
        };
        write_atomically(json, |tmp| write_json(tmp, &value))?;
    }

    warn_unfinished(&sol);
    println!("alpha {}", selection.source);
    for r in &report.samples {
        let at = r.position.map_or(String::new(), |k| format!(", query {k}"));
        let scores: Vec<String> = r.scores.iter().map(|g| format!("{g:.6}")).collect();
        let mark = if r.globally_optimal {
            "optimal"
        } else {
            "not optimal"
        };
        let support = if sol.status == Status::Infeasible {
            String::new()
        } else {
            format!(
                ", support {:?} (margin) {:?} (dual)",
                r.support_by_margin, r.support_by_dual
            )
        };
        println!(
            "sequence {}{at}: γ [{}], optimal {:?}, selected {} ({mark}){support}",
            r.sequence,
            scores.join(", "),
            r.optimal,
            r.selected
        );
    }
    for v in &report.violations {
        let how = match (v.by_margin, v.by_dual) {
            (true, true) => "by margin and by dual",
            (true, false) => "by margin",
            _ => "by dual",
        };
        let at = v.position.map_or(String::new(), |k| format!(", query {k}"));
        println!(
            "  sequence {}{at}: selected token {} (γ {:.6}) does not beat support token {} \
             (γ {:.6}, support {how})",
            v.sequence, v.selected, v.gamma_selected, v.token, v.gamma_token
        );
    }
    println!("{}", status_line(&sol, None));
    println!("{}", verdict(&report));
    if let Some(json) = &args.json {
        println!("wrote {}", json.display());
    }
    Ok(Outcome::Done)
}

fn verdict(r: &SelectionReport) -> String {
    let yes = |b: bool| if b { "yes" } else { "no" };
    let local = match r.feasible {
        Some(true) => format!(
            "{} by margin, {} by dual",
            yes(r.locally_optimal_by_margin),
            yes(r.locally_optimal_by_dual)
        ),
        Some(false) => "no (the Att-SVM is infeasible)".to_string(),
        None => format!("undecided (the solve ended {:?})", r.status),
    };
    format!(
        "globally optimal: {}; locally optimal: {local}",
        yes(r.globally_optimal)
    )
}

/// `--json` must not name one of the inputs nor a directory.
fn check_json_path(json: &Path, inputs: &[PathBuf]) -> Result<()> {
    if json.is_dir() || json.file_name().is_none() {
        return Err(bad_input!("--json {}: name a file", json.display()));
    }
    if let Ok(canon) = std::fs::canonicalize(json) {
        for input in inputs {
            if std::fs::canonicalize(input).is_ok_and(|i| i == canon) {
                return Err(bad_input!(
                    "--json {}: would replace the input {}",
                    json.display(),
                    input.display()
                ));
            }
        }
    }
    Ok(())
}
