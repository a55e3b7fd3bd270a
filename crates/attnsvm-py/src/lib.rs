//! Python bindings of attnsvm: the compiled module `attnsvm._attnsvm`, re-exported by the Python
//! package `attnsvm` (python/attnsvm/). NumPy arrays in and out; the GIL is released during solves
//! and training; bad input raises `ValueError` with the core's one-line message (the CLI's).
//!
//! Names follow the Rust API: `generate` (`data::generate`), `Objective` (`model::Objective`),
//! `train` (`train::train`), `att_svm` (`solvers::svm::AttSvm`), `selection_report` and
//! `optimal_selection` (`solvers::svm::tokens`), `analyze_trained` (`solvers::svm::trained`),
//! `regularization_path` (`solvers::path::RegPath`),
//! `glasso`, `glasso_path`, `glasso_beta_max` (`solvers::glasso`).

mod convert;
mod glasso;
mod model;
mod path;
mod svm;
mod train;

use pyo3::prelude::*;

#[pymodule]
fn _attnsvm(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(model::generate, m)?)?;
    m.add_function(wrap_pyfunction!(model::load_instance, m)?)?;
    m.add_class::<model::Objective>()?;
    m.add_function(wrap_pyfunction!(train::train, m)?)?;
    m.add_function(wrap_pyfunction!(svm::att_svm, m)?)?;
    m.add_function(wrap_pyfunction!(svm::selection_report, m)?)?;
    m.add_function(wrap_pyfunction!(svm::optimal_selection, m)?)?;
    m.add_function(wrap_pyfunction!(svm::analyze_trained, m)?)?;
    m.add_function(wrap_pyfunction!(path::regularization_path, m)?)?;
    m.add_function(wrap_pyfunction!(glasso::glasso, m)?)?;
    m.add_function(wrap_pyfunction!(glasso::glasso_path, m)?)?;
    m.add_function(wrap_pyfunction!(glasso::glasso_beta_max, m)?)?;
    Ok(())
}
