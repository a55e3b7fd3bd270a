//! Frobenius engine (stub while the engine is written).
use super::{AttSvmProblem, SvmSettings, SvmSolution, Status};

pub(super) fn solve(p: &AttSvmProblem, s: &SvmSettings) -> SvmSolution {
    SvmSolution::empty(p, s.norm, Status::NumericalError, "dual-cd")
}
