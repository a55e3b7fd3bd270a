//! `attnsvm path`: the regularization path of an instance directory (spec `tf-as-svm.md` §2.4):
//!
//! ```text
//! W̄(R) = argmin_{‖W‖ ≤ R} L(W)   (fro, nuc),    argmin_{½(‖K‖²+‖Q‖²) ≤ R} L(KQᵀ)   (kq)
//! ```
//!
//! optionally restricted to the cone `C_μ(W^mm_α)` (`--mu`, the local path; Frobenius ball only).
//! Each point is reported with its stationarity residual and its correlation with the Att-SVM
//! solution of the matching norm (Frobenius for `fro`, nuclear for `nuc` and `kq`) for the
//! selection α. Every status exits 0; a point that is not `Solved` gives a warning.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Result;
use attnsvm::data::{npy, read_alpha, Instance};
use attnsvm::model::{Head, Loss, Objective};
use attnsvm::solvers::path::{Ball, PathPoint, PathProblem, PathSettings, RegPath, Status};
use attnsvm::solvers::svm::tokens::optimal_selection;
use attnsvm::solvers::svm::{
    AttSvm, AttSvmProblem, Layout, Norm, Status as SvmStatus, SvmSettings,
};
use clap::Args;
use serde::Serialize;

use super::{name_of, names, serde_enum, with_default};
use crate::output::{check_destination, write_json, Staging, TOOL};
use crate::Outcome;

#[derive(Debug, Args)]
#[command(
    after_help = "Writes path.csv (one row per radius: radius, status, residual, iterations, loss, \
    log_loss, log_excess_loss, corr and 1 − corr with the matching Att-SVM solution, ‖W‖_F, ‖W‖_⋆, \
    ½(‖K‖²+‖Q‖²), whether the ball and the cone are active, seconds, the top-attention token of each \
    sequence, space-separated), W.npy (the last point's W; \
    K.npy and Q.npy too for kq), W_svm.npy (the reference Att-SVM solution, when solved) and \
    summary.json.
Exit codes: 0 for every status (a warning on stderr when a point is not Solved), 1 I/O failure, \
    2 bad input."
)]
pub struct PathArgs {
    /// Instance directory: X.npy, y.npy, v.npy, optional Z.npy and alpha.npy
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    #[arg(long, value_parser = serde_enum::<Ball>(names::BALL),
          help = "Constraint set: Frobenius ball, nuclear ball, or the (K,Q) ball ½(‖K‖²+‖Q‖²) ≤ R")]
    pub ball: Ball,
    /// Radii, positive and strictly increasing, comma-separated (e.g. 1,10,100)
    #[arg(
        long,
        value_name = "R1,R2,…",
        value_delimiter = ',',
        required = true,
        allow_negative_numbers = true
    )]
    pub radii: Vec<f64>,
    /// Selection α of the reference Att-SVM and of the cone: `opt` or an integer .npy file of
    /// shape (n,) [default: DIR/alpha.npy when present, else opt]
    #[arg(long, value_name = "opt|FILE")]
    pub alpha: Option<String>,
    /// Local path: restrict to the cone ⟨W, W_mm(α)⟩ ≥ (1−μ)‖W‖‖W_mm(α)‖, μ ∈ (0, 1) (fro only)
    #[arg(long, value_name = "μ", allow_negative_numbers = true)]
    pub mu: Option<f64>,
    #[arg(long, value_parser = serde_enum::<Loss>(names::LOSS),
          help = with_default("Loss ℓ of the risk (linear head)", "logistic"))]
    pub loss: Option<Loss>,
    /// Self-attention: the query is token q of each sequence [default: 0]
    #[arg(long, value_name = "q")]
    pub query_pos: Option<usize>,
    #[arg(long, value_name = "ε", allow_negative_numbers = true,
          help = with_default("Target stationarity residual of every point", format!("{:e}", s().tol)))]
    pub tol: Option<f64>,
    #[arg(long, value_name = "N",
          help = with_default("Accepted steps per radius", s().max_iter))]
    pub max_iter: Option<usize>,
    /// Seconds for the whole path; later radii are skipped [default: none]
    #[arg(long, value_name = "S", allow_negative_numbers = true)]
    pub time_limit: Option<f64>,
    /// Seed of the (K,Q) initialization [default: 0]
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Output directory to create (replaces an earlier `path` output there)
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

fn s() -> PathSettings {
    PathSettings::default()
}

#[derive(Debug, Serialize)]
struct Reference {
    /// `fro` or `nuc`.
    norm: Norm,
    status: SvmStatus,
    /// `‖W^mm‖` in its norm (when solved).
    objective: Option<f64>,
}

#[derive(Debug, Serialize)]
struct PathSummary<'a> {
    tool: &'static str,
    command: &'static str,
    data: &'a Path,
    ball: Ball,
    radii: &'a [f64],
    mu: Option<f64>,
    loss: Loss,
    alpha_source: &'a str,
    alpha: &'a [usize],
    n: usize,
    #[serde(rename = "T")]
    t: usize,
    d: usize,
    settings: &'a PathSettings,
    status: Status,
    reference: Reference,
    points: usize,
    solved_points: usize,
    max_residual: f64,
    final_corr: Option<f64>,
    final_one_minus_corr: Option<f64>,
    /// The top-attention token of each sequence at the last radius (compare with `alpha`: a path
    /// that follows another branch selects other tokens).
    final_selected: Option<&'a [usize]>,
    iterations: usize,
    evaluations: usize,
    seconds: f64,
    files: Vec<String>,
}

pub fn run(args: PathArgs) -> Result<Outcome> {
    let settings = PathSettings {
        tol: args.tol.unwrap_or(s().tol),
        max_iter: args.max_iter.unwrap_or(s().max_iter),
        time_limit: args.time_limit.unwrap_or(s().time_limit),
        seed: args.seed.unwrap_or(s().seed),
        ..s()
    };
    settings.validate()?;
    let loss = args.loss.unwrap_or(Loss::Logistic);
    let instance = Instance::load(&args.data)?;
    let layout = Layout {
        query_position: args.query_pos.unwrap_or(0),
        ..Layout::default()
    };
    let (alpha, source, alpha_file) = match args.alpha.as_deref() {
        Some("opt") => (
            optimal_selection(&instance, layout)?,
            "opt".to_string(),
            None,
        ),
        Some(f) => {
            let file = PathBuf::from(f);
            let a = read_alpha(&file, instance.n, instance.t)?;
            (a, f.to_string(), Some(file))
        }
        None => match &instance.alpha {
            Some(a) => (
                a.clone(),
                args.data.join("alpha.npy").display().to_string(),
                None,
            ),
            None => (
                optimal_selection(&instance, layout)?,
                "opt".to_string(),
                None,
            ),
        },
    };
    let svm_problem = AttSvmProblem::att_svm(&instance, &alpha, layout)?;
    let mut risk = Objective::new(&instance, Head::Linear, loss, layout.query_position)?;
    // Validate the radii, μ and the ball before solving any SVM; the cone's axis W_mm(α) needs
    // the SVM, so the identity stands in for it here.
    let dummy_axis = faer::Mat::from_fn(instance.d, instance.d, |i, j| (i == j) as u8 as f64);
    let mut probe = PathProblem::new(args.ball, args.radii.clone());
    if let Some(mu) = args.mu {
        probe = probe.with_cone(dummy_axis, mu);
    }
    probe.validate(instance.d)?;

    let mut inputs: Vec<PathBuf> = ["X", "Z", "y", "v", "alpha"]
        .iter()
        .map(|f| args.data.join(format!("{f}.npy")))
        .collect();
    inputs.push(args.data.clone());
    inputs.extend(alpha_file);
    let protected: Vec<&Path> = inputs.iter().map(PathBuf::as_path).collect();
    check_destination(&args.out, "path", &protected)?;

    let solve = |norm: Norm| {
        let svm = SvmSettings {
            norm,
            ..SvmSettings::default()
        };
        AttSvm::new(&svm_problem, svm).map(|s| s.solve())
    };
    let norm = match args.ball {
        Ball::Frobenius => Norm::Frobenius,
        Ball::Nuclear | Ball::Kq => Norm::Nuclear,
    };
    let reference_sol = solve(norm)?;
    let solved = reference_sol.status == SvmStatus::Solved;
    let mut problem = PathProblem::new(args.ball, args.radii.clone());
    if solved {
        problem = problem.with_reference(reference_sol.w.clone());
    } else {
        eprintln!(
            "warning: the {} Att-SVM of the selection ended with status {:?}; no correlations are reported",
            name_of(&norm),
            reference_sol.status
        );
    }
    if let Some(mu) = args.mu {
        let axis = if norm == Norm::Frobenius {
            reference_sol.clone()
        } else {
            solve(Norm::Frobenius)?
        };
        if axis.status != SvmStatus::Solved {
            return Err(crate::error::bad_input!(
                "--mu: the cone's axis W_mm(α) does not exist: the Frobenius Att-SVM of the \
                 selection ended with status {:?}",
                axis.status
            ));
        }
        problem = problem.with_cone(axis.w, mu);
    }
    let path = RegPath::new(&mut risk, problem, settings.clone())?.solve();

    let staging = Staging::create(&args.out, "path")?;
    let dir = staging.path();
    npy::write_text(&dir.join("path.csv"), &to_csv(&path.points))?;
    let mut files = vec!["path.csv".to_string(), "summary.json".to_string()];
    if let Some(last) = path.points.last() {
        npy::write_mat(&dir.join("W.npy"), &last.w)?;
        files.push("W.npy".into());
        if let Some((k, q)) = &last.kq {
            npy::write_mat(&dir.join("K.npy"), k)?;
            npy::write_mat(&dir.join("Q.npy"), q)?;
            files.extend(["K.npy".to_string(), "Q.npy".to_string()]);
        }
    }
    if solved {
        npy::write_mat(&dir.join("W_svm.npy"), &reference_sol.w)?;
        files.push("W_svm.npy".into());
    }
    files.sort();
    let last = path.points.last();
    let summary = PathSummary {
        tool: TOOL,
        command: "path",
        data: &args.data,
        ball: args.ball,
        radii: &args.radii,
        mu: args.mu,
        loss,
        alpha_source: &source,
        alpha: &alpha,
        n: instance.n,
        t: instance.t,
        d: instance.d,
        settings: &settings,
        status: path.status,
        reference: Reference {
            norm,
            status: reference_sol.status,
            objective: solved.then_some(reference_sol.objective),
        },
        points: path.points.len(),
        solved_points: path
            .points
            .iter()
            .filter(|p| p.status == Status::Solved)
            .count(),
        max_residual: path.points.iter().map(|p| p.residual).fold(0.0, f64::max),
        final_corr: last.and_then(|p| p.corr),
        final_one_minus_corr: last.and_then(|p| p.one_minus_corr),
        final_selected: last.map(|p| p.selected.as_slice()),
        iterations: path.iterations,
        evaluations: path.evaluations,
        seconds: path.seconds,
        files,
    };
    write_json(&dir.join("summary.json"), &summary)?;
    staging.commit()?;

    for p in path.points.iter().filter(|p| p.status != Status::Solved) {
        eprintln!(
            "warning: radius {} ended with status {:?} (residual {:.1e} > tol {:.1e})",
            p.radius, p.status, p.residual, settings.tol
        );
    }
    if path.points.len() < args.radii.len() {
        eprintln!(
            "warning: the time limit stopped the path after {} of {} radii",
            path.points.len(),
            args.radii.len()
        );
    }
    let corr = last
        .and_then(|p| p.corr)
        .map_or(String::new(), |c| format!(", final corr with W_mm {c:.6}"));
    println!(
        "path ({}{}): {:?}, {} radii, max residual {:.1e}{corr}, {:.3} s; wrote {}",
        name_of(&args.ball),
        args.mu.map_or(String::new(), |m| format!(", cone μ = {m}")),
        path.status,
        path.points.len(),
        summary.max_residual,
        path.seconds,
        args.out.display()
    );
    Ok(Outcome::Done)
}

/// `path.csv`: one row per point; empty cells for values that do not apply.
fn to_csv(points: &[PathPoint]) -> String {
    let opt = |x: Option<f64>| x.map_or(String::new(), |v| format!("{v:e}"));
    let flag = |b: Option<bool>| b.map_or(String::new(), |v| v.to_string());
    let mut out = String::from(
        "radius,status,residual,iterations,loss,log_loss,log_excess_loss,corr,one_minus_corr,\
         fro_norm,nuclear_norm,kq_norm,active,cone_active,seconds,selected\n",
    );
    for p in points {
        let _ = writeln!(
            out,
            "{:e},{:?},{:e},{},{:e},{},{},{},{},{:e},{:e},{},{},{},{:e},{}",
            p.radius,
            p.status,
            p.residual,
            p.iterations,
            p.loss,
            opt(p.log_loss),
            opt(p.log_excess_loss),
            opt(p.corr),
            opt(p.one_minus_corr),
            p.fro_norm,
            p.nuclear_norm,
            opt(p.kq_norm),
            p.active,
            flag(p.cone_active),
            p.seconds,
            p.selected
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    out
}
