//! `attnsvm convex`: the token-group lasso of convex attention (spec `rates-and-convex.md`, Paper B,
//! programs (9) and (12)) on a directory with `X.npy` (N, n, d) and `y.npy`:
//!
//! ```text
//! (9)   y (N,):   min_Z        w Σ_i L(⟨X_i, Z⟩_F, y_i)         + β Σ_k ‖z_k‖₂
//! (12)  y (N, c): min_{Z_1..c} w Σ_i Σ_l L(⟨X_i, Z_l⟩_F, y_il)  + β Σ_l Σ_k ‖z_{l,k}‖₂
//! ```
//!
//! or, with `--gates M`, program (14) (attention + gated ReLU with `M` fixed gates
//! `D_ij = 1[u_1jᵀ X_i u_2j ≥ 0]` from seeded Gaussian `u_1`, `u_2`), solved as (12) on gated token
//! copies, at one β (`--beta`) or along a geometric β path from `β_max` down to `r·β_max`
//! (`--beta-path K --beta-min-ratio r`, warm-started). `L` is the squared loss `(ŷ − y)²` (real
//! targets) or the logistic loss (labels ±1); `w` is the loss weight, 1 (the corrected program,
//! default) or 0.5 (as printed in (9)). Every solve carries its Fenchel duality-gap certificate.
//! Every status exits 0; one that is not `Solved` gives a warning. The heads of the non-convex
//! model are recovered from the (last) solution (Proposition 1, corrected indexing: one one-hot
//! head per nonzero group) and checked: `heads.json`, and in `summary.json` how far their
//! predictions and objective are from the convex ones.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Result;
use attnsvm::data::npy;
use attnsvm::solvers::glasso::gated::{self, Gates};
use attnsvm::solvers::glasso::{
    path, Glasso, GlassoProblem, GlassoSettings, GlassoSolution, Logistic, Squared, Status,
};
use clap::Args;
use serde::Serialize;

use super::with_default;
use crate::error::bad_input;
use crate::output::{check_destination, write_json, Staging, TOOL};
use crate::Outcome;

#[derive(Debug, Args)]
#[command(
    after_help = "Input: DIR/X.npy (N, n, d) and DIR/y.npy, (N,) for scalar outputs (program (9)) \
    or (N, c) for c outputs (program (12)); real targets for the squared loss, ±1 for the logistic.
With --gates M: program (14); Z gets a gate axis (M, n, d) or (c, M, n, d), and gates.npy (N, M), \
    u1.npy (M, n), u2.npy (M, d) are written.
Writes Z.npy ((n, d), or (c, n, d); on a path, the last point's), heads.json (the recovered \
    one-hot heads: gate, token, value, output), summary.json (status, objective, \
    duality gap, β, β_max, active tokens, time) and, with --beta-path, path.csv (one row per β: \
    beta, objective, loss, penalty, duality_gap, relative_gap, active_tokens, status, iterations, \
    seconds) and Z_path.npy (K, n, d) or (K, c, n, d).
Exit codes: 0 for every status (a warning on stderr when a solve is not Solved), 1 I/O failure, \
    2 bad input."
)]
pub struct ConvexArgs {
    /// Directory with X.npy (N, n, d) and y.npy (N,) or (N, c)
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// Regularization β > 0 (Z = 0 exactly when β ≥ β_max)
    #[arg(
        long,
        value_name = "B",
        allow_negative_numbers = true,
        required_unless_present = "beta_path",
        conflicts_with = "beta_path"
    )]
    pub beta: Option<f64>,
    /// Solve at K ≥ 2 values of β, geometric from β_max down to r·β_max, each warm-started
    #[arg(long, value_name = "K")]
    pub beta_path: Option<usize>,
    /// The smallest β of the path relative to β_max, in (0, 1)
    #[arg(
        long,
        value_name = "r",
        allow_negative_numbers = true,
        requires = "beta_path",
        default_value_t = 0.01
    )]
    pub beta_min_ratio: f64,
    /// The loss L: squared (ŷ − y)², or logistic log(1 + e^{−yŷ}) with labels ±1
    #[arg(long, value_parser = ["squared", "logistic"])]
    pub loss: String,
    /// Loss weight w: 1 (the corrected program (9)) or 0.5 (as printed in the paper)
    #[arg(long, value_name = "w", value_parser = ["1", "0.5"], default_value = "1")]
    pub loss_weight: String,
    #[arg(long, value_name = "ε", allow_negative_numbers = true,
          help = with_default("Target relative duality gap (P − D)/max(|P|, |D|)",
                              format!("{:e}", GlassoSettings::default().tol)))]
    pub tol: Option<f64>,
    #[arg(long, value_name = "N",
          help = with_default("FISTA steps per solve", GlassoSettings::default().max_iter))]
    pub max_iter: Option<usize>,
    /// Seconds per solve; the last iterate is returned as MaxIterations [default: none]
    #[arg(long, value_name = "S", allow_negative_numbers = true)]
    pub time_limit: Option<f64>,
    /// Program (14): M fixed gates from seeded Gaussian (u1, u2) in front of the heads
    #[arg(long, value_name = "M")]
    pub gates: Option<usize>,
    /// Seed of the gate vectors u1, u2
    #[arg(long, value_name = "S", requires = "gates", default_value_t = 0)]
    pub gate_seed: u64,
    /// Output directory to create (replaces an earlier `convex` output there)
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// `X` and `y` of an instance directory, shapes checked.
struct Data {
    x: Vec<f64>,
    y: Vec<f64>,
    /// (N, n, d, c); `scalar` when `y` is (N,).
    dims: (usize, usize, usize, usize),
    scalar: bool,
}

fn load(dir: &Path) -> Result<Data> {
    let (xp, yp) = (dir.join("X.npy"), dir.join("y.npy"));
    let x = npy::read_f64(&xp)?;
    let &[nn, n, d] = x.shape.as_slice() else {
        return Err(bad_input!(
            "{}: shape {:?}, expected (N, n, d): samples, tokens, features",
            xp.display(),
            x.shape
        ));
    };
    if nn == 0 || n == 0 || d == 0 {
        return Err(bad_input!("{}: empty shape {:?}", xp.display(), x.shape));
    }
    let y = npy::read_f64(&yp)?;
    let (c, scalar) = match *y.shape.as_slice() {
        [m] if m == nn => (1, true),
        [m, c] if m == nn && c > 0 => (c, false),
        _ => {
            return Err(bad_input!(
                "{}: shape {:?}, expected ({nn},) or ({nn}, c) to match X.npy {:?}",
                yp.display(),
                y.shape,
                x.shape
            ))
        }
    };
    if let Some(i) = x.data.iter().position(|v| !v.is_finite()) {
        let (s, k) = (i / (n * d), (i / d) % n);
        return Err(bad_input!(
            "{}: value {} at sample {s}, token {k}, feature {} is not finite",
            xp.display(),
            x.data[i],
            i % d
        ));
    }
    if let Some(i) = y.data.iter().position(|v| !v.is_finite()) {
        return Err(bad_input!(
            "{}: target {i} is {} (not finite)",
            yp.display(),
            y.data[i]
        ));
    }
    Ok(Data {
        x: x.data,
        y: y.data,
        dims: (nn, n, d, c),
        scalar,
    })
}

#[derive(Debug, Serialize)]
struct Point {
    beta: f64,
    status: Status,
    objective: f64,
    loss: f64,
    penalty: f64,
    /// `P − D ≥ P − P*` (absolute).
    duality_gap: f64,
    /// `(P − D) / max(|P|, |D|)`, what `tol` bounds.
    relative_gap: f64,
    active_tokens: usize,
    active_groups: usize,
    iterations: usize,
    seconds: f64,
}

impl Point {
    fn of(s: &GlassoSolution) -> Self {
        Point {
            beta: s.beta,
            status: s.status,
            objective: s.objective,
            loss: s.loss,
            penalty: s.penalty,
            duality_gap: s.certificate.gap,
            relative_gap: s.certificate.rel_gap,
            active_tokens: s.active_tokens,
            active_groups: s.active_groups,
            iterations: s.info.iterations,
            seconds: s.info.seconds,
        }
    }
}

#[derive(Debug, Serialize)]
struct ConvexSummary<'a> {
    tool: &'static str,
    command: &'static str,
    data: &'a Path,
    /// `9` (scalar outputs), `12` (vector outputs) or `14` (gated).
    program: u32,
    loss: &'a str,
    loss_weight: f64,
    #[serde(rename = "N")]
    n_samples: usize,
    n: usize,
    d: usize,
    c: usize,
    beta_max: f64,
    settings: &'a GlassoSettings,
    /// `M`, the number of gates of program (14).
    gates: Option<usize>,
    /// The heads recovered from the last solution, checked against it.
    recovery: Recovery,
    /// The single solve, or the path's last (smallest β) point.
    #[serde(flatten)]
    last: Point,
    /// The path's points (absent for a single β).
    path: Option<Vec<Point>>,
    /// Whole command time (solves and certificates), seconds.
    time: f64,
    files: Vec<String>,
}

pub fn run(args: ConvexArgs) -> Result<Outcome> {
    let start = std::time::Instant::now();
    let d0 = GlassoSettings::default();
    let settings = GlassoSettings {
        tol: args.tol.unwrap_or(d0.tol),
        max_iter: args.max_iter.unwrap_or(d0.max_iter),
        time_limit: args.time_limit.unwrap_or(d0.time_limit),
        ..d0
    };
    settings.validate()?;
    if let Some(b) = args.beta {
        if !(b.is_finite() && b > 0.0) {
            return Err(bad_input!("--beta {b}: β must be positive and finite"));
        }
    }
    if let Some(k) = args.beta_path {
        if k < 2 {
            return Err(bad_input!(
                "--beta-path {k}: a path needs K ≥ 2 values of β"
            ));
        }
        let r = args.beta_min_ratio;
        if !(r > 0.0 && r < 1.0) {
            return Err(bad_input!("--beta-min-ratio {r}: must be in (0, 1)"));
        }
    }
    let loss_weight: f64 = args.loss_weight.parse()?;
    if args.gates == Some(0) {
        return Err(bad_input!(
            "--gates 0: program (14) needs at least one gate"
        ));
    }
    let data = load(&args.data)?;
    let (nn, n, d, c) = data.dims;
    let gates = match args.gates {
        Some(m) => Gates::sample(&data.x, (nn, n, d), m, args.gate_seed)?,
        None => Gates::open(nn, 1),
    };
    let m = gates.n_gates;
    let tokens: Cow<[f64]> = if args.gates.is_some() {
        Cow::Owned(gates.lift(&data.x, (nn, n, d))?)
    } else {
        Cow::Borrowed(&data.x)
    };
    let problem = match args.loss.as_str() {
        "logistic" => GlassoProblem::new((nn, m * n, d), &tokens, data.y.clone(), c, Logistic),
        _ => GlassoProblem::new((nn, m * n, d), &tokens, data.y.clone(), c, Squared),
    }
    .map_err(|e| anyhow::Error::new(e).context(format!("{}", args.data.join("y.npy").display())))?
    .with_loss_weight(loss_weight)?;
    let inputs = [
        args.data.as_path(),
        &args.data.join("X.npy"),
        &args.data.join("y.npy"),
    ];
    check_destination(&args.out, "convex", &inputs)?;

    let beta_max = problem.beta_max();
    let solutions = match (args.beta, args.beta_path) {
        (Some(beta), _) => vec![Glasso::new(&problem, beta, settings.clone())?.solve()],
        (None, Some(k)) => {
            if beta_max <= 0.0 {
                return Err(bad_input!(
                    "β_max = 0 (the loss gradient at Z = 0 vanishes): Z = 0 for every β, no path"
                ));
            }
            let r = args.beta_min_ratio;
            let betas: Vec<f64> = (0..k)
                .map(|j| beta_max * r.powf(j as f64 / (k - 1) as f64))
                .collect();
            path(&problem, &betas, &settings)?
        }
        (None, None) => unreachable!("clap requires --beta or --beta-path"),
    };
    let last = solutions.last().expect("at least one solve");

    let staging = Staging::create(&args.out, "convex")?;
    let dir = staging.path();
    let zshape = |lead: Option<usize>| -> Vec<usize> {
        lead.into_iter()
            .chain((!data.scalar).then_some(c))
            .chain(args.gates)
            .chain([n, d])
            .collect()
    };
    npy::write_f64(&dir.join("Z.npy"), &zshape(None), &last.z)?;
    let (heads, recovery) = recover(&problem, &data, &gates, last)?;
    write_json(&dir.join("heads.json"), &heads)?;
    let mut files = vec![
        "Z.npy".to_string(),
        "summary.json".to_string(),
        "heads.json".to_string(),
    ];
    if let Some((u1, u2)) = &gates.generators {
        let open: Vec<f64> = gates.open.iter().map(|&o| f64::from(u8::from(o))).collect();
        npy::write_f64(&dir.join("gates.npy"), &[nn, m], &open)?;
        npy::write_f64(&dir.join("u1.npy"), &[m, n], u1)?;
        npy::write_f64(&dir.join("u2.npy"), &[m, d], u2)?;
        files.extend(["gates.npy", "u1.npy", "u2.npy"].map(String::from));
    }
    let is_path = args.beta_path.is_some();
    if is_path {
        let all: Vec<f64> = solutions.iter().flat_map(|s| s.z.iter().copied()).collect();
        npy::write_f64(
            &dir.join("Z_path.npy"),
            &zshape(Some(solutions.len())),
            &all,
        )?;
        npy::write_text(&dir.join("path.csv"), &to_csv(&solutions))?;
        files.extend(["Z_path.npy".to_string(), "path.csv".to_string()]);
    }
    files.sort();
    let summary = ConvexSummary {
        tool: TOOL,
        command: "convex",
        data: &args.data,
        program: match (args.gates, data.scalar) {
            (Some(_), _) => 14,
            (None, true) => 9,
            (None, false) => 12,
        },
        gates: args.gates,
        loss: &args.loss,
        loss_weight,
        n_samples: nn,
        n,
        d,
        c,
        beta_max,
        settings: &settings,
        recovery,
        last: Point::of(last),
        path: is_path.then(|| solutions.iter().map(Point::of).collect()),
        time: start.elapsed().as_secs_f64(),
        files,
    };
    write_json(&dir.join("summary.json"), &summary)?;
    staging.commit()?;

    for s in solutions.iter().filter(|s| s.status != Status::Solved) {
        eprintln!(
            "warning: the solve at β = {} ended with status {:?}{}; its outputs hold the last iterate",
            s.beta,
            s.status,
            if s.info.message.is_empty() {
                String::new()
            } else {
                format!(": {}", s.info.message)
            }
        );
    }
    println!(
        "token group lasso ({}, w = {loss_weight}): {:?} at β = {:.6e} (β_max = {beta_max:.6e}), \
         objective {:.10e}, duality gap {:.1e}, {} active tokens of {}{}, {} recovered heads, {:.3} s; wrote {}",
        args.loss,
        last.status,
        last.beta,
        last.objective,
        last.certificate.gap,
        last.active_tokens,
        m * n,
        if is_path {
            format!(" ({} points)", solutions.len())
        } else {
            String::new()
        },
        summary.recovery.heads,
        summary.time,
        args.out.display()
    );
    Ok(Outcome::Done)
}

/// One recovered head in `heads.json`.
#[derive(Debug, Serialize)]
struct HeadOut {
    gate: usize,
    /// The token its one-hot attention selects.
    token: usize,
    value: Vec<f64>,
    output: Vec<f64>,
}

/// How well the recovered heads reproduce the convex solution.
#[derive(Debug, Serialize)]
struct Recovery {
    heads: usize,
    /// `max_i,l |f_l(X_i) − ⟨X_i, Z_l⟩|` (the heads evaluated from the tokens).
    max_prediction_difference: f64,
    /// The non-convex objective ((8), (11) or (13)) at the heads.
    nonconvex_objective: f64,
    /// `|nonconvex − convex| / |convex|`.
    relative_objective_difference: f64,
}

fn recover(
    problem: &GlassoProblem,
    data: &Data,
    gates: &Gates,
    sol: &GlassoSolution,
) -> Result<(Vec<HeadOut>, Recovery)> {
    let (nn, n, d, _) = data.dims;
    let r = gated::recover(problem, &data.x, (nn, n, d), gates, sol)?;
    let out = r
        .heads
        .iter()
        .map(|h| HeadOut {
            gate: h.gate,
            token: h.token(),
            value: h.value.clone(),
            output: h.output.clone(),
        })
        .collect();
    let recovery = Recovery {
        heads: r.heads.len(),
        max_prediction_difference: r.max_prediction_difference,
        nonconvex_objective: r.nonconvex_objective,
        relative_objective_difference: r.relative_objective_difference,
    };
    Ok((out, recovery))
}

/// `path.csv`: one row per β, in the order solved (decreasing).
fn to_csv(solutions: &[GlassoSolution]) -> String {
    let mut s = String::from(
        "beta,objective,loss,penalty,duality_gap,relative_gap,active_tokens,status,iterations,seconds\n",
    );
    for p in solutions.iter().map(Point::of) {
        let _ = writeln!(
            s,
            "{:e},{:e},{:e},{:e},{:e},{:e},{},{:?},{},{:e}",
            p.beta,
            p.objective,
            p.loss,
            p.penalty,
            p.duality_gap,
            p.relative_gap,
            p.active_tokens,
            p.status,
            p.iterations,
            p.seconds
        );
    }
    s
}
