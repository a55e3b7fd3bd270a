//! The experiments of "Transformers as Support Vector Machines" (spec `tf-as-svm.md` §4.1–4.5, checks
//! §5), as seeded library functions at two sizes: `quick` (seconds, what the tests run) and `full`
//! (the papers' sizes). Each returns a serializable result with its [`Claim`](super::Claim)s.
//!
//! | module | notebook | what it shows |
//! |---|---|---|
