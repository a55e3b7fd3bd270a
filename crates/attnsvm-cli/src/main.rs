//! `attnsvm`: the command-line tool of the attnsvm toolkit. Thin: it parses, calls the library,
//! writes the results and prints a short summary.
//!
//! Exit codes: 0 success; 1 an I/O failure; 2 bad input (a malformed instance, setting or config
//! file, or a usage error); 130 a training run stopped by Ctrl-C (its outputs are still written).
//! Every command validates all of its inputs before it writes anything, and builds its output
//! directory under a temporary sibling name that is renamed into place at the end, so a failure
//! never leaves a half-written output directory.

mod cmd;
mod config;
mod error;
mod figure;
mod heatmap;
mod output;
mod plot;
mod progress;
mod run;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Counts heap bytes, so `repro primal-dual` can report measured peak memory.
#[global_allocator]
static ALLOC: attnsvm_nn::memory::Tracking = attnsvm_nn::memory::Tracking;

/// Compute, train and plot the optimization geometry of softmax attention.
#[derive(Debug, Parser)]
#[command(name = "attnsvm", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate a seeded instance directory of one of the papers' data families.
    Gen(cmd::gen::GenArgs),
    /// Train one attention layer on an instance directory and record its trajectory.
    Train(Box<cmd::train::TrainArgs>),
    /// Plot the trajectory of a training run (RUN_DIR/trace.csv → trace.png, trace.svg).
    Plot(cmd::plot::PlotArgs),
    /// Run the papers' canonical two-sequence example end to end: data, training, plot.
    Demo(cmd::demo::DemoArgs),
    /// Solve the Att-SVM of an instance for a selection α (Frobenius or nuclear norm).
    Svm(Box<cmd::svm::SvmArgs>),
    /// Token scores, optimal tokens, and whether a selection is globally/locally optimal.
    Tokens(Box<cmd::tokens::TokensArgs>),
    /// The regularization path argmin_{‖W‖ ≤ R} L(W) over radii R (Frobenius, nuclear, (K,Q), local cone).
    Path(Box<cmd::path::PathArgs>),
    /// The token-group lasso of convex attention (programs (9)/(12)) at one β or along a β path.
    Convex(Box<cmd::convex::ConvexArgs>),
    /// Reproduce a paper's experiment: numbers (CSV/JSON), figures (PNG/SVG) and report.md.
    Repro(cmd::repro::ReproArgs),
}

/// How a command that succeeded ended.
pub enum Outcome {
    Done,
    /// Training was stopped by Ctrl-C; what it had was written.
    Interrupted,
}

fn main() -> ExitCode {
    // Die quietly when stdout is a closed pipe (`attnsvm train … | head`), as command-line tools
    // do, instead of panicking in `println!`. Outputs are written before anything is printed.
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of SIGPIPE at start-up, before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Gen(args) => cmd::gen::run(args),
        Command::Train(args) => cmd::train::run(*args),
        Command::Plot(args) => cmd::plot::run(args),
        Command::Demo(args) => cmd::demo::run(args),
        Command::Svm(args) => cmd::svm::run(*args),
        Command::Tokens(args) => cmd::tokens::run(*args),
        Command::Path(args) => cmd::path::run(*args),
        Command::Convex(args) => cmd::convex::run(*args),
        Command::Repro(args) => cmd::repro::run(args),
    };
    match result {
        Ok(Outcome::Done) => ExitCode::SUCCESS,
        Ok(Outcome::Interrupted) => ExitCode::from(130),
        Err(e) => {
            eprintln!("error: {}", error::one_line(&e));
            ExitCode::from(error::exit_code(&e))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
