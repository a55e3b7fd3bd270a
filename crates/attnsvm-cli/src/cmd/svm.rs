//! `attnsvm svm`: solve the Att-SVM of an instance directory for a selection α (spec `tf-as-svm.md`
//! §2.2, §2.5):
//!
//! ```text
//! W^mm_α = argmin ‖W‖  s.t.  (x_{iα_i} − x_it)ᵀ W z_i ≥ 1   for every sample i and visible t ≠ α_i
//! ```
//!
//! with the Frobenius (W-training) or nuclear ((K,Q)-training) norm. A sample is a sequence
//! (cross-attention, or self-attention with the query at `--query-pos`), or one query position of a
//! sequence with `--seq2seq`; `--causal` hides the tokens after the query. Every status is an answer
//! (exit 0): `Solved` with its KKT certificate, `Infeasible` with its Farkas certificate; the two
//! others are written too, with a warning.

use std::path::{Path, PathBuf};

use anyhow::Result;
use attnsvm::data::{npy, read_alpha, Instance};
use attnsvm::solvers::svm::tokens::{optimal_selection, selection_report, SelectionReport};
use attnsvm::solvers::svm::{
    AttSvm, AttSvmProblem, Kkt, Layout, Norm, Solver, Status, SvmSettings, SvmSolution,
};
use clap::Args;
use serde::Serialize;

use super::{name_of, names, serde_enum, with_default};
use crate::output::{check_destination, write_json, Staging, TOOL};
use crate::Outcome;

/// Which instance, which samples, which selected tokens: shared by `svm` and `tokens`.
#[derive(Debug, Args)]
pub struct SelectionArgs {
    /// Instance directory: X.npy, y.npy, v.npy, optional Z.npy and alpha.npy
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// Selected tokens: `opt` (the globally optimal tokens, the first on ties) or an integer .npy
    /// file of shape (n,), or (n, T) with --seq2seq [default: DIR/alpha.npy when present and not
    /// --seq2seq, else opt]
    #[arg(long, value_name = "opt|FILE")]
    pub alpha: Option<String>,
    /// Self-attention: the query is token q of each sequence (0-based; ignored for
    /// cross-attention) [default: 0]
    #[arg(long, value_name = "q", conflicts_with = "seq2seq")]
    pub query_pos: Option<usize>,
    /// Self-attention: one sample per query position k (SAtt-SVM); --alpha is then (n, T)
    #[arg(long)]
    pub seq2seq: bool,
    /// Self-attention: a query at position k sees only the tokens 0..=k
    #[arg(long)]
    pub causal: bool,
}

/// An instance with its layout and selection, validated.
pub struct Selection {
    pub instance: Instance,
    pub layout: Layout,
    /// `n` entries, or `n·T` with `--seq2seq`.
    pub alpha: Vec<usize>,
    /// Where α came from: `opt`, or the file.
    pub source: String,
    /// The alpha file, when α came from one.
    pub file: Option<PathBuf>,
}

impl SelectionArgs {
    /// Load the instance and resolve α. Every error is bad input, caught before any work.
    pub fn load(&self) -> Result<Selection> {
        let instance = Instance::load(&self.data)?;
        let layout = Layout {
            query_position: self.query_pos.unwrap_or(0),
            seq2seq: self.seq2seq,
            causal: self.causal,
        };
        let (alpha, file) = match self.alpha.as_deref() {
            Some("opt") => (optimal_selection(&instance, layout)?, None),
            Some(path) => {
                let file = PathBuf::from(path);
                let alpha = if self.seq2seq {
                    read_alpha_seq2seq(&file, instance.n, instance.t)?
                } else {
                    read_alpha(&file, instance.n, instance.t)?
                };
                (alpha, Some(file))
            }
            None => match &instance.alpha {
                Some(alpha) if !self.seq2seq => (alpha.clone(), Some(self.data.join("alpha.npy"))),
                _ => (optimal_selection(&instance, layout)?, None),
            },
        };
        Ok(Selection {
            source: file
                .as_ref()
                .map_or("opt".to_string(), |f| f.display().to_string()),
            instance,
            layout,
            alpha,
            file,
        })
    }
}

impl Selection {
    /// The Att-SVM of this selection (checks α against the layout: causal ranges, cross-attention).
    pub fn problem(&self) -> Result<AttSvmProblem<'_>> {
        Ok(AttSvmProblem::att_svm(
            &self.instance,
            &self.alpha,
            self.layout,
        )?)
    }

    /// The files a command must never replace.
    pub fn inputs(&self, data: &Path) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = ["X", "Z", "y", "v", "alpha"]
            .iter()
            .map(|f| data.join(format!("{f}.npy")))
            .collect();
        v.push(data.to_path_buf());
        v.extend(self.file.clone());
        v
    }

    /// The layout as `summary.json` records it.
    pub fn layout_summary(&self) -> LayoutSummary {
        let self_attention = self.instance.is_self_attention();
        LayoutSummary {
            attention: if self_attention { "self" } else { "cross" },
            query_pos: (self_attention && !self.layout.seq2seq)
                .then_some(self.layout.query_position),
            seq2seq: self.layout.seq2seq,
            causal: self.layout.causal,
        }
    }
}

/// A per-position selection: int64 (or int32) of shape (n, T), entries in 0..T.
fn read_alpha_seq2seq(path: &Path, n: usize, t: usize) -> Result<Vec<usize>> {
    let npy_err = |msg: String| attnsvm::Error::Npy {
        path: path.to_path_buf(),
        msg,
    };
    let a = npy::read_i64(path)?;
    if a.shape != [n, t] {
        return Err(npy_err(format!(
            "wrong shape {:?}: --seq2seq expects ({n}, {t}), one selected token per query position",
            a.shape
        ))
        .into());
    }
    if let Some(k) = a.data.iter().position(|&s| s < 0 || s as usize >= t) {
        return Err(npy_err(format!(
            "index {} at sequence {}, query position {} is out of range 0..{t}",
            a.data[k],
            k / t,
            k % t
        ))
        .into());
    }
    Ok(a.data.into_iter().map(|s| s as usize).collect())
}

/// The settings flags shared by `svm` and `tokens`.
#[derive(Debug, Args)]
pub struct SolveArgs {
    #[arg(long, value_parser = serde_enum::<Norm>(names::NORM),
          help = with_default("Norm minimized: Frobenius (W-training) or nuclear ((K,Q)-training)",
                              name_of(&s().norm)))]
    pub norm: Option<Norm>,
    #[arg(long, value_parser = serde_enum::<Solver>(names::SOLVER),
          help = with_default("Engine: the norm's dual engine, or Clarabel's interior point method",
                              name_of(&s().solver)))]
    pub solver: Option<Solver>,
    #[arg(long, value_name = "ε", allow_negative_numbers = true,
          help = with_default("Target relative duality gap and KKT residuals", format!("{:e}", s().tol)))]
    pub tol: Option<f64>,
    #[arg(long, value_name = "N",
          help = with_default("Epochs (dual), outer iterations (nuclear), iterations (ipm)", s().max_iter))]
    pub max_iter: Option<usize>,
    /// Seconds; the best point so far is returned as MaxIterations [default: none]
    #[arg(long, value_name = "S", allow_negative_numbers = true)]
    pub time_limit: Option<f64>,
    #[arg(long, value_name = "ε", allow_negative_numbers = true,
          help = with_default("Support token: margin ≤ 1 + ε, or dual > ε·max λ", format!("{:e}", s().support_tol)))]
    pub support_tol: Option<f64>,
}

fn s() -> SvmSettings {
    SvmSettings::default()
}

impl SolveArgs {
    pub fn settings(&self) -> SvmSettings {
        let d = s();
        SvmSettings {
            norm: self.norm.unwrap_or(d.norm),
            solver: self.solver.unwrap_or(d.solver),
            tol: self.tol.unwrap_or(d.tol),
            max_iter: self.max_iter.unwrap_or(d.max_iter),
            time_limit: self.time_limit.unwrap_or(d.time_limit),
            support_tol: self.support_tol.unwrap_or(d.support_tol),
            ..d
        }
    }
}

#[derive(Debug, Args)]
#[command(
    after_help = "Writes W.npy (d×d), duals.npy and margins.npy (one entry per constraint), \
    constraints.npy (one row per constraint: sample, sequence, query position or −1, selected \
    token, other token), alpha.npy (the selection solved for), support.json (support tokens by \
    margin and by dual as [sample, sequence, token] triples) and summary.json (status, objective, \
    KKT residuals and duality gap, or the Farkas certificate of an infeasible selection).
Exit codes: 0 for every status (a warning on stderr when the solve stopped at a limit or failed \
    numerically), 1 I/O failure, 2 bad input."
)]
pub struct SvmArgs {
    #[command(flatten)]
    pub selection: SelectionArgs,
    #[command(flatten)]
    pub solve: SolveArgs,
    /// Output directory to create (replaces an earlier `svm` output there)
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// The samples and where their query comes from.
#[derive(Debug, Serialize)]
pub struct LayoutSummary {
    /// `cross` (Z.npy) or `self`.
    pub attention: &'static str,
    /// The query position (self-attention without --seq2seq).
    pub query_pos: Option<usize>,
    pub seq2seq: bool,
    pub causal: bool,
}

/// One constraint with positive weight in a Farkas certificate.
#[derive(Debug, Serialize)]
struct FarkasWeight {
    constraint: usize,
    sample: usize,
    sequence: usize,
    position: Option<usize>,
    selected: usize,
    token: usize,
    weight: f64,
}

#[derive(Debug, Serialize)]
struct FarkasSummary {
    /// `‖Σλ_k A_k‖_F / max_k ‖A_k‖_F` (0 for an exact certificate).
    residual: f64,
    samples: Vec<usize>,
    sequences: Vec<usize>,
    /// The nonzero weights `λ_k` (they sum to 1).
    weights: Vec<FarkasWeight>,
}

#[derive(Debug, Serialize)]
struct SvmSummary<'a> {
    tool: &'static str,
    command: &'static str,
    data: &'a Path,
    /// `opt` or the alpha file.
    alpha_source: &'a str,
    layout: LayoutSummary,
    n: usize,
    #[serde(rename = "T")]
    t: usize,
    d: usize,
    n_samples: usize,
    n_constraints: usize,
    settings: &'a SvmSettings,
    status: Status,
    norm: Norm,
    /// `‖W‖` in the program's norm.
    objective: f64,
    duality_gap: f64,
    kkt: Kkt,
    /// Support tokens (constraints) by margin and by dual.
    support_tokens_by_margin: usize,
    support_tokens_by_dual: usize,
    /// Every sample selects a globally optimal token (ties allowed).
    globally_optimal: bool,
    /// Solved, and every selected token beats its support tokens (spec §2.3).
    locally_optimal_by_margin: bool,
    locally_optimal_by_dual: bool,
    iterations: usize,
    seconds: f64,
    solver: &'a str,
    message: &'a str,
    farkas: Option<FarkasSummary>,
    files: Vec<String>,
}

/// `support.json`: support tokens as `[sample, sequence, token]`.
#[derive(Debug, Serialize)]
struct SupportFile {
    columns: [&'static str; 3],
    by_margin: Vec<[usize; 3]>,
    by_dual: Vec<[usize; 3]>,
}

pub fn run(args: SvmArgs) -> Result<Outcome> {
    let settings = args.solve.settings();
    settings.validate()?;
    let selection = args.selection.load()?;
    let problem = selection.problem()?;
    let inputs = selection.inputs(&args.selection.data);
    let protected: Vec<&Path> = inputs.iter().map(PathBuf::as_path).collect();
    check_destination(&args.out, "svm", &protected)?;

    let sol = AttSvm::new(&problem, settings.clone())?.solve();
    let report = selection_report(&selection.instance, &problem, &sol)?;

    let staging = Staging::create(&args.out, "svm")?;
    let files = write_outputs(staging.path(), &selection, &problem, &sol)?;
    let inst = &selection.instance;
    let summary = SvmSummary {
        tool: TOOL,
        command: "svm",
        data: &args.selection.data,
        alpha_source: &selection.source,
        layout: selection.layout_summary(),
        n: inst.n,
        t: inst.t,
        d: inst.d,
        n_samples: problem.n_samples(),
        n_constraints: problem.n_constraints(),
        settings: &settings,
        status: sol.status,
        norm: sol.norm,
        objective: sol.objective,
        duality_gap: sol.kkt.duality_gap,
        kkt: sol.kkt,
        support_tokens_by_margin: sol.support_by_margin.len(),
        support_tokens_by_dual: sol.support_by_dual.len(),
        globally_optimal: report.globally_optimal,
        locally_optimal_by_margin: report.locally_optimal_by_margin,
        locally_optimal_by_dual: report.locally_optimal_by_dual,
        iterations: sol.info.iterations,
        seconds: sol.info.seconds,
        solver: &sol.info.solver,
        message: &sol.info.message,
        farkas: farkas_summary(&problem, &sol),
        files,
    };
    write_json(&staging.path().join("summary.json"), &summary)?;
    staging.commit()?;

    warn_unfinished(&sol);
    println!(
        "{}; wrote {}",
        status_line(&sol, Some(&report)),
        args.out.display()
    );
    Ok(Outcome::Done)
}

/// Write every array and `support.json`; return the file names (with `summary.json`).
fn write_outputs(
    dir: &Path,
    selection: &Selection,
    problem: &AttSvmProblem,
    sol: &SvmSolution,
) -> Result<Vec<String>> {
    let m = problem.n_constraints();
    npy::write_mat(&dir.join("W.npy"), &sol.w)?;
    npy::write_f64(&dir.join("duals.npy"), &[m], &sol.duals)?;
    npy::write_f64(&dir.join("margins.npy"), &[m], &sol.margins)?;
    let samples = problem.samples();
    let rows: Vec<i64> = problem
        .constraints()
        .iter()
        .flat_map(|c| {
            let smp = samples[c.sample as usize];
            [
                c.sample as i64,
                smp.sequence as i64,
                smp.position.map_or(-1, |k| k as i64),
                c.plus as i64,
                c.minus as i64,
            ]
        })
        .collect();
    npy::write_i64(&dir.join("constraints.npy"), &[m, 5], &rows)?;
    let inst = &selection.instance;
    let shape: Vec<usize> = if selection.layout.seq2seq {
        vec![inst.n, inst.t]
    } else {
        vec![inst.n]
    };
    let alpha: Vec<i64> = selection.alpha.iter().map(|&a| a as i64).collect();
    npy::write_i64(&dir.join("alpha.npy"), &shape, &alpha)?;
    let triples = |ks: &[usize]| -> Vec<[usize; 3]> {
        ks.iter()
            .map(|&k| {
                let c = problem.constraints()[k];
                let s = c.sample as usize;
                [s, samples[s].sequence, c.minus as usize]
            })
            .collect()
    };
    let support = SupportFile {
        columns: ["sample", "sequence", "token"],
        by_margin: triples(&sol.support_by_margin),
        by_dual: triples(&sol.support_by_dual),
    };
    write_json(&dir.join("support.json"), &support)?;
    let mut files: Vec<String> = [
        "W.npy",
        "alpha.npy",
        "constraints.npy",
        "duals.npy",
        "margins.npy",
        "summary.json",
        "support.json",
    ]
    .map(String::from)
    .to_vec();
    files.sort();
    Ok(files)
}

fn farkas_summary(problem: &AttSvmProblem, sol: &SvmSolution) -> Option<FarkasSummary> {
    let f = sol.farkas.as_ref()?;
    let samples = problem.samples();
    let weights = f
        .constraints
        .iter()
        .map(|&k| {
            let c = problem.constraints()[k];
            let smp = samples[c.sample as usize];
            FarkasWeight {
                constraint: k,
                sample: c.sample as usize,
                sequence: smp.sequence,
                position: smp.position,
                selected: c.plus as usize,
                token: c.minus as usize,
                weight: f.multipliers[k],
            }
        })
        .collect();
    Some(FarkasSummary {
        residual: f.residual,
        samples: f.samples.clone(),
        sequences: f.sequences.clone(),
        weights,
    })
}

/// One line for a person: status, objective, gap, time (and for infeasible selections, why).
/// With `report`, a solved line ends with the verdict on the selection.
pub fn status_line(sol: &SvmSolution, report: Option<&SelectionReport>) -> String {
    let head = format!("Att-SVM ({})", name_of(&sol.norm));
    let time = format!("{:.3} s", sol.info.seconds);
    match sol.status {
        Status::Infeasible => {
            let residual = sol.farkas.as_ref().map_or(f64::NAN, |f| f.residual);
            let why = if sol.info.message.is_empty() {
                String::new()
            } else {
                format!(" ({})", sol.info.message)
            };
            format!("{head}: Infeasible{why}, Farkas residual {residual:.1e}, {time}")
        }
        status => {
            let Some(report) = report.filter(|_| status == Status::Solved) else {
                return format!(
                    "{head}: {status:?}, objective {:.6}, duality gap {:.1e}, {time}",
                    sol.objective, sol.kkt.duality_gap
                );
            };
            let local = match (
                report.locally_optimal_by_margin,
                report.locally_optimal_by_dual,
            ) {
                (true, true) => "locally optimal",
                (false, false) => "not locally optimal",
                _ => "locally optimal by one support definition only",
            };
            let global = if report.globally_optimal {
                "globally optimal"
            } else {
                "not globally optimal"
            };
            format!(
                "{head}: {status:?}, objective {:.6}, duality gap {:.1e}, {time}, selection {global}, {local}",
                sol.objective, sol.kkt.duality_gap
            )
        }
    }
}

/// A warning on stderr when the solve did not reach an answer (its outputs are still written).
pub fn warn_unfinished(sol: &SvmSolution) {
    if matches!(sol.status, Status::MaxIterations | Status::NumericalError) {
        let why = if sol.info.message.is_empty() {
            String::new()
        } else {
            format!(": {}", sol.info.message)
        };
        eprintln!(
            "warning: the {} solve ended with status {:?}{why}; the outputs hold its last point",
            sol.info.solver, sol.status
        );
    }
}
