//! The CLI's integration tests (they run the built `attnsvm` binary), one module per subject, linked
//! into one test binary to save CI linking time and disk. One subject: `cargo test -p attnsvm-cli --test cli cli_svm`.

mod common;

mod cli;
mod cli_convex;
mod cli_convex_suite;
mod cli_max_margin;
mod cli_path;
mod cli_primal_dual;
mod cli_repro;
mod cli_suite;
mod cli_svm;
mod cli_tf_svm;
