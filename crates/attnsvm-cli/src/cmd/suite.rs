//! A suite of named experiments written into one directory, resumable: `repro tf-svm` and
//! `repro max-margin`.
//!
//! Layout of `--out DIR`:
//!
//! | path | written |
//! |---|---|
//! | `DIR/summary.json` | at the start (marks DIR as this suite's output) and again at the end |
//! | `DIR/NAME/` | one folder per experiment: CSV/JSON, PNG/SVG figures, and `claims.json` |
//! | `DIR/report.md` | at the end: every claim, what we measured, and whether it held |
//!
//! An experiment's folder is staged in `DIR/.NAME.partial` and renamed into place when it is
//! complete, so a folder with `claims.json` is always a finished experiment. Running the suite again
//! into the same DIR at the same sizes keeps finished experiments and runs only the others (an
//! interrupted run resumes); `--force` recomputes everything. Ctrl-C stops after the current
//! experiment's current step; what was finished is kept and reported.

use std::fmt::Write as _;
use std::fs;
use std::io::IsTerminal;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::{Deserialize, Serialize};

use attnsvm::experiments::Claim;

use crate::error::bad_input;
use crate::output::{check_destination, write_json, TOOL};
use crate::progress;
use crate::Outcome;

/// One experiment of a suite.
pub trait Experiment {
    /// Folder name and the name `--only` takes.
    fn name(&self) -> &'static str;
    /// One line for the report.
    fn title(&self) -> &'static str;
    /// Run at quick or full sizes, write every file into `dir` (an empty folder), return the
    /// claims. Long loops call `step.advance(done, total)` and return early with
    /// [`Step::interrupted`] when it says to stop.
    fn run(&self, quick: bool, dir: &Path, step: &Step) -> Result<Vec<Claim>>;
}

/// Progress within one experiment, and the Ctrl-C check.
pub struct Step<'a> {
    bar: &'a ProgressBar,
    name: &'static str,
}

impl Step<'_> {
    /// Report `done` of `total` units of the current experiment; `false` once Ctrl-C was pressed.
    pub fn advance(&self, done: usize, total: usize) -> bool {
        self.bar
            .set_message(format!("{} {done}/{total}", self.name));
        !progress::interrupted()
    }

    /// The error an experiment returns when [`Step::advance`] said to stop.
    pub fn interrupted(&self) -> anyhow::Error {
        anyhow::Error::new(Interrupted)
    }
}

#[derive(Debug)]
struct Interrupted;

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "interrupted")
    }
}

impl std::error::Error for Interrupted {}

/// `claims.json` of one finished experiment.
#[derive(Serialize, Deserialize)]
struct Finished {
    suite: String,
    experiment: String,
    quick: bool,
    seconds: f64,
    claims: Vec<Claim>,
}

#[derive(Serialize)]
struct Summary<'a> {
    tool: &'static str,
    command: &'static str,
    experiment: &'a str,
    quick: bool,
    complete: bool,
    experiments: Vec<&'static str>,
    claims: usize,
    held: usize,
    seconds: f64,
}

/// What the suite commands take.
pub struct SuiteRun<'a> {
    pub suite: &'static str,
    pub title: &'static str,
    pub out: &'a Path,
    pub quick: bool,
    /// Run only these experiments (by name); empty: all.
    pub only: &'a [String],
    pub force: bool,
}

/// Run `experiments` as described in the module docs.
pub fn run_suite(run: &SuiteRun, experiments: &[Box<dyn Experiment>]) -> Result<Outcome> {
    let names: Vec<&'static str> = experiments.iter().map(|e| e.name()).collect();
    if let Some(bad) = run.only.iter().find(|o| !names.contains(&o.as_str())) {
        return Err(bad_input!(
            "--only {bad}: no such experiment in repro {}; choose from {}",
            run.suite,
            names.join(", ")
        ));
    }
    check_destination(run.out, "repro", &[])?;
    check_same_suite(run.out, run.suite)?;
    fs::create_dir_all(run.out).with_context(|| format!("creating {}", run.out.display()))?;
    let selected: Vec<&Box<dyn Experiment>> = experiments
        .iter()
        .filter(|e| run.only.is_empty() || run.only.iter().any(|o| o == e.name()))
        .collect();
    let start = Instant::now();
    let summary = |complete: bool, claims: usize, held: usize| Summary {
        tool: TOOL,
        command: "repro",
        experiment: run.suite,
        quick: run.quick,
        complete,
        experiments: selected.iter().map(|e| e.name()).collect(),
        claims,
        held,
        seconds: start.elapsed().as_secs_f64(),
    };
    write_json(&run.out.join("summary.json"), &summary(false, 0, 0))?;

    progress::install_ctrlc();
    let bar = bar(selected.len());
    let mut done: Vec<(&Box<dyn Experiment>, Finished, bool)> = Vec::new();
    let mut interrupted = false;
    for e in &selected {
        let dest = run.out.join(e.name());
        if !run.force {
            if let Some(f) = finished(&dest, run.suite, run.quick) {
                done.push((e, f, true));
                bar.inc(1);
                continue;
            }
        }
        bar.set_message(e.name());
        let staging = run.out.join(format!(".{}.partial", e.name()));
        if staging.exists() {
            fs::remove_dir_all(&staging)?;
        }
        fs::create_dir(&staging).with_context(|| format!("creating {}", staging.display()))?;
        let t0 = Instant::now();
        let step = Step {
            bar: &bar,
            name: e.name(),
        };
        let claims = match e.run(run.quick, &staging, &step) {
            Ok(c) => c,
            Err(err) => {
                let _ = fs::remove_dir_all(&staging);
                if err.downcast_ref::<Interrupted>().is_some() {
                    interrupted = true;
                    break;
                }
                return Err(err.context(format!("repro {} {}", run.suite, e.name())));
            }
        };
        let f = Finished {
            suite: run.suite.into(),
            experiment: e.name().into(),
            quick: run.quick,
            seconds: t0.elapsed().as_secs_f64(),
            claims,
        };
        write_json(&staging.join("claims.json"), &f)?;
        if dest.exists() {
            fs::remove_dir_all(&dest).with_context(|| format!("removing {}", dest.display()))?;
        }
        fs::rename(&staging, &dest).with_context(|| format!("writing {}", dest.display()))?;
        done.push((e, f, false));
        bar.inc(1);
        if progress::interrupted() {
            interrupted = true;
            break;
        }
    }
    bar.finish_and_clear();

    let (text, claims, held) = report(run, &done, selected.len());
    attnsvm::data::npy::write_text(&run.out.join("report.md"), &text)?;
    let complete = done.len() == selected.len();
    write_json(
        &run.out.join("summary.json"),
        &summary(complete, claims, held),
    )?;
    let kept = done.iter().filter(|d| d.2).count();
    println!(
        "repro {}: {} of {} experiments ({kept} kept from an earlier run), {held} of {claims} claims held, {:.1} s; wrote {}",
        run.suite,
        done.len(),
        selected.len(),
        start.elapsed().as_secs_f64(),
        run.out.join("report.md").display()
    );
    if interrupted {
        eprintln!(
            "interrupted: the finished experiments are kept; run the same command again to resume"
        );
        return Ok(Outcome::Interrupted);
    }
    Ok(Outcome::Done)
}

/// An existing DIR must hold this suite's output (not another `repro`'s).
fn check_same_suite(out: &Path, suite: &str) -> Result<()> {
    let Ok(text) = fs::read_to_string(out.join("summary.json")) else {
        return Ok(());
    };
    let json: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    match json["experiment"].as_str() {
        Some(s) if s != suite => Err(bad_input!(
            "--out {}: holds the output of `attnsvm repro {s}`, not of repro {suite}; choose another directory",
            out.display()
        )),
        _ => Ok(()),
    }
}

/// The finished experiment in `dir`, if it was run by this suite at these sizes.
fn finished(dir: &Path, suite: &str, quick: bool) -> Option<Finished> {
    let text = fs::read_to_string(dir.join("claims.json")).ok()?;
    let f: Finished = serde_json::from_str(&text).ok()?;
    (f.suite == suite && f.quick == quick).then_some(f)
}

fn bar(len: usize) -> ProgressBar {
    let target = if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(Some(len as u64), target);
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:30} {pos}/{len} experiments  {elapsed}  {msg}  (Ctrl-C stops; rerun to resume)",
        )
        .expect("a valid progress template"),
    );
    bar
}

type Done<'a> = (&'a Box<dyn Experiment>, Finished, bool);

fn report(run: &SuiteRun, done: &[Done], selected: usize) -> (String, usize, usize) {
    let mut s = String::new();
    let _ = writeln!(s, "# {}\n", run.title);
    let _ = writeln!(
        s,
        "`attnsvm repro {}{}`: {} of {selected} experiments finished.\n",
        run.suite,
        if run.quick { " --quick" } else { "" },
        done.len()
    );
    let (mut claims, mut held) = (0, 0);
    for (e, f, kept) in done {
        let _ = writeln!(
            s,
            "## `{}`: {}\n\n{:.1} s{}. Files: `{}/`.\n",
            e.name(),
            e.title(),
            f.seconds,
            if *kept {
                ", kept from an earlier run"
            } else {
                ""
            },
            e.name()
        );
        let _ = writeln!(s, "| claim | measured | held |\n|---|---|---|");
        for c in &f.claims {
            let verdict = match c.held {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "—",
            };
            if let Some(h) = c.held {
                claims += 1;
                held += usize::from(h);
            }
            let _ = writeln!(
                s,
                "| {} | {} | {verdict} |",
                c.statement.replace('|', "\\|"),
                c.measured.replace('|', "\\|")
            );
        }
        let _ = writeln!(s);
    }
    let _ = writeln!(s, "**{held} of {claims} claims held.**");
    (s, claims, held)
}
