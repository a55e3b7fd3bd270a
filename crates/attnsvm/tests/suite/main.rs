//! The core crate's integration tests, one module per subject, linked into one binary: each test
//! binary links the whole dependency graph, so one binary instead of thirty saves CI minutes of
//! linking and gigabytes of disk. Run one subject with `cargo test -p attnsvm --test suite svm_oracle`.

mod common;

mod attention_kinds;
mod convex_experiments;
mod convex_gated;
mod convex_recovery;
mod convex_simplex;
mod convex_softmax;
mod data_errors;
mod data_io;
mod glasso;
mod gradients;
mod invariances;
mod max_margin;
mod minibatch;
mod path;
mod path_heads;
mod rates;
mod reference_runs;
mod saturation;
mod shipped_data;
mod svm_engines;
mod svm_equivalence;
mod svm_oracle;
mod svm_tokens;
mod svr;
mod tf_local;
mod tf_multi_token;
mod tf_paths;
mod tf_rank;
mod tf_vis;
mod training;
