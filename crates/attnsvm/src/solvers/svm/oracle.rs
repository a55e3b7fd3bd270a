//! Clarabel oracle (stub; being written).
use super::{AttSvmProblem, SvmSettings, SvmSolution, Status};

pub(super) fn qp(p: &AttSvmProblem, s: &SvmSettings) -> SvmSolution {
    SvmSolution::empty(p, s.norm, Status::NumericalError, "clarabel-qp")
}

#[cfg(feature = "sdp")]
pub(super) fn sdp(p: &AttSvmProblem, s: &SvmSettings) -> SvmSolution {
    SvmSolution::empty(p, s.norm, Status::NumericalError, "clarabel-sdp")
}
