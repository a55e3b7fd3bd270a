//! The experiments of "Transformers as Support Vector Machines" (spec `tf-as-svm.md` §4.1–4.5, checks
//! §5), as seeded library functions at two sizes: `quick` (seconds, what the tests run) and `full`
//! (the papers' sizes). Each returns a serializable result with its [`Claim`](super::Claim)s.
//!
//! | module | notebook | what it shows |
//! |---|---|---|
//! | [`rank`] | `svm_rank` (§4.5) | rank of the Frobenius vs the nuclear Att-SVM solution; infeasible instances reported (checks 4, 18) |
//! | [`multi_token`] | `multi_token_converge` (§4.4) | ReLU head: W-NGD converges to the SVM-equivalence `W_fin + R·W_dir`, not to a single-token SVM (checks 16, 17) |

pub mod multi_token;
pub mod rank;

/// Serde for `f64` fields that are `NaN` when not measured: `NaN` ⇄ `null` (JSON has no NaN).
pub(crate) mod nan_as_null {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(x: &f64, s: S) -> Result<S::Ok, S::Error> {
        if x.is_finite() {
            s.serialize_f64(*x)
        } else {
            s.serialize_none()
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
    }
}
