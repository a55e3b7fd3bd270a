//! The experiments of "Max-Margin Token Selection in Attention Mechanism" (spec `tf-as-svm.md`
//! §2.7, §4.6–4.9, checks §5.11–15 and 20), as seeded library functions at two sizes: `quick`
//! (seconds, what the tests run) and `full`. Each returns a serializable result with its
//! [`Claim`](super::Claim)s.
