//! # attnsvm
//!
//! The optimization geometry of softmax attention, computed exactly: attention models with
//! log-domain gradients that stay exact when the softmax saturates, seeded instance families,
//! and training loops (GD, normalized GD, Polyak, Adam) that record how `W` converges in direction.
//!
//! Conventions (see `DESIGN.md`): tokens of sequence `i` are the rows of `X_i` (T×d); logits
//! `a_it = x_itᵀ W z_i`; attention `s_i = softmax(a_i)`; output `x̄_i = X_iᵀ s_i`; `W = K Qᵀ` for
//! the (K,Q) parameterization; token score `γ_it = y_i vᵀx_it`. All theory runs in f64.
//!
//! Layers, top to bottom: [`data`] → [`model`] → [`solvers`] → [`train`] → [`experiments`];
//! nothing below imports anything above.
//!
//! ```
//! use attnsvm::data::generate::{generate, Family, GenSpec};
//! use attnsvm::model::{Head, Loss, Objective};
//! use attnsvm::train::{train, State, TrainSettings};
//!
//! // The rates paper's orthonormal family: W_mm is known in closed form.
//! let g = generate(&GenSpec { self_attention: true, ..GenSpec::new(Family::Orthonormal, 4, 4, 16, 0) })?;
//! let (inst, w_mm) = (g.instance, g.reference.unwrap().1);
//! let settings = TrainSettings { iters: 2000, ..TrainSettings::default() }; // exact-direction NGD, η = 0.1
//! let mut risk = Objective::new(&inst, Head::Linear, Loss::Logistic, 0)?;
//! let run = train(&mut risk, &settings, State::init(&settings, inst.d, &inst.v), Some(&w_mm), |_| true)?;
//! let last = run.trajectory.records.last().unwrap();
//! assert!(last.one_minus_corr.unwrap() < 1e-3);
//! # Ok::<(), attnsvm::Error>(())
//! ```

pub mod data;
pub mod error;
pub mod experiments;
pub mod linalg;
pub mod model;
pub mod solvers;
pub mod train;

pub use error::{Error, Result};
