//! Nuclear-norm engine (stub; being written).
use super::{AttSvmProblem, SvmSettings, SvmSolution, Status};

pub(super) fn solve(p: &AttSvmProblem, s: &SvmSettings) -> SvmSolution {
    SvmSolution::empty(p, s.norm, Status::NumericalError, "irls")
}
