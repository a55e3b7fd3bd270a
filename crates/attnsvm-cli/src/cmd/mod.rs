//! The subcommands, one module each, and the small helpers their argument definitions share.

pub mod convex;
pub mod cx;
pub mod demo;
pub mod gen;
pub mod mm;
pub mod path;
pub mod pd;
pub mod plot;
pub mod repro;
pub mod suite;
pub mod svm;
pub mod tf;
pub mod tokens;
pub mod train;

use std::fmt::Display;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The library value named `name` in its serde form (the names the library uses in config files).
pub fn from_name<T: DeserializeOwned>(name: &str) -> Result<T, serde_json::Error> {
    serde_json::from_value(serde_json::Value::String(name.to_string()))
}

/// The serde name of a library enum value (`Loss::Logistic` → `"logistic"`).
pub fn name_of<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        other => format!("{other:?}"),
    }
}

/// A clap parser for a library enum: `names` are the possible values (shown in `--help` and in
/// usage errors), turned into `T` through serde, so the CLI and config files spell them alike.
pub fn serde_enum<T>(
    names: impl IntoIterator<Item = &'static str>,
) -> impl TypedValueParser<Value = T>
where
    T: DeserializeOwned + Clone + Send + Sync + 'static,
{
    PossibleValuesParser::new(names).map(|s: String| {
        from_name(&s).unwrap_or_else(|e| panic!("possible value '{s}' has no variant: {e}"))
    })
}

/// A help line that ends with its default, taken from the library's own default value.
pub fn with_default(text: &str, default: impl Display) -> String {
    format!("{text} [default: {default}]")
}

/// The possible values of the library enums the CLI takes.
pub mod names {
    pub const PARAM: [&str; 2] = ["w", "kq"];
    pub const HEAD: [&str; 3] = ["linear", "relu", "lambda"];
    pub const LOSS: [&str; 3] = ["logistic", "exp", "corr"];
    pub const OPT: [&str; 4] = ["gd", "ngd", "polyak", "adam"];
    pub const INIT: [&str; 2] = ["zero", "random"];
    pub const POLYAK_TARGET: [&str; 2] = ["zero", "infimum"];
    pub const NORM: [&str; 2] = ["fro", "nuc"];
    pub const BALL: [&str; 3] = ["fro", "nuc", "kq"];
    pub const SOLVER: [&str; 3] = ["auto", "dual", "ipm"];
    pub const SETTING: [&str; 3] = ["orthonormal", "equal-score", "gaussian"];
}

#[cfg(test)]
mod tests {
    use super::*;
    use attnsvm::data::generate::Family;
    use attnsvm::model::{HeadKind, Loss, Param};
    use attnsvm::solvers::svm::{Norm, Solver};
    use attnsvm::train::{Init, Optimizer, PolyakTarget};

    /// Every name parses to its own variant and prints back as itself.
    fn round_trips<T>(names: &[&str])
    where
        T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug,
    {
        let values: Vec<T> = names
            .iter()
            .map(|n| {
                let v: T = from_name(n).unwrap();
                assert_eq!(&name_of(&v), n);
                v
            })
            .collect();
        for (i, a) in values.iter().enumerate() {
            assert!(values[i + 1..].iter().all(|b| a != b), "{a:?} twice");
        }
    }

    #[test]
    fn enum_names_match_the_library() {
        round_trips::<Param>(&names::PARAM);
        round_trips::<HeadKind>(&names::HEAD);
        round_trips::<Loss>(&names::LOSS);
        round_trips::<attnsvm::experiments::rates::Setting>(&names::SETTING);
        round_trips::<Optimizer>(&names::OPT);
        round_trips::<Init>(&names::INIT);
        round_trips::<PolyakTarget>(&names::POLYAK_TARGET);
        round_trips::<Norm>(&names::NORM);
        round_trips::<attnsvm::solvers::path::Ball>(&names::BALL);
        round_trips::<Solver>(&names::SOLVER);
        round_trips::<Family>(&Family::ALL.map(Family::name));
    }
}
