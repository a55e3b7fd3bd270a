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
//! Layers, top to bottom: [`data`] → [`model`] → [`train`]; nothing below imports anything above.

pub mod data;
pub mod error;
pub mod linalg;
pub mod model;
pub mod train;

pub use error::{Error, Result};
