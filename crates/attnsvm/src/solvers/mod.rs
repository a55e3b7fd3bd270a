//! Solvers: each a unit in the Clarabel style — settings with documented defaults, a validating
//! constructor, and a `solve()` that always returns a status, a solution and an info record.

pub mod glasso;
pub mod path;
pub mod svm;
pub mod svr;
